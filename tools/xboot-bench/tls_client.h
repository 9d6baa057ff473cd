/* The client TLS context: one per run (never one per request), the server certificate always
 * verified against --trust with the URL's host or IP checked, and no session resumption, so
 * that in --new-connection mode every connection pays for a full handshake as a fleet of
 * first-time devices would. */
#ifndef XBB_TLS_CLIENT_H
#define XBB_TLS_CLIENT_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "url.h"

/* NULL with a message in err on failure. */
SSL_CTX *xbb_tls_client_ctx(const char *trust_pem, char *err, size_t errlen);

/* A fresh SSL for one connection to u, host/IP check and SNI set. NULL on failure. */
SSL *xbb_tls_client_ssl(SSL_CTX *ctx, const xbb_url *u);

#endif
