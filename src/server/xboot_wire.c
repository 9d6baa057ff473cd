#include "xboot_wire.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "xb_base64.h"
#include "xb_util.h"

int xb_xboot_content_type_ok(const char *ct)
{
    /* The .NET client sends none; StringContent-based clients send text/plain. */
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

void xb_xboot_request_clear(xb_xboot_request *r)
{
    free(r->csr_der);
    memset(r, 0, sizeof *r);
}

static xb_err xb_xboot_decode_fields(const cJSON *root, xb_xboot_request *out, xb_diag *d)
{
    if (!cJSON_IsObject(root))
        return xb_fail(d, XB_ERR_MALFORMED_REQUEST, "the body must be a JSON object");
    /* cJSON_GetObjectItem matches keys case-insensitively: PascalCase and camelCase. */
    const cJSON *jid = cJSON_GetObjectItem(root, "RegistrationId");
    const cJSON *jcsr = cJSON_GetObjectItem(root, "Csr");
    if (!cJSON_IsString(jid) || !cJSON_IsString(jcsr))
        return xb_fail(d, XB_ERR_MALFORMED_REQUEST,
                       "the body must be a JSON object with string fields RegistrationId and "
                       "Csr");
    const char *reg_id = jid->valuestring;
    if (!xb_regid_valid(reg_id, strlen(reg_id)))
        return xb_fail(d, XB_ERR_INVALID_REGISTRATION_ID, "%s",
                       xb_strerror(XB_ERR_INVALID_REGISTRATION_ID));
    memcpy(out->reg_id, reg_id, strlen(reg_id) + 1);
    const char *csr = jcsr->valuestring;
    if (xb_base64_decode(csr, strlen(csr), &out->csr_der, &out->csr_len) != 0)
        return xb_fail(d, XB_ERR_BAD_BASE64,
                       "Csr must be standard base64 (with padding) of a DER PKCS#10 request");
    return XB_OK;
}

xb_err xb_xboot_decode(const char *body, size_t len, xb_xboot_request *out, xb_diag *d)
{
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (root == NULL)
        return xb_fail(d, XB_ERR_MALFORMED_JSON, "%s", xb_strerror(XB_ERR_MALFORMED_JSON));
    xb_err err = xb_xboot_decode_fields(root, out, d);
    cJSON_Delete(root);
    if (err != XB_OK) {
        free(out->csr_der);
        out->csr_der = NULL;
        out->csr_len = 0;
    }
    return err;
}

static cJSON *xb_xboot_b64_string(const uint8_t *der, size_t len)
{
    char *b64 = xb_base64_encode(der, len);
    cJSON *s = b64 ? cJSON_CreateString(b64) : NULL;
    free(b64);
    return s;
}

char *xb_xboot_encode_answer(const xb_issued *cert, const xb_ca *ca)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *chain = cJSON_AddArrayToObject(o, "Chain");
    cJSON *c = xb_xboot_b64_string(cert->der, cert->der_len);
    int ok = o != NULL && chain != NULL && c != NULL;
    if (ok)
        cJSON_AddItemToObject(o, "Certificate", c);
    else
        cJSON_Delete(c);
    for (size_t i = 0; ok && i < xb_ca_chain_count(ca); i++) {
        size_t len = 0;
        const uint8_t *der = xb_ca_chain_der(ca, i, &len);
        cJSON *s = xb_xboot_b64_string(der, len);
        ok = s != NULL && cJSON_AddItemToArray(chain, s);
    }
    char not_after[32];
    xb_time_rfc3339(cert->not_after, not_after, sizeof not_after);
    ok = ok && cJSON_AddStringToObject(o, "NotAfter", not_after) != NULL &&
         cJSON_AddStringToObject(o, "Serial", cert->serial) != NULL;
    char *json = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return json;
}
