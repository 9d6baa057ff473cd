/* The device library's crypto backend (lib/crypto.h): keys, the CSR and the subject parser,
 * judged by OpenSSL's own parser and, above all, by the server's CSR checks (src/ca): a device
 * CSR that xbootd refuses is a device that never enrolls. Then xbc_cert_check against
 * certificates the server's CA code really issues, from a development CA in a temp dir. */
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
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "ca_reference.h"
#include "crypto.h"
#include "xb_util.h"

static char base_dir[64];
static char ca_dir[128];    /* the CA that issues */
static char other_dir[128]; /* an unrelated CA: its root must not be trusted for ca_dir's */

/* ---- helpers ---- */

static void ca_path(char *buf, size_t size, const char *dir, const char *file)
{
    snprintf(buf, size, "%s/%s", dir, file);
}

static xb_ca *load_ca(int validity_days)
{
    char cert[200], key[200], chain[200];
    ca_path(cert, sizeof cert, ca_dir, "signing-ca.pem");
    ca_path(key, sizeof key, ca_dir, "signing-ca.key");
    ca_path(chain, sizeof chain, ca_dir, "chain.pem");
    xb_ca_config cfg = {.cert_path = cert,
                        .key_path = key,
                        .chain_path = chain,
                        .validity_days = validity_days,
                        .subject_attributes = NULL};
    xb_ca *ca = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_ca_load(&cfg, &ca, &d), XB_OK);
    return ca;
}

/* A trust store of dir's root, built by the library itself from the PEM file. */
static X509_STORE *trust_of(const char *dir)
{
    char path[200];
    ca_path(path, sizeof path, dir, "root-ca.pem");
    uint8_t *pem = NULL;
    size_t len = 0;
    assert_int_equal(xb_read_file(path, 1 << 20, &pem, &len, NULL), XB_OK);
    X509_STORE *store = NULL;
    xbc_detail det = {""};
    assert_int_equal(xbc_trust_load(pem, len, &store, &det), XBOOT_OK);
    free(pem);
    return store;
}

/* The chain the server returns with each certificate (signing CA first). */
static STACK_OF(X509) * chain_of(const xb_ca *ca)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    for (size_t i = 0; i < xb_ca_chain_count(ca); i++) {
        size_t len = 0;
        const unsigned char *p = xb_ca_chain_der(ca, i, &len);
        X509 *x = d2i_X509(NULL, &p, (long)len);
        assert_non_null(x);
        assert_true(sk_X509_push(chain, x) > 0);
    }
    return chain;
}

static EVP_PKEY *new_key(xboot_key_type type)
{
    EVP_PKEY *key = NULL;
    xbc_detail det = {""};
    assert_int_equal(xbc_key_generate(type, &key, &det), XBOOT_OK);
    assert_non_null(key);
    return key;
}

static void build_csr(EVP_PKEY *key, const char *reg_id, const xbc_rdn *rdns, size_t n,
                      uint8_t **der, size_t *len)
{
    xbc_detail det = {""};
    *der = NULL;
    *len = 0;
    xboot_err err = xbc_csr_build(key, reg_id, rdns, n, der, len, &det);
    if (err != XBOOT_OK)
        fail_msg("no CSR for '%s': %s: %s", reg_id, xboot_err_code(err), det.msg);
    assert_non_null(*der);
    assert_true(*len > 0);
}

/* OpenSSL's view of the request; every byte must belong to it. */
static X509_REQ *parse_req(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    assert_non_null(req);
    assert_ptr_equal(p, der + len);
    return req;
}

/* What xbootd's enroll path (src/server/enroll.c) decides for this request and ID. */
static xb_err server_decides(const uint8_t *der, size_t len, const char *reg_id)
{
    xb_csr *csr = NULL;
    xb_diag d = {""};
    xb_err err = xb_csr_parse(der, len, &csr, &d);
    if (err == XB_OK)
        err = xb_csr_check_subject(csr, reg_id, &d);
    if (err != XB_OK)
        print_message("server: %s: %s\n", xb_err_code(err), d.msg);
    xb_csr_free(csr);
    return err;
}

/* Issue a certificate for the request as xbootd would, at time now. */
static X509 *server_issue(xb_ca *ca, const uint8_t *der, size_t len, const char *reg_id, time_t now,
                          char **subject)
{
    xb_csr *csr = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_csr_parse(der, len, &csr, &d), XB_OK);
    assert_int_equal(xb_csr_check_subject(csr, reg_id, &d), XB_OK);
    xb_issued out;
    assert_int_equal(xb_ca_issue(ca, csr, reg_id, now, &out, &d), XB_OK);
    xb_csr_free(csr);
    const unsigned char *p = out.der;
    X509 *x = d2i_X509(NULL, &p, (long)out.der_len);
    assert_non_null(x);
    if (subject != NULL)
        *subject = strdup(out.subject);
    xb_issued_clear(&out);
    return x;
}

static void parse_subject_ok(const char *text, xbc_rdn *rdns, size_t *n)
{
    xbc_detail det = {""};
    *n = 99;
    xboot_err err = xbc_subject_parse(text, rdns, n, &det);
    if (err != XBOOT_OK)
        fail_msg("'%s' refused: %s: %s", text, xboot_err_code(err), det.msg);
}

static void assert_entry(X509_NAME *name, int i, int nid, const char *value)
{
    X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
    assert_non_null(e);
    assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), nid);
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(e);
    assert_int_equal(ASN1_STRING_length(s), (int)strlen(value));
    assert_memory_equal(ASN1_STRING_get0_data(s), value, strlen(value));
    /* RFC 5280 appendix A: countryName is a PrintableString. */
    if (nid == NID_countryName)
        assert_int_equal(ASN1_STRING_type(s), V_ASN1_PRINTABLESTRING);
}

static void assert_key_shape(EVP_PKEY *key, xboot_key_type type)
{
    char group[64] = "";
    size_t glen = 0;
    switch (type) {
    case XBOOT_KEY_EC_P256:
    case XBOOT_KEY_EC_P384:
        assert_true(EVP_PKEY_is_a(key, "EC"));
        assert_int_equal(EVP_PKEY_get_group_name(key, group, sizeof group, &glen), 1);
        assert_string_equal(group, type == XBOOT_KEY_EC_P256 ? "prime256v1" : "secp384r1");
        break;
    case XBOOT_KEY_RSA_2048: {
        assert_true(EVP_PKEY_is_a(key, "RSA"));
        assert_int_equal(EVP_PKEY_get_bits(key), 2048);
        BIGNUM *e = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e), 1);
        assert_true(BN_is_word(e, 65537));
        BN_free(e);
        break;
    }
    }
}

static int expected_sig_nid(xboot_key_type type)
{
    switch (type) {
    case XBOOT_KEY_EC_P256:
        return NID_ecdsa_with_SHA256;
    case XBOOT_KEY_EC_P384:
        return NID_ecdsa_with_SHA384;
    case XBOOT_KEY_RSA_2048:
        return NID_sha256WithRSAEncryption;
    }
    return NID_undef;
}

/* The request is exactly what crypto.h promises: v1, signed by key with the right digest, the
 * key's public key, subject = attributes then CN, nothing requested besides. */
static void assert_request_shape(const uint8_t *der, size_t len, EVP_PKEY *key, int sig_nid,
                                 const char *reg_id, const xbc_rdn *rdns, size_t n)
{
    X509_REQ *req = parse_req(der, len);
    assert_int_equal(X509_REQ_get_version(req), X509_REQ_VERSION_1);
    assert_int_equal(X509_REQ_verify(req, key), 1);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key), 1);
    assert_int_equal(X509_REQ_get_signature_nid(req), sig_nid);
    assert_int_equal(X509_REQ_get_attr_count(req), 0);
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    assert_int_equal(sk_X509_EXTENSION_num(exts), exts == NULL ? -1 : 0);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME *name = X509_REQ_get_subject_name(req);
    assert_int_equal(X509_NAME_entry_count(name), (int)n + 1);
    for (size_t i = 0; i < n; i++)
        assert_entry(name, (int)i, OBJ_sn2nid(rdns[i].name), rdns[i].value);
    assert_entry(name, (int)n, NID_commonName, reg_id);
    X509_REQ_free(req);
}

/* The server's fast path and its reference implementation agree and both issue. */
static void assert_server_paths_agree(const uint8_t *der, size_t len, const char *reg_id)
{
    /* The comparison needs one serial for both paths. */
    static const uint8_t serial[XB_CA_SERIAL_LEN] = {0x5e, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    xb_ca *ca = load_ca(365);
    xb_crosscheck res;
    if (!xb_ca_crosscheck(ca, der, len, reg_id, time(NULL), serial, &res))
        fail_msg("server fast and reference paths disagree: %s", res.mismatch);
    assert_int_equal(res.parse_err, XB_OK);
    assert_int_equal(res.subject_err, XB_OK);
    assert_int_equal(res.issue_err, XB_OK);
    xb_ca_free(ca);
}

/* ---- setup ---- */

static int setup(void **state)
{
    (void)state;
    snprintf(base_dir, sizeof base_dir, "/tmp/xboot-test-devcsr.XXXXXX");
    assert_non_null(mkdtemp(base_dir));
    snprintf(ca_dir, sizeof ca_dir, "%s/ca", base_dir);
    snprintf(other_dir, sizeof other_dir, "%s/other", base_dir);
    xb_diag d = {""};
    assert_int_equal(xb_ca_init_dir(ca_dir, "ec-p256", "Device Test", &d), XB_OK);
    assert_int_equal(xb_ca_init_dir(other_dir, "ec-p256", "Device Test", &d), XB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- CSR ---- */

static void csr_for_type(xboot_key_type type)
{
    EVP_PKEY *key = new_key(type);
    assert_key_shape(key, type);
    xbc_rdn rdns[XBC_MAX_RDNS];
    size_t n = 0;
    parse_subject_ok("/C=US/ST=WA/L=Redmond/O=Contoso/OU=Sensors", rdns, &n);
    assert_int_equal(n, 5);
    const char *id = "00-11-22-33-44-55";
    uint8_t *der;
    size_t len;
    build_csr(key, id, rdns, n, &der, &len);
    assert_request_shape(der, len, key, expected_sig_nid(type), id, rdns, n);
    /* What matters: xbootd takes it for this ID, and only for this ID. */
    assert_int_equal(server_decides(der, len, id), XB_OK);
    assert_int_equal(server_decides(der, len, "00-11-22-33-44-56"), XB_ERR_SUBJECT_MISMATCH);
    assert_server_paths_agree(der, len, id);
    /* And the certificate carries the attributes the server copies by default. */
    xb_ca *ca = load_ca(365);
    char *subject = NULL;
    X509 *cert = server_issue(ca, der, len, id, time(NULL), &subject);
    assert_string_equal(subject, "CN=00-11-22-33-44-55,OU=Sensors,O=Contoso,L=Redmond,ST=WA,C=US");
    free(subject);
    X509_free(cert);
    xb_ca_free(ca);
    free(der);
    EVP_PKEY_free(key);
}

static void test_csr_ec_p256(void **state)
{
    (void)state;
    csr_for_type(XBOOT_KEY_EC_P256);
}

static void test_csr_ec_p384(void **state)
{
    (void)state;
    csr_for_type(XBOOT_KEY_EC_P384);
}

static void test_csr_rsa_2048(void **state)
{
    (void)state;
    csr_for_type(XBOOT_KEY_RSA_2048);
}

/* IDs of every allowed length make a CSR the server takes. X.520's ub-common-name is 64, and
 * OpenSSL's string table enforces it for MBSTRING input; but DPS IDs go to 128 and xbootd
 * accepts and issues CNs of any allowed length, so the device must build them too. */
static void test_csr_id_lengths(void **state)
{
    (void)state;
    EVP_PKEY *key = new_key(XBOOT_KEY_EC_P256);
    const size_t lengths[] = {1, 8, 64, 65, 100, 128};
    int misses = 0; /* no assert while key is held: a failure must not leak it */
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        char id[129];
        memset(id, 'a', lengths[i]);
        memcpy(id, "Az09-._:", lengths[i] < 8 ? 0 : 8); /* every character class */
        id[lengths[i]] = '\0';
        uint8_t *der = NULL;
        size_t len = 0;
        xbc_detail det = {""};
        xboot_err err = xbc_csr_build(key, id, NULL, 0, &der, &len, &det);
        if (err != XBOOT_OK) {
            print_error("ID of %zu characters: no CSR: %s: %s\n", lengths[i], xboot_err_code(err),
                        det.msg);
            misses++;
            continue;
        }
        assert_request_shape(der, len, key, NID_ecdsa_with_SHA256, id, NULL, 0);
        if (server_decides(der, len, id) != XB_OK)
            misses++;
        free(der);
    }
    EVP_PKEY_free(key);
    assert_int_equal(misses, 0);
}

/* Keys are fresh each time (the CSPRNG is used, not a fixed seed). */
static void test_keys_differ(void **state)
{
    (void)state;
    EVP_PKEY *a = new_key(XBOOT_KEY_EC_P256), *b = new_key(XBOOT_KEY_EC_P256);
    assert_int_not_equal(EVP_PKEY_eq(a, b), 1);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    xbc_detail det = {""};
    EVP_PKEY *k = NULL;
    assert_int_not_equal(xbc_key_generate((xboot_key_type)42, &k, &det), XBOOT_OK);
    assert_null(k);
    assert_true(det.msg[0] != '\0');
}

/* A key made elsewhere (here by EVP_PKEY_Q_keygen; on a device by a TPM or PKCS#11 provider):
 * the builder only signs with it, and the caller's reference stays the caller's. */
static void test_csr_caller_key(void **state)
{
    (void)state;
    EVP_PKEY *keys[3] = {
        EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
        EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"),
        EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048),
    };
    const int nids[3] = {NID_ecdsa_with_SHA256, NID_ecdsa_with_SHA384, NID_sha256WithRSAEncryption};
    xbc_rdn rdns[XBC_MAX_RDNS];
    size_t n = 0;
    parse_subject_ok("/O=Contoso", rdns, &n);
    for (int i = 0; i < 3; i++) {
        assert_non_null(keys[i]);
        uint8_t *der;
        size_t len;
        build_csr(keys[i], "caller-key-1", rdns, n, &der, &len);
        assert_request_shape(der, len, keys[i], nids[i], "caller-key-1", rdns, n);
        assert_int_equal(server_decides(der, len, "caller-key-1"), XB_OK);
        free(der);
        EVP_PKEY_free(keys[i]); /* the only reference: valgrind sees a leak or a double free */
    }
}

static void test_csr_build_refuses(void **state)
{
    (void)state;
    EVP_PKEY *key = new_key(XBOOT_KEY_EC_P256);
    uint8_t *der = NULL;
    size_t len = 0;
    xbc_detail det = {""};
    assert_int_equal(xbc_csr_build(key, NULL, NULL, 0, &der, &len, &det),
                     XBOOT_ERR_INVALID_ARGUMENT);
    assert_null(der);
    assert_true(det.msg[0] != '\0');
    /* A public key alone cannot sign: refused, not a CSR with a bad signature. */
    unsigned char *pub = NULL;
    int pub_len = i2d_PUBKEY(key, &pub);
    assert_true(pub_len > 0);
    const unsigned char *p = pub;
    EVP_PKEY *pub_only = d2i_PUBKEY(NULL, &p, pub_len);
    assert_non_null(pub_only);
    det.msg[0] = '\0';
    xboot_err err = xbc_csr_build(pub_only, "dev-1", NULL, 0, &der, &len, &det);
    assert_true(err == XBOOT_ERR_KEY || err == XBOOT_ERR_CSR);
    assert_null(der);
    assert_true(det.msg[0] != '\0');
    /* Keys XBoot servers refuse are refused here, before anything is sent. */
    EVP_PKEY *weak[] = {
        EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521"),
        EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
        EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024),
    };
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) {
        assert_non_null(weak[i]);
        det.msg[0] = '\0';
        assert_int_equal(xbc_csr_build(weak[i], "dev-1", NULL, 0, &der, &len, &det), XBOOT_ERR_KEY);
        assert_null(der);
        assert_true(det.msg[0] != '\0');
        EVP_PKEY_free(weak[i]);
    }
    OPENSSL_free(pub);
    EVP_PKEY_free(pub_only);
    EVP_PKEY_free(key);
}

/* ---- subject parser ---- */

typedef struct rdn_case {
    const char *text;
    size_t n;
    const char *names[XBC_MAX_RDNS];
    const char *values[XBC_MAX_RDNS];
} rdn_case;

static void test_subject_accepts(void **state)
{
    (void)state;
    static const rdn_case cases[] = {
        {"/O=Contoso/OU=Sensors", 2, {"O", "OU"}, {"Contoso", "Sensors"}},
        {"/C=US/ST=WA/L=Redmond", 3, {"C", "ST", "L"}, {"US", "WA", "Redmond"}},
        {"/O=Contoso\\/Fabrikam", 1, {"O"}, {"Contoso/Fabrikam"}},
        {"/OU=a\\/b\\/c/O=x", 2, {"OU", "O"}, {"a/b/c", "x"}},
        {"/OU=Line 1/OU=Line 2", 2, {"OU", "OU"}, {"Line 1", "Line 2"}},
        {"/O=A=B, Inc.", 1, {"O"}, {"A=B, Inc."}},
        /* "" is no attributes at all: the CN alone (what the handle has by default). */
        {"", 0, {NULL}, {NULL}},
        {"/OU=1/OU=2/OU=3/OU=4/OU=5/OU=6/OU=7/OU=8",
         8,
         {"OU", "OU", "OU", "OU", "OU", "OU", "OU", "OU"},
         {"1", "2", "3", "4", "5", "6", "7", "8"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        xbc_rdn rdns[XBC_MAX_RDNS];
        size_t n;
        parse_subject_ok(cases[i].text, rdns, &n);
        assert_int_equal(n, cases[i].n);
        for (size_t j = 0; j < n; j++) {
            assert_string_equal(rdns[j].name, cases[i].names[j]);
            assert_string_equal(rdns[j].value, cases[i].values[j]);
        }
    }
    /* 64 bytes is the upper bound (ub-organization-name), inclusive. */
    char text[80];
    snprintf(text, sizeof text, "/O=%064d", 7);
    xbc_rdn rdns[XBC_MAX_RDNS];
    size_t n;
    parse_subject_ok(text, rdns, &n);
    assert_int_equal(strlen(rdns[0].value), 64);
}

static void test_subject_refuses(void **state)
{
    (void)state;
    char long_value[80], nine[80];
    snprintf(long_value, sizeof long_value, "/O=%065d", 7);
    snprintf(nine, sizeof nine, "/OU=1/OU=2/OU=3/OU=4/OU=5/OU=6/OU=7/OU=8/OU=9");
    const char *const bad[] = {
        "/CN=dev-1",           /* the CN is the registration ID */
        "/O=Contoso/CN=dev-1", /* ... wherever it appears */
        "/emailAddress=a@b.c", /* not an attribute the server copies */
        "/DC=example",         /* idem */
        "/SN=Smith",           /* idem */
        "/X=1",                /* unknown */
        "/C=USA",              /* C is exactly 2 */
        "/C=U",                /* idem */
        "/O=",                 /* empty value */
        "/O=Contoso/OU=",      /* idem, later */
        "/O=Contoso/",         /* empty attribute */
        "/",                   /* idem */
        "//O=Contoso",         /* idem */
        "/O",                  /* no '=' */
        "/=Contoso",           /* no name */
        long_value,            /* over 64 */
        nine,                  /* over XBC_MAX_RDNS */
        "/O=Con\ttoso",        /* control bytes */
        "/O=Con\ntoso",        /* idem */
        "/O=\x01",             /* idem */
        "/O=Con\x7ftoso",      /* DEL */
        "O=Contoso",           /* no leading slash */
        " /O=Contoso",         /* idem */
        "/O=Contoso\\",        /* a dangling escape */
    };
    int misses = 0; /* report every case, not only the first */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        xbc_rdn rdns[XBC_MAX_RDNS];
        size_t n = 0;
        xbc_detail det = {""};
        xboot_err err = xbc_subject_parse(bad[i], rdns, &n, &det);
        if (err != XBOOT_ERR_INVALID_ARGUMENT || det.msg[0] == '\0') {
            print_error("'%s': got %s (detail '%s'), want invalid_argument with a detail\n", bad[i],
                        xboot_err_code(err), det.msg);
            misses++;
        }
    }
    assert_int_equal(misses, 0);
    /* detail may be NULL. */
    xbc_rdn rdns[XBC_MAX_RDNS];
    size_t n = 0;
    assert_int_equal(xbc_subject_parse("/CN=x", rdns, &n, NULL), XBOOT_ERR_INVALID_ARGUMENT);
}

/* Whatever the parser takes must make a CSR: a subject refused only when xboot_enroll builds
 * the CSR (after a key was generated) is a late, confusing failure. */
static void test_subject_accepted_builds(void **state)
{
    (void)state;
    const char *const texts[] = {
        "/O=M\xc3\xbcller GmbH", /* UTF-8 */
        "/C=u!",                 /* two bytes, but not PrintableString */
        "/C=\xc3\xbc",           /* two bytes, one letter */
        "/O=\xff\xfe",           /* not UTF-8 */
        "/L=Z\xc3\xbcrich/ST=\xe6\x9d\xb1\xe4\xba\xac",
    };
    EVP_PKEY *key = new_key(XBOOT_KEY_EC_P256);
    int misses = 0;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        xbc_rdn rdns[XBC_MAX_RDNS];
        size_t n = 0;
        xbc_detail det = {""};
        if (xbc_subject_parse(texts[i], rdns, &n, &det) != XBOOT_OK)
            continue; /* refused up front: fine */
        uint8_t *der = NULL;
        size_t len = 0;
        xboot_err err = xbc_csr_build(key, "dev-utf8", rdns, n, &der, &len, &det);
        if (err != XBOOT_OK) {
            print_error("'%s' parsed, but no CSR: %s: %s\n", texts[i], xboot_err_code(err),
                        det.msg);
            misses++;
        } else if (server_decides(der, len, "dev-utf8") != XB_OK) {
            print_error("'%s': xbootd refuses the CSR\n", texts[i]);
            misses++;
        }
        free(der);
    }
    EVP_PKEY_free(key);
    assert_int_equal(misses, 0);
}

/* ---- xbc_cert_check ---- */

/* A device with its key, its ID, a certificate the server's CA issued for both at time now. */
typedef struct device {
    EVP_PKEY *key;
    X509 *cert;
} device;

static device enroll_device(xb_ca *ca, const char *reg_id, time_t now)
{
    device dev = {new_key(XBOOT_KEY_EC_P256), NULL};
    uint8_t *der;
    size_t len;
    build_csr(dev.key, reg_id, NULL, 0, &der, &len);
    dev.cert = server_issue(ca, der, len, reg_id, now, NULL);
    free(der);
    return dev;
}

static void device_free(device *dev)
{
    EVP_PKEY_free(dev->key);
    X509_free(dev->cert);
}

static xboot_err check(X509 *cert, STACK_OF(X509) * chain, X509_STORE *trust, EVP_PKEY *key,
                       const char *reg_id)
{
    xbc_detail det = {""};
    xboot_err err = xbc_cert_check(cert, chain, trust, key, reg_id, &det);
    if (err != XBOOT_OK && det.msg[0] == '\0')
        fail_msg("%s without detail", xboot_err_code(err));
    if (err != XBOOT_OK)
        print_message("xbc_cert_check: %s: %s\n", xboot_err_code(err), det.msg);
    return err;
}

static void test_cert_check_issued(void **state)
{
    (void)state;
    xb_ca *ca = load_ca(365);
    STACK_OF(X509) *chain = chain_of(ca);
    X509_STORE *trust = trust_of(ca_dir), *other = trust_of(other_dir);
    device a = enroll_device(ca, "dev-A", time(NULL));
    EVP_PKEY *b = new_key(XBOOT_KEY_EC_P256);

    assert_int_equal(check(a.cert, chain, trust, a.key, "dev-A"), XBOOT_OK);
    assert_int_equal(check(a.cert, chain, trust, b, "dev-A"), XBOOT_ERR_CERT_KEY_MISMATCH);
    assert_int_equal(check(a.cert, chain, trust, a.key, "dev-B"), XBOOT_ERR_CERT_SUBJECT_MISMATCH);
    /* The key is checked first: a wrong key and a wrong ID is a key mismatch. */
    assert_int_equal(check(a.cert, chain, trust, b, "dev-B"), XBOOT_ERR_CERT_KEY_MISMATCH);
    /* IDs compare exactly (the device asked for this spelling). */
    assert_int_equal(check(a.cert, chain, trust, a.key, "DEV-A"), XBOOT_ERR_CERT_SUBJECT_MISMATCH);
    assert_int_equal(check(a.cert, chain, other, a.key, "dev-A"), XBOOT_ERR_CERT_UNTRUSTED);
    /* Without the signing CA there is no path to the root. */
    STACK_OF(X509) *empty = sk_X509_new_null();
    assert_int_equal(check(a.cert, empty, trust, a.key, "dev-A"), XBOOT_ERR_CERT_UNTRUSTED);
    assert_int_equal(check(a.cert, NULL, trust, a.key, "dev-A"), XBOOT_ERR_CERT_UNTRUSTED);
    sk_X509_free(empty);

    EVP_PKEY_free(b);
    device_free(&a);
    X509_STORE_free(trust);
    X509_STORE_free(other);
    sk_X509_pop_free(chain, X509_free);
    xb_ca_free(ca);
}

static void test_cert_check_validity(void **state)
{
    (void)state;
    xb_ca *ca = load_ca(1);
    STACK_OF(X509) *chain = chain_of(ca);
    X509_STORE *trust = trust_of(ca_dir);
    /* Issued three days ago for one day: expired two days ago. */
    device old = enroll_device(ca, "dev-old", time(NULL) - 3 * 86400);
    assert_int_equal(check(old.cert, chain, trust, old.key, "dev-old"), XBOOT_ERR_CERT_UNTRUSTED);
    /* Issued "in two days" (a server clock ahead): not valid yet. */
    device early = enroll_device(ca, "dev-early", time(NULL) + 2 * 86400);
    assert_int_equal(check(early.cert, chain, trust, early.key, "dev-early"),
                     XBOOT_ERR_CERT_UNTRUSTED);
    device_free(&old);
    device_free(&early);
    X509_STORE_free(trust);
    sk_X509_pop_free(chain, X509_free);
    xb_ca_free(ca);
}

/* A certificate signed by the real signing CA but outside the client profile, built here with
 * the OpenSSL API: subject CNs, and the extensions as openssl.cnf strings (NULL: none). */
static X509 *hand_made_cert(EVP_PKEY *key, const char *const *cns, size_t n_cns,
                            const char *basic_constraints, const char *eku)
{
    char path[200];
    ca_path(path, sizeof path, ca_dir, "signing-ca.pem");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *issuer = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ca_path(path, sizeof path, ca_dir, "signing-ca.key");
    f = fopen(path, "r");
    assert_non_null(f);
    EVP_PKEY *issuer_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(issuer);
    assert_non_null(issuer_key);

    X509 *x = X509_new();
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    unsigned char serial[16];
    assert_int_equal(RAND_bytes(serial, sizeof serial), 1);
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
    for (size_t i = 0; i < n_cns; i++)
        assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cns[i], -1, -1, 0),
                         1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(issuer)), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -300));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    const int nids[2] = {NID_basic_constraints, NID_ext_key_usage};
    const char *values[2] = {basic_constraints, eku};
    for (int i = 0; i < 2; i++) {
        if (values[i] == NULL)
            continue;
        X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nids[i], values[i]);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    X509_free(issuer);
    EVP_PKEY_free(issuer_key);
    return x;
}

static void test_cert_check_profile(void **state)
{
    (void)state;
    xb_ca *ca = load_ca(365);
    STACK_OF(X509) *chain = chain_of(ca);
    X509_STORE *trust = trust_of(ca_dir);
    EVP_PKEY *key = new_key(XBOOT_KEY_EC_P256);
    const char *one[] = {"dev-p"}, *two[] = {"dev-p", "dev-p"};
    static const struct {
        const char *bc, *eku;
        xboot_err want;
    } cases[] = {
        {"critical,CA:FALSE", "clientAuth", XBOOT_OK},
        {NULL, NULL, XBOOT_OK}, /* no EKU at all is allowed */
        {"critical,CA:FALSE", "clientAuth,serverAuth", XBOOT_OK},
        {"critical,CA:TRUE", "clientAuth", XBOOT_ERR_CERT_UNTRUSTED},
        {"critical,CA:FALSE", "serverAuth", XBOOT_ERR_CERT_UNTRUSTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        X509 *x = hand_made_cert(key, one, 1, cases[i].bc, cases[i].eku);
        xboot_err err = check(x, chain, trust, key, "dev-p");
        if (err != cases[i].want)
            fail_msg("bc=%s eku=%s: got %s, want %s", cases[i].bc ? cases[i].bc : "-",
                     cases[i].eku ? cases[i].eku : "-", xboot_err_code(err),
                     xboot_err_code(cases[i].want));
        X509_free(x);
    }
    /* Exactly one CN: a second one, even equal, is a subject mismatch. */
    X509 *x = hand_made_cert(key, two, 2, "critical,CA:FALSE", "clientAuth");
    assert_int_equal(check(x, chain, trust, key, "dev-p"), XBOOT_ERR_CERT_SUBJECT_MISMATCH);
    X509_free(x);
    EVP_PKEY_free(key);
    X509_STORE_free(trust);
    sk_X509_pop_free(chain, X509_free);
    xb_ca_free(ca);
}

static void test_trust_load_refuses(void **state)
{
    (void)state;
    static const char garbage[] = "-----BEGIN CERTIFICATE-----\nnot base64\n"
                                  "-----END CERTIFICATE-----\n";
    const char *const bad[] = {garbage, "hello", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        X509_STORE *store = NULL;
        xbc_detail det = {""};
        assert_int_equal(xbc_trust_load((const uint8_t *)bad[i], strlen(bad[i]), &store, &det),
                         XBOOT_ERR_TRUST_ANCHOR);
        assert_null(store);
        assert_true(det.msg[0] != '\0');
    }
    /* A PEM private key holds no certificate. */
    char path[200];
    ca_path(path, sizeof path, ca_dir, "signing-ca.key");
    uint8_t *pem = NULL;
    size_t len = 0;
    assert_int_equal(xb_read_file(path, 1 << 20, &pem, &len, NULL), XB_OK);
    X509_STORE *store = NULL;
    xbc_detail det = {""};
    assert_int_equal(xbc_trust_load(pem, len, &store, &det), XBOOT_ERR_TRUST_ANCHOR);
    assert_null(store);
    free(pem);
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csr_ec_p256),
        cmocka_unit_test(test_csr_ec_p384),
        cmocka_unit_test(test_csr_rsa_2048),
        cmocka_unit_test(test_csr_id_lengths),
        cmocka_unit_test(test_keys_differ),
        cmocka_unit_test(test_csr_caller_key),
        cmocka_unit_test(test_csr_build_refuses),
        cmocka_unit_test(test_subject_accepts),
        cmocka_unit_test(test_subject_refuses),
        cmocka_unit_test(test_subject_accepted_builds),
        cmocka_unit_test(test_cert_check_issued),
        cmocka_unit_test(test_cert_check_validity),
        cmocka_unit_test(test_cert_check_profile),
        cmocka_unit_test(test_trust_load_refuses),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, setup, teardown);
}
