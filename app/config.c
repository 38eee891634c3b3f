/* config.c: the configuration DSL: a table of directives turns the YAML node tree into the typed hy_config_t, then the
 * environment overrides, the TLS file checks and the cross-checks run; also the summary that `hydrant check` prints. */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <strings.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include "alloc.h"
#include "chars.h"
#include "config.h"
#include "sqlroute.h"

/* ---- limits and defaults --------------------------------------------------------------------------------------------- */

#define CONFIG_MAX_FILE_SIZE (4u << 20)      /* a larger config file is refused */
#define MAX_THREADS 256                      /* `threads` upper bound (and cap of `auto`) */
#define MAX_CONNECTIONS 1000000              /* `limits.max_connections` upper bound */
#define MAX_REQUEST_BODY (UINT64_C(1) << 30) /* `limits.max_request_body` upper bound (1GiB) */
#define LIBH2O_MAX_STREAMS 100               /* libh2o 2.2.5 always advertises SETTINGS_MAX_CONCURRENT_STREAMS=100 */
#define DEFAULT_CONTENT_TYPE "text/plain; charset=utf-8"

/* ---- parse state ----------------------------------------------------------------------------------------------------- */

/* Where a directive may appear: one bit per kind of mapping. */
enum {
    CTX_ROOT = 1u << 0,        /* the top level */
    CTX_SERVER = 1u << 1,      /* server */
    CTX_LISTENER = 1u << 2,    /* server.listen[] */
    CTX_TLS = 1u << 3,         /* server.listen[].tls */
    CTX_TIMEOUTS = 1u << 4,    /* server.timeouts */
    CTX_LIMITS = 1u << 5,      /* server.limits */
    CTX_HTTP2 = 1u << 6,       /* server.limits.http2 */
    CTX_ROUTE = 1u << 7,       /* routes[] */
    CTX_STATIC = 1u << 8,      /* routes[].static */
    CTX_DATABASE = 1u << 9,    /* database */
    CTX_POOL = 1u << 10,       /* database.pool */
    CTX_ADMIN = 1u << 11,      /* server.admin */
    CTX_CLIENT_IP = 1u << 12,  /* client_ip */
    CTX_ACCESS_LOG = 1u << 13, /* access_log */
    CTX_METRICS = 1u << 14,    /* metrics */
    CTX_ADMISSION = 1u << 15,  /* admission */
    CTX_SQL = 1u << 16,        /* routes[].sql */
    CTX_PROXY = 1u << 17,      /* routes[].proxy */
};

/* The timeouts that an environment variable overrides, by slot (0: none). */
enum { ENV_NONE = 0, ENV_READ, ENV_WRITE, ENV_IDLE, ENV_NSLOTS };

#define KEYPATH_MAX 512 /* longest key path kept for messages (longer ones are cut) */
#define NQUOTES 4       /* quoted values usable in one message */

typedef struct st_listener_state_t {
    hy_listener_t *listener;     /* the listener being filled (in config->listeners) */
    const hy_ynode_t *port_node; /* value node of `port`, or NULL */
    int has_tls;                 /* a `tls` key was given (so it is not a plain listener) */
    int port_ok;                 /* `port` parsed into listener->port */
} listener_state_t;

typedef struct st_tls_state_t {
    hy_tls_t *tls;               /* the settings being filled */
    const hy_ynode_t *cert_node; /* value node of `certificate`, or NULL */
    const hy_ynode_t *key_node;  /* value node of `key`, or NULL */
    char *cert_written;          /* `certificate` as written (after interpolation), for messages */
    char *key_written;           /* `key` as written (after interpolation), for messages */
} tls_state_t;

typedef struct st_route_state_t {
    hy_route_t *route;            /* the route being filled (in config->routes) */
    const hy_ynode_t *path_node;  /* value node of `path`, or NULL */
    const hy_ynode_t *sql_params; /* value node of `sql.params`, or NULL (read once the path is known) */
    int path_ok;                  /* `path` parsed and is a valid template */
} route_state_t;

/* The database strings, their keys and the environment variables that override them. */
static const struct {
    const char *key; /* under database */
    const char *env; /* the overriding variable */
    size_t offset;   /* char * field in hy_config_t */
} db_fields[] = {
    {"url", "DATABASE_URL", offsetof(hy_config_t, database.url)},
    {"host", "DB_HOST", offsetof(hy_config_t, database.host)},
    {"port", "DB_PORT", offsetof(hy_config_t, database.port)},
    {"user", "DB_USER", offsetof(hy_config_t, database.user)},
    {"password", "DB_PASSWORD", offsetof(hy_config_t, database.password)},
    {"name", "DB_NAME", offsetof(hy_config_t, database.name)},
    {"sslmode", "DB_SSLMODE", offsetof(hy_config_t, database.sslmode)},
};
#define DB_NFIELDS (sizeof(db_fields) / sizeof(db_fields[0]))

typedef struct st_parse_t {
    const char *file;                            /* the config path as given, for messages */
    char *dir;                                   /* its directory (with a trailing '/'), or "" */
    hy_diags_t *diags;                           /* where messages go */
    size_t nerrors;                              /* messages added by this parse */
    hy_config_t *config;                         /* the model being filled */
    char keypath[KEYPATH_MAX];                   /* dotted path of the node being parsed */
    size_t keylen;                               /* strlen(keypath) */
    char quoted[NQUOTES][256];                   /* buffers for quoted values in one message */
    unsigned nquoted;                            /* next buffer to use */
    const hy_ynode_t *server_key;                /* key node of `server`, or NULL */
    const hy_ynode_t *listen_node;               /* value node of `server.listen`, or NULL */
    listener_state_t *listeners;                 /* one per config->listeners */
    const hy_ynode_t *timeout_nodes[ENV_NSLOTS]; /* value nodes of timeouts.read/write/idle by ENV_* slot, or NULL */
    unsigned char *route_added;                  /* per route: 1 once added to the router */
    hy_pos_t *handler_pos;                       /* per route: position of its `handler` value */
    const hy_ynode_t *database_key;              /* key node of `database`, or NULL */
    const hy_ynode_t *db_nodes[DB_NFIELDS];      /* value nodes of the database strings, or NULL */
    unsigned char db_from_env[DB_NFIELDS];       /* 1 when the value came from the environment */
    const hy_ynode_t *log_exclude;               /* value node of access_log.exclude, or NULL */
    unsigned char *route_mw_set;                 /* per route: 1 when it has its own `middleware` */
    listener_state_t admin_state;                /* server.admin while parsed */
} parse_t;

/* ---- messages -------------------------------------------------------------------------------------------------------- */

/* Adds "FILE:LINE:COL: <keypath>: <message>" at `pos` and counts the error. */
static void verror(parse_t *p, hy_pos_t pos, const char *fmt, va_list ap)
{
    char msg[1024];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    hy_diags_add(p->diags, p->file, pos.line, pos.col, p->keypath, "%s", msg);
    ++p->nerrors;
    p->nquoted = 0;
}

/* Reports an error at node `n` under the current key path. */
__attribute__((format(printf, 3, 4))) static void error_at(parse_t *p, const hy_ynode_t *n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verror(p, n->pos, fmt, ap);
    va_end(ap);
}

/* As error_at, at an explicit position. */
__attribute__((format(printf, 3, 4))) static void error_pos(parse_t *p, hy_pos_t pos, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verror(p, pos, fmt, ap);
    va_end(ap);
}

/* Returns 1 when the current key path names a secret (its value must never appear in a message). */
static int keypath_is_secret(const parse_t *p)
{
    char lower[KEYPATH_MAX];
    size_t i;

    for (i = 0; i != p->keylen; ++i)
        lower[i] = (char)((p->keypath[i] >= 'A' && p->keypath[i] <= 'Z') ? p->keypath[i] - 'A' + 'a' : p->keypath[i]);
    lower[i] = '\0';
    return strstr(lower, "password") != NULL || strstr(lower, "secret") != NULL;
}

/* Quotes a value for a message, or gives "(hidden)" under a secret key. Valid until the next message. */
static const char *q(parse_t *p, const char *s, size_t len)
{
    char *buf = p->quoted[p->nquoted++ % NQUOTES];
    if (keypath_is_secret(p)) {
        snprintf(buf, sizeof(p->quoted[0]), "(hidden)");
        return buf;
    }
    return hy_quote(s, len, buf, sizeof(p->quoted[0]));
}

static const char *qs(parse_t *p, const char *s)
{
    return q(p, s, strlen(s));
}

/* Quotes a key's name (never secret: only values are). Valid until the next message. */
static const char *qk(parse_t *p, const hy_ynode_t *key)
{
    return hy_quote(key->value, key->len, p->quoted[p->nquoted++ % NQUOTES], sizeof(p->quoted[0]));
}

/* ---- key path -------------------------------------------------------------------------------------------------------- */

/* Appends ".name" (or "name" at the top) to the key path; control bytes become '?'. Returns the length to restore. */
static size_t push_key(parse_t *p, const char *name)
{
    size_t saved = p->keylen;
    if (p->keylen != 0 && p->keylen + 1 < KEYPATH_MAX)
        p->keypath[p->keylen++] = '.';
    for (; *name != '\0' && p->keylen + 1 < KEYPATH_MAX; ++name)
        p->keypath[p->keylen++] = (unsigned char)*name < 0x20 || *name == 0x7f ? '?' : *name;
    p->keypath[p->keylen] = '\0';
    return saved;
}

/* Appends "[index]" to the key path. Returns the length to restore. */
static size_t push_index(parse_t *p, size_t index)
{
    size_t saved = p->keylen;
    int n = snprintf(p->keypath + p->keylen, KEYPATH_MAX - p->keylen, "[%zu]", index);
    if (n > 0)
        p->keylen = p->keylen + (size_t)n < KEYPATH_MAX ? p->keylen + (size_t)n : KEYPATH_MAX - 1;
    return saved;
}

static void pop_key(parse_t *p, size_t saved)
{
    p->keylen = saved;
    p->keypath[saved] = '\0';
}

/* ---- node kinds and scalar values ------------------------------------------------------------------------------------ */

static const char *kind_name(hy_ynode_kind_t kind)
{
    return kind == HY_YNODE_MAPPING ? "a mapping" : kind == HY_YNODE_SEQUENCE ? "a sequence" : "a scalar";
}

static const char *got_name(const hy_ynode_t *n)
{
    return hy_ynode_is_null(n) ? "an empty value" : kind_name(n->kind);
}

/* Checks that `n` is of `kind` (a scalar must not be empty/null). `what` describes what is expected ("an integer");
 * NULL uses the kind's name. Returns 0, or -1 after reporting "expected X, got Y". */
static int expect_kind(parse_t *p, const hy_ynode_t *n, hy_ynode_kind_t kind, const char *what)
{
    if (n->kind == kind && !(kind == HY_YNODE_SCALAR && hy_ynode_is_null(n)))
        return 0;
    error_at(p, n, "expected %s, got %s", what != NULL ? what : kind_name(kind), got_name(n));
    return -1;
}

/* Returns the interpolated value of scalar `n` (malloc'ed, owned by the caller; length in *len when not NULL), or NULL
 * after reporting. Unless allow_nul, a value containing a NUL byte is an error. */
static char *scalar_value(parse_t *p, const hy_ynode_t *n, size_t *len, int allow_nul)
{
    char err[256], *out;
    size_t outlen;

    if (hy_interpolate(n->value, n->len, &out, &outlen, err, sizeof(err)) != 0) {
        error_at(p, n, "%s", err);
        return NULL;
    }
    if (!allow_nul && memchr(out, '\0', outlen) != NULL) {
        error_at(p, n, "must not contain NUL bytes");
        free(out);
        return NULL;
    }
    if (len != NULL)
        *len = outlen;
    return out;
}

/* Parses a decimal integer (digits only). Returns 0 or -1. */
static int parse_uint(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; ++s) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* Reads scalar `n` as an integer in [min, max]. Returns 0, or -1 after reporting. */
static int get_uint(parse_t *p, const hy_ynode_t *n, uint64_t min, uint64_t max, uint64_t *out)
{
    char *s = scalar_value(p, n, NULL, 0);
    uint64_t v;
    int ret = -1;

    if (s == NULL)
        return -1;
    if (parse_uint(s, &v) != 0) {
        error_at(p, n, "expected an integer, got %s", qs(p, s));
    } else if (v < min || v > max) {
        error_at(p, n, "%ju is out of range (%ju-%ju)", (uintmax_t)v, (uintmax_t)min, (uintmax_t)max);
    } else {
        *out = v;
        ret = 0;
    }
    free(s);
    return ret;
}

/* Reads scalar `n` as a duration; zero is refused unless allow_zero. Returns 0, or -1 after reporting. */
static int get_duration(parse_t *p, const hy_ynode_t *n, int allow_zero, uint64_t *out)
{
    char *s = scalar_value(p, n, NULL, 0);
    uint64_t v;
    int ret = -1;

    if (s == NULL)
        return -1;
    if (hy_parse_duration(s, &v) != 0) {
        error_at(p, n, "expected a duration (e.g. 250ms, 5s, 1m30s), got %s", qs(p, s));
    } else if (v == 0 && !allow_zero) {
        error_at(p, n, "must be greater than 0");
    } else {
        *out = v;
        ret = 0;
    }
    free(s);
    return ret;
}

/* Reads scalar `n` as a size in [min, max] bytes. Returns 0, or -1 after reporting. */
static int get_size(parse_t *p, const hy_ynode_t *n, uint64_t min, uint64_t max, uint64_t *out)
{
    char *s = scalar_value(p, n, NULL, 0), a[32], b[32];
    uint64_t v;
    int ret = -1;

    if (s == NULL)
        return -1;
    if (hy_parse_size(s, &v) != 0) {
        error_at(p, n, "expected a size (e.g. 512, 64KiB, 1MiB), got %s", qs(p, s));
    } else if (v < min || v > max) {
        error_at(p, n, "%s is out of range (%s-%s)", s, hy_format_size(min, a, sizeof(a)), hy_format_size(max, b, sizeof(b)));
    } else {
        *out = v;
        ret = 0;
    }
    free(s);
    return ret;
}

/* Replaces *field (freeing the old value) with the string value of scalar `n`. Returns 0, or -1 after reporting. */
static int get_string(parse_t *p, const hy_ynode_t *n, char **field)
{
    char *s = scalar_value(p, n, NULL, 0);
    if (s == NULL)
        return -1;
    free(*field);
    *field = s;
    return 0;
}

/* ---- the directive table --------------------------------------------------------------------------------------------- */

typedef struct st_directive_t directive_t;

/* Stores the value of one key into `target` (whose type depends on the mapping: see each table entry). `key` is the
 * key node, `value` the value node, already checked to be of the directive's kind. Returns 0, or -1 after reporting. */
typedef int (*on_directive_cb)(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target);

enum {
    F_REQUIRED = 1u << 0, /* missing key is an error */
    F_NONZERO = 1u << 1,  /* a duration of 0 is an error */
};

struct st_directive_t {
    const char *name;         /* the key as written in YAML */
    unsigned where;           /* CTX_* bit of the mapping it belongs in */
    hy_ynode_kind_t kind;     /* expected kind of the value node */
    const char *what;         /* what the value is, for "expected X, got Y" (NULL: the kind's name) */
    unsigned flags;           /* F_* */
    const char *alias_of;     /* the key this one is another name for, or NULL */
    on_directive_cb on_parse; /* stores the value */
    size_t offset;            /* for the generic callbacks: offset of the uint64_t field in hy_config_t */
    uint64_t min, max;        /* for the generic callbacks: accepted range */
    int env_slot;             /* ENV_* slot of the variable that overrides this key (ENV_NONE: none) */
    unsigned opens;           /* for on_submapping: the CTX_* of the mapping this key opens */
};

static int on_server(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_routes(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_listen(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_threads(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_submapping(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_duration(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_uint64(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_size(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_max_streams(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_listener_host(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_listener_port(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_listener_tls(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_tls_file(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_tls_min_version(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_route_path(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_route_methods(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_route_handler(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_route_static(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_route_timeout(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_route_uint(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_route_size(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_static_status(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_static_content_type(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_static_body(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_static_headers(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_database(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_middleware(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_route_middleware(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_admin(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_trusted_proxies(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_log_path(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_log_sample(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_log_exclude(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_buckets(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_db_string(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_route_sql(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_sql_query(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_sql_params(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_sql_result(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_sql_uint(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_sql_idempotent(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_sql_error_map(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_route_proxy(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_proxy_upstream(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);
static int on_proxy_host(parse_t *, const directive_t *, const hy_ynode_t *, const hy_ynode_t *, void *);

#define OFF(field) offsetof(hy_config_t, field)
#define DURATION "a duration"
#define STRING "a string"
#define INTEGER "an integer"

/* Every key of the DSL. The target passed to on_parse is: hy_config_t for ROOT, SERVER, TIMEOUTS, LIMITS and HTTP2;
 * listener_state_t for LISTENER; tls_state_t for TLS; route_state_t for ROUTE; hy_static_t for STATIC. To add a
 * directive, add a row (and a CTX_* bit and a row for its parent when it opens a new mapping). */
/* clang-format off */
static const directive_t directives[] = {
    /* top level */
    {.name = "server", .where = CTX_ROOT, .kind = HY_YNODE_MAPPING, .flags = F_REQUIRED, .on_parse = on_server},
    {.name = "routes", .where = CTX_ROOT, .kind = HY_YNODE_SEQUENCE, .flags = F_REQUIRED, .on_parse = on_routes},
    /* server */
    {.name = "listen", .where = CTX_SERVER, .kind = HY_YNODE_SEQUENCE, .flags = F_REQUIRED, .on_parse = on_listen},
    {.name = "threads", .where = CTX_SERVER, .kind = HY_YNODE_SCALAR, .what = "\"auto\" or an integer",
        .on_parse = on_threads, .min = 1, .max = MAX_THREADS},
    {.name = "timeouts", .where = CTX_SERVER, .kind = HY_YNODE_MAPPING, .on_parse = on_submapping, .opens = CTX_TIMEOUTS},
    {.name = "limits", .where = CTX_SERVER, .kind = HY_YNODE_MAPPING, .on_parse = on_submapping, .opens = CTX_LIMITS},
    {.name = "drain_delay", .where = CTX_SERVER, .kind = HY_YNODE_SCALAR, .what = DURATION,
        .on_parse = on_duration, .offset = OFF(timeouts.drain_delay_ms)},
    /* server.listen[] */
    {.name = "host", .where = CTX_LISTENER, .kind = HY_YNODE_SCALAR, .what = STRING, .flags = F_REQUIRED,
        .on_parse = on_listener_host},
    {.name = "port", .where = CTX_LISTENER, .kind = HY_YNODE_SCALAR, .what = INTEGER, .flags = F_REQUIRED,
        .on_parse = on_listener_port, .min = 1, .max = 65535},
    {.name = "tls", .where = CTX_LISTENER, .kind = HY_YNODE_MAPPING, .on_parse = on_listener_tls},
    /* server.listen[].tls */
    {.name = "certificate", .where = CTX_TLS, .kind = HY_YNODE_SCALAR, .what = STRING, .flags = F_REQUIRED,
        .on_parse = on_tls_file},
    {.name = "key", .where = CTX_TLS, .kind = HY_YNODE_SCALAR, .what = STRING, .flags = F_REQUIRED, .on_parse = on_tls_file},
    {.name = "min_version", .where = CTX_TLS, .kind = HY_YNODE_SCALAR, .what = "TLSv1.2 or TLSv1.3",
        .on_parse = on_tls_min_version},
    /* server.timeouts */
    {.name = "handshake", .where = CTX_TIMEOUTS, .kind = HY_YNODE_SCALAR, .what = DURATION, .flags = F_NONZERO,
        .on_parse = on_duration, .offset = OFF(timeouts.handshake_ms)},
    {.name = "read", .where = CTX_TIMEOUTS, .kind = HY_YNODE_SCALAR, .what = DURATION, .flags = F_NONZERO,
        .on_parse = on_duration, .offset = OFF(timeouts.read_ms), .env_slot = ENV_READ},
    {.name = "request_header", .where = CTX_TIMEOUTS, .kind = HY_YNODE_SCALAR, .what = DURATION, .flags = F_NONZERO,
        .alias_of = "read", .on_parse = on_duration, .offset = OFF(timeouts.read_ms), .env_slot = ENV_READ},
    {.name = "write", .where = CTX_TIMEOUTS, .kind = HY_YNODE_SCALAR, .what = DURATION, .flags = F_NONZERO,
        .on_parse = on_duration, .offset = OFF(timeouts.write_ms), .env_slot = ENV_WRITE},
    {.name = "idle", .where = CTX_TIMEOUTS, .kind = HY_YNODE_SCALAR, .what = DURATION, .flags = F_NONZERO,
        .on_parse = on_duration, .offset = OFF(timeouts.idle_ms), .env_slot = ENV_IDLE},
    {.name = "request", .where = CTX_TIMEOUTS, .kind = HY_YNODE_SCALAR, .what = DURATION,
        .on_parse = on_duration, .offset = OFF(timeouts.request_ms)},
    {.name = "shutdown", .where = CTX_TIMEOUTS, .kind = HY_YNODE_SCALAR, .what = DURATION,
        .on_parse = on_duration, .offset = OFF(timeouts.shutdown_ms)},
    /* server.limits */
    {.name = "max_connections", .where = CTX_LIMITS, .kind = HY_YNODE_SCALAR, .what = INTEGER,
        .on_parse = on_uint64, .offset = OFF(limits.max_connections), .min = 1, .max = MAX_CONNECTIONS},
    {.name = "max_active_requests", .where = CTX_LIMITS, .kind = HY_YNODE_SCALAR, .what = INTEGER,
        .on_parse = on_uint64, .offset = OFF(limits.max_active_requests), .min = 0, .max = 10000000},
    {.name = "max_request_body", .where = CTX_LIMITS, .kind = HY_YNODE_SCALAR, .what = "a size",
        .on_parse = on_size, .offset = OFF(limits.max_request_body), .min = 1, .max = MAX_REQUEST_BODY},
    {.name = "http2", .where = CTX_LIMITS, .kind = HY_YNODE_MAPPING, .on_parse = on_submapping, .opens = CTX_HTTP2},
    /* server.limits.http2 */
    {.name = "max_concurrent_streams", .where = CTX_HTTP2, .kind = HY_YNODE_SCALAR, .what = INTEGER,
        .on_parse = on_max_streams, .min = 1, .max = LIBH2O_MAX_STREAMS},
    {.name = "max_resets", .where = CTX_HTTP2, .kind = HY_YNODE_SCALAR, .what = INTEGER,
        .on_parse = on_uint64, .offset = OFF(limits.max_resets), .min = 1, .max = 1000000},
    {.name = "abuse_cooldown", .where = CTX_HTTP2, .kind = HY_YNODE_SCALAR, .what = DURATION,
        .on_parse = on_duration, .offset = OFF(limits.abuse_cooldown_ms)},
    {.name = "max_headers", .where = CTX_LIMITS, .kind = HY_YNODE_SCALAR, .what = INTEGER,
        .on_parse = on_uint64, .offset = OFF(limits.max_headers), .min = 1, .max = 10000},
    {.name = "max_header_bytes", .where = CTX_LIMITS, .kind = HY_YNODE_SCALAR, .what = "a size",
        .on_parse = on_size, .offset = OFF(limits.max_header_bytes), .min = 256, .max = 1u << 20},
    /* routes[] */
    {.name = "path", .where = CTX_ROUTE, .kind = HY_YNODE_SCALAR, .what = STRING, .flags = F_REQUIRED,
        .on_parse = on_route_path},
    {.name = "methods", .where = CTX_ROUTE, .kind = HY_YNODE_SEQUENCE, .on_parse = on_route_methods},
    {.name = "handler", .where = CTX_ROUTE, .kind = HY_YNODE_SCALAR, .what = STRING, .on_parse = on_route_handler},
    {.name = "static", .where = CTX_ROUTE, .kind = HY_YNODE_MAPPING, .on_parse = on_route_static},
    {.name = "sql", .where = CTX_ROUTE, .kind = HY_YNODE_MAPPING, .on_parse = on_route_sql},
    {.name = "timeout", .where = CTX_ROUTE, .kind = HY_YNODE_SCALAR, .what = DURATION, .flags = F_NONZERO,
        .on_parse = on_route_timeout},
    {.name = "max_in_flight", .where = CTX_ROUTE, .kind = HY_YNODE_SCALAR, .what = INTEGER, .on_parse = on_route_uint,
        .offset = offsetof(hy_route_t, max_in_flight), .min = 1, .max = 10000000},
    {.name = "max_request_body", .where = CTX_ROUTE, .kind = HY_YNODE_SCALAR, .what = "a size", .on_parse = on_route_size,
        .offset = offsetof(hy_route_t, max_request_body), .min = 1, .max = MAX_REQUEST_BODY},
    /* routes[].static */
    {.name = "status", .where = CTX_STATIC, .kind = HY_YNODE_SCALAR, .what = INTEGER, .on_parse = on_static_status,
        .min = 200, .max = 599},
    {.name = "content_type", .where = CTX_STATIC, .kind = HY_YNODE_SCALAR, .what = STRING, .on_parse = on_static_content_type},
    {.name = "body", .where = CTX_STATIC, .kind = HY_YNODE_SCALAR, .what = STRING, .on_parse = on_static_body},
    {.name = "headers", .where = CTX_STATIC, .kind = HY_YNODE_MAPPING, .on_parse = on_static_headers},
    /* routes[].sql */
    {.name = "query", .where = CTX_SQL, .kind = HY_YNODE_SCALAR, .what = STRING, .flags = F_REQUIRED, .on_parse = on_sql_query},
    {.name = "params", .where = CTX_SQL, .kind = HY_YNODE_SEQUENCE, .on_parse = on_sql_params},
    {.name = "result", .where = CTX_SQL, .kind = HY_YNODE_SCALAR, .what = "one, many or none", .on_parse = on_sql_result},
    {.name = "max_rows", .where = CTX_SQL, .kind = HY_YNODE_SCALAR, .what = INTEGER, .on_parse = on_sql_uint,
        .offset = offsetof(hy_sql_t, max_rows), .min = 1, .max = 100000},
    {.name = "status", .where = CTX_SQL, .kind = HY_YNODE_SCALAR, .what = INTEGER, .on_parse = on_sql_uint,
        .offset = offsetof(hy_sql_t, status), .min = 200, .max = 299},
    {.name = "idempotent", .where = CTX_SQL, .kind = HY_YNODE_SCALAR, .what = "true or false", .on_parse = on_sql_idempotent},
    {.name = "error_map", .where = CTX_SQL, .kind = HY_YNODE_MAPPING, .on_parse = on_sql_error_map},
    /* routes[].proxy (target: hy_proxy_t) */
    {.name = "proxy", .where = CTX_ROUTE, .kind = HY_YNODE_MAPPING, .on_parse = on_route_proxy},
    {.name = "upstream", .where = CTX_PROXY, .kind = HY_YNODE_SCALAR, .what = "an http://host:port[/prefix] URL",
        .flags = F_REQUIRED, .on_parse = on_proxy_upstream},
    {.name = "timeout", .where = CTX_PROXY, .kind = HY_YNODE_SCALAR, .what = DURATION, .flags = F_NONZERO,
        .on_parse = on_duration, .offset = offsetof(hy_proxy_t, timeout_ms)},
    {.name = "connect_timeout", .where = CTX_PROXY, .kind = HY_YNODE_SCALAR, .what = DURATION, .flags = F_NONZERO,
        .on_parse = on_duration, .offset = offsetof(hy_proxy_t, connect_timeout_ms)},
    {.name = "keepalive", .where = CTX_PROXY, .kind = HY_YNODE_SCALAR, .what = INTEGER, .on_parse = on_uint64,
        .offset = offsetof(hy_proxy_t, keepalive), .min = 0, .max = 10000},
    {.name = "idle_timeout", .where = CTX_PROXY, .kind = HY_YNODE_SCALAR, .what = DURATION, .flags = F_NONZERO,
        .on_parse = on_duration, .offset = offsetof(hy_proxy_t, idle_timeout_ms)},
    {.name = "host", .where = CTX_PROXY, .kind = HY_YNODE_SCALAR, .what = "preserve or upstream", .on_parse = on_proxy_host},
    /* database (strings are checked after the environment overrides are applied) */
    {.name = "database", .where = CTX_ROOT, .kind = HY_YNODE_MAPPING, .on_parse = on_database},
    {.name = "url", .where = CTX_DATABASE, .kind = HY_YNODE_SCALAR, .what = STRING, .on_parse = on_db_string,
        .offset = OFF(database.url)},
    {.name = "host", .where = CTX_DATABASE, .kind = HY_YNODE_SCALAR, .what = STRING, .on_parse = on_db_string,
        .offset = OFF(database.host)},
    {.name = "port", .where = CTX_DATABASE, .kind = HY_YNODE_SCALAR, .what = INTEGER, .on_parse = on_db_string,
        .offset = OFF(database.port)},
    {.name = "user", .where = CTX_DATABASE, .kind = HY_YNODE_SCALAR, .what = STRING, .on_parse = on_db_string,
        .offset = OFF(database.user)},
    {.name = "password", .where = CTX_DATABASE, .kind = HY_YNODE_SCALAR, .what = STRING, .on_parse = on_db_string,
        .offset = OFF(database.password)},
    {.name = "name", .where = CTX_DATABASE, .kind = HY_YNODE_SCALAR, .what = STRING, .on_parse = on_db_string,
        .offset = OFF(database.name)},
    {.name = "sslmode", .where = CTX_DATABASE, .kind = HY_YNODE_SCALAR, .what = STRING, .on_parse = on_db_string,
        .offset = OFF(database.sslmode)},
    {.name = "migrations", .where = CTX_DATABASE, .kind = HY_YNODE_SCALAR, .what = STRING, .on_parse = on_db_string,
        .offset = OFF(database.migrations)},
    {.name = "pool", .where = CTX_DATABASE, .kind = HY_YNODE_MAPPING, .on_parse = on_submapping, .opens = CTX_POOL},
    /* database.pool */
    {.name = "max_open", .where = CTX_POOL, .kind = HY_YNODE_SCALAR, .what = INTEGER,
        .on_parse = on_uint64, .offset = OFF(database.max_open), .min = 1, .max = 10000},
    {.name = "max_idle", .where = CTX_POOL, .kind = HY_YNODE_SCALAR, .what = INTEGER,
        .on_parse = on_uint64, .offset = OFF(database.max_idle), .min = 0, .max = 10000},
    {.name = "max_lifetime", .where = CTX_POOL, .kind = HY_YNODE_SCALAR, .what = DURATION,
        .on_parse = on_duration, .offset = OFF(database.max_lifetime_ms)},
    {.name = "max_idle_time", .where = CTX_POOL, .kind = HY_YNODE_SCALAR, .what = DURATION,
        .on_parse = on_duration, .offset = OFF(database.max_idle_time_ms)},
    {.name = "acquire_timeout", .where = CTX_POOL, .kind = HY_YNODE_SCALAR, .what = DURATION, .flags = F_NONZERO,
        .on_parse = on_duration, .offset = OFF(database.acquire_timeout_ms)},
    {.name = "queue_limit", .where = CTX_POOL, .kind = HY_YNODE_SCALAR, .what = INTEGER,
        .on_parse = on_uint64, .offset = OFF(database.queue_limit), .min = 0, .max = 1000000},
    {.name = "connect_timeout", .where = CTX_POOL, .kind = HY_YNODE_SCALAR, .what = DURATION, .flags = F_NONZERO,
        .on_parse = on_duration, .offset = OFF(database.connect_timeout_ms)},
    {.name = "statement_timeout", .where = CTX_POOL, .kind = HY_YNODE_SCALAR, .what = DURATION,
        .on_parse = on_duration, .offset = OFF(database.statement_timeout_ms)},
    {.name = "pipeline_depth", .where = CTX_POOL, .kind = HY_YNODE_SCALAR, .what = INTEGER,
        .on_parse = on_uint64, .offset = OFF(database.pipeline_depth), .min = 1, .max = 1000},
    {.name = "breaker_threshold", .where = CTX_POOL, .kind = HY_YNODE_SCALAR, .what = INTEGER,
        .on_parse = on_uint64, .offset = OFF(database.breaker_threshold), .min = 1, .max = 1000000},
    {.name = "breaker_cooldown", .where = CTX_POOL, .kind = HY_YNODE_SCALAR, .what = DURATION, .flags = F_NONZERO,
        .on_parse = on_duration, .offset = OFF(database.breaker_cooldown_ms)},
    {.name = "admission", .where = CTX_ROOT, .kind = HY_YNODE_MAPPING, .on_parse = on_submapping, .opens = CTX_ADMISSION},
    {.name = "max_in_flight", .where = CTX_ADMISSION, .kind = HY_YNODE_SCALAR, .what = INTEGER,
        .on_parse = on_uint64, .offset = OFF(max_in_flight), .min = 1, .max = 10000000},
    /* middleware and their settings */
    {.name = "middleware", .where = CTX_ROOT, .kind = HY_YNODE_SEQUENCE, .on_parse = on_middleware},
    {.name = "middleware", .where = CTX_ROUTE, .kind = HY_YNODE_SEQUENCE, .on_parse = on_route_middleware},
    {.name = "client_ip", .where = CTX_ROOT, .kind = HY_YNODE_MAPPING, .on_parse = on_submapping, .opens = CTX_CLIENT_IP},
    {.name = "trusted_proxies", .where = CTX_CLIENT_IP, .kind = HY_YNODE_SEQUENCE, .on_parse = on_trusted_proxies},
    {.name = "access_log", .where = CTX_ROOT, .kind = HY_YNODE_MAPPING, .on_parse = on_submapping, .opens = CTX_ACCESS_LOG},
    {.name = "path", .where = CTX_ACCESS_LOG, .kind = HY_YNODE_SCALAR, .what = STRING, .on_parse = on_log_path},
    {.name = "sample", .where = CTX_ACCESS_LOG, .kind = HY_YNODE_SCALAR, .what = "a number from 0 to 1",
        .on_parse = on_log_sample},
    {.name = "exclude", .where = CTX_ACCESS_LOG, .kind = HY_YNODE_SEQUENCE, .on_parse = on_log_exclude},
    {.name = "metrics", .where = CTX_ROOT, .kind = HY_YNODE_MAPPING, .on_parse = on_submapping, .opens = CTX_METRICS},
    {.name = "buckets", .where = CTX_METRICS, .kind = HY_YNODE_SEQUENCE, .on_parse = on_buckets},
    /* server.admin */
    {.name = "admin", .where = CTX_SERVER, .kind = HY_YNODE_MAPPING, .on_parse = on_admin},
    {.name = "host", .where = CTX_ADMIN, .kind = HY_YNODE_SCALAR, .what = STRING, .flags = F_REQUIRED,
        .on_parse = on_listener_host},
    {.name = "port", .where = CTX_ADMIN, .kind = HY_YNODE_SCALAR, .what = INTEGER, .flags = F_REQUIRED,
        .on_parse = on_listener_port, .min = 1, .max = 65535},
};
/* clang-format on */
#define NDIRECTIVES (sizeof(directives) / sizeof(directives[0]))

/* How each kind of mapping is named in "it belongs in X" hints. */
static const char *ctx_name(unsigned ctx)
{
    switch (ctx) {
    case CTX_ROOT:
        return "the top level";
    case CTX_SERVER:
        return "server";
    case CTX_LISTENER:
        return "server.listen[]";
    case CTX_TLS:
        return "server.listen[].tls";
    case CTX_TIMEOUTS:
        return "server.timeouts";
    case CTX_LIMITS:
        return "server.limits";
    case CTX_HTTP2:
        return "server.limits.http2";
    case CTX_ROUTE:
        return "routes[]";
    case CTX_STATIC:
        return "routes[].static";
    case CTX_PROXY:
        return "routes[].proxy";
    case CTX_DATABASE:
        return "database";
    case CTX_POOL:
        return "database.pool";
    case CTX_ADMIN:
        return "server.admin";
    case CTX_CLIENT_IP:
        return "client_ip";
    case CTX_ACCESS_LOG:
        return "access_log";
    case CTX_METRICS:
        return "metrics";
    case CTX_ADMISSION:
        return "admission";
    default:
        return "?";
    }
}

static const directive_t *find_directive(unsigned ctx, const char *name)
{
    for (size_t i = 0; i != NDIRECTIVES; ++i)
        if ((directives[i].where & ctx) != 0 && strcmp(directives[i].name, name) == 0)
            return &directives[i];
    return NULL;
}

/* The key a directive sets (its own name, or the one it is an alias of). */
static const char *canonical_name(const directive_t *d)
{
    return d->alias_of != NULL ? d->alias_of : d->name;
}

/* Reports an unknown key at its key node: a close name of this mapping, or else the mapping it belongs in. */
static void report_unknown_key(parse_t *p, const hy_ynode_t *key, unsigned ctx)
{
    const char *names[NDIRECTIVES];
    size_t n = 0;

    for (size_t i = 0; i != NDIRECTIVES; ++i)
        if ((directives[i].where & ctx) != 0)
            names[n++] = directives[i].name;
    const char *suggestion = hy_did_you_mean(key->value, names, n), *name = qk(p, key);
    if (suggestion != NULL) {
        error_at(p, key, "unknown key %s (did you mean \"%s\"?)", name, suggestion);
        return;
    }
    for (size_t i = 0; i != NDIRECTIVES; ++i) {
        if (strcmp(directives[i].name, key->value) == 0) {
            error_at(p, key, "unknown key %s (it belongs in %s)", name, ctx_name(directives[i].where));
            return;
        }
    }
    error_at(p, key, "unknown key %s", name);
}

/* Walks the mapping `map` whose keys are the directives of `ctx`, calling each one's on_parse with `target`, then
 * reports the required keys that are missing. Duplicate keys, unknown keys, an alias given with its key and values of
 * the wrong kind are reported; every key is looked at, whatever fails. Returns 0, or -1 when anything was reported. */
static int parse_mapping(parse_t *p, const hy_ynode_t *map, unsigned ctx, void *target)
{
    size_t npairs = map->nchildren / 2, errors_before = p->nerrors;
    const directive_t **seen = hy_xcalloc(npairs, sizeof(*seen));

    for (size_t i = 0; i != npairs; ++i) {
        const hy_ynode_t *key = map->children[2 * i], *value = map->children[2 * i + 1];
        size_t saved = push_key(p, key->value);
        size_t j;

        for (j = 0; j != i; ++j)
            if (strcmp(map->children[2 * j]->value, key->value) == 0)
                break;
        if (j != i) {
            error_at(p, key, "duplicate key %s (first at line %u)", qk(p, key), map->children[2 * j]->pos.line);
            goto Next;
        }
        const directive_t *d = find_directive(ctx, key->value);
        if (d == NULL) {
            report_unknown_key(p, key, ctx);
            goto Next;
        }
        for (j = 0; j != i; ++j) {
            if (seen[j] != NULL && strcmp(canonical_name(seen[j]), canonical_name(d)) == 0) {
                error_at(p, key, "\"%s\" and \"%s\" are the same setting (line %u); give only one", d->name, seen[j]->name,
                         map->children[2 * j]->pos.line);
                goto Next;
            }
        }
        seen[i] = d;
        if (expect_kind(p, value, d->kind, d->what) == 0)
            d->on_parse(p, d, key, value, target);
    Next:
        pop_key(p, saved);
    }

    for (size_t k = 0; k != NDIRECTIVES; ++k) {
        const directive_t *d = &directives[k];
        if ((d->where & ctx) == 0 || (d->flags & F_REQUIRED) == 0)
            continue;
        size_t i;
        for (i = 0; i != npairs; ++i)
            if (seen[i] != NULL && strcmp(canonical_name(seen[i]), d->name) == 0)
                break;
        /* a key that was given but failed (duplicate, wrong kind...) has been reported already */
        for (size_t j = 0; i == npairs && j != npairs; ++j)
            if (strcmp(map->children[2 * j]->value, d->name) == 0)
                i = j;
        if (i == npairs)
            error_at(p, map, "missing required key \"%s\"", d->name);
    }
    free(seen);
    return p->nerrors == errors_before ? 0 : -1;
}

/* ---- server ---------------------------------------------------------------------------------------------------------- */

static int on_server(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    (void)d;
    p->server_key = key;
    return parse_mapping(p, value, CTX_SERVER, target);
}

/* timeouts, limits, http2: a mapping of directives that fill the same hy_config_t. */
static int on_submapping(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    (void)key;
    return parse_mapping(p, value, d->opens, target);
}

static int on_threads(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_config_t *config = target;
    char *s = scalar_value(p, value, NULL, 0);
    uint64_t v;
    int ret = -1;

    (void)key;
    if (s == NULL)
        return -1;
    if (strcmp(s, "auto") == 0) {
        config->threads_auto = 1;
        ret = 0;
    } else if (parse_uint(s, &v) != 0) {
        error_at(p, value, "expected \"auto\" or an integer, got %s", qs(p, s));
    } else if (v < d->min || v > d->max) {
        error_at(p, value, "%ju is out of range (%ju-%ju)", (uintmax_t)v, (uintmax_t)d->min, (uintmax_t)d->max);
    } else {
        config->threads_auto = 0;
        config->threads = (unsigned)v;
        ret = 0;
    }
    free(s);
    return ret;
}

static int on_duration(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    (void)key;
    if (d->env_slot != ENV_NONE)
        p->timeout_nodes[d->env_slot] = value;
    return get_duration(p, value, (d->flags & F_NONZERO) == 0, (uint64_t *)((char *)target + d->offset));
}

static int on_uint64(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    (void)key;
    return get_uint(p, value, d->min, d->max, (uint64_t *)((char *)target + d->offset));
}

static int on_size(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    (void)key;
    return get_size(p, value, d->min, d->max, (uint64_t *)((char *)target + d->offset));
}

static int on_max_streams(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_config_t *config = target;
    char *s = scalar_value(p, value, NULL, 0);
    uint64_t v;
    int ret = -1;

    (void)key;
    if (s == NULL)
        return -1;
    if (parse_uint(s, &v) != 0) {
        error_at(p, value, "expected an integer, got %s", qs(p, s));
    } else if (v > d->max) {
        error_at(p, value, "%ju is out of range (%ju-%ju): libh2o 2.2.5 always advertises %d concurrent streams", (uintmax_t)v,
                 (uintmax_t)d->min, (uintmax_t)d->max, LIBH2O_MAX_STREAMS);
    } else if (v < d->min) {
        error_at(p, value, "%ju is out of range (%ju-%ju)", (uintmax_t)v, (uintmax_t)d->min, (uintmax_t)d->max);
    } else {
        config->limits.max_concurrent_streams = (uint32_t)v;
        ret = 0;
    }
    free(s);
    return ret;
}

/* ---- listeners ------------------------------------------------------------------------------------------------------- */

static int on_listen(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_config_t *config = target;
    size_t n = value->nchildren;

    (void)d, (void)key;
    p->listen_node = value;
    if (n == 0) {
        error_at(p, value, "at least one listener is required");
        return -1;
    }
    config->listeners = hy_xcalloc(n, sizeof(*config->listeners));
    config->nlisteners = n;
    p->listeners = hy_xcalloc(n, sizeof(*p->listeners));
    for (size_t i = 0; i != n; ++i) {
        const hy_ynode_t *item = value->children[i];
        size_t saved = push_index(p, i);
        listener_state_t *ls = &p->listeners[i];
        ls->listener = &config->listeners[i];
        ls->listener->pos = item->pos;
        if (expect_kind(p, item, HY_YNODE_MAPPING, NULL) == 0)
            parse_mapping(p, item, CTX_LISTENER, ls);
        pop_key(p, saved);
    }
    return 0;
}

static int on_listener_host(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    listener_state_t *ls = target;
    char *s = scalar_value(p, value, NULL, 0);

    (void)d, (void)key;
    if (s == NULL)
        return -1;
    int bad = s[0] == '\0';
    for (const char *c = s; !bad && *c != '\0'; ++c)
        bad = (unsigned char)*c <= ' ' || *c == 0x7f || *c == '/';
    if (bad) {
        error_at(p, value, "bad host %s (expected an address like 127.0.0.1 or ::, or a host name)", qs(p, s));
        free(s);
        return -1;
    }
    if (s[0] == '[') {
        error_at(p, value, "bad host %s (write an IPv6 address without brackets, e.g. ::1)", qs(p, s));
        free(s);
        return -1;
    }
    free(ls->listener->host);
    ls->listener->host = s;
    return 0;
}

static int on_listener_port(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    listener_state_t *ls = target;
    uint64_t v;

    (void)key;
    ls->port_node = value;
    if (get_uint(p, value, d->min, d->max, &v) != 0)
        return -1;
    ls->listener->port = (uint16_t)v;
    ls->port_ok = 1;
    return 0;
}

/* ---- TLS ------------------------------------------------------------------------------------------------------------- */

/* Returns `path` resolved against the config file's directory when relative (malloc'ed). */
static char *resolve_path(const parse_t *p, const char *path)
{
    if (path[0] == '/' || p->dir[0] == '\0')
        return hy_xstrdup(path);
    size_t n = strlen(p->dir) + strlen(path) + 1;
    char *out = hy_xmalloc(n);
    snprintf(out, n, "%s%s", p->dir, path);
    return out;
}

static int on_tls_file(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    tls_state_t *ts = target;
    int is_cert = strcmp(d->name, "certificate") == 0;
    char *written = scalar_value(p, value, NULL, 0);

    (void)key;
    if (written == NULL)
        return -1;
    if (written[0] == '\0') {
        error_at(p, value, "expected a file path, got \"\"");
        free(written);
        return -1;
    }
    if (is_cert) {
        ts->cert_node = value;
        ts->cert_written = written;
        ts->tls->certificate = resolve_path(p, written);
    } else {
        ts->key_node = value;
        ts->key_written = written;
        ts->tls->key = resolve_path(p, written);
    }
    return 0;
}

static int on_tls_min_version(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    tls_state_t *ts = target;
    char *s = scalar_value(p, value, NULL, 0);
    int ret = 0;

    (void)d, (void)key;
    if (s == NULL)
        return -1;
    if (strcmp(s, "TLSv1.2") == 0) {
        ts->tls->min_version = TLS1_2_VERSION;
    } else if (strcmp(s, "TLSv1.3") == 0) {
        ts->tls->min_version = TLS1_3_VERSION;
    } else {
        error_at(p, value, "unsupported TLS version %s (expected TLSv1.2 or TLSv1.3)", qs(p, s));
        ret = -1;
    }
    free(s);
    return ret;
}

/* OpenSSL password callback: never prompts; records that the key is encrypted. */
static int on_tls_password(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf, (void)size, (void)rwflag;
    *(int *)userdata = 1;
    return -1;
}

/* The reason of the first OpenSSL error in the queue (a static string, never data from the file); clears the queue. */
static const char *openssl_reason(void)
{
    unsigned long e = ERR_peek_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return reason != NULL ? reason : "unknown error";
}

/* Checks that `path` can be opened for reading. Returns 0, or -1 after reporting at `node` under key `name`. */
static int check_readable(parse_t *p, const char *name, const hy_ynode_t *node, const char *path, const char *written)
{
    char ebuf[128];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

    if (fd < 0)
        err = errno;
    else if (fstat(fd, &st) != 0)
        err = errno;
    else if (S_ISDIR(st.st_mode))
        err = EISDIR;
    if (fd >= 0)
        close(fd);
    if (err == 0)
        return 0;
    size_t saved = push_key(p, name);
    error_at(p, node, "cannot read %s: %s", qs(p, written), strerror_r(err, ebuf, sizeof(ebuf)));
    pop_key(p, saved);
    return -1;
}

/* Loads the certificate chain and the private key into a throwaway SSL_CTX and checks that they match, reporting at the
 * `certificate` or `key` node. The key's contents never reach a message. */
static void check_tls_files(parse_t *p, tls_state_t *ts)
{
    int cert_ok = check_readable(p, "certificate", ts->cert_node, ts->tls->certificate, ts->cert_written) == 0;
    int key_ok = check_readable(p, "key", ts->key_node, ts->tls->key, ts->key_written) == 0;
    EVP_PKEY *pkey = NULL;
    SSL_CTX *ctx;
    size_t saved;

    if (!cert_ok && !key_ok)
        return;
    ERR_clear_error();
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
        hy_alloc_fail_(__FILE__, __LINE__);
    if (cert_ok && SSL_CTX_use_certificate_chain_file(ctx, ts->tls->certificate) != 1) {
        const char *reason = openssl_reason();
        saved = push_key(p, "certificate");
        if (strcmp(reason, "no start line") == 0)
            error_at(p, ts->cert_node, "no PEM certificate in %s", qs(p, ts->cert_written));
        else
            error_at(p, ts->cert_node, "bad PEM certificate chain in %s: %s", qs(p, ts->cert_written), reason);
        pop_key(p, saved);
        cert_ok = 0;
    }
    if (key_ok) {
        int encrypted = 0;
        BIO *bio = BIO_new_file(ts->tls->key, "r");
        if (bio != NULL) {
            pkey = PEM_read_bio_PrivateKey(bio, NULL, on_tls_password, &encrypted);
            BIO_free(bio);
        }
        ERR_clear_error();
        if (pkey == NULL) {
            saved = push_key(p, "key");
            if (encrypted)
                error_at(p, ts->key_node, "private key in %s is encrypted (not supported)", qs(p, ts->key_written));
            else
                error_at(p, ts->key_node, "no PEM private key in %s", qs(p, ts->key_written));
            pop_key(p, saved);
            key_ok = 0;
        }
    }
    if (cert_ok && key_ok && (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1)) {
        saved = push_key(p, "key");
        error_at(p, ts->key_node, "private key %s does not match certificate %s", qs(p, ts->key_written), qs(p, ts->cert_written));
        pop_key(p, saved);
    }
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    SSL_CTX_free(ctx);
}

static int on_listener_tls(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    listener_state_t *ls = target;
    tls_state_t ts = {NULL, NULL, NULL, NULL, NULL};
    int ret;

    (void)d, (void)key;
    ls->has_tls = 1;
    ts.tls = hy_xcalloc(1, sizeof(*ts.tls));
    ts.tls->min_version = TLS1_2_VERSION;
    ls->listener->tls = ts.tls;
    ret = parse_mapping(p, value, CTX_TLS, &ts);
    if (ts.cert_node != NULL && ts.key_node != NULL)
        check_tls_files(p, &ts);
    free(ts.cert_written);
    free(ts.key_written);
    return ret;
}

/* ---- routes ---------------------------------------------------------------------------------------------------------- */

typedef struct st_method_name_t {
    const char *name; /* as written */
    unsigned bit;     /* HY_METHOD_* */
} method_name_t;

static const method_name_t method_names[] = {
    {"GET", HY_METHOD_GET},       {"HEAD", HY_METHOD_HEAD},   {"POST", HY_METHOD_POST},       {"PUT", HY_METHOD_PUT},
    {"DELETE", HY_METHOD_DELETE}, {"PATCH", HY_METHOD_PATCH}, {"OPTIONS", HY_METHOD_OPTIONS},
};
#define NMETHODS (sizeof(method_names) / sizeof(method_names[0]))

/* Writes a method mask as "GET,HEAD,POST" (enum order) into buf. Returns buf. */
static char *format_methods(unsigned mask, char *buf, size_t bufsize)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i != NMETHODS; ++i) {
        if ((mask & method_names[i].bit) == 0)
            continue;
        int n = snprintf(buf + o, bufsize - o, "%s%s", o != 0 ? "," : "", method_names[i].name);
        if (n < 0 || (size_t)n >= bufsize - o)
            break;
        o += (size_t)n;
    }
    return buf;
}

static int on_route_path(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    route_state_t *rs = target;
    char err[256];

    (void)d, (void)key;
    rs->path_node = value;
    if (get_string(p, value, &rs->route->path) != 0)
        return -1;
    err[0] = '\0';
    if (hy_router_check_template(rs->route->path, err, sizeof(err)) != 0) {
        error_at(p, value, "%s", err[0] != '\0' ? err : "invalid route template");
        return -1;
    }
    rs->path_ok = 1;
    return 0;
}

static int on_route_methods(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    route_state_t *rs = target;
    const char *names[NMETHODS];
    unsigned mask = 0;
    int ret = 0;

    (void)d, (void)key;
    for (size_t i = 0; i != NMETHODS; ++i)
        names[i] = method_names[i].name;
    if (value->nchildren == 0) {
        error_at(p, value, "at least one method is required");
        return -1;
    }
    for (size_t i = 0; i != value->nchildren; ++i) {
        const hy_ynode_t *item = value->children[i];
        size_t saved = push_index(p, i);
        char *s;
        if (expect_kind(p, item, HY_YNODE_SCALAR, "a method name") != 0 || (s = scalar_value(p, item, NULL, 0)) == NULL) {
            ret = -1;
            goto Next;
        }
        size_t k;
        for (k = 0; k != NMETHODS; ++k)
            if (strcmp(s, method_names[k].name) == 0)
                break;
        if (k == NMETHODS) {
            const char *suggestion = hy_did_you_mean(s, names, NMETHODS);
            if (suggestion != NULL)
                error_at(p, item, "unknown method %s (did you mean \"%s\"?)", qs(p, s), suggestion);
            else
                error_at(p, item, "unknown method %s (expected one of GET HEAD POST PUT DELETE PATCH OPTIONS)", qs(p, s));
            ret = -1;
        } else if ((mask & method_names[k].bit) != 0) {
            error_at(p, item, "duplicate method \"%s\"", method_names[k].name);
            ret = -1;
        } else {
            mask |= method_names[k].bit;
        }
        free(s);
    Next:
        pop_key(p, saved);
    }
    if (ret == 0) {
        if ((mask & HY_METHOD_GET) != 0)
            mask |= HY_METHOD_HEAD;
        rs->route->methods = mask;
    }
    return ret;
}

static int on_route_handler(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    route_state_t *rs = target;
    hy_route_t *route = rs->route;

    (void)d, (void)key;
    if (get_string(p, value, &route->handler_name) != 0)
        return -1;
    p->handler_pos[route->index] = value->pos;
    route->kind = HY_ROUTE_HANDLER;
    route->handler = hy_handler_lookup(route->handler_name);
    if (route->handler != NULL)
        return 0;

    size_t n = 0;
    while (hy_handler_registry[n].name != NULL)
        ++n;
    const char **names = hy_xcalloc(n, sizeof(*names));
    for (size_t i = 0; i != n; ++i)
        names[i] = hy_handler_registry[i].name;
    const char *suggestion = hy_did_you_mean(route->handler_name, names, n);
    if (suggestion != NULL)
        error_at(p, value, "unknown handler %s (did you mean \"%s\"?)", qs(p, route->handler_name), suggestion);
    else
        error_at(p, value, "unknown handler %s", qs(p, route->handler_name));
    free(names);
    return -1;
}

static int on_route_static(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    route_state_t *rs = target;

    (void)d, (void)key;
    rs->route->kind = HY_ROUTE_STATIC;
    return parse_mapping(p, value, CTX_STATIC, &rs->route->static_);
}

static int on_route_uint(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    (void)key;
    return get_uint(p, value, d->min, d->max, (uint64_t *)((char *)((route_state_t *)target)->route + d->offset));
}

static int on_route_size(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    (void)key;
    return get_size(p, value, d->min, d->max, (uint64_t *)((char *)((route_state_t *)target)->route + d->offset));
}

static int on_route_timeout(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    route_state_t *rs = target;

    (void)d, (void)key;
    return get_duration(p, value, 0, &rs->route->timeout_ms);
}

/* ---- sql routes ------------------------------------------------------------------------------------------------------ */

static int on_route_sql(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    route_state_t *rs = target;

    (void)d, (void)key;
    rs->route->kind = HY_ROUTE_SQL;
    if (rs->route->sql == NULL) {
        rs->route->sql = hy_xcalloc(1, sizeof(hy_sql_t));
        rs->route->sql->max_rows = 1000;
        rs->route->sql->idempotent = -1;
    }
    return parse_mapping(p, value, CTX_SQL, rs);
}

static int on_sql_query(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_sql_t *sql = ((route_state_t *)target)->route->sql;

    (void)d, (void)key;
    sql->query_pos = value->pos;
    if (get_string(p, value, &sql->query) != 0)
        return -1;
    if (sql->query[0] == '\0' || strspn(sql->query, " \t\r\n") == strlen(sql->query)) {
        error_at(p, value, "the query is empty");
        free(sql->query);
        sql->query = NULL; /* not checked further */
        return -1;
    }
    return 0;
}

static int on_sql_params(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    (void)p, (void)d, (void)key;
    ((route_state_t *)target)->sql_params = value; /* read in finish_sql_route, once the path is known */
    return 0;
}

static int on_sql_result(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_sql_t *sql = ((route_state_t *)target)->route->sql;
    static const char *const names[] = {"one", "many", "none"};
    char *s;

    (void)d, (void)key;
    if ((s = scalar_value(p, value, NULL, 0)) == NULL)
        return -1;
    size_t i = 0;
    while (i != 3 && strcmp(s, names[i]) != 0)
        ++i;
    if (i == 3) {
        const char *suggestion = hy_did_you_mean(s, names, 3);
        error_at(p, value, "unknown result %s (expected one, many or none%s%s%s)", qs(p, s),
                 suggestion != NULL ? "; did you mean \"" : "", suggestion != NULL ? suggestion : "",
                 suggestion != NULL ? "\"?" : "");
        free(s);
        return -1;
    }
    sql->result = (hy_sql_result_t)i;
    free(s);
    return 0;
}

static int on_sql_uint(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    (void)key;
    return get_uint(p, value, d->min, d->max, (uint64_t *)((char *)((route_state_t *)target)->route->sql + d->offset));
}

static int on_sql_idempotent(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_sql_t *sql = ((route_state_t *)target)->route->sql;
    char *s;

    (void)d, (void)key;
    if ((s = scalar_value(p, value, NULL, 0)) == NULL)
        return -1;
    int ret = 0;
    if (strcmp(s, "true") == 0)
        sql->idempotent = 1;
    else if (strcmp(s, "false") == 0)
        sql->idempotent = 0;
    else {
        error_at(p, value, "expected true or false, got %s", qs(p, s));
        ret = -1;
    }
    free(s);
    return ret;
}

/* One error_map entry: CONDITION|SQLSTATE|CLASS: STATUS, or a mapping {status, error, message}. */
static int parse_sql_error(parse_t *p, const hy_ynode_t *key, const hy_ynode_t *value, hy_sql_error_t *e)
{
    const char *code = hy_sql_condition_code(key->value);
    size_t klen = strlen(key->value);
    int is_code = (klen == 5 || klen == 2) && strspn(key->value, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == klen;
    if (code == NULL && !is_code) {
        error_at(p, key,
                 "unknown condition %s (a PostgreSQL condition name such as unique_violation, a 5-character SQLSTATE "
                 "such as 23505, or a 2-character class such as 23)",
                 qk(p, key));
        return -1;
    }
    snprintf(e->sqlstate, sizeof(e->sqlstate), "%s", code != NULL ? code : key->value);
    e->error = hy_xstrdup(code != NULL ? key->value : "database_error");
    const hy_ynode_t *status_node = value;
    if (value->kind == HY_YNODE_MAPPING) {
        status_node = NULL;
        for (size_t k = 0; k + 1 < value->nchildren; k += 2) {
            const hy_ynode_t *mk = value->children[k], *mv = value->children[k + 1];
            size_t saved = push_key(p, mk->value);
            if (strcmp(mk->value, "status") == 0) {
                status_node = mv;
            } else if (strcmp(mk->value, "error") == 0 || strcmp(mk->value, "message") == 0) {
                char **field = mk->value[0] == 'e' ? &e->error : &e->message;
                free(*field);
                *field = NULL;
                if (expect_kind(p, mv, HY_YNODE_SCALAR, STRING) != 0 || get_string(p, mv, field) != 0) {
                    pop_key(p, saved);
                    return -1;
                }
            } else {
                static const char *const keys[] = {"status", "error", "message"};
                const char *suggestion = hy_did_you_mean(mk->value, keys, 3);
                if (suggestion != NULL)
                    error_at(p, mk, "unknown key %s (did you mean \"%s\"?)", qk(p, mk), suggestion);
                else
                    error_at(p, mk, "unknown key %s (expected status, error, message)", qk(p, mk));
                pop_key(p, saved);
                return -1;
            }
            pop_key(p, saved);
        }
        if (status_node == NULL) {
            error_at(p, value, "missing \"status\"");
            return -1;
        }
    } else if (expect_kind(p, value, HY_YNODE_SCALAR, "an HTTP status or a mapping {status, error, message}") != 0) {
        return -1;
    }
    uint64_t status;
    if (get_uint(p, status_node, 400, 599, &status) != 0)
        return -1;
    e->status = (int)status;
    return 0;
}

static int on_sql_error_map(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_sql_t *sql = ((route_state_t *)target)->route->sql;
    int ret = 0;

    (void)d, (void)key;
    sql->errors = hy_xcalloc(value->nchildren / 2 + 1, sizeof(*sql->errors));
    for (size_t k = 0; k + 1 < value->nchildren; k += 2) {
        size_t saved = push_key(p, value->children[k]->value);
        hy_sql_error_t *e = &sql->errors[sql->nerrors];
        if (parse_sql_error(p, value->children[k], value->children[k + 1], e) == 0) {
            ++sql->nerrors;
        } else {
            free(e->error);
            free(e->message);
            memset(e, 0, sizeof(*e));
            ret = -1;
        }
        pop_key(p, saved);
    }
    return ret;
}

/* The type of `{name}` in a route template: int for {name:int}, text for {name}; -1 when absent. */
static int template_param_type(void *ctx, const char *name)
{
    const char *s = ctx;
    size_t n = strlen(name);
    while ((s = strchr(s, '{')) != NULL) {
        ++s;
        if (strncmp(s, name, n) == 0 && (s[n] == '}' || s[n] == ':'))
            return strncmp(s + n, ":int}", 5) == 0 ? HY_SQL_INT : HY_SQL_TEXT;
    }
    return -1;
}

/* Reads `sql.params` (now that the path is known) and checks the route as a whole. */
static void finish_sql_route(parse_t *p, route_state_t *rs, const hy_ynode_t *item)
{
    hy_route_t *route = rs->route;
    hy_sql_t *sql = route->sql;
    size_t saved = push_key(p, "sql"), errors_before = p->nerrors;
    if (rs->sql_params != NULL) {
        size_t saved2 = push_key(p, "params");
        sql->params = hy_xcalloc(rs->sql_params->nchildren + 1, sizeof(*sql->params));
        for (size_t i = 0; i != rs->sql_params->nchildren; ++i) {
            const hy_ynode_t *n = rs->sql_params->children[i];
            size_t saved3 = push_index(p, i);
            char *s, err[256];
            if (expect_kind(p, n, HY_YNODE_SCALAR, "a parameter spec such as query.limit:int(1..100)=20") == 0 &&
                (s = scalar_value(p, n, NULL, 0)) != NULL) {
                hy_sql_param_t *prm = &sql->params[sql->nparams];
                if (hy_sql_param_parse(s, template_param_type, route->path != NULL ? route->path : (char *)"", prm, err,
                                       sizeof(err)) != 0) {
                    error_at(p, n, "%s: %s", qs(p, s), err);
                } else {
                    prm->pos = n->pos;
                    sql->has_body_params |= prm->source == HY_SQL_FROM_BODY;
                    ++sql->nparams;
                }
                free(s);
            }
            pop_key(p, saved3);
        }
        pop_key(p, saved2);
    }
    if (sql->query != NULL && p->nerrors == errors_before) {
        size_t saved2 = push_key(p, "query");
        int used = hy_sql_max_placeholder(sql->query);
        if (used == 0 && sql->nparams != 0)
            error_pos(p, sql->query_pos, "the query uses no parameter but params lists %zu value%s", sql->nparams,
                      sql->nparams == 1 ? "" : "s");
        else if ((size_t)used != sql->nparams)
            error_pos(p, sql->query_pos, "the query uses $%d but params lists %zu value%s", used, sql->nparams,
                      sql->nparams == 1 ? "" : "s");
        pop_key(p, saved2);
    }
    if (sql->has_body_params && (route->methods & (HY_METHOD_POST | HY_METHOD_PUT | HY_METHOD_PATCH)) == 0)
        error_at(p, item, "body parameters need a method with a body (methods: [POST], [PUT] or [PATCH])");
    if (sql->status == 0)
        sql->status = sql->result == HY_SQL_RESULT_NONE ? 204 : 200;
    if (sql->idempotent < 0)
        sql->idempotent = sql->query != NULL && hy_sql_is_select(sql->query);
    /* routes on one path have disjoint methods, so the first method and the path name the statement uniquely */
    const char *method = "GET";
    for (size_t i = 0; i != NMETHODS; ++i)
        if ((route->methods & method_names[i].bit) != 0) {
            method = method_names[i].name;
            break;
        }
    char label[600];
    snprintf(label, sizeof(label), "sql:%s %s", method, route->path != NULL ? route->path : "");
    if (sql->query != NULL) /* a missing query has been reported; the model is not used */
        hy_sql_finish(sql, label);
    pop_key(p, saved);
}

/* ---- static responses ------------------------------------------------------------------------------------------------ */

static int on_static_status(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_static_t *st = target;
    uint64_t v;

    (void)key;
    if (get_uint(p, value, d->min, d->max, &v) != 0)
        return -1;
    st->status = (int)v;
    return 0;
}

/* Returns 1 when the bytes may appear in a header value: no control byte other than HTAB. */
static int is_header_value(const char *s, size_t len)
{
    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* Returns 1 when `s` is an HTTP token (RFC 9110 tchar+). */
static int is_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; ++s) {
        unsigned char c = (unsigned char)*s;
        if (!hy_is_tchar(c))
            return 0;
    }
    return 1;
}

static int on_static_content_type(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_static_t *st = target;
    char *s = scalar_value(p, value, NULL, 0);

    (void)d, (void)key;
    if (s == NULL)
        return -1;
    if (s[0] == '\0' || !is_header_value(s, strlen(s))) {
        error_at(p, value, "%s is not a valid header value", qs(p, s));
        free(s);
        return -1;
    }
    free(st->content_type);
    st->content_type = s;
    return 0;
}

static int on_static_body(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_static_t *st = target;
    size_t len;
    char *s;

    (void)d, (void)key;
    /* `body:` with nothing after it would be "expected a string, got an empty value"; `body: ""` is the empty body */
    if ((s = scalar_value(p, value, &len, 1)) == NULL)
        return -1;
    free(st->body);
    st->body = s;
    st->body_len = len;
    return 0;
}

/* Headers that the server owns (or that HTTP/2 forbids): a route may not set them. */
static const char *const reserved_headers[] = {
    "content-length", "date", "server", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te", "upgrade"};

static int on_static_headers(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_static_t *st = target;
    size_t npairs = value->nchildren / 2;
    int ret = 0;

    (void)d, (void)key;
    st->headers = hy_xcalloc(npairs, sizeof(*st->headers));
    for (size_t i = 0; i != npairs; ++i) {
        const hy_ynode_t *k = value->children[2 * i], *v = value->children[2 * i + 1];
        size_t saved = push_key(p, k->value), j;
        char *name = NULL, *val = NULL;

        if (!is_token(k->value) || memchr(k->value, '\0', k->len) != NULL) {
            error_at(p, k, "bad header name %s (expected an HTTP token such as x-frame-options)", qk(p, k));
            goto Fail;
        }
        name = hy_xstrdup(k->value);
        for (char *c = name; *c != '\0'; ++c)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        for (j = 0; j != st->nheaders; ++j)
            if (strcmp(st->headers[j].name, name) == 0)
                break;
        if (j != st->nheaders) {
            error_at(p, k, "duplicate header \"%s\"", name);
            goto Fail;
        }
        if (strcmp(name, "content-type") == 0) {
            error_at(p, k, "header \"content-type\" may not be set here (use content_type)");
            goto Fail;
        }
        for (j = 0; j != sizeof(reserved_headers) / sizeof(reserved_headers[0]); ++j)
            if (strcmp(name, reserved_headers[j]) == 0)
                break;
        if (j != sizeof(reserved_headers) / sizeof(reserved_headers[0])) {
            error_at(p, k, "header \"%s\" may not be set here (the server sets it)", name);
            goto Fail;
        }
        if (expect_kind(p, v, HY_YNODE_SCALAR, STRING) != 0 || (val = scalar_value(p, v, NULL, 0)) == NULL)
            goto Fail;
        if (!is_header_value(val, strlen(val))) {
            error_at(p, v, "header values may not contain control characters (CR, LF...)");
            goto Fail;
        }
        st->headers[st->nheaders].name = name;
        st->headers[st->nheaders].value = val;
        ++st->nheaders;
        pop_key(p, saved);
        continue;
    Fail:
        free(name);
        free(val);
        ret = -1;
        pop_key(p, saved);
    }
    return ret;
}

/* ---- routes: the list, duplicates and the router --------------------------------------------------------------------- */

/* Returns the next segment of a template at *s ("/a/{id}" gives "a", then "{id}"), advancing *s; *len is its length. */
static const char *next_segment(const char **s, size_t *len)
{
    const char *start = *s;
    if (*start == '/')
        ++start;
    const char *end = strchr(start, '/');
    if (end == NULL)
        end = start + strlen(start);
    *len = (size_t)(end - start);
    *s = end;
    return start;
}

/* The type part of a parameter segment "{name:type}" ("" for "{name}", "..." for a catch-all "{name...}"), or NULL when
 * the segment is a literal. */
static const char *param_type(const char *seg, size_t len, size_t *tlen)
{
    if (len < 2 || seg[0] != '{' || seg[len - 1] != '}')
        return NULL;
    const char *colon = memchr(seg, ':', len);
    if (colon == NULL && len >= 5 && memcmp(seg + len - 4, "...", 3) == 0) {
        *tlen = 3;
        return "...";
    }
    if (colon == NULL) {
        *tlen = 0;
        return "";
    }
    *tlen = (size_t)(seg + len - 1 - (colon + 1));
    return colon + 1;
}

/* Returns 1 when two templates are the same route: equal but for the names of their parameters. */
static int same_template(const char *a, const char *b)
{
    for (;;) {
        if (*a == '\0' || *b == '\0')
            return *a == *b;
        size_t alen, blen, atl = 0, btl = 0;
        const char *sa = next_segment(&a, &alen), *sb = next_segment(&b, &blen);
        const char *ta = param_type(sa, alen, &atl), *tb = param_type(sb, blen, &btl);
        if (ta != NULL || tb != NULL) {
            if (ta == NULL || tb == NULL || atl != btl || memcmp(ta, tb, atl) != 0)
                return 0;
        } else if (alen != blen || memcmp(sa, sb, alen) != 0) {
            return 0;
        }
    }
}

/* Adds a valid route to the router, first reporting a duplicate of an earlier route at its `path` node. */
static void add_route(parse_t *p, route_state_t *rs)
{
    hy_config_t *config = p->config;
    hy_route_t *route = rs->route;
    char err[256], methods[64];

    for (size_t j = 0; j != route->index; ++j) {
        const hy_route_t *earlier = &config->routes[j];
        unsigned overlap = earlier->methods & route->methods;
        if (!p->route_added[j] || overlap == 0 || !same_template(earlier->path, route->path))
            continue;
        size_t saved = push_key(p, "path");
        error_at(p, rs->path_node, "duplicate route: %s %s is already declared by routes[%zu] at line %u",
                 format_methods(overlap, methods, sizeof(methods)), route->path, j, earlier->pos.line);
        pop_key(p, saved);
        return;
    }
    err[0] = '\0';
    if (hy_router_add(config->router, route->path, route->methods, route, err, sizeof(err)) != 0) {
        size_t saved = push_key(p, "path");
        error_at(p, rs->path_node, "%s", err[0] != '\0' ? err : "the router refused this route");
        pop_key(p, saved);
        return;
    }
    p->route_added[route->index] = 1;
}

/* The keys that say what a route does; a route gives exactly one. */
static const char *const route_kinds[] = {"handler", "static", "sql", "proxy"};
#define NROUTE_KINDS (sizeof(route_kinds) / sizeof(route_kinds[0]))

/* Returns 1 when the route mapping gives exactly one of route_kinds; otherwise reports it (none or several) and returns
 * 0. Presence counts even when a value was bad (that has been reported already). */
static int check_route_kind(parse_t *p, const hy_ynode_t *item)
{
    const char *given[NROUTE_KINDS];
    size_t n = 0;
    char names[128] = "", *o = names;

    for (size_t k = 0; k + 1 < item->nchildren; k += 2)
        for (size_t j = 0; j != NROUTE_KINDS; ++j)
            if (strcmp(item->children[k]->value, route_kinds[j]) == 0)
                given[n++] = route_kinds[j];
    if (n == 1)
        return 1;
    for (size_t j = 0; j != NROUTE_KINDS; ++j)
        o += snprintf(o, sizeof(names) - (size_t)(o - names), "%s\"%s\"",
                      j == 0                  ? ""
                      : j + 1 == NROUTE_KINDS ? " or "
                                              : ", ",
                      route_kinds[j]);
    if (n == 0)
        error_at(p, item, "missing %s (a route needs one of them)", names);
    else
        error_at(p, item, "give only one of %s (this route has \"%s\" and \"%s\")", names, given[0], given[1]);
    return 0;
}

static int on_routes(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_config_t *config = target;
    size_t n = value->nchildren;

    (void)d, (void)key;
    if (n == 0) {
        error_at(p, value, "at least one route is required");
        return -1;
    }
    config->routes = hy_xcalloc(n, sizeof(*config->routes));
    config->nroutes = n;
    p->route_added = hy_xcalloc(n, 1);
    p->handler_pos = hy_xcalloc(n, sizeof(*p->handler_pos));
    p->route_mw_set = hy_xcalloc(n, 1);
    for (size_t i = 0; i != n; ++i) {
        hy_route_t *route = &config->routes[i];
        route->index = i;
        route->methods = HY_METHOD_GET | HY_METHOD_HEAD;
        route->pos = value->children[i]->pos;
        route->static_.status = 200;
        route->static_.content_type = hy_xstrdup(DEFAULT_CONTENT_TYPE);
        route->static_.body = hy_xstrdup("");
        route->proxy.connect_timeout_ms = 5000;
        route->proxy.keepalive = 64;
        route->proxy.idle_timeout_ms = 30000;
    }
    for (size_t i = 0; i != n; ++i) {
        const hy_ynode_t *item = value->children[i];
        route_state_t rs = {.route = &config->routes[i]};
        size_t saved = push_index(p, i), errors_before = p->nerrors;
        if (expect_kind(p, item, HY_YNODE_MAPPING, NULL) == 0) {
            parse_mapping(p, item, CTX_ROUTE, &rs);
            if (check_route_kind(p, item) && rs.route->kind == HY_ROUTE_SQL && rs.route->sql != NULL)
                finish_sql_route(p, &rs, item);
            if (p->nerrors == errors_before && rs.path_ok)
                add_route(p, &rs);
        }
        pop_key(p, saved);
    }
    return 0;
}

/* ---- proxy routes ---------------------------------------------------------------------------------------------------- */

/*     proxy:
 *       upstream: http://catalog.default.svc:8080[/prefix]   required; http only, port 80 when not written
 *       timeout: 2s            until the upstream's response head (default: the route's deadline)
 *       connect_timeout: 5s    until connected
 *       keepalive: 64          connections kept for reuse (0: none)
 *       idle_timeout: 30s      how long a kept connection may stay idle
 *       host: upstream         or `preserve` (send the client's Host)
 */

static int on_route_proxy(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    route_state_t *rs = target;

    (void)d, (void)key;
    rs->route->kind = HY_ROUTE_PROXY;
    return parse_mapping(p, value, CTX_PROXY, &rs->route->proxy);
}

/* Splits an upstream URL "http://host[:port][/prefix]" into px. Returns NULL, or the reason it is refused. */
static const char *parse_upstream(const char *url, hy_proxy_t *px)
{
    static const char scheme[] = "http://";
    size_t slen = sizeof(scheme) - 1;

    if (strncasecmp(url, "https://", 8) == 0)
        return "https upstreams are not supported (use http://)";
    if (strncasecmp(url, scheme, slen) != 0)
        return "expected an http://host:port[/prefix] URL";
    for (const char *c = url; *c != '\0'; ++c) {
        if (*c == '?' || *c == '#')
            return "an upstream URL may not have a query or a fragment";
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return "an upstream URL may not contain spaces or control characters";
    }
    const char *auth = url + slen, *auth_end = auth + strcspn(auth, "/"), *host = auth, *host_end, *port = NULL;
    if (memchr(auth, '@', (size_t)(auth_end - auth)) != NULL)
        return "an upstream URL may not have user information";
    if (*host == '[') {
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (host_end == NULL)
            return "unterminated \"[\" in the upstream's host";
        char v6[64];
        struct in6_addr a;
        if ((size_t)(host_end - host - 1) >= sizeof(v6))
            return "bad IPv6 address in the upstream's host";
        snprintf(v6, sizeof(v6), "%.*s", (int)(host_end - host - 1), host + 1);
        if (inet_pton(AF_INET6, v6, &a) != 1)
            return "bad IPv6 address in the upstream's host";
        ++host;
        if (host_end + 1 != auth_end && host_end[1] != ':')
            return "expected \":port\" after the upstream's IPv6 address";
        port = host_end + 1 != auth_end ? host_end + 2 : NULL;
    } else {
        host_end = memchr(host, ':', (size_t)(auth_end - host));
        if (host_end != NULL)
            port = host_end + 1;
        else
            host_end = auth_end;
        if (host_end == host)
            return "the upstream URL has no host";
        for (const char *c = host; c != host_end; ++c)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '-'))
                return "bad character in the upstream's host (letters, digits, \".\" and \"-\", or [IPv6])";
    }
    unsigned long portnum = 80;
    if (port != NULL) {
        if (port == auth_end)
            return "empty port in the upstream URL";
        portnum = 0;
        for (const char *c = port; c != auth_end; ++c) {
            if (*c < '0' || *c > '9' || (portnum = portnum * 10 + (unsigned long)(*c - '0')) > 65535)
                return "the upstream's port must be 1-65535";
        }
        if (portnum == 0)
            return "the upstream's port must be 1-65535";
    }
    size_t plen = strlen(auth_end);
    while (plen != 0 && auth_end[plen - 1] == '/')
        --plen;
    px->host = hy_xmemdup(host, (size_t)(host_end - host));
    px->port = (uint16_t)portnum;
    px->authority = hy_xmemdup(auth, (size_t)(auth_end - auth));
    px->prefix = hy_xmemdup(auth_end, plen);
    return NULL;
}

static int on_proxy_upstream(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_proxy_t *px = target;

    (void)d, (void)key;
    if (get_string(p, value, &px->upstream) != 0)
        return -1;
    const char *why = parse_upstream(px->upstream, px);
    if (why != NULL) {
        error_at(p, value, "%s, got %s", why, qs(p, px->upstream));
        return -1;
    }
    return 0;
}

static int on_proxy_host(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    static const char *const modes[] = {"preserve", "upstream"};
    hy_proxy_t *px = target;
    char *s = scalar_value(p, value, NULL, 0);

    (void)d, (void)key;
    if (s == NULL)
        return -1;
    int ret = 0;
    if (strcmp(s, "preserve") == 0 || strcmp(s, "upstream") == 0) {
        px->preserve_host = s[0] == 'p';
    } else {
        const char *suggestion = hy_did_you_mean(s, modes, 2);
        if (suggestion != NULL)
            error_at(p, value, "unknown host mode %s (did you mean \"%s\"?)", qs(p, s), suggestion);
        else
            error_at(p, value, "unknown host mode %s (expected preserve or upstream)", qs(p, s));
        ret = -1;
    }
    free(s);
    return ret;
}

/* A proxy's `timeout` defaults to its route's deadline (routes[].timeout, else server.timeouts.request, else 30s). */
static void resolve_proxy_defaults(parse_t *p)
{
    hy_config_t *config = p->config;
    for (size_t i = 0; i != config->nroutes; ++i) {
        hy_route_t *r = &config->routes[i];
        if (r->kind != HY_ROUTE_PROXY || r->proxy.timeout_ms != 0)
            continue;
        r->proxy.timeout_ms = r->timeout_ms != 0                 ? r->timeout_ms
                              : config->timeouts.request_ms != 0 ? config->timeouts.request_ms
                                                                 : 30000;
    }
}

/* ---- database -------------------------------------------------------------------------------------------------------- */

/* Returns the value of `name`, or NULL when it is unset or empty. */
static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int on_database(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_config_t *config = target;
    (void)d;
    config->has_database = 1;
    p->database_key = key;
    return parse_mapping(p, value, CTX_DATABASE, target);
}

/* A database string; its node is kept so the checks after the environment overrides can point at it. */
static int on_db_string(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    (void)key;
    for (size_t i = 0; i != DB_NFIELDS; ++i)
        if (db_fields[i].offset == d->offset)
            p->db_nodes[i] = value;
    return get_string(p, value, (char **)((char *)target + d->offset));
}

/* DATABASE_URL, DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME, DB_SSLMODE win over the file (and configure a database
 * when the file has none); then the values are checked where they ended up. */
static void apply_database_env(parse_t *p)
{
    hy_config_t *config = p->config;
    for (size_t i = 0; i != DB_NFIELDS; ++i) {
        const char *v = env_value(db_fields[i].env);
        if (v == NULL)
            continue;
        char **field = (char **)((char *)config + db_fields[i].offset);
        free(*field);
        *field = hy_xstrdup(v);
        p->db_from_env[i] = 1;
        config->has_database = 1;
    }
    if (!config->has_database)
        return;
    if (p->db_from_env[0]) {
        /* DATABASE_URL from the environment is the whole connection: the file's connection fields do not amend it
         * (DB_* variables still do) */
        for (size_t i = 1; i != DB_NFIELDS; ++i) {
            if (p->db_from_env[i])
                continue;
            char **field = (char **)((char *)config + db_fields[i].offset);
            free(*field);
            *field = NULL;
            p->db_nodes[i] = NULL;
        }
    }
    for (size_t i = 0; i != DB_NFIELDS; ++i) {
        const char *v = *(char **)((char *)config + db_fields[i].offset);
        if (v == NULL)
            continue;
        hy_pos_t pos = {1, 1};
        if (p->db_nodes[i] != NULL)
            pos = p->db_nodes[i]->pos;
        else if (p->database_key != NULL)
            pos = p->database_key->pos;
        size_t saved = push_key(p, "database");
        push_key(p, db_fields[i].key);
        char prefix[64] = "";
        if (p->db_from_env[i])
            snprintf(prefix, sizeof(prefix), "%s=", db_fields[i].env);
        uint64_t port;
        if (db_fields[i].offset == OFF(database.port) && (parse_uint(v, &port) != 0 || port < 1 || port > 65535)) {
            error_pos(p, pos, "%s%s: not a port number (1-65535)", prefix, qs(p, v));
        } else if (db_fields[i].offset == OFF(database.sslmode) && strcmp(v, "disable") != 0 && strcmp(v, "allow") != 0 &&
                   strcmp(v, "prefer") != 0 && strcmp(v, "require") != 0 && strcmp(v, "verify-ca") != 0 &&
                   strcmp(v, "verify-full") != 0) {
            error_pos(p, pos, "%s%s: expected one of disable, allow, prefer, require, verify-ca, verify-full", prefix, qs(p, v));
        } else if (db_fields[i].offset == OFF(database.url)) {
            char *err = NULL;
            hy_pq_require();
            PQconninfoOption *opts = PQconninfoParse(v, &err);
            if (opts == NULL || (strncmp(v, "postgresql://", 13) != 0 && strncmp(v, "postgres://", 11) != 0)) {
                /* the URL may hold a password: never echo it */
                error_pos(p, pos, "%snot a PostgreSQL URL (postgresql://user@host:port/dbname?sslmode=...)",
                          p->db_from_env[i] ? "DATABASE_URL: " : "");
            }
            if (opts != NULL)
                PQconninfoFree(opts);
            if (err != NULL)
                PQfreemem(err);
        }
        pop_key(p, saved);
    }
}

/* A route whose handler runs statements needs a database. */
static void check_database_routes(parse_t *p)
{
    hy_config_t *config = p->config;
    if (config->has_database)
        return;
    for (size_t i = 0; i != config->nroutes; ++i) {
        const hy_route_t *r = &config->routes[i];
        if (r->kind == HY_ROUTE_SQL) {
            size_t saved = push_key(p, "routes");
            push_index(p, i);
            error_pos(p, r->pos, "an sql route needs a database (add a \"database\" section or set DATABASE_URL)");
            pop_key(p, saved);
            continue;
        }
        if (r->kind != HY_ROUTE_HANDLER || r->handler == NULL || r->handler->stmts == NULL)
            continue;
        size_t saved = push_key(p, "routes");
        push_index(p, i);
        push_key(p, "handler");
        error_pos(p, p->handler_pos[i], "handler \"%s\" needs a database (add a \"database\" section or set DATABASE_URL)",
                  r->handler_name);
        pop_key(p, saved);
    }
}

/* ---- middleware and observability ----------------------------------------------------------------------------------- */

static const char *const mw_names[HY_MW_NKINDS] = {"request_id", "client_ip", "access_log", "metrics", "admission", "timeout"};

const char *hy_mw_name(hy_mw_kind_t kind)
{
    return kind < HY_MW_NKINDS ? mw_names[kind] : "?";
}

/* Reads a sequence of middleware names into *mw. Returns 0, or -1 after reporting (unknown name with a suggestion,
 * a name given twice, too many). */
static int parse_mw_list(parse_t *p, const hy_ynode_t *value, hy_middleware_t *mw)
{
    int ret = 0;
    memset(mw, 0, sizeof(*mw));
    for (size_t i = 0; i != value->nchildren; ++i) {
        const hy_ynode_t *item = value->children[i];
        size_t saved = push_index(p, i);
        char *s;
        if (expect_kind(p, item, HY_YNODE_SCALAR, "a middleware name") != 0 || (s = scalar_value(p, item, NULL, 0)) == NULL) {
            ret = -1;
            pop_key(p, saved);
            continue;
        }
        size_t k = 0;
        while (k != HY_MW_NKINDS && strcmp(s, mw_names[k]) != 0)
            ++k;
        if (k == HY_MW_NKINDS) {
            const char *suggestion = hy_did_you_mean(s, (const char **)mw_names, HY_MW_NKINDS);
            if (suggestion != NULL)
                error_at(p, item, "unknown middleware %s (did you mean \"%s\"?)", qs(p, s), suggestion);
            else
                error_at(p, item, "unknown middleware %s (known: request_id, client_ip, access_log, metrics, admission, timeout)",
                         qs(p, s));
            ret = -1;
        } else if ((mw->mask & (1u << k)) != 0) {
            error_at(p, item, "middleware \"%s\" is listed twice", mw_names[k]);
            ret = -1;
        } else if (mw->n == HY_MW_MAX) {
            error_at(p, item, "too many middleware (at most %d)", HY_MW_MAX);
            ret = -1;
        } else {
            mw->kinds[mw->n++] = (unsigned char)k;
            mw->mask |= 1u << k;
        }
        free(s);
        pop_key(p, saved);
    }
    return ret;
}

static int on_middleware(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    (void)d, (void)key;
    return parse_mw_list(p, value, &((hy_config_t *)target)->middleware);
}

static int on_route_middleware(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    route_state_t *rs = target;
    (void)d, (void)key;
    p->route_mw_set[rs->route->index] = 1;
    return parse_mw_list(p, value, &rs->route->middleware);
}

static int on_admin(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_config_t *config = target;
    (void)d, (void)key;
    config->admin = hy_xcalloc(1, sizeof(*config->admin));
    config->admin->pos = value->pos;
    p->admin_state.listener = config->admin;
    return parse_mapping(p, value, CTX_ADMIN, &p->admin_state);
}

static int on_trusted_proxies(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_config_t *config = target;
    int ret = 0;
    (void)d, (void)key;
    free(config->trusted_proxies);
    config->trusted_proxies = hy_xcalloc(value->nchildren + 1, sizeof(*config->trusted_proxies));
    config->ntrusted_proxies = 0;
    for (size_t i = 0; i != value->nchildren; ++i) {
        const hy_ynode_t *item = value->children[i];
        size_t saved = push_index(p, i);
        char *s, err[256];
        if (expect_kind(p, item, HY_YNODE_SCALAR, "a network (CIDR)") != 0 || (s = scalar_value(p, item, NULL, 0)) == NULL) {
            ret = -1;
        } else {
            if (hy_cidr_parse(s, &config->trusted_proxies[config->ntrusted_proxies], err, sizeof(err)) != 0) {
                error_at(p, item, "%s", err);
                ret = -1;
            } else {
                ++config->ntrusted_proxies;
            }
            free(s);
        }
        pop_key(p, saved);
    }
    return ret;
}

static int on_log_path(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_config_t *config = target;
    char *s;
    (void)d, (void)key;
    if ((s = scalar_value(p, value, NULL, 0)) == NULL)
        return -1;
    free(config->access_log_path);
    config->access_log_path = NULL;
    if (strcmp(s, "stdout") == 0 || strcmp(s, "-") == 0) {
        free(s);
        return 0;
    }
    if (s[0] == '\0') {
        error_at(p, value, "expected \"stdout\" or a file path, got an empty string");
        free(s);
        return -1;
    }
    if (s[0] != '/' && p->dir[0] != '\0') {
        /* relative to the config file's directory, like the TLS files */
        size_t n = strlen(p->dir) + strlen(s) + 1;
        char *abs = hy_xmalloc(n);
        snprintf(abs, n, "%s%s", p->dir, s);
        free(s);
        s = abs;
    }
    config->access_log_path = s;
    return 0;
}

/* Parses a decimal number (digits, one optional '.', optional exponent). Returns 0 or -1. */
static int parse_number(const char *s, double *out)
{
    char *end;
    /* decimal only: strtod alone would also take hex floats, "inf" and "nan" */
    const char *c = s;
    if (*c == '-')
        ++c;
    if (!(*c >= '0' && *c <= '9') && !(*c == '.' && c[1] >= '0' && c[1] <= '9'))
        return -1;
    for (; *c != '\0'; ++c)
        if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == 'e' || *c == 'E' || *c == '-' || *c == '+'))
            return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (*end != '\0' || errno != 0 || v != v)
        return -1;
    *out = v;
    return 0;
}

static int on_log_sample(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_config_t *config = target;
    char *s;
    double v;
    int ret = -1;
    (void)d, (void)key;
    if ((s = scalar_value(p, value, NULL, 0)) == NULL)
        return -1;
    if (parse_number(s, &v) != 0 || v < 0 || v > 1)
        error_at(p, value, "expected a number from 0 to 1 (the share of requests logged), got %s", qs(p, s));
    else
        config->access_log_sample = v, ret = 0;
    free(s);
    return ret;
}

static int on_log_exclude(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    (void)d, (void)key, (void)target;
    p->log_exclude = value; /* resolved against the routes once they are parsed */
    return 0;
}

static int on_buckets(parse_t *p, const directive_t *d, const hy_ynode_t *key, const hy_ynode_t *value, void *target)
{
    hy_config_t *config = target;
    int ret = 0;
    (void)d, (void)key;
    if (value->nchildren == 0 || value->nchildren > 64) {
        error_at(p, value, "expected 1 to 64 bucket bounds");
        return -1;
    }
    free(config->buckets);
    config->buckets = hy_xcalloc(value->nchildren, sizeof(double));
    config->nbuckets = value->nchildren;
    for (size_t i = 0; i != value->nchildren; ++i) {
        const hy_ynode_t *item = value->children[i];
        size_t saved = push_index(p, i);
        char *s;
        double v;
        if (expect_kind(p, item, HY_YNODE_SCALAR, "a number of seconds") != 0 || (s = scalar_value(p, item, NULL, 0)) == NULL) {
            ret = -1;
        } else {
            if (parse_number(s, &v) != 0 || v <= 0 || v > 1e9) {
                error_at(p, item, "expected a positive number of seconds, got %s", qs(p, s));
                ret = -1;
            } else if (i != 0 && v <= config->buckets[i - 1]) {
                error_at(p, item, "bucket bounds must increase (%s is not above %g)", s, config->buckets[i - 1]);
                ret = -1;
            } else {
                config->buckets[i] = v;
            }
            free(s);
        }
        pop_key(p, saved);
    }
    return ret;
}

/* Routes without their own list take the global one; access_log.exclude names routes by path. */
static void resolve_middleware(parse_t *p)
{
    hy_config_t *config = p->config;
    for (size_t i = 0; i != config->nroutes; ++i)
        if (!p->route_mw_set[i])
            config->routes[i].middleware = config->middleware;
    if (p->log_exclude == NULL)
        return;
    for (size_t k = 0; k != p->log_exclude->nchildren; ++k) {
        const hy_ynode_t *item = p->log_exclude->children[k];
        size_t saved = push_key(p, "access_log.exclude");
        push_index(p, k);
        char *s;
        if (expect_kind(p, item, HY_YNODE_SCALAR, "a route path") == 0 && (s = scalar_value(p, item, NULL, 0)) != NULL) {
            int found = 0;
            for (size_t i = 0; i != config->nroutes; ++i) {
                if (config->routes[i].path != NULL && strcmp(config->routes[i].path, s) == 0) {
                    config->routes[i].log_excluded = 1;
                    found = 1;
                }
            }
            if (!found)
                error_at(p, item, "no route has the path %s", qs(p, s));
            free(s);
        }
        pop_key(p, saved);
    }
}

/* ---- environment overrides ------------------------------------------------------------------------------------------- */

/* Where an override error points: the overridden node, else the `server` key, else 1:1. */
static hy_pos_t override_pos(const parse_t *p, const hy_ynode_t *node)
{
    hy_pos_t pos = {1, 1};
    if (node != NULL)
        pos = node->pos;
    else if (p->server_key != NULL)
        pos = p->server_key->pos;
    return pos;
}

/* SERVER_PORT, SERVER_READ_TIMEOUT, SERVER_WRITE_TIMEOUT, SERVER_IDLE_TIMEOUT: each wins over the file. A timeout
 * written as a bare integer is a number of seconds. */
static void apply_env_overrides(parse_t *p)
{
    static const struct {
        const char *var; /* the environment variable */
        const char *key; /* the key it overrides under server.timeouts */
        size_t offset;   /* the field in hy_config_t */
    } timeouts[ENV_NSLOTS] = {
        [ENV_READ] = {"SERVER_READ_TIMEOUT", "read", OFF(timeouts.read_ms)},
        [ENV_WRITE] = {"SERVER_WRITE_TIMEOUT", "write", OFF(timeouts.write_ms)},
        [ENV_IDLE] = {"SERVER_IDLE_TIMEOUT", "idle", OFF(timeouts.idle_ms)},
    };
    hy_config_t *config = p->config;
    const char *v;
    size_t saved;

    if ((v = env_value("SERVER_PORT")) != NULL) {
        size_t i;
        for (i = 0; i != config->nlisteners; ++i)
            if (!p->listeners[i].has_tls)
                break;
        if (i == config->nlisteners) {
            saved = push_key(p, "server.listen");
            error_pos(p, override_pos(p, p->listen_node), "SERVER_PORT=%s: there is no plain (non-TLS) listener to override",
                      qs(p, v));
            pop_key(p, saved);
        } else {
            uint64_t port;
            saved = push_key(p, "server.listen");
            push_index(p, i);
            push_key(p, "port");
            if (parse_uint(v, &port) != 0 || port < 1 || port > 65535) {
                hy_pos_t pos = p->listeners[i].port_node != NULL ? p->listeners[i].port_node->pos : config->listeners[i].pos;
                error_pos(p, pos, "SERVER_PORT=%s: not a port number (1-65535)", qs(p, v));
            } else {
                config->listeners[i].port = (uint16_t)port;
                p->listeners[i].port_ok = 1;
            }
            pop_key(p, saved);
        }
    }

    for (size_t k = ENV_READ; k != ENV_NSLOTS; ++k) {
        uint64_t ms;
        if ((v = env_value(timeouts[k].var)) == NULL)
            continue;
        saved = push_key(p, "server.timeouts");
        push_key(p, timeouts[k].key);
        hy_pos_t pos = override_pos(p, p->timeout_nodes[k]);
        int ok = 0;
        if (parse_uint(v, &ms) == 0)
            ok = ms <= UINT64_MAX / 1000 && (ms *= 1000, 1);
        else
            ok = hy_parse_duration(v, &ms) == 0;
        if (!ok)
            error_pos(p, pos, "%s=%s: not a duration (e.g. 15s, 1m30s, or a number of seconds)", timeouts[k].var, qs(p, v));
        else if (ms == 0)
            error_pos(p, pos, "%s=%s: must be greater than 0", timeouts[k].var, qs(p, v));
        else
            *(uint64_t *)((char *)config + timeouts[k].offset) = ms;
        pop_key(p, saved);
    }
}

/* ---- cross-checks ---------------------------------------------------------------------------------------------------- */

/* Writes "host:port", or "[host]:port" for an IPv6 address. Returns buf. */
static char *format_hostport(const hy_listener_t *l, char *buf, size_t bufsize)
{
    const char *host = l->host != NULL ? l->host : "?";
    if (strchr(host, ':') != NULL)
        snprintf(buf, bufsize, "[%s]:%u", host, (unsigned)l->port);
    else
        snprintf(buf, bufsize, "%s:%u", host, (unsigned)l->port);
    return buf;
}

/* Two listeners on the same host:port (after the overrides) is an error at the later one. */
static void check_listeners(parse_t *p)
{
    hy_config_t *config = p->config;
    char hp[300];

    for (size_t i = 0; i != config->nlisteners; ++i) {
        const hy_listener_t *l = &config->listeners[i];
        if (l->host == NULL || !p->listeners[i].port_ok)
            continue;
        for (size_t j = 0; j != i; ++j) {
            const hy_listener_t *e = &config->listeners[j];
            if (e->host == NULL || !p->listeners[j].port_ok || e->port != l->port || strcmp(e->host, l->host) != 0)
                continue;
            size_t saved = push_key(p, "server.listen");
            push_index(p, i);
            error_pos(p, l->pos, "duplicate listener %s (already declared by server.listen[%zu] at line %u)",
                      format_hostport(l, hp, sizeof(hp)), j, e->pos.line);
            pop_key(p, saved);
            break;
        }
    }
    const hy_listener_t *a = config->admin;
    if (a == NULL || a->host == NULL || !p->admin_state.port_ok)
        return;
    for (size_t j = 0; j != config->nlisteners; ++j) {
        const hy_listener_t *e = &config->listeners[j];
        if (e->host == NULL || !p->listeners[j].port_ok || e->port != a->port || strcmp(e->host, a->host) != 0)
            continue;
        size_t saved = push_key(p, "server.admin");
        error_pos(p, a->pos,
                  "%s is already a public listener (server.listen[%zu] at line %u); the admin listener needs its own port",
                  format_hostport(a, hp, sizeof(hp)), j, e->pos.line);
        pop_key(p, saved);
        break;
    }
}

/* ---- load, parse, free ----------------------------------------------------------------------------------------------- */

/* The directory part of `path` with its trailing '/', or "" (malloc'ed). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? hy_xmemdup(path, (size_t)(slash - path) + 1) : hy_xstrdup("");
}

uint64_t hy_config_hash(const char *text, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i != len; ++i)
        h = (h ^ (unsigned char)text[i]) * 0x100000001b3u;
    return h;
}

hy_config_t *hy_config_parse(const char *path, const char *text, size_t len, hy_diags_t *diags)
{
    hy_config_t *config = hy_xcalloc(1, sizeof(*config));
    hy_ynode_t *root = NULL;
    parse_t p;

    memset(&p, 0, sizeof(p));
    p.file = path;
    p.dir = dir_of(path);
    p.diags = diags;
    p.config = config;

    config->file = hy_xstrdup(path);
    config->threads_auto = 1;
    config->timeouts.handshake_ms = 10000;
    config->timeouts.read_ms = 15000;
    config->timeouts.write_ms = 15000;
    config->timeouts.idle_ms = 60000;
    config->timeouts.request_ms = 30000;
    config->timeouts.shutdown_ms = 20000;
    config->limits.max_connections = 10000;
    config->limits.max_request_body = UINT64_C(1) << 20;
    config->limits.max_concurrent_streams = LIBH2O_MAX_STREAMS;
    config->router = hy_router_new();
    config->access_log_sample = 1.0;
    config->loaded_at = (int64_t)time(NULL);
    config->source_hash = hy_config_hash(text != NULL ? text : "", text != NULL ? len : 0);
    config->database.max_open = 25;
    config->database.max_idle = 10;
    config->database.max_lifetime_ms = 5 * 60 * 1000;
    config->database.acquire_timeout_ms = 1000;
    config->database.queue_limit = 10000;
    config->database.connect_timeout_ms = 5000;
    config->database.pipeline_depth = 16;
    config->database.breaker_threshold = 5;
    config->database.breaker_cooldown_ms = 5000;
    config->limits.max_resets = 100;
    config->limits.abuse_cooldown_ms = 10000;
    config->limits.max_active_requests = 256;
    config->limits.max_headers = 100;
    config->limits.max_header_bytes = 16384;

    if (hy_yaml_load(path, text != NULL ? text : "", text != NULL ? len : 0, &root, diags) != 0)
        goto Error;
    if (root == NULL || hy_ynode_is_null(root)) {
        hy_diags_add(diags, path, root != NULL ? root->pos.line : 1, root != NULL ? root->pos.col : 1, NULL,
                     "the configuration is empty (expected a mapping with \"server\" and \"routes\")");
        goto Error;
    }
    if (root->kind != HY_YNODE_MAPPING) {
        error_at(&p, root, "expected a mapping at the top level, got %s", got_name(root));
        goto Error;
    }
    parse_mapping(&p, root, CTX_ROOT, config);
    apply_env_overrides(&p);
    apply_database_env(&p);
    check_listeners(&p);
    check_database_routes(&p);
    resolve_proxy_defaults(&p);
    resolve_middleware(&p);
    if (p.nerrors != 0)
        goto Error;
    if (config->threads_auto) {
        unsigned n = hy_cpu_count();
        config->threads = n < MAX_THREADS ? n : MAX_THREADS;
    }
    goto Exit;

Error:
    hy_config_free(config);
    config = NULL;
Exit:
    hy_ynode_free(root);
    free(p.dir);
    free(p.listeners);
    free(p.route_added);
    free(p.handler_pos);
    free(p.route_mw_set);
    return config;
}

hy_config_t *hy_config_load(const char *path, hy_diags_t *diags)
{
    char ebuf[128], *text = NULL;
    size_t len = 0;
    hy_config_t *config = NULL;
    FILE *fp = fopen(path, "rb");

    if (fp == NULL) {
        hy_diags_add(diags, path, 0, 0, NULL, "cannot read: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
        return NULL;
    }
    text = hy_xmalloc(CONFIG_MAX_FILE_SIZE + 1);
    len = fread(text, 1, CONFIG_MAX_FILE_SIZE + 1, fp);
    if (ferror(fp)) {
        hy_diags_add(diags, path, 0, 0, NULL, "cannot read: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
    } else if (len > CONFIG_MAX_FILE_SIZE) {
        hy_diags_add(diags, path, 0, 0, NULL, "file is larger than %uMiB", CONFIG_MAX_FILE_SIZE >> 20);
    } else {
        config = hy_config_parse(path, text, len, diags);
    }
    fclose(fp);
    free(text);
    return config;
}

void hy_config_free(hy_config_t *config)
{
    if (config == NULL)
        return;
    for (size_t i = 0; i != config->nlisteners; ++i) {
        hy_listener_t *l = &config->listeners[i];
        free(l->host);
        if (l->tls != NULL) {
            free(l->tls->certificate);
            free(l->tls->key);
            free(l->tls);
        }
    }
    free(config->listeners);
    for (size_t i = 0; i != config->nroutes; ++i) {
        hy_route_t *r = &config->routes[i];
        free(r->path);
        free(r->handler_name);
        free(r->static_.content_type);
        free(r->static_.body);
        for (size_t j = 0; j != r->static_.nheaders; ++j) {
            free(r->static_.headers[j].name);
            free(r->static_.headers[j].value);
        }
        free(r->static_.headers);
        hy_sql_free(r->sql);
        free(r->proxy.upstream);
        free(r->proxy.host);
        free(r->proxy.authority);
        free(r->proxy.prefix);
    }
    free(config->routes);
    if (config->router != NULL)
        hy_router_free(config->router);
    hy_database_t *db = &config->database;
    free(db->url);
    free(db->host);
    free(db->port);
    free(db->user);
    free(db->password);
    free(db->name);
    free(db->sslmode);
    free(db->migrations);
    free(config->trusted_proxies);
    free(config->access_log_path);
    free(config->buckets);
    if (config->admin != NULL) {
        free(config->admin->host);
        free(config->admin);
    }
    free(config->file);
    free(config);
}

/* ---- summary --------------------------------------------------------------------------------------------------------- */

void hy_config_print_summary(const hy_config_t *config, FILE *out)
{
    char a[32], b[32], c[32], d[32], e[32], f[32], hp[300], methods[64];
    size_t mwidth = 0, pwidth = 0;

    fprintf(out, "listeners:\n");
    for (size_t i = 0; i != config->nlisteners; ++i) {
        const hy_listener_t *l = &config->listeners[i];
        if (l->tls == NULL)
            fprintf(out, "  %s plain (HTTP/1.1, h2c)\n", format_hostport(l, hp, sizeof(hp)));
        else
            fprintf(out, "  %s tls (h2, HTTP/1.1; min %s)\n", format_hostport(l, hp, sizeof(hp)),
                    l->tls->min_version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2");
    }
    fprintf(out, "threads: %u%s\n", config->threads, config->threads_auto ? " (auto)" : "");
    const hy_timeouts_t *t = &config->timeouts;
    fprintf(out, "timeouts: handshake=%s read=%s write=%s idle=%s request=%s shutdown=%s\n",
            hy_format_duration(t->handshake_ms, a, sizeof(a)), hy_format_duration(t->read_ms, b, sizeof(b)),
            hy_format_duration(t->write_ms, c, sizeof(c)), hy_format_duration(t->idle_ms, d, sizeof(d)),
            hy_format_duration(t->request_ms, e, sizeof(e)), hy_format_duration(t->shutdown_ms, f, sizeof(f)));
    fprintf(out, "limits: max_connections=%ju max_active_requests=%ju max_request_body=%s http2.max_concurrent_streams=%u\n",
            (uintmax_t)config->limits.max_connections, (uintmax_t)config->limits.max_active_requests,
            hy_format_size(config->limits.max_request_body, a, sizeof(a)), (unsigned)config->limits.max_concurrent_streams);

    if (config->admin != NULL)
        fprintf(out, "admin: %s (metrics, status, health, ready only)\n", format_hostport(config->admin, hp, sizeof(hp)));
    fprintf(out, "middleware:");
    for (size_t i = 0; i != config->middleware.n; ++i)
        fprintf(out, "%s %s", i == 0 ? "" : ",", hy_mw_name((hy_mw_kind_t)config->middleware.kinds[i]));
    fprintf(out, "%s\n", config->middleware.n == 0 ? " none" : "");
    if (config->has_database) {
        const hy_database_t *db = &config->database;
        char where[256];
        hy_database_describe(db, where, sizeof(where));
        fprintf(out, "database: %s%s%s\n", where, db->sslmode != NULL ? " sslmode=" : "", db->sslmode != NULL ? db->sslmode : "");
        fprintf(out,
                "pool: max_open=%ju max_idle=%ju max_lifetime=%s max_idle_time=%s acquire_timeout=%s queue_limit=%ju "
                "connect_timeout=%s statement_timeout=%s pipeline_depth=%ju\n",
                (uintmax_t)db->max_open, (uintmax_t)db->max_idle, hy_format_duration(db->max_lifetime_ms, a, sizeof(a)),
                hy_format_duration(db->max_idle_time_ms, b, sizeof(b)), hy_format_duration(db->acquire_timeout_ms, c, sizeof(c)),
                (uintmax_t)db->queue_limit, hy_format_duration(db->connect_timeout_ms, d, sizeof(d)),
                hy_format_duration(db->statement_timeout_ms, e, sizeof(e)), (uintmax_t)db->pipeline_depth);
    }
    fprintf(out, "routes:\n");
    for (size_t i = 0; i != config->nroutes; ++i) {
        size_t m = strlen(format_methods(config->routes[i].methods, methods, sizeof(methods)));
        size_t n = strlen(config->routes[i].path);
        mwidth = m > mwidth ? m : mwidth;
        pwidth = n > pwidth ? n : pwidth;
    }
    for (size_t i = 0; i != config->nroutes; ++i) {
        const hy_route_t *r = &config->routes[i];
        fprintf(out, "  %-*s  %-*s  -> ", (int)mwidth, format_methods(r->methods, methods, sizeof(methods)), (int)pwidth, r->path);
        if (r->kind == HY_ROUTE_HANDLER) {
            fprintf(out, "handler %s", r->handler_name);
        } else if (r->kind == HY_ROUTE_SQL) {
            static const char *const results[] = {"one", "many", "none"};
            fprintf(out, "sql %s, %zu param%s, status %d%s", results[r->sql->result], r->sql->nparams,
                    r->sql->nparams == 1 ? "" : "s", (int)r->sql->status,
                    r->sql->idempotent ? ", retried on a lost connection" : "");
        } else if (r->kind == HY_ROUTE_PROXY) {
            const hy_proxy_t *px = &r->proxy;
            fprintf(out, "proxy %s (timeout=%s connect_timeout=%s keepalive=%ju idle_timeout=%s host=%s)", px->upstream,
                    hy_format_duration(px->timeout_ms, b, sizeof(b)), hy_format_duration(px->connect_timeout_ms, c, sizeof(c)),
                    (uintmax_t)px->keepalive, hy_format_duration(px->idle_timeout_ms, d, sizeof(d)),
                    px->preserve_host ? "preserve" : "upstream");
        } else {
            fprintf(out, "static %d %s (%zu bytes", r->static_.status, r->static_.content_type, r->static_.body_len);
            if (r->static_.nheaders != 0)
                fprintf(out, ", %zu header%s", r->static_.nheaders, r->static_.nheaders == 1 ? "" : "s");
            fprintf(out, ")");
        }
        if (r->timeout_ms != 0)
            fprintf(out, " timeout=%s", hy_format_duration(r->timeout_ms, a, sizeof(a)));
        fprintf(out, "\n");
    }
}
