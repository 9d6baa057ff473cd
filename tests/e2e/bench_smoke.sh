#!/usr/bin/env bash
# xboot-bench tells the truth: against a real xbootd (allowlist mode) it enrolls exactly the
# devices it registered, in both connection modes, every certificate it counts as ok is in the
# registry, its samples verify, and when the server refuses (unregistered or already enrolled
# devices) it counts errors, not successes, and exits 1. The crypto floor prints positive
# numbers. Correctness only: no timing is asserted. Everything is bounded (counts, --duration,
# timeout).
. "$(dirname "$0")/lib.sh"

BENCH="$XB_BIN/xboot-bench"
ROOT="$XB_TMP/ca/root-ca.pem"

# bench NAME ARGS...: one enroll run against $XB_URL; JSON in $XB_TMP/NAME.json, stderr in
# NAME.err, exit status in BENCH_RC.
bench() {
  local name=$1; shift
  timeout 120 "$BENCH" enroll --url "$XB_URL" --trust "$ROOT" --json "$@" \
    >"$XB_TMP/$name.json" 2>"$XB_TMP/$name.err"
  BENCH_RC=$?
}
# jv NAME FILTER: a value of a run's JSON (the string "invalid" if it is not one JSON line).
jv() {
  [ "$(wc -l <"$XB_TMP/$1.json")" = 1 ] || { echo invalid; return; }
  jq -r "$2" "$XB_TMP/$1.json" 2>/dev/null || echo invalid
}
rows_like() { xb_sql "select count(*) from certificates where reg_id like '$1-%';"; }
keys_like() { xb_sql "select count(distinct pubkey_sha256) from certificates where reg_id like '$1-%';"; }

# A run that should succeed completely: COUNT timed enrollments in MODE with prefix PREFIX,
# ROWS certificates in the registry for that prefix (warm-up included).
check_good_run() { # check_good_run NAME MODE COUNT PREFIX ROWS
  local name=$1 mode=$2 count=$3 prefix=$4 rows=$5
  xb_eq "$name: exit status" "$BENCH_RC" 0
  [ "$BENCH_RC" = 0 ] || head -5 "$XB_TMP/$name.err"
  xb_eq "$name: mode" "$(jv "$name" .mode)" "$mode"
  xb_eq "$name: ok == count" "$(jv "$name" .ok)" "$count"
  xb_eq "$name: no errors" "$(jv "$name" '.errors | length')" 0
  xb_eq "$name: no verify failures" "$(jv "$name" .verify_failures)" 0
  xb_eq "$name: the sample verified" "$(jv "$name" '.verified > 0')" true
  xb_eq "$name: latencies reported" "$(jv "$name" '[.p50_ms, .p90_ms, .p99_ms, .max_ms] | map(type == "number" and . > 0) | all')" true
  xb_eq "$name: rate reported" "$(jv "$name" '.rate > 0 and .elapsed_s > 0')" true
  xb_eq "$name: server CPU reported" "$(jv "$name" '.server_cpu_s | type')" number
  xb_eq "$name: server RSS reported" "$(jv "$name" '.server_rss_kib > 0')" true
  xb_eq "$name: pool time reported" "$(jv "$name" '.pool_gen_s >= 0')" true
  xb_eq "$name: registry holds exactly those certificates" "$(rows_like "$prefix")" "$rows"
  xb_eq "$name: one distinct key per certificate" "$(keys_like "$prefix")" "$rows"
}

xb_ca_init
xb_write_config # allowlist mode: only registered devices enroll
xb_start_server || { xb_bad "server starts"; xb_finish; exit 1; }

# ---- usage errors exit 2 and send nothing ----
"$BENCH" enroll --url https://192.0.2.1:443 --trust "$ROOT" --count 1 >/dev/null 2>&1
xb_eq "a host other than 127.0.0.1/localhost/::1 is refused (exit 2)" "$?" 2
"$BENCH" enroll --url "$XB_URL" --count 1 >/dev/null 2>&1
xb_eq "https without --trust is a usage error" "$?" 2
"$BENCH" enroll --url "$XB_URL" --trust "$ROOT" --concurrency 0 >/dev/null 2>&1
xb_eq "--concurrency 0 is a usage error" "$?" 2

# ---- keep-alive connections, with a warm-up and idle connections on the side ----
bench reuse --reuse-connection --concurrency 8 --count 300 --warmup 10 --duration 60 \
  --register "$XB_DB_URL" --verify-sample 20 --id-prefix smoke-reuse --cpu-pid "$XB_PID" \
  --idle-connections 4
check_good_run reuse reuse 300 smoke-reuse 310
xb_eq "reuse: warm-up IDs come first" \
  "$(xb_sql "select count(*) from certificates where reg_id in ('smoke-reuse-0','smoke-reuse-9')")" 2
xb_eq "reuse: idle_open is within 0..4" "$(jv reuse '.idle_open >= 0 and .idle_open <= 4')" true

# ---- a new connection (full handshake) per enrollment ----
bench new --new-connection --concurrency 8 --count 100 --duration 60 \
  --register "$XB_DB_URL" --verify-sample 20 --id-prefix smoke-new --cpu-pid "$XB_PID"
check_good_run new new 100 smoke-new 100

# ---- errors are errors: unregistered devices ----
bench unknown --count 10 --concurrency 4 --duration 30 --verify-sample 20 --id-prefix smoke-unknown
xb_eq "unregistered: exit status 1" "$BENCH_RC" 1
xb_eq "unregistered: nothing counted ok" "$(jv unknown .ok)" 0
xb_eq "unregistered: every request counted as 403" "$(jv unknown '.errors["403"]')" 10
xb_eq "unregistered: nothing to verify" "$(jv unknown .verified)" 0
xb_eq "unregistered: nothing issued" "$(rows_like smoke-unknown)" 0
xb_contains "unregistered: the first error is explained" "$(cat "$XB_TMP/unknown.err")" device_unknown

# ---- errors are errors: devices enrolled already (409 without allow_reenroll) ----
bench again --count 5 --concurrency 2 --duration 30 --id-prefix smoke-new
xb_eq "already enrolled: exit status 1" "$BENCH_RC" 1
xb_eq "already enrolled: every request counted as 409" "$(jv again '.errors["409"]')" 5
xb_eq "already enrolled: still one certificate each" "$(rows_like smoke-new)" 100
xb_stop_server

# ---- EST simpleenroll (HTTP Basic, which xbootd accepts in open mode), both connection modes ----
xb_write_config "[enroll]" "mode = open"
xb_start_server || { xb_bad "server restarts in open mode"; xb_finish; exit 1; }
bench est-reuse --protocol est --reuse-connection --concurrency 8 --count 100 --duration 60 \
  --verify-sample 20 --untrusted "$XB_TMP/ca/chain.pem" --id-prefix smoke-est --cpu-pid "$XB_PID"
check_good_run est-reuse reuse 100 smoke-est 100
bench est-new --protocol est --new-connection --concurrency 4 --count 40 --duration 60 \
  --verify-sample 10 --untrusted "$XB_TMP/ca/chain.pem" --id-prefix smoke-estnc --cpu-pid "$XB_PID"
check_good_run est-new new 40 smoke-estnc 40
xb_eq "est: the report names the protocol" "$(jv est-reuse .api)" est
bench est-again --protocol est --count 5 --concurrency 2 --duration 30 --id-prefix smoke-est
xb_eq "est, already enrolled: exit status 1" "$BENCH_RC" 1
xb_eq "est, already enrolled: every request counted as 403" "$(jv est-again '.errors["403"]')" 5
xb_stop_server

# ---- errors are errors: a 200 whose certificate is not the device's ----
# A fake server answers every request with 200 and the same well-formed certificate (the TLS
# server's, signed by the trusted root): shape right, key and CN wrong.
cat >"$XB_TMP/fake.py" <<'PY'
import base64, http.server, socketserver, ssl, sys, threading, time
der = ssl.PEM_cert_to_DER_cert(open(sys.argv[1]).read())
body = ('{"Certificate":"%s","Chain":[]}' % base64.b64encode(der).decode()).encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
open(sys.argv[2], "w").write(str(srv.server_address[1]))
threading.Thread(target=srv.serve_forever, daemon=True).start()
time.sleep(float(sys.argv[3]))
PY
timeout 60 "$XB_PYTHON" "$XB_TMP/fake.py" "$XB_TMP/ca/tls.pem" "$XB_TMP/fake.port" 50 &
fake_pid=$!
for i in $(seq 1 50); do [ -s "$XB_TMP/fake.port" ] && break; sleep 0.1; done
XB_URL="http://127.0.0.1:$(cat "$XB_TMP/fake.port" 2>/dev/null)" \
  bench fake --count 6 --concurrency 2 --duration 30 --timeout 10 --verify-sample 5
kill "$fake_pid" 2>/dev/null; wait "$fake_pid" 2>/dev/null
xb_eq "wrong certificate: exit status 1" "$BENCH_RC" 1
xb_eq "wrong certificate: nothing counted ok" "$(jv fake .ok)" 0
xb_eq "wrong certificate: every answer is a bad-answer" "$(jv fake '.errors["bad-answer"]')" 6
xb_contains "wrong certificate: says why" "$(cat "$XB_TMP/fake.err")" "public key is not the CSR's"

# ---- the crypto floor ----
timeout 120 "$BENCH" floor --ca-cert "$XB_TMP/ca/signing-ca.pem" --ca-key "$XB_TMP/ca/signing-ca.key" \
  --tls-cert "$XB_TMP/ca/tls.pem" --tls-key "$XB_TMP/ca/tls.key" --count 50 --json \
  >"$XB_TMP/floor.json" 2>"$XB_TMP/floor.err"
xb_eq "floor: exit status" "$?" 0
xb_eq "floor: every figure is a positive number" \
  "$(jv floor '[.verify_us, .sign_us, .floor_us, .floor_rate, .issue_us, .issue_rate, .handshake_us, .floor_new_conn_us] | map(type == "number" and . > 0) | all')" true
xb_eq "floor: floor_us = verify_us + sign_us" \
  "$(jv floor '((.verify_us + .sign_us) - .floor_us) | fabs < 0.25')" true
xb_eq "floor: count" "$(jv floor .count)" 50
xb_eq "floor: CA key type" "$(jv floor .ca_key_type)" ec-p256
xb_finish
