/* proxy.h: the `proxy:` route kind: forwards requests to an HTTP/1.1 upstream over pooled keep-alive connections and
 * streams the answers back. */
#ifndef HY_PROXY_H
#define HY_PROXY_H

#include <h2o.h>
#include "config.h"

/* One event-loop thread's part of the proxy: its timer lists and libh2o client contexts (one per duration). */
typedef struct st_hy_proxy_local_t hy_proxy_local_t;

/* Makes the proxy state of the thread that runs `ctx`. Call on that thread; free with hy_proxy_local_free there. */
hy_proxy_local_t *hy_proxy_local_new(h2o_context_t *ctx);
/* Frees it once the thread's loop has stopped serving. */
void hy_proxy_local_free(hy_proxy_local_t *local);

/* Points each proxy route of `config` at its upstream's connection pool (route->proxy.rt). Pools are process-wide, one
 * per distinct (host, port, keepalive, idle_timeout), shared by all threads and by every config snapshot (a reload
 * that keeps an upstream keeps its idle connections); they live until the process exits. Main thread. */
void hy_proxy_bind(hy_config_t *config);

/* The request handler of HY_ROUTE_PROXY routes. `local` is the serving thread's state. Answers 502 (bad_gateway) when
 * the upstream cannot be reached or answers something malformed, 504 (upstream_timeout) when its response head does
 * not come within proxy.timeout; the upstream request is cancelled when the client goes away or the route's deadline
 * answers first. Returns 0 (-1 only when the route was never bound). */
int hy_proxy_on_req(h2o_req_t *req, hy_proxy_local_t *local, const hy_route_t *route, const hy_param_t *params, size_t nparams);

#endif
