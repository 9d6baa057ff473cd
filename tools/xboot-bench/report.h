/* The result of an enroll run: a human-readable report, or (--json) one JSON object on one
 * line whose field names bench/run.sh relies on (docs/xboot-bench.md). */
#ifndef XBB_REPORT_H
#define XBB_REPORT_H

#include <stddef.h>

#include "args.h"
#include "enroll_run.h"
#include "stats.h"
#include "verify.h"

typedef struct xbb_report {
    const xbb_enroll_opts *o;
    xbb_stats *st;   /* timed window */
    xbb_stats *warm; /* warm-up (human report only) */
    const xbb_phase *ph;
    size_t preconnected;
    int verify_ran;
    xbb_verify_result vr;
    int have_cpu; /* --cpu-pid was measured at both ends */
    double server_cpu_s;
    long server_rss_kib;
    int server_processes;
    size_t idle_handshaken, idle_open;
    double pool_gen_s;
    double client_cpu_s;
} xbb_report;

void xbb_report_print(xbb_report *r);

#endif
