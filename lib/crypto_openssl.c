/* The OpenSSL 3 crypto backend of libxboot (lib/crypto.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "crypto.h"

xboot_err xbc_fail(xbc_detail *detail, xboot_err err, const char *fmt, ...)
{
    if (detail != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail->msg, sizeof detail->msg, fmt, ap);
        va_end(ap);
        unsigned long e = ERR_peek_error();
        if (e != 0) {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof buf);
            size_t used = strlen(detail->msg);
            snprintf(detail->msg + used, sizeof detail->msg - used, " (%s)", buf);
        }
    }
    ERR_clear_error();
    return err;
}

/* ---- subject attributes ---- */

static const char *const xbc_allowed_rdns[] = {"C", "ST", "L", "O", "OU"};

static int xbc_rdn_name_allowed(const char *name)
{
    for (size_t i = 0; i < sizeof xbc_allowed_rdns / sizeof xbc_allowed_rdns[0]; i++)
        if (strcmp(name, xbc_allowed_rdns[i]) == 0)
            return 1;
    return 0;
}

/* 1 if s[0..len) is well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF). */
static int xbc_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t extra = c < 0x80             ? 0
                       : (c & 0xe0) == 0xc0 ? 1
                       : (c & 0xf0) == 0xe0 ? 2
                       : (c & 0xf8) == 0xf0 ? 3
                                            : 9;
        if (extra == 9 || extra >= len - i) /* not a lead byte, or cut short */
            return 0;
        unsigned long cp = extra == 0 ? c : c & (0x3f >> extra);
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        static const unsigned long min_for[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_for[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += extra + 1;
    }
    return 1;
}

/* C is a PrintableString of two characters (RFC 5280 appendix A: ISO 3166 codes). */
static int xbc_country_valid(const char *v)
{
    for (int i = 0; i < 2; i++)
        if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' && v[i] <= 'z')))
            return 0;
    return v[2] == '\0';
}

/* The value after "NAME=", up to the next unescaped '/'. A backslash escapes the character
 * after it, as in OpenSSL's one-line form; a trailing backslash is an error. */
static xboot_err xbc_subject_value(const char **p, xbc_rdn *rdn, xbc_detail *detail)
{
    const char *s = *p;
    size_t v = 0;
    while (*s != '/' && *s != '\0') {
        if (*s == '\\' && *++s == '\0')
            return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT,
                            "subject: %s ends with a lone backslash", rdn->name);
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT,
                            "subject: %s has a control character", rdn->name);
        if (v + 1 > 64)
            return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT,
                            "subject: %s is longer than 64 bytes", rdn->name);
        rdn->value[v++] = *s++;
    }
    rdn->value[v] = '\0';
    if (v == 0)
        return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT, "subject: %s is empty", rdn->name);
    if (!xbc_utf8_valid((const unsigned char *)rdn->value, v))
        return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT, "subject: %s is not UTF-8", rdn->name);
    if (strcmp(rdn->name, "C") == 0 && !xbc_country_valid(rdn->value))
        return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT,
                        "subject: C must be a two-letter country code");
    *p = s;
    return XBOOT_OK;
}

/* Copy one "NAME=VALUE" component (up to the next unescaped '/') into rdn; *p advances. */
static xboot_err xbc_subject_component(const char **p, xbc_rdn *rdn, xbc_detail *detail)
{
    const char *s = *p;
    size_t n = 0;
    while (*s != '=' && *s != '/' && *s != '\0') {
        if (n + 1 >= sizeof rdn->name)
            return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT,
                            "subject: unknown attribute '%.8s...' (allowed: C, ST, L, O, OU)", *p);
        rdn->name[n++] = *s++;
    }
    rdn->name[n] = '\0';
    if (*s != '=')
        return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT, "subject: '%s' has no '=VALUE'",
                        rdn->name);
    if (strcmp(rdn->name, "CN") == 0)
        return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT,
                        "subject: CN is the registration ID and cannot be given");
    if (!xbc_rdn_name_allowed(rdn->name))
        return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT,
                        "subject: unknown attribute '%s' (allowed: C, ST, L, O, OU)", rdn->name);
    s++;
    xboot_err e = xbc_subject_value(&s, rdn, detail);
    if (e != XBOOT_OK)
        return e;
    *p = s;
    return XBOOT_OK;
}

xboot_err xbc_subject_parse(const char *text, xbc_rdn *out, size_t *n, xbc_detail *detail)
{
    *n = 0;
    if (text == NULL || *text == '\0')
        return XBOOT_OK;
    if (*text != '/')
        return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT,
                        "subject: must start with '/' (\"/O=Contoso/OU=Sensors\")");
    const char *p = text;
    while (*p == '/') {
        p++;
        if (*n == XBC_MAX_RDNS)
            return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT, "subject: more than %d attributes",
                            XBC_MAX_RDNS);
        xboot_err e = xbc_subject_component(&p, &out[*n], detail);
        if (e != XBOOT_OK) {
            *n = 0;
            return e;
        }
        (*n)++;
    }
    return XBOOT_OK;
}

/* ---- keys and the CSR ---- */

xboot_err xbc_key_generate(xboot_key_type type, EVP_PKEY **out, xbc_detail *detail)
{
    switch (type) {
    case XBOOT_KEY_EC_P256:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case XBOOT_KEY_EC_P384:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        break;
    case XBOOT_KEY_RSA_2048:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        break;
    default:
        return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT, "unknown key type %d", (int)type);
    }
    if (*out == NULL)
        return xbc_fail(detail, XBOOT_ERR_KEY, "key generation failed");
    return XBOOT_OK;
}

/* The digest to sign with, or NULL for a key XBoot servers do not accept (what they accept:
 * RSA 2048..4096, EC P-256/P-384). */
static const char *xbc_digest_for(EVP_PKEY *key, xbc_detail *detail)
{
    if (EVP_PKEY_is_a(key, "RSA")) {
        int bits = EVP_PKEY_get_bits(key);
        if (bits >= 2048 && bits <= 4096)
            return "SHA256";
        xbc_fail(detail, XBOOT_ERR_KEY, "RSA key of %d bits; XBoot servers accept 2048..4096",
                 bits);
        return NULL;
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64] = "";
        size_t glen = 0;
        EVP_PKEY_get_group_name(key, group, sizeof group, &glen);
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
            return "SHA256";
        if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
            return "SHA384";
        xbc_fail(detail, XBOOT_ERR_KEY, "EC key on curve '%s'; XBoot servers accept P-256, P-384",
                 group);
        return NULL;
    }
    xbc_fail(detail, XBOOT_ERR_KEY, "key type %s; XBoot servers accept RSA and EC keys",
             EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "(unknown)");
    return NULL;
}

static xboot_err xbc_csr_subject(X509_REQ *req, const char *reg_id, const xbc_rdn *rdns,
                                 size_t n_rdns, xbc_detail *detail)
{
    X509_NAME *name = X509_REQ_get_subject_name(req);
    for (size_t i = 0; i < n_rdns; i++) {
        if (!X509_NAME_add_entry_by_txt(name, rdns[i].name, MBSTRING_UTF8,
                                        (const unsigned char *)rdns[i].value, -1, -1, 0))
            return xbc_fail(detail, XBOOT_ERR_CSR, "subject attribute %s=%s", rdns[i].name,
                            rdns[i].value);
    }
    /* The CN goes in as a UTF8String as it is: OpenSSL's string table caps CN at 64
     * characters (X.520's ub-common-name), and registration IDs may have 128 (DPS). */
    if (!X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                    (const unsigned char *)reg_id, -1, -1, 0))
        return xbc_fail(detail, XBOOT_ERR_CSR, "subject CN");
    return XBOOT_OK;
}

static xboot_err xbc_csr_sign(X509_REQ *req, EVP_PKEY *key, const char *digest, xbc_detail *detail)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL)
        return xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "signing context");
    xboot_err e = XBOOT_OK;
    if (EVP_DigestSignInit_ex(md, NULL, digest, NULL, NULL, key, NULL) != 1)
        e = xbc_fail(detail, XBOOT_ERR_KEY, "the key cannot sign with %s", digest);
    else if (X509_REQ_sign_ctx(req, md) <= 0)
        e = xbc_fail(detail, XBOOT_ERR_CSR, "signing the CSR failed");
    EVP_MD_CTX_free(md);
    return e;
}

/* Sign req (its subject already set) with key and encode it as DER. */
static xboot_err xbc_csr_finish(X509_REQ *req, EVP_PKEY *key, uint8_t **der, size_t *der_len,
                                xbc_detail *detail)
{
    const char *digest = xbc_digest_for(key, detail);
    if (digest == NULL)
        return XBOOT_ERR_KEY;
    if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) || !X509_REQ_set_pubkey(req, key))
        return xbc_fail(detail, XBOOT_ERR_KEY, "the CSR cannot carry this public key");
    xboot_err e = xbc_csr_sign(req, key, digest, detail);
    if (e != XBOOT_OK)
        return e;
    unsigned char *buf = NULL;
    int len = i2d_X509_REQ(req, &buf);
    if (len <= 0)
        return xbc_fail(detail, XBOOT_ERR_CSR, "CSR encoding");
    *der = buf;
    *der_len = (size_t)len;
    return XBOOT_OK;
}

xboot_err xbc_csr_build(EVP_PKEY *key, const char *reg_id, const xbc_rdn *rdns, size_t n_rdns,
                        uint8_t **der, size_t *der_len, xbc_detail *detail)
{
    *der = NULL;
    *der_len = 0;
    if (key == NULL || reg_id == NULL)
        return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT, "no key or registration ID");
    X509_REQ *req = X509_REQ_new();
    if (req == NULL)
        return xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "CSR");
    xboot_err e = xbc_csr_subject(req, reg_id, rdns, n_rdns, detail);
    if (e == XBOOT_OK)
        e = xbc_csr_finish(req, key, der, der_len, detail);
    X509_REQ_free(req);
    return e;
}

xboot_err xbc_csr_build_name(EVP_PKEY *key, const X509_NAME *subject, uint8_t **der,
                             size_t *der_len, xbc_detail *detail)
{
    *der = NULL;
    *der_len = 0;
    if (key == NULL || subject == NULL)
        return xbc_fail(detail, XBOOT_ERR_INVALID_ARGUMENT, "no key or subject");
    X509_REQ *req = X509_REQ_new();
    if (req == NULL)
        return xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "CSR");
    /* X509_REQ_set_subject_name copies the name with its cached DER encoding, so the string
     * types and attribute order of the certificate survive unchanged. */
    xboot_err e = X509_REQ_set_subject_name(req, subject)
                      ? XBOOT_OK
                      : xbc_fail(detail, XBOOT_ERR_CSR, "the CSR cannot carry this subject");
    if (e == XBOOT_OK)
        e = xbc_csr_finish(req, key, der, der_len, detail);
    X509_REQ_free(req);
    return e;
}

/* ---- certificates ---- */

/* Read every PEM certificate in the buffer. Zero certificates is not an error here. */
static xboot_err xbc_pem_certs(const uint8_t *pem, size_t len, STACK_OF(X509) * *out,
                               xbc_detail *detail)
{
    *out = sk_X509_new_null();
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (*out == NULL || bio == NULL || len > (size_t)INT32_MAX) {
        BIO_free(bio);
        sk_X509_free(*out);
        *out = NULL;
        return xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "certificate list");
    }
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(*out, x)) {
            X509_free(x);
            break;
        }
    }
    unsigned long err = ERR_peek_last_error();
    BIO_free(bio);
    if (err != 0 &&
        !(ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE)) {
        sk_X509_pop_free(*out, X509_free);
        *out = NULL;
        return xbc_fail(detail, XBOOT_ERR_BAD_RESPONSE, "malformed PEM certificate");
    }
    ERR_clear_error();
    return XBOOT_OK;
}

xboot_err xbc_certs_from_pem(const uint8_t *pem, size_t len, STACK_OF(X509) * *out,
                             xbc_detail *detail)
{
    return xbc_pem_certs(pem, len, out, detail);
}

xboot_err xbc_trust_load(const uint8_t *pem, size_t len, X509_STORE **out, xbc_detail *detail)
{
    *out = NULL;
    STACK_OF(X509) *certs = NULL;
    if (xbc_pem_certs(pem, len, &certs, detail) != XBOOT_OK)
        return XBOOT_ERR_TRUST_ANCHOR;
    if (sk_X509_num(certs) == 0) {
        sk_X509_free(certs);
        return xbc_fail(detail, XBOOT_ERR_TRUST_ANCHOR, "no PEM certificate in the trust anchor");
    }
    X509_STORE *store = X509_STORE_new();
    xboot_err e = store ? XBOOT_OK : xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "trust store");
    for (int i = 0; e == XBOOT_OK && i < sk_X509_num(certs); i++)
        if (!X509_STORE_add_cert(store, sk_X509_value(certs, i)))
            e = xbc_fail(detail, XBOOT_ERR_TRUST_ANCHOR, "trust anchor certificate %d", i + 1);
    /* Any certificate of the file is an anchor, self-signed or not (RFC 5280 section 6.1.1:
     * an intermediate may be the anchor), as libcurl also treats its CA file. */
    if (e == XBOOT_OK)
        X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    sk_X509_pop_free(certs, X509_free);
    if (e != XBOOT_OK) {
        X509_STORE_free(store);
        return e;
    }
    *out = store;
    return XBOOT_OK;
}

xboot_err xbc_cert_from_der(const uint8_t *der, size_t len, X509 **out, xbc_detail *detail)
{
    const unsigned char *p = der;
    *out = d2i_X509(NULL, &p, (long)len);
    if (*out == NULL || p != der + len) {
        X509_free(*out);
        *out = NULL;
        return xbc_fail(detail, XBOOT_ERR_BAD_RESPONSE, "not a DER certificate");
    }
    return XBOOT_OK;
}

/* 1 if the two keys have the same public part (compared as SubjectPublicKeyInfo DER, which
 * also works for keys held by a provider such as a TPM or a PKCS#11 token). */
static int xbc_same_public_key(EVP_PKEY *a, EVP_PKEY *b)
{
    unsigned char *da = NULL, *db = NULL;
    int la = a ? i2d_PUBKEY(a, &da) : -1;
    int lb = b ? i2d_PUBKEY(b, &db) : -1;
    int same = la > 0 && la == lb && memcmp(da, db, (size_t)la) == 0;
    OPENSSL_free(da);
    OPENSSL_free(db);
    ERR_clear_error();
    return same;
}

static xboot_err xbc_check_cn(X509 *cert, const char *reg_id, xbc_detail *detail)
{
    X509_NAME *name = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0)
        return xbc_fail(detail, XBOOT_ERR_CERT_SUBJECT_MISMATCH, "the certificate has no CN");
    if (X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0)
        return xbc_fail(detail, XBOOT_ERR_CERT_SUBJECT_MISMATCH, "the certificate has two CNs");
    unsigned char *cn = NULL;
    int len = ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
    xboot_err e = XBOOT_OK;
    if (len < 0)
        e = xbc_fail(detail, XBOOT_ERR_CERT_SUBJECT_MISMATCH, "the certificate's CN is unreadable");
    else if ((size_t)len != strlen(reg_id) || memcmp(cn, reg_id, (size_t)len) != 0)
        e = xbc_fail(detail, XBOOT_ERR_CERT_SUBJECT_MISMATCH,
                     "the certificate is for CN=%.*s, not %s", len > 128 ? 128 : len, (char *)cn,
                     reg_id);
    OPENSSL_free(cn);
    return e;
}

static xboot_err xbc_check_chain(X509 *cert, STACK_OF(X509) * chain, X509_STORE *trust,
                                 xbc_detail *detail)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (ctx == NULL || !X509_STORE_CTX_init(ctx, trust, cert, chain)) {
        X509_STORE_CTX_free(ctx);
        return xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "verification context");
    }
    /* The purpose check requires extendedKeyUsage clientAuth when the extension is present. */
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    xboot_err e = XBOOT_OK;
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        e = xbc_fail(detail, XBOOT_ERR_CERT_UNTRUSTED, "certificate verification failed: %s",
                     X509_verify_cert_error_string(err));
    }
    X509_STORE_CTX_free(ctx);
    return e;
}

xboot_err xbc_cert_check(X509 *cert, STACK_OF(X509) * chain, X509_STORE *trust, EVP_PKEY *key,
                         const char *reg_id, xbc_detail *detail)
{
    if (!xbc_same_public_key(X509_get0_pubkey(cert), key))
        return xbc_fail(detail, XBOOT_ERR_CERT_KEY_MISMATCH,
                        "the certificate's public key is not this device's key");
    xboot_err e = xbc_check_cn(cert, reg_id, detail);
    if (e != XBOOT_OK)
        return e;
    if (X509_get_extension_flags(cert) & EXFLAG_CA)
        return xbc_fail(detail, XBOOT_ERR_CERT_UNTRUSTED, "the certificate is a CA certificate");
    return xbc_check_chain(cert, chain, trust, detail);
}

static int xbc_asn1_time_t(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    *out = (int64_t)timegm(&tm);
    return 1;
}

xboot_err xbc_cert_validity(X509 *cert, int64_t *not_before, int64_t *not_after, xbc_detail *detail)
{
    if (cert == NULL || !xbc_asn1_time_t(X509_get0_notBefore(cert), not_before) ||
        !xbc_asn1_time_t(X509_get0_notAfter(cert), not_after))
        return xbc_fail(detail, XBOOT_ERR_STORAGE, "the certificate's validity is unreadable");
    return XBOOT_OK;
}

/* ---- encodings ---- */

static xboot_err xbc_bio_take(BIO *bio, char **pem, size_t *len, xbc_detail *detail)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    *pem = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (*pem == NULL)
        return xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "PEM buffer");
    if (n > 0) /* an empty BIO (no chain certificates) has no data pointer */
        memcpy(*pem, data, (size_t)n);
    (*pem)[n] = '\0';
    *len = (size_t)n;
    return XBOOT_OK;
}

xboot_err xbc_key_to_pem(EVP_PKEY *key, char **pem, size_t *len, xbc_detail *detail)
{
    *pem = NULL;
    /* A secure-memory BIO: the buffer holding the private key is wiped when freed. */
    BIO *bio = BIO_new(BIO_s_secmem());
    xboot_err e = XBOOT_OK;
    if (bio == NULL)
        e = xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "key PEM");
    else if (!PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
        e = xbc_fail(detail, XBOOT_ERR_KEY, "the key cannot be written as PKCS#8 PEM");
    else
        e = xbc_bio_take(bio, pem, len, detail);
    BIO_free(bio);
    return e;
}

xboot_err xbc_certs_to_pem(X509 *const *certs, size_t n, char **pem, size_t *len,
                           xbc_detail *detail)
{
    *pem = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    xboot_err e = bio ? XBOOT_OK : xbc_fail(detail, XBOOT_ERR_NO_MEMORY, "certificate PEM");
    for (size_t i = 0; e == XBOOT_OK && i < n; i++)
        if (!PEM_write_bio_X509(bio, certs[i]))
            e = xbc_fail(detail, XBOOT_ERR_INTERNAL, "certificate PEM");
    if (e == XBOOT_OK)
        e = xbc_bio_take(bio, pem, len, detail);
    BIO_free(bio);
    return e;
}

/* Never prompt on a terminal for a passphrase: the store's key is not encrypted. */
static int xbc_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

xboot_err xbc_key_from_pem(const uint8_t *pem, size_t len, EVP_PKEY **out, xbc_detail *detail)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    *out = bio ? PEM_read_bio_PrivateKey(bio, NULL, xbc_no_passphrase, NULL) : NULL;
    BIO_free(bio);
    if (*out == NULL)
        return xbc_fail(detail, XBOOT_ERR_STORAGE, "the stored key cannot be read");
    return XBOOT_OK;
}

xboot_err xbc_pkcs12_build(EVP_PKEY *key, X509 *cert, STACK_OF(X509) * chain, const char *password,
                           const char *reg_id, uint8_t **der, size_t *len, xbc_detail *detail)
{
    *der = NULL;
    /* OpenSSL 3's defaults: PBES2 with PBKDF2 and AES-256-CBC for key and certificates, a
     * SHA-256 MAC: what current .NET, Windows and OpenSSL read without legacy options. */
    PKCS12 *p12 = PKCS12_create_ex(password ? password : "", reg_id, key, cert, chain, 0, 0, 0, 0,
                                   0, NULL, NULL);
    if (p12 == NULL)
        return xbc_fail(detail, XBOOT_ERR_PKCS12,
                        "PKCS#12 (a key held in a token or TPM cannot be exported into one)");
    unsigned char *buf = NULL;
    int n = i2d_PKCS12(p12, &buf);
    PKCS12_free(p12);
    if (n <= 0)
        return xbc_fail(detail, XBOOT_ERR_PKCS12, "PKCS#12 encoding");
    *der = buf;
    *len = (size_t)n;
    return XBOOT_OK;
}
