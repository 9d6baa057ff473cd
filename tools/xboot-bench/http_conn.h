/* One client connection (plain TCP or TLS over a libevent bufferevent) that carries one
 * request at a time and reports each outcome through a callback: an HTTP answer, or the class
 * of transport failure. The TCP connect is done by hand so that a refused connection ("connect")
 * is told apart from a failed handshake ("tls"). */
#ifndef XBB_HTTP_CONN_H
#define XBB_HTTP_CONN_H

#include <stddef.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "http_resp.h"
#include "url.h"

typedef enum xbb_fail {
    XBB_FAIL_NONE = 0,
    XBB_FAIL_CONNECT,    /* TCP connect failed */
    XBB_FAIL_TLS,        /* handshake or TLS record failure */
    XBB_FAIL_TIMEOUT,    /* no full answer within the per-request timeout */
    XBB_FAIL_CLOSED,     /* the server closed the connection before the full answer */
    XBB_FAIL_BAD_ANSWER, /* unparseable HTTP, or a 200 that is not the right certificate */
} xbb_fail;

/* "connect", "tls", "timeout", "closed", "bad-answer". */
const char *xbb_fail_name(xbb_fail f);

/* What every connection of a run shares. */
typedef struct xbb_net {
    struct event_base *base;
    SSL_CTX *ssl_ctx; /* NULL for http:// */
    const xbb_url *url;
} xbb_net;

typedef struct xbb_conn xbb_conn;

/* fail is XBB_FAIL_NONE with resp set for an answer, or with resp NULL when a connect-only
 * open completed; otherwise the connection is already closed. The callback may start the next
 * request on the same connection. */
typedef void (*xbb_conn_cb)(xbb_conn *c, xbb_fail fail, const xbb_http_resp *resp, void *arg);

xbb_conn *xbb_conn_new(const xbb_net *net, xbb_conn_cb cb, void *arg);
void xbb_conn_free(xbb_conn *c);

/* Send a complete request (the bytes must stay valid until the answer), opening the
 * connection first if it is not open. XBB_FAIL_NONE (the callback follows), or the failure
 * class when the request could not even be started (then no callback follows). */
xbb_fail xbb_conn_request(xbb_conn *c, const void *req, size_t len);

/* Open (connect and handshake) without sending; the callback says when it is done. */
xbb_fail xbb_conn_open(xbb_conn *c);

/* For connections kept idle: let OpenSSL drop its buffers between records. */
void xbb_conn_set_lean(xbb_conn *c);

/* Close now; no callback. Sends close_notify first when a TLS connection is idle and sound. */
void xbb_conn_close(xbb_conn *c);
int xbb_conn_is_open(const xbb_conn *c);
int xbb_conn_is_busy(const xbb_conn *c);
/* Words on the last failure ("Connection refused", "server certificate: ..."), or NULL. */
const char *xbb_conn_detail(const xbb_conn *c);

#endif
