/* xbootctl cert list and cert show: the audit view of the certificates xbootd issued (who,
 * when, from where, which key, whether still valid), as text or JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "xbootctl.h"

/* ---- shared ---- */

static const char *cert_status(const xb_cert_record *rec, time_t now)
{
    if (rec->revoked_at != 0)
        return "revoked";
    return rec->not_after != 0 && rec->not_after < now ? "expired" : "valid";
}

/* Adds key: the RFC 3339 time, or null for 0 (never, unknown). */
static void json_add_time(cJSON *obj, const char *key, time_t t)
{
    char buf[32];
    if (t == 0) {
        cJSON_AddNullToObject(obj, key);
        return;
    }
    format_time(t, buf, sizeof buf);
    cJSON_AddStringToObject(obj, key, buf);
}

static void json_add_text(cJSON *obj, const char *key, const char *s)
{
    if (s == NULL || s[0] == '\0')
        cJSON_AddNullToObject(obj, key);
    else
        cJSON_AddStringToObject(obj, key, s);
}

static cJSON *cert_json(const xb_cert_record *rec, time_t now)
{
    cJSON *obj = cJSON_CreateObject();
    if (obj == NULL)
        return NULL;
    cJSON_AddStringToObject(obj, "serial", rec->serial);
    cJSON_AddStringToObject(obj, "registrationId", rec->reg_id);
    json_add_text(obj, "subject", rec->subject);
    json_add_time(obj, "notBefore", rec->not_before);
    json_add_time(obj, "notAfter", rec->not_after);
    json_add_time(obj, "issuedAt", rec->issued_at);
    json_add_text(obj, "clientAddress", rec->client_addr);
    json_add_text(obj, "publicKeySha256", rec->pubkey_sha256);
    cJSON_AddStringToObject(obj, "status", cert_status(rec, now));
    json_add_time(obj, "revokedAt", rec->revoked_at);
    json_add_text(obj, "revocationReason", rec->revoked_at != 0 ? reason_name(rec) : NULL);
    return obj;
}

/* Prints root (pretty, one trailing newline) and frees it. */
static int print_json(cJSON *root)
{
    char *text = root != NULL ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (text == NULL)
        return failure("out of memory");
    puts(text);
    free(text);
    return EXIT_OK;
}

/* ---- cert list ---- */

typedef struct cert_widths {
    int serial, reg_id;
} cert_widths;

static xb_err widen_cert(const xb_cert_record *rec, void *ctx)
{
    cert_widths *w = ctx;
    int s = (int)strlen(rec->serial), id = (int)strlen(rec->reg_id);
    if (s > w->serial)
        w->serial = s;
    if (id > w->reg_id)
        w->reg_id = id;
    return XB_OK;
}

static xb_err print_cert_row(const xb_cert_record *rec, void *ctx)
{
    const cert_widths *w = ctx;
    char not_before[32], not_after[32], revoked[32];
    format_time(rec->not_before, not_before, sizeof not_before);
    format_time(rec->not_after, not_after, sizeof not_after);
    format_time(rec->revoked_at, revoked, sizeof revoked);
    printf("%-*s  %-*s  %-20s  %-20s  %-20s  %-20s  %s\n", w->serial, rec->serial, w->reg_id,
           rec->reg_id, not_before, not_after, revoked,
           rec->revoked_at != 0 ? reason_name(rec) : "-", rec->subject);
    return XB_OK;
}

static xb_err list_certs_text(xb_registry *r, const char *reg_id, xb_diag *d)
{
    cert_widths w = {(int)strlen("SERIAL"), (int)strlen("ID")};
    xb_err err = xb_registry_cert_each(r, reg_id, widen_cert, &w, d);
    if (err != XB_OK)
        return err;
    printf("%-*s  %-*s  %-20s  %-20s  %-20s  %-20s  %s\n", w.serial, "SERIAL", w.reg_id, "ID",
           "NOT BEFORE", "NOT AFTER", "REVOKED", "REASON", "SUBJECT");
    return xb_registry_cert_each(r, reg_id, print_cert_row, &w, d);
}

typedef struct json_list {
    cJSON *array;
    time_t now;
} json_list;

static xb_err add_cert_json(const xb_cert_record *rec, void *ctx)
{
    json_list *l = ctx;
    cJSON *obj = cert_json(rec, l->now);
    if (obj == NULL)
        return XB_ERR_NOMEM;
    cJSON_AddItemToArray(l->array, obj);
    return XB_OK;
}

/* The whole array is built before anything is printed: a registry error mid-way never leaves
 * half a JSON document on stdout. */
static int list_certs_json(xb_registry *r, const char *reg_id, xb_diag *d)
{
    json_list l = {cJSON_CreateArray(), time(NULL)};
    if (l.array == NULL)
        return failure("out of memory");
    xb_err err = xb_registry_cert_each(r, reg_id, add_cert_json, &l, d);
    if (err != XB_OK) {
        cJSON_Delete(l.array);
        return failure_diag(d, err);
    }
    return print_json(l.array);
}

int cmd_cert_list(const ctl_opts *o)
{
    xb_registry *r = NULL;
    int rc = open_registry(o, 0, &r);
    if (rc >= 0)
        return rc;
    xb_diag d = {{0}};
    xb_err err = XB_OK;
    /* An unknown --device is a mistake worth saying, not an empty table. */
    if (o->id != NULL) {
        xb_device dev;
        err = xb_registry_device_get(r, o->id, &dev, &d);
    }
    if (err != XB_OK)
        rc = failure_diag(&d, err);
    else if (o->json != NULL)
        rc = list_certs_json(r, o->id, &d);
    else
        rc = (err = list_certs_text(r, o->id, &d)) == XB_OK ? EXIT_OK : failure_diag(&d, err);
    xb_registry_close(r);
    return rc;
}

/* ---- cert show ---- */

/* cert_get leaves the subject out; cert_each of the device has it. */
typedef struct subject_find {
    const char *serial;
    char *subject; /* malloc'd */
} subject_find;

static xb_err find_subject(const xb_cert_record *rec, void *ctx)
{
    subject_find *f = ctx;
    if (strcmp(rec->serial, f->serial) == 0 && rec->subject != NULL && f->subject == NULL) {
        f->subject = strdup(rec->subject);
        if (f->subject == NULL)
            return XB_ERR_NOMEM;
    }
    return XB_OK;
}

/* The certificate DER as PEM text (malloc'd), or NULL. */
static char *der_to_pem(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    if (x != NULL && bio != NULL && PEM_write_bio_X509(bio, x) == 1) {
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);
        pem = n > 0 ? malloc((size_t)n + 1) : NULL;
        if (pem != NULL) {
            memcpy(pem, data, (size_t)n);
            pem[n] = '\0';
        }
    }
    BIO_free(bio);
    X509_free(x);
    return pem;
}

static void print_cert_text(const xb_cert_record *rec, time_t now, const char *pem)
{
    char nb[32], na[32], issued[32];
    format_time(rec->not_before, nb, sizeof nb);
    format_time(rec->not_after, na, sizeof na);
    format_time(rec->issued_at, issued, sizeof issued);
    printf("serial:       %s\n", rec->serial);
    printf("device:       %s\n", rec->reg_id);
    printf("subject:      %s\n", rec->subject != NULL ? rec->subject : "-");
    printf("status:       %s\n", cert_status(rec, now));
    printf("not before:   %s\n", nb);
    printf("not after:    %s\n", na);
    printf("issued at:    %s\n", issued);
    printf("from:         %s\n", rec->client_addr[0] != '\0' ? rec->client_addr : "-");
    printf("key SHA-256:  %s\n", rec->pubkey_sha256[0] != '\0' ? rec->pubkey_sha256 : "-");
    if (rec->revoked_at != 0) {
        char revoked[32];
        format_time(rec->revoked_at, revoked, sizeof revoked);
        printf("revoked at:   %s\n", revoked);
        printf("reason:       %s\n", reason_name(rec));
    }
    fputs(pem, stdout);
}

static int print_cert(const ctl_opts *o, const xb_cert_record *rec, const char *pem)
{
    time_t now = time(NULL);
    if (o->json == NULL) {
        print_cert_text(rec, now, pem);
        return EXIT_OK;
    }
    cJSON *obj = cert_json(rec, now);
    if (obj != NULL && cJSON_AddStringToObject(obj, "pem", pem) == NULL) {
        cJSON_Delete(obj);
        obj = NULL;
    }
    return print_json(obj);
}

/* Looks the certificate up and prints it. */
static int show_cert(const ctl_opts *o, xb_registry *r, const char *serial)
{
    xb_cert_record rec;
    uint8_t *der = NULL;
    size_t der_len = 0;
    xb_diag d = {{0}};
    xb_err err = xb_registry_cert_get(r, serial, &rec, &der, &der_len, &d);
    if (err == XB_ERR_NOT_FOUND)
        return failure("no certificate has serial %s", serial);
    if (err != XB_OK)
        return failure_diag(&d, err);
    subject_find f = {serial, NULL};
    err = xb_registry_cert_each(r, rec.reg_id, find_subject, &f, &d);
    char *pem = err == XB_OK ? der_to_pem(der, der_len) : NULL;
    int rc;
    if (err != XB_OK) {
        rc = failure_diag(&d, err);
    } else if (pem == NULL) {
        rc = failure("certificate %s: the stored DER is not a certificate", serial);
    } else {
        rec.subject = f.subject;
        rc = print_cert(o, &rec, pem);
    }
    free(pem);
    free(f.subject);
    free(der);
    return rc;
}

int cmd_cert_show(const ctl_opts *o)
{
    char serial[sizeof((xb_cert_record *)0)->serial];
    if (normalize_serial(o->pos[0], serial, sizeof serial) != 0)
        return usage_error("invalid serial '%s': hexadecimal, as 'cert list' shows it", o->pos[0]);
    xb_registry *r = NULL;
    int rc = open_registry(o, 0, &r);
    if (rc >= 0)
        return rc;
    rc = show_cert(o, r, serial);
    xb_registry_close(r);
    return rc;
}
