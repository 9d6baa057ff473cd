/* Group commit for one worker: issued certificates wait here for their registry record.
 *
 * The event loop signs certificates; a commit thread records them. Whatever queued up while
 * the previous transaction was being made durable goes into the next one, so one fsync covers
 * many issuances under load and a lone request is committed at once (no artificial delay).
 * Each job's completion is delivered back on the event loop thread, after its commit, and only
 * then may a certificate be returned. The thread has its own registry connection. */
#ifndef XB_COMMITTER_H
#define XB_COMMITTER_H

#include <event2/event.h>

#include "loop_inbox.h"
#include "metrics.h"
#include "registry.h"

/* Embed in the caller's state; done() runs on the loop thread once item.result is final. With
 * delivered == 0 the worker is shutting down: release the job without answering. */
typedef struct xb_commit_job {
    xb_issuance item;
    void (*done)(struct xb_commit_job *job, int delivered);
    xb_job_link link; /* the committer's: its queue, then the loop's inbox */
} xb_commit_job;

typedef struct xb_committer xb_committer;

/* Most issuances in one transaction: bounds the time a batch holds the write lock. */
#define XB_COMMIT_MAX_BATCH 256

/* Open a registry connection for the commit thread and start it; completions are delivered
 * by an event on base. rules must outlive the committer. */
xb_err xb_committer_start(struct event_base *base, const char *registry_url,
                          const xb_enroll_rules *rules, xb_metrics_slot *metrics,
                          xb_committer **out, xb_diag *d);

/* Queue a job (never blocks on the database). */
void xb_committer_submit(xb_committer *c, xb_commit_job *job);

/* Commit what is queued, stop the thread, and hand every job not yet delivered to done() with
 * delivered == 0. Call after the event loop has stopped. */
void xb_committer_stop(xb_committer *c);

#endif
