/* Per-thread objects of the request parser, made once: P-256 and P-384 keys (their domain
 * parameters; each request sets its point) with their verification contexts, an
 * EVP_PKEY_fromdata context for RSA, and the digests a request may be signed with. OpenSSL 3.0
 * fetches (locked method-store look-ups) and group set-ups cost microseconds each: per request
 * they were a measurable part of the parsing. Thread-local rather than global so that nothing
 * shared is mutated without a lock; the objects live as long as their thread (for xbootd, the
 * worker process) and are never freed. */
#include "csr_internal.h"

#include <openssl/core_names.h>

static _Thread_local xb_csr_cache xb_cache;
static _Thread_local int xb_cache_ready;

static EVP_PKEY_CTX *xb_cache_fromdata_ctx(const char *type)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (ctx != NULL && EVP_PKEY_fromdata_init(ctx) != 1) {
        EVP_PKEY_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

static EVP_PKEY *xb_cache_ec_key(const char *group)
{
    EVP_PKEY_CTX *ctx = xb_cache_fromdata_ctx("EC");
    EVP_PKEY *params = NULL;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
        OSSL_PARAM_construct_end()};
    if (ctx != NULL && EVP_PKEY_fromdata(ctx, &params, EVP_PKEY_KEY_PARAMETERS, p) != 1)
        params = NULL;
    EVP_PKEY_CTX_free(ctx);
    return params;
}

xb_csr_cache *xb_csr_cache_get(xb_diag *d)
{
    if (xb_cache_ready)
        return &xb_cache;
    static const char *const names[XB_MD_COUNT] = {"SHA256", "SHA384", "SHA512"};
    xb_csr_cache *c = &xb_cache;
    static const char *const curves[XB_CURVE_COUNT] = {"prime256v1", "secp384r1"};
    for (int i = 0; i < XB_CURVE_COUNT; i++) {
        if (c->ec_key[i] == NULL)
            c->ec_key[i] = xb_cache_ec_key(curves[i]);
        if (c->ec_key[i] != NULL && c->ec_verify[i] == NULL)
            c->ec_verify[i] = EVP_PKEY_CTX_new_from_pkey(NULL, c->ec_key[i], NULL);
    }
    if (c->rsa_fromdata == NULL)
        c->rsa_fromdata = xb_cache_fromdata_ctx("RSA");
    for (int i = 0; i < XB_MD_COUNT; i++)
        if (c->md[i] == NULL)
            c->md[i] = EVP_MD_fetch(NULL, names[i], NULL);
    if (c->md_ctx == NULL)
        c->md_ctx = EVP_MD_CTX_new();
    xb_cache_ready = c->ec_verify[XB_CURVE_P256] != NULL && c->ec_verify[XB_CURVE_P384] != NULL &&
                     c->rsa_fromdata != NULL && c->md_ctx != NULL && c->md[XB_MD_SHA256] != NULL &&
                     c->md[XB_MD_SHA384] != NULL && c->md[XB_MD_SHA512] != NULL;
    if (!xb_cache_ready) {
        xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot prepare the CSR checks");
        return NULL;
    }
    return c;
}
