/* Rate limiter: token buckets on a fake clock, the shared table across fork, eviction, a dead
 * lock holder, concurrent takers. `test_ratelimit --bench` measures instead of testing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "ratelimit.h"
#include "xb_util.h"

#define S 1000000000LL /* ns */
#define T0 (1000 * S)  /* a fake CLOCK_MONOTONIC reading */

static xb_ratelimit *make(double ip_rate, double ip_burst, double id_rate, double id_burst,
                          size_t slots)
{
    xb_rate ip = {ip_rate, ip_burst}, id = {id_rate, id_burst};
    xb_ratelimit *rl = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_ratelimit_new(&ip, &id, slots, &rl, &d), XB_OK);
    assert_non_null(rl);
    return rl;
}

/* How many of n takes of cost at now are allowed. */
static int takes(xb_ratelimit *rl, xb_rl_kind kind, const char *key, double cost, int64_t now,
                 int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += xb_ratelimit_take(rl, kind, key, cost, now, NULL);
    return ok;
}

/* The Retry-After of a take that must be refused. */
static int refused_retry(xb_ratelimit *rl, xb_rl_kind kind, const char *key, double cost,
                         int64_t now)
{
    int retry = -1;
    assert_int_equal(xb_ratelimit_take(rl, kind, key, cost, now, &retry), 0);
    return retry;
}

static void test_siphash_vectors(void **state)
{
    (void)state;
    uint8_t key[16], msg[64];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    /* From the SipHash paper's reference test vectors (key 00..0f, message 00..len-1). */
    assert_true(xb_siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
    assert_true(xb_siphash24(key, msg, 15) == 0xa129ca6149be45e5ULL);
    /* And OpenSSL's SipHash for every length through the tail and several blocks. */
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    assert_non_null(mac);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    size_t size = 8;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                           OSSL_PARAM_construct_end()};
    for (size_t len = 0; len <= sizeof msg; len++) {
        uint8_t out[8];
        size_t out_len = 0;
        assert_int_equal(EVP_MAC_init(ctx, key, sizeof key, params), 1);
        assert_int_equal(EVP_MAC_update(ctx, msg, len), 1);
        assert_int_equal(EVP_MAC_final(ctx, out, &out_len, sizeof out), 1);
        assert_int_equal(out_len, 8);
        uint64_t want = 0;
        for (int i = 7; i >= 0; i--)
            want = want << 8 | out[i];
        assert_true(xb_siphash24(key, msg, len) == want);
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}

static void expect_config_error(double per_second, double burst, size_t slots)
{
    xb_rate r = {per_second, burst};
    xb_ratelimit *rl = (xb_ratelimit *)&rl; /* must be reset to NULL */
    xb_diag d = {""};
    assert_int_equal(xb_ratelimit_new(&r, NULL, slots, &rl, &d), XB_ERR_CONFIG);
    assert_null(rl);
    assert_true(d.msg[0] != '\0');
}

static void test_new_refuses_bad_settings(void **state)
{
    (void)state;
    expect_config_error(-1, 10, 0);
    expect_config_error(0.0 / 0.0, 10, 0);
    expect_config_error(1.0 / 0.0, 10, 0);
    expect_config_error(2e6, 10, 0);
    expect_config_error(1, 0.5, 0);
    expect_config_error(1, 2e6, 0);
    expect_config_error(1e-6, 100, 0); /* 1e8 s to refill */
    expect_config_error(1e5, 1e4, 0);  /* burst x rate 1e9 */
    expect_config_error(1, 10, (size_t)1 << 25);
    /* Off needs no burst; no rates at all is a limiter that allows everything. */
    xb_rate off = {0, 0};
    xb_ratelimit *rl = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_ratelimit_new(&off, NULL, 1, &rl, &d), XB_OK);
    xb_ratelimit_free(rl);
}

static void test_burst_then_refusal(void **state)
{
    (void)state;
    xb_ratelimit *rl = make(1, 5, 1, 5, 64);
    assert_int_equal(takes(rl, XB_RL_IP, "192.0.2.1", 1, T0, 5), 5);
    assert_int_equal(refused_retry(rl, XB_RL_IP, "192.0.2.1", 1, T0), 1);
    /* A refusal took nothing: the next token is still due one second after the burst. */
    assert_int_equal(refused_retry(rl, XB_RL_IP, "192.0.2.1", 1, T0 + S - 1000), 1);
    assert_int_equal(takes(rl, XB_RL_IP, "192.0.2.1", 1, T0 + S, 2), 1);
    xb_ratelimit_free(rl);
}

static void test_refill(void **state)
{
    (void)state;
    xb_ratelimit *rl = make(10, 20, 1, 5, 64);
    assert_int_equal(takes(rl, XB_RL_IP, "a", 1, T0, 100), 20);
    /* 10 per second: half a second later, 5 tokens. */
    assert_int_equal(takes(rl, XB_RL_IP, "a", 1, T0 + S / 2, 100), 5);
    /* Long idle: tokens stop at the burst. */
    assert_int_equal(takes(rl, XB_RL_IP, "a", 1, T0 + 3600 * S, 100), 20);
    /* A fractional rate: 3 per second, ns per token not whole; the burst is still exact. */
    xb_ratelimit *r3 = make(3, 100, 1, 5, 64);
    assert_int_equal(takes(r3, XB_RL_IP, "b", 1, T0, 1000), 100);
    assert_int_equal(takes(r3, XB_RL_IP, "b", 1, T0 + 10 * S, 1000), 30);
    xb_ratelimit_free(r3);
    xb_ratelimit_free(rl);
}

static void test_retry_after(void **state)
{
    (void)state;
    xb_ratelimit *rl = make(0.1, 2, 1.0 / 7200, 1, 64); /* IP: a token every 10 s */
    assert_int_equal(takes(rl, XB_RL_IP, "a", 1, T0, 2), 2);
    assert_int_equal(refused_retry(rl, XB_RL_IP, "a", 1, T0), 10);
    assert_int_equal(refused_retry(rl, XB_RL_IP, "a", 1, T0 + 3500000000LL), 7); /* 6.5 s */
    assert_int_equal(refused_retry(rl, XB_RL_IP, "a", 2, T0 + 3500000000LL), 17);
    assert_int_equal(refused_retry(rl, XB_RL_IP, "a", 1, T0 + 10 * S - 1000), 1);
    assert_int_equal(takes(rl, XB_RL_IP, "a", 1, T0 + 10 * S, 1), 1);
    /* Capped: ID refills a token every 2 hours. */
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 1, T0, 1), 1);
    assert_int_equal(refused_retry(rl, XB_RL_ID, "dev-1", 1, T0), XB_RL_RETRY_MAX);
    /* A cost above the burst can never be met. */
    assert_int_equal(refused_retry(rl, XB_RL_IP, "fresh", 3, T0), XB_RL_RETRY_MAX);
    xb_ratelimit_free(rl);
}

static void test_cost_two(void **state)
{
    (void)state;
    xb_ratelimit *rl = make(1, 5, 1, 5, 64);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 2, T0, 2), 2);
    /* One token left: a cost of 2 is refused and takes nothing; 1 more second is enough. */
    assert_int_equal(refused_retry(rl, XB_RL_ID, "dev-1", 2, T0), 1);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 1, T0, 2), 1);
    /* Negative and NaN costs count as 0: allowed at 0 tokens, nothing taken. */
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", -5, T0, 1), 1);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 0.0 / 0.0, T0, 1), 1);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 1, T0 + S, 2), 1);
    xb_ratelimit_free(rl);
}

static void test_charge(void **state)
{
    (void)state;
    xb_ratelimit *rl = make(1, 4, 1, 4, 64);
    /* A failed authentication: take 1, then charge 1 more. */
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 1, T0, 1), 1);
    xb_ratelimit_charge(rl, XB_RL_ID, "dev-1", 1, T0);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 1, T0, 10), 2);
    /* Charging never refuses and goes below zero, but no lower than -burst: from -4, five
     * seconds to one token whatever was charged. */
    xb_ratelimit_charge(rl, XB_RL_ID, "dev-1", 3, T0);
    xb_ratelimit_charge(rl, XB_RL_ID, "dev-1", 1000, T0);
    assert_int_equal(refused_retry(rl, XB_RL_ID, "dev-1", 1, T0), 5);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 1, T0 + 5 * S - 1000, 1), 0);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 1, T0 + 5 * S, 1), 1);
    /* A key never seen can be charged too. */
    xb_ratelimit_charge(rl, XB_RL_IP, "198.51.100.7", 6, T0);
    assert_int_equal(refused_retry(rl, XB_RL_IP, "198.51.100.7", 1, T0), 3);
    /* A charge with an older clock reading never lifts a debt already recorded. */
    xb_ratelimit_charge(rl, XB_RL_IP, "198.51.100.7", 1000, T0 - 100 * S);
    assert_int_equal(refused_retry(rl, XB_RL_IP, "198.51.100.7", 1, T0), 3);
    xb_ratelimit_free(rl);
}

static void test_kinds_and_keys_independent(void **state)
{
    (void)state;
    xb_ratelimit *rl = make(1, 3, 1, 3, 64);
    assert_int_equal(takes(rl, XB_RL_IP, "10.0.0.1", 1, T0, 10), 3);
    /* The same text as the other kind, and other keys, have their own buckets. */
    assert_int_equal(takes(rl, XB_RL_ID, "10.0.0.1", 1, T0, 10), 3);
    assert_int_equal(takes(rl, XB_RL_IP, "10.0.0.2", 1, T0, 10), 3);
    assert_int_equal(takes(rl, XB_RL_IP, "10.0.0.10", 1, T0, 10), 3);
    assert_int_equal(takes(rl, XB_RL_IP, "", 1, T0, 10), 3);
    char longid[129];
    memset(longid, 'x', 128);
    longid[128] = '\0';
    assert_int_equal(takes(rl, XB_RL_ID, longid, 1, T0, 10), 3);
    longid[127] = 'y';
    assert_int_equal(takes(rl, XB_RL_ID, longid, 1, T0, 10), 3);
    /* IDs are one device whatever their case, as in the registry; IP text is taken as is. */
    assert_int_equal(takes(rl, XB_RL_ID, "Dev-1.Site:A", 1, T0, 10), 3);
    assert_int_equal(takes(rl, XB_RL_ID, "DEV-1.SITE:A", 1, T0, 10), 0);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1.site:a", 1, T0, 10), 0);
    assert_int_equal(takes(rl, XB_RL_IP, "2001:DB8::1", 1, T0, 10), 3);
    assert_int_equal(takes(rl, XB_RL_IP, "2001:db8::1", 1, T0, 10), 3);
    xb_ratelimit_free(rl);
}

static void test_off_allows_everything(void **state)
{
    (void)state;
    xb_rate id = {1, 1};
    xb_ratelimit *rl = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_ratelimit_new(NULL, &id, 0, &rl, &d), XB_OK);
    assert_int_equal(takes(rl, XB_RL_IP, "192.0.2.1", 1, T0, 10000), 10000);
    xb_ratelimit_charge(rl, XB_RL_IP, "192.0.2.1", 1000, T0);
    assert_int_equal(takes(rl, XB_RL_IP, "192.0.2.1", 1, T0, 1), 1);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 1, T0, 10), 1);
    /* No limiter, no key: allowed. */
    assert_int_equal(takes(NULL, XB_RL_IP, "192.0.2.1", 1, T0, 10), 10);
    xb_ratelimit_charge(NULL, XB_RL_ID, "dev-1", 1, T0);
    assert_int_equal(takes(rl, XB_RL_ID, NULL, 1, T0, 10), 10);
    xb_ratelimit_free(rl);
    xb_ratelimit_free(NULL);
}

static void test_eviction_bounded(void **state)
{
    (void)state;
    /* One set of 8 slots for thousands of keys. IP: 1 per s, burst 10; ID: 1 per minute,
     * burst 5. */
    xb_ratelimit *rl = make(1, 10, 1.0 / 60, 5, 1);
    char key[32];
    /* A key pushed below zero (brute force) and an ID that owes a fifth of its burst both
     * outlive a flood of fresh keys that each owe a tenth. */
    xb_ratelimit_charge(rl, XB_RL_IP, "attacker", 20, T0);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 1, T0, 1), 1);
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        assert_int_equal(takes(rl, XB_RL_IP, key, 1, T0, 1), 1);
    }
    assert_int_equal(takes(rl, XB_RL_IP, "attacker", 1, T0, 1), 0);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 1, T0, 10), 4);
    /* Keys that all owe more than the rest: the table keeps 8 of them, never crashes, and a
     * key that was evicted comes back with a full bucket (a take of 0 tells full from not,
     * and stores nothing for a full bucket). */
    int kept = 0;
    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof key, "deep-%d", i);
        xb_ratelimit_charge(rl, XB_RL_IP, key, 20, T0 + 1);
    }
    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof key, "deep-%d", i);
        kept += xb_ratelimit_take(rl, XB_RL_IP, key, 0, T0 + 1, NULL) == 0;
    }
    assert_int_equal(kept, 8);
    xb_ratelimit_free(rl);
}

/* Run fn(rl, i) in n child processes, started together; returns the sum of what they return
 * (written to shared memory: an exit status holds too little). */
typedef int (*child_fn)(xb_ratelimit *rl, int i);

typedef struct children_shared {
    atomic_int ready;
    int count[16];
} children_shared;

static int in_children(xb_ratelimit *rl, int n, child_fn fn)
{
    children_shared *sh =
        mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    pid_t pid[16];
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
        pid[i] = fork();
        assert_true(pid[i] >= 0);
        if (pid[i] == 0) {
            alarm(30); /* a child that hangs must not hang the test */
            /* Wait for the others, so that their takes overlap. */
            atomic_fetch_add(&sh->ready, 1);
            while (atomic_load(&sh->ready) < n)
                ;
            sh->count[i] = fn(rl, i);
            _exit(0);
        }
    }
    int sum = 0;
    for (int i = 0; i < n; i++) {
        int status = 0;
        assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        sum += sh->count[i];
    }
    munmap(sh, sizeof *sh);
    return sum;
}

static int child_drains(xb_ratelimit *rl, int i)
{
    (void)i;
    return takes(rl, XB_RL_ID, "dev-1", 1, T0, 100);
}

static int child_probes(xb_ratelimit *rl, int i)
{
    (void)i;
    return takes(rl, XB_RL_ID, "dev-2", 1, T0, 1);
}

static void test_fork_shares_buckets(void **state)
{
    (void)state;
    xb_ratelimit *rl = make(1, 5, 1, 5, 64);
    /* Taken in the child, seen by the parent ... */
    assert_int_equal(in_children(rl, 1, child_drains), 5);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 1, T0, 1), 0);
    /* ... and the other way round. */
    assert_int_equal(takes(rl, XB_RL_ID, "dev-2", 1, T0, 5), 5);
    assert_int_equal(in_children(rl, 1, child_probes), 0);
    xb_ratelimit_free(rl);
}

static int child_dies_holding_lock(xb_ratelimit *rl, int i)
{
    (void)i;
    xb_ratelimit_test_hold_lock(rl, XB_RL_ID, "dev-1");
    return 1; /* exits with the lock held */
}

static void test_dead_lock_holder(void **state)
{
    (void)state;
    xb_ratelimit *rl = make(1, 5, 1, 5, 64);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 1, T0, 2), 2);
    assert_int_equal(in_children(rl, 1, child_dies_holding_lock), 1);
    /* The parent gets the lock (EOWNERDEAD, made consistent) and the bucket as it was; the
     * alarm turns a deadlock into a failure instead of a hang. */
    alarm(30);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 1, T0, 10), 3);
    assert_int_equal(takes(rl, XB_RL_ID, "dev-1", 1, T0 + S, 10), 1);
    alarm(0);
    xb_ratelimit_free(rl);
}

#define HAMMER_PROCS 4
#define HAMMER_TAKES 1000000
#define HAMMER_STEP_NS 100

/* Each process on its own fake clock, 100 ns a take: together they ask for 40 times what a
 * million per second refills, so the bucket is the bottleneck throughout the run. */
static int child_hammers(xb_ratelimit *rl, int i)
{
    (void)i;
    int ok = 0;
    for (int j = 0; j < HAMMER_TAKES; j++)
        ok += xb_ratelimit_take(rl, XB_RL_IP, "203.0.113.9", 1, T0 + (int64_t)j * HAMMER_STEP_NS,
                                NULL);
    return ok;
}

static void test_processes_hammer_one_key(void **state)
{
    (void)state;
    /* However the processes' takes and clock readings interleave, no more than the burst plus
     * the refill over the span of clock readings gets through: a lost update would let more. */
    xb_ratelimit *rl = make(1e6, 10, 1, 5, 64);
    int allowed = in_children(rl, HAMMER_PROCS, child_hammers);
    int64_t span_ns = (int64_t)(HAMMER_TAKES - 1) * HAMMER_STEP_NS;
    assert_true(allowed >= 10);
    assert_true(allowed <= 10 + span_ns / 1000);
    xb_ratelimit_free(rl);
}

typedef struct hammer_arg {
    xb_ratelimit *rl;
    int allowed;
} hammer_arg;

static void *thread_hammers(void *p)
{
    hammer_arg *a = p;
    for (int i = 0; i < 50000; i++)
        a->allowed +=
            xb_ratelimit_take(a->rl, XB_RL_IP, "203.0.113.9", 1, xb_ratelimit_now_ns(), NULL);
    return NULL;
}

static void test_threads_hammer_one_key(void **state)
{
    (void)state;
    /* On the real clock: never more than burst + rate x elapsed. */
    xb_ratelimit *rl = make(1000, 50, 1, 5, 64);
    hammer_arg arg[4];
    pthread_t th[4];
    int64_t start = xb_ratelimit_now_ns();
    for (int i = 0; i < 4; i++) {
        arg[i] = (hammer_arg){rl, 0};
        assert_int_equal(pthread_create(&th[i], NULL, thread_hammers, &arg[i]), 0);
    }
    int allowed = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        allowed += arg[i].allowed;
    }
    double elapsed = (double)(xb_ratelimit_now_ns() - start) / S;
    assert_true(allowed >= 50);
    assert_true(allowed <= 50 + 1000 * elapsed + 1);
    xb_ratelimit_free(rl);
}

/* ---- --bench: ns per operation, printed, never asserted ---- */

#define BENCH_KEYS 10000
#define BENCH_OPS 2000000
#define BENCH_REPEATS 7

static char bench_ip[BENCH_KEYS][16];
static volatile uint64_t bench_sink;
static const uint8_t bench_key[16] = {1, 2, 3};

/* One timed loop of ops operations; i is the operation's index. */
typedef void (*bench_loop)(xb_ratelimit *rl, int ops);

static void loop_siphash_ip(xb_ratelimit *rl, int ops)
{
    (void)rl;
    for (int i = 0; i < ops; i++) {
        const char *k = bench_ip[i % BENCH_KEYS];
        bench_sink += xb_siphash24(bench_key, k, strlen(k));
    }
}

static void loop_siphash_id128(xb_ratelimit *rl, int ops)
{
    (void)rl;
    char id[129];
    memset(id, 'd', 128);
    id[128] = '\0';
    for (int i = 0; i < ops; i++) {
        id[0] = (char)('a' + i % 26);
        bench_sink += xb_siphash24(bench_key, id, strlen(id));
    }
}

static void loop_evp_siphash_ip(xb_ratelimit *rl, int ops)
{
    (void)rl;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    size_t size = 8;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                           OSSL_PARAM_construct_end()};
    for (int i = 0; i < ops; i++) {
        uint8_t out[8];
        size_t out_len;
        const char *k = bench_ip[i % BENCH_KEYS];
        EVP_MAC_init(ctx, bench_key, sizeof bench_key, params);
        EVP_MAC_update(ctx, (const unsigned char *)k, strlen(k));
        EVP_MAC_final(ctx, out, &out_len, sizeof out);
        bench_sink += out[0];
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}

/* Takes on a clock that advances 1 ns a take: at the default IP rate a key gets its burst and
 * is then refused, so most takes below are refusals, as under a flood. */
static void loop_take_ips(xb_ratelimit *rl, int ops)
{
    int64_t now = xb_ratelimit_now_ns();
    for (int i = 0; i < ops; i++)
        bench_sink +=
            (uint64_t)xb_ratelimit_take(rl, XB_RL_IP, bench_ip[i % BENCH_KEYS], 1, now + i, NULL);
}

static void loop_take_one_ip(xb_ratelimit *rl, int ops)
{
    int64_t now = xb_ratelimit_now_ns();
    for (int i = 0; i < ops; i++)
        bench_sink += (uint64_t)xb_ratelimit_take(rl, XB_RL_IP, "203.0.113.9", 1, now + i, NULL);
}

/* A new ID every take, 40 times the table's slots: every take allowed, inserted, evicting. */
static void loop_take_new_ids(xb_ratelimit *rl, int ops)
{
    int64_t now = xb_ratelimit_now_ns();
    char id[32] = "device-";
    for (int i = 0; i < ops; i++) {
        xb_hex((const uint8_t *)&i, sizeof i, id + 7);
        bench_sink += (uint64_t)xb_ratelimit_take(rl, XB_RL_ID, id, 1, now + i, NULL);
    }
}

static int bench_child_loop(xb_ratelimit *rl, int i)
{
    (i % 2 ? loop_take_ips : loop_take_one_ip)(rl, BENCH_OPS);
    return 0;
}

static int bench_child_ips(xb_ratelimit *rl, int i)
{
    (void)i;
    loop_take_ips(rl, BENCH_OPS);
    return 0;
}

static int bench_child_one_ip(xb_ratelimit *rl, int i)
{
    (void)i;
    loop_take_one_ip(rl, BENCH_OPS);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Best and median of BENCH_REPEATS runs, in ns per operation: the machine may be shared, and
 * the best run is the one least disturbed. */
static void bench_report(const char *what, double ns[BENCH_REPEATS])
{
    qsort(ns, BENCH_REPEATS, sizeof ns[0], cmp_double);
    printf("%-58s best %7.1f ns  median %7.1f ns\n", what, ns[0], ns[BENCH_REPEATS / 2]);
}

static void bench_one(const char *what, bench_loop loop, xb_ratelimit *rl, int ops)
{
    double ns[BENCH_REPEATS];
    for (int r = 0; r < BENCH_REPEATS; r++) {
        int64_t t = xb_ratelimit_now_ns();
        loop(rl, ops);
        ns[r] = (double)(xb_ratelimit_now_ns() - t) / ops;
    }
    bench_report(what, ns);
}

/* procs processes at once, each BENCH_OPS takes: wall time per take of all of them. */
static void bench_procs(const char *what, child_fn fn, xb_ratelimit *rl, int procs)
{
    double ns[BENCH_REPEATS];
    for (int r = 0; r < BENCH_REPEATS; r++) {
        int64_t t = xb_ratelimit_now_ns();
        in_children(rl, procs, fn);
        ns[r] = (double)(xb_ratelimit_now_ns() - t) / ((double)BENCH_OPS * procs);
    }
    bench_report(what, ns);
}

static int bench(void)
{
    for (int i = 0; i < BENCH_KEYS; i++)
        snprintf(bench_ip[i], sizeof bench_ip[i], "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
    xb_rate ip = {XB_RL_DEFAULT_IP_PER_SECOND, XB_RL_DEFAULT_IP_BURST};
    xb_rate id = {XB_RL_DEFAULT_ID_PER_SECOND, XB_RL_DEFAULT_ID_BURST};
    xb_ratelimit *rl = NULL;
    xb_diag d = {""};
    if (xb_ratelimit_new(&ip, &id, XB_RL_DEFAULT_SLOTS, &rl, &d) != XB_OK) {
        fprintf(stderr, "%s\n", d.msg);
        return 1;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("%ld CPUs online; %d ops a run, %d runs; default rates, %d slots\n", cpus, BENCH_OPS,
           BENCH_REPEATS, XB_RL_DEFAULT_SLOTS);
    bench_one("siphash24, IP text (8-11 bytes)", loop_siphash_ip, NULL, BENCH_OPS);
    bench_one("siphash24, 128-byte ID", loop_siphash_id128, NULL, BENCH_OPS);
    bench_one("OpenSSL EVP_MAC SIPHASH, IP text", loop_evp_siphash_ip, NULL, BENCH_OPS / 10);
    bench_one("take, 10,000 IPs", loop_take_ips, rl, BENCH_OPS);
    bench_one("take, one IP", loop_take_one_ip, rl, BENCH_OPS);
    bench_one("take, a new ID each time (table full, evicting)", loop_take_new_ids, rl, BENCH_OPS);
    bench_procs("take, 2 processes, 10,000 IPs each (wall per take)", bench_child_ips, rl, 2);
    bench_procs("take, 2 processes, one IP (wall per take)", bench_child_one_ip, rl, 2);
    bench_procs("take, 4 processes, half one IP (wall per take)", bench_child_loop, rl, 4);
    xb_ratelimit_free(rl);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--bench") == 0)
        return bench();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash_vectors),
        cmocka_unit_test(test_new_refuses_bad_settings),
        cmocka_unit_test(test_burst_then_refusal),
        cmocka_unit_test(test_refill),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_cost_two),
        cmocka_unit_test(test_charge),
        cmocka_unit_test(test_kinds_and_keys_independent),
        cmocka_unit_test(test_off_allows_everything),
        cmocka_unit_test(test_eviction_bounded),
        cmocka_unit_test(test_fork_shares_buckets),
        cmocka_unit_test(test_dead_lock_holder),
        cmocka_unit_test(test_processes_hammer_one_key),
        cmocka_unit_test(test_threads_hammer_one_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
