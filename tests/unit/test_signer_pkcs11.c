/* The PKCS#11 signer (src/ca/signer_pkcs11.c) against a SoftHSM2 token this test creates in a
 * temporary directory: keys generated in the token (EC P-256, RSA-2048), non-extractable;
 * signatures verify with the public key read from the token; a forked child signs after
 * after_fork; a token taken away makes check() and sign() answer XB_ERR_CA_UNAVAILABLE, and
 * putting it back recovers without reopening the signer. Skipped when SoftHSM2 is missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "signer.h"
#include "signer_pkcs11.h"

static const char *module_path(void)
{
    static const char *const candidates[] = {"/usr/lib/softhsm/libsofthsm2.so",
                                             "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                                             "/usr/lib64/pkcs11/libsofthsm2.so"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (access(candidates[i], R_OK) == 0)
            return candidates[i];
    return NULL;
}

static char g_dir[64];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static int group_setup(void **state)
{
    (void)state;
    if (module_path() == NULL || system("command -v softhsm2-util >/dev/null") != 0)
        return 0;
    snprintf(g_dir, sizeof g_dir, "/tmp/xb-p11-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    char conf[128];
    snprintf(conf, sizeof conf, "%s/softhsm2.conf", g_dir);
    FILE *f = fopen(conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
            g_dir);
    fclose(f);
    setenv("SOFTHSM2_CONF", conf, 1);
    return run("mkdir -p %s/tokens && softhsm2-util --init-token --free --label xb-ec --pin 1234 "
               "--so-pin 5678 >/dev/null && softhsm2-util --init-token --free --label xb-rsa "
               "--pin 1234 --so-pin 5678 >/dev/null",
               g_dir) == 0
               ? 0
               : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_dir[0] != '\0')
        run("rm -rf %s", g_dir);
    return 0;
}

static void uri_for(char *buf, size_t len, const char *token, const char *object)
{
    snprintf(buf, len, "pkcs11:token=%s;object=%s;type=private?module-path=%s&pin-value=1234",
             token, object, module_path());
}

/* Sign a random SHA-256 digest with s and verify it with s->pub. */
static int sign_verifies(xb_signer *s, xb_err *err)
{
    uint8_t dgst[32], sig[1024];
    size_t sig_len = sizeof sig;
    RAND_bytes(dgst, sizeof dgst);
    xb_diag d = {{0}};
    *err = s->ops->sign(s, EVP_sha256(), dgst, sizeof dgst, sig, &sig_len, &d);
    if (*err != XB_OK)
        return 0;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(s->pub, NULL);
    int ok = ctx != NULL && EVP_PKEY_verify_init(ctx) > 0 &&
             EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0 &&
             EVP_PKEY_verify(ctx, sig, sig_len, dgst, sizeof dgst) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static void generate_and_sign(const char *token, const char *key_type, int base_id)
{
    if (module_path() == NULL || g_dir[0] == '\0')
        skip();
    char uri[512];
    uri_for(uri, sizeof uri, token, "signing");
    xb_diag d = {{0}};
    EVP_PKEY *pub = NULL;
    assert_int_equal(xb_pkcs11_generate_key(uri, NULL, key_type, &pub, &d), XB_OK);
    assert_non_null(pub);
    assert_int_equal(EVP_PKEY_get_base_id(pub), base_id);
    /* A second one under the same name is refused. */
    EVP_PKEY *again = NULL;
    assert_int_equal(xb_pkcs11_generate_key(uri, NULL, key_type, &again, &d), XB_ERR_EXISTS);

    xb_signer *s = NULL;
    assert_int_equal(xb_signer_pkcs11_open(uri, NULL, &s, &d), XB_OK);
    assert_null(s->pkey);
    assert_int_equal(EVP_PKEY_eq(s->pub, pub), 1);
    EVP_PKEY_free(pub);
    xb_err err;
    assert_true(sign_verifies(s, &err));
    assert_int_equal(s->ops->check(s, &d), XB_OK);
    /* A measurement, not a limit: what one token session signs per second. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 200; i++) {
        uint8_t dg[32] = {(uint8_t)i}, sg[1024];
        size_t sl = sizeof sg;
        assert_int_equal(s->ops->sign(s, EVP_sha256(), dg, sizeof dg, sg, &sl, &d), XB_OK);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("%s: 200 signatures in %.3f s (%.0f/s)\n", key_type, secs, 200 / secs);

    /* The private key is not extractable (pkcs11-tool reads the token's attributes). */
    char listing[128];
    snprintf(listing, sizeof listing, "%s/objects-%s", g_dir, token);
    assert_int_equal(run("pkcs11-tool --module %s --token-label %s --login --pin 1234 -O "
                         "--type privkey >%s 2>/dev/null",
                         module_path(), token, listing),
                     0);
    assert_int_equal(run("grep -q 'Access:.*sensitive.*never extractable' %s", listing), 0);
    /* "extractable" on its own (after ':' or ',') would be CKA_EXTRACTABLE true. */
    assert_int_not_equal(run("grep -Eq 'Access:.*[:,] +extractable' %s", listing), 0);

    /* A worker forked after the open signs after after_fork. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        xb_diag cd = {{0}};
        xb_err cerr;
        int ok = s->ops->after_fork(s, &cd) == XB_OK && sign_verifies(s, &cerr) &&
                 sign_verifies(s, &cerr);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* And the parent still signs. */
    assert_true(sign_verifies(s, &err));
    s->ops->free(s);
}

static void test_ec_p256(void **state)
{
    (void)state;
    generate_and_sign("xb-ec", "ec-p256", EVP_PKEY_EC);
}

static void test_rsa_2048(void **state)
{
    (void)state;
    generate_and_sign("xb-rsa", "rsa-2048", EVP_PKEY_RSA);
}

/* The token directory moved away (the token "removed"), then put back. */
static void test_token_removed_and_back(void **state)
{
    (void)state;
    if (module_path() == NULL || g_dir[0] == '\0')
        skip();
    char uri[512];
    uri_for(uri, sizeof uri, "xb-ec", "signing");
    xb_diag d = {{0}};
    xb_signer *s = NULL;
    assert_int_equal(xb_signer_pkcs11_open(uri, NULL, &s, &d), XB_OK);
    xb_err err;
    assert_true(sign_verifies(s, &err));

    assert_int_equal(run("mv %s/tokens %s/tokens.away && mkdir %s/tokens", g_dir, g_dir, g_dir), 0);
    assert_int_equal(s->ops->check(s, &d), XB_ERR_CA_UNAVAILABLE);
    assert_false(sign_verifies(s, &err));
    assert_int_equal(err, XB_ERR_CA_UNAVAILABLE);
    print_message("unavailable: %s\n", d.msg);

    /* A worker started while the token is away starts (after_fork does not fail it), answers
     * unavailable, and signs once the token is back. */
    char flag[128];
    snprintf(flag, sizeof flag, "%s/child-waiting", g_dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        xb_diag cd = {{0}};
        xb_err cerr;
        int ok = s->ops->after_fork(s, &cd) == XB_OK && !sign_verifies(s, &cerr) &&
                 cerr == XB_ERR_CA_UNAVAILABLE && s->ops->check(s, &cd) == XB_ERR_CA_UNAVAILABLE;
        /* The parent puts the token back, then removes the flag. */
        FILE *f = fopen(flag, "w");
        if (f != NULL)
            fclose(f);
        for (int i = 0; ok && i < 200 && access(flag, F_OK) == 0; i++)
            usleep(50000);
        sleep(2);
        ok = ok && sign_verifies(s, &cerr) && s->ops->check(s, &cd) == XB_OK;
        _exit(ok ? 0 : 1);
    }
    for (int i = 0; i < 200 && access(flag, F_OK) != 0; i++)
        usleep(50000);

    assert_int_equal(run("rmdir %s/tokens && mv %s/tokens.away %s/tokens", g_dir, g_dir, g_dir), 0);
    unlink(flag);
    /* Retries are held back for a second after a failure. */
    sleep(2);
    assert_true(sign_verifies(s, &err));
    assert_int_equal(s->ops->check(s, &d), XB_OK);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    s->ops->free(s);
}

/* A reload (a second signer for the same key, as xbootd's workers make on SIGHUP) after the
 * token came back, in a process whose first signer has not used the token since: the module
 * still has the token list of the outage, and the new signer must find the token anyway. Then
 * both sign, and freeing the old one (whose session ended with the module's re-initialization)
 * does not close the new one's. */
static void test_reload_after_token_back(void **state)
{
    (void)state;
    if (module_path() == NULL || g_dir[0] == '\0')
        skip();
    char uri[512];
    uri_for(uri, sizeof uri, "xb-ec", "signing");
    xb_diag d = {{0}};
    xb_signer *old = NULL, *fresh = NULL;
    assert_int_equal(xb_signer_pkcs11_open(uri, NULL, &old, &d), XB_OK);
    xb_err err;
    assert_true(sign_verifies(old, &err));
    assert_int_equal(run("mv %s/tokens %s/tokens.away && mkdir %s/tokens", g_dir, g_dir, g_dir), 0);
    assert_int_equal(old->ops->check(old, &d), XB_ERR_CA_UNAVAILABLE);
    assert_int_equal(run("rmdir %s/tokens && mv %s/tokens.away %s/tokens", g_dir, g_dir, g_dir), 0);

    d.msg[0] = '\0';
    err = xb_signer_pkcs11_open(uri, NULL, &fresh, &d);
    if (err != XB_OK)
        fail_msg("the reload's signer: %s", d.msg);
    assert_true(sign_verifies(fresh, &err));
    sleep(2); /* the old signer holds back its retries for a second after its failure */
    assert_true(sign_verifies(old, &err));
    old->ops->free(old);
    assert_true(sign_verifies(fresh, &err));
    assert_int_equal(fresh->ops->check(fresh, &d), XB_OK);
    fresh->ops->free(fresh);
}

/* A token that stops answering: the call is given up after its timeout (503), the next one
 * is refused at once while the first is still stuck, and signing resumes when it answers. */
static void test_token_hangs(void **state)
{
    (void)state;
    if (module_path() == NULL || g_dir[0] == '\0')
        skip();
    char uri[512], hang[128];
    snprintf(hang, sizeof hang, "%s/hang", g_dir);
    setenv("XB_P11_SHIM_TARGET", module_path(), 1);
    setenv("XB_P11_SHIM_HANG", hang, 1);
    snprintf(uri, sizeof uri, "pkcs11:token=xb-ec;object=signing?module-path=%s&pin-value=1234",
             XB_P11_SHIM);
    xb_diag d = {{0}};
    xb_signer *s = NULL;
    assert_int_equal(xb_signer_pkcs11_open(uri, NULL, &s, &d), XB_OK);
    xb_err err;
    assert_true(sign_verifies(s, &err));

    assert_int_equal(run("touch %s", hang), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_false(sign_verifies(s, &err));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(err, XB_ERR_CA_UNAVAILABLE);
    long waited = (long)(t1.tv_sec - t0.tv_sec);
    print_message("hung token: answered after %ld s\n", waited);
    assert_true(waited >= 4 && waited <= 7);
    /* The stuck call holds the session: the next request is refused without waiting. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(s->ops->check(s, &d), XB_ERR_CA_UNAVAILABLE);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec <= 1);
    assert_non_null(strstr(d.msg, "not yet answered"));

    unlink(hang);
    int ok = 0;
    for (int i = 0; i < 50 && !ok; i++) { /* bounded: 5 s */
        ok = sign_verifies(s, &err);
        if (!ok)
            usleep(100000);
    }
    assert_true(ok);
    assert_int_equal(s->ops->check(s, &d), XB_OK);
    s->ops->free(s);
}

static void test_bad_uris(void **state)
{
    (void)state;
    if (module_path() == NULL || g_dir[0] == '\0')
        skip();
    xb_diag d = {{0}};
    xb_signer *s = NULL;
    char uri[512];
    /* No module anywhere. */
    assert_int_equal(xb_signer_pkcs11_open("pkcs11:token=xb-ec;object=signing", NULL, &s, &d),
                     XB_ERR_CONFIG);
    assert_non_null(strstr(d.msg, "module"));
    /* The module from the options. */
    xb_key_options opts = {.pkcs11_module = module_path()};
    assert_int_equal(
        xb_signer_pkcs11_open("pkcs11:token=xb-ec;object=signing;pin-value=1234", &opts, &s, &d),
        XB_OK);
    s->ops->free(s);
    /* A wrong PIN: refused, and the PIN is not in the message. */
    snprintf(uri, sizeof uri, "pkcs11:token=xb-ec;object=signing?module-path=%s&pin-value=98765",
             module_path());
    assert_int_equal(xb_signer_pkcs11_open(uri, NULL, &s, &d), XB_ERR_CONFIG);
    assert_null(strstr(d.msg, "98765"));
    /* The PIN from a file. */
    char pin[128];
    snprintf(pin, sizeof pin, "%s/pin", g_dir);
    assert_int_equal(run("printf '1234\\n' > %s", pin), 0);
    snprintf(uri, sizeof uri, "pkcs11:token=xb-ec;object=signing?module-path=%s&pin-source=file:%s",
             module_path(), pin);
    assert_int_equal(xb_signer_pkcs11_open(uri, NULL, &s, &d), XB_OK);
    s->ops->free(s);
    /* A misspelt attribute is refused rather than ignored (it would match any token). */
    snprintf(uri, sizeof uri, "pkcs11:tokn=xb-ec;object=signing?module-path=%s&pin-value=1234",
             module_path());
    assert_int_equal(xb_signer_pkcs11_open(uri, NULL, &s, &d), XB_ERR_CONFIG);
    assert_non_null(strstr(d.msg, "misspelling"));
    /* No such key, no such token. */
    uri_for(uri, sizeof uri, "xb-ec", "nope");
    assert_int_equal(xb_signer_pkcs11_open(uri, NULL, &s, &d), XB_ERR_CONFIG);
    assert_non_null(strstr(d.msg, "no such private key"));
    uri_for(uri, sizeof uri, "absent", "signing");
    assert_int_equal(xb_signer_pkcs11_open(uri, NULL, &s, &d), XB_ERR_CONFIG);
    assert_non_null(strstr(d.msg, "no such token"));
    assert_null(strstr(d.msg, "1234"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ec_p256),
        cmocka_unit_test(test_rsa_2048),
        cmocka_unit_test(test_token_removed_and_back),
        cmocka_unit_test(test_reload_after_token_back),
        cmocka_unit_test(test_token_hangs),
        cmocka_unit_test(test_bad_uris),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
