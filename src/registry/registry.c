#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "registry_backend.h"

static int xb_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "PATH" or "PATH?synchronous=MODE": the only option, so no general query parser. */
static xb_err xb_registry_open_sqlite_url(const char *url, const char *path_and_query, int *was,
                                          xb_registry **out, xb_diag *d)
{
    static const struct {
        const char *query;
        xb_sq_sync sync;
    } options[] = {{"synchronous=full", XB_SQ_SYNC_FULL},
                   {"synchronous=normal", XB_SQ_SYNC_NORMAL},
                   {"synchronous=off", XB_SQ_SYNC_OFF}};
    const char *q = strchr(path_and_query, '?');
    if (q == NULL)
        return xb_registry_sqlite_open(path_and_query, XB_SQ_SYNC_FULL, was, out, d);
    size_t i = 0;
    while (i < sizeof options / sizeof options[0] && strcmp(q + 1, options[i].query) != 0)
        i++;
    if (i == sizeof options / sizeof options[0])
        return xb_fail(d, XB_ERR_CONFIG,
                       "registry URL %s: unknown option \"%s\" (supported: "
                       "synchronous=full|normal|off)",
                       url, q + 1);
    if (q == path_and_query)
        return xb_fail(d, XB_ERR_CONFIG, "registry URL %s names no file (sqlite:PATH)", url);
    char *path = strndup(path_and_query, (size_t)(q - path_and_query));
    if (path == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory opening the registry");
    xb_err err = xb_registry_sqlite_open(path, options[i].sync, was, out, d);
    free(path);
    return err;
}

static int xb_is_pg_url(const char *url)
{
    return xb_has_prefix(url, "postgresql://") || xb_has_prefix(url, "postgres://");
}

/* migrate: a PostgreSQL schema may be created or migrated (SQLite files always are). */
static xb_err xb_registry_open_ex(const char *url, int migrate, int *was, xb_registry **out,
                                  xb_diag *d)
{
    if (out == NULL)
        return xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no output handle");
    *out = NULL;
    if (url == NULL || url[0] == '\0')
        return xb_fail(d, XB_ERR_CONFIG,
                       "no registry database URL (expected sqlite:PATH, e.g. "
                       "sqlite:/var/lib/xboot/xboot.db, or postgresql://HOST/DB)");
    if (xb_has_prefix(url, "sqlite:")) {
        const char *path = url + strlen("sqlite:");
        if (path[0] == '\0')
            return xb_fail(d, XB_ERR_CONFIG, "registry URL %s names no file (sqlite:PATH)", url);
        /* "sqlite://host/x" would silently become the absolute path "//host/x"; a user who
         * wrote it meant something else, so say what is expected instead of guessing. */
        if (xb_has_prefix(path, "//"))
            return xb_fail(d, XB_ERR_CONFIG,
                           "registry URL %s: use sqlite:PATH (e.g. sqlite:/var/lib/xboot/xboot.db "
                           "or sqlite:xboot.db), not sqlite://",
                           url);
        return xb_registry_open_sqlite_url(url, path, was, out, d);
    }
    /* A PostgreSQL URL may carry a password: the backend shows it without userinfo and query. */
    if (xb_is_pg_url(url))
        return xb_registry_pg_open(url, migrate, was, out, d);
    /* Other URLs may carry credentials too: only their scheme goes into a message. */
    int scheme_len = (int)strcspn(url, ":/@");
    if (scheme_len > 16)
        scheme_len = 16;
    return xb_fail(d, XB_ERR_CONFIG,
                   "registry URL %.*s:...: unknown scheme (supported: sqlite:PATH, "
                   "postgresql://...)",
                   scheme_len, url);
}

xb_err xb_registry_open(const char *url, xb_registry **out, xb_diag *d)
{
    return xb_registry_open_ex(url, 0, NULL, out, d);
}

xb_err xb_registry_migrate(const char *url, int *from, int *to, xb_diag *d)
{
    xb_registry *r = NULL;
    int was = 0;
    xb_err err = xb_registry_open_ex(url, 1, &was, &r, d);
    if (err != XB_OK)
        return err;
    if (from != NULL)
        *from = was;
    if (to != NULL)
        *to = XB_REGISTRY_SCHEMA_VERSION;
    xb_registry_close(r);
    return XB_OK;
}

void xb_registry_url_shown(const char *url, char *out, size_t size)
{
    if (url != NULL && xb_is_pg_url(url))
        xb_registry_pg_shown(url, out, size);
    else
        snprintf(out, size, "%s", url != NULL ? url : "");
}

void xb_registry_close(xb_registry *r)
{
    if (r != NULL)
        r->ops->close(r);
}

static xb_err xb_registry_check_handle(const xb_registry *r, xb_diag *d)
{
    if (r == NULL)
        return xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no handle");
    return XB_OK;
}

/* An ID that failed validation may hold anything (it can come from a request); only a short,
 * printable rendering of it goes into a message that ends up in logs and HTTP answers. */
static void xb_registry_printable(const char *s, size_t len, char *buf, size_t size)
{
    size_t max = size - 4, j = 0;
    for (size_t i = 0; i < len && j < max; i++)
        buf[j++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
    if (len > max) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j] = '\0';
}

/* Every ID that reaches a backend has passed this, so backends never see one that could not
 * have been registered. */
static xb_err xb_registry_check_id(const char *reg_id, xb_diag *d)
{
    if (reg_id == NULL)
        return xb_fail(d, XB_ERR_INVALID_REGISTRATION_ID, "no registration ID");
    size_t len = strnlen(reg_id, XB_REGID_MAX + 1);
    if (xb_regid_valid(reg_id, len))
        return XB_OK;
    char shown[48];
    xb_registry_printable(reg_id, len, shown, sizeof shown);
    return xb_fail(d, XB_ERR_INVALID_REGISTRATION_ID,
                   "invalid registration ID \"%s\": 1..128 characters of [A-Za-z0-9-._:], "
                   "ending with a letter, digit or '-'",
                   shown);
}

xb_err xb_registry_ping(xb_registry *r, xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    return err != XB_OK ? err : r->ops->ping(r, d);
}

int xb_group_name_valid(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0 || n > XB_GROUP_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static xb_err xb_registry_check_group_name(const char *name, xb_diag *d)
{
    if (xb_group_name_valid(name))
        return XB_OK;
    return xb_fail(d, XB_ERR_INVALID_ARGUMENT,
                   "invalid group name \"%.80s\": 1..%d characters of [A-Za-z0-9._-]",
                   name ? name : "", XB_GROUP_NAME_MAX);
}

const char *xb_device_state(const xb_device *dev)
{
    if (!dev->enabled)
        return "disabled";
    return dev->enrolled_at != 0 ? "enrolled" : "allowed";
}

xb_err xb_registry_device_add(xb_registry *r, const char *reg_id, xb_diag *d)
{
    xb_device_spec spec = {.reg_id = reg_id};
    return xb_registry_device_add_many(r, &spec, 1, NULL, d);
}

static xb_err xb_registry_check_spec(const xb_device_spec *spec, xb_diag *d)
{
    xb_err err = xb_registry_check_id(spec->reg_id, d);
    if (err == XB_OK && spec->group != NULL)
        err = xb_registry_check_group_name(spec->group, d);
    if (err == XB_OK && spec->group != NULL && spec->secret_sha256 != NULL)
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "device %s: a secret or a group, not both",
                      spec->reg_id);
    return err;
}

xb_err xb_registry_device_add_many(xb_registry *r, const xb_device_spec *devices, size_t n,
                                   size_t *bad, xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err != XB_OK)
        return err;
    if (n > 0 && devices == NULL)
        return xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no devices");
    /* All specs are checked before the backend is asked for anything, so an invalid one
     * anywhere in the batch leaves the registry untouched. */
    for (size_t i = 0; i < n; i++) {
        err = xb_registry_check_spec(&devices[i], d);
        if (err != XB_OK) {
            if (bad != NULL)
                *bad = i;
            return err;
        }
    }
    if (n == 0)
        return XB_OK;
    return r->ops->device_add_many(r, devices, n, bad, d);
}

xb_err xb_registry_group_add(xb_registry *r, const char *name, const uint8_t *key, size_t key_len,
                             xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK)
        err = xb_registry_check_group_name(name, d);
    if (err == XB_OK && (key == NULL || key_len < XB_GROUP_KEY_MIN || key_len > XB_GROUP_KEY_MAX))
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "a group key is %d..%d bytes, not %zu",
                      XB_GROUP_KEY_MIN, XB_GROUP_KEY_MAX, key == NULL ? (size_t)0 : key_len);
    return err != XB_OK ? err : r->ops->group_add(r, name, key, key_len, d);
}

xb_err xb_registry_group_get(xb_registry *r, const char *name, xb_group *out, xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK)
        err = xb_registry_check_group_name(name, d);
    if (err == XB_OK && out == NULL)
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no output group");
    return err != XB_OK ? err : r->ops->group_get(r, name, out, d);
}

xb_err xb_registry_group_each(xb_registry *r, xb_err (*fn)(const xb_group *, void *), void *ctx,
                              xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK && fn == NULL)
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no callback");
    return err != XB_OK ? err : r->ops->group_each(r, fn, ctx, d);
}

xb_err xb_registry_device_get(xb_registry *r, const char *reg_id, xb_device *out, xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK)
        err = xb_registry_check_id(reg_id, d);
    if (err == XB_OK && out == NULL)
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no output device");
    return err != XB_OK ? err : r->ops->device_get(r, reg_id, out, d);
}

xb_err xb_registry_device_set_enabled(xb_registry *r, const char *reg_id, int enabled, xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK)
        err = xb_registry_check_id(reg_id, d);
    return err != XB_OK ? err : r->ops->device_set_enabled(r, reg_id, enabled != 0, d);
}

xb_err xb_registry_device_each(xb_registry *r, xb_err (*fn)(const xb_device *, void *), void *ctx,
                               xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK && fn == NULL)
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no callback");
    return err != XB_OK ? err : r->ops->device_each(r, fn, ctx, d);
}

static xb_err xb_registry_check_rules(const xb_enroll_rules *rules, xb_diag *d)
{
    if (rules == NULL)
        return xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no enrollment rules");
    return XB_OK;
}

xb_err xb_registry_check_enroll(xb_registry *r, const char *reg_id, const xb_enroll_rules *rules,
                                xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK)
        err = xb_registry_check_id(reg_id, d);
    if (err == XB_OK)
        err = xb_registry_check_rules(rules, d);
    return err != XB_OK ? err : r->ops->check_enroll(r, reg_id, rules, d);
}

static xb_err xb_registry_check_record(const xb_cert_record *rec, xb_diag *d)
{
    if (rec == NULL)
        return xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no certificate record");
    if (rec->serial[0] == '\0')
        return xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: certificate record has no serial");
    if (rec->der == NULL || rec->der_len == 0)
        return xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: certificate record %s has no DER",
                       rec->serial);
    if (rec->new_group != NULL && xb_registry_check_group_name(rec->new_group, d) != XB_OK)
        return XB_ERR_INVALID_ARGUMENT;
    return xb_registry_check_id(rec->reg_id, d);
}

xb_err xb_registry_record_issuance(xb_registry *r, const xb_cert_record *rec,
                                   const xb_enroll_rules *rules, xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK)
        err = xb_registry_check_record(rec, d);
    if (err == XB_OK)
        err = xb_registry_check_rules(rules, d);
    if (err != XB_OK)
        return err;
    xb_issuance item = {.rec = *rec, .result = XB_OK};
    xb_issuance *items = &item;
    err = r->ops->record_batch(r, &items, 1, rules, d);
    if (err == XB_OK && item.result != XB_OK) {
        if (d != NULL)
            *d = item.diag;
        err = item.result;
    }
    return err;
}

xb_err xb_registry_record_batch(xb_registry *r, xb_issuance *const *items, size_t n,
                                const xb_enroll_rules *rules, xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK)
        err = xb_registry_check_rules(rules, d);
    if (err == XB_OK && items == NULL && n > 0)
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no issuances");
    if (err != XB_OK)
        return err;
    /* Malformed records are refused one by one, like any other refusal: the rest commit. The
     * backend skips items whose result is already an error. */
    for (size_t i = 0; i < n; i++) {
        items[i]->diag.msg[0] = '\0';
        items[i]->result = xb_registry_check_record(&items[i]->rec, &items[i]->diag);
    }
    return n == 0 ? XB_OK : r->ops->record_batch(r, items, n, rules, d);
}

xb_err xb_registry_cert_each(xb_registry *r, const char *reg_id,
                             xb_err (*fn)(const xb_cert_record *, void *), void *ctx, xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK && reg_id != NULL)
        err = xb_registry_check_id(reg_id, d);
    if (err == XB_OK && fn == NULL)
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no callback");
    return err != XB_OK ? err : r->ops->cert_each(r, reg_id, fn, ctx, d);
}

xb_err xb_registry_current_cert(xb_registry *r, const char *reg_id, xb_cert_record *out,
                                uint8_t **der, size_t *der_len, xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK)
        err = xb_registry_check_id(reg_id, d);
    if (err == XB_OK && (out == NULL || der == NULL || der_len == NULL))
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no output certificate");
    if (err != XB_OK)
        return err;
    *der = NULL;
    *der_len = 0;
    memset(out, 0, sizeof *out);
    return r->ops->current_cert(r, reg_id, out, der, der_len, d);
}

xb_err xb_registry_cert_get(xb_registry *r, const char *serial, xb_cert_record *out, uint8_t **der,
                            size_t *der_len, xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK && (serial == NULL || serial[0] == '\0'))
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no serial");
    if (err == XB_OK && (out == NULL || der == NULL || der_len == NULL))
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no output certificate");
    if (err != XB_OK)
        return err;
    *der = NULL;
    *der_len = 0;
    memset(out, 0, sizeof *out);
    return r->ops->cert_get(r, serial, out, der, der_len, d);
}

/* Indexed by code; NULL for the codes that are not supported (see registry.h). */
static const char *const xb_reason_names[] = {
    [XB_REVOKE_UNSPECIFIED] = "unspecified",
    [XB_REVOKE_KEY_COMPROMISE] = "keyCompromise",
    [XB_REVOKE_CA_COMPROMISE] = "cACompromise",
    [XB_REVOKE_AFFILIATION_CHANGED] = "affiliationChanged",
    [XB_REVOKE_SUPERSEDED] = "superseded",
    [XB_REVOKE_CESSATION_OF_OPERATION] = "cessationOfOperation",
    [XB_REVOKE_PRIVILEGE_WITHDRAWN] = "privilegeWithdrawn",
};
#define XB_REASON_SLOTS (sizeof xb_reason_names / sizeof xb_reason_names[0])

const char *xb_revocation_reason_name(int reason)
{
    if (reason < 0 || (size_t)reason >= XB_REASON_SLOTS)
        return NULL;
    return xb_reason_names[reason];
}

int xb_revocation_reason_parse(const char *name, int *reason)
{
    for (size_t i = 0; name != NULL && i < XB_REASON_SLOTS; i++) {
        if (xb_reason_names[i] != NULL && strcasecmp(name, xb_reason_names[i]) == 0) {
            *reason = (int)i;
            return 0;
        }
    }
    return -1;
}

xb_err xb_registry_cert_revoke(xb_registry *r, const char *serial, int reason, time_t when,
                               xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK && (serial == NULL || serial[0] == '\0'))
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no serial");
    if (err == XB_OK && xb_revocation_reason_name(reason) == NULL)
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT,
                      "revocation reason %d is not supported (RFC 5280 codes 0-5 and 9)", reason);
    if (err == XB_OK && when < 0)
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: revocation time before 1970");
    if (err != XB_OK)
        return err;
    /* 0 would read back as "not revoked" (revoked_at 0), so "now" is resolved here. */
    return r->ops->cert_revoke(r, serial, reason, when != 0 ? when : time(NULL), d);
}

xb_err xb_registry_crl_state(xb_registry *r, xb_crl_state *out, xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK && out == NULL)
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no output CRL state");
    if (err != XB_OK)
        return err;
    memset(out, 0, sizeof *out);
    return r->ops->crl_state(r, out, d);
}

xb_err xb_registry_crl_get(xb_registry *r, xb_crl_state *out, uint8_t **der, size_t *der_len,
                           xb_diag *d)
{
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK && (out == NULL || der == NULL || der_len == NULL))
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no output CRL");
    if (err != XB_OK)
        return err;
    memset(out, 0, sizeof *out);
    *der = NULL;
    *der_len = 0;
    return r->ops->crl_get(r, out, der, der_len, d);
}

xb_err xb_registry_crl_update(xb_registry *r, xb_crl_stale_fn stale, xb_crl_build_fn build,
                              void *ctx, int *made, xb_diag *d)
{
    int ignored = 0;
    if (made == NULL)
        made = &ignored;
    *made = 0;
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK && (stale == NULL || build == NULL))
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: no CRL builder");
    return err != XB_OK ? err : r->ops->crl_update(r, stale, build, ctx, made, d);
}

xb_err xb_registry_device_disable_revoke(xb_registry *r, const char *reg_id, int reason,
                                         time_t when, size_t *revoked, xb_diag *d)
{
    size_t ignored = 0;
    if (revoked == NULL)
        revoked = &ignored;
    *revoked = 0;
    xb_err err = xb_registry_check_handle(r, d);
    if (err == XB_OK)
        err = xb_registry_check_id(reg_id, d);
    if (err == XB_OK && xb_revocation_reason_name(reason) == NULL)
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT,
                      "revocation reason %d is not supported (RFC 5280 codes 0-5 and 9)", reason);
    if (err == XB_OK && when < 0)
        err = xb_fail(d, XB_ERR_INVALID_ARGUMENT, "registry: revocation time before 1970");
    if (err != XB_OK)
        return err;
    return r->ops->device_disable_revoke(r, reg_id, reason, when != 0 ? when : time(NULL), revoked,
                                         d);
}
