/* Requests with retries and backoff (lib/exchange.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "est.h"
#include "exchange.h"
#include "wire.h"

/* A random number in [0, n) for backoff jitter (not a secret; no crypto needed). */
static long xbx_random_below(long n)
{
    unsigned long r = 0;
    if (n <= 0)
        return 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (unsigned long)time(NULL) ^ (unsigned long)clock();
    return (long)(r % (unsigned long)n);
}

/* The wait before attempt number `next` (2, 3, ...): "equal jitter" (half fixed, half random)
 * of base * 2^(next-2), capped; the server's Retry-After wins when longer (also capped). */
static long xbx_backoff_ms(const xboot_client *c, int next, long retry_after_s)
{
    long cap = c->backoff_base_ms;
    for (int i = 2; i < next && cap < c->backoff_max_ms; i++)
        cap *= 2;
    if (cap > c->backoff_max_ms)
        cap = c->backoff_max_ms;
    long wait = cap / 2 + xbx_random_below(cap - cap / 2 + 1);
    /* Compare in seconds first: a huge Retry-After must not overflow a 32-bit long. */
    if (retry_after_s >= 0 && retry_after_s >= c->backoff_max_ms / 1000)
        return c->backoff_max_ms;
    if (retry_after_s >= 0 && retry_after_s * 1000 > wait)
        wait = retry_after_s * 1000;
    return wait > c->backoff_max_ms ? c->backoff_max_ms : wait;
}

static void xbx_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int xbx_busy_status(long status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

/* The URL without its query (which may hold a function key), for progress and messages. */
static void xbx_public_url(const char *url, char *out, size_t len)
{
    snprintf(out, len, "%.*s", (int)strcspn(url, "?"), url);
}

/* What a non-200 answer means; records the server's own words. */
static xboot_err xbx_judge_status(xboot_client *c, const xbx_call *call, const xbt_response *r)
{
    c->http_status = (int)r->status;
    /* A JSON body is read as JSON whatever was asked: proxies and older servers answer EST
     * paths with the XBoot error object too. */
    int json = r->body_len > 0 && r->body[0] == '{';
    if (call->errors == XBX_ERRORS_TEXT && !json)
        xbe_error(r->body, r->body_len, c->server_code, sizeof c->server_code, c->server_message,
                  sizeof c->server_message);
    else
        xbw_error(r->body, r->body_len, c->server_code, sizeof c->server_code, c->server_message,
                  sizeof c->server_message);
    const char *said = c->server_code[0] ? c->server_code : "no error code";
    if (xbx_busy_status(r->status))
        return xbc_fail(&c->detail, XBOOT_ERR_SERVER_BUSY, "HTTP %ld (%s)", r->status, said);
    if (r->status >= 400 && r->status < 500)
        return xbc_fail(&c->detail, XBOOT_ERR_SERVER_REFUSED, "HTTP %ld: %s%s%s", r->status, said,
                        c->server_message[0] ? ": " : "", c->server_message);
    if (r->status >= 500)
        return xbc_fail(&c->detail, XBOOT_ERR_SERVER_FAILED, "HTTP %ld (%s)", r->status, said);
    return xbc_fail(&c->detail, XBOOT_ERR_BAD_RESPONSE, "unexpected HTTP status %ld", r->status);
}

xboot_err xbx_exchange(xboot_client *c, const xbx_call *call, xbt_response *resp)
{
    char url[512];
    xbx_public_url(call->url, url, sizeof url);
    int basic = call->basic_auth && c->credential != NULL;
    xbt_request req = {
        .method = call->method,
        .url = call->url,
        .content_type = call->content_type,
        .accept = call->accept,
        .body = call->body,
        .body_len = call->body_len,
        .basic_user = basic ? c->reg_id : NULL,
        .basic_password = basic ? c->credential : NULL,
        .api_key = c->api_key,
        .client_key = call->client_key,
        .client_cert = call->client_cert,
        .client_chain = call->client_chain,
        .trust_pem = c->trust_pem,
        .trust_pem_len = c->trust_pem_len,
        .connect_timeout_ms = c->connect_timeout_ms,
        .request_timeout_ms = c->request_timeout_ms,
    };
    xboot_err e = XBOOT_ERR_INTERNAL;
    for (int attempt = 1; attempt <= c->attempts; attempt++) {
        if (attempt == 1 && call->announce)
            xbcl_progress(c, XBOOT_EVENT_SENDING_CSR, url);
        e = c->post(c->post_ctx, &req, resp, &c->detail);
        if (e == XBOOT_OK && resp->status == 200) {
            /* A busy answer before this success said nothing about the outcome. */
            c->http_status = 200;
            c->server_code[0] = '\0';
            c->server_message[0] = '\0';
            return XBOOT_OK;
        }
        if (e == XBOOT_OK)
            e = xbx_judge_status(c, call, resp);
        if (e != XBOOT_ERR_NETWORK && e != XBOOT_ERR_SERVER_BUSY)
            return e;
        if (attempt == c->attempts)
            break;
        long wait = xbx_backoff_ms(c, attempt + 1, e == XBOOT_OK ? -1 : resp->retry_after_s);
        char why[sizeof c->detail.msg + 64];
        snprintf(why, sizeof why, "%s; attempt %d of %d in %ld ms", c->detail.msg, attempt + 1,
                 c->attempts, wait);
        xbcl_progress(c, XBOOT_EVENT_RETRYING, why);
        xbx_sleep_ms(wait);
    }
    return e;
}
