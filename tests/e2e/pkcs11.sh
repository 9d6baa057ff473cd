#!/usr/bin/env bash
# The signing CA key in a PKCS#11 token (SoftHSM2, tokens under $XB_TMP): `xbootctl ca init
# --pkcs11` generates it in the token, not extractable, and writes no signing-ca.key; xbootd
# with `[ca] key = pkcs11:...` issues certificates that verify, EC P-256 and RSA-2048; the
# token taken away mid-run gives 503 and a failing /healthz, and putting it back recovers
# without a restart. Skipped (exit 0, with a note) when SoftHSM2 or pkcs11-tool is missing.
. "$(dirname "$0")/lib.sh"

XB_MODULE=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
  /usr/lib64/pkcs11/libsofthsm2.so; do
  [ -r "$m" ] && { XB_MODULE=$m; break; }
done
if [ -z "$XB_MODULE" ] || ! command -v softhsm2-util >/dev/null || ! command -v pkcs11-tool >/dev/null; then
  echo "skip: SoftHSM2 or pkcs11-tool (opensc) not installed"
  exit 0
fi

export SOFTHSM2_CONF="$XB_TMP/softhsm2.conf"
mkdir -p "$XB_TMP/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$XB_TMP" >"$SOFTHSM2_CONF"
# A PIN that cannot turn up in a log by accident (a port, a time), so its absence means something.
PIN=Xb-p1n-Q7
printf '%s\n' "$PIN" >"$XB_TMP/pin"
chmod 600 "$XB_TMP/pin"

p11tool() { pkcs11-tool --module "$XB_MODULE" "$@" 2>/dev/null; }

healthz() { # the status of /healthz
  curl -s -o "$XB_TMP/health.json" -w '%{http_code}' --max-time 10 \
    --cacert "$XB_TMP/ca/root-ca.pem" "$XB_URL/healthz"
}

enroll() { # enroll ID: XB_STATUS, XB_BODY of one enrollment with a new EC key
  xb_csr ec-p256 "$1" "$XB_TMP/$1"
  xb_post "$(xb_enroll_body "$1" "$XB_TMP/$1.der")"
}

run_for_key() { # run_for_key TOKEN KEY_TYPE
  local token=$1 type=$2 uri
  rm -rf "$XB_TMP/ca"
  xb_db_reset
  softhsm2-util --init-token --free --label "$token" --pin "$PIN" --so-pin 5678 >/dev/null
  # The PIN from a file in xbootd's configuration; pin-value for ca init (both are RFC 7512).
  uri="pkcs11:token=$token;object=signing?module-path=$XB_MODULE"
  xb_check "$type: ca init --pkcs11" \
    sh -c "'$XB_BIN/xbootctl' ca init --dir '$XB_TMP/ca' --key-type $type --pkcs11 '$uri&pin-value=$PIN' >/dev/null"
  xb_check "$type: no signing-ca.key written" test ! -e "$XB_TMP/ca/signing-ca.key"
  # ca rotate would make a file key: it refuses rather than move the CA out of the token.
  "$XB_BIN/xbootctl" ca rotate --dir "$XB_TMP/ca" >/dev/null 2>"$XB_TMP/rotate.err"
  xb_eq "$type: ca rotate refuses a token-held signing key" "$?" 1
  xb_contains "$type: ... saying why" "$(cat "$XB_TMP/rotate.err")" "not a file"
  xb_check "$type: ... and writes nothing" test ! -e "$XB_TMP/ca/previous.pem"
  xb_check "$type: signing-ca.pem verifies against the root" \
    openssl verify -CAfile "$XB_TMP/ca/root-ca.pem" "$XB_TMP/ca/signing-ca.pem"
  local objs access
  objs=$(p11tool --token-label "$token" --login --pin "$PIN" -O --type privkey)
  access=$(grep 'Access:' <<<"$objs")
  xb_contains "$type: the private key is in the token" "$objs" "label:      signing"
  xb_contains "$type: the private key is never extractable" "$access" "never extractable"
  xb_contains "$type: and sensitive" "$access" "sensitive"
  # pkcs11-tool says "extractable" on its own (after ':' or ',') for CKA_EXTRACTABLE true.
  xb_check "$type: CKA_EXTRACTABLE false" sh -c "! echo '$access' | grep -Eq '[:,] +extractable'"
  # The certificate's key is the token's.
  p11tool --token-label "$token" --read-object --type pubkey --label signing -o "$XB_TMP/pub.der"
  xb_eq "$type: signing-ca.pem holds the token's public key" \
    "$(openssl pkey -pubin -inform DER -in "$XB_TMP/pub.der" -outform DER 2>/dev/null | sha256sum)" \
    "$(openssl x509 -in "$XB_TMP/ca/signing-ca.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)"
  xb_check "$type: ca init again refuses to make a second key" \
    sh -c "! '$XB_BIN/xbootctl' ca init --dir '$XB_TMP/ca2-$token' --key-type $type --pkcs11 '$uri&pin-value=$PIN' 2>/dev/null"

  # The module from the URI (EC), or from [ca] pkcs11_module (RSA).
  if [ "$type" = ec-p256 ]; then
    xb_write_config "[ca]" "key = $uri&pin-source=file:$XB_TMP/pin"
  else
    xb_write_config "[ca]" "key = pkcs11:token=$token;object=signing?pin-source=file:$XB_TMP/pin" \
      "pkcs11_module = $XB_MODULE"
  fi
  xb_start_server || { xb_bad "$type: xbootd starts with the PKCS#11 key"; return; }
  xb_lacks "$type: the PIN is not logged" "$(cat "$XB_TMP/xbootd.log")" "$PIN"
  local id="dev-p11-$type"
  xb_ctl device add "$id" >/dev/null
  enroll "$id"
  xb_eq "$type: issued by the token" "$XB_STATUS" 200
  xb_save_cert "$XB_TMP/$id.pem"
  xb_check "$type: the certificate verifies against root + signing CA" \
    openssl verify -CAfile "$XB_TMP/ca/root-ca.pem" -untrusted "$XB_TMP/ca/signing-ca.pem" \
    "$XB_TMP/$id.pem"
  xb_eq "$type: /healthz 200" "$(healthz)" 200

  # The token goes away (its directory moved: SoftHSM2 then finds neither the key's file nor,
  # after a re-initialization, the token).
  mv "$XB_TMP/tokens" "$XB_TMP/tokens.away" && mkdir "$XB_TMP/tokens"
  xb_ctl device add "$id-2" >/dev/null
  enroll "$id-2"
  xb_eq "$type: token gone: 503" "$XB_STATUS" 503
  xb_eq "$type: token gone: error code" "$(xb_json error)" "ca_unavailable"
  xb_check "$type: token gone: a message" test -n "$(xb_json message)"
  xb_lacks "$type: token gone: the PIN is not in the answer" "$XB_BODY" "$PIN"
  xb_check "$type: token gone: /healthz fails" test "$(healthz)" != 200
  xb_eq "$type: token gone: nothing recorded" "$(xb_cert_rows "$id-2")" 0

  rmdir "$XB_TMP/tokens" && mv "$XB_TMP/tokens.away" "$XB_TMP/tokens"
  local i st=""
  for i in $(seq 1 30); do # retries are at most once a second per worker: bounded, 15 s
    enroll "$id-2"
    st=$XB_STATUS
    [ "$st" = 200 ] && break
    sleep 0.5
  done
  xb_eq "$type: token back: issued again, same xbootd" "$st" 200
  xb_save_cert "$XB_TMP/$id-2.pem"
  xb_check "$type: token back: the certificate verifies" \
    openssl verify -CAfile "$XB_TMP/ca/root-ca.pem" -untrusted "$XB_TMP/ca/signing-ca.pem" \
    "$XB_TMP/$id-2.pem"
  # Every worker reconnects on its own (at most once a second): 4 answers of 200 in a row, from
  # whichever workers the kernel picks, before calling it recovered. Bounded: 40 tries.
  local in_row=0
  for i in $(seq 1 40); do
    if [ "$(healthz)" = 200 ]; then
      in_row=$((in_row + 1)); [ "$in_row" -ge 4 ] && break
    else
      in_row=0; sleep 0.3
    fi
  done
  xb_check "$type: token back: /healthz 200 (4 in a row)" test "$in_row" -ge 4
  xb_check "$type: xbootd did not restart" kill -0 "$XB_PID"
  # A reload (SIGHUP) opens the token again in the supervisor and in each worker, beside the
  # open session (the module is shared, not finalized under it), and keeps issuing.
  kill -HUP "$XB_PID"
  # Bounded by 30 s: under ASan on a loaded 2-core CI machine each C_Login alone takes seconds.
  for i in $(seq 1 300); do
    [ "$(grep -c 'worker [0-9]*: CA reloaded' "$XB_TMP/xbootd.log")" -ge 2 ] && break
    sleep 0.1
  done
  local reloaded
  reloaded=$(grep -c 'worker [0-9]*: CA reloaded' "$XB_TMP/xbootd.log")
  xb_eq "$type: SIGHUP: both workers reloaded the token's key" "$reloaded" 2
  [ "$reloaded" = 2 ] || grep -E 'SIGHUP|reload|worker' "$XB_TMP/xbootd.log" | tail -20
  xb_ctl device add "$id-3" "$id-4" >/dev/null
  enroll "$id-3"
  xb_eq "$type: after the reload: issued" "$XB_STATUS" 200
  enroll "$id-4"
  xb_eq "$type: after the reload: issued again (either worker)" "$XB_STATUS" 200
  xb_stop_server
}

run_for_key xb-ec ec-p256
run_for_key xb-rsa rsa-2048
xb_finish
