/* The CA key behind the signer interface (src/ca/signer.h): encrypted PEM keys and their
 * passphrase sources, env: keys, the signature AlgorithmIdentifier the fast path now builds
 * from the public key (the very octets X509_sign writes), RSA certificates still byte for byte
 * the reference's, and a signer that cannot sign now (a token's) giving XB_ERR_CA_UNAVAILABLE
 * from issuance and CRL signing alike, with the reference path reported unavailable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca_internal.h"
#include "ca_reference.h"
#include "signer.h"

static char base_dir[64];
static const char *const types[] = {"ec-p256", "ec-p384", "rsa-2048"};

static void path_of(char *out, size_t cap, const char *type, const char *file)
{
    snprintf(out, cap, "%s/%s/%s", base_dir, type, file);
}

static int setup(void **state)
{
    (void)state;
    snprintf(base_dir, sizeof base_dir, "/tmp/xb-signer-XXXXXX");
    if (mkdtemp(base_dir) == NULL)
        return -1;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char dir[128];
        snprintf(dir, sizeof dir, "%s/%s", base_dir, types[i]);
        xb_diag d = {""};
        if (xb_ca_init_dir(dir, types[i], "Signer Test", &d) != XB_OK)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static xb_err load(const char *type, const char *key, const char *pass_file, xb_ca **ca, xb_diag *d)
{
    char cert[160];
    path_of(cert, sizeof cert, type, "signing-ca.pem");
    xb_ca_config cfg = {.cert_path = cert,
                        .key_path = key,
                        .validity_days = 365,
                        .subject_attributes = "",
                        .key_passphrase_file = pass_file};
    *ca = NULL;
    return xb_ca_load(&cfg, ca, d);
}

static EVP_PKEY *read_key(const char *type)
{
    char path[160];
    path_of(path, sizeof path, type, "signing-ca.key");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    return k;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

/* A DER request for a fresh P-256 key, CN = cn. */
static uint8_t *make_csr(const char *cn, size_t *len)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_REQ *r = X509_REQ_new();
    assert_non_null(k);
    assert_non_null(r);
    assert_true(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r), "CN", MBSTRING_UTF8,
                                           (const unsigned char *)cn, -1, -1, 0));
    assert_true(X509_REQ_set_pubkey(r, k));
    assert_true(X509_REQ_sign(r, k, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(r, &der);
    assert_true(n > 0);
    X509_REQ_free(r);
    EVP_PKEY_free(k);
    *len = (size_t)n;
    return der;
}

/* The AlgorithmIdentifier built from the public key is what X509_sign writes. */
static void test_sig_alg_as_x509_sign(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char key[160];
        path_of(key, sizeof key, types[i], "signing-ca.key");
        xb_ca *ca = NULL;
        xb_diag d = {""};
        assert_int_equal(load(types[i], key, NULL, &ca, &d), XB_OK);
        X509 *x = X509_new();
        assert_true(X509_set_version(x, X509_VERSION_3));
        assert_true(X509_set_pubkey(x, ca->key));
        assert_true(X509_sign(x, ca->key, ca->md) > 0);
        const X509_ALGOR *alg = NULL;
        X509_get0_signature(NULL, &alg, x);
        unsigned char *der = NULL;
        int n = i2d_X509_ALGOR(alg, &der);
        assert_int_equal((size_t)n, ca->fast.sig_alg_len);
        assert_memory_equal(der, ca->fast.sig_alg, (size_t)n);
        OPENSSL_free(der);
        X509_free(x);
        xb_ca_free(ca);
    }
}

/* RSA PKCS#1 v1.5 signatures are deterministic: the fast path's certificate is the
 * reference's, octet for octet, signature included. */
static void test_rsa_fast_is_reference(void **state)
{
    (void)state;
    char key[160];
    path_of(key, sizeof key, "rsa-2048", "signing-ca.key");
    xb_ca *ca = NULL;
    xb_diag d = {""};
    assert_int_equal(load("rsa-2048", key, NULL, &ca, &d), XB_OK);
    size_t len = 0;
    uint8_t *der = make_csr("dev-rsa-ca", &len);
    xb_csr *csr = NULL;
    xb_csr_ref *ref = NULL;
    assert_int_equal(xb_csr_parse(der, len, &csr, &d), XB_OK);
    assert_int_equal(xb_csr_parse_reference(der, len, &ref, &d), XB_OK);
    static const uint8_t serial[XB_CA_SERIAL_LEN] = {0x6a, 1,  2,  3,  4,  5,  6,  7,  8,  9,
                                                     10,   11, 12, 13, 14, 15, 16, 17, 18, 19};
    xb_issued fast, slow;
    time_t now = 1767225600;
    assert_int_equal(xb_ca_issue_at(ca, csr, "dev-rsa-ca", now, serial, &fast, &d), XB_OK);
    assert_int_equal(xb_ca_issue_reference(ca, ref, "dev-rsa-ca", now, serial, &slow, &d), XB_OK);
    assert_int_equal(fast.der_len, slow.der_len);
    assert_memory_equal(fast.der, slow.der, fast.der_len);
    xb_issued_clear(&fast);
    xb_issued_clear(&slow);
    xb_csr_free(csr);
    xb_csr_ref_free(ref);
    OPENSSL_free(der);
    xb_ca_free(ca);
}

/* Encrypted PKCS#8: the passphrase from a file (trailing newline dropped) or the environment;
 * wrong or missing ones refused with a message that says which, never the passphrase. */
static void test_encrypted_key(void **state)
{
    (void)state;
    const char *pass = "unit-pass phrase";
    char key[160], pass_file[160], wrong_file[160];
    path_of(key, sizeof key, "ec-p256", "encrypted.key");
    path_of(pass_file, sizeof pass_file, "ec-p256", "pass.txt");
    path_of(wrong_file, sizeof wrong_file, "ec-p256", "wrong.txt");
    EVP_PKEY *k = read_key("ec-p256");
    FILE *f = fopen(key, "w");
    assert_non_null(f);
    assert_true(PEM_write_PKCS8PrivateKey(f, k, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)pass));
    fclose(f);
    EVP_PKEY_free(k);
    write_text(pass_file, "unit-pass phrase\n");
    write_text(wrong_file, "not it\n");

    xb_ca *ca = NULL;
    xb_diag d = {""};
    assert_int_equal(load("ec-p256", key, pass_file, &ca, &d), XB_OK);
    assert_non_null(ca->key);
    xb_ca_free(ca);

    assert_int_equal(load("ec-p256", key, wrong_file, &ca, &d), XB_ERR_CONFIG);
    assert_null(ca);
    assert_non_null(strstr(d.msg, "wrong passphrase"));
    assert_non_null(strstr(d.msg, key));
    assert_null(strstr(d.msg, "not it"));

    unsetenv("XBOOT_CA_KEY_PASSPHRASE");
    assert_int_equal(load("ec-p256", key, NULL, &ca, &d), XB_ERR_CONFIG);
    assert_non_null(strstr(d.msg, "is encrypted: set key_passphrase_file"));

    setenv("XBOOT_CA_KEY_PASSPHRASE", pass, 1);
    assert_int_equal(load("ec-p256", key, NULL, &ca, &d), XB_OK);
    xb_ca_free(ca);
    unsetenv("XBOOT_CA_KEY_PASSPHRASE");
}

/* env:VARNAME holds the PEM text itself. */
static void test_env_key(void **state)
{
    (void)state;
    char path[160];
    path_of(path, sizeof path, "ec-p384", "signing-ca.key");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char pem[4096];
    size_t n = fread(pem, 1, sizeof pem - 1, f);
    fclose(f);
    pem[n] = '\0';
    setenv("XB_UNIT_CA_KEY", pem, 1);
    xb_ca *ca = NULL;
    xb_diag d = {""};
    assert_int_equal(load("ec-p384", "env:XB_UNIT_CA_KEY", NULL, &ca, &d), XB_OK);
    assert_string_equal(ca->signer->ops->source, "env");
    assert_string_equal(xb_ca_key_type(ca), "ec-p384");
    xb_ca_free(ca);
    unsetenv("XB_UNIT_CA_KEY");
    assert_int_equal(load("ec-p384", "env:XB_UNIT_CA_KEY", NULL, &ca, &d), XB_ERR_CONFIG);
    assert_non_null(strstr(d.msg, "XB_UNIT_CA_KEY"));
}

/* ---- a signer that cannot sign now, as a removed token's ---- */

static xb_err gone_sign(xb_signer *s, const EVP_MD *md, const uint8_t *dgst, size_t dgst_len,
                        uint8_t *sig, size_t *sig_len, xb_diag *d)
{
    (void)s, (void)md, (void)dgst, (void)dgst_len, (void)sig, (void)sig_len;
    return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "the token is gone");
}

static xb_err gone_check(xb_signer *s, xb_diag *d)
{
    (void)s;
    return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "the token is gone");
}

static void gone_free(xb_signer *s)
{
    EVP_PKEY_free(s->pub);
    free(s);
}

static const xb_signer_ops gone_ops = {"pkcs11", gone_sign, NULL, gone_check, gone_free};

static void test_unavailable_signer(void **state)
{
    (void)state;
    char key[160];
    path_of(key, sizeof key, "ec-p256", "signing-ca.key");
    xb_ca *ca = NULL;
    xb_diag d = {""};
    assert_int_equal(load("ec-p256", key, NULL, &ca, &d), XB_OK);
    /* Swap in a key-less signer for the same public key. */
    xb_signer *gone = calloc(1, sizeof *gone);
    assert_non_null(gone);
    gone->ops = &gone_ops;
    gone->pub = ca->signer->pub;
    assert_true(EVP_PKEY_up_ref(gone->pub));
    xb_signer_free(ca->signer);
    EVP_PKEY_free(ca->key);
    ca->key = NULL;
    ca->signer = gone;

    assert_int_equal(xb_ca_check_key(ca, &d), XB_ERR_CA_UNAVAILABLE);
    assert_int_equal(xb_ca_after_fork(ca, &d), XB_OK);
    size_t len = 0;
    uint8_t *der = make_csr("dev-gone", &len);
    xb_csr *csr = NULL;
    assert_int_equal(xb_csr_parse(der, len, &csr, &d), XB_OK);
    xb_issued out;
    assert_int_equal(xb_ca_issue(ca, csr, "dev-gone", time(NULL), &out, &d), XB_ERR_CA_UNAVAILABLE);
    assert_string_equal(d.msg, "the token is gone");
    uint8_t *crl = NULL;
    size_t crl_len = 0;
    assert_int_equal(
        xb_ca_crl_build(ca, NULL, 0, 1, time(NULL), time(NULL) + 3600, &crl, &crl_len, &d),
        XB_ERR_CA_UNAVAILABLE);
    xb_crosscheck res;
    static const uint8_t serial[XB_CA_SERIAL_LEN] = {1, 2, 3};
    assert_int_equal(xb_ca_crosscheck(ca, der, len, "dev-gone", time(NULL), serial, &res), 0);
    assert_non_null(strstr(res.mismatch, "no reference path"));
    xb_csr_free(csr);
    OPENSSL_free(der);
    xb_ca_free(ca);
}

/* A certificate whose notBefore is ahead of the clock is refused at load. */
static void test_not_yet_valid(void **state)
{
    (void)state;
    char dir[128], cert[160], key[160];
    snprintf(dir, sizeof dir, "%s/future", base_dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(cert, sizeof cert, "%s/ca.pem", dir);
    snprintf(key, sizeof key, "%s/ca.key", dir);
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    assert_true(X509_set_version(x, X509_VERSION_3));
    assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), 9));
    assert_true(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                           (const unsigned char *)"Future CA", -1, -1, 0));
    assert_true(X509_set_issuer_name(x, X509_get_subject_name(x)));
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 86400));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 10 * 86400));
    assert_true(X509_set_pubkey(x, k));
    X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
    assert_true(X509_add_ext(x, bc, -1));
    X509_EXTENSION_free(bc);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    FILE *f = fopen(cert, "w");
    assert_true(PEM_write_X509(f, x));
    fclose(f);
    f = fopen(key, "w");
    assert_true(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
    xb_ca_config cfg = {.cert_path = cert, .key_path = key, .validity_days = 365};
    xb_ca *ca = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_ca_load(&cfg, &ca, &d), XB_ERR_CONFIG);
    assert_non_null(strstr(d.msg, "is not valid before"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sig_alg_as_x509_sign), cmocka_unit_test(test_rsa_fast_is_reference),
        cmocka_unit_test(test_encrypted_key),        cmocka_unit_test(test_env_key),
        cmocka_unit_test(test_unavailable_signer),   cmocka_unit_test(test_not_yet_valid),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
