#!/usr/bin/env bash
# Configuration as an operator uses it: `xbootd --check` says OK for a usable file and names
# the problem otherwise (exit 1); every key can be overridden by XBOOT_<SECTION>_<KEY>; the
# optional plain-HTTP listener; TLS 1.2 and 1.3 only; any number of workers.
. "$(dirname "$0")/lib.sh"

xb_ca_init
CONF="$XB_TMP/xboot.conf"

# check_fails "what" NEEDLE [config lines...]: --check exits 1 and its output contains NEEDLE.
check_fails() {
  local what=$1 needle=$2; shift 2
  xb_write_config "$@"
  local out rc
  out=$("$XB_BIN/xbootd" --check -c "$CONF" 2>&1); rc=$?
  xb_eq "--check $what: exit 1" "$rc" 1
  xb_contains "--check $what: message" "$out" "$needle"
  xb_lacks "--check $what: does not claim OK" "$out" "configuration OK"
}

# ---- --check ----
xb_write_config
out=$("$XB_BIN/xbootd" --check -c "$CONF" 2>&1); rc=$?
xb_eq "--check good config: exit 0" "$rc" 0
xb_contains "--check good config: says so" "$out" "configuration OK"
xb_lacks "--check starts no server (nothing listening)" "$out" "listening on"

check_fails "unknown key" "api_kee" "[enroll]" "api_kee = secret"
check_fails "unknown section" "bogus" "[bogus]" "x = 1"
check_fails "bad number" "validity_days" "[ca]" "validity_days = ten"
check_fails "number out of range" "threads" "[server]" "threads = 100000"
check_fails "bad boolean" "allow_reenroll" "[enroll]" "allow_reenroll = maybe"
check_fails "mode = bogus" "mode" "[enroll]" "mode = bogus"
check_fails "bad log_level" "log_level" "[server]" "log_level = loud"
# check_fails_edit "what" ERE SED_EXPR: the default config edited by SED_EXPR fails --check
# with a message matching ERE (case-insensitive).
check_fails_edit() {
  local what=$1 re=$2 expr=$3 out rc
  xb_write_config
  sed -i "$expr" "$CONF"
  out=$("$XB_BIN/xbootd" --check -c "$CONF" 2>&1); rc=$?
  xb_eq "--check $what: exit 1" "$rc" 1
  xb_check "--check $what: says what is wrong ($out)" grep -qiE "$re" <<<"$out"
}
check_fails_edit "missing CA file" "missing\.pem" 's|^cert = ca/signing-ca.pem|cert = ca/missing.pem|'
check_fails_edit "CA key does not match CA cert" "match" 's|^key = ca/signing-ca.key|key = ca/tls.key|'
check_fails_edit "non-CA certificate as [ca] cert" "not a CA" \
  's|^cert = ca/signing-ca.pem|cert = ca/tls.pem|; s|^key = ca/signing-ca.key|key = ca/tls.key|'
check_fails_edit "unknown registry scheme" "mysql|scheme|unsupported|unknown" 's|^db = .*|db = mysql://localhost/xboot|'
check_fails_edit "missing TLS certificate" "tls_cert" 's|^tls_cert = .*|tls_cert = ca/nope.pem|'
# A registry URL may hold a password: it never reaches the output. On 127.0.0.1 port 1, where
# nothing listens, so no traffic leaves the machine: the check fails naming the server.
xb_write_config
out=$(XBOOT_REGISTRY_DB='postgresql://xboot:hunter2@127.0.0.1:1/xboot?application_name=q' \
  "$XB_BIN/xbootd" --check -c "$CONF" 2>&1); rc=$?
xb_eq "--check registry URL with a password, server down: exit 1" "$rc" 1
xb_lacks "--check registry URL with a password: the password is not printed" "$out" "hunter2"
xb_lacks "--check registry URL with a password: nor its query" "$out" "application_name"
xb_contains "--check registry URL with a password: names the server" "$out" \
  "postgresql://127.0.0.1:1/xboot"
out=$("$XB_BIN/xbootd" --check -c "$XB_TMP/no-such.conf" 2>&1); rc=$?
xb_eq "--check missing config file: exit 1" "$rc" 1
xb_contains "--check missing config file: names it" "$out" "no-such.conf"
# A bad value from the environment is refused like one from the file.
xb_write_config
out=$(XBOOT_ENROLL_MODE=bogus "$XB_BIN/xbootd" --check -c "$CONF" 2>&1); rc=$?
xb_eq "--check XBOOT_ENROLL_MODE=bogus: exit 1" "$rc" 1
xb_contains "--check XBOOT_ENROLL_MODE=bogus: names the value" "$out" "bogus"
# A bad config does not start the server either.
xb_write_config "[enroll]" "mode = bogus"
timeout 10 "$XB_BIN/xbootd" -c "$CONF" >/dev/null 2>&1; rc=$?
xb_eq "xbootd with a bad config exits 1 at once" "$rc" 1

# ---- environment overrides ----
xb_ctl device add env-1 env-2 env-3 plain-1 >/dev/null
xb_write_config
export XBOOT_CA_VALIDITY_DAYS=30
xb_start_server || xb_bad "server starts with XBOOT_CA_VALIDITY_DAYS"
unset XBOOT_CA_VALIDITY_DAYS
xb_csr ec-p256 env-1 "$XB_TMP/env-1"
xb_post "$(xb_enroll_body env-1 "$XB_TMP/env-1.der")"
xb_eq "XBOOT_CA_VALIDITY_DAYS=30: 200" "$XB_STATUS" 200
if xb_save_cert "$XB_TMP/env-1.pem"; then
  nb=$(date -d "$(openssl x509 -in "$XB_TMP/env-1.pem" -noout -startdate | cut -d= -f2)" +%s)
  na=$(date -d "$(openssl x509 -in "$XB_TMP/env-1.pem" -noout -enddate | cut -d= -f2)" +%s)
  xb_eq "XBOOT_CA_VALIDITY_DAYS=30: certificate valid 30 days" $(((na - nb) / 86400)) 30
  xb_check "XBOOT_CA_VALIDITY_DAYS=30: notAfter within 30 days from now" test $((na - $(date +%s))) -le $((30 * 86400))
fi
xb_stop_server

KEY="env-key-$$-$RANDOM"
xb_write_config
export XBOOT_ENROLL_API_KEY=$KEY
xb_start_server || xb_bad "server starts with XBOOT_ENROLL_API_KEY"
unset XBOOT_ENROLL_API_KEY
xb_csr ec-p256 env-2 "$XB_TMP/env-2"
xb_post "$(xb_enroll_body env-2 "$XB_TMP/env-2.der")"
xb_expect_error "XBOOT_ENROLL_API_KEY only in env: no key" 401 unauthorized 1
xb_post "$(xb_enroll_body env-2 "$XB_TMP/env-2.der")" "?code=$KEY"
xb_eq "XBOOT_ENROLL_API_KEY only in env: right key 200" "$XB_STATUS" 200
xb_check "XBOOT_ENROLL_API_KEY: not in the log" sh -c "! grep -qF -- '$KEY' '$XB_TMP/xbootd.log'"
xb_stop_server

# The environment wins over the file.
xb_write_config "[enroll]" "api_key = from-file"
export XBOOT_ENROLL_API_KEY=$KEY
xb_start_server || xb_bad "server starts with api_key in file and env"
unset XBOOT_ENROLL_API_KEY
xb_csr ec-p256 env-3 "$XB_TMP/env-3"
xb_post "$(xb_enroll_body env-3 "$XB_TMP/env-3.der")" "?code=from-file"
xb_expect_error "env overrides file: the file's key no longer works" 401 unauthorized 2
xb_post "$(xb_enroll_body env-3 "$XB_TMP/env-3.der")" "?code=$KEY"
xb_eq "env overrides file: the env key works" "$XB_STATUS" 200
xb_stop_server

# ---- plain HTTP listener ----
xb_write_config "[server]" "http_listen = 127.0.0.1:0"
# ([server] appears twice: libinih merges sections, and the second one only adds http_listen.)
if xb_start_server; then
  xb_check "https + http: log says listening on http://127.0.0.1:PORT" \
    grep -qE 'listening on http://127\.0\.0\.1:[0-9]+' "$XB_TMP/xbootd.log"
  xb_check "https + http: XB_HTTP_URL found" test -n "$XB_HTTP_URL"
  st=$(curl -s -o "$XB_TMP/resp.json" -w '%{http_code}' --max-time 10 "$XB_HTTP_URL/healthz")
  xb_eq "https + http: /healthz over http 200" "$st" 200
  xb_eq "https + http: /healthz over http says ok" "$(xb_json status)" ok
  st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$XB_TMP/ca/root-ca.pem" "$XB_URL/healthz")
  xb_eq "https + http: /healthz over https still 200" "$st" 200
  # TLS to the plain port fails cleanly (no hang beyond the timeout).
  st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$XB_TMP/ca/root-ca.pem" "https://${XB_HTTP_URL#http://}/healthz")
  xb_check "https + http: TLS to the plain port fails ($st)" test "$st" = 000
  xb_check "https + http: server still up" kill -0 "$XB_PID"
else
  xb_bad "server starts with http_listen"
fi
xb_stop_server

xb_write_config
sed -i 's|^listen = .*|listen =\nhttp_listen = 127.0.0.1:0|' "$CONF"
out=$("$XB_BIN/xbootd" --check -c "$CONF" 2>&1); rc=$?
xb_eq "--check plain HTTP only: exit 0" "$rc" 0
if xb_start_server; then
  xb_check "plain HTTP only: no https listener" sh -c "! grep -q 'listening on https' '$XB_TMP/xbootd.log'"
  xb_check "plain HTTP only: a warning that HTTPS is off" grep -qiE 'warn.*(https|plain)' "$XB_TMP/xbootd.log"
  xb_request GET /healthz
  xb_eq "plain HTTP only: /healthz 200" "$XB_STATUS" 200
  xb_csr ec-p256 plain-1 "$XB_TMP/plain-1"
  xb_post "$(xb_enroll_body plain-1 "$XB_TMP/plain-1.der")"
  xb_eq "plain HTTP only: enrollment 200" "$XB_STATUS" 200
  st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$XB_TMP/ca/root-ca.pem" "https://${XB_HTTP_URL#http://}/healthz")
  xb_eq "plain HTTP only: no TLS on the port" "$st" 000
else
  xb_bad "server starts with only http_listen"
fi
xb_stop_server
xb_write_config "[server]" "listen =" "http_listen ="
out=$("$XB_BIN/xbootd" --check -c "$CONF" 2>&1); rc=$?
xb_eq "--check nothing to listen on: exit 1" "$rc" 1
xb_contains "--check nothing to listen on: says so" "$out" "listen"

# ---- TLS versions ----
xb_write_config
if xb_start_server; then
  hp=$(xb_hostport)
  sclient() { timeout 10 openssl s_client -connect "$hp" -servername localhost \
    -CAfile "$XB_TMP/ca/root-ca.pem" "$@" </dev/null 2>&1; }
  out=$(sclient -tls1_2); rc=$?
  xb_eq "TLS 1.2 handshake succeeds" "$rc" 0
  xb_check "TLS 1.2 negotiated" grep -qE 'Protocol *: TLSv1\.2|New, TLSv1\.2' <<<"$out"
  xb_check "TLS 1.2: server certificate verifies" grep -q 'Verify return code: 0 (ok)' <<<"$out"
  out=$(sclient -tls1_3); rc=$?
  xb_eq "TLS 1.3 handshake succeeds" "$rc" 0
  xb_check "TLS 1.3 negotiated" grep -qE 'Protocol *: TLSv1\.3|New, TLSv1\.3' <<<"$out"
  # SECLEVEL=0 so that the client really offers TLS 1.1: the refusal must come from the server.
  out=$(sclient -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'); rc=$?
  xb_check "TLS 1.1 handshake fails (rc $rc)" test "$rc" -ne 0
  xb_contains "TLS 1.1: no cipher negotiated" "$out" "Cipher is (NONE)"
  xb_contains "TLS 1.1: the server answers with a protocol_version alert" "$out" "alert protocol version"
  out=$(sclient -tls1); rc=$?
  xb_check "TLS 1.0 handshake fails (rc $rc)" test "$rc" -ne 0
  xb_request GET /healthz
  xb_eq "healthz after the TLS probes" "$XB_STATUS" 200
else
  xb_bad "server starts for the TLS probes"
fi
xb_stop_server

# ---- worker counts ----
for n in 1 3; do
  xb_write_config
  sed -i "s/^threads = .*/threads = $n/" "$CONF"
  if xb_start_server; then
    xb_contains "threads = $n: log says $n worker(s)" "$(cat "$XB_TMP/xbootd.log")" "$n worker(s)"
    xb_eq "threads = $n: $n worker processes" "$(pgrep -P "$XB_PID" | wc -l)" "$n"
    fails=0
    for i in $(seq 1 12); do
      xb_request GET /healthz; [ "$XB_STATUS" = 200 ] || fails=$((fails + 1))
    done
    xb_eq "threads = $n: 12 healthz all 200" "$fails" 0
    id="threads-$n"
    xb_ctl device add "$id" >/dev/null
    xb_csr ec-p256 "$id" "$XB_TMP/$id"
    xb_post "$(xb_enroll_body "$id" "$XB_TMP/$id.der")"
    xb_eq "threads = $n: enrollment 200" "$XB_STATUS" 200
  else
    xb_bad "server starts with threads = $n"
  fi
  xb_stop_server
done

# ---- a CA key others can read is worth a warning, not a refusal ----
xb_write_config
chmod 644 "$XB_TMP/ca/signing-ca.key"
out=$("$XB_BIN/xbootd" --check -c "$CONF" 2>&1); rc=$?
xb_eq "--check with a 0644 CA key: still usable" "$rc" 0
xb_contains "--check with a 0644 CA key: warns" "$out" "readable by group or others"
chmod 600 "$XB_TMP/ca/signing-ca.key"
out=$("$XB_BIN/xbootd" --check -c "$CONF" 2>&1)
xb_check "--check with a 0600 CA key: no warning" sh -c "! grep -q 'readable by' <<'T'
$out
T"
xb_finish
