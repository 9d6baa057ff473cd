/* Who is asking, for EST: a TLS client certificate we issued, or HTTP Basic. The policy of
 * which route accepts what is route_est.c's; here are the checks themselves. */
#include "est_server.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "xb_base64.h"
#include "xb_util.h"

xb_err xb_est_basic_parse(const char *authorization, const char *cn, char *password, size_t size,
                          xb_diag *d)
{
    if (size > 0)
        password[0] = '\0';
    if (authorization == NULL)
        return xb_fail(d, XB_ERR_NOT_FOUND, "no Authorization header");
    const char *p = authorization;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Basic", 5) != 0 || (p[5] != ' ' && p[5] != '\t'))
        return xb_fail(d, XB_ERR_NOT_FOUND, "the Authorization header is not HTTP Basic");
    p += 5;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, " \t");
    uint8_t *text = NULL;
    size_t text_len = 0;
    if (p[n + strspn(p + n, " \t")] != '\0' || xb_base64_decode(p, n, &text, &text_len) != 0)
        return xb_fail(d, XB_ERR_UNAUTHORIZED, "the HTTP Basic credentials are not valid base64");
    size_t cn_len = strlen(cn);
    xb_err err = XB_OK;
    if (memchr(text, '\0', text_len) != NULL || memchr(text, ':', text_len) == NULL)
        err = xb_fail(d, XB_ERR_UNAUTHORIZED,
                      "the HTTP Basic credentials are not user-id:password (RFC 7617)");
    /* The split where the user-id is the CSR's CN: registration IDs may hold colons, so the
     * first colon (RFC 7617) would cut "aa:bb:cc" short. */
    else if (text_len <= cn_len || memcmp(text, cn, cn_len) != 0 || text[cn_len] != ':')
        err = xb_fail(d, XB_ERR_UNAUTHORIZED,
                      "the HTTP Basic user-id must be the registration ID, which is the CSR's CN "
                      "(%s)",
                      cn);
    else if (text_len - cn_len - 1 >= size)
        err = xb_fail(d, XB_ERR_UNAUTHORIZED, "the HTTP Basic password is too long");
    else {
        memcpy(password, text + cn_len + 1, text_len - cn_len - 1);
        password[text_len - cn_len - 1] = '\0';
    }
    OPENSSL_cleanse(text, text_len);
    free(text);
    return err;
}

/* The certificate chains to the signing CA now and may authenticate a TLS client. */
static xb_err xb_est_verify_chain(const xb_est *est, X509 *cert, xb_diag *d)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (ctx == NULL || !X509_STORE_CTX_init(ctx, est->store, cert, NULL) ||
        !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT)) {
        X509_STORE_CTX_free(ctx);
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot verify the client certificate");
    }
    int ok = X509_verify_cert(ctx);
    int why = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    if (ok == 1)
        return XB_OK;
    return xb_fail(d, XB_ERR_UNAUTHORIZED,
                   "the TLS client certificate is not a valid certificate from this server's "
                   "CA: %s",
                   X509_verify_cert_error_string(why));
}

static xb_err xb_est_revoked(const xb_cert_record *rec, xb_diag *d)
{
    char when[32];
    xb_time_rfc3339(rec->revoked_at, when, sizeof when);
    const char *why = xb_revocation_reason_name(rec->revocation_reason);
    return xb_fail(d, XB_ERR_UNAUTHORIZED,
                   "the TLS client certificate (serial %s) was revoked at %s (reason %s)",
                   rec->serial, when, why != NULL ? why : "unknown");
}

xb_err xb_est_client_cert_check(const xb_est *est, xb_registry *reg, X509 *cert,
                                char reg_id[XB_REGID_MAX + 1], xb_diag *d)
{
    reg_id[0] = '\0';
    xb_err err = xb_est_verify_chain(est, cert, d);
    if (err != XB_OK)
        return err;
    if (X509_check_ca(cert) != 0)
        return xb_fail(d, XB_ERR_UNAUTHORIZED, "the TLS client certificate is a CA certificate");
    unsigned char *der = NULL;
    int der_len = i2d_X509(cert, &der);
    if (der_len <= 0)
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot encode the client certificate");
    xb_issued issued;
    err = xb_issued_from_der(der, (size_t)der_len, &issued, d);
    xb_cert_record rec;
    uint8_t *rec_der = NULL;
    size_t rec_len = 0;
    if (err == XB_OK)
        err = xb_registry_cert_get(reg, issued.serial, &rec, &rec_der, &rec_len, d);
    if (err == XB_ERR_NOT_FOUND)
        err = xb_fail(d, XB_ERR_UNAUTHORIZED,
                      "the TLS client certificate (serial %s) is not one this server recorded",
                      issued.serial);
    /* Signed by our key but not the recorded bytes: never ours to honour. */
    else if (err == XB_OK && (rec_len != (size_t)der_len || memcmp(rec_der, der, rec_len) != 0))
        err = xb_fail(d, XB_ERR_UNAUTHORIZED,
                      "the TLS client certificate differs from the one recorded with serial %s",
                      issued.serial);
    /* Read from the registry on every request, never cached: a revocation made with xbootctl
     * refuses the very next request of every worker. 401 like the other certificates that
     * cannot authenticate (foreign, expired, unrecorded): the client's credential is bad. */
    else if (err == XB_OK && rec.revoked_at != 0)
        err = xb_est_revoked(&rec, d);
    if (err == XB_OK)
        snprintf(reg_id, XB_REGID_MAX + 1, "%s", rec.reg_id);
    free(rec_der);
    if (issued.der != NULL)
        xb_issued_clear(&issued);
    OPENSSL_free(der);
    return err;
}

/* The subjectAltName extension's value octets of cert: 1 and *val and *len, or 0 when it has none.
 */
static int xb_est_cert_san(X509 *cert, const uint8_t **val, size_t *len)
{
    int i = X509_get_ext_by_NID(cert, NID_subject_alt_name, -1);
    const ASN1_OCTET_STRING *os = i >= 0 ? X509_EXTENSION_get_data(X509_get_ext(cert, i)) : NULL;
    if (os == NULL)
        return 0;
    *val = ASN1_STRING_get0_data(os);
    *len = (size_t)ASN1_STRING_length(os);
    return 1;
}

xb_err xb_est_renewal_match(const xb_csr *csr, X509 *cert, xb_diag *d)
{
    size_t csr_name_len = 0;
    const uint8_t *csr_name = xb_csr_subject_der(csr, &csr_name_len);
    unsigned char *name = NULL;
    /* A decoded Name re-encodes to the octets it was decoded from. */
    int name_len = i2d_X509_NAME(X509_get_subject_name(cert), &name);
    int same_subject = name_len > 0 && (size_t)name_len == csr_name_len &&
                       memcmp(name, csr_name, csr_name_len) == 0;
    OPENSSL_free(name);
    const uint8_t *want = NULL, *got = NULL;
    size_t want_len = 0, got_len = 0;
    int has_want = xb_est_cert_san(cert, &want, &want_len);
    xb_err err = xb_csr_requested_san(csr, &got, &got_len, d);
    if (err != XB_OK && err != XB_ERR_NOT_FOUND)
        return err;
    int has_got = err == XB_OK;
    int same_san = has_want == has_got &&
                   (!has_want || (want_len == got_len && memcmp(want, got, got_len) == 0));
    if (!same_subject || !same_san)
        return xb_fail(d, XB_ERR_SUBJECT_MISMATCH,
                       "subject or subjectAltName differ from the client certificate's: a "
                       "renewal keeps the certificate's subject%s",
                       has_want ? " and subjectAltName" : " and requests no subjectAltName");
    return XB_OK;
}

/* Every handshake finishes, whatever the client sends: a route that needs a certificate
 * judges it (xb_est_client_cert_check); the rest never look. */
static int xb_est_verify_any(int preverify_ok, X509_STORE_CTX *ctx)
{
    (void)preverify_ok, (void)ctx;
    return 1;
}

void xb_est_tls_request_client_cert(SSL_CTX *ctx, const xb_ca *ca)
{
    /* SSL_VERIFY_PEER without FAIL_IF_NO_PEER_CERT: requested, optional. Naming the signing
     * CA helps clients holding several certificates pick ours. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, xb_est_verify_any);
    SSL_CTX_add_client_CA(ctx, xb_ca_signing_cert(ca));
}
