/* proxy.c: the `proxy:` route kind, on libh2o 2.2.5's http1client and socketpool: one keep-alive pool per upstream
 * shared by every thread, our own timers for the connect and response-head deadlines, our own generator streaming the
 * upstream's body, and cancellation when the client or the route's deadline ends the request first. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include "alloc.h"
#include "clientip.h"
#include "log.h"
#include "proxy.h"
#include "respond.h"
#include "server.h"

/* ---- upstreams: process-wide connection pools ------------------------------------------------------------------------- */

struct st_hy_upstream_t {
    struct st_hy_upstream_t *next; /* the next in the process's list */
    char *host;                    /* key: host, port and pool settings */
    uint16_t port;                 /* key */
    uint64_t keepalive;            /* key: connections kept open once their request ends */
    uint64_t idle_ms;              /* key: how long a kept connection may stay idle */
    h2o_socketpool_t pool;         /* libh2o's pool (its idle list is mutex-protected; sockets move between loops) */
    pthread_mutex_t arm_lock;      /* taken once per pool, to start its expiry timer */
    _Atomic int armed;             /* the expiry timer runs (on the loop of the first thread that used the pool) */
};

static pthread_mutex_t upstreams_lock = PTHREAD_MUTEX_INITIALIZER;
static struct st_hy_upstream_t *upstreams; /* every pool made, never freed while the process runs */

void hy_proxy_bind(hy_config_t *config)
{
    pthread_mutex_lock(&upstreams_lock);
    for (size_t i = 0; i != config->nroutes; ++i) {
        hy_proxy_t *px = &config->routes[i].proxy;
        if (config->routes[i].kind != HY_ROUTE_PROXY)
            continue;
        struct st_hy_upstream_t *u;
        for (u = upstreams; u != NULL; u = u->next)
            if (strcmp(u->host, px->host) == 0 && u->port == px->port && u->keepalive == px->keepalive &&
                u->idle_ms == px->idle_timeout_ms)
                break;
        if (u == NULL) {
            u = hy_xcalloc(1, sizeof(*u));
            u->host = hy_xstrdup(px->host);
            u->port = px->port;
            u->keepalive = px->keepalive;
            u->idle_ms = px->idle_timeout_ms;
            h2o_socketpool_init_by_hostport(&u->pool, h2o_iovec_init(u->host, strlen(u->host)), u->port, 0, SIZE_MAX);
            pthread_mutex_init(&u->arm_lock, NULL);
            u->next = upstreams;
            upstreams = u;
        }
        px->rt = u;
    }
    pthread_mutex_unlock(&upstreams_lock);
}

/* libh2o 2.2.5's pool reads the clock of the loop its expiry timer runs on whenever a socket is taken or returned, so
 * that timer must exist before the first use; it is started on the loop of the first thread that uses the pool. */
static void arm(struct st_hy_upstream_t *u, h2o_loop_t *loop)
{
    if (atomic_load_explicit(&u->armed, memory_order_acquire))
        return;
    pthread_mutex_lock(&u->arm_lock);
    if (!atomic_load_explicit(&u->armed, memory_order_relaxed)) {
        h2o_socketpool_set_timeout(&u->pool, loop, u->idle_ms);
        atomic_store_explicit(&u->armed, 1, memory_order_release);
    }
    pthread_mutex_unlock(&u->arm_lock);
}

/* ---- per-thread timer lists and client contexts ----------------------------------------------------------------------- */

#define MAX_TIMERS 32 /* distinct durations one thread keeps timer lists for (beyond: the nearest one is used) */

typedef struct st_pxtimer_t {
    uint64_t ms;                  /* the duration */
    h2o_timeout_t timeout;        /* this thread's list of entries for it */
    h2o_http1client_ctx_t client; /* a client context whose I/O timeout is this duration */
} pxtimer_t;

struct st_hy_proxy_local_t {
    h2o_context_t *ctx;            /* the thread's context */
    pxtimer_t *timers[MAX_TIMERS]; /* by first use */
    size_t ntimers;                /* number of them */
};

hy_proxy_local_t *hy_proxy_local_new(h2o_context_t *ctx)
{
    hy_proxy_local_t *local = hy_xcalloc(1, sizeof(*local));
    local->ctx = ctx;
    return local;
}

void hy_proxy_local_free(hy_proxy_local_t *local)
{
    if (local == NULL)
        return;
    for (size_t i = 0; i != local->ntimers; ++i) {
        pxtimer_t *t = local->timers[i];
        if (!h2o_linklist_is_empty(&t->timeout._entries))
            continue; /* a request still waits on it (the loop stopped with it in flight): left to the process's end */
        h2o_timeout_dispose(local->ctx->loop, &t->timeout);
        free(t);
    }
    free(local);
}

/* This thread's timer list and client context for `ms` (made on first use). */
static pxtimer_t *timer_for(hy_proxy_local_t *local, uint64_t ms)
{
    pxtimer_t *best = NULL;
    for (size_t i = 0; i != local->ntimers; ++i) {
        pxtimer_t *t = local->timers[i];
        if (t->ms == ms)
            return t;
        if (best == NULL || (t->ms > ms ? t->ms - ms : ms - t->ms) < (best->ms > ms ? best->ms - ms : ms - best->ms))
            best = t;
    }
    if (local->ntimers == MAX_TIMERS)
        return best;
    pxtimer_t *t = hy_xcalloc(1, sizeof(*t));
    t->ms = ms;
    h2o_timeout_init(local->ctx->loop, &t->timeout, ms);
    t->client.loop = local->ctx->loop;
    t->client.getaddr_receiver = &local->ctx->receivers.hostinfo_getaddr;
    t->client.io_timeout = &t->timeout;
    local->timers[local->ntimers++] = t;
    return t;
}

/* ---- one proxied request ---------------------------------------------------------------------------------------------- */

/* Lives in req->pool as a shared chunk whose dispose callback cancels the upstream request: nothing runs for it once the
 * request is disposed. */
typedef struct st_proxy_req_t {
    h2o_generator_t super;             /* first member: our generator once the response head is sent */
    h2o_req_t *req;                    /* the request; NULL once torn down */
    const hy_proxy_t *px;              /* the route's settings (the config snapshot outlives the request) */
    hy_proxy_local_t *local;           /* the serving thread's timers */
    h2o_http1client_t *client;         /* the upstream exchange in progress, or NULL */
    h2o_iovec_t reqbufs[2];            /* request head, request body */
    size_t nreqbufs;                   /* 1 or 2 */
    h2o_timeout_entry_t connect_timer; /* proxy.connect_timeout */
    h2o_timeout_entry_t head_timer;    /* proxy.timeout: until the response head */
    h2o_doublebuffer_t sending;        /* body bytes handed to h2o_send, and the next ones */
    h2o_buffer_t *rest;                /* body bytes left over when the upstream finished (client gone) */
    int buffers;                       /* sending and rest are initialised */
    int connecting;                    /* inside h2o_http1client_connect_with_pool (a pooled socket answers at once) */
    int reused;                        /* the exchange runs on a pooled connection */
    int retried;                       /* a failed pooled connection was retried on a new one */
    int idempotent;                    /* the method may be sent twice */
    int is_head;                       /* HEAD: the upstream's answer has no body */
    int upstream_done;                 /* the upstream's body ended (or failed) */
    int body_error;                    /* ... by failing: the client's response ends abruptly */
} proxy_req_t;

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr, h2o_iovec_t **reqbufs, size_t *reqbufcnt,
                                          int *method_is_head);

static void stop_timers(proxy_req_t *st)
{
    if (h2o_timeout_is_linked(&st->connect_timer))
        h2o_timeout_unlink(&st->connect_timer);
    if (h2o_timeout_is_linked(&st->head_timer))
        h2o_timeout_unlink(&st->head_timer);
}

/* Stops everything the request started: timers, the upstream exchange (its connection is closed, not pooled), the
 * buffers. Idempotent; called when the client goes away (generator stop, pool disposal). */
static void teardown(proxy_req_t *st)
{
    stop_timers(st);
    if (st->client != NULL) {
        h2o_http1client_cancel(st->client);
        st->client = NULL;
    }
    if (st->buffers) {
        h2o_doublebuffer_dispose(&st->sending);
        h2o_buffer_dispose(&st->rest);
        st->buffers = 0;
    }
    st->req = NULL;
}

static void on_dispose(void *p)
{
    teardown(p);
}

static void on_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    (void)req;
    teardown((proxy_req_t *)generator);
}

/* Ends the exchange before any response head was sent and answers with a JSON error (dropped when the route's deadline
 * answered already). */
static void fail(proxy_req_t *st, int status, const char *code, const char *message)
{
    stop_timers(st);
    if (st->client != NULL) {
        h2o_http1client_cancel(st->client);
        st->client = NULL;
    }
    hy_log("warn", hy_req_id(st->req), "proxy %s: %s", st->px->upstream, message);
    hy_respond_error_dynamic(st->req, status, code, message);
}

/* Starts (or restarts) the upstream exchange. */
static void start(proxy_req_t *st)
{
    pxtimer_t *t = timer_for(st->local, st->px->timeout_ms);
    st->reused = 0;
    st->connecting = 1;
    h2o_http1client_connect_with_pool(&st->client, st, &t->client, &st->px->rt->pool, on_connect);
    st->connecting = 0;
}

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    proxy_req_t *st = H2O_STRUCT_FROM_MEMBER(proxy_req_t, connect_timer, entry);
    fail(st, 502, "bad_gateway", "could not connect to the upstream within proxy.connect_timeout");
}

static void on_head_timeout(h2o_timeout_entry_t *entry)
{
    proxy_req_t *st = H2O_STRUCT_FROM_MEMBER(proxy_req_t, head_timer, entry);
    fail(st, 504, "upstream_timeout", "the upstream did not answer within proxy.timeout");
}

/* ---- the request sent upstream ---------------------------------------------------------------------------------------- */

/* Appends to a buffer sized by a first pass that only counts (base NULL). */
typedef struct st_writer_t {
    char *base; /* NULL while counting */
    size_t len; /* bytes written (or counted) */
} writer_t;

static void put(writer_t *w, const char *s, size_t len)
{
    if (w->base != NULL)
        memcpy(w->base + w->len, s, len);
    w->len += len;
}

static void put_header(writer_t *w, const char *name, size_t nlen, const char *value, size_t vlen)
{
    put(w, name, nlen);
    put(w, ": ", 2);
    put(w, value, vlen);
    put(w, "\r\n", 2);
}

/* 1 when header `name` (lower case) is named by one of the Connection header values of `headers`. */
static int named_by_connection(const h2o_headers_t *headers, const h2o_iovec_t *name)
{
    for (ssize_t i = -1; (i = h2o_find_header(headers, H2O_TOKEN_CONNECTION, i)) != -1;) {
        h2o_iovec_t v = headers->entries[i].value;
        if (h2o_contains_token(v.base, v.len, name->base, name->len, ','))
            return 1;
    }
    return 0;
}

/* 1 for the hop-by-hop headers (RFC 7230 6.1), which describe one connection and are never forwarded. */
static int is_hop_by_hop(const h2o_headers_t *headers, const h2o_iovec_t *name)
{
    static const h2o_iovec_t fixed[] = {{H2O_STRLIT("connection")}, {H2O_STRLIT("keep-alive")},        {H2O_STRLIT("te")},
                                        {H2O_STRLIT("trailer")},    {H2O_STRLIT("transfer-encoding")}, {H2O_STRLIT("upgrade")}};
    for (size_t i = 0; i != sizeof(fixed) / sizeof(fixed[0]); ++i)
        if (h2o_memis(name->base, name->len, fixed[i].base, fixed[i].len))
            return 1;
    if (name->len >= 6 && strncasecmp(name->base, "proxy-", 6) == 0)
        return 1;
    return named_by_connection(headers, name);
}

/* Request headers the proxy writes itself (or that describe this hop): never copied from the client. */
static int is_rewritten(const h2o_iovec_t *name, int has_id)
{
    static const h2o_iovec_t names[] = {
        {H2O_STRLIT("host")},           {H2O_STRLIT("content-length")},  {H2O_STRLIT("expect")},
        {H2O_STRLIT("http2-settings")}, {H2O_STRLIT("x-forwarded-for")}, {H2O_STRLIT("x-forwarded-proto")}};
    for (size_t i = 0; i != sizeof(names) / sizeof(names[0]); ++i)
        if (h2o_memis(name->base, name->len, names[i].base, names[i].len))
            return 1;
    return has_id && h2o_memis(name->base, name->len, H2O_STRLIT("x-request-id"));
}

/* The path sent upstream: the prefix, then the catch-all's raw rest (or the whole request path when the template has
 * none), then the query string. */
static void put_path(writer_t *w, h2o_req_t *req, const hy_proxy_t *px, const hy_param_t *params, size_t nparams)
{
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    h2o_iovec_t tail = h2o_iovec_init(req->path.base, path_len);
    if (nparams != 0 && params[nparams - 1].type == HY_PARAM_REST)
        tail = h2o_iovec_init(params[nparams - 1].value, params[nparams - 1].len);
    size_t plen = strlen(px->prefix);
    put(w, px->prefix, plen);
    put(w, tail.base, tail.len);
    if (plen == 0 && tail.len == 0)
        put(w, "/", 1);
    if (req->query_at != SIZE_MAX)
        put(w, req->path.base + req->query_at, req->path.len - req->query_at);
}

/* Writes (or counts) the request head. */
static void put_head(writer_t *w, h2o_req_t *req, const hy_proxy_t *px, const hy_param_t *params, size_t nparams, h2o_iovec_t xff,
                     const char *id)
{
    put(w, req->method.base, req->method.len);
    put(w, " ", 1);
    put_path(w, req, px, params, nparams);
    put(w, H2O_STRLIT(" HTTP/1.1\r\n"));
    if (px->preserve_host)
        put_header(w, H2O_STRLIT("host"), req->authority.base, req->authority.len);
    else
        put_header(w, H2O_STRLIT("host"), px->authority, strlen(px->authority));
    for (size_t i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (is_hop_by_hop(&req->headers, h->name) || is_rewritten(h->name, id != NULL))
            continue;
        put_header(w, h->name->base, h->name->len, h->value.base, h->value.len);
    }
    put_header(w, H2O_STRLIT("x-forwarded-for"), xff.base, xff.len);
    if (req->scheme == &H2O_URL_SCHEME_HTTPS)
        put_header(w, H2O_STRLIT("x-forwarded-proto"), H2O_STRLIT("https"));
    else
        put_header(w, H2O_STRLIT("x-forwarded-proto"), H2O_STRLIT("http"));
    if (id != NULL)
        put_header(w, H2O_STRLIT("x-request-id"), id, strlen(id));
    if (req->entity.base != NULL) {
        char cl[32];
        int n = snprintf(cl, sizeof(cl), "%zu", req->entity.len);
        put_header(w, H2O_STRLIT("content-length"), cl, (size_t)n);
    }
    if (px->keepalive == 0)
        put_header(w, H2O_STRLIT("connection"), H2O_STRLIT("close"));
    else
        put_header(w, H2O_STRLIT("connection"), H2O_STRLIT("keep-alive"));
    put(w, "\r\n", 2);
}

/* X-Forwarded-For: the incoming list (several headers joined) with the peer's address appended. */
static h2o_iovec_t forwarded_for(h2o_req_t *req)
{
    char peer[HY_CLIENT_IP_MAX] = "";
    struct sockaddr_storage ss;
    if (req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) != 0)
        hy_client_ip((struct sockaddr *)&ss, NULL, 0, NULL, 0, NULL, 0, peer, sizeof(peer));
    h2o_iovec_t v = h2o_iovec_init(NULL, 0);
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, i)) != -1;) {
        h2o_iovec_t e = req->headers.entries[i].value;
        v = v.base == NULL ? e : h2o_concat(&req->pool, v, h2o_iovec_init(H2O_STRLIT(", ")), e);
    }
    h2o_iovec_t p = h2o_iovec_init(peer, strlen(peer));
    return v.base == NULL ? h2o_strdup(&req->pool, p.base, p.len) : h2o_concat(&req->pool, v, h2o_iovec_init(H2O_STRLIT(", ")), p);
}

/* ---- the answer ------------------------------------------------------------------------------------------------------- */

/* Hands the next body bytes to the client (one h2o_send at a time: the next waits for on_proceed). */
static void do_send(proxy_req_t *st)
{
    h2o_buffer_t **from = st->client != NULL ? &st->client->sock->input : &st->rest;
    h2o_iovec_t vec = h2o_doublebuffer_prepare(&st->sending, from, st->req->preferred_chunk_size);
    h2o_send_state_t state = H2O_SEND_STATE_IN_PROGRESS;
    if (st->upstream_done && vec.len == st->sending.buf->size && st->rest->size == 0)
        state = st->body_error ? H2O_SEND_STATE_ERROR : H2O_SEND_STATE_FINAL;
    else if (vec.len == 0)
        return;
    h2o_send(st->req, &vec, vec.len != 0 ? 1 : 0, state);
}

static void on_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    proxy_req_t *st = (proxy_req_t *)generator;
    (void)req;
    h2o_doublebuffer_consume(&st->sending);
    do_send(st);
}

/* Whether a connection whose exchange ended may wait in the pool: while fewer than proxy.keepalive connections wait
 * there idle (Go's MaxIdleConnsPerHost). libh2o 2.2.5 only counts busy and idle connections together, which under
 * load closed nearly every connection after one request; so the idle list itself is counted (up to keepalive). */
static int pool_has_room(h2o_socketpool_t *pool, uint64_t keepalive)
{
    uint64_t idle = 0;
    pthread_mutex_lock(&pool->_shared.mutex);
    for (h2o_linklist_t *n = pool->_shared.sockets.next; n != &pool->_shared.sockets && idle < keepalive; n = n->next)
        ++idle;
    pthread_mutex_unlock(&pool->_shared.mutex);
    return idle < keepalive;
}

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    proxy_req_t *st = client->data;
    if (errstr != NULL) {
        /* the exchange ends: keep what was read, and pool the connection only while under proxy.keepalive */
        st->client = NULL;
        h2o_buffer_t *t = st->rest;
        st->rest = client->sock->input;
        client->sock->input = t;
        st->upstream_done = 1;
        if (errstr != h2o_http1client_error_is_eos) {
            st->body_error = 1;
            hy_log("warn", hy_req_id(st->req), "proxy %s: the upstream failed during the body: %s", st->px->upstream, errstr);
        } else if (client->sockpool.pool != NULL && !pool_has_room(client->sockpool.pool, st->px->keepalive)) {
            client->sockpool.pool = NULL; /* closed instead of pooled */
        }
    }
    if (st->sending.bytes_inflight == 0)
        do_send(st);
    return 0;
}

/* 1 for a response head the proxy can pass on: a final status (not 101: the proxy never asks to upgrade) and at most
 * one Content-Length value. */
static int head_ok(int status, const h2o_header_t *headers, size_t num_headers)
{
    size_t length = SIZE_MAX;
    if (status < 200 || status > 999)
        return 0;
    for (size_t i = 0; i != num_headers; ++i) {
        if (headers[i].name != &H2O_TOKEN_CONTENT_LENGTH->buf)
            continue;
        size_t n = h2o_strtosize(headers[i].value.base, headers[i].value.len);
        if (n == SIZE_MAX || (length != SIZE_MAX && length != n))
            return 0;
        length = n;
    }
    return 1;
}

/* Copies a head that passed head_ok into the response (the client's buffer is reused once on_head returns). */
static void copy_head(proxy_req_t *st, int status, h2o_iovec_t msg, h2o_header_t *headers, size_t num_headers)
{
    h2o_req_t *req = st->req;
    h2o_headers_t in = {headers, num_headers, num_headers};
    req->res.status = status;
    req->res.reason = msg.len != 0 ? h2o_strdup(&req->pool, msg.base, msg.len).base : hy_reason_phrase(status);
    for (size_t i = 0; i != num_headers; ++i) {
        const h2o_iovec_t *name = headers[i].name;
        h2o_iovec_t value = headers[i].value;
        if (is_hop_by_hop(&in, name) || h2o_memis(name->base, name->len, H2O_STRLIT("date")) ||
            h2o_memis(name->base, name->len, H2O_STRLIT("server")))
            continue; /* libh2o writes its own Date and Server */
        if (hy_req_id(req) != NULL && h2o_memis(name->base, name->len, H2O_STRLIT("x-request-id")))
            continue; /* request_id echoes ours already */
        if (name == &H2O_TOKEN_CONTENT_LENGTH->buf) {
            req->res.content_length = h2o_strtosize(value.base, value.len);
            continue;
        }
        h2o_iovec_t n = h2o_strdup(&req->pool, name->base, name->len), v = h2o_strdup(&req->pool, value.base, value.len);
        h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 1, NULL, v.base, v.len);
    }
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr, int minor_version, int status,
                                       h2o_iovec_t msg, h2o_header_t *headers, size_t num_headers, int rlen)
{
    proxy_req_t *st = client->data;
    (void)minor_version, (void)rlen;

    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        st->client = NULL; /* libh2o closes it when this returns */
        if (strcmp(errstr, "I/O timeout") == 0) {
            fail(st, 504, "upstream_timeout", "the upstream did not answer within proxy.timeout");
        } else if (st->reused && !st->retried && st->idempotent && strncmp(errstr, "I/O error", 9) == 0) {
            /* a pooled connection the upstream had closed meanwhile: once more on a new one */
            st->retried = 1;
            start(st);
        } else {
            char m[160];
            snprintf(m, sizeof(m), "the upstream failed before its response head: %s", errstr);
            fail(st, 502, "bad_gateway", m);
        }
        return NULL;
    }
    if (!head_ok(status, headers, num_headers)) {
        st->client = NULL;
        fail(st, 502, "bad_gateway", "the upstream's response head is malformed");
        return NULL;
    }
    stop_timers(st);
    if (!hy_req_claim_response(st->req)) {
        st->client = NULL; /* the route's deadline answered: drop this, libh2o closes the connection */
        return NULL;
    }
    copy_head(st, status, msg, headers, num_headers);
    h2o_doublebuffer_init(&st->sending, &h2o_socket_buffer_prototype);
    h2o_buffer_init(&st->rest, &h2o_socket_buffer_prototype);
    st->buffers = 1;
    st->super.proceed = on_proceed;
    st->super.stop = on_stop;
    h2o_start_response(st->req, &st->super);
    if (errstr == h2o_http1client_error_is_eos) {
        st->client = NULL;
        st->upstream_done = 1;
        if (client->sockpool.pool != NULL && !pool_has_room(client->sockpool.pool, st->px->keepalive))
            client->sockpool.pool = NULL;
        h2o_send(st->req, NULL, 0, H2O_SEND_STATE_FINAL);
        return NULL;
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr, h2o_iovec_t **reqbufs, size_t *reqbufcnt,
                                          int *method_is_head)
{
    proxy_req_t *st = client->data;
    if (errstr != NULL) {
        st->client = NULL; /* libh2o frees it when this returns */
        char m[160];
        snprintf(m, sizeof(m), "cannot connect to the upstream: %s", errstr);
        fail(st, 502, "bad_gateway", m);
        return NULL;
    }
    st->reused = st->connecting; /* a pooled socket is handed over before connect_with_pool returns */
    if (h2o_timeout_is_linked(&st->connect_timer))
        h2o_timeout_unlink(&st->connect_timer);
    *reqbufs = st->reqbufs;
    *reqbufcnt = st->nreqbufs;
    *method_is_head = st->is_head;
    return on_head;
}

/* ---- the handler ------------------------------------------------------------------------------------------------------ */

int hy_proxy_on_req(h2o_req_t *req, hy_proxy_local_t *local, const hy_route_t *route, const hy_param_t *params, size_t nparams)
{
    const hy_proxy_t *px = &route->proxy;
    if (px->rt == NULL || local == NULL)
        return -1;
    arm(px->rt, local->ctx->loop);

    proxy_req_t *st = h2o_mem_alloc_shared(&req->pool, sizeof(*st), on_dispose);
    memset(st, 0, sizeof(*st));
    st->req = req;
    st->px = px;
    st->local = local;
    st->is_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    unsigned m = hy_method_from_name(req->method.base, req->method.len);
    st->idempotent = (m & (HY_METHOD_GET | HY_METHOD_HEAD | HY_METHOD_OPTIONS | HY_METHOD_PUT | HY_METHOD_DELETE)) != 0;

    const char *id = hy_req_id(req);
    h2o_iovec_t xff = forwarded_for(req);
    writer_t w = {NULL, 0};
    put_head(&w, req, px, params, nparams, xff, id);
    w.base = h2o_mem_alloc_pool(&req->pool, w.len);
    w.len = 0;
    put_head(&w, req, px, params, nparams, xff, id);
    st->reqbufs[0] = h2o_iovec_init(w.base, w.len);
    st->nreqbufs = 1;
    if (req->entity.base != NULL && req->entity.len != 0)
        st->reqbufs[st->nreqbufs++] = req->entity;

    st->head_timer.cb = on_head_timeout;
    h2o_timeout_link(local->ctx->loop, &timer_for(local, px->timeout_ms)->timeout, &st->head_timer);
    if (px->connect_timeout_ms < px->timeout_ms) {
        st->connect_timer.cb = on_connect_timeout;
        h2o_timeout_link(local->ctx->loop, &timer_for(local, px->connect_timeout_ms)->timeout, &st->connect_timer);
    }
    start(st);
    return 0;
}
