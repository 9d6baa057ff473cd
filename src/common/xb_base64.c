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
