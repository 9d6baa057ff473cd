/* Internals of src/ca shared by its files; not for use outside src/ca (tests and fuzzers
 * excepted). */
#ifndef XB_CA_INTERNAL_H
#define XB_CA_INTERNAL_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "signer.h"

/* Far above any real CSR (an RSA-4096 request is about 1.2 KB) and below the 64 KiB body. */
#define XB_CSR_MAX_DER (32 * 1024)

/* Subject attributes that may be copied from a CSR besides CN. */
#define XB_CA_MAX_COPY_ATTRS 8
/* Subject entries copied from one CSR besides CN, at most (the original sample sends five). */
#define XB_CA_MAX_COPIED 8

/* notBefore is backdated so that devices whose clocks lag a little accept the certificate. */
#define XB_BACKDATE_SECONDS 300

/* Serial octets: a 4-octet time prefix and 128 random bits (serial.c, DESIGN.md section 6). */
#define XB_CA_SERIAL_LEN 20

/* Largest RSA-PSS salt a CSR may declare: more than a 4096-bit key can hold, so no valid
 * signature is refused, and small enough that no parser truncates it. */
#define XB_CSR_PSS_MAX_SALT 512

/* Messages both request parsers give for the rules of ca_reference.h. */
#define XB_CSR_NOT_DER_MSG "the CSR is not DER-encoded (BER lengths or constructed strings)"
#define XB_CSR_VERSION_MSG "the CSR version must be 0 (PKCS#10 v1)"
#define XB_CSR_SPKI_NOT_DER_MSG                                                                    \
    "the CSR public key is not encoded as RFC 3279/5480 require (DER, RSA with NULL parameters, "  \
    "no unused bits)"
#define XB_CSR_HYBRID_MSG "the CSR's EC point is in hybrid form, which RFC 5480 forbids"
#define XB_CSR_UNDECODABLE_KEY_MSG                                                                 \
    "the CSR public key cannot be decoded (unsupported algorithm or bad encoding)"
#define XB_CSR_DIGEST_MSG "the CSR is signed with %s; sign it with SHA-256, SHA-384 or SHA-512"
#define XB_CSR_MGF_DIGEST_MSG                                                                      \
    "the CSR's RSA-PSS mask generation uses %s; use MGF1 with SHA-256, SHA-384 or SHA-512"

/* A request checked by xb_csr_parse: a private copy of its DER and where the parts the
 * certificate needs are. Nothing of it is decoded again at issuance. */
struct xb_csr {
    uint8_t *der;
    size_t der_len;
    const uint8_t *name; /* subject Name (whole element) */
    size_t name_len;
    const uint8_t *spki; /* SubjectPublicKeyInfo (whole element), in canonical DER */
    size_t spki_len;
    const uint8_t *key_bits; /* subjectPublicKey contents after the unused-bits octet */
    size_t key_bits_len;
    const uint8_t *attrs; /* contents of the [0] attributes (checked), NULL when absent */
    size_t attrs_len;
    int is_rsa;
};

/* A subject attribute policy copies (subject_attributes), resolved once at load. */
typedef struct xb_ca_copy_attr {
    const unsigned char *oid; /* contents octets of its OBJECT IDENTIFIER (OpenSSL's table) */
    size_t oid_len;
    const char *sn; /* short name, as RFC 2253 output shows it */
    long min_chars, max_chars;
} xb_ca_copy_attr;

/* Everything the fast issuer (issue.c) needs from the CA, prepared once at load (ca_fast.c).
 * The digest and signature contexts are mutable: an xb_ca is used by one thread at a time
 * (xbootd workers are single-threaded processes, each with its own xb_ca). */
typedef struct xb_ca_fast {
    uint8_t *issuer; /* the CA subject Name, as X509_set_issuer_name copies it */
    size_t issuer_len;
    uint8_t *sig_alg; /* AlgorithmIdentifier X509_sign writes for this key and digest */
    size_t sig_alg_len;
    uint8_t *ext_head[2]; /* basicConstraints, keyUsage, extendedKeyUsage: [0] EC, [1] RSA */
    size_t ext_head_len[2];
    uint8_t *ext_tail; /* authorityKeyIdentifier (after the per-certificate SKI; the CRL's too) */
    size_t ext_tail_len;
    uint8_t *ext_cdp; /* cRLDistributionPoints after ext_tail; NULL without crl_url (ca_cdp.c) */
    size_t ext_cdp_len;
    xb_ca_copy_attr copy[XB_CA_MAX_COPY_ATTRS];
    EVP_MD *md; /* the signature digest, fetched once */
    EVP_MD *sha1, *sha256;
    EVP_MD_CTX *md_ctx; /* reused for every digest */
    size_t sig_max;     /* the longest signature the key makes */
} xb_ca_fast;

struct xb_ca {
    X509 *cert;
    xb_signer *signer; /* signs every certificate and CRL; knows where the key lives */
    EVP_PKEY *key;     /* the private key as an OpenSSL object for the reference issuer and
                          tests (a reference of signer->pkey); NULL for a token's key */
    const EVP_MD *md;  /* SHA-256, or SHA-384 for a P-384 CA */
    time_t not_after;
    int validity_days;
    int copy_nids[XB_CA_MAX_COPY_ATTRS];
    int copy_count;
    /* Constant extensions, built once per CA rather than parsed from text per certificate. */
    X509_EXTENSION *ext_basic_constraints;
    X509_EXTENSION *ext_key_usage_ec;
    X509_EXTENSION *ext_key_usage_rsa;
    X509_EXTENSION *ext_eku;
    X509_EXTENSION *ext_aki;
    X509_EXTENSION *ext_cdp; /* NULL without crl_url (xb_ca_set_crl_url) */
    xb_ca_fast fast;
    /* The chain returned with each certificate, as DER. */
    size_t chain_count;
    uint8_t **chain_der;
    size_t *chain_len;
};

/* ---- serials (serial.c) ---- */

/* XB_CA_SERIAL_LEN octets: a 4-octet time prefix, then 16 from the OS CSPRNG (serial.c). */
xb_err xb_ca_random_serial_bytes(uint8_t serial[XB_CA_SERIAL_LEN], xb_diag *d);
/* Those octets as a positive ASN1_INTEGER. */
xb_err xb_ca_serial_to_asn1(const uint8_t serial[XB_CA_SERIAL_LEN], ASN1_INTEGER *out, xb_diag *d);
/* A fresh positive serial of 128 random bits. */
xb_err xb_ca_random_serial(ASN1_INTEGER *serial, xb_diag *d);

/* The digest to sign with using key (public or private): SHA-384 for P-384 keys, SHA-256
 * otherwise (ca_load.c). */
const EVP_MD *xb_ca_digest_for_key(const EVP_PKEY *key);

/* For ca_init.c and the reference issuer (ca_ski.c): add a subjectKeyIdentifier (RFC 5280 4.2.1.2
 * method 1: SHA-1 of the key BIT STRING). */
xb_err xb_ca_add_ski(X509 *cert, xb_diag *d);

/* ---- CRL distribution point (ca_cdp.c) ---- */

/* The extension naming url (checked by xb_ca_check_crl_url), built through OpenSSL's
 * structures for the reference issuer; NULL when out of memory. */
X509_EXTENSION *xb_ca_cdp_reference(const char *url);
/* The same extension as DER written by hand for the fast issuer, in *out (OPENSSL_malloc'd)
 * and *out_len; 0 when out of memory. */
int xb_ca_cdp_der(const char *url, uint8_t **out, size_t *out_len);

/* ---- certificates as X509 objects (issued.c) ---- */

/* RFC 2253 text of name as X509_NAME_print_ex(XN_FLAG_RFC2253) prints it, OPENSSL_malloc'd;
 * NULL when out of memory. */
char *xb_name_rfc2253(const X509_NAME *name);
/* Hex SHA-256 of the certificate's SubjectPublicKeyInfo DER into out (65 bytes). */
xb_err xb_spki_sha256(X509 *x, char out[65], xb_diag *d);

/* ---- the fast issuer ---- */

/* Prepare ca->fast from the loaded certificate, key and extensions (ca_fast.c). */
xb_err xb_ca_fast_prepare(xb_ca *ca, xb_diag *d);
void xb_ca_fast_free(xb_ca_fast *fast);

/* xb_ca_issue with the serial given (XB_CA_SERIAL_LEN octets, not all zero) or, if NULL, drawn
 * at random: the hook that lets tests compare it with xb_ca_issue_reference byte for byte. */
xb_err xb_ca_issue_at(xb_ca *ca, const xb_csr *csr, const char *reg_id, time_t now,
                      const uint8_t *serial, xb_issued *out, xb_diag *d);

/* Time as ASN1_TIME_set writes it (UTCTime for 1950..2049, else GeneralizedTime), whole
 * element; returns its length, 0 on failure (issue.c; the CRL uses it too). */
size_t xb_issue_time(time_t t, uint8_t out[24]);
/* Signed objects (certificates, CRLs) are SEQUENCE { tbs, signatureAlgorithm, signature }.
 * xb_ca_signed_room: the buffer size to allocate for a TBS of tbs_len octets, and *room, where
 * in it the TBS goes (buf + room). xb_ca_sign_wrap then signs that TBS with the CA's key and
 * builds the object at the start of buf (*der_len octets). 0 if signing failed. */
size_t xb_ca_signed_room(const xb_ca *ca, size_t tbs_len, size_t *room);
xb_err xb_ca_sign_wrap(xb_ca *ca, uint8_t *buf, size_t room, size_t tbs_len, size_t *der_len,
                       xb_diag *d);
/* The CA's signature over tbs into sig (room for fast.sig_max octets): the digest computed
 * here, signed by the CA's signer. XB_ERR_CA_UNAVAILABLE when the key's holder cannot sign
 * now (answered 503), XB_ERR_CRYPTO for other failures. */
xb_err xb_issue_sign(xb_ca *ca, const uint8_t *tbs, size_t tbs_len, uint8_t *sig, size_t *sig_len,
                     xb_diag *d);

#endif
