/* Test helper for tests/e2e/store_crash.sh: enroll through libxboot and die with SIGKILL just
 * before file-system step N of the store's write (the library's test hook), or check what the
 * store holds afterwards.
 *
 *   store_crash enroll URL TRUST ID DIR STEP   (STEP 0: never die) -> 0 when it completed
 *   store_crash check TRUST ID DIR             -> prints "valid SERIAL" (0), "empty" (1) or
 *                                                 "invalid: why" (2) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>

#include "client.h"
#include "xboot/xboot.h"

static int kill_at;

static void die_at_step(int step)
{
    if (step == kill_at)
        raise(SIGKILL);
}

static int configure(xboot_client *c, const char *trust, const char *id, const char *dir)
{
    return xboot_set_trust_anchor_file(c, trust) == XBOOT_OK &&
           xboot_set_registration_id(c, id) == XBOOT_OK && xboot_set_store_dir(c, dir) == XBOOT_OK;
}

static void print_serial(X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    printf("valid %s\n", hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
}

static int check(const char *trust, const char *id, const char *dir)
{
    xboot_client *c = NULL;
    if (xboot_client_new(&c) != XBOOT_OK || !configure(c, trust, id, dir))
        return 3;
    xboot_err e = xboot_load(c);
    int rc = 0;
    if (e == XBOOT_OK) {
        print_serial(xboot_certificate(c));
    } else if (strstr(xboot_error_detail(c), "nothing stored") != NULL) {
        printf("empty\n");
        rc = 1;
    } else {
        printf("invalid: %s: %s\n", xboot_strerror(e), xboot_error_detail(c));
        rc = 2;
    }
    xboot_client_free(c);
    return rc;
}

static int enroll(const char *url, const char *trust, const char *id, const char *dir, int step)
{
    xboot_client *c = NULL;
    if (xboot_client_new(&c) != XBOOT_OK || !configure(c, trust, id, dir) ||
        xboot_set_server(c, url) != XBOOT_OK || xboot_set_pfx(c, 1, "test") != XBOOT_OK)
        return 3;
    kill_at = step;
    xboot__set_store_hook(c, die_at_step);
    xboot_err e = xboot_enroll(c, XBOOT_ENROLL_FORCE);
    if (e != XBOOT_OK)
        fprintf(stderr, "enroll: %s: %s\n", xboot_strerror(e), xboot_error_detail(c));
    xboot_client_free(c);
    return e == XBOOT_OK ? 0 : 4;
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "enroll") == 0)
        return enroll(argv[2], argv[3], argv[4], argv[5], atoi(argv[6]));
    if (argc == 5 && strcmp(argv[1], "check") == 0)
        return check(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: store_crash enroll URL TRUST ID DIR STEP | check TRUST ID DIR\n");
    return 64;
}
