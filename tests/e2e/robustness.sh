#!/usr/bin/env bash
# What an operator relies on when devices misbehave and processes die: idle and slow
# connections are closed after timeout_seconds, garbage never takes the server down, a killed
# worker is replaced, an answered certificate is on disk even if the whole server is killed
# right after, and SIGTERM stops everything promptly with exit code 0.
. "$(dirname "$0")/lib.sh"

# Raw socket probes (bounded: every wait has a limit). Prints one line; see each mode.
cat >"$XB_TMP/probe.py" <<'PY'
import os, random, socket, ssl, sys, time
mode, host, port, ca, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
data = sys.argv[6].encode().decode("unicode_escape").encode("latin-1") if len(sys.argv) > 6 else b""

def wait_closed(s, t0):
    """Seconds from t0 until the peer closes; 'open' if still open after limit."""
    s.settimeout(0.2)
    first = b""
    while time.monotonic() - t0 < limit:
        try:
            chunk = s.recv(4096)
        except (socket.timeout, TimeoutError):
            continue
        except (ssl.SSLError, OSError):
            return "%.1f %s" % (time.monotonic() - t0, first[:40])
        if not chunk:
            return "%.1f %s" % (time.monotonic() - t0, first[:40])
        first += chunk
    return "open %s" % first[:40]

raw = socket.create_connection((host, port), timeout=5)
if mode == "tcp":          # plain TCP to the port, send data (maybe none), wait for the close
    t0 = time.monotonic()
    if data:
        raw.sendall(data)
    print(wait_closed(raw, t0))
elif mode == "tls":        # TLS handshake, send data (maybe none), wait for the close
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    t0 = time.monotonic()
    if data:
        s.sendall(data)
    print(wait_closed(s, t0))
elif mode == "drip":       # TLS, then data, then one more header line every 0.5 s (slowloris)
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    t0 = time.monotonic()
    s.sendall(data)
    s.settimeout(0.5)
    result = "open"
    while time.monotonic() - t0 < limit:
        try:
            s.sendall(b"X-Drip: 1\r\n")
            chunk = s.recv(4096)
            if not chunk:
                result = "%.1f" % (time.monotonic() - t0); break
        except (socket.timeout, TimeoutError):
            continue
        except (ssl.SSLError, OSError):
            result = "%.1f" % (time.monotonic() - t0); break
    print(result)
elif mode == "garbage":    # random bytes, whatever the answer
    rnd = random.Random(int(limit))
    try:
        raw.sendall(bytes(rnd.randrange(256) for _ in range(4096)))
        raw.settimeout(3)
        raw.recv(4096)
    except OSError:
        pass
    print("done")
PY
probe() { timeout 30 "$XB_PYTHON" "$XB_TMP/probe.py" "$1" 127.0.0.1 "${XB_PORT}" "$XB_TMP/ca/root-ca.pem" "${@:2}"; }
# closed_within "what" RESULT MAX_SECONDS [MIN_SECONDS]
closed_within() {
  local secs=${2%% *}
  case "$secs" in
    open) xb_bad "$1: still open after the probe's limit" ;;
    *) xb_check "$1: closed after ${secs}s (expected ${4:-0}..$3)" \
         awk -v s="$secs" -v lo="${4:-0}" -v hi="$3" 'BEGIN { exit !(s >= lo && s <= hi) }' ;;
  esac
}
health() { # health "what": /healthz answers 200 (3 tries, to reach more than one worker)
  local i ok=0
  for i in 1 2 3; do xb_request GET /healthz; [ "$XB_STATUS" = 200 ] && ok=$((ok + 1)); done
  xb_eq "$1: /healthz 200" "$ok" 3
}

xb_ca_init
XB_TIMEOUT=2
xb_write_config
xb_start_server || { xb_bad "server starts"; xb_finish; exit 1; }
XB_PORT=${XB_URL##*:}

# ---- idle and slow connections (timeout_seconds = 2) ----
closed_within "idle TCP connection (no TLS handshake)" "$(probe tcp 10)" 5 1.5
closed_within "idle TLS connection (handshake, then nothing)" "$(probe tls 10)" 5 1.5
closed_within "half a request line, then nothing" "$(probe tls 10 'POST /api/certificate HTTP/1.1\r\nHost: x\r\n')" 5 1.5
r=$(probe tls 10 'POST /api/certificate HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n0123456789')
closed_within "Content-Length 10 MB, 10 bytes sent, then nothing" "$r" 5
r=$(probe tls 10 'POST /api/certificate HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n0123456789')
closed_within "Content-Length 60000 (under the limit), 10 bytes sent, then nothing" "$r" 5 1.5
# A slow client that keeps sending a little (here: a header line every 0.5 s) must not hold a
# connection forever: "slow or idle connections are closed after a timeout".
r=$(probe drip 20 'POST /api/certificate HTTP/1.1\r\nHost: x\r\n')
closed_within "headers trickled a line every 0.5 s are cut off (timeout 2 s)" "$r" 7
r=$(probe drip 20 'POST /api/certificate HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n')
closed_within "a body trickled 11 bytes every 0.5 s is cut off (timeout 2 s)" "$r" 7
health "after the slow connections"

# ---- garbage ----
r=$(probe tcp 10 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
closed_within "plain HTTP to the HTTPS port is closed" "$r" 5
for seed in 1 2 3 4 5; do probe garbage "$seed" >/dev/null; done
r=$(probe tcp 10 '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03')
closed_within "a truncated TLS ClientHello is closed" "$r" 5
r=$(probe tls 10 '\x00\x01\x02\xff\xfe\r\n\r\n')
closed_within "binary garbage inside TLS is closed" "$r" 5
r=$(probe tls 10 'GET /healthz HTTP/1.1\r\nHost: x\r\nX: '"$(printf 'a%.0s' $(seq 1 20000))"'\r\n\r\n')
closed_within "a 20 KB header is refused and closed" "$r" 5
xb_check "server alive after garbage" kill -0 "$XB_PID"
health "after garbage"

# ---- 200 malformed JSON bodies ----
xb_ctl device add fuzz-1 >/dev/null
xb_csr ec-p256 fuzz-1 "$XB_TMP/fuzz"
rows=$(xb_cert_rows)
timeout 240 "$XB_PYTHON" - "$XB_PORT" "$XB_TMP/ca/root-ca.pem" "$(xb_b64 "$XB_TMP/fuzz.der")" \
  >"$XB_TMP/fuzz.out" 2>&1 <<'PY'
import http.client, json, random, ssl, sys
port, ca, csr = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
rnd = random.Random(20240601)
good = '{"RegistrationId":"fuzz-1","Csr":"%s"}' % csr
fixed = ['', ' ', '{', '}', '[]', 'null', 'true', '0', '-1e999', '"x"', '{"a":}', '{,}',
         '{"RegistrationId":"fuzz-1","Csr":"%s"' % csr, '{"RegistrationId":"fuzz-1",,"Csr":"x"}',
         '[' * 5000 + ']' * 5000, '{"a":' * 3000 + '1' + '}' * 3000,
         '{"RegistrationId":"\\ud800","Csr":"AAAA"}', '{"RegistrationId":"fuzz-1\\u0000x","Csr":"AAAA"}',
         '{"RegistrationId":"fuzz-1","Csr":"%s"}' % ("A" * 60000),
         '{"RegistrationId":["fuzz-1"],"Csr":{"x":1}}', '{"RegistrationId":"fuzz-1","Csr":1e308}',
         '\xef\xbb\xbf' + good[:-1], good.replace('"', "'"), good[:len(good) // 2],
         '{"RegistrationId":"fuzz-1","Csr":"%s"}' % csr[:-8], '\x00' * 100, '\xff\xfe{}']
bodies = [b.encode('latin-1') if isinstance(b, str) else b for b in fixed]
while len(bodies) < 200:
    b = bytearray(good.encode())
    for _ in range(rnd.randint(1, 8)):
        op = rnd.randrange(4)
        i = rnd.randrange(len(b))
        if op == 0:
            b[i] = rnd.randrange(256)
        elif op == 1:
            del b[i:i + rnd.randint(1, 50)]
        elif op == 2:
            b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 20)))
        else:
            b[i:i] = rnd.choice([b'{', b'}', b'[', b']', b'"', b'\\', b',', b':', b'\\u'])
    if bytes(b) == good.encode():
        continue
    bodies.append(bytes(b))
bad = 0
for n, body in enumerate(bodies):
    try:
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)
        c.request("POST", "/api/certificate", body=body)
        r = c.getresponse()
        text = r.read()
        c.close()
        ok = 400 <= r.status < 500
        code = json.loads(text).get("error", "") if text else ""
        if not ok or not code:
            bad += 1
            print("body %d: status %d %r -> %r" % (n, r.status, body[:60], text[:120]))
    except Exception as e:
        bad += 1
        print("body %d: %s %r" % (n, e, body[:60]))
print("sent %d bad %d" % (len(bodies), bad))
PY
xb_contains "200 malformed bodies: all answered 4xx with a JSON error" "$(tail -n1 "$XB_TMP/fuzz.out")" "sent 200 bad 0"
grep -v '^sent' "$XB_TMP/fuzz.out" | head -10
xb_eq "malformed bodies: no certificate recorded" "$(xb_cert_rows)" "$rows"
xb_check "malformed bodies: server alive" kill -0 "$XB_PID"
health "after malformed bodies"
xb_check "no worker died meanwhile" sh -c "! grep -q restarting '$XB_TMP/xbootd.log'"

# ---- a hangup (terminal closed, kill -HUP to the group) reaches the workers: they stay ----
before=$(pgrep -P "$XB_PID" | sort | tr '\n' ' ')
kill -HUP "$XB_PID" $(pgrep -P "$XB_PID")
sleep 1
xb_eq "SIGHUP: the same workers still run" "$(pgrep -P "$XB_PID" | sort | tr '\n' ' ')" "$before"
xb_check "SIGHUP: no worker restarted" sh -c "! grep -q restarting '$XB_TMP/xbootd.log'"
health "after SIGHUP"

# ---- kill -9 of one worker ----
workers=$(pgrep -P "$XB_PID" | wc -l)
victim=$(pgrep -P "$XB_PID" | head -n1)
xb_check "server has worker processes ($workers)" test "$workers" -ge 1
kill -9 "$victim"
xb_check "killed worker: the supervisor logs a restart" xb_wait_log "pid $victim.*restarting|restarting.*$victim" 10
for i in $(seq 1 50); do [ "$(pgrep -P "$XB_PID" | wc -l)" -eq "$workers" ] && break; sleep 0.1; done
xb_eq "killed worker: as many workers as before" "$(pgrep -P "$XB_PID" | wc -l)" "$workers"
xb_check "killed worker: the victim is gone" sh -c "! pgrep -P '$XB_PID' | grep -qx '$victim'"
health "after a worker was killed"
xb_check "killed worker: supervisor alive" kill -0 "$XB_PID"

# ---- a certificate that was answered survives kill -9 of the whole server ----
xb_ctl device add durable-1 >/dev/null
xb_csr ec-p256 durable-1 "$XB_TMP/durable"
xb_post "$(xb_enroll_body durable-1 "$XB_TMP/durable.der")"
xb_eq "durable-1 enrolled: 200" "$XB_STATUS" 200
serial=$(xb_json Serial)
xb_save_cert "$XB_TMP/durable.pem" && serial=$(openssl x509 -in "$XB_TMP/durable.pem" -noout -serial | cut -d= -f2)
kids=$(pgrep -P "$XB_PID" | tr '\n' ' ')
{ kill -9 "$XB_PID"; wait "$XB_PID"; } 2>/dev/null
XB_PID=""
for i in $(seq 1 100); do # workers follow their supervisor (bounded 10 s)
  alive=0; for k in $kids; do kill -0 "$k" 2>/dev/null && alive=1; done
  [ "$alive" -eq 0 ] && break; sleep 0.1
done
xb_eq "kill -9 of the supervisor: the workers leave too" "$alive" 0
xb_start_server || xb_bad "server restarts on the same registry"
xb_eq "after kill -9: the certificate row is there" "$(xb_cert_rows durable-1)" 1
xb_eq "after kill -9: the row has the answered serial" \
  "$(xb_sql "select upper(serial) from certificates where reg_id='durable-1'")" "${serial^^}"
xb_contains "after kill -9: xbootctl cert list shows it" \
  "$(xb_ctl cert list 2>&1 | tr 'a-f' 'A-F')" "${serial^^}"
xb_csr ec-p256 durable-1 "$XB_TMP/durable2"
xb_post "$(xb_enroll_body durable-1 "$XB_TMP/durable2.der")"
xb_expect_error "after kill -9: durable-1 is still enrolled" 409 already_enrolled 1
health "after the restart"

# ---- SIGTERM: stops within 10 s with exit code 0, even with a client connected ----
XB_PORT=${XB_URL##*:}
timeout 30 "$XB_PYTHON" "$XB_TMP/probe.py" tls 127.0.0.1 "$XB_PORT" "$XB_TMP/ca/root-ca.pem" 20 >/dev/null 2>&1 &
idle_client=$!
sleep 0.5
kids=$(pgrep -P "$XB_PID" | tr '\n' ' ')
t0=$(date +%s%N)
kill -TERM "$XB_PID"
for i in $(seq 1 120); do kill -0 "$XB_PID" 2>/dev/null || break; sleep 0.1; done
wait "$XB_PID"; rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
XB_PID=""
xb_check "SIGTERM: stopped within 10 s (${ms} ms)" test "$ms" -le 10000
xb_eq "SIGTERM: exit code 0" "$rc" 0
alive=0; for k in $kids; do kill -0 "$k" 2>/dev/null && alive=1; done
xb_eq "SIGTERM: no worker left" "$alive" 0
xb_check "SIGTERM: the log says stopped" grep -q 'stopped' "$XB_TMP/xbootd.log"
kill "$idle_client" 2>/dev/null; wait "$idle_client" 2>/dev/null
# ---- xbootd as PID 1 (a container's entrypoint) ----
if unshare --pid --fork --kill-child true 2>/dev/null; then
  xb_write_config
  XB_LAUNCH="unshare --pid --fork --kill-child" xb_start_server
  xb_check "as PID 1: serves /healthz" \
    curl -sf -o /dev/null --max-time 5 --cacert "$XB_TMP/ca/root-ca.pem" "$XB_URL/healthz"
  xb_check "as PID 1: no worker failed to start" sh -c "! grep -q 'failed to start' '$XB_TMP/xbootd.log'"
  xb_stop_server
else
  xb_bad "unshare --pid is not available here: cannot run xbootd as PID 1"
fi
xb_finish
