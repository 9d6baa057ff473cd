/* Test helper: build DER by hand (the fast-path tests re-encode and hand-build requests).
 * Header-only, for tests/unit/test_ca_fastpath*.c. */
#ifndef XB_TEST_DER_BUILD_H
#define XB_TEST_DER_BUILD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "der.h"

typedef struct buf {
    uint8_t *p;
    size_t n;
} buf;

static inline void buf_add(buf *b, const void *p, size_t n)
{
    b->p = realloc(b->p, b->n + n + 1);
    if (n > 0) /* p may be NULL then */
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

static inline void put_element(buf *out, uint8_t tag, const buf *content, int long_length)
{
    uint8_t hdr[8];
    size_t h = (size_t)(xb_der_put_header(hdr, tag, content->n) - hdr);
    if (long_length) { /* one more length octet than needed */
        size_t octets = content->n < 0x80 ? 1 : h - 1;
        hdr[1] = (uint8_t)(0x80 | octets);
        if (content->n < 0x80) {
            hdr[2] = (uint8_t)content->n;
        } else {
            memmove(hdr + 3, hdr + 2, h - 2);
            hdr[2] = 0;
            hdr[1] = (uint8_t)(0x80 | (h - 1));
        }
        h = content->n < 0x80 ? 3 : h + 1;
    }
    buf_add(out, hdr, h);
    buf_add(out, content->p, content->n);
}

#endif
