/* Idle connections held open during a run: connected and (for https) handshaken, then silent,
 * as a fleet of slow or parked devices would leave them. Shows what they cost the server and
 * whether it closes them (its timeout_seconds). */
#ifndef XBB_IDLE_H
#define XBB_IDLE_H

#include <stddef.h>

#include "http_conn.h"

typedef struct xbb_idle {
    xbb_conn **c;
    size_t n;       /* connections asked for */
    size_t started; /* opens begun */
    size_t pending; /* opens in progress */
    size_t opened;  /* opens that completed the handshake */
    size_t failed;
    const xbb_net *net;
} xbb_idle;

/* Open n connections, a bounded number of handshakes at a time, giving up after timeout_s.
 * Runs the event loop until done. 0, or -1 if out of memory. */
int xbb_idle_open(xbb_idle *idle, const xbb_net *net, size_t n, double timeout_s);
/* How many are still open (processes pending events first). */
size_t xbb_idle_count_open(xbb_idle *idle);
void xbb_idle_close(xbb_idle *idle);

#endif
