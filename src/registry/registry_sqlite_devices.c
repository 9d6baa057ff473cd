/* The SQLite registry: devices and enrollment groups (registry_sqlite.h). */
#include "registry_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "xb_util.h"

/* In a batch, a primary key clash with an earlier element is the caller's duplicate, not an
 * existing device; say which, since the fix differs. Only run on a clash, so the quadratic
 * scan costs nothing on the way to a successful import. */
static int xb_sq_listed_before(const xb_device_spec *devices, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcasecmp(devices[j].reg_id, devices[i].reg_id) == 0)
            return 1;
    return 0;
}

static xb_err xb_sq_insert_device(xb_sq *s, const xb_device_spec *devices, size_t i, time_t now,
                                  xb_diag *d)
{
    const xb_device_spec *dev = &devices[i];
    sqlite3_stmt *st = s->stmt[XB_SQ_DEVICE_INSERT];
    int rc = xb_sq_bind_id(st, 1, dev->reg_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
    if (rc == SQLITE_OK)
        rc = dev->secret_sha256 != NULL
                 ? sqlite3_bind_blob(st, 3, dev->secret_sha256, XB_SECRET_HASH_LEN, SQLITE_STATIC)
                 : sqlite3_bind_null(st, 3);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_opt_text(st, 4, dev->group);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        err = xb_fail(d, XB_ERR_EXISTS,
                      xb_sq_listed_before(devices, i) ? "device %s is listed twice"
                                                      : "device %s is already registered",
                      dev->reg_id);
    else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        err = xb_fail(d, XB_ERR_NOT_FOUND, "device %s: group %s does not exist", dev->reg_id,
                      dev->group);
    else if (rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot add a device");
    xb_sq_reset(st);
    return err;
}

xb_err xb_sq_device_add_many(xb_registry *r, const xb_device_spec *devices, size_t n, size_t *bad,
                             xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    time_t now = time(NULL);
    xb_err err = xb_sq_begin(s, d);
    if (err != XB_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        err = xb_sq_insert_device(s, devices, i, now, d);
        if (err != XB_OK) {
            if (bad != NULL)
                *bad = i;
            xb_sq_rollback(s);
            return err;
        }
    }
    return xb_sq_commit(s, d);
}

static void xb_sq_read_device(sqlite3_stmt *st, xb_device *out)
{
    memset(out, 0, sizeof *out);
    xb_sq_copy_text(st, 0, out->reg_id, sizeof out->reg_id);
    out->enabled = sqlite3_column_int(st, 1) != 0;
    xb_sq_copy_text(st, 2, out->source, sizeof out->source);
    out->created_at = (time_t)sqlite3_column_int64(st, 3);
    out->enrolled_at = (time_t)sqlite3_column_int64(st, 4); /* NULL reads as 0 */
    out->cert_count = sqlite3_column_int64(st, 5);
    if (sqlite3_column_bytes(st, 6) == XB_SECRET_HASH_LEN) {
        memcpy(out->secret_sha256, sqlite3_column_blob(st, 6), XB_SECRET_HASH_LEN);
        out->has_secret = 1;
    }
    xb_sq_copy_text(st, 7, out->group, sizeof out->group);
}

/* ---- groups ---- */

xb_err xb_sq_group_add(xb_registry *r, const char *name, const uint8_t *key, size_t key_len,
                       xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_GROUP_INSERT];
    int rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(st, 2, key, (int)key_len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        err = xb_fail(d, XB_ERR_EXISTS, "group %s already exists", name);
    else if (rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot add a group");
    xb_sq_reset(st);
    return err;
}

static void xb_sq_read_group(sqlite3_stmt *st, xb_group *out)
{
    memset(out, 0, sizeof *out);
    xb_sq_copy_text(st, 0, out->name, sizeof out->name);
    int n = sqlite3_column_bytes(st, 1);
    out->key_len = n > 0 && n <= XB_GROUP_KEY_MAX ? (size_t)n : 0;
    if (out->key_len > 0)
        memcpy(out->key, sqlite3_column_blob(st, 1), out->key_len);
    out->created_at = (time_t)sqlite3_column_int64(st, 2);
}

xb_err xb_sq_group_get(xb_registry *r, const char *name, xb_group *out, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_GROUP_GET];
    int rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_ROW)
        xb_sq_read_group(st, out);
    else if (rc == SQLITE_DONE)
        err = xb_fail(d, XB_ERR_NOT_FOUND, "group %s does not exist", name);
    else
        err = xb_sq_fail(s, d, "cannot read a group");
    xb_sq_reset(st);
    return err;
}

xb_err xb_sq_group_each(xb_registry *r, xb_err (*fn)(const xb_group *, void *), void *ctx,
                        xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, xb_sq_group_list_sql, -1, &st, NULL) != SQLITE_OK)
        return xb_sq_fail(s, d, "cannot list groups");
    xb_err err = XB_OK;
    int rc = SQLITE_OK;
    while (err == XB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        xb_group g;
        xb_sq_read_group(st, &g);
        err = fn(&g, ctx);
        OPENSSL_cleanse(&g, sizeof g);
    }
    if (err == XB_OK && rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot list groups");
    sqlite3_finalize(st);
    return err;
}

static xb_err xb_sq_unknown(const char *reg_id, xb_diag *d)
{
    return xb_fail(d, XB_ERR_DEVICE_UNKNOWN, "device %s is not registered", reg_id);
}

xb_err xb_sq_device_get(xb_registry *r, const char *reg_id, xb_device *out, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_DEVICE_GET];
    int rc = xb_sq_bind_id(st, 1, reg_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_ROW)
        xb_sq_read_device(st, out);
    else if (rc == SQLITE_DONE)
        err = xb_sq_unknown(reg_id, d);
    else
        err = xb_sq_fail(s, d, "cannot read a device");
    xb_sq_reset(st);
    return err;
}

xb_err xb_sq_device_set_enabled(xb_registry *r, const char *reg_id, int enabled, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_DEVICE_SET_ENABLED];
    int rc = sqlite3_bind_int(st, 1, enabled);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_id(st, 2, reg_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot update a device");
    else if (sqlite3_changes(s->db) == 0)
        err = xb_sq_unknown(reg_id, d);
    xb_sq_reset(st);
    return err;
}

xb_err xb_sq_device_each(xb_registry *r, xb_err (*fn)(const xb_device *, void *), void *ctx,
                         xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, xb_sq_device_list_sql, -1, &st, NULL) != SQLITE_OK)
        return xb_sq_fail(s, d, "cannot list devices");
    xb_err err = XB_OK;
    int rc = SQLITE_OK;
    while (err == XB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        xb_device dev;
        xb_sq_read_device(st, &dev);
        err = fn(&dev, ctx);
    }
    if (err == XB_OK && rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot list devices");
    sqlite3_finalize(st);
    return err;
}

/* The enrollment rules, judged on the device row as it is now. Used alone (check_enroll) and
 * inside record_issuance's transaction to say why the conditional UPDATE matched nothing. */
xb_err xb_sq_judge(xb_sq *s, const char *reg_id, const xb_enroll_rules *rules, xb_diag *d)
{
    sqlite3_stmt *st = s->stmt[XB_SQ_DEVICE_STATE];
    int rc = xb_sq_bind_id(st, 1, reg_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int enabled = rc == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
    int enrolled = rc == SQLITE_ROW && sqlite3_column_int(st, 1) != 0;
    xb_err err = XB_OK;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot read a device");
    else if (rc == SQLITE_DONE && !rules->open_mode)
        err = xb_sq_unknown(reg_id, d);
    else if (rc == SQLITE_ROW && !enabled)
        err = xb_fail(d, XB_ERR_DEVICE_DISABLED, "device %s is disabled", reg_id);
    else if (rc == SQLITE_ROW && enrolled && !rules->allow_reenroll)
        err = xb_fail(d, XB_ERR_ALREADY_ENROLLED, "device %s already has a certificate", reg_id);
    xb_sq_reset(st);
    return err;
}

xb_err xb_sq_check_enroll(xb_registry *r, const char *reg_id, const xb_enroll_rules *rules,
                          xb_diag *d)
{
    return xb_sq_judge(xb_sq_of(r), reg_id, rules, d);
}
