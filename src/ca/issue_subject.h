/* The device certificate's subject, written as DER from the request's entries (issue_subject.c)
 * for the fast issuer (issue.c). */
#ifndef XB_ISSUE_SUBJECT_H
#define XB_ISSUE_SUBJECT_H

#include "csr_internal.h"

/* One relative name of the subject: the CN (registration ID) or an entry copied verbatim. */
typedef struct xb_subject_part {
    int copy; /* index into ca->fast.copy, or -1 for the CN */
    xb_der_elem atv, value;
} xb_subject_part;

typedef struct xb_subject {
    xb_subject_part parts[1 + XB_CA_MAX_COPIED];
    size_t count;
    const char *reg_id;
    size_t reg_id_len;
    size_t cn_content; /* contents of SEQUENCE { commonName, UTF8String reg_id } */
    size_t content;    /* contents of the Name */
    size_t der_len;    /* the Name, whole */
} xb_subject;

/* Decide the subject as the reference does: CN = reg_id where the request's first CN is (or at
 * the end), plus the request's entries policy copies, in its order. XB_ERR_CRYPTO if reg_id
 * could not be encoded (not UTF-8). */
xb_err xb_subject_plan(const xb_ca *ca, const xb_csr *csr, const char *reg_id, xb_subject *s,
                       xb_diag *d);

/* Write the Name (s->der_len octets) at out; returns the position after it. */
uint8_t *xb_subject_write(const xb_subject *s, uint8_t *out);

/* Its RFC 2253 text as X509_NAME_print_ex(XN_FLAG_RFC2253) prints it, malloc'd (OPENSSL_free). */
char *xb_subject_text(const xb_ca *ca, const xb_subject *s);

#endif
