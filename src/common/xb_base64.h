/* Strict standard base64 (RFC 4648 section 4, with padding), as .NET Convert.ToBase64String
 * writes it. Whitespace and the URL-safe alphabet are refused: the wire format has neither. */
#ifndef XB_BASE64_H
#define XB_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Decode; *out is malloc'd (caller frees; "" decodes to zero bytes). Returns 0, or -1 for
 * invalid input or no memory. */
int xb_base64_decode(const char *in, size_t in_len, uint8_t **out, size_t *out_len);
/* Encode; returns a malloc'd NUL-terminated string (caller frees), or NULL on no memory. */
char *xb_base64_encode(const uint8_t *in, size_t in_len);

#endif
