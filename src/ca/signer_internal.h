/* Between signer.c and the implementations it dispatches to; not for the issuance code. */
#ifndef XB_SIGNER_INTERNAL_H
#define XB_SIGNER_INTERNAL_H

#include "signer.h"

/* Passphrase from this environment variable when key_passphrase_file is not set. */
#define XB_CA_KEY_PASSPHRASE_ENV "XBOOT_CA_KEY_PASSPHRASE"

/* A PEM private key from a file path, "env:VARNAME" or an https:// URL (signer_pem.c). */
xb_err xb_signer_pem_open(const char *spec, const xb_key_options *opts, xb_signer **out,
                          xb_diag *d);

#endif
