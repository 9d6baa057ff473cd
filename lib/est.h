/* The EST (RFC 7030) wire format, device side: URLs, the base64 PKCS#10 request body, the
 * base64 certs-only PKCS#7 answers (simpleenroll, simplereenroll, cacerts) and the text/plain
 * error answers ("code: message", as xbootd writes them). Pure functions: no I/O. */
#ifndef XBOOT_LIB_EST_H
#define XBOOT_LIB_EST_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define XBE_CT_PKCS10 "application/pkcs10"
#define XBE_CT_PKCS7 "application/pkcs7-mime"
/* At most this many certificates in one answer: cacerts is a chain, not a bundle. */
#define XBE_MAX_CERTS 16

/* 1 if label is a valid EST label: 1..64 of [A-Za-z0-9-_.], not "." or "..". */
int xbe_label_valid(const char *label);

/* The EST URL "{origin}/.well-known/est[/label]/op" for the server URL `server` (only its
 * scheme, host and port are used). *url is malloc'd. */
xboot_err xbe_url(const char *server, const char *label, const char *op, char **url,
                  xbc_detail *detail);

/* The request body: base64 of the DER CSR in lines of 64 characters, each ending in "\n".
 * *body malloc'd, NUL-terminated. */
xboot_err xbe_request(const uint8_t *csr, size_t csr_len, char **body, size_t *body_len,
                      xbc_detail *detail);

/* The certificates of a base64 certs-only PKCS#7 (white space, CR LF included, is ignored):
 * at least one, at most XBE_MAX_CERTS, in the order of the SignedData. XBOOT_ERR_BAD_RESPONSE
 * for anything else. */
xboot_err xbe_certs(const uint8_t *body, size_t len, STACK_OF(X509) * *out, xbc_detail *detail);

/* A text/plain error answer "code: message": code is the leading run of [a-z0-9_.-] when a
 * ':' follows it, the rest is the message (printable ASCII only, truncated to fit, trailing
 * white space removed). A body of another shape is all message, code "". */
void xbe_error(const uint8_t *body, size_t len, char *code, size_t code_len, char *message,
               size_t message_len);

#endif
