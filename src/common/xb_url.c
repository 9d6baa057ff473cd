/* Loggable forms of URLs (xb_url.h), on libcurl's URL parser so that what is shown is what
 * libcurl will connect to. */
#include "xb_url.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

/* A part of u (curl_free it), or NULL when absent. */
static char *xb_url_part(CURLU *u, CURLUPart part)
{
    char *v = NULL;
    if (curl_url_get(u, part, &v, 0) != CURLUE_OK)
        return NULL;
    return v;
}

xb_err xb_url_parse_https(const char *url, const char *what, char *shown, size_t cap, char **query,
                          char **password, xb_diag *d)
{
    CURLU *u = curl_url();
    if (u == NULL)
        return xb_fail(d, XB_ERR_NOMEM, "out of memory parsing %s", what);
    xb_err err = XB_OK;
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        err = xb_fail(d, XB_ERR_CONFIG, "%s is not a valid absolute URL", what);
    } else if ((scheme = xb_url_part(u, CURLUPART_SCHEME)) == NULL ||
               strcmp(scheme, "https") != 0) {
        err = xb_fail(d, XB_ERR_CONFIG, "%s must be https:// (got %.16s://)", what,
                      scheme != NULL ? scheme : "?");
    } else if ((host = xb_url_part(u, CURLUPART_HOST)) == NULL || host[0] == '\0') {
        err = xb_fail(d, XB_ERR_CONFIG, "%s has no host", what);
    } else {
        port = xb_url_part(u, CURLUPART_PORT); /* NULL unless given */
        path = xb_url_part(u, CURLUPART_PATH);
        int n = snprintf(shown, cap, "https://%s%s%s%s", host, port != NULL ? ":" : "",
                         port != NULL ? port : "", path != NULL ? path : "/");
        if (n < 0 || (size_t)n >= cap)
            err = xb_fail(d, XB_ERR_CONFIG, "%s is too long", what);
    }
    if (err == XB_OK && query != NULL)
        *query = xb_url_part(u, CURLUPART_QUERY);
    if (err == XB_OK && password != NULL)
        *password = xb_url_part(u, CURLUPART_PASSWORD);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    return err;
}

xb_err xb_url_shown(const char *url, const char *what, char *shown, size_t cap, xb_diag *d)
{
    return xb_url_parse_https(url, what, shown, cap, NULL, NULL, d);
}
