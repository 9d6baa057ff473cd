#include "committer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    xb_job_list queue;   /* submitted, not yet taken (lock) */
    int stopping;        /* lock */
    size_t last_batch;   /* the thread's */
    xb_loop_inbox inbox; /* committed, not yet delivered */
    xb_registry *reg;    /* the thread's own connection */
    const xb_enroll_rules *rules;
    xb_metrics_slot *metrics;
};

static double xb_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static xb_commit_job *xb_commit_job_of(xb_job_link *link)
{
    return XB_JOB_OF(link, xb_commit_job, link);
}

/* Record one batch (a list of at most XB_COMMIT_MAX_BATCH jobs) and report it. */
static void xb_commit_batch(xb_committer *c, xb_job_link *first)
{
    xb_issuance *items[XB_COMMIT_MAX_BATCH];
    size_t n = 0;
    for (xb_job_link *l = first; l != NULL; l = l->next)
        items[n++] = &xb_commit_job_of(l)->item;
    double t0 = xb_now_seconds();
    xb_diag d = {""};
    xb_err err = xb_registry_record_batch(c->reg, items, n, c->rules, &d);
    xb_metrics_commit(c->metrics, xb_now_seconds() - t0, n);
    if (err != XB_OK)
        xb_error("registry: group commit of %zu issuances failed: %s", n, xb_diag_message(&d, err));
}

/* How many queued jobs the next batch takes (at least one: the queue is not empty), and the
 * last of them. Under the lock. */
static size_t xb_queue_span(xb_committer *c, xb_job_link **last)
{
    size_t n = 1;
    *last = c->queue.head;
    for (; n < XB_COMMIT_MAX_BATCH && (*last)->next != NULL; n++)
        *last = (*last)->next;
    return n;
}

static void *xb_committer_main(void *arg)
{
    xb_committer *c = arg;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (c->queue.head == NULL && !c->stopping)
            pthread_cond_wait(&c->wake, &c->lock);
        if (c->queue.head == NULL) /* stopping, and everything is committed */
            break;
        /* Take what queued up while the previous commit ran, up to one batch. */
        xb_job_link *last = NULL;
        size_t n = xb_queue_span(c, &last);
        if (c->last_batch > 1 && n < XB_COMMIT_GATHER && !c->stopping) {
            pthread_mutex_unlock(&c->lock);
            struct timespec nap = {0, XB_COMMIT_DELAY_US * 1000L};
            nanosleep(&nap, NULL);
            pthread_mutex_lock(&c->lock);
            n = xb_queue_span(c, &last);
        }
        xb_job_link *first = c->queue.head;
        c->last_batch = n;
        c->queue.head = last->next;
        if (c->queue.head == NULL)
            c->queue.tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&c->lock);

        xb_commit_batch(c, first);
        xb_loop_inbox_post(&c->inbox, first, last);

        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* Loop side: hand a committed job to its owner. */
static void xb_committer_deliver(xb_job_link *link, int delivered)
{
    xb_commit_job *j = xb_commit_job_of(link);
    j->done(j, delivered);
}

xb_err xb_committer_start(struct event_base *base, const char *registry_url,
                          const xb_enroll_rules *rules, xb_metrics_slot *metrics,
                          xb_committer **out, xb_diag *d)
{
    *out = NULL;
    xb_committer *c = calloc(1, sizeof *c);
    if (c == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory starting the commit thread");
    c->rules = rules;
    c->metrics = metrics;
    xb_err err = xb_registry_open(registry_url, &c->reg, d);
    if (err != XB_OK) {
        free(c);
        return err;
    }
    err = xb_loop_inbox_init(&c->inbox, base, "committer", xb_committer_deliver, d);
    if (err != XB_OK) {
        xb_registry_close(c->reg);
        free(c);
        return err;
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0 || pthread_cond_init(&c->wake, NULL) != 0)
        err = xb_fail(d, XB_ERR_INTERNAL, "cannot create the commit queue lock");
    else if ((errno = pthread_create(&c->thread, NULL, xb_committer_main, c)) != 0)
        err = xb_fail(d, XB_ERR_INTERNAL, "cannot start the commit thread: %s", strerror(errno));
    if (err != XB_OK) {
        xb_loop_inbox_close(&c->inbox);
        xb_registry_close(c->reg);
        free(c);
        return err;
    }
    *out = c;
    return XB_OK;
}

void xb_committer_submit(xb_committer *c, xb_commit_job *job)
{
    job->link.next = NULL;
    pthread_mutex_lock(&c->lock);
    xb_job_list_append(&c->queue, &job->link, &job->link);
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
    xb_loop_inbox_close(&c->inbox);
    xb_registry_close(c->reg);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
