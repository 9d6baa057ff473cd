/* The fast path against the reference (ca_reference.h), one request at a time: the oracle of
 * tests/unit/test_ca_fastpath.c and fuzz/fuzz_csr.c. Not used by xbootd. */
#include "ca_reference.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "der.h"

static int xb_cc_fail(xb_crosscheck *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int xb_cc_fail(xb_crosscheck *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->mismatch, sizeof res->mismatch, fmt, ap);
    va_end(ap);
    return 0;
}

/* The request's CN as the reference decodes it, if it is a C string. */
static void xb_cc_reg_id(const xb_csr_ref *csr, char *out, size_t size)
{
    snprintf(out, size, "fuzz-device");
    const X509_NAME *name = X509_REQ_get_subject_name(csr->req);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0)
        return;
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
    if (n >= 0 && (size_t)n < size && memchr(utf8, 0, (size_t)n) == NULL) {
        memcpy(out, utf8, (size_t)n);
        out[n] = '\0';
    }
    OPENSSL_free(utf8);
    ERR_clear_error();
}

/* Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signature }: the first two elements. */
static int xb_cc_split(const xb_issued *c, xb_der_elem *tbs, xb_der_elem *alg)
{
    xb_der_reader r = xb_der_reader_of(c->der, c->der_len), in;
    xb_der_elem cert, sig;
    if (!xb_der_read_tag(&r, XB_DER_SEQUENCE, &cert) || r.left != 0)
        return 0;
    in = xb_der_reader_of(cert.val, cert.len);
    return xb_der_read_tag(&in, XB_DER_SEQUENCE, tbs) &&
           xb_der_read_tag(&in, XB_DER_SEQUENCE, alg) &&
           xb_der_read_tag(&in, XB_DER_BIT_STRING, &sig) && in.left == 0;
}

static int xb_cc_verifies(const xb_ca *ca, const xb_issued *c)
{
    const unsigned char *p = c->der;
    X509 *x = d2i_X509(NULL, &p, (long)c->der_len);
    int ok =
        x != NULL && p == c->der + c->der_len && X509_verify(x, X509_get0_pubkey(ca->cert)) == 1;
    X509_free(x);
    ERR_clear_error();
    return ok;
}

static int xb_cc_same_elem(const xb_der_elem *a, const xb_der_elem *b)
{
    return a->tlv_len == b->tlv_len && memcmp(a->tlv, b->tlv, a->tlv_len) == 0;
}

static int xb_cc_compare(const xb_ca *ca, const xb_issued *fast, const xb_issued *ref,
                         xb_crosscheck *res)
{
    xb_der_elem ftbs, falg, rtbs, ralg;
    if (!xb_cc_split(fast, &ftbs, &falg) || !xb_cc_split(ref, &rtbs, &ralg))
        return xb_cc_fail(res, "a certificate is not DER");
    if (!xb_cc_same_elem(&ftbs, &rtbs))
        return xb_cc_fail(res, "TBSCertificate differs (fast %zu octets, reference %zu)",
                          ftbs.tlv_len, rtbs.tlv_len);
    if (!xb_cc_same_elem(&falg, &ralg))
        return xb_cc_fail(res, "signatureAlgorithm differs");
    int pkcs1 = EVP_PKEY_get_base_id(ca->key) == EVP_PKEY_RSA;
    if (pkcs1 && (fast->der_len != ref->der_len || memcmp(fast->der, ref->der, ref->der_len)))
        return xb_cc_fail(res, "RSA PKCS#1 v1.5 certificates differ");
    if (!xb_cc_verifies(ca, fast) || !xb_cc_verifies(ca, ref))
        return xb_cc_fail(res, "a certificate signature does not verify");
    if (strcmp(fast->serial, ref->serial) != 0 || strcmp(fast->subject, ref->subject) != 0 ||
        fast->not_before != ref->not_before || fast->not_after != ref->not_after ||
        strcmp(fast->pubkey_sha256, ref->pubkey_sha256) != 0)
        return xb_cc_fail(res, "record fields differ: subject '%s' / '%s', serial %s / %s",
                          fast->subject, ref->subject, fast->serial, ref->serial);
    return 1;
}

static int xb_cc_issue(xb_ca *ca, const xb_csr *csr, const xb_csr_ref *ref, time_t now,
                       const uint8_t *serial, xb_crosscheck *res)
{
    xb_issued fast, slow;
    xb_diag d1 = {""}, d2 = {""};
    xb_err e1 = xb_ca_issue_at(ca, csr, res->reg_id, now, serial, &fast, &d1);
    xb_err e2 = xb_ca_issue_reference(ca, ref, res->reg_id, now, serial, &slow, &d2);
    int ok = 1;
    res->issue_err = e2;
    if (e1 != e2)
        ok = xb_cc_fail(res, "issue: fast %s (%s), reference %s (%s)", xb_err_code(e1), d1.msg,
                        xb_err_code(e2), d2.msg);
    else if (e1 == XB_OK)
        ok = xb_cc_compare(ca, &fast, &slow, res);
    if (e1 == XB_OK)
        xb_issued_clear(&fast);
    if (e2 == XB_OK)
        xb_issued_clear(&slow);
    return ok;
}

int xb_ca_crosscheck(xb_ca *ca, const uint8_t *der, size_t len, const char *reg_id, time_t now,
                     const uint8_t serial[XB_CA_SERIAL_LEN], xb_crosscheck *res)
{
    memset(res, 0, sizeof *res);
    if (ca->key == NULL) /* a token's key: the reference issuer cannot sign */
        return xb_cc_fail(res, "no reference path: the CA key is not an OpenSSL key");
    xb_csr *csr = NULL;
    xb_csr_ref *ref = NULL;
    xb_diag d1 = {""}, d2 = {""};
    xb_err e1 = xb_csr_parse(der, len, &csr, &d1);
    xb_err e2 = xb_csr_parse_reference(der, len, &ref, &d2);
    res->parse_err = e2;
    int ok = 1;
    if (e1 != e2) {
        ok = xb_cc_fail(res, "parse: fast %s (%s), reference %s (%s)", xb_err_code(e1), d1.msg,
                        xb_err_code(e2), d2.msg);
    } else if (e1 == XB_OK) {
        if (reg_id != NULL)
            snprintf(res->reg_id, sizeof res->reg_id, "%s", reg_id);
        else
            xb_cc_reg_id(ref, res->reg_id, sizeof res->reg_id);
        e1 = xb_csr_check_subject(csr, res->reg_id, &d1);
        e2 = xb_csr_check_subject_reference(ref, res->reg_id, &d2);
        res->subject_err = e2;
        if (e1 != e2)
            ok = xb_cc_fail(res, "subject: fast %s (%s), reference %s (%s)", xb_err_code(e1),
                            d1.msg, xb_err_code(e2), d2.msg);
        else
            ok = xb_cc_issue(ca, csr, ref, now, serial, res);
    }
    xb_csr_free(csr);
    xb_csr_ref_free(ref);
    return ok;
}
