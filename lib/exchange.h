/* One request to the server with the library's retry policy: network errors and busy answers
 * (429/502/503/504) are retried with backoff, any other answer is judged once. Shared by every
 * protocol and operation (XBoot JSON enrollment, EST simpleenroll, simplereenroll, cacerts), so
 * retries, Retry-After and the server's own error words behave the same everywhere. */
#ifndef XBOOT_LIB_EXCHANGE_H
#define XBOOT_LIB_EXCHANGE_H

#include "client.h"

/* How the server writes its error answers. */
typedef enum xbx_errors {
    XBX_ERRORS_JSON, /* {"error","message"} (docs/api.md) */
    XBX_ERRORS_TEXT, /* text/plain "code: message" (EST) */
} xbx_errors;

typedef struct xbx_call {
    const char *method; /* "GET" or "POST" */
    const char *url;
    const char *content_type, *accept;
    const uint8_t *body;
    size_t body_len;
    xbx_errors errors;
    int basic_auth; /* send the credential (if any) as HTTP Basic */
    /* TLS client identity (all NULL: none). Borrowed. */
    EVP_PKEY *client_key;
    X509 *client_cert;
    STACK_OF(X509) * client_chain;
    int announce; /* report XBOOT_EVENT_SENDING_CSR before the first attempt */
} xbx_call;

/* Send the call, retrying as the handle says; on XBOOT_OK resp holds a 200 answer and the
 * handle's HTTP status/server error fields say 200 and nothing. Otherwise they hold the last
 * answer's status and the server's words, and detail says why. */
xboot_err xbx_exchange(xboot_client *c, const xbx_call *call, xbt_response *resp);

#endif
