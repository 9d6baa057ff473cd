/* The request's public key: policy (RSA 2048..4096 with an odd exponent >= 65537, EC P-256 and
 * P-384 as named curves) and canonical encoding read from the SubjectPublicKeyInfo octets, then
 * an EVP_PKEY for the signature check: RSA with EVP_PKEY_fromdata (n, e), EC as the point set
 * on a per-thread key of the curve. OpenSSL 3.0 decodes a key in d2i_X509_REQ through generic
 * machinery costing about 100 us; this is a few us. */
#include "csr_internal.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>

static const uint8_t xb_oid_ec_public_key[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t xb_oid_p256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t xb_oid_p384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t xb_oid_rsa_encryption[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                0x0d, 0x01, 0x01, 0x01};

#define XB_KEY_ALLOWED "allowed: RSA 2048..4096, EC P-256, EC P-384"

/* OpenSSL's NID for an OBJECT IDENTIFIER element; only on refusal paths, for messages. */
static int xb_key_oid_nid(const xb_der_elem *oid)
{
    const unsigned char *p = oid->tlv;
    ASN1_OBJECT *obj = d2i_ASN1_OBJECT(NULL, &p, (long)oid->tlv_len);
    int nid = obj != NULL ? OBJ_obj2nid(obj) : NID_undef;
    ASN1_OBJECT_free(obj);
    ERR_clear_error();
    return nid;
}

static xb_err xb_key_ec(xb_csr_cache *cache, const xb_der_elem *param, const xb_der_elem *bits,
                        xb_csr_key *out, xb_diag *d)
{
    int curve = XB_DER_OID_IS(param, xb_oid_p256)   ? XB_CURVE_P256
                : XB_DER_OID_IS(param, xb_oid_p384) ? XB_CURVE_P384
                                                    : -1;
    if (curve < 0) {
        /* RFC 5480 requires a named curve; explicit parameters would be copied into the
         * certificate, so they are refused even when OpenSSL recognises the curve. */
        if (param->tag == XB_DER_SEQUENCE)
            return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED,
                           "EC key with explicit or unnamed curve parameters; allowed: EC P-256, "
                           "EC P-384 as named curves");
        int nid = param->tag == XB_DER_OID ? xb_key_oid_nid(param) : NID_undef;
        EC_GROUP *known = nid != NID_undef ? EC_GROUP_new_by_curve_name(nid) : NULL;
        EC_GROUP_free(known);
        ERR_clear_error();
        if (known == NULL)
            return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED, XB_CSR_UNDECODABLE_KEY_MSG);
        return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED,
                       "EC key on curve %s; allowed: EC P-256, EC P-384, RSA 2048..4096",
                       OBJ_nid2sn(nid));
    }
    if (bits->val[0] != 0) /* unused bits: never in an encoded point */
        return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED, XB_CSR_SPKI_NOT_DER_MSG);
    const uint8_t *point = bits->val + 1;
    size_t point_len = bits->len - 1;
    /* Uncompressed and compressed points as RFC 5480 allows; the point at infinity (0x00) has
     * no encoding OpenSSL would write back. */
    if (point_len > 0 && (point[0] == 6 || point[0] == 7))
        return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED, XB_CSR_HYBRID_MSG);
    if (point_len == 0 || (point[0] != 2 && point[0] != 3 && point[0] != 4))
        return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED, XB_CSR_UNDECODABLE_KEY_MSG);
    /* The thread's key for the curve takes the point; EC_KEY_oct2key checks that it is on the
     * curve, as the reference's decoder does. */
    if (EVP_PKEY_set1_encoded_public_key(cache->ec_key[curve], point, point_len) != 1) {
        ERR_clear_error();
        return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED, XB_CSR_UNDECODABLE_KEY_MSG);
    }
    out->pkey = cache->ec_key[curve];
    out->verify = cache->ec_verify[curve];
    return XB_OK;
}

/* A non-negative DER INTEGER without its sign octet. */
static int xb_key_unsigned(const xb_der_elem *e, const uint8_t **mag, size_t *mag_len)
{
    if (!xb_der_integer_ok(e->val, e->len) || (e->val[0] & 0x80))
        return 0;
    int pad = e->len > 1 && e->val[0] == 0;
    *mag = e->val + pad;
    *mag_len = e->len - (size_t)pad;
    return 1;
}

static int xb_key_bit_count(const uint8_t *mag, size_t len)
{
    if (len == 1 && mag[0] == 0)
        return 0;
    int top = 0;
    for (unsigned v = mag[0]; v != 0; v >>= 1)
        top++;
    return (int)(len - 1) * 8 + top;
}

/* OSSL_PARAM BIGNUM buffers are unsigned integers in native byte order. */
static void xb_key_to_native(const uint8_t *be, size_t len, uint8_t *out)
{
    const union {
        uint16_t u;
        uint8_t c[2];
    } probe = {1};
    for (size_t i = 0; i < len; i++)
        out[i] = probe.c[0] ? be[len - 1 - i] : be[i];
}

static xb_err xb_key_rsa(xb_csr_cache *cache, const xb_der_elem *param, const xb_der_elem *bits,
                         xb_csr_key *out, xb_diag *d)
{
    /* RFC 3279: rsaEncryption takes NULL parameters; the key is RSAPublicKey in DER. */
    xb_der_reader r = xb_der_reader_of(bits->val + 1, bits->len - 1);
    xb_der_elem seq, n, e;
    const uint8_t *n_mag = NULL, *e_mag = NULL;
    size_t n_len = 0, e_len = 0;
    int ok = param->tag == XB_DER_NULL && param->len == 0 && bits->val[0] == 0 &&
             xb_der_read_tag(&r, XB_DER_SEQUENCE, &seq) && r.left == 0;
    if (ok) {
        xb_der_reader parts = xb_der_reader_of(seq.val, seq.len);
        ok = xb_der_read_tag(&parts, XB_DER_INTEGER, &n) &&
             xb_der_read_tag(&parts, XB_DER_INTEGER, &e) && parts.left == 0 &&
             xb_key_unsigned(&n, &n_mag, &n_len) && xb_key_unsigned(&e, &e_mag, &e_len);
    }
    if (!ok)
        return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED, XB_CSR_SPKI_NOT_DER_MSG);
    int n_bits = xb_key_bit_count(n_mag, n_len);
    if (n_bits < 2048 || n_bits > 4096)
        return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED, "RSA key of %d bits; " XB_KEY_ALLOWED, n_bits);
    /* CA/Browser Forum rule: an odd exponent from 65537 up (below 2^256). With e = 1 anyone
     * could "sign" a CSR, and proof of possession would prove nothing. */
    int e_bits = xb_key_bit_count(e_mag, e_len);
    if (!(e_mag[e_len - 1] & 1) || e_bits < 17 || e_bits > 256)
        return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED,
                       "RSA public exponent must be odd and at least 65537");
    uint8_t n_native[512], e_native[32];
    xb_key_to_native(n_mag, n_len, n_native);
    xb_key_to_native(e_mag, e_len, e_native);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_N, n_native, n_len),
        OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_E, e_native, e_len),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_PKEY_fromdata(cache->rsa_fromdata, &out->pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        ERR_clear_error();
        return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED, XB_CSR_UNDECODABLE_KEY_MSG);
    }
    out->owned = 1;
    return XB_OK;
}

xb_err xb_csr_key_decode(xb_csr_cache *cache, const xb_der_elem *alg_oid,
                         const xb_der_elem *alg_param, const xb_der_elem *bits, xb_csr_key *key,
                         xb_diag *d)
{
    memset(key, 0, sizeof *key);
    if (XB_DER_OID_IS(alg_oid, xb_oid_ec_public_key))
        return xb_key_ec(cache, alg_param, bits, key, d);
    if (XB_DER_OID_IS(alg_oid, xb_oid_rsa_encryption)) {
        key->is_rsa = 1;
        return xb_key_rsa(cache, alg_param, bits, key, d);
    }
    /* RSA-PSS-only keys, other curves, Ed25519, DSA...: named when OpenSSL knows them. */
    int nid = xb_key_oid_nid(alg_oid);
    const char *name = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
    if (name == NULL)
        return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED, XB_CSR_UNDECODABLE_KEY_MSG);
    return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED, "%s key; " XB_KEY_ALLOWED, name);
}

void xb_csr_key_release(xb_csr_key *key)
{
    if (key->owned)
        EVP_PKEY_free(key->pkey);
    memset(key, 0, sizeof *key);
}
