#include "loop.h"

#include <sys/time.h>

static void xbb_loop_limit(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    int *hit = arg;
    *hit = 1;
}

int xbb_loop_run(struct event_base *base, double seconds)
{
    static int hit; /* one loop at a time: the tool is single-threaded */
    hit = 0;
    /* A timer of our own rather than event_base_loopexit, whose pending exit would outlive an
     * early loopbreak and end the next phase's loop too. */
    struct event *limit = evtimer_new(base, xbb_loop_limit, &hit);
    if (limit == NULL)
        return -1;
    struct timeval tv;
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    evtimer_add(limit, &tv);
    int rc = 0;
    while (!hit && rc == 0) {
        rc = event_base_loop(base, EVLOOP_ONCE);
        if (event_base_got_break(base))
            break;
    }
    event_free(limit);
    return hit ? 1 : rc < 0 ? -1 : 0;
}
