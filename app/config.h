/* config.h: the typed, validated configuration model that hydrant builds from one YAML file plus the environment. */
#ifndef HY_CONFIG_H
#define HY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "handler.h"
#include "router.h"

/* ---- diagnostics ------------------------------------------------------------------------------------------------------ */

/* Every config error is one line: "FILE:LINE:COL: key.path: message" (line and column 1-based). */
typedef struct st_hy_diags_t {
    char **msgs;  /* formatted messages, each malloc'ed, in the order found */
    size_t count; /* number of messages */
    size_t cap;   /* allocated slots */
} hy_diags_t;

/* Appends one message. `keypath` may be NULL ("FILE:LINE:COL: message"). */
void hy_diags_add(hy_diags_t *d, const char *file, unsigned line, unsigned col, const char *keypath, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Writes every message, one per line, to `out`. */
void hy_diags_print(const hy_diags_t *d, FILE *out);
/* Frees the messages; the struct may be reused. */
void hy_diags_clear(hy_diags_t *d);

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

typedef enum en_hy_route_kind_t {
    HY_ROUTE_HANDLER = 0, /* `handler: NAME` */
    HY_ROUTE_STATIC       /* `static: {...}` */
} hy_route_kind_t;

typedef struct st_hy_route_t {
    char *path;                       /* the template as written, e.g. "/api/v1/users/{id:int}" */
    unsigned methods;                 /* HY_METHOD_* mask; default GET|HEAD */
    hy_route_kind_t kind;             /* which of handler/static */
    char *handler_name;               /* for HY_ROUTE_HANDLER */
    const hy_handler_def_t *handler;  /* for HY_ROUTE_HANDLER, resolved from the registry */
    hy_static_t static_;              /* for HY_ROUTE_STATIC */
    uint64_t timeout_ms;              /* per-route deadline; 0 = use server.timeouts.request */
    size_t index;                     /* position in config->routes */
    hy_pos_t pos;                     /* position of the route's mapping in the file */
} hy_route_t;

typedef struct st_hy_timeouts_t {
    uint64_t handshake_ms; /* TLS handshake; default 10s */
    uint64_t read_ms;      /* `read` (alias `request_header`): receiving a request's headers; default 15s */
    uint64_t write_ms;     /* `write`: writing a response to the client; default 15s */
    uint64_t idle_ms;      /* an idle keep-alive / HTTP/2 connection; default 60s */
    uint64_t request_ms;   /* per-request deadline unless a route sets `timeout`; default 30s */
    uint64_t shutdown_ms;  /* how long SIGTERM waits for in-flight requests; default 20s */
} hy_timeouts_t;

typedef struct st_hy_limits_t {
    uint64_t max_connections;        /* per process; default 10000 */
    uint64_t max_request_body;       /* bytes; default 1MiB */
    uint32_t max_concurrent_streams; /* http2.max_concurrent_streams; default 100, at most 100 */
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
} hy_config_t;

/* Loads and validates `path`. Values may use ${VAR} / ${VAR:-default}; the environment overrides SERVER_PORT,
 * SERVER_READ_TIMEOUT, SERVER_WRITE_TIMEOUT and SERVER_IDLE_TIMEOUT win over the file. Returns the config (owned by
 * the caller, free with hy_config_free), or NULL with every error found appended to `diags`. */
hy_config_t *hy_config_load(const char *path, hy_diags_t *diags);

/* As hy_config_load, from a buffer; `path` is used in messages and to resolve nothing else. */
hy_config_t *hy_config_parse(const char *path, const char *text, size_t len, hy_diags_t *diags);

/* Frees a config and all it owns. NULL is fine. */
void hy_config_free(hy_config_t *config);

/* Prints the normalized summary that `hydrant check` shows (listeners, threads, timeouts, limits, routes). */
void hy_config_print_summary(const hy_config_t *config, FILE *out);

#endif
