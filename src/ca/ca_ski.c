/* subjectKeyIdentifier on an X509 object, for ca_init.c and the reference issuer (the fast
 * issuer writes the same extension from its prepared bytes). */
#include "ca_internal.h"

xb_err xb_ca_add_ski(X509 *cert, xb_diag *d)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
    int ok = ski != NULL && X509_pubkey_digest(cert, EVP_sha1(), md, &mdlen) &&
             ASN1_OCTET_STRING_set(ski, md, (int)mdlen) &&
             X509_add1_ext_i2d(cert, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT) == 1;
    ASN1_OCTET_STRING_free(ski);
    return ok ? XB_OK : xb_fail_ssl(d, XB_ERR_CRYPTO, "cannot add subjectKeyIdentifier");
}
