#include "floor_tls.h"

#include <stdio.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "server.h"

/* Round trips a TLS 1.3 handshake needs are 2; anything past this is a failure. */
#define XBB_HS_MAX_STEPS 16
#define XBB_HS_WARM 8

/* xbootd's own TLS context (src/server/tls.c), so the floor measures the handshake xbootd
 * does and follows any change to it. The client pins TLS 1.3 and X25519, so the measured
 * handshake is always the same one. */
static SSL_CTX *xbb_server_ctx(const char *cert_pem, const char *key_pem, char *err, size_t n)
{
    SSL_CTX *ctx = NULL;
    xb_diag d = {""};
    xb_err e = xb_tls_ctx_new(cert_pem, key_pem, &ctx, &d);
    if (e != XB_OK) {
        snprintf(err, n, "cannot set up the TLS server with %s / %s: %s", cert_pem, key_pem,
                 xb_diag_message(&d, e));
        return NULL;
    }
    return ctx;
}

static SSL_CTX *xbb_client_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set1_groups_list(ctx, "X25519")) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* The client is not measured; it need not check the certificate. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

/* 0 if the step succeeded or wants more input, -1 on a real failure. */
static int xbb_hs_step(SSL *ssl, int *done)
{
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
        *done = 1;
        return 0;
    }
    int e = SSL_get_error(ssl, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* One handshake; adds the server's CPU time to *server_s and the number of timed sections to
 * *sections. 0, or -1. */
static int xbb_one_handshake(SSL_CTX *sctx, SSL_CTX *cctx, double *server_s, size_t *sections)
{
    BIO *cbio = NULL, *sbio = NULL;
    if (!BIO_new_bio_pair(&cbio, 0, &sbio, 0))
        return -1;
    SSL *c = SSL_new(cctx);
    if (c == NULL) {
        BIO_free(cbio);
        BIO_free(sbio);
        return -1;
    }
    SSL_set_bio(c, cbio, cbio);
    SSL_set_connect_state(c);
    double t0 = xbb_thread_cpu();
    SSL *s = SSL_new(sctx);
    if (s != NULL) {
        SSL_set_bio(s, sbio, sbio);
        SSL_set_accept_state(s);
    }
    *server_s += xbb_thread_cpu() - t0;
    ++*sections;
    if (s == NULL) {
        BIO_free(sbio);
        SSL_free(c);
        return -1;
    }
    int cdone = 0, sdone = 0, rc = 0;
    for (int i = 0; i < XBB_HS_MAX_STEPS && rc == 0 && !(cdone && sdone); i++) {
        if (!cdone)
            rc = xbb_hs_step(c, &cdone);
        if (rc == 0 && !sdone) {
            t0 = xbb_thread_cpu();
            rc = xbb_hs_step(s, &sdone);
            *server_s += xbb_thread_cpu() - t0;
            ++*sections;
        }
    }
    if (!(cdone && sdone))
        rc = -1;
    t0 = xbb_thread_cpu();
    SSL_free(s);
    *server_s += xbb_thread_cpu() - t0;
    ++*sections;
    SSL_free(c);
    return rc;
}

/* What one read of the thread CPU clock costs (a system call, not vDSO): each timed section
 * holds about one read's worth, subtracted so that the measurement does not count itself. */
static double xbb_clock_cost(void)
{
    double t0 = xbb_thread_cpu();
    for (int i = 0; i < 1000; i++)
        (void)xbb_thread_cpu();
    return (xbb_thread_cpu() - t0) / 1001.0;
}

int xbb_floor_handshake(const char *cert_pem, const char *key_pem, size_t n, xbb_cost *out,
                        char *err, size_t errlen)
{
    SSL_CTX *sctx = xbb_server_ctx(cert_pem, key_pem, err, errlen);
    SSL_CTX *cctx = sctx ? xbb_client_ctx() : NULL;
    if (cctx == NULL) {
        if (sctx != NULL)
            snprintf(err, errlen, "cannot set up the TLS client");
        SSL_CTX_free(sctx);
        return -1;
    }
    double server_s = 0, clock_cost = xbb_clock_cost();
    int rc = 0;
    size_t sections = 0;
    /* A few untimed handshakes first: first-use costs are not per-handshake costs. */
    for (size_t i = 0; i < XBB_HS_WARM && rc == 0; i++)
        rc = xbb_one_handshake(sctx, cctx, &server_s, &sections);
    server_s = 0;
    sections = 0;
    double w0 = xbb_now();
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = xbb_one_handshake(sctx, cctx, &server_s, &sections);
    if (rc != 0)
        snprintf(err, errlen, "the in-memory TLS handshake failed: %s",
                 ERR_reason_error_string(ERR_peek_last_error()));
    server_s -= (double)sections * clock_cost;
    out->cpu_us = server_s * 1e6 / (double)n;
    out->wall_us = (xbb_now() - w0) * 1e6 / (double)n; /* client and server together */
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    ERR_clear_error();
    return rc;
}
