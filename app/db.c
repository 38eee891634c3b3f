/* db.c: one asynchronous PostgreSQL pool shared by every event-loop thread.
 *
 * How it works
 * - A connection is "held" by one thread at a time: its libpq socket is registered on that thread's loop (h2o socket with
 *   H2O_SOCKET_FLAG_DONT_READ, so libpq does the reading) and only that thread touches its PGconn. A thread sends its
 *   queries to the connections it holds, in libpq pipeline mode, one Sync per statement so errors stay per statement.
 * - The process-wide part (under one mutex, taken only to acquire or release a connection, never per query) counts open
 *   connections against max_open, keeps detached idle connections, and keeps a FIFO of threads waiting for one.
 * - A thread that needs a connection takes a detached idle one, or opens a new one when under max_open, or queues in the
 *   FIFO and nudges the other threads; a thread whose connection drains while others wait hands it to the first waiter
 *   (exports the socket from its loop and messages the waiter, which registers it on its own loop). So a thread can use
 *   connections another opened and no thread starves while another holds idle connections.
 * - Query objects are malloc'ed, never in req->pool: a request that goes away only marks its query abandoned; the
 *   answer is read and dropped, and the connection stays healthy.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "alloc.h"
#include "db.h"
#include "log.h"

#define TICK_MS 50          /* housekeeping period of each thread */
#define BACKOFF_MIN_MS 100  /* first reconnect delay after a failure */
#define BACKOFF_MAX_MS 5000 /* reconnect delay cap */
#define IDLE_GRACE_MS 1000  /* an idle connection beyond max_idle is closed after this long */

/* ---- types ------------------------------------------------------------------------------------------------------------ */

typedef enum en_conn_state_t {
    CONN_CONNECTING, /* PQconnectPoll in progress */
    CONN_PREPARING,  /* statements being prepared */
    CONN_READY       /* accepts queries */
} conn_state_t;

typedef enum en_query_phase_t {
    PHASE_RESULT, /* waiting for the statement's result */
    PHASE_END,    /* got it; waiting for the NULL that ends it */
    PHASE_SYNC    /* waiting for the PGRES_PIPELINE_SYNC */
} query_phase_t;

typedef struct st_conn_t conn_t;

struct st_hy_db_query_t {
    const hy_db_stmt_t *stmt;          /* NULL for an internal PREPARE */
    const hy_db_stmt_t *prepare;       /* for an internal PREPARE: the statement to prepare */
    size_t lazy_index;                 /* for an internal PREPARE of a registered statement: its index (else SIZE_MAX) */
    char **values;                     /* copies of the parameters (one malloc with the strings) */
    int nvalues;                       /* number of values */
    hy_db_cb cb;                       /* NULL once abandoned */
    void *data;                        /* the callback's argument */
    int attempts;                      /* sends so far */
    size_t stmt_index;                 /* position of stmt in the pool's statements (for the observer) */
    uint64_t submitted_ns;             /* when it was submitted (monotonic) */
    uint64_t sent_ns;                  /* when it was last sent */
    struct st_conn_t *conn;            /* the connection it was sent on, while in flight */
    int targeted;                      /* a cancel request was sent for it */
    int failfast;                      /* failed at submit because the circuit was open */
    int sent;                          /* 1 once written to a connection (outcome unknown if it dies) */
    query_phase_t phase;               /* where its answer stands */
    PGresult *res;                     /* the statement's result, once read */
    struct st_req_link_t *req_link;    /* when submitted for a request: the slot in req->pool that points back here */
    hy_db_local_t *local;              /* submitting thread */
    h2o_linklist_t link;               /* in local->pending or conn->inflight */
    h2o_timeout_entry_t acquire_timer; /* while pending: fires after acquire_timeout */
};

struct st_conn_t {
    PGconn *pg;                              /* the libpq connection */
    h2o_socket_t *sock;                      /* its socket on the holder's loop (NULL while detached) */
    int fd;                                  /* the fd sock was made from */
    hy_db_pool_t *pool;                      /* owner pool */
    hy_db_local_t *holder;                   /* thread holding it, NULL while detached in the idle list */
    conn_state_t state;                      /* see above */
    int handoff;                             /* take no more queries: give it away when drained */
    int busy;                                /* counted in pool->num_busy (has statements in flight) */
    int waiting_write;                       /* notify_write pending */
    uint64_t created_at;                     /* monotonic ms */
    uint64_t idle_since;                     /* monotonic ms of the last time it drained */
    uint64_t connect_deadline;               /* while connecting */
    h2o_linklist_t inflight;                 /* hy_db_query_t sent and unanswered, in order */
    uint64_t prepared[HY_DB_MAX_STMTS / 64]; /* registered statements prepared (or being prepared) here, by index */
    size_t ninflight;                        /* length of inflight (internal PREPAREs included) */
    h2o_linklist_t link;                     /* in holder->conns or pool->idle */
};

struct st_hy_db_local_t {
    hy_db_pool_t *pool;                  /* the pool */
    size_t index;                        /* thread index */
    h2o_loop_t *loop;                    /* this thread's loop */
    h2o_linklist_t conns;                /* conn_t held by this thread */
    h2o_linklist_t pending;              /* hy_db_query_t waiting for a connection, oldest first */
    size_t npending;                     /* length of pending */
    _Atomic int in_waitlist;             /* queued in pool->waiters (changed under pool->lock; read without it) */
    h2o_multithread_receiver_t receiver; /* handoffs and nudges from other threads */
    h2o_timeout_t acquire_timeout;       /* acquire_timeout_ms */
    h2o_timeout_t tick_timeout;          /* TICK_MS */
    h2o_timeout_entry_t tick;            /* housekeeping */
    h2o_timeout_t zero_timeout;          /* for callbacks that must not run inside hy_db_submit */
    h2o_linklist_t deferred;             /* hy_db_query_t completed early (overload), delivered on the next turn */
    h2o_timeout_entry_t deferred_entry;  /* runs on_deferred */
    h2o_timeout_entry_t dispatch_entry;  /* runs on_dispatch: sends what hy_db_submit queued this turn */
    int detached;                        /* shutting down */
};

typedef struct st_message_t {
    h2o_multithread_message_t super; /* first member */
    conn_t *conn;                    /* handed over (NULL for a nudge) */
} message_t;

struct st_hy_db_pool_t {
    hy_db_settings_t settings;                  /* copy (keywords/values arrays referenced, owned by the caller) */
    const hy_db_stmt_t *stmts[HY_DB_MAX_STMTS]; /* known statements: the first neager from hy_db_pool_create */
    _Atomic size_t nstmts;                      /* number of them (slots below it are never written again) */
    size_t neager;                              /* prepared when a connection opens; the rest on first use */
    char *session_options;                      /* the options keyword: fixed session settings (DateStyle, TimeZone, ...) */
    const char **kw;                            /* keywords actually passed to libpq (settings + application_name + options) */
    const char **vals;                          /* their values */
    pthread_mutex_t lock;                       /* guards everything below */
    size_t num_open;                            /* connections open or opening */
    size_t num_busy;                            /* held connections carrying queries */
    h2o_linklist_t idle;                        /* detached idle conn_t, most recent last */
    size_t num_idle;                            /* length of idle */
    hy_db_local_t **waiters;                    /* FIFO of threads waiting for a connection (ring of nthreads) */
    size_t waiters_head, waiters_count;         /* ring indexes */
    hy_db_local_t **locals;                     /* attached threads by index */
    size_t nthreads;                            /* number of threads */
    uint64_t next_attempt_at;                   /* no new connection before this (backoff after failures) */
    uint64_t backoff_ms;                        /* current backoff */
    _Atomic size_t num_ready;                   /* established connections (for readiness) */
    _Atomic int healthy;                        /* the latest connection attempt succeeded and none was lost since */
    _Atomic size_t num_waiting_threads;         /* waiters_count, readable without the lock */
    _Atomic size_t num_pending;                 /* queries waiting, all threads */
    _Atomic uint64_t acquire_timeouts;          /* counter */
    _Atomic uint64_t connect_errors;            /* counter */
    hy_db_observer_t observer;                  /* metrics hooks (callbacks may be NULL) */
    uint64_t consecutive_failures;              /* connection attempts failed in a row (for the circuit breaker) */
    _Atomic uint64_t breaker_open_until;        /* monotonic ms until which statements fail fast (0: closed) */
    _Atomic uint64_t breaker_opened;            /* times the circuit opened */
    pthread_t canceller;                        /* sends PQcancel requests, which block, off the event threads */
    pthread_mutex_t cancel_lock;                /* guards cancel_queue */
    pthread_cond_t cancel_cond;                 /* signals the canceller */
    PGcancel *cancel_queue[64];                 /* pending cancel requests */
    size_t ncancel;                             /* number pending */
    int cancel_stop;                            /* the canceller should exit */
    _Atomic uint64_t cancels_sent;              /* cancel requests sent */
    _Atomic uint64_t cancels_requested;         /* cancel requests queued (some may still be on their way) */
};

typedef struct st_req_link_t {
    hy_db_query_t *query; /* NULL once answered */
} req_link_t;

/* ---- small helpers ---------------------------------------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void log_conn_error(const char *what, PGconn *pg)
{
    const char *msg = pg != NULL ? PQerrorMessage(pg) : "out of memory";
    size_t len = strlen(msg);
    while (len != 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        --len;
    hy_log("error", NULL, "database: %s: %.*s", what, (int)len, msg);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static void query_free(hy_db_query_t *q)
{
    if (q->res != NULL)
        PQclear(q->res);
    free(q->values);
    free(q);
}

/* Runs the query's callback (unless abandoned) and frees it. */
static void query_complete(hy_db_query_t *q, hy_db_status_t status, const char *message)
{
    hy_db_pool_t *pool = q->local != NULL ? q->local->pool : NULL;
    hy_db_result_t r = {status, NULL, "", message != NULL ? message : ""};
    if (q->res != NULL) {
        r.res = q->res;
        if (PQresultStatus(q->res) == PGRES_FATAL_ERROR) {
            const char *s = PQresultErrorField(q->res, PG_DIAG_SQLSTATE);
            r.status = HY_DB_QUERY_ERROR;
            r.sqlstate = s != NULL ? s : "";
            r.message = PQresultErrorMessage(q->res);
        }
    }
    if (pool != NULL && q->stmt != NULL && pool->observer.done != NULL)
        pool->observer.done(pool->observer.data, q->local->index, q->stmt_index, r.status,
                            q->sent_ns != 0 ? (double)(now_ns() - q->sent_ns) / 1e9 : 0);
    if (q->cb != NULL) {
        if (q->req_link != NULL)
            q->req_link->query = NULL;
        hy_db_cb cb = q->cb;
        q->cb = NULL;
        cb(q->data, &r);
    }
    query_free(q);
}

/* ---- the waiter FIFO (pool->lock held) -------------------------------------------------------------------------------- */

static void waitlist_push(hy_db_pool_t *pool, hy_db_local_t *local)
{
    if (local->in_waitlist)
        return;
    local->in_waitlist = 1;
    pool->waiters[(pool->waiters_head + pool->waiters_count++) % pool->nthreads] = local;
    atomic_store(&pool->num_waiting_threads, pool->waiters_count);
}

static hy_db_local_t *waitlist_pop(hy_db_pool_t *pool)
{
    if (pool->waiters_count == 0)
        return NULL;
    hy_db_local_t *l = pool->waiters[pool->waiters_head];
    pool->waiters_head = (pool->waiters_head + 1) % pool->nthreads;
    --pool->waiters_count;
    atomic_store(&pool->num_waiting_threads, pool->waiters_count);
    l->in_waitlist = 0;
    return l;
}

static void waitlist_remove(hy_db_pool_t *pool, hy_db_local_t *local)
{
    if (!local->in_waitlist)
        return;
    size_t n = pool->waiters_count, k = 0;
    for (size_t i = 0; i != n; ++i) {
        hy_db_local_t *l = pool->waiters[(pool->waiters_head + i) % pool->nthreads];
        if (l != local)
            pool->waiters[(pool->waiters_head + k++) % pool->nthreads] = l;
    }
    pool->waiters_count = k;
    atomic_store(&pool->num_waiting_threads, k);
    local->in_waitlist = 0;
}

/* ---- attaching sockets ------------------------------------------------------------------------------------------------ */

static void on_conn_readable(h2o_socket_t *sock, const char *err);
static void on_conn_writable(h2o_socket_t *sock, const char *err);

static void conn_attach(conn_t *c, hy_db_local_t *local)
{
    c->holder = local;
    c->fd = PQsocket(c->pg);
    /* h2o gets its own descriptor for libpq's socket, so closing the h2o socket (on hand-off or close) unregisters it
     * from this loop without touching libpq's */
    int fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
    if (fd == -1) {
        perror("hydrant: database: dup");
        abort();
    }
    c->sock = h2o_evloop_socket_create(local->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    c->sock->data = c;
    c->waiting_write = 0;
    h2o_socket_read_start(c->sock, on_conn_readable);
    h2o_linklist_insert(&local->conns, &c->link);
}

/* Unregisters the socket from the holder's loop (closing h2o's duplicate descriptor; libpq's stays open). */
static void conn_detach_socket(conn_t *c)
{
    if (c->sock == NULL)
        return;
    h2o_socket_close(c->sock);
    c->sock = NULL;
    c->waiting_write = 0;
}

static void conn_detach(conn_t *c)
{
    conn_detach_socket(c);
    if (h2o_linklist_is_linked(&c->link))
        h2o_linklist_unlink(&c->link);
    c->holder = NULL;
}

/* ---- closing ---------------------------------------------------------------------------------------------------------- */

static void dispatch(hy_db_local_t *local);

/* Counts the connection as carrying statements (or not) in the pool's in-use gauge (pool->lock NOT held). */
static void conn_set_busy(conn_t *c, int busy)
{
    if (c->busy == busy)
        return;
    c->busy = busy;
    pthread_mutex_lock(&c->pool->lock);
    if (busy)
        ++c->pool->num_busy;
    else
        --c->pool->num_busy;
    pthread_mutex_unlock(&c->pool->lock);
}

/* Closes a connection that carries nothing (pool->lock NOT held). */
static void conn_close(conn_t *c)
{
    hy_db_pool_t *pool = c->pool;
    conn_set_busy(c, 0);
    int was_ready = c->state == CONN_READY;
    conn_detach(c);
    PQfinish(c->pg);
    pthread_mutex_lock(&pool->lock);
    --pool->num_open;
    pthread_mutex_unlock(&pool->lock);
    if (was_ready)
        atomic_fetch_sub(&pool->num_ready, 1);
    free(c);
}

/* Puts a statement that must run again at the head of its thread's queue, answer cleared, its acquire timer restarted. */
static void requeue_front(hy_db_local_t *local, hy_db_query_t *q)
{
    if (q->res != NULL) {
        PQclear(q->res);
        q->res = NULL;
    }
    q->phase = PHASE_RESULT;
    h2o_linklist_insert(local->pending.next, &q->link);
    ++local->npending;
    atomic_fetch_add(&local->pool->num_pending, 1);
    h2o_timeout_link(local->loop, &local->acquire_timeout, &q->acquire_timer);
}

/* A connection attempt failed: back off, and open the circuit after breaker_threshold failures in a row. Pool lock held. */
static void record_connect_failure_locked(hy_db_pool_t *pool)
{
    atomic_store(&pool->healthy, 0);
    pool->backoff_ms = pool->backoff_ms == 0 ? BACKOFF_MIN_MS : pool->backoff_ms * 2;
    if (pool->backoff_ms > BACKOFF_MAX_MS)
        pool->backoff_ms = BACKOFF_MAX_MS;
    pool->next_attempt_at = now_ms() + pool->backoff_ms;
    if (++pool->consecutive_failures >= pool->settings.breaker_threshold && pool->settings.breaker_threshold != 0) {
        uint64_t until = now_ms() + pool->settings.breaker_cooldown_ms;
        if (atomic_load(&pool->breaker_open_until) < now_ms()) {
            atomic_fetch_add(&pool->breaker_opened, 1);
            hy_log("warn", NULL, "database: circuit open after %llu failed connection attempts; failing fast for %llums",
                   (unsigned long long)pool->consecutive_failures, (unsigned long long)pool->settings.breaker_cooldown_ms);
        }
        atomic_store(&pool->breaker_open_until, until);
    }
}

/* The connection failed: requeue idempotent statements (once), fail the others, close it, and serve what waits. */
static void conn_fail(conn_t *c, const char *what)
{
    hy_db_local_t *local = c->holder;
    hy_db_pool_t *pool = c->pool;
    log_conn_error(what, c->pg);
    atomic_fetch_add(&pool->connect_errors, 1);
    atomic_store(&pool->healthy, 0); /* not ready until a connection succeeds again */
    if (c->state != CONN_READY) {
        pthread_mutex_lock(&pool->lock);
        record_connect_failure_locked(pool);
        pthread_mutex_unlock(&pool->lock);
    }
    conn_set_busy(c, 0);
    h2o_linklist_t retry;
    h2o_linklist_init_anchor(&retry);
    while (!h2o_linklist_is_empty(&c->inflight)) {
        hy_db_query_t *q = H2O_STRUCT_FROM_MEMBER(hy_db_query_t, link, c->inflight.next);
        h2o_linklist_unlink(&q->link);
        q->conn = NULL;
        if (q->res != NULL) {
            /* e.g. 57P01 "terminating connection": the connection's end, not the statement's answer */
            PQclear(q->res);
            q->res = NULL;
        }
        if (q->stmt == NULL || q->cb == NULL) {
            query_free(q);
        } else if (q->stmt->idempotent && q->attempts < 3) {
            h2o_linklist_insert(&retry, &q->link);
        } else {
            /* a write that was sent may have been applied; a read that was not retried simply found no database */
            query_complete(q, q->sent && !q->stmt->idempotent ? HY_DB_UNKNOWN_OUTCOME : HY_DB_UNAVAILABLE, "connection lost");
        }
    }
    c->ninflight = 0;
    conn_close(c);
    if (local != NULL && !local->detached) {
        /* retried statements go first, in their original order */
        while (!h2o_linklist_is_empty(&retry)) {
            hy_db_query_t *q = H2O_STRUCT_FROM_MEMBER(hy_db_query_t, link, retry.prev);
            h2o_linklist_unlink(&q->link);
            requeue_front(local, q);
        }
        /* at the end of this loop turn, after the other connections' events of this turn (all connections often die
         * together): the retried reads then go to a connection known to be alive */
        if (!h2o_timeout_is_linked(&local->dispatch_entry))
            h2o_timeout_link(local->loop, &local->zero_timeout, &local->dispatch_entry);
    } else {
        while (!h2o_linklist_is_empty(&retry)) {
            hy_db_query_t *q = H2O_STRUCT_FROM_MEMBER(hy_db_query_t, link, retry.next);
            h2o_linklist_unlink(&q->link);
            query_complete(q, HY_DB_UNAVAILABLE, "shutting down");
        }
    }
}

/* ---- sending ---------------------------------------------------------------------------------------------------------- */

/* Flushes libpq's output buffer; waits for writability when the socket is full. Returns 0 or -1 (connection failed). */
static int conn_flush(conn_t *c)
{
    int r = PQflush(c->pg);
    if (r < 0)
        return -1;
    if (r == 1 && !c->waiting_write) {
        c->waiting_write = 1;
        h2o_socket_notify_write(c->sock, on_conn_writable);
    }
    return 0;
}

static int conn_send(conn_t *c, hy_db_query_t *q)
{
    int ok;
    size_t idx = q->stmt_index;
    if (q->stmt != NULL && idx >= c->pool->neager && idx < HY_DB_MAX_STMTS &&
        (c->prepared[idx / 64] & (UINT64_C(1) << idx % 64)) == 0) {
        /* a registered statement not yet on this connection: its PREPARE goes first, in the same pipeline */
        hy_db_query_t *p = hy_xcalloc(1, sizeof(*p));
        p->prepare = q->stmt;
        p->lazy_index = idx;
        if (conn_send(c, p) != 0) {
            query_free(p);
            return -1;
        }
        c->prepared[idx / 64] |= UINT64_C(1) << idx % 64;
    }
    if (q->stmt != NULL) {
        ok = PQsendQueryPrepared(c->pg, q->stmt->name, q->nvalues, (const char *const *)q->values, NULL, NULL, 0);
        q->sent = 1;
        q->sent_ns = now_ns();
        if (q->attempts++ == 0 && c->pool->observer.acquired != NULL)
            c->pool->observer.acquired(c->pool->observer.data, c->holder->index, (double)(q->sent_ns - q->submitted_ns) / 1e9);
    } else {
        ok = PQsendPrepare(c->pg, q->prepare->name, q->prepare->sql, q->prepare->param_types != NULL ? q->prepare->nparams : 0,
                           q->prepare->param_types);
    }
    if (!ok || !PQpipelineSync(c->pg))
        return -1;
    q->phase = PHASE_RESULT;
    q->conn = c;
    h2o_linklist_insert(&c->inflight, &q->link);
    ++c->ninflight;
    return 0;
}

/* ---- reading answers -------------------------------------------------------------------------------------------------- */

static void conn_drained(conn_t *c);

/* Reads every complete answer available. Returns 0, or -1 when the connection failed (and was closed). */
static int conn_read(conn_t *c)
{
    if (!PQconsumeInput(c->pg)) {
        conn_fail(c, "connection lost");
        return -1;
    }
    while (!h2o_linklist_is_empty(&c->inflight) && !PQisBusy(c->pg)) {
        hy_db_query_t *q = H2O_STRUCT_FROM_MEMBER(hy_db_query_t, link, c->inflight.next);
        PGresult *res = PQgetResult(c->pg);
        switch (q->phase) {
        case PHASE_RESULT:
            if (res == NULL) {
                /* nothing for this statement yet */
                goto Done;
            }
            if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
                /* a Sync without a result should not happen; fail the statement rather than misattribute answers */
                PQclear(res);
                h2o_linklist_unlink(&q->link);
                --c->ninflight;
                query_complete(q, HY_DB_UNAVAILABLE, "protocol error: missing result");
                continue;
            }
            q->res = res;
            q->phase = PHASE_END;
            break;
        case PHASE_END:
            if (res != NULL) {
                PQclear(res); /* extra results (none for a single statement) are dropped */
                break;
            }
            q->phase = PHASE_SYNC;
            break;
        case PHASE_SYNC:
            if (res == NULL)
                goto Done;
            if (PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
                PQclear(res);
                break;
            }
            PQclear(res);
            h2o_linklist_unlink(&q->link);
            --c->ninflight;
            if (q->stmt == NULL) {
                int failed = q->res == NULL || PQresultStatus(q->res) != PGRES_COMMAND_OK;
                if (failed) {
                    hy_log("error", NULL, "database: cannot prepare \"%s\": %s",
                           q->prepare->label != NULL ? q->prepare->label : q->prepare->name,
                           q->res != NULL ? PQresultErrorMessage(q->res) : "no result\n");
                    if (q->lazy_index == SIZE_MAX) {
                        query_free(q);
                        conn_fail(c, "prepare failed");
                        return -1;
                    }
                    /* a registered statement: its run that follows fails on its own; try again on its next run */
                    c->prepared[q->lazy_index / 64] &= ~(UINT64_C(1) << q->lazy_index % 64);
                }
                query_free(q);
                if (c->ninflight == 0 && c->state == CONN_PREPARING) {
                    c->state = CONN_READY;
                    atomic_fetch_add(&c->pool->num_ready, 1);
                    pthread_mutex_lock(&c->pool->lock);
                    c->pool->backoff_ms = 0;
                    c->pool->next_attempt_at = 0;
                    c->pool->consecutive_failures = 0;
                    pthread_mutex_unlock(&c->pool->lock);
                    atomic_store(&c->pool->breaker_open_until, 0); /* closed again */
                    atomic_store(&c->pool->healthy, 1);
                }
            } else {
                q->conn = NULL;
                const char *state = q->res != NULL ? PQresultErrorField(q->res, PG_DIAG_SQLSTATE) : NULL;
                if (state != NULL && strcmp(state, "57014") == 0 && !q->targeted && q->cb != NULL && q->attempts < 2 &&
                    c->holder != NULL && atomic_load(&c->pool->cancels_requested) != 0) {
                    /* a cancel meant for the statement before it landed on this one; a cancelled statement was rolled
                     * back, so running it again is safe, writes included */
                    requeue_front(c->holder, q);
                } else {
                    query_complete(q, HY_DB_OK, NULL);
                }
            }
            break;
        }
    }
Done:
    if (c->ninflight == 0)
        conn_drained(c);
    return 0;
}

static void on_conn_writable(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    c->waiting_write = 0;
    if (err != NULL || conn_flush(c) != 0)
        conn_fail(c, "write failed");
}

/* ---- connecting ------------------------------------------------------------------------------------------------------- */

static void conn_connect_step(conn_t *c);

static void on_connect_io(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    (void)err;
    c->waiting_write = 0;
    conn_connect_step(c);
}

/* Starts preparing every statement once the connection is up. */
static int conn_start_prepare(conn_t *c)
{
    hy_db_pool_t *pool = c->pool;
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1)
        return -1;
    c->state = CONN_PREPARING;
    for (size_t i = 0; i != pool->neager; ++i) {
        hy_db_query_t *q = hy_xcalloc(1, sizeof(*q));
        q->prepare = pool->stmts[i];
        q->lazy_index = SIZE_MAX;
        if (conn_send(c, q) != 0) {
            query_free(q);
            return -1;
        }
    }
    if (pool->neager == 0) {
        c->state = CONN_READY;
        atomic_fetch_add(&pool->num_ready, 1);
    }
    return conn_flush(c);
}

static void conn_connect_step(conn_t *c)
{
    PostgresPollingStatusType st = PQconnectPoll(c->pg);
    if (PQsocket(c->pg) != c->fd && st != PGRES_POLLING_FAILED) {
        /* libpq moved to another socket (e.g. retrying without SSL): follow it */
        hy_db_local_t *local = c->holder;
        conn_detach(c);
        conn_attach(c, local);
    }
    switch (st) {
    case PGRES_POLLING_READING:
        h2o_socket_read_start(c->sock, on_connect_io);
        break;
    case PGRES_POLLING_WRITING:
        h2o_socket_read_stop(c->sock);
        c->waiting_write = 1;
        h2o_socket_notify_write(c->sock, on_connect_io);
        break;
    case PGRES_POLLING_OK:
        h2o_socket_read_start(c->sock, on_conn_readable);
        if (conn_start_prepare(c) != 0)
            conn_fail(c, "cannot set up the connection");
        break;
    default:
        conn_fail(c, "cannot connect");
        break;
    }
}

/* Opens a connection for `local` (a slot in num_open is already reserved). */
static void conn_open(hy_db_local_t *local)
{
    hy_db_pool_t *pool = local->pool;
    conn_t *c = hy_xcalloc(1, sizeof(*c));
    c->pool = pool;
    c->state = CONN_CONNECTING;
    c->created_at = c->idle_since = now_ms();
    c->connect_deadline = c->created_at + pool->settings.connect_timeout_ms;
    h2o_linklist_init_anchor(&c->inflight);
    c->pg = PQconnectStartParams(pool->kw, pool->vals, 1); /* expand_dbname: a URL in dbname is parsed */
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD || PQsocket(c->pg) < 0) {
        c->state = CONN_CONNECTING;
        log_conn_error("cannot connect", c->pg);
        atomic_fetch_add(&pool->connect_errors, 1);
        if (c->pg != NULL)
            PQfinish(c->pg);
        free(c);
        pthread_mutex_lock(&pool->lock);
        --pool->num_open;
        record_connect_failure_locked(pool);
        pthread_mutex_unlock(&pool->lock);
        return;
    }
    conn_attach(c, local);
    h2o_socket_read_stop(c->sock);
    c->waiting_write = 1;
    h2o_socket_notify_write(c->sock, on_connect_io);
}

/* ---- dispatching ------------------------------------------------------------------------------------------------------ */

static void on_conn_readable(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    hy_db_local_t *local = c->holder; /* c may be handed off or closed while reading */
    (void)err;
    if (conn_read(c) == 0 && local != NULL && !local->detached)
        dispatch(local);
}

/* Chooses the held ready connection with room and the fewest statements in flight. */
static conn_t *pick_conn(hy_db_local_t *local)
{
    conn_t *best = NULL;
    for (h2o_linklist_t *n = local->conns.next; n != &local->conns; n = n->next) {
        conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, n);
        if (c->state != CONN_READY || c->handoff || c->ninflight >= local->pool->settings.pipeline_depth)
            continue;
        if (best == NULL || c->ninflight < best->ninflight)
            best = c;
        if (c->ninflight == 0)
            break;
    }
    return best;
}

static int conn_expired(const hy_db_pool_t *pool, const conn_t *c, uint64_t now)
{
    return (pool->settings.max_lifetime_ms != 0 && now - c->created_at >= pool->settings.max_lifetime_ms) ||
           (pool->settings.max_idle_time_ms != 0 && now - c->idle_since >= pool->settings.max_idle_time_ms);
}

static void nudge_others(hy_db_pool_t *pool, hy_db_local_t *self);

/* Asks the pool for one more connection for `local`. */
static void request_conn(hy_db_local_t *local)
{
    hy_db_pool_t *pool = local->pool;
    uint64_t now = now_ms();
    conn_t *take = NULL, *expired = NULL;
    int open_new = 0, nudge = 0;

    /* a connection already opening on this thread will serve the queue */
    for (h2o_linklist_t *n = local->conns.next; n != &local->conns; n = n->next) {
        conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, n);
        if (c->state != CONN_READY)
            return;
    }
    pthread_mutex_lock(&pool->lock);
    while (!h2o_linklist_is_empty(&pool->idle)) {
        conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, pool->idle.prev);
        h2o_linklist_unlink(&c->link);
        --pool->num_idle;
        if (conn_expired(pool, c, now)) {
            c->link.next = expired != NULL ? &expired->link : NULL; /* chain for closing outside the lock */
            expired = c;
            continue;
        }
        take = c;
        break;
    }
    if (take == NULL) {
        if (pool->num_open < pool->settings.max_open && now >= pool->next_attempt_at) {
            ++pool->num_open;
            open_new = 1;
        } else {
            nudge = !local->in_waitlist;
            waitlist_push(pool, local);
        }
    } else {
        waitlist_remove(pool, local);
    }
    pthread_mutex_unlock(&pool->lock);

    while (expired != NULL) {
        conn_t *next = expired->link.next == NULL ? NULL : H2O_STRUCT_FROM_MEMBER(conn_t, link, expired->link.next);
        expired->link.next = expired->link.prev = NULL;
        conn_close(expired);
        expired = next;
    }
    if (take != NULL) {
        conn_attach(take, local);
        dispatch(local);
    } else if (open_new) {
        conn_open(local);
    } else if (nudge) {
        nudge_others(pool, local);
    }
}

static void dispatch(hy_db_local_t *local)
{
    hy_db_pool_t *pool = local->pool;
    while (local->npending != 0) {
        conn_t *c = pick_conn(local);
        if (c == NULL) {
            request_conn(local);
            return;
        }
        int flush_needed = 0;
        while (local->npending != 0 && c->ninflight < pool->settings.pipeline_depth) {
            hy_db_query_t *q = H2O_STRUCT_FROM_MEMBER(hy_db_query_t, link, local->pending.next);
            h2o_linklist_unlink(&q->link);
            --local->npending;
            atomic_fetch_sub(&pool->num_pending, 1);
            h2o_timeout_unlink(&q->acquire_timer);
            if (q->cb == NULL) {
                query_free(q);
                continue;
            }
            conn_set_busy(c, 1);
            if (conn_send(c, q) != 0) {
                /* the statement is not in c->inflight: put it back in front, then fail the connection */
                if (q->attempts != 0)
                    --q->attempts;
                q->sent = 0;
                requeue_front(local, q);
                conn_fail(c, "send failed");
                return; /* conn_fail dispatched again */
            }
            flush_needed = 1;
        }
        if (flush_needed && conn_flush(c) != 0) {
            conn_fail(c, "write failed");
            return;
        }
    }
    if (atomic_load(&local->in_waitlist)) {
        /* served: a thread that waits for nothing must not be handed connections */
        pthread_mutex_lock(&pool->lock);
        waitlist_remove(pool, local);
        pthread_mutex_unlock(&pool->lock);
    }
}

/* ---- releasing -------------------------------------------------------------------------------------------------------- */

/* A held connection has nothing in flight: keep it, hand it to a waiting thread, park it, or retire it. */
static void conn_drained(conn_t *c)
{
    hy_db_pool_t *pool = c->pool;
    hy_db_local_t *local = c->holder;
    if (local == NULL || c->state != CONN_READY)
        return;
    uint64_t now = now_ms();
    c->idle_since = now;
    conn_set_busy(c, 0);
    if (pool->settings.max_lifetime_ms != 0 && now - c->created_at >= pool->settings.max_lifetime_ms) {
        conn_close(c); /* retired between statements: nothing fails */
        if (local->npending != 0)
            dispatch(local);
        return;
    }
    hy_db_local_t *to = NULL;
    int give_away = atomic_load(&pool->num_waiting_threads) != 0 || local->detached;
    pthread_mutex_lock(&pool->lock);
    if (give_away) {
        /* first waiting thread other than this one */
        size_t n = pool->waiters_count;
        for (size_t i = 0; i != n; ++i) {
            hy_db_local_t *w = waitlist_pop(pool);
            if (w != local) {
                to = w;
                break;
            }
            waitlist_push(pool, w); /* back to the end: this thread already has this connection */
        }
        if (to == NULL && local->detached) {
            h2o_linklist_unlink(&c->link);
            conn_detach_socket(c);
            c->holder = NULL;
            h2o_linklist_insert(&pool->idle, &c->link);
            ++pool->num_idle;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    c->handoff = 0;
    if (to != NULL) {
        conn_detach(c);
        message_t *m = hy_xcalloc(1, sizeof(*m));
        m->conn = c;
        h2o_multithread_send_message(&to->receiver, &m->super);
    }
}

static void on_message(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    hy_db_local_t *local = H2O_STRUCT_FROM_MEMBER(hy_db_local_t, receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        message_t *m = H2O_STRUCT_FROM_MEMBER(message_t, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        if (m->conn != NULL) {
            if (local->detached) {
                conn_close(m->conn);
            } else {
                conn_t *c = m->conn;
                conn_attach(c, local);
                dispatch(local);
                /* handed over after this thread's wait ended: pass it on to whoever waits now */
                if (c->holder == local && c->ninflight == 0 && c->state == CONN_READY)
                    conn_drained(c);
            }
        } else {
            /* nudge: give away every idle held connection */
            h2o_linklist_t *n = local->conns.next;
            while (n != &local->conns) {
                conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, n);
                n = n->next;
                if (c->state == CONN_READY && c->ninflight == 0) {
                    conn_drained(c);
                } else if (c->state == CONN_READY) {
                    c->handoff = 1;
                }
            }
        }
        free(m);
    }
}

static void nudge_others(hy_db_pool_t *pool, hy_db_local_t *self)
{
    pthread_mutex_lock(&pool->lock);
    for (size_t i = 0; i != pool->nthreads; ++i) {
        hy_db_local_t *l = pool->locals[i];
        if (l == NULL || l == self || l->detached)
            continue;
        message_t *m = hy_xcalloc(1, sizeof(*m));
        h2o_multithread_send_message(&l->receiver, &m->super);
    }
    pthread_mutex_unlock(&pool->lock);
}

/* ---- timers ----------------------------------------------------------------------------------------------------------- */

static void on_acquire_timeout(h2o_timeout_entry_t *entry)
{
    hy_db_query_t *q = H2O_STRUCT_FROM_MEMBER(hy_db_query_t, acquire_timer, entry);
    hy_db_local_t *local = q->local;
    h2o_linklist_unlink(&q->link);
    --local->npending;
    atomic_fetch_sub(&local->pool->num_pending, 1);
    if (q->cb != NULL)
        atomic_fetch_add(&local->pool->acquire_timeouts, 1);
    query_complete(q, HY_DB_UNAVAILABLE, "no database connection within acquire_timeout");
    if (local->npending == 0) {
        pthread_mutex_lock(&local->pool->lock);
        waitlist_remove(local->pool, local);
        pthread_mutex_unlock(&local->pool->lock);
    }
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    hy_db_local_t *local = H2O_STRUCT_FROM_MEMBER(hy_db_local_t, tick, entry);
    hy_db_pool_t *pool = local->pool;
    uint64_t now = now_ms();

    /* connection attempts past connect_timeout; idle held connections past their time; idle ones beyond max_idle (counted
     * over the whole pool) */
    h2o_linklist_t *n = local->conns.next;
    pthread_mutex_lock(&pool->lock);
    size_t idle_total = pool->num_open > pool->num_busy ? pool->num_open - pool->num_busy : 0;
    pthread_mutex_unlock(&pool->lock);
    while (n != &local->conns) {
        conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, n);
        n = n->next;
        if (c->state != CONN_READY && now >= c->connect_deadline) {
            conn_fail(c, "connect_timeout");
        } else if (c->state == CONN_READY && c->ninflight == 0) {
            /* beyond max_idle, close only connections that stayed idle for a while: under load a connection is idle
             * between two statements, and reopening it costs PostgreSQL a fork and an authentication */
            if (conn_expired(pool, c, now) || (idle_total > pool->settings.max_idle && now - c->idle_since >= IDLE_GRACE_MS)) {
                conn_close(c);
                --idle_total;
            }
        }
    }
    /* thread 0 keeps one connection warm, reconnecting with backoff, so readiness is known without traffic */
    if (local->index == 0 && atomic_load(&pool->num_ready) == 0 && h2o_linklist_is_empty(&local->conns)) {
        pthread_mutex_lock(&pool->lock);
        int open_new = pool->num_open == 0 && now >= pool->next_attempt_at;
        if (open_new)
            ++pool->num_open;
        pthread_mutex_unlock(&pool->lock);
        if (open_new)
            conn_open(local);
    }
    /* detached idle connections past their time (any thread may close them) */
    conn_t *expired = NULL;
    pthread_mutex_lock(&pool->lock);
    for (h2o_linklist_t *i = pool->idle.next; i != &pool->idle;) {
        conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, i);
        i = i->next;
        if (conn_expired(pool, c, now)) {
            h2o_linklist_unlink(&c->link);
            --pool->num_idle;
            c->link.next = expired != NULL ? &expired->link : NULL;
            expired = c;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    while (expired != NULL) {
        conn_t *next = expired->link.next == NULL ? NULL : H2O_STRUCT_FROM_MEMBER(conn_t, link, expired->link.next);
        expired->link.next = expired->link.prev = NULL;
        conn_close(expired);
        expired = next;
    }
    /* queries still waiting (e.g. during an outage): try again once the backoff allows */
    if (local->npending != 0)
        dispatch(local);
    if (!local->detached)
        h2o_timeout_link(local->loop, &local->tick_timeout, &local->tick);
}

static void on_dispatch(h2o_timeout_entry_t *entry)
{
    dispatch(H2O_STRUCT_FROM_MEMBER(hy_db_local_t, dispatch_entry, entry));
}

static void on_deferred(h2o_timeout_entry_t *entry)
{
    hy_db_local_t *local = H2O_STRUCT_FROM_MEMBER(hy_db_local_t, deferred_entry, entry);
    while (!h2o_linklist_is_empty(&local->deferred)) {
        hy_db_query_t *q = H2O_STRUCT_FROM_MEMBER(hy_db_query_t, link, local->deferred.next);
        h2o_linklist_unlink(&q->link);
        if (q->failfast)
            query_complete(q, HY_DB_UNAVAILABLE, "the database circuit is open");
        else
            query_complete(q, HY_DB_OVERLOADED, "too many queries waiting for a connection");
    }
}

static void *canceller_main(void *arg);

/* ---- public API ------------------------------------------------------------------------------------------------------- */

hy_db_pool_t *hy_db_pool_create(const hy_db_settings_t *settings, const hy_db_stmt_t *const *stmts, size_t nstmts, size_t nthreads)
{
    if (settings->max_open == 0 || nthreads == 0 || nstmts > HY_DB_MAX_STMTS)
        return NULL;
    hy_pq_require();
    hy_db_pool_t *pool = hy_xcalloc(1, sizeof(*pool));
    pool->settings = *settings;
    if (pool->settings.pipeline_depth == 0)
        pool->settings.pipeline_depth = 16;
    for (size_t i = 0; i != nstmts; ++i)
        pool->stmts[i] = stmts[i];
    pool->neager = nstmts;
    atomic_init(&pool->nstmts, nstmts);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_mutex_init(&pool->cancel_lock, NULL);
    pthread_cond_init(&pool->cancel_cond, NULL);
    /* the canceller takes no signal (they belong to the main thread, whatever the caller's mask) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_create(&pool->canceller, NULL, canceller_main, pool);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    h2o_linklist_init_anchor(&pool->idle);
    pool->nthreads = nthreads;
    pool->waiters = hy_xcalloc(nthreads, sizeof(*pool->waiters));
    pool->locals = hy_xcalloc(nthreads, sizeof(*pool->locals));

    size_t n = 0;
    while (settings->keywords[n] != NULL)
        ++n;
    pool->kw = hy_xcalloc(n + 3, sizeof(char *));
    pool->vals = hy_xcalloc(n + 3, sizeof(char *));
    /* a fixed session: ISO dates in UTC and hex bytea, so the `sql` routes' JSON does not depend on the server's
     * defaults (the C handlers format their own columns) */
    char opts[200] = "-c DateStyle=ISO,MDY -c TimeZone=UTC -c bytea_output=hex -c client_encoding=UTF8";
    size_t k = 0;
    int has_app = 0;
    for (size_t i = 0; i != n; ++i) {
        if (strcmp(settings->keywords[i], "application_name") == 0)
            has_app = 1;
        pool->kw[k] = settings->keywords[i];
        pool->vals[k++] = settings->values[i];
    }
    if (!has_app) {
        pool->kw[k] = "application_name";
        pool->vals[k++] = "hydrant";
    }
    if (settings->statement_timeout_ms != 0)
        snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts), " -c statement_timeout=%llu",
                 (unsigned long long)settings->statement_timeout_ms);
    pool->session_options = hy_xstrdup(opts);
    pool->kw[k] = "options";
    pool->vals[k++] = pool->session_options;
    pool->kw[k] = NULL;
    pool->vals[k] = NULL;
    return pool;
}

const hy_db_stmt_t *hy_db_pool_register(hy_db_pool_t *pool, const hy_db_stmt_t *stmt)
{
    const hy_db_stmt_t *found = NULL;
    pthread_mutex_lock(&pool->lock);
    size_t n = atomic_load_explicit(&pool->nstmts, memory_order_relaxed);
    for (size_t i = 0; i != n && found == NULL; ++i)
        if (strcmp(pool->stmts[i]->name, stmt->name) == 0)
            found = pool->stmts[i];
    if (found == NULL && n != HY_DB_MAX_STMTS) {
        /* one allocation: the struct, the types, then the strings */
        size_t nl = strlen(stmt->name) + 1, sl = strlen(stmt->sql) + 1, ll = stmt->label != NULL ? strlen(stmt->label) + 1 : 0;
        size_t tl = stmt->param_types != NULL ? sizeof(unsigned) * (size_t)stmt->nparams : 0;
        hy_db_stmt_t *copy = hy_xmalloc(sizeof(*copy) + tl + nl + sl + ll);
        char *p = (char *)(copy + 1);
        *copy = *stmt;
        if (tl != 0) {
            memcpy(p, stmt->param_types, tl);
            copy->param_types = (const unsigned *)p;
            p += tl;
        }
        copy->name = memcpy(p, stmt->name, nl);
        copy->sql = memcpy(p + nl, stmt->sql, sl);
        copy->label = ll != 0 ? memcpy(p + nl + sl, stmt->label, ll) : NULL;
        pool->stmts[n] = copy;
        atomic_store_explicit(&pool->nstmts, n + 1, memory_order_release);
        found = copy;
    }
    pthread_mutex_unlock(&pool->lock);
    return found;
}

size_t hy_db_pool_nstmts(hy_db_pool_t *pool)
{
    return atomic_load_explicit(&pool->nstmts, memory_order_acquire);
}

const hy_db_stmt_t *hy_db_pool_stmt(hy_db_pool_t *pool, size_t index)
{
    return index < hy_db_pool_nstmts(pool) ? pool->stmts[index] : NULL;
}

hy_db_local_t *hy_db_local_attach(hy_db_pool_t *pool, size_t index, h2o_loop_t *loop, h2o_multithread_queue_t *queue)
{
    hy_db_local_t *local = hy_xcalloc(1, sizeof(*local));
    local->pool = pool;
    local->index = index;
    local->loop = loop;
    h2o_linklist_init_anchor(&local->conns);
    h2o_linklist_init_anchor(&local->pending);
    h2o_linklist_init_anchor(&local->deferred);
    h2o_multithread_register_receiver(queue, &local->receiver, on_message);
    h2o_timeout_init(loop, &local->acquire_timeout, pool->settings.acquire_timeout_ms);
    h2o_timeout_init(loop, &local->tick_timeout, TICK_MS);
    h2o_timeout_init(loop, &local->zero_timeout, 0);
    local->tick.cb = on_tick;
    local->deferred_entry.cb = on_deferred;
    local->dispatch_entry.cb = on_dispatch;
    pthread_mutex_lock(&pool->lock);
    pool->locals[index] = local;
    pthread_mutex_unlock(&pool->lock);
    if (index == 0)
        on_tick(&local->tick); /* opens the warm connection at once */
    else
        h2o_timeout_link(loop, &local->tick_timeout, &local->tick);
    return local;
}

void hy_db_local_detach(hy_db_local_t *local)
{
    hy_db_pool_t *pool = local->pool;
    local->detached = 1;
    h2o_timeout_unlink(&local->tick);
    pthread_mutex_lock(&pool->lock);
    waitlist_remove(pool, local);
    pthread_mutex_unlock(&pool->lock);
    while (!h2o_linklist_is_empty(&local->pending)) {
        hy_db_query_t *q = H2O_STRUCT_FROM_MEMBER(hy_db_query_t, link, local->pending.next);
        h2o_linklist_unlink(&q->link);
        h2o_timeout_unlink(&q->acquire_timer);
        --local->npending;
        atomic_fetch_sub(&pool->num_pending, 1);
        query_complete(q, HY_DB_UNAVAILABLE, "shutting down");
    }
    on_deferred(&local->deferred_entry);
    h2o_timeout_unlink(&local->deferred_entry);
    h2o_timeout_unlink(&local->dispatch_entry);
    while (!h2o_linklist_is_empty(&local->conns)) {
        conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, local->conns.next);
        conn_set_busy(c, 0);
        while (!h2o_linklist_is_empty(&c->inflight)) {
            hy_db_query_t *q = H2O_STRUCT_FROM_MEMBER(hy_db_query_t, link, c->inflight.next);
            h2o_linklist_unlink(&q->link);
            q->conn = NULL;
            query_complete(q, q->sent ? HY_DB_UNKNOWN_OUTCOME : HY_DB_UNAVAILABLE, "shutting down");
        }
        c->ninflight = 0;
        conn_close(c);
    }
    /* The receiver stays registered and `local` stays allocated (freed with the pool): another thread may still be
     * sending it a connection, which on_message then closes. */
}

void hy_db_pool_free(hy_db_pool_t *pool)
{
    if (pool == NULL)
        return;
    while (!h2o_linklist_is_empty(&pool->idle)) {
        conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, link, pool->idle.next);
        h2o_linklist_unlink(&c->link);
        PQfinish(c->pg);
        free(c);
    }
    pthread_mutex_lock(&pool->cancel_lock);
    pool->cancel_stop = 1;
    pthread_cond_signal(&pool->cancel_cond);
    pthread_mutex_unlock(&pool->cancel_lock);
    pthread_join(pool->canceller, NULL);
    pthread_mutex_destroy(&pool->cancel_lock);
    pthread_cond_destroy(&pool->cancel_cond);
    for (size_t i = 0; i != pool->nthreads; ++i)
        free(pool->locals[i]);
    pthread_mutex_destroy(&pool->lock);
    for (size_t i = pool->neager; i != atomic_load(&pool->nstmts); ++i)
        free((void *)pool->stmts[i]); /* the copies hy_db_pool_register made */
    free(pool->session_options);
    free(pool->kw);
    free(pool->vals);
    free(pool->waiters);
    free(pool->locals);
    free(pool);
}

int hy_db_pool_ready(const hy_db_pool_t *pool)
{
    hy_db_pool_t *p = (hy_db_pool_t *)pool;
    /* a live connection, or the last attempt succeeded and nothing failed since (idle connections may all be closed) */
    return atomic_load(&p->num_ready) != 0 || atomic_load(&p->healthy) != 0;
}

void hy_db_pool_set_observer(hy_db_pool_t *pool, const hy_db_observer_t *observer)
{
    pool->observer = *observer;
}

void hy_db_pool_stats(hy_db_pool_t *pool, hy_db_stats_t *out)
{
    pthread_mutex_lock(&pool->lock);
    out->open = pool->num_open;
    out->in_use = pool->num_busy;
    out->idle = pool->num_open >= pool->num_busy ? pool->num_open - pool->num_busy : 0;
    pthread_mutex_unlock(&pool->lock);
    out->waiting = atomic_load(&pool->num_pending);
    out->acquire_timeouts = atomic_load(&pool->acquire_timeouts);
    out->connect_errors = atomic_load(&pool->connect_errors);
    out->cancels = atomic_load(&pool->cancels_sent);
    out->breaker_open = hy_db_pool_breaker_open(pool);
    out->breaker_opened = atomic_load(&pool->breaker_opened);
}

hy_db_query_t *hy_db_submit(hy_db_local_t *local, const hy_db_stmt_t *stmt, const char *const *values, int nvalues, hy_db_cb cb,
                            void *data)
{
    hy_db_pool_t *pool = local->pool;
    size_t total = sizeof(char *) * (size_t)nvalues;
    for (int i = 0; i != nvalues; ++i)
        if (values[i] != NULL)
            total += strlen(values[i]) + 1;
    hy_db_query_t *q = hy_xcalloc(1, sizeof(*q));
    q->stmt = stmt;
    q->cb = cb;
    q->data = data;
    q->local = local;
    q->nvalues = nvalues;
    q->acquire_timer.cb = on_acquire_timeout;
    q->submitted_ns = now_ns();
    size_t nstmts = atomic_load_explicit(&pool->nstmts, memory_order_acquire);
    while (q->stmt_index < nstmts && pool->stmts[q->stmt_index] != stmt)
        ++q->stmt_index;
    if (nvalues != 0) {
        q->values = hy_xmalloc(total);
        char *p = (char *)(q->values + nvalues);
        for (int i = 0; i != nvalues; ++i) {
            if (values[i] == NULL) {
                q->values[i] = NULL;
            } else {
                size_t len = strlen(values[i]) + 1;
                memcpy(p, values[i], len);
                q->values[i] = p;
                p += len;
            }
        }
    }
    uint64_t open_until = atomic_load(&pool->breaker_open_until);
    if (open_until != 0 && now_ms() < open_until) {
        q->failfast = 1;
        h2o_linklist_insert(&local->deferred, &q->link);
        if (!h2o_timeout_is_linked(&local->deferred_entry))
            h2o_timeout_link(local->loop, &local->zero_timeout, &local->deferred_entry);
        return q;
    }
    if (pool->settings.queue_limit != 0 && local->npending >= pool->settings.queue_limit) {
        h2o_linklist_insert(&local->deferred, &q->link);
        if (!h2o_timeout_is_linked(&local->deferred_entry))
            h2o_timeout_link(local->loop, &local->zero_timeout, &local->deferred_entry);
        return q;
    }
    h2o_linklist_insert(&local->pending, &q->link);
    ++local->npending;
    atomic_fetch_add(&pool->num_pending, 1);
    h2o_timeout_link(local->loop, &local->acquire_timeout, &q->acquire_timer);
    /* sent at the end of this loop turn: never calls back inside hy_db_submit, and statements submitted in the same
     * turn go out in one write */
    if (!h2o_timeout_is_linked(&local->dispatch_entry))
        h2o_timeout_link(local->loop, &local->zero_timeout, &local->dispatch_entry);
    return q;
}

#define CANCEL_AFTER_NS (20 * 1000000) /* an abandoned statement running this long is cancelled on the server */

void hy_db_abandon(hy_db_query_t *query)
{
    query->cb = NULL;
    query->req_link = NULL;
    conn_t *c = query->conn;
    /* Only the statement at the head of its connection's pipeline is executing; a cancel request stops that one. Short
     * ones are left to finish (a cancel costs PostgreSQL a connection of its own). */
    if (c == NULL || query->targeted || c->inflight.next != &query->link || now_ns() - query->sent_ns < CANCEL_AFTER_NS)
        return;
    hy_db_pool_t *pool = c->pool;
    PGcancel *cancel = PQgetCancel(c->pg);
    if (cancel == NULL)
        return;
    query->targeted = 1;
    atomic_fetch_add(&pool->cancels_requested, 1);
    pthread_mutex_lock(&pool->cancel_lock);
    if (pool->ncancel < sizeof(pool->cancel_queue) / sizeof(pool->cancel_queue[0])) {
        pool->cancel_queue[pool->ncancel++] = cancel;
        cancel = NULL;
        pthread_cond_signal(&pool->cancel_cond);
    }
    pthread_mutex_unlock(&pool->cancel_lock);
    if (cancel != NULL)
        PQfreeCancel(cancel); /* too many pending: the statement runs to its end */
}

/* The canceller thread: PQcancel opens a connection to the server and waits, so it never runs on an event thread. */
static void *canceller_main(void *arg)
{
    hy_db_pool_t *pool = arg;
    pthread_mutex_lock(&pool->cancel_lock);
    for (;;) {
        while (pool->ncancel == 0 && !pool->cancel_stop)
            pthread_cond_wait(&pool->cancel_cond, &pool->cancel_lock);
        if (pool->ncancel == 0 && pool->cancel_stop)
            break;
        PGcancel *cancel = pool->cancel_queue[--pool->ncancel];
        pthread_mutex_unlock(&pool->cancel_lock);
        char err[256];
        if (!PQcancel(cancel, err, sizeof(err)))
            hy_log("warn", NULL, "database: cancel request failed: %s", err);
        else
            atomic_fetch_add(&pool->cancels_sent, 1);
        PQfreeCancel(cancel);
        pthread_mutex_lock(&pool->cancel_lock);
    }
    pthread_mutex_unlock(&pool->cancel_lock);
    return NULL;
}

int hy_db_pool_breaker_open(const hy_db_pool_t *pool)
{
    uint64_t until = atomic_load(&((hy_db_pool_t *)pool)->breaker_open_until);
    return until != 0 && now_ms() < until;
}

static void on_req_dispose(void *p)
{
    req_link_t *link = p;
    if (link->query != NULL)
        hy_db_abandon(link->query);
}

hy_db_query_t *hy_db_submit_req(h2o_req_t *req, hy_db_local_t *local, const hy_db_stmt_t *stmt, const char *const *values,
                                int nvalues, hy_db_cb cb, void *data)
{
    req_link_t *link = h2o_mem_alloc_shared(&req->pool, sizeof(*link), on_req_dispose);
    link->query = NULL;
    hy_db_query_t *q = hy_db_submit(local, stmt, values, nvalues, cb, data);
    /* hy_db_submit never calls back synchronously, so q is alive here */
    link->query = q;
    q->req_link = link;
    return q;
}
