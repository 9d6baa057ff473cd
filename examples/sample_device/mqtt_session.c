/* One MQTT v5 session of the sample device (libmosquitto, mutual TLS): connect, publish the
 * telemetry with QoS 1 and wait for each PUBACK, disconnect; every wait bounded. */
#include "mqtt_session.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "telemetry.h"

/* Every wait on the network is bounded by this. */
#define STEP_TIMEOUT_MS 10000
#define KEEPALIVE_S 60

enum conn_state { CONN_PENDING, CONN_UP, CONN_FAILED, CONN_CLOSED };

/* What the callbacks learned, and what the loops wait for. */
struct session {
    enum conn_state state;
    int got_connack;                   /* the broker answered CONNECT */
    int connack_reason;                /* its reason code (0: accepted) */
    int disconnect_reason;             /* from on_disconnect: see disconnect_reason() */
    int waiting_mid;                   /* the message waiting for its PUBACK (0: none) */
    int acked;                         /* 1 once waiting_mid's PUBACK arrived */
    int puback_reason;                 /* its reason code */
    int loop_rc;                       /* what the last mosquitto_loop returned */
    const volatile sig_atomic_t *stop; /* nonzero once a signal asked us to stop */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_connect(struct mosquitto *mosq, void *obj, int reason, int flags,
                       const mosquitto_property *props)
{
    (void)mosq;
    (void)flags;
    (void)props;
    struct session *s = obj;
    s->got_connack = 1;
    s->connack_reason = reason;
    s->state = reason == 0 ? CONN_UP : CONN_FAILED;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int reason,
                          const mosquitto_property *props)
{
    (void)mosq;
    (void)props;
    struct session *s = obj;
    s->disconnect_reason = reason;
    s->state = s->state == CONN_PENDING ? CONN_FAILED : CONN_CLOSED;
}

/* With MQTT v5 the broker's PUBACK carries a reason code: >= 0x80 means it dropped the
 * message (0x87 Not authorized when the ACL forbids the topic). */
static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason,
                       const mosquitto_property *props)
{
    (void)mosq;
    (void)props;
    struct session *s = obj;
    if (mid == s->waiting_mid) {
        s->acked = 1;
        s->puback_reason = reason;
    }
}

/* Why the connection ended. libmosquitto passes either the reason code of the broker's MQTT v5
 * DISCONNECT (>= 0x80) or one of its own MOSQ_ERR_* codes (a lost connection, a TLS error). */
static const char *disconnect_reason(const struct session *s)
{
    if (s->disconnect_reason >= 0x80)
        return mosquitto_reason_string(s->disconnect_reason);
    return mosquitto_strerror(s->disconnect_reason);
}

/* libmosquitto's own error lines (the OpenSSL reason of a failed handshake among them). */
static void on_log(struct mosquitto *mosq, void *obj, int level, const char *line)
{
    (void)mosq;
    (void)obj;
    if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
        fprintf(stderr, "mosquitto: %s\n", line);
}

/* Run the network loop until done() or timeout_ms passed. 0 when done, else -1 (with the
 * reason printed). */
static int pump_until(struct mosquitto *mosq, struct session *s,
                      int (*done)(struct mosquitto *, struct session *), long long timeout_ms,
                      const char *what)
{
    long long deadline = now_ms() + timeout_ms;
    while (!done(mosq, s)) {
        if (*s->stop) {
            fprintf(stderr, "%s: interrupted\n", what);
            return -1;
        }
        long long left = deadline - now_ms();
        if (left <= 0) {
            fprintf(stderr, "%s: no answer within %lld ms\n", what, timeout_ms);
            return -1;
        }
        s->loop_rc = mosquitto_loop(mosq, left < 100 ? (int)left : 100, 1);
        /* The callbacks may have recorded the outcome of the failure (a DISCONNECT reason). */
        if (s->loop_rc != MOSQ_ERR_SUCCESS && !done(mosq, s)) {
            fprintf(stderr, "%s: %s\n", what, mosquitto_strerror(s->loop_rc));
            return -1;
        }
    }
    return 0;
}

static int is_acked_or_down(struct mosquitto *mosq, struct session *s)
{
    (void)mosq;
    return s->acked || s->state != CONN_UP;
}

static int is_closed(struct mosquitto *mosq, struct session *s)
{
    (void)mosq;
    return s->state == CONN_CLOSED || s->state == CONN_FAILED;
}

/* Keep the connection serviced (keepalive, late packets) for ms milliseconds. */
static void idle(struct mosquitto *mosq, const struct session *s, long long ms)
{
    long long deadline = now_ms() + ms;
    for (long long left = ms; left > 0 && !*s->stop && s->state == CONN_UP;
         left = deadline - now_ms())
        mosquitto_loop(mosq, left < 100 ? (int)left : 100, 1);
}

/* A mosquitto client with our TLS context, MQTT v5 and our callbacks; NULL on failure. */
static struct mosquitto *mqtt_new(const struct config *cfg, SSL_CTX *ctx, struct session *s)
{
    /* The client ID is the registration ID: the broker's identity for the device is its
     * certificate's CN anyway (use_identity_as_username). */
    struct mosquitto *mosq = mosquitto_new(cfg->registration_id, true, s);
    if (mosq == NULL) {
        fprintf(stderr, "mosquitto_new: %s\n", strerror(errno));
        return NULL;
    }
    int rc;
    if ((rc = mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5)) != 0 ||
        (rc = mosquitto_int_option(mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0)) != 0 ||
        (rc = mosquitto_void_option(mosq, MOSQ_OPT_SSL_CTX, ctx)) != 0) {
        fprintf(stderr, "mosquitto options: %s\n", mosquitto_strerror(rc));
        mosquitto_destroy(mosq);
        return NULL;
    }
    mosquitto_connect_v5_callback_set(mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(mosq, on_disconnect);
    mosquitto_publish_v5_callback_set(mosq, on_publish);
    mosquitto_log_callback_set(mosq, on_log);
    return mosq;
}

/* 1 when the TCP connection failed or was closed. libmosquitto 2.0.11, with a TLS context,
 * does not report a refused asynchronous connect: mosquitto_loop keeps returning success on the
 * dead socket. The kernel knows (POLLHUP), so ask it rather than wait for the deadline. */
static int socket_dead(struct mosquitto *mosq)
{
    struct pollfd pfd = {.fd = mosquitto_socket(mosq), .events = POLLOUT};
    if (pfd.fd < 0)
        return 1;
    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR)) != 0;
}

static int connect_settled(struct mosquitto *mosq, struct session *s)
{
    if (s->state == CONN_PENDING && s->loop_rc == MOSQ_ERR_SUCCESS && socket_dead(mosq)) {
        s->state = CONN_FAILED;
        s->disconnect_reason = MOSQ_ERR_CONN_REFUSED;
    }
    return s->state != CONN_PENDING;
}

/* Connect (TCP, TLS handshake, CONNECT/CONNACK), bounded by STEP_TIMEOUT_MS. */
static int mqtt_connect(struct mosquitto *mosq, struct session *s, const struct config *cfg)
{
    printf("Connecting to broker %s:%d (MQTT v5, mutual TLS)...\n", cfg->host, cfg->port);
    /* Asynchronous, so that the TLS handshake runs in mosquitto_loop under our deadline. */
    int rc = mosquitto_connect_async(mosq, cfg->host, cfg->port, KEEPALIVE_S);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "Could not connect to broker: %s\n",
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return -1;
    }
    if (pump_until(mosq, s, connect_settled, STEP_TIMEOUT_MS, "Could not connect to broker"))
        return -1;
    if (s->got_connack && s->connack_reason != 0) {
        fprintf(stderr, "Broker refused the connection: %s\n",
                mosquitto_reason_string(s->connack_reason));
        return -1;
    }
    if (s->state != CONN_UP) {
        fprintf(stderr, "Could not connect to broker: %s\n", disconnect_reason(s));
        return -1;
    }
    SSL *ssl = mosquitto_ssl_get(mosq);
    printf("Connected to broker (%s, %s)\n", ssl ? SSL_get_version(ssl) : "TLS",
           ssl ? SSL_get_cipher_name(ssl) : "?");
    return 0;
}

/* Publish message seq with QoS 1 and wait for its PUBACK. 0 when the broker accepted it. */
static int publish_one(struct mosquitto *mosq, struct session *s, const struct config *cfg,
                       const char *topic, int seq)
{
    char payload[512];
    int len = telemetry_payload(payload, sizeof(payload), cfg->registration_id, seq);
    if (len < 0 || (size_t)len >= sizeof(payload)) {
        fprintf(stderr, "Message %d: payload too long\n", seq);
        return -1;
    }
    int mid = 0;
    s->acked = 0;
    s->waiting_mid = -1; /* no PUBACK can match until mid is known */
    int rc = mosquitto_publish_v5(mosq, &mid, topic, len, payload, 1, false, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "Message %d not sent: %s\n", seq, mosquitto_strerror(rc));
        return -1;
    }
    s->waiting_mid = mid;
    char what[64];
    snprintf(what, sizeof(what), "Message %d not acknowledged", seq);
    if (pump_until(mosq, s, is_acked_or_down, STEP_TIMEOUT_MS, what) != 0)
        return -1;
    if (!s->acked) {
        fprintf(stderr, "%s: connection lost (%s)\n", what, disconnect_reason(s));
        return -1;
    }
    if (s->puback_reason >= 0x80) {
        fprintf(stderr, "Message %d refused by broker: %s (0x%02x)\n", seq,
                mosquitto_reason_string(s->puback_reason), (unsigned)s->puback_reason);
        return -1;
    }
    printf("Sent message %d: %s\n", seq, payload);
    return 0;
}

static int publish_all(struct mosquitto *mosq, struct session *s, const struct config *cfg)
{
    char *topic = telemetry_topic(cfg->topic, cfg->registration_id);
    if (topic == NULL) {
        fprintf(stderr, "out of memory\n");
        return -1;
    }
    printf("Publishing %d message(s) to %s\n", cfg->messages, topic);
    int rc = 0;
    for (int seq = 1; seq <= cfg->messages && rc == 0; seq++) {
        rc = publish_one(mosq, s, cfg, topic, seq);
        /* The next reading comes later; the connection stays serviced meanwhile. */
        if (rc == 0 && seq < cfg->messages && cfg->interval_ms > 0)
            idle(mosq, s, cfg->interval_ms);
        if (rc == 0 && *s->stop) {
            fprintf(stderr, "interrupted\n");
            rc = -1;
        }
        if (rc == 0 && s->state != CONN_UP) {
            fprintf(stderr, "Connection to broker lost\n");
            rc = -1;
        }
    }
    free(topic);
    return rc;
}

/* DISCONNECT and wait (bounded) for the library to close the socket. */
static void mqtt_disconnect(struct mosquitto *mosq, struct session *s)
{
    if (s->state != CONN_UP)
        return;
    if (mosquitto_disconnect_v5(mosq, MQTT_RC_NORMAL_DISCONNECTION, NULL) == MOSQ_ERR_SUCCESS)
        pump_until(mosq, s, is_closed, STEP_TIMEOUT_MS, "Disconnect");
    printf("Disconnected\n");
}

int mqtt_session_run(const struct config *cfg, SSL_CTX *tls, const volatile sig_atomic_t *stop)
{
    struct session s = {.state = CONN_PENDING, .stop = stop};
    struct mosquitto *mosq = mqtt_new(cfg, tls, &s);
    if (mosq == NULL)
        return -1;
    int rc = mqtt_connect(mosq, &s, cfg);
    if (rc == 0)
        rc = publish_all(mosq, &s, cfg);
    mqtt_disconnect(mosq, &s);
    mosquitto_destroy(mosq);
    return rc;
}
