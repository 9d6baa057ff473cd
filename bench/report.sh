#!/usr/bin/env bash
# Print the benchmark table and the targets (PASS/MISS) from a results.jsonl written by
# bench/run.sh (and bench/fleet-size.sh). Usage: bench/report.sh RESULTS.jsonl
set -u
F=${1:?usage: bench/report.sh RESULTS.jsonl}
[ -s "$F" ] || { echo "no results in $F" >&2; exit 1; }

# The last line matching CA and SCENARIO (CA may be "*"), as JSON (or {}).
row() { jq -c --arg c "$1" --arg s "$2" 'select(.scenario == $s and ($c == "*" or .ca == $c))' "$F" | tail -n1; }
get() { local j=${1:-}; [ -n "$j" ] || j='{}'; jq -r --arg f "$2" '.[$f] // empty | tostring' <<<"$j" 2>/dev/null; }
calc() { awk "BEGIN { x = $1; printf \"%s\", x }" 2>/dev/null; }
fmt() { awk -v x="$1" -v f="$2" 'BEGIN { if (x == "") print "-"; else printf f "\n", x }'; }

META=$(row "*" meta)
echo "XBoot benchmark: $(get "$META" date), $(get "$META" mode) mode, $(get "$META" duration_s) s per scenario, warm-up $(get "$META" warmup) enrollments, concurrency $(get "$META" concurrency) unless shown"
[ -n "$(get "$META" command)" ] && echo "  command: $(get "$META" command)"
get "$META" machine | sed 's/^/  /'
echo "  pinning: servers and the floor on CPU $(get "$META" server_cpu) (xbootd threads = 1, cfssl GOMAXPROCS = 1); the load generator (xboot-bench) on CPU $(get "$META" loadgen_cpu)"
echo

if [ -n "$(row "*" floor)" ]; then
echo "Crypto floor, in process, one core (per enrollment: verify the CSR + sign the certificate; new-conn adds a TLS handshake)"
printf '%-8s %10s %9s %10s %9s %10s %9s %10s %13s\n' CA "verify us" "sign us" "floor us" "floor/s" "issue us" "issue/s" "TLS hs us" "new-conn us"
jq -r 'select(.scenario == "floor") | [.ca, .verify_us, .sign_us, .floor_us, .floor_rate, .issue_us, .issue_rate, .handshake_us, .floor_new_conn_us] | map(. // "" | tostring) | join("\u001f")' "$F" |
  while IFS=$'\x1f' read -r ca v s fl fr iu ir hs nc; do
    printf '%-8s %10s %9s %10s %9s %10s %9s %10s %13s\n' "$ca" "$(fmt "$v" %.1f)" "$(fmt "$s" %.1f)" \
      "$(fmt "$fl" %.1f)" "$(fmt "$fr" %.0f)" "$(fmt "$iu" %.1f)" "$(fmt "$ir" %.0f)" "$(fmt "$hs" %.1f)" "$(fmt "$nc" %.1f)"
  done
echo "  floor = verify + sign (crypto only); issue = the whole in-process issuance path of xbootd (decode, checks, build, sign)"
echo
fi

echo "Enrollments (distinct EC P-256 device CSRs; rate and latency over the timed window)"
printf '%-4s %-13s %-4s %4s %7s %5s %8s %7s %7s %7s %5s %7s %4s %7s %6s %6s %7s\n' \
  CA scenario conn conc ok err "rate/s" "p50 ms" "p99 ms" "max ms" "srv%" "us/enr" "lg%" "RSS MiB" "1p MiB" batch "cmt ms"
jq -r 'select(.scenario as $s | ["floor", "meta", "fleet-load", "fleet-floor"] | index($s) | not) |
  [.ca, .scenario, (if .mode then .mode else "" end), .concurrency, .ok,
   (.errors | if . == null then null elif type == "object" then ([.[]] | add // 0) else . end),
   .rate, .p50_ms, .p99_ms, .max_ms, .server_cpu_s, .elapsed_s, .server_cpu_us_per_ok,
   (.rss_tree_kib // .server_rss_kib), .rss_one_kib, .batch_mean, .commit_ms, .exit, .idle_open,
   .verify_failures, .client_cpu_s, .clean] | map(. // "" | tostring) | join("\u001f")' "$F" |
  while IFS=$'\x1f' read -r ca sc mode conc ok err rate p50 p99 mx cpu el us rss one bm cm ex idle vf ccpu cl; do
    conn=$mode
    case "$mode" in *reuse*|*keep*) conn=keep ;; *new*) conn=new ;; esac
    util=""
    [ -n "$cpu" ] && [ -n "$el" ] && util=$(calc "$cpu / $el * 100")
    lg=""
    [ -n "$ccpu" ] && [ -n "$el" ] && lg=$(calc "$ccpu / $el * 100")
    rmib="" omib=""
    [ -n "$rss" ] && rmib=$(calc "$rss / 1024")
    [ -n "$one" ] && omib=$(calc "$one / 1024")
    flag=""
    [ "$cl" = false ] && flag=" !not clean (exit $ex)"
    [ -n "$vf" ] && [ "$vf" != 0 ] && flag="$flag !verify_failures $vf"
    [ -n "$idle" ] && [ "$idle" != 0 ] && flag="$flag idle_open=$idle"
    printf '%-4s %-13s %-4s %4s %7s %5s %8s %7s %7s %7s %5s %7s %4s %7s %6s %6s %7s%s\n' "$ca" "$sc" "$conn" \
      "${conc:--}" "${ok:--}" "${err:--}" "$(fmt "$rate" %.0f)" "$(fmt "$p50" %.2f)" "$(fmt "$p99" %.2f)" \
      "$(fmt "$mx" %.1f)" "$(fmt "$util" %.0f)" "$(fmt "$us" %.0f)" "$(fmt "$lg" %.0f)" "$(fmt "$rmib" %.1f)" \
      "$(fmt "$omib" %.1f)" "$(fmt "$bm" %.1f)" "$(fmt "$cm" %.3f)" "$flag"
  done
echo "  srv% = server CPU time / wall time in the timed window (100 = its one core busy); us/enr = server CPU"
echo "  microseconds per enrollment; lg% = the load generator's CPU (its own core); RSS = peak sum over the server's"
echo "  processes (xbootd: supervisor + worker), 1p = peak of one process; batch = mean enrollments per SQLite"
echo "  commit, cmt ms = mean commit time (both from xbootd's /metrics, warm-up included)"
echo

FL=$(row "*" fleet-load)
if [ -n "$FL" ]; then
  echo "Fleet registry: $(get "$FL" fleet_devices) devices ($(get "$FL" enrolled) enrolled) + $(get "$FL" fleet_certificates) certificates, $(fmt "$(calc "$(get "$FL" db_bytes) / 1073741824")" %.2f) GiB;" \
    "bulk-loaded in $(get "$FL" load_s) s$([ "$(get "$FL" reused)" = true ] && echo " (cached from $(get "$FL" loaded), reused)")"
  echo
fi

# ---- targets ----
echo "Targets"
status() { # status OK(1/0/empty) TEXT
  case "$1" in 1) echo "  PASS  $2" ;; 0) echo "  MISS  $2" ;; *) echo "  n/a   $2" ;; esac
}
ge() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? 1 : 0 }'; }
le() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? 1 : 0 }'; }
and() { if [ "${1:-}" = 1 ] && [ "${2:-}" = 1 ]; then echo 1; elif [ "${1:-}" = 0 ] || [ "${2:-}" = 0 ]; then echo 0; fi; }
clean() { # a run counts only when no enrollment failed and every sampled certificate verified
  [ -n "$1" ] && [ "$(get "$1" clean)" = true ]
}

if [ "$(get "$META" mode)" != fleet ]; then # fleet-size.sh alone measures T6 only
# T1: keep-alive, EC P-256: xbootd >= 2.0x cfssl throughput, p99 <= cfssl's.
X=$(row ec xbootd-ka) C=$(row ec cfssl-ka)
xr=$(get "$X" rate) cr=$(get "$C" rate) xp=$(get "$X" p99_ms) cp=$(get "$C" p99_ms)
if clean "$X" && clean "$C"; then
  ratio=$(calc "$xr / $cr")
  ok=$(and "$(ge "$ratio" 2.0)" "$(le "$xp" "$cp")")
  status "$ok" "T1 keep-alive EC P-256: xbootd $(fmt "$xr" %.0f)/s = $(fmt "$ratio" %.2f)x cfssl $(fmt "$cr" %.0f)/s (target >= 2.0x); p99 $(fmt "$xp" %.2f) ms vs cfssl $(fmt "$cp" %.2f) ms (target <=)"
else
  status "" "T1 keep-alive EC P-256 vs cfssl: no clean run of both (xbootd-ka, cfssl-ka)"
fi

# T2: keep-alive, RSA-2048 CA: xbootd >= 0.85 x RSA-2048 sign rate of the cores it used.
X=$(row rsa xbootd-ka) FL=$(row rsa floor)
xr=$(get "$X" rate) su=$(get "$FL" sign_us) cores=$(get "$META" server_cores)
if clean "$X" && [ -n "$su" ]; then
  signrate=$(calc "1e6 / $su * ${cores:-1}")
  ratio=$(calc "$xr / $signrate")
  fr=$(get "$FL" floor_rate)
  fmax=""
  [ -n "$fr" ] && fmax="; the crypto floor itself (verify the EC CSR + sign) is $(fmt "$(calc "$fr * ${cores:-1} / $signrate")" %.2f)x"
  status "$(ge "$ratio" 0.85)" "T2 keep-alive RSA-2048 CA: xbootd $(fmt "$xr" %.0f)/s = $(fmt "$ratio" %.2f)x the RSA-2048 sign rate of its ${cores:-1} core ($(fmt "$signrate" %.0f)/s) (target >= 0.85x$fmax)"
else
  status "" "T2 keep-alive RSA-2048 CA: no clean xbootd-ka run or no floor"
fi

# T3: new TLS connection per enrollment, EC P-256: server CPU per enrollment <= 1.3x floor.
X=$(row ec xbootd-new) FL=$(row ec floor)
us=$(get "$X" server_cpu_us_per_ok) fl=$(get "$FL" floor_new_conn_us)
if clean "$X" && [ -n "$us" ] && [ -n "$fl" ]; then
  ratio=$(calc "$us / $fl")
  status "$(le "$ratio" 1.3)" "T3 new connection EC P-256: server CPU $(fmt "$us" %.0f) us/enrollment = $(fmt "$ratio" %.2f)x the floor $(fmt "$fl" %.0f) us (handshake + verify + sign) (target <= 1.3x)"
else
  status "" "T3 new connection EC P-256: no clean xbootd-new run with server CPU, or no floor"
fi

# T4: synchronous=FULL (group commit) within 20% of synchronous=OFF.
for ca in ec rsa; do
  X=$(row "$ca" xbootd-ka) O=$(row "$ca" xbootd-off)
  [ -n "$X$O" ] || continue
  xr=$(get "$X" rate) orr=$(get "$O" rate)
  if clean "$X" && clean "$O"; then
    ratio=$(calc "$xr / $orr")
    status "$(ge "$ratio" 0.8)" "T4 durability ($ca): synchronous=FULL $(fmt "$xr" %.0f)/s = $(fmt "$ratio" %.2f)x synchronous=OFF $(fmt "$orr" %.0f)/s (target >= 0.80x); mean batch $(fmt "$(get "$X" batch_mean)" %.1f), commit $(fmt "$(get "$X" commit_ms)" %.3f) ms"
  else
    status "" "T4 durability ($ca): no clean run of both xbootd-ka and xbootd-off"
  fi
done

# T5: RSS <= 64 MiB with 1,000 idle TLS connections, and still serving.
for ca in ec rsa; do
  X=$(row "$ca" xbootd-idle)
  [ -n "$X" ] || continue
  rss=$(get "$X" rss_tree_kib); [ -n "$rss" ] || rss=$(get "$X" server_rss_kib)
  tool=$(get "$X" server_rss_kib) idle=$(get "$X" idle_open) ok=$(get "$X" ok) xr=$(get "$X" rate)
  serving=0
  clean "$X" && [ "${ok:-0}" -gt 0 ] 2>/dev/null && serving=1
  idle_ok=$(ge "${idle:-0}" 1000)
  mem_ok=$(le "$rss" 65536)
  st=$(and "$(and "$mem_ok" "$idle_ok")" "$serving")
  [ -n "$rss" ] || st=""
  status "$st" "T5 memory ($ca): $(fmt "$(calc "${rss:-0} / 1024")" %.1f) MiB peak RSS (supervisor + worker; xboot-bench says $(fmt "$(calc "${tool:-0} / 1024")" %.1f) MiB) with ${idle:-?} idle TLS connections open (target <= 64 MiB, 1,000 open), serving $(fmt "$xr" %.0f)/s meanwhile, errors: $([ "$serving" = 1 ] && echo none || echo yes)"
done

fi

# T6: 10M devices + 10M certificates: throughput >= 90% of the empty registry.
E=$(jq -c 'select(.scenario == "fleet-empty" and .clean == true)' "$F")
B=$(row ec fleet-10m)
if [ -n "$E" ] && clean "$B"; then
  er=$(jq -s 'map(.rate) | add / length' <<<"$E") en=$(jq -s length <<<"$E") br=$(get "$B" rate)
  ratio=$(calc "$br / $er")
  status "$(ge "$ratio" 0.9)" "T6 fleet size: $(fmt "$(get "$B" fleet_devices)" %.0f) devices + $(fmt "$(get "$B" fleet_certificates)" %.0f) certificates: $(fmt "$br" %.0f)/s = $(fmt "$ratio" %.2f)x the empty registry ($(fmt "$er" %.0f)/s, mean of $en runs) (target >= 0.90x)"
elif [ -n "$E$B" ]; then
  status "" "T6 fleet size: no clean run of both fleet-empty and fleet-10m"
else
  status "" "T6 fleet size: not run (bench/run.sh --fleet or bench/fleet-size.sh)"
fi

NOTES=$(
jq -r --arg cpu "$(get "$META" server_cpu)" 'select((.cpu0_other_pct // 0) > 5 or (.cpu0_steal_pct // 0) > 5) |
  "  \(.ca) \(.scenario): CPU \($cpu) was shared: other processes used \(.cpu0_other_pct)% of it and the hypervisor took \(.cpu0_steal_pct)% (steal) during this run (pool generation included): its figures are low, re-run on a quiet machine"' "$F"
# A server that is neither busy nor starved by the load generator is waiting on something
# (disk, a timer, the network stack): its rate is a latency bound, not its CPU capacity.
jq -r 'select(.rate != null and .server_cpu_s != null and .elapsed_s > 0 and (.cpu0_other_pct // 0) <= 5) |
  [.ca, .scenario, (.server_cpu_s / .elapsed_s * 100), ((.client_cpu_s // 0) / .elapsed_s * 100), .p50_ms, .concurrency] |
  map(tostring) | join("\u001f")' "$F" |
  while IFS=$'\x1f' read -r ca sc su lu p50 conc; do
    awk -v s="$su" -v l="$lu" 'BEGIN { exit !(s < 80 && l < 80) }' &&
      echo "  $ca $sc: the server used $(fmt "$su" %.0f)% of its core and the load generator $(fmt "$lu" %.0f)% of its own, with $conc requests in flight and p50 $(fmt "$p50" %.1f) ms: the rate is bound by waiting (fsync, Nagle/delayed ACK, a timer...), not by CPU"
  done
)
if [ -n "$NOTES" ]; then
  echo
  echo "Notes"
  echo "$NOTES"
fi
