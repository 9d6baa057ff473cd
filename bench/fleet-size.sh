#!/usr/bin/env bash
# Does issuance cost grow with the fleet? Bulk-loads N devices and N certificates (default 10
# million each) into an SQLite registry with xbootd's real schema, then measures xbootd
# keep-alive EC P-256 issuance against it and against an empty registry on the same disk, in
# the same run: empty, full, empty again (the empty figure is the mean of the two).
#
# The loaded registry is cached in build/bench-cache/fleet-N.db (about 8.5 GB for 10M) and
# reused by later runs while the schema is unchanged; the rows a run adds are deleted after it.
# Usage: bench/fleet-size.sh [--devices N] [--duration S] [--concurrency N] [--warmup N]
#                            [--results FILE] [--rebuild-cache] [--no-build]
set -u
XBB_ROOT=$(cd "$(dirname "$0")/.." && pwd)

N=10000000 D=15 CONC=64 WARM=1000 RESULTS="" REBUILD=0 BUILD_IT=1
[ "${XBB_SKIP_BUILD:-0}" = 1 ] && BUILD_IT=0
while [ $# -gt 0 ]; do
  case "$1" in
    --devices) shift; N=${1:-} ;;
    --duration) shift; D=${1:-} ;;
    --concurrency) shift; CONC=${1:-} ;;
    --warmup) shift; WARM=${1:-} ;;
    --results) shift; RESULTS=${1:-} ;;
    --rebuild-cache) REBUILD=1 ;;
    --no-build) BUILD_IT=0 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
for v in "$N" "$D" "$CONC" "$WARM"; do
  case "$v" in ''|*[!0-9]*) echo "numbers only: $v" >&2; exit 2 ;; esac
done
[ "$N" -ge 1000 ] && [ "$N" -le 100000000 ] || { echo "--devices: 1000..100000000" >&2; exit 2; }
[ "$D" -ge 1 ] && [ "$D" -le 600 ] || { echo "--duration: 1..600" >&2; exit 2; }

export XBB_BUILD=${BUILD:-build}
. "$XBB_ROOT/bench/lib.sh"
export XBB_DURATION=$D

if [ "$BUILD_IT" = 1 ]; then
  xbb_say "building (make build)"
  make -s -C "$XBB_ROOT" build BUILD="$XBB_BUILD" >/dev/null || xbb_die "make build failed"
fi
xbb_freeze_bins || xbb_die "no usable build in $XBB_BUILD"
command -v sqlite3 >/dev/null || xbb_die "sqlite3 (the CLI) is missing: scripts/install-deps.sh"
[ "$(nproc)" -ge 2 ] || XBB_LOADGEN_CPU=0

if [ -z "$RESULTS" ]; then
  RDIR=$XBB_BUILD/bench-results/fleet-$(date +%Y%m%d-%H%M%S)
  mkdir -p "$RDIR"
  RESULTS=$RDIR/results.jsonl
  export XBB_COMMANDS=$RDIR/commands.txt
  : >"$RESULTS"
  jq -cn --arg m "$(xbb_machine)" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson d "$D" \
    --argjson c "$CONC" --argjson w "$WARM" --arg s "$XBB_SERVER_CPU" --arg l "$XBB_LOADGEN_CPU" \
    '{scenario: "meta", date: $date, mode: "fleet", duration_s: $d, concurrency: $c, warmup: $w,
      server_cpu: $s, loadgen_cpu: $l, server_cores: 1, machine: $m}' >>"$RESULTS"
  STANDALONE=1
else
  STANDALONE=0
  XBB_COMMANDS=${XBB_COMMANDS:-$(dirname "$RESULTS")/commands.txt}
fi
export XBB_RESULTS=$RESULTS XBB_COMMANDS
XBB_RESULTS_DIR=$(dirname "$RESULTS"); export XBB_RESULTS_DIR

CACHE=$XBB_BUILD/bench-cache
case "$CACHE" in /*) ;; *) CACHE=$XBB_ROOT/$CACHE ;; esac
mkdir -p "$CACHE" || xbb_die "cannot create $CACHE"
DB=$CACHE/fleet-$N.db
META=$DB.meta

# The schema xbootd creates today, from a fresh registry (xbootctl device add creates it).
probe=$XBB_TMP/probe.db
"$XBB_BIN/xbootctl" device add --db "sqlite:$probe" bench-schema-probe >/dev/null ||
  xbb_die "xbootctl cannot create a registry"
SCHEMA_SUM=$(sqlite3 "$probe" .schema | sha256sum | cut -c1-16)

reuse=0
if [ "$REBUILD" = 0 ] && [ -s "$DB" ] && [ -s "$META" ]; then
  if [ "$(jq -r .schema "$META" 2>/dev/null)" = "$SCHEMA_SUM" ]; then
    reuse=1
  else
    xbb_say "the cached $DB has another schema than today's xbootd: loading it again"
  fi
fi

if [ "$reuse" = 0 ]; then
  rm -f "$DB" "$DB-wal" "$DB-shm" "$META" "$DB.loading" "$DB.loading-wal" "$DB.loading-shm" "$DB.loading-journal"
  # Measured: about 830 MB per million devices + certificates; ask for 900 MB plus 2 GB.
  need_kib=$(( N / 1000 * 900 + 2 * 1024 * 1024 ))
  avail_kib=$(df -Pk "$CACHE" | awk 'NR == 2 { print $4 }')
  if [ "${avail_kib:-0}" -lt "$need_kib" ]; then
    xbb_say "not enough disk in $CACHE: $((avail_kib / 1048576)) GiB free, the $N-device registry needs about $((need_kib / 1048576)) GiB."
    xbb_say "Free some space, or point BUILD at a larger disk, or try --devices 1000000."
    exit 1
  fi
  mem_kib=$(awk '/^MemAvailable/ { print $2 }' /proc/meminfo)
  cache_kib=$(( mem_kib / 3 )); [ "$cache_kib" -gt 3000000 ] && cache_kib=3000000
  xbb_say "bulk-loading $N devices + $N certificates into $DB (one transaction; several minutes for 10M)"
  "$XBB_BIN/xbootctl" device add --db "sqlite:$DB.loading" bench-schema-probe >/dev/null ||
    xbb_die "xbootctl cannot create $DB.loading"
  t0=$(date +%s.%N)
  xbb_record_cmd sqlite3 "$DB.loading" -cmd ".parameter set @n $N" -cmd ".parameter set @t0 1700000000" \
    -cmd "PRAGMA cache_size = -$cache_kib" "< bench/fleet-load.sql"
  timeout 7200 sqlite3 -bail "$DB.loading" -cmd ".parameter set @n $N" -cmd ".parameter set @t0 1700000000" \
    -cmd "PRAGMA cache_size = -$cache_kib" <"$XBB_ROOT/bench/fleet-load.sql" >/dev/null ||
    { rm -f "$DB.loading"*; xbb_die "bulk load failed"; }
  t1=$(date +%s.%N)
  counts=$(sqlite3 "$DB.loading" "SELECT (SELECT count(*) FROM devices), (SELECT count(*) FROM certificates), (SELECT count(*) FROM devices WHERE enrolled_at IS NOT NULL);")
  IFS='|' read -r nd nc ne <<<"$counts"
  [ "$nd" = "$N" ] && [ "$nc" = "$N" ] || { rm -f "$DB.loading"*; xbb_die "bulk load counts wrong: $counts"; }
  mv "$DB.loading" "$DB"
  load_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  bytes=$(stat -c %s "$DB")
  jq -cn --arg s "$SCHEMA_SUM" --argjson n "$N" --argjson l "$load_s" --argjson b "$bytes" \
    --argjson e "$ne" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    '{schema: $s, devices: $n, certificates: $n, enrolled: $e, load_s: $l, db_bytes: $b, loaded: $date}' >"$META"
  xbb_say "loaded in ${load_s} s: $(awk -v b="$bytes" 'BEGIN { printf "%.2f GiB", b / 1073741824 }') ($nd devices, $ne enrolled, $nc certificates)"
else
  xbb_say "reusing the cached registry $DB (loaded $(jq -r .loaded "$META") in $(jq -r .load_s "$META") s; --rebuild-cache to load it again)"
fi
jq -c --argjson r "$reuse" --argjson sz "$(stat -c %s "$DB")" \
  '{scenario: "fleet-load", ca: "ec", reused: ($r == 1), fleet_devices: .devices,
    fleet_certificates: .certificates, enrolled: .enrolled, load_s: .load_s, db_bytes: $sz, loaded: .loaded}' \
  "$META" >>"$XBB_RESULTS"

# What a long-running server has in its page cache: the indexes an enrollment touches.
t0=$(date +%s.%N)
timeout 600 sqlite3 "$DB" "SELECT count(*) FROM (SELECT serial FROM certificates ORDER BY serial);
  SELECT count(*) FROM (SELECT reg_id FROM certificates ORDER BY reg_id);
  SELECT count(*) FROM (SELECT reg_id FROM devices ORDER BY reg_id);" >/dev/null
xbb_say "index pages read into the page cache in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"

# ---- the measurements ----
cadir=$XBB_TMP/ca-ec
"$XBB_BIN/xbootctl" ca init --dir "$cadir" --key-type ec-p256 >/dev/null || xbb_die "ca init failed"
xbb_floor fleet-floor ec --ca-cert "$cadir/signing-ca.pem" --ca-key "$cadir/signing-ca.key" --count 1000 || true
XBB_LAST_JSON=$(jq -c '.scenario = "fleet-floor"' <<<"$XBB_LAST_JSON")
sed -i '$d' "$XBB_RESULTS" && printf '%s\n' "$XBB_LAST_JSON" >>"$XBB_RESULTS"
rate=$(xbb_get "$XBB_LAST_JSON" floor_rate)
# As bench/run.sh: the floor rate bounds one core's rate; the cap bounds pool generation time.
POOL=$(awk -v r="${rate:-0}" -v d="$D" -v cap="${XBB_POOL_CAP:-40000}" \
  'BEGIN { if (r <= 0) r = 10000; n = int(r * d * 1.1) + 200; if (n > cap) n = cap; print n }')
STAMP=$(date +%H%M%S)-$$
FAIL=0

fleet_run() { # fleet_run LABEL SCENARIO DBPATH PREFIX
  local label=$1 scen=$2 db=$3 prefix=$4
  local ndev ncert # what the registry holds before the run
  ndev=$(sqlite3 "$db" 'SELECT count(*) FROM devices' 2>/dev/null || echo 0)
  ncert=$(sqlite3 "$db" 'SELECT count(*) FROM certificates' 2>/dev/null || echo 0)
  xbb_start_xbootd "$label" "$cadir" "sqlite:$db" || { FAIL=1; return; }
  xbb_say "$label: xbootd keep-alive EC P-256, concurrency $CONC, $D s"
  local snap0 snap1 other="" steal=""
  snap0=$(xbb_cpu_snapshot)
  xbb_enroll "$label" ec "$scen" --url "$XBB_SRV_URL" --api xboot --reuse-connection \
    --concurrency "$CONC" --count "$POOL" --duration "$D" --warmup "$WARM" \
    --trust "$cadir/root-ca.pem" --key-type ec-p256 --register "sqlite:$db" --id-prefix "$prefix" \
    --verify-sample 200 --cpu-pid "$XBB_SRV_PID" || FAIL=1
  snap1=$(xbb_cpu_snapshot)
  read -r other steal <<<"$(xbb_cpu_other "$snap0" "$snap1")"
  local m batch="" commit=""
  m=$(xbb_commit_metrics); [ -n "$m" ] && read -r batch commit <<<"$m"
  xbb_stop_server
  xbb_annotate server xbootd batch_mean "$batch" commit_ms "$commit" \
    fleet_devices "${ndev:-0}" fleet_certificates "${ncert:-0}" cpu0_other_pct "$other" cpu0_steal_pct "$steal"
  xbb_say "$label: $(jq -r '"ok \(.ok // "?") rate \(.rate // "?")/s p99 \(.p99_ms // "?") ms"' <<<"$XBB_LAST_JSON")"
}

# The empty registries live on the same disk as the big one.
E1=$CACHE/empty-$STAMP-1.db E2=$CACHE/empty-$STAMP-2.db
cleanup_fleet() {
  rm -f "$E1" "$E1-wal" "$E1-shm" "$E2" "$E2-wal" "$E2-shm"
  # Keep the cached registry as loaded: remove what this run added.
  if [ -s "$DB" ]; then
    timeout 600 sqlite3 "$DB" "PRAGMA busy_timeout = 10000;
      BEGIN; DELETE FROM certificates WHERE reg_id LIKE 'fb$STAMP-%';
      DELETE FROM devices WHERE reg_id LIKE 'fb$STAMP-%'; COMMIT;
      PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null 2>&1 ||
      xbb_say "warning: could not remove this run's rows (prefix fb$STAMP-) from $DB"
  fi
}
trap 'cleanup_fleet; xbb_cleanup' EXIT

fleet_run fleet-empty-1 fleet-empty "$E1" "fe1$STAMP"
fleet_run fleet-10m fleet-10m "$DB" "fb$STAMP"
fleet_run fleet-empty-2 fleet-empty "$E2" "fe2$STAMP"

if [ "$STANDALONE" = 1 ]; then
  echo
  bash "$XBB_ROOT/bench/report.sh" "$XBB_RESULTS" | tee "$(dirname "$XBB_RESULTS")/table.txt"
  echo
  echo "raw JSON lines: $XBB_RESULTS"
fi
exit $FAIL
