/* Bootstrap credentials as bytes (src/common/xb_credential.c): the group-derived device key
 * against vectors made by independent code, and the secret hash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "xb_base64.h"
#include "xb_credential.h"

/* Base64(HMAC-SHA256(Base64Decode(group key), UTF-8(registration ID))). */
static const struct {
    const char *group_key_b64, *reg_id, *device_key;
} vectors[] = {
    /* The example of Microsoft's DPS documentation ("how to provision legacy devices using
     * symmetric keys"): a 64-byte group key as the portal shows it. */
    {"8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
     "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="},
    /* Computed with Python's hmac module: the bytes 0..31 as key; an ID with colons (a MAC
     * address), and an upper-case ID (keys are derived from the ID as sent, case and all). */
    {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "aa:bb:cc:dd:ee:ff",
     "0ZzDJPtEXmumVRPe1CG4xSgAEiZrGwcBmm7L+nugVjE="},
    {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "DEV1",
     "77tnp5HYLmpyS9327uO0PZvJZDK8BA1Nj8HdQGlVjS8="},
};

static void test_derived_key_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        uint8_t *key = NULL;
        size_t key_len = 0;
        const char *gk = vectors[i].group_key_b64;
        assert_int_equal(xb_base64_decode(gk, strlen(gk), &key, &key_len), 0);
        char out[XB_CREDENTIAL_B64_LEN + 1];
        assert_int_equal(xb_derive_device_key(key, key_len, vectors[i].reg_id, out), 0);
        assert_string_equal(out, vectors[i].device_key);
        const char *want = vectors[i].device_key;
        assert_true(xb_derived_key_matches(key, key_len, vectors[i].reg_id, want, strlen(want)));
        /* One character off, one short, or another device's key: refused. */
        char wrong[XB_CREDENTIAL_B64_LEN + 1];
        memcpy(wrong, want, sizeof wrong);
        wrong[5] = wrong[5] == 'A' ? 'B' : 'A';
        assert_false(xb_derived_key_matches(key, key_len, vectors[i].reg_id, wrong, strlen(wrong)));
        assert_false(
            xb_derived_key_matches(key, key_len, vectors[i].reg_id, want, strlen(want) - 1));
        assert_false(xb_derived_key_matches(key, key_len, "someone-else", want, strlen(want)));
        free(key);
    }
}

static void test_secret(void **state)
{
    (void)state;
    char a[XB_CREDENTIAL_B64_LEN + 1], b[XB_CREDENTIAL_B64_LEN + 1];
    assert_int_equal(xb_secret_generate(a), 0);
    assert_int_equal(xb_secret_generate(b), 0);
    assert_int_equal(strlen(a), XB_CREDENTIAL_B64_LEN);
    assert_string_not_equal(a, b);
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    assert_int_equal(xb_base64_decode(a, strlen(a), &raw, &raw_len), 0);
    assert_int_equal(raw_len, 32); /* 256 bits */
    free(raw);

    /* sha256("hunter2-but-long"), from sha256sum. */
    static const char text[] =
        "sha256:cb75483b6615fb3d9101c839b919ceb6a631f43eb64262be522395ff2b462b5e";
    uint8_t hash[32], computed[32];
    assert_int_equal(xb_secret_hash_parse(text, strlen(text), hash), 0);
    xb_secret_hash("hunter2-but-long", 16, computed);
    assert_memory_equal(hash, computed, 32);
    assert_true(xb_secret_matches("hunter2-but-long", 16, hash));
    assert_false(xb_secret_matches("hunter2-but-lonG", 16, hash));
    assert_false(xb_secret_matches("hunter2-but-long", 15, hash));

    /* Upper-case hex is the same hash; anything else is not a hash. */
    char upper[sizeof text];
    memcpy(upper, text, sizeof text);
    for (size_t i = 7; upper[i]; i++)
        if (upper[i] >= 'a' && upper[i] <= 'f')
            upper[i] = (char)(upper[i] - 'a' + 'A');
    assert_int_equal(xb_secret_hash_parse(upper, strlen(upper), computed), 0);
    assert_memory_equal(hash, computed, 32);
    assert_int_equal(xb_secret_hash_parse(text, strlen(text) - 1, hash), -1);
    assert_int_equal(xb_secret_hash_parse("md5:cb75", 8, hash), -1);
    char bad[sizeof text];
    memcpy(bad, text, sizeof text);
    bad[20] = 'g';
    assert_int_equal(xb_secret_hash_parse(bad, strlen(bad), hash), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derived_key_vectors),
        cmocka_unit_test(test_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
