/* Where the CA's PEM files come from: a local path, "env:VARNAME" (the PEM text in that
 * environment variable: development only), or an https:// URL (an Azure Blob SAS URL, an S3
 * presigned URL, any HTTPS object store) fetched once at load. For the certificate, the chain
 * (ca_load.c) and the key (signer_pem.c). */
#ifndef XB_KEY_SOURCE_H
#define XB_KEY_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "xb_error.h"

/* Largest PEM file read or fetched: a long chain is a few tens of KiB. */
#define XB_SOURCE_MAX (1024 * 1024)

/* Room for a source as it may be shown (a path, or a URL without user, password and query). */
#define XB_SOURCE_SHOWN_MAX 512

/* 1 if spec names an https:// source (any case of the scheme). Any other "scheme://" is a
 * URL too, and refused. */
int xb_source_is_https(const char *spec);

/* spec as logs and errors may show it into shown: a path as it is; "from environment variable
 * NAME"; a URL without userinfo, query and fragment (a SAS token is a bearer secret).
 * XB_ERR_CONFIG for a malformed URL or one that is not https://. */
xb_err xb_source_shown(const char *spec, char *shown, size_t cap, xb_diag *d);

/* The contents of spec, a path, "env:VARNAME" or an https:// URL (verified against https_ca_file
 * when not NULL or "", else the system store; no redirects; 10 s; at most XB_SOURCE_MAX octets),
 * into *out (malloc'd, NUL-terminated; OPENSSL_cleanse and free it when it holds a key). what names
 * it in messages ("CA key"). XB_ERR_CONFIG with a message naming shown. */
xb_err xb_source_read(const char *spec, const char *what, const char *https_ca_file, uint8_t **out,
                      size_t *out_len, xb_diag *d);

/* A local file only, read the same way (the passphrase file: never a URL). */
xb_err xb_source_read_file(const char *path, const char *what, uint8_t **out, size_t *out_len,
                           xb_diag *d);

/* Wipe and free what xb_source_read returned. */
void xb_source_free(uint8_t *buf, size_t len);

#endif
