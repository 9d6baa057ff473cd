#!/usr/bin/env bash
# xboot-enroll, the device CLI, against a real xbootd and against fake_xboot_server.py (a
# server that answers whatever the test wants). Each key type enrolls and stores a certificate
# that openssl and GnuTLS accept; a re-run is a no-op; --force obeys the server; and whenever
# something is wrong (unknown device, untrusted server, tampered answer, busy server) the exit
# status says so and nothing is stored. No CSR ever reaches a server that failed verification.
. "$(dirname "$0")/lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
ENROLL=$XB_BIN/xboot-enroll
CA=$XB_TMP/ca
FAKE_PIDS=()

xe_cleanup() {
  local p
  for p in "${FAKE_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  xb_cleanup
}
trap xe_cleanup EXIT

# enroll ARGS...: xboot-enroll against $SERVER (default: xbootd) with our trust anchor. Sets RC;
# stdout and stderr are in $XB_TMP/out and $XB_TMP/err. Bounded by timeout(1) (status 124).
enroll() {
  timeout 120 "$ENROLL" --server "${SERVER:-$XB_URL}" --trust "$CA/root-ca.pem" "$@" \
    >"$XB_TMP/out" 2>"$XB_TMP/err"
  RC=$?
}
out() { cat "$XB_TMP/out"; }
err() { cat "$XB_TMP/err"; }
jf() { jq -r "$1 // empty" "$XB_TMP/out" 2>/dev/null; } # a field of the --json answer
now_ms() { echo $(($(date +%s%N) / 1000000)); }

sums() { (cd "$1" && sha256sum device.key device.pem chain.pem 2>&1); }
stored_nothing() { [ ! -e "$1/device.pem" ] && [ ! -e "$1/device.key" ] && [ ! -e "$1/..data" ]; }
cert_pub() { openssl x509 -in "$1" -noout -pubkey; }
key_pub() { openssl pkey -in "$1" -pubout; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr A-F a-f; }
rows_with_serial() { xb_sql "select count(*) from certificates where serial='$1';"; }
verify() { openssl verify -CAfile "$CA/root-ca.pem" -untrusted "$CA/signing-ca.pem" "$1" 2>&1; }

# fake_start NAME TLS_PREFIX [fake_xboot_server.py args...]: sets FAKE_PID, FAKE_URL, FAKE_LOG.
fake_start() {
  local name=$1 tls=$2 i
  shift 2
  FAKE_LOG=$XB_TMP/$name.log
  : >"$FAKE_LOG"
  rm -f "$XB_TMP/$name.port"
  "$XB_PYTHON" "$HERE/fake_xboot_server.py" --cert "$tls.pem" --key "$tls.key" --log "$FAKE_LOG" \
    --port-file "$XB_TMP/$name.port" --timeout 120 --max-requests 30 "$@" \
    >/dev/null 2>"$XB_TMP/$name.stderr" &
  FAKE_PID=$!
  FAKE_PIDS+=("$FAKE_PID")
  for i in $(seq 1 100); do [ -s "$XB_TMP/$name.port" ] && break; sleep 0.1; done
  FAKE_URL=https://127.0.0.1:$(cat "$XB_TMP/$name.port" 2>/dev/null)
}
fake_stop() { kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null; }
fake_requests() { wc -l <"$FAKE_LOG" | tr -d ' '; }

# ---- set-up: a CA, registered devices, xbootd with its defaults (no re-enrollment) ----
xb_ca_init
xb_ctl device add dev-ec-p256 dev-ec-p384 dev-rsa-2048 dev-a dev-pfx dev-subj dev-vg dev-store >/dev/null
xb_write_config
xb_start_server || exit 1

# ---- usage errors: exit 2, nothing attempted ----
"$ENROLL" >/dev/null 2>"$XB_TMP/err"
xb_eq "no arguments: exit 2" "$?" 2
xb_contains "no arguments: names what is missing" "$(err)" "missing --server"
usage() { enroll --id dev-x --out "$XB_TMP/st-usage" "$@"; xb_eq "usage error $*: exit 2" "$RC" 2; }
usage --bogus
usage --key-type ed25519
usage --timeout 0
usage --retries 20
usage --retries x
usage --pfx-password-file "$XB_TMP/none"
usage --pfx-password secret # secrets never come from argv: there is no such option
usage --subject /CN=other
usage --id dev-y
usage extra-argument
SERVER=http://127.0.0.1:1 enroll --id dev-x --out "$XB_TMP/st-usage"
xb_eq "an http:// server: exit 2" "$RC" 2
xb_check "usage errors stored nothing" test ! -e "$XB_TMP/st-usage"
"$ENROLL" --help >"$XB_TMP/out" 2>&1
xb_eq "--help: exit 0" "$?" 0
xb_contains "--help: usage on stdout" "$(out)" "--pfx-password-file"
xb_contains "--version" "$("$ENROLL" --version)" "xboot-enroll "

# ---- every key type: exit 0, a certificate that verifies, for this key and ID ----
for kt in ec-p256 ec-p384 rsa-2048; do
  id=dev-$kt d=$XB_TMP/st-$kt
  enroll --id "$id" --out "$d" --key-type "$kt" --json
  xb_eq "$kt: exit 0" "$RC" 0
  [ "$RC" = 0 ] || { err; continue; }
  xb_contains "$kt: openssl verify" "$(verify "$d/device.pem")" "device.pem: OK"
  xb_eq "$kt: the certificate holds the stored key" "$(cert_pub "$d/device.pem")" "$(key_pub "$d/device.key")"
  xb_eq "$kt: CN is the registration ID" \
    "$(openssl x509 -in "$d/device.pem" -noout -subject -nameopt RFC2253)" "subject=CN=$id"
  case $kt in ec-p256) want="ASN1 OID: prime256v1" ;; ec-p384) want="ASN1 OID: secp384r1" ;;
    rsa-2048) want="Private-Key: (2048 bit" ;; esac
  xb_contains "$kt: the key is $kt" "$(openssl pkey -in "$d/device.key" -noout -text)" "$want"
  xb_eq "$kt: device.key mode 0600" "$(stat -L -c %a "$d/device.key")" 600
  xb_eq "$kt: device.key is PKCS#8" "$(head -n1 "$d/device.key")" "-----BEGIN PRIVATE KEY-----"
  xb_check "$kt: GnuTLS certtool reads the key" \
    sh -c "certtool --key-info --infile '$d/device.key' </dev/null >/dev/null 2>&1"
  xb_check "$kt: GnuTLS certtool reads the certificate" \
    sh -c "certtool --certificate-info --infile '$d/device.pem' </dev/null >/dev/null 2>&1"
  xb_eq "$kt: chain.pem starts with the signing CA" \
    "$(openssl x509 -in "$d/chain.pem" -noout -fingerprint)" "$(openssl x509 -in "$CA/signing-ca.pem" -noout -fingerprint)"
  serial=$(serial_of "$d/device.pem")
  xb_eq "$kt: the registry has the row" "$(xb_cert_rows "$id")" 1
  xb_eq "$kt: the row is this certificate" "$(rows_with_serial "$serial")" 1
  # --json
  xb_check "$kt: --json is one JSON object" sh -c "jq -e 'type == \"object\"' '$XB_TMP/out' >/dev/null"
  xb_eq "$kt: json status" "$(jf .status)" issued
  xb_eq "$kt: json registrationId" "$(jf .registrationId)" "$id"
  xb_eq "$kt: json keyType" "$(jf .keyType)" "$kt"
  xb_eq "$kt: json certificate" "$(jf .certificate)" "$d/device.pem"
  xb_eq "$kt: json key" "$(jf .key)" "$d/device.key"
  xb_eq "$kt: json chain" "$(jf .chain)" "$d/chain.pem"
  xb_eq "$kt: json has no pfx without --pfx" "$(jq 'has("pfx")' "$XB_TMP/out")" false
  xb_eq "$kt: json serial" "$(jf .serial)" "$serial"
  xb_eq "$kt: json notAfter" "$(jf .notAfter)" \
    "$(date -u -d "$(openssl x509 -in "$d/device.pem" -noout -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)"
  xb_eq "$kt: json subject" "$(jf .subject)" "CN=$id"
  # Progress on stderr.
  for line in "Generating $kt key..." "Sending CSR to $XB_URL/api/certificate" "Received certificate" \
    "Certificate verified" "Stored in $d"; do
    xb_contains "$kt: progress '$line'" "$(err)" "$line"
  done
done

# The store layout: links into ..data, a link to one generation directory.
d=$XB_TMP/st-ec-p256
xb_eq "store: DIR is 0700" "$(stat -c %a "$d")" 700
xb_eq "store: device.pem links into ..data" "$(readlink "$d/device.pem")" "..data/device.pem"
xb_eq "store: device.key links into ..data" "$(readlink "$d/device.key")" "..data/device.key"
xb_eq "store: chain.pem links into ..data" "$(readlink "$d/chain.pem")" "..data/chain.pem"
xb_contains "store: ..data links to a generation" "$(readlink "$d/..data")" "..gen-"
xb_eq "store: one generation directory" "$(find "$d" -maxdepth 1 -name '..gen-*' | wc -l)" 1

# ---- a re-run is a no-op: nothing sent, nothing written ----
before=$(sums "$d") gen=$(readlink "$d/..data")
enroll --id dev-ec-p256 --out "$d" --json
xb_eq "re-run: exit 0" "$RC" 0
xb_eq "re-run: json status unchanged" "$(jf .status)" unchanged
xb_eq "re-run: json serial is the stored one" "$(jf .serial)" "$(serial_of "$d/device.pem")"
xb_contains "re-run: says so" "$(err)" "already stored"
xb_lacks "re-run: no CSR sent" "$(err)" "Sending CSR"
xb_eq "re-run: no new registry row" "$(xb_cert_rows dev-ec-p256)" 1
xb_eq "re-run: files unchanged" "$(sums "$d")" "$before"
xb_eq "re-run: same generation" "$(readlink "$d/..data")" "$gen"
enroll --id dev-ec-p256 --out "$d" --quiet
xb_eq "re-run --quiet: exit 0" "$RC" 0
xb_eq "re-run --quiet: silent" "$(out)$(err)" ""

# ---- --force when the server refuses re-enrollment (the default) ----
enroll --id dev-ec-p256 --out "$d" --force --json
xb_eq "--force, refused: exit 1" "$RC" 1
xb_eq "--force, refused: error server_refused" "$(jf .error)" server_refused
xb_eq "--force, refused: HTTP 409" "$(jf .httpStatus)" 409
xb_eq "--force, refused: server code" "$(jf .serverError)" already_enrolled
msg=$(jf .serverMessage)
xb_check "--force, refused: server message given" test -n "$msg"
xb_contains "--force, refused: stderr shows the code" "$(err)" "server said: already_enrolled: "
xb_contains "--force, refused: stderr shows the message" "$(err)" "$msg"
xb_eq "--force, refused: files unchanged" "$(sums "$d")" "$before"
xb_eq "--force, refused: one registry row" "$(xb_cert_rows dev-ec-p256)" 1

# ---- the server allows re-enrollment and wants an API key ----
APIKEY=k3y-$RANDOM-$RANDOM-secret
printf '%s\n' "$APIKEY" >"$XB_TMP/api.key" # the trailing newline is not part of the key
KEYARG=(--api-key-file "$XB_TMP/api.key")
xb_stop_server
xb_write_config "[enroll]" "allow_reenroll = true" "api_key = $APIKEY"
xb_start_server || exit 1
enroll --id dev-ec-p256 --out "$d" --force --json
xb_eq "no API key: exit 1" "$RC" 1
xb_eq "no API key: server says unauthorized" "$(jf .serverError)" unauthorized
xb_eq "no API key: files unchanged" "$(sums "$d")" "$before"
old_serial=$(serial_of "$d/device.pem") old_key=$(key_pub "$d/device.key")
enroll --id dev-ec-p256 --out "$d" --force --json "${KEYARG[@]}"
xb_eq "--force, allowed: exit 0" "$RC" 0
xb_eq "--force, allowed: json status issued" "$(jf .status)" issued
xb_check "--force, allowed: new serial" test "$(serial_of "$d/device.pem")" != "$old_serial"
xb_check "--force, allowed: new key" test "$(key_pub "$d/device.key")" != "$old_key"
xb_eq "--force, allowed: the certificate holds the new key" "$(cert_pub "$d/device.pem")" "$(key_pub "$d/device.key")"
xb_contains "--force, allowed: verifies" "$(verify "$d/device.pem")" "device.pem: OK"
xb_eq "--force, allowed: two registry rows" "$(xb_cert_rows dev-ec-p256)" 2
xb_eq "--force, allowed: one generation left" "$(find "$d" -maxdepth 1 -name '..gen-*' | wc -l)" 1
xb_lacks "the API key is never printed" "$(out)$(err)" "$APIKEY"
: >"$XB_TMP/empty.key"
enroll --id dev-ec-p256 --out "$d" --force --api-key-file "$XB_TMP/empty.key"
xb_eq "an empty API key file: exit 1" "$RC" 1
enroll --id dev-ec-p256 --out "$d" --force --api-key-file "$XB_TMP/no-such-file"
xb_eq "a missing API key file: exit 1" "$RC" 1
xb_contains "a missing API key file: named" "$(err)" "no-such-file"

# ---- --subject ----
enroll --id dev-subj --out "$XB_TMP/st-subj" --subject "/O=Contoso/OU=Sensors" --json "${KEYARG[@]}"
xb_eq "--subject: exit 0" "$RC" 0
xb_eq "--subject: in the certificate" "$(jf .subject)" "CN=dev-subj,OU=Sensors,O=Contoso"

# ---- an unregistered device ----
enroll --id ghost-1 --out "$XB_TMP/st-ghost" "${KEYARG[@]}"
xb_eq "unregistered: exit 1" "$RC" 1
xb_contains "unregistered: stderr says device_unknown" "$(err)" "device_unknown"
xb_check "unregistered: nothing stored" stored_nothing "$XB_TMP/st-ghost"
xb_eq "unregistered: no registry row" "$(xb_cert_rows ghost-1)" 0
enroll --id ghost-1 --out "$XB_TMP/st-ghost" --json "${KEYARG[@]}"
xb_eq "unregistered --json: status failed" "$(jf .status)" failed
xb_eq "unregistered --json: error" "$(jf .error)" server_refused
xb_eq "unregistered --json: message" "$(jf .message)" "the server refused the request"
xb_eq "unregistered --json: HTTP 403" "$(jf .httpStatus)" 403
xb_eq "unregistered --json: serverError" "$(jf .serverError)" device_unknown
xb_check "unregistered --json: detail" test -n "$(jf .detail)"

# ---- a store that cannot be written fails before the CSR is sent (which would use up the
# device's one enrollment) ----
: >"$XB_TMP/a-file"
for out in "$XB_TMP/a-file" "$XB_TMP/a-file/sub" "$XB_TMP/no-such-dir/sub"; do
  enroll --id dev-store --out "$out" --json "${KEYARG[@]}"
  xb_eq "store ${out#"$XB_TMP"/}: exit 1" "$RC" 1
  xb_eq "store ${out#"$XB_TMP"/}: storage_error" "$(jf .error)" storage_error
  xb_lacks "store ${out#"$XB_TMP"/}: no CSR sent" "$(err)" "Sending CSR"
done
xb_eq "unwritable store: the server issued nothing" "$(xb_cert_rows dev-store)" 0
enroll --id dev-store --out "$XB_TMP/st-store/" --json "${KEYARG[@]}"
xb_eq "then a usable store (trailing slash): exit 0" "$RC" 0
xb_eq "a trailing slash in --out: json paths" "$(jf .certificate)" "$XB_TMP/st-store/device.pem"

# ---- PKCS#12 ----
printf 'pfx pass %s\n' "$RANDOM" >"$XB_TMP/pfx.pw"
d=$XB_TMP/st-pfx
enroll --id dev-pfx --out "$d" --pfx --pfx-password-file "$XB_TMP/pfx.pw" --json "${KEYARG[@]}"
xb_eq "--pfx: exit 0" "$RC" 0
xb_eq "--pfx: json pfx" "$(jf .pfx)" "$d/device.pfx"
xb_eq "--pfx: device.pfx mode 0600" "$(stat -L -c %a "$d/device.pfx" 2>&1)" 600
xb_eq "--pfx: device.pfx links into ..data" "$(readlink "$d/device.pfx")" "..data/device.pfx"
p12=$(openssl pkcs12 -in "$d/device.pfx" -passin "file:$XB_TMP/pfx.pw" -nodes 2>/dev/null)
xb_contains "--pfx: holds the key" "$p12" "BEGIN PRIVATE KEY"
xb_check "--pfx: holds the certificate and its chain" test "$(grep -c 'BEGIN CERTIFICATE' <<<"$p12")" -ge 2
xb_contains "--pfx: the device certificate" "$p12" "subject=CN = dev-pfx"
xb_contains "--pfx: the signing CA" "$p12" "subject=O = XBoot, CN = XBoot Signing CA"
xb_eq "--pfx: its key is device.key" \
  "$(openssl pkcs12 -in "$d/device.pfx" -passin "file:$XB_TMP/pfx.pw" -nocerts -nodes 2>/dev/null | openssl pkey -pubout)" \
  "$(key_pub "$d/device.key")"
xb_check "--pfx: a wrong password is refused" \
  sh -c "! openssl pkcs12 -in '$d/device.pfx' -passin pass:wrong -nodes >/dev/null 2>&1"
xb_lacks "--pfx: the password is never printed" "$(out)$(err)" "$(head -n1 "$XB_TMP/pfx.pw")"

# ---- a no-op run with --pfx adds a missing .pfx from the stored key, without the network ----
d=$XB_TMP/st-store
rows=$(xb_cert_rows dev-store)
enroll --id dev-store --out "$d" --pfx --pfx-password-file "$XB_TMP/pfx.pw" --json "${KEYARG[@]}"
xb_eq "--pfx over a store without one: exit 0" "$RC" 0
xb_eq "--pfx over a store without one: unchanged" "$(jf .status)" unchanged
xb_lacks "--pfx over a store without one: no CSR sent" "$(err)" "Sending CSR"
xb_eq "--pfx over a store without one: no new registry row" "$(xb_cert_rows dev-store)" "$rows"
xb_eq "--pfx over a store without one: the .pfx holds the stored key" \
  "$(openssl pkcs12 -in "$d/device.pfx" -passin "file:$XB_TMP/pfx.pw" -nocerts -nodes 2>/dev/null | openssl pkey -pubout)" \
  "$(key_pub "$d/device.key")"

# ---- two enrollments into one store at the same time: one waits for the other, then finds
# its certificate (one CSR sent, one certificate issued) ----
xb_ctl device add dev-twice >/dev/null
d=$XB_TMP/st-twice
twice_pids=()
for i in 1 2 3; do
  timeout 120 "$ENROLL" --server "$XB_URL" --trust "$CA/root-ca.pem" --id dev-twice --out "$d" \
    --json "${KEYARG[@]}" >"$XB_TMP/twice.$i" 2>"$XB_TMP/twice.$i.err" &
  twice_pids+=($!)
done
wait "${twice_pids[@]}" # not a bare wait: xbootd is a background job too
statuses=$(for i in 1 2 3; do jq -r .status "$XB_TMP/twice.$i" 2>/dev/null; done | sort | tr '\n' ' ')
xb_eq "three runs on one store: one issued, two found it" "$statuses" "issued unchanged unchanged "
xb_eq "three runs on one store: one certificate issued" "$(xb_cert_rows dev-twice)" 1
xb_eq "three runs on one store: the stored certificate is it" "$(xb_cert_rows dev-twice)" \
  "$(rows_with_serial "$(serial_of "$d/device.pem")")"

# ---- fake servers: an invalid ID never reaches the network ----
fake_start ok-tls "$CA/tls" --status 500 --body /dev/null
SERVER=$FAKE_URL enroll --id "bad id!" --out "$XB_TMP/st-bad" --json
xb_eq "invalid ID: exit 2" "$RC" 2
xb_contains "invalid ID: says why" "$(err)" "invalid registration ID"
xb_eq "invalid ID: no JSON on stdout" "$(out)" ""
xb_eq "invalid ID: no request reached the server" "$(fake_requests)" 0
xb_check "invalid ID: nothing stored" test ! -e "$XB_TMP/st-bad"
fake_stop

# ---- an untrusted server gets no CSR ----
"$XB_BIN/xbootctl" ca init --dir "$XB_TMP/other" >/dev/null
fake_start other-ca "$XB_TMP/other/tls" --status 500 --body /dev/null
SERVER=$FAKE_URL enroll --id dev-a --out "$XB_TMP/st-u" --json --retries 0
xb_eq "server of another CA: exit 1" "$RC" 1
xb_eq "server of another CA: server_untrusted" "$(jf .error)" server_untrusted
xb_eq "server of another CA: no request received" "$(fake_requests)" 0
xb_check "server of another CA: nothing stored" stored_nothing "$XB_TMP/st-u"
# Control: the fake server does log what reaches it.
curl -s -o /dev/null --max-time 10 --cacert "$XB_TMP/other/root-ca.pem" -X POST -d x "$FAKE_URL/api/certificate"
xb_eq "server of another CA: control request logged" "$(fake_requests)" 1
fake_stop

# A certificate from our root that does not name 127.0.0.1.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$XB_TMP/host.key" \
  -subj /CN=wrong.example -out "$XB_TMP/host.csr" 2>/dev/null
printf 'subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$XB_TMP/host.ext"
openssl x509 -req -in "$XB_TMP/host.csr" -CA "$CA/root-ca.pem" -CAkey "$CA/root-ca.key" -days 30 \
  -set_serial 0x$RANDOM$RANDOM -extfile "$XB_TMP/host.ext" -out "$XB_TMP/host.pem" 2>/dev/null
fake_start wrong-host "$XB_TMP/host" --status 500 --body /dev/null
SERVER=$FAKE_URL enroll --id dev-a --out "$XB_TMP/st-h" --json --retries 0
xb_eq "wrong host name: exit 1" "$RC" 1
xb_eq "wrong host name: server_untrusted" "$(jf .error)" server_untrusted
xb_eq "wrong host name: no request received" "$(fake_requests)" 0
xb_check "wrong host name: nothing stored" stored_nothing "$XB_TMP/st-h"
port=${FAKE_URL##*:}
curl -s -o /dev/null --max-time 10 --cacert "$CA/root-ca.pem" --resolve "wrong.example:$port:127.0.0.1" \
  "https://wrong.example:$port/"
xb_eq "wrong host name: control (the chain is good under its own name)" "$(fake_requests)" 1
fake_stop

# ---- tampered answers: refused, nothing stored ----
xb_csr ec-p256 dev-a "$XB_TMP/a"
xb_post "$(xb_enroll_body dev-a "$XB_TMP/a.der")" "?code=$APIKEY"
xb_eq "device A enrolled by curl: 200" "$XB_STATUS" 200
cp "$XB_TMP/resp.json" "$XB_TMP/answer-a.json"
fake_start tamper "$CA/tls" --status 200 --body "$XB_TMP/answer-a.json"
SERVER=$FAKE_URL enroll --id dev-a --out "$XB_TMP/st-t" --json
xb_eq "A's certificate for a new key: exit 1" "$RC" 1
xb_eq "A's certificate for a new key: cert_key_mismatch" "$(jf .error)" cert_key_mismatch
xb_check "A's certificate for a new key: nothing stored" stored_nothing "$XB_TMP/st-t"
xb_eq "A's certificate for a new key: the CSR was sent" "$(fake_requests)" 1
fake_stop

printf 'this is not JSON\n' >"$XB_TMP/garbage"
printf '{"Certificate":"bm90IGEgY2VydGlmaWNhdGU="}' >"$XB_TMP/notcert.json"
for body in garbage notcert.json; do
  fake_start "bad-$body" "$CA/tls" --status 200 --body "$XB_TMP/$body"
  SERVER=$FAKE_URL enroll --id dev-a --out "$XB_TMP/st-g" --json
  xb_eq "answer '$body': exit 1" "$RC" 1
  xb_eq "answer '$body': bad_response" "$(jf .error)" bad_response
  xb_check "answer '$body': nothing stored" stored_nothing "$XB_TMP/st-g"
  fake_stop
done

# The fake server signs the CSR itself: with our signing CA (a control that must work), with
# another CA, and with another CN.
fake_start sign-ok "$CA/tls" --sign-cert "$CA/signing-ca.pem" --sign-key "$CA/signing-ca.key"
printf 'device-secret-%s\n' "$RANDOM" >"$XB_TMP/cred"
SERVER=$FAKE_URL enroll --id dev-a --out "$XB_TMP/st-f" --json "${KEYARG[@]}" --credential-file "$XB_TMP/cred"
xb_eq "signed by our CA (control): exit 0" "$RC" 0
xb_contains "signed by our CA (control): verifies" "$(verify "$XB_TMP/st-f/device.pem")" "device.pem: OK"
xb_contains "credential sent as HTTP Basic, API key as header" "$(cat "$FAKE_LOG")" "auth=basic apikey=yes"
xb_lacks "the credential is never printed" "$(out)$(err)" "$(head -n1 "$XB_TMP/cred")"
fake_stop
fake_start sign-other "$CA/tls" --sign-cert "$XB_TMP/other/signing-ca.pem" --sign-key "$XB_TMP/other/signing-ca.key"
SERVER=$FAKE_URL enroll --id dev-a --out "$XB_TMP/st-o" --json
xb_eq "certificate from another CA: exit 1" "$RC" 1
xb_eq "certificate from another CA: cert_untrusted" "$(jf .error)" cert_untrusted
xb_check "certificate from another CA: nothing stored" stored_nothing "$XB_TMP/st-o"
fake_stop
fake_start sign-cn "$CA/tls" --sign-cert "$CA/signing-ca.pem" --sign-key "$CA/signing-ca.key" \
  --sign-subject /CN=dev-b
SERVER=$FAKE_URL enroll --id dev-a --out "$XB_TMP/st-c" --json
xb_eq "certificate for another CN: exit 1" "$RC" 1
xb_eq "certificate for another CN: cert_subject_mismatch" "$(jf .error)" cert_subject_mismatch
xb_check "certificate for another CN: nothing stored" stored_nothing "$XB_TMP/st-c"
fake_stop

# A server that echoes the API key in its message: the key is still never printed.
printf '{"error":"unauthorized","message":"wrong key %s"}' "$APIKEY" >"$XB_TMP/echo.json"
fake_start echo "$CA/tls" --status 401 --body "$XB_TMP/echo.json"
SERVER=$FAKE_URL enroll --id dev-a --out "$XB_TMP/st-e" --json "${KEYARG[@]}"
xb_eq "a server echoing the key: exit 1" "$RC" 1
xb_lacks "a server echoing the key: not on stdout or stderr" "$(out)$(err)" "$APIKEY"
xb_contains "a server echoing the key: redacted" "$(jf .serverMessage)" "wrong key [redacted]"
fake_stop

# ---- retries ----
printf '{"error":"ca_unavailable","message":"try later"}' >"$XB_TMP/busy.json"
fake_start busy "$CA/tls" --status 503 --body "$XB_TMP/busy.json" --header "Retry-After: 1"
t0=$(now_ms)
SERVER=$FAKE_URL enroll --id dev-a --out "$XB_TMP/st-r" --json --retries 2 --timeout 5
ms=$(($(now_ms) - t0))
xb_eq "503 on every attempt: exit 1" "$RC" 1
xb_eq "503 on every attempt: server_busy" "$(jf .error)" server_busy
xb_eq "503 on every attempt: --retries 2 makes 3 requests" "$(fake_requests)" 3
xb_check "503 on every attempt: Retry-After waited (${ms} ms)" test "$ms" -ge 2000
xb_check "503 on every attempt: bounded (${ms} ms)" test "$ms" -lt 30000
xb_contains "503 on every attempt: says it retries" "$(err)" "Retrying"
xb_check "503 on every attempt: nothing stored" stored_nothing "$XB_TMP/st-r"
: >"$FAKE_LOG"
SERVER=$FAKE_URL enroll --id dev-a --out "$XB_TMP/st-r" --retries 0 --timeout 5
xb_eq "--retries 0: one request" "$(fake_requests)" 1
fake_stop

closed=$("$XB_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
t0=$(now_ms)
SERVER=https://127.0.0.1:$closed enroll --id dev-a --out "$XB_TMP/st-n" --json --retries 1 --timeout 2
ms=$(($(now_ms) - t0))
xb_eq "connection refused: exit 1" "$RC" 1
xb_eq "connection refused: network" "$(jf .error)" network_error
xb_check "connection refused: quick (${ms} ms)" test "$ms" -lt 15000
xb_check "connection refused: nothing stored" stored_nothing "$XB_TMP/st-n"

# ---- valgrind: no definite or indirect leaks, no memory errors ----
if [ "${XB_SANITIZE:-0}" = 1 ]; then
  echo "skip - valgrind (XB_SANITIZE=1: ASan and valgrind do not mix)"
else
  vg() { # vg NAME ARGS...: xboot-enroll under valgrind; sets RC
    local name=$1 log=$XB_TMP/vg-$1.log
    shift
    timeout 240 valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect \
      --error-exitcode=99 --track-origins=no --log-file="$log" \
      "$ENROLL" --trust "$CA/root-ca.pem" --timeout 60 "$@" >"$XB_TMP/out" 2>"$XB_TMP/err"
    RC=$?
    xb_check "valgrind, $name: valgrind ran" grep -q "ERROR SUMMARY" "$log"
    [ "$RC" = 99 ] && grep -E -A8 "ERROR SUMMARY|definitely|indirectly|Invalid|uninitialised" "$log" | head -40
  }
  vg ok --server "$XB_URL" --id dev-vg --out "$XB_TMP/st-vg" --key-type ec-p256 --json "${KEYARG[@]}"
  xb_eq "valgrind, enrollment: exit 0 (99: valgrind errors)" "$RC" 0
  vg noop --server "$XB_URL" --id dev-vg --out "$XB_TMP/st-vg" --json "${KEYARG[@]}"
  xb_eq "valgrind, no-op re-run: exit 0" "$RC" 0
  vg unknown --server "$XB_URL" --id ghost-2 --out "$XB_TMP/st-vg2" --json "${KEYARG[@]}"
  xb_eq "valgrind, device_unknown: exit 1 (99: valgrind errors)" "$RC" 1
  fake_start vg-tamper "$CA/tls" --status 200 --body "$XB_TMP/answer-a.json"
  vg tamper --server "$FAKE_URL" --id dev-a --out "$XB_TMP/st-vg3" --json
  xb_eq "valgrind, tampered answer: exit 1 (99: valgrind errors)" "$RC" 1
  fake_stop
fi

xb_stop_server
xb_finish
