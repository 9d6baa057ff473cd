/* The registry contract (registry.h) against the PostgreSQL backend (registry_pg*.c), on a real
 * server: the semantics tests/unit/test_registry.c checks on SQLite, and what only PostgreSQL
 * has (migrations, lazy connection, reconnection, transaction retries, several processes
 * racing on one database). Not a ctest of its own: it needs a server, which the e2e wrapper
 * tests/e2e/pg_registry.sh starts (XB_PG_URL names the database; every test empties its
 * schema public first, so the database must be a scratch one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "registry.h"
#include "registry_pg.h"
#include "registry_test_helpers.h"

static const char *g_url;   /* XB_PG_URL: postgresql://user:password@127.0.0.1:port/db */
static const char *g_admin; /* XB_PG_ADMIN_URL: the same server, a database to create others */

/* ---- plain libpq, beside the registry ---- */

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static PGconn *plain_conn(void)
{
    PGconn *c = PQconnectdb(g_url);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

static void plain_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

/* One value of a one-row query, as a number. */
static long long plain_int(const char *sql)
{
    PGconn *c = plain_conn();
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

/* An empty schema public: no tables, no citext. */
static void wipe(void)
{
    PGconn *c = plain_conn();
    plain_exec(c, "SET client_min_messages = warning;"
                  "DROP EXTENSION IF EXISTS citext CASCADE;"
                  "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public");
    PQfinish(c);
}

static int setup_empty(void **state)
{
    (void)state;
    wipe();
    return 0;
}

static int setup(void **state)
{
    (void)state;
    wipe();
    int from = -1, to = -1;
    xb_diag d = {{0}};
    xb_err err = xb_registry_migrate(g_url, &from, &to, &d);
    if (err != XB_OK) {
        fprintf(stderr, "migrate: %s\n", xb_diag_message(&d, err));
        return -1;
    }
    return 0;
}

/* ---- helpers, as in test_registry.c ---- */

static xb_registry *open_url(const char *url)
{
    xb_registry *r = NULL;
    xb_diag d = {{0}};
    xb_err err = xb_registry_open(url, &r, &d);
    if (err != XB_OK)
        fail_msg("open: %s", xb_diag_message(&d, err));
    return r;
}

static xb_registry *open_ok(void)
{
    return open_url(g_url);
}

/* One issuance through record_batch (the path xbootd's commit thread takes). */
static xb_err batch1(xb_registry *r, const xb_cert_record *rec, const xb_enroll_rules *rules,
                     xb_diag *item_diag)
{
    xb_issuance it;
    memset(&it, 0, sizeof it);
    it.rec = *rec;
    xb_issuance *p = &it;
    xb_diag d = {{0}};
    xb_err err = xb_registry_record_batch(r, &p, 1, rules, &d);
    if (item_diag != NULL)
        *item_diag = it.diag;
    return err != XB_OK ? err : it.result;
}

static xb_err record(xb_registry *r, const char *id, const char *serial,
                     const xb_enroll_rules *rules)
{
    xb_cert_record rec = make_rec(id, serial, time(NULL));
    return batch1(r, &rec, rules, NULL);
}

static xb_err count_device(const xb_device *dev, void *ctx)
{
    (void)dev;
    ++*(long long *)ctx;
    return XB_OK;
}

static long long device_rows(xb_registry *r)
{
    long long n = 0;
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_device_each(r, count_device, &n, &d), XB_OK);
    return n;
}

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

/* ---- devices ---- */

static void test_add_get_list(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
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
    assert_int_equal(dev.has_secret, 0);
    assert_string_equal(dev.group, "");

    listing l = {.n = 0};
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_device_each(r, collect_device, &l, &d), XB_OK);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.ids[0], "00:11:22:33:44:55");
    assert_string_equal(l.ids[1], "dev-a");
    assert_string_equal(l.ids[2], "dev-b");

    assert_int_equal(xb_registry_device_get(r, "dev-c", &dev, &d), XB_ERR_DEVICE_UNKNOWN);
    assert_non_null(strstr(d.msg, "dev-c"));
    assert_int_equal(xb_registry_device_set_enabled(r, "dev-a", 0, &d), XB_OK);
    assert_int_equal(get_ok(r, "dev-a").enabled, 0);
    assert_int_equal(xb_registry_device_set_enabled(r, "dev-c", 0, &d), XB_ERR_DEVICE_UNKNOWN);
    assert_int_equal(xb_registry_ping(r, &d), XB_OK);
    xb_registry_close(r);
}

/* DEV1 and dev1 are one device: the second add is refused, either spelling finds it, and the
 * rules see one device. */
static void test_ids_case_insensitive(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
    add_ok(r, "DEV1");
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_device_add(r, "dev1", &d), XB_ERR_EXISTS);
    assert_non_null(strstr(d.msg, "already registered"));
    assert_string_equal(get_ok(r, "dev1").reg_id, "DEV1");
    assert_string_equal(get_ok(r, "Dev1").reg_id, "DEV1");
    assert_int_equal(device_rows(r), 1);

    assert_int_equal(record(r, "dev1", "01", &allowlist_once), XB_OK);
    assert_int_equal(xb_registry_check_enroll(r, "DEV1", &allowlist_once, &d),
                     XB_ERR_ALREADY_ENROLLED);
    assert_int_equal(record(r, "DeV1", "02", &allowlist_once), XB_ERR_ALREADY_ENROLLED);
    assert_int_equal(cert_rows(r, "DEV1"), 1);
    assert_int_equal(cert_rows(r, "dev1"), 1);
    assert_int_equal(get_ok(r, "dev1").cert_count, 1);
    xb_cert_record cur;
    uint8_t *der = NULL;
    size_t der_len = 0;
    assert_int_equal(xb_registry_current_cert(r, "dEv1", &cur, &der, &der_len, &d), XB_OK);
    free(der);
    assert_string_equal(cur.serial, "01");
    xb_registry_close(r);
}

static int nocase_cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    for (;; x++, y++) {
        int cx = (unsigned char)*x, cy = (unsigned char)*y;
        if (cx >= 'A' && cx <= 'Z')
            cx += 'a' - 'A';
        if (cy >= 'A' && cy <= 'Z')
            cy += 'a' - 'A';
        if (cx != cy || cx == 0)
            return cx - cy;
    }
}

static void list_order_in(const char *url)
{
    const char *ids[] = {"dev_1", "devA", "DEV-2", "dev.3", "dev:4", "dev9", "dev10", "Dev-10",
                         "a",     "B",    "_x",    "-y",    ".z",    ":w",   "0",     "Z9",
                         "z_1",   "z-",   "zA",    "Za1",   "a:b",   "A.B",  "a_c",   "ab-"};
    size_t n = sizeof ids / sizeof ids[0];
    xb_registry *r = open_url(url);
    for (size_t i = 0; i < n; i++)
        add_ok(r, ids[i]);
    const char *want[sizeof ids / sizeof ids[0]];
    memcpy(want, ids, sizeof ids);
    qsort(want, n, sizeof want[0], nocase_cmp);
    listing l = {.n = 0};
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_device_each(r, collect_device, &l, &d), XB_OK);
    assert_int_equal(l.n, (int)n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(l.ids[i], want[i]);
    xb_registry_close(r);
}

/* The listing is in SQLite's NOCASE order (ASCII of the lowercased IDs), whatever the
 * database's collation: '-' < '.' < digits < ':' < '_' < letters, and an upper-case letter
 * sorts as its lower-case (after '_', where raw ASCII puts it before). The harness's database
 * has the C collation, where citext's own order happens to be that one; a scratch database
 * with an ICU collation (made through XB_PG_ADMIN_URL) is where the ORDER BY really matters. */
static void test_list_order_nocase(void **state)
{
    (void)state;
    list_order_in(g_url);
}

static void test_list_order_icu_database(void **state)
{
    (void)state;
    if (g_admin == NULL)
        fail_msg("XB_PG_ADMIN_URL is not set");
    PGconn *c = PQconnectdb(g_admin);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect (admin): %s", PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet, NULL);
    plain_exec(c, "DROP DATABASE IF EXISTS xb_icu WITH (FORCE)");
    plain_exec(c, "CREATE DATABASE xb_icu TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' "
                  "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'");
    char url[512];
    const char *slash = strrchr(g_url, '/');
    snprintf(url, sizeof url, "%.*s/xb_icu", (int)(slash - g_url), g_url);
    int from = -1, to = -1;
    xb_diag d = {{0}};
    xb_err err = xb_registry_migrate(url, &from, &to, &d);
    if (err != XB_OK)
        fail_msg("migrate xb_icu: %s", xb_diag_message(&d, err));
    list_order_in(url);
    plain_exec(c, "DROP DATABASE xb_icu WITH (FORCE)");
    PQfinish(c);
}

/* ---- the enrollment rules ---- */

static void test_one_time_enrollment(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
    add_ok(r, "dev-1");
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_check_enroll(r, "dev-1", &allowlist_once, &d), XB_OK);
    xb_cert_record one = make_rec("dev-1", "0a1b2c", 1700000000);
    assert_int_equal(batch1(r, &one, &allowlist_once, NULL), XB_OK);
    xb_device dev = get_ok(r, "dev-1");
    assert_int_equal(dev.enrolled_at, 1700000000);
    assert_int_equal(dev.cert_count, 1);
    assert_string_equal(xb_device_state(&dev), "enrolled");
    xb_cert_record c = get_cert_ok(r, "0a1b2c");
    assert_string_equal(c.reg_id, "dev-1");
    assert_int_equal(c.not_before, one.not_before);
    assert_int_equal(c.not_after, one.not_after);
    assert_string_equal(c.pubkey_sha256, one.pubkey_sha256);
    assert_string_equal(c.client_addr, "192.0.2.10");
    assert_int_equal(c.revoked_at, 0);

    /* The second issuance is refused, and writes nothing: no certificate, enrolled_at kept. */
    xb_cert_record two = make_rec("dev-1", "0a1b2d", 1700000100);
    xb_diag item = {{0}};
    assert_int_equal(batch1(r, &two, &allowlist_once, &item), XB_ERR_ALREADY_ENROLLED);
    assert_non_null(strstr(item.msg, "dev-1"));
    assert_int_equal(cert_rows(r, NULL), 1);
    assert_int_equal(get_ok(r, "dev-1").enrolled_at, 1700000000);
    uint8_t *der = NULL;
    size_t der_len = 0;
    assert_int_equal(xb_registry_cert_get(r, "0a1b2d", &c, &der, &der_len, &d), XB_ERR_NOT_FOUND);

    /* In one batch: judged in order, the first of two for one device (any case) wins; unknown
     * and disabled devices are refused on their own. */
    add_ok(r, "dev-2");
    add_ok(r, "dev-off");
    assert_int_equal(xb_registry_device_set_enabled(r, "dev-off", 0, &d), XB_OK);
    const char *ids[] = {"dev-2", "DEV-2", "stranger", "dev-off"};
    xb_issuance items[4];
    xb_issuance *ptrs[4];
    for (size_t i = 0; i < 4; i++) {
        char serial[8];
        snprintf(serial, sizeof serial, "b%zu", i);
        memset(&items[i], 0, sizeof items[i]);
        items[i].rec = make_rec(ids[i], serial, 1700000200);
        ptrs[i] = &items[i];
    }
    assert_int_equal(xb_registry_record_batch(r, ptrs, 4, &allowlist_once, &d), XB_OK);
    assert_int_equal(items[0].result, XB_OK);
    assert_int_equal(items[1].result, XB_ERR_ALREADY_ENROLLED);
    assert_int_equal(items[2].result, XB_ERR_DEVICE_UNKNOWN);
    assert_int_equal(items[3].result, XB_ERR_DEVICE_DISABLED);
    assert_int_equal(cert_rows(r, NULL), 2);
    assert_int_equal(get_ok(r, "dev-off").enrolled_at, 0);
    assert_int_equal(xb_registry_device_get(r, "stranger", &dev, &d), XB_ERR_DEVICE_UNKNOWN);
    xb_registry_close(r);
}

static void test_reenroll_and_renewal(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
    add_ok(r, "dev-1");
    xb_diag d = {{0}};
    xb_cert_record one = make_rec("dev-1", "01", 1700000000);
    xb_cert_record two = make_rec("dev-1", "02", 1700000100);
    assert_int_equal(batch1(r, &one, &allowlist_reenroll, NULL), XB_OK);
    assert_int_equal(xb_registry_check_enroll(r, "dev-1", &allowlist_reenroll, &d), XB_OK);
    assert_int_equal(batch1(r, &two, &allowlist_reenroll, NULL), XB_OK);
    xb_device dev = get_ok(r, "dev-1");
    assert_int_equal(dev.cert_count, 2);
    assert_int_equal(dev.enrolled_at, 1700000100);

    /* A renewal is recorded although re-enrollment is not allowed... */
    xb_cert_record three = make_rec("dev-1", "03", 1700000200);
    assert_int_equal(batch1(r, &three, &allowlist_once, NULL), XB_ERR_ALREADY_ENROLLED);
    three.renewal = 1;
    assert_int_equal(batch1(r, &three, &allowlist_once, NULL), XB_OK);
    assert_int_equal(get_ok(r, "dev-1").enrolled_at, 1700000200);
    assert_int_equal(cert_rows(r, "dev-1"), 3);
    /* ...but never for an unknown or a disabled device, even in open mode. */
    xb_cert_record ghost = make_rec("ghost", "04", 1700000300);
    ghost.renewal = 1;
    assert_int_equal(batch1(r, &ghost, &allowlist_once, NULL), XB_ERR_DEVICE_UNKNOWN);
    assert_int_equal(xb_registry_device_set_enabled(r, "dev-1", 0, &d), XB_OK);
    xb_cert_record four = make_rec("dev-1", "05", 1700000400);
    four.renewal = 1;
    assert_int_equal(batch1(r, &four, &allowlist_once, NULL), XB_ERR_DEVICE_DISABLED);
    assert_int_equal(batch1(r, &four, &open_once, NULL), XB_ERR_DEVICE_DISABLED);
    assert_int_equal(cert_rows(r, NULL), 3);
    assert_int_equal(get_ok(r, "dev-1").enrolled_at, 1700000200);
    xb_registry_close(r);
}

static void test_open_mode_creates_device(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
    xb_diag d = {{0}};
    xb_device dev;
    assert_int_equal(xb_registry_check_enroll(r, "new-dev", &open_once, &d), XB_OK);
    assert_int_equal(xb_registry_device_get(r, "new-dev", &dev, &d), XB_ERR_DEVICE_UNKNOWN);
    assert_int_equal(record(r, "new-dev", "01", &allowlist_once), XB_ERR_DEVICE_UNKNOWN);
    assert_int_equal(xb_registry_device_get(r, "new-dev", &dev, &d), XB_ERR_DEVICE_UNKNOWN);

    assert_int_equal(record(r, "new-dev", "01", &open_once), XB_OK);
    dev = get_ok(r, "NEW-DEV");
    assert_string_equal(dev.reg_id, "new-dev");
    assert_string_equal(dev.source, "open");
    assert_int_equal(dev.enabled, 1);
    assert_int_equal(dev.cert_count, 1);
    assert_true(dev.enrolled_at != 0);
    assert_int_equal(record(r, "NEW-dev", "02", &open_once), XB_ERR_ALREADY_ENROLLED);
    assert_int_equal(cert_rows(r, NULL), 1);

    /* An operator-added device keeps its source when it enrolls in open mode. */
    add_ok(r, "listed");
    assert_int_equal(record(r, "listed", "03", &open_once), XB_OK);
    assert_string_equal(get_ok(r, "listed").source, "allowlist");
    assert_int_equal(device_rows(r), 2);
    xb_registry_close(r);
}

/* new_source / new_group: the first enrollment of a group member creates its row; a group that
 * does not exist (any more) refuses the enrollment and writes nothing. */
static void test_new_source_group(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
    xb_diag d = {{0}};
    uint8_t key[32];
    memset(key, 0x5a, sizeof key);
    assert_int_equal(xb_registry_group_add(r, "line-1", key, sizeof key, &d), XB_OK);
    assert_int_equal(xb_registry_group_add(r, "line-1", key, sizeof key, &d), XB_ERR_EXISTS);
    xb_group g;
    assert_int_equal(xb_registry_group_get(r, "line-1", &g, &d), XB_OK);
    assert_int_equal(g.key_len, sizeof key);
    assert_memory_equal(g.key, key, sizeof key);
    assert_int_equal(xb_registry_group_get(r, "line-2", &g, &d), XB_ERR_NOT_FOUND);

    xb_cert_record rec = make_rec("g-new", "31", time(NULL));
    rec.new_source = "group";
    rec.new_group = "line-1";
    assert_int_equal(batch1(r, &rec, &allowlist_once, NULL), XB_OK);
    xb_device dev = get_ok(r, "g-new");
    assert_string_equal(dev.source, "group");
    assert_string_equal(dev.group, "line-1");
    assert_string_equal(xb_device_state(&dev), "enrolled");
    rec = make_rec("G-NEW", "32", time(NULL));
    rec.new_source = "group";
    rec.new_group = "line-1";
    assert_int_equal(batch1(r, &rec, &allowlist_once, NULL), XB_ERR_ALREADY_ENROLLED);

    /* A missing group: refused as an unknown device, no row, no certificate. */
    rec = make_rec("g-ghost", "33", time(NULL));
    rec.new_source = "group";
    rec.new_group = "line-2";
    xb_diag item = {{0}};
    assert_int_equal(batch1(r, &rec, &allowlist_once, &item), XB_ERR_DEVICE_UNKNOWN);
    assert_non_null(strstr(item.msg, "line-2"));
    assert_int_equal(xb_registry_device_get(r, "g-ghost", &dev, &d), XB_ERR_DEVICE_UNKNOWN);
    /* A manufacturer certificate's first enrollment (no group). */
    rec = make_rec("idev-1", "34", time(NULL));
    rec.new_source = "idevid";
    assert_int_equal(batch1(r, &rec, &allowlist_once, NULL), XB_OK);
    assert_string_equal(get_ok(r, "idev-1").source, "idevid");
    assert_string_equal(get_ok(r, "idev-1").group, "");
    /* Without new_source an unknown device is refused. */
    rec = make_rec("nobody", "35", time(NULL));
    assert_int_equal(batch1(r, &rec, &allowlist_once, NULL), XB_ERR_DEVICE_UNKNOWN);
    assert_int_equal(xb_registry_device_get(r, "nobody", &dev, &d), XB_ERR_DEVICE_UNKNOWN);
    assert_int_equal(cert_rows(r, NULL), 2);
    assert_int_equal(device_rows(r), 2);
    xb_registry_close(r);
}

/* A storage failure in a batch (a serial recorded twice) writes nothing for any item. */
static void test_batch_duplicate_serial(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
    const char *ids[] = {"dev-1", "dev-2", "dev-3"};
    const char *serials[] = {"first", "same", "same"};
    xb_issuance items[3];
    xb_issuance *ptrs[3];
    for (size_t i = 0; i < 3; i++) {
        add_ok(r, ids[i]);
        memset(&items[i], 0, sizeof items[i]);
        items[i].rec = make_rec(ids[i], serials[i], 1700000000);
        ptrs[i] = &items[i];
    }
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_record_batch(r, ptrs, 3, &allowlist_once, &d), XB_ERR_REGISTRY);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(items[i].result, XB_ERR_REGISTRY);
        assert_non_null(strstr(items[i].diag.msg, "same"));
        assert_int_equal(get_ok(r, ids[i]).enrolled_at, 0);
    }
    assert_int_equal(cert_rows(r, NULL), 0);
    /* The handle is usable afterwards and the devices can still enroll. */
    assert_int_equal(record(r, "dev-1", "again", &allowlist_once), XB_OK);
    assert_int_equal(record(r, "dev-2", "same", &allowlist_once), XB_OK);
    assert_int_equal(cert_rows(r, NULL), 2);
    xb_registry_close(r);
}

static xb_err record_with_der(xb_registry *r, const char *id, const char *serial, time_t issued_at,
                              const uint8_t *der, size_t der_len)
{
    xb_cert_record rec = make_rec(id, serial, issued_at);
    rec.der = der;
    rec.der_len = der_len;
    return batch1(r, &rec, &allowlist_reenroll, NULL);
}

static void test_current_cert_latest(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
    add_ok(r, "dev-1");
    add_ok(r, "dev-2");
    static const uint8_t der1[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    static const uint8_t der2[] = {0x30, 0x03, 0x02, 0x01, 0x02};
    static const uint8_t der3[] = {0x30, 0x03, 0x02, 0x01, 0x03};
    static const uint8_t der4[] = {0x30, 0x04, 0x02, 0x02, 0x04, 0x04};
    xb_cert_record out;
    uint8_t *der = NULL;
    size_t der_len = 0;
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_current_cert(r, "dev-1", &out, &der, &der_len, &d),
                     XB_ERR_NOT_FOUND);
    assert_int_equal(record_with_der(r, "dev-1", "01", 1700000000, der1, sizeof der1), XB_OK);
    assert_int_equal(record_with_der(r, "dev-1", "02", 1700000200, der2, sizeof der2), XB_OK);
    /* Recorded later, issued earlier: not current. */
    assert_int_equal(record_with_der(r, "dev-1", "03", 1700000100, der3, sizeof der3), XB_OK);
    assert_int_equal(record_with_der(r, "dev-2", "09", 1700000900, der1, sizeof der1), XB_OK);
    assert_int_equal(xb_registry_current_cert(r, "dev-1", &out, &der, &der_len, &d), XB_OK);
    assert_string_equal(out.serial, "02");
    assert_null(out.subject);
    assert_int_equal(out.issued_at, 1700000200);
    assert_int_equal(der_len, sizeof der2);
    assert_memory_equal(der, der2, sizeof der2);
    assert_ptr_equal(out.der, der);
    free(der);

    /* Equal issued_at: the one recorded last. Twice, so neither serial order nor chance
     * decides: "00" sorts before "02" and "ff" after it. */
    assert_int_equal(record_with_der(r, "dev-1", "00", 1700000200, der4, sizeof der4), XB_OK);
    der = NULL;
    assert_int_equal(xb_registry_current_cert(r, "DEV-1", &out, &der, &der_len, &d), XB_OK);
    assert_string_equal(out.serial, "00");
    assert_int_equal(der_len, sizeof der4);
    assert_memory_equal(der, der4, sizeof der4);
    free(der);
    assert_int_equal(record_with_der(r, "dev-1", "ff", 1700000200, der3, sizeof der3), XB_OK);
    der = NULL;
    assert_int_equal(xb_registry_current_cert(r, "dev-1", &out, &der, &der_len, &d), XB_OK);
    assert_string_equal(out.serial, "ff");
    free(der);
    assert_int_equal(cert_rows(r, "dev-1"), 5);
    xb_registry_close(r);
}

/* ---- revocation and the CRL ---- */

static void test_revoke(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
    add_ok(r, "dev-1");
    assert_int_equal(record(r, "dev-1", "01", &allowlist_reenroll), XB_OK);
    assert_int_equal(record(r, "dev-1", "02", &allowlist_reenroll), XB_OK);
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

    d.msg[0] = '\0';
    assert_int_equal(xb_registry_cert_revoke(r, "01", XB_REVOKE_SUPERSEDED, 1700000900, &d),
                     XB_ERR_EXISTS);
    assert_non_null(strstr(d.msg, "keyCompromise"));
    assert_non_null(strstr(d.msg, "2023-11-14T22:21:40Z"));
    c = get_cert_ok(r, "01");
    assert_int_equal(c.revoked_at, 1700000500);
    assert_int_equal(c.revocation_reason, XB_REVOKE_KEY_COMPROMISE);
    /* Only the first revocation bumped the CRL revision. */
    xb_crl_state st;
    assert_int_equal(xb_registry_crl_state(r, &st, &d), XB_OK);
    assert_int_equal(st.revision, 1);
    xb_registry_close(r);
}

static void test_disable_revoke(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
    add_ok(r, "dev-1");
    add_ok(r, "dev-2");
    assert_int_equal(record(r, "dev-1", "01", &allowlist_reenroll), XB_OK);
    assert_int_equal(record(r, "dev-1", "02", &allowlist_reenroll), XB_OK);
    assert_int_equal(record(r, "dev-1", "03", &allowlist_reenroll), XB_OK);
    assert_int_equal(record(r, "dev-2", "04", &allowlist_reenroll), XB_OK);
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_cert_revoke(r, "02", XB_REVOKE_KEY_COMPROMISE, 1700000000, &d),
                     XB_OK);
    size_t revoked = 99;
    assert_int_equal(xb_registry_device_disable_revoke(r, "DEV-1", XB_REVOKE_CESSATION_OF_OPERATION,
                                                       1700000500, &revoked, &d),
                     XB_OK);
    assert_int_equal(revoked, 2);
    assert_int_equal(get_ok(r, "dev-1").enabled, 0);
    assert_int_equal(get_cert_ok(r, "01").revocation_reason, XB_REVOKE_CESSATION_OF_OPERATION);
    assert_int_equal(get_cert_ok(r, "02").revocation_reason, XB_REVOKE_KEY_COMPROMISE);
    assert_int_equal(get_cert_ok(r, "02").revoked_at, 1700000000);
    assert_int_equal(get_cert_ok(r, "03").revoked_at, 1700000500);
    assert_int_equal(get_cert_ok(r, "04").revoked_at, 0);
    assert_int_equal(get_ok(r, "dev-2").enabled, 1);
    xb_crl_state st;
    assert_int_equal(xb_registry_crl_state(r, &st, &d), XB_OK);
    assert_int_equal(st.revision, 2);
    /* Again: nothing left to revoke, and the CRL is not made stale for nothing. */
    revoked = 99;
    assert_int_equal(
        xb_registry_device_disable_revoke(r, "dev-1", XB_REVOKE_UNSPECIFIED, 0, &revoked, &d),
        XB_OK);
    assert_int_equal(revoked, 0);
    assert_int_equal(xb_registry_crl_state(r, &st, &d), XB_OK);
    assert_int_equal(st.revision, 2);
    revoked = 99;
    assert_int_equal(
        xb_registry_device_disable_revoke(r, "ghost", XB_REVOKE_UNSPECIFIED, 0, &revoked, &d),
        XB_ERR_DEVICE_UNKNOWN);
    assert_int_equal(revoked, 0);
    xb_registry_close(r);
}

typedef struct crl_ctx {
    int stale;  /* what stale() says */
    int builds; /* calls of build() */
    size_t last_n;
    long long last_number;
    char first_serial[41];
} crl_ctx;

static int crl_stale(const xb_crl_state *st, void *ctx)
{
    (void)st;
    return ((crl_ctx *)ctx)->stale;
}

static int crl_stale_if_behind(const xb_crl_state *st, void *ctx)
{
    (void)ctx;
    return st->number == 0 || st->covers < st->revision;
}

static xb_err crl_build(const xb_revoked *revoked, size_t n, long long number, void *ctx,
                        uint8_t **der, size_t *der_len, time_t *this_update, time_t *next_update,
                        xb_diag *d)
{
    (void)d;
    crl_ctx *c = ctx;
    c->builds++;
    c->last_n = n;
    c->last_number = number;
    snprintf(c->first_serial, sizeof c->first_serial, "%s", n > 0 ? revoked[0].serial : "");
    *der = malloc(4);
    if (*der == NULL)
        return XB_ERR_NOMEM;
    memcpy(*der, "\x30\x02\x05\x00", 4);
    (*der)[3] = (uint8_t)number;
    *der_len = 4;
    *this_update = 1700000000 + number;
    *next_update = 1700086400 + number;
    return XB_OK;
}

static void test_crl_update(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
    xb_diag d = {{0}};
    crl_ctx c = {.stale = 0};
    int made = 7;
    xb_crl_state st;
    uint8_t *der = NULL;
    size_t der_len = 0;
    /* Not stale: nothing built, nothing stored. */
    assert_int_equal(xb_registry_crl_update(r, crl_stale, crl_build, &c, &made, &d), XB_OK);
    assert_int_equal(made, 0);
    assert_int_equal(c.builds, 0);
    assert_int_equal(xb_registry_crl_get(r, &st, &der, &der_len, &d), XB_ERR_NOT_FOUND);
    assert_int_equal(xb_registry_crl_state(r, &st, &d), XB_OK);
    assert_int_equal(st.number, 0);

    c.stale = 1;
    assert_int_equal(xb_registry_crl_update(r, crl_stale, crl_build, &c, &made, &d), XB_OK);
    assert_int_equal(made, 1);
    assert_int_equal(c.builds, 1);
    assert_int_equal(c.last_number, 1);
    assert_int_equal(c.last_n, 0);
    assert_int_equal(xb_registry_crl_get(r, &st, &der, &der_len, &d), XB_OK);
    assert_int_equal(st.number, 1);
    assert_int_equal(st.covers, st.revision);
    assert_int_equal(st.this_update, 1700000001);
    assert_int_equal(der_len, 4);
    assert_int_equal(der[3], 1);
    free(der);
    der = NULL;

    add_ok(r, "dev-1");
    assert_int_equal(record(r, "dev-1", "0abc", &allowlist_once), XB_OK);
    assert_int_equal(xb_registry_cert_revoke(r, "0abc", XB_REVOKE_KEY_COMPROMISE, 0, &d), XB_OK);
    assert_int_equal(xb_registry_crl_state(r, &st, &d), XB_OK);
    assert_int_equal(st.number, 1);
    assert_true(st.revision > st.covers);
    assert_int_equal(xb_registry_crl_update(r, crl_stale_if_behind, crl_build, &c, &made, &d),
                     XB_OK);
    assert_int_equal(made, 1);
    assert_int_equal(c.last_number, 2);
    assert_int_equal(c.last_n, 1);
    assert_string_equal(c.first_serial, "0abc");
    assert_int_equal(xb_registry_crl_state(r, &st, &d), XB_OK);
    assert_int_equal(st.number, 2);
    assert_int_equal(st.covers, st.revision);
    /* Current now: the second caller signs nothing; a forced one goes on to 3, never back. */
    assert_int_equal(xb_registry_crl_update(r, crl_stale_if_behind, crl_build, &c, &made, &d),
                     XB_OK);
    assert_int_equal(made, 0);
    assert_int_equal(c.builds, 2);
    assert_int_equal(xb_registry_crl_update(r, crl_stale, crl_build, &c, &made, &d), XB_OK);
    assert_int_equal(made, 1);
    assert_int_equal(xb_registry_crl_state(r, &st, &d), XB_OK);
    assert_int_equal(st.number, 3);
    xb_registry_close(r);
}

/* ---- bulk import (pipelined, 1000 inserts a segment) ---- */

#define BULK 2500

static xb_device_spec *bulk_specs(char (*names)[24])
{
    static xb_device_spec specs[BULK];
    for (size_t i = 0; i < BULK; i++) {
        snprintf(names[i], sizeof names[i], "bulk-%04zu", i);
        specs[i] = (xb_device_spec){.reg_id = names[i]};
    }
    return specs;
}

static void test_add_many_bulk(void **state)
{
    (void)state;
    static char names[BULK][24];
    xb_device_spec *specs = bulk_specs(names);
    xb_registry *r = open_ok();
    add_ok(r, "dup-x");
    xb_diag d = {{0}};
    size_t bad = 99;

    /* #2001 (index 2000, the first of the third segment) clashes with a registered device. */
    snprintf(names[2000], sizeof names[2000], "DUP-X");
    assert_int_equal(xb_registry_device_add_many(r, specs, BULK, &bad, &d), XB_ERR_EXISTS);
    assert_int_equal(bad, 2000);
    assert_non_null(strstr(d.msg, "already registered"));
    assert_non_null(strstr(d.msg, "DUP-X"));
    assert_int_equal(device_rows(r), 1);

    /* The same in the middle of a segment, and at its last insert. */
    snprintf(names[2000], sizeof names[2000], "bulk-2000");
    snprintf(names[1500], sizeof names[1500], "dup-X");
    assert_int_equal(xb_registry_device_add_many(r, specs, BULK, &bad, &d), XB_ERR_EXISTS);
    assert_int_equal(bad, 1500);
    assert_int_equal(device_rows(r), 1);
    snprintf(names[1500], sizeof names[1500], "bulk-1500");
    snprintf(names[999], sizeof names[999], "Dup-x");
    assert_int_equal(xb_registry_device_add_many(r, specs, BULK, &bad, &d), XB_ERR_EXISTS);
    assert_int_equal(bad, 999);
    assert_int_equal(device_rows(r), 1);
    snprintf(names[999], sizeof names[999], "bulk-0999");

    /* A duplicate within the batch (another case of an earlier element), in a later segment. */
    snprintf(names[1000], sizeof names[1000], "BULK-0003");
    assert_int_equal(xb_registry_device_add_many(r, specs, BULK, &bad, &d), XB_ERR_EXISTS);
    assert_int_equal(bad, 1000);
    assert_non_null(strstr(d.msg, "listed twice"));
    assert_int_equal(device_rows(r), 1);
    snprintf(names[1000], sizeof names[1000], "bulk-1000");

    /* A group that does not exist, late in the batch. */
    specs[2400].group = "no-such-group";
    assert_int_equal(xb_registry_device_add_many(r, specs, BULK, &bad, &d), XB_ERR_NOT_FOUND);
    assert_int_equal(bad, 2400);
    assert_int_equal(device_rows(r), 1);
    specs[2400].group = NULL;

    /* And then all of them. */
    assert_int_equal(xb_registry_device_add_many(r, specs, BULK, &bad, &d), XB_OK);
    assert_int_equal(device_rows(r), BULK + 1);
    assert_string_equal(get_ok(r, "BULK-2499").reg_id, "bulk-2499");
    assert_int_equal(xb_registry_ping(r, &d), XB_OK);
    xb_registry_close(r);
}

static void test_add_many_small(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
    add_ok(r, "dev-a");
    xb_diag d = {{0}};
    size_t bad = 99;
    const xb_device_spec batch[] = {{.reg_id = "dev-b"}, {.reg_id = "DEV-A"}};
    assert_int_equal(xb_registry_device_add_many(r, batch, 2, &bad, &d), XB_ERR_EXISTS);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(d.msg, "already registered"));
    xb_device dev;
    assert_int_equal(xb_registry_device_get(r, "dev-b", &dev, &d), XB_ERR_DEVICE_UNKNOWN);
    const xb_device_spec twice[] = {{.reg_id = "dev-c"}, {.reg_id = "Dev-C"}};
    assert_int_equal(xb_registry_device_add_many(r, twice, 2, &bad, &d), XB_ERR_EXISTS);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(d.msg, "listed twice"));
    uint8_t hash[XB_SECRET_HASH_LEN];
    memset(hash, 0xa5, sizeof hash);
    const xb_device_spec good[] = {{.reg_id = "dev-d", .secret_sha256 = hash}, {.reg_id = "dev-e"}};
    assert_int_equal(xb_registry_device_add_many(r, good, 2, &bad, &d), XB_OK);
    dev = get_ok(r, "dev-d");
    assert_int_equal(dev.has_secret, 1);
    assert_memory_equal(dev.secret_sha256, hash, sizeof hash);
    assert_int_equal(get_ok(r, "dev-e").has_secret, 0);
    assert_int_equal(device_rows(r), 3);
    xb_registry_close(r);
}

/* ---- PostgreSQL only: the schema ---- */

static void test_migrate_versions(void **state)
{
    (void)state;
    int from = -1, to = -1;
    xb_diag d = {{0}};
    xb_err err = xb_registry_migrate(g_url, &from, &to, &d);
    if (err != XB_OK)
        fail_msg("migrate: %s", xb_diag_message(&d, err));
    assert_int_equal(from, 0);
    assert_int_equal(to, 4);
    from = to = -1;
    assert_int_equal(xb_registry_migrate(g_url, &from, &to, &d), XB_OK);
    assert_int_equal(from, 4);
    assert_int_equal(to, 4);
    assert_int_equal(plain_int("SELECT version FROM xboot_schema WHERE id = 1"), 4);
    xb_registry *r = open_ok();
    add_ok(r, "dev-1");
    xb_registry_close(r);
}

static void test_open_without_schema(void **state)
{
    (void)state;
    xb_registry *r = NULL;
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_open(g_url, &r, &d), XB_ERR_CONFIG);
    assert_null(r);
    assert_non_null(strstr(d.msg, "db migrate"));
    assert_non_null(strstr(d.msg, "version 0"));
}

static void test_newer_schema(void **state)
{
    (void)state;
    PGconn *c = plain_conn();
    plain_exec(c, "UPDATE xboot_schema SET version = 5 WHERE id = 1");
    PQfinish(c);
    /* Accepted by open (migrations only add)... */
    xb_registry *r = open_ok();
    add_ok(r, "dev-1");
    assert_int_equal(record(r, "dev-1", "01", &allowlist_once), XB_OK);
    xb_diag d = {{0}};
    assert_int_equal(xb_registry_ping(r, &d), XB_OK);
    xb_registry_close(r);
    /* ...refused by migrate, which changes nothing. */
    int from = -1, to = -1;
    assert_int_equal(xb_registry_migrate(g_url, &from, &to, &d), XB_ERR_CONFIG);
    assert_non_null(strstr(d.msg, "newer"));
    assert_int_equal(plain_int("SELECT version FROM xboot_schema WHERE id = 1"), 5);
}

/* The password of the URL never reaches a message: a database that does not exist, a wrong
 * password, through open (lazy), migrate and a statement. */
static void test_password_never_shown(void **state)
{
    (void)state;
    const char *rest = strstr(g_url, "://");
    assert_non_null(rest);
    rest += 3;
    const char *at = strchr(rest, '@'), *colon = strchr(rest, ':');
    assert_non_null(at);
    assert_true(colon != NULL && colon < at);
    char password[128];
    snprintf(password, sizeof password, "%.*s", (int)(at - colon - 1), colon + 1);
    assert_true(strlen(password) >= 4);
    const char *slash = strchr(at, '/');
    assert_non_null(slash);
    char missing[512], wrong[512];
    snprintf(missing, sizeof missing, "%.*s/xb_no_such_db?sslmode=disable", (int)(slash - g_url),
             g_url);
    snprintf(wrong, sizeof wrong, "%.*s:%sX%s", (int)(colon - g_url), g_url, password, at);
    const char *urls[] = {missing, wrong};
    for (size_t i = 0; i < 2; i++) {
        xb_diag d = {{0}};
        int from = 0, to = 0;
        assert_int_not_equal(xb_registry_migrate(urls[i], &from, &to, &d), XB_OK);
        assert_true(d.msg[0] != '\0');
        assert_null(strstr(d.msg, password));
        assert_non_null(strstr(d.msg, "127.0.0.1"));
        /* open succeeds without a server (the handle connects on use); the statement fails. */
        xb_registry *r = NULL;
        memset(&d, 0, sizeof d);
        xb_err err = xb_registry_open(urls[i], &r, &d);
        assert_null(strstr(d.msg, password));
        if (err == XB_OK) {
            xb_device dev;
            memset(&d, 0, sizeof d);
            assert_int_equal(xb_registry_device_get(r, "dev-1", &dev, &d), XB_ERR_REGISTRY);
            assert_true(d.msg[0] != '\0');
            assert_null(strstr(d.msg, password));
            memset(&d, 0, sizeof d);
            assert_int_not_equal(xb_registry_ping(r, &d), XB_OK);
            assert_null(strstr(d.msg, password));
            xb_registry_close(r);
        }
        char shown[256];
        xb_registry_url_shown(urls[i], shown, sizeof shown);
        assert_null(strstr(shown, password));
        assert_null(strstr(shown, "sslmode"));
    }
}

/* ---- PostgreSQL only: processes racing on one database ---- */

#define RACERS 8

/* A child: its own handle, then waits for the start signal and records dev-race's
 * certificate. Exit 0: recorded, 1: refused as enrolled, 2: anything else. */
static int race_child(int start_fd, int i)
{
    xb_registry *r = NULL;
    xb_diag d = {{0}};
    if (xb_registry_open(g_url, &r, &d) != XB_OK)
        return 2;
    /* Connected before the start, so that the statements really meet. */
    if (xb_registry_ping(r, &d) != XB_OK)
        return 2;
    char go;
    if (read(start_fd, &go, 1) != 1)
        return 2;
    char serial[16];
    snprintf(serial, sizeof serial, "5e%02d", i);
    xb_cert_record rec = make_rec(i % 2 ? "DEV-RACE" : "dev-race", serial, time(NULL));
    xb_err err = batch1(r, &rec, &allowlist_once, &d);
    xb_registry_close(r);
    return err == XB_OK ? 0 : err == XB_ERR_ALREADY_ENROLLED ? 1 : 2;
}

static void test_processes_race(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
    add_ok(r, "dev-race");
    xb_registry_close(r);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pids[RACERS];
    for (int i = 0; i < RACERS; i++) {
        fflush(NULL);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            close(fds[1]);
            _exit(race_child(fds[0], i));
        }
    }
    close(fds[0]);
    /* Let every child connect, then start them all at once. */
    struct timespec nap = {0, 300 * 1000000L};
    nanosleep(&nap, NULL);
    char go[RACERS];
    memset(go, 'g', sizeof go);
    assert_int_equal(write(fds[1], go, sizeof go), RACERS);
    close(fds[1]);
    int won = 0, refused = 0, other = 0;
    for (int i = 0; i < RACERS; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 3;
        won += code == 0;
        refused += code == 1;
        other += code > 1;
    }
    assert_int_equal(other, 0);
    assert_int_equal(won, 1);
    assert_int_equal(refused, RACERS - 1);
    r = open_ok();
    assert_int_equal(cert_rows(r, NULL), 1);
    assert_int_equal(get_ok(r, "dev-race").cert_count, 1);
    xb_registry_close(r);
    assert_int_equal(plain_int("SELECT count(*) FROM certificates"), 1);
}

/* ---- PostgreSQL only: a lost connection ---- */

/* The handle's backend, found as an operator would (application_name 'xboot'), terminated from
 * another session. Waits (up to 5 s) for it to be gone, so the test does not race its exit. */
static long long terminate_backend(int pid)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM (SELECT pg_terminate_backend(pid, 5000) FROM "
             "pg_stat_activity WHERE application_name = 'xboot' AND pid <> pg_backend_pid() "
             "AND pid = %d) t",
             pid);
    return plain_int(sql);
}

static void test_reconnect(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
    add_ok(r, "dev-1");
    xb_pg *s = xb_pg_of(r);
    int before = PQbackendPID(s->conn);
    assert_int_equal(terminate_backend(before), 1);
    /* The statement finds the connection gone, reconnects and runs once more. */
    xb_device dev;
    xb_diag d = {{0}};
    xb_err err = xb_registry_device_get(r, "dev-1", &dev, &d);
    if (err != XB_OK)
        fail_msg("device_get after the backend was terminated: %s", xb_diag_message(&d, err));
    assert_string_equal(dev.reg_id, "dev-1");
    assert_non_null(s->conn);
    assert_int_not_equal(PQbackendPID(s->conn), before);
    /* A write (a transaction) after another loss. */
    assert_int_equal(terminate_backend(PQbackendPID(s->conn)), 1);
    assert_int_equal(record(r, "dev-1", "01", &allowlist_once), XB_OK);
    assert_int_equal(cert_rows(r, NULL), 1);
    xb_registry_close(r);
}

/* ---- PostgreSQL only: transaction retries (xb_pg_tx) ---- */

typedef struct tx_probe {
    int attempts;
    int resets;
    int fail_attempts; /* attempts that meet a real serialization failure */
    int unique_violation;
} tx_probe;

static void tx_reset(void *ctx)
{
    ((tx_probe *)ctx)->resets++;
}

/* A real serialization failure: the transaction reads dev-1 under REPEATABLE READ, another
 * session changes the row and commits, and the transaction's own update of it must fail with
 * SQLSTATE 40001 ("could not serialize access due to concurrent update"). */
static xb_err tx_body(xb_pg *s, void *ctx, xb_diag *d)
{
    tx_probe *p = ctx;
    p->attempts++;
    xb_pg_params q = {0};
    if (p->unique_violation) {
        xb_pg_text(&q, "dev-1");
        xb_pg_int(&q, 1700000000);
        xb_pg_bytea(&q, NULL, 0);
        xb_pg_opt_text(&q, NULL);
        return xb_pg_run_only(s, XB_PG_DEVICE_INSERT, &q, d, "add again");
    }
    if (p->attempts <= p->fail_attempts) {
        PGresult *res = PQexec(s->conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
        assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
        PQclear(res);
        xb_pg_text(&q, "dev-1");
        xb_err err = xb_pg_run_only(s, XB_PG_DEVICE_GET, &q, d, "read"); /* the snapshot */
        assert_int_equal(err, XB_OK);
        PGconn *other = plain_conn();
        plain_exec(other, "UPDATE devices SET enabled = 1 WHERE reg_id = 'dev-1'");
        PQfinish(other);
        memset(&q, 0, sizeof q);
    }
    xb_pg_int(&q, 1);
    xb_pg_text(&q, "dev-1");
    return xb_pg_run_only(s, XB_PG_DEVICE_SET_ENABLED, &q, d, "enable");
}

static void test_tx_retry(void **state)
{
    (void)state;
    xb_registry *r = open_ok();
    add_ok(r, "dev-1");
    xb_pg *s = xb_pg_of(r);
    xb_diag d = {{0}};

    /* Once: run again, after a reset, and succeed. */
    tx_probe p = {.fail_attempts = 1};
    xb_err err = xb_pg_tx(s, tx_body, tx_reset, &p, 0, &d);
    if (err != XB_OK)
        fail_msg("tx: %s", xb_diag_message(&d, err));
    assert_int_equal(p.attempts, 2);
    assert_int_equal(p.resets, 1);
    assert_int_equal(get_ok(r, "dev-1").enabled, 1);

    /* Always: three attempts, then the error. */
    p = (tx_probe){.fail_attempts = 100};
    memset(&d, 0, sizeof d);
    err = xb_pg_tx(s, tx_body, tx_reset, &p, 0, &d);
    assert_int_equal(err, XB_ERR_REGISTRY);
    assert_int_equal(p.attempts, 3);
    assert_int_equal(p.resets, 2);
    assert_string_equal(s->last_sqlstate, "40001");
    assert_non_null(strstr(d.msg, "serialize"));

    /* Another SQLSTATE (23505, unique_violation): not retried. */
    p = (tx_probe){.unique_violation = 1};
    err = xb_pg_tx(s, tx_body, tx_reset, &p, 0, &d);
    assert_int_equal(err, XB_ERR_REGISTRY);
    assert_int_equal(p.attempts, 1);
    assert_int_equal(p.resets, 0);
    assert_string_equal(s->last_sqlstate, "23505");

    /* The handle works afterwards. */
    assert_int_equal(record(r, "dev-1", "01", &allowlist_once), XB_OK);
    xb_registry_close(r);
}

#define T(fn) cmocka_unit_test_setup(fn, setup)
#define T_EMPTY(fn) cmocka_unit_test_setup(fn, setup_empty)

int main(void)
{
    g_url = getenv("XB_PG_URL");
    g_admin = getenv("XB_PG_ADMIN_URL");
    if (g_url == NULL || strncmp(g_url, "postgresql://", 13) != 0) {
        fprintf(stderr, "test_registry_pg: XB_PG_URL must name a scratch PostgreSQL database "
                        "(postgresql://user:password@127.0.0.1:port/db); every test empties its "
                        "schema public\n");
        return 2;
    }
    const struct CMUnitTest tests[] = {
        T(test_add_get_list),
        T(test_ids_case_insensitive),
        T(test_list_order_nocase),
        cmocka_unit_test(test_list_order_icu_database),
        T(test_one_time_enrollment),
        T(test_reenroll_and_renewal),
        T(test_open_mode_creates_device),
        T(test_new_source_group),
        T(test_batch_duplicate_serial),
        T(test_current_cert_latest),
        T(test_revoke),
        T(test_disable_revoke),
        T(test_crl_update),
        T(test_add_many_bulk),
        T(test_add_many_small),
        T_EMPTY(test_migrate_versions),
        T_EMPTY(test_open_without_schema),
        T(test_newer_schema),
        T(test_password_never_shown),
        T(test_processes_race),
        T(test_reconnect),
        T(test_tx_retry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
