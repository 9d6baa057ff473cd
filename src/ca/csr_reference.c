/* Reference CSR checks (ca_reference.h): d2i_X509_REQ, X509_REQ_verify and the policy on the
 * decoded EVP_PKEY. The production parser is csr.c; the two must agree on every input. */
#include "ca_reference.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

void xb_csr_ref_free(xb_csr_ref *csr)
{
    if (csr == NULL)
        return;
    X509_REQ_free(csr->req);
    EVP_PKEY_free(csr->pkey);
    OPENSSL_free(csr);
}

/* RSA 2048..4096 (rsaEncryption keys) and EC P-256/P-384: what every IoT cloud accepts.
 * RSA-PSS-only keys, other curves, Ed25519 and DSA are refused. */
static xb_err xb_ref_check_key(EVP_PKEY *pkey, int *is_rsa, xb_diag *d)
{
    int id = EVP_PKEY_get_base_id(pkey);
    if (id == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < 2048 || bits > 4096)
            return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED,
                           "RSA key of %d bits; allowed: RSA 2048..4096, EC P-256, EC P-384", bits);
        /* CA/Browser Forum rule: an odd exponent from 65537 up. With e = 1 anyone could
         * "sign" a CSR (s = the encoded message), and proof of possession would prove nothing. */
        BIGNUM *e = NULL;
        /* Odd with 17..256 bits is exactly 65537 <= e < 2^256 and odd. */
        int e_ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) && BN_is_odd(e) &&
                   BN_num_bits(e) >= 17 && BN_num_bits(e) <= 256;
        BN_free(e);
        if (!e_ok)
            return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED,
                           "RSA public exponent must be odd and at least 65537");
        *is_rsa = 1;
        return XB_OK;
    }
    if (id == EVP_PKEY_EC) {
        char group[64] = "";
        size_t glen = 0;
        /* OpenSSL names a curve given by explicit parameters when they match a named one; the
         * certificate would then carry them too (RFC 5480 requires a named curve). */
        int explicit_params = 0;
        if (!EVP_PKEY_get_int_param(pkey, OSSL_PKEY_PARAM_EC_DECODED_FROM_EXPLICIT_PARAMS,
                                    &explicit_params))
            explicit_params = 1;
        if (explicit_params || !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                                               group, sizeof group, &glen))
            return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED,
                           "EC key with explicit or unnamed curve parameters; allowed: EC P-256, "
                           "EC P-384 as named curves");
        if (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0)
            return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED,
                           "EC key on curve %s; allowed: EC P-256, EC P-384, RSA 2048..4096",
                           group);
        *is_rsa = 0;
        return XB_OK;
    }
    const char *name = OBJ_nid2sn(id);
    return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED, "%s key; allowed: RSA 2048..4096, EC P-256, EC P-384",
                   name != NULL ? name : "unknown");
}

/* Collisions in MD5 and SHA-1 are practical: a signature over them proves little. SHA-224,
 * SHA-512/t, SHA-3 and the rest are not used by device SDKs and are refused to keep the
 * accepted set small. */
static int xb_csr_digest_allowed(int nid)
{
    return nid == NID_sha256 || nid == NID_sha384 || nid == NID_sha512;
}

/* The digest a CSR signature uses, from its AlgorithmIdentifier (for RSA-PSS from its
 * parameters, where an absent hashAlgorithm means SHA-1); NID_undef if it cannot be told. *pss
 * receives the decoded RSA-PSS parameters. */
static int xb_ref_signature_digest(const X509_REQ *req, RSA_PSS_PARAMS **pss)
{
    const X509_ALGOR *alg = NULL;
    *pss = NULL;
    X509_REQ_get0_signature(req, NULL, &alg);
    if (alg == NULL)
        return NID_undef;
    int sig_nid = OBJ_obj2nid(alg->algorithm), md_nid = NID_undef, pk_nid = NID_undef;
    if (sig_nid != NID_rsassaPss)
        return OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) ? md_nid : NID_undef;
    const ASN1_TYPE *param = alg->parameter;
    *pss = param ? ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS), param) : NULL;
    if (*pss == NULL) {
        ERR_clear_error();
        return NID_undef;
    }
    return (*pss)->hashAlgorithm ? OBJ_obj2nid((*pss)->hashAlgorithm->algorithm) : NID_sha1;
}

/* RSA-PSS beyond its hash: MGF1 with an allowed hash (the default, MGF1-SHA-1, is not), a salt
 * length a key of at most 4096 bits can hold (OpenSSL would truncate a larger one to an int),
 * the only trailer field there is. */
static xb_err xb_ref_check_pss(const RSA_PSS_PARAMS *pss, xb_diag *d)
{
    int mgf_md = NID_sha1;
    if (pss->maskGenAlgorithm != NULL) {
        if (OBJ_obj2nid(pss->maskGenAlgorithm->algorithm) != NID_mgf1)
            return xb_fail(d, XB_ERR_CSR_SIGNATURE,
                           "the CSR's RSA-PSS mask generation function is not MGF1");
        X509_ALGOR *h =
            ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ALGOR), pss->maskGenAlgorithm->parameter);
        if (h == NULL) {
            ERR_clear_error();
            return xb_fail(d, XB_ERR_CSR_SIGNATURE,
                           "the CSR's RSA-PSS MGF1 parameters cannot be decoded");
        }
        mgf_md = OBJ_obj2nid(h->algorithm);
        X509_ALGOR_free(h);
    }
    if (!xb_csr_digest_allowed(mgf_md))
        return xb_fail(d, XB_ERR_CSR_SIGNATURE, XB_CSR_MGF_DIGEST_MSG,
                       mgf_md == NID_undef ? "an unknown digest" : OBJ_nid2sn(mgf_md));
    long salt = pss->saltLength != NULL ? ASN1_INTEGER_get(pss->saltLength) : 20;
    if (salt < 0 || salt > XB_CSR_PSS_MAX_SALT)
        return xb_fail(d, XB_ERR_CSR_SIGNATURE, "the CSR's RSA-PSS salt length is out of range");
    if (pss->trailerField != NULL && ASN1_INTEGER_get(pss->trailerField) != 1)
        return xb_fail(d, XB_ERR_CSR_SIGNATURE, "the CSR's RSA-PSS trailer field is not 1");
    return XB_OK;
}

static xb_err xb_ref_check_signature_alg(const X509_REQ *req, xb_diag *d)
{
    RSA_PSS_PARAMS *pss = NULL;
    int md_nid = xb_ref_signature_digest(req, &pss);
    xb_err err = XB_OK;
    if (!xb_csr_digest_allowed(md_nid)) {
        const char *name = md_nid == NID_undef ? NULL : OBJ_nid2sn(md_nid);
        err = xb_fail(d, XB_ERR_CSR_SIGNATURE, XB_CSR_DIGEST_MSG,
                      name != NULL ? name : "an unknown digest");
    } else if (pss != NULL) {
        err = xb_ref_check_pss(pss, d);
    }
    RSA_PSS_PARAMS_free(pss);
    return err;
}

/* The SubjectPublicKeyInfo must be what OpenSSL encodes for the key it decoded from it (so that
 * the fast path's copy equals X509_set_pubkey's re-encoding): this refuses RSA keys without
 * NULL parameters or with non-minimal integers or trailing bytes, unused bits, and so on. */
static xb_err xb_ref_check_spki(const X509_REQ *req, EVP_PKEY *pkey, xb_diag *d)
{
    X509_PUBKEY *xpk = X509_REQ_get_X509_PUBKEY((X509_REQ *)req);
    unsigned char *given = NULL, *canonical = NULL;
    int given_len = i2d_X509_PUBKEY(xpk, &given);
    int canonical_len = i2d_PUBKEY(pkey, &canonical);
    int same = given_len > 0 && given_len == canonical_len &&
               memcmp(given, canonical, (size_t)given_len) == 0;
    OPENSSL_free(given);
    OPENSSL_free(canonical);
    ERR_clear_error();
    if (!same)
        return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED, XB_CSR_SPKI_NOT_DER_MSG);
    const unsigned char *pk = NULL;
    int pk_len = 0;
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC &&
        X509_PUBKEY_get0_param(NULL, &pk, &pk_len, NULL, xpk) && pk_len > 0 &&
        (pk[0] == 6 || pk[0] == 7))
        return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED, XB_CSR_HYBRID_MSG);
    return XB_OK;
}

xb_err xb_csr_parse_reference(const uint8_t *der, size_t len, xb_csr_ref **out, xb_diag *d)
{
    *out = NULL;
    if (len == 0 || len > XB_CSR_MAX_DER)
        return xb_fail(d, XB_ERR_BAD_CSR, "the CSR is empty or larger than %d bytes",
                       XB_CSR_MAX_DER);
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    if (req == NULL) {
        ERR_clear_error();
        return xb_fail(d, XB_ERR_BAD_CSR, "the CSR is not a DER PKCS#10 CertificationRequest");
    }
    if (p != der + len) {
        X509_REQ_free(req);
        return xb_fail(d, XB_ERR_BAD_CSR, "%zu bytes of trailing data after the CSR",
                       (size_t)(der + len - p));
    }
    /* d2i accepts BER (non-minimal and indefinite lengths, constructed strings). */
    if (!xb_ref_der_ok(der, len) || !xb_ref_attributes_tag_ok(der, len)) {
        X509_REQ_free(req);
        return xb_fail(d, XB_ERR_BAD_CSR, XB_CSR_NOT_DER_MSG);
    }
    if (X509_REQ_get_version(req) != X509_REQ_VERSION_1) {
        X509_REQ_free(req);
        return xb_fail(d, XB_ERR_BAD_CSR, XB_CSR_VERSION_MSG);
    }
    xb_csr_ref *csr = OPENSSL_zalloc(sizeof *csr);
    if (csr == NULL) {
        X509_REQ_free(req);
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    }
    csr->req = req;
    csr->pkey = X509_REQ_get_pubkey(req);
    if (csr->pkey == NULL) {
        ERR_clear_error();
        xb_csr_ref_free(csr);
        return xb_fail(d, XB_ERR_KEY_NOT_ALLOWED,
                       "the CSR public key cannot be decoded (unsupported algorithm or bad "
                       "encoding)");
    }
    xb_err err = xb_ref_check_spki(req, csr->pkey, d);
    if (err == XB_OK)
        err = xb_ref_check_key(csr->pkey, &csr->is_rsa, d);
    if (err == XB_OK)
        err = xb_ref_check_signature_alg(req, d);
    if (err != XB_OK) {
        xb_csr_ref_free(csr);
        return err;
    }
    /* Proof of possession. The original server computed this and ignored the result; here a
     * CSR whose signature does not verify with its own key is refused. X509_REQ_verify covers
     * RSA PKCS#1 v1.5, RSA-PSS (parameters from the AlgorithmIdentifier) and ECDSA. */
    if (X509_REQ_verify(req, csr->pkey) != 1) {
        ERR_clear_error();
        xb_csr_ref_free(csr);
        return xb_fail(d, XB_ERR_CSR_SIGNATURE,
                       "the CSR signature does not verify with the CSR's public key");
    }
    *out = csr;
    return XB_OK;
}

xb_err xb_csr_check_subject_reference(const xb_csr_ref *csr, const char *reg_id, xb_diag *d)
{
    const X509_NAME *name = X509_REQ_get_subject_name(csr->req);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0)
        return xb_fail(d, XB_ERR_SUBJECT_MISMATCH,
                       "the CSR subject has no CN; it must be CN=<registration ID>");
    if (X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0)
        return xb_fail(d, XB_ERR_SUBJECT_MISMATCH,
                       "the CSR subject has more than one CN; it must have exactly one");
    const ASN1_STRING *value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, value);
    if (n < 0) {
        ERR_clear_error();
        return xb_fail(d, XB_ERR_SUBJECT_MISMATCH, "the CSR subject CN cannot be decoded");
    }
    int same = (size_t)n == strlen(reg_id) && (n == 0 || memcmp(utf8, reg_id, (size_t)n) == 0);
    OPENSSL_free(utf8);
    if (!same)
        return xb_fail(d, XB_ERR_SUBJECT_MISMATCH,
                       "the CSR subject CN does not equal the registration ID");
    return XB_OK;
}
