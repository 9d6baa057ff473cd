/* A minimal, bounds-checked DER reader. OpenSSL's d2i_X509 decodes the public key through the
 * 3.0 decoder machinery (about 100 us a certificate), which would make the load generator a
 * bottleneck; checking an answer only needs a few byte ranges, so we walk the TLVs ourselves.
 * Input comes from the server under test: every length is checked against the buffer. */
#ifndef XBB_DER_WALK_H
#define XBB_DER_WALK_H

#include <stddef.h>
#include <stdint.h>

typedef struct xbb_span {
    const uint8_t *p;
    size_t len;
} xbb_span;

/* One TLV: tag (single-byte tags only), the whole encoding, and the contents. */
typedef struct xbb_tlv {
    unsigned tag;
    xbb_span all;
    xbb_span val;
} xbb_tlv;

#define XBB_DER_SEQUENCE 0x30u
#define XBB_DER_SET 0x31u
#define XBB_DER_INTEGER 0x02u
#define XBB_DER_BIT_STRING 0x03u
#define XBB_DER_OID 0x06u
#define XBB_DER_CTX0 0xA0u

/* Read the TLV at the start of *in and advance *in past it. 0, or -1 if malformed. */
int xbb_der_next(xbb_span *in, xbb_tlv *out);

/* Like xbb_der_next, and the tag must be `tag`. */
int xbb_der_expect(xbb_span *in, unsigned tag, xbb_tlv *out);

/* From a certificate: the subject Name and SubjectPublicKeyInfo, as whole TLVs. */
int xbb_der_cert_fields(const uint8_t *der, size_t len, xbb_span *subject, xbb_span *spki);

/* The TBSCertificate of a certificate, as a whole TLV (what the CA signs). */
int xbb_der_cert_tbs(const uint8_t *der, size_t len, xbb_span *tbs);

/* From a PKCS#10 request: the CertificationRequestInfo and SubjectPublicKeyInfo (whole TLVs),
 * the signature algorithm OID (contents) and the signature bytes (BIT STRING contents without
 * the unused-bits octet). */
int xbb_der_csr_fields(const uint8_t *der, size_t len, xbb_span *cri, xbb_span *spki,
                       xbb_span *sig_oid, xbb_span *sig);

/* From a SubjectPublicKeyInfo TLV: the algorithm OID, the parameters TLV (len 0 if absent) and
 * the key bytes (BIT STRING contents without the unused-bits octet). */
int xbb_der_spki_fields(xbb_span spki, xbb_span *alg_oid, xbb_span *params, xbb_span *key);

/* The number of commonName attributes in a Name TLV; *cn gets the value bytes of the first. */
int xbb_der_name_cn(xbb_span name, xbb_span *cn);

/* 1 if the span holds exactly these bytes. */
int xbb_span_eq(xbb_span s, const void *p, size_t len);

#endif
