/* The fast request parser (csr.c) against the reference (ca_reference.h) on requests built
 * octet by octet and validly signed: versions, attributes and names OpenSSL's decoder accepts
 * or refuses, non-canonical keys, hybrid and compressed points, signature algorithms and RSA-PSS
 * parameters, depth limits, the per-thread EC key reused across requests. Same decisions and
 * error codes, through xb_ca_crosscheck. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "der.h"
#include "xb_util.h"

enum { CA_P256, CA_RSA, CA_COUNT };
static const char *const ca_types[CA_COUNT] = {"ec-p256", "rsa-2048"};
static EVP_PKEY *keys[3]; /* P-256, P-384, RSA-2048 */

#include "crosscheck_support.h"
#include "der_build.h"

/* ---- requests built octet by octet, signed ---- */

static buf raw(const void *p, size_t n)
{
    buf b = {0};
    buf_add(&b, p, n);
    return b;
}

/* An element around the given parts (consumed). */
static buf wrap(uint8_t tag, int n, ...)
{
    va_list ap;
    buf content = {0}, out = {0};
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        buf part = va_arg(ap, buf);
        buf_add(&content, part.p, part.n);
        free(part.p);
    }
    va_end(ap);
    put_element(&out, tag, &content, 0);
    free(content.p);
    return out;
}

#define OID(...)                                                                                   \
    wrap(XB_DER_OID, 1, raw((const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})))
#define BYTES(tag, ...)                                                                            \
    wrap(tag, 1, raw((const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})))
#define NULL_ELEM() wrap(XB_DER_NULL, 0)
#define OID_SHA1 0x2b, 0x0e, 0x03, 0x02, 0x1a
#define OID_SHA256 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01
#define OID_SHA512 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03
#define OID_MGF1 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08
#define OID_PSS 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a
#define OID_RSA 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01
#define OID_EC 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01

static buf name_cn(const char *cn)
{
    return wrap(XB_DER_SEQUENCE, 1,
                wrap(XB_DER_SET, 1,
                     wrap(XB_DER_SEQUENCE, 2, OID(0x55, 0x04, 0x03),
                          wrap(XB_DER_UTF8STRING, 1, raw(cn, strlen(cn))))));
}

static buf spki_of(EVP_PKEY *k)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    assert_true(n > 0);
    buf b = raw(der, (size_t)n);
    OPENSSL_free(der);
    return b;
}

static buf info_of(buf version, buf name, buf spki, int with_attrs)
{
    if (!with_attrs)
        return wrap(XB_DER_SEQUENCE, 3, version, name, spki);
    return wrap(XB_DER_SEQUENCE, 4, version, name, spki, wrap(XB_DER_TAGGED(0), 0));
}

/* The request info signed as alg says (md, RSA-PSS salt and MGF1 digest when pss_salt >= 0). */
static buf sign_as(EVP_PKEY *k, buf info, buf alg, const EVP_MD *md, int pss_salt,
                   const EVP_MD *mgf1, uint8_t unused_bits)
{
    uint8_t sig[1024];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(EVP_DigestSignInit(ctx, &pctx, md, NULL, k), 1);
    if (pss_salt >= 0) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, mgf1), 1);
    }
    assert_int_equal(EVP_DigestSign(ctx, sig, &sig_len, info.p, info.n), 1);
    EVP_MD_CTX_free(ctx);
    buf bits = raw(&unused_bits, 1);
    buf_add(&bits, sig, sig_len);
    return wrap(XB_DER_SEQUENCE, 3, info, alg, wrap(XB_DER_BIT_STRING, 1, bits));
}

static void expect(xb_ca *ca, buf csr, xb_err want, const char *reg_id)
{
    xb_err got = agree(ca, csr.p, csr.n, reg_id);
    if (got != want)
        fail_msg("expected %s, both paths said %s", xb_err_code(want), xb_err_code(got));
    free(csr.p);
}

static buf ecdsa_alg(int with_null)
{
    return with_null
               ? wrap(XB_DER_SEQUENCE, 2, OID(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02),
                      NULL_ELEM())
               : wrap(XB_DER_SEQUENCE, 1, OID(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02));
}

/* EC point octets of k in the given form (0x04 uncompressed, 0x02 compressed, 0x06 hybrid). */
static buf ec_point(EVP_PKEY *k, uint8_t form)
{
    uint8_t pt[133];
    size_t n = 0;
    assert_int_equal(
        EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof pt, &n),
        1);
    size_t coord = (n - 1) / 2;
    uint8_t odd = pt[n - 1] & 1;
    if (form == 0x02)
        n = 1 + coord;
    if (form != 0x04)
        pt[0] = (uint8_t)(form | odd);
    return raw(pt, n);
}

static buf ec_spki(EVP_PKEY *k, buf point, uint8_t unused_bits)
{
    int p384 = EVP_PKEY_get_bits(k) == 384;
    buf curve = p384 ? OID(0x2b, 0x81, 0x04, 0x00, 0x22)
                     : OID(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07);
    buf bits = raw(&unused_bits, 1);
    buf_add(&bits, point.p, point.n);
    free(point.p);
    return wrap(XB_DER_SEQUENCE, 2, wrap(XB_DER_SEQUENCE, 2, OID(OID_EC), curve),
                wrap(XB_DER_BIT_STRING, 1, bits));
}

static buf rsa_integer(EVP_PKEY *k, const char *which, int extra_zero)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, which, &bn), 1);
    uint8_t mag[600];
    int n = BN_bn2bin(bn, mag + 2);
    BN_free(bn);
    mag[0] = mag[1] = 0;
    int pad = (mag[2] & 0x80) ? 1 : 0;
    pad += extra_zero;
    return wrap(XB_DER_INTEGER, 1, raw(mag + 2 - pad, (size_t)(n + pad)));
}

/* RSA SubjectPublicKeyInfo with the parameters given (NULL or absent), variations of its key. */
static buf rsa_spki(EVP_PKEY *k, int null_params, int extra_zero, int trailing)
{
    buf key = wrap(XB_DER_SEQUENCE, 2, rsa_integer(k, OSSL_PKEY_PARAM_RSA_N, extra_zero),
                   rsa_integer(k, OSSL_PKEY_PARAM_RSA_E, 0));
    buf bits = raw("\0", 1);
    buf_add(&bits, key.p, key.n);
    if (trailing)
        buf_add(&bits, "\0", 1);
    free(key.p);
    buf alg = null_params ? wrap(XB_DER_SEQUENCE, 2, OID(OID_RSA), NULL_ELEM())
                          : wrap(XB_DER_SEQUENCE, 1, OID(OID_RSA));
    return wrap(XB_DER_SEQUENCE, 2, alg, wrap(XB_DER_BIT_STRING, 1, bits));
}

/* RSASSA-PSS AlgorithmIdentifier: hash (0: absent, else OID list), MGF (mgf: 0 absent, 1 MGF1
 * with mgf_hash, 2 another function), salt (raw INTEGER contents or NULL), trailer (or -1). */
static buf pss_alg(int hash, int hash_null, int mgf, int mgf_hash, const uint8_t *salt,
                   size_t salt_len, int trailer)
{
    buf params = {0};
    if (hash) {
        buf h = hash == 256 ? OID(OID_SHA256) : hash == 512 ? OID(OID_SHA512) : OID(OID_SHA1);
        buf alg =
            hash_null ? wrap(XB_DER_SEQUENCE, 2, h, NULL_ELEM()) : wrap(XB_DER_SEQUENCE, 1, h);
        buf e = wrap(XB_DER_TAGGED(0), 1, alg);
        buf_add(&params, e.p, e.n);
        free(e.p);
    }
    if (mgf) {
        buf h = mgf_hash == 256   ? OID(OID_SHA256)
                : mgf_hash == 512 ? OID(OID_SHA512)
                                  : OID(OID_SHA1);
        buf f = mgf == 1 ? OID(OID_MGF1) : OID(OID_RSA);
        buf e = wrap(XB_DER_TAGGED(1), 1,
                     wrap(XB_DER_SEQUENCE, 2, f, wrap(XB_DER_SEQUENCE, 2, h, NULL_ELEM())));
        buf_add(&params, e.p, e.n);
        free(e.p);
    }
    if (salt != NULL) {
        buf e = wrap(XB_DER_TAGGED(2), 1, wrap(XB_DER_INTEGER, 1, raw(salt, salt_len)));
        buf_add(&params, e.p, e.n);
        free(e.p);
    }
    if (trailer >= 0) {
        uint8_t t = (uint8_t)trailer;
        buf e = wrap(XB_DER_TAGGED(3), 1, wrap(XB_DER_INTEGER, 1, raw(&t, 1)));
        buf_add(&params, e.p, e.n);
        free(e.p);
    }
    return wrap(XB_DER_SEQUENCE, 2, OID(OID_PSS), wrap(XB_DER_SEQUENCE, 1, params));
}

static int setup(void **state)
{
    (void)state;
    cas_create();
    keys[0] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    keys[1] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    keys[2] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    for (int i = 0; i < 3; i++)
        assert_non_null(keys[i]);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        EVP_PKEY_free(keys[i]);
    return cas_remove();
}

/* ---- tests ---- */

static void test_signed_variants(void **state)
{
    (void)state;
    xb_ca *ca = load_ca(CA_P256, NULL);
    EVP_PKEY *ec = keys[0], *ec384 = keys[1], *rsa = keys[2];
    const char *v0 = "\0", *v1 = "\1";
    /* version, attributes, names */
    expect(ca,
           sign_as(ec, info_of(wrap(2, 1, raw(v1, 1)), name_cn("dev"), spki_of(ec), 1),
                   ecdsa_alg(0), EVP_sha256(), -1, NULL, 0),
           XB_ERR_BAD_CSR, "dev");
    expect(ca,
           sign_as(ec, info_of(wrap(2, 1, raw(v0, 1)), name_cn("dev"), spki_of(ec), 0),
                   ecdsa_alg(0), EVP_sha256(), -1, NULL, 0),
           XB_OK, "dev");
    buf empty_rdn_name = wrap(XB_DER_SEQUENCE, 2, wrap(XB_DER_SET, 0),
                              wrap(XB_DER_SET, 1,
                                   wrap(XB_DER_SEQUENCE, 2, OID(0x55, 0x04, 0x03),
                                        wrap(XB_DER_UTF8STRING, 1, raw("dev", 3)))));
    expect(ca,
           sign_as(ec, info_of(wrap(2, 1, raw(v0, 1)), empty_rdn_name, spki_of(ec), 1),
                   ecdsa_alg(0), EVP_sha256(), -1, NULL, 0),
           XB_OK, "dev");
    buf seq_cn =
        wrap(XB_DER_SEQUENCE, 1,
             wrap(XB_DER_SET, 1,
                  wrap(XB_DER_SEQUENCE, 2, OID(0x55, 0x04, 0x03), wrap(XB_DER_SEQUENCE, 0))));
    expect(ca,
           sign_as(ec, info_of(wrap(2, 1, raw(v0, 1)), seq_cn, spki_of(ec), 1), ecdsa_alg(0),
                   EVP_sha256(), -1, NULL, 0),
           XB_OK, "dev");
    buf surrogate =
        wrap(XB_DER_SEQUENCE, 1,
             wrap(XB_DER_SET, 1,
                  wrap(XB_DER_SEQUENCE, 2, OID(0x55, 0x04, 0x0a), BYTES(0x1e, 0xd8, 0x00))));
    expect(ca,
           sign_as(ec, info_of(wrap(2, 1, raw(v0, 1)), surrogate, spki_of(ec), 1), ecdsa_alg(0),
                   EVP_sha256(), -1, NULL, 0),
           XB_ERR_BAD_CSR, "dev");
    /* unsorted attributes (not DER, tolerated like OpenSSL does) */
    buf attrs =
        wrap(XB_DER_TAGGED(0), 2,
             wrap(XB_DER_SEQUENCE, 2, OID(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07),
                  wrap(XB_DER_SET, 1, BYTES(0x13, 'p', 'w'))),
             wrap(XB_DER_SEQUENCE, 2, OID(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x02),
                  wrap(XB_DER_SET, 1, BYTES(0x13, 'x'))));
    expect(ca,
           sign_as(
               ec,
               wrap(XB_DER_SEQUENCE, 4, wrap(2, 1, raw(v0, 1)), name_cn("dev"), spki_of(ec), attrs),
               ecdsa_alg(0), EVP_sha256(), -1, NULL, 0),
           XB_OK, "dev");

    /* nesting around the depth limit, a high tag number form, an end-of-contents octet pair */
    for (int depth = 20; depth <= 34; depth++) {
        buf value = wrap(XB_DER_SEQUENCE, 0);
        for (int i = 1; i < depth; i++)
            value = wrap(XB_DER_SEQUENCE, 1, value);
        buf nested = wrap(XB_DER_TAGGED(0), 1,
                          wrap(XB_DER_SEQUENCE, 2, OID(0x2a, 0x03), wrap(XB_DER_SET, 1, value)));
        buf csr = sign_as(
            ec,
            wrap(XB_DER_SEQUENCE, 4, wrap(2, 1, raw(v0, 1)), name_cn("dev"), spki_of(ec), nested),
            ecdsa_alg(0), EVP_sha256(), -1, NULL, 0);
        xb_err e = agree(ca, csr.p, csr.n, "dev");
        /* the innermost contents sit at depth 6 + depth: input, request, info, [0], attribute, SET
         */
        assert_int_equal(e, 6 + depth <= XB_DER_MAX_DEPTH ? XB_OK : XB_ERR_BAD_CSR);
        free(csr.p);
    }
    static const uint8_t odd_values[][3] = {{0x1f, 0x05, 0x00}, {0x00, 0x00, 0x00}};
    for (size_t i = 0; i < 2; i++) {
        buf attr = wrap(XB_DER_TAGGED(0), 1,
                        wrap(XB_DER_SEQUENCE, 2, OID(0x2a, 0x03),
                             wrap(XB_DER_SET, 1, raw(odd_values[i], i == 0 ? 3 : 2))));
        expect(ca,
               sign_as(ec,
                       wrap(XB_DER_SEQUENCE, 4, wrap(2, 1, raw(v0, 1)), name_cn("dev"), spki_of(ec),
                            attr),
                       ecdsa_alg(0), EVP_sha256(), -1, NULL, 0),
               XB_ERR_BAD_CSR, "dev");
    }

    /* public keys */
    EVP_PKEY *eks[] = {ec, ec384};
    for (int i = 0; i < 2; i++) {
        const EVP_MD *md = i ? EVP_sha384() : EVP_sha256();
        buf alg = i ? wrap(XB_DER_SEQUENCE, 1, OID(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03))
                    : ecdsa_alg(0);
        buf alg2 = raw(alg.p, alg.n), alg3 = raw(alg.p, alg.n), alg4 = raw(alg.p, alg.n);
        expect(ca,
               sign_as(eks[i],
                       info_of(wrap(2, 1, raw(v0, 1)), name_cn("dev"),
                               ec_spki(eks[i], ec_point(eks[i], 0x02), 0), 1),
                       alg, md, -1, NULL, 0),
               XB_OK, "dev");
        expect(ca,
               sign_as(eks[i],
                       info_of(wrap(2, 1, raw(v0, 1)), name_cn("dev"),
                               ec_spki(eks[i], ec_point(eks[i], 0x06), 0), 1),
                       alg2, md, -1, NULL, 0),
               XB_ERR_KEY_NOT_ALLOWED, "dev");
        expect(ca,
               sign_as(eks[i],
                       info_of(wrap(2, 1, raw(v0, 1)), name_cn("dev"),
                               ec_spki(eks[i], ec_point(eks[i], 0x04), 1), 1),
                       alg3, md, -1, NULL, 0),
               XB_ERR_KEY_NOT_ALLOWED, "dev");
        expect(ca,
               sign_as(eks[i],
                       info_of(wrap(2, 1, raw(v0, 1)), name_cn("dev"),
                               ec_spki(eks[i], ec_point(eks[i], 0x04), 0), 1),
                       alg4, md, -1, NULL, 0),
               XB_OK, "dev");
    }
    for (int v = 0; v < 4; v++) {
        buf spki = rsa_spki(rsa, v != 1, v == 2, v == 3);
        buf alg = wrap(XB_DER_SEQUENCE, 2,
                       OID(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b), NULL_ELEM());
        expect(ca,
               sign_as(rsa, info_of(wrap(2, 1, raw(v0, 1)), name_cn("dev"), spki, 1), alg,
                       EVP_sha256(), -1, NULL, 0),
               v == 0 ? XB_OK : XB_ERR_KEY_NOT_ALLOWED, "dev");
    }
    xb_ca_free(ca);
}

static void test_signed_sig_algs(void **state)
{
    (void)state;
    xb_ca *ca = load_ca(CA_RSA, NULL);
    EVP_PKEY *ec = keys[0], *rsa = keys[2];
    const char *v0 = "\0";
#define INFO(k) info_of(wrap(2, 1, raw(v0, 1)), name_cn("dev"), spki_of(k), 1)
    expect(ca, sign_as(ec, INFO(ec), ecdsa_alg(1), EVP_sha256(), -1, NULL, 0), XB_OK, "dev");
    expect(ca, sign_as(ec, INFO(ec), ecdsa_alg(0), EVP_sha256(), -1, NULL, 1), XB_ERR_CSR_SIGNATURE,
           "dev");
    expect(ca,
           sign_as(ec, INFO(ec),
                   wrap(XB_DER_SEQUENCE, 1, OID(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01)),
                   EVP_sha224(), -1, NULL, 0),
           XB_ERR_CSR_SIGNATURE, "dev");
    expect(
        ca,
        sign_as(rsa, INFO(rsa),
                wrap(XB_DER_SEQUENCE, 1, OID(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b)),
                EVP_sha256(), -1, NULL, 0),
        XB_OK, "dev");
    expect(ca,
           sign_as(ec, INFO(ec),
                   wrap(XB_DER_SEQUENCE, 2,
                        OID(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b), NULL_ELEM()),
                   EVP_sha256(), -1, NULL, 0),
           XB_ERR_CSR_SIGNATURE, "dev");
    static const uint8_t s32[] = {0x20}, s64[] = {0x40}, neg[] = {0xe0},
                         huge[] = {0x01, 0x00, 0x00, 0x00, 0x20};
    struct {
        buf alg;
        const EVP_MD *md, *mgf1;
        int salt;
        xb_err want;
    } pss[] = {
        {pss_alg(256, 1, 1, 256, s32, 1, -1), EVP_sha256(), EVP_sha256(), 32, XB_OK},
        {pss_alg(256, 0, 1, 256, s32, 1, 1), EVP_sha256(), EVP_sha256(), 32, XB_OK},
        {pss_alg(512, 1, 1, 256, s64, 1, -1), EVP_sha512(), EVP_sha256(), 64, XB_OK},
        {pss_alg(256, 1, 1, 256, s32, 1, 2), EVP_sha256(), EVP_sha256(), 32, XB_ERR_CSR_SIGNATURE},
        {pss_alg(256, 1, 1, 1, s32, 1, -1), EVP_sha256(), EVP_sha1(), 32, XB_ERR_CSR_SIGNATURE},
        {pss_alg(256, 1, 0, 0, s32, 1, -1), EVP_sha256(), EVP_sha1(), 32, XB_ERR_CSR_SIGNATURE},
        {pss_alg(256, 1, 2, 256, s32, 1, -1), EVP_sha256(), EVP_sha256(), 32, XB_ERR_CSR_SIGNATURE},
        {pss_alg(0, 0, 1, 256, s32, 1, -1), EVP_sha1(), EVP_sha256(), 32, XB_ERR_CSR_SIGNATURE},
        {pss_alg(256, 1, 1, 256, NULL, 0, -1), EVP_sha256(), EVP_sha256(), 20, XB_OK},
        {pss_alg(256, 1, 1, 256, neg, 1, -1), EVP_sha256(), EVP_sha256(), 32, XB_ERR_CSR_SIGNATURE},
        /* 2^32 + 32: an int would hold 32, and the signature (salt 32) would verify */
        {pss_alg(256, 1, 1, 256, huge, sizeof huge, -1), EVP_sha256(), EVP_sha256(), 32,
         XB_ERR_CSR_SIGNATURE},
        {pss_alg(256, 1, 1, 256, s64, 1, -1), EVP_sha256(), EVP_sha256(), 32, XB_ERR_CSR_SIGNATURE},
    };
    for (size_t i = 0; i < sizeof pss / sizeof pss[0]; i++)
        expect(ca, sign_as(rsa, INFO(rsa), pss[i].alg, pss[i].md, pss[i].salt, pss[i].mgf1, 0),
               pss[i].want, "dev");
    /* RSA-PSS over an EC key */
    expect(ca,
           sign_as(ec, INFO(ec), pss_alg(256, 1, 1, 256, s32, 1, -1), EVP_sha256(), -1, NULL, 0),
           XB_ERR_CSR_SIGNATURE, "dev");
#undef INFO
    xb_ca_free(ca);
}

/* The fast parser gives each request's point to one EC key per curve and thread: a request
 * must never be checked against an earlier request's key, whatever came in between. */
static void test_key_reuse_across_requests(void **state)
{
    (void)state;
    xb_ca *ca = load_ca(CA_P256, NULL);
    EVP_PKEY *a = keys[0], *b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    const char *v0 = "\0";
    buf off_curve = ec_point(a, 0x04);
    off_curve.p[off_curve.n - 1] ^= 1;
    for (int round = 0; round < 3; round++) {
        /* valid from a; info with b's key signed by a; off-curve point; valid from b */
        expect(ca,
               sign_as(a, info_of(wrap(2, 1, raw(v0, 1)), name_cn("dev"), spki_of(a), 1),
                       ecdsa_alg(0), EVP_sha256(), -1, NULL, 0),
               XB_OK, "dev");
        expect(ca,
               sign_as(a, info_of(wrap(2, 1, raw(v0, 1)), name_cn("dev"), spki_of(b), 1),
                       ecdsa_alg(0), EVP_sha256(), -1, NULL, 0),
               XB_ERR_CSR_SIGNATURE, "dev");
        expect(ca,
               sign_as(a,
                       info_of(wrap(2, 1, raw(v0, 1)), name_cn("dev"),
                               ec_spki(a, raw(off_curve.p, off_curve.n), 0), 1),
                       ecdsa_alg(0), EVP_sha256(), -1, NULL, 0),
               XB_ERR_KEY_NOT_ALLOWED, "dev");
        expect(ca,
               sign_as(a, info_of(wrap(2, 1, raw(v0, 1)), name_cn("dev"), spki_of(b), 1),
                       ecdsa_alg(0), EVP_sha256(), -1, NULL, 0),
               XB_ERR_CSR_SIGNATURE, "dev");
        expect(ca,
               sign_as(b, info_of(wrap(2, 1, raw(v0, 1)), name_cn("dev"), spki_of(b), 1),
                       ecdsa_alg(0), EVP_sha256(), -1, NULL, 0),
               XB_OK, "dev");
    }
    free(off_curve.p);
    EVP_PKEY_free(b);
    xb_ca_free(ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_variants),
        cmocka_unit_test(test_signed_sig_algs),
        cmocka_unit_test(test_key_reuse_across_requests),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
