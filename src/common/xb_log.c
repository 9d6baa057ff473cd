#include "xb_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *xb_log_prog = "xboot";
static xb_log_level xb_log_min = XB_LOG_INFO;
static const char *const xb_log_names[] = {"debug", "info", "warn", "error"};

/* The PID on every line, without a getpid() system call per line (a VM exit here): cached,
 * and refreshed in the child of every fork. */
static long xb_log_pid;

static void xb_log_refresh_pid(void)
{
    xb_log_pid = (long)getpid();
}

static void xb_log_register_fork(void)
{
    pthread_atfork(NULL, NULL, xb_log_refresh_pid);
}

void xb_log_init(const char *prog, xb_log_level min_level)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    xb_log_prog = prog;
    xb_log_min = min_level;
    xb_log_refresh_pid();
    if (pthread_once(&once, xb_log_register_fork) != 0)
        xb_log_pid = 0;
}

int xb_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, xb_log_names[i]) == 0)
            return i;
    return -1;
}

void xb_log(xb_log_level level, const char *fmt, ...)
{
    if (level < xb_log_min)
        return;
    struct timeval tv;
    struct tm tm;
    char ts[32], line[2048];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    int n = snprintf(line, sizeof line, "%s.%03ldZ %s %s[%ld] ", ts, (long)(tv.tv_usec / 1000),
                     xb_log_names[level], xb_log_prog, xb_log_pid ? xb_log_pid : (long)getpid());
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so that lines of several worker processes never interleave. */
    size_t len = strlen(line);
    if (len < sizeof line - 1) {
        line[len++] = '\n';
    } else {
        line[sizeof line - 2] = '\n';
        len = sizeof line - 1;
    }
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
