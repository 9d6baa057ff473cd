/* The transport of libxboot: one HTTPS request (POST, or GET for EST cacerts). Enrollment
 * logic (enroll.c) knows nothing of libcurl; transport_curl.c is the default, and a caller-supplied
 * transport (RTOS sockets, a modem's HTTP stack) is one more implementation of xbt_post_fn. */
#ifndef XBOOT_LIB_TRANSPORT_H
#define XBOOT_LIB_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "xboot/xboot.h"

typedef struct xbt_request {
    const char *method;       /* "GET" or "POST"; NULL means POST. GET sends no body. */
    const char *url;          /* https://... */
    const char *content_type; /* of the body */
    const char *accept;
    const uint8_t *body;
    size_t body_len;
    const char *basic_user; /* HTTP Basic when both are set */
    const char *basic_password;
    const char *api_key; /* x-functions-key header when set */
    /* The TLS client identity (EST renewal), all NULL for none. The key may live in a provider
     * (TPM, PKCS#11): the transport only hands the objects to the TLS stack, never exports
     * them. client_chain (may be NULL) holds intermediates sent after the certificate. */
    EVP_PKEY *client_key;
    X509 *client_cert;
    STACK_OF(X509) * client_chain;
    /* The server's TLS certificate must chain to these PEM certificates and name the host. */
    const uint8_t *trust_pem;
    size_t trust_pem_len;
    long connect_timeout_ms;
    long request_timeout_ms;
} xbt_request;

typedef struct xbt_response {
    long status;   /* HTTP status; 0 when no answer arrived */
    uint8_t *body; /* malloc'd, NUL-terminated (body_len excludes the NUL) */
    size_t body_len;
    long retry_after_s; /* Retry-After in seconds, -1 when absent */
} xbt_response;

void xbt_response_clear(xbt_response *r);

/* Send req and fill resp. XBOOT_OK when any HTTP answer arrived (whatever its status);
 * XBOOT_ERR_SERVER_UNTRUSTED when the server's certificate failed verification (nothing was
 * sent); XBOOT_ERR_NETWORK for connection failures and timeouts; XBOOT_ERR_BAD_RESPONSE for an
 * answer over 1 MiB. */
/* (The name is historical: it sends req->method.) */
typedef xboot_err (*xbt_post_fn)(void *ctx, const xbt_request *req, xbt_response *resp,
                                 xbc_detail *detail);

/* The libcurl transport (ctx is unused: each call is one easy handle). */
xboot_err xbt_curl_post(void *ctx, const xbt_request *req, xbt_response *resp, xbc_detail *detail);

#endif
