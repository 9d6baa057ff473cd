/* The PostgreSQL registry: recording issuances, certificate lookups, revocation
 * (registry_pg.h). */
#include "registry_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xb_util.h"

/* ---- recording ---- */

static int xb_pg_is_refusal(xb_err err)
{
    return err == XB_ERR_DEVICE_UNKNOWN || err == XB_ERR_DEVICE_DISABLED ||
           err == XB_ERR_ALREADY_ENROLLED;
}

/* One issuance inside the batch's transaction: one statement that updates (or creates) the
 * device row under the rules and records the certificate only if it did. */
static xb_err xb_pg_issue_in_tx(xb_pg *s, const xb_cert_record *rec, const xb_enroll_rules *rules,
                                time_t when, xb_diag *d)
{
    const char *source = rec->new_source != NULL ? rec->new_source
                         : rules->open_mode      ? "open"
                                                 : NULL;
    /* A renewal is judged as if re-enrollment were allowed: only "unknown" or "disabled" can
     * refuse it. */
    xb_enroll_rules effective = *rules;
    if (rec->renewal)
        effective.allow_reenroll = 1;
    xb_pg_params p = {0};
    xb_pg_text(&p, rec->serial);
    xb_pg_text(&p, rec->reg_id);
    xb_pg_opt_text(&p, rec->subject);
    xb_pg_int(&p, (long long)rec->not_before);
    xb_pg_int(&p, (long long)rec->not_after);
    xb_pg_opt_text(&p, rec->pubkey_sha256);
    xb_pg_opt_text(&p, rec->client_addr);
    xb_pg_int(&p, (long long)when);
    xb_pg_bytea(&p, rec->der, rec->der_len);
    xb_pg_text(&p, effective.allow_reenroll ? "true" : "false");
    if (source != NULL) {
        xb_pg_text(&p, source);
        xb_pg_opt_text(&p, rec->new_group);
    }
    char what[96];
    snprintf(what, sizeof what, "cannot record certificate %s", rec->serial);
    PGresult *res = NULL;
    xb_err err =
        xb_pg_run(s, source != NULL ? XB_PG_ISSUE_NEW : XB_PG_ISSUE_KNOWN, &p, &res, NULL, d, what);
    long long written = err == XB_OK ? xb_pg_changes(res) : 0;
    PQclear(res);
    if (err != XB_OK || written == 1)
        return err;
    /* The rules refused (or a new device's group has gone): say which, as SQLite does. With a
     * source, a missing row was to be created, so it is no refusal by itself (judged as open
     * mode judges it): only the group having gone explains it. */
    xb_enroll_rules judged = effective;
    if (source != NULL)
        judged.open_mode = 1;
    err = xb_pg_judge(s, rec->reg_id, &judged, d);
    if (err == XB_OK && source != NULL && rec->new_group != NULL)
        err = xb_fail(d, XB_ERR_DEVICE_UNKNOWN, "device %s: group %s no longer exists", rec->reg_id,
                      rec->new_group);
    else if (err == XB_OK)
        err = xb_fail(d, XB_ERR_INTERNAL, "registry: enrollment of %s refused for no known reason",
                      rec->reg_id);
    return err;
}

typedef struct xb_pg_batch {
    xb_issuance *const *items;
    size_t n;
    const xb_enroll_rules *rules;
    unsigned char *pending; /* items to record (result XB_OK on entry) */
} xb_pg_batch;

static xb_err xb_pg_batch_body(xb_pg *s, void *ctx, xb_diag *d)
{
    xb_pg_batch *b = ctx;
    for (size_t i = 0; i < b->n; i++) {
        xb_issuance *it = b->items[i];
        if (!b->pending[i])
            continue;
        time_t when = it->rec.issued_at != 0 ? it->rec.issued_at : time(NULL);
        it->result = xb_pg_issue_in_tx(s, &it->rec, b->rules, when, &it->diag);
        if (it->result != XB_OK && !xb_pg_is_refusal(it->result)) {
            if (d != NULL)
                *d = it->diag;
            return it->result;
        }
    }
    return XB_OK;
}

/* Before a retry (deadlock, serialization failure): every judgment made by the aborted
 * transaction is void. */
static void xb_pg_batch_reset(void *ctx)
{
    xb_pg_batch *b = ctx;
    for (size_t i = 0; i < b->n; i++)
        if (b->pending[i]) {
            b->items[i]->result = XB_OK;
            b->items[i]->diag.msg[0] = '\0';
        }
}

/* Group commit, with the SQLite backend's semantics (registry.h). Nodes committing batches
 * that touch the same devices in different orders may deadlock; PostgreSQL aborts one, which
 * xb_pg_tx runs again. */
xb_err xb_pg_record_batch(xb_registry *r, xb_issuance *const *items, size_t n,
                          const xb_enroll_rules *rules, xb_diag *d)
{
    unsigned char *pending = calloc(n, 1);
    if (pending == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory recording certificates");
    for (size_t i = 0; i < n; i++)
        pending[i] = items[i]->result == XB_OK;
    xb_pg_batch b = {.items = items, .n = n, .rules = rules, .pending = pending};
    xb_err err = xb_pg_tx(xb_pg_of(r), xb_pg_batch_body, xb_pg_batch_reset, &b, 0, d);
    if (err != XB_OK) {
        /* Nothing was written: every item to record shares the failure. */
        for (size_t i = 0; i < n; i++) {
            if (pending[i]) {
                items[i]->result = err;
                if (d != NULL)
                    items[i]->diag = *d;
            }
        }
    }
    free(pending);
    return err;
}

/* ---- lookups ---- */

/* Fills out from row i; out->der is a malloc'd copy (PQfreemem) of the DER, *der too. */
static xb_err xb_pg_read_cert(PGresult *res, int i, xb_cert_record *out, xb_diag *d)
{
    memset(out, 0, sizeof *out);
    xb_pg_get_text(res, i, 0, out->serial, sizeof out->serial);
    xb_pg_get_text(res, i, 1, out->reg_id, sizeof out->reg_id);
    out->subject = PQgetisnull(res, i, 2) ? "" : PQgetvalue(res, i, 2);
    out->not_before = (time_t)xb_pg_get_int(res, i, 3);
    out->not_after = (time_t)xb_pg_get_int(res, i, 4);
    xb_pg_get_text(res, i, 5, out->pubkey_sha256, sizeof out->pubkey_sha256);
    xb_pg_get_text(res, i, 6, out->client_addr, sizeof out->client_addr);
    out->issued_at = (time_t)xb_pg_get_int(res, i, 7);
    size_t len = 0;
    uint8_t *der = xb_pg_get_bytea(res, i, 8, &len);
    out->der = der;
    out->der_len = len;
    out->revoked_at = (time_t)xb_pg_get_int(res, i, 9);
    out->revocation_reason = (int)xb_pg_get_int(res, i, 10);
    if (der == NULL || len == 0) {
        PQfreemem(der);
        out->der = NULL;
        return xb_fail(d, XB_ERR_REGISTRY, "registry: certificate %s has no DER", out->serial);
    }
    return XB_OK;
}

typedef struct xb_pg_cert_walk {
    xb_err (*fn)(const xb_cert_record *, void *);
    void *ctx;
    xb_diag *d;
} xb_pg_cert_walk;

static xb_err xb_pg_cert_row(PGresult *res, int i, void *ctx)
{
    xb_pg_cert_walk *w = ctx;
    xb_cert_record rec;
    xb_err err = xb_pg_read_cert(res, i, &rec, w->d);
    if (err == XB_OK)
        err = w->fn(&rec, w->ctx);
    PQfreemem((void *)rec.der);
    return err;
}

xb_err xb_pg_cert_each(xb_registry *r, const char *reg_id,
                       xb_err (*fn)(const xb_cert_record *, void *), void *ctx, xb_diag *d)
{
    xb_pg_params p = {0};
    if (reg_id != NULL)
        xb_pg_text(&p, reg_id);
    xb_pg_cert_walk w = {fn, ctx, d};
    return xb_pg_each_row(xb_pg_of(r),
                          reg_id != NULL ? xb_pg_cert_list_id_sql : xb_pg_cert_list_sql, &p,
                          xb_pg_cert_row, &w, d, "cannot list certificates");
}

/* One certificate into out, its DER copied to *der (malloc'd: the caller free()s it). */
static xb_err xb_pg_one_cert(xb_pg *s, int which, const char *key, xb_cert_record *out,
                             uint8_t **der, size_t *der_len, const char *none, xb_diag *d)
{
    xb_pg_params p = {0};
    xb_pg_text(&p, key);
    PGresult *res = NULL;
    xb_err err = xb_pg_run(s, which, &p, &res, NULL, d, "cannot read a certificate");
    if (err == XB_OK && PQntuples(res) == 0)
        err = xb_fail(d, XB_ERR_NOT_FOUND, "%s", none);
    else if (err == XB_OK)
        err = xb_pg_read_cert(res, 0, out, d);
    if (err == XB_OK) {
        out->subject = NULL; /* not kept: the caller reads it from the DER if it needs it */
        uint8_t *copy = malloc(out->der_len);
        if (copy == NULL) {
            err = xb_fail(d, XB_ERR_NOMEM, "out of memory reading certificate %s", out->serial);
        } else {
            memcpy(copy, out->der, out->der_len);
            *der = copy;
            *der_len = out->der_len;
        }
        PQfreemem((void *)out->der);
        out->der = copy;
    }
    if (err != XB_OK)
        memset(out, 0, sizeof *out);
    PQclear(res);
    return err;
}

xb_err xb_pg_current_cert(xb_registry *r, const char *reg_id, xb_cert_record *out, uint8_t **der,
                          size_t *der_len, xb_diag *d)
{
    char none[XB_REGID_MAX + 40];
    snprintf(none, sizeof none, "device %s has no certificate", reg_id);
    return xb_pg_one_cert(xb_pg_of(r), XB_PG_CERT_CURRENT, reg_id, out, der, der_len, none, d);
}

xb_err xb_pg_cert_get(xb_registry *r, const char *serial, xb_cert_record *out, uint8_t **der,
                      size_t *der_len, xb_diag *d)
{
    char none[96];
    snprintf(none, sizeof none, "no certificate has serial %.60s", serial);
    return xb_pg_one_cert(xb_pg_of(r), XB_PG_CERT_GET, serial, out, der, der_len, none, d);
}

/* ---- revocation ---- */

typedef struct xb_pg_revoke {
    const char *key; /* a serial, or a registration ID */
    int reason;
    time_t when;
    size_t revoked;
} xb_pg_revoke;

static xb_err xb_pg_bump_crl(xb_pg *s, xb_diag *d)
{
    /* In the same transaction: no revocation is ever committed without making the CRL stale. */
    return xb_pg_run_only(s, XB_PG_CRL_BUMP, NULL, d, "cannot mark the CRL stale");
}

/* Why a conditional revocation changed nothing: no such certificate, or revoked already. */
static xb_err xb_pg_why_not_revoked(xb_pg *s, const char *serial, xb_diag *d)
{
    xb_pg_params p = {0};
    xb_pg_text(&p, serial);
    PGresult *res = NULL;
    xb_err err = xb_pg_run(s, XB_PG_CERT_REVOKED, &p, &res, NULL, d, "cannot read a certificate");
    if (err == XB_OK && PQntuples(res) == 0) {
        err = xb_fail(d, XB_ERR_NOT_FOUND, "no certificate has serial %s", serial);
    } else if (err == XB_OK) {
        char when[32];
        xb_time_rfc3339((time_t)xb_pg_get_int(res, 0, 0), when, sizeof when);
        const char *name = xb_revocation_reason_name((int)xb_pg_get_int(res, 0, 1));
        err = xb_fail(d, XB_ERR_EXISTS, "certificate %s was already revoked at %s (%s); unchanged",
                      serial, when, name != NULL ? name : "unknown reason");
    }
    PQclear(res);
    return err;
}

static xb_err xb_pg_revoke_body(xb_pg *s, void *ctx, xb_diag *d)
{
    xb_pg_revoke *v = ctx;
    xb_pg_params p = {0};
    xb_pg_text(&p, v->key);
    xb_pg_int(&p, (long long)v->when);
    xb_pg_int(&p, v->reason);
    PGresult *res = NULL;
    xb_err err = xb_pg_run(s, XB_PG_CERT_REVOKE, &p, &res, NULL, d, "cannot revoke a certificate");
    long long changed = err == XB_OK ? xb_pg_changes(res) : 0;
    PQclear(res);
    if (err == XB_OK && changed == 0)
        err = xb_pg_why_not_revoked(s, v->key, d);
    return err != XB_OK ? err : xb_pg_bump_crl(s, d);
}

xb_err xb_pg_cert_revoke(xb_registry *r, const char *serial, int reason, time_t when, xb_diag *d)
{
    xb_pg_revoke v = {.key = serial, .reason = reason, .when = when};
    return xb_pg_tx(xb_pg_of(r), xb_pg_revoke_body, NULL, &v, 0, d);
}

static xb_err xb_pg_disable_revoke_body(xb_pg *s, void *ctx, xb_diag *d)
{
    xb_pg_revoke *v = ctx;
    v->revoked = 0;
    xb_err err = xb_pg_device_set_enabled(&s->base, v->key, 0, d);
    if (err != XB_OK)
        return err;
    xb_pg_params p = {0};
    xb_pg_text(&p, v->key);
    xb_pg_int(&p, (long long)v->when);
    xb_pg_int(&p, v->reason);
    PGresult *res = NULL;
    err = xb_pg_run(s, XB_PG_CERT_REVOKE_DEVICE, &p, &res, NULL, d,
                    "cannot revoke the device's certificates");
    if (err == XB_OK)
        v->revoked = (size_t)xb_pg_changes(res);
    PQclear(res);
    if (err == XB_OK && v->revoked > 0)
        err = xb_pg_bump_crl(s, d);
    return err;
}

xb_err xb_pg_device_disable_revoke(xb_registry *r, const char *reg_id, int reason, time_t when,
                                   size_t *revoked, xb_diag *d)
{
    xb_pg_revoke v = {.key = reg_id, .reason = reason, .when = when};
    xb_err err = xb_pg_tx(xb_pg_of(r), xb_pg_disable_revoke_body, NULL, &v, 0, d);
    *revoked = err == XB_OK ? v.revoked : 0;
    return err;
}
