/* EST (RFC 7030) operations of the client: cacerts, and the enroll/re-enroll request shared
 * by xboot_enroll (protocol EST) and xboot_renew. The retry policy is exchange.c's; the
 * checks and the store stay with the callers (enroll.c, renew.c). */
#include <stdlib.h>
#include <string.h>

#include "enroll.h"
#include "est.h"
#include "exchange.h"

/* GET {est}/cacerts into *out. */
static xboot_err xbec_cacerts(xboot_client *c, STACK_OF(X509) * *out)
{
    char *url = NULL;
    xboot_err e = xbe_url(c->url, c->est_label, "cacerts", &url, &c->detail);
    if (e != XBOOT_OK)
        return e;
    xbx_call call = {
        .method = "GET", .url = url, .accept = XBE_CT_PKCS7, .errors = XBX_ERRORS_TEXT};
    xbt_response resp = {.retry_after_s = -1};
    e = xbx_exchange(c, &call, &resp);
    if (e == XBOOT_OK)
        e = xbe_certs(resp.body, resp.body_len, out, &c->detail);
    xbt_response_clear(&resp);
    free(url);
    return e;
}

xboot_err xboot_est_cacerts(xboot_client *c, STACK_OF(X509) * *out)
{
    if (c == NULL || out == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    *out = NULL;
    xbcl_reset_result(c);
    if (c->url == NULL || c->trust == NULL)
        return xbc_fail(&c->detail, XBOOT_ERR_NOT_CONFIGURED, "%s not set",
                        c->url == NULL ? "server URL" : "trust anchor");
    return xbec_cacerts(c, out);
}

/* The issued certificate of an answer: the one for key (a server may add its chain after
 * it), else the first, which the caller's check then refuses with a clear reason. */
static X509 *xbec_pick(STACK_OF(X509) * certs, EVP_PKEY *key)
{
    for (int i = 0; i < sk_X509_num(certs); i++)
        if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(certs, i)), key) == 1)
            return sk_X509_delete(certs, i);
    return sk_X509_shift(certs);
}

/* POST the CSR to op; the issued certificate goes into s->cert. */
static xboot_err xbec_post(xboot_client *c, xben_state *s, const char *op, const uint8_t *csr,
                           size_t csr_len, const xben_state *identity)
{
    char *url = NULL, *body = NULL;
    size_t body_len = 0;
    xboot_err e = xbe_url(c->url, c->est_label, op, &url, &c->detail);
    if (e == XBOOT_OK)
        e = xbe_request(csr, csr_len, &body, &body_len, &c->detail);
    if (e != XBOOT_OK) {
        free(url);
        return e;
    }
    xbx_call call = {.method = "POST",
                     .url = url,
                     .content_type = XBE_CT_PKCS10,
                     .accept = XBE_CT_PKCS7,
                     .body = (const uint8_t *)body,
                     .body_len = body_len,
                     .errors = XBX_ERRORS_TEXT,
                     .basic_auth = identity == NULL,
                     .client_key = identity ? identity->key : NULL,
                     .client_cert = identity ? identity->cert : NULL,
                     .client_chain = identity ? identity->chain : NULL,
                     .announce = 1};
    xbt_response resp = {.retry_after_s = -1};
    e = xbx_exchange(c, &call, &resp);
    STACK_OF(X509) *certs = NULL;
    if (e == XBOOT_OK)
        e = xbe_certs(resp.body, resp.body_len, &certs, &c->detail);
    if (e == XBOOT_OK)
        s->cert = xbec_pick(certs, s->key);
    sk_X509_pop_free(certs, X509_free);
    xbt_response_clear(&resp);
    free(body);
    free(url);
    return e;
}

xboot_err xben_est_request(xboot_client *c, xben_state *s, const char *op, const X509_NAME *subject,
                           const xben_state *identity)
{
    /* The chain first: simpleenroll answers with the certificate alone, and a certificate the
     * device cannot verify would be issued (and recorded by the server) for nothing. */
    xboot_err e = xbec_cacerts(c, &s->chain);
    uint8_t *csr = NULL;
    size_t csr_len = 0;
    if (e == XBOOT_OK)
        e = subject != NULL
                ? xbc_csr_build_name(s->key, subject, &csr, &csr_len, &c->detail)
                : xbc_csr_build(s->key, c->reg_id, c->rdns, c->n_rdns, &csr, &csr_len, &c->detail);
    if (e != XBOOT_OK)
        return e;
    xbcl_progress(c, XBOOT_EVENT_CSR_BUILT, NULL);
    e = xbec_post(c, s, op, csr, csr_len, identity);
    OPENSSL_free(csr);
    if (e == XBOOT_OK)
        xbcl_progress(c, XBOOT_EVENT_CERT_RECEIVED, NULL);
    return e;
}
