/* The enrollment pipeline shared by every route: who may enroll, what may be signed, and
 * that nothing is returned before it is recorded. */
#include "committer.h"
#include "est_server.h"
#include "http.h"
#include "policy.h"
#include "server.h"
#include "webhook.h"
#include "xb_log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

/* Why the device's current certificate cannot be sent for the key key_sha256 (NULL: it can).
 * meta is its registry record, read for this request: a revocation counts at once. */
static const char *xb_enroll_not_replayable(xb_server *srv, const xb_cert_record *meta,
                                            const xb_issued *cur, const char *key_sha256,
                                            time_t now)
{
    if (strcmp(cur->pubkey_sha256, key_sha256) != 0)
        return "for another key";
    /* A revoked certificate is never handed out again, even to the key it was issued for
     * (after keyCompromise, that key may be the attacker's). */
    if (meta->revoked_at != 0)
        return "which is revoked";
    if (cur->not_after <= now)
        return "which has expired";
    /* Sent with this CA's chain, so it must be this CA's (not one rotated out since). */
    if (!xb_ca_issued_by(srv->ca, cur))
        return "from another signing CA";
    return NULL;
}

/* A retry after a lost answer: the device has proven it holds the key whose SPKI hash is
 * key_sha256 (its CSR signature verified), and if that key is the one of its current
 * certificate, still valid and not revoked, that certificate is what the lost answer carried;
 * out gets it. Nothing is signed or recorded, so a device still has one certificate. Otherwise
 * XB_ERR_ALREADY_ENROLLED, as without this. */
static xb_err xb_enroll_replay(xb_server *srv, const char *reg_id, const char *key_sha256,
                               xb_issued *out, xb_diag *d)
{
    xb_cert_record meta;
    uint8_t *der = NULL;
    size_t der_len = 0;
    xb_err err = xb_registry_current_cert(srv->reg, reg_id, &meta, &der, &der_len, d);
    if (err == XB_ERR_NOT_FOUND) /* enrolled, but its certificates were removed by hand */
        return xb_fail(d, XB_ERR_ALREADY_ENROLLED, "device %s already has a certificate", reg_id);
    if (err == XB_OK)
        err = xb_issued_from_der(der, der_len, out, d);
    free(der);
    if (err != XB_OK)
        return err;
    const char *why = xb_enroll_not_replayable(srv, &meta, out, key_sha256, time(NULL));
    if (why == NULL)
        return XB_OK;
    xb_issued_clear(out);
    return xb_fail(d, XB_ERR_ALREADY_ENROLLED, "device %s already has a certificate, %s", reg_id,
                   why);
}

/* The checked CSR's key against the device's current certificate (see xb_enroll_replay). */
static xb_err xb_enroll_replay_csr(xb_server *srv, const char *reg_id, const xb_csr *csr,
                                   xb_issued *out, xb_diag *d)
{
    char key_sha256[65];
    xb_err err = xb_csr_pubkey_sha256(csr, key_sha256, d);
    return err != XB_OK ? err : xb_enroll_replay(srv, reg_id, key_sha256, out, d);
}

/* An enrollment waiting for its commit. job comes first: the committer hands back the job. */
typedef struct xb_enroll_pending {
    xb_commit_job job;
    xb_exchange ex;
    xb_issued cert;
    xb_enroll_reply_fn reply;
    xb_decision decision; /* the record borrows its group */
    xb_webhook_job webhook;
} xb_enroll_pending;

/* Who may enroll (the policy), and what simplereenroll adds: a renewal, keeping the subject. */
static xb_err xb_enroll_authorize(xb_server *srv, const xb_enroll_request *req, xb_decision *dec,
                                  xb_diag *d)
{
    xb_presented in = {.reg_id = req->reg_id,
                       .authorization = req->authorization,
                       .api_key = req->api_key,
                       .peer = req->peer,
                       .renewal_route = req->renewal_route};
    xb_err err = xb_policy_authorize(srv->policy, srv->cfg, srv->reg, &in, dec, d);
    if ((err == XB_OK || err == XB_ERR_ALREADY_ENROLLED) && req->reenroll_only && !dec->renewal)
        return xb_fail(d, XB_ERR_UNAUTHORIZED,
                       "simplereenroll needs the TLS client certificate being renewed");
    return err;
}

/* Authorize, check the CSR and sign: the CPU-bound half of an enrollment, nothing recorded
 * yet. A device that may not enroll again (XB_ERR_ALREADY_ENROLLED) but sends a valid CSR for
 * the key of its current, unexpired certificate gets that certificate instead, with
 * p->ex.replayed = 1: it is recorded already, and the answer to send after a lost one. */
static xb_err xb_enroll_sign(xb_enroll_pending *p, const xb_enroll_request *req, xb_diag *d)
{
    xb_server *srv = p->ex.srv;
    /* Cheap refusals first: registry reads cost less than a signature verification. The
     * rules are checked again inside the commit: another worker may enroll the same device
     * meanwhile, and then this certificate is discarded unsent. An enrolled device is still
     * heard out: it may be retrying after losing the answer, which only its CSR can show. */
    xb_err rules = xb_enroll_authorize(srv, req, &p->decision, d);
    if (rules != XB_OK && rules != XB_ERR_ALREADY_ENROLLED)
        return rules;
    p->ex.credential = xb_credential_name(p->decision.credential);
    xb_csr *parsed = NULL;
    const xb_csr *csr = req->csr;
    xb_err err = XB_OK;
    if (csr == NULL) {
        err = xb_csr_parse(req->csr_der, req->csr_len, &parsed, d);
        csr = parsed;
    }
    if (err == XB_OK)
        err = xb_csr_check_subject(csr, req->reg_id, d);
    if (err == XB_OK && req->reenroll_only)
        err = xb_est_renewal_match(csr, req->peer, d);
    if (err == XB_OK && rules == XB_ERR_ALREADY_ENROLLED) {
        err = xb_enroll_replay_csr(srv, req->reg_id, csr, &p->cert, d);
        p->ex.replayed = err == XB_OK;
    } else if (err == XB_OK) {
        err = xb_ca_issue(srv->ca, csr, req->reg_id, time(NULL), &p->cert, d);
    }
    xb_csr_free(parsed);
    return err;
}

/* The registry record of an issued certificate; rec borrows cert's DER and subject and the
 * decision's group. */
static void xb_enroll_record_of(const xb_enroll_request *req, const xb_decision *dec,
                                const xb_issued *cert, xb_cert_record *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->not_before = cert->not_before;
    rec->not_after = cert->not_after;
    rec->issued_at = time(NULL);
    rec->renewal = dec->renewal;
    rec->new_source = dec->new_source;
    rec->new_group = dec->new_source != NULL && dec->group[0] != '\0' ? dec->group : NULL;
    rec->subject = cert->subject;
    rec->der = cert->der;
    rec->der_len = cert->der_len;
    snprintf(rec->serial, sizeof rec->serial, "%s", cert->serial);
    snprintf(rec->reg_id, sizeof rec->reg_id, "%s", req->reg_id);
    snprintf(rec->pubkey_sha256, sizeof rec->pubkey_sha256, "%s", cert->pubkey_sha256);
    snprintf(rec->client_addr, sizeof rec->client_addr, "%s",
             req->client_addr ? req->client_addr : "");
}

static void xb_enroll_finish(xb_enroll_pending *p, xb_err err, const char *message)
{
    p->reply(&p->ex, err, err == XB_OK ? &p->cert : NULL, message);
    xb_issued_clear(&p->cert);
    free(p);
}

/* The commit found the device enrolled meanwhile. If by this same key (a retry that overtook
 * its first request, whose answer is late or lost), the recorded certificate goes out instead
 * of the one just signed, which is discarded unsent. */
static xb_err xb_enroll_replay_late(xb_enroll_pending *p, xb_diag *d)
{
    char key_sha256[65];
    snprintf(key_sha256, sizeof key_sha256, "%s", p->cert.pubkey_sha256);
    xb_issued_clear(&p->cert);
    xb_err err = xb_enroll_replay(p->ex.srv, p->job.item.rec.reg_id, key_sha256, &p->cert, d);
    p->ex.replayed = err == XB_OK;
    return err;
}

/* After the commit, or instead of one (no committer): the answer. */
static void xb_enroll_recorded(xb_enroll_pending *p, xb_err err, xb_diag *d)
{
    if (err == XB_ERR_ALREADY_ENROLLED)
        err = xb_enroll_replay_late(p, d);
    xb_enroll_finish(p, err, xb_diag_message(d, err));
}

static void xb_enroll_committed(xb_commit_job *job, int delivered)
{
    xb_enroll_pending *p = (xb_enroll_pending *)job;
    if (!delivered) { /* shutting down: recorded, but nobody left to answer */
        xb_issued_clear(&p->cert);
        free(p);
        return;
    }
    xb_diag d = job->item.diag;
    xb_enroll_recorded(p, job->item.result, &d);
}

/* Record, then answer (enroll_recorded). */
static void xb_enroll_commit(xb_enroll_pending *p)
{
    xb_server *srv = p->ex.srv;
    p->job.done = xb_enroll_committed;
    if (srv->committer != NULL) {
        xb_committer_submit(srv->committer, &p->job);
        return;
    }
    /* No commit thread (tools and tests that drive the pipeline directly): commit inline. */
    xb_diag d = {""};
    xb_err err = xb_registry_record_issuance(srv->reg, &p->job.item.rec, &srv->rules, &d);
    xb_enroll_recorded(p, err, &d);
}

/* The webhook's verdict, on the loop thread: allowed goes on to the commit; denied or
 * unanswered discards the certificate, which was never recorded nor sent. */
static void xb_enroll_judged(xb_webhook_job *job, int delivered)
{
    xb_enroll_pending *p =
        (xb_enroll_pending *)((char *)job - offsetof(xb_enroll_pending, webhook));
    if (!delivered) { /* shutting down: nothing was recorded, nobody left to answer */
        xb_issued_clear(&p->cert);
        free(p);
        return;
    }
    if (job->result == XB_OK) {
        xb_enroll_commit(p);
        return;
    }
    /* No answer (XB_ERR_POLICY_UNAVAILABLE) was logged by the webhook client with its detail. */
    xb_issued_clear(&p->cert);
    xb_enroll_finish(p, job->result, job->reason[0] ? job->reason : NULL);
}

/* "ec-p256", "rsa-2048": the issued certificate's key, as the webhook is told. */
static void xb_enroll_key_type(const xb_issued *cert, char *out, size_t size)
{
    const unsigned char *der = cert->der;
    X509 *x = d2i_X509(NULL, &der, (long)cert->der_len);
    EVP_PKEY *key = x != NULL ? X509_get0_pubkey(x) : NULL;
    char group[64] = "";
    size_t glen = 0;
    if (key != NULL && EVP_PKEY_is_a(key, "RSA"))
        snprintf(out, size, "rsa-%d", EVP_PKEY_get_bits(key));
    else if (key != NULL && EVP_PKEY_get_group_name(key, group, sizeof group, &glen))
        snprintf(out, size, "ec-%s",
                 strcmp(group, "prime256v1") == 0  ? "p256"
                 : strcmp(group, "secp384r1") == 0 ? "p384"
                                                   : group);
    else
        snprintf(out, size, "unknown");
    X509_free(x);
}

/* Ask [policy] webhook_url about the signed, unrecorded certificate (enroll_judged). */
static void xb_enroll_ask_webhook(xb_enroll_pending *p)
{
    char key_type[80];
    xb_enroll_key_type(&p->cert, key_type, sizeof key_type);
    xb_webhook_query q = {.registration_id = p->job.item.rec.reg_id,
                          .subject = p->cert.subject,
                          .public_key_sha256 = p->cert.pubkey_sha256,
                          .key_type = key_type,
                          .client_address = p->ex.client_addr,
                          .protocol = xb_protocol_name(p->ex.protocol)};
    p->webhook.done = xb_enroll_judged;
    xb_webhook_submit(p->ex.srv->webhook, &q, &p->webhook);
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
    xb_diag d = {""};
    xb_err err = xb_http_take_token(&p->ex, req->reg_id, &d);
    if (err == XB_OK)
        err = xb_enroll_sign(p, req, &d);
    if (err != XB_OK || p->ex.replayed) { /* a replayed certificate is recorded already */
        xb_enroll_finish(p, err, xb_diag_message(&d, err));
        return;
    }
    xb_enroll_record_of(req, &p->decision, &p->cert, &p->job.item.rec);
    /* The webhook judges what would be issued, signed but not recorded: a denial discards it
     * (a serial spent, nothing issued). Signing first keeps the exact subject and key the
     * webhook sees the ones of the certificate; refusals are rare next to enrollments. */
    if (p->ex.srv->webhook != NULL)
        xb_enroll_ask_webhook(p);
    else
        xb_enroll_commit(p);
}
