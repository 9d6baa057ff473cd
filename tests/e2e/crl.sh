#!/usr/bin/env bash
# The CRL with real clients (curl, openssl): GET /crl serves a DER CRL signed by the signing CA;
# a revocation (xbootctl cert revoke, device disable --revoke) puts the serial in the next one
# with its reason and a higher CRL number; openssl verify -crl_check then fails for the revoked
# certificate and passes for another; the same bytes are served until something changes (no
# per-request signing); xbootctl crl --out writes the same CRL; nextUpdate is configurable;
# with [ca] crl_url certificates name the CRL's URL (fetched from there and used to verify), and
# without it they name none.
. "$(dirname "$0")/lib.sh"

ctl() { "$XB_BIN/xbootctl" "$@" --db "$XB_DB_URL" 2>"$XB_TMP/err"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
serial_upper() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
# get_crl FILE: GET /crl into FILE (DER); sets XB_STATUS and XB_HEADERS.
get_crl() {
  XB_HEADERS=$(curl -s -D - -o "$1" --max-time 10 --cacert "$XB_TMP/ca/root-ca.pem" "$XB_URL/crl")
  XB_STATUS=$(sed -n '1s/^HTTP[^ ]* \([0-9]*\).*/\1/p' <<<"$XB_HEADERS")
}
crl_number() { echo $(( $(openssl crl -inform DER -in "$1" -noout -crlnumber | cut -d= -f2) )); }
enroll() { # enroll ID: the device's certificate in $XB_TMP/ID.pem
  xb_csr ec-p256 "$1" "$XB_TMP/$1"
  xb_post "$(xb_enroll_body "$1" "$XB_TMP/$1.der")"
  xb_save_cert "$XB_TMP/$1.pem"
}
verify_with_crl() { # verify_with_crl CERT CRL_PEM
  openssl verify -crl_check -CRLfile "$2" -CAfile "$XB_TMP/ca/root-ca.pem" \
    -untrusted "$XB_TMP/ca/signing-ca.pem" "$1" >/dev/null 2>&1
}

xb_ca_init
xb_write_config "[enroll]" "mode = open" "[crl]" "next_update_hours = 6"
xb_start_server || { xb_bad "xbootd starts"; xb_finish; exit 1; }
enroll dev-a
enroll dev-b
xb_check "two devices enrolled" test -s "$XB_TMP/dev-a.pem" -a -s "$XB_TMP/dev-b.pem"

# ---- the first CRL: empty, signed by the signing CA ----
get_crl "$XB_TMP/c1.der"
xb_eq "GET /crl: 200" "$XB_STATUS" 200
xb_eq "... Content-Type application/pkix-crl" "$(xb_header Content-Type | tr -d '\r')" "application/pkix-crl"
age=$(xb_header Cache-Control | tr -d '\r' | sed -n 's/.*max-age=\([0-9]*\).*/\1/p')
xb_check "... Cache-Control max-age until nextUpdate (<= 6 h, > 5 h)" test "${age:-0}" -le 21600 -a "${age:-0}" -gt 18000
xb_contains "... verifies against the signing CA" \
  "$(openssl crl -inform DER -in "$XB_TMP/c1.der" -CAfile "$XB_TMP/ca/chain.pem" -noout 2>&1)" "verify OK"
text=$(openssl crl -inform DER -in "$XB_TMP/c1.der" -noout -text)
xb_contains "... no revoked certificates yet" "$text" "No Revoked Certificates"
xb_contains "... issuer is the signing CA" "$text" "CN = XBoot Signing CA"
xb_contains "... carries an authority key identifier" "$text" "Authority Key Identifier"
n1=$(crl_number "$XB_TMP/c1.der")
lu=$(openssl crl -inform DER -in "$XB_TMP/c1.der" -noout -lastupdate | cut -d= -f2)
nu=$(openssl crl -inform DER -in "$XB_TMP/c1.der" -noout -nextupdate | cut -d= -f2)
xb_eq "nextUpdate = thisUpdate + next_update_hours (6)" $(( $(date -d "$nu" +%s) - $(date -d "$lu" +%s) )) 21600
get_crl "$XB_TMP/c1b.der"
xb_check "a second GET: the same bytes (not signed again)" cmp -s "$XB_TMP/c1.der" "$XB_TMP/c1b.der"
xb_eq "... signed once: one 'CRL ... signed' log line" "$(grep -c 'CRL [0-9]* signed' "$XB_TMP/xbootd.log")" 1

# ---- revoke dev-a's certificate (xbootctl without the CA: xbootd signs on the next GET) ----
sa=$(serial_of "$XB_TMP/dev-a.pem")
ctl cert revoke "$sa" --reason keyCompromise >/dev/null
xb_eq "cert revoke: exit 0" "$?" 0
get_crl "$XB_TMP/c2.der"
n2=$(crl_number "$XB_TMP/c2.der")
xb_check "the CRL number increased ($n1 -> $n2)" test "$n2" -gt "$n1"
text=$(openssl crl -inform DER -in "$XB_TMP/c2.der" -noout -text)
xb_contains "the revoked serial is listed" "$text" "Serial Number: $(serial_upper "$XB_TMP/dev-a.pem")"
xb_contains "... with its reason" "$text" "Key Compromise"
xb_lacks "dev-b's serial is not" "$text" "$(serial_upper "$XB_TMP/dev-b.pem")"
openssl crl -inform DER -in "$XB_TMP/c2.der" -out "$XB_TMP/c2.pem"
if verify_with_crl "$XB_TMP/dev-a.pem" "$XB_TMP/c2.pem"; then
  xb_bad "openssl verify -crl_check: the revoked certificate FAILS"
else
  xb_ok "openssl verify -crl_check: the revoked certificate FAILS"
fi
xb_contains "... because it is revoked" \
  "$(openssl verify -crl_check -CRLfile "$XB_TMP/c2.pem" -CAfile "$XB_TMP/ca/root-ca.pem" -untrusted "$XB_TMP/ca/signing-ca.pem" "$XB_TMP/dev-a.pem" 2>&1)" "certificate revoked"
xb_check "openssl verify -crl_check: an unrevoked certificate PASSES" verify_with_crl "$XB_TMP/dev-b.pem" "$XB_TMP/c2.pem"
get_crl "$XB_TMP/c2b.der"
xb_check "GET again: identical bytes until the next revocation" cmp -s "$XB_TMP/c2.der" "$XB_TMP/c2b.der"

# ---- xbootctl crl --out writes the same CRL ----
ctl crl --out "$XB_TMP/ctl.der" >/dev/null
xb_eq "xbootctl crl --out: exit 0" "$?" 0
xb_check "... the same bytes as GET /crl" cmp -s "$XB_TMP/c2.der" "$XB_TMP/ctl.der"
ctl crl --out "$XB_TMP/ctl.pem" --pem >/dev/null
xb_check "... --pem: the same CRL as PEM" cmp -s "$XB_TMP/c2.pem" "$XB_TMP/ctl.pem"
ctl crl >/dev/null
xb_eq "xbootctl crl without --out: usage error (2)" "$?" 2

# ---- device disable --revoke, with the CA: the CRL is signed by xbootctl at once ----
enroll dev-c
cp "$XB_TMP/dev-c.pem" "$XB_TMP/dev-c1.pem"
xb_sql "update devices set enrolled_at = NULL where reg_id = 'dev-c';" # a second one
enroll dev-c
out=$(ctl device disable dev-c --revoke --ca "$XB_TMP/ca" --next-update-hours 6); rc=$?
xb_eq "device disable --revoke --ca: exit 0" "$rc" 0
xb_contains "... revoked both certificates" "$out" "dev-c: disabled, 2 certificates revoked (cessationOfOperation)"
xb_contains "... and signed the CRL" "$out" "signed"
xb_eq "... the device is disabled" "$(xb_sql "select enabled from devices where reg_id='dev-c';")" 0
xb_eq "... no certificate of it unrevoked" "$(xb_sql "select count(*) from certificates where reg_id='dev-c' and revoked_at is null;")" 0
ctl crl --out "$XB_TMP/c3.der" >/dev/null
get_crl "$XB_TMP/c3get.der"
xb_check "GET /crl serves the CRL xbootctl signed (no second signature)" cmp -s "$XB_TMP/c3.der" "$XB_TMP/c3get.der"
text=$(openssl crl -inform DER -in "$XB_TMP/c3.der" -noout -text)
xb_contains "both of dev-c's certificates listed: the first" "$text" "Serial Number: $(serial_upper "$XB_TMP/dev-c1.pem")"
xb_contains "... and the second" "$text" "Serial Number: $(serial_upper "$XB_TMP/dev-c.pem")"
xb_contains "... as cessationOfOperation" "$text" "Cessation Of Operation"
xb_contains "... dev-a still listed" "$text" "Serial Number: $(serial_upper "$XB_TMP/dev-a.pem")"
xb_eq "CRL numbers: three CRLs made" "$(crl_number "$XB_TMP/c3.der")" 3
out=$(ctl device disable dev-b --reason superseded); rc=$?
xb_eq "device disable --reason without --revoke: usage error (2)" "$rc" 2
out=$(ctl device disable nope --revoke); rc=$?
xb_eq "device disable --revoke of an unknown device: exit 1" "$rc" 1

# ---- nextUpdate follows the configuration: a new lifetime means a new CRL ----
xb_stop_server
xb_write_config "[enroll]" "mode = open" "[crl]" "next_update_hours = 2"
xb_start_server || { xb_bad "xbootd restarts"; xb_finish; exit 1; }
get_crl "$XB_TMP/c4.der"
lu=$(openssl crl -inform DER -in "$XB_TMP/c4.der" -noout -lastupdate | cut -d= -f2)
nu=$(openssl crl -inform DER -in "$XB_TMP/c4.der" -noout -nextupdate | cut -d= -f2)
xb_eq "next_update_hours = 2: nextUpdate 2 h after thisUpdate" $(( $(date -d "$nu" +%s) - $(date -d "$lu" +%s) )) 7200
xb_eq "... CRL number 4" "$(crl_number "$XB_TMP/c4.der")" 4
XB_STATUS=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$XB_TMP/ca/root-ca.pem" -X POST "$XB_URL/crl")
xb_eq "POST /crl: 405" "$XB_STATUS" 405

# ---- [ca] crl_url: certificates name where their CRL is (RFC 5280 4.2.1.13) ----
cdp_text() { openssl x509 -in "$1" -noout -ext crlDistributionPoints 2>&1; }
cdp_uris() { cdp_text "$1" | sed -n 's/^ *URI://p'; }
xb_eq "crl_url unset: no CRL distribution point in dev-a's certificate" "$(cdp_uris "$XB_TMP/dev-a.pem")" ""
xb_lacks "... nor in openssl x509 -text" "$(openssl x509 -in "$XB_TMP/dev-c.pem" -noout -text)" "CRL Distribution"

conf_fails() { # conf_fails "what" NEEDLE [config lines...]: xbootd --check refuses, naming NEEDLE
  local what=$1 needle=$2; shift 2
  xb_write_config "$@"
  out=$("$XB_BIN/xbootd" --check -c "$XB_TMP/xboot.conf" 2>&1); rc=$?
  xb_eq "--check $what: exit 1" "$rc" 1
  xb_contains "--check $what: the message names the key" "$out" "$needle"
}
conf_fails "crl_url = ldap://..." "[ca] crl_url must start with http:// or https://" \
  "[ca]" "crl_url = ldap://127.0.0.1/cn=crl"
conf_fails "crl_url with a space" "[ca] crl_url holds a space" "[ca]" "crl_url = http://127.0.0.1/a b"

# The URL is the server's own plain-HTTP /crl (as CRLs are usually published: a relying party
# checking a TLS certificate's revocation should not need TLS to do it). Its port is learnt
# from a first start on port 0, then fixed.
xb_stop_server
xb_write_config "[server]" "http_listen = 127.0.0.1:0"
xb_start_server || { xb_bad "xbootd starts with http_listen"; xb_finish; exit 1; }
hport=${XB_HTTP_URL##*:}
xb_stop_server
crl_url="http://127.0.0.1:$hport/crl"
xb_write_config "[server]" "http_listen = 127.0.0.1:$hport" "[ca]" "crl_url = $crl_url" \
  "[enroll]" "mode = open"
xb_start_server || { xb_bad "xbootd starts with crl_url = $crl_url"; xb_finish; exit 1; }
xb_eq "... listening on the port crl_url names" "$XB_HTTP_URL" "http://127.0.0.1:$hport"
enroll dev-d
xb_check "crl_url set: dev-d enrolled" test -s "$XB_TMP/dev-d.pem"
text=$(openssl x509 -in "$XB_TMP/dev-d.pem" -noout -text)
xb_contains "openssl x509 -text shows the extension" "$text" "X509v3 CRL Distribution Points:"
xb_lacks "... not critical" "$text" "CRL Distribution Points: critical"
xb_contains "... with the URI" "$text" "URI:$crl_url"
xb_eq "the certificate's only CDP URI is the configured crl_url" "$(cdp_uris "$XB_TMP/dev-d.pem")" "$crl_url"
xb_eq "... one full name, no reasons, no CRL issuer" \
  "$(cdp_text "$XB_TMP/dev-d.pem" | sed 's/ *$//' | tr '\n' '|')" "X509v3 CRL Distribution Points:|    Full Name:|      URI:$crl_url|"
xb_contains "GnuTLS certtool reads the same distribution point" \
  "$(certtool -i --infile "$XB_TMP/dev-d.pem" 2>&1)" "URI: $crl_url"
# Fetch the CRL where the certificate says it is (127.0.0.1 only) and check the certificate with it.
uri=$(cdp_uris "$XB_TMP/dev-d.pem")
case "$uri" in
  http://127.0.0.1:*) XB_STATUS=$(curl -s -o "$XB_TMP/cdp.der" -w '%{http_code}' --max-time 10 "$uri") ;;
  *) XB_STATUS="not fetched: $uri" ;;
esac
xb_eq "GET the certificate's CDP URI: 200" "$XB_STATUS" 200
openssl crl -inform DER -in "$XB_TMP/cdp.der" -out "$XB_TMP/cdp.pem" 2>/dev/null
xb_check "... a CRL that openssl verify -crl_check accepts dev-d with" verify_with_crl "$XB_TMP/dev-d.pem" "$XB_TMP/cdp.pem"
if verify_with_crl "$XB_TMP/dev-a.pem" "$XB_TMP/cdp.pem"; then
  xb_bad "... and that still lists dev-a as revoked"
else
  xb_ok "... and that still lists dev-a as revoked"
fi
xb_lacks "the CRL itself names no distribution point" \
  "$(openssl crl -in "$XB_TMP/cdp.pem" -noout -text)" "Distribution"

xb_finish
