/* xbootctl's shared pieces: the parsed command line and the helpers every command uses
 * (tools/xbootctl.c), and the certificate audit commands (tools/xbootctl_cert.c). */
#ifndef XBOOTCTL_H
#define XBOOTCTL_H

#include <stddef.h>
#include <time.h>

#include "registry.h"
#include "xb_error.h"

#define PROG "xbootctl"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

enum {
    OPT_DB = 1 << 0,
    OPT_DIR = 1 << 1,
    OPT_KEY_TYPE = 1 << 2,
    OPT_ORG = 1 << 3,
    OPT_ID = 1 << 4, /* --id, also spelled --device */
    OPT_REASON = 1 << 5,
    OPT_CA = 1 << 6,
    OPT_OUT = 1 << 7,
    OPT_PEM = 1 << 8,
    OPT_REVOKE = 1 << 9,
    OPT_HOURS = 1 << 10,
    OPT_JSON = 1 << 11,
    OPT_SECRET = 1 << 12,
    OPT_GROUP = 1 << 13,
    OPT_PKCS11 = 1 << 14,
};

typedef struct ctl_opts {
    const char *db, *dir, *key_type, *org, *id, *reason, *ca, *out, *pem, *revoke, *hours, *json;
    const char *secret, *group, *pkcs11;
    unsigned given; /* OPT_* bits */
    int help;
    int npos;
    char **pos; /* positional arguments after the command words */
} ctl_opts;

/* Message on stderr ("xbootctl: ..."), then EXIT_USAGE (with the --help hint) or EXIT_FAIL. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int failure_diag(const xb_diag *d, xb_err err);

/* Returns -1 with *out open, else the exit status. */
int open_registry(const ctl_opts *o, int create, xb_registry **out);
/* RFC 3339 UTC, or "-" for 0. */
void format_time(time_t t, char *buf, size_t len);
/* RFC 5280's name of rec's revocation reason ("unknown" for an unsupported code). */
const char *reason_name(const xb_cert_record *rec);
/* A serial as pasted (cert list's form, openssl's) into the registry's: 0, or -1 if invalid. */
int normalize_serial(const char *in, char *out, size_t size);

int cmd_cert_list(const ctl_opts *o);
int cmd_cert_show(const ctl_opts *o);

/* Factory lists (tools/xbootctl_import.c). */
int cmd_device_import(const ctl_opts *o);

/* Enrollment groups (tools/xbootctl_group.c). */
int cmd_group_add(const ctl_opts *o);
int cmd_group_derive(const ctl_opts *o);
int cmd_group_list(const ctl_opts *o);

#endif
