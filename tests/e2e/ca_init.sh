#!/usr/bin/env bash
# `xbootctl ca init` writes a usable hierarchy in one step: keys 0600, an intermediate that can
# sign device certificates and nothing below them, a chain in the right order, and a TLS
# certificate for localhost; it never overwrites an existing CA.
# registry: none (ca init only: run once, not once per registry backend)
. "$(dirname "$0")/lib.sh"

for kt in ec-p256 ec-p384 rsa-2048 rsa-3072; do
  d="$XB_TMP/$kt"
  xb_check "$kt: ca init succeeds" sh -c "'$XB_BIN/xbootctl' ca init --dir '$d' --key-type $kt >/dev/null"
  for f in root-ca.pem root-ca.key signing-ca.pem signing-ca.key chain.pem tls.pem tls.key; do
    [ -f "$d/$f" ] || xb_bad "$kt: $f missing"
  done
  for k in root-ca.key signing-ca.key tls.key; do
    xb_eq "$kt: $k mode 0600" "$(stat -c %a "$d/$k")" 600
  done
  xb_check "$kt: signing CA verifies against root" openssl verify -CAfile "$d/root-ca.pem" "$d/signing-ca.pem"
  xb_check "$kt: TLS cert verifies against root" openssl verify -CAfile "$d/root-ca.pem" "$d/tls.pem"
  xb_check "$kt: TLS cert is for localhost" openssl verify -CAfile "$d/root-ca.pem" -verify_hostname localhost "$d/tls.pem"
  xb_check "$kt: TLS cert is for 127.0.0.1" openssl verify -CAfile "$d/root-ca.pem" -verify_ip 127.0.0.1 "$d/tls.pem"
  xb_check "$kt: TLS cert is for serverAuth" openssl verify -CAfile "$d/root-ca.pem" -purpose sslserver "$d/tls.pem"
  st=$(openssl x509 -in "$d/signing-ca.pem" -noout -text)
  xb_contains "$kt: signing CA is CA:TRUE pathlen:0" "$(grep -A1 'Basic Constraints' <<<"$st")" "CA:TRUE, pathlen:0"
  xb_contains "$kt: signing CA keyUsage" "$(grep -A1 'X509v3 Key Usage' <<<"$st")" "Certificate Sign, CRL Sign"
  xb_check "$kt: signing CA has SKI and AKI" sh -c "grep -q 'Subject Key Identifier' <<'T'
$st
T
grep -q 'Authority Key Identifier' <<'T'
$st
T"
  xb_eq "$kt: chain.pem = signing CA then root" "$(cat "$d/chain.pem" | sha256sum)" \
    "$(cat "$d/signing-ca.pem" "$d/root-ca.pem" | sha256sum)"
  xb_eq "$kt: signing key matches signing cert" \
    "$(openssl x509 -in "$d/signing-ca.pem" -noout -pubkey | sha256sum)" \
    "$(openssl pkey -in "$d/signing-ca.key" -pubout | sha256sum)"
  xb_check "$kt: keys are unencrypted PEM private keys" openssl pkey -in "$d/signing-ca.key" -noout -passin pass:
done
xb_contains "ec-p384 CA signs with SHA-384" \
  "$(openssl x509 -in "$XB_TMP/ec-p384/signing-ca.pem" -noout -text | grep -m1 'Signature Algorithm')" "SHA384"

# Refuses to overwrite, and changes nothing when it refuses.
before=$(cat "$XB_TMP/ec-p256"/* | sha256sum)
out=$("$XB_BIN/xbootctl" ca init --dir "$XB_TMP/ec-p256" 2>&1); rc=$?
xb_eq "second ca init into the same dir fails" "$rc" 1
xb_contains "it says why" "$out" "already exists"
xb_eq "the existing CA is untouched" "$(cat "$XB_TMP/ec-p256"/* | sha256sum)" "$before"
rm "$XB_TMP/rsa-2048/tls.key"
"$XB_BIN/xbootctl" ca init --dir "$XB_TMP/rsa-2048" >/dev/null 2>&1
xb_check "one existing file is enough to refuse" test ! -e "$XB_TMP/rsa-2048/tls.key"
out=$("$XB_BIN/xbootctl" ca init --dir "$XB_TMP/bad" --key-type dsa-1024 2>&1); rc=$?
xb_check "an unknown key type is refused" test "$rc" -ne 0
xb_contains "with the allowed list" "$out" "ec-p256"
xb_check "nothing written for a refused key type" test ! -e "$XB_TMP/bad/root-ca.pem"
xb_finish
