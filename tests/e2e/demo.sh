#!/usr/bin/env bash
# `make demo` keeps working: the script runs start to end in a scratch directory; the sample
# device enrolls through libxboot, its telemetry reaches the subscriber through mosquitto over
# mutual TLS, a second run reuses the stored certificate, the ACL refuses another device's
# topic, and nothing is left running.
# registry: none (scripts/demo.sh makes its own SQLite registry in its scratch directory; the
# harness's backend does not reach it)
. "$(dirname "$0")/lib.sh"

src=$(cd "$XB_FIXTURES/../.." && pwd)
out=$(cd "$XB_TMP" && timeout 120 bash "$src/scripts/demo.sh" "$XB_BIN" 2>&1); rc=$?
device=demo-device-001
topic="devices/$device/messages/events/"
xb_eq "demo exits 0" "$rc" 0
xb_contains "demo's device sends its CSR" "$out" "Sending CSR to XBoot server..."
xb_contains "demo's device receives its certificate" "$out" "Received certificate"
xb_contains "demo's device connects to the broker" "$out" "Connected to broker"
xb_contains "demo's device sends its messages" "$out" "Sent message 3: {\"deviceId\":\"$device\",\"seq\":3,"
xb_contains "demo's monitor enrolls with xboot-enroll" "$out" "Enrolled xboot-monitor"
received=$(cat "$XB_TMP/demo/monitor/received.txt" 2>/dev/null)
xb_eq "the subscriber receives the first run's 3 messages" \
  "$(head -n 3 <<<"$received" | grep -c "^$topic {\"deviceId\":\"$device\",\"seq\":[123],")" 3
xb_contains "the subscriber receives the second run's message too" "$(sed -n 4p <<<"$received")" \
  "$topic {\"deviceId\":\"$device\",\"seq\":1,"
xb_contains "demo shows the received telemetry" "$out" "  $topic {\"deviceId\":\"$device\",\"seq\":1,"
xb_contains "demo's certificate verifies" "$out" "device.pem: OK"
# Both enrolled with a key derived from the demo's group, not in open mode nor by allowlist.
xb_eq "demo enrolls both devices with group-derived keys" \
  "$(grep -c 'outcome=issued .*credential=group' "$XB_TMP/demo/xbootd.log")" 2
xb_lacks "demo's configuration is not open mode" "$(cat "$XB_TMP/demo/xboot.conf")" "mode = open"
xb_contains "the device's row came from its group" "$out" "group:        demo-line"
key=$(cat "$XB_TMP/demo/factory/$device.key" 2>/dev/null)
xb_check "the derived key is not printed" test -n "$key" -a "${out/"$key"/}" = "$out"
xb_contains "demo's second run reuses the stored certificate" "$out" "no enrollment needed"
xb_contains "demo's second run issues no certificate" "$out" "certificates issued to $device: 1"
xb_contains "demo's ACL refuses another device's topic" "$out" \
  "Message 1 refused by broker: Not authorized (0x87)"
xb_lacks "the refused message never reached the subscriber" "$received" "some-other-device"
no_demo_server() { ! pgrep -f "[x]bootd -c $XB_TMP/demo/xboot.conf" >/dev/null; }
xb_check "demo leaves no xbootd running" no_demo_server
no_demo_broker() { ! pgrep -f "[m]osquitto -c $XB_TMP/demo/broker/mosquitto.conf" >/dev/null; }
xb_check "demo leaves no mosquitto running" no_demo_broker
no_demo_subscriber() { ! pgrep -f "[m]osquitto_sub .*$XB_TMP/demo/" >/dev/null; }
xb_check "demo leaves no mosquitto_sub running" no_demo_subscriber
[ "$rc" = 0 ] || echo "$out" | tail -40
xb_finish
