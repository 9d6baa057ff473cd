/* The XBoot JSON wire format, device side (lib/wire.h). */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "wire.h"
#include "xb_base64.h"

#define XBW_MAX_CHAIN 8

xboot_err xbw_request(const char *reg_id, const uint8_t *csr, size_t csr_len, char **body,
                      size_t *body_len, xbc_detail *detail)
{
    *body = NULL;
    char *b64 = xb_base64_encode(csr, csr_len);
    cJSON *obj = cJSON_CreateObject();
    /* PascalCase, as the original .NET client sends it. */
    if (b64 == NULL || obj == NULL || !cJSON_AddStringToObject(obj, "RegistrationId", reg_id) ||
        !cJSON_AddStringToObject(obj, "Csr", b64) ||
        (*body = cJSON_PrintUnformatted(obj)) == NULL) {
        free(b64);
        cJSON_Delete(obj);
        return xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "request body");
    }
    free(b64);
    cJSON_Delete(obj);
    *body_len = strlen(*body);
    return XBOOT_OK;
}

static xboot_err xbw_der_cert(const cJSON *item, const char *what, X509 **out, xbc_detail *detail)
{
    if (!cJSON_IsString(item))
        return xbc_fail(detail, XBOOT_ERR_BAD_RESPONSE, "the answer has no %s string", what);
    const char *s = item->valuestring;
    uint8_t *der = NULL;
    size_t der_len = 0;
    if (xb_base64_decode(s, strlen(s), &der, &der_len) != 0)
        return xbc_fail(detail, XBOOT_ERR_BAD_RESPONSE, "%s is not base64", what);
    xboot_err e = xbc_cert_from_der(der, der_len, out, detail);
    free(der);
    if (e != XBOOT_OK)
        return xbc_fail(detail, XBOOT_ERR_BAD_RESPONSE, "%s is not a DER certificate", what);
    return XBOOT_OK;
}

static xboot_err xbw_chain(const cJSON *arr, STACK_OF(X509) * chain, xbc_detail *detail)
{
    if (arr == NULL || cJSON_IsNull(arr))
        return XBOOT_OK;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > XBW_MAX_CHAIN)
        return xbc_fail(detail, XBOOT_ERR_BAD_RESPONSE, "Chain is not an array of at most %d",
                        XBW_MAX_CHAIN);
    const cJSON *item;
    cJSON_ArrayForEach(item, arr)
    {
        X509 *x = NULL;
        xboot_err e = xbw_der_cert(item, "a Chain entry", &x, detail);
        if (e != XBOOT_OK)
            return e;
        if (!sk_X509_push(chain, x)) {
            X509_free(x);
            return xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "chain");
        }
    }
    return XBOOT_OK;
}

xboot_err xbw_certificate(const uint8_t *body, size_t len, X509 **cert, STACK_OF(X509) * *chain,
                          xbc_detail *detail)
{
    *cert = NULL;
    *chain = NULL;
    cJSON *root = body ? cJSON_ParseWithLength((const char *)body, len) : NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return xbc_fail(detail, XBOOT_ERR_BAD_RESPONSE, "the answer is not a JSON object");
    }
    xboot_err e =
        xbw_der_cert(cJSON_GetObjectItem(root, "Certificate"), "Certificate", cert, detail);
    if (e == XBOOT_OK && (*chain = sk_X509_new_null()) == NULL)
        e = xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "chain");
    if (e == XBOOT_OK)
        e = xbw_chain(cJSON_GetObjectItem(root, "Chain"), *chain, detail);
    cJSON_Delete(root);
    if (e != XBOOT_OK) {
        X509_free(*cert);
        sk_X509_pop_free(*chain, X509_free);
        *cert = NULL;
        *chain = NULL;
    }
    return e;
}

/* Copy a server-sent string, keeping printable ASCII only (it ends up in device logs). */
static void xbw_copy_printable(const cJSON *item, char *out, size_t out_len)
{
    out[0] = '\0';
    if (!cJSON_IsString(item) || out_len == 0)
        return;
    size_t n = 0;
    for (const char *s = item->valuestring; *s != '\0' && n + 1 < out_len; s++)
        out[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    out[n] = '\0';
}

void xbw_error(const uint8_t *body, size_t len, char *code, size_t code_len, char *message,
               size_t message_len)
{
    code[0] = '\0';
    message[0] = '\0';
    cJSON *root = body ? cJSON_ParseWithLength((const char *)body, len) : NULL;
    if (cJSON_IsObject(root)) {
        xbw_copy_printable(cJSON_GetObjectItem(root, "error"), code, code_len);
        xbw_copy_printable(cJSON_GetObjectItem(root, "message"), message, message_len);
    }
    cJSON_Delete(root);
}
