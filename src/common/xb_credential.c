#include "xb_credential.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "xb_util.h"

/* Standard base64 of exactly 32 bytes (EVP_EncodeBlock writes no line breaks). */
static void xb_b64_32(const uint8_t in[32], char out[XB_CREDENTIAL_B64_LEN + 1])
{
    EVP_EncodeBlock((unsigned char *)out, in, 32);
}

int xb_secret_generate(char out[XB_CREDENTIAL_B64_LEN + 1])
{
    uint8_t raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    xb_b64_32(raw, out);
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

void xb_secret_hash(const char *secret, size_t len, uint8_t out[32])
{
    /* A fast hash is enough: the secret has 256 random bits, so no dictionary or brute force
     * applies; a slow KDF would only make every enrollment cost more CPU. */
    EVP_Digest(secret, len, out, NULL, EVP_sha256(), NULL);
}

int xb_secret_hash_parse(const char *text, size_t len, uint8_t out[32])
{
    if (len != XB_SECRET_HASH_TEXT_LEN || strncmp(text, "sha256:", 7) != 0)
        return -1;
    for (size_t i = 0; i < 32; i++) {
        int hi = xb_hex_digit(text[7 + 2 * i]), lo = xb_hex_digit(text[8 + 2 * i]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int xb_secret_matches(const char *secret, size_t len, const uint8_t hash[32])
{
    uint8_t got[32];
    xb_secret_hash(secret, len, got);
    int same = CRYPTO_memcmp(got, hash, sizeof got) == 0;
    OPENSSL_cleanse(got, sizeof got);
    return same;
}

int xb_derive_device_key(const uint8_t *group_key, size_t group_key_len, const char *reg_id,
                         char out[XB_CREDENTIAL_B64_LEN + 1])
{
    uint8_t mac[32];
    unsigned int mac_len = 0;
    /* EVP_Q_mac would do too; HMAC() is the one-shot that is not deprecated in OpenSSL 3. */
    if (HMAC(EVP_sha256(), group_key, (int)group_key_len, (const unsigned char *)reg_id,
             strlen(reg_id), mac, &mac_len) == NULL ||
        mac_len != sizeof mac)
        return -1;
    xb_b64_32(mac, out);
    OPENSSL_cleanse(mac, sizeof mac);
    return 0;
}

int xb_derived_key_matches(const uint8_t *group_key, size_t group_key_len, const char *reg_id,
                           const char *password, size_t len)
{
    char want[XB_CREDENTIAL_B64_LEN + 1];
    if (xb_derive_device_key(group_key, group_key_len, reg_id, want) != 0)
        return 0;
    /* The length is public (every derived key is 44 characters); the content is compared in
     * constant time. */
    int same = len == XB_CREDENTIAL_B64_LEN && CRYPTO_memcmp(want, password, len) == 0;
    OPENSSL_cleanse(want, sizeof want);
    return same;
}
