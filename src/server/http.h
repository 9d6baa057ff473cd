/* The HTTP front: libevent evhttp over TLS (bufferevent_openssl) or plain, the route table,
 * JSON replies, and the one log line per request. */
#ifndef XB_HTTP_H
#define XB_HTTP_H

#include <event2/event.h>
#include <event2/http.h>
#include <sys/time.h>

#include "metrics.h"
#include "server.h"
#include "xb_regid.h"

/* One request in flight: what the log line will say about it. */
typedef struct xb_exchange {
    struct evhttp_request *req;
    xb_server *srv;
    char request_id[17];
    char client_addr[64];
    char reg_id[XB_REGID_MAX + 1]; /* only a validated ID, else "-" */
    const char *outcome;           /* stable code: "issued", "replayed", "ok", or an xb_err code */
    char serial[2 * 20 + 1];       /* of an issued certificate, for the log line */
    int status;
    struct timeval start;
    size_t route;   /* index in the route table, for the latency histogram */
    int enrollment; /* set by enrollment routes: the answer counts as one */
    xb_protocol protocol;
    xb_err result;          /* what the answer says: XB_OK or the error sent */
    int replayed;           /* the certificate sent is the device's current one again (enroll.c) */
    const char *credential; /* what authenticated the enrollment (policy.h), for the log line */
    int retry_after;        /* > 0: the answer carries Retry-After with these seconds */
    int id_token;           /* a token was taken from reg_id's bucket (xb_http_take_token) */
} xb_exchange;

/* Rate limits (ratelimit.h) for an enrollment: a token from the client address's bucket
 * (reg_id NULL, on arrival) or from reg_id's (once the ID is known). XB_ERR_RATE_LIMITED with
 * ex->retry_after set when there is none: the answer is 429 with Retry-After. A failed
 * authentication is charged again when its answer goes out (it counts double). */
xb_err xb_http_take_token(xb_exchange *ex, const char *reg_id, xb_diag *d);

/* Attach an evhttp server on base, accepting on fd; TLS (srv->ssl_ctx) when tls is set. */
struct evhttp *xb_http_new(struct event_base *base, xb_server *srv, int tls, int fd,
                           struct evhttp_bound_socket **bound);

/* The connection's TLS object and the client certificate; NULL on the plain HTTP listener
 * (and the certificate NULL when the client sent none). */
SSL *xb_http_ssl(const xb_exchange *ex);
X509 *xb_http_peer_cert(const xb_exchange *ex);

/* Replies. Each sends exactly once, logs the request line and counts it in the metrics. */
void xb_http_reply_json(xb_exchange *ex, int status, const char *json);
void xb_http_reply_error(xb_exchange *ex, xb_err err, const char *message);
void xb_http_reply_text(xb_exchange *ex, int status, const char *content_type, const char *text);
/* Any body (binary allowed) with the given Cache-Control. */
void xb_http_reply_bytes(xb_exchange *ex, int status, const char *content_type,
                         const char *cache_control, const void *data, size_t len);

/* The route table, for metric labels. */
size_t xb_http_route_count(void);
const char *xb_http_route_path(size_t i);

/* How a route answers an enrollment: called exactly once, on the loop thread, either with the
 * certificate (err == XB_OK: its record is committed; ex->replayed is set when it is the
 * device's current certificate sent again rather than a new one) or with the refusal and its
 * message. */
typedef void (*xb_enroll_reply_fn)(xb_exchange *ex, xb_err err, const xb_issued *cert,
                                   const char *message);

/* The whole enrollment: authorize, check, sign, then hand the record to the worker's group
 * commit and answer through reply() once it is durable; or, for a device retrying with the key
 * of its current certificate, answer that certificate at once. ex is copied; the caller's may
 * go. */
void xb_enroll_start(const xb_exchange *ex, const xb_enroll_request *req, xb_enroll_reply_fn reply);

/* Routes. */
void xb_route_xboot_certificate(xb_exchange *ex);
void xb_route_healthz(xb_exchange *ex);
void xb_route_metrics(xb_exchange *ex);
void xb_route_crl(xb_exchange *ex); /* route_crl.c */
void xb_route_est(xb_exchange *ex); /* /.well-known/est/... (route_est.c) */

#endif
