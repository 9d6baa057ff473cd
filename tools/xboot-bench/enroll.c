#include "enroll.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "args.h"
#include "enroll_run.h"
#include "idle.h"
#include "pool.h"
#include "proc.h"
#include "registry.h"
#include "report.h"
#include "tls_client.h"
#include "verify.h"

/* Time allowed for opening the keep-alive and idle connections before the window. */
#define XBB_OPEN_LIMIT_S 30.0

typedef struct xbb_enroll {
    xbb_enroll_opts o;
    xbb_pool pool;
    char **req;
    size_t *req_len;
    SSL_CTX *ssl_ctx;
    struct event_base *base;
    xbb_net net;
    xbb_idle idle;
    xbb_run *run;
    xbb_stats st, warm;
    xbb_sampler sm;
    char err[512];
} xbb_enroll;

/* Many idle connections need many descriptors; ask for all the hard limit allows. */
static void xbb_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static double xbb_self_cpu(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static int xbb_register_pool(xbb_enroll *b)
{
    xb_device_spec *ids = calloc(b->pool.n, sizeof *ids);
    if (ids == NULL)
        return -1;
    for (size_t i = 0; i < b->pool.n; i++)
        ids[i].reg_id = b->pool.e[i].id;
    xb_registry *reg = NULL;
    xb_diag d = {{0}};
    size_t bad = 0;
    xb_err err = xb_registry_open(b->o.register_url, &reg, &d);
    if (err == XB_OK)
        err = xb_registry_device_add_many(reg, ids, b->pool.n, &bad, &d);
    xb_registry_close(reg);
    free(ids);
    if (err != XB_OK)
        snprintf(b->err, sizeof b->err, "cannot register the devices in %s: %s", b->o.register_url,
                 xb_diag_message(&d, err));
    return err == XB_OK ? 0 : -1;
}

static int xbb_build_requests(xbb_enroll *b)
{
    b->req = calloc(b->pool.n, sizeof *b->req);
    b->req_len = calloc(b->pool.n, sizeof *b->req_len);
    if (b->req == NULL || b->req_len == NULL)
        return -1;
    for (size_t i = 0; i < b->pool.n; i++)
        if ((b->req[i] = xbb_api_request(b->o.api, &b->pool.e[i], b->o.url.host_header,
                                         b->o.api_key, b->o.new_conn, &b->req_len[i])) == NULL)
            return -1;
    return 0;
}

/* Everything before the timed window: pool, registry, TLS, connections. */
static int xbb_prepare(xbb_enroll *b)
{
    const xbb_enroll_opts *o = &b->o;
    if (!o->json)
        fprintf(stderr, "xboot-bench: generating %zu %s keys and CSRs...\n", o->count + o->warmup,
                xbb_key_type_name(o->key_type));
    if (xbb_pool_generate(&b->pool, o->count + o->warmup, o->key_type, o->id_prefix,
                          o->api == XBB_API_CFSSL, b->err, sizeof b->err) != 0)
        return -1;
    if (o->register_url != NULL && xbb_register_pool(b) != 0)
        return -1;
    if (xbb_build_requests(b) != 0) {
        snprintf(b->err, sizeof b->err, "out of memory building the requests");
        return -1;
    }
    if (o->url.tls && (b->ssl_ctx = xbb_tls_client_ctx(o->trust, b->err, sizeof b->err)) == NULL)
        return -1;
    if ((b->base = event_base_new()) == NULL) {
        snprintf(b->err, sizeof b->err, "cannot create the event loop");
        return -1;
    }
    b->net.base = b->base;
    b->net.ssl_ctx = b->ssl_ctx;
    b->net.url = &o->url;
    xbb_run_cfg cfg = {&b->net, &b->pool,    b->req,         b->req_len,
                       o->api,  o->new_conn, o->concurrency, o->timeout_s};
    if (xbb_stats_init(&b->st, o->count) != 0 || xbb_stats_init(&b->warm, o->warmup) != 0 ||
        xbb_sampler_init(&b->sm, o->verify_sample) != 0 || (b->run = xbb_run_new(&cfg)) == NULL ||
        xbb_idle_open(&b->idle, &b->net, o->idle, XBB_OPEN_LIMIT_S) != 0) {
        snprintf(b->err, sizeof b->err, "out of memory");
        return -1;
    }
    return 0;
}

/* Warm-up, then the timed window with the server's usage read at both ends. */
static int xbb_measure(xbb_enroll *b, xbb_report *rep, xbb_phase *ph)
{
    const xbb_enroll_opts *o = &b->o;
    if (!o->new_conn)
        rep->preconnected = xbb_run_preconnect(b->run, XBB_OPEN_LIMIT_S);
    if (o->warmup > 0) {
        xbb_phase w = {0, o->warmup, o->duration_s, &b->warm, NULL, 0, 0, 0, 0, 0};
        if (xbb_run_phase(b->run, &w) != 0)
            return -1;
    }
    xbb_proc_usage u0 = {0}, u1 = {0};
    int have0 = o->cpu_pid > 0 && xbb_proc_tree_usage(o->cpu_pid, &u0) == 0;
    double c0 = xbb_self_cpu();
    if (xbb_run_phase(b->run, ph) != 0)
        return -1;
    rep->client_cpu_s = xbb_self_cpu() - c0;
    /* Before any connection is closed: the server's memory with everything still held. */
    if (have0 && xbb_proc_tree_usage(o->cpu_pid, &u1) == 0) {
        rep->have_cpu = 1;
        rep->server_cpu_s = u1.cpu_s - u0.cpu_s;
        rep->server_rss_kib = u1.rss_kib;
        rep->server_processes = u1.processes;
    }
    rep->idle_handshaken = b->idle.opened;
    rep->idle_open = xbb_idle_count_open(&b->idle);
    return 0;
}

static void xbb_enroll_free(xbb_enroll *b)
{
    xbb_run_free(b->run);
    xbb_idle_close(&b->idle);
    if (b->base != NULL)
        event_base_free(b->base);
    SSL_CTX_free(b->ssl_ctx);
    for (size_t i = 0; b->req != NULL && i < b->pool.n; i++)
        free(b->req[i]);
    free(b->req);
    free(b->req_len);
    xbb_stats_free(&b->st);
    xbb_stats_free(&b->warm);
    xbb_sampler_free(&b->sm);
    xbb_pool_free(&b->pool);
}

int xbb_enroll_main(int argc, char **argv)
{
    xbb_enroll *b = calloc(1, sizeof *b);
    if (b == NULL)
        return 1;
    int rc = xbb_args_enroll(argc, argv, &b->o);
    if (rc != XBB_ARGS_OK) {
        free(b);
        return rc == XBB_ARGS_HELP ? 0 : 2;
    }
    xbb_proc_usage probe;
    if (b->o.cpu_pid > 0 && xbb_proc_tree_usage(b->o.cpu_pid, &probe) != 0) {
        fprintf(stderr, "xboot-bench: --cpu-pid %d: no such process\n", (int)b->o.cpu_pid);
        free(b);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a server that closes early is an error to count, not a death */
    xbb_raise_nofile();
    xbb_report rep = {0};
    xbb_phase ph = {b->o.warmup, b->o.count, b->o.duration_s, &b->st, &b->sm, 0, 0, 0, 0, 0};
    rc = 1;
    if (xbb_prepare(b) != 0 || xbb_measure(b, &rep, &ph) != 0) {
        fprintf(stderr, "xboot-bench: %s\n", b->err[0] ? b->err : "the event loop failed");
        goto done;
    }
    /* The connections close before verification so that it runs on an idle server. */
    xbb_run_free(b->run);
    b->run = NULL;
    xbb_idle_close(&b->idle);
    if (b->o.verify_sample > 0) {
        if (xbb_verify_samples(&b->sm, b->o.trust, b->o.untrusted, &rep.vr, b->err,
                               sizeof b->err) != 0) {
            fprintf(stderr, "xboot-bench: %s\n", b->err);
            goto done;
        }
        rep.verify_ran = 1;
    }
    rep.o = &b->o;
    rep.st = &b->st;
    rep.warm = &b->warm;
    rep.ph = &ph;
    rep.pool_gen_s = b->pool.gen_s;
    xbb_report_print(&rep);
    if (b->st.errors > 0 && b->o.json) /* the human report has it already */
        fprintf(stderr, "xboot-bench: %zu errors; first: %s\n", b->st.errors, b->st.first_error);
    /* Requests cut off by --duration are neither ok nor errors: their outcome is unknown. */
    rc = b->st.errors == 0 && b->st.ok > 0 && rep.vr.failures == 0 ? 0 : 1;
done:
    xbb_enroll_free(b);
    free(b);
    return rc;
}
