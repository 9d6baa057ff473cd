/* Small helpers both sides share: files, times, hex. */
#ifndef XB_UTIL_H
#define XB_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/asn1.h>

#include "xb_error.h"

/* Read a whole file (at most max bytes) into a malloc'd, NUL-terminated buffer. */
xb_err xb_read_file(const char *path, size_t max, uint8_t **out, size_t *out_len, xb_diag *d);

/* Create path exclusively (O_EXCL) with the given mode and write data; never overwrites. */
xb_err xb_write_file_new(const char *path, const void *data, size_t len, unsigned mode, xb_diag *d);

/* "2026-11-29T10:27:38Z" into buf (at least 21 bytes). */
void xb_time_rfc3339(time_t t, char *buf, size_t len);

/* ASN1_TIME to seconds since the epoch; returns -1 if it cannot be read. */
int xb_asn1_time_to_time_t(const ASN1_TIME *t, time_t *out);

/* The value of hex digit c (either case), or -1. */
int xb_hex_digit(char c);
/* Lowercase hex of in into out (at least 2*len+1 bytes). */
void xb_hex(const uint8_t *in, size_t len, char *out);

/* Join dir and a relative path ("a/b" + "c" = "a/b/c"); absolute paths are returned as they
 * are. Result malloc'd. */
char *xb_path_resolve(const char *dir, const char *path);

#endif
