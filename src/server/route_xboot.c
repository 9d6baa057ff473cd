/* POST /api/certificate: the HTTP side of the original XBoot.Server wire format (function key,
 * body size, Content-Type header, reply). The body format itself is xboot_wire.h. */
#include "http.h"

#include <string.h>

#include <sys/queue.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "xboot_wire.h"

static int xb_xboot_key_equal(const char *given, const char *want)
{
    size_t gl = strlen(given), wl = strlen(want);
    /* Constant time in the key's content; the length is not a secret worth hiding. */
    return gl == wl && CRYPTO_memcmp(given, want, wl) == 0;
}

/* XB_OK when no key is configured or the request carries the right one. */
static xb_err xb_xboot_check_key(xb_exchange *ex, const char **why)
{
    const char *want = ex->srv->cfg->api_key;
    if (want == NULL || want[0] == '\0')
        return XB_OK;
    const char *given =
        evhttp_find_header(evhttp_request_get_input_headers(ex->req), "x-functions-key");
    struct evkeyvalq query;
    TAILQ_INIT(&query);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ex->req);
    const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
    if (given == NULL && qs != NULL && evhttp_parse_query_str(qs, &query) == 0)
        given = evhttp_find_header(&query, "code");
    xb_err err = XB_OK;
    if (given == NULL) {
        *why = "a function key is required (?code=KEY or header x-functions-key)";
        err = XB_ERR_UNAUTHORIZED;
    } else if (!xb_xboot_key_equal(given, want)) {
        *why = "the function key is not valid";
        err = XB_ERR_UNAUTHORIZED;
    }
    evhttp_clear_headers(&query);
    return err;
}

static void xb_xboot_answer(xb_exchange *ex, xb_err err, const xb_issued *cert, const char *message)
{
    if (err != XB_OK) {
        xb_http_reply_error(ex, err, message);
        return;
    }
    char *json = xb_xboot_encode_answer(cert, ex->srv->ca);
    snprintf(ex->serial, sizeof ex->serial, "%s", cert->serial);
    if (json == NULL) {
        /* Recorded but not sent: the device's retry with the same key gets this certificate
         * again; an operator sees the serial in the log line. Only reachable out of memory. */
        xb_http_reply_error(ex, XB_ERR_NOMEM, NULL);
        return;
    }
    ex->outcome = ex->replayed ? "replayed" : "issued";
    xb_http_reply_json(ex, 200, json);
    cJSON_free(json);
}

static void xb_xboot_enroll(xb_exchange *ex, const xb_xboot_request *wire)
{
    xb_enroll_request req = {.reg_id = wire->reg_id,
                             .csr_der = wire->csr_der,
                             .csr_len = wire->csr_len,
                             .client_addr = ex->client_addr};
    xb_enroll_start(ex, &req, xb_xboot_answer);
}

void xb_route_xboot_certificate(xb_exchange *ex)
{
    ex->enrollment = 1;
    ex->protocol = XB_PROTO_XBOOT;
    const char *why = NULL;
    xb_err err = xb_xboot_check_key(ex, &why);
    if (err != XB_OK) {
        xb_http_reply_error(ex, err, why);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(ex->req);
    size_t len = evbuffer_get_length(in);
    if (len > XB_MAX_BODY) {
        xb_http_reply_error(ex, XB_ERR_PAYLOAD_TOO_LARGE, "the request body is larger than 64 KiB");
        return;
    }
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(ex->req), "Content-Type");
    if (!xb_xboot_content_type_ok(ct)) {
        xb_http_reply_error(ex, XB_ERR_UNSUPPORTED_MEDIA_TYPE,
                            "send application/json (or no Content-Type)");
        return;
    }
    const char *body = len > 0 ? (const char *)evbuffer_pullup(in, (ev_ssize_t)len) : "";
    xb_xboot_request wire;
    memset(&wire, 0, sizeof wire);
    xb_diag d = {""};
    err = body ? xb_xboot_decode(body, len, &wire, &d) : XB_ERR_NOMEM;
    if (wire.reg_id[0] != '\0')
        snprintf(ex->reg_id, sizeof ex->reg_id, "%s", wire.reg_id);
    if (err != XB_OK)
        xb_http_reply_error(ex, err, xb_diag_message(&d, err));
    else
        xb_xboot_enroll(ex, &wire);
    xb_xboot_request_clear(&wire);
}
