#!/usr/bin/env bash
# XBoot benchmark: one command, one table. Builds, creates an EC P-256 and an RSA-2048 CA,
# and measures in the same run on the same machine:
#   floor         the crypto floor, in process (xboot-bench floor): per enrollment one CSR
#                 signature verification + one certificate signature (+ one TLS handshake for
#                 the new-connection mode)
#   xbootd-ka     xbootd, HTTPS keep-alive, distinct CSRs, allowlist registry on SQLite
#                 (WAL, synchronous=FULL, group commit): the durable configuration
#   cfssl-ka      Debian's `cfssl serve`, /api/v1/cfssl/sign, plain HTTP keep-alive (its best
#                 case), same CA, same kind of CSR pool, GOMAXPROCS = the cores xbootd gets
#   xbootd-new    xbootd, a new TLS connection per enrollment; server CPU time per enrollment
#   xbootd-off    as xbootd-ka with synchronous=OFF (what durability costs)
#   xbootd-idle   as xbootd-ka while 1,000 idle TLS connections are held open (RSS)
#   sweep-*       (--full) xbootd-ka and cfssl-ka at concurrency 1, 8 and 32
#   fleet-*       (--fleet) bench/fleet-size.sh: empty registry vs 10M devices + 10M certificates
# Servers (and the floor) are pinned to CPU 0, the load generator to CPU 1.
# Results: build/bench-results/<date>/ (results.jsonl, commands.txt, table.txt, profiles).
set -u
XBB_ROOT=$(cd "$(dirname "$0")/.." && pwd)

usage() {
  cat <<'EOF'
Usage: bench/run.sh [--quick | --full] [--fleet] [--ca ec|rsa|both] [--only LIST]
                    [--concurrency N] [--duration S] [--perf] [--no-build] [--results-dir DIR]

  (default)        every scenario for both CA types, 15 s each: about 6-8 minutes
  --quick          4 s per scenario, smaller pools: about 2 minutes
  --full           20 s per scenario, plus a concurrency sweep (1, 8, 32) of xbootd and cfssl
                   on EC P-256: about 15-20 minutes
  --fleet          also run bench/fleet-size.sh (10M devices + 10M certificates in the
                   registry; the first run bulk-loads them: several minutes, about 9 GB of disk,
                   cached in build/bench-cache/)
  --ca T           ec, rsa or both (default both)
  --only LIST      comma-separated subset of: floor,ka,cfssl,new,est,off,idle,sweep
  --concurrency N  in-flight enrollments of the keep-alive scenarios (default 64)
  --duration S     timed seconds per scenario
  --perf           after the measurements, profile xbootd (perf record) in extra runs of
                   xbootd-ka and xbootd-new; reports go to the results directory
  --no-build       do not run `make build` first
  --results-dir D  where results go (default build/bench-results/<date-time>)
Environment: BUILD (build directory, default build), XBB_SERVER_CPU (0), XBB_LOADGEN_CPU (1).
EOF
}

ARGS_ORIG="$*"
MODE=default FLEET=0 CAS="ec rsa" ONLY="" CONC=64 DURATION="" PERF=0 BUILD_IT=1 RDIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick ;;
    --full) MODE=full ;;
    --fleet) FLEET=1 ;;
    --ca) shift; case "${1:-}" in ec) CAS=ec ;; rsa) CAS=rsa ;; both) CAS="ec rsa" ;;
            *) echo "--ca: ec, rsa or both" >&2; exit 2 ;; esac ;;
    --only) shift; ONLY=",${1:-},"; ;;
    --concurrency) shift; CONC=${1:-}; ;;
    --duration) shift; DURATION=${1:-}; ;;
    --perf) PERF=1 ;;
    --no-build) BUILD_IT=0 ;;
    --results-dir) shift; RDIR=${1:-}; ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
case "$CONC" in ''|*[!0-9]*|0) echo "--concurrency: a positive number" >&2; exit 2 ;; esac

# POOL_CAP bounds the distinct CSRs generated per scenario (xboot-bench makes its pool before
# the timed window, on the load generator's CPU, at about 2,000 CSRs/s): a server faster than
# POOL_CAP / D ends its run by count, sooner than D, which is still a valid measurement.
case $MODE in
  quick)   D=4;  WARM=200;  FLOOR_N=1000; IDLE=1000; POOL_CAP=8000 ;;
  default) D=15; WARM=500;  FLOOR_N=3000; IDLE=1000; POOL_CAP=40000 ;;
  full)    D=20; WARM=1000; FLOOR_N=6000; IDLE=1000; POOL_CAP=100000 ;;
esac
if [ -n "$DURATION" ]; then
  case "$DURATION" in ''|*[!0-9]*|0) echo "--duration: whole seconds > 0" >&2; exit 2 ;; esac
  [ "$DURATION" -le 600 ] || { echo "--duration: at most 600" >&2; exit 2; }
  D=$DURATION
fi
want() { [ -z "$ONLY" ] || [[ "$ONLY" == *",$1,"* ]]; }

export XBB_BUILD=${BUILD:-build}
. "$XBB_ROOT/bench/lib.sh"
export XBB_DURATION=$D

# ---- preparation ------------------------------------------------------------------------
if [ "$BUILD_IT" = 1 ]; then
  xbb_say "building (make build)"
  make -s -C "$XBB_ROOT" build BUILD="$XBB_BUILD" >/dev/null || xbb_die "make build failed"
fi
xbb_freeze_bins || xbb_die "no usable build in $XBB_BUILD"
if ! command -v cfssl >/dev/null || ! command -v taskset >/dev/null || ! command -v ss >/dev/null; then
  xbb_say "installing the bench packages (scripts/install-deps.sh bench)"
  bash "$XBB_ROOT/scripts/install-deps.sh" bench || xbb_die "cannot install the bench packages"
fi
NCPU=$(nproc)
read -r LOAD1 _ </proc/loadavg
awk -v l="$LOAD1" 'BEGIN { exit !(l > 0.5) }' &&
  xbb_say "warning: load average $LOAD1 before starting: other work on this machine will perturb the numbers"
if [ "$NCPU" -lt 2 ]; then
  xbb_say "only one CPU: the servers and the load generator share CPU 0 (ratios still hold, absolute rates do not)"
  XBB_LOADGEN_CPU=0
fi
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge $((IDLE + 200)) ] ||
  xbb_say "warning: open files limit $(ulimit -n) is below $((IDLE + 200)): the idle-connection scenario may fail"

STAMP=$(date +%Y%m%d-%H%M%S)
RDIR=${RDIR:-$XBB_BUILD/bench-results/$STAMP}
case "$RDIR" in /*) ;; *) RDIR=$XBB_ROOT/$RDIR ;; esac
mkdir -p "$RDIR" || xbb_die "cannot create $RDIR"
export XBB_RESULTS_DIR=$RDIR
export XBB_RESULTS=$RDIR/results.jsonl
export XBB_COMMANDS=$RDIR/commands.txt
: >"$XBB_RESULTS"
{ echo "# bench/run.sh $MODE mode, $(date -u +%Y-%m-%dT%H:%M:%SZ); exact commands in order"
  echo "# (temp paths are under $XBB_TMP, removed at the end; $XBB_TMP/bin holds copies of"
  echo "# $XBB_BUILD/xbootd, xbootctl and xboot-bench taken at the start)"; } >"$XBB_COMMANDS"

MACHINE=$(xbb_machine)
read -r FS_P50 FS_P99 <<<"$(xbb_fsync_probe "$XBB_TMP")"
MACHINE="$MACHINE
registry disk: $(findmnt -no FSTYPE -T "$XBB_TMP" 2>/dev/null) on $(findmnt -no SOURCE -T "$XBB_TMP" 2>/dev/null), fdatasync p50 ${FS_P50:-?} ms, p99 ${FS_P99:-?} ms
load average at start: $LOAD1"
jq -cn --arg m "$MACHINE" --arg mode "$MODE" --argjson d "$D" --argjson c "$CONC" \
  --argjson warm "$WARM" --arg scpu "$XBB_SERVER_CPU" --arg lcpu "$XBB_LOADGEN_CPU" \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg args "$ARGS_ORIG" \
  '{scenario: "meta", date: $date, mode: $mode, duration_s: $d, concurrency: $c, warmup: $warm,
    server_cpu: $scpu, loadgen_cpu: $lcpu, server_cores: 1, machine: $m,
    command: ("bench/run.sh " + $args)}' >>"$XBB_RESULTS"

xbb_say "mode $MODE: $D s per scenario, concurrency $CONC, warm-up $WARM; results in $RDIR"
xbb_say "pinning: servers and floor on CPU $XBB_SERVER_CPU (xbootd threads=1, cfssl GOMAXPROCS=1), load generator on CPU $XBB_LOADGEN_CPU"

# Pool size (--count): the expected rate times D, between POOL_MIN and POOL_CAP. The first run
# of a server expects the crypto floor's rate (no server on one core beats it); later runs of
# the same server expect twice what it did in its keep-alive run (a run that ends by count
# before D is still a valid measurement, only shorter).
POOL_MIN=$(( POOL_CAP / 10 ))
pool_for() { # pool_for RATE_PER_S [UPPER_BOUND_RATE]
  awk -v r="${1:-0}" -v ub="${2:-0}" -v d="$D" -v cap="$POOL_CAP" -v min="$POOL_MIN" \
    'BEGIN { if (r <= 0) r = 10000; if (ub > 0 && r > ub) r = ub; n = int(r * d * 1.1) + 200;
             if (n > cap) n = cap; if (n < min) n = min; print n }'
}
# The rate of the last clean run (empty when it was not clean).
last_rate() { [ "$(jq -r .clean <<<"$XBB_LAST_JSON")" = true ] && xbb_get "$XBB_LAST_JSON" rate; }
twice() { awk -v r="${1:-0}" 'BEGIN { print (r > 0) ? 2 * r : 0 }'; }

# Runs one enrollment scenario against the server that is up.
# scenario_run LABEL CA SCEN CADIR CONC [extra xboot-bench args...]
scenario_run() {
  local label=$1 ca=$2 scen=$3 cadir=$4 conc=$5; shift 5
  local rssf="$XBB_TMP/$label.rss"
  xbb_rss_sampler_start "$rssf"
  local sampler=$XBB_SAMPLER_PID
  local common=(--url "$XBB_SRV_URL" --concurrency "$conc" --duration "$D" --warmup "$WARM"
    --trust "$cadir/root-ca.pem" --key-type ec-p256 --verify-sample 200 --cpu-pid "$XBB_SRV_PID")
  xbb_say "$label: $scen, concurrency $conc"
  local snap0 snap1 other="" steal=""
  snap0=$(xbb_cpu_snapshot)
  xbb_enroll "$label" "$ca" "$scen" "${common[@]}" "$@"
  local rc=$?
  snap1=$(xbb_cpu_snapshot)
  read -r other steal <<<"$(xbb_cpu_other "$snap0" "$snap1")"
  local metrics batch="" commit=""
  metrics=$(xbb_commit_metrics)
  [ -n "$metrics" ] && read -r batch commit <<<"$metrics"
  xbb_bg_stop "$sampler"
  local tree="" one=""
  [ -s "$rssf" ] && read -r tree one <"$rssf"
  xbb_annotate server "$XBB_SRV_KIND" batch_mean "$batch" commit_ms "$commit" \
    rss_tree_kib "$tree" rss_one_kib "$one" cpu0_other_pct "$other" cpu0_steal_pct "$steal"
  xbb_say "$label: $(jq -r '"ok \(.ok // "?") rate \(.rate // "?")/s p99 \(.p99_ms // "?") ms srv \(.server_cpu_us_per_ok // "?") us/enr"' <<<"$XBB_LAST_JSON")"
  return $rc
}

declare -A FLOOR_RATE FLOOR_NEWCONN
SCEN_FAIL=0

for ca in $CAS; do
  case $ca in ec) kt=ec-p256 ;; rsa) kt=rsa-2048 ;; esac
  cadir="$XBB_TMP/ca-$ca"
  xbb_record_cmd "$XBB_BIN/xbootctl" ca init --dir "$cadir" --key-type "$kt"
  "$XBB_BIN/xbootctl" ca init --dir "$cadir" --key-type "$kt" >/dev/null || xbb_die "ca init $kt failed"

  # ---- floor (in process, pinned like the servers) ----
  FLOOR_RATE[$ca]="" FLOOR_NEWCONN[$ca]=""
  # The floor is always measured: it also sizes the pools.
  if true; then
    xbb_say "$ca: crypto floor ($FLOOR_N iterations, CPU $XBB_SERVER_CPU)"
    xbb_floor "$ca-floor" "$ca" --ca-cert "$cadir/signing-ca.pem" --ca-key "$cadir/signing-ca.key" \
      --tls-cert "$cadir/tls.pem" --tls-key "$cadir/tls.key" --count "$FLOOR_N" || SCEN_FAIL=1
    FLOOR_RATE[$ca]=$(xbb_get "$XBB_LAST_JSON" floor_rate)
    FLOOR_NEWCONN[$ca]=$(xbb_get "$XBB_LAST_JSON" floor_new_conn_us)
  fi
  N_KA=$(pool_for "${FLOOR_RATE[$ca]}")
  nc_rate=$(awk -v u="${FLOOR_NEWCONN[$ca]:-0}" 'BEGIN { print (u > 0) ? 1e6 / u : 0 }')
  N_NEW=$(pool_for "$nc_rate")
  N_CF=$N_KA
  N_X=$N_KA # later xbootd keep-alive runs: from the xbootd-ka run

  db_n=0
  newdb() { db_n=$((db_n + 1)); echo "$XBB_TMP/reg-$ca-$db_n.db"; }

  # xbootd_scenario SCEN REGISTRY_OPTION COUNT ID_PREFIX [xboot-bench args...]: one xbootd on a
  # fresh registry, one run; the rate it reached is left in $r.
  xbootd_scenario() {
    local scen=$1 opt=$2 count=$3 prefix=$4 db
    shift 4
    db=$(newdb)
    r=""
    if xbb_start_xbootd "$ca-$scen" "$cadir" "sqlite:$db$opt"; then
      scenario_run "$ca-$scen" "$ca" "$scen" "$cadir" "$CONC" --api xboot --count "$count" \
        --register "sqlite:$db" --id-prefix "$ca-$prefix" "$@" || SCEN_FAIL=1
      r=$(last_rate)
      xbb_stop_server
    else SCEN_FAIL=1; fi
  }

  # ---- xbootd keep-alive, durable ----
  if want ka; then
    xbootd_scenario xbootd-ka "" "$N_KA" ka --reuse-connection
    [ -n "$r" ] && N_X=$(pool_for "$(twice "$r")" "${FLOOR_RATE[$ca]}")
  fi

  # ---- cfssl serve keep-alive, plain HTTP ----
  if want cfssl; then
    if xbb_start_cfssl "$ca-cfssl-ka" "$cadir"; then
      scenario_run "$ca-cfssl-ka" "$ca" cfssl-ka "$cadir" "$CONC" --api cfssl --reuse-connection \
        --count "$N_KA" --untrusted "$cadir/chain.pem" --id-prefix "$ca-cf" || SCEN_FAIL=1
      r=$(last_rate); [ -n "$r" ] && N_CF=$(pool_for "$(twice "$r")" "${FLOOR_RATE[$ca]}")
      xbb_stop_server
    else SCEN_FAIL=1; fi
  fi

  # ---- xbootd, a new TLS connection per enrollment ----
  if want new; then
    xbootd_scenario xbootd-new "" "$N_NEW" nc --new-connection
    [ -n "$r" ] && N_NEW=$(pool_for "$(twice "$r")" "$nc_rate")
  fi

  # ---- EST simpleenroll (HTTP Basic, so xbootd in open mode), keep-alive and new connection ----
  if want est; then
    XBB_ENROLL_MODE=open xbootd_scenario est-ka "" "$N_X" estka --reuse-connection \
      --protocol est --untrusted "$cadir/chain.pem"
    XBB_ENROLL_MODE=open xbootd_scenario est-new "" "$N_NEW" estnc --new-connection \
      --protocol est --untrusted "$cadir/chain.pem"
  fi

  # ---- xbootd keep-alive, synchronous=OFF (not durable: for comparison only) ----
  want off && xbootd_scenario xbootd-off "?synchronous=off" "$N_X" off --reuse-connection

  # ---- xbootd keep-alive while 1,000 idle TLS connections are open ----
  want idle && xbootd_scenario xbootd-idle "" "$N_X" idle --reuse-connection \
    --idle-connections "$IDLE"

  # ---- concurrency sweep (--full, EC only) ----
  if [ "$MODE" = full ] && [ "$ca" = ec ] && want sweep; then
    for c in 1 8 32; do
      db=$(newdb)
      if xbb_start_xbootd "$ca-sweep-xbootd-c$c" "$cadir" "sqlite:$db"; then
        scenario_run "$ca-sweep-xbootd-c$c" "$ca" sweep-xbootd "$cadir" "$c" --api xboot \
          --reuse-connection --count "$N_X" --register "sqlite:$db" --id-prefix "$ca-sw$c" || SCEN_FAIL=1
        xbb_stop_server
      else SCEN_FAIL=1; fi
      if xbb_start_cfssl "$ca-sweep-cfssl-c$c" "$cadir"; then
        scenario_run "$ca-sweep-cfssl-c$c" "$ca" sweep-cfssl "$cadir" "$c" --api cfssl \
          --reuse-connection --count "$N_CF" --untrusted "$cadir/chain.pem" --id-prefix "$ca-swcf$c" ||
          SCEN_FAIL=1
        xbb_stop_server
      else SCEN_FAIL=1; fi
    done
  fi

  # ---- profiles (--perf): extra runs, not used for the targets ----
  if [ "$PERF" = 1 ]; then
    for p in ka new; do
      db=$(newdb)
      mode_arg=--reuse-connection n=$N_X
      [ $p = new ] && mode_arg=--new-connection n=$N_NEW
      if xbb_start_xbootd "$ca-profile-$p" "$cadir" "sqlite:$db"; then
        xbb_perf_start "$XBB_TMP/$ca-$p.perf.data"
        scenario_run "$ca-profile-$p" "$ca" "profile-$p" "$cadir" "$CONC" --api xboot "$mode_arg" \
          --count "$n" --register "sqlite:$db" --id-prefix "$ca-prof$p"
        xbb_perf_stop "$XBB_TMP/$ca-$p.perf.data" "$RDIR/perf-$ca-xbootd-$p.txt"
        xbb_stop_server
        [ -s "$RDIR/perf-$ca-xbootd-$p.txt" ] && xbb_say "profile: $RDIR/perf-$ca-xbootd-$p.txt"
      fi
    done
  fi
done

# ---- fleet size (--fleet) ----
if [ "$FLEET" = 1 ]; then
  XBB_SKIP_BUILD=1 bash "$XBB_ROOT/bench/fleet-size.sh" --results "$XBB_RESULTS" \
    --duration "$D" --concurrency "$CONC" --warmup "$WARM" || SCEN_FAIL=1
fi

# ---- the table ----
echo
bash "$XBB_ROOT/bench/report.sh" "$XBB_RESULTS" | tee "$RDIR/table.txt"
echo
echo "raw JSON lines: $XBB_RESULTS"
echo "exact commands: $XBB_COMMANDS"
[ "$SCEN_FAIL" = 0 ] || echo "note: some scenarios reported errors (see above and the 'exit' field of their JSON lines)"
exit 0
