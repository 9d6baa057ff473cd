/* The device certificate profile (DESIGN.md section 6), signed on the fast path of section 7:
 * the TBSCertificate is assembled as DER from the CA's prepared pieces (ca_fast.c) and the
 * request's own octets (subject entries, SubjectPublicKeyInfo), hashed and signed; no X509
 * object, no re-encoding of the key or the names. It is byte for byte what the reference
 * (issue_reference.c, X509_set_pubkey + X509_sign) produces for the same serial and time. */
#include "ca.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "issue_subject.h"
#include "xb_util.h"

/* subjectKeyIdentifier: RFC 5280 4.2.1.2 method 1, the SHA-1 of the key BIT STRING contents;
 * non-critical. Only the 20 hash octets change between certificates. */
static const uint8_t xb_ski_prefix[] = {0x30, 0x1d, 0x06, 0x03, 0x55, 0x1d,
                                        0x0e, 0x04, 0x16, 0x04, 0x14};
#define XB_SKI_LEN (sizeof xb_ski_prefix + 20)

/* The version field of a v3 certificate: [0] EXPLICIT INTEGER 2. */
static const uint8_t xb_version_v3[] = {0xa0, 0x03, 0x02, 0x01, 0x02};

/* Time as ASN1_TIME_set writes it: UTCTime for 1950..2049, else GeneralizedTime. */
size_t xb_issue_time(time_t t, uint8_t out[24])
{
    struct tm tm;
    char text[20];
    if (gmtime_r(&t, &tm) == NULL)
        return 0;
    int utc = tm.tm_year >= 50 && tm.tm_year <= 149, n;
    if (utc)
        n = snprintf(text, sizeof text, "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    else
        n = snprintf(text, sizeof text, "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n <= 0 || (size_t)n >= sizeof text)
        return 0;
    out[0] = utc ? XB_DER_UTCTIME : XB_DER_GENERALIZEDTIME;
    out[1] = (uint8_t)n;
    memcpy(out + 2, text, (size_t)n);
    return 2 + (size_t)n;
}

static int xb_issue_digest(xb_ca_fast *f, const EVP_MD *md, const uint8_t *in, size_t len,
                           unsigned char *out, unsigned int *out_len)
{
    return EVP_DigestInit_ex2(f->md_ctx, md, NULL) == 1 &&
           EVP_DigestUpdate(f->md_ctx, in, len) == 1 &&
           EVP_DigestFinal_ex(f->md_ctx, out, out_len) == 1;
}

/* The CA's signature over tbs: the digest is computed here, the signer signs it. */
xb_err xb_issue_sign(xb_ca *ca, const uint8_t *tbs, size_t tbs_len, uint8_t *sig, size_t *sig_len,
                     xb_diag *d)
{
    xb_ca_fast *f = &ca->fast;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!xb_issue_digest(f, f->md, tbs, tbs_len, md, &md_len))
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot digest what is to be signed");
    *sig_len = f->sig_max;
    return xb_signer_sign(ca->signer, f->md, md, md_len, sig, sig_len, d);
}

/* What goes into the TBSCertificate besides the prepared pieces. */
typedef struct xb_tbs_parts {
    const uint8_t *serial; /* magnitude, no leading zero octets */
    size_t serial_len;
    uint8_t not_before[24], not_after[24];
    size_t not_before_len, not_after_len;
    xb_subject subject;
    uint8_t ski[XB_SKI_LEN];
} xb_tbs_parts;

static uint8_t *xb_put(uint8_t *out, const void *p, size_t len)
{
    memcpy(out, p, len);
    return out + len;
}

static size_t xb_tlv_len(size_t content)
{
    return xb_der_header_len(content) + content;
}

/* TBSCertificate: version, serial, signature, issuer, validity, subject, key, extensions (in
 * the reference's order: basicConstraints, keyUsage, extendedKeyUsage, SKI, AKI, and
 * cRLDistributionPoints when crl_url is set). */
static size_t xb_tbs_write(const xb_ca *ca, const xb_csr *csr, const xb_tbs_parts *t, uint8_t *out)
{
    const xb_ca_fast *f = &ca->fast;
    int serial_pad = (t->serial[0] & 0x80) != 0; /* keep the INTEGER positive */
    size_t serial_content = t->serial_len + (size_t)serial_pad;
    size_t validity = t->not_before_len + t->not_after_len;
    size_t exts = f->ext_head_len[csr->is_rsa] + XB_SKI_LEN + f->ext_tail_len + f->ext_cdp_len;
    size_t content = sizeof xb_version_v3 + xb_tlv_len(serial_content) + f->sig_alg_len +
                     f->issuer_len + xb_tlv_len(validity) + t->subject.der_len + csr->spki_len +
                     xb_tlv_len(xb_tlv_len(exts));
    if (out == NULL)
        return xb_tlv_len(content);
    uint8_t *p = xb_der_put_header(out, XB_DER_SEQUENCE, content);
    p = xb_put(p, xb_version_v3, sizeof xb_version_v3);
    p = xb_der_put_header(p, XB_DER_INTEGER, serial_content);
    if (serial_pad)
        *p++ = 0;
    p = xb_put(p, t->serial, t->serial_len);
    p = xb_put(p, f->sig_alg, f->sig_alg_len);
    p = xb_put(p, f->issuer, f->issuer_len);
    p = xb_der_put_header(p, XB_DER_SEQUENCE, validity);
    p = xb_put(p, t->not_before, t->not_before_len);
    p = xb_put(p, t->not_after, t->not_after_len);
    p = xb_subject_write(&t->subject, p);
    p = xb_put(p, csr->spki, csr->spki_len);
    p = xb_der_put_header(p, XB_DER_TAGGED(3), xb_tlv_len(exts));
    p = xb_der_put_header(p, XB_DER_SEQUENCE, exts);
    p = xb_put(p, f->ext_head[csr->is_rsa], f->ext_head_len[csr->is_rsa]);
    p = xb_put(p, t->ski, XB_SKI_LEN);
    p = xb_put(p, f->ext_tail, f->ext_tail_len);
    if (f->ext_cdp_len != 0) /* memcpy from NULL is undefined even for 0 octets */
        p = xb_put(p, f->ext_cdp, f->ext_cdp_len);
    return (size_t)(p - out);
}

size_t xb_ca_signed_room(const xb_ca *ca, size_t tbs_len, size_t *room)
{
    const xb_ca_fast *f = &ca->fast;
    size_t sig_field_max = xb_tlv_len(1 + f->sig_max);
    /* The outer header's size depends on the signature's (ECDSA's varies): leave room for the
     * longest one and move the object down afterwards. */
    *room = xb_der_header_len(tbs_len + f->sig_alg_len + sig_field_max);
    return *room + tbs_len + f->sig_alg_len + sig_field_max;
}

xb_err xb_ca_sign_wrap(xb_ca *ca, uint8_t *buf, size_t room, size_t tbs_len, size_t *der_len,
                       xb_diag *d)
{
    const xb_ca_fast *f = &ca->fast;
    uint8_t *tbs = buf + room;
    uint8_t *p = xb_put(tbs + tbs_len, f->sig_alg, f->sig_alg_len);
    size_t sig_len = 0;
    uint8_t *sig = p + xb_der_header_len(1 + f->sig_max) + 1;
    xb_err err = xb_issue_sign(ca, tbs, tbs_len, sig, &sig_len, d);
    if (err != XB_OK)
        return err;
    uint8_t *sig_at = xb_der_put_header(p, XB_DER_BIT_STRING, 1 + sig_len);
    *sig_at++ = 0; /* no unused bits */
    memmove(sig_at, sig, sig_len);
    size_t content = tbs_len + f->sig_alg_len + xb_tlv_len(1 + sig_len);
    size_t start = room - xb_der_header_len(content);
    xb_der_put_header(buf + start, XB_DER_SEQUENCE, content);
    memmove(buf, buf + start, xb_tlv_len(content));
    *der_len = xb_tlv_len(content);
    return XB_OK;
}

/* Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signature BIT STRING }, in a buffer of
 * its own (freed by xb_issued_clear). */
static xb_err xb_issue_certificate(xb_ca *ca, const xb_csr *csr, const xb_tbs_parts *t,
                                   xb_issued *out, xb_diag *d)
{
    size_t tbs_len = xb_tbs_write(ca, csr, t, NULL), room = 0;
    uint8_t *buf = OPENSSL_malloc(xb_ca_signed_room(ca, tbs_len, &room));
    if (buf == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    xb_tbs_write(ca, csr, t, buf + room);
    xb_err err = xb_ca_sign_wrap(ca, buf, room, tbs_len, &out->der_len, d);
    if (err != XB_OK) {
        OPENSSL_free(buf);
        return err; /* XB_ERR_CA_UNAVAILABLE stays itself: the answer is 503 */
    }
    out->der = buf;
    return XB_OK;
}

static xb_err xb_issue_validity(const xb_ca *ca, time_t now, xb_tbs_parts *t, xb_issued *out,
                                xb_diag *d)
{
    time_t not_before = now - XB_BACKDATE_SECONDS;
    time_t not_after = now + (time_t)ca->validity_days * 86400;
    if (not_after > ca->not_after)
        not_after = ca->not_after; /* never outlive the CA that signed it */
    if (not_after <= now)
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "the signing CA certificate has expired");
    t->not_before_len = xb_issue_time(not_before, t->not_before);
    t->not_after_len = xb_issue_time(not_after, t->not_after);
    if (t->not_before_len == 0 || t->not_after_len == 0)
        return xb_fail(d, XB_ERR_CRYPTO, "cannot set validity");
    out->not_before = not_before;
    out->not_after = not_after;
    return XB_OK;
}

/* The record fields of out (serial, subject text, key hash). */
static xb_err xb_issue_describe(xb_ca *ca, const xb_csr *csr, const xb_tbs_parts *t, xb_issued *out,
                                xb_diag *d)
{
    xb_hex(t->serial, t->serial_len, out->serial);
    out->subject = xb_subject_text(ca, &t->subject);
    if (out->subject == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!xb_issue_digest(&ca->fast, ca->fast.sha256, csr->spki, csr->spki_len, md, &md_len))
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot hash the public key");
    xb_hex(md, md_len, out->pubkey_sha256);
    return XB_OK;
}

xb_err xb_ca_issue_at(xb_ca *ca, const xb_csr *csr, const char *reg_id, time_t now,
                      const uint8_t *serial, xb_issued *out, xb_diag *d)
{
    memset(out, 0, sizeof *out);
    uint8_t random_serial[XB_CA_SERIAL_LEN];
    xb_tbs_parts t;
    xb_err err = XB_OK;
    if (serial == NULL) {
        err = xb_ca_random_serial_bytes(random_serial, d);
        serial = random_serial;
    }
    if (err != XB_OK)
        return err;
    t.serial = serial;
    t.serial_len = XB_CA_SERIAL_LEN;
    while (t.serial_len > 0 && t.serial[0] == 0) { /* INTEGERs are minimal */
        t.serial++;
        t.serial_len--;
    }
    if (t.serial_len == 0)
        return xb_fail(d, XB_ERR_INTERNAL, "a serial of zero");
    err = xb_subject_plan(ca, csr, reg_id, &t.subject, d);
    if (err == XB_OK)
        err = xb_issue_validity(ca, now, &t, out, d);
    if (err != XB_OK)
        return err;
    unsigned char ski[EVP_MAX_MD_SIZE];
    unsigned int ski_len = 0;
    if (!xb_issue_digest(&ca->fast, ca->fast.sha1, csr->key_bits, csr->key_bits_len, ski,
                         &ski_len) ||
        ski_len != 20)
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot add subjectKeyIdentifier");
    memcpy(t.ski, xb_ski_prefix, sizeof xb_ski_prefix);
    memcpy(t.ski + sizeof xb_ski_prefix, ski, 20);
    err = xb_issue_certificate(ca, csr, &t, out, d);
    if (err == XB_OK)
        err = xb_issue_describe(ca, csr, &t, out, d);
    if (err != XB_OK)
        xb_issued_clear(out);
    return err;
}

xb_err xb_ca_issue(xb_ca *ca, const xb_csr *csr, const char *reg_id, time_t now, xb_issued *out,
                   xb_diag *d)
{
    return xb_ca_issue_at(ca, csr, reg_id, now, NULL, out, d);
}

void xb_issued_clear(xb_issued *out)
{
    OPENSSL_free(out->der);
    OPENSSL_free(out->subject);
    memset(out, 0, sizeof *out);
}
