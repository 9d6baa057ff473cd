/* What EST needs to read from a checked request besides the key and the subject check: the CN
 * as the registration ID, the subject's encoding, the challengePassword attribute (tls-unique
 * proof of possession) and the subjectAltName it asks for (renewal compares it). The request
 * was walked whole by xb_csr_parse, so every element read here is known well-formed DER; the
 * walks still check each step, as they read octets that came from the network. */
#include "ca.h"

#include <string.h>

#include <openssl/crypto.h>

#include "csr_internal.h"

static const uint8_t xb_oid_challenge_password[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                    0x0d, 0x01, 0x09, 0x07};
static const uint8_t xb_oid_extension_request[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                   0x0d, 0x01, 0x09, 0x0e};
static const uint8_t xb_oid_san[] = {0x55, 0x1d, 0x11};

xb_err xb_csr_common_name(const xb_csr *csr, char out[XB_REGID_MAX + 1], xb_diag *d)
{
    out[0] = '\0';
    xb_name_iter it;
    xb_der_elem atv, type, value, cn = {0};
    int cns = 0;
    xb_name_iter_init(&it, csr->name, csr->name_len);
    while (xb_name_next(&it, &atv, &type, &value))
        if (xb_name_is_cn(&type) && cns++ == 0)
            cn = value;
    if (cns != 1)
        return xb_fail(d, XB_ERR_SUBJECT_MISMATCH,
                       "the CSR subject must hold exactly one CN, the registration ID (it has %d)",
                       cns);
    unsigned char *utf8 = NULL;
    int n = xb_name_value_utf8(&cn, &utf8);
    xb_err err = XB_OK;
    if (n < 0)
        err = xb_fail(d, XB_ERR_SUBJECT_MISMATCH, "the CSR subject CN cannot be decoded");
    else if (!xb_regid_valid((const char *)utf8, (size_t)n))
        err = xb_fail(d, XB_ERR_INVALID_REGISTRATION_ID,
                      "the CSR subject CN is not a valid registration ID (1..128 of "
                      "A-Z a-z 0-9 - . _ :, ending alphanumeric or '-')");
    else
        memcpy(out, utf8, (size_t)n + 1);
    OPENSSL_free(utf8);
    return err;
}

const uint8_t *xb_csr_subject_der(const xb_csr *csr, size_t *len)
{
    *len = csr->name_len;
    return csr->name;
}

/* The values SET of the first attribute of this type: 1 found, 0 absent, -1 malformed or
 * present twice (an ambiguous request is not guessed at). */
static int xb_csr_find_attr(const xb_csr *csr, const uint8_t *oid, size_t oid_len,
                            xb_der_elem *values)
{
    xb_der_reader r = xb_der_reader_of(csr->attrs, csr->attrs_len);
    xb_der_elem attr, type, vals;
    int found = 0;
    while (r.left > 0) {
        if (!xb_der_read_tag(&r, XB_DER_SEQUENCE, &attr))
            return -1;
        xb_der_reader parts = xb_der_reader_of(attr.val, attr.len);
        if (!xb_der_read_tag(&parts, XB_DER_OID, &type) ||
            !xb_der_read_tag(&parts, XB_DER_SET, &vals))
            return -1;
        if (!xb_der_oid_is(&type, oid, oid_len))
            continue;
        if (found++)
            return -1;
        *values = vals;
    }
    return found;
}

xb_err xb_csr_challenge_password(const xb_csr *csr, char *out, size_t size, xb_diag *d)
{
    if (size > 0)
        out[0] = '\0';
    xb_der_elem values, value;
    int found =
        xb_csr_find_attr(csr, xb_oid_challenge_password, sizeof xb_oid_challenge_password, &values);
    if (found == 0)
        return xb_fail(d, XB_ERR_NOT_FOUND, "the CSR has no challengePassword attribute");
    xb_der_reader vr = xb_der_reader_of(values.val, values.len);
    if (found < 0 || !xb_der_read(&vr, &value) || vr.left != 0 ||
        (value.tag & (XB_DER_CLASS_MASK | XB_DER_CONSTRUCTED)) != 0)
        return xb_fail(d, XB_ERR_BAD_CSR,
                       "the CSR's challengePassword must be one attribute with one string value");
    unsigned char *utf8 = NULL;
    int n = xb_name_value_utf8(&value, &utf8);
    xb_err err = XB_OK;
    if (n < 0 || (size_t)n >= size || memchr(utf8, '\0', (size_t)n) != NULL)
        err = xb_fail(d, XB_ERR_BAD_CSR,
                      "the CSR's challengePassword is not a string of at most %zu characters",
                      size > 0 ? size - 1 : 0);
    else
        memcpy(out, utf8, (size_t)n + 1);
    OPENSSL_free(utf8);
    return err;
}

/* Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } */
static int xb_csr_read_ext(const xb_der_elem *ext, xb_der_elem *oid, xb_der_elem *value)
{
    xb_der_reader p = xb_der_reader_of(ext->val, ext->len);
    xb_der_elem critical;
    if (!xb_der_read_tag(&p, XB_DER_OID, oid))
        return 0;
    if (xb_der_peek(&p) == XB_DER_BOOLEAN && !xb_der_read(&p, &critical))
        return 0;
    return xb_der_read_tag(&p, XB_DER_OCTET_STRING, value) && p.left == 0;
}

xb_err xb_csr_requested_san(const xb_csr *csr, const uint8_t **val, size_t *len, xb_diag *d)
{
    *val = NULL;
    *len = 0;
    xb_der_elem values, exts, ext, oid, value;
    int found =
        xb_csr_find_attr(csr, xb_oid_extension_request, sizeof xb_oid_extension_request, &values);
    if (found == 0)
        return xb_fail(d, XB_ERR_NOT_FOUND, "the CSR requests no subjectAltName");
    xb_der_reader vr = xb_der_reader_of(values.val, values.len);
    if (found < 0 || !xb_der_read_tag(&vr, XB_DER_SEQUENCE, &exts) || vr.left != 0)
        return xb_fail(d, XB_ERR_BAD_CSR, "the CSR's extensionRequest attribute is malformed");
    xb_der_reader er = xb_der_reader_of(exts.val, exts.len);
    int sans = 0;
    while (er.left > 0) {
        if (!xb_der_read_tag(&er, XB_DER_SEQUENCE, &ext) || !xb_csr_read_ext(&ext, &oid, &value))
            return xb_fail(d, XB_ERR_BAD_CSR, "the CSR's extensionRequest attribute is malformed");
        if (XB_DER_OID_IS(&oid, xb_oid_san) && sans++ == 0) {
            *val = value.val;
            *len = value.len;
        }
    }
    if (sans > 1)
        return xb_fail(d, XB_ERR_BAD_CSR, "the CSR requests subjectAltName twice");
    return sans == 1 ? XB_OK : xb_fail(d, XB_ERR_NOT_FOUND, "the CSR requests no subjectAltName");
}
