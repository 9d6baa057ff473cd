/* The two clocks of the benchmark: monotonic wall time (latencies, rates) and the calling
 * thread's CPU time (the crypto floor, where only our own work may count). */
#ifndef XBB_CLOCK_H
#define XBB_CLOCK_H

#include <time.h>

static inline double xbb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double xbb_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
