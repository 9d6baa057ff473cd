#include "webhook.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "xb_log.h"
#include "xb_url.h"

/* The longest curl_multi_poll: submissions and stop wake the thread at once
 * (curl_multi_wakeup), and libcurl shortens the wait itself when a transfer has a timer due;
 * this only bounds an idle worker's sleep. */
#define XB_WEBHOOK_IDLE_MS 60000
/* Idle connections kept open to the webhook (libcurl's cache of the multi handle): later
 * queries skip TCP and TLS set-up; a burst may open more, which are closed after use. */
#define XB_WEBHOOK_KEEP_CONNECTIONS 16L

/* One query in flight: what the thread needs of the job, and the curl transfer. */
typedef struct xb_webhook_xfer {
    xb_webhook_job *job;
    struct xb_webhook_xfer *prev, *next; /* the thread's list of transfers in progress */
    CURL *easy;
    char *body; /* the request JSON */
    char reg_id[129];
    char *answer; /* the first XB_WEBHOOK_MAX_ANSWER bytes of the response body */
    size_t answer_len;
    int too_large; /* the answer went beyond XB_WEBHOOK_MAX_ANSWER */
    char errbuf[CURL_ERROR_SIZE];
} xb_webhook_xfer;

struct xb_webhook {
    pthread_t thread;
    pthread_mutex_t lock;
    xb_job_list queue;        /* submitted, not yet started (lock) */
    int stopping;             /* lock */
    CURLM *multi;             /* the thread's; curl_multi_wakeup is safe from any thread */
    CURLSH *share;            /* the thread's: TLS sessions, resumed by later connections */
    xb_webhook_xfer *running; /* the thread's: transfers in progress */
    xb_loop_inbox inbox;      /* finished, not yet delivered */
    struct curl_slist *headers;
    char *url;       /* as configured: its query may hold a secret, never log it */
    char shown[512]; /* scheme://host[:port]/path: what the log names */
    char *query;     /* the URL's query and password, to keep them out of curl's error */
    char *password;  /* messages before those are logged (NULL: none) */
    char *ca_file;   /* NULL: the system store */
    long timeout_ms;
};

/* ---- the request and the answer ---- */

static int xb_json_put(cJSON *obj, const char *name, const char *value)
{
    cJSON *v = value != NULL ? cJSON_CreateString(value) : cJSON_CreateNull();
    if (v == NULL)
        return 0;
    if (!cJSON_AddItemToObject(obj, name, v)) {
        cJSON_Delete(v);
        return 0;
    }
    return 1;
}

char *xb_webhook_request_json(const xb_webhook_query *q)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o != NULL && xb_json_put(o, "registrationId", q->registration_id) &&
        xb_json_put(o, "subject", q->subject) &&
        xb_json_put(o, "publicKeySha256", q->public_key_sha256) &&
        xb_json_put(o, "keyType", q->key_type) &&
        xb_json_put(o, "clientAddress", q->client_address) &&
        xb_json_put(o, "protocol", q->protocol))
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* Code points that must not reach a log line or an HTTP answer as they are: controls (C0, DEL,
 * C1), the Unicode line and paragraph separators, and the bidirectional embeddings, overrides
 * and isolates (they can make a log line read other than it is). */
static int xb_code_point_rejected(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* The length (1..4) of the UTF-8 character at s and its code point; 0 when s does not start a
 * valid shortest-form character (a NUL ends a truncated sequence: it is no continuation). */
static size_t xb_utf8_next(const unsigned char *s, uint32_t *cp)
{
    size_t n;
    uint32_t v, least;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2, v = s[0] & 0x1fu, least = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3, v = s[0] & 0x0fu, least = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4, v = s[0] & 0x07u, least = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3fu);
    }
    if (v < least || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

static size_t xb_trim_end(const char *out, size_t len)
{
    while (len > 0 && out[len - 1] == ' ')
        len--;
    return len;
}

size_t xb_webhook_clean_text(const char *text, char *out, size_t cap)
{
    if (cap < 4) {
        if (cap > 0)
            out[0] = '\0';
        return 0;
    }
    size_t max = cap - 1 < XB_WEBHOOK_REASON_MAX ? cap - 1 : XB_WEBHOOK_REASON_MAX;
    const unsigned char *s = (const unsigned char *)text;
    size_t len = 0;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    while (*s != '\0') {
        uint32_t cp = 0;
        size_t n = xb_utf8_next(s, &cp);
        const char *piece = (const char *)s;
        size_t piece_len = n;
        if (n == 0) {
            piece = "?", piece_len = n = 1;
        } else if (cp == '\t' || cp == '\r' || cp == '\n') {
            piece = " ", piece_len = 1;
        } else if (xb_code_point_rejected(cp)) {
            piece = "?", piece_len = 1;
        }
        if (len + piece_len > max) {
            /* Cut back to a character boundary with room for the ellipsis. */
            len = len > max - 3 ? max - 3 : len;
            while (len > 0 && ((unsigned char)out[len] & 0xc0) == 0x80)
                len--;
            len = xb_trim_end(out, len);
            memcpy(out + len, "...", 3);
            out[len + 3] = '\0';
            return len + 3;
        }
        memcpy(out + len, piece, piece_len);
        len += piece_len;
        s += n;
    }
    len = xb_trim_end(out, len);
    out[len] = '\0';
    return len;
}

void xb_webhook_denial_reason(const char *answer, size_t len, long status, char *out, size_t cap)
{
    cJSON *root = answer != NULL && len > 0 ? cJSON_ParseWithLength(answer, len) : NULL;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "reason");
    if (!cJSON_IsString(r))
        r = cJSON_GetObjectItemCaseSensitive(root, "message");
    size_t n = cJSON_IsString(r) ? xb_webhook_clean_text(r->valuestring, out, cap) : 0;
    cJSON_Delete(root);
    if (n == 0)
        snprintf(out, cap, "the validation webhook refused this enrollment (HTTP %ld)", status);
}

/* ---- the URL ---- */

xb_err xb_webhook_url_shown(const char *url, char *out, size_t cap, xb_diag *d)
{
    return xb_url_shown(url, "the webhook URL", out, cap, d);
}

/* ---- the thread ---- */

static xb_webhook_job *xb_webhook_job_of(xb_job_link *link)
{
    return XB_JOB_OF(link, xb_webhook_job, link);
}

static size_t xb_webhook_collect(char *data, size_t size, size_t nmemb, void *arg)
{
    xb_webhook_xfer *x = arg;
    size_t n = size * nmemb;
    if (n > XB_WEBHOOK_MAX_ANSWER - x->answer_len) {
        x->too_large = 1;
        return 0; /* CURLE_WRITE_ERROR ends the transfer */
    }
    char *grown = realloc(x->answer, x->answer_len + n + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + x->answer_len, data, n);
    x->answer = grown;
    x->answer_len += n;
    x->answer[x->answer_len] = '\0';
    return n;
}

/* Set the job's outcome and release the transfer; the job is then ready for delivery. */
static void xb_webhook_release(xb_webhook_xfer *x, xb_err result, const char *reason)
{
    xb_webhook_job *job = x->job;
    job->result = result;
    snprintf(job->reason, sizeof job->reason, "%s", reason);
    if (x->easy != NULL)
        curl_easy_cleanup(x->easy);
    cJSON_free(x->body);
    free(x->answer);
    free(x);
    job->xfer = NULL;
}

/* The easy handle of one query. Its options make it HTTPS only, verified (peer and host
 * name, TLS 1.2 or later, the configured trust anchor alone when there is one), without
 * redirects (a 3xx is an answer, and denies) and bounded in time and size. */
static int xb_webhook_setup(xb_webhook *w, xb_webhook_xfer *x)
{
    CURL *h = x->easy;
    if (curl_easy_setopt(h, CURLOPT_URL, w->url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, w->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, w->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERAGENT, "xbootd") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, w->headers) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(x->body)) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->body) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)XB_WEBHOOK_MAX_ANSWER) !=
            CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, xb_webhook_collect) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEDATA, x) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PRIVATE, x) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SHARE, w->share) != CURLE_OK)
        return 0;
    if (w->ca_file != NULL && (curl_easy_setopt(h, CURLOPT_CAINFO, w->ca_file) != CURLE_OK ||
                               curl_easy_setopt(h, CURLOPT_CAPATH, NULL) != CURLE_OK))
        return 0;
    return 1;
}

/* Start the query of a freshly submitted job; if it cannot start, it is finished already. */
static void xb_webhook_begin(xb_webhook *w, xb_webhook_job *job)
{
    xb_webhook_xfer *x = job->xfer;
    if ((x->easy = curl_easy_init()) == NULL || !xb_webhook_setup(w, x) ||
        curl_multi_add_handle(w->multi, x->easy) != CURLM_OK) {
        xb_error("webhook: cannot start the query for %s (out of memory?)", x->reg_id);
        xb_webhook_release(x, XB_ERR_POLICY_UNAVAILABLE,
                           "the validation webhook could not be queried (out of memory)");
        xb_loop_inbox_post(&w->inbox, &job->link, &job->link);
        return;
    }
    x->prev = NULL;
    x->next = w->running;
    if (w->running != NULL)
        w->running->prev = x;
    w->running = x;
}

/* Take a transfer out of the multi handle and the list of those in progress. */
static void xb_webhook_detach(xb_webhook *w, xb_webhook_xfer *x)
{
    curl_multi_remove_handle(w->multi, x->easy);
    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        w->running = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* curl's message for a failed transfer, unless it quotes the URL's query or password. */
static const char *xb_webhook_curl_error(const xb_webhook *w, const xb_webhook_xfer *x, CURLcode rc)
{
    const char *msg = x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(rc);
    if ((w->query != NULL && w->query[0] != '\0' && strstr(msg, w->query) != NULL) ||
        (w->password != NULL && w->password[0] != '\0' && strstr(msg, w->password) != NULL))
        return curl_easy_strerror(rc);
    return msg;
}

/* What a failed transfer means for the device: which kind of failure, never a host name. */
static void xb_webhook_unavailable_reason(const xb_webhook *w, const xb_webhook_xfer *x,
                                          CURLcode rc, char *out, size_t cap)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(out, cap, "the validation webhook did not answer within %ld ms", w->timeout_ms);
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        snprintf(out, cap, "the validation webhook cannot be reached");
        return;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        snprintf(out, cap, "the validation webhook's TLS certificate is not trusted");
        return;
    case CURLE_SSL_CONNECT_ERROR:
        snprintf(out, cap, "the TLS handshake with the validation webhook failed");
        return;
    case CURLE_FILESIZE_EXCEEDED:
        snprintf(out, cap, "the validation webhook's answer is larger than %d bytes",
                 XB_WEBHOOK_MAX_ANSWER);
        return;
    case CURLE_WRITE_ERROR:
        if (x->too_large) {
            snprintf(out, cap, "the validation webhook's answer is larger than %d bytes",
                     XB_WEBHOOK_MAX_ANSWER);
            return;
        }
        break;
    default:
        break;
    }
    snprintf(out, cap, "the validation webhook query failed (%s)", curl_easy_strerror(rc));
}

/* Judge one finished transfer, log it, and hand its job to the loop. */
static void xb_webhook_finish(xb_webhook *w, xb_webhook_xfer *x, CURLcode rc)
{
    long status = 0;
    curl_off_t us = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &us);
    long ms = (long)(us / 1000);
    xb_webhook_detach(w, x);
    xb_webhook_job *job = x->job;
    char reason[sizeof job->reason];
    xb_err result;
    if (rc == CURLE_OK && status >= 200 && status <= 299) {
        result = XB_OK;
        reason[0] = '\0';
        xb_debug("webhook: %s allowed %s (HTTP %ld, %ld ms)", w->shown, x->reg_id, status, ms);
    } else if (rc == CURLE_OK) {
        result = XB_ERR_FORBIDDEN;
        xb_webhook_denial_reason(x->answer, x->answer_len, status, reason, sizeof reason);
        xb_info("webhook: %s denied %s (HTTP %ld, %ld ms): %s", w->shown, x->reg_id, status, ms,
                reason);
    } else {
        result = XB_ERR_POLICY_UNAVAILABLE;
        xb_webhook_unavailable_reason(w, x, rc, reason, sizeof reason);
        xb_warn("webhook: no verdict from %s for %s after %ld ms, denied (fail closed): %s (%s)",
                w->shown, x->reg_id, ms, reason, xb_webhook_curl_error(w, x, rc));
    }
    xb_webhook_release(x, result, reason);
    xb_loop_inbox_post(&w->inbox, &job->link, &job->link);
}

/* Finish every transfer libcurl reports done. */
static void xb_webhook_reap(xb_webhook *w)
{
    CURLMsg *m;
    int left = 0;
    while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode rc = m->data.result; /* m is invalid once the handle is removed */
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        xb_webhook_finish(w, (xb_webhook_xfer *)(void *)priv, rc);
    }
}

static void *xb_webhook_main(void *arg)
{
    xb_webhook *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        int stopping = w->stopping;
        xb_job_link *fresh = stopping ? NULL : xb_job_list_take(&w->queue);
        pthread_mutex_unlock(&w->lock);
        if (stopping)
            break; /* xb_webhook_stop abandons what is left */
        while (fresh != NULL) {
            xb_job_link *next = fresh->next;
            fresh->next = NULL;
            xb_webhook_begin(w, xb_webhook_job_of(fresh));
            fresh = next;
        }
        int still_running = 0;
        CURLMcode mc = curl_multi_perform(w->multi, &still_running);
        if (mc != CURLM_OK)
            xb_error("webhook: curl_multi_perform: %s", curl_multi_strerror(mc));
        xb_webhook_reap(w);
        mc = curl_multi_poll(w->multi, NULL, 0, XB_WEBHOOK_IDLE_MS, NULL);
        if (mc != CURLM_OK) {
            /* Not expected (out of memory); do not spin, the transfers' own timeouts still
             * bound every query. */
            xb_error("webhook: curl_multi_poll: %s", curl_multi_strerror(mc));
            struct timespec nap = {0, 10 * 1000 * 1000L};
            nanosleep(&nap, NULL);
        }
    }
    return NULL;
}

/* ---- loop side ---- */

static void xb_webhook_deliver(xb_job_link *link, int delivered)
{
    xb_webhook_job *job = xb_webhook_job_of(link);
    job->done(job, delivered);
}

void xb_webhook_submit(xb_webhook *w, const xb_webhook_query *q, xb_webhook_job *job)
{
    job->link.next = NULL;
    job->result = XB_ERR_POLICY_UNAVAILABLE;
    job->reason[0] = '\0';
    char *body = xb_webhook_request_json(q);
    xb_webhook_xfer *x = body != NULL ? calloc(1, sizeof *x) : NULL;
    job->xfer = x;
    if (x == NULL) {
        cJSON_free(body);
        xb_error("webhook: out of memory for a query");
        snprintf(job->reason, sizeof job->reason,
                 "the validation webhook could not be queried (out of memory)");
        /* Delivered from the loop like any answer: done() never runs inside submit. */
        xb_loop_inbox_post(&w->inbox, &job->link, &job->link);
        return;
    }
    x->job = job;
    x->body = body;
    /* For log lines only; the pipeline has validated it, this keeps any caller's safe. */
    xb_webhook_clean_text(q->registration_id != NULL ? q->registration_id : "(none)", x->reg_id,
                          sizeof x->reg_id);
    pthread_mutex_lock(&w->lock);
    xb_job_list_append(&w->queue, &job->link, &job->link);
    pthread_mutex_unlock(&w->lock);
    curl_multi_wakeup(w->multi);
}

/* The trust anchor must hold at least one PEM certificate: better refused at start than
 * every query failing closed. */
static xb_err xb_webhook_check_ca(const char *path, xb_diag *d)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return xb_fail(d, XB_ERR_CONFIG, "webhook trust anchor %s: %s", path, strerror(errno));
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    if (cert == NULL)
        return xb_fail(d, XB_ERR_CONFIG, "webhook trust anchor %s holds no PEM certificate", path);
    X509_free(cert);
    return XB_OK;
}

static void xb_webhook_free(xb_webhook *w)
{
    if (w->multi != NULL)
        curl_multi_cleanup(w->multi);
    if (w->share != NULL) /* after every easy handle that used it */
        curl_share_cleanup(w->share);
    curl_slist_free_all(w->headers);
    free(w->url);
    free(w->ca_file);
    curl_free(w->query);
    curl_free(w->password);
    free(w);
    curl_global_cleanup();
}

/* The configuration, copied into w; everything that can be wrong with it is found here. */
static xb_err xb_webhook_configure(xb_webhook *w, const xb_webhook_config *cfg, xb_diag *d)
{
    if (cfg->url == NULL || cfg->url[0] == '\0')
        return xb_fail(d, XB_ERR_CONFIG, "no webhook URL");
    w->timeout_ms = cfg->timeout_ms == 0 ? XB_WEBHOOK_DEFAULT_TIMEOUT_MS : cfg->timeout_ms;
    if (w->timeout_ms < 1 || w->timeout_ms > XB_WEBHOOK_MAX_TIMEOUT_MS)
        return xb_fail(d, XB_ERR_CONFIG, "webhook timeout %ld ms is out of 1..%ld", cfg->timeout_ms,
                       XB_WEBHOOK_MAX_TIMEOUT_MS);
    xb_err err = xb_url_parse_https(cfg->url, "the webhook URL", w->shown, sizeof w->shown,
                                    &w->query, &w->password, d);
    if (err != XB_OK)
        return err;
    if (cfg->ca_file != NULL && cfg->ca_file[0] != '\0') {
        if ((err = xb_webhook_check_ca(cfg->ca_file, d)) != XB_OK)
            return err;
        if ((w->ca_file = strdup(cfg->ca_file)) == NULL)
            return xb_fail(d, XB_ERR_NOMEM, "out of memory starting the webhook");
    }
    struct curl_slist *h = NULL;
    const char *lines[] = {"Content-Type: application/json", "Accept: application/json",
                           "Expect:"}; /* no 100-continue round trip */
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        struct curl_slist *next = curl_slist_append(h, lines[i]);
        if (next == NULL) {
            curl_slist_free_all(h);
            return xb_fail(d, XB_ERR_NOMEM, "out of memory starting the webhook");
        }
        h = next;
    }
    w->headers = h;
    /* The share needs no lock functions: only the webhook thread runs its transfers. */
    if ((w->url = strdup(cfg->url)) == NULL || (w->multi = curl_multi_init()) == NULL ||
        curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, XB_WEBHOOK_KEEP_CONNECTIONS) !=
            CURLM_OK ||
        (w->share = curl_share_init()) == NULL ||
        curl_share_setopt(w->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory starting the webhook");
    return XB_OK;
}

xb_err xb_webhook_start(struct event_base *base, const xb_webhook_config *cfg, xb_webhook **out,
                        xb_diag *d)
{
    *out = NULL;
    /* Reference-counted and thread-safe since libcurl 7.84; xb_webhook_free releases it. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return xb_fail(d, XB_ERR_INTERNAL, "cannot initialise libcurl");
    xb_webhook *w = calloc(1, sizeof *w);
    if (w == NULL) {
        curl_global_cleanup();
        return xb_fail(d, XB_ERR_NOMEM, "out of memory starting the webhook");
    }
    xb_err err = xb_webhook_configure(w, cfg, d);
    if (err != XB_OK) {
        xb_webhook_free(w);
        return err;
    }
    if ((err = xb_loop_inbox_init(&w->inbox, base, "webhook", xb_webhook_deliver, d)) != XB_OK) {
        xb_webhook_free(w);
        return err;
    }
    if (pthread_mutex_init(&w->lock, NULL) != 0)
        err = xb_fail(d, XB_ERR_INTERNAL, "cannot create the webhook queue lock");
    else if ((errno = pthread_create(&w->thread, NULL, xb_webhook_main, w)) != 0) {
        err = xb_fail(d, XB_ERR_INTERNAL, "cannot start the webhook thread: %s", strerror(errno));
        pthread_mutex_destroy(&w->lock);
    }
    if (err != XB_OK) {
        xb_loop_inbox_close(&w->inbox);
        xb_webhook_free(w);
        return err;
    }
    xb_info("webhook: validating enrollments with %s (timeout %ld ms, trust anchor %s)", w->shown,
            w->timeout_ms, w->ca_file != NULL ? w->ca_file : "the system store");
    *out = w;
    return XB_OK;
}

/* Hand a job back unanswered: the worker is going away. */
static void xb_webhook_abandon(xb_webhook_job *job)
{
    job->result = XB_ERR_POLICY_UNAVAILABLE;
    snprintf(job->reason, sizeof job->reason, "xbootd is stopping");
    job->done(job, 0);
}

void xb_webhook_stop(xb_webhook *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_mutex_unlock(&w->lock);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);
    /* The thread is gone: its transfers and queue are ours now. */
    while (w->running != NULL) {
        xb_webhook_xfer *x = w->running;
        xb_webhook_job *job = x->job;
        xb_webhook_detach(w, x);
        xb_webhook_release(x, XB_ERR_POLICY_UNAVAILABLE, "");
        xb_webhook_abandon(job);
    }
    xb_job_link *j = xb_job_list_take(&w->queue);
    while (j != NULL) {
        xb_job_link *next = j->next;
        xb_webhook_job *job = xb_webhook_job_of(j);
        j->next = NULL;
        xb_webhook_release(job->xfer, XB_ERR_POLICY_UNAVAILABLE, "");
        xb_webhook_abandon(job);
        j = next;
    }
    xb_loop_inbox_close(&w->inbox);
    pthread_mutex_destroy(&w->lock);
    xb_webhook_free(w);
}
