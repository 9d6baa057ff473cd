/* libFuzzer: arbitrary DER through the CSR checks and, for every CSR they accept, through
 * issuance. Invariants: an accepted CSR always yields a certificate that parses, verifies with
 * the CA key and is not a CA; whatever the CSR asked for. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca.h"

static xb_ca *fuzz_ca;
static EVP_PKEY *fuzz_ca_pub;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char dir[] = "/tmp/xboot-fuzz-ca.XXXXXX";
    if (mkdtemp(dir) == NULL)
        abort();
    char ca[64], cert[96], key[96];
    snprintf(ca, sizeof ca, "%s/ca", dir);
    snprintf(cert, sizeof cert, "%s/signing-ca.pem", ca);
    snprintf(key, sizeof key, "%s/signing-ca.key", ca);
    xb_diag d;
    if (xb_ca_init_dir(ca, "ec-p256", "Fuzz", &d) != XB_OK)
        abort();
    xb_ca_config cfg = {cert, key, NULL, 365, NULL};
    if (xb_ca_load(&cfg, &fuzz_ca, &d) != XB_OK)
        abort();
    FILE *f = fopen(cert, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (x == NULL || (fuzz_ca_pub = X509_get_pubkey(x)) == NULL)
        abort();
    X509_free(x);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xb_csr *csr = NULL;
    xb_diag d;
    if (xb_csr_parse(data, size, &csr, &d) != XB_OK)
        return 0;
    xb_csr_check_subject(csr, "fuzz-device", &d);
    xb_issued out;
    if (xb_ca_issue(fuzz_ca, csr, "fuzz-device", time(NULL), &out, &d) == XB_OK) {
        const unsigned char *p = out.der;
        X509 *x = d2i_X509(NULL, &p, (long)out.der_len);
        if (x == NULL || p != out.der + out.der_len || X509_verify(x, fuzz_ca_pub) != 1 ||
            (X509_get_extension_flags(x) & EXFLAG_CA) ||
            X509_get_extended_key_usage(x) != XKU_SSL_CLIENT)
            abort();
        X509_free(x);
        xb_issued_clear(&out);
    }
    xb_csr_free(csr);
    return 0;
}
