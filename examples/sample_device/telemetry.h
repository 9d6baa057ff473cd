/* What the sample device publishes: its telemetry payloads and the topic they go to. */
#ifndef SAMPLE_DEVICE_TELEMETRY_H
#define SAMPLE_DEVICE_TELEMETRY_H

#include <stddef.h>

/* Write the JSON payload of message seq from device id into buf (size bytes): made-up readings
 * that change a little from one message to the next, and the current UTC time. Returns what
 * snprintf returns: the payload's length, which is >= size when it did not fit. */
int telemetry_payload(char *buf, size_t size, const char *id, int seq);

/* The topic pattern with every "{id}" replaced by id. A new string the caller frees with
 * free(); NULL when out of memory. */
char *telemetry_topic(const char *pattern, const char *id);

#endif
