/* The CRL builder (src/ca/crl.c) against OpenSSL: its output parses and verifies, says what it
 * was given, and its TBSCertList is byte for byte the one OpenSSL's X509_CRL API builds from
 * the same data; and the registry's CRL storage and staleness rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_internal.h"
#include "crl_publish.h"
#include "der.h"
#include "registry.h"

typedef struct fixture {
    char dir[64];
    xb_ca *ca;
} fixture;

static int setup(void **state, const char *key_type)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/xb-crl-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char ca_dir[128], cert[160], key[160];
    snprintf(ca_dir, sizeof ca_dir, "%s/ca", f->dir);
    xb_diag d = {""};
    assert_int_equal(xb_ca_init_dir(ca_dir, key_type, "Test", &d), XB_OK);
    snprintf(cert, sizeof cert, "%s/signing-ca.pem", ca_dir);
    snprintf(key, sizeof key, "%s/signing-ca.key", ca_dir);
    xb_ca_config cfg = {.cert_path = cert,
                        .key_path = key,
                        .chain_path = NULL,
                        .validity_days = 365,
                        .subject_attributes = ""};
    assert_int_equal(xb_ca_load(&cfg, &f->ca, &d), XB_OK);
    *state = f;
    return 0;
}

static int setup_ec(void **state)
{
    return setup(state, "ec-p256");
}

static int setup_rsa(void **state)
{
    return setup(state, "rsa-2048");
}

static int teardown(void **state)
{
    fixture *f = *state;
    xb_ca_free(f->ca);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Ascending serials: OpenSSL sorts the entries it encodes, ours keep the order given. */
static const xb_crl_entry entries[] = {
    {"03", 1700000000, 0},
    {"0102", 1700000100, XB_REVOKE_CESSATION_OF_OPERATION},
    {"8a0b0c", 1700000200, XB_REVOKE_KEY_COMPROMISE},
};
#define N_ENTRIES (sizeof entries / sizeof entries[0])
#define THIS_UPDATE 1800000000
#define NEXT_UPDATE (THIS_UPDATE + 86400)

static X509_CRL *build(fixture *f, const xb_crl_entry *e, size_t n, long long number, uint8_t **der,
                       size_t *len)
{
    xb_diag d = {""};
    assert_int_equal(xb_ca_crl_build(f->ca, e, n, number, THIS_UPDATE, NEXT_UPDATE, der, len, &d),
                     XB_OK);
    const unsigned char *p = *der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)*len);
    assert_non_null(crl);
    assert_ptr_equal(p, *der + *len); /* all of it, nothing after */
    return crl;
}

static void test_parses_and_verifies(void **state)
{
    fixture *f = *state;
    uint8_t *der = NULL;
    size_t len = 0;
    X509_CRL *crl = build(f, entries, N_ENTRIES, 300, &der, &len);
    X509 *ca_cert = xb_ca_signing_cert(f->ca);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca_cert)), 1);
    assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca_cert)), 0);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl), THIS_UPDATE), 0);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl), NEXT_UPDATE), 0);
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(num);
    assert_int_equal(ASN1_INTEGER_get(num), 300);
    ASN1_INTEGER_free(num);
    AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
    assert_non_null(akid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(ca_cert)), 0);
    AUTHORITY_KEYID_free(akid);
    STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(rev), (int)N_ENTRIES);
    for (size_t i = 0; i < N_ENTRIES; i++) {
        X509_REVOKED *r = sk_X509_REVOKED_value(rev, (int)i);
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(r), NULL);
        char *hex = BN_bn2hex(bn);
        BIGNUM *want = NULL;
        BN_hex2bn(&want, entries[i].serial_hex);
        assert_int_equal(BN_cmp(bn, want), 0);
        OPENSSL_free(hex);
        BN_free(bn);
        BN_free(want);
        assert_int_equal(
            ASN1_TIME_cmp_time_t(X509_REVOKED_get0_revocationDate(r), entries[i].revoked_at), 0);
        int crit = 0;
        ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
        if (entries[i].reason == 0) {
            assert_null(reason); /* unspecified: no reasonCode, as RFC 5280 5.3.1 asks */
        } else {
            assert_non_null(reason);
            assert_int_equal(ASN1_ENUMERATED_get(reason), entries[i].reason);
        }
        ASN1_ENUMERATED_free(reason);
    }
    X509_CRL_free(crl);
    free(der);
}

/* The first element of a SEQUENCE (the TBS part of a signed structure). */
static void first_element(const uint8_t *der, size_t len, const uint8_t **tbs, size_t *tbs_len)
{
    xb_der_reader r = xb_der_reader_of(der, len), in;
    xb_der_elem outer, e;
    assert_true(xb_der_read_tag(&r, XB_DER_SEQUENCE, &outer));
    in = xb_der_reader_of(outer.val, outer.len);
    assert_true(xb_der_read(&in, &e));
    *tbs = e.tlv;
    *tbs_len = e.tlv_len;
}

/* The same CRL made the obvious way, with OpenSSL's objects. */
static X509_CRL *reference(fixture *f, long long number)
{
    X509 *ca_cert = xb_ca_signing_cert(f->ca);
    X509_CRL *crl = X509_CRL_new();
    assert_non_null(crl);
    assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)), 1);
    ASN1_TIME *t = ASN1_TIME_set(NULL, THIS_UPDATE);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
    ASN1_TIME_set(t, NEXT_UPDATE);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
    for (size_t i = 0; i < N_ENTRIES; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        BIGNUM *bn = NULL;
        BN_hex2bn(&bn, entries[i].serial_hex);
        ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
        X509_REVOKED_set_serialNumber(r, serial);
        ASN1_TIME_set(t, entries[i].revoked_at);
        X509_REVOKED_set_revocationDate(r, t);
        if (entries[i].reason != 0) {
            ASN1_ENUMERATED *e = ASN1_ENUMERATED_new();
            ASN1_ENUMERATED_set(e, entries[i].reason);
            assert_int_equal(X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, e, 0, 0), 1);
            ASN1_ENUMERATED_free(e);
        }
        assert_int_equal(X509_CRL_add0_revoked(crl, r), 1);
        ASN1_INTEGER_free(serial);
        BN_free(bn);
    }
    ASN1_TIME_free(t);
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    ASN1_INTEGER_set_int64(num, number);
    assert_int_equal(X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0), 1);
    ASN1_INTEGER_free(num);
    assert_int_equal(X509_CRL_add_ext(crl, f->ca->ext_aki, -1), 1);
    assert_true(X509_CRL_sign(crl, f->ca->key, f->ca->md) > 0);
    return crl;
}

static void test_same_tbs_as_openssl(void **state)
{
    fixture *f = *state;
    uint8_t *der = NULL;
    size_t len = 0;
    X509_CRL *ours = build(f, entries, N_ENTRIES, 0x1234567890LL, &der, &len);
    X509_CRL *ref = reference(f, 0x1234567890LL);
    unsigned char *ref_der = NULL;
    int ref_len = i2d_X509_CRL(ref, &ref_der);
    assert_true(ref_len > 0);
    const uint8_t *a, *b;
    size_t a_len, b_len;
    first_element(der, len, &a, &a_len);
    first_element(ref_der, (size_t)ref_len, &b, &b_len);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    OPENSSL_free(ref_der);
    X509_CRL_free(ref);
    X509_CRL_free(ours);
    free(der);
}

static void test_empty_and_bad(void **state)
{
    fixture *f = *state;
    uint8_t *der = NULL;
    size_t len = 0;
    X509_CRL *crl = build(f, NULL, 0, 1, &der, &len);
    assert_true(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0); /* absent when empty */
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(xb_ca_signing_cert(f->ca))), 1);
    X509_CRL_free(crl);
    free(der);
    xb_diag d = {""};
    const xb_crl_entry bad[] = {{"zz", 1, 0}};
    assert_int_equal(xb_ca_crl_build(f->ca, bad, 1, 1, 10, 20, &der, &len, &d),
                     XB_ERR_INVALID_ARGUMENT);
    const xb_crl_entry zero[] = {{"0000", 1, 0}};
    assert_int_equal(xb_ca_crl_build(f->ca, zero, 1, 1, 10, 20, &der, &len, &d),
                     XB_ERR_INVALID_ARGUMENT);
    assert_int_equal(xb_ca_crl_build(f->ca, entries, 1, 1, 20, 20, &der, &len, &d),
                     XB_ERR_INVALID_ARGUMENT);
    assert_null(der);
}

static void test_stale_rules(void **state)
{
    (void)state;
    xb_crl_state st = {.number = 0};
    assert_true(xb_crl_is_stale(&st, 1000, 100)); /* none yet */
    st = (xb_crl_state){
        .number = 3, .revision = 5, .covers = 5, .this_update = 1000, .next_update = 1100};
    assert_false(xb_crl_is_stale(&st, 1000, 100));
    assert_false(xb_crl_is_stale(&st, 1049, 100));
    assert_true(xb_crl_is_stale(&st, 1050, 100)); /* half its life gone */
    assert_true(xb_crl_is_stale(&st, 1000, 200)); /* lifetime reconfigured */
    st.revision = 6;
    assert_true(xb_crl_is_stale(&st, 1000, 100)); /* a revocation since */
}

/* The registry: a revocation makes the CRL stale, a refresh signs once and numbers upwards,
 * and device disable --revoke revokes all of a device's certificates. */
static void test_registry_refresh(void **state)
{
    fixture *f = *state;
    char url[128];
    snprintf(url, sizeof url, "sqlite:%s/r.db", f->dir);
    xb_registry *r = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_registry_open(url, &r, &d), XB_OK);
    assert_int_equal(xb_registry_device_add(r, "dev1", &d), XB_OK);
    static const uint8_t der[] = {0x30, 0x00};
    const char *serials[] = {"0a01", "0a02", "0a03"};
    for (int i = 0; i < 3; i++) {
        xb_cert_record rec = {.der = der, .der_len = sizeof der, .issued_at = 100 + i};
        snprintf(rec.serial, sizeof rec.serial, "%s", serials[i]);
        snprintf(rec.reg_id, sizeof rec.reg_id, "dev1");
        xb_enroll_rules rules = {0, 1};
        assert_int_equal(xb_registry_record_issuance(r, &rec, &rules, &d), XB_OK);
    }
    uint8_t *crl = NULL;
    size_t len = 0;
    xb_crl_state st;
    assert_int_equal(xb_registry_crl_get(r, &st, &crl, &len, &d), XB_ERR_NOT_FOUND);
    int made = 0;
    assert_int_equal(xb_crl_refresh(r, f->ca, 3600, &made, &d), XB_OK);
    assert_int_equal(made, 1);
    assert_int_equal(xb_crl_refresh(r, f->ca, 3600, &made, &d), XB_OK);
    assert_int_equal(made, 0); /* nothing changed: not signed again */
    assert_int_equal(xb_registry_cert_revoke(r, "0a01", 1, 0, &d), XB_OK);
    assert_int_equal(xb_registry_crl_state(r, &st, &d), XB_OK);
    assert_int_equal(st.number, 1);
    assert_true(st.revision > st.covers);
    assert_int_equal(xb_crl_refresh(r, f->ca, 3600, &made, &d), XB_OK);
    assert_int_equal(made, 1);
    size_t revoked = 0;
    assert_int_equal(xb_registry_device_disable_revoke(r, "dev1", 5, 0, &revoked, &d), XB_OK);
    assert_int_equal(revoked, 2); /* the third was revoked already */
    xb_device dev;
    assert_int_equal(xb_registry_device_get(r, "dev1", &dev, &d), XB_OK);
    assert_int_equal(dev.enabled, 0);
    assert_int_equal(xb_registry_device_disable_revoke(r, "nope", 5, 0, &revoked, &d),
                     XB_ERR_DEVICE_UNKNOWN);
    assert_int_equal(xb_crl_refresh(r, f->ca, 3600, &made, &d), XB_OK);
    assert_int_equal(xb_registry_crl_get(r, &st, &crl, &len, &d), XB_OK);
    assert_int_equal(st.number, 3);
    const unsigned char *p = crl;
    X509_CRL *x = d2i_X509_CRL(NULL, &p, (long)len);
    assert_non_null(x);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(x)), 3);
    X509_CRL_free(x);
    free(crl);
    xb_registry_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parses_and_verifies, setup_ec, teardown),
        cmocka_unit_test_setup_teardown(test_parses_and_verifies, setup_rsa, teardown),
        cmocka_unit_test_setup_teardown(test_same_tbs_as_openssl, setup_ec, teardown),
        cmocka_unit_test_setup_teardown(test_same_tbs_as_openssl, setup_rsa, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_bad, setup_ec, teardown),
        cmocka_unit_test(test_stale_rules),
        cmocka_unit_test_setup_teardown(test_registry_refresh, setup_ec, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
