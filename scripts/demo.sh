#!/usr/bin/env bash
# `make demo`: a development CA, xbootd on SQLite, one registered device enrolled over HTTPS
# with an openssl-made CSR, and the certificate it got. Everything lives in ./demo (recreated
# on each run) and listens on 127.0.0.1 only.
set -euo pipefail
BUILD=${1:-build}
BIN=$(cd "$BUILD" && pwd)
ROOT=$(pwd)
DEMO="$ROOT/demo"
DEVICE=demo-device-001

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$DEMO"
mkdir -p "$DEMO/device"

step "1. Create a development CA (root, signing CA, chain, localhost TLS certificate)"
"$BIN/xbootctl" ca init --dir "$DEMO/ca"

step "2. Configure xbootd: HTTPS on 127.0.0.1, SQLite registry, allowlist enrollment"
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
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
PORT=""
for _ in $(seq 1 100); do
  PORT=$(sed -n 's|.*listening on https://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$DEMO/xbootd.log" | head -n1)
  [ -n "$PORT" ] && break
  kill -0 $PID 2>/dev/null || break
  sleep 0.1
done
[ -n "$PORT" ] || { cat "$DEMO/xbootd.log"; exit 1; }
URL="https://127.0.0.1:$PORT"
for _ in $(seq 1 50); do
  curl -sf --max-time 2 --cacert "$DEMO/ca/root-ca.pem" "$URL/healthz" >/dev/null && break
  sleep 0.1
done
echo "xbootd is up at $URL: $(curl -s --cacert "$DEMO/ca/root-ca.pem" "$URL/healthz")"

step "4. Register the device $DEVICE"
"$BIN/xbootctl" device add "$DEVICE" --db "sqlite:$DEMO/xboot.db"

step "5. On the device: generate a key (it never leaves the device) and a CSR with CN=$DEVICE"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$DEMO/device/device.key" 2>/dev/null
chmod 600 "$DEMO/device/device.key"
openssl req -new -key "$DEMO/device/device.key" -subj "/CN=$DEVICE" -outform DER -out "$DEMO/device/device.csr.der"
echo "CSR: $(stat -c %s "$DEMO/device/device.csr.der") bytes, EC P-256, signed with the device key"

step "6. Enroll: POST $URL/api/certificate (the original XBoot wire format)"
printf '{"RegistrationId":"%s","Csr":"%s"}' "$DEVICE" "$(base64 -w0 "$DEMO/device/device.csr.der")" >"$DEMO/device/request.json"
STATUS=$(curl -s -o "$DEMO/device/response.json" -w '%{http_code}' --max-time 20 \
  --cacert "$DEMO/ca/root-ca.pem" --data-binary "@$DEMO/device/request.json" -H 'Content-Type: application/json' \
  "$URL/api/certificate")
echo "HTTP $STATUS"
[ "$STATUS" = 200 ] || { cat "$DEMO/device/response.json"; echo; exit 1; }
jq -r .Certificate "$DEMO/device/response.json" | base64 -d | openssl x509 -inform DER -out "$DEMO/device/device.pem"

step "7. The certificate the device received"
openssl x509 -in "$DEMO/device/device.pem" -noout -subject -issuer -startdate -enddate -serial -ext basicConstraints,keyUsage,extendedKeyUsage
echo
echo -n "openssl verify: "
openssl verify -CAfile "$DEMO/ca/root-ca.pem" -untrusted "$DEMO/ca/signing-ca.pem" "$DEMO/device/device.pem"

step "8. The registry recorded it before answering"
"$BIN/xbootctl" device show "$DEVICE" --db "sqlite:$DEMO/xboot.db"

step "9. Use it: mutual TLS to a server that trusts only the XBoot root (as an MQTT broker would)"
openssl s_server -accept 127.0.0.1:0 -cert "$DEMO/ca/tls.pem" -key "$DEMO/ca/tls.key" \
  -CAfile "$DEMO/ca/root-ca.pem" -Verify 2 -verify_return_error -naccept 1 -www \
  >"$DEMO/s_server.log" 2>&1 &
SPID=$!
SPORT=""
for _ in $(seq 1 50); do
  SPORT=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$DEMO/s_server.log")
  [ -n "$SPORT" ] && break
  sleep 0.1
done
printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$SPORT" -quiet \
  -cert "$DEMO/device/device.pem" -key "$DEMO/device/device.key" -cert_chain "$DEMO/ca/signing-ca.pem" \
  -CAfile "$DEMO/ca/root-ca.pem" -verify_return_error >/dev/null 2>&1 || true
wait $SPID 2>/dev/null || true
echo "what the server verified:"
grep -E "^depth=" "$DEMO/s_server.log" | sed 's/^/  /'
if grep -A1 "^depth=0 CN = $DEVICE\$" "$DEMO/s_server.log" | grep -q "verify return:1"; then
  echo "mutual TLS: the server accepted the device's certificate"
else
  echo "mutual TLS failed:"; cat "$DEMO/s_server.log"; exit 1
fi

step "10. A second enrollment of the same device is refused (one certificate per device)"
curl -s --max-time 20 --cacert "$DEMO/ca/root-ca.pem" -H "Content-Type: application/json" \
  --data-binary "@$DEMO/device/request.json" "$URL/api/certificate"
echo

step "11. Stop xbootd"
kill -TERM $PID
wait $PID || true
trap - EXIT
tail -n 4 "$DEMO/xbootd.log"
echo
echo "Demo files are in ./demo (CA in demo/ca, device key and certificate in demo/device)."
