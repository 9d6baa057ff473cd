#include "xb_base64.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static int xb_b64_char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int xb_base64_decode(const char *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (in_len % 4 != 0 || in_len > (size_t)1 << 30)
        return -1;
    if (in_len == 0) { /* valid base64 of nothing: the caller decides what empty means */
        *out = malloc(1);
        return *out != NULL ? 0 : -1;
    }
    size_t pad = 0;
    if (in[in_len - 1] == '=')
        pad = (in[in_len - 2] == '=') ? 2 : 1;
    /* EVP_DecodeBlock is lenient (skips leading blanks, ignores where '=' stands), so the
     * alphabet and padding position are checked here first. */
    for (size_t i = 0; i < in_len - pad; i++)
        if (!xb_b64_char_ok((unsigned char)in[i]))
            return -1;
    uint8_t *buf = malloc(in_len / 4 * 3 + 1);
    if (buf == NULL)
        return -1;
    int n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)in_len);
    if (n < 0 || (size_t)n < pad) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = (size_t)n - pad;
    return 0;
}

char *xb_base64_encode(const uint8_t *in, size_t in_len)
{
    if (in_len > (size_t)1 << 29)
        return NULL;
    char *s = malloc((in_len + 2) / 3 * 4 + 1);
    if (s == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)s, in, (int)in_len);
    return s;
}

#define XB_B64_LINE 64

char *xb_base64_encode_lines(const uint8_t *in, size_t in_len, size_t *out_len)
{
    if (in_len > (size_t)1 << 29)
        return NULL;
    size_t chars = (in_len + 2) / 3 * 4;
    size_t lines = (chars + XB_B64_LINE - 1) / XB_B64_LINE;
    char *s = malloc(chars + lines + 1);
    if (s == NULL)
        return NULL;
    /* A line of 64 characters is exactly 48 input octets: encode block by block. */
    char *o = s;
    for (size_t off = 0; off < in_len; off += XB_B64_LINE / 4 * 3) {
        size_t n = in_len - off < XB_B64_LINE / 4 * 3 ? in_len - off : XB_B64_LINE / 4 * 3;
        o += EVP_EncodeBlock((unsigned char *)o, in + off, (int)n);
        *o++ = '\n';
    }
    *o = '\0';
    if (out_len != NULL)
        *out_len = (size_t)(o - s);
    return s;
}

int xb_base64_decode_ws(const char *in, size_t in_len, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (in_len > (size_t)1 << 30)
        return -1;
    char *packed = malloc(in_len + 1);
    if (packed == NULL)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < in_len; i++)
        if (in[i] != ' ' && in[i] != '\t' && in[i] != '\r' && in[i] != '\n')
            packed[n++] = in[i];
    int rc = xb_base64_decode(packed, n, out, out_len);
    free(packed);
    return rc;
}
