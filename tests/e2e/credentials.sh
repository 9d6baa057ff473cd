#!/usr/bin/env bash
# Who may enroll (src/server/policy.c), through both APIs: a per-device secret, a group-derived
# key (checked against an independent openssl computation), a manufacturer certificate
# (IDevID), the API key alone; each wrong credential refused with 401 and nothing recorded;
# the one-time bootstrap; 32 parallel enrollments of one ID give exactly one certificate; no
# secret ever reaches the log.
. "$(dirname "$0")/lib.sh"

ROOT="$XB_TMP/ca/root-ca.pem"
xb_ca_init
API_KEY="fk-$(openssl rand -hex 16)"

# ---- a manufacturer CA and IDevIDs made by it, and a foreign one ----
mca() { # mca NAME: a CA key and certificate in $XB_TMP/NAME.{key,pem}
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
    -keyout "$XB_TMP/$1.key" -out "$XB_TMP/$1.pem" -days 2 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
}
idevid() { # idevid CA CN OUT: a client certificate for CN under CA
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=Acme/CN=$2" \
    -keyout "$3.key" -out "$3.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' >"$XB_TMP/idevid.ext"
  openssl x509 -req -in "$3.csr" -CA "$XB_TMP/$1.pem" -CAkey "$XB_TMP/$1.key" -CAcreateserial \
    -days 1 -extfile "$XB_TMP/idevid.ext" -out "$3.pem" 2>/dev/null
}
mca acme-ca
mca other-ca
idevid acme-ca m-1 "$XB_TMP/m1"
idevid acme-ca m-2 "$XB_TMP/m2"
idevid other-ca m-3 "$XB_TMP/m3"

xb_write_config "[enroll]" "api_key = $API_KEY" "[policy]" "manufacturer_ca = $XB_TMP/acme-ca.pem"
xb_start_server || { xb_bad "xbootd starts"; xb_finish; exit 1; }

# post ID DER [curl args...]: the JSON API with no function key unless given
post() { local id=$1 der=$2; shift 2; xb_post "$(xb_enroll_body "$id" "$der")" "" "$@"; }
expect_401() { # expect_401 "what" ID [reason]: 401, WWW-Authenticate, nothing recorded for ID
  xb_eq "$1: 401 unauthorized" "$XB_STATUS $(xb_json error)" "401 unauthorized"
  [ -z "${3:-}" ] || xb_contains "$1: reason" "$(xb_json message)" "$3"
  xb_eq "$1: nothing recorded" "$(xb_cert_rows "$2")" 0
}
verifies() { # verifies "what": the last answer's certificate chains to the root
  xb_save_cert "$XB_TMP/got.pem"
  xb_json Chain.0 | base64 -d | openssl x509 -inform DER -out "$XB_TMP/chain.pem" 2>/dev/null
  xb_check "$1: openssl verify" openssl verify -CAfile "$ROOT" -untrusted "$XB_TMP/chain.pem" \
    -purpose sslclient "$XB_TMP/got.pem"
}
row() { xb_sql "select source || ' ' || coalesce(group_name, '-') from devices where reg_id = '$1';"; }

# ---- per-device secret ----
out=$(xb_ctl device add s-1 --secret 2>"$XB_TMP/err")
secret=$(awk '{print $NF}' <<<"$out")
xb_check "device add --secret prints a 44-character base64 secret" \
  grep -Eq '^[A-Za-z0-9+/]{43}=$' <<<"$secret"
if xb_backend_is sqlite; then
  xb_check "the secret is not in the registry file" bash -c "! grep -qaF -- '$secret' '$XB_DB'"
else # the cluster's files (tables and WAL) and every row of the registry
  xb_check "the secret is not in the registry's files" bash -c "! grep -rqaF -- '$secret' '$XB_PG_DATA'"
  xb_lacks "the secret is not in the registry" "$(xb_db_dump)" "$secret"
fi
xb_csr ec-p256 s-1 "$XB_TMP/s1"
post s-1 "$XB_TMP/s1.der"
expect_401 "secret device, no credential" s-1 "credentials required"
post s-1 "$XB_TMP/s1.der" -u "s-1:"
expect_401 "secret device, empty password" s-1 "not a valid credential"
post s-1 "$XB_TMP/s1.der" -H "x-functions-key: $API_KEY"
expect_401 "secret device, the API key alone" s-1
post s-1 "$XB_TMP/s1.der" -u "s-1:${secret%?}A"
expect_401 "secret device, wrong secret" s-1 "not a valid credential"
post s-1 "$XB_TMP/s1.der" -u "s-2:$secret"
expect_401 "secret device, another user-id" s-1 "must be the registration ID"
post s-1 "$XB_TMP/s1.der" -u "s-1:$secret"
xb_eq "secret device, its secret: 200" "$XB_STATUS" 200
verifies "secret device"
cp "$XB_TMP/got.pem" "$XB_TMP/s1cert.pem"
xb_contains "the log names the credential" "$(grep 'reg_id=s-1 outcome=issued' "$XB_TMP/xbootd.log")" "credential=secret"
# One-time: the secret has been spent (a retry with the same key gets the same certificate).
xb_csr ec-p256 s-1 "$XB_TMP/s1b"
post s-1 "$XB_TMP/s1b.der" -u "s-1:$secret"
xb_eq "secret spent: a new key gets 409" "$XB_STATUS $(xb_json error)" "409 already_enrolled"
post s-1 "$XB_TMP/s1.der" -u "s-1:$secret"
xb_eq "secret spent: the same key gets its certificate again" "$XB_STATUS" 200
xb_eq "secret device: one certificate" "$(xb_cert_rows s-1)" 1

# ---- group key with derived device keys ----
gk=$(xb_ctl group add line-a 2>/dev/null | tail -n1)
xb_check "group add prints a 64-byte base64 key" test "$(base64 -d <<<"$gk" | wc -c)" = 64
hexkey=$(base64 -d <<<"$gk" | od -An -tx1 | tr -d ' \n')
derive_openssl() { printf '%s' "$1" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary | base64; }
for id in g-1 'aa:bb:cc:00:11:22' DEV.Upper_9; do
  xb_eq "group derive $id = openssl HMAC" "$(xb_ctl group derive line-a "$id")" "$(derive_openssl "$id")"
done
k1=$(derive_openssl g-1)
xb_csr ec-p256 g-1 "$XB_TMP/g1"
post g-1 "$XB_TMP/g1.der" -u "g-1:$(derive_openssl g-2)"
expect_401 "group member, another ID's key" g-1 "not a valid credential"
post g-1 "$XB_TMP/g1.der" -u "g-1:$gk"
expect_401 "group member, the group key itself" g-1
xb_eq "refused group member has no row" "$(row g-1)" ""
post g-1 "$XB_TMP/g1.der" -u "g-1:$k1"
xb_eq "group member, derived key (no row before): 200" "$XB_STATUS" 200
verifies "group member"
xb_eq "its row was created on enrollment, recording the group" "$(row g-1)" "group line-a"
xb_csr ec-p256 g-1 "$XB_TMP/g1b"
post g-1 "$XB_TMP/g1b.der" -u "g-1:$k1"
xb_eq "derived key spent: 409" "$XB_STATUS $(xb_json error)" "409 already_enrolled"
# A colon in the ID (a MAC address) over EST, with the derived key as Basic password.
mac='aa:bb:cc:00:11:22'
xb_csr ec-p256 "$mac" "$XB_TMP/mac"
base64 <"$XB_TMP/mac.der" >"$XB_TMP/mac.b64"
xb_request POST /.well-known/est/simpleenroll -H 'Content-Type: application/pkcs10' \
  --data-binary "@$XB_TMP/mac.b64" -u "$mac:$(derive_openssl "$mac")"
xb_eq "EST, group-derived key, ID with colons: 200" "$XB_STATUS" 200
xb_eq "EST member's row records the group" "$(row "$mac")" "group line-a"
# A device registered into the group needs that group's key.
xb_ctl device add g-reg --group line-a >/dev/null
xb_csr ec-p256 g-reg "$XB_TMP/greg"
post g-reg "$XB_TMP/greg.der" -H "x-functions-key: $API_KEY"
expect_401 "registered group member, API key only" g-reg "group-derived key"
post g-reg "$XB_TMP/greg.der" -u "g-reg:$(derive_openssl g-reg)"
xb_eq "registered group member, derived key: 200" "$XB_STATUS" 200

# ---- manufacturer certificate (IDevID) ----
xb_csr ec-p256 m-1 "$XB_TMP/mm1"
post m-1 "$XB_TMP/mm1.der" --cert "$XB_TMP/m2.pem" --key "$XB_TMP/m2.key"
expect_401 "IDevID of another device" m-1 "names m-2"
idevid_m3_csr() { xb_csr ec-p256 m-3 "$XB_TMP/mm3"; }
idevid_m3_csr
post m-3 "$XB_TMP/mm3.der" --cert "$XB_TMP/m3.pem" --key "$XB_TMP/m3.key"
expect_401 "IDevID from an unconfigured CA" m-3 "nor from a manufacturer CA"
post m-1 "$XB_TMP/mm1.der" --cert "$XB_TMP/m1.pem" --key "$XB_TMP/m1.key"
xb_eq "IDevID, no row before: 200" "$XB_STATUS" 200
verifies "IDevID"
xb_eq "IDevID device's row" "$(row m-1)" "idevid -"
xb_csr ec-p256 m-2 "$XB_TMP/mm2"
base64 <"$XB_TMP/mm2.der" >"$XB_TMP/mm2.b64"
xb_request POST /.well-known/est/simpleenroll -H 'Content-Type: application/pkcs10' \
  --data-binary "@$XB_TMP/mm2.b64" --cert "$XB_TMP/m2.pem" --key "$XB_TMP/m2.key"
xb_eq "EST with an IDevID: 200" "$XB_STATUS" 200

# ---- the API key alone (the weakest: any holder can enroll any registered ID) ----
xb_ctl device add p-1 p-2 >/dev/null
xb_csr ec-p256 p-1 "$XB_TMP/p1"
post p-1 "$XB_TMP/p1.der"
expect_401 "plain device, no key" p-1 "credentials required"
post p-1 "$XB_TMP/p1.der" -H "x-functions-key: wrong"
expect_401 "plain device, wrong key" p-1 "not valid"
post p-1 "$XB_TMP/p1.der" -u "p-1:$secret"
expect_401 "plain device, someone else's secret" p-1
# A certificate of ours is no credential on the JSON API, and no reason to refuse one either.
post p-1 "$XB_TMP/p1.der" -H "x-functions-key: $API_KEY" --cert "$XB_TMP/s1cert.pem" --key "$XB_TMP/s1.key"
xb_eq "plain device, API key (with a certificate of ours sent along): 200" "$XB_STATUS" 200
xb_csr ec-p256 p-2 "$XB_TMP/p2"
base64 <"$XB_TMP/p2.der" >"$XB_TMP/p2.b64"
xb_request POST /.well-known/est/simpleenroll -H 'Content-Type: application/pkcs10' \
  --data-binary "@$XB_TMP/p2.b64" -u "p-2:$API_KEY"
xb_eq "plain device, API key as EST Basic password: 200" "$XB_STATUS" 200
xb_csr ec-p256 nobody "$XB_TMP/nb"
post nobody "$XB_TMP/nb.der" -H "x-functions-key: $API_KEY"
xb_eq "unregistered device with the API key: 403 device_unknown" "$XB_STATUS $(xb_json error)" "403 device_unknown"

# ---- 32 parallel enrollments of one ID, each with its own key: exactly one certificate ----
kp=$(derive_openssl par-1)
for i in $(seq 1 32); do xb_csr ec-p256 par-1 "$XB_TMP/par$i"; done
pids=()
for i in $(seq 1 32); do
  curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 --cacert "$ROOT" -u "par-1:$kp" \
    -H 'Content-Type:' --data-binary "$(xb_enroll_body par-1 "$XB_TMP/par$i.der")" \
    "$XB_URL/api/certificate" >"$XB_TMP/par$i.status" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done # each curl is bounded by --max-time
statuses=$(cat "$XB_TMP"/par*.status | sort | uniq -c | tr -s ' ' | tr '\n' ',')
xb_eq "32 parallel: exactly one 200" "$(cat "$XB_TMP"/par*.status | grep -c '^200$')" 1
xb_eq "32 parallel: the others 409" "$(cat "$XB_TMP"/par*.status | grep -c '^409$')" 31
xb_eq "32 parallel: one certificate recorded" "$(xb_cert_rows par-1)" 1
[ "$(xb_cert_rows par-1)" = 1 ] || echo "     statuses: $statuses"

# ---- no secret in the log ----
xb_stop_server
for s in "$secret" "$gk" "$k1" "$kp" "$API_KEY"; do
  xb_check "log free of a secret (${s:0:4}...)" bash -c "! grep -qF -- '$s' '$XB_TMP/xbootd.log'"
done

# ---- an IDevID whose registration ID is another subject attribute (serialNumber) ----
xb_write_config "[policy]" "manufacturer_ca = $XB_TMP/acme-ca.pem" "manufacturer_id_field = serialNumber"
xb_start_server || { xb_bad "xbootd restarts"; xb_finish; exit 1; }
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/O=Acme/CN=Acme Sensor/serialNumber=sn-77" -keyout "$XB_TMP/sn.key" -out "$XB_TMP/sn.csr" 2>/dev/null
openssl x509 -req -in "$XB_TMP/sn.csr" -CA "$XB_TMP/acme-ca.pem" -CAkey "$XB_TMP/acme-ca.key" \
  -CAcreateserial -days 1 -extfile "$XB_TMP/idevid.ext" -out "$XB_TMP/sn.pem" 2>/dev/null
xb_csr ec-p256 sn-77 "$XB_TMP/sn77"
post sn-77 "$XB_TMP/sn77.der" --cert "$XB_TMP/sn.pem" --key "$XB_TMP/sn.key"
xb_eq "IDevID named by serialNumber: 200" "$XB_STATUS" 200
xb_csr ec-p256 m-1x "$XB_TMP/m1x"
post m-1x "$XB_TMP/m1x.der" --cert "$XB_TMP/m1.pem" --key "$XB_TMP/m1.key"
expect_401 "IDevID without the configured attribute" m-1x "exactly one serialNumber"
xb_finish
