/* Strict DER reading (headers, tree shape, OpenSSL's contents rules) and header writing. */
#include "der.h"

#include <string.h>

int xb_der_read(xb_der_reader *r, xb_der_elem *e)
{
    const uint8_t *p = r->p;
    size_t left = r->left;
    if (left < 2)
        return 0;
    uint8_t tag = p[0];
    /* High tag number form: no structure of a request uses it, and refusing it keeps one
     * encoding per tag. */
    if ((tag & 0x1f) == 0x1f)
        return 0;
    size_t hdr = 2, len = p[1];
    if (len & 0x80) {
        size_t n = len & 0x7f;
        /* 0x80 is the indefinite form (BER only); lengths here never need more than 4 octets. */
        if (n == 0 || n > 4 || left < 2 + n)
            return 0;
        if (p[2] == 0) /* leading zero octet: not minimal */
            return 0;
        len = 0;
        for (size_t i = 0; i < n; i++)
            len = (len << 8) | p[2 + i];
        if (len < 0x80) /* the short form would do */
            return 0;
        hdr += n;
    }
    if (len > left - hdr)
        return 0;
    e->tag = tag;
    e->tlv = p;
    e->tlv_len = hdr + len;
    e->val = p + hdr;
    e->len = len;
    r->p = p + hdr + len;
    r->left = left - hdr - len;
    return 1;
}

int xb_der_read_tag(xb_der_reader *r, uint8_t tag, xb_der_elem *e)
{
    return r->left > 0 && r->p[0] == tag && xb_der_read(r, e);
}

int xb_der_peek(const xb_der_reader *r)
{
    return r->left > 0 ? r->p[0] : -1;
}

static int xb_der_tree_ok_at(const uint8_t *p, size_t len, int depth)
{
    if (depth > XB_DER_MAX_DEPTH)
        return 0;
    xb_der_reader r = xb_der_reader_of(p, len);
    xb_der_elem e;
    while (r.left > 0) {
        if (!xb_der_read(&r, &e))
            return 0;
        int constructed = (e.tag & XB_DER_CONSTRUCTED) != 0;
        if ((e.tag & XB_DER_CLASS_MASK) == 0) {
            int number = e.tag & 0x1f;
            if (number == 0) /* end-of-contents: only meaningful in BER's indefinite form */
                return 0;
            if (constructed != (number == 0x10 || number == 0x11))
                return 0;
        }
        if (constructed && !xb_der_tree_ok_at(e.val, e.len, depth + 1))
            return 0;
    }
    return 1;
}

int xb_der_tree_ok(const uint8_t *p, size_t len)
{
    return xb_der_tree_ok_at(p, len, 1);
}

int xb_der_integer_ok(const uint8_t *v, size_t len)
{
    if (len == 0)
        return 0;
    /* Nine leading bits all equal: a shorter encoding exists. */
    if (len > 1 && ((v[0] == 0x00 && !(v[1] & 0x80)) || (v[0] == 0xff && (v[1] & 0x80))))
        return 0;
    return 1;
}

int xb_der_oid_ok(const uint8_t *v, size_t len)
{
    if (len == 0 || (v[len - 1] & 0x80))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (v[i] == 0x80 && (i == 0 || !(v[i - 1] & 0x80)))
            return 0; /* a sub-identifier with a leading zero group */
    return 1;
}

int xb_der_bit_string_ok(const uint8_t *v, size_t len)
{
    return len >= 1 && v[0] <= 7;
}

int xb_der_any_ok(const xb_der_elem *e)
{
    /* Other classes, and the constructed SEQUENCE and SET, are kept as raw bytes by OpenSSL;
     * xb_der_tree_ok already checked their shape. */
    if ((e->tag & XB_DER_CLASS_MASK) != 0 || (e->tag & XB_DER_CONSTRUCTED))
        return 1;
    switch (e->tag) {
    case XB_DER_OID:
        return xb_der_oid_ok(e->val, e->len);
    case XB_DER_NULL:
        return e->len == 0;
    case XB_DER_BOOLEAN:
        return e->len == 1;
    case XB_DER_BIT_STRING:
        return xb_der_bit_string_ok(e->val, e->len);
    case XB_DER_INTEGER:
    case 0x0a: /* ENUMERATED */
        return xb_der_integer_ok(e->val, e->len);
    case 0x1e: /* BMPString: two octets a character */
        return (e->len & 1) == 0;
    case 0x1c: /* UniversalString: four */
        return (e->len & 3) == 0;
    default:
        return 1;
    }
}

int xb_der_small_uint(const xb_der_elem *e, long *out)
{
    if (e->tag != XB_DER_INTEGER || !xb_der_integer_ok(e->val, e->len) || (e->val[0] & 0x80))
        return 0;
    size_t i = e->val[0] == 0 ? 1 : 0;
    if (e->len - i > sizeof(long) - 1)
        return 0;
    long v = 0;
    for (; i < e->len; i++)
        v = (v << 8) | e->val[i];
    *out = v;
    return 1;
}

int xb_der_oid_is(const xb_der_elem *e, const uint8_t *oid, size_t len)
{
    return e->tag == XB_DER_OID && e->len == len && memcmp(e->val, oid, len) == 0;
}

size_t xb_der_header_len(size_t len)
{
    if (len < 0x80)
        return 2;
    size_t n = 2; /* identifier, 0x80 | count, then the count of length octets */
    for (size_t v = len; v > 0; v >>= 8)
        n++;
    return n;
}

uint8_t *xb_der_put_header(uint8_t *out, uint8_t tag, size_t len)
{
    *out++ = tag;
    if (len < 0x80) {
        *out++ = (uint8_t)len;
        return out;
    }
    size_t n = 0;
    for (size_t v = len; v > 0; v >>= 8)
        n++;
    *out++ = (uint8_t)(0x80 | n);
    for (size_t i = n; i > 0; i--)
        *out++ = (uint8_t)(len >> (8 * (i - 1)));
    return out;
}
