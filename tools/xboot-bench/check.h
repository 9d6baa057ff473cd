/* The cheap check every answer gets: the issued certificate carries the CSR's public key
 * (SubjectPublicKeyInfo bytes equal) and exactly one subject CN, equal to the registration ID.
 * Signature and chain are checked on a sample afterwards (verify.h). */
#ifndef XBB_CHECK_H
#define XBB_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "pool.h"

/* 0 if the certificate matches the pool entry; -1 otherwise, with a short reason. */
int xbb_check_issued(const uint8_t *cert, size_t len, const xbb_pool_entry *e, const char **why);

#endif
