#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct xb_metrics {
    size_t slots;
    size_t map_len;
    xb_metrics_slot slot[];
};

/* Upper bounds of the finite buckets, in micro-units; the last bucket is +Inf. */
static const uint64_t xb_seconds_bounds[XB_HIST_BUCKETS - 1] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};
static const uint64_t xb_batch_bounds[XB_HIST_BUCKETS - 1] = {1,  2,   4,   8,   16,  32,
                                                              64, 128, 256, 512, 1024};
#define XB_MICRO_PER_BATCH_ITEM 1000000ULL

xb_metrics *xb_metrics_create(int workers)
{
    if (workers < 1)
        return NULL;
    size_t len = sizeof(xb_metrics) + (size_t)workers * sizeof(xb_metrics_slot);
    /* MAP_SHARED before fork: every worker sees the same pages. Zero-filled by the kernel,
     * which is a valid initial state for the atomics. */
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    xb_metrics *m = p;
    m->slots = (size_t)workers;
    m->map_len = len;
    return m;
}

void xb_metrics_destroy(xb_metrics *m)
{
    if (m != NULL)
        munmap(m, m->map_len);
}

xb_metrics_slot *xb_metrics_slot_of(xb_metrics *m, int worker)
{
    if (m == NULL || worker < 0 || (size_t)worker >= m->slots)
        return NULL;
    return &m->slot[worker];
}

static void xb_hist_observe(xb_histogram *h, const uint64_t *bounds, uint64_t micro)
{
    size_t i = 0;
    while (i < XB_HIST_BUCKETS - 1 && micro > bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_micro, micro, memory_order_relaxed);
}

static uint64_t xb_micro(double seconds)
{
    return seconds <= 0 ? 0 : (uint64_t)(seconds * 1e6 + 0.5);
}

void xb_metrics_request(xb_metrics_slot *s, size_t route, double seconds)
{
    if (s != NULL && route < XB_METRICS_MAX_ROUTES)
        xb_hist_observe(&s->request_seconds[route], xb_seconds_bounds, xb_micro(seconds));
}

void xb_metrics_enrollment(xb_metrics_slot *s, xb_protocol proto, xb_enroll_outcome outcome)
{
    if (s != NULL && proto < XB_PROTO__COUNT && outcome < XB_OUTCOME__COUNT)
        atomic_fetch_add_explicit(&s->answered[proto][outcome], 1, memory_order_relaxed);
}

void xb_metrics_refusal(xb_metrics_slot *s, xb_protocol proto, xb_err code)
{
    if (s != NULL && proto < XB_PROTO__COUNT && code != XB_OK && code < XB_ERR__COUNT)
        atomic_fetch_add_explicit(&s->refused[proto][code], 1, memory_order_relaxed);
}

void xb_metrics_commit(xb_metrics_slot *s, double seconds, size_t batch)
{
    if (s == NULL)
        return;
    xb_hist_observe(&s->commit_seconds, xb_seconds_bounds, xb_micro(seconds));
    /* Batch sizes are counted in whole items; the bounds are compared in items too. */
    size_t i = 0;
    while (i < XB_HIST_BUCKETS - 1 && batch > xb_batch_bounds[i])
        i++;
    atomic_fetch_add_explicit(&s->commit_batch.bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->commit_batch.count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->commit_batch.sum_micro, batch * XB_MICRO_PER_BATCH_ITEM,
                              memory_order_relaxed);
}

void xb_metrics_tls_connection(xb_metrics_slot *s, int delta)
{
    if (s != NULL)
        atomic_fetch_add_explicit(&s->tls_connections, delta, memory_order_relaxed);
}

/* ---- rendering ---- */

typedef struct xb_text {
    char *buf;
    size_t len, cap;
    int failed;
} xb_text;

static void xb_text_add(xb_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void xb_text_add(xb_text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (int attempt = 0; attempt < 2; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *p = realloc(t->buf, cap);
        if (p == NULL) {
            t->failed = 1;
            return;
        }
        t->buf = p;
        t->cap = cap;
    }
}

static uint64_t xb_load(const atomic_uint_least64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* The sum over workers of one histogram, picked by `pick`. */
typedef const xb_histogram *(*xb_hist_pick)(const xb_metrics_slot *s, size_t arg);

static void xb_render_hist(xb_text *t, const xb_metrics *m, xb_hist_pick pick, size_t arg,
                           const char *name, const char *labels, const uint64_t *bounds,
                           double unit)
{
    uint64_t buckets[XB_HIST_BUCKETS] = {0}, count = 0, sum = 0;
    for (size_t w = 0; w < m->slots; w++) {
        const xb_histogram *h = pick(&m->slot[w], arg);
        for (size_t i = 0; i < XB_HIST_BUCKETS; i++)
            buckets[i] += xb_load(&h->bucket[i]);
        count += xb_load(&h->count);
        sum += xb_load(&h->sum_micro);
    }
    const char *sep = labels[0] ? "," : "";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < XB_HIST_BUCKETS; i++) {
        cumulative += buckets[i];
        if (i < XB_HIST_BUCKETS - 1)
            xb_text_add(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                        (double)bounds[i] / unit, (unsigned long long)cumulative);
        else
            xb_text_add(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                        (unsigned long long)cumulative);
    }
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    xb_text_add(t, "%s_sum%s%s%s %.6f\n", name, open, labels, close, (double)sum / 1e6);
    xb_text_add(t, "%s_count%s%s%s %llu\n", name, open, labels, close, (unsigned long long)count);
}

static const xb_histogram *xb_pick_request(const xb_metrics_slot *s, size_t route)
{
    return &s->request_seconds[route];
}

static const xb_histogram *xb_pick_commit(const xb_metrics_slot *s, size_t unused)
{
    (void)unused;
    return &s->commit_seconds;
}

static const xb_histogram *xb_pick_batch(const xb_metrics_slot *s, size_t unused)
{
    (void)unused;
    return &s->commit_batch;
}

static const char *const xb_protocol_names[XB_PROTO__COUNT] = {
    [XB_PROTO_XBOOT] = "xboot", [XB_PROTO_EST] = "est"};

const char *xb_protocol_name(xb_protocol p)
{
    return (unsigned)p < XB_PROTO__COUNT ? xb_protocol_names[p] : "unknown";
}
static const char *const xb_outcome_names[XB_OUTCOME__COUNT] = {
    [XB_OUTCOME_ISSUED] = "issued", [XB_OUTCOME_REPLAYED] = "replayed"};

static void xb_render_enrollment(xb_text *t, size_t proto, const char *outcome, uint64_t n)
{
    xb_text_add(t, "xboot_enrollments_total{protocol=\"%s\",outcome=\"%s\"} %llu\n",
                xb_protocol_names[proto], outcome, (unsigned long long)n);
}

static void xb_render_enrollments(xb_text *t, const xb_metrics *m)
{
    xb_text_add(t, "# HELP xboot_enrollments_total Enrollment requests by protocol and outcome "
                   "(issued, replayed, or the error code of the refusal).\n"
                   "# TYPE xboot_enrollments_total counter\n");
    for (size_t p = 0; p < XB_PROTO__COUNT; p++) {
        /* Answers with a certificate are always reported (a zero says "none yet"); refusals
         * once seen, since most codes never happen on a healthy service. */
        for (size_t o = 0; o < XB_OUTCOME__COUNT; o++) {
            uint64_t n = 0;
            for (size_t w = 0; w < m->slots; w++)
                n += xb_load(&m->slot[w].answered[p][o]);
            xb_render_enrollment(t, p, xb_outcome_names[o], n);
        }
        for (size_t e = XB_OK + 1; e < XB_ERR__COUNT; e++) {
            uint64_t n = 0;
            for (size_t w = 0; w < m->slots; w++)
                n += xb_load(&m->slot[w].refused[p][e]);
            if (n > 0)
                xb_render_enrollment(t, p, xb_err_code((xb_err)e), n);
        }
    }
}

char *xb_metrics_render(xb_metrics *m, const char *const *route_names, size_t routes,
                        const xb_metrics_health *health)
{
    xb_text t = {.cap = 8192};
    if (m == NULL || (t.buf = malloc(t.cap)) == NULL)
        return NULL;
    t.buf[0] = '\0';
    xb_render_enrollments(&t, m);

    xb_text_add(&t, "# HELP xboot_request_duration_seconds Time from request to answer, by "
                    "route.\n# TYPE xboot_request_duration_seconds histogram\n");
    for (size_t r = 0; r < routes && r < XB_METRICS_MAX_ROUTES; r++) {
        char labels[96];
        snprintf(labels, sizeof labels, "route=\"%s\"", route_names[r]);
        xb_render_hist(&t, m, xb_pick_request, r, "xboot_request_duration_seconds", labels,
                       xb_seconds_bounds, 1e6);
    }
    xb_text_add(&t, "# HELP xboot_registry_commit_duration_seconds Time of one group commit "
                    "(transaction and fsync).\n"
                    "# TYPE xboot_registry_commit_duration_seconds histogram\n");
    xb_render_hist(&t, m, xb_pick_commit, 0, "xboot_registry_commit_duration_seconds", "",
                   xb_seconds_bounds, 1e6);
    xb_text_add(&t, "# HELP xboot_registry_commit_batch_size Issuances recorded per group "
                    "commit.\n# TYPE xboot_registry_commit_batch_size histogram\n");
    xb_render_hist(&t, m, xb_pick_batch, 0, "xboot_registry_commit_batch_size", "", xb_batch_bounds,
                   1);

    xb_text_add(&t, "# HELP xboot_open_connections Client connections open now, by listener "
                    "(TLS connections only: plain HTTP sits behind a proxy).\n"
                    "# TYPE xboot_open_connections gauge\n");
    long long open = 0;
    for (size_t w = 0; w < m->slots; w++)
        open += atomic_load_explicit(&m->slot[w].tls_connections, memory_order_relaxed);
    xb_text_add(&t, "xboot_open_connections{listener=\"https\"} %lld\n", open);

    xb_text_add(&t,
                "# HELP xboot_ca_healthy 1 when the signing CA can issue now.\n"
                "# TYPE xboot_ca_healthy gauge\nxboot_ca_healthy %d\n",
                health->ca_ok ? 1 : 0);
    xb_text_add(&t,
                "# HELP xboot_registry_healthy 1 when the registry answers.\n"
                "# TYPE xboot_registry_healthy gauge\nxboot_registry_healthy %d\n",
                health->registry_ok ? 1 : 0);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    return t.buf;
}
