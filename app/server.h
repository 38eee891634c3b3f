/* server.h: the server's lifecycle: listeners, TLS, one libh2o event loop per thread, routing, graceful shutdown. */
#ifndef HY_SERVER_H
#define HY_SERVER_H

#include <h2o.h>
#include <yajl/yajl_gen.h>
#include "config.h"

typedef struct st_hy_thread_t hy_thread_t;

/* Opens the listeners of `config` (exit code 1 with a message naming the address when one cannot be bound), starts
 * config->threads event-loop threads and serves until SIGTERM or SIGINT, then drains: closes the listeners, sends
 * HTTP/2 GOAWAY, waits up to timeouts.shutdown for requests in flight, and returns 0. Returns 1 on a runtime failure
 * at start-up. The config stays owned by the caller and must outlive the call. */
int hy_server_run(const hy_config_t *config);

/* The event-loop thread that serves `req`. Valid for the request's lifetime. */
hy_thread_t *hy_thread_of(h2o_req_t *req);

/* Index of a thread, 0 .. threads-1. */
size_t hy_thread_index(const hy_thread_t *thread);

/* This thread's part of the database pool, or NULL when no `database` is configured. */
struct st_hy_db_local_t *hy_thread_db(hy_thread_t *thread);

/* 1 once SIGTERM started the drain (readiness turns 503). Any thread. */
int hy_server_draining(void);

/* 1 when no database is configured or the pool has a live connection. Any thread. */
int hy_server_db_ready(void);

/* The request's id (request_id middleware: the kept X-Request-Id or a generated one), or NULL when it did not run.
 * Valid until the request is disposed. */
const char *hy_req_id(h2o_req_t *req);

/* The request's client address as text (client_ip middleware), or NULL when it did not run. Valid until the request
 * is disposed. */
const char *hy_req_client_ip(h2o_req_t *req);

/* Called once before a response starts: returns 1 when the caller may answer, 0 when the request was already answered
 * (its deadline passed and it got a 504): the caller must then drop its answer. */
int hy_req_claim_response(h2o_req_t *req);

/* The Prometheus exposition of the whole process: malloc'ed (the caller frees), its length in *len. Any thread; never
 * blocks the event-loop threads. NULL before the server runs. */
char *hy_server_metrics_render(size_t *len);

/* Writes the status document (version, uptime, threads, per-thread connections and requests, pool, config file and
 * load time; no secrets) as one JSON object into g. */
void hy_server_write_status(yajl_gen g);

#endif
