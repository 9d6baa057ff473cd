/* The device's TLS client context, built from the key, certificate and chain libxboot holds in
 * memory: no key file is needed, so a key in a TPM or a PKCS#11 token works the same way. */
#ifndef SAMPLE_DEVICE_TLS_CONTEXT_H
#define SAMPLE_DEVICE_TLS_CONTEXT_H

#include <openssl/ssl.h>

#include "xboot/xboot.h"

/* A client SSL_CTX (TLS 1.2 or later) presenting xc's key, certificate and chain (without a
 * self-signed root), trusting only the certificates in ca_file and accepting only a broker
 * certificate that names host (an IP address or a DNS name). Complete on its own: it needs no
 * defaults from libmosquitto. NULL on failure, with OpenSSL's reason printed on stderr. The
 * caller frees it with SSL_CTX_free; xc's objects are referenced, not taken. */
SSL_CTX *tls_context_new(const xboot_client *xc, const char *ca_file, const char *host);

#endif
