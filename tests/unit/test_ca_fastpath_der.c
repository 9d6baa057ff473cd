/* The fast request parser (csr.c) against the reference (ca_reference.h) on malformed input:
 * every truncation, bit flips, trailing octets, and each element of each fixture re-encoded in
 * BER forms (long lengths, indefinite lengths, constructed strings) or with other tags, as it is
 * and signed again by the fixture's key. Same accept/refuse decision and error code, through
 * xb_ca_crosscheck (the fuzzers' oracle). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "der.h"
#include "xb_util.h"

enum { CA_P256, CA_COUNT };
static const char *const ca_types[CA_COUNT] = {"ec-p256"};

#include "crosscheck_support.h"
#include "csr_fixtures.h"
#include "der_build.h"

/* ---- DER re-encodings of the fixtures ---- */

typedef struct node {
    uint8_t tag;
    const uint8_t *val; /* primitive contents */
    size_t len;
    struct node *kids;
    size_t n_kids;
} node;

static size_t tree_parse(const uint8_t *p, size_t len, node **out)
{
    xb_der_reader r = xb_der_reader_of(p, len);
    xb_der_elem e;
    size_t n = 0;
    node *kids = NULL;
    while (xb_der_read(&r, &e)) {
        kids = realloc(kids, (n + 1) * sizeof *kids);
        node *k = &kids[n++];
        memset(k, 0, sizeof *k);
        k->tag = e.tag;
        k->val = e.val;
        k->len = e.len;
        if (e.tag & XB_DER_CONSTRUCTED)
            k->n_kids = tree_parse(e.val, e.len, &k->kids);
    }
    *out = kids;
    return n;
}

static void tree_free(node *kids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tree_free(kids[i].kids, kids[i].n_kids);
    free(kids);
}

enum { BER_LONG_LENGTH, BER_INDEFINITE, BER_CONSTRUCTED_STRING, WRONG_TAG, N_FORMS };

typedef struct reenc {
    int target, counter, form;
    uint8_t new_tag;
    int applied;
} reenc;

static void tree_encode(const node *kids, size_t n, reenc *o, buf *out)
{
    for (size_t i = 0; i < n; i++) {
        const node *k = &kids[i];
        int me = o->counter++ == o->target;
        buf content = {0};
        if (k->tag & XB_DER_CONSTRUCTED)
            tree_encode(k->kids, k->n_kids, o, &content);
        else
            buf_add(&content, k->val, k->len);
        uint8_t tag = k->tag;
        int universal_string = !(tag & 0xe0) && (tag == 3 || tag == 4 || tag == 12 || tag == 19 ||
                                                 tag == 20 || tag == 22 || tag == 30);
        if (me && o->form == BER_LONG_LENGTH) {
            put_element(out, tag, &content, 1);
            o->applied = 1;
        } else if (me && o->form == BER_INDEFINITE && (tag & XB_DER_CONSTRUCTED)) {
            uint8_t hdr[2] = {tag, 0x80}, eoc[2] = {0, 0};
            buf_add(out, hdr, 2);
            buf_add(out, content.p, content.n);
            buf_add(out, eoc, 2);
            o->applied = 1;
        } else if (me && o->form == BER_CONSTRUCTED_STRING && universal_string) {
            buf chunk = {0};
            put_element(&chunk, tag, &content, 0);
            put_element(out, tag | XB_DER_CONSTRUCTED, &chunk, 0);
            free(chunk.p);
            o->applied = 1;
        } else if (me && o->form == WRONG_TAG) {
            put_element(out, o->new_tag, &content, 0);
            o->applied = 1;
        } else {
            put_element(out, tag, &content, 0);
        }
        free(content.p);
    }
}

static EVP_PKEY *read_fixture_key(const char *csr_name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/csr/%.*s.key.pem", XB_FIXTURES,
             (int)(strlen(csr_name) - strlen(".csr.der")), csr_name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    return k;
}

/* SEQUENCE { info, algorithm, BIT STRING signature }, info signed by k (SHA-256; ECDSA or
 * PKCS#1 v1.5 by key type) unless alg_der is given, then signed as it says with md/pss_salt. */
static buf sign_info(EVP_PKEY *k, const uint8_t *info, size_t info_len, const uint8_t *alg_der,
                     size_t alg_len, const EVP_MD *md, int pss_salt, uint8_t unused_bits)
{
    static const uint8_t ecdsa_sha256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                           0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
    static const uint8_t rsa_sha256[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                         0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};
    int rsa = EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA;
    if (alg_der == NULL) {
        alg_der = rsa ? rsa_sha256 : ecdsa_sha256;
        alg_len = rsa ? sizeof rsa_sha256 : sizeof ecdsa_sha256;
        md = EVP_sha256();
    }
    uint8_t sig[1024];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    assert_int_equal(EVP_DigestSignInit(ctx, &pctx, md, NULL, k), 1);
    if (pss_salt >= 0) {
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt), 1);
    }
    assert_int_equal(EVP_DigestSign(ctx, sig, &sig_len, info, info_len), 1);
    EVP_MD_CTX_free(ctx);
    buf content = {0}, bits = {0}, out = {0};
    buf_add(&bits, &unused_bits, 1);
    buf_add(&bits, sig, sig_len);
    buf_add(&content, info, info_len);
    buf_add(&content, alg_der, alg_len);
    put_element(&content, XB_DER_BIT_STRING, &bits, 0);
    put_element(&out, XB_DER_SEQUENCE, &content, 0);
    free(bits.p);
    free(content.p);
    return out;
}

static const uint8_t wrong_tags[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x10, 0x11,
                                     0x13, 0x1a, 0x1e, 0x30, 0x31, 0x80, 0xa0, 0xa1, 0xa3};

static int setup(void **state)
{
    (void)state;
    cas_create();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return cas_remove();
}

/* ---- tests ---- */

/* Every truncation of each fixture; every single-bit flip of the smallest one and of every
 * seventh octet of the others; trailing octets. */
static void test_mutations(void **state)
{
    (void)state;
    xb_ca *ca = load_ca(CA_P256, NULL);
    for (size_t f = 0; f < N_FIXTURES; f++) {
        uint8_t *der;
        size_t len;
        read_fixture(fixtures[f], &der, &len);
        for (size_t cut = 0; cut < len; cut++)
            assert_int_not_equal(agree_with(ca, der, cut, NULL, serial_top_bit), XB_OK);
        size_t stride = strcmp(fixtures[f], "gnutls-p256.csr.der") == 0 ? 1 : 7;
        for (size_t i = f % stride; i < len; i += stride) {
            uint8_t saved = der[i];
            for (int bit = 0; bit < 8; bit++) {
                der[i] = saved ^ (uint8_t)(1u << bit);
                agree_with(ca, der, len, NULL, serial_top_bit);
            }
            der[i] = saved;
        }
        uint8_t *longer = malloc(len + 2);
        memcpy(longer, der, len);
        longer[len] = 0;
        longer[len + 1] = 0;
        assert_int_equal(agree(ca, longer, len + 1, NULL), XB_ERR_BAD_CSR);
        assert_int_equal(agree(ca, longer, len + 2, NULL), XB_ERR_BAD_CSR);
        free(longer);
        free(der);
    }
    xb_ca_free(ca);
}

/* Every element of every fixture in each BER form and with other tags; as it is and, when the
 * change is inside the request info, signed again by the fixture's key so that the signature
 * holds (then the DER rule alone refuses the BER forms). */
static void test_reencodings(void **state)
{
    (void)state;
    xb_ca *ca = load_ca(CA_P256, NULL);
    for (size_t f = 0; f < N_FIXTURES; f++) {
        uint8_t *der;
        size_t len;
        read_fixture(fixtures[f], &der, &len);
        EVP_PKEY *key = read_fixture_key(fixtures[f]);
        node *root = NULL;
        assert_int_equal(tree_parse(der, len, &root), 1);
        for (int form = 0; form < N_FORMS; form++) {
            size_t n_tags = form == WRONG_TAG ? sizeof wrong_tags : 1;
            for (int target = 0;; target++) {
                reenc probe = {target, 0, form, 0, 0};
                buf whole = {0};
                tree_encode(root, 1, &probe, &whole);
                free(whole.p);
                if (probe.counter <= target)
                    break;
                for (size_t t = 0; t < n_tags; t++) {
                    reenc o = {target, 0, form, wrong_tags[t], 0};
                    buf out = {0};
                    tree_encode(root, 1, &o, &out);
                    if (!o.applied) {
                        free(out.p);
                        break;
                    }
                    xb_err e = agree_with(ca, out.p, out.n, NULL, serial_top_bit);
                    if (form != WRONG_TAG)
                        assert_int_equal(e, XB_ERR_BAD_CSR);
                    /* The info re-encoded alone (node 1 and its descendants). */
                    reenc io = {target - 1, 0, form, wrong_tags[t], 0};
                    buf info = {0};
                    int rsa = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA;
                    if (target >= 1 && root[0].n_kids > 0 && !(rsa && form == WRONG_TAG)) {
                        tree_encode(&root[0].kids[0], 1, &io, &info);
                        if (io.applied) {
                            buf signed_csr = sign_info(key, info.p, info.n, NULL, 0, NULL, -1, 0);
                            e = agree_with(ca, signed_csr.p, signed_csr.n, NULL, serial_top_bit);
                            if (form != WRONG_TAG)
                                assert_int_equal(e, XB_ERR_BAD_CSR);
                            free(signed_csr.p);
                        }
                    }
                    free(info.p);
                    free(out.p);
                }
            }
        }
        tree_free(root, 1);
        EVP_PKEY_free(key);
        free(der);
    }
    xb_ca_free(ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_reencodings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
