/* xboot-bench: the load generator and crypto-floor meter of XBoot (docs/xboot-bench.md).
 *
 *   xboot-bench enroll --url https://127.0.0.1:PORT --trust root.pem [...]
 *   xboot-bench floor --ca-cert signing-ca.pem --ca-key signing-ca.key [...]
 *
 * Exit status: 0 success, 1 failure (enroll: any error or unverified sample), 2 usage error. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "enroll.h"
#include "floor.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        xbb_usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        xbb_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "enroll") == 0)
        return xbb_enroll_main(argc - 1, argv + 1);
    if (strcmp(cmd, "floor") == 0)
        return xbb_floor_main(argc - 1, argv + 1);
    fprintf(stderr, "xboot-bench: unknown command '%s' (enroll or floor; --help)\n", cmd);
    return 2;
}
