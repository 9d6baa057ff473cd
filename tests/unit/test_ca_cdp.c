/* The CRL Distribution Points extension ([ca] crl_url, ca_cdp.c): the hand-written DER equals
 * OpenSSL's for every URL length; with a URL set the fast and reference issuers still agree
 * byte for byte (xb_ca_crosscheck) under EC and RSA CAs, and the certificate names exactly
 * that URL; without one, or after unsetting it, the certificate is what it was before; bad
 * URLs are refused with a message naming the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

enum { CA_P256, CA_P384, CA_RSA, CA_COUNT };
static const char *const ca_types[CA_COUNT] = {"ec-p256", "ec-p384", "rsa-2048"};
#include "crosscheck_support.h"
#include "csr_fixtures.h"

/* The request most certificates here are issued for, parsed once, and its CN. */
static xb_csr *csr0;
static char reg_id0[XB_REGID_MAX + 1];

static int setup(void **state)
{
    (void)state;
    cas_create();
    uint8_t *der;
    size_t len;
    read_fixture(fixtures[0], &der, &len);
    xb_diag d = {""};
    assert_int_equal(xb_csr_parse(der, len, &csr0, &d), XB_OK);
    assert_int_equal(xb_csr_common_name(csr0, reg_id0, &d), XB_OK);
    free(der);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    xb_csr_free(csr0);
    return cas_remove();
}

/* "http://" followed by host and path characters up to len bytes in all. */
static void url_of_len(char *out, size_t len)
{
    static const char fill[] = "pki.example.com/crl/abcdefghijklmnopqrstuvwxyz0123456789-._~";
    memcpy(out, "http://", 7);
    for (size_t i = 7; i < len; i++)
        out[i] = fill[(i - 7) % (sizeof fill - 1)];
    out[len] = '\0';
}

/* The URLs the certificates are checked with: the DER length octets change form at 128 and 256
 * octets, and commas would split OpenSSL's configuration syntax were the reference to use it. */
static char long_urls[3][XB_CA_CRL_URL_MAX + 1];
static const char *urls[] = {
    "http://pki.example.com/crl",
    "HTTPS://pki.example.com:8443/a,b;c?x=1&y=%20#f",
    long_urls[0],
    long_urls[1],
    long_urls[2],
};
#define N_URLS (sizeof urls / sizeof urls[0])

static void make_long_urls(void)
{
    url_of_len(long_urls[0], 120);
    url_of_len(long_urls[1], 250);
    url_of_len(long_urls[2], XB_CA_CRL_URL_MAX);
}

/* cert holds a non-critical cRLDistributionPoints as its last extension, with one
 * DistributionPoint whose fullName is the one URI url, and no reasons or cRLIssuer. */
static void assert_cdp(const uint8_t *der, size_t len, const char *url)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    int n = X509_get_ext_count(x);
    assert_int_equal(n, 6);
    X509_EXTENSION *ext = X509_get_ext(x, n - 1);
    assert_int_equal(OBJ_obj2nid(X509_EXTENSION_get_object(ext)), NID_crl_distribution_points);
    assert_int_equal(X509_EXTENSION_get_critical(ext), 0);
    int crit = -1;
    CRL_DIST_POINTS *cdp = X509_get_ext_d2i(x, NID_crl_distribution_points, &crit, NULL);
    assert_non_null(cdp);
    assert_int_equal(sk_DIST_POINT_num(cdp), 1);
    DIST_POINT *dp = sk_DIST_POINT_value(cdp, 0);
    assert_null(dp->reasons);
    assert_null(dp->CRLissuer);
    assert_non_null(dp->distpoint);
    assert_int_equal(dp->distpoint->type, 0);
    assert_int_equal(sk_GENERAL_NAME_num(dp->distpoint->name.fullname), 1);
    GENERAL_NAME *gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);
    int type = -1;
    const ASN1_IA5STRING *uri = GENERAL_NAME_get0_value(gn, &type);
    assert_int_equal(type, GEN_URI);
    assert_int_equal(ASN1_STRING_length(uri), (int)strlen(url));
    assert_memory_equal(ASN1_STRING_get0_data(uri), url, strlen(url));
    CRL_DIST_POINTS_free(cdp);
    X509_free(x);
}

static void assert_no_cdp(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    assert_int_equal(X509_get_ext_count(x), 5);
    assert_int_equal(X509_get_ext_by_NID(x, NID_crl_distribution_points, -1), -1);
    X509_free(x);
}

/* csr0's certificate with a fixed serial and time, so that certificates can be compared. */
static void issue_fixed(xb_ca *ca, xb_issued *out)
{
    xb_diag d = {""};
    if (xb_ca_issue_at(ca, csr0, reg_id0, fixed_now, serial_top_bit, out, &d) != XB_OK)
        fail_msg("issue: %s", d.msg);
}

/* Every fixture request: issued by both paths, alike. */
static void agree_all(xb_ca *ca)
{
    for (size_t i = 0; i < N_FIXTURES; i++) {
        uint8_t *der;
        size_t len;
        read_fixture(fixtures[i], &der, &len);
        assert_int_equal(agree(ca, der, len, NULL), XB_OK);
        free(der);
    }
}

/* ---- tests ---- */

/* The two encoders of ca_cdp.c, for every URL length accepted. */
static void test_encoders_agree(void **state)
{
    (void)state;
    char url[XB_CA_CRL_URL_MAX + 1];
    for (size_t len = 8; len <= XB_CA_CRL_URL_MAX; len++) {
        url_of_len(url, len);
        X509_EXTENSION *ext = xb_ca_cdp_reference(url);
        assert_non_null(ext);
        unsigned char *want = NULL;
        int want_len = i2d_X509_EXTENSION(ext, &want);
        assert_true(want_len > 0);
        uint8_t *got = NULL;
        size_t got_len = 0;
        assert_true(xb_ca_cdp_der(url, &got, &got_len));
        if (got_len != (size_t)want_len || memcmp(got, want, got_len) != 0)
            fail_msg("URL of %zu bytes: hand DER (%zu octets) differs from OpenSSL's (%d)", len,
                     got_len, want_len);
        OPENSSL_free(got);
        OPENSSL_free(want);
        X509_EXTENSION_free(ext);
    }
}

/* Every fixture request under every CA type and URL: fast and reference agree, and the
 * certificate carries the URL. */
static void test_crosscheck_with_url(void **state)
{
    (void)state;
    make_long_urls();
    for (int c = 0; c < CA_COUNT; c++) {
        xb_ca *ca = load_ca(c, NULL);
        for (size_t u = 0; u < N_URLS; u++) {
            xb_diag d = {""};
            if (xb_ca_set_crl_url(ca, urls[u], &d) != XB_OK)
                fail_msg("%s: %s", urls[u], d.msg);
            agree_all(ca);
            xb_issued out;
            issue_fixed(ca, &out);
            assert_cdp(out.der, out.der_len, urls[u]);
            xb_issued_clear(&out);
        }
        xb_ca_free(ca);
    }
}

/* Unset (never set, NULL, ""): no extension, and the same octets as before any URL was set.
 * RSA PKCS#1 v1.5 signatures are deterministic, so whole certificates compare. */
static void test_unset_is_unchanged(void **state)
{
    (void)state;
    xb_ca *ca = load_ca(CA_RSA, NULL);
    xb_issued before, with, after_null, after_empty;
    issue_fixed(ca, &before);
    assert_no_cdp(before.der, before.der_len);
    agree_all(ca);
    xb_diag d = {""};
    assert_int_equal(xb_ca_set_crl_url(ca, "http://pki.example.com/crl", &d), XB_OK);
    issue_fixed(ca, &with);
    assert_cdp(with.der, with.der_len, "http://pki.example.com/crl");
    assert_int_equal(xb_ca_set_crl_url(ca, NULL, &d), XB_OK);
    issue_fixed(ca, &after_null);
    assert_int_equal(xb_ca_set_crl_url(ca, "http://x.example/", &d), XB_OK);
    assert_int_equal(xb_ca_set_crl_url(ca, "", &d), XB_OK);
    issue_fixed(ca, &after_empty);
    assert_int_equal(after_null.der_len, before.der_len);
    assert_memory_equal(after_null.der, before.der, before.der_len);
    assert_int_equal(after_empty.der_len, before.der_len);
    assert_memory_equal(after_empty.der, before.der, before.der_len);
    /* The CRL the CA signs names no distribution point whatever crl_url says. */
    assert_int_equal(xb_ca_set_crl_url(ca, "http://pki.example.com/crl", &d), XB_OK);
    uint8_t *crl = NULL;
    size_t crl_len = 0;
    assert_int_equal(
        xb_ca_crl_build(ca, NULL, 0, 1, fixed_now, fixed_now + 3600, &crl, &crl_len, &d), XB_OK);
    const unsigned char *p = crl;
    X509_CRL *x = d2i_X509_CRL(NULL, &p, (long)crl_len);
    assert_non_null(x);
    assert_int_equal(X509_CRL_get_ext_count(x), 2);
    X509_CRL_free(x);
    free(crl);
    xb_issued_clear(&before);
    xb_issued_clear(&with);
    xb_issued_clear(&after_null);
    xb_issued_clear(&after_empty);
    xb_ca_free(ca);
}

/* Refused with XB_ERR_CONFIG and a message naming the key; the URL set before stays. */
static void test_bad_urls(void **state)
{
    (void)state;
    char too_long[XB_CA_CRL_URL_MAX + 2];
    url_of_len(too_long, XB_CA_CRL_URL_MAX + 1);
    const char *bad[] = {
        "pki.example.com/crl",
        "ftp://pki.example.com/crl",
        "http:/pki.example.com",
        "http://",
        "https:///crl",
        "http://pki.example.com/a b",
        "http://pki.example.com/\t",
        "http://pki.example.com/\x7f",
        "http://pki.example.com/\xc3\xa9",
        too_long,
    };
    xb_ca *ca = load_ca(CA_P256, NULL);
    xb_diag d = {""};
    assert_int_equal(xb_ca_set_crl_url(ca, "http://good.example/crl", &d), XB_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d.msg[0] = '\0';
        if (xb_ca_set_crl_url(ca, bad[i], &d) != XB_ERR_CONFIG)
            fail_msg("accepted: %s", bad[i]);
        if (strncmp(d.msg, "crl_url ", 8) != 0)
            fail_msg("message for '%s' does not name crl_url: %s", bad[i], d.msg);
    }
    assert_int_equal(xb_ca_check_crl_url(too_long, "[ca] crl_url", &d), XB_ERR_CONFIG);
    assert_non_null(strstr(d.msg, "[ca] crl_url is 513 bytes long, more than 512"));
    xb_issued out;
    issue_fixed(ca, &out);
    assert_cdp(out.der, out.der_len, "http://good.example/crl");
    xb_issued_clear(&out);
    const char *good[] = {"http://a", "https://a", "HTTP://A/crl", "http://[::1]:8080/crl"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(xb_ca_check_crl_url(good[i], "crl_url", &d), XB_OK);
    xb_ca_free(ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoders_agree),
        cmocka_unit_test(test_crosscheck_with_url),
        cmocka_unit_test(test_unset_is_unchanged),
        cmocka_unit_test(test_bad_urls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
