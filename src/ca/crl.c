/* The certificate revocation list (RFC 5280 section 5), assembled as DER and signed once.
 *
 * OpenSSL's way (an X509_REVOKED, two ASN1 objects and an extension per entry, then
 * X509_CRL_sort and i2d) spends most of its time allocating and re-encoding objects; with a
 * fleet's worth of revocations that is seconds per CRL. Every entry here is a few dozen octets
 * written straight into one buffer, and the only crypto is one signature. tests/unit/test_crl.c
 * checks the result against OpenSSL's parser and against a CRL OpenSSL builds itself. */
#include "ca_internal.h"

#include <stdlib.h>
#include <string.h>

#include "der.h"
#include "xb_util.h"

/* version v2: INTEGER 1 (entry extensions and CRL extensions need it). */
static const uint8_t xb_crl_v2[] = {0x02, 0x01, 0x01};
/* Extension { id-ce-cRLReasons, OCTET STRING { ENUMERATED reason } }, wrapped in the entry's
 * crlEntryExtensions SEQUENCE; only the last octet changes. */
static const uint8_t xb_crl_reason_ext[] = {0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55,
                                            0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, 0x00};
/* id-ce-cRLNumber */
static const uint8_t xb_crl_number_oid[] = {0x06, 0x03, 0x55, 0x1d, 0x14};

/* An entry's contents stay under 128 octets, so its header is two: INTEGER (<= 2 + 21),
 * GeneralizedTime (<= 17), reasonCode (14). */
#define XB_CRL_ENTRY_MAX (2 + 23 + 17 + sizeof xb_crl_reason_ext)

static size_t xb_crl_tlv(size_t content)
{
    return xb_der_header_len(content) + content;
}

static uint8_t *xb_crl_put(uint8_t *out, const void *p, size_t len)
{
    memcpy(out, p, len);
    return out + len;
}

/* The INTEGER contents of a positive serial given in hex: minimal, with a zero octet in front
 * when the top bit is set. Returns its length, or 0 if hex is not 1..20 octets, or zero. */
static size_t xb_crl_serial(const char *hex, uint8_t out[21])
{
    size_t digits = hex != NULL ? strlen(hex) : 0;
    if (digits == 0 || digits > 40)
        return 0;
    uint8_t raw[20];
    size_t n = (digits + 1) / 2, i = 0;
    const char *p = hex;
    if (digits % 2 == 1) { /* one digit short of even: the first octet has one */
        int lo = xb_hex_digit(*p++);
        if (lo < 0)
            return 0;
        raw[i++] = (uint8_t)lo;
    }
    for (; i < n; i++, p += 2) {
        int hi = xb_hex_digit(p[0]), lo = xb_hex_digit(p[1]);
        if (hi < 0 || lo < 0)
            return 0;
        raw[i] = (uint8_t)(hi << 4 | lo);
    }
    size_t skip = 0;
    while (skip < n && raw[skip] == 0)
        skip++;
    if (skip == n)
        return 0;
    size_t len = 0;
    if (raw[skip] & 0x80)
        out[len++] = 0;
    memcpy(out + len, raw + skip, n - skip);
    return len + n - skip;
}

/* The revokedCertificates contents into out (room for n * XB_CRL_ENTRY_MAX). Revocations come
 * in bursts (device disable --revoke, bulk imports) with equal times: the encoded time is
 * reused while it does not change, which halves the work for a large list. */
static size_t xb_crl_entries(const xb_crl_entry *e, size_t n, uint8_t *out, size_t *bad)
{
    uint8_t *p = out, when[24];
    size_t when_len = 0;
    time_t last = (time_t)-1;
    for (size_t i = 0; i < n; i++) {
        uint8_t serial[21];
        size_t serial_len = xb_crl_serial(e[i].serial_hex, serial);
        if (e[i].revoked_at != last || when_len == 0) {
            when_len = xb_issue_time(e[i].revoked_at, when);
            last = e[i].revoked_at;
        }
        if (serial_len == 0 || when_len == 0 || e[i].reason < 0 || e[i].reason > 10) {
            *bad = i;
            return 0;
        }
        size_t content =
            2 + serial_len + when_len + (e[i].reason != 0 ? sizeof xb_crl_reason_ext : 0);
        *p++ = XB_DER_SEQUENCE;
        *p++ = (uint8_t)content;
        *p++ = XB_DER_INTEGER;
        *p++ = (uint8_t)serial_len;
        p = xb_crl_put(p, serial, serial_len);
        p = xb_crl_put(p, when, when_len);
        if (e[i].reason != 0) {
            p = xb_crl_put(p, xb_crl_reason_ext, sizeof xb_crl_reason_ext);
            p[-1] = (uint8_t)e[i].reason;
        }
    }
    return (size_t)(p - out);
}

/* crlExtensions contents: cRLNumber then authorityKeyIdentifier (the one device certificates
 * carry, so a relying party matches the CRL to the CA as it matches the certificates). */
static size_t xb_crl_exts(const xb_ca *ca, long long number, uint8_t *out)
{
    uint8_t num[9];
    size_t num_len = 0;
    unsigned long long v = (unsigned long long)number;
    uint8_t be[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        be[i] = (uint8_t)(v & 0xff);
    int skip = 0;
    while (skip < 7 && be[skip] == 0)
        skip++;
    if (be[skip] & 0x80)
        num[num_len++] = 0;
    memcpy(num + num_len, be + skip, (size_t)(8 - skip));
    num_len += (size_t)(8 - skip);
    size_t octets = 2 + num_len; /* INTEGER */
    size_t ext = sizeof xb_crl_number_oid + 2 + octets;
    uint8_t *p = out;
    p = xb_der_put_header(p, XB_DER_SEQUENCE, ext);
    p = xb_crl_put(p, xb_crl_number_oid, sizeof xb_crl_number_oid);
    p = xb_der_put_header(p, XB_DER_OCTET_STRING, octets);
    p = xb_der_put_header(p, XB_DER_INTEGER, num_len);
    p = xb_crl_put(p, num, num_len);
    p = xb_crl_put(p, ca->fast.ext_tail, ca->fast.ext_tail_len);
    return (size_t)(p - out);
}

typedef struct xb_crl_parts {
    uint8_t this_update[24], next_update[24];
    size_t this_len, next_len;
    uint8_t *entries;
    size_t entries_len;
    uint8_t exts[64 + 256];
    size_t exts_len;
} xb_crl_parts;

/* TBSCertList; with out NULL, only its length. revokedCertificates is left out when empty,
 * as RFC 5280 section 5.1.2.6 requires. */
static size_t xb_crl_tbs(const xb_ca *ca, const xb_crl_parts *t, uint8_t *out)
{
    const xb_ca_fast *f = &ca->fast;
    size_t revoked = t->entries_len != 0 ? xb_crl_tlv(t->entries_len) : 0;
    size_t content = sizeof xb_crl_v2 + f->sig_alg_len + f->issuer_len + t->this_len + t->next_len +
                     revoked + xb_crl_tlv(xb_crl_tlv(t->exts_len));
    if (out == NULL)
        return xb_crl_tlv(content);
    uint8_t *p = xb_der_put_header(out, XB_DER_SEQUENCE, content);
    p = xb_crl_put(p, xb_crl_v2, sizeof xb_crl_v2);
    p = xb_crl_put(p, f->sig_alg, f->sig_alg_len);
    p = xb_crl_put(p, f->issuer, f->issuer_len);
    p = xb_crl_put(p, t->this_update, t->this_len);
    p = xb_crl_put(p, t->next_update, t->next_len);
    if (t->entries_len != 0) {
        p = xb_der_put_header(p, XB_DER_SEQUENCE, t->entries_len);
        p = xb_crl_put(p, t->entries, t->entries_len);
    }
    p = xb_der_put_header(p, XB_DER_TAGGED(0), xb_crl_tlv(t->exts_len));
    p = xb_der_put_header(p, XB_DER_SEQUENCE, t->exts_len);
    p = xb_crl_put(p, t->exts, t->exts_len);
    return (size_t)(p - out);
}

/* CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }: signed and
 * wrapped as certificates are (xb_ca_sign_wrap). */
static xb_err xb_crl_sign(xb_ca *ca, const xb_crl_parts *t, uint8_t **der, size_t *der_len,
                          xb_diag *d)
{
    size_t tbs_len = xb_crl_tbs(ca, t, NULL), room = 0;
    uint8_t *buf = malloc(xb_ca_signed_room(ca, tbs_len, &room));
    if (buf == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory building the CRL");
    xb_crl_tbs(ca, t, buf + room);
    xb_err err = xb_ca_sign_wrap(ca, buf, room, tbs_len, der_len, d);
    if (err != XB_OK) {
        free(buf);
        return err;
    }
    *der = buf;
    return XB_OK;
}

xb_err xb_ca_crl_build(xb_ca *ca, const xb_crl_entry *entries, size_t n, long long number,
                       time_t this_update, time_t next_update, uint8_t **der, size_t *der_len,
                       xb_diag *d)
{
    *der = NULL;
    *der_len = 0;
    if (number < 0)
        return xb_fail(d, XB_ERR_INVALID_ARGUMENT, "CRL number %lld is negative", number);
    if (next_update <= this_update)
        return xb_fail(d, XB_ERR_INVALID_ARGUMENT, "CRL nextUpdate must follow thisUpdate");
    if (n > SIZE_MAX / XB_CRL_ENTRY_MAX)
        return xb_fail(d, XB_ERR_NOMEM, "too many revoked certificates");
    xb_crl_parts t;
    memset(&t, 0, sizeof t);
    t.this_len = xb_issue_time(this_update, t.this_update);
    t.next_len = xb_issue_time(next_update, t.next_update);
    if (t.this_len == 0 || t.next_len == 0)
        return xb_fail(d, XB_ERR_INVALID_ARGUMENT, "CRL times out of range");
    if (ca->fast.ext_tail_len > sizeof t.exts - 64)
        return xb_fail(d, XB_ERR_INTERNAL, "authorityKeyIdentifier too long for the CRL");
    t.exts_len = xb_crl_exts(ca, number, t.exts);
    t.entries = malloc(n != 0 ? n * XB_CRL_ENTRY_MAX : 1);
    if (t.entries == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory building the CRL");
    size_t bad = 0;
    t.entries_len = xb_crl_entries(entries, n, t.entries, &bad);
    xb_err err = XB_OK;
    if (n != 0 && t.entries_len == 0)
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT,
                      "revoked certificate '%s': not a serial of 1..20 octets in hex, or a bad "
                      "time or reason",
                      entries[bad].serial_hex != NULL ? entries[bad].serial_hex : "");
    else
        err = xb_crl_sign(ca, &t, der, der_len, d);
    free(t.entries);
    return err;
}
