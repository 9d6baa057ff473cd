# Helpers shared by bench/run.sh and bench/fleet-size.sh. Source it after setting XBB_ROOT.
# It makes a temp dir (XBB_TMP); on exit it stops every process it started (by PID) and
# removes the dir. Every server listens on 127.0.0.1 only; every wait loop is bounded.
set -u

XBB_ROOT=${XBB_ROOT:?XBB_ROOT must name the repository}
XBB_BUILD=${XBB_BUILD:-$XBB_ROOT/build}
case "$XBB_BUILD" in /*) ;; *) XBB_BUILD=$XBB_ROOT/$XBB_BUILD ;; esac
XBB_BIN=${XBB_BIN:-$XBB_BUILD} # where xbootd, xbootctl, xboot-bench are run from
XBB_SERVER_CPU=${XBB_SERVER_CPU:-0}  # the servers and the in-process floor run here
XBB_LOADGEN_CPU=${XBB_LOADGEN_CPU:-1} # xboot-bench (the load generator) runs here
XBB_TMP=$(mktemp -d /tmp/xboot-bench.XXXXXX)
XBB_SRV_PID=""     # the server being measured (xbootd supervisor or cfssl)
XBB_SRV_URL=""
XBB_SRV_KIND=""
XBB_SRV_CA=""      # its CA directory (for /metrics over HTTPS)
XBB_SRV_LOG=""
XBB_BG_PIDS=()     # samplers and perf recorders we started
XBB_RESULTS=${XBB_RESULTS:-}   # JSON lines file (set by the caller)
XBB_COMMANDS=${XBB_COMMANDS:-} # exact commands file (set by the caller)
XBB_LAST_JSON=""   # the last JSON line of xbb_enroll / xbb_floor

xbb_cleanup() {
  local p
  for p in "${XBB_BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  xbb_stop_server
  for p in "${XBB_BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$XBB_TMP"
}
trap xbb_cleanup EXIT
trap 'exit 130' INT TERM

xbb_say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
xbb_die() { xbb_say "error: $*"; exit 1; }

# Append the exact command (shell-quoted) to the commands file.
xbb_record_cmd() {
  [ -n "$XBB_COMMANDS" ] || return 0
  local q
  printf -v q '%q ' "$@"
  printf '%s\n' "${q% }" >>"$XBB_COMMANDS"
}

# Append a configuration file to the commands file, as comments.
xbb_record_file() {
  [ -n "$XBB_COMMANDS" ] || return 0
  { echo "# $1:"; sed 's/^/#   /' "$1"; } >>"$XBB_COMMANDS"
}

# Machine description, one "key: value" per line.
xbb_machine() {
  local model cores mem kernel
  model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
  cores=$(nproc)
  mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
  kernel=$(uname -sr)
  echo "cpu: ${model:-unknown} x ${cores} (online: $(cat /sys/devices/system/cpu/online 2>/dev/null))"
  echo "memory: $mem"
  echo "kernel: $kernel"
  if [ -r /etc/os-release ]; then echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"; fi
  local p v
  for p in libssl3 libsqlite3-0 libevent-2.1-7 golang-cfssl; do
    v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null) || v="not installed"
    echo "$p: $v"
  done
  echo "openssl: $(openssl version 2>/dev/null)"
  local commit
  commit=$(git -C "$XBB_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git -C "$XBB_ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit (+ uncommitted changes)"
  fi
  echo "commit: $commit"
}

# fdatasync latency of the filesystem holding DIR (200 x 4 KiB writes): "P50_MS P99_MS".
xbb_fsync_probe() {
  /usr/bin/python3 - "$1" <<'PY' 2>/dev/null
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe.tmp")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
ts = []
for i in range(200):
    os.pwrite(fd, b"x" * 4096, (i % 16) * 4096)
    t = time.perf_counter(); os.fdatasync(fd); ts.append(time.perf_counter() - t)
os.close(fd); os.unlink(path)
ts.sort(); print("%.3f %.3f" % (ts[100] * 1e3, ts[198] * 1e3))
PY
}

# Copy the three binaries into the temp dir, so that every scenario of a run uses the same
# build even if the build directory is rebuilt meanwhile. Exports XBB_BIN (a caller's frozen
# copy is kept: bench/fleet-size.sh run from bench/run.sh uses run.sh's).
xbb_freeze_bins() {
  if [ "${XBB_BIN_FROZEN:-0}" = 1 ] && [ -x "$XBB_BIN/xboot-bench" ]; then return 0; fi
  local b
  mkdir -p "$XBB_TMP/bin"
  for b in xbootd xbootctl xboot-bench; do
    [ -x "$XBB_BUILD/$b" ] || { xbb_say "$XBB_BUILD/$b is missing (make build)"; return 1; }
    cp -p "$XBB_BUILD/$b" "$XBB_TMP/bin/$b" || return 1
  done
  export XBB_BIN=$XBB_TMP/bin XBB_BIN_FROZEN=1
}

# ---- servers ----------------------------------------------------------------------------

# xbb_start_xbootd NAME CADIR DBURL [extra config lines...]: writes $XBB_TMP/NAME.conf, starts
# xbootd pinned to XBB_SERVER_CPU with one worker, waits for /healthz.
xbb_start_xbootd() {
  local name=$1 ca=$2 db=$3; shift 3
  local conf="$XBB_TMP/$name.conf"
  cat >"$conf" <<CONF
[server]
listen = 127.0.0.1:0
tls_cert = $ca/tls.pem
tls_key = $ca/tls.key
threads = 1
timeout_seconds = ${XBB_SERVER_TIMEOUT:-900}
log_level = info

[ca]
cert = $ca/signing-ca.pem
key = $ca/signing-ca.key
chain = $ca/chain.pem

[registry]
db = $db

[enroll]
mode = ${XBB_ENROLL_MODE:-allowlist}

# A load generator is one address sending thousands a second: limits off.
[rate_limit]
ip_per_minute = 0
id_per_minute = 0
CONF
  local line
  for line in "$@"; do echo "$line" >>"$conf"; done
  xbb_record_file "$conf"
  XBB_SRV_LOG="$XBB_TMP/$name.log"
  : >"$XBB_SRV_LOG"
  xbb_record_cmd taskset -c "$XBB_SERVER_CPU" "$XBB_BIN/xbootd" -c "$conf"
  taskset -c "$XBB_SERVER_CPU" "$XBB_BIN/xbootd" -c "$conf" 2>"$XBB_SRV_LOG" &
  XBB_SRV_PID=$!
  XBB_SRV_KIND=xbootd
  XBB_SRV_CA=$ca
  local i port=""
  for i in $(seq 1 150); do # at most 15 s
    grep -q "xbootd .* started" "$XBB_SRV_LOG" && break
    kill -0 "$XBB_SRV_PID" 2>/dev/null || break
    sleep 0.1
  done
  port=$(sed -n 's|.*listening on https://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$XBB_SRV_LOG" | head -n1)
  if [ -z "$port" ]; then
    xbb_say "xbootd ($name) did not start:"; sed 's/^/    /' "$XBB_SRV_LOG" >&2
    xbb_stop_server; return 1
  fi
  XBB_SRV_URL="https://127.0.0.1:$port"
  for i in $(seq 1 50); do
    curl -s -o /dev/null --max-time 2 --cacert "$ca/root-ca.pem" "$XBB_SRV_URL/healthz" && return 0
    sleep 0.1
  done
  xbb_say "xbootd ($name) does not answer /healthz"; sed 's/^/    /' "$XBB_SRV_LOG" >&2
  xbb_stop_server; return 1
}

# The TCP port a process (by PID) listens on, from ss (empty when none yet).
xbb_listen_port() {
  ss -ltnpH 2>/dev/null | awk -v pid="pid=$1," 'index($0, pid) { n = split($4, a, ":"); print a[n]; exit }'
}

# xbb_start_cfssl NAME CADIR: `cfssl serve` on plain HTTP (its best case), pinned to
# XBB_SERVER_CPU with GOMAXPROCS=1, a profile equivalent to xbootd's (client auth, 365 days).
xbb_start_cfssl() {
  local name=$1 ca=$2
  local cfg="$XBB_TMP/$name-cfssl.json"
  # xbootd's profile: keyUsage digitalSignature (critical), extendedKeyUsage clientAuth,
  # basicConstraints CA:FALSE, SKI + AKI, validity 365 days (8760 h).
  cat >"$cfg" <<'JSON'
{"signing": {"default": {"usages": ["digital signature", "client auth"], "expiry": "8760h"}}}
JSON
  xbb_record_file "$cfg"
  XBB_SRV_LOG="$XBB_TMP/$name.log"
  # -loglevel 2 (warning): cfssl then writes no line per request, a small advantage it gets
  # (xbootd logs one line per request at its default level, info).
  local cmd=(cfssl serve -address 127.0.0.1 -port 0 -ca "$ca/signing-ca.pem"
    -ca-key "$ca/signing-ca.key" -config "$cfg" -loglevel 2)
  xbb_record_cmd env GOMAXPROCS=1 taskset -c "$XBB_SERVER_CPU" "${cmd[@]}"
  GOMAXPROCS=1 taskset -c "$XBB_SERVER_CPU" "${cmd[@]}" >"$XBB_SRV_LOG" 2>&1 &
  XBB_SRV_PID=$!
  XBB_SRV_KIND=cfssl
  XBB_SRV_CA=$ca
  local i port=""
  for i in $(seq 1 100); do # at most 10 s
    port=$(xbb_listen_port "$XBB_SRV_PID")
    [ -n "$port" ] && break
    kill -0 "$XBB_SRV_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    xbb_say "cfssl ($name) did not start:"; sed 's/^/    /' "$XBB_SRV_LOG" >&2
    xbb_stop_server; return 1
  fi
  XBB_SRV_URL="http://127.0.0.1:$port"
  # cfssl has no health route; its info endpoint answers once the signer is up.
  for i in $(seq 1 50); do
    curl -s -o /dev/null --max-time 2 -d '{}' "$XBB_SRV_URL/api/v1/cfssl/info" && return 0
    sleep 0.1
  done
  xbb_say "cfssl ($name) does not answer"; xbb_stop_server; return 1
}

xbb_stop_server() {
  [ -n "$XBB_SRV_PID" ] || return 0
  kill -TERM "$XBB_SRV_PID" 2>/dev/null
  local i
  for i in $(seq 1 150); do kill -0 "$XBB_SRV_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$XBB_SRV_PID" 2>/dev/null
  wait "$XBB_SRV_PID" 2>/dev/null
  if [ "$XBB_SRV_KIND" = xbootd ] && [ -n "$XBB_SRV_LOG" ] &&
    grep -qE " (error|crit|fatal) | worker .*(died|exited|killed)" "$XBB_SRV_LOG"; then
    xbb_say "xbootd logged errors (first lines; full log kept as $XBB_SRV_LOG.errors):"
    grep -E " (error|crit|fatal) | worker .*(died|exited|killed)" "$XBB_SRV_LOG" | head -n 5 | sed 's/^/    /' >&2
    [ -n "${XBB_RESULTS_DIR:-}" ] && cp "$XBB_SRV_LOG" "$XBB_RESULTS_DIR/$(basename "$XBB_SRV_LOG").errors"
  fi
  XBB_SRV_PID=""
  XBB_SRV_URL=""
}

# The server's PID and its descendants (workers), one per line.
xbb_tree_pids() {
  local p=$1 c
  echo "$p"
  for c in $(pgrep -P "$p" 2>/dev/null); do xbb_tree_pids "$c"; done
}

# xbootd's /metrics: prints "BATCH_MEAN COMMIT_MS" (mean rows per commit, mean commit time in
# ms) or nothing when the server does not export them.
xbb_commit_metrics() {
  [ "$XBB_SRV_KIND" = xbootd ] || return 0
  curl -s --max-time 5 --cacert "$XBB_SRV_CA/root-ca.pem" "$XBB_SRV_URL/metrics" 2>/dev/null |
    awk '
      /^xboot_registry_commit_batch_size_sum([{ ]|$)/ { bs += $NF; hb = 1 }
      /^xboot_registry_commit_batch_size_count([{ ]|$)/ { bc += $NF }
      /^xboot_registry_commit_duration_seconds_sum([{ ]|$)/ { ds += $NF; hd = 1 }
      /^xboot_registry_commit_duration_seconds_count([{ ]|$)/ { dc += $NF }
      END {
        if (!hb || bc == 0) exit
        printf "%.1f %s\n", bs / bc, (hd && dc > 0) ? sprintf("%.3f", ds / dc * 1000) : "-"
      }'
}

# ---- RSS sampler ------------------------------------------------------------------------

# xbb_rss_sampler_start OUTFILE: every 0.2 s (at most XBB_RSS_MAX_S seconds) writes to OUTFILE
# "MAX_TREE_KIB MAX_ONE_KIB": the largest sum of VmRSS over the server's processes, and the
# largest VmRSS of one of them, seen so far. Stops when the server exits or when killed.
xbb_rss_sampler_start() {
  local out=$1 srv=$XBB_SRV_PID max_s=${XBB_RSS_MAX_S:-900}
  (
    trap 'exit 0' TERM
    tree_max=0 one_max=0
    for _ in $(seq 1 $((max_s * 5))); do
      kill -0 "$srv" 2>/dev/null || break
      sum=0
      for p in $(xbb_tree_pids "$srv"); do
        r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        [ -n "$r" ] || continue
        sum=$((sum + r))
        [ "$r" -gt "$one_max" ] && one_max=$r
      done
      [ "$sum" -gt "$tree_max" ] && tree_max=$sum
      echo "$tree_max $one_max" >"$out.tmp" && mv "$out.tmp" "$out"
      sleep 0.2
    done
  ) &
  XBB_BG_PIDS+=($!)
  XBB_SAMPLER_PID=$!
}

xbb_bg_stop() { # xbb_bg_stop PID [SIGNAL]
  kill "-${2:-TERM}" "$1" 2>/dev/null
  local i
  for i in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  return 0
}

# ---- is CPU 0 ours? ------------------------------------------------------------------------

# "WALL_NS BUSY STEAL SERVER" in clock ticks: CPU XBB_SERVER_CPU's busy time (user, nice,
# system, irq, softirq) and hypervisor steal from /proc/stat, and the CPU time of the server's
# processes. Two snapshots tell how much of that CPU went to anything but the server.
xbb_cpu_snapshot() {
  local srv=0 p t
  if [ -n "$XBB_SRV_PID" ]; then
    for p in $(xbb_tree_pids "$XBB_SRV_PID"); do
      t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')
      srv=$((srv + ${t:-0}))
    done
  fi
  awk -v cpu="cpu$XBB_SERVER_CPU" -v now="$(date +%s%N)" -v srv="$srv" \
    '$1 == cpu { print now, $2 + $3 + $4 + $7 + $8, $9, srv; exit }' /proc/stat
}

# xbb_cpu_other BEFORE AFTER: "OTHER_PCT STEAL_PCT" of the wall time between the snapshots.
xbb_cpu_other() {
  awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    split(a, x, " "); split(b, y, " ")
    wall = (y[1] - x[1]) / 1e9 * hz
    if (wall <= 0) exit
    other = (y[2] - x[2]) - (y[4] - x[4]); if (other < 0) other = 0
    printf "%.1f %.1f\n", other / wall * 100, (y[3] - x[3]) / wall * 100 }'
}

# ---- perf -------------------------------------------------------------------------------

# xbb_perf_start OUT: samples the server's processes (call graphs) until xbb_perf_stop.
xbb_perf_start() {
  XBB_PERF_PID=""
  command -v perf >/dev/null || { xbb_say "perf not installed: no profile"; return 0; }
  local pids
  pids=$(xbb_tree_pids "$XBB_SRV_PID" | paste -sd, -)
  taskset -c "$XBB_LOADGEN_CPU" perf record -q -F 999 -g -p "$pids" -o "$1" >/dev/null 2>&1 &
  XBB_PERF_PID=$!
  XBB_BG_PIDS+=("$XBB_PERF_PID")
}

# xbb_perf_stop DATA REPORT: stops the recorder and writes the top of the profile: time by
# shared object, the hottest symbols (self time), and the kernel paths (inclusive time).
# Debian's libcrypto has no symbols unless libssl3-dbgsym is installed: its samples then show
# as addresses, and the by-object view is the one to read.
xbb_perf_stop() {
  [ -n "${XBB_PERF_PID:-}" ] || return 0
  xbb_bg_stop "$XBB_PERF_PID" INT
  XBB_PERF_PID=""
  [ -s "$1" ] || return 0
  local rep=(perf report -i "$1" --stdio -g none)
  { echo "# samples by shared object (self time)"
    "${rep[@]}" --no-children --sort dso 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 15
    echo
    echo "# hottest symbols (self time, >= 0.5%)"
    "${rep[@]}" --no-children --sort dso,symbol --percent-limit 0.5 2>/dev/null |
      grep -v '^#' | grep -v '^$' | head -n 40
    echo
    echo "# kernel paths (inclusive time, >= 2%)"
    "${rep[@]}" --children --sort symbol --percent-limit 2 2>/dev/null | grep '\[k\]' | head -n 40
  } | sed 's/[[:space:]]*-[[:space:]]*-[[:space:]]*$//' >"$2"
}

# ---- xboot-bench ------------------------------------------------------------------------

# xbb_enroll LABEL CA_TYPE SCENARIO [xboot-bench enroll args...]: runs the load generator
# pinned to XBB_LOADGEN_CPU, bounded by `timeout`, appends its JSON line (with "ca",
# "scenario", "label", "exit" added) to XBB_RESULTS and leaves it in XBB_LAST_JSON. Returns
# the tool's exit status.
xbb_enroll() {
  local label=$1 ca=$2 scen=$3; shift 3
  local out="$XBB_TMP/$label.out" err="$XBB_TMP/$label.err" rc=0
  local limit=$((${XBB_DURATION:-15} + ${XBB_TOOL_SLACK:-240}))
  local cmd=("$XBB_BIN/xboot-bench" enroll "$@" --json)
  xbb_record_cmd taskset -c "$XBB_LOADGEN_CPU" "${cmd[@]}"
  taskset -c "$XBB_LOADGEN_CPU" timeout -k 5 "$limit" "${cmd[@]}" >"$out" 2>"$err" || rc=$?
  xbb_collect "$label" "$ca" "$scen" "$rc" "$out" "$err"
}

# xbb_floor LABEL CA_TYPE [xboot-bench floor args...]: the in-process floor, pinned to the
# server's CPU (the same core the servers get).
xbb_floor() {
  local label=$1 ca=$2; shift 2
  local out="$XBB_TMP/$label.out" err="$XBB_TMP/$label.err" rc=0
  local cmd=("$XBB_BIN/xboot-bench" floor "$@" --json)
  xbb_record_cmd taskset -c "$XBB_SERVER_CPU" "${cmd[@]}"
  taskset -c "$XBB_SERVER_CPU" timeout -k 5 300 "${cmd[@]}" >"$out" 2>"$err" || rc=$?
  xbb_collect "$label" "$ca" floor "$rc" "$out" "$err"
}

xbb_collect() {
  local label=$1 ca=$2 scen=$3 rc=$4 out=$5 err=$6 line
  line=$(grep '^{' "$out" | tail -n1)
  if [ -z "$line" ] || ! jq -e . >/dev/null 2>&1 <<<"$line"; then
    xbb_say "$label: no JSON from xboot-bench (exit $rc)"
    sed 's/^/    /' "$err" | tail -n 15 >&2
    line='{}'
  elif [ "$rc" -ne 0 ] && [ -s "$err" ]; then
    xbb_say "$label: xboot-bench exit $rc; stderr tail:"
    sed 's/^/    /' "$err" | tail -n 8 >&2
  fi
  # clean: a measurement to count. For enroll: no errors, something ok, no sampled certificate
  # failed to verify (requests cut off by --duration are neither: their outcome is unknown, and
  # xboot-bench may exit 1 for them). For floor: the exit status and a rate.
  XBB_LAST_JSON=$(jq -c --arg l "$label" --arg c "$ca" --arg s "$scen" --argjson x "$rc" '
    {label: $l, ca: $c, scenario: $s, exit: $x} + . |
    .clean = (if $s == "floor" then ($x == 0 and .floor_rate != null)
              else (.rate != null and (.ok // 0) > 0 and (.verify_failures // 0) == 0 and
                    ((.errors // {}) | if type == "object" then ([.[]] | add // 0) else . end) == 0)
              end)' <<<"$line")
  [ -n "$XBB_RESULTS" ] && printf '%s\n' "$XBB_LAST_JSON" >>"$XBB_RESULTS"
  [ "$(jq -r .clean <<<"$XBB_LAST_JSON")" = true ]
}

# A field of a JSON line (empty when absent or null): xbb_get JSON FIELD
xbb_get() { jq -r --arg f "$2" '.[$f] // empty | tostring' <<<"$1" 2>/dev/null; }

# Add fields to the last result line (in the file too): xbb_annotate KEY VALUE...
xbb_annotate() {
  local args=()
  while [ $# -ge 2 ]; do args+=(--arg "$1" "$2"); shift 2; done
  local filter='. + ($ARGS.named | map_values(if . == "" then null
    elif test("^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$") then tonumber else . end))'
  XBB_LAST_JSON=$(jq -c "${args[@]}" "$filter" <<<"$XBB_LAST_JSON")
  if [ -n "$XBB_RESULTS" ] && [ -s "$XBB_RESULTS" ]; then
    sed -i '$d' "$XBB_RESULTS" && printf '%s\n' "$XBB_LAST_JSON" >>"$XBB_RESULTS"
  fi
}

# awk arithmetic: xbb_calc 'EXPR' (prints the result, or empty on failure)
xbb_calc() { awk "BEGIN { x = $1; print x }" 2>/dev/null; }
