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
 *     {name...}      /catalog/{rest...}   catch-all, only as the last segment: the rest of the path, zero or more
 *                                         segments. Its value is raw (not percent-decoded), so it can be forwarded as
 *                                         sent: "" for "/catalog", "/" for "/catalog/", "/a/b%2Fc" for "/catalog/a/b%2Fc"
 *                                         (each segment preceded by '/', a trailing slash kept; after normalisation, so
 *                                         dot segments are resolved and repeated slashes collapsed). It is the only
 *                                         kind of template that matches a path ending in '/' (besides "/").
 * A template starts with '/', has no empty segment except that "/" alone is the root, and names each parameter once.
 * A trailing slash is significant: "/a/" is a different template from "/a" (a template may not end in '/' except "/").
 * A parameter is a whole segment ("/a{b}" is an error); a name is [A-Za-z_][A-Za-z0-9_]*; the only type is "int".
 * Literal segments are percent-decoded like request segments, so "/caf%C3%A9" and "/caf" + raw bytes C3 A9 are one template and
 * "%7B" writes a literal '{'. A template may not contain '?', '#', spaces, control characters, a raw '{' or '}' outside
 * a parameter, a malformed escape or "%00", nor a segment that is "." or ".." (requests are normalised, see below, so
 * such a segment could never match). At most HY_MAX_PARAMS parameters and HY_ROUTER_MAX_SEGMENTS segments.
 *
 * Precedence: at each segment a literal child is tried first, then a `{x:int}` child, then a `{x}` child, then a
 * `{x...}` catch-all (so a catch-all only gets what no more specific template takes); when a
 * deeper segment fails the next alternative is tried (backtracking), so "/a/{x}/c" and "/a/b/d" both serve "/a/b/c".
 * Among the templates that match a path, the first in that order that allows the method wins; `allowed` is the union
 * over all of them. "/u/{id}" and "/u/{id:int}" are different templates and may both exist (the int one is tried
 * first). Two routes on one template must have disjoint methods. A route that allows GET also answers HEAD; a route
 * declaring HEAD explicitly on the same template wins over that implied HEAD.
 *
 * Request path normalisation (RFC 3986 sections 6.2.2 and 5.2.4), done on the whole path before matching:
 *   - the path must start with '/'; a raw NUL byte, a malformed escape ("%G1", a truncated "%4") or one that decodes
 *     to NUL ("%00") anywhere in the path gives HY_MATCH_BAD_REQUEST, even when no template could match;
 *   - each segment is percent-decoded on its own: "%2F" is a '/' inside the segment, never a separator;
 *   - a segment that is exactly "." or ".." after decoding is a dot segment ("%2E", ".%2e" and "%2E%2E" count: '.' is
 *     unreserved, so its escape is equivalent to it): "." is dropped and ".." drops the previous segment (".." at the
 *     root stays at the root). As in RFC 3986, a path ending in a dot segment ends in a slash ("/a/b/.." is "/a/").
 *     Segments that merely contain dots ("...", "..a", "a..") are ordinary segments;
 *   - repeated slashes collapse: "//a///b" is "/a/b" and "//" is "/"; a final empty segment is a trailing slash;
 *   - a trailing slash is kept and is significant; since no template but "/" ends in '/', "/a/" matches nothing (404).
 * So a parameter value is never empty, "." or "..", but it may contain '/' (from "%2F") and "..": a handler that builds
 * a file name from one must check it. Paths of any length are handled in linear time without recursion on the path;
 * one with more segments (after normalisation) than the deepest template (or than HY_ROUTER_MAX_SEGMENTS, for a catch-all)
 * simply does not match.
 */

#define HY_ROUTER_MAX_SEGMENTS 128 /* most segments one route template may hold */
/* A buffer for hy_router_match that holds any match of a path of `len` bytes: its decoded segments, then a catch-all's
 * raw value (at most len + 1 bytes) and its NUL. */
#define HY_ROUTER_BUF_SIZE(len) (2 * (len) + 3)

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
 * Decoded parameter values are written into `buf` (`bufsize` bytes; len + 1 is enough without a catch-all, which
 * needs up to HY_ROUTER_BUF_SIZE(len); less gives HY_MATCH_BAD_REQUEST), which the params of `out` point into: they stay valid
 * while buf does. `template_` and param names stay valid while the router lives. Never allocates; safe to call from
 * many threads at once on one router. Returns a hy_match_result_t. */
hy_match_result_t hy_router_match(const hy_router_t *router, unsigned method, const char *path, size_t len, char *buf,
                                  size_t bufsize, hy_match_t *out);

#endif
