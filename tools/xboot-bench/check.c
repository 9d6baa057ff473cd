#include "check.h"

#include <string.h>

#include "der_walk.h"

int xbb_check_issued(const uint8_t *cert, size_t len, const xbb_pool_entry *e, const char **why)
{
    xbb_span subject, spki, cn;
    if (xbb_der_cert_fields(cert, len, &subject, &spki) != 0) {
        *why = "the certificate is not DER";
        return -1;
    }
    if (!xbb_span_eq(spki, e->spki, e->spki_len)) {
        *why = "the certificate's public key is not the CSR's";
        return -1;
    }
    if (xbb_der_name_cn(subject, &cn) != 1 || !xbb_span_eq(cn, e->id, strlen(e->id))) {
        *why = "the certificate's subject CN is not the registration ID";
        return -1;
    }
    return 0;
}
