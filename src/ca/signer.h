/* Where the CA's private key lives, behind one interface: the issuance code (issue.c, crl.c)
 * digests what it signs, and a signer signs the digest. One implementation per key source:
 * an OpenSSL key (a PEM file, optionally encrypted; PEM text in an environment variable; a PEM
 * fetched over https) in signer_pem.c, a PKCS#11 token in signer_pkcs11.c. The issuance code
 * knows nothing about where the key is. docs/ca-keys.md is the user-facing side. */
#ifndef XB_SIGNER_H
#define XB_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "xb_error.h"

typedef struct xb_signer xb_signer;

typedef struct xb_signer_ops {
    const char *source; /* "file", "env", "https", "pkcs11": for logs and errors */
    /* Sign dgst (the md digest of the data) into sig, which has room for *sig_len octets;
     * *sig_len becomes the signature's length. The signature is the value X.509 carries:
     * ECDSA-Sig-Value (DER) for EC keys, RSASSA-PKCS1-v1_5 for RSA keys. XB_ERR_CA_UNAVAILABLE
     * when the key's holder cannot sign now (a token removed, a session lost): the request is
     * answered 503 and a later one tries again; any other error is a failure of this one. */
    xb_err (*sign)(xb_signer *s, const EVP_MD *md, const uint8_t *dgst, size_t dgst_len,
                   uint8_t *sig, size_t *sig_len, xb_diag *d);
    /* In a child after fork, before its first sign (PKCS#11 sessions do not survive fork).
     * NULL: nothing to do. */
    xb_err (*after_fork)(xb_signer *s, xb_diag *d);
    /* Can it sign now? For /healthz: cheap, no signature. NULL: always. */
    xb_err (*check)(xb_signer *s, xb_diag *d);
    void (*free)(xb_signer *s);
} xb_signer_ops;

/* Every implementation's handle starts with this. */
struct xb_signer {
    const xb_signer_ops *ops;
    EVP_PKEY *pub;  /* the public key (owned): matched against the CA certificate, sizes */
    EVP_PKEY *pkey; /* the private key as an OpenSSL object, or NULL when it is not one (a
                       token's): the reference issuer (issue_reference.c) needs one */
};

/* How to reach a key: [ca] key_passphrase_file, pkcs11_module, the https trust anchor. */
typedef struct xb_key_options {
    const char *passphrase_file; /* the passphrase of an encrypted PEM; NULL: none */
    const char *passphrase_env;  /* or the name of an environment variable holding it; NULL:
                                    XBOOT_CA_KEY_PASSPHRASE */
    const char *pkcs11_module;   /* the module for pkcs:11 URIs without module-path */
    const char *https_ca_file;   /* trust anchor for https:// sources; NULL: system store */
} xb_key_options;

/* Open the key named by spec: a PEM file path, "env:VARNAME", "https://..." or an RFC 7512
 * "pkcs11:" URI. XB_ERR_CONFIG with a message naming the source (never a secret: no
 * passphrase, PIN or URL query) when it cannot be used. */
xb_err xb_signer_open(const char *spec, const xb_key_options *opts, xb_signer **out, xb_diag *d);
/* A signer for an OpenSSL private key (takes the reference). */
xb_err xb_signer_from_pkey(EVP_PKEY *key, const char *source, xb_signer **out, xb_diag *d);
xb_err xb_signer_sign(xb_signer *s, const EVP_MD *md, const uint8_t *dgst, size_t dgst_len,
                      uint8_t *sig, size_t *sig_len, xb_diag *d);
xb_err xb_signer_after_fork(xb_signer *s, xb_diag *d);
xb_err xb_signer_check(xb_signer *s, xb_diag *d);
void xb_signer_free(xb_signer *s);

/* The PKCS#11 implementation (signer_pkcs11.c), for xb_signer_open. */
xb_err xb_signer_pkcs11_open(const char *uri, const xb_key_options *opts, xb_signer **out,
                             xb_diag *d);

#endif
