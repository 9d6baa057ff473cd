#!/usr/bin/env bash
# The audit commands of issue 6: xbootctl cert list [--device ID] [--json] and cert show SERIAL
# [--json], against certificates xbootd really issued (two devices, one revoked): the fields,
# the statuses, the --device filter, the PEM a device received, and the exit codes.
. "$(dirname "$0")/lib.sh"

ctl() { "$XB_BIN/xbootctl" "$@" --db "$XB_DB_URL" 2>"$XB_TMP/err"; }
err() { cat "$XB_TMP/err"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
fingerprint() { openssl x509 -noout -fingerprint -sha256 "$@" | cut -d= -f2; }

xb_ca_init
xb_ctl device add audit-1 audit-2 >/dev/null
xb_write_config
xb_start_server || { xb_bad "xbootd starts"; xb_finish; exit 1; }
for id in audit-1 audit-2; do
  xb_csr ec-p256 "$id" "$XB_TMP/$id"
  xb_post "$(xb_enroll_body "$id" "$XB_TMP/$id.der")"
  xb_eq "enroll $id: 200" "$XB_STATUS" 200
  xb_save_cert "$XB_TMP/$id.pem"
done
xb_stop_server
s1=$(serial_of "$XB_TMP/audit-1.pem")
s2=$(serial_of "$XB_TMP/audit-2.pem")
ctl cert revoke "$s2" --reason keyCompromise >/dev/null
xb_eq "revoke audit-2's certificate: exit 0" "$?" 0

# ---- cert list --json ----
ctl cert list --json >"$XB_TMP/list.json"; rc=$?
xb_eq "cert list --json: exit 0" "$rc" 0
xb_eq "it is one array of two objects" "$(jq -r 'type + ":" + (length | tostring)' "$XB_TMP/list.json")" "array:2"
xb_eq "every object has exactly the documented fields" \
  "$(jq -c '[.[] | keys] | unique' "$XB_TMP/list.json")" \
  '[["clientAddress","issuedAt","notAfter","notBefore","publicKeySha256","registrationId","revocationReason","revokedAt","serial","status","subject"]]'
one() { jq -r --arg s "$1" ".[] | select(.serial == \$s) | $2" "$XB_TMP/list.json"; }
xb_eq "valid one: status, no revocation" "$(one "$s1" '[.status, .revokedAt, .revocationReason] | tostring')" '["valid",null,null]'
xb_eq "valid one: registrationId, subject" "$(one "$s1" '.registrationId + " " + .subject')" "audit-1 CN=audit-1"
xb_eq "valid one: clientAddress" "$(one "$s1" .clientAddress)" 127.0.0.1
xb_eq "valid one: publicKeySha256 is the SPKI hash" "$(one "$s1" .publicKeySha256)" \
  "$(openssl pkey -in "$XB_TMP/audit-1.key" -pubout -outform DER | sha256sum | cut -d' ' -f1)"
xb_eq "valid one: notAfter in RFC 3339 UTC, as in the certificate" "$(one "$s1" .notAfter)" \
  "$(date -u -d "$(openssl x509 -in "$XB_TMP/audit-1.pem" -noout -enddate | cut -d= -f2)" +%Y-%m-%dT%H:%M:%SZ)"
xb_check "valid one: notBefore and issuedAt are RFC 3339 UTC" \
  test "$(one "$s1" '[.notBefore, .issuedAt] | map(test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")) | all')" = true
xb_eq "revoked one: status and reason (RFC 5280 name)" "$(one "$s2" '.status + " " + .revocationReason')" "revoked keyCompromise"
xb_check "revoked one: revokedAt is a time" test -n "$(one "$s2" '.revokedAt // empty')"
ctl cert list --device audit-2 --json >"$XB_TMP/dev.json"
xb_eq "--device audit-2: only its certificate" "$(jq -r 'map(.serial) | join(",")' "$XB_TMP/dev.json")" "$s2"
xb_eq "--id is the same option" "$(ctl cert list --id audit-2 --json | jq -r 'map(.serial) | join(",")')" "$s2"
xb_eq "--device text: one row" "$(ctl cert list --device audit-1 | tail -n +2 | wc -l)" 1
ctl cert list --device audit-1 --id audit-2 >/dev/null; rc=$?
xb_eq "--device and --id together: exit 2" "$rc" 2
ctl cert list --device nobody --json >/dev/null; rc=$?
xb_eq "--device of an unknown device: exit 1" "$rc" 1
xb_ctl device add lonely >/dev/null
xb_eq "no certificate of the device: an empty array" "$(ctl cert list --device lonely --json | jq -c .)" "[]"

# ---- cert show ----
out=$(ctl cert show "$s1"); rc=$?
xb_eq "cert show: exit 0" "$rc" 0
xb_contains "cert show: device" "$out" "device:       audit-1"
xb_contains "cert show: subject" "$out" "subject:      CN=audit-1"
xb_contains "cert show: status" "$out" "status:       valid"
xb_contains "cert show: from" "$out" "from:         127.0.0.1"
xb_eq "cert show: its PEM is the certificate the device received" \
  "$(fingerprint <<<"$out")" "$(fingerprint -in "$XB_TMP/audit-1.pem")"
upper=$(openssl x509 -in "$XB_TMP/audit-2.pem" -noout -serial | cut -d= -f2)
out=$(ctl cert show "$upper")
xb_eq "cert show takes openssl's uppercase serial" "$?" 0
xb_contains "revoked: status" "$out" "status:       revoked"
xb_contains "revoked: reason" "$out" "reason:       keyCompromise"
xb_contains "revoked: revoked at" "$out" "revoked at:   20"
ctl cert show "$s2" --json >"$XB_TMP/show.json"; rc=$?
xb_eq "cert show --json: exit 0" "$rc" 0
xb_eq "--json: the list's fields plus pem" "$(jq -c 'del(.pem)' "$XB_TMP/show.json")" \
  "$(jq -c --arg s "$s2" '.[] | select(.serial == $s)' "$XB_TMP/list.json")"
xb_eq "--json: pem is the certificate the device received" \
  "$(jq -r .pem "$XB_TMP/show.json" | fingerprint)" "$(fingerprint -in "$XB_TMP/audit-2.pem")"
ctl cert show 0badc0de >/dev/null; rc=$?
xb_eq "unknown serial: exit 1" "$rc" 1
xb_contains "unknown serial: says so" "$(err)" "no certificate has serial 0badc0de"
ctl cert show xyz >/dev/null; rc=$?
xb_eq "bad serial: exit 2" "$rc" 2
xb_contains "bad serial: says why" "$(err)" "invalid serial"
ctl cert show >/dev/null; rc=$?
xb_eq "no serial: exit 2" "$rc" 2
ctl cert revoke "$s1" --json >/dev/null; rc=$?
xb_eq "--json on cert revoke: exit 2" "$rc" 2
xb_finish
