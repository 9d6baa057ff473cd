/* libxboot: the XBoot device SDK.
 *
 * A device generates its own key, builds a CSR whose CN is its registration ID, asks an XBoot
 * server for a certificate, checks what comes back (its own key, its own ID, a chain to the
 * trust anchor) and only then stores it. The private key never leaves the device.
 *
 * Rules of the API:
 * - No global state. Everything lives in an xboot_client handle; use one handle per thread.
 * - Every function that can fail returns an xboot_err; xboot_strerror() names it for humans,
 *   xboot_err_code() for scripts. After a failure, xboot_error_detail() says what exactly went
 *   wrong, and when the server refused, xboot_server_error_code()/_message() pass its own
 *   words through.
 * - Strings and buffers passed in are copied; the caller keeps ownership. Passing NULL to a
 *   setter of an optional string (subject, credential, API key, store) clears it. Objects
 *   returned by accessors (keys, certificates) are borrowed from the handle and live until the
 *   next xboot_enroll(), xboot_load() or xboot_client_free() on it; take a reference
 *   (EVP_PKEY_up_ref, X509_up_ref) to keep them longer.
 * - Calls block: xboot_enroll() may take (attempts x request timeout) plus the backoff waits.
 * - The server's TLS certificate is always verified against the trust anchor, host name
 *   included; there is no switch to turn that off.
 *
 * Minimal use (see docs/device-sdk.md):
 *
 *     xboot_client *c = NULL;
 *     xboot_client_new(&c);
 *     xboot_set_server(c, "https://xboot.example.com");
 *     xboot_set_trust_anchor_file(c, "/etc/xboot/root-ca.pem");
 *     xboot_set_registration_id(c, "00-11-22-33-44-55");
 *     xboot_set_store_dir(c, "/var/lib/xboot");
 *     xboot_err e = xboot_enroll(c, 0);
 *     xboot_client_free(c);
 */
#ifndef XBOOT_XBOOT_H
#define XBOOT_XBOOT_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every failure of the library. Stable: codes are only ever added at the end. */
typedef enum xboot_err {
    XBOOT_OK = 0,
    XBOOT_ERR_INVALID_ARGUMENT,        /* NULL handle, out-of-range value, malformed string */
    XBOOT_ERR_INVALID_REGISTRATION_ID, /* breaks the DPS rules: 1..128 of [A-Za-z0-9-._:], ... */
    XBOOT_ERR_NO_MEMORY,
    XBOOT_ERR_NOT_CONFIGURED,    /* server URL, trust anchor or registration ID not set */
    XBOOT_ERR_TRUST_ANCHOR,      /* the trust anchor cannot be read or holds no certificate */
    XBOOT_ERR_KEY,               /* key generation failed, or the key's type cannot be used */
    XBOOT_ERR_CSR,               /* the CSR could not be built or signed */
    XBOOT_ERR_NETWORK,           /* no connection, timeout, connection reset (after retries) */
    XBOOT_ERR_SERVER_UNTRUSTED,  /* the server's TLS certificate does not chain to the trust
                                    anchor or does not name the host: nothing was sent */
    XBOOT_ERR_SERVER_REFUSED,    /* the server said no (4xx); see xboot_server_error_code() */
    XBOOT_ERR_SERVER_BUSY,       /* 429/502/503/504 on every attempt */
    XBOOT_ERR_SERVER_FAILED,     /* the server answered 5xx (a server-side fault) */
    XBOOT_ERR_BAD_RESPONSE,      /* the answer is not the XBoot JSON format or not a certificate */
    XBOOT_ERR_CERT_KEY_MISMATCH, /* the certificate is not for this device's key */
    XBOOT_ERR_CERT_SUBJECT_MISMATCH, /* the certificate's CN is not the registration ID */
    XBOOT_ERR_CERT_UNTRUSTED,        /* the certificate does not chain to the trust anchor, is
                                        expired or not valid yet, or is not a client certificate */
    XBOOT_ERR_STORAGE,               /* the store directory cannot be read or written */
    XBOOT_ERR_PKCS12,                /* the .pfx could not be built (e.g. a key held in a token) */
    XBOOT_ERR_INTERNAL,              /* a bug or a broken OpenSSL/libcurl */
    XBOOT_ERR_CERT_EXPIRED,          /* xboot_renew/xboot_renew_due: the stored certificate has
                                        expired (or is not valid yet): enroll again instead */
    XBOOT_ERR__COUNT
} xboot_err;

/* Human message for an error ("the server refused the request"). Never NULL. */
const char *xboot_strerror(xboot_err err);
/* Stable machine name ("server_refused"), for logs and --json output. Never NULL. */
const char *xboot_err_code(xboot_err err);

typedef enum xboot_key_type {
    XBOOT_KEY_EC_P256 = 0, /* default */
    XBOOT_KEY_EC_P384,
    XBOOT_KEY_RSA_2048, /* for the original .NET XBoot.Server, which signs RSA only */
} xboot_key_type;

/* "ec-p256", "ec-p384", "rsa-2048" <-> the enum. Parse returns XBOOT_ERR_INVALID_ARGUMENT for
 * an unknown name. */
const char *xboot_key_type_name(xboot_key_type type);
xboot_err xboot_key_type_parse(const char *name, xboot_key_type *out);

/* 1 if id is a valid registration ID (Azure DPS rules: 1..128 characters of [A-Za-z0-9-._:],
 * the last one a letter, digit or '-'), else 0. */
int xboot_registration_id_valid(const char *id);

typedef struct xboot_client xboot_client;

/* A new handle with defaults: EC P-256, connect timeout 10 s, request timeout 30 s, 5
 * attempts with exponential backoff from 1 s up to 30 s, no store (in memory only).
 * Free with xboot_client_free (NULL is allowed). */
xboot_err xboot_client_new(xboot_client **out);
void xboot_client_free(xboot_client *c);

/* The XBoot server. A base URL ("https://host:port") gets "/api/certificate" appended; a URL
 * with a path is used as it is (an Azure Functions URL of the original, "...?code=KEY"
 * included). Only https:// is accepted. */
xboot_err xboot_set_server(xboot_client *c, const char *url);

/* The trust anchor: one or more PEM certificates. It verifies the server's TLS certificate and
 * the chain of the certificate the server issues. */
xboot_err xboot_set_trust_anchor_file(xboot_client *c, const char *path);
xboot_err xboot_set_trust_anchor_pem(xboot_client *c, const char *pem, size_t len);

/* The registration ID (the CSR's CN); checked here against the DPS rules. */
xboot_err xboot_set_registration_id(xboot_client *c, const char *id);

/* Extra subject attributes in OpenSSL's one-line form, "/O=Contoso/OU=Sensors". Allowed: C,
 * ST, L, O, OU (what the server copies); CN is the registration ID and may not be given. */
xboot_err xboot_set_subject(xboot_client *c, const char *subject);

/* The type of key generated on enrollment. Ignored when a key is supplied. */
xboot_err xboot_set_key_type(xboot_client *c, xboot_key_type type);

/* Use this key instead of generating one: a key in a TPM (tpm2-openssl provider) or a PKCS#11
 * token works, since the library only signs the CSR with it. The handle takes its own
 * reference (the caller still frees its own). A supplied key is never written to the store. */
xboot_err xboot_set_key(xboot_client *c, EVP_PKEY *key);

/* The device's enrollment credential, sent as HTTP Basic (username = registration ID). NULL
 * clears it. */
xboot_err xboot_set_credential(xboot_client *c, const char *secret);
/* The server's API key (the original's Azure function key), sent as x-functions-key. */
xboot_err xboot_set_api_key(xboot_client *c, const char *key);

/* Timeouts in milliseconds: to connect (TCP + TLS), and for one whole request. */
xboot_err xboot_set_timeouts(xboot_client *c, long connect_ms, long request_ms);
/* Retries on network errors and 429/502/503/504: at most `attempts` requests in all (1..20),
 * waiting a random time up to base_ms * 2^n (capped at max_ms) between them, or the server's
 * Retry-After when it is longer (also capped at max_ms). */
xboot_err xboot_set_retries(xboot_client *c, int attempts, long base_ms, long max_ms);

/* Where the key and certificate are kept: DIR/device.key (PKCS#8 PEM, mode 0600),
 * DIR/device.pem, DIR/chain.pem and, with xboot_set_pfx, DIR/device.pfx. The directory is
 * created (0700) if missing. All files change together or not at all: they are links into a
 * generation directory that is switched with one rename. NULL: keep everything in memory. */
xboot_err xboot_set_store_dir(xboot_client *c, const char *dir);
/* Also write DIR/device.pfx (PKCS#12: key + certificate + chain, AES-256 + SHA-256), as the
 * original client produced. password NULL or "" means the empty password. Not possible with a
 * supplied key (xboot_set_key): xboot_enroll refuses with XBOOT_ERR_PKCS12 before sending. */
xboot_err xboot_set_pfx(xboot_client *c, int enable, const char *password);

/* Progress, for logs and user interfaces. The callback runs on the calling thread, inside
 * xboot_enroll; it must not call into the same handle. detail may be NULL. */
typedef enum xboot_event {
    XBOOT_EVENT_STORED_VALID,  /* a valid certificate for this ID and key is already stored */
    XBOOT_EVENT_KEY_GENERATED, /* detail: key type name */
    XBOOT_EVENT_CSR_BUILT,
    XBOOT_EVENT_SENDING_CSR, /* detail: the URL (without its query) */
    XBOOT_EVENT_RETRYING,    /* detail: why, and the wait */
    XBOOT_EVENT_CERT_RECEIVED,
    XBOOT_EVENT_CERT_VERIFIED,
    XBOOT_EVENT_STORED,   /* detail: the store directory */
    XBOOT_EVENT_RENEWING, /* xboot_renew: detail: the simplereenroll URL */
} xboot_event;
typedef void (*xboot_progress_fn)(void *arg, xboot_event event, const char *detail);
xboot_err xboot_set_progress(xboot_client *c, xboot_progress_fn fn, void *arg);

/* Flags of xboot_enroll. */
#define XBOOT_ENROLL_FORCE 1u /* enroll even if a valid certificate is stored */

/* Enroll, unless the store already holds a valid certificate for this registration ID and key
 * (then nothing is sent and XBOOT_OK is returned; xboot_was_issued() tells which; a .pfx
 * asked for and missing is added from the stored key and certificate). One enrollment per
 * store at a time: a second process waits for the first (bounded), then finds its result. The new
 * key and certificate replace the stored ones only after the certificate was checked: it is for
 * this key, its CN is the registration ID, it chains to the trust anchor and it is a client
 * certificate valid now. On failure the store is unchanged. */
xboot_err xboot_enroll(xboot_client *c, unsigned flags);

/* Load what the store holds, without any network traffic, and check it as xboot_enroll would.
 * XBOOT_OK when a valid certificate is stored; otherwise the reason. */
xboot_err xboot_load(xboot_client *c);

/* ---- EST (RFC 7030) and renewal ---- */

/* How xboot_enroll talks to the server. XBOOT (default): POST {"RegistrationId","Csr"} to the
 * server URL (docs/api.md). EST: RFC 7030 simpleenroll under {origin}/.well-known/est[/LABEL]/,
 * where origin is the scheme, host and port of the server URL (a path or query in it is not
 * used: RFC 7030 fixes the path). With EST, the chain of the issued certificate comes from the
 * server's cacerts, fetched before the CSR is sent. */
typedef enum xboot_protocol {
    XBOOT_PROTOCOL_XBOOT = 0,
    XBOOT_PROTOCOL_EST,
} xboot_protocol;
xboot_err xboot_set_protocol(xboot_client *c, xboot_protocol protocol);

/* The EST label (the server's CA profile): one path segment of 1..64 characters of
 * [A-Za-z0-9-_.], not "." or "..". NULL: none (/.well-known/est/OPERATION). */
xboot_err xboot_set_est_label(xboot_client *c, const char *label);

/* GET cacerts: the server's CA certificates (signing CA first, then root), as the server sent
 * them. The TLS connection is verified with the trust anchor as always, but the certificates
 * themselves are not checked against it. The caller frees *out with
 * sk_X509_pop_free(*out, X509_free). Uses EST whatever xboot_set_protocol says. */
xboot_err xboot_est_cacerts(xboot_client *c, STACK_OF(X509) * *out);

/* When a certificate is due for renewal: once `percent` (1..99, default 80) of its lifetime
 * (notBefore to notAfter) has passed. */
xboot_err xboot_set_renew_threshold(xboot_client *c, int percent);

/* Load the store as xboot_load does (no network) and set *due to 1 when now >= notBefore +
 * threshold * (notAfter - notBefore), else 0. XBOOT_ERR_CERT_EXPIRED when the stored
 * certificate is no longer (or not yet) valid; any other failure of xboot_load as it is
 * (nothing stored: XBOOT_ERR_STORAGE). After XBOOT_OK the accessors return the stored key and
 * certificate. */
xboot_err xboot_renew_due(xboot_client *c, int *due);

/* How much of cert's lifetime (notBefore to notAfter) has passed now, in whole percent: 0 before
 * notBefore, over 100 once expired; -1 when its dates cannot be read. For progress messages;
 * xboot_renew_due makes the decision. */
int xboot_lifetime_used(X509 *cert);

/* Renew now: EST simplereenroll over mutual TLS, authenticated with the current key and
 * certificate (the store's; without a store, those of the handle's last successful
 * xboot_enroll). Renewal always uses EST, whatever xboot_set_protocol says: the XBoot JSON API
 * has no renewal. A NEW key is generated (xboot_set_key_type), except with a supplied key
 * (xboot_set_key): then the same key is certified again. The CSR's subject is the current
 * certificate's subject, byte for byte. The answer is checked as xboot_enroll checks it; only
 * then are the new key and certificate stored, in one atomic switch: until that moment, and
 * whenever renewal fails, the old key and certificate stay stored and usable.
 * XBOOT_ERR_CERT_EXPIRED when the current certificate has expired (or is not valid yet):
 * mutual TLS with it is impossible, so enroll again with xboot_enroll (bootstrap credentials).
 * Other invalid states return what xboot_load returns. On XBOOT_OK xboot_was_issued() is 1. */
xboot_err xboot_renew(xboot_client *c);

/* After XBOOT_OK from xboot_enroll or xboot_load: the device key, its certificate and the chain
 * (signing CA first; may be empty). Borrowed from the handle. */
EVP_PKEY *xboot_key(const xboot_client *c);
X509 *xboot_certificate(const xboot_client *c);
STACK_OF(X509) * xboot_chain(const xboot_client *c);
/* 1 if the last xboot_enroll got a new certificate, 0 if it found a valid one stored. */
int xboot_was_issued(const xboot_client *c);

/* About the last failure on this handle (never NULL; "" when there is nothing to say). */
const char *xboot_error_detail(const xboot_client *c);
/* The HTTP status of the server's last answer in the last call (0 if none arrived; 200 when a
 * certificate arrived but failed the device's checks), and, when it answered with an error,
 * its stable error code ("device_unknown") and message as it sent them (printable ASCII only;
 * "" when it sent none). */
int xboot_http_status(const xboot_client *c);
const char *xboot_server_error_code(const xboot_client *c);
const char *xboot_server_error_message(const xboot_client *c);

#ifdef __cplusplus
}
#endif

#endif
