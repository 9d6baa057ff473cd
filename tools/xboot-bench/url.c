#include "url.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int xbb_url_port(const char *s, size_t len, int *port)
{
    if (len == 0 || len > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

int xbb_url_parse(const char *s, xbb_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    const char *rest;
    if (strncasecmp(s, "https://", 8) == 0) {
        u->tls = 1;
        rest = s + 8;
    } else if (strncasecmp(s, "http://", 7) == 0) {
        rest = s + 7;
    } else {
        snprintf(err, errlen, "URL must start with https:// or http://: %s", s);
        return -1;
    }
    size_t auth = strcspn(rest, "/");
    if (rest[auth] != '\0' && strcmp(rest + auth, "/") != 0) {
        snprintf(err, errlen, "URL must not have a path (the API paths are fixed): %s", s);
        return -1;
    }
    const char *host = rest, *port = NULL;
    size_t host_len;
    if (rest[0] == '[') { /* [::1]:port */
        const char *close = memchr(rest, ']', auth);
        if (close == NULL) {
            snprintf(err, errlen, "bad IPv6 literal in URL: %s", s);
            return -1;
        }
        host = rest + 1;
        host_len = (size_t)(close - host);
        if (close + 1 < rest + auth) {
            if (close[1] != ':') {
                snprintf(err, errlen, "bad URL: %s", s);
                return -1;
            }
            port = close + 2;
        }
    } else {
        const char *colon = memchr(rest, ':', auth);
        host_len = colon ? (size_t)(colon - rest) : auth;
        port = colon ? colon + 1 : NULL;
    }
    u->port = u->tls ? 443 : 80;
    if (port != NULL && xbb_url_port(port, (size_t)(rest + auth - port), &u->port) != 0) {
        snprintf(err, errlen, "bad port in URL: %s", s);
        return -1;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)&u->addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&u->addr;
    if ((host_len == 9 && strncmp(host, "127.0.0.1", 9) == 0) ||
        (host_len == 9 && strncasecmp(host, "localhost", 9) == 0)) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((unsigned short)u->port);
        in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        u->addr_len = sizeof *in4;
        u->host_is_ip = host[0] == '1';
        strcpy(u->host, u->host_is_ip ? "127.0.0.1" : "localhost");
    } else if (host_len == 3 && strncmp(host, "::1", 3) == 0) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((unsigned short)u->port);
        in6->sin6_addr = in6addr_loopback;
        u->addr_len = sizeof *in6;
        u->host_is_ip = 1;
        strcpy(u->host, "::1");
    } else {
        snprintf(err, errlen,
                 "refusing host '%.*s': xboot-bench only talks to 127.0.0.1, localhost or [::1]",
                 (int)(host_len > 64 ? 64 : host_len), host);
        return -1;
    }
    snprintf(u->host_header, sizeof u->host_header, "%s%s%s:%d",
             u->addr.ss_family == AF_INET6 ? "[" : "", u->host,
             u->addr.ss_family == AF_INET6 ? "]" : "", u->port);
    return 0;
}
