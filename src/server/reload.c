/* Loading the signing CA, at start and on a reload (SIGHUP: docs/ca-keys.md, "Rotation").
 *
 * A reload re-reads the files that [ca] cert, key and chain named at start; nothing else of
 * the configuration changes. Everything built from the CA is built anew before anything is
 * replaced, so a reload that fails leaves the server as it was. */
#include "server.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>

#include "est_server.h"
#include "policy.h"
#include "xb_log.h"

xb_err xb_server_ca_load(const xb_config *cfg, xb_ca **out, xb_diag *d)
{
    xb_ca_config cc = {
        .cert_path = cfg->ca_cert,
        .key_path = cfg->ca_key,
        .chain_path = cfg->ca_chain[0] ? cfg->ca_chain : NULL,
        .validity_days = cfg->validity_days,
        .subject_attributes = cfg->subject_attributes,
        .key_passphrase_file = cfg->ca_key_passphrase_file,
        .https_ca_file = cfg->ca_https_ca_file,
        .pkcs11_module = cfg->ca_pkcs11_module,
    };
    xb_ca *ca = NULL;
    xb_err err = xb_ca_load(&cc, &ca, d);
    if (err == XB_OK)
        err = xb_ca_set_crl_url(ca, cfg->crl_url, d);
    if (err == XB_OK)
        err = xb_ca_check_usable(ca, time(NULL), d);
    if (err != XB_OK) {
        xb_ca_free(ca);
        return err;
    }
    *out = ca;
    return XB_OK;
}

/* "CN=...,O=..., serial 1a2b..., not after 2036-...": which CA signs now. */
static void xb_reload_describe(const xb_ca *ca, char *out, size_t size)
{
    X509 *x = xb_ca_signing_cert(ca);
    char subject[256] = "";
    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    struct tm tm;
    char not_after[32] = "?";
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
        strftime(not_after, sizeof not_after, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(out, size, "%s, serial %s, not after %s", subject, hex != NULL ? hex : "?", not_after);
    OPENSSL_free(hex);
    BN_free(bn);
    ERR_clear_error();
}

xb_err xb_server_reload_ca(xb_server *srv, const char *who, xb_diag *d)
{
    xb_ca *ca = NULL;
    xb_est *est = NULL;
    xb_err err = xb_server_ca_load(srv->cfg, &ca, d);
    if (err == XB_OK && srv->est != NULL)
        err = xb_est_new(ca, srv->cfg, &est, d);
    if (err == XB_OK && srv->policy != NULL)
        err = xb_policy_set_ca(srv->policy, ca, d); /* the last step that may fail */
    if (err != XB_OK) {
        xb_est_free(est);
        xb_ca_free(ca);
        return err;
    }
    /* Name the new CA to TLS clients choosing a certificate for a renewal; the old name stays,
     * harmless, as its certificates are still about. Only when start-up asked for one. */
    STACK_OF(X509_NAME) *names =
        srv->ssl_ctx != NULL ? SSL_CTX_get_client_CA_list(srv->ssl_ctx) : NULL;
    if (names != NULL && sk_X509_NAME_num(names) > 0 &&
        !SSL_CTX_add_client_CA(srv->ssl_ctx, xb_ca_signing_cert(ca)))
        ERR_clear_error(); /* a hint to clients only: the reload goes on */
    if (est != NULL) {
        xb_est_free(srv->est);
        srv->est = est;
    }
    /* The CA before the previous one signed nothing still waiting: a commit or a webhook takes
     * seconds, reloads are minutes apart. */
    xb_ca_free(srv->ca_prev);
    srv->ca_prev = srv->ca;
    srv->ca = ca;
    srv->ca_loaded_at = time(NULL);
    /* GET /crl reads the stored CRL again, and replaces it if the old CA signed it. */
    free(srv->crl_der);
    srv->crl_der = NULL;
    srv->crl_len = 0;
    srv->crl_number = 0;
    char what[512];
    xb_reload_describe(ca, what, sizeof what);
    xb_info("%s: CA reloaded: signing CA %s", who, what);
    return XB_OK;
}

const xb_ca *xb_server_ca_of(const xb_server *srv, const xb_issued *cert)
{
    /* Before any reload there is one CA: no certificate is parsed on the common path. */
    if (srv->ca_prev == NULL || xb_ca_issued_by(srv->ca, cert) ||
        !xb_ca_issued_by(srv->ca_prev, cert))
        return srv->ca;
    return srv->ca_prev;
}
