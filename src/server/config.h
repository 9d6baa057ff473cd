/* xbootd configuration: an INI file (libinih) whose every key can be overridden by an
 * environment variable XBOOT_<SECTION>_<KEY> (how the original read Azure App Settings).
 * docs/configuration.md documents every key; keep the two in step. */
#ifndef XB_CONFIG_H
#define XB_CONFIG_H

#include "xb_error.h"

/* EST labels ([est] labels): how many, and how long each may be. */
#define XB_EST_MAX_LABELS 16
#define XB_EST_LABEL_MAX 32

typedef struct xb_config {
    /* [server] */
    char *listen; /* HTTPS "HOST:PORT"; "" disables HTTPS (then http_listen is required) */
    char *tls_cert;
    char *tls_key;
    char *http_listen; /* plain HTTP "HOST:PORT" for use behind a TLS-terminating proxy; "" off */
    int threads;       /* event loops, one worker process each; 0 = one per core */
    int timeout_seconds;
    char *log_level;
    /* [ca] */
    char *ca_cert;
    char *ca_key;
    char *ca_chain;
    char *ca_key_passphrase_file; /* passphrase of an encrypted key; "": XBOOT_CA_KEY_PASSPHRASE */
    char *ca_https_ca_file;       /* trust anchor for https:// cert/chain/key; "": system store */
    char *ca_previous; /* PEM bundle of signing CAs rotated out; their certificates still renew */
    char *ca_pkcs11_module; /* PKCS#11 module of a pkcs11: key without module-path */
    int validity_days;
    char *subject_attributes;
    char *crl_url; /* CRL distribution point written into certificates; "" writes none */
    /* [crl] */
    int crl_next_update_hours; /* CRL lifetime: nextUpdate = thisUpdate + this */
    /* [registry] */
    char *registry_db;
    /* [enroll] */
    char *mode; /* "allowlist" | "open" */
    int open_mode;
    char *api_key; /* secret: never logged */
    int allow_reenroll;
    /* [policy] */
    char *manufacturer_ca;       /* PEM bundle of manufacturer CAs (IDevIDs); "" none */
    char *manufacturer_id_field; /* the IDevID subject attribute that is the ID: CN */
    char *webhook_url;           /* validation webhook (https://); "" none */
    char *webhook_ca;            /* its trust anchor (PEM); "": the system store */
    int webhook_timeout_ms;
    /* [rate_limit]: requests a minute and bucket sizes; 0 a minute: that limit is off */
    int rl_ip_per_minute, rl_ip_burst;
    int rl_id_per_minute, rl_id_burst;
    /* [est] */
    int est_enabled;
    char *est_labels; /* as written; parsed into est_label[] */
    int est_require_pop;
    char est_label[XB_EST_MAX_LABELS][XB_EST_LABEL_MAX + 1];
    int est_label_count;
} xb_config;

/* Load path (may be NULL: defaults and environment only). Relative paths in the file are
 * resolved against the file's directory. On failure d names the key and the problem. */
xb_err xb_config_load(const char *path, xb_config **out, xb_diag *d);
void xb_config_free(xb_config *cfg);

#endif
