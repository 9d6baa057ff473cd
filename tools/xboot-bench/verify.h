/* Full verification of the sampled certificates: X509_verify_cert against the trust anchors,
 * with the chain the answer carried plus --untrusted, for the sslclient purpose (what a TLS
 * server checking the device will do). Run after the timed window so it costs no throughput. */
#ifndef XBB_VERIFY_H
#define XBB_VERIFY_H

#include <stddef.h>

#include "sample.h"

typedef struct xbb_verify_result {
    size_t verified;
    size_t failures;
} xbb_verify_result;

/* untrusted_pem may be NULL. Failures are described on stderr (the first few). 0, or -1 with a
 * message in err if the trust or untrusted files cannot be loaded. */
int xbb_verify_samples(const xbb_sampler *sm, const char *trust_pem, const char *untrusted_pem,
                       xbb_verify_result *out, char *err, size_t errlen);

#endif
