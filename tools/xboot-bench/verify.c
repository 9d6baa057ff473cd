#include "verify.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

/* How many failures are described on stderr: enough to diagnose, not a flood. */
#define XBB_VERIFY_REPORT_MAX 5

static STACK_OF(X509) * xbb_load_certs(const char *path)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    BIO *bio = BIO_new_file(path, "r");
    if (sk == NULL || bio == NULL) {
        BIO_free(bio);
        sk_X509_free(sk);
        return NULL;
    }
    X509 *x = NULL;
    for (int i = 0; i < 64 && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL; i++)
        if (!sk_X509_push(sk, x))
            X509_free(x);
    ERR_clear_error(); /* the read that ends the file leaves a "no start line" error */
    BIO_free(bio);
    if (sk_X509_num(sk) == 0) {
        sk_X509_free(sk);
        return NULL;
    }
    return sk;
}

static int xbb_verify_one(X509_STORE *store, const STACK_OF(X509) * extra, const xbb_sample *s,
                          const char **why)
{
    const unsigned char *p = s->cert;
    X509 *cert = s->cert ? d2i_X509(NULL, &p, (long)s->cert_len) : NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = 0;
    *why = "cannot decode the certificate";
    if (cert == NULL || chain == NULL || ctx == NULL)
        goto done;
    for (size_t i = 0; i < s->chain_n; i++) {
        const unsigned char *q = s->chain[i];
        X509 *c = d2i_X509(NULL, &q, (long)s->chain_len[i]);
        if (c != NULL && !sk_X509_push(chain, c))
            X509_free(c);
    }
    for (int i = 0; extra != NULL && i < sk_X509_num(extra); i++) {
        X509 *c = sk_X509_value(extra, i);
        if (X509_up_ref(c) && !sk_X509_push(chain, c))
            X509_free(c);
    }
    if (!X509_STORE_CTX_init(ctx, store, cert, chain) ||
        !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT))
        goto done;
    ok = X509_verify_cert(ctx) == 1;
    if (!ok)
        *why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
done:
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(chain, X509_free);
    X509_free(cert);
    ERR_clear_error();
    return ok;
}

int xbb_verify_samples(const xbb_sampler *sm, const char *trust_pem, const char *untrusted_pem,
                       xbb_verify_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (sm->n == 0)
        return 0;
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *extra = NULL;
    int rc = -1;
    if (store == NULL || X509_STORE_load_file(store, trust_pem) != 1) {
        snprintf(err, errlen, "cannot load trust anchors from %s", trust_pem);
        goto done;
    }
    if (untrusted_pem != NULL && (extra = xbb_load_certs(untrusted_pem)) == NULL) {
        snprintf(err, errlen, "cannot load certificates from %s", untrusted_pem);
        goto done;
    }
    for (size_t i = 0; i < sm->n; i++) {
        const char *why = NULL;
        if (xbb_verify_one(store, extra, &sm->s[i], &why)) {
            out->verified++;
        } else if (out->failures++ < XBB_VERIFY_REPORT_MAX) {
            fprintf(stderr, "xboot-bench: certificate of %s does not verify: %s\n", sm->s[i].id,
                    why);
        }
    }
    rc = 0;
done:
    sk_X509_pop_free(extra, X509_free);
    X509_STORE_free(store);
    ERR_clear_error();
    return rc;
}
