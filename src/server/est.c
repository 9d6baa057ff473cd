/* The EST answers that never change while xbootd runs, built once before the workers fork:
 * cacerts (the chain as a certs-only PKCS#7), csrattrs, and the store client certificates are
 * verified against. */
#include "est_server.h"

#include <stdlib.h>

#include "xb_base64.h"

void xb_est_free(xb_est *est)
{
    if (est == NULL)
        return;
    free(est->cacerts);
    free(est->csrattrs);
    X509_STORE_free(est->store);
    free(est);
}

/* Only the signing CA is trusted (a partial chain): a certificate under another CA of the same
 * root is not one we issued. */
static xb_err xb_est_store_new(const xb_ca *ca, X509_STORE **out, xb_diag *d)
{
    X509_STORE *store = X509_STORE_new();
    if (store == NULL || !X509_STORE_add_cert(store, xb_ca_signing_cert(ca)) ||
        !X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT)) {
        X509_STORE_free(store);
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot build the EST certificate store");
    }
    *out = store;
    return XB_OK;
}

xb_err xb_est_new(const xb_ca *ca, const xb_config *cfg, xb_est **out, xb_diag *d)
{
    *out = NULL;
    xb_est *est = calloc(1, sizeof *est);
    if (est == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    /* The chain file starts with the signing CA (ca_load.c checks it), then the rest: the
     * order RFC 7030 clients expect. */
    size_t n = xb_ca_chain_count(ca);
    const uint8_t *ders[16];
    size_t lens[16];
    xb_err err =
        n == 0 || n > 16 ? xb_fail(d, XB_ERR_CONFIG, "EST: %zu chain certificates", n) : XB_OK;
    for (size_t i = 0; err == XB_OK && i < n; i++)
        ders[i] = xb_ca_chain_der(ca, i, &lens[i]);
    uint8_t *der = NULL;
    size_t der_len = 0;
    if (err == XB_OK)
        err = xb_est_pkcs7_certs(ders, lens, n, &der, &der_len, d);
    if (err == XB_OK &&
        (est->cacerts = xb_base64_encode_lines(der, der_len, &est->cacerts_len)) == NULL)
        err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
    OPENSSL_free(der);
    der = NULL;
    if (err == XB_OK)
        err = xb_est_csrattrs(xb_ca_key_type(ca), cfg->est_require_pop, &der, &der_len, d);
    if (err == XB_OK &&
        (est->csrattrs = xb_base64_encode_lines(der, der_len, &est->csrattrs_len)) == NULL)
        err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
    OPENSSL_free(der);
    if (err == XB_OK)
        err = xb_est_store_new(ca, &est->store, d);
    if (err != XB_OK) {
        xb_est_free(est);
        return err;
    }
    *out = est;
    return XB_OK;
}
