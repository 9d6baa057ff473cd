/* See crl_publish.h. */
#include "crl_publish.h"

#include <stdlib.h>

int xb_crl_is_stale(const xb_crl_state *st, time_t now, long period)
{
    if (st->number == 0 || st->covers != st->revision)
        return 1;
    long lifetime = (long)(st->next_update - st->this_update);
    if (lifetime != period)
        return 1;
    /* Half-life: the CRL is replaced while it still has half its validity left. */
    return now >= st->this_update + lifetime / 2 || now < st->this_update;
}

typedef struct xb_crl_job {
    xb_ca *ca;
    long period;
    time_t now;
    long long replace; /* also stale while this CRL number is stored; 0: none */
} xb_crl_job;

static int xb_crl_job_stale(const xb_crl_state *st, void *ctx)
{
    const xb_crl_job *job = ctx;
    if (job->replace != 0 && st->number == job->replace)
        return 1;
    return xb_crl_is_stale(st, job->now, job->period);
}

static xb_err xb_crl_job_build(const xb_revoked *revoked, size_t n, long long number, void *ctx,
                               uint8_t **der, size_t *der_len, time_t *this_update,
                               time_t *next_update, xb_diag *d)
{
    const xb_crl_job *job = ctx;
    /* The CA's view of an entry points into the registry's list: no serial is copied. */
    xb_crl_entry *entries = malloc((n != 0 ? n : 1) * sizeof *entries);
    if (entries == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory building the CRL");
    for (size_t i = 0; i < n; i++) {
        entries[i].serial_hex = revoked[i].serial;
        entries[i].revoked_at = revoked[i].revoked_at;
        entries[i].reason = revoked[i].reason;
    }
    *this_update = job->now;
    *next_update = job->now + job->period;
    xb_err err =
        xb_ca_crl_build(job->ca, entries, n, number, *this_update, *next_update, der, der_len, d);
    free(entries);
    return err;
}

xb_err xb_crl_refresh(xb_registry *r, xb_ca *ca, long period, int *made, xb_diag *d)
{
    xb_crl_job job = {ca, period, time(NULL), 0};
    return xb_registry_crl_update(r, xb_crl_job_stale, xb_crl_job_build, &job, made, d);
}

xb_err xb_crl_replace(xb_registry *r, xb_ca *ca, long period, long long number, int *made,
                      xb_diag *d)
{
    xb_crl_job job = {ca, period, time(NULL), number};
    return xb_registry_crl_update(r, xb_crl_job_stale, xb_crl_job_build, &job, made, d);
}
