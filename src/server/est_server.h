/* EST (RFC 7030) in xbootd: the answers built once at load, the wire format (est_wire.c),
 * authentication (est_auth.c) and the HTTP adapter (route_est.c), a sibling of
 * route_xboot.c that feeds the same enrollment pipeline (enroll.c). docs/est.md is the
 * user-facing side of this file. */
#ifndef XB_EST_SERVER_H
#define XB_EST_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "ca.h"
#include "config.h"
#include "registry.h"

/* What every worker serves unchanged, built before the workers fork (est.c). */
typedef struct xb_est {
    char *cacerts; /* base64 lines of the certs-only PKCS#7 of the chain */
    size_t cacerts_len;
    char *csrattrs; /* base64 lines of the CsrAttrs DER */
    size_t csrattrs_len;
} xb_est;

xb_err xb_est_new(const xb_ca *ca, const xb_config *cfg, xb_est **out, xb_diag *d);
void xb_est_free(xb_est *est);

/* ---- wire format (est_wire.c): pure functions, unit-tested and fuzzed ---- */

typedef enum xb_est_op {
    XB_EST_CACERTS,
    XB_EST_SIMPLEENROLL,
    XB_EST_SIMPLEREENROLL,
    XB_EST_CSRATTRS,
    XB_EST__OP_COUNT
} xb_est_op;

/* The path below /.well-known/est ("/op" or "/label/op"; rest points just after "est") into
 * an operation. XB_ERR_NOT_FOUND, with d naming the unknown label or operation. */
xb_err xb_est_parse_path(const char *rest, const xb_config *cfg, xb_est_op *op, xb_diag *d);
const char *xb_est_op_name(xb_est_op op);

/* Certs-only PKCS#7 (signed-data without signers, RFC 7030 section 4.1.3) holding the n
 * certificates in this order, DER; *out is OPENSSL_malloc'd. */
xb_err xb_est_pkcs7_certs(const uint8_t *const *der, const size_t *len, size_t n, uint8_t **out,
                          size_t *out_len, xb_diag *d);

/* CsrAttrs (RFC 7030 section 4.5.2) for a CA whose key is key_type (xb_ca_key_type): CN
 * required, the key type and signature algorithm to use, and challengePassword when
 * proof-of-possession is required. *out is OPENSSL_malloc'd. */
xb_err xb_est_csrattrs(const char *key_type, int require_pop, uint8_t **out, size_t *out_len,
                       xb_diag *d);

/* 1 if the Content-Type header value names media type want (case-insensitive, parameters
 * ignored). */
int xb_est_media_type_is(const char *content_type, const char *want);

/* A request body: base64 (whitespace anywhere tolerated) of a DER PKCS#10. *der malloc'd.
 * XB_ERR_BAD_BASE64 or XB_ERR_BAD_CSR (empty). */
xb_err xb_est_decode_body(const char *body, size_t len, uint8_t **der, size_t *der_len, xb_diag *d);

/* tls-unique proof of possession (RFC 7030 section 3.5): 1 if challenge is the base64 of the
 * first Finished message, compared in constant time. */
int xb_est_tls_unique_ok(const uint8_t *finished, size_t finished_len, const char *challenge);

/* ---- renewal (est_auth.c) ---- */

/* Renewal: the request's subject must be the certificate's (DER of the Name) and its requested
 * subjectAltName the certificate's (none for none). XB_ERR_SUBJECT_MISMATCH otherwise. */
xb_err xb_est_renewal_match(const xb_csr *csr, X509 *cert, xb_diag *d);

#endif
