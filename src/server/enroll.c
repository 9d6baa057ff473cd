/* The enrollment pipeline shared by every route: who may enroll, what may be signed, and
 * that nothing is returned before it is recorded. */
#include "committer.h"
#include "http.h"
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

xb_err xb_enroll_sign(xb_server *srv, const xb_enroll_request *req, xb_issued *out, xb_diag *d)
{
    memset(out, 0, sizeof *out);
    /* Cheap refusals first: a registry read costs less than a signature verification. The
     * rules are checked again inside the commit: another worker may enroll the same device
     * meanwhile, and then this certificate is discarded unsent. */
    xb_err err = xb_registry_check_enroll(srv->reg, req->reg_id, &srv->rules, d);
    if (err != XB_OK)
        return err;
    xb_csr *csr = NULL;
    err = xb_csr_parse(req->csr_der, req->csr_len, &csr, d);
    if (err == XB_OK)
        err = xb_csr_check_subject(csr, req->reg_id, d);
    if (err == XB_OK)
        err = xb_ca_issue(srv->ca, csr, req->reg_id, time(NULL), out, d);
    xb_csr_free(csr);
    return err;
}

void xb_enroll_record_of(const xb_enroll_request *req, const xb_issued *cert, xb_cert_record *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->not_before = cert->not_before;
    rec->not_after = cert->not_after;
    rec->issued_at = time(NULL);
    rec->subject = cert->subject;
    rec->der = cert->der;
    rec->der_len = cert->der_len;
    snprintf(rec->serial, sizeof rec->serial, "%s", cert->serial);
    snprintf(rec->reg_id, sizeof rec->reg_id, "%s", req->reg_id);
    snprintf(rec->pubkey_sha256, sizeof rec->pubkey_sha256, "%s", cert->pubkey_sha256);
    snprintf(rec->client_addr, sizeof rec->client_addr, "%s",
             req->client_addr ? req->client_addr : "");
}

/* An enrollment waiting for its commit. job comes first: the committer hands back the job. */
typedef struct xb_enroll_pending {
    xb_commit_job job;
    xb_exchange ex;
    xb_issued cert;
    xb_enroll_reply_fn reply;
} xb_enroll_pending;

static void xb_enroll_finish(xb_enroll_pending *p, xb_err err, const char *message)
{
    p->reply(&p->ex, err, err == XB_OK ? &p->cert : NULL, message);
    xb_issued_clear(&p->cert);
    free(p);
}

static void xb_enroll_committed(xb_commit_job *job, int delivered)
{
    xb_enroll_pending *p = (xb_enroll_pending *)job;
    if (!delivered) { /* shutting down: recorded, but nobody left to answer */
        xb_issued_clear(&p->cert);
        free(p);
        return;
    }
    xb_err err = job->item.result;
    xb_enroll_finish(p, err, xb_diag_message(&job->item.diag, err));
}

void xb_enroll_start(const xb_exchange *ex, const xb_enroll_request *req, xb_enroll_reply_fn reply)
{
    xb_enroll_pending *p = calloc(1, sizeof *p);
    if (p == NULL) {
        xb_exchange copy = *ex;
        reply(&copy, XB_ERR_NOMEM, NULL, NULL);
        return;
    }
    p->ex = *ex;
    p->reply = reply;
    xb_server *srv = ex->srv;
    xb_diag d = {""};
    xb_err err = xb_enroll_sign(srv, req, &p->cert, &d);
    if (err != XB_OK) {
        xb_enroll_finish(p, err, xb_diag_message(&d, err));
        return;
    }
    xb_enroll_record_of(req, &p->cert, &p->job.item.rec);
    p->job.done = xb_enroll_committed;
    if (srv->committer != NULL) {
        xb_committer_submit(srv->committer, &p->job);
        return;
    }
    /* No commit thread (tools and tests that drive the pipeline directly): commit inline. */
    err = xb_registry_record_issuance(srv->reg, &p->job.item.rec, &srv->rules, &d);
    xb_enroll_finish(p, err, xb_diag_message(&d, err));
}
