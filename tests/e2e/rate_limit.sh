#!/usr/bin/env bash
# Rate limits ([rate_limit], src/server/ratelimit.c) on both APIs: per registration ID and per
# client address, 429 with Retry-After and nothing recorded, recovery after the wait, and a
# failed authentication costing twice. Waits are the Retry-After values, bounded at 12 s.
. "$(dirname "$0")/lib.sh"

xb_ca_init
API_KEY="fk-$(openssl rand -hex 8)"
expect_429() { # expect_429 "what": 429, rate_limited, Retry-After 1..60
  xb_eq "$1: 429" "$XB_STATUS" 429
  local ra
  ra=$(xb_header Retry-After)
  xb_check "$1: Retry-After is 1..60 s (got '$ra')" test "${ra:-0}" -ge 1 -a "${ra:-0}" -le 60
}
wait_retry_after() { # sleep what the last answer asked, at most 12 s
  local ra
  ra=$(xb_header Retry-After)
  sleep "$(( ${ra:-1} > 12 ? 12 : ${ra:-1} ))"
}
json() { xb_request POST /api/certificate -H 'Content-Type:' --data-binary "$(xb_enroll_body "$1" "$2")" "${@:3}"; }

# ---- per registration ID: a burst of 2, then one every 10 s ----
xb_write_config "[enroll]" "api_key = $API_KEY" \
  "[rate_limit]" "ip_per_minute = 0" "id_per_minute = 6" "id_burst = 2"
xb_start_server || { xb_bad "xbootd starts"; xb_finish; exit 1; }
xb_ctl device add r-1 r-2 >/dev/null
for i in 1 2 3 4; do xb_csr ec-p256 r-1 "$XB_TMP/r1-$i"; done
json r-1 "$XB_TMP/r1-1.der" -H "x-functions-key: $API_KEY"
xb_csr ec-p256 r-2 "$XB_TMP/r2"
base64 <"$XB_TMP/r1-4.der" >"$XB_TMP/r1-4.b64"
xb_eq "ID: first request 200" "$XB_STATUS" 200
json r-1 "$XB_TMP/r1-2.der" -H "x-functions-key: $API_KEY"
xb_eq "ID: second request judged (409)" "$XB_STATUS" 409
json r-1 "$XB_TMP/r1-3.der" -H "x-functions-key: $API_KEY"
expect_429 "ID: third request within 10 s"
xb_eq "ID: error code" "$(xb_json error)" "rate_limited"
xb_eq "ID: one certificate recorded" "$(xb_cert_rows r-1)" 1
json r-2 "$XB_TMP/r2.der" -H "x-functions-key: $API_KEY"
xb_eq "ID: another device is not limited by r-1's bucket" "$XB_STATUS" 200
# EST answers the same way, in its own format.
xb_request POST /.well-known/est/simpleenroll -H 'Content-Type: application/pkcs10' \
  --data-binary "@$XB_TMP/r1-4.b64" -u "r-1:$API_KEY"
expect_429 "ID over EST"
xb_contains "ID over EST: text body" "$XB_BODY" "rate_limited:"
wait_retry_after
json r-1 "$XB_TMP/r1-3.der" -H "x-functions-key: $API_KEY"
xb_eq "ID: after Retry-After the request is judged again (409)" "$XB_STATUS" 409
xb_stop_server

# ---- per address: a burst of 4, one a second; a failed authentication costs 2 ----
xb_write_config "[enroll]" "api_key = $API_KEY" \
  "[rate_limit]" "ip_per_minute = 60" "ip_burst = 4" "id_per_minute = 0"
xb_start_server || { xb_bad "xbootd restarts"; xb_finish; exit 1; }
xb_ctl device add a-1 >/dev/null
xb_csr ec-p256 a-1 "$XB_TMP/a1"
json a-1 "$XB_TMP/a1.der" -H "x-functions-key: wrong"
xb_eq "address: a wrong key is 401" "$XB_STATUS" 401
json a-1 "$XB_TMP/a1.der" -H "x-functions-key: wrong"
xb_eq "address: again 401" "$XB_STATUS" 401
json a-1 "$XB_TMP/a1.der" -H "x-functions-key: $API_KEY"
expect_429 "address: two failures (2 tokens each) spent the burst of 4; the right key waits"
xb_eq "address: nothing recorded" "$(xb_cert_rows a-1)" 0
xb_request GET /healthz
xb_eq "address: other routes are not limited" "$XB_STATUS" 200
wait_retry_after
json a-1 "$XB_TMP/a1.der" -H "x-functions-key: $API_KEY"
xb_eq "address: after Retry-After the request succeeds" "$XB_STATUS" 200
xb_check "the log shows the refusals" grep -q "outcome=rate_limited status=429" "$XB_TMP/xbootd.log"
xb_finish
