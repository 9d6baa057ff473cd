/* The default transport of libxboot: one HTTPS request with libcurl (lib/transport.h).
 *
 * The server is verified against the configured trust anchor only (never the system store),
 * host name included, with TLS 1.2 or later; no redirects are followed, and only https is
 * spoken. libcurl initialises itself on first use (thread-safe since 7.84; Debian 12 has
 * 7.88); the library never calls curl_global_cleanup, which belongs to the application. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "transport.h"

#define XBT_MAX_BODY (1024 * 1024)

void xbt_response_clear(xbt_response *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    r->status = 0;
    r->retry_after_s = -1;
}

static size_t xbt_collect(char *data, size_t size, size_t nmemb, void *arg)
{
    xbt_response *r = arg;
    size_t n = size * nmemb;
    if (r->body_len + n > XBT_MAX_BODY)
        return 0; /* CURLE_WRITE_ERROR: answers this large are not enrollment answers */
    uint8_t *grown = realloc(r->body, r->body_len + n + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + r->body_len, data, n);
    r->body = grown;
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

static long xbt_retry_after(CURL *h)
{
    struct curl_header *hdr = NULL;
    if (curl_easy_header(h, "Retry-After", 0, CURLH_HEADER, -1, &hdr) != CURLHE_OK)
        return -1;
    char *end = NULL;
    long s = strtol(hdr->value, &end, 10);
    /* Only the delta-seconds form; an HTTP date is rare from API servers and ignored. */
    return (end != hdr->value && *end == '\0' && s >= 0) ? s : -1;
}

static xboot_err xbt_map_error(CURLcode rc, const char *errbuf, xbc_detail *detail)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    ERR_clear_error(); /* libcurl's own OpenSSL errors are in errbuf already */
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
        return xbc_fail(detail, XBOOT_ERR_SERVER_UNTRUSTED, "%s", why);
    case CURLE_SSL_CACERT_BADFILE:
        return xbc_fail(detail, XBOOT_ERR_TRUST_ANCHOR, "%s", why);
    case CURLE_WRITE_ERROR:
        return xbc_fail(detail, XBOOT_ERR_BAD_RESPONSE, "answer larger than %d bytes",
                        XBT_MAX_BODY);
    case CURLE_NOT_BUILT_IN:
    case CURLE_UNKNOWN_OPTION:
        return xbc_fail(detail, XBOOT_ERR_INTERNAL,
                        "libcurl cannot present a client certificate (needs its OpenSSL "
                        "backend): %s",
                        why);
    case CURLE_SSL_CERTPROBLEM:
        return xbc_fail(detail, XBOOT_ERR_KEY, "the TLS client identity cannot be used: %s", why);
    case CURLE_OUT_OF_MEMORY:
        return xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "%s", why);
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT, "%s", why);
    default:
        return xbc_fail(detail, XBOOT_ERR_NETWORK, "%s", why);
    }
}

/* 1 for a GET (no body, no Content-Type). */
static int xbt_is_get(const xbt_request *req)
{
    return req->method != NULL && strcmp(req->method, "GET") == 0;
}

/* libcurl calls this with its OpenSSL SSL_CTX before the handshake: the client identity goes
 * in as objects, not files, so a key held by a provider (TPM, PKCS#11) signs the handshake
 * where it lives. Returning an error aborts the transfer (CURLE_SSL_CERTPROBLEM). */
static CURLcode xbt_ssl_ctx(CURL *h, void *sslctx, void *arg)
{
    (void)h;
    SSL_CTX *ctx = sslctx;
    const xbt_request *req = arg;
    if (SSL_CTX_use_certificate(ctx, req->client_cert) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, req->client_key) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        return CURLE_SSL_CERTPROBLEM;
    for (int i = 0; i < sk_X509_num(req->client_chain); i++)
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(req->client_chain, i)) != 1)
            return CURLE_SSL_CERTPROBLEM;
    return CURLE_OK;
}

/* Headers of the request; NULL on no memory. */
static struct curl_slist *xbt_headers(const xbt_request *req)
{
    char line[512];
    struct curl_slist *list = NULL, *next;
    if (!xbt_is_get(req)) {
        snprintf(line, sizeof line, "Content-Type: %s", req->content_type);
        if ((next = curl_slist_append(list, line)) == NULL)
            goto fail;
        list = next;
    }
    snprintf(line, sizeof line, "Accept: %s", req->accept);
    if ((next = curl_slist_append(list, line)) == NULL)
        goto fail;
    list = next;
    /* curl adds "Expect: 100-continue" for larger bodies; xbootd and Azure answer at once. */
    if ((next = curl_slist_append(list, "Expect:")) == NULL)
        goto fail;
    list = next;
    if (req->api_key != NULL) {
        size_t need = strlen(req->api_key) + 20;
        char *h = malloc(need);
        if (h == NULL)
            goto fail;
        snprintf(h, need, "x-functions-key: %s", req->api_key);
        next = curl_slist_append(list, h);
        OPENSSL_cleanse(h, need);
        free(h);
        if (next == NULL)
            goto fail;
        list = next;
    }
    return list;
fail:
    curl_slist_free_all(list);
    return NULL;
}

static int xbt_setup(CURL *h, const xbt_request *req, struct curl_slist *headers, char *errbuf,
                     xbt_response *resp)
{
    struct curl_blob ca = {
        .data = (void *)req->trust_pem, .len = req->trust_pem_len, .flags = CURL_BLOB_COPY};
    CURLcode rc = CURLE_OK;
#define XBT_SET(opt, val)                                                                          \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(h, opt, val);                                                    \
    } while (0)
    XBT_SET(CURLOPT_ERRORBUFFER, errbuf);
    XBT_SET(CURLOPT_URL, req->url);
    XBT_SET(CURLOPT_PROTOCOLS_STR, "https");
    XBT_SET(CURLOPT_FOLLOWLOCATION, 0L);
    XBT_SET(CURLOPT_NOSIGNAL, 1L);
    XBT_SET(CURLOPT_CAINFO_BLOB, &ca);
    XBT_SET(CURLOPT_CAPATH, NULL);
    XBT_SET(CURLOPT_SSL_VERIFYPEER, 1L);
    XBT_SET(CURLOPT_SSL_VERIFYHOST, 2L);
    XBT_SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    XBT_SET(CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    XBT_SET(CURLOPT_TIMEOUT_MS, req->request_timeout_ms);
    XBT_SET(CURLOPT_USERAGENT, "libxboot/" XBOOT_LIB_VERSION);
    XBT_SET(CURLOPT_HTTPHEADER, headers);
    if (xbt_is_get(req)) {
        XBT_SET(CURLOPT_HTTPGET, 1L);
    } else {
        XBT_SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        XBT_SET(CURLOPT_POSTFIELDS, (const char *)req->body);
    }
    if (req->client_key != NULL && req->client_cert != NULL) {
        /* A fresh SSL_CTX per easy handle: no session or identity leaks between requests. */
        XBT_SET(CURLOPT_SSL_SESSIONID_CACHE, 0L);
        XBT_SET(CURLOPT_SSL_CTX_DATA, (void *)req);
        XBT_SET(CURLOPT_SSL_CTX_FUNCTION, xbt_ssl_ctx);
    }
    XBT_SET(CURLOPT_WRITEFUNCTION, xbt_collect);
    XBT_SET(CURLOPT_WRITEDATA, resp);
    if (req->basic_user != NULL && req->basic_password != NULL) {
        XBT_SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        XBT_SET(CURLOPT_USERNAME, req->basic_user);
        XBT_SET(CURLOPT_PASSWORD, req->basic_password);
    }
#undef XBT_SET
    return rc == CURLE_OK;
}

xboot_err xbt_curl_post(void *ctx, const xbt_request *req, xbt_response *resp, xbc_detail *detail)
{
    (void)ctx;
    xbt_response_clear(resp);
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *h = curl_easy_init();
    struct curl_slist *headers = h ? xbt_headers(req) : NULL;
    if (h == NULL || headers == NULL) {
        curl_easy_cleanup(h);
        return xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "HTTP client");
    }
    xboot_err e = XBOOT_OK;
    if (!xbt_setup(h, req, headers, errbuf, resp)) {
        e = xbc_fail(detail, XBOOT_ERR_INTERNAL, "libcurl lacks a needed option (needs 7.85+)");
    } else {
        CURLcode rc = curl_easy_perform(h);
        if (rc != CURLE_OK) {
            e = xbt_map_error(rc, errbuf, detail);
        } else {
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
            resp->retry_after_s = xbt_retry_after(h);
        }
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    if (e != XBOOT_OK) {
        free(resp->body);
        resp->body = NULL;
        resp->body_len = 0;
    }
    return e;
}
