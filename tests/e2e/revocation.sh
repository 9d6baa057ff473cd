#!/usr/bin/env bash
# Certificate revocation with real clients (curl, openssl, sqlite3): xbootctl cert revoke while
# xbootd runs; a revoked certificate no longer authenticates an EST renewal (simplereenroll, or
# simpleenroll with the client certificate) and is never sent again to a retry with its key
# (JSON API and EST); cert list and device show report it; and a schema version 1 registry is
# migrated, rows kept, by xbootd and by xbootctl.
. "$(dirname "$0")/lib.sh"

EST=/.well-known/est
ctl() { "$XB_BIN/xbootctl" "$@" --db "$XB_DB_URL" 2>"$XB_TMP/err"; }
err() { cat "$XB_TMP/err"; }
# est_post OP CSR_DER [curl args...]: sets what xb_request sets.
est_post() {
  local op=$1 der=$2; shift 2
  base64 <"$der" >"$XB_TMP/req.b64"
  xb_request POST "$EST/$op" -H 'Content-Type: application/pkcs10' --data-binary "@$XB_TMP/req.b64" "$@"
}
p7_cert() { base64 -d <"$XB_TMP/resp.json" | openssl pkcs7 -inform DER -print_certs -out "$1" 2>/dev/null; }
# The serial as the registry records it (lowercase hex) and as openssl prints it (uppercase).
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
serial_upper() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
user_version() { sqlite3 "$1" 'PRAGMA user_version;'; }

# Schema version 1 exactly as xboot created it before revocation existed, with one device and
# one certificate. make_v1 FILE
make_v1() {
  sqlite3 "$1" <<'SQL'
CREATE TABLE devices (  reg_id TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,  enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),  source TEXT NOT NULL,  created_at INTEGER NOT NULL,  enrolled_at INTEGER);
CREATE TABLE certificates (  serial TEXT PRIMARY KEY NOT NULL,  reg_id TEXT NOT NULL COLLATE NOCASE REFERENCES devices(reg_id),  subject TEXT,  not_before INTEGER,  not_after INTEGER,  pubkey_sha256 TEXT,  client_addr TEXT,  issued_at INTEGER,  der BLOB NOT NULL);
CREATE INDEX certificates_reg_id ON certificates(reg_id);
PRAGMA user_version = 1;
INSERT INTO devices VALUES ('dev-old', 1, 'allowlist', 1600000000, 1600000100);
INSERT INTO certificates VALUES ('0a0b', 'dev-old', 'CN=dev-old', 1600000000, 1900000000, 'aa', '192.0.2.1', 1600000100, x'3003020101');
SQL
}

# ---- a version 1 registry, migrated by xbootctl ----
# SQLite's own schema history (PRAGMA user_version): a PostgreSQL registry starts at the
# current schema (xbootctl db migrate, lib.sh).
if xb_backend_is sqlite; then
V1="$XB_TMP/v1-ctl.db"
make_v1 "$V1"
xb_eq "v1 file made with the sqlite3 CLI" "$(user_version "$V1")" 1
out=$("$XB_BIN/xbootctl" cert list --db "sqlite:$V1" 2>"$XB_TMP/err"); rc=$?
xb_eq "xbootctl cert list on a v1 registry: exit 0" "$rc" 0
xb_contains "... keeps its certificate" "$out" "0a0b"
xb_eq "... migrated it to the current version (4)" "$(user_version "$V1")" 4
xb_eq "... both revocation columns exist" \
  "$(sqlite3 "$V1" "select count(*) from pragma_table_info('certificates') where name in ('revoked_at','revocation_reason');")" 2
xb_eq "... the device row kept" "$(sqlite3 "$V1" "select reg_id, enabled, enrolled_at from devices;")" "dev-old|1|1600000100"
"$XB_BIN/xbootctl" cert revoke 0a0b --reason superseded --db "sqlite:$V1" >/dev/null 2>&1
xb_eq "a migrated certificate can be revoked" "$(sqlite3 "$V1" "select revocation_reason from certificates where serial='0a0b';")" 4
fi

# ---- a version 1 registry, migrated by xbootd (its workers open it at once) ----
xb_ca_init
xb_backend_is sqlite && make_v1 "$XB_DB"
xb_write_config "[enroll]" "mode = open"
xb_start_server || { xb_bad "xbootd starts on a v1 registry"; xb_finish; exit 1; }
if xb_backend_is sqlite; then
  xb_eq "xbootd migrated the registry to the current version (4)" "$(user_version "$XB_DB")" 4
  xb_eq "... kept the certificate row" "$(xb_sql "select serial, reg_id, issued_at, revoked_at is null from certificates;")" "0a0b|dev-old|1600000100|1"
  xb_eq "... kept the device row" "$(xb_sql "select count(*) from devices where reg_id='dev-old';")" 1
fi

# ---- EST: enroll, renew, revoke, refused ----
xb_csr ec-p256 dev-r1 "$XB_TMP/r1"
est_post simpleenroll "$XB_TMP/r1.der" -u dev-r1:x
xb_eq "EST enrollment (Basic, open mode): 200" "$XB_STATUS" 200
p7_cert "$XB_TMP/r1.pem"
xb_csr ec-p256 dev-r1 "$XB_TMP/r1b"
est_post simplereenroll "$XB_TMP/r1b.der" --cert "$XB_TMP/r1.pem" --key "$XB_TMP/r1.key"
xb_eq "simplereenroll with the certificate: 200" "$XB_STATUS" 200
p7_cert "$XB_TMP/r1b.pem"
s1=$(serial_of "$XB_TMP/r1.pem")
s1b=$(serial_of "$XB_TMP/r1b.pem")
xb_check "two certificates of dev-r1" test "$(xb_cert_rows dev-r1)" = 2 -a "$s1" != "$s1b"

out=$(ctl cert revoke "$s1b" --reason keyCompromise); rc=$?
xb_eq "cert revoke --reason keyCompromise: exit 0" "$rc" 0
xb_contains "... says what it did" "$out" "$s1b: revoked at 20"
xb_contains "... and why" "$out" "(keyCompromise)"
xb_eq "recorded: reason code 1 and a time" \
  "$(xb_sql "select revocation_reason, case when revoked_at > 0 then 1 else 0 end from certificates where serial='$s1b';")" "1|1"

# The running xbootd refuses it at once (no restart), on both EST ways to renew.
xb_csr ec-p256 dev-r1 "$XB_TMP/r1c"
est_post simplereenroll "$XB_TMP/r1c.der" --cert "$XB_TMP/r1b.pem" --key "$XB_TMP/r1b.key"
xb_eq "simplereenroll with the revoked certificate: 401" "$XB_STATUS" 401
xb_contains "... the reason names the revocation" "$XB_BODY" "unauthorized: the TLS client certificate (serial $s1b) was revoked at 20"
xb_contains "... and its reason" "$XB_BODY" "(reason keyCompromise)"
xb_eq "... WWW-Authenticate" "$(xb_header WWW-Authenticate)" 'Basic realm="xboot"'
est_post simpleenroll "$XB_TMP/r1c.der" --cert "$XB_TMP/r1b.pem" --key "$XB_TMP/r1b.key"
xb_eq "simpleenroll with the revoked certificate: 401" "$XB_STATUS" 401
xb_contains "... revoked" "$XB_BODY" "was revoked at"
est_post simpleenroll "$XB_TMP/r1c.der" --cert "$XB_TMP/r1b.pem" --key "$XB_TMP/r1b.key" -u dev-r1:x
xb_eq "... even with HTTP Basic as well: 401" "$XB_STATUS" 401
xb_eq "refused renewals recorded nothing" "$(xb_cert_rows dev-r1)" 2

# A retry with the revoked certificate's key does not get it back.
est_post simpleenroll "$XB_TMP/r1b.der" -u dev-r1:x
xb_eq "EST retry with the revoked certificate's key: 403" "$XB_STATUS" 403
xb_contains "... already_enrolled, because revoked" "$XB_BODY" "already_enrolled: device dev-r1 already has a certificate, which is revoked"
xb_post "$(xb_enroll_body dev-r1 "$XB_TMP/r1b.der")"
xb_eq "JSON retry with the revoked certificate's key: 409 already_enrolled" "$XB_STATUS $(xb_json error)" "409 already_enrolled"
xb_eq "... no certificate in the answer" "$(xb_json Certificate)" ""
xb_contains "... says it is revoked" "$(xb_json message)" "which is revoked"
xb_eq "nothing recorded by the retries" "$(xb_cert_rows dev-r1)" 2

# What xbootctl shows.
out=$(ctl cert list --id dev-r1)
xb_contains "cert list: REVOKED and REASON columns" "$(head -n1 <<<"$out")" "REVOKED"
xb_contains "cert list: the revoked one, with its reason" "$(grep "^$s1b " <<<"$out")" "keyCompromise"
xb_check "cert list: the revoked one, with a time" grep -qE "^$s1b .* 20[0-9-]+T[0-9:]+Z +keyCompromise " <<<"$out"
xb_check "cert list: the other one is not revoked" grep -qE "^$s1 .*Z +- +- +CN=dev-r1\$" <<<"$out"
xb_contains "device show: the certificate is revoked" "$(ctl device show dev-r1 | grep "$s1b")" "revoked 20"
xb_lacks "device show: the other is not" "$(ctl device show dev-r1 | grep "$s1")" "revoked"

# Revocation is per certificate: the older, unrevoked one still renews (device disable stops the
# device). Revoked with the default reason, it stops too.
est_post simplereenroll "$XB_TMP/r1c.der" --cert "$XB_TMP/r1.pem" --key "$XB_TMP/r1.key"
xb_eq "the older certificate, not revoked, still renews: 200" "$XB_STATUS" 200
out=$(ctl cert revoke "$s1"); rc=$?
xb_eq "cert revoke without --reason: exit 0" "$rc" 0
xb_contains "... unspecified" "$out" "(unspecified)"
est_post simplereenroll "$XB_TMP/r1c.der" --cert "$XB_TMP/r1.pem" --key "$XB_TMP/r1.key"
xb_eq "... then refused: 401" "$XB_STATUS" 401
xb_contains "... reason unspecified" "$XB_BODY" "(reason unspecified)"

# ---- JSON API: the replay path ----
xb_csr ec-p256 dev-j "$XB_TMP/j"
xb_post "$(xb_enroll_body dev-j "$XB_TMP/j.der")"
xb_eq "JSON enrollment: 200" "$XB_STATUS" 200
xb_save_cert "$XB_TMP/j.pem"
xb_post "$(xb_enroll_body dev-j "$XB_TMP/j.der")"
xb_eq "JSON retry, same key, not revoked: 200" "$XB_STATUS" 200
xb_eq "... the same certificate" "$(xb_json Certificate | base64 -d | openssl x509 -inform DER -noout -serial | cut -d= -f2)" "$(serial_upper "$XB_TMP/j.pem")"
# As openssl prints it (uppercase), reason in another case.
out=$(ctl cert revoke "$(serial_upper "$XB_TMP/j.pem")" --reason CESSATIONofoperation); rc=$?
xb_eq "cert revoke with openssl's serial and any-case reason: exit 0" "$rc" 0
xb_contains "... normalized to the recorded serial" "$out" "$(serial_of "$XB_TMP/j.pem"): revoked at 20"
xb_contains "... cessationOfOperation" "$out" "(cessationOfOperation)"
xb_post "$(xb_enroll_body dev-j "$XB_TMP/j.der")"
xb_eq "JSON retry, same key, revoked: 409 already_enrolled" "$XB_STATUS $(xb_json error)" "409 already_enrolled"
xb_eq "... no certificate in the answer" "$(xb_json Certificate)" ""
est_post simpleenroll "$XB_TMP/j.der" -u dev-j:x
xb_eq "EST retry, same key, revoked: 403 already_enrolled" "$XB_STATUS ${XB_BODY%%:*}" "403 already_enrolled"
xb_eq "one certificate for dev-j" "$(xb_cert_rows dev-j)" 1

# ---- xbootctl errors ----
ctl cert revoke "$s1b" --reason superseded >/dev/null; rc=$?
xb_eq "revoking twice: exit 1" "$rc" 1
xb_contains "... names the first revocation" "$(err)" "already revoked at 20"
xb_contains "... and its reason" "$(err)" "(keyCompromise); unchanged"
xb_eq "... which stands" "$(xb_sql "select revocation_reason from certificates where serial='$s1b';")" 1
ctl cert revoke 0123456789abcdef >/dev/null; rc=$?
xb_eq "unknown serial: exit 1" "$rc" 1
xb_contains "... says so" "$(err)" "no certificate has serial 0123456789abcdef"
ctl cert revoke "$s1b" --reason certificateHold >/dev/null; rc=$?
xb_eq "certificateHold: exit 2" "$rc" 2
xb_contains "... not supported" "$(err)" "certificateHold is not supported"
ctl cert revoke "$s1b" --reason compromised >/dev/null; rc=$?
xb_eq "unknown reason: exit 2" "$rc" 2
xb_contains "... lists the reasons" "$(err)" "unknown revocation reason 'compromised' (unspecified, keyCompromise"
ctl cert revoke not-hex >/dev/null; rc=$?
xb_eq "a serial that is not hex: exit 2" "$rc" 2
xb_contains "... says so" "$(err)" "invalid serial 'not-hex'"
ctl cert revoke >/dev/null; rc=$?
xb_eq "no serial: exit 2" "$rc" 2
xb_contains "... missing serial" "$(err)" "missing serial"
ctl cert revoke "$s1b" --id dev-r1 >/dev/null; rc=$?
xb_eq "an option of another command: exit 2" "$rc" 2
if xb_backend_is sqlite; then
  "$XB_BIN/xbootctl" cert revoke 0a0b --db "sqlite:$XB_TMP/none.db" >/dev/null 2>&1; rc=$?
  xb_eq "a registry that does not exist: exit 1" "$rc" 1
  xb_check "... and it is not created" test ! -e "$XB_TMP/none.db"
else
  "$XB_BIN/xbootctl" cert revoke 0a0b --db "${XB_PG_URL%/xboot}/no_such_db" >/dev/null 2>&1; rc=$?
  xb_eq "a registry (database) that does not exist: exit 1" "$rc" 1
  xb_eq "... and it is not created" \
    "$(xb_sql "SELECT count(*) FROM pg_database WHERE datname = 'no_such_db'")" 0
fi

xb_stop_server
xb_finish
