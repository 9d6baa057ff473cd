#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>
#include <openssl/crypto.h>

#include "ca.h"
#include "xb_log.h"
#include "xb_util.h"

typedef enum { XB_KEY_STRING, XB_KEY_PATH, XB_KEY_INT, XB_KEY_BOOL } xb_key_type;

/* Every key xbootd reads. The environment name is derived: XBOOT_<SECTION>_<KEY> upper-cased. */
static const struct xb_config_key {
    const char *section;
    const char *name;
    xb_key_type type;
    size_t offset;
    const char *default_value;
    int min, max; /* for XB_KEY_INT */
} xb_config_keys[] = {
    {"server", "listen", XB_KEY_STRING, offsetof(xb_config, listen), "0.0.0.0:8443", 0, 0},
    {"server", "tls_cert", XB_KEY_PATH, offsetof(xb_config, tls_cert), "", 0, 0},
    {"server", "tls_key", XB_KEY_PATH, offsetof(xb_config, tls_key), "", 0, 0},
    {"server", "http_listen", XB_KEY_STRING, offsetof(xb_config, http_listen), "", 0, 0},
    {"server", "threads", XB_KEY_INT, offsetof(xb_config, threads), "0", 0, 256},
    {"server", "timeout_seconds", XB_KEY_INT, offsetof(xb_config, timeout_seconds), "10", 1, 3600},
    {"server", "log_level", XB_KEY_STRING, offsetof(xb_config, log_level), "info", 0, 0},
    {"ca", "cert", XB_KEY_PATH, offsetof(xb_config, ca_cert), "", 0, 0},
    {"ca", "key", XB_KEY_PATH, offsetof(xb_config, ca_key), "", 0, 0},
    {"ca", "chain", XB_KEY_PATH, offsetof(xb_config, ca_chain), "", 0, 0},
    {"ca", "key_passphrase_file", XB_KEY_PATH, offsetof(xb_config, ca_key_passphrase_file), "", 0,
     0},
    {"ca", "https_ca_file", XB_KEY_PATH, offsetof(xb_config, ca_https_ca_file), "", 0, 0},
    {"ca", "previous", XB_KEY_PATH, offsetof(xb_config, ca_previous), "", 0, 0},
    {"ca", "pkcs11_module", XB_KEY_PATH, offsetof(xb_config, ca_pkcs11_module), "", 0, 0},
    {"ca", "validity_days", XB_KEY_INT, offsetof(xb_config, validity_days), "365", 1, 3650},
    {"crl", "next_update_hours", XB_KEY_INT, offsetof(xb_config, crl_next_update_hours), "24", 1,
     7 * 24},
    {"ca", "subject_attributes", XB_KEY_STRING, offsetof(xb_config, subject_attributes),
     "C,ST,L,O,OU", 0, 0},
    {"ca", "crl_url", XB_KEY_STRING, offsetof(xb_config, crl_url), "", 0, 0},
    {"registry", "db", XB_KEY_PATH, offsetof(xb_config, registry_db), "sqlite:xboot.db", 0, 0},
    {"enroll", "mode", XB_KEY_STRING, offsetof(xb_config, mode), "allowlist", 0, 0},
    {"enroll", "api_key", XB_KEY_STRING, offsetof(xb_config, api_key), "", 0, 0},
    {"enroll", "allow_reenroll", XB_KEY_BOOL, offsetof(xb_config, allow_reenroll), "false", 0, 0},
    {"policy", "manufacturer_ca", XB_KEY_PATH, offsetof(xb_config, manufacturer_ca), "", 0, 0},
    {"policy", "webhook_url", XB_KEY_STRING, offsetof(xb_config, webhook_url), "", 0, 0},
    {"policy", "webhook_ca", XB_KEY_PATH, offsetof(xb_config, webhook_ca), "", 0, 0},
    {"policy", "webhook_timeout_ms", XB_KEY_INT, offsetof(xb_config, webhook_timeout_ms), "2000", 1,
     60000},
    {"policy", "manufacturer_id_field", XB_KEY_STRING, offsetof(xb_config, manufacturer_id_field),
     "CN", 0, 0},
    /* Defaults as docs/rate-limits.md explains: 20 a second from one address (burst 200), one a
     * minute per device after a burst of 5. */
    {"rate_limit", "ip_per_minute", XB_KEY_INT, offsetof(xb_config, rl_ip_per_minute), "1200", 0,
     1000000},
    {"rate_limit", "ip_burst", XB_KEY_INT, offsetof(xb_config, rl_ip_burst), "200", 1, 1000000},
    {"rate_limit", "id_per_minute", XB_KEY_INT, offsetof(xb_config, rl_id_per_minute), "1", 0,
     1000000},
    {"rate_limit", "id_burst", XB_KEY_INT, offsetof(xb_config, rl_id_burst), "5", 1, 1000000},
    {"est", "enabled", XB_KEY_BOOL, offsetof(xb_config, est_enabled), "true", 0, 0},
    {"est", "labels", XB_KEY_STRING, offsetof(xb_config, est_labels), "", 0, 0},
    {"est", "require_pop", XB_KEY_BOOL, offsetof(xb_config, est_require_pop), "false", 0, 0},
};
#define XB_N_KEYS (sizeof xb_config_keys / sizeof xb_config_keys[0])

/* Raw text values while loading, one per key. */
typedef struct xb_config_raw {
    char *value[XB_N_KEYS];
    xb_diag *d;
    xb_err err;
} xb_config_raw;

static int xb_config_find(const char *section, const char *name)
{
    for (size_t i = 0; i < XB_N_KEYS; i++)
        if (strcmp(xb_config_keys[i].section, section) == 0 &&
            strcmp(xb_config_keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Values may be secrets (api_key): wipe them before freeing. */
static void xb_config_free_secret(char *s)
{
    if (s != NULL)
        OPENSSL_cleanse(s, strlen(s));
    free(s);
}

static int xb_config_set_raw(xb_config_raw *raw, size_t i, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return 0;
    xb_config_free_secret(raw->value[i]);
    raw->value[i] = copy;
    return 1;
}

static int xb_config_ini_handler(void *user, const char *section, const char *name,
                                 const char *value)
{
    xb_config_raw *raw = user;
    if (raw->err != XB_OK)
        return 0;
    int i = xb_config_find(section, name);
    if (i < 0) {
        /* A typo must not silently fall back to a default (e.g. a misspelt api_key). */
        raw->err =
            xb_fail(raw->d, XB_ERR_CONFIG, "unknown key '%s' in section [%s]", name, section);
        return 0;
    }
    if (!xb_config_set_raw(raw, (size_t)i, value)) {
        raw->err = xb_fail(raw->d, XB_ERR_NOMEM, "out of memory");
        return 0;
    }
    return 1;
}

static void xb_config_env_name(const struct xb_config_key *k, char *buf, size_t len)
{
    snprintf(buf, len, "XBOOT_%s_%s", k->section, k->name);
    for (char *p = buf; *p; p++)
        *p = (char)toupper((unsigned char)*p);
}

static xb_err xb_config_parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return XB_OK;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return XB_OK;
        }
    }
    return XB_ERR_CONFIG;
}

static xb_err xb_config_parse_int(const char *v, int min, int max, int *out)
{
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < min || n > max)
        return XB_ERR_CONFIG;
    *out = (int)n;
    return XB_OK;
}

/* "sqlite:relative.db" is resolved like a path; other URLs are taken as they are. */
static char *xb_config_resolve_path(const char *dir, const char *v)
{
    if (v[0] == '\0')
        return strdup(v);
    if (strncmp(v, "sqlite:", 7) == 0) {
        char *p = xb_path_resolve(dir, v + 7);
        if (p == NULL)
            return NULL;
        size_t n = strlen(p) + 8;
        char *url = malloc(n);
        if (url != NULL)
            snprintf(url, n, "sqlite:%s", p);
        free(p);
        return url;
    }
    /* URLs, and the key sources that are not files ([ca] key = env:VARNAME, pkcs11:...). */
    if (strstr(v, "://") != NULL || strncmp(v, "env:", 4) == 0 || strncmp(v, "pkcs11:", 7) == 0)
        return strdup(v);
    return xb_path_resolve(dir, v);
}

static xb_err xb_config_convert(xb_config *cfg, xb_config_raw *raw, const char *dir, xb_diag *d)
{
    for (size_t i = 0; i < XB_N_KEYS; i++) {
        const struct xb_config_key *k = &xb_config_keys[i];
        const char *v = raw->value[i];
        void *field = (char *)cfg + k->offset;
        xb_err err = XB_OK;
        if (k->type == XB_KEY_INT) {
            err = xb_config_parse_int(v, k->min, k->max, field);
            if (err != XB_OK)
                return xb_fail(d, err, "[%s] %s = '%s': expected a whole number %d..%d", k->section,
                               k->name, v, k->min, k->max);
        } else if (k->type == XB_KEY_BOOL) {
            err = xb_config_parse_bool(v, field);
            if (err != XB_OK)
                return xb_fail(d, err, "[%s] %s = '%s': expected true or false", k->section,
                               k->name, v);
        } else {
            char *s = k->type == XB_KEY_PATH ? xb_config_resolve_path(dir, v) : strdup(v);
            if (s == NULL)
                return xb_fail(d, XB_ERR_NOMEM, "out of memory");
            *(char **)field = s;
        }
    }
    return XB_OK;
}

/* An EST label is one path segment: letters, digits, '-', '_', '.', and never an operation
 * name (the path /.well-known/est/cacerts would be ambiguous). */
static int xb_config_label_ok(const char *s, size_t n)
{
    static const char *const ops[] = {"cacerts",  "simpleenroll", "simplereenroll",
                                      "csrattrs", "fullcmc",      "serverkeygen"};
    if (n == 0 || n > XB_EST_LABEL_MAX || (n <= 2 && s[0] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strlen(ops[i]) == n && strncmp(ops[i], s, n) == 0)
            return 0;
    return 1;
}

/* "a, b" -> est_label[] = {"a", "b"}. */
static xb_err xb_config_parse_labels(xb_config *cfg, xb_diag *d)
{
    cfg->est_label_count = 0;
    const char *p = cfg->est_labels;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        const char *s = p;
        size_t len = n;
        while (len > 0 && isspace((unsigned char)*s))
            s++, len--;
        while (len > 0 && isspace((unsigned char)s[len - 1]))
            len--;
        if (!xb_config_label_ok(s, len))
            return xb_fail(d, XB_ERR_CONFIG,
                           "[est] labels: '%.*s' is not a label (1..%d of A-Z a-z 0-9 - _ ., "
                           "not an EST operation name)",
                           (int)len, s, XB_EST_LABEL_MAX);
        if (cfg->est_label_count == XB_EST_MAX_LABELS)
            return xb_fail(d, XB_ERR_CONFIG, "[est] labels: more than %d labels",
                           XB_EST_MAX_LABELS);
        memcpy(cfg->est_label[cfg->est_label_count], s, len);
        cfg->est_label[cfg->est_label_count++][len] = '\0';
        p += n;
        if (*p == ',')
            p++;
    }
    return XB_OK;
}

static xb_err xb_config_validate(xb_config *cfg, xb_diag *d)
{
    xb_err lerr = xb_config_parse_labels(cfg, d);
    if (lerr != XB_OK)
        return lerr;
    if (strcmp(cfg->mode, "allowlist") == 0)
        cfg->open_mode = 0;
    else if (strcmp(cfg->mode, "open") == 0)
        cfg->open_mode = 1;
    else
        return xb_fail(d, XB_ERR_CONFIG, "[enroll] mode = '%s': expected allowlist or open",
                       cfg->mode);
    if (cfg->listen[0] == '\0' && cfg->http_listen[0] == '\0')
        return xb_fail(d, XB_ERR_CONFIG,
                       "[server] listen and http_listen are both empty: nothing to serve");
    if (cfg->listen[0] != '\0' && (cfg->tls_cert[0] == '\0' || cfg->tls_key[0] == '\0'))
        return xb_fail(d, XB_ERR_CONFIG,
                       "[server] listen (HTTPS) needs tls_cert and tls_key; leave listen empty "
                       "to serve plain HTTP only");
    if (cfg->ca_cert[0] == '\0' || cfg->ca_key[0] == '\0')
        return xb_fail(d, XB_ERR_CONFIG, "[ca] cert and key are required");
    /* Here as well as at CA load, so that the message names the section and --check reports a
     * bad URL before anything else is opened. */
    xb_err uerr =
        cfg->crl_url[0] != '\0' ? xb_ca_check_crl_url(cfg->crl_url, "[ca] crl_url", d) : XB_OK;
    if (uerr != XB_OK)
        return uerr;
    if (xb_log_level_parse(cfg->log_level) < 0)
        return xb_fail(d, XB_ERR_CONFIG,
                       "[server] log_level = '%s': expected debug, info, warn or error",
                       cfg->log_level);
    return XB_OK;
}

xb_err xb_config_load(const char *path, xb_config **out, xb_diag *d)
{
    *out = NULL;
    xb_config_raw raw = {.d = d, .err = XB_OK};
    xb_err err = XB_OK;
    for (size_t i = 0; i < XB_N_KEYS && err == XB_OK; i++)
        if (!xb_config_set_raw(&raw, i, xb_config_keys[i].default_value))
            err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
    if (err == XB_OK && path != NULL) {
        int rc = ini_parse(path, xb_config_ini_handler, &raw);
        if (raw.err != XB_OK) {
            /* ini_parse returns the line of the first handler refusal. */
            char why[sizeof d->msg];
            snprintf(why, sizeof why, "%s", d ? d->msg : "");
            err = xb_fail(d, raw.err, "%s line %d: %s", path, rc, why);
        } else if (rc == -1)
            err = xb_fail(d, XB_ERR_CONFIG, "cannot open %s: %s", path, strerror(errno));
        else if (rc != 0)
            err = xb_fail(d, XB_ERR_CONFIG, "%s line %d: syntax error", path, rc);
    }
    for (size_t i = 0; i < XB_N_KEYS && err == XB_OK; i++) {
        char env[96];
        xb_config_env_name(&xb_config_keys[i], env, sizeof env);
        const char *v = getenv(env);
        if (v != NULL && !xb_config_set_raw(&raw, i, v))
            err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
    }
    char dir[PATH_MAX] = "";
    if (path != NULL) {
        const char *slash = strrchr(path, '/');
        if (slash != NULL)
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        if (slash == path)
            strcpy(dir, "/");
    }
    xb_config *cfg = calloc(1, sizeof *cfg);
    if (err == XB_OK && cfg == NULL)
        err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
    if (err == XB_OK)
        err = xb_config_convert(cfg, &raw, dir, d);
    if (err == XB_OK)
        err = xb_config_validate(cfg, d);
    for (size_t i = 0; i < XB_N_KEYS; i++)
        xb_config_free_secret(raw.value[i]);
    if (err != XB_OK) {
        xb_config_free(cfg);
        return err;
    }
    *out = cfg;
    return XB_OK;
}

void xb_config_free(xb_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < XB_N_KEYS; i++)
        if (xb_config_keys[i].type == XB_KEY_STRING || xb_config_keys[i].type == XB_KEY_PATH)
            xb_config_free_secret(*(char **)((char *)cfg + xb_config_keys[i].offset));
    free(cfg);
}
