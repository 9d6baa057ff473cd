/* Enrollment through libxboot: configure the client from the config file, report its progress
 * and errors, and describe the certificate the device ends up with. */
#include "enroll.h"

#include <stdio.h>
#include <string.h>

#include <openssl/x509.h>

/* Progress lines, worded like the original SampleClient's where it had one. */
static void on_progress(void *arg, xboot_event event, const char *detail)
{
    (void)arg;
    switch (event) {
    case XBOOT_EVENT_STORED_VALID:
        printf("Found a valid stored certificate: no enrollment needed\n");
        break;
    case XBOOT_EVENT_KEY_GENERATED:
        printf("Generated a new key (%s)\n", detail ? detail : "default type");
        break;
    case XBOOT_EVENT_CSR_BUILT:
        printf("Built the certificate signing request\n");
        break;
    case XBOOT_EVENT_SENDING_CSR:
        printf("Sending CSR to XBoot server...%s%s\n", detail ? " " : "", detail ? detail : "");
        break;
    case XBOOT_EVENT_RETRYING:
        printf("Retrying: %s\n", detail ? detail : "");
        break;
    case XBOOT_EVENT_CERT_RECEIVED:
        printf("Received certificate\n");
        break;
    case XBOOT_EVENT_CERT_VERIFIED:
        printf("Certificate verified: it is for this key and ID and chains to the trust anchor\n");
        break;
    case XBOOT_EVENT_STORED:
        printf("Stored key and certificate in %s\n", detail ? detail : "the store");
        break;
    case XBOOT_EVENT_RENEWING:
        printf("Renewing over EST...%s%s\n", detail ? " " : "", detail ? detail : "");
        break;
    }
}

static xboot_err configure_client(xboot_client *xc, const struct config *cfg)
{
    xboot_err e;
    if ((e = xboot_set_server(xc, cfg->server)) != XBOOT_OK ||
        (e = xboot_set_trust_anchor_file(xc, cfg->trust_anchor)) != XBOOT_OK ||
        (e = xboot_set_registration_id(xc, cfg->registration_id)) != XBOOT_OK ||
        (e = xboot_set_store_dir(xc, cfg->store_dir)) != XBOOT_OK ||
        (e = xboot_set_progress(xc, on_progress, NULL)) != XBOOT_OK)
        return e;
    if (cfg->key_type != NULL) {
        xboot_key_type type;
        if ((e = xboot_key_type_parse(cfg->key_type, &type)) != XBOOT_OK ||
            (e = xboot_set_key_type(xc, type)) != XBOOT_OK)
            return e;
    }
    if (cfg->subject != NULL && (e = xboot_set_subject(xc, cfg->subject)) != XBOOT_OK)
        return e;
    if (cfg->credential != NULL && (e = xboot_set_credential(xc, cfg->credential)) != XBOOT_OK)
        return e;
    if (cfg->api_key != NULL && (e = xboot_set_api_key(xc, cfg->api_key)) != XBOOT_OK)
        return e;
    if (cfg->protocol != NULL) {
        xboot_protocol p =
            strcmp(cfg->protocol, "est") == 0 ? XBOOT_PROTOCOL_EST : XBOOT_PROTOCOL_XBOOT;
        if ((e = xboot_set_protocol(xc, p)) != XBOOT_OK)
            return e;
    }
    if (cfg->est_label != NULL && (e = xboot_set_est_label(xc, cfg->est_label)) != XBOOT_OK)
        return e;
    if (cfg->renew_threshold != 0 &&
        (e = xboot_set_renew_threshold(xc, cfg->renew_threshold)) != XBOOT_OK)
        return e;
    return XBOOT_OK;
}

/* The error e of libxboot, with the client's detail and the server's answer when there are
 * any (xc may be NULL). */
static void print_xboot_error(const char *what, const xboot_client *xc, xboot_err e)
{
    const char *detail = xc ? xboot_error_detail(xc) : "";
    if (strcmp(detail, xboot_strerror(e)) == 0) /* nothing more to say */
        detail = "";
    fprintf(stderr, "%s: %s [%s]%s%s\n", what, xboot_strerror(e), xboot_err_code(e),
            detail[0] ? ": " : "", detail);
    if (xc != NULL && xboot_http_status(xc) != 0 && xboot_server_error_code(xc)[0] != '\0')
        fprintf(stderr, "  the server answered HTTP %d %s: %s\n", xboot_http_status(xc),
                xboot_server_error_code(xc), xboot_server_error_message(xc));
}

/* One line about the certificate the device will use. */
static void print_certificate(const xboot_client *xc)
{
    X509 *cert = xboot_certificate(xc);
    char subject[256] = "";
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
    char until[64] = "?";
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem != NULL && ASN1_TIME_print(mem, X509_get0_notAfter(cert)) == 1) {
        int n = BIO_read(mem, until, (int)sizeof(until) - 1);
        until[n > 0 ? n : 0] = '\0';
    }
    BIO_free(mem);
    printf("Device certificate: %s, valid until %s (%s)\n", subject, until,
           xboot_was_issued(xc) ? "newly issued" : "stored");
}

/* Before enrolling: renew a stored certificate that is due. A failed renewal is not fatal
 * while the old certificate is still valid (the library kept it); an expired one falls
 * through to bootstrap enrollment. */
static void renew_if_due(xboot_client *xc)
{
    int due = 0;
    xboot_err e = xboot_renew_due(xc, &due);
    if (e == XBOOT_ERR_CERT_EXPIRED) {
        printf("The stored certificate has expired: enrolling again with the bootstrap "
               "credentials\n");
        return;
    }
    if (e != XBOOT_OK || !due)
        return; /* nothing stored, or nothing to do: xboot_enroll decides */
    printf("Certificate is due for renewal (%d%% of its lifetime passed)\n",
           xboot_lifetime_used(xboot_certificate(xc)));
    e = xboot_renew(xc);
    if (e == XBOOT_OK)
        printf("Renewed certificate\n");
    else
        print_xboot_error("Renewal failed (going on with the current certificate)", xc, e);
}

/* Enroll with the configured client xc (or find the stored certificate). */
static enum enroll_result enroll(xboot_client *xc, const struct config *cfg)
{
    xboot_err e = configure_client(xc, cfg);
    if (e != XBOOT_OK) {
        print_xboot_error("Configuration", xc, e);
        return ENROLL_BAD_CONFIG;
    }
    printf("Device %s, XBoot server %s\n", cfg->registration_id, cfg->server);
    renew_if_due(xc);
    e = xboot_enroll(xc, 0);
    if (e != XBOOT_OK) {
        print_xboot_error("Enrollment failed", xc, e);
        return ENROLL_FAILED;
    }
    print_certificate(xc);
    return ENROLL_OK;
}

enum enroll_result enroll_device(const struct config *cfg, xboot_client **out)
{
    *out = NULL;
    xboot_client *xc = NULL;
    xboot_err e = xboot_client_new(&xc);
    if (e != XBOOT_OK) {
        print_xboot_error("xboot_client_new", NULL, e);
        return ENROLL_FAILED;
    }
    enum enroll_result result = enroll(xc, cfg);
    if (result != ENROLL_OK) {
        xboot_client_free(xc);
        return result;
    }
    *out = xc;
    return ENROLL_OK;
}
