/* server.c: listeners, TLS contexts, one libh2o event loop per thread, the root handler that routes every request,
 * connection limits, and the graceful shutdown that SIGTERM starts. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "database.h"
#include "db.h"
#include "handlers.h"
#include "json.h"
#include "respond.h"
#include "server.h"

/* ---- types ------------------------------------------------------------------------------------------------------------ */

typedef struct st_listener_t {
    h2o_accept_ctx_t accept_ctx; /* what h2o_accept needs: context, hosts, SSL_CTX (NULL when plain) */
    h2o_socket_t *sock;          /* the listening socket on this thread's loop */
    hy_thread_t *thread;         /* owner */
} listener_t;

struct st_hy_thread_t {
    h2o_context_t ctx;                  /* this thread's h2o context (first member: handlers reach the thread from it) */
    size_t index;                       /* 0 .. threads-1 */
    pthread_t tid;                      /* the thread */
    struct st_server_t *server;         /* the process-wide state */
    listener_t *listeners;              /* one per configured listener */
    int *fds;                           /* listening fds made for this thread (SO_REUSEPORT), one per listener */
    h2o_multithread_receiver_t control; /* messages from the main thread (shutdown, resume accepting) */
    size_t num_conns;                   /* connections this thread holds now */
    size_t num_inflight;                /* requests this thread is serving now */
    int accepting;                      /* listeners are reading */
    int shutting_down;                  /* a shutdown message arrived */
    hy_db_local_t *db;                  /* this thread's part of the database pool, or NULL */
};

typedef struct st_root_handler_t {
    h2o_handler_t super;        /* first member: h2o calls on_req with this */
    struct st_server_t *server; /* back pointer */
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
    hy_conninfo_t conninfo;             /* libpq parameters (point into config->database) */
    hy_db_pool_t *db;                   /* the one pool, or NULL without a database */
    const hy_db_stmt_t **stmts;         /* the statements the pool prepares (NULL-terminated) */
} server_t;

static _Atomic int draining;             /* set when SIGTERM starts the drain */
static hy_db_pool_t *_Atomic process_db; /* the pool, for readiness */

typedef struct st_control_message_t {
    h2o_multithread_message_t super; /* first member */
    int kind;                        /* CONTROL_* */
} control_message_t;

enum { CONTROL_SHUTDOWN = 1, CONTROL_RESUME };

typedef struct st_inflight_t {
    hy_thread_t *thread; /* whose in-flight count to lower when the request is disposed */
} inflight_t;

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
    return pool == NULL || hy_db_pool_ready(pool);
}

static void on_inflight_dispose(void *p)
{
    inflight_t *f = p;
    --f->thread->num_inflight;
}

static int on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    root_handler_t *self = (root_handler_t *)_self;
    server_t *server = self->server;
    hy_thread_t *thread = hy_thread_of(req);

    inflight_t *f = h2o_mem_alloc_shared(&req->pool, sizeof(*f), on_inflight_dispose);
    f->thread = thread;
    ++thread->num_inflight;

    unsigned method = hy_method_from_name(req->input.method.base, req->input.method.len);
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    char *buf = h2o_mem_alloc_pool(&req->pool, path_len + HY_MAX_PARAMS + 1);
    hy_match_t match;
    switch (hy_router_match(server->config->router, method, req->path.base, path_len, buf, path_len + HY_MAX_PARAMS + 1, &match)) {
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

    if (req->entity.base != NULL && req->entity.len > server->config->limits.max_request_body) {
        hy_respond_error(req, &server->too_large);
        return 0;
    }
    const hy_route_t *route = match.data;
    hy_param_t *params = NULL;
    if (match.nparams != 0) {
        params = h2o_mem_alloc_pool(&req->pool, sizeof(*params) * match.nparams);
        memcpy(params, match.params, sizeof(*params) * match.nparams);
    }
    hy_handler_fn fn = route->kind == HY_ROUTE_STATIC ? hy_static_on_req : route->handler->on_req;
    if (fn(req, route, params, match.nparams) != 0)
        hy_respond_error(req, &server->internal_error);
    return 0;
}

/* ---- accepting connections -------------------------------------------------------------------------------------------- */

static void stop_accepting(hy_thread_t *thread)
{
    if (!thread->accepting)
        return;
    thread->accepting = 0;
    for (size_t i = 0; i != thread->server->config->nlisteners; ++i)
        h2o_socket_read_stop(thread->listeners[i].sock);
}

static void on_accept(h2o_socket_t *listener, const char *err);

static void start_accepting(hy_thread_t *thread)
{
    if (thread->accepting || thread->shutting_down)
        return;
    thread->accepting = 1;
    for (size_t i = 0; i != thread->server->config->nlisteners; ++i)
        h2o_socket_read_start(thread->listeners[i].sock, on_accept);
}

static void on_conn_close(void *data)
{
    hy_thread_t *thread = data;
    server_t *server = thread->server;
    --thread->num_conns;
    size_t prev = atomic_fetch_sub(&server->num_conns, 1);
    if (prev == server->config->limits.max_connections) {
        /* some threads may have paused accepting at the limit: wake them all */
        for (size_t i = 0; i != server->config->threads; ++i) {
            control_message_t *m = calloc(1, sizeof(*m));
            if (m == NULL)
                abort();
            m->kind = CONTROL_RESUME;
            h2o_multithread_send_message(&server->threads[i].control, &m->super);
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
        h2o_socket_t *sock = h2o_evloop_socket_accept(sock_listener);
        if (sock == NULL)
            return;
        atomic_fetch_add(&server->num_conns, 1);
        ++thread->num_conns;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = thread;
        h2o_accept(&listener->accept_ctx, sock);
    }
}

/* ---- threads ---------------------------------------------------------------------------------------------------------- */

static void begin_shutdown(hy_thread_t *thread)
{
    if (thread->shutting_down)
        return;
    stop_accepting(thread);
    thread->shutting_down = 1;
    for (size_t i = 0; i != thread->server->config->nlisteners; ++i) {
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
        if (m->kind == CONTROL_SHUTDOWN)
            begin_shutdown(thread);
        else if (m->kind == CONTROL_RESUME &&
                 atomic_load(&thread->server->num_conns) < thread->server->config->limits.max_connections)
            start_accepting(thread);
        free(m);
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *thread_main(void *arg)
{
    hy_thread_t *thread = arg;
    server_t *server = thread->server;
    const hy_config_t *config = server->config;

    for (size_t i = 0; i != config->nlisteners; ++i) {
        listener_t *l = &thread->listeners[i];
        l->thread = thread;
        l->accept_ctx.ctx = &thread->ctx;
        l->accept_ctx.hosts = server->globalconf.hosts;
        l->accept_ctx.ssl_ctx = server->ssl_ctxs[i];
        l->sock = h2o_evloop_socket_create(thread->ctx.loop, thread->fds[i], H2O_SOCKET_FLAG_DONT_READ);
        l->sock->data = l;
    }
    if (server->db != NULL)
        thread->db = hy_db_local_attach(server->db, thread->index, thread->ctx.loop, thread->ctx.queue);
    start_accepting(thread);

    while (!thread->shutting_down)
        h2o_evloop_run(thread->ctx.loop, INT32_MAX);

    /* Drain: HTTP/2 connections got GOAWAY and HTTP/1 responses now say "Connection: close". Wait for the requests
     * in flight; idle keep-alive connections carry none, so they do not hold the exit. */
    uint64_t deadline = now_ms() + config->timeouts.shutdown_ms;
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

static SSL_CTX *create_ssl_ctx(const hy_tls_t *tls)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, tls->min_version);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    if (SSL_CTX_use_certificate_chain_file(ctx, tls->certificate) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, tls->key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        unsigned long e = ERR_get_error();
        char msg[256];
        ERR_error_string_n(e, msg, sizeof(msg));
        fprintf(stderr, "hydrant: cannot load TLS certificate \"%s\" and its key: %s\n", tls->certificate, msg);
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

    h2o_hostconf_t *host = h2o_config_register_host(g, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    root_handler_t *root = (root_handler_t *)h2o_create_handler(path, sizeof(*root));
    root->super.on_req = on_req;
    root->server = server;

    server->not_found = hy_error_body_render(404, "not_found", "no route matches this path");
    server->method_not_allowed = hy_error_body_render(405, "method_not_allowed", "the route does not allow this method");
    server->bad_path = hy_error_body_render(400, "bad_request", "the request path is malformed");
    server->internal_error = hy_error_body_render(500, "internal_error", "the handler failed");
    server->too_large = hy_error_body_render(413, "payload_too_large", "the request body is larger than the server accepts");
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
    const hy_db_stmt_t **stmts = calloc(cap + 1, sizeof(*stmts));
    if (stmts == NULL)
        abort();
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
    server->stmts = stmts;
    char where[256];
    hy_database_describe(&c->database, where, sizeof(where));
    fprintf(stderr, "hydrant: database %s (pool: max_open=%ju, %zu statements)\n", where, (uintmax_t)c->database.max_open, n);
    atomic_store(&process_db, server->db);
    return 0;
}

/* ---- running ---------------------------------------------------------------------------------------------------------- */

static int open_all_listeners(server_t *server)
{
    const hy_config_t *c = server->config;
    for (size_t i = 0; i != c->nlisteners; ++i) {
        /* A probe bound without SO_REUSEPORT fails when anything (even another hydrant) holds the address, which a
         * reuseport bind alone would silently share. */
        int probe = open_listener(&c->listeners[i], 0);
        if (probe == -1)
            return -1;
        close(probe);
        for (size_t t = 0; t != c->threads; ++t)
            if ((server->threads[t].fds[i] = open_listener(&c->listeners[i], 1)) == -1)
                return -1;
    }
    return 0;
}

int hy_server_run(const hy_config_t *config)
{
    static server_t server; /* process-wide; on_req reaches it through the root handler */
    int ret = 1;
    sigset_t sigs;

    memset(&server, 0, sizeof(server));
    server.config = config;
    signal(SIGPIPE, SIG_IGN);

    server.ssl_ctxs = calloc(config->nlisteners, sizeof(*server.ssl_ctxs));
    server.threads = calloc(config->threads, sizeof(*server.threads));
    if (server.ssl_ctxs == NULL || server.threads == NULL)
        abort();
    for (size_t t = 0; t != config->threads; ++t) {
        server.threads[t].fds = malloc(sizeof(int) * config->nlisteners);
        server.threads[t].listeners = calloc(config->nlisteners, sizeof(listener_t));
        if (server.threads[t].fds == NULL || server.threads[t].listeners == NULL)
            abort();
        for (size_t i = 0; i != config->nlisteners; ++i)
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

    /* Signals go to the main thread only, which waits for them below. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    for (size_t t = 0; t != config->threads; ++t) {
        hy_thread_t *thread = &server.threads[t];
        thread->index = t;
        thread->server = &server;
        h2o_context_init(&thread->ctx, h2o_evloop_create(), &server.globalconf);
        h2o_multithread_register_receiver(thread->ctx.queue, &thread->control, on_control);
    }
    for (size_t t = 0; t != config->threads; ++t)
        h2o_multithread_create_thread(&server.threads[t].tid, NULL, thread_main, &server.threads[t]);

    for (size_t i = 0; i != config->nlisteners; ++i) {
        const hy_listener_t *l = &config->listeners[i];
        fprintf(stderr, "hydrant: listening on %s%s%s:%u (%s)\n", strchr(l->host, ':') ? "[" : "", l->host,
                strchr(l->host, ':') ? "]" : "", (unsigned)l->port, l->tls ? "TLS: h2, HTTP/1.1" : "HTTP/1.1, h2c");
    }
    fprintf(stderr, "hydrant: serving with %u thread%s\n", config->threads, config->threads == 1 ? "" : "s");

    for (;;) {
        int sig = sigwaitinfo(&sigs, NULL);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP)
            fprintf(stderr, "hydrant: SIGHUP ignored (configuration reload is not supported yet)\n");
    }
    atomic_store(&draining, 1);
    fprintf(stderr, "hydrant: shutting down: draining connections (up to %llums)\n",
            (unsigned long long)config->timeouts.shutdown_ms);
    for (size_t t = 0; t != config->threads; ++t) {
        control_message_t *m = calloc(1, sizeof(*m));
        if (m == NULL)
            abort();
        m->kind = CONTROL_SHUTDOWN;
        h2o_multithread_send_message(&server.threads[t].control, &m->super);
    }
    for (size_t t = 0; t != config->threads; ++t)
        pthread_join(server.threads[t].tid, NULL);
    atomic_store(&process_db, NULL);
    hy_db_pool_free(server.db);
    free(server.stmts);
    fprintf(stderr, "hydrant: stopped\n");
    ret = 0;
    /* Contexts and loops are left to process exit: connections still open past the shutdown deadline belong to
     * them, and disposing a context under live connections is unsafe in libh2o 2.2.5. */
    return ret;

Exit:
    for (size_t t = 0; t != config->threads; ++t) {
        for (size_t i = 0; i != config->nlisteners; ++i)
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
