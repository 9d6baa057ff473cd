/* The reference issuance path: the obvious OpenSSL X509 API implementation (d2i_X509_REQ,
 * X509_REQ_verify, X509_set_pubkey, X509_sign). Not used by xbootd: tests and fuzzers run it
 * beside the fast path (csr.c, issue.c) and require both to agree, the request parsers on every
 * accept/refuse decision and error code, the issuers byte for byte (DESIGN.md section 7).
 *
 * Besides what the original implementation checked, the reference enforces the request language
 * the fast path is built for; each rule is implemented twice, here on OpenSSL's objects and by
 * hand in the fast path, and the fuzzer compares the two:
 * - the request is DER (csr_reference_der.c): no BER lengths or constructed strings, no high tag
 *   numbers or end-of-contents octets, nesting within XB_DER_MAX_DEPTH, attributes [0]
 *   constructed;
 * - version 0;
 * - the SubjectPublicKeyInfo is exactly what OpenSSL re-encodes for the key it decodes (so that
 *   copying it into the certificate equals X509_set_pubkey), and EC points are not hybrid;
 * - signatures use SHA-256, SHA-384 or SHA-512 (RSA-PSS: hash and MGF1 hash), RSA-PSS salt
 *   lengths within 0..512. */
#ifndef XB_CA_REFERENCE_H
#define XB_CA_REFERENCE_H

#include "ca_internal.h"

typedef struct xb_csr_ref {
    X509_REQ *req;
    EVP_PKEY *pkey; /* the request's public key, decoded once */
    int is_rsa;
} xb_csr_ref;

xb_err xb_csr_parse_reference(const uint8_t *der, size_t len, xb_csr_ref **out, xb_diag *d);
void xb_csr_ref_free(xb_csr_ref *csr);
xb_err xb_csr_check_subject_reference(const xb_csr_ref *csr, const char *reg_id, xb_diag *d);

/* serial: XB_CA_SERIAL_LEN big-endian octets, or NULL for a random one (as xb_ca_issue_at). */
xb_err xb_ca_issue_reference(xb_ca *ca, const xb_csr_ref *csr, const char *reg_id, time_t now,
                             const uint8_t *serial, xb_issued *out, xb_diag *d);

/* 1 if [der, der+len) is DER in the sense of xb_der_tree_ok, checked with OpenSSL's
 * ASN1_get_object rather than der.c so that the two checks stay independent. */
int xb_ref_der_ok(const uint8_t *der, size_t len);

/* 1 unless the attributes of a DER request are tagged [0] primitive, which d2i_X509_REQ
 * accepts (it does not check that the implicitly tagged SET OF is constructed). */
int xb_ref_attributes_tag_ok(const uint8_t *der, size_t len);

/* ---- the cross-check both the unit tests and the fuzzers run (ca_crosscheck.c) ---- */

typedef struct xb_crosscheck {
    xb_err parse_err;   /* the parsers' common result */
    xb_err subject_err; /* xb_csr_check_subject's, when parsed */
    xb_err issue_err;   /* the issuers' common result, when parsed */
    char reg_id[256];   /* the registration ID used */
    char mismatch[512]; /* "" when the paths agree, else what differed */
} xb_crosscheck;

/* Run der through both parsers, both subject checks and both issuers (with the given serial and
 * time) and compare: same error codes; for issued certificates the same TBSCertificate and
 * signatureAlgorithm octets (the whole certificate for RSA PKCS#1 v1.5 CAs, whose signatures
 * are deterministic), both signatures valid under the CA key, the same record fields. reg_id:
 * NULL takes the request's CN (as decoded by the reference), falling back to "fuzz-device".
 * Returns 1 when they agree; 0 (a mismatch saying so) for a CA whose key is not an OpenSSL key
 * (a token's), which the reference cannot sign with. */
int xb_ca_crosscheck(xb_ca *ca, const uint8_t *der, size_t len, const char *reg_id, time_t now,
                     const uint8_t serial[XB_CA_SERIAL_LEN], xb_crosscheck *res);

#endif
