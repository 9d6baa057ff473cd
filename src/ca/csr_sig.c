/* The request's signature: its algorithm (with the digest policy of ca_reference.h) and the
 * proof-of-possession check over the exact CertificationRequestInfo octets: the digest with a
 * per-thread EVP_MD, then EVP_PKEY_verify, as EVP_DigestVerify would do it. */
#include "csr_internal.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>

#define XB_OID_ARC_ECDSA_SHA2 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03
#define XB_OID_ARC_PKCS1 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01
#define XB_OID_ARC_NIST_HASH 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02

static const struct {
    uint8_t oid[9];
    uint8_t len;
    uint8_t kind, md;
} xb_sig_algs[] = {
    {{XB_OID_ARC_ECDSA_SHA2, 0x02}, 8, XB_SIG_ECDSA, XB_MD_SHA256},
    {{XB_OID_ARC_ECDSA_SHA2, 0x03}, 8, XB_SIG_ECDSA, XB_MD_SHA384},
    {{XB_OID_ARC_ECDSA_SHA2, 0x04}, 8, XB_SIG_ECDSA, XB_MD_SHA512},
    {{XB_OID_ARC_PKCS1, 0x0b}, 9, XB_SIG_RSA_PKCS1, XB_MD_SHA256},
    {{XB_OID_ARC_PKCS1, 0x0c}, 9, XB_SIG_RSA_PKCS1, XB_MD_SHA384},
    {{XB_OID_ARC_PKCS1, 0x0d}, 9, XB_SIG_RSA_PKCS1, XB_MD_SHA512},
};
static const uint8_t xb_oid_rsassa_pss[] = {XB_OID_ARC_PKCS1, 0x0a};
static const uint8_t xb_oid_mgf1[] = {XB_OID_ARC_PKCS1, 0x08};
static const uint8_t xb_oid_hashes[XB_MD_COUNT][9] = {
    {XB_OID_ARC_NIST_HASH, 0x01}, {XB_OID_ARC_NIST_HASH, 0x02}, {XB_OID_ARC_NIST_HASH, 0x03}};

/* For messages only: OpenSSL's short name of the digest an algorithm OID stands for (for a
 * signature algorithm, the digest of its signature-id table entry). */
static const char *xb_sig_digest_name(const xb_der_elem *oid, int is_signature_alg)
{
    const unsigned char *p = oid->tlv;
    ASN1_OBJECT *obj =
        oid->tag == XB_DER_OID ? d2i_ASN1_OBJECT(NULL, &p, (long)oid->tlv_len) : NULL;
    int nid = obj != NULL ? OBJ_obj2nid(obj) : NID_undef, md_nid = nid, pk_nid = NID_undef;
    ASN1_OBJECT_free(obj);
    ERR_clear_error();
    if (is_signature_alg && !OBJ_find_sigid_algs(nid, &md_nid, &pk_nid))
        md_nid = NID_undef;
    const char *name = md_nid != NID_undef ? OBJ_nid2sn(md_nid) : NULL;
    return name != NULL ? name : "an unknown digest";
}

/* AlgorithmIdentifier { OID, ANY OPTIONAL } as X509_ALGOR decodes it. */
static int xb_sig_read_alg_id(const xb_der_elem *seq, xb_der_elem *oid, xb_der_elem *param)
{
    xb_der_reader r = xb_der_reader_of(seq->val, seq->len);
    memset(param, 0, sizeof *param);
    if (seq->tag != XB_DER_SEQUENCE || !xb_der_read_tag(&r, XB_DER_OID, oid) ||
        !xb_der_oid_ok(oid->val, oid->len))
        return 0;
    if (r.left > 0 && (!xb_der_read(&r, param) || !xb_der_any_ok(param)))
        return 0;
    return r.left == 0;
}

/* One hash AlgorithmIdentifier (its parameters are not looked at, as by OpenSSL): XB_MD_* or
 * -1. */
static int xb_sig_hash_of(const xb_der_elem *oid)
{
    for (int i = 0; i < XB_MD_COUNT; i++)
        if (XB_DER_OID_IS(oid, xb_oid_hashes[i]))
            return i;
    return -1;
}

/* The RSASSA-PSS-params fields, each optional and [n] EXPLICIT: as RSA_PSS_PARAMS decodes. */
typedef struct xb_pss_fields {
    xb_der_elem hash, mgf, salt, trailer; /* tag 0 when absent */
} xb_pss_fields;

static int xb_sig_read_pss(const xb_der_elem *param, xb_pss_fields *f)
{
    memset(f, 0, sizeof *f);
    if (param->tag != XB_DER_SEQUENCE)
        return 0;
    xb_der_reader r = xb_der_reader_of(param->val, param->len);
    xb_der_elem *slots[4] = {&f->hash, &f->mgf, &f->salt, &f->trailer};
    for (int n = 0; n < 4; n++) {
        xb_der_elem wrapper;
        if (xb_der_peek(&r) != XB_DER_TAGGED(n))
            continue;
        xb_der_reader inner;
        if (!xb_der_read(&r, &wrapper))
            return 0;
        inner = xb_der_reader_of(wrapper.val, wrapper.len);
        if (!xb_der_read(&inner, slots[n]) || inner.left != 0)
            return 0;
    }
    if (r.left != 0)
        return 0;
    xb_der_elem oid, p;
    if (f->hash.tag && !xb_sig_read_alg_id(&f->hash, &oid, &p))
        return 0;
    if (f->mgf.tag && !xb_sig_read_alg_id(&f->mgf, &oid, &p))
        return 0;
    if (f->salt.tag &&
        (f->salt.tag != XB_DER_INTEGER || !xb_der_integer_ok(f->salt.val, f->salt.len)))
        return 0;
    if (f->trailer.tag &&
        (f->trailer.tag != XB_DER_INTEGER || !xb_der_integer_ok(f->trailer.val, f->trailer.len)))
        return 0;
    return 1;
}

static xb_err xb_sig_pss(const xb_der_elem *param, xb_sig_alg *out, xb_diag *d)
{
    xb_pss_fields f;
    if (!xb_sig_read_pss(param, &f))
        return xb_fail(d, XB_ERR_CSR_SIGNATURE, XB_CSR_DIGEST_MSG, "an unknown digest");
    xb_der_elem oid, p;
    /* An absent hashAlgorithm means SHA-1. */
    out->md = f.hash.tag ? (xb_sig_read_alg_id(&f.hash, &oid, &p), xb_sig_hash_of(&oid)) : -1;
    if (out->md < 0)
        return xb_fail(d, XB_ERR_CSR_SIGNATURE, XB_CSR_DIGEST_MSG,
                       f.hash.tag ? xb_sig_digest_name(&oid, 0) : "SHA1");
    out->mgf1_md = -1;
    const char *mgf_name = "SHA1"; /* the default mask generation is MGF1 with SHA-1 */
    if (f.mgf.tag) {
        xb_sig_read_alg_id(&f.mgf, &oid, &p);
        if (!XB_DER_OID_IS(&oid, xb_oid_mgf1))
            return xb_fail(d, XB_ERR_CSR_SIGNATURE,
                           "the CSR's RSA-PSS mask generation function is not MGF1");
        /* MGF1's parameter is the AlgorithmIdentifier of its hash. */
        xb_der_elem mgf_oid, mgf_param;
        if (p.tag != XB_DER_SEQUENCE || !xb_sig_read_alg_id(&p, &mgf_oid, &mgf_param))
            return xb_fail(d, XB_ERR_CSR_SIGNATURE,
                           "the CSR's RSA-PSS MGF1 parameters cannot be decoded");
        out->mgf1_md = xb_sig_hash_of(&mgf_oid);
        mgf_name = xb_sig_digest_name(&mgf_oid, 0);
    }
    if (out->mgf1_md < 0)
        return xb_fail(d, XB_ERR_CSR_SIGNATURE, XB_CSR_MGF_DIGEST_MSG, mgf_name);
    long salt = 20;
    if (f.salt.tag && !xb_der_small_uint(&f.salt, &salt))
        salt = -1;
    if (salt < 0 || salt > XB_CSR_PSS_MAX_SALT)
        return xb_fail(d, XB_ERR_CSR_SIGNATURE, "the CSR's RSA-PSS salt length is out of range");
    long trailer = 1;
    if (f.trailer.tag && !xb_der_small_uint(&f.trailer, &trailer))
        trailer = -1;
    if (trailer != 1)
        return xb_fail(d, XB_ERR_CSR_SIGNATURE, "the CSR's RSA-PSS trailer field is not 1");
    out->kind = XB_SIG_RSA_PSS;
    out->salt = (int)salt;
    return XB_OK;
}

xb_err xb_sig_alg_decode(const xb_der_elem *oid, const xb_der_elem *param, xb_sig_alg *out,
                         xb_diag *d)
{
    memset(out, 0, sizeof *out);
    /* ECDSA and PKCS#1 v1.5 parameters are not looked at: OpenSSL's verification ignores
     * them too, and they are not copied anywhere. */
    for (size_t i = 0; i < sizeof xb_sig_algs / sizeof xb_sig_algs[0]; i++) {
        if (xb_der_oid_is(oid, xb_sig_algs[i].oid, xb_sig_algs[i].len)) {
            out->kind = xb_sig_algs[i].kind;
            out->md = xb_sig_algs[i].md;
            return XB_OK;
        }
    }
    if (XB_DER_OID_IS(oid, xb_oid_rsassa_pss))
        return xb_sig_pss(param, out, d);
    return xb_fail(d, XB_ERR_CSR_SIGNATURE, XB_CSR_DIGEST_MSG, xb_sig_digest_name(oid, 1));
}

static int xb_sig_setup(EVP_PKEY_CTX *ctx, const xb_csr_cache *cache, const xb_sig_alg *alg)
{
    if (EVP_PKEY_verify_init(ctx) != 1)
        return 0;
    /* ECDSA takes the digest as it is; RSA needs the digest to build or check its encoding. */
    if (alg->kind == XB_SIG_ECDSA)
        return 1;
    if (EVP_PKEY_CTX_set_signature_md(ctx, cache->md[alg->md]) != 1)
        return 0;
    if (alg->kind == XB_SIG_RSA_PKCS1)
        return 1;
    return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, alg->salt) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, cache->md[alg->mgf1_md]) == 1;
}

xb_err xb_sig_verify(xb_csr_cache *cache, const xb_csr_key *key, const xb_sig_alg *alg,
                     const uint8_t *tbs, size_t tbs_len, const xb_der_elem *sig, xb_diag *d)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    /* X509_REQ_verify refuses a signature with unused bits, and an algorithm of another key
     * type. */
    int ok = sig->val[0] == 0 && key->is_rsa == (alg->kind != XB_SIG_ECDSA) &&
             EVP_DigestInit_ex2(cache->md_ctx, cache->md[alg->md], NULL) == 1 &&
             EVP_DigestUpdate(cache->md_ctx, tbs, tbs_len) == 1 &&
             EVP_DigestFinal_ex(cache->md_ctx, md, &md_len) == 1;
    /* verify_init, also on the cached context: it takes the key as it is now. */
    EVP_PKEY_CTX *ctx = !ok                   ? NULL
                        : key->verify != NULL ? key->verify
                                              : EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    ok = ctx != NULL && xb_sig_setup(ctx, cache, alg) &&
         EVP_PKEY_verify(ctx, sig->val + 1, sig->len - 1, md, md_len) == 1;
    if (ctx != key->verify)
        EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    if (!ok)
        return xb_fail(d, XB_ERR_CSR_SIGNATURE,
                       "the CSR signature does not verify with the CSR's public key");
    return XB_OK;
}
