#!/usr/bin/env bash
# Where the CA key comes from (docs/ca-keys.md): an encrypted PEM (PKCS#8 and traditional) with
# its passphrase from key_passphrase_file or XBOOT_CA_KEY_PASSPHRASE, PEM text in an environment
# variable (env:VAR), and cert, chain and key fetched from an HTTPS object store whose URL carries
# a token in its query, which never reaches xbootd's log. And the start-up refusals: wrong or
# missing passphrase, a key that does not match the certificate, a certificate that is not a CA.
. "$(dirname "$0")/lib.sh"

xb_ca_init
CA="$XB_TMP/ca"
CONF="$XB_TMP/xboot.conf"
PASS='correct horse battery staple 7'
WRONG='Tr0ub4dor&3-wrong'
printf '%s\n' "$PASS" >"$XB_TMP/pass.txt"
printf '%s\n' "$WRONG" >"$XB_TMP/wrong.txt"
chmod 600 "$XB_TMP/pass.txt" "$XB_TMP/wrong.txt"
openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$CA/signing-ca.key" -out "$CA/enc8.key" \
  -passout "pass:$PASS" 2>/dev/null
openssl ec -aes256 -in "$CA/signing-ca.key" -out "$CA/trad.key" -passout "pass:$PASS" 2>/dev/null
xb_contains "the PKCS#8 key is encrypted" "$(cat "$CA/enc8.key")" "ENCRYPTED PRIVATE KEY"
xb_contains "the traditional key is encrypted" "$(cat "$CA/trad.key")" "Proc-Type: 4,ENCRYPTED"

# check_out [config lines...]: --check's output in OUT and exit code in RC.
check_out() {
  xb_write_config "$@"
  OUT=$("$XB_BIN/xbootd" --check -c "$CONF" 2>&1)
  RC=$?
}

# check_refused "what" NEEDLE [config lines...]: --check exits 1, names the problem.
check_refused() {
  local what=$1 needle=$2; shift 2
  check_out "$@"
  xb_eq "$what: --check exit 1" "$RC" 1
  xb_contains "$what: message" "$OUT" "$needle"
  xb_lacks "$what: no passphrase in the message" "$OUT" "$PASS"
  xb_lacks "$what: no wrong passphrase in the message" "$OUT" "$WRONG"
  xb_lacks "$what: no OpenSSL error text" "$OUT" "routines"
}

N=0
# enroll_ok "what": start xbootd with the config written last, enroll a new device, check that
# the certificate verifies up to the root, stop xbootd.
enroll_ok() {
  N=$((N + 1))
  if ! xb_start_server; then
    xb_bad "$1: xbootd starts"
    return
  fi
  xb_csr ec-p256 "dev-$N" "$XB_TMP/dev$N"
  xb_post "$(xb_enroll_body "dev-$N" "$XB_TMP/dev$N.der")"
  xb_eq "$1: enrolls" "$XB_STATUS" 200
  xb_save_cert "$XB_TMP/dev$N.pem"
  xb_check "$1: the certificate verifies" openssl verify -CAfile "$CA/root-ca.pem" \
    -untrusted "$CA/signing-ca.pem" "$XB_TMP/dev$N.pem"
  xb_stop_server
}

OPEN=("[enroll]" "mode = open")

# ---- encrypted PEM files ----
check_out "[ca]" "key = ca/enc8.key" "key_passphrase_file = pass.txt"
xb_eq "PKCS#8 encrypted key with passphrase file: --check OK" "$RC" 0
xb_write_config "${OPEN[@]}" "[ca]" "key = ca/enc8.key" "key_passphrase_file = pass.txt"
enroll_ok "PKCS#8 encrypted key"
xb_lacks "PKCS#8: the passphrase is not in the log" "$(cat "$XB_TMP/xbootd.log")" "$PASS"

xb_write_config "${OPEN[@]}" "[ca]" "key = ca/trad.key" "key_passphrase_file = pass.txt"
enroll_ok "traditional encrypted EC key"

chmod 644 "$XB_TMP/pass.txt"
check_out "[ca]" "key = ca/enc8.key" "key_passphrase_file = pass.txt"
xb_eq "a passphrase file readable by others: still OK" "$RC" 0
xb_contains "a passphrase file readable by others: warned" "$OUT" "readable by group or others"
chmod 600 "$XB_TMP/pass.txt"

check_refused "wrong passphrase (PKCS#8)" "wrong passphrase" \
  "[ca]" "key = ca/enc8.key" "key_passphrase_file = wrong.txt"
xb_contains "wrong passphrase: names the key" "$OUT" "enc8.key"
check_refused "wrong passphrase (traditional)" "wrong passphrase" \
  "[ca]" "key = ca/trad.key" "key_passphrase_file = wrong.txt"
check_refused "missing passphrase" "encrypted: set key_passphrase_file" "[ca]" "key = ca/enc8.key"
check_refused "missing passphrase file" "key_passphrase_file" \
  "[ca]" "key = ca/enc8.key" "key_passphrase_file = nowhere.txt"
check_refused "a passphrase in the config file itself" "key_passphrase" \
  "[ca]" "key = ca/enc8.key" "key_passphrase = $PASS"

xb_write_config "[ca]" "key = ca/enc8.key"
OUT=$(XBOOT_CA_KEY_PASSPHRASE="$PASS" "$XB_BIN/xbootd" --check -c "$CONF" 2>&1)
xb_eq "passphrase from XBOOT_CA_KEY_PASSPHRASE: --check OK" "$?" 0
OUT=$(XBOOT_CA_KEY_PASSPHRASE="$WRONG" "$XB_BIN/xbootd" --check -c "$CONF" 2>&1)
xb_eq "wrong XBOOT_CA_KEY_PASSPHRASE: exit 1" "$?" 1
xb_contains "wrong XBOOT_CA_KEY_PASSPHRASE: says so" "$OUT" "wrong passphrase (from environment variable XBOOT_CA_KEY_PASSPHRASE)"
xb_lacks "wrong XBOOT_CA_KEY_PASSPHRASE: not echoed" "$OUT" "$WRONG"
xb_write_config "${OPEN[@]}" "[ca]" "key = ca/enc8.key"
export XBOOT_CA_KEY_PASSPHRASE="$PASS"
enroll_ok "passphrase from XBOOT_CA_KEY_PASSPHRASE"
unset XBOOT_CA_KEY_PASSPHRASE

# ---- env:VARNAME ----
XB_TEST_CA_KEY=$(cat "$CA/signing-ca.key")
XB_TEST_CA_CERT=$(cat "$CA/signing-ca.pem")
export XB_TEST_CA_KEY XB_TEST_CA_CERT
xb_write_config "${OPEN[@]}" "[ca]" "key = env:XB_TEST_CA_KEY"
enroll_ok "key from env:XB_TEST_CA_KEY"
xb_contains "env: key: warned as development only" "$(cat "$XB_TMP/xbootd.log")" "development only"
# The original's App Settings held the certificate as PEM text too.
xb_write_config "${OPEN[@]}" "[ca]" "key = env:XB_TEST_CA_KEY" "cert = env:XB_TEST_CA_CERT"
enroll_ok "key and certificate from the environment"
unset XB_TEST_CA_KEY XB_TEST_CA_CERT
check_refused "env: variable not set" "XB_TEST_CA_KEY" "[ca]" "key = env:XB_TEST_CA_KEY"

# ---- refusals at start ----
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$CA/other.key" 2>/dev/null
check_refused "key and certificate do not match" "does not match the CA certificate" \
  "[ca]" "key = ca/other.key"
check_refused "a certificate that is not a CA" "is not a CA certificate" \
  "[ca]" "cert = ca/tls.pem" "key = ca/tls.key" "chain ="
check_refused "not a key" "is not a PEM private key" "[ca]" "key = ca/signing-ca.pem"
openssl genpkey -algorithm ED25519 -out "$CA/ed.key" 2>/dev/null
openssl req -x509 -key "$CA/ed.key" -subj "/CN=Ed CA" -days 30 -out "$CA/ed.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
check_refused "an Ed25519 CA key" "must be EC or RSA" \
  "[ca]" "cert = ca/ed.pem" "key = ca/ed.key" "chain ="
check_refused "a pkcs11: key naming no PKCS#11 module" "names no module" \
  "[ca]" "key = pkcs11:token=none;object=none"

# ---- https:// object store ----
OS="$XB_TMP/os"
mkdir -p "$OS/files"
xb_test_server_cert "$OS" "object store"
cp "$CA/signing-ca.pem" "$CA/chain.pem" "$CA/enc8.key" "$OS/files/"
TOKEN='sv=2022-11-02&sig=SECRETTOKEN'
timeout 240 "$XB_PYTHON" "$(dirname "$0")/file_server.py" "$OS/srv.pem" "$OS/srv.key" \
  "$OS/port" "$OS/requests.log" "$OS/files" "$TOKEN" 2>"$OS/server.err" &
OS_PID=$!
for i in $(seq 1 100); do [ -s "$OS/port" ] && break; sleep 0.1; done
PORT=$(cat "$OS/port" 2>/dev/null)
xb_check "the object store started" test -n "$PORT"
BASE="https://127.0.0.1:$PORT"
HTTPS_CFG=("[ca]" "cert = $BASE/signing-ca.pem?$TOKEN" "chain = $BASE/chain.pem?$TOKEN"
  "key = $BASE/enc8.key?$TOKEN" "key_passphrase_file = pass.txt" "https_ca_file = os/ca.pem")

xb_write_config "${OPEN[@]}" "${HTTPS_CFG[@]}"
enroll_ok "cert, chain and key over https"
LOG=$(cat "$XB_TMP/xbootd.log")
xb_lacks "https: the token is not in xbootd's log" "$LOG" "SECRETTOKEN"
REQS=$(cat "$OS/requests.log" 2>/dev/null)
xb_contains "https: the store saw the key fetched with its token" "$REQS" "/enc8.key?$TOKEN"
xb_contains "https: the store saw the chain fetched" "$REQS" "/chain.pem?$TOKEN"

check_refused "https: a missing object" "$BASE/missing.key" \
  "${HTTPS_CFG[@]}" "key = $BASE/missing.key?$TOKEN"
xb_contains "https: a missing object: the status" "$OUT" "404"
xb_lacks "https: a missing object: no token" "$OUT" "SECRETTOKEN"
check_refused "https: a wrong token" "403" "${HTTPS_CFG[@]}" "cert = $BASE/signing-ca.pem?sig=WRONG"
check_refused "https: userinfo is not shown" "$BASE/missing.key" \
  "${HTTPS_CFG[@]}" "key = https://user:SECRETPASS@127.0.0.1:$PORT/missing.key?$TOKEN"
xb_lacks "https: userinfo: no password" "$OUT" "SECRETPASS"
xb_lacks "https: userinfo: no token" "$OUT" "SECRETTOKEN"
check_refused "https: the store's certificate is not trusted" "cannot fetch" \
  "${HTTPS_CFG[@]}" "https_ca_file ="
xb_lacks "https: untrusted: no token" "$OUT" "SECRETTOKEN"
check_refused "https: plain http is refused" "must be https" \
  "${HTTPS_CFG[@]}" "key = http://127.0.0.1:$PORT/enc8.key?$TOKEN"

# A start that fails on a fetch writes the same message to the log, without the token.
xb_write_config "${OPEN[@]}" "${HTTPS_CFG[@]}" "key = $BASE/missing.key?$TOKEN"
: >"$XB_TMP/xbootd.log"
timeout 20 "$XB_BIN/xbootd" -c "$CONF" 2>"$XB_TMP/xbootd.log"
xb_eq "https: xbootd refuses to start on a failed fetch" "$?" 1
LOG=$(cat "$XB_TMP/xbootd.log")
xb_contains "https: the start failure names the URL" "$LOG" "$BASE/missing.key"
xb_lacks "https: the start failure log has no token" "$LOG" "SECRETTOKEN"

xb_stop_pid "$OS_PID" 5
xb_finish
