/* The CA key in a PKCS#11 token (an HSM, SoftHSM2 in tests), named by an RFC 7512 URI: the
 * token signs, the private key never enters this process. A small direct PKCS#11 layer
 * (dlopen, C_GetFunctionList) rather than libp11, so that session loss, fork and re-login are
 * handled here, where they are visible; p11-kit only parses the URI.
 *
 * One session per process (xbootd's workers are processes, each one single-threaded where it
 * signs), guarded by a mutex all the same. A lost session (token removed, HSM restarted or
 * unreachable) is reopened once on the spot; when that fails the signer answers
 * XB_ERR_CA_UNAVAILABLE (503, /healthz failing) and tries again at most once a second, so it
 * recovers when the token returns, without a restart. */
#include "signer.h"
#include "signer_pkcs11.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "xb_util.h"

#define XB_P11_PIN_MAX 256
#define XB_P11_RETRY_NS 1000000000LL /* a failed reopen is not retried sooner than this */
/* A token call (with the reconnection it may need) that takes longer is answered 503 while
 * it goes on in the signer's thread: PKCS#11 calls cannot be cancelled. */
#define XB_P11_CALL_TIMEOUT_S 5

/* ---- modules: loaded once per path, shared by the signers of a process ---- */

typedef struct xb_p11_module {
    struct xb_p11_module *next;
    char *path;
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    int refs;
    pid_t pid;    /* the process that called C_Initialize: a forked child must call it again */
    int busy;     /* signers' threads inside a token call now (xb_p11_run) */
    unsigned gen; /* bumped by every re-initialization: older sessions are gone */
} xb_p11_module;

static pthread_mutex_t xb_p11_modules_lock = PTHREAD_MUTEX_INITIALIZER;
static xb_p11_module *xb_p11_modules;

static CK_RV xb_p11_initialize(CK_FUNCTION_LIST_PTR f)
{
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = f->C_Initialize(&args);
    /* Someone else in the process (or the parent before fork, for modules that do not notice
     * fork) initialized it: it is usable. */
    return rv == CKR_CRYPTOKI_ALREADY_INITIALIZED ? CKR_OK : rv;
}

static xb_err xb_p11_module_get(const char *path, xb_p11_module **out, xb_diag *d)
{
    pthread_mutex_lock(&xb_p11_modules_lock);
    for (xb_p11_module *m = xb_p11_modules; m != NULL; m = m->next) {
        if (strcmp(m->path, path) == 0) {
            m->refs++;
            *out = m;
            pthread_mutex_unlock(&xb_p11_modules_lock);
            return XB_OK;
        }
    }
    xb_err err = XB_OK;
    xb_p11_module *m = calloc(1, sizeof *m);
    if (m == NULL || (m->path = strdup(path)) == NULL) {
        err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL) {
        err = xb_fail(d, XB_ERR_CONFIG, "cannot load the PKCS#11 module %s: %s", path, dlerror());
        goto fail;
    }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)(uintptr_t)dlsym(m->dl, "C_GetFunctionList");
    if (get == NULL || get(&m->f) != CKR_OK || m->f == NULL) {
        err = xb_fail(d, XB_ERR_CONFIG, "%s is not a PKCS#11 module (no C_GetFunctionList)", path);
        goto fail;
    }
    CK_RV rv = xb_p11_initialize(m->f);
    if (rv != CKR_OK) {
        err = xb_fail(d, XB_ERR_CONFIG,
                      "the PKCS#11 module %s failed to initialize (C_Initialize: %s, 0x%lx)", path,
                      p11_kit_strerror(rv), (unsigned long)rv);
        goto fail;
    }
    m->pid = getpid();
    m->refs = 1;
    m->next = xb_p11_modules;
    xb_p11_modules = m;
    *out = m;
    pthread_mutex_unlock(&xb_p11_modules_lock);
    return XB_OK;
fail:
    pthread_mutex_unlock(&xb_p11_modules_lock);
    if (m != NULL) {
        if (m->dl != NULL)
            dlclose(m->dl);
        free(m->path);
        free(m);
    }
    return err;
}

static void xb_p11_module_put(xb_p11_module *m)
{
    pthread_mutex_lock(&xb_p11_modules_lock);
    if (--m->refs > 0) {
        pthread_mutex_unlock(&xb_p11_modules_lock);
        return;
    }
    for (xb_p11_module **p = &xb_p11_modules; *p != NULL; p = &(*p)->next) {
        if (*p == m) {
            *p = m->next;
            break;
        }
    }
    pthread_mutex_unlock(&xb_p11_modules_lock);
    /* In a forked child that never initialized it, the state is the parent's: a network HSM's
     * module could end the parent's connection. Leave it to the process's exit. */
    if (m->pid == getpid()) {
        m->f->C_Finalize(NULL);
        dlclose(m->dl);
    }
    free(m->path);
    free(m);
}

/* Finalize and initialize again: in a forked child (PKCS#11 2.40 5.1: the child must call
 * C_Initialize; some modules refuse it until C_Finalize), and after a loss, because some
 * modules (SoftHSM2) read their token list only at C_Initialize. Only in a child that has not
 * done it yet, or (force) when no other signer is inside a call on the module: self_busy is 1
 * when the caller itself is (from its thread). Other signers' sessions end with it; the new
 * generation tells them to open new ones (xb_p11_close, xb_p11_run). A worker's reload after a
 * token outage needs this: the old signer, which has not noticed the token's return, still
 * holds the module, and the new one finds no token until the module reads its list again. */
static CK_RV xb_p11_module_reinit(xb_p11_module *m, int force, int self_busy)
{
    pthread_mutex_lock(&xb_p11_modules_lock);
    CK_RV rv = CKR_OK;
    pid_t me = getpid();
    if (m->pid != me || (force && (m->refs == 1 || m->busy == self_busy))) {
        m->f->C_Finalize(NULL);
        rv = xb_p11_initialize(m->f);
        if (rv == CKR_OK)
            m->pid = me;
        m->gen++;
    }
    pthread_mutex_unlock(&xb_p11_modules_lock);
    return rv;
}

/* ---- the URI ---- */

typedef struct xb_p11_target {
    P11KitUri *uri;
    char *module; /* module-path, or the configured default */
    uint8_t *id;  /* CKA_ID (id=), or NULL */
    size_t id_len;
    char *label;              /* CKA_LABEL (object=), or NULL */
    char pin[XB_P11_PIN_MAX]; /* never logged, cleansed on free */
    int has_pin;
    char name[160]; /* "object 'x' on token 'y'": for messages, no secret in it */
} xb_p11_target;

static void xb_p11_target_clear(xb_p11_target *t)
{
    if (t->uri != NULL)
        p11_kit_uri_free(t->uri);
    free(t->module);
    free(t->id);
    free(t->label);
    OPENSSL_cleanse(t->pin, sizeof t->pin);
    memset(t, 0, sizeof *t);
}

static xb_err xb_p11_read_pin_file(const char *path, char *pin, xb_diag *d)
{
    uint8_t *data = NULL;
    size_t len = 0;
    xb_diag fd = {{0}};
    if (xb_read_file(path, XB_P11_PIN_MAX, &data, &len, &fd) != XB_OK)
        return xb_fail(d, XB_ERR_CONFIG, "cannot read the PKCS#11 PIN file %s", path);
    /* A trailing newline is the editor's, not the PIN's. */
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    xb_err err = XB_OK;
    if (len == 0 || len >= XB_P11_PIN_MAX || memchr(data, '\0', len) != NULL)
        err = xb_fail(d, XB_ERR_CONFIG, "the PKCS#11 PIN file %s holds no usable PIN", path);
    else
        memcpy(pin, data, len), pin[len] = '\0';
    OPENSSL_cleanse(data, len);
    free(data);
    return err;
}

static xb_err xb_p11_parse(const char *spec, const char *default_module, xb_p11_target *t,
                           xb_diag *d)
{
    memset(t, 0, sizeof *t);
    t->uri = p11_kit_uri_new();
    if (t->uri == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    int rc = p11_kit_uri_parse(spec, P11_KIT_URI_FOR_OBJECT_ON_TOKEN, t->uri);
    if (rc != P11_KIT_URI_OK) {
        /* The URI itself may hold pin-value: name only what was wrong. */
        xb_fail(d, XB_ERR_CONFIG, "[ca] key: not a valid PKCS#11 URI (%s)",
                p11_kit_uri_message(rc));
        goto fail;
    }
    /* A misspelt attribute ("tokn=") would otherwise be ignored and widen the match. */
    if (p11_kit_uri_any_unrecognized(t->uri)) {
        xb_fail(d, XB_ERR_CONFIG,
                "[ca] key: the PKCS#11 URI has an attribute this parser does "
                "not know (a misspelling?)");
        goto fail;
    }
    const char *module = p11_kit_uri_get_module_path(t->uri);
    if (module == NULL || module[0] == '\0')
        module = default_module;
    if (module == NULL || module[0] == '\0') {
        xb_fail(d, XB_ERR_CONFIG,
                "[ca] key: the PKCS#11 URI names no module: add ?module-path=... or set "
                "[ca] pkcs11_module");
        goto fail;
    }
    if ((t->module = strdup(module)) == NULL)
        goto nomem;
    CK_ATTRIBUTE *a = p11_kit_uri_get_attribute(t->uri, CKA_LABEL);
    if (a != NULL && a->ulValueLen > 0) {
        if ((t->label = strndup(a->pValue, a->ulValueLen)) == NULL)
            goto nomem;
    }
    a = p11_kit_uri_get_attribute(t->uri, CKA_ID);
    if (a != NULL && a->ulValueLen > 0) {
        if ((t->id = malloc(a->ulValueLen)) == NULL)
            goto nomem;
        memcpy(t->id, a->pValue, a->ulValueLen);
        t->id_len = a->ulValueLen;
    }
    a = p11_kit_uri_get_attribute(t->uri, CKA_CLASS);
    if (a != NULL && a->ulValueLen == sizeof(CK_OBJECT_CLASS) &&
        *(CK_OBJECT_CLASS *)a->pValue != CKO_PRIVATE_KEY) {
        xb_fail(d, XB_ERR_CONFIG, "[ca] key: the PKCS#11 URI's type= must be private");
        goto fail;
    }
    CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(t->uri);
    size_t tl = sizeof ti->label;
    while (tl > 0 && (ti->label[tl - 1] == ' ' || ti->label[tl - 1] == '\0'))
        tl--;
    if (t->label != NULL)
        snprintf(t->name, sizeof t->name, "PKCS#11 key '%.48s' on token '%.*s'", t->label, (int)tl,
                 (const char *)ti->label);
    else
        snprintf(t->name, sizeof t->name, "PKCS#11 key (by id) on token '%.*s'", (int)tl,
                 (const char *)ti->label);
    if (t->label == NULL && t->id == NULL) {
        xb_fail(d, XB_ERR_CONFIG, "[ca] key: the PKCS#11 URI names no key: add object= or id=");
        goto fail;
    }
    const char *pin = p11_kit_uri_get_pin_value(t->uri);
    const char *source = p11_kit_uri_get_pin_source(t->uri);
    if (pin != NULL) {
        if (strlen(pin) >= XB_P11_PIN_MAX) {
            xb_fail(d, XB_ERR_CONFIG, "[ca] key: the PKCS#11 URI's pin-value is too long");
            goto fail;
        }
        strcpy(t->pin, pin);
        t->has_pin = 1;
        /* One copy of the PIN, the one cleansed on free: not p11-kit's as well. */
        p11_kit_uri_set_pin_value(t->uri, NULL);
    } else if (source != NULL) {
        /* RFC 7512 makes pin-source a URI; a file: URI or a plain path are what is portable. */
        const char *path = strncmp(source, "file:", 5) == 0 ? source + 5 : source;
        if (strncmp(path, "//", 2) == 0)
            path += 2;
        if (xb_p11_read_pin_file(path, t->pin, d) != XB_OK)
            goto fail;
        t->has_pin = 1;
    }
    return XB_OK;
nomem:
    xb_fail(d, XB_ERR_NOMEM, "out of memory");
fail:
    xb_p11_target_clear(t);
    return XB_ERR_CONFIG;
}

/* ---- a session on the token ---- */

typedef struct xb_p11_conn {
    xb_p11_module *m;
    CK_SESSION_HANDLE sess;
    int open;
    unsigned gen; /* the module's generation the session was opened in */
} xb_p11_conn;

static unsigned xb_p11_module_gen(xb_p11_module *m)
{
    pthread_mutex_lock(&xb_p11_modules_lock);
    unsigned gen = m->gen;
    pthread_mutex_unlock(&xb_p11_modules_lock);
    return gen;
}

/* A session of an older generation died with the re-initialization: its handle may now name
 * another signer's session, so it is forgotten, never closed. */
static void xb_p11_close(xb_p11_conn *c)
{
    if (c->open && c->gen == xb_p11_module_gen(c->m))
        c->m->f->C_CloseSession(c->sess);
    c->open = 0;
}

/* Find the token (by the URI's token attributes and slot-id), open a session and log in. */
static xb_err xb_p11_connect(xb_p11_conn *c, xb_p11_target *t, int rw, xb_diag *d)
{
    CK_FUNCTION_LIST_PTR f = c->m->f;
    CK_ULONG n = 0;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv != CKR_OK)
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "%s: cannot list the slots (%s, 0x%lx)", t->name,
                       p11_kit_strerror(rv), (unsigned long)rv);
    CK_SLOT_ID *slots = calloc(n ? n : 1, sizeof *slots);
    if (slots == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    rv = f->C_GetSlotList(CK_TRUE, slots, &n);
    CK_SLOT_ID want = p11_kit_uri_get_slot_id(t->uri);
    CK_SLOT_ID found = 0;
    int nfound = 0;
    for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
        CK_TOKEN_INFO info;
        if (want != (CK_SLOT_ID)-1 && slots[i] != want)
            continue;
        if (f->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        if (p11_kit_uri_match_token_info(t->uri, &info) && nfound++ == 0)
            found = slots[i];
    }
    free(slots);
    if (rv != CKR_OK || nfound == 0)
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "%s: no such token present", t->name);
    CK_FLAGS flags = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
    rv = f->C_OpenSession(found, flags, NULL, NULL, &c->sess);
    if (rv != CKR_OK)
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "%s: cannot open a session (%s, 0x%lx)", t->name,
                       p11_kit_strerror(rv), (unsigned long)rv);
    c->open = 1;
    c->gen = xb_p11_module_gen(c->m);
    if (t->has_pin) {
        rv = f->C_Login(c->sess, CKU_USER, (CK_UTF8CHAR_PTR)t->pin, strlen(t->pin));
        /* Login is per application, not per session: another session may hold it. */
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
            xb_p11_close(c);
            if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED)
                return xb_fail(d, XB_ERR_CONFIG, "%s: the token refused the PIN (%s, 0x%lx)",
                               t->name, p11_kit_strerror(rv), (unsigned long)rv);
            return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "%s: login failed (%s, 0x%lx)", t->name,
                           p11_kit_strerror(rv), (unsigned long)rv);
        }
    }
    return XB_OK;
}

/* The objects of class cls with the target's label and id: 0, 1 or 2 (2: more than one). */
static int xb_p11_find(xb_p11_conn *c, xb_p11_target *t, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *out)
{
    CK_ATTRIBUTE tmpl[3] = {{CKA_CLASS, &cls, sizeof cls}};
    CK_ULONG nt = 1;
    if (t->label != NULL)
        tmpl[nt++] = (CK_ATTRIBUTE){CKA_LABEL, t->label, strlen(t->label)};
    if (t->id != NULL)
        tmpl[nt++] = (CK_ATTRIBUTE){CKA_ID, t->id, t->id_len};
    CK_FUNCTION_LIST_PTR f = c->m->f;
    if (f->C_FindObjectsInit(c->sess, tmpl, nt) != CKR_OK)
        return -1;
    CK_OBJECT_HANDLE h[2];
    CK_ULONG got = 0;
    CK_RV rv = f->C_FindObjects(c->sess, h, 2, &got);
    f->C_FindObjectsFinal(c->sess);
    if (rv != CKR_OK)
        return -1;
    if (got > 0)
        *out = h[0];
    return (int)got;
}

/* One attribute, allocated. */
static CK_RV xb_p11_attr(xb_p11_conn *c, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, uint8_t **out,
                         size_t *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    CK_RV rv = c->m->f->C_GetAttributeValue(c->sess, h, &a, 1);
    if (rv != CKR_OK)
        return rv;
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 65536)
        return CKR_ATTRIBUTE_TYPE_INVALID;
    if ((a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1)) == NULL)
        return CKR_HOST_MEMORY;
    rv = c->m->f->C_GetAttributeValue(c->sess, h, &a, 1);
    if (rv != CKR_OK) {
        free(a.pValue);
        return rv;
    }
    *out = a.pValue;
    *len = a.ulValueLen;
    return CKR_OK;
}

/* The EVP_PKEY of a public key object (or of the private key's public attributes). */
static EVP_PKEY *xb_p11_public(xb_p11_conn *c, CK_OBJECT_HANDLE h, CK_KEY_TYPE kt)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pkey = NULL;
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    BIGNUM *n = NULL, *e = NULL;
    ASN1_OBJECT *oid = NULL;
    ASN1_OCTET_STRING *point = NULL;
    const char *type = NULL;
    if (bld == NULL)
        goto done;
    if (kt == CKK_EC) {
        if (xb_p11_attr(c, h, CKA_EC_PARAMS, &a, &alen) != CKR_OK ||
            xb_p11_attr(c, h, CKA_EC_POINT, &b, &blen) != CKR_OK)
            goto done;
        /* Named curves only: an HSM's CA key has no business with explicit parameters. */
        const uint8_t *p = a;
        oid = d2i_ASN1_OBJECT(NULL, &p, (long)alen);
        const char *group = oid ? OBJ_nid2sn(OBJ_obj2nid(oid)) : NULL;
        if (group == NULL || OBJ_obj2nid(oid) == NID_undef)
            goto done;
        /* CKA_EC_POINT is a DER OCTET STRING around the point (2.40); some modules give the
         * bare point. */
        const uint8_t *q = b, *pt = b;
        size_t ptlen = blen;
        point = d2i_ASN1_OCTET_STRING(NULL, &q, (long)blen);
        if (point != NULL && q == b + blen) {
            pt = ASN1_STRING_get0_data(point);
            ptlen = (size_t)ASN1_STRING_length(point);
        }
        if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, ptlen))
            goto done;
        type = "EC";
    } else if (kt == CKK_RSA) {
        if (xb_p11_attr(c, h, CKA_MODULUS, &a, &alen) != CKR_OK ||
            xb_p11_attr(c, h, CKA_PUBLIC_EXPONENT, &b, &blen) != CKR_OK)
            goto done;
        n = BN_bin2bn(a, (int)alen, NULL);
        e = BN_bin2bn(b, (int)blen, NULL);
        if (n == NULL || e == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
            goto done;
        type = "RSA";
    } else {
        goto done;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
done:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(point);
    free(a);
    free(b);
    ERR_clear_error();
    return pkey;
}

/* The public half of private key h: the public key object of the same CKA_ID (the usual
 * layout), or the private key's own public attributes (RSA always has them). */
static EVP_PKEY *xb_p11_find_public(xb_p11_conn *c, CK_OBJECT_HANDLE h, CK_KEY_TYPE kt)
{
    CK_OBJECT_HANDLE pubh = 0;
    uint8_t *id = NULL;
    size_t id_len = 0;
    EVP_PKEY *pub = NULL;
    if (xb_p11_attr(c, h, CKA_ID, &id, &id_len) == CKR_OK && id_len > 0) {
        xb_p11_target byid = {.id = id, .id_len = id_len};
        if (xb_p11_find(c, &byid, CKO_PUBLIC_KEY, &pubh) >= 1)
            pub = xb_p11_public(c, pubh, kt);
    }
    free(id);
    return pub != NULL ? pub : xb_p11_public(c, h, kt);
}

/* ---- the signer ---- */

typedef struct xb_p11_signer {
    xb_signer base;
    xb_p11_target t;
    xb_p11_conn c;
    CK_OBJECT_HANDLE key;
    CK_KEY_TYPE kt;
    size_t ec_half; /* EC: the octets of r and of s */
    size_t rsa_len; /* RSA: the modulus' octets */
    pthread_mutex_t lock;
    pid_t pid; /* the process whose session s->c is: a child must open its own */
    /* Token calls in a worker process run in one thread of the signer's, so that a hung HSM
     * costs a request XB_P11_CALL_TIMEOUT_S, not the worker. One call at a time. */
    pthread_cond_t cond; /* with lock: the call's state changed */
    pthread_t thread;
    pid_t thread_pid; /* the process the thread runs in; 0: none yet */
    int state, op;    /* XB_P11_IDLE/PENDING/DONE; XB_P11_OP_* */
    uint8_t call_in[128];
    size_t call_in_len;
    uint8_t call_out[1024];
    CK_ULONG call_out_len;
    xb_err call_err;
    xb_diag call_d;
    long long failed_at; /* monotonic ns of the last failed reopen; 0: none */
    char failure[256];   /* its message, repeated while retries are held back */
} xb_p11_signer;

static long long xb_p11_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Session, login, the private key and its type. On the first open also the public key. */
static xb_err xb_p11_attach(xb_p11_signer *s, xb_diag *d)
{
    xb_p11_close(&s->c);
    s->pid = getpid();
    xb_err err = xb_p11_connect(&s->c, &s->t, 0, d);
    if (err != XB_OK)
        return err;
    int nk = xb_p11_find(&s->c, &s->t, CKO_PRIVATE_KEY, &s->key);
    if (nk != 1) {
        xb_p11_close(&s->c);
        if (nk < 0)
            return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "%s: cannot search the token", s->t.name);
        return xb_fail(d, XB_ERR_CONFIG, "%s: %s", s->t.name,
                       nk == 0 ? (s->t.has_pin ? "no such private key"
                                               : "no such private key (the URI has no PIN: "
                                                 "pin-value or pin-source)")
                               : "more than one private key matches: add id= to the URI");
    }
    CK_KEY_TYPE kt = 0;
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof kt};
    CK_RV rv = s->c.m->f->C_GetAttributeValue(s->c.sess, s->key, &a, 1);
    if (rv != CKR_OK || (kt != CKK_EC && kt != CKK_RSA)) {
        xb_p11_close(&s->c);
        return xb_fail(d, XB_ERR_CONFIG, "%s: not an EC or RSA key", s->t.name);
    }
    s->kt = kt;
    EVP_PKEY *pub = xb_p11_find_public(&s->c, s->key, kt);
    if (pub == NULL) {
        xb_p11_close(&s->c);
        return xb_fail(d, XB_ERR_CONFIG,
                       "%s: cannot read its public key (no public key object with its CKA_ID)",
                       s->t.name);
    }
    if (s->base.pub != NULL) {
        /* A token put back with another key under the same name must not sign for this CA:
         * its signatures would not verify against the CA certificate. */
        int same = EVP_PKEY_eq(pub, s->base.pub) == 1;
        EVP_PKEY_free(pub);
        if (!same) {
            xb_p11_close(&s->c);
            return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "%s: the token now holds another key",
                           s->t.name);
        }
        return XB_OK;
    }
    int bits = EVP_PKEY_get_bits(pub);
    if (kt == CKK_EC)
        s->ec_half = ((size_t)bits + 7) / 8;
    else
        s->rsa_len = ((size_t)bits + 7) / 8;
    s->base.pub = pub;
    return XB_OK;
}

/* In a child that skipped after_fork: the module initialized for this process, and the
 * parent's session forgotten (its handle may name another signer's session here). */
static void xb_p11_forked(xb_p11_signer *s)
{
    if (s->pid == getpid())
        return;
    xb_p11_module_reinit(s->c.m, 0, 1);
    s->c.open = 0;
    s->pid = getpid();
}

/* Reopen after a loss: as is, then (SoftHSM2 and others read their tokens at C_Initialize)
 * with the module initialized afresh. Held back for a second after a failure. */
static xb_err xb_p11_reattach(xb_p11_signer *s, int held_back_ok, xb_diag *d)
{
    long long now = xb_p11_now();
    if (held_back_ok && s->failed_at != 0 && now - s->failed_at < XB_P11_RETRY_NS)
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "%s", s->failure);
    xb_diag d1 = {{0}};
    xb_err err = xb_p11_attach(s, &d1);
    if (err != XB_OK && err != XB_ERR_NOMEM) {
        xb_p11_close(&s->c);
        if (xb_p11_module_reinit(s->c.m, 1, 1) == CKR_OK)
            err = xb_p11_attach(s, &d1);
    }
    if (err == XB_OK) {
        s->failed_at = 0;
        return XB_OK;
    }
    s->failed_at = now;
    snprintf(s->failure, sizeof s->failure, "the CA key is unavailable: %.200s", d1.msg);
    /* A key that was there and is not now is the token's trouble, not the configuration's. */
    return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "%s", s->failure);
}

static int xb_p11_lost(CK_RV rv)
{
    switch (rv) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_DEVICE_REMOVED:
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_MEMORY:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_GENERAL_ERROR:
    case CKR_FUNCTION_FAILED:
        return 1;
    default:
        return 0;
    }
}

static const uint8_t xb_di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                       0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t xb_di_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                       0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
static const uint8_t xb_di_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                       0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};

/* One C_SignInit + C_Sign of in into out (room *out_len). */
static CK_RV xb_p11_sign_raw(xb_p11_signer *s, const uint8_t *in, size_t in_len, uint8_t *out,
                             CK_ULONG *out_len)
{
    CK_MECHANISM mech = {s->kt == CKK_EC ? CKM_ECDSA : CKM_RSA_PKCS, NULL, 0};
    CK_FUNCTION_LIST_PTR f = s->c.m->f;
    CK_RV rv = f->C_SignInit(s->c.sess, &mech, s->key);
    if (rv != CKR_OK)
        return rv;
    return f->C_Sign(s->c.sess, (CK_BYTE_PTR)in, in_len, out, out_len);
}

/* ---- the token side: run in the signer's thread (or directly before it exists) ---- */

/* Sign call_in into call_out, reconnecting once if the session was lost. */
static xb_err xb_p11_run_sign(xb_p11_signer *s, xb_diag *d)
{
    s->call_out_len = sizeof s->call_out;
    xb_err err = XB_OK;
    CK_RV rv = CKR_SESSION_HANDLE_INVALID;
    if (!s->c.open)
        err = xb_p11_reattach(s, 1, d);
    if (err == XB_OK)
        rv = xb_p11_sign_raw(s, s->call_in, s->call_in_len, s->call_out, &s->call_out_len);
    if (err == XB_OK && xb_p11_lost(rv)) {
        /* Once, on the spot: a session dropped by an HSM's restart reopens right away. */
        err = xb_p11_reattach(s, 0, d);
        s->call_out_len = sizeof s->call_out;
        if (err == XB_OK)
            rv = xb_p11_sign_raw(s, s->call_in, s->call_in_len, s->call_out, &s->call_out_len);
    }
    if (err == XB_OK && rv != CKR_OK) {
        if (xb_p11_lost(rv)) {
            xb_p11_close(&s->c);
            err = xb_fail(d, XB_ERR_CA_UNAVAILABLE, "%s: the token cannot sign now (%s, 0x%lx)",
                          s->t.name, p11_kit_strerror(rv), (unsigned long)rv);
        } else {
            err = xb_fail(d, XB_ERR_CRYPTO, "%s: signing failed (%s, 0x%lx)", s->t.name,
                          p11_kit_strerror(rv), (unsigned long)rv);
        }
    }
    return err;
}

static xb_err xb_p11_run_check(xb_p11_signer *s, xb_diag *d)
{
    if (s->c.open) {
        /* Cheap probes: the session, and the key handle (some modules, SoftHSM2 among them,
         * keep a session alive while its token is deleted under it). */
        CK_SESSION_INFO si;
        CK_KEY_TYPE kt;
        CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof kt};
        CK_RV rv = s->c.m->f->C_GetSessionInfo(s->c.sess, &si);
        if (rv == CKR_OK)
            rv = s->c.m->f->C_GetAttributeValue(s->c.sess, s->key, &a, 1);
        if (rv != CKR_OK)
            xb_p11_close(&s->c);
    }
    return s->c.open ? XB_OK : xb_p11_reattach(s, 1, d);
}

enum { XB_P11_IDLE, XB_P11_PENDING, XB_P11_DONE };
enum { XB_P11_OP_SIGN = 1, XB_P11_OP_CHECK, XB_P11_OP_ATTACH, XB_P11_OP_STOP };

static xb_err xb_p11_run_op(xb_p11_signer *s, int op, xb_diag *d)
{
    xb_p11_forked(s);
    /* Another signer re-initialized the module since this session was opened: it is gone. */
    if (s->c.open && s->c.gen != xb_p11_module_gen(s->c.m))
        s->c.open = 0;
    if (op == XB_P11_OP_SIGN)
        return xb_p11_run_sign(s, d);
    if (op == XB_P11_OP_CHECK)
        return xb_p11_run_check(s, d);
    s->failed_at = 0; /* XB_P11_OP_ATTACH, after fork: now, whatever the parent saw */
    return s->c.open ? XB_OK : xb_p11_reattach(s, 0, d);
}

/* One operation, counted as a call in progress on the module (xb_p11_module_reinit). */
static xb_err xb_p11_run(xb_p11_signer *s, int op, xb_diag *d)
{
    pthread_mutex_lock(&xb_p11_modules_lock);
    s->c.m->busy++;
    pthread_mutex_unlock(&xb_p11_modules_lock);
    xb_err err = xb_p11_run_op(s, op, d);
    pthread_mutex_lock(&xb_p11_modules_lock);
    s->c.m->busy--;
    pthread_mutex_unlock(&xb_p11_modules_lock);
    return err;
}

static void *xb_p11_thread(void *arg)
{
    xb_p11_signer *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->state != XB_P11_PENDING)
            pthread_cond_wait(&s->cond, &s->lock);
        int op = s->op;
        if (op == XB_P11_OP_STOP)
            break;
        pthread_mutex_unlock(&s->lock);
        xb_diag d = {{0}};
        xb_err err = xb_p11_run(s, op, &d);
        pthread_mutex_lock(&s->lock);
        s->call_err = err;
        s->call_d = d;
        s->state = XB_P11_DONE;
        pthread_cond_broadcast(&s->cond);
    }
    s->state = XB_P11_DONE;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* The lock, the condition and the thread of this process. In a forked child the parent's
 * thread is gone and its lock may have been held at the fork: both are made afresh. */
static xb_err xb_p11_thread_start(xb_p11_signer *s, xb_diag *d)
{
    if (s->thread_pid == getpid())
        return XB_OK;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (s->thread_pid != 0) {
        pthread_mutex_init(&s->lock, NULL);
        s->state = XB_P11_IDLE;
    }
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    /* Signals are the main thread's business (xbootd's event loop): the thread blocks all. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, xb_p11_thread, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&s->cond);
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "%s: cannot start its thread", s->t.name);
    }
    s->thread_pid = getpid();
    return XB_OK;
}

/* Run op in the signer's thread and wait for it, at most XB_P11_CALL_TIMEOUT_S. */
static xb_err xb_p11_call(xb_p11_signer *s, int op, const uint8_t *in, size_t in_len, uint8_t *out,
                          CK_ULONG *out_len, xb_diag *d)
{
    xb_err err = xb_p11_thread_start(s, d);
    if (err != XB_OK)
        return err;
    pthread_mutex_lock(&s->lock);
    if (s->state == XB_P11_PENDING) {
        pthread_mutex_unlock(&s->lock);
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE,
                       "%s: the token has not yet answered a call that timed out", s->t.name);
    }
    if (in_len > 0)
        memcpy(s->call_in, in, in_len);
    s->call_in_len = in_len;
    s->op = op;
    s->state = XB_P11_PENDING;
    pthread_cond_broadcast(&s->cond);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += XB_P11_CALL_TIMEOUT_S;
    int rc = 0;
    while (s->state == XB_P11_PENDING && rc == 0)
        rc = pthread_cond_timedwait(&s->cond, &s->lock, &until);
    if (s->state != XB_P11_DONE) {
        pthread_mutex_unlock(&s->lock);
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "%s: the token did not answer within %d s",
                       s->t.name, XB_P11_CALL_TIMEOUT_S);
    }
    err = s->call_err;
    if (err != XB_OK && d != NULL)
        *d = s->call_d;
    if (err == XB_OK && out != NULL) {
        if (s->call_out_len > *out_len)
            err = xb_fail(d, XB_ERR_INTERNAL, "signature buffer too small");
        else
            memcpy(out, s->call_out, s->call_out_len), *out_len = s->call_out_len;
    }
    s->state = XB_P11_IDLE;
    pthread_mutex_unlock(&s->lock);
    return err;
}

static xb_err xb_p11_sign(xb_signer *base, const EVP_MD *md, const uint8_t *dgst, size_t dgst_len,
                          uint8_t *sig, size_t *sig_len, xb_diag *d)
{
    xb_p11_signer *s = (xb_p11_signer *)base;
    uint8_t in[128];
    size_t in_len = 0;
    if (s->kt == CKK_RSA) {
        const uint8_t *prefix = NULL;
        size_t plen = 0;
        switch (EVP_MD_get_type(md)) {
        case NID_sha256:
            prefix = xb_di_sha256, plen = sizeof xb_di_sha256;
            break;
        case NID_sha384:
            prefix = xb_di_sha384, plen = sizeof xb_di_sha384;
            break;
        case NID_sha512:
            prefix = xb_di_sha512, plen = sizeof xb_di_sha512;
            break;
        default:
            break;
        }
        if (prefix == NULL || dgst_len != (size_t)EVP_MD_get_size(md))
            return xb_fail(d, XB_ERR_INTERNAL, "%s: unsupported digest %s", s->t.name,
                           EVP_MD_get0_name(md));
        memcpy(in, prefix, plen);
        memcpy(in + plen, dgst, dgst_len);
        in_len = plen + dgst_len;
    } else {
        if (dgst_len > sizeof in)
            return xb_fail(d, XB_ERR_INTERNAL, "digest too long");
        memcpy(in, dgst, dgst_len);
        in_len = dgst_len;
    }
    uint8_t raw[1024];
    CK_ULONG raw_len = sizeof raw;
    xb_err err = xb_p11_call(s, XB_P11_OP_SIGN, in, in_len, raw, &raw_len, d);
    if (err != XB_OK)
        return err;
    if (s->kt == CKK_RSA) {
        if (raw_len > *sig_len)
            return xb_fail(d, XB_ERR_INTERNAL, "signature buffer too small");
        memcpy(sig, raw, raw_len);
        *sig_len = raw_len;
        return XB_OK;
    }
    /* CKM_ECDSA gives r || s; X.509 carries ECDSA-Sig-Value. */
    if (raw_len % 2 != 0 || raw_len == 0)
        return xb_fail(d, XB_ERR_CRYPTO, "%s: malformed ECDSA signature", s->t.name);
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)(raw_len / 2), NULL);
    BIGNUM *ss = BN_bin2bn(raw + raw_len / 2, (int)(raw_len / 2), NULL);
    if (es == NULL || r == NULL || ss == NULL || !ECDSA_SIG_set0(es, r, ss)) {
        ECDSA_SIG_free(es);
        BN_free(r);
        BN_free(ss);
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    }
    int der_len = i2d_ECDSA_SIG(es, NULL);
    if (der_len <= 0 || (size_t)der_len > *sig_len) {
        ECDSA_SIG_free(es);
        return xb_fail(d, XB_ERR_INTERNAL, "signature buffer too small");
    }
    uint8_t *p = sig;
    i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    *sig_len = (size_t)der_len;
    return XB_OK;
}

static xb_err xb_p11_after_fork(xb_signer *base, xb_diag *d)
{
    xb_p11_signer *s = (xb_p11_signer *)base;
    (void)d;
    /* The parent's session handle means nothing here (closing it could close the parent's):
     * the thread initializes the module for this process and opens a session of its own.
     * A token away while a worker starts is not the worker's failure: it answers 503 and its
     * /healthz fails until the token is back (sign and check retry), as for a loss later on.
     * A C_Initialize that failed is retried the same way. */
    xb_diag d1 = {{0}};
    xb_p11_call(s, XB_P11_OP_ATTACH, NULL, 0, NULL, NULL, &d1);
    return XB_OK;
}

static xb_err xb_p11_check(xb_signer *base, xb_diag *d)
{
    xb_p11_signer *s = (xb_p11_signer *)base;
    return xb_p11_call(s, XB_P11_OP_CHECK, NULL, 0, NULL, NULL, d);
}

static void xb_p11_free(xb_signer *base)
{
    xb_p11_signer *s = (xb_p11_signer *)base;
    if (s == NULL)
        return;
    if (s->thread_pid != 0 && s->thread_pid == getpid()) {
        pthread_mutex_lock(&s->lock);
        if (s->state == XB_P11_PENDING) {
            /* Its thread is stuck in the module with s: leave both to the process's exit. */
            pthread_mutex_unlock(&s->lock);
            return;
        }
        s->op = XB_P11_OP_STOP;
        s->state = XB_P11_PENDING;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
        pthread_cond_destroy(&s->cond);
    }
    if (s->c.m != NULL) {
        if (s->pid == getpid())
            xb_p11_close(&s->c);
        xb_p11_module_put(s->c.m);
    }
    EVP_PKEY_free(s->base.pub);
    xb_p11_target_clear(&s->t);
    pthread_mutex_destroy(&s->lock);
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

static const xb_signer_ops xb_p11_ops = {
    .source = "pkcs11",
    .sign = xb_p11_sign,
    .after_fork = xb_p11_after_fork,
    .check = xb_p11_check,
    .free = xb_p11_free,
};

xb_err xb_signer_pkcs11_open(const char *uri, const xb_key_options *opts, xb_signer **out,
                             xb_diag *d)
{
    *out = NULL;
    xb_p11_signer *s = calloc(1, sizeof *s);
    if (s == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    s->base.ops = &xb_p11_ops;
    pthread_mutex_init(&s->lock, NULL);
    xb_err err = xb_p11_parse(uri, opts ? opts->pkcs11_module : NULL, &s->t, d);
    if (err == XB_OK)
        err = xb_p11_module_get(s->t.module, &s->c.m, d);
    if (err == XB_OK) {
        /* A token that came back after an outage is invisible to a module that read its token
         * list before (SoftHSM2): once more with the module re-initialized, unless another
         * signer is inside a call. At startup a missing token is a configuration error:
         * xbootd refuses to start rather than come up unable to issue. */
        err = xb_p11_attach(s, d);
        if (err == XB_ERR_CA_UNAVAILABLE && xb_p11_module_reinit(s->c.m, 1, 0) == CKR_OK)
            err = xb_p11_attach(s, d);
        if (err == XB_ERR_CA_UNAVAILABLE)
            err = XB_ERR_CONFIG;
    }
    if (err != XB_OK) {
        xb_p11_free(&s->base);
        return err;
    }
    *out = &s->base;
    return XB_OK;
}

/* ---- key generation (xbootctl ca init --pkcs11) ---- */

xb_err xb_pkcs11_generate_key(const char *uri, const char *module, const char *key_type,
                              EVP_PKEY **pub, xb_diag *d)
{
    static const uint8_t p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    static const uint8_t p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
    const uint8_t *curve = NULL;
    size_t curve_len = 0;
    CK_ULONG bits = 0;
    if (strcmp(key_type, "ec-p256") == 0)
        curve = p256, curve_len = sizeof p256;
    else if (strcmp(key_type, "ec-p384") == 0)
        curve = p384, curve_len = sizeof p384;
    else if (strcmp(key_type, "rsa-2048") == 0)
        bits = 2048;
    else if (strcmp(key_type, "rsa-3072") == 0)
        bits = 3072;
    else
        return xb_fail(d, XB_ERR_INVALID_ARGUMENT, "unknown key type '%s'", key_type);
    *pub = NULL;
    xb_p11_signer *s = calloc(1, sizeof *s);
    if (s == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    s->base.ops = &xb_p11_ops;
    pthread_mutex_init(&s->lock, NULL);
    xb_err err = xb_p11_parse(uri, module, &s->t, d);
    if (err == XB_OK)
        err = xb_p11_module_get(s->t.module, &s->c.m, d);
    if (err == XB_OK)
        err = xb_p11_connect(&s->c, &s->t, 1, d);
    CK_OBJECT_HANDLE h = 0;
    if (err == XB_OK && xb_p11_find(&s->c, &s->t, CKO_PRIVATE_KEY, &h) != 0)
        err =
            xb_fail(d, XB_ERR_EXISTS, "%s already exists; refusing to generate another", s->t.name);
    uint8_t rid[16];
    if (err == XB_OK && s->t.id == NULL) {
        /* The public and private halves are paired by CKA_ID: give them one. */
        if (RAND_bytes(rid, sizeof rid) != 1 || (s->t.id = malloc(sizeof rid)) == NULL)
            err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
        else
            memcpy(s->t.id, rid, sizeof rid), s->t.id_len = sizeof rid;
    }
    if (err == XB_OK) {
        CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
        CK_BYTE e65537[] = {0x01, 0x00, 0x01};
        const char *label = s->t.label ? s->t.label : "";
        CK_ULONG label_len = strlen(label);
        CK_ATTRIBUTE pubt[6] = {
            {CKA_TOKEN, &yes, sizeof yes},
            {CKA_VERIFY, &yes, sizeof yes},
            {CKA_ID, s->t.id, s->t.id_len},
        };
        CK_ULONG npub = 3;
        if (label_len > 0)
            pubt[npub++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, label_len};
        if (curve != NULL) {
            pubt[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)curve, curve_len};
        } else {
            pubt[npub++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof bits};
            pubt[npub++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, e65537, sizeof e65537};
        }
        /* The point of the exercise: the token never lets the private key out. */
        CK_ATTRIBUTE privt[] = {
            {CKA_TOKEN, &yes, sizeof yes},         {CKA_PRIVATE, &yes, sizeof yes},
            {CKA_SENSITIVE, &yes, sizeof yes},     {CKA_EXTRACTABLE, &no, sizeof no},
            {CKA_SIGN, &yes, sizeof yes},          {CKA_ID, s->t.id, s->t.id_len},
            {CKA_LABEL, (void *)label, label_len},
        };
        CK_ULONG nprivt =
            sizeof privt / sizeof privt[0] - (label_len == 0 ? 1 : 0); /* label last */
        CK_MECHANISM mech = {curve ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
        CK_OBJECT_HANDLE ph = 0;
        CK_RV rv =
            s->c.m->f->C_GenerateKeyPair(s->c.sess, &mech, pubt, npub, privt, nprivt, &ph, &s->key);
        if (rv == CKR_USER_NOT_LOGGED_IN && !s->t.has_pin)
            err = xb_fail(d, XB_ERR_CONFIG,
                          "%s: the token needs a login to generate keys: add pin-source= or "
                          "pin-value= to the URI",
                          s->t.name);
        else if (rv != CKR_OK)
            err = xb_fail(d, XB_ERR_CRYPTO, "%s: the token cannot generate a %s key (%s, 0x%lx)",
                          s->t.name, key_type, p11_kit_strerror(rv), (unsigned long)rv);
        else if ((*pub = xb_p11_public(&s->c, ph, curve ? CKK_EC : CKK_RSA)) == NULL)
            err = xb_fail(d, XB_ERR_CRYPTO, "%s: cannot read the generated public key", s->t.name);
    }
    xb_p11_free(&s->base);
    return err;
}
