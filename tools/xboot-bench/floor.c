#include "floor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "args.h"
#include "ca.h"
#include "der_walk.h"
#include "floor_crypto.h"
#include "floor_tls.h"
#include "pool.h"

typedef struct xbb_floor {
    char ca_key_type[64];
    const char *md; /* the CA's signature digest */
    xbb_cost verify, sign, issue, handshake;
    int have_handshake;
} xbb_floor;

/* The CA key's type in xbootctl's names, and the digest src/ca signs with for it: SHA-384 for
 * a P-384 key, SHA-256 otherwise. */
static int xbb_ca_key_kind(EVP_PKEY *key, xbb_floor *f)
{
    char group[64] = "";
    if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                                                   group, sizeof group, NULL)) {
        int p384 = strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0;
        int p256 = strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
        snprintf(f->ca_key_type, sizeof f->ca_key_type, "%s",
                 p384   ? "ec-p384"
                 : p256 ? "ec-p256"
                        : group);
        f->md = p384 ? "SHA384" : "SHA256";
        return 0;
    }
    if (EVP_PKEY_is_a(key, "RSA")) {
        snprintf(f->ca_key_type, sizeof f->ca_key_type, "rsa-%d", EVP_PKEY_get_bits(key));
        f->md = "SHA256";
        return 0;
    }
    return -1;
}

static EVP_PKEY *xbb_load_key(const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return key;
}

/* One issuance outside the timing: its TBSCertificate is the size the CA really signs. */
static int xbb_sample_tbs(xb_ca *ca, const xbb_pool_entry *e, uint8_t **tbs, size_t *len, char *err,
                          size_t errlen)
{
    xb_diag d = {{0}};
    xb_csr *csr = NULL;
    xb_issued cert = {0};
    xb_err rc = xb_csr_parse(e->csr, e->csr_len, &csr, &d);
    if (rc == XB_OK)
        rc = xb_ca_issue(ca, csr, e->id, time(NULL), &cert, &d);
    xb_csr_free(csr);
    xbb_span t;
    if (rc != XB_OK || xbb_der_cert_tbs(cert.der, cert.der_len, &t) != 0 ||
        (*tbs = malloc(t.len)) == NULL) {
        snprintf(err, errlen, "cannot issue a sample certificate: %s",
                 rc != XB_OK ? xb_diag_message(&d, rc) : "bad DER");
        xb_issued_clear(&cert);
        return -1;
    }
    memcpy(*tbs, t.p, t.len);
    *len = t.len;
    xb_issued_clear(&cert);
    return 0;
}

static double xbb_r(double v)
{
    return round(v * 10) / 10;
}

static void xbb_floor_print(const xbb_floor *f, const xbb_floor_opts *o)
{
    double floor_us = f->verify.cpu_us + f->sign.cpu_us;
    double nc_us = floor_us + f->handshake.cpu_us;
    if (o->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "ca_key_type", f->ca_key_type);
        cJSON_AddNumberToObject(j, "verify_us", xbb_r(f->verify.cpu_us));
        cJSON_AddNumberToObject(j, "sign_us", xbb_r(f->sign.cpu_us));
        cJSON_AddNumberToObject(j, "floor_us", xbb_r(floor_us));
        cJSON_AddNumberToObject(j, "floor_rate", xbb_r(1e6 / floor_us));
        cJSON_AddNumberToObject(j, "issue_us", xbb_r(f->issue.cpu_us));
        cJSON_AddNumberToObject(j, "issue_rate", xbb_r(1e6 / f->issue.cpu_us));
        if (f->have_handshake) {
            cJSON_AddNumberToObject(j, "handshake_us", xbb_r(f->handshake.cpu_us));
            cJSON_AddNumberToObject(j, "floor_new_conn_us", xbb_r(nc_us));
        } else {
            cJSON_AddNullToObject(j, "handshake_us");
            cJSON_AddNullToObject(j, "floor_new_conn_us");
        }
        cJSON_AddNumberToObject(j, "count", (double)o->count);
        cJSON_AddStringToObject(j, "key_type", xbb_key_type_name(o->key_type));
        char *s = cJSON_PrintUnformatted(j);
        if (s != NULL)
            puts(s);
        cJSON_free(s);
        cJSON_Delete(j);
        return;
    }
    printf("xboot-bench floor: CA key %s (%s), %zu %s CSRs, one thread, CPU time (wall)\n",
           f->ca_key_type, f->md, o->count, xbb_key_type_name(o->key_type));
    printf("%-26s %8.1f us (%.1f)\n", "verify (CSR key + sig)", f->verify.cpu_us,
           f->verify.wall_us);
    printf("%-26s %8.1f us (%.1f)\n", "sign (one certificate)", f->sign.cpu_us, f->sign.wall_us);
    printf("%-26s %8.1f us = %.0f/s per core\n", "floor", floor_us, 1e6 / floor_us);
    printf("%-26s %8.1f us = %.0f/s per core (%.1fx the floor)\n", "issue (xb_ca path)",
           f->issue.cpu_us, 1e6 / f->issue.cpu_us, f->issue.cpu_us / floor_us);
    if (f->have_handshake) {
        printf("%-26s %8.1f us server CPU\n", "TLS 1.3 full handshake", f->handshake.cpu_us);
        printf("%-26s %8.1f us = %.0f/s per core\n", "floor, new connection", nc_us, 1e6 / nc_us);
    }
}

static int xbb_floor_measure(const xbb_floor_opts *o, xbb_floor *f, char *err, size_t errlen)
{
    xb_ca *ca = NULL;
    xb_diag d = {{0}};
    xb_ca_config cfg = {.cert_path = o->ca_cert,
                        .key_path = o->ca_key,
                        .chain_path = NULL,
                        .validity_days = 365,
                        .subject_attributes = "C,ST,L,O,OU"};
    xb_err e = xb_ca_load(&cfg, &ca, &d);
    if (e != XB_OK) {
        snprintf(err, errlen, "cannot load the CA: %s", xb_diag_message(&d, e));
        return -1;
    }
    EVP_PKEY *key = xbb_load_key(o->ca_key);
    xbb_pool pool = {0};
    uint8_t *tbs = NULL;
    size_t tbs_len = 0;
    int rc = -1;
    if (key == NULL || xbb_ca_key_kind(key, f) != 0) {
        snprintf(err, errlen, "cannot read the CA key %s", o->ca_key);
        goto done;
    }
    if (!o->json)
        fprintf(stderr, "xboot-bench: generating %zu %s keys and CSRs...\n", o->count,
                xbb_key_type_name(o->key_type));
    if (xbb_pool_generate(&pool, o->count, o->key_type, "floor", 0, err, errlen) != 0 ||
        xbb_sample_tbs(ca, &pool.e[0], &tbs, &tbs_len, err, errlen) != 0 ||
        xbb_floor_verify(&pool, &f->verify, err, errlen) != 0 ||
        xbb_floor_sign(key, f->md, tbs, tbs_len, o->count, &f->sign, err, errlen) != 0 ||
        xbb_floor_issue(ca, &pool, &f->issue, err, errlen) != 0)
        goto done;
    if (o->tls_cert != NULL) {
        if (xbb_floor_handshake(o->tls_cert, o->tls_key, o->count, &f->handshake, err, errlen) != 0)
            goto done;
        f->have_handshake = 1;
    }
    rc = 0;
done:
    free(tbs);
    xbb_pool_free(&pool);
    EVP_PKEY_free(key);
    xb_ca_free(ca);
    ERR_clear_error();
    return rc;
}

int xbb_floor_main(int argc, char **argv)
{
    xbb_floor_opts o;
    int rc = xbb_args_floor(argc, argv, &o);
    if (rc != XBB_ARGS_OK)
        return rc == XBB_ARGS_HELP ? 0 : 2;
    xbb_floor f;
    memset(&f, 0, sizeof f);
    char err[512] = "";
    if (xbb_floor_measure(&o, &f, err, sizeof err) != 0) {
        fprintf(stderr, "xboot-bench: %s\n", err);
        return 1;
    }
    xbb_floor_print(&f, &o);
    return 0;
}
