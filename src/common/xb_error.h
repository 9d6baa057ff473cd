/* One error enum for the server side (xbootd, xbootctl, issuance core, registry).
 *
 * Every code has a stable snake_case name that goes on the wire ("error" field of the
 * JSON API) and in logs, a default human message, and the HTTP status it maps to.
 * Add codes at the end of a group; never renumber or rename: scripts match on the names. */
#ifndef XB_ERROR_H
#define XB_ERROR_H

#include <stddef.h>

typedef enum xb_err {
    XB_OK = 0,
    /* request shape */
    XB_ERR_MALFORMED_JSON,
    XB_ERR_MALFORMED_REQUEST,
    XB_ERR_BAD_BASE64,
    XB_ERR_BAD_CSR,
    XB_ERR_CSR_SIGNATURE,
    XB_ERR_KEY_NOT_ALLOWED,
    XB_ERR_SUBJECT_MISMATCH,
    XB_ERR_INVALID_REGISTRATION_ID,
    XB_ERR_PAYLOAD_TOO_LARGE,
    XB_ERR_UNSUPPORTED_MEDIA_TYPE,
    XB_ERR_METHOD_NOT_ALLOWED,
    XB_ERR_NOT_FOUND,
    /* who may enroll */
    XB_ERR_UNAUTHORIZED,
    XB_ERR_DEVICE_UNKNOWN,
    XB_ERR_DEVICE_DISABLED,
    XB_ERR_ALREADY_ENROLLED,
    XB_ERR_FORBIDDEN,          /* the enrollment policy (validation webhook) refused */
    XB_ERR_POLICY_UNAVAILABLE, /* the enrollment policy cannot be consulted now: retry later */
    XB_ERR_RATE_LIMITED,
    /* admin / local */
    XB_ERR_EXISTS,
    XB_ERR_INVALID_ARGUMENT,
    XB_ERR_CONFIG,
    XB_ERR_IO,
    /* server-side failures */
    XB_ERR_REGISTRY,
    XB_ERR_CA_UNAVAILABLE,
    XB_ERR_CRYPTO,
    XB_ERR_NOMEM,
    XB_ERR_INTERNAL,
    XB_ERR__COUNT
} xb_err;

/* Stable machine name ("bad_csr"). Never NULL. */
const char *xb_err_code(xb_err err);
/* Default human message. Never NULL. */
const char *xb_strerror(xb_err err);
/* HTTP status the JSON API and EST answer with for this error. */
int xb_err_http_status(xb_err err);

/* A diagnostic: the specific human message of one failure ("RSA key of 1024 bits; allowed:
 * 2048..4096"). Callers own it (usually on the stack); functions that fail fill it. */
typedef struct xb_diag {
    char msg[256];
} xb_diag;

/* Fill d (if not NULL) with a printf-style message and return err, so that failure paths
 * read `return xb_fail(d, XB_ERR_BAD_CSR, "...")`. */
xb_err xb_fail(xb_diag *d, xb_err err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Like xb_fail, appending the first queued OpenSSL error (and clearing the queue). */
xb_err xb_fail_ssl(xb_diag *d, xb_err err, const char *what);

/* The message for a failed call: the diagnostic if it was filled, else the default. */
const char *xb_diag_message(const xb_diag *d, xb_err err);

#endif
