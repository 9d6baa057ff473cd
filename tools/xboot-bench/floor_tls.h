/* The server side of one full TLS 1.3 handshake (X25519, no resumption), done in memory: a
 * client SSL and a server SSL joined by a BIO pair on this thread, only the server's calls
 * timed (SSL_new, the handshake steps, SSL_free). Kernel and network costs are not included. */
#ifndef XBB_FLOOR_TLS_H
#define XBB_FLOOR_TLS_H

#include <stddef.h>

#include "floor_crypto.h"

/* n handshakes with the server certificate chain and key in PEM files. 0, or -1 with a
 * message. */
int xbb_floor_handshake(const char *cert_pem, const char *key_pem, size_t n, xbb_cost *out,
                        char *err, size_t errlen);

#endif
