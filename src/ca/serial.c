/* Certificate serial numbers: 128 bits from the OS CSPRNG, positive (DESIGN.md section 6). */
#include "ca_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/bn.h>

xb_err xb_ca_random_serial_bytes(uint8_t serial[XB_CA_SERIAL_LEN], xb_diag *d)
{
    for (int tries = 0; tries < 4; tries++) {
        size_t got = 0;
        while (got < XB_CA_SERIAL_LEN) {
            ssize_t n = getrandom(serial + got, XB_CA_SERIAL_LEN - got, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return xb_fail(d, XB_ERR_CRYPTO, "getrandom failed: %s", strerror(errno));
            got += (size_t)n;
        }
        for (size_t i = 0; i < XB_CA_SERIAL_LEN; i++)
            if (serial[i] != 0)
                return XB_OK; /* RFC 5280 requires a positive serial; zero has odds of 2^-128 */
    }
    return xb_fail(d, XB_ERR_CRYPTO, "the random source returned zeros");
}

xb_err xb_ca_serial_to_asn1(const uint8_t serial[XB_CA_SERIAL_LEN], ASN1_INTEGER *out, xb_diag *d)
{
    BIGNUM *bn = BN_bin2bn(serial, XB_CA_SERIAL_LEN, NULL); /* unsigned: always >= 0 */
    if (bn == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    int zero = BN_is_zero(bn);
    int ok = !zero && BN_to_ASN1_INTEGER(bn, out) != NULL;
    BN_free(bn);
    if (zero)
        return xb_fail(d, XB_ERR_INTERNAL, "a serial of zero");
    return ok ? XB_OK : xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot set serial");
}

xb_err xb_ca_random_serial(ASN1_INTEGER *serial, xb_diag *d)
{
    uint8_t buf[XB_CA_SERIAL_LEN];
    xb_err err = xb_ca_random_serial_bytes(buf, d);
    return err == XB_OK ? xb_ca_serial_to_asn1(buf, serial, d) : err;
}
