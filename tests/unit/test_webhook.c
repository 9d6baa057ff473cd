/* src/server/webhook.c: the request it sends, how it reads a refusal, what it refuses to start
 * with, and its life cycle without a webhook (unreachable: fail closed; stop with queries in
 * flight: handed back undelivered). Exchanges with a real HTTPS webhook are in
 * tests/e2e/webhook_module.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "webhook.h"

static void test_request_json(void **state)
{
    (void)state;
    xb_webhook_query q = {
        .registration_id = "dev-1",
        .subject = "CN=dev-1,O=\"Acme\"",
        .public_key_sha256 = "ab01",
        .key_type = "ec-p256",
        .client_address = NULL,
        .protocol = "est",
    };
    char *json = xb_webhook_request_json(&q);
    assert_non_null(json);
    assert_string_equal(json,
                        "{\"registrationId\":\"dev-1\",\"subject\":\"CN=dev-1,O=\\\"Acme\\\"\","
                        "\"publicKeySha256\":\"ab01\",\"keyType\":\"ec-p256\","
                        "\"clientAddress\":null,\"protocol\":\"est\"}");
    cJSON_free(json);
}

static void expect_clean(const char *in, const char *want)
{
    char out[256];
    size_t n = xb_webhook_clean_text(in, out, sizeof out);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_clean_text(void **state)
{
    (void)state;
    expect_clean("plain reason", "plain reason");
    expect_clean("  \t padded\r\n", "padded");
    expect_clean("two\nlines\tand tab", "two lines and tab");
    expect_clean("bell\x07 esc\x1b[31m del\x7f", "bell? esc?[31m del?");
    /* Valid UTF-8 stays; C1 (U+0085), bidi override (U+202E), line separator (U+2028),
     * overlong, stray continuation, truncated sequence and surrogates do not. */
    expect_clean("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x94\x92",
                 "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x94\x92");
    expect_clean("a\xc2\x85z", "a?z");
    expect_clean("a\xe2\x80\xaez", "a?z");
    expect_clean("a\xe2\x80\xa8z", "a?z");
    expect_clean("a\xc0\xafz", "a??z");
    expect_clean("a\x80z", "a?z");
    expect_clean("a\xe6\x97", "a??");
    expect_clean("a\xed\xa0\x80z", "a???z");
    expect_clean("", "");
    expect_clean(" \n ", "");
}

static void test_clean_text_truncates(void **state)
{
    (void)state;
    char in[1024], out[256];
    memset(in, 'a', 300);
    in[300] = '\0';
    size_t n = xb_webhook_clean_text(in, out, sizeof out);
    assert_int_equal(n, XB_WEBHOOK_REASON_MAX);
    assert_string_equal(out + n - 3, "...");
    /* Two-byte characters: never cut in the middle of one. */
    for (int i = 0; i < 150; i++)
        memcpy(in + 2 * i, "\xc3\xa9", 2);
    in[300] = '\0';
    n = xb_webhook_clean_text(in, out, sizeof out);
    assert_true(n <= XB_WEBHOOK_REASON_MAX);
    assert_int_equal((n - 3) % 2, 0);
    assert_string_equal(out + n - 3, "...");
    /* A small buffer. */
    n = xb_webhook_clean_text("abcdefghijkl", out, 10);
    assert_string_equal(out, "abcdef...");
    assert_int_equal(n, 9);
}

static void expect_reason(const char *answer, long status, const char *want)
{
    char out[256];
    xb_webhook_denial_reason(answer, answer ? strlen(answer) : 0, status, out, sizeof out);
    assert_string_equal(out, want);
}

static void test_denial_reason(void **state)
{
    (void)state;
    expect_reason("{\"reason\":\"device not in inventory\"}", 403, "device not in inventory");
    expect_reason("{\"message\":\"try the other CA\"}", 403, "try the other CA");
    expect_reason("{\"reason\":7,\"message\":\"m\"}", 403, "m");
    expect_reason("{\"reason\":\"no\\u0000pe\"}", 403, "no");
    expect_reason("{\"reason\":\"bad\\u001b[2J\\nline\"}", 403, "bad?[2J line");
    expect_reason("{\"reason\":\"  \"}", 409,
                  "the validation webhook refused this enrollment (HTTP 409)");
    expect_reason("<html>denied</html>", 500,
                  "the validation webhook refused this enrollment (HTTP 500)");
    expect_reason("[\"reason\"]", 403, "the validation webhook refused this enrollment (HTTP 403)");
    expect_reason(NULL, 302, "the validation webhook refused this enrollment (HTTP 302)");
}

static void expect_shown(const char *url, const char *want)
{
    char out[256];
    xb_diag d = {""};
    assert_int_equal(xb_webhook_url_shown(url, out, sizeof out, &d), XB_OK);
    assert_string_equal(out, want);
}

static void expect_bad_url(const char *url)
{
    char out[256];
    xb_diag d = {""};
    assert_int_equal(xb_webhook_url_shown(url, out, sizeof out, &d), XB_ERR_CONFIG);
    assert_non_null(strstr(d.msg, "webhook URL"));
    assert_null(strstr(d.msg, "s3cret"));
}

static void test_url_shown(void **state)
{
    (void)state;
    expect_shown("https://user:s3cret@hook.example:8443/v1/check?token=s3cret#frag",
                 "https://hook.example:8443/v1/check");
    expect_shown("https://hook.example", "https://hook.example/");
    expect_shown("HTTPS://127.0.0.1/x?k=v", "https://127.0.0.1/x");
    expect_shown("https://[::1]:9/p", "https://[::1]:9/p");
    expect_bad_url("http://hook.example/check?token=s3cret");
    expect_bad_url("ftp://hook.example/s3cret");
    expect_bad_url("hook.example/check?token=s3cret");
    expect_bad_url("https://");
    expect_bad_url("https://exa mple/s3cret");
}

static void expect_start_fails(struct event_base *base, const xb_webhook_config *cfg,
                               const char *needle)
{
    xb_webhook *w = (xb_webhook *)1;
    xb_diag d = {""};
    assert_int_equal(xb_webhook_start(base, cfg, &w, &d), XB_ERR_CONFIG);
    assert_null(w);
    assert_non_null(strstr(d.msg, needle));
}

static void test_start_refuses(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    char not_pem[] = "/tmp/xb-webhook-test-XXXXXX";
    int fd = mkstemp(not_pem);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a certificate\n", 18), 18);
    close(fd);
    expect_start_fails(base, &(xb_webhook_config){.url = NULL}, "no webhook URL");
    expect_start_fails(base, &(xb_webhook_config){.url = "http://127.0.0.1:1/"}, "https://");
    expect_start_fails(
        base, &(xb_webhook_config){.url = "https://127.0.0.1:1/", .ca_file = "/nonexistent/ca.pem"},
        "/nonexistent/ca.pem");
    expect_start_fails(base,
                       &(xb_webhook_config){.url = "https://127.0.0.1:1/", .ca_file = not_pem},
                       "no PEM certificate");
    expect_start_fails(base, &(xb_webhook_config){.url = "https://127.0.0.1:1/", .timeout_ms = -1},
                       "out of 1..");
    expect_start_fails(base,
                       &(xb_webhook_config){.url = "https://127.0.0.1:1/", .timeout_ms = 60001},
                       "out of 1..");
    unlink(not_pem);
    event_base_free(base);
}

/* ---- live: jobs through the thread and back on the loop ---- */

typedef struct probe_job {
    xb_webhook_job job; /* first: done() gets it back */
    int delivered;      /* -1: not yet */
    int *outstanding;
    struct event_base *base;
} probe_job;

static int in_submit;

static void probe_done(xb_webhook_job *job, int delivered)
{
    probe_job *p = (probe_job *)job;
    assert_false(in_submit); /* never from within xb_webhook_submit */
    assert_int_equal(p->delivered, -1);
    p->delivered = delivered;
    if (--*p->outstanding == 0 && delivered)
        event_base_loopbreak(p->base);
}

/* A TCP port on 127.0.0.1: listening (backlog only, never accepted: TCP connects, TLS never
 * answers) when listen_fd is not NULL, else closed again (nothing listens). */
static int local_port(int *listen_fd)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    if (listen_fd != NULL) {
        assert_int_equal(listen(fd, 16), 0);
        *listen_fd = fd;
    } else {
        close(fd);
    }
    return ntohs(a.sin_port);
}

static void submit_all(xb_webhook *w, probe_job *jobs, size_t n, int *outstanding,
                       struct event_base *base)
{
    xb_webhook_query q = {"dev-1", "CN=dev-1", "00", "ec-p256", "127.0.0.1", "xboot"};
    for (size_t i = 0; i < n; i++) {
        jobs[i] = (probe_job){.delivered = -1, .outstanding = outstanding, .base = base};
        jobs[i].job.done = probe_done;
        in_submit = 1;
        xb_webhook_submit(w, &q, &jobs[i].job);
        in_submit = 0;
    }
}

static void test_unreachable_fails_closed(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/check?token=s3cret", local_port(NULL));
    xb_webhook *w = NULL;
    xb_diag d = {""};
    assert_int_equal(xb_webhook_start(base, &(xb_webhook_config){.url = url}, &w, &d), XB_OK);
    probe_job jobs[3];
    int outstanding = 3;
    submit_all(w, jobs, 3, &outstanding, base);
    event_base_loopexit(base, &(struct timeval){10, 0}); /* bound; the break comes first */
    event_base_dispatch(base);
    assert_int_equal(outstanding, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(jobs[i].delivered, 1);
        assert_int_equal(jobs[i].job.result, XB_ERR_POLICY_UNAVAILABLE);
        assert_string_equal(jobs[i].job.reason, "the validation webhook cannot be reached");
        assert_null(jobs[i].job.xfer);
    }
    xb_webhook_stop(w);
    event_base_free(base);
}

static void test_stop_hands_back(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    int lfd = -1;
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", local_port(&lfd));
    xb_webhook *w = NULL;
    xb_diag d = {""};
    assert_int_equal(
        xb_webhook_start(base, &(xb_webhook_config){.url = url, .timeout_ms = 20000}, &w, &d),
        XB_OK);
    probe_job jobs[4];
    int outstanding = 4;
    submit_all(w, jobs, 4, &outstanding, base);
    /* Let the thread start the transfers (they hang in the TLS handshake). */
    event_base_loopexit(base, &(struct timeval){0, 300000});
    event_base_dispatch(base);
    assert_int_equal(outstanding, 4);
    xb_webhook_stop(w);
    assert_int_equal(outstanding, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(jobs[i].delivered, 0);
    close(lfd);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_json),
        cmocka_unit_test(test_clean_text),
        cmocka_unit_test(test_clean_text_truncates),
        cmocka_unit_test(test_denial_reason),
        cmocka_unit_test(test_url_shown),
        cmocka_unit_test(test_start_refuses),
        cmocka_unit_test(test_unreachable_fails_closed),
        cmocka_unit_test(test_stop_hands_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
