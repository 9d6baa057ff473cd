/* The device's TLS client context from the objects libxboot holds: client credentials, the
 * broker's trust anchor and host name check, and readable reasons for a rejected broker. */
#include "tls_context.h"

#include <arpa/inet.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

static void print_openssl_errors(const char *what)
{
    unsigned long err = ERR_get_error();
    char buf[256] = "unknown error";
    if (err != 0)
        ERR_error_string_n(err, buf, sizeof(buf));
    fprintf(stderr, "%s: %s\n", what, buf);
    ERR_clear_error();
}

/* The client certificate chain: every chain certificate but a self-signed root (the broker
 * has the root; sending it only costs bytes). */
static int add_chain(SSL_CTX *ctx, STACK_OF(X509) * chain)
{
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
        X509 *ca = sk_X509_value(chain, i);
        if (X509_self_signed(ca, 0) == 1)
            continue;
        if (SSL_CTX_add1_chain_cert(ctx, ca) != 1)
            return -1;
    }
    return 0;
}

/* Check the broker's certificate names the host we connect to: an IP literal must be in an
 * iPAddress SAN, a name in a dNSName SAN. Without this, any certificate from the CA would do. */
static int set_peer_name(SSL_CTX *ctx, const char *host)
{
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
    unsigned char addr[16];
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1 ? 0 : -1;
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return X509_VERIFY_PARAM_set1_host(param, host, 0) == 1 ? 0 : -1;
}

/* Say why the broker's certificate was rejected ("hostname mismatch", "unable to get local
 * issuer certificate"): libmosquitto only reports "certificate verify failed". The verdict is
 * OpenSSL's; this only adds the words. */
static int on_verify(int ok, X509_STORE_CTX *store)
{
    if (!ok) {
        char subject[256] = "";
        X509 *cert = X509_STORE_CTX_get_current_cert(store);
        if (cert != NULL)
            X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
        int err = X509_STORE_CTX_get_error(store);
        fprintf(stderr, "Broker certificate rejected: %s (depth %d, %s)\n",
                X509_verify_cert_error_string(err), X509_STORE_CTX_get_error_depth(store), subject);
    }
    return ok;
}

/* libmosquitto is told not to touch the context (MOSQ_OPT_SSL_CTX_WITH_DEFAULTS 0), so
 * everything secure is set here. */
SSL_CTX *tls_context_new(const xboot_client *xc, const char *ca_file, const char *host)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        print_openssl_errors("TLS context");
        return NULL;
    }
    const char *step = NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        step = "TLS version";
    else if (SSL_CTX_use_certificate(ctx, xboot_certificate(xc)) != 1)
        step = "device certificate";
    else if (SSL_CTX_use_PrivateKey(ctx, xboot_key(xc)) != 1)
        step = "device key";
    else if (SSL_CTX_check_private_key(ctx) != 1)
        step = "device key and certificate";
    else if (add_chain(ctx, xboot_chain(xc)) != 0)
        step = "certificate chain";
    else if (SSL_CTX_load_verify_file(ctx, ca_file) != 1)
        step = ca_file;
    else if (set_peer_name(ctx, host) != 0)
        step = "broker host name";
    if (step != NULL) {
        print_openssl_errors(step);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, on_verify);
    return ctx;
}
