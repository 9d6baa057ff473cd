/* The XBoot JSON wire format, device side: the request body, and the two kinds of answer
 * (a certificate, or {"error","message"}). */
#ifndef XBOOT_LIB_WIRE_H
#define XBOOT_LIB_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

/* {"RegistrationId": reg_id, "Csr": base64(csr)}; *body malloc'd, NUL-terminated. */
xboot_err xbw_request(const char *reg_id, const uint8_t *csr, size_t csr_len, char **body,
                      size_t *body_len, xbc_detail *detail);

/* A 200 answer: "Certificate" (base64 DER) and the optional "Chain" (array of base64 DER, at
 * most 8). Keys are matched without case, as .NET clients and servers do. */
xboot_err xbw_certificate(const uint8_t *body, size_t len, X509 **cert, STACK_OF(X509) * *chain,
                          xbc_detail *detail);

/* An error answer's "error" and "message" (printable ASCII only, truncated to fit); both are
 * left empty when the body is not the XBoot error format. */
void xbw_error(const uint8_t *body, size_t len, char *code, size_t code_len, char *message,
               size_t message_len);

#endif
