/* hello.c: the TechEmpower-style plaintext and JSON handlers used for benchmarks and smoke tests. */
#include "handlers.h"
#include "json.h"
#include "respond.h"

int hy_plaintext_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    (void)route, (void)params, (void)nparams;
    static const h2o_iovec_t body = {H2O_STRLIT("Hello, World!")};
    hy_respond(req, 200, hy_type_plain, body);
    return 0;
}

int hy_json_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    (void)route, (void)params, (void)nparams;
    yajl_gen gen = hy_json_begin();
    yajl_gen_map_open(gen);
    hy_json_kv_str(gen, "message", "Hello, World!");
    yajl_gen_map_close(gen);
    hy_respond(req, 200, hy_type_json, hy_json_finish(gen, &req->pool));
    return 0;
}
