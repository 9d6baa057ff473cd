/* xboot_err names and messages, key type names, and the registration ID rule. */
#include <string.h>

#include "xb_regid.h"
#include "xboot/xboot.h"

static const struct {
    const char *code;
    const char *message;
} xboot_errors[XBOOT_ERR__COUNT] = {
    [XBOOT_OK] = {"ok", "success"},
    [XBOOT_ERR_INVALID_ARGUMENT] = {"invalid_argument", "invalid argument"},
    [XBOOT_ERR_INVALID_REGISTRATION_ID] =
        {"invalid_registration_id",
         "invalid registration ID (1..128 characters of A-Z a-z 0-9 - . _ :, ending with a "
         "letter, digit or -)"},
    [XBOOT_ERR_NO_MEMORY] = {"no_memory", "out of memory"},
    [XBOOT_ERR_NOT_CONFIGURED] = {"not_configured",
                                  "server URL, trust anchor or registration ID not set"},
    [XBOOT_ERR_TRUST_ANCHOR] = {"trust_anchor", "the trust anchor cannot be used"},
    [XBOOT_ERR_KEY] = {"key_error", "the device key cannot be generated or used"},
    [XBOOT_ERR_CSR] = {"csr_error", "the certificate signing request cannot be built"},
    [XBOOT_ERR_NETWORK] = {"network_error", "the server cannot be reached"},
    [XBOOT_ERR_SERVER_UNTRUSTED] =
        {"server_untrusted", "the server's TLS certificate is not trusted; nothing was sent"},
    [XBOOT_ERR_SERVER_REFUSED] = {"server_refused", "the server refused the request"},
    [XBOOT_ERR_SERVER_BUSY] = {"server_busy", "the server stayed busy or unavailable"},
    [XBOOT_ERR_SERVER_FAILED] = {"server_failed", "the server failed (5xx)"},
    [XBOOT_ERR_BAD_RESPONSE] = {"bad_response", "the server's answer is not a usable certificate"},
    [XBOOT_ERR_CERT_KEY_MISMATCH] = {"cert_key_mismatch",
                                     "the certificate is not for this device's key"},
    [XBOOT_ERR_CERT_SUBJECT_MISMATCH] = {"cert_subject_mismatch",
                                         "the certificate's CN is not the registration ID"},
    [XBOOT_ERR_CERT_UNTRUSTED] = {"cert_untrusted",
                                  "the certificate does not chain to the trust anchor or is not a "
                                  "valid client certificate now"},
    [XBOOT_ERR_STORAGE] = {"storage_error", "the store cannot be read or written"},
    [XBOOT_ERR_PKCS12] = {"pkcs12_error", "the PKCS#12 file cannot be built"},
    [XBOOT_ERR_INTERNAL] = {"internal_error", "internal error"},
    [XBOOT_ERR_CERT_EXPIRED] = {"cert_expired",
                                "the stored certificate has expired or is not valid yet; "
                                "enroll again"},
};

static int xboot_err_known(xboot_err err)
{
    return (int)err >= 0 && err < XBOOT_ERR__COUNT && xboot_errors[err].code != NULL;
}

const char *xboot_strerror(xboot_err err)
{
    return xboot_err_known(err) ? xboot_errors[err].message : "unknown error";
}

const char *xboot_err_code(xboot_err err)
{
    return xboot_err_known(err) ? xboot_errors[err].code : "unknown";
}

static const char *const xboot_key_names[] = {
    [XBOOT_KEY_EC_P256] = "ec-p256",
    [XBOOT_KEY_EC_P384] = "ec-p384",
    [XBOOT_KEY_RSA_2048] = "rsa-2048",
};
#define XBOOT_KEY_TYPES (sizeof xboot_key_names / sizeof xboot_key_names[0])

const char *xboot_key_type_name(xboot_key_type type)
{
    return (unsigned)type < XBOOT_KEY_TYPES ? xboot_key_names[type] : "unknown";
}

xboot_err xboot_key_type_parse(const char *name, xboot_key_type *out)
{
    if (name == NULL || out == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < XBOOT_KEY_TYPES; i++) {
        if (strcmp(name, xboot_key_names[i]) == 0) {
            *out = (xboot_key_type)i;
            return XBOOT_OK;
        }
    }
    return XBOOT_ERR_INVALID_ARGUMENT;
}

int xboot_registration_id_valid(const char *id)
{
    return id != NULL && xb_regid_valid(id, strlen(id));
}
