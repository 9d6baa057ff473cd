"""An HTTPS object store for the tests (tests/e2e/ca_keys.sh): serves the files of DIR on
127.0.0.1, a free port written to PORTFILE, every request line appended to LOGFILE. Like a
presigned URL it answers only requests whose query is exactly QUERY (403 otherwise), and 404
for a missing file. Bounded: the caller runs it under timeout.

usage: file_server.py CERT KEY PORTFILE LOGFILE DIR QUERY
"""
import http.server, os, socketserver, ssl, sys, threading, urllib.parse
cert, key, portfile, logfile, root, query = sys.argv[1:7]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
lock = threading.Lock()


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with lock, open(logfile, "a") as f:
            f.write(self.path + "\n")
        u = urllib.parse.urlsplit(self.path)
        name = os.path.basename(u.path)
        path = os.path.join(root, name)
        if u.query != query:
            status, data = 403, b"bad signature\n"
        elif not name or not os.path.isfile(path):
            status, data = 404, b"no such object\n"
        else:
            status, data = 200, open(path, "rb").read()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = S(("127.0.0.1", 0), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
