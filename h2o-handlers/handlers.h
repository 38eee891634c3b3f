/* handlers.h: the built-in handlers of h2o-handlers/ and the `static` route kind. */
#ifndef HY_HANDLERS_H
#define HY_HANDLERS_H

#include <h2o.h>
#include "config.h"

/* `handler: health`: 200 "OK", text/plain. */
int hy_health_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams);

/* `handler: plaintext`: 200 "Hello, World!", text/plain (the TechEmpower plaintext test). */
int hy_plaintext_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams);

/* `handler: json`: 200 {"message":"Hello, World!"}, serialized with yajl on every request (TechEmpower JSON test). */
int hy_json_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams);

/* The `static:` route kind: answers with the route's fixed status, type, headers and body (all owned by the config
 * snapshot, which outlives the request). */
int hy_static_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams);

#endif
