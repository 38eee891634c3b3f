/* observe.c: the operator's handlers: Prometheus metrics and the JSON status document. */
#include <stdlib.h>
#include "handlers.h"
#include "json.h"
#include "metrics.h"
#include "respond.h"
#include "server.h"

int hy_metrics_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    (void)route, (void)params, (void)nparams;
    size_t len;
    char *text = hy_server_metrics_render(&len);
    if (text == NULL)
        return -1;
    h2o_iovec_t body = h2o_strdup(&req->pool, text, len);
    free(text);
    hy_respond(req, 200, h2o_iovec_init(H2O_STRLIT(HY_METRICS_CONTENT_TYPE)), body);
    return 0;
}

int hy_status_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    (void)route, (void)params, (void)nparams;
    yajl_gen g = hy_json_begin();
    hy_server_write_status(g);
    hy_respond(req, 200, hy_type_json, hy_json_finish(g, &req->pool));
    return 0;
}
