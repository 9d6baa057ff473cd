/* Internal to the PostgreSQL backend (registry_pg*.c): the connection, its prepared statements
 * and the helpers every part uses. registry_pg.c connects, reconnects, runs transactions and
 * holds the ops table; registry_pg_schema.c the schema's migrations and the statements' SQL;
 * registry_pg_devices.c devices and groups; registry_pg_certs.c issuance, lookups and
 * revocation; registry_pg_crl.c the stored CRL.
 *
 * One handle is one connection (libpq is not shared between threads): xbootd opens two per
 * worker process (the request loop's reads, the commit thread's writes), which makes the
 * node's pool (docs/deployment.md). */
#ifndef XB_REGISTRY_PG_H
#define XB_REGISTRY_PG_H

#include <stdint.h>
#include <time.h>

#include <libpq-fe.h>

#include "registry_backend.h"

/* Prepared on every (re)connection as "x0", "x1"... in this order. */
enum {
    XB_PG_VERSION,
    XB_PG_DEVICE_INSERT,
    XB_PG_GROUP_INSERT,
    XB_PG_GROUP_GET,
    XB_PG_DEVICE_GET,
    XB_PG_DEVICE_STATE,
    XB_PG_DEVICE_SET_ENABLED,
    XB_PG_ISSUE_KNOWN, /* record a certificate for a device that must have a row */
    XB_PG_ISSUE_NEW,   /* the same, creating the row on a first enrollment */
    XB_PG_CERT_CURRENT,
    XB_PG_CERT_GET,
    XB_PG_CERT_REVOKED,
    XB_PG_CERT_REVOKE,
    XB_PG_CERT_REVOKE_DEVICE,
    XB_PG_CRL_STATE,
    XB_PG_CRL_LOCK,
    XB_PG_CRL_GET,
    XB_PG_CRL_BUMP,
    XB_PG_CRL_STORE,
    XB_PG_REVOKED_LIST,
    XB_PG__COUNT
};

extern const char *const xb_pg_sql[XB_PG__COUNT];
/* Listings, run through a cursor (registry_pg.c, xb_pg_each_row). */
extern const char xb_pg_device_list_sql[];
extern const char xb_pg_group_list_sql[];
extern const char xb_pg_cert_list_sql[];
extern const char xb_pg_cert_list_id_sql[];

/* The schema this build reads and writes, and the steps that build it (registry_pg_schema.c).
 * The numbering is the SQLite backend's: version N means the same tables in both. */
#define XB_PG_SCHEMA_VERSION XB_REGISTRY_SCHEMA_VERSION
extern const char *const xb_pg_migrations[];

typedef struct xb_pg {
    xb_registry base;
    PGconn *conn;    /* NULL while disconnected */
    char *conninfo;  /* the URL as configured: it may hold a password, never shown */
    char shown[200]; /* postgresql://host:port/db, for messages and logs */
    int migrate;     /* this handle may create and migrate the schema (xbootctl db migrate) */
    int was_version; /* the schema version found by the first connection */
    int in_tx;       /* inside a transaction: a lost connection is not retried per statement */
    int lost;        /* the connection was lost during the current transaction */
    int tx_rollback; /* set by a transaction's body: keep nothing, and that is no failure */
    char last_sqlstate[6];        /* of the last failed statement ("" when the connection failed) */
    struct timespec last_attempt; /* end of the last connection attempt */
    long long retry_after_ms;     /* how long after it to try again (registry_pg.c) */
    unsigned jitter;              /* rand_r state for retry pauses */
    char down_reason[160];        /* why the last attempt failed, repeated while waiting */
} xb_pg;

static inline xb_pg *xb_pg_of(xb_registry *r)
{
    return (xb_pg *)r;
}

/* A statement's parameters: text values, or binary (bytea) where len > 0 or is_bin. */
typedef struct xb_pg_params {
    int n;
    const char *values[12];
    int lengths[12];
    int formats[12];
    char ints[12][24]; /* storage for xb_pg_int */
} xb_pg_params;

void xb_pg_text(xb_pg_params *p, const char *s);     /* NULL: SQL NULL */
void xb_pg_opt_text(xb_pg_params *p, const char *s); /* NULL or "": SQL NULL */
void xb_pg_int(xb_pg_params *p, long long v);
void xb_pg_bytea(xb_pg_params *p, const uint8_t *b, size_t len); /* NULL: SQL NULL */

/* Run prepared statement `which`. On success *res is the result (PQclear it) and XB_OK. A
 * failure fills d with what was being done and PostgreSQL's reason; *sqlstate (may be NULL)
 * receives the SQLSTATE ("" when the connection failed). Outside a transaction, a statement
 * that finds the connection lost reconnects and runs once more. */
xb_err xb_pg_run(xb_pg *s, int which, const xb_pg_params *p, PGresult **res, char sqlstate[6],
                 xb_diag *d, const char *what);
/* The same, when the result does not matter beyond success. */
xb_err xb_pg_run_only(xb_pg *s, int which, const xb_pg_params *p, xb_diag *d, const char *what);
/* Rows changed by the last command of res. */
long long xb_pg_changes(PGresult *res);

/* Run body(s, ctx, d) inside BEGIN ... COMMIT. A serialization failure or deadlock (SQLSTATE
 * 40001, 40P01), or a connection lost before COMMIT was sent, runs it again, up to 3 times in
 * all, with a short random pause; reset(ctx) (may be NULL) undoes what body recorded in ctx
 * before each new attempt. body returning an error rolls back and returns it; body setting
 * s->tx_rollback rolls back a transaction that wrote nothing worth keeping, and returns XB_OK.
 * A connection lost during COMMIT is never retried: the outcome is unknown. */
typedef xb_err (*xb_pg_body_fn)(xb_pg *s, void *ctx, xb_diag *d);
xb_err xb_pg_tx(xb_pg *s, xb_pg_body_fn body, void (*reset)(void *ctx), void *ctx, int read_only,
                xb_diag *d);

/* Listing: run sql (with p) through a cursor in a read-only snapshot, calling row(res, i, ctx)
 * for every row; stops at the first error. The callback may run other statements. */
xb_err xb_pg_each_row(xb_pg *s, const char *sql, const xb_pg_params *p,
                      xb_err (*row)(PGresult *res, int i, void *ctx), void *ctx, xb_diag *d,
                      const char *what);

/* Column readers: NULL reads as 0 / "". */
long long xb_pg_get_int(PGresult *res, int row, int col);
void xb_pg_get_text(PGresult *res, int row, int col, char *buf, size_t size);
/* A bytea column, unescaped into a malloc'd buffer (free with PQfreemem); NULL when SQL NULL
 * or out of memory (*len 0). */
uint8_t *xb_pg_get_bytea(PGresult *res, int row, int col, size_t *len);

/* A failure naming the database and what was being done. */
xb_err xb_pg_fail(xb_pg *s, xb_diag *d, const char *what, const char *reason);

/* ---- operations, for the ops table (registry_backend.h) ---- */
xb_err xb_pg_device_add_many(xb_registry *r, const xb_device_spec *devices, size_t n, size_t *bad,
                             xb_diag *d);
xb_err xb_pg_group_add(xb_registry *r, const char *name, const uint8_t *key, size_t key_len,
                       xb_diag *d);
xb_err xb_pg_group_get(xb_registry *r, const char *name, xb_group *out, xb_diag *d);
xb_err xb_pg_group_each(xb_registry *r, xb_err (*fn)(const xb_group *, void *), void *ctx,
                        xb_diag *d);
xb_err xb_pg_device_get(xb_registry *r, const char *reg_id, xb_device *out, xb_diag *d);
xb_err xb_pg_device_set_enabled(xb_registry *r, const char *reg_id, int enabled, xb_diag *d);
xb_err xb_pg_device_each(xb_registry *r, xb_err (*fn)(const xb_device *, void *), void *ctx,
                         xb_diag *d);
xb_err xb_pg_check_enroll(xb_registry *r, const char *reg_id, const xb_enroll_rules *rules,
                          xb_diag *d);
xb_err xb_pg_judge(xb_pg *s, const char *reg_id, const xb_enroll_rules *rules, xb_diag *d);
xb_err xb_pg_record_batch(xb_registry *r, xb_issuance *const *items, size_t n,
                          const xb_enroll_rules *rules, xb_diag *d);
xb_err xb_pg_cert_each(xb_registry *r, const char *reg_id,
                       xb_err (*fn)(const xb_cert_record *, void *), void *ctx, xb_diag *d);
xb_err xb_pg_current_cert(xb_registry *r, const char *reg_id, xb_cert_record *out, uint8_t **der,
                          size_t *der_len, xb_diag *d);
xb_err xb_pg_cert_get(xb_registry *r, const char *serial, xb_cert_record *out, uint8_t **der,
                      size_t *der_len, xb_diag *d);
xb_err xb_pg_cert_revoke(xb_registry *r, const char *serial, int reason, time_t when, xb_diag *d);
xb_err xb_pg_device_disable_revoke(xb_registry *r, const char *reg_id, int reason, time_t when,
                                   size_t *revoked, xb_diag *d);
xb_err xb_pg_crl_state(xb_registry *r, xb_crl_state *out, xb_diag *d);
xb_err xb_pg_crl_get(xb_registry *r, xb_crl_state *out, uint8_t **der, size_t *der_len, xb_diag *d);
xb_err xb_pg_crl_update(xb_registry *r, xb_crl_stale_fn stale, xb_crl_build_fn build, void *ctx,
                        int *made, xb_diag *d);

#endif
