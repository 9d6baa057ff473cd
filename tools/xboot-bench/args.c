#include "args.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "xboot-bench"

static const char usage_text[] =
    "Usage: " PROG " enroll --url URL [OPTIONS]\n"
    "       " PROG " floor --ca-cert PEM --ca-key PEM [OPTIONS]\n"
    "\n"
    "enroll: a bounded load generator for the enrollment API, on 127.0.0.1 only.\n"
    "  --url URL               https://127.0.0.1:PORT or http://... (localhost, [::1] too)\n"
    "  --protocol xboot|est|cfssl\n"
    "                          POST /api/certificate (default), EST simpleenroll with HTTP\n"
    "                          Basic (xbootd in open mode), or /api/v1/cfssl/sign\n"
    "  --api P                 the same as --protocol (its first name)\n"
    "  --api-key K             x-functions-key header (xboot only)\n"
    "  --reuse-connection      keep-alive connections, one per concurrent request (default)\n"
    "  --new-connection        a new TCP connection and full TLS handshake per enrollment\n"
    "  --concurrency N         requests in flight at once (default 8)\n"
    "  --count N               enrollments in the timed window (default 1000)\n"
    "  --duration S            hard time limit of the timed window, seconds (default 60)\n"
    "  --warmup N              enrollments before the timed window, not counted (default 0)\n"
    "  --timeout S             per-request time limit, seconds (default 30)\n"
    "  --trust PEM             trust anchors for the server's TLS certificate and for the\n"
    "                          issued certificates (required for https and for sampling)\n"
    "  --untrusted PEM         intermediates for verifying issued certificates\n"
    "  --key-type T            device keys: ec-p256 (default), ec-p384, rsa-2048, rsa-3072,\n"
    "                          rsa-4096\n"
    "  --id-prefix P           registration IDs are P-0, P-1, ... (default bench-PID-TIME)\n"
    "  --register sqlite:PATH  add the IDs to this registry before the run\n"
    "  --verify-sample N       fully verify N random issued certificates (default 50)\n"
    "  --cpu-pid PID           report the CPU and memory of PID and its descendants\n"
    "  --idle-connections N    hold N silent connections open during the run (default 0)\n"
    "  --json                  one JSON object on one line instead of the report\n"
    "\n"
    "floor: the crypto cost per enrollment, measured in-process on one thread.\n"
    "  --ca-cert PEM --ca-key PEM   the signing CA (as xbootd's [ca] cert and key)\n"
    "  --tls-cert PEM --tls-key PEM also measure a server-side TLS 1.3 handshake\n"
    "  --count N               CSRs in the pool (default 2000)\n"
    "  --key-type T            device keys, as for enroll (default ec-p256)\n"
    "  --json                  one JSON object on one line\n"
    "\n"
    "Exit status: 0 success (enroll: every timed enrollment ok and every sampled certificate\n"
    "verified), 1 failure, 2 usage error. See docs/xboot-bench.md.\n";

void xbb_usage(FILE *f)
{
    fputs(usage_text, f);
}

/* Report a usage error; returns XBB_ARGS_USAGE so callers can `return xbb_bad(...)`. */
__attribute__((format(printf, 1, 2))) static int xbb_bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(try " PROG " --help)\n");
    va_end(ap);
    return XBB_ARGS_USAGE;
}

static int xbb_size_arg(const char *name, const char *s, size_t min, size_t max, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, PROG ": %s must be an integer in %zu..%zu, not '%s'\n", name, min, max, s);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static int xbb_seconds_arg(const char *name, const char *s, double min, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < min || v > max) {
        fprintf(stderr, PROG ": %s must be seconds in %g..%g, not '%s'\n", name, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* A header value we put on the wire verbatim: printable ASCII, no spaces. */
static int xbb_token_ok(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s > '~')
            return 0;
    return 1;
}

enum {
    O_URL = 1000,
    O_API,
    O_API_KEY,
    O_REUSE,
    O_NEW,
    O_CONCURRENCY,
    O_COUNT,
    O_DURATION,
    O_WARMUP,
    O_TIMEOUT,
    O_TRUST,
    O_UNTRUSTED,
    O_KEY_TYPE,
    O_ID_PREFIX,
    O_REGISTER,
    O_VERIFY_SAMPLE,
    O_CPU_PID,
    O_IDLE,
    O_JSON,
    O_CA_CERT,
    O_CA_KEY,
    O_TLS_CERT,
    O_TLS_KEY,
};

static const struct option enroll_longopts[] = {
    {"url", required_argument, NULL, O_URL},
    {"api", required_argument, NULL, O_API},
    {"protocol", required_argument, NULL, O_API},
    {"api-key", required_argument, NULL, O_API_KEY},
    {"reuse-connection", no_argument, NULL, O_REUSE},
    {"new-connection", no_argument, NULL, O_NEW},
    {"concurrency", required_argument, NULL, O_CONCURRENCY},
    {"count", required_argument, NULL, O_COUNT},
    {"duration", required_argument, NULL, O_DURATION},
    {"warmup", required_argument, NULL, O_WARMUP},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"trust", required_argument, NULL, O_TRUST},
    {"untrusted", required_argument, NULL, O_UNTRUSTED},
    {"key-type", required_argument, NULL, O_KEY_TYPE},
    {"id-prefix", required_argument, NULL, O_ID_PREFIX},
    {"register", required_argument, NULL, O_REGISTER},
    {"verify-sample", required_argument, NULL, O_VERIFY_SAMPLE},
    {"cpu-pid", required_argument, NULL, O_CPU_PID},
    {"idle-connections", required_argument, NULL, O_IDLE},
    {"json", no_argument, NULL, O_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Options shared by both subcommands are handled here; 1 if handled, -1 on a bad value. */
static int xbb_common_opt(int opt, xbb_key_type *kt, int *json)
{
    if (opt == O_KEY_TYPE) {
        if (xbb_key_type_parse(optarg, kt) != 0) {
            xbb_bad("unknown --key-type '%s' (ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096)",
                    optarg);
            return -1;
        }
        return 1;
    }
    if (opt == O_JSON) {
        *json = 1;
        return 1;
    }
    return 0;
}

/* One enroll option; 0, or non-zero after reporting a bad value. */
static int xbb_enroll_opt(int opt, xbb_enroll_opts *o, const char **url, const char **prefix,
                          int *mode_given)
{
    size_t n = 0;
    int c = xbb_common_opt(opt, &o->key_type, &o->json);
    if (c != 0)
        return c < 0 ? -1 : 0;
    switch (opt) {
    case O_URL:
        *url = optarg;
        return 0;
    case O_API:
        if (xbb_api_parse(optarg, &o->api) != 0)
            return xbb_bad("--protocol must be xboot, est or cfssl, not '%s'", optarg);
        return 0;
    case O_API_KEY:
        o->api_key = optarg;
        if (!xbb_token_ok(optarg))
            return xbb_bad("--api-key must be printable ASCII without spaces");
        return 0;
    case O_REUSE:
    case O_NEW:
        if (*mode_given && o->new_conn != (opt == O_NEW))
            return xbb_bad("--reuse-connection and --new-connection exclude each other");
        *mode_given = 1;
        o->new_conn = opt == O_NEW;
        return 0;
    case O_CONCURRENCY:
        if (xbb_size_arg("--concurrency", optarg, 1, 10000, &n) != 0)
            return -1;
        o->concurrency = (int)n;
        return 0;
    case O_COUNT:
        return xbb_size_arg("--count", optarg, 1, 10000000, &o->count);
    case O_WARMUP:
        return xbb_size_arg("--warmup", optarg, 0, 10000000, &o->warmup);
    case O_DURATION:
        return xbb_seconds_arg("--duration", optarg, 0.01, 86400, &o->duration_s);
    case O_TIMEOUT:
        return xbb_seconds_arg("--timeout", optarg, 0.01, 3600, &o->timeout_s);
    case O_TRUST:
        o->trust = optarg;
        return 0;
    case O_UNTRUSTED:
        o->untrusted = optarg;
        return 0;
    case O_ID_PREFIX:
        *prefix = optarg;
        return 0;
    case O_REGISTER:
        o->register_url = optarg;
        return 0;
    case O_VERIFY_SAMPLE:
        return xbb_size_arg("--verify-sample", optarg, 0, 1000000, &o->verify_sample);
    case O_CPU_PID:
        if (xbb_size_arg("--cpu-pid", optarg, 1, 1 << 30, &n) != 0)
            return -1;
        o->cpu_pid = (pid_t)n;
        return 0;
    case O_IDLE:
        return xbb_size_arg("--idle-connections", optarg, 0, 1000000, &o->idle);
    default:
        return -1;
    }
}

/* Cross-checks once every option is known. */
static int xbb_enroll_check(xbb_enroll_opts *o, const char *url, const char *prefix)
{
    char err[256];
    if (url == NULL)
        return xbb_bad("enroll needs --url");
    if (xbb_url_parse(url, &o->url, err, sizeof err) != 0)
        return xbb_bad("%s", err);
    if (o->url.tls && o->trust == NULL)
        return xbb_bad("https needs --trust ROOT.pem (the server's certificate is always "
                       "verified)");
    if (o->verify_sample > 0 && o->trust == NULL)
        return xbb_bad("--verify-sample needs --trust (or pass --verify-sample 0)");
    if (o->api_key != NULL && o->api != XBB_API_XBOOT)
        return xbb_bad("--api-key applies to --api xboot only");
    if (prefix == NULL) {
        snprintf(o->id_prefix, sizeof o->id_prefix, "bench-%ld-%lld", (long)getpid(),
                 (long long)time(NULL));
    } else if (strlen(prefix) >= sizeof o->id_prefix) {
        return xbb_bad("--id-prefix is too long");
    } else {
        snprintf(o->id_prefix, sizeof o->id_prefix, "%s", prefix);
    }
    /* The longest ID must be a valid registration ID and fit a CN (X.520: 64 characters). */
    char longest[XB_REGID_MAX + 32];
    snprintf(longest, sizeof longest, "%s-%zu", o->id_prefix, o->count + o->warmup - 1);
    if (strlen(longest) > 64 || !xb_regid_valid(longest, strlen(longest)))
        return xbb_bad("registration IDs like '%s' are not valid (at most 64 characters of "
                       "[A-Za-z0-9-._:])",
                       longest);
    return XBB_ARGS_OK;
}

int xbb_args_enroll(int argc, char **argv, xbb_enroll_opts *o)
{
    memset(o, 0, sizeof *o);
    o->api = XBB_API_XBOOT;
    o->concurrency = 8;
    o->count = 1000;
    o->duration_s = 60;
    o->timeout_s = 30;
    o->key_type = XBB_KEY_EC_P256;
    o->verify_sample = 50;
    const char *url = NULL, *prefix = NULL;
    int mode_given = 0, opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", enroll_longopts, NULL)) != -1) {
        if (opt == 'h') {
            xbb_usage(stdout);
            return XBB_ARGS_HELP;
        }
        if (opt == '?')
            return xbb_bad("unknown or incomplete option '%s'", argv[optind - 1]);
        if (xbb_enroll_opt(opt, o, &url, &prefix, &mode_given) != 0)
            return XBB_ARGS_USAGE;
    }
    if (optind < argc)
        return xbb_bad("unexpected argument '%s'", argv[optind]);
    return xbb_enroll_check(o, url, prefix);
}

static const struct option floor_longopts[] = {
    {"ca-cert", required_argument, NULL, O_CA_CERT},
    {"ca-key", required_argument, NULL, O_CA_KEY},
    {"tls-cert", required_argument, NULL, O_TLS_CERT},
    {"tls-key", required_argument, NULL, O_TLS_KEY},
    {"count", required_argument, NULL, O_COUNT},
    {"key-type", required_argument, NULL, O_KEY_TYPE},
    {"json", no_argument, NULL, O_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int xbb_args_floor(int argc, char **argv, xbb_floor_opts *o)
{
    memset(o, 0, sizeof *o);
    o->count = 2000;
    o->key_type = XBB_KEY_EC_P256;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", floor_longopts, NULL)) != -1) {
        int c = xbb_common_opt(opt, &o->key_type, &o->json);
        if (c < 0)
            return XBB_ARGS_USAGE;
        if (c > 0)
            continue;
        switch (opt) {
        case 'h':
            xbb_usage(stdout);
            return XBB_ARGS_HELP;
        case O_CA_CERT:
            o->ca_cert = optarg;
            break;
        case O_CA_KEY:
            o->ca_key = optarg;
            break;
        case O_TLS_CERT:
            o->tls_cert = optarg;
            break;
        case O_TLS_KEY:
            o->tls_key = optarg;
            break;
        case O_COUNT:
            if (xbb_size_arg("--count", optarg, 1, 1000000, &o->count) != 0)
                return XBB_ARGS_USAGE;
            break;
        default:
            return xbb_bad("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return xbb_bad("unexpected argument '%s'", argv[optind]);
    if (o->ca_cert == NULL || o->ca_key == NULL)
        return xbb_bad("floor needs --ca-cert and --ca-key");
    if ((o->tls_cert == NULL) != (o->tls_key == NULL))
        return xbb_bad("--tls-cert and --tls-key go together");
    return XBB_ARGS_OK;
}
