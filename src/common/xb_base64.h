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

/* Encode as MIME-style lines for EST (RFC 7030 section 4): 64 characters a line and "\n" after
 * every line, the last one included. Returns a malloc'd NUL-terminated string (length in
 * *out_len when not NULL), or NULL on no memory. Empty input encodes to "". */
char *xb_base64_encode_lines(const uint8_t *in, size_t in_len, size_t *out_len);

/* xb_base64_decode after dropping ASCII whitespace (space, tab, CR, LF) anywhere: EST clients
 * wrap lines at 64 or 76 columns, with CRLF or LF, or not at all. Same results otherwise. */
int xb_base64_decode_ws(const char *in, size_t in_len, uint8_t **out, size_t *out_len);

#endif
