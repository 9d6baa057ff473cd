#!/usr/bin/env bash
# Idempotent enrollment: a device that lost the answer to its enrollment retries with the same
# key and gets the same certificate back (nothing new signed or recorded), while any other key,
# a CSR without a valid signature, an expired certificate or one from another signing CA still
# gets the refusals of a device that is enrolled already.
. "$(dirname "$0")/lib.sh"

ROOT="$XB_TMP/ca/root-ca.pem"
replays=0 # replays answered so far, for the metrics check

post_csr() { # post_csr ID DER: XB_STATUS/XB_BODY set
  xb_post "$(xb_enroll_body "$1" "$2")"
}
# The certificate of the last answer verifies against the root with the chain the answer sent.
verify_answer() {
  local i n
  n=$(jq -r '.Chain | length' "$XB_TMP/resp.json")
  : >"$XB_TMP/answer-chain.pem"
  for i in $(seq 0 $((n - 1))); do
    xb_json "Chain.$i" | base64 -d | openssl x509 -inform DER >>"$XB_TMP/answer-chain.pem"
  done
  xb_save_cert "$XB_TMP/answer.pem" &&
    openssl verify -CAfile "$ROOT" -untrusted "$XB_TMP/answer-chain.pem" "$XB_TMP/answer.pem" >/dev/null 2>&1
}
# Flip the last byte of a DER CSR (inside its signature) into $2.
break_signature() {
  "$XB_PYTHON" - "$1" "$2" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[-1] ^= 0x01
open(sys.argv[2], "wb").write(bytes(b))
PY
}
# Another signing CA under the same root, in directory $1, valid for $2 more seconds.
other_signing_ca() {
  mkdir -p "$1"
  "$XB_PYTHON" - "$XB_TMP/ca" "$1" "$2" <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
src, out, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
root = x509.load_pem_x509_certificate(open(src + "/root-ca.pem", "rb").read())
root_key = serialization.load_pem_private_key(open(src + "/root-ca.key", "rb").read(), None)
key = ec.generate_private_key(ec.SECP256R1())
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
cert = (x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Replay Test Signing CA")]))
        .issuer_name(root.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(seconds=seconds))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(root_key, hashes.SHA256()))
pem = cert.public_bytes(serialization.Encoding.PEM)
open(out + "/signing-ca.pem", "wb").write(pem)
open(out + "/signing-ca.key", "wb").write(key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open(out + "/chain.pem", "wb").write(pem + root.public_bytes(serialization.Encoding.PEM))
print(int((now + datetime.timedelta(seconds=seconds)).timestamp()))
PY
}
# Start xbootd signing with the CA in directory $1 (relative to $XB_TMP); extra config lines follow.
start_with_ca() {
  local dir=$1; shift
  xb_stop_server
  xb_write_config "$@"
  sed -i "s|^cert = ca/signing-ca.pem|cert = $dir/signing-ca.pem|; s|^key = ca/signing-ca.key|key = $dir/signing-ca.key|; s|^chain = ca/chain.pem|chain = $dir/chain.pem|" \
    "$XB_TMP/xboot.conf"
  xb_start_server
}

xb_ca_init
xb_write_config
xb_start_server || { xb_bad "xbootd starts"; xb_finish; exit 1; }
xb_ctl device add dev-r1 dev-r2 dev-pss dev-race dev-rot >/dev/null

# ---- (1) the same request twice: the same certificate, one record ----
xb_csr ec-p256 dev-r1 "$XB_TMP/a"
post_csr dev-r1 "$XB_TMP/a.der"
xb_eq "first enrollment: 200" "$XB_STATUS" 200
serial=$(xb_json Serial)
cert=$(xb_json Certificate)
not_after=$(xb_json NotAfter)
chain=$(jq -c .Chain "$XB_TMP/resp.json")
post_csr dev-r1 "$XB_TMP/a.der"
xb_eq "the same request again: 200" "$XB_STATUS" 200
replays=$((replays + 1))
xb_eq "the same request again: the same serial" "$(xb_json Serial)" "$serial"
xb_check "the same request again: the same certificate bytes" test "$(xb_json Certificate)" = "$cert"
xb_eq "the same request again: the same NotAfter" "$(xb_json NotAfter)" "$not_after"
xb_eq "the same request again: the same chain" "$(jq -c .Chain "$XB_TMP/resp.json")" "$chain"
xb_eq "the same request again: still one certificate row" "$(xb_cert_rows dev-r1)" 1
# ---- (3) the replayed certificate is a good one ----
xb_check "the replayed certificate verifies with the chain it came with" verify_answer
xb_eq "the replayed certificate is for the CSR's key" \
  "$(openssl x509 -in "$XB_TMP/answer.pem" -noout -pubkey)" "$(openssl pkey -in "$XB_TMP/a.key" -pubout)"
xb_check "the log line says it was a replay" \
  xb_wait_log "reg_id=dev-r1 outcome=replayed status=200 ms=[0-9.]+ serial=$serial" 5
# A third time is no different (the device may retry more than once).
post_csr dev-r1 "$XB_TMP/a.der"
replays=$((replays + 1))
xb_eq "a third time: the same serial" "$(xb_json Serial)" "$serial"
# A new CSR (new signature, same key) is the same retry: what counts is the key.
openssl req -new -key "$XB_TMP/a.key" -subj /CN=dev-r1 -outform DER -out "$XB_TMP/a2.der" 2>/dev/null
post_csr dev-r1 "$XB_TMP/a2.der"
replays=$((replays + 1))
xb_eq "a fresh CSR for the same key: the same serial" "$(xb_json Serial)" "$serial"
xb_eq "replays wrote nothing" "$(xb_cert_rows)" 1

# ---- (2) another key for the same device: still one certificate ----
xb_csr ec-p256 dev-r1 "$XB_TMP/b"
post_csr dev-r1 "$XB_TMP/b.der"
xb_expect_error "another key for an enrolled device" 409 already_enrolled 1
xb_contains "another key: the message says why" "$(xb_json message)" "another key"

# ---- (5) no replay without proof of possession or with the wrong subject ----
break_signature "$XB_TMP/a.der" "$XB_TMP/a-badsig.der"
post_csr dev-r1 "$XB_TMP/a-badsig.der"
xb_expect_error "the right key, a broken signature" 400 csr_signature_invalid 1
openssl req -new -key "$XB_TMP/a.key" -subj /CN=someone-else -outform DER \
  -out "$XB_TMP/a-other.der" 2>/dev/null
post_csr dev-r1 "$XB_TMP/a-other.der"
xb_expect_error "the right key, another CN" 400 subject_mismatch 1
# A disabled device gets nothing, not even its own certificate again.
xb_ctl device disable dev-r1 >/dev/null
post_csr dev-r1 "$XB_TMP/a.der"
xb_expect_error "a disabled device retrying" 403 device_disabled 1
xb_ctl device enable dev-r1 >/dev/null

# RSA (.NET client style, RSA-PSS/SHA-512 signature) replays the same way.
xb_csr rsa-pss dev-pss "$XB_TMP/pss"
post_csr dev-pss "$XB_TMP/pss.der"
xb_eq "RSA-PSS device: 200" "$XB_STATUS" 200
pss_serial=$(xb_json Serial)
post_csr dev-pss "$XB_TMP/pss.der"
replays=$((replays + 1))
xb_eq "RSA-PSS device again: 200" "$XB_STATUS" 200
xb_eq "RSA-PSS device again: the same serial" "$(xb_json Serial)" "$pss_serial"
xb_eq "RSA-PSS device: one row" "$(xb_cert_rows dev-pss)" 1

# ---- a retry that overtakes its first request (both wait for the commit) ----
# An outside transaction holds the write lock, so both requests are signed before either is
# recorded; the commit refuses the second, which then gets the first one's certificate.
xb_csr ec-p256 dev-race "$XB_TMP/race"
xb_enroll_body dev-race "$XB_TMP/race.der" >"$XB_TMP/race.json"
xb_db_lock 2 "$XB_TMP/locked" & # 2 s: shorter than xbootd's 5 s busy timeout
locker=$!
for i in $(seq 1 100); do [ -e "$XB_TMP/locked" ] && break; sleep 0.1; done
pids=()
for i in 1 2; do
  curl -s -o "$XB_TMP/race-$i.out" -w '%{http_code}' --max-time 20 --cacert "$ROOT" -X POST \
    -H 'Content-Type:' --data-binary "@$XB_TMP/race.json" "$XB_URL/api/certificate" >"$XB_TMP/race-$i.status" &
  pids+=($!)
done
wait "${pids[@]}" "$locker"
xb_eq "overtaken retry: both answered 200" "$(cat "$XB_TMP/race-1.status") $(cat "$XB_TMP/race-2.status")" "200 200"
xb_eq "overtaken retry: the same serial" "$(jq -r .Serial "$XB_TMP/race-1.out")" "$(jq -r .Serial "$XB_TMP/race-2.out")"
xb_eq "overtaken retry: the same certificate" "$(jq -r .Certificate "$XB_TMP/race-1.out")" "$(jq -r .Certificate "$XB_TMP/race-2.out")"
xb_eq "overtaken retry: one row" "$(xb_cert_rows dev-race)" 1
xb_eq "overtaken retry: the row is the answered certificate" \
  "$(xb_sql "select serial from certificates where reg_id='dev-race'")" "$(jq -r .Serial "$XB_TMP/race-1.out")"
replays=$((replays + 1))

# ---- (6) metrics ----
xb_request GET /metrics
metric() { awk -v k="$1" '$1 == k {print $2}' "$XB_TMP/resp.json"; }
xb_eq "metrics: replays counted as outcome=replayed" \
  "$(metric 'xboot_enrollments_total{protocol="xboot",outcome="replayed"}')" "$replays"
xb_eq "metrics: issued counts only new certificates" \
  "$(metric 'xboot_enrollments_total{protocol="xboot",outcome="issued"}')" 3
xb_eq "metrics: refusals still counted by code" \
  "$(metric 'xboot_enrollments_total{protocol="xboot",outcome="already_enrolled"}')" 1

# ---- (4) only the current certificate is replayed ----
xb_stop_server
xb_write_config "[enroll]" "allow_reenroll = true"
xb_start_server || { xb_bad "xbootd starts with allow_reenroll"; xb_finish; exit 1; }
xb_csr ec-p256 dev-r2 "$XB_TMP/r2a"
xb_csr ec-p256 dev-r2 "$XB_TMP/r2b"
post_csr dev-r2 "$XB_TMP/r2a.der"
xb_eq "allow_reenroll: key A: 200" "$XB_STATUS" 200
serial_a=$(xb_json Serial)
post_csr dev-r2 "$XB_TMP/r2b.der"
xb_eq "allow_reenroll: key B: 200" "$XB_STATUS" 200
serial_b=$(xb_json Serial)
cert_b=$(xb_json Certificate)
xb_check "allow_reenroll: A and B have different serials" test "$serial_a" != "$serial_b"
xb_eq "allow_reenroll: two rows" "$(xb_cert_rows dev-r2)" 2
xb_stop_server
xb_write_config
xb_start_server || { xb_bad "xbootd restarts without allow_reenroll"; xb_finish; exit 1; }
post_csr dev-r2 "$XB_TMP/r2a.der"
xb_expect_error "key A, whose certificate is no longer current" 409 already_enrolled 5
post_csr dev-r2 "$XB_TMP/r2b.der"
xb_eq "key B, the current certificate's: 200" "$XB_STATUS" 200
xb_eq "key B: the current certificate's serial" "$(xb_json Serial)" "$serial_b"
xb_check "key B: the current certificate's bytes" test "$(xb_json Certificate)" = "$cert_b"
xb_eq "key B: still two rows" "$(xb_cert_rows dev-r2)" 2

# ---- a certificate of another signing CA is not sent with this CA's chain ----
xb_csr ec-p256 dev-rot "$XB_TMP/rot"
post_csr dev-rot "$XB_TMP/rot.der"
xb_eq "before the CA rotation: 200" "$XB_STATUS" 200
other_signing_ca "$XB_TMP/ca2" 86400 >/dev/null
start_with_ca ca2 || { xb_bad "xbootd starts with another signing CA"; xb_finish; exit 1; }
post_csr dev-rot "$XB_TMP/rot.der"
xb_expect_error "after the CA rotation, the old certificate's key" 409 already_enrolled 6
xb_contains "after the CA rotation: the message says why" "$(xb_json message)" "another signing CA"

# ---- an expired certificate is not sent again ----
# A signing CA that expires in a few seconds caps the certificate's notAfter at its own.
ca3_end=$(other_signing_ca "$XB_TMP/ca3" 6)
start_with_ca ca3 || { xb_bad "xbootd starts with a short-lived signing CA"; xb_finish; exit 1; }
xb_ctl device add dev-exp >/dev/null
xb_csr ec-p256 dev-exp "$XB_TMP/exp"
post_csr dev-exp "$XB_TMP/exp.der"
xb_eq "short-lived CA: 200" "$XB_STATUS" 200
post_csr dev-exp "$XB_TMP/exp.der"
xb_eq "short-lived CA: a replay before expiry: 200" "$XB_STATUS" 200
for i in $(seq 1 120); do [ "$(date +%s)" -gt "$ca3_end" ] && break; sleep 0.1; done # <= 12 s
post_csr dev-exp "$XB_TMP/exp.der"
xb_expect_error "the certificate has expired" 409 already_enrolled 7
xb_contains "expired: the message says why" "$(xb_json message)" "expired"
xb_stop_server
xb_finish
