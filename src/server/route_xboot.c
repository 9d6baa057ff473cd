/* POST /api/certificate: the original XBoot.Server wire format.
 *
 * Request  {"RegistrationId": "...", "Csr": "<base64 DER PKCS#10>"} (keys matched
 *          case-insensitively, so the .NET client's PascalCase and camelCase both work),
 *          no Content-Type or application/json, function key as ?code= or x-functions-key.
 * Answer   {"Certificate": "<base64 DER>", "Chain": ["<base64 DER>", ...], "NotAfter": "..."}.
 *          Old clients read Certificate and ignore the rest. */
#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sys/queue.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "xb_base64.h"
#include "xb_util.h"

/* Media types a JSON body may come with. The .NET client sends none; StringContent-based
 * clients send text/plain. */
static int xb_xboot_content_type_ok(const char *ct)
{
    if (ct == NULL)
        return 1;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    static const char *const ok[] = {"application/json", "text/plain", ""};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strlen(ok[i]) == n && strncasecmp(ct, ok[i], n) == 0)
            return 1;
    return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

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

static char *xb_xboot_success_json(const xb_server *srv, const xb_issued *cert)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *chain = cJSON_CreateArray();
    char *b64 = xb_base64_encode(cert->der, cert->der_len);
    char not_after[32];
    xb_time_rfc3339(cert->not_after, not_after, sizeof not_after);
    int ok = o != NULL && chain != NULL && b64 != NULL &&
             cJSON_AddStringToObject(o, "Certificate", b64) != NULL;
    free(b64);
    for (size_t i = 0; ok && i < xb_ca_chain_count(srv->ca); i++) {
        size_t len = 0;
        const uint8_t *der = xb_ca_chain_der(srv->ca, i, &len);
        char *c = xb_base64_encode(der, len);
        cJSON *s = c ? cJSON_CreateString(c) : NULL;
        free(c);
        ok = s != NULL && cJSON_AddItemToArray(chain, s);
        if (!ok)
            cJSON_Delete(s);
    }
    if (ok && cJSON_AddItemToObject(o, "Chain", chain))
        chain = NULL;
    else
        ok = 0;
    ok = ok && cJSON_AddStringToObject(o, "NotAfter", not_after) != NULL &&
         cJSON_AddStringToObject(o, "Serial", cert->serial) != NULL;
    char *json = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(chain);
    cJSON_Delete(o);
    return json;
}

static void xb_xboot_enroll(xb_exchange *ex, const cJSON *root)
{
    const cJSON *jid = cJSON_GetObjectItem(root, "RegistrationId");
    const cJSON *jcsr = cJSON_GetObjectItem(root, "Csr");
    if (!cJSON_IsString(jid) || !cJSON_IsString(jcsr)) {
        xb_http_reply_error(ex, XB_ERR_MALFORMED_REQUEST,
                            "the body must be a JSON object with string fields RegistrationId "
                            "and Csr");
        return;
    }
    const char *reg_id = jid->valuestring;
    if (!xb_regid_valid(reg_id, strlen(reg_id))) {
        xb_http_reply_error(ex, XB_ERR_INVALID_REGISTRATION_ID, NULL);
        return;
    }
    snprintf(ex->reg_id, sizeof ex->reg_id, "%s", reg_id);
    uint8_t *der = NULL;
    size_t der_len = 0;
    if (xb_base64_decode(jcsr->valuestring, strlen(jcsr->valuestring), &der, &der_len) != 0) {
        xb_http_reply_error(ex, XB_ERR_BAD_BASE64,
                            "Csr must be standard base64 (with padding) of a DER PKCS#10 request");
        return;
    }
    xb_enroll_request req = {
        .reg_id = reg_id, .csr_der = der, .csr_len = der_len, .client_addr = ex->client_addr};
    xb_issued cert;
    xb_diag d = {""};
    xb_err err = xb_enroll(ex->srv, &req, &cert, &d);
    free(der);
    if (err != XB_OK) {
        xb_http_reply_error(ex, err, xb_diag_message(&d, err));
        return;
    }
    char *json = xb_xboot_success_json(ex->srv, &cert);
    snprintf(ex->serial, sizeof ex->serial, "%s", cert.serial);
    xb_issued_clear(&cert);
    if (json == NULL) {
        /* Recorded but not sent: the device retries and gets 409 unless re-enrollment is on;
         * an operator sees the serial in the log line. Only reachable out of memory. */
        xb_http_reply_error(ex, XB_ERR_NOMEM, NULL);
        return;
    }
    ex->outcome = "issued";
    xb_http_reply_json(ex, 200, json);
    cJSON_free(json);
}

void xb_route_xboot_certificate(xb_exchange *ex)
{
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
    cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
    if (root == NULL) {
        xb_http_reply_error(ex, XB_ERR_MALFORMED_JSON, NULL);
        return;
    }
    if (!cJSON_IsObject(root))
        xb_http_reply_error(ex, XB_ERR_MALFORMED_REQUEST, "the body must be a JSON object");
    else
        xb_xboot_enroll(ex, root);
    cJSON_Delete(root);
}
