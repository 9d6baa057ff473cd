/* The EST wire format without HTTP: paths, media types, base64 bodies, the certs-only PKCS#7
 * and CsrAttrs answers, the tls-unique comparison. Pure functions, so they are unit-tested and
 * fuzzed alone; route_est.c is the libevent adapter around them. */
#include "est_server.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "der.h"
#include "xb_base64.h"

static const char *const xb_est_op_names[XB_EST__OP_COUNT] = {
    [XB_EST_CACERTS] = "cacerts",
    [XB_EST_SIMPLEENROLL] = "simpleenroll",
    [XB_EST_SIMPLEREENROLL] = "simplereenroll",
    [XB_EST_CSRATTRS] = "csrattrs",
};

const char *xb_est_op_name(xb_est_op op)
{
    return op < XB_EST__OP_COUNT ? xb_est_op_names[op] : "?";
}

static int xb_est_label_known(const xb_config *cfg, const char *s, size_t n)
{
    for (int i = 0; i < cfg->est_label_count; i++)
        if (strlen(cfg->est_label[i]) == n && memcmp(cfg->est_label[i], s, n) == 0)
            return 1;
    return 0;
}

xb_err xb_est_parse_path(const char *rest, const xb_config *cfg, xb_est_op *op, xb_diag *d)
{
    if (rest[0] != '/' || rest[1] == '\0')
        return xb_fail(d, XB_ERR_NOT_FOUND,
                       "name an EST operation: /.well-known/est/[label/]cacerts, simpleenroll, "
                       "simplereenroll or csrattrs");
    /* "/op" or "/label/op": one or two non-empty segments, nothing after. */
    const char *seg[2];
    size_t len[2], n = 0;
    const char *p = rest;
    while (*p == '/' && n < 2) {
        seg[n] = p + 1;
        len[n] = strcspn(seg[n], "/");
        p = seg[n] + len[n];
        if (len[n++] == 0)
            break;
    }
    if (*p != '\0' || len[n - 1] == 0 || (n == 2 && len[0] == 0))
        return xb_fail(d, XB_ERR_NOT_FOUND, "no such EST path: /.well-known/est%.200s", rest);
    if (n == 2 && !xb_est_label_known(cfg, seg[0], len[0]))
        return xb_fail(d, XB_ERR_NOT_FOUND,
                       "unknown EST label '%.*s' (this server's labels are set by [est] labels)",
                       (int)(len[0] > 64 ? 64 : len[0]), seg[0]);
    const char *name = seg[n - 1];
    size_t nl = len[n - 1];
    for (int i = 0; i < XB_EST__OP_COUNT; i++)
        if (strlen(xb_est_op_names[i]) == nl && memcmp(xb_est_op_names[i], name, nl) == 0) {
            *op = (xb_est_op)i;
            return XB_OK;
        }
    return xb_fail(d, XB_ERR_NOT_FOUND,
                   "unknown EST operation '%.*s' (supported: cacerts, simpleenroll, "
                   "simplereenroll, csrattrs)",
                   (int)(nl > 64 ? 64 : nl), name);
}

/* The fixed parts of a degenerate signed-data (RFC 7030 section 4.1.3, "certs-only"): no
 * signers, no eContent, the certificates in the order given (what `openssl crl2pkcs7 -nocrl`
 * writes; OpenSSL encodes this SET OF in order, not sorted). */
static const uint8_t xb_p7_signed_data_oid[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                                0xf7, 0x0d, 0x01, 0x07, 0x02};
static const uint8_t xb_p7_version_digests_content[] = {
    0x02, 0x01, 0x01, /* version 1 */
    0x31, 0x00,       /* digestAlgorithms */
    0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01 /* data */
};
static const uint8_t xb_p7_signer_infos[] = {0x31, 0x00};

xb_err xb_est_pkcs7_certs(const uint8_t *const *der, const size_t *len, size_t n, uint8_t **out,
                          size_t *out_len, xb_diag *d)
{
    *out = NULL;
    *out_len = 0;
    /* Built from the certificates' own octets, without decoding them: on the enrollment path
     * a d2i_X509 + i2d_PKCS7 round trip cost as much as the rest of the answer. Each input must
     * be one whole DER SEQUENCE (they are our own certificates). */
    size_t certs = 0;
    for (size_t i = 0; i < n; i++) {
        xb_der_reader r = xb_der_reader_of(der[i], len[i]);
        xb_der_elem e;
        if (!xb_der_read_tag(&r, XB_DER_SEQUENCE, &e) || r.left != 0)
            return xb_fail(d, XB_ERR_CRYPTO, "certificate %zu is not one DER element", i + 1);
        certs += len[i];
    }
    size_t signed_data = sizeof xb_p7_version_digests_content + xb_der_header_len(certs) + certs +
                         sizeof xb_p7_signer_infos;
    size_t explicit0 = xb_der_header_len(signed_data) + signed_data;
    size_t content_info = sizeof xb_p7_signed_data_oid + xb_der_header_len(explicit0) + explicit0;
    size_t total = xb_der_header_len(content_info) + content_info;
    uint8_t *buf = OPENSSL_malloc(total), *p = buf;
    if (buf == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "PKCS#7 buffer");
    p = xb_der_put_header(p, XB_DER_SEQUENCE, content_info);
    memcpy(p, xb_p7_signed_data_oid, sizeof xb_p7_signed_data_oid);
    p += sizeof xb_p7_signed_data_oid;
    p = xb_der_put_header(p, XB_DER_TAGGED(0), explicit0);
    p = xb_der_put_header(p, XB_DER_SEQUENCE, signed_data);
    memcpy(p, xb_p7_version_digests_content, sizeof xb_p7_version_digests_content);
    p += sizeof xb_p7_version_digests_content;
    p = xb_der_put_header(p, XB_DER_TAGGED(0), certs); /* [0] IMPLICIT SET OF Certificate */
    for (size_t i = 0; i < n; i++) {
        memcpy(p, der[i], len[i]);
        p += len[i];
    }
    memcpy(p, xb_p7_signer_infos, sizeof xb_p7_signer_infos);
    *out = buf;
    *out_len = total;
    return XB_OK;
}

/* ---- CsrAttrs: every element here is shorter than 128 octets (short-form lengths) ---- */

static const uint8_t xb_attr_cn[] = {0x06, 0x03, 0x55, 0x04, 0x03};
static const uint8_t xb_attr_challenge[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                            0xf7, 0x0d, 0x01, 0x09, 0x07};
/* Attribute { id-ecPublicKey, SET { namedCurve } } (RFC 8951 section 3.4 style key type) */
static const uint8_t xb_attr_ec_p256[] = {0x30, 0x15, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce,
                                          0x3d, 0x02, 0x01, 0x31, 0x0a, 0x06, 0x08, 0x2a,
                                          0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t xb_attr_ec_p384[] = {0x30, 0x12, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                          0xce, 0x3d, 0x02, 0x01, 0x31, 0x07, 0x06,
                                          0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t xb_attr_ecdsa_sha256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                               0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t xb_attr_ecdsa_sha384[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                               0xce, 0x3d, 0x04, 0x03, 0x03};
static const uint8_t xb_attr_rsa[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                      0xf7, 0x0d, 0x01, 0x01, 0x01};
static const uint8_t xb_attr_sha256_rsa[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                             0xf7, 0x0d, 0x01, 0x01, 0x0b};

typedef struct xb_est_buf {
    uint8_t b[126];
    size_t n;
} xb_est_buf;

static void xb_est_put(xb_est_buf *buf, const uint8_t *p, size_t n)
{
    if (buf->n + n <= sizeof buf->b) {
        memcpy(buf->b + buf->n, p, n);
        buf->n += n;
    }
}

xb_err xb_est_csrattrs(const char *key_type, int require_pop, uint8_t **out, size_t *out_len,
                       xb_diag *d)
{
    xb_est_buf body = {.n = 0};
    xb_est_put(&body, xb_attr_cn, sizeof xb_attr_cn);
    if (require_pop)
        xb_est_put(&body, xb_attr_challenge, sizeof xb_attr_challenge);
    if (strcmp(key_type, "ec-p256") == 0) {
        xb_est_put(&body, xb_attr_ec_p256, sizeof xb_attr_ec_p256);
        xb_est_put(&body, xb_attr_ecdsa_sha256, sizeof xb_attr_ecdsa_sha256);
    } else if (strcmp(key_type, "ec-p384") == 0) {
        xb_est_put(&body, xb_attr_ec_p384, sizeof xb_attr_ec_p384);
        xb_est_put(&body, xb_attr_ecdsa_sha384, sizeof xb_attr_ecdsa_sha384);
    } else if (strcmp(key_type, "rsa") == 0) {
        xb_est_put(&body, xb_attr_rsa, sizeof xb_attr_rsa);
        xb_est_put(&body, xb_attr_sha256_rsa, sizeof xb_attr_sha256_rsa);
    } /* any other CA key: no advice, the key policy still applies */
    uint8_t *der = OPENSSL_malloc(body.n + 2);
    if (der == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    der[0] = 0x30; /* SEQUENCE OF AttrOrOID */
    der[1] = (uint8_t)body.n;
    memcpy(der + 2, body.b, body.n);
    *out = der;
    *out_len = body.n + 2;
    return XB_OK;
}

int xb_est_media_type_is(const char *ct, const char *want)
{
    if (ct == NULL)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return n == strlen(want) && strncasecmp(ct, want, n) == 0;
}

xb_err xb_est_decode_body(const char *body, size_t len, uint8_t **der, size_t *der_len, xb_diag *d)
{
    *der = NULL;
    *der_len = 0;
    if (xb_base64_decode_ws(body, len, der, der_len) != 0)
        return xb_fail(d, XB_ERR_BAD_BASE64,
                       "the body is not base64 of a DER PKCS#10 (RFC 7030 section 4.2.1)");
    if (*der_len == 0) {
        free(*der);
        *der = NULL;
        return xb_fail(d, XB_ERR_BAD_CSR, "the body is empty: send base64 of a DER PKCS#10");
    }
    return XB_OK;
}

int xb_est_tls_unique_ok(const uint8_t *finished, size_t finished_len, const char *challenge)
{
    char want[(EVP_MAX_MD_SIZE + 2) / 3 * 4 + 1];
    if (finished_len == 0 || finished_len > EVP_MAX_MD_SIZE)
        return 0;
    int n = EVP_EncodeBlock((unsigned char *)want, finished, (int)finished_len);
    return n > 0 && strlen(challenge) == (size_t)n &&
           CRYPTO_memcmp(want, challenge, (size_t)n) == 0;
}
