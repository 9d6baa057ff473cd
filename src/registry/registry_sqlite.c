/* The embedded registry: one SQLite file shared by every worker process, each with its own
 * connection. WAL lets readers run beside the single writer; synchronous=FULL makes a COMMIT
 * durable before record_batch returns (a certificate that was handed out is never lost
 * from the registry); busy_timeout turns short lock waits between workers into waits, not
 * errors. */
#include "registry_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "xb_util.h"

#define XB_SQ_SCHEMA_VERSION XB_REGISTRY_SCHEMA_VERSION
#define XB_SQ_BUSY_TIMEOUT_MS 5000
/* How long a writer naps while another holds the write lock. SQLite's own busy_timeout naps
 * 1, 2, 5, 10... ms, far longer than a group commit holds the lock (~0.2 ms): two workers
 * would then spend most of their time asleep. */
#define XB_SQ_BUSY_NAP_US 100

/* Laid out as SQL, not as clang-format would align it. Registration IDs compare without case,
 * as Azure DPS treats them: DEV1 and dev1 are one device, with one enrollment. */
/* clang-format off */
static const char xb_sq_schema_v1[] =
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
    "CREATE INDEX certificates_reg_id ON certificates(reg_id);";

/* Version 2: revocation. revoked_at NULL means not revoked; revocation_reason is the RFC 5280
 * CRLReason code. The partial index holds only revoked rows, so the CRL can list them without
 * scanning every certificate, while an issuance (never revoked) does not grow it. */
static const char xb_sq_schema_v2[] =
    "ALTER TABLE certificates ADD COLUMN revoked_at INTEGER;"
    "ALTER TABLE certificates ADD COLUMN revocation_reason INTEGER;"
    "CREATE INDEX certificates_revoked ON certificates(revoked_at) WHERE revoked_at IS NOT NULL;";

/* Version 3: the CRL. One row: the stored CRL (NULL until the first is made), its number,
 * and the revision counter every revocation bumps; covers is the revision the stored CRL
 * reflects (registry.h). A file migrated with revocations in it has no CRL yet, so the first
 * GET /crl makes one. */
static const char xb_sq_schema_v3[] =
    "CREATE TABLE crl ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  number INTEGER NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  covers INTEGER NOT NULL,"
    "  der BLOB,"
    "  this_update INTEGER,"
    "  next_update INTEGER"
    ");"
    "INSERT INTO crl (id, number, revision, covers) VALUES (1, 0, 0, 0);";

/* Version 4: bootstrap credentials. A device holds at most one: the SHA-256 of its secret, or
 * the group whose key its own key is derived from. A group's key is kept as is: the server
 * derives member keys from it (registry.h). */
static const char xb_sq_schema_v4[] =
    "CREATE TABLE groups ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  key BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ");"
    "ALTER TABLE devices ADD COLUMN secret_sha256 BLOB;"
    "ALTER TABLE devices ADD COLUMN group_name TEXT REFERENCES groups(name);";
/* clang-format on */

/* The schema's history: step i takes a file from version i to i + 1, and a new file (version
 * 0) runs them all, so a fresh registry and a migrated one can never differ. Append only: a
 * step that has shipped must never change, since files it migrated are not migrated again. */
static const char *const xb_sq_migrations[] = {xb_sq_schema_v1, xb_sq_schema_v2, xb_sq_schema_v3,
                                               xb_sq_schema_v4};
_Static_assert(sizeof xb_sq_migrations / sizeof xb_sq_migrations[0] == XB_SQ_SCHEMA_VERSION,
               "one migration step per schema version");

#define XB_SQ_DEVICE_COLUMNS                                                                       \
    "reg_id, enabled, source, created_at, enrolled_at, "                                           \
    "(SELECT count(*) FROM certificates c WHERE c.reg_id = d.reg_id), secret_sha256, group_name"
#define XB_SQ_CERT_COLUMNS                                                                         \
    "serial, reg_id, subject, not_before, not_after, pubkey_sha256, client_addr, issued_at, der, " \
    "revoked_at, revocation_reason"

static const char *const xb_sq_sql[XB_SQ__COUNT] = {
    /* IMMEDIATE takes the write lock up front: the rule check and the write then see the same
     * state, and a second worker waits instead of failing with SQLITE_BUSY at upgrade time. */
    [XB_SQ_BEGIN] = "BEGIN IMMEDIATE",
    [XB_SQ_COMMIT] = "COMMIT",
    [XB_SQ_ROLLBACK] = "ROLLBACK",
    [XB_SQ_VERSION] = "PRAGMA user_version",
    [XB_SQ_DEVICE_INSERT] = "INSERT INTO devices (reg_id, enabled, source, created_at, "
                            "secret_sha256, group_name) VALUES (?1, 1, 'allowlist', ?2, ?3, ?4)",
    /* A device whose first enrollment creates its row (open mode, group key, manufacturer
     * certificate); a row that exists, maybe created meanwhile by another worker, is kept. */
    [XB_SQ_DEVICE_INSERT_NEW] = "INSERT INTO devices (reg_id, enabled, source, created_at, "
                                "group_name) VALUES (?1, 1, ?3, ?2, ?4) "
                                "ON CONFLICT (reg_id) DO NOTHING",
    [XB_SQ_GROUP_INSERT] = "INSERT INTO groups (name, key, created_at) VALUES (?1, ?2, ?3)",
    [XB_SQ_GROUP_GET] = "SELECT name, key, created_at FROM groups WHERE name = ?1",
    [XB_SQ_DEVICE_GET] = "SELECT " XB_SQ_DEVICE_COLUMNS " FROM devices d WHERE reg_id = ?1",
    [XB_SQ_DEVICE_STATE] = "SELECT enabled, enrolled_at IS NOT NULL FROM devices WHERE reg_id = ?1",
    [XB_SQ_DEVICE_SET_ENABLED] = "UPDATE devices SET enabled = ?1 WHERE reg_id = ?2",
    [XB_SQ_DEVICE_ENROLL] = "UPDATE devices SET enrolled_at = ?1 WHERE reg_id = ?2 AND enabled = 1 "
                            "AND (enrolled_at IS NULL OR ?3)",
    [XB_SQ_CERT_INSERT] = "INSERT INTO certificates (serial, reg_id, subject, not_before, "
                          "not_after, pubkey_sha256, client_addr, issued_at, der) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    /* The index certificates_reg_id finds the device's few rows; they are sorted in memory. */
    [XB_SQ_CERT_CURRENT] = "SELECT " XB_SQ_CERT_COLUMNS " FROM certificates WHERE reg_id = ?1 "
                           "ORDER BY issued_at DESC, rowid DESC LIMIT 1",
    [XB_SQ_CERT_GET] = "SELECT " XB_SQ_CERT_COLUMNS " FROM certificates WHERE serial = ?1",
    [XB_SQ_CERT_REVOKED] = "SELECT revoked_at, revocation_reason FROM certificates "
                           "WHERE serial = ?1",
    [XB_SQ_CERT_REVOKE] = "UPDATE certificates SET revoked_at = ?2, revocation_reason = ?3 "
                          "WHERE serial = ?1",
    [XB_SQ_CERT_REVOKE_DEVICE] = "UPDATE certificates SET revoked_at = ?2, revocation_reason = ?3 "
                                 "WHERE reg_id = ?1 AND revoked_at IS NULL",
    [XB_SQ_CRL_STATE] = "SELECT number, revision, covers, this_update, next_update FROM crl "
                        "WHERE id = 1",
    [XB_SQ_CRL_GET] = "SELECT number, revision, covers, this_update, next_update, der FROM crl "
                      "WHERE id = 1",
    [XB_SQ_CRL_BUMP] = "UPDATE crl SET revision = revision + 1 WHERE id = 1",
    [XB_SQ_CRL_STORE] = "UPDATE crl SET number = ?1, covers = ?2, der = ?3, this_update = ?4, "
                        "next_update = ?5 WHERE id = 1",
};

const char xb_sq_device_list_sql[] =
    "SELECT " XB_SQ_DEVICE_COLUMNS " FROM devices d ORDER BY reg_id";
const char xb_sq_group_list_sql[] = "SELECT name, key, created_at FROM groups ORDER BY name";
const char xb_sq_cert_list_sql[] =
    "SELECT " XB_SQ_CERT_COLUMNS " FROM certificates ORDER BY issued_at, rowid";
/* The partial index certificates_revoked holds exactly these rows. */
const char xb_sq_revoked_list_sql[] =
    "SELECT serial, revoked_at, revocation_reason FROM certificates "
    "WHERE revoked_at IS NOT NULL";
const char xb_sq_cert_list_id_sql[] =
    "SELECT " XB_SQ_CERT_COLUMNS " FROM certificates WHERE reg_id = ?1 ORDER BY issued_at, rowid";

/* ---- small helpers ---- */

/* The failure message always names the file and what was being done, then SQLite's reason;
 * call it before anything else touches the connection (ROLLBACK replaces the message). */
xb_err xb_sq_fail(xb_sq *s, xb_diag *d, const char *what)
{
    return xb_fail(d, XB_ERR_REGISTRY, "registry sqlite:%s: %s: %s", s->path, what,
                   sqlite3_errmsg(s->db));
}

void xb_sq_reset(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Run a cached statement that returns no rows. */
xb_err xb_sq_run(xb_sq *s, int which, xb_diag *d, const char *what)
{
    int rc = sqlite3_step(s->stmt[which]);
    xb_err err = rc == SQLITE_DONE ? XB_OK : xb_sq_fail(s, d, what);
    xb_sq_reset(s->stmt[which]);
    return err;
}

xb_err xb_sq_begin(xb_sq *s, xb_diag *d)
{
    return xb_sq_run(s, XB_SQ_BEGIN, d, "cannot start a transaction");
}

/* Some errors (SQLITE_FULL, I/O errors) already rolled the transaction back; a second ROLLBACK
 * would only replace the useful message with "no transaction is active". */
void xb_sq_rollback(xb_sq *s)
{
    if (!sqlite3_get_autocommit(s->db))
        xb_sq_run(s, XB_SQ_ROLLBACK, NULL, "rollback");
}

xb_err xb_sq_commit(xb_sq *s, xb_diag *d)
{
    xb_err err = xb_sq_run(s, XB_SQ_COMMIT, d, "cannot commit");
    if (err != XB_OK)
        xb_sq_rollback(s);
    return err;
}

void xb_sq_copy_text(sqlite3_stmt *st, int col, char *buf, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(buf, size, "%s", t != NULL ? (const char *)t : "");
}

/* An empty optional field is stored as NULL ("not known"), not as "". */
int xb_sq_bind_opt_text(sqlite3_stmt *st, int idx, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return sqlite3_bind_null(st, idx);
    return sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC);
}

int xb_sq_bind_id(sqlite3_stmt *st, int idx, const char *reg_id)
{
    return sqlite3_bind_text(st, idx, reg_id, -1, SQLITE_STATIC);
}

/* ---- opening ---- */

/* The registry says which devices may get certificates, so it must not be world-readable or
 * writable. SQLite would create it 0644 (less the umask); create it first with 0600 (and its
 * -wal and -shm files inherit the database file's mode). */
static xb_err xb_sq_create_private(const char *path, xb_diag *d)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return XB_OK;
        return xb_fail(d, XB_ERR_REGISTRY, "cannot create registry database %s: %s", path,
                       strerror(errno));
    }
    /* A umask like 0277 would leave the owner unable to write; make the mode exact. */
    int rc = fchmod(fd, 0600);
    int saved = errno;
    close(fd);
    if (rc != 0)
        return xb_fail(d, XB_ERR_REGISTRY, "cannot chmod registry database %s: %s", path,
                       strerror(saved));
    return XB_OK;
}

static xb_err xb_sq_exec(xb_sq *s, const char *sql, xb_diag *d, const char *what)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return xb_sq_fail(s, d, what);
    return XB_OK;
}

static xb_err xb_sq_set_wal(xb_sq *s, xb_diag *d)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
        return xb_sq_fail(s, d, "cannot set WAL mode");
    xb_err err = XB_OK;
    if (sqlite3_step(st) != SQLITE_ROW) {
        err = xb_sq_fail(s, d, "cannot set WAL mode");
    } else {
        const unsigned char *mode = sqlite3_column_text(st, 0);
        /* SQLite answers with the mode it kept; anything but WAL (e.g. on a file system
         * without shared memory) would silently serialize the workers. */
        if (mode == NULL || strcmp((const char *)mode, "wal") != 0)
            err = xb_fail(d, XB_ERR_REGISTRY,
                          "registry sqlite:%s: the file system does not allow WAL mode "
                          "(journal mode stays \"%s\")",
                          s->path, mode != NULL ? (const char *)mode : "?");
    }
    sqlite3_finalize(st);
    return err;
}

/* SQLite busy handler: nap briefly and retry, for XB_SQ_BUSY_TIMEOUT_MS in all. */
/* Naps of XB_SQ_BUSY_NAP_US until XB_SQ_BUSY_TIMEOUT_MS have passed by the clock: a nap lasts
 * longer than asked, so counting naps would wait several times the timeout. */
static int xb_sq_on_busy(void *arg, int attempts)
{
    struct timespec *since = arg, now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (attempts == 0)
        *since = now;
    long long waited_ms =
        (long long)(now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
    if (waited_ms >= XB_SQ_BUSY_TIMEOUT_MS)
        return 0;
    struct timespec nap = {0, XB_SQ_BUSY_NAP_US * 1000L};
    nanosleep(&nap, NULL);
    return 1;
}

static xb_err xb_sq_configure(xb_sq *s, xb_diag *d)
{
    static const char *const sync_sql[] = {
        [XB_SQ_SYNC_FULL] = "PRAGMA synchronous = FULL",
        [XB_SQ_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
        [XB_SQ_SYNC_OFF] = "PRAGMA synchronous = OFF",
    };
    sqlite3_busy_handler(s->db, xb_sq_on_busy, &s->busy_since);
    xb_err err = xb_sq_exec(s, "PRAGMA foreign_keys = ON", d, "cannot enable foreign keys");
    /* SQLite's default page cache (2 MiB) holds little of a large registry: every issuance
     * then re-reads index pages with pread(2). 8 MiB per connection (two per worker) keeps
     * the hot pages; it stays within the memory budget of docs/PERFORMANCE.md. */
    if (err == XB_OK)
        err = xb_sq_exec(s, "PRAGMA cache_size = -8192", d, "cannot set the cache size");
    if (err == XB_OK)
        err = xb_sq_exec(s, sync_sql[s->sync], d, "cannot set PRAGMA synchronous");
    if (err == XB_OK)
        err = xb_sq_set_wal(s, d);
    return err;
}

static xb_err xb_sq_read_version(xb_sq *s, sqlite3_stmt *st, int *version, xb_diag *d)
{
    int rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    else
        err = xb_sq_fail(s, d, "cannot read the schema version");
    sqlite3_reset(st);
    return err;
}

static xb_err xb_sq_version_check(xb_sq *s, int version, xb_diag *d)
{
    if (version > XB_SQ_SCHEMA_VERSION)
        return xb_fail(d, XB_ERR_CONFIG,
                       "registry sqlite:%s has schema version %d, newer than this xboot "
                       "understands (%d); upgrade xboot",
                       s->path, version, XB_SQ_SCHEMA_VERSION);
    return XB_OK;
}

/* Inside the schema transaction: the steps from version to the current one, then the new
 * version number, which commits with them (user_version lives in the file header, which is
 * part of the transaction): a failed step leaves the file at its old version, unchanged. */
static xb_err xb_sq_migrate_from(xb_sq *s, int version, xb_diag *d)
{
    xb_err err = XB_OK;
    for (int v = version; err == XB_OK && v < XB_SQ_SCHEMA_VERSION; v++) {
        char what[96];
        if (v == 0)
            snprintf(what, sizeof what, "cannot create the schema");
        else
            snprintf(what, sizeof what, "cannot migrate the schema from version %d to %d", v,
                     v + 1);
        err = xb_sq_exec(s, xb_sq_migrations[v], d, what);
    }
    if (err == XB_OK && version != XB_SQ_SCHEMA_VERSION) {
        char sql[48];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", XB_SQ_SCHEMA_VERSION);
        err = xb_sq_exec(s, sql, d, "cannot set the schema version");
    }
    return err;
}

/* Create the schema if the file is new, or bring an older one up to date. Runs at every open,
 * in every worker, so the common case (already current) takes no write lock, and the work
 * re-checks the version under the lock in case another worker (or xbootctl) did it first. */
static xb_err xb_sq_migrate(xb_sq *s, int *found, xb_diag *d)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return xb_sq_fail(s, d, "cannot read the schema version");
    int version = 0;
    xb_err err = xb_sq_read_version(s, st, &version, d);
    *found = version;
    if (err == XB_OK)
        err = xb_sq_version_check(s, version, d);
    if (err != XB_OK || version == XB_SQ_SCHEMA_VERSION) {
        sqlite3_finalize(st);
        return err;
    }
    err = xb_sq_exec(s, "BEGIN IMMEDIATE", d, "cannot start the schema transaction");
    if (err == XB_OK)
        err = xb_sq_read_version(s, st, &version, d);
    if (err == XB_OK)
        *found = version; /* another connection may have migrated it meanwhile */
    if (err == XB_OK)
        err = xb_sq_version_check(s, version, d);
    if (err == XB_OK)
        err = xb_sq_migrate_from(s, version, d);
    if (err == XB_OK)
        err = xb_sq_exec(s, "COMMIT", d, "cannot commit the schema");
    if (err != XB_OK && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_finalize(st);
    return err;
}

static xb_err xb_sq_prepare_all(xb_sq *s, xb_diag *d)
{
    for (int i = 0; i < XB_SQ__COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, xb_sq_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                               NULL) != SQLITE_OK)
            return xb_sq_fail(s, d, "cannot prepare statements");
    }
    return XB_OK;
}

static void xb_sq_close(xb_registry *r)
{
    xb_sq *s = xb_sq_of(r);
    for (int i = 0; i < XB_SQ__COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    /* Closing the last connection checkpoints the WAL into the main file. */
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

static const xb_registry_ops xb_sq_ops;

xb_err xb_registry_sqlite_open(const char *path, xb_sq_sync sync, int *was_version,
                               xb_registry **out, xb_diag *d)
{
    int found = 0;
    xb_err err = xb_sq_create_private(path, d);
    if (err != XB_OK)
        return err;
    xb_sq *s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        return xb_fail(d, XB_ERR_NOMEM, "out of memory opening the registry");
    }
    s->base.ops = &xb_sq_ops;
    s->sync = sync;
    /* No SQLITE_OPEN_CREATE: the file was created above with the right mode; if it vanished
     * since, failing is better than recreating it 0644. NOMUTEX: one handle per thread. */
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        err = xb_fail(d, XB_ERR_REGISTRY, "cannot open registry database %s: %s", path,
                      s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
        xb_sq_close(&s->base);
        return err;
    }
    /* Extended codes tell a duplicate ID (SQLITE_CONSTRAINT_PRIMARYKEY) from other failures. */
    sqlite3_extended_result_codes(s->db, 1);
    err = xb_sq_configure(s, d);
    if (err == XB_OK)
        err = xb_sq_migrate(s, &found, d);
    if (err == XB_OK)
        err = xb_sq_prepare_all(s, d);
    if (err != XB_OK) {
        xb_sq_close(&s->base);
        return err;
    }
    if (was_version != NULL)
        *was_version = found;
    *out = &s->base;
    return XB_OK;
}

/* ---- operations ---- */

static xb_err xb_sq_ping(xb_registry *r, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    int version = 0;
    /* Reading the header goes to the file (and the WAL index), unlike "SELECT 1". */
    xb_err err = xb_sq_read_version(s, s->stmt[XB_SQ_VERSION], &version, d);
    if (err == XB_OK && version != XB_SQ_SCHEMA_VERSION)
        err = xb_fail(d, XB_ERR_REGISTRY,
                      "registry sqlite:%s: schema version changed to %d while running", s->path,
                      version);
    return err;
}

static const xb_registry_ops xb_sq_ops = {
    .close = xb_sq_close,
    .ping = xb_sq_ping,
    .device_add_many = xb_sq_device_add_many,
    .group_add = xb_sq_group_add,
    .group_get = xb_sq_group_get,
    .group_each = xb_sq_group_each,
    .device_get = xb_sq_device_get,
    .device_set_enabled = xb_sq_device_set_enabled,
    .device_each = xb_sq_device_each,
    .check_enroll = xb_sq_check_enroll,
    .record_batch = xb_sq_record_batch,
    .cert_each = xb_sq_cert_each,
    .current_cert = xb_sq_current_cert,
    .cert_get = xb_sq_cert_get,
    .cert_revoke = xb_sq_cert_revoke,
    .crl_state = xb_sq_crl_state,
    .crl_get = xb_sq_crl_get,
    .crl_update = xb_sq_crl_update,
    .device_disable_revoke = xb_sq_device_disable_revoke,
};
