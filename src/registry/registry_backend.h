/* Internal: what a registry backend provides. Not installed, not used outside src/registry.
 *
 * registry.c owns argument checks that do not depend on storage (registration IDs, NULLs), so
 * a backend receives only validated input and never has to repeat them. Adding a backend
 * (PostgreSQL) is one more file with one more open function and one more ops table. */
#ifndef XB_REGISTRY_BACKEND_H
#define XB_REGISTRY_BACKEND_H

#include "registry.h"

typedef struct xb_registry_ops {
    void (*close)(xb_registry *r);
    xb_err (*ping)(xb_registry *r, xb_diag *d);
    /* every spec validated: ID, group name, not both credentials */
    xb_err (*device_add_many)(xb_registry *r, const xb_device_spec *devices, size_t n, size_t *bad,
                              xb_diag *d);
    /* name valid, key_len in range */
    xb_err (*group_add)(xb_registry *r, const char *name, const uint8_t *key, size_t key_len,
                        xb_diag *d);
    xb_err (*group_get)(xb_registry *r, const char *name, xb_group *out, xb_diag *d);
    xb_err (*group_each)(xb_registry *r, xb_err (*fn)(const xb_group *, void *), void *ctx,
                         xb_diag *d);
    xb_err (*device_get)(xb_registry *r, const char *reg_id, xb_device *out, xb_diag *d);
    xb_err (*device_set_enabled)(xb_registry *r, const char *reg_id, int enabled, xb_diag *d);
    xb_err (*device_each)(xb_registry *r, xb_err (*fn)(const xb_device *, void *), void *ctx,
                          xb_diag *d);
    xb_err (*check_enroll)(xb_registry *r, const char *reg_id, const xb_enroll_rules *rules,
                           xb_diag *d);
    /* rules validated, n >= 1; items whose result is not XB_OK on entry are skipped */
    xb_err (*record_batch)(xb_registry *r, xb_issuance *const *items, size_t n,
                           const xb_enroll_rules *rules, xb_diag *d);
    xb_err (*cert_each)(xb_registry *r, const char *reg_id,
                        xb_err (*fn)(const xb_cert_record *, void *), void *ctx, xb_diag *d);
    /* out, der and der_len not NULL; *der NULL on entry */
    xb_err (*current_cert)(xb_registry *r, const char *reg_id, xb_cert_record *out, uint8_t **der,
                           size_t *der_len, xb_diag *d);
    /* serial non-empty; out, der and der_len not NULL; *der NULL on entry */
    xb_err (*cert_get)(xb_registry *r, const char *serial, xb_cert_record *out, uint8_t **der,
                       size_t *der_len, xb_diag *d);
    /* serial non-empty, reason supported, when > 0 (registry.c resolved "now") */
    xb_err (*cert_revoke)(xb_registry *r, const char *serial, int reason, time_t when, xb_diag *d);
    xb_err (*crl_state)(xb_registry *r, xb_crl_state *out, xb_diag *d);
    /* out, der, der_len not NULL; *der NULL on entry */
    xb_err (*crl_get)(xb_registry *r, xb_crl_state *out, uint8_t **der, size_t *der_len,
                      xb_diag *d);
    /* stale and build not NULL; made not NULL, 0 on entry */
    xb_err (*crl_update)(xb_registry *r, xb_crl_stale_fn stale, xb_crl_build_fn build, void *ctx,
                         int *made, xb_diag *d);
    /* reg_id valid, reason supported, when > 0; revoked not NULL */
    xb_err (*device_disable_revoke)(xb_registry *r, const char *reg_id, int reason, time_t when,
                                    size_t *revoked, xb_diag *d);
} xb_registry_ops;

/* Every backend handle starts with this, so registry.c can dispatch on any of them. */
struct xb_registry {
    const xb_registry_ops *ops;
};

/* SQLite's PRAGMA synchronous for the commits that release responses. */
typedef enum xb_sq_sync { XB_SQ_SYNC_FULL, XB_SQ_SYNC_NORMAL, XB_SQ_SYNC_OFF } xb_sq_sync;

/* path: what follows "sqlite:" in the URL (without the ?query), non-empty. The file's schema
 * is created or migrated on open; *was_version (may be NULL) is the version found. */
xb_err xb_registry_sqlite_open(const char *path, xb_sq_sync sync, int *was_version,
                               xb_registry **out, xb_diag *d);

/* url: a libpq connection URI (postgresql:// or postgres://). migrate: create or migrate the
 * schema (xbootctl db migrate); otherwise a schema that is not current is refused.
 * *was_version (may be NULL) is the version found. */
xb_err xb_registry_pg_open(const char *url, int migrate, int *was_version, xb_registry **out,
                           xb_diag *d);
/* The URL without user, password and query, for logs and messages. */
void xb_registry_pg_shown(const char *url, char *out, size_t size);

#endif
