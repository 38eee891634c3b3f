/* metrics.h: Prometheus metrics: a process-wide registry with one lock-free shard per event-loop thread, rendered in
 * the text exposition format 0.0.4 when scraped. */
#ifndef HY_METRICS_H
#define HY_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* ---- overview ---------------------------------------------------------------------------------------------------------
 *
 * The registry is built once at start-up (hy_metrics_create, then any hy_metrics_add_* calls) before any thread uses
 * it; from then on its shape never changes. Each event-loop thread updates only its own shard (hy_metrics_shard):
 * the update functions take no lock, use no read-modify-write atomics and never allocate. A scrape
 * (hy_metrics_render, any thread) reads every shard with relaxed atomic loads, sums them and renders the text; it
 * never blocks an updater. A scrape racing with updates may see some of a request's effects and not others (its
 * counter but not yet its histogram), never a torn value; histogram buckets, +Inf and _count always agree.
 *
 * Families rendered, in this order:
 *   http_requests_total{method,route,status}          counter    completed requests; status is the exact code
 *   http_request_duration_seconds{method,route}       histogram  time to complete a request
 *   http_request_size_bytes{method,route}             histogram  request body bytes received
 *   http_response_size_bytes{method,route}            histogram  response bytes sent
 *   http_requests_in_flight                           gauge      requests started and not yet done
 *   hydrant_connections{protocol="http1"|"http2"}     gauge      client connections open now
 *   hydrant_connections_total                         counter    client connections ever accepted
 *   hydrant_connection_upgrades_total                 counter    HTTP/1.1 connections upgraded to HTTP/2 (h2c)
 *   the extra families of hy_metrics_add_counter / hy_metrics_add_histogram, in the order they were added
 *   whatever the collectors write, in the order they were added
 * The four request families render only the (method, route) series that saw a request, to keep scrapes small; a
 * rendered histogram series has all its buckets. The duration buckets are the creation argument (client_golang's
 * defaults when NULL: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 seconds); the size buckets are fixed at
 * 100, 1000, 10000, 100000, 1e6 and 1e7 bytes (powers of ten from a small JSON body to a 10 MB upload).
 *
 * Bounding http_requests_total: each shard counts (method, route, status) keys in a fixed-capacity table of
 * (nroutes + 1) * 8 methods * 16 statuses keys. Once it is full, a request whose key is not yet in it counts under
 * status="other" of its (method, route); so does a status outside 0..999.
 *
 * Numbers: counts render as integers; other values in the shortest form that reads back as the same double, like
 * client_golang ("0.005", "2.5", "10", "1e+06", "NaN", "+Inf"), the `le` label values included. */

/* ---- constants -------------------------------------------------------------------------------------------------------- */

/* The Content-Type of hy_metrics_render's output. */
#define HY_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Connection protocols (the `protocol` label: "http1", "http2"). */
enum { HY_PROTO_HTTP1 = 0, HY_PROTO_HTTP2 = 1 };

/* Method indices (the `method` label). Any method that is not one of the first seven is OTHER. */
enum {
    HY_METRICS_GET = 0,
    HY_METRICS_HEAD,
    HY_METRICS_POST,
    HY_METRICS_PUT,
    HY_METRICS_DELETE,
    HY_METRICS_PATCH,
    HY_METRICS_OPTIONS,
    HY_METRICS_OTHER,
    HY_METRICS_NMETHODS /* number of method indices */
};

/* ---- types ------------------------------------------------------------------------------------------------------------ */

typedef struct st_hy_metrics_t hy_metrics_t;               /* the registry */
typedef struct st_hy_metrics_shard_t hy_metrics_shard_t;   /* one event-loop thread's counters */
typedef struct st_hy_metrics_writer_t hy_metrics_writer_t; /* the output of a scrape in progress, for collectors */

/* A collector writes families computed at scrape time (gauges such as pool sizes, process statistics) with
 * hy_metrics_write_gauge / hy_metrics_write_counter. It runs on the scraping thread, inside hy_metrics_render. */
typedef void (*hy_metrics_collect_cb)(void *data, hy_metrics_writer_t *w);

/* ---- the registry ----------------------------------------------------------------------------------------------------- */

/* Creates the registry for `nthreads` event-loop threads (>= 1). `routes` are the nroutes route templates (the `route`
 * label values, copied); route index nroutes means no route matched (route="none"). `buckets` are the nbuckets upper
 * bounds of http_request_duration_seconds, finite and strictly increasing (copied); NULL uses client_golang's
 * defaults. Returns the registry, owned by the caller (hy_metrics_free), or NULL on invalid arguments. */
hy_metrics_t *hy_metrics_create(size_t nthreads, const char *const *routes, size_t nroutes, const double *buckets, size_t nbuckets);

/* Frees the registry and its shards. No thread may use them any more. NULL is ignored. */
void hy_metrics_free(hy_metrics_t *m);

/* The shard of thread `thread` (0 .. nthreads-1), or NULL when out of range. Valid until hy_metrics_free. Only that
 * thread may pass it to the update functions below. */
hy_metrics_shard_t *hy_metrics_shard(hy_metrics_t *m, size_t thread);

/* The method index (HY_METRICS_*) of a method name of `len` bytes, matched exactly ("GET", not "get"). */
unsigned hy_metrics_method(const char *name, size_t len);

/* ---- updates (owning thread only; no lock, no allocation) ------------------------------------------------------------- */

/* A request started: http_requests_in_flight + 1. */
void hy_metrics_request_start(hy_metrics_shard_t *s);

/* A request started with hy_metrics_request_start on this shard is done: http_requests_in_flight - 1, then counts it
 * in http_requests_total{method,route,status} and observes its duration and sizes. `method` is a HY_METRICS_* index
 * (larger values count as OTHER); `route` is an index into the creation routes, or nroutes (or more) for "none";
 * `status` is the response status (0 when none was sent); `seconds` below 0 or NaN counts as 0. */
void hy_metrics_request_done(hy_metrics_shard_t *s, unsigned method, size_t route, int status, double seconds,
                             uint64_t request_bytes, uint64_t response_bytes);

/* A client connection opened with protocol `proto` (HY_PROTO_*): hydrant_connections{protocol} + 1 and
 * hydrant_connections_total + 1. An unknown proto is ignored. */
void hy_metrics_conn_open(hy_metrics_shard_t *s, int proto);

/* A connection opened on this shard closed; `proto` is its protocol at close (HY_PROTO_HTTP2 after an upgrade). */
void hy_metrics_conn_close(hy_metrics_shard_t *s, int proto);

/* An open HTTP/1.1 connection of this shard became HTTP/2 (h2c Upgrade): moves it from protocol="http1" to "http2"
 * and counts hydrant_connection_upgrades_total. */
void hy_metrics_conn_upgrade(hy_metrics_shard_t *s);

/* ---- extra families (start-up only) ----------------------------------------------------------------------------------- */

/* Adds a counter family `name` with one label `label` whose nvalues values are fixed now (e.g. statement names), or
 * with no label when `label` is NULL (then `values` is ignored and there is one series). Every series renders, zeros
 * included. Strings are copied; `help` may contain any text (it is escaped). Call before any thread updates or renders.
 * Returns 0 and the family's index in *family, or -1 when a name is invalid, the name is taken or the values repeat. */
int hy_metrics_add_counter(hy_metrics_t *m, const char *name, const char *help, const char *label, const char *const *values,
                           size_t nvalues, size_t *family);

/* Adds a histogram family, labelled like hy_metrics_add_counter. `buckets` are nbuckets finite, strictly increasing
 * upper bounds (copied; NULL uses client_golang's defaults); +Inf is implied. `label` may not be "le". Every series
 * renders. Returns 0 and the family's index in *family, or -1 on invalid arguments. */
int hy_metrics_add_histogram(hy_metrics_t *m, const char *name, const char *help, const char *label, const char *const *values,
                             size_t nvalues, const double *buckets, size_t nbuckets, size_t *family);

/* Adds `n` to series `value_index` of counter family `family`. Owning thread only; out-of-range indices are ignored. */
void hy_metrics_counter_add(hy_metrics_shard_t *s, size_t family, size_t value_index, uint64_t n);

/* Observes `v` in series `value_index` of histogram family `family`. Owning thread only; out-of-range indices and NaN
 * are ignored. */
void hy_metrics_histogram_observe(hy_metrics_shard_t *s, size_t family, size_t value_index, double v);

/* ---- collectors and the writer ---------------------------------------------------------------------------------------- */

/* Adds a collector: `cb(data, w)` runs at each render, after the registry's own families, in the order added. Call
 * before any thread renders. `data` stays owned by the caller and must outlive the registry's last render. */
void hy_metrics_add_collector(hy_metrics_t *m, hy_metrics_collect_cb cb, void *data);

/* Writes one sample of gauge family `name` (a valid metric name, [a-zA-Z_:][a-zA-Z0-9_:]*, not checked):
 * `name{labels} v`. `labels` is already rendered, without braces ("state=\"idle\"", values escaped with
 * hy_metrics_escape_label_value), or NULL / "" for none. The HELP and TYPE lines are written before the first sample
 * of a family; write all samples of a family one after the other (a sample of a family that was already followed by
 * another family is dropped, since the format cannot express it). `help` of the first sample is used (escaped). */
void hy_metrics_write_gauge(hy_metrics_writer_t *w, const char *name, const char *help, const char *labels, double v);

/* Same as hy_metrics_write_gauge, for a counter family (`name` should end in "_total"). */
void hy_metrics_write_counter(hy_metrics_writer_t *w, const char *name, const char *help, const char *labels, double v);

/* Escapes a label value for the exposition format (backslash, double quote and newline become \\ \" \n) into buf,
 * NUL-terminated and truncated to bufsize. Returns the length of the whole escaped value (as snprintf does). */
size_t hy_metrics_escape_label_value(const char *value, char *buf, size_t bufsize);

/* ---- scraping --------------------------------------------------------------------------------------------------------- */

/* Renders every family (the shards summed) in the text exposition format 0.0.4. Any thread, while the event-loop
 * threads keep updating; renders on several threads at once are safe when the collectors are. Returns the text,
 * NUL-terminated, malloc'ed and owned by the caller (free it), and its length in *len (may be NULL). */
char *hy_metrics_render(hy_metrics_t *m, size_t *len);

#endif
