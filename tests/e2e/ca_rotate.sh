#!/usr/bin/env bash
# Signing CA rotation: `xbootctl ca rotate` then SIGHUP to xbootd, under a bounded concurrent
# enrollment load. No request is lost (every one answered 200, every 200 recorded), every
# certificate verifies against the root through the signing CA that issued it (old or new),
# and afterwards enrollments, EST cacerts and the CRL all use the new CA. A reload that fails
# (certificate and key mismatched) is logged with its reason and changes nothing; rotate
# refuses without the root key.
. "$(dirname "$0")/lib.sh"

ROOT="$XB_TMP/ca/root-ca.pem"
CA="$XB_TMP/ca"
LOG="$XB_TMP/xbootd.log"
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
ski() { openssl x509 -in "$1" -noout -ext subjectKeyIdentifier | tail -n1 | tr -d ' '; }
aki() { openssl x509 -in "$1" -noout -ext authorityKeyIdentifier | sed -n '2p' | tr -d ' ' | sed 's/^keyid://'; }
verifies() { openssl verify "$@" >/dev/null 2>&1; }
reloaded() { grep -c "worker [0-9]*: CA reloaded" "$LOG"; }
# get_crl FILE: GET /crl (DER) into FILE; sets XB_STATUS.
get_crl() {
  XB_STATUS=$(curl -s -o "$1" -w '%{http_code}' --max-time 10 --cacert "$ROOT" "$XB_URL/crl")
}
# crl_signed_by CRL_DER SIGNING_CA_PEM: the CRL's signature verifies with that CA's key.
crl_signed_by() {
  openssl crl -inform DER -in "$1" -noout -CAfile "$2" 2>&1 | grep -q "verify OK"
}
# enroll ID: a fresh key and CSR; the certificate of a 200 in $XB_TMP/ID.pem.
enroll() {
  xb_csr ec-p256 "$1" "$XB_TMP/$1"
  xb_post "$(xb_enroll_body "$1" "$XB_TMP/$1.der")"
  [ "$XB_STATUS" = 200 ] && xb_save_cert "$XB_TMP/$1.pem"
}

xb_ca_init
# previous.pem does not exist yet: ca rotate makes it, and the reload reads it.
xb_write_config "[ca]" "previous = ca/previous.pem" "[enroll]" "mode = open"
xb_start_server || { xb_finish; exit 1; }
cp "$CA/signing-ca.pem" "$XB_TMP/old-signing.pem"
enroll renew-1
xb_eq "a device enrolls before the rotation" "$XB_STATUS" 200

get_crl "$XB_TMP/crl-before.der"
xb_eq "CRL before: 200" "$XB_STATUS" 200
xb_check "CRL before: signed by the first signing CA" crl_signed_by "$XB_TMP/crl-before.der" "$XB_TMP/old-signing.pem"

# ---- the load: 1500 devices on 8 connections, the rotation in the middle of it ----
COUNT=1500
: >"$XB_TMP/load.out"
"$XB_PYTHON" "$(dirname "$0")/enroll_many.py" "$XB_URL" "$ROOT" load "$COUNT" 8 "$XB_TMP/load.out" &
LOAD=$!
lines() { wc -l <"$XB_TMP/load.out"; }
for i in $(seq 1 300); do [ "$(lines)" -ge 150 ] && break; sleep 0.1; done
xb_check "load: under way before the rotation" [ "$(lines)" -ge 150 ]

OUT=$("$XB_BIN/xbootctl" ca rotate --dir "$CA" 2>&1)
xb_eq "ca rotate: exit 0" "$?" 0
kill -HUP "$XB_PID"
for i in $(seq 1 100); do [ "$(reloaded)" -ge 2 ] && break; sleep 0.1; done
xb_eq "reload: both workers reloaded" "$(reloaded)" 2
xb_check "load: still under way after the reload ($(lines) of $COUNT answered)" kill -0 "$LOAD"
for i in $(seq 1 600); do kill -0 "$LOAD" 2>/dev/null || break; sleep 0.1; done
kill "$LOAD" 2>/dev/null
wait "$LOAD" 2>/dev/null

TOTAL=$(lines)
OK=$(grep -cvE '^[0-9]{3} ' "$XB_TMP/load.out")
xb_eq "load: every request answered (none lost)" "$TOTAL" "$COUNT"
xb_eq "load: every answer a 200" "$OK" "$TOTAL"
xb_eq "load: the registry holds one row per 200 (and renew-1's)" "$(xb_cert_rows)" "$((OK + 1))"
xb_contains "ca rotate: names the kept files" "$OUT" "signing-ca.2"
KEPT=$(ls "$CA"/signing-ca.*Z.pem 2>/dev/null | head -n1)
xb_check "ca rotate: the old signing CA is kept" [ -n "$KEPT" ]
[ -n "$KEPT" ] && xb_eq "ca rotate: kept as it was" "$(fingerprint "$KEPT")" "$(fingerprint "$XB_TMP/old-signing.pem")"
xb_check "ca rotate: the old key is kept" [ -e "${KEPT%.pem}.key" ]
xb_check "ca rotate: new signing CA verifies against the same root" verifies -CAfile "$ROOT" "$CA/signing-ca.pem"
xb_eq "ca rotate: new AKI is the root's SKI" "$(aki "$CA/signing-ca.pem")" "$(ski "$ROOT")"
xb_check "ca rotate: a new key" [ "$(ski "$CA/signing-ca.pem")" != "$(ski "$XB_TMP/old-signing.pem")" ]
xb_contains "ca rotate: a new generation in the name" \
  "$(openssl x509 -in "$CA/signing-ca.pem" -noout -subject)" "Signing CA G2"

# ---- every certificate of the load, through its own signing CA ----
mkdir -p "$XB_TMP/certs"
xb_sql "select serial || ' ' || $(xb_sql_hex der) from certificates;" | "$XB_PYTHON" -c '
import sys, binascii, ssl
out = sys.argv[1]
for line in sys.stdin:
    serial, der = line.split()
    open(f"{out}/{serial}.pem", "w").write(ssl.DER_cert_to_PEM_cert(binascii.unhexlify(der)))
' "$XB_TMP/certs"
N_OLD=$(cd "$XB_TMP/certs" && openssl verify -CAfile "$ROOT" -untrusted "$XB_TMP/old-signing.pem" ./*.pem 2>/dev/null | grep -c ': OK$')
N_NEW=$(cd "$XB_TMP/certs" && openssl verify -CAfile "$ROOT" -untrusted "$CA/signing-ca.pem" ./*.pem 2>/dev/null | grep -c ': OK$')
xb_eq "every certificate verifies through exactly one signing CA" $((N_OLD + N_NEW)) "$((OK + 1))"
xb_check "some were issued by the old CA ($N_OLD)" [ "$N_OLD" -ge 1 ]
xb_check "some were issued by the new CA ($N_NEW)" [ "$N_NEW" -ge 1 ]

# ---- after the reload: the new CA everywhere ----
enroll after-1
xb_eq "enroll after reload: 200" "$XB_STATUS" 200
xb_eq "enroll after reload: issued by the new CA (AKI)" "$(aki "$XB_TMP/after-1.pem")" "$(ski "$CA/signing-ca.pem")"
xb_check "enroll after reload: verifies through the new chain" \
  verifies -CAfile "$ROOT" -untrusted "$CA/signing-ca.pem" "$XB_TMP/after-1.pem"
xb_json Chain.0 | base64 -d | openssl x509 -inform DER -out "$XB_TMP/chain0.pem" 2>/dev/null
xb_eq "enroll after reload: the answer's chain starts with the new CA" \
  "$(fingerprint "$XB_TMP/chain0.pem")" "$(fingerprint "$CA/signing-ca.pem")"

# A certificate of the rotated-out CA still renews over EST ([ca] previous = the previous.pem
# that ca rotate keeps), and the renewal is issued by the new CA.
xb_check "ca rotate kept the old signing CA in previous.pem" \
  cmp -s "$CA/previous.pem" "$XB_TMP/old-signing.pem"
xb_csr ec-p256 renew-1 "$XB_TMP/renew-1b"
base64 <"$XB_TMP/renew-1b.der" >"$XB_TMP/renew.b64"
xb_request POST /.well-known/est/simplereenroll -H 'Content-Type: application/pkcs10' \
  --data-binary "@$XB_TMP/renew.b64" --cert "$XB_TMP/renew-1.pem" --key "$XB_TMP/renew-1.key"
xb_eq "EST renewal with the old CA's certificate: 200" "$XB_STATUS" 200
base64 -d <"$XB_TMP/resp.json" | openssl pkcs7 -inform DER -print_certs -out "$XB_TMP/renewed.pem" 2>/dev/null
xb_eq "the renewed certificate is the new CA's" "$(aki "$XB_TMP/renewed.pem")" "$(ski "$CA/signing-ca.pem")"

xb_request GET /.well-known/est/cacerts
xb_eq "EST cacerts: 200" "$XB_STATUS" 200
base64 -d <"$XB_TMP/resp.json" | openssl pkcs7 -inform DER -print_certs -out "$XB_TMP/cacerts.pem" 2>/dev/null
xb_eq "EST cacerts: the new signing CA first" "$(fingerprint "$XB_TMP/cacerts.pem")" "$(fingerprint "$CA/signing-ca.pem")"

get_crl "$XB_TMP/crl-after.der"
xb_eq "CRL after: 200" "$XB_STATUS" 200
xb_check "CRL after: signed by the new signing CA" crl_signed_by "$XB_TMP/crl-after.der" "$CA/signing-ca.pem"
get_crl "$XB_TMP/crl-again.der"
xb_check "CRL after: served as stored, not signed again" cmp -s "$XB_TMP/crl-after.der" "$XB_TMP/crl-again.der"

# ---- a reload that fails: the old certificate with the new key ----
cp "$CA/signing-ca.pem" "$XB_TMP/new-signing.pem"
cp "$XB_TMP/old-signing.pem" "$CA/signing-ca.pem"
BEFORE=$(reloaded)
kill -HUP "$XB_PID"
xb_check "bad reload: logged with its reason" xb_wait_log "reload failed, still serving with the old CA: .*key" 10
sleep 0.3 # a worker that did reload would have logged by now
xb_eq "bad reload: no worker reloaded" "$(reloaded)" "$BEFORE"
enroll after-2
xb_eq "bad reload: still enrolling" "$XB_STATUS" 200
xb_eq "bad reload: still the current (new) CA" "$(aki "$XB_TMP/after-2.pem")" "$(ski "$XB_TMP/new-signing.pem")"
cp "$XB_TMP/new-signing.pem" "$CA/signing-ca.pem"

# ---- rotate refuses without the root key ----
mv "$CA/root-ca.key" "$XB_TMP/root-ca.key"
OUT=$("$XB_BIN/xbootctl" ca rotate --dir "$CA" 2>&1)
xb_eq "rotate without the root key: exit 1" "$?" 1
xb_contains "rotate without the root key: says why" "$OUT" "root-ca.key is absent"
xb_eq "rotate without the root key: signing CA unchanged" "$(fingerprint "$CA/signing-ca.pem")" "$(fingerprint "$XB_TMP/new-signing.pem")"
mv "$XB_TMP/root-ca.key" "$CA/root-ca.key"

# ---- an enrollment signed before a reload and answered after it ----
# The webhook holds it for 2 s after signing; the rotation and reload happen meanwhile. Its
# answer must carry the chain of the CA that signed it, not the new one.
xb_stop_server
mkdir -p "$XB_TMP/wh"
xb_start_test_webhook "$XB_TMP/wh"
xb_write_config "[enroll]" "mode = open" "[policy]" \
  "webhook_url = https://127.0.0.1:$XB_WH_PORT/check" "webhook_ca = $XB_TMP/wh/ca.pem" \
  "webhook_timeout_ms = 8000"
xb_start_server || { xb_finish; exit 1; }
cp "$CA/signing-ca.pem" "$XB_TMP/signer-g2.pem"
xb_csr ec-p256 late-1 "$XB_TMP/late-1"
xb_enroll_body late-1 "$XB_TMP/late-1.der" >"$XB_TMP/late.json"
curl -s -o "$XB_TMP/late-resp.json" --max-time 20 --cacert "$ROOT" -X POST -H 'Content-Type:' \
  --data-binary "@$XB_TMP/late.json" "$XB_URL/api/certificate" &
LATE=$!
for i in $(seq 1 50); do grep -q late-1 "$XB_TMP/wh/requests.jsonl" 2>/dev/null && break; sleep 0.1; done
BEFORE=$(reloaded)
"$XB_BIN/xbootctl" ca rotate --dir "$CA" >/dev/null
kill -HUP "$XB_PID"
for i in $(seq 1 100); do [ "$(reloaded)" -ge $((BEFORE + 2)) ] && break; sleep 0.1; done
xb_check "late: the reload happened while the enrollment waited" kill -0 "$LATE"
for i in $(seq 1 200); do kill -0 "$LATE" 2>/dev/null || break; sleep 0.1; done
wait "$LATE" 2>/dev/null
jq -r .Certificate "$XB_TMP/late-resp.json" | base64 -d | openssl x509 -inform DER -out "$XB_TMP/late-1.pem" 2>/dev/null
jq -r '.Chain[0]' "$XB_TMP/late-resp.json" | base64 -d | openssl x509 -inform DER -out "$XB_TMP/late-chain0.pem" 2>/dev/null
xb_eq "late: signed by the CA before the reload" "$(aki "$XB_TMP/late-1.pem")" "$(ski "$XB_TMP/signer-g2.pem")"
xb_eq "late: answered with that CA's chain" "$(fingerprint "$XB_TMP/late-chain0.pem")" "$(fingerprint "$XB_TMP/signer-g2.pem")"
xb_check "late: verifies through the chain it was sent" \
  verifies -CAfile "$ROOT" -untrusted "$XB_TMP/late-chain0.pem" "$XB_TMP/late-1.pem"
enroll allow-3
xb_eq "after the second rotation: issued by G3" "$(aki "$XB_TMP/allow-3.pem")" "$(ski "$CA/signing-ca.pem")"
xb_contains "after the second rotation: named G3" \
  "$(openssl x509 -in "$CA/signing-ca.pem" -noout -subject)" "Signing CA G3"

xb_stop_server
xb_stop_pid "$XB_WH_PID"
xb_finish
