/* Bootstrap credentials as bytes: per-device secrets and group-derived device keys. Shared by
 * xbootd (which checks them) and xbootctl (which makes them); docs/security.md explains each. */
#ifndef XB_CREDENTIAL_H
#define XB_CREDENTIAL_H

#include <stddef.h>
#include <stdint.h>

/* A secret or derived key as the device sends it: standard base64 of 32 bytes. */
#define XB_CREDENTIAL_B64_LEN 44
/* "sha256:" and 64 hex digits: how a secret's hash is written in an import file. */
#define XB_SECRET_HASH_TEXT_LEN (7 + 64)

/* 256 random bits from the OpenSSL DRBG, base64: 0, or -1 if the DRBG failed. */
int xb_secret_generate(char out[XB_CREDENTIAL_B64_LEN + 1]);
/* What the registry stores for a secret: SHA-256 of its text exactly as the device sends it. */
void xb_secret_hash(const char *secret, size_t len, uint8_t out[32]);
/* "sha256:<64 hex>" (either case) to the 32 bytes: 0, or -1 if text is not that. */
int xb_secret_hash_parse(const char *text, size_t len, uint8_t out[32]);
/* The secret sent matches the stored hash; constant time in the secret's content. */
int xb_secret_matches(const char *secret, size_t len, const uint8_t hash[32]);

/* Azure DPS symmetric-key group enrollment: the key of device reg_id in the group with
 * group_key is Base64(HMAC-SHA256(group_key, UTF-8(reg_id))). 0, or -1 on a crypto failure. */
int xb_derive_device_key(const uint8_t *group_key, size_t group_key_len, const char *reg_id,
                         char out[XB_CREDENTIAL_B64_LEN + 1]);
/* The password sent is reg_id's key in that group; constant time in the password's content. */
int xb_derived_key_matches(const uint8_t *group_key, size_t group_key_len, const char *reg_id,
                           const char *password, size_t len);

#endif
