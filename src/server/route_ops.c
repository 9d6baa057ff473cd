/* Operations endpoints: /healthz for load balancers, /metrics for Prometheus. */
#include "http.h"

#include <stdlib.h>
#include <time.h>

void xb_route_healthz(xb_exchange *ex)
{
    xb_diag d = {""};
    xb_err err = xb_ca_check_usable(ex->srv->ca, time(NULL), &d);
    if (err == XB_OK)
        err = xb_ca_check_key(ex->srv->ca, &d);
    if (err == XB_OK)
        err = xb_registry_ping(ex->srv->reg, &d);
    if (err != XB_OK) {
        xb_http_reply_error(ex, err, xb_diag_message(&d, err));
        return;
    }
    ex->outcome = "ok";
    xb_http_reply_json(ex, 200, "{\"status\":\"ok\"}");
}

void xb_route_metrics(xb_exchange *ex)
{
    xb_diag d = {""};
    xb_metrics_health health = {
        .ca_ok = xb_ca_check_usable(ex->srv->ca, time(NULL), &d) == XB_OK &&
                 xb_ca_check_key(ex->srv->ca, &d) == XB_OK,
        .registry_ok = xb_registry_ping(ex->srv->reg, &d) == XB_OK,
    };
    const char *names[XB_METRICS_MAX_ROUTES];
    size_t routes = xb_http_route_count();
    for (size_t i = 0; i < routes && i < XB_METRICS_MAX_ROUTES; i++)
        names[i] = xb_http_route_path(i);
    char *text = xb_metrics_render(ex->srv->metrics, names, routes, &health);
    if (text == NULL) {
        xb_http_reply_error(ex, XB_ERR_NOMEM, "cannot render the metrics");
        return;
    }
    ex->outcome = "ok";
    xb_http_reply_text(ex, 200, "text/plain; version=0.0.4; charset=utf-8", text);
    free(text);
}
