/* Shared by the fast-path cross-check tests (test_ca_fastpath*.c): a temp dir of development
 * CAs, loading one, and asking xb_ca_crosscheck (the fuzzers' oracle) whether the fast and the
 * reference paths agree. Header-only: each test is its own executable.
 *
 * Before including, define CA_COUNT and `static const char *const ca_types[CA_COUNT]` (key
 * types for xb_ca_init_dir). */
#ifndef XB_CROSSCHECK_SUPPORT_H
#define XB_CROSSCHECK_SUPPORT_H

#include <stdio.h>
#include <stdlib.h>

#include "ca_reference.h"

static char base_dir[64];
static char ca_dirs[CA_COUNT][128];
static const time_t fixed_now = 1767225600; /* 2026-01-01T00:00:00Z */
/* One serial whose first octet needs a sign octet, one with leading zero octets. */
static const uint8_t serial_top_bit[XB_CA_SERIAL_LEN] = {0x9a, 1, 2,  3,  4,  5,  6,  7,
                                                         8,    9, 10, 11, 12, 13, 14, 15};
static const uint8_t serial_leading_zeros[XB_CA_SERIAL_LEN] = {0, 0, 0x7f, 3,  4,  5,  6,  7,
                                                               8, 9, 10,   11, 12, 13, 14, 15};

/* Create one CA directory per ca_types entry under a fresh temp dir (for a cmocka setup). */
static void cas_create(void)
{
    snprintf(base_dir, sizeof base_dir, "/tmp/xboot-test-fast.XXXXXX");
    assert_non_null(mkdtemp(base_dir));
    for (int i = 0; i < CA_COUNT; i++) {
        snprintf(ca_dirs[i], sizeof ca_dirs[i], "%s/%s", base_dir, ca_types[i]);
        xb_diag d = {""};
        assert_int_equal(xb_ca_init_dir(ca_dirs[i], ca_types[i], "Fast Test", &d), XB_OK);
    }
}

/* Remove them (for a cmocka teardown): 0 on success. */
static int cas_remove(void)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static xb_ca *load_ca(int which, const char *attrs)
{
    char cert[200], key[200];
    snprintf(cert, sizeof cert, "%s/signing-ca.pem", ca_dirs[which]);
    snprintf(key, sizeof key, "%s/signing-ca.key", ca_dirs[which]);
    xb_ca_config cfg = {.cert_path = cert,
                        .key_path = key,
                        .chain_path = NULL,
                        .validity_days = 365,
                        .subject_attributes = attrs};
    xb_ca *ca = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_ca_load(&cfg, &ca, &d), XB_OK);
    return ca;
}

/* Both paths agree on der; returns the common parse result. */
static xb_err agree_with(xb_ca *ca, const uint8_t *der, size_t len, const char *reg_id,
                         const uint8_t *serial)
{
    xb_crosscheck res;
    if (!xb_ca_crosscheck(ca, der, len, reg_id, fixed_now, serial, &res))
        fail_msg("fast and reference paths disagree: %s", res.mismatch);
    return res.parse_err;
}

/* The same with both serials. */
static xb_err agree(xb_ca *ca, const uint8_t *der, size_t len, const char *reg_id)
{
    agree_with(ca, der, len, reg_id, serial_leading_zeros);
    return agree_with(ca, der, len, reg_id, serial_top_bit);
}

#endif
