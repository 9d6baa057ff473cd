/* The original XBoot.Server wire format, without HTTP: decode a request body, judge a
 * Content-Type, encode the answer. Pure functions, so they are unit-tested and fuzzed alone;
 * route_xboot.c is the thin libevent adapter around them. */
#ifndef XB_XBOOT_WIRE_H
#define XB_XBOOT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "ca.h"
#include "xb_error.h"
#include "xb_regid.h"

typedef struct xb_xboot_request {
    char reg_id[XB_REGID_MAX + 1]; /* set as soon as it is known valid, even if Csr is not */
    uint8_t *csr_der;              /* malloc'd; xb_xboot_request_clear frees it */
    size_t csr_len;
} xb_xboot_request;

/* {"RegistrationId": "...", "Csr": "<base64 DER>"}, keys matched case-insensitively.
 * XB_ERR_MALFORMED_JSON, XB_ERR_MALFORMED_REQUEST, XB_ERR_INVALID_REGISTRATION_ID or
 * XB_ERR_BAD_BASE64; the CSR itself is not looked at here. */
xb_err xb_xboot_decode(const char *body, size_t len, xb_xboot_request *out, xb_diag *d);
void xb_xboot_request_clear(xb_xboot_request *r);

/* 1 if a body with this Content-Type (NULL: none) is read as JSON. */
int xb_xboot_content_type_ok(const char *content_type);

/* {"Certificate", "Chain", "NotAfter", "Serial"}; free with cJSON_free. NULL if out of memory. */
char *xb_xboot_encode_answer(const xb_issued *cert, const xb_ca *ca);

#endif
