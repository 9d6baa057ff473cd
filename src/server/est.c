/* The EST answers that never change while xbootd runs, built once before the workers fork:
 * cacerts (the chain as a certs-only PKCS#7) and csrattrs. */
#include "est_server.h"

#include <stdlib.h>

#include "xb_base64.h"

void xb_est_free(xb_est *est)
{
    if (est == NULL)
        return;
    free(est->cacerts);
    free(est->csrattrs);
    free(est);
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
    if (err != XB_OK) {
        xb_est_free(est);
        return err;
    }
    *out = est;
    return XB_OK;
}
