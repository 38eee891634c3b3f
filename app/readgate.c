/* readgate.c: the HTTP/1.1 read gate (see readgate.h). app/h2o_guard.c's interposed h2o_socket_read_start and
 * h2o_socket_read_stop come here; libh2o's own are found with dlsym(RTLD_NEXT). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "alloc.h"
#include <sys/time.h>
#include "readgate.h"
#include <h2o/http1.h>

#define FRESH_MS 50 /* a connection let read counts against the limit this long, or until its request arrives */
#define SWEEP_MS 10 /* how often a gate with fresh or parked connections looks again */

enum { GATE_FREE = 0, GATE_PARKED, GATE_FRESH };

struct st_hy_readgate_t {
    h2o_loop_t *loop;              /* the thread's loop */
    size_t cap;                    /* requests at once (0: no gate) */
    const size_t *active;          /* requests the thread works on */
    size_t fresh;                  /* connections let read, no request yet, for FRESH_MS */
    _Atomic size_t parked;         /* length of the parked list (the owner writes, metrics read) */
    _Atomic uint64_t parked_total; /* times a connection was parked */
    h2o_linklist_t parked_list;    /* hy_readgate_conn_t waiting, oldest first */
    h2o_linklist_t fresh_list;     /* hy_readgate_conn_t let read, oldest first */
    h2o_timeout_t sweep_timeout;   /* SWEEP_MS */
    h2o_timeout_entry_t sweep;     /* expires fresh connections, lets parked ones read */
};

/* ---- libh2o's own functions ------------------------------------------------------------------------------------------- */

typedef void (*read_start_fn)(h2o_socket_t *, h2o_socket_cb);
typedef void (*read_stop_fn)(h2o_socket_t *);

static read_start_fn real_read_start;
static read_stop_fn real_read_stop;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static hy_readgate_lookup_cb lookup;
static h2o_socket_cb h1_read_cb; /* libh2o's HTTP/1 request reader, learnt by hy_readgate_learn */
static __thread int learning;    /* hy_readgate_learn is making its HTTP/1 connection */

static void resolve(void)
{
    *(void **)&real_read_start = dlsym(RTLD_NEXT, "h2o_socket_read_start");
    *(void **)&real_read_stop = dlsym(RTLD_NEXT, "h2o_socket_read_stop");
    if (real_read_start == NULL || real_read_stop == NULL) {
        fprintf(stderr, "hydrant: cannot find libh2o's h2o_socket_read_start/stop: %s\n", dlerror());
        abort();
    }
}

/* ---- the gate --------------------------------------------------------------------------------------------------------- */

static void arm(hy_readgate_t *g)
{
    if (!h2o_timeout_is_linked(&g->sweep) && (g->fresh != 0 || g->parked != 0))
        h2o_timeout_link(g->loop, &g->sweep_timeout, &g->sweep);
}

static void unlink_conn(hy_readgate_conn_t *c)
{
    hy_readgate_t *g = c->gate;
    if (c->state == GATE_FREE)
        return;
    h2o_linklist_unlink(&c->link);
    if (c->state == GATE_PARKED)
        --g->parked;
    else
        --g->fresh;
    c->state = GATE_FREE;
}

static void let_read(hy_readgate_conn_t *c, h2o_socket_cb cb)
{
    hy_readgate_t *g = c->gate;
    c->state = GATE_FRESH;
    c->since = h2o_now(g->loop);
    h2o_linklist_insert(&g->fresh_list, &c->link);
    ++g->fresh;
    arm(g);
    real_read_start(c->sock, cb);
}

/* Lets parked connections read while there is room. */
static void pump(hy_readgate_t *g)
{
    while (g->parked != 0 && *g->active + g->fresh < g->cap) {
        hy_readgate_conn_t *c = H2O_STRUCT_FROM_MEMBER(hy_readgate_conn_t, link, g->parked_list.next);
        h2o_socket_cb cb = c->cb;
        unlink_conn(c);
        let_read(c, cb);
    }
}

static void on_sweep(h2o_timeout_entry_t *entry)
{
    hy_readgate_t *g = H2O_STRUCT_FROM_MEMBER(hy_readgate_t, sweep, entry);
    uint64_t now = h2o_now(g->loop);
    /* connections let read that sent nothing are idle: they keep reading but stop counting */
    while (g->fresh != 0) {
        hy_readgate_conn_t *c = H2O_STRUCT_FROM_MEMBER(hy_readgate_conn_t, link, g->fresh_list.next);
        if (now - c->since < FRESH_MS)
            break;
        unlink_conn(c);
    }
    pump(g);
    arm(g);
}

/* Bytes or an end arrived on a held connection: stop polling it for real until libh2o reads again (then the
 * level-triggered poll reports them again). Nothing was read: the socket is in "don't read" mode. */
static void on_held(h2o_socket_t *sock, const char *err)
{
    (void)err;
    hy_readgate_conn_t *c = lookup != NULL ? lookup(sock) : NULL;
    if (c != NULL)
        c->held = 0;
    h2o_socket_dont_read(sock, 0);
    real_read_stop(sock);
}

static void gate_read_start(hy_readgate_conn_t *c, h2o_socket_cb cb)
{
    hy_readgate_t *g = c->gate;
    if (c->state == GATE_PARKED) {
        c->cb = cb;
        return;
    }
    unlink_conn(c);
    if (g->cap == 0 || (g->parked == 0 && *g->active + g->fresh < g->cap) || c->sock->input->size != 0) {
        /* room, or bytes already read (a pipelined request: libh2o parses it without reading) */
        if (g->cap == 0)
            real_read_start(c->sock, cb);
        else
            let_read(c, cb);
        return;
    }
    /* wait in the kernel, not polled; an empty read buffer is given back (libh2o makes a new one at the next read) */
    if (h2o_socket_is_reading(c->sock))
        real_read_stop(c->sock);
    if (c->sock->input->bytes != NULL) {
        h2o_buffer_dispose(&c->sock->input);
        h2o_buffer_init(&c->sock->input, &h2o_socket_buffer_prototype);
    }
    c->cb = cb;
    c->state = GATE_PARKED;
    h2o_linklist_insert(&g->parked_list, &c->link);
    ++g->parked;
    ++g->parked_total;
    arm(g);
}

/* ---- what the interposed functions do ---------------------------------------------------------------------------------- */

void hy_readgate_read_start(h2o_socket_t *sock, h2o_socket_cb cb)
{
    pthread_once(&resolve_once, resolve);
    if (learning) {
        h1_read_cb = cb;
    } else if (lookup != NULL) {
        hy_readgate_conn_t *c = lookup(sock);
        if (c != NULL && c->held) {
            /* the end of a hold: the socket was never unpolled */
            c->held = 0;
            h2o_socket_dont_read(sock, 0);
        }
        if (c != NULL && c->gate != NULL && cb == h1_read_cb && cb != NULL) {
            gate_read_start(c, cb);
            return;
        }
    }
    real_read_start(sock, cb);
}

void hy_readgate_read_stop(h2o_socket_t *sock)
{
    pthread_once(&resolve_once, resolve);
    if (lookup != NULL) {
        hy_readgate_conn_t *c = lookup(sock);
        if (c != NULL && c->state == GATE_PARKED)
            unlink_conn(c); /* never started: nothing more to stop, but the caller no longer wants it read */
        if (c != NULL && h1_read_cb != NULL && sock->_cb.read == h1_read_cb) {
            /* libh2o's HTTP/1 code pauses reading while a request is served: hold instead (see readgate.h) */
            h2o_socket_dont_read(sock, 1);
            sock->_cb.read = on_held;
            c->held = 1;
            return;
        }
    }
    real_read_stop(sock);
}

/* ---- public API ------------------------------------------------------------------------------------------------------- */

hy_readgate_t *hy_readgate_create(h2o_loop_t *loop, size_t cap, const size_t *active)
{
    pthread_once(&resolve_once, resolve);
    hy_readgate_t *g = hy_xcalloc(1, sizeof(*g));
    g->loop = loop;
    g->cap = cap;
    g->active = active;
    h2o_linklist_init_anchor(&g->parked_list);
    h2o_linklist_init_anchor(&g->fresh_list);
    h2o_timeout_init(loop, &g->sweep_timeout, SWEEP_MS);
    g->sweep.cb = on_sweep;
    return g;
}

void hy_readgate_free(hy_readgate_t *g)
{
    if (g == NULL)
        return;
    while (!h2o_linklist_is_empty(&g->parked_list))
        unlink_conn(H2O_STRUCT_FROM_MEMBER(hy_readgate_conn_t, link, g->parked_list.next));
    while (!h2o_linklist_is_empty(&g->fresh_list))
        unlink_conn(H2O_STRUCT_FROM_MEMBER(hy_readgate_conn_t, link, g->fresh_list.next));
    if (h2o_timeout_is_linked(&g->sweep))
        h2o_timeout_unlink(&g->sweep);
    h2o_timeout_dispose(g->loop, &g->sweep_timeout);
    free(g);
}

void hy_readgate_set_lookup(hy_readgate_lookup_cb cb)
{
    lookup = cb;
}

void hy_readgate_learn(h2o_accept_ctx_t *accept_ctx)
{
    int sv[2];
    pthread_once(&resolve_once, resolve);
    if (h1_read_cb != NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_create(accept_ctx->ctx->loop, sv[0], 0);
    struct timeval now;
    gettimeofday(&now, NULL);
    learning = 1;
    h2o_http1_accept(accept_ctx, sock, now);
    learning = 0;
    close(sv[1]); /* the connection reads EOF on the next loop turn and closes itself */
}

void hy_readgate_request_started(hy_readgate_conn_t *c)
{
    if (c->state == GATE_FRESH)
        unlink_conn(c);
}

void hy_readgate_request_done(hy_readgate_t *g)
{
    if (g != NULL && g->parked != 0)
        pump(g);
}

void hy_readgate_conn_closed(hy_readgate_conn_t *c)
{
    unlink_conn(c);
}

size_t hy_readgate_parked(const hy_readgate_t *g)
{
    return g != NULL ? atomic_load_explicit(&g->parked, memory_order_relaxed) : 0;
}

uint64_t hy_readgate_parked_total(const hy_readgate_t *g)
{
    return g != NULL ? atomic_load_explicit(&g->parked_total, memory_order_relaxed) : 0;
}
