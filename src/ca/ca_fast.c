/* Preparing a loaded CA for the fast issuer (issue.c): every part of a device certificate that
 * does not depend on the request, as DER octets, and the digest context, built once at load
 * instead of once per certificate. Nothing here needs the private key: the signer has it. */
#include "ca_internal.h"

#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>

void xb_ca_fast_free(xb_ca_fast *f)
{
    OPENSSL_free(f->issuer);
    OPENSSL_free(f->sig_alg);
    OPENSSL_free(f->ext_head[0]);
    OPENSSL_free(f->ext_head[1]);
    OPENSSL_free(f->ext_tail);
    OPENSSL_free(f->ext_cdp);
    EVP_MD_free(f->md);
    EVP_MD_free(f->sha1);
    EVP_MD_free(f->sha256);
    EVP_MD_CTX_free(f->md_ctx);
    memset(f, 0, sizeof *f);
}

/* The extensions' DER concatenated, in the order the reference adds them. */
static int xb_fast_concat_exts(X509_EXTENSION *const *exts, size_t n, uint8_t **out,
                               size_t *out_len)
{
    size_t total = 0;
    int lens[4];
    for (size_t i = 0; i < n; i++) {
        lens[i] = i2d_X509_EXTENSION(exts[i], NULL);
        if (lens[i] <= 0)
            return 0;
        total += (size_t)lens[i];
    }
    uint8_t *buf = OPENSSL_malloc(total), *p = buf;
    if (buf == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        i2d_X509_EXTENSION(exts[i], &p);
    *out = buf;
    *out_len = total;
    return 1;
}

/* The signature AlgorithmIdentifier exactly as X509_sign writes it for this key type and
 * digest: ecdsa-with-SHA256/384 with parameters absent (RFC 5758 3.2), sha256WithRSAEncryption
 * with NULL parameters (RFC 4055 5). Built from the public key, so that a key the signer holds
 * elsewhere (a token) needs no trial signature. */
static int xb_fast_sig_alg(xb_ca *ca)
{
    const EVP_PKEY *pub = ca->signer->pub;
    int pkey_nid = EVP_PKEY_get_base_id(pub), sig_nid = NID_undef;
    if ((pkey_nid != EVP_PKEY_EC && pkey_nid != EVP_PKEY_RSA) ||
        !OBJ_find_sigid_by_algs(&sig_nid, EVP_MD_get_type(ca->md), pkey_nid))
        return 0;
    X509_ALGOR *alg = X509_ALGOR_new();
    unsigned char *der = NULL;
    int len = -1;
    if (alg != NULL && X509_ALGOR_set0(alg, OBJ_nid2obj(sig_nid),
                                       pkey_nid == EVP_PKEY_RSA ? V_ASN1_NULL : V_ASN1_UNDEF, NULL))
        len = i2d_X509_ALGOR(alg, &der);
    X509_ALGOR_free(alg);
    if (len <= 0)
        return 0;
    ca->fast.sig_alg = der;
    ca->fast.sig_alg_len = (size_t)len;
    return 1;
}

static int xb_fast_copy_attrs(xb_ca *ca)
{
    for (int i = 0; i < ca->copy_count; i++) {
        xb_ca_copy_attr *c = &ca->fast.copy[i];
        const ASN1_OBJECT *obj = OBJ_nid2obj(ca->copy_nids[i]);
        if (obj == NULL)
            return 0;
        /* An object without an OID (OpenSSL has a few) matches no entry. */
        c->oid = OBJ_get0_data(obj);
        c->oid_len = OBJ_length(obj);
        c->sn = OBJ_nid2sn(ca->copy_nids[i]);
        /* X.520 bounds as OpenSSL's string table has them (C: 2, O/OU: 64, L/ST: 128). */
        ASN1_STRING_TABLE *t = ASN1_STRING_TABLE_get(ca->copy_nids[i]);
        c->max_chars = t != NULL && t->maxsize > 0 ? t->maxsize : 64;
        c->min_chars = t != NULL && t->minsize > 0 ? t->minsize : 1;
    }
    return 1;
}

xb_err xb_ca_fast_prepare(xb_ca *ca, xb_diag *d)
{
    xb_ca_fast *f = &ca->fast;
    unsigned char *issuer = NULL;
    int issuer_len = i2d_X509_NAME(X509_get_subject_name(ca->cert), &issuer);
    if (issuer_len <= 0)
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot encode the CA subject");
    f->issuer = issuer;
    f->issuer_len = (size_t)issuer_len;
    X509_EXTENSION *ec[] = {ca->ext_basic_constraints, ca->ext_key_usage_ec, ca->ext_eku};
    X509_EXTENSION *rsa[] = {ca->ext_basic_constraints, ca->ext_key_usage_rsa, ca->ext_eku};
    if (!xb_fast_concat_exts(ec, 3, &f->ext_head[0], &f->ext_head_len[0]) ||
        !xb_fast_concat_exts(rsa, 3, &f->ext_head[1], &f->ext_head_len[1]) ||
        !xb_fast_concat_exts(&ca->ext_aki, 1, &f->ext_tail, &f->ext_tail_len))
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot encode certificate extensions");
    if (!xb_fast_copy_attrs(ca))
        return xb_fail_ssl(d, XB_ERR_CONFIG, "subject_attributes: attribute without an OID");
    if (!xb_fast_sig_alg(ca))
        return xb_fail_ssl(d, XB_ERR_CONFIG, "the CA key cannot sign certificates");
    f->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    f->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    f->md_ctx = EVP_MD_CTX_new();
    f->md = EVP_MD_fetch(NULL, EVP_MD_get0_name(ca->md), NULL);
    if (f->sha1 == NULL || f->sha256 == NULL || f->md_ctx == NULL || f->md == NULL)
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot prepare the signing context");
    int size = EVP_PKEY_get_size(ca->signer->pub);
    if (size <= 0)
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot size the CA signature");
    f->sig_max = (size_t)size;
    ERR_clear_error();
    return XB_OK;
}
