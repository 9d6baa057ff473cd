/* EST (RFC 7030) under /.well-known/est/[label/]: the libevent adapter. It reads the request
 * and hands the enrollment to the same pipeline as the JSON API (xb_enroll_start), whose
 * policy (policy.c) authenticates, so both give the same decision for the same device; only
 * the encoding of the answer differs (est_wire.c). docs/est.md describes the behaviour. */
#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "est_server.h"
#include "xb_base64.h"
#include "xb_log.h"

#define XB_EST_PREFIX_LEN (sizeof "/.well-known/est" - 1)
#define XB_EST_PKCS7_CERTS "application/pkcs7-mime; smime-type=certs-only"

/* EST statuses for the pipeline's codes: a policy refusal is 403 (RFC 7030 has no 409), a
 * wrongly typed body 400. Everything else as on the JSON API. */
static int xb_est_status(xb_err err)
{
    switch (err) {
    case XB_ERR_ALREADY_ENROLLED:
    case XB_ERR_DEVICE_UNKNOWN:
    case XB_ERR_DEVICE_DISABLED:
        return 403;
    case XB_ERR_UNSUPPORTED_MEDIA_TYPE:
        return 400;
    default:
        return xb_err_http_status(err);
    }
}

/* text/plain "code: message": it ends up in device logs, so it names the problem. */
static void xb_est_reply_error(xb_exchange *ex, xb_err err, const char *message)
{
    int status = xb_est_status(err);
    if (status >= 500) { /* the detail is for the operator's log, as on the JSON API */
        xb_error("request id=%s %s: %s", ex->request_id, xb_err_code(err),
                 message ? message : xb_strerror(err));
        message = NULL;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(ex->req);
    if (status == 401) /* every 401, whatever the reason (RFC 7235 section 3.1) */
        evhttp_add_header(h, "WWW-Authenticate", "Basic realm=\"xboot\"");
    char text[512];
    snprintf(text, sizeof text, "%s: %s\n", xb_err_code(err), message ? message : xb_strerror(err));
    ex->outcome = xb_err_code(err);
    ex->result = err;
    xb_http_reply_text(ex, status, "text/plain; charset=utf-8", text);
}

static void xb_est_reply_base64(xb_exchange *ex, const char *content_type, const char *lines)
{
    evhttp_add_header(evhttp_request_get_output_headers(ex->req), "Content-Transfer-Encoding",
                      "base64");
    xb_http_reply_text(ex, 200, content_type, lines);
}

static void xb_est_answer(xb_exchange *ex, xb_err err, const xb_issued *cert, const char *message)
{
    if (err != XB_OK) {
        xb_est_reply_error(ex, err, message);
        return;
    }
    snprintf(ex->serial, sizeof ex->serial, "%s", cert->serial);
    /* Only the issued certificate (RFC 7030 section 4.2.3); the chain comes from cacerts. */
    const uint8_t *der = cert->der;
    uint8_t *p7 = NULL;
    size_t p7_len = 0;
    xb_diag d = {""};
    err = xb_est_pkcs7_certs(&der, &cert->der_len, 1, &p7, &p7_len, &d);
    char *lines = err == XB_OK ? xb_base64_encode_lines(p7, p7_len, NULL) : NULL;
    OPENSSL_free(p7);
    if (lines == NULL) {
        /* Recorded but not sent: the device's retry with the same key gets it again. */
        xb_est_reply_error(ex, err != XB_OK ? err : XB_ERR_NOMEM, xb_diag_message(&d, err));
        return;
    }
    ex->outcome = ex->replayed ? "replayed" : "issued";
    xb_est_reply_base64(ex, XB_EST_PKCS7_CERTS, lines);
    free(lines);
}

/* The body, its media type and transfer encoding, as a DER CSR in *der. */
static xb_err xb_est_read_body(xb_exchange *ex, uint8_t **der, size_t *der_len, xb_diag *d)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(ex->req);
    struct evbuffer *body = evhttp_request_get_input_buffer(ex->req);
    size_t len = evbuffer_get_length(body);
    if (len > XB_MAX_BODY)
        return xb_fail(d, XB_ERR_PAYLOAD_TOO_LARGE, "the request body is larger than 64 KiB");
    const char *ct = evhttp_find_header(in, "Content-Type");
    if (!xb_est_media_type_is(ct, "application/pkcs10"))
        return xb_fail(d, XB_ERR_UNSUPPORTED_MEDIA_TYPE,
                       "Content-Type must be application/pkcs10, not '%.100s'", ct ? ct : "(none)");
    /* RFC 7030 requires "base64"; clients that omit the header or lowercase it are common. */
    const char *cte = evhttp_find_header(in, "Content-Transfer-Encoding");
    if (cte != NULL && !xb_est_media_type_is(cte, "base64"))
        return xb_fail(d, XB_ERR_MALFORMED_REQUEST,
                       "Content-Transfer-Encoding must be base64, not '%.100s'", cte);
    const char *text = len > 0 ? (const char *)evbuffer_pullup(body, (ev_ssize_t)len) : "";
    if (text == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    return xb_est_decode_body(text, len, der, der_len, d);
}

/* tls-unique proof of possession ([est] require_pop): the CSR's challengePassword is base64
 * of the first Finished message of this connection's handshake (RFC 7030 section 3.5). */
static xb_err xb_est_check_pop(SSL *ssl, const xb_csr *csr, xb_diag *d)
{
    if (ssl == NULL)
        return xb_fail(d, XB_ERR_MALFORMED_REQUEST,
                       "[est] require_pop needs the tls-unique of a TLS connection; this request "
                       "came over plain HTTP");
    if (SSL_version(ssl) != TLS1_2_VERSION)
        return xb_fail(d, XB_ERR_MALFORMED_REQUEST,
                       "proof-of-possession is required and uses tls-unique, which TLS 1.3 does "
                       "not define: connect with TLS 1.2");
    char challenge[128];
    xb_err err = xb_csr_challenge_password(csr, challenge, sizeof challenge, d);
    if (err == XB_ERR_NOT_FOUND)
        return xb_fail(d, XB_ERR_MALFORMED_REQUEST,
                       "proof-of-possession is required: put base64 of the TLS 1.2 tls-unique "
                       "value in the CSR's challengePassword");
    if (err != XB_OK)
        return err;
    /* The first Finished: the client's in a full handshake; sessions are never resumed
     * (tls.c), but the server's Finished comes first if one ever is. */
    uint8_t finished[EVP_MAX_MD_SIZE];
    size_t n = SSL_session_reused(ssl) ? SSL_get_finished(ssl, finished, sizeof finished)
                                       : SSL_get_peer_finished(ssl, finished, sizeof finished);
    if (!xb_est_tls_unique_ok(finished, n > sizeof finished ? 0 : n, challenge))
        return xb_fail(d, XB_ERR_MALFORMED_REQUEST,
                       "the CSR's challengePassword is not this connection's tls-unique value");
    return XB_OK;
}

static void xb_est_enroll(xb_exchange *ex, int reenroll)
{
    ex->enrollment = 1;
    ex->protocol = XB_PROTO_EST;
    xb_diag d = {""};
    uint8_t *der = NULL;
    size_t der_len = 0;
    xb_csr *csr = NULL;
    char cn[XB_REGID_MAX + 1] = "";
    xb_err err = xb_http_take_token(ex, NULL, &d);
    if (err == XB_OK)
        err = xb_est_read_body(ex, &der, &der_len, &d);
    if (err == XB_OK)
        err = xb_csr_parse(der, der_len, &csr, &d);
    /* EST carries the registration ID in the CSR only. */
    if (err == XB_OK && (err = xb_csr_common_name(csr, cn, &d)) == XB_OK)
        snprintf(ex->reg_id, sizeof ex->reg_id, "%s", cn);
    SSL *ssl = xb_http_ssl(ex);
    X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    const char *authz =
        evhttp_find_header(evhttp_request_get_input_headers(ex->req), "Authorization");
    if (err == XB_OK && reenroll && peer == NULL)
        err = xb_fail(&d, XB_ERR_UNAUTHORIZED,
                      "simplereenroll needs the TLS client certificate being renewed");
    /* EST clients always authenticate (RFC 7030 section 3.2.3), even where the policy would
     * need nothing: a request without any credential is a misconfigured client. */
    else if (err == XB_OK && peer == NULL && authz == NULL)
        err = xb_fail(&d, XB_ERR_UNAUTHORIZED,
                      "credentials required: a TLS client certificate (issued by this server, "
                      "or a manufacturer's), or HTTP Basic with the registration ID as user-id");
    if (err == XB_OK && ex->srv->cfg->est_require_pop)
        err = xb_est_check_pop(ssl, csr, &d);
    if (err != XB_OK) {
        xb_est_reply_error(ex, err, xb_diag_message(&d, err));
    } else {
        /* Who may enroll is the policy's, as on the JSON API (enroll.c). */
        xb_enroll_request req = {
            .reg_id = cn,
            .csr_der = der,
            .csr_len = der_len,
            .csr = csr,
            .client_addr = ex->client_addr,
            .authorization = authz,
            .peer = peer,
            .renewal_route = 1,
            .reenroll_only = reenroll,
        };
        xb_enroll_start(ex, &req, xb_est_answer);
    }
    xb_csr_free(csr);
    free(der);
}

void xb_route_est(xb_exchange *ex)
{
    if (ex->srv->est == NULL) {
        xb_est_reply_error(ex, XB_ERR_NOT_FOUND, "EST is turned off ([est] enabled = false)");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ex->req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    xb_est_op op = XB_EST_CACERTS;
    xb_diag d = {""};
    xb_err err = path != NULL && strlen(path) >= XB_EST_PREFIX_LEN
                     ? xb_est_parse_path(path + XB_EST_PREFIX_LEN, ex->srv->cfg, &op, &d)
                     : xb_fail(&d, XB_ERR_NOT_FOUND, "no such EST path");
    if (err != XB_OK) {
        xb_est_reply_error(ex, err, xb_diag_message(&d, err));
        return;
    }
    int post = op == XB_EST_SIMPLEENROLL || op == XB_EST_SIMPLEREENROLL;
    enum evhttp_cmd_type method = evhttp_request_get_command(ex->req);
    if (post ? method != EVHTTP_REQ_POST : !(method & (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD))) {
        evhttp_add_header(evhttp_request_get_output_headers(ex->req), "Allow",
                          post ? "POST" : "GET, HEAD");
        xb_est_reply_error(ex, XB_ERR_METHOD_NOT_ALLOWED,
                           post ? "use POST for this EST operation"
                                : "use GET for this EST operation");
        return;
    }
    ex->outcome = "ok";
    switch (op) {
    case XB_EST_CACERTS:
        xb_est_reply_base64(ex, "application/pkcs7-mime", ex->srv->est->cacerts);
        break;
    case XB_EST_CSRATTRS:
        xb_est_reply_base64(ex, "application/csrattrs", ex->srv->est->csrattrs);
        break;
    default:
        xb_est_enroll(ex, op == XB_EST_SIMPLEREENROLL);
        break;
    }
}
