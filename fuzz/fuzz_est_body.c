/* libFuzzer: an EST request body (and the same bytes as headers) through the base64 decoding,
 * the CSR checks and everything EST reads from a CSR's attributes, plus the Basic credentials
 * and path parsers. Nothing may crash, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "est_server.h"
#include "policy.h"

static void xb_fuzz_csr(const uint8_t *der, size_t len)
{
    xb_diag d;
    xb_csr *csr = NULL;
    if (xb_csr_parse(der, len, &csr, &d) != XB_OK)
        return;
    char cn[XB_REGID_MAX + 1], pw[128];
    const uint8_t *san = NULL;
    size_t san_len = 0;
    xb_csr_common_name(csr, cn, &d);
    xb_csr_challenge_password(csr, pw, sizeof pw, &d);
    xb_csr_requested_san(csr, &san, &san_len, &d);
    xb_csr_free(csr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xb_diag d;
    uint8_t *der = NULL;
    size_t der_len = 0;
    if (xb_est_decode_body((const char *)data, size, &der, &der_len, &d) == XB_OK)
        xb_fuzz_csr(der, der_len);
    free(der);
    xb_fuzz_csr(data, size); /* raw DER too: the attribute walks see every shape */
    char *s = malloc(size + 1);
    if (s != NULL) {
        memcpy(s, data, size);
        s[size] = '\0';
        char pw[64];
        xb_basic_parse(s, "dev:1", pw, sizeof pw, &d);
        xb_est_media_type_is(s, "application/pkcs10");
        xb_config cfg;
        memset(&cfg, 0, sizeof cfg);
        strcpy(cfg.est_label[0], "edge");
        cfg.est_label_count = 1;
        xb_est_op op;
        xb_est_parse_path(s, &cfg, &op, &d);
        free(s);
    }
    return 0;
}
