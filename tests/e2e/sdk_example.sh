#!/usr/bin/env bash
# The example program of docs/device-sdk.md, built the way a device developer builds it (the
# public header, libxboot.a, pkg-config, strict warnings), enrolls against a real xbootd: the
# documented code compiles and works, and what it stores is a usable credential.
. "$(dirname "$0")/lib.sh"

REPO=$(cd "$XB_FIXTURES/../.." && pwd)
DOC="$REPO/docs/device-sdk.md"
EXAMPLE="$XB_TMP/example"
ID=sdk-example-dev-1
STORE="$XB_TMP/store"

# The first ```c block of the page, as it is.
awk '/^```c[[:space:]]*$/ && !done { inside = 1; next }
     inside && /^```[[:space:]]*$/ { inside = 0; done = 1; next }
     inside' "$DOC" >"$EXAMPLE.c"
xb_check "docs/device-sdk.md has a C example" test -s "$EXAMPLE.c"
xb_check "the example is complete (has main)" grep -q "int main" "$EXAMPLE.c"

# The sanitizer build's libxboot.a needs the sanitizer runtimes at link time.
SAN=()
[ "${XB_SANITIZE:-}" = 1 ] && SAN=(-fsanitize=address,undefined)
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
if cc -std=c11 -Wall -Wextra -Werror "${SAN[@]}" -I"$REPO/include" "$EXAMPLE.c" \
  "$XB_BIN/libxboot.a" "$XB_BIN/libxb_common.a" \
  $(pkg-config --libs libcurl libcjson libssl libcrypto) -o "$EXAMPLE" 2>"$XB_TMP/cc.log"; then
  xb_ok "the example compiles with -std=c11 -Wall -Wextra -Werror against libxboot.a"
else
  xb_bad "the example does not compile:"; cat "$XB_TMP/cc.log"
  xb_finish; exit
fi

xb_ca_init
xb_write_config
xb_start_server || { xb_bad "xbootd starts"; xb_finish; exit; }
xb_ctl device add "$ID" >/dev/null

run_example() { # run_example ID; sets RC, OUT, ERR
  timeout 120 "$EXAMPLE" "$XB_URL" "$XB_TMP/ca/root-ca.pem" "$1" "$STORE" \
    >"$XB_TMP/out" 2>"$XB_TMP/err"
  RC=$?
  OUT=$(cat "$XB_TMP/out")
  ERR=$(cat "$XB_TMP/err")
}

# ---- the first run enrolls ----
run_example "$ID"
xb_eq "example exits 0" "$RC" 0
[ "$RC" = 0 ] || echo "     stderr: $ERR"
xb_contains "it says it was issued" "$OUT" "issued"
xb_contains "it prints the subject" "$OUT" "subject: CN=$ID"
xb_contains "it prints notAfter" "$OUT" "notAfter: "
xb_eq "one certificate recorded by the server" "$(xb_cert_rows "$ID")" 1

# ---- the store holds a credential others can use ----
xb_check "the store holds device.pem" test -s "$STORE/device.pem"
xb_check "the store holds device.key" test -s "$STORE/device.key"
xb_check "device.pem verifies against the root through the stored chain" \
  openssl verify -CAfile "$XB_TMP/ca/root-ca.pem" -untrusted "$STORE/chain.pem" "$STORE/device.pem"
xb_contains "the stored certificate is for the ID" \
  "$(openssl x509 -in "$STORE/device.pem" -noout -subject -nameopt RFC2253)" "CN=$ID"
xb_eq "the stored key is the certificate's" \
  "$(openssl pkey -in "$STORE/device.key" -pubout 2>/dev/null)" \
  "$(openssl x509 -in "$STORE/device.pem" -noout -pubkey)"
xb_eq "device.key is mode 0600" "$(stat -L -c %a "$STORE/device.key")" 600
xb_eq "the store directory is mode 0700" "$(stat -c %a "$STORE")" 700
# The printed notAfter is the certificate's (same instant, whatever the format).
printed=$(sed -n 's/^notAfter: //p' <<<"$OUT")
xb_eq "the printed notAfter is the certificate's" "$(date -d "$printed" +%s 2>/dev/null)" \
  "$(date -d "$(openssl x509 -in "$STORE/device.pem" -noout -enddate | cut -d= -f2)" +%s)"

# ---- a second run uses the store: nothing is sent (the server would refuse with 409) ----
before=$(sha256sum <"$STORE/device.pem")
run_example "$ID"
xb_eq "second run exits 0" "$RC" 0
xb_contains "second run reports the stored certificate" "$OUT" "already enrolled"
xb_contains "second run prints the subject" "$OUT" "subject: CN=$ID"
xb_eq "still one certificate recorded" "$(xb_cert_rows "$ID")" 1
xb_eq "the stored certificate is unchanged" "$(sha256sum <"$STORE/device.pem")" "$before"

# ---- an unknown device: a clear failure, and nothing stored ----
STORE="$XB_TMP/store-unknown"
run_example sdk-example-unknown-1
xb_eq "unknown device: exit 1" "$RC" 1
xb_contains "unknown device: the error names the refusal" "$ERR" "server_refused"
xb_contains "unknown device: the server's code is passed on" "$ERR" "device_unknown"
xb_check "unknown device: no certificate stored" test ! -e "$STORE/device.pem"

# ---- wrong trust anchor: nothing is sent ----
STORE="$XB_TMP/store-untrusted"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other-root \
  -keyout "$XB_TMP/other.key" -out "$XB_TMP/other.pem" -days 1 2>/dev/null
timeout 120 "$EXAMPLE" "$XB_URL" "$XB_TMP/other.pem" "$ID" "$STORE" >/dev/null 2>"$XB_TMP/err"
RC=$?
xb_eq "other trust anchor: exit 1" "$RC" 1
xb_contains "other trust anchor: server_untrusted" "$(cat "$XB_TMP/err")" "server_untrusted"

xb_finish
