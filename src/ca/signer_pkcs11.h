/* The PKCS#11 side of `xbootctl ca init --pkcs11`: a key pair generated inside a token. The
 * signer itself (xb_signer_pkcs11_open) is declared in signer.h. */
#ifndef XB_SIGNER_PKCS11_H
#define XB_SIGNER_PKCS11_H

#include <openssl/evp.h>

#include "xb_error.h"

/* Generate the key pair named by the RFC 7512 uri (object= and/or id=) in its token:
 * private half CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, CKA_SIGN, not CKA_EXTRACTABLE. key_type:
 * "ec-p256", "ec-p384", "rsa-2048", "rsa-3072". module: the PKCS#11 module when the URI has no
 * module-path. *pub: the public key. XB_ERR_EXISTS when the token already holds a private key
 * with that label/id; XB_ERR_CONFIG when the module, token or PIN cannot be used. */
xb_err xb_pkcs11_generate_key(const char *uri, const char *module, const char *key_type,
                              EVP_PKEY **pub, xb_diag *d);

#endif
