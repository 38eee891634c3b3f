/* sql.c: the `sql` route kind at run time: binds the declared parameters from the path, the query string and the JSON
 * body, runs the route's prepared statement on the shared pool, and answers the rows as JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>
#include "db.h"
#include "handlers.h"
#include "json.h"
#include "log.h"
#include "respond.h"
#include "server.h"
#include "sqlroute.h"

/* ---- database errors (shared with users.c) ---------------------------------------------------------------------------- */

void hy_respond_db_failure(h2o_req_t *req, const hy_db_result_t *r, const char *what)
{
    switch (r->status) {
    case HY_DB_QUERY_ERROR:
        if (strcmp(r->sqlstate, "57014") == 0) { /* query_canceled: statement_timeout */
            hy_respond_error_dynamic(req, 504, "database_timeout", "the database did not answer in time");
            return;
        }
        hy_log("error", hy_req_id(req), "database: %s failed: SQLSTATE %s: %s", what, r->sqlstate, r->message);
        hy_respond_error_dynamic(req, 500, "database_error", "the database rejected the request");
        return;
    case HY_DB_UNKNOWN_OUTCOME:
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        hy_respond_error_dynamic(req, 503, "outcome_unknown",
                                 "the database connection was lost after the write was sent; it may or may not have been applied");
        return;
    default:
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        hy_respond_error_dynamic(req, 503, "database_unavailable", "the database is unavailable; try again");
        return;
    }
}

/* The route's error_map entry for a SQLSTATE: an exact code first, then its class. */
static const hy_sql_error_t *mapped_error(const hy_sql_t *sql, const char *sqlstate)
{
    for (size_t i = 0; i != sql->nerrors; ++i)
        if (strcmp(sql->errors[i].sqlstate, sqlstate) == 0)
            return &sql->errors[i];
    for (size_t i = 0; i != sql->nerrors; ++i)
        if (sql->errors[i].sqlstate[2] == '\0' && strncmp(sql->errors[i].sqlstate, sqlstate, 2) == 0)
            return &sql->errors[i];
    return NULL;
}

static void respond_query_error(h2o_req_t *req, const hy_sql_t *sql, const hy_db_result_t *r)
{
    char msg[160];
    const hy_sql_error_t *e = r->status == HY_DB_QUERY_ERROR ? mapped_error(sql, r->sqlstate) : NULL;
    if (e != NULL) {
        snprintf(msg, sizeof(msg), "the database refused the request (SQLSTATE %s)", r->sqlstate);
        hy_respond_error_dynamic(req, e->status, e->error, e->message != NULL ? e->message : msg);
        return;
    }
    if (r->status == HY_DB_QUERY_ERROR && strncmp(r->sqlstate, "22", 2) == 0) { /* data exception: a value it cannot take */
        snprintf(msg, sizeof(msg), "a value is out of range or malformed for the database (SQLSTATE %s)", r->sqlstate);
        hy_respond_error_dynamic(req, 400, "invalid_value", msg);
        return;
    }
    if (r->status == HY_DB_QUERY_ERROR && strncmp(r->sqlstate, "23", 2) == 0) { /* integrity constraint */
        snprintf(msg, sizeof(msg), "the request conflicts with a constraint on the data (SQLSTATE %s)", r->sqlstate);
        hy_respond_error_dynamic(req, 409, "constraint_violation", msg);
        return;
    }
    hy_respond_db_failure(req, r, sql->label);
}

/* ---- rows as JSON ----------------------------------------------------------------------------------------------------- */

/* json/jsonb cells are parsed and written again through the generator (yajl has no raw insertion): */
static int re_null(void *g)
{
    return yajl_gen_null(g) == yajl_gen_status_ok;
}
static int re_bool(void *g, int b)
{
    return yajl_gen_bool(g, b) == yajl_gen_status_ok;
}
static int re_number(void *g, const char *s, size_t len)
{
    return yajl_gen_number(g, s, len) == yajl_gen_status_ok;
}
static int re_string(void *g, const unsigned char *s, size_t len)
{
    return yajl_gen_string(g, s, len) == yajl_gen_status_ok;
}
static int re_map_open(void *g)
{
    return yajl_gen_map_open(g) == yajl_gen_status_ok;
}
static int re_map_close(void *g)
{
    return yajl_gen_map_close(g) == yajl_gen_status_ok;
}
static int re_array_open(void *g)
{
    return yajl_gen_array_open(g) == yajl_gen_status_ok;
}
static int re_array_close(void *g)
{
    return yajl_gen_array_close(g) == yajl_gen_status_ok;
}
static const yajl_callbacks regenerate = {re_null,     re_bool,   NULL,         NULL,          re_number,     re_string,
                                          re_map_open, re_string, re_map_close, re_array_open, re_array_close};

static void gen_json_cell(yajl_gen g, const char *v, size_t len)
{
    yajl_handle h = yajl_alloc(&regenerate, NULL, g);
    if (h == NULL || yajl_parse(h, (const unsigned char *)v, len) != yajl_status_ok || yajl_complete_parse(h) != yajl_status_ok)
        hy_log("error", NULL, "sql: a json column did not parse; the response is incomplete");
    if (h != NULL)
        yajl_free(h);
}

static int is_finite_number(const char *v)
{
    return strcmp(v, "NaN") != 0 && strcmp(v, "Infinity") != 0 && strcmp(v, "-Infinity") != 0;
}

static void gen_row(yajl_gen g, h2o_mem_pool_t *pool, const PGresult *res, int row, int ncols)
{
    yajl_gen_map_open(g);
    for (int c = 0; c != ncols; ++c) {
        hy_json_str(g, PQfname(res, c));
        if (PQgetisnull(res, row, c)) {
            yajl_gen_null(g);
            continue;
        }
        const char *v = PQgetvalue(res, row, c);
        size_t len = (size_t)PQgetlength(res, row, c);
        switch (PQftype(res, c)) {
        case 16: /* bool */
            yajl_gen_bool(g, v[0] == 't');
            break;
        case 20:   /* int8 */
        case 21:   /* int2 */
        case 23:   /* int4 */
        case 26:   /* oid */
        case 700:  /* float4 */
        case 701:  /* float8 */
        case 1700: /* numeric */
            if (is_finite_number(v))
                yajl_gen_number(g, v, len);
            else
                yajl_gen_string(g, (const unsigned char *)v, len);
            break;
        case 114:  /* json */
        case 3802: /* jsonb */
            gen_json_cell(g, v, len);
            break;
        case 1114: /* timestamp */
        case 1184: /* timestamptz */ {
            char buf[96];
            if (len + 12 > sizeof(buf)) {
                yajl_gen_string(g, (const unsigned char *)v, len);
                break;
            }
            size_t n = hy_sql_rfc3339(v, len, buf);
            yajl_gen_string(g, (const unsigned char *)buf, n);
            break;
        }
        case 17: { /* bytea */
            char *buf = h2o_mem_alloc_pool(pool, (len / 2 + 2) / 3 * 4 + 1);
            size_t n = hy_sql_bytea_base64(v, len, buf);
            if (n == (size_t)-1)
                yajl_gen_string(g, (const unsigned char *)v, len);
            else
                yajl_gen_string(g, (const unsigned char *)buf, n);
            break;
        }
        default: /* text and everything else as its text form */
            yajl_gen_string(g, (const unsigned char *)v, len);
            break;
        }
    }
    yajl_gen_map_close(g);
}

/* ---- the request ------------------------------------------------------------------------------------------------------ */

typedef struct st_sql_req_t {
    h2o_req_t *req;      /* valid while the callback may run (hy_db_submit_req) */
    const hy_sql_t *sql; /* the route's settings (the config snapshot outlives the request) */
} sql_req_t;

static void on_result(void *data, const hy_db_result_t *r)
{
    sql_req_t *s = data;
    h2o_req_t *req = s->req;
    const hy_sql_t *sql = s->sql;
    if (r->status != HY_DB_OK) {
        respond_query_error(req, sql, r);
        return;
    }
    int status = (int)sql->status, rows = PQntuples(r->res), ncols = PQnfields(r->res);
    h2o_iovec_t none = h2o_iovec_init(NULL, 0);
    switch (sql->result) {
    case HY_SQL_RESULT_NONE:
        hy_respond(req, status, none, none);
        return;
    case HY_SQL_RESULT_ONE:
        if (rows == 0) {
            hy_respond_error_dynamic(req, 404, "not_found", "nothing matches this request");
        } else if (status == 204) {
            hy_respond(req, status, none, none);
        } else {
            yajl_gen g = hy_json_begin();
            gen_row(g, &req->pool, r->res, 0, ncols);
            hy_respond(req, status, hy_type_json, hy_json_finish(g, &req->pool));
        }
        return;
    case HY_SQL_RESULT_MANY: {
        yajl_gen g = hy_json_begin();
        int n = (uint64_t)rows > sql->max_rows ? (int)sql->max_rows : rows;
        yajl_gen_array_open(g);
        for (int i = 0; i != n; ++i)
            gen_row(g, &req->pool, r->res, i, ncols);
        yajl_gen_array_close(g);
        if (n != rows)
            h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-result-truncated"), 0, NULL, H2O_STRLIT("true"));
        hy_respond(req, status, hy_type_json, hy_json_finish(g, &req->pool));
        return;
    }
    }
}

static const char *const source_names[] = {"path parameter", "query parameter", "body field"};

/* 1 when a JSON value of `kind` may give a parameter of type t. */
static int json_kind_fits(hy_sql_type_t t, hy_json_kind_t kind)
{
    switch (t) {
    case HY_SQL_INT:
        return kind == HY_JSON_NUMBER;
    case HY_SQL_BOOL:
        return kind == HY_JSON_BOOL;
    case HY_SQL_JSON:
        return 1;
    default:
        return kind == HY_JSON_STRING;
    }
}

/* A body member's value as JSON text, for a `json` parameter: objects, arrays, numbers and booleans are their text;
 * a string is encoded again (the parser gave it decoded). */
static h2o_iovec_t member_json(h2o_mem_pool_t *pool, const hy_json_field_t *f)
{
    if (f->kind != HY_JSON_STRING)
        return f->value;
    yajl_gen g = hy_json_begin();
    yajl_gen_string(g, (const unsigned char *)f->value.base, f->value.len);
    return hy_json_finish(g, pool);
}

int hy_sql_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    const hy_sql_t *sql = route->sql;
    hy_db_local_t *local = hy_thread_db(hy_thread_of(req));
    char err[320], why[200];
    if (sql->registered == NULL || local == NULL) {
        hy_respond_error_dynamic(req, 503, "database_unavailable", "the database is unavailable; try again");
        return 0;
    }
    hy_json_field_t *fields = NULL; /* the body parameters' members, in params order */
    size_t nfields = 0;
    if (sql->has_body_params) {
        if (!hy_req_content_is_json(req)) {
            hy_respond_error_dynamic(req, 415, "unsupported_media_type", "the body must be JSON (Content-Type: application/json)");
            return 0;
        }
        fields = h2o_mem_alloc_pool(&req->pool, sizeof(*fields) * sql->nparams);
        for (size_t i = 0; i != sql->nparams; ++i)
            if (sql->params[i].source == HY_SQL_FROM_BODY)
                fields[nfields++] = (hy_json_field_t){sql->params[i].name, HY_JSON_ABSENT, {NULL, 0}};
        if (hy_json_parse_fields(&req->pool, req->entity.base, req->entity.base != NULL ? req->entity.len : 0, fields, nfields, err,
                                 sizeof(err)) != 0) {
            hy_respond_error_dynamic(req, 400, "invalid_json", err);
            return 0;
        }
    }
    const char **values = h2o_mem_alloc_pool(&req->pool, sizeof(*values) * (sql->nparams + 1));
    hy_json_field_t *field = fields;
    for (size_t i = 0; i != sql->nparams; ++i) {
        const hy_sql_param_t *p = &sql->params[i];
        const char *raw = NULL;
        size_t len = 0;
        switch (p->source) {
        case HY_SQL_FROM_PATH:
            for (size_t k = 0; k != nparams; ++k)
                if (strcmp(params[k].name, p->name) == 0)
                    raw = params[k].value, len = params[k].len;
            break;
        case HY_SQL_FROM_QUERY: {
            h2o_iovec_t v;
            if (hy_query_get(req, p->name, &v) == 0)
                raw = v.base, len = v.len;
            break;
        }
        case HY_SQL_FROM_BODY: {
            const hy_json_field_t *fv = field++;
            if (fv->kind == HY_JSON_ABSENT || fv->kind == HY_JSON_NULL)
                break;
            if (!json_kind_fits(p->type, fv->kind)) {
                snprintf(err, sizeof(err), "body field \"%s\" must be %s, not %s", p->name,
                         p->type == HY_SQL_INT    ? "a number"
                         : p->type == HY_SQL_BOOL ? "a boolean"
                                                  : "a string",
                         hy_json_kind_name(fv->kind));
                hy_respond_error_dynamic(req, 400, "invalid_parameter", err);
                return 0;
            }
            h2o_iovec_t v = p->type == HY_SQL_JSON ? member_json(&req->pool, fv) : fv->value;
            raw = v.base, len = v.len;
            break;
        }
        }
        if (raw == NULL) {
            if (p->optional || p->def != NULL) {
                values[i] = p->def; /* NULL: SQL NULL */
                continue;
            }
            snprintf(err, sizeof(err), "%s \"%s\" is required", source_names[p->source], p->name);
            hy_respond_error_dynamic(req, 400, "missing_parameter", err);
            return 0;
        }
        char *out = h2o_mem_alloc_pool(&req->pool, len + 2);
        if (hy_sql_value_check(p, raw, len, out, len + 2, why, sizeof(why)) != 0) {
            snprintf(err, sizeof(err), "%s \"%s\" %s", source_names[p->source], p->name, why);
            hy_respond_error_dynamic(req, 400, "invalid_parameter", err);
            return 0;
        }
        values[i] = out;
    }
    sql_req_t *s = h2o_mem_alloc_pool(&req->pool, sizeof(*s));
    s->req = req;
    s->sql = sql;
    hy_db_submit_req(req, local, sql->registered, values, (int)sql->nparams, on_result, s);
    return 0;
}
