/* The fast request parser's parts (csr.c, csr_name.c, csr_key.c, csr_sig.c, csr_cache.c). */
#ifndef XB_CSR_INTERNAL_H
#define XB_CSR_INTERNAL_H

#include <openssl/evp.h>

#include "ca_internal.h"
#include "der.h"

/* ---- Name (csr_name.c) ---- */

/* 1 if name (a SEQUENCE element) is a Name X509_NAME's decoder accepts: SEQUENCE OF SET OF
 * {OID, value} with values of the types and contents it allows, strings convertible to UTF-8. */
int xb_name_ok(const xb_der_elem *name);

/* Walks the AttributeTypeAndValue entries of a checked Name in order. */
typedef struct xb_name_iter {
    xb_der_reader rdns, atvs;
} xb_name_iter;

void xb_name_iter_init(xb_name_iter *it, const uint8_t *name, size_t name_len);
/* 1 and the entry (whole element), its type and its value; 0 after the last. */
int xb_name_next(xb_name_iter *it, xb_der_elem *atv, xb_der_elem *type, xb_der_elem *value);

/* ASN1_STRING_to_UTF8 of a Name value (a malloc'd copy in *utf8; free with OPENSSL_free):
 * the same conversion the reference applies to the decoded entry. Length, or < 0. */
int xb_name_value_utf8(const xb_der_elem *value, unsigned char **utf8);

/* 1 if type is the OID of commonName. */
int xb_name_is_cn(const xb_der_elem *type);

/* ---- per-thread cache (csr_cache.c) ---- */

enum { XB_MD_SHA256, XB_MD_SHA384, XB_MD_SHA512, XB_MD_COUNT };

/* What parsing a request needs that can be fetched once: xb_csr_parse has no context argument,
 * so this lives in thread-local storage (one per thread, created on first use and kept for the
 * thread's life; xbootd workers are single-threaded processes). */
enum { XB_CURVE_P256, XB_CURVE_P384, XB_CURVE_COUNT };

typedef struct xb_csr_cache {
    EVP_PKEY_CTX *rsa_fromdata; /* EVP_PKEY_fromdata_init'ed */
    /* One EC key per curve, given each request's point in turn (EC_KEY_oct2key): building a
     * group from its name (EVP_PKEY_fromdata) cost more than the rest of the parsing, copying
     * one (EVP_PKEY_copy_parameters) still half of it. A request's key is used only within
     * its xb_csr_parse, on this thread. */
    EVP_PKEY *ec_key[XB_CURVE_COUNT];
    EVP_PKEY_CTX *ec_verify[XB_CURVE_COUNT]; /* on ec_key, EVP_PKEY_verify_init'ed per request */
    EVP_MD *md[XB_MD_COUNT];
    EVP_MD_CTX *md_ctx;
} xb_csr_cache;

/* The calling thread's cache, or NULL (with d filled) if it cannot be built. */
xb_csr_cache *xb_csr_cache_get(xb_diag *d);

/* ---- public key (csr_key.c) ---- */

/* A request's key for the signature check: an RSA key of its own, or the thread's key of an
 * EC curve with its verification context (borrowed from the cache). */
typedef struct xb_csr_key {
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *verify; /* NULL: make one */
    int is_rsa, owned;
} xb_csr_key;

/* Decode a SubjectPublicKeyInfo's parts (alg_param->tag 0 when absent) into key, applying the
 * key policy and requiring the canonical encoding. Fails with XB_ERR_KEY_NOT_ALLOWED. */
xb_err xb_csr_key_decode(xb_csr_cache *cache, const xb_der_elem *alg_oid,
                         const xb_der_elem *alg_param, const xb_der_elem *bits, xb_csr_key *key,
                         xb_diag *d);
void xb_csr_key_release(xb_csr_key *key);

/* ---- signature (csr_sig.c) ---- */

enum { XB_SIG_ECDSA, XB_SIG_RSA_PKCS1, XB_SIG_RSA_PSS };

typedef struct xb_sig_alg {
    int kind;
    int md;      /* XB_MD_* */
    int mgf1_md; /* XB_MD_*, RSA-PSS only */
    int salt;    /* RSA-PSS only */
} xb_sig_alg;

/* The signature algorithm of a request (param->tag 0 when absent), with the digest policy.
 * Fails with XB_ERR_CSR_SIGNATURE. */
xb_err xb_sig_alg_decode(const xb_der_elem *oid, const xb_der_elem *param, xb_sig_alg *out,
                         xb_diag *d);

/* Proof of possession: sig (the BIT STRING contents) over tbs with key. */
xb_err xb_sig_verify(xb_csr_cache *cache, const xb_csr_key *key, const xb_sig_alg *alg,
                     const uint8_t *tbs, size_t tbs_len, const xb_der_elem *sig, xb_diag *d);

#endif
