#!/usr/bin/env bash
# Every key type a device may use is issued, and the certificate is what a user relies on:
# it verifies against the chain with OpenSSL and GnuTLS, carries the strict client profile,
# and its record is in the registry. Run for each CA key type.
. "$(dirname "$0")/lib.sh"

check_profile() { # check_profile PEM REGID KIND(ec|rsa) CA_DIGEST
  local pem=$1 id=$2 kind=$3 digest=$4 text
  text=$(openssl x509 -in "$pem" -noout -text)
  xb_check "$id: openssl verify against root + signing CA" \
    openssl verify -CAfile "$XB_TMP/ca/root-ca.pem" -untrusted "$XB_TMP/ca/signing-ca.pem" "$pem"
  cat "$pem" "$XB_TMP/ca/signing-ca.pem" >"$XB_TMP/gnutls-chain.pem"
  xb_check "$id: GnuTLS certtool --verify" \
    sh -c "certtool --verify --load-ca-certificate '$XB_TMP/ca/root-ca.pem' --infile '$XB_TMP/gnutls-chain.pem' >'$XB_TMP/certtool.out' 2>&1"
  xb_contains "$id: subject CN is the registration ID" \
    "$(openssl x509 -in "$pem" -noout -subject -nameopt RFC2253)" "CN=$id"
  xb_contains "$id: basicConstraints critical CA:FALSE" \
    "$(echo "$text" | grep -A1 'Basic Constraints')" "critical"
  xb_contains "$id: CA:FALSE" "$(echo "$text" | grep -A1 'Basic Constraints')" "CA:FALSE"
  local ku; ku=$(echo "$text" | grep -A1 'X509v3 Key Usage')
  xb_contains "$id: keyUsage critical" "$ku" "critical"
  if [ "$kind" = rsa ]; then
    xb_contains "$id: keyUsage digitalSignature + keyEncipherment" "$ku" "Digital Signature, Key Encipherment"
  else
    xb_eq "$id: keyUsage digitalSignature only" "$(echo "$ku" | tail -n1 | tr -d ' ')" "DigitalSignature"
  fi
  xb_eq "$id: EKU clientAuth only" \
    "$(echo "$text" | grep -A1 'Extended Key Usage' | tail -n1 | sed 's/^ *//')" "TLS Web Client Authentication"
  xb_check "$id: SKI present" grep -q "Subject Key Identifier" <<<"$text"
  local aki ski_ca
  aki=$(echo "$text" | grep -A1 'Authority Key Identifier' | tail -n1 | sed 's/^ *//; s/keyid://')
  ski_ca=$(openssl x509 -in "$XB_TMP/ca/signing-ca.pem" -noout -ext subjectKeyIdentifier | tail -n1 | sed 's/^ *//')
  xb_eq "$id: AKI = signing CA SKI" "$aki" "$ski_ca"
  xb_check "$id: no SAN or other requested extension copied" \
    sh -c "! echo '$text' | grep -qE 'Subject Alternative Name|CA:TRUE'"
  xb_contains "$id: signature $digest" "$(echo "$text" | grep -m1 'Signature Algorithm')" "$digest"
  local serial; serial=$(openssl x509 -in "$pem" -noout -serial | cut -d= -f2)
  xb_check "$id: serial has >= 120 bits (hex len ${#serial})" test "${#serial}" -ge 30
  # Validity: 365 days, notBefore a few minutes back.
  local nb na now
  nb=$(date -d "$(openssl x509 -in "$pem" -noout -startdate | cut -d= -f2)" +%s)
  na=$(date -d "$(openssl x509 -in "$pem" -noout -enddate | cut -d= -f2)" +%s)
  now=$(date +%s)
  xb_check "$id: notBefore backdated, within 10 min" test $((now - nb)) -ge 0 -a $((now - nb)) -le 600
  xb_check "$id: validity 365 days" test $(((na - nb - 300) / 86400)) -eq 365
  xb_eq "$id: one record in the registry" "$(xb_cert_rows "$id")" 1
  xb_eq "$id: recorded serial = certificate serial" \
    "$(xb_sql "select upper(serial) from certificates where reg_id='$id'")" "$serial"
}

run_for_ca() { # run_for_ca CA_KEY_TYPE EXPECTED_DIGEST
  local catype=$1 digest=$2
  rm -rf "$XB_TMP/ca"
  xb_db_reset
  xb_ca_init "$catype"
  xb_write_config
  xb_start_server || { xb_bad "start with $catype CA"; return; }
  local t id
  for t in ec-p256 ec-p384 rsa-2048 rsa-pss; do
    id="dev-$catype-$t"
    xb_ctl device add "$id" >/dev/null
    xb_csr "$t" "$id" "$XB_TMP/$id"
    xb_post "$(xb_enroll_body "$id" "$XB_TMP/$id.der")"
    xb_eq "$id: status 200" "$XB_STATUS" 200
    [ "$XB_STATUS" = 200 ] || { echo "$XB_BODY"; continue; }
    xb_save_cert "$XB_TMP/$id.pem"
    local kind=ec; case $t in rsa*) kind=rsa ;; esac
    check_profile "$XB_TMP/$id.pem" "$id" "$kind" "$digest"
    # The certificate is for the CSR's key.
    xb_eq "$id: certificate key = CSR key" \
      "$(openssl x509 -in "$XB_TMP/$id.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)" \
      "$(openssl pkey -in "$XB_TMP/$id.key" -pubout -outform DER | sha256sum)"
    # The answer's chain verifies it too, and NotAfter matches.
    xb_json Chain.0 | base64 -d | openssl x509 -inform DER -out "$XB_TMP/resp-chain0.pem"
    xb_json Chain.1 | base64 -d | openssl x509 -inform DER -out "$XB_TMP/resp-chain1.pem"
    xb_check "$id: Chain in the answer verifies the certificate" \
      openssl verify -CAfile "$XB_TMP/resp-chain1.pem" -untrusted "$XB_TMP/resp-chain0.pem" "$XB_TMP/$id.pem"
    xb_eq "$id: NotAfter = certificate notAfter" \
      "$(date -u -d "$(xb_json NotAfter)" +%s)" \
      "$(date -d "$(openssl x509 -in "$XB_TMP/$id.pem" -noout -enddate | cut -d= -f2)" +%s)"
  done
  xb_stop_server
}

run_for_ca ec-p256 ecdsa-with-SHA256
run_for_ca ec-p384 ecdsa-with-SHA384
run_for_ca rsa-2048 sha256WithRSAEncryption
xb_finish
