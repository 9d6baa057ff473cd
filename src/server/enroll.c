/* The enrollment pipeline shared by every route: who may enroll, what may be signed, and
 * that nothing is returned before it is recorded. */
#include "server.h"

#include <string.h>
#include <time.h>

xb_err xb_enroll(xb_server *srv, const xb_enroll_request *req, xb_issued *out, xb_diag *d)
{
    memset(out, 0, sizeof *out);
    /* Cheap refusals first: a registry read costs less than a signature verification. */
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
    if (err != XB_OK)
        return err;

    xb_cert_record rec = {
        .not_before = out->not_before,
        .not_after = out->not_after,
        .issued_at = time(NULL),
        .subject = out->subject,
        .der = out->der,
        .der_len = out->der_len,
    };
    snprintf(rec.serial, sizeof rec.serial, "%s", out->serial);
    snprintf(rec.reg_id, sizeof rec.reg_id, "%s", req->reg_id);
    snprintf(rec.pubkey_sha256, sizeof rec.pubkey_sha256, "%s", out->pubkey_sha256);
    snprintf(rec.client_addr, sizeof rec.client_addr, "%s",
             req->client_addr ? req->client_addr : "");
    /* The rules are checked again inside the commit: another worker may have enrolled the
     * same device since the check above. The signed certificate is then discarded. */
    err = xb_registry_record_issuance(srv->reg, &rec, &srv->rules, d);
    if (err != XB_OK)
        xb_issued_clear(out);
    return err;
}
