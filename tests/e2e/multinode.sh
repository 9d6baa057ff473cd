#!/usr/bin/env bash
# registry: postgresql
# Two xbootd nodes on one PostgreSQL database (docs/deployment.md): the one-time enrollment
# holds across nodes (64 parallel enrollments of 16 IDs give 16 certificates), a device
# enrolled on node A renews on node B, and a PostgreSQL restart under load costs 503s but never
# a certificate that is not recorded, and both nodes recover without a restart.
. "$(dirname "$0")/lib.sh"

[ "${XB_BACKEND:-sqlite}" = postgresql ] || { echo "multinode.sh runs with XB_BACKEND=postgresql"; exit 1; }

xb_ca_init
ROOT=$XB_TMP/ca/root-ca.pem
CHAIN=$XB_TMP/ca/signing-ca.pem
xb_write_config

# Start one node with the shared config; its log is $XB_TMP/NAME.log. Sets NODE_URL, NODE_PID.
start_node() {
  local name=$1 log=$XB_TMP/$1.log i port=""
  "$XB_BIN/xbootd" -c "$XB_TMP/xboot.conf" 2>"$log" &
  NODE_PID=$!
  for i in $(seq 1 100); do
    grep -q "xbootd .* started" "$log" && break
    kill -0 "$NODE_PID" 2>/dev/null || break
    sleep 0.1
  done
  port=$(sed -n 's|.*listening on https://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log" | head -n1)
  NODE_URL=${port:+https://127.0.0.1:$port}
  [ -n "$NODE_URL" ] || { echo "node $name did not start:"; cat "$log"; return 1; }
}
NODES=()
stop_nodes() { local p; for p in "${NODES[@]}"; do xb_stop_pid "$p"; done; }
trap 'stop_nodes; xb_cleanup' EXIT

start_node a || { xb_bad "node A starts"; xb_finish; exit 1; }
URL_A=$NODE_URL PID_A=$NODE_PID
NODES+=("$PID_A")
start_node b || { xb_bad "node B starts"; xb_finish; exit 1; }
URL_B=$NODE_URL PID_B=$NODE_PID
NODES+=("$PID_B")
xb_ok "two nodes started on one PostgreSQL database"

healthz() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$ROOT" "$1/healthz"; }

# ---- 64 parallel enrollments of 16 IDs, each ID twice on each node, every one a new key ----
ids=()
for i in $(seq 1 16); do ids+=("fleet-$i"); done
xb_ctl device add "${ids[@]}" >/dev/null
for id in "${ids[@]}"; do
  for k in 1 2 3 4; do
    xb_csr ec-p256 "$id" "$XB_TMP/$id-$k"
    xb_enroll_body "$id" "$XB_TMP/$id-$k.der" >"$XB_TMP/$id-$k.json"
  done
done
pids=()
for id in "${ids[@]}"; do
  for k in 1 2 3 4; do
    url=$URL_A
    [ $((k % 2)) -eq 0 ] && url=$URL_B
    curl -s -o "$XB_TMP/$id-$k.out" -w '%{http_code}' --max-time 30 --cacert "$ROOT" \
      -X POST -H 'Content-Type:' --data-binary "@$XB_TMP/$id-$k.json" \
      "$url/api/certificate" >"$XB_TMP/$id-$k.status" &
    pids+=($!)
  done
done
for p in "${pids[@]}"; do wait "$p"; done
ok=0 conflict=0 other=0 verified=0
for id in "${ids[@]}"; do
  for k in 1 2 3 4; do
    case "$(cat "$XB_TMP/$id-$k.status")" in
      200)
        ok=$((ok + 1))
        jq -r .Certificate "$XB_TMP/$id-$k.out" | base64 -d |
          openssl x509 -inform DER -out "$XB_TMP/$id.pem" 2>/dev/null
        openssl verify -CAfile "$ROOT" -untrusted "$CHAIN" "$XB_TMP/$id.pem" >/dev/null 2>&1 &&
          verified=$((verified + 1))
        ;;
      409) conflict=$((conflict + 1)) ;;
      *) other=$((other + 1)); echo "     $id-$k: $(cat "$XB_TMP/$id-$k.status") $(head -c 200 "$XB_TMP/$id-$k.out")" ;;
    esac
  done
done
xb_eq "64 parallel enrollments of 16 IDs over two nodes: 16 certificates" "$ok" 16
xb_eq "... and 48 refusals (already enrolled)" "$conflict" 48
xb_eq "... and nothing else" "$other" 0
xb_eq "... every certificate verifies against root + signing CA" "$verified" 16
xb_eq "the database holds 16 certificates" "$(xb_sql "SELECT count(*) FROM certificates")" 16
xb_eq "one per device" "$(xb_sql "SELECT count(DISTINCT lower(reg_id)) FROM certificates")" 16
served=$(for id in "${ids[@]}"; do openssl x509 -in "$XB_TMP/$id.pem" -noout -serial 2>/dev/null |
  sed 's/^serial=//' | tr 'A-F' 'a-f'; done | sort)
xb_eq "the 16 certificates handed out are the 16 recorded" "$served" \
  "$(xb_sql "SELECT serial FROM certificates" | sort)"
# Which node wins an ID's race is up to timing (under ASan, often the same one); that each
# node answered its half of the 64 is what spreading them means.
xb_eq "node A answered its 32 (200 or 409)" "$(grep -cE 'status=(200|409) ' "$XB_TMP/a.log")" 32
xb_eq "node B answered its 32 (200 or 409)" "$(grep -cE 'status=(200|409) ' "$XB_TMP/b.log")" 32

# ---- enrolled on node A, renewed on node B (EST simplereenroll with its certificate) ----
xb_csr ec-p256 moved "$XB_TMP/moved"
xb_ctl device add moved >/dev/null
XB_BASE=$URL_A xb_post_file <(xb_enroll_body moved "$XB_TMP/moved.der")
xb_eq "node A: device 'moved' enrolls" "$XB_STATUS" 200
xb_json Certificate | base64 -d | openssl x509 -inform DER -out "$XB_TMP/moved.pem" 2>/dev/null
xb_csr ec-p256 moved "$XB_TMP/moved-2"
base64 <"$XB_TMP/moved-2.der" >"$XB_TMP/moved-2.b64"
XB_BASE=$URL_B xb_request POST /.well-known/est/simplereenroll \
  -H 'Content-Type: application/pkcs10' --data-binary "@$XB_TMP/moved-2.b64" \
  --cert "$XB_TMP/moved.pem" --key "$XB_TMP/moved.key"
xb_eq "node B: renews the certificate node A issued" "$XB_STATUS" 200
base64 -d <"$XB_TMP/resp.json" | openssl pkcs7 -inform DER -print_certs -out "$XB_TMP/moved-2.pem" 2>/dev/null
xb_check "the renewed certificate verifies" \
  openssl verify -CAfile "$ROOT" -untrusted "$CHAIN" "$XB_TMP/moved-2.pem"
xb_eq "both of its certificates are recorded" \
  "$(xb_sql "SELECT count(*) FROM certificates WHERE reg_id = 'moved'")" 2
xb_eq "the renewed certificate (issued on B) is the device's current one" \
  "$(xb_sql "SELECT serial FROM certificates WHERE reg_id = 'moved' ORDER BY issued_at DESC, seq DESC LIMIT 1")" \
  "$(openssl x509 -in "$XB_TMP/moved-2.pem" -noout -serial | sed 's/^serial=//' | tr 'A-F' 'a-f')"

# ---- PostgreSQL restarted mid-load ----
# Open mode, so the load needs no rows first; each node gets its own stream of new devices,
# written by enroll_many.py as "serial ID" for a 200 and "STATUS ID" otherwise.
stop_nodes
NODES=()
xb_write_config "[enroll]" "mode = open"
start_node a || { xb_bad "node A restarts"; xb_finish; exit 1; }
URL_A=$NODE_URL PID_A=$NODE_PID
NODES+=("$PID_A")
start_node b || { xb_bad "node B restarts"; xb_finish; exit 1; }
URL_B=$NODE_URL PID_B=$NODE_PID
NODES+=("$PID_B")
ENROLL_MANY=$(dirname "$0")/enroll_many.py
# Paced (4 ms after each answer per thread) so that the run outlasts the outage: 503s come fast.
timeout 150 "$XB_PYTHON" "$ENROLL_MANY" "$URL_A" "$ROOT" load-a 1500 2 "$XB_TMP/load.out" 4 &
load_a=$!
timeout 150 "$XB_PYTHON" "$ENROLL_MANY" "$URL_B" "$ROOT" load-b 1500 2 "$XB_TMP/load.out" 4 &
load_b=$!
# Wait (bounded) until the load is under way, then take PostgreSQL away for two seconds.
for i in $(seq 1 200); do
  [ "$(grep -c '^[0-9a-f]\{6,\} ' "$XB_TMP/load.out" 2>/dev/null)" -ge 50 ] && break
  sleep 0.1
done
xb_pg_stop
sleep 1
xb_eq "PostgreSQL down: node A's /healthz fails" "$(healthz "$URL_A")" 503
xb_eq "PostgreSQL down: node B's /healthz fails" "$(healthz "$URL_B")" 503
sleep 1
xb_pg_start_again || xb_bad "PostgreSQL starts again"
wait "$load_a"
wait "$load_b"
total=$(wc -l <"$XB_TMP/load.out")
issued=$(grep -c '^[0-9a-f]\{6,\} ' "$XB_TMP/load.out")
unavailable=$(grep -c '^503 ' "$XB_TMP/load.out")
others=$(grep -vc -e '^[0-9a-f]\{6,\} ' -e '^503 ' "$XB_TMP/load.out")
echo "     load: $total answers, $issued certificates, $unavailable × 503, $others other"
xb_eq "the load ran to its end (3000 answers)" "$total" 3000
xb_check "requests during the outage got 503" test "$unavailable" -ge 1
xb_eq "no other failure" "$others" 0
# Every certificate a device received is in the registry (serials compared without leading
# zeros: Python prints the number, the registry keeps the 20 octets).
grep '^[0-9a-f]\{6,\} ' "$XB_TMP/load.out" | cut -d' ' -f1 | sed 's/^0*//' | sort >"$XB_TMP/handed.txt"
xb_sql "SELECT serial FROM certificates WHERE reg_id LIKE 'load-%'" | sed 's/^0*//' | sort >"$XB_TMP/recorded.txt"
xb_eq "no certificate handed out is missing from the registry" \
  "$(comm -23 "$XB_TMP/handed.txt" "$XB_TMP/recorded.txt" | wc -l)" 0
xb_check "certificates were issued after PostgreSQL came back" \
  test "$(grep -n '^503 ' "$XB_TMP/load.out" | tail -n1 | cut -d: -f1)" -lt "$(grep -n '^[0-9a-f]\{6,\} ' "$XB_TMP/load.out" | tail -n1 | cut -d: -f1)"
xb_check "node A was not restarted" kill -0 "$PID_A"
xb_check "node B was not restarted" kill -0 "$PID_B"
# Each worker reconnects on its own (at most once a second): bounded wait for all to be back.
back=0
for i in $(seq 1 50); do
  [ "$(healthz "$URL_A")" = 200 ] && [ "$(healthz "$URL_B")" = 200 ] && back=$((back + 1))
  [ "$back" -ge 4 ] && break
  sleep 0.2
done
xb_check "both nodes healthy again without a restart" test "$back" -ge 4
for node in A B; do
  url=URL_$node
  xb_csr ec-p256 "after-$node" "$XB_TMP/after-$node"
  XB_BASE=${!url} xb_post_file <(xb_enroll_body "after-$node" "$XB_TMP/after-$node.der")
  xb_eq "node $node issues again" "$XB_STATUS" 200
done
pg_password=${XB_PG_URL#postgresql://xboot:}
pg_password=${pg_password%%@*}
for node in a b; do
  xb_lacks "node $node's log has no password" "$(cat "$XB_TMP/$node.log")" "$pg_password"
done
stop_nodes
NODES=()
xb_finish
