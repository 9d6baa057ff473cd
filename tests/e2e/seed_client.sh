#!/usr/bin/env bash
# The original .NET XBoot.Client's exact request works unchanged: no Content-Type, PascalCase
# keys, an RSA-2048 CSR signed RSA-PSS/SHA-512 with the sample's subject, the function key as
# ?code=, on the Azure Functions path /api/Certificate. camelCase + application/json and the
# x-functions-key header work too.
. "$(dirname "$0")/lib.sh"

xb_ca_init ec-p256
xb_write_config "[enroll]" "api_key = s3cret-function-key"
xb_start_server || exit 1

guid=$(cat /proc/sys/kernel/random/uuid)
xb_ctl device add "$guid" >/dev/null
XB_CSR_SUBJ="/C=CA/ST=AB/L=Calgary/O=Hilscher/OU=IT/CN=$guid" xb_csr rsa-pss "$guid" "$XB_TMP/seed"
xb_contains "the CSR is RSA-PSS/SHA-512" \
  "$(openssl req -inform DER -in "$XB_TMP/seed.der" -noout -text | grep -A3 'Signature Algorithm' | head -4)" "sha512"

# Byte for byte what HttpClient.PostAsync(uri, new StringContent(json)) minus the content type
# sends: compact JSON, PascalCase, base64 DER.
body=$(printf '{"RegistrationId":"%s","Csr":"%s"}' "$guid" "$(xb_b64 "$XB_TMP/seed.der")")
printf '%s' "$body" >"$XB_TMP/seed.json"
XB_STATUS=$(curl -s -o "$XB_TMP/resp.json" -w '%{http_code}' --max-time 20 \
  --cacert "$XB_TMP/ca/root-ca.pem" -H 'Content-Type:' -H 'Expect:' --trace-ascii "$XB_TMP/seed.trace" \
  --data-binary "@$XB_TMP/seed.json" "$XB_URL/api/Certificate?code=s3cret-function-key")
xb_eq "seed request: 200" "$XB_STATUS" 200
xb_save_cert "$XB_TMP/seed.pem"
xb_check "seed certificate verifies" \
  openssl verify -CAfile "$XB_TMP/ca/root-ca.pem" -untrusted "$XB_TMP/ca/signing-ca.pem" "$XB_TMP/seed.pem"
xb_eq "the sample's subject attributes are kept, CN = the GUID" \
  "$(openssl x509 -in "$XB_TMP/seed.pem" -noout -subject -nameopt RFC2253)" \
  "subject=CN=$guid,OU=IT,O=Hilscher,L=Calgary,ST=AB,C=CA"
xb_check "Certificate is plain base64 DER (what X509Certificate2(byte[]) loads)" \
  bash -c "base64 -d <<<'$(xb_json Certificate)' | openssl x509 -inform DER -noout"
xb_check "the request was sent (curl trace)" grep -q "POST /api/Certificate?code=" "$XB_TMP/seed.trace"
# The headers curl sent: the "=> Send header" block of its trace.
sent=$(awk '/^=> Send header/ {on=1; next} /^(=>|<=)/ {on=0} on' "$XB_TMP/seed.trace")
xb_contains "the trace holds the sent headers" "$sent" "Host: 127.0.0.1"
xb_check "the request carried no Content-Type header" \
  sh -c "! grep -qi 'content-type' <<'T'
$sent
T"

# camelCase keys with application/json and the header form of the function key.
id2=camel-case-dev
xb_ctl device add "$id2" >/dev/null
xb_csr ec-p256 "$id2" "$XB_TMP/camel"
xb_post "$(printf '{"registrationId":"%s","csr":"%s"}' "$id2" "$(xb_b64 "$XB_TMP/camel.der")")" "" \
  -H 'Content-Type: application/json; charset=utf-8' -H 'x-functions-key: s3cret-function-key'
xb_eq "camelCase + application/json + x-functions-key: 200" "$XB_STATUS" 200

# text/plain is what .NET StringContent sends by default.
id3=text-plain-dev
xb_ctl device add "$id3" >/dev/null
xb_csr ec-p256 "$id3" "$XB_TMP/tp"
xb_post "$(xb_enroll_body "$id3" "$XB_TMP/tp.der")" "?code=s3cret-function-key" \
  -H 'Content-Type: text/plain; charset=utf-8'
xb_eq "text/plain body: 200" "$XB_STATUS" 200
xb_check "the function key never reaches the log" sh -c "! grep -q s3cret-function-key '$XB_TMP/xbootd.log'"
xb_stop_server
xb_finish
