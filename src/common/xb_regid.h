/* Registration IDs, as Azure DPS defines them: 1..128 characters of [A-Za-z0-9-._:], the last
 * one alphanumeric or '-'. Every ID that reaches the registry, a log line or a certificate
 * subject has passed this check, so none of them can carry spaces, quotes or control bytes. */
#ifndef XB_REGID_H
#define XB_REGID_H

#include <stddef.h>

#define XB_REGID_MAX 128

/* 1 if s[0..len) is a valid registration ID, else 0. */
int xb_regid_valid(const char *s, size_t len);

#endif
