/* xbootctl: the administrator's tool. Creates a development CA hierarchy and manages the device
 * registry (the same database xbootd uses).
 *
 * Exit status: 0 success, 1 the operation failed (message on stderr), 2 the command line was
 * wrong. Options may appear anywhere after the program name; "--" ends them (for registration
 * IDs that start with '-'). */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca.h"
#include "crl_publish.h"
#include "registry.h"
#include "xb_credential.h"
#include "xb_error.h"
#include "xb_regid.h"
#include "xb_util.h"
#include "xbootctl.h"

/* The environment name xbootd reads for its [registry] db key (XBOOT_<SECTION>_<KEY>). */
#define DB_ENV "XBOOT_REGISTRY_DB"

static const char usage_text[] =
    "Usage: " PROG " COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "CA:\n"
    "  ca init --dir DIR [--key-type TYPE] [--org NAME] [--pkcs11 URI]\n"
    "      Create a development CA hierarchy in DIR: root-ca.pem/.key (offline root),\n"
    "      signing-ca.pem/.key (signs device certificates), chain.pem, and tls.pem/.key\n"
    "      (a localhost server certificate). TYPE: ec-p256 (default), ec-p384, rsa-2048,\n"
    "      rsa-3072. NAME: the O= of the subjects (default XBoot). Refuses to overwrite.\n"
    "      --pkcs11 URI: generate the signing CA key inside that PKCS#11 token (RFC 7512,\n"
    "      e.g. 'pkcs11:token=T;object=signing?module-path=LIB&pin-source=file:PIN'),\n"
    "      not extractable; no signing-ca.key is written.\n"
    "  ca rotate --dir DIR\n"
    "      A new signing CA under the same root (root-ca.key must be in DIR): new\n"
    "      signing-ca.pem/.key and chain.pem; the old ones are kept as\n"
    "      signing-ca.STAMP.pem/.key and chain.STAMP.pem. Then: kill -HUP <xbootd pid>.\n"
    "\n"
    "Registry (all take --db URL):\n"
    "  device add ID... [--secret | --group NAME]\n"
    "                          Register devices. All or nothing: if any ID is invalid or\n"
    "                          already registered, none is added. --secret: each gets a new\n"
    "                          256-bit enrollment secret, printed once (only its hash is\n"
    "                          kept). --group: each enrolls with its key derived from\n"
    "                          group NAME's. Neither: the API key, if any, is all it needs.\n"
    "  device import FILE.csv  Register the devices of a factory list, one per line:\n"
    "                          ID[,sha256:HEX | ,GROUP]. All or nothing: the first bad line\n"
    "                          is named and nothing is imported.\n"
    "  device list             One line per device: state (allowed, enrolled, disabled),\n"
    "                          source, created, enrolled, certificates.\n"
    "  device show ID          One device and its certificates.\n"
    "  device disable ID [--revoke [--reason R]] [--ca DIR]\n"
    "                          Refuse further enrollments of ID; with --revoke, also revoke\n"
    "                          every certificate of it not yet revoked (reason R, default\n"
    "                          cessationOfOperation), all in one transaction.\n"
    "  device enable ID        Allow them again.\n"
    "  cert list [--device ID] [--json]\n"
    "                          Issued certificates, oldest first (of ID only with --device,\n"
    "                          also spelled --id), with when and why each revoked one was\n"
    "                          revoked. --json: one JSON array (fields: docs/xbootctl.md).\n"
    "  cert show SERIAL [--json]\n"
    "                          One certificate: device, subject, status (valid, expired,\n"
    "                          revoked), validity, when and from which address it was\n"
    "                          issued, key SHA-256, revocation, then its PEM.\n"
    "  cert revoke SERIAL [--reason R]\n"
    "                          Revoke a certificate (serial in hex, as cert list shows it):\n"
    "                          xbootd refuses it for EST renewal and never sends it again,\n"
    "                          at once. Final: a revoked certificate stays revoked. R, any\n"
    "                          case: unspecified (default), keyCompromise, cACompromise,\n"
    "                          affiliationChanged, superseded, cessationOfOperation,\n"
    "                          privilegeWithdrawn (certificateHold is not supported).\n"
    "  group add NAME          Create an enrollment group; its key is printed once.\n"
    "  group derive NAME ID    Print device ID's key in group NAME:\n"
    "                          Base64(HMAC-SHA256(group key, ID)), as Azure DPS derives it.\n"
    "  group list              One line per group.\n"
    "  crl --out FILE [--ca DIR] [--pem]\n"
    "                          Write the current CRL (DER, or PEM with --pem). With --ca,\n"
    "                          sign a new one first if the stored one is stale.\n"
    "\n"
    "  db migrate              Create the registry's schema, or bring it up to date (a\n"
    "                          newer version only adds). PostgreSQL databases are only ever\n"
    "                          migrated so: xbootd refuses one whose schema is older than it\n"
    "                          needs. Safe to run at any time, from several hosts at once.\n"
    "\n"
    "With --ca DIR (the signing-ca.pem/.key that 'ca init' writes), cert revoke and device\n"
    "disable --revoke sign and store the new CRL at once; without it, xbootd signs it on its\n"
    "next GET /crl. --next-update-hours N (1..168, default 24) is its lifetime: give the value\n"
    "of xbootd's [crl] next_update_hours.\n"
    "\n"
    "Options:\n"
    "  --json       cert list, cert show: JSON instead of text\n"
    "  --db URL     registry database: sqlite:/var/lib/xboot/xboot.db or\n"
    "               postgresql://USER@HOST:PORT/DB (a libpq URI); default: the\n"
    "               " DB_ENV " environment variable (as for xbootd)\n"
    "  -h, --help   show this help\n"
    "\n"
    "Registration IDs: 1..128 characters of [A-Za-z0-9-._:], ending with a letter, digit or\n"
    "'-'. Put \"--\" before an ID that starts with '-'. Times are RFC 3339 UTC.\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

/* ---- command line ---- */

typedef struct ctl_cmd {
    const char *group, *verb; /* verb NULL: the group is the whole command */
    unsigned allowed;         /* OPT_* bits this command accepts */
    int min_pos, max_pos;     /* max_pos -1: unlimited */
    const char *operand;      /* what the positional arguments are, for "missing ..." */
    int (*run)(const ctl_opts *o);
} ctl_cmd;

int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry '" PROG " --help'.\n", stderr);
    return EXIT_USAGE;
}

int failure(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAIL;
}

int failure_diag(const xb_diag *d, xb_err err)
{
    return failure("%s", xb_diag_message(d, err));
}

static const char *opt_name(unsigned bit)
{
    switch (bit) {
    case OPT_DB:
        return "--db";
    case OPT_DIR:
        return "--dir";
    case OPT_KEY_TYPE:
        return "--key-type";
    case OPT_ORG:
        return "--org";
    case OPT_REASON:
        return "--reason";
    case OPT_CA:
        return "--ca";
    case OPT_OUT:
        return "--out";
    case OPT_PEM:
        return "--pem";
    case OPT_REVOKE:
        return "--revoke";
    case OPT_HOURS:
        return "--next-update-hours";
    case OPT_JSON:
        return "--json";
    case OPT_SECRET:
        return "--secret";
    case OPT_GROUP:
        return "--group";
    case OPT_PKCS11:
        return "--pkcs11";
    default:
        return "--id (--device)";
    }
}

/* Returns -1 when parsing succeeded, else the exit status. */
static int parse_options(int argc, char **argv, ctl_opts *o)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"dir", required_argument, NULL, OPT_DIR},
        {"key-type", required_argument, NULL, OPT_KEY_TYPE},
        {"org", required_argument, NULL, OPT_ORG},
        {"id", required_argument, NULL, OPT_ID},
        {"device", required_argument, NULL, OPT_ID}, /* the same option: issue 6's name */
        {"json", no_argument, NULL, OPT_JSON},
        {"reason", required_argument, NULL, OPT_REASON},
        {"ca", required_argument, NULL, OPT_CA},
        {"out", required_argument, NULL, OPT_OUT},
        {"pem", no_argument, NULL, OPT_PEM},
        {"revoke", no_argument, NULL, OPT_REVOKE},
        {"next-update-hours", required_argument, NULL, OPT_HOURS},
        {"secret", no_argument, NULL, OPT_SECRET},
        {"group", required_argument, NULL, OPT_GROUP},
        {"pkcs11", required_argument, NULL, OPT_PKCS11},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char **slot[] = {
        [OPT_DB] = &o->db,         [OPT_DIR] = &o->dir,     [OPT_KEY_TYPE] = &o->key_type,
        [OPT_ORG] = &o->org,       [OPT_ID] = &o->id,       [OPT_REASON] = &o->reason,
        [OPT_CA] = &o->ca,         [OPT_OUT] = &o->out,     [OPT_PEM] = &o->pem,
        [OPT_REVOKE] = &o->revoke, [OPT_HOURS] = &o->hours, [OPT_JSON] = &o->json,
        [OPT_SECRET] = &o->secret, [OPT_GROUP] = &o->group, [OPT_PKCS11] = &o->pkcs11,
    };
    opterr = 0; /* our own messages, with the usage hint */
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'h') {
            o->help = 1;
        } else if (c == ':') {
            return usage_error("option %s needs a value", argv[optind - 1]);
        } else if (c == '?') {
            if (optopt != 0)
                return usage_error("unknown option -%c", optopt);
            return usage_error("unknown option %s", argv[optind - 1]);
        } else {
            if (o->given & (unsigned)c)
                return usage_error("option %s given twice", opt_name((unsigned)c));
            o->given |= (unsigned)c;
            *slot[c] = optarg != NULL ? optarg : "1"; /* flags: set */
        }
    }
    o->npos = argc - optind;
    o->pos = argv + optind;
    return -1;
}

/* ---- registry access ---- */

static const char *db_url(const ctl_opts *o)
{
    if (o->db != NULL)
        return o->db;
    const char *env = getenv(DB_ENV);
    return env != NULL && env[0] != '\0' ? env : NULL;
}

/* Opening a sqlite: registry creates the file. Only "device add" should do that: a mistyped
 * path for "device list" would otherwise show an empty registry and leave a stray file. */
static int sqlite_file_missing(const char *url)
{
    struct stat st;
    return strncmp(url, "sqlite:", 7) == 0 && url[7] != '\0' && stat(url + 7, &st) != 0 &&
           errno == ENOENT;
}

/* Returns -1 with *out open, else the exit status. */
int open_registry(const ctl_opts *o, int create, xb_registry **out)
{
    const char *url = db_url(o);
    if (url == NULL)
        return usage_error("no registry database: pass --db URL (e.g. --db "
                           "sqlite:/var/lib/xboot/xboot.db) or set " DB_ENV);
    if (!create && sqlite_file_missing(url))
        return failure("registry database %s does not exist ('device add' creates it)", url + 7);
    xb_diag d = {{0}};
    xb_err err = xb_registry_open(url, out, &d);
    return err == XB_OK ? -1 : failure_diag(&d, err);
}

void format_time(time_t t, char *buf, size_t len)
{
    if (t == 0)
        snprintf(buf, len, "-");
    else
        xb_time_rfc3339(t, buf, len);
}

/* ---- ca init ---- */

static const char *const ca_key_types[] = {"ec-p256", "ec-p384", "rsa-2048", "rsa-3072"};

static int ca_key_type_known(const char *key_type)
{
    for (size_t i = 0; i < sizeof ca_key_types / sizeof ca_key_types[0]; i++)
        if (strcmp(key_type, ca_key_types[i]) == 0)
            return 1;
    return 0;
}

/* What xb_ca_init_dir writes (ca.h), and what each file is for. */
static const struct {
    const char *name, *role;
} ca_files[] = {
    {"root-ca.pem", "root CA certificate: the trust anchor devices are given"},
    {"root-ca.key", "root CA key: move it offline"},
    {"signing-ca.pem", "signing CA certificate"},
    {"signing-ca.key", "signing CA key: xbootd signs device certificates with it"},
    {"chain.pem", "chain returned to devices with their certificate"},
    {"tls.pem", "TLS server certificate for localhost (development)"},
    {"tls.key", "TLS server key"},
};

static int cmd_ca_init(const ctl_opts *o)
{
    if (o->dir == NULL)
        return usage_error("ca init needs --dir DIR");
    const char *key_type = o->key_type != NULL ? o->key_type : "ec-p256";
    if (!ca_key_type_known(key_type))
        return usage_error("unknown key type '%s' (ec-p256, ec-p384, rsa-2048, rsa-3072)",
                           key_type);
    const char *org = o->org != NULL ? o->org : "XBoot";
    xb_diag d = {{0}};
    if (o->pkcs11 != NULL && strncmp(o->pkcs11, "pkcs11:", 7) != 0)
        return usage_error("--pkcs11 needs an RFC 7512 pkcs11: URI");
    xb_err err = xb_ca_init_dir_pkcs11(o->dir, key_type, org, o->pkcs11, &d);
    if (err != XB_OK)
        return failure_diag(&d, err);
    printf("created a CA hierarchy (%s, O=%s) in %s:\n", key_type, org, o->dir);
    for (size_t i = 0; i < sizeof ca_files / sizeof ca_files[0]; i++)
        if (o->pkcs11 == NULL || strcmp(ca_files[i].name, "signing-ca.key") != 0)
            printf("  %-16s %s\n", ca_files[i].name, ca_files[i].role);
    if (o->pkcs11 != NULL)
        printf("the signing CA key was generated in the PKCS#11 token (not extractable): set\n"
               "[ca] key to its pkcs11: URI\n");
    return EXIT_OK;
}

/* ---- ca rotate ---- */

static int cmd_ca_rotate(const ctl_opts *o)
{
    if (o->dir == NULL)
        return usage_error("ca rotate needs --dir DIR");
    xb_diag d = {{0}};
    char stamp[32];
    xb_err err = xb_ca_rotate_dir(o->dir, stamp, sizeof stamp, &d);
    if (err != XB_OK)
        return failure_diag(&d, err);
    printf("new signing CA in %s (signing-ca.pem/.key, chain.pem)\n"
           "kept: signing-ca.%s.pem/.key, chain.%s.pem (verifiers need them until\n"
           "  the certificates they issued expire; the root is unchanged)\n"
           "apply it: kill -HUP <xbootd supervisor pid>\n",
           o->dir, stamp, stamp);
    return EXIT_OK;
}

/* ---- device add ---- */

/* Every ID is judged before the registry is opened, so one typo never creates a database or
 * half a batch; all the bad ones are named at once. */
static int check_ids(int n, char **ids)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (!xb_regid_valid(ids[i], strlen(ids[i]))) {
            failure("invalid registration ID '%s'", ids[i]);
            bad++;
        }
    }
    if (bad > 0)
        return failure("%s; no device added", xb_strerror(XB_ERR_INVALID_REGISTRATION_ID));
    return EXIT_OK;
}

/* Name every already-registered ID, not just the first, so one run shows all to remove. */
static int check_not_registered(xb_registry *r, int n, char **ids)
{
    int dup = 0;
    for (int i = 0; i < n; i++) {
        xb_device dev;
        xb_diag d = {{0}};
        xb_err err = xb_registry_device_get(r, ids[i], &dev, &d);
        if (err == XB_OK) {
            failure("%s: already registered", ids[i]);
            dup++;
        } else if (err != XB_ERR_DEVICE_UNKNOWN) {
            return failure_diag(&d, err);
        }
    }
    return dup > 0 ? failure("no device added") : EXIT_OK;
}

/* The specs of o's IDs, each with its credential: a fresh secret (its hash in hashes[i], the
 * secret itself in secrets[i] to print once) or the --group. */
static int device_specs(const ctl_opts *o, xb_device_spec *specs, uint8_t (*hashes)[32],
                        char (*secrets)[XB_CREDENTIAL_B64_LEN + 1])
{
    for (int i = 0; i < o->npos; i++) {
        specs[i].reg_id = o->pos[i];
        specs[i].group = o->group;
        if (o->secret == NULL)
            continue;
        if (xb_secret_generate(secrets[i]) != 0)
            return failure("cannot generate a secret: the random generator failed");
        xb_secret_hash(secrets[i], strlen(secrets[i]), hashes[i]);
        specs[i].secret_sha256 = hashes[i];
    }
    return EXIT_OK;
}

static void print_added(const ctl_opts *o, char (*secrets)[XB_CREDENTIAL_B64_LEN + 1])
{
    for (int i = 0; i < o->npos; i++) {
        if (o->secret != NULL)
            printf("added %s secret %s\n", o->pos[i], secrets[i]);
        else if (o->group != NULL)
            printf("added %s to group %s\n", o->pos[i], o->group);
        else
            printf("added %s\n", o->pos[i]);
    }
    if (o->secret != NULL)
        fputs(PROG ": each secret is shown this once; xbootd keeps only its SHA-256. Put it on "
                   "the device (HTTP Basic password, user-id = registration ID).\n",
              stderr);
}

static int add_devices(const ctl_opts *o, xb_registry *r)
{
    size_t n = (size_t)o->npos;
    xb_device_spec *specs = calloc(n, sizeof *specs);
    uint8_t(*hashes)[32] = calloc(n, sizeof *hashes);
    char(*secrets)[XB_CREDENTIAL_B64_LEN + 1] = calloc(n, sizeof *secrets);
    int rc = specs && hashes && secrets ? device_specs(o, specs, hashes, secrets)
                                        : failure("out of memory");
    if (rc == EXIT_OK) {
        /* Still atomic: another admin may add one of them between the check and here, and an
         * ID may be listed twice; then the batch fails as a whole. */
        xb_diag d = {{0}};
        xb_err err = xb_registry_device_add_many(r, specs, n, NULL, &d);
        if (err != XB_OK)
            rc = failure("%s; no device added", xb_diag_message(&d, err));
        else
            print_added(o, secrets);
    }
    if (secrets != NULL)
        OPENSSL_cleanse(secrets, n * sizeof *secrets);
    free(secrets);
    free(hashes);
    free(specs);
    return rc;
}

static int cmd_device_add(const ctl_opts *o)
{
    if (o->secret != NULL && o->group != NULL)
        return usage_error(
            "a device enrolls with a --secret or as a member of a --group, not both");
    if (o->group != NULL && !xb_group_name_valid(o->group))
        return usage_error("invalid group name '%s': 1..%d characters of [A-Za-z0-9._-]", o->group,
                           XB_GROUP_NAME_MAX);
    int rc = check_ids(o->npos, o->pos);
    if (rc != EXIT_OK)
        return rc;
    xb_registry *r = NULL;
    rc = open_registry(o, 1, &r);
    if (rc >= 0)
        return rc;
    rc = check_not_registered(r, o->npos, o->pos);
    if (rc == EXIT_OK)
        rc = add_devices(o, r);
    xb_registry_close(r);
    return rc;
}

/* ---- device list ---- */

static xb_err widen_device(const xb_device *dev, void *ctx)
{
    int *width = ctx;
    int len = (int)strlen(dev->reg_id);
    if (len > *width)
        *width = len;
    return XB_OK;
}

static xb_err print_device_row(const xb_device *dev, void *ctx)
{
    int width = *(const int *)ctx;
    char created[32], enrolled[32];
    format_time(dev->created_at, created, sizeof created);
    format_time(dev->enrolled_at, enrolled, sizeof enrolled);
    printf("%-*s  %-8s  %-9s  %-20s  %-20s  %lld\n", width, dev->reg_id, xb_device_state(dev),
           dev->source, created, enrolled, dev->cert_count);
    return XB_OK;
}

static int cmd_device_list(const ctl_opts *o)
{
    xb_registry *r = NULL;
    int rc = open_registry(o, 0, &r);
    if (rc >= 0)
        return rc;
    /* Two passes (widths, then rows) rather than holding every device in memory. */
    int width = (int)strlen("ID");
    xb_diag d = {{0}};
    xb_err err = xb_registry_device_each(r, widen_device, &width, &d);
    if (err == XB_OK) {
        printf("%-*s  %-8s  %-9s  %-20s  %-20s  %s\n", width, "ID", "STATE", "SOURCE", "CREATED",
               "ENROLLED", "CERTS");
        err = xb_registry_device_each(r, print_device_row, &width, &d);
    }
    xb_registry_close(r);
    return err == XB_OK ? EXIT_OK : failure_diag(&d, err);
}

/* ---- device show / enable / disable ---- */

const char *reason_name(const xb_cert_record *rec)
{
    const char *name = xb_revocation_reason_name(rec->revocation_reason);
    return name != NULL ? name : "unknown";
}

static xb_err print_device_cert(const xb_cert_record *rec, void *ctx)
{
    (void)ctx;
    char not_after[32], revoked[32];
    format_time(rec->not_after, not_after, sizeof not_after);
    printf("certificate:  %s  not after %s", rec->serial, not_after);
    if (rec->revoked_at != 0) {
        format_time(rec->revoked_at, revoked, sizeof revoked);
        printf("  revoked %s (%s)", revoked, reason_name(rec));
    }
    putchar('\n');
    return XB_OK;
}

static void print_device(const xb_device *dev)
{
    char created[32], enrolled[32];
    format_time(dev->created_at, created, sizeof created);
    format_time(dev->enrolled_at, enrolled, sizeof enrolled);
    printf("id:           %s\n", dev->reg_id);
    printf("state:        %s\n", xb_device_state(dev));
    printf("credential:   %s\n", dev->has_secret         ? "secret"
                                 : dev->group[0] != '\0' ? "group"
                                                         : "none");
    if (dev->group[0] != '\0')
        printf("group:        %s\n", dev->group);
    printf("source:       %s\n", dev->source);
    printf("created:      %s\n", created);
    printf("enrolled:     %s\n", enrolled);
    printf("certificates: %lld\n", dev->cert_count);
}

static int cmd_device_show(const ctl_opts *o)
{
    xb_registry *r = NULL;
    int rc = open_registry(o, 0, &r);
    if (rc >= 0)
        return rc;
    xb_device dev;
    xb_diag d = {{0}};
    xb_err err = xb_registry_device_get(r, o->pos[0], &dev, &d);
    if (err == XB_OK) {
        print_device(&dev);
        err = xb_registry_cert_each(r, dev.reg_id, print_device_cert, NULL, &d);
    }
    xb_registry_close(r);
    return err == XB_OK ? EXIT_OK : failure_diag(&d, err);
}

static int set_enabled(const ctl_opts *o, int enabled)
{
    xb_registry *r = NULL;
    int rc = open_registry(o, 0, &r);
    if (rc >= 0)
        return rc;
    xb_diag d = {{0}};
    xb_err err = xb_registry_device_set_enabled(r, o->pos[0], enabled, &d);
    xb_registry_close(r);
    if (err != XB_OK)
        return failure_diag(&d, err);
    printf("%s: %s\n", o->pos[0], enabled ? "enabled" : "disabled");
    return EXIT_OK;
}

static int parse_reason(const char *name, int *reason);
static int crl_period(const ctl_opts *o, long *period);
static int crl_publish(const ctl_opts *o, xb_registry *r, long period);

static int cmd_device_disable(const ctl_opts *o)
{
    if (o->revoke == NULL) {
        if (o->reason != NULL || o->ca != NULL || o->hours != NULL)
            return usage_error("--reason, --ca and --next-update-hours need --revoke here");
        return set_enabled(o, 0);
    }
    int reason = XB_REVOKE_CESSATION_OF_OPERATION;
    int rc = o->reason != NULL ? parse_reason(o->reason, &reason) : -1;
    long period = 0;
    if (rc < 0)
        rc = crl_period(o, &period);
    if (rc >= 0)
        return rc;
    xb_registry *r = NULL;
    rc = open_registry(o, 0, &r);
    if (rc >= 0)
        return rc;
    size_t revoked = 0;
    xb_diag d = {{0}};
    xb_err err = xb_registry_device_disable_revoke(r, o->pos[0], reason, 0, &revoked, &d);
    if (err != XB_OK) {
        xb_registry_close(r);
        return failure_diag(&d, err);
    }
    printf("%s: disabled, %zu certificate%s revoked (%s)\n", o->pos[0], revoked,
           revoked == 1 ? "" : "s", xb_revocation_reason_name(reason));
    rc = revoked > 0 ? crl_publish(o, r, period) : -1;
    xb_registry_close(r);
    return rc >= 0 ? rc : EXIT_OK;
}

static int cmd_device_enable(const ctl_opts *o)
{
    return set_enabled(o, 1);
}

/* ---- CRL ---- */

/* --next-update-hours, checked before anything is opened. Returns -1 when valid. */
static int crl_period(const ctl_opts *o, long *period)
{
    long hours = XB_CRL_NEXT_UPDATE_HOURS_DEFAULT;
    if (o->hours != NULL) {
        char *end = NULL;
        errno = 0;
        hours = strtol(o->hours, &end, 10);
        if (errno != 0 || end == o->hours || *end != '\0' || hours < 1 ||
            hours > XB_CRL_NEXT_UPDATE_HOURS_MAX)
            return usage_error("--next-update-hours must be 1..%d", XB_CRL_NEXT_UPDATE_HOURS_MAX);
    }
    *period = hours * 3600;
    return -1;
}

/* With --ca: sign and store a new CRL if the stored one is stale. Without: nothing (xbootd
 * signs it on its next GET /crl). Returns -1 on success, else the exit status. */
static int crl_publish(const ctl_opts *o, xb_registry *r, long period)
{
    if (o->ca == NULL)
        return -1;
    char cert[4096], key[4096], chain[4096];
    snprintf(cert, sizeof cert, "%s/signing-ca.pem", o->ca);
    snprintf(key, sizeof key, "%s/signing-ca.key", o->ca);
    snprintf(chain, sizeof chain, "%s/chain.pem", o->ca);
    xb_ca_config cfg = {.cert_path = cert,
                        .key_path = key,
                        .chain_path = chain,
                        .validity_days = 365,
                        .subject_attributes = ""};
    xb_ca *ca = NULL;
    xb_diag d = {{0}};
    xb_err err = xb_ca_load(&cfg, &ca, &d);
    int made = 0;
    if (err == XB_OK)
        err = xb_crl_refresh(r, ca, period, &made, &d);
    xb_ca_free(ca);
    if (err != XB_OK)
        return failure_diag(&d, err);
    xb_crl_state st;
    if (made && xb_registry_crl_state(r, &st, &d) == XB_OK)
        printf("CRL %lld signed\n", st.number);
    return -1;
}

static int write_crl(const ctl_opts *o, const uint8_t *der, size_t len)
{
    FILE *f = fopen(o->out, "wb");
    if (f == NULL)
        return failure("cannot write %s: %s", o->out, strerror(errno));
    int ok;
    if (o->pem != NULL) {
        const unsigned char *p = der;
        X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
        ok = crl != NULL && PEM_write_X509_CRL(f, crl) == 1;
        X509_CRL_free(crl);
    } else {
        ok = fwrite(der, 1, len, f) == len;
    }
    if (fclose(f) != 0)
        ok = 0;
    return ok ? EXIT_OK : failure("cannot write %s", o->out);
}

static int cmd_crl(const ctl_opts *o)
{
    if (o->out == NULL)
        return usage_error("crl needs --out FILE");
    long period = 0;
    int rc = crl_period(o, &period);
    if (rc >= 0)
        return rc;
    xb_registry *r = NULL;
    rc = open_registry(o, 0, &r);
    if (rc >= 0)
        return rc;
    rc = crl_publish(o, r, period);
    xb_crl_state st;
    uint8_t *der = NULL;
    size_t len = 0;
    xb_diag d = {{0}};
    xb_err err = rc >= 0 ? XB_OK : xb_registry_crl_get(r, &st, &der, &len, &d);
    xb_registry_close(r);
    if (rc >= 0)
        return rc;
    if (err == XB_ERR_NOT_FOUND)
        return failure("no CRL has been made yet: pass --ca DIR, or fetch /crl from xbootd once");
    if (err != XB_OK)
        return failure_diag(&d, err);
    rc = write_crl(o, der, len);
    free(der);
    return rc;
}

/* ---- cert revoke ---- */

/* The serial as the registry records it (lowercase hex of the INTEGER's content octets, an
 * even number of digits), from what an operator may paste: cert list's form, openssl's
 * uppercase (x509 -serial) or colon-separated (x509 -text) one, or one leading zero short.
 * Returns -1 if it is not a serial at all. */
int normalize_serial(const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = in; *p != '\0'; p++) {
        if (*p == ':')
            continue;
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')) ||
            n + 1 >= size) /* an odd count is one short of even: the zero still fits */
            return -1;
        out[n++] = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
    }
    if (n == 0)
        return -1;
    if (n % 2 == 1) {
        memmove(out + 1, out, n++);
        out[0] = '0';
    }
    out[n] = '\0';
    return 0;
}

/* Judged before the registry is opened, like IDs: a typo never touches the file. */
static int parse_reason(const char *name, int *reason)
{
    *reason = XB_REVOKE_UNSPECIFIED;
    if (name == NULL || xb_revocation_reason_parse(name, reason) == 0)
        return -1;
    if (strcasecmp(name, "certificateHold") == 0)
        return usage_error("reason certificateHold is not supported: a revocation is final "
                           "(use another reason)");
    return usage_error("unknown revocation reason '%s' (unspecified, keyCompromise, "
                       "cACompromise, affiliationChanged, superseded, cessationOfOperation, "
                       "privilegeWithdrawn)",
                       name);
}

static int cmd_cert_revoke(const ctl_opts *o)
{
    char serial[sizeof((xb_cert_record *)0)->serial];
    if (normalize_serial(o->pos[0], serial, sizeof serial) != 0)
        return usage_error("invalid serial '%s': hexadecimal, as 'cert list' shows it", o->pos[0]);
    int reason = XB_REVOKE_UNSPECIFIED;
    int rc = parse_reason(o->reason, &reason);
    long period = 0;
    if (rc < 0)
        rc = crl_period(o, &period);
    if (rc >= 0)
        return rc;
    xb_registry *r = NULL;
    rc = open_registry(o, 0, &r);
    if (rc >= 0)
        return rc;
    time_t now = time(NULL);
    xb_diag d = {{0}};
    xb_err err = xb_registry_cert_revoke(r, serial, reason, now, &d);
    if (err != XB_OK) {
        xb_registry_close(r);
        return failure_diag(&d, err);
    }
    char when[32];
    format_time(now, when, sizeof when);
    printf("%s: revoked at %s (%s)\n", serial, when, xb_revocation_reason_name(reason));
    rc = crl_publish(o, r, period);
    xb_registry_close(r);
    return rc >= 0 ? rc : EXIT_OK;
}

/* ---- dispatch ---- */

/* ---- db migrate ---- */

static int cmd_db_migrate(const ctl_opts *o)
{
    const char *url = db_url(o);
    if (url == NULL)
        return usage_error("no registry database: pass --db URL (e.g. --db "
                           "postgresql://xboot@db.example/xboot) or set " DB_ENV);
    xb_diag d = {{0}};
    int from = 0, to = 0;
    xb_err err = xb_registry_migrate(url, &from, &to, &d);
    if (err != XB_OK)
        return failure_diag(&d, err);
    char shown[256];
    xb_registry_url_shown(url, shown, sizeof shown);
    if (from == to)
        printf("registry %s: schema version %d, current\n", shown, to);
    else if (from == 0)
        printf("registry %s: schema created at version %d\n", shown, to);
    else
        printf("registry %s: schema migrated from version %d to %d\n", shown, from, to);
    return EXIT_OK;
}

static int cmd_help(const ctl_opts *o)
{
    (void)o;
    fputs(usage_text, stdout);
    return EXIT_OK;
}

static const ctl_cmd commands[] = {
    {"help", NULL, 0, 0, -1, NULL, cmd_help},
    {"ca", "init", OPT_DIR | OPT_KEY_TYPE | OPT_ORG | OPT_PKCS11, 0, 0, NULL, cmd_ca_init},
    {"ca", "rotate", OPT_DIR, 0, 0, NULL, cmd_ca_rotate},
    {"device", "add", OPT_DB | OPT_SECRET | OPT_GROUP, 1, -1, "registration IDs", cmd_device_add},
    {"device", "import", OPT_DB, 1, 1, "CSV file", cmd_device_import},
    {"device", "list", OPT_DB, 0, 0, NULL, cmd_device_list},
    {"device", "show", OPT_DB, 1, 1, "registration ID", cmd_device_show},
    {"device", "disable", OPT_DB | OPT_REVOKE | OPT_REASON | OPT_CA | OPT_HOURS, 1, 1,
     "registration ID", cmd_device_disable},
    {"device", "enable", OPT_DB, 1, 1, "registration ID", cmd_device_enable},
    {"cert", "list", OPT_DB | OPT_ID | OPT_JSON, 0, 0, NULL, cmd_cert_list},
    {"cert", "show", OPT_DB | OPT_JSON, 1, 1, "serial", cmd_cert_show},
    {"cert", "revoke", OPT_DB | OPT_REASON | OPT_CA | OPT_HOURS, 1, 1, "serial", cmd_cert_revoke},
    {"group", "add", OPT_DB, 1, 1, "group name", cmd_group_add},
    {"group", "derive", OPT_DB, 2, 2, "group name and registration ID", cmd_group_derive},
    {"group", "list", OPT_DB, 0, 0, NULL, cmd_group_list},
    {"crl", NULL, OPT_DB | OPT_OUT | OPT_CA | OPT_PEM | OPT_HOURS, 0, 0, NULL, cmd_crl},
    {"db", "migrate", OPT_DB, 0, 0, NULL, cmd_db_migrate},
};

/* Finds the command named by the first positional words and drops them from o->pos.
 * Returns NULL (after a usage message) if there is none. */
static const ctl_cmd *find_command(ctl_opts *o)
{
    if (o->npos == 0) {
        usage_error("no command");
        return NULL;
    }
    const char *group = o->pos[0];
    const char *verb = o->npos > 1 ? o->pos[1] : NULL;
    int group_known = 0;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const ctl_cmd *c = &commands[i];
        if (strcmp(c->group, group) != 0)
            continue;
        group_known = 1;
        if (c->verb == NULL || (verb != NULL && strcmp(c->verb, verb) == 0)) {
            int words = c->verb == NULL ? 1 : 2;
            o->pos += words;
            o->npos -= words;
            return c;
        }
    }
    if (!group_known)
        usage_error("unknown command '%s'", group);
    else if (verb == NULL)
        usage_error("'%s' needs a subcommand", group);
    else
        usage_error("unknown command '%s %s'", group, verb);
    return NULL;
}

static int check_command_line(const ctl_cmd *c, const ctl_opts *o)
{
    unsigned extra = o->given & ~c->allowed;
    for (unsigned bit = 1; extra != 0; bit <<= 1) {
        if (extra & bit)
            return usage_error("option %s does not apply to this command", opt_name(bit));
    }
    if (o->npos < c->min_pos)
        return usage_error("missing %s", c->operand);
    if (c->max_pos >= 0 && o->npos > c->max_pos)
        return usage_error("unexpected argument '%s'", o->pos[c->max_pos]);
    return -1;
}

/* Output goes to scripts as often as to terminals: a full disk or closed pipe must not look
 * like success. */
static int finish_output(int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, PROG ": cannot write output: %s\n", strerror(errno));
        return EXIT_FAIL;
    }
    return rc;
}

int main(int argc, char **argv)
{
    ctl_opts o;
    memset(&o, 0, sizeof o);
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.help)
        return finish_output(cmd_help(&o));
    const ctl_cmd *c = find_command(&o);
    if (c == NULL)
        return EXIT_USAGE;
    rc = check_command_line(c, &o);
    if (rc >= 0)
        return rc;
    return finish_output(c->run(&o));
}
