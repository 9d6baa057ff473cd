/* Certificate serial numbers, 20 octets (RFC 5280's maximum), positive:
 *
 *   seconds since 2020-01-01 (4 octets, big-endian, top bit 0 until 2088) || 128 bits from the
 *   OS CSPRNG (DESIGN.md section 6)
 *
 * The time prefix is not for the certificate (its notBefore says as much) but for the
 * registry: serials are the primary key of a table that grows to millions of rows, and purely
 * random keys land every insert on a random page of that index. With the prefix, inserts go
 * to its right-hand end and stay in cache; the 128 random bits keep serials unpredictable. */
#include "ca_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/bn.h>

#define XB_SERIAL_EPOCH 1577836800 /* 2020-01-01T00:00:00Z */
#define XB_SERIAL_TIME_LEN 4

static void xb_serial_time_prefix(uint8_t out[XB_SERIAL_TIME_LEN])
{
    long long t = (long long)time(NULL) - XB_SERIAL_EPOCH;
    if (t < 0)
        t = 0;
    if (t > 0x7fffffffLL) /* keeps the top bit clear: never a sign octet, never 21 octets */
        t = 0x7fffffffLL;
    for (int i = XB_SERIAL_TIME_LEN - 1; i >= 0; i--, t >>= 8)
        out[i] = (uint8_t)(t & 0xff);
}

xb_err xb_ca_random_serial_bytes(uint8_t serial[XB_CA_SERIAL_LEN], xb_diag *d)
{
    xb_serial_time_prefix(serial);
    uint8_t *rnd = serial + XB_SERIAL_TIME_LEN;
    size_t want = XB_CA_SERIAL_LEN - XB_SERIAL_TIME_LEN;
    for (int tries = 0; tries < 4; tries++) {
        size_t got = 0;
        while (got < want) {
            ssize_t n = getrandom(rnd + got, want - got, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return xb_fail(d, XB_ERR_CRYPTO, "getrandom failed: %s", strerror(errno));
            got += (size_t)n;
        }
        for (size_t i = 0; i < want; i++)
            if (rnd[i] != 0)
                return XB_OK; /* all-zero random bits (odds 2^-128) mean a broken source */
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
