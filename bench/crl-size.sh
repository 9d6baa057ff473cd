#!/usr/bin/env bash
# How long does a CRL of a large fleet take? Bulk-inserts N revoked certificates (default
# 100,000) into a fresh registry with xbootd's real schema (sqlite3 CLI, as fleet-size.sh
# does), then times `xbootctl crl --ca DIR`, which reads every revoked row, builds the CRL,
# signs it once and stores it (plus process start and CA load). Prints seconds; the goal of
# issue 6 is <= 1 s for 100,000 entries. openssl then checks the CRL lists N entries.
# Usage: bench/crl-size.sh [--revoked N] [--build DIR] [--key-type TYPE]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=100000 BUILD=$ROOT/build KEY=ec-p256
while [ $# -gt 0 ]; do
  case "$1" in
    --revoked) shift; N=${1:-} ;;
    --build) shift; BUILD=${1:-} ;;
    --key-type) shift; KEY=${1:-} ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
case "$N" in ''|*[!0-9]*) echo "--revoked: a number" >&2; exit 2 ;; esac
[ "$N" -ge 1 ] && [ "$N" -le 10000000 ] || { echo "--revoked: 1..10000000" >&2; exit 2; }
CTL=$BUILD/xbootctl
[ -x "$CTL" ] || { echo "no $CTL: build first (or --build DIR)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 (the CLI) is missing" >&2; exit 1; }
TMP=$(mktemp -d /tmp/xboot-crl-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

"$CTL" ca init --dir "$TMP/ca" --key-type "$KEY" >/dev/null || exit 1
"$CTL" device add bench-dev --db "sqlite:$TMP/x.db" >/dev/null || exit 1
# Serials like xbootd's: 20 octets (a 4-octet time prefix, 16 random); revoked over a day,
# reasons cycling through unspecified, keyCompromise, superseded, cessationOfOperation.
sqlite3 "$TMP/x.db" <<SQL || exit 1
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO certificates (serial, reg_id, issued_at, der, revoked_at, revocation_reason)
SELECT '6a' || printf('%06x', i) || lower(hex(randomblob(16))), 'bench-dev', 1700000000,
       x'3000', 1700000000 + i % 86400, (0x05040100 >> ((i % 4) * 8)) & 255 FROM n;
UPDATE crl SET revision = revision + 1;
COMMIT;
SQL
start=$(date +%s.%N)
"$CTL" crl --ca "$TMP/ca" --out "$TMP/crl.der" --db "sqlite:$TMP/x.db" >/dev/null || exit 1
end=$(date +%s.%N)
entries=$(openssl crl -inform DER -in "$TMP/crl.der" -noout -text | grep -c 'Serial Number:')
verify=$(openssl crl -inform DER -in "$TMP/crl.der" -CAfile "$TMP/ca/chain.pem" -noout 2>&1)
printf 'revoked=%d key=%s crl_bytes=%d entries=%d %s seconds=%.3f\n' "$N" "$KEY" \
  "$(stat -c %s "$TMP/crl.der")" "$entries" "${verify:-?}" "$(echo "$end - $start" | bc)"
[ "$entries" -eq "$N" ]
