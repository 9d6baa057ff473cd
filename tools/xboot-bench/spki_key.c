#include "spki_key.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

static const uint8_t oid_ec_public_key[] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01};
static const uint8_t oid_p256[] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x2B, 0x81, 0x04, 0x00, 0x22};
static const uint8_t oid_rsa[] = {0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01};

int xbb_spki_decoder_init(xbb_spki_decoder *dec)
{
    dec->ec = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    dec->rsa = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (dec->ec == NULL || dec->rsa == NULL || EVP_PKEY_fromdata_init(dec->ec) <= 0 ||
        EVP_PKEY_fromdata_init(dec->rsa) <= 0) {
        xbb_spki_decoder_free(dec);
        return -1;
    }
    return 0;
}

void xbb_spki_decoder_free(xbb_spki_decoder *dec)
{
    EVP_PKEY_CTX_free(dec->ec);
    EVP_PKEY_CTX_free(dec->rsa);
    dec->ec = dec->rsa = NULL;
}

static EVP_PKEY *xbb_ec_key(xbb_spki_decoder *dec, xbb_span params, xbb_span point)
{
    xbb_tlv curve;
    const char *group = NULL;
    if (xbb_der_expect(&params, XBB_DER_OID, &curve) != 0)
        return NULL;
    if (xbb_span_eq(curve.val, oid_p256, sizeof oid_p256))
        group = "prime256v1";
    else if (xbb_span_eq(curve.val, oid_p384, sizeof oid_p384))
        group = "secp384r1";
    else
        return NULL;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point.p, point.len),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY *key = NULL;
    return EVP_PKEY_fromdata(dec->ec, &key, EVP_PKEY_PUBLIC_KEY, p) == 1 ? key : NULL;
}

/* OSSL_PARAM integers are native-endian; DER's are big-endian with an optional leading 0. */
static int xbb_native_uint(xbb_span be, uint8_t *out, size_t cap, size_t *len)
{
    while (be.len > 1 && be.p[0] == 0) {
        be.p++;
        be.len--;
    }
    if (be.len == 0 || be.len > cap)
        return -1;
    for (size_t i = 0; i < be.len; i++)
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        out[i] = be.p[i];
#else
        out[i] = be.p[be.len - 1 - i];
#endif
    *len = be.len;
    return 0;
}

static EVP_PKEY *xbb_rsa_key(xbb_spki_decoder *dec, xbb_span bits)
{
    xbb_tlv seq, n, e;
    if (xbb_der_expect(&bits, XBB_DER_SEQUENCE, &seq) != 0)
        return NULL;
    xbb_span s = seq.val;
    if (xbb_der_expect(&s, XBB_DER_INTEGER, &n) != 0 ||
        xbb_der_expect(&s, XBB_DER_INTEGER, &e) != 0)
        return NULL;
    uint8_t nbuf[1024], ebuf[16]; /* RSA up to 8192 bits; exponents are small */
    size_t nlen = 0, elen = 0;
    if (xbb_native_uint(n.val, nbuf, sizeof nbuf, &nlen) != 0 ||
        xbb_native_uint(e.val, ebuf, sizeof ebuf, &elen) != 0)
        return NULL;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_N, nbuf, nlen),
        OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_E, ebuf, elen),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY *key = NULL;
    return EVP_PKEY_fromdata(dec->rsa, &key, EVP_PKEY_PUBLIC_KEY, p) == 1 ? key : NULL;
}

EVP_PKEY *xbb_spki_decode(xbb_spki_decoder *dec, xbb_span spki)
{
    xbb_span alg, params, key;
    if (xbb_der_spki_fields(spki, &alg, &params, &key) != 0)
        return NULL;
    if (xbb_span_eq(alg, oid_ec_public_key, sizeof oid_ec_public_key))
        return xbb_ec_key(dec, params, key);
    if (xbb_span_eq(alg, oid_rsa, sizeof oid_rsa))
        return xbb_rsa_key(dec, key);
    return NULL;
}

const char *xbb_sig_oid_digest(xbb_span oid)
{
    static const struct {
        uint8_t oid[9];
        size_t len;
        const char *md;
    } sigs[] = {
        {{0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02}, 8, "SHA256"},
        {{0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03}, 8, "SHA384"},
        {{0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B}, 9, "SHA256"},
        {{0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0C}, 9, "SHA384"},
    };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (xbb_span_eq(oid, sigs[i].oid, sigs[i].len))
            return sigs[i].md;
    return NULL;
}
