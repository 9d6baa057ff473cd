/* A uniform random sample (reservoir sampling) of the certificates issued in the timed window,
 * with the chain each answer carried, kept for full verification after the window closes. */
#ifndef XBB_SAMPLE_H
#define XBB_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"

#define XBB_SAMPLE_MAX_CHAIN 8

typedef struct xbb_sample {
    uint8_t *cert;
    size_t cert_len;
    uint8_t *chain[XBB_SAMPLE_MAX_CHAIN];
    size_t chain_len[XBB_SAMPLE_MAX_CHAIN];
    size_t chain_n;
    char id[XB_REGID_MAX + 1];
} xbb_sample;

typedef struct xbb_sampler {
    xbb_sample *s;
    size_t cap, n;
    unsigned long long seen;
    unsigned long long rng;
} xbb_sampler;

/* 0, or -1 if out of memory. cap 0 keeps nothing. */
int xbb_sampler_init(xbb_sampler *sm, size_t cap);
/* Offer one good answer; it is kept with probability cap/seen. */
void xbb_sampler_offer(xbb_sampler *sm, const xbb_answer *a, const char *id);
void xbb_sampler_free(xbb_sampler *sm);

#endif
