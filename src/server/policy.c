/* Who may enroll (policy.h): which credential a device needs, whether what it presented is
 * that credential, and what its registry row allows. */
#include "policy.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "xb_credential.h"

const char *xb_credential_name(xb_credential c)
{
    static const char *const names[] = {"none",  "api_key", "secret",
                                        "group", "idevid",  "certificate"};
    return (size_t)c < sizeof names / sizeof names[0] ? names[c] : "none";
}

void xb_policy_free(xb_policy *p)
{
    if (p == NULL)
        return;
    X509_STORE_free(p->issued);
    X509_STORE_free(p->manufacturer);
    sk_X509_pop_free(p->ours, X509_free);
    free(p->previous_path);
    free(p);
}

/* The CA certificates of the PEM bundle at path onto sk (what names the key in messages): at
 * least one, every one a CA. */
static xb_err xb_policy_read_cas(const char *path, const char *what, STACK_OF(X509) * sk,
                                 xb_diag *d)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return xb_fail(d, XB_ERR_CONFIG, "%s: cannot open %s", what, path);
    int n = 0;
    X509 *x = NULL;
    xb_err err = XB_OK;
    while (err == XB_OK && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        n++;
        if (X509_check_ca(x) == 0)
            err = xb_fail(d, XB_ERR_CONFIG, "%s: certificate %d of %s is not a CA certificate",
                          what, n, path);
        else if (!sk_X509_push(sk, x))
            err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
        else
            x = NULL;
        X509_free(x);
    }
    fclose(f);
    ERR_clear_error(); /* the end of the file */
    if (err == XB_OK && n == 0)
        err = xb_fail(d, XB_ERR_CONFIG, "%s: %s holds no PEM certificate", what, path);
    return err;
}

/* A verification store of these anchors; a partial chain ends at any of them. */
static xb_err xb_policy_store_of(STACK_OF(X509) * anchors, X509_STORE **out, xb_diag *d)
{
    X509_STORE *store = X509_STORE_new();
    int ok = store != NULL &&
             X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT);
    for (int i = 0; ok && i < sk_X509_num(anchors); i++)
        ok = X509_STORE_add_cert(store, sk_X509_value(anchors, i));
    if (!ok) {
        X509_STORE_free(store);
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot build a certificate store");
    }
    *out = store;
    return XB_OK;
}

/* The certificates we issued are those of the signing CA and of the signing CAs rotated out
 * ([ca] previous: their certificates may still renew), and no other CA's, not even under the
 * same root (a partial chain ends at them). */
xb_err xb_policy_set_ca(xb_policy *p, const xb_ca *ca, xb_diag *d)
{
    STACK_OF(X509) *ours = sk_X509_new_null();
    X509 *signing = xb_ca_signing_cert(ca);
    xb_err err = ours != NULL && X509_up_ref(signing) && sk_X509_push(ours, signing)
                     ? XB_OK
                     : xb_fail_ssl(d, XB_ERR_NOMEM, "cannot keep the signing CA certificate");
    /* Not there yet is none yet: the file is made by the first `xbootctl ca rotate`. */
    if (err == XB_OK && p->previous_path != NULL && access(p->previous_path, F_OK) == 0)
        err = xb_policy_read_cas(p->previous_path, "[ca] previous", ours, d);
    X509_STORE *store = NULL;
    if (err == XB_OK)
        err = xb_policy_store_of(ours, &store, d);
    if (err != XB_OK) {
        sk_X509_pop_free(ours, X509_free);
        return err;
    }
    X509_STORE_free(p->issued);
    sk_X509_pop_free(p->ours, X509_free);
    p->issued = store;
    p->ours = ours;
    return XB_OK;
}

/* [policy] manufacturer_ca: a PEM bundle of the CAs whose device certificates (IDevIDs) we
 * accept, roots or intermediates. */
static xb_err xb_policy_manufacturer_store(const char *path, X509_STORE **out, xb_diag *d)
{
    STACK_OF(X509) *cas = sk_X509_new_null();
    xb_err err = cas != NULL ? xb_policy_read_cas(path, "[policy] manufacturer_ca", cas, d)
                             : xb_fail(d, XB_ERR_NOMEM, "out of memory");
    if (err == XB_OK)
        err = xb_policy_store_of(cas, out, d);
    sk_X509_pop_free(cas, X509_free);
    return err;
}

xb_err xb_policy_load(const xb_config *cfg, const xb_ca *ca, xb_policy **out, xb_diag *d)
{
    *out = NULL;
    xb_policy *p = calloc(1, sizeof *p);
    if (p == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    p->id_nid = OBJ_txt2nid(cfg->manufacturer_id_field);
    if (cfg->ca_previous[0] != '\0' && (p->previous_path = strdup(cfg->ca_previous)) == NULL) {
        free(p);
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    }
    xb_err err = p->id_nid == NID_undef
                     ? xb_fail(d, XB_ERR_CONFIG,
                               "[policy] manufacturer_id_field: unknown attribute '%s' (e.g. CN, "
                               "serialNumber)",
                               cfg->manufacturer_id_field)
                     : xb_policy_set_ca(p, ca, d);
    if (err == XB_OK && cfg->manufacturer_ca[0] != '\0')
        err = xb_policy_manufacturer_store(cfg->manufacturer_ca, &p->manufacturer, d);
    if (err != XB_OK) {
        xb_policy_free(p);
        return err;
    }
    *out = p;
    return XB_OK;
}

/* Every handshake finishes, whatever the client sends: the policy judges the certificate of an
 * enrollment; the other routes never look. */
static int xb_policy_verify_any(int preverify_ok, X509_STORE_CTX *ctx)
{
    (void)preverify_ok, (void)ctx;
    return 1;
}

xb_err xb_policy_tls_setup(const xb_policy *p, SSL_CTX *ctx, const xb_ca *ca, xb_diag *d)
{
    /* SSL_VERIFY_PEER without FAIL_IF_NO_PEER_CERT: requested, optional. Naming the CAs helps
     * clients holding several certificates pick the right one. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, xb_policy_verify_any);
    (void)ca; /* p->ours starts with its signing certificate */
    for (int i = 0; i < sk_X509_num(p->ours); i++)
        if (!SSL_CTX_add_client_CA(ctx, sk_X509_value(p->ours, i)))
            return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot name our signing CAs to TLS clients");
    if (p->manufacturer == NULL)
        return XB_OK;
    /* get0: this runs once at start, before any other thread could touch the store. */
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(p->manufacturer);
    for (int i = 0; objs != NULL && i < sk_X509_OBJECT_num(objs); i++) {
        X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        if (x != NULL && !SSL_CTX_add_client_CA(ctx, x))
            return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot name a manufacturer CA to TLS clients");
    }
    return XB_OK;
}

/* ---- the decision ---- */

/* What the device's row asks of it. */
typedef enum xb_need { XB_NEED_NOTHING, XB_NEED_API_KEY, XB_NEED_DEVICE } xb_need;

static xb_need xb_policy_need(const xb_config *cfg, const xb_device *dev)
{
    if (dev != NULL && (dev->has_secret || dev->group[0] != '\0'))
        return XB_NEED_DEVICE;
    return cfg->api_key[0] != '\0' ? XB_NEED_API_KEY : XB_NEED_NOTHING;
}

int xb_policy_key_equal(const char *given, const char *want)
{
    size_t gl = strlen(given), wl = strlen(want);
    /* Constant time in the key's content; the length is not a secret worth hiding. */
    return gl == wl && CRYPTO_memcmp(given, want, wl) == 0;
}

/* Issued by one of our signing CAs (the current one or one rotated out)? */
static int xb_policy_ours(const xb_policy *p, X509 *cert)
{
    for (int i = 0; i < sk_X509_num(p->ours); i++)
        if (X509_check_issued(sk_X509_value(p->ours, i), cert) == X509_V_OK)
            return 1;
    return 0;
}

/* A TLS client certificate is judged whenever one is presented, never ignored (a foreign one is
 * refused rather than treated as anonymous), except ours on a route that does not renew: a
 * device whose TLS stack always sends its certificate may still enroll on the JSON API with
 * another credential. XB_ERR_NOT_FOUND: no credential from it. */
static xb_err xb_policy_by_cert(const xb_policy *p, xb_registry *reg, const xb_presented *in,
                                xb_decision *out, xb_diag *d)
{
    /* Issued by our signing CA (valid or not: expired, revoked) on a route that does not renew:
     * not a credential here, and no reason to refuse one that comes with it. */
    if (!in->renewal_route && xb_policy_ours(p, in->peer))
        return XB_ERR_NOT_FOUND;
    char owner[XB_REGID_MAX + 1];
    xb_err err = xb_policy_issued_cert(p, reg, in->peer, owner, d);
    if (err == XB_OK && strcasecmp(owner, in->reg_id) != 0)
        return xb_fail(d, XB_ERR_SUBJECT_MISMATCH,
                       "the TLS client certificate was issued to %s: it cannot renew %s", owner,
                       in->reg_id);
    if (err == XB_OK) {
        out->credential = XB_CRED_CERT;
        out->renewal = 1;
        return XB_OK;
    }
    if (err != XB_ERR_NOT_FOUND)
        return err;
    xb_diag ours = *d; /* why it is not ours, if it is no manufacturer's either */
    err = xb_policy_idevid(p, in->peer, owner, d);
    if (err == XB_ERR_NOT_FOUND)
        return xb_fail(d, XB_ERR_UNAUTHORIZED, "%s%s", ours.msg,
                       p->manufacturer != NULL ? ", nor from a manufacturer CA" : "");
    if (err == XB_OK && strcasecmp(owner, in->reg_id) != 0)
        return xb_fail(d, XB_ERR_UNAUTHORIZED, "the manufacturer certificate names %s, not %s",
                       owner, in->reg_id);
    if (err == XB_OK)
        out->credential = XB_CRED_IDEVID;
    return err;
}

/* Looking for the group whose derived key the password is (a device without a row, or one
 * whose row names no credential). */
typedef struct xb_group_search {
    const char *reg_id, *password;
    char found[XB_GROUP_NAME_MAX + 1];
} xb_group_search;

static xb_err xb_policy_group_match(const xb_group *g, void *ctx)
{
    xb_group_search *s = ctx;
    if (!xb_derived_key_matches(g->key, g->key_len, s->reg_id, s->password, strlen(s->password)))
        return XB_OK;
    snprintf(s->found, sizeof s->found, "%s", g->name);
    return XB_ERR_EXISTS; /* stops the walk */
}

/* The password against the device's own credential, or when it names none, every group's
 * derived key and then the API key. XB_ERR_NOT_FOUND: it matches nothing. */
static xb_err xb_policy_password(const xb_config *cfg, xb_registry *reg, const char *reg_id,
                                 const xb_device *dev, const char *password, xb_decision *out,
                                 xb_diag *d)
{
    size_t len = strlen(password);
    if (dev != NULL && dev->has_secret) {
        if (!xb_secret_matches(password, len, dev->secret_sha256))
            return XB_ERR_NOT_FOUND;
        out->credential = XB_CRED_SECRET;
        return XB_OK;
    }
    if (dev != NULL && dev->group[0] != '\0') {
        xb_group g;
        xb_err err = xb_registry_group_get(reg, dev->group, &g, d);
        int ok = err == XB_OK && xb_derived_key_matches(g.key, g.key_len, reg_id, password, len);
        OPENSSL_cleanse(&g, sizeof g);
        if (err != XB_OK && err != XB_ERR_NOT_FOUND)
            return err;
        if (!ok)
            return XB_ERR_NOT_FOUND;
        out->credential = XB_CRED_GROUP;
        snprintf(out->group, sizeof out->group, "%s", dev->group);
        return XB_OK;
    }
    xb_group_search s = {.reg_id = reg_id, .password = password};
    xb_err err = len == XB_CREDENTIAL_B64_LEN
                     ? xb_registry_group_each(reg, xb_policy_group_match, &s, d)
                     : XB_OK;
    if (err == XB_ERR_EXISTS) {
        out->credential = XB_CRED_GROUP;
        snprintf(out->group, sizeof out->group, "%s", s.found);
        return XB_OK;
    }
    if (err != XB_OK)
        return err;
    if (cfg->api_key[0] != '\0' && xb_policy_key_equal(password, cfg->api_key)) {
        out->credential = XB_CRED_API_KEY;
        return XB_OK;
    }
    return XB_ERR_NOT_FOUND;
}

static xb_err xb_policy_by_basic(const xb_config *cfg, xb_registry *reg, const xb_presented *in,
                                 const xb_device *dev, xb_decision *out, xb_diag *d)
{
    char password[256];
    xb_err err = xb_basic_parse(in->authorization, in->reg_id, password, sizeof password, d);
    if (err == XB_ERR_NOT_FOUND) /* a scheme we do not take is refused, never ignored */
        err = xb_fail(d, XB_ERR_UNAUTHORIZED,
                      "the Authorization header is not HTTP Basic (user-id = registration ID)");
    if (err == XB_OK) {
        err = xb_policy_password(cfg, reg, in->reg_id, dev, password, out, d);
        /* Nothing needed: the password is not checked (open mode's EST clients send one). */
        if (err == XB_ERR_NOT_FOUND && xb_policy_need(cfg, dev) == XB_NEED_NOTHING) {
            out->credential = XB_CRED_NONE;
            err = XB_OK;
        } else if (err == XB_ERR_NOT_FOUND) {
            err = xb_fail(d, XB_ERR_UNAUTHORIZED,
                          "the HTTP Basic password is not a valid credential for %s", in->reg_id);
        }
    }
    OPENSSL_cleanse(password, sizeof password);
    return err;
}

static xb_err xb_policy_missing(const xb_config *cfg, const xb_presented *in, const xb_device *dev,
                                xb_decision *out, xb_diag *d)
{
    switch (xb_policy_need(cfg, dev)) {
    case XB_NEED_DEVICE:
        return xb_fail(d, XB_ERR_UNAUTHORIZED,
                       "device %s enrolls with its %s: send it as the HTTP Basic password, "
                       "with the registration ID as user-id",
                       in->reg_id, dev->has_secret ? "enrollment secret" : "group-derived key");
    case XB_NEED_API_KEY:
        if (in->api_key != NULL && xb_policy_key_equal(in->api_key, cfg->api_key)) {
            out->credential = XB_CRED_API_KEY;
            return XB_OK;
        }
        return xb_fail(d, XB_ERR_UNAUTHORIZED, "%s",
                       in->api_key != NULL ? "the function key is not valid"
                                           : XB_POLICY_NO_CREDENTIALS);
    default:
        out->credential = XB_CRED_NONE;
        return XB_OK;
    }
}

/* The credential: a certificate first, then HTTP Basic, then the API key. */
static xb_err xb_policy_credential(const xb_policy *p, const xb_config *cfg, xb_registry *reg,
                                   const xb_presented *in, const xb_device *dev, xb_decision *out,
                                   xb_diag *d)
{
    if (in->peer != NULL) {
        xb_err err = xb_policy_by_cert(p, reg, in, out, d);
        if (err != XB_ERR_NOT_FOUND)
            return err;
    }
    if (in->authorization != NULL) {
        xb_err err = xb_policy_by_basic(cfg, reg, in, dev, out, d);
        if (err != XB_ERR_NOT_FOUND)
            return err;
    }
    return xb_policy_missing(cfg, in, dev, out, d);
}

/* The row's state, once the credential is known. */
static xb_err xb_policy_state(const xb_config *cfg, const xb_presented *in, const xb_device *dev,
                              xb_decision *out, xb_diag *d)
{
    if (dev == NULL) {
        if (out->credential == XB_CRED_GROUP)
            out->new_source = "group";
        else if (out->credential == XB_CRED_IDEVID)
            out->new_source = "idevid";
        else if (cfg->open_mode)
            out->new_source = "open";
        else
            return xb_fail(d, XB_ERR_DEVICE_UNKNOWN, "device %s is not registered", in->reg_id);
        return XB_OK;
    }
    if (!dev->enabled)
        return xb_fail(d, XB_ERR_DEVICE_DISABLED, "device %s is disabled", in->reg_id);
    if (dev->enrolled_at != 0 && !cfg->allow_reenroll && !out->renewal)
        return xb_fail(d, XB_ERR_ALREADY_ENROLLED,
                       "device %s already has a certificate; its bootstrap credential is spent "
                       "(renew with the certificate over EST)",
                       in->reg_id);
    return XB_OK;
}

xb_err xb_policy_authorize(const xb_policy *p, const xb_config *cfg, xb_registry *reg,
                           const xb_presented *in, xb_decision *out, xb_diag *d)
{
    memset(out, 0, sizeof *out);
    xb_device dev;
    xb_err err = xb_registry_device_get(reg, in->reg_id, &dev, d);
    if (err != XB_OK && err != XB_ERR_DEVICE_UNKNOWN)
        return err;
    const xb_device *known = err == XB_OK ? &dev : NULL;
    /* The credential before the state: an unauthenticated caller learns nothing of the
     * device (unknown, disabled, enrolled) beyond what it needs to present. */
    err = xb_policy_credential(p, cfg, reg, in, known, out, d);
    if (err == XB_OK)
        err = xb_policy_state(cfg, in, known, out, d);
    OPENSSL_cleanse(&dev, sizeof dev);
    return err;
}
