/* The device side of EST (lib/est.h) and renewal (lib/renew.h, xboot_renew_due): the base64
 * certs-only PKCS#7 parser against blobs OpenSSL builds here (whitespace and CR LF tolerated,
 * garbage refused), the text/plain error parser, URLs and labels, the due arithmetic, and
 * xboot_renew_due on stored certificates with crafted validity (a valid one, an expired one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "crypto.h"
#include "est.h"
#include "renew.h"
#include "store.h"
#include "xb_base64.h"

/* ---- fixtures: a root and leaf certificates with chosen validity ---- */

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    return k;
}

static void add_ext(X509 *issuer, X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_true(X509_add_ext(x, ext, -1));
    X509_EXTENSION_free(ext);
}

/* A certificate for key, valid from now+from_s to now+to_s, signed by (issuer, ikey), or
 * self-signed when issuer is NULL (then a CA). */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, long from_s,
                       long to_s)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_true(X509_set_version(x, X509_VERSION_3));
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(random() & 0x7fffffff) + 1);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, key);
    X509 *signer = issuer ? issuer : x;
    add_ext(signer, x, NID_basic_constraints, issuer ? "critical,CA:FALSE" : "critical,CA:TRUE");
    if (issuer != NULL)
        add_ext(signer, x, NID_ext_key_usage, "clientAuth");
    assert_true(X509_sign(x, issuer ? ikey : key, EVP_sha256()) > 0);
    return x;
}

/* DER of a certs-only PKCS#7 (SignedData, no signers) of certs. */
static uint8_t *certs_only(X509 **certs, int n, int *len)
{
    PKCS7 *p7 = PKCS7_new();
    assert_non_null(p7);
    assert_true(PKCS7_set_type(p7, NID_pkcs7_signed));
    assert_true(PKCS7_content_new(p7, NID_pkcs7_data));
    for (int i = 0; i < n; i++)
        assert_true(PKCS7_add_certificate(p7, certs[i]));
    unsigned char *der = NULL;
    *len = i2d_PKCS7(p7, &der);
    assert_true(*len > 0);
    PKCS7_free(p7);
    return der;
}

/* base64 of der, with sep inserted every `every` characters. */
static char *b64_wrapped(const uint8_t *der, int len, int every, const char *sep)
{
    char *plain = xb_base64_encode(der, (size_t)len);
    size_t n = strlen(plain), out_len = n + (n / (size_t)every + 2) * strlen(sep) + 1;
    char *out = calloc(1, out_len);
    for (size_t i = 0; i < n; i += (size_t)every) {
        strncat(out, plain + i, (size_t)every);
        strcat(out, sep);
    }
    free(plain);
    return out;
}

/* ---- PKCS#7 ---- */

static void test_pkcs7_certs_only(void **state)
{
    (void)state;
    EVP_PKEY *rk = new_key(), *lk = new_key();
    X509 *root = make_cert("root", rk, NULL, NULL, -60, 3600);
    X509 *leaf = make_cert("dev-1", lk, root, rk, -60, 3600);
    X509 *both[] = {leaf, root};
    int len = 0;
    uint8_t *der = certs_only(both, 2, &len);
    const char *seps[] = {"\n", "\r\n", " \t", ""};
    for (size_t i = 0; i < sizeof seps / sizeof seps[0]; i++) {
        char *body = b64_wrapped(der, len, i == 1 ? 76 : 64, seps[i]);
        STACK_OF(X509) *out = NULL;
        xbc_detail d = {""};
        assert_int_equal(xbe_certs((uint8_t *)body, strlen(body), &out, &d), XBOOT_OK);
        assert_int_equal(sk_X509_num(out), 2);
        assert_int_equal(X509_cmp(sk_X509_value(out, 0), leaf), 0);
        assert_int_equal(X509_cmp(sk_X509_value(out, 1), root), 0);
        sk_X509_pop_free(out, X509_free);
        free(body);
    }
    OPENSSL_free(der);
    X509_free(leaf);
    X509_free(root);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(lk);
}

static void expect_bad(const char *body, size_t len)
{
    STACK_OF(X509) *out = NULL;
    xbc_detail d = {""};
    assert_int_equal(xbe_certs((const uint8_t *)body, len, &out, &d), XBOOT_ERR_BAD_RESPONSE);
    assert_null(out);
    assert_true(d.msg[0] != '\0');
}

static void test_pkcs7_garbage(void **state)
{
    (void)state;
    expect_bad("", 0);
    expect_bad("  \r\n", 4);
    expect_bad("not base64 at all!", 18);
    expect_bad("AAAA", 4);     /* base64, not DER */
    expect_bad("MAMCAQA=", 8); /* DER, not PKCS#7 */
    /* a PKCS#7 without certificates */
    int len = 0;
    uint8_t *der = certs_only(NULL, 0, &len);
    char *b64 = xb_base64_encode(der, (size_t)len);
    expect_bad(b64, strlen(b64));
    free(b64);
    /* a certificate alone (not wrapped) */
    EVP_PKEY *k = new_key();
    X509 *x = make_cert("root", k, NULL, NULL, -60, 60);
    unsigned char *cder = NULL;
    int clen = i2d_X509(x, &cder);
    b64 = xb_base64_encode(cder, (size_t)clen);
    expect_bad(b64, strlen(b64));
    /* trailing bytes after the PKCS#7 */
    X509 *one[] = {x};
    uint8_t *p7 = certs_only(one, 1, &len);
    uint8_t *longer = malloc((size_t)len + 1);
    memcpy(longer, p7, (size_t)len);
    longer[len] = 0;
    char *b64b = xb_base64_encode(longer, (size_t)len + 1);
    expect_bad(b64b, strlen(b64b));
    free(b64b);
    free(longer);
    OPENSSL_free(p7);
    free(b64);
    OPENSSL_free(cder);
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* ---- request, errors, URLs ---- */

static void test_request_lines(void **state)
{
    (void)state;
    uint8_t csr[200];
    for (size_t i = 0; i < sizeof csr; i++)
        csr[i] = (uint8_t)i;
    char *body = NULL;
    size_t len = 0;
    xbc_detail d = {""};
    assert_int_equal(xbe_request(csr, sizeof csr, &body, &len, &d), XBOOT_OK);
    assert_int_equal(strlen(body), len);
    /* 200 bytes -> 268 base64 characters: 4 lines of 64 and one of 12, each ending in \n */
    assert_int_equal(len, 268 + 5);
    for (size_t i = 64; i < len; i += 65)
        assert_int_equal(body[i], '\n');
    assert_int_equal(body[len - 1], '\n');
    free(body);
}

static void test_error_text(void **state)
{
    (void)state;
    char code[64], msg[128];
    const char *b = "device_unknown: device x is not registered\r\n";
    xbe_error((const uint8_t *)b, strlen(b), code, sizeof code, msg, sizeof msg);
    assert_string_equal(code, "device_unknown");
    assert_string_equal(msg, "device x is not registered");
    b = "Not Found";
    xbe_error((const uint8_t *)b, strlen(b), code, sizeof code, msg, sizeof msg);
    assert_string_equal(code, "");
    assert_string_equal(msg, "Not Found");
    b = "bad\x1b[2J: x";
    xbe_error((const uint8_t *)b, strlen(b), code, sizeof code, msg, sizeof msg);
    assert_string_equal(code, "");
    assert_null(strchr(msg, 0x1b));
    xbe_error(NULL, 0, code, sizeof code, msg, sizeof msg);
    assert_string_equal(msg, "");
}

static void test_urls_and_labels(void **state)
{
    (void)state;
    char *url = NULL;
    xbc_detail d = {""};
    assert_int_equal(xbe_url("https://h:8443/api/certificate?code=k", NULL, "cacerts", &url, &d),
                     XBOOT_OK);
    assert_string_equal(url, "https://h:8443/.well-known/est/cacerts");
    free(url);
    assert_int_equal(xbe_url("https://h/api/certificate", "prof-1", "simpleenroll", &url, &d),
                     XBOOT_OK);
    assert_string_equal(url, "https://h/.well-known/est/prof-1/simpleenroll");
    free(url);
    assert_true(xbe_label_valid("a.b_c-1"));
    assert_false(xbe_label_valid(""));
    assert_false(xbe_label_valid("."));
    assert_false(xbe_label_valid(".."));
    assert_false(xbe_label_valid("a/b"));
    assert_false(xbe_label_valid("a?b"));
    assert_false(xbe_label_valid("a%2f"));
}

/* ---- renewal ---- */

static void test_due_arithmetic(void **state)
{
    (void)state;
    /* lifetime 1000 s from t=1000 */
    assert_false(xbrn_due_at(1000, 2000, 1799, 80));
    assert_true(xbrn_due_at(1000, 2000, 1800, 80));
    assert_true(xbrn_due_at(1000, 2000, 2500, 80));
    assert_false(xbrn_due_at(1000, 2000, 1009, 1));
    assert_true(xbrn_due_at(1000, 2000, 1010, 1));
    assert_false(xbrn_due_at(1000, 2000, 1000, 99));
    assert_true(xbrn_due_at(1000, 1000, 0, 80)); /* no lifetime: always due */
    /* ten years, no overflow */
    int64_t ten_years = 10LL * 365 * 86400;
    assert_false(xbrn_due_at(0, ten_years, ten_years / 2, 80));
    assert_true(xbrn_due_at(0, ten_years, ten_years * 8 / 10, 80));
}

/* Store (key, cert, root as chain) in dir and ask xboot_renew_due with threshold pct. */
static xboot_err due_of(const char *dir, EVP_PKEY *key, X509 *cert, X509 *root, int pct, int *due)
{
    char *key_pem = NULL, *cert_pem = NULL, *chain_pem = NULL, *root_pem = NULL;
    size_t kl = 0, cl = 0, hl = 0, rl = 0;
    xbc_detail d = {""};
    assert_int_equal(xbc_key_to_pem(key, &key_pem, &kl, &d), XBOOT_OK);
    assert_int_equal(xbc_certs_to_pem(&cert, 1, &cert_pem, &cl, &d), XBOOT_OK);
    assert_int_equal(xbc_certs_to_pem(&root, 1, &root_pem, &rl, &d), XBOOT_OK);
    assert_int_equal(xbc_certs_to_pem(NULL, 0, &chain_pem, &hl, &d), XBOOT_OK);
    xbs_files files = {key_pem, kl, cert_pem, cl, chain_pem, hl, NULL, 0};
    int lock = -1;
    assert_int_equal(xbs_lock(dir, 1000, &lock, &d), XBOOT_OK);
    assert_int_equal(xbs_write(dir, &files, NULL, &d), XBOOT_OK);
    xbs_unlock(lock);
    xboot_client *c = NULL;
    assert_int_equal(xboot_client_new(&c), XBOOT_OK);
    assert_int_equal(xboot_set_trust_anchor_pem(c, root_pem, rl), XBOOT_OK);
    assert_int_equal(xboot_set_registration_id(c, "dev-1"), XBOOT_OK);
    assert_int_equal(xboot_set_store_dir(c, dir), XBOOT_OK);
    assert_int_equal(xboot_set_renew_threshold(c, 0), XBOOT_ERR_INVALID_ARGUMENT);
    assert_int_equal(xboot_set_renew_threshold(c, 100), XBOOT_ERR_INVALID_ARGUMENT);
    assert_int_equal(xboot_set_renew_threshold(c, pct), XBOOT_OK);
    xboot_err e = xboot_renew_due(c, due);
    if (e == XBOOT_OK)
        assert_non_null(xboot_certificate(c));
    xboot_client_free(c);
    free(key_pem);
    free(cert_pem);
    free(chain_pem);
    free(root_pem);
    return e;
}

static void test_renew_due_stored(void **state)
{
    (void)state;
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/xb-est-unit.%d", (int)getpid());
    EVP_PKEY *rk = new_key(), *lk = new_key();
    X509 *root = make_cert("root", rk, NULL, NULL, -86400, 86400 * 10);
    /* 30 of 100 minutes passed */
    X509 *young = make_cert("dev-1", lk, root, rk, -1800, 4200);
    int due = -1;
    assert_int_equal(due_of(dir, lk, young, root, 80, &due), XBOOT_OK);
    assert_int_equal(due, 0);
    assert_int_equal(due_of(dir, lk, young, root, 25, &due), XBOOT_OK);
    assert_int_equal(due, 1);
    /* 90 of 100 minutes passed: due at the default */
    X509 *old = make_cert("dev-1", lk, root, rk, -5400, 600);
    assert_int_equal(due_of(dir, lk, old, root, 80, &due), XBOOT_OK);
    assert_int_equal(due, 1);
    /* expired, and not yet valid: not renewable */
    X509 *expired = make_cert("dev-1", lk, root, rk, -7200, -60);
    assert_int_equal(due_of(dir, lk, expired, root, 80, &due), XBOOT_ERR_CERT_EXPIRED);
    X509 *future = make_cert("dev-1", lk, root, rk, 3600, 7200);
    assert_int_equal(due_of(dir, lk, future, root, 80, &due), XBOOT_ERR_CERT_EXPIRED);
    /* a certificate for another key is not "expired": xboot_load's reason stands */
    EVP_PKEY *other = new_key();
    assert_int_equal(due_of(dir, other, young, root, 80, &due), XBOOT_ERR_CERT_KEY_MISMATCH);
    EVP_PKEY_free(other);
    X509_free(young);
    X509_free(old);
    X509_free(expired);
    X509_free(future);
    X509_free(root);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(lk);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkcs7_certs_only), cmocka_unit_test(test_pkcs7_garbage),
        cmocka_unit_test(test_request_lines),    cmocka_unit_test(test_error_text),
        cmocka_unit_test(test_urls_and_labels),  cmocka_unit_test(test_due_arithmetic),
        cmocka_unit_test(test_renew_due_stored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
