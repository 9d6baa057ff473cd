#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "der.h"
#include "xb_base64.h"
#include "xb_regid.h"

int xbb_api_parse(const char *name, xbb_api *out)
{
    if (strcmp(name, "xboot") == 0)
        *out = XBB_API_XBOOT;
    else if (strcmp(name, "cfssl") == 0)
        *out = XBB_API_CFSSL;
    else if (strcmp(name, "est") == 0)
        *out = XBB_API_EST;
    else
        return -1;
    return 0;
}

const char *xbb_api_name(xbb_api api)
{
    return api == XBB_API_CFSSL ? "cfssl" : api == XBB_API_EST ? "est" : "xboot";
}

static char *xbb_api_body(xbb_api api, const xbb_pool_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    char *b64 = NULL, *json = NULL;
    int ok = o != NULL;
    if (ok && api == XBB_API_XBOOT) {
        b64 = xb_base64_encode(e->csr, e->csr_len);
        ok = b64 != NULL && cJSON_AddStringToObject(o, "RegistrationId", e->id) != NULL &&
             cJSON_AddStringToObject(o, "Csr", b64) != NULL;
    } else if (ok) {
        ok = e->csr_pem != NULL &&
             cJSON_AddStringToObject(o, "certificate_request", e->csr_pem) != NULL;
    }
    if (ok)
        json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(b64);
    return json;
}

/* EST simpleenroll: the CSR as base64 (RFC 7030 section 4.2.1), the device as HTTP Basic
 * (username = registration ID; xbootd accepts any password in open mode). */
static char *xbb_est_request(const xbb_pool_entry *e, const char *host_header, int close,
                             size_t *len)
{
    char *body = xb_base64_encode(e->csr, e->csr_len);
    char user[XB_REGID_MAX + 16];
    snprintf(user, sizeof user, "%s:bench", e->id);
    char *auth = xb_base64_encode((const uint8_t *)user, strlen(user));
    char *req = NULL;
    if (body != NULL && auth != NULL) {
        size_t body_len = strlen(body);
        char head[768];
        int n = snprintf(head, sizeof head,
                         "POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: %s\r\n"
                         "Content-Type: application/pkcs10\r\n"
                         "Content-Transfer-Encoding: base64\r\nAuthorization: Basic %s\r\n"
                         "Content-Length: %zu\r\n%s\r\n",
                         host_header, auth, body_len, close ? "Connection: close\r\n" : "");
        if (n > 0 && (size_t)n < sizeof head && (req = malloc((size_t)n + body_len)) != NULL) {
            memcpy(req, head, (size_t)n);
            memcpy(req + n, body, body_len);
            *len = (size_t)n + body_len;
        }
    }
    free(body);
    free(auth);
    return req;
}

char *xbb_api_request(xbb_api api, const xbb_pool_entry *e, const char *host_header,
                      const char *api_key, int close, size_t *len)
{
    if (api == XBB_API_EST)
        return xbb_est_request(e, host_header, close, len);
    char *body = xbb_api_body(api, e);
    if (body == NULL)
        return NULL;
    const char *path = api == XBB_API_CFSSL ? "/api/v1/cfssl/sign" : "/api/certificate";
    size_t body_len = strlen(body);
    char head[512];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s%s%s%s\r\n",
                     path, host_header, body_len, api_key ? "x-functions-key: " : "",
                     api_key ? api_key : "", api_key ? "\r\n" : "",
                     close ? "Connection: close\r\n" : "");
    char *req = NULL;
    if (n > 0 && (size_t)n < sizeof head && (req = malloc((size_t)n + body_len)) != NULL) {
        memcpy(req, head, (size_t)n);
        memcpy(req + n, body, body_len);
        *len = (size_t)n + body_len;
    }
    cJSON_free(body);
    return req;
}

/* The DER inside one PEM block, without parsing it as a certificate (that is the expensive
 * part, and the DER walk in der.c is all the check needs). */
static int xbb_pem_to_der(const char *pem, uint8_t **der, size_t *len)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long n = 0;
    int ok = bio != NULL && PEM_read_bio(bio, &name, &header, &data, &n) == 1 && n > 0 &&
             strcmp(name, "CERTIFICATE") == 0 && (*der = malloc((size_t)n)) != NULL;
    if (ok) {
        memcpy(*der, data, (size_t)n);
        *len = (size_t)n;
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(bio);
    return ok ? 0 : -1;
}

/* ContentInfo { signedData, [0] SignedData { version, digestAlgorithms, contentInfo,
 * [0] IMPLICIT certificates, ... } }: the certificate, when there is exactly one. */
static int xbb_est_cert_of(const uint8_t *der, size_t len, xb_der_elem *cert)
{
    xb_der_reader r = xb_der_reader_of(der, len);
    xb_der_elem ci, oid, x0, sd, skip, certs;
    if (!xb_der_read_tag(&r, XB_DER_SEQUENCE, &ci))
        return 0;
    r = xb_der_reader_of(ci.val, ci.len);
    if (!xb_der_read_tag(&r, XB_DER_OID, &oid) || !xb_der_read_tag(&r, XB_DER_TAGGED(0), &x0))
        return 0;
    r = xb_der_reader_of(x0.val, x0.len);
    if (!xb_der_read_tag(&r, XB_DER_SEQUENCE, &sd))
        return 0;
    r = xb_der_reader_of(sd.val, sd.len);
    if (!xb_der_read_tag(&r, XB_DER_INTEGER, &skip) || !xb_der_read_tag(&r, XB_DER_SET, &skip) ||
        !xb_der_read_tag(&r, XB_DER_SEQUENCE, &skip) ||
        !xb_der_read_tag(&r, XB_DER_TAGGED(0), &certs))
        return 0;
    r = xb_der_reader_of(certs.val, certs.len);
    return xb_der_read_tag(&r, XB_DER_SEQUENCE, cert) && r.left == 0;
}

/* An EST answer: base64 (wrapped in lines) of a certs-only PKCS#7 holding the certificate. */
static int xbb_est_answer(const char *body, size_t len, xbb_answer *out)
{
    char *b64 = malloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; b64 != NULL && i < len; i++)
        if (body[i] != '\n' && body[i] != '\r' && body[i] != ' ' && body[i] != '\t')
            b64[n++] = body[i];
    uint8_t *der = NULL;
    size_t der_len = 0;
    int rc = b64 != NULL ? xb_base64_decode(b64, n, &der, &der_len) : -1;
    free(b64);
    /* Walk the DER to the one certificate instead of d2i_PKCS7, which decodes it (public key
     * included): the load generator must not be slower than the server it measures. */
    xb_der_elem cert = {0};
    int ok = rc == 0 && xbb_est_cert_of(der, der_len, &cert);
    int cert_len = ok ? (int)cert.tlv_len : -1;
    if (cert_len <= 0 || (out->cert = malloc((size_t)cert_len)) == NULL) {
        free(der);
        return -1;
    }
    memcpy(out->cert, cert.tlv, (size_t)cert_len);
    out->cert_len = (size_t)cert_len;
    free(der);
    return 0;
}

int xbb_api_answer(xbb_api api, const char *body, size_t len, xbb_answer *out)
{
    memset(out, 0, sizeof *out);
    if (api == XBB_API_EST)
        return xbb_est_answer(body, len, out);
    out->root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(out->root)) {
        xbb_answer_clear(out);
        return -1;
    }
    int rc = -1;
    if (api == XBB_API_XBOOT) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(out->root, "Certificate");
        const cJSON *chain = cJSON_GetObjectItemCaseSensitive(out->root, "Chain");
        out->chain = cJSON_IsArray(chain) ? chain : NULL;
        if (cJSON_IsString(c))
            rc = xb_base64_decode(c->valuestring, strlen(c->valuestring), &out->cert,
                                  &out->cert_len);
    } else {
        const cJSON *ok = cJSON_GetObjectItemCaseSensitive(out->root, "success");
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(out->root, "result");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(res, "certificate");
        if (cJSON_IsTrue(ok) && cJSON_IsString(c))
            rc = xbb_pem_to_der(c->valuestring, &out->cert, &out->cert_len);
    }
    if (rc != 0 || out->cert_len == 0) {
        xbb_answer_clear(out);
        return -1;
    }
    return 0;
}

size_t xbb_answer_chain_count(const xbb_answer *a)
{
    return a->chain ? (size_t)cJSON_GetArraySize(a->chain) : 0;
}

int xbb_answer_chain_der(const xbb_answer *a, size_t i, uint8_t **der, size_t *len)
{
    const cJSON *s = a->chain ? cJSON_GetArrayItem(a->chain, (int)i) : NULL;
    if (!cJSON_IsString(s))
        return -1;
    return xb_base64_decode(s->valuestring, strlen(s->valuestring), der, len);
}

void xbb_answer_clear(xbb_answer *a)
{
    free(a->cert);
    cJSON_Delete(a->root);
    memset(a, 0, sizeof *a);
}
