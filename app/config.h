/* config.h: the typed, validated configuration model that hydrant builds from one YAML file plus the environment. */
#ifndef HY_CONFIG_H
#define HY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "handler.h"
#include "router.h"
#include "database.h"
#include "clientip.h"

/* ---- diagnostics ------------------------------------------------------------------------------------------------------ */

/* Every config error is one line: "FILE:LINE:COL: key.path: message" (line and column 1-based). */
typedef struct st_hy_diags_t {
    char **msgs;  /* formatted messages, each malloc'ed, in the order found */
    size_t count; /* number of messages */
    size_t cap;   /* allocated slots */
} hy_diags_t;

/* Appends one message. `keypath` may be NULL or "" ("FILE:LINE:COL: message"); `line` 0 means the message is about the
 * file as a whole ("FILE: message", e.g. when it cannot be read). The message is copied. */
void hy_diags_add(hy_diags_t *d, const char *file, unsigned line, unsigned col, const char *keypath, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Writes every message, one per line, to `out`. */
void hy_diags_print(const hy_diags_t *d, FILE *out);
/* Frees the messages; the struct may be reused. */
void hy_diags_clear(hy_diags_t *d);

/* Writes `len` bytes of `s` into buf as a double-quoted, one-line string for a message: control bytes, quotes and
 * backslashes are escaped and a long value is cut with "...". Always NUL-terminates (bufsize >= 8). Returns buf. */
char *hy_quote(const char *s, size_t len, char *buf, size_t bufsize);
/* Returns the candidate most likely meant by the unknown `word` (case-insensitive edit distance, a prefix of at least
 * 3 letters, or the part before the first '.' of a dotted name like "users.get"), or NULL when none is close enough.
 * The result points into `candidates`. */
const char *hy_did_you_mean(const char *word, const char *const *candidates, size_t ncandidates);

/* ---- units ------------------------------------------------------------------------------------------------------------ */

/* Parses a duration: "250ms", "5s", "2m", "1h", compounds "1m30s", or "0". Returns 0 and the value in milliseconds, or -1. */
int hy_parse_duration(const char *s, uint64_t *ms);
/* Parses a size: "512", "64KiB", "1MiB", "1GiB", "10KB"/"10MB" (powers of 1000). Returns 0 and the value in bytes, or -1. */
int hy_parse_size(const char *s, uint64_t *bytes);
/* Formats a duration/size back in the shortest exact unit ("1500ms", "2m", "64KiB") into buf. Returns buf. */
char *hy_format_duration(uint64_t ms, char *buf, size_t bufsize);
char *hy_format_size(uint64_t bytes, char *buf, size_t bufsize);

/* Number of CPUs this process may use: the sched_getaffinity mask, lowered to ceil(quota/period) of a cgroup v2
 * `cpu.max` quota when one applies (read from /proc/self/cgroup + /sys/fs/cgroup). Always >= 1. */
unsigned hy_cpu_count(void);
/* The quota part, for tests: parses the contents of a cgroup v2 cpu.max file ("max 100000", "150000 100000") and
 * returns the CPU limit rounded up, or 0 when unlimited or malformed. */
unsigned hy_cpu_max_parse(const char *contents);
/* The cgroup part, for tests: finds the process's cgroup v2 path in `proc_cgroup` (normally "/proc/self/cgroup", the
 * line "0::/path"), reads `cpu.max` in that directory under `cgroup_root` (normally "/sys/fs/cgroup") and in each parent
 * up to the root, and returns the smallest limit found, or 0 when there is none. */
unsigned hy_cpu_cgroup_limit(const char *proc_cgroup, const char *cgroup_root);

/* ---- the model -------------------------------------------------------------------------------------------------------- */

typedef struct st_hy_pos_t {
    unsigned line; /* 1-based line of the YAML node */
    unsigned col;  /* 1-based column of the YAML node */
} hy_pos_t;

typedef struct st_hy_header_t {
    char *name;  /* header name, lower-cased */
    char *value; /* header value */
} hy_header_t;

typedef struct st_hy_tls_t {
    char *certificate; /* path of the PEM certificate chain */
    char *key;         /* path of the PEM private key (never logged, its contents never read into the model) */
    int min_version;   /* TLS1_2_VERSION or TLS1_3_VERSION (OpenSSL constants) */
} hy_tls_t;

typedef struct st_hy_listener_t {
    char *host;    /* address to bind ("127.0.0.1", "::1", "0.0.0.0", "::" or a name resolved at bind time) */
    uint16_t port; /* TCP port, 1-65535 */
    hy_tls_t *tls; /* NULL for a plain listener (HTTP/1.1 + h2c) */
    hy_pos_t pos;  /* position of the listener's mapping in the file */
} hy_listener_t;

typedef struct st_hy_static_t {
    int status;           /* HTTP status, 200-599; default 200 */
    char *content_type;   /* default "text/plain; charset=utf-8" */
    char *body;           /* response body (may contain NUL bytes); default "" */
    size_t body_len;      /* length of body */
    hy_header_t *headers; /* extra response headers, in file order */
    size_t nheaders;      /* number of headers */
} hy_static_t;

/* `proxy:` forwards the route's requests to an HTTP/1.1 upstream (app/proxy.c). */
typedef struct st_hy_proxy_t {
    char *upstream;              /* `upstream` as written ("http://catalog.default.svc:8080/v2") */
    char *host;                  /* its host: a name, an IPv4 address or an IPv6 address without brackets */
    uint16_t port;               /* its port (80 when not written) */
    char *authority;             /* "host:port" as written in the URL, sent as Host unless `host: preserve` */
    char *prefix;                /* path prefix without a trailing '/', "" for none */
    uint64_t timeout_ms;         /* `timeout`: until the upstream's response head; default the route's deadline */
    uint64_t connect_timeout_ms; /* `connect_timeout`: until connected; default 5s */
    uint64_t keepalive;          /* `keepalive`: connections kept open for reuse once their request ends; default 64 */
    uint64_t idle_timeout_ms;    /* `idle_timeout`: how long a kept connection may stay idle; default 30s */
    int preserve_host;           /* `host: preserve` sends the client's Host; `upstream` (default) the upstream's */
    struct st_hy_upstream_t *rt; /* the process-wide connection pool, set by hy_proxy_bind (NULL until then) */
} hy_proxy_t;

typedef enum en_hy_route_kind_t {
    HY_ROUTE_HANDLER = 0, /* `handler: NAME` */
    HY_ROUTE_STATIC,      /* `static: {...}` */
    HY_ROUTE_SQL,         /* `sql: {...}`: a parameterised query answered as JSON (sqlroute.h) */
    HY_ROUTE_PROXY        /* `proxy: {...}` */
} hy_route_kind_t;

struct st_hy_sql_t;

/* ---- middleware ------------------------------------------------------------------------------------------------------ */

typedef enum en_hy_mw_kind_t {
    HY_MW_REQUEST_ID = 0, /* keep a sane X-Request-Id or make one; echo it */
    HY_MW_CLIENT_IP,      /* the client address, from forwarded headers only behind trusted proxies */
    HY_MW_ACCESS_LOG,     /* one JSON line per request */
    HY_MW_METRICS,        /* Prometheus counters and histograms */
    HY_MW_ADMISSION,      /* max_in_flight: 503 + Retry-After at once beyond it */
    HY_MW_TIMEOUT,        /* the route's deadline: 504 and its database statement cancelled */
    HY_MW_NKINDS
} hy_mw_kind_t;

#define HY_MW_MAX 16 /* most middleware one list may name */

typedef struct st_hy_middleware_t {
    unsigned char kinds[HY_MW_MAX]; /* hy_mw_kind_t, in the order written */
    size_t n;                       /* number of kinds */
    unsigned mask;                  /* 1u << kind for each */
} hy_middleware_t;

/* The name of a middleware kind ("request_id"). */
const char *hy_mw_name(hy_mw_kind_t kind);

typedef struct st_hy_route_t {
    char *path;                      /* the template as written, e.g. "/api/v1/users/{id:int}" */
    unsigned methods;                /* HY_METHOD_* mask; default GET|HEAD */
    hy_route_kind_t kind;            /* which of handler/static/proxy */
    char *handler_name;              /* for HY_ROUTE_HANDLER */
    const hy_handler_def_t *handler; /* for HY_ROUTE_HANDLER, resolved from the registry */
    hy_static_t static_;             /* for HY_ROUTE_STATIC */
    struct st_hy_sql_t *sql;         /* for HY_ROUTE_SQL (owned) */
    hy_proxy_t proxy;                /* for HY_ROUTE_PROXY */
    hy_middleware_t middleware;      /* the middleware that run for this route (its own list, else the global one) */
    int log_excluded;                /* access_log.exclude names this route */
    uint64_t max_in_flight;          /* route's admission limit (process-wide, split over the threads); 0 = none */
    uint64_t max_request_body;       /* route's body limit in bytes; 0 = server.limits.max_request_body */
    uint64_t timeout_ms;             /* per-route deadline; 0 = use server.timeouts.request */
    size_t index;                    /* position in config->routes */
    hy_pos_t pos;                    /* position of the route's mapping in the file */
} hy_route_t;

typedef struct st_hy_timeouts_t {
    uint64_t handshake_ms;   /* TLS handshake; default 10s */
    uint64_t read_ms;        /* `read` (alias `request_header`): receiving a request's headers; default 15s */
    uint64_t write_ms;       /* `write`: writing a response to the client; default 15s */
    uint64_t idle_ms;        /* an idle keep-alive / HTTP/2 connection; default 60s */
    uint64_t request_ms;     /* per-request deadline unless a route sets `timeout`; default 30s */
    uint64_t shutdown_ms;    /* how long SIGTERM waits for in-flight requests; default 20s */
    uint64_t drain_delay_ms; /* server.drain_delay: after SIGTERM, keep serving (not ready) this long; default 0 */
} hy_timeouts_t;

typedef struct st_hy_limits_t {
    uint64_t max_connections;        /* per process; default 10000 */
    uint64_t max_active_requests;    /* requests one event-loop thread works on at once; beyond it HTTP/1.1 connections
                                      * wait in the kernel to send their next request (readgate.h); default 256, 0 = no
                                      * limit */
    uint64_t max_request_body;       /* bytes; default 1MiB */
    uint32_t max_concurrent_streams; /* http2.max_concurrent_streams; default 100, at most 100 */
    uint64_t abuse_cooldown_ms;      /* http2.abuse_cooldown: after a connection is shut down for resets, new connections
                                      * from its address are closed at once for this long; default 10s, 0 = off */
    uint64_t max_resets;             /* http2.max_resets: stream resets a connection may make beyond its completed
                                      * requests before it is closed (HTTP/2 Rapid Reset); default 100 */
    uint64_t max_headers;            /* request header fields; more get 431; default 100 */
    uint64_t max_header_bytes;       /* total bytes of request header names and values; more get 431; default 16KiB */
} hy_limits_t;

typedef struct st_hy_config_t {
    char *file;                 /* the path the config was read from, as given */
    hy_listener_t *listeners;   /* server.listen, in file order */
    size_t nlisteners;          /* at least 1 */
    unsigned threads;           /* resolved thread count (>= 1) */
    int threads_auto;           /* 1 when `threads: auto` */
    hy_timeouts_t timeouts;     /* server.timeouts */
    hy_limits_t limits;         /* server.limits */
    hy_route_t *routes;         /* routes, in file order */
    size_t nroutes;             /* number of routes */
    hy_router_t *router;        /* built from routes; match data is a hy_route_t * */
    hy_middleware_t middleware; /* `middleware`: the global list (routes without their own use it) */
    hy_cidr_t *trusted_proxies; /* client_ip.trusted_proxies */
    size_t ntrusted_proxies;    /* number of them */
    char *access_log_path;      /* access_log.path: NULL for stdout, else a file opened for append */
    double access_log_sample;   /* access_log.sample: 0..1, default 1 */
    uint64_t max_in_flight;     /* admission.max_in_flight: process-wide limit (0 = none) */
    double *buckets;            /* metrics.buckets (seconds), NULL for the client_golang defaults */
    size_t nbuckets;            /* number of buckets */
    hy_listener_t *admin;       /* server.admin: a listener for the admin routes only, or NULL */
    int64_t loaded_at;          /* when the config was loaded (Unix seconds) */
    uint64_t source_hash;       /* hy_config_hash of the text it was loaded from */
    int has_database;           /* a `database` section, or a DATABASE_URL / DB_* variable, was given */
    hy_database_t database;     /* its settings (meaningful when has_database) */
} hy_config_t;

/* Loads and validates `path`. Values may use ${VAR} / ${VAR:-default}; the environment overrides SERVER_PORT,
 * SERVER_READ_TIMEOUT, SERVER_WRITE_TIMEOUT and SERVER_IDLE_TIMEOUT win over the file. Returns the config (owned by
 * the caller, free with hy_config_free), or NULL with every error found appended to `diags`. */
hy_config_t *hy_config_load(const char *path, hy_diags_t *diags);

/* As hy_config_load, from a buffer of `len` bytes; `path` is used in messages and its directory is the base of
 * relative TLS file paths (the file itself is not read). */
hy_config_t *hy_config_parse(const char *path, const char *text, size_t len, hy_diags_t *diags);

/* A 64-bit hash (FNV-1a) of a config text, to tell whether the file changed since it was loaded. */
uint64_t hy_config_hash(const char *text, size_t len);

/* Frees a config and all it owns. NULL is fine. */
void hy_config_free(hy_config_t *config);

/* Prints the normalized summary that `hydrant check` shows (listeners, threads, timeouts, limits, routes). */
void hy_config_print_summary(const hy_config_t *config, FILE *out);

/* ---- YAML node tree (shared by config.c and config_yaml.c) -------------------------------------------------------- */

typedef enum en_hy_ynode_kind_t {
    HY_YNODE_SCALAR = 0, /* a scalar; every scalar is a string until a directive parses it */
    HY_YNODE_SEQUENCE,   /* a list */
    HY_YNODE_MAPPING     /* a mapping */
} hy_ynode_kind_t;

typedef struct st_hy_ynode_t hy_ynode_t;
struct st_hy_ynode_t {
    hy_ynode_kind_t kind;  /* which of the three */
    hy_pos_t pos;          /* 1-based start of the node in the file */
    char *value;           /* scalar: the bytes, NUL-terminated (and possibly containing NUL bytes); else NULL */
    size_t len;            /* scalar: length of value */
    int plain;             /* scalar: written without quotes (so "", "~" and "null" mean no value) */
    hy_ynode_t **children; /* sequence: the items; mapping: key0, value0, key1, value1, ... (keys are scalars) */
    size_t nchildren;      /* number of children (twice the number of pairs for a mapping) */
    size_t cap;            /* allocated slots in children */
};

/* The deepest nesting of sequences and mappings accepted (deeper is a "yaml:" error). */
#define HY_YAML_MAX_DEPTH 64

/* Parses one YAML document of `len` bytes into a node tree. Returns 0 with *root set (NULL when the stream holds no
 * document), or -1 after appending a "FILE:LINE:COL: yaml: problem" message to diags (syntax errors, aliases, more
 * than one document, nesting deeper than HY_YAML_MAX_DEPTH). The tree is owned by the caller: hy_ynode_free. */
int hy_yaml_load(const char *file, const char *text, size_t len, hy_ynode_t **root, hy_diags_t *diags);
/* Frees a node and its children. NULL is fine. */
void hy_ynode_free(hy_ynode_t *node);
/* Returns 1 when the node is a plain scalar meaning "no value" ("", "~", "null", "Null", "NULL"), else 0. */
int hy_ynode_is_null(const hy_ynode_t *node);

/* Expands ${VAR}, ${VAR:-default} and $$ in the `len` bytes at `in`. A variable that is unset or empty counts as unset:
 * ${VAR} is then an error, ${VAR:-default} gives the default (literal text up to the first '}'). Returns 0 with *out
 * (malloc'ed, NUL-terminated, *outlen bytes; owned by the caller), or -1 with a one-line reason in err that names the
 * variable but never shows a value or a default. */
int hy_interpolate(const char *in, size_t len, char **out, size_t *outlen, char *err, size_t errlen);

#endif
