/* Test helper: the CSRs made by other libraries (tests/fixtures/csr), by name.
 * Header-only, for tests/unit/test_ca_fastpath*.c; needs XB_FIXTURES and cmocka. */
#ifndef XB_TEST_CSR_FIXTURES_H
#define XB_TEST_CSR_FIXTURES_H

#include <stdint.h>
#include <stdio.h>

#include "xb_util.h"

static inline void read_fixture(const char *name, uint8_t **der, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/csr/%s", XB_FIXTURES, name);
    assert_int_equal(xb_read_file(path, 1 << 20, der, len, NULL), XB_OK);
}

static const char *const fixtures[] = {
    "mbedtls-p256.csr.der", "mbedtls-p384.csr.der",        "mbedtls-rsa2048.csr.der",
    "gnutls-p256.csr.der",  "dotnet-style-rsapss.csr.der", "pyca-p384-asks-ca.csr.der",
};
#define N_FIXTURES (sizeof fixtures / sizeof fixtures[0])

#endif
