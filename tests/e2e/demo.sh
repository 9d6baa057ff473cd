#!/usr/bin/env bash
# `make demo` keeps working: the script runs start to end in a scratch directory and shows a
# verified certificate that a mutual-TLS server accepted.
. "$(dirname "$0")/lib.sh"

src=$(cd "$XB_FIXTURES/../.." && pwd)
out=$(cd "$XB_TMP" && timeout 120 bash "$src/scripts/demo.sh" "$XB_BIN" 2>&1); rc=$?
xb_eq "demo exits 0" "$rc" 0
xb_contains "demo enrolls (HTTP 200)" "$out" "HTTP 200"
xb_contains "demo's certificate verifies" "$out" "device.pem: OK"
xb_contains "demo's certificate is accepted over mutual TLS" "$out" "accepted the device's certificate"
xb_contains "demo's second enrollment is refused" "$out" '"error":"already_enrolled"'
no_demo_server() { ! pgrep -f "[x]bootd -c $XB_TMP/demo/xboot.conf" >/dev/null; }
xb_check "demo leaves no xbootd running" no_demo_server
[ "$rc" = 0 ] || echo "$out" | tail -40
xb_finish
