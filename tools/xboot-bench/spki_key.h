/* A public key from SubjectPublicKeyInfo DER by the short path: the DER walked by hand and the
 * key built with EVP_PKEY_fromdata, skipping OpenSSL 3.0's generic decoder chain (about 100 us
 * per key, more than the signature check itself; see DESIGN.md section 7). The crypto floor
 * uses it to measure what a CSR check costs at least. EC P-256/P-384 and RSA only. */
#ifndef XBB_SPKI_KEY_H
#define XBB_SPKI_KEY_H

#include <openssl/evp.h>

#include "der_walk.h"

typedef struct xbb_spki_decoder {
    EVP_PKEY_CTX *ec; /* fromdata contexts, set up once */
    EVP_PKEY_CTX *rsa;
} xbb_spki_decoder;

int xbb_spki_decoder_init(xbb_spki_decoder *dec);
void xbb_spki_decoder_free(xbb_spki_decoder *dec);

/* NULL if the key is not one of the supported kinds or is malformed. */
EVP_PKEY *xbb_spki_decode(xbb_spki_decoder *dec, xbb_span spki);

/* The digest named by a CSR signature algorithm OID (contents): SHA-256/384 with ECDSA or RSA
 * PKCS#1 v1.5. NULL for anything else. */
const char *xbb_sig_oid_digest(xbb_span oid);

#endif
