/* `xbootctl ca rotate`: a new signing CA under the same root, in a directory `ca init` made
 * (docs/ca-keys.md, "Rotation").
 *
 * The new certificate is the old one re-issued: same extensions and root, a new key, serial,
 * key identifier and validity, and a generation in its CN ("XBoot Signing CA G2"), so that even
 * a verifier that picks issuers by name alone never takes one for the other. The old
 * certificate and key are kept beside it under a timestamp, never deleted: what they issued
 * stays valid until it expires and verifiers still need them. */
#include "ca.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca_internal.h"
#include "xb_util.h"

#define XB_ROTATE_DAYS 3650 /* as `ca init` gives a signing CA */
#define XB_ROTATE_MAX_CHAIN 16

typedef struct xb_rotate {
    const char *dir;
    X509 *root, *old, *new_cert;
    EVP_PKEY *root_key, *new_key;
    STACK_OF(X509) * chain_rest; /* chain.pem after the old signing CA: what stays above it */
    STACK_OF(X509) * previous;   /* previous.pem: the signing CAs rotated out before */
} xb_rotate;

static char *xb_rotate_path(const xb_rotate *r, const char *name)
{
    return xb_path_resolve(r->dir, name);
}

static X509 *xb_rotate_read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    return x;
}

static EVP_PKEY *xb_rotate_read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    return k;
}

/* Read and check what is there: the root with its key, a signing CA it issued, the chain. */
/* A signing CA without signing-ca.key has its key elsewhere (`ca init --pkcs11`): a rotation
 * here would make a file key, quietly moving the CA out of its token. 1 (with d) then. */
static int xb_rotate_key_in_token(const xb_rotate *r, xb_diag *d)
{
    char *key = xb_rotate_path(r, "signing-ca.key");
    struct stat st;
    int absent = key != NULL && stat(key, &st) != 0 && errno == ENOENT;
    if (absent)
        xb_fail(d, XB_ERR_INVALID_ARGUMENT,
                "%s is absent: the signing key is not a file (a PKCS#11 token?), and ca rotate "
                "makes file keys only; create the new key in the token and sign its "
                "certificate by hand (docs/ca-keys.md, \"Rotation\")",
                key);
    free(key);
    return absent;
}

/* previous.pem, when a rotation made one: the signing CAs rotated out, newest first, whose
 * certificates xbootd still accepts for EST renewal ([ca] previous). */
static xb_err xb_rotate_read_previous(xb_rotate *r, xb_diag *d)
{
    char *path = xb_rotate_path(r, "previous.pem");
    if (path == NULL || (r->previous = sk_X509_new_null()) == NULL) {
        free(path);
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    }
    FILE *f = fopen(path, "r");
    xb_err err = f == NULL && errno != ENOENT
                     ? xb_fail(d, XB_ERR_IO, "cannot open %s: %s", path, strerror(errno))
                     : XB_OK;
    X509 *x;
    while (err == XB_OK && f != NULL && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(r->previous, x)) {
            X509_free(x);
            err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
        }
    }
    if (f != NULL)
        fclose(f);
    ERR_clear_error();
    free(path);
    return err;
}

static xb_err xb_rotate_read(xb_rotate *r, xb_diag *d)
{
    char *root_cert = xb_rotate_path(r, "root-ca.pem"),
         *root_key = xb_rotate_path(r, "root-ca.key");
    char *sign_cert = xb_rotate_path(r, "signing-ca.pem"), *chain = xb_rotate_path(r, "chain.pem");
    xb_err err = XB_OK;
    struct stat st;
    if (root_cert == NULL || root_key == NULL || sign_cert == NULL || chain == NULL)
        err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
    else if ((r->root = xb_rotate_read_cert(root_cert)) == NULL)
        err = xb_fail(d, XB_ERR_IO,
                      "%s: cannot read a PEM certificate (is %s a directory that "
                      "`xbootctl ca init` made?)",
                      root_cert, r->dir);
    else if (stat(root_key, &st) != 0)
        err = xb_fail(d, XB_ERR_NOT_FOUND,
                      "%s is absent: the root key is offline, so the new signing CA must be "
                      "signed where it is kept (docs/ca-keys.md, \"Rotation\")",
                      root_key);
    else if ((r->root_key = xb_rotate_read_key(root_key)) == NULL)
        err = xb_fail(d, XB_ERR_IO, "%s: cannot read a PEM private key", root_key);
    else if (X509_check_private_key(r->root, r->root_key) != 1)
        err = xb_fail(d, XB_ERR_CRYPTO, "%s is not the key of %s", root_key, root_cert);
    else if (xb_rotate_key_in_token(r, d))
        err = XB_ERR_INVALID_ARGUMENT;
    else if ((r->old = xb_rotate_read_cert(sign_cert)) == NULL)
        err = xb_fail(d, XB_ERR_IO, "%s: cannot read a PEM certificate", sign_cert);
    else if (X509_check_issued(r->root, r->old) != X509_V_OK)
        err = xb_fail(d, XB_ERR_CRYPTO, "%s was not issued by %s: not a `ca init` directory",
                      sign_cert, root_cert);
    FILE *f = err == XB_OK ? fopen(chain, "r") : NULL;
    if (err == XB_OK && f == NULL)
        err = xb_fail(d, XB_ERR_IO, "cannot open %s: %s", chain, strerror(errno));
    if (err == XB_OK && (r->chain_rest = sk_X509_new_null()) == NULL)
        err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
    X509 *x;
    while (err == XB_OK && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (X509_cmp(x, r->old) == 0 || sk_X509_num(r->chain_rest) >= XB_ROTATE_MAX_CHAIN ||
            !sk_X509_push(r->chain_rest, x))
            X509_free(x);
    }
    if (f != NULL)
        fclose(f);
    ERR_clear_error(); /* the end of the chain file */
    if (err == XB_OK)
        err = xb_rotate_read_previous(r, d);
    free(root_cert);
    free(root_key);
    free(sign_cert);
    free(chain);
    return err;
}

/* A key of the same kind as the old one: devices were told which (EST csrattrs). */
static EVP_PKEY *xb_rotate_keygen(X509 *old)
{
    EVP_PKEY *pub = X509_get0_pubkey(old);
    char group[64];
    if (pub != NULL && EVP_PKEY_is_a(pub, "EC") &&
        EVP_PKEY_get_group_name(pub, group, sizeof group, NULL))
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
    if (pub != NULL && EVP_PKEY_is_a(pub, "RSA"))
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)EVP_PKEY_get_bits(pub));
    return NULL;
}

/* The CN with the next generation: "X" -> "X G2", "X G2" -> "X G3". */
static void xb_rotate_next_cn(const char *cn, char *out, size_t size)
{
    size_t n = strlen(cn), i = n;
    while (i > 0 && cn[i - 1] >= '0' && cn[i - 1] <= '9')
        i--;
    long gen = 1;
    if (i < n && n - i <= 6 && i >= 2 && cn[i - 1] == 'G' && cn[i - 2] == ' ') {
        gen = strtol(cn + i, NULL, 10);
        n = i - 2;
    }
    snprintf(out, size, "%.*s G%ld", (int)(n > 60 ? 60 : n), cn, gen + 1);
}

static xb_err xb_rotate_set_cn(X509 *x, xb_diag *d)
{
    X509_NAME *name = X509_get_subject_name(x);
    int at = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *utf8 = NULL;
    int len = at >= 0 ? ASN1_STRING_to_UTF8(&utf8,
                                            X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at)))
                      : -1;
    if (len < 0)
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "the signing CA has no readable CN");
    char cn[128], next[160];
    snprintf(cn, sizeof cn, "%.*s", len, (const char *)utf8);
    OPENSSL_free(utf8);
    xb_rotate_next_cn(cn, next, sizeof next);
    /* The CN replaced where it was, so the rest of the name keeps its order. */
    X509_NAME *copy = X509_NAME_dup(name);
    X509_NAME_ENTRY *gone = copy != NULL ? X509_NAME_delete_entry(copy, at) : NULL;
    int ok = gone != NULL && X509_NAME_add_entry_by_NID(copy, NID_commonName, MBSTRING_UTF8,
                                                        (const unsigned char *)next, -1, at, 0);
    X509_NAME_ENTRY_free(gone);
    ok = ok && X509_set_subject_name(x, copy);
    X509_NAME_free(copy);
    return ok ? XB_OK : xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot name the new signing CA");
}

/* The old certificate re-issued by the root for a new key. */
static xb_err xb_rotate_issue(xb_rotate *r, xb_diag *d)
{
    r->new_key = xb_rotate_keygen(r->old);
    if (r->new_key == NULL)
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot make a key like the signing CA's");
    X509 *x = r->new_cert = X509_dup(r->old);
    if (x == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    int at;
    while ((at = X509_get_ext_by_NID(x, NID_subject_key_identifier, -1)) >= 0)
        X509_EXTENSION_free(X509_delete_ext(x, at));
    /* Not past the root: a certificate outliving its issuer would only fail later. */
    time_t now = time(NULL), end = now + (time_t)XB_ROTATE_DAYS * 86400, root_end;
    if (xb_asn1_time_to_time_t(X509_get0_notAfter(r->root), &root_end) == 0 && root_end < end)
        end = root_end;
    xb_err err = xb_ca_random_serial(X509_get_serialNumber(x), d);
    if (err == XB_OK)
        err = xb_rotate_set_cn(x, d);
    if (err == XB_OK &&
        (!X509_set_pubkey(x, r->new_key) || !X509_gmtime_adj(X509_getm_notBefore(x), -300) ||
         !X509_time_adj_ex(X509_getm_notAfter(x), 0, (long)(end - now), NULL)))
        err = xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot build the new signing CA certificate");
    if (err == XB_OK)
        err = xb_ca_add_ski(x, d);
    if (err == XB_OK && X509_sign(x, r->root_key, xb_ca_digest_for_key(r->root_key)) <= 0)
        err = xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot sign the new signing CA certificate");
    return err;
}

/* Write name.tmp in full and fsync it; the caller renames it into place. */
static xb_err xb_rotate_write_tmp(const xb_rotate *r, const char *name, X509 *const *certs,
                                  size_t n, STACK_OF(X509) * more, EVP_PKEY *key, xb_diag *d)
{
    BIO *mem = BIO_new(BIO_s_mem());
    int ok = mem != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = PEM_write_bio_X509(mem, certs[i]);
    for (int i = 0; ok && more != NULL && i < sk_X509_num(more); i++)
        ok = PEM_write_bio_X509(mem, sk_X509_value(more, i));
    if (ok && key != NULL)
        ok = PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL);
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    char *path = xb_rotate_path(r, tmp);
    xb_err err = XB_OK;
    if (!ok || path == NULL) {
        err = xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot encode PEM");
    } else {
        char *data = NULL;
        long len = BIO_get_mem_data(mem, &data);
        unlink(path); /* left by a rotation that failed half-way */
        err = xb_write_file_new(path, data, (size_t)len, key != NULL ? 0600 : 0644, d);
        int fd = err == XB_OK ? open(path, O_RDONLY) : -1;
        if (err == XB_OK && (fd < 0 || fsync(fd) != 0))
            err = xb_fail(d, XB_ERR_IO, "cannot sync %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    free(path);
    BIO_free(mem);
    return err;
}

/* link(2) never replaces: a second rotation in the same second is refused, not a loss. */
static xb_err xb_rotate_keep(const xb_rotate *r, const char *name, const char *kept, xb_diag *d)
{
    char *from = xb_rotate_path(r, name), *to = xb_rotate_path(r, kept);
    xb_err err = XB_OK;
    if (from == NULL || to == NULL)
        err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
    else if (link(from, to) != 0)
        err = xb_fail(d, errno == EEXIST ? XB_ERR_EXISTS : XB_ERR_IO, "cannot keep %s as %s: %s",
                      from, to, strerror(errno));
    free(from);
    free(to);
    return err;
}

static xb_err xb_rotate_install(const xb_rotate *r, const char *name, xb_diag *d)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    char *from = xb_rotate_path(r, tmp), *to = xb_rotate_path(r, name);
    xb_err err = XB_OK;
    if (from == NULL || to == NULL)
        err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
    else if (rename(from, to) != 0)
        err = xb_fail(d, XB_ERR_IO, "cannot rename %s to %s: %s", from, to, strerror(errno));
    free(from);
    free(to);
    return err;
}

xb_err xb_ca_rotate_dir(const char *dir, char *stamp, size_t stamp_size, xb_diag *d)
{
    xb_rotate r = {.dir = dir};
    xb_err err = xb_rotate_read(&r, d);
    if (err == XB_OK)
        err = xb_rotate_issue(&r, d);
    /* Everything new is written and synced before anything is moved: a failure up to here
     * leaves the directory as it was (but for *.tmp files). */
    X509 *first[1] = {r.new_cert};
    if (err == XB_OK)
        err = xb_rotate_write_tmp(&r, "signing-ca.pem", first, 1, NULL, NULL, d);
    if (err == XB_OK)
        err = xb_rotate_write_tmp(&r, "signing-ca.key", NULL, 0, NULL, r.new_key, d);
    if (err == XB_OK)
        err = xb_rotate_write_tmp(&r, "chain.pem", first, 1, r.chain_rest, NULL, d);
    X509 *old[1] = {r.old};
    if (err == XB_OK)
        err = xb_rotate_write_tmp(&r, "previous.pem", old, 1, r.previous, NULL, d);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, stamp_size, "%Y%m%dT%H%M%SZ", &tm);
    const char *names[3] = {"signing-ca.pem", "signing-ca.key", "chain.pem"};
    for (int i = 0; err == XB_OK && i < 3; i++) {
        char kept[96];
        const char *dot = strchr(names[i], '.');
        snprintf(kept, sizeof kept, "%.*s.%s%s", (int)(dot - names[i]), names[i], stamp, dot);
        err = xb_rotate_keep(&r, names[i], kept, d);
    }
    /* The key before the certificate: a reload between the two finds them mismatched and
     * keeps serving with the old pair, never a new certificate with the old key. */
    for (int i = 0; err == XB_OK && i < 3; i++)
        err = xb_rotate_install(&r, names[i == 0 ? 1 : i == 1 ? 0 : 2], d);
    /* Last: the old signing CA joins the ones whose certificates may still renew. */
    if (err == XB_OK)
        err = xb_rotate_install(&r, "previous.pem", d);
    if (err == XB_OK) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY);
        if (fd < 0 || fsync(fd) != 0)
            err = xb_fail(d, XB_ERR_IO, "cannot sync directory %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    X509_free(r.root);
    X509_free(r.old);
    X509_free(r.new_cert);
    EVP_PKEY_free(r.root_key);
    EVP_PKEY_free(r.new_key);
    sk_X509_pop_free(r.chain_rest, X509_free);
    sk_X509_pop_free(r.previous, X509_free);
    return err;
}
