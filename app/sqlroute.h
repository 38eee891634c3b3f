/* sqlroute.h: the `sql` route kind: a parameterised query declared in YAML and answered as JSON. The model, the
 * parameter-spec and value checks (pure, unit-tested), the column-to-JSON conversions, and the validation of the
 * queries against the database at start-up and on reload. */
#ifndef HY_SQLROUTE_H
#define HY_SQLROUTE_H

#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "db.h"

typedef enum en_hy_sql_source_t {
    HY_SQL_FROM_PATH = 0, /* `path.NAME`: a `{NAME}` parameter of the route's template */
    HY_SQL_FROM_QUERY,    /* `query.NAME`: a query-string parameter (percent-decoded) */
    HY_SQL_FROM_BODY      /* `body.NAME`: a top-level member of the JSON request body */
} hy_sql_source_t;

typedef enum en_hy_sql_type_t {
    HY_SQL_INT = 0,     /* a 64-bit integer; bound as int8 */
    HY_SQL_TEXT,        /* UTF-8 text without NUL; bound as text */
    HY_SQL_BOOL,        /* true/false (query and path also 1/0); bound as bool */
    HY_SQL_UUID,        /* 8-4-4-4-12 hex digits; bound as uuid */
    HY_SQL_TIMESTAMPTZ, /* RFC 3339 with a zone (2024-05-01T12:00:00Z); bound as timestamptz */
    HY_SQL_JSON,        /* any JSON value (in a body: the member's value as written); bound as jsonb */
    HY_SQL_NTYPES
} hy_sql_type_t;

typedef struct st_hy_sql_param_t {
    hy_sql_source_t source; /* where the value comes from */
    char *name;             /* its name there */
    hy_sql_type_t type;     /* its type */
    char *def;              /* the default as bound (already checked), or NULL: required */
    int optional;           /* `?`: when absent (or JSON null) the parameter is SQL NULL */
    int has_min, has_max;   /* bounds given */
    int64_t min, max;       /* int: the value's bounds; text: the length's, in characters */
    hy_pos_t pos;           /* where the spec is written */
} hy_sql_param_t;

typedef enum en_hy_sql_result_t {
    HY_SQL_RESULT_ONE = 0, /* the first row as an object; 404 when none */
    HY_SQL_RESULT_MANY,    /* an array of objects, at most max_rows */
    HY_SQL_RESULT_NONE     /* no body: 204 */
} hy_sql_result_t;

typedef struct st_hy_sql_error_t {
    char sqlstate[6]; /* a SQLSTATE ("23505") or a class ("23"), NUL-terminated */
    int status;       /* the HTTP status it is answered with */
    char *error;      /* the body's "error" code */
    char *message;    /* the body's "message", or NULL for a generic one */
} hy_sql_error_t;

typedef struct st_hy_sql_t {
    char *query;                    /* the SQL, $1..$n bound to params in order */
    hy_pos_t query_pos;             /* where the query is written (validation errors point here) */
    hy_sql_param_t *params;         /* the parameters, in $n order */
    size_t nparams;                 /* number of them */
    hy_sql_result_t result;         /* one / many / none */
    uint64_t max_rows;              /* `many`: rows rendered at most (default 1000) */
    uint64_t status;                /* success status (default 200; 204 for none) */
    int idempotent;                 /* retried once on a lost connection (default: the query starts with SELECT) */
    hy_sql_error_t *errors;         /* error_map, in file order */
    size_t nerrors;                 /* number of entries */
    int has_body_params;            /* some parameter comes from the body */
    unsigned *param_types;          /* the parameters' type OIDs */
    char stmt_name[32];             /* "hy_sql_" + a hash of the query and the types */
    char *label;                    /* the metrics label: "sql:" + the route's first method + its path */
    hy_db_stmt_t stmt;              /* the statement (points into this struct) */
    const hy_db_stmt_t *registered; /* the pool's copy once the server registered it, else NULL */
} hy_sql_t;

/* ---- configuration (pure) ------------------------------------------------------------------------------------------- */

/* Parses a parameter spec: SOURCE.NAME[:TYPE][(MIN..MAX)][?][=DEFAULT], e.g. "path.id", "query.limit:int(1..100)=20",
 * "body.nickname:text(..40)?". `path_type` is the type a path parameter gets when none is written (from the template:
 * int for {id:int}), or -1 when the route has no such parameter (an error). Fills *out (strings malloc'ed) and returns
 * 0, or -1 with a one-line reason in err. */
int hy_sql_param_parse(const char *spec, int (*path_type)(void *ctx, const char *name), void *ctx, hy_sql_param_t *out, char *err,
                       size_t errlen);
void hy_sql_param_clear(hy_sql_param_t *p);

/* Finds a SQLSTATE by condition name ("unique_violation" -> "23505"); NULL when unknown. */
const char *hy_sql_condition_code(const char *name);

/* The SQL type name and OID of a parameter type ("int" / 20). */
const char *hy_sql_type_name(hy_sql_type_t t);
unsigned hy_sql_type_oid(hy_sql_type_t t);

/* 1 when the query's first keyword is SELECT (comments and parentheses skipped): safe to retry by default. */
int hy_sql_is_select(const char *query);

/* The highest $n the query uses outside literals, quoted identifiers and comments (0 when none). */
int hy_sql_max_placeholder(const char *query);

/* Fills the derived members (param_types, stmt_name, stmt) once the rest is parsed; `label` names the statement in
 * metrics and logs ("sql:GET /api/v1/users/{id:int}"). */
void hy_sql_finish(hy_sql_t *sql, const char *label);

void hy_sql_free(hy_sql_t *sql);

/* ---- values (pure) -------------------------------------------------------------------------------------------------- */

/* Checks a textual value for parameter `p` (from the path, the query string, a default, or a JSON string / number /
 * boolean's text) and writes what is bound into out (outsize >= len + 2). Returns 0, or -1 with what is wrong in err
 * ("must be an integer from 1 to 100"). */
int hy_sql_value_check(const hy_sql_param_t *p, const char *v, size_t len, char *out, size_t outsize, char *err, size_t errlen);

/* PostgreSQL's ISO timestamptz text ("2024-05-01 12:00:00.5+00", "...+05:30") as RFC 3339 with microseconds
 * ("2024-05-01T12:00:00.500000Z", "...+05:30"); a timestamp without a zone gets no zone; anything else (infinity, BC
 * dates) is copied as it is. Returns the length written (out holds len + 12). */
size_t hy_sql_rfc3339(const char *v, size_t len, char *out);

/* bytea hex output ("\\x0102ff") as standard base64 into out (holds (len/2 + 2) / 3 * 4 + 1). Returns the length, or
 * (size_t)-1 when v is not hex output. */
size_t hy_sql_bytea_base64(const char *v, size_t len, char *out);

/* ---- the database (blocking; start-up and reload only) --------------------------------------------------------------- */

/* Prepares every `sql` route's query on one connection to the configured database (and checks the parameter count and
 * that `one`/`many` queries return rows). Errors go to diags as "FILE:LINE:COL: routes[i].sql.query: ..." with the
 * server's message. Returns 0 when all prepare (or there is none), -1 when some do not, 1 when the database could not be
 * reached (a reason in why; nothing was checked). */
int hy_sql_validate(const hy_config_t *config, hy_diags_t *diags, char *why, size_t whylen);

#endif
