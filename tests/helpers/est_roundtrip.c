/* Test helper for tests/e2e/est_device.sh: libxboot's EST enrollment and renewal, end to end.
 *
 *   est_roundtrip URL TRUST ID DIR CREDENTIAL_FILE|-
 *
 * Enrolls over EST (HTTP Basic with the credential when one is given), then, with a renewal
 * threshold of 1%, asks xboot_renew_due and renews. Prints "enrolled SERIAL", "due 0|1",
 * "renewed SERIAL" and exits 0 when the renewed certificate is new, for a new key, and stored;
 * otherwise prints the error and exits 1. */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>

#include "xboot/xboot.h"

static void print_serial(const char *what, X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    printf("%s %s\n", what, hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
}

static int fail(xboot_client *c, const char *step, xboot_err e)
{
    printf("%s: %s %s %s\n", step, xboot_err_code(e), xboot_error_detail(c),
           xboot_server_error_code(c));
    return 1;
}

static xboot_err configure(xboot_client *c, char **argv)
{
    xboot_err e = xboot_set_server(c, argv[1]);
    if (e == XBOOT_OK)
        e = xboot_set_trust_anchor_file(c, argv[2]);
    if (e == XBOOT_OK)
        e = xboot_set_registration_id(c, argv[3]);
    if (e == XBOOT_OK)
        e = xboot_set_store_dir(c, argv[4]);
    if (e == XBOOT_OK)
        e = xboot_set_protocol(c, XBOOT_PROTOCOL_EST);
    if (e == XBOOT_OK)
        e = xboot_set_retries(c, 1, 0, 0);
    if (e == XBOOT_OK && strcmp(argv[5], "-") != 0) {
        char secret[256] = "";
        FILE *f = fopen(argv[5], "r");
        if (f == NULL || fgets(secret, sizeof secret, f) == NULL)
            e = XBOOT_ERR_INVALID_ARGUMENT;
        if (f != NULL)
            fclose(f);
        secret[strcspn(secret, "\r\n")] = '\0';
        if (e == XBOOT_OK)
            e = xboot_set_credential(c, secret);
    }
    return e;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: est_roundtrip URL TRUST ID DIR CREDENTIAL_FILE|-\n");
        return 64;
    }
    xboot_client *c = NULL;
    xboot_err e = xboot_client_new(&c);
    if (e == XBOOT_OK)
        e = configure(c, argv);
    if (e == XBOOT_OK)
        e = xboot_enroll(c, 0);
    if (e != XBOOT_OK) {
        int rc = fail(c, "enroll", e);
        xboot_client_free(c);
        return rc;
    }
    print_serial("enrolled", xboot_certificate(c));
    X509 *old_cert = xboot_certificate(c);
    EVP_PKEY *old_key = xboot_key(c);
    X509_up_ref(old_cert);
    EVP_PKEY_up_ref(old_key);
    int due = -1, rc = 1;
    e = xboot_set_renew_threshold(c, 1);
    if (e == XBOOT_OK)
        e = xboot_renew_due(c, &due);
    printf("due %d\n", due);
    if (e == XBOOT_OK)
        e = xboot_renew(c);
    if (e != XBOOT_OK) {
        rc = fail(c, "renew", e);
    } else {
        print_serial("renewed", xboot_certificate(c));
        int new_cert = X509_cmp(old_cert, xboot_certificate(c)) != 0;
        int new_key = EVP_PKEY_eq(old_key, xboot_key(c)) != 1;
        int issued = xboot_was_issued(c);
        /* What is stored now is the new pair. */
        int stored = xboot_load(c) == XBOOT_OK && EVP_PKEY_eq(old_key, xboot_key(c)) != 1;
        printf("new_cert %d new_key %d issued %d stored %d\n", new_cert, new_key, issued, stored);
        rc = new_cert && new_key && issued && stored ? 0 : 1;
    }
    X509_free(old_cert);
    EVP_PKEY_free(old_key);
    xboot_client_free(c);
    return rc;
}
