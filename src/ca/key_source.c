/* Reading the CA's PEM files from a path or an https:// object store URL (key_source.h). */
#include "key_source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "xb_url.h"

/* The whole fetch, connection included: a start or reload waits at most this long. */
#define XB_FETCH_TIMEOUT_MS 10000L

int xb_source_is_https(const char *spec)
{
    return spec != NULL && strncasecmp(spec, "https://", 8) == 0;
}

/* Any URL, so that http:// or ftp:// is refused as a URL (never shown whole: its query may be
 * a token) instead of being opened as a file path. */
static int xb_source_is_url(const char *spec)
{
    return strstr(spec, "://") != NULL;
}

xb_err xb_source_shown(const char *spec, char *shown, size_t cap, xb_diag *d)
{
    if (xb_source_is_url(spec))
        return xb_url_shown(spec, "a CA certificate, chain or key URL", shown, cap, d);
    if (strncmp(spec, "env:", 4) == 0)
        snprintf(shown, cap, "from environment variable %s", spec + 4);
    else
        snprintf(shown, cap, "%s", spec);
    return XB_OK;
}

void xb_source_free(uint8_t *buf, size_t len)
{
    if (buf == NULL)
        return;
    OPENSSL_cleanse(buf, len);
    free(buf);
}

/* The answer, into one buffer allocated at its largest size up front, so that no realloc
 * leaves copies of a key behind in freed memory. */
typedef struct xb_fetch {
    uint8_t *buf;
    size_t len;
    int too_large;
} xb_fetch;

static size_t xb_fetch_collect(char *data, size_t size, size_t nmemb, void *arg)
{
    xb_fetch *f = arg;
    size_t n = size * nmemb;
    if (n > XB_SOURCE_MAX - f->len) {
        f->too_large = 1;
        return 0; /* CURLE_WRITE_ERROR ends the transfer */
    }
    memcpy(f->buf + f->len, data, n);
    f->len += n;
    return n;
}

/* HTTPS only, peer and host verified, TLS 1.2 or later, no redirects (a 3xx is an error: an
 * object store answers the object itself), bounded in time and size. */
static xb_err xb_fetch_https(const char *url, const char *what, const char *shown,
                             const char *ca_file, xb_fetch *f, xb_diag *d)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory fetching %s %s", what, shown);
    char errbuf[CURL_ERROR_SIZE] = "";
    int set_ok =
        curl_easy_setopt(h, CURLOPT_URL, url) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, XB_FETCH_TIMEOUT_MS) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, XB_FETCH_TIMEOUT_MS) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_USERAGENT, "xbootd") == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)XB_SOURCE_MAX) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, xb_fetch_collect) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_WRITEDATA, f) == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK;
    if (set_ok && ca_file != NULL && ca_file[0] != '\0')
        set_ok = curl_easy_setopt(h, CURLOPT_CAINFO, ca_file) == CURLE_OK &&
                 curl_easy_setopt(h, CURLOPT_CAPATH, NULL) == CURLE_OK;
    if (!set_ok) {
        curl_easy_cleanup(h);
        return xb_fail(d, XB_ERR_CONFIG, "cannot set up the fetch of %s %s", what, shown);
    }
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    /* libcurl's own text names hosts and TLS problems, never the query; it is still dropped
     * should it quote the URL. */
    const char *why =
        errbuf[0] != '\0' && strstr(errbuf, url) == NULL && strchr(errbuf, '?') == NULL
            ? errbuf
            : curl_easy_strerror(rc);
    if (f->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return xb_fail(d, XB_ERR_CONFIG, "%s %s is larger than %d octets", what, shown,
                       XB_SOURCE_MAX);
    if (rc != CURLE_OK)
        return xb_fail(d, XB_ERR_CONFIG, "cannot fetch %s %s: %s", what, shown, why);
    if (status != 200)
        return xb_fail(d, XB_ERR_CONFIG, "cannot fetch %s %s: HTTP status %ld", what, shown,
                       status);
    return XB_OK;
}

xb_err xb_source_read_file(const char *path, const char *what, uint8_t **out, size_t *out_len,
                           xb_diag *d)
{
    *out = NULL;
    *out_len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return xb_fail(d, XB_ERR_CONFIG, "%s: cannot open %s: %s", what, path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > XB_SOURCE_MAX) {
        fclose(f);
        return xb_fail(d, XB_ERR_CONFIG, "%s %s: not a regular file of at most %d octets", what,
                       path, XB_SOURCE_MAX);
    }
    /* One buffer of the file's size: no realloc leaves copies of a key in freed memory. */
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size + 1);
    if (buf == NULL) {
        fclose(f);
        return xb_fail(d, XB_ERR_NOMEM, "out of memory reading %s", path);
    }
    size_t n = fread(buf, 1, size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        xb_source_free(buf, size);
        return xb_fail(d, XB_ERR_CONFIG, "%s: cannot read %s", what, path);
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return XB_OK;
}

xb_err xb_source_read(const char *spec, const char *what, const char *https_ca_file, uint8_t **out,
                      size_t *out_len, xb_diag *d)
{
    *out = NULL;
    *out_len = 0;
    if (strncmp(spec, "env:", 4) == 0) {
        /* The original's App Settings option: the PEM text itself in the environment. */
        const char *v = spec[4] != '\0' ? getenv(spec + 4) : NULL;
        if (v == NULL || v[0] == '\0')
            return xb_fail(d, XB_ERR_CONFIG, "%s from environment variable %s: not set", what,
                           spec[4] != '\0' ? spec + 4 : "(no name after env:)");
        size_t len = strlen(v);
        if (len > XB_SOURCE_MAX)
            return xb_fail(d, XB_ERR_CONFIG, "%s from environment variable %s: longer than %d",
                           what, spec + 4, XB_SOURCE_MAX);
        *out = malloc(len + 1);
        if (*out == NULL)
            return xb_fail(d, XB_ERR_NOMEM, "out of memory");
        memcpy(*out, v, len + 1);
        *out_len = len;
        return XB_OK;
    }
    if (!xb_source_is_url(spec))
        return xb_source_read_file(spec, what, out, out_len, d);
    char shown[XB_SOURCE_SHOWN_MAX];
    xb_err err = xb_url_shown(spec, what, shown, sizeof shown, d);
    if (err != XB_OK)
        return err;
    xb_fetch f = {malloc(XB_SOURCE_MAX + 1), 0, 0};
    if (f.buf == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory fetching %s %s", what, shown);
    err = xb_fetch_https(spec, what, shown, https_ca_file, &f, d);
    if (err != XB_OK) {
        xb_source_free(f.buf, f.len);
        return err;
    }
    f.buf[f.len] = '\0';
    *out = f.buf;
    *out_len = f.len;
    return XB_OK;
}
