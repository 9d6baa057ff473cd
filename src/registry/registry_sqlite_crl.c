/* The SQLite registry: the stored CRL and its revision counter (registry_sqlite.h). */
#include "registry_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "xb_util.h"

static void xb_sq_read_crl_state(sqlite3_stmt *st, xb_crl_state *out)
{
    out->number = sqlite3_column_int64(st, 0);
    out->revision = sqlite3_column_int64(st, 1);
    out->covers = sqlite3_column_int64(st, 2);
    out->this_update = (time_t)sqlite3_column_int64(st, 3);
    out->next_update = (time_t)sqlite3_column_int64(st, 4);
}

xb_err xb_sq_crl_state(xb_registry *r, xb_crl_state *out, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_CRL_STATE];
    int rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_ROW)
        xb_sq_read_crl_state(st, out);
    else
        err = xb_sq_fail(s, d, "cannot read the CRL state");
    xb_sq_reset(st);
    return err;
}

xb_err xb_sq_crl_get(xb_registry *r, xb_crl_state *out, uint8_t **der, size_t *der_len, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_CRL_GET];
    int rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc != SQLITE_ROW) {
        err = xb_sq_fail(s, d, "cannot read the CRL");
    } else {
        xb_sq_read_crl_state(st, out);
        const void *blob = sqlite3_column_blob(st, 5);
        size_t len = (size_t)sqlite3_column_bytes(st, 5);
        if (blob == NULL || len == 0)
            err = xb_fail(d, XB_ERR_NOT_FOUND, "no CRL has been made yet");
        else if ((*der = malloc(len)) == NULL)
            err = xb_fail(d, XB_ERR_NOMEM, "out of memory reading the CRL");
        else {
            memcpy(*der, blob, len);
            *der_len = len;
        }
    }
    xb_sq_reset(st);
    return err;
}

/* Every revoked certificate, into a malloc'd array. */
static xb_err xb_sq_revoked_list(xb_sq *s, xb_revoked **out, size_t *n, xb_diag *d)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, xb_sq_revoked_list_sql, -1, &st, NULL) != SQLITE_OK)
        return xb_sq_fail(s, d, "cannot list revoked certificates");
    xb_revoked *list = NULL;
    size_t count = 0, cap = 0;
    xb_err err = XB_OK;
    int rc;
    while (err == XB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            size_t ncap = cap != 0 ? cap * 2 : 256;
            xb_revoked *grown = realloc(list, ncap * sizeof *grown);
            if (grown == NULL) {
                err = xb_fail(d, XB_ERR_NOMEM, "out of memory listing revoked certificates");
                break;
            }
            list = grown;
            cap = ncap;
        }
        xb_revoked *e = &list[count++];
        xb_sq_copy_text(st, 0, e->serial, sizeof e->serial);
        e->revoked_at = (time_t)sqlite3_column_int64(st, 1);
        e->reason = sqlite3_column_int(st, 2);
    }
    if (err == XB_OK && rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot list revoked certificates");
    sqlite3_finalize(st);
    if (err != XB_OK) {
        free(list);
        return err;
    }
    *out = list;
    *n = count;
    return XB_OK;
}

static xb_err xb_sq_crl_store(xb_sq *s, const xb_crl_state *st_new, const uint8_t *der,
                              size_t der_len, xb_diag *d)
{
    sqlite3_stmt *st = s->stmt[XB_SQ_CRL_STORE];
    int rc = sqlite3_bind_int64(st, 1, st_new->number);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, st_new->covers);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, 3, der, (sqlite3_uint64)der_len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)st_new->this_update);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)st_new->next_update);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = rc == SQLITE_DONE ? XB_OK : xb_sq_fail(s, d, "cannot store the CRL");
    xb_sq_reset(st);
    return err;
}

static xb_err xb_sq_crl_update_in_tx(xb_sq *s, xb_crl_stale_fn stale, xb_crl_build_fn build,
                                     void *ctx, int *made, xb_diag *d)
{
    xb_crl_state st;
    xb_err err = xb_sq_crl_state(&s->base, &st, d);
    if (err != XB_OK || !stale(&st, ctx))
        return err;
    xb_revoked *list = NULL;
    size_t n = 0;
    err = xb_sq_revoked_list(s, &list, &n, d);
    uint8_t *der = NULL;
    size_t der_len = 0;
    xb_crl_state next = {.number = st.number + 1, .revision = st.revision, .covers = st.revision};
    if (err == XB_OK)
        err = build(list, n, next.number, ctx, &der, &der_len, &next.this_update, &next.next_update,
                    d);
    if (err == XB_OK)
        err = xb_sq_crl_store(s, &next, der, der_len, d);
    if (err == XB_OK)
        *made = 1;
    free(der);
    free(list);
    return err;
}

xb_err xb_sq_crl_update(xb_registry *r, xb_crl_stale_fn stale, xb_crl_build_fn build, void *ctx,
                        int *made, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    xb_err err = xb_sq_begin(s, d);
    if (err != XB_OK)
        return err;
    err = xb_sq_crl_update_in_tx(s, stale, build, ctx, made, d);
    if (err == XB_OK && *made)
        err = xb_sq_commit(s, d);
    else
        xb_sq_rollback(s); /* nothing written, or a failure */
    if (err != XB_OK)
        *made = 0;
    return err;
}
