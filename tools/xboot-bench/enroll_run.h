/* The load loop: `concurrency` slots on one libevent loop, each taking the next unused pool
 * entry as soon as its previous request is answered, until the phase's count is done or its
 * time limit passes. Each answer is judged (status, shape, certificate matches the CSR) and
 * counted; the latency runs from starting the request (including connect and handshake in
 * --new-connection mode) to the last byte of the answer. */
#ifndef XBB_ENROLL_RUN_H
#define XBB_ENROLL_RUN_H

#include <stddef.h>

#include "api.h"
#include "http_conn.h"
#include "pool.h"
#include "sample.h"
#include "stats.h"

typedef struct xbb_run_cfg {
    const xbb_net *net;
    const xbb_pool *pool;
    char *const *req; /* the whole HTTP request of each pool entry */
    const size_t *req_len;
    xbb_api api;
    int new_conn;
    int concurrency;
    double timeout_s; /* per request */
} xbb_run_cfg;

/* One phase (warm-up or timed): pool entries [first, first + n). */
typedef struct xbb_phase {
    size_t first, n;
    double duration_s;
    xbb_stats *st;
    xbb_sampler *sm; /* NULL: sample nothing */
    /* results */
    double t_start, t_end;
    size_t completed; /* answered, failed or timed out */
    size_t abandoned; /* still in flight when the time limit ended the phase */
    int time_limited;
} xbb_phase;

typedef struct xbb_run xbb_run;

xbb_run *xbb_run_new(const xbb_run_cfg *cfg);
/* Open the keep-alive connections (reuse mode) before any timing; bounded by limit_s. Returns
 * how many are open. */
size_t xbb_run_preconnect(xbb_run *r, double limit_s);
/* Run one phase to its end. 0, or -1 on an event-loop failure. */
int xbb_run_phase(xbb_run *r, xbb_phase *ph);
void xbb_run_free(xbb_run *r);

#endif
