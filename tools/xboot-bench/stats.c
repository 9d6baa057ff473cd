#include "stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int xbb_stats_init(xbb_stats *st, size_t cap)
{
    memset(st, 0, sizeof *st);
    st->lat_ms = malloc((cap ? cap : 1) * sizeof *st->lat_ms);
    st->cap = cap;
    return st->lat_ms ? 0 : -1;
}

void xbb_stats_free(xbb_stats *st)
{
    free(st->lat_ms);
    memset(st, 0, sizeof *st);
}

void xbb_stats_ok(xbb_stats *st, double ms)
{
    st->ok++;
    if (st->n_lat < st->cap)
        st->lat_ms[st->n_lat++] = ms;
    st->sorted = 0;
}

void xbb_stats_error(xbb_stats *st, const char *key, const char *detail)
{
    if (st->errors++ == 0)
        snprintf(st->first_error, sizeof st->first_error, "%s%s%.280s", key, detail ? ": " : "",
                 detail ? detail : "");
    for (size_t i = 0; i < st->n_kinds; i++)
        if (strcmp(st->kind[i].key, key) == 0) {
            st->kind[i].count++;
            return;
        }
    /* The kinds are a few HTTP statuses and five classes; the last slot takes any overflow. */
    size_t i = st->n_kinds < XBB_STATS_MAX_KINDS ? st->n_kinds++ : XBB_STATS_MAX_KINDS - 1;
    if (st->kind[i].count == 0)
        snprintf(st->kind[i].key, sizeof st->kind[i].key, "%s", key);
    st->kind[i].count++;
}

static int xbb_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double xbb_stats_percentile(xbb_stats *st, double p)
{
    if (st->n_lat == 0)
        return -1;
    if (!st->sorted) {
        qsort(st->lat_ms, st->n_lat, sizeof *st->lat_ms, xbb_cmp_double);
        st->sorted = 1;
    }
    size_t rank = (size_t)ceil(p / 100.0 * (double)st->n_lat);
    if (rank < 1)
        rank = 1;
    if (rank > st->n_lat)
        rank = st->n_lat;
    return st->lat_ms[rank - 1];
}
