/* readgate.h: bounded memory under connection floods. An HTTP/1.1 connection whose previous request is done (or that was
 * just accepted) is let read its next request only while the thread works on fewer than `limits.max_active_requests`
 * requests; otherwise it waits, parked, with its request in the kernel's socket buffer instead of hydrant's memory (and
 * its empty read buffer freed). Each finished request lets the longest-parked connection read. A request that has
 * been read is never refused or dropped: this is back-pressure, not admission control.
 *
 * libh2o 2.2.5 has no hook for this: its HTTP/1 code starts reading with h2o_socket_read_start, which it calls through
 * its PLT, so hydrant's executable defines h2o_socket_read_start / h2o_socket_read_stop (ELF symbol interposition, as
 * app/h2o_guard.c does for two parsers) and gates the calls that start reading an HTTP/1.1 request. Every other call
 * (listeners, TLS handshakes, HTTP/2, the database's sockets) goes straight to libh2o's own.
 *
 * The same hook saves two epoll_ctl calls per HTTP/1.1 request: libh2o stops reading a connection while its request is
 * served and starts again after the response, and when the two fall in different loop turns (any request that waits
 * for the database) each is an epoll_ctl. The gate makes that stop a "hold" instead: the socket stays polled, with
 * libh2o's "don't read" flag set, so nothing is read into the buffer the request still points into; only if the
 * client sends (or closes) meanwhile is reading really stopped. */
#ifndef HY_READGATE_H
#define HY_READGATE_H

#include <stddef.h>
#include <stdint.h>
#include <h2o.h>

typedef struct st_hy_readgate_t hy_readgate_t;

/* A connection's place at the gate; embed one per connection (zero-filled). */
typedef struct st_hy_readgate_conn_t {
    h2o_linklist_t link; /* in the gate's parked or fresh list */
    h2o_socket_t *sock;  /* the connection's socket */
    h2o_socket_cb cb;    /* the read callback libh2o asked for, while parked */
    uint64_t since;      /* when it was let read (the loop's clock, ms) */
    hy_readgate_t *gate; /* its thread's gate */
    unsigned char state; /* 0: free, 1: parked, 2: fresh (let read, no request yet) */
    unsigned char held;  /* libh2o stopped reading for a request in progress, but the socket stays polled */
} hy_readgate_conn_t;

/* Creates a thread's gate: at most `cap` requests at once (0: no gate), counting the requests the thread works on
 * (*active, maintained by the caller) and connections let read that have not sent a request yet (for 50 ms). */
hy_readgate_t *hy_readgate_create(h2o_loop_t *loop, size_t cap, const size_t *active);
void hy_readgate_free(hy_readgate_t *gate);

/* How the interposed functions find a socket's gate: returns the connection's entry, or NULL for a socket that is
 * not a client connection. Set once before serving. */
typedef hy_readgate_conn_t *(*hy_readgate_lookup_cb)(h2o_socket_t *sock);
void hy_readgate_set_lookup(hy_readgate_lookup_cb lookup);

/* Learns libh2o's HTTP/1 read callback: call once on an event-loop thread before serving; it makes an HTTP/1 connection
 * on a socketpair with `accept_ctx` (a plain listener's), notes the callback, and closes it. */
void hy_readgate_learn(h2o_accept_ctx_t *accept_ctx);

/* A request of this connection arrived (it no longer counts as fresh). */
void hy_readgate_request_started(hy_readgate_conn_t *c);
/* A request of the thread finished: parked connections may read. */
void hy_readgate_request_done(hy_readgate_t *gate);
/* The connection closes: leaves the gate. */
void hy_readgate_conn_closed(hy_readgate_conn_t *c);

/* What app/h2o_guard.c's h2o_socket_read_start / h2o_socket_read_stop do: gate the call, or pass it to libh2o. */
void hy_readgate_read_start(h2o_socket_t *sock, h2o_socket_cb cb);
void hy_readgate_read_stop(h2o_socket_t *sock);

/* Connections parked now, and times a connection was parked since the start. */
size_t hy_readgate_parked(const hy_readgate_t *gate);
uint64_t hy_readgate_parked_total(const hy_readgate_t *gate);

#endif
