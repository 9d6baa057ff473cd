/* The issuance core against CSRs from several libraries, with a CA made by xb_ca_init_dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "xb_util.h"

static char base_dir[64];
static char ca_dir[128];

static void read_fixture(const char *name, uint8_t **der, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/csr/%s", XB_FIXTURES, name);
    assert_int_equal(xb_read_file(path, 1 << 20, der, len, NULL), XB_OK);
}

static xb_ca *load_ca(int validity_days, const char *attrs)
{
    char cert[200], key[200], chain[200];
    snprintf(cert, sizeof cert, "%s/signing-ca.pem", ca_dir);
    snprintf(key, sizeof key, "%s/signing-ca.key", ca_dir);
    snprintf(chain, sizeof chain, "%s/chain.pem", ca_dir);
    xb_ca_config cfg = {.cert_path = cert,
                        .key_path = key,
                        .chain_path = chain,
                        .validity_days = validity_days,
                        .subject_attributes = attrs};
    xb_ca *ca = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_ca_load(&cfg, &ca, &d), XB_OK);
    return ca;
}

static X509 *issue_fixture(xb_ca *ca, const char *fixture, const char *reg_id, xb_issued *out)
{
    uint8_t *der;
    size_t len;
    read_fixture(fixture, &der, &len);
    xb_csr *csr = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_csr_parse(der, len, &csr, &d), XB_OK);
    assert_int_equal(xb_csr_check_subject(csr, reg_id, &d), XB_OK);
    assert_int_equal(xb_ca_issue(ca, csr, reg_id, time(NULL), out, &d), XB_OK);
    xb_csr_free(csr);
    free(der);
    const unsigned char *p = out->der;
    X509 *x = d2i_X509(NULL, &p, (long)out->der_len);
    assert_non_null(x);
    return x;
}

static int setup(void **state)
{
    (void)state;
    snprintf(base_dir, sizeof base_dir, "/tmp/xboot-test-ca.XXXXXX");
    assert_non_null(mkdtemp(base_dir));
    snprintf(ca_dir, sizeof ca_dir, "%s/ca", base_dir);
    xb_diag d = {""};
    assert_int_equal(xb_ca_init_dir(ca_dir, "ec-p256", "Test", &d), XB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_ca_init_refuses_overwrite(void **state)
{
    (void)state;
    xb_diag d = {""};
    assert_int_equal(xb_ca_init_dir(ca_dir, "ec-p256", "Test", &d), XB_ERR_EXISTS);
    assert_non_null(strstr(d.msg, "refusing to overwrite"));
    assert_int_equal(xb_ca_init_dir("/tmp/x", "dsa-1024", NULL, &d), XB_ERR_INVALID_ARGUMENT);
}

static void test_profile_ec(void **state)
{
    (void)state;
    xb_ca *ca = load_ca(365, NULL);
    xb_issued out;
    X509 *x = issue_fixture(ca, "mbedtls-p256.csr.der", "mbedtls-p256-dev-1", &out);
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
    /* Strict client profile. */
    uint32_t flags = X509_get_extension_flags(x);
    assert_true(flags & EXFLAG_BCONS);
    assert_false(flags & EXFLAG_CA);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_non_null(X509_get0_authority_key_id(x));
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
    assert_int_equal(crit, 1);
    ASN1_BIT_STRING_free(ku);
    /* The mbedTLS CSR asks for keyUsage non-critical: ignored. The SAN count is zero. */
    assert_int_equal(X509_get_ext_by_NID(x, NID_subject_alt_name, -1), -1);
    /* Serial: positive, 20 octets (RFC 5280's maximum): a time prefix whose top octet is
     * non-zero since mid-2020, then 16 random octets. */
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    assert_int_equal(sn->length, 20);
    assert_false(sn->type & V_ASN1_NEG);
    /* The prefix is the issuance time (seconds since 2020-01-01), so the registry's serial
     * index grows at one end. */
    long long prefix =
        ((long long)sn->data[0] << 24) | (sn->data[1] << 16) | (sn->data[2] << 8) | sn->data[3];
    long long expect = (long long)time(NULL) - 1577836800LL;
    assert_true(prefix <= expect && prefix >= expect - 60);
    /* Validity 365 days from a backdated notBefore. */
    assert_int_equal(out.not_after - out.not_before, 365 * 86400 + 300);
    assert_string_equal(out.subject, "CN=mbedtls-p256-dev-1");
    assert_int_equal(strlen(out.pubkey_sha256), 64);
    X509_free(x);
    xb_issued_clear(&out);
    xb_ca_free(ca);
}

static void test_profile_rsa_and_asks_ca(void **state)
{
    (void)state;
    xb_ca *ca = load_ca(30, NULL);
    xb_issued out;
    X509 *x = issue_fixture(ca, "mbedtls-rsa2048.csr.der", "mbedtls-rsa2048-dev-1", &out);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(out.not_after - out.not_before, 30 * 86400 + 300);
    X509_free(x);
    xb_issued_clear(&out);
    /* Python cryptography CSR asking for CA:TRUE, a SAN and its own EKU: none is copied. */
    x = issue_fixture(ca, "pyca-p384-asks-ca.csr.der", "pyca-p384-dev-1", &out);
    assert_false(X509_get_extension_flags(x) & EXFLAG_CA);
    assert_int_equal(X509_get_ext_by_NID(x, NID_subject_alt_name, -1), -1);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
    X509_free(x);
    xb_issued_clear(&out);
    xb_ca_free(ca);
}

static void test_subject_policy(void **state)
{
    (void)state;
    /* The .NET-shaped request: C, ST, L, O, OU and a GUID CN, signed RSA-PSS/SHA-512. */
    uint8_t *der;
    size_t len;
    read_fixture("dotnet-style-rsapss.csr.der", &der, &len);
    xb_csr *csr = NULL;
    assert_int_equal(xb_csr_parse(der, len, &csr, NULL), XB_OK);
    free(der);
    xb_diag d = {""};
    assert_int_equal(xb_csr_check_subject(csr, "not-the-guid", &d), XB_ERR_SUBJECT_MISMATCH);
    xb_csr_free(csr);

    xb_ca *all = load_ca(365, NULL), *only_o = load_ca(365, "O"), *none = load_ca(365, "");
    xb_issued out;
    X509 *x;
    const char *guid = NULL;
    /* The GUID is the fixture's CN; find it through the CSR itself. */
    read_fixture("dotnet-style-rsapss.csr.der", &der, &len);
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    X509_NAME *n = X509_REQ_get_subject_name(req);
    char cn[129];
    X509_NAME_get_text_by_NID(n, NID_commonName, cn, sizeof cn);
    guid = cn;
    x = issue_fixture(all, "dotnet-style-rsapss.csr.der", guid, &out);
    char want[256];
    snprintf(want, sizeof want, "CN=%s,OU=IT,O=Hilscher,L=Calgary,ST=AB,C=CA", guid);
    assert_string_equal(out.subject, want);
    X509_free(x);
    xb_issued_clear(&out);
    x = issue_fixture(only_o, "dotnet-style-rsapss.csr.der", guid, &out);
    snprintf(want, sizeof want, "CN=%s,O=Hilscher", guid);
    assert_string_equal(out.subject, want);
    X509_free(x);
    xb_issued_clear(&out);
    x = issue_fixture(none, "dotnet-style-rsapss.csr.der", guid, &out);
    snprintf(want, sizeof want, "CN=%s", guid);
    assert_string_equal(out.subject, want);
    X509_free(x);
    xb_issued_clear(&out);
    X509_REQ_free(req);
    free(der);
    xb_ca_free(all);
    xb_ca_free(only_o);
    xb_ca_free(none);
}

static void test_bad_csrs(void **state)
{
    (void)state;
    uint8_t *der;
    size_t len;
    read_fixture("gnutls-p256.csr.der", &der, &len);
    xb_csr *csr = NULL;
    xb_diag d = {""};
    /* Truncated, trailing garbage, flipped signature byte, empty. */
    assert_int_equal(xb_csr_parse(der, len - 1, &csr, &d), XB_ERR_BAD_CSR);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, der, len);
    longer[len] = 0;
    assert_int_equal(xb_csr_parse(longer, len + 1, &csr, &d), XB_ERR_BAD_CSR);
    assert_non_null(strstr(d.msg, "trailing"));
    free(longer);
    der[len - 3] ^= 0x01;
    assert_int_equal(xb_csr_parse(der, len, &csr, &d), XB_ERR_CSR_SIGNATURE);
    assert_int_equal(xb_csr_parse(der, 0, &csr, &d), XB_ERR_BAD_CSR);
    assert_null(csr);
    free(der);
}

/* A DER CSR for key with the given subject entries (pairs of short name, value). */
static unsigned char *make_csr_md(EVP_PKEY *k, const char *const *attrs, size_t n_attrs,
                                  const EVP_MD *md, int *len)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_REQ_get_subject_name(req);
    for (size_t i = 0; i + 1 < n_attrs; i += 2)
        assert_true(X509_NAME_add_entry_by_txt(name, attrs[i], V_ASN1_UTF8STRING,
                                               (const unsigned char *)attrs[i + 1], -1, -1, 0));
    assert_true(X509_REQ_set_pubkey(req, k));
    assert_true(X509_REQ_sign(req, k, md) > 0);
    unsigned char *der = NULL;
    *len = i2d_X509_REQ(req, &der);
    X509_REQ_free(req);
    return der;
}

static unsigned char *make_csr(EVP_PKEY *k, const char *const *attrs, size_t n_attrs, int *len)
{
    return make_csr_md(k, attrs, n_attrs, EVP_sha256(), len);
}

static void test_key_policy(void **state)
{
    (void)state;
    static const struct {
        const char *alg;
        const char *param;
        size_t bits;
    } refused[] = {{"RSA", NULL, 1024}, {"EC", "P-521", 0}, {"ED25519", NULL, 0}};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        EVP_PKEY *k = refused[i].bits    ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", refused[i].bits)
                      : refused[i].param ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", refused[i].param)
                                         : EVP_PKEY_Q_keygen(NULL, NULL, refused[i].alg);
        assert_non_null(k);
        const char *attrs[] = {"CN", "dev-1"};
        int len = 0;
        unsigned char *der =
            make_csr_md(k, attrs, 2, EVP_PKEY_is_a(k, "ED25519") ? NULL : EVP_sha256(), &len);
        xb_csr *csr = NULL;
        xb_diag d = {""};
        assert_int_equal(xb_csr_parse(der, (size_t)len, &csr, &d), XB_ERR_KEY_NOT_ALLOWED);
        assert_non_null(strstr(d.msg, "allowed"));
        OPENSSL_free(der);
        EVP_PKEY_free(k);
    }
}

static void test_validity_clipped_to_ca(void **state)
{
    (void)state;
    xb_ca *ca = load_ca(3650, NULL);
    /* Ten years from "now + 5 years" passes the 10-year CA's notAfter: clipped. */
    time_t later = time(NULL) + 5L * 365 * 86400;
    uint8_t *der;
    size_t len;
    read_fixture("mbedtls-p384.csr.der", &der, &len);
    xb_csr *csr = NULL;
    assert_int_equal(xb_csr_parse(der, len, &csr, NULL), XB_OK);
    xb_issued out;
    assert_int_equal(xb_ca_issue(ca, csr, "mbedtls-p384-dev-1", later, &out, NULL), XB_OK);
    char path[200];
    snprintf(path, sizeof path, "%s/signing-ca.pem", ca_dir);
    FILE *f = fopen(path, "r");
    X509 *cacert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    time_t ca_not_after;
    assert_int_equal(xb_asn1_time_to_time_t(X509_get0_notAfter(cacert), &ca_not_after), 0);
    assert_int_equal(out.not_after, ca_not_after);
    xb_issued_clear(&out);
    /* After the CA expired: nothing is issued. */
    xb_diag d = {""};
    assert_int_equal(xb_ca_issue(ca, csr, "mbedtls-p384-dev-1", ca_not_after + 1, &out, &d),
                     XB_ERR_CA_UNAVAILABLE);
    assert_int_equal(xb_ca_check_usable(ca, ca_not_after + 1, &d), XB_ERR_CA_UNAVAILABLE);
    X509_free(cacert);
    xb_csr_free(csr);
    free(der);
    xb_ca_free(ca);
}

static void test_serials_differ(void **state)
{
    (void)state;
    xb_ca *ca = load_ca(365, NULL);
    char seen[64][41];
    for (int i = 0; i < 64; i++) {
        xb_issued out;
        X509 *x = issue_fixture(ca, "gnutls-p256.csr.der", "gnutls-dev-1", &out);
        snprintf(seen[i], sizeof seen[i], "%s", out.serial);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(seen[i], seen[j]);
        X509_free(x);
        xb_issued_clear(&out);
    }
    xb_ca_free(ca);
}

static void test_ca_load_errors(void **state)
{
    (void)state;
    char cert[200], key[200];
    snprintf(cert, sizeof cert, "%s/signing-ca.pem", ca_dir);
    snprintf(key, sizeof key, "%s/tls.key", ca_dir);
    xb_ca_config cfg = {.cert_path = cert,
                        .key_path = key,
                        .chain_path = NULL,
                        .validity_days = 365,
                        .subject_attributes = NULL};
    xb_ca *ca = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_ca_load(&cfg, &ca, &d), XB_ERR_CONFIG);
    assert_non_null(strstr(d.msg, "does not match"));
    snprintf(cert, sizeof cert, "%s/tls.pem", ca_dir);
    assert_int_equal(xb_ca_load(&cfg, &ca, &d), XB_ERR_CONFIG);
    assert_non_null(strstr(d.msg, "not a CA"));
    snprintf(cert, sizeof cert, "%s/signing-ca.pem", ca_dir);
    snprintf(key, sizeof key, "%s/signing-ca.key", ca_dir);
    cfg.subject_attributes = "CN";
    assert_int_equal(xb_ca_load(&cfg, &ca, &d), XB_ERR_CONFIG);
    cfg.subject_attributes = "NOPE";
    assert_int_equal(xb_ca_load(&cfg, &ca, &d), XB_ERR_CONFIG);
    cfg.subject_attributes = NULL;
    cfg.validity_days = 0;
    assert_int_equal(xb_ca_load(&cfg, &ca, &d), XB_ERR_CONFIG);
    cfg.validity_days = 365;
    char chain[200];
    snprintf(chain, sizeof chain, "%s/root-ca.pem", ca_dir);
    cfg.chain_path = chain; /* does not start with the signing CA */
    assert_int_equal(xb_ca_load(&cfg, &ca, &d), XB_ERR_CONFIG);
    assert_null(ca);
}

static void test_weak_signature_digest(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    const char *attrs[] = {"CN", "dev-sha1"};
    int len = 0;
    unsigned char *der = make_csr_md(k, attrs, 2, EVP_sha1(), &len);
    xb_csr *csr = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_csr_parse(der, (size_t)len, &csr, &d), XB_ERR_CSR_SIGNATURE);
    assert_non_null(strstr(d.msg, "SHA1"));
    OPENSSL_free(der);
    der = make_csr_md(k, attrs, 2, EVP_sha512(), &len);
    assert_int_equal(xb_csr_parse(der, (size_t)len, &csr, &d), XB_OK);
    xb_csr_free(csr);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
}

static void test_subject_bounds(void **state)
{
    (void)state;
    char long_o[101];
    memset(long_o, 'o', 100);
    long_o[100] = '\0';
    const char *attrs[] = {"C",  "CAN", "O",  long_o, "OU", "1",  "OU", "2",         "OU",
                           "3",  "OU",  "4",  "OU",   "5",  "OU", "6",  "OU",        "7",
                           "OU", "8",   "OU", "9",    "OU", "10", "CN", "dev-bounds"};
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    int len = 0;
    unsigned char *der = make_csr(k, attrs, sizeof attrs / sizeof attrs[0], &len);
    xb_csr *csr = NULL;
    assert_int_equal(xb_csr_parse(der, (size_t)len, &csr, NULL), XB_OK);
    xb_ca *ca = load_ca(365, NULL);
    xb_issued out;
    assert_int_equal(xb_ca_issue(ca, csr, "dev-bounds", time(NULL), &out, NULL), XB_OK);
    /* C of three letters and a 100-character O are dropped; at most 8 OUs are copied. */
    assert_string_equal(out.subject, "CN=dev-bounds,OU=8,OU=7,OU=6,OU=5,OU=4,OU=3,OU=2,OU=1");
    xb_issued_clear(&out);
    xb_ca_free(ca);
    xb_csr_free(csr);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
}

static void test_rsa_exponent(void **state)
{
    (void)state;
    /* e = 3: a real RSA key, but outside what CAs accept (and e = 1 would make PoP void). */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    BIGNUM *e = BN_new();
    BN_set_word(e, 3);
    EVP_PKEY *k = NULL;
    assert_true(EVP_PKEY_keygen_init(ctx) == 1);
    assert_true(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048) == 1);
    assert_true(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e) == 1);
    assert_true(EVP_PKEY_generate(ctx, &k) == 1);
    const char *attrs[] = {"CN", "dev-e3"};
    int len = 0;
    unsigned char *der = make_csr(k, attrs, 2, &len);
    xb_csr *csr = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_csr_parse(der, (size_t)len, &csr, &d), XB_ERR_KEY_NOT_ALLOWED);
    assert_non_null(strstr(d.msg, "exponent"));
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    BN_free(e);
    EVP_PKEY_CTX_free(ctx);
}

static void test_pss_sha1_and_explicit_curve(void **state)
{
    (void)state;
    /* RSA-PSS whose parameters name SHA-1: the digest hides in the parameters. */
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    X509_REQ *req = X509_REQ_new();
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                               (const unsigned char *)"dev-pss", -1, -1, 0);
    X509_REQ_set_pubkey(req, rsa);
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(EVP_DigestSignInit(mctx, &pctx, EVP_sha1(), NULL, rsa), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
    assert_true(X509_REQ_sign_ctx(req, mctx) > 0);
    unsigned char *der = NULL;
    int len = i2d_X509_REQ(req, &der);
    xb_csr *csr = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_csr_parse(der, (size_t)len, &csr, &d), XB_ERR_CSR_SIGNATURE);
    assert_non_null(strstr(d.msg, "SHA1"));
    OPENSSL_free(der);
    EVP_MD_CTX_free(mctx);
    X509_REQ_free(req);
    EVP_PKEY_free(rsa);

    /* P-256 given by explicit parameters: refused, though OpenSSL recognises the curve. */
    EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"P-256", 0),
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, (char *)"explicit", 0),
        OSSL_PARAM_construct_end()};
    EVP_PKEY *ec = NULL;
    assert_int_equal(EVP_PKEY_keygen_init(kctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_params(kctx, params), 1);
    assert_int_equal(EVP_PKEY_generate(kctx, &ec), 1);
    const char *attrs[] = {"CN", "dev-explicit"};
    der = make_csr(ec, attrs, 2, &len);
    assert_int_equal(xb_csr_parse(der, (size_t)len, &csr, &d), XB_ERR_KEY_NOT_ALLOWED);
    assert_non_null(strstr(d.msg, "explicit"));
    OPENSSL_free(der);
    EVP_PKEY_free(ec);
    EVP_PKEY_CTX_free(kctx);
}

/* A recorded certificate read back (what a replay sends) describes itself as xb_ca_issue
 * described it, and the CSR's key hash is the certificate's. */
static void check_read_back(xb_ca *ca, const char *fixture, const char *reg_id)
{
    uint8_t *der;
    size_t len;
    read_fixture(fixture, &der, &len);
    xb_csr *csr = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_csr_parse(der, len, &csr, &d), XB_OK);
    free(der);
    xb_issued out, back;
    assert_int_equal(xb_ca_issue(ca, csr, reg_id, time(NULL), &out, &d), XB_OK);
    char key[65];
    assert_int_equal(xb_csr_pubkey_sha256(csr, key, &d), XB_OK);
    assert_string_equal(key, out.pubkey_sha256);
    xb_csr_free(csr);

    assert_int_equal(xb_issued_from_der(out.der, out.der_len, &back, &d), XB_OK);
    assert_int_equal(back.der_len, out.der_len);
    assert_memory_equal(back.der, out.der, out.der_len);
    assert_true(back.der != out.der); /* a copy of its own */
    assert_string_equal(back.serial, out.serial);
    assert_string_equal(back.subject, out.subject);
    assert_string_equal(back.pubkey_sha256, out.pubkey_sha256);
    assert_int_equal(back.not_before, out.not_before);
    assert_int_equal(back.not_after, out.not_after);
    assert_true(xb_ca_issued_by(ca, &back));
    xb_issued_clear(&back);
    xb_issued_clear(&out);
}

static void test_issued_from_der(void **state)
{
    (void)state;
    xb_ca *ca = load_ca(365, NULL);
    check_read_back(ca, "mbedtls-p256.csr.der", "mbedtls-p256-dev-1");
    check_read_back(ca, "mbedtls-rsa2048.csr.der", "mbedtls-rsa2048-dev-1");
    check_read_back(ca, "pyca-p384-asks-ca.csr.der", "pyca-p384-dev-1");

    xb_issued out, back;
    X509 *x = issue_fixture(ca, "gnutls-p256.csr.der", "gnutls-dev-1", &out);
    X509_free(x);
    xb_diag d = {""};
    /* Not all of it, or more than one certificate: not what was recorded. */
    assert_int_equal(xb_issued_from_der(out.der, out.der_len - 1, &back, &d), XB_ERR_CRYPTO);
    assert_null(back.der);
    uint8_t *longer = malloc(out.der_len + 1);
    assert_non_null(longer);
    memcpy(longer, out.der, out.der_len);
    longer[out.der_len] = 0;
    assert_int_equal(xb_issued_from_der(longer, out.der_len + 1, &back, &d), XB_ERR_CRYPTO);
    free(longer);
    assert_int_equal(xb_issued_from_der(out.der, 0, &back, &d), XB_ERR_CRYPTO);

    /* Another CA (same name, another key, as after a rotation) did not issue it. */
    char other_dir[160], cert[200], key[200];
    snprintf(other_dir, sizeof other_dir, "%s/other-ca", base_dir);
    assert_int_equal(xb_ca_init_dir(other_dir, "ec-p256", "Test", &d), XB_OK);
    snprintf(cert, sizeof cert, "%s/signing-ca.pem", other_dir);
    snprintf(key, sizeof key, "%s/signing-ca.key", other_dir);
    xb_ca_config cfg = {.cert_path = cert,
                        .key_path = key,
                        .chain_path = NULL,
                        .validity_days = 365,
                        .subject_attributes = NULL};
    xb_ca *other = NULL;
    assert_int_equal(xb_ca_load(&cfg, &other, &d), XB_OK);
    assert_int_equal(xb_issued_from_der(out.der, out.der_len, &back, &d), XB_OK);
    assert_true(xb_ca_issued_by(ca, &back));
    assert_false(xb_ca_issued_by(other, &back));
    xb_issued_clear(&back);
    xb_issued_clear(&out);
    xb_ca_free(other);
    xb_ca_free(ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_init_refuses_overwrite),
        cmocka_unit_test(test_profile_ec),
        cmocka_unit_test(test_profile_rsa_and_asks_ca),
        cmocka_unit_test(test_subject_policy),
        cmocka_unit_test(test_bad_csrs),
        cmocka_unit_test(test_key_policy),
        cmocka_unit_test(test_validity_clipped_to_ca),
        cmocka_unit_test(test_serials_differ),
        cmocka_unit_test(test_ca_load_errors),
        cmocka_unit_test(test_subject_bounds),
        cmocka_unit_test(test_rsa_exponent),
        cmocka_unit_test(test_weak_signature_digest),
        cmocka_unit_test(test_pss_sha1_and_explicit_curve),
        cmocka_unit_test(test_issued_from_der),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
