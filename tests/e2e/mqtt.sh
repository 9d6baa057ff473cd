#!/usr/bin/env bash
# The sample device against a real broker: mosquitto 2.x on 127.0.0.1 with mutual TLS
# (require_certificate, use_identity_as_username, cafile = our chain) and an ACL that lets each
# device publish only under devices/<its ID>/. Checks that
#  (a) a freshly enrolled device publishes and a subscriber receives the telemetry,
#  (b) a certificate from another CA (or none) is refused by the broker,
#  (c) a device cannot publish to another device's topic (MQTT v5: PUBACK 0x87 Not authorized),
#  (d) a second run of the device reuses the stored certificate (no second issuance),
#  (e) the device checks the broker too: a broker it cannot verify is refused,
#  and that the sample device is valgrind-clean.
. "$(dirname "$0")/lib.sh"

# ---- mosquitto helpers (here rather than in a second *.sh file: ctest runs every *.sh in
# tests/e2e but lib.sh as a test) ----

MQ_DIR="$XB_TMP/mq"
MQ_PID=""
MQ_PORT=""
MQ_SUB_PID=""

mq_stop_pid() { # mq_stop_pid PID: TERM, then KILL after 5 s
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null
  local i
  for i in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

mq_cleanup() {
  mq_stop_pid "$MQ_SUB_PID"
  mq_stop_pid "$MQ_PID"
  MQ_SUB_PID="" MQ_PID=""
  xb_cleanup
}
trap mq_cleanup EXIT

# mq_wait FILE REGEX [SECONDS [COUNT]]: until FILE has COUNT (default 1) lines matching REGEX.
mq_wait() {
  local i n
  for i in $(seq 1 $((${3:-10} * 10))); do
    n=$(grep -cE "$2" "$1" 2>/dev/null)
    [ "${n:-0}" -ge "${4:-1}" ] && return 0
    sleep 0.1
  done
  return 1
}

# Start mosquitto with our CA (scripts/broker.sh, shared with the demo); sets MQ_PORT, MQ_PID.
. "$(cd "$XB_FIXTURES/../.." && pwd)/scripts/broker.sh"
mq_start() {
  xb_broker_start "$MQ_DIR" "$XB_TMP/ca" all || return 1
  MQ_PORT=$XB_BROKER_PORT MQ_PID=$XB_BROKER_PID
}

# A sample-device config: mq_device_conf FILE REGID [extra [mqtt] lines...]
mq_device_conf() {
  local file=$1 id=$2; shift 2
  cat >"$file" <<CONF
[xboot]
server = $XB_URL
trust_anchor = ca/root-ca.pem
registration_id = $id
store_dir = store-$id

[mqtt]
host = 127.0.0.1
port = $MQ_PORT
messages = 2
interval_ms = 100
CONF
  local line
  for line in "$@"; do echo "$line" >>"$file"; done
}

# Run the sample device; sets MQ_OUT (stdout + stderr) and MQ_RC. mq_device CONF [args...]
mq_device() {
  MQ_OUT=$(timeout 60 "$XB_BIN/xboot-sample-device" -c "$@" 2>&1)
  MQ_RC=$?
}

# mosquitto_pub with a client certificate: mq_pub CERT KEY TOPIC MESSAGE [options...]; sets
# MQ_OUT and MQ_RC.
mq_pub() {
  local cert=$1 key=$2 topic=$3 msg=$4; shift 4
  MQ_OUT=$(timeout 20 mosquitto_pub -h 127.0.0.1 -p "$MQ_PORT" --cafile "$XB_TMP/ca/root-ca.pem" \
    ${cert:+--cert "$cert" --key "$key"} -q 1 -t "$topic" -m "$msg" "$@" 2>&1)
  MQ_RC=$?
}

# ---- setup: xbootd, mosquitto, the monitor's subscription ----

command -v mosquitto >/dev/null || PATH=$PATH:/usr/sbin
xb_ca_init || { xb_bad "ca init"; exit 1; }
xb_write_config "[enroll]" "mode = allowlist"
xb_start_server || { xb_bad "xbootd starts"; exit 1; }
for id in dev-a dev-b xboot-monitor; do xb_ctl device add "$id" >/dev/null; done
mq_start || { xb_bad "mosquitto starts"; exit 1; }
xb_ok "mosquitto listens on 127.0.0.1:$MQ_PORT with mutual TLS"

# The monitor gets its certificate from xbootd too (the device CLI).
"$XB_BIN/xboot-enroll" --quiet --server "$XB_URL" --trust "$XB_TMP/ca/root-ca.pem" \
  --id xboot-monitor --out "$XB_TMP/monitor" >/dev/null
xb_eq "the monitor enrolls with xboot-enroll" "$?" 0
SUB="$XB_TMP/sub.out"
timeout 90 mosquitto_sub -V mqttv5 -h 127.0.0.1 -p "$MQ_PORT" -i xboot-monitor \
  --cafile "$XB_TMP/ca/root-ca.pem" --cert "$XB_TMP/monitor/device.pem" \
  --key "$XB_TMP/monitor/device.key" -t 'devices/#' -v -W 80 >"$SUB" 2>"$XB_TMP/sub.err" &
MQ_SUB_PID=$!
xb_check "the monitor subscribes to devices/#" \
  mq_wait "$MQ_DIR/mosquitto.log" "Sending SUBACK to xboot-monitor" 10

cd "$XB_TMP" || exit 1

# ---- (a) a freshly enrolled device publishes; the subscriber receives it ----

mq_device_conf dev-a.conf dev-a
mq_device dev-a.conf
xb_eq "(a) the sample device exits 0" "$MQ_RC" 0
xb_contains "(a) it sends its CSR" "$MQ_OUT" "Sending CSR to XBoot server..."
xb_contains "(a) it receives its certificate" "$MQ_OUT" "Received certificate"
xb_contains "(a) it connects to the broker" "$MQ_OUT" "Connected to broker"
xb_contains "(a) it sends message 2" "$MQ_OUT" "Sent message 2"
[ "$MQ_RC" = 0 ] || echo "$MQ_OUT" | sed 's/^/     /'
xb_check "(a) the broker knows it by its certificate's CN" \
  grep -q "as dev-a (p5, .*u'dev-a')" "$MQ_DIR/mosquitto.log"
xb_check "(a) the subscriber receives both messages" \
  mq_wait "$SUB" "^devices/dev-a/messages/events/ " 10 2
payloads=$(sed -n 's|^devices/dev-a/messages/events/ ||p' "$SUB")
xb_eq "(a) the payloads name the device" "$(jq -r .deviceId <<<"$payloads" 2>/dev/null | sort -u)" dev-a
xb_eq "(a) the payloads are messages 1 and 2" "$(jq -r .seq <<<"$payloads" 2>/dev/null | paste -sd,)" 1,2
xb_eq "(a) the payloads carry a temperature" \
  "$(jq -r '.temperature | type' <<<"$payloads" 2>/dev/null | sort -u)" number
xb_eq "(a) one certificate issued to dev-a" "$(xb_cert_rows dev-a)" 1

# ---- (d) the second run reuses the stored certificate ----

rows_before=$(xb_sql 'select count(*) from certificates')
cert_before=$(sha256sum <store-dev-a/device.pem)
mq_device dev-a.conf --messages 1
xb_eq "(d) the second run exits 0" "$MQ_RC" 0
xb_contains "(d) it finds the stored certificate" "$MQ_OUT" "no enrollment needed"
xb_lacks "(d) it sends no CSR" "$MQ_OUT" "Sending CSR"
xb_contains "(d) it still publishes" "$MQ_OUT" "Sent message 1"
xb_eq "(d) no second certificate row" "$(xb_sql 'select count(*) from certificates')" \
  "$rows_before"
xb_eq "(d) the stored certificate is unchanged" "$(sha256sum <store-dev-a/device.pem)" "$cert_before"
xb_check "(d) the subscriber receives its message" \
  mq_wait "$SUB" "^devices/dev-a/messages/events/ " 10 3

# ---- (c) a device cannot publish to another device's topic ----

mq_device_conf dev-a-wrong.conf dev-a "topic = devices/dev-b/messages/events/"
mq_device dev-a-wrong.conf --messages 1
xb_eq "(c) the sample device exits 1 when the broker refuses" "$MQ_RC" 1
xb_contains "(c) it prints the v5 refusal" "$MQ_OUT" \
  "Message 1 refused by broker: Not authorized (0x87)"
xb_lacks "(c) it does not claim to have sent it" "$MQ_OUT" "Sent message 1"
xb_check "(c) the broker denied the PUBLISH" \
  grep -q "Denied PUBLISH from dev-a (.*'devices/dev-b/messages/events/'" "$MQ_DIR/mosquitto.log"
# mosquitto_pub under v5 sees the same PUBACK reason (it warns, and still exits 0 in 2.0.11).
mq_pub store-dev-a/device.pem store-dev-a/device.key devices/dev-b/messages/events/ \
  '{"deviceId":"dev-a","spoof":"v5"}' -V mqttv5 -i dev-a
xb_contains "(c) mosquitto_pub -V mqttv5 -q 1 gets PUBACK 'Not authorized'" "$MQ_OUT" \
  "Publish 1 failed: Not authorized"
# Under MQTT 3.1.1 a PUBACK has no reason code: the broker drops the message silently. That is
# why the sample device speaks v5.
mq_pub store-dev-a/device.pem store-dev-a/device.key devices/dev-b/messages/events/ \
  '{"deviceId":"dev-a","spoof":"v311"}' -V mqttv311 -i dev-a -d
xb_contains "(c) under v3.1.1 the refusal is invisible to the client (PUBACK RC:0)" "$MQ_OUT" \
  "received PUBACK (Mid: 1, RC:0)"

# ---- (b) a certificate from another CA is refused by the broker ----

"$XB_BIN/xbootctl" ca init --dir "$XB_TMP/other" >/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out foreign.key 2>/dev/null
openssl req -new -key foreign.key -subj /CN=dev-a -out foreign.csr 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >foreign.ext
openssl x509 -req -in foreign.csr -CA other/signing-ca.pem -CAkey other/signing-ca.key \
  -set_serial 0x1234 -days 1 -extfile foreign.ext -out foreign.pem 2>/dev/null
cat foreign.pem other/signing-ca.pem >foreign-chain.pem
foreign_valid() {
  openssl verify -CAfile other/root-ca.pem -untrusted other/signing-ca.pem -purpose sslclient \
    foreign.pem >/dev/null 2>&1
}
xb_check "(b) the foreign certificate is a valid client certificate of its own CA" foreign_valid
verify_failures=$(grep -c "certificate verify failed" "$MQ_DIR/mosquitto.log")
mq_pub foreign-chain.pem foreign.key devices/dev-a/messages/events/ \
  '{"deviceId":"dev-a","from":"foreign-ca"}' -V mqttv5 -i foreign
xb_check "(b) mosquitto_pub with a foreign-CA certificate fails" test "$MQ_RC" -ne 0
xb_check "(b) the broker rejects it in the TLS handshake" \
  test "$(grep -c "certificate verify failed" "$MQ_DIR/mosquitto.log")" -gt "$verify_failures"
mq_pub "" "" devices/dev-a/messages/events/ '{"deviceId":"dev-a","from":"no-certificate"}' \
  -V mqttv5 -i anonymous
xb_check "(b) mosquitto_pub without a client certificate fails" test "$MQ_RC" -ne 0

# ---- (e) the device verifies the broker: another CA's trust anchor makes it refuse ----

mq_device_conf dev-a-otherca.conf dev-a "ca_file = other/root-ca.pem"
mq_device dev-a-otherca.conf --messages 1
xb_eq "(e) the sample device exits 1 on an untrusted broker" "$MQ_RC" 1
xb_contains "(e) it says why" "$MQ_OUT" "Broker certificate rejected"

# ---- valgrind: the sample device leaks nothing and touches no uninitialised memory ----

if [ -n "${XB_SANITIZE:-}" ] || ! command -v valgrind >/dev/null; then
  xb_ok "valgrind check skipped (sanitizer build or no valgrind)"
else
  mq_device_conf dev-b.conf dev-b
  MQ_OUT=$(timeout 120 valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --error-exitcode=99 "$XB_BIN/xboot-sample-device" -c dev-b.conf --messages 1 2>&1)
  xb_eq "valgrind: enroll + publish is clean" "$?" 0
  MQ_OUT=$(timeout 120 valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --error-exitcode=99 "$XB_BIN/xboot-sample-device" -c dev-a-wrong.conf --messages 1 2>&1)
  xb_eq "valgrind: a refused publish is clean (exit 1, not 99)" "$?" 1
fi

# ---- nothing spoofed or foreign reached the subscriber ----

# A last message proves the subscriber was listening all along.
mq_pub store-dev-a/device.pem store-dev-a/device.key devices/dev-a/sentinel '{"end":true}' \
  -V mqttv5 -i dev-a
xb_check "the subscriber was listening to the end" mq_wait "$SUB" '^devices/dev-a/sentinel ' 10
mq_stop_pid "$MQ_SUB_PID"
MQ_SUB_PID=""
received=$(cat "$SUB")
xb_lacks "(c) the subscriber got nothing on another device's topic" "$received" "devices/dev-b/messages/events/ {\"deviceId\":\"dev-a\""
xb_lacks "(b) the subscriber got nothing from the foreign CA" "$received" "foreign-ca"
xb_lacks "(b) the subscriber got nothing without a certificate" "$received" "no-certificate"
xb_finish
