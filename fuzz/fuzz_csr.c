/* libFuzzer: arbitrary DER through the CSR checks and issuance, fast path and reference
 * (ca_reference.h) side by side. Invariants, any violation aborts:
 * - both parsers agree on accept/refuse and the error code, both subject checks too;
 * - for an accepted CSR both issuers, with the same serial and time, write the same
 *   TBSCertificate and signatureAlgorithm, both signatures verify, the record fields match;
 * - the certificate xb_ca_issue returns parses, verifies with the CA key, is not a CA and is for
 *   clientAuth only, whatever the CSR asked for.
 * Mutations inside the signed CertificationRequestInfo break the signature, so every input is
 * also tried re-signed: if its first inner element (the request info, BER or not) contains the
 * SubjectPublicKeyInfo of a fixture key (tests/fixtures/csr, the seed corpus), it is signed
 * with that key, which lets names, attributes and encodings reach acceptance. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca_reference.h"
#include "der.h"

#define FUZZ_MAX_KEYS 8

static xb_ca *fuzz_cas[2]; /* default subject_attributes, and "" */
static EVP_PKEY *fuzz_ca_pub;
static time_t fuzz_now;
static EVP_PKEY *fuzz_keys[FUZZ_MAX_KEYS];
static unsigned char *fuzz_spki[FUZZ_MAX_KEYS];
static int fuzz_spki_len[FUZZ_MAX_KEYS];
static int fuzz_key_count;

static void fuzz_load_fixture_keys(void)
{
    /* The fixtures sit beside the harness's source (CMake compiles it by absolute path). */
    static const char *const names[] = {"mbedtls-p256", "mbedtls-p384",      "mbedtls-rsa2048",
                                        "gnutls-p256",  "pyca-p384-asks-ca", "dotnet-style-rsapss"};
    char dir[512];
    const char *env = getenv("XB_FIXTURES");
    if (env != NULL) {
        snprintf(dir, sizeof dir, "%s/csr", env);
    } else {
        snprintf(dir, sizeof dir, "%s", __FILE__);
        char *slash = strrchr(dir, '/');
        snprintf(slash != NULL ? slash : dir, sizeof dir - (size_t)(slash ? slash - dir : 0),
                 "/../tests/fixtures/csr");
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0] && fuzz_key_count < FUZZ_MAX_KEYS; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s.key.pem", dir, names[i]);
        FILE *f = fopen(path, "r");
        EVP_PKEY *k = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
        if (f != NULL)
            fclose(f);
        if (k == NULL)
            continue;
        unsigned char *spki = NULL;
        int len = i2d_PUBKEY(k, &spki);
        if (len <= 0) {
            EVP_PKEY_free(k);
            continue;
        }
        fuzz_keys[fuzz_key_count] = k;
        fuzz_spki[fuzz_key_count] = spki;
        fuzz_spki_len[fuzz_key_count++] = len;
    }
}

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
    const char *attrs[2] = {NULL, ""};
    for (int i = 0; i < 2; i++) {
        xb_ca_config cfg = {.cert_path = cert,
                            .key_path = key,
                            .chain_path = NULL,
                            .validity_days = 365,
                            .subject_attributes = attrs[i]};
        if (xb_ca_load(&cfg, &fuzz_cas[i], &d) != XB_OK)
            abort();
    }
    FILE *f = fopen(cert, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (x == NULL || (fuzz_ca_pub = X509_get_pubkey(x)) == NULL)
        abort();
    X509_free(x);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    fuzz_now = time(NULL);
    fuzz_load_fixture_keys();
    return 0;
}

/* The profile invariants on what xb_ca_issue returns. */
static void fuzz_check_issued(xb_ca *ca, const uint8_t *data, size_t size)
{
    xb_csr *csr = NULL;
    xb_diag d;
    if (xb_csr_parse(data, size, &csr, &d) != XB_OK)
        return;
    xb_issued out;
    if (xb_ca_issue(ca, csr, "fuzz-device", fuzz_now, &out, &d) == XB_OK) {
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
}

static void fuzz_crosscheck(xb_ca *ca, const uint8_t *data, size_t size, const uint8_t *serial)
{
    xb_crosscheck res;
    if (!xb_ca_crosscheck(ca, data, size, NULL, fuzz_now, serial, &res)) {
        fprintf(stderr, "fast path and reference disagree: %s\n", res.mismatch);
        abort();
    }
    if (res.parse_err == XB_OK)
        fuzz_check_issued(ca, data, size);
}

/* Length of the element at p (definite lengths, any BER form), or 0. */
static size_t fuzz_element_len(const uint8_t *p, size_t left, const uint8_t **contents,
                               long *contents_len)
{
    const unsigned char *q = p;
    int tag = 0, cls = 0;
    int ret = ASN1_get_object(&q, contents_len, &tag, &cls, (long)left);
    if ((ret & 0x80) || (ret & 1))
        return 0;
    *contents = q;
    return (size_t)(q - p) + (size_t)*contents_len;
}

static int fuzz_contains(const uint8_t *hay, size_t hay_len, const uint8_t *needle, size_t len)
{
    for (size_t i = 0; i + len <= hay_len; i++)
        if (memcmp(hay + i, needle, len) == 0)
            return 1;
    return 0;
}

/* data's request info signed with the fixture key whose SubjectPublicKeyInfo it contains. */
static uint8_t *fuzz_resign(const uint8_t *data, size_t size, size_t *out_len)
{
    const uint8_t *req, *info_contents;
    long req_len = 0, info_contents_len = 0;
    if (size == 0 || data[0] != XB_DER_SEQUENCE ||
        fuzz_element_len(data, size, &req, &req_len) == 0)
        return NULL;
    size_t info_len = fuzz_element_len(req, (size_t)req_len, &info_contents, &info_contents_len);
    if (info_len == 0)
        return NULL;
    int k = -1;
    for (int i = 0; i < fuzz_key_count && k < 0; i++)
        if (fuzz_contains(req, info_len, fuzz_spki[i], (size_t)fuzz_spki_len[i]))
            k = i;
    if (k < 0)
        return NULL;
    static const uint8_t ecdsa_sha256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                           0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
    static const uint8_t rsa_sha256[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                         0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};
    int rsa = EVP_PKEY_get_base_id(fuzz_keys[k]) == EVP_PKEY_RSA;
    const uint8_t *alg = rsa ? rsa_sha256 : ecdsa_sha256;
    size_t alg_len = rsa ? sizeof rsa_sha256 : sizeof ecdsa_sha256;
    uint8_t sig[1024];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL &&
             EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, fuzz_keys[k], NULL) == 1 &&
             EVP_DigestSign(ctx, sig, &sig_len, req, info_len) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        abort();
    size_t bits = xb_der_header_len(sig_len + 1) + sig_len + 1;
    size_t content = info_len + alg_len + bits;
    uint8_t *out = malloc(xb_der_header_len(content) + content), *p = out;
    if (out == NULL)
        return NULL;
    p = xb_der_put_header(p, XB_DER_SEQUENCE, content);
    memcpy(p, req, info_len);
    p += info_len;
    memcpy(p, alg, alg_len);
    p += alg_len;
    p = xb_der_put_header(p, XB_DER_BIT_STRING, sig_len + 1);
    *p++ = 0;
    memcpy(p, sig, sig_len);
    *out_len = (size_t)(p + sig_len - out);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Serial and CA from the input, so that both vary but stay reproducible. */
    uint8_t serial[XB_CA_SERIAL_LEN], md[32];
    unsigned int md_len = 0;
    if (!EVP_Digest(data, size, md, &md_len, EVP_sha256(), NULL))
        abort();
    memcpy(serial, md, sizeof serial);
    serial[XB_CA_SERIAL_LEN - 1] |= 1; /* never zero */
    if (md[16] & 1)
        serial[0] = 0; /* minimal-INTEGER stripping */
    xb_ca *ca = fuzz_cas[md[17] & 1];
    fuzz_crosscheck(ca, data, size, serial);
    size_t resigned_len = 0;
    uint8_t *resigned = fuzz_resign(data, size, &resigned_len);
    if (resigned != NULL) {
        fuzz_crosscheck(ca, resigned, resigned_len, serial);
        free(resigned);
    }
    return 0;
}
