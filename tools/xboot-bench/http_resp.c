#include "http_resp.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { ST_HEAD, ST_BODY, ST_CHUNK_SIZE, ST_CHUNK_DATA, ST_CHUNK_CRLF, ST_TRAILER, ST_DONE };

void xbb_http_resp_reset(xbb_http_resp *r)
{
    r->state = ST_HEAD;
    r->status = 0;
    r->close = 0;
    r->chunked = 0;
    r->content_length = -1;
    r->chunk_left = 0;
    r->body_len = 0;
}

void xbb_http_resp_free(xbb_http_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

static int xbb_body_append(xbb_http_resp *r, struct evbuffer *in, size_t n)
{
    if (r->body_len + n > XBB_HTTP_MAX_BODY)
        return -1;
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (b == NULL)
            return -1;
        r->body = b;
        r->body_cap = cap;
    }
    if (n > 0 && evbuffer_remove(in, r->body + r->body_len, n) != (int)n)
        return -1;
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return 0;
}

/* Case-insensitive "does the comma-separated header value contain token". */
static int xbb_has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t n = strcspn(v, ",");
        size_t m = n;
        while (m > 0 && (v[m - 1] == ' ' || v[m - 1] == '\t'))
            m--;
        if (m == tl && strncasecmp(v, token, tl) == 0)
            return 1;
        v += n;
    }
    return 0;
}

static int xbb_parse_header(xbb_http_resp *r, char *line)
{
    char *colon = strchr(line, ':');
    if (colon == NULL)
        return -1;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (strcasecmp(line, "Content-Length") == 0) {
        char *end = NULL;
        if (!isdigit((unsigned char)*v))
            return -1;
        long long n = strtoll(v, &end, 10);
        if (n < 0 || n > XBB_HTTP_MAX_BODY)
            return -1;
        r->content_length = n;
    } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
        r->chunked = xbb_has_token(v, "chunked");
    } else if (strcasecmp(line, "Connection") == 0) {
        if (xbb_has_token(v, "close"))
            r->close = 1;
        else if (xbb_has_token(v, "keep-alive"))
            r->close = 0;
    }
    return 0;
}

/* The status line and headers, once all of them are in. */
static int xbb_parse_head(xbb_http_resp *r, struct evbuffer *in)
{
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0)
        return evbuffer_get_length(in) > XBB_HTTP_MAX_HEAD ? XBB_HTTP_BAD : XBB_HTTP_MORE;
    if ((size_t)end.pos + 4 > XBB_HTTP_MAX_HEAD)
        return XBB_HTTP_BAD;
    char head[XBB_HTTP_MAX_HEAD + 1];
    size_t n = (size_t)end.pos + 4;
    if (evbuffer_remove(in, head, n) != (int)n)
        return XBB_HTTP_BAD;
    head[n - 4] = '\0';
    char *save = NULL;
    char *line = strtok_r(head, "\r\n", &save);
    int minor = 0;
    if (line == NULL || strncmp(line, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)line[7]) ||
        line[8] != ' ' || !isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
        !isdigit((unsigned char)line[11]))
        return XBB_HTTP_BAD;
    minor = line[7] - '0';
    r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    r->close = minor == 0; /* HTTP/1.0 closes unless it says keep-alive */
    while ((line = strtok_r(NULL, "\r\n", &save)) != NULL)
        if (xbb_parse_header(r, line) != 0)
            return XBB_HTTP_BAD;
    if (r->status < 200)
        return XBB_HTTP_BAD; /* 1xx: we never send Expect, so none should come */
    if (r->chunked)
        r->state = ST_CHUNK_SIZE;
    else if (r->content_length == 0 || r->status == 204 || r->status == 304)
        r->state = ST_DONE;
    else
        r->state = ST_BODY;
    if (r->state == ST_BODY && r->content_length < 0)
        r->close = 1; /* the body runs to EOF */
    return XBB_HTTP_MORE;
}

static int xbb_parse_chunk_size(xbb_http_resp *r, struct evbuffer *in)
{
    size_t n = 0;
    char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
    if (line == NULL)
        return evbuffer_get_length(in) > 64 ? XBB_HTTP_BAD : XBB_HTTP_MORE;
    char *end = NULL;
    unsigned long long size = strtoull(line, &end, 16);
    int bad = end == line || (*end != '\0' && *end != ';') || size > XBB_HTTP_MAX_BODY;
    free(line);
    if (bad)
        return XBB_HTTP_BAD;
    r->chunk_left = (size_t)size;
    r->state = size == 0 ? ST_TRAILER : ST_CHUNK_DATA;
    return XBB_HTTP_MORE;
}

int xbb_http_resp_feed(xbb_http_resp *r, struct evbuffer *in)
{
    /* Every step consumes input or moves the state on, so this bound is never the limit. */
    for (size_t step = 0; step < 4 * (size_t)(XBB_HTTP_MAX_BODY + XBB_HTTP_MAX_HEAD); step++) {
        size_t have = evbuffer_get_length(in);
        int rc = XBB_HTTP_MORE;
        switch (r->state) {
        case ST_HEAD:
            rc = xbb_parse_head(r, in);
            if (rc == XBB_HTTP_MORE && r->state == ST_HEAD)
                return XBB_HTTP_MORE;
            break;
        case ST_BODY: {
            if (r->content_length < 0) { /* until EOF */
                if (xbb_body_append(r, in, have) != 0)
                    return XBB_HTTP_BAD;
                return XBB_HTTP_MORE;
            }
            size_t want = (size_t)r->content_length - r->body_len;
            size_t take = have < want ? have : want;
            if (xbb_body_append(r, in, take) != 0)
                return XBB_HTTP_BAD;
            if (r->body_len < (size_t)r->content_length)
                return XBB_HTTP_MORE;
            r->state = ST_DONE;
            break;
        }
        case ST_CHUNK_SIZE:
            rc = xbb_parse_chunk_size(r, in);
            if (rc == XBB_HTTP_MORE && r->state == ST_CHUNK_SIZE)
                return XBB_HTTP_MORE;
            break;
        case ST_CHUNK_DATA: {
            size_t take = have < r->chunk_left ? have : r->chunk_left;
            if (xbb_body_append(r, in, take) != 0)
                return XBB_HTTP_BAD;
            r->chunk_left -= take;
            if (r->chunk_left > 0)
                return XBB_HTTP_MORE;
            r->state = ST_CHUNK_CRLF;
            break;
        }
        case ST_CHUNK_CRLF: {
            if (have < 2)
                return XBB_HTTP_MORE;
            char crlf[2];
            evbuffer_remove(in, crlf, 2);
            if (crlf[0] != '\r' || crlf[1] != '\n')
                return XBB_HTTP_BAD;
            r->state = ST_CHUNK_SIZE;
            break;
        }
        case ST_TRAILER: { /* trailer lines until an empty one */
            size_t n = 0;
            char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
            if (line == NULL)
                return have > XBB_HTTP_MAX_HEAD ? XBB_HTTP_BAD : XBB_HTTP_MORE;
            free(line);
            if (n == 0)
                r->state = ST_DONE;
            break;
        }
        case ST_DONE:
            if (xbb_body_append(r, in, 0) != 0) /* NUL-terminates, even an empty body */
                return XBB_HTTP_BAD;
            return XBB_HTTP_DONE;
        }
        if (rc == XBB_HTTP_BAD)
            return XBB_HTTP_BAD;
    }
    return XBB_HTTP_BAD;
}

int xbb_http_resp_eof(xbb_http_resp *r)
{
    if (r->state == ST_BODY && r->content_length < 0) {
        r->state = ST_DONE;
        return xbb_body_append(r, NULL, 0) == 0 ? XBB_HTTP_DONE : XBB_HTTP_BAD;
    }
    return r->state == ST_DONE ? XBB_HTTP_DONE : XBB_HTTP_BAD;
}
