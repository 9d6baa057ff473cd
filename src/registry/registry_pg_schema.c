/* The PostgreSQL registry's schema and statements (registry_pg.h).
 *
 * The migrations are the SQLite backend's (registry_sqlite.c), step for step and version for
 * version, written in PostgreSQL's dialect where the two differ: BYTEA for BLOB, BIGINT for
 * times (INTEGER is 32 bits here), an identity column for SQLite's rowid (the recording
 * order), and the citext type for registration IDs where SQLite says COLLATE NOCASE (DEV1 and
 * dev1 are one device, as in Azure DPS; IDs are ASCII, where the two agree). citext rather than
 * a case-insensitive ICU collation: operators' `reg_id LIKE 'SN-%'` keeps working (PostgreSQL
 * 15 refuses LIKE on nondeterministic collations). citext is a trusted extension: the owner of
 * the database may create it. Every comparison casts its parameter to citext: compared with
 * text, a citext column would be cast to text and compared case-sensitively.
 * Append only: a shipped step never changes. */
#include "registry_pg.h"

/* Laid out as SQL, not as clang-format would align it. */
/* clang-format off */
static const char xb_pg_schema_v1[] =
    "CREATE EXTENSION IF NOT EXISTS citext;"
    "CREATE TABLE devices ("
    "  reg_id CITEXT PRIMARY KEY,"
    "  enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),"
    "  source TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  enrolled_at BIGINT"
    ");"
    "CREATE TABLE certificates ("
    "  seq BIGINT GENERATED ALWAYS AS IDENTITY,"
    "  serial TEXT PRIMARY KEY,"
    "  reg_id CITEXT NOT NULL REFERENCES devices(reg_id),"
    "  subject TEXT,"
    "  not_before BIGINT,"
    "  not_after BIGINT,"
    "  pubkey_sha256 TEXT,"
    "  client_addr TEXT,"
    "  issued_at BIGINT,"
    "  der BYTEA NOT NULL"
    ");"
    "CREATE INDEX certificates_reg_id ON certificates(reg_id, issued_at, seq);";

static const char xb_pg_schema_v2[] =
    "ALTER TABLE certificates ADD COLUMN revoked_at BIGINT;"
    "ALTER TABLE certificates ADD COLUMN revocation_reason INTEGER;"
    "CREATE INDEX certificates_revoked ON certificates(revoked_at) WHERE revoked_at IS NOT NULL;";

static const char xb_pg_schema_v3[] =
    "CREATE TABLE crl ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  number BIGINT NOT NULL,"
    "  revision BIGINT NOT NULL,"
    "  covers BIGINT NOT NULL,"
    "  der BYTEA,"
    "  this_update BIGINT,"
    "  next_update BIGINT"
    ");"
    "INSERT INTO crl (id, number, revision, covers) VALUES (1, 0, 0, 0);";

static const char xb_pg_schema_v4[] =
    "CREATE TABLE groups ("
    "  name TEXT PRIMARY KEY,"
    "  key BYTEA NOT NULL,"
    "  created_at BIGINT NOT NULL"
    ");"
    "ALTER TABLE devices ADD COLUMN secret_sha256 BYTEA;"
    "ALTER TABLE devices ADD COLUMN group_name TEXT REFERENCES groups(name);";
/* clang-format on */

const char *const xb_pg_migrations[] = {xb_pg_schema_v1, xb_pg_schema_v2, xb_pg_schema_v3,
                                        xb_pg_schema_v4};
_Static_assert(sizeof xb_pg_migrations / sizeof xb_pg_migrations[0] == XB_PG_SCHEMA_VERSION,
               "one migration step per schema version");

#define XB_PG_DEVICE_COLUMNS                                                                       \
    "reg_id, enabled, source, created_at, enrolled_at, "                                           \
    "(SELECT count(*) FROM certificates c WHERE c.reg_id = d.reg_id), secret_sha256, group_name"
#define XB_PG_CERT_COLUMNS                                                                         \
    "serial, reg_id, subject, not_before, not_after, pubkey_sha256, client_addr, issued_at, der, " \
    "revoked_at, revocation_reason"

/* Recording a certificate is one statement: the device row's conditional update (the one-time
 * rule: PostgreSQL's row lock makes concurrent enrollments of one device, on any node, wait for
 * each other, and the loser's WHERE then sees enrolled_at set) feeds the INSERT, which therefore
 * writes nothing when the rules refuse. $1 serial, $2 ID, $3 subject, $4 not_before, $5
 * not_after, $6 key hash, $7 address, $8 issued_at, $9 DER, $10 re-enrollment allowed. */
#define XB_PG_CERT_FROM_DEV                                                                        \
    "INSERT INTO certificates (serial, reg_id, subject, not_before, not_after, pubkey_sha256, "    \
    "client_addr, issued_at, der) SELECT $1::text, $2::citext, $3::text, $4::bigint, $5::bigint, " \
    "$6::text, $7::text, $8::bigint, $9::bytea FROM dev"

const char *const xb_pg_sql[XB_PG__COUNT] = {
    [XB_PG_VERSION] = "SELECT version FROM xboot_schema WHERE id = 1",
    [XB_PG_DEVICE_INSERT] =
        "INSERT INTO devices (reg_id, enabled, source, created_at, "
        "secret_sha256, group_name) VALUES ($1::citext, 1, 'allowlist', $2, $3, $4)",
    [XB_PG_GROUP_INSERT] = "INSERT INTO groups (name, key, created_at) VALUES ($1, $2, $3)",
    [XB_PG_GROUP_GET] = "SELECT name, key, created_at FROM groups WHERE name = $1",
    [XB_PG_DEVICE_GET] = "SELECT " XB_PG_DEVICE_COLUMNS " FROM devices d WHERE reg_id = $1::citext",
    [XB_PG_DEVICE_STATE] =
        "SELECT enabled, enrolled_at IS NOT NULL FROM devices WHERE reg_id = $1::citext",
    [XB_PG_DEVICE_SET_ENABLED] = "UPDATE devices SET enabled = $1 WHERE reg_id = $2::citext",
    [XB_PG_ISSUE_KNOWN] =
        "WITH dev AS (UPDATE devices SET enrolled_at = $8 WHERE reg_id = $2::citext "
        "AND enabled = 1 AND (enrolled_at IS NULL OR $10::boolean) "
        "RETURNING 1) " XB_PG_CERT_FROM_DEV,
    /* The first enrollment of a device without a row (open mode, a group key, a manufacturer
     * certificate) creates it ($11 source, $12 group), unless its group has gone; a row that
     * exists, maybe made meanwhile by another node, is judged as ISSUE_KNOWN judges it. */
    [XB_PG_ISSUE_NEW] =
        "WITH dev AS (INSERT INTO devices (reg_id, enabled, source, created_at, "
        "enrolled_at, group_name) SELECT $2::citext, 1, $11::text, $8::bigint, "
        "$8::bigint, $12::text WHERE $12::text IS NULL OR EXISTS (SELECT 1 FROM "
        "groups WHERE name = $12::text) ON CONFLICT (reg_id) DO UPDATE SET "
        "enrolled_at = EXCLUDED.enrolled_at WHERE devices.enabled = 1 AND "
        "(devices.enrolled_at IS NULL OR $10::boolean) RETURNING 1) " XB_PG_CERT_FROM_DEV,
    [XB_PG_CERT_CURRENT] =
        "SELECT " XB_PG_CERT_COLUMNS " FROM certificates WHERE reg_id = $1::citext "
        "ORDER BY issued_at DESC, seq DESC LIMIT 1",
    [XB_PG_CERT_GET] = "SELECT " XB_PG_CERT_COLUMNS " FROM certificates WHERE serial = $1",
    [XB_PG_CERT_REVOKED] = "SELECT revoked_at, revocation_reason FROM certificates "
                           "WHERE serial = $1",
    /* Conditional: of two admins revoking at once, one changes the row, and the other is told
     * when and why it was revoked. */
    [XB_PG_CERT_REVOKE] = "UPDATE certificates SET revoked_at = $2, revocation_reason = $3 "
                          "WHERE serial = $1 AND revoked_at IS NULL",
    [XB_PG_CERT_REVOKE_DEVICE] = "UPDATE certificates SET revoked_at = $2, revocation_reason = $3 "
                                 "WHERE reg_id = $1::citext AND revoked_at IS NULL",
    [XB_PG_CRL_STATE] = "SELECT number, revision, covers, this_update, next_update FROM crl "
                        "WHERE id = 1",
    /* crl_update holds the row from here to COMMIT: one node signs a change, once. */
    [XB_PG_CRL_LOCK] = "SELECT number, revision, covers, this_update, next_update FROM crl "
                       "WHERE id = 1 FOR UPDATE",
    [XB_PG_CRL_GET] = "SELECT number, revision, covers, this_update, next_update, der FROM crl "
                      "WHERE id = 1",
    [XB_PG_CRL_BUMP] = "UPDATE crl SET revision = revision + 1 WHERE id = 1",
    /* The CRL number only grows, whatever the callers do. */
    [XB_PG_CRL_STORE] = "UPDATE crl SET number = $1, covers = $2, der = $3, this_update = $4, "
                        "next_update = $5 WHERE id = 1 AND number < $1",
    [XB_PG_REVOKED_LIST] = "SELECT serial, revoked_at, revocation_reason FROM certificates "
                           "WHERE revoked_at IS NOT NULL",
};

/* In SQLite's NOCASE order (ASCII, letters folded), not ICU's, so both list alike. */
const char xb_pg_device_list_sql[] =
    "SELECT " XB_PG_DEVICE_COLUMNS " FROM devices d ORDER BY lower(reg_id) COLLATE \"C\"";
const char xb_pg_group_list_sql[] = "SELECT name, key, created_at FROM groups ORDER BY name";
const char xb_pg_cert_list_sql[] =
    "SELECT " XB_PG_CERT_COLUMNS " FROM certificates ORDER BY issued_at, seq";
const char xb_pg_cert_list_id_sql[] =
    "SELECT " XB_PG_CERT_COLUMNS
    " FROM certificates WHERE reg_id = $1::citext ORDER BY issued_at, seq";
