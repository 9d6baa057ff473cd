/* Test helper for tests/e2e/webhook_module.sh: drive the validation webhook module
 * (src/server/webhook.c) as a worker would, on one libevent loop.
 *
 *   webhook_probe [-c CA_FILE] [-t TIMEOUT_MS] [-d DEADLINE_MS] URL ID...
 *
 * Submits one query per ID at once, all concurrently, and runs the loop until every one is
 * delivered or DEADLINE_MS (default 20000) passes; then stops the module. Each query is
 * {registrationId: ID, subject: "CN=ID", publicKeySha256: hex SHA-256 of ID, keyType:
 * "ec-p256", clientAddress: "192.0.2.N" (N: the ID's position, from 1), protocol: "xboot"}.
 * Prints a line per completion, in completion order: "MS ID CODE REASON" (MS since submit,
 * CODE the xb_err name: ok, forbidden, policy_unavailable), and "- ID undelivered" for those
 * the stop handed back. The module logs (at debug level) to stderr.
 * Exit status: 0 all delivered, 3 the deadline passed, 2 the module did not start (why on
 * stderr), 1 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/sha.h>

#include "webhook.h"
#include "xb_log.h"

typedef struct probe_query {
    xb_webhook_job job; /* first: done() gets it back */
    const char *id;
    int finished;
    struct probe *probe;
} probe_query;

typedef struct probe {
    struct event_base *base;
    struct timespec t0;
    int outstanding;
} probe;

static long ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)((now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000);
}

static void on_done(xb_webhook_job *job, int delivered)
{
    probe_query *q = (probe_query *)job;
    q->finished = 1;
    if (delivered)
        printf("%ld %s %s %s\n", ms_since(&q->probe->t0), q->id, xb_err_code(job->result),
               job->reason);
    else
        printf("- %s undelivered\n", q->id);
    fflush(stdout);
    if (--q->probe->outstanding == 0 && delivered)
        event_base_loopbreak(q->probe->base);
}

static void sha256_hex(const char *s, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, strlen(s), md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int main(int argc, char **argv)
{
    xb_webhook_config cfg = {0};
    long deadline_ms = 20000;
    int opt;
    while ((opt = getopt(argc, argv, "c:t:d:")) != -1) {
        switch (opt) {
        case 'c':
            cfg.ca_file = optarg;
            break;
        case 't':
            cfg.timeout_ms = strtol(optarg, NULL, 10);
            break;
        case 'd':
            deadline_ms = strtol(optarg, NULL, 10);
            break;
        default:
            return 1;
        }
    }
    if (argc - optind < 2) {
        fprintf(stderr,
                "usage: webhook_probe [-c CA] [-t TIMEOUT_MS] [-d DEADLINE_MS] URL ID...\n");
        return 1;
    }
    xb_log_init("webhook_probe", XB_LOG_DEBUG);
    cfg.url = argv[optind];
    int n = argc - optind - 1;
    probe p = {.base = event_base_new(), .outstanding = n};
    probe_query *qs = calloc((size_t)n, sizeof *qs);
    if (p.base == NULL || qs == NULL)
        return 2;
    xb_webhook *w = NULL;
    xb_diag d = {""};
    xb_err err = xb_webhook_start(p.base, &cfg, &w, &d);
    if (err != XB_OK) {
        fprintf(stderr, "webhook_probe: %s: %s\n", xb_err_code(err), xb_diag_message(&d, err));
        free(qs);
        event_base_free(p.base);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &p.t0);
    for (int i = 0; i < n; i++) {
        const char *id = argv[optind + 1 + i];
        char subject[160], key[65], addr[32];
        snprintf(subject, sizeof subject, "CN=%s", id);
        sha256_hex(id, key);
        snprintf(addr, sizeof addr, "192.0.2.%d", i + 1);
        xb_webhook_query q = {id, subject, key, "ec-p256", addr, "xboot"};
        qs[i].id = id;
        qs[i].probe = &p;
        qs[i].job.done = on_done;
        xb_webhook_submit(w, &q, &qs[i].job); /* q's strings may go now: the module copied */
    }
    struct timeval deadline = {deadline_ms / 1000, (deadline_ms % 1000) * 1000};
    event_base_loopexit(p.base, &deadline);
    event_base_dispatch(p.base);
    int all = p.outstanding == 0;
    xb_webhook_stop(w);
    for (int i = 0; i < n; i++)
        if (!qs[i].finished)
            printf("- %s lost\n", qs[i].id); /* never: stop hands every job back */
    free(qs);
    event_base_free(p.base);
    return all ? 0 : 3;
}
