/* The sample device's configuration: the INI file (see examples/sample-device.conf), read with
 * libinih into a struct config with its defaults filled in. */
#ifndef SAMPLE_DEVICE_CONFIG_H
#define SAMPLE_DEVICE_CONFIG_H

/* Every string is owned by the struct (malloc'd); config_free releases them all. Paths
 * (trust_anchor, store_dir, ca_file) are already resolved against the config file's directory. */
struct config {
    char *base_dir; /* directory of the config file: relative paths start there */
    /* [xboot] */
    char *server;
    char *trust_anchor;
    char *registration_id;
    char *store_dir;
    char *key_type;
    char *subject;
    char *credential;
    char *api_key;
    char *protocol;      /* "xboot" or "est" (NULL: xboot) */
    char *est_label;     /* NULL: none */
    int renew_threshold; /* percent, 1..99; 0: the library's default (80) */
    /* [mqtt] */
    char *host;
    int port;
    char *topic; /* a pattern: "{id}" stands for the registration ID */
    int messages;
    int interval_ms;
    char *ca_file;
    /* parsing */
    char error[256];
};

/* Read the config file at path into *cfg (overwritten), with the defaults of what it leaves
 * out. 0 on success; -1 with the reason printed on stderr. Either way the caller frees *cfg
 * with config_free. */
int config_load(struct config *cfg, const char *path);

/* Free every string of *cfg and set it to NULL (the struct itself is the caller's). */
void config_free(struct config *cfg);

/* Parse the decimal integer s into *out if it is in [min, max]: 0 on success, -1 (and *out
 * untouched) otherwise. */
int config_parse_int(const char *s, long min, long max, int *out);

#endif
