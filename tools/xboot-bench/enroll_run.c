#include "enroll_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clock.h"
#include "loop.h"

/* How often in-flight requests are checked against the per-request timeout. */
#define XBB_SWEEP_MS 100

typedef struct xbb_slot {
    struct xbb_run *run;
    xbb_conn *conn;
    size_t entry;
    double t_start;
    int busy;
} xbb_slot;

struct xbb_run {
    xbb_run_cfg cfg;
    xbb_slot *slots;
    xbb_phase *ph;
    size_t next, end, done;
    size_t opening; /* preconnect: opens in progress */
    int stopping;
    struct event *sweep;
};

static void xbb_slot_next(xbb_slot *s);

/* Count one finished request; ends the phase with the last one. */
static int xbb_run_count(xbb_run *r)
{
    r->done++;
    if (r->done < r->ph->n)
        return 0;
    r->ph->t_end = xbb_now();
    event_base_loopbreak(r->cfg.net->base);
    return 1;
}

static void xbb_judge_200(xbb_run *r, const xbb_slot *s, const xbb_http_resp *resp, double ms)
{
    const xbb_pool_entry *e = &r->cfg.pool->e[s->entry];
    xbb_answer a;
    const char *why = NULL;
    if (xbb_api_answer(r->cfg.api, resp->body, resp->body_len, &a) != 0) {
        xbb_stats_error(r->ph->st, "bad-answer", "a 200 without a certificate in the answer");
        return;
    }
    if (xbb_check_issued(a.cert, a.cert_len, e, &why) != 0) {
        xbb_stats_error(r->ph->st, "bad-answer", why);
    } else {
        xbb_stats_ok(r->ph->st, ms);
        if (r->ph->sm != NULL)
            xbb_sampler_offer(r->ph->sm, &a, e->id);
    }
    xbb_answer_clear(&a);
}

static void xbb_judge(xbb_run *r, const xbb_slot *s, xbb_fail fail, const xbb_http_resp *resp,
                      double ms)
{
    if (fail != XBB_FAIL_NONE) {
        xbb_stats_error(r->ph->st, xbb_fail_name(fail), xbb_conn_detail(s->conn));
    } else if (resp->status != 200) {
        char key[16];
        snprintf(key, sizeof key, "%d", resp->status);
        xbb_stats_error(r->ph->st, key, resp->body);
    } else {
        xbb_judge_200(r, s, resp, ms);
    }
}

static void xbb_slot_answered(xbb_conn *c, xbb_fail fail, const xbb_http_resp *resp, void *arg)
{
    xbb_slot *s = arg;
    xbb_run *r = s->run;
    if (!s->busy) { /* a preconnect open finished */
        if (r->opening > 0 && --r->opening == 0)
            event_base_loopbreak(r->cfg.net->base);
        return;
    }
    double ms = (xbb_now() - s->t_start) * 1e3;
    s->busy = 0;
    xbb_judge(r, s, fail, resp, ms);
    if (r->cfg.new_conn)
        xbb_conn_close(c);
    if (!xbb_run_count(r))
        xbb_slot_next(s);
}

/* Start the slot's next request. A request that cannot even start is counted at once and the
 * next entry tried; at most the phase's count of iterations. */
static void xbb_slot_next(xbb_slot *s)
{
    xbb_run *r = s->run;
    while (!r->stopping && r->next < r->end) {
        size_t e = r->next++;
        s->entry = e;
        s->busy = 1;
        s->t_start = xbb_now();
        xbb_fail f = xbb_conn_request(s->conn, r->cfg.req[e], r->cfg.req_len[e]);
        if (f == XBB_FAIL_NONE)
            return;
        s->busy = 0;
        xbb_stats_error(r->ph->st, xbb_fail_name(f), xbb_conn_detail(s->conn));
        if (xbb_run_count(r))
            return;
    }
}

static void xbb_run_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    xbb_run *r = arg;
    double now = xbb_now();
    for (int i = 0; i < r->cfg.concurrency && !r->stopping; i++) {
        xbb_slot *s = &r->slots[i];
        if (!s->busy || now - s->t_start < r->cfg.timeout_s)
            continue;
        s->busy = 0;
        xbb_conn_close(s->conn); /* no callback: this is the request's end */
        xbb_stats_error(r->ph->st, "timeout", "no full answer within --timeout");
        if (xbb_run_count(r))
            return;
        xbb_slot_next(s);
    }
}

xbb_run *xbb_run_new(const xbb_run_cfg *cfg)
{
    xbb_run *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->cfg = *cfg;
    r->slots = calloc((size_t)cfg->concurrency, sizeof *r->slots);
    r->sweep = event_new(cfg->net->base, -1, EV_PERSIST, xbb_run_sweep, r);
    if (r->slots == NULL || r->sweep == NULL) {
        xbb_run_free(r);
        return NULL;
    }
    for (int i = 0; i < cfg->concurrency; i++) {
        r->slots[i].run = r;
        if ((r->slots[i].conn = xbb_conn_new(cfg->net, xbb_slot_answered, &r->slots[i])) == NULL) {
            xbb_run_free(r);
            return NULL;
        }
    }
    return r;
}

size_t xbb_run_preconnect(xbb_run *r, double limit_s)
{
    r->opening = 0;
    for (int i = 0; i < r->cfg.concurrency; i++)
        if (xbb_conn_open(r->slots[i].conn) == XBB_FAIL_NONE)
            r->opening++;
    if (r->opening > 0)
        xbb_loop_run(r->cfg.net->base, limit_s);
    r->opening = 0;
    size_t open = 0;
    for (int i = 0; i < r->cfg.concurrency; i++) {
        xbb_conn *c = r->slots[i].conn;
        if (xbb_conn_is_busy(c)) /* still handshaking at the limit: the run reconnects */
            xbb_conn_close(c);
        open += xbb_conn_is_open(c);
    }
    return open;
}

int xbb_run_phase(xbb_run *r, xbb_phase *ph)
{
    r->ph = ph;
    r->next = ph->first;
    r->end = ph->first + ph->n;
    r->done = 0;
    r->stopping = 0;
    ph->t_end = 0;
    ph->time_limited = 0;
    ph->abandoned = 0;
    struct timeval sweep = {0, XBB_SWEEP_MS * 1000};
    event_add(r->sweep, &sweep);
    ph->t_start = xbb_now();
    for (int i = 0; i < r->cfg.concurrency && r->done < ph->n; i++)
        xbb_slot_next(&r->slots[i]);
    int rc = 0;
    if (r->done < ph->n) {
        rc = xbb_loop_run(r->cfg.net->base, ph->duration_s);
        ph->time_limited = rc == 1;
    }
    if (ph->t_end == 0)
        ph->t_end = xbb_now();
    r->stopping = 1;
    event_del(r->sweep);
    for (int i = 0; i < r->cfg.concurrency; i++)
        if (r->slots[i].busy) {
            r->slots[i].busy = 0;
            xbb_conn_close(r->slots[i].conn);
            ph->abandoned++;
        }
    ph->completed = r->done;
    return rc < 0 ? -1 : 0;
}

void xbb_run_free(xbb_run *r)
{
    if (r == NULL)
        return;
    for (int i = 0; r->slots != NULL && i < r->cfg.concurrency; i++)
        xbb_conn_free(r->slots[i].conn);
    free(r->slots);
    if (r->sweep != NULL)
        event_free(r->sweep);
    free(r);
}
