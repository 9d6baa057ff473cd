/* The per-enrollment crypto of a CA, each measured alone on this thread over the pool: the CSR
 * check (cheap key decode + signature verify), one certificate signature, and the project's
 * own issuance path (xb_csr_parse + xb_csr_check_subject + xb_ca_issue). */
#ifndef XBB_FLOOR_CRYPTO_H
#define XBB_FLOOR_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "ca.h"
#include "pool.h"

/* Per-operation cost: CPU of this thread and wall time, in microseconds. */
typedef struct xbb_cost {
    double cpu_us;
    double wall_us;
} xbb_cost;

/* Verify every CSR of the pool the cheapest way. 0, or -1 with a message. */
int xbb_floor_verify(const xbb_pool *p, xbb_cost *out, char *err, size_t errlen);

/* n signatures of tbs with key and digest md (what X509_sign does, minus the encoding). */
int xbb_floor_sign(EVP_PKEY *key, const char *md, const uint8_t *tbs, size_t tbs_len, size_t n,
                   xbb_cost *out, char *err, size_t errlen);

/* The issuance path for every CSR of the pool. */
int xbb_floor_issue(xb_ca *ca, const xbb_pool *p, xbb_cost *out, char *err, size_t errlen);

#endif
