/* The device registry: which devices may enroll, and every certificate issued.
 *
 * One interface, several backends chosen by URL ("sqlite:PATH", "postgresql://...").
 * A handle belongs to one thread/process; open one per worker. Every function returns an
 * xb_err and fills the xb_diag with a human message on failure. */
#ifndef XB_REGISTRY_H
#define XB_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "xb_error.h"
#include "xb_regid.h"

typedef struct xb_registry xb_registry;

/* Enrollment groups: a group key from which each member's key is derived (policy.h). */
#define XB_GROUP_NAME_MAX 64
#define XB_GROUP_KEY_MIN 16
#define XB_GROUP_KEY_MAX 64
/* A per-device enrollment secret is stored as its SHA-256 only (docs/security.md says why a
 * fast hash is enough for a 256-bit random secret). */
#define XB_SECRET_HASH_LEN 32

/* 1 if name may name a group: 1..XB_GROUP_NAME_MAX of [A-Za-z0-9._-]. Never ':' so that an
 * import line's second field is either a secret hash ("sha256:...") or a group name. */
int xb_group_name_valid(const char *name);

typedef struct xb_device {
    char reg_id[XB_REGID_MAX + 1];
    int enabled;
    /* How the row came to be: "allowlist" (an operator added it), "open" (open-mode
     * enrollment), "group" (first enrollment with a group-derived key), "idevid" (first
     * enrollment with a manufacturer certificate). */
    char source[16];
    time_t created_at;
    time_t enrolled_at;   /* 0 if never enrolled */
    long long cert_count; /* certificates issued to it */
    /* The bootstrap credential the device must present ("" and 0: none, see policy.h). */
    char group[XB_GROUP_NAME_MAX + 1];
    int has_secret;
    uint8_t secret_sha256[XB_SECRET_HASH_LEN];
} xb_device;

/* The lifecycle state shown to operators: "disabled", "enrolled" or "allowed". */
const char *xb_device_state(const xb_device *dev);

/* A device to register, with the credential it will enroll with (both NULL: none). */
typedef struct xb_device_spec {
    const char *reg_id;
    const uint8_t *secret_sha256; /* XB_SECRET_HASH_LEN bytes, or NULL */
    const char *group;            /* an existing group's name, or NULL */
} xb_device_spec;

typedef struct xb_group {
    char name[XB_GROUP_NAME_MAX + 1];
    uint8_t key[XB_GROUP_KEY_MAX];
    size_t key_len;
    time_t created_at;
} xb_group;

typedef struct xb_cert_record {
    char serial[2 * 20 + 1]; /* lowercase hex, the certificate serial */
    char reg_id[XB_REGID_MAX + 1];
    const char *subject; /* RFC 2253 text of the issued subject (borrowed, like der) */
    time_t not_before, not_after;
    char pubkey_sha256[65]; /* SHA-256 of the SubjectPublicKeyInfo DER, hex */
    char client_addr[64];
    time_t issued_at;
    const uint8_t *der; /* certificate DER (borrowed for record_issuance) */
    size_t der_len;
    /* Lookups only (record_issuance ignores them: a certificate is recorded unrevoked). */
    time_t revoked_at;     /* 0: not revoked */
    int revocation_reason; /* an xb_revocation_reason when revoked_at != 0, else 0 */
    /* record_issuance only, not stored: a renewal authenticated by a certificate of the
     * device, recorded even when the rules forbid re-enrollment (allow_reenroll = 0). The
     * device must still exist and be enabled. */
    int renewal;
    /* record_issuance only, not stored with the certificate: when the device has no row, create
     * it with this source ("open", "group", "idevid") and group (NULL: none) in the same
     * transaction. NULL: an unknown device is refused. The policy sets it for a device whose
     * credential vouches for it without a row (a group key, a manufacturer certificate). */
    const char *new_source;
    const char *new_group;
} xb_cert_record;

/* Why a certificate was revoked: the CRLReason codes of RFC 5280 section 5.3.1, stored as
 * these numbers so the CRL (a later issue) writes them unchanged. Only the codes a CA revokes
 * a device certificate for are accepted: certificateHold (6) is not supported (a hold can be
 * lifted, and a revocation here is final), removeFromCRL (8) exists only in delta CRLs, and
 * aACompromise (10) concerns attribute certificates. */
typedef enum xb_revocation_reason {
    XB_REVOKE_UNSPECIFIED = 0,
    XB_REVOKE_KEY_COMPROMISE = 1,
    XB_REVOKE_CA_COMPROMISE = 2,
    XB_REVOKE_AFFILIATION_CHANGED = 3,
    XB_REVOKE_SUPERSEDED = 4,
    XB_REVOKE_CESSATION_OF_OPERATION = 5,
    XB_REVOKE_PRIVILEGE_WITHDRAWN = 9,
} xb_revocation_reason;

/* RFC 5280's name of a supported reason ("keyCompromise"), or NULL for any other code. */
const char *xb_revocation_reason_name(int reason);
/* The supported reason named name (RFC 5280 spelling, any case): 0 and *reason, or -1. */
int xb_revocation_reason_parse(const char *name, int *reason);

/* How enrollment requests are judged. */
typedef struct xb_enroll_rules {
    int open_mode;      /* 1: any valid ID may enroll (the device row is created) */
    int allow_reenroll; /* 1: an enrolled device may get further certificates */
} xb_enroll_rules;

/* Open the registry at url: "sqlite:PATH" (its schema created or migrated), optionally
 * "sqlite:PATH?synchronous=off|normal|full" (default full; anything but full may lose the
 * last commits on power loss and exists to measure what durability costs, see
 * docs/PERFORMANCE.md); or a libpq URI "postgresql://[user[:password]@]host[:port]/db[?...]"
 * whose schema must be current (xb_registry_migrate). */
xb_err xb_registry_open(const char *url, xb_registry **out, xb_diag *d);
void xb_registry_close(xb_registry *r);

/* The schema version this build reads and writes (the same number for every backend). */
#define XB_REGISTRY_SCHEMA_VERSION 4

/* Create or migrate the schema at url (xbootctl db migrate): *from (may be NULL) is the version
 * found (0: none), *to the version now. A PostgreSQL database is only ever migrated so (its
 * nodes must not race to migrate it under each other), under an advisory lock, in one
 * transaction; opening it otherwise refuses a schema that is not current. SQLite files are
 * also migrated by any open. */
xb_err xb_registry_migrate(const char *url, int *from, int *to, xb_diag *d);

/* url as logs and messages may show it: a PostgreSQL URL without user, password and query. */
void xb_registry_url_shown(const char *url, char *out, size_t size);

/* A cheap round trip: is the registry usable now? */
xb_err xb_registry_ping(xb_registry *r, xb_diag *d);

/* XB_ERR_INVALID_REGISTRATION_ID for a bad ID, XB_ERR_EXISTS if already registered. A device
 * added so needs no credential beyond the API key, if one is configured (the weakest). */
xb_err xb_registry_device_add(xb_registry *r, const char *reg_id, xb_diag *d);
/* Add n devices in one transaction: all of them or none. Same errors as device_add (an ID
 * listed twice is XB_ERR_EXISTS), XB_ERR_INVALID_ARGUMENT for a spec with both a secret and a
 * group or an invalid group name, XB_ERR_NOT_FOUND for a group that does not exist; then *bad
 * (if not NULL) is the index of the first offending spec. One durable commit for the batch, so
 * bulk imports do not pay one fsync per device. */
xb_err xb_registry_device_add_many(xb_registry *r, const xb_device_spec *devices, size_t n,
                                   size_t *bad, xb_diag *d);

/* Create a group with this key (XB_GROUP_KEY_MIN..XB_GROUP_KEY_MAX bytes): XB_ERR_EXISTS if
 * the name is taken. The key is stored as is: the server needs it to derive member keys, so
 * the registry file is as secret as the key (docs/security.md). */
xb_err xb_registry_group_add(xb_registry *r, const char *name, const uint8_t *key, size_t key_len,
                             xb_diag *d);
/* XB_ERR_NOT_FOUND if absent. */
xb_err xb_registry_group_get(xb_registry *r, const char *name, xb_group *out, xb_diag *d);
/* Calls fn for every group, ordered by name; stops early (returning fn's error) if fn fails. */
xb_err xb_registry_group_each(xb_registry *r, xb_err (*fn)(const xb_group *, void *), void *ctx,
                              xb_diag *d);
/* XB_ERR_DEVICE_UNKNOWN if absent. */
xb_err xb_registry_device_get(xb_registry *r, const char *reg_id, xb_device *out, xb_diag *d);
xb_err xb_registry_device_set_enabled(xb_registry *r, const char *reg_id, int enabled, xb_diag *d);
/* Calls fn for every device, ordered by ID; stops early (returning fn's error) if fn fails. */
xb_err xb_registry_device_each(xb_registry *r, xb_err (*fn)(const xb_device *, void *), void *ctx,
                               xb_diag *d);

/* Would rules let reg_id enroll now? Read-only; lets a request be refused before any signing.
 * XB_ERR_DEVICE_UNKNOWN / XB_ERR_DEVICE_DISABLED / XB_ERR_ALREADY_ENROLLED. */
xb_err xb_registry_check_enroll(xb_registry *r, const char *reg_id, const xb_enroll_rules *rules,
                                xb_diag *d);

/* Record one issuance durably, atomically re-checking the rules (another worker or node may
 * have enrolled the device since check_enroll). On any error nothing is written. Returns only
 * after the commit is durable. */
xb_err xb_registry_record_issuance(xb_registry *r, const xb_cert_record *rec,
                                   const xb_enroll_rules *rules, xb_diag *d);

/* One issuance in a group commit, and what became of it. */
typedef struct xb_issuance {
    xb_cert_record rec;
    xb_err result; /* set by record_batch: XB_OK when recorded */
    xb_diag diag;  /* why not, when result != XB_OK */
} xb_issuance;

/* Group commit: record n issuances in one transaction and one durable commit, each judged by
 * the rules on its own and in order (two for one device that may enroll once: the first is
 * recorded, the second refused). A refusal writes nothing and touches no other item. Returns
 * XB_OK once the commit is durable (each item's result says whether it was recorded); on a
 * storage failure nothing is written and every item's result is that error. */
xb_err xb_registry_record_batch(xb_registry *r, xb_issuance *const *items, size_t n,
                                const xb_enroll_rules *rules, xb_diag *d);

/* The device's current certificate: the one issued last (by issued_at, then in recording
 * order). Fills out with its record, except the borrowed fields: out->subject is NULL and the
 * DER goes to *der (malloc'd, the caller frees it with free()) and *der_len, out->der pointing
 * to it. The current certificate may be revoked (out->revoked_at != 0): a revocation does not
 * make an older certificate current again. XB_ERR_NOT_FOUND when reg_id has no certificate
 * (registered or not). A read: it takes no write lock and sees every committed issuance. */
xb_err xb_registry_current_cert(xb_registry *r, const char *reg_id, xb_cert_record *out,
                                uint8_t **der, size_t *der_len, xb_diag *d);

/* The certificate with this serial (lowercase hex, as recorded), filled as current_cert
 * fills it, revoked or not (revoked_at says). XB_ERR_NOT_FOUND when no certificate has it.
 * EST uses it to tell a client certificate we issued (and to whom) from any other. */
xb_err xb_registry_cert_get(xb_registry *r, const char *serial, xb_cert_record *out, uint8_t **der,
                            size_t *der_len, xb_diag *d);

/* Calls fn for every certificate (of reg_id, or all if NULL), oldest first. rec->der is only
 * valid during the call. Records carry revoked_at and revocation_reason, as in cert_get. */
xb_err xb_registry_cert_each(xb_registry *r, const char *reg_id,
                             xb_err (*fn)(const xb_cert_record *, void *), void *ctx, xb_diag *d);

/* Revoke the certificate with this serial (lowercase hex, as recorded) for reason (a supported
 * xb_revocation_reason, else XB_ERR_INVALID_ARGUMENT) at when (0: now), durably: it returns
 * once the commit is durable, and every lookup made afterwards, by any handle, reports it.
 * XB_ERR_NOT_FOUND when no certificate has the serial. A revocation is final and its first
 * record stands: revoking again changes nothing and returns XB_ERR_EXISTS, the diag naming
 * when and why it was revoked (callers that only want "revoked" may treat it as success). */
xb_err xb_registry_cert_revoke(xb_registry *r, const char *serial, int reason, time_t when,
                               xb_diag *d);

/* ---- the certificate revocation list ----
 *
 * The registry stores the current CRL (its DER, number and times) and a revision counter that
 * every revocation bumps in its own transaction. A CRL made at revision R "covers" R; when the
 * counter has moved on, the stored CRL is stale and whoever holds the CA key (xbootd on its next
 * GET /crl, or xbootctl given the CA) makes the next one. The registry never signs: it knows
 * nothing of keys (src/registry does not depend on src/ca). */

typedef struct xb_crl_state {
    long long number;   /* CRL number of the stored CRL; 0: none stored yet */
    long long revision; /* bumped by every revocation */
    long long covers;   /* the revision the stored CRL reflects */
    time_t this_update, next_update;
} xb_crl_state;

/* One revoked certificate, for the CRL. */
typedef struct xb_revoked {
    char serial[2 * 20 + 1];
    time_t revoked_at;
    int reason;
} xb_revoked;

/* Makes the CRL numbered number from the n revoked certificates: *der malloc'd (free()), its
 * thisUpdate and nextUpdate in *this_update and *next_update. */
typedef xb_err (*xb_crl_build_fn)(const xb_revoked *revoked, size_t n, long long number, void *ctx,
                                  uint8_t **der, size_t *der_len, time_t *this_update,
                                  time_t *next_update, xb_diag *d);
/* 1 if a new CRL must be made, given the stored state. */
typedef int (*xb_crl_stale_fn)(const xb_crl_state *st, void *ctx);

/* The state of the stored CRL: one small read, cheap enough for every GET /crl. */
xb_err xb_registry_crl_state(xb_registry *r, xb_crl_state *out, xb_diag *d);
/* The stored CRL (*der malloc'd, free()) and its state. XB_ERR_NOT_FOUND when none exists. */
xb_err xb_registry_crl_get(xb_registry *r, xb_crl_state *out, uint8_t **der, size_t *der_len,
                           xb_diag *d);
/* Under the write lock, so that one change is signed once however many workers or nodes see
 * it at the same moment: reads the state, and if stale() says so lists the revoked
 * certificates, calls build() with the next CRL number and stores its CRL as covering the
 * current revision, all in one transaction. *made (may be NULL): 1 if a CRL was stored. */
xb_err xb_registry_crl_update(xb_registry *r, xb_crl_stale_fn stale, xb_crl_build_fn build,
                              void *ctx, int *made, xb_diag *d);

/* Disable reg_id and revoke every certificate of it not yet revoked, for reason at when (0:
 * now), in one transaction. *revoked (may be NULL): how many were revoked. XB_ERR_DEVICE_UNKNOWN
 * if absent; reasons as for cert_revoke. */
xb_err xb_registry_device_disable_revoke(xb_registry *r, const char *reg_id, int reason,
                                         time_t when, size_t *revoked, xb_diag *d);

#endif
