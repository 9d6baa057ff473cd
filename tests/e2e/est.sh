#!/usr/bin/env bash
# EST (RFC 7030) with real clients only (curl + openssl): cacerts, simpleenroll with HTTP Basic
# (open mode), simplereenroll and renewal through simpleenroll with the client certificate,
# refusals (foreign certificate, no credentials, wrong type, path, method), csrattrs, the
# byte-exact framing, the tls-unique refusal paths, and the same decisions as the JSON API.
. "$(dirname "$0")/lib.sh"

ROOT="$XB_TMP/ca/root-ca.pem"
EST=/.well-known/est

# est METHOD OP_PATH [curl args...]: XB_STATUS, XB_BODY, XB_HEADERS (as xb_request); the raw
# body stays in $XB_TMP/resp.json and the raw header block in $XB_TMP/resp.headers.
# Every 401 is counted, and so is every one without WWW-Authenticate.
EST_401=0
EST_401_BARE=0
est() {
  local m=$1 p=$2; shift 2
  xb_request "$m" "$EST$p" "$@"
  if [ "$XB_STATUS" = 401 ]; then
    EST_401=$((EST_401 + 1))
    grep -qx $'WWW-Authenticate: Basic realm="xboot"\r' "$XB_TMP/resp.headers" || EST_401_BARE=$((EST_401_BARE + 1))
  fi
}
# est_post OP_PATH CSR_DER [curl args...]: the CSR as base64 (wrapped at 76, as base64(1) does).
est_post() {
  local p=$1 der=$2; shift 2
  base64 <"$der" >"$XB_TMP/req.b64"
  est POST "$p" -H 'Content-Type: application/pkcs10' --data-binary "@$XB_TMP/req.b64" "$@"
}
# The PKCS#7 of the last answer -> PEM certificates in $1.
p7_certs() { base64 -d <"$XB_TMP/resp.json" | openssl pkcs7 -inform DER -print_certs -out "$1" 2>/dev/null; }
ncerts() { grep -c 'BEGIN CERTIFICATE' "$1"; }
cert_cn() { openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }
serial_of() { openssl x509 -in "$1" -noout -serial | sed 's/^serial=//' | tr 'A-F' 'a-f' | sed 's/^0*//'; }
current_serial() { xb_sql "select serial from certificates where reg_id='$1' order by issued_at desc, $(xb_sql_insert_order) desc limit 1;" | sed 's/^0*//'; }
# Every 401 so far carried WWW-Authenticate (checked after each request by expect_401).
expect_401() { # expect_401 "what" [reason substring]
  xb_eq "$1: 401" "$XB_STATUS" 401
  xb_eq "$1: WWW-Authenticate" "$(xb_header WWW-Authenticate)" 'Basic realm="xboot"'
  [ -z "${2:-}" ] || xb_contains "$1: reason" "$XB_BODY" "$2"
}
# Base64 framing of the last body, byte-exact: 64 characters a line, the last 1..64, "\n" after
# every line, no CR.
framing_ok() {
  "$XB_PYTHON" - "$XB_TMP/resp.json" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
assert b.endswith(b"\n") and b"\r" not in b, "must end with LF, no CR"
lines = b.split(b"\n")[:-1]
assert lines and all(len(l) == 64 for l in lines[:-1]) and 1 <= len(lines[-1]) <= 64, [len(l) for l in lines]
PY
}

xb_ca_init
xb_write_config "[enroll]" "mode = open" "[est]" "labels = edge, prod"
xb_start_server || { xb_bad "xbootd starts"; xb_finish; exit 1; }

# ---- cacerts ----
est GET /cacerts
xb_eq "cacerts: 200" "$XB_STATUS" 200
xb_check "cacerts: Content-Type exact" grep -qx $'Content-Type: application/pkcs7-mime\r' "$XB_TMP/resp.headers"
xb_check "cacerts: Content-Transfer-Encoding" grep -qx $'Content-Transfer-Encoding: base64\r' "$XB_TMP/resp.headers"
xb_check "cacerts: base64 framed at 64 columns" framing_ok
p7_certs "$XB_TMP/cacerts.pem"
xb_eq "cacerts: two certificates" "$(ncerts "$XB_TMP/cacerts.pem")" 2
xb_eq "cacerts: the signing CA first" "$(openssl x509 -in "$XB_TMP/cacerts.pem" -noout -fingerprint)" \
  "$(openssl x509 -in "$XB_TMP/ca/signing-ca.pem" -noout -fingerprint)"
est GET /edge/cacerts
xb_eq "cacerts under a configured label: 200" "$XB_STATUS" 200

# ---- simpleenroll with HTTP Basic (open mode); requested extensions are not copied ----
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$XB_TMP/e1.key" 2>/dev/null
openssl req -new -key "$XB_TMP/e1.key" -subj /CN=dev-e1 -addext "subjectAltName=DNS:evil.example" \
  -addext "basicConstraints=critical,CA:TRUE" -outform DER -out "$XB_TMP/e1.der" 2>/dev/null
est_post /simpleenroll "$XB_TMP/e1.der" -u 'dev-e1:anything'
xb_eq "simpleenroll (Basic): 200" "$XB_STATUS" 200
xb_check "simpleenroll: status line HTTP/1.1" grep -qx $'HTTP/1.1 200 OK\r' "$XB_TMP/resp.headers"
xb_check "simpleenroll: Content-Type byte-exact" \
  grep -qx $'Content-Type: application/pkcs7-mime; smime-type=certs-only\r' "$XB_TMP/resp.headers"
xb_check "simpleenroll: Content-Transfer-Encoding: base64" \
  grep -qx $'Content-Transfer-Encoding: base64\r' "$XB_TMP/resp.headers"
xb_eq "simpleenroll: Content-Length is the body size" "$(xb_header Content-Length)" "$(wc -c <"$XB_TMP/resp.json")"
xb_check "simpleenroll: Content-Length header spelled canonically" grep -q '^Content-Length: ' "$XB_TMP/resp.headers"
xb_eq "simpleenroll: not chunked" "$(xb_header Transfer-Encoding)" ""
xb_check "simpleenroll: base64 framed at 64 columns" framing_ok
p7_certs "$XB_TMP/e1.pem"
xb_eq "simpleenroll: exactly one certificate" "$(ncerts "$XB_TMP/e1.pem")" 1
xb_eq "simpleenroll: CN = registration ID" "$(cert_cn "$XB_TMP/e1.pem")" "CN=dev-e1"
xb_check "simpleenroll: the certificate verifies" \
  openssl verify -CAfile "$ROOT" -untrusted "$XB_TMP/cacerts.pem" "$XB_TMP/e1.pem"
text=$(openssl x509 -in "$XB_TMP/e1.pem" -noout -text)
xb_lacks "requested subjectAltName not copied" "$text" "evil.example"
xb_lacks "requested CA:TRUE not copied" "$text" "CA:TRUE"
xb_contains "the profile's CA:FALSE" "$text" "CA:FALSE"
xb_eq "simpleenroll: one certificate row" "$(xb_cert_rows dev-e1)" 1
# The same key again, Content-Type with parameters and odd case, lowercase transfer encoding:
# a retry after a lost answer gets the same certificate.
base64 -w0 <"$XB_TMP/e1.der" >"$XB_TMP/req.b64"
est POST /prod/simpleenroll -H 'Content-Type: Application/PKCS10; name=csr.p10' \
  -H 'Content-Transfer-Encoding: BASE64' --data-binary "@$XB_TMP/req.b64" -u 'dev-e1:x'
xb_eq "simpleenroll retry (label, type parameters, one-line base64): 200" "$XB_STATUS" 200
p7_certs "$XB_TMP/e1-again.pem"
xb_eq "simpleenroll retry: the same certificate" "$(serial_of "$XB_TMP/e1-again.pem")" "$(serial_of "$XB_TMP/e1.pem")"

# ---- simplereenroll with the client certificate and a NEW key ----
xb_csr ec-p256 dev-e1 "$XB_TMP/e1b"
est_post /simplereenroll "$XB_TMP/e1b.der" --cert "$XB_TMP/e1.pem" --key "$XB_TMP/e1.key"
xb_eq "simplereenroll (client certificate, new key): 200" "$XB_STATUS" 200
p7_certs "$XB_TMP/e1b.pem"
xb_eq "simplereenroll: CN kept" "$(cert_cn "$XB_TMP/e1b.pem")" "CN=dev-e1"
xb_eq "simplereenroll: the new key" "$(openssl x509 -in "$XB_TMP/e1b.pem" -noout -pubkey)" \
  "$(openssl pkey -in "$XB_TMP/e1b.key" -pubout)"
xb_eq "simplereenroll: recorded (allow_reenroll is off: a renewal)" "$(xb_cert_rows dev-e1)" 2
xb_eq "simplereenroll: the new certificate is the current one" "$(current_serial dev-e1)" "$(serial_of "$XB_TMP/e1b.pem")"
xb_check "the old certificate still verifies" \
  openssl verify -CAfile "$ROOT" -untrusted "$XB_TMP/cacerts.pem" "$XB_TMP/e1.pem"
XB_CSR_SUBJ="/CN=dev-e1/O=Other" xb_csr ec-p256 dev-e1 "$XB_TMP/mis"
est_post /simplereenroll "$XB_TMP/mis.der" --cert "$XB_TMP/e1.pem" --key "$XB_TMP/e1.key"
xb_eq "simplereenroll, another subject: 400" "$XB_STATUS" 400
xb_contains "simplereenroll, another subject: reason" "$XB_BODY" "subject_mismatch: subject or subjectAltName differ"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$XB_TMP/san.key" 2>/dev/null
openssl req -new -key "$XB_TMP/san.key" -subj /CN=dev-e1 -addext "subjectAltName=DNS:x.example" \
  -outform DER -out "$XB_TMP/san.der" 2>/dev/null
est_post /simplereenroll "$XB_TMP/san.der" --cert "$XB_TMP/e1b.pem" --key "$XB_TMP/e1b.key"
xb_eq "simplereenroll requesting a subjectAltName the certificate lacks: 400" "$XB_STATUS" 400
xb_contains "simplereenroll, SAN: reason" "$XB_BODY" "subjectAltName differ"
xb_eq "refused renewals recorded nothing" "$(xb_cert_rows dev-e1)" 2

# ---- renewal through simpleenroll with the client certificate (Azure IoT Edge) ----
xb_csr ec-p256 dev-e1 "$XB_TMP/e1c"
est_post /simpleenroll "$XB_TMP/e1c.der" --cert "$XB_TMP/e1b.pem" --key "$XB_TMP/e1b.key"
xb_eq "simpleenroll renewal (client certificate): 200" "$XB_STATUS" 200
p7_certs "$XB_TMP/e1c.pem"
xb_eq "simpleenroll renewal: recorded, current" "$(current_serial dev-e1)" "$(serial_of "$XB_TMP/e1c.pem")"
xb_csr ec-p256 dev-other "$XB_TMP/other"
est_post /simpleenroll "$XB_TMP/other.der" --cert "$XB_TMP/e1c.pem" --key "$XB_TMP/e1c.key"
xb_eq "a certificate of dev-e1 cannot enroll dev-other: 400" "$XB_STATUS" 400
xb_contains "... reason" "$XB_BODY" "issued to dev-e1"

# ---- a foreign client certificate is refused, never treated as anonymous ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=Foreign-CA \
  -keyout "$XB_TMP/fca.key" -out "$XB_TMP/fca.pem" -days 2 -addext basicConstraints=critical,CA:TRUE 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=dev-e1 \
  -keyout "$XB_TMP/foreign.key" -out "$XB_TMP/foreign.csr" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >"$XB_TMP/foreign.ext"
openssl x509 -req -in "$XB_TMP/foreign.csr" -CA "$XB_TMP/fca.pem" -CAkey "$XB_TMP/fca.key" \
  -CAcreateserial -days 1 -extfile "$XB_TMP/foreign.ext" -out "$XB_TMP/foreign.pem" 2>/dev/null
xb_csr ec-p256 dev-e1 "$XB_TMP/f1"
est_post /simpleenroll "$XB_TMP/f1.der" --cert "$XB_TMP/foreign.pem" --key "$XB_TMP/foreign.key" -u dev-e1:x
expect_401 "foreign client certificate on simpleenroll (even with Basic)" "not a valid certificate from this server's CA"
est_post /simplereenroll "$XB_TMP/f1.der" --cert "$XB_TMP/foreign.pem" --key "$XB_TMP/foreign.key"
expect_401 "foreign client certificate on simplereenroll"

# ---- no or bad credentials: 401, each with WWW-Authenticate ----
xb_csr ec-p256 dev-e3 "$XB_TMP/e3"
est_post /simpleenroll "$XB_TMP/e3.der"
expect_401 "no credentials" "credentials required"
est_post /simplereenroll "$XB_TMP/e3.der" -u dev-e3:x
expect_401 "simplereenroll with Basic only" "needs the TLS client certificate"
est_post /simpleenroll "$XB_TMP/e3.der" -u dev-e9:x
expect_401 "Basic user-id other than the CN" "must be the registration ID"
est_post /simpleenroll "$XB_TMP/e3.der" -H 'Authorization: Bearer abc'
expect_401 "not Basic"
xb_eq "refusals recorded nothing" "$(xb_cert_rows dev-e3)" 0
# A registration ID with colons (a MAC address): the split is where the user-id is the CN.
xb_csr ec-p256 "aa:bb:cc:dd:ee:ff" "$XB_TMP/mac"
est_post /simpleenroll "$XB_TMP/mac.der" -u 'aa:bb:cc:dd:ee:ff:pass:word'
xb_eq "Basic with colons in the registration ID: 200" "$XB_STATUS" 200

# ---- wrong type, path, method ----
base64 <"$XB_TMP/e3.der" >"$XB_TMP/req.b64"
est POST /simpleenroll -u dev-e3:x -H 'Content-Type: application/json' --data-binary "@$XB_TMP/req.b64"
xb_eq "wrong Content-Type: 400" "$XB_STATUS" 400
xb_contains "wrong Content-Type: named" "$XB_BODY" "application/json"
xb_eq "wrong Content-Type: text/plain" "$(xb_header Content-Type)" "text/plain; charset=utf-8"
est POST /simpleenroll -u dev-e3:x -H 'Content-Type: application/pkcs10' --data-binary 'not base64!'
xb_eq "not base64: 400" "$XB_STATUS" 400
est POST /simpleenroll -u dev-e3:x -H 'Content-Type:' --data-binary "@$XB_TMP/req.b64"
xb_eq "no Content-Type: 400" "$XB_STATUS" 400
xb_eq "refused requests recorded nothing for dev-e3" "$(xb_cert_rows dev-e3)" 0
est GET /nolabel/cacerts
xb_eq "unknown label: 404" "$XB_STATUS" 404
xb_contains "unknown label: named" "$XB_BODY" "unknown EST label 'nolabel'"
est GET /fullcmc
xb_eq "unknown operation: 404" "$XB_STATUS" 404
xb_contains "unknown operation: named" "$XB_BODY" "unknown EST operation 'fullcmc'"
est GET /edge/cacerts/more
xb_eq "extra path segment: 404" "$XB_STATUS" 404
est GET /simpleenroll
xb_eq "GET simpleenroll: 405" "$XB_STATUS" 405
xb_eq "GET simpleenroll: Allow" "$(xb_header Allow)" "POST"
est POST /cacerts --data-binary x
xb_eq "POST cacerts: 405" "$XB_STATUS" 405
xb_eq "POST cacerts: Allow" "$(xb_header Allow)" "GET, HEAD"

# ---- csrattrs ----
est GET /csrattrs
xb_eq "csrattrs: 200" "$XB_STATUS" 200
xb_eq "csrattrs: Content-Type" "$(xb_header Content-Type)" "application/csrattrs"
base64 -d <"$XB_TMP/resp.json" >"$XB_TMP/csrattrs.der"
attrs=$(openssl asn1parse -inform DER -in "$XB_TMP/csrattrs.der" 2>&1)
xb_contains "csrattrs: CN required (2.5.4.3)" "$attrs" "commonName"
xb_contains "csrattrs: EC key" "$attrs" "id-ecPublicKey"
xb_contains "csrattrs: P-256" "$attrs" "prime256v1"
xb_contains "csrattrs: ecdsa-with-SHA256" "$attrs" "ecdsa-with-SHA256"
xb_lacks "csrattrs: no challengePassword without require_pop" "$attrs" "challengePassword"

# ---- metrics ----
m=$(curl -s --cacert "$ROOT" "$XB_URL/metrics")
xb_contains "metrics: EST issuances" "$m" 'xboot_enrollments_total{protocol="est",outcome="issued"} 4'
xb_contains "metrics: EST replays" "$m" 'xboot_enrollments_total{protocol="est",outcome="replayed"} 1'
xb_contains "metrics: route label" "$m" 'route="/.well-known/est"'

# ---- JSON API and EST: the same decisions (open mode) ----
xb_ctl device add dev-dis >/dev/null && xb_ctl device disable dev-dis >/dev/null
xb_csr ec-p256 dev-dis "$XB_TMP/dis"
xb_post "$(xb_enroll_body dev-dis "$XB_TMP/dis.der")"
xb_eq "disabled device, JSON: 403 device_disabled" "$XB_STATUS $(xb_json error)" "403 device_disabled"
est_post /simpleenroll "$XB_TMP/dis.der" -u dev-dis:x
xb_eq "disabled device, EST: 403" "$XB_STATUS" 403
xb_contains "disabled device, EST: device_disabled" "$XB_BODY" "device_disabled: device dev-dis is disabled"
xb_csr ec-p256 dev-j "$XB_TMP/j1"
xb_post "$(xb_enroll_body dev-j "$XB_TMP/j1.der")"
xb_eq "JSON enrollment: 200" "$XB_STATUS" 200
xb_csr ec-p256 dev-j "$XB_TMP/j2"
xb_post "$(xb_enroll_body dev-j "$XB_TMP/j2.der")"
xb_eq "enrolled device, new key, JSON: 409 already_enrolled" "$XB_STATUS $(xb_json error)" "409 already_enrolled"
est_post /simpleenroll "$XB_TMP/j2.der" -u dev-j:x
xb_eq "enrolled device, new key, EST: 403" "$XB_STATUS" 403
xb_contains "enrolled device, new key, EST: already_enrolled" "$XB_BODY" "already_enrolled: device dev-j already has a certificate"
est_post /simpleenroll "$XB_TMP/j1.der" -u dev-j:x
xb_eq "enrolled device, its key again, EST: the same certificate (as JSON)" "$XB_STATUS" 200

# ---- allowlist mode: device credentials over Basic; an unknown device is refused as by JSON ----
xb_stop_server
xb_write_config "[est]" "labels = edge"
xb_start_server || { xb_bad "xbootd restarts"; xb_finish; exit 1; }
xb_csr ec-p256 dev-unknown "$XB_TMP/u"
xb_post "$(xb_enroll_body dev-unknown "$XB_TMP/u.der")"
xb_eq "unknown device, JSON: 403 device_unknown" "$XB_STATUS $(xb_json error)" "403 device_unknown"
est_post /simpleenroll "$XB_TMP/u.der" -u dev-unknown:x
xb_eq "unknown device, EST: 403" "$XB_STATUS" 403
xb_contains "unknown device, EST: device_unknown" "$XB_BODY" "device_unknown:"
secret=$(xb_ctl device add dev-known --secret 2>/dev/null | awk '{print $NF}')
xb_csr ec-p256 dev-known "$XB_TMP/k"
est_post /simpleenroll "$XB_TMP/k.der" -u dev-known:x
expect_401 "allowlist mode, Basic with a wrong secret" "not a valid credential for dev-known"
est_post /simpleenroll "$XB_TMP/k.der"
expect_401 "allowlist mode, no credentials" "credentials required"
xb_eq "wrong secrets recorded nothing" "$(xb_cert_rows dev-known)" 0
est_post /simpleenroll "$XB_TMP/k.der" -u "dev-known:$secret"
xb_eq "allowlist mode, Basic with the device's secret: 200" "$XB_STATUS" 200
# Renewal by client certificate works in allowlist mode too.
est_post /simplereenroll "$XB_TMP/e1b.der" --cert "$XB_TMP/e1c.pem" --key "$XB_TMP/e1c.key"
xb_eq "allowlist mode, simplereenroll with our certificate: 200" "$XB_STATUS" 200
xb_ctl device disable dev-e1 >/dev/null
est_post /simplereenroll "$XB_TMP/e1b.der" --cert "$XB_TMP/e1c.pem" --key "$XB_TMP/e1c.key"
xb_eq "disabled device cannot renew: 403" "$XB_STATUS" 403
xb_contains "disabled device cannot renew: reason" "$XB_BODY" "device_disabled"

# ---- require_pop: tls-unique refusal paths ----
xb_stop_server
xb_write_config "[enroll]" "mode = open" "[est]" "require_pop = true"
xb_start_server || { xb_bad "xbootd restarts"; xb_finish; exit 1; }
est GET /csrattrs
base64 -d <"$XB_TMP/resp.json" | openssl asn1parse -inform DER >"$XB_TMP/attrs.txt" 2>&1
xb_check "require_pop: csrattrs asks for challengePassword" grep -q challengePassword "$XB_TMP/attrs.txt"
xb_csr ec-p256 dev-pop "$XB_TMP/pop"
est_post /simpleenroll "$XB_TMP/pop.der" -u dev-pop:x --tlsv1.3
xb_eq "require_pop, TLS 1.3: 400" "$XB_STATUS" 400
xb_contains "require_pop, TLS 1.3: says why" "$XB_BODY" "TLS 1.3 does not define"
est_post /simpleenroll "$XB_TMP/pop.der" -u dev-pop:x --tls-max 1.2
xb_eq "require_pop, TLS 1.2 without challengePassword: 400" "$XB_STATUS" 400
xb_contains "require_pop, no challengePassword: says what" "$XB_BODY" "challengePassword"
printf '[req]\ndistinguished_name=dn\nattributes=attrs\nprompt=no\n[dn]\nCN=dev-pop\n[attrs]\nchallengePassword=AAAAAAAAAAAAAAAAAAAAAAAA\n' >"$XB_TMP/pop.cnf"
openssl req -new -key "$XB_TMP/pop.key" -config "$XB_TMP/pop.cnf" -outform DER -out "$XB_TMP/pop2.der" 2>/dev/null
est_post /simpleenroll "$XB_TMP/pop2.der" -u dev-pop:x --tls-max 1.2
xb_eq "require_pop, wrong challengePassword: 400" "$XB_STATUS" 400
xb_contains "require_pop, wrong challengePassword: says so" "$XB_BODY" "not this connection's tls-unique"
xb_eq "require_pop refusals recorded nothing" "$(xb_cert_rows dev-pop)" 0
# The passing case needs the connection's tls-unique before the CSR is made, which neither curl
# nor s_client exposes: Python's ssl module (a TLS 1.2 client) reads it, openssl makes the CSR,
# and the request goes out on that same connection.
"$XB_PYTHON" - "$(xb_hostport)" "$ROOT" "$XB_TMP/pop.key" "$XB_TMP" >"$XB_TMP/pop.out" 2>&1 <<'PY'
import base64, socket, ssl, subprocess, sys
host, port = sys.argv[1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
s = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=20), server_hostname="localhost")
cb = base64.b64encode(s.get_channel_binding("tls-unique")).decode()
cnf = sys.argv[4] + "/pop-ok.cnf"
open(cnf, "w").write("[req]\ndistinguished_name=dn\nattributes=attrs\nprompt=no\n"
                     "[dn]\nCN=dev-pop\n[attrs]\nchallengePassword=" + cb + "\n")
der = subprocess.run(["openssl", "req", "-new", "-key", sys.argv[3], "-config", cnf, "-outform", "DER"],
                     check=True, capture_output=True).stdout
body = base64.encodebytes(der)
auth = base64.b64encode(b"dev-pop:x").decode()
s.sendall(("POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\n"
           "Content-Type: application/pkcs10\r\nAuthorization: Basic " + auth + "\r\n"
           "Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)).encode() + body)
resp = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    resp += chunk
print(resp.split(b"\r\n", 1)[0].decode())
print(resp.decode(errors="replace"))
PY
xb_eq "require_pop, TLS 1.2 with the tls-unique challengePassword: 200" "$(head -n1 "$XB_TMP/pop.out")" "HTTP/1.1 200 OK"
[ "$(head -n1 "$XB_TMP/pop.out")" = "HTTP/1.1 200 OK" ] || head -c 600 "$XB_TMP/pop.out"
xb_eq "require_pop: recorded" "$(xb_cert_rows dev-pop)" 1

# ---- every 401 of this test carried WWW-Authenticate (byte-exact header line) ----
xb_check "several 401s were seen ($EST_401)" test "$EST_401" -ge 7
xb_eq "401s without WWW-Authenticate" "$EST_401_BARE" 0
xb_stop_server
xb_finish
