#include "tls_client.h"

#include <stdio.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

SSL_CTX *xbb_tls_client_ctx(const char *trust_pem, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        snprintf(err, errlen, "cannot create the client TLS context");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_load_verify_locations(ctx, trust_pem, NULL) != 1) {
        snprintf(err, errlen, "cannot load trust anchors from %s: %s", trust_pem,
                 ERR_reason_error_string(ERR_peek_last_error()));
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* No resumption: no client session cache, no TLS 1.2 ticket extension, and we never call
     * SSL_set_session, so a TLS 1.3 ticket the server sends is read and dropped. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    return ctx;
}

SSL *xbb_tls_client_ssl(SSL_CTX *ctx, const xbb_url *u)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL)
        return NULL;
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    int ok = u->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, u->host)
                           : X509_VERIFY_PARAM_set1_host(param, u->host, 0) &&
                                 SSL_set_tlsext_host_name(ssl, u->host);
    if (!ok) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    return ssl;
}
