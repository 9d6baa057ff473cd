#include "xb_error.h"

#include <stdarg.h>
#include <stdio.h>

#include <openssl/err.h>

static const struct {
    const char *code;
    const char *message;
    int http_status;
} xb_err_table[XB_ERR__COUNT] = {
    [XB_OK] = {"ok", "success", 200},
    [XB_ERR_MALFORMED_JSON] = {"malformed_json", "the request body is not valid JSON", 400},
    [XB_ERR_MALFORMED_REQUEST] = {"malformed_request",
                                  "the request lacks a required field or has one of the wrong type",
                                  400},
    [XB_ERR_BAD_BASE64] = {"bad_base64", "a field that must be base64 is not valid base64", 400},
    [XB_ERR_BAD_CSR] = {"bad_csr", "the CSR is not a valid DER PKCS#10 request", 400},
    [XB_ERR_CSR_SIGNATURE] = {"csr_signature_invalid",
                              "the CSR signature does not verify with its own public key", 400},
    [XB_ERR_KEY_NOT_ALLOWED] = {"key_not_allowed",
                                "the CSR key type or size is not allowed (RSA 2048..4096, EC "
                                "P-256/P-384)",
                                400},
    [XB_ERR_SUBJECT_MISMATCH] = {"subject_mismatch",
                                 "the CSR subject CN must equal the registration ID", 400},
    [XB_ERR_INVALID_REGISTRATION_ID] = {"invalid_registration_id",
                                        "registration IDs are 1..128 characters of "
                                        "[A-Za-z0-9-._:], ending with a letter, digit or '-'",
                                        400},
    [XB_ERR_PAYLOAD_TOO_LARGE] = {"payload_too_large", "the request body is too large", 413},
    [XB_ERR_UNSUPPORTED_MEDIA_TYPE] = {"unsupported_media_type",
                                       "the request Content-Type is not accepted here", 415},
    [XB_ERR_METHOD_NOT_ALLOWED] = {"method_not_allowed", "method not allowed on this path", 405},
    [XB_ERR_NOT_FOUND] = {"not_found", "no such path", 404},
    [XB_ERR_UNAUTHORIZED] = {"unauthorized", "a valid function key is required", 401},
    [XB_ERR_DEVICE_UNKNOWN] = {"device_unknown", "this registration ID is not registered", 403},
    [XB_ERR_DEVICE_DISABLED] = {"device_disabled", "this device is disabled", 403},
    [XB_ERR_ALREADY_ENROLLED] = {"already_enrolled", "this device already has a certificate", 409},
    [XB_ERR_FORBIDDEN] = {"forbidden", "the enrollment policy refused this enrollment", 403},
    [XB_ERR_POLICY_UNAVAILABLE] = {"policy_unavailable",
                                   "the enrollment policy cannot be checked now; retry later", 503},
    [XB_ERR_RATE_LIMITED] = {"rate_limited", "too many requests; retry later", 429},
    [XB_ERR_EXISTS] = {"exists", "the object already exists", 409},
    [XB_ERR_INVALID_ARGUMENT] = {"invalid_argument", "invalid argument", 400},
    [XB_ERR_CONFIG] = {"config_error", "the configuration is not usable", 500},
    [XB_ERR_IO] = {"io_error", "input/output error", 500},
    [XB_ERR_REGISTRY] = {"registry_unavailable", "the device registry is unavailable", 503},
    [XB_ERR_CA_UNAVAILABLE] = {"ca_unavailable", "the signing CA cannot issue now", 503},
    [XB_ERR_CRYPTO] = {"crypto_error", "a cryptographic operation failed", 500},
    [XB_ERR_NOMEM] = {"out_of_memory", "out of memory", 503},
    [XB_ERR_INTERNAL] = {"internal_error", "internal error", 500},
};

static int xb_err_valid(xb_err err)
{
    return (int)err >= 0 && err < XB_ERR__COUNT && xb_err_table[err].code != NULL;
}

const char *xb_err_code(xb_err err)
{
    return xb_err_valid(err) ? xb_err_table[err].code : "internal_error";
}

const char *xb_strerror(xb_err err)
{
    return xb_err_valid(err) ? xb_err_table[err].message : "unknown error";
}

int xb_err_http_status(xb_err err)
{
    return xb_err_valid(err) ? xb_err_table[err].http_status : 500;
}

xb_err xb_fail(xb_diag *d, xb_err err, const char *fmt, ...)
{
    if (d != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->msg, sizeof d->msg, fmt, ap);
        va_end(ap);
    }
    return err;
}

xb_err xb_fail_ssl(xb_diag *d, xb_err err, const char *what)
{
    unsigned long e = ERR_peek_error();
    char buf[160] = "no detail";
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return xb_fail(d, err, "%s: %s", what, buf);
}

const char *xb_diag_message(const xb_diag *d, xb_err err)
{
    if (d != NULL && d->msg[0] != '\0')
        return d->msg;
    return xb_strerror(err);
}
