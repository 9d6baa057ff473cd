/* xbootd configuration: defaults, file, environment overrides, refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char dir[64];
static char path[128];

static void write_conf(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/xboot-test-config.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/xboot.conf", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return rmdir(dir);
}

static const char *base = "[server]\ntls_cert = tls.pem\ntls_key = /abs/tls.key\n"
                          "[ca]\ncert = ca.pem\nkey = ca.key\n";

static void test_defaults_and_paths(void **state)
{
    (void)state;
    write_conf(base);
    xb_config *c = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_config_load(path, &c, &d), XB_OK);
    assert_string_equal(c->listen, "0.0.0.0:8443");
    assert_int_equal(c->threads, 0);
    assert_int_equal(c->validity_days, 365);
    assert_int_equal(c->open_mode, 0);
    assert_int_equal(c->allow_reenroll, 0);
    assert_string_equal(c->api_key, "");
    assert_string_equal(c->subject_attributes, "C,ST,L,O,OU");
    assert_string_equal(c->crl_url, "");
    char want[200];
    /* Relative paths are relative to the file; absolute ones stay. */
    snprintf(want, sizeof want, "%s/tls.pem", dir);
    assert_string_equal(c->tls_cert, want);
    assert_string_equal(c->tls_key, "/abs/tls.key");
    snprintf(want, sizeof want, "sqlite:%s/xboot.db", dir);
    assert_string_equal(c->registry_db, want);
    xb_config_free(c);
}

static void test_env_overrides_file(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof text, "%s[enroll]\nmode = open\napi_key = from-file\n", base);
    write_conf(text);
    setenv("XBOOT_ENROLL_API_KEY", "from-env", 1);
    setenv("XBOOT_CA_VALIDITY_DAYS", "30", 1);
    setenv("XBOOT_ENROLL_ALLOW_REENROLL", "yes", 1);
    xb_config *c = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_config_load(path, &c, &d), XB_OK);
    assert_string_equal(c->api_key, "from-env");
    assert_int_equal(c->validity_days, 30);
    assert_int_equal(c->allow_reenroll, 1);
    assert_int_equal(c->open_mode, 1);
    xb_config_free(c);
    unsetenv("XBOOT_ENROLL_API_KEY");
    unsetenv("XBOOT_CA_VALIDITY_DAYS");
    unsetenv("XBOOT_ENROLL_ALLOW_REENROLL");
}

static void expect_refused(const char *extra, const char *needle)
{
    char text[512];
    snprintf(text, sizeof text, "%s%s", base, extra);
    write_conf(text);
    xb_config *c = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_config_load(path, &c, &d), XB_ERR_CONFIG);
    assert_null(c);
    if (strstr(d.msg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", d.msg, needle);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("[enroll]\napi_kee = x\n", "api_kee");
    expect_refused("[bogus]\nx = 1\n", "bogus");
    expect_refused("[ca]\nvalidity_days = 0\n", "validity_days");
    expect_refused("[ca]\nvalidity_days = 12x\n", "validity_days");
    expect_refused("[server]\nthreads = -1\n", "threads");
    expect_refused("[enroll]\nmode = everyone\n", "mode");
    expect_refused("[enroll]\nallow_reenroll = maybe\n", "allow_reenroll");
    expect_refused("[server]\nlog_level = loud\n", "log_level");
    expect_refused("[server]\nlisten =\n", "nothing to serve");
    expect_refused("this is not ini\n", "line");
    expect_refused("[ca]\ncrl_url = ldap://pki.example.com/crl\n", "[ca] crl_url must start");
    expect_refused("[ca]\ncrl_url = http://pki.example.com/my crl\n", "[ca] crl_url holds a space");
}

/* crl_url as written; one over 512 bytes (from the environment) is refused. */
static void test_crl_url(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof text, "%s[ca]\ncrl_url = https://pki.example.com/crl?ca=1\n", base);
    write_conf(text);
    xb_config *c = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_config_load(path, &c, &d), XB_OK);
    assert_string_equal(c->crl_url, "https://pki.example.com/crl?ca=1");
    xb_config_free(c);
    char url[600];
    snprintf(url, sizeof url, "http://%0513d", 0);
    setenv("XBOOT_CA_CRL_URL", url, 1);
    c = NULL;
    assert_int_equal(xb_config_load(path, &c, &d), XB_ERR_CONFIG);
    unsetenv("XBOOT_CA_CRL_URL");
    assert_null(c);
    assert_non_null(strstr(d.msg, "[ca] crl_url is 520 bytes long, more than 512"));
}

static void test_missing_file(void **state)
{
    (void)state;
    xb_config *c = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_config_load("/nonexistent/xboot.conf", &c, &d), XB_ERR_CONFIG);
    assert_non_null(strstr(d.msg, "/nonexistent/xboot.conf"));
}

static void test_plain_http_only(void **state)
{
    (void)state;
    write_conf("[server]\nlisten =\nhttp_listen = 127.0.0.1:0\n[ca]\ncert = a\nkey = b\n");
    xb_config *c = NULL;
    assert_int_equal(xb_config_load(path, &c, NULL), XB_OK);
    assert_string_equal(c->listen, "");
    xb_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_paths), cmocka_unit_test(test_env_overrides_file),
        cmocka_unit_test(test_refusals),           cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_plain_http_only),    cmocka_unit_test(test_crl_url),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
