/* The credential checks of the policy (policy.h): HTTP Basic as registration IDs need it, a
 * certificate we issued, a manufacturer certificate. policy.c decides which is needed. */
#include "policy.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "xb_base64.h"
#include "xb_util.h"

xb_err xb_basic_parse(const char *authorization, const char *cn, char *password, size_t size,
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

/* No path from cert to the store's anchors: another CA's certificate, not a bad one of ours. */
static int xb_policy_no_path(int why)
{
    return why == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
           why == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
           why == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
           why == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN;
}

/* The certificate chains to one of store's anchors now and may authenticate a TLS client.
 * XB_ERR_NOT_FOUND when it does not chain there at all; XB_ERR_UNAUTHORIZED when it does but
 * fails (expired, wrong purpose, bad signature). whose names the anchors in messages. */
static xb_err xb_policy_verify(X509_STORE *store, X509 *cert, const char *whose, xb_diag *d)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (ctx == NULL || !X509_STORE_CTX_init(ctx, store, cert, NULL) ||
        !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT)) {
        X509_STORE_CTX_free(ctx);
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot verify the client certificate");
    }
    int ok = X509_verify_cert(ctx);
    int why = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    if (ok == 1)
        return XB_OK;
    return xb_fail(d, xb_policy_no_path(why) ? XB_ERR_NOT_FOUND : XB_ERR_UNAUTHORIZED,
                   "the TLS client certificate is not a valid certificate from %s: %s", whose,
                   X509_verify_cert_error_string(why));
}

static xb_err xb_policy_revoked(const xb_cert_record *rec, xb_diag *d)
{
    char when[32];
    xb_time_rfc3339(rec->revoked_at, when, sizeof when);
    const char *why = xb_revocation_reason_name(rec->revocation_reason);
    return xb_fail(d, XB_ERR_UNAUTHORIZED,
                   "the TLS client certificate (serial %s) was revoked at %s (reason %s)",
                   rec->serial, when, why != NULL ? why : "unknown");
}

xb_err xb_policy_issued_cert(const xb_policy *p, xb_registry *reg, X509 *cert,
                             char reg_id[XB_REGID_MAX + 1], xb_diag *d)
{
    reg_id[0] = '\0';
    xb_err err = xb_policy_verify(p->issued, cert, "this server's CA", d);
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
        err = xb_policy_revoked(&rec, d);
    if (err == XB_OK)
        snprintf(reg_id, XB_REGID_MAX + 1, "%s", rec.reg_id);
    free(rec_der);
    if (issued.der != NULL)
        xb_issued_clear(&issued);
    OPENSSL_free(der);
    return err;
}

xb_err xb_policy_idevid(const xb_policy *p, X509 *cert, char id[XB_REGID_MAX + 1], xb_diag *d)
{
    id[0] = '\0';
    if (p->manufacturer == NULL)
        return xb_fail(d, XB_ERR_NOT_FOUND, "no manufacturer CA is configured");
    xb_err err = xb_policy_verify(p->manufacturer, cert, "a manufacturer CA", d);
    if (err != XB_OK)
        return err;
    if (X509_check_ca(cert) != 0)
        return xb_fail(d, XB_ERR_UNAUTHORIZED, "the manufacturer certificate is a CA certificate");
    X509_NAME *name = X509_get_subject_name(cert);
    int i = X509_NAME_get_index_by_NID(name, p->id_nid, -1);
    /* Exactly one: with two, which one names the device would be a guess. */
    if (i < 0 || X509_NAME_get_index_by_NID(name, p->id_nid, i) >= 0)
        return xb_fail(d, XB_ERR_UNAUTHORIZED,
                       "the manufacturer certificate's subject must hold exactly one %s",
                       OBJ_nid2sn(p->id_nid));
    const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, v);
    if (n <= 0 || !xb_regid_valid((const char *)utf8, (size_t)n)) {
        OPENSSL_free(utf8);
        return xb_fail(d, XB_ERR_UNAUTHORIZED,
                       "the manufacturer certificate's %s is not a valid registration ID",
                       OBJ_nid2sn(p->id_nid));
    }
    memcpy(id, utf8, (size_t)n);
    id[n] = '\0';
    OPENSSL_free(utf8);
    return XB_OK;
}
