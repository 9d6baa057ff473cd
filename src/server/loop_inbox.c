#include "loop_inbox.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "xb_log.h"

void xb_job_list_append(xb_job_list *l, xb_job_link *first, xb_job_link *last)
{
    if (l->tail != NULL)
        l->tail->next = first;
    else
        l->head = first;
    l->tail = last;
}

xb_job_link *xb_job_list_take(xb_job_list *l)
{
    xb_job_link *first = l->head;
    l->head = l->tail = NULL;
    return first;
}

/* Hand a chain to deliver(), unlinking each job first: the callee may free it or queue it
 * again. */
static void xb_loop_inbox_hand(xb_loop_inbox *ib, xb_job_link *j, int delivered)
{
    while (j != NULL) {
        xb_job_link *next = j->next;
        j->next = NULL;
        ib->deliver(j, delivered);
        j = next;
    }
}

/* Loop side: the helper posted something. */
static void xb_loop_inbox_on_post(evutil_socket_t fd, short events, void *arg)
{
    (void)events;
    xb_loop_inbox *ib = arg;
    uint64_t count;
    if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN)
        xb_error("%s: cannot read the wake-up counter: %s", ib->owner, strerror(errno));
    pthread_mutex_lock(&ib->lock);
    xb_job_link *j = xb_job_list_take(&ib->jobs);
    pthread_mutex_unlock(&ib->lock);
    xb_loop_inbox_hand(ib, j, 1);
}

xb_err xb_loop_inbox_init(xb_loop_inbox *ib, struct event_base *base, const char *owner,
                          xb_loop_deliver_fn deliver, xb_diag *d)
{
    memset(ib, 0, sizeof *ib);
    ib->owner = owner;
    ib->deliver = deliver;
    if (pthread_mutex_init(&ib->lock, NULL) != 0)
        return xb_fail(d, XB_ERR_INTERNAL, "%s: cannot create the inbox lock", owner);
    ib->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ib->efd < 0) {
        int e = errno;
        pthread_mutex_destroy(&ib->lock);
        return xb_fail(d, XB_ERR_INTERNAL, "%s: eventfd: %s", owner, strerror(e));
    }
    ib->on_post = event_new(base, ib->efd, EV_READ | EV_PERSIST, xb_loop_inbox_on_post, ib);
    if (ib->on_post == NULL || event_add(ib->on_post, NULL) != 0) {
        if (ib->on_post != NULL)
            event_free(ib->on_post);
        close(ib->efd);
        pthread_mutex_destroy(&ib->lock);
        return xb_fail(d, XB_ERR_NOMEM, "%s: cannot watch the helper thread", owner);
    }
    return XB_OK;
}

void xb_loop_inbox_post(xb_loop_inbox *ib, xb_job_link *first, xb_job_link *last)
{
    last->next = NULL;
    pthread_mutex_lock(&ib->lock);
    xb_job_list_append(&ib->jobs, first, last);
    uint64_t one = 1;
    /* An eventfd counter cannot overflow at this rate; a failed write would only delay
     * delivery to the next post, which writes again. */
    if (write(ib->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        xb_error("%s: cannot wake the event loop: %s", ib->owner, strerror(errno));
    pthread_mutex_unlock(&ib->lock);
}

void xb_loop_inbox_close(xb_loop_inbox *ib)
{
    pthread_mutex_lock(&ib->lock);
    xb_job_link *j = xb_job_list_take(&ib->jobs);
    pthread_mutex_unlock(&ib->lock);
    xb_loop_inbox_hand(ib, j, 0);
    event_free(ib->on_post);
    ib->on_post = NULL;
    close(ib->efd);
    ib->efd = -1;
    pthread_mutex_destroy(&ib->lock);
}
