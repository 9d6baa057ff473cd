#include "floor_crypto.h"

#include <stdio.h>
#include <time.h>

#include <openssl/err.h>

#include "clock.h"
#include "der_walk.h"
#include "spki_key.h"

/* Each measurement is preceded by an untimed pass over a few items, so that first-use costs
 * (method fetches, caches, page faults) stay out of the per-item figure. */
#define XBB_WARM_ITEMS 32

static size_t xbb_warm(size_t n)
{
    return n < XBB_WARM_ITEMS ? n : XBB_WARM_ITEMS;
}

typedef struct xbb_timer {
    double cpu0, wall0;
} xbb_timer;

static xbb_timer xbb_timer_start(void)
{
    xbb_timer t = {xbb_thread_cpu(), xbb_now()};
    return t;
}

static void xbb_timer_stop(const xbb_timer *t, size_t n, xbb_cost *out)
{
    out->cpu_us = (xbb_thread_cpu() - t->cpu0) * 1e6 / (double)n;
    out->wall_us = (xbb_now() - t->wall0) * 1e6 / (double)n;
}

static int xbb_verify_one(xbb_spki_decoder *dec, EVP_MD_CTX *mctx, const xbb_pool_entry *e)
{
    xbb_span cri, spki, sig_oid, sig;
    if (xbb_der_csr_fields(e->csr, e->csr_len, &cri, &spki, &sig_oid, &sig) != 0)
        return -1;
    const char *md = xbb_sig_oid_digest(sig_oid);
    EVP_PKEY *key = md ? xbb_spki_decode(dec, spki) : NULL;
    int ok = key != NULL && EVP_DigestVerifyInit_ex(mctx, NULL, md, NULL, NULL, key, NULL) == 1 &&
             EVP_DigestVerify(mctx, sig.p, sig.len, cri.p, cri.len) == 1;
    EVP_MD_CTX_reset(mctx);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

int xbb_floor_verify(const xbb_pool *p, xbb_cost *out, char *err, size_t errlen)
{
    xbb_spki_decoder dec;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    if (mctx == NULL || xbb_spki_decoder_init(&dec) != 0) {
        EVP_MD_CTX_free(mctx);
        snprintf(err, errlen, "cannot set up CSR verification");
        return -1;
    }
    int rc = 0;
    xbb_timer t = {0, 0};
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        size_t n = pass == 0 ? xbb_warm(p->n) : p->n;
        if (pass == 1)
            t = xbb_timer_start();
        for (size_t i = 0; i < n && rc == 0; i++)
            if (xbb_verify_one(&dec, mctx, &p->e[i]) != 0) {
                snprintf(err, errlen, "CSR %zu does not verify by the short path", i);
                rc = -1;
            }
    }
    xbb_timer_stop(&t, p->n, out);
    xbb_spki_decoder_free(&dec);
    EVP_MD_CTX_free(mctx);
    ERR_clear_error();
    return rc;
}

int xbb_floor_sign(EVP_PKEY *key, const char *md, const uint8_t *tbs, size_t tbs_len, size_t n,
                   xbb_cost *out, char *err, size_t errlen)
{
    /* The signing context is set up once and copied per certificate: a CA can do that, and
     * it saves a fifth of the cost of a fresh EVP_DigestSignInit each time. */
    EVP_MD_CTX *tmpl = EVP_MD_CTX_new(), *mctx = EVP_MD_CTX_new();
    unsigned char sig[1024]; /* RSA-8192 at most */
    int rc =
        tmpl && mctx && EVP_DigestSignInit_ex(tmpl, NULL, md, NULL, NULL, key, NULL) == 1 ? 0 : -1;
    xbb_timer t = {0, 0};
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        size_t count = pass == 0 ? xbb_warm(n) : n;
        if (pass == 1)
            t = xbb_timer_start();
        for (size_t i = 0; i < count && rc == 0; i++) {
            size_t sig_len = sizeof sig;
            if (EVP_MD_CTX_copy_ex(mctx, tmpl) != 1 ||
                EVP_DigestSign(mctx, sig, &sig_len, tbs, tbs_len) != 1)
                rc = -1;
        }
    }
    xbb_timer_stop(&t, n, out);
    if (rc != 0)
        snprintf(err, errlen, "signing with the CA key failed: %s",
                 ERR_reason_error_string(ERR_peek_last_error()));
    EVP_MD_CTX_free(mctx);
    EVP_MD_CTX_free(tmpl);
    ERR_clear_error();
    return rc;
}

static int xbb_issue_one(xb_ca *ca, const xbb_pool_entry *e, time_t now, char *err, size_t errlen)
{
    xb_diag d = {{0}};
    xb_csr *csr = NULL;
    xb_issued cert;
    xb_err rc = xb_csr_parse(e->csr, e->csr_len, &csr, &d);
    if (rc == XB_OK)
        rc = xb_csr_check_subject(csr, e->id, &d);
    if (rc == XB_OK) {
        rc = xb_ca_issue(ca, csr, e->id, now, &cert, &d);
        if (rc == XB_OK)
            xb_issued_clear(&cert);
    }
    xb_csr_free(csr);
    if (rc != XB_OK)
        snprintf(err, errlen, "issuing for %s: %s", e->id, xb_diag_message(&d, rc));
    return rc == XB_OK ? 0 : -1;
}

int xbb_floor_issue(xb_ca *ca, const xbb_pool *p, xbb_cost *out, char *err, size_t errlen)
{
    time_t now = time(NULL);
    int rc = 0;
    xbb_timer t = {0, 0};
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        size_t n = pass == 0 ? xbb_warm(p->n) : p->n;
        if (pass == 1)
            t = xbb_timer_start();
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = xbb_issue_one(ca, &p->e[i], now, err, errlen);
    }
    xbb_timer_stop(&t, p->n, out);
    return rc;
}
