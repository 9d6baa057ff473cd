/* An xbootd worker: one libevent loop serving the HTTPS and plain listeners it was given. */
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "committer.h"
#include "daemon.h"
#include "est_server.h"
#include "policy.h"
#include "ratelimit.h"
#include "webhook.h"
#include "http.h"
#include "xb_log.h"

typedef struct xb_worker {
    struct event_base *base;
    struct evhttp *https, *http;
    struct evhttp_bound_socket *https_bound, *http_bound;
    xb_committer *committer;
} xb_worker;

static void xb_worker_on_signal(evutil_socket_t sig, short events, void *arg)
{
    (void)sig, (void)events;
    xb_worker *w = arg;
    /* Stop accepting, let replies already queued reach their clients, then leave. */
    if (w->https_bound != NULL)
        evhttp_del_accept_socket(w->https, w->https_bound);
    if (w->http_bound != NULL)
        evhttp_del_accept_socket(w->http, w->http_bound);
    w->https_bound = w->http_bound = NULL;
    struct timeval grace = {0, 300 * 1000};
    event_base_loopexit(w->base, &grace);
}

/* One loop per worker. Each answer enables and disables write interest on its socket; with the
 * changelist, libevent folds those into one epoll_ctl per socket and loop iteration. */
static struct event_base *xb_worker_base_new(void)
{
    struct event_config *cfg = event_config_new();
    if (cfg == NULL)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

void xb_daemon_release(xb_daemon *dm)
{
    xb_est_free(dm->srv.est);
    dm->srv.est = NULL;
    xb_policy_free(dm->srv.policy);
    dm->srv.policy = NULL;
    xb_ratelimit_free(dm->srv.limits);
    dm->srv.limits = NULL;
    free(dm->srv.crl_der);
    dm->srv.crl_der = NULL;
    xb_ca_free(dm->srv.ca);
    SSL_CTX_free(dm->srv.ssl_ctx);
    xb_config_free(dm->cfg);
    xb_metrics_destroy(dm->srv.metrics);
    dm->srv.metrics = NULL;
    dm->srv.ca = NULL;
    dm->srv.ssl_ctx = NULL;
    dm->cfg = NULL;
}

int xb_worker_main(xb_daemon *dm, int index)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a killed supervisor */
    for (int i = 0; i < dm->workers; i++) {
        if (i == index)
            continue;
        if (dm->https_fds[i] >= 0)
            close(dm->https_fds[i]);
        if (dm->http_fds[i] >= 0)
            close(dm->http_fds[i]);
    }
    xb_diag d = {""};
    int rc = 1;
    xb_worker w = {0};
    struct event *sig_term = NULL, *sig_int = NULL;
    dm->srv.metrics_slot = xb_metrics_slot_of(dm->srv.metrics, index);
    if (dm->srv.metrics_slot != NULL) /* a restarted worker's connections died with it */
        atomic_store(&dm->srv.metrics_slot->tls_connections, 0);
    /* The key's holder may keep state a fork does not carry over (a PKCS#11 session). */
    xb_err err = xb_ca_after_fork(dm->srv.ca, &d);
    if (err != XB_OK) {
        xb_error("worker: CA key: %s", xb_diag_message(&d, err));
        goto done;
    }
    err = xb_registry_open(dm->cfg->registry_db, &dm->srv.reg, &d);
    if (err != XB_OK) {
        xb_error("worker: registry: %s", xb_diag_message(&d, err));
        goto done;
    }
    w.base = xb_worker_base_new();
    if (w.base == NULL)
        goto done;
    err = xb_committer_start(w.base, dm->cfg->registry_db, &dm->srv.rules, dm->srv.metrics_slot,
                             &w.committer, &d);
    if (err != XB_OK) {
        xb_error("worker: commit thread: %s", xb_diag_message(&d, err));
        goto done;
    }
    dm->srv.committer = w.committer;
    if (dm->cfg->webhook_url[0] != '\0') {
        xb_webhook_config wc = {.url = dm->cfg->webhook_url,
                                .ca_file = dm->cfg->webhook_ca,
                                .timeout_ms = dm->cfg->webhook_timeout_ms};
        err = xb_webhook_start(w.base, &wc, &dm->srv.webhook, &d);
        if (err != XB_OK) {
            xb_error("worker: validation webhook: %s", xb_diag_message(&d, err));
            goto done;
        }
    }
    if (dm->https_fds[index] >= 0) {
        w.https = xb_http_new(w.base, &dm->srv, 1, dm->https_fds[index], &w.https_bound);
        if (w.https == NULL)
            goto done;
    }
    if (dm->http_fds[index] >= 0) {
        w.http = xb_http_new(w.base, &dm->srv, 0, dm->http_fds[index], &w.http_bound);
        if (w.http == NULL)
            goto done;
    }
    sig_term = evsignal_new(w.base, SIGTERM, xb_worker_on_signal, &w);
    sig_int = evsignal_new(w.base, SIGINT, xb_worker_on_signal, &w);
    if (sig_term == NULL || sig_int == NULL || evsignal_add(sig_term, NULL) != 0 ||
        evsignal_add(sig_int, NULL) != 0)
        goto done;
    /* Signals were blocked since before fork; libevent's handlers are in place now. A hangup
     * sent to the process group is the supervisor's to ignore, not a reason to die. */
    signal(SIGHUP, SIG_IGN);
    sigprocmask(SIG_UNBLOCK, &dm->signals, NULL);
    if (getppid() != dm->supervisor) /* it died before PDEATHSIG was armed */
        goto done;
    rc = event_base_dispatch(w.base) < 0 ? 1 : 0;
done:
    if (rc != 0)
        xb_error("worker %d failed to start", index);
    if (sig_term != NULL)
        event_free(sig_term);
    if (sig_int != NULL)
        event_free(sig_int);
    /* Enrollments still waiting for the webhook were never recorded: drop them. Then commit
     * what was signed and allowed (durable, even if its answer can no longer be sent), before
     * the connections and their requests are freed. */
    xb_webhook_stop(dm->srv.webhook);
    dm->srv.webhook = NULL;
    xb_committer_stop(w.committer);
    dm->srv.committer = NULL;
    if (w.https != NULL)
        evhttp_free(w.https);
    if (w.http != NULL)
        evhttp_free(w.http);
    if (w.base != NULL)
        event_base_free(w.base);
    xb_registry_close(dm->srv.reg);
    xb_daemon_release(dm);
    return rc;
}
