#!/usr/bin/env python3
"""A tiny HTTPS server that stands in for xbootd in tests of the device side.

Every POST gets the same canned answer (--status, --body FILE, --header "Name: value"), or,
with --sign-cert/--sign-key, a certificate for the CSR it received, signed by that CA with
`openssl x509 -req` (so a test can make a certificate for a key it never sees: one from
another CA, or with a wrong CN). Other methods get 405.

--est makes it an EST (RFC 7030) server instead: GET .../cacerts answers --sign-cert and
--est-chain as base64 certs-only PKCS#7; POST .../simpleenroll and .../simplereenroll sign the
base64 PKCS#10 body as above and answer the certificate alone the same way; --est-foreign-key
signs a CSR of a fresh key instead (a tampered answer: a certificate that is not for the
device's key). The TLS client certificate is requested (optional) and verified against
--client-ca when given; the log line then ends in "cert=yes|no".

--delay holds every answer back (a slow server: the client's timeout fires first).

Each request that arrives complete is appended to --log as one line, before the answer is
sent: "METHOD PATH BODY_LENGTH auth=basic|none apikey=yes|no" (never the secrets themselves).
A client that refuses the server's certificate sends no request, so its log stays empty.

Bound to 127.0.0.1 on a free port, printed as the first line of stdout and, with --port-file,
written there (atomically). Exits after --max-requests requests or --timeout seconds, or on
SIGTERM. Standard library only (plus the openssl command for --sign-*).
"""
import argparse
import base64
import http.server
import json
import os
import secrets
import signal
import socketserver
import ssl
import subprocess
import sys
import tempfile
import time

CLIENT_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=clientAuth\n"
)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cert", required=True, help="PEM server certificate (chain may follow)")
    p.add_argument("--key", required=True, help="PEM key of --cert")
    p.add_argument("--status", type=int, default=200, help="HTTP status of the answer")
    p.add_argument("--body", help="file whose bytes are the answer's body (default: empty)")
    p.add_argument("--content-type", default="application/json; charset=utf-8")
    p.add_argument("--header", action="append", default=[], help='extra "Name: value"')
    p.add_argument("--sign-cert", help="CA certificate that signs the received CSR")
    p.add_argument("--sign-key", help="key of --sign-cert")
    p.add_argument("--sign-subject", help="subject of the signed certificate (default: CSR's)")
    p.add_argument("--est", action="store_true", help="speak EST (RFC 7030) instead")
    p.add_argument("--est-chain", help="PEM certificates sent after --sign-cert in cacerts")
    p.add_argument("--est-foreign-key", action="store_true",
                   help="EST: certify a fresh key, not the CSR's")
    p.add_argument("--client-ca", help="PEM CA that verifies optional TLS client certificates")
    p.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering")
    p.add_argument("--log", required=True, help="request log, appended to")
    p.add_argument("--port-file", help="also write the port here")
    p.add_argument("--max-requests", type=int, default=10)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds until exit")
    args = p.parse_args()
    if bool(args.sign_cert) != bool(args.sign_key):
        p.error("--sign-cert and --sign-key go together")
    return args


def der_b64(pem_file):
    """Base64 DER of the first certificate in a PEM file."""
    out = subprocess.run(["openssl", "x509", "-in", pem_file, "-outform", "DER"],
                         check=True, capture_output=True, timeout=30).stdout
    return base64.b64encode(out).decode()


def pkcs7_b64(pem_files):
    """Base64 (64-column lines) of a certs-only PKCS#7 of the certificates in pem_files."""
    cmd = ["openssl", "crl2pkcs7", "-nocrl", "-outform", "DER"]
    for f in pem_files:
        cmd += ["-certfile", f]
    der = subprocess.run(cmd, check=True, capture_output=True, timeout=30).stdout
    b64 = base64.b64encode(der).decode()
    return "".join(b64[i:i + 64] + "\n" for i in range(0, len(b64), 64)).encode()


def foreign_csr(tmp, csr_file):
    """A CSR with csr_file's subject for a fresh key (what a tampering server would certify)."""
    subj = subprocess.run(["openssl", "req", "-inform", "DER", "-in", csr_file, "-noout",
                           "-subject", "-nameopt", "compat"], check=True, capture_output=True,
                          timeout=30).stdout.decode().strip().split("=", 1)[1]
    key, out = os.path.join(tmp, "foreign.key"), os.path.join(tmp, "foreign.csr")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", subj,
                    "-outform", "DER", "-out", out], check=True, capture_output=True, timeout=30)
    return out


def sign_est(args, body):
    """The EST answer for the base64 PKCS#10 in body; (status, bytes)."""
    try:
        csr = base64.b64decode(b"".join(body.split()), validate=True)
    except ValueError:
        return 400, b"malformed_request: fake server: the body is not base64\n"
    with tempfile.TemporaryDirectory() as tmp:
        csr_file = os.path.join(tmp, "csr")
        with open(csr_file, "wb") as f:
            f.write(csr)
        if args.est_foreign_key:
            csr_file = foreign_csr(tmp, csr_file)
        status, cert = sign_der(args, tmp, csr_file)
        if status != 200:
            return status, b"internal_error: fake server: signing failed\n"
        pem = os.path.join(tmp, "crt.pem")
        subprocess.run(["openssl", "x509", "-inform", "DER", "-in", cert, "-out", pem],
                       check=True, capture_output=True, timeout=30)
        return 200, pkcs7_b64([pem])


def sign_der(args, tmp, csr_file):
    """Sign the DER CSR in csr_file with --sign-cert; (status, path of the DER certificate)."""
    ext_file, out_file = os.path.join(tmp, "ext"), os.path.join(tmp, "crt")
    with open(ext_file, "w") as f:
        f.write(CLIENT_EXTENSIONS)
    cmd = ["openssl", "x509", "-req", "-inform", "DER", "-in", csr_file,
           "-CA", args.sign_cert, "-CAkey", args.sign_key, "-days", "30",
           "-set_serial", "0x" + secrets.token_hex(16), "-extfile", ext_file,
           "-outform", "DER", "-out", out_file]
    if args.sign_subject:
        cmd += ["-subj", args.sign_subject]
    done = subprocess.run(cmd, capture_output=True, timeout=30)
    if done.returncode != 0:
        sys.stderr.write(done.stderr.decode(errors="replace"))
        return 500, None
    return 200, out_file


def sign_csr(args, body):
    """The XBoot answer for the CSR in body, signed by --sign-cert; (status, bytes)."""
    try:
        csr = base64.b64decode(json.loads(body)["Csr"], validate=True)
    except (ValueError, KeyError, TypeError):
        return 400, b'{"error":"malformed_request","message":"fake server: no CSR"}'
    with tempfile.TemporaryDirectory() as tmp:
        csr_file, ext_file, out_file = (os.path.join(tmp, n) for n in ("csr", "ext", "crt"))
        with open(csr_file, "wb") as f:
            f.write(csr)
        with open(ext_file, "w") as f:
            f.write(CLIENT_EXTENSIONS)
        cmd = ["openssl", "x509", "-req", "-inform", "DER", "-in", csr_file,
               "-CA", args.sign_cert, "-CAkey", args.sign_key, "-days", "30",
               "-set_serial", "0x" + secrets.token_hex(16), "-extfile", ext_file,
               "-outform", "DER", "-out", out_file]
        if args.sign_subject:
            cmd += ["-subj", args.sign_subject]
        done = subprocess.run(cmd, capture_output=True, timeout=30)
        if done.returncode != 0:
            sys.stderr.write(done.stderr.decode(errors="replace"))
            return 500, b'{"error":"internal_error","message":"fake server: signing failed"}'
        with open(out_file, "rb") as f:
            cert = base64.b64encode(f.read()).decode()
    answer = {"Certificate": cert, "Chain": [der_b64(args.sign_cert)]}
    return 200, json.dumps(answer).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    timeout = 10  # per connection: a stalled client cannot hold the single thread

    def log_message(self, fmt, *a):  # quiet: the request log is ours
        pass

    def _record(self, body_len):
        auth = self.headers.get("Authorization", "")
        line = "%s %s %d auth=%s apikey=%s\n" % (
            self.command, self.path, body_len,
            "basic" if auth.lower().startswith("basic ") else ("other" if auth else "none"),
            "yes" if self.headers.get("x-functions-key") else "no")
        if self.server.args.client_ca:
            line = line[:-1] + " cert=%s\n" % ("yes" if self.connection.getpeercert() else "no")
        with open(self.server.args.log, "a") as f:
            f.write(line)
        self.server.requests += 1

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _answer(self, status, body, extra_headers):
        self.send_response(status)
        self.send_header("Content-Type", self.server.args.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for h in extra_headers:
            name, _, value = h.partition(":")
            self.send_header(name.strip(), value.strip())
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self._read_body()
        self._record(len(body))  # before answering: the client's exit proves it is logged
        args = self.server.args
        time.sleep(args.delay)
        if args.est and args.sign_cert and self.path.endswith(("/simpleenroll",
                                                                "/simplereenroll")):
            status, answer = sign_est(args, body)
            self.server.args.content_type = "application/pkcs7-mime; smime-type=certs-only"
        elif args.sign_cert:
            status, answer = sign_csr(args, body)
        else:
            status, answer = args.status, self.server.canned
        self._answer(status, answer, args.header)

    def do_GET(self):
        args = self.server.args
        if not (args.est and args.sign_cert and self.path.endswith("/cacerts")):
            return self._not_allowed()
        self._record(0)
        certs = [args.sign_cert] + ([args.est_chain] if args.est_chain else [])
        args.content_type = "application/pkcs7-mime"
        self._answer(200, pkcs7_b64(certs), ["Content-Transfer-Encoding: base64"])

    def _not_allowed(self):
        self._record(len(self._read_body()))
        self._answer(405, b'{"error":"method_not_allowed","message":"fake"}', ["Allow: POST"])

    do_PUT = do_DELETE = _not_allowed


class Server(socketserver.TCPServer):
    allow_reuse_address = True

    def __init__(self, args):
        super().__init__(("127.0.0.1", 0), Handler)
        self.args = args
        self.requests = 0
        self.canned = b""
        if args.body:
            with open(args.body, "rb") as f:
                self.canned = f.read()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            self.ctx.verify_mode = ssl.CERT_OPTIONAL
            self.ctx.load_verify_locations(args.client_ca)

    def get_request(self):
        # The handshake happens here, with a timeout, so a client that gives up on our
        # certificate costs nothing but a line on stderr.
        sock, addr = self.socket.accept()
        sock.settimeout(Handler.timeout)
        try:
            return self.ctx.wrap_socket(sock, server_side=True), addr
        except (ssl.SSLError, OSError) as e:
            sys.stderr.write("fake_xboot_server: handshake failed: %s\n" % e)
            sock.close()
            raise


def write_port(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def main():
    args = parse_args()
    server = Server(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port = server.server_address[1]
    print(port, flush=True)
    if args.port_file:
        write_port(args.port_file, port)
    deadline = time.monotonic() + args.timeout
    try:
        while server.requests < args.max_requests:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            server.timeout = min(left, 1.0)
            server.handle_request()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
