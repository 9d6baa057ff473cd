"""Enroll many devices in parallel over HTTPS keep-alive, as a fleet coming online would.

usage: enroll_many.py URL ROOT_PEM PREFIX COUNT THREADS OUT_FILE [PACE_MS]

Each device gets its own EC P-256 key and CSR (CN = PREFIX-i). For every 200 answer the
certificate's serial (lowercase hex) and the ID are appended to OUT_FILE and flushed at once,
so that a test that kills the server mid-run knows exactly which certificates were handed out.
Other answers are written as "status ID". A thread stops at its first transport error (the
server is gone); every request has a 20 s timeout, so the run is bounded. PACE_MS (default 0)
makes each thread pause that long after every answer, so that a run of COUNT requests lasts
long enough to span an event a test causes (a database restart) even when answers are fast.
"""
import base64
import http.client
import json
import ssl
import sys
import threading
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def csr_for(reg_id):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, reg_id)]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.DER)


def main():
    url, root, prefix, count, threads, out_path = sys.argv[1:7]
    count, threads = int(count), int(threads)
    pace = float(sys.argv[7]) / 1000 if len(sys.argv) > 7 else 0.0
    parts = urllib.parse.urlsplit(url)
    ctx = ssl.create_default_context(cafile=root)
    jobs = [(f"{prefix}-{i}", csr_for(f"{prefix}-{i}")) for i in range(count)]
    lock = threading.Lock()
    out = open(out_path, "a", buffering=1)
    next_job = [0]

    def take():
        with lock:
            if next_job[0] >= len(jobs):
                return None
            next_job[0] += 1
            return jobs[next_job[0] - 1]

    def worker():
        conn = None
        while True:
            job = take()
            if job is None:
                break
            reg_id, der = job
            body = json.dumps({"RegistrationId": reg_id, "Csr": base64.b64encode(der).decode()})
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx,
                                                       timeout=20)
                conn.request("POST", "/api/certificate", body,
                              {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                return
            if resp.status == 200:
                cert = x509.load_der_x509_certificate(
                    base64.b64decode(json.loads(data)["Certificate"]))
                line = f"{cert.serial_number:x} {reg_id}\n"
            else:
                line = f"{resp.status} {reg_id}\n"
            with lock:
                out.write(line)
            if pace:
                time.sleep(pace)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.close()


if __name__ == "__main__":
    main()
