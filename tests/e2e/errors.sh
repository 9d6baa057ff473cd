#!/usr/bin/env bash
# Every refusal of POST /api/certificate is what a device and its operator rely on: the right
# HTTP status, a stable JSON "error" code with a human "message", nothing written to the
# registry, one log line per request with its status, and never the function key in the log.
. "$(dirname "$0")/lib.sh"

xb_ca_init
xb_ctl device add dev-1 dev-ct-json dev-ct-text dev-path k-code k-header k-none >/dev/null
xb_write_config
xb_start_server || { xb_bad "server starts"; xb_finish; exit 1; }

# Every request whose answer carried an X-Request-Id, with its status: checked against the log.
SEEN=()
IDMISMATCH=0
track() {
  [ -n "$XB_REQID" ] && SEEN+=("$XB_REQID $XB_STATUS")
  # An error body names its request: the same id as the X-Request-Id header and the log line.
  if [ -n "$(xb_json error)" ] && [ "$(xb_json requestId)" != "$XB_REQID" ]; then
    IDMISMATCH=$((IDMISMATCH + 1)); echo "     requestId '$(xb_json requestId)' != X-Request-Id '$XB_REQID'"
  fi
  return 0
}
send() { xb_post_file "$@"; track; } # send FILE [QUERY] [curl args...]
body() { printf '%s' "$1" >"$XB_TMP/body"; }
rows=$(xb_cert_rows)

# ---- health ----
xb_request GET /healthz; track
xb_eq "healthz: status 200" "$XB_STATUS" 200
xb_eq "healthz: status ok" "$(xb_json status)" ok

# ---- malformed bodies ----
body '{"RegistrationId": "dev-1", "Csr": '
send "$XB_TMP/body"; xb_expect_error "truncated JSON" 400 malformed_json "$rows"
body 'this is not json'
send "$XB_TMP/body"; xb_expect_error "not JSON at all" 400 malformed_json "$rows"
: >"$XB_TMP/body"
send "$XB_TMP/body"; xb_expect_error "empty body" 400 malformed_json "$rows"
body '[{"RegistrationId":"dev-1","Csr":"AAAA"}]'
send "$XB_TMP/body"; xb_expect_error "JSON array body" 400 malformed_request "$rows"
body '"dev-1"'
send "$XB_TMP/body"; xb_expect_error "JSON string body" 400 malformed_request "$rows"
body '{"RegistrationId": 12345, "Csr": 67890}'
send "$XB_TMP/body"; xb_expect_error "numbers instead of strings" 400 malformed_request "$rows"
body '{"RegistrationId": "dev-1", "Csr": null}'
send "$XB_TMP/body"; xb_expect_error "Csr null" 400 malformed_request "$rows"
body '{"RegistrationId": "dev-1"}'
send "$XB_TMP/body"; xb_expect_error "Csr missing" 400 malformed_request "$rows"
body '{"Csr": "AAAA"}'
send "$XB_TMP/body"; xb_expect_error "RegistrationId missing" 400 malformed_request "$rows"
body '{}'
send "$XB_TMP/body"; xb_expect_error "empty object" 400 malformed_request "$rows"

# ---- registration IDs (checked before anything else about the device) ----
xb_csr ec-p256 dev-1 "$XB_TMP/dev1"
CSR1=$(xb_b64 "$XB_TMP/dev1.der")
long=$(printf 'a%.0s' $(seq 1 129))
for bad in "dev 1" "$long" "dev-1." "" "dev/1" "dév-1"; do
  body "{\"RegistrationId\":\"$bad\",\"Csr\":\"$CSR1\"}"
  send "$XB_TMP/body"; xb_expect_error "registration ID '${bad:0:20}' (${#bad} chars)" 400 invalid_registration_id "$rows"
done

# ---- base64 ----
# (a raw newline inside a JSON string is itself invalid JSON: use an escaped one, and a space)
body "{\"RegistrationId\":\"dev-1\",\"Csr\":\"${CSR1:0:40}\\n${CSR1:40}\"}"
send "$XB_TMP/body"; xb_expect_error "base64 with an escaped newline" 400 bad_base64 "$rows"
body "{\"RegistrationId\":\"dev-1\",\"Csr\":\"${CSR1:0:40} ${CSR1:40}\"}"
send "$XB_TMP/body"; xb_expect_error "base64 with a space" 400 bad_base64 "$rows"
urlsafe=$(tr '+/' '-_' <<<"$CSR1" | tr -d '=')
# Make sure the URL-safe text really differs (a CSR without + or / would be valid either way).
case "$urlsafe" in *[-_]*) ;; *) urlsafe="${urlsafe}-_" ;; esac
body "{\"RegistrationId\":\"dev-1\",\"Csr\":\"$urlsafe\"}"
send "$XB_TMP/body"; xb_expect_error "URL-safe base64 without padding" 400 bad_base64 "$rows"
body '{"RegistrationId":"dev-1","Csr":"@@@not base64@@@"}'
send "$XB_TMP/body"; xb_expect_error "not base64 at all" 400 bad_base64 "$rows"
body "{\"RegistrationId\":\"dev-1\",\"Csr\":\"${CSR1%?}\"}"
send "$XB_TMP/body"; xb_expect_error "base64 missing its last character" 400 bad_base64 "$rows"

# ---- CSR content (dev-1 is registered: policy passes, the CSR is what is wrong) ----
b64body() { printf '{"RegistrationId":"%s","Csr":"%s"}' "$1" "$(base64 -w0 <"$2")" >"$XB_TMP/body"; }
size=$(stat -c %s "$XB_TMP/dev1.der")
head -c $((size / 2)) "$XB_TMP/dev1.der" >"$XB_TMP/trunc.der"
b64body dev-1 "$XB_TMP/trunc.der"
send "$XB_TMP/body"; xb_expect_error "truncated CSR" 400 bad_csr "$rows"
{ cat "$XB_TMP/dev1.der"; printf 'garbage'; } >"$XB_TMP/trailing.der"
b64body dev-1 "$XB_TMP/trailing.der"
send "$XB_TMP/body"; xb_expect_error "trailing bytes after the CSR" 400 bad_csr "$rows"
head -c 300 /dev/urandom >"$XB_TMP/random.der"
b64body dev-1 "$XB_TMP/random.der"
send "$XB_TMP/body"; xb_expect_error "random bytes as CSR" 400 bad_csr "$rows"
# "" is valid base64 of nothing; refusing it as bad_base64 (what the decoder does) is fine too.
b64body dev-1 /dev/null
send "$XB_TMP/body"
xb_eq "empty Csr: status 400" "$XB_STATUS" 400
xb_check "empty Csr: bad_csr or bad_base64 ($(xb_json error))" grep -qxE 'bad_csr|bad_base64' <<<"$(xb_json error)"
xb_eq "empty Csr: no certificate recorded" "$(xb_cert_rows)" "$rows"
openssl x509 -in "$XB_TMP/ca/tls.pem" -outform DER -out "$XB_TMP/cert.der"
b64body dev-1 "$XB_TMP/cert.der"
send "$XB_TMP/body"; xb_expect_error "a certificate instead of a CSR" 400 bad_csr "$rows"

# A flipped byte at the very end: the last byte of the signature. The CSR still parses.
flip_last() { # flip_last IN OUT
  "$XB_PYTHON" -c 'import sys
b=bytearray(open(sys.argv[1],"rb").read()); b[-1]^=0x01; open(sys.argv[2],"wb").write(b)' "$1" "$2"
}
for t in ec-p256 rsa-2048 rsa-pss; do
  xb_csr "$t" dev-1 "$XB_TMP/sig-$t"
  flip_last "$XB_TMP/sig-$t.der" "$XB_TMP/sig-$t.bad.der"
  openssl req -inform DER -in "$XB_TMP/sig-$t.bad.der" -noout 2>/dev/null \
    || xb_bad "$t: the flipped CSR should still parse with openssl"
  b64body dev-1 "$XB_TMP/sig-$t.bad.der"
  send "$XB_TMP/body"; xb_expect_error "$t CSR with a flipped signature byte" 400 csr_signature_invalid "$rows"
done
# A flipped byte inside the signed part (the CN): parses, signature no longer matches.
"$XB_PYTHON" -c 'import sys
b=bytearray(open(sys.argv[1],"rb").read()); i=b.find(b"dev-1"); b[i+4]^=0x01
open(sys.argv[2],"wb").write(b)' "$XB_TMP/dev1.der" "$XB_TMP/tbs.bad.der"
b64body dev-0 "$XB_TMP/tbs.bad.der"
xb_ctl device add dev-0 >/dev/null
send "$XB_TMP/body"; xb_expect_error "CSR with a flipped byte in the signed subject" 400 csr_signature_invalid "$rows"

for t in rsa-1024 ed25519 ec-p521; do
  xb_csr "$t" dev-1 "$XB_TMP/key-$t"
  b64body dev-1 "$XB_TMP/key-$t.der"
  send "$XB_TMP/body"; xb_expect_error "$t key" 400 key_not_allowed "$rows"
done

xb_csr ec-p256 other-device "$XB_TMP/other"
b64body dev-1 "$XB_TMP/other.der"
send "$XB_TMP/body"; xb_expect_error "CN differs from the registration ID" 400 subject_mismatch "$rows"
XB_CSR_SUBJ="/CN=DEV-1" xb_csr ec-p256 x "$XB_TMP/case"
b64body dev-1 "$XB_TMP/case.der"
send "$XB_TMP/body"; xb_expect_error "CN differs only in case" 400 subject_mismatch "$rows"
XB_CSR_SUBJ="/O=Acme/OU=Devices" xb_csr ec-p256 x "$XB_TMP/nocn"
b64body dev-1 "$XB_TMP/nocn.der"
send "$XB_TMP/body"; xb_expect_error "no CN" 400 subject_mismatch "$rows"
XB_CSR_SUBJ="/CN=dev-1/CN=dev-1" xb_csr ec-p256 x "$XB_TMP/twocn"
b64body dev-1 "$XB_TMP/twocn.der"
send "$XB_TMP/body"; xb_expect_error "two CNs" 400 subject_mismatch "$rows"
XB_CSR_SUBJ="/CN=dev-1/CN=evil" xb_csr ec-p256 x "$XB_TMP/twocn2"
b64body dev-1 "$XB_TMP/twocn2.der"
send "$XB_TMP/body"; xb_expect_error "two different CNs" 400 subject_mismatch "$rows"

# ---- policy before CSR: an unknown device with a broken CSR is refused as unknown ----
b64body nobody "$XB_TMP/trunc.der"
send "$XB_TMP/body"; xb_expect_error "unknown device with a broken CSR" 403 device_unknown "$rows"

# ---- sizes ----
"$XB_PYTHON" -c 'import sys; sys.stdout.write("{\"RegistrationId\":\"dev-1\",\"Csr\":\"" + "A"*(100*1024) + "\"}")' >"$XB_TMP/100k"
send "$XB_TMP/100k"; xb_expect_error "100 KiB body" 413 payload_too_large "$rows"
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'A' >"$XB_TMP/2m"
# curl sends "Expect: 100-continue" for a body this large: the server refuses before the upload.
send "$XB_TMP/2m"
xb_eq "2 MiB body: status 413" "$XB_STATUS" 413
xb_eq "2 MiB body: no certificate recorded" "$(xb_cert_rows)" "$rows"

# ---- media types ----
xb_csr ec-p256 dev-1 "$XB_TMP/dev1b"
b64body dev-1 "$XB_TMP/dev1b.der"
send "$XB_TMP/body" "" -H 'Content-Type: application/x-www-form-urlencoded'
xb_expect_error "form-urlencoded Content-Type" 415 unsupported_media_type "$rows"
send "$XB_TMP/body" "" -H 'Content-Type: application/xml'
xb_expect_error "application/xml Content-Type" 415 unsupported_media_type "$rows"
for ct in "application/json" "application/json; charset=utf-8" "text/plain"; do
  id=dev-ct-json; [ "$ct" = text/plain ] && id=dev-ct-text
  [ "$ct" = "application/json; charset=utf-8" ] && id=dev-ct-json-cs && xb_ctl device add "$id" >/dev/null
  xb_csr ec-p256 "$id" "$XB_TMP/$id"
  b64body "$id" "$XB_TMP/$id.der"
  send "$XB_TMP/body" "" -H "Content-Type: $ct"
  xb_eq "Content-Type '$ct' accepted: 200" "$XB_STATUS" 200
  rows=$((rows + 1))
  xb_eq "Content-Type '$ct': one certificate recorded" "$(xb_cert_rows)" "$rows"
done

# ---- methods and paths ----
for m in GET PUT DELETE TRACE OPTIONS PATCH; do
  xb_request "$m" /api/certificate; track
  xb_expect_error "$m /api/certificate" 405 method_not_allowed "$rows"
  xb_eq "$m /api/certificate: Allow: POST" "$(xb_header Allow)" POST
done
for p in /api/certificates /api /nope /api/certificate/extra /; do
  xb_request GET "$p"; track
  xb_expect_error "GET $p" 404 not_found "$rows"
done
xb_request POST /api/nothing-here -H 'Content-Type:' --data-binary "@$XB_TMP/body"; track
xb_expect_error "POST unknown path" 404 not_found "$rows"
# The path is matched case-insensitively (Azure Functions routes are).
xb_csr ec-p256 dev-path "$XB_TMP/dev-path"
b64body dev-path "$XB_TMP/dev-path.der"
xb_request POST /API/Certificate -H 'Content-Type:' --data-binary "@$XB_TMP/body"; track
xb_eq "POST /API/Certificate: 200" "$XB_STATUS" 200
rows=$((rows + 1))

# ---- every request above is in the log with its status ----
missing=0
for e in "${SEEN[@]}"; do
  id=${e% *} st=${e#* }
  line=$(xb_log_line "$id")
  case "$line" in
    *" status=$st "*) ;;
    *) missing=$((missing + 1)); echo "     no log line 'id=$id ... status=$st' (got: '$line')" ;;
  esac
done
xb_eq "every request (${#SEEN[@]}) has its log line with its status" "$missing" 0
xb_eq "every error body's requestId is its X-Request-Id" "$IDMISMATCH" 0
xb_check "log lines carry client, reg_id, outcome and ms" \
  grep -qE 'request id=[0-9a-f]+ client=127\.0\.0\.1 reg_id=dev-1 outcome=csr_signature_invalid status=400 ms=[0-9.]+' "$XB_TMP/xbootd.log"
xb_check "an issued request logs outcome=issued" \
  grep -qE 'reg_id=dev-path outcome=issued status=200' "$XB_TMP/xbootd.log"
xb_check "server still running after all of it" kill -0 "$XB_PID"
xb_stop_server

# ---- function key ----
KEY="k3y-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
WRONG="wrong-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
xb_write_config "[enroll]" "api_key = $KEY"
xb_start_server || { xb_bad "server starts with api_key"; xb_finish; exit 1; }
SEEN=()
xb_csr ec-p256 k-none "$XB_TMP/k-none"
b64body k-none "$XB_TMP/k-none.der"
send "$XB_TMP/body"; xb_expect_error "no function key" 401 unauthorized "$rows"
send "$XB_TMP/body" "?code=$WRONG"; xb_expect_error "wrong key in ?code=" 401 unauthorized "$rows"
send "$XB_TMP/body" "" -H "x-functions-key: $WRONG"; xb_expect_error "wrong key in x-functions-key" 401 unauthorized "$rows"
send "$XB_TMP/body" "?code=${KEY}x"; xb_expect_error "key with an extra character" 401 unauthorized "$rows"
send "$XB_TMP/body" "?code=${KEY%?}"; xb_expect_error "key missing its last character" 401 unauthorized "$rows"
send "$XB_TMP/body" "?code="; xb_expect_error "empty ?code=" 401 unauthorized "$rows"
# The key is checked before anything else: even garbage gets 401, not 400.
body 'not json'
send "$XB_TMP/body"; xb_expect_error "no key, garbage body" 401 unauthorized "$rows"

xb_csr ec-p256 k-code "$XB_TMP/k-code"
b64body k-code "$XB_TMP/k-code.der"
send "$XB_TMP/body" "?code=$KEY"
xb_eq "right key in ?code=: 200" "$XB_STATUS" 200
rows=$((rows + 1))
xb_eq "right key in ?code=: recorded" "$(xb_cert_rows k-code)" 1
xb_csr ec-p256 k-header "$XB_TMP/k-header"
b64body k-header "$XB_TMP/k-header.der"
send "$XB_TMP/body" "" -H "x-functions-key: $KEY"
xb_eq "right key in x-functions-key: 200" "$XB_STATUS" 200
rows=$((rows + 1))
xb_eq "right key in x-functions-key: recorded" "$(xb_cert_rows k-header)" 1
xb_request GET /healthz; track
xb_eq "healthz needs no function key" "$XB_STATUS" 200

missing=0
for e in "${SEEN[@]}"; do
  id=${e% *} st=${e#* }
  case "$(xb_log_line "$id")" in *" status=$st "*) ;; *) missing=$((missing + 1)) ;; esac
done
xb_eq "function key requests: every one has its log line" "$missing" 0
xb_check "the log never contains the function key" sh -c "! grep -qF -- '$KEY' '$XB_TMP/xbootd.log'"
xb_check "the log never contains a wrong key either" sh -c "! grep -qF -- '$WRONG' '$XB_TMP/xbootd.log'"
xb_check "the log never contains the CA key" \
  sh -c "! grep -qF -- '$(sed -n 2p "$XB_TMP/ca/signing-ca.key")' '$XB_TMP/xbootd.log'"
xb_stop_server
xb_finish
