/* The client handle: creation, configuration and accessors (include/xboot/xboot.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "client.h"
#include "est.h"

#define XBCL_MAX_TRUST (1024 * 1024)

xboot_err xboot_client_new(xboot_client **out)
{
    if (out == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    xboot_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return XBOOT_ERR_NO_MEMORY;
    c->key_type = XBOOT_KEY_EC_P256;
    c->connect_timeout_ms = 10000;
    c->request_timeout_ms = 30000;
    c->attempts = 5;
    c->backoff_base_ms = 1000;
    c->backoff_max_ms = 30000;
    c->post = xbt_curl_post;
    c->renew_threshold = 80;
    *out = c;
    return XBOOT_OK;
}

/* Free a string that may hold a secret, wiping it first. */
static void xbcl_free_secret(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void xbcl_reset_result(xboot_client *c)
{
    EVP_PKEY_free(c->key);
    X509_free(c->cert);
    sk_X509_pop_free(c->chain, X509_free);
    c->key = NULL;
    c->cert = NULL;
    c->chain = NULL;
    c->issued = 0;
    c->detail.msg[0] = '\0';
    c->http_status = 0;
    c->server_code[0] = '\0';
    c->server_message[0] = '\0';
}

void xboot_client_free(xboot_client *c)
{
    if (c == NULL)
        return;
    xbcl_reset_result(c);
    free(c->url);
    free(c->trust_pem);
    X509_STORE_free(c->trust);
    free(c->reg_id);
    EVP_PKEY_free(c->caller_key);
    xbcl_free_secret(c->credential);
    xbcl_free_secret(c->api_key);
    free(c->store_dir);
    free(c->est_label);
    xbcl_free_secret(c->pfx_password);
    OPENSSL_cleanse(c->rdns, sizeof c->rdns);
    free(c);
}

void xbcl_progress(xboot_client *c, xboot_event ev, const char *detail)
{
    if (c->progress != NULL)
        c->progress(c->progress_arg, ev, detail);
}

void xboot__set_store_hook(xboot_client *c, xbs_step_hook hook)
{
    c->store_hook = hook;
}

/* Record why a setter refused, and return err. */
static xboot_err xbcl_refuse(xboot_client *c, xboot_err err, const char *why)
{
    snprintf(c->detail.msg, sizeof c->detail.msg, "%s", why);
    return err;
}

/* Replace *slot with a copy of value (NULL clears). */
static xboot_err xbcl_set_string(char **slot, const char *value, int secret)
{
    char *copy = NULL;
    if (value != NULL && (copy = strdup(value)) == NULL)
        return XBOOT_ERR_NO_MEMORY;
    if (secret)
        xbcl_free_secret(*slot);
    else
        free(*slot);
    *slot = copy;
    return XBOOT_OK;
}

/* "https://host[:port]" alone (or with "/" or only a query) is a base URL: the enrollment path
 * goes in front of the query. Anything with a path is the full URL already. */
xboot_err xboot_set_server(xboot_client *c, const char *url)
{
    if (c == NULL || url == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    if (strncasecmp(url, "https://", 8) != 0)
        return xbcl_refuse(c, XBOOT_ERR_INVALID_ARGUMENT,
                           "the server URL must start with https://");
    const char *host = url + 8;
    size_t host_len = strcspn(host, "/?#");
    if (host_len == 0 || strpbrk(url, " \t\r\n") != NULL || host[host_len] == '#')
        return xbcl_refuse(c, XBOOT_ERR_INVALID_ARGUMENT, "the server URL is malformed");
    const char *rest = host + host_len;
    if (strcmp(rest, "/") == 0)
        rest++;
    int base = *rest == '\0' || *rest == '?';
    size_t len = strlen(url) + sizeof "/api/certificate";
    char *full = malloc(len);
    if (full == NULL)
        return XBOOT_ERR_NO_MEMORY;
    if (base)
        snprintf(full, len, "%.*s/api/certificate%s", (int)(host + host_len - url), url, rest);
    else
        snprintf(full, len, "%s", url);
    free(c->url);
    c->url = full;
    return XBOOT_OK;
}

xboot_err xboot_set_trust_anchor_pem(xboot_client *c, const char *pem, size_t len)
{
    if (c == NULL || pem == NULL || len == 0 || len > XBCL_MAX_TRUST)
        return XBOOT_ERR_INVALID_ARGUMENT;
    X509_STORE *store = NULL;
    xboot_err e = xbc_trust_load((const uint8_t *)pem, len, &store, &c->detail);
    if (e != XBOOT_OK)
        return XBOOT_ERR_TRUST_ANCHOR;
    uint8_t *copy = malloc(len + 1);
    if (copy == NULL) {
        X509_STORE_free(store);
        return XBOOT_ERR_NO_MEMORY;
    }
    memcpy(copy, pem, len);
    copy[len] = '\0';
    free(c->trust_pem);
    X509_STORE_free(c->trust);
    c->trust_pem = copy;
    c->trust_pem_len = len;
    c->trust = store;
    return XBOOT_OK;
}

xboot_err xboot_set_trust_anchor_file(xboot_client *c, const char *path)
{
    if (c == NULL || path == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(c->detail.msg, sizeof c->detail.msg, "cannot open %s: %s", path, strerror(errno));
        return XBOOT_ERR_TRUST_ANCHOR;
    }
    char *buf = malloc(XBCL_MAX_TRUST + 1);
    size_t n = buf ? fread(buf, 1, XBCL_MAX_TRUST + 1, f) : 0;
    int bad = buf == NULL || ferror(f) || n == 0 || n > XBCL_MAX_TRUST;
    fclose(f);
    xboot_err e = XBOOT_ERR_TRUST_ANCHOR;
    if (buf == NULL)
        e = XBOOT_ERR_NO_MEMORY;
    else if (bad)
        snprintf(c->detail.msg, sizeof c->detail.msg, "%s is empty, unreadable or over 1 MiB",
                 path);
    else if ((e = xboot_set_trust_anchor_pem(c, buf, n)) != XBOOT_OK)
        snprintf(c->detail.msg + strlen(c->detail.msg),
                 sizeof c->detail.msg - strlen(c->detail.msg), " (%s)", path);
    free(buf);
    return e;
}

xboot_err xboot_set_registration_id(xboot_client *c, const char *id)
{
    if (c == NULL || id == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    if (!xboot_registration_id_valid(id))
        return xbcl_refuse(c, XBOOT_ERR_INVALID_REGISTRATION_ID,
                           xboot_strerror(XBOOT_ERR_INVALID_REGISTRATION_ID));
    return xbcl_set_string(&c->reg_id, id, 0);
}

xboot_err xboot_set_subject(xboot_client *c, const char *subject)
{
    if (c == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    xbc_rdn rdns[XBC_MAX_RDNS];
    size_t n = 0;
    xboot_err e = xbc_subject_parse(subject, rdns, &n, &c->detail);
    if (e != XBOOT_OK)
        return e;
    memcpy(c->rdns, rdns, sizeof rdns);
    c->n_rdns = n;
    return XBOOT_OK;
}

xboot_err xboot_set_key_type(xboot_client *c, xboot_key_type type)
{
    if (c == NULL ||
        (type != XBOOT_KEY_EC_P256 && type != XBOOT_KEY_EC_P384 && type != XBOOT_KEY_RSA_2048))
        return XBOOT_ERR_INVALID_ARGUMENT;
    c->key_type = type;
    return XBOOT_OK;
}

xboot_err xboot_set_key(xboot_client *c, EVP_PKEY *key)
{
    if (c == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    if (key != NULL && !EVP_PKEY_up_ref(key))
        return XBOOT_ERR_INTERNAL;
    EVP_PKEY_free(c->caller_key);
    c->caller_key = key;
    return XBOOT_OK;
}

/* Secrets go into HTTP headers: no line breaks. */
static int xbcl_header_safe(const char *s)
{
    return s == NULL || strpbrk(s, "\r\n") == NULL;
}

xboot_err xboot_set_credential(xboot_client *c, const char *secret)
{
    if (c == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    if (!xbcl_header_safe(secret))
        return xbcl_refuse(c, XBOOT_ERR_INVALID_ARGUMENT, "the credential has a line break");
    return xbcl_set_string(&c->credential, secret, 1);
}

xboot_err xboot_set_api_key(xboot_client *c, const char *key)
{
    if (c == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    if (!xbcl_header_safe(key))
        return xbcl_refuse(c, XBOOT_ERR_INVALID_ARGUMENT, "the API key has a line break");
    return xbcl_set_string(&c->api_key, key, 1);
}

xboot_err xboot_set_timeouts(xboot_client *c, long connect_ms, long request_ms)
{
    if (c == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    if (connect_ms <= 0 || request_ms <= 0 || connect_ms > 600000 || request_ms > 3600000)
        return xbcl_refuse(c, XBOOT_ERR_INVALID_ARGUMENT,
                           "timeouts: connect 1..600000 ms, request 1..3600000 ms");
    c->connect_timeout_ms = connect_ms;
    c->request_timeout_ms = request_ms;
    return XBOOT_OK;
}

xboot_err xboot_set_retries(xboot_client *c, int attempts, long base_ms, long max_ms)
{
    if (c == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    if (attempts < 1 || attempts > 20 || base_ms < 0 || max_ms < base_ms || max_ms > 3600000)
        return xbcl_refuse(c, XBOOT_ERR_INVALID_ARGUMENT,
                           "retries: 1..20 attempts, 0 <= base <= max <= 3600000 ms");
    c->attempts = attempts;
    c->backoff_base_ms = base_ms;
    c->backoff_max_ms = max_ms;
    return XBOOT_OK;
}

xboot_err xboot_set_store_dir(xboot_client *c, const char *dir)
{
    if (c == NULL || (dir != NULL && *dir == '\0'))
        return XBOOT_ERR_INVALID_ARGUMENT;
    return xbcl_set_string(&c->store_dir, dir, 0);
}

xboot_err xboot_set_pfx(xboot_client *c, int enable, const char *password)
{
    if (c == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    xboot_err e = xbcl_set_string(&c->pfx_password, password, 1);
    if (e == XBOOT_OK)
        c->pfx = enable != 0;
    return e;
}

xboot_err xboot_set_protocol(xboot_client *c, xboot_protocol protocol)
{
    if (c == NULL || (protocol != XBOOT_PROTOCOL_XBOOT && protocol != XBOOT_PROTOCOL_EST))
        return XBOOT_ERR_INVALID_ARGUMENT;
    c->protocol = protocol;
    return XBOOT_OK;
}

xboot_err xboot_set_est_label(xboot_client *c, const char *label)
{
    if (c == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    /* It becomes a path segment of the URL: nothing that could escape it. */
    if (label != NULL && !xbe_label_valid(label))
        return xbcl_refuse(c, XBOOT_ERR_INVALID_ARGUMENT,
                           "the EST label must be 1..64 of [A-Za-z0-9-_.], not . or ..");
    return xbcl_set_string(&c->est_label, label, 0);
}

xboot_err xboot_set_renew_threshold(xboot_client *c, int percent)
{
    if (c == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    if (percent < 1 || percent > 99)
        return xbcl_refuse(c, XBOOT_ERR_INVALID_ARGUMENT, "the renewal threshold must be 1..99");
    c->renew_threshold = percent;
    return XBOOT_OK;
}

xboot_err xboot_set_progress(xboot_client *c, xboot_progress_fn fn, void *arg)
{
    if (c == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    c->progress = fn;
    c->progress_arg = arg;
    return XBOOT_OK;
}

EVP_PKEY *xboot_key(const xboot_client *c)
{
    return c ? c->key : NULL;
}

X509 *xboot_certificate(const xboot_client *c)
{
    return c ? c->cert : NULL;
}

STACK_OF(X509) * xboot_chain(const xboot_client *c)
{
    return c ? c->chain : NULL;
}

int xboot_was_issued(const xboot_client *c)
{
    return c ? c->issued : 0;
}

const char *xboot_error_detail(const xboot_client *c)
{
    return c ? c->detail.msg : "";
}

int xboot_http_status(const xboot_client *c)
{
    return c ? c->http_status : 0;
}

const char *xboot_server_error_code(const xboot_client *c)
{
    return c ? c->server_code : "";
}

const char *xboot_server_error_message(const xboot_client *c)
{
    return c ? c->server_message : "";
}
