# Shared helpers of the end-to-end tests. Source it; it makes a temp dir, and on exit stops
# every process it started and removes the dir. Everything listens on 127.0.0.1 only.
set -u

XB_BIN=${XB_BIN:?XB_BIN must name the build directory}
XB_FIXTURES=${XB_FIXTURES:?XB_FIXTURES must name tests/fixtures}
XB_TMP=$(mktemp -d /tmp/xboot-e2e.XXXXXX)
XB_PASS=0
XB_FAIL=0
XB_PID=""
# Debian's python3 (with python3-cryptography from install-deps), not a pyenv shim that starts
# slowly and lacks the module.
XB_PYTHON=/usr/bin/python3
[ -x "$XB_PYTHON" ] || XB_PYTHON=python3

xb_cleanup() {
  xb_stop_server
  rm -rf "$XB_TMP"
}
trap xb_cleanup EXIT

xb_ok()   { XB_PASS=$((XB_PASS + 1)); echo "ok   - $*"; }
xb_bad()  { XB_FAIL=$((XB_FAIL + 1)); echo "FAIL - $*"; }
xb_check() { # xb_check "description" command...
  local what=$1; shift
  if "$@"; then xb_ok "$what"; else xb_bad "$what"; fi
}
xb_eq() { # xb_eq "description" actual expected
  if [ "$2" = "$3" ]; then xb_ok "$1"; else xb_bad "$1 (got '$2', want '$3')"; fi
}
xb_contains() { # xb_contains "description" haystack needle
  case "$2" in *"$3"*) xb_ok "$1" ;; *) xb_bad "$1 ('$3' not in: $2)" ;; esac
}
xb_finish() {
  echo "$XB_PASS passed, $XB_FAIL failed"
  [ "$XB_FAIL" -eq 0 ] && [ "$XB_PASS" -gt 0 ]
}

# A development CA in $XB_TMP/ca (key type $1, default ec-p256).
xb_ca_init() {
  "$XB_BIN/xbootctl" ca init --dir "$XB_TMP/ca" --key-type "${1:-ec-p256}" >/dev/null
}

XB_DB="$XB_TMP/xboot.db"
xb_ctl() { "$XB_BIN/xbootctl" "$@" --db "sqlite:$XB_DB"; }

# Write $XB_TMP/xboot.conf; extra lines (e.g. "[enroll]" "mode = open") are appended.
xb_write_config() {
  cat >"$XB_TMP/xboot.conf" <<CONF
[server]
listen = 127.0.0.1:0
tls_cert = ca/tls.pem
tls_key = ca/tls.key
threads = 2
timeout_seconds = ${XB_TIMEOUT:-5}

[ca]
cert = ca/signing-ca.pem
key = ca/signing-ca.key
chain = ca/chain.pem

[registry]
db = sqlite:xboot.db

# Tests enroll one ID many times and from one address: limits off unless a test sets them
# (a later [rate_limit] in the arguments overrides these).
[rate_limit]
ip_per_minute = 0
id_per_minute = 0
CONF
  local line
  for line in "$@"; do echo "$line" >>"$XB_TMP/xboot.conf"; done
}

# Start xbootd with $XB_TMP/xboot.conf (ports from its "listening on" log lines). Sets XB_URL
# (https, or http when HTTPS is off) and XB_HTTP_URL (when plain HTTP is on).
xb_start_server() {
  : >"$XB_TMP/xbootd.log"
  # XB_LAUNCH may prefix the command (e.g. unshare to run xbootd as PID 1).
  ${XB_LAUNCH:-} "$XB_BIN/xbootd" -c "$XB_TMP/xboot.conf" 2>"$XB_TMP/xbootd.log" &
  XB_PID=$!
  local i
  for i in $(seq 1 100); do # at most 10 s: the "started" line follows the "listening" ones
    grep -q "xbootd .* started" "$XB_TMP/xbootd.log" && break
    kill -0 "$XB_PID" 2>/dev/null || break
    sleep 0.1
  done
  local sport hport
  sport=$(sed -n 's|.*listening on https://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$XB_TMP/xbootd.log" | head -n1)
  hport=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$XB_TMP/xbootd.log" | head -n1)
  XB_HTTP_URL=${hport:+http://127.0.0.1:$hport}
  XB_URL=${sport:+https://127.0.0.1:$sport}
  XB_URL=${XB_URL:-$XB_HTTP_URL}
  if [ -z "$XB_URL" ]; then
    echo "xbootd did not start:"; cat "$XB_TMP/xbootd.log"; XB_PID=""; return 1
  fi
  for i in $(seq 1 50); do # until a worker answers (bounded)
    curl -s -o /dev/null --max-time 2 --cacert "$XB_TMP/ca/root-ca.pem" "$XB_URL/healthz" && return 0
    sleep 0.1
  done
  echo "xbootd does not answer /healthz"; cat "$XB_TMP/xbootd.log"; return 1
}

# Stop a process this test started: TERM, then KILL after $2 seconds (default 15), and reap it.
xb_stop_pid() {
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null
  local i
  for i in $(seq 1 $((${2:-15} * 10))); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}

xb_stop_server() {
  [ -n "$XB_PID" ] || return 0
  xb_stop_pid "$XB_PID"
  XB_PID=""
  # Under ASan/UBSan a report in any worker fails the test.
  if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$XB_TMP/xbootd.log"; then
    xb_bad "sanitizer report in xbootd log"; grep -A30 -E "Sanitizer|runtime error" "$XB_TMP/xbootd.log" | head -60
  fi
}

# A CSR: xb_csr TYPE CN OUT_PREFIX -> OUT_PREFIX.key, OUT_PREFIX.der; TYPE: ec-p256 ec-p384
# rsa-2048 rsa-pss (RSA-2048 signed RSASSA-PSS/SHA-512 as the .NET client does) rsa-1024 ed25519.
xb_csr() {
  local type=$1 cn=$2 out=$3 subj="/CN=$2"
  [ -n "${XB_CSR_SUBJ:-}" ] && subj=$XB_CSR_SUBJ
  case "$type" in
    ec-p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out.key" ;;
    ec-p384) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$out.key" ;;
    rsa-2048|rsa-pss) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$out.key" ;;
    rsa-1024) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$out.key" ;;
    ed25519) openssl genpkey -algorithm ED25519 -out "$out.key" ;;
    ec-p521) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out "$out.key" ;;
  esac 2>/dev/null
  local sigopt=()
  [ "$type" = rsa-pss ] && sigopt=(-sha512 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:64)
  openssl req -new -key "$out.key" -subj "$subj" "${sigopt[@]}" -outform DER -out "$out.der" 2>/dev/null
}

xb_b64() { base64 -w0 <"$1"; }

# POST a body to /api/certificate. xb_post BODY [QUERY] [curl args...]
# Sets XB_STATUS and XB_BODY.
xb_post() {
  local body=$1 query=${2:-}; shift 2 2>/dev/null || shift $#
  printf '%s' "$body" >"$XB_TMP/req.json"
  XB_STATUS=$(curl -s -o "$XB_TMP/resp.json" -w '%{http_code}' --max-time 20 \
    --cacert "$XB_TMP/ca/root-ca.pem" -X POST -H 'Content-Type:' \
    --data-binary "@$XB_TMP/req.json" "$@" "$XB_URL/api/certificate$query")
  XB_BODY=$(cat "$XB_TMP/resp.json" 2>/dev/null)
}

xb_enroll_body() { # xb_enroll_body REGID CSR_DER_FILE
  printf '{"RegistrationId":"%s","Csr":"%s"}' "$1" "$(xb_b64 "$2")"
}

# A field of the last JSON answer: xb_json Certificate, xb_json Chain.0 (empty if absent or
# if the answer is not JSON).
xb_json() {
  jq -r --arg p "$1" 'getpath($p | split(".") | map(tonumber? // .)) // empty' \
    "$XB_TMP/resp.json" 2>/dev/null
}

# Write the issued certificate of the last answer as PEM to $1.
xb_save_cert() {
  xb_json Certificate | base64 -d >"$1.der" && openssl x509 -inform DER -in "$1.der" -out "$1"
}

xb_cert_rows() { sqlite3 "$XB_DB" "select count(*) from certificates${1:+ where reg_id='$1'};"; }

# ---- added for errors/policy/config/robustness ----

# Any request: xb_request METHOD PATH_AND_QUERY [curl args...]. Sets XB_STATUS, XB_BODY,
# XB_HEADERS (response headers, CR stripped) and XB_REQID (X-Request-Id, empty when none).
# Base URL: $XB_BASE when set, else $XB_URL. The body is saved where xb_json reads it.
xb_request() {
  local method=$1 path=$2; shift 2
  rm -f "$XB_TMP/resp.json" "$XB_TMP/resp.headers"
  XB_STATUS=$(curl -s -o "$XB_TMP/resp.json" -D "$XB_TMP/resp.headers" -w '%{http_code}' \
    --max-time 20 --cacert "$XB_TMP/ca/root-ca.pem" -X "$method" "$@" "${XB_BASE:-$XB_URL}$path")
  XB_BODY=$(cat "$XB_TMP/resp.json" 2>/dev/null)
  XB_HEADERS=$(tr -d '\r' <"$XB_TMP/resp.headers" 2>/dev/null)
  XB_REQID=$(sed -n 's/^[Xx]-[Rr]equest-[Ii][Dd]: *//p' <<<"$XB_HEADERS" | head -n1)
}

# POST the contents of a file to /api/certificate as the .NET client does (no Content-Type).
# xb_post_file FILE [QUERY] [curl args...]; sets what xb_request sets.
xb_post_file() {
  local file=$1 query=${2:-}; shift 2 2>/dev/null || shift $#
  xb_request POST "/api/certificate$query" -H 'Content-Type:' --data-binary "@$file" "$@"
}

# A response header of the last xb_request (case-insensitive name), value only.
xb_header() { sed -n "s/^$1: *//Ip" <<<"$XB_HEADERS" | head -n1; }

# The last answer is the JSON error CODE with STATUS and a message, and the certificates table
# still has ROWS rows. xb_expect_error "what" STATUS CODE ROWS
xb_expect_error() {
  local what=$1 status=$2 code=$3 rows=$4
  xb_eq "$what: status" "$XB_STATUS" "$status"
  xb_eq "$what: error code" "$(xb_json error)" "$code"
  xb_check "$what: message is not empty" test -n "$(xb_json message)"
  xb_eq "$what: no certificate recorded" "$(xb_cert_rows)" "$rows"
  [ "$XB_STATUS" = "$status" ] || echo "     body: ${XB_BODY:0:300}"
}

# Wait (bounded, at most $2 seconds, default 10) until the xbootd log matches regex $1.
xb_wait_log() {
  local i
  for i in $(seq 1 $((${2:-10} * 10))); do
    grep -qE "$1" "$XB_TMP/xbootd.log" && return 0
    sleep 0.1
  done
  return 1
}

# The request log line of request id $1 (empty when none).
xb_log_line() { grep -E "request id=$1 " "$XB_TMP/xbootd.log" | head -n1; }

# The host:port of $XB_URL (for openssl s_client and raw sockets).
xb_hostport() { local u=${1:-$XB_URL}; u=${u#*://}; echo "${u%%/*}"; }


# xb_lacks "description" haystack needle: the needle is NOT in the haystack.
xb_lacks() {
  case "$2" in *"$3"*) xb_bad "$1 ('$3' found)" ;; *) xb_ok "$1" ;; esac
}

# xb_test_server_cert DIR NAME: a test CA (DIR/ca.pem, ca.key) and a TLS server certificate
# for IP 127.0.0.1 only (DIR/srv.pem, srv.key), for the HTTPS servers tests start.
xb_test_server_cert() {
  local dir=$1
  {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -subj "/CN=$2 test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
        -keyout "$dir/srv.key" -out "$dir/srv.csr" &&
      printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        >"$dir/srv.ext" &&
      openssl x509 -req -in "$dir/srv.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/srv.ext" -out "$dir/srv.pem"
  } 2>>"$dir/openssl.log"
}

# xb_start_test_webhook DIR: a test CA (DIR/ca.pem), a server certificate for IP 127.0.0.1, and
# tests/e2e/webhook_server.py serving HTTPS on a free port (bounded: it exits after 240 s).
# Sets XB_WH_PORT (empty if it did not start) and XB_WH_PID; requests go to DIR/requests.jsonl.
# The caller stops it (xb_stop_pid "$XB_WH_PID").
xb_start_test_webhook() {
  local dir=$1 i
  xb_test_server_cert "$dir" webhook
  timeout 240 "$XB_PYTHON" "$(dirname "${BASH_SOURCE[0]}")/webhook_server.py" "$dir/srv.pem" \
    "$dir/srv.key" "$dir/port" "$dir/requests.jsonl" 2>"$dir/webhook.err" &
  XB_WH_PID=$!
  for i in $(seq 1 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
  XB_WH_PORT=$(cat "$dir/port" 2>/dev/null)
}
