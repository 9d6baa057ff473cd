#!/usr/bin/env bash
# Run every fuzz/fuzz_* harness built in $1 for $2 seconds each, on a scratch corpus seeded
# from the committed seeds; any crash, leak or timeout fails (libFuzzer's exit status).
set -euo pipefail
BUILD=$(cd "$1" && pwd) SECONDS_EACH=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/xboot-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
declare -A seeds=([fuzz_csr]="$ROOT/tests/fixtures/csr $ROOT/fuzz/corpus/csr" [fuzz_xboot_request]="$ROOT/fuzz/corpus/xboot_request"
  [fuzz_est_body]="$ROOT/tests/fixtures/csr $ROOT/fuzz/corpus/csr")
status=0
for bin in "$BUILD"/fuzz_*; do
  name=$(basename "$bin")
  mkdir -p "$work/$name"
  echo "== $name: ${SECONDS_EACH}s"
  if ! (cd "$work" && "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 "$work/$name" ${seeds[$name]:-} >"$work/$name.log" 2>&1); then
    status=1
    tail -n 60 "$work/$name.log"
    cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$ROOT" 2>/dev/null || true
  fi
  grep -E "^Done|stat::number_of_executed_units" "$work/$name.log" | head -2
done
exit $status
