/* Operations endpoints. */
#include "http.h"

#include <time.h>

void xb_route_healthz(xb_exchange *ex)
{
    xb_diag d = {""};
    xb_err err = xb_ca_check_usable(ex->srv->ca, time(NULL), &d);
    if (err == XB_OK)
        err = xb_registry_ping(ex->srv->reg, &d);
    if (err != XB_OK) {
        xb_http_reply_error(ex, err, xb_diag_message(&d, err));
        return;
    }
    ex->outcome = "ok";
    xb_http_reply_json(ex, 200, "{\"status\":\"ok\"}");
}
