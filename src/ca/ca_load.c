/* Loading the signing CA once: certificate, key, chain, and the extensions every device
 * certificate carries. */
#include "ca.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca_internal.h"
#include "key_source.h"
#include "xb_util.h"

const EVP_MD *xb_ca_digest_for_key(const EVP_PKEY *key)
{
    if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
        return NULL;
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64] = "";
        size_t len = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           &len) &&
            strcmp(group, "secp384r1") == 0)
            return EVP_sha384();
    }
    return EVP_sha256();
}

void xb_ca_free(xb_ca *ca)
{
    if (ca == NULL)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    xb_signer_free(ca->signer);
    X509_EXTENSION_free(ca->ext_basic_constraints);
    X509_EXTENSION_free(ca->ext_key_usage_ec);
    X509_EXTENSION_free(ca->ext_key_usage_rsa);
    X509_EXTENSION_free(ca->ext_eku);
    X509_EXTENSION_free(ca->ext_aki);
    X509_EXTENSION_free(ca->ext_cdp);
    xb_ca_fast_free(&ca->fast);
    for (size_t i = 0; i < ca->chain_count; i++)
        OPENSSL_free(ca->chain_der[i]);
    OPENSSL_free(ca->chain_der);
    OPENSSL_free(ca->chain_len);
    OPENSSL_free(ca);
}

static xb_err xb_ca_parse_copy_attrs(xb_ca *ca, const char *list, xb_diag *d)
{
    char buf[256];
    if (list == NULL)
        list = "C,ST,L,O,OU";
    if (strlen(list) >= sizeof buf)
        return xb_fail(d, XB_ERR_CONFIG, "subject_attributes is too long");
    strcpy(buf, list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
        int nid = OBJ_sn2nid(tok);
        if (nid == NID_undef)
            return xb_fail(d, XB_ERR_CONFIG,
                           "subject_attributes: unknown attribute '%s' (use short names such "
                           "as C, ST, L, O, OU)",
                           tok);
        if (nid == NID_commonName)
            return xb_fail(d, XB_ERR_CONFIG,
                           "subject_attributes: CN is always the registration ID and cannot be "
                           "copied");
        if (ca->copy_count == XB_CA_MAX_COPY_ATTRS)
            return xb_fail(d, XB_ERR_CONFIG, "subject_attributes: at most %d attributes",
                           XB_CA_MAX_COPY_ATTRS);
        ca->copy_nids[ca->copy_count++] = nid;
    }
    return XB_OK;
}

static X509_EXTENSION *xb_ca_conf_ext(int nid, const char *value)
{
    /* Parsed once per CA, then only copied into each certificate. */
    return X509V3_EXT_conf_nid(NULL, NULL, nid, value);
}

static xb_err xb_ca_build_aki(xb_ca *ca, xb_diag *d)
{
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    if (akid == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca->cert);
    if (ski != NULL) {
        akid->keyid = ASN1_OCTET_STRING_dup(ski);
    } else {
        /* A CA certificate without SKI: use the RFC 5280 method-1 key hash, as its SKI would. */
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        akid->keyid = ASN1_OCTET_STRING_new();
        if (akid->keyid != NULL && (!X509_pubkey_digest(ca->cert, EVP_sha1(), md, &mdlen) ||
                                    !ASN1_OCTET_STRING_set(akid->keyid, md, (int)mdlen))) {
            ASN1_OCTET_STRING_free(akid->keyid);
            akid->keyid = NULL;
        }
    }
    if (akid->keyid != NULL)
        ca->ext_aki = X509V3_EXT_i2d(NID_authority_key_identifier, 0, akid);
    AUTHORITY_KEYID_free(akid);
    if (ca->ext_aki == NULL)
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot build authorityKeyIdentifier");
    return XB_OK;
}

/* The PEM certificates of a source (a path or an https:// URL) pushed onto certs. */
static xb_err xb_ca_read_certs(const char *spec, const char *what, const char *https_ca_file,
                               STACK_OF(X509) * certs, xb_diag *d)
{
    uint8_t *pem = NULL;
    size_t len = 0;
    xb_err err = xb_source_read(spec, what, https_ca_file, &pem, &len, d);
    if (err != XB_OK)
        return err;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509 *x;
    while (bio != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            break;
        }
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    BIO_free(bio);
    free(pem);
    return XB_OK;
}

static xb_err xb_ca_load_chain(xb_ca *ca, const xb_ca_config *cfg, xb_diag *d)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    if (certs == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    xb_err err = XB_OK;
    const char *path = cfg->chain_path;
    if (path != NULL && path[0] != '\0') {
        char shown[XB_SOURCE_SHOWN_MAX];
        err = xb_source_shown(path, shown, sizeof shown, d);
        if (err == XB_OK)
            err = xb_ca_read_certs(path, "chain", cfg->https_ca_file, certs, d);
        if (err != XB_OK)
            ;
        else if (sk_X509_num(certs) == 0)
            err = xb_fail(d, XB_ERR_CONFIG, "chain %s holds no PEM certificate", shown);
        else if (X509_cmp(sk_X509_value(certs, 0), ca->cert) != 0)
            err = xb_fail(d, XB_ERR_CONFIG, "chain %s must start with the signing CA certificate",
                          shown);
    } else if (X509_up_ref(ca->cert) && !sk_X509_push(certs, ca->cert)) {
        X509_free(ca->cert);
    }
    size_t n = (size_t)sk_X509_num(certs);
    if (err == XB_OK && n == 0)
        err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
    if (err == XB_OK) {
        ca->chain_der = OPENSSL_zalloc(n * sizeof *ca->chain_der);
        ca->chain_len = OPENSSL_zalloc(n * sizeof *ca->chain_len);
        if (ca->chain_der == NULL || ca->chain_len == NULL)
            err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; err == XB_OK && i < n; i++) {
        unsigned char *der = NULL;
        int len = i2d_X509(sk_X509_value(certs, (int)i), &der);
        if (len <= 0) {
            err = xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot encode chain certificate");
            break;
        }
        ca->chain_der[i] = der;
        ca->chain_len[i] = (size_t)len;
        ca->chain_count = i + 1;
    }
    sk_X509_pop_free(certs, X509_free);
    return err;
}

static xb_err xb_ca_load_cert(xb_ca *ca, const xb_ca_config *cfg, const char *shown, xb_diag *d)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    if (certs == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    xb_err err = xb_ca_read_certs(cfg->cert_path, "CA certificate", cfg->https_ca_file, certs, d);
    if (err == XB_OK && sk_X509_num(certs) == 0)
        err = xb_fail(d, XB_ERR_CONFIG, "CA certificate %s holds no PEM certificate", shown);
    if (err == XB_OK)
        ca->cert = sk_X509_shift(certs);
    sk_X509_pop_free(certs, X509_free);
    return err;
}

/* The certificate, the key, and the checks that they make a CA that can sign now. */
static xb_err xb_ca_load_files(xb_ca *ca, const xb_ca_config *cfg, xb_diag *d)
{
    char shown[XB_SOURCE_SHOWN_MAX], key_shown[XB_SOURCE_SHOWN_MAX];
    xb_err err = xb_source_shown(cfg->cert_path, shown, sizeof shown, d);
    if (err == XB_OK)
        err = xb_ca_load_cert(ca, cfg, shown, d);
    if (err != XB_OK)
        return err;
    /* The key as messages name it: a pkcs11: URI may hold a pin-value, a URL a token. */
    xb_diag ignored = {""};
    if (strncmp(cfg->key_path, "pkcs11:", 7) == 0)
        snprintf(key_shown, sizeof key_shown, "(the PKCS#11 key)");
    else if (xb_source_shown(cfg->key_path, key_shown, sizeof key_shown, &ignored) != XB_OK)
        snprintf(key_shown, sizeof key_shown, "(the URL)");
    xb_key_options ko = {
        .passphrase_file = cfg->key_passphrase_file, /* else XBOOT_CA_KEY_PASSPHRASE */
        .https_ca_file = cfg->https_ca_file,
        .pkcs11_module = cfg->pkcs11_module,
    };
    err = xb_signer_open(cfg->key_path, &ko, &ca->signer, d);
    if (err != XB_OK)
        return err;
    if (ca->signer->pkey != NULL && EVP_PKEY_up_ref(ca->signer->pkey))
        ca->key = ca->signer->pkey;
    if (EVP_PKEY_eq(ca->signer->pub, X509_get0_pubkey(ca->cert)) != 1) {
        ERR_clear_error();
        return xb_fail(d, XB_ERR_CONFIG, "CA key %s does not match the CA certificate %s",
                       key_shown, shown);
    }
    if (X509_check_ca(ca->cert) == 0)
        return xb_fail(d, XB_ERR_CONFIG,
                       "the certificate %s is not a CA certificate (it lacks basicConstraints "
                       "CA:TRUE)",
                       shown);
    if ((X509_get_extension_flags(ca->cert) & EXFLAG_KUSAGE) &&
        !(X509_get_key_usage(ca->cert) & KU_KEY_CERT_SIGN))
        return xb_fail(d, XB_ERR_CONFIG, "CA certificate %s lacks keyUsage keyCertSign", shown);
    time_t not_before = 0, now = time(NULL);
    if (xb_asn1_time_to_time_t(X509_get0_notAfter(ca->cert), &ca->not_after) != 0 ||
        xb_asn1_time_to_time_t(X509_get0_notBefore(ca->cert), &not_before) != 0)
        return xb_fail(d, XB_ERR_CONFIG, "cannot read the validity of CA certificate %s", shown);
    if (not_before > now) {
        char when[32];
        xb_time_rfc3339(not_before, when, sizeof when);
        return xb_fail(d, XB_ERR_CONFIG,
                       "CA certificate %s is not valid before %s (is this host's clock right?)",
                       shown, when);
    }
    return XB_OK;
}

xb_err xb_ca_load(const xb_ca_config *cfg, xb_ca **out, xb_diag *d)
{
    *out = NULL;
    if (cfg->cert_path == NULL || cfg->key_path == NULL)
        return xb_fail(d, XB_ERR_CONFIG, "the CA certificate and key paths are required");
    if (cfg->validity_days < 1 || cfg->validity_days > 3650)
        return xb_fail(d, XB_ERR_CONFIG, "validity_days must be 1..3650, not %d",
                       cfg->validity_days);
    xb_ca *ca = OPENSSL_zalloc(sizeof *ca);
    if (ca == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    ca->validity_days = cfg->validity_days;
    xb_err err = xb_ca_parse_copy_attrs(ca, cfg->subject_attributes, d);
    if (err == XB_OK)
        err = xb_ca_load_files(ca, cfg, d);
    if (err == XB_OK) {
        ca->md = xb_ca_digest_for_key(ca->signer->pub);
        ca->ext_basic_constraints = xb_ca_conf_ext(NID_basic_constraints, "critical,CA:FALSE");
        ca->ext_key_usage_ec = xb_ca_conf_ext(NID_key_usage, "critical,digitalSignature");
        ca->ext_key_usage_rsa =
            xb_ca_conf_ext(NID_key_usage, "critical,digitalSignature,keyEncipherment");
        ca->ext_eku = xb_ca_conf_ext(NID_ext_key_usage, "clientAuth");
        if (ca->ext_basic_constraints == NULL || ca->ext_key_usage_ec == NULL ||
            ca->ext_key_usage_rsa == NULL || ca->ext_eku == NULL)
            err = xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot build certificate extensions");
    }
    if (err == XB_OK)
        err = xb_ca_build_aki(ca, d);
    if (err == XB_OK)
        err = xb_ca_fast_prepare(ca, d);
    if (err == XB_OK)
        err = xb_ca_load_chain(ca, cfg, d);
    if (err != XB_OK) {
        xb_ca_free(ca);
        return err;
    }
    *out = ca;
    return XB_OK;
}

xb_err xb_ca_check_usable(const xb_ca *ca, time_t now, xb_diag *d)
{
    if (ca == NULL || ca->signer == NULL)
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "no CA key loaded");
    if (X509_cmp_time(X509_get0_notBefore(ca->cert), &now) > 0)
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "the signing CA certificate is not yet valid");
    if (ca->not_after <= now) {
        char when[32];
        xb_time_rfc3339(ca->not_after, when, sizeof when);
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "the signing CA certificate has expired (%s)",
                       when);
    }
    return XB_OK;
}

xb_err xb_ca_after_fork(xb_ca *ca, xb_diag *d)
{
    return ca == NULL ? XB_OK : xb_signer_after_fork(ca->signer, d);
}

xb_err xb_ca_check_key(xb_ca *ca, xb_diag *d)
{
    if (ca == NULL)
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "no CA key loaded");
    return xb_signer_check(ca->signer, d);
}

size_t xb_ca_chain_count(const xb_ca *ca)
{
    return ca->chain_count;
}

const uint8_t *xb_ca_chain_der(const xb_ca *ca, size_t i, size_t *len)
{
    if (i >= ca->chain_count)
        return NULL;
    *len = ca->chain_len[i];
    return ca->chain_der[i];
}

X509 *xb_ca_signing_cert(const xb_ca *ca)
{
    return ca->cert;
}

const char *xb_ca_key_type(const xb_ca *ca)
{
    char group[64] = "";
    size_t len = 0;
    const EVP_PKEY *pub = ca->signer->pub;
    if (EVP_PKEY_is_a(pub, "EC") &&
        EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len))
        return strcmp(group, "secp384r1") == 0    ? "ec-p384"
               : strcmp(group, "prime256v1") == 0 ? "ec-p256"
                                                  : "other";
    return EVP_PKEY_is_a(pub, "RSA") ? "rsa" : "other";
}
