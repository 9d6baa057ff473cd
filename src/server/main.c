/* xbootd start-up: command line, configuration and CA checks, listening sockets; then the
 * supervisor takes over (daemon.h describes the process model). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "daemon.h"
#include "est_server.h"
#include "listen.h"
#include "policy.h"
#include "ratelimit.h"
#include "webhook.h"
#include "xb_log.h"

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
/* [policy] webhook_url and webhook_ca are checked here, before the workers fork, so that a
 * mistake stops xbootd (and --check) instead of every worker at its start. */
static xb_err xb_webhook_check_config(const xb_config *cfg, xb_diag *d)
{
    char shown[512];
    if (cfg->webhook_url[0] == '\0')
        return XB_OK;
    xb_err err = xb_webhook_url_shown(cfg->webhook_url, shown, sizeof shown, d);
    if (err != XB_OK)
        return xb_fail(d, XB_ERR_CONFIG, "[policy] webhook_url: %s", xb_diag_message(d, err));
    if (cfg->webhook_ca[0] != '\0') {
        FILE *f = fopen(cfg->webhook_ca, "r");
        X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
        int opened = f != NULL;
        if (f != NULL)
            fclose(f);
        X509_free(x);
        ERR_clear_error();
        if (x == NULL)
            return xb_fail(d, XB_ERR_CONFIG, "[policy] webhook_ca: %s %s", cfg->webhook_ca,
                           opened ? "holds no PEM certificate" : "cannot be read");
    }
    xb_info("validation webhook: %s (fails closed)", shown);
    return XB_OK;
}

/* [rate_limit] into the shared bucket table, mapped here so every worker shares it. */
static xb_err xb_limits_new(const xb_config *cfg, xb_ratelimit **out, xb_diag *d)
{
    xb_rate ip = {cfg->rl_ip_per_minute / 60.0, cfg->rl_ip_burst};
    xb_rate id = {cfg->rl_id_per_minute / 60.0, cfg->rl_id_burst};
    return xb_ratelimit_new(&ip, &id, 0, out, d);
}

static xb_err xb_prepare(xb_daemon *dm, const char *config_path, xb_diag *d)
{
    xb_err err = xb_config_load(config_path, &dm->cfg, d);
    if (err != XB_OK)
        return err;
    xb_log_init("xbootd", (xb_log_level)xb_log_level_parse(dm->cfg->log_level));
    err = xb_server_ca_load(dm->cfg, &dm->srv.ca, d);
    if (err != XB_OK)
        return err;
    dm->srv.ca_loaded_at = time(NULL);
    struct stat st; /* a key file's mode (env:, https:// and pkcs11: keys have none) */
    if (strstr(dm->cfg->ca_key, ":") == NULL && stat(dm->cfg->ca_key, &st) == 0 &&
        (st.st_mode & 077) != 0)
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
    if (dm->cfg->est_enabled) {
        err = xb_est_new(dm->srv.ca, dm->cfg, &dm->srv.est, d);
        if (err != XB_OK)
            return err;
    }
    err = xb_policy_load(dm->cfg, dm->srv.ca, &dm->srv.policy, d);
    if (err == XB_OK)
        err = xb_limits_new(dm->cfg, &dm->srv.limits, d);
    if (err == XB_OK)
        err = xb_webhook_check_config(dm->cfg, d);
    if (err != XB_OK)
        return err;
    /* Devices may authenticate with a client certificate: ours (EST renewal) or a
     * manufacturer's. Requested on every handshake, required by none. */
    if (dm->srv.ssl_ctx != NULL && (dm->cfg->est_enabled || dm->srv.policy->manufacturer != NULL))
        err = xb_policy_tls_setup(dm->srv.policy, dm->srv.ssl_ctx, dm->srv.ca, d);
    if (err != XB_OK)
        return err;
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

/* Each idle device connection holds a descriptor; the usual soft limit of 1024 would refuse
 * connections long before memory runs short. Take what the hard limit allows. */
static void xb_raise_fd_limit(void)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
            xb_warn("cannot raise the open-files limit: %s", strerror(errno));
    }
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
    xb_raise_fd_limit();

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
    sigaddset(&dm.signals, SIGUSR1); /* the supervisor's "reload" to a worker (supervisor.c) */
    sigprocmask(SIG_BLOCK, &dm.signals, NULL);
    dm.supervisor = getpid();

    dm.srv.metrics = xb_metrics_create(dm.workers);
    if (dm.srv.metrics == NULL) {
        xb_error("cannot map the shared metrics region");
        xb_daemon_release(&dm);
        return 1;
    }
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
    char registry_shown[256]; /* without a password or query */
    xb_registry_url_shown(dm.cfg->registry_db, registry_shown, sizeof registry_shown);
    xb_info("xbootd %s started: %d worker(s), registry %s, validity %d days%s", XBOOT_VERSION,
            dm.workers, registry_shown, dm.cfg->validity_days,
            dm.cfg->api_key[0] ? ", function key required" : "");
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
