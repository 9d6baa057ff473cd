# Shared helpers of the end-to-end tests. Source it; it makes a temp dir, and on exit stops
# every process it started and removes the dir. Everything listens on 127.0.0.1 only.
# XB_BACKEND=postgresql runs the test against a private PostgreSQL cluster instead of a SQLite
# file (ctest: the e2e_NAME_pg tests); by hand:
#   XB_BACKEND=postgresql XB_BIN=build XB_FIXTURES=tests/fixtures bash tests/e2e/NAME.sh
# Tests reach the registry only through xb_ctl, xb_sql, XB_DB_URL and the helpers below; what
# only SQLite has (its file, PRAGMAs, its locking) is guarded by xb_backend_is sqlite.
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

# The registry backend the test runs against (a parameter of the harness, not of the tests):
# sqlite (a file in $XB_TMP) or postgresql (a private cluster this file starts, below).
XB_BACKEND=${XB_BACKEND:-sqlite}
case "$XB_BACKEND" in
  sqlite | postgresql) ;;
  *) echo "XB_BACKEND must be sqlite or postgresql, not '$XB_BACKEND'" >&2; exit 2 ;;
esac
xb_backend_is() { [ "$XB_BACKEND" = "$1" ]; }
XB_PG_DIR=""

xb_cleanup() {
  xb_stop_server
  xb_pg_cleanup
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

# ---- the registry ----
# XB_DB is the SQLite file (SQLite-only checks use it); XB_DB_URL is the registry of this test
# on either backend (xbootctl --db), XB_DB_CONF the same as the config file's [registry] db.
XB_DB="$XB_TMP/xboot.db"
XB_DB_URL="sqlite:$XB_DB"
# Relative to the config file's directory ($XB_TMP), as the SQLite tests always wrote it.
XB_DB_CONF="sqlite:xboot.db"

# Run a PostgreSQL server program as the cluster's owner: PostgreSQL refuses to run as root,
# and CI runs the tests as root, so there it is nobody (who owns $XB_PG_DIR). From the cluster
# directory, since root's working directory may be closed to nobody.
xb_pg_as() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd "$XB_PG_DIR" && runuser -u nobody -- "$@")
  else
    (cd "$XB_PG_DIR" && "$@")
  fi
}

# The directory of initdb and pg_ctl: Debian keeps them off PATH, in
# /usr/lib/postgresql/VERSION/bin. pg_config (libpq-dev) names it, unless only the client of
# that version is installed; otherwise the newest installed server.
xb_pg_bindir() {
  local d=""
  command -v pg_config >/dev/null 2>&1 && d=$(pg_config --bindir 2>/dev/null)
  if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  fi
  if [ -z "$d" ] || [ ! -x "$d/initdb" ] || [ ! -x "$d/pg_ctl" ] || [ ! -x "$d/psql" ] ||
    [ ! -x "$d/pg_isready" ]; then
    return 1
  fi
  echo "$d"
}

# A free TCP port on 127.0.0.1 (the kernel's choice; another process may take it before the
# server binds it, hence the retries in xb_pg_start).
xb_free_port() {
  "$XB_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Start the cluster in $XB_PG_DIR/data on $XB_PG_PORT and wait (bounded: pg_ctl -t, then at most
# 10 s of pg_isready) until it accepts connections. Returns non-zero if it did not start.
xb_pg_run() {
  # Only TCP on 127.0.0.1 (no Unix socket: nothing outside the test can reach it by accident,
  # and no socket directory needs to be writable by nobody). fsync stays at its default (on):
  # durability across a server restart is what the restart tests check.
  xb_pg_as "$XB_PG_BIN/pg_ctl" -D "$XB_PG_DIR/data" -l "$XB_PG_DIR/server.log" -w -t 30 \
    -o "-p $XB_PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c shared_buffers=16MB" \
    start >>"$XB_PG_DIR/pg_ctl.log" 2>&1 || return 1
  local i
  for i in $(seq 1 100); do
    "$XB_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$XB_PG_PORT" -t 2 && return 0
    sleep 0.1
  done
  return 1
}

# xb_pg_start: a private PostgreSQL cluster for this test, in a directory outside $XB_TMP
# (which may be closed to nobody), owned by user xboot with a random password (scram-sha-256),
# and an empty database xboot migrated to the current schema by xbootctl db migrate. Sets
# XB_PG_BIN, XB_PG_DIR, XB_PG_DATA, XB_PG_PORT, XB_PG_URL. Fails (prints why) rather than skips.
# XB_PG_SKIP_MIGRATE=1 leaves the database empty: only for checking this machinery by hand on a
# build whose xbootctl has no "db migrate"; the tests themselves never set it.
xb_pg_start() {
  XB_PG_BIN=$(xb_pg_bindir) || {
    echo "XB_BACKEND=postgresql but no PostgreSQL server (initdb, pg_ctl, psql) found;" \
      "scripts/install-deps.sh installs it" >&2
    return 1
  }
  XB_PG_DIR=$(mktemp -d /tmp/xboot-pg.XXXXXX) || return 1
  XB_PG_DATA="$XB_PG_DIR/data"
  [ "$(id -u)" -eq 0 ] && chown nobody: "$XB_PG_DIR"
  local pw
  pw=$(openssl rand -hex 16) # hex: safe in a URL as is
  (umask 077 && printf '%s\n' "$pw" >"$XB_PG_DIR/pwfile")
  [ "$(id -u)" -eq 0 ] && chown nobody: "$XB_PG_DIR/pwfile"
  # --no-sync: the data directory is thrown away; the server's own fsync stays on. Locale C:
  # text sorts by bytes whatever the machine's locale is.
  if ! xb_pg_as "$XB_PG_BIN/initdb" -D "$XB_PG_DATA" -U xboot --pwfile="$XB_PG_DIR/pwfile" \
    -A scram-sha-256 --no-sync -E UTF8 --locale=C >"$XB_PG_DIR/initdb.log" 2>&1; then
    echo "initdb failed:" >&2; cat "$XB_PG_DIR/initdb.log" >&2
    return 1
  fi
  rm -f "$XB_PG_DIR/pwfile"
  local attempt started=0
  for attempt in 1 2 3; do # a port taken between the choice and the bind: choose another
    XB_PG_PORT=$(xb_free_port) || return 1
    if xb_pg_run; then started=1; break; fi
    xb_pg_as "$XB_PG_BIN/pg_ctl" -D "$XB_PG_DATA" -m immediate -w -t 10 stop >/dev/null 2>&1
    grep -qiE "could not bind|address already in use|could not create any TCP/IP sockets" \
      "$XB_PG_DIR/server.log" 2>/dev/null || break
  done
  if [ "$started" -ne 1 ]; then
    echo "PostgreSQL did not start (attempt $attempt of 3):" >&2
    cat "$XB_PG_DIR/pg_ctl.log" "$XB_PG_DIR/server.log" >&2 2>/dev/null
    return 1
  fi
  XB_PG_ADMIN_URL="postgresql://xboot:$pw@127.0.0.1:$XB_PG_PORT/postgres"
  XB_PG_URL="postgresql://xboot:$pw@127.0.0.1:$XB_PG_PORT/xboot"
  xb_pg_create_registry
}

# (Re)create the database xboot, empty, and migrate it (xbootd and xbootctl refuse a
# PostgreSQL registry whose schema is not current). FORCE: a session left over from a killed
# xbootd must not keep the old one alive.
xb_pg_create_registry() {
  # (No NOTICE that there was no database to drop.)
  if ! PGOPTIONS="-c client_min_messages=warning" \
    "$XB_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$XB_PG_ADMIN_URL" \
    -c "DROP DATABASE IF EXISTS xboot WITH (FORCE)" -c "CREATE DATABASE xboot" >&2; then
    echo "CREATE DATABASE xboot failed" >&2
    return 1
  fi
  [ "${XB_PG_SKIP_MIGRATE:-0}" = 1 ] && return 0
  local out
  if ! out=$("$XB_BIN/xbootctl" db migrate --db "$XB_PG_URL" 2>&1); then
    echo "xbootctl db migrate failed: $out" >&2
    return 1
  fi
}

# xb_pg_new_db NAME: an empty database NAME (no schema, not migrated) in the test's cluster;
# prints its URL.
xb_pg_new_db() {
  "$XB_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$XB_PG_ADMIN_URL" -c "CREATE DATABASE $1" >&2 &&
    echo "${XB_PG_URL%/xboot}/$1"
}

# Stop the cluster (fast: sessions are cut, what was committed is kept). Bounded: 30 s.
xb_pg_stop() {
  xb_pg_as "$XB_PG_BIN/pg_ctl" -D "$XB_PG_DATA" -m fast -w -t 30 stop >>"$XB_PG_DIR/pg_ctl.log" 2>&1
}

# Start the same cluster again on the same port (the registry URL stays valid), bounded.
xb_pg_start_again() {
  xb_pg_run || { echo "PostgreSQL did not restart:" >&2; tail -n 20 "$XB_PG_DIR/server.log" >&2; return 1; }
}

# At exit, whatever happened: stop the cluster (immediate: nothing in it is kept) and remove it.
# If pg_ctl cannot stop it, the postmaster (its PID is the first line of postmaster.pid) is
# killed; it is this test's own server.
xb_pg_cleanup() {
  [ -n "$XB_PG_DIR" ] || return 0
  # A failed test may be the server's doing: show its last words before they are removed.
  if [ "$XB_FAIL" -gt 0 ] && [ -s "$XB_PG_DIR/server.log" ]; then
    echo "---- PostgreSQL server log (last 20 lines) ----"; tail -n 20 "$XB_PG_DIR/server.log"
  fi
  if [ -n "${XB_PG_BIN:-}" ] && [ -f "$XB_PG_DATA/postmaster.pid" ]; then
    xb_pg_as "$XB_PG_BIN/pg_ctl" -D "$XB_PG_DATA" -m immediate -w -t 15 stop >/dev/null 2>&1
    local pid i
    pid=$(head -n1 "$XB_PG_DATA/postmaster.pid" 2>/dev/null)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null
      for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  rm -rf "$XB_PG_DIR"
  XB_PG_DIR=""
}

xb_ctl() { "$XB_BIN/xbootctl" "$@" --db "$XB_DB_URL"; }

# Start over with an empty, current registry (xbootd must not be running): SQLite, no file;
# PostgreSQL, the database xboot made and migrated again.
xb_db_reset() {
  if xb_backend_is postgresql; then
    xb_pg_create_registry
  else
    rm -rf "$XB_DB"* # with its -wal, -shm, -journal
  fi
}

# xb_sql "SQL": run a query on this test's registry; one row a line, columns separated by |
# (sqlite3's default and psql -tA's), NULL as an empty field.
xb_sql() {
  if xb_backend_is postgresql; then
    "$XB_PG_BIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 "$XB_PG_URL" -c "$1"
  else
    sqlite3 "$XB_DB" "$1"
  fi
}

# xb_sql_hex EXPR: SQL for the upper-case hex of a BLOB expression (sqlite's hex()).
xb_sql_hex() {
  if xb_backend_is postgresql; then echo "upper(encode($1, 'hex'))"; else echo "hex($1)"; fi
}

# SQL for the column that orders certificates as they were recorded, to break ties between
# equal timestamps: SQLite's rowid; the seq identity column on PostgreSQL (the registry's own
# tie-break for "the current certificate", src/registry/registry_pg_schema.c).
xb_sql_insert_order() {
  if xb_backend_is postgresql; then echo "seq"; else echo "rowid"; fi
}

# Every row of every registry table, every column, in key order (BLOBs in hex): two dumps are
# equal when the registry's contents are. Works on both backends (SQLite tests may also
# compare sqlite3 .dump, which covers the schema too).
xb_db_dump() {
  echo "-- devices"
  xb_sql "SELECT reg_id, enabled, source, created_at, enrolled_at, $(xb_sql_hex secret_sha256),
            group_name FROM devices ORDER BY reg_id" || return 1
  echo "-- groups"
  xb_sql "SELECT name, $(xb_sql_hex key), created_at FROM groups ORDER BY name" || return 1
  echo "-- certificates"
  xb_sql "SELECT serial, reg_id, subject, not_before, not_after, pubkey_sha256, client_addr,
            issued_at, $(xb_sql_hex der), revoked_at, revocation_reason
          FROM certificates ORDER BY serial" || return 1
  echo "-- crl"
  xb_sql "SELECT id, number, revision, covers, $(xb_sql_hex der), this_update, next_update
          FROM crl ORDER BY id" || return 1
}

# xb_db_lock SECONDS LOCKED_FILE [GO_FILE]: hold the registry's write lock from outside for
# SECONDS (shorter than xbootd's 5 s busy timeout), so writers wait while readers go on.
# Waits (at most 30 s) for GO_FILE to exist first when given; creates LOCKED_FILE once the lock
# is held. Run it in the background and wait on its PID.
xb_db_lock() {
  local secs=$1 locked=$2 go=${3:-} i
  if [ -n "$go" ]; then
    for i in $(seq 1 3000); do [ -e "$go" ] && break; sleep 0.01; done
  fi
  if xb_backend_is postgresql; then
    # EXCLUSIVE mode: SELECTs go on, every write of a certificate waits (every issuance writes
    # one), as for SQLite's reserved lock. One table only: locking several, one after the other,
    # deadlocks with a group commit that holds the certificates table and waits for the devices
    # row of its next item (PostgreSQL then aborts one of the two).
    "$XB_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$XB_PG_URL" >/dev/null <<SQL
BEGIN;
LOCK TABLE certificates IN EXCLUSIVE MODE;
\\! touch '$locked'
SELECT pg_sleep($secs);
ROLLBACK;
SQL
  else
    "$XB_PYTHON" - "$XB_DB" "$locked" "$secs" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
db.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
time.sleep(float(sys.argv[3]))
db.execute("ROLLBACK")
PY
  fi
}

# The registry's own consistency check: "ok" when it passes. SQLite: PRAGMA integrity_check.
# PostgreSQL: amcheck's bt_index_check on every B-tree index of the registry (the extension
# goes into a schema of its own, dropped afterwards, out of the registry's way).
xb_db_integrity() {
  if xb_backend_is postgresql; then
    xb_sql "SET client_min_messages TO warning;
            CREATE SCHEMA IF NOT EXISTS xb_check;
            CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA xb_check;
            SELECT count(xb_check.bt_index_check(c.oid)) FROM pg_index i
              JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
              WHERE a.amname = 'btree' AND c.relnamespace = 'public'::regnamespace;
            DROP SCHEMA xb_check CASCADE" >/dev/null && echo ok
  else
    sqlite3 "$XB_DB" 'pragma integrity_check;'
  fi
}

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
db = $XB_DB_CONF

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

xb_cert_rows() { xb_sql "select count(*) from certificates${1:+ where reg_id='$1'};"; }

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

# Last, once every function exists (a failure here exits through xb_cleanup): on PostgreSQL,
# the test's registry is a private cluster, started and migrated before the test begins.
if xb_backend_is postgresql; then
  xb_pg_start || { echo "could not set up the PostgreSQL registry" >&2; exit 1; }
  XB_DB_URL=$XB_PG_URL
  XB_DB_CONF=$XB_PG_URL
fi
