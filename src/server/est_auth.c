/* EST renewal: a re-enrollment keeps the subject of the certificate it renews. Who may renew is
 * the policy's (policy.c). */
#include "est_server.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "xb_base64.h"
#include "xb_util.h"

/* The subjectAltName extension's value octets of cert: 1 and *val and *len, or 0 when it has none.
 */
static int xb_est_cert_san(X509 *cert, const uint8_t **val, size_t *len)
{
    int i = X509_get_ext_by_NID(cert, NID_subject_alt_name, -1);
    const ASN1_OCTET_STRING *os = i >= 0 ? X509_EXTENSION_get_data(X509_get_ext(cert, i)) : NULL;
    if (os == NULL)
        return 0;
    *val = ASN1_STRING_get0_data(os);
    *len = (size_t)ASN1_STRING_length(os);
    return 1;
}

xb_err xb_est_renewal_match(const xb_csr *csr, X509 *cert, xb_diag *d)
{
    size_t csr_name_len = 0;
    const uint8_t *csr_name = xb_csr_subject_der(csr, &csr_name_len);
    unsigned char *name = NULL;
    /* A decoded Name re-encodes to the octets it was decoded from. */
    int name_len = i2d_X509_NAME(X509_get_subject_name(cert), &name);
    int same_subject = name_len > 0 && (size_t)name_len == csr_name_len &&
                       memcmp(name, csr_name, csr_name_len) == 0;
    OPENSSL_free(name);
    const uint8_t *want = NULL, *got = NULL;
    size_t want_len = 0, got_len = 0;
    int has_want = xb_est_cert_san(cert, &want, &want_len);
    xb_err err = xb_csr_requested_san(csr, &got, &got_len, d);
    if (err != XB_OK && err != XB_ERR_NOT_FOUND)
        return err;
    int has_got = err == XB_OK;
    int same_san = has_want == has_got &&
                   (!has_want || (want_len == got_len && memcmp(want, got, got_len) == 0));
    if (!same_subject || !same_san)
        return xb_fail(d, XB_ERR_SUBJECT_MISMATCH,
                       "subject or subjectAltName differ from the client certificate's: a "
                       "renewal keeps the certificate's subject%s",
                       has_want ? " and subjectAltName" : " and requests no subjectAltName");
    return XB_OK;
}
