/* Counters for GET /metrics (Prometheus text format), shared by every worker process.
 *
 * The supervisor maps one shared anonymous region before forking; each worker writes only its
 * own slot (lock-free atomic adds, from its event loop and its commit thread) and a scrape,
 * answered by whichever worker the kernel hands the connection to, sums all slots. A worker
 * that is restarted keeps its slot, so counters never go backwards. */
#ifndef XB_METRICS_H
#define XB_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "xb_error.h"

/* Wire protocols that enroll devices (label protocol="..."). */
typedef enum xb_protocol { XB_PROTO_XBOOT, XB_PROTO_EST, XB_PROTO__COUNT } xb_protocol;
/* "xboot" or "est": metric labels and the validation webhook's "protocol". */
const char *xb_protocol_name(xb_protocol p);

/* How an enrollment answer carried a certificate: the outcome="..." label of
 * xboot_enrollments_total. Refusals are labelled with their xb_err code instead. */
typedef enum xb_enroll_outcome {
    XB_OUTCOME_ISSUED,   /* newly signed and recorded */
    XB_OUTCOME_REPLAYED, /* the device's current certificate again: a retry after a lost answer */
    XB_OUTCOME__COUNT
} xb_enroll_outcome;

/* Routes are counted by their index in the route table (http.c names them). */
#define XB_METRICS_MAX_ROUTES 8

#define XB_HIST_BUCKETS 12

/* A Prometheus histogram: cumulative buckets are computed at render time from these
 * per-bucket counts (the last one is +Inf). Values are kept in micro-units (us, or 1e-6 of a
 * batch) so that sums stay integers. */
typedef struct xb_histogram {
    atomic_uint_least64_t bucket[XB_HIST_BUCKETS];
    atomic_uint_least64_t count;
    atomic_uint_least64_t sum_micro;
} xb_histogram;

typedef struct xb_metrics_slot {
    atomic_uint_least64_t answered[XB_PROTO__COUNT][XB_OUTCOME__COUNT];
    atomic_uint_least64_t refused[XB_PROTO__COUNT][XB_ERR__COUNT]; /* by code; XB_OK unused */
    xb_histogram request_seconds[XB_METRICS_MAX_ROUTES];
    xb_histogram commit_seconds;
    xb_histogram commit_batch;
    atomic_int_least64_t tls_connections; /* open now */
} xb_metrics_slot;

typedef struct xb_metrics xb_metrics;

/* Map the shared region for `workers` slots; NULL when out of memory. */
xb_metrics *xb_metrics_create(int workers);
void xb_metrics_destroy(xb_metrics *m);
xb_metrics_slot *xb_metrics_slot_of(xb_metrics *m, int worker);

void xb_metrics_request(xb_metrics_slot *s, size_t route, double seconds);
/* One enrollment answered with a certificate, or refused with code (not XB_OK). */
void xb_metrics_enrollment(xb_metrics_slot *s, xb_protocol proto, xb_enroll_outcome outcome);
void xb_metrics_refusal(xb_metrics_slot *s, xb_protocol proto, xb_err code);
void xb_metrics_commit(xb_metrics_slot *s, double seconds, size_t batch);
void xb_metrics_tls_connection(xb_metrics_slot *s, int delta);

/* What a scrape reports beside the counters: health checked by the answering worker. */
typedef struct xb_metrics_health {
    int ca_ok;       /* the CA can issue now */
    int registry_ok; /* the registry answered a ping */
} xb_metrics_health;

/* Render every slot's sum in Prometheus text exposition format 0.0.4. route_names[i] labels
 * route index i. Returns a malloc'd string (NULL when out of memory). */
char *xb_metrics_render(xb_metrics *m, const char *const *route_names, size_t routes,
                        const xb_metrics_health *health);

#endif
