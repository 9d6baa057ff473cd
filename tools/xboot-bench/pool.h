/* The pool of device identities: one fresh key and CSR per enrollment, generated before any
 * timing starts so that key generation never shows up in a measurement. */
#ifndef XBB_POOL_H
#define XBB_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "xb_regid.h"

typedef enum xbb_key_type {
    XBB_KEY_EC_P256,
    XBB_KEY_EC_P384,
    XBB_KEY_RSA_2048,
    XBB_KEY_RSA_3072,
    XBB_KEY_RSA_4096,
} xbb_key_type;

/* "ec-p256", ... -> 0 and *out; -1 for an unknown name. */
int xbb_key_type_parse(const char *name, xbb_key_type *out);
const char *xbb_key_type_name(xbb_key_type t);

typedef struct xbb_pool_entry {
    char id[XB_REGID_MAX + 1]; /* the registration ID, also the CSR's CN */
    uint8_t *csr;              /* DER */
    size_t csr_len;
    char *csr_pem; /* NULL unless asked for (cfssl wants PEM) */
    uint8_t *spki; /* DER SubjectPublicKeyInfo: what the certificate must carry */
    size_t spki_len;
} xbb_pool_entry;

typedef struct xbb_pool {
    xbb_pool_entry *e;
    size_t n;
    double gen_s; /* wall time spent generating */
} xbb_pool;

/* n entries with IDs "<prefix>-<index>". 0, or -1 with a message in err. */
int xbb_pool_generate(xbb_pool *p, size_t n, xbb_key_type kt, const char *prefix, int want_pem,
                      char *err, size_t errlen);
void xbb_pool_free(xbb_pool *p);

#endif
