/* Internal to the SQLite backend (registry_sqlite*.c): the connection, its cached statements
 * and the helpers every part uses. registry_sqlite.c opens, migrates and holds the SQL;
 * registry_sqlite_devices.c the devices and groups; registry_sqlite_certs.c issuance, lookups
 * and revocation; registry_sqlite_crl.c the stored CRL. */
#ifndef XB_REGISTRY_SQLITE_H
#define XB_REGISTRY_SQLITE_H

#include <time.h>

#include <sqlite3.h>

#include "registry_backend.h"

/* Statements used on every request or admin call, prepared once per connection. The listing
 * queries are prepared per call instead: their callbacks may call back into the registry, and
 * a cached statement must not be reset under a running iteration. */
enum {
    XB_SQ_BEGIN,
    XB_SQ_COMMIT,
    XB_SQ_ROLLBACK,
    XB_SQ_VERSION,
    XB_SQ_DEVICE_INSERT,
    XB_SQ_DEVICE_INSERT_NEW,
    XB_SQ_GROUP_INSERT,
    XB_SQ_GROUP_GET,
    XB_SQ_DEVICE_GET,
    XB_SQ_DEVICE_STATE,
    XB_SQ_DEVICE_SET_ENABLED,
    XB_SQ_DEVICE_ENROLL,
    XB_SQ_CERT_INSERT,
    XB_SQ_CERT_CURRENT,
    XB_SQ_CERT_GET,
    XB_SQ_CERT_REVOKED,
    XB_SQ_CERT_REVOKE,
    XB_SQ_CERT_REVOKE_DEVICE,
    XB_SQ_CRL_STATE,
    XB_SQ_CRL_GET,
    XB_SQ_CRL_BUMP,
    XB_SQ_CRL_STORE,
    XB_SQ__COUNT
};

typedef struct xb_sq {
    xb_registry base;
    sqlite3 *db;
    char *path;
    xb_sq_sync sync;
    sqlite3_stmt *stmt[XB_SQ__COUNT];
    struct timespec busy_since; /* when the current wait for the write lock began */
} xb_sq;

static inline xb_sq *xb_sq_of(xb_registry *r)
{
    return (xb_sq *)r;
}

/* ---- helpers (registry_sqlite.c) ---- */

/* A failure naming the file, what was being done and SQLite's reason; call it before anything
 * else touches the connection (ROLLBACK replaces the message). */
xb_err xb_sq_begin(xb_sq *s, xb_diag *d);
int xb_sq_bind_id(sqlite3_stmt *st, int idx, const char *reg_id);
int xb_sq_bind_opt_text(sqlite3_stmt *st, int idx, const char *s);
xb_err xb_sq_commit(xb_sq *s, xb_diag *d);
void xb_sq_copy_text(sqlite3_stmt *st, int col, char *buf, size_t size);
xb_err xb_sq_fail(xb_sq *s, xb_diag *d, const char *what);
void xb_sq_reset(sqlite3_stmt *st);
void xb_sq_rollback(xb_sq *s);
xb_err xb_sq_run(xb_sq *s, int which, xb_diag *d, const char *what);

/* The listing queries, prepared per call (registry_sqlite.c). */
extern const char xb_sq_device_list_sql[];
extern const char xb_sq_group_list_sql[];
extern const char xb_sq_cert_list_sql[];
extern const char xb_sq_revoked_list_sql[];
extern const char xb_sq_cert_list_id_sql[];

/* The enrollment rules judged on the device row as it is now (registry_sqlite_devices.c). */
xb_err xb_sq_judge(xb_sq *s, const char *reg_id, const xb_enroll_rules *rules, xb_diag *d);

/* ---- operations, for the ops table in registry_sqlite.c (registry_backend.h) ---- */
xb_err xb_sq_cert_each(xb_registry *r, const char *reg_id,
                       xb_err (*fn)(const xb_cert_record *, void *), void *ctx, xb_diag *d);
xb_err xb_sq_cert_get(xb_registry *r, const char *serial, xb_cert_record *out, uint8_t **der,
                      size_t *der_len, xb_diag *d);
xb_err xb_sq_cert_revoke(xb_registry *r, const char *serial, int reason, time_t when, xb_diag *d);
xb_err xb_sq_current_cert(xb_registry *r, const char *reg_id, xb_cert_record *out, uint8_t **der,
                          size_t *der_len, xb_diag *d);
xb_err xb_sq_device_disable_revoke(xb_registry *r, const char *reg_id, int reason, time_t when,
                                   size_t *revoked, xb_diag *d);
xb_err xb_sq_record_batch(xb_registry *r, xb_issuance *const *items, size_t n,
                          const xb_enroll_rules *rules, xb_diag *d);
xb_err xb_sq_crl_get(xb_registry *r, xb_crl_state *out, uint8_t **der, size_t *der_len, xb_diag *d);
xb_err xb_sq_crl_state(xb_registry *r, xb_crl_state *out, xb_diag *d);
xb_err xb_sq_crl_update(xb_registry *r, xb_crl_stale_fn stale, xb_crl_build_fn build, void *ctx,
                        int *made, xb_diag *d);
xb_err xb_sq_check_enroll(xb_registry *r, const char *reg_id, const xb_enroll_rules *rules,
                          xb_diag *d);
xb_err xb_sq_device_add_many(xb_registry *r, const xb_device_spec *devices, size_t n, size_t *bad,
                             xb_diag *d);
xb_err xb_sq_device_each(xb_registry *r, xb_err (*fn)(const xb_device *, void *), void *ctx,
                         xb_diag *d);
xb_err xb_sq_device_get(xb_registry *r, const char *reg_id, xb_device *out, xb_diag *d);
xb_err xb_sq_device_set_enabled(xb_registry *r, const char *reg_id, int enabled, xb_diag *d);
xb_err xb_sq_group_add(xb_registry *r, const char *name, const uint8_t *key, size_t key_len,
                       xb_diag *d);
xb_err xb_sq_group_each(xb_registry *r, xb_err (*fn)(const xb_group *, void *), void *ctx,
                        xb_diag *d);
xb_err xb_sq_group_get(xb_registry *r, const char *name, xb_group *out, xb_diag *d);

#endif
