/* Reading the sample device's INI configuration (libinih): keys, ranges, defaults, and paths
 * relative to the config file's directory. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#define DEFAULT_TOPIC "devices/{id}/messages/events/"

void config_free(struct config *cfg)
{
    char **strings[] = {&cfg->base_dir,  &cfg->server,   &cfg->trust_anchor, &cfg->registration_id,
                        &cfg->store_dir, &cfg->key_type, &cfg->subject,      &cfg->credential,
                        &cfg->api_key,   &cfg->host,     &cfg->topic,        &cfg->ca_file,
                        &cfg->protocol,  &cfg->est_label};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        free(*strings[i]);
        *strings[i] = NULL;
    }
}

/* A copy of path, made relative to the config file's directory unless it is absolute. */
static char *resolve_path(const struct config *cfg, const char *path)
{
    if (path[0] == '/' || cfg->base_dir == NULL)
        return strdup(path);
    size_t n = strlen(cfg->base_dir) + 1 + strlen(path) + 1;
    char *out = malloc(n);
    if (out != NULL)
        snprintf(out, n, "%s/%s", cfg->base_dir, path);
    return out;
}

int config_parse_int(const char *s, long min, long max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* Replace *slot with a copy of value (a path resolved against the config directory when
 * is_path). 1 on success, 0 on allocation failure (inih's convention). */
static int set_string(struct config *cfg, char **slot, const char *value, int is_path)
{
    char *copy = is_path ? resolve_path(cfg, value) : strdup(value);
    if (copy == NULL) {
        snprintf(cfg->error, sizeof(cfg->error), "out of memory");
        return 0;
    }
    free(*slot);
    *slot = copy;
    return 1;
}

static int on_xboot_key(struct config *cfg, const char *name, const char *value)
{
    if (strcmp(name, "server") == 0)
        return set_string(cfg, &cfg->server, value, 0);
    if (strcmp(name, "trust_anchor") == 0)
        return set_string(cfg, &cfg->trust_anchor, value, 1);
    if (strcmp(name, "registration_id") == 0)
        return set_string(cfg, &cfg->registration_id, value, 0);
    if (strcmp(name, "store_dir") == 0)
        return set_string(cfg, &cfg->store_dir, value, 1);
    if (strcmp(name, "key_type") == 0)
        return set_string(cfg, &cfg->key_type, value, 0);
    if (strcmp(name, "subject") == 0)
        return set_string(cfg, &cfg->subject, value, 0);
    if (strcmp(name, "credential") == 0)
        return set_string(cfg, &cfg->credential, value, 0);
    if (strcmp(name, "api_key") == 0)
        return set_string(cfg, &cfg->api_key, value, 0);
    if (strcmp(name, "protocol") == 0) {
        if (strcmp(value, "xboot") != 0 && strcmp(value, "est") != 0) {
            snprintf(cfg->error, sizeof(cfg->error), "[xboot] protocol: '%s' is not xboot or est",
                     value);
            return 0;
        }
        return set_string(cfg, &cfg->protocol, value, 0);
    }
    if (strcmp(name, "est_label") == 0)
        return set_string(cfg, &cfg->est_label, value, 0);
    if (strcmp(name, "renew_threshold") == 0) {
        if (config_parse_int(value, 1, 99, &cfg->renew_threshold) == 0)
            return 1;
        snprintf(cfg->error, sizeof(cfg->error),
                 "[xboot] renew_threshold: '%s' is not a percentage in 1..99", value);
        return 0;
    }
    snprintf(cfg->error, sizeof(cfg->error), "unknown key [xboot] %s", name);
    return 0;
}

static int on_mqtt_key(struct config *cfg, const char *name, const char *value)
{
    if (strcmp(name, "host") == 0)
        return set_string(cfg, &cfg->host, value, 0);
    if (strcmp(name, "topic") == 0)
        return set_string(cfg, &cfg->topic, value, 0);
    if (strcmp(name, "ca_file") == 0)
        return set_string(cfg, &cfg->ca_file, value, 1);
    static const struct {
        const char *name;
        size_t offset;
        long min, max;
    } numbers[] = {
        {"port", offsetof(struct config, port), 1, 65535},
        {"messages", offsetof(struct config, messages), 0, 1000000},
        {"interval_ms", offsetof(struct config, interval_ms), 0, 3600000},
    };
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        if (strcmp(name, numbers[i].name) != 0)
            continue;
        int *slot = (int *)((char *)cfg + numbers[i].offset);
        if (config_parse_int(value, numbers[i].min, numbers[i].max, slot) == 0)
            return 1;
        snprintf(cfg->error, sizeof(cfg->error), "[mqtt] %s: '%s' is not a number in %ld..%ld",
                 name, value, numbers[i].min, numbers[i].max);
        return 0;
    }
    snprintf(cfg->error, sizeof(cfg->error), "unknown key [mqtt] %s", name);
    return 0;
}

/* inih callback: 1 to go on, 0 to stop at the first error (its line is reported). */
static int on_ini_entry(void *user, const char *section, const char *name, const char *value)
{
    struct config *cfg = user;
    if (cfg->error[0] != '\0')
        return 0;
    if (name == NULL) /* a section header on its own (inih's INI_CALL_HANDLER_ON_NEW_SECTION) */
        return 1;
    if (strcmp(section, "xboot") == 0)
        return on_xboot_key(cfg, name, value);
    if (strcmp(section, "mqtt") == 0)
        return on_mqtt_key(cfg, name, value);
    snprintf(cfg->error, sizeof(cfg->error), "unknown section [%s]", section);
    return 0;
}

/* The directory part of path ("." when there is none). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    size_t n = (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (dir != NULL) {
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    return dir;
}

static int config_check_required(const struct config *cfg, const char *path)
{
    struct {
        const char *value, *name;
    } required[] = {
        {cfg->server, "[xboot] server"},
        {cfg->trust_anchor, "[xboot] trust_anchor"},
        {cfg->registration_id, "[xboot] registration_id"},
        {cfg->store_dir, "[xboot] store_dir"},
        {cfg->host, "[mqtt] host"},
    };
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (required[i].value == NULL || required[i].value[0] == '\0') {
            fprintf(stderr, "%s: %s is missing\n", path, required[i].name);
            return -1;
        }
    }
    if (cfg->port == 0) {
        fprintf(stderr, "%s: [mqtt] port is missing\n", path);
        return -1;
    }
    return 0;
}

int config_load(struct config *cfg, const char *path)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->messages = 5;
    cfg->interval_ms = 1000;
    cfg->base_dir = dir_of(path);
    if (cfg->base_dir == NULL) {
        fprintf(stderr, "out of memory\n");
        return -1;
    }
    int line = ini_parse(path, on_ini_entry, cfg);
    if (line < 0) {
        fprintf(stderr, "%s: cannot read the file\n", path);
        return -1;
    }
    if (line > 0) {
        fprintf(stderr, "%s:%d: %s\n", path, line,
                cfg->error[0] != '\0' ? cfg->error : "syntax error");
        return -1;
    }
    if (config_check_required(cfg, path) != 0)
        return -1;
    /* The broker's certificate is issued under the same root as xbootd's, by default. */
    if (cfg->ca_file == NULL && (cfg->ca_file = strdup(cfg->trust_anchor)) == NULL)
        return -1;
    if (cfg->topic == NULL && (cfg->topic = strdup(DEFAULT_TOPIC)) == NULL)
        return -1;
    return 0;
}
