#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <openssl/rand.h>

#include "ratelimit.h"
#include "xb_log.h"

#define XB_HTTP_RETRY_AFTER_503 5
#include "xb_util.h"

/* Every method evhttp knows: all reach the dispatcher, so that unknown ones get our 405. */
#define XB_ALL_METHODS                                                                             \
    (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |     \
     EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT)

/* Headers are small for every client we serve; a large header block is an attack. */
#define XB_MAX_HEADERS (16 * 1024)

typedef struct xb_route {
    const char *path;
    int case_insensitive; /* Azure Functions routes are case-insensitive: /api/Certificate */
    int prefix;           /* also path + "/...": the handler reads the rest (EST) */
    enum evhttp_cmd_type methods;
    const char *allow; /* Allow header for 405 */
    void (*handler)(xb_exchange *ex);
} xb_route;

static const xb_route xb_routes[] = {
    {"/api/certificate", 1, 0, EVHTTP_REQ_POST, "POST", xb_route_xboot_certificate},
    {"/healthz", 0, 0, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", xb_route_healthz},
    {"/metrics", 0, 0, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", xb_route_metrics},
    {"/crl", 0, 0, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", xb_route_crl},
    /* EST answers its own 404 and 405 (text/plain, per operation): every method goes in. */
    {"/.well-known/est", 0, 1, XB_ALL_METHODS, "", xb_route_est},
};
#define XB_ROUTE_COUNT (sizeof xb_routes / sizeof xb_routes[0])
#define XB_ROUTE_NONE XB_ROUTE_COUNT /* unmatched requests: not in the latency histogram */

_Static_assert(XB_ROUTE_COUNT <= XB_METRICS_MAX_ROUTES, "raise XB_METRICS_MAX_ROUTES");

size_t xb_http_route_count(void)
{
    return XB_ROUTE_COUNT;
}

const char *xb_http_route_path(size_t i)
{
    return i < XB_ROUTE_COUNT ? xb_routes[i].path : "";
}

static void xb_conn_rearm(struct evhttp_request *req);

static const char *xb_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

xb_err xb_http_take_token(xb_exchange *ex, const char *reg_id, xb_diag *d)
{
    int wait = 0;
    xb_rl_kind kind = reg_id != NULL ? XB_RL_ID : XB_RL_IP;
    const char *key = reg_id != NULL ? reg_id : ex->client_addr;
    ex->id_token = reg_id != NULL;
    if (xb_ratelimit_take(ex->srv->limits, kind, key, 1, xb_ratelimit_now_ns(), &wait))
        return XB_OK;
    ex->retry_after = wait;
    return xb_fail(d, XB_ERR_RATE_LIMITED, "too many requests for this %s; retry after %d s",
                   reg_id != NULL ? "registration ID" : "address", wait);
}

/* A failed authentication costs two tokens from its buckets: guessing costs double. The
 * address paid one on arrival; the ID's bucket may not have been reached yet (EST refuses a
 * request without credentials before the enrollment starts). */
static void xb_http_charge_failure(const xb_exchange *ex)
{
    int64_t now = xb_ratelimit_now_ns();
    xb_ratelimit_charge(ex->srv->limits, XB_RL_IP, ex->client_addr, 1, now);
    if (strcmp(ex->reg_id, "-") != 0)
        xb_ratelimit_charge(ex->srv->limits, XB_RL_ID, ex->reg_id, ex->id_token ? 1 : 2, now);
}

/* The request's log line and its metrics. */
static void xb_http_account(const xb_exchange *ex)
{
    if (ex->enrollment && ex->result == XB_ERR_UNAUTHORIZED)
        xb_http_charge_failure(ex);
    struct timeval now;
    gettimeofday(&now, NULL);
    double ms = (double)(now.tv_sec - ex->start.tv_sec) * 1e3 +
                (double)(now.tv_usec - ex->start.tv_usec) / 1e3;
    xb_metrics_request(ex->srv->metrics_slot, ex->route, ms / 1e3);
    if (ex->enrollment && ex->result != XB_OK)
        xb_metrics_refusal(ex->srv->metrics_slot, ex->protocol, ex->result);
    else if (ex->enrollment)
        xb_metrics_enrollment(ex->srv->metrics_slot, ex->protocol,
                              ex->replayed ? XB_OUTCOME_REPLAYED : XB_OUTCOME_ISSUED);
    xb_info("request id=%s client=%s reg_id=%s outcome=%s status=%d ms=%.2f%s%s%s%s",
            ex->request_id, ex->client_addr, ex->reg_id, ex->outcome, ex->status, ms,
            ex->serial[0] ? " serial=" : "", ex->serial, ex->credential ? " credential=" : "",
            ex->credential ? ex->credential : "");
}

SSL *xb_http_ssl(const xb_exchange *ex)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(ex->req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    return bev ? bufferevent_openssl_get_ssl(bev) : NULL;
}

X509 *xb_http_peer_cert(const xb_exchange *ex)
{
    SSL *ssl = xb_http_ssl(ex);
    return ssl ? SSL_get0_peer_certificate(ssl) : NULL;
}

void xb_http_reply_text(xb_exchange *ex, int status, const char *content_type, const char *text)
{
    xb_http_reply_bytes(ex, status, content_type, "no-store", text, strlen(text));
}

void xb_http_reply_bytes(xb_exchange *ex, int status, const char *content_type,
                         const char *cache_control, const void *data, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(ex->req);
    /* 429 says when a token will be there; 503 (registry, CA or webhook briefly away) asks
     * for a short wait so devices do not retry in a tight loop. */
    int wait = ex->retry_after > 0 ? ex->retry_after : status == 503 ? XB_HTTP_RETRY_AFTER_503 : 0;
    if (wait > 0) {
        char secs[16];
        snprintf(secs, sizeof secs, "%d", wait);
        evhttp_add_header(h, "Retry-After", secs);
    }
    evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "Cache-Control", cache_control);
    evhttp_add_header(h, "X-Request-Id", ex->request_id);
    struct evbuffer *body = evbuffer_new();
    if (body != NULL && evhttp_request_get_command(ex->req) != EVHTTP_REQ_HEAD)
        evbuffer_add(body, data, len);
    ex->status = status;
    xb_conn_rearm(ex->req);
    struct evhttp_connection *evcon = evhttp_request_get_connection(ex->req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evhttp_send_reply(ex->req, status, xb_http_reason(status), body);
    /* evhttp queues the header block and the body as two buffer chains, and bufferevent_openssl
     * makes each chain its own TLS record and write(2). Joined, an answer is one record and one
     * system call. (The write is deferred to the loop, so the answer is still queued here.) */
    if (bev != NULL)
        evbuffer_pullup(bufferevent_get_output(bev), -1);
    if (body != NULL)
        evbuffer_free(body);
    xb_http_account(ex);
}

void xb_http_reply_json(xb_exchange *ex, int status, const char *json)
{
    xb_http_reply_text(ex, status, "application/json; charset=utf-8", json);
}

void xb_http_reply_error(xb_exchange *ex, xb_err err, const char *message)
{
    if (xb_err_http_status(err) >= 500) {
        /* Server-side failures: the detail (paths, OpenSSL text) is for the operator's log,
         * the client gets the code and the generic message. */
        xb_error("request id=%s %s: %s", ex->request_id, xb_err_code(err),
                 message ? message : xb_strerror(err));
        message = NULL;
    }
    cJSON *o = cJSON_CreateObject();
    char *json = NULL;
    if (o != NULL && cJSON_AddStringToObject(o, "error", xb_err_code(err)) &&
        cJSON_AddStringToObject(o, "message", message ? message : xb_strerror(err)) &&
        cJSON_AddStringToObject(o, "requestId", ex->request_id))
        json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    ex->outcome = xb_err_code(err);
    ex->result = err;
    if (xb_err_http_status(err) == 401) /* every 401 says how to authenticate (RFC 7235) */
        evhttp_add_header(evhttp_request_get_output_headers(ex->req), "WWW-Authenticate",
                          "Basic realm=\"xboot\"");
    xb_http_reply_json(ex, xb_err_http_status(err),
                       json ? json : "{\"error\":\"out_of_memory\",\"message\":\"out of memory\"}");
    cJSON_free(json);
}

/* Request IDs only need to be unique, not secret: a random start per worker process (seeded
 * by xb_http_new, which runs in the worker), then a counter. A DRBG call per request cost ~2%
 * of an enrollment. 16 hex digits. */
static uint64_t xb_next_request_id;

static void xb_request_id_seed(void)
{
    unsigned char rnd[8] = {0};
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        memset(rnd, 0x5a, sizeof rnd);
    memcpy(&xb_next_request_id, rnd, sizeof rnd);
}

static void xb_request_id(char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)xb_next_request_id++);
}

static int xb_route_matches(const xb_route *r, const char *path)
{
    if (r->prefix) {
        size_t n = strlen(r->path);
        return strncmp(r->path, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
    }
    return r->case_insensitive ? strcasecmp(r->path, path) == 0 : strcmp(r->path, path) == 0;
}

static void xb_http_dispatch(struct evhttp_request *req, xb_server *srv, int tls)
{
    xb_exchange ex = {.req = req, .srv = srv, .outcome = "-", .status = 0, .route = XB_ROUTE_NONE};
    gettimeofday(&ex.start, NULL);
    xb_request_id(ex.request_id);
    strcpy(ex.reg_id, "-");
    char *peer = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &port);
    snprintf(ex.client_addr, sizeof ex.client_addr, "%s", peer ? peer : "-");

    /* When the bufferevent callback cannot allocate, libevent 2.1 silently falls back to a
     * plain socket: on the HTTPS port such a connection is refused, never served. */
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
    if (tls && (bev == NULL || bufferevent_openssl_get_ssl(bev) == NULL)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        xb_http_reply_error(&ex, XB_ERR_MALFORMED_REQUEST, "this port speaks HTTPS only");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL || path[0] == '\0')
        path = "/";
    for (size_t i = 0; i < XB_ROUTE_COUNT; i++) {
        const xb_route *r = &xb_routes[i];
        if (!xb_route_matches(r, path))
            continue;
        ex.route = i;
        if (!(evhttp_request_get_command(req) & r->methods)) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", r->allow);
            xb_http_reply_error(&ex, XB_ERR_METHOD_NOT_ALLOWED, NULL);
            return;
        }
        r->handler(&ex);
        return;
    }
    xb_http_reply_error(&ex, XB_ERR_NOT_FOUND, NULL);
}

/* A request deadline per TLS connection. libevent's own timeout is an inactivity timeout: a
 * client that trickles a byte every few seconds would hold a connection forever. Here each
 * connection must deliver a complete request within timeout_seconds of being accepted (and of
 * each answer, for keep-alive). The timer lives in the SSL object's ex_data, so it is freed
 * exactly when libevent frees the connection; when it fires, the socket is shut down and
 * libevent tears the connection down through its normal error path. */
typedef struct xb_conn_deadline {
    struct event *timer;
    SSL *ssl;
    struct timeval span;
    xb_metrics_slot *metrics; /* the connection is counted open while this lives */
} xb_conn_deadline;

static int xb_conn_ex_index = -1;

static void xb_conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                            void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    xb_conn_deadline *dl = ptr;
    if (dl == NULL)
        return;
    xb_metrics_tls_connection(dl->metrics, -1);
    event_free(dl->timer);
    free(dl);
}

static void xb_conn_on_deadline(evutil_socket_t unused, short events, void *arg)
{
    (void)unused, (void)events;
    xb_conn_deadline *dl = arg;
    int fd = SSL_get_fd(dl->ssl);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

/* Give the connection of req a fresh deadline (called when an answer goes out). */
static void xb_conn_rearm(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    xb_conn_deadline *dl = ssl ? SSL_get_ex_data(ssl, xb_conn_ex_index) : NULL;
    if (dl != NULL)
        evtimer_add(dl->timer, &dl->span);
}

static void xb_http_dispatch_tls(struct evhttp_request *req, void *arg)
{
    xb_http_dispatch(req, arg, 1);
}

static void xb_http_dispatch_plain(struct evhttp_request *req, void *arg)
{
    xb_http_dispatch(req, arg, 0);
}

static struct bufferevent *xb_http_tls_bev(struct event_base *base, void *arg)
{
    xb_server *srv = arg;
    SSL *ssl = SSL_new(srv->ssl_ctx);
    xb_conn_deadline *dl = calloc(1, sizeof *dl);
    if (ssl == NULL || dl == NULL ||
        (dl->timer = evtimer_new(base, xb_conn_on_deadline, dl)) == NULL) {
        SSL_free(ssl);
        free(dl);
        return NULL;
    }
    dl->ssl = ssl;
    dl->span.tv_sec = srv->cfg->timeout_seconds;
    dl->metrics = srv->metrics_slot;
    xb_metrics_tls_connection(dl->metrics, +1);
    if (!SSL_set_ex_data(ssl, xb_conn_ex_index, dl)) {
        xb_conn_ex_free(NULL, dl, NULL, 0, 0, NULL);
        SSL_free(ssl);
        return NULL;
    }
    evtimer_add(dl->timer, &dl->span);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL)
        return NULL; /* libevent 2.1 has freed ssl (and so dl) already: CLOSE_ON_FREE */
    /* Devices often drop the connection without close_notify after reading the answer. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

struct evhttp *xb_http_new(struct event_base *base, xb_server *srv, int tls, int fd,
                           struct evhttp_bound_socket **bound)
{
    struct evhttp *http = evhttp_new(base);
    if (http == NULL)
        return NULL;
    xb_request_id_seed();
    /* Every method reaches the dispatcher so that unknown ones get our JSON 405. */
    evhttp_set_allowed_methods(http, XB_ALL_METHODS);
    evhttp_set_timeout(http, srv->cfg->timeout_seconds);
    evhttp_set_max_headers_size(http, XB_MAX_HEADERS);
    evhttp_set_max_body_size(http, XB_HTTP_TRANSPORT_MAX_BODY);
    evhttp_set_default_content_type(http, "application/json; charset=utf-8");
    evhttp_set_gencb(http, tls ? xb_http_dispatch_tls : xb_http_dispatch_plain, srv);
    if (tls) {
        if (xb_conn_ex_index < 0)
            xb_conn_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, xb_conn_ex_free);
        if (xb_conn_ex_index < 0) {
            evhttp_free(http);
            return NULL;
        }
        evhttp_set_bevcb(http, xb_http_tls_bev, srv);
    }
    *bound = evhttp_accept_socket_with_handle(http, fd);
    if (*bound == NULL) {
        evhttp_free(http);
        return NULL;
    }
    return http;
}
