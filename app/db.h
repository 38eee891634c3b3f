/* db.h: ONE asynchronous PostgreSQL pool for the process, shared by all event-loop threads (libpq, pipeline mode). */
#ifndef HY_DB_H
#define HY_DB_H

#include <h2o.h>
#include "pq.h"
#include <stddef.h>
#include <stdint.h>

/* ---- settings --------------------------------------------------------------------------------------------------------- */

typedef struct st_hy_db_settings_t {
    const char *const *keywords;   /* libpq connection keywords, NULL-terminated (host, port, user, password, dbname, ...) */
    const char *const *values;     /* their values, same length; the password is among them and is never logged */
    size_t max_open;               /* connections the process may hold at once (connecting ones included) */
    size_t max_idle;               /* idle connections kept; more are closed on release */
    uint64_t max_lifetime_ms;      /* a connection older than this is retired when it next becomes idle (0 = never) */
    uint64_t max_idle_time_ms;     /* an idle connection unused this long is closed (0 = never) */
    uint64_t acquire_timeout_ms;   /* a query waiting longer than this for a connection fails with HY_DB_UNAVAILABLE */
    size_t queue_limit;            /* queries waiting per thread beyond which a new one fails at once (HY_DB_OVERLOADED) */
    uint64_t connect_timeout_ms;   /* a connection attempt taking longer fails */
    uint64_t statement_timeout_ms; /* SET statement_timeout on each connection (0 = server default) */
    size_t pipeline_depth;         /* queries in flight on one connection at most */
    uint64_t breaker_threshold;    /* connection attempts failing in a row that open the circuit (0: never) */
    uint64_t breaker_cooldown_ms;  /* how long an open circuit fails statements at once before letting a probe through */
} hy_db_settings_t;

/* A statement prepared on every connection. The C handlers' statements are static and given to hy_db_pool_create
 * (prepared as soon as a connection opens); the `sql` routes' statements come from the configuration and are added
 * with hy_db_pool_register (prepared on a connection the first time they run there). */
typedef struct st_hy_db_stmt_t {
    const char *name;            /* prepared statement name, unique in the process */
    const char *sql;             /* parameterised SQL ($1 .. $n), never built from request input */
    int nparams;                 /* number of parameters */
    int idempotent;              /* 1: safe to retry once on another connection when its connection dies (reads) */
    const unsigned *param_types; /* NULL: PostgreSQL infers the parameter types; else nparams type OIDs */
    const char *label;           /* the `statement` label of its metrics; NULL: name */
} hy_db_stmt_t;

#define HY_DB_MAX_STMTS 1024 /* statements one pool can know, those added by reloads included */

/* ---- results ---------------------------------------------------------------------------------------------------------- */

typedef enum en_hy_db_status_t {
    HY_DB_OK = 0,         /* the statement ran: res holds its PGRES_TUPLES_OK / PGRES_COMMAND_OK result */
    HY_DB_QUERY_ERROR,    /* the server refused the statement: sqlstate and message say why (res is the error) */
    HY_DB_UNAVAILABLE,    /* no connection could be had within acquire_timeout, or the database is down */
    HY_DB_OVERLOADED,     /* the wait queue is full: answered at once */
    HY_DB_UNKNOWN_OUTCOME /* a non-idempotent statement was sent and its connection died before the answer */
} hy_db_status_t;

typedef struct st_hy_db_result_t {
    hy_db_status_t status; /* see above */
    PGresult *res;         /* owned by the pool, freed after the callback returns; NULL unless OK / QUERY_ERROR */
    const char *sqlstate;  /* 5-character SQLSTATE for QUERY_ERROR ("23505"), else "" */
    const char *message;   /* internal detail for logs (never for clients); valid during the callback */
} hy_db_result_t;

/* Called once on the submitting thread, unless the query was abandoned first. */
typedef void (*hy_db_cb)(void *data, const hy_db_result_t *result);

typedef struct st_hy_db_pool_t hy_db_pool_t;
typedef struct st_hy_db_local_t hy_db_local_t;
typedef struct st_hy_db_query_t hy_db_query_t;

/* ---- the pool --------------------------------------------------------------------------------------------------------- */

/* Creates the pool. `settings` and `stmts` (nstmts of them) are copied/referenced: stmts must stay valid for the
 * pool's life. `nthreads` event-loop threads will attach with hy_db_local_attach. Returns NULL on bad settings. */
hy_db_pool_t *hy_db_pool_create(const hy_db_settings_t *settings, const hy_db_stmt_t *const *stmts, size_t nstmts, size_t nthreads);

/* Attaches event-loop thread `index` (its loop and h2o multithread queue). Call on that thread before it serves.
 * Thread 0 also keeps one connection warm so readiness is known without traffic. */
hy_db_local_t *hy_db_local_attach(hy_db_pool_t *pool, size_t index, h2o_loop_t *loop, h2o_multithread_queue_t *queue);

/* Detaches the thread (at shutdown): fails its waiting queries with HY_DB_UNAVAILABLE and closes its connections. */
void hy_db_local_detach(hy_db_local_t *local);

/* Adds a statement to a running pool (any thread): the pool keeps its own copy and prepares it on each connection the
 * first time it runs there, in the same pipeline as that run (no extra round trip). A statement that does not prepare
 * fails its runs with HY_DB_QUERY_ERROR and leaves the connection healthy. A name already known returns the copy made
 * first (names are meant to be derived from the SQL text). Returns the pool's copy, valid for the pool's life, or NULL
 * when HY_DB_MAX_STMTS statements are known already. */
const hy_db_stmt_t *hy_db_pool_register(hy_db_pool_t *pool, const hy_db_stmt_t *stmt);

/* The number of statements the pool knows and the one at `index` (for metrics: the observer's stmt_index). */
size_t hy_db_pool_nstmts(hy_db_pool_t *pool);
const hy_db_stmt_t *hy_db_pool_stmt(hy_db_pool_t *pool, size_t index);

/* Frees the pool after every thread detached. */
void hy_db_pool_free(hy_db_pool_t *pool);

/* 1 while the circuit breaker is open (statements fail fast with HY_DB_UNAVAILABLE). Any thread. */
int hy_db_pool_breaker_open(const hy_db_pool_t *pool);

/* 1 when at least one connection is established and usable. Lock-free; any thread. */
int hy_db_pool_ready(const hy_db_pool_t *pool);

typedef struct st_hy_db_stats_t {
    size_t open;               /* connections open or opening */
    size_t idle;               /* of which idle */
    size_t in_use;             /* of which carrying queries */
    size_t waiting;            /* queries waiting for a connection, all threads */
    uint64_t acquire_timeouts; /* queries failed with HY_DB_UNAVAILABLE for want of a connection */
    uint64_t connect_errors;   /* failed connection attempts and connections lost */
    uint64_t cancels;          /* cancel requests sent for abandoned long-running statements */
    int breaker_open;          /* the circuit is open: statements fail fast */
    uint64_t breaker_opened;   /* times it opened */
} hy_db_stats_t;

/* What the pool reports for metrics, called on the thread that submitted the statement (index `thread`). */
typedef struct st_hy_db_observer_t {
    void (*acquired)(void *data, size_t thread, double wait_seconds); /* a statement got a connection after waiting */
    void (*done)(void *data, size_t thread, size_t stmt_index, hy_db_status_t status,
                 double seconds); /* a statement finished (stmt_index: its position in the pool's statements) */
    void *data;                   /* passed back */
} hy_db_observer_t;

/* Sets the observer (before the threads attach). The struct is copied. */
void hy_db_pool_set_observer(hy_db_pool_t *pool, const hy_db_observer_t *observer);

/* A consistent snapshot of the pool's counters (takes the pool lock briefly). */
void hy_db_pool_stats(hy_db_pool_t *pool, hy_db_stats_t *out);

/* ---- queries ---------------------------------------------------------------------------------------------------------- */

/* Runs `stmt` with text parameters `values` (nvalues == stmt->nparams; a NULL value is SQL NULL). The values are copied.
 * `cb(data, result)` runs later on this thread. Returns a handle for hy_db_abandon; never NULL (an overload or a
 * down pool is reported through the callback, on a later loop turn). */
hy_db_query_t *hy_db_submit(hy_db_local_t *local, const hy_db_stmt_t *stmt, const char *const *values, int nvalues, hy_db_cb cb,
                            void *data);

/* The caller no longer wants the answer (the client went away, or its deadline passed): the callback will not run.
 * A statement already executing for 20 ms or more is cancelled on the server (PQcancel, sent from a helper thread);
 * a shorter one completes and its result is discarded. Either way the connection goes back to the pool healthy.
 * Call at most once, and only before the callback ran. */
void hy_db_abandon(hy_db_query_t *query);

/* Submits on behalf of `req`: when the request is disposed before the answer arrives (client closed the connection or
 * reset the stream), the query is abandoned and the callback never runs. */
hy_db_query_t *hy_db_submit_req(h2o_req_t *req, hy_db_local_t *local, const hy_db_stmt_t *stmt, const char *const *values,
                                int nvalues, hy_db_cb cb, void *data);

#endif
