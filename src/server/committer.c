#include "committer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "xb_log.h"

/* A bounded commit delay (PostgreSQL's commit_delay, made adaptive): when the last commit
 * carried more than one issuance (others are enrolling too) and fewer than XB_COMMIT_GATHER are
 * waiting, wait XB_COMMIT_DELAY_US more before committing. In this VM one fdatasync costs ~140
 * us of CPU on the same core as the signing; gathering more per fsync measured 12% less CPU per
 * enrollment and better p50/p99 at 64 in flight (docs/PERFORMANCE.md). A lone device (last
 * batch of one) is committed at once. */
#define XB_COMMIT_DELAY_US 1000
#define XB_COMMIT_GATHER 16

struct xb_committer {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    xb_commit_job *queue_head, *queue_tail; /* submitted, not yet taken (lock) */
    xb_commit_job *done_head, *done_tail;   /* committed, not yet delivered (lock) */
    int stopping;                           /* lock */
    size_t last_batch;                      /* the thread's */
    int efd;                                /* the thread writes, the loop reads */
    struct event *on_done;
    xb_registry *reg; /* the thread's own connection */
    const xb_enroll_rules *rules;
    xb_metrics_slot *metrics;
};

static double xb_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void xb_list_append(xb_commit_job **head, xb_commit_job **tail, xb_commit_job *first,
                           xb_commit_job *last)
{
    if (*tail != NULL)
        (*tail)->next = first;
    else
        *head = first;
    *tail = last;
}

/* Record one batch (a list of at most XB_COMMIT_MAX_BATCH jobs) and report it. */
static void xb_commit_batch(xb_committer *c, xb_commit_job *first)
{
    xb_issuance *items[XB_COMMIT_MAX_BATCH];
    size_t n = 0;
    for (xb_commit_job *j = first; j != NULL; j = j->next)
        items[n++] = &j->item;
    double t0 = xb_now_seconds();
    xb_diag d = {""};
    xb_err err = xb_registry_record_batch(c->reg, items, n, c->rules, &d);
    xb_metrics_commit(c->metrics, xb_now_seconds() - t0, n);
    if (err != XB_OK)
        xb_error("registry: group commit of %zu issuances failed: %s", n, xb_diag_message(&d, err));
}

/* How many queued jobs the next batch takes (at least one: the queue is not empty), and the
 * last of them. Under the lock. */
static size_t xb_queue_span(xb_committer *c, xb_commit_job **last)
{
    size_t n = 1;
    *last = c->queue_head;
    for (; n < XB_COMMIT_MAX_BATCH && (*last)->next != NULL; n++)
        *last = (*last)->next;
    return n;
}

static void *xb_committer_main(void *arg)
{
    xb_committer *c = arg;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (c->queue_head == NULL && !c->stopping)
            pthread_cond_wait(&c->wake, &c->lock);
        if (c->queue_head == NULL) /* stopping, and everything is committed */
            break;
        /* Take what queued up while the previous commit ran, up to one batch. */
        xb_commit_job *last = NULL;
        size_t n = xb_queue_span(c, &last);
        if (c->last_batch > 1 && n < XB_COMMIT_GATHER && !c->stopping) {
            pthread_mutex_unlock(&c->lock);
            struct timespec nap = {0, XB_COMMIT_DELAY_US * 1000L};
            nanosleep(&nap, NULL);
            pthread_mutex_lock(&c->lock);
            n = xb_queue_span(c, &last);
        }
        xb_commit_job *first = c->queue_head;
        c->last_batch = n;
        c->queue_head = last->next;
        if (c->queue_head == NULL)
            c->queue_tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&c->lock);

        xb_commit_batch(c, first);

        pthread_mutex_lock(&c->lock);
        xb_list_append(&c->done_head, &c->done_tail, first, last);
        uint64_t one = 1;
        /* An eventfd counter cannot overflow at this rate; a failed write would only delay
         * delivery to the next batch, which writes again. */
        if (write(c->efd, &one, sizeof one) < 0 && errno != EAGAIN)
            xb_error("committer: cannot wake the event loop: %s", strerror(errno));
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* Loop side: hand committed jobs to their owners. */
static void xb_committer_deliver(evutil_socket_t fd, short events, void *arg)
{
    (void)events;
    xb_committer *c = arg;
    uint64_t count;
    if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN)
        xb_error("committer: cannot read the wake-up counter: %s", strerror(errno));
    pthread_mutex_lock(&c->lock);
    xb_commit_job *j = c->done_head;
    c->done_head = c->done_tail = NULL;
    pthread_mutex_unlock(&c->lock);
    while (j != NULL) {
        xb_commit_job *next = j->next;
        j->next = NULL;
        j->done(j, 1);
        j = next;
    }
}

xb_err xb_committer_start(struct event_base *base, const char *registry_url,
                          const xb_enroll_rules *rules, xb_metrics_slot *metrics,
                          xb_committer **out, xb_diag *d)
{
    *out = NULL;
    xb_committer *c = calloc(1, sizeof *c);
    if (c == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory starting the commit thread");
    c->efd = -1;
    c->rules = rules;
    c->metrics = metrics;
    xb_err err = xb_registry_open(registry_url, &c->reg, d);
    if (err != XB_OK) {
        free(c);
        return err;
    }
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->efd < 0)
        err = xb_fail(d, XB_ERR_INTERNAL, "eventfd: %s", strerror(errno));
    else if ((c->on_done =
                  event_new(base, c->efd, EV_READ | EV_PERSIST, xb_committer_deliver, c)) == NULL ||
             event_add(c->on_done, NULL) != 0)
        err = xb_fail(d, XB_ERR_NOMEM, "cannot watch the commit thread");
    else if (pthread_mutex_init(&c->lock, NULL) != 0 || pthread_cond_init(&c->wake, NULL) != 0)
        err = xb_fail(d, XB_ERR_INTERNAL, "cannot create the commit queue lock");
    else if ((errno = pthread_create(&c->thread, NULL, xb_committer_main, c)) != 0)
        err = xb_fail(d, XB_ERR_INTERNAL, "cannot start the commit thread: %s", strerror(errno));
    if (err != XB_OK) {
        if (c->on_done != NULL)
            event_free(c->on_done);
        if (c->efd >= 0)
            close(c->efd);
        xb_registry_close(c->reg);
        free(c);
        return err;
    }
    *out = c;
    return XB_OK;
}

void xb_committer_submit(xb_committer *c, xb_commit_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&c->lock);
    xb_list_append(&c->queue_head, &c->queue_tail, job, job);
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
}

void xb_committer_stop(xb_committer *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    /* Committed but the loop is gone: the records are durable, the answers cannot be sent
     * (the device retries, as after a crash). */
    xb_commit_job *j = c->done_head;
    c->done_head = c->done_tail = NULL;
    while (j != NULL) {
        xb_commit_job *next = j->next;
        j->done(j, 0);
        j = next;
    }
    event_free(c->on_done);
    close(c->efd);
    xb_registry_close(c->reg);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
