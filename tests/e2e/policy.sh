#!/usr/bin/env bash
# Who gets a certificate: what an operator relies on. By default only registered, enabled
# devices are issued, and each only once; allow_reenroll = true lifts the "once"; mode = open
# issues to any valid ID (and says so in the log). Concurrent requests for one device cannot
# produce two certificates.
. "$(dirname "$0")/lib.sh"

verify() { openssl verify -CAfile "$XB_TMP/ca/root-ca.pem" -untrusted "$XB_TMP/ca/signing-ca.pem" "$1" >/dev/null 2>&1; }
enroll() { # enroll ID [TYPE]: a fresh CSR for ID, posted; XB_STATUS/XB_BODY set
  xb_csr "${2:-ec-p256}" "$1" "$XB_TMP/$1"
  xb_post "$(xb_enroll_body "$1" "$XB_TMP/$1.der")"
}

xb_ca_init

# ---- allowlist (the default: no [enroll] section at all) ----
xb_write_config
xb_start_server || { xb_bad "server starts"; xb_finish; exit 1; }
xb_check "no open-mode warning in allowlist mode" sh -c "! grep -qi 'mode = open' '$XB_TMP/xbootd.log'"

enroll stranger
xb_expect_error "unregistered device" 403 device_unknown 0

xb_ctl device add dev-a dev-b >/dev/null
xb_ctl device disable dev-a >/dev/null
enroll dev-a
xb_expect_error "disabled device" 403 device_disabled 0
xb_ctl device enable dev-a >/dev/null
enroll dev-a
xb_eq "re-enabled device: 200" "$XB_STATUS" 200
xb_save_cert "$XB_TMP/dev-a-1.pem"
xb_check "re-enabled device: certificate verifies" verify "$XB_TMP/dev-a-1.pem"
xb_eq "re-enabled device: one row" "$(xb_cert_rows dev-a)" 1

enroll dev-a rsa-2048
xb_expect_error "second enrollment" 409 already_enrolled 1
xb_eq "second enrollment: still exactly one row for dev-a" "$(xb_cert_rows dev-a)" 1

# Disabling an enrolled device: disabled wins over enrolled (the operator's latest word).
xb_ctl device disable dev-a >/dev/null
enroll dev-a
xb_eq "enrolled then disabled: 403" "$XB_STATUS" 403
xb_eq "enrolled then disabled: device_disabled" "$(xb_json error)" device_disabled
xb_ctl device enable dev-a >/dev/null
xb_stop_server

# ---- allow_reenroll = true ----
xb_write_config "[enroll]" "allow_reenroll = true"
xb_start_server || { xb_bad "server starts with allow_reenroll"; xb_finish; exit 1; }
enroll dev-a
xb_eq "allow_reenroll: second enrollment of dev-a 200" "$XB_STATUS" 200
xb_save_cert "$XB_TMP/dev-a-2.pem"
xb_eq "allow_reenroll: two rows for dev-a" "$(xb_cert_rows dev-a)" 2
xb_check "allow_reenroll: first certificate verifies" verify "$XB_TMP/dev-a-1.pem"
xb_check "allow_reenroll: second certificate verifies" verify "$XB_TMP/dev-a-2.pem"
s1=$(openssl x509 -in "$XB_TMP/dev-a-1.pem" -noout -serial)
s2=$(openssl x509 -in "$XB_TMP/dev-a-2.pem" -noout -serial)
xb_check "allow_reenroll: the two serials differ" test "$s1" != "$s2"
xb_eq "allow_reenroll: both serials recorded" \
  "$(xb_sql "select count(distinct serial) from certificates where reg_id='dev-a'")" 2
enroll dev-b
xb_eq "allow_reenroll: first enrollment of dev-b 200" "$XB_STATUS" 200
enroll dev-b
xb_eq "allow_reenroll: second enrollment of dev-b 200" "$XB_STATUS" 200
xb_eq "allow_reenroll: two rows for dev-b" "$(xb_cert_rows dev-b)" 2
# Re-enrollment does not open the door to strangers or disabled devices.
enroll stranger
xb_expect_error "allow_reenroll: unregistered device" 403 device_unknown "$(xb_cert_rows)"
xb_ctl device disable dev-b >/dev/null
enroll dev-b
xb_expect_error "allow_reenroll: disabled device" 403 device_disabled "$(xb_cert_rows)"
xb_stop_server

# ---- mode = open ----
xb_write_config "[enroll]" "mode = open"
xb_start_server || { xb_bad "server starts in open mode"; xb_finish; exit 1; }
xb_check "open mode: a warning at start" grep -qiE 'warn.*mode = open|mode = open.*(warn|development)' "$XB_TMP/xbootd.log"
rows=$(xb_cert_rows)
# (64 characters: the most openssl req puts in a CN; longer IDs are tried below.)
for id in anyone-1 "Some.Device:42" "x" "$(printf 'b%.0s' $(seq 1 64))"; do
  enroll "$id"
  xb_eq "open mode: '${id:0:20}' (${#id} chars) 200" "$XB_STATUS" 200
  rows=$((rows + 1))
  xb_save_cert "$XB_TMP/open.pem" && xb_check "open mode: '${id:0:20}' certificate verifies" verify "$XB_TMP/open.pem"
done
xb_eq "open mode: one row per issuance" "$(xb_cert_rows)" "$rows"
# Registration IDs may have up to 128 characters (Azure DPS), X.520 says a CN has at most 64.
# The device's CSR already carries such a CN (python cryptography can be told to make one), and
# DPS matches CN to the ID, so it is issued as asked.
long_csr() { # long_csr ID OUT.der
  "$XB_PYTHON" - "$1" "$2" <<'PY' 2>/dev/null
import sys, warnings
warnings.simplefilter("ignore")
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes, serialization
k = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sys.argv[1], _validate=False)])
csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(k, hashes.SHA256())
open(sys.argv[2], "wb").write(csr.public_bytes(serialization.Encoding.DER))
PY
}
for n in 65 128; do
  id=$(printf 'L%.0s' $(seq 1 "$n"))
  if ! long_csr "$id" "$XB_TMP/long$n.der"; then xb_bad "$n-character CN: python3-cryptography missing"; continue; fi
  xb_post "$(xb_enroll_body "$id" "$XB_TMP/long$n.der")"
  case "$XB_STATUS" in
    200) rows=$((rows + 1))
         xb_save_cert "$XB_TMP/long.pem"
         xb_contains "open mode: $n-character ID: CN is the ID" \
           "$(openssl x509 -in "$XB_TMP/long.pem" -noout -subject -nameopt RFC2253)" "CN=$id" ;;
    *) xb_bad "open mode: $n-character ID (a valid registration ID) answered $XB_STATUS: ${XB_BODY:0:200}" ;;
  esac
  xb_eq "open mode: $n-character ID: rows" "$(xb_cert_rows)" "$rows"
done
enroll anyone-1
xb_expect_error "open mode: second request for the same ID" 409 already_enrolled "$rows"
xb_eq "open mode: still one row for anyone-1" "$(xb_cert_rows anyone-1)" 1
# Azure DPS treats registration IDs without case: ANYONE-1 is the same device, enrolled already.
enroll ANYONE-1
xb_expect_error "open mode: the same ID in another case" 409 already_enrolled "$rows"
# Open is not lawless: IDs are still validated, the CN still has to match.
xb_csr ec-p256 "bad id" "$XB_TMP/badid"
xb_post "$(xb_enroll_body "bad id" "$XB_TMP/badid.der")"
xb_expect_error "open mode: invalid ID" 400 invalid_registration_id "$rows"
xb_csr ec-p256 someone-else "$XB_TMP/se"
xb_post "$(xb_enroll_body anyone-2 "$XB_TMP/se.der")"
xb_expect_error "open mode: CN mismatch" 400 subject_mismatch "$rows"
# A device disabled in the registry stays refused in open mode.
xb_ctl device add blocked >/dev/null && xb_ctl device disable blocked >/dev/null
enroll blocked
xb_expect_error "open mode: a disabled device" 403 device_disabled "$rows"
xb_stop_server

# ---- race: 8 concurrent first enrollments of one device ----
xb_write_config
sed -i 's/^threads = .*/threads = 4/' "$XB_TMP/xboot.conf"
xb_start_server || { xb_bad "server starts with 4 workers"; xb_finish; exit 1; }
xb_ctl device add racer >/dev/null
for i in $(seq 1 8); do
  xb_csr ec-p256 racer "$XB_TMP/racer-$i"
  xb_enroll_body racer "$XB_TMP/racer-$i.der" >"$XB_TMP/racer-$i.json"
done
pids=()
for i in $(seq 1 8); do
  curl -s -o "$XB_TMP/racer-$i.out" -w '%{http_code}' --max-time 20 \
    --cacert "$XB_TMP/ca/root-ca.pem" -X POST -H 'Content-Type:' \
    --data-binary "@$XB_TMP/racer-$i.json" "$XB_URL/api/certificate" >"$XB_TMP/racer-$i.status" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
ok=0 conflict=0 other=""
for i in $(seq 1 8); do
  st=$(cat "$XB_TMP/racer-$i.status")
  case "$st" in
    200) ok=$((ok + 1)) ;;
    409) conflict=$((conflict + 1))
         grep -q '"already_enrolled"' "$XB_TMP/racer-$i.out" || other="$other 409-without-code" ;;
    *) other="$other $st" ;;
  esac
done
xb_eq "race: exactly one 200" "$ok" 1
xb_eq "race: seven 409" "$conflict" 7
xb_eq "race: no other answer" "$other" ""
xb_eq "race: exactly one row" "$(xb_cert_rows racer)" 1
# The recorded certificate is the one that was sent.
for i in $(seq 1 8); do
  [ "$(cat "$XB_TMP/racer-$i.status")" = 200 ] || continue
  cp "$XB_TMP/racer-$i.out" "$XB_TMP/resp.json"
  xb_save_cert "$XB_TMP/racer.pem"
  xb_check "race: the winner's certificate verifies" verify "$XB_TMP/racer.pem"
  xb_eq "race: the row is the winner's certificate" \
    "$(xb_sql "select upper(serial) from certificates where reg_id='racer'")" \
    "$(openssl x509 -in "$XB_TMP/racer.pem" -noout -serial | cut -d= -f2)"
done
xb_eq "race: eight log lines" "$(grep -c 'reg_id=racer ' "$XB_TMP/xbootd.log")" 8
xb_stop_server
xb_finish
