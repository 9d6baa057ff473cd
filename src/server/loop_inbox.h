/* Jobs handed from a worker's helper thread back to its event loop.
 *
 * A worker's helper threads (group commit, validation webhook) finish jobs that belong to the
 * event loop thread: their owners (an HTTP request being answered) may only be touched there.
 * The thread posts finished jobs to an inbox and bumps an eventfd; an event on the loop's
 * event_base reads it and hands each job to the inbox's deliver function, on the loop thread.
 * Jobs are intrusive: the caller embeds an xb_job_link, so posting never allocates. */
#ifndef XB_LOOP_INBOX_H
#define XB_LOOP_INBOX_H

#include <pthread.h>
#include <stddef.h>

#include <event2/event.h>

#include "xb_error.h"

typedef struct xb_job_link {
    struct xb_job_link *next;
} xb_job_link;

/* The job that embeds link as member (offsetof-based, like the kernel's container_of). */
#define XB_JOB_OF(link, type, member) ((type *)(void *)((char *)(link)-offsetof(type, member)))

/* A FIFO of links, for the inbox and for the helper threads' own queues. */
typedef struct xb_job_list {
    xb_job_link *head, *tail;
} xb_job_list;

/* Append the chain first..last (already linked, last->next NULL). */
void xb_job_list_append(xb_job_list *l, xb_job_link *first, xb_job_link *last);
/* Take the whole list (its first link, or NULL); the list is empty afterwards. */
xb_job_link *xb_job_list_take(xb_job_list *l);

/* Called on the loop thread with each posted job, in order. delivered == 0: the loop has
 * stopped (xb_loop_inbox_close), release the job without answering. */
typedef void (*xb_loop_deliver_fn)(xb_job_link *job, int delivered);

typedef struct xb_loop_inbox {
    pthread_mutex_t lock;
    xb_job_list jobs; /* posted, not yet delivered (lock) */
    int efd;          /* the helper thread writes, the loop reads */
    struct event *on_post;
    xb_loop_deliver_fn deliver;
    const char *owner; /* names the helper in log lines */
} xb_loop_inbox;

/* Watch for posted jobs on base. owner (a literal) names the helper in log lines. */
xb_err xb_loop_inbox_init(xb_loop_inbox *ib, struct event_base *base, const char *owner,
                          xb_loop_deliver_fn deliver, xb_diag *d);

/* Hand the chain first..last to the loop (any thread; never blocks on the loop). */
void xb_loop_inbox_post(xb_loop_inbox *ib, xb_job_link *first, xb_job_link *last);

/* After the loop has stopped: hand every job not yet delivered to deliver(job, 0), then free
 * the event and the eventfd. Nothing may post any more. */
void xb_loop_inbox_close(xb_loop_inbox *ib);

#endif
