#include "sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int xbb_sampler_init(xbb_sampler *sm, size_t cap)
{
    memset(sm, 0, sizeof *sm);
    sm->cap = cap;
    sm->s = calloc(cap ? cap : 1, sizeof *sm->s);
    if (getrandom(&sm->rng, sizeof sm->rng, GRND_NONBLOCK) != sizeof sm->rng)
        sm->rng = (unsigned long long)time(NULL);
    sm->rng |= 1; /* xorshift must not start at zero */
    return sm->s ? 0 : -1;
}

/* xorshift64*: which certificates get verified only has to be unpredictable to the server's
 * code paths, not cryptographically random. */
static unsigned long long xbb_rand(xbb_sampler *sm)
{
    sm->rng ^= sm->rng >> 12;
    sm->rng ^= sm->rng << 25;
    sm->rng ^= sm->rng >> 27;
    return sm->rng * 2685821657736338717ULL;
}

static void xbb_sample_clear(xbb_sample *s)
{
    free(s->cert);
    for (size_t i = 0; i < s->chain_n; i++)
        free(s->chain[i]);
    memset(s, 0, sizeof *s);
}

static void xbb_sample_fill(xbb_sample *s, const xbb_answer *a, const char *id)
{
    xbb_sample_clear(s);
    snprintf(s->id, sizeof s->id, "%s", id);
    s->cert = malloc(a->cert_len);
    if (s->cert == NULL)
        return; /* verified as a failure: the run says so rather than hiding it */
    memcpy(s->cert, a->cert, a->cert_len);
    s->cert_len = a->cert_len;
    size_t n = xbb_answer_chain_count(a);
    for (size_t i = 0; i < n && s->chain_n < XBB_SAMPLE_MAX_CHAIN; i++)
        if (xbb_answer_chain_der(a, i, &s->chain[s->chain_n], &s->chain_len[s->chain_n]) == 0)
            s->chain_n++;
}

void xbb_sampler_offer(xbb_sampler *sm, const xbb_answer *a, const char *id)
{
    sm->seen++;
    if (sm->cap == 0)
        return;
    if (sm->n < sm->cap) {
        xbb_sample_fill(&sm->s[sm->n++], a, id);
        return;
    }
    unsigned long long j = xbb_rand(sm) % sm->seen;
    if (j < sm->cap)
        xbb_sample_fill(&sm->s[j], a, id);
}

void xbb_sampler_free(xbb_sampler *sm)
{
    for (size_t i = 0; i < sm->n; i++)
        xbb_sample_clear(&sm->s[i]);
    free(sm->s);
    memset(sm, 0, sizeof *sm);
}
