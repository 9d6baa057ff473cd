/* libFuzzer: bytes from the network through the xboot JSON decoder and, when that yields a
 * CSR, through the CSR checks. Nothing may crash, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "xboot_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xb_xboot_request req;
    xb_diag d;
    if (xb_xboot_decode((const char *)data, size, &req, &d) == XB_OK) {
        xb_csr *csr = NULL;
        if (xb_csr_parse(req.csr_der, req.csr_len, &csr, &d) == XB_OK) {
            xb_csr_check_subject(csr, req.reg_id, &d);
            xb_csr_free(csr);
        }
    }
    xb_xboot_request_clear(&req);
    /* Header values arrive NUL-terminated from libevent. */
    char *ct = malloc(size + 1);
    if (ct != NULL) {
        memcpy(ct, data, size);
        ct[size] = '\0';
        xb_xboot_content_type_ok(ct);
        free(ct);
    }
    return 0;
}
