/* The embedded registry: one SQLite file shared by every worker process, each with its own
 * connection. WAL lets readers run beside the single writer; synchronous=FULL makes a COMMIT
 * durable before record_batch returns (a certificate that was handed out is never lost
 * from the registry); busy_timeout turns short lock waits between workers into waits, not
 * errors. */
#include "registry_backend.h"

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

#define XB_SQ_SCHEMA_VERSION 4
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

/* Statements used on every request or admin call, prepared once per connection. The listing
 * queries are prepared per call instead: their callbacks may call back into the registry, and
 * a cached statement must not be reset under a running iteration. */
enum {
    XB_SQ_BEGIN,
    XB_SQ_COMMIT,
    XB_SQ_ROLLBACK,
    XB_SQ_VERSION,
    XB_SQ_DEVICE_INSERT,
    XB_SQ_DEVICE_INSERT_NEW,
    XB_SQ_GROUP_INSERT,
    XB_SQ_GROUP_GET,
    XB_SQ_DEVICE_GET,
    XB_SQ_DEVICE_STATE,
    XB_SQ_DEVICE_SET_ENABLED,
    XB_SQ_DEVICE_ENROLL,
    XB_SQ_CERT_INSERT,
    XB_SQ_CERT_CURRENT,
    XB_SQ_CERT_GET,
    XB_SQ_CERT_REVOKED,
    XB_SQ_CERT_REVOKE,
    XB_SQ_CERT_REVOKE_DEVICE,
    XB_SQ_CRL_STATE,
    XB_SQ_CRL_GET,
    XB_SQ_CRL_BUMP,
    XB_SQ_CRL_STORE,
    XB_SQ__COUNT
};

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

static const char xb_sq_device_list_sql[] =
    "SELECT " XB_SQ_DEVICE_COLUMNS " FROM devices d ORDER BY reg_id";
static const char xb_sq_group_list_sql[] = "SELECT name, key, created_at FROM groups ORDER BY name";
static const char xb_sq_cert_list_sql[] =
    "SELECT " XB_SQ_CERT_COLUMNS " FROM certificates ORDER BY issued_at, rowid";
/* The partial index certificates_revoked holds exactly these rows. */
static const char xb_sq_revoked_list_sql[] =
    "SELECT serial, revoked_at, revocation_reason FROM certificates "
    "WHERE revoked_at IS NOT NULL";
static const char xb_sq_cert_list_id_sql[] =
    "SELECT " XB_SQ_CERT_COLUMNS " FROM certificates WHERE reg_id = ?1 ORDER BY issued_at, rowid";

typedef struct xb_sq {
    xb_registry base;
    sqlite3 *db;
    char *path;
    xb_sq_sync sync;
    sqlite3_stmt *stmt[XB_SQ__COUNT];
    struct timespec busy_since; /* when the current wait for the write lock began */
} xb_sq;

static xb_sq *xb_sq_of(xb_registry *r)
{
    return (xb_sq *)r;
}

/* ---- small helpers ---- */

/* The failure message always names the file and what was being done, then SQLite's reason;
 * call it before anything else touches the connection (ROLLBACK replaces the message). */
static xb_err xb_sq_fail(xb_sq *s, xb_diag *d, const char *what)
{
    return xb_fail(d, XB_ERR_REGISTRY, "registry sqlite:%s: %s: %s", s->path, what,
                   sqlite3_errmsg(s->db));
}

static void xb_sq_reset(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Run a cached statement that returns no rows. */
static xb_err xb_sq_run(xb_sq *s, int which, xb_diag *d, const char *what)
{
    int rc = sqlite3_step(s->stmt[which]);
    xb_err err = rc == SQLITE_DONE ? XB_OK : xb_sq_fail(s, d, what);
    xb_sq_reset(s->stmt[which]);
    return err;
}

static xb_err xb_sq_begin(xb_sq *s, xb_diag *d)
{
    return xb_sq_run(s, XB_SQ_BEGIN, d, "cannot start a transaction");
}

/* Some errors (SQLITE_FULL, I/O errors) already rolled the transaction back; a second ROLLBACK
 * would only replace the useful message with "no transaction is active". */
static void xb_sq_rollback(xb_sq *s)
{
    if (!sqlite3_get_autocommit(s->db))
        xb_sq_run(s, XB_SQ_ROLLBACK, NULL, "rollback");
}

static xb_err xb_sq_commit(xb_sq *s, xb_diag *d)
{
    xb_err err = xb_sq_run(s, XB_SQ_COMMIT, d, "cannot commit");
    if (err != XB_OK)
        xb_sq_rollback(s);
    return err;
}

static void xb_sq_copy_text(sqlite3_stmt *st, int col, char *buf, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(buf, size, "%s", t != NULL ? (const char *)t : "");
}

/* An empty optional field is stored as NULL ("not known"), not as "". */
static int xb_sq_bind_opt_text(sqlite3_stmt *st, int idx, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return sqlite3_bind_null(st, idx);
    return sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC);
}

static int xb_sq_bind_id(sqlite3_stmt *st, int idx, const char *reg_id)
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
static xb_err xb_sq_migrate(xb_sq *s, xb_diag *d)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return xb_sq_fail(s, d, "cannot read the schema version");
    int version = 0;
    xb_err err = xb_sq_read_version(s, st, &version, d);
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

xb_err xb_registry_sqlite_open(const char *path, xb_sq_sync sync, xb_registry **out, xb_diag *d)
{
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
        err = xb_sq_migrate(s, d);
    if (err == XB_OK)
        err = xb_sq_prepare_all(s, d);
    if (err != XB_OK) {
        xb_sq_close(&s->base);
        return err;
    }
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

/* In a batch, a primary key clash with an earlier element is the caller's duplicate, not an
 * existing device; say which, since the fix differs. Only run on a clash, so the quadratic
 * scan costs nothing on the way to a successful import. */
static int xb_sq_listed_before(const xb_device_spec *devices, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcasecmp(devices[j].reg_id, devices[i].reg_id) == 0)
            return 1;
    return 0;
}

static xb_err xb_sq_insert_device(xb_sq *s, const xb_device_spec *devices, size_t i, time_t now,
                                  xb_diag *d)
{
    const xb_device_spec *dev = &devices[i];
    sqlite3_stmt *st = s->stmt[XB_SQ_DEVICE_INSERT];
    int rc = xb_sq_bind_id(st, 1, dev->reg_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
    if (rc == SQLITE_OK)
        rc = dev->secret_sha256 != NULL
                 ? sqlite3_bind_blob(st, 3, dev->secret_sha256, XB_SECRET_HASH_LEN, SQLITE_STATIC)
                 : sqlite3_bind_null(st, 3);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_opt_text(st, 4, dev->group);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        err = xb_fail(d, XB_ERR_EXISTS,
                      xb_sq_listed_before(devices, i) ? "device %s is listed twice"
                                                      : "device %s is already registered",
                      dev->reg_id);
    else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        err = xb_fail(d, XB_ERR_NOT_FOUND, "device %s: group %s does not exist", dev->reg_id,
                      dev->group);
    else if (rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot add a device");
    xb_sq_reset(st);
    return err;
}

static xb_err xb_sq_device_add_many(xb_registry *r, const xb_device_spec *devices, size_t n,
                                    size_t *bad, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    time_t now = time(NULL);
    xb_err err = xb_sq_begin(s, d);
    if (err != XB_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        err = xb_sq_insert_device(s, devices, i, now, d);
        if (err != XB_OK) {
            if (bad != NULL)
                *bad = i;
            xb_sq_rollback(s);
            return err;
        }
    }
    return xb_sq_commit(s, d);
}

static void xb_sq_read_device(sqlite3_stmt *st, xb_device *out)
{
    memset(out, 0, sizeof *out);
    xb_sq_copy_text(st, 0, out->reg_id, sizeof out->reg_id);
    out->enabled = sqlite3_column_int(st, 1) != 0;
    xb_sq_copy_text(st, 2, out->source, sizeof out->source);
    out->created_at = (time_t)sqlite3_column_int64(st, 3);
    out->enrolled_at = (time_t)sqlite3_column_int64(st, 4); /* NULL reads as 0 */
    out->cert_count = sqlite3_column_int64(st, 5);
    if (sqlite3_column_bytes(st, 6) == XB_SECRET_HASH_LEN) {
        memcpy(out->secret_sha256, sqlite3_column_blob(st, 6), XB_SECRET_HASH_LEN);
        out->has_secret = 1;
    }
    xb_sq_copy_text(st, 7, out->group, sizeof out->group);
}

/* ---- groups ---- */

static xb_err xb_sq_group_add(xb_registry *r, const char *name, const uint8_t *key, size_t key_len,
                              xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_GROUP_INSERT];
    int rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(st, 2, key, (int)key_len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        err = xb_fail(d, XB_ERR_EXISTS, "group %s already exists", name);
    else if (rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot add a group");
    xb_sq_reset(st);
    return err;
}

static void xb_sq_read_group(sqlite3_stmt *st, xb_group *out)
{
    memset(out, 0, sizeof *out);
    xb_sq_copy_text(st, 0, out->name, sizeof out->name);
    int n = sqlite3_column_bytes(st, 1);
    out->key_len = n > 0 && n <= XB_GROUP_KEY_MAX ? (size_t)n : 0;
    if (out->key_len > 0)
        memcpy(out->key, sqlite3_column_blob(st, 1), out->key_len);
    out->created_at = (time_t)sqlite3_column_int64(st, 2);
}

static xb_err xb_sq_group_get(xb_registry *r, const char *name, xb_group *out, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_GROUP_GET];
    int rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_ROW)
        xb_sq_read_group(st, out);
    else if (rc == SQLITE_DONE)
        err = xb_fail(d, XB_ERR_NOT_FOUND, "group %s does not exist", name);
    else
        err = xb_sq_fail(s, d, "cannot read a group");
    xb_sq_reset(st);
    return err;
}

static xb_err xb_sq_group_each(xb_registry *r, xb_err (*fn)(const xb_group *, void *), void *ctx,
                               xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, xb_sq_group_list_sql, -1, &st, NULL) != SQLITE_OK)
        return xb_sq_fail(s, d, "cannot list groups");
    xb_err err = XB_OK;
    int rc = SQLITE_OK;
    while (err == XB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        xb_group g;
        xb_sq_read_group(st, &g);
        err = fn(&g, ctx);
        OPENSSL_cleanse(&g, sizeof g);
    }
    if (err == XB_OK && rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot list groups");
    sqlite3_finalize(st);
    return err;
}

static xb_err xb_sq_unknown(const char *reg_id, xb_diag *d)
{
    return xb_fail(d, XB_ERR_DEVICE_UNKNOWN, "device %s is not registered", reg_id);
}

static xb_err xb_sq_device_get(xb_registry *r, const char *reg_id, xb_device *out, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_DEVICE_GET];
    int rc = xb_sq_bind_id(st, 1, reg_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_ROW)
        xb_sq_read_device(st, out);
    else if (rc == SQLITE_DONE)
        err = xb_sq_unknown(reg_id, d);
    else
        err = xb_sq_fail(s, d, "cannot read a device");
    xb_sq_reset(st);
    return err;
}

static xb_err xb_sq_device_set_enabled(xb_registry *r, const char *reg_id, int enabled, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_DEVICE_SET_ENABLED];
    int rc = sqlite3_bind_int(st, 1, enabled);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_id(st, 2, reg_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot update a device");
    else if (sqlite3_changes(s->db) == 0)
        err = xb_sq_unknown(reg_id, d);
    xb_sq_reset(st);
    return err;
}

static xb_err xb_sq_device_each(xb_registry *r, xb_err (*fn)(const xb_device *, void *), void *ctx,
                                xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, xb_sq_device_list_sql, -1, &st, NULL) != SQLITE_OK)
        return xb_sq_fail(s, d, "cannot list devices");
    xb_err err = XB_OK;
    int rc = SQLITE_OK;
    while (err == XB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        xb_device dev;
        xb_sq_read_device(st, &dev);
        err = fn(&dev, ctx);
    }
    if (err == XB_OK && rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot list devices");
    sqlite3_finalize(st);
    return err;
}

/* The enrollment rules, judged on the device row as it is now. Used alone (check_enroll) and
 * inside record_issuance's transaction to say why the conditional UPDATE matched nothing. */
static xb_err xb_sq_judge(xb_sq *s, const char *reg_id, const xb_enroll_rules *rules, xb_diag *d)
{
    sqlite3_stmt *st = s->stmt[XB_SQ_DEVICE_STATE];
    int rc = xb_sq_bind_id(st, 1, reg_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int enabled = rc == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
    int enrolled = rc == SQLITE_ROW && sqlite3_column_int(st, 1) != 0;
    xb_err err = XB_OK;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot read a device");
    else if (rc == SQLITE_DONE && !rules->open_mode)
        err = xb_sq_unknown(reg_id, d);
    else if (rc == SQLITE_ROW && !enabled)
        err = xb_fail(d, XB_ERR_DEVICE_DISABLED, "device %s is disabled", reg_id);
    else if (rc == SQLITE_ROW && enrolled && !rules->allow_reenroll)
        err = xb_fail(d, XB_ERR_ALREADY_ENROLLED, "device %s already has a certificate", reg_id);
    xb_sq_reset(st);
    return err;
}

static xb_err xb_sq_check_enroll(xb_registry *r, const char *reg_id, const xb_enroll_rules *rules,
                                 xb_diag *d)
{
    return xb_sq_judge(xb_sq_of(r), reg_id, rules, d);
}

static xb_err xb_sq_insert_new_device(xb_sq *s, const char *reg_id, const char *source,
                                      const char *group, time_t now, xb_diag *d)
{
    sqlite3_stmt *st = s->stmt[XB_SQ_DEVICE_INSERT_NEW];
    int rc = xb_sq_bind_id(st, 1, reg_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 3, source, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_opt_text(st, 4, group);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) /* the group was deleted since the key was checked */
        err = xb_fail(d, XB_ERR_DEVICE_UNKNOWN, "device %s: group %s no longer exists", reg_id,
                      group);
    else if (rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot add a device on its first enrollment");
    xb_sq_reset(st);
    return err;
}

/* 1 if the device row was marked enrolled, 0 if the rules refused, -1 on a database error. */
static int xb_sq_mark_enrolled(xb_sq *s, const char *reg_id, time_t when, int allow_reenroll,
                               xb_diag *d)
{
    sqlite3_stmt *st = s->stmt[XB_SQ_DEVICE_ENROLL];
    int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)when);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_id(st, 2, reg_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 3, allow_reenroll != 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int result = 1;
    if (rc != SQLITE_DONE) {
        xb_sq_fail(s, d, "cannot mark the device enrolled");
        result = -1;
    } else if (sqlite3_changes(s->db) == 0) {
        result = 0;
    }
    xb_sq_reset(st);
    return result;
}

static xb_err xb_sq_insert_cert(xb_sq *s, const xb_cert_record *rec, time_t issued_at, xb_diag *d)
{
    sqlite3_stmt *st = s->stmt[XB_SQ_CERT_INSERT];
    int rc = sqlite3_bind_text(st, 1, rec->serial, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_id(st, 2, rec->reg_id);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_opt_text(st, 3, rec->subject);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)rec->not_before);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)rec->not_after);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_opt_text(st, 6, rec->pubkey_sha256);
    if (rc == SQLITE_OK)
        rc = xb_sq_bind_opt_text(st, 7, rec->client_addr);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 8, (sqlite3_int64)issued_at);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, 9, rec->der, (sqlite3_uint64)rec->der_len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc != SQLITE_DONE) {
        char what[96];
        snprintf(what, sizeof what, "cannot record certificate %s", rec->serial);
        err = xb_sq_fail(s, d, what);
    }
    xb_sq_reset(st);
    return err;
}

/* The steps of record_issuance inside the open transaction; the caller commits or rolls back. */
static xb_err xb_sq_issue_in_tx(xb_sq *s, const xb_cert_record *rec, const xb_enroll_rules *rules,
                                time_t when, xb_diag *d)
{
    const char *source = rec->new_source != NULL ? rec->new_source
                         : rules->open_mode      ? "open"
                                                 : NULL;
    if (source != NULL) {
        xb_err err = xb_sq_insert_new_device(s, rec->reg_id, source, rec->new_group, when, d);
        if (err != XB_OK)
            return err;
    }
    /* A renewal is judged as if re-enrollment were allowed: only "unknown" or "disabled" can
     * refuse it. */
    xb_enroll_rules effective = *rules;
    if (rec->renewal)
        effective.allow_reenroll = 1;
    int marked = xb_sq_mark_enrolled(s, rec->reg_id, when, effective.allow_reenroll, d);
    if (marked < 0)
        return XB_ERR_REGISTRY;
    if (marked == 0) {
        xb_err err = xb_sq_judge(s, rec->reg_id, &effective, d);
        /* The UPDATE refused, so the judgment must too; if it does not, the two disagree on
         * the rules and that is a bug, not a reason to write. */
        if (err == XB_OK)
            err = xb_fail(d, XB_ERR_INTERNAL,
                          "registry: enrollment of %s refused for no known reason", rec->reg_id);
        return err;
    }
    return xb_sq_insert_cert(s, rec, when, d);
}

/* A refusal by the rules concerns one item; anything else is the storage failing. */
static int xb_sq_is_refusal(xb_err err)
{
    return err == XB_ERR_DEVICE_UNKNOWN || err == XB_ERR_DEVICE_DISABLED ||
           err == XB_ERR_ALREADY_ENROLLED;
}

/* Group commit. A refusal never leaves a write behind (the open-mode device insert does nothing
 * when the device exists, and a device that is disabled or enrolled exists), so refused items
 * need no savepoint; any other failure aborts the whole transaction. */
static xb_err xb_sq_record_batch(xb_registry *r, xb_issuance *const *items, size_t n,
                                 const xb_enroll_rules *rules, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    xb_err err = xb_sq_begin(s, d);
    for (size_t i = 0; err == XB_OK && i < n; i++) {
        xb_issuance *it = items[i];
        if (it->result != XB_OK)
            continue;
        time_t when = it->rec.issued_at != 0 ? it->rec.issued_at : time(NULL);
        it->result = xb_sq_issue_in_tx(s, &it->rec, rules, when, &it->diag);
        if (it->result != XB_OK && !xb_sq_is_refusal(it->result)) {
            err = it->result;
            if (d != NULL)
                *d = it->diag;
        }
    }
    if (err == XB_OK)
        err = xb_sq_commit(s, d);
    else
        xb_sq_rollback(s);
    if (err != XB_OK) {
        /* Nothing was written: every item shares the failure, refused ones included (their
         * judgment came from a transaction that no longer exists). */
        for (size_t i = 0; i < n; i++) {
            if (items[i]->result == XB_OK || xb_sq_is_refusal(items[i]->result)) {
                items[i]->result = err;
                if (d != NULL)
                    items[i]->diag = *d;
            }
        }
    }
    return err;
}

static void xb_sq_read_cert(sqlite3_stmt *st, xb_cert_record *out)
{
    memset(out, 0, sizeof *out);
    xb_sq_copy_text(st, 0, out->serial, sizeof out->serial);
    xb_sq_copy_text(st, 1, out->reg_id, sizeof out->reg_id);
    const unsigned char *subject = sqlite3_column_text(st, 2);
    out->subject = subject != NULL ? (const char *)subject : "";
    out->not_before = (time_t)sqlite3_column_int64(st, 3);
    out->not_after = (time_t)sqlite3_column_int64(st, 4);
    xb_sq_copy_text(st, 5, out->pubkey_sha256, sizeof out->pubkey_sha256);
    xb_sq_copy_text(st, 6, out->client_addr, sizeof out->client_addr);
    out->issued_at = (time_t)sqlite3_column_int64(st, 7);
    out->der = sqlite3_column_blob(st, 8);
    out->der_len = (size_t)sqlite3_column_bytes(st, 8);
    out->revoked_at = (time_t)sqlite3_column_int64(st, 9); /* NULL reads as 0: not revoked */
    out->revocation_reason = sqlite3_column_int(st, 10);
}

static xb_err xb_sq_cert_each(xb_registry *r, const char *reg_id,
                              xb_err (*fn)(const xb_cert_record *, void *), void *ctx, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = NULL;
    const char *sql = reg_id != NULL ? xb_sq_cert_list_id_sql : xb_sq_cert_list_sql;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return xb_sq_fail(s, d, "cannot list certificates");
    if (reg_id != NULL && xb_sq_bind_id(st, 1, reg_id) != SQLITE_OK) {
        xb_err err = xb_sq_fail(s, d, "cannot list certificates");
        sqlite3_finalize(st);
        return err;
    }
    xb_err err = XB_OK;
    int rc = SQLITE_OK;
    while (err == XB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        xb_cert_record rec;
        xb_sq_read_cert(st, &rec);
        err = fn(&rec, ctx);
    }
    if (err == XB_OK && rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot list certificates");
    sqlite3_finalize(st);
    return err;
}

/* The row's record, with a private copy of its DER: the row's buffers go with the reset. */
static xb_err xb_sq_take_cert(sqlite3_stmt *st, xb_cert_record *out, uint8_t **der, size_t *der_len,
                              xb_diag *d)
{
    xb_sq_read_cert(st, out);
    out->subject = NULL; /* not kept: the caller reads it from the DER if it needs it */
    if (out->der == NULL || out->der_len == 0)
        return xb_fail(d, XB_ERR_REGISTRY, "registry: certificate %s has no DER", out->serial);
    uint8_t *copy = malloc(out->der_len);
    if (copy == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory reading certificate %s", out->serial);
    memcpy(copy, out->der, out->der_len);
    *der = copy;
    *der_len = out->der_len;
    out->der = copy;
    return XB_OK;
}

/* Step a bound single-certificate query: the row into out (DER copied), XB_ERR_NOT_FOUND with
 * `none` as the message when there is no row. The statement is reset either way. */
static xb_err xb_sq_one_cert(xb_sq *s, sqlite3_stmt *st, int rc, xb_cert_record *out, uint8_t **der,
                             size_t *der_len, const char *none, xb_diag *d)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_ROW)
        err = xb_sq_take_cert(st, out, der, der_len, d);
    else if (rc == SQLITE_DONE)
        err = xb_fail(d, XB_ERR_NOT_FOUND, "%s", none);
    else
        err = xb_sq_fail(s, d, "cannot read a certificate");
    if (err != XB_OK)
        memset(out, 0, sizeof *out); /* no pointer into the row survives the reset */
    xb_sq_reset(st);
    return err;
}

static xb_err xb_sq_current_cert(xb_registry *r, const char *reg_id, xb_cert_record *out,
                                 uint8_t **der, size_t *der_len, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_CERT_CURRENT];
    char none[XB_REGID_MAX + 40];
    snprintf(none, sizeof none, "device %s has no certificate", reg_id);
    return xb_sq_one_cert(s, st, xb_sq_bind_id(st, 1, reg_id), out, der, der_len, none, d);
}

static xb_err xb_sq_cert_get(xb_registry *r, const char *serial, xb_cert_record *out, uint8_t **der,
                             size_t *der_len, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_CERT_GET];
    char none[96];
    snprintf(none, sizeof none, "no certificate has serial %.60s", serial);
    return xb_sq_one_cert(s, st, sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC), out, der,
                          der_len, none, d);
}

static xb_err xb_sq_already_revoked(const char *serial, time_t at, int reason, xb_diag *d)
{
    char when[32];
    xb_time_rfc3339(at, when, sizeof when);
    const char *name = xb_revocation_reason_name(reason);
    return xb_fail(d, XB_ERR_EXISTS, "certificate %s was already revoked at %s (%s); unchanged",
                   serial, when, name != NULL ? name : "unknown reason");
}

static xb_err xb_sq_mark_revoked(xb_sq *s, const char *serial, int reason, time_t when, xb_diag *d)
{
    sqlite3_stmt *st = s->stmt[XB_SQ_CERT_REVOKE];
    int rc = sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)when);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 3, reason);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = rc == SQLITE_DONE ? XB_OK : xb_sq_fail(s, d, "cannot revoke a certificate");
    xb_sq_reset(st);
    return err;
}

/* Inside the write transaction, so the state read and the UPDATE see the same row: two admins
 * revoking at once record one revocation, and the other is told it exists. */
static xb_err xb_sq_revoke_in_tx(xb_sq *s, const char *serial, int reason, time_t when, xb_diag *d)
{
    sqlite3_stmt *st = s->stmt[XB_SQ_CERT_REVOKED];
    int rc = sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_DONE)
        err = xb_fail(d, XB_ERR_NOT_FOUND, "no certificate has serial %s", serial);
    else if (rc != SQLITE_ROW)
        err = xb_sq_fail(s, d, "cannot read a certificate");
    else if (sqlite3_column_type(st, 0) != SQLITE_NULL)
        err = xb_sq_already_revoked(serial, (time_t)sqlite3_column_int64(st, 0),
                                    sqlite3_column_int(st, 1), d);
    xb_sq_reset(st);
    if (err == XB_OK)
        err = xb_sq_mark_revoked(s, serial, reason, when, d);
    /* In the same transaction: no revocation is ever committed without making the CRL stale. */
    return err != XB_OK ? err : xb_sq_run(s, XB_SQ_CRL_BUMP, d, "cannot mark the CRL stale");
}

static xb_err xb_sq_cert_revoke(xb_registry *r, const char *serial, int reason, time_t when,
                                xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    xb_err err = xb_sq_begin(s, d);
    if (err != XB_OK)
        return err;
    err = xb_sq_revoke_in_tx(s, serial, reason, when, d);
    if (err != XB_OK) {
        xb_sq_rollback(s);
        return err;
    }
    return xb_sq_commit(s, d);
}

/* ---- CRL ---- */

static void xb_sq_read_crl_state(sqlite3_stmt *st, xb_crl_state *out)
{
    out->number = sqlite3_column_int64(st, 0);
    out->revision = sqlite3_column_int64(st, 1);
    out->covers = sqlite3_column_int64(st, 2);
    out->this_update = (time_t)sqlite3_column_int64(st, 3);
    out->next_update = (time_t)sqlite3_column_int64(st, 4);
}

static xb_err xb_sq_crl_state(xb_registry *r, xb_crl_state *out, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_CRL_STATE];
    int rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc == SQLITE_ROW)
        xb_sq_read_crl_state(st, out);
    else
        err = xb_sq_fail(s, d, "cannot read the CRL state");
    xb_sq_reset(st);
    return err;
}

static xb_err xb_sq_crl_get(xb_registry *r, xb_crl_state *out, uint8_t **der, size_t *der_len,
                            xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    sqlite3_stmt *st = s->stmt[XB_SQ_CRL_GET];
    int rc = sqlite3_step(st);
    xb_err err = XB_OK;
    if (rc != SQLITE_ROW) {
        err = xb_sq_fail(s, d, "cannot read the CRL");
    } else {
        xb_sq_read_crl_state(st, out);
        const void *blob = sqlite3_column_blob(st, 5);
        size_t len = (size_t)sqlite3_column_bytes(st, 5);
        if (blob == NULL || len == 0)
            err = xb_fail(d, XB_ERR_NOT_FOUND, "no CRL has been made yet");
        else if ((*der = malloc(len)) == NULL)
            err = xb_fail(d, XB_ERR_NOMEM, "out of memory reading the CRL");
        else {
            memcpy(*der, blob, len);
            *der_len = len;
        }
    }
    xb_sq_reset(st);
    return err;
}

/* Every revoked certificate, into a malloc'd array. */
static xb_err xb_sq_revoked_list(xb_sq *s, xb_revoked **out, size_t *n, xb_diag *d)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, xb_sq_revoked_list_sql, -1, &st, NULL) != SQLITE_OK)
        return xb_sq_fail(s, d, "cannot list revoked certificates");
    xb_revoked *list = NULL;
    size_t count = 0, cap = 0;
    xb_err err = XB_OK;
    int rc;
    while (err == XB_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            size_t ncap = cap != 0 ? cap * 2 : 256;
            xb_revoked *grown = realloc(list, ncap * sizeof *grown);
            if (grown == NULL) {
                err = xb_fail(d, XB_ERR_NOMEM, "out of memory listing revoked certificates");
                break;
            }
            list = grown;
            cap = ncap;
        }
        xb_revoked *e = &list[count++];
        xb_sq_copy_text(st, 0, e->serial, sizeof e->serial);
        e->revoked_at = (time_t)sqlite3_column_int64(st, 1);
        e->reason = sqlite3_column_int(st, 2);
    }
    if (err == XB_OK && rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot list revoked certificates");
    sqlite3_finalize(st);
    if (err != XB_OK) {
        free(list);
        return err;
    }
    *out = list;
    *n = count;
    return XB_OK;
}

static xb_err xb_sq_crl_store(xb_sq *s, const xb_crl_state *st_new, const uint8_t *der,
                              size_t der_len, xb_diag *d)
{
    sqlite3_stmt *st = s->stmt[XB_SQ_CRL_STORE];
    int rc = sqlite3_bind_int64(st, 1, st_new->number);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, st_new->covers);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, 3, der, (sqlite3_uint64)der_len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)st_new->this_update);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)st_new->next_update);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    xb_err err = rc == SQLITE_DONE ? XB_OK : xb_sq_fail(s, d, "cannot store the CRL");
    xb_sq_reset(st);
    return err;
}

static xb_err xb_sq_crl_update_in_tx(xb_sq *s, xb_crl_stale_fn stale, xb_crl_build_fn build,
                                     void *ctx, int *made, xb_diag *d)
{
    xb_crl_state st;
    xb_err err = xb_sq_crl_state(&s->base, &st, d);
    if (err != XB_OK || !stale(&st, ctx))
        return err;
    xb_revoked *list = NULL;
    size_t n = 0;
    err = xb_sq_revoked_list(s, &list, &n, d);
    uint8_t *der = NULL;
    size_t der_len = 0;
    xb_crl_state next = {.number = st.number + 1, .revision = st.revision, .covers = st.revision};
    if (err == XB_OK)
        err = build(list, n, next.number, ctx, &der, &der_len, &next.this_update, &next.next_update,
                    d);
    if (err == XB_OK)
        err = xb_sq_crl_store(s, &next, der, der_len, d);
    if (err == XB_OK)
        *made = 1;
    free(der);
    free(list);
    return err;
}

static xb_err xb_sq_crl_update(xb_registry *r, xb_crl_stale_fn stale, xb_crl_build_fn build,
                               void *ctx, int *made, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    xb_err err = xb_sq_begin(s, d);
    if (err != XB_OK)
        return err;
    err = xb_sq_crl_update_in_tx(s, stale, build, ctx, made, d);
    if (err == XB_OK && *made)
        err = xb_sq_commit(s, d);
    else
        xb_sq_rollback(s); /* nothing written, or a failure */
    if (err != XB_OK)
        *made = 0;
    return err;
}

static xb_err xb_sq_disable_revoke_in_tx(xb_sq *s, const char *reg_id, int reason, time_t when,
                                         size_t *revoked, xb_diag *d)
{
    xb_err err = xb_sq_device_set_enabled(&s->base, reg_id, 0, d);
    if (err != XB_OK)
        return err;
    sqlite3_stmt *st = s->stmt[XB_SQ_CERT_REVOKE_DEVICE];
    int rc = xb_sq_bind_id(st, 1, reg_id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)when);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 3, reason);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        err = xb_sq_fail(s, d, "cannot revoke the device's certificates");
    else
        *revoked = (size_t)sqlite3_changes(s->db);
    xb_sq_reset(st);
    if (err == XB_OK && *revoked > 0)
        err = xb_sq_run(s, XB_SQ_CRL_BUMP, d, "cannot mark the CRL stale");
    return err;
}

static xb_err xb_sq_device_disable_revoke(xb_registry *r, const char *reg_id, int reason,
                                          time_t when, size_t *revoked, xb_diag *d)
{
    xb_sq *s = xb_sq_of(r);
    xb_err err = xb_sq_begin(s, d);
    if (err != XB_OK)
        return err;
    err = xb_sq_disable_revoke_in_tx(s, reg_id, reason, when, revoked, d);
    if (err != XB_OK) {
        xb_sq_rollback(s);
        *revoked = 0;
        return err;
    }
    return xb_sq_commit(s, d);
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
