/* The certificate subject for the fast issuer: the same relative names the reference builds
 * with X509_NAME_add_entry (one entry each), written as DER straight from the request's octets,
 * and its RFC 2253 text. */
#include "issue_subject.h"

#include <string.h>

#include <openssl/err.h>

static const uint8_t xb_cn_oid_tlv[] = {XB_DER_OID, 0x03, 0x55, 0x04, 0x03};

static int xb_subject_copy_index(const xb_ca *ca, const xb_der_elem *type)
{
    for (int i = 0; i < ca->copy_count; i++)
        if (ca->fast.copy[i].oid_len > 0 &&
            xb_der_oid_is(type, ca->fast.copy[i].oid, ca->fast.copy[i].oid_len))
            return i;
    return -1;
}

/* A copied attribute must keep within X.520's bounds (counted in code points, as the reference
 * does): a device must not be able to grow its certificate or records without limit. An
 * attribute out of bounds, or that does not convert to UTF-8, is dropped, not refused. */
static int xb_subject_in_bounds(const xb_ca_copy_attr *c, const xb_der_elem *value)
{
    unsigned char *utf8 = NULL;
    int len = xb_name_value_utf8(value, &utf8);
    if (len < 0)
        return 0;
    long chars = 0;
    for (int i = 0; i < len; i++)
        chars += (utf8[i] & 0xC0) != 0x80;
    OPENSSL_free(utf8);
    return chars >= c->min_chars && chars <= c->max_chars;
}

/* The whole AttributeTypeAndValue of a part. */
static size_t xb_subject_atv_len(const xb_subject *s, const xb_subject_part *p)
{
    return p->copy >= 0 ? p->atv.tlv_len : xb_der_header_len(s->cn_content) + s->cn_content;
}

xb_err xb_subject_plan(const xb_ca *ca, const xb_csr *csr, const char *reg_id, xb_subject *s,
                       xb_diag *d)
{
    memset(s, 0, sizeof *s);
    s->reg_id = reg_id;
    s->reg_id_len = strlen(reg_id);
    /* The reference's X509_set_subject_name re-encodes the name with its canonical form, which
     * needs valid UTF-8 (registration IDs are ASCII: this never fails for them). */
    xb_der_elem cn_value = {.tag = XB_DER_UTF8STRING,
                            .tlv = (const uint8_t *)reg_id,
                            .tlv_len = s->reg_id_len,
                            .val = (const uint8_t *)reg_id,
                            .len = s->reg_id_len};
    unsigned char *utf8 = NULL;
    int ok = xb_name_value_utf8(&cn_value, &utf8) >= 0;
    OPENSSL_free(utf8);
    if (!ok)
        return xb_fail(d, XB_ERR_CRYPTO, "cannot build the certificate");
    s->cn_content = sizeof xb_cn_oid_tlv + xb_der_header_len(s->reg_id_len) + s->reg_id_len;

    xb_name_iter it;
    xb_der_elem atv, type, value;
    int have_cn = 0, copied = 0;
    xb_name_iter_init(&it, csr->name, csr->name_len);
    while (xb_name_next(&it, &atv, &type, &value)) {
        int cn = xb_name_is_cn(&type), idx = -1;
        if (cn && !have_cn) {
            s->parts[s->count++].copy = -1;
            have_cn = 1;
        } else if (!cn && copied < XB_CA_MAX_COPIED &&
                   (idx = xb_subject_copy_index(ca, &type)) >= 0 &&
                   xb_subject_in_bounds(&ca->fast.copy[idx], &value)) {
            xb_subject_part *p = &s->parts[s->count++];
            p->copy = idx;
            p->atv = atv;
            p->value = value;
            copied++;
        }
    }
    if (!have_cn)
        s->parts[s->count++].copy = -1;
    for (size_t i = 0; i < s->count; i++) {
        size_t atv_len = xb_subject_atv_len(s, &s->parts[i]);
        s->content += xb_der_header_len(atv_len) + atv_len;
    }
    s->der_len = xb_der_header_len(s->content) + s->content;
    return XB_OK;
}

uint8_t *xb_subject_write(const xb_subject *s, uint8_t *out)
{
    out = xb_der_put_header(out, XB_DER_SEQUENCE, s->content);
    for (size_t i = 0; i < s->count; i++) {
        const xb_subject_part *p = &s->parts[i];
        out = xb_der_put_header(out, XB_DER_SET, xb_subject_atv_len(s, p));
        if (p->copy >= 0) { /* the request's entry as it is: OpenSSL re-encodes it identically */
            memcpy(out, p->atv.tlv, p->atv.tlv_len);
            out += p->atv.tlv_len;
            continue;
        }
        out = xb_der_put_header(out, XB_DER_SEQUENCE, s->cn_content);
        memcpy(out, xb_cn_oid_tlv, sizeof xb_cn_oid_tlv);
        out += sizeof xb_cn_oid_tlv;
        out = xb_der_put_header(out, XB_DER_UTF8STRING, s->reg_id_len);
        memcpy(out, s->reg_id, s->reg_id_len);
        out += s->reg_id_len;
    }
    return out;
}

/* Values printed as they are under RFC 2253 escaping: one-octet string types holding letters,
 * digits, "-._:" and inner spaces (what registration IDs and usual O/OU/L values hold). */
static int xb_subject_plain(int tag, const uint8_t *v, size_t len)
{
    if (tag != V_ASN1_UTF8STRING && tag != V_ASN1_NUMERICSTRING && tag != V_ASN1_PRINTABLESTRING &&
        tag != V_ASN1_T61STRING && tag != V_ASN1_IA5STRING)
        return 0;
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = v[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '.' && c != '_' && c != ':' &&
            !(c == ' ' && i > 0 && i + 1 < len))
            return 0;
    }
    return 1;
}

/* Anything else: OpenSSL's own printer on the decoded name, as the reference does. */
static char *xb_subject_text_openssl(const xb_subject *s)
{
    uint8_t *der = OPENSSL_malloc(s->der_len);
    if (der == NULL)
        return NULL;
    xb_subject_write(s, der);
    const unsigned char *p = der;
    X509_NAME *name = d2i_X509_NAME(NULL, &p, (long)s->der_len);
    OPENSSL_free(der);
    char *out = name != NULL ? xb_name_rfc2253(name) : NULL;
    X509_NAME_free(name);
    ERR_clear_error();
    return out;
}

char *xb_subject_text(const xb_ca *ca, const xb_subject *s)
{
    size_t total = 1;
    for (size_t i = 0; i < s->count; i++) {
        const xb_subject_part *p = &s->parts[i];
        const char *sn = p->copy < 0 ? "CN" : ca->fast.copy[p->copy].sn;
        int plain = p->copy < 0 ? xb_subject_plain(V_ASN1_UTF8STRING, (const uint8_t *)s->reg_id,
                                                   s->reg_id_len)
                                : xb_subject_plain(p->value.tag, p->value.val, p->value.len);
        if (sn == NULL || !plain)
            return xb_subject_text_openssl(s);
        total += strlen(sn) + 2 + (p->copy < 0 ? s->reg_id_len : p->value.len);
    }
    char *text = OPENSSL_malloc(total), *w = text;
    if (text == NULL)
        return NULL;
    /* RFC 2253 lists the most significant relative name last. */
    for (size_t i = s->count; i-- > 0;) {
        const xb_subject_part *p = &s->parts[i];
        const char *sn = p->copy < 0 ? "CN" : ca->fast.copy[p->copy].sn;
        const char *v = p->copy < 0 ? s->reg_id : (const char *)p->value.val;
        size_t vlen = p->copy < 0 ? s->reg_id_len : p->value.len, snlen = strlen(sn);
        if (w != text)
            *w++ = ',';
        memcpy(w, sn, snlen);
        w += snlen;
        *w++ = '=';
        memcpy(w, v, vlen);
        w += vlen;
    }
    *w = '\0';
    return text;
}
