#include "listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

static xb_err xb_listen_split(const char *hostport, char *host, size_t hlen, char *port,
                              size_t plen, xb_diag *d)
{
    const char *colon;
    if (hostport[0] == '[') {
        const char *close = strchr(hostport, ']');
        if (close == NULL || close[1] != ':')
            return xb_fail(d, XB_ERR_CONFIG, "'%s': expected [IPv6]:PORT", hostport);
        snprintf(host, hlen, "%.*s", (int)(close - hostport - 1), hostport + 1);
        colon = close + 1;
    } else {
        colon = strrchr(hostport, ':');
        if (colon == NULL)
            return xb_fail(d, XB_ERR_CONFIG, "'%s': expected HOST:PORT", hostport);
        snprintf(host, hlen, "%.*s", (int)(colon - hostport), hostport);
    }
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535)
        return xb_fail(d, XB_ERR_CONFIG, "'%s': the port must be 0..65535", hostport);
    snprintf(port, plen, "%ld", p);
    return XB_OK;
}

static int xb_listen_one(const struct addrinfo *ai, xb_diag *d)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        xb_fail(d, XB_ERR_IO, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Answers go out as small writes (headers, then body, each its own TLS record); with
     * Nagle the second waits for the client's delayed ACK, ~40 ms per answer. Linux copies
     * the option to every accepted socket. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        xb_fail(d, XB_ERR_IO, "cannot listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

xb_err xb_listen_open(const char *hostport, int count, int *fds, char *bound_desc, size_t len,
                      xb_diag *d)
{
    char host[256], port[8];
    xb_err err = xb_listen_split(hostport, host, sizeof host, port, sizeof port, d);
    if (err != XB_OK)
        return err;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0)
        return xb_fail(d, XB_ERR_CONFIG, "'%s': %s", hostport, gai_strerror(rc));
    for (int i = 0; i < count; i++)
        fds[i] = -1;
    for (int i = 0; i < count && err == XB_OK; i++) {
        fds[i] = xb_listen_one(res, d);
        if (fds[i] < 0) {
            err = XB_ERR_IO;
            break;
        }
        if (i == 0) {
            /* After the first bind the port is known (it may have been 0): bind the rest and
             * report the same one. */
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            char addr[INET6_ADDRSTRLEN] = "?";
            getsockname(fds[0], (struct sockaddr *)&ss, &sl);
            int bound_port = 0;
            if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
                inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
                bound_port = ntohs(s6->sin6_port);
                s6 = (struct sockaddr_in6 *)res->ai_addr;
                s6->sin6_port = htons((uint16_t)bound_port);
                snprintf(bound_desc, len, "[%s]:%d", addr, bound_port);
            } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
                inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
                bound_port = ntohs(s4->sin_port);
                s4 = (struct sockaddr_in *)res->ai_addr;
                s4->sin_port = htons((uint16_t)bound_port);
                snprintf(bound_desc, len, "%s:%d", addr, bound_port);
            }
        }
    }
    freeaddrinfo(res);
    if (err != XB_OK) {
        for (int i = 0; i < count; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        if (d != NULL) {
            char why[sizeof d->msg];
            snprintf(why, sizeof why, "%s", d->msg);
            xb_fail(d, err, "%s: %s", hostport, why);
        }
    }
    return err;
}
