/* Who may enroll: the one decision the JSON API and EST both ask for, from what a request
 * presents (an HTTP Basic secret or group-derived key, a TLS client certificate, the API key)
 * and the device's registry row. docs/security.md is the user-facing side of this file.
 *
 * The credential a device must present follows from its row: a secret hash or a group means
 * that credential (or another strong one: a manufacturer certificate, or for a renewal a
 * certificate we issued); a row without either, or open mode, needs only the API key when one
 * is configured (the original's function key, the weakest). A device without a row may enroll
 * when a group key or a manufacturer certificate vouches for it; its row is then created with
 * its first certificate. */
#ifndef XB_POLICY_H
#define XB_POLICY_H

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "ca.h"
#include "config.h"
#include "registry.h"

typedef enum xb_credential {
    XB_CRED_NONE,    /* nothing was needed: no API key configured, no device credential */
    XB_CRED_API_KEY, /* the shared API key: proves nothing about which device */
    XB_CRED_SECRET,  /* the device's own enrollment secret */
    XB_CRED_GROUP,   /* a key derived from the group key for this registration ID */
    XB_CRED_IDEVID,  /* a manufacturer certificate naming this registration ID */
    XB_CRED_CERT,    /* a certificate we issued to this device: a renewal */
} xb_credential;

/* "none", "api_key", "secret", "group", "idevid", "certificate": for logs and metrics. */
const char *xb_credential_name(xb_credential c);

/* Loaded before the workers fork; read-only afterwards, but for a CA reload between requests
 * (xb_policy_set_ca). */
typedef struct xb_policy {
    X509_STORE *issued;       /* trusts our signing CAs alone: certificates we issued */
    STACK_OF(X509) * ours;    /* those CAs: the current signing CA first, then [ca] previous */
    char *previous_path;      /* [ca] previous, re-read at every xb_policy_set_ca; NULL none */
    X509_STORE *manufacturer; /* [policy] manufacturer_ca; NULL: IDevIDs are not accepted */
    int id_nid;               /* the subject attribute of an IDevID that is the ID (CN) */
} xb_policy;

xb_err xb_policy_load(const xb_config *cfg, const xb_ca *ca, xb_policy **out, xb_diag *d);
/* Trust ca as the signing CA from now on (a CA reload): certificates we issued are the ones
 * that verify against it alone. On failure p is unchanged. */
xb_err xb_policy_set_ca(xb_policy *p, const xb_ca *ca, xb_diag *d);
void xb_policy_free(xb_policy *p);

/* The TLS side: ask for a client certificate without requiring one, naming the CAs we accept
 * (ours and the manufacturers'), and let every handshake finish: the policy judges the
 * certificate of an enrollment; other routes never look at it. */
xb_err xb_policy_tls_setup(const xb_policy *p, SSL_CTX *ctx, const xb_ca *ca, xb_diag *d);

/* What one request presents. */
typedef struct xb_presented {
    const char *reg_id;        /* validated */
    const char *authorization; /* the Authorization header, or NULL */
    const char *api_key;       /* the JSON API's x-functions-key or ?code=, or NULL */
    X509 *peer;                /* the TLS client certificate, or NULL */
    int renewal_route;         /* the route renews with a certificate we issued (EST) */
} xb_presented;

typedef struct xb_decision {
    xb_credential credential;
    int renewal; /* authenticated by a certificate we issued to the device */
    /* For a device without a row: how its row will be created ("open", "group", "idevid"),
     * and the group it joins; NULL when the row exists. */
    const char *new_source;
    char group[XB_GROUP_NAME_MAX + 1];
} xb_decision;

/* May this request enroll in->reg_id? XB_OK with the decision; XB_ERR_UNAUTHORIZED (401: no
 * or a wrong credential), XB_ERR_DEVICE_UNKNOWN / XB_ERR_DEVICE_DISABLED (403),
 * XB_ERR_SUBJECT_MISMATCH (a certificate of another device), or XB_ERR_ALREADY_ENROLLED with
 * the decision filled: the one-time bootstrap is spent, but the caller may still answer a
 * retry with the device's current certificate (enroll.c). Reads the registry; signs nothing. */
xb_err xb_policy_authorize(const xb_policy *p, const xb_config *cfg, xb_registry *reg,
                           const xb_presented *in, xb_decision *out, xb_diag *d);

/* Why a request that presented nothing at all was refused (401). */
#define XB_POLICY_NO_CREDENTIALS                                                                   \
    "credentials required: HTTP Basic with the registration ID as user-id (the device's secret "   \
    "or group-derived key), a client certificate, or the function key (?code=KEY or header "       \
    "x-functions-key)"

/* given is the API key want; constant time in the key's content. */
int xb_policy_key_equal(const char *given, const char *want);

/* ---- the credential checks themselves (policy_credentials.c) ---- */

/* An Authorization header's HTTP Basic credentials for registration ID reg_id. RFC 7617
 * splits user-id:password at the first colon, but registration IDs may contain colons (MAC
 * addresses): the user-id is taken to be reg_id when the decoded text starts with "reg_id:",
 * which no other split can make ambiguous. XB_OK with the password in password[size];
 * XB_ERR_NOT_FOUND when the header is absent or not Basic; XB_ERR_UNAUTHORIZED (with the
 * reason) otherwise. */
xb_err xb_basic_parse(const char *authorization, const char *reg_id, char *password, size_t size,
                      xb_diag *d);

/* A client certificate we issued: it verifies against the signing CA now, is a clientAuth
 * end-entity certificate, and its serial is in the registry with the same DER, unrevoked; then
 * owner gets whom to. XB_ERR_NOT_FOUND when the certificate does not chain to the signing CA
 * (someone else's: the caller may try other trust anchors); XB_ERR_UNAUTHORIZED with the
 * reason when it does but cannot authenticate (unrecorded, altered, revoked, expired). */
xb_err xb_policy_issued_cert(const xb_policy *p, xb_registry *reg, X509 *cert,
                             char owner[XB_REGID_MAX + 1], xb_diag *d);

/* A manufacturer certificate: it verifies against [policy] manufacturer_ca for client use;
 * then id gets its subject attribute p->id_nid. XB_ERR_NOT_FOUND when no manufacturer CA is
 * configured or the certificate does not chain to one; XB_ERR_UNAUTHORIZED when it has no
 * usable ID attribute. */
xb_err xb_policy_idevid(const xb_policy *p, X509 *cert, char id[XB_REGID_MAX + 1], xb_diag *d);

#endif
