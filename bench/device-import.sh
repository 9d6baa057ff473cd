#!/usr/bin/env bash
# How long does a factory list take to import? Writes a CSV of N devices (default 1,000,000):
# a third plain IDs, a third with the SHA-256 of a secret (sha256:HEX), a third members of a
# group created first; then times `xbootctl device import FILE` into that fresh registry
# (process start, reading and checking every line, one transaction of N inserts, the durable
# commit). Prints seconds, and peak RSS and CPU time when /usr/bin/time is there; the sqlite3
# CLI then checks the registry holds N devices. The target: <= 60 s at 1,000,000. The IDs are
# in ascending order, as a factory's serial numbers would be; --shuffle puts the lines in a
# random (but repeatable) order, so that every insert lands on a random page of the ID index.
# --db postgresql://... imports into that PostgreSQL database instead of a fresh SQLite file: it
# must be empty and migrated (xbootctl db migrate), and psql counts the rows.
# Usage: bench/device-import.sh [--rows N] [--build DIR] [--shuffle] [--db postgresql://...]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=1000000 BUILD=$ROOT/build SHUFFLE=0 PG_URL="" 
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) shift; N=${1:-} ;;
    --build) shift; BUILD=${1:-} ;;
    --shuffle) SHUFFLE=1 ;;
    --db) shift; PG_URL=${1:-} ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
case "$N" in ''|*[!0-9]*) echo "--rows: a number" >&2; exit 2 ;; esac
# 1,000,000 lines of up to ~90 bytes stay well below xbootctl's 256 MiB file limit.
[ "$N" -ge 1 ] && [ "$N" -le 2000000 ] || { echo "--rows: 1..2000000" >&2; exit 2; }
CTL=$BUILD/xbootctl
[ -x "$CTL" ] || { echo "no $CTL: build first (or --build DIR)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/xboot-import-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
DB="sqlite:$TMP/x.db"
case "$PG_URL" in
  '') command -v sqlite3 >/dev/null || { echo "sqlite3 (the CLI) is missing" >&2; exit 1; } ;;
  postgresql://*|postgres://*) DB=$PG_URL
    command -v psql >/dev/null || { echo "psql is missing" >&2; exit 1; } ;;
  *) echo "--db: a postgresql:// URL" >&2; exit 2 ;;
esac
# One query against the registry the import went to.
query() {
  if [ -n "$PG_URL" ]; then psql "$PG_URL" -tAq -c "$1"; else sqlite3 "$TMP/x.db" "$1"; fi
}

"$CTL" group add bench-line --db "$DB" >/dev/null 2>&1 || exit 1
# IDs like a factory's serial numbers, every fourth one a MAC address; hashes are random hex
# (xbootctl only parses them). A header and a comment, as a spreadsheet export would have.
awk -v n="$N" 'BEGIN {
  srand(6); print "id,credential"; print "# bench/device-import.sh"
  for (i = 1; i <= n; i++) {
    if (i % 4 == 0)
      id = sprintf("00:1b:%02x:%02x:%02x:%02x", int(i / 16777216) % 256, int(i / 65536) % 256,
                   int(i / 256) % 256, i % 256)
    else
      id = sprintf("SN-%09d.line-a", i)
    k = i % 3
    if (k == 0) { print id; continue }
    if (k == 2) { print id ",bench-line"; continue }
    h = ""
    for (j = 0; j < 8; j++) h = h sprintf("%08x", int(rand() * 4294967296))
    print id ",sha256:" h
  }
}' >"$TMP/devices.csv" || exit 1
if [ "$SHUFFLE" = 1 ]; then
  { head -n 2 "$TMP/devices.csv"; tail -n +3 "$TMP/devices.csv" | shuf --random-source=<(yes); } \
    >"$TMP/shuffled.csv" && mv "$TMP/shuffled.csv" "$TMP/devices.csv" || exit 1
fi

TIMEV=()
[ -x /usr/bin/time ] && TIMEV=(/usr/bin/time -v -o "$TMP/time.txt")
start=$(date +%s.%N)
"${TIMEV[@]}" "$CTL" device import "$TMP/devices.csv" --db "$DB" >"$TMP/out.txt" || exit 1
end=$(date +%s.%N)
tv() { sed -n "s/.*$1: *//p" "$TMP/time.txt" 2>/dev/null; }
rss=$(tv 'Maximum resident set size (kbytes)')
user=$(tv 'User time (seconds)') sys=$(tv 'System time (seconds)')
rows=$(query 'SELECT count(*) FROM devices')
secrets=$(query 'SELECT count(*) FROM devices WHERE secret_sha256 IS NOT NULL')
members=$(query "SELECT count(*) FROM devices WHERE group_name = 'bench-line'")
if [ -n "$PG_URL" ]; then db_bytes=$(query 'SELECT pg_database_size(current_database())')
else db_bytes=$(stat -c %s "$TMP/x.db"); fi
printf 'registry=%s rows=%d order=%s csv_bytes=%d db_bytes=%d devices=%d secrets=%d members=%d ' \
  "$([ -n "$PG_URL" ] && echo postgresql || echo sqlite)" \
  "$N" "$([ "$SHUFFLE" = 1 ] && echo random || echo ascending)" \
  "$(stat -c %s "$TMP/devices.csv")" "$db_bytes" "$rows" "$secrets" "$members"
printf 'peak_rss_kib=%s user_s=%s sys_s=%s seconds=%.3f\n' "${rss:-?}" "${user:-?}" "${sys:-?}" \
  "$(echo "$end - $start" | bc)"
[ "$rows" -eq "$N" ]
