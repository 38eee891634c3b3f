/* users.c: the users API: JSON CRUD on PostgreSQL, keyset pagination, and the profile fan-out of three concurrent queries. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db.h"
#include "handlers.h"
#include "json.h"
#include "log.h"
#include "respond.h"
#include "server.h"

/* ---- statements ------------------------------------------------------------------------------------------------------- */

#define USER_COLUMNS "id, name, email, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* SELECT id, name, email, created_at FROM users WHERE id = $1 */
static const hy_db_stmt_t stmt_get = {"users_get", "SELECT " USER_COLUMNS " FROM users WHERE id = $1::bigint", 1, 1, NULL, NULL};
/* INSERT INTO users (name, email) VALUES ($1, $2) RETURNING ... */
static const hy_db_stmt_t stmt_create = {
    "users_create", "INSERT INTO users (name, email) VALUES ($1, $2) RETURNING " USER_COLUMNS, 2, 0, NULL, NULL};
/* keyset pagination: the page after id $1, $2 rows (the handler asks one more to know whether a next page exists) */
static const hy_db_stmt_t stmt_list = {
    "users_list", "SELECT " USER_COLUMNS " FROM users WHERE id > $1::bigint ORDER BY id LIMIT $2::int", 2, 1, NULL, NULL};
static const hy_db_stmt_t stmt_update = {
    "users_update", "UPDATE users SET name = $2, email = $3 WHERE id = $1::bigint RETURNING " USER_COLUMNS, 3, 0, NULL, NULL};
static const hy_db_stmt_t stmt_delete = {"users_delete", "DELETE FROM users WHERE id = $1::bigint", 1, 0, NULL, NULL};
/* the profile's other two branches */
static const hy_db_stmt_t stmt_orders = {
    "users_orders",
    "SELECT id, total_cents, status, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM orders "
    "WHERE user_id = $1::bigint ORDER BY created_at DESC, id DESC LIMIT 10",
    1,
    1,
    NULL,
    NULL};
static const hy_db_stmt_t stmt_prefs = {"users_prefs", "SELECT data::text FROM preferences WHERE user_id = $1::bigint", 1, 1, NULL,
                                        NULL};

const hy_db_stmt_t *const hy_users_stmts[] = {&stmt_get,    &stmt_create, &stmt_list,  &stmt_update,
                                              &stmt_delete, &stmt_orders, &stmt_prefs, NULL};

/* ---- errors ----------------------------------------------------------------------------------------------------------- */

/* Answers a failed statement. `what` names the operation for the log. The server's message never reaches the client. */
static void respond_db_error(h2o_req_t *req, const hy_db_result_t *r, const char *what)
{
    if (r->status == HY_DB_QUERY_ERROR && strcmp(r->sqlstate, "23505") == 0)
        hy_respond_error_dynamic(req, 409, "email_taken", "a user with this email already exists");
    else
        hy_respond_db_failure(req, r, what);
}

/* ---- rendering -------------------------------------------------------------------------------------------------------- */

/* Writes row `i` of a USER_COLUMNS result as {"id":..,"name":..,"email":..,"created_at":..}. */
static void gen_user(yajl_gen g, const PGresult *res, int i)
{
    yajl_gen_map_open(g);
    hy_json_str(g, "id");
    yajl_gen_number(g, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
    hy_json_kv_str(g, "name", PQgetvalue(res, i, 1));
    hy_json_kv_str(g, "email", PQgetvalue(res, i, 2));
    hy_json_kv_str(g, "created_at", PQgetvalue(res, i, 3));
    yajl_gen_map_close(g);
}

static void respond_user(h2o_req_t *req, int status, const PGresult *res)
{
    yajl_gen g = hy_json_begin();
    gen_user(g, res, 0);
    hy_respond(req, status, hy_type_json, hy_json_finish(g, &req->pool));
}

static void respond_not_found(h2o_req_t *req)
{
    hy_respond_error_dynamic(req, 404, "user_not_found", "no user has this id");
}

/* ---- input validation ------------------------------------------------------------------------------------------------- */

/* Trims ASCII whitespace from both ends of v in place (v is NUL-terminated, in the pool). Returns the start; the new
 * length goes to *len. */
static char *trim(h2o_iovec_t v, size_t *len)
{
    char *s = v.base;
    size_t n = v.len;
    while (n != 0 && isspace((unsigned char)*s))
        ++s, --n;
    while (n != 0 && isspace((unsigned char)s[n - 1]))
        --n;
    s[n] = '\0';
    *len = n;
    return s;
}

/* Validates a request's JSON body for create/update: {"name": string 1-100 characters after trimming, "email": plausible
 * address <= 254 bytes}. On success stores the trimmed values (in req->pool) and returns 0; otherwise answers the request
 * (400/413/415) and returns -1. */
static int read_user_body(h2o_req_t *req, const char **name, const char **email)
{
    if (!hy_req_content_is_json(req)) {
        hy_respond_error_dynamic(req, 415, "unsupported_media_type", "the body must be JSON (Content-Type: application/json)");
        return -1;
    }
    hy_json_field_t f[] = {{"name", HY_JSON_ABSENT, {NULL, 0}}, {"email", HY_JSON_ABSENT, {NULL, 0}}};
    char err[256];
    if (hy_json_parse_fields(&req->pool, req->entity.base, req->entity.base != NULL ? req->entity.len : 0, f, 2, err,
                             sizeof(err)) != 0) {
        hy_respond_error_dynamic(req, 400, "invalid_json", err);
        return -1;
    }
    for (size_t i = 0; i != 2; ++i) {
        if (f[i].kind == HY_JSON_ABSENT) {
            snprintf(err, sizeof(err), "\"%s\" is required", f[i].name);
            hy_respond_error_dynamic(req, 400, "invalid_field", err);
            return -1;
        }
        if (f[i].kind != HY_JSON_STRING) {
            snprintf(err, sizeof(err), "\"%s\" must be a string, not %s", f[i].name, hy_json_kind_name(f[i].kind));
            hy_respond_error_dynamic(req, 400, "invalid_field", err);
            return -1;
        }
    }
    size_t nlen, elen;
    char *n = trim(f[0].value, &nlen), *e = trim(f[1].value, &elen);
    size_t chars = 0;
    for (size_t i = 0; i != nlen; ++i)
        chars += ((unsigned char)n[i] & 0xc0) != 0x80; /* UTF-8 already validated by the parser */
    if (chars == 0 || chars > 100 || memchr(n, '\0', nlen) != NULL) {
        hy_respond_error_dynamic(req, 400, "invalid_field", "\"name\" must be 1 to 100 characters");
        return -1;
    }
    if (!hy_email_plausible(e, elen)) {
        hy_respond_error_dynamic(req, 400, "invalid_field", "\"email\" must be a valid email address of at most 254 characters");
        return -1;
    }
    *name = n;
    *email = e;
    return 0;
}

int hy_email_plausible(const char *e, size_t len)
{
    if (len < 3 || len > 254)
        return 0;
    const char *at = memchr(e, '@', len);
    if (at == NULL || memchr(at + 1, '@', len - (size_t)(at - e) - 1) != NULL)
        return 0;
    size_t local = (size_t)(at - e), domain = len - local - 1;
    if (local == 0 || local > 64 || domain < 3)
        return 0;
    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)e[i];
        if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' || c == '\\' || c == '(' ||
            c == ')' || c == '[' || c == ']')
            return 0;
    }
    const char *d = at + 1;
    if (d[0] == '.' || d[0] == '-' || d[domain - 1] == '.' || d[domain - 1] == '-' || memchr(d, '.', domain) == NULL ||
        e[0] == '.' || e[local - 1] == '.')
        return 0;
    for (size_t i = 0; i + 1 < len; ++i)
        if (e[i] == '.' && e[i + 1] == '.')
            return 0;
    return 1;
}

/* ---- single-statement handlers ---------------------------------------------------------------------------------------- */

typedef struct st_user_req_t {
    h2o_req_t *req; /* the request; valid while the query's callback may run (hy_db_submit_req) */
    const char *id; /* the id as text, for Location */
} user_req_t;

static user_req_t *user_req(h2o_req_t *req, const char *id)
{
    user_req_t *u = h2o_mem_alloc_pool(&req->pool, sizeof(*u));
    u->req = req;
    u->id = id;
    return u;
}

static hy_db_local_t *db_of(h2o_req_t *req)
{
    return hy_thread_db(hy_thread_of(req));
}

static void on_get(void *data, const hy_db_result_t *r)
{
    user_req_t *u = data;
    if (r->status != HY_DB_OK)
        respond_db_error(u->req, r, "users.get");
    else if (PQntuples(r->res) == 0)
        respond_not_found(u->req);
    else
        respond_user(u->req, 200, r->res);
}

int hy_users_get_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    (void)route;
    if (nparams < 1)
        return -1;
    const char *id = h2o_strdup(&req->pool, params[0].value, params[0].len).base;
    const char *values[] = {id};
    hy_db_submit_req(req, db_of(req), &stmt_get, values, 1, on_get, user_req(req, id));
    return 0;
}

static void on_created(void *data, const hy_db_result_t *r)
{
    user_req_t *u = data;
    if (r->status != HY_DB_OK || PQntuples(r->res) != 1) {
        respond_db_error(u->req, r, "users.create");
        return;
    }
    char loc[64];
    int n = snprintf(loc, sizeof(loc), "/api/v1/users/%s", PQgetvalue(r->res, 0, 0));
    h2o_iovec_t v = h2o_strdup(&u->req->pool, loc, (size_t)n);
    h2o_add_header(&u->req->pool, &u->req->res.headers, H2O_TOKEN_LOCATION, NULL, v.base, v.len);
    respond_user(u->req, 201, r->res);
}

int hy_users_create_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    (void)route, (void)params, (void)nparams;
    const char *name, *email;
    if (read_user_body(req, &name, &email) != 0)
        return 0;
    const char *values[] = {name, email};
    hy_db_submit_req(req, db_of(req), &stmt_create, values, 2, on_created, user_req(req, NULL));
    return 0;
}

static void on_updated(void *data, const hy_db_result_t *r)
{
    user_req_t *u = data;
    if (r->status != HY_DB_OK)
        respond_db_error(u->req, r, "users.update");
    else if (PQntuples(r->res) == 0)
        respond_not_found(u->req);
    else
        respond_user(u->req, 200, r->res);
}

int hy_users_update_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    (void)route;
    if (nparams < 1)
        return -1;
    const char *name, *email;
    if (read_user_body(req, &name, &email) != 0)
        return 0;
    const char *id = h2o_strdup(&req->pool, params[0].value, params[0].len).base;
    const char *values[] = {id, name, email};
    hy_db_submit_req(req, db_of(req), &stmt_update, values, 3, on_updated, user_req(req, id));
    return 0;
}

static void on_deleted(void *data, const hy_db_result_t *r)
{
    user_req_t *u = data;
    if (r->status != HY_DB_OK)
        respond_db_error(u->req, r, "users.delete");
    else if (strcmp(PQcmdTuples(r->res), "0") == 0)
        respond_not_found(u->req);
    else
        hy_respond(u->req, 204, h2o_iovec_init(NULL, 0), h2o_iovec_init(NULL, 0));
}

int hy_users_delete_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    (void)route;
    if (nparams < 1)
        return -1;
    const char *id = h2o_strdup(&req->pool, params[0].value, params[0].len).base;
    const char *values[] = {id};
    hy_db_submit_req(req, db_of(req), &stmt_delete, values, 1, on_deleted, user_req(req, id));
    return 0;
}

/* ---- list (keyset pagination) ----------------------------------------------------------------------------------------- */

typedef struct st_list_req_t {
    h2o_req_t *req; /* the request */
    long limit;     /* page size asked for */
} list_req_t;

static void on_listed(void *data, const hy_db_result_t *r)
{
    list_req_t *l = data;
    if (r->status != HY_DB_OK) {
        respond_db_error(l->req, r, "users.list");
        return;
    }
    int n = PQntuples(r->res), shown = n > l->limit ? (int)l->limit : n;
    yajl_gen g = hy_json_begin();
    yajl_gen_map_open(g);
    hy_json_str(g, "users");
    yajl_gen_array_open(g);
    for (int i = 0; i != shown; ++i)
        gen_user(g, r->res, i);
    yajl_gen_array_close(g);
    hy_json_str(g, "next");
    if (n > l->limit)
        hy_json_str(g, PQgetvalue(r->res, shown - 1, 0)); /* the cursor: pass it back as ?after= */
    else
        yajl_gen_null(g);
    yajl_gen_map_close(g);
    hy_respond(l->req, 200, hy_type_json, hy_json_finish(g, &l->req->pool));
}

/* Parses an optional non-negative integer query parameter. Returns 0 (value or default in *out) or -1 (answered 400). */
static int query_int(h2o_req_t *req, const char *name, long min, long max, long def, long *out)
{
    h2o_iovec_t v;
    *out = def;
    if (hy_query_get(req, name, &v) != 0)
        return 0;
    char *end;
    char buf[32];
    if (v.len == 0 || v.len >= sizeof(buf))
        goto Bad;
    memcpy(buf, v.base, v.len);
    buf[v.len] = '\0';
    for (size_t i = 0; i != v.len; ++i)
        if (!isdigit((unsigned char)buf[i]))
            goto Bad;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (errno == ERANGE || x < min || x > max)
        goto Bad;
    *out = (long)x;
    return 0;
Bad : {
    char msg[128];
    snprintf(msg, sizeof(msg), "query parameter \"%s\" must be an integer from %ld to %ld", name, min, max);
    hy_respond_error_dynamic(req, 400, "invalid_parameter", msg);
    return -1;
}
}

int hy_users_list_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    (void)route, (void)params, (void)nparams;
    long limit, after;
    if (query_int(req, "limit", 1, 100, 20, &limit) != 0 || query_int(req, "after", 0, LONG_MAX, 0, &after) != 0)
        return 0;
    list_req_t *l = h2o_mem_alloc_pool(&req->pool, sizeof(*l));
    l->req = req;
    l->limit = limit;
    char a[32], n[32];
    snprintf(a, sizeof(a), "%ld", after);
    snprintf(n, sizeof(n), "%ld", limit + 1);
    const char *values[] = {a, n};
    hy_db_submit_req(req, db_of(req), &stmt_list, values, 2, on_listed, l);
    return 0;
}

/* ---- profile: three queries in flight at once ------------------------------------------------------------------------- */

typedef struct st_profile_req_t {
    h2o_req_t *req;     /* the request */
    int pending;        /* branches not answered yet */
    int failed;         /* a branch failed: the answer was already sent */
    h2o_iovec_t user;   /* rendered {"id":..} of the user, or NULL base when absent */
    h2o_iovec_t orders; /* rendered [..] */
    h2o_iovec_t prefs;  /* raw jsonb text, or NULL base when none */
} profile_req_t;

/* Marks one branch done; on a failure answers 503 at once (the other branches are abandoned when the request is
 * disposed); when all three are in, answers with the combined document. */
static void profile_branch_done(profile_req_t *p, const hy_db_result_t *r, const char *what)
{
    --p->pending;
    if (p->failed)
        return;
    if (r->status != HY_DB_OK) {
        p->failed = 1;
        hy_log("error", hy_req_id(p->req), "database: profile %s failed (status %d): %s", what, (int)r->status, r->message);
        h2o_add_header(&p->req->pool, &p->req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        hy_respond_error_dynamic(p->req, 503, "profile_unavailable", "part of the profile could not be loaded; try again");
        return;
    }
    if (p->pending != 0)
        return;
    if (p->user.base == NULL) {
        respond_not_found(p->req);
        return;
    }
    /* {"user":{...},"orders":[...],"preferences":{...}|null}: the parts were rendered as they arrived */
    h2o_iovec_t parts[7] = {{H2O_STRLIT("{\"user\":")},
                            p->user,
                            {H2O_STRLIT(",\"orders\":")},
                            p->orders,
                            {H2O_STRLIT(",\"preferences\":")},
                            p->prefs.base != NULL ? p->prefs : h2o_iovec_init(H2O_STRLIT("null")),
                            {H2O_STRLIT("}")}};
    h2o_iovec_t body = h2o_concat_list(&p->req->pool, parts, 7);
    hy_respond(p->req, 200, hy_type_json, body);
}

static void on_profile_user(void *data, const hy_db_result_t *r)
{
    profile_req_t *p = data;
    if (r->status == HY_DB_OK && PQntuples(r->res) == 1) {
        yajl_gen g = hy_json_begin();
        gen_user(g, r->res, 0);
        p->user = hy_json_finish(g, &p->req->pool);
    }
    profile_branch_done(p, r, "user");
}

static void on_profile_orders(void *data, const hy_db_result_t *r)
{
    profile_req_t *p = data;
    if (r->status == HY_DB_OK) {
        yajl_gen g = hy_json_begin();
        yajl_gen_array_open(g);
        for (int i = 0, n = PQntuples(r->res); i != n; ++i) {
            yajl_gen_map_open(g);
            hy_json_str(g, "id");
            yajl_gen_number(g, PQgetvalue(r->res, i, 0), (size_t)PQgetlength(r->res, i, 0));
            hy_json_str(g, "total_cents");
            yajl_gen_number(g, PQgetvalue(r->res, i, 1), (size_t)PQgetlength(r->res, i, 1));
            hy_json_kv_str(g, "status", PQgetvalue(r->res, i, 2));
            hy_json_kv_str(g, "created_at", PQgetvalue(r->res, i, 3));
            yajl_gen_map_close(g);
        }
        yajl_gen_array_close(g);
        p->orders = hy_json_finish(g, &p->req->pool);
    }
    profile_branch_done(p, r, "orders");
}

static void on_profile_prefs(void *data, const hy_db_result_t *r)
{
    profile_req_t *p = data;
    if (r->status == HY_DB_OK && PQntuples(r->res) == 1 && !PQgetisnull(r->res, 0, 0))
        p->prefs = h2o_strdup(&p->req->pool, PQgetvalue(r->res, 0, 0), (size_t)PQgetlength(r->res, 0, 0)); /* jsonb text is JSON */
    profile_branch_done(p, r, "preferences");
}

int hy_users_profile_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    (void)route;
    if (nparams < 1)
        return -1;
    profile_req_t *p = h2o_mem_alloc_pool(&req->pool, sizeof(*p));
    memset(p, 0, sizeof(*p));
    p->req = req;
    p->pending = 3;
    const char *id = h2o_strdup(&req->pool, params[0].value, params[0].len).base;
    const char *values[] = {id};
    hy_db_local_t *db = db_of(req);
    hy_db_submit_req(req, db, &stmt_get, values, 1, on_profile_user, p);
    hy_db_submit_req(req, db, &stmt_orders, values, 1, on_profile_orders, p);
    hy_db_submit_req(req, db, &stmt_prefs, values, 1, on_profile_prefs, p);
    return 0;
}

/* ---- readiness -------------------------------------------------------------------------------------------------------- */

int hy_ready_on_req(h2o_req_t *req, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    (void)route, (void)params, (void)nparams;
    static const h2o_iovec_t ready = {H2O_STRLIT("{\"status\":\"ready\"}")};
    static const h2o_iovec_t draining = {H2O_STRLIT("{\"status\":\"draining\"}")};
    static const h2o_iovec_t no_db = {H2O_STRLIT("{\"status\":\"database_unavailable\"}")};
    if (hy_server_draining())
        hy_respond(req, 503, hy_type_json, draining);
    else if (!hy_server_db_ready())
        hy_respond(req, 503, hy_type_json, no_db);
    else
        hy_respond(req, 200, hy_type_json, ready);
    return 0;
}
