/* An incremental HTTP/1.1 response parser over a libevent input buffer: status line, the
 * headers that frame the body (Content-Length, Transfer-Encoding: chunked, Connection), and the
 * body, which is copied into a buffer kept across requests (no allocation once warm). */
#ifndef XBB_HTTP_RESP_H
#define XBB_HTTP_RESP_H

#include <stddef.h>

#include <event2/buffer.h>

/* Answers larger than these are treated as broken: nothing the API sends comes close. */
#define XBB_HTTP_MAX_HEAD (16 * 1024)
#define XBB_HTTP_MAX_BODY (1024 * 1024)

enum { XBB_HTTP_MORE = 0, XBB_HTTP_DONE = 1, XBB_HTTP_BAD = -1 };

typedef struct xbb_http_resp {
    int state;  /* internal */
    int status; /* 100..599 once the status line is read */
    int close;  /* the server will close the connection after this answer */
    int chunked;
    long long content_length; /* -1: not given (body ends at EOF, unless chunked) */
    size_t chunk_left;
    char *body; /* NUL-terminated; owned, reused */
    size_t body_len, body_cap;
} xbb_http_resp;

/* Prepare for the next answer (keeps the body buffer). */
void xbb_http_resp_reset(xbb_http_resp *r);
/* Consume what has arrived. XBB_HTTP_MORE, XBB_HTTP_DONE or XBB_HTTP_BAD. */
int xbb_http_resp_feed(xbb_http_resp *r, struct evbuffer *in);
/* The connection reached EOF: XBB_HTTP_DONE if that completes the answer, else XBB_HTTP_BAD. */
int xbb_http_resp_eof(xbb_http_resp *r);
void xbb_http_resp_free(xbb_http_resp *r);

#endif
