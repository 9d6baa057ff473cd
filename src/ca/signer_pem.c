/* The signer for an OpenSSL private key (signer.h) and where its PEM text comes from: a file
 * (PKCS#8 or traditional, optionally encrypted), an environment variable ("env:VARNAME", the
 * original's App Settings option), or an https:// URL (its Blob Storage option). Signing is
 * EVP_PKEY_sign over a digest on a context set up once, so EC and RSA keys only: a key that
 * signs the message itself (Ed25519, Ed448) cannot sign what the issuance code digests. */
#include "signer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "key_source.h"
#include "signer_internal.h"
#include "xb_log.h"

/* Longest passphrase accepted: OpenSSL's PEM callback buffer is 1024 octets. */
#define XB_PASSPHRASE_MAX 1023

typedef struct xb_signer_pem {
    xb_signer base;
    EVP_PKEY_CTX *ctx; /* EVP_PKEY_sign_init'ed once */
    int md_type;       /* the digest ctx is set up for; NID_undef before the first signature */
} xb_signer_pem;

static xb_err xb_pem_sign(xb_signer *s, const EVP_MD *md, const uint8_t *dgst, size_t dgst_len,
                          uint8_t *sig, size_t *sig_len, xb_diag *d)
{
    xb_signer_pem *p = (xb_signer_pem *)s;
    /* The digest is one per CA, so this runs once; a change of digest re-arms the context. */
    if (p->md_type != EVP_MD_get_type(md)) {
        if (EVP_PKEY_CTX_set_signature_md(p->ctx, md) != 1)
            return xb_fail_ssl(d, XB_ERR_CRYPTO, "the CA key cannot sign this digest");
        p->md_type = EVP_MD_get_type(md);
    }
    if (EVP_PKEY_sign(p->ctx, sig, sig_len, dgst, dgst_len) != 1)
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "signing with the CA key failed");
    return XB_OK;
}

static void xb_pem_free(xb_signer *s)
{
    xb_signer_pem *p = (xb_signer_pem *)s;
    EVP_PKEY_CTX_free(p->ctx);
    EVP_PKEY_free(s->pub);
    EVP_PKEY_free(s->pkey);
    free(p);
}

static const xb_signer_ops xb_pem_ops[] = {
    {"file", xb_pem_sign, NULL, NULL, xb_pem_free},
    {"env", xb_pem_sign, NULL, NULL, xb_pem_free},
    {"https", xb_pem_sign, NULL, NULL, xb_pem_free},
};

xb_err xb_signer_from_pkey(EVP_PKEY *key, const char *source, xb_signer **out, xb_diag *d)
{
    *out = NULL;
    int id = EVP_PKEY_get_base_id(key);
    if (id != EVP_PKEY_EC && id != EVP_PKEY_RSA) {
        const char *type = EVP_PKEY_get0_type_name(key);
        EVP_PKEY_free(key);
        return xb_fail(d, XB_ERR_CONFIG,
                       "the CA key is %s %s key: a CA key must be EC or RSA (keys that sign the "
                       "message rather than its digest, such as Ed25519, are not supported)",
                       type != NULL && strchr("AEIOU", type[0]) ? "an" : "a",
                       type != NULL ? type : "unknown");
    }
    xb_signer_pem *p = calloc(1, sizeof *p);
    if (p == NULL || !EVP_PKEY_up_ref(key)) {
        free(p);
        EVP_PKEY_free(key);
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    }
    p->base.ops = &xb_pem_ops[0];
    for (size_t i = 0; source != NULL && i < sizeof xb_pem_ops / sizeof xb_pem_ops[0]; i++)
        if (strcmp(source, xb_pem_ops[i].source) == 0)
            p->base.ops = &xb_pem_ops[i];
    p->base.pkey = key;
    p->base.pub = key; /* the second reference: the private key object holds the public one */
    p->md_type = NID_undef;
    p->ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (p->ctx == NULL || EVP_PKEY_sign_init(p->ctx) != 1 ||
        (id == EVP_PKEY_RSA && EVP_PKEY_CTX_set_rsa_padding(p->ctx, RSA_PKCS1_PADDING) != 1)) {
        xb_pem_free(&p->base);
        return xb_fail_ssl(d, XB_ERR_CONFIG, "the CA key cannot sign");
    }
    *out = &p->base;
    return XB_OK;
}

/* ---- the passphrase ---- */

typedef struct xb_passphrase {
    char text[XB_PASSPHRASE_MAX + 1];
    size_t len;
    int have;         /* a passphrase was configured */
    int asked;        /* the key wanted one */
    char origin[300]; /* where it came from, for messages: a path or a variable's name */
} xb_passphrase;

/* From key_passphrase_file (read once; trailing newline dropped, as editors and `echo` add
 * one), else the environment. Never from the configuration file itself. */
static xb_err xb_passphrase_load(const xb_key_options *opts, xb_passphrase *pp, xb_diag *d)
{
    if (opts->passphrase_file != NULL && opts->passphrase_file[0] != '\0') {
        const char *path = opts->passphrase_file;
        uint8_t *buf = NULL;
        size_t len = 0;
        xb_err err = xb_source_read_file(path, "key_passphrase_file", &buf, &len, d);
        if (err != XB_OK)
            return err;
        struct stat st;
        if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
            xb_warn("key_passphrase_file %s is readable by group or others (mode %03o); chmod "
                    "600 it",
                    path, (unsigned)(st.st_mode & 0777));
        size_t read_len = len;
        if (len > 0 && buf[len - 1] == '\n')
            len--;
        if (len > 0 && buf[len - 1] == '\r')
            len--;
        if (len > XB_PASSPHRASE_MAX) {
            xb_source_free(buf, read_len);
            return xb_fail(d, XB_ERR_CONFIG, "key_passphrase_file %s: longer than %d octets", path,
                           XB_PASSPHRASE_MAX);
        }
        memcpy(pp->text, buf, len);
        xb_source_free(buf, read_len);
        pp->len = len;
        pp->have = 1;
        snprintf(pp->origin, sizeof pp->origin, "key_passphrase_file %s", path);
        return XB_OK;
    }
    const char *name = opts->passphrase_env != NULL && opts->passphrase_env[0] != '\0'
                           ? opts->passphrase_env
                           : XB_CA_KEY_PASSPHRASE_ENV;
    const char *v = getenv(name);
    if (v == NULL)
        return XB_OK;
    size_t len = strlen(v);
    if (len > XB_PASSPHRASE_MAX)
        return xb_fail(d, XB_ERR_CONFIG, "%s: longer than %d octets", name, XB_PASSPHRASE_MAX);
    memcpy(pp->text, v, len);
    pp->len = len;
    pp->have = 1;
    snprintf(pp->origin, sizeof pp->origin, "environment variable %s", name);
    return XB_OK;
}

/* Never a prompt on a terminal: a daemon's passphrase is configuration. */
static int xb_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    xb_passphrase *pp = u;
    pp->asked = 1;
    if (!pp->have || size < 0 || pp->len > (size_t)size)
        return -1;
    memcpy(buf, pp->text, pp->len);
    return (int)pp->len;
}

/* ---- the key's PEM text ---- */

/* The key in pem (len octets) named shown, as a signer; pem is wiped by the caller. */
static xb_err xb_pem_decode(const uint8_t *pem, size_t len, const char *shown, const char *source,
                            const xb_key_options *opts, xb_signer **out, xb_diag *d)
{
    xb_passphrase *pp = calloc(1, sizeof *pp);
    if (pp == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    xb_err err = xb_passphrase_load(opts, pp, d);
    EVP_PKEY *key = NULL;
    if (err == XB_OK) {
        BIO *bio = BIO_new_mem_buf(pem, (int)len);
        if (bio != NULL)
            key = PEM_read_bio_PrivateKey(bio, NULL, xb_passphrase_cb, pp);
        BIO_free(bio);
        /* OpenSSL's reasons ("bad decrypt", "no start line") say less than what follows. */
        ERR_clear_error();
        if (key == NULL && pp->asked && !pp->have)
            err = xb_fail(d, XB_ERR_CONFIG,
                          "CA key %s is encrypted: set key_passphrase_file (or the environment "
                          "variable %s)",
                          shown, XB_CA_KEY_PASSPHRASE_ENV);
        else if (key == NULL && pp->asked)
            err = xb_fail(d, XB_ERR_CONFIG, "CA key %s: wrong passphrase (from %s)", shown,
                          pp->origin);
        else if (key == NULL)
            err = xb_fail(d, XB_ERR_CONFIG,
                          "CA key %s is not a PEM private key (PKCS#8 or traditional, "
                          "optionally encrypted)",
                          shown);
    }
    OPENSSL_cleanse(pp, sizeof *pp);
    free(pp);
    if (err != XB_OK)
        return err;
    err = xb_signer_from_pkey(key, source, out, d);
    if (err != XB_OK) {
        char why[sizeof d->msg];
        snprintf(why, sizeof why, "%s", d->msg);
        return xb_fail(d, err, "CA key %s: %s", shown, why);
    }
    return XB_OK;
}

xb_err xb_signer_pem_open(const char *spec, const xb_key_options *opts, xb_signer **out, xb_diag *d)
{
    *out = NULL;
    char shown[XB_SOURCE_SHOWN_MAX];
    xb_err err = xb_source_shown(spec, shown, sizeof shown, d);
    if (err != XB_OK)
        return err;
    uint8_t *pem = NULL;
    size_t len = 0;
    err = xb_source_read(spec, "CA key", opts->https_ca_file, &pem, &len, d);
    if (err != XB_OK)
        return err;
    int env = strncmp(spec, "env:", 4) == 0;
    if (env)
        xb_warn("CA key %s: for development only (the environment is easily read and copied); "
                "use a file, an https:// object store or a PKCS#11 token in production",
                shown);
    err = xb_pem_decode(pem, len, shown,
                        env                        ? "env"
                        : xb_source_is_https(spec) ? "https"
                                                   : "file",
                        opts, out, d);
    xb_source_free(pem, len);
    return err;
}
