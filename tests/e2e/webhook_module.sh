#!/usr/bin/env bash
# The validation webhook module (src/server/webhook.c) against a local HTTPS webhook, driven by
# tests/helpers/webhook_probe (one event loop, queries in flight at once, as in a worker).
# The webhook (python3 ssl + http.server, certificate from a test CA made here) answers by the
# registrationId's prefix: allow (200), deny (403 + reason), deny500 (500 + message), plain
# (403, not JSON), ctrl (403, a reason full of control characters), redirect (302), big and
# bigstream (an answer beyond 16 KiB), slow (answers after 5 s, beyond the probe's timeouts).
# Checks the verdicts and reasons, the exact request, fail-closed on an unreachable port, an
# untrusted certificate, a host name mismatch and a timeout, that a slow query does not hold
# up the others, and that the URL's query and password never reach the log.
# registry: none (the webhook module alone, through webhook_probe: no xbootd, no registry)
. "$(dirname "$0")/lib.sh"

# The module honours libcurl's proxy variables; everything here is on 127.0.0.1.
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY

PROBE="$XB_BIN/webhook_probe"
WH="$XB_TMP/wh"
WH_PID=""
mkdir -p "$WH"

wh_cleanup() {
  xb_stop_pid "$WH_PID" 5
  WH_PID=""
  xb_cleanup
}
trap wh_cleanup EXIT

# ---- the test webhook (lib.sh: a test CA, a certificate for IP 127.0.0.1 only, "localhost"
# must not match) and an unrelated CA ----
xb_start_test_webhook "$WH"
PORT=$XB_WH_PORT
WH_PID=$XB_WH_PID
ossl() { openssl "$@" 2>>"$WH/openssl.log"; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=another CA" -keyout "$WH/other.key" -out "$WH/other.pem"
xb_check "the test webhook listens" test -n "$PORT"

TOKEN="tok-$RANDOM$RANDOM-secret"
PASSWORD="pw-$RANDOM$RANDOM"
URL="https://hook:$PASSWORD@127.0.0.1:$PORT/v1/check?token=$TOKEN"
RUN=0

# probe NAME [probe options...] -- URL IDs...: run the probe; sets OUT (stdout), ERR (stderr),
# RC. Every stderr is kept, for the secret checks at the end.
probe() {
  local name=$1; shift
  RUN=$((RUN + 1))
  timeout 60 "$PROBE" "$@" >"$WH/$RUN-$name.out" 2>"$WH/$RUN-$name.err"
  RC=$?
  OUT=$(cat "$WH/$RUN-$name.out")
  ERR=$(cat "$WH/$RUN-$name.err")
  if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$WH/$RUN-$name.err"; then
    xb_bad "$name: sanitizer report"; head -40 "$WH/$RUN-$name.err"
  fi
}
# The completion line of ID in OUT, without its time: "ID CODE REASON".
verdict() { sed -n "s/^[0-9]* \($1 .*\)$/\1/p" <<<"$OUT" | head -n1; }
# Its time in ms.
elapsed() { sed -n "s/^\([0-9]*\) $1 .*$/\1/p" <<<"$OUT" | head -n1; }
# The request the webhook recorded for ID (a JSON line).
request_of() { jq -c --arg id "$1" 'select(.body.registrationId == $id)' "$WH/requests.jsonl" | head -n1; }

# ---- start refusals ----
probe http-url -t 1000 "http://127.0.0.1:$PORT/v1/check?token=$TOKEN" allow-x
xb_eq "http:// is refused at start: exit 2" "$RC" 2
xb_contains "http:// is refused at start: says https" "$ERR" "config_error: the webhook URL must be https://"
probe missing-ca -c "$WH/nope.pem" "$URL" allow-x
xb_eq "an unreadable trust anchor is refused at start: exit 2" "$RC" 2
xb_contains "an unreadable trust anchor: names the file" "$ERR" "$WH/nope.pem"

# ---- verdicts ----
probe verdicts -c "$WH/ca.pem" -t 2000 -d 15000 "$URL" allow-1 deny-1 deny500-1 plain-1 \
  redirect-1 big-1 bigstream-1 ctrl-1
xb_eq "verdicts: every query delivered (exit 0)" "$RC" 0
xb_eq "2xx allows" "$(verdict allow-1)" "allow-1 ok "
xb_eq "403 denies with the webhook's reason" "$(verdict deny-1)" \
  "deny-1 forbidden device deny-1 is not in the inventory"
xb_eq "500 denies too, with its \"message\"" "$(verdict deny500-1)" \
  "deny500-1 forbidden inventory backend exploded"
xb_eq "a refusal that is not JSON: a reason naming the status" "$(verdict plain-1)" \
  "plain-1 forbidden the validation webhook refused this enrollment (HTTP 403)"
xb_eq "a redirect is not followed: it denies" "$(verdict redirect-1)" \
  "redirect-1 forbidden the validation webhook refused this enrollment (HTTP 302)"
xb_eq "the redirect target was never asked" "$(jq -r 'select(.path == "/elsewhere") | .path' "$WH/requests.jsonl")" ""
xb_eq "an answer beyond 16 KiB (Content-Length) fails closed" "$(verdict big-1)" \
  "big-1 policy_unavailable the validation webhook's answer is larger than 16384 bytes"
xb_eq "an answer beyond 16 KiB (streamed) fails closed" "$(verdict bigstream-1)" \
  "bigstream-1 policy_unavailable the validation webhook's answer is larger than 16384 bytes"
xb_eq "control characters in the reason are neutralised" "$(verdict ctrl-1)" \
  "ctrl-1 forbidden bad?bell  Injected: yes?[31m?end"
# No raw control character (bar the newlines between lines) in what the probe printed or logged.
no_controls() { ! tr -d '\n' <"$1" | LC_ALL=C grep -q '[[:cntrl:]]'; }
xb_check "no control characters in the probe's output" no_controls "$WH/$RUN-verdicts.out"
xb_check "no control characters in the module's log" no_controls "$WH/$RUN-verdicts.err"
xb_contains "a refusal is logged with the status" "$ERR" "denied deny-1 (HTTP 403"
xb_contains "the log names the webhook by scheme://host:port/path" "$ERR" \
  "https://127.0.0.1:$PORT/v1/check"

# ---- the request, exactly ----
req=$(request_of allow-1)
want=$(jq -cn --arg key "$(printf %s allow-1 | sha256sum | cut -d' ' -f1)" \
  '{registrationId: "allow-1", subject: "CN=allow-1", publicKeySha256: $key, keyType: "ec-p256",
    clientAddress: "192.0.2.1", protocol: "xboot"}')
xb_eq "the webhook gets exactly the six fields" "$(jq -cS .body <<<"$req")" "$(jq -cS . <<<"$want")"
xb_eq "the body is compact JSON in the documented order" "$(jq -r .raw <<<"$req")" "$want"
xb_eq "Content-Type: application/json" "$(jq -r .contentType <<<"$req")" application/json
xb_eq "User-Agent: xbootd" "$(jq -r .userAgent <<<"$req")" xbootd
xb_eq "the URL's path and query reach the webhook" "$(jq -r .path <<<"$req")" "/v1/check?token=$TOKEN"

# ---- failing closed ----
DEAD=$("$XB_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
probe unreachable -c "$WH/ca.pem" -t 5000 -d 15000 "https://127.0.0.1:$DEAD/v1/check?token=$TOKEN" allow-u
xb_eq "unreachable: delivered (exit 0)" "$RC" 0
xb_eq "unreachable: policy_unavailable" "$(verdict allow-u)" \
  "allow-u policy_unavailable the validation webhook cannot be reached"
xb_contains "unreachable: logged as failing closed" "$ERR" "denied (fail closed)"

probe wrong-ca -c "$WH/other.pem" -t 5000 -d 15000 "$URL" allow-w
xb_eq "another CA as trust anchor: policy_unavailable" "$(verdict allow-w)" \
  "allow-w policy_unavailable the validation webhook's TLS certificate is not trusted"
probe system-store -t 5000 -d 15000 "$URL" allow-s
xb_eq "the system store does not know the test CA: policy_unavailable" "$(verdict allow-s)" \
  "allow-s policy_unavailable the validation webhook's TLS certificate is not trusted"
probe wrong-host -c "$WH/ca.pem" -t 5000 -d 15000 "https://localhost:$PORT/v1/check?token=$TOKEN" allow-h
xb_eq "a host name the certificate does not name: policy_unavailable" "$(verdict allow-h)" \
  "allow-h policy_unavailable the validation webhook's TLS certificate is not trusted"
xb_eq "no request got through an untrusted connection" \
  "$(jq -r 'select(.body.registrationId | test("^allow-[wsh]$")) | .path' "$WH/requests.jsonl")" ""

probe slow -c "$WH/ca.pem" -t 1000 -d 15000 "$URL" slow-1
xb_eq "slow: policy_unavailable after the timeout" "$(verdict slow-1)" \
  "slow-1 policy_unavailable the validation webhook did not answer within 1000 ms"
ms=$(elapsed slow-1)
xb_check "slow: given up after roughly the timeout (${ms:-?} ms)" test "${ms:-0}" -ge 900 -a "${ms:-99999}" -le 2900

# ---- concurrency: one slow query does not hold up seven others ----
probe concurrent -c "$WH/ca.pem" -t 2000 -d 15000 "$URL" slow-c allow-c1 allow-c2 allow-c3 \
  allow-c4 allow-c5 allow-c6 allow-c7
xb_eq "concurrent: every query delivered (exit 0)" "$RC" 0
xb_eq "concurrent: seven allowed" "$(grep -c ' allow-c[1-7] ok' <<<"$OUT")" 7
xb_eq "concurrent: the slow one (submitted first) completes last" \
  "$(tail -n1 <<<"$OUT" | cut -d' ' -f2,3)" "slow-c policy_unavailable"
slow_ms=$(elapsed slow-c)
late=0
for i in 1 2 3 4 5 6 7; do
  ms=$(elapsed "allow-c$i")
  [ -n "$ms" ] && [ "$ms" -lt "${slow_ms:-0}" ] || late=$((late + 1))
done
xb_eq "concurrent: every allowed query finished before the slow one timed out" "$late" 0

# ---- stop with queries in flight: handed back undelivered ----
probe stop-in-flight -c "$WH/ca.pem" -t 10000 -d 500 "$URL" slow-s1 slow-s2
xb_eq "deadline before the answers: exit 3" "$RC" 3
xb_eq "both queries handed back undelivered by the stop" "$(grep -c ' undelivered$' <<<"$OUT")" 2

# ---- secrets ----
all_err=$(cat "$WH"/[0-9]*.err)
xb_lacks "the URL's query (token) never appears in the log" "$all_err" "$TOKEN"
xb_lacks "the URL's password never appears in the log" "$all_err" "$PASSWORD"
xb_lacks "the query never appears in the reasons either" "$(cat "$WH"/[0-9]*.out)" "$TOKEN"
xb_finish
