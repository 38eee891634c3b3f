/* health.c: the liveness handler; answers 200 "OK" whenever the event loop runs. */
#include "handlers.h"
#include "respond.h"

int hy_health_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    (void)route, (void)params, (void)nparams;
    static const h2o_iovec_t body = {H2O_STRLIT("OK")};
    hy_respond(req, 200, hy_type_plain, body);
    return 0;
}
