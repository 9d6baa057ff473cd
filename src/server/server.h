/* What one xbootd worker holds: configuration, the loaded CA, its own registry handle. */
#ifndef XB_SERVER_H
#define XB_SERVER_H

#include <openssl/ssl.h>

#include "ca.h"
#include "config.h"
#include "metrics.h"
#include "registry.h"

struct xb_committer;
struct xb_est;
struct xb_policy;
struct xb_ratelimit;
struct xb_webhook;

typedef struct xb_server {
    const xb_config *cfg;
    xb_ca *ca; /* loaded before the workers fork; replaced by a reload (reload.c) */
    /* The CA the last reload replaced: enrollments it signed may still be waiting for their
     * commit, and their answers carry its chain (xb_server_ca_of). NULL until a reload. */
    xb_ca *ca_prev;
    time_t ca_loaded_at; /* when ca was loaded: a CRL older than that may be replaced */
    SSL_CTX *ssl_ctx;    /* NULL when HTTPS is off */
    xb_registry *reg;    /* opened in each worker after fork: reads (policy checks, health) */
    struct xb_committer *committer; /* the worker's group commit; NULL: commit inline */
    struct xb_webhook *webhook;     /* the worker's [policy] webhook_url client; NULL: none */
    xb_enroll_rules rules;
    xb_metrics *metrics;           /* shared by all workers, mapped before fork */
    xb_metrics_slot *metrics_slot; /* this worker's */
    struct xb_est *est;            /* EST answers built at load (est_server.h); NULL: EST off */
    struct xb_policy *policy;      /* who may enroll (policy.h), loaded before fork */
    struct xb_ratelimit *limits;   /* token buckets shared by the workers (ratelimit.h) */
    /* The CRL this worker serves, as last read from the registry (route_crl.c): reloaded only
     * when the stored CRL number changes, so requests copy bytes and sign nothing. */
    uint8_t *crl_der;
    size_t crl_len;
    long long crl_number;
    time_t crl_next_update;
} xb_server;

/* Bodies above this are refused (413) by the application; the transport caps at
 * XB_HTTP_TRANSPORT_MAX_BODY so an oversized upload is never buffered whole. */
#define XB_MAX_BODY (64 * 1024)
#define XB_HTTP_TRANSPORT_MAX_BODY (1024 * 1024)

/* One enrollment, whichever wire format brought it (xboot JSON, EST). */
typedef struct xb_enroll_request {
    const char *reg_id; /* already checked with xb_regid_valid */
    const uint8_t *csr_der;
    size_t csr_len;
    /* The request already checked by xb_csr_parse (borrowed), when the adapter had to read it
     * first (EST takes the registration ID from it): then csr_der is not parsed again. */
    const struct xb_csr *csr;
    const char *client_addr;
    /* The credentials presented, for the policy (policy.h): */
    const char *authorization; /* the Authorization header, or NULL */
    const char *api_key;       /* the JSON API's function key, or NULL */
    X509 *peer;                /* the TLS client certificate, or NULL */
    /* EST: a certificate we issued authenticates a renewal, which may get a new certificate
     * even when allow_reenroll is off (the one-certificate rule is about bootstrap). */
    int renewal_route;
    /* EST simplereenroll: only a renewal, and the CSR keeps the certificate's subject. */
    int reenroll_only;
} xb_enroll_request;

/* Load the CA that cfg's [ca] cert, key and chain name, with its crl_url, and check that it
 * can issue now: what xbootd checks at start and every reload. */
xb_err xb_server_ca_load(const xb_config *cfg, xb_ca **out, xb_diag *d);

/* Reload the CA files named at start, and replace what depends on them (the EST answers, the
 * policy's view of our signing CA, the cached CRL). Between requests only: a request signs
 * within one callback, so each signature is made wholly with one CA. On failure nothing
 * changes. who names the process in the log line ("worker 2"). */
xb_err xb_server_reload_ca(xb_server *srv, const char *who, xb_diag *d);

/* The CA whose chain goes out with cert: the current one, or the one a reload replaced when
 * cert was signed by that one before the reload and answered after it. */
const xb_ca *xb_server_ca_of(const xb_server *srv, const xb_issued *cert);

/* TLS server context from PEM files: TLS 1.2 and 1.3 only. */
xb_err xb_tls_ctx_new(const char *cert_path, const char *key_path, SSL_CTX **out, xb_diag *d);

#endif
