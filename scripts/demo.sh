#!/usr/bin/env bash
# `make demo`: the whole story on one machine. A development CA, xbootd on SQLite, a mosquitto
# MQTT broker that trusts only our chain, a sample device that enrolls through libxboot and
# sends telemetry over mutual TLS, and a subscriber that shows it arrive. Everything lives in
# ./demo (recreated on each run), listens on 127.0.0.1 only, and is stopped at the end.
set -euo pipefail
BUILD=${1:-build}
BIN=$(cd "$BUILD" && pwd)
ROOT=$(pwd)
DEMO="$ROOT/demo"
DEVICE=demo-device-001
MONITOR=xboot-monitor
MESSAGES=3

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

# Everything this script starts, stopped on any exit (bounded: TERM, then KILL after 5 s).
PIDS=()
stop_all() {
  local pid i
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap stop_all EXIT

# wait_for FILE REGEX SECONDS [PID]: until FILE has a line matching REGEX (bounded); fails
# early when PID exits.
wait_for() {
  local i
  for i in $(seq 1 $(($3 * 10))); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null && return 1
    sleep 0.1
  done
  return 1
}

rm -rf "$DEMO"
mkdir -p "$DEMO/broker"

step "1. Create a development CA (root, signing CA, chain, localhost TLS certificate)"
"$BIN/xbootctl" ca init --dir "$DEMO/ca"

step "2. Configure xbootd: HTTPS on 127.0.0.1, SQLite registry, enrollment by device credentials"
cat >"$DEMO/xboot.conf" <<CONF
[server]
listen = 127.0.0.1:0
tls_cert = ca/tls.pem
tls_key = ca/tls.key

[ca]
cert = ca/signing-ca.pem
key = ca/signing-ca.key
chain = ca/chain.pem
validity_days = 365

[registry]
db = sqlite:xboot.db

[enroll]
mode = allowlist
CONF
cat "$DEMO/xboot.conf"
"$BIN/xbootd" --check -c "$DEMO/xboot.conf"

step "3. Start xbootd"
"$BIN/xbootd" -c "$DEMO/xboot.conf" 2>"$DEMO/xbootd.log" &
XPID=$!
PIDS+=("$XPID")
wait_for "$DEMO/xbootd.log" "xbootd .* started" 10 "$XPID" || { cat "$DEMO/xbootd.log"; die "xbootd did not start"; }
PORT=$(sed -n 's|.*listening on https://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$DEMO/xbootd.log" | head -n1)
URL="https://127.0.0.1:$PORT"
for _ in $(seq 1 50); do
  curl -sf --max-time 2 --cacert "$DEMO/ca/root-ca.pem" "$URL/healthz" >/dev/null && break
  sleep 0.1
done
echo "xbootd is up at $URL: $(curl -s --max-time 2 --cacert "$DEMO/ca/root-ca.pem" "$URL/healthz")"

step "4. An enrollment group, and each device's key derived from it (what a factory line flashes)"
# The group key stays with the operator; a device gets only its own derived key,
# Base64(HMAC-SHA256(group key, registration ID)), and needs no registry row until it enrolls.
"$BIN/xbootctl" group add demo-line --db "sqlite:$DEMO/xboot.db" >"$DEMO/group-key.txt"
chmod 600 "$DEMO/group-key.txt"
echo "group demo-line created; its key is in demo/group-key.txt (keep it offline)"
mkdir -p "$DEMO/factory"
for id in "$DEVICE" "$MONITOR"; do
  (umask 077 && "$BIN/xbootctl" group derive demo-line "$id" --db "sqlite:$DEMO/xboot.db" >"$DEMO/factory/$id.key")
  echo "derived the key of $id into demo/factory/$id.key"
done

step "5. Start an MQTT broker (mosquitto) that trusts only our chain"
. "$(dirname "$0")/broker.sh"
xb_broker_start "$DEMO/broker" "$DEMO/ca" || die "mosquitto did not start"
MQPID=$XB_BROKER_PID MQPORT=$XB_BROKER_PORT
PIDS+=("$MQPID")
grep -vE '^ *(#|$)' "$DEMO/broker/mosquitto.conf"
echo "mosquitto is up at 127.0.0.1:$MQPORT (ACL: devices/%u/# for devices, devices/# read for $MONITOR)"

step "6. The monitor enrolls (xboot-enroll) and subscribes to devices/#"
"$BIN/xboot-enroll" --server "$URL" --trust "$DEMO/ca/root-ca.pem" --id "$MONITOR" --out "$DEMO/monitor" \
  --credential-file "$DEMO/factory/$MONITOR.key"
# Exits after the messages of both device runs below (MESSAGES + 1) or after 60 s.
timeout 70 mosquitto_sub -V mqttv5 -h 127.0.0.1 -p "$MQPORT" -i "$MONITOR" \
  --cafile "$DEMO/ca/root-ca.pem" --cert "$DEMO/monitor/device.pem" --key "$DEMO/monitor/device.key" \
  -t 'devices/#' -v -C $((MESSAGES + 1)) -W 60 >"$DEMO/monitor/received.txt" 2>"$DEMO/monitor/sub.log" &
SUBPID=$!
PIDS+=("$SUBPID")
wait_for "$DEMO/broker/mosquitto.log" "u'$MONITOR'" 10 "$SUBPID" || { cat "$DEMO/monitor/sub.log"; die "the subscriber did not connect"; }
echo "subscribed as $MONITOR"

step "7. The sample device: enroll through libxboot, then send $MESSAGES messages over MQTT (mutual TLS)"
cat >"$DEMO/device.conf" <<CONF
[xboot]
server = $URL
trust_anchor = ca/root-ca.pem
registration_id = $DEVICE
store_dir = device
credential = $(cat "$DEMO/factory/$DEVICE.key")

[mqtt]
host = 127.0.0.1
port = $MQPORT
topic = devices/{id}/messages/events/
messages = $MESSAGES
interval_ms = 500
CONF
sed 's/^credential = .*/credential = (its derived key, from demo\/factory)/' "$DEMO/device.conf"
echo
"$BIN/xboot-sample-device" -c "$DEMO/device.conf"

step "8. What the subscriber received"
wait_for "$DEMO/monitor/received.txt" "\"seq\":$MESSAGES[,}]" 10 || true
sed 's/^/  /' "$DEMO/monitor/received.txt"
n=$(grep -c "^devices/$DEVICE/messages/events/ " "$DEMO/monitor/received.txt" || true)
[ "$n" = "$MESSAGES" ] || die "the subscriber got $n of $MESSAGES messages"
echo "the subscriber got all $MESSAGES messages"

step "9. The certificate the device received, and the registry's record of it"
openssl x509 -in "$DEMO/device/device.pem" -noout -subject -issuer -enddate -serial -ext extendedKeyUsage
echo -n "openssl verify: "
openssl verify -CAfile "$DEMO/ca/root-ca.pem" -untrusted "$DEMO/device/chain.pem" "$DEMO/device/device.pem"
"$BIN/xbootctl" device show "$DEVICE" --db "sqlite:$DEMO/xboot.db"

step "10. Run the device again: the stored certificate is reused, nothing is sent to xbootd"
"$BIN/xboot-sample-device" -c "$DEMO/device.conf" --messages 1
echo "certificates issued to $DEVICE: $(sqlite3 "$DEMO/xboot.db" "select count(*) from certificates where reg_id='$DEVICE'" 2>/dev/null || echo '?')"

step "11. The ACL at work: the device tries to publish as another device"
sed 's|^topic = .*|topic = devices/some-other-device/messages/events/|' "$DEMO/device.conf" >"$DEMO/device-wrong-topic.conf"
if "$BIN/xboot-sample-device" -c "$DEMO/device-wrong-topic.conf" --messages 1; then
  die "the broker accepted a message on another device's topic"
fi
echo "(refused, as it should be: MQTT v5 PUBACK reason 0x87)"

step "12. Stop the subscriber, mosquitto and xbootd"
# It leaves by itself after MESSAGES + 1 messages; stop_all ends it otherwise.
for _ in $(seq 1 50); do kill -0 "$SUBPID" 2>/dev/null || break; sleep 0.1; done
echo "the subscriber received $(wc -l <"$DEMO/monitor/received.txt") messages in all"
stop_all
trap - EXIT
tail -n 2 "$DEMO/xbootd.log"
echo
echo "Demo files are in ./demo: CA in demo/ca, the device's key and certificate in demo/device,"
echo "its configuration in demo/device.conf, the broker's in demo/broker."
