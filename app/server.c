/* server.c: listeners, TLS contexts, one libh2o event loop per thread, the root handler that routes every request,
 * connection limits, and the graceful shutdown that SIGTERM starts. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sched.h>
#include <strings.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <h2o/version.h>
#include "accesslog.h"
#include "alloc.h"
#include "clientip.h"
#include "cooldown.h"
#include "database.h"
#include "log.h"
#include "metrics.h"
#include "procstat.h"
#include "proxy.h"
#include "readgate.h"
#include "reqid.h"
#include "db.h"
#include "handlers.h"
#include "json.h"
#include "respond.h"
#include "server.h"
#include "sqlroute.h"

/* ---- types ------------------------------------------------------------------------------------------------------------ */

typedef struct st_listener_t {
    h2o_accept_ctx_t accept_ctx; /* what h2o_accept needs: context, hosts, SSL_CTX (NULL when plain) */
    h2o_socket_t *sock;          /* the listening socket on this thread's loop */
    hy_thread_t *thread;         /* owner */
    int tls;                     /* a TLS listener (its connections' protocol is known at the first request) */
    int fd;                      /* the listening fd (accepted here, so each connection's fd is known) */
} listener_t;

/* A loaded configuration as the request path sees it. Reload publishes a new one; each thread switches at its next
 * request; the old one is freed when the last thread that used it has no request left on it. */
typedef struct st_snapshot_t {
    hy_config_t *config;    /* the routes, middleware, limits... of this generation */
    int owned;              /* free config with the snapshot (not the boot config, which main owns) */
    _Atomic unsigned refs;  /* the server's reference plus one per thread holding it */
    size_t *metric_route;   /* per route: its index in the metrics registry (boot routes; others count as "none") */
    size_t *route_inflight; /* [thread][route] requests in flight (each thread writes only its own row) */
    uint64_t generation;    /* 1 for the boot config, +1 per successful reload */
} snapshot_t;

typedef struct st_retired_t {
    snapshot_t *snap; /* an older snapshot some of this thread's requests still use */
    size_t inflight;  /* how many */
} retired_t;

typedef struct st_deadline_t {
    uint64_t ms;           /* the duration */
    h2o_timeout_t timeout; /* this thread's timer list for it */
} deadline_t;

#define MAX_DEADLINES 32 /* distinct deadline durations one thread keeps timers for */

#define MAX_RETIRED 16 /* older snapshots one thread can still be finishing requests on */

struct st_hy_thread_t {
    h2o_context_t ctx;                   /* this thread's h2o context (first member: handlers reach the thread from it) */
    size_t index;                        /* 0 .. threads-1 */
    pthread_t tid;                       /* the thread */
    struct st_server_t *server;          /* the process-wide state */
    listener_t *listeners;               /* one per configured listener */
    int *fds;                            /* listening fds made for this thread (SO_REUSEPORT), one per listener */
    h2o_multithread_receiver_t control;  /* messages from the main thread (shutdown, resume accepting) */
    _Atomic size_t num_conns;            /* connections this thread holds now (read by status on other threads) */
    size_t num_inflight;                 /* requests this thread is serving now */
    int accepting;                       /* listeners are reading */
    int shutting_down;                   /* a shutdown message arrived */
    hy_db_local_t *db;                   /* this thread's part of the database pool, or NULL */
    hy_proxy_local_t *proxy;             /* this thread's timers for proxy routes */
    hy_metrics_shard_t *metrics;         /* this thread's counters */
    hy_readgate_t *gate;                 /* limits.max_active_requests: HTTP/1.1 connections wait beyond it */
    hy_reqid_gen_t reqid;                /* request ids */
    hy_logbuf_t *log;                    /* the access log's batch, or NULL without an access log */
    hy_sampler_t sampler;                /* access_log.sample */
    h2o_timeout_entry_t flush_entry;     /* flushes the access log every second */
    h2o_linklist_t conns;                /* conn_state_t of this thread's connections */
    h2o_timeout_t write_sweep_timeout;   /* how often the write timeout is checked */
    h2o_timeout_entry_t write_sweep;     /* checks every connection's pending write (timeouts.write) */
    _Atomic uint64_t write_timeouts;     /* connections closed: their client stopped reading for timeouts.write */
    _Atomic uint64_t requests;           /* requests received (owner stores, status reads) */
    _Atomic uint64_t *db_queries;        /* [statement][outcome] statements finished (owner stores, scrape reads) */
    snapshot_t *snap;                    /* the snapshot this thread's new requests use */
    size_t snap_inflight;                /* requests on snap */
    retired_t retired[MAX_RETIRED];      /* older snapshots with requests still in flight */
    size_t nretired;                     /* number of them */
    deadline_t deadlines[MAX_DEADLINES]; /* timer lists by duration, made on first use */
    size_t ndeadlines;                   /* number of them */
    _Atomic uint64_t rejected;           /* admission rejections (503) */
    _Atomic uint64_t timed_out;          /* deadlines that fired (504) */
    _Atomic uint64_t resets_cut;         /* connections shut down for abusive stream resets */
    _Atomic uint64_t abuse_refused;      /* connections closed at accept: their address is cooling down */
};

typedef struct st_root_handler_t {
    h2o_handler_t super;        /* first member: h2o calls on_req with this */
    struct st_server_t *server; /* back pointer */
    int admin;                  /* serves server.admin: only admin routes and probes */
} root_handler_t;

typedef struct st_server_t {
    const hy_config_t *config;          /* the config being served (read-only, shared by all threads) */
    h2o_globalconf_t globalconf;        /* libh2o's configuration: timeouts, limits, the one root handler */
    SSL_CTX **ssl_ctxs;                 /* per listener; NULL for plain listeners */
    hy_thread_t *threads;               /* config->threads of them */
    _Atomic size_t num_conns;           /* connections open across all threads (for max_connections) */
    hy_error_body_t not_found;          /* 404 body */
    hy_error_body_t method_not_allowed; /* 405 body */
    hy_error_body_t bad_path;           /* 400 body for malformed paths */
    hy_error_body_t internal_error;     /* 500 body for handlers that fail */
    hy_error_body_t too_large;          /* 413 body for request bodies over limits.max_request_body */
    hy_error_body_t headers_too_large;  /* 431 body for requests over limits.max_headers / max_header_bytes */
    hy_error_body_t overloaded;         /* 503 body for requests over an admission limit */
    hy_conninfo_t conninfo;             /* libpq parameters (point into config->database) */
    hy_db_pool_t *db;                   /* the one pool, or NULL without a database */
    const hy_db_stmt_t **stmts;         /* the statements the pool prepares (NULL-terminated) */
    size_t nstmts;                      /* number of them */
    size_t nlisteners;                  /* config->nlisteners, plus one for server.admin */
    h2o_hostconf_t *public_hosts[2];    /* the public listeners' host (NULL-terminated) */
    h2o_hostconf_t *admin_hosts[2];     /* the admin listener's host (NULL-terminated) */
    hy_metrics_t *metrics;              /* the registry */
    size_t db_acquire_family;           /* hydrant_db_pool_acquire_seconds */
    size_t db_query_family;             /* hydrant_db_query_duration_seconds{statement} */
    int log_fd;                         /* the access log's fd (1 for stdout) */
    struct timeval started_at;          /* for uptime */
    snapshot_t *_Atomic current;        /* the snapshot new requests take */
    hy_cooldown_t *cooldown;            /* addresses whose connections are refused (limits.http2.abuse_cooldown) */
    _Atomic uint64_t reloads_ok;        /* hydrant_config_reloads_total{result="success"} */
    _Atomic uint64_t reloads_failed;    /* hydrant_config_reloads_total{result="failure"} */
    _Atomic int64_t last_reload_ok;     /* Unix time of the last successful load (boot counts) */
} server_t;

static _Atomic int draining;             /* set when SIGTERM starts the drain */
static hy_db_pool_t *_Atomic process_db; /* the pool, for readiness */

typedef struct st_control_message_t {
    h2o_multithread_message_t super; /* first member */
    int kind;                        /* CONTROL_* */
    SSL_CTX **ssl_ctxs;              /* CONTROL_TLS: per public listener, the new context (one reference for this thread) or NULL */
} control_message_t;

enum { CONTROL_SHUTDOWN = 1, CONTROL_RESUME, CONTROL_TLS };

/* Sends `thread` a control message (ssl_ctxs: for CONTROL_TLS, owned by the message). */
static void send_control(hy_thread_t *thread, int kind, SSL_CTX **ssl_ctxs)
{
    control_message_t *m = hy_xcalloc(1, sizeof(*m));
    m->kind = kind;
    m->ssl_ctxs = ssl_ctxs;
    h2o_multithread_send_message(&thread->control, &m->super);
}

/* What hydrant keeps about one request, in its pool; the dispose callback records metrics and the access log. */
typedef struct st_reqctx_t {
    hy_thread_t *thread;               /* the thread serving it */
    snapshot_t *snap;                  /* the configuration it runs under */
    h2o_req_t *req;                    /* the request (whole until its pool is cleared, after this is disposed) */
    const hy_route_t *route;           /* the matched route, or NULL */
    unsigned mw;                       /* 1u << hy_mw_kind_t of the middleware that run */
    unsigned method;                   /* HY_METRICS_* index */
    int admitted;                      /* counted in the route's in-flight count */
    int answered;                      /* a response was started (the deadline's 504, or the handler's) */
    h2o_timeout_entry_t deadline;      /* the timeout middleware's timer */
    size_t id_len;                     /* length of request_id (0: none) */
    char request_id[HY_REQID_MAX + 1]; /* kept X-Request-Id or generated */
    char client_ip[HY_CLIENT_IP_MAX];  /* the client's address ("" until client_ip ran) */
} reqctx_t;

/* Per connection: its thread, the protocol it is counted under in hydrant_connections, and its stream resets. */
typedef struct st_conn_state_t {
    hy_thread_t *thread;     /* the owner */
    int proto;               /* HY_PROTO_*, or -1 until known (TLS before its first request) */
    int fd;                  /* the connection's socket */
    uint64_t resets;         /* HTTP/2 requests disposed before any response (stream reset by the client) */
    uint64_t completed;      /* requests answered */
    int cut;                 /* shut down for abusive resets */
    hy_readgate_conn_t gate; /* its place at the thread's read gate (HTTP/1.1) */
    h2o_linklist_t link;     /* in thread->conns (the write-timeout sweep) */
    int outq;                /* bytes in the kernel's send queue at the last sweep */
    uint64_t stalled_since;  /* when a write stopped making progress (0: it moves, or nothing to write) */
} conn_state_t;

enum { DB_OUTCOME_OK, DB_OUTCOME_ERROR, DB_OUTCOME_UNAVAILABLE, DB_OUTCOME_OVERLOADED, DB_OUTCOME_UNKNOWN, DB_NOUTCOMES };
static const char *const db_outcomes[DB_NOUTCOMES] = {"ok", "error", "unavailable", "overloaded", "unknown_outcome"};

static server_t *the_server;                       /* the process's server, for the metrics and status handlers */
static const char reqctx_key[] = "hydrant.reqctx"; /* marks our entry in req->env */

/* ---- the root handler ------------------------------------------------------------------------------------------------- */

hy_thread_t *hy_thread_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(hy_thread_t, ctx, req->conn->ctx);
}

size_t hy_thread_index(const hy_thread_t *thread)
{
    return thread->index;
}

hy_db_local_t *hy_thread_db(hy_thread_t *thread)
{
    return thread->db;
}

int hy_server_draining(void)
{
    return atomic_load(&draining);
}

int hy_server_db_ready(void)
{
    hy_db_pool_t *pool = atomic_load(&process_db);
    return pool == NULL || (hy_db_pool_ready(pool) && !hy_db_pool_breaker_open(pool));
}

/* ---- per-request context and middleware ------------------------------------------------------------------------------ */

static reqctx_t *reqctx_of(h2o_req_t *req)
{
    for (size_t i = 0; i + 1 < req->env.size; i += 2)
        if (req->env.entries[i].base == reqctx_key)
            return (reqctx_t *)req->env.entries[i + 1].base;
    return NULL;
}

const char *hy_req_id(h2o_req_t *req)
{
    reqctx_t *c = reqctx_of(req);
    return c != NULL && c->id_len != 0 ? c->request_id : NULL;
}

int hy_req_claim_response(h2o_req_t *req)
{
    reqctx_t *c = reqctx_of(req);
    if (c == NULL)
        return 1;
    if (c->answered)
        return 0;
    c->answered = 1;
    if (c->thread->shutting_down)
        req->http1_is_persistent = 0; /* draining: HTTP/1.1 responses say Connection: close */
    return 1;
}

const char *hy_req_client_ip(h2o_req_t *req)
{
    reqctx_t *c = reqctx_of(req);
    return c != NULL && c->client_ip[0] != '\0' ? c->client_ip : NULL;
}

/* ---- configuration snapshots ------------------------------------------------------------------------------------------ */

static void snapshot_release(snapshot_t *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->owned)
        hy_config_free(s->config);
    free(s->metric_route);
    free(s->route_inflight);
    free(s);
}

/* The snapshot a new request on this thread uses: switches to the published one when it changed. */
static snapshot_t *snapshot_enter(hy_thread_t *thread)
{
    snapshot_t *cur = atomic_load_explicit(&thread->server->current, memory_order_acquire);
    if (cur != thread->snap) {
        if (thread->snap != NULL) {
            if (thread->snap_inflight == 0 || thread->nretired == MAX_RETIRED) {
                /* nothing in flight on it (or no room to track it: keep it alive for the process) */
                if (thread->snap_inflight == 0)
                    snapshot_release(thread->snap);
            } else {
                thread->retired[thread->nretired++] = (retired_t){thread->snap, thread->snap_inflight};
            }
        }
        atomic_fetch_add(&cur->refs, 1);
        thread->snap = cur;
        thread->snap_inflight = 0;
    }
    ++thread->snap_inflight;
    return cur;
}

static void snapshot_leave(hy_thread_t *thread, snapshot_t *s)
{
    if (s == thread->snap) {
        --thread->snap_inflight;
        return;
    }
    for (size_t i = 0; i != thread->nretired; ++i) {
        if (thread->retired[i].snap == s) {
            if (--thread->retired[i].inflight == 0) {
                snapshot_release(s);
                thread->retired[i] = thread->retired[--thread->nretired];
            }
            return;
        }
    }
}

static h2o_iovec_t header_value(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    return i == -1 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

static h2o_iovec_t header_value_str(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    return i == -1 ? h2o_iovec_init(NULL, 0) : req->headers.entries[i].value;
}

/* request_id: keep a sane incoming X-Request-Id, else make one; echo it in the response. */
static void mw_request_id(h2o_req_t *req, reqctx_t *c)
{
    h2o_iovec_t in = header_value_str(req, H2O_STRLIT("x-request-id"));
    if (in.base != NULL && hy_reqid_is_sane(in.base, in.len)) {
        memcpy(c->request_id, in.base, in.len);
        c->request_id[in.len] = '\0';
        c->id_len = in.len;
    } else {
        c->id_len = hy_reqid_next(&c->thread->reqid, c->request_id);
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, c->request_id, c->id_len);
}

/* client_ip: the peer, or behind a trusted proxy the forwarded client (several X-Forwarded-For headers joined). */
static void mw_client_ip(h2o_req_t *req, reqctx_t *c, const hy_config_t *config)
{
    struct sockaddr_storage ss;
    if (req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) == 0)
        return;
    h2o_iovec_t xff = {NULL, 0}, xri = {NULL, 0};
    if (config->ntrusted_proxies != 0 && hy_cidr_match(config->trusted_proxies, config->ntrusted_proxies, (struct sockaddr *)&ss)) {
        ssize_t i = -1;
        while ((i = h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, i)) != -1) {
            h2o_iovec_t v = req->headers.entries[i].value;
            xff = xff.base == NULL ? v : h2o_concat(&req->pool, xff, h2o_iovec_init(H2O_STRLIT(", ")), v);
        }
        xri = header_value_str(req, H2O_STRLIT("x-real-ip"));
    }
    hy_client_ip((struct sockaddr *)&ss, xff.base, xff.len, xri.base, xri.len, config->trusted_proxies, config->ntrusted_proxies,
                 c->client_ip, sizeof(c->client_ip));
}

static void on_flush(h2o_timeout_entry_t *entry)
{
    hy_thread_t *thread = H2O_STRUCT_FROM_MEMBER(hy_thread_t, flush_entry, entry);
    hy_logbuf_flush(thread->log);
    if (!thread->shutting_down)
        h2o_timeout_link(thread->ctx.loop, &thread->ctx.one_sec_timeout, &thread->flush_entry);
}

/* The socket of the request's connection, or NULL. */
static h2o_socket_t *req_socket(h2o_req_t *req)
{
    return req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* What on_accept attached to the socket (NULL for a socket hydrant did not accept). */
static conn_state_t *conn_state_of(h2o_socket_t *sock)
{
    return sock != NULL ? sock->on_close.data : NULL;
}

static void on_conn_close(void *data);

/* The read gate's way from a socket to its connection (NULL for the sockets hydrant did not accept). */
static hy_readgate_conn_t *gate_lookup(h2o_socket_t *sock)
{
    return sock->on_close.cb == on_conn_close ? &((conn_state_t *)sock->on_close.data)->gate : NULL;
}

/* HTTP/2 Rapid Reset (CVE-2023-44487; libh2o 2.2.5 predates its fix): a connection whose streams are reset before an
 * answer more than limits.http2.max_resets times, and more often than it lets requests complete, is shut down. The
 * reset requests' work was already dropped: their queries were abandoned when they were disposed. */
static void track_resets(h2o_req_t *req, hy_thread_t *thread, const hy_config_t *config)
{
    conn_state_t *cs;
    if (req->version < 0x200 || (cs = conn_state_of(req_socket(req))) == NULL)
        return;
    if (req->res.status == 0)
        ++cs->resets;
    else
        ++cs->completed;
    if (!cs->cut && cs->resets > config->limits.max_resets && cs->resets > cs->completed) {
        cs->cut = 1;
        atomic_store_explicit(&thread->resets_cut, atomic_load_explicit(&thread->resets_cut, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);
        char addr[INET6_ADDRSTRLEN] = "?";
        if (getpeername(cs->fd, (struct sockaddr *)&ss, &sslen) == 0) {
            hy_cooldown_add(thread->server->cooldown, (struct sockaddr *)&ss, now_ms(), config->limits.abuse_cooldown_ms);
            if (ss.ss_family == AF_INET)
                inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
            else if (ss.ss_family == AF_INET6)
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
        }
        hy_log("warn", NULL,
               "closing an HTTP/2 connection from %s that reset %llu streams and completed %llu (limits.http2.max_resets); "
               "its address is refused for %llu ms (limits.http2.abuse_cooldown)",
               addr, (unsigned long long)cs->resets, (unsigned long long)cs->completed,
               (unsigned long long)config->limits.abuse_cooldown_ms);
        /* libh2o sees the end of the stream on its next read and closes the connection itself */
        shutdown(cs->fd, SHUT_RDWR);
    }
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    reqctx_t *c = H2O_STRUCT_FROM_MEMBER(reqctx_t, deadline, entry);
    if (c->answered)
        return;
    hy_thread_t *thread = c->thread;
    atomic_store_explicit(&thread->timed_out, atomic_load_explicit(&thread->timed_out, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    /* the handler's later answer is dropped (hy_req_claim_response); its query is cancelled when the request is disposed */
    hy_respond_error_dynamic(c->req, 504, "deadline_exceeded", "the request did not complete within its deadline");
}

/* This thread's timer list for a duration (made on first use). NULL when too many distinct durations are in use. */
static h2o_timeout_t *deadline_timer(hy_thread_t *thread, uint64_t ms)
{
    for (size_t i = 0; i != thread->ndeadlines; ++i)
        if (thread->deadlines[i].ms == ms)
            return &thread->deadlines[i].timeout;
    if (thread->ndeadlines == MAX_DEADLINES)
        return NULL;
    deadline_t *d = &thread->deadlines[thread->ndeadlines++];
    d->ms = ms;
    h2o_timeout_init(thread->ctx.loop, &d->timeout, ms);
    return &d->timeout;
}

/* The request is being disposed (answered, or abandoned by the client): record it. The request is still whole here. */
static void on_req_done(void *p)
{
    reqctx_t *c = p;
    hy_thread_t *thread = c->thread;
    h2o_req_t *req = c->req;
    const hy_config_t *config = c->snap->config;

    --thread->num_inflight;
    hy_readgate_request_done(thread->gate);
    if (c->admitted)
        --c->snap->route_inflight[thread->index * (config->nroutes + 1) + c->route->index];
    if (h2o_timeout_is_linked(&c->deadline))
        h2o_timeout_unlink(&c->deadline);
    track_resets(req, thread, config);
    if ((c->mw & ((1u << HY_MW_METRICS) | (1u << HY_MW_ACCESS_LOG))) == 0) {
        snapshot_leave(thread, c->snap);
        return;
    }
    struct timeval now;
    gettimeofday(&now, NULL);
    int64_t us = (int64_t)(now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000000 +
                 (now.tv_usec - req->timestamps.request_begin_at.tv_usec);
    if (us < 0)
        us = 0;
    uint64_t bytes_in = req->entity.base != NULL ? req->entity.len : 0;
    if ((c->mw & (1u << HY_MW_METRICS)) != 0)
        hy_metrics_request_done(thread->metrics, c->method, c->route != NULL ? c->snap->metric_route[c->route->index] : SIZE_MAX,
                                req->res.status, (double)us / 1e6, bytes_in, req->bytes_sent);
    if ((c->mw & (1u << HY_MW_ACCESS_LOG)) != 0 && thread->log != NULL && !(c->route != NULL && c->route->log_excluded) &&
        hy_accesslog_sampled(&thread->sampler, config->access_log_sample)) {
        if (c->client_ip[0] == '\0') {
            /* client_ip did not run: log the peer */
            struct sockaddr_storage ss;
            if (req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) != 0)
                hy_client_ip((struct sockaddr *)&ss, NULL, 0, NULL, 0, NULL, 0, c->client_ip, sizeof(c->client_ip));
        }
        hy_accesslog_entry_t e;
        memset(&e, 0, sizeof(e));
        e.time = now;
        e.request_id = c->id_len != 0 ? h2o_iovec_init(c->request_id, c->id_len) : h2o_iovec_init(NULL, 0);
        e.client_ip = h2o_iovec_init(c->client_ip, strlen(c->client_ip));
        e.method = req->input.method;
        e.path = req->input.path;
        if (c->route != NULL)
            e.route = h2o_iovec_init(c->route->path, strlen(c->route->path));
        e.status = req->res.status;
        e.bytes_in = bytes_in;
        e.bytes_out = req->bytes_sent;
        e.duration_us = (uint64_t)us;
        e.http_version = req->version;
        e.tls = req->scheme == &H2O_URL_SCHEME_HTTPS;
        e.user_agent = header_value(req, H2O_TOKEN_USER_AGENT);
        h2o_iovec_t tp = header_value_str(req, H2O_STRLIT("traceparent"));
        if (tp.base != NULL && hy_traceparent_is_valid(tp.base, tp.len))
            e.traceparent = tp;
        hy_accesslog_write(thread->log, &e);
    }
    snapshot_leave(thread, c->snap);
}

/* libh2o calls its loggers when it disposes of a request (answered, or abandoned by its client), before the request's
 * pool is freed. */
static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    reqctx_t *c = reqctx_of(req);
    if (c != NULL)
        on_req_done(c);
}

/* Counts the connection under its protocol, learnt from its requests (h2c switches an HTTP/1.1 connection to HTTP/2). */
static void track_protocol(h2o_req_t *req, hy_thread_t *thread, conn_state_t *cs)
{
    if (cs == NULL)
        return;
    int proto = req->version >= 0x200 ? HY_PROTO_HTTP2 : HY_PROTO_HTTP1;
    if (cs->proto == proto)
        return;
    if (cs->proto == -1) {
        /* the first request: h2c by Upgrade arrives as HTTP/2 with the HTTP2-Settings header of the HTTP/1.1 request */
        if (proto == HY_PROTO_HTTP2 && h2o_find_header_by_str(&req->headers, H2O_STRLIT("http2-settings"), -1) != -1) {
            hy_metrics_conn_open(thread->metrics, HY_PROTO_HTTP1);
            hy_metrics_conn_upgrade(thread->metrics);
        } else {
            hy_metrics_conn_open(thread->metrics, proto);
        }
        cs->proto = proto;
        return;
    } else if (cs->proto == HY_PROTO_HTTP1 && proto == HY_PROTO_HTTP2)
        hy_metrics_conn_upgrade(thread->metrics);
    else
        return;
    cs->proto = proto;
}

/* HTTP/1.1 request smuggling shapes that libh2o 2.2.5 accepts and does not pass on (it keeps Content-Length and
 * Transfer-Encoding to itself): both headers at once, two different Content-Length values, obs-fold lines. The request
 * head is still in the connection's read buffer while the request is served, so it is checked there. Returns 1 when
 * the framing is unambiguous. */
static int h1_framing_ok(h2o_socket_t *sock)
{
    if (sock == NULL || sock->input == NULL || sock->input->size == 0)
        return 1;
    const char *p = sock->input->bytes, *end = p + sock->input->size, *nl;
    const char *clv = NULL;
    size_t clvlen = 0;
    int te = 0;
    if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
        return 1;
    for (p = nl + 1; p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL; p = nl + 1) {
        size_t len = (size_t)(nl - p);
        if (len != 0 && p[len - 1] == '\r')
            --len;
        if (len == 0)
            break; /* the end of the head */
        if (*p == ' ' || *p == '\t')
            return 0; /* obs-fold */
        if (len >= 15 && strncasecmp(p, "content-length:", 15) == 0) {
            const char *v = p + 15, *ve = p + len;
            while (v < ve && (*v == ' ' || *v == '\t'))
                ++v;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                --ve;
            if (clv != NULL && ((size_t)(ve - v) != clvlen || memcmp(v, clv, clvlen) != 0))
                return 0;
            clv = v;
            clvlen = (size_t)(ve - v);
        } else if (len >= 18 && strncasecmp(p, "transfer-encoding:", 18) == 0) {
            te = 1;
        }
    }
    return !(te && clv != NULL);
}

/* server.admin serves the admin routes and the probes only; with it, the public listeners do not serve admin routes. */
static int hidden_here(const root_handler_t *self, const hy_config_t *config, const hy_route_t *r)
{
    unsigned flags = r->kind == HY_ROUTE_HANDLER ? r->handler->flags : 0;
    return self->admin ? (flags & (HY_HANDLER_ADMIN | HY_HANDLER_PROBE)) == 0
                       : (config->admin != NULL && (flags & HY_HANDLER_ADMIN) != 0);
}

static uint64_t route_limit(const hy_route_t *route)
{
    return route != NULL ? route->max_request_body : 0;
}

static int on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    root_handler_t *self = (root_handler_t *)_self;
    server_t *server = self->server;
    hy_thread_t *thread = hy_thread_of(req);
    snapshot_t *snap = snapshot_enter(thread);
    const hy_config_t *config = snap->config;

    /* in the request's pool (no malloc); on_log_access records it when libh2o disposes of the request */
    reqctx_t *c = h2o_mem_alloc_pool(&req->pool, sizeof(*c));
    c->thread = thread;
    c->snap = snap;
    c->req = req;
    c->route = NULL;
    c->mw = 0;
    c->id_len = 0;
    c->client_ip[0] = '\0';
    c->admitted = 0;
    c->answered = 0;
    memset(&c->deadline, 0, sizeof(c->deadline));
    c->deadline.cb = on_deadline;
    h2o_vector_reserve(&req->pool, &req->env, req->env.size + 2);
    req->env.entries[req->env.size++] = h2o_iovec_init(reqctx_key, 0);
    req->env.entries[req->env.size++] = h2o_iovec_init((char *)c, 0);
    ++thread->num_inflight;
    atomic_store_explicit(&thread->requests, atomic_load_explicit(&thread->requests, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    h2o_socket_t *sock = req_socket(req);
    conn_state_t *cs = conn_state_of(sock);
    if (cs != NULL)
        hy_readgate_request_started(&cs->gate);
    track_protocol(req, thread, cs);
    if (cs != NULL && cs->cut) {
        /* a connection shut down for abusive resets: the streams libh2o still had buffered get no work */
        hy_respond_error(req, &server->overloaded);
        return 0;
    }

    unsigned method = hy_method_from_name(req->input.method.base, req->input.method.len);
    c->method = method != 0 ? (unsigned)__builtin_ctz(method) : HY_METRICS_OTHER;
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    size_t bufsize = HY_ROUTER_BUF_SIZE(path_len);
    char *buf = h2o_mem_alloc_pool(&req->pool, bufsize);
    hy_match_t match;
    hy_match_result_t result = hy_router_match(config->router, method, req->path.base, path_len, buf, bufsize, &match);
    if (result == HY_MATCH_METHOD_NOT_ALLOWED && (self->admin || config->admin != NULL)) {
        /* a route this listener does not serve must not show through a 405 either: match one of its methods */
        hy_match_t probe;
        unsigned m = match.allowed & (0u - match.allowed);
        if (hy_router_match(config->router, m, req->path.base, path_len, buf, bufsize, &probe) == HY_MATCH_OK) {
            if (hidden_here(self, config, probe.data))
                result = HY_MATCH_NOT_FOUND;
        }
    }
    if (result == HY_MATCH_OK) {
        const hy_route_t *r = match.data;
        if (hidden_here(self, config, r))
            result = HY_MATCH_NOT_FOUND;
        else
            c->route = r;
    }

    /* middleware, in the order the configuration lists them; access_log and metrics record at dispose */
    const hy_middleware_t *mw = c->route != NULL ? &c->route->middleware : &config->middleware;
    c->mw = mw->mask;
    if ((mw->mask & (1u << HY_MW_METRICS)) != 0)
        hy_metrics_request_start(thread->metrics);
    for (size_t i = 0; i != mw->n; ++i) {
        if (mw->kinds[i] == HY_MW_REQUEST_ID)
            mw_request_id(req, c);
        else if (mw->kinds[i] == HY_MW_CLIENT_IP)
            mw_client_ip(req, c, config);
    }

    if (req->version < 0x200 && !h1_framing_ok(sock)) {
        req->http1_is_persistent = 0; /* and close: what follows on this connection cannot be trusted */
        hy_respond_error_dynamic(req, 400, "bad_request",
                                 "ambiguous request framing (Content-Length with Transfer-Encoding, conflicting "
                                 "Content-Length values, or a folded header line)");
        return 0;
    }
    /* header limits (libh2o's own: 8KiB of HTTP/1.1 request head; HPACK bounds HTTP/2) */
    if (req->headers.size > config->limits.max_headers) {
        hy_respond_error(req, &server->headers_too_large);
        return 0;
    }
    size_t header_bytes = 0;
    for (size_t i = 0; i != req->headers.size; ++i)
        header_bytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    if (header_bytes > config->limits.max_header_bytes) {
        hy_respond_error(req, &server->headers_too_large);
        return 0;
    }

    if (result == HY_MATCH_OK && (mw->mask & (1u << HY_MW_ADMISSION)) != 0) {
        /* limits are process-wide, split evenly over the threads (SO_REUSEPORT spreads connections), so admission
         * needs no shared counter */
        size_t threads = server->config->threads;
        if (config->max_in_flight != 0 && thread->num_inflight > (config->max_in_flight + threads - 1) / threads)
            goto Reject;
        size_t *n = &snap->route_inflight[thread->index * (config->nroutes + 1) + c->route->index];
        if (c->route->max_in_flight != 0 && *n >= (c->route->max_in_flight + threads - 1) / threads)
            goto Reject;
        ++*n;
        c->admitted = 1;
    }
    if (result == HY_MATCH_OK && (mw->mask & (1u << HY_MW_TIMEOUT)) != 0) {
        uint64_t ms = c->route->timeout_ms != 0 ? c->route->timeout_ms : config->timeouts.request_ms;
        h2o_timeout_t *t = ms != 0 ? deadline_timer(thread, ms) : NULL;
        if (t != NULL)
            h2o_timeout_link(thread->ctx.loop, t, &c->deadline);
    }

    switch (result) {
    case HY_MATCH_OK:
        break;
    case HY_MATCH_NOT_FOUND:
        hy_respond_error(req, &server->not_found);
        return 0;
    case HY_MATCH_METHOD_NOT_ALLOWED: {
        char allow[128];
        size_t len = hy_methods_format(match.allowed, allow, sizeof(allow));
        h2o_iovec_t v = h2o_strdup(&req->pool, allow, len);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, v.base, v.len);
        hy_respond_error(req, &server->method_not_allowed);
        return 0;
    }
    default:
        hy_respond_error(req, &server->bad_path);
        return 0;
    }

    if (req->entity.base != NULL &&
        req->entity.len > (route_limit(c->route) != 0 ? route_limit(c->route) : config->limits.max_request_body)) {
        hy_respond_error(req, &server->too_large);
        return 0;
    }
    const hy_route_t *route = c->route;
    hy_param_t *params = NULL;
    if (match.nparams != 0) {
        params = h2o_mem_alloc_pool(&req->pool, sizeof(*params) * match.nparams);
        memcpy(params, match.params, sizeof(*params) * match.nparams);
    }
    int failed;
    if (route->kind == HY_ROUTE_PROXY)
        failed = hy_proxy_on_req(req, thread->proxy, route, params, match.nparams);
    else
        failed = (route->kind == HY_ROUTE_STATIC ? hy_static_on_req
                  : route->kind == HY_ROUTE_SQL  ? hy_sql_on_req
                                                 : route->handler->on_req)(req, route, params, match.nparams);
    if (failed != 0)
        hy_respond_error(req, &server->internal_error);
    return 0;

Reject:
    atomic_store_explicit(&thread->rejected, atomic_load_explicit(&thread->rejected, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
    hy_respond_error(req, &server->overloaded);
    return 0;
}

/* ---- accepting connections -------------------------------------------------------------------------------------------- */

static void stop_accepting(hy_thread_t *thread)
{
    if (!thread->accepting)
        return;
    thread->accepting = 0;
    for (size_t i = 0; i != thread->server->nlisteners; ++i)
        h2o_socket_read_stop(thread->listeners[i].sock);
}

static void on_accept(h2o_socket_t *listener, const char *err);

static void start_accepting(hy_thread_t *thread)
{
    if (thread->accepting || thread->shutting_down)
        return;
    thread->accepting = 1;
    for (size_t i = 0; i != thread->server->nlisteners; ++i)
        h2o_socket_read_start(thread->listeners[i].sock, on_accept);
}

static void on_conn_close(void *data)
{
    conn_state_t *cs = data;
    hy_thread_t *thread = cs->thread;
    server_t *server = thread->server;
    if (cs->proto != -1)
        hy_metrics_conn_close(thread->metrics, cs->proto);
    hy_readgate_conn_closed(&cs->gate);
    h2o_linklist_unlink(&cs->link);
    free(cs);
    atomic_fetch_sub_explicit(&thread->num_conns, 1, memory_order_relaxed);
    size_t prev = atomic_fetch_sub(&server->num_conns, 1);
    if (prev == server->config->limits.max_connections) {
        /* some threads may have paused accepting at the limit: wake them all */
        for (size_t i = 0; i != server->config->threads; ++i) {
            send_control(&server->threads[i], CONTROL_RESUME, NULL);
        }
    }
}

static void on_accept(h2o_socket_t *sock_listener, const char *err)
{
    listener_t *listener = sock_listener->data;
    hy_thread_t *thread = listener->thread;
    server_t *server = thread->server;

    if (err != NULL)
        return;
    for (int n = 0; n != 16; ++n) {
        if (atomic_load(&server->num_conns) >= server->config->limits.max_connections) {
            stop_accepting(thread);
            return;
        }
        struct sockaddr_storage peer;
        socklen_t peerlen = sizeof(peer);
        int fd = accept4(listener->fd, (struct sockaddr *)&peer, &peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC), on = 1;
        if (fd == -1)
            return;
        if (hy_cooldown_check(server->cooldown, (struct sockaddr *)&peer, now_ms())) {
            /* shut down for abusive resets a moment ago (limits.http2.abuse_cooldown): not served */
            close(fd);
            atomic_store_explicit(&thread->abuse_refused, atomic_load_explicit(&thread->abuse_refused, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        h2o_socket_t *sock = h2o_evloop_socket_create(thread->ctx.loop, fd, H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
        atomic_fetch_add(&server->num_conns, 1);
        atomic_fetch_add_explicit(&thread->num_conns, 1, memory_order_relaxed);
        conn_state_t *cs = hy_xmalloc(sizeof(*cs));
        cs->thread = thread;
        cs->fd = fd;
        cs->resets = cs->completed = 0;
        cs->cut = 0;
        cs->proto = -1; /* counted by protocol from its first request (TLS ALPN, h2c prior knowledge or Upgrade) */
        memset(&cs->gate, 0, sizeof(cs->gate));
        memset(&cs->link, 0, sizeof(cs->link));
        cs->outq = 0;
        cs->stalled_since = 0;
        h2o_linklist_insert(&thread->conns, &cs->link);
        cs->gate.sock = sock;
        cs->gate.gate = thread->gate;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = cs;
        h2o_accept(&listener->accept_ctx, sock);
    }
}

/* ---- the write timeout ------------------------------------------------------------------------------------------------ */

/* timeouts.write (libh2o 2.2.5 has no write timer): a connection with a response waiting to be written whose kernel
 * send queue has not moved for that long (the client stopped reading) is shut down; libh2o then sees its write fail
 * and closes the connection. A slow client that keeps reading makes progress and is left alone. */
static void on_write_sweep(h2o_timeout_entry_t *entry)
{
    hy_thread_t *thread = H2O_STRUCT_FROM_MEMBER(hy_thread_t, write_sweep, entry);
    uint64_t now = now_ms(), limit = thread->server->config->timeouts.write_ms;
    for (h2o_linklist_t *n = thread->conns.next; n != &thread->conns; n = n->next) {
        conn_state_t *cs = H2O_STRUCT_FROM_MEMBER(conn_state_t, link, n);
        int outq = 0;
        if (!h2o_socket_is_writing(cs->gate.sock) || ioctl(cs->fd, SIOCOUTQ, &outq) != 0 || outq == 0 || outq != cs->outq) {
            cs->outq = outq;
            cs->stalled_since = 0;
            continue;
        }
        if (cs->stalled_since == 0) {
            cs->stalled_since = now;
        } else if (now - cs->stalled_since >= limit) {
            hy_log("warn", NULL, "closing a connection whose client read nothing of its response for %llu ms (timeouts.write)",
                   (unsigned long long)(now - cs->stalled_since));
            atomic_store_explicit(&thread->write_timeouts, atomic_load_explicit(&thread->write_timeouts, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            shutdown(cs->fd, SHUT_RDWR);
            cs->stalled_since = 0;
        }
    }
    h2o_timeout_link(thread->ctx.loop, &thread->write_sweep_timeout, &thread->write_sweep);
}

/* ---- threads ---------------------------------------------------------------------------------------------------------- */

static void begin_shutdown(hy_thread_t *thread)
{
    if (thread->shutting_down)
        return;
    stop_accepting(thread);
    thread->shutting_down = 1;
    for (size_t i = 0; i != thread->server->nlisteners; ++i) {
        h2o_socket_close(thread->listeners[i].sock);
        thread->listeners[i].sock = NULL;
    }
    h2o_context_request_shutdown(&thread->ctx);
}

static void on_control(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    hy_thread_t *thread = H2O_STRUCT_FROM_MEMBER(hy_thread_t, control, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        control_message_t *m = H2O_STRUCT_FROM_MEMBER(control_message_t, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        if (m->kind == CONTROL_SHUTDOWN) {
            begin_shutdown(thread);
        } else if (m->kind == CONTROL_TLS) {
            /* new certificates: connections being accepted from now on use them; open ones keep theirs */
            for (size_t i = 0; i != thread->server->config->nlisteners; ++i) {
                if (m->ssl_ctxs[i] == NULL)
                    continue;
                SSL_CTX *old = thread->listeners[i].accept_ctx.ssl_ctx;
                thread->listeners[i].accept_ctx.ssl_ctx = m->ssl_ctxs[i];
                if (old != NULL)
                    SSL_CTX_free(old);
            }
            free(m->ssl_ctxs);
        } else if (m->kind == CONTROL_RESUME &&
                   atomic_load(&thread->server->num_conns) < thread->server->config->limits.max_connections)
            start_accepting(thread);
        free(m);
    }
}

static void *thread_main(void *arg)
{
    hy_thread_t *thread = arg;
    server_t *server = thread->server;
    const hy_config_t *config = server->config;

    /* libh2o's per-connection read buffer starts at 8 KiB; 4 KiB holds any request head hydrant accepts and halves the
     * memory of thousands of connections with a request in flight (the buffer still grows for larger input) */
    h2o_socket_buffer_prototype._initial_buf.capacity = H2O_SOCKET_INITIAL_INPUT_BUFFER_SIZE;
    h2o_linklist_init_anchor(&thread->conns);
    /* the sweep runs 4 times per write timeout, at most once a second */
    h2o_timeout_init(thread->ctx.loop, &thread->write_sweep_timeout,
                     config->timeouts.write_ms / 4 < 1000 ? (config->timeouts.write_ms / 4 != 0 ? config->timeouts.write_ms / 4 : 1)
                                                          : 1000);
    thread->write_sweep.cb = on_write_sweep;
    h2o_timeout_link(thread->ctx.loop, &thread->write_sweep_timeout, &thread->write_sweep);
    if (config->limits.max_active_requests != 0)
        thread->gate = hy_readgate_create(thread->ctx.loop, (size_t)config->limits.max_active_requests, &thread->num_inflight);
    h2o_accept_ctx_t learn = {.ctx = &thread->ctx, .hosts = server->public_hosts};
    hy_readgate_learn(&learn);
    hy_reqid_thread_init(&thread->reqid, (unsigned)thread->index);
    hy_sampler_init(&thread->sampler, (uint64_t)thread->index * 0x9e3779b97f4a7c15u + (uint64_t)time(NULL));
    if (server->log_fd != -1) {
        thread->log = hy_xmalloc(sizeof(*thread->log));
        hy_logbuf_init(thread->log, server->log_fd);
        thread->flush_entry.cb = on_flush;
        h2o_timeout_link(thread->ctx.loop, &thread->ctx.one_sec_timeout, &thread->flush_entry);
    }
    for (size_t i = 0; i != server->nlisteners; ++i) {
        listener_t *l = &thread->listeners[i];
        int admin = i == config->nlisteners;
        l->thread = thread;
        l->tls = !admin && config->listeners[i].tls != NULL;
        l->accept_ctx.ctx = &thread->ctx;
        l->accept_ctx.hosts = admin ? server->admin_hosts : server->public_hosts;
        l->accept_ctx.ssl_ctx = admin ? NULL : server->ssl_ctxs[i];
        if (l->accept_ctx.ssl_ctx != NULL)
            SSL_CTX_up_ref(l->accept_ctx.ssl_ctx); /* this thread's reference (dropped when a reload replaces it) */
        l->fd = thread->fds[i];
        l->sock = h2o_evloop_socket_create(thread->ctx.loop, thread->fds[i], H2O_SOCKET_FLAG_DONT_READ);
        l->sock->data = l;
    }
    if (server->db != NULL)
        thread->db = hy_db_local_attach(server->db, thread->index, thread->ctx.loop, thread->ctx.queue);
    thread->proxy = hy_proxy_local_new(&thread->ctx);
    start_accepting(thread);

    while (!thread->shutting_down)
        h2o_evloop_run(thread->ctx.loop, INT32_MAX);

    /* Drain: HTTP/2 connections got GOAWAY and HTTP/1 responses now say "Connection: close". Wait for the requests
     * in flight; idle keep-alive connections carry none, so they do not hold the exit. */
    uint64_t deadline = now_ms() + atomic_load(&server->current)->config->timeouts.shutdown_ms;
    while (thread->num_conns != 0 && now_ms() < deadline) {
        h2o_evloop_run(thread->ctx.loop, 50);
        if (thread->num_inflight == 0) {
            /* let the last responses and GOAWAY frames flush, then stop */
            uint64_t flush_until = now_ms() + 100;
            while (thread->num_conns != 0 && thread->num_inflight == 0 && now_ms() < flush_until)
                h2o_evloop_run(thread->ctx.loop, 10);
            if (thread->num_inflight == 0)
                break;
        }
    }
    if (thread->db != NULL) {
        hy_db_local_detach(thread->db);
        h2o_evloop_run(thread->ctx.loop, 0); /* frees the sockets the detach closed */
    }
    if (thread->log != NULL) {
        h2o_timeout_unlink(&thread->flush_entry);
        hy_logbuf_flush(thread->log);
    }
    hy_proxy_local_free(thread->proxy);
    thread->proxy = NULL;
    h2o_timeout_unlink(&thread->write_sweep);
    hy_json_thread_dispose();
    return NULL;
}

/* ---- listeners and TLS ------------------------------------------------------------------------------------------------ */

/* Binds one listening socket for `l`. With reuseport, several threads can bind the same address. Returns the fd or
 * -1 with a message on stderr naming the address. */
static int open_listener(const hy_listener_t *l, int reuseport)
{
    struct addrinfo hints = {0}, *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)l->port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(l->host, port, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "hydrant: cannot listen on %s:%u: %s\n", l->host, (unsigned)l->port, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        const char *fmt =
            strchr(l->host, ':') != NULL ? "hydrant: cannot listen on [%s]:%u: %s\n" : "hydrant: cannot listen on %s:%u: %s\n";
        fprintf(stderr, fmt, l->host, (unsigned)l->port, strerror(e));
        if (fd != -1)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    freeaddrinfo(res);
    return fd;
}

/* Session-ticket keys: one ring for every TLS context (so tickets survive a certificate reload), a new encryption key
 * every TICKET_ROTATE_S seconds, the previous one still accepted for decryption. */
#define TICKET_ROTATE_S 3600

typedef struct st_ticket_key_t {
    unsigned char name[16]; /* key name sent in the ticket */
    unsigned char aes[32];  /* AES-256-CBC key */
    unsigned char hmac[32]; /* HMAC-SHA256 key */
    time_t created;         /* when it was made (0: unused slot) */
} ticket_key_t;

static pthread_mutex_t ticket_lock = PTHREAD_MUTEX_INITIALIZER;
static ticket_key_t ticket_keys[2]; /* [0] encrypts and decrypts, [1] (the previous) decrypts only */

static int new_ticket_key(ticket_key_t *k)
{
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
        return -1;
    k->created = time(NULL);
    return 0;
}

static int on_ticket_key(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    (void)ssl;
    ticket_key_t k;
    int ret = 0, renew = 0;
    pthread_mutex_lock(&ticket_lock);
    time_t now = time(NULL);
    if (ticket_keys[0].created == 0 || now - ticket_keys[0].created >= TICKET_ROTATE_S) {
        ticket_keys[1] = ticket_keys[0];
        if (new_ticket_key(&ticket_keys[0]) != 0) {
            pthread_mutex_unlock(&ticket_lock);
            return -1;
        }
    }
    if (enc) {
        k = ticket_keys[0];
    } else if (memcmp(name, ticket_keys[0].name, 16) == 0) {
        k = ticket_keys[0];
    } else if (ticket_keys[1].created != 0 && memcmp(name, ticket_keys[1].name, 16) == 0) {
        k = ticket_keys[1];
        renew = 1; /* accept, and have the client take a ticket under the current key */
    } else {
        pthread_mutex_unlock(&ticket_lock);
        return 0; /* unknown key: full handshake */
    }
    pthread_mutex_unlock(&ticket_lock);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string("key", k.hmac, sizeof(k.hmac)),
                           OSSL_PARAM_construct_utf8_string("digest", (char *)"sha256", 0), OSSL_PARAM_construct_end()};
    if (enc) {
        memcpy(name, k.name, 16);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 || EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1 ||
            EVP_MAC_CTX_set_params(hctx, params) != 1)
            return -1;
        ret = 1;
    } else {
        if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1 || EVP_MAC_CTX_set_params(hctx, params) != 1)
            return -1;
        ret = renew ? 2 : 1;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return ret;
}

/* TLS 1.2 minimum (the configured min_version), TLS 1.3 preferred, AEAD suites with forward secrecy only, the server's
 * order, no compression or renegotiation, rotating session-ticket keys, ALPN h2 first. */
static SSL_CTX *create_ssl_ctx(const hy_tls_t *tls)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, tls->min_version);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
    if (SSL_CTX_use_certificate_chain_file(ctx, tls->certificate) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, tls->key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        unsigned long e = ERR_get_error();
        char msg[256];
        ERR_error_string_n(e, msg, sizeof(msg));
        hy_log("error", NULL, "cannot load TLS certificate \"%s\" and its key: %s", tls->certificate, msg);
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_alpn_protocols); /* h2 first, then http/1.1 */
    return ctx;
}

/* ---- libh2o configuration --------------------------------------------------------------------------------------------- */

static void setup_globalconf(server_t *server)
{
    const hy_config_t *c = server->config;
    h2o_globalconf_t *g = &server->globalconf;
    h2o_config_init(g);
    g->server_name = h2o_iovec_init(H2O_STRLIT("hydrant"));
    /* libh2o answers an HTTP/2 body over its limit with RST_STREAM(REFUSED_STREAM), which clients retry; so its limit is a
     * hard cap above ours, and on_req answers 413 for bodies between the two */
    g->max_request_entity_size = c->limits.max_request_body * 4 > c->limits.max_request_body + (1u << 20)
                                     ? c->limits.max_request_body * 4
                                     : c->limits.max_request_body + (1u << 20);
    g->handshake_timeout = c->timeouts.handshake_ms;
    g->http1.req_timeout = c->timeouts.read_ms;
    g->http1.upgrade_to_http2 = 1;
    g->http2.idle_timeout = c->timeouts.idle_ms;
    g->http2.graceful_shutdown_timeout = c->timeouts.shutdown_ms;
    g->http2.max_concurrent_requests_per_connection = c->limits.max_concurrent_streams;

    /* one host for the public listeners and one for server.admin, each with its own root handler; every listener is
     * given its own hosts list, so a Host header cannot reach the other one */
    for (int admin = 0; admin != 2; ++admin) {
        h2o_hostconf_t *host = h2o_config_register_host(g, h2o_iovec_init(admin ? "admin" : "default", admin ? 5 : 7), 65535);
        h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
        root_handler_t *root = (root_handler_t *)h2o_create_handler(path, sizeof(*root));
        root->super.on_req = on_req;
        root->server = server;
        root->admin = admin;
        h2o_logger_t *logger = h2o_create_logger(path, sizeof(*logger));
        logger->log_access = on_log_access;
        (admin ? server->admin_hosts : server->public_hosts)[0] = host;
    }

    server->not_found = hy_error_body_render(404, "not_found", "no route matches this path");
    server->method_not_allowed = hy_error_body_render(405, "method_not_allowed", "the route does not allow this method");
    server->bad_path = hy_error_body_render(400, "bad_request", "the request path is malformed");
    server->internal_error = hy_error_body_render(500, "internal_error", "the handler failed");
    server->too_large = hy_error_body_render(413, "payload_too_large", "the request body is larger than the server accepts");
    server->headers_too_large =
        hy_error_body_render(431, "request_header_fields_too_large", "the request has too many or too large header fields");
    server->overloaded = hy_error_body_render(503, "overloaded", "too many requests in flight; retry shortly");
}

/* ---- the database pool ------------------------------------------------------------------------------------------------ */

/* Creates the pool with every statement of the handlers the routes use (each statement once). Returns 0 or -1. */
static int setup_database(server_t *server)
{
    const hy_config_t *c = server->config;
    if (!c->has_database)
        return 0;
    size_t cap = 0, n = 0;
    for (size_t i = 0; i != c->nroutes; ++i)
        if (c->routes[i].kind == HY_ROUTE_HANDLER && c->routes[i].handler->stmts != NULL)
            for (const hy_db_stmt_t *const *s = c->routes[i].handler->stmts; *s != NULL; ++s)
                ++cap;
    const hy_db_stmt_t **stmts = hy_xcalloc(cap + 1, sizeof(*stmts));
    for (size_t i = 0; i != c->nroutes; ++i) {
        if (c->routes[i].kind != HY_ROUTE_HANDLER || c->routes[i].handler->stmts == NULL)
            continue;
        for (const hy_db_stmt_t *const *s = c->routes[i].handler->stmts; *s != NULL; ++s) {
            size_t k = 0;
            while (k != n && stmts[k] != *s)
                ++k;
            if (k == n)
                stmts[n++] = *s;
        }
    }
    hy_db_settings_t settings;
    hy_conninfo_build(&c->database, &server->conninfo);
    hy_db_settings_build(&c->database, &server->conninfo, &settings);
    server->db = hy_db_pool_create(&settings, (const hy_db_stmt_t *const *)stmts, n, c->threads);
    if (server->db == NULL) {
        fprintf(stderr, "hydrant: cannot create the database pool\n");
        free(stmts);
        return -1;
    }
    free(stmts);
    /* the sql routes' statements join the C handlers' (prepared on first use on each connection) */
    for (size_t i = 0; i != c->nroutes; ++i)
        if (c->routes[i].kind == HY_ROUTE_SQL &&
            (c->routes[i].sql->registered = hy_db_pool_register(server->db, &c->routes[i].sql->stmt)) == NULL) {
            fprintf(stderr, "hydrant: too many sql statements (at most %d)\n", HY_DB_MAX_STMTS);
            return -1;
        }
    /* what the metrics know: every statement known at start (those a reload adds are not counted) */
    server->nstmts = hy_db_pool_nstmts(server->db);
    server->stmts = hy_xcalloc(server->nstmts + 1, sizeof(*server->stmts));
    for (size_t i = 0; i != server->nstmts; ++i)
        server->stmts[i] = hy_db_pool_stmt(server->db, i);
    n = server->nstmts;
    char where[256];
    hy_database_describe(&c->database, where, sizeof(where));
    hy_log("info", NULL, "database %s (pool: max_open=%ju, %zu statements)", where, (uintmax_t)c->database.max_open, n);
    atomic_store(&process_db, server->db);
    return 0;
}

/* ---- running ---------------------------------------------------------------------------------------------------------- */

static int open_all_listeners(server_t *server)
{
    const hy_config_t *c = server->config;
    for (size_t i = 0; i != server->nlisteners; ++i) {
        const hy_listener_t *l = i == c->nlisteners ? c->admin : &c->listeners[i];
        /* A probe bound without SO_REUSEPORT fails when anything (even another hydrant) holds the address, which a
         * reuseport bind alone would silently share. */
        int probe = open_listener(l, 0);
        if (probe == -1)
            return -1;
        close(probe);
        for (size_t t = 0; t != c->threads; ++t)
            if ((server->threads[t].fds[i] = open_listener(l, 1)) == -1)
                return -1;
    }
    return 0;
}

/* ---- metrics and status ----------------------------------------------------------------------------------------------- */

static void on_db_acquired(void *data, size_t thread, double seconds)
{
    server_t *server = data;
    hy_metrics_histogram_observe(server->threads[thread].metrics, server->db_acquire_family, 0, seconds);
}

static void on_db_done(void *data, size_t thread, size_t stmt, hy_db_status_t status, double seconds)
{
    server_t *server = data;
    hy_thread_t *t = &server->threads[thread];
    int outcome = status == HY_DB_OK            ? DB_OUTCOME_OK
                  : status == HY_DB_QUERY_ERROR ? DB_OUTCOME_ERROR
                  : status == HY_DB_OVERLOADED  ? DB_OUTCOME_OVERLOADED
                  : status == HY_DB_UNAVAILABLE ? DB_OUTCOME_UNAVAILABLE
                                                : DB_OUTCOME_UNKNOWN;
    if (stmt >= server->nstmts)
        return;
    _Atomic uint64_t *n = &t->db_queries[stmt * DB_NOUTCOMES + (size_t)outcome];
    atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1, memory_order_relaxed);
    if (status == HY_DB_OK || status == HY_DB_QUERY_ERROR)
        hy_metrics_histogram_observe(t->metrics, server->db_query_family, stmt, seconds);
}

/* The `statement` label of a statement's metrics. */
static const char *stmt_label(const hy_db_stmt_t *stmt)
{
    return stmt->label != NULL ? stmt->label : stmt->name;
}

/* Scrape-time families: build info, threads, the pool's gauges and counters, statements by outcome. */
static void on_collect(void *data, hy_metrics_writer_t *w)
{
    server_t *server = data;
    char labels[1024], ossl[128], esc[3][160];
    snprintf(ossl, sizeof(ossl), "%s", OpenSSL_version(OPENSSL_VERSION));
    hy_metrics_escape_label_value(HY_VERSION, esc[0], sizeof(esc[0]));
    hy_metrics_escape_label_value(H2O_VERSION, esc[1], sizeof(esc[1]));
    hy_metrics_escape_label_value(ossl, esc[2], sizeof(esc[2]));
    snprintf(labels, sizeof(labels), "version=\"%s\",h2o_version=\"%s\",openssl_version=\"%s\"", esc[0], esc[1], esc[2]);
    hy_metrics_write_gauge(w, "hydrant_build_info", "hydrant's version and the versions of its libraries.", labels, 1);
    hy_metrics_write_gauge(w, "hydrant_threads", "Event-loop threads.", NULL, server->config->threads);
    uint64_t rejected = 0, timed_out = 0, cut = 0;
    for (size_t t = 0; t != server->config->threads; ++t) {
        rejected += atomic_load_explicit(&server->threads[t].rejected, memory_order_relaxed);
        timed_out += atomic_load_explicit(&server->threads[t].timed_out, memory_order_relaxed);
        cut += atomic_load_explicit(&server->threads[t].resets_cut, memory_order_relaxed);
    }
    hy_metrics_write_counter(w, "hydrant_admission_rejected_total", "Requests answered 503 at once by the admission limits.", NULL,
                             (double)rejected);
    hy_metrics_write_counter(w, "hydrant_deadline_exceeded_total", "Requests answered 504 when their deadline passed.", NULL,
                             (double)timed_out);
    size_t parked = 0;
    uint64_t parked_total = 0;
    for (size_t t = 0; t != server->config->threads; ++t) {
        parked += hy_readgate_parked(server->threads[t].gate);
        parked_total += hy_readgate_parked_total(server->threads[t].gate);
    }
    hy_metrics_write_gauge(w, "hydrant_http1_parked_connections",
                           "HTTP/1.1 connections waiting to send their next request (limits.max_active_requests).", NULL,
                           (double)parked);
    hy_metrics_write_counter(w, "hydrant_http1_parked_total", "Times an HTTP/1.1 connection waited at limits.max_active_requests.",
                             NULL, (double)parked_total);
    uint64_t refused = 0, write_timeouts = 0;
    for (size_t t = 0; t != server->config->threads; ++t) {
        refused += atomic_load_explicit(&server->threads[t].abuse_refused, memory_order_relaxed);
        write_timeouts += atomic_load_explicit(&server->threads[t].write_timeouts, memory_order_relaxed);
    }
    hy_metrics_write_counter(w, "hydrant_write_timeouts_total",
                             "Connections closed because their client read nothing of a response for timeouts.write.", NULL,
                             (double)write_timeouts);
    hy_metrics_write_counter(w, "hydrant_http2_abuse_refused_total",
                             "Connections closed at accept: their address was cooling down after abusive resets.", NULL,
                             (double)refused);
    hy_metrics_write_counter(w, "hydrant_http2_reset_abuse_closed_total",
                             "HTTP/2 connections shut down for resetting too many streams.", NULL, (double)cut);
    hy_metrics_write_counter(w, "hydrant_config_reloads_total", "Configuration reloads by result.", "result=\"success\"",
                             (double)atomic_load(&server->reloads_ok));
    hy_metrics_write_counter(w, "hydrant_config_reloads_total", "Configuration reloads by result.", "result=\"failure\"",
                             (double)atomic_load(&server->reloads_failed));
    hy_metrics_write_gauge(w, "hydrant_config_last_reload_success_timestamp_seconds",
                           "When the configuration in use was loaded (Unix time).", NULL,
                           (double)atomic_load(&server->last_reload_ok));
    if (server->db == NULL)
        return;
    hy_db_stats_t st;
    hy_db_pool_stats(server->db, &st);
    hy_metrics_write_gauge(w, "hydrant_db_pool_connections", "Database connections by state.", "state=\"open\"", (double)st.open);
    hy_metrics_write_gauge(w, "hydrant_db_pool_connections", "Database connections by state.", "state=\"idle\"", (double)st.idle);
    hy_metrics_write_gauge(w, "hydrant_db_pool_connections", "Database connections by state.", "state=\"in_use\"",
                           (double)st.in_use);
    hy_metrics_write_gauge(w, "hydrant_db_pool_waiting", "Statements waiting for a database connection.", NULL, (double)st.waiting);
    hy_metrics_write_gauge(w, "hydrant_db_pool_ready", "1 when the pool has a live connection.", NULL,
                           hy_db_pool_ready(server->db));
    hy_metrics_write_gauge(w, "hydrant_db_circuit_open", "1 while the circuit breaker fails database statements fast.", NULL,
                           st.breaker_open);
    hy_metrics_write_counter(w, "hydrant_db_circuit_opened_total", "Times the circuit breaker opened.", NULL,
                             (double)st.breaker_opened);
    hy_metrics_write_counter(w, "hydrant_db_cancels_total", "Cancel requests sent for abandoned long-running statements.", NULL,
                             (double)st.cancels);
    hy_metrics_write_counter(w, "hydrant_db_pool_acquire_timeouts_total",
                             "Statements that found no connection within acquire_timeout.", NULL, (double)st.acquire_timeouts);
    hy_metrics_write_counter(w, "hydrant_db_pool_connection_errors_total", "Failed connection attempts and lost connections.", NULL,
                             (double)st.connect_errors);
    for (size_t s = 0; s != server->nstmts; ++s) {
        for (int o = 0; o != DB_NOUTCOMES; ++o) {
            uint64_t sum = 0;
            for (size_t t = 0; t != server->config->threads; ++t)
                sum += atomic_load_explicit(&server->threads[t].db_queries[s * DB_NOUTCOMES + (size_t)o], memory_order_relaxed);
            char esc[512];
            hy_metrics_escape_label_value(stmt_label(server->stmts[s]), esc, sizeof(esc));
            snprintf(labels, sizeof(labels), "statement=\"%s\",outcome=\"%s\"", esc, db_outcomes[o]);
            hy_metrics_write_counter(w, "hydrant_db_queries_total", "Statements run, by statement and outcome.", labels,
                                     (double)sum);
        }
    }
}

/* Creates the registry with the route templates, the pool's families and the collectors. */
static void setup_metrics(server_t *server)
{
    const hy_config_t *c = server->config;
    const char **routes = hy_xcalloc(c->nroutes + 1, sizeof(*routes));
    for (size_t i = 0; i != c->nroutes; ++i)
        routes[i] = c->routes[i].path;
    server->metrics = hy_metrics_create(c->threads, routes, c->nroutes, c->buckets, c->nbuckets);
    free(routes);
    if (server->metrics == NULL) {
        hy_log("error", NULL, "cannot create the metrics registry");
        abort();
    }
    if (server->db != NULL) {
        const char **names = hy_xcalloc(server->nstmts + 1, sizeof(*names));
        for (size_t i = 0; i != server->nstmts; ++i)
            names[i] = stmt_label(server->stmts[i]);
        if (hy_metrics_add_histogram(server->metrics, "hydrant_db_pool_acquire_seconds",
                                     "Time statements waited for a database connection.", NULL, NULL, 1, NULL, 0,
                                     &server->db_acquire_family) != 0 ||
            hy_metrics_add_histogram(server->metrics, "hydrant_db_query_duration_seconds",
                                     "Time from sending a statement to its answer, by statement.", "statement", names,
                                     server->nstmts, NULL, 0, &server->db_query_family) != 0) {
            hy_log("error", NULL, "cannot create the database metrics");
            abort();
        }
        free(names);
        hy_db_observer_t obs = {on_db_acquired, on_db_done, server};
        hy_db_pool_set_observer(server->db, &obs);
    }
    hy_metrics_add_collector(server->metrics, hy_procstat_collect, NULL);
    hy_metrics_add_collector(server->metrics, on_collect, server);
    for (size_t t = 0; t != c->threads; ++t) {
        server->threads[t].metrics = hy_metrics_shard(server->metrics, t);
        server->threads[t].db_queries = hy_xcalloc(server->nstmts * DB_NOUTCOMES + 1, sizeof(_Atomic uint64_t));
    }
}

char *hy_server_metrics_render(size_t *len)
{
    return the_server != NULL ? hy_metrics_render(the_server->metrics, len) : NULL;
}

void hy_server_write_status(yajl_gen g)
{
    server_t *server = the_server;
    const hy_config_t *c = server->config;
    struct timeval now;
    gettimeofday(&now, NULL);
    double uptime = (double)(now.tv_sec - server->started_at.tv_sec) + (double)(now.tv_usec - server->started_at.tv_usec) / 1e6;
    char num[64];

    yajl_gen_map_open(g);
    hy_json_kv_str(g, "version", HY_VERSION);
    hy_json_kv_str(g, "h2o_version", H2O_VERSION);
    hy_json_str(g, "uptime_seconds");
    snprintf(num, sizeof(num), "%.3f", uptime);
    yajl_gen_number(g, num, strlen(num));
    hy_json_kv_str(g, "state", atomic_load(&draining) ? "draining" : "serving");
    hy_json_kv_int(g, "threads", c->threads);
    hy_json_str(g, "per_thread");
    yajl_gen_array_open(g);
    uint64_t total_req = 0, total_conn = 0;
    for (size_t t = 0; t != c->threads; ++t) {
        uint64_t r = atomic_load_explicit(&server->threads[t].requests, memory_order_relaxed);
        size_t n = atomic_load_explicit(&server->threads[t].num_conns, memory_order_relaxed);
        total_req += r;
        total_conn += n;
        yajl_gen_map_open(g);
        hy_json_kv_int(g, "thread", (long long)t);
        hy_json_kv_int(g, "connections", (long long)n);
        hy_json_kv_int(g, "requests", (long long)r);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    hy_json_kv_int(g, "connections", (long long)total_conn);
    hy_json_kv_int(g, "requests", (long long)total_req);
    hy_json_str(g, "database");
    if (server->db == NULL) {
        yajl_gen_null(g);
    } else {
        hy_db_stats_t st;
        char where[256];
        hy_db_pool_stats(server->db, &st);
        hy_database_describe(&c->database, where, sizeof(where));
        yajl_gen_map_open(g);
        hy_json_kv_str(g, "target", where); /* user@host:port/db: never the password */
        hy_json_str(g, "ready");
        yajl_gen_bool(g, hy_db_pool_ready(server->db));
        hy_json_kv_int(g, "open", (long long)st.open);
        hy_json_kv_int(g, "idle", (long long)st.idle);
        hy_json_kv_int(g, "in_use", (long long)st.in_use);
        hy_json_kv_int(g, "waiting", (long long)st.waiting);
        hy_json_kv_int(g, "max_open", (long long)c->database.max_open);
        hy_json_kv_int(g, "acquire_timeouts", (long long)st.acquire_timeouts);
        hy_json_kv_int(g, "connection_errors", (long long)st.connect_errors);
        yajl_gen_map_close(g);
    }
    snapshot_t *snap = atomic_load(&server->current);
    hy_json_str(g, "config");
    yajl_gen_map_open(g);
    hy_json_kv_str(g, "file", snap->config->file);
    hy_json_kv_int(g, "loaded_at", (long long)snap->config->loaded_at);
    hy_json_kv_int(g, "generation", (long long)snap->generation);
    hy_json_kv_int(g, "routes", (long long)snap->config->nroutes);
    hy_json_kv_int(g, "reloads_ok", (long long)atomic_load(&server->reloads_ok));
    hy_json_kv_int(g, "reloads_failed", (long long)atomic_load(&server->reloads_failed));
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
}

/* ---- reload ----------------------------------------------------------------------------------------------------------- */

static int same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Logs each setting of `n` that differs from the running `o` but cannot change without a restart. */
static void report_restart_only(const hy_config_t *o, const hy_config_t *n)
{
    int listeners_same = o->nlisteners == n->nlisteners;
    for (size_t i = 0; listeners_same && i != o->nlisteners; ++i) {
        const hy_listener_t *a = &o->listeners[i], *b = &n->listeners[i];
        /* TLS files and versions are applied live (reload); the addresses and TLS-or-not are not */
        listeners_same = same_str(a->host, b->host) && a->port == b->port && (a->tls == NULL) == (b->tls == NULL);
    }
    if (!listeners_same)
        hy_log("warn", NULL, "reload: server.listen changed; it takes effect after a restart");
    if (o->threads != n->threads)
        hy_log("warn", NULL, "reload: server.threads changed (%u -> %u); it takes effect after a restart", o->threads, n->threads);
    if ((o->admin == NULL) != (n->admin == NULL) ||
        (o->admin != NULL && (!same_str(o->admin->host, n->admin->host) || o->admin->port != n->admin->port)))
        hy_log("warn", NULL, "reload: server.admin changed; it takes effect after a restart");
    if (o->timeouts.handshake_ms != n->timeouts.handshake_ms || o->timeouts.read_ms != n->timeouts.read_ms ||
        o->timeouts.idle_ms != n->timeouts.idle_ms || o->timeouts.write_ms != n->timeouts.write_ms ||
        o->limits.max_concurrent_streams != n->limits.max_concurrent_streams ||
        o->limits.max_connections != n->limits.max_connections || o->limits.max_active_requests != n->limits.max_active_requests)
        hy_log("warn", NULL,
               "reload: timeouts.handshake/read/idle/write or limits.max_connections/max_active_requests/http2 changed; they take "
               "effect after a restart");
    if (!same_str(o->access_log_path, n->access_log_path))
        hy_log("warn", NULL, "reload: access_log.path changed; it takes effect after a restart");
    if (o->nbuckets != n->nbuckets || (o->nbuckets != 0 && memcmp(o->buckets, n->buckets, o->nbuckets * sizeof(double)) != 0))
        hy_log("warn", NULL, "reload: metrics.buckets changed; it takes effect after a restart");
    const hy_database_t *a = &o->database, *b = &n->database;
    if (o->has_database != n->has_database || !same_str(a->url, b->url) || !same_str(a->host, b->host) ||
        !same_str(a->port, b->port) || !same_str(a->user, b->user) || !same_str(a->password, b->password) ||
        !same_str(a->name, b->name) || !same_str(a->sslmode, b->sslmode) || a->max_open != b->max_open ||
        a->max_idle != b->max_idle || a->max_lifetime_ms != b->max_lifetime_ms || a->max_idle_time_ms != b->max_idle_time_ms ||
        a->acquire_timeout_ms != b->acquire_timeout_ms || a->queue_limit != b->queue_limit ||
        a->connect_timeout_ms != b->connect_timeout_ms || a->statement_timeout_ms != b->statement_timeout_ms ||
        a->pipeline_depth != b->pipeline_depth)
        hy_log("warn", NULL, "reload: the database settings changed; they take effect after a restart");
}

/* Builds a snapshot for `config` (taking ownership when owned): maps its routes onto the metrics registry's. */
static snapshot_t *snapshot_new(server_t *server, hy_config_t *config, int owned, uint64_t generation)
{
    const hy_config_t *boot = server->config;
    snapshot_t *s = hy_xcalloc(1, sizeof(*s));
    s->metric_route = hy_xcalloc(config->nroutes + 1, sizeof(size_t));
    s->route_inflight = hy_xcalloc((size_t)boot->threads * (config->nroutes + 1), sizeof(size_t));
    s->config = config;
    s->owned = owned;
    hy_proxy_bind(config);
    s->generation = generation;
    atomic_init(&s->refs, 1);
    for (size_t i = 0; i != config->nroutes; ++i) {
        s->metric_route[i] = SIZE_MAX; /* "none" until found among the routes the registry was made with */
        for (size_t k = 0; k != boot->nroutes; ++k)
            if (strcmp(boot->routes[k].path, config->routes[i].path) == 0)
                s->metric_route[i] = k;
    }
    return s;
}

/* For a reload: validates the new config's sql routes against the database and registers their statements with the
 * running pool. Returns 0, or -1 after logging why the reload is refused. */
static int register_sql_routes(server_t *server, hy_config_t *n)
{
    size_t nsql = 0;
    for (size_t i = 0; i != n->nroutes; ++i)
        nsql += n->routes[i].kind == HY_ROUTE_SQL;
    if (nsql == 0)
        return 0;
    if (server->db == NULL) {
        hy_log("error", NULL,
               "reload rejected: %s has sql routes but this process started without a database; restart to serve them", n->file);
        return -1;
    }
    hy_diags_t diags = {0};
    char why[512];
    int r = hy_sql_validate(n, &diags, why, sizeof(why));
    for (size_t i = 0; i != diags.count; ++i)
        hy_log("error", NULL, "reload rejected: %s", diags.msgs[i]);
    hy_diags_clear(&diags);
    if (r < 0)
        return -1;
    if (r > 0)
        hy_log("warn", NULL, "reload: the sql routes' queries were not checked: the database is unreachable (%s)", why);
    for (size_t i = 0; i != n->nroutes; ++i) {
        hy_route_t *route = &n->routes[i];
        if (route->kind == HY_ROUTE_SQL && (route->sql->registered = hy_db_pool_register(server->db, &route->sql->stmt)) == NULL) {
            hy_log("error", NULL, "reload rejected: %s:%u:%u: routes[%zu].sql: this process knows %d statements already; restart",
                   n->file, route->pos.line, route->pos.col, i, HY_DB_MAX_STMTS);
            return -1;
        }
    }
    return 0;
}

/* Loads the config file again; when valid (and servable by what is running), publishes it. Returns 0 or -1. */
static int reload(server_t *server)
{
    hy_diags_t diags = {0};
    hy_config_t *n = hy_config_load(server->config->file, &diags);
    if (n == NULL) {
        for (size_t i = 0; i != diags.count; ++i)
            hy_log("error", NULL, "reload rejected: %s", diags.msgs[i]);
        hy_diags_clear(&diags);
        atomic_fetch_add(&server->reloads_failed, 1);
        return -1;
    }
    hy_diags_clear(&diags);
    /* every statement the new routes run must be prepared by the running pool */
    for (size_t i = 0; i != n->nroutes; ++i) {
        const hy_route_t *r = &n->routes[i];
        if (r->kind != HY_ROUTE_HANDLER || r->handler->stmts == NULL)
            continue;
        for (const hy_db_stmt_t *const *st = r->handler->stmts; *st != NULL; ++st) {
            size_t k = 0;
            while (k != server->nstmts && server->stmts[k] != *st)
                ++k;
            if (server->db == NULL || k == server->nstmts) {
                hy_log("error", NULL,
                       "reload rejected: %s:%u:%u: routes[%zu].handler: \"%s\" needs database statements this process has "
                       "not prepared; restart to serve it",
                       n->file, r->pos.line, r->pos.col, i, r->handler_name);
                hy_config_free(n);
                atomic_fetch_add(&server->reloads_failed, 1);
                return -1;
            }
        }
    }
    /* the sql routes' queries must prepare on the database as it is now; the running pool then learns them */
    if (register_sql_routes(server, n) != 0) {
        hy_config_free(n);
        atomic_fetch_add(&server->reloads_failed, 1);
        return -1;
    }
    /* certificates and keys are read again (Kubernetes Secret rotation) for each listener that kept its address */
    SSL_CTX **fresh = hy_xcalloc(server->config->nlisteners, sizeof(*fresh));
    for (size_t i = 0; i != server->config->nlisteners && i != n->nlisteners; ++i) {
        const hy_listener_t *a = &server->config->listeners[i], *b = &n->listeners[i];
        if (a->tls == NULL || b->tls == NULL || a->port != b->port || strcmp(a->host, b->host) != 0)
            continue;
        if ((fresh[i] = create_ssl_ctx(b->tls)) == NULL) {
            for (size_t k = 0; k != i; ++k)
                if (fresh[k] != NULL)
                    SSL_CTX_free(fresh[k]);
            free(fresh);
            hy_config_free(n);
            atomic_fetch_add(&server->reloads_failed, 1);
            hy_log("error", NULL, "reload rejected: the TLS certificate of server.listen[%zu] does not load", i);
            return -1;
        }
    }
    for (size_t t = 0; t != server->config->threads; ++t) {
        SSL_CTX **ctxs = hy_xcalloc(server->config->nlisteners, sizeof(*ctxs));
        for (size_t i = 0; i != server->config->nlisteners; ++i)
            if ((ctxs[i] = fresh[i]) != NULL)
                SSL_CTX_up_ref(fresh[i]);
        send_control(&server->threads[t], CONTROL_TLS, ctxs);
    }
    for (size_t i = 0; i != server->config->nlisteners; ++i)
        if (fresh[i] != NULL)
            SSL_CTX_free(fresh[i]); /* the threads hold their own references */
    free(fresh);

    snapshot_t *old = atomic_load(&server->current);
    report_restart_only(server->config, n);
    snapshot_t *s = snapshot_new(server, n, 1, old->generation + 1);
    for (size_t i = 0; i != n->nroutes; ++i)
        if (s->metric_route[i] == SIZE_MAX)
            hy_log("warn", NULL, "reload: route %s is new; its metrics count under route=\"none\" until a restart",
                   n->routes[i].path);
    atomic_store_explicit(&server->current, s, memory_order_release);
    snapshot_release(old); /* the server's reference; threads let go of theirs at their next request */
    atomic_fetch_add(&server->reloads_ok, 1);
    atomic_store(&server->last_reload_ok, (int64_t)time(NULL));
    hy_log("info", NULL, "configuration reloaded from %s (generation %llu, %zu routes)", n->file, (unsigned long long)s->generation,
           n->nroutes);
    return 0;
}

/* Watches the config file's directory: Kubernetes updates a mounted ConfigMap by swapping the `..data` symlink there,
 * and editors replace files by rename. Returns the inotify fd or -1. */
static char *slurp(const char *path, size_t *len);

static int watch_dir_of(int fd, const char *file)
{
    char dir[4096];
    const char *slash = strrchr(file, '/');
    snprintf(dir, sizeof(dir), "%.*s", slash != NULL ? (int)(slash - file) : 1, slash != NULL ? file : ".");
    if (dir[0] == '\0')
        snprintf(dir, sizeof(dir), "/");
    if (inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB) == -1) {
        hy_log("warn", NULL, "cannot watch %s for changes: %s (SIGHUP still reloads)", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Watches the directories of the config file and of the TLS files (a Kubernetes Secret is its own mounted directory). */
static int watch_config(const hy_config_t *config)
{
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd == -1)
        return -1;
    if (watch_dir_of(fd, config->file) != 0) {
        close(fd);
        return -1;
    }
    for (size_t i = 0; i != config->nlisteners; ++i) {
        if (config->listeners[i].tls != NULL) {
            watch_dir_of(fd, config->listeners[i].tls->certificate);
            watch_dir_of(fd, config->listeners[i].tls->key);
        }
    }
    return fd;
}

/* What decides whether a change event needs a reload: the config text and the identity of the TLS files it names. */
/* The config text's hash, as hy_config_load computes it (the fingerprint starts with the text itself). */
static uint64_t file_hash(const char *fp, size_t len)
{
    const char *end = memchr(fp, '\0', len);
    return hy_config_hash(fp, end != NULL ? (size_t)(end - fp) : len);
}

static char *fingerprint(const hy_config_t *config, size_t *len)
{
    char *text = slurp(config->file, len);
    if (text == NULL)
        return NULL;
    /* the text, a NUL, then the TLS files' identities */
    text = hy_xreallocarray(text, *len + 1, 1);
    text[(*len)++] = '\0';
    for (size_t i = 0; i != config->nlisteners; ++i) {
        const hy_tls_t *tls = config->listeners[i].tls;
        for (int k = 0; tls != NULL && k != 2; ++k) {
            struct stat st;
            char line[160];
            int n = stat(k == 0 ? tls->certificate : tls->key, &st) == 0
                        ? snprintf(line, sizeof(line), "\n%llu:%llu:%lld.%ld", (unsigned long long)st.st_ino,
                                   (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec)
                        : snprintf(line, sizeof(line), "\nmissing");
            text = hy_xreallocarray(text, *len + (size_t)n + 1, 1);
            memcpy(text + *len, line, (size_t)n);
            *len += (size_t)n;
        }
    }
    return text;
}

/* Reads the whole file (for change detection). Returns a malloc'ed buffer or NULL. */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    do {
        if (n == cap) {
            char *nb = realloc(buf, cap = cap == 0 ? 8192 : cap * 2);
            if (nb == NULL) {
                free(buf);
                fclose(fp);
                return NULL;
            }
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n, fp);
        n += r;
    } while (r != 0);
    fclose(fp);
    *len = n;
    return buf;
}

int hy_server_run(const hy_config_t *config)
{
    static server_t server; /* process-wide; on_req reaches it through the root handler */
    int ret = 1;
    sigset_t sigs;

    /* Signals go to the main thread only, which waits for them (every thread made from here on inherits the mask). */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    memset(&server, 0, sizeof(server));
    server.config = config;
    server.nlisteners = config->nlisteners + (config->admin != NULL ? 1 : 0);
    server.log_fd = -1;
    gettimeofday(&server.started_at, NULL);
    the_server = &server;
    signal(SIGPIPE, SIG_IGN);

    server.ssl_ctxs = hy_xcalloc(config->nlisteners, sizeof(*server.ssl_ctxs));
    server.threads = hy_xcalloc(config->threads, sizeof(*server.threads));
    for (size_t t = 0; t != config->threads; ++t) {
        server.threads[t].fds = hy_xcalloc(server.nlisteners, sizeof(int));
        server.threads[t].listeners = hy_xcalloc(server.nlisteners, sizeof(listener_t));
        for (size_t i = 0; i != server.nlisteners; ++i)
            server.threads[t].fds[i] = -1;
    }
    for (size_t i = 0; i != config->nlisteners; ++i)
        if (config->listeners[i].tls != NULL && (server.ssl_ctxs[i] = create_ssl_ctx(config->listeners[i].tls)) == NULL)
            goto Exit;
    if (open_all_listeners(&server) != 0)
        goto Exit;
    setup_globalconf(&server);
    if (setup_database(&server) != 0)
        goto Exit;
    setup_metrics(&server);
    atomic_store(&server.current, snapshot_new(&server, (hy_config_t *)config, 0, 1));
    atomic_store(&server.last_reload_ok, (int64_t)time(NULL));
    if (config->access_log_path != NULL) {
        if ((server.log_fd = hy_logbuf_open(config->access_log_path)) == -1) {
            fprintf(stderr, "hydrant: cannot open the access log \"%s\": %s\n", config->access_log_path, strerror(errno));
            goto Exit;
        }
    } else {
        server.log_fd = 1; /* stdout; ready even when no route logs yet, so a reload can turn access_log on */
    }

    for (size_t t = 0; t != config->threads; ++t) {
        hy_thread_t *thread = &server.threads[t];
        thread->index = t;
        thread->server = &server;
        h2o_context_init(&thread->ctx, h2o_evloop_create(), &server.globalconf);
        h2o_multithread_register_receiver(thread->ctx.queue, &thread->control, on_control);
    }
    hy_readgate_set_lookup(gate_lookup);
    server.cooldown = hy_cooldown_create();
    for (size_t t = 0; t != config->threads; ++t)
        h2o_multithread_create_thread(&server.threads[t].tid, NULL, thread_main, &server.threads[t]);

    for (size_t i = 0; i != config->nlisteners; ++i) {
        const hy_listener_t *l = &config->listeners[i];
        hy_log("info", NULL, "listening on %s%s%s:%u (%s)", strchr(l->host, ':') ? "[" : "", l->host,
               strchr(l->host, ':') ? "]" : "", (unsigned)l->port, l->tls ? "TLS: h2, HTTP/1.1" : "HTTP/1.1, h2c");
    }
    if (config->admin != NULL)
        hy_log("info", NULL, "listening on %s%s%s:%u (admin: metrics, status, health, ready)",
               strchr(config->admin->host, ':') ? "[" : "", config->admin->host, strchr(config->admin->host, ':') ? "]" : "",
               (unsigned)config->admin->port);
    if (config->threads_auto) {
        cpu_set_t set;
        int affinity = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
        unsigned quota = hy_cpu_cgroup_limit("/proc/self/cgroup", "/sys/fs/cgroup");
        char why[64] = "no cgroup cpu.max limit";
        if (quota != 0)
            snprintf(why, sizeof(why), "cgroup cpu.max allows %u", quota);
        hy_log("info", NULL, "serving with %u thread%s (threads: auto: %d CPUs in the affinity mask, %s)", config->threads,
               config->threads == 1 ? "" : "s", affinity, why);
    } else {
        hy_log("info", NULL, "serving with %u thread%s (threads: %u in the configuration)", config->threads,
               config->threads == 1 ? "" : "s", config->threads);
    }

    /* The main thread waits for signals and for changes of the config file's directory. */
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK), ifd = watch_config(config);
    size_t text_len = 0;
    char *text = fingerprint(config, &text_len);
    if (text != NULL && config->source_hash != file_hash(text, text_len)) {
        /* the file changed between its loading and now: reload at once */
        free(text);
        text = NULL;
    }
    uint64_t reload_at = text == NULL ? now_ms() : 0, drain_until = 0;
    int terminating = 0, forced = 0;
    for (;;) {
        uint64_t now = now_ms();
        int timeout = -1;
        if (reload_at != 0)
            timeout = reload_at > now ? (int)(reload_at - now) : 0;
        if (terminating) {
            int t = drain_until > now ? (int)(drain_until - now) : 0;
            timeout = timeout < 0 || t < timeout ? t : timeout;
        }
        struct pollfd pfd[2] = {{sfd, POLLIN, 0}, {ifd, POLLIN, 0}};
        poll(pfd, ifd != -1 ? 2 : 1, timeout);
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                if (terminating) {
                    hy_log("warn", NULL, "second termination signal: exiting now");
                    forced = 1;
                    break;
                }
                terminating = 1;
                atomic_store(&draining, 1); /* /ready answers 503 from now on */
                uint64_t delay = atomic_load(&server.current)->config->timeouts.drain_delay_ms;
                drain_until = now_ms() + delay;
                hy_log("info", NULL, "termination signal: not ready; serving for drain_delay %llums, then draining",
                       (unsigned long long)delay);
            } else if (si.ssi_signo == SIGHUP) {
                hy_log("info", NULL, "SIGHUP: reloading the configuration");
                reload_at = now_ms();
                free(text);
                text = NULL; /* reload even when the file did not change */
            }
        }
        if (forced)
            break;
        if (ifd != -1) {
            char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
            int any = 0;
            while (read(ifd, ev, sizeof(ev)) > 0)
                any = 1;
            if (any && reload_at == 0)
                reload_at = now_ms() + 100; /* let the swap finish */
        }
        if (reload_at != 0 && now_ms() >= reload_at) {
            reload_at = 0;
            size_t len = 0;
            char *cur = fingerprint(atomic_load(&server.current)->config, &len);
            if (cur != NULL && (text == NULL || len != text_len || memcmp(cur, text, len) != 0)) {
                reload(&server);
                free(text);
                text = cur;
                text_len = len;
            } else {
                free(cur);
            }
        }
        if (terminating && now_ms() >= drain_until)
            break;
    }
    free(text);
    if (ifd != -1)
        close(ifd);
    if (forced) {
        for (size_t t = 0; t != config->threads; ++t)
            if (server.threads[t].log != NULL)
                hy_logbuf_flush(server.threads[t].log); /* racy at worst: the threads are still running */
        _exit(1);
    }
    hy_log("info", NULL, "shutting down: draining connections (up to %llums)",
           (unsigned long long)atomic_load(&server.current)->config->timeouts.shutdown_ms);
    for (size_t t = 0; t != config->threads; ++t) {
        send_control(&server.threads[t], CONTROL_SHUTDOWN, NULL);
    }
    /* wait for the threads to drain, still listening for a second termination signal */
    for (size_t t = 0; t != config->threads;) {
        if (pthread_tryjoin_np(server.threads[t].tid, NULL) == 0) {
            ++t;
            continue;
        }
        struct pollfd pfd = {sfd, POLLIN, 0};
        poll(&pfd, 1, 20);
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                hy_log("warn", NULL, "second termination signal: exiting now");
                _exit(1);
            }
        }
    }
    close(sfd);
    atomic_store(&process_db, NULL);
    hy_db_pool_free(server.db);
    hy_cooldown_free(server.cooldown);
    free(server.stmts);
    hy_log("info", NULL, "stopped");
    ret = 0;
    /* Contexts and loops are left to process exit: connections still open past the shutdown deadline belong to
     * them, and disposing a context under live connections is unsafe in libh2o 2.2.5. */
    return ret;

Exit:
    for (size_t t = 0; t != config->threads; ++t) {
        for (size_t i = 0; i != server.nlisteners; ++i)
            if (server.threads[t].fds[i] != -1)
                close(server.threads[t].fds[i]);
        free(server.threads[t].fds);
        free(server.threads[t].listeners);
    }
    for (size_t i = 0; i != config->nlisteners; ++i)
        if (server.ssl_ctxs[i] != NULL)
            SSL_CTX_free(server.ssl_ctxs[i]);
    free(server.ssl_ctxs);
    free(server.threads);
    return ret;
}
