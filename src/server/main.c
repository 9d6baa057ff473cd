/* xbootd: a supervisor process and one worker process per event loop.
 *
 * The supervisor loads and checks everything once (so a bad configuration fails at start, not
 * in a worker), binds the sockets, forks the workers, restarts one that dies, and stops them
 * all on SIGTERM/SIGINT. Workers each run one libevent loop and handle every request to the end;
 * processes rather than threads because OpenSSL 3.0 loses ~28% per core to lock contention
 * between threads (DESIGN.md section 7). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "http.h"
#include "listen.h"
#include "server.h"
#include "xb_log.h"

#define XB_MAX_WORKERS 256
#define XB_STOP_GRACE_SECONDS 10
#define XB_RESTARTS_PER_MINUTE 20

typedef struct xb_daemon {
    xb_config *cfg;
    xb_server srv;
    int workers;
    int https_fds[XB_MAX_WORKERS];
    int http_fds[XB_MAX_WORKERS];
    pid_t pids[XB_MAX_WORKERS];
    sigset_t signals; /* blocked in the supervisor, waited for with sigwaitinfo */
    pid_t supervisor; /* workers compare getppid() with it (the supervisor may be PID 1) */
} xb_daemon;

/* ---- worker ---- */

typedef struct xb_worker {
    struct event_base *base;
    struct evhttp *https, *http;
    struct evhttp_bound_socket *https_bound, *http_bound;
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

static void xb_daemon_release(xb_daemon *dm)
{
    xb_ca_free(dm->srv.ca);
    SSL_CTX_free(dm->srv.ssl_ctx);
    xb_config_free(dm->cfg);
    dm->srv.ca = NULL;
    dm->srv.ssl_ctx = NULL;
    dm->cfg = NULL;
}

static int xb_worker_main(xb_daemon *dm, int index)
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
    xb_err err = xb_registry_open(dm->cfg->registry_db, &dm->srv.reg, &d);
    if (err != XB_OK) {
        xb_error("worker: registry: %s", xb_diag_message(&d, err));
        goto done;
    }
    w.base = event_base_new();
    if (w.base == NULL)
        goto done;
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

/* ---- supervisor ---- */

static pid_t xb_spawn_worker(xb_daemon *dm, int index)
{
    pid_t pid = fork();
    if (pid == 0) {
        int rc = xb_worker_main(dm, index);
        fflush(NULL);
        _exit(rc);
    }
    if (pid < 0)
        xb_error("fork: %s", strerror(errno));
    return pid;
}

static void xb_stop_workers(xb_daemon *dm)
{
    for (int i = 0; i < dm->workers; i++)
        if (dm->pids[i] > 0)
            kill(dm->pids[i], SIGTERM);
    time_t deadline = time(NULL) + XB_STOP_GRACE_SECONDS;
    int alive = dm->workers;
    while (alive > 0) {
        alive = 0;
        for (int i = 0; i < dm->workers; i++) {
            if (dm->pids[i] > 0 && waitpid(dm->pids[i], NULL, WNOHANG) == dm->pids[i])
                dm->pids[i] = 0;
            if (dm->pids[i] > 0)
                alive++;
        }
        if (alive == 0)
            break;
        if (time(NULL) >= deadline) {
            for (int i = 0; i < dm->workers; i++)
                if (dm->pids[i] > 0) {
                    xb_warn("worker pid %ld did not stop in %d s; killing it", (long)dm->pids[i],
                            XB_STOP_GRACE_SECONDS);
                    kill(dm->pids[i], SIGKILL);
                    waitpid(dm->pids[i], NULL, 0);
                    dm->pids[i] = 0;
                }
            break;
        }
        struct timespec tick = {0, 50 * 1000 * 1000};
        sigtimedwait(&dm->signals, NULL, &tick);
    }
}

/* Reap dead workers and start replacements. Returns -1 when workers die too often to go on. */
static int xb_reap_and_restart(xb_daemon *dm, time_t *window_start, int *restarts)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < dm->workers; i++) {
            if (dm->pids[i] != pid)
                continue;
            if (WIFSIGNALED(status))
                xb_error("worker %d (pid %ld) killed by signal %d; restarting", i, (long)pid,
                         WTERMSIG(status));
            else
                xb_error("worker %d (pid %ld) exited with status %d; restarting", i, (long)pid,
                         WEXITSTATUS(status));
            time_t now = time(NULL);
            if (now - *window_start >= 60) {
                *window_start = now;
                *restarts = 0;
            }
            if (++*restarts > XB_RESTARTS_PER_MINUTE) {
                xb_error("workers die too often (%d restarts in a minute); stopping", *restarts);
                dm->pids[i] = 0;
                return -1;
            }
            dm->pids[i] = xb_spawn_worker(dm, i);
        }
    }
    return 0;
}

static int xb_supervise(xb_daemon *dm)
{
    for (int i = 0; i < dm->workers; i++) {
        dm->pids[i] = xb_spawn_worker(dm, i);
        if (dm->pids[i] < 0) {
            xb_stop_workers(dm);
            return 1;
        }
    }
    time_t window_start = time(NULL);
    int restarts = 0, rc = 0;
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&dm->signals, &info);
        if (sig == SIGCHLD) {
            if (xb_reap_and_restart(dm, &window_start, &restarts) != 0) {
                rc = 1;
                break;
            }
        } else if (sig == SIGTERM || sig == SIGINT) {
            xb_info("stopping on signal %d", sig);
            break;
        } else if (sig == SIGHUP) {
            xb_warn("SIGHUP ignored: reloading is not supported; restart xbootd to apply changes");
        }
    }
    xb_stop_workers(dm);
    xb_info("stopped");
    return rc;
}

/* ---- start-up ---- */

static void xb_usage(FILE *out)
{
    fprintf(out, "usage: xbootd [-c FILE] [--check]\n"
                 "  -c, --config FILE  configuration (INI); every key can also be set as\n"
                 "                     XBOOT_<SECTION>_<KEY> in the environment\n"
                 "      --check        load and check the configuration, CA and registry, then "
                 "exit\n"
                 "  -h, --help         this text\n"
                 "      --version      print the version\n"
                 "See docs/configuration.md for every key.\n");
}

/* Load and check everything a worker needs; --check stops after this. */
static xb_err xb_prepare(xb_daemon *dm, const char *config_path, xb_diag *d)
{
    xb_err err = xb_config_load(config_path, &dm->cfg, d);
    if (err != XB_OK)
        return err;
    xb_log_init("xbootd", (xb_log_level)xb_log_level_parse(dm->cfg->log_level));
    xb_ca_config cc = {
        .cert_path = dm->cfg->ca_cert,
        .key_path = dm->cfg->ca_key,
        .chain_path = dm->cfg->ca_chain[0] ? dm->cfg->ca_chain : NULL,
        .validity_days = dm->cfg->validity_days,
        .subject_attributes = dm->cfg->subject_attributes,
    };
    err = xb_ca_load(&cc, &dm->srv.ca, d);
    if (err == XB_OK)
        err = xb_ca_check_usable(dm->srv.ca, time(NULL), d);
    if (err != XB_OK)
        return err;
    struct stat st;
    if (stat(dm->cfg->ca_key, &st) == 0 && (st.st_mode & 077) != 0)
        xb_warn("CA key %s is readable by group or others (mode %03o); chmod 600 it",
                dm->cfg->ca_key, (unsigned)(st.st_mode & 0777));
    xb_registry *reg = NULL;
    err = xb_registry_open(dm->cfg->registry_db, &reg, d);
    if (err == XB_OK)
        err = xb_registry_ping(reg, d);
    xb_registry_close(reg);
    if (err != XB_OK)
        return err;
    if (dm->cfg->listen[0] != '\0') {
        err = xb_tls_ctx_new(dm->cfg->tls_cert, dm->cfg->tls_key, &dm->srv.ssl_ctx, d);
        if (err != XB_OK)
            return err;
    }
    dm->srv.cfg = dm->cfg;
    dm->srv.rules.open_mode = dm->cfg->open_mode;
    dm->srv.rules.allow_reenroll = dm->cfg->allow_reenroll;
    return XB_OK;
}

static xb_err xb_open_listeners(xb_daemon *dm, xb_diag *d)
{
    for (int i = 0; i < XB_MAX_WORKERS; i++)
        dm->https_fds[i] = dm->http_fds[i] = -1;
    char desc[300];
    if (dm->cfg->listen[0] != '\0') {
        xb_err err =
            xb_listen_open(dm->cfg->listen, dm->workers, dm->https_fds, desc, sizeof desc, d);
        if (err != XB_OK)
            return err;
        xb_info("listening on https://%s", desc);
    }
    if (dm->cfg->http_listen[0] != '\0') {
        xb_err err =
            xb_listen_open(dm->cfg->http_listen, dm->workers, dm->http_fds, desc, sizeof desc, d);
        if (err != XB_OK)
            return err;
        xb_info("listening on http://%s (plain HTTP: only behind a TLS-terminating proxy)", desc);
    }
    return XB_OK;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    const char *config_path = NULL;
    int check_only = 0, c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config_path = optarg;
            break;
        case 'k':
            check_only = 1;
            break;
        case 'h':
            xb_usage(stdout);
            return 0;
        case 'V':
            printf("xbootd %s\n", XBOOT_VERSION);
            return 0;
        default:
            xb_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        xb_usage(stderr);
        return 2;
    }
    xb_log_init("xbootd", XB_LOG_INFO);
    signal(SIGPIPE, SIG_IGN);

    static xb_daemon dm;
    xb_diag d = {""};
    xb_err err = xb_prepare(&dm, config_path, &d);
    if (err != XB_OK) {
        xb_error("%s: %s", xb_err_code(err), xb_diag_message(&d, err));
        xb_daemon_release(&dm);
        return 1;
    }
    if (check_only) {
        printf("xbootd: configuration OK (CA, registry%s)\n", dm.srv.ssl_ctx ? ", TLS" : "");
        xb_daemon_release(&dm);
        return 0;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    dm.workers = dm.cfg->threads > 0 ? dm.cfg->threads : (cores > 0 ? (int)cores : 1);
    if (dm.workers > XB_MAX_WORKERS)
        dm.workers = XB_MAX_WORKERS;

    sigemptyset(&dm.signals);
    sigaddset(&dm.signals, SIGTERM);
    sigaddset(&dm.signals, SIGINT);
    sigaddset(&dm.signals, SIGCHLD);
    sigaddset(&dm.signals, SIGHUP);
    sigprocmask(SIG_BLOCK, &dm.signals, NULL);
    dm.supervisor = getpid();

    err = xb_open_listeners(&dm, &d);
    if (err != XB_OK) {
        xb_error("%s: %s", xb_err_code(err), xb_diag_message(&d, err));
        xb_daemon_release(&dm);
        return 1;
    }
    if (dm.cfg->open_mode)
        xb_warn("[enroll] mode = open: ANY valid registration ID can get a certificate. "
                "Use only for development.");
    if (dm.cfg->listen[0] == '\0')
        xb_warn("HTTPS is off: serving plain HTTP only");
    xb_info("xbootd %s started: %d worker(s), registry %s, validity %d days%s", XBOOT_VERSION,
            dm.workers, strncmp(dm.cfg->registry_db, "sqlite:", 7) == 0 ? "sqlite" : "remote",
            dm.cfg->validity_days, dm.cfg->api_key[0] ? ", function key required" : "");
    int rc = xb_supervise(&dm);
    for (int i = 0; i < dm.workers; i++) {
        if (dm.https_fds[i] >= 0)
            close(dm.https_fds[i]);
        if (dm.http_fds[i] >= 0)
            close(dm.http_fds[i]);
    }
    xb_daemon_release(&dm);
    return rc;
}
