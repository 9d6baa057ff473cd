/* The HTTP front: libevent evhttp over TLS (bufferevent_openssl) or plain, the route table,
 * JSON replies, and the one log line per request. */
#ifndef XB_HTTP_H
#define XB_HTTP_H

#include <event2/event.h>
#include <event2/http.h>
#include <sys/time.h>

#include "server.h"
#include "xb_regid.h"

/* One request in flight: what the log line will say about it. */
typedef struct xb_exchange {
    struct evhttp_request *req;
    xb_server *srv;
    char request_id[17];
    char client_addr[64];
    char reg_id[XB_REGID_MAX + 1]; /* only a validated ID, else "-" */
    const char *outcome;           /* stable code: "issued", "ok", or an xb_err code */
    char serial[2 * 20 + 1];       /* of an issued certificate, for the log line */
    int status;
    struct timeval start;
} xb_exchange;

/* Attach an evhttp server on base, accepting on fd; TLS (srv->ssl_ctx) when tls is set. */
struct evhttp *xb_http_new(struct event_base *base, xb_server *srv, int tls, int fd,
                           struct evhttp_bound_socket **bound);

/* Replies. Each sends exactly once and logs the request line. */
void xb_http_reply_json(xb_exchange *ex, int status, const char *json);
void xb_http_reply_error(xb_exchange *ex, xb_err err, const char *message);

/* Routes. */
void xb_route_xboot_certificate(xb_exchange *ex);
void xb_route_healthz(xb_exchange *ex);

#endif
