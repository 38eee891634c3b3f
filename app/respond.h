/* respond.h: the one place that writes complete responses (status, headers, body) for the core and the handlers. */
#ifndef HY_RESPOND_H
#define HY_RESPOND_H

#include <h2o.h>

/* Returns the standard reason phrase for an HTTP status ("Not Found"), or "Unknown" for codes it does not know. */
const char *hy_reason_phrase(int status);

/* Answers `req` with a complete response. `body` must stay valid until the request is disposed (static memory, the
 * config snapshot, or req->pool). Sets Content-Type (when content_type.len != 0) and Content-Length; for HEAD the
 * Content-Length of the body is sent and the body is not. Extra headers may be added to req->res.headers before
 * the call. */
void hy_respond(h2o_req_t *req, int status, h2o_iovec_t content_type, h2o_iovec_t body);

/* A JSON error body rendered once at start-up: {"error":"<code>","message":"<message>"}. */
typedef struct st_hy_error_body_t {
    int status;       /* HTTP status */
    h2o_iovec_t body; /* rendered JSON, static lifetime (malloc'ed once, never freed while serving) */
} hy_error_body_t;

/* Renders an error body (code and message are escaped as JSON strings). The result lives until the process exits. */
hy_error_body_t hy_error_body_render(int status, const char *code, const char *message);

/* Sends a pre-rendered JSON error body as application/json. */
void hy_respond_error(h2o_req_t *req, const hy_error_body_t *err);

/* Renders a JSON error into req->pool and sends it; for errors whose message depends on the request (400 naming a
 * field). `message` may be NULL. */
void hy_respond_error_dynamic(h2o_req_t *req, int status, const char *code, const char *message);

/* The media types the core and handlers use, as iovecs. */
extern const h2o_iovec_t hy_type_json;  /* "application/json" */
extern const h2o_iovec_t hy_type_plain; /* "text/plain; charset=utf-8" */

/* 1 when the request's Content-Type is JSON: application/json or any type ending in +json (parameters ignored). */
int hy_req_content_is_json(h2o_req_t *req);

/* Finds query-string parameter `name` in req (first occurrence) and percent-decodes its value into req->pool.
 * Returns 0 with *value set, or -1 when absent. */
int hy_query_get(h2o_req_t *req, const char *name, h2o_iovec_t *value);

#endif
