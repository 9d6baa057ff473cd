/* URLs that may carry a secret (a webhook's password, a SAS token in an object store URL's
 * query): checked once, and shown in logs and errors only without user, password, query and
 * fragment. */
#ifndef XB_URL_H
#define XB_URL_H

#include <stddef.h>

#include "xb_error.h"

/* Check that url is an absolute https URL with a host, write its loggable form
 * "https://host[:port]/path" to shown (cap bytes), and copy its query and password when asked
 * (either may stay NULL; curl_free them). what names the URL in messages ("the webhook URL").
 * Nothing of the URL goes into d: it may hold a secret. XB_ERR_CONFIG otherwise. */
xb_err xb_url_parse_https(const char *url, const char *what, char *shown, size_t cap, char **query,
                          char **password, xb_diag *d);

/* The loggable form alone. */
xb_err xb_url_shown(const char *url, const char *what, char *shown, size_t cap, xb_diag *d);

#endif
