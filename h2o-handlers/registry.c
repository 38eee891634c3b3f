/* registry.c: the table that maps a handler name used in YAML (`handler: health`) to its C callback. */
#include <string.h>
#include "handlers.h"

/* ---- the table -------------------------------------------------------------------------------------------------------- */

const hy_handler_def_t hy_handler_registry[] = {
    {"health", hy_health_on_req, "200 OK text/plain, for liveness probes", NULL, HY_HANDLER_PROBE},
    {"ready", hy_ready_on_req, "200 when the database pool can serve and the server is not draining, else 503", NULL,
     HY_HANDLER_PROBE},
    {"metrics", hy_metrics_on_req, "Prometheus metrics (text format 0.0.4)", NULL, HY_HANDLER_ADMIN},
    {"status", hy_status_on_req, "JSON: version, uptime, threads, connections, requests, pool, config", NULL, HY_HANDLER_ADMIN},
    {"plaintext", hy_plaintext_on_req, "200 \"Hello, World!\" text/plain", NULL, 0},
    {"json", hy_json_on_req, "200 {\"message\":\"Hello, World!\"} serialized per request", NULL, 0},
    {"users.get", hy_users_get_on_req, "GET a user by id (path parameter 1)", hy_users_stmts, 0},
    {"users.create", hy_users_create_on_req, "POST {\"name\",\"email\"}: 201 with Location", hy_users_stmts, 0},
    {"users.list", hy_users_list_on_req, "GET ?limit=1..100&after=ID: keyset pagination with a next cursor", hy_users_stmts, 0},
    {"users.update", hy_users_update_on_req, "PUT a full user by id", hy_users_stmts, 0},
    {"users.delete", hy_users_delete_on_req, "DELETE a user by id: 204 or 404", hy_users_stmts, 0},
    {"users.profile", hy_users_profile_on_req, "the user, 10 latest orders and preferences, fetched concurrently", hy_users_stmts,
     0},
    {NULL, NULL, NULL, NULL, 0}};

const hy_handler_def_t *hy_handler_lookup(const char *name)
{
    for (const hy_handler_def_t *d = hy_handler_registry; d->name != NULL; ++d)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}
