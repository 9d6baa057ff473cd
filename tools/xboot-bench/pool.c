#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "clock.h"

static const struct {
    const char *name;
    const char *alg;   /* EVP_PKEY algorithm */
    const char *group; /* EC curve, or NULL */
    unsigned bits;     /* RSA modulus */
} xbb_key_types[] = {
    [XBB_KEY_EC_P256] = {"ec-p256", "EC", "P-256", 0},
    [XBB_KEY_EC_P384] = {"ec-p384", "EC", "P-384", 0},
    [XBB_KEY_RSA_2048] = {"rsa-2048", "RSA", NULL, 2048},
    [XBB_KEY_RSA_3072] = {"rsa-3072", "RSA", NULL, 3072},
    [XBB_KEY_RSA_4096] = {"rsa-4096", "RSA", NULL, 4096},
};

int xbb_key_type_parse(const char *name, xbb_key_type *out)
{
    for (size_t i = 0; i < sizeof xbb_key_types / sizeof xbb_key_types[0]; i++)
        if (strcmp(name, xbb_key_types[i].name) == 0) {
            *out = (xbb_key_type)i;
            return 0;
        }
    return -1;
}

const char *xbb_key_type_name(xbb_key_type t)
{
    return xbb_key_types[t].name;
}

/* One key generation context for the whole pool: parameter setup is not repeated per key. */
static EVP_PKEY_CTX *xbb_keygen_ctx(xbb_key_type kt)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, xbb_key_types[kt].alg, NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0)
        goto fail;
    if (xbb_key_types[kt].group != NULL &&
        EVP_PKEY_CTX_set_group_name(ctx, xbb_key_types[kt].group) <= 0)
        goto fail;
    if (xbb_key_types[kt].bits != 0 &&
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)xbb_key_types[kt].bits) <= 0)
        goto fail;
    return ctx;
fail:
    EVP_PKEY_CTX_free(ctx);
    return NULL;
}

static char *xbb_csr_pem(X509_REQ *req)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *pem = NULL;
    long n = 0;
    if (bio != NULL && PEM_write_bio_X509_REQ(bio, req) == 1)
        n = BIO_get_mem_data(bio, &data);
    if (n > 0 && (pem = malloc((size_t)n + 1)) != NULL) {
        memcpy(pem, data, (size_t)n);
        pem[n] = '\0';
    }
    BIO_free(bio);
    return pem;
}

/* A CSR with subject CN=id signed by key (SHA-384 for P-384, as devices commonly pair them). */
static int xbb_pool_fill(xbb_pool_entry *e, EVP_PKEY *key, xbb_key_type kt, int want_pem)
{
    X509_REQ *req = X509_REQ_new();
    const EVP_MD *md = kt == XBB_KEY_EC_P384 ? EVP_sha384() : EVP_sha256();
    int ok = req != NULL && X509_REQ_set_version(req, X509_REQ_VERSION_1) &&
             X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req), NID_commonName,
                                        MBSTRING_UTF8, (const unsigned char *)e->id, -1, -1, 0) &&
             X509_REQ_set_pubkey(req, key) && X509_REQ_sign(req, key, md) > 0;
    unsigned char *der = NULL, *spki = NULL;
    int der_len = ok ? i2d_X509_REQ(req, &der) : -1;
    int spki_len = ok ? i2d_PUBKEY(key, &spki) : -1;
    ok = der_len > 0 && spki_len > 0;
    if (ok && want_pem)
        ok = (e->csr_pem = xbb_csr_pem(req)) != NULL;
    /* Copied into malloc'd memory so the pool frees one way only. */
    if (ok && ((e->csr = malloc((size_t)der_len)) == NULL ||
               (e->spki = malloc((size_t)spki_len)) == NULL))
        ok = 0;
    if (ok) {
        memcpy(e->csr, der, (size_t)der_len);
        e->csr_len = (size_t)der_len;
        memcpy(e->spki, spki, (size_t)spki_len);
        e->spki_len = (size_t)spki_len;
    }
    OPENSSL_free(der);
    OPENSSL_free(spki);
    X509_REQ_free(req);
    return ok ? 0 : -1;
}

int xbb_pool_generate(xbb_pool *p, size_t n, xbb_key_type kt, const char *prefix, int want_pem,
                      char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    double t0 = xbb_now();
    p->e = calloc(n ? n : 1, sizeof *p->e);
    EVP_PKEY_CTX *kctx = xbb_keygen_ctx(kt);
    if (p->e == NULL || kctx == NULL) {
        snprintf(err, errlen, "cannot set up %s key generation", xbb_key_type_name(kt));
        EVP_PKEY_CTX_free(kctx);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        xbb_pool_entry *e = &p->e[i];
        int w = snprintf(e->id, sizeof e->id, "%s-%zu", prefix, i);
        if (w < 0 || (size_t)w >= sizeof e->id || !xb_regid_valid(e->id, strlen(e->id))) {
            snprintf(err, errlen, "registration ID '%s-%zu' is not valid", prefix, i);
            rc = -1;
            break;
        }
        EVP_PKEY *key = NULL;
        if (EVP_PKEY_generate(kctx, &key) <= 0 || xbb_pool_fill(e, key, kt, want_pem) != 0) {
            snprintf(err, errlen, "cannot make key/CSR %zu: %s", i,
                     ERR_reason_error_string(ERR_peek_last_error()));
            rc = -1;
        }
        EVP_PKEY_free(key);
        p->n = i + 1;
    }
    EVP_PKEY_CTX_free(kctx);
    ERR_clear_error();
    p->gen_s = xbb_now() - t0;
    return rc;
}

void xbb_pool_free(xbb_pool *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->e[i].csr);
        free(p->e[i].csr_pem);
        free(p->e[i].spki);
    }
    free(p->e);
    memset(p, 0, sizeof *p);
}
