/* The reference parser's DER check, on OpenSSL's ASN1_get_object: the same rules as
 * xb_der_tree_ok (der.c), implemented a second time so that the fuzzer compares two readings. */
#include "ca_reference.h"

#include <openssl/asn1.h>

#include "der.h"

static int xb_ref_der_ok_at(const unsigned char *p, long len, int depth)
{
    if (depth > XB_DER_MAX_DEPTH)
        return 0;
    while (len > 0) {
        const unsigned char *start = p;
        long plen = 0;
        int tag = 0, cls = 0;
        if ((start[0] & 0x1f) == 0x1f) /* high tag number form */
            return 0;
        int ret = ASN1_get_object(&p, &plen, &tag, &cls, len);
        /* 0x80: malformed or longer than the data; bit 0: indefinite length. */
        if ((ret & 0x80) || (ret & 1))
            return 0;
        long hdr = (long)(p - start);
        /* DER lengths are minimal: the header is exactly as long as ASN1_put_object's. */
        if (ASN1_object_size(0, plen, tag) != hdr + plen)
            return 0;
        int constructed = (ret & V_ASN1_CONSTRUCTED) != 0;
        if (cls == V_ASN1_UNIVERSAL) {
            if (tag == V_ASN1_EOC)
                return 0;
            if (constructed != (tag == V_ASN1_SEQUENCE || tag == V_ASN1_SET))
                return 0;
        }
        if (constructed && !xb_ref_der_ok_at(p, plen, depth + 1))
            return 0;
        p += plen;
        len -= hdr + plen;
    }
    return 1;
}

int xb_ref_der_ok(const uint8_t *der, size_t len)
{
    return xb_ref_der_ok_at(der, (long)len, 1);
}

/* The contents of the element at *p (advancing *p past it); the input is known to be DER. */
static const unsigned char *xb_ref_enter(const unsigned char **p, long *len, long *inner_len)
{
    const unsigned char *start = *p;
    int tag = 0, cls = 0;
    ASN1_get_object(p, inner_len, &tag, &cls, *len);
    const unsigned char *contents = *p;
    *p += *inner_len;
    *len -= (long)(*p - start);
    return contents;
}

int xb_ref_attributes_tag_ok(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    long left = (long)len, req_len = 0, info_len = 0, skip = 0;
    const unsigned char *req = xb_ref_enter(&p, &left, &req_len);
    const unsigned char *info = xb_ref_enter(&req, &req_len, &info_len);
    /* version, subject, subjectPKInfo, then attributes if any */
    for (int i = 0; i < 3 && info_len > 0; i++)
        xb_ref_enter(&info, &info_len, &skip);
    return info_len == 0 || info[0] == (V_ASN1_CONTEXT_SPECIFIC | V_ASN1_CONSTRUCTED);
}
