#!/usr/bin/env bash
# xbootctl device/cert commands as an operator uses them: IDs checked against the DPS rules
# with a clear message, all-or-nothing adds, state changes that xbootd honours, and exit codes
# scripts can rely on (0 ok, 1 failure, 2 usage).
. "$(dirname "$0")/lib.sh"

ctl() { "$XB_BIN/xbootctl" "$@" --db "$XB_DB_URL" 2>"$XB_TMP/err"; }
err() { cat "$XB_TMP/err"; }

# Invalid IDs: refused, named, nothing added.
for bad in "dev 1" "dev/1" "dev." "dev_" "$(printf 'a%.0s' $(seq 1 129))" "semi;colon" "dé"; do
  ctl device add ok-1 "$bad" >/dev/null; rc=$?
  xb_eq "invalid ID '${bad:0:20}': exit 1" "$rc" 1
  xb_contains "invalid ID '${bad:0:20}': says which and why" "$(err)" "invalid registration ID"
done
xb_check "nothing was added by refused commands" sh -c "! '$XB_BIN/xbootctl' device show ok-1 --db '$XB_DB_URL' >/dev/null 2>&1"

# Valid IDs of every DPS shape.
long=$(printf 'L%.0s' $(seq 1 128))
out=$(ctl device add 00:11:22:33:44:55 SN.0001_x ends-with-dash- "$long"); rc=$?
xb_eq "valid IDs added: exit 0" "$rc" 0
xb_eq "four devices listed" "$(ctl device list | tail -n +2 | wc -l)" 4

# All or nothing: one duplicate means none of the batch is added.
ctl device add new-1 SN.0001_x new-2 >/dev/null; rc=$?
xb_eq "batch with a registered ID: exit 1" "$rc" 1
xb_contains "it names the duplicate" "$(err)" "SN.0001_x"
xb_check "new-1 was not added" sh -c "! '$XB_BIN/xbootctl' device show new-1 --db '$XB_DB_URL' >/dev/null 2>&1"
ctl device add dup-1 dup-1 >/dev/null; rc=$?
xb_eq "an ID listed twice: exit 1" "$rc" 1
# IDs compare without case, as in Azure DPS: sn.0001_X is SN.0001_x.
ctl device add sn.0001_X >/dev/null; rc=$?
xb_eq "the same ID in another case: exit 1" "$rc" 1
xb_contains "the same ID in another case: already registered" "$(err)" "already registered"
xb_contains "show finds the device whatever the case" "$(ctl device show sn.0001_x)" "SN.0001_x"

# show / disable / enable.
out=$(ctl device show SN.0001_x)
xb_contains "show: state allowed" "$out" "state:        allowed"
xb_contains "show: enrolled -" "$(grep enrolled <<<"$out")" "-"
ctl device disable SN.0001_x >/dev/null
xb_contains "disable: state disabled" "$(ctl device show SN.0001_x)" "disabled"
xb_contains "list shows disabled" "$(ctl device list | grep SN.0001_x)" "disabled"
ctl device enable SN.0001_x >/dev/null
xb_contains "enable: state allowed again" "$(ctl device show SN.0001_x | grep state)" "allowed"
ctl device show no-such-device >/dev/null; rc=$?
xb_eq "show unknown device: exit 1" "$rc" 1
xb_contains "show unknown device: says so" "$(err)" "not registered"
ctl device disable no-such-device >/dev/null; rc=$?
xb_eq "disable unknown device: exit 1" "$rc" 1

# Usage errors and the registry location.
"$XB_BIN/xbootctl" device frobnicate x --db "$XB_DB_URL" >/dev/null 2>&1; rc=$?
xb_eq "unknown subcommand: exit 2" "$rc" 2
env -u XBOOT_REGISTRY_DB "$XB_BIN/xbootctl" device list >/dev/null 2>"$XB_TMP/err"; rc=$?
xb_eq "no --db and no XBOOT_REGISTRY_DB: exit 2" "$rc" 2
xb_contains "it says how to name the registry" "$(err)" "XBOOT_REGISTRY_DB"
out=$(XBOOT_REGISTRY_DB="$XB_DB_URL" "$XB_BIN/xbootctl" device list)
xb_contains "XBOOT_REGISTRY_DB names the registry" "$out" "SN.0001_x"
if xb_backend_is sqlite; then
  "$XB_BIN/xbootctl" device list --db "sqlite:$XB_TMP/typo.db" >/dev/null 2>"$XB_TMP/err"; rc=$?
  xb_eq "a registry file that does not exist: exit 1" "$rc" 1
  xb_check "and it is not created" test ! -e "$XB_TMP/typo.db"
else # a database that is not a registry (never migrated): refused, and left as it was
  typo_url=$(xb_pg_new_db typo)
  "$XB_BIN/xbootctl" device list --db "$typo_url" >/dev/null 2>"$XB_TMP/err"; rc=$?
  xb_eq "a database that is not a registry: exit 1" "$rc" 1
  xb_eq "and no table is created in it" \
    "$("$XB_PG_BIN/psql" -X -tAq "$typo_url" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" 0
  "$XB_BIN/xbootctl" device list --db "${XB_PG_URL%/xboot}/no_such_db" >/dev/null 2>"$XB_TMP/err"; rc=$?
  xb_eq "a database that does not exist: exit 1" "$rc" 1
fi

# What xbootd issues shows up in cert list and device show, with the record's fields.
xb_ca_init
xb_write_config
xb_start_server || exit 1
xb_csr ec-p256 SN.0001_x "$XB_TMP/sn"
xb_post "$(xb_enroll_body SN.0001_x "$XB_TMP/sn.der")"
xb_eq "enroll SN.0001_x: 200" "$XB_STATUS" 200
xb_save_cert "$XB_TMP/sn.pem"
serial=$(openssl x509 -in "$XB_TMP/sn.pem" -noout -serial | cut -d= -f2 | tr A-F a-f)
xb_contains "cert list shows the serial" "$(ctl cert list)" "$serial"
xb_contains "cert list --id shows it" "$(ctl cert list --id SN.0001_x)" "$serial"
xb_eq "cert list --id of another device is empty" "$(ctl cert list --id 00:11:22:33:44:55 | tail -n +2 | wc -l)" 0
xb_contains "device show lists the certificate" "$(ctl device show SN.0001_x)" "$serial"
xb_check "device show has an enrolled time" sh -c "'$XB_BIN/xbootctl' device show SN.0001_x --db '$XB_DB_URL' | grep enrolled | grep -q 20"
# The record: DER = the certificate, key hash = SHA-256 of the SPKI, client address, times.
xb_eq "record: DER is the certificate sent" \
  "$(xb_sql "select $(xb_sql_hex der) from certificates where serial='$serial'")" \
  "$(od -An -tx1 -v "$XB_TMP/sn.pem.der" | tr -d ' \n' | tr a-f A-F)"
xb_eq "record: SHA-256 of the public key" \
  "$(xb_sql "select pubkey_sha256 from certificates where serial='$serial'")" \
  "$(openssl pkey -in "$XB_TMP/sn.key" -pubout -outform DER | sha256sum | cut -d' ' -f1)"
xb_eq "record: client address" \
  "$(xb_sql "select client_addr from certificates where serial='$serial'")" 127.0.0.1
xb_eq "record: notAfter" \
  "$(xb_sql "select not_after from certificates where serial='$serial'")" \
  "$(date -d "$(openssl x509 -in "$XB_TMP/sn.pem" -noout -enddate | cut -d= -f2)" +%s)"
xb_eq "record: subject" \
  "$(xb_sql "select subject from certificates where serial='$serial'")" "CN=SN.0001_x"
issued=$(xb_sql "select issued_at from certificates where serial='$serial'")
xb_check "record: issued_at is now" test $(( $(date +%s) - issued )) -lt 60
# A disabled device is refused by the running server at once (no restart).
ctl device disable 00:11:22:33:44:55 >/dev/null
xb_csr ec-p256 00:11:22:33:44:55 "$XB_TMP/mac"
xb_post "$(xb_enroll_body 00:11:22:33:44:55 "$XB_TMP/mac.der")"
xb_eq "disabled while xbootd runs: 403" "$XB_STATUS" 403
xb_eq "disabled while xbootd runs: device_disabled" "$(xb_json error)" device_disabled
xb_stop_server
xb_finish
