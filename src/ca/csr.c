/* CSR checks: DER shape, key policy, proof of possession (the fast path of DESIGN.md section
 * 7). The PKCS#10 DER is walked in place; the SubjectPublicKeyInfo stays opaque octets (copied
 * into the certificate as they are) and only the key itself is built, for the signature check
 * (csr_key.c). Reference: csr_reference.c; the two agree on every input (tests,
 * fuzz/fuzz_csr.c). */
#include "ca.h"

#include <string.h>

#include "csr_internal.h"
#include "xb_util.h"

/* The parts of a CertificationRequest (RFC 2986) the checks need. */
typedef struct xb_csr_layout {
    xb_der_elem info; /* CertificationRequestInfo: the signed octets */
    xb_der_elem name; /* subject */
    xb_der_elem spki, key_oid, key_param, key_bits; /* key_param.tag 0 when absent */
    xb_der_elem sig_oid, sig_param, sig_bits;
    xb_der_elem attrs; /* [0] attributes; tag 0 when absent */
} xb_csr_layout;

#define XB_CSR_SHAPE_MSG "the CSR is not a DER PKCS#10 CertificationRequest"

/* AlgorithmIdentifier { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }. */
static int xb_csr_alg_id(xb_der_reader *r, xb_der_elem *oid, xb_der_elem *param)
{
    xb_der_elem seq;
    memset(param, 0, sizeof *param);
    if (!xb_der_read_tag(r, XB_DER_SEQUENCE, &seq))
        return 0;
    xb_der_reader in = xb_der_reader_of(seq.val, seq.len);
    if (!xb_der_read_tag(&in, XB_DER_OID, oid) || !xb_der_oid_ok(oid->val, oid->len))
        return 0;
    if (in.left > 0 && (!xb_der_read(&in, param) || !xb_der_any_ok(param)))
        return 0;
    return in.left == 0;
}

static int xb_csr_bit_string(xb_der_reader *r, xb_der_elem *e)
{
    return xb_der_read_tag(r, XB_DER_BIT_STRING, e) && xb_der_bit_string_ok(e->val, e->len);
}

/* attributes [0] IMPLICIT SET OF SEQUENCE { type OBJECT IDENTIFIER, values SET OF ANY }. The
 * values are never copied into a certificate (requested extensions are ignored); they are
 * checked as the reference decoder checks them, and csr_attrs.c reads a few for EST. */
static int xb_csr_attributes_ok(const xb_der_elem *attrs)
{
    xb_der_reader r = xb_der_reader_of(attrs->val, attrs->len);
    xb_der_elem attr, type, values, value;
    while (r.left > 0) {
        if (!xb_der_read_tag(&r, XB_DER_SEQUENCE, &attr))
            return 0;
        xb_der_reader parts = xb_der_reader_of(attr.val, attr.len);
        if (!xb_der_read_tag(&parts, XB_DER_OID, &type) || !xb_der_oid_ok(type.val, type.len) ||
            !xb_der_read_tag(&parts, XB_DER_SET, &values) || parts.left != 0)
            return 0;
        xb_der_reader vr = xb_der_reader_of(values.val, values.len);
        while (vr.left > 0)
            if (!xb_der_read(&vr, &value) || !xb_der_any_ok(&value))
                return 0;
    }
    return 1;
}

static int xb_csr_info_ok(xb_csr_layout *l, int *version_ok)
{
    xb_der_reader r = xb_der_reader_of(l->info.val, l->info.len), k;
    xb_der_elem version;
    memset(&l->attrs, 0, sizeof l->attrs);
    if (!xb_der_read_tag(&r, XB_DER_INTEGER, &version) ||
        !xb_der_integer_ok(version.val, version.len) ||
        !xb_der_read_tag(&r, XB_DER_SEQUENCE, &l->name) || !xb_name_ok(&l->name) ||
        !xb_der_read_tag(&r, XB_DER_SEQUENCE, &l->spki))
        return 0;
    k = xb_der_reader_of(l->spki.val, l->spki.len);
    if (!xb_csr_alg_id(&k, &l->key_oid, &l->key_param) || !xb_csr_bit_string(&k, &l->key_bits) ||
        k.left != 0)
        return 0;
    /* Some old generators leave the attributes out altogether; OpenSSL accepts that. */
    if (xb_der_peek(&r) == XB_DER_TAGGED(0) &&
        (!xb_der_read(&r, &l->attrs) || !xb_csr_attributes_ok(&l->attrs)))
        return 0;
    *version_ok = version.len == 1 && version.val[0] == 0;
    return r.left == 0;
}

static xb_err xb_csr_layout_parse(const uint8_t *der, size_t len, xb_csr_layout *l, xb_diag *d)
{
    xb_der_reader r = xb_der_reader_of(der, len), in;
    xb_der_elem req;
    if (!xb_der_read_tag(&r, XB_DER_SEQUENCE, &req))
        return xb_fail(d, XB_ERR_BAD_CSR, XB_CSR_SHAPE_MSG);
    if (r.left != 0)
        return xb_fail(d, XB_ERR_BAD_CSR, "%zu bytes of trailing data after the CSR", r.left);
    /* One pass over the whole tree first: BER anywhere, also inside values nobody reads. */
    if (!xb_der_tree_ok(der, len))
        return xb_fail(d, XB_ERR_BAD_CSR, XB_CSR_NOT_DER_MSG);
    in = xb_der_reader_of(req.val, req.len);
    int version_ok = 0;
    if (!xb_der_read_tag(&in, XB_DER_SEQUENCE, &l->info) || !xb_csr_info_ok(l, &version_ok) ||
        !xb_csr_alg_id(&in, &l->sig_oid, &l->sig_param) || !xb_csr_bit_string(&in, &l->sig_bits) ||
        in.left != 0)
        return xb_fail(d, XB_ERR_BAD_CSR, XB_CSR_SHAPE_MSG);
    if (!version_ok)
        return xb_fail(d, XB_ERR_BAD_CSR, XB_CSR_VERSION_MSG);
    return XB_OK;
}

void xb_csr_free(xb_csr *csr)
{
    if (csr == NULL)
        return;
    OPENSSL_free(csr->der);
    OPENSSL_free(csr);
}

/* The checked request, keeping a private copy of its octets. */
static xb_csr *xb_csr_keep(const uint8_t *der, size_t len, const xb_csr_layout *l, int is_rsa)
{
    xb_csr *csr = OPENSSL_zalloc(sizeof *csr);
    uint8_t *copy = OPENSSL_malloc(len);
    if (csr == NULL || copy == NULL) {
        OPENSSL_free(csr);
        OPENSSL_free(copy);
        return NULL;
    }
    memcpy(copy, der, len);
    csr->der = copy;
    csr->der_len = len;
    csr->name = copy + (l->name.tlv - der);
    csr->name_len = l->name.tlv_len;
    csr->spki = copy + (l->spki.tlv - der);
    csr->spki_len = l->spki.tlv_len;
    csr->key_bits = copy + (l->key_bits.val + 1 - der);
    csr->key_bits_len = l->key_bits.len - 1;
    csr->attrs = l->attrs.tag != 0 ? copy + (l->attrs.val - der) : NULL;
    csr->attrs_len = l->attrs.tag != 0 ? l->attrs.len : 0;
    csr->is_rsa = is_rsa;
    return csr;
}

xb_err xb_csr_parse(const uint8_t *der, size_t len, xb_csr **out, xb_diag *d)
{
    *out = NULL;
    if (len == 0 || len > XB_CSR_MAX_DER)
        return xb_fail(d, XB_ERR_BAD_CSR, "the CSR is empty or larger than %d bytes",
                       XB_CSR_MAX_DER);
    xb_csr_layout l;
    xb_err err = xb_csr_layout_parse(der, len, &l, d);
    if (err != XB_OK)
        return err;
    xb_csr_cache *cache = xb_csr_cache_get(d);
    if (cache == NULL)
        return XB_ERR_CRYPTO;
    /* The reference's order: key (decode, encoding, policy), then the signature algorithm, then
     * the signature itself, so that both report the same error for any input. */
    xb_csr_key key;
    xb_sig_alg alg;
    err = xb_csr_key_decode(cache, &l.key_oid, &l.key_param, &l.key_bits, &key, d);
    if (err == XB_OK)
        err = xb_sig_alg_decode(&l.sig_oid, &l.sig_param, &alg, d);
    /* Proof of possession: a CSR whose signature does not verify with its own key is refused
     * (the original server computed this and ignored the result). */
    if (err == XB_OK)
        err = xb_sig_verify(cache, &key, &alg, l.info.tlv, l.info.tlv_len, &l.sig_bits, d);
    int is_rsa = key.is_rsa;
    xb_csr_key_release(&key);
    if (err != XB_OK)
        return err;
    *out = xb_csr_keep(der, len, &l, is_rsa);
    return *out != NULL ? XB_OK : xb_fail(d, XB_ERR_NOMEM, "out of memory");
}

xb_err xb_csr_pubkey_sha256(const xb_csr *csr, char out[65], xb_diag *d)
{
    xb_csr_cache *cache = xb_csr_cache_get(d);
    if (cache == NULL)
        return XB_ERR_CRYPTO;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_DigestInit_ex2(cache->md_ctx, cache->md[XB_MD_SHA256], NULL) != 1 ||
        EVP_DigestUpdate(cache->md_ctx, csr->spki, csr->spki_len) != 1 ||
        EVP_DigestFinal_ex(cache->md_ctx, md, &md_len) != 1)
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot hash the public key");
    xb_hex(md, md_len, out);
    return XB_OK;
}
