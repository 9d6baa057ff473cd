#include "server.h"

#include <openssl/err.h>

xb_err xb_tls_ctx_new(const char *cert_path, const char *key_path, SSL_CTX **out, xb_diag *d)
{
    *out = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot create TLS context");
    xb_err err = XB_OK;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        err = xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot set TLS versions");
    else if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1)
        err = xb_fail_ssl(d, XB_ERR_CONFIG, "[server] tls_cert");
    else if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1)
        err = xb_fail_ssl(d, XB_ERR_CONFIG, "[server] tls_key");
    else if (SSL_CTX_check_private_key(ctx) != 1)
        err = xb_fail(d, XB_ERR_CONFIG, "[server] tls_key does not match tls_cert");
    if (err != XB_OK) {
        SSL_CTX_free(ctx);
        return err;
    }
    /* No session tickets: a device enrolls once and renews months later, long after any
     * ticket (two per handshake by default, each encrypted and sent) would have expired, so
     * they cost every handshake and save none. No renegotiation, no compression. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    *out = ctx;
    return XB_OK;
}
