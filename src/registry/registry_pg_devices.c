/* The PostgreSQL registry: devices and enrollment groups (registry_pg.h). */
#include "registry_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

static xb_err xb_pg_unknown(const char *reg_id, xb_diag *d)
{
    return xb_fail(d, XB_ERR_DEVICE_UNKNOWN, "device %s is not registered", reg_id);
}

/* ---- adding devices ---- */

/* As in the SQLite backend: a clash with an earlier element of the batch is the caller's
 * duplicate, not an existing device. Only run on a clash. */
static int xb_pg_listed_before(const xb_device_spec *devices, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcasecmp(devices[j].reg_id, devices[i].reg_id) == 0)
            return 1;
    return 0;
}

typedef struct xb_pg_add {
    const xb_device_spec *devices;
    size_t n, bad;
    time_t now;
} xb_pg_add;

#define XB_PG_ADD_PER_SYNC 1000

static void xb_pg_device_params(const xb_pg_add *a, size_t i, xb_pg_params *p)
{
    const xb_device_spec *dev = &a->devices[i];
    memset(p, 0, sizeof *p);
    xb_pg_text(p, dev->reg_id);
    xb_pg_int(p, (long long)a->now);
    xb_pg_bytea(p, dev->secret_sha256, XB_SECRET_HASH_LEN);
    xb_pg_opt_text(p, dev->group);
}

/* Why device i was refused, from its statement's SQLSTATE and message. */
static xb_err xb_pg_add_refused(xb_pg *s, const xb_pg_add *a, size_t i, const char *state,
                                const char *reason, xb_diag *d)
{
    const xb_device_spec *dev = &a->devices[i];
    if (strcmp(state, "23505") == 0) /* unique_violation */
        return xb_fail(d, XB_ERR_EXISTS,
                       xb_pg_listed_before(a->devices, i) ? "device %s is listed twice"
                                                          : "device %s is already registered",
                       dev->reg_id);
    if (strcmp(state, "23503") == 0) /* foreign_key_violation */
        return xb_fail(d, XB_ERR_NOT_FOUND, "device %s: group %s does not exist", dev->reg_id,
                       dev->group);
    return xb_pg_fail(s, d, "cannot add a device", reason);
}

/* Up to XB_PG_ADD_PER_SYNC inserts from *sent on, pipelined (libpq pipeline mode): sent
 * without waiting for each answer, so a factory list costs one round trip per thousand
 * devices, not one per device. The first refused insert makes the server skip the rest of the
 * segment; its index goes to a->bad. */
static xb_err xb_pg_add_segment(xb_pg *s, xb_pg_add *a, size_t *sent, xb_diag *d)
{
    size_t first = *sent,
           end = first + XB_PG_ADD_PER_SYNC < a->n ? first + XB_PG_ADD_PER_SYNC : a->n;
    char name[16];
    snprintf(name, sizeof name, "x%d", XB_PG_DEVICE_INSERT);
    for (size_t i = first; i < end; i++) {
        xb_pg_params p;
        xb_pg_device_params(a, i, &p);
        if (!PQsendQueryPrepared(s->conn, name, p.n, p.values, p.lengths, p.formats, 0))
            return xb_pg_fail(s, d, "cannot add devices", PQerrorMessage(s->conn));
    }
    if (!PQpipelineSync(s->conn))
        return xb_pg_fail(s, d, "cannot add devices", PQerrorMessage(s->conn));
    *sent = end;
    /* Each insert yields one result (then a NULL), the segment ends with the sync's. */
    xb_err err = XB_OK;
    size_t i = first;
    int nulls = 0;
    for (;;) {
        PGresult *r = PQgetResult(s->conn);
        if (r == NULL) {
            if (PQstatus(s->conn) == CONNECTION_BAD || ++nulls > 2)
                return err != XB_OK
                           ? err
                           : xb_pg_fail(s, d, "cannot add devices", PQerrorMessage(s->conn));
            continue;
        }
        nulls = 0;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            return err;
        }
        if (st == PGRES_FATAL_ERROR && err == XB_OK) {
            const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            char reason[200];
            snprintf(reason, sizeof reason, "%.*s", (int)strcspn(PQresultErrorMessage(r), "\n"),
                     PQresultErrorMessage(r));
            a->bad = i < a->n ? i : a->n - 1;
            err = xb_pg_add_refused(s, a, a->bad, code != NULL ? code : "", reason, d);
        }
        PQclear(r);
        i++;
    }
}

static xb_err xb_pg_add_body(xb_pg *s, void *ctx, xb_diag *d)
{
    xb_pg_add *a = ctx;
    if (!PQenterPipelineMode(s->conn))
        return xb_pg_fail(s, d, "cannot add devices", PQerrorMessage(s->conn));
    xb_err err = XB_OK;
    size_t sent = 0;
    while (err == XB_OK && sent < a->n)
        err = xb_pg_add_segment(s, a, &sent, d);
    if (!PQexitPipelineMode(s->conn) && err == XB_OK)
        err = xb_pg_fail(s, d, "cannot add devices", PQerrorMessage(s->conn));
    if (PQstatus(s->conn) == CONNECTION_BAD)
        s->lost = 1;
    return err;
}

xb_err xb_pg_device_add_many(xb_registry *r, const xb_device_spec *devices, size_t n, size_t *bad,
                             xb_diag *d)
{
    xb_pg_add a = {.devices = devices, .n = n, .now = time(NULL)};
    xb_err err = xb_pg_tx(xb_pg_of(r), xb_pg_add_body, NULL, &a, 0, d);
    if (err != XB_OK && bad != NULL)
        *bad = a.bad;
    return err;
}

/* ---- reading devices ---- */

static void xb_pg_read_device(PGresult *res, int i, xb_device *out)
{
    memset(out, 0, sizeof *out);
    xb_pg_get_text(res, i, 0, out->reg_id, sizeof out->reg_id);
    out->enabled = xb_pg_get_int(res, i, 1) != 0;
    xb_pg_get_text(res, i, 2, out->source, sizeof out->source);
    out->created_at = (time_t)xb_pg_get_int(res, i, 3);
    out->enrolled_at = (time_t)xb_pg_get_int(res, i, 4);
    out->cert_count = xb_pg_get_int(res, i, 5);
    size_t len = 0;
    uint8_t *hash = xb_pg_get_bytea(res, i, 6, &len);
    if (hash != NULL && len == XB_SECRET_HASH_LEN) {
        memcpy(out->secret_sha256, hash, XB_SECRET_HASH_LEN);
        out->has_secret = 1;
    }
    PQfreemem(hash);
    xb_pg_get_text(res, i, 7, out->group, sizeof out->group);
}

xb_err xb_pg_device_get(xb_registry *r, const char *reg_id, xb_device *out, xb_diag *d)
{
    xb_pg_params p = {0};
    xb_pg_text(&p, reg_id);
    PGresult *res = NULL;
    xb_err err =
        xb_pg_run(xb_pg_of(r), XB_PG_DEVICE_GET, &p, &res, NULL, d, "cannot read a device");
    if (err == XB_OK && PQntuples(res) == 0)
        err = xb_pg_unknown(reg_id, d);
    else if (err == XB_OK)
        xb_pg_read_device(res, 0, out);
    PQclear(res);
    return err;
}

xb_err xb_pg_device_set_enabled(xb_registry *r, const char *reg_id, int enabled, xb_diag *d)
{
    xb_pg_params p = {0};
    xb_pg_int(&p, enabled != 0);
    xb_pg_text(&p, reg_id);
    PGresult *res = NULL;
    xb_err err = xb_pg_run(xb_pg_of(r), XB_PG_DEVICE_SET_ENABLED, &p, &res, NULL, d,
                           "cannot update a device");
    if (err == XB_OK && xb_pg_changes(res) == 0)
        err = xb_pg_unknown(reg_id, d);
    PQclear(res);
    return err;
}

typedef struct xb_pg_device_walk {
    xb_err (*fn)(const xb_device *, void *);
    void *ctx;
} xb_pg_device_walk;

static xb_err xb_pg_device_row(PGresult *res, int i, void *ctx)
{
    xb_pg_device_walk *w = ctx;
    xb_device dev;
    xb_pg_read_device(res, i, &dev);
    return w->fn(&dev, w->ctx);
}

xb_err xb_pg_device_each(xb_registry *r, xb_err (*fn)(const xb_device *, void *), void *ctx,
                         xb_diag *d)
{
    xb_pg_device_walk w = {fn, ctx};
    return xb_pg_each_row(xb_pg_of(r), xb_pg_device_list_sql, NULL, xb_pg_device_row, &w, d,
                          "cannot list devices");
}

/* ---- groups ---- */

xb_err xb_pg_group_add(xb_registry *r, const char *name, const uint8_t *key, size_t key_len,
                       xb_diag *d)
{
    xb_pg_params p = {0};
    xb_pg_text(&p, name);
    xb_pg_bytea(&p, key, key_len);
    xb_pg_int(&p, (long long)time(NULL));
    char state[6];
    xb_err err = xb_pg_run_only(xb_pg_of(r), XB_PG_GROUP_INSERT, &p, d, "cannot add a group");
    memcpy(state, xb_pg_of(r)->last_sqlstate, sizeof state);
    if (err != XB_OK && strcmp(state, "23505") == 0)
        err = xb_fail(d, XB_ERR_EXISTS, "group %s already exists", name);
    return err;
}

static void xb_pg_read_group(PGresult *res, int i, xb_group *out)
{
    memset(out, 0, sizeof *out);
    xb_pg_get_text(res, i, 0, out->name, sizeof out->name);
    size_t len = 0;
    uint8_t *key = xb_pg_get_bytea(res, i, 1, &len);
    if (key != NULL && len > 0 && len <= XB_GROUP_KEY_MAX) {
        memcpy(out->key, key, len);
        out->key_len = len;
    }
    if (key != NULL) {
        OPENSSL_cleanse(key, len);
        PQfreemem(key);
    }
    out->created_at = (time_t)xb_pg_get_int(res, i, 2);
}

xb_err xb_pg_group_get(xb_registry *r, const char *name, xb_group *out, xb_diag *d)
{
    xb_pg_params p = {0};
    xb_pg_text(&p, name);
    PGresult *res = NULL;
    xb_err err = xb_pg_run(xb_pg_of(r), XB_PG_GROUP_GET, &p, &res, NULL, d, "cannot read a group");
    if (err == XB_OK && PQntuples(res) == 0)
        err = xb_fail(d, XB_ERR_NOT_FOUND, "group %s does not exist", name);
    else if (err == XB_OK)
        xb_pg_read_group(res, 0, out);
    PQclear(res);
    return err;
}

typedef struct xb_pg_group_walk {
    xb_err (*fn)(const xb_group *, void *);
    void *ctx;
} xb_pg_group_walk;

static xb_err xb_pg_group_row(PGresult *res, int i, void *ctx)
{
    xb_pg_group_walk *w = ctx;
    xb_group g;
    xb_pg_read_group(res, i, &g);
    xb_err err = w->fn(&g, w->ctx);
    OPENSSL_cleanse(&g, sizeof g);
    return err;
}

xb_err xb_pg_group_each(xb_registry *r, xb_err (*fn)(const xb_group *, void *), void *ctx,
                        xb_diag *d)
{
    xb_pg_group_walk w = {fn, ctx};
    return xb_pg_each_row(xb_pg_of(r), xb_pg_group_list_sql, NULL, xb_pg_group_row, &w, d,
                          "cannot list groups");
}

/* ---- the enrollment rules ---- */

/* The rules judged on the device row as it is now: alone (check_enroll), and inside a
 * recording transaction to say why the conditional statement wrote nothing. */
xb_err xb_pg_judge(xb_pg *s, const char *reg_id, const xb_enroll_rules *rules, xb_diag *d)
{
    xb_pg_params p = {0};
    xb_pg_text(&p, reg_id);
    PGresult *res = NULL;
    xb_err err = xb_pg_run(s, XB_PG_DEVICE_STATE, &p, &res, NULL, d, "cannot read a device");
    if (err != XB_OK)
        return err;
    int found = PQntuples(res) == 1;
    int enabled = found && xb_pg_get_int(res, 0, 0) != 0;
    int enrolled = found && xb_pg_get_int(res, 0, 1) != 0;
    PQclear(res);
    if (!found && !rules->open_mode)
        return xb_pg_unknown(reg_id, d);
    if (found && !enabled)
        return xb_fail(d, XB_ERR_DEVICE_DISABLED, "device %s is disabled", reg_id);
    if (found && enrolled && !rules->allow_reenroll)
        return xb_fail(d, XB_ERR_ALREADY_ENROLLED, "device %s already has a certificate", reg_id);
    return XB_OK;
}

xb_err xb_pg_check_enroll(xb_registry *r, const char *reg_id, const xb_enroll_rules *rules,
                          xb_diag *d)
{
    return xb_pg_judge(xb_pg_of(r), reg_id, rules, d);
}
