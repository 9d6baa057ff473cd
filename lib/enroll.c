/* Enrollment: the stored state, the exchange with the server (with retries), the checks, the
 * store. It reaches OpenSSL only through lib/crypto.h and the network only through the
 * transport function of the handle (lib/transport.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enroll.h"
#include "exchange.h"
#include "wire.h"

void xben_state_free(xben_state *s)
{
    EVP_PKEY_free(s->key);
    X509_free(s->cert);
    sk_X509_pop_free(s->chain, X509_free);
    memset(s, 0, sizeof *s);
}

void xben_adopt(xboot_client *c, xben_state *s, int issued)
{
    c->key = s->key;
    c->cert = s->cert;
    c->chain = s->chain;
    c->issued = issued;
    memset(s, 0, sizeof *s);
}

xboot_err xben_require_config(xboot_client *c, int need_url)
{
    const char *missing = (need_url && c->url == NULL) ? "server URL"
                          : c->trust == NULL           ? "trust anchor"
                          : c->reg_id == NULL          ? "registration ID"
                                                       : NULL;
    if (missing == NULL)
        return XBOOT_OK;
    snprintf(c->detail.msg, sizeof c->detail.msg, "%s not set", missing);
    return XBOOT_ERR_NOT_CONFIGURED;
}

/* ---- the stored state ---- */

/* The stored certificate: the first PEM certificate of the file. */
static xboot_err xben_read_cert(xboot_client *c, int gen, xben_state *s)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int missing = 0;
    xboot_err e = xbs_read(gen, XBS_CERT, &buf, &len, &missing, &c->detail);
    if (e != XBOOT_OK)
        return e;
    STACK_OF(X509) *certs = NULL;
    e = xbc_certs_from_pem(buf, len, &certs, &c->detail);
    free(buf);
    if (e != XBOOT_OK || sk_X509_num(certs) < 1) {
        sk_X509_pop_free(certs, X509_free);
        return xbc_fail(&c->detail, XBOOT_ERR_STORAGE, "the stored certificate cannot be read");
    }
    s->cert = sk_X509_shift(certs);
    sk_X509_pop_free(certs, X509_free);
    return XBOOT_OK;
}

/* The stored chain (absent or empty: no intermediates). */
static xboot_err xben_read_chain(xboot_client *c, int gen, xben_state *s)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int missing = 0;
    xboot_err e = xbs_read(gen, XBS_CHAIN, &buf, &len, &missing, &c->detail);
    if (e != XBOOT_OK && missing)
        return (s->chain = sk_X509_new_null()) ? XBOOT_OK : XBOOT_ERR_NO_MEMORY;
    if (e != XBOOT_OK)
        return e;
    e = xbc_certs_from_pem(buf, len, &s->chain, &c->detail);
    free(buf);
    if (e != XBOOT_OK)
        return xbc_fail(&c->detail, XBOOT_ERR_STORAGE, "the stored chain cannot be read");
    return XBOOT_OK;
}

/* The key: the caller's, or the stored one. */
static xboot_err xben_read_key(xboot_client *c, int gen, xben_state *s)
{
    if (c->caller_key != NULL) {
        EVP_PKEY_up_ref(c->caller_key);
        s->key = c->caller_key;
        return XBOOT_OK;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    int missing = 0;
    xboot_err e = xbs_read(gen, XBS_KEY, &buf, &len, &missing, &c->detail);
    if (e != XBOOT_OK)
        return e;
    e = xbc_key_from_pem(buf, len, &s->key, &c->detail);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return e;
}

xboot_err xben_read_stored(xboot_client *c, xben_state *s)
{
    int gen = -1, missing = 0;
    xboot_err e = xbs_open_current(c->store_dir, &gen, &missing, &c->detail);
    if (e != XBOOT_OK)
        return e;
    e = xben_read_cert(c, gen, s);
    if (e == XBOOT_OK)
        e = xben_read_chain(c, gen, s);
    if (e == XBOOT_OK)
        e = xben_read_key(c, gen, s);
    close(gen);
    return e;
}

xboot_err xboot_load(xboot_client *c)
{
    if (c == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    xbcl_reset_result(c);
    xboot_err e = xben_require_config(c, 0);
    if (e != XBOOT_OK)
        return e;
    if (c->store_dir == NULL) {
        snprintf(c->detail.msg, sizeof c->detail.msg, "no store directory set");
        return XBOOT_ERR_NOT_CONFIGURED;
    }
    xben_state s = {0};
    e = xben_read_stored(c, &s);
    if (e == XBOOT_OK)
        e = xbc_cert_check(s.cert, s.chain, c->trust, s.key, c->reg_id, &c->detail);
    if (e == XBOOT_OK)
        xben_adopt(c, &s, 0);
    xben_state_free(&s);
    return e;
}

/* ---- the new state ---- */

xboot_err xben_new_key(xboot_client *c, xben_state *s)
{
    if (c->caller_key != NULL) {
        EVP_PKEY_up_ref(c->caller_key);
        s->key = c->caller_key;
        return XBOOT_OK;
    }
    xboot_err e = xbc_key_generate(c->key_type, &s->key, &c->detail);
    if (e == XBOOT_OK)
        xbcl_progress(c, XBOOT_EVENT_KEY_GENERATED, xboot_key_type_name(c->key_type));
    return e;
}

/* The XBoot JSON API: POST {"RegistrationId","Csr"}, answer {"Certificate","Chain"}. */
static xboot_err xben_request_xboot(xboot_client *c, xben_state *s)
{
    uint8_t *csr = NULL;
    size_t csr_len = 0;
    xboot_err e = xbc_csr_build(s->key, c->reg_id, c->rdns, c->n_rdns, &csr, &csr_len, &c->detail);
    if (e != XBOOT_OK)
        return e;
    xbcl_progress(c, XBOOT_EVENT_CSR_BUILT, NULL);
    char *body = NULL;
    size_t body_len = 0;
    e = xbw_request(c->reg_id, csr, csr_len, &body, &body_len, &c->detail);
    OPENSSL_free(csr);
    if (e != XBOOT_OK)
        return e;
    xbx_call call = {.method = "POST",
                     .url = c->url,
                     .content_type = "application/json",
                     .accept = "application/json",
                     .body = (const uint8_t *)body,
                     .body_len = body_len,
                     .errors = XBX_ERRORS_JSON,
                     .basic_auth = 1,
                     .announce = 1};
    xbt_response resp = {.retry_after_s = -1};
    e = xbx_exchange(c, &call, &resp);
    free(body);
    if (e == XBOOT_OK)
        e = xbw_certificate(resp.body, resp.body_len, &s->cert, &s->chain, &c->detail);
    xbt_response_clear(&resp);
    if (e == XBOOT_OK)
        xbcl_progress(c, XBOOT_EVENT_CERT_RECEIVED, NULL);
    return e;
}

static xboot_err xben_request_certificate(xboot_client *c, xben_state *s)
{
    if (c->protocol == XBOOT_PROTOCOL_EST)
        return xben_est_request(c, s, "simpleenroll", NULL, NULL);
    return xben_request_xboot(c, s);
}

xboot_err xben_store(xboot_client *c, const xben_state *s)
{
    char *key_pem = NULL, *cert_pem = NULL, *chain_pem = NULL;
    size_t key_len = 0, cert_len = 0, chain_len = 0, pfx_len = 0;
    uint8_t *pfx = NULL;
    int n_chain = sk_X509_num(s->chain);
    X509 **chain = calloc((size_t)n_chain + 1, sizeof *chain);
    xboot_err e = chain ? XBOOT_OK : XBOOT_ERR_NO_MEMORY;
    for (int i = 0; e == XBOOT_OK && i < n_chain; i++)
        chain[i] = sk_X509_value(s->chain, i);
    if (e == XBOOT_OK && c->caller_key == NULL)
        e = xbc_key_to_pem(s->key, &key_pem, &key_len, &c->detail);
    if (e == XBOOT_OK)
        e = xbc_certs_to_pem(&s->cert, 1, &cert_pem, &cert_len, &c->detail);
    if (e == XBOOT_OK)
        e = xbc_certs_to_pem(chain, (size_t)n_chain, &chain_pem, &chain_len, &c->detail);
    if (e == XBOOT_OK && c->pfx)
        e = xbc_pkcs12_build(s->key, s->cert, s->chain, c->pfx_password, c->reg_id, &pfx, &pfx_len,
                             &c->detail);
    if (e == XBOOT_OK) {
        xbs_files files = {key_pem,   key_len,   cert_pem, cert_len,
                           chain_pem, chain_len, pfx,      pfx_len};
        e = xbs_write(c->store_dir, &files, c->store_hook, &c->detail);
    }
    if (key_pem != NULL)
        OPENSSL_cleanse(key_pem, key_len);
    if (pfx != NULL)
        OPENSSL_cleanse(pfx, pfx_len);
    free(key_pem);
    free(cert_pem);
    free(chain_pem);
    OPENSSL_free(pfx);
    free(chain);
    return e;
}

/* A valid certificate is stored, but a .pfx is wanted and missing: add one, no network. */
static xboot_err xben_complete_pfx(xboot_client *c)
{
    if (!c->pfx)
        return XBOOT_OK;
    int gen = -1, missing = 0;
    xboot_err e = xbs_open_current(c->store_dir, &gen, &missing, &c->detail);
    if (e != XBOOT_OK)
        return e;
    int has = xbs_has(gen, XBS_PFX);
    close(gen);
    if (has)
        return XBOOT_OK;
    if ((e = xbs_writable(c->store_dir, &c->detail)) != XBOOT_OK)
        return e;
    xben_state current = {c->key, c->cert, c->chain}; /* borrowed */
    return xben_store(c, &current);
}

/* How long to wait for another enrollment on the same store: as long as one can take. */
long xben_lock_wait_ms(const xboot_client *c)
{
    return (long)c->attempts * (c->connect_timeout_ms + c->request_timeout_ms) +
           (long)(c->attempts - 1) * c->backoff_max_ms;
}

static xboot_err xben_enroll_locked(xboot_client *c, unsigned flags)
{
    xboot_err e;
    if (c->store_dir != NULL && !(flags & XBOOT_ENROLL_FORCE)) {
        if (xboot_load(c) == XBOOT_OK) {
            e = xben_complete_pfx(c);
            if (e == XBOOT_OK)
                xbcl_progress(c, XBOOT_EVENT_STORED_VALID, c->store_dir);
            return e;
        }
        xbcl_reset_result(c); /* nothing usable stored: enroll */
    }
    /* What could make an issued certificate unstorable is checked before anything is sent:
     * the server records what it issues, and a device that cannot keep it may be refused the
     * next time (one certificate per device). */
    if (c->store_dir != NULL && (e = xbs_writable(c->store_dir, &c->detail)) != XBOOT_OK)
        return e;
    xben_state s = {0};
    e = xben_new_key(c, &s);
    if (e == XBOOT_OK)
        e = xben_request_certificate(c, &s);
    if (e == XBOOT_OK)
        e = xbc_cert_check(s.cert, s.chain, c->trust, s.key, c->reg_id, &c->detail);
    if (e == XBOOT_OK) {
        xbcl_progress(c, XBOOT_EVENT_CERT_VERIFIED, NULL);
        if (c->store_dir != NULL) {
            e = xben_store(c, &s);
            if (e == XBOOT_OK)
                xbcl_progress(c, XBOOT_EVENT_STORED, c->store_dir);
        }
    }
    if (e == XBOOT_OK)
        xben_adopt(c, &s, 1);
    xben_state_free(&s);
    return e;
}

xboot_err xboot_enroll(xboot_client *c, unsigned flags)
{
    if (c == NULL || (flags & ~XBOOT_ENROLL_FORCE) != 0)
        return XBOOT_ERR_INVALID_ARGUMENT;
    xbcl_reset_result(c);
    xboot_err e = xben_require_config(c, 1);
    if (e != XBOOT_OK)
        return e;
    if (c->pfx && c->caller_key != NULL)
        return xbc_fail(&c->detail, XBOOT_ERR_PKCS12,
                        "a .pfx needs the private key, and a supplied key is not exported");
    int lock = -1;
    if (c->store_dir != NULL &&
        (e = xbs_lock(c->store_dir, xben_lock_wait_ms(c), &lock, &c->detail)) != XBOOT_OK)
        return e;
    e = xben_enroll_locked(c, flags);
    xbs_unlock(lock);
    return e;
}
