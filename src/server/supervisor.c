/* The xbootd supervisor: starts the workers, restarts one that dies, stops them all. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "xb_log.h"

#define XB_STOP_GRACE_SECONDS 10
#define XB_RESTARTS_PER_MINUTE 20

static pid_t xb_spawn_worker(xb_daemon *dm, int index)
{
    pid_t pid = fork();
    if (pid == 0) {
        int rc = xb_worker_main(dm, index);
        fflush(NULL);
        _exit(rc);
    }
    if (pid < 0)
        xb_error("fork: %s", strerror(errno));
    return pid;
}

static void xb_stop_workers(xb_daemon *dm)
{
    for (int i = 0; i < dm->workers; i++)
        if (dm->pids[i] > 0)
            kill(dm->pids[i], SIGTERM);
    time_t deadline = time(NULL) + XB_STOP_GRACE_SECONDS;
    int alive = dm->workers;
    while (alive > 0) {
        alive = 0;
        for (int i = 0; i < dm->workers; i++) {
            if (dm->pids[i] > 0 && waitpid(dm->pids[i], NULL, WNOHANG) == dm->pids[i])
                dm->pids[i] = 0;
            if (dm->pids[i] > 0)
                alive++;
        }
        if (alive == 0)
            break;
        if (time(NULL) >= deadline) {
            for (int i = 0; i < dm->workers; i++)
                if (dm->pids[i] > 0) {
                    xb_warn("worker pid %ld did not stop in %d s; killing it", (long)dm->pids[i],
                            XB_STOP_GRACE_SECONDS);
                    kill(dm->pids[i], SIGKILL);
                    waitpid(dm->pids[i], NULL, 0);
                    dm->pids[i] = 0;
                }
            break;
        }
        struct timespec tick = {0, 50 * 1000 * 1000};
        sigtimedwait(&dm->signals, NULL, &tick);
    }
}

/* Reap dead workers and start replacements. Returns -1 when workers die too often to go on. */
static int xb_reap_and_restart(xb_daemon *dm, time_t *window_start, int *restarts)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < dm->workers; i++) {
            if (dm->pids[i] != pid)
                continue;
            if (WIFSIGNALED(status))
                xb_error("worker %d (pid %ld) killed by signal %d; restarting", i, (long)pid,
                         WTERMSIG(status));
            else
                xb_error("worker %d (pid %ld) exited with status %d; restarting", i, (long)pid,
                         WEXITSTATUS(status));
            time_t now = time(NULL);
            if (now - *window_start >= 60) {
                *window_start = now;
                *restarts = 0;
            }
            if (++*restarts > XB_RESTARTS_PER_MINUTE) {
                xb_error("workers die too often (%d restarts in a minute); stopping", *restarts);
                dm->pids[i] = 0;
                return -1;
            }
            dm->pids[i] = xb_spawn_worker(dm, i);
        }
    }
    return 0;
}

/* SIGHUP: the CA files are loaded and checked here first, so that a bad rotation is refused
 * once, with its reason, and no worker changes. The supervisor keeps the new CA too: a worker
 * restarted later forks with it. */
static void xb_reload(xb_daemon *dm)
{
    xb_info("SIGHUP: reloading the CA ([ca] cert, key, chain); other settings need a restart");
    xb_diag d = {""};
    xb_err err = xb_server_reload_ca(&dm->srv, "supervisor", &d);
    if (err != XB_OK) {
        xb_error("reload failed, still serving with the old CA: %s", xb_diag_message(&d, err));
        return;
    }
    for (int i = 0; i < dm->workers; i++)
        if (dm->pids[i] > 0)
            kill(dm->pids[i], SIGUSR1);
}

int xb_supervise(xb_daemon *dm)
{
    for (int i = 0; i < dm->workers; i++) {
        dm->pids[i] = xb_spawn_worker(dm, i);
        if (dm->pids[i] < 0) {
            xb_stop_workers(dm);
            return 1;
        }
    }
    time_t window_start = time(NULL);
    int restarts = 0, rc = 0;
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&dm->signals, &info);
        if (sig == SIGCHLD) {
            if (xb_reap_and_restart(dm, &window_start, &restarts) != 0) {
                rc = 1;
                break;
            }
        } else if (sig == SIGTERM || sig == SIGINT) {
            xb_info("stopping on signal %d", sig);
            break;
        } else if (sig == SIGHUP) {
            xb_reload(dm);
        }
    }
    xb_stop_workers(dm);
    xb_info("stopped");
    return rc;
}
