#!/usr/bin/env bash
# What does a PostgreSQL registry cost next to SQLite? One xbootd node (threads = 2, open mode)
# on each backend in turn, driven by xboot-bench enroll; ROUNDS rounds in one run, each round
# both backends on a fresh registry, so that the ratio within a round is what to compare (the
# machine's speed drifts between rounds). PostgreSQL is a private cluster started as the e2e
# tests start it (tests/e2e/lib.sh: initdb and pg_ctl on 127.0.0.1, a free port, stopped at the
# end), sharing the machine with xbootd and the load generator.
# Usage: bench/registry-backends.sh [--rounds N] [--count N] [--concurrency N] [--build DIR]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=3 COUNT=4000 CONC=16 BUILD=$ROOT/build
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) shift; ROUNDS=${1:-} ;;
    --count) shift; COUNT=${1:-} ;;
    --concurrency) shift; CONC=${1:-} ;;
    --build) shift; BUILD=${1:-} ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
for v in "$ROUNDS" "$COUNT" "$CONC"; do
  case "$v" in ''|*[!0-9]*) echo "--rounds, --count, --concurrency: numbers" >&2; exit 2 ;; esac
done
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 10 ] && [ "$COUNT" -ge 1 ] && [ "$COUNT" -le 100000 ] ||
  { echo "--rounds 1..10, --count 1..100000" >&2; exit 2; }
[ -x "$BUILD/xboot-bench" ] || { echo "no $BUILD/xboot-bench: build first (or --build DIR)" >&2; exit 1; }

export XB_BIN=$BUILD XB_FIXTURES=$ROOT/tests/fixtures XB_BACKEND=postgresql
. "$ROOT/tests/e2e/lib.sh" || exit 1 # starts the PostgreSQL cluster; stops it on exit
xb_ca_init

# One backend, one measurement: "rate p50_ms p99_ms ok".
measure() {
  local db=$1 prefix=$2
  xb_write_config "[enroll]" "mode = open" "[registry]" "db = $db"
  xb_start_server >/dev/null || { echo "xbootd did not start" >&2; return 1; }
  "$XB_BIN/xboot-bench" enroll --url "$XB_URL" --trust "$XB_TMP/ca/root-ca.pem" \
    --untrusted "$XB_TMP/ca/signing-ca.pem" --reuse-connection --concurrency "$CONC" \
    --count "$COUNT" --warmup 200 --duration 120 --id-prefix "$prefix" --cpu-pid "$XB_PID" \
    --json >"$XB_TMP/bench.json"
  local rc=$?
  xb_stop_server
  [ "$rc" -eq 0 ] || { echo "xboot-bench failed ($rc)" >&2; return 1; }
  jq -r '"\(.rate) \(.p50_ms) \(.p99_ms) \(.ok)"' "$XB_TMP/bench.json"
}

echo "round backend rate_per_s p50_ms p99_ms ok"
for r in $(seq 1 "$ROUNDS"); do
  rm -f "$XB_TMP/bench.db"*
  s=$(measure "sqlite:bench.db" "s$r") || exit 1
  xb_pg_create_registry >/dev/null || exit 1 # a fresh, migrated database each round
  p=$(measure "$XB_PG_URL" "p$r") || exit 1
  echo "$r sqlite $s"
  echo "$r postgresql $p"
  echo "$r ratio $(awk -v a="${s%% *}" -v b="${p%% *}" 'BEGIN { printf "%.2f", b / a }')"
done
