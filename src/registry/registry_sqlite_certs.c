/* The SQLite registry: recording issuances, certificate lookups, revocation
 * (registry_sqlite.h). */
#include "registry_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "xb_util.h"

static xb_err xb_sq_insert_new_device(xb_sq *s, const char *reg_id, const char *source,
                                      const char *group, time_t now, xb_diag *d)
{
    sqlite3_stmt *st = s->stmt[XB_SQ_DEVICE_INSERT_NEW];
    int rc = xb_sq_bind_id(st, 1, reg_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 3, source, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_opt_text(st, 4, group);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) /* the group was deleted since the key was checked */
        err = xb_fail(d, XB_ERR_DEVICE_UNKNOWN, "device %s: group %s no longer exists", reg_id,
                      group);
    else if (rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot add a device on its first enrollment");
    xb_sq_reset(st);
    return err;
}

/* 1 if the device row was marked enrolled, 0 if the rules refused, -1 on a database error. */
static int xb_sq_mark_enrolled(xb_sq *s, const char *reg_id, time_t when, int allow_reenroll,
                               xb_diag *d)
{
    sqlite3_stmt *st = s->stmt[XB_SQ_DEVICE_ENROLL];
    int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)when);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_id(st, 2, reg_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 3, allow_reenroll != 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int result = 1;
    if (rc != SQLITE_DONE) {
        xb_sq_fail(s, d, "cannot mark the device enrolled");
        result = -1;
    } else if (sqlite3_changes(s->db) == 0) {
        result = 0;
    }
    xb_sq_reset(st);
    return result;
}

static xb_err xb_sq_insert_cert(xb_sq *s, const xb_cert_record *rec, time_t issued_at, xb_diag *d)
{
    sqlite3_stmt *st = s->stmt[XB_SQ_CERT_INSERT];
    int rc = sqlite3_bind_text(st, 1, rec->serial, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_id(st, 2, rec->reg_id);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_opt_text(st, 3, rec->subject);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)rec->not_before);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)rec->not_after);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_opt_text(st, 6, rec->pubkey_sha256);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_opt_text(st, 7, rec->client_addr);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 8, (sqlite3_int64)issued_at);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, 9, rec->der, (sqlite3_uint64)rec->der_len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc != SQLITE_DONE) {
        char what[96];
        snprintf(what, sizeof what, "cannot record certificate %s", rec->serial);
        err = xb_sq_fail(s, d, what);
    }
    xb_sq_reset(st);
    return err;
}

/* The steps of record_issuance inside the open transaction; the caller commits or rolls back. */
static xb_err xb_sq_issue_in_tx(xb_sq *s, const xb_cert_record *rec, const xb_enroll_rules *rules,
                                time_t when, xb_diag *d)
{
    const char *source = rec->new_source != NULL ? rec->new_source
                         : rules->open_mode      ? "open"
                                                 : NULL;
    if (source != NULL) {
        xb_err err = xb_sq_insert_new_device(s, rec->reg_id, source, rec->new_group, when, d);
        if (err != XB_OK)
            return err;
    }
    /* A renewal is judged as if re-enrollment were allowed: only "unknown" or "disabled" can
     * refuse it. */
    xb_enroll_rules effective = *rules;
    if (rec->renewal)
        effective.allow_reenroll = 1;
    int marked = xb_sq_mark_enrolled(s, rec->reg_id, when, effective.allow_reenroll, d);
    if (marked < 0)
        return XB_ERR_REGISTRY;
    if (marked == 0) {
        xb_err err = xb_sq_judge(s, rec->reg_id, &effective, d);
        /* The UPDATE refused, so the judgment must too; if it does not, the two disagree on
         * the rules and that is a bug, not a reason to write. */
        if (err == XB_OK)
            err = xb_fail(d, XB_ERR_INTERNAL,
                          "registry: enrollment of %s refused for no known reason", rec->reg_id);
        return err;
    }
    return xb_sq_insert_cert(s, rec, when, d);
}

/* A refusal by the rules concerns one item; anything else is the storage failing. */
static int xb_sq_is_refusal(xb_err err)
{
    return err == XB_ERR_DEVICE_UNKNOWN || err == XB_ERR_DEVICE_DISABLED ||
           err == XB_ERR_ALREADY_ENROLLED;
}

/* Group commit. A refusal never leaves a write behind (the open-mode device insert does nothing
 * when the device exists, and a device that is disabled or enrolled exists), so refused items
 * need no savepoint; any other failure aborts the whole transaction. */
xb_err xb_sq_record_batch(xb_registry *r, xb_issuance *const *items, size_t n,
                          const xb_enroll_rules *rules, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    xb_err err = xb_sq_begin(s, d);
    for (size_t i = 0; err == XB_OK && i < n; i++) {
        xb_issuance *it = items[i];
        if (it->result != XB_OK)
            continue;
        time_t when = it->rec.issued_at != 0 ? it->rec.issued_at : time(NULL);
        it->result = xb_sq_issue_in_tx(s, &it->rec, rules, when, &it->diag);
        if (it->result != XB_OK && !xb_sq_is_refusal(it->result)) {
            err = it->result;
            if (d != NULL)
                *d = it->diag;
        }
    }
    if (err == XB_OK)
        err = xb_sq_commit(s, d);
    else
        xb_sq_rollback(s);
    if (err != XB_OK) {
        /* Nothing was written: every item shares the failure, refused ones included (their
         * judgment came from a transaction that no longer exists). */
        for (size_t i = 0; i < n; i++) {
            if (items[i]->result == XB_OK || xb_sq_is_refusal(items[i]->result)) {
                items[i]->result = err;
                if (d != NULL)
                    items[i]->diag = *d;
            }
        }
    }
    return err;
}

static void xb_sq_read_cert(sqlite3_stmt *st, xb_cert_record *out)
{
    memset(out, 0, sizeof *out);
    xb_sq_copy_text(st, 0, out->serial, sizeof out->serial);
    xb_sq_copy_text(st, 1, out->reg_id, sizeof out->reg_id);
    const unsigned char *subject = sqlite3_column_text(st, 2);
    out->subject = subject != NULL ? (const char *)subject : "";
    out->not_before = (time_t)sqlite3_column_int64(st, 3);
    out->not_after = (time_t)sqlite3_column_int64(st, 4);
    xb_sq_copy_text(st, 5, out->pubkey_sha256, sizeof out->pubkey_sha256);
    xb_sq_copy_text(st, 6, out->client_addr, sizeof out->client_addr);
    out->issued_at = (time_t)sqlite3_column_int64(st, 7);
    out->der = sqlite3_column_blob(st, 8);
    out->der_len = (size_t)sqlite3_column_bytes(st, 8);
    out->revoked_at = (time_t)sqlite3_column_int64(st, 9); /* NULL reads as 0: not revoked */
    out->revocation_reason = sqlite3_column_int(st, 10);
}

xb_err xb_sq_cert_each(xb_registry *r, const char *reg_id,
                       xb_err (*fn)(const xb_cert_record *, void *), void *ctx, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = NULL;
    const char *sql = reg_id != NULL ? xb_sq_cert_list_id_sql : xb_sq_cert_list_sql;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return xb_sq_fail(s, d, "cannot list certificates");
    if (reg_id != NULL && xb_sq_bind_id(st, 1, reg_id) != SQLITE_OK) {
        xb_err err = xb_sq_fail(s, d, "cannot list certificates");
        sqlite3_finalize(st);
        return err;
    }
    xb_err err = XB_OK;
    int rc = SQLITE_OK;
    while (err == XB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        xb_cert_record rec;
        xb_sq_read_cert(st, &rec);
        err = fn(&rec, ctx);
    }
    if (err == XB_OK && rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot list certificates");
    sqlite3_finalize(st);
    return err;
}

/* The row's record, with a private copy of its DER: the row's buffers go with the reset. */
static xb_err xb_sq_take_cert(sqlite3_stmt *st, xb_cert_record *out, uint8_t **der, size_t *der_len,
                              xb_diag *d)
{
    xb_sq_read_cert(st, out);
    out->subject = NULL; /* not kept: the caller reads it from the DER if it needs it */
    if (out->der == NULL || out->der_len == 0)
        return xb_fail(d, XB_ERR_REGISTRY, "registry: certificate %s has no DER", out->serial);
    uint8_t *copy = malloc(out->der_len);
    if (copy == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory reading certificate %s", out->serial);
    memcpy(copy, out->der, out->der_len);
    *der = copy;
    *der_len = out->der_len;
    out->der = copy;
    return XB_OK;
}

/* Step a bound single-certificate query: the row into out (DER copied), XB_ERR_NOT_FOUND with
 * `none` as the message when there is no row. The statement is reset either way. */
static xb_err xb_sq_one_cert(xb_sq *s, sqlite3_stmt *st, int rc, xb_cert_record *out, uint8_t **der,
                             size_t *der_len, const char *none, xb_diag *d)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_ROW)
        err = xb_sq_take_cert(st, out, der, der_len, d);
    else if (rc == SQLITE_DONE)
        err = xb_fail(d, XB_ERR_NOT_FOUND, "%s", none);
    else
        err = xb_sq_fail(s, d, "cannot read a certificate");
    if (err != XB_OK)
        memset(out, 0, sizeof *out); /* no pointer into the row survives the reset */
    xb_sq_reset(st);
    return err;
}

xb_err xb_sq_current_cert(xb_registry *r, const char *reg_id, xb_cert_record *out, uint8_t **der,
                          size_t *der_len, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_CERT_CURRENT];
    char none[XB_REGID_MAX + 40];
    snprintf(none, sizeof none, "device %s has no certificate", reg_id);
    return xb_sq_one_cert(s, st, xb_sq_bind_id(st, 1, reg_id), out, der, der_len, none, d);
}

xb_err xb_sq_cert_get(xb_registry *r, const char *serial, xb_cert_record *out, uint8_t **der,
                      size_t *der_len, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_CERT_GET];
    char none[96];
    snprintf(none, sizeof none, "no certificate has serial %.60s", serial);
    return xb_sq_one_cert(s, st, sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC), out, der,
                          der_len, none, d);
}

static xb_err xb_sq_already_revoked(const char *serial, time_t at, int reason, xb_diag *d)
{
    char when[32];
    xb_time_rfc3339(at, when, sizeof when);
    const char *name = xb_revocation_reason_name(reason);
    return xb_fail(d, XB_ERR_EXISTS, "certificate %s was already revoked at %s (%s); unchanged",
                   serial, when, name != NULL ? name : "unknown reason");
}

static xb_err xb_sq_mark_revoked(xb_sq *s, const char *serial, int reason, time_t when, xb_diag *d)
{
    sqlite3_stmt *st = s->stmt[XB_SQ_CERT_REVOKE];
    int rc = sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)when);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 3, reason);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = rc == SQLITE_DONE ? XB_OK : xb_sq_fail(s, d, "cannot revoke a certificate");
    xb_sq_reset(st);
    return err;
}

/* Inside the write transaction, so the state read and the UPDATE see the same row: two admins
 * revoking at once record one revocation, and the other is told it exists. */
static xb_err xb_sq_revoke_in_tx(xb_sq *s, const char *serial, int reason, time_t when, xb_diag *d)
{
    sqlite3_stmt *st = s->stmt[XB_SQ_CERT_REVOKED];
    int rc = sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_DONE)
        err = xb_fail(d, XB_ERR_NOT_FOUND, "no certificate has serial %s", serial);
    else if (rc != SQLITE_ROW)
        err = xb_sq_fail(s, d, "cannot read a certificate");
    else if (sqlite3_column_type(st, 0) != SQLITE_NULL)
        err = xb_sq_already_revoked(serial, (time_t)sqlite3_column_int64(st, 0),
                                    sqlite3_column_int(st, 1), d);
    xb_sq_reset(st);
    if (err == XB_OK)
        err = xb_sq_mark_revoked(s, serial, reason, when, d);
    /* In the same transaction: no revocation is ever committed without making the CRL stale. */
    return err != XB_OK ? err : xb_sq_run(s, XB_SQ_CRL_BUMP, d, "cannot mark the CRL stale");
}

xb_err xb_sq_cert_revoke(xb_registry *r, const char *serial, int reason, time_t when, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    xb_err err = xb_sq_begin(s, d);
    if (err != XB_OK)
        return err;
    err = xb_sq_revoke_in_tx(s, serial, reason, when, d);
    if (err != XB_OK) {
        xb_sq_rollback(s);
        return err;
    }
    return xb_sq_commit(s, d);
}

static xb_err xb_sq_disable_revoke_in_tx(xb_sq *s, const char *reg_id, int reason, time_t when,
                                         size_t *revoked, xb_diag *d)
{
    xb_err err = xb_sq_device_set_enabled(&s->base, reg_id, 0, d);
    if (err != XB_OK)
        return err;
    sqlite3_stmt *st = s->stmt[XB_SQ_CERT_REVOKE_DEVICE];
    int rc = xb_sq_bind_id(st, 1, reg_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)when);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 3, reason);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot revoke the device's certificates");
    else
        *revoked = (size_t)sqlite3_changes(s->db);
    xb_sq_reset(st);
    if (err == XB_OK && *revoked > 0)
        err = xb_sq_run(s, XB_SQ_CRL_BUMP, d, "cannot mark the CRL stale");
    return err;
}

xb_err xb_sq_device_disable_revoke(xb_registry *r, const char *reg_id, int reason, time_t when,
                                   size_t *revoked, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    xb_err err = xb_sq_begin(s, d);
    if (err != XB_OK)
        return err;
    err = xb_sq_disable_revoke_in_tx(s, reg_id, reason, when, revoked, d);
    if (err != XB_OK) {
        xb_sq_rollback(s);
        *revoked = 0;
        return err;
    }
    return xb_sq_commit(s, d);
}
