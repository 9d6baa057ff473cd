/* The EST (RFC 7030) wire format, device side (lib/est.h). */
#include <stdlib.h>
#include <string.h>

#include <openssl/pkcs7.h>

#include "est.h"
#include "xb_base64.h"

#define XBE_LINE 64

int xbe_label_valid(const char *label)
{
    size_t n = label != NULL ? strlen(label) : 0;
    if (n == 0 || n > 64 || strcmp(label, ".") == 0 || strcmp(label, "..") == 0)
        return 0;
    return strspn(label, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == n;
}

xboot_err xbe_url(const char *server, const char *label, const char *op, char **url,
                  xbc_detail *detail)
{
    *url = NULL;
    const char *host = strstr(server, "://");
    if (host == NULL)
        return xbc_fail(detail, XBOOT_ERR_NOT_CONFIGURED, "server URL not set");
    host += 3;
    int origin_len = (int)(host - server + (ptrdiff_t)strcspn(host, "/?#"));
    size_t len = (size_t)origin_len + sizeof "/.well-known/est/" + (label ? strlen(label) + 1 : 0) +
                 strlen(op);
    if ((*url = malloc(len)) == NULL)
        return xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "EST URL");
    snprintf(*url, len, "%.*s/.well-known/est%s%s/%s", origin_len, server, label ? "/" : "",
             label ? label : "", op);
    return XBOOT_OK;
}

xboot_err xbe_request(const uint8_t *csr, size_t csr_len, char **body, size_t *body_len,
                      xbc_detail *detail)
{
    *body = NULL;
    char *b64 = xb_base64_encode(csr, csr_len);
    size_t n = b64 != NULL ? strlen(b64) : 0;
    char *out = b64 != NULL ? malloc(n + n / XBE_LINE + 2) : NULL;
    if (out == NULL) {
        free(b64);
        return xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "request body");
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i += XBE_LINE) {
        size_t chunk = n - i < XBE_LINE ? n - i : XBE_LINE;
        memcpy(out + o, b64 + i, chunk);
        o += chunk;
        out[o++] = '\n';
    }
    out[o] = '\0';
    free(b64);
    *body = out;
    *body_len = o;
    return XBOOT_OK;
}

/* body without white space (RFC 7030 section 4: base64 as in MIME, lines of any length). */
static char *xbe_strip(const uint8_t *body, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; out != NULL && i < len; i++)
        if (strchr(" \t\r\n\v\f", body[i]) == NULL || body[i] == '\0')
            out[o++] = (char)body[i];
    if (out != NULL)
        out[o] = '\0';
    *out_len = o;
    return out;
}

/* Move the certificates of a decoded PKCS#7 into a new stack. */
static xboot_err xbe_p7_certs(PKCS7 *p7, STACK_OF(X509) * *out, xbc_detail *detail)
{
    if (!PKCS7_type_is_signed(p7) || p7->d.sign == NULL)
        return xbc_fail(detail, XBOOT_ERR_BAD_RESPONSE, "the answer is not a certs-only PKCS#7");
    STACK_OF(X509) *certs = p7->d.sign->cert;
    int n = sk_X509_num(certs);
    if (n < 1 || n > XBE_MAX_CERTS)
        return xbc_fail(detail, XBOOT_ERR_BAD_RESPONSE,
                        "the answer holds %d certificates (1..%d expected)", n < 0 ? 0 : n,
                        XBE_MAX_CERTS);
    *out = sk_X509_new_null();
    for (int i = 0; *out != NULL && i < n; i++) {
        X509 *x = sk_X509_value(certs, i);
        if (!X509_up_ref(x))
            break;
        if (!sk_X509_push(*out, x)) {
            X509_free(x);
            break;
        }
    }
    if (*out == NULL || sk_X509_num(*out) != n) {
        sk_X509_pop_free(*out, X509_free);
        *out = NULL;
        return xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "certificate list");
    }
    return XBOOT_OK;
}

xboot_err xbe_certs(const uint8_t *body, size_t len, STACK_OF(X509) * *out, xbc_detail *detail)
{
    *out = NULL;
    size_t b64_len = 0;
    char *b64 = body != NULL ? xbe_strip(body, len, &b64_len) : NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    if (b64 == NULL || b64_len == 0 || xb_base64_decode(b64, b64_len, &der, &der_len) != 0) {
        free(b64);
        return xbc_fail(detail, XBOOT_ERR_BAD_RESPONSE, "the answer is not base64");
    }
    free(b64);
    const unsigned char *p = der;
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)der_len);
    xboot_err e = XBOOT_OK;
    if (p7 == NULL || p != der + der_len)
        e = xbc_fail(detail, XBOOT_ERR_BAD_RESPONSE, "the answer is not a DER PKCS#7");
    else
        e = xbe_p7_certs(p7, out, detail);
    PKCS7_free(p7);
    free(der);
    return e;
}

/* Copy s[0..n) keeping printable ASCII only (it ends up in device logs), truncated to fit. */
static void xbe_copy_printable(const uint8_t *s, size_t n, char *out, size_t out_len)
{
    size_t o = 0;
    while (n > 0 && strchr(" \t\r\n", s[n - 1]) != NULL && s[n - 1] != '\0')
        n--;
    for (size_t i = 0; i < n && o + 1 < out_len; i++)
        out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
    if (out_len > 0)
        out[o] = '\0';
}

void xbe_error(const uint8_t *body, size_t len, char *code, size_t code_len, char *message,
               size_t message_len)
{
    code[0] = '\0';
    message[0] = '\0';
    if (body == NULL || len == 0)
        return;
    size_t c = 0;
    while (c < len && c < 64 &&
           strchr("abcdefghijklmnopqrstuvwxyz0123456789_.-", body[c]) != NULL && body[c] != '\0')
        c++;
    if (c > 0 && c < len && body[c] == ':') {
        xbe_copy_printable(body, c, code, code_len);
        size_t m = c + 1;
        while (m < len && body[m] == ' ')
            m++;
        xbe_copy_printable(body + m, len - m, message, message_len);
        return;
    }
    xbe_copy_printable(body, len, message, message_len);
}
