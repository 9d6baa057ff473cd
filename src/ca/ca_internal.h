/* Internals of src/ca shared by its files; not for use outside src/ca. */
#ifndef XB_CA_INTERNAL_H
#define XB_CA_INTERNAL_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"

/* Far above any real CSR (an RSA-4096 request is about 1.2 KB) and below the 64 KiB body. */
#define XB_CSR_MAX_DER (32 * 1024)

/* Subject attributes that may be copied from a CSR besides CN. */
#define XB_CA_MAX_COPY_ATTRS 8

struct xb_csr {
    X509_REQ *req;
    EVP_PKEY *pkey; /* the request's public key, decoded once */
    int is_rsa;
};

struct xb_ca {
    X509 *cert;
    EVP_PKEY *key;
    const EVP_MD *md; /* SHA-256, or SHA-384 for a P-384 CA */
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
    /* The chain returned with each certificate, as DER. */
    size_t chain_count;
    uint8_t **chain_der;
    size_t *chain_len;
};

/* A fresh positive serial of 128 random bits from the OS CSPRNG (getrandom). */
xb_err xb_ca_random_serial(ASN1_INTEGER *serial, xb_diag *d);

/* The digest to sign with using key: SHA-384 for P-384 keys, SHA-256 otherwise. */
const EVP_MD *xb_ca_digest_for_key(const EVP_PKEY *key);

/* Add a subjectKeyIdentifier (RFC 5280 4.2.1.2 method 1: SHA-1 of the key BIT STRING). */
xb_err xb_ca_add_ski(X509 *cert, xb_diag *d);

#endif
