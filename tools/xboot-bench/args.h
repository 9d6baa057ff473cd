/* Command-line options of the two subcommands, parsed and checked before anything runs. A
 * usage error is reported on stderr and makes the tool exit with status 2. */
#ifndef XBB_ARGS_H
#define XBB_ARGS_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "api.h"
#include "pool.h"
#include "url.h"

typedef struct xbb_enroll_opts {
    xbb_url url;
    xbb_api api;
    const char *api_key;
    int new_conn;
    int concurrency;
    size_t count;
    double duration_s;
    size_t warmup;
    const char *trust;
    const char *untrusted;
    xbb_key_type key_type;
    char id_prefix[XB_REGID_MAX + 1];
    const char *register_url;
    size_t verify_sample;
    pid_t cpu_pid; /* 0: not measured */
    size_t idle;
    double timeout_s;
    int json;
} xbb_enroll_opts;

typedef struct xbb_floor_opts {
    const char *ca_cert, *ca_key;
    const char *tls_cert, *tls_key;
    size_t count;
    xbb_key_type key_type;
    int json;
} xbb_floor_opts;

enum { XBB_ARGS_OK = 0, XBB_ARGS_HELP = 1, XBB_ARGS_USAGE = 2 };

/* argv[0] is the subcommand name. XBB_ARGS_OK, XBB_ARGS_HELP (usage printed on stdout) or
 * XBB_ARGS_USAGE (message on stderr). */
int xbb_args_enroll(int argc, char **argv, xbb_enroll_opts *o);
int xbb_args_floor(int argc, char **argv, xbb_floor_opts *o);

void xbb_usage(FILE *f);

#endif
