/* The MQTT part of the sample device: one MQTT v5 session over mutual TLS (libmosquitto) that
 * publishes the telemetry with QoS 1 and checks the broker's acknowledgement of each message. */
#ifndef SAMPLE_DEVICE_MQTT_SESSION_H
#define SAMPLE_DEVICE_MQTT_SESSION_H

#include <signal.h>

#include <openssl/ssl.h>

#include "config.h"

/* Connect to cfg's broker (host, port; the client ID is the registration ID) with the TLS
 * context tls, publish cfg->messages telemetry messages to cfg's topic every cfg->interval_ms,
 * then disconnect. Every wait on the network is bounded, and *stop (set by a signal handler)
 * ends it early. Progress goes to stdout, reasons for failure to stderr.
 * 0 when the broker acknowledged every message, else -1.
 * tls stays the caller's (libmosquitto takes its own reference while it uses it); cfg is only
 * read. Call between mosquitto_lib_init() and mosquitto_lib_cleanup(). */
int mqtt_session_run(const struct config *cfg, SSL_CTX *tls, const volatile sig_atomic_t *stop);

#endif
