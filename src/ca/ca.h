/* The issuance core: a loaded signing CA, the CSR checks, and the certificate profile
 * (DESIGN.md section 6). Depends on src/common only; knows nothing of HTTP or the registry. */
#ifndef XB_CA_H
#define XB_CA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "xb_error.h"
#include "xb_regid.h"

/* ---- signing CA ---- */

typedef struct xb_ca xb_ca;

typedef struct xb_ca_config {
    const char *cert_path;  /* PEM: the signing (intermediate) CA certificate; a path or an
                               https:// URL */
    const char *key_path;   /* its private key: a PEM path, "env:VARNAME", an https:// URL or a
                               "pkcs11:" URI (signer.h, docs/ca-keys.md) */
    const char *chain_path; /* PEM: certificates returned after the device certificate; may be
                               NULL (then the chain is the signing CA alone); path or https:// */
    int validity_days;      /* device certificate lifetime, 1..3650 */
    const char *subject_attributes; /* CSR subject attributes copied besides CN, e.g.
                                       "C,ST,L,O,OU"; "" copies none */
    /* Last, so that the positional initializers (tests, tools) leave them NULL: */
    const char *key_passphrase_file; /* passphrase of an encrypted PEM key; NULL: none (the
                                        environment variable XBOOT_CA_KEY_PASSPHRASE then) */
    const char *https_ca_file;       /* trust anchor for https:// sources; NULL: system store */
    const char *pkcs11_module;       /* the module of a pkcs11: key without module-path */
} xb_ca_config;

/* Load the CA once: certificate, key (through a signer, signer.h) and chain; the key checked
 * against the certificate, the certificate against a CA's profile (CA:TRUE, keyCertSign,
 * already valid), extensions prepared. XB_ERR_CONFIG with a clear message otherwise. */
xb_err xb_ca_load(const xb_ca_config *cfg, xb_ca **out, xb_diag *d);
void xb_ca_free(xb_ca *ca);

/* Longest crl_url accepted, in bytes. */
#define XB_CA_CRL_URL_MAX 512

/* XB_OK if url can be a certificate's CRL distribution point: http:// or https:// (any case)
 * and a host, printable ASCII without spaces, at most XB_CA_CRL_URL_MAX bytes. Otherwise
 * XB_ERR_CONFIG with a message that begins with key (the name the user wrote it under). */
xb_err xb_ca_check_crl_url(const char *url, const char *key, xb_diag *d);

/* From now on every certificate ca issues names url as its CRL distribution point (RFC 5280
 * 4.2.1.13); NULL or "" names none, as after xb_ca_load. The extension is built here, once, not
 * per certificate. Checked as xb_ca_check_crl_url does (key "crl_url"); on failure ca is
 * unchanged. Call it as xb_ca_issue is called, never while another thread uses ca. Set apart
 * from xb_ca_config so that its many positional initializers keep compiling unchanged. */
xb_err xb_ca_set_crl_url(xb_ca *ca, const char *url, xb_diag *d);

/* In a forked worker before its first signature: the key's holder may need new sessions
 * (PKCS#11). */
xb_err xb_ca_after_fork(xb_ca *ca, xb_diag *d);

/* Can the CA's key sign now (for /healthz)? Cheap: no signature is made. XB_ERR_CA_UNAVAILABLE
 * when not. */
xb_err xb_ca_check_key(xb_ca *ca, xb_diag *d);

/* XB_OK while the CA can issue at time now (its certificate is within validity). */
xb_err xb_ca_check_usable(const xb_ca *ca, time_t now, xb_diag *d);

/* The signing CA certificate (borrowed; lives as long as ca). */
X509 *xb_ca_signing_cert(const xb_ca *ca);

/* The signing key's type, which device keys are advised to match (EST csrattrs):
 * "ec-p256", "ec-p384" or "rsa". */
const char *xb_ca_key_type(const xb_ca *ca);

/* The chain returned with each certificate, DER, in file order. */
size_t xb_ca_chain_count(const xb_ca *ca);
const uint8_t *xb_ca_chain_der(const xb_ca *ca, size_t i, size_t *len);

/* ---- CSR ---- */

typedef struct xb_csr xb_csr;

/* Parse a DER PKCS#10 request (all bytes must be consumed), verify its signature with its own
 * key (proof of possession) and apply the key policy. XB_ERR_BAD_CSR, XB_ERR_CSR_SIGNATURE or
 * XB_ERR_KEY_NOT_ALLOWED. */
xb_err xb_csr_parse(const uint8_t *der, size_t len, xb_csr **out, xb_diag *d);
void xb_csr_free(xb_csr *csr);

/* The subject must hold exactly one CN, equal to reg_id. XB_ERR_SUBJECT_MISMATCH otherwise. */
xb_err xb_csr_check_subject(const xb_csr *csr, const char *reg_id, xb_diag *d);

/* The subject's one CN, which must be a valid registration ID (EST carries the ID nowhere
 * else). XB_ERR_SUBJECT_MISMATCH (no CN, several, undecodable) or
 * XB_ERR_INVALID_REGISTRATION_ID. */
xb_err xb_csr_common_name(const xb_csr *csr, char out[XB_REGID_MAX + 1], xb_diag *d);

/* The subject Name as it is encoded in the request (whole element), for exact comparison. */
const uint8_t *xb_csr_subject_der(const xb_csr *csr, size_t *len);

/* The challengePassword attribute (PKCS#9, 1.2.840.113549.1.9.7) as UTF-8 into out (size
 * bytes, NUL-terminated). XB_ERR_NOT_FOUND when absent; XB_ERR_BAD_CSR when it is not one
 * DirectoryString value, or does not fit. */
xb_err xb_csr_challenge_password(const xb_csr *csr, char *out, size_t size, xb_diag *d);

/* The extnValue contents of the subjectAltName the request asks for in its extensionRequest
 * attribute (PKCS#9, 1.2.840.113549.1.9.14): XB_OK with *val and *len pointing into the request,
 * XB_ERR_NOT_FOUND when it asks for none, XB_ERR_BAD_CSR when the attribute is malformed.
 * Requested extensions are never copied into certificates; EST renewal compares this one. */
xb_err xb_csr_requested_san(const xb_csr *csr, const uint8_t **val, size_t *len, xb_diag *d);

/* Hex SHA-256 of the request's SubjectPublicKeyInfo DER: the xb_issued.pubkey_sha256 of any
 * certificate issued for it (the SPKI is copied into the certificate as it is). */
xb_err xb_csr_pubkey_sha256(const xb_csr *csr, char out[65], xb_diag *d);

/* ---- issuance ---- */

typedef struct xb_issued {
    uint8_t *der; /* certificate DER, malloc'd: free with xb_issued_clear */
    size_t der_len;
    char serial[2 * 20 + 1]; /* lowercase hex */
    char *subject;           /* RFC 2253, malloc'd: freed by xb_issued_clear */
    time_t not_before, not_after;
    char pubkey_sha256[65]; /* hex SHA-256 of the SubjectPublicKeyInfo DER */
} xb_issued;

/* Sign a certificate for a checked CSR (xb_csr_parse + xb_csr_check_subject passed). The CA's
 * digest and signature contexts are reused from call to call: an xb_ca issues on one thread at
 * a time (xb_csr_parse keeps its own per-thread state and may run on any thread). */
xb_err xb_ca_issue(xb_ca *ca, const xb_csr *csr, const char *reg_id, time_t now, xb_issued *out,
                   xb_diag *d);
void xb_issued_clear(xb_issued *out);

/* Describe a certificate issued earlier from its DER (all of it one certificate), as
 * xb_ca_issue describes the ones it signs; out keeps a copy of der (free with
 * xb_issued_clear). For sending a recorded certificate again. XB_ERR_CRYPTO if der is not a
 * certificate with a positive serial of at most 20 octets. */
xb_err xb_issued_from_der(const uint8_t *der, size_t len, xb_issued *out, xb_diag *d);

/* 1 if cert names this CA as its issuer (subject and authority key identifier): only such a
 * certificate goes out with this CA's chain. */
int xb_ca_issued_by(const xb_ca *ca, const xb_issued *cert);

/* ---- certificate revocation list (crl.c) ---- */

/* One revoked certificate, as the registry records it. */
typedef struct xb_crl_entry {
    const char *serial_hex; /* the serial's octets in hex (registry form), 1..20 octets */
    time_t revoked_at;
    int reason; /* RFC 5280 CRLReason code; 0 (unspecified) writes no reasonCode */
} xb_crl_entry;

/* A DER X.509 v2 CRL signed by the signing CA with the certificates' digest: thisUpdate,
 * nextUpdate, the given entries in the given order (revocationDate, reasonCode), and the
 * CRLNumber and authorityKeyIdentifier extensions. *der is malloc'd (free()). Assembled as
 * DER and signed once, without an X509_CRL object: 100,000 entries take milliseconds, not
 * the seconds OpenSSL's per-entry objects would (docs/PERFORMANCE.md). XB_ERR_INVALID_ARGUMENT
 * for a serial that is not 1..20 octets of hex, a negative number, or nextUpdate <=
 * thisUpdate. */
xb_err xb_ca_crl_build(xb_ca *ca, const xb_crl_entry *entries, size_t n, long long number,
                       time_t this_update, time_t next_update, uint8_t **der, size_t *der_len,
                       xb_diag *d);

/* ---- development CA hierarchy (xbootctl ca init) ---- */

/* Write root-ca.pem/.key, signing-ca.pem/.key, chain.pem, tls.pem/.key into dir (created if
 * missing). key_type: "ec-p256" (default when NULL), "ec-p384", "rsa-2048", "rsa-3072".
 * org: the O= of the subjects. Refuses (XB_ERR_EXISTS) if any of the files exists, before
 * writing anything. */
xb_err xb_ca_init_dir(const char *dir, const char *key_type, const char *org, xb_diag *d);
/* The same with the signing CA's key pair generated inside the PKCS#11 token named by the
 * RFC 7512 pkcs11_uri (non-extractable; see xb_pkcs11_generate_key): signing-ca.key is not
 * written, [ca] key is the URI. NULL: xb_ca_init_dir. */
xb_err xb_ca_init_dir_pkcs11(const char *dir, const char *key_type, const char *org,
                             const char *pkcs11_uri, xb_diag *d);

/* In a directory xb_ca_init_dir made: a new signing key and certificate under the same root
 * (the root key must be there), written as signing-ca.pem/.key and chain.pem, each replaced
 * atomically; the old three are kept as signing-ca.STAMP.pem/.key and chain.STAMP.pem, STAMP
 * (UTC, "20261129T183000Z") written into stamp. Nothing is replaced if anything fails first. */
xb_err xb_ca_rotate_dir(const char *dir, char *stamp, size_t stamp_size, xb_diag *d);

#endif
