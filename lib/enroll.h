/* The pieces of enrollment shared by xboot_enroll (enroll.c), EST (est_client.c) and renewal
 * (renew.c): the state being built, reading and writing the store, and the EST request. One
 * copy of each, so every path checks and stores certificates the same way. */
#ifndef XBOOT_LIB_ENROLL_H
#define XBOOT_LIB_ENROLL_H

#include "client.h"

/* An enrollment in progress: what is built before it replaces the handle's result. */
typedef struct xben_state {
    EVP_PKEY *key;
    X509 *cert;
    STACK_OF(X509) * chain;
} xben_state;

void xben_state_free(xben_state *s);
/* Move s into the handle's result. */
void xben_adopt(xboot_client *c, xben_state *s, int issued);
/* XBOOT_ERR_NOT_CONFIGURED (with the detail) unless URL (when need_url), trust anchor and
 * registration ID are set. */
xboot_err xben_require_config(xboot_client *c, int need_url);
/* Read key (or take the caller's), certificate and chain of the store's current generation. */
xboot_err xben_read_stored(xboot_client *c, xben_state *s);
/* The caller's key, or a new one of the configured type. */
xboot_err xben_new_key(xboot_client *c, xben_state *s);
/* Write s as the store's new generation (the caller holds the lock). */
xboot_err xben_store(xboot_client *c, const xben_state *s);
/* How long to wait for the store's lock: as long as one enrollment can take. */
long xben_lock_wait_ms(const xboot_client *c);

/* EST: fetch cacerts (the chain), build a CSR for s->key (subject: `subject` when not NULL,
 * else the configured attributes and CN = registration ID), POST it to `op`
 * ("simpleenroll", "simplereenroll") authenticated with HTTP Basic (the credential, if any)
 * or, when identity is not NULL, with that TLS client identity, and fill s->cert and
 * s->chain. Nothing is checked here beyond the format. */
xboot_err xben_est_request(xboot_client *c, xben_state *s, const char *op, const X509_NAME *subject,
                           const xben_state *identity);

#endif
