/* EST without HTTP: base64 line framing, the certs-only PKCS#7, CsrAttrs, paths and media
 * types, HTTP Basic with colons in IDs, tls-unique, and what is read from a CSR's attributes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "est_server.h"
#include "policy.h"
#include "xb_base64.h"

static void test_base64_lines(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 2, 3, 47, 48, 49, 95, 96, 97, 1000};
    uint8_t in[1000];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 7 + 3);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k], len = 0;
        char *s = xb_base64_encode_lines(in, n, &len);
        assert_non_null(s);
        assert_int_equal(strlen(s), len);
        if (n == 0) {
            assert_string_equal(s, "");
        } else {
            /* Every line 64 characters but the last (1..64), each followed by "\n". */
            assert_true(s[len - 1] == '\n');
            size_t line = 0;
            for (size_t i = 0; i < len; i++) {
                if (s[i] == '\n') {
                    assert_true(line == 64 || (i == len - 1 && line >= 1 && line <= 64));
                    line = 0;
                } else {
                    line++;
                }
            }
            assert_null(strchr(s, '\r'));
        }
        uint8_t *out = NULL;
        size_t out_len = 0;
        assert_int_equal(xb_base64_decode_ws(s, len, &out, &out_len), 0);
        assert_int_equal(out_len, n);
        assert_memory_equal(out, in, n);
        free(out);
        free(s);
    }
}

static void test_base64_decode_ws(void **state)
{
    (void)state;
    uint8_t *out = NULL;
    size_t n = 0;
    assert_int_equal(xb_base64_decode_ws(" TW\r\nFu\tYQ==\n", 13, &out, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "Mana", 4);
    free(out);
    assert_int_equal(xb_base64_decode_ws("TW-u", 4, &out, &n), -1);
    assert_int_equal(xb_base64_decode_ws("TWF", 3, &out, &n), -1);
    assert_int_equal(xb_base64_decode_ws("TW\0u", 4, &out, &n), -1);
}

static EVP_PKEY *ec_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static X509 *self_signed(const char *cn, EVP_PKEY *key)
{
    X509 *x = X509_new();
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static void test_pkcs7_certs_only(void **state)
{
    (void)state;
    EVP_PKEY *key = ec_key();
    X509 *a = self_signed("first", key), *b = self_signed("second", key);
    unsigned char *da = NULL, *db = NULL;
    int la = i2d_X509(a, &da), lb = i2d_X509(b, &db);
    const uint8_t *ders[2] = {da, db};
    size_t lens[2] = {(size_t)la, (size_t)lb};
    uint8_t *out = NULL;
    size_t out_len = 0;
    xb_diag d = {""};
    assert_int_equal(xb_est_pkcs7_certs(ders, lens, 2, &out, &out_len, &d), XB_OK);
    const unsigned char *p = out;
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)out_len);
    assert_non_null(p7);
    assert_true(p == out + out_len);
    assert_int_equal(OBJ_obj2nid(p7->type), NID_pkcs7_signed);
    assert_int_equal(OBJ_obj2nid(p7->d.sign->contents->type), NID_pkcs7_data);
    assert_null(p7->d.sign->contents->d.data); /* no eContent */
    assert_int_equal(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info), 0);
    STACK_OF(X509) *certs = p7->d.sign->cert;
    assert_int_equal(sk_X509_num(certs), 2);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 0), a), 0); /* order kept */
    assert_int_equal(X509_cmp(sk_X509_value(certs, 1), b), 0);
    PKCS7_free(p7);
    /* Byte for byte what OpenSSL itself encodes for the same certificates (the encoder builds
     * the DER by hand, for speed). */
    PKCS7 *ref = PKCS7_new();
    assert_true(ref != NULL && PKCS7_set_type(ref, NID_pkcs7_signed) &&
                PKCS7_content_new(ref, NID_pkcs7_data) && PKCS7_set_detached(ref, 1) &&
                PKCS7_add_certificate(ref, a) && PKCS7_add_certificate(ref, b));
    unsigned char *ref_der = NULL;
    int ref_len = i2d_PKCS7(ref, &ref_der);
    assert_int_equal(ref_len, (int)out_len);
    assert_memory_equal(ref_der, out, out_len);
    OPENSSL_free(ref_der);
    PKCS7_free(ref);
    OPENSSL_free(out);
    /* Not one whole DER element: refused, not encoded. */
    static const uint8_t junk[] = {0x02, 0x01, 0x00};
    static const uint8_t cut[] = {0x30, 0x05, 0x02};
    static const uint8_t extra[] = {0x30, 0x00, 0x00};
    const uint8_t *jd[3] = {junk, cut, extra};
    size_t jl[3] = {sizeof junk, sizeof cut, sizeof extra};
    for (int i = 0; i < 3; i++)
        assert_int_equal(xb_est_pkcs7_certs(&jd[i], &jl[i], 1, &out, &out_len, &d), XB_ERR_CRYPTO);
    OPENSSL_free(da);
    OPENSSL_free(db);
    X509_free(a);
    X509_free(b);
    EVP_PKEY_free(key);
}

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

static void test_csrattrs(void **state)
{
    (void)state;
    static const uint8_t want_p256[] = {
        0x30, 0x26, 0x06, 0x03, 0x55, 0x04, 0x03,                               /* commonName */
        0x30, 0x15, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,       /* id-ecPublicKey */
        0x31, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, /* P-256 */
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, /* ecdsa-with-SHA256 */
    };
    static const uint8_t challenge[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                        0xf7, 0x0d, 0x01, 0x09, 0x07};
    static const uint8_t p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
    static const uint8_t sha256_rsa[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                         0xf7, 0x0d, 0x01, 0x01, 0x0b};
    uint8_t *out = NULL;
    size_t n = 0;
    xb_diag d = {""};
    assert_int_equal(xb_est_csrattrs("ec-p256", 0, &out, &n, &d), XB_OK);
    assert_int_equal(n, sizeof want_p256);
    assert_memory_equal(out, want_p256, n);
    OPENSSL_free(out);
    static const struct {
        const char *type;
        const uint8_t *needle;
        size_t len;
    } cases[] = {{"ec-p384", p384, sizeof p384}, {"rsa", sha256_rsa, sizeof sha256_rsa}};
    for (size_t i = 0; i < 2; i++) {
        for (int pop = 0; pop <= 1; pop++) {
            assert_int_equal(xb_est_csrattrs(cases[i].type, pop, &out, &n, &d), XB_OK);
            /* Well-formed DER: a SEQUENCE of OIDs and Attributes. */
            const unsigned char *p = out;
            ASN1_SEQUENCE_ANY *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)n);
            assert_non_null(seq);
            assert_true(p == out + n);
            sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
            assert_true(contains(out, n, cases[i].needle, cases[i].len));
            assert_int_equal(contains(out, n, challenge, sizeof challenge), pop);
            OPENSSL_free(out);
        }
    }
}

static void test_media_type(void **state)
{
    (void)state;
    assert_true(xb_est_media_type_is("application/pkcs10", "application/pkcs10"));
    assert_true(xb_est_media_type_is(" Application/PKCS10 ; name=x.p10", "application/pkcs10"));
    assert_false(xb_est_media_type_is(NULL, "application/pkcs10"));
    assert_false(xb_est_media_type_is("application/pkcs10x", "application/pkcs10"));
    assert_false(xb_est_media_type_is("application/json", "application/pkcs10"));
    assert_false(xb_est_media_type_is("", "application/pkcs10"));
}

static void test_paths(void **state)
{
    (void)state;
    xb_config cfg;
    memset(&cfg, 0, sizeof cfg);
    strcpy(cfg.est_label[0], "edge");
    cfg.est_label_count = 1;
    xb_est_op op;
    xb_diag d = {""};
    assert_int_equal(xb_est_parse_path("/cacerts", &cfg, &op, &d), XB_OK);
    assert_int_equal(op, XB_EST_CACERTS);
    assert_int_equal(xb_est_parse_path("/edge/simplereenroll", &cfg, &op, &d), XB_OK);
    assert_int_equal(op, XB_EST_SIMPLEREENROLL);
    assert_int_equal(xb_est_parse_path("/edge/csrattrs", &cfg, &op, &d), XB_OK);
    assert_int_equal(op, XB_EST_CSRATTRS);
    static const char *const bad[] = {"",
                                      "/",
                                      "//cacerts",
                                      "/cacerts/",
                                      "/x/cacerts",
                                      "/edge/",
                                      "/edge//cacerts",
                                      "/a/b/cacerts",
                                      "/fullcmc",
                                      "/edge/cacerts/x",
                                      "/CACERTS"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d.msg[0] = '\0';
        assert_int_equal(xb_est_parse_path(bad[i], &cfg, &op, &d), XB_ERR_NOT_FOUND);
        assert_true(strlen(d.msg) > 0);
    }
    assert_int_equal(xb_est_parse_path("/x/cacerts", &cfg, &op, &d), XB_ERR_NOT_FOUND);
    assert_non_null(strstr(d.msg, "unknown EST label 'x'"));
}

static char *basic(const char *user_pass)
{
    char *b64 = xb_base64_encode((const uint8_t *)user_pass, strlen(user_pass));
    char *h = malloc(strlen(b64) + 8);
    strcpy(h, "Basic ");
    strcat(h, b64);
    free(b64);
    return h;
}

static void test_basic(void **state)
{
    (void)state;
    char pw[64];
    xb_diag d = {""};
    char *h = basic("dev-1:secret");
    assert_int_equal(xb_basic_parse(h, "dev-1", pw, sizeof pw, &d), XB_OK);
    assert_string_equal(pw, "secret");
    free(h);
    /* Colons in the ID (a MAC address) and in the password. */
    h = basic("aa:bb:cc:p:w");
    assert_int_equal(xb_basic_parse(h, "aa:bb:cc", pw, sizeof pw, &d), XB_OK);
    assert_string_equal(pw, "p:w");
    assert_int_equal(xb_basic_parse(h, "aa:bb", pw, sizeof pw, &d), XB_OK);
    assert_string_equal(pw, "cc:p:w"); /* a prefix ID: the CN decides where the user-id ends */
    assert_int_equal(xb_basic_parse(h, "aa:bb:cc:dd", pw, sizeof pw, &d), XB_ERR_UNAUTHORIZED);
    free(h);
    h = basic("dev-1:");
    assert_int_equal(xb_basic_parse(h, "dev-1", pw, sizeof pw, &d), XB_OK);
    assert_string_equal(pw, "");
    free(h);
    h = basic("dev-2:secret");
    assert_int_equal(xb_basic_parse(h, "dev-1", pw, sizeof pw, &d), XB_ERR_UNAUTHORIZED);
    assert_non_null(strstr(d.msg, "registration ID"));
    free(h);
    h = basic("nocolon");
    assert_int_equal(xb_basic_parse(h, "nocolon", pw, sizeof pw, &d), XB_ERR_UNAUTHORIZED);
    free(h);
    assert_int_equal(xb_basic_parse(NULL, "dev-1", pw, sizeof pw, &d), XB_ERR_NOT_FOUND);
    assert_int_equal(xb_basic_parse("Bearer x", "dev-1", pw, sizeof pw, &d), XB_ERR_NOT_FOUND);
    assert_int_equal(xb_basic_parse("Basic !!!!", "dev-1", pw, sizeof pw, &d), XB_ERR_UNAUTHORIZED);
    assert_int_equal(xb_basic_parse("Basic ZGV2LTE6eA== junk", "dev-1", pw, sizeof pw, &d),
                     XB_ERR_UNAUTHORIZED);
    assert_int_equal(xb_basic_parse("basic   ZGV2LTE6eA==  ", "dev-1", pw, sizeof pw, &d), XB_OK);
    assert_string_equal(pw, "x");
    h = basic("dev-1:0123456789");
    assert_int_equal(xb_basic_parse(h, "dev-1", pw, 8, &d), XB_ERR_UNAUTHORIZED);
    free(h);
}

static void test_tls_unique(void **state)
{
    (void)state;
    static const uint8_t fin[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    assert_true(xb_est_tls_unique_ok(fin, sizeof fin, "AQIDBAUGBwgJCgsM"));
    assert_false(xb_est_tls_unique_ok(fin, sizeof fin, "AQIDBAUGBwgJCgsN"));
    assert_false(xb_est_tls_unique_ok(fin, sizeof fin, "AQIDBAUGBwgJCgs"));
    assert_false(xb_est_tls_unique_ok(fin, sizeof fin, ""));
    assert_false(xb_est_tls_unique_ok(fin, 0, ""));
}

/* A signed DER CSR for cn, with a challengePassword and a requested SAN when given. */
static uint8_t *make_csr(const char *cn, const char *challenge, const char *san, size_t *len)
{
    EVP_PKEY *key = ec_key();
    X509_REQ *req = X509_REQ_new();
    X509_REQ_set_version(req, 0);
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_REQ_set_pubkey(req, key);
    if (challenge != NULL)
        assert_true(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_ASC,
                                              (const unsigned char *)challenge, -1));
    if (san != NULL) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
        assert_non_null(ext);
        sk_X509_EXTENSION_push(exts, ext);
        X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "CA:TRUE");
        sk_X509_EXTENSION_push(exts, bc);
        assert_true(X509_REQ_add_extensions(req, exts));
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    *len = (size_t)n;
    return der;
}

static void test_csr_attributes(void **state)
{
    (void)state;
    xb_diag d = {""};
    size_t len = 0;
    uint8_t *der = make_csr("aa:bb:cc", "AQIDBAUGBwgJCgsM", "DNS:x.example", &len);
    xb_csr *csr = NULL;
    assert_int_equal(xb_csr_parse(der, len, &csr, &d), XB_OK);
    char cn[XB_REGID_MAX + 1];
    assert_int_equal(xb_csr_common_name(csr, cn, &d), XB_OK);
    assert_string_equal(cn, "aa:bb:cc");
    char pw[64];
    assert_int_equal(xb_csr_challenge_password(csr, pw, sizeof pw, &d), XB_OK);
    assert_string_equal(pw, "AQIDBAUGBwgJCgsM");
    assert_int_equal(xb_csr_challenge_password(csr, pw, 8, &d), XB_ERR_BAD_CSR);
    const uint8_t *san = NULL;
    size_t san_len = 0;
    assert_int_equal(xb_csr_requested_san(csr, &san, &san_len, &d), XB_OK);
    /* GeneralNames { dNSName "x.example" } */
    static const uint8_t want[] = {0x30, 0x0b, 0x82, 0x09, 'x', '.', 'e',
                                   'x',  'a',  'm',  'p',  'l', 'e'};
    assert_int_equal(san_len, sizeof want);
    assert_memory_equal(san, want, sizeof want);
    size_t name_len = 0;
    assert_non_null(xb_csr_subject_der(csr, &name_len));
    assert_true(name_len > 0);
    xb_csr_free(csr);
    OPENSSL_free(der);

    der = make_csr("dev-1", NULL, NULL, &len);
    assert_int_equal(xb_csr_parse(der, len, &csr, &d), XB_OK);
    assert_int_equal(xb_csr_challenge_password(csr, pw, sizeof pw, &d), XB_ERR_NOT_FOUND);
    assert_int_equal(xb_csr_requested_san(csr, &san, &san_len, &d), XB_ERR_NOT_FOUND);
    xb_csr_free(csr);
    OPENSSL_free(der);

    der = make_csr("not valid!", NULL, NULL, &len);
    assert_int_equal(xb_csr_parse(der, len, &csr, &d), XB_OK);
    assert_int_equal(xb_csr_common_name(csr, cn, &d), XB_ERR_INVALID_REGISTRATION_ID);
    xb_csr_free(csr);
    OPENSSL_free(der);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_lines),
        cmocka_unit_test(test_base64_decode_ws),
        cmocka_unit_test(test_pkcs7_certs_only),
        cmocka_unit_test(test_csrattrs),
        cmocka_unit_test(test_media_type),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_tls_unique),
        cmocka_unit_test(test_csr_attributes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
