#include "report.h"

#include <math.h>
#include <stdio.h>

#include <cjson/cJSON.h>

/* Rounded so the JSON reads well: cJSON prints the shortest form that round-trips. */
static double xbb_round(double v, double unit)
{
    return round(v / unit) * unit;
}

static void xbb_add_num(cJSON *o, const char *k, int have, double v, double unit)
{
    if (have)
        cJSON_AddNumberToObject(o, k, unit > 0 ? xbb_round(v, unit) : v);
    else
        cJSON_AddNullToObject(o, k);
}

static double xbb_elapsed(const xbb_report *r)
{
    return r->ph->t_end - r->ph->t_start;
}

static void xbb_report_json(xbb_report *r)
{
    const xbb_enroll_opts *o = r->o;
    xbb_stats *st = r->st;
    double el = xbb_elapsed(r);
    int have_lat = st->n_lat > 0;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "mode", o->new_conn ? "new" : "reuse");
    cJSON_AddStringToObject(j, "api", xbb_api_name(o->api));
    cJSON_AddNumberToObject(j, "concurrency", o->concurrency);
    cJSON_AddStringToObject(j, "key_type", xbb_key_type_name(o->key_type));
    cJSON_AddNumberToObject(j, "ok", (double)st->ok);
    cJSON *errs = cJSON_AddObjectToObject(j, "errors");
    for (size_t i = 0; i < st->n_kinds; i++)
        cJSON_AddNumberToObject(errs, st->kind[i].key, (double)st->kind[i].count);
    xbb_add_num(j, "elapsed_s", 1, el, 1e-6);
    xbb_add_num(j, "rate", el > 0, (double)st->ok / el, 0.1);
    xbb_add_num(j, "p50_ms", have_lat, xbb_stats_percentile(st, 50), 1e-3);
    xbb_add_num(j, "p90_ms", have_lat, xbb_stats_percentile(st, 90), 1e-3);
    xbb_add_num(j, "p99_ms", have_lat, xbb_stats_percentile(st, 99), 1e-3);
    xbb_add_num(j, "max_ms", have_lat, xbb_stats_percentile(st, 100), 1e-3);
    xbb_add_num(j, "verified", r->verify_ran, (double)r->vr.verified, 0);
    xbb_add_num(j, "verify_failures", r->verify_ran, (double)r->vr.failures, 0);
    xbb_add_num(j, "server_cpu_s", r->have_cpu, r->server_cpu_s, 1e-3);
    xbb_add_num(j, "server_cpu_us_per_ok", r->have_cpu && st->ok > 0,
                r->server_cpu_s * 1e6 / (double)st->ok, 0.1);
    xbb_add_num(j, "server_rss_kib", r->have_cpu, (double)r->server_rss_kib, 0);
    xbb_add_num(j, "idle_open", o->idle > 0, (double)r->idle_open, 0);
    xbb_add_num(j, "pool_gen_s", 1, r->pool_gen_s, 1e-3);
    /* Additions beyond the fields bench/run.sh reads. */
    cJSON_AddNumberToObject(j, "count", (double)o->count);
    cJSON_AddNumberToObject(j, "warmup", (double)o->warmup);
    cJSON_AddNumberToObject(j, "abandoned", (double)r->ph->abandoned);
    cJSON_AddBoolToObject(j, "time_limited", r->ph->time_limited);
    xbb_add_num(j, "client_cpu_s", 1, r->client_cpu_s, 1e-3);
    xbb_add_num(j, "idle_requested", 1, (double)o->idle, 0);
    char *s = cJSON_PrintUnformatted(j);
    if (s != NULL)
        puts(s);
    cJSON_free(s);
    cJSON_Delete(j);
}

static void xbb_report_errors(const char *what, const xbb_stats *st)
{
    printf("%-22s", what);
    if (st->errors == 0)
        printf(" none");
    for (size_t i = 0; i < st->n_kinds; i++)
        printf(" %s=%zu", st->kind[i].key, st->kind[i].count);
    printf("\n");
    if (st->errors > 0)
        printf("%-22s %s\n", "first error", st->first_error);
}

static void xbb_report_human(xbb_report *r)
{
    const xbb_enroll_opts *o = r->o;
    xbb_stats *st = r->st;
    double el = xbb_elapsed(r);
    printf("xboot-bench enroll: %s api, %s connections, concurrency %d, %s keys\n",
           xbb_api_name(o->api), o->new_conn ? "new" : "reused", o->concurrency,
           xbb_key_type_name(o->key_type));
    printf("%-22s %zu CSRs in %.3f s (not timed)\n", "pool", o->count + o->warmup, r->pool_gen_s);
    if (!o->new_conn)
        printf("%-22s %zu of %d connections open before the window\n", "preconnect",
               r->preconnected, o->concurrency);
    if (o->warmup > 0)
        printf("%-22s %zu ok of %zu\n", "warm-up", r->warm->ok, o->warmup);
    if (o->warmup > 0 && r->warm->errors > 0)
        xbb_report_errors("warm-up errors", r->warm);
    printf("%-22s %zu ok of %zu planned, %zu completed, %zu abandoned%s\n", "timed window", st->ok,
           o->count, r->ph->completed, r->ph->abandoned,
           r->ph->time_limited ? " (time limit reached)" : "");
    printf("%-22s %.3f s\n", "elapsed", el);
    printf("%-22s %.1f enrollments/s\n", "rate", el > 0 ? (double)st->ok / el : 0.0);
    if (st->n_lat > 0)
        printf("%-22s p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", "latency ms",
               xbb_stats_percentile(st, 50), xbb_stats_percentile(st, 90),
               xbb_stats_percentile(st, 99), xbb_stats_percentile(st, 100));
    xbb_report_errors("errors", st);
    if (r->verify_ran)
        printf("%-22s %zu verified, %zu failed\n", "sampled certificates", r->vr.verified,
               r->vr.failures);
    if (r->have_cpu) {
        printf("%-22s %.3f s CPU (%d processes)", "server", r->server_cpu_s, r->server_processes);
        if (st->ok > 0)
            printf(", %.1f us per enrollment", r->server_cpu_s * 1e6 / (double)st->ok);
        printf(", RSS %ld KiB\n", r->server_rss_kib);
    }
    printf("%-22s %.3f s CPU\n", "client", r->client_cpu_s);
    if (o->idle > 0)
        printf("%-22s %zu asked, %zu handshaken, %zu still open at the end\n", "idle connections",
               o->idle, r->idle_handshaken, r->idle_open);
}

void xbb_report_print(xbb_report *r)
{
    if (r->o->json)
        xbb_report_json(r);
    else
        xbb_report_human(r);
    fflush(stdout);
}
