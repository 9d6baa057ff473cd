#!/usr/bin/env bash
# Group commit and /metrics, as an operator relies on them: many devices enrolling at once all
# get recorded certificates; a certificate that reached a device is in the registry even when
# xbootd is killed mid-load (answers leave only after their commit); /metrics counts what
# happened, summed over the worker processes.
. "$(dirname "$0")/lib.sh"

xb_ca_init
xb_write_config "[enroll]" "mode = open"
sed -i 's/^threads = .*/threads = 2/' "$XB_TMP/xboot.conf"
xb_start_server || { xb_bad "server starts"; xb_finish; exit 1; }

many() { # many PREFIX COUNT THREADS OUT
  "$XB_PYTHON" "$(dirname "$0")/enroll_many.py" "$XB_URL" "$XB_TMP/ca/root-ca.pem" "$@"
}
# A certificate row for every "SERIAL ID" line of $1 whose first field is a serial.
# (Registration IDs compare without case, as in the registry.)
all_recorded() {
  xb_sql "select ltrim(serial, '0') || ' ' || reg_id from certificates" >"$XB_TMP/recorded.txt" ||
    return 1
  awk 'FILENAME == ARGV[1] { n[$1 " " tolower($2)]++; next }
       length($1) <= 3 { next } # an HTTP status, not a serial
       n[$1 " " tolower($2)] != 1 { print "     not recorded:", $1, $2; missing++ }
       END { exit missing ? 1 : 0 }' "$XB_TMP/recorded.txt" "$1"
}

# ---- a burst: 160 devices, 16 connections, two workers ----
many burst 160 16 "$XB_TMP/burst.txt"
issued=$(awk 'length($1) > 3' "$XB_TMP/burst.txt" | wc -l)
xb_eq "burst: every device got a certificate" "$issued" 160
xb_eq "burst: 160 rows recorded" "$(xb_cert_rows)" 160
xb_eq "burst: serials are distinct" "$(awk '{print $1}' "$XB_TMP/burst.txt" | sort -u | wc -l)" 160
xb_check "burst: every returned certificate is in the registry" all_recorded "$XB_TMP/burst.txt"

# Refusals are counted by their code.
xb_csr ec-p256 burst-0 "$XB_TMP/again"
xb_post "$(xb_enroll_body burst-0 "$XB_TMP/again.der")"
xb_eq "second enrollment refused" "$XB_STATUS" 409
xb_post '{"RegistrationId":"x"'
xb_eq "malformed JSON refused" "$XB_STATUS" 400

# ---- /metrics ----
metric() { # metric NAME_WITH_LABELS: its value in the last scrape (empty if absent)
  awk -v k="$1" '$1 == k {print $2}' "$XB_TMP/metrics.txt"
}
# Several scrapes, so both workers are likely to answer one; all must agree on the sums.
for i in 1 2 3 4; do
  xb_request GET /metrics
  cp "$XB_TMP/resp.json" "$XB_TMP/metrics.txt"
  xb_eq "metrics $i: status" "$XB_STATUS" 200
  xb_eq "metrics $i: issued, summed over workers" "$(metric 'xboot_enrollments_total{protocol="xboot",outcome="issued"}')" 160
done
xb_contains "metrics: Prometheus text content type" "$(xb_header Content-Type)" "text/plain; version=0.0.4"
xb_eq "metrics: refusals by code (already_enrolled)" "$(metric 'xboot_enrollments_total{protocol="xboot",outcome="already_enrolled"}')" 1
xb_eq "metrics: refusals by code (malformed_json)" "$(metric 'xboot_enrollments_total{protocol="xboot",outcome="malformed_json"}')" 1
xb_eq "metrics: every issuance went through a commit" "$(metric 'xboot_registry_commit_batch_size_sum')" 160.000000
commits=$(metric 'xboot_registry_commit_batch_size_count')
xb_check "metrics: at most one commit per issuance ($commits)" test "${commits:-0}" -ge 1 -a "${commits:-0}" -le 160
xb_eq "metrics: commit latency observed per commit" "$(metric 'xboot_registry_commit_duration_seconds_count')" "$commits"
xb_eq "metrics: latency histogram counts every enrollment request" \
  "$(metric 'xboot_request_duration_seconds_count{route="/api/certificate"}')" 162
xb_eq "metrics: +Inf bucket equals the count" \
  "$(metric 'xboot_request_duration_seconds_bucket{route="/api/certificate",le="+Inf"}')" 162
xb_eq "metrics: CA healthy" "$(metric xboot_ca_healthy)" 1
xb_eq "metrics: registry healthy" "$(metric xboot_registry_healthy)" 1
open=$(metric 'xboot_open_connections{listener="https"}')
xb_check "metrics: open connections counted (the scrape's own: $open)" test "${open:-0}" -ge 1
# Every sample line is NAME{LABELS} VALUE or NAME VALUE; every family has HELP and TYPE.
bad=$(grep -vE '^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+)$' "$XB_TMP/metrics.txt" | head -3)
xb_eq "metrics: every line is valid exposition format" "$bad" ""
# Buckets are cumulative: never decreasing.
xb_check "metrics: buckets are cumulative" awk '/_bucket\{/ {split($1, a, ",le="); k = a[1]; if (k == prev && $2 + 0 < last) bad = 1; prev = k; last = $2 + 0} END {exit bad}' "$XB_TMP/metrics.txt"

# ---- killed mid-load: what a device received is recorded ----
# The registry's write lock is held from outside for a while, so commits stall: a server that
# answered before committing would hand out certificates meanwhile, and the kill would lose
# their records. A correct one answers nothing until the lock is released, which never happens
# before the kill.
: >"$XB_TMP/crash.txt"
# The locker starts first and waits for the word, so the lock comes within ~10 ms of it.
xb_db_lock 3 "$XB_TMP/locked" "$XB_TMP/go" & # 3 s: shorter than xbootd's 5 s busy timeout
locker=$!
many crash 2000 8 "$XB_TMP/crash.txt" &
client=$!
for i in $(seq 1 300); do # at most 30 s: until a few dozen certificates went out
  [ "$(wc -l <"$XB_TMP/crash.txt")" -ge 40 ] && break
  sleep 0.05
done
touch "$XB_TMP/go"
for i in $(seq 1 100); do [ -e "$XB_TMP/locked" ] && break; sleep 0.1; done
sleep 1 # requests keep arriving and are signed; their commits wait for the lock
workers=$(pgrep -P "$XB_PID" | tr '\n' ' ')
kill -KILL "$XB_PID" $workers 2>/dev/null
wait "$XB_PID" 2>/dev/null
XB_PID=""
wait "$locker"
wait "$client"
got=$(awk 'length($1) > 3' "$XB_TMP/crash.txt" | wc -l)
xb_check "crash: certificates were handed out before the kill ($got)" test "$got" -ge 40
xb_check "crash: the run was cut short (not all 2000 answered)" test "$got" -lt 2000
xb_check "crash: every certificate a device received is recorded" all_recorded "$XB_TMP/crash.txt"
xb_eq "crash: database intact" "$(xb_db_integrity)" ok
first=$(awk 'length($1) > 3 {print $2; exit}' "$XB_TMP/crash.txt")
xb_start_server || { xb_bad "server restarts on the same registry"; xb_finish; exit 1; }
xb_csr ec-p256 "$first" "$XB_TMP/first"
xb_post "$(xb_enroll_body "$first" "$XB_TMP/first.der")"
xb_eq "crash: a device enrolled before the kill stays enrolled after restart" "$XB_STATUS" 409

# ---- a device that hangs up while its commit waits ----
# The answer has nowhere to go: the server must neither crash nor leak (the sanitizer build
# checks), and the certificate stays recorded (the device retries and gets 409 unless
# re-enrollment is on, as documented).
xb_db_lock 3 "$XB_TMP/locked-2" & # 3 s: shorter than xbootd's 5 s busy timeout
locker=$!
sleep 0.3
xb_csr ec-p256 quitter "$XB_TMP/quitter"
printf '{"RegistrationId":"quitter","Csr":"%s"}' "$(xb_b64 "$XB_TMP/quitter.der")" >"$XB_TMP/quitter.json"
curl -s -o /dev/null --max-time 1 --cacert "$XB_TMP/ca/root-ca.pem" -X POST -H "Content-Type: application/json" \
  --data-binary "@$XB_TMP/quitter.json" "$XB_URL/api/certificate"
xb_eq "hang-up: the client gave up (curl timeout)" "$?" 28
wait "$locker"
for i in $(seq 1 50); do [ "$(xb_cert_rows quitter)" = 1 ] && break; sleep 0.1; done
xb_eq "hang-up: the certificate was still recorded" "$(xb_cert_rows quitter)" 1
xb_request GET /healthz
xb_eq "hang-up: the server still answers" "$XB_STATUS" 200
xb_stop_server

xb_finish
