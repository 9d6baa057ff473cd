/* Strict DER (X.690 section 10) reading and writing for the issuance fast path.
 *
 * The request parser in csr.c must accept exactly what the reference parser (d2i_X509_REQ plus
 * the DER check of csr_reference.c) accepts, so the content checks below follow OpenSSL 3.0's
 * decoder rule for rule where it types a value, and nothing more: see xb_der_any_ok. */
#ifndef XB_DER_H
#define XB_DER_H

#include <stddef.h>
#include <stdint.h>

/* Identifier octets used here. Only low tag numbers (< 31) exist in this dialect. */
#define XB_DER_BOOLEAN 0x01
#define XB_DER_INTEGER 0x02
#define XB_DER_BIT_STRING 0x03
#define XB_DER_OCTET_STRING 0x04
#define XB_DER_NULL 0x05
#define XB_DER_OID 0x06
#define XB_DER_UTF8STRING 0x0c
#define XB_DER_UTCTIME 0x17
#define XB_DER_GENERALIZEDTIME 0x18
#define XB_DER_SEQUENCE 0x30
#define XB_DER_SET 0x31
#define XB_DER_CONSTRUCTED 0x20
#define XB_DER_CLASS_MASK 0xc0
#define XB_DER_CONTEXT 0x80
/* [n] EXPLICIT (constructed, context class). */
#define XB_DER_TAGGED(n) (XB_DER_CONTEXT | XB_DER_CONSTRUCTED | (n))

/* Deepest nesting of constructed encodings a request may have (real ones stay under 10). Both
 * parsers refuse deeper input, which also bounds the recursion of the tree check. */
#define XB_DER_MAX_DEPTH 32

typedef struct xb_der_elem {
    uint8_t tag;        /* the identifier octet */
    const uint8_t *tlv; /* the whole element */
    size_t tlv_len;
    const uint8_t *val; /* its contents */
    size_t len;
} xb_der_elem;

/* A cursor over a run of elements (some contents, or a whole buffer). */
typedef struct xb_der_reader {
    const uint8_t *p;
    size_t left;
} xb_der_reader;

static inline xb_der_reader xb_der_reader_of(const uint8_t *p, size_t len)
{
    xb_der_reader r = {p, len};
    return r;
}

/* The next element: 1, or 0 at the end or if its header is not DER (high tag number form,
 * indefinite or non-minimal length, length past the end). */
int xb_der_read(xb_der_reader *r, xb_der_elem *e);

/* xb_der_read, and the element must carry tag. */
int xb_der_read_tag(xb_der_reader *r, uint8_t tag, xb_der_elem *e);

/* The identifier octet of the next element, or -1 at the end. */
int xb_der_peek(const xb_der_reader *r);

/* 1 if [p, p+len) is a run of DER elements, recursively: headers as xb_der_read wants them,
 * universal SEQUENCE and SET constructed and every other universal type primitive (so no BER
 * constructed strings), no end-of-contents octets, nesting at most XB_DER_MAX_DEPTH. Contents of
 * primitive elements are not looked at. */
int xb_der_tree_ok(const uint8_t *p, size_t len);

/* Contents rules of OpenSSL's decoder (c2i functions). */
int xb_der_integer_ok(const uint8_t *v, size_t len);    /* non-empty, minimal */
int xb_der_oid_ok(const uint8_t *v, size_t len);        /* non-empty, no 0x80 sub-id start */
int xb_der_bit_string_ok(const uint8_t *v, size_t len); /* unused-bits octet present, <= 7 */

/* An ANY value (attribute values, AlgorithmIdentifier parameters) as OpenSSL decodes it. */
int xb_der_any_ok(const xb_der_elem *e);

/* 1 if e is a non-negative INTEGER whose value fits in a long (the value in *out). */
int xb_der_small_uint(const xb_der_elem *e, long *out);

/* 1 if e is an OID with exactly these contents octets. */
int xb_der_oid_is(const xb_der_elem *e, const uint8_t *oid, size_t len);
#define XB_DER_OID_IS(e, arr) xb_der_oid_is((e), (arr), sizeof(arr))

/* ---- writing ---- */

/* Octets of the identifier and length of an element with len contents octets. */
size_t xb_der_header_len(size_t len);

/* Write the identifier and length; returns the position after them. */
uint8_t *xb_der_put_header(uint8_t *out, uint8_t tag, size_t len);

#endif
