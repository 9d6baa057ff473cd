/* Outcome counters and the latency distribution of one phase of a run. Latencies are kept for
 * successful enrollments only; errors are counted by HTTP status ("403") or transport class
 * ("timeout"). */
#ifndef XBB_STATS_H
#define XBB_STATS_H

#include <stddef.h>

#define XBB_STATS_MAX_KINDS 48

typedef struct xbb_stats {
    double *lat_ms;
    size_t n_lat, cap;
    size_t ok;
    size_t errors;
    struct {
        char key[24];
        size_t count;
    } kind[XBB_STATS_MAX_KINDS];
    size_t n_kinds;
    char first_error[320]; /* what went wrong first, for the operator */
    int sorted;
} xbb_stats;

/* cap: the most latencies that will be recorded. 0, or -1 if out of memory. */
int xbb_stats_init(xbb_stats *st, size_t cap);
void xbb_stats_free(xbb_stats *st);

void xbb_stats_ok(xbb_stats *st, double ms);
/* key: "403", "timeout", ...; detail (may be NULL) is remembered for the first error. */
void xbb_stats_error(xbb_stats *st, const char *key, const char *detail);

/* Nearest-rank percentile (0 < p <= 100) of the successful latencies; -1 if there are none. */
double xbb_stats_percentile(xbb_stats *st, double p);

#endif
