/* The sample device's telemetry: the JSON payload of each message and the topic from its
 * pattern. */
#include "telemetry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The registration ID needs no JSON escaping: the DPS rules allow only [A-Za-z0-9-._:]. */
int telemetry_payload(char *buf, size_t size, const char *id, int seq)
{
    time_t now = time(NULL);
    struct tm tm;
    char ts[32] = "";
    if (gmtime_r(&now, &tm) != NULL)
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    double temperature = 20.0 + (seq % 10) * 0.35;
    double humidity = 40.0 + (seq % 7) * 1.5;
    return snprintf(buf, size,
                    "{\"deviceId\":\"%s\",\"seq\":%d,\"temperature\":%.2f,\"humidity\":%.1f,"
                    "\"time\":\"%s\"}",
                    id, seq, temperature, humidity, ts);
}

/* Two passes over the pattern: one to size the result, one to write it (out == NULL on the
 * first). Returns the length of the result. */
static size_t expand_into(char *out, const char *pattern, const char *id)
{
    size_t n = 0, idlen = strlen(id);
    for (const char *p = pattern; *p != '\0';) {
        if (strncmp(p, "{id}", 4) == 0) {
            if (out != NULL)
                memcpy(out + n, id, idlen);
            n += idlen;
            p += 4;
        } else {
            if (out != NULL)
                out[n] = *p;
            n++;
            p++;
        }
    }
    if (out != NULL)
        out[n] = '\0';
    return n;
}

char *telemetry_topic(const char *pattern, const char *id)
{
    char *out = malloc(expand_into(NULL, pattern, id) + 1);
    if (out != NULL)
        expand_into(out, pattern, id);
    return out;
}
