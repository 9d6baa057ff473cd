/* Renewal arithmetic, apart so unit tests can check it with any clock. */
#ifndef XBOOT_LIB_RENEW_H
#define XBOOT_LIB_RENEW_H

#include <stdint.h>

/* 1 when now >= not_before + percent% of (not_after - not_before); a certificate without a
 * positive lifetime is always due. */
int xbrn_due_at(int64_t not_before, int64_t not_after, int64_t now, int percent);

#endif
