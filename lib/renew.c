/* Renewal: xboot_renew_due and xboot_renew (include/xboot/xboot.h). Renewal is EST
 * simplereenroll over mutual TLS with the current key and certificate; the new ones go
 * through the same checks and the same atomic store switch as an enrollment, so the old ones
 * stay stored and usable until the new ones are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "enroll.h"
#include "est.h"
#include "renew.h"

int xbrn_due_at(int64_t not_before, int64_t not_after, int64_t now, int percent)
{
    if (not_after <= not_before)
        return 1;
    /* (now - nb) / (na - nb) >= percent / 100, without division; lifetimes of centuries
     * times 100 still fit in 64 bits. */
    return (now - not_before) * 100 >= (int64_t)percent * (not_after - not_before);
}

int xboot_lifetime_used(X509 *cert)
{
    int64_t nb = 0, na = 0, now = (int64_t)time(NULL);
    if (cert == NULL || xbc_cert_validity(cert, &nb, &na, NULL) != XBOOT_OK)
        return -1;
    if (now <= nb)
        return 0;
    if (na <= nb)
        return 100;
    int64_t pct = (now - nb) * 100 / (na - nb);
    return pct > 1000 ? 1000 : (int)pct;
}

/* The handle's current result as a state of its own (renewal without a store). */
static void xbrn_take_memory(const xboot_client *c, xben_state *s)
{
    if (c->key == NULL || c->cert == NULL)
        return;
    if (EVP_PKEY_up_ref(c->key))
        s->key = c->key;
    if (X509_up_ref(c->cert))
        s->cert = c->cert;
    s->chain = c->chain ? X509_chain_up_ref(c->chain) : sk_X509_new_null();
}

/* Seconds by which cert is outside its validity now: > 0 expired, < 0 not yet valid, 0 valid
 * (or unreadable: then the check's own reason stands). */
static int64_t xbrn_outside(X509 *cert, int64_t now)
{
    int64_t nb = 0, na = 0;
    if (cert == NULL || xbc_cert_validity(cert, &nb, &na, NULL) != XBOOT_OK)
        return 0;
    /* OpenSSL counts a certificate as expired from its notAfter second on (X509_cmp_time:
     * "earlier than or equal"), so this must too, or the two disagree for one second. */
    if (now >= na)
        return now > na ? now - na : 1;
    return now < nb ? now - nb : 0;
}

/* A current certificate (or a CA certificate of its stored chain) that failed its check
 * because of the clock is "expired": mutual TLS with it cannot work, so the caller must enroll
 * again instead. */
static xboot_err xbrn_classify(xboot_client *c, const xben_state *s, xboot_err e)
{
    if (e != XBOOT_ERR_CERT_UNTRUSTED)
        return e;
    int64_t now = (int64_t)time(NULL), off = xbrn_outside(s->cert, now);
    const char *which = "the stored certificate";
    for (int i = 0; off == 0 && i < sk_X509_num(s->chain); i++) {
        off = xbrn_outside(sk_X509_value(s->chain, i), now);
        which = "a CA certificate of the stored chain";
    }
    if (off > 0)
        return xbc_fail(&c->detail, XBOOT_ERR_CERT_EXPIRED, "%s expired %lld s ago", which,
                        (long long)off);
    if (off < 0)
        return xbc_fail(&c->detail, XBOOT_ERR_CERT_EXPIRED, "%s is valid only in %lld s", which,
                        (long long)-off);
    return e;
}

/* The current key, certificate and chain, checked as xboot_load checks them. `memory` holds
 * the handle's previous result, used when there is no store. */
static xboot_err xbrn_current(xboot_client *c, xben_state *memory, xben_state *s)
{
    xboot_err e = XBOOT_OK;
    if (c->store_dir != NULL) {
        e = xben_read_stored(c, s);
    } else if (memory->cert != NULL) {
        *s = *memory;
        memset(memory, 0, sizeof *memory);
    } else {
        e = xbc_fail(&c->detail, XBOOT_ERR_NOT_CONFIGURED,
                     "no store directory set and no certificate enrolled by this handle");
    }
    if (e == XBOOT_OK)
        e = xbc_cert_check(s->cert, s->chain, c->trust, s->key, c->reg_id, &c->detail);
    return xbrn_classify(c, s, e);
}

xboot_err xboot_renew_due(xboot_client *c, int *due)
{
    if (c == NULL || due == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    *due = 0;
    xben_state memory = {0}, s = {0};
    xbrn_take_memory(c, &memory);
    xbcl_reset_result(c);
    xboot_err e = xben_require_config(c, 0);
    if (e == XBOOT_OK)
        e = xbrn_current(c, &memory, &s);
    int64_t nb = 0, na = 0;
    if (e == XBOOT_OK)
        e = xbc_cert_validity(s.cert, &nb, &na, &c->detail);
    if (e == XBOOT_OK) {
        *due = xbrn_due_at(nb, na, (int64_t)time(NULL), c->renew_threshold);
        xben_adopt(c, &s, 0);
    }
    xben_state_free(&s);
    xben_state_free(&memory);
    return e;
}

static void xbrn_announce(xboot_client *c)
{
    char *url = NULL;
    if (xbe_url(c->url, c->est_label, "simplereenroll", &url, NULL) != XBOOT_OK)
        return;
    url[strcspn(url, "?")] = '\0';
    xbcl_progress(c, XBOOT_EVENT_RENEWING, url);
    free(url);
}

/* Renew with the store locked. On success the new state is the handle's result; on failure
 * the old one is (it is still stored and valid, unless e says otherwise). */
static xboot_err xbrn_renew_locked(xboot_client *c, xben_state *memory)
{
    xben_state old = {0}, s = {0};
    xboot_err e = xbrn_current(c, memory, &old);
    if (e == XBOOT_OK && c->store_dir != NULL)
        e = xbs_writable(c->store_dir, &c->detail);
    if (e == XBOOT_OK) {
        xbrn_announce(c);
        e = xben_new_key(c, &s);
    }
    if (e == XBOOT_OK)
        e = xben_est_request(c, &s, "simplereenroll", X509_get_subject_name(old.cert), &old);
    if (e == XBOOT_OK)
        e = xbc_cert_check(s.cert, s.chain, c->trust, s.key, c->reg_id, &c->detail);
    if (e == XBOOT_OK) {
        xbcl_progress(c, XBOOT_EVENT_CERT_VERIFIED, NULL);
        if (c->store_dir != NULL && (e = xben_store(c, &s)) == XBOOT_OK)
            xbcl_progress(c, XBOOT_EVENT_STORED, c->store_dir);
    }
    if (e == XBOOT_OK)
        xben_adopt(c, &s, 1);
    else if (old.cert != NULL && e != XBOOT_ERR_CERT_EXPIRED)
        xben_adopt(c, &old, 0); /* still what the device has; the caller may go on with it */
    xben_state_free(&s);
    xben_state_free(&old);
    return e;
}

xboot_err xboot_renew(xboot_client *c)
{
    if (c == NULL)
        return XBOOT_ERR_INVALID_ARGUMENT;
    xben_state memory = {0};
    xbrn_take_memory(c, &memory);
    xbcl_reset_result(c);
    xboot_err e = xben_require_config(c, 1);
    if (e == XBOOT_OK && c->pfx && c->caller_key != NULL)
        e = xbc_fail(&c->detail, XBOOT_ERR_PKCS12,
                     "a .pfx needs the private key, and a supplied key is not exported");
    int lock = -1;
    if (e == XBOOT_OK && c->store_dir != NULL)
        e = xbs_lock(c->store_dir, xben_lock_wait_ms(c), &lock, &c->detail);
    if (e == XBOOT_OK) {
        e = xbrn_renew_locked(c, &memory);
        xbs_unlock(lock);
    }
    xben_state_free(&memory);
    return e;
}
