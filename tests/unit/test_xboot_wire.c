/* The original wire format without HTTP: what the .NET client sends decodes; what is wrong is
 * named precisely. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "xboot_wire.h"

static xb_err decode(const char *body, xb_xboot_request *r)
{
    xb_diag d = {""};
    xb_err err = xb_xboot_decode(body, strlen(body), r, &d);
    if (err != XB_OK)
        assert_true(strlen(d.msg) > 0);
    return err;
}

static void test_decode_pascal_and_camel(void **state)
{
    (void)state;
    xb_xboot_request r;
    assert_int_equal(decode("{\"RegistrationId\":\"dev-1\",\"Csr\":\"TWE=\"}", &r), XB_OK);
    assert_string_equal(r.reg_id, "dev-1");
    assert_int_equal(r.csr_len, 2);
    assert_memory_equal(r.csr_der, "Ma", 2);
    xb_xboot_request_clear(&r);
    assert_int_equal(decode("{ \"csr\" : \"TQ==\", \"registrationId\" : \"a:b\", \"x\": 1 }", &r),
                     XB_OK);
    assert_string_equal(r.reg_id, "a:b");
    assert_int_equal(r.csr_len, 1);
    xb_xboot_request_clear(&r);
}

static void test_decode_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        xb_err want;
        int reg_id_known; /* the ID is logged once it is known valid */
    } cases[] = {
        {"", XB_ERR_MALFORMED_JSON, 0},
        {"{", XB_ERR_MALFORMED_JSON, 0},
        {"[]", XB_ERR_MALFORMED_REQUEST, 0},
        {"\"x\"", XB_ERR_MALFORMED_REQUEST, 0},
        {"{}", XB_ERR_MALFORMED_REQUEST, 0},
        {"{\"RegistrationId\":1,\"Csr\":\"TQ==\"}", XB_ERR_MALFORMED_REQUEST, 0},
        {"{\"RegistrationId\":\"a\",\"Csr\":null}", XB_ERR_MALFORMED_REQUEST, 0},
        {"{\"RegistrationId\":\"a b\",\"Csr\":\"TQ==\"}", XB_ERR_INVALID_REGISTRATION_ID, 0},
        {"{\"RegistrationId\":\"\",\"Csr\":\"TQ==\"}", XB_ERR_INVALID_REGISTRATION_ID, 0},
        {"{\"RegistrationId\":\"dev-1\",\"Csr\":\"TQ=\"}", XB_ERR_BAD_BASE64, 1},
        {"{\"RegistrationId\":\"dev-1\",\"Csr\":\"TW-_\"}", XB_ERR_BAD_BASE64, 1},
        {"{\"RegistrationId\":\"dev-1\",\"Csr\":\"TWE=\\n\"}", XB_ERR_BAD_BASE64, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        xb_xboot_request r;
        assert_int_equal(decode(cases[i].body, &r), cases[i].want);
        assert_null(r.csr_der);
        assert_int_equal(r.reg_id[0] != '\0', cases[i].reg_id_known);
        xb_xboot_request_clear(&r);
    }
}

static void test_content_types(void **state)
{
    (void)state;
    assert_true(xb_xboot_content_type_ok(NULL));
    assert_true(xb_xboot_content_type_ok("application/json"));
    assert_true(xb_xboot_content_type_ok("Application/JSON; charset=utf-8"));
    assert_true(xb_xboot_content_type_ok("text/plain; charset=utf-8"));
    assert_true(xb_xboot_content_type_ok("application/vnd.x+json"));
    assert_false(xb_xboot_content_type_ok("application/x-www-form-urlencoded"));
    assert_false(xb_xboot_content_type_ok("multipart/form-data; boundary=x"));
    assert_false(xb_xboot_content_type_ok("application/jsonx"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_pascal_and_camel),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_content_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
