/* Publishing the CRL: the glue between the signing CA (src/ca) and the registry that stores the
 * CRL (src/registry), shared by xbootd (GET /crl) and xbootctl (revocations, crl --out).
 *
 * A stored CRL is stale, and the next one is made, when: none exists; a revocation happened
 * since it was made (the registry's revision counter moved); half its lifetime has passed (so
 * relying parties always fetch one with time left before nextUpdate); or its lifetime differs
 * from the configured one (the operator changed next_update_hours). Anything else is served
 * as stored: a CRL is signed once per change, never per request. */
#ifndef XB_CRL_PUBLISH_H
#define XB_CRL_PUBLISH_H

#include <time.h>

#include "ca.h"
#include "registry.h"

/* [crl] next_update_hours: default and bounds (a week at most: a CRL that old is useless). */
#define XB_CRL_NEXT_UPDATE_HOURS_DEFAULT 24
#define XB_CRL_NEXT_UPDATE_HOURS_MAX (7 * 24)

/* 1 if st (the stored CRL) must be replaced at now, for CRLs valid for period seconds. */
int xb_crl_is_stale(const xb_crl_state *st, time_t now, long period);

/* Make and store a new CRL signed by ca if the stored one is stale (judged again under the
 * registry's write lock, so concurrent callers sign once). *made (may be NULL): 1 if one was
 * made here. */
xb_err xb_crl_refresh(xb_registry *r, xb_ca *ca, long period, int *made, xb_diag *d);

/* Make and store a new CRL signed by ca if the stored one is still CRL number `number` (or is
 * stale): for a CRL signed by a signing CA that a reload replaced. Judged under the write
 * lock, so of the workers that saw the old CRL at once, one replaces it. */
xb_err xb_crl_replace(xb_registry *r, xb_ca *ca, long period, long long number, int *made,
                      xb_diag *d);

#endif
