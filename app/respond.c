/* respond.c: writes complete responses, handling HEAD and Content-Length in one place. */
#include <string.h>
#include "json.h"
#include "query.h"
#include "respond.h"
#include "server.h"

const h2o_iovec_t hy_type_json = {H2O_STRLIT("application/json")};
const h2o_iovec_t hy_type_plain = {H2O_STRLIT("text/plain; charset=utf-8")};

/* ---- reason phrases --------------------------------------------------------------------------------------------------- */

const char *hy_reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

/* ---- complete responses ----------------------------------------------------------------------------------------------- */

static h2o_generator_t no_generator = {NULL, NULL}; /* responses sent in one h2o_send need no proceed/stop */

void hy_respond(h2o_req_t *req, int status, h2o_iovec_t content_type, h2o_iovec_t body)
{
    if (!hy_req_claim_response(req))
        return; /* answered already (deadline): this late answer is dropped */
    req->res.status = status;
    req->res.reason = hy_reason_phrase(status);
    if (content_type.len != 0)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type.base, content_type.len);
    int no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    req->res.content_length = no_body ? SIZE_MAX : body.len;
    h2o_start_response(req, &no_generator);
    int is_head = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
    if (is_head || no_body || body.len == 0) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    } else {
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
    }
}

hy_error_body_t hy_error_body_render(int status, const char *code, const char *message)
{
    hy_error_body_t e;
    e.status = status;
    e.body.base = hy_json_error_render(code, message, &e.body.len);
    return e;
}

void hy_respond_error(h2o_req_t *req, const hy_error_body_t *err)
{
    hy_respond(req, err->status, hy_type_json, err->body);
}

void hy_respond_error_dynamic(h2o_req_t *req, int status, const char *code, const char *message)
{
    yajl_gen gen = hy_json_begin();
    hy_json_gen_error(gen, code, message);
    hy_respond(req, status, hy_type_json, hy_json_finish(gen, &req->pool));
}

/* ---- query strings ---------------------------------------------------------------------------------------------------- */

int hy_query_get(h2o_req_t *req, const char *name, h2o_iovec_t *value)
{
    if (req->query_at == SIZE_MAX)
        return -1;
    const char *q = req->path.base + req->query_at + 1;
    size_t len = req->path.len - req->query_at - 1, n;
    char *out = h2o_mem_alloc_pool(&req->pool, len + 1);
    if (hy_query_find(q, len, name, out, len + 1, &n) != 0)
        return -1;
    *value = h2o_iovec_init(out, n);
    return 0;
}

int hy_req_content_is_json(h2o_req_t *req)
{
    ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (ct == -1)
        return 0;
    h2o_iovec_t v = req->headers.entries[ct].value;
    size_t n = 0;
    while (n < v.len && v.base[n] != ';' && v.base[n] != ' ')
        ++n;
    return h2o_lcstris(v.base, n, H2O_STRLIT("application/json")) || (n > 5 && h2o_lcstris(v.base + n - 5, 5, H2O_STRLIT("+json")));
}
