#!/usr/bin/env bash
# The validation webhook in xbootd ([policy] webhook_url): a local HTTPS webhook
# (webhook_server.py) allows, denies with a reason, answers too late, or is not there at all;
# both APIs; the webhook sees the six documented fields; a denial or no answer records nothing;
# the URL's token never reaches the log.
. "$(dirname "$0")/lib.sh"

unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY
WH="$XB_TMP/wh"
mkdir -p "$WH"
trap 'xb_stop_pid "$XB_WH_PID" 5; xb_cleanup' EXIT
xb_start_test_webhook "$WH"
xb_check "the test webhook listens" test -n "$XB_WH_PORT"
TOKEN="tok-$RANDOM$RANDOM"

xb_ca_init
xb_write_config "[enroll]" "mode = open" "[policy]" \
  "webhook_url = https://127.0.0.1:$XB_WH_PORT/check?token=$TOKEN" "webhook_ca = $WH/ca.pem" \
  "webhook_timeout_ms = 1000"
xb_start_server || { xb_bad "xbootd starts"; xb_finish; exit 1; }
json() { xb_post "$(xb_enroll_body "$1" "$2")"; }
est_enroll() { # est_enroll ID DER: simpleenroll with Basic (open mode)
  base64 <"$2" >"$XB_TMP/req.b64"
  xb_request POST /.well-known/est/simpleenroll -H 'Content-Type: application/pkcs10' \
    --data-binary "@$XB_TMP/req.b64" -u "$1:x"
}
last_request() { jq -c "select(.body.registrationId == \"$1\") | .body" "$WH/requests.jsonl" | tail -n1; }
devices() { xb_sql "select count(*) from devices where reg_id = '$1';"; }

# ---- allowed ----
xb_csr ec-p256 allow-1 "$XB_TMP/a1"
json allow-1 "$XB_TMP/a1.der"
xb_eq "allowed: 200" "$XB_STATUS" 200
spki=$(openssl pkey -in "$XB_TMP/a1.key" -pubout -outform DER | sha256sum | cut -d' ' -f1)
want=$(jq -cn --arg k "$spki" '{registrationId: "allow-1", subject: "CN=allow-1",
  publicKeySha256: $k, keyType: "ec-p256", clientAddress: "127.0.0.1", protocol: "xboot"}')
xb_eq "the webhook saw the six fields" "$(last_request allow-1 | jq -cS .)" "$(jq -cS . <<<"$want")"
xb_eq "allowed: recorded" "$(xb_cert_rows allow-1)" 1
xb_csr rsa-2048 allow-2 "$XB_TMP/a2"
est_enroll allow-2 "$XB_TMP/a2.der"
xb_eq "allowed over EST: 200" "$XB_STATUS" 200
xb_eq "EST: protocol est, keyType rsa-2048" "$(last_request allow-2 | jq -r '.protocol + " " + .keyType')" "est rsa-2048"

# ---- denied ----
xb_csr ec-p256 deny-1 "$XB_TMP/d1"
json deny-1 "$XB_TMP/d1.der"
xb_eq "denied: 403 forbidden" "$XB_STATUS $(xb_json error)" "403 forbidden"
xb_eq "denied: the webhook's reason" "$(xb_json message)" "device deny-1 is not in the inventory"
xb_eq "denied: nothing recorded" "$(xb_cert_rows deny-1) $(devices deny-1)" "0 0"
xb_csr ec-p256 deny500-1 "$XB_TMP/d5"
est_enroll deny500-1 "$XB_TMP/d5.der"
xb_eq "denied with 500, EST: 403" "$XB_STATUS" 403
xb_contains "denied with 500, EST: reason" "$XB_BODY" "forbidden: inventory backend exploded"
xb_eq "denied over EST: nothing recorded" "$(xb_cert_rows deny500-1)" 0

# ---- no answer in time: fail closed, 503 so the device retries later ----
xb_csr ec-p256 slow-1 "$XB_TMP/s1"
t0=$(date +%s%N)
json slow-1 "$XB_TMP/s1.der"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
xb_eq "timeout: 503 policy_unavailable" "$XB_STATUS $(xb_json error)" "503 policy_unavailable"
xb_check "timeout: answered near the 1 s timeout, not the webhook's 5 s (${ms} ms)" test "$ms" -lt 4000
xb_eq "timeout: nothing recorded" "$(xb_cert_rows slow-1) $(devices slow-1)" "0 0"
xb_check "timeout: logged" xb_wait_log "fail closed" 5

# ---- unreachable ----
xb_stop_server
DEAD=$("$XB_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
xb_write_config "[enroll]" "mode = open" "[policy]" \
  "webhook_url = https://127.0.0.1:$DEAD/check?token=$TOKEN" "webhook_ca = $WH/ca.pem"
xb_start_server || { xb_bad "xbootd restarts"; xb_finish; exit 1; }
xb_csr ec-p256 allow-3 "$XB_TMP/a3"
json allow-3 "$XB_TMP/a3.der"
xb_eq "unreachable: 503 policy_unavailable" "$XB_STATUS $(xb_json error)" "503 policy_unavailable"
xb_eq "unreachable: nothing recorded" "$(xb_cert_rows allow-3) $(devices allow-3)" "0 0"
xb_request GET /healthz
xb_eq "unreachable webhook: the server still answers" "$XB_STATUS" 200

# ---- a bad URL or trust anchor stops xbootd at start ----
xb_write_config "[policy]" "webhook_url = https://127.0.0.1:$DEAD/check" "webhook_ca = $XB_TMP/xboot.conf"
"$XB_BIN/xbootd" --check -c "$XB_TMP/xboot.conf" >/dev/null 2>"$XB_TMP/check.err"
xb_eq "a webhook_ca without a certificate is refused at start" "$?" 1
xb_contains "...naming the key" "$(cat "$XB_TMP/check.err")" "webhook_ca"
xb_write_config "[policy]" "webhook_url = http://127.0.0.1:$DEAD/check"
"$XB_BIN/xbootd" --check -c "$XB_TMP/xboot.conf" >/dev/null 2>"$XB_TMP/check.err"
xb_eq "http:// webhook refused at start" "$?" 1
xb_contains "...naming the key" "$(cat "$XB_TMP/check.err")" "webhook_url"

xb_stop_server
xb_check "the URL's token never reaches the log" bash -c "! grep -qF '$TOKEN' '$XB_TMP/xbootd.log'"
xb_finish
