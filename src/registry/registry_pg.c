/* The PostgreSQL registry: one connection per handle, shared by several xbootd nodes
 * (docs/deployment.md). Every invariant lives in the database (a conditional UPDATE under a row
 * lock for the one-time enrollment, primary keys for serials, a conditional UPDATE for the CRL
 * number), so nodes share nothing but it.
 *
 * A lost connection is noticed by the statement that fails on it. Outside a transaction that
 * statement reconnects and runs once more, so a restart of the server costs no request that
 * comes after it; while the server is down, each handle tries again at most once a second and
 * otherwise fails at once with XB_ERR_REGISTRY (503 registry_unavailable), never waiting in a
 * worker's event loop for longer than the connect timeout. */
#include "registry_pg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libpq's defaults wait for the OS (minutes) on a dead peer; these bound a connection attempt
 * and notice a silent network loss. A URL that sets them wins (it comes later in the list). */
#define XB_PG_CONNECT_TIMEOUT_S "5"
/* No statement waits longer than 30 s (a row lock held by a node that hangs, say); notices
 * ("relation already exists, skipping") are not for a log. */
#define XB_PG_SESSION_SETUP "SET statement_timeout = '30s'; SET client_min_messages = warning"
/* After a failed connection attempt, wait this long before the next, or four times as long as
 * the attempt took if that is more (at most 30 s): a server that refuses at once (restarting)
 * is tried every second, one that does not answer (a network partition, connect_timeout) is
 * not, so a worker's event loop is not kept waiting in connect most of the time. */
#define XB_PG_RECONNECT_EVERY_MS 1000
#define XB_PG_RECONNECT_MAX_MS 30000
#define XB_PG_TX_ATTEMPTS 3
#define XB_PG_FETCH "FETCH 500 FROM xb_cursor"
/* Taken by every migration, so nodes and admins migrating at once take turns ("xboot"). */
#define XB_PG_MIGRATE_LOCK "SELECT pg_advisory_xact_lock(512970305396)"

/* ---- parameters and columns ---- */

static void xb_pg_param(xb_pg_params *p, const char *v, int len, int fmt)
{
    if (p->n >= (int)(sizeof p->values / sizeof p->values[0]))
        return; /* the statements have at most 12; a 13th is a bug caught by the server */
    p->values[p->n] = v;
    p->lengths[p->n] = len;
    p->formats[p->n] = fmt;
    p->n++;
}

void xb_pg_text(xb_pg_params *p, const char *s)
{
    xb_pg_param(p, s, 0, 0);
}

void xb_pg_opt_text(xb_pg_params *p, const char *s)
{
    xb_pg_param(p, s != NULL && s[0] != '\0' ? s : NULL, 0, 0);
}

void xb_pg_int(xb_pg_params *p, long long v)
{
    if (p->n >= (int)(sizeof p->ints / sizeof p->ints[0]))
        return;
    snprintf(p->ints[p->n], sizeof p->ints[p->n], "%lld", v);
    xb_pg_param(p, p->ints[p->n], 0, 0);
}

void xb_pg_bytea(xb_pg_params *p, const uint8_t *b, size_t len)
{
    xb_pg_param(p, (const char *)b, b != NULL ? (int)len : 0, 1);
}

long long xb_pg_get_int(PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    const char *v = PQgetvalue(res, row, col);
    if (v[0] == 't') /* a boolean column */
        return 1;
    return strtoll(v, NULL, 10);
}

void xb_pg_get_text(PGresult *res, int row, int col, char *buf, size_t size)
{
    snprintf(buf, size, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

uint8_t *xb_pg_get_bytea(PGresult *res, int row, int col, size_t *len)
{
    *len = 0;
    if (PQgetisnull(res, row, col))
        return NULL;
    return PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), len);
}

long long xb_pg_changes(PGresult *res)
{
    const char *n = PQcmdTuples(res);
    return n[0] != '\0' ? strtoll(n, NULL, 10) : 0;
}

/* ---- failures ---- */

/* The first line of a libpq message, without its "ERROR:  " prefix noise kept short. */
static void xb_pg_reason(const char *msg, char *out, size_t size)
{
    if (msg == NULL || msg[0] == '\0')
        msg = "unknown error";
    size_t n = strcspn(msg, "\n");
    snprintf(out, size, "%.*s", (int)n, msg);
}

xb_err xb_pg_fail(xb_pg *s, xb_diag *d, const char *what, const char *reason)
{
    return xb_fail(d, XB_ERR_REGISTRY, "registry %s: %s: %s", s->shown, what, reason);
}

/* ---- connecting ---- */

static long long xb_pg_ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static void xb_pg_drop(xb_pg *s, const char *reason)
{
    if (reason != NULL)
        xb_pg_reason(reason, s->down_reason, sizeof s->down_reason);
    PQfinish(s->conn);
    s->conn = NULL;
}

/* A simple statement on the connection (no parameters, several statements allowed). */
static xb_err xb_pg_exec(xb_pg *s, const char *sql, char sqlstate[6], xb_diag *d, const char *what)
{
    PGresult *r = PQexec(s->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(r);
        return XB_OK;
    }
    char reason[200];
    xb_pg_reason(r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(s->conn), reason,
                 sizeof reason);
    if (sqlstate != NULL) {
        const char *code = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        snprintf(sqlstate, 6, "%s", code != NULL ? code : "");
    }
    PQclear(r);
    xb_err err = xb_pg_fail(s, d, what, reason);
    if (PQstatus(s->conn) == CONNECTION_BAD)
        xb_pg_drop(s, reason);
    return err;
}

/* The schema version of the connected database: 0 when it has no schema yet. */
static xb_err xb_pg_read_version(xb_pg *s, int *version, xb_diag *d)
{
    PGresult *r = PQexec(s->conn, "SELECT version FROM xboot_schema WHERE id = 1");
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    xb_err err = XB_OK;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        *version = PQntuples(r) == 1 ? (int)xb_pg_get_int(r, 0, 0) : 0;
    } else if (code != NULL && strcmp(code, "42P01") == 0) { /* undefined_table */
        *version = 0;
    } else {
        char reason[200];
        xb_pg_reason(PQresultErrorMessage(r), reason, sizeof reason);
        err = xb_pg_fail(s, d, "cannot read the schema version", reason);
    }
    PQclear(r);
    return err;
}

static xb_err xb_pg_too_new(xb_pg *s, int version, xb_diag *d)
{
    return xb_fail(d, XB_ERR_CONFIG,
                   "registry %s has schema version %d, newer than this xboot understands (%d); "
                   "upgrade xboot",
                   s->shown, version, XB_PG_SCHEMA_VERSION);
}

/* xbootctl db migrate: every missing step and the new version in one transaction, under an
 * advisory lock (DDL is transactional here): a failed step leaves the database as it was. */
static xb_err xb_pg_migrate_locked(xb_pg *s, int *version, xb_diag *d)
{
    xb_err err = xb_pg_exec(s, XB_PG_MIGRATE_LOCK, NULL, d, "cannot lock the schema");
    if (err == XB_OK)
        err = xb_pg_exec(s,
                         "CREATE TABLE IF NOT EXISTS xboot_schema (id INTEGER PRIMARY KEY "
                         "CHECK (id = 1), version INTEGER NOT NULL);"
                         "INSERT INTO xboot_schema (id, version) VALUES (1, 0) "
                         "ON CONFLICT (id) DO NOTHING",
                         NULL, d, "cannot create the schema version table");
    if (err == XB_OK)
        err = xb_pg_read_version(s, version, d);
    if (err == XB_OK && *version > XB_PG_SCHEMA_VERSION)
        err = xb_pg_too_new(s, *version, d);
    for (int v = *version; err == XB_OK && v < XB_PG_SCHEMA_VERSION; v++) {
        char what[96];
        snprintf(what, sizeof what, "cannot migrate the schema from version %d to %d", v, v + 1);
        err = xb_pg_exec(s, xb_pg_migrations[v], NULL, d, what);
    }
    if (err == XB_OK && *version != XB_PG_SCHEMA_VERSION) {
        char sql[80];
        snprintf(sql, sizeof sql, "UPDATE xboot_schema SET version = %d WHERE id = 1",
                 XB_PG_SCHEMA_VERSION);
        err = xb_pg_exec(s, sql, NULL, d, "cannot set the schema version");
    }
    return err;
}

static xb_err xb_pg_migrate(xb_pg *s, int *version, xb_diag *d)
{
    xb_err err = xb_pg_exec(s, "BEGIN", NULL, d, "cannot start the schema transaction");
    if (err != XB_OK)
        return err;
    err = xb_pg_migrate_locked(s, version, d);
    if (err == XB_OK)
        return xb_pg_exec(s, "COMMIT", NULL, d, "cannot commit the schema");
    if (s->conn != NULL)
        PQclear(PQexec(s->conn, "ROLLBACK"));
    return err;
}

/* Only xbootctl db migrate changes the schema of a shared database: nodes of two versions
 * must not race to migrate it under each other. A newer schema is accepted: an upgrade
 * migrates first and then replaces the nodes one by one, so the old ones run on the new schema
 * meanwhile, and migrations only add (docs/deployment.md, "Upgrades"). */
static xb_err xb_pg_check_version(xb_pg *s, int *version, xb_diag *d)
{
    xb_err err = xb_pg_read_version(s, version, d);
    if (err != XB_OK)
        return err;
    if (*version < XB_PG_SCHEMA_VERSION)
        return xb_fail(d, XB_ERR_CONFIG,
                       "registry %s has schema version %d; this xboot needs %d: run "
                       "`xbootctl db migrate --db URL` first",
                       s->shown, *version, XB_PG_SCHEMA_VERSION);
    return XB_OK;
}

static xb_err xb_pg_prepare_all(xb_pg *s, xb_diag *d)
{
    for (int i = 0; i < XB_PG__COUNT; i++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        PGresult *r = PQprepare(s->conn, name, xb_pg_sql[i], 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            char reason[200];
            xb_pg_reason(PQresultErrorMessage(r), reason, sizeof reason);
            PQclear(r);
            return xb_pg_fail(s, d, "cannot prepare statements", reason);
        }
        PQclear(r);
    }
    return XB_OK;
}

static xb_err xb_pg_connect_once(xb_pg *s, xb_diag *d);

static xb_err xb_pg_connect(xb_pg *s, xb_diag *d)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    xb_err err = xb_pg_connect_once(s, d);
    clock_gettime(CLOCK_MONOTONIC, &s->last_attempt); /* the pause counts from the end */
    long long took = (long long)(s->last_attempt.tv_sec - start.tv_sec) * 1000 +
                     (s->last_attempt.tv_nsec - start.tv_nsec) / 1000000;
    s->retry_after_ms = took * 4 > XB_PG_RECONNECT_EVERY_MS ? took * 4 : XB_PG_RECONNECT_EVERY_MS;
    if (s->retry_after_ms > XB_PG_RECONNECT_MAX_MS)
        s->retry_after_ms = XB_PG_RECONNECT_MAX_MS;
    return err;
}

static xb_err xb_pg_connect_once(xb_pg *s, xb_diag *d)
{
    const char *keys[] = {"connect_timeout",
                          "application_name",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "dbname",
                          NULL};
    const char *values[] = {XB_PG_CONNECT_TIMEOUT_S, "xboot", "10", "5", "3", s->conninfo, NULL};
    s->conn = PQconnectdbParams(keys, values, 1);
    if (s->conn == NULL) {
        snprintf(s->down_reason, sizeof s->down_reason, "out of memory");
        return xb_fail(d, XB_ERR_NOMEM, "out of memory connecting to the registry");
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        xb_pg_drop(s, PQerrorMessage(s->conn));
        return xb_pg_fail(s, d, "cannot connect", s->down_reason);
    }
    int version = 0;
    xb_err err = xb_pg_exec(s, XB_PG_SESSION_SETUP, NULL, d, "cannot set up the session");
    if (err == XB_OK)
        err = s->migrate ? xb_pg_migrate(s, &version, d) : xb_pg_check_version(s, &version, d);
    if (err == XB_OK && s->was_version < 0)
        s->was_version = version;
    if (err == XB_OK)
        err = xb_pg_prepare_all(s, d);
    if (err != XB_OK && s->conn != NULL)
        xb_pg_drop(s, xb_diag_message(d, err));
    return err;
}

/* Connected, or trying again once the pause after the last attempt is over (or force). */
static xb_err xb_pg_ensure(xb_pg *s, int force, xb_diag *d)
{
    if (s->conn != NULL)
        return XB_OK;
    if (!force && xb_pg_ms_since(&s->last_attempt) < s->retry_after_ms)
        return xb_fail(d, XB_ERR_REGISTRY, "registry %s is unavailable: %s", s->shown,
                       s->down_reason);
    return xb_pg_connect(s, d);
}

/* ---- statements ---- */

xb_err xb_pg_run(xb_pg *s, int which, const xb_pg_params *p, PGresult **res, char sqlstate[6],
                 xb_diag *d, const char *what)
{
    static const xb_pg_params none = {0};
    if (p == NULL)
        p = &none;
    *res = NULL;
    if (sqlstate != NULL)
        sqlstate[0] = '\0';
    for (int attempt = 0; attempt < 2; attempt++) {
        /* A retry after a lost connection reconnects at once: the server may be back. */
        xb_err err = xb_pg_ensure(s, attempt > 0, d);
        if (err != XB_OK)
            return err;
        char name[16];
        snprintf(name, sizeof name, "x%d", which);
        PGresult *r =
            PQexecPrepared(s->conn, name, p->n, p->values, p->lengths, p->formats, 0 /* text */);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            *res = r;
            return XB_OK;
        }
        char reason[200];
        xb_pg_reason(r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(s->conn), reason,
                     sizeof reason);
        const char *code = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        snprintf(s->last_sqlstate, sizeof s->last_sqlstate, "%s", code != NULL ? code : "");
        if (sqlstate != NULL)
            memcpy(sqlstate, s->last_sqlstate, sizeof s->last_sqlstate);
        PQclear(r);
        err = xb_pg_fail(s, d, what, reason);
        if (PQstatus(s->conn) != CONNECTION_BAD)
            return err;
        xb_pg_drop(s, reason);
        s->lost = 1;
        if (s->in_tx)
            return err; /* the transaction is gone with it: xb_pg_tx decides */
    }
    return XB_ERR_REGISTRY; /* not reached: the second attempt returns */
}

xb_err xb_pg_run_only(xb_pg *s, int which, const xb_pg_params *p, xb_diag *d, const char *what)
{
    PGresult *r = NULL;
    xb_err err = xb_pg_run(s, which, p, &r, NULL, d, what);
    PQclear(r);
    return err;
}

/* ---- transactions ---- */

static int xb_pg_retryable(const char *sqlstate)
{
    return strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0;
}

static void xb_pg_pause(xb_pg *s, int attempt)
{
    /* 1..10 ms, then 1..20 ms: two nodes that deadlocked should not meet again at once, so the
     * seed differs per process and per handle (rand() would give every worker one sequence). */
    if (s->jitter == 0) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        s->jitter =
            (unsigned)getpid() * 2654435761u ^ (unsigned)now.tv_nsec ^ (unsigned)(uintptr_t)s;
    }
    long ms = 1 + rand_r(&s->jitter) % (10 * attempt);
    struct timespec nap = {0, ms * 1000000L};
    nanosleep(&nap, NULL);
}

xb_err xb_pg_tx(xb_pg *s, xb_pg_body_fn body, void (*reset)(void *ctx), void *ctx, int read_only,
                xb_diag *d)
{
    xb_err err = XB_OK;
    for (int attempt = 1; attempt <= XB_PG_TX_ATTEMPTS; attempt++) {
        if (attempt > 1 && reset != NULL)
            reset(ctx);
        s->lost = 0;
        s->last_sqlstate[0] = '\0';
        s->tx_rollback = 0;
        err = xb_pg_ensure(s, attempt > 1, d);
        if (err != XB_OK)
            return err;
        err = xb_pg_exec(s, read_only ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN",
                         s->last_sqlstate, d, "cannot start a transaction");
        if (err != XB_OK) {
            if (s->conn == NULL && attempt < XB_PG_TX_ATTEMPTS)
                continue; /* lost before anything was sent: reconnect and start again */
            return err;
        }
        s->in_tx = 1;
        err = body(s, ctx, d);
        s->in_tx = 0;
        if (err == XB_OK && !s->tx_rollback) {
            err = xb_pg_exec(s, "COMMIT", s->last_sqlstate, d, "cannot commit");
            if (err == XB_OK)
                return XB_OK;
            if (s->conn == NULL) /* it may or may not have committed: never run it twice */
                return xb_fail(d, XB_ERR_REGISTRY,
                               "registry %s: the connection was lost during COMMIT; the outcome "
                               "is unknown",
                               s->shown);
        } else if (s->conn != NULL) {
            PQclear(PQexec(s->conn, "ROLLBACK"));
            if (err == XB_OK)
                return XB_OK; /* the body asked for nothing to be kept */
        }
        int again = xb_pg_retryable(s->last_sqlstate) || (s->lost && s->conn == NULL);
        if (!again || attempt == XB_PG_TX_ATTEMPTS)
            return err;
        xb_pg_pause(s, attempt);
    }
    return err;
}

/* Rows through a cursor, 500 at a time, in one read-only snapshot. Not retried: the callback
 * has seen rows already. */
xb_err xb_pg_each_row(xb_pg *s, const char *sql, const xb_pg_params *p,
                      xb_err (*row)(PGresult *res, int i, void *ctx), void *ctx, xb_diag *d,
                      const char *what)
{
    xb_err err = xb_pg_ensure(s, 0, d);
    if (err == XB_OK)
        err = xb_pg_exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL, d, what);
    if (err != XB_OK)
        return err;
    s->in_tx = 1;
    size_t len = strlen(sql) + 64;
    char *declare = malloc(len);
    if (declare == NULL) {
        err = xb_fail(d, XB_ERR_NOMEM, "out of memory listing the registry");
    } else {
        snprintf(declare, len, "DECLARE xb_cursor NO SCROLL CURSOR FOR %s", sql);
        static const xb_pg_params none = {0};
        const xb_pg_params *q = p != NULL ? p : &none;
        PGresult *r =
            PQexecParams(s->conn, declare, q->n, NULL, q->values, q->lengths, q->formats, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            char reason[200];
            xb_pg_reason(PQresultErrorMessage(r), reason, sizeof reason);
            err = xb_pg_fail(s, d, what, reason);
        }
        PQclear(r);
        free(declare);
    }
    while (err == XB_OK) {
        PGresult *r = PQexec(s->conn, XB_PG_FETCH);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            char reason[200];
            xb_pg_reason(PQresultErrorMessage(r), reason, sizeof reason);
            err = xb_pg_fail(s, d, what, reason);
            PQclear(r);
            break;
        }
        int n = PQntuples(r);
        for (int i = 0; err == XB_OK && i < n; i++)
            err = row(r, i, ctx);
        PQclear(r);
        if (n == 0)
            break;
    }
    s->in_tx = 0;
    if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_BAD)
        xb_pg_drop(s, PQerrorMessage(s->conn));
    if (s->conn != NULL)
        PQclear(PQexec(s->conn, err == XB_OK ? "COMMIT" : "ROLLBACK"));
    return err;
}

/* ---- opening ---- */

/* postgresql://user:password@host:port/db?options -> postgresql://host:port/db: what logs and
 * messages may show (the password, and anything in the query, may be secret). */
static void xb_pg_shown(const char *url, char *out, size_t size)
{
    const char *rest = strstr(url, "://");
    size_t scheme = rest != NULL ? (size_t)(rest - url) : 0;
    rest = rest != NULL ? rest + 3 : url;
    size_t authority = strcspn(rest, "/?");
    const char *at = NULL;
    for (size_t i = 0; i < authority; i++)
        if (rest[i] == '@')
            at = rest + i;
    const char *host = at != NULL ? at + 1 : rest;
    size_t keep = strcspn(host, "?#");
    snprintf(out, size, "%.*s://%.*s", (int)scheme, url, (int)keep, host);
}

static void xb_pg_close(xb_registry *r)
{
    xb_pg *s = xb_pg_of(r);
    PQfinish(s->conn);
    free(s->conninfo);
    free(s);
}

static xb_err xb_pg_ping(xb_registry *r, xb_diag *d)
{
    xb_pg *s = xb_pg_of(r);
    PGresult *res = NULL;
    xb_err err = xb_pg_run(s, XB_PG_VERSION, NULL, &res, NULL, d, "cannot read the schema version");
    if (err == XB_OK && (PQntuples(res) != 1 || xb_pg_get_int(res, 0, 0) < XB_PG_SCHEMA_VERSION))
        err = xb_fail(d, XB_ERR_REGISTRY, "registry %s: the schema is older than this xboot",
                      s->shown);
    PQclear(res);
    return err;
}

static const xb_registry_ops xb_pg_ops = {
    .close = xb_pg_close,
    .ping = xb_pg_ping,
    .device_add_many = xb_pg_device_add_many,
    .group_add = xb_pg_group_add,
    .group_get = xb_pg_group_get,
    .group_each = xb_pg_group_each,
    .device_get = xb_pg_device_get,
    .device_set_enabled = xb_pg_device_set_enabled,
    .device_each = xb_pg_device_each,
    .check_enroll = xb_pg_check_enroll,
    .record_batch = xb_pg_record_batch,
    .cert_each = xb_pg_cert_each,
    .current_cert = xb_pg_current_cert,
    .cert_get = xb_pg_cert_get,
    .cert_revoke = xb_pg_cert_revoke,
    .crl_state = xb_pg_crl_state,
    .crl_get = xb_pg_crl_get,
    .crl_update = xb_pg_crl_update,
    .device_disable_revoke = xb_pg_device_disable_revoke,
};

void xb_registry_pg_shown(const char *url, char *out, size_t size)
{
    xb_pg_shown(url, out, size);
}

xb_err xb_registry_pg_open(const char *url, int migrate, int *was_version, xb_registry **out,
                           xb_diag *d)
{
    xb_pg *s = calloc(1, sizeof *s);
    if (s == NULL || (s->conninfo = strdup(url)) == NULL) {
        free(s);
        return xb_fail(d, XB_ERR_NOMEM, "out of memory opening the registry");
    }
    s->base.ops = &xb_pg_ops;
    s->migrate = migrate;
    s->was_version = -1;
    xb_pg_shown(url, s->shown, sizeof s->shown);
    xb_err err = xb_pg_connect(s, d);
    /* A server that cannot be reached now is no reason to fail: the handle connects on first
     * use, like after any outage. An xbootd worker restarted while the database is down then
     * serves 503s and recovers with it, instead of exiting until the supervisor gives up.
     * (xbootd's start checks with a ping, so it still refuses to start without a database.)
     * A schema that is not current, or db migrate, fails here. */
    if (err == XB_ERR_REGISTRY && !migrate && s->conn == NULL)
        err = XB_OK;
    if (err != XB_OK) {
        xb_pg_close(&s->base);
        return err;
    }
    if (was_version != NULL)
        *was_version = s->was_version;
    *out = &s->base;
    return XB_OK;
}
