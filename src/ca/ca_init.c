/* `xbootctl ca init`: a development CA hierarchy in one step (what the original README did
 * with eight openssl commands): offline root, signing intermediate, chain, localhost TLS. */
#include "ca.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca_internal.h"
#include "signer_pkcs11.h"
#include "xb_util.h"

#define XB_ROOT_DAYS 7305    /* 20 years: the root stays offline and outlives its intermediates */
#define XB_SIGNING_DAYS 3650 /* 10 years */
#define XB_TLS_DAYS 397      /* the longest lifetime TLS clients commonly accept */

enum { F_ROOT_CERT, F_ROOT_KEY, F_SIGN_CERT, F_SIGN_KEY, F_CHAIN, F_TLS_CERT, F_TLS_KEY, F_COUNT };
static const char *const xb_init_files[F_COUNT] = {
    "root-ca.pem", "root-ca.key", "signing-ca.pem", "signing-ca.key",
    "chain.pem",   "tls.pem",     "tls.key",
};

static EVP_PKEY *xb_init_keygen(const char *key_type)
{
    if (strcmp(key_type, "ec-p256") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (strcmp(key_type, "ec-p384") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (strcmp(key_type, "rsa-2048") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (strcmp(key_type, "rsa-3072") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    return NULL;
}

typedef struct xb_ext_spec {
    int nid;
    const char *value;
} xb_ext_spec;

/* One certificate: subject CN/O, key, signed by issuer (NULL issuer: self-signed). */
static X509 *xb_init_cert(const char *cn, const char *org, EVP_PKEY *key, X509 *issuer,
                          EVP_PKEY *issuer_key, int days, const xb_ext_spec *exts, size_t n_exts,
                          xb_diag *d)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    int ok = x != NULL && name != NULL && X509_set_version(x, X509_VERSION_3) &&
             X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                        (const unsigned char *)org, -1, -1, 0) &&
             X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                        (const unsigned char *)cn, -1, -1, 0) &&
             X509_set_subject_name(x, name) &&
             X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) &&
             X509_set_pubkey(x, key) && X509_gmtime_adj(X509_getm_notBefore(x), -300) &&
             X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL);
    X509_NAME_free(name);
    if (ok && xb_ca_random_serial(X509_get_serialNumber(x), d) != XB_OK)
        ok = 0;
    if (ok && xb_ca_add_ski(x, d) != XB_OK)
        ok = 0;
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    for (size_t i = 0; ok && i < n_exts; i++) {
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        ok = ext != NULL && X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (ok)
        ok = X509_sign(x, issuer_key, xb_ca_digest_for_key(issuer_key)) > 0;
    if (!ok) {
        xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot build a certificate");
        X509_free(x);
        return NULL;
    }
    return x;
}

static xb_err xb_init_write_pem(const char *dir, int which, X509 *const *certs, size_t n,
                                EVP_PKEY *key, xb_diag *d)
{
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    int ok = 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = PEM_write_bio_X509(mem, certs[i]);
    if (ok && key != NULL)
        ok = PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL);
    xb_err err = XB_OK;
    if (!ok) {
        err = xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot encode PEM");
    } else {
        char *data = NULL;
        long len = BIO_get_mem_data(mem, &data);
        char *path = xb_path_resolve(dir, xb_init_files[which]);
        if (path == NULL)
            err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
        else
            err = xb_write_file_new(path, data, (size_t)len, key ? 0600 : 0644, d);
        free(path);
    }
    BIO_free(mem);
    return err;
}

static xb_err xb_init_check_absent(const char *dir, xb_diag *d)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0755) != 0)
            return xb_fail(d, XB_ERR_IO, "cannot create directory %s: %s", dir, strerror(errno));
        return XB_OK;
    }
    if (!S_ISDIR(st.st_mode))
        return xb_fail(d, XB_ERR_IO, "%s exists and is not a directory", dir);
    for (int i = 0; i < F_COUNT; i++) {
        char *path = xb_path_resolve(dir, xb_init_files[i]);
        if (path == NULL)
            return xb_fail(d, XB_ERR_NOMEM, "out of memory");
        int exists = lstat(path, &st) == 0;
        if (exists)
            xb_fail(d, XB_ERR_EXISTS, "%s already exists; refusing to overwrite a CA", path);
        free(path);
        if (exists)
            return XB_ERR_EXISTS;
    }
    return XB_OK;
}

static void xb_init_remove_written(const char *dir, int written)
{
    for (int i = 0; i < written; i++) {
        char *path = xb_path_resolve(dir, xb_init_files[i]);
        if (path != NULL)
            unlink(path);
        free(path);
    }
}

xb_err xb_ca_init_dir(const char *dir, const char *key_type, const char *org, xb_diag *d)
{
    return xb_ca_init_dir_pkcs11(dir, key_type, org, NULL, d);
}

xb_err xb_ca_init_dir_pkcs11(const char *dir, const char *key_type, const char *org,
                             const char *pkcs11_uri, xb_diag *d)
{
    if (key_type == NULL)
        key_type = "ec-p256";
    if (org == NULL || org[0] == '\0')
        org = "XBoot";
    EVP_PKEY *probe = xb_init_keygen(key_type);
    if (probe == NULL) {
        ERR_clear_error();
        return xb_fail(d, XB_ERR_INVALID_ARGUMENT,
                       "unknown key type '%s' (ec-p256, ec-p384, rsa-2048, rsa-3072)", key_type);
    }
    xb_err err = xb_init_check_absent(dir, d);
    if (err != XB_OK) {
        EVP_PKEY_free(probe);
        return err;
    }
    EVP_PKEY *root_key = probe, *sign_key = NULL;
    /* Checked absent first: the token's key pair cannot be taken back once generated. */
    if (pkcs11_uri == NULL)
        sign_key = xb_init_keygen(key_type);
    else if ((err = xb_pkcs11_generate_key(pkcs11_uri, NULL, key_type, &sign_key, d)) != XB_OK) {
        EVP_PKEY_free(root_key);
        return err;
    }
    EVP_PKEY *tls_key = xb_init_keygen(key_type);
    X509 *root = NULL, *sign = NULL, *tls = NULL;
    char root_cn[160], sign_cn[160];
    snprintf(root_cn, sizeof root_cn, "%.64s Root CA", org);
    snprintf(sign_cn, sizeof sign_cn, "%.64s Signing CA", org);
    int is_rsa = strncmp(key_type, "rsa", 3) == 0;

    static const xb_ext_spec root_exts[] = {
        {NID_basic_constraints, "critical,CA:TRUE"},
        {NID_key_usage, "critical,keyCertSign,cRLSign"},
        {NID_authority_key_identifier, "keyid:always"},
    };
    static const xb_ext_spec sign_exts[] = {
        {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
        {NID_key_usage, "critical,keyCertSign,cRLSign"},
        {NID_authority_key_identifier, "keyid:always"},
    };
    const xb_ext_spec tls_exts[] = {
        {NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage,
         is_rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature"},
        {NID_ext_key_usage, "serverAuth"},
        {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"},
        {NID_authority_key_identifier, "keyid:always"},
    };
    if (sign_key == NULL || tls_key == NULL) {
        err = xb_fail_ssl(d, XB_ERR_CRYPTO, "key generation failed");
        goto done;
    }
    root = xb_init_cert(root_cn, org, root_key, NULL, root_key, XB_ROOT_DAYS, root_exts, 3, d);
    if (root != NULL)
        sign =
            xb_init_cert(sign_cn, org, sign_key, root, root_key, XB_SIGNING_DAYS, sign_exts, 3, d);
    if (sign != NULL)
        tls = xb_init_cert("localhost", org, tls_key, root, root_key, XB_TLS_DAYS, tls_exts, 5, d);
    if (tls == NULL) {
        err = XB_ERR_CRYPTO;
        goto done;
    }
    X509 *chain[2] = {sign, root};
    struct {
        X509 *cert;
        size_t n_certs;
        EVP_PKEY *key;
    } plan[F_COUNT] = {
        [F_ROOT_CERT] = {root, 1, NULL},  [F_ROOT_KEY] = {NULL, 0, root_key},
        [F_SIGN_CERT] = {sign, 1, NULL},  [F_SIGN_KEY] = {NULL, 0, pkcs11_uri ? NULL : sign_key},
        [F_CHAIN] = {NULL, 2, NULL},      [F_TLS_CERT] = {tls, 1, NULL},
        [F_TLS_KEY] = {NULL, 0, tls_key},
    };
    for (int i = 0; i < F_COUNT; i++) {
        if (i == F_SIGN_KEY && pkcs11_uri != NULL)
            continue; /* it stays in the token */
        X509 *const *certs = i == F_CHAIN ? chain : &plan[i].cert;
        err = xb_init_write_pem(dir, i, certs, plan[i].n_certs, plan[i].key, d);
        if (err != XB_OK) {
            /* Leave nothing half-made: a later `ca init` must not find a partial CA. */
            xb_init_remove_written(dir, err == XB_ERR_EXISTS ? i : i + 1);
            break;
        }
    }
done:
    X509_free(root);
    X509_free(sign);
    X509_free(tls);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(sign_key);
    EVP_PKEY_free(tls_key);
    return err;
}
