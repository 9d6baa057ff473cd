/* The validation webhook: an operator's HTTPS service that allows or denies each enrollment
 * ([policy] webhook_url; docs/webhook.md).
 *
 * xbootd POSTs a small JSON description of the enrollment; a 2xx answer allows it, any other
 * answer denies it, and no answer at all (connection refused, TLS verification failure,
 * timeout, an oversized answer) denies it too: the policy fails closed. A query can take up to
 * the timeout (2 s by default) and the event loop must never wait for it, so each worker runs
 * one webhook thread with a libcurl multi handle: many queries in flight at once, each one's
 * result delivered back on the event loop thread (loop_inbox.h), as the committer does. */
#ifndef XB_WEBHOOK_H
#define XB_WEBHOOK_H

#include <stddef.h>

#include <event2/event.h>

#include "loop_inbox.h"
#include "xb_error.h"

#define XB_WEBHOOK_DEFAULT_TIMEOUT_MS 2000L
#define XB_WEBHOOK_MAX_TIMEOUT_MS 60000L
/* The most of an answer that is read: a verdict and a reason fit in far less; a larger answer
 * is not the webhook's, and fails closed. */
#define XB_WEBHOOK_MAX_ANSWER 16384
/* The most bytes of the webhook's own reason kept (it goes into an HTTP answer and a log). */
#define XB_WEBHOOK_REASON_MAX 200

/* What the webhook is told. Strings are UTF-8; NULL goes out as JSON null. The module copies
 * what it needs at submit: the query may be freed as soon as xb_webhook_submit returns. */
typedef struct xb_webhook_query {
    const char *registration_id;
    const char *subject;           /* the certificate's subject, e.g. "CN=dev-1" */
    const char *public_key_sha256; /* hex SHA-256 of the DER SubjectPublicKeyInfo */
    const char *key_type;          /* "ec-p256", "rsa-2048", ... */
    const char *client_address;    /* the device's IP address */
    const char *protocol;          /* "xboot" or "est" */
} xb_webhook_query;

/* Embed in the caller's state. done() runs on the loop thread once result is final:
 *   XB_OK                      the webhook answered 2xx: allowed; reason is empty;
 *   XB_ERR_FORBIDDEN           any other HTTP status: denied; reason is the webhook's own
 *                              (sanitized, at most XB_WEBHOOK_REASON_MAX bytes) or names the
 *                              status;
 *   XB_ERR_POLICY_UNAVAILABLE  no usable answer (unreachable, TLS, timeout, oversized answer,
 *                              out of memory): denied, retry later; reason says which without
 *                              naming hosts (it may go to the device; the log has the detail).
 * With delivered == 0 the worker is shutting down (xb_webhook_stop): release the job without
 * answering. done() is never called from within xb_webhook_submit. */
typedef struct xb_webhook_job {
    xb_err result;
    char reason[256];
    void (*done)(struct xb_webhook_job *job, int delivered);
    /* the module's */
    xb_job_link link;
    struct xb_webhook_xfer *xfer;
} xb_webhook_job;

typedef struct xb_webhook_config {
    const char *url;     /* https:// only; a query (e.g. a token) is sent but never logged */
    const char *ca_file; /* PEM trust anchor(s) for the webhook; NULL or "": the system store */
    long timeout_ms;     /* the whole exchange, connect included; 0: the default (2000) */
} xb_webhook_config;

typedef struct xb_webhook xb_webhook;

/* Check the configuration (XB_ERR_CONFIG: not https, bad URL, unreadable trust anchor, timeout
 * out of 1..XB_WEBHOOK_MAX_TIMEOUT_MS) and start the webhook thread; completions are
 * delivered by an event on base. cfg is copied. */
xb_err xb_webhook_start(struct event_base *base, const xb_webhook_config *cfg, xb_webhook **out,
                        xb_diag *d);

/* Ask the webhook about one enrollment (loop thread; never blocks on the network). The job's
 * done() is called later, exactly once. */
void xb_webhook_submit(xb_webhook *w, const xb_webhook_query *q, xb_webhook_job *job);

/* Stop the thread, abandon the queries in flight, and hand every job not yet delivered to
 * done() with delivered == 0. Call after the event loop has stopped. NULL is a no-op. */
void xb_webhook_stop(xb_webhook *w);

/* ---- parts, exposed for the unit tests ---- */

/* The request body for q (free with cJSON_free; NULL: out of memory). */
char *xb_webhook_request_json(const xb_webhook_query *q);

/* The reason of a refusal: the answer's JSON string field "reason" (or else "message"),
 * cleaned by xb_webhook_clean_text; else a generic reason naming the HTTP status. */
void xb_webhook_denial_reason(const char *answer, size_t len, long status, char *out, size_t cap);

/* Copy text into out (cap >= 4) as valid UTF-8 without control characters, fit for an HTTP
 * answer and a log line: tab, CR and LF become spaces, other control characters (C0, DEL, C1,
 * line separators, bidirectional overrides) and invalid UTF-8 become '?', surrounding spaces
 * are trimmed, and more than min(XB_WEBHOOK_REASON_MAX, cap - 1) bytes end in "...". Returns
 * the length written. */
size_t xb_webhook_clean_text(const char *text, char *out, size_t cap);

/* The URL as it may be logged: "scheme://host[:port]/path", without user, password, query or
 * fragment. XB_ERR_CONFIG when url is not an absolute https URL with a host. */
xb_err xb_webhook_url_shown(const char *url, char *out, size_t cap, xb_diag *d);

#endif
