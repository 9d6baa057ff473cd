#include "ratelimit.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <openssl/rand.h>

#include "xb_regid.h"

/* Set-associative: a key's hash picks a set of XB_RL_WAYS slots, and the key may sit in any of
 * them. 8 slots of 16 bytes are two cache lines. */
#define XB_RL_WAYS 8
#define XB_RL_MIN_SLOTS XB_RL_WAYS
#define XB_RL_MAX_SLOTS (1u << 24)
/* Sets are spread over at most this many locks (set index modulo the stripe count): enough
 * that workers rarely wait for each other, few enough that the locks stay small (16 KiB). */
#define XB_RL_MAX_STRIPES 256
#define XB_RL_CACHE_LINE 64

#define XB_RL_MAX_PER_SECOND 1e6
#define XB_RL_MAX_BURST 1e6
#define XB_RL_MAX_REFILL_SECONDS 1e7
#define XB_RL_MAX_BURST_X_RATE 1e8
#define XB_NS_PER_S 1000000000LL
/* Room for any valid registration ID, and then some. */
#define XB_RL_ID_HASHED (2 * XB_REGID_MAX)

/* One bucket. fp is the key's keyed hash with its low bit replaced by the kind; full_at is the
 * CLOCK_MONOTONIC instant (ns) at which the bucket is full again. A zeroed slot (full_at 0, in
 * the past) is a full bucket, which is what a key not in the table has: empty and unused slots
 * need no marker. Any pair of values is a valid bucket, so a worker that dies half-way through
 * a write leaves nothing to repair. */
typedef struct xb_rl_slot {
    uint64_t fp;
    int64_t full_at;
} xb_rl_slot;

typedef struct xb_rl_set {
    xb_rl_slot slot[XB_RL_WAYS];
} xb_rl_set;

/* One lock per cache line, so that workers taking different stripes do not share a line. */
typedef union xb_rl_lock {
    pthread_mutex_t m;
    unsigned char pad[XB_RL_CACHE_LINE];
} xb_rl_lock;
_Static_assert(sizeof(pthread_mutex_t) <= XB_RL_CACHE_LINE, "a lock fits one cache line");

/* A kind's rate, in the units the table works in. */
typedef struct xb_rl_limit {
    int on;
    double burst;
    double ns_per_token;
    int64_t burst_ns; /* how far full_at may lie ahead of now after a take */
    /* The rounding of a whole burst of takes (half a ns each), forgiven so that a burst allows
     * exactly burst takes. With burst x per_second <= 1e8 it is at most a twentieth of a
     * token, too little to let one more through. */
    int64_t slack_ns;
} xb_rl_limit;

/* Everything lives in one shared mapping: this header (written before fork, read-only after),
 * the locks, the sets. The pointers stay valid in the workers because fork keeps addresses. */
struct xb_ratelimit {
    size_t map_len;
    uint64_t set_mask;
    uint64_t stripe_mask;
    xb_rl_limit limit[XB_RL__COUNT];
    /* An independent SipHash key per kind, drawn at creation: a client cannot predict which
     * set a key lands in, so cannot aim keys at a victim's set or its own. */
    uint8_t key[XB_RL__COUNT][16];
    xb_rl_lock *locks;
    xb_rl_set *sets;
};

/* ---- SipHash-2-4 (Aumasson and Bernstein), 64-bit output ---- */

static inline uint64_t xb_rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static inline void xb_sipround(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = xb_rotl(v[1], 13) ^ v[0];
    v[0] = xb_rotl(v[0], 32);
    v[2] += v[3];
    v[3] = xb_rotl(v[3], 16) ^ v[2];
    v[0] += v[3];
    v[3] = xb_rotl(v[3], 21) ^ v[0];
    v[2] += v[1];
    v[1] = xb_rotl(v[1], 17) ^ v[2];
    v[2] = xb_rotl(v[2], 32);
}

/* Spelt out rather than looped: gcc turns this into one load, but kept the loop as eight
 * byte loads and shifts, which hashed a 128-byte ID about 1.3x slower. */
static inline uint64_t xb_le64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

static inline void xb_sip_absorb(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    xb_sipround(v);
    xb_sipround(v);
    v[0] ^= m;
}

uint64_t xb_siphash24(const uint8_t key[16], const void *data, size_t len)
{
    const uint8_t *in = data;
    uint64_t k0 = xb_le64(key), k1 = xb_le64(key + 8);
    uint64_t v[4] = {0x736f6d6570736575ULL ^ k0, 0x646f72616e646f6dULL ^ k1,
                     0x6c7967656e657261ULL ^ k0, 0x7465646279746573ULL ^ k1};
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8)
        xb_sip_absorb(v, xb_le64(in + i));
    uint64_t last = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++)
        last |= (uint64_t)in[whole + i] << (8 * i);
    xb_sip_absorb(v, last);
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        xb_sipround(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- creation ---- */

/* Round a non-negative, bounded duration to whole ns (no libm: llround would need -lm). */
static int64_t xb_ns(double ns)
{
    return (int64_t)(ns + 0.5);
}

static xb_err xb_rl_limit_init(xb_rl_limit *lim, const xb_rate *r, const char *name, xb_diag *d)
{
    memset(lim, 0, sizeof *lim);
    if (r == NULL || r->per_second == 0)
        return XB_OK;
    if (!isfinite(r->per_second) || r->per_second < 0 || r->per_second > XB_RL_MAX_PER_SECOND)
        return xb_fail(d, XB_ERR_CONFIG, "%s rate limit: %g per second; allowed: 0 (off) to %g",
                       name, r->per_second, XB_RL_MAX_PER_SECOND);
    if (!isfinite(r->burst) || r->burst < 1 || r->burst > XB_RL_MAX_BURST)
        return xb_fail(d, XB_ERR_CONFIG, "%s rate limit: burst %g; allowed: 1 to %g", name,
                       r->burst, XB_RL_MAX_BURST);
    /* Bounds full_at - now (at most twice this, after a charge) well inside int64 ns. */
    if (r->burst / r->per_second > XB_RL_MAX_REFILL_SECONDS)
        return xb_fail(d, XB_ERR_CONFIG,
                       "%s rate limit: a burst of %g at %g per second takes %g s to refill; "
                       "allowed: at most %g s",
                       name, r->burst, r->per_second, r->burst / r->per_second,
                       XB_RL_MAX_REFILL_SECONDS);
    /* Costs are rounded to whole ns, so a take may be off by half a ns; see slack_ns. */
    if (r->burst * r->per_second > XB_RL_MAX_BURST_X_RATE)
        return xb_fail(d, XB_ERR_CONFIG,
                       "%s rate limit: burst %g x %g per second; allowed: at most %g", name,
                       r->burst, r->per_second, XB_RL_MAX_BURST_X_RATE);
    lim->on = 1;
    lim->burst = r->burst;
    lim->ns_per_token = 1e9 / r->per_second;
    lim->burst_ns = xb_ns(r->burst * lim->ns_per_token);
    lim->slack_ns = (int64_t)(r->burst / 2) + 1;
    return XB_OK;
}

static size_t xb_round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

xb_err xb_ratelimit_new(const xb_rate *ip, const xb_rate *id, size_t slots, xb_ratelimit **out,
                        xb_diag *d)
{
    *out = NULL;
    xb_rl_limit limit[XB_RL__COUNT];
    xb_err err = xb_rl_limit_init(&limit[XB_RL_IP], ip, "client IP", d);
    if (err == XB_OK)
        err = xb_rl_limit_init(&limit[XB_RL_ID], id, "registration ID", d);
    if (err != XB_OK)
        return err;
    if (slots == 0)
        slots = XB_RL_DEFAULT_SLOTS;
    if (slots > XB_RL_MAX_SLOTS)
        return xb_fail(d, XB_ERR_CONFIG, "rate limit table: %zu slots; allowed: at most %u", slots,
                       XB_RL_MAX_SLOTS);
    size_t total = XB_RL_MIN_SLOTS;
    while (total < slots)
        total *= 2;
    size_t nsets = total / XB_RL_WAYS;
    size_t nstripes = nsets < XB_RL_MAX_STRIPES ? nsets : XB_RL_MAX_STRIPES;

    size_t head = xb_round_up(sizeof(xb_ratelimit), XB_RL_CACHE_LINE);
    size_t locks_len = nstripes * sizeof(xb_rl_lock);
    size_t len = head + locks_len + nsets * sizeof(xb_rl_set);
    /* MAP_SHARED before fork: every worker sees the same buckets. The kernel zero-fills it,
     * which is a table of full buckets. */
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return xb_fail(d, XB_ERR_NOMEM, "rate limit table: cannot map %zu bytes: %s", len,
                       strerror(errno));
    xb_ratelimit *rl = p;
    rl->map_len = len;
    rl->set_mask = nsets - 1;
    rl->stripe_mask = nstripes - 1;
    memcpy(rl->limit, limit, sizeof limit);
    rl->locks = (xb_rl_lock *)((unsigned char *)p + head);
    rl->sets = (xb_rl_set *)((unsigned char *)p + head + locks_len);
    if (RAND_bytes(&rl->key[0][0], sizeof rl->key) != 1) {
        munmap(p, len);
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "rate limit table: no random hash key");
    }

    /* Process-shared, because workers are processes; robust, because a worker killed while
     * holding a lock must not stop every other worker at that stripe. */
    pthread_mutexattr_t attr;
    int rc = pthread_mutexattr_init(&attr);
    if (rc == 0)
        rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    for (size_t i = 0; rc == 0 && i < nstripes; i++)
        rc = pthread_mutex_init(&rl->locks[i].m, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        munmap(p, len);
        return xb_fail(d, XB_ERR_INTERNAL, "rate limit table: process-shared robust mutex: %s",
                       strerror(rc));
    }
    *out = rl;
    return XB_OK;
}

void xb_ratelimit_free(xb_ratelimit *rl)
{
    /* The mutexes are not destroyed: other processes of the tree may still be using them, and
     * destroying a process-shared mutex frees nothing in any case. */
    if (rl != NULL)
        munmap(rl, rl->map_len);
}

int64_t xb_ratelimit_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * XB_NS_PER_S + ts.tv_nsec;
}

/* ---- the table ---- */

static int xb_rl_acquire(pthread_mutex_t *m)
{
    int rc = pthread_mutex_lock(m);
    if (rc == EOWNERDEAD) {
        /* Its holder died. Every slot is a valid bucket whatever it was writing (see
         * xb_rl_slot), so marking the lock usable again is all the repair there is. */
        rc = pthread_mutex_consistent(m);
    }
    return rc;
}

/* How much of a burst the bucket owes at now: 0 for a full bucket, 1 for an empty one, up to
 * 2 after charges. Eviction drops the slot that owes least: it carries the least information
 * (a full bucket carries none), and a key pushed to or below empty, such as one being
 * brute-forced, is the last to go, so an attacker cannot reset it by flooding the table. */
static double xb_rl_debt(const xb_ratelimit *rl, const xb_rl_slot *s, int64_t now)
{
    const xb_rl_limit *lim = &rl->limit[s->fp & 1];
    if (s->full_at <= now || !lim->on)
        return 0;
    return (double)(s->full_at - now) / (double)lim->burst_ns;
}

static xb_rl_slot *xb_rl_victim(const xb_ratelimit *rl, xb_rl_set *set, int64_t now)
{
    xb_rl_slot *best = &set->slot[0];
    double best_debt = xb_rl_debt(rl, best, now);
    for (int i = 1; i < XB_RL_WAYS && best_debt > 0; i++) {
        double debt = xb_rl_debt(rl, &set->slot[i], now);
        if (debt < best_debt) {
            best = &set->slot[i];
            best_debt = debt;
        }
    }
    return best;
}

/* The key's keyed hash. Registration IDs are folded to lower case first, because the registry
 * compares them without case: "DEV-1" and "dev-1" are one device, and must not be two buckets
 * that an attacker could multiply by varying the case of a victim's ID. An ID longer than
 * XB_RL_ID_HASHED (no valid one is) counts by its first XB_RL_ID_HASHED bytes, which can only
 * make keys share a bucket, never split one. */
static uint64_t xb_rl_hash(const xb_ratelimit *rl, xb_rl_kind kind, const char *key)
{
    if (kind != XB_RL_ID)
        return xb_siphash24(rl->key[kind], key, strlen(key));
    char folded[XB_RL_ID_HASHED];
    size_t len = 0;
    for (; len < sizeof folded && key[len] != '\0'; len++)
        folded[len] =
            (char)(key[len] >= 'A' && key[len] <= 'Z' ? key[len] + ('a' - 'A') : key[len]);
    return xb_siphash24(rl->key[kind], folded, len);
}

static int xb_rl_retry_seconds(int64_t wait_ns)
{
    int64_t s = (wait_ns + XB_NS_PER_S - 1) / XB_NS_PER_S;
    return s < 1 ? 1 : s > XB_RL_RETRY_MAX ? XB_RL_RETRY_MAX : (int)s;
}

/* Take (charge 0) or charge cost tokens from key's bucket under its stripe's lock. Returns 1
 * when the tokens were taken. */
static int xb_rl_apply(xb_ratelimit *rl, xb_rl_kind kind, const char *key, double cost, int64_t now,
                       int charge, int *retry_after_s)
{
    const xb_rl_limit *lim = &rl->limit[kind];
    if (!(cost > 0))
        cost = 0; /* also NaN */
    /* Beyond twice the burst nothing changes (a take is refused, a charge stops at -burst);
     * clamping keeps cost_ns inside int64. */
    int over_burst = cost > lim->burst;
    double clamped = cost > 2 * lim->burst ? 2 * lim->burst : cost;
    int64_t cost_ns = xb_ns(clamped * lim->ns_per_token);

    uint64_t h = xb_rl_hash(rl, kind, key);
    uint64_t fp = (h & ~(uint64_t)1) | (uint64_t)kind;
    uint64_t set_index = h & rl->set_mask;
    xb_rl_set *set = &rl->sets[set_index];
    pthread_mutex_t *m = &rl->locks[set_index & rl->stripe_mask].m;
    /* A lock that cannot be taken (never expected: EOWNERDEAD is handled) fails open: xbootd
     * keeps answering, without this limit, rather than refusing everyone. */
    if (xb_rl_acquire(m) != 0)
        return 1;

    xb_rl_slot *s = NULL;
    for (int i = 0; i < XB_RL_WAYS; i++)
        if (set->slot[i].fp == fp) {
            s = &set->slot[i];
            break;
        }
    int64_t full_at = s != NULL ? s->full_at : now;
    /* A bucket that was full before now is just full: tokens do not pile up past burst. */
    int64_t next = (full_at > now ? full_at : now) + cost_ns;
    if (!charge && (over_burst || next - now > lim->burst_ns + lim->slack_ns)) {
        pthread_mutex_unlock(m);
        if (retry_after_s != NULL)
            *retry_after_s =
                over_burst ? XB_RL_RETRY_MAX : xb_rl_retry_seconds(next - now - lim->burst_ns);
        return 0;
    }
    if (charge && next - now > 2 * lim->burst_ns) {
        /* Down to -burst and no further; and never lift a debt that another worker, with a
         * slightly later clock reading, has already recorded. */
        next = now + 2 * lim->burst_ns;
        if (next < full_at)
            next = full_at;
    }
    if (s == NULL) {
        if (next <= now) {
            /* Still a full bucket (a take of 0): nothing worth a slot. */
            pthread_mutex_unlock(m);
            return 1;
        }
        s = xb_rl_victim(rl, set, now);
        s->fp = fp;
    }
    s->full_at = next;
    pthread_mutex_unlock(m);
    return 1;
}

int xb_ratelimit_take(xb_ratelimit *rl, xb_rl_kind kind, const char *key, double cost,
                      int64_t now_ns, int *retry_after_s)
{
    if (rl == NULL || key == NULL || (unsigned)kind >= XB_RL__COUNT || !rl->limit[kind].on)
        return 1;
    return xb_rl_apply(rl, kind, key, cost, now_ns, 0, retry_after_s);
}

void xb_ratelimit_charge(xb_ratelimit *rl, xb_rl_kind kind, const char *key, double cost,
                         int64_t now_ns)
{
    if (rl == NULL || key == NULL || (unsigned)kind >= XB_RL__COUNT || !rl->limit[kind].on)
        return;
    xb_rl_apply(rl, kind, key, cost, now_ns, 1, NULL);
}

void xb_ratelimit_test_hold_lock(xb_ratelimit *rl, xb_rl_kind kind, const char *key)
{
    uint64_t h = xb_rl_hash(rl, kind, key);
    xb_rl_acquire(&rl->locks[h & rl->set_mask & rl->stripe_mask].m);
}
