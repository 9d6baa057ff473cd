/* The CRL Distribution Points extension (RFC 5280 4.2.1.13) of device certificates when
 * [ca] crl_url is set: what URL is accepted, and the extension built twice, once through
 * OpenSSL's structures for the reference issuer and once as DER by hand for the fast one, so
 * that the cross-check compares two independent encodings rather than one with itself. */
#include "ca_internal.h"

#include <string.h>
#include <strings.h>

#include "der.h"

xb_err xb_ca_check_crl_url(const char *url, const char *key, xb_diag *d)
{
    size_t scheme = strncasecmp(url, "http://", 7) == 0    ? 7
                    : strncasecmp(url, "https://", 8) == 0 ? 8
                                                           : 0;
    if (scheme == 0)
        return xb_fail(d, XB_ERR_CONFIG, "%s must start with http:// or https://", key);
    if (url[scheme] == '\0' || url[scheme] == '/')
        return xb_fail(d, XB_ERR_CONFIG, "%s names no host after %.*s", key, (int)scheme, url);
    size_t len = strlen(url);
    if (len > XB_CA_CRL_URL_MAX)
        return xb_fail(d, XB_ERR_CONFIG, "%s is %zu bytes long, more than %d", key, len,
                       XB_CA_CRL_URL_MAX);
    /* The URI goes into an IA5String as it is: printable ASCII without spaces is what a URL
     * holds unescaped, and keeps control characters out of certificates (and of this message,
     * which therefore does not quote the value). */
    for (size_t i = scheme; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f)
            return xb_fail(d, XB_ERR_CONFIG,
                           "%s holds a space or a character that is not printable ASCII at "
                           "byte %zu; percent-encode it",
                           key, i + 1);
    }
    return XB_OK;
}

X509_EXTENSION *xb_ca_cdp_reference(const char *url)
{
    X509_EXTENSION *ext = NULL;
    CRL_DIST_POINTS *cdp = CRL_DIST_POINTS_new();
    DIST_POINT *dp = DIST_POINT_new();
    if (cdp == NULL || dp == NULL || !sk_DIST_POINT_push(cdp, dp)) {
        DIST_POINT_free(dp);
        goto done;
    }
    /* From here on every new part is owned by cdp as soon as it is attached. */
    dp->distpoint = DIST_POINT_NAME_new();
    if (dp->distpoint == NULL)
        goto done;
    dp->distpoint->type = 0; /* fullName */
    dp->distpoint->name.fullname = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    if (dp->distpoint->name.fullname == NULL || gn == NULL ||
        !sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gn)) {
        GENERAL_NAME_free(gn);
        goto done;
    }
    ASN1_IA5STRING *uri = ASN1_IA5STRING_new();
    if (uri == NULL || !ASN1_STRING_set(uri, url, -1)) {
        ASN1_IA5STRING_free(uri);
        goto done;
    }
    GENERAL_NAME_set0_value(gn, GEN_URI, uri);
    ext = X509V3_EXT_i2d(NID_crl_distribution_points, 0, cdp);
done:
    CRL_DIST_POINTS_free(cdp);
    return ext;
}

/* extnID id-ce-cRLDistributionPoints (2.5.29.31), whole element. */
static const uint8_t xb_cdp_oid[] = {0x06, 0x03, 0x55, 0x1d, 0x1f};

/* After the extnID (critical is DEFAULT FALSE, so absent in DER), each element holds the next
 * and the last holds the URL's octets. */
static const uint8_t xb_cdp_nest[] = {
    XB_DER_OCTET_STRING, /* extnValue */
    XB_DER_SEQUENCE,     /* CRLDistributionPoints ::= SEQUENCE OF DistributionPoint */
    XB_DER_SEQUENCE,     /* DistributionPoint, without reasons or cRLIssuer */
    XB_DER_TAGGED(0),    /* distributionPoint [0]: explicit, as DistributionPointName is a CHOICE */
    XB_DER_TAGGED(0),    /* fullName [0] IMPLICIT GeneralNames (constructed SEQUENCE OF) */
    XB_DER_CONTEXT | 6,  /* uniformResourceIdentifier [6] IMPLICIT IA5String */
};
#define XB_CDP_DEPTH (sizeof xb_cdp_nest)

int xb_ca_cdp_der(const char *url, uint8_t **out, size_t *out_len)
{
    size_t content[XB_CDP_DEPTH];
    size_t inner = strlen(url);
    for (size_t i = XB_CDP_DEPTH; i-- > 0;) {
        content[i] = inner;
        inner = xb_der_header_len(inner) + inner;
    }
    size_t ext = sizeof xb_cdp_oid + inner;
    size_t total = xb_der_header_len(ext) + ext;
    uint8_t *buf = OPENSSL_malloc(total);
    if (buf == NULL)
        return 0;
    uint8_t *p = xb_der_put_header(buf, XB_DER_SEQUENCE, ext);
    memcpy(p, xb_cdp_oid, sizeof xb_cdp_oid);
    p += sizeof xb_cdp_oid;
    for (size_t i = 0; i < XB_CDP_DEPTH; i++)
        p = xb_der_put_header(p, xb_cdp_nest[i], content[i]);
    memcpy(p, url, content[XB_CDP_DEPTH - 1]);
    *out = buf;
    *out_len = total;
    return 1;
}

xb_err xb_ca_set_crl_url(xb_ca *ca, const char *url, xb_diag *d)
{
    X509_EXTENSION *ext = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    if (url != NULL && url[0] != '\0') {
        xb_err err = xb_ca_check_crl_url(url, "crl_url", d);
        if (err != XB_OK)
            return err;
        ext = xb_ca_cdp_reference(url);
        if (ext == NULL || !xb_ca_cdp_der(url, &der, &der_len)) {
            X509_EXTENSION_free(ext);
            return xb_fail_ssl(d, XB_ERR_NOMEM, "cannot build cRLDistributionPoints");
        }
    }
    X509_EXTENSION_free(ca->ext_cdp);
    OPENSSL_free(ca->fast.ext_cdp);
    ca->ext_cdp = ext;
    ca->fast.ext_cdp = der;
    ca->fast.ext_cdp_len = der_len;
    return XB_OK;
}
