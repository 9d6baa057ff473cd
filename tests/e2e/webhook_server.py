"""A validation webhook for the tests (tests/e2e/webhook_module.sh, webhook.sh): HTTPS on
127.0.0.1, a free port written to PORTFILE, every request appended to LOGFILE as JSON. It
answers by the registrationId's prefix: allow (200), deny (403 + reason), deny500 (500 +
message), plain (403, not JSON), ctrl (403, a reason full of control characters), redirect
(302), big and bigstream (an answer beyond 16 KiB), slow (answers after 5 s), late (allows
after 2 s).

usage: webhook_server.py CERT KEY PORTFILE LOGFILE
"""
import http.server, json, os, socketserver, ssl, sys, threading, time
cert, key, portfile, logfile = sys.argv[1:5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
lock = threading.Lock()

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body, ctype="application/json", length=True, extra=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in extra:
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(data)))
        else:  # no length: the body ends when the connection does
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout, size cap)
            pass

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        rec = {"path": self.path, "contentType": self.headers.get("Content-Type"),
               "userAgent": self.headers.get("User-Agent"), "raw": raw.decode("utf-8", "replace"),
               "body": body}
        with lock, open(logfile, "a") as f:
            f.write(json.dumps(rec) + "\n")
        rid = body.get("registrationId", "") if isinstance(body, dict) else ""
        if rid.startswith("slow"):
            time.sleep(5)
            self.answer(200, "{}")
        elif rid.startswith("late"):
            time.sleep(2)
            self.answer(200, '{"allowed":true}')
        elif rid.startswith("allow"):
            self.answer(200, '{"allowed":true}')
        elif rid.startswith("deny500"):
            self.answer(500, json.dumps({"message": "inventory backend exploded"}))
        elif rid.startswith("deny"):
            self.answer(403, json.dumps({"reason": "device %s is not in the inventory" % rid}))
        elif rid.startswith("plain"):
            self.answer(403, "nope\n", ctype="text/plain")
        elif rid.startswith("ctrl"):
            self.answer(403, json.dumps({"reason": "bad\u0007bell\r\nInjected: yes\u001b[31m\u202eend"}))
        elif rid.startswith("redirect"):
            self.answer(302, "", extra=[("Location", "/elsewhere")])
        elif rid.startswith("bigstream"):
            self.answer(200, "x" * 65536, length=False)
        elif rid.startswith("big"):
            self.answer(200, "x" * 65536)
        else:
            self.answer(400, '{"reason":"unknown test id"}')

    def log_message(self, *a):
        pass

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the default 5 drops SYNs of a burst (a 1 s retransmit)

    def finish_request(self, request, client_address):
        # TLS handshake in the connection's thread: a client that fails it (the wrong-trust
        # cases) or never finishes it holds up no one else.
        request.settimeout(10)
        try:
            conn = ctx.wrap_socket(request, server_side=True)
        except OSError:
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except OSError:
            pass
        finally:
            conn.close()

srv = S(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
