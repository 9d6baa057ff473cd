/* The registry contract (registry.h) against the SQLite backend, on real files in a temporary
 * directory: device administration, the one-time enrollment rules, atomicity of
 * record_issuance (nothing written on refusal or failure), several worker handles racing on
 * one file, and durability across close/reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "registry.h"
#include "registry_test_helpers.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    char url[160];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/xb-test-registry-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/xboot.db", f->dir);
    snprintf(f->url, sizeof f->url, "sqlite:%s", f->path);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    int rc = rmdir(f->dir);
    free(f);
    return rc;
}

static xb_registry *open_ok(const fixture *f)
{
    xb_registry *r = NULL;
    xb_diag d = {{0}};
    xb_err err = xb_registry_open(f->url, &r, &d);
    if (err != XB_OK)
        fail_msg("open %s: %s", f->url, xb_diag_message(&d, err));
    return r;
}

static xb_err record(xb_registry *r, const char *id, const char *serial,
                     const xb_enroll_rules *rules)
{
    xb_cert_record rec = make_rec(id, serial, time(NULL));
    xb_diag d = {{0}};
    return xb_registry_record_issuance(r, &rec, rules, &d);
}

/* ---- device administration ---- */

static void test_add_get_list(void **state)
{
    xb_registry *r = open_ok(*state);
    time_t before = time(NULL);
    add_ok(r, "dev-b");
    add_ok(r, "dev-a");
    add_ok(r, "00:11:22:33:44:55");

    xb_device dev = get_ok(r, "dev-a");
    assert_string_equal(dev.reg_id, "dev-a");
    assert_int_equal(dev.enabled, 1);
    assert_string_equal(dev.source, "allowlist");
    assert_true(dev.created_at >= before && dev.created_at <= time(NULL));
    assert_int_equal(dev.enrolled_at, 0);
    assert_int_equal(dev.cert_count, 0);

    listing l = {.n = 0};
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_device_each(r, collect_device, &l, &d), XB_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.ids[0], "00:11:22:33:44:55");
    assert_string_equal(l.ids[1], "dev-a");
    assert_string_equal(l.ids[2], "dev-b");

    assert_int_equal(xb_registry_device_get(r, "dev-c", &dev, &d), XB_ERR_DEVICE_UNKNOWN);
    assert_non_null(strstr(d.msg, "dev-c"));
    assert_int_equal(xb_registry_ping(r, &d), XB_OK);
    xb_registry_close(r);
}

static xb_err stop_after_one(const xb_device *dev, void *ctx)
{
    (void)dev;
    return ++*(int *)ctx == 1 ? XB_ERR_IO : XB_OK;
}

static void test_each_stops_on_callback_error(void **state)
{
    xb_registry *r = open_ok(*state);
    add_ok(r, "a1");
    add_ok(r, "a2");
    int calls = 0;
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_device_each(r, stop_after_one, &calls, &d), XB_ERR_IO);
    assert_int_equal(calls, 1);
    xb_registry_close(r);
}

static void test_disable_enable(void **state)
{
    xb_registry *r = open_ok(*state);
    add_ok(r, "dev-1");
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_device_set_enabled(r, "dev-1", 0, &d), XB_OK);
    assert_int_equal(get_ok(r, "dev-1").enabled, 0);
    /* Setting the current state again is not an error. */
    assert_int_equal(xb_registry_device_set_enabled(r, "dev-1", 0, &d), XB_OK);
    assert_int_equal(xb_registry_device_set_enabled(r, "dev-1", 1, &d), XB_OK);
    assert_int_equal(get_ok(r, "dev-1").enabled, 1);
    assert_int_equal(xb_registry_device_set_enabled(r, "nobody", 0, &d), XB_ERR_DEVICE_UNKNOWN);
    xb_registry_close(r);
}

static void test_invalid_ids_refused(void **state)
{
    xb_registry *r = open_ok(*state);
    char too_long[XB_REGID_MAX + 2];
    memset(too_long, 'a', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    const char *bad[] = {"", "has space", "ends.", "quote\"", "new\nline", "caf\xc3\xa9", too_long};
    xb_diag d = {{0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(xb_registry_device_add(r, bad[i], &d), XB_ERR_INVALID_REGISTRATION_ID);
        /* The message shows the ID, but never raw control bytes or quotes. */
        assert_null(strchr(d.msg, '\n'));
    }
    assert_int_equal(xb_registry_device_add(r, NULL, &d), XB_ERR_INVALID_REGISTRATION_ID);
    xb_device dev;
    assert_int_equal(xb_registry_device_get(r, "has space", &dev, &d),
                     XB_ERR_INVALID_REGISTRATION_ID);
    assert_int_equal(xb_registry_check_enroll(r, "has space", &open_once, &d),
                     XB_ERR_INVALID_REGISTRATION_ID);
    assert_int_equal(record(r, "has space", "01", &open_once), XB_ERR_INVALID_REGISTRATION_ID);

    too_long[XB_REGID_MAX] = '\0'; /* exactly 128 characters is allowed */
    add_ok(r, too_long);
    listing l = {.n = 0};
    assert_int_equal(xb_registry_device_each(r, collect_device, &l, &d), XB_OK);
    assert_int_equal(l.n, 1);
    xb_registry_close(r);
}

static void test_duplicates(void **state)
{
    xb_registry *r = open_ok(*state);
    add_ok(r, "dev-a");
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_device_add(r, "dev-a", &d), XB_ERR_EXISTS);
    assert_non_null(strstr(d.msg, "already registered"));

    /* A batch is all or nothing: dev-b must not survive dev-a's clash. */
    const xb_device_spec batch[] = {{.reg_id = "dev-b"}, {.reg_id = "dev-a"}};
    size_t bad = 99;
    assert_int_equal(xb_registry_device_add_many(r, batch, 2, &bad, &d), XB_ERR_EXISTS);
    assert_int_equal(bad, 1);
    xb_device dev;
    assert_int_equal(xb_registry_device_get(r, "dev-b", &dev, &d), XB_ERR_DEVICE_UNKNOWN);

    const xb_device_spec twice[] = {{.reg_id = "dev-c"}, {.reg_id = "dev-c"}};
    assert_int_equal(xb_registry_device_add_many(r, twice, 2, &bad, &d), XB_ERR_EXISTS);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(d.msg, "listed twice"));

    const xb_device_spec invalid[] = {{.reg_id = "dev-d"}, {.reg_id = "dev e"}};
    assert_int_equal(xb_registry_device_add_many(r, invalid, 2, &bad, &d),
                     XB_ERR_INVALID_REGISTRATION_ID);
    assert_int_equal(bad, 1);
    assert_int_equal(xb_registry_device_get(r, "dev-d", &dev, &d), XB_ERR_DEVICE_UNKNOWN);

    const xb_device_spec good[] = {{.reg_id = "dev-d"}, {.reg_id = "dev-e"}, {.reg_id = "dev-f"}};
    assert_int_equal(xb_registry_device_add_many(r, good, 3, &bad, &d), XB_OK);
    assert_int_equal(get_ok(r, "dev-f").enabled, 1);
    xb_registry_close(r);
}

/* ---- bootstrap credentials ---- */

static void test_credentials(void **state)
{
    xb_registry *r = open_ok(*state);
    xb_diag d = {{0}};
    uint8_t key[32], hash[XB_SECRET_HASH_LEN];
    memset(key, 0x5a, sizeof key);
    memset(hash, 0xa5, sizeof hash);
    assert_int_equal(xb_registry_group_add(r, "line-1", key, sizeof key, &d), XB_OK);
    assert_int_equal(xb_registry_group_add(r, "line-1", key, sizeof key, &d), XB_ERR_EXISTS);
    assert_int_equal(xb_registry_group_add(r, "bad:name", key, sizeof key, &d),
                     XB_ERR_INVALID_ARGUMENT);
    assert_int_equal(xb_registry_group_add(r, "short", key, 8, &d), XB_ERR_INVALID_ARGUMENT);
    xb_group g;
    assert_int_equal(xb_registry_group_get(r, "line-1", &g, &d), XB_OK);
    assert_int_equal(g.key_len, sizeof key);
    assert_memory_equal(g.key, key, sizeof key);
    assert_int_equal(xb_registry_group_get(r, "line-2", &g, &d), XB_ERR_NOT_FOUND);

    /* An unknown group rejects the whole batch, naming the offending line. */
    const xb_device_spec ghost[] = {{.reg_id = "g-1", .group = "line-1"},
                                    {.reg_id = "g-2", .group = "line-2"}};
    size_t bad = 99;
    assert_int_equal(xb_registry_device_add_many(r, ghost, 2, &bad, &d), XB_ERR_NOT_FOUND);
    assert_int_equal(bad, 1);
    xb_device dev;
    assert_int_equal(xb_registry_device_get(r, "g-1", &dev, &d), XB_ERR_DEVICE_UNKNOWN);
    const xb_device_spec both[] = {{.reg_id = "b-1", .group = "line-1", .secret_sha256 = hash}};
    assert_int_equal(xb_registry_device_add_many(r, both, 1, &bad, &d), XB_ERR_INVALID_ARGUMENT);

    const xb_device_spec ok[] = {{.reg_id = "g-1", .group = "line-1"},
                                 {.reg_id = "s-1", .secret_sha256 = hash},
                                 {.reg_id = "p-1"}};
    assert_int_equal(xb_registry_device_add_many(r, ok, 3, &bad, &d), XB_OK);
    dev = get_ok(r, "g-1");
    assert_string_equal(dev.group, "line-1");
    assert_int_equal(dev.has_secret, 0);
    dev = get_ok(r, "s-1");
    assert_string_equal(dev.group, "");
    assert_int_equal(dev.has_secret, 1);
    assert_memory_equal(dev.secret_sha256, hash, sizeof hash);
    assert_string_equal(xb_device_state(&dev), "allowed");
    dev = get_ok(r, "p-1");
    assert_int_equal(dev.has_secret, 0);
    assert_string_equal(dev.group, "");

    /* A group member's first enrollment creates its row, recording the group, even though
     * the rules are not open; a second is refused like any enrolled device's. */
    const xb_enroll_rules once = {.open_mode = 0, .allow_reenroll = 0};
    xb_cert_record rec = make_rec("g-new", "31", time(NULL));
    rec.new_source = "group";
    rec.new_group = "line-1";
    assert_int_equal(xb_registry_record_issuance(r, &rec, &once, &d), XB_OK);
    dev = get_ok(r, "g-new");
    assert_string_equal(dev.source, "group");
    assert_string_equal(dev.group, "line-1");
    assert_string_equal(xb_device_state(&dev), "enrolled");
    rec = make_rec("g-new", "32", time(NULL));
    rec.new_source = "group";
    rec.new_group = "line-1";
    assert_int_equal(xb_registry_record_issuance(r, &rec, &once, &d), XB_ERR_ALREADY_ENROLLED);
    /* Without new_source, an unknown device is still refused and nothing is created. */
    rec = make_rec("nobody", "33", time(NULL));
    assert_int_equal(xb_registry_record_issuance(r, &rec, &once, &d), XB_ERR_DEVICE_UNKNOWN);
    assert_int_equal(xb_registry_device_get(r, "nobody", &dev, &d), XB_ERR_DEVICE_UNKNOWN);
    assert_int_equal(cert_rows(r, NULL), 1);
    xb_registry_close(r);
}

/* ---- enrollment rules ---- */

typedef struct first_cert {
    xb_cert_record rec;
    uint8_t der[16];
    char subject[64];
    int n;
} first_cert;

static xb_err keep_first(const xb_cert_record *rec, void *ctx)
{
    first_cert *fc = ctx;
    if (fc->n++ == 0) {
        fc->rec = *rec;
        assert_true(rec->der_len <= sizeof fc->der);
        memcpy(fc->der, rec->der, rec->der_len);
        fc->rec.der = fc->der;
        snprintf(fc->subject, sizeof fc->subject, "%s", rec->subject);
        fc->rec.subject = fc->subject;
    }
    return XB_OK;
}

static void test_record_allowlist_success(void **state)
{
    xb_registry *r = open_ok(*state);
    add_ok(r, "dev-1");
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_check_enroll(r, "dev-1", &allowlist_once, &d), XB_OK);
    xb_cert_record rec = make_rec("dev-1", "0a1b2c", 1700000000);
    assert_int_equal(xb_registry_record_issuance(r, &rec, &allowlist_once, &d), XB_OK);

    xb_device dev = get_ok(r, "dev-1");
    assert_int_equal(dev.enrolled_at, 1700000000);
    assert_int_equal(dev.cert_count, 1);

    first_cert fc = {.n = 0};
    assert_int_equal(xb_registry_cert_each(r, "dev-1", keep_first, &fc, &d), XB_OK);
    assert_int_equal(fc.n, 1);
    assert_string_equal(fc.rec.serial, "0a1b2c");
    assert_string_equal(fc.rec.reg_id, "dev-1");
    assert_string_equal(fc.rec.subject, "CN=test-device");
    assert_int_equal(fc.rec.not_before, rec.not_before);
    assert_int_equal(fc.rec.not_after, rec.not_after);
    assert_string_equal(fc.rec.pubkey_sha256, rec.pubkey_sha256);
    assert_string_equal(fc.rec.client_addr, "192.0.2.10");
    assert_int_equal(fc.rec.issued_at, 1700000000);
    assert_int_equal(fc.rec.der_len, sizeof fake_der);
    assert_memory_equal(fc.rec.der, fake_der, sizeof fake_der);
    assert_int_equal(cert_rows(r, NULL), 1);
    xb_registry_close(r);
}

static void test_record_unknown_writes_nothing(void **state)
{
    xb_registry *r = open_ok(*state);
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_check_enroll(r, "ghost", &allowlist_once, &d),
                     XB_ERR_DEVICE_UNKNOWN);
    assert_int_equal(record(r, "ghost", "01", &allowlist_once), XB_ERR_DEVICE_UNKNOWN);
    assert_int_equal(cert_rows(r, NULL), 0);
    xb_device dev;
    assert_int_equal(xb_registry_device_get(r, "ghost", &dev, &d), XB_ERR_DEVICE_UNKNOWN);
    xb_registry_close(r);
}

static void test_record_disabled_writes_nothing(void **state)
{
    xb_registry *r = open_ok(*state);
    add_ok(r, "dev-1");
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_device_set_enabled(r, "dev-1", 0, &d), XB_OK);
    assert_int_equal(xb_registry_check_enroll(r, "dev-1", &allowlist_once, &d),
                     XB_ERR_DEVICE_DISABLED);
    assert_int_equal(record(r, "dev-1", "01", &allowlist_once), XB_ERR_DEVICE_DISABLED);
    /* Open mode and re-enrollment do not override a disabled device. */
    assert_int_equal(record(r, "dev-1", "02", &open_once), XB_ERR_DEVICE_DISABLED);
    assert_int_equal(record(r, "dev-1", "03", &allowlist_reenroll), XB_ERR_DEVICE_DISABLED);
    assert_int_equal(cert_rows(r, NULL), 0);
    assert_int_equal(get_ok(r, "dev-1").enrolled_at, 0);
    xb_registry_close(r);
}

static void test_second_issuance_refused(void **state)
{
    xb_registry *r = open_ok(*state);
    add_ok(r, "dev-1");
    xb_diag d = {{0}};
    assert_int_equal(record(r, "dev-1", "01", &allowlist_once), XB_OK);
    assert_int_equal(xb_registry_check_enroll(r, "dev-1", &allowlist_once, &d),
                     XB_ERR_ALREADY_ENROLLED);
    xb_cert_record rec = make_rec("dev-1", "02", time(NULL));
    assert_int_equal(xb_registry_record_issuance(r, &rec, &allowlist_once, &d),
                     XB_ERR_ALREADY_ENROLLED);
    assert_non_null(strstr(d.msg, "dev-1"));
    assert_int_equal(cert_rows(r, "dev-1"), 1);
    assert_int_equal(get_ok(r, "dev-1").cert_count, 1);
    xb_registry_close(r);
}

static void test_reenroll_allowed(void **state)
{
    xb_registry *r = open_ok(*state);
    add_ok(r, "dev-1");
    xb_diag d = {{0}};
    xb_cert_record one = make_rec("dev-1", "01", 1700000000);
    xb_cert_record two = make_rec("dev-1", "02", 1700000100);
    assert_int_equal(xb_registry_record_issuance(r, &one, &allowlist_reenroll, &d), XB_OK);
    assert_int_equal(xb_registry_check_enroll(r, "dev-1", &allowlist_reenroll, &d), XB_OK);
    assert_int_equal(xb_registry_record_issuance(r, &two, &allowlist_reenroll, &d), XB_OK);
    assert_int_equal(cert_rows(r, "dev-1"), 2);
    xb_device dev = get_ok(r, "dev-1");
    assert_int_equal(dev.cert_count, 2);
    assert_int_equal(dev.enrolled_at, 1700000100); /* the latest enrollment */

    first_cert fc = {.n = 0};
    assert_int_equal(xb_registry_cert_each(r, NULL, keep_first, &fc, &d), XB_OK);
    assert_string_equal(fc.rec.serial, "01"); /* oldest first */
    xb_registry_close(r);
}

static void test_open_mode_creates_device(void **state)
{
    xb_registry *r = open_ok(*state);
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_check_enroll(r, "new-dev", &open_once, &d), XB_OK);
    /* The read-only check must not have created it. */
    xb_device dev;
    assert_int_equal(xb_registry_device_get(r, "new-dev", &dev, &d), XB_ERR_DEVICE_UNKNOWN);

    assert_int_equal(record(r, "new-dev", "01", &open_once), XB_OK);
    dev = get_ok(r, "new-dev");
    assert_string_equal(dev.source, "open");
    assert_int_equal(dev.enabled, 1);
    assert_int_equal(dev.cert_count, 1);
    assert_true(dev.enrolled_at != 0);

    assert_int_equal(record(r, "new-dev", "02", &open_once), XB_ERR_ALREADY_ENROLLED);
    assert_int_equal(cert_rows(r, NULL), 1);

    /* An operator-added device keeps its source when it enrolls in open mode. */
    add_ok(r, "listed");
    assert_int_equal(record(r, "listed", "03", &open_once), XB_OK);
    assert_string_equal(get_ok(r, "listed").source, "allowlist");
    xb_registry_close(r);
}

/* ---- failures leave nothing behind ---- */

static void test_failed_insert_rolls_back(void **state)
{
    xb_registry *r = open_ok(*state);
    add_ok(r, "dev-1");
    add_ok(r, "dev-2");
    xb_diag d = {{0}};
    xb_cert_record one = make_rec("dev-1", "dup", 1700000000);
    assert_int_equal(xb_registry_record_issuance(r, &one, &allowlist_once, &d), XB_OK);
    /* The certificate INSERT fails after the device was marked enrolled inside the same
     * transaction; the mark must be rolled back with it. */
    xb_cert_record clash = make_rec("dev-2", "dup", 1700000500);
    assert_int_equal(xb_registry_record_issuance(r, &clash, &allowlist_once, &d), XB_ERR_REGISTRY);
    assert_non_null(strstr(d.msg, "UNIQUE"));
    assert_int_equal(get_ok(r, "dev-2").enrolled_at, 0);
    assert_int_equal(cert_rows(r, "dev-2"), 0);
    /* And the handle is still usable (no transaction left open). */
    xb_cert_record fresh = make_rec("dev-2", "fresh", 1700000600);
    assert_int_equal(xb_registry_record_issuance(r, &fresh, &allowlist_once, &d), XB_OK);

    xb_cert_record no_der = make_rec("dev-1", "nd", 1700000000);
    no_der.der = NULL;
    assert_int_equal(xb_registry_record_issuance(r, &no_der, &allowlist_reenroll, &d),
                     XB_ERR_INVALID_ARGUMENT);
    assert_int_equal(cert_rows(r, NULL), 2);
    xb_registry_close(r);
}

/* ---- group commit ---- */

static void test_batch_judges_each_item(void **state)
{
    xb_registry *r = open_ok(*state);
    add_ok(r, "dev-1");
    add_ok(r, "dev-2");
    add_ok(r, "dev-off");
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_device_set_enabled(r, "dev-off", 0, &d), XB_OK);
    xb_issuance items[6];
    const char *ids[] = {"dev-1", "DEV-1", "stranger", "dev-off", "dev-2", "dev-2"};
    const char *serials[] = {"a1", "a2", "a3", "a4", "a5", "a6"};
    xb_issuance *ptrs[6];
    for (size_t i = 0; i < 6; i++) {
        items[i].rec = make_rec(ids[i], serials[i], 1700000000);
        ptrs[i] = &items[i];
    }
    items[5].rec.der = NULL; /* malformed: refused on its own */
    assert_int_equal(xb_registry_record_batch(r, ptrs, 6, &allowlist_once, &d), XB_OK);
    assert_int_equal(items[0].result, XB_OK);
    /* The same device (IDs compare without case) a second time in one batch: refused, in order. */
    assert_int_equal(items[1].result, XB_ERR_ALREADY_ENROLLED);
    assert_int_equal(items[2].result, XB_ERR_DEVICE_UNKNOWN);
    assert_int_equal(items[3].result, XB_ERR_DEVICE_DISABLED);
    assert_int_equal(items[4].result, XB_OK);
    assert_int_equal(items[5].result, XB_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(items[2].diag.msg, "stranger"));
    assert_int_equal(cert_rows(r, NULL), 2);
    assert_int_equal(cert_rows(r, "dev-1"), 1);
    assert_int_equal(cert_rows(r, "dev-2"), 1);
    assert_int_equal(get_ok(r, "dev-off").enrolled_at, 0);
    assert_int_equal(xb_registry_record_batch(r, NULL, 0, &allowlist_once, &d), XB_OK);
    xb_registry_close(r);
}

/* A storage failure in the middle of a batch writes nothing at all, and says so for every
 * item: none of their certificates may be handed out. */
static void test_batch_failure_writes_nothing(void **state)
{
    xb_registry *r = open_ok(*state);
    add_ok(r, "dev-1");
    add_ok(r, "dev-2");
    add_ok(r, "dev-3");
    xb_issuance items[3];
    xb_issuance *ptrs[3];
    const char *ids[] = {"dev-1", "dev-2", "dev-3"};
    for (size_t i = 0; i < 3; i++) {
        items[i].rec = make_rec(ids[i], i == 2 ? "same" : (i == 0 ? "first" : "same"), 1700000000);
        ptrs[i] = &items[i];
    }
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_record_batch(r, ptrs, 3, &allowlist_once, &d), XB_ERR_REGISTRY);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(items[i].result, XB_ERR_REGISTRY);
        assert_non_null(strstr(items[i].diag.msg, "UNIQUE"));
        assert_int_equal(get_ok(r, ids[i]).enrolled_at, 0);
    }
    assert_int_equal(cert_rows(r, NULL), 0);
    /* The handle is usable afterwards and the devices can still enroll. */
    assert_int_equal(record(r, "dev-1", "again", &allowlist_once), XB_OK);
    xb_registry_close(r);
}

static void test_synchronous_option(void **state)
{
    fixture *f = *state;
    const char *modes[] = {"off", "normal", "full"};
    for (size_t i = 0; i < 3; i++) {
        char url[200];
        snprintf(url, sizeof url, "%s?synchronous=%s", f->url, modes[i]);
        xb_registry *r = NULL;
        xb_diag d = {{0}};
        assert_int_equal(xb_registry_open(url, &r, &d), XB_OK);
        add_ok(r, modes[i]);
        xb_registry_close(r);
    }
    /* The option is not part of the file name: all three wrote into the same file. */
    xb_registry *r = open_ok(f);
    assert_int_equal(get_ok(r, "off").enabled, 1);
    assert_int_equal(get_ok(r, "full").enabled, 1);
    xb_registry_close(r);
    char bad[200];
    snprintf(bad, sizeof bad, "%s?synchronous=sometimes", f->url);
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_open(bad, &r, &d), XB_ERR_CONFIG);
    assert_null(r);
    assert_non_null(strstr(d.msg, "synchronous=sometimes"));
    assert_int_equal(xb_registry_open("sqlite:?synchronous=off", &r, &d), XB_ERR_CONFIG);
}

/* A writer outside the registry holds the write lock for longer than busy_timeout (5 s). */
static void test_locked_database_fails_cleanly(void **state)
{
    fixture *f = *state;
    xb_registry *r = open_ok(f);
    add_ok(r, "dev-1");
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    time_t start = time(NULL);
    assert_int_equal(record(r, "dev-1", "01", &allowlist_once), XB_ERR_REGISTRY);
    assert_true(time(NULL) - start >= 4); /* it waited instead of failing at once */

    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(cert_rows(r, NULL), 0);
    assert_int_equal(record(r, "dev-1", "01", &allowlist_once), XB_OK);
    xb_registry_close(r);
}

/* ---- several workers on one file ---- */

static void test_two_handles_race(void **state)
{
    xb_registry *w1 = open_ok(*state);
    xb_registry *w2 = open_ok(*state);
    add_ok(w1, "dev-1");
    xb_diag d = {{0}};
    /* Both workers pass the cheap pre-check before either signs... */
    assert_int_equal(xb_registry_check_enroll(w1, "dev-1", &allowlist_once, &d), XB_OK);
    assert_int_equal(xb_registry_check_enroll(w2, "dev-1", &allowlist_once, &d), XB_OK);
    /* ...and only the first to record wins. */
    assert_int_equal(record(w2, "dev-1", "02", &allowlist_once), XB_OK);
    assert_int_equal(record(w1, "dev-1", "01", &allowlist_once), XB_ERR_ALREADY_ENROLLED);
    assert_int_equal(cert_rows(w1, NULL), 1);
    assert_int_equal(cert_rows(w2, NULL), 1);
    xb_registry_close(w1);
    xb_registry_close(w2);
}

enum { RACE_WORKERS = 8, RACE_WON = 0, RACE_LOST = 10, RACE_ERROR = 20 };

/* Child process: open its own handle, wait for the start signal, try to enroll. */
static int race_worker(const char *url, int start_fd, int i)
{
    alarm(60); /* never outlive a stuck test */
    xb_registry *r = NULL;
    xb_diag d = {{0}};
    if (xb_registry_open(url, &r, &d) != XB_OK)
        return RACE_ERROR;
    char c;
    while (read(start_fd, &c, 1) < 0 && errno == EINTR)
        ;
    char serial[16];
    snprintf(serial, sizeof serial, "%02x", i);
    xb_err err = xb_registry_check_enroll(r, "contested", &open_once, &d);
    if (err == XB_OK)
        err = record(r, "contested", serial, &open_once);
    xb_registry_close(r);
    return err == XB_OK ? RACE_WON : err == XB_ERR_ALREADY_ENROLLED ? RACE_LOST : RACE_ERROR;
}

static void test_worker_processes_race(void **state)
{
    fixture *f = *state;
    xb_registry_close(open_ok(f)); /* schema exists before the race starts */
    int start[2];
    assert_int_equal(pipe(start), 0);
    pid_t pids[RACE_WORKERS];
    for (int i = 0; i < RACE_WORKERS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(start[1]);
            _exit(race_worker(f->url, start[0], i));
        }
    }
    close(start[0]);
    close(start[1]); /* EOF on the pipe starts every worker at once */
    int won = 0, lost = 0;
    for (int i = 0; i < RACE_WORKERS; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        won += WEXITSTATUS(status) == RACE_WON;
        lost += WEXITSTATUS(status) == RACE_LOST;
    }
    assert_int_equal(won, 1);
    assert_int_equal(lost, RACE_WORKERS - 1);
    xb_registry *r = open_ok(f);
    assert_int_equal(cert_rows(r, NULL), 1);
    assert_int_equal(get_ok(r, "contested").cert_count, 1);
    xb_registry_close(r);
}

/* ---- the file itself ---- */

static int pragma_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void test_reopen_keeps_data(void **state)
{
    fixture *f = *state;
    xb_registry *r = open_ok(f);
    add_ok(r, "dev-1");
    add_ok(r, "dev-2");
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_device_set_enabled(r, "dev-2", 0, &d), XB_OK);
    assert_int_equal(record(r, "dev-1", "01", &allowlist_once), XB_OK);
    xb_registry_close(r);

    r = open_ok(f);
    xb_device dev = get_ok(r, "dev-1");
    assert_int_equal(dev.cert_count, 1);
    assert_true(dev.enrolled_at != 0);
    assert_int_equal(get_ok(r, "dev-2").enabled, 0);
    assert_int_equal(record(r, "dev-1", "02", &allowlist_once), XB_ERR_ALREADY_ENROLLED);
    xb_registry_close(r);
}

static void test_file_properties(void **state)
{
    fixture *f = *state;
    mode_t old = umask(022);
    xb_registry *r = open_ok(f);
    umask(old);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* The WAL holds recent commits until a checkpoint: it must be as private as the file. */
    char wal[200];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(pragma_int(f->path, "PRAGMA user_version"), 4);
    xb_registry_close(r);

    sqlite3 *db = NULL;
    sqlite3_stmt *jm = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &jm, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(jm), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(jm, 0), "wal");
    sqlite3_finalize(jm);
    /* A newer xboot migrated this file: an older one must refuse, not guess. */
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 5", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    xb_diag d = {{0}};
    assert_int_equal(xb_registry_open(f->url, &r, &d), XB_ERR_CONFIG);
    assert_null(r);
    assert_non_null(strstr(d.msg, "schema version 5"));
}

static void test_bad_urls(void **state)
{
    fixture *f = *state;
    xb_registry *r = (xb_registry *)f; /* must be reset to NULL on failure */
    xb_diag d = {{0}};
    const char *urls[] = {"mysql://x/y", "", "sqlite:", "sqlite://host/x.db",
                          f->path /* a bare path, no scheme */};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        d.msg[0] = '\0';
        assert_int_equal(xb_registry_open(urls[i], &r, &d), XB_ERR_CONFIG);
        assert_null(r);
        assert_true(d.msg[0] != '\0');
    }
    assert_int_equal(xb_registry_open(NULL, &r, &d), XB_ERR_CONFIG);

    /* A PostgreSQL server that is not there (port 1 on this host refuses): the handle opens
     * (it connects on first use, as after an outage), every use says the registry is
     * unavailable, and the message names the server without the URL's password or query. */
    const char *pg = "postgresql://xboot:s3cret-pw@127.0.0.1:1/xboot?sslmode=disable";
    d.msg[0] = '\0';
    assert_int_equal(xb_registry_open(pg, &r, &d), XB_OK);
    assert_int_equal(xb_registry_ping(r, &d), XB_ERR_REGISTRY);
    assert_non_null(strstr(d.msg, "postgresql://127.0.0.1:1/xboot"));
    assert_null(strstr(d.msg, "s3cret"));
    assert_null(strstr(d.msg, "sslmode"));
    xb_registry_close(r);
    r = NULL;
    /* Migrating needs the server now. */
    d.msg[0] = '\0';
    assert_int_equal(xb_registry_migrate(pg, NULL, NULL, &d), XB_ERR_REGISTRY);
    assert_null(strstr(d.msg, "s3cret"));

    char missing[200];
    snprintf(missing, sizeof missing, "sqlite:%s/no-such-dir/x.db", f->dir);
    assert_int_equal(xb_registry_open(missing, &r, &d), XB_ERR_REGISTRY);
    assert_null(r);
    assert_non_null(strstr(d.msg, missing + strlen("sqlite:")));
}

/* ---- the current certificate ---- */

static void test_current_cert_none(void **state)
{
    xb_registry *r = open_ok(*state);
    add_ok(r, "dev-1");
    xb_cert_record out;
    uint8_t *der = (uint8_t *)"untouched";
    size_t der_len = 99;
    xb_diag d = {{0}};
    /* Registered without a certificate, or not registered at all: nothing current. */
    assert_int_equal(xb_registry_current_cert(r, "dev-1", &out, &der, &der_len, &d),
                     XB_ERR_NOT_FOUND);
    assert_null(der);
    assert_int_equal(der_len, 0);
    assert_non_null(strstr(d.msg, "dev-1"));
    assert_int_equal(xb_registry_current_cert(r, "ghost", &out, &der, &der_len, &d),
                     XB_ERR_NOT_FOUND);
    /* Another device's certificate is not this one's. */
    add_ok(r, "dev-2");
    assert_int_equal(record(r, "dev-2", "02", &allowlist_once), XB_OK);
    assert_int_equal(xb_registry_current_cert(r, "dev-1", &out, &der, &der_len, &d),
                     XB_ERR_NOT_FOUND);
    assert_int_equal(xb_registry_current_cert(r, "bad id", &out, &der, &der_len, &d),
                     XB_ERR_INVALID_REGISTRATION_ID);
    assert_int_equal(xb_registry_current_cert(r, "dev-1", NULL, &der, &der_len, &d),
                     XB_ERR_INVALID_ARGUMENT);
    assert_int_equal(xb_registry_current_cert(NULL, "dev-1", &out, &der, &der_len, &d),
                     XB_ERR_INVALID_ARGUMENT);
    xb_registry_close(r);
}

static xb_err record_with_der(xb_registry *r, const char *id, const char *serial, time_t issued_at,
                              const uint8_t *der, size_t der_len)
{
    xb_cert_record rec = make_rec(id, serial, issued_at);
    rec.der = der;
    rec.der_len = der_len;
    snprintf(rec.pubkey_sha256, sizeof rec.pubkey_sha256, "%064x", (unsigned)der[4]);
    xb_diag d = {{0}};
    return xb_registry_record_issuance(r, &rec, &allowlist_reenroll, &d);
}

/* The latest issuance is current: by issued_at, then by recording order for equal times. */
static void test_current_cert_latest(void **state)
{
    xb_registry *r = open_ok(*state);
    add_ok(r, "dev-1");
    add_ok(r, "dev-2");
    static const uint8_t der1[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    static const uint8_t der2[] = {0x30, 0x03, 0x02, 0x01, 0x02};
    static const uint8_t der3[] = {0x30, 0x03, 0x02, 0x01, 0x03};
    static const uint8_t der4[] = {0x30, 0x04, 0x02, 0x02, 0x04, 0x04};
    assert_int_equal(record_with_der(r, "dev-1", "01", 1700000000, der1, sizeof der1), XB_OK);
    assert_int_equal(record_with_der(r, "dev-1", "02", 1700000200, der2, sizeof der2), XB_OK);
    /* Recorded later, issued earlier (a clock step back): not current. */
    assert_int_equal(record_with_der(r, "dev-1", "03", 1700000100, der3, sizeof der3), XB_OK);
    /* Someone else's newer certificate does not count. */
    assert_int_equal(record_with_der(r, "dev-2", "09", 1700000900, der1, sizeof der1), XB_OK);

    xb_cert_record out;
    uint8_t *der = NULL;
    size_t der_len = 0;
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_current_cert(r, "dev-1", &out, &der, &der_len, &d), XB_OK);
    assert_string_equal(out.serial, "02");
    assert_string_equal(out.reg_id, "dev-1");
    assert_null(out.subject);
    assert_int_equal(out.issued_at, 1700000200);
    assert_int_equal(out.not_before, 1700000200 - 300);
    assert_int_equal(out.not_after, 1700000200 + 365 * 86400);
    assert_string_equal(out.client_addr, "192.0.2.10");
    char want_key[65];
    snprintf(want_key, sizeof want_key, "%064x", 2u);
    assert_string_equal(out.pubkey_sha256, want_key);
    assert_int_equal(der_len, sizeof der2);
    assert_memory_equal(der, der2, sizeof der2);
    assert_ptr_equal(out.der, der);
    assert_int_equal(out.der_len, der_len);
    free(der);

    /* Same issued_at as the current one, recorded after it: the newer. IDs compare without
     * case, as everywhere in the registry. */
    assert_int_equal(record_with_der(r, "dev-1", "04", 1700000200, der4, sizeof der4), XB_OK);
    assert_int_equal(xb_registry_current_cert(r, "DEV-1", &out, &der, &der_len, &d), XB_OK);
    assert_string_equal(out.serial, "04");
    assert_int_equal(der_len, sizeof der4);
    assert_memory_equal(der, der4, sizeof der4);
    free(der);
    assert_int_equal(cert_rows(r, "dev-1"), 4);
    xb_registry_close(r);
}

/* The query of XB_SQ_CERT_CURRENT (registry_sqlite.c) finds the device's rows through the
 * reg_id index, not by scanning the table. */
static void test_current_cert_uses_index(void **state)
{
    fixture *f = *state;
    xb_registry *r = open_ok(f);
    xb_registry_close(r);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "EXPLAIN QUERY PLAN SELECT serial FROM certificates "
                                        "WHERE reg_id = ?1 ORDER BY issued_at DESC, rowid DESC "
                                        "LIMIT 1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int indexed = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(st, 3);
        if (detail != NULL && strstr(detail, "certificates_reg_id") != NULL)
            indexed = 1;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(indexed);
}

/* ---- revocation ---- */

static xb_cert_record get_cert_ok(xb_registry *r, const char *serial)
{
    xb_cert_record out;
    uint8_t *der = NULL;
    size_t der_len = 0;
    xb_diag d = {{0}};
    xb_err err = xb_registry_cert_get(r, serial, &out, &der, &der_len, &d);
    if (err != XB_OK)
        fail_msg("cert_get %s: %s", serial, xb_diag_message(&d, err));
    free(der);
    out.der = NULL;
    return out;
}

static xb_err collect_revoked(const xb_cert_record *rec, void *ctx)
{
    listing *l = ctx;
    if (rec->revoked_at != 0 && l->n < 8)
        snprintf(l->ids[l->n++], sizeof l->ids[0], "%s/%d", rec->serial, rec->revocation_reason);
    return XB_OK;
}

static void test_revoke(void **state)
{
    fixture *f = *state;
    xb_registry *r = open_ok(f);
    add_ok(r, "dev-1");
    assert_int_equal(record(r, "dev-1", "01", &allowlist_reenroll), XB_OK);
    assert_int_equal(record(r, "dev-1", "02", &allowlist_reenroll), XB_OK);
    assert_int_equal(get_cert_ok(r, "01").revoked_at, 0);
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_cert_revoke(r, "ff", XB_REVOKE_UNSPECIFIED, 0, &d),
                     XB_ERR_NOT_FOUND);
    assert_non_null(strstr(d.msg, "ff"));
    assert_int_equal(xb_registry_cert_revoke(r, "01", XB_REVOKE_KEY_COMPROMISE, 1700000500, &d),
                     XB_OK);
    xb_cert_record c = get_cert_ok(r, "01");
    assert_int_equal(c.revoked_at, 1700000500);
    assert_int_equal(c.revocation_reason, XB_REVOKE_KEY_COMPROMISE);
    assert_int_equal(get_cert_ok(r, "02").revoked_at, 0);

    /* Twice: the first record stands, and the caller is told when and why. */
    d.msg[0] = '\0';
    assert_int_equal(xb_registry_cert_revoke(r, "01", XB_REVOKE_SUPERSEDED, 1700000900, &d),
                     XB_ERR_EXISTS);
    assert_non_null(strstr(d.msg, "keyCompromise"));
    assert_non_null(strstr(d.msg, "2023-11-14T22:21:40Z"));
    c = get_cert_ok(r, "01");
    assert_int_equal(c.revoked_at, 1700000500);
    assert_int_equal(c.revocation_reason, XB_REVOKE_KEY_COMPROMISE);

    /* Unsupported codes: certificateHold, removeFromCRL, aACompromise, out of range. */
    static const int bad[] = {6, 7, 8, 10, 11, -1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(xb_registry_cert_revoke(r, "02", bad[i], 0, &d), XB_ERR_INVALID_ARGUMENT);
    assert_int_equal(xb_registry_cert_revoke(r, "", 0, 0, &d), XB_ERR_INVALID_ARGUMENT);
    assert_int_equal(xb_registry_cert_revoke(NULL, "02", 0, 0, &d), XB_ERR_INVALID_ARGUMENT);
    assert_int_equal(get_cert_ok(r, "02").revoked_at, 0);

    /* The current certificate stays current when revoked, and says so; 0 means now. */
    time_t before = time(NULL);
    assert_int_equal(xb_registry_cert_revoke(r, "02", XB_REVOKE_SUPERSEDED, 0, &d), XB_OK);
    xb_cert_record cur;
    uint8_t *der = NULL;
    size_t der_len = 0;
    assert_int_equal(xb_registry_current_cert(r, "dev-1", &cur, &der, &der_len, &d), XB_OK);
    free(der);
    assert_string_equal(cur.serial, "02");
    assert_true(cur.revoked_at >= before && cur.revoked_at <= time(NULL));
    assert_int_equal(cur.revocation_reason, XB_REVOKE_SUPERSEDED);
    xb_registry_close(r);

    /* Durable, and listed by cert_each. */
    r = open_ok(f);
    listing l = {.n = 0};
    assert_int_equal(xb_registry_cert_each(r, NULL, collect_revoked, &l, &d), XB_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.ids[0], "01/1");
    assert_string_equal(l.ids[1], "02/4");
    xb_registry_close(r);
}

static void test_reason_names(void **state)
{
    (void)state;
    int reason = -1;
    assert_int_equal(xb_revocation_reason_parse("KEYCOMPROMISE", &reason), 0);
    assert_int_equal(reason, XB_REVOKE_KEY_COMPROMISE);
    assert_int_equal(xb_revocation_reason_parse("privilegeWithdrawn", &reason), 0);
    assert_int_equal(reason, 9);
    assert_int_equal(xb_revocation_reason_parse("certificateHold", &reason), -1);
    assert_int_equal(xb_revocation_reason_parse("", &reason), -1);
    assert_int_equal(xb_revocation_reason_parse(NULL, &reason), -1);
    assert_string_equal(xb_revocation_reason_name(5), "cessationOfOperation");
    assert_null(xb_revocation_reason_name(6));
    assert_null(xb_revocation_reason_name(99));
}

/* Schema version 1 exactly as xboot created it (registry_sqlite.c from ea21d76 until version
 * 2), with one device and one certificate: never edit, it is history. */
/* clang-format off */
static const char schema_v1[] =
    "CREATE TABLE devices ("
    "  reg_id TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,"
    "  enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),"
    "  source TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  enrolled_at INTEGER"
    ");"
    "CREATE TABLE certificates ("
    "  serial TEXT PRIMARY KEY NOT NULL,"
    "  reg_id TEXT NOT NULL COLLATE NOCASE REFERENCES devices(reg_id),"
    "  subject TEXT,"
    "  not_before INTEGER,"
    "  not_after INTEGER,"
    "  pubkey_sha256 TEXT,"
    "  client_addr TEXT,"
    "  issued_at INTEGER,"
    "  der BLOB NOT NULL"
    ");"
    "CREATE INDEX certificates_reg_id ON certificates(reg_id);"
    "PRAGMA user_version = 1;"
    "INSERT INTO devices VALUES ('dev-old', 1, 'allowlist', 1600000000, 1600000100);"
    "INSERT INTO certificates VALUES ('0a0b', 'dev-old', 'CN=dev-old', 1600000000, 1700000000,"
    "  'aa', '192.0.2.1', 1600000100, x'3003020101');";
/* clang-format on */

static void make_v1_file(const fixture *f, const char *extra_sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, schema_v1, NULL, NULL, NULL), SQLITE_OK);
    if (extra_sql != NULL)
        assert_int_equal(sqlite3_exec(db, extra_sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_migrate_v1(void **state)
{
    fixture *f = *state;
    make_v1_file(f, NULL);
    xb_registry *r = open_ok(f);
    assert_int_equal(pragma_int(f->path, "PRAGMA user_version"), 4);
    xb_device dev = get_ok(r, "dev-old");
    assert_int_equal(dev.cert_count, 1);
    assert_int_equal(dev.enrolled_at, 1600000100);
    xb_cert_record c = get_cert_ok(r, "0a0b");
    assert_string_equal(c.reg_id, "dev-old");
    assert_int_equal(c.issued_at, 1600000100);
    assert_int_equal(c.revoked_at, 0);
    /* A migrated device has no bootstrap credential: it enrolls as it did before. */
    assert_int_equal(dev.has_secret, 0);
    assert_string_equal(dev.group, "");
    xb_diag d = {{0}};
    assert_int_equal(
        xb_registry_cert_revoke(r, "0a0b", XB_REVOKE_CESSATION_OF_OPERATION, 1650000000, &d),
        XB_OK);
    add_ok(r, "dev-new");
    assert_int_equal(record(r, "dev-new", "0c", &allowlist_once), XB_OK);
    xb_registry_close(r);
    /* Opening again finds it current: nothing runs twice. */
    r = open_ok(f);
    assert_int_equal(get_cert_ok(r, "0a0b").revoked_at, 1650000000);
    assert_int_equal(get_cert_ok(r, "0c").revoked_at, 0);
    xb_registry_close(r);
    assert_int_equal(pragma_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name = "
                                         "'certificates_revoked'"),
                     1);
}

/* A step that fails leaves the file as it was: version 1, no half-added column. */
static void test_migrate_failure_keeps_v1(void **state)
{
    fixture *f = *state;
    /* A column added by hand makes the step's second ALTER TABLE fail after the first one ran:
     * the rollback must undo that one too. */
    make_v1_file(f, "ALTER TABLE certificates ADD COLUMN revocation_reason INTEGER;");
    xb_registry *r = NULL;
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_open(f->url, &r, &d), XB_ERR_REGISTRY);
    assert_null(r);
    assert_non_null(strstr(d.msg, "from version 1 to 2"));
    assert_int_equal(pragma_int(f->path, "PRAGMA user_version"), 1);
    assert_int_equal(pragma_int(f->path, "SELECT count(*) FROM pragma_table_info('certificates') "
                                         "WHERE name = 'revoked_at'"),
                     0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_add_get_list),
        T(test_each_stops_on_callback_error),
        T(test_disable_enable),
        T(test_invalid_ids_refused),
        T(test_duplicates),
        T(test_credentials),
        T(test_record_allowlist_success),
        T(test_record_unknown_writes_nothing),
        T(test_record_disabled_writes_nothing),
        T(test_second_issuance_refused),
        T(test_reenroll_allowed),
        T(test_open_mode_creates_device),
        T(test_failed_insert_rolls_back),
        T(test_batch_judges_each_item),
        T(test_batch_failure_writes_nothing),
        T(test_synchronous_option),
        T(test_locked_database_fails_cleanly),
        T(test_two_handles_race),
        T(test_worker_processes_race),
        T(test_reopen_keeps_data),
        T(test_file_properties),
        T(test_bad_urls),
        T(test_current_cert_none),
        T(test_current_cert_latest),
        T(test_current_cert_uses_index),
        T(test_revoke),
        T(test_reason_names),
        T(test_migrate_v1),
        T(test_migrate_failure_keeps_v1),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
