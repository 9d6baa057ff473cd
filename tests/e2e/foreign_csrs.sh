#!/usr/bin/env bash
# CSRs made by other libraries (mbedTLS, GnuTLS, Python cryptography, a .NET-shaped RSA-PSS one)
# are issued exactly like openssl-made ones; what they ask for beyond the profile is ignored.
. "$(dirname "$0")/lib.sh"

xb_ca_init ec-p256
xb_write_config
xb_start_server || exit 1
F=$XB_FIXTURES/csr
dotnet_id=$(openssl req -inform DER -in "$F/dotnet-style-rsapss.csr.der" -noout -subject -nameopt RFC2253 | sed 's/.*CN=\([^,]*\).*/\1/')

for pair in mbedtls-p256:mbedtls-p256-dev-1 mbedtls-p384:mbedtls-p384-dev-1 \
            mbedtls-rsa2048:mbedtls-rsa2048-dev-1 gnutls-p256:gnutls-dev-1 \
            pyca-p384-asks-ca:pyca-p384-dev-1 "dotnet-style-rsapss:$dotnet_id"; do
  name=${pair%%:*} id=${pair#*:}
  xb_ctl device add "$id" >/dev/null
  xb_post "$(xb_enroll_body "$id" "$F/$name.csr.der")"
  xb_eq "$name: status 200" "$XB_STATUS" 200
  [ "$XB_STATUS" = 200 ] || { echo "$XB_BODY"; continue; }
  xb_save_cert "$XB_TMP/$name.pem"
  xb_check "$name: verifies against the chain" \
    openssl verify -CAfile "$XB_TMP/ca/root-ca.pem" -untrusted "$XB_TMP/ca/signing-ca.pem" "$XB_TMP/$name.pem"
  text=$(openssl x509 -in "$XB_TMP/$name.pem" -noout -text)
  xb_check "$name: CA:FALSE whatever was asked" grep -q "CA:FALSE" <<<"$text"
  xb_check "$name: no SAN copied" sh -c "! grep -q 'Subject Alternative Name' <<'T'
$text
T"
  xb_eq "$name: EKU clientAuth only" \
    "$(echo "$text" | grep -A1 'Extended Key Usage' | tail -n1 | sed 's/^ *//')" "TLS Web Client Authentication"
  xb_eq "$name: certificate key = fixture key" \
    "$(openssl x509 -in "$XB_TMP/$name.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)" \
    "$(openssl pkey -in "$F/$name.key.pem" -pubout -outform DER | sha256sum)"
done
# The .NET-shaped request's subject attributes are copied (default policy C,ST,L,O,OU).
xb_eq "dotnet-style: subject" \
  "$(openssl x509 -in "$XB_TMP/dotnet-style-rsapss.pem" -noout -subject -nameopt RFC2253 2>/dev/null)" \
  "subject=CN=$dotnet_id,OU=IT,O=Hilscher,L=Calgary,ST=AB,C=CA"
xb_finish
