/* The reference issuer (ca_reference.h): the device certificate profile (DESIGN.md section 6)
 * through the X509 API. issue.c builds the same certificate without it. */
#include "ca_reference.h"

#include <string.h>

#include <openssl/err.h>

#include "xb_util.h"

static int xb_ref_copies(const xb_ca *ca, int nid)
{
    for (int i = 0; i < ca->copy_count; i++)
        if (ca->copy_nids[i] == nid)
            return 1;
    return 0;
}

/* A copied attribute must keep within X.520's bounds (C: 2 characters, O/OU: 64, L/ST: 128,
 * as OpenSSL's string table has them): a device must not be able to grow its certificate or
 * records without limit. An attribute out of bounds is dropped, not a reason to refuse. */
static int xb_ref_attr_in_bounds(int nid, const ASN1_STRING *value)
{
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, value);
    if (len < 0) {
        ERR_clear_error();
        return 0;
    }
    long chars = 0;
    for (int i = 0; i < len; i++)
        chars += (utf8[i] & 0xC0) != 0x80; /* count code points, not bytes */
    OPENSSL_free(utf8);
    ASN1_STRING_TABLE *t = ASN1_STRING_TABLE_get(nid);
    long max = t != NULL && t->maxsize > 0 ? t->maxsize : 64;
    long min = t != NULL && t->minsize > 0 ? t->minsize : 1;
    return chars >= min && chars <= max;
}

/* The subject: CN = the registration ID (already checked equal to the CSR's CN), plus the
 * CSR's attributes that policy copies, in the CSR's order. Others are dropped, not refused.
 * The CN is set as a UTF8String directly: Azure DPS IDs run to 128 characters while OpenSSL's
 * string table would refuse a CN over X.520's 64 (the device's own CSR already carried it). */
static X509_NAME *xb_ref_build_subject(const xb_ca *ca, const xb_csr_ref *csr, const char *reg_id)
{
    X509_NAME *name = X509_NAME_new();
    if (name == NULL)
        return NULL;
    const X509_NAME *req_name = X509_REQ_get_subject_name(csr->req);
    int have_cn = 0, copied = 0;
    for (int i = 0; i < X509_NAME_entry_count(req_name); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(req_name, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        int ok = 1;
        if (nid == NID_commonName && !have_cn) {
            ok = X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                            (const unsigned char *)reg_id, -1, -1, 0);
            have_cn = 1;
        } else if (nid != NID_commonName && copied < XB_CA_MAX_COPIED && xb_ref_copies(ca, nid) &&
                   xb_ref_attr_in_bounds(nid, X509_NAME_ENTRY_get_data(e))) {
            ok = X509_NAME_add_entry(name, e, -1, 0);
            copied++;
        }
        if (!ok) {
            X509_NAME_free(name);
            return NULL;
        }
    }
    if (!have_cn && !X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                                (const unsigned char *)reg_id, -1, -1, 0)) {
        X509_NAME_free(name);
        return NULL;
    }
    return name;
}

static xb_err xb_ref_set_validity(const xb_ca *ca, X509 *x, time_t now, xb_issued *out, xb_diag *d)
{
    time_t not_before = now - XB_BACKDATE_SECONDS;
    time_t not_after = now + (time_t)ca->validity_days * 86400;
    if (not_after > ca->not_after)
        not_after = ca->not_after; /* never outlive the CA that signed it */
    if (not_after <= now)
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "the signing CA certificate has expired");
    if (ASN1_TIME_set(X509_getm_notBefore(x), not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), not_after) == NULL)
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot set validity");
    out->not_before = not_before;
    out->not_after = not_after;
    return XB_OK;
}

static xb_err xb_ref_add_extensions(const xb_ca *ca, const xb_csr_ref *csr, X509 *x, xb_diag *d)
{
    /* The CSR's requested extensions are never looked at: the profile alone decides. */
    X509_EXTENSION *ku = csr->is_rsa ? ca->ext_key_usage_rsa : ca->ext_key_usage_ec;
    if (!X509_add_ext(x, ca->ext_basic_constraints, -1) || !X509_add_ext(x, ku, -1) ||
        !X509_add_ext(x, ca->ext_eku, -1))
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot add extensions");
    xb_err err = xb_ca_add_ski(x, d);
    if (err != XB_OK)
        return err;
    if (!X509_add_ext(x, ca->ext_aki, -1))
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot add authorityKeyIdentifier");
    if (ca->ext_cdp != NULL && !X509_add_ext(x, ca->ext_cdp, -1))
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot add cRLDistributionPoints");
    return XB_OK;
}

/* Fill the record fields of out from the signed certificate. */
static xb_err xb_ref_describe(X509 *x, xb_issued *out, xb_diag *d)
{
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    if (serial->length <= 0 || serial->length > 20)
        return xb_fail(d, XB_ERR_INTERNAL, "serial of unexpected length");
    xb_hex(serial->data, (size_t)serial->length, out->serial);

    out->subject = xb_name_rfc2253(X509_get_subject_name(x));
    if (out->subject == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    xb_err err = xb_spki_sha256(x, out->pubkey_sha256, d);
    if (err != XB_OK)
        return err;

    unsigned char *der = NULL;
    int der_len = i2d_X509(x, &der);
    if (der_len <= 0)
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot encode the certificate");
    out->der = der;
    out->der_len = (size_t)der_len;
    return XB_OK;
}

xb_err xb_ca_issue_reference(xb_ca *ca, const xb_csr_ref *csr, const char *reg_id, time_t now,
                             const uint8_t *serial, xb_issued *out, xb_diag *d)
{
    memset(out, 0, sizeof *out);
    if (ca->key == NULL) /* X509_sign needs the key as an OpenSSL object, not a token's */
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE,
                       "the reference issuer needs the CA key as an OpenSSL key");
    X509 *x = X509_new();
    X509_NAME *subject = NULL;
    xb_err err = XB_OK;
    if (x == NULL || !X509_set_version(x, X509_VERSION_3)) {
        err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
        goto done;
    }
    err = serial != NULL ? xb_ca_serial_to_asn1(serial, X509_get_serialNumber(x), d)
                         : xb_ca_random_serial(X509_get_serialNumber(x), d);
    if (err != XB_OK)
        goto done;
    subject = xb_ref_build_subject(ca, csr, reg_id);
    if (subject == NULL || !X509_set_subject_name(x, subject) ||
        !X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) ||
        !X509_set_pubkey(x, csr->pkey)) {
        err = xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot build the certificate");
        goto done;
    }
    err = xb_ref_set_validity(ca, x, now, out, d);
    if (err == XB_OK)
        err = xb_ref_add_extensions(ca, csr, x, d);
    if (err != XB_OK)
        goto done;
    if (X509_sign(x, ca->key, ca->md) <= 0) {
        err = xb_fail_ssl(d, XB_ERR_CRYPTO, "signing failed");
        goto done;
    }
    err = xb_ref_describe(x, out, d);
done:
    X509_NAME_free(subject);
    X509_free(x);
    if (err != XB_OK)
        xb_issued_clear(out);
    return err;
}
