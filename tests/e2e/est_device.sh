#!/usr/bin/env bash
# The device side of EST (RFC 7030) against a real xbootd: xboot-enroll --protocol est enrolls
# (HTTP Basic, open mode), --cacerts writes the CA certificates, --renew renews over mutual TLS
# with a new key when due and does nothing when not, falls back to bootstrap enrollment when
# the stored certificate has expired; a tampered renewal answer (fake server) leaves the old
# key and certificate stored and valid; libxboot's own EST enroll + renew round trip, also
# under valgrind.
#
# Due-ness without waiting months: xbootd clips certificates to its signing CA's lifetime and
# backdates notBefore by 5 minutes, so under a signing CA that ends in 2 hours a fresh
# certificate has 5 of ~125 minutes (4%) behind it: due at --renew-threshold 1, not at 80.
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
ENROLL=$XB_BIN/xboot-enroll
CA=$XB_TMP/ca
FAKE_PID=""

ed_cleanup() {
  [ -n "$FAKE_PID" ] && { kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null; }
  xb_cleanup
}
trap ed_cleanup EXIT

enroll() { # enroll ARGS...: sets RC; stdout/stderr in $XB_TMP/out, $XB_TMP/err
  timeout 120 "$ENROLL" --server "${SERVER:-$XB_URL}" --trust "$CA/root-ca.pem" --retries 0 "$@" \
    >"$XB_TMP/out" 2>"$XB_TMP/err"
  RC=$?
}
err() { cat "$XB_TMP/err"; }
jf() { jq -r "$1 // empty" "$XB_TMP/out" 2>/dev/null; }
sums() { (cd "$1" && sha256sum device.key device.pem chain.pem 2>&1); }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr A-F a-f; }
verify() { openssl verify -CAfile "$CA/root-ca.pem" -untrusted "$CA/signing-ca.pem" "$1" 2>&1; }
key_pub() { openssl pkey -in "$1" -pubout; }

# Re-issue the signing CA (same key and subject, same extensions) to end in $1 seconds.
short_signing_ca() {
  "$XB_PYTHON" - "$CA" "$1" <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
d, secs = sys.argv[1], int(sys.argv[2])
load = lambda n: open("%s/%s" % (d, n), "rb").read()
root = x509.load_pem_x509_certificate(load("root-ca.pem"))
root_key = serialization.load_pem_private_key(load("root-ca.key"), None)
old = x509.load_pem_x509_certificate(load("signing-ca.pem"))
now = datetime.datetime.now(datetime.timezone.utc)
b = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(root.subject)
     .public_key(old.public_key()).serial_number(x509.random_serial_number())
     .not_valid_before(now - datetime.timedelta(hours=1))
     .not_valid_after(now + datetime.timedelta(seconds=secs)))
for ext in old.extensions:
    b = b.add_extension(ext.value, ext.critical)
cert = b.sign(root_key, hashes.SHA256())
pem = cert.public_bytes(serialization.Encoding.PEM)
open("%s/signing-ca.pem" % d, "wb").write(pem)
open("%s/chain.pem" % d, "wb").write(pem + load("root-ca.pem"))
PY
}

# ---- set-up: a CA whose signing CA lives 2 hours; xbootd in open mode ----
xb_ca_init
short_signing_ca 7200 || { xb_bad "cannot re-issue the signing CA"; xb_finish; exit 1; }
echo s3cret >"$XB_TMP/cred"
xb_write_config "[enroll]" "mode = open" "allow_reenroll = true"
xb_start_server || exit 1

# ---- usage ----
enroll --id dev-u --out "$XB_TMP/st-u" --protocol json
xb_eq "unknown --protocol: exit 2" "$RC" 2
enroll --id dev-u --out "$XB_TMP/st-u" --protocol est --est-label ../x
xb_eq "--est-label with a slash: exit 2" "$RC" 2
enroll --id dev-u --out "$XB_TMP/st-u" --renew-threshold 50
xb_eq "--renew-threshold without --renew: exit 2" "$RC" 2
enroll --id dev-u --out "$XB_TMP/st-u" --renew --renew-threshold 100
xb_eq "--renew-threshold 100: exit 2" "$RC" 2

# ---- cacerts ----
enroll --cacerts "$XB_TMP/cacerts.pem" --json
xb_eq "--cacerts: exit 0" "$RC" 0
xb_eq "--cacerts: JSON count" "$(jf .count)" 2
xb_eq "--cacerts: 2 certificates written" "$(grep -c 'BEGIN CERTIFICATE' "$XB_TMP/cacerts.pem")" 2
xb_eq "--cacerts: signing CA first" \
  "$(openssl x509 -in "$XB_TMP/cacerts.pem" -noout -fingerprint)" \
  "$(openssl x509 -in "$CA/signing-ca.pem" -noout -fingerprint)"

# ---- EST enrollment (HTTP Basic) ----
ST=$XB_TMP/st-est
enroll --id dev-est --out "$ST" --protocol est --credential-file "$XB_TMP/cred" --json
xb_eq "EST enroll: exit 0" "$RC" 0
[ "$RC" = 0 ] || err
xb_eq "EST enroll: status issued" "$(jf .status)" issued
xb_contains "EST enroll: went to simpleenroll" "$(err)" "/.well-known/est/simpleenroll"
xb_contains "EST enroll: the certificate verifies" "$(verify "$ST/device.pem")" "OK"
xb_eq "EST enroll: chain.pem holds signing CA and root" "$(grep -c 'BEGIN CERT' "$ST/chain.pem")" 2
xb_eq "EST enroll: recorded by xbootd" "$(xb_cert_rows dev-est)" 1

# ---- --renew: not due, then due ----
enroll --id dev-est --out "$ST" --renew --json
xb_eq "renew not due: exit 0" "$RC" 0
xb_eq "renew not due: status unchanged" "$(jf .status)" unchanged
xb_contains "renew not due: says so" "$(err)" "not due for renewal"
xb_eq "renew not due: nothing sent" "$(xb_cert_rows dev-est)" 1

OLD_SERIAL=$(serial_of "$ST/device.pem")
OLD_PUB=$(key_pub "$ST/device.key")
cp "$ST/device.key" "$XB_TMP/old.key"
cp "$ST/device.pem" "$XB_TMP/old.pem"
enroll --id dev-est --out "$ST" --renew --renew-threshold 1 --json
xb_eq "renew due: exit 0" "$RC" 0
[ "$RC" = 0 ] || err
xb_eq "renew due: status renewed" "$(jf .status)" renewed
xb_contains "renew due: says it is due" "$(err)" "due for renewal ("
xb_contains "renew due: over simplereenroll" "$(err)" "/.well-known/est/simplereenroll"
NEW_SERIAL=$(serial_of "$ST/device.pem")
xb_check "renew due: new serial" test "$NEW_SERIAL" != "$OLD_SERIAL"
xb_check "renew due: new key" test "$(key_pub "$ST/device.key")" != "$OLD_PUB"
xb_eq "renew due: the key matches the certificate" \
  "$(openssl x509 -in "$ST/device.pem" -noout -pubkey)" "$(key_pub "$ST/device.key")"
xb_contains "renew due: the new certificate verifies" "$(verify "$ST/device.pem")" "OK"
xb_eq "renew due: same subject" "$(openssl x509 -in "$ST/device.pem" -noout -subject)" \
  "$(openssl x509 -in "$XB_TMP/old.pem" -noout -subject)"
xb_eq "renew due: xbootd recorded it" \
  "$(xb_sql "select count(*) from certificates where serial='$NEW_SERIAL';")" 1
xb_contains "renew due: the registry lists the new serial last" \
  "$(xb_ctl cert list --id dev-est 2>&1 | tail -n1)" "$NEW_SERIAL"

# ---- the sample device renews a due certificate before it talks MQTT ----
# No broker here (its port is closed): renewal comes first, then the MQTT step fails, which is
# the part tests/e2e/mqtt.sh covers.
SD=$XB_TMP/sample
mkdir -p "$SD"
cp -r "$ST" "$SD/store"
closed_port=$("$XB_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$SD/device.conf" <<CONF
[xboot]
server = $XB_URL
trust_anchor = $CA/root-ca.pem
registration_id = dev-est
store_dir = store
renew_threshold = 1

[mqtt]
host = 127.0.0.1
port = $closed_port
messages = 1
CONF
before_rows=$(xb_cert_rows dev-est)
sample_out=$(timeout 60 "$XB_BIN/xboot-sample-device" -c "$SD/device.conf" 2>&1)
xb_contains "sample device: says the certificate is due" "$sample_out" "due for renewal"
xb_contains "sample device: renews over EST" "$sample_out" "Renewed certificate"
xb_eq "sample device: xbootd recorded the renewal" "$(xb_cert_rows dev-est)" $((before_rows + 1))
xb_check "sample device: the renewed certificate is a new one" \
  test "$(serial_of "$SD/store/device.pem")" != "$(serial_of "$ST/device.pem")"
xb_contains "sample device: the renewed certificate verifies" "$(verify "$SD/store/device.pem")" "OK"

# ---- a tampered renewal answer (fake server certifies another key): nothing changes ----
fake_log=$XB_TMP/fake.log
: >"$fake_log"
"$XB_PYTHON" "$HERE/fake_xboot_server.py" --cert "$CA/tls.pem" --key "$CA/tls.key" \
  --log "$fake_log" --port-file "$XB_TMP/fake.port" --timeout 60 --max-requests 10 --est \
  --sign-cert "$CA/signing-ca.pem" --sign-key "$CA/signing-ca.key" --est-chain "$CA/root-ca.pem" \
  --est-foreign-key --client-ca "$CA/root-ca.pem" >/dev/null 2>"$XB_TMP/fake.stderr" &
FAKE_PID=$!
for i in $(seq 1 100); do [ -s "$XB_TMP/fake.port" ] && break; sleep 0.1; done
BEFORE=$(sums "$ST")
SERVER=https://127.0.0.1:$(cat "$XB_TMP/fake.port") enroll --id dev-est --out "$ST" --renew \
  --renew-threshold 1 --json
xb_eq "tampered renewal: exit 1" "$RC" 1
xb_eq "tampered renewal: cert_key_mismatch" "$(jf .error)" cert_key_mismatch
xb_eq "tampered renewal: store unchanged" "$(sums "$ST")" "$BEFORE"
xb_contains "tampered renewal: stored certificate still verifies" "$(verify "$ST/device.pem")" OK
xb_contains "tampered renewal: renewal presented the client certificate" \
  "$(grep simplereenroll "$fake_log")" "cert=yes"
kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null; FAKE_PID=""

# ---- --renew with nothing stored enrolls ----
enroll --id dev-new --out "$XB_TMP/st-new" --renew --protocol est --credential-file "$XB_TMP/cred" --json
xb_eq "renew with nothing stored: enrolls" "$RC/$(jf .status)" "0/issued"

# ---- libxboot: EST enroll + renew round trip ----
out=$(timeout 120 "$XB_BIN/est_roundtrip" "$XB_URL" "$CA/root-ca.pem" dev-lib "$XB_TMP/st-lib" "$XB_TMP/cred" 2>&1)
xb_eq "libxboot round trip: exit 0" "$?" 0
xb_contains "libxboot round trip: due at 1%" "$out" "due 1"
xb_contains "libxboot round trip: new cert, new key, stored" "$out" "new_cert 1 new_key 1 issued 1 stored 1"

if [ "${XB_SANITIZE:-0}" != 1 ] && command -v valgrind >/dev/null; then
  timeout 240 valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    "$XB_BIN/est_roundtrip" "$XB_URL" "$CA/root-ca.pem" dev-vg "$XB_TMP/st-vg" "$XB_TMP/cred" \
    >"$XB_TMP/vg.out" 2>&1
  xb_eq "valgrind: EST enroll + renew clean" "$?" 0
fi

# ---- expired: --renew falls back to bootstrap enrollment ----
# A signing CA that ends in 15 s clips the certificate to it; wait it out, then restart xbootd
# with the 2-hour signing CA again (same key and subject: the chain still verifies).
cp "$CA/signing-ca.pem" "$XB_TMP/sca-2h.pem"
xb_stop_server
short_signing_ca 15
xb_start_server || exit 1
enroll --id dev-exp --out "$XB_TMP/st-exp" --protocol est --credential-file "$XB_TMP/cred"
xb_eq "short-lived enroll: exit 0" "$RC" 0
xb_stop_server
cp "$XB_TMP/sca-2h.pem" "$CA/signing-ca.pem"
cat "$CA/signing-ca.pem" "$CA/root-ca.pem" >"$CA/chain.pem"
for i in $(seq 1 40); do
  openssl x509 -in "$XB_TMP/st-exp/device.pem" -noout -checkend 0 >/dev/null || break
  sleep 0.5
done
xb_start_server || exit 1
enroll --id dev-exp --out "$XB_TMP/st-exp" --renew --protocol est --credential-file "$XB_TMP/cred" --json
xb_eq "expired: --renew enrolls again" "$RC/$(jf .status)" "0/issued"
xb_contains "expired: says it falls back" "$(err)" "falling back to bootstrap enrollment"
xb_contains "expired: the new certificate verifies" "$(verify "$XB_TMP/st-exp/device.pem")" OK

xb_finish
