#!/usr/bin/env bash
# Crash safety of the device store: libxboot's test hook kills the enrolling process with
# SIGKILL before each file-system step of the store's write in turn (tests/helpers/store_crash.c).
# After every kill the store must hold either the old certificate or the new one, complete and
# valid (key, certificate, chain and .pfx of one generation), never a mix or a half-written file.
. "$(dirname "$0")/lib.sh"

xb_ca_init
xb_write_config "[enroll]" "mode = allowlist" "allow_reenroll = true"
xb_ctl device add crash-dev first-dev >/dev/null
xb_start_server || { xb_bad "xbootd starts"; xb_finish; exit 1; }
HELPER="$XB_BIN/store_crash"
TRUST="$XB_TMP/ca/root-ca.pem"

# The files a user reads (through the visible links) belong together: the certificate's key is
# the key file's, the .pfx holds the same certificate, and the chain verifies it.
visible_files_agree() {
  local dir=$1
  local cert_key key_key pfx_cert
  cert_key=$(openssl x509 -in "$dir/device.pem" -noout -pubkey 2>/dev/null) || return 1
  key_key=$(openssl pkey -in "$dir/device.key" -pubout 2>/dev/null) || return 1
  [ -n "$cert_key" ] && [ "$cert_key" = "$key_key" ] || return 1
  pfx_cert=$(openssl pkcs12 -in "$dir/device.pfx" -passin pass:test -clcerts -nokeys 2>/dev/null |
    openssl x509 -noout -fingerprint 2>/dev/null) || return 1
  [ "$pfx_cert" = "$(openssl x509 -in "$dir/device.pem" -noout -fingerprint)" ] || return 1
  openssl verify -CAfile "$TRUST" -untrusted "$dir/chain.pem" "$dir/device.pem" >/dev/null 2>&1
}

# --- replacing a stored certificate -------------------------------------------------------
STORE="$XB_TMP/store"
"$HELPER" enroll "$XB_URL" "$TRUST" crash-dev "$STORE" 0
xb_eq "first enrollment completes" "$?" 0
serial=$("$HELPER" check "$TRUST" crash-dev "$STORE")
xb_contains "the store holds a valid certificate" "$serial" "valid "

kills=0 kept_old=0 took_new=0 bad=0 completed=0
for step in $(seq 1 40); do # bounded: the write has fewer steps than this
  { "$HELPER" enroll "$XB_URL" "$TRUST" crash-dev "$STORE" "$step"; } 2>/dev/null
  rc=$?
  after=$("$HELPER" check "$TRUST" crash-dev "$STORE")
  if [ "$rc" = 137 ]; then kills=$((kills + 1)); fi
  case "$after" in
    "$serial") kept_old=$((kept_old + 1)) ;;
    valid\ *) took_new=$((took_new + 1)) ;;
    *) bad=$((bad + 1)); echo "     step $step (rc $rc): $after" ;;
  esac
  visible_files_agree "$STORE" || { bad=$((bad + 1)); echo "     step $step: visible files disagree"; }
  serial=$after
  if [ "$rc" = 0 ]; then completed=1; break; fi
  [ "$rc" = 137 ] || { bad=$((bad + 1)); echo "     step $step: exit $rc"; break; }
done
xb_eq "a write was killed at every step until one completed" "$completed" 1
xb_check "the write has several steps to kill ($kills)" test "$kills" -ge 8
xb_check "early kills keep the old certificate ($kept_old)" test "$kept_old" -ge 1
xb_check "late kills leave the new certificate ($took_new)" test "$took_new" -ge 1
xb_eq "after every kill the store was old or new, complete and consistent" "$bad" 0
gens=$(find "$STORE" -maxdepth 1 -name '..gen-*' | wc -l)
xb_eq "the completed write removed old and orphaned generations" "$gens" 1

# --- the very first enrollment --------------------------------------------------------------
bad=0 empty=0 completed=0
for step in $(seq 1 40); do
  FIRST="$XB_TMP/first-$step"
  { "$HELPER" enroll "$XB_URL" "$TRUST" first-dev "$FIRST" "$step"; } 2>/dev/null
  rc=$?
  after=$("$HELPER" check "$TRUST" first-dev "$FIRST")
  case "$after" in
    empty) empty=$((empty + 1))
      # nothing may be visible: no certificate without its key, no half a store
      [ ! -e "$FIRST/device.pem" ] && [ ! -e "$FIRST/device.key" ] || { bad=$((bad + 1)); echo "     step $step: files visible in an empty store"; } ;;
    valid\ *) visible_files_agree "$FIRST" || { bad=$((bad + 1)); echo "     step $step: visible files disagree"; } ;;
    *) bad=$((bad + 1)); echo "     step $step (rc $rc): $after" ;;
  esac
  if [ "$rc" = 0 ]; then completed=1; break; fi
done
xb_eq "first enrollment: a kill at any step leaves nothing or everything" "$bad" 0
xb_check "first enrollment: early kills leave an empty store ($empty)" test "$empty" -ge 1
xb_eq "first enrollment: a run without a kill completes" "$completed" 1

xb_finish
