/* Test helper for tests/e2e/caller_key.sh: enroll with a key the caller holds as an EVP_PKEY
 * (as a TPM or PKCS#11 key would be held), never as a file of the store.
 *
 *   caller_key URL TRUST ID DIR KEYFILE
 *
 * KEYFILE stands in for the key's home outside the store (a token): it is loaded into an
 * EVP_PKEY and handed over with xboot_set_key. Prints "issued" or "unchanged" and exits 0 when
 * a checked certificate for that key is stored; otherwise prints the error and exits 1. */
#include <stdio.h>

#include <openssl/pem.h>

#include "xboot/xboot.h"

static EVP_PKEY *load_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return key;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: caller_key URL TRUST ID DIR KEYFILE\n");
        return 64;
    }
    EVP_PKEY *key = load_key(argv[5]);
    xboot_client *c = NULL;
    xboot_err e = key ? xboot_client_new(&c) : XBOOT_ERR_KEY;
    if (e == XBOOT_OK)
        e = xboot_set_server(c, argv[1]);
    if (e == XBOOT_OK)
        e = xboot_set_trust_anchor_file(c, argv[2]);
    if (e == XBOOT_OK)
        e = xboot_set_registration_id(c, argv[3]);
    if (e == XBOOT_OK)
        e = xboot_set_store_dir(c, argv[4]);
    if (e == XBOOT_OK)
        e = xboot_set_key(c, key);
    EVP_PKEY_free(key); /* the handle holds its own reference */
    if (e == XBOOT_OK)
        e = xboot_set_retries(c, 1, 0, 0);
    if (e == XBOOT_OK)
        e = xboot_enroll(c, 0);
    int same_key =
        e == XBOOT_OK && EVP_PKEY_eq(X509_get0_pubkey(xboot_certificate(c)), xboot_key(c)) == 1;
    if (e == XBOOT_OK && same_key)
        printf("%s\n", xboot_was_issued(c) ? "issued" : "unchanged");
    else
        printf("%s: %s %s\n", xboot_err_code(e), xboot_error_detail(c), xboot_server_error_code(c));
    xboot_client_free(c);
    return e == XBOOT_OK && same_key ? 0 : 1;
}
