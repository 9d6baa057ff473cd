/* Listening sockets for the workers: one per worker and address, all bound to the same port
 * with SO_REUSEPORT so the kernel spreads connections over the workers (the nginx model). */
#ifndef XB_LISTEN_H
#define XB_LISTEN_H

#include "xb_error.h"

/* Bind count sockets to "HOST:PORT" or "[V6]:PORT". Port 0 picks a free port once and binds
 * all sockets to it. fds[] receives the sockets; bound_desc receives "HOST:PORT" as bound. */
xb_err xb_listen_open(const char *hostport, int count, int *fds, char *bound_desc, size_t len,
                      xb_diag *d);

#endif
