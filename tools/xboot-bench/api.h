/* The enrollment protocols the benchmark speaks: XBoot's JSON API (POST /api/certificate,
 * base64 DER in JSON, docs/api.md), EST (RFC 7030 simpleenroll: base64 PKCS#10 in, base64
 * certs-only PKCS#7 out, HTTP Basic as the device; docs/est.md) and CFSSL's (POST
 * /api/v1/cfssl/sign, PEM in JSON, as `cfssl serve` of Debian's golang-cfssl 1.2 answers).
 * Requests are built whole before timing starts. */
#ifndef XBB_API_H
#define XBB_API_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "pool.h"

typedef enum xbb_api { XBB_API_XBOOT, XBB_API_CFSSL, XBB_API_EST } xbb_api;

int xbb_api_parse(const char *name, xbb_api *out);
const char *xbb_api_name(xbb_api api);

/* The complete HTTP/1.1 request (head and body in one buffer, so it leaves as one write and
 * one TLS record) for entry e. api_key may be NULL; close asks the server to close after the
 * answer. malloc'd; NULL if out of memory. */
char *xbb_api_request(xbb_api api, const xbb_pool_entry *e, const char *host_header,
                      const char *api_key, int close, size_t *len);

/* A decoded 200 answer: the certificate DER and, for XBoot, the chain it carried (EST and
 * CFSSL answers carry none: --untrusted supplies the intermediates). */
typedef struct xbb_answer {
    uint8_t *cert;
    size_t cert_len;
    cJSON *root;
    const cJSON *chain; /* array of base64 DER strings, or NULL */
} xbb_answer;

/* 0, or -1 if the body is not the API's success answer. */
int xbb_api_answer(xbb_api api, const char *body, size_t len, xbb_answer *out);
size_t xbb_answer_chain_count(const xbb_answer *a);
/* The i-th chain certificate as DER (malloc'd). 0, or -1. */
int xbb_answer_chain_der(const xbb_answer *a, size_t i, uint8_t **der, size_t *len);
void xbb_answer_clear(xbb_answer *a);

#endif
