/* Rate limits per client IP and per registration ID, shared by every worker process of one
 * xbootd node (docs/rate-limits.md).
 *
 * One token bucket per (kind, key), kept in a fixed-size table in shared memory that the
 * supervisor maps before forking, so that a client gets the same budget whichever worker the
 * kernel hands its connection to. A bucket is stored as the one instant at which it will be
 * full again (GCRA, the token bucket in one number): tokens(now) = burst - (full_at - now) *
 * per_second. A key that is not in the table has a full bucket.
 *
 * Times are CLOCK_MONOTONIC nanoseconds passed in by the caller (xb_ratelimit_now_ns()), so
 * tests run on a fake clock. A NULL limiter allows everything: the caller need not check
 * whether limits are configured. */
#ifndef XB_RATELIMIT_H
#define XB_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "xb_error.h"

/* per_second tokens are added, up to burst; per_second 0 turns the limit off. */
typedef struct xb_rate {
    double per_second;
    double burst;
} xb_rate;

typedef enum xb_rl_kind { XB_RL_IP = 0, XB_RL_ID = 1, XB_RL__COUNT } xb_rl_kind;

typedef struct xb_ratelimit xb_ratelimit;

/* Defaults for the integrator's configuration keys; docs/rate-limits.md says why. */
#define XB_RL_DEFAULT_IP_PER_SECOND 20.0
#define XB_RL_DEFAULT_IP_BURST 200.0
#define XB_RL_DEFAULT_ID_PER_SECOND (1.0 / 60.0)
#define XB_RL_DEFAULT_ID_BURST 5.0
#define XB_RL_DEFAULT_SLOTS 65536

/* Retry-After never says more than this (seconds); nor less than 1. */
#define XB_RL_RETRY_MAX 3600

/* Map the shared table before fork. ip or id NULL: that limit is off. slots (0: the default)
 * is rounded up to a power of two, at least 8, at most 2^24 (16 bytes each). Refuses with
 * XB_ERR_CONFIG a per_second that is negative, not finite or above 1e6, a burst below 1 or
 * above 1e6, burst x per_second above 1e8, and a bucket that takes more than 1e7 s (about 116
 * days) to refill. */
xb_err xb_ratelimit_new(const xb_rate *ip, const xb_rate *id, size_t slots, xb_ratelimit **out,
                        xb_diag *d);

/* Take cost tokens from key's bucket: 1 when allowed, 0 when refused, with *retry_after_s
 * (if not NULL) set to the whole seconds, 1..XB_RL_RETRY_MAX, until cost tokens will be there.
 * A refusal takes nothing. A cost above the burst can never be met: refused, retry after
 * XB_RL_RETRY_MAX. A negative or NaN cost counts as 0 (allowed unless the bucket is below 0).
 * key: the client's IP as text, or the registration ID (compared without case, as the registry
 * compares IDs); any NUL-terminated string. */
int xb_ratelimit_take(xb_ratelimit *rl, xb_rl_kind kind, const char *key, double cost,
                      int64_t now_ns, int *retry_after_s);

/* Charge cost more tokens after the fact (a failed authentication counts double: take 1, then
 * charge 1). Never refuses; may drive the bucket below zero, down to -burst, so that the
 * penalty is felt for up to burst / per_second seconds more. */
void xb_ratelimit_charge(xb_ratelimit *rl, xb_rl_kind kind, const char *key, double cost,
                         int64_t now_ns);

/* Unmap this process's view of the table. The supervisor calls it at exit; a worker may just
 * exit. */
void xb_ratelimit_free(xb_ratelimit *rl);

/* CLOCK_MONOTONIC in nanoseconds: the clock every process of the node shares. */
int64_t xb_ratelimit_now_ns(void);

/* SipHash-2-4 (64-bit output) of data under a 16-byte key: the keyed hash of the table,
 * exported for its test vectors. */
uint64_t xb_siphash24(const uint8_t key[16], const void *data, size_t len);

/* Test hook: lock the stripe that holds key and return without unlocking, so that a test
 * process can die holding it and show that the others recover (EOWNERDEAD). Nothing else may
 * call it. */
void xb_ratelimit_test_hold_lock(xb_ratelimit *rl, xb_rl_kind kind, const char *key);

#endif
