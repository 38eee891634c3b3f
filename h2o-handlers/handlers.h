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

/* `handler: ready`: 200 {"status":"ready"} when the database pool can serve (or none is configured) and the server is
 * not draining; 503 otherwise. */
int hy_ready_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams);

/* `handler: metrics`: the Prometheus exposition of the whole process (all threads summed). */
int hy_metrics_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams);

/* `handler: status`: a JSON document with version, uptime, threads, per-thread connections and requests, the pool's
 * state, and the config file with its load time. No secrets. */
int hy_status_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams);

/* The users API (users.c). Routes pass the user id as the first path parameter (`{id:int}`). */
int hy_users_get_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams);
int hy_users_create_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams);
int hy_users_list_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams);
int hy_users_update_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams);
int hy_users_delete_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams);
int hy_users_profile_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams);

/* The `sql:` route kind (sql.c): binds the route's parameters, runs its statement, answers the rows as JSON. */
int hy_sql_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams);

struct st_hy_db_result_t;
/* Answers a statement that did not succeed (unavailable, overloaded, outcome unknown, timed out, or refused: 500 with the
 * server's message logged under `what`, never sent). */
void hy_respond_db_failure(h2o_req_t *req, const struct st_hy_db_result_t *r, const char *what);

/* The statements the users handlers run, NULL-terminated. */
extern const struct st_hy_db_stmt_t *const hy_users_stmts[];

/* 1 when `e` (len bytes) is a plausible email address: one '@', local part 1-64, a dotted domain, <= 254 bytes, no
 * spaces, controls or specials. */
int hy_email_plausible(const char *e, size_t len);

#endif
