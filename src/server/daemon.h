/* The xbootd process model: a supervisor and one worker process per event loop.
 *
 * The supervisor (main.c, supervisor.c) loads and checks everything once, so a bad
 * configuration fails at start and not in a worker, binds the sockets, forks the workers,
 * restarts one that dies, stops them all on SIGTERM/SIGINT, and on SIGHUP reloads the CA files
 * and, if they load, tells each worker (SIGUSR1) to reload them too (reload.c). Workers (worker.c)
 * each run one libevent loop and handle every request to the end; processes rather than threads
 * because OpenSSL 3.0 loses ~28% per core to lock contention between threads (DESIGN.md section 7).
 */
#ifndef XB_DAEMON_H
#define XB_DAEMON_H

#include <signal.h>
#include <sys/types.h>

#include "server.h"

#define XB_MAX_WORKERS 256

typedef struct xb_daemon {
    xb_config *cfg;
    xb_server srv;
    int workers;
    int https_fds[XB_MAX_WORKERS];
    int http_fds[XB_MAX_WORKERS];
    pid_t pids[XB_MAX_WORKERS];
    sigset_t signals; /* blocked in the supervisor, waited for with sigwaitinfo */
    pid_t supervisor; /* workers compare getppid() with it (the supervisor may be PID 1) */
} xb_daemon;

/* Free what the supervisor loaded (CA, TLS context, configuration); each process calls it. */
void xb_daemon_release(xb_daemon *dm);

/* Run worker index until SIGTERM/SIGINT; returns its exit status. In the forked child. */
int xb_worker_main(xb_daemon *dm, int index);

/* Fork the workers and supervise them until SIGTERM/SIGINT (SIGHUP: reload the CA); returns
 * the exit status. */
int xb_supervise(xb_daemon *dm);

#endif
