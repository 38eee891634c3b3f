/* handler.h: the contract between the server core and the named C handlers of h2o-handlers/. */
#ifndef HY_HANDLER_H
#define HY_HANDLER_H

#include <stddef.h>
#include <stdint.h>

struct st_h2o_req_t;
struct st_hy_route_t;

/* ---- path parameters ------------------------------------------------------------------------------------------------- */

#define HY_MAX_PARAMS 16 /* most `{name}` parameters one route template may hold */

typedef enum en_hy_param_type_t {
    HY_PARAM_STRING = 0, /* `{name}`: any non-empty segment, percent-decoded */
    HY_PARAM_INT,        /* `{name:int}`: ASCII digits only, fits an int64_t */
    HY_PARAM_REST        /* `{name...}`: the rest of the path, raw (not decoded): "" or "/a/b%2Fc" (see router.h) */
} hy_param_type_t;

typedef struct st_hy_param_t {
    const char *name;     /* parameter name from the template; owned by the router, valid while the config lives */
    const char *value;    /* percent-decoded value (raw for HY_PARAM_REST), NUL-terminated; owned by the caller's buffer
                           * (see hy_router_match) */
    size_t len;           /* length of value in bytes */
    int64_t ival;         /* parsed value when the parameter is `:int`, else 0 */
    hy_param_type_t type; /* the parameter's declared type */
} hy_param_t;

/* ---- handler registry ------------------------------------------------------------------------------------------------ */

/* A request handler. `route` is the matched route (its typed settings), `params` the parsed path parameters
 * (`nparams` of them). Both stay valid until the request is disposed (the server copies params into req->pool).
 * The callback must answer the request, at once or later from an asynchronous callback. Returns 0; -1 makes the
 * server answer 500. */
typedef int (*hy_handler_fn)(struct st_h2o_req_t *req, const struct st_hy_route_t *route, const hy_param_t *params, size_t nparams);

typedef struct st_hy_handler_def_t {
    const char *name;                           /* the name used in YAML, e.g. "health" or "users.get" */
    hy_handler_fn on_req;                       /* the callback */
    const char *summary;                        /* one line for `hydrant check` and docs */
    const struct st_hy_db_stmt_t *const *stmts; /* NULL-terminated statements it runs (prepared on every connection),
                                                 * or NULL when the handler needs no database */
    unsigned flags;                             /* HY_HANDLER_* */
} hy_handler_def_t;

enum {
    HY_HANDLER_ADMIN = 1u << 0, /* an admin route (metrics, status): only on server.admin when one is configured */
    HY_HANDLER_PROBE = 1u << 1  /* a probe (health, ready): on the public listeners and on server.admin */
};

/* The registry is a NULL-name-terminated table defined in h2o-handlers/registry.c. */
extern const hy_handler_def_t hy_handler_registry[];

/* Returns the handler named `name`, or NULL when there is none. */
const hy_handler_def_t *hy_handler_lookup(const char *name);

#endif
