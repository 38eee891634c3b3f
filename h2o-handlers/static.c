/* static.c: the `static:` route kind, a fixed response declared in YAML and rendered once at config time. */
#include <string.h>
#include "handlers.h"
#include "respond.h"

int hy_static_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    (void)params, (void)nparams;
    const hy_static_t *s = &route->static_;
    for (size_t i = 0; i != s->nheaders; ++i)
        h2o_add_header_by_str(&req->pool, &req->res.headers, s->headers[i].name, strlen(s->headers[i].name), 1, NULL,
                              s->headers[i].value, strlen(s->headers[i].value));
    hy_respond(req, s->status, h2o_iovec_init(s->content_type, strlen(s->content_type)), h2o_iovec_init(s->body, s->body_len));
    return 0;
}
