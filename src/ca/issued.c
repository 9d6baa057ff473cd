/* Certificates issued earlier, read back from their DER: what an answer needs to send a recorded
 * certificate again (a device retrying after a lost answer). Not the issuance hot path, so the
 * plain X509 API is used. */
#include "ca_internal.h"

#include <limits.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>

#include "xb_util.h"

char *xb_name_rfc2253(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text = NULL, *out = NULL;
    long n = -1;
    if (bio != NULL && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0)
        n = BIO_get_mem_data(bio, &text);
    if (n >= 0)
        out = OPENSSL_strndup(text != NULL ? text : "", (size_t)n);
    BIO_free(bio);
    return out;
}

xb_err xb_spki_sha256(X509 *x, char out[65], xb_diag *d)
{
    unsigned char *spki = NULL;
    int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    int ok =
        spki_len > 0 && EVP_Digest(spki, (size_t)spki_len, md, &md_len, EVP_sha256(), NULL) == 1;
    OPENSSL_free(spki);
    if (!ok)
        return xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot hash the public key");
    xb_hex(md, md_len, out);
    return XB_OK;
}

/* The whole of der must be one certificate: trailing bytes would mean the record is not what
 * was issued. */
static X509 *xb_issued_parse(const uint8_t *der, size_t len)
{
    if (len == 0 || len > LONG_MAX)
        return NULL;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (x != NULL && p != der + len) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

/* The record fields, as xb_ca_issue fills them for the certificates it signs. */
static xb_err xb_issued_describe(X509 *x, xb_issued *out, xb_diag *d)
{
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    if (serial->length <= 0 || serial->length > 20 || serial->type != V_ASN1_INTEGER)
        return xb_fail(d, XB_ERR_CRYPTO, "the certificate serial is not a positive 1..20 octets");
    xb_hex(serial->data, (size_t)serial->length, out->serial);
    if (xb_asn1_time_to_time_t(X509_get0_notBefore(x), &out->not_before) != 0 ||
        xb_asn1_time_to_time_t(X509_get0_notAfter(x), &out->not_after) != 0)
        return xb_fail(d, XB_ERR_CRYPTO, "cannot read the certificate validity");
    out->subject = xb_name_rfc2253(X509_get_subject_name(x));
    if (out->subject == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory");
    return xb_spki_sha256(x, out->pubkey_sha256, d);
}

xb_err xb_issued_from_der(const uint8_t *der, size_t len, xb_issued *out, xb_diag *d)
{
    memset(out, 0, sizeof *out);
    X509 *x = xb_issued_parse(der, len);
    if (x == NULL) {
        ERR_clear_error();
        return xb_fail(d, XB_ERR_CRYPTO, "the recorded certificate is not a DER X.509 certificate");
    }
    xb_err err = xb_issued_describe(x, out, d);
    X509_free(x);
    if (err == XB_OK && (out->der = OPENSSL_malloc(len)) == NULL)
        err = xb_fail(d, XB_ERR_NOMEM, "out of memory");
    if (err != XB_OK) {
        xb_issued_clear(out);
        return err;
    }
    memcpy(out->der, der, len);
    out->der_len = len;
    return XB_OK;
}

int xb_ca_issued_by(const xb_ca *ca, const xb_issued *cert)
{
    X509 *x = xb_issued_parse(cert->der, cert->der_len);
    /* Names and authority key identifier: enough to tell this CA from another (a rotated CA
     * keeps its name but not its key); the record is trusted, so no signature check. */
    int ok = x != NULL && X509_check_issued(ca->cert, x) == X509_V_OK;
    X509_free(x);
    ERR_clear_error();
    return ok;
}
