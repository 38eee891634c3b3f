/* registry.c: the table that maps a handler name used in YAML (`handler: health`) to its C callback. */
#include <string.h>
#include "handlers.h"

/* ---- the table -------------------------------------------------------------------------------------------------------- */

const hy_handler_def_t hy_handler_registry[] = {
    {"health", hy_health_on_req, "200 OK text/plain, for liveness probes"},
    {"plaintext", hy_plaintext_on_req, "200 \"Hello, World!\" text/plain"},
    {"json", hy_json_on_req, "200 {\"message\":\"Hello, World!\"} serialized per request"},
    {NULL, NULL, NULL}};

const hy_handler_def_t *hy_handler_lookup(const char *name)
{
    for (const hy_handler_def_t *d = hy_handler_registry; d->name != NULL; ++d)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}
