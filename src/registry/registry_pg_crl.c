/* The PostgreSQL registry: the stored CRL and its revision counter (registry_pg.h). */
#include "registry_pg.h"

#include <stdlib.h>
#include <string.h>

static void xb_pg_read_crl_state(PGresult *res, xb_crl_state *out)
{
    out->number = xb_pg_get_int(res, 0, 0);
    out->revision = xb_pg_get_int(res, 0, 1);
    out->covers = xb_pg_get_int(res, 0, 2);
    out->this_update = (time_t)xb_pg_get_int(res, 0, 3);
    out->next_update = (time_t)xb_pg_get_int(res, 0, 4);
}

static xb_err xb_pg_crl_row(xb_pg *s, int which, xb_crl_state *out, PGresult **res, xb_diag *d)
{
    xb_err err = xb_pg_run(s, which, NULL, res, NULL, d, "cannot read the CRL state");
    if (err == XB_OK && PQntuples(*res) != 1)
        err = xb_fail(d, XB_ERR_REGISTRY, "registry %s: the CRL row is missing", s->shown);
    if (err == XB_OK)
        xb_pg_read_crl_state(*res, out);
    return err;
}

xb_err xb_pg_crl_state(xb_registry *r, xb_crl_state *out, xb_diag *d)
{
    PGresult *res = NULL;
    xb_err err = xb_pg_crl_row(xb_pg_of(r), XB_PG_CRL_STATE, out, &res, d);
    PQclear(res);
    return err;
}

xb_err xb_pg_crl_get(xb_registry *r, xb_crl_state *out, uint8_t **der, size_t *der_len, xb_diag *d)
{
    PGresult *res = NULL;
    xb_err err = xb_pg_crl_row(xb_pg_of(r), XB_PG_CRL_GET, out, &res, d);
    if (err == XB_OK) {
        size_t len = 0;
        uint8_t *blob = xb_pg_get_bytea(res, 0, 5, &len);
        if (blob == NULL || len == 0)
            err = xb_fail(d, XB_ERR_NOT_FOUND, "no CRL has been made yet");
        else if ((*der = malloc(len)) == NULL)
            err = xb_fail(d, XB_ERR_NOMEM, "out of memory reading the CRL");
        else {
            memcpy(*der, blob, len);
            *der_len = len;
        }
        PQfreemem(blob);
    }
    PQclear(res);
    return err;
}

/* Every revoked certificate, into a malloc'd array. */
static xb_err xb_pg_revoked_list(xb_pg *s, xb_revoked **out, size_t *n, xb_diag *d)
{
    PGresult *res = NULL;
    xb_err err =
        xb_pg_run(s, XB_PG_REVOKED_LIST, NULL, &res, NULL, d, "cannot list revoked certificates");
    if (err != XB_OK)
        return err;
    int rows = PQntuples(res);
    xb_revoked *list = calloc(rows > 0 ? (size_t)rows : 1, sizeof *list);
    if (list == NULL) {
        PQclear(res);
        return xb_fail(d, XB_ERR_NOMEM, "out of memory listing revoked certificates");
    }
    for (int i = 0; i < rows; i++) {
        xb_pg_get_text(res, i, 0, list[i].serial, sizeof list[i].serial);
        list[i].revoked_at = (time_t)xb_pg_get_int(res, i, 1);
        list[i].reason = (int)xb_pg_get_int(res, i, 2);
    }
    PQclear(res);
    *out = list;
    *n = (size_t)rows;
    return XB_OK;
}

typedef struct xb_pg_crl_job {
    xb_crl_stale_fn stale;
    xb_crl_build_fn build;
    void *ctx;
    int made;
} xb_pg_crl_job;

static xb_err xb_pg_crl_store(xb_pg *s, const xb_crl_state *next, const uint8_t *der,
                              size_t der_len, int *stored, xb_diag *d)
{
    xb_pg_params p = {0};
    xb_pg_int(&p, next->number);
    xb_pg_int(&p, next->covers);
    xb_pg_bytea(&p, der, der_len);
    xb_pg_int(&p, (long long)next->this_update);
    xb_pg_int(&p, (long long)next->next_update);
    PGresult *res = NULL;
    xb_err err = xb_pg_run(s, XB_PG_CRL_STORE, &p, &res, NULL, d, "cannot store the CRL");
    *stored = err == XB_OK && xb_pg_changes(res) == 1;
    PQclear(res);
    return err;
}

/* Under the CRL row's lock (FOR UPDATE, held to COMMIT): nodes that see the same revocation at
 * once queue here, and the second finds the CRL current and signs nothing. */
static xb_err xb_pg_crl_body(xb_pg *s, void *ctx, xb_diag *d)
{
    xb_pg_crl_job *job = ctx;
    job->made = 0;
    xb_crl_state st;
    PGresult *res = NULL;
    xb_err err = xb_pg_crl_row(s, XB_PG_CRL_LOCK, &st, &res, d);
    PQclear(res);
    if (err != XB_OK)
        return err;
    if (!job->stale(&st, job->ctx)) {
        s->tx_rollback = 1;
        return XB_OK;
    }
    xb_revoked *list = NULL;
    size_t n = 0;
    err = xb_pg_revoked_list(s, &list, &n, d);
    uint8_t *der = NULL;
    size_t der_len = 0;
    xb_crl_state next = {.number = st.number + 1, .revision = st.revision, .covers = st.revision};
    if (err == XB_OK)
        err = job->build(list, n, next.number, job->ctx, &der, &der_len, &next.this_update,
                         &next.next_update, d);
    int stored = 0;
    if (err == XB_OK)
        err = xb_pg_crl_store(s, &next, der, der_len, &stored, d);
    free(der);
    free(list);
    if (err == XB_OK && !stored) /* cannot happen under the lock; never store a lower number */
        err =
            xb_fail(d, XB_ERR_INTERNAL, "registry %s: CRL number %lld is not above the stored one",
                    s->shown, next.number);
    if (err == XB_OK)
        job->made = 1;
    return err;
}

xb_err xb_pg_crl_update(xb_registry *r, xb_crl_stale_fn stale, xb_crl_build_fn build, void *ctx,
                        int *made, xb_diag *d)
{
    xb_pg_crl_job job = {.stale = stale, .build = build, .ctx = ctx};
    xb_err err = xb_pg_tx(xb_pg_of(r), xb_pg_crl_body, NULL, &job, 0, d);
    *made = err == XB_OK ? job.made : 0;
    return err;
}
