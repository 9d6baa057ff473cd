/* Placeholder until the PKCS#11 signer lands (it replaces this file): pkcs11: keys are refused
 * at start with a clear message rather than mistaken for file paths. */
#include "signer.h"

xb_err xb_signer_pkcs11_open(const char *uri, const xb_key_options *opts, xb_signer **out,
                             xb_diag *d)
{
    (void)uri, (void)opts;
    *out = NULL;
    return xb_fail(d, XB_ERR_CONFIG, "PKCS#11 support is not built yet");
}
