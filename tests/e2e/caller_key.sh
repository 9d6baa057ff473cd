#!/usr/bin/env bash
# Keys as objects: a key the caller supplies as an EVP_PKEY (a TPM or PKCS#11 key would come
# this way) signs the CSR, is checked against the issued certificate, and is never written to
# the store; the idempotence check works with it too (tests/helpers/caller_key.c).
. "$(dirname "$0")/lib.sh"

xb_ca_init
xb_write_config "[enroll]" "mode = allowlist"
xb_ctl device add held-key-dev >/dev/null
xb_start_server || { xb_bad "xbootd starts"; xb_finish; exit 1; }
TRUST="$XB_TMP/ca/root-ca.pem"
STORE="$XB_TMP/store"
mkdir -p "$XB_TMP/token"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$XB_TMP/token/a.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$XB_TMP/token/b.key" 2>/dev/null
openssl genpkey -algorithm ED25519 -out "$XB_TMP/token/ed.key" 2>/dev/null

out=$("$XB_BIN/caller_key" "$XB_URL" "$TRUST" held-key-dev "$STORE" "$XB_TMP/token/a.key")
xb_eq "enrollment with a caller-held P-384 key" "$out" issued
xb_check "the store holds no key file" test ! -e "$STORE/device.key"
xb_eq "the certificate is for the caller's key" \
  "$(openssl x509 -in "$STORE/device.pem" -noout -pubkey)" "$(openssl pkey -in "$XB_TMP/token/a.key" -pubout)"
xb_check "the certificate verifies" openssl verify -CAfile "$TRUST" -untrusted "$STORE/chain.pem" "$STORE/device.pem"

out=$("$XB_BIN/caller_key" "$XB_URL" "$TRUST" held-key-dev "$STORE" "$XB_TMP/token/a.key")
xb_eq "a second run with the same key is a no-op" "$out" unchanged
xb_eq "still one certificate" "$(xb_cert_rows)" 1

before=$(sha256sum "$STORE/device.pem")
out=$("$XB_BIN/caller_key" "$XB_URL" "$TRUST" held-key-dev "$STORE" "$XB_TMP/token/b.key")
xb_contains "another key does not match the stored certificate, so it enrolls and is refused" "$out" "already_enrolled"
xb_eq "the refused attempt left the store as it was" "$(sha256sum "$STORE/device.pem")" "$before"

out=$("$XB_BIN/caller_key" "$XB_URL" "$TRUST" held-key-dev "$XB_TMP/store-ed" "$XB_TMP/token/ed.key")
xb_contains "a key type XBoot servers refuse is refused on the device, before sending" "$out" "key_error"
xb_eq "nothing was issued for it" "$(xb_cert_rows)" 1
xb_finish
