/* xboot-sample-device: the sample device (the original .NET SampleClient's role).
 *
 * It enrolls through libxboot (once: later runs reuse the stored certificate), then connects to
 * an MQTT broker over mutual TLS with the certificate it got and publishes N telemetry messages
 * with QoS 1, checking the broker's acknowledgement of each.
 *
 * The TLS context is built from the EVP_PKEY and X509 objects libxboot returns and handed to
 * libmosquitto with MOSQ_OPT_SSL_CTX, so the key never has to be a file: a key held in a TPM
 * or a PKCS#11 token works the same way.
 *
 * Usage: xboot-sample-device -c FILE [--messages N]   (see sample-device.conf)
 * Exit status: 0 every message was acknowledged, 1 enrollment/connection/publish failed,
 * 2 bad usage or configuration.
 *
 * This file: the command line, the signal flag, and the order of the steps. The steps are in
 * config.c, enroll.c, tls_context.c and mqtt_session.c (with telemetry.c).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "config.h"
#include "enroll.h"
#include "mqtt_session.h"
#include "tls_context.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

/* Set by SIGINT/SIGTERM once the MQTT part runs; its loops check it. */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: xboot-sample-device -c FILE [--messages N]\n"
                 "  Enroll through XBoot (once), then publish N telemetry messages (QoS 1) to\n"
                 "  an MQTT broker over mutual TLS with the issued certificate.\n"
                 "  -c, --config FILE   the configuration (see examples/sample-device.conf)\n"
                 "  --messages N        how many messages (overrides [mqtt] messages)\n"
                 "exit status: 0 all messages acknowledged, 1 failure, 2 bad usage/config\n");
}

/* Parse the command line. 0 to go on, -1 when done (--help), else the exit status. */
static int parse_args(int argc, char **argv, const char **config, int *messages)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            return -1;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return EXIT_USAGE;
        }
        if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) {
            *config = argv[++i];
        } else if (strcmp(arg, "--messages") == 0) {
            if (config_parse_int(argv[++i], 0, 1000000, messages) != 0) {
                fprintf(stderr, "--messages: '%s' is not a number in 0..1000000\n", argv[i]);
                return EXIT_USAGE;
            }
        } else {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (*config == NULL) {
        usage(stderr);
        return EXIT_USAGE;
    }
    return 0;
}

/* The MQTT part: connect with the device's credentials and publish. 0 on full success. */
static int run_mqtt(const xboot_client *xc, const struct config *cfg)
{
    SSL_CTX *tls = tls_context_new(xc, cfg->ca_file, cfg->host);
    if (tls == NULL)
        return -1;
    int rc = mqtt_session_run(cfg, tls, &g_stop);
    SSL_CTX_free(tls);
    return rc;
}

int main(int argc, char **argv)
{
    /* One line at a time, even into a pipe: the progress lines interleave with stderr's. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *config_path = NULL;
    int messages = -1;
    int status = parse_args(argc, argv, &config_path, &messages);
    if (status != 0)
        return status < 0 ? EXIT_SUCCESS : status;

    struct config cfg;
    if (config_load(&cfg, config_path) != 0) {
        config_free(&cfg);
        return EXIT_USAGE;
    }
    if (messages >= 0)
        cfg.messages = messages;

    xboot_client *xc = NULL;
    switch (enroll_device(&cfg, &xc)) {
    case ENROLL_OK:
        /* Only now: during enrollment, Ctrl-C should stop the program at once (the library's
         * retries are not interruptible); from here on every loop checks g_stop. */
        install_signal_handlers();
        mosquitto_lib_init();
        status = run_mqtt(xc, &cfg) == 0 ? EXIT_SUCCESS : EXIT_FAIL;
        mosquitto_lib_cleanup();
        break;
    case ENROLL_BAD_CONFIG:
        status = EXIT_USAGE;
        break;
    case ENROLL_FAILED:
        status = EXIT_FAIL;
        break;
    }
    xboot_client_free(xc);
    config_free(&cfg);
    return status;
}
