/* src/common: base64 as the wire uses it, registration IDs as Azure DPS defines them, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "xb_base64.h"
#include "xb_error.h"
#include "xb_regid.h"

static void test_base64_roundtrip(void **state)
{
    (void)state;
    uint8_t data[256];
    for (int i = 0; i < 256; i++)
        data[i] = (uint8_t)i;
    for (size_t len = 1; len <= sizeof data; len += 37) {
        char *s = xb_base64_encode(data, len);
        assert_non_null(s);
        uint8_t *out;
        size_t out_len;
        assert_int_equal(xb_base64_decode(s, strlen(s), &out, &out_len), 0);
        assert_int_equal(out_len, len);
        assert_memory_equal(out, data, len);
        free(out);
        free(s);
    }
}

static void test_base64_padding(void **state)
{
    (void)state;
    uint8_t *out;
    size_t len;
    assert_int_equal(xb_base64_decode("TWE=", 4, &out, &len), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(out, "Ma", 2);
    free(out);
    assert_int_equal(xb_base64_decode("TQ==", 4, &out, &len), 0);
    assert_int_equal(len, 1);
    free(out);
}

static void test_base64_empty(void **state)
{
    (void)state;
    uint8_t *out = NULL;
    size_t len = 99;
    assert_int_equal(xb_base64_decode("", 0, &out, &len), 0);
    assert_int_equal(len, 0);
    free(out);
}

static void test_base64_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "TWE",      /* unpadded */
        "TW E=",    /* space */
        "TWE=\n",   /* newline */
        "TW-_",     /* URL-safe alphabet */
        "T=E=",     /* padding inside */
        "=TWE",     /* padding first */
        "TWE=TWE=", /* padding in the middle */
        "TQ===",    /* too much padding (length) */
        "T===",     /* three pads */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *out = (uint8_t *)1;
        size_t len = 99;
        assert_int_equal(xb_base64_decode(bad[i], strlen(bad[i]), &out, &len), -1);
        assert_null(out);
        assert_int_equal(len, 0);
    }
}

static void test_regid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "a",         "dev-1",           "00:11:22:33:44:55",
        "SN.0001_x", "ends-with-dash-", "8b0b7a3c-2f1e-4c55-9a6e-0d1f2e3a4b5c"};
    static const char *const bad[] = {"",     "dev 1", "dev/1", "dev.", "dev_",
                                      "dev:", "dév",   "a\nb",  "a\"b", "dev;drop"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(xb_regid_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(xb_regid_valid(bad[i], strlen(bad[i])));
    char longest[130];
    memset(longest, 'a', sizeof longest);
    assert_true(xb_regid_valid(longest, 128));
    assert_false(xb_regid_valid(longest, 129));
    /* An embedded NUL is not a shorter ID. */
    assert_false(xb_regid_valid("ab\0cd", 5));
}

static void test_error_table(void **state)
{
    (void)state;
    /* Every code has a distinct stable name, a message and a real HTTP status. */
    for (int i = 0; i < XB_ERR__COUNT; i++) {
        const char *code = xb_err_code((xb_err)i);
        assert_non_null(code);
        assert_true(strlen(xb_strerror((xb_err)i)) > 0);
        int st = xb_err_http_status((xb_err)i);
        assert_true(st >= 200 && st <= 599);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(code, xb_err_code((xb_err)j));
    }
    assert_string_equal(xb_err_code(XB_ERR_ALREADY_ENROLLED), "already_enrolled");
    assert_int_equal(xb_err_http_status(XB_ERR_ALREADY_ENROLLED), 409);
    assert_int_equal(xb_err_http_status(XB_ERR_PAYLOAD_TOO_LARGE), 413);
    assert_string_equal(xb_err_code(XB_ERR_FORBIDDEN), "forbidden");
    assert_int_equal(xb_err_http_status(XB_ERR_FORBIDDEN), 403);
    assert_string_equal(xb_err_code(XB_ERR_POLICY_UNAVAILABLE), "policy_unavailable");
    assert_int_equal(xb_err_http_status(XB_ERR_POLICY_UNAVAILABLE), 503);
    assert_string_equal(xb_err_code(XB_ERR_RATE_LIMITED), "rate_limited");
    assert_int_equal(xb_err_http_status(XB_ERR_RATE_LIMITED), 429);
    assert_string_equal(xb_err_code((xb_err)999), "internal_error");
    xb_diag d = {""};
    assert_string_equal(xb_diag_message(&d, XB_ERR_BAD_CSR), xb_strerror(XB_ERR_BAD_CSR));
    assert_int_equal(xb_fail(&d, XB_ERR_BAD_CSR, "x=%d", 7), XB_ERR_BAD_CSR);
    assert_string_equal(xb_diag_message(&d, XB_ERR_BAD_CSR), "x=7");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_roundtrip),
        cmocka_unit_test(test_base64_padding),
        cmocka_unit_test(test_base64_refuses),
        cmocka_unit_test(test_base64_empty),
        cmocka_unit_test(test_regid),
        cmocka_unit_test(test_error_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
