/* Helpers shared by the registry's unit tests on both backends (test_registry.c: SQLite,
 * test_registry_pg.c: PostgreSQL): the same records and checks, so that the two test the same
 * semantics the same way. Include after cmocka.h and registry.h. */
#ifndef XB_REGISTRY_TEST_HELPERS_H
#define XB_REGISTRY_TEST_HELPERS_H

#include <stdio.h>
#include <string.h>
#include <time.h>

__attribute__((unused)) static const xb_enroll_rules allowlist_once = {.open_mode = 0,
                                                                       .allow_reenroll = 0};
__attribute__((unused)) static const xb_enroll_rules allowlist_reenroll = {.open_mode = 0,
                                                                           .allow_reenroll = 1};
__attribute__((unused)) static const xb_enroll_rules open_once = {.open_mode = 1,
                                                                  .allow_reenroll = 0};

/* Stands for a certificate: the registry stores the DER, it does not parse it. */
static const uint8_t fake_der[] = {0x30, 0x03, 0x02, 0x01, 0x2a};

static inline void add_ok(xb_registry *r, const char *id)
{
    xb_diag d = {{0}};
    xb_err err = xb_registry_device_add(r, id, &d);
    if (err != XB_OK)
        fail_msg("add %s: %s", id, xb_diag_message(&d, err));
}

static inline xb_cert_record make_rec(const char *reg_id, const char *serial, time_t issued_at)
{
    xb_cert_record rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.serial, sizeof rec.serial, "%s", serial);
    snprintf(rec.reg_id, sizeof rec.reg_id, "%s", reg_id);
    rec.subject = "CN=test-device";
    rec.not_before = issued_at - 300;
    rec.not_after = issued_at + 365 * 86400;
    snprintf(rec.pubkey_sha256, sizeof rec.pubkey_sha256, "%064d", 7);
    snprintf(rec.client_addr, sizeof rec.client_addr, "192.0.2.10");
    rec.issued_at = issued_at;
    rec.der = fake_der;
    rec.der_len = sizeof fake_der;
    return rec;
}

static inline xb_err count_cert(const xb_cert_record *rec, void *ctx)
{
    (void)rec;
    ++*(long long *)ctx;
    return XB_OK;
}

/* Certificates of reg_id (all if NULL), counted through cert_each. */
static inline long long cert_rows(xb_registry *r, const char *reg_id)
{
    long long n = 0;
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_cert_each(r, reg_id, count_cert, &n, &d), XB_OK);
    return n;
}

static inline xb_device get_ok(xb_registry *r, const char *id)
{
    xb_device dev;
    xb_diag d = {{0}};
    xb_err err = xb_registry_device_get(r, id, &dev, &d);
    if (err != XB_OK)
        fail_msg("get %s: %s", id, xb_diag_message(&d, err));
    return dev;
}

/* Device IDs in listing order, through device_each. */
#define LIST_MAX 32
typedef struct listing {
    char ids[LIST_MAX][XB_REGID_MAX + 1];
    int n;
} listing;

static inline xb_err collect_device(const xb_device *dev, void *ctx)
{
    listing *l = ctx;
    if (l->n >= LIST_MAX)
        return XB_ERR_INTERNAL;
    snprintf(l->ids[l->n++], sizeof l->ids[0], "%s", dev->reg_id);
    return XB_OK;
}

#endif
