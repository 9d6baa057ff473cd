/* POST /api/certificate: the HTTP side of the original XBoot.Server wire format (function key,
 * body size, Content-Type header, reply). The body format itself is xboot_wire.h. */
#include "http.h"

#include <string.h>

#include <sys/queue.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "policy.h"
#include "xboot_wire.h"

/* The function key as the original took it: header x-functions-key, else ?code=KEY. The policy
 * judges it (policy.c); query holds the parsed query string, which the result may point into. */
static const char *xb_xboot_function_key(xb_exchange *ex, struct evkeyvalq *query)
{
    const char *given =
        evhttp_find_header(evhttp_request_get_input_headers(ex->req), "x-functions-key");
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ex->req);
    const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
    if (given == NULL && qs != NULL && evhttp_parse_query_str(qs, query) == 0)
        given = evhttp_find_header(query, "code");
    return given;
}

static void xb_xboot_answer(xb_exchange *ex, xb_err err, const xb_issued *cert, const char *message)
{
    if (err != XB_OK) {
        xb_http_reply_error(ex, err, message);
        return;
    }
    char *json = xb_xboot_encode_answer(cert, xb_server_ca_of(ex->srv, cert));
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
    struct evkeyvalq query;
    TAILQ_INIT(&query);
    xb_enroll_request req = {
        .reg_id = wire->reg_id,
        .csr_der = wire->csr_der,
        .csr_len = wire->csr_len,
        .client_addr = ex->client_addr,
        .authorization =
            evhttp_find_header(evhttp_request_get_input_headers(ex->req), "Authorization"),
        .api_key = xb_xboot_function_key(ex, &query),
        .peer = xb_http_peer_cert(ex),
    };
    xb_enroll_start(ex, &req, xb_xboot_answer);
    evhttp_clear_headers(&query);
}

/* With a function key configured, a request presenting no credential at all cannot succeed
 * whatever its body says, so it is refused before the body is read, as the original did. Any
 * other request is the policy's to judge. */
static int xb_xboot_refused_early(xb_exchange *ex)
{
    const char *want = ex->srv->cfg->api_key;
    struct evkeyvalq *in = evhttp_request_get_input_headers(ex->req);
    if (want[0] == '\0' || evhttp_find_header(in, "Authorization") != NULL ||
        xb_http_peer_cert(ex) != NULL)
        return 0;
    struct evkeyvalq query;
    TAILQ_INIT(&query);
    const char *given = xb_xboot_function_key(ex, &query);
    int ok = given != NULL && xb_policy_key_equal(given, want);
    if (!ok)
        xb_http_reply_error(ex, XB_ERR_UNAUTHORIZED,
                            given == NULL ? XB_POLICY_NO_CREDENTIALS
                                          : "the function key is not valid");
    evhttp_clear_headers(&query);
    return !ok;
}

void xb_route_xboot_certificate(xb_exchange *ex)
{
    ex->enrollment = 1;
    ex->protocol = XB_PROTO_XBOOT;
    xb_diag d = {""};
    xb_err err = xb_http_take_token(ex, NULL, &d);
    if (err != XB_OK) {
        xb_http_reply_error(ex, err, xb_diag_message(&d, err));
        return;
    }
    if (xb_xboot_refused_early(ex))
        return;
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
    err = body ? xb_xboot_decode(body, len, &wire, &d) : XB_ERR_NOMEM;
    if (wire.reg_id[0] != '\0')
        snprintf(ex->reg_id, sizeof ex->reg_id, "%s", wire.reg_id);
    if (err != XB_OK)
        xb_http_reply_error(ex, err, xb_diag_message(&d, err));
    else
        xb_xboot_enroll(ex, &wire);
    xb_xboot_request_clear(&wire);
}
