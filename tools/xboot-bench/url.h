/* The target URL. The benchmark only ever talks to this machine: any host other than
 * 127.0.0.1, localhost or [::1] is refused, and "localhost" is never looked up in DNS. */
#ifndef XBB_URL_H
#define XBB_URL_H

#include <stddef.h>
#include <sys/socket.h>

typedef struct xbb_url {
    int tls;              /* https */
    int host_is_ip;       /* 127.0.0.1 or ::1: checked as an IP SAN; else a DNS name */
    char host[16];        /* "127.0.0.1", "::1" or "localhost" */
    char host_header[32]; /* host[:port] as the Host header writes it */
    int port;
    struct sockaddr_storage addr;
    socklen_t addr_len;
} xbb_url;

/* 0, or -1 with a message in err. Accepts scheme://host[:port][/]. */
int xbb_url_parse(const char *s, xbb_url *u, char *err, size_t errlen);

#endif
