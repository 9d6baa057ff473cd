/* The device library's public API without a server: the registration ID rule (the same as
 * xbootd's, so a device never sends an ID the server refuses), error names, key type names,
 * and the handle's setters refusing what they must refuse, before any network traffic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca.h"
#include "xb_error.h"
#include "xb_regid.h"
#include "xb_util.h"
#include "xboot/xboot.h"

/* A development CA (made by the server's own code) whose root serves as a real trust anchor. */
static char base_dir[64];
static char root_pem[160];

static int setup(void **state)
{
    (void)state;
    snprintf(base_dir, sizeof base_dir, "/tmp/xboot-test-devregid.XXXXXX");
    assert_non_null(mkdtemp(base_dir));
    char ca[128];
    snprintf(ca, sizeof ca, "%s/ca", base_dir);
    snprintf(root_pem, sizeof root_pem, "%s/root-ca.pem", ca);
    xb_diag d = {""};
    assert_int_equal(xb_ca_init_dir(ca, NULL, "Regid Test", &d), XB_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- registration IDs ---- */

static void assert_id(const char *id, int valid)
{
    if (xboot_registration_id_valid(id) != valid)
        fail_msg("'%s' should be %s", id ? id : "(NULL)", valid ? "valid" : "refused");
    /* The device and the server must agree on every ID. */
    if (id != NULL)
        assert_int_equal(xb_regid_valid(id, strlen(id)), valid);
}

static void test_regid_length(void **state)
{
    (void)state;
    char id[131];
    memset(id, 'a', sizeof id - 1);
    id[130] = '\0';
    id[1] = '\0';
    assert_id(id, 1); /* one character */
    id[1] = 'a';
    id[128] = '\0';
    assert_id(id, 1); /* 128 */
    id[128] = 'a';
    id[129] = '\0';
    assert_id(id, 0); /* 129 */
    assert_id("", 0);
    assert_id(NULL, 0);
}

static void test_regid_alphabet(void **state)
{
    (void)state;
    assert_id("00-11-22-33-44-55", 1);
    assert_id("ABCxyz019-._:Z", 1);
    assert_id("urn:dev.1_a", 1);
    assert_id("-", 1);
    assert_id("abc-", 1);
    /* The last character: a letter, a digit or '-'. */
    assert_id("abc.", 0);
    assert_id("abc:", 0);
    assert_id("abc_", 0);
    assert_id(".", 0);
    static const char *const bad[] = {
        "a b",
        " ab",
        "ab ",
        "a\"b",
        "a'b",
        "a/b",
        "a\\b",
        "a@b",
        "a+b",
        "a,b",
        "a;b",
        "a=b",
        "a*b",
        "a%b",
        "a#b",
        "a?b",
        "a&b",
        "a<b>",
        "a{b}",
        "a[b]",
        "a|b",
        "a~b",
        "a`b",
        "a!b",
        "d\xc3\xa9v", /* "dév" in UTF-8 */
        "\xef\xbb\xbf"
        "a", /* a byte order mark */
        "a\tb",
        "a\nb",
        "a\rb",
        "a\x01",
        "a\x1b[0m",
        "a\x7f"
        "b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_id(bad[i], 0);
    /* Every byte in the middle of an ID: valid exactly for the alphabet. */
    for (int c = 1; c < 256; c++) {
        char id[4] = {'a', (char)c, '1', '\0'};
        int in_alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == ':';
        assert_id(id, in_alphabet);
    }
}

static void test_set_registration_id(void **state)
{
    (void)state;
    xboot_client *c = NULL;
    assert_int_equal(xboot_client_new(&c), XBOOT_OK);
    assert_non_null(c);
    static const char *const bad[] = {"", "abc.", "a b", "d\xc3\xa9v", "a\x01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(xboot_set_registration_id(c, bad[i]), XBOOT_ERR_INVALID_REGISTRATION_ID);
        assert_true(xboot_error_detail(c)[0] != '\0');
    }
    assert_int_not_equal(xboot_set_registration_id(c, NULL), XBOOT_OK);
    assert_int_equal(xboot_set_registration_id(c, "00-11-22-33-44-55"), XBOOT_OK);
    assert_int_equal(xboot_set_registration_id(c, "abc-"), XBOOT_OK);
    assert_int_equal(xboot_set_registration_id(NULL, "abc-"), XBOOT_ERR_INVALID_ARGUMENT);
    xboot_client_free(c);
}

/* ---- names ---- */

static void test_error_names(void **state)
{
    (void)state;
    /* The stable names scripts match on (docs/device-sdk.md lists them): never renamed. */
    static const char *const codes[XBOOT_ERR__COUNT] = {
        "ok",
        "invalid_argument",
        "invalid_registration_id",
        "no_memory",
        "not_configured",
        "trust_anchor",
        "key_error",
        "csr_error",
        "network_error",
        "server_untrusted",
        "server_refused",
        "server_busy",
        "server_failed",
        "bad_response",
        "cert_key_mismatch",
        "cert_subject_mismatch",
        "cert_untrusted",
        "storage_error",
        "pkcs12_error",
        "internal_error",
        "cert_expired",
    };
    for (int i = 0; i < XBOOT_ERR__COUNT; i++) {
        const char *code = xboot_err_code((xboot_err)i), *msg = xboot_strerror((xboot_err)i);
        assert_non_null(code);
        assert_non_null(msg);
        assert_string_equal(code, codes[i]);
        assert_true(msg[0] != '\0');
        assert_int_equal(strspn(code, "abcdefghijklmnopqrstuvwxyz0123456789_"), strlen(code));
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(code, xboot_err_code((xboot_err)j));
            assert_string_not_equal(msg, xboot_strerror((xboot_err)j));
        }
    }
    /* Out of range: still a string, and none of the real ones. */
    const int outside[] = {-1, XBOOT_ERR__COUNT, XBOOT_ERR__COUNT + 1, 1000, -1000};
    for (size_t k = 0; k < sizeof outside / sizeof outside[0]; k++) {
        const char *code = xboot_err_code((xboot_err)outside[k]);
        const char *msg = xboot_strerror((xboot_err)outside[k]);
        assert_non_null(code);
        assert_non_null(msg);
        for (int j = 0; j < XBOOT_ERR__COUNT; j++) {
            assert_string_not_equal(code, xboot_err_code((xboot_err)j));
            assert_string_not_equal(msg, xboot_strerror((xboot_err)j));
        }
    }
}

static void test_key_type_names(void **state)
{
    (void)state;
    static const struct {
        xboot_key_type type;
        const char *name;
    } known[] = {
        {XBOOT_KEY_EC_P256, "ec-p256"},
        {XBOOT_KEY_EC_P384, "ec-p384"},
        {XBOOT_KEY_RSA_2048, "rsa-2048"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        assert_string_equal(xboot_key_type_name(known[i].type), known[i].name);
        xboot_key_type t = (xboot_key_type)99;
        assert_int_equal(xboot_key_type_parse(known[i].name, &t), XBOOT_OK);
        assert_int_equal(t, known[i].type);
    }
    static const char *const bad[] = {"", "ec-p521", "rsa-4096", "ed25519", "ec-p256 ", "ec"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        xboot_key_type t = XBOOT_KEY_EC_P384;
        assert_int_equal(xboot_key_type_parse(bad[i], &t), XBOOT_ERR_INVALID_ARGUMENT);
        assert_int_equal(t, XBOOT_KEY_EC_P384); /* untouched on failure */
    }
    xboot_key_type t;
    assert_int_equal(xboot_key_type_parse(NULL, &t), XBOOT_ERR_INVALID_ARGUMENT);
    assert_int_equal(xboot_key_type_parse("ec-p256", NULL), XBOOT_ERR_INVALID_ARGUMENT);
    assert_non_null(xboot_key_type_name((xboot_key_type)99));
    assert_non_null(xboot_key_type_name((xboot_key_type)-1));
}

/* ---- the handle ---- */

static void test_null_handle(void **state)
{
    (void)state;
    const xboot_err bad = XBOOT_ERR_INVALID_ARGUMENT;
    assert_int_equal(xboot_client_new(NULL), bad);
    assert_int_equal(xboot_set_server(NULL, "https://127.0.0.1:1"), bad);
    assert_int_equal(xboot_set_trust_anchor_file(NULL, "/dev/null"), bad);
    assert_int_equal(xboot_set_trust_anchor_pem(NULL, "x", 1), bad);
    assert_int_equal(xboot_set_subject(NULL, "/O=Contoso"), bad);
    assert_int_equal(xboot_set_key_type(NULL, XBOOT_KEY_EC_P256), bad);
    assert_int_equal(xboot_set_key(NULL, NULL), bad);
    assert_int_equal(xboot_set_credential(NULL, "secret"), bad);
    assert_int_equal(xboot_set_api_key(NULL, "key"), bad);
    assert_int_equal(xboot_set_timeouts(NULL, 1000, 1000), bad);
    assert_int_equal(xboot_set_retries(NULL, 1, 10, 10), bad);
    assert_int_equal(xboot_set_store_dir(NULL, "/tmp"), bad);
    assert_int_equal(xboot_set_pfx(NULL, 1, NULL), bad);
    assert_int_equal(xboot_set_progress(NULL, NULL, NULL), bad);
    assert_int_equal(xboot_enroll(NULL, 0), bad);
    assert_int_equal(xboot_load(NULL), bad);
    assert_null(xboot_key(NULL));
    assert_null(xboot_certificate(NULL));
    assert_null(xboot_chain(NULL));
    assert_int_equal(xboot_was_issued(NULL), 0);
    assert_int_equal(xboot_http_status(NULL), 0);
    assert_non_null(xboot_error_detail(NULL));
    xboot_client_free(NULL);
}

static void test_set_server(void **state)
{
    (void)state;
    xboot_client *c = NULL;
    assert_int_equal(xboot_client_new(&c), XBOOT_OK);
    static const char *const good[] = {
        "https://127.0.0.1:8443",
        "https://xboot.example.com",
        "https://f.azurewebsites.net/api/Certificate?code=abc==",
        "https://[::1]:8443",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (xboot_set_server(c, good[i]) != XBOOT_OK)
            fail_msg("'%s' refused: %s", good[i], xboot_error_detail(c));
    static const char *const bad[] = {
        "http://127.0.0.1:8080", /* TLS only */
        "ftp://127.0.0.1",
        "garbage",
        "",
        "https://",
        "127.0.0.1:8443",
        "https://host name",
        "https://host\n.example.com",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (xboot_set_server(c, bad[i]) != XBOOT_ERR_INVALID_ARGUMENT)
            fail_msg("'%s' was not refused", bad[i]);
        assert_true(xboot_error_detail(c)[0] != '\0');
    }
    assert_int_equal(xboot_set_server(c, NULL), XBOOT_ERR_INVALID_ARGUMENT);
    xboot_client_free(c);
}

static void test_numeric_setters(void **state)
{
    (void)state;
    xboot_client *c = NULL;
    assert_int_equal(xboot_client_new(&c), XBOOT_OK);
    const xboot_err bad = XBOOT_ERR_INVALID_ARGUMENT;
    assert_int_equal(xboot_set_timeouts(c, -1, 1000), bad);
    assert_int_equal(xboot_set_timeouts(c, 1000, -1), bad);
    assert_int_equal(xboot_set_timeouts(c, -5, -5), bad);
    assert_int_equal(xboot_set_timeouts(c, 2000, 10000), XBOOT_OK);
    assert_int_equal(xboot_set_retries(c, 0, 1000, 30000), bad);
    assert_int_equal(xboot_set_retries(c, 21, 1000, 30000), bad);
    assert_int_equal(xboot_set_retries(c, -1, 1000, 30000), bad);
    assert_int_equal(xboot_set_retries(c, 3, -1, 30000), bad);
    assert_int_equal(xboot_set_retries(c, 3, 1000, -1), bad);
    assert_int_equal(xboot_set_retries(c, 1, 1000, 30000), XBOOT_OK);
    assert_int_equal(xboot_set_retries(c, 20, 1000, 30000), XBOOT_OK);
    assert_int_equal(xboot_set_key_type(c, (xboot_key_type)3), bad);
    assert_int_equal(xboot_set_key_type(c, (xboot_key_type)-1), bad);
    assert_int_equal(xboot_set_key_type(c, XBOOT_KEY_RSA_2048), XBOOT_OK);
    assert_int_equal(xboot_set_subject(c, "/CN=x"), bad);
    assert_int_equal(xboot_set_subject(c, "/C=USA"), bad);
    assert_true(xboot_error_detail(c)[0] != '\0');
    assert_int_equal(xboot_set_subject(c, "/O=Contoso/OU=Sensors"), XBOOT_OK);
    assert_int_equal(xboot_set_pfx(c, 1, "pw"), XBOOT_OK);
    assert_int_equal(xboot_set_pfx(c, 0, NULL), XBOOT_OK);
    assert_int_equal(xboot_set_credential(c, "s3cret"), XBOOT_OK);
    assert_int_equal(xboot_set_credential(c, NULL), XBOOT_OK); /* clears it */
    assert_int_equal(xboot_set_api_key(c, "key"), XBOOT_OK);
    xboot_client_free(c);
}

static void test_trust_anchor(void **state)
{
    (void)state;
    xboot_client *c = NULL;
    assert_int_equal(xboot_client_new(&c), XBOOT_OK);
    static const char garbage[] = "-----BEGIN CERTIFICATE-----\nnot base64\n"
                                  "-----END CERTIFICATE-----\n";
    assert_int_equal(xboot_set_trust_anchor_pem(c, garbage, strlen(garbage)),
                     XBOOT_ERR_TRUST_ANCHOR);
    assert_true(xboot_error_detail(c)[0] != '\0');
    assert_int_equal(xboot_set_trust_anchor_pem(c, "hello", 5), XBOOT_ERR_TRUST_ANCHOR);
    assert_int_equal(xboot_set_trust_anchor_file(c, "/nonexistent/xboot/root-ca.pem"),
                     XBOOT_ERR_TRUST_ANCHOR);
    assert_true(xboot_error_detail(c)[0] != '\0');
    assert_int_equal(xboot_set_trust_anchor_file(c, "/dev/null"), XBOOT_ERR_TRUST_ANCHOR);
    /* A real certificate is taken, from a file or from memory. */
    assert_int_equal(xboot_set_trust_anchor_file(c, root_pem), XBOOT_OK);
    uint8_t *pem = NULL;
    size_t len = 0;
    assert_int_equal(xb_read_file(root_pem, 1 << 20, &pem, &len, NULL), XB_OK);
    assert_int_equal(xboot_set_trust_anchor_pem(c, (const char *)pem, len), XBOOT_OK);
    free(pem);
    xboot_client_free(c);
}

/* Progress events seen: enroll on an unconfigured handle must not get as far as sending. */
static unsigned events_seen;
static void count_events(void *arg, xboot_event event, const char *detail)
{
    (void)arg;
    (void)detail;
    events_seen |= 1u << event;
}

static void expect_not_configured(xboot_client *c)
{
    events_seen = 0;
    assert_int_equal(xboot_enroll(c, 0), XBOOT_ERR_NOT_CONFIGURED);
    assert_true(xboot_error_detail(c)[0] != '\0');
    assert_int_equal(events_seen & (1u << XBOOT_EVENT_SENDING_CSR), 0);
    assert_null(xboot_certificate(c));
    assert_int_equal(xboot_was_issued(c), 0);
    assert_int_equal(xboot_http_status(c), 0);
}

static void test_enroll_unconfigured(void **state)
{
    (void)state;
    xboot_client *c = NULL;
    assert_int_equal(xboot_client_new(&c), XBOOT_OK);
    assert_int_equal(xboot_set_progress(c, count_events, NULL), XBOOT_OK);
    expect_not_configured(c);
    expect_not_configured(c); /* and again: nothing was half-done */
    /* A server alone (port 1 on loopback: nothing listens; a connection attempt would show as
     * a network error, not "not configured"). */
    assert_int_equal(xboot_set_server(c, "https://127.0.0.1:1"), XBOOT_OK);
    expect_not_configured(c);
    assert_int_equal(xboot_set_registration_id(c, "dev-unconfigured-1"), XBOOT_OK);
    expect_not_configured(c); /* still no trust anchor */
    xboot_client_free(c);

    /* ID and trust anchor set, no server. */
    assert_int_equal(xboot_client_new(&c), XBOOT_OK);
    assert_int_equal(xboot_set_progress(c, count_events, NULL), XBOOT_OK);
    assert_int_equal(xboot_set_registration_id(c, "dev-unconfigured-2"), XBOOT_OK);
    assert_int_equal(xboot_set_trust_anchor_file(c, root_pem), XBOOT_OK);
    expect_not_configured(c);
    xboot_client_free(c);

    /* Server and trust anchor, no ID. */
    assert_int_equal(xboot_client_new(&c), XBOOT_OK);
    assert_int_equal(xboot_set_progress(c, count_events, NULL), XBOOT_OK);
    assert_int_equal(xboot_set_server(c, "https://127.0.0.1:1"), XBOOT_OK);
    assert_int_equal(xboot_set_trust_anchor_file(c, root_pem), XBOOT_OK);
    expect_not_configured(c);
    xboot_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regid_length),        cmocka_unit_test(test_regid_alphabet),
        cmocka_unit_test(test_set_registration_id), cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_key_type_names),      cmocka_unit_test(test_null_handle),
        cmocka_unit_test(test_set_server),          cmocka_unit_test(test_numeric_setters),
        cmocka_unit_test(test_trust_anchor),        cmocka_unit_test(test_enroll_unconfigured),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
