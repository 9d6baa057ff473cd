#include "idle.h"

#include <stdlib.h>
#include <string.h>

#include "loop.h"

/* Handshakes in flight at once: enough to be quick, few enough not to overflow the server's
 * accept backlog. */
#define XBB_IDLE_PARALLEL 64

static void xbb_idle_next(xbb_idle *idle);

static void xbb_idle_done(xbb_conn *c, xbb_fail fail, const xbb_http_resp *resp, void *arg)
{
    (void)c;
    (void)resp;
    xbb_idle *idle = arg;
    idle->pending--;
    if (fail == XBB_FAIL_NONE)
        idle->opened++;
    else
        idle->failed++;
    xbb_idle_next(idle);
    if (idle->pending == 0 && idle->started == idle->n)
        event_base_loopbreak(idle->net->base);
}

static void xbb_idle_next(xbb_idle *idle)
{
    while (idle->pending < XBB_IDLE_PARALLEL && idle->started < idle->n) {
        xbb_conn *c = idle->c[idle->started++];
        if (xbb_conn_open(c) == XBB_FAIL_NONE)
            idle->pending++;
        else
            idle->failed++;
    }
}

int xbb_idle_open(xbb_idle *idle, const xbb_net *net, size_t n, double timeout_s)
{
    memset(idle, 0, sizeof *idle);
    idle->net = net;
    if (n == 0)
        return 0;
    idle->c = calloc(n, sizeof *idle->c);
    if (idle->c == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if ((idle->c[i] = xbb_conn_new(net, xbb_idle_done, idle)) == NULL)
            return -1;
        xbb_conn_set_lean(idle->c[i]);
        idle->n = i + 1;
    }
    xbb_idle_next(idle);
    if (idle->pending > 0)
        xbb_loop_run(net->base, timeout_s);
    /* Those still handshaking at the time limit are given up. */
    for (size_t i = 0; i < idle->n; i++)
        if (xbb_conn_is_busy(idle->c[i])) {
            xbb_conn_close(idle->c[i]);
            idle->failed++;
        }
    idle->pending = 0;
    return 0;
}

size_t xbb_idle_count_open(xbb_idle *idle)
{
    if (idle->n == 0)
        return 0;
    event_base_loop(idle->net->base, EVLOOP_NONBLOCK); /* take in closes already signalled */
    size_t open = 0;
    for (size_t i = 0; i < idle->n; i++)
        open += xbb_conn_is_open(idle->c[i]) && !xbb_conn_is_busy(idle->c[i]);
    return open;
}

void xbb_idle_close(xbb_idle *idle)
{
    for (size_t i = 0; i < idle->n; i++)
        xbb_conn_free(idle->c[i]);
    free(idle->c);
    memset(idle, 0, sizeof *idle);
}
