/* The client handle's insides, shared by the files of lib/ (never by callers: the public header
 * keeps the struct opaque so fields can change). */
#ifndef XBOOT_LIB_CLIENT_H
#define XBOOT_LIB_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "store.h"
#include "transport.h"
#include "xboot/xboot.h"

struct xboot_client {
    /* configuration */
    char *url; /* the full enrollment URL */
    uint8_t *trust_pem;
    size_t trust_pem_len;
    X509_STORE *trust;
    char *reg_id;
    xbc_rdn rdns[XBC_MAX_RDNS];
    size_t n_rdns;
    xboot_key_type key_type;
    EVP_PKEY *caller_key; /* xboot_set_key: never written to the store */
    char *credential;
    char *api_key;
    long connect_timeout_ms;
    long request_timeout_ms;
    int attempts;
    long backoff_base_ms;
    long backoff_max_ms;
    char *store_dir;
    int pfx;
    char *pfx_password;
    xboot_protocol protocol;
    char *est_label;     /* NULL: none */
    int renew_threshold; /* percent of the lifetime, 1..99 */
    xboot_progress_fn progress;
    void *progress_arg;
    xbt_post_fn post;
    void *post_ctx;
    xbs_step_hook store_hook; /* tests only (xboot__set_store_hook) */

    /* the result of the last xboot_enroll / xboot_load */
    EVP_PKEY *key;
    X509 *cert;
    STACK_OF(X509) * chain;
    int issued;

    /* the last failure */
    xbc_detail detail;
    int http_status;
    char server_code[64];
    char server_message[512];
};

/* Report a progress event to the caller's callback, if any. */
void xbcl_progress(xboot_client *c, xboot_event ev, const char *detail);

/* Forget the last result and the last failure. */
void xbcl_reset_result(xboot_client *c);

/* Tests only: call hook before each file-system step of the store's writes. */
void xboot__set_store_hook(xboot_client *c, xbs_step_hook hook);

#endif
