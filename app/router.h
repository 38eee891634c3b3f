/* router.h: matches a request's method and raw path against the route templates of one config snapshot. */
#ifndef HY_ROUTER_H
#define HY_ROUTER_H

#include <stddef.h>
#include "handler.h"

/* ---- methods ---------------------------------------------------------------------------------------------------------- */

enum {
    HY_METHOD_GET = 1u << 0,
    HY_METHOD_HEAD = 1u << 1,
    HY_METHOD_POST = 1u << 2,
    HY_METHOD_PUT = 1u << 3,
    HY_METHOD_DELETE = 1u << 4,
    HY_METHOD_PATCH = 1u << 5,
    HY_METHOD_OPTIONS = 1u << 6,
    HY_METHOD_ALL = (1u << 7) - 1
};

/* Returns the HY_METHOD_* bit for an upper-case method name of `len` bytes, or 0 when it is not one we route. */
unsigned hy_method_from_name(const char *name, size_t len);

/* Writes the `Allow` header value for a method mask ("GET, HEAD, POST") into buf (NUL-terminated, truncated to
 * bufsize). Methods are listed in the order of the enum. Returns the length written. */
size_t hy_methods_format(unsigned mask, char *buf, size_t bufsize);

/* ---- templates and matching ------------------------------------------------------------------------------------------- */

/* Route template syntax (each segment between slashes is one of):
 *     literal        /api/v1/users        matched byte for byte after percent-decoding of the request segment
 *     {name}         /users/{id}          any non-empty segment
 *     {name:int}     /users/{id:int}      ASCII digits only, value fits int64_t; otherwise the segment does not match
 * A template starts with '/', has no empty segment except that "/" alone is the root, and names each parameter once.
 * A trailing slash is significant: "/a/" is a different template from "/a" (a template may not end in '/' except "/").
 */

typedef struct st_hy_router_t hy_router_t;

typedef enum en_hy_match_result_t {
    HY_MATCH_OK = 0,             /* a route matched the path and the method */
    HY_MATCH_NOT_FOUND,          /* no template matches the path */
    HY_MATCH_METHOD_NOT_ALLOWED, /* a template matches the path but none allows the method; `allowed` is set */
    HY_MATCH_BAD_REQUEST         /* the path is malformed (bad percent-encoding, NUL byte, does not start with '/') */
} hy_match_result_t;

typedef struct st_hy_match_t {
    void *data;                       /* the `data` given to hy_router_add for the matched route */
    const char *template_;            /* the matched template (owned by the router) */
    unsigned allowed;                 /* methods allowed on the matched path (also set on OK and METHOD_NOT_ALLOWED) */
    size_t nparams;                   /* number of params */
    hy_param_t params[HY_MAX_PARAMS]; /* path parameters in template order */
} hy_match_t;

/* Creates an empty router. Aborts on allocation failure. */
hy_router_t *hy_router_new(void);

/* Frees the router and everything it owns (not the `data` pointers). */
void hy_router_free(hy_router_t *router);

/* Adds a route. `methods` is a HY_METHOD_* mask; a route that allows GET also answers HEAD. `data` is returned by
 * hy_router_match. Returns 0, or -1 with a one-line reason in err (e.g. "bad parameter name in \"{1d}\"",
 * "duplicate route: GET /a is already declared", "parameter \"id\" appears twice") when the template is invalid or
 * overlaps an earlier route with the same methods. Two templates that differ only in parameter names
 * ("/u/{id}" and "/u/{uid}") are the same route. */
int hy_router_add(hy_router_t *router, const char *template_, unsigned methods, void *data, char *err, size_t errlen);

/* Validates a template without adding it. Returns 0 or -1 with a reason in err. */
int hy_router_check_template(const char *template_, char *err, size_t errlen);

/* Matches `method` (one HY_METHOD_* bit; 0 for a method no route can have) and the raw request path (`path`, `len`
 * bytes, without the query string). Dot segments ("." and "..") are resolved, each segment is percent-decoded
 * ("%2F" inside a segment stays inside that segment), literal segments win over parameters when both could match.
 * Decoded parameter values are written into `buf` (`bufsize` bytes; the caller passes at least len + HY_MAX_PARAMS
 * bytes), which the params of `out` point into. Returns a hy_match_result_t. */
hy_match_result_t hy_router_match(const hy_router_t *router, unsigned method, const char *path, size_t len, char *buf,
                                  size_t bufsize, hy_match_t *out);

#endif
