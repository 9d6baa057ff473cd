/* The request's subject Name, read in place: its check (as X509_NAME's decoder would accept it),
 * a walk over its entries, and xb_csr_check_subject. */
#include "csr_internal.h"

#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>

static const uint8_t xb_oid_cn[] = {0x55, 0x04, 0x03};

int xb_name_is_cn(const xb_der_elem *type)
{
    return XB_DER_OID_IS(type, xb_oid_cn);
}

int xb_name_value_utf8(const xb_der_elem *value, unsigned char **utf8)
{
    *utf8 = NULL;
    /* The decoder keeps a value as an ASN1_STRING typed by its tag, holding the contents (the
     * whole encoding for a SEQUENCE); only string types convert, whatever the octets. */
    int constructed = (value->tag & XB_DER_CONSTRUCTED) != 0;
    if (value->tlv_len > 0x7fffffff)
        return -1;
    ASN1_STRING s = {
        .length = (int)(constructed ? value->tlv_len : value->len),
        .type = value->tag & 0x1f,
        .data = (unsigned char *)(constructed ? value->tlv : value->val),
        .flags = 0,
    };
    int n = ASN1_STRING_to_UTF8(utf8, &s);
    if (n < 0)
        ERR_clear_error();
    return n;
}

/* One entry's value: a universal type of ASN1_PRINTABLE (OpenSSL's DirectoryString, wider than
 * X.520's), with the contents rules of its decoder. */
static int xb_name_value_ok(const xb_der_elem *v)
{
    if (v->tag & XB_DER_CLASS_MASK)
        return 0;
    int number = v->tag & 0x1f;
    if (!(ASN1_tag2bit(number) & (B_ASN1_PRINTABLE))) /* the macro is unparenthesised */
        return 0;
    if (!(v->tag & XB_DER_CONSTRUCTED)) {
        if (number == V_ASN1_BIT_STRING && !xb_der_bit_string_ok(v->val, v->len))
            return 0;
        if (number == V_ASN1_BMPSTRING && (v->len & 1))
            return 0;
        if (number == V_ASN1_UNIVERSALSTRING && (v->len & 3))
            return 0;
    }
    /* The decoder also builds a canonical (UTF-8) form of the name: these string types must
     * convert; the other ones it canonicalises are single-octet and always do. */
    if (number == V_ASN1_UTF8STRING || number == V_ASN1_BMPSTRING ||
        number == V_ASN1_UNIVERSALSTRING) {
        unsigned char *utf8 = NULL;
        int n = xb_name_value_utf8(v, &utf8);
        OPENSSL_free(utf8);
        if (n < 0)
            return 0;
    }
    return 1;
}

/* SEQUENCE { type OBJECT IDENTIFIER, value }: exactly two elements. */
static int xb_name_read_atv(const xb_der_elem *atv, xb_der_elem *type, xb_der_elem *value)
{
    xb_der_reader parts = xb_der_reader_of(atv->val, atv->len);
    return xb_der_read_tag(&parts, XB_DER_OID, type) && xb_der_read(&parts, value) &&
           parts.left == 0;
}

int xb_name_ok(const xb_der_elem *name)
{
    xb_der_reader rdns = xb_der_reader_of(name->val, name->len);
    xb_der_elem rdn, atv, type, value;
    while (rdns.left > 0) {
        /* A relative name may be empty: the decoder does not require SIZE (1..MAX). */
        if (!xb_der_read_tag(&rdns, XB_DER_SET, &rdn))
            return 0;
        xb_der_reader atvs = xb_der_reader_of(rdn.val, rdn.len);
        while (atvs.left > 0) {
            if (!xb_der_read_tag(&atvs, XB_DER_SEQUENCE, &atv) ||
                !xb_name_read_atv(&atv, &type, &value) || !xb_der_oid_ok(type.val, type.len) ||
                !xb_name_value_ok(&value))
                return 0;
        }
    }
    return 1;
}

void xb_name_iter_init(xb_name_iter *it, const uint8_t *name, size_t name_len)
{
    xb_der_reader whole = xb_der_reader_of(name, name_len);
    xb_der_elem seq = {0};
    if (!xb_der_read(&whole, &seq))
        seq.len = 0;
    it->rdns = xb_der_reader_of(seq.val, seq.len);
    it->atvs = xb_der_reader_of(NULL, 0);
}

int xb_name_next(xb_name_iter *it, xb_der_elem *atv, xb_der_elem *type, xb_der_elem *value)
{
    while (it->atvs.left == 0) {
        xb_der_elem rdn;
        if (!xb_der_read(&it->rdns, &rdn))
            return 0;
        it->atvs = xb_der_reader_of(rdn.val, rdn.len);
    }
    return xb_der_read(&it->atvs, atv) && xb_name_read_atv(atv, type, value);
}

xb_err xb_csr_check_subject(const xb_csr *csr, const char *reg_id, xb_diag *d)
{
    xb_name_iter it;
    xb_der_elem atv, type, value, cn = {0};
    int cns = 0;
    xb_name_iter_init(&it, csr->name, csr->name_len);
    while (xb_name_next(&it, &atv, &type, &value)) {
        if (!xb_name_is_cn(&type))
            continue;
        if (cns++ == 0)
            cn = value;
    }
    if (cns == 0)
        return xb_fail(d, XB_ERR_SUBJECT_MISMATCH,
                       "the CSR subject has no CN; it must be CN=<registration ID>");
    if (cns > 1)
        return xb_fail(d, XB_ERR_SUBJECT_MISMATCH,
                       "the CSR subject has more than one CN; it must have exactly one");
    unsigned char *utf8 = NULL;
    int n = xb_name_value_utf8(&cn, &utf8);
    if (n < 0)
        return xb_fail(d, XB_ERR_SUBJECT_MISMATCH, "the CSR subject CN cannot be decoded");
    int same = (size_t)n == strlen(reg_id) && (n == 0 || memcmp(utf8, reg_id, (size_t)n) == 0);
    OPENSSL_free(utf8);
    if (!same)
        return xb_fail(d, XB_ERR_SUBJECT_MISMATCH,
                       "the CSR subject CN does not equal the registration ID");
    return XB_OK;
}
