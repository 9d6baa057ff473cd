/* xboot-enroll: the device's command-line client (docs/xboot-enroll.md). It drives libxboot:
 * generate a key, send a CSR whose CN is the registration ID, check the certificate that comes
 * back and store key, certificate and chain together. A valid certificate already stored makes
 * it a no-op, so it can run at every boot.
 *
 * Exit status: 0 a verified certificate is stored (new or already there), 1 enrollment failed
 * (the store is unchanged), 2 the command line was wrong (nothing was attempted).
 *
 * Secrets (PFX password, API key, credential) come only from files: argv is visible to every
 * user of the machine through /proc. They are never printed, not even inside a message that
 * the library or the server wrote. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "xboot/xboot.h"

#define PROG "xboot-enroll"
#ifndef XBOOT_VERSION
#define XBOOT_VERSION "0.1.0"
#endif

/* A secret file larger than this is not a password but a mistake (e.g. a key file). */
#define SECRET_MAX 4096
/* The library's own backoff (header: 1 s doubling up to 30 s); --retries only sets the count. */
#define BACKOFF_BASE_MS 1000L
#define BACKOFF_MAX_MS 30000L
/* --timeout bounds one request; the connect phase never needs more than this. */
#define CONNECT_MAX_S 10L

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "Usage: " PROG " --server URL --trust ROOT.pem --id REGID --out DIR [OPTIONS]\n"
    "       " PROG " --server URL --trust ROOT.pem --cacerts FILE [OPTIONS]\n"
    "\n"
    "Enroll this device with an XBoot server: generate a key, send a CSR with\n"
    "CN=REGID, check the certificate that comes back and store it in DIR\n"
    "(device.key, device.pem, chain.pem). Does nothing when DIR already holds a\n"
    "valid certificate for REGID.\n"
    "\n"
    "Required:\n"
    "  --server URL           https://host[:port] (/api/certificate is appended)\n"
    "                         or a full URL with a path\n"
    "  --trust ROOT.pem       trust anchor: verifies the server and the issued chain\n"
    "  --id REGID             registration ID: 1..128 of [A-Za-z0-9-._:], ending\n"
    "                         with a letter, digit or '-'\n"
    "  --out DIR              the store (created 0700 if missing)\n"
    "\n"
    "Options:\n"
    "  --key-type TYPE        ec-p256 (default), ec-p384, rsa-2048\n"
    "  --subject /O=../OU=..  extra subject attributes: C, ST, L, O, OU\n"
    "  --pfx                  also write DIR/device.pfx (PKCS#12, AES-256)\n"
    "  --pfx-password-file F  its password (default: empty)\n"
    "  --force                enroll even if a valid certificate is stored\n"
    "  --protocol P           xboot (default: POST /api/certificate) or est\n"
    "                         (RFC 7030 simpleenroll under /.well-known/est)\n"
    "  --est-label L          EST label (CA profile): /.well-known/est/L/...\n"
    "  --renew                renew the stored certificate over EST (mutual TLS,\n"
    "                         new key) when it is due; not due: no-op; expired or\n"
    "                         invalid: bootstrap enrollment; nothing stored: enroll\n"
    "  --renew-threshold PCT  due after PCT% of the lifetime, 1..99 (default 80)\n"
    "  --cacerts FILE         write the server's EST CA certificates (PEM) to FILE\n"
    "                         and exit (--id and --out not needed)\n"
    "  --api-key-file F       the server's API key (x-functions-key header)\n"
    "  --credential-file F    the device's enrollment credential (HTTP Basic)\n"
    "  --timeout SECONDS      per request, 1..3600 (default 30; connect: 10 at most)\n"
    "  --retries N            retries after the first attempt, on network errors\n"
    "                         and 429/502/503/504: 0..19 (default 4)\n"
    "  --json                 print one JSON object on stdout\n"
    "  --quiet                no progress messages (errors are still printed)\n"
    "  -h, --help             show this help\n"
    "  --version              show the version\n"
    "\n"
    "Secrets come from files only (their contents, trailing newline removed), never\n"
    "from the command line, and are never printed.\n"
    "Exit status: 0 a verified certificate is stored, 1 enrollment failed,\n"
    "2 usage error.\n";

/* ---- command line ---- */

enum {
    OPT_SERVER = 256,
    OPT_TRUST,
    OPT_ID,
    OPT_OUT,
    OPT_KEY_TYPE,
    OPT_SUBJECT,
    OPT_PFX,
    OPT_PFX_PASSWORD_FILE,
    OPT_FORCE,
    OPT_JSON,
    OPT_API_KEY_FILE,
    OPT_CREDENTIAL_FILE,
    OPT_TIMEOUT,
    OPT_RETRIES,
    OPT_QUIET,
    OPT_VERSION,
    OPT_PROTOCOL,
    OPT_EST_LABEL,
    OPT_RENEW,
    OPT_RENEW_THRESHOLD,
    OPT_CACERTS,
};

typedef struct enroll_opts {
    const char *server, *trust, *id, *out, *key_type_name, *subject;
    const char *pfx_password_file, *api_key_file, *credential_file;
    const char *timeout_text, *retries_text;
    const char *protocol_text, *est_label, *threshold_text, *cacerts;
    xboot_key_type key_type;
    xboot_protocol protocol;
    int threshold;  /* 0: the library's default */
    long timeout_s; /* 0: the library's default */
    int retries;    /* -1: the library's default */
    int pfx, force, json, quiet, help, version, renew;
} enroll_opts;

/* The secrets, as read from their files (NULL when not given). */
typedef struct secrets {
    char *pfx_password, *api_key, *credential;
} secrets;

/* Text from the server or the library goes to a terminal: control bytes (escape sequences)
 * are shown as '?' so that a hostile answer cannot rewrite the screen. */
static void put_clean(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, f);
    }
}

static int usage_error(const char *what, const char *value)
{
    fprintf(stderr, PROG ": %s", what);
    if (value != NULL) {
        fputs(": ", stderr);
        put_clean(stderr, value);
    }
    fputs("\nTry '" PROG " --help'.\n", stderr);
    return EXIT_USAGE;
}

/* Value options may be given once: a second --server is a mistake, not an override. */
static int set_once(const char **slot, const char *value, const char *name)
{
    if (*slot != NULL)
        return usage_error("option given twice", name);
    *slot = value;
    return -1;
}

static const char **value_slot(enroll_opts *o, int opt)
{
    switch (opt) {
    case OPT_SERVER:
        return &o->server;
    case OPT_TRUST:
        return &o->trust;
    case OPT_ID:
        return &o->id;
    case OPT_OUT:
        return &o->out;
    case OPT_KEY_TYPE:
        return &o->key_type_name;
    case OPT_SUBJECT:
        return &o->subject;
    case OPT_PFX_PASSWORD_FILE:
        return &o->pfx_password_file;
    case OPT_API_KEY_FILE:
        return &o->api_key_file;
    case OPT_CREDENTIAL_FILE:
        return &o->credential_file;
    case OPT_TIMEOUT:
        return &o->timeout_text;
    case OPT_RETRIES:
        return &o->retries_text;
    case OPT_PROTOCOL:
        return &o->protocol_text;
    case OPT_EST_LABEL:
        return &o->est_label;
    case OPT_RENEW_THRESHOLD:
        return &o->threshold_text;
    case OPT_CACERTS:
        return &o->cacerts;
    default:
        return NULL;
    }
}

static void set_flag(enroll_opts *o, int opt)
{
    switch (opt) {
    case OPT_PFX:
        o->pfx = 1;
        break;
    case OPT_FORCE:
        o->force = 1;
        break;
    case OPT_JSON:
        o->json = 1;
        break;
    case OPT_QUIET:
        o->quiet = 1;
        break;
    case OPT_VERSION:
        o->version = 1;
        break;
    case OPT_RENEW:
        o->renew = 1;
        break;
    default:
        o->help = 1;
        break;
    }
}

/* Returns -1 when parsing succeeded, else the exit status. */
static int parse_options(int argc, char **argv, enroll_opts *o)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, OPT_SERVER},
        {"trust", required_argument, NULL, OPT_TRUST},
        {"id", required_argument, NULL, OPT_ID},
        {"out", required_argument, NULL, OPT_OUT},
        {"key-type", required_argument, NULL, OPT_KEY_TYPE},
        {"subject", required_argument, NULL, OPT_SUBJECT},
        {"pfx", no_argument, NULL, OPT_PFX},
        {"pfx-password-file", required_argument, NULL, OPT_PFX_PASSWORD_FILE},
        {"force", no_argument, NULL, OPT_FORCE},
        {"json", no_argument, NULL, OPT_JSON},
        {"api-key-file", required_argument, NULL, OPT_API_KEY_FILE},
        {"credential-file", required_argument, NULL, OPT_CREDENTIAL_FILE},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"protocol", required_argument, NULL, OPT_PROTOCOL},
        {"est-label", required_argument, NULL, OPT_EST_LABEL},
        {"renew", no_argument, NULL, OPT_RENEW},
        {"renew-threshold", required_argument, NULL, OPT_RENEW_THRESHOLD},
        {"cacerts", required_argument, NULL, OPT_CACERTS},
        {NULL, 0, NULL, 0},
    };
    opterr = 0; /* our own messages, with the usage hint */
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == ':')
            return usage_error("option needs a value", argv[optind - 1]);
        if (c == '?')
            return usage_error("unknown option", argv[optind - 1]);
        const char **slot = value_slot(o, c);
        if (slot == NULL) {
            set_flag(o, c);
            continue;
        }
        int rc = set_once(slot, optarg, argv[optind - 1]);
        if (rc >= 0)
            return rc;
    }
    if (optind < argc)
        return usage_error("unexpected argument", argv[optind]);
    return -1;
}

/* A whole decimal number within [min, max]; 0 when text is anything else. */
static int parse_number(const char *text, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '+' || text[0] == '-' ||
        text[0] == ' ' || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

static int check_required(const enroll_opts *o)
{
    if (o->server == NULL)
        return usage_error("missing --server URL", NULL);
    if (o->trust == NULL)
        return usage_error("missing --trust ROOT.pem", NULL);
    if (o->cacerts != NULL)
        return -1; /* no device identity needed to read the CA certificates */
    if (o->id == NULL)
        return usage_error("missing --id REGID", NULL);
    if (o->out == NULL)
        return usage_error("missing --out DIR", NULL);
    return -1;
}

static int check_numbers(enroll_opts *o)
{
    if (o->timeout_text != NULL && !parse_number(o->timeout_text, 1, 3600, &o->timeout_s))
        return usage_error("--timeout must be 1..3600 seconds", o->timeout_text);
    long retries = -1;
    if (o->retries_text != NULL && !parse_number(o->retries_text, 0, 19, &retries))
        return usage_error("--retries must be 0..19", o->retries_text);
    o->retries = (int)retries;
    long threshold = 0;
    if (o->threshold_text != NULL && !parse_number(o->threshold_text, 1, 99, &threshold))
        return usage_error("--renew-threshold must be 1..99 (percent)", o->threshold_text);
    o->threshold = (int)threshold;
    return -1;
}

/* The EST options and the modes (--renew, --cacerts) that exclude each other. */
static int check_modes(enroll_opts *o)
{
    if (o->protocol_text != NULL && strcmp(o->protocol_text, "est") == 0)
        o->protocol = XBOOT_PROTOCOL_EST;
    else if (o->protocol_text != NULL && strcmp(o->protocol_text, "xboot") != 0)
        return usage_error("unknown --protocol (xboot, est)", o->protocol_text);
    if (o->threshold_text != NULL && !o->renew)
        return usage_error("--renew-threshold needs --renew", NULL);
    if (o->renew && o->force)
        return usage_error("--renew and --force exclude each other", NULL);
    if (o->cacerts != NULL && (o->renew || o->force || o->pfx))
        return usage_error("--cacerts only writes the CA certificates; it takes no "
                           "--renew, --force or --pfx",
                           NULL);
    return -1;
}

/* What can be judged without the network or the file system. Returns -1 when all is well. */
static int check_options(enroll_opts *o)
{
    int rc = check_required(o);
    if (rc >= 0)
        return rc;
    if (o->id == NULL) { /* --cacerts */
        rc = check_numbers(o);
        return rc >= 0 ? rc : check_modes(o);
    }
    /* Checked here so that a typo never reaches a server (the library would refuse it too). */
    if (!xboot_registration_id_valid(o->id))
        return usage_error("invalid registration ID (1..128 characters of [A-Za-z0-9-._:], "
                           "ending with a letter, digit or '-')",
                           o->id);
    if (o->key_type_name != NULL &&
        xboot_key_type_parse(o->key_type_name, &o->key_type) != XBOOT_OK)
        return usage_error("unknown --key-type (ec-p256, ec-p384, rsa-2048)", o->key_type_name);
    if (o->pfx_password_file != NULL && !o->pfx)
        return usage_error("--pfx-password-file needs --pfx", NULL);
    rc = check_numbers(o);
    return rc >= 0 ? rc : check_modes(o);
}

/* ---- output helpers ---- */

/* A copy of text with every secret replaced: the library's details and the server's messages
 * are not ours, and a server echoing a credential must not put it into a log. */
static char *redact(const char *text, const secrets *s)
{
    static const char mask[] = "[redacted]";
    const char *list[] = {s->pfx_password, s->api_key, s->credential};
    char *out = strdup(text != NULL ? text : "");
    for (size_t i = 0; out != NULL && i < sizeof list / sizeof list[0]; i++) {
        size_t n = list[i] != NULL ? strlen(list[i]) : 0;
        char *hit;
        while (n > 0 && out != NULL && (hit = strstr(out, list[i])) != NULL) {
            size_t head = (size_t)(hit - out), len = strlen(out) - n + sizeof mask;
            char *next = malloc(len);
            if (next != NULL)
                snprintf(next, len, "%.*s%s%s", (int)head, out, mask, hit + n);
            free(out);
            out = next;
        }
    }
    return out;
}

/* One progress line: prefix, then detail (redacted, cleaned), then suffix. */
static void note(const secrets *s, const char *prefix, const char *detail, const char *suffix)
{
    char *clean = detail != NULL ? redact(detail, s) : NULL;
    fputs(prefix, stderr);
    if (clean != NULL)
        put_clean(stderr, clean);
    fputs(suffix, stderr);
    fputc('\n', stderr);
    free(clean);
}

/* arg: the secrets, which a detail (a retry's reason) must not show. */
static void on_progress(void *arg, xboot_event event, const char *detail)
{
    const secrets *s = arg;
    switch (event) {
    case XBOOT_EVENT_STORED_VALID:
        note(s, "A valid certificate is already stored; nothing sent (--force enrolls again)", NULL,
             "");
        break;
    case XBOOT_EVENT_KEY_GENERATED:
        note(s, "Generating ", detail, " key...");
        break;
    case XBOOT_EVENT_CSR_BUILT:
        note(s, "CSR built", NULL, "");
        break;
    case XBOOT_EVENT_SENDING_CSR:
        note(s, "Sending CSR to ", detail, "");
        break;
    case XBOOT_EVENT_RETRYING:
        note(s, "Retrying: ", detail, "");
        break;
    case XBOOT_EVENT_CERT_RECEIVED:
        note(s, "Received certificate", NULL, "");
        break;
    case XBOOT_EVENT_CERT_VERIFIED:
        note(s, "Certificate verified", NULL, "");
        break;
    case XBOOT_EVENT_STORED:
        note(s, "Stored in ", detail, "");
        break;
    case XBOOT_EVENT_RENEWING:
        note(s, "Renewing over EST (mutual TLS with the current certificate) at ", detail, "");
        break;
    }
}

/* Prints and frees obj; 0 when it could not be built (out of memory). */
static int print_json(cJSON *obj, int ok)
{
    char *text = ok && obj != NULL ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (text == NULL) {
        fputs(PROG ": cannot build the JSON output: out of memory\n", stderr);
        return 0;
    }
    puts(text);
    cJSON_free(text);
    return 1;
}

static int json_str(cJSON *obj, const char *name, const char *value)
{
    return obj != NULL && cJSON_AddStringToObject(obj, name, value) != NULL;
}

/* ---- failures ---- */

/* Everything said about one failure; strings are never NULL and already redacted. */
typedef struct failure {
    xboot_err err;
    const char *detail;
    int http_status;
    const char *server_code, *server_message;
} failure;

static void print_failure_text(const failure *f)
{
    fputs(PROG ": ", stderr);
    fputs(xboot_strerror(f->err), stderr);
    if (f->detail[0] != '\0') {
        fputs(": ", stderr);
        put_clean(stderr, f->detail);
    }
    fputc('\n', stderr);
    if (f->server_code[0] == '\0' && f->server_message[0] == '\0')
        return;
    fputs(PROG ": server said: ", stderr);
    put_clean(stderr, f->server_code);
    fputs(": ", stderr);
    put_clean(stderr, f->server_message);
    if (f->http_status != 0)
        fprintf(stderr, " (HTTP %d)", f->http_status);
    fputc('\n', stderr);
}

static int print_failure_json(const failure *f)
{
    cJSON *obj = cJSON_CreateObject();
    int ok = json_str(obj, "status", "failed") && json_str(obj, "error", xboot_err_code(f->err)) &&
             json_str(obj, "message", xboot_strerror(f->err)) && json_str(obj, "detail", f->detail);
    if (ok && f->http_status != 0)
        ok = cJSON_AddNumberToObject(obj, "httpStatus", f->http_status) != NULL;
    if (ok && f->server_code[0] != '\0')
        ok = json_str(obj, "serverError", f->server_code);
    if (ok && f->server_message[0] != '\0')
        ok = json_str(obj, "serverMessage", f->server_message);
    return print_json(obj, ok);
}

/* Reports err (with the server's words when c got an answer) and returns EXIT_FAIL. */
static int report_failure(const enroll_opts *o, const secrets *s, const xboot_client *c,
                          xboot_err err, const char *detail)
{
    char *d = redact(detail, s);
    char *code = redact(c != NULL ? xboot_server_error_code(c) : "", s);
    char *msg = redact(c != NULL ? xboot_server_error_message(c) : "", s);
    failure f = {err, d ? d : "", c != NULL ? xboot_http_status(c) : 0, code ? code : "",
                 msg ? msg : ""};
    print_failure_text(&f);
    if (o->json)
        print_failure_json(&f);
    free(d);
    free(code);
    free(msg);
    return EXIT_FAIL;
}

/* ---- secrets ---- */

/* Reads the secret in path: its bytes up to a trailing newline (CR LF too). *why says what is
 * wrong when NULL is returned. The buffer is wiped before it is freed (secret_free). */
static char *read_secret(const char *path, int allow_empty, const char **why)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *why = strerror(errno);
        return NULL;
    }
    char *buf = malloc(SECRET_MAX + 2);
    size_t n = buf != NULL ? fread(buf, 1, SECRET_MAX + 1, f) : 0;
    int read_error = ferror(f);
    fclose(f);
    *why = buf == NULL      ? "out of memory"
           : read_error     ? "read error"
           : n > SECRET_MAX ? "larger than 4096 bytes"
                            : NULL;
    if (*why == NULL) {
        buf[n] = '\0';
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            buf[--n] = '\0';
        if (strlen(buf) != n)
            *why = "contains a NUL byte";
        else if (n == 0 && !allow_empty)
            *why = "empty";
    }
    if (*why != NULL && buf != NULL) {
        OPENSSL_cleanse(buf, SECRET_MAX + 2);
        free(buf);
        buf = NULL;
    }
    return buf;
}

static void secret_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void secrets_free(secrets *s)
{
    secret_free(s->pfx_password);
    secret_free(s->api_key);
    secret_free(s->credential);
}

/* Reads one secret file if it was named; -1 on success, else the exit status. */
static int load_secret(const enroll_opts *o, const secrets *s, const char *option, const char *path,
                       int allow_empty, char **out)
{
    if (path == NULL)
        return -1;
    const char *why = NULL;
    *out = read_secret(path, allow_empty, &why);
    if (*out != NULL)
        return -1;
    char detail[PATH_MAX + 128];
    snprintf(detail, sizeof detail, "cannot use %s %s: %s", option, path, why);
    return report_failure(o, s, NULL, XBOOT_ERR_INVALID_ARGUMENT, detail);
}

static int read_secrets(const enroll_opts *o, secrets *s)
{
    int rc = load_secret(o, s, "--pfx-password-file", o->pfx_password_file, 1, &s->pfx_password);
    if (rc < 0)
        rc = load_secret(o, s, "--api-key-file", o->api_key_file, 0, &s->api_key);
    if (rc < 0)
        rc = load_secret(o, s, "--credential-file", o->credential_file, 0, &s->credential);
    return rc;
}

/* ---- configuring the client ---- */

/* The library refused a command-line value (the server URL, the subject): a usage error. */
static int option_refused(const xboot_client *c, const secrets *s, const char *option,
                          xboot_err err)
{
    char *d = redact(xboot_error_detail(c), s);
    fprintf(stderr, PROG ": %s: %s", option, xboot_strerror(err));
    if (d != NULL && d[0] != '\0') {
        fputs(": ", stderr);
        put_clean(stderr, d);
    }
    fputs("\nTry '" PROG " --help'.\n", stderr);
    free(d);
    return EXIT_USAGE;
}

/* Settings taken from the command line as they are. Returns -1 when all were accepted. */
static int configure_options(xboot_client *c, const enroll_opts *o, const secrets *s)
{
    xboot_err e = xboot_set_server(c, o->server);
    if (e != XBOOT_OK)
        return option_refused(c, s, "--server", e);
    e = xboot_set_protocol(c, o->protocol);
    if (e != XBOOT_OK)
        return option_refused(c, s, "--protocol", e);
    e = o->est_label != NULL ? xboot_set_est_label(c, o->est_label) : XBOOT_OK;
    if (e != XBOOT_OK)
        return option_refused(c, s, "--est-label", e);
    e = o->threshold > 0 ? xboot_set_renew_threshold(c, o->threshold) : XBOOT_OK;
    if (e != XBOOT_OK)
        return option_refused(c, s, "--renew-threshold", e);
    e = o->id != NULL ? xboot_set_registration_id(c, o->id) : XBOOT_OK;
    if (e != XBOOT_OK)
        return option_refused(c, s, "--id", e);
    e = o->subject != NULL ? xboot_set_subject(c, o->subject) : XBOOT_OK;
    if (e != XBOOT_OK)
        return option_refused(c, s, "--subject", e);
    e = xboot_set_key_type(c, o->key_type);
    if (e != XBOOT_OK)
        return option_refused(c, s, "--key-type", e);
    long connect_s = o->timeout_s < CONNECT_MAX_S ? o->timeout_s : CONNECT_MAX_S;
    e = o->timeout_s > 0 ? xboot_set_timeouts(c, connect_s * 1000, o->timeout_s * 1000) : XBOOT_OK;
    if (e != XBOOT_OK)
        return option_refused(c, s, "--timeout", e);
    e = o->retries >= 0 ? xboot_set_retries(c, o->retries + 1, BACKOFF_BASE_MS, BACKOFF_MAX_MS)
                        : XBOOT_OK;
    if (e != XBOOT_OK)
        return option_refused(c, s, "--retries", e);
    return -1;
}

/* Settings that touch files or carry secrets: a refusal is an enrollment failure. */
static int configure_environment(xboot_client *c, const enroll_opts *o, secrets *s)
{
    xboot_err e = xboot_set_trust_anchor_file(c, o->trust);
    if (e == XBOOT_OK && o->out != NULL)
        e = xboot_set_store_dir(c, o->out);
    if (e == XBOOT_OK && o->pfx)
        e = xboot_set_pfx(c, 1, s->pfx_password != NULL ? s->pfx_password : "");
    if (e == XBOOT_OK && s->api_key != NULL)
        e = xboot_set_api_key(c, s->api_key);
    if (e == XBOOT_OK && s->credential != NULL)
        e = xboot_set_credential(c, s->credential);
    if (e == XBOOT_OK && !o->quiet)
        e = xboot_set_progress(c, on_progress, s);
    return e == XBOOT_OK ? -1 : report_failure(o, s, c, e, xboot_error_detail(c));
}

/* ---- success ---- */

/* What the --json answer and the summary line say about the stored certificate. */
typedef struct cert_info {
    const char *key_type;
    char *serial;  /* lowercase hex, OPENSSL_free */
    char *subject; /* RFC 2253, as xbootd records it; free */
    char not_after[32];
} cert_info;

/* The type of the key actually stored: after a no-op it is the stored key's, which need not
 * be the --key-type of this run. */
static const char *key_type_of(EVP_PKEY *key)
{
    char group[64] = "";
    size_t len = 0;
    if (EVP_PKEY_is_a(key, "RSA"))
        return EVP_PKEY_get_bits(key) == 2048 ? "rsa-2048" : "rsa";
    if (!EVP_PKEY_is_a(key, "EC") || !EVP_PKEY_get_group_name(key, group, sizeof group, &len))
        return "unknown";
    if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
        return "ec-p256";
    if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
        return "ec-p384";
    return "unknown";
}

static char *serial_hex(X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    for (char *p = hex; p != NULL && *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    }
    return hex;
}

static char *subject_text(X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text = NULL;
    if (bio != NULL &&
        X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
        char *data = NULL;
        long len = BIO_get_mem_data(bio, &data);
        text = malloc((size_t)len + 1);
        if (text != NULL) {
            memcpy(text, data, (size_t)len);
            text[len] = '\0';
        }
    }
    BIO_free(bio);
    return text;
}

static int rfc3339(const ASN1_TIME *t, char *buf, size_t size)
{
    struct tm tm;
    return ASN1_TIME_to_tm(t, &tm) == 1 && strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0;
}

static void cert_info_free(cert_info *ci)
{
    OPENSSL_free(ci->serial);
    free(ci->subject);
}

static int cert_info_get(const xboot_client *c, cert_info *ci)
{
    X509 *cert = xboot_certificate(c);
    EVP_PKEY *key = xboot_key(c);
    if (cert == NULL || key == NULL)
        return 0;
    ci->key_type = key_type_of(key);
    ci->serial = serial_hex(cert);
    ci->subject = subject_text(cert);
    return ci->serial != NULL && ci->subject != NULL &&
           rfc3339(X509_get0_notAfter(cert), ci->not_after, sizeof ci->not_after);
}

/* DIR/name, malloc'd. */
static char *store_path(const char *dir, const char *name)
{
    size_t len = strlen(dir);
    const char *sep = len > 0 && dir[len - 1] == '/' ? "" : "/";
    size_t size = len + strlen(sep) + strlen(name) + 1;
    char *path = malloc(size);
    if (path != NULL)
        snprintf(path, size, "%s%s%s", dir, sep, name);
    return path;
}

static int json_path(cJSON *obj, const char *field, const char *dir, const char *name)
{
    char *path = store_path(dir, name);
    int ok = path != NULL && json_str(obj, field, path);
    free(path);
    return ok;
}

/* The .pfx is listed when it was asked for and is there. */
static int pfx_stored(const enroll_opts *o)
{
    char *path = o->pfx ? store_path(o->out, "device.pfx") : NULL;
    int there = path != NULL && access(path, F_OK) == 0;
    free(path);
    return there;
}

static int print_success_json(const enroll_opts *o, const cert_info *ci, const char *status)
{
    cJSON *obj = cJSON_CreateObject();
    int ok = json_str(obj, "status", status) && json_str(obj, "registrationId", o->id) &&
             json_str(obj, "keyType", ci->key_type) &&
             json_path(obj, "certificate", o->out, "device.pem") &&
             json_path(obj, "key", o->out, "device.key") &&
             json_path(obj, "chain", o->out, "chain.pem");
    if (ok && pfx_stored(o))
        ok = json_path(obj, "pfx", o->out, "device.pfx");
    ok = ok && json_str(obj, "serial", ci->serial) && json_str(obj, "notAfter", ci->not_after) &&
         json_str(obj, "subject", ci->subject);
    return print_json(obj, ok);
}

static void print_success_text(const enroll_opts *o, const cert_info *ci, const char *status)
{
    const char *what = strcmp(status, "renewed") == 0  ? "Renewed"
                       : strcmp(status, "issued") == 0 ? "Enrolled"
                                                       : "Already enrolled";
    fprintf(stderr, "%s %s: serial %s, valid until %s\n", what, o->id, ci->serial, ci->not_after);
}

/* status: "issued", "unchanged" or "renewed" (NULL: issued or unchanged, as the client says). */
static int report_success(const enroll_opts *o, const secrets *s, const xboot_client *c,
                          const char *status)
{
    if (status == NULL)
        status = xboot_was_issued(c) ? "issued" : "unchanged";
    cert_info ci = {NULL, NULL, NULL, ""};
    int rc = EXIT_OK;
    if (!cert_info_get(c, &ci))
        rc = report_failure(o, s, NULL, XBOOT_ERR_INTERNAL,
                            "the stored certificate cannot be described");
    else if (o->json && !print_success_json(o, &ci, status))
        rc = EXIT_FAIL;
    if (rc == EXIT_OK && !o->quiet)
        print_success_text(o, &ci, status);
    cert_info_free(&ci);
    return rc;
}

/* ---- main ---- */

static int enroll(xboot_client *c, const enroll_opts *o, const secrets *s)
{
    xboot_err e = xboot_enroll(c, o->force ? XBOOT_ENROLL_FORCE : 0);
    if (e != XBOOT_OK)
        return report_failure(o, s, c, e, xboot_error_detail(c));
    return report_success(o, s, c, NULL);
}

/* --renew: renew when due, nothing when not, enroll when nothing usable is stored. */
static int renew(xboot_client *c, const enroll_opts *o, const secrets *s)
{
    int due = 0;
    xboot_err e = xboot_renew_due(c, &due);
    if (e == XBOOT_OK && !due) {
        if (!o->quiet)
            fprintf(stderr, "Certificate not due for renewal (%d%% of its lifetime passed)\n",
                    xboot_lifetime_used(xboot_certificate(c)));
        return report_success(o, s, c, "unchanged");
    }
    if (e == XBOOT_OK) {
        if (!o->quiet)
            fprintf(stderr, "Certificate is due for renewal (%d%% of its lifetime passed)\n",
                    xboot_lifetime_used(xboot_certificate(c)));
        e = xboot_renew(c);
        if (e != XBOOT_OK)
            return report_failure(o, s, c, e, xboot_error_detail(c));
        return report_success(o, s, c, "renewed");
    }
    if (e == XBOOT_ERR_INVALID_ARGUMENT || e == XBOOT_ERR_NOT_CONFIGURED)
        return report_failure(o, s, c, e, xboot_error_detail(c));
    /* Expired, not valid, unreadable or nothing stored: mutual TLS cannot work, so enroll
     * with the bootstrap credentials (xboot_enroll rejects a store it cannot use). */
    if (!o->quiet)
        note(s,
             e == XBOOT_ERR_CERT_EXPIRED
                 ? "The stored certificate has expired: falling back to bootstrap enrollment ("
                 : "No usable stored certificate: enrolling (",
             xboot_error_detail(c), ")");
    return enroll(c, o, s);
}

/* Write certs as PEM to path through a temporary file and a rename: never half a file. */
static int write_pem_file(const char *path, STACK_OF(X509) * certs, const char **why)
{
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (tmp == NULL) {
        *why = "out of memory";
        return 0;
    }
    snprintf(tmp, len, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int ok = f != NULL;
    for (int i = 0; ok && i < sk_X509_num(certs); i++)
        ok = PEM_write_X509(f, sk_X509_value(certs, i)) == 1;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    if (ok && rename(tmp, path) != 0)
        ok = 0;
    if (!ok) {
        *why = strerror(errno);
        unlink(tmp);
    }
    free(tmp);
    return ok;
}

/* --cacerts FILE: the server's EST CA certificates, as PEM. */
static int cacerts(xboot_client *c, const enroll_opts *o, const secrets *s)
{
    STACK_OF(X509) *certs = NULL;
    xboot_err e = xboot_est_cacerts(c, &certs);
    if (e != XBOOT_OK)
        return report_failure(o, s, c, e, xboot_error_detail(c));
    const char *why = NULL;
    int rc = EXIT_OK;
    if (!write_pem_file(o->cacerts, certs, &why)) {
        char detail[PATH_MAX + 128];
        snprintf(detail, sizeof detail, "cannot write %s: %s", o->cacerts, why);
        rc = report_failure(o, s, NULL, XBOOT_ERR_STORAGE, detail);
    } else {
        int n = sk_X509_num(certs);
        if (!o->quiet)
            fprintf(stderr, "Wrote %d CA certificate%s to %s\n", n, n == 1 ? "" : "s", o->cacerts);
        cJSON *obj = o->json ? cJSON_CreateObject() : NULL;
        if (o->json && !print_json(obj, json_str(obj, "status", "written") &&
                                            json_str(obj, "cacerts", o->cacerts) &&
                                            cJSON_AddNumberToObject(obj, "count", n) != NULL))
            rc = EXIT_FAIL;
    }
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

static int run(const enroll_opts *o)
{
    secrets s = {NULL, NULL, NULL};
    xboot_client *c = NULL;
    int rc = -1;
    xboot_err e = xboot_client_new(&c);
    if (e != XBOOT_OK)
        rc = report_failure(o, &s, NULL, e, "cannot create the client");
    /* Usage errors (exit 2) first: a bad --server must not hide behind a missing file. */
    if (rc < 0)
        rc = configure_options(c, o, &s);
    if (rc < 0)
        rc = read_secrets(o, &s);
    if (rc < 0)
        rc = configure_environment(c, o, &s);
    if (rc < 0)
        rc = o->cacerts != NULL ? cacerts(c, o, &s) : o->renew ? renew(c, o, &s) : enroll(c, o, &s);
    xboot_client_free(c);
    secrets_free(&s);
    return rc;
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
    enroll_opts o;
    memset(&o, 0, sizeof o);
    o.retries = -1;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.help) {
        fputs(usage_text, stdout);
        return finish_output(EXIT_OK);
    }
    if (o.version) {
        puts(PROG " " XBOOT_VERSION);
        return finish_output(EXIT_OK);
    }
    rc = check_options(&o);
    if (rc >= 0)
        return rc;
    return finish_output(run(&o));
}
