/* The fast issuance path (csr.c, issue.c) against the reference (ca_reference.h) on valid
 * requests: fixtures and generated keys under EC and RSA CAs, subjects, validity encodings,
 * other CA key types. The same certificate octets for the same serial and time; every
 * comparison goes through xb_ca_crosscheck, the fuzzers' oracle. Malformed and hand-built
 * requests: test_ca_fastpath_der.c, test_ca_fastpath_signed.c. */
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
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "der.h"
#include "xb_util.h"

enum { CA_P256, CA_P384, CA_RSA, CA_COUNT };
static const char *const ca_types[CA_COUNT] = {"ec-p256", "ec-p384", "rsa-2048"};
#include "crosscheck_support.h"
#include "csr_fixtures.h"

static EVP_PKEY *keys[5]; /* P-256, P-384, RSA-2048, RSA-3072, RSA-4096 */

/* Issued by both, with equal certificates (the request is valid and its CN the reg_id). */
static void agree_issued(xb_ca *ca, const uint8_t *der, size_t len, const char *reg_id)
{
    xb_crosscheck res;
    if (!xb_ca_crosscheck(ca, der, len, reg_id, fixed_now, serial_top_bit, &res))
        fail_msg("fast and reference paths disagree: %s", res.mismatch);
    if (res.parse_err != XB_OK || res.subject_err != XB_OK || res.issue_err != XB_OK)
        fail_msg("not issued: parse %s subject %s issue %s", xb_err_code(res.parse_err),
                 xb_err_code(res.subject_err), xb_err_code(res.issue_err));
}

/* ---- building requests ---- */

typedef struct subject_entry {
    const char *sn;
    int type; /* V_ASN1_* string type */
    const char *value;
    int same_rdn; /* joined to the previous relative name (multi-valued) */
} subject_entry;

static X509_REQ *new_req(EVP_PKEY *k, const subject_entry *e, size_t n)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_REQ_get_subject_name(req);
    for (size_t i = 0; i < n; i++) {
        int nid = OBJ_sn2nid(e[i].sn);
        X509_NAME_ENTRY *ne = X509_NAME_ENTRY_create_by_NID(NULL, nid, e[i].type, NULL, 0);
        assert_non_null(ne);
        /* Raw octets of the given type (BMP and Universal strings converted from UTF-8). */
        if (e[i].type == V_ASN1_BMPSTRING || e[i].type == V_ASN1_UNIVERSALSTRING) {
            ASN1_STRING *s = NULL;
            assert_true(ASN1_mbstring_copy(&s, (const unsigned char *)e[i].value, -1, MBSTRING_UTF8,
                                           e[i].type == V_ASN1_BMPSTRING
                                               ? B_ASN1_BMPSTRING
                                               : B_ASN1_UNIVERSALSTRING) > 0);
            assert_true(X509_NAME_ENTRY_set_data(ne, e[i].type, s->data, s->length));
            ASN1_STRING_free(s);
        } else {
            assert_true(X509_NAME_ENTRY_set_data(ne, e[i].type, (const unsigned char *)e[i].value,
                                                 (int)strlen(e[i].value)));
        }
        assert_true(X509_NAME_add_entry(name, ne, -1, e[i].same_rdn ? -1 : 0));
        X509_NAME_ENTRY_free(ne);
    }
    assert_true(X509_REQ_set_pubkey(req, k));
    return req;
}

static uint8_t *sign_req(X509_REQ *req, EVP_PKEY *k, const EVP_MD *md, int pss_salt, size_t *len)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(EVP_DigestSignInit(mctx, &pctx, md, NULL, k), 1);
    if (pss_salt >= 0) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt), 1);
    }
    assert_true(X509_REQ_sign_ctx(req, mctx) > 0);
    EVP_MD_CTX_free(mctx);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

static uint8_t *make_csr(EVP_PKEY *k, const subject_entry *e, size_t n, const EVP_MD *md,
                         int pss_salt, size_t *len)
{
    X509_REQ *req = new_req(k, e, n);
    uint8_t *der = sign_req(req, k, md, pss_salt, len);
    X509_REQ_free(req);
    return der;
}

/* ---- setup ---- */

static int setup(void **state)
{
    (void)state;
    cas_create();
    keys[0] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    keys[1] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    keys[2] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    keys[3] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    keys[4] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
    for (int i = 0; i < 5; i++)
        assert_non_null(keys[i]);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++)
        EVP_PKEY_free(keys[i]);
    return cas_remove();
}

/* ---- tests ---- */

static void test_fixtures_all_cas(void **state)
{
    (void)state;
    const char *attrs[] = {NULL, "", "O", "C,ST,L,O,OU"};
    for (int c = 0; c < CA_COUNT; c++) {
        for (size_t a = 0; a < sizeof attrs / sizeof attrs[0]; a++) {
            xb_ca *ca = load_ca(c, attrs[a]);
            for (size_t i = 0; i < N_FIXTURES; i++) {
                uint8_t *der;
                size_t len;
                read_fixture(fixtures[i], &der, &len);
                agree_issued(ca, der, len, NULL);
                free(der);
            }
            xb_ca_free(ca);
        }
    }
}

static void test_generated_keys(void **state)
{
    (void)state;
    const EVP_MD *mds[] = {EVP_sha256(), EVP_sha384(), EVP_sha512()};
    subject_entry subj[] = {{"C", V_ASN1_PRINTABLESTRING, "DE", 0},
                            {"O", V_ASN1_UTF8STRING, "Acme Devices", 0},
                            {"CN", V_ASN1_UTF8STRING, "device-0001", 0}};
    for (int c = 0; c < CA_COUNT; c++) {
        xb_ca *ca = load_ca(c, NULL);
        for (int k = 0; k < 5; k++) {
            for (int m = 0; m < 3; m++) {
                size_t len;
                uint8_t *der = make_csr(keys[k], subj, 3, mds[m], -1, &len);
                agree_issued(ca, der, len, "device-0001");
                OPENSSL_free(der);
            }
        }
        /* RSA-PSS with several salt lengths (the .NET client uses the digest length). */
        int salts[] = {0, 20, 32, 64};
        for (size_t s = 0; s < sizeof salts / sizeof salts[0]; s++) {
            size_t len;
            uint8_t *der = make_csr(keys[2], subj, 3, EVP_sha256(), salts[s], &len);
            agree_issued(ca, der, len, "device-0001");
            OPENSSL_free(der);
        }
        xb_ca_free(ca);
    }
}

static void test_subjects(void **state)
{
    (void)state;
    char long_cn[129];
    xb_ca *with = load_ca(CA_P256, NULL), *without = load_ca(CA_P256, "");
    xb_ca *rsa = load_ca(CA_RSA, "C,O,OU,L,ST,serialNumber");
    for (size_t n = 60; n <= 128; n++) {
        for (size_t i = 0; i < n; i++)
            long_cn[i] = "abcdefghijklmnopqrstuvwxyz0123456789-._:"[i % 40];
        long_cn[n - 1] = 'z';
        long_cn[n] = '\0';
        subject_entry e[] = {{"O", V_ASN1_UTF8STRING, "Org", 0},
                             {"CN", V_ASN1_UTF8STRING, long_cn, 0}};
        size_t len;
        uint8_t *der = make_csr(keys[0], e, 2, EVP_sha256(), -1, &len);
        agree_issued(with, der, len, long_cn);
        agree_issued(without, der, len, long_cn);
        OPENSSL_free(der);
    }
    /* UTF-8, BMP and Universal string CNs (the text goes through OpenSSL's RFC 2253 escaping). */
    const char *utf8_cns[] = {"d\xc3\xa9vice-1", "\xe6\xb8\xa9\xe5\xba\xa6", "cap\xf0\x9f\x93\xb7"};
    int types[] = {V_ASN1_UTF8STRING, V_ASN1_BMPSTRING, V_ASN1_UNIVERSALSTRING};
    for (size_t i = 0; i < 3; i++) {
        for (size_t t = 0; t < 3; t++) {
            if (types[t] == V_ASN1_BMPSTRING && i == 2)
                continue; /* outside the BMP */
            subject_entry e[] = {{"CN", types[t], utf8_cns[i], 0}, {"O", types[t], utf8_cns[i], 0}};
            size_t len;
            uint8_t *der = make_csr(keys[1], e, 2, EVP_sha384(), -1, &len);
            agree_issued(with, der, len, utf8_cns[i]);
            agree_issued(rsa, der, len, utf8_cns[i]);
            OPENSSL_free(der);
        }
    }
    /* Attribute orders, types, bounds, escapes, multi-valued names, two CNs, no CN. */
    subject_entry mixed[] = {
        {"C", V_ASN1_PRINTABLESTRING, "CA", 0},
        {"ST", V_ASN1_T61STRING, "AB", 0},
        {"L", V_ASN1_IA5STRING, "Calgary, AB", 0},
        {"O", V_ASN1_UTF8STRING, "#Hash+Plus", 0},
        {"OU", V_ASN1_BMPSTRING, "IT", 1},
        {"OU", V_ASN1_UTF8STRING, " lead", 0},
        {"serialNumber", V_ASN1_PRINTABLESTRING, "1234", 0},
        {"CN", V_ASN1_UTF8STRING, "dev-mixed", 0},
        {"OU", V_ASN1_UTF8STRING, "trail ", 0},
        {"C", V_ASN1_PRINTABLESTRING, "CAN", 0},
        {"O", V_ASN1_UTF8STRING, "", 0},
        {"OU", V_ASN1_UTF8STRING, "a\"b\\c<d>e;f=g", 0},
    };
    size_t n_mixed = sizeof mixed / sizeof mixed[0];
    for (size_t cut = 1; cut <= n_mixed; cut++) {
        size_t len;
        uint8_t *der = make_csr(keys[0], mixed + n_mixed - cut, cut, EVP_sha256(), -1, &len);
        agree(with, der, len, "dev-mixed");
        agree(without, der, len, "dev-mixed");
        agree(rsa, der, len, "dev-mixed");
        OPENSSL_free(der);
    }
    subject_entry two_cns[] = {{"CN", V_ASN1_UTF8STRING, "a", 0},
                               {"CN", V_ASN1_UTF8STRING, "b", 0}};
    size_t len;
    uint8_t *der = make_csr(keys[0], two_cns, 2, EVP_sha256(), -1, &len);
    agree(with, der, len, "a");
    OPENSSL_free(der);
    der = make_csr(keys[0], two_cns, 0, EVP_sha256(), -1, &len);
    agree(with, der, len, "no-cn");
    OPENSSL_free(der);
    xb_ca_free(with);
    xb_ca_free(without);
    xb_ca_free(rsa);
}

/* A CA valid from 1900 to 2100 (files in dir), to reach both time encodings; its key of
 * type "EC", "ED25519" or "RSA-PSS". */
static void make_long_ca(const char *dir, const char *type)
{
    EVP_PKEY *k = NULL;
    if (strcmp(type, "EC") == 0) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    } else {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
        assert_non_null(ctx);
        assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
        assert_int_equal(EVP_PKEY_generate(ctx, &k), 1);
        EVP_PKEY_CTX_free(ctx);
    }
    assert_non_null(k);
    X509 *x = X509_new();
    X509_NAME *n = X509_get_subject_name(x);
    assert_true(X509_set_version(x, X509_VERSION_3));
    assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), 7));
    assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"Long CA",
                                           -1, -1, 0));
    assert_true(X509_set_issuer_name(x, n));
    assert_true(ASN1_TIME_set_string(X509_getm_notBefore(x), "19000101000000Z"));
    assert_true(ASN1_TIME_set_string(X509_getm_notAfter(x), "21000101000000Z"));
    assert_true(X509_set_pubkey(x, k));
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const char *exts[][2] = {{"basicConstraints", "critical,CA:TRUE"},
                             {"keyUsage", "critical,keyCertSign"},
                             {"subjectKeyIdentifier", "hash"}};
    for (size_t i = 0; i < 3; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
        assert_non_null(e);
        assert_true(X509_add_ext(x, e, -1));
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, k, strcmp(type, "ED25519") == 0 ? NULL : EVP_sha256()) > 0);
    char path[300];
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/signing-ca.pem", dir);
    FILE *f = fopen(path, "w");
    assert_true(PEM_write_X509(f, x));
    fclose(f);
    snprintf(path, sizeof path, "%s/signing-ca.key", dir);
    f = fopen(path, "w");
    assert_true(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* UTCTime up to 2049, GeneralizedTime before 1950 and from 2050, times before 1970, notAfter
 * clipped to the CA's; and the limit of eight copied entries, emailAddress and DC. */
static void test_validity_and_copies(void **state)
{
    (void)state;
    char dir[200], cert[256], key[256];
    snprintf(dir, sizeof dir, "%s/long-ca", base_dir);
    make_long_ca(dir, "EC");
    snprintf(cert, sizeof cert, "%s/signing-ca.pem", dir);
    snprintf(key, sizeof key, "%s/signing-ca.key", dir);
    xb_ca_config cfg = {.cert_path = cert,
                        .key_path = key,
                        .chain_path = NULL,
                        .validity_days = 400,
                        .subject_attributes = "OU,emailAddress,DC,C"};
    xb_ca *ca = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_ca_load(&cfg, &ca, &d), XB_OK);
    subject_entry e[] = {
        {"OU", V_ASN1_UTF8STRING, "1", 0},
        {"OU", V_ASN1_UTF8STRING, "2", 0},
        {"OU", V_ASN1_UTF8STRING, "3", 0},
        {"OU", V_ASN1_UTF8STRING, "4", 0},
        {"OU", V_ASN1_UTF8STRING, "5", 0},
        {"CN", V_ASN1_UTF8STRING, "dev-times", 0},
        {"OU", V_ASN1_UTF8STRING, "6", 0},
        {"emailAddress", V_ASN1_IA5STRING, "a@b.example", 0},
        {"DC", V_ASN1_IA5STRING, "example", 0},
        {"OU", V_ASN1_UTF8STRING, "7", 0},
        {"OU", V_ASN1_UTF8STRING, "8", 0},
        {"OU", V_ASN1_UTF8STRING, "9", 0},
        {"OU", V_ASN1_UTF8STRING, "10", 0},
        {"C", V_ASN1_PRINTABLESTRING, "D", 0},
    };
    size_t len;
    uint8_t *der = make_csr(keys[0], e, sizeof e / sizeof e[0], EVP_sha256(), -1, &len);
    static const time_t times[] = {
        2524607880, /* 2049-12-31T23:58:00Z: notBefore UTCTime, notAfter GeneralizedTime */
        2524608300, /* 2050-01-01T00:05:00Z */
        -631151880, /* 1950-01-01T00:02:00Z: notBefore in 1949 */
        -100,       /* before 1970 */
        4089000000, /* 2099-07-27: notAfter clipped to 2100-01-01 */
        4102444800, /* 2100-01-01T00:00:00Z: the CA has expired */
        1767225600,
    };
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        xb_crosscheck res;
        if (!xb_ca_crosscheck(ca, der, len, "dev-times", times[i], serial_top_bit, &res))
            fail_msg("at %lld: %s", (long long)times[i], res.mismatch);
        assert_int_equal(res.issue_err, i == 5 ? XB_ERR_CA_UNAVAILABLE : XB_OK);
    }
    xb_issued out;
    xb_csr *csr = NULL;
    assert_int_equal(xb_csr_parse(der, len, &csr, &d), XB_OK);
    assert_int_equal(xb_ca_issue(ca, csr, "dev-times", 1767225600, &out, &d), XB_OK);
    /* Eight copied (OU 1..6, emailAddress, DC), OU 7..10 past the limit, C too short. */
    assert_string_equal(out.subject, "DC=example,emailAddress=a@b.example,OU=6,CN=dev-times,OU=5,"
                                     "OU=4,OU=3,OU=2,OU=1");
    xb_issued_clear(&out);
    xb_csr_free(csr);
    OPENSSL_free(der);
    xb_ca_free(ca);
}

/* CA keys that cannot sign a digest (Ed25519), or only with PSS (RSA-PSS keys), are refused at
 * load with a message saying which keys can be CA keys. */
static void test_other_ca_keys(void **state)
{
    (void)state;
    const char *types[] = {"ED25519", "RSA-PSS"};
    for (size_t t = 0; t < 2; t++) {
        char dir[200], cert[256], key[256];
        snprintf(dir, sizeof dir, "%s/ca-%s", base_dir, types[t]);
        make_long_ca(dir, types[t]);
        snprintf(cert, sizeof cert, "%s/signing-ca.pem", dir);
        snprintf(key, sizeof key, "%s/signing-ca.key", dir);
        xb_ca_config cfg = {.cert_path = cert, .key_path = key, .validity_days = 365};
        xb_ca *ca = NULL;
        xb_diag d = {""};
        assert_int_equal(xb_ca_load(&cfg, &ca, &d), XB_ERR_CONFIG);
        assert_null(ca);
        if (strstr(d.msg, "a CA key must be EC or RSA") == NULL || strstr(d.msg, key) == NULL)
            fail_msg("unclear refusal: %s", d.msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_all_cas), cmocka_unit_test(test_generated_keys),
        cmocka_unit_test(test_subjects),         cmocka_unit_test(test_validity_and_copies),
        cmocka_unit_test(test_other_ca_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
