#include "der_walk.h"

#include <string.h>

int xbb_der_next(xbb_span *in, xbb_tlv *out)
{
    const uint8_t *p = in->p;
    size_t left = in->len;
    if (left < 2 || (p[0] & 0x1F) == 0x1F) /* multi-byte tags never occur in what we read */
        return -1;
    size_t hdr = 2, len = p[1];
    if (len & 0x80) {
        size_t n = len & 0x7F;
        if (n == 0 || n > 4 || left < 2 + n) /* indefinite lengths are not DER */
            return -1;
        len = 0;
        for (size_t i = 0; i < n; i++)
            len = (len << 8) | p[2 + i];
        hdr += n;
    }
    if (len > left - hdr)
        return -1;
    out->tag = p[0];
    out->all.p = p;
    out->all.len = hdr + len;
    out->val.p = p + hdr;
    out->val.len = len;
    in->p += hdr + len;
    in->len -= hdr + len;
    return 0;
}

int xbb_der_expect(xbb_span *in, unsigned tag, xbb_tlv *out)
{
    return xbb_der_next(in, out) == 0 && out->tag == tag ? 0 : -1;
}

int xbb_der_cert_fields(const uint8_t *der, size_t len, xbb_span *subject, xbb_span *spki)
{
    xbb_span in = {der, len};
    xbb_tlv cert, tbs, t;
    if (xbb_der_expect(&in, XBB_DER_SEQUENCE, &cert) != 0 || in.len != 0)
        return -1;
    xbb_span c = cert.val;
    if (xbb_der_expect(&c, XBB_DER_SEQUENCE, &tbs) != 0)
        return -1;
    xbb_span b = tbs.val;
    if (xbb_der_next(&b, &t) != 0)
        return -1;
    if (t.tag == XBB_DER_CTX0 && xbb_der_next(&b, &t) != 0) /* version, then serial */
        return -1;
    if (t.tag != XBB_DER_INTEGER)
        return -1;
    /* signature algorithm, issuer, validity */
    for (int i = 0; i < 3; i++)
        if (xbb_der_expect(&b, XBB_DER_SEQUENCE, &t) != 0)
            return -1;
    xbb_tlv subj, key;
    if (xbb_der_expect(&b, XBB_DER_SEQUENCE, &subj) != 0 ||
        xbb_der_expect(&b, XBB_DER_SEQUENCE, &key) != 0)
        return -1;
    *subject = subj.all;
    *spki = key.all;
    return 0;
}

int xbb_der_cert_tbs(const uint8_t *der, size_t len, xbb_span *tbs)
{
    xbb_span in = {der, len};
    xbb_tlv cert, t;
    if (xbb_der_expect(&in, XBB_DER_SEQUENCE, &cert) != 0)
        return -1;
    xbb_span c = cert.val;
    if (xbb_der_expect(&c, XBB_DER_SEQUENCE, &t) != 0)
        return -1;
    *tbs = t.all;
    return 0;
}

int xbb_der_csr_fields(const uint8_t *der, size_t len, xbb_span *cri, xbb_span *spki,
                       xbb_span *sig_oid, xbb_span *sig)
{
    xbb_span in = {der, len};
    xbb_tlv req, info, t, key, alg, oid, bits;
    if (xbb_der_expect(&in, XBB_DER_SEQUENCE, &req) != 0 || in.len != 0)
        return -1;
    xbb_span r = req.val;
    if (xbb_der_expect(&r, XBB_DER_SEQUENCE, &info) != 0 ||
        xbb_der_expect(&r, XBB_DER_SEQUENCE, &alg) != 0 ||
        xbb_der_expect(&r, XBB_DER_BIT_STRING, &bits) != 0 || bits.val.len < 1 ||
        bits.val.p[0] != 0)
        return -1;
    xbb_span i = info.val;
    if (xbb_der_expect(&i, XBB_DER_INTEGER, &t) != 0 ||
        xbb_der_expect(&i, XBB_DER_SEQUENCE, &t) != 0 ||
        xbb_der_expect(&i, XBB_DER_SEQUENCE, &key) != 0)
        return -1;
    xbb_span a = alg.val;
    if (xbb_der_expect(&a, XBB_DER_OID, &oid) != 0)
        return -1;
    *cri = info.all;
    *spki = key.all;
    *sig_oid = oid.val;
    sig->p = bits.val.p + 1;
    sig->len = bits.val.len - 1;
    return 0;
}

int xbb_der_spki_fields(xbb_span spki, xbb_span *alg_oid, xbb_span *params, xbb_span *key)
{
    xbb_tlv outer, alg, oid, p, bits;
    if (xbb_der_expect(&spki, XBB_DER_SEQUENCE, &outer) != 0)
        return -1;
    xbb_span s = outer.val;
    if (xbb_der_expect(&s, XBB_DER_SEQUENCE, &alg) != 0 ||
        xbb_der_expect(&s, XBB_DER_BIT_STRING, &bits) != 0 || bits.val.len < 1 ||
        bits.val.p[0] != 0)
        return -1;
    xbb_span a = alg.val;
    if (xbb_der_expect(&a, XBB_DER_OID, &oid) != 0)
        return -1;
    *alg_oid = oid.val;
    params->p = a.p;
    params->len = 0;
    if (a.len > 0) {
        if (xbb_der_next(&a, &p) != 0)
            return -1;
        *params = p.all;
    }
    key->p = bits.val.p + 1;
    key->len = bits.val.len - 1;
    return 0;
}

int xbb_der_name_cn(xbb_span name, xbb_span *cn)
{
    static const uint8_t oid_cn[] = {0x55, 0x04, 0x03}; /* 2.5.4.3 */
    xbb_tlv seq;
    if (xbb_der_expect(&name, XBB_DER_SEQUENCE, &seq) != 0)
        return -1;
    int found = 0;
    xbb_span rdns = seq.val;
    while (rdns.len > 0) { /* bounded: every step consumes at least two bytes */
        xbb_tlv rdn;
        if (xbb_der_expect(&rdns, XBB_DER_SET, &rdn) != 0)
            return -1;
        xbb_span atvs = rdn.val;
        while (atvs.len > 0) {
            xbb_tlv atv, oid, value;
            if (xbb_der_expect(&atvs, XBB_DER_SEQUENCE, &atv) != 0)
                return -1;
            xbb_span f = atv.val;
            if (xbb_der_expect(&f, XBB_DER_OID, &oid) != 0 || xbb_der_next(&f, &value) != 0)
                return -1;
            if (xbb_span_eq(oid.val, oid_cn, sizeof oid_cn)) {
                if (found == 0)
                    *cn = value.val;
                found++;
            }
        }
    }
    return found;
}

int xbb_span_eq(xbb_span s, const void *p, size_t len)
{
    return s.len == len && (len == 0 || memcmp(s.p, p, len) == 0);
}
