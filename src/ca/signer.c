/* The signer interface (signer.h): which implementation a key spec names, and the calls the
 * issuance code makes without knowing which one it has. */
#include "signer.h"

#include <string.h>

#include "signer_internal.h"

xb_err xb_signer_open(const char *spec, const xb_key_options *opts, xb_signer **out, xb_diag *d)
{
    static const xb_key_options none = {0};
    *out = NULL;
    if (spec == NULL || spec[0] == '\0')
        return xb_fail(d, XB_ERR_CONFIG, "no CA key given ([ca] key)");
    if (opts == NULL)
        opts = &none;
    if (strncmp(spec, "pkcs11:", 7) == 0)
        return xb_signer_pkcs11_open(spec, opts, out, d);
    /* env:VARNAME, https:// and file paths all end as an OpenSSL key from PEM text. */
    return xb_signer_pem_open(spec, opts, out, d);
}

xb_err xb_signer_sign(xb_signer *s, const EVP_MD *md, const uint8_t *dgst, size_t dgst_len,
                      uint8_t *sig, size_t *sig_len, xb_diag *d)
{
    if (s == NULL)
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "no CA key loaded");
    return s->ops->sign(s, md, dgst, dgst_len, sig, sig_len, d);
}

xb_err xb_signer_after_fork(xb_signer *s, xb_diag *d)
{
    if (s == NULL || s->ops->after_fork == NULL)
        return XB_OK;
    return s->ops->after_fork(s, d);
}

xb_err xb_signer_check(xb_signer *s, xb_diag *d)
{
    if (s == NULL)
        return xb_fail(d, XB_ERR_CA_UNAVAILABLE, "no CA key loaded");
    if (s->ops->check == NULL)
        return XB_OK;
    return s->ops->check(s, d);
}

void xb_signer_free(xb_signer *s)
{
    if (s != NULL)
        s->ops->free(s);
}
