/* GET /crl: the DER CRL signed by the signing CA (RFC 5280; application/pkix-crl, RFC 2585).
 *
 * Per request: one small registry read (the stored CRL's number, revision and times). The CRL
 * is signed only when that state says it is stale (a revocation since, half its lifetime
 * gone, none yet: crl_publish.h), under the registry's write lock so that of all the workers
 * and nodes asking at once exactly one signs. The DER is kept in the worker and read again
 * only when the stored number differs from the one held. */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "crl_publish.h"
#include "xb_log.h"

/* 1 if the DER CRL's signature verifies with ca's signing key. */
static int xb_crl_signed_by(const xb_ca *ca, const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    EVP_PKEY *key = X509_get0_pubkey(xb_ca_signing_cert(ca));
    int ok = crl != NULL && key != NULL && X509_CRL_verify(crl, key) == 1;
    X509_CRL_free(crl);
    ERR_clear_error();
    return ok;
}

static xb_err xb_crl_current(xb_server *srv, time_t now, xb_diag *d)
{
    long period = (long)srv->cfg->crl_next_update_hours * 3600;
    xb_crl_state st;
    xb_err err = xb_registry_crl_state(srv->reg, &st, d);
    if (err == XB_OK && xb_crl_is_stale(&st, now, period)) {
        int made = 0;
        err = xb_crl_refresh(srv->reg, srv->ca, period, &made, d);
        if (err == XB_OK)
            err = xb_registry_crl_state(srv->reg, &st, d);
        if (err == XB_OK && made)
            xb_info("CRL %lld signed (revision %lld)", st.number, st.revision);
    }
    if (err != XB_OK || (srv->crl_der != NULL && st.number == srv->crl_number))
        return err;
    uint8_t *der = NULL;
    size_t len = 0;
    err = xb_registry_crl_get(srv->reg, &st, &der, &len, d);
    /* Signed by another CA before ours was loaded: the signing CA was rotated (a reload, or a
     * restart with new files) and this CRL is its predecessor's. Replaced once. One signed
     * since is another node's or worker's newer choice, served as it is, so two CAs never
     * take turns re-signing. */
    if (err == XB_OK && st.this_update <= srv->ca_loaded_at &&
        !xb_crl_signed_by(srv->ca, der, len)) {
        free(der);
        der = NULL;
        int made = 0;
        err = xb_crl_replace(srv->reg, srv->ca, period, st.number, &made, d);
        if (err == XB_OK)
            err = xb_registry_crl_get(srv->reg, &st, &der, &len, d);
        if (err == XB_OK && made)
            xb_info("CRL %lld signed: the stored one was another signing CA's", st.number);
    }
    if (err != XB_OK) {
        free(der);
        return err;
    }
    free(srv->crl_der);
    srv->crl_der = der;
    srv->crl_len = len;
    srv->crl_number = st.number;
    srv->crl_next_update = st.next_update;
    return XB_OK;
}

void xb_route_crl(xb_exchange *ex)
{
    xb_diag d = {""};
    time_t now = time(NULL);
    xb_err err = xb_crl_current(ex->srv, now, &d);
    if (err != XB_OK) {
        xb_http_reply_error(ex, err, xb_diag_message(&d, err));
        return;
    }
    /* Caches may keep it until nextUpdate, when relying parties must fetch a new one anyway. */
    long long age = (long long)(ex->srv->crl_next_update - now);
    char cache[48];
    snprintf(cache, sizeof cache, "public, max-age=%lld", age > 0 ? age : 0);
    ex->outcome = "ok";
    xb_http_reply_bytes(ex, 200, "application/pkix-crl", cache, ex->srv->crl_der, ex->srv->crl_len);
}
