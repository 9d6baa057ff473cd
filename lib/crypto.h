/* The crypto backend of libxboot: key generation, the CSR, checking an issued certificate, and
 * PEM/PKCS#12 encodings for the store. Enrollment logic (enroll.c) reaches OpenSSL only through
 * these functions, so an mbedTLS backend is one more crypto_*.c file. The OpenSSL backend is
 * crypto_openssl.c. Every function that fails writes a human reason into detail (may be NULL). */
#ifndef XBOOT_LIB_CRYPTO_H
#define XBOOT_LIB_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "xboot/xboot.h"

/* A short human reason for a failure; callers own it (usually inside the client handle). */
typedef struct xbc_detail {
    char msg[512];
} xbc_detail;

/* One extra subject attribute of the CSR: short name ("O", "OU", "C", "ST", "L") and value. */
typedef struct xbc_rdn {
    char name[4];
    char value[129];
} xbc_rdn;
#define XBC_MAX_RDNS 8

/* Parse "/O=Contoso/OU=Sensors" into at most XBC_MAX_RDNS attributes. Only C, ST, L, O, OU;
 * values 1..64 bytes (C exactly 2), no '/' or control bytes ('\/' escapes a slash). */
xboot_err xbc_subject_parse(const char *text, xbc_rdn *out, size_t *n, xbc_detail *detail);

/* A fresh key of the given type from the OS CSPRNG. */
xboot_err xbc_key_generate(xboot_key_type type, EVP_PKEY **out, xbc_detail *detail);

/* A DER PKCS#10 request: subject = the attributes in order, then CN = reg_id; public key of
 * key; signed with key (SHA-256; SHA-384 for P-384; RSA PKCS#1 v1.5). No extensions requested.
 * Free *der with OPENSSL_free. Works with provider keys (TPM, PKCS#11): only EVP_DigestSign is
 * used. */
xboot_err xbc_csr_build(EVP_PKEY *key, const char *reg_id, const xbc_rdn *rdns, size_t n_rdns,
                        uint8_t **der, size_t *der_len, xbc_detail *detail);

/* The same, with the subject copied from a certificate (renewal: EST simplereenroll wants the
 * current certificate's subject exactly, attribute order and string types included). */
xboot_err xbc_csr_build_name(EVP_PKEY *key, const X509_NAME *subject, uint8_t **der,
                             size_t *der_len, xbc_detail *detail);

/* The certificate's notBefore and notAfter as seconds since the epoch (UTC). */
xboot_err xbc_cert_validity(X509 *cert, int64_t *not_before, int64_t *not_after,
                            xbc_detail *detail);

/* A trust store built from PEM text (one or more certificates). */
xboot_err xbc_trust_load(const uint8_t *pem, size_t len, X509_STORE **out, xbc_detail *detail);

/* Is cert the certificate this device asked for, and may it use it now? In order: its public
 * key is key's (XBOOT_ERR_CERT_KEY_MISMATCH), its subject has exactly one CN and it equals
 * reg_id (XBOOT_ERR_CERT_SUBJECT_MISMATCH), it chains to the trust store through the
 * untrusted chain at the current time, and it is an end-entity client certificate
 * (basicConstraints not CA, extendedKeyUsage absent or with clientAuth)
 * (XBOOT_ERR_CERT_UNTRUSTED). */
xboot_err xbc_cert_check(X509 *cert, STACK_OF(X509) * chain, X509_STORE *trust, EVP_PKEY *key,
                         const char *reg_id, xbc_detail *detail);

/* DER <-> objects. */
xboot_err xbc_cert_from_der(const uint8_t *der, size_t len, X509 **out, xbc_detail *detail);

/* PEM encodings (malloc'd, NUL-terminated; free with free()). The key as unencrypted PKCS#8. */
xboot_err xbc_key_to_pem(EVP_PKEY *key, char **pem, size_t *len, xbc_detail *detail);
xboot_err xbc_certs_to_pem(X509 *const *certs, size_t n, char **pem, size_t *len,
                           xbc_detail *detail);
/* PEM back to objects (for loading the store). */
xboot_err xbc_key_from_pem(const uint8_t *pem, size_t len, EVP_PKEY **out, xbc_detail *detail);
xboot_err xbc_certs_from_pem(const uint8_t *pem, size_t len, STACK_OF(X509) * *out,
                             xbc_detail *detail);

/* A PKCS#12 (AES-256-CBC, PBKDF2, SHA-256 MAC) of key + cert + chain, friendly name = reg_id.
 * Free *der with OPENSSL_free. */
xboot_err xbc_pkcs12_build(EVP_PKEY *key, X509 *cert, STACK_OF(X509) * chain, const char *password,
                           const char *reg_id, uint8_t **der, size_t *len, xbc_detail *detail);

/* Fill detail with a printf-style message plus the first queued OpenSSL error (the queue is
 * cleared); returns err. */
xboot_err xbc_fail(xbc_detail *detail, xboot_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
