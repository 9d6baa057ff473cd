#include "http_conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "tls_client.h"

struct xbb_conn {
    const xbb_net *net;
    xbb_conn_cb cb;
    void *arg;
    int fd;                   /* during the TCP connect only; then owned by bev */
    struct event *connect_ev; /* writability of fd: the connect finished */
    struct bufferevent *bev;
    int ready;       /* connected (and the TLS handshake done) */
    int busy;        /* an answer or an open is awaited */
    int want_answer; /* busy with a request, not a connect-only open */
    int lean;
    const void *pending; /* the request to write once the connection exists */
    size_t pending_len;
    xbb_http_resp resp;
    char detail[200]; /* why the last failure happened */
};

const char *xbb_fail_name(xbb_fail f)
{
    static const char *const names[] = {"none",    "connect", "tls",
                                        "timeout", "closed",  "bad-answer"};
    return f <= XBB_FAIL_BAD_ANSWER ? names[f] : "unknown";
}

xbb_conn *xbb_conn_new(const xbb_net *net, xbb_conn_cb cb, void *arg)
{
    xbb_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->net = net;
    c->cb = cb;
    c->arg = arg;
    c->fd = -1;
    xbb_http_resp_reset(&c->resp);
    return c;
}

void xbb_conn_free(xbb_conn *c)
{
    if (c == NULL)
        return;
    xbb_conn_close(c);
    xbb_http_resp_free(&c->resp);
    free(c);
}

void xbb_conn_set_lean(xbb_conn *c)
{
    c->lean = 1;
}

int xbb_conn_is_open(const xbb_conn *c)
{
    return c->bev != NULL || c->fd >= 0;
}

int xbb_conn_is_busy(const xbb_conn *c)
{
    return c->busy;
}

const char *xbb_conn_detail(const xbb_conn *c)
{
    return c->detail[0] ? c->detail : NULL;
}

/* The most useful words for a TLS failure: a certificate verification result if that was it,
 * else OpenSSL's first queued error. */
static void xbb_conn_tls_detail(xbb_conn *c, unsigned long first_err)
{
    SSL *ssl = c->bev ? bufferevent_openssl_get_ssl(c->bev) : NULL;
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (vr != X509_V_OK)
        snprintf(c->detail, sizeof c->detail, "server certificate: %s",
                 X509_verify_cert_error_string(vr));
    else if (first_err != 0)
        ERR_error_string_n(first_err, c->detail, sizeof c->detail);
    else
        snprintf(c->detail, sizeof c->detail, "the connection ended during the handshake");
}

void xbb_conn_close(xbb_conn *c)
{
    if (c->connect_ev != NULL) {
        event_free(c->connect_ev);
        c->connect_ev = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->bev != NULL) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        /* A polite close after a complete exchange, as a well-behaved device does. One
         * non-blocking attempt: the socket buffer is empty, so it goes out or is dropped. */
        if (ssl != NULL && c->ready && !c->busy)
            SSL_shutdown(ssl);
        bufferevent_free(c->bev);
        c->bev = NULL;
        ERR_clear_error();
    }
    c->ready = 0;
    c->busy = 0;
    c->pending = NULL;
}

static void xbb_conn_fail(xbb_conn *c, xbb_fail f)
{
    int was_busy = c->busy;
    c->busy = 0; /* no close_notify on a broken connection */
    xbb_conn_close(c);
    if (was_busy)
        c->cb(c, f, NULL, c->arg);
}

static void xbb_conn_answered(xbb_conn *c)
{
    c->busy = 0;
    if (c->resp.close)
        xbb_conn_close(c);
    c->cb(c, XBB_FAIL_NONE, &c->resp, c->arg);
}

static void xbb_conn_on_read(struct bufferevent *bev, void *arg)
{
    xbb_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (!c->want_answer || !c->busy) { /* nothing was asked: unexpected bytes */
        evbuffer_drain(in, evbuffer_get_length(in));
        if (c->ready && !c->busy)
            xbb_conn_close(c);
        return;
    }
    int rc = xbb_http_resp_feed(&c->resp, in);
    if (rc == XBB_HTTP_BAD) {
        snprintf(c->detail, sizeof c->detail, "malformed or oversized HTTP answer");
        xbb_conn_fail(c, XBB_FAIL_BAD_ANSWER);
    } else if (rc == XBB_HTTP_DONE)
        xbb_conn_answered(c);
}

static int xbb_is_connect_errno(int e)
{
    return e == ECONNREFUSED || e == ETIMEDOUT || e == ENETUNREACH || e == EHOSTUNREACH ||
           e == EADDRNOTAVAIL;
}

static void xbb_conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    xbb_conn *c = arg;
    int saved_errno = errno;
    if (what & BEV_EVENT_CONNECTED) {
        c->ready = 1;
        if (c->busy && !c->want_answer) {
            c->busy = 0;
            c->cb(c, XBB_FAIL_NONE, NULL, c->arg);
        }
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    unsigned long e, first_err = 0;
    while ((e = bufferevent_get_openssl_error(bev)) != 0)
        if (first_err == 0)
            first_err = e;
    int tls_error = first_err != 0;
    if (c->busy && c->want_answer && c->ready && !tls_error &&
        xbb_http_resp_feed(&c->resp, bufferevent_get_input(bev)) != XBB_HTTP_BAD &&
        xbb_http_resp_eof(&c->resp) == XBB_HTTP_DONE) {
        c->resp.close = 1; /* a body delimited by the close */
        xbb_conn_answered(c);
        return;
    }
    xbb_fail f = XBB_FAIL_CLOSED;
    if (tls_error)
        f = XBB_FAIL_TLS;
    else if (!c->ready)
        f = c->net->ssl_ctx != NULL && !xbb_is_connect_errno(saved_errno) ? XBB_FAIL_TLS
                                                                          : XBB_FAIL_CONNECT;
    if (f == XBB_FAIL_TLS)
        xbb_conn_tls_detail(c, first_err);
    else if (what & BEV_EVENT_EOF)
        snprintf(c->detail, sizeof c->detail, "the server closed the connection%s",
                 c->want_answer ? " before the full answer" : "");
    else
        snprintf(c->detail, sizeof c->detail, "%s", strerror(saved_errno));
    ERR_clear_error();
    xbb_conn_fail(c, f);
}

/* The TCP connect finished (or failed): wrap the socket in a bufferevent. */
static void xbb_conn_on_connect(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    xbb_conn *c = arg;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    event_free(c->connect_ev);
    c->connect_ev = NULL;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        snprintf(c->detail, sizeof c->detail, "%s", strerror(soerr ? soerr : errno));
        xbb_conn_fail(c, XBB_FAIL_CONNECT);
        return;
    }
    struct event_base *base = c->net->base;
    if (c->net->ssl_ctx != NULL) {
        SSL *ssl = xbb_tls_client_ssl(c->net->ssl_ctx, c->net->url);
        if (ssl != NULL && c->lean)
            SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
        c->bev = ssl ? bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        if (c->bev == NULL)
            SSL_free(ssl);
        else /* many servers (and devices) skip close_notify: EOF is EOF, not an attack */
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL) {
        snprintf(c->detail, sizeof c->detail, "cannot set up the connection");
        xbb_conn_fail(c, XBB_FAIL_CONNECT);
        return;
    }
    c->fd = -1; /* the bufferevent owns it now */
    bufferevent_setcb(c->bev, xbb_conn_on_read, NULL, xbb_conn_on_event, c);
    if (c->pending != NULL) /* TLS: held back by the bufferevent until the handshake is done */
        evbuffer_add_reference(bufferevent_get_output(c->bev), c->pending, c->pending_len, NULL,
                               NULL);
    c->pending = NULL;
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (c->net->ssl_ctx == NULL) /* plain TCP: connected now */
        xbb_conn_on_event(c->bev, BEV_EVENT_CONNECTED, c);
}

static xbb_fail xbb_conn_start(xbb_conn *c)
{
    const xbb_url *u = c->net->url;
    int fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(c->detail, sizeof c->detail, "socket: %s", strerror(errno));
        return XBB_FAIL_CONNECT;
    }
    int one = 1; /* one write per request: no reason to wait for an ACK */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&u->addr, u->addr_len) != 0 && errno != EINPROGRESS) {
        snprintf(c->detail, sizeof c->detail, "connect: %s", strerror(errno));
        close(fd);
        return XBB_FAIL_CONNECT;
    }
    c->connect_ev = event_new(c->net->base, fd, EV_WRITE, xbb_conn_on_connect, c);
    if (c->connect_ev == NULL || event_add(c->connect_ev, NULL) != 0) {
        snprintf(c->detail, sizeof c->detail, "cannot watch the connect");
        if (c->connect_ev != NULL)
            event_free(c->connect_ev);
        c->connect_ev = NULL;
        close(fd);
        return XBB_FAIL_CONNECT;
    }
    c->fd = fd;
    return XBB_FAIL_NONE;
}

xbb_fail xbb_conn_request(xbb_conn *c, const void *req, size_t len)
{
    xbb_http_resp_reset(&c->resp);
    c->want_answer = 1;
    c->detail[0] = '\0';
    if (c->bev != NULL) {
        if (evbuffer_add_reference(bufferevent_get_output(c->bev), req, len, NULL, NULL) != 0) {
            snprintf(c->detail, sizeof c->detail, "out of memory");
            xbb_conn_close(c);
            return XBB_FAIL_CLOSED;
        }
        c->busy = 1;
        return XBB_FAIL_NONE;
    }
    xbb_fail f = c->fd >= 0 ? XBB_FAIL_NONE : xbb_conn_start(c);
    if (f != XBB_FAIL_NONE)
        return f;
    c->busy = 1;
    c->pending = req;
    c->pending_len = len;
    return XBB_FAIL_NONE;
}

xbb_fail xbb_conn_open(xbb_conn *c)
{
    if (c->bev != NULL || c->fd >= 0)
        return XBB_FAIL_NONE;
    c->want_answer = 0;
    c->detail[0] = '\0';
    xbb_fail f = xbb_conn_start(c);
    if (f == XBB_FAIL_NONE)
        c->busy = 1;
    return f;
}
