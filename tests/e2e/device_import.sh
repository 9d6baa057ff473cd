#!/usr/bin/env bash
# Bootstrap credentials from xbootctl: device import of a factory list (every kind of bad line
# refused, named as FILE:LINE, the registry unchanged), device add --secret / --group, and
# group add / derive / list, with group keys checked against openssl's HMAC.
. "$(dirname "$0")/lib.sh"

ctl() { "$XB_BIN/xbootctl" "$@" --db "$XB_DB_URL" 2>"$XB_TMP/err"; }
err() { cat "$XB_TMP/err"; }
# The whole registry: SQLite's .dump (schema too); every row of every table on PostgreSQL.
dump() { if xb_backend_is sqlite; then sqlite3 "$XB_DB" .dump; else xb_db_dump; fi; }
field() { ctl device show "$1" | sed -n "s/^$2: *//p"; } # field ID NAME: one line of device show
state() { ctl device list | awk -v id="$1" '$1 == id { print $2 }'; }
sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
stored_hash() { xb_sql "SELECT lower($(xb_sql_hex secret_sha256)) FROM devices WHERE reg_id = '$1'"; }

# ---- groups ----
out=$(ctl group add line-1); rc=$?
xb_eq "group add: exit 0" "$rc" 0
gkey=$(tail -n1 <<<"$out")
xb_eq "group add: the last line is the key, 64 bytes of base64" "$(printf '%s' "$gkey" | base64 -d | wc -c)" 64
hexkey=$(printf '%s' "$gkey" | base64 -d | od -An -tx1 | tr -d ' \n')
groupkey() { xb_sql "SELECT lower($(xb_sql_hex key)) FROM groups WHERE name = '$1'"; }
xb_eq "group add: the key printed is the key stored" "$(groupkey line-1)" "$hexkey"
ctl group add line-1 >/dev/null; rc=$?
xb_eq "group add of an existing group: exit 1" "$rc" 1
xb_contains "group add of an existing group: says so" "$(err)" "group line-1 already exists"
xb_eq "group add of an existing group: the first key is kept" "$(groupkey line-1)" "$hexkey"
ctl group add 'bad name' >/dev/null; rc=$?
xb_eq "group add with an invalid name: exit 2" "$rc" 2
ctl group add line-2 >/dev/null
xb_eq "group list: both groups, by name" "$(ctl group list | awk '{ print $1 }' | tr '\n' ' ')" "line-1 line-2 "

# Base64(HMAC-SHA256(Base64Decode(groupKey), UTF-8(ID))), as Azure DPS derives device keys.
long=$(printf 'L%.0s' $(seq 1 128))
for id in dev-1 00:11:22:33:44:55 urn:dev:ow:10e2073a01080063 SN.0001_x "$long"; do
  want=$(printf '%s' "$id" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary | base64)
  got=$(ctl group derive line-1 "$id"); rc=$?
  xb_eq "group derive ${id:0:28}: exit 0" "$rc" 0
  xb_eq "group derive ${id:0:28}: openssl's HMAC" "$got" "$want"
done
xb_check "group derive: another group, another key" \
  test "$(ctl group derive line-2 dev-1)" != "$(ctl group derive line-1 dev-1)"
ctl group derive no-such-group dev-1 >/dev/null; rc=$?
xb_eq "group derive of a missing group: exit 1" "$rc" 1
xb_contains "group derive of a missing group: says so" "$(err)" "group no-such-group does not exist"
ctl group derive line-1 'dev 1' >/dev/null; rc=$?
xb_eq "group derive of an invalid ID: exit 2" "$rc" 2

# ---- device add --secret / --group ----
out=$(ctl device add --secret sec-1 sec:2); rc=$?
xb_eq "device add --secret: exit 0" "$rc" 0
secret=$(sed -n 's/^added sec-1 secret //p' <<<"$out")
secret2=$(sed -n 's/^added sec:2 secret //p' <<<"$out")
xb_eq "device add --secret: a 44-character secret" "${#secret}" 44
xb_check "device add --secret: base64 of 32 bytes" \
  test "$(printf '%s' "$secret" | base64 -d 2>/dev/null | wc -c)" = 32
xb_check "device add --secret: each device its own secret" test "$secret" != "$secret2"
xb_eq "device show: credential secret" "$(field sec-1 credential)" secret
xb_eq "device show: no group" "$(field sec-1 group)" ""
xb_eq "the registry keeps the secret's SHA-256" "$(stored_hash sec-1)" "$(sha256 "$secret")"
if xb_backend_is sqlite; then
  xb_check "the secret is in no registry file" sh -c "! grep -qF -- '$secret' '$XB_DB'*"
  # Nor its 32 bytes, base64-decoded: look for their hex in the hex of the files.
  xb_lacks "nor its bytes" "$(cat "$XB_DB"* | od -An -tx1 -v | tr -d ' \n')" \
    "$(printf '%s' "$secret" | base64 -d | od -An -tx1 | tr -d ' \n')"
else
  xb_check "the secret is in no registry file" sh -c "! grep -rqaF -- '$secret' '$XB_PG_DATA'"
  # Nor its 32 bytes, base64-decoded: look for their hex in every row (BLOBs dumped as hex).
  xb_lacks "nor its bytes" "$(xb_db_dump | tr 'A-F' 'a-f')" \
    "$(printf '%s' "$secret" | base64 -d | od -An -tx1 | tr -d ' \n')"
fi

before=$(dump)
ctl device add --secret --group line-1 both-1 >/dev/null; rc=$?
xb_eq "device add --secret --group: exit 2" "$rc" 2
ctl device add --group no-such-group grp-x >/dev/null; rc=$?
xb_eq "device add --group of a missing group: exit 1" "$rc" 1
xb_contains "device add --group of a missing group: says so" "$(err)" "group no-such-group does not exist"
xb_eq "refused adds change nothing" "$(dump)" "$before"
out=$(ctl device add --group line-1 grp-1 grp-2); rc=$?
xb_eq "device add --group: exit 0" "$rc" 0
xb_contains "device add --group: says so" "$out" "added grp-2 to group line-1"
xb_eq "device show: credential group" "$(field grp-1 credential)" group
xb_eq "device show: the group" "$(field grp-1 group)" line-1
xb_eq "device list: state allowed" "$(state grp-1)" allowed
ctl device add plain-1 >/dev/null
xb_eq "device show without a credential: none" "$(field plain-1 credential)" none

# ---- device import: a good file ----
h1=$(sha256 "factory-secret-1")
h2=$(sha256 "factory-secret-2" | tr a-f A-F)
{
  printf 'id,credential\r\n'
  printf '# line 7, lot 2026-11\r\n'
  printf 'imp-plain\r\n'
  printf '\r\n'
  printf 'imp-hash,sha256:%s\n' "$h1"
  printf '\n'
  printf '# uppercase hex is fine too\n'
  printf 'IMP-Hash2,sha256:%s\n' "$h2"
  printf '00:aa:bb:cc:dd:ee,line-1\n'
  printf 'imp-grp2,line-2' # no final newline
} >"$XB_TMP/good.csv"
out=$(ctl device import "$XB_TMP/good.csv"); rc=$?
xb_eq "import a good file: exit 0" "$rc" 0
xb_eq "import a good file: says how many" "$out" "imported 5 devices from $XB_TMP/good.csv"
for id in imp-plain imp-hash IMP-Hash2 00:aa:bb:cc:dd:ee imp-grp2; do
  xb_eq "device list: $id allowed" "$(state "$id")" allowed
done
xb_eq "the header is not a device" "$(xb_sql "SELECT count(*) FROM devices WHERE reg_id = 'id'")" 0
# A spreadsheet's "CSV UTF-8" starts with a byte order mark: the header is still recognised.
printf '\xef\xbb\xbfid,credential\r\nimp-bom\r\n' >"$XB_TMP/bom.csv"
ctl device import "$XB_TMP/bom.csv" >/dev/null
xb_eq "a UTF-8 byte order mark is skipped" "$(state imp-bom)" allowed
xb_eq "imp-plain: credential none" "$(field imp-plain credential)" none
xb_eq "imp-hash: credential secret" "$(field imp-hash credential)" secret
xb_eq "imp-hash: the hash as given" "$(stored_hash imp-hash)" "$h1"
xb_eq "IMP-Hash2: the uppercase hash as bytes" "$(stored_hash IMP-Hash2)" "$(sha256 factory-secret-2)"
xb_eq "00:aa:bb:cc:dd:ee: credential group" "$(field 00:aa:bb:cc:dd:ee credential)" group
xb_eq "00:aa:bb:cc:dd:ee: group line-1" "$(field 00:aa:bb:cc:dd:ee group)" line-1
xb_eq "imp-grp2 (no final newline): group line-2" "$(field imp-grp2 group)" line-2
xb_eq "imported rows are allowlist rows" "$(field imp-hash source)" allowlist

# More lines than the import's first allocation, every one with its own hash: the hash of
# bulk-I is I as 64 hex digits (a realloc once left the early rows pointing at freed memory).
awk 'BEGIN { for (i = 1; i <= 3000; i++) printf "bulk-%d,sha256:%064x\n", i, i }' >"$XB_TMP/bulk.csv"
ctl device import "$XB_TMP/bulk.csv" >/dev/null; rc=$?
xb_eq "import 3000 lines: exit 0" "$rc" 0
if xb_backend_is sqlite; then
  hash_is_line="hex(secret_sha256) = printf('%064X', CAST(substr(reg_id, 6) AS INTEGER))"
else
  hash_is_line="upper(encode(secret_sha256, 'hex')) = lpad(upper(to_hex(substr(reg_id, 6)::bigint)), 64, '0')"
fi
xb_eq "import 3000 lines: every hash is its line's" "$(xb_sql "SELECT count(*) FROM devices \
  WHERE reg_id LIKE 'bulk-%' AND $hash_is_line")" 3000

# ---- device import: bad files change nothing and name the first bad line ----
bad_import() { # bad_import WHAT LINE MESSAGE: import $XB_TMP/bad.csv, expect FILE:LINE
  local what=$1 line=$2 msg=$3 before rc
  before=$(dump)
  ctl device import "$XB_TMP/bad.csv" >/dev/null; rc=$?
  xb_eq "$what: exit 1" "$rc" 1
  xb_contains "$what: names line $line" "$(err)" "$XB_TMP/bad.csv:$line: "
  xb_contains "$what: says why" "$(err)" "$msg"
  xb_contains "$what: says nothing was imported" "$(err)" "nothing imported"
  xb_eq "$what: registry unchanged" "$(dump)" "$before"
}
hex=$(sha256 x)
printf 'new-1\nnew-2\nbad id\nnew-3\n' >"$XB_TMP/bad.csv"
bad_import "invalid ID" 3 "invalid registration ID 'bad id'"
printf 'new-1\n# x\nbad/id,line-1\n' >"$XB_TMP/bad.csv"
bad_import "invalid ID with a group" 3 "invalid registration ID"
printf 'new-1\nnew-2,sha256:abc\n' >"$XB_TMP/bad.csv"
bad_import "short hash" 2 "not sha256: and 64 hex digits"
printf 'new-1\nnew-2,sha256:%sg\n' "${hex:0:63}" >"$XB_TMP/bad.csv"
bad_import "hash with a non-hex digit" 2 "not sha256: and 64 hex digits"
printf 'new-1\nnew-2,sha256:%s0\n' "$hex" >"$XB_TMP/bad.csv"
bad_import "hash one digit too long" 2 "not sha256: and 64 hex digits"
printf 'new-1\nnew-2\nnew-3\nnew-4,no-such-group\n' >"$XB_TMP/bad.csv"
bad_import "unknown group" 4 "group no-such-group does not exist"
printf 'new-1\nnew-2,bad group\n' >"$XB_TMP/bad.csv"
bad_import "invalid group name" 2 "neither sha256:HEX nor a group name"
printf 'new-1\nnew-2,\n' >"$XB_TMP/bad.csv"
bad_import "empty second field" 2 "neither sha256:HEX nor a group name"
printf 'new-1\nnew-2,line-1,extra\n' >"$XB_TMP/bad.csv"
bad_import "three fields" 2 "more than two fields"
printf 'dup-x\nnew-1\n\nDUP-X,line-1\n' >"$XB_TMP/bad.csv"
bad_import "an ID listed twice (in another case)" 4 "device DUP-X is listed twice"
printf 'new-1\nimp-hash\n' >"$XB_TMP/bad.csv"
bad_import "an ID already registered" 2 "device imp-hash is already registered"
printf 'new-1\nsec-1,line-1\n' >"$XB_TMP/bad.csv"
bad_import "a registered ID with another credential" 2 "already registered"
printf 'new-1\nne\000w-2\nnew-3\n' >"$XB_TMP/bad.csv"
bad_import "a NUL byte" 2 "NUL byte"
printf '# header after a comment is an ID\nid,credential\n' >"$XB_TMP/bad.csv"
bad_import "a header below line 1" 2 "group credential does not exist"
awk 'BEGIN { for (i = 1; i <= 2500; i++) printf "late-%d,line-1\n", i; print "late-7" }' >"$XB_TMP/bad.csv"
bad_import "a duplicate on line 2501" 2501 "device late-7 is listed twice"

no_device() { # no_device WHAT: import $XB_TMP/bad.csv, which lists no device
  local before rc
  before=$(dump)
  ctl device import "$XB_TMP/bad.csv" >/dev/null; rc=$?
  xb_eq "$1: exit 1" "$rc" 1
  xb_contains "$1: names the file" "$(err)" "$XB_TMP/bad.csv lists no device; nothing imported"
  xb_eq "$1: registry unchanged" "$(dump)" "$before"
}
: >"$XB_TMP/bad.csv"
no_device "an empty file"
printf 'id\r\n# nothing yet\n\n' >"$XB_TMP/bad.csv"
no_device "a header and a comment only"

ctl device import "$XB_TMP/no-such.csv" >/dev/null; rc=$?
xb_eq "a missing file: exit 1" "$rc" 1
xb_contains "a missing file: says so" "$(err)" "cannot open $XB_TMP/no-such.csv"
ctl device import >/dev/null; rc=$?
xb_eq "import without a file: exit 2" "$rc" 2
ctl device import "$XB_TMP/good.csv" "$XB_TMP/bulk.csv" >/dev/null; rc=$?
xb_eq "import of two files: exit 2" "$rc" 2
printf 'new-1\nbad id\n' >"$XB_TMP/bad.csv"
if xb_backend_is sqlite; then
  "$XB_BIN/xbootctl" device import "$XB_TMP/bad.csv" --db "sqlite:$XB_TMP/new.db" 2>/dev/null; rc=$?
  xb_eq "a bad file into a new registry: exit 1" "$rc" 1
  xb_check "and the registry file is not created" test ! -e "$XB_TMP/new.db"
else # an empty database, never migrated: refused, and no schema is made in it
  new_url=$(xb_pg_new_db new_registry)
  "$XB_BIN/xbootctl" device import "$XB_TMP/bad.csv" --db "$new_url" 2>/dev/null; rc=$?
  xb_eq "a bad file into a new registry: exit 1" "$rc" 1
  xb_eq "and no table is created in it" \
    "$("$XB_PG_BIN/psql" -X -tAq "$new_url" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" 0
fi

# A registry that stays locked (another writer holds it past the busy timeout): the import
# fails as a whole, and no line is blamed for it. SQLite only: its busy timeout and message
# (a PostgreSQL writer waits for a lock instead).
if xb_backend_is sqlite; then
mkfifo "$XB_TMP/sql"
sqlite3 "$XB_DB" <"$XB_TMP/sql" >"$XB_TMP/holder.out" 2>&1 &
holder=$!
exec 3>"$XB_TMP/sql"
echo "BEGIN IMMEDIATE; SELECT 'locked';" >&3
for i in $(seq 1 50); do grep -q locked "$XB_TMP/holder.out" && break; sleep 0.1; done
printf 'new-1\nnew-2\n' >"$XB_TMP/new.csv"
ctl device import "$XB_TMP/new.csv" >/dev/null; rc=$?
exec 3>&- # sqlite3 reads EOF, rolls back and exits
for i in $(seq 1 50); do kill -0 "$holder" 2>/dev/null || break; sleep 0.1; done
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
xb_eq "a locked registry: exit 1" "$rc" 1
xb_contains "a locked registry: says so" "$(err)" "database is locked; nothing imported from $XB_TMP/new.csv"
xb_lacks "a locked registry: blames no line" "$(err)" "new.csv:"
xb_eq "a locked registry: nothing imported" "$(xb_sql "SELECT count(*) FROM devices WHERE reg_id LIKE 'new-%'")" 0
fi

# ---- states ----
ctl device disable imp-plain >/dev/null
xb_eq "device list: a disabled device" "$(state imp-plain)" disabled
xb_eq "device show: a disabled device" "$(field imp-plain state)" disabled
xb_eq "device list: the others stay allowed" "$(state imp-hash)" allowed
xb_finish
