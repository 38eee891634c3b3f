/* metrics.c: the Prometheus registry: per-thread shards updated without locks, summed and rendered when scraped. */

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "metrics.h"

/* Updaters and scrapers share 64-bit cells; they must be real atomics, not emulated with a lock. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(sizeof(unsigned long long) == sizeof(uint64_t), "64-bit atomics are uint64_t");

/* ---- constants -------------------------------------------------------------------------------------------------------- */

#define CACHE_LINE 64          /* bytes; shards are kept on separate lines so threads never share one */
#define NPROTOS 2              /* HY_PROTO_HTTP1, HY_PROTO_HTTP2 */
#define STATUSES_PER_SERIES 16 /* table capacity per (method, route) pair, on average */
#define STATUS_BITS 10         /* a key's status field: 0..999 are codes, STATUS_OTHER is "other" */
#define MAX_STATUS 999         /* the largest status counted under its own code */
#define STATUS_OTHER 1023      /* status="other": sorts after every code */
#define KEY_USED (1ull << 63)  /* set in every key of a used table slot (0 is an empty slot) */
#define NSIZE_BUCKETS 6        /* size_buckets below */

static const double default_buckets[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
static const double size_buckets[NSIZE_BUCKETS] = {100, 1000, 10000, 100000, 1e6, 1e7};
static const char *const method_names[HY_METRICS_NMETHODS] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER"};
static const char *const proto_names[NPROTOS] = {"http1", "http2"};

/* The registry's own family names, which extra families may not take. */
static const char *const builtin_names[] = {
    "http_requests_total",     "http_request_duration_seconds", "http_request_size_bytes",   "http_response_size_bytes",
    "http_requests_in_flight", "hydrant_connections",           "hydrant_connections_total", "hydrant_connection_upgrades_total",
};

/* ---- types ------------------------------------------------------------------------------------------------------------ */

typedef _Atomic uint64_t cell_t; /* a counter, or a double's bits; written by one thread, read by any */

typedef struct st_buckets_t {
    double *bounds; /* finite upper bounds, strictly increasing (+Inf implied) */
    char **le;      /* each bound as its `le` label value ("0.005", "1e+06") */
    size_t n;       /* number of bounds; a histogram has n + 2 cells: n + 1 bucket counts (the last above every bound), sum */
} buckets_t;

typedef struct st_request_slot_t {
    cell_t key;   /* 0 when empty, else KEY_USED | series << STATUS_BITS | status; set once by the owner */
    cell_t count; /* requests counted under the key */
} request_slot_t;

enum { FAMILY_COUNTER, FAMILY_HISTOGRAM };

typedef struct st_family_t {
    int kind;          /* FAMILY_COUNTER or FAMILY_HISTOGRAM */
    char *name;        /* metric name */
    char *help;        /* HELP text, escaped */
    char **labels;     /* per value, the rendered label pair (`state="idle"`), or "" when the family has no label */
    size_t nvalues;    /* number of series */
    buckets_t buckets; /* histograms: the bounds */
    size_t stride;     /* cells per series: 1 for a counter, buckets.n + 2 for a histogram */
    size_t per_thread; /* cells per thread: nvalues * stride rounded up to a whole cache line */
    cell_t *cells;     /* nthreads * per_thread cells, aligned to a cache line */
    void *cells_raw;   /* the allocation holding cells */
} family_t;

typedef struct st_collector_t {
    hy_metrics_collect_cb cb; /* called at each render */
    void *data;               /* its argument */
} collector_t;

struct st_hy_metrics_shard_t {
    hy_metrics_t *m;       /* the registry (its shape is read-only once threads run) */
    size_t index;          /* the owning thread's index */
    cell_t in_flight;      /* requests started minus done (wraps below zero; summed modulo 2^64) */
    cell_t conns[NPROTOS]; /* connections open, by protocol (same wrapping) */
    cell_t conns_total;    /* connections opened */
    cell_t upgrades;       /* h2c upgrades */
    cell_t used;           /* table slots in use; the owner publishes it with release after filling order[] */
    uint32_t *order;       /* the used slots' indices in the order they were taken (capacity of them) */
    request_slot_t *slots; /* the (method, route, status) table, m->nslots slots, open addressing, linear probing */
    cell_t *other;         /* per series, requests counted as status="other" */
    cell_t *hist;          /* per series, its three histograms: duration, request size, response size */
    void *raw[5];          /* the allocations behind order, slots, other, hist and this struct */
};

struct st_hy_metrics_t {
    size_t nthreads;             /* number of shards */
    hy_metrics_shard_t **shards; /* one per thread, each on its own cache lines */
    size_t nroutes;              /* routes given at creation; index nroutes is "none" */
    size_t nseries;              /* (nroutes + 1) * HY_METRICS_NMETHODS (method, route) pairs; series = route * 8 + method */
    char **series_labels;        /* per series, `method="GET",route="/users/{id}"` (escaped) */
    buckets_t duration;          /* http_request_duration_seconds bounds */
    buckets_t size;              /* http_request_size_bytes / http_response_size_bytes bounds */
    size_t hist_stride;          /* cells per series in a shard's hist: the three histograms back to back */
    size_t capacity;             /* keys a shard's table may hold */
    size_t nslots;               /* slots in a table: a power of two at least twice the capacity */
    unsigned hash_shift;         /* 64 - log2(nslots) */
    family_t *families;          /* extra families, in the order added */
    size_t nfamilies;            /* number of them */
    collector_t *collectors;     /* collectors, in the order added */
    size_t ncollectors;          /* number of them */
};

struct st_hy_metrics_writer_t {
    char *buf;           /* the text so far (NUL-terminated when cap > 0) */
    size_t len;          /* its length */
    size_t cap;          /* allocated bytes */
    char **families;     /* names of the families written so far; the last one is still open */
    size_t nfamilies;    /* number of them */
    size_t families_cap; /* allocated slots */
};

/* ---- small helpers ---------------------------------------------------------------------------------------------------- */

/* Adds n to a cell that only the calling thread writes: a relaxed load and a relaxed store, no locked instruction. */
static inline void cell_add(cell_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

static inline uint64_t cell_get(cell_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static inline double bits_to_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

static inline uint64_t double_to_bits(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    return bits;
}

/* Returns a zeroed array of `n` elements of `size` bytes that starts on a cache line and fills whole lines, so that no
 * other allocation (another thread's shard) shares its lines. *raw receives the pointer to free(). calloc leaves the
 * pages of a large table unmapped until they are written. Aborts when memory runs out. */
static void *alloc_lines(size_t n, size_t size, void **raw)
{
    if (size != 0 && n > (SIZE_MAX - 2 * CACHE_LINE) / size)
        hy_alloc_fail_(__FILE__, __LINE__);
    size_t bytes = (n * size + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE + CACHE_LINE;
    *raw = hy_xcalloc(1, bytes);
    uintptr_t p = ((uintptr_t)*raw + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    return (void *)p;
}

static int is_name_char(char c, int first, int colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

/* A metric name is [a-zA-Z_:][a-zA-Z0-9_:]*; a label name [a-zA-Z_][a-zA-Z0-9_]* not starting with "__". */
static int valid_name(const char *s, int metric)
{
    if (s == NULL || *s == '\0')
        return 0;
    if (!metric && s[0] == '_' && s[1] == '_')
        return 0;
    for (size_t i = 0; s[i] != '\0'; ++i)
        if (!is_name_char(s[i], i == 0, metric))
            return 0;
    return 1;
}

/* Writes the shortest decimal form of `v` that reads back as `v`, formatted like Go's strconv 'g' with precision -1
 * (as client_golang does): exponent form when the exponent is below -4 or at least 6 ("1e+06", "1.5e-05"), plain
 * otherwise ("0.005", "100000"); "NaN", "+Inf", "-Inf". buf holds at least 32 bytes. Returns the length. */
static size_t format_double(double v, char *buf)
{
    if (isnan(v))
        return (size_t)sprintf(buf, "NaN");
    if (isinf(v))
        return (size_t)sprintf(buf, v > 0 ? "+Inf" : "-Inf");
    if (v == 0)
        return (size_t)sprintf(buf, "0");
    char e[32];
    int digits;
    for (digits = 1; digits < 17; ++digits) {
        snprintf(e, sizeof(e), "%.*e", digits - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    if (digits == 17)
        snprintf(e, sizeof(e), "%.16e", v);
    int exp = atoi(strchr(e, 'e') + 1);
    if (exp < -4 || exp >= 6)
        return (size_t)sprintf(buf, "%s", e);
    int decimals = digits - 1 - exp;
    return (size_t)sprintf(buf, "%.*f", decimals > 0 ? decimals : 0, v);
}

/* ---- escaping --------------------------------------------------------------------------------------------------------- */

/* Label values escape backslash, double quote and newline; HELP text escapes backslash and newline. Escapes `s` into
 * buf (when non-NULL) and returns the escaped length; buf must hold that many bytes plus the NUL. */
static size_t escape(const char *s, int quote, char *buf)
{
    size_t n = 0;
    for (; *s != '\0'; ++s) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (quote && *s == '"')
            rep = "\\\"";
        if (rep != NULL) {
            if (buf != NULL)
                memcpy(buf + n, rep, 2);
            n += 2;
        } else {
            if (buf != NULL)
                buf[n] = *s;
            ++n;
        }
    }
    if (buf != NULL)
        buf[n] = '\0';
    return n;
}

/* Returns a malloc'ed escaped copy of `s`. */
static char *escape_dup(const char *s, int quote)
{
    char *out = hy_xmalloc(escape(s, quote, NULL) + 1);
    escape(s, quote, out);
    return out;
}

size_t hy_metrics_escape_label_value(const char *value, char *buf, size_t bufsize)
{
    char *full = escape_dup(value, 1);
    size_t n = strlen(full);
    if (bufsize != 0) {
        size_t copy = n < bufsize - 1 ? n : bufsize - 1;
        memcpy(buf, full, copy);
        buf[copy] = '\0';
    }
    free(full);
    return n;
}

/* ---- buckets ---------------------------------------------------------------------------------------------------------- */

/* Copies n bounds (NULL: the defaults) into b and renders their `le` values. Returns 0, or -1 when they are not finite
 * and strictly increasing (b is then left empty). */
static int buckets_init(buckets_t *b, const double *bounds, size_t n)
{
    if (bounds == NULL) {
        bounds = default_buckets;
        n = sizeof(default_buckets) / sizeof(default_buckets[0]);
    }
    memset(b, 0, sizeof(*b));
    for (size_t i = 0; i != n; ++i)
        if (!isfinite(bounds[i]) || (i != 0 && !(bounds[i] > bounds[i - 1])))
            return -1;
    b->bounds = hy_xreallocarray(NULL, n, sizeof(double));
    b->le = hy_xreallocarray(NULL, n, sizeof(char *));
    b->n = n;
    for (size_t i = 0; i != n; ++i) {
        char tmp[32];
        b->bounds[i] = bounds[i];
        format_double(bounds[i], tmp);
        b->le[i] = hy_xstrdup(tmp);
    }
    return 0;
}

static void buckets_dispose(buckets_t *b)
{
    for (size_t i = 0; i != b->n; ++i)
        free(b->le[i]);
    free(b->le);
    free(b->bounds);
}

/* Observes v (not NaN) in the histogram whose n + 2 cells start at `cells`. Owning thread only. */
static inline void observe(cell_t *cells, const double *bounds, size_t n, double v)
{
    size_t i = 0;
    while (i != n && v > bounds[i])
        ++i;
    cell_add(&cells[i], 1);
    double sum = bits_to_double(cell_get(&cells[n + 1])) + v;
    atomic_store_explicit(&cells[n + 1], double_to_bits(sum), memory_order_relaxed);
}

/* ---- the registry ----------------------------------------------------------------------------------------------------- */

/* Allocates the shard of thread `index`, every array zeroed and on cache lines of its own. */
static hy_metrics_shard_t *shard_create(hy_metrics_t *m, size_t index)
{
    void *raw;
    hy_metrics_shard_t *s = alloc_lines(1, sizeof(*s), &raw);
    s->m = m;
    s->index = index;
    s->order = alloc_lines(m->capacity, sizeof(uint32_t), &s->raw[0]);
    s->slots = alloc_lines(m->nslots, sizeof(request_slot_t), &s->raw[1]);
    s->other = alloc_lines(m->nseries, sizeof(cell_t), &s->raw[2]);
    s->hist = alloc_lines(m->nseries * m->hist_stride, sizeof(cell_t), &s->raw[3]);
    s->raw[4] = raw;
    return s;
}

hy_metrics_t *hy_metrics_create(size_t nthreads, const char *const *routes, size_t nroutes, const double *buckets, size_t nbuckets)
{
    if (nthreads == 0 || (nroutes != 0 && routes == NULL) || nroutes > (1u << 24))
        return NULL;
    for (size_t i = 0; i != nroutes; ++i)
        if (routes[i] == NULL)
            return NULL;

    hy_metrics_t *m = hy_xcalloc(1, sizeof(*m));
    if (buckets_init(&m->duration, buckets, buckets != NULL ? nbuckets : 0) != 0) {
        free(m);
        return NULL;
    }
    buckets_init(&m->size, size_buckets, NSIZE_BUCKETS);
    m->nthreads = nthreads;
    m->nroutes = nroutes;
    m->nseries = (nroutes + 1) * HY_METRICS_NMETHODS;
    m->hist_stride = (m->duration.n + 2) + 2 * (m->size.n + 2);
    m->capacity = m->nseries * STATUSES_PER_SERIES;
    m->nslots = 16;
    m->hash_shift = 64 - 4;
    while (m->nslots < 2 * m->capacity) {
        m->nslots *= 2;
        --m->hash_shift;
    }

    m->series_labels = hy_xreallocarray(NULL, m->nseries, sizeof(char *));
    for (size_t r = 0; r <= nroutes; ++r) {
        char *route = escape_dup(r < nroutes ? routes[r] : "none", 1);
        for (size_t meth = 0; meth != HY_METRICS_NMETHODS; ++meth) {
            size_t len = strlen(route) + 32;
            char *label = hy_xmalloc(len);
            snprintf(label, len, "method=\"%s\",route=\"%s\"", method_names[meth], route);
            m->series_labels[r * HY_METRICS_NMETHODS + meth] = label;
        }
        free(route);
    }

    m->shards = hy_xcalloc(nthreads, sizeof(hy_metrics_shard_t *));
    for (size_t i = 0; i != nthreads; ++i)
        m->shards[i] = shard_create(m, i);
    return m;
}

static void family_dispose(family_t *f)
{
    free(f->name);
    free(f->help);
    for (size_t i = 0; i != f->nvalues; ++i)
        free(f->labels[i]);
    free(f->labels);
    buckets_dispose(&f->buckets);
    free(f->cells_raw);
}

void hy_metrics_free(hy_metrics_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i != m->nthreads; ++i) {
        hy_metrics_shard_t *s = m->shards[i];
        for (size_t j = 0; j != sizeof(s->raw) / sizeof(s->raw[0]) - 1; ++j)
            free(s->raw[j]);
        free(s->raw[4]);
    }
    free(m->shards);
    for (size_t i = 0; i != m->nseries; ++i)
        free(m->series_labels[i]);
    free(m->series_labels);
    buckets_dispose(&m->duration);
    buckets_dispose(&m->size);
    for (size_t i = 0; i != m->nfamilies; ++i)
        family_dispose(&m->families[i]);
    free(m->families);
    free(m->collectors);
    free(m);
}

hy_metrics_shard_t *hy_metrics_shard(hy_metrics_t *m, size_t thread)
{
    return thread < m->nthreads ? m->shards[thread] : NULL;
}

unsigned hy_metrics_method(const char *name, size_t len)
{
    for (unsigned i = 0; i != HY_METRICS_OTHER; ++i)
        if (strlen(method_names[i]) == len && memcmp(method_names[i], name, len) == 0)
            return i;
    return HY_METRICS_OTHER;
}

/* ---- updates ---------------------------------------------------------------------------------------------------------- */

void hy_metrics_request_start(hy_metrics_shard_t *s)
{
    cell_add(&s->in_flight, 1);
}

/* Counts one request of `series` with `status` in the shard's table, or under status="other" when the status is out
 * of range or the table is full. The owner alone writes the table, so a slot is claimed with plain stores: its count
 * first, then its key with release, then the published order[] entry and `used` with release, so that a scraper that
 * sees a key or an order entry also sees what it points to. */
static inline void count_request(hy_metrics_shard_t *s, size_t series, int status)
{
    const hy_metrics_t *m = s->m;
    if (status < 0 || status > MAX_STATUS)
        goto Other;
    uint64_t key = KEY_USED | (uint64_t)series << STATUS_BITS | (uint64_t)status;
    size_t mask = m->nslots - 1;
    for (size_t i = (size_t)((key * 0x9e3779b97f4a7c15ull) >> m->hash_shift);; i = (i + 1) & mask) {
        uint64_t k = cell_get(&s->slots[i].key);
        if (k == key) {
            cell_add(&s->slots[i].count, 1);
            return;
        }
        if (k == 0) {
            uint64_t used = cell_get(&s->used);
            if (used == m->capacity)
                goto Other;
            atomic_store_explicit(&s->slots[i].count, 1, memory_order_relaxed);
            atomic_store_explicit(&s->slots[i].key, key, memory_order_release);
            s->order[used] = (uint32_t)i;
            atomic_store_explicit(&s->used, used + 1, memory_order_release);
            return;
        }
    }
Other:
    cell_add(&s->other[series], 1);
}

void hy_metrics_request_done(hy_metrics_shard_t *s, unsigned method, size_t route, int status, double seconds,
                             uint64_t request_bytes, uint64_t response_bytes)
{
    const hy_metrics_t *m = s->m;
    if (method >= HY_METRICS_NMETHODS)
        method = HY_METRICS_OTHER;
    if (route > m->nroutes)
        route = m->nroutes;
    if (!(seconds >= 0))
        seconds = 0;
    size_t series = route * HY_METRICS_NMETHODS + method;

    cell_add(&s->in_flight, UINT64_MAX); /* - 1 modulo 2^64 */
    count_request(s, series, status);
    cell_t *h = s->hist + series * m->hist_stride;
    observe(h, m->duration.bounds, m->duration.n, seconds);
    h += m->duration.n + 2;
    observe(h, size_buckets, NSIZE_BUCKETS, (double)request_bytes);
    h += NSIZE_BUCKETS + 2;
    observe(h, size_buckets, NSIZE_BUCKETS, (double)response_bytes);
}

void hy_metrics_conn_open(hy_metrics_shard_t *s, int proto)
{
    if (proto != HY_PROTO_HTTP1 && proto != HY_PROTO_HTTP2)
        return;
    cell_add(&s->conns[proto], 1);
    cell_add(&s->conns_total, 1);
}

void hy_metrics_conn_close(hy_metrics_shard_t *s, int proto)
{
    if (proto != HY_PROTO_HTTP1 && proto != HY_PROTO_HTTP2)
        return;
    cell_add(&s->conns[proto], UINT64_MAX);
}

void hy_metrics_conn_upgrade(hy_metrics_shard_t *s)
{
    cell_add(&s->conns[HY_PROTO_HTTP1], UINT64_MAX);
    cell_add(&s->conns[HY_PROTO_HTTP2], 1);
    cell_add(&s->upgrades, 1);
}

/* ---- extra families --------------------------------------------------------------------------------------------------- */

/* Validates and appends a family; its cells are allocated for every thread. Returns 0 and its index, or -1. */
static int add_family(hy_metrics_t *m, int kind, const char *name, const char *help, const char *label, const char *const *values,
                      size_t nvalues, const double *buckets, size_t nbuckets, size_t *family)
{
    if (!valid_name(name, 1) || help == NULL)
        return -1;
    for (size_t i = 0; i != sizeof(builtin_names) / sizeof(builtin_names[0]); ++i)
        if (strcmp(builtin_names[i], name) == 0)
            return -1;
    for (size_t i = 0; i != m->nfamilies; ++i)
        if (strcmp(m->families[i].name, name) == 0)
            return -1;
    if (label != NULL) {
        if (!valid_name(label, 0) || (kind == FAMILY_HISTOGRAM && strcmp(label, "le") == 0) || nvalues == 0 || values == NULL)
            return -1;
        for (size_t i = 0; i != nvalues; ++i) {
            if (values[i] == NULL)
                return -1;
            for (size_t j = 0; j != i; ++j)
                if (strcmp(values[i], values[j]) == 0)
                    return -1;
        }
    } else {
        nvalues = 1;
    }

    family_t f = {.kind = kind};
    if (kind == FAMILY_HISTOGRAM) {
        if (buckets_init(&f.buckets, buckets, buckets != NULL ? nbuckets : 0) != 0)
            return -1;
        f.stride = f.buckets.n + 2;
    } else {
        f.stride = 1;
    }
    f.name = hy_xstrdup(name);
    f.help = escape_dup(help, 0);
    f.nvalues = nvalues;
    f.labels = hy_xreallocarray(NULL, nvalues, sizeof(char *));
    for (size_t i = 0; i != nvalues; ++i) {
        if (label == NULL) {
            f.labels[i] = hy_xstrdup("");
        } else {
            char *v = escape_dup(values[i], 1);
            size_t len = strlen(label) + strlen(v) + 4;
            f.labels[i] = hy_xmalloc(len);
            snprintf(f.labels[i], len, "%s=\"%s\"", label, v);
            free(v);
        }
    }
    size_t per_line = CACHE_LINE / sizeof(cell_t);
    f.per_thread = (nvalues * f.stride + per_line - 1) / per_line * per_line;
    f.cells = alloc_lines(m->nthreads, f.per_thread * sizeof(cell_t), &f.cells_raw);

    m->families = hy_xreallocarray(m->families, m->nfamilies + 1, sizeof(family_t));
    m->families[m->nfamilies] = f;
    *family = m->nfamilies++;
    return 0;
}

int hy_metrics_add_counter(hy_metrics_t *m, const char *name, const char *help, const char *label, const char *const *values,
                           size_t nvalues, size_t *family)
{
    return add_family(m, FAMILY_COUNTER, name, help, label, values, nvalues, NULL, 0, family);
}

int hy_metrics_add_histogram(hy_metrics_t *m, const char *name, const char *help, const char *label, const char *const *values,
                             size_t nvalues, const double *buckets, size_t nbuckets, size_t *family)
{
    return add_family(m, FAMILY_HISTOGRAM, name, help, label, values, nvalues, buckets, nbuckets, family);
}

void hy_metrics_counter_add(hy_metrics_shard_t *s, size_t family, size_t value_index, uint64_t n)
{
    const hy_metrics_t *m = s->m;
    if (family >= m->nfamilies)
        return;
    const family_t *f = &m->families[family];
    if (f->kind != FAMILY_COUNTER || value_index >= f->nvalues)
        return;
    cell_add(&f->cells[s->index * f->per_thread + value_index], n);
}

void hy_metrics_histogram_observe(hy_metrics_shard_t *s, size_t family, size_t value_index, double v)
{
    const hy_metrics_t *m = s->m;
    if (family >= m->nfamilies || isnan(v))
        return;
    const family_t *f = &m->families[family];
    if (f->kind != FAMILY_HISTOGRAM || value_index >= f->nvalues)
        return;
    observe(&f->cells[s->index * f->per_thread + value_index * f->stride], f->buckets.bounds, f->buckets.n, v);
}

void hy_metrics_add_collector(hy_metrics_t *m, hy_metrics_collect_cb cb, void *data)
{
    m->collectors = hy_xreallocarray(m->collectors, m->ncollectors + 1, sizeof(collector_t));
    m->collectors[m->ncollectors++] = (collector_t){cb, data};
}

/* ---- the writer ------------------------------------------------------------------------------------------------------- */

static void w_reserve(hy_metrics_writer_t *w, size_t more)
{
    if (w->len + more + 1 <= w->cap)
        return;
    size_t cap = w->cap != 0 ? w->cap : 4096;
    while (cap < w->len + more + 1) {
        if (cap > SIZE_MAX / 2)
            hy_alloc_fail_(__FILE__, __LINE__);
        cap *= 2;
    }
    w->buf = hy_xreallocarray(w->buf, cap, 1);
    w->cap = cap;
}

static void w_put(hy_metrics_writer_t *w, const char *s, size_t len)
{
    w_reserve(w, len);
    memcpy(w->buf + w->len, s, len);
    w->len += len;
    w->buf[w->len] = '\0';
}

static void w_puts(hy_metrics_writer_t *w, const char *s)
{
    w_put(w, s, strlen(s));
}

static void w_u64(hy_metrics_writer_t *w, uint64_t v)
{
    char tmp[24];
    w_put(w, tmp, (size_t)snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v));
}

static void w_i64(hy_metrics_writer_t *w, int64_t v)
{
    char tmp[24];
    w_put(w, tmp, (size_t)snprintf(tmp, sizeof(tmp), "%lld", (long long)v));
}

static void w_double(hy_metrics_writer_t *w, double v)
{
    char tmp[32];
    w_put(w, tmp, format_double(v, tmp));
}

/* Starts family `name`: writes its HELP (already escaped when `escaped`) and TYPE lines unless it is the family being
 * written. Returns 0, or -1 when the family was written earlier in this scrape and closed (its samples are dropped). */
static int w_family(hy_metrics_writer_t *w, const char *name, const char *help, int escaped, const char *type)
{
    if (w->nfamilies != 0 && strcmp(w->families[w->nfamilies - 1], name) == 0)
        return 0;
    for (size_t i = 0; i != w->nfamilies; ++i)
        if (strcmp(w->families[i], name) == 0)
            return -1;
    if (w->nfamilies == w->families_cap) {
        w->families_cap = w->families_cap != 0 ? w->families_cap * 2 : 16;
        w->families = hy_xreallocarray(w->families, w->families_cap, sizeof(char *));
    }
    w->families[w->nfamilies++] = hy_xstrdup(name);
    w_puts(w, "# HELP ");
    w_puts(w, name);
    w_puts(w, " ");
    if (escaped) {
        w_puts(w, help);
    } else {
        char *e = escape_dup(help != NULL ? help : "", 0);
        w_puts(w, e);
        free(e);
    }
    w_puts(w, "\n# TYPE ");
    w_puts(w, name);
    w_puts(w, " ");
    w_puts(w, type);
    w_puts(w, "\n");
    return 0;
}

/* Writes the part of a sample line before its value: `name``suffix`{`labels`,`extra`="`value`"} and a space. The braces
 * are left out when there is no label; `labels` may be NULL or "", `extra` NULL. */
static void w_head(hy_metrics_writer_t *w, const char *name, const char *suffix, const char *labels, const char *extra,
                   const char *extra_value)
{
    int has_labels = labels != NULL && *labels != '\0';
    w_puts(w, name);
    w_puts(w, suffix);
    if (has_labels || extra != NULL) {
        w_puts(w, "{");
        if (has_labels)
            w_puts(w, labels);
        if (extra != NULL) {
            if (has_labels)
                w_puts(w, ",");
            w_puts(w, extra);
            w_puts(w, "=\"");
            w_puts(w, extra_value);
            w_puts(w, "\"");
        }
        w_puts(w, "}");
    }
    w_puts(w, " ");
}

static void write_sample(hy_metrics_writer_t *w, const char *type, const char *name, const char *help, const char *labels, double v)
{
    if (w_family(w, name, help, 0, type) != 0)
        return;
    w_head(w, name, "", labels, NULL, NULL);
    w_double(w, v);
    w_puts(w, "\n");
}

void hy_metrics_write_gauge(hy_metrics_writer_t *w, const char *name, const char *help, const char *labels, double v)
{
    write_sample(w, "gauge", name, help, labels, v);
}

void hy_metrics_write_counter(hy_metrics_writer_t *w, const char *name, const char *help, const char *labels, double v)
{
    write_sample(w, "counter", name, help, labels, v);
}

/* Writes one histogram series from its summed, non-cumulative bucket counts (b->n + 1 of them) and its sum. */
static void w_histogram(hy_metrics_writer_t *w, const char *name, const char *labels, const buckets_t *b, const uint64_t *counts,
                        double sum)
{
    uint64_t cumulative = 0;
    for (size_t i = 0; i != b->n; ++i) {
        cumulative += counts[i];
        w_head(w, name, "_bucket", labels, "le", b->le[i]);
        w_u64(w, cumulative);
        w_puts(w, "\n");
    }
    cumulative += counts[b->n];
    w_head(w, name, "_bucket", labels, "le", "+Inf");
    w_u64(w, cumulative);
    w_puts(w, "\n");
    w_head(w, name, "_sum", labels, NULL, NULL);
    w_double(w, sum);
    w_puts(w, "\n");
    w_head(w, name, "_count", labels, NULL, NULL);
    w_u64(w, cumulative);
    w_puts(w, "\n");
}

/* Adds one thread's histogram, whose n + 2 cells start at `c`, to the bucket counts counts[0..b->n] and *sum. */
static void add_histogram(cell_t *c, const buckets_t *b, uint64_t *counts, double *sum)
{
    for (size_t i = 0; i <= b->n; ++i)
        counts[i] += cell_get(&c[i]);
    *sum += bits_to_double(cell_get(&c[b->n + 1]));
}

/* ---- rendering -------------------------------------------------------------------------------------------------------- */

typedef struct st_request_entry_t {
    uint64_t key;   /* KEY_USED | series << STATUS_BITS | status (STATUS_OTHER for "other") */
    uint64_t count; /* requests */
} request_entry_t;

static int cmp_entry(const void *a, const void *b)
{
    uint64_t x = ((const request_entry_t *)a)->key, y = ((const request_entry_t *)b)->key;
    return x < y ? -1 : x > y;
}

/* http_requests_total: gathers every shard's table entries and "other" counts, sorts them by (route, method, status)
 * and writes them with equal keys summed. */
static void render_requests_total(hy_metrics_t *m, hy_metrics_writer_t *w)
{
    size_t n = 0, cap = m->nseries;
    uint64_t *used = hy_xreallocarray(NULL, m->nthreads, sizeof(uint64_t));
    for (size_t t = 0; t != m->nthreads; ++t) {
        used[t] = atomic_load_explicit(&m->shards[t]->used, memory_order_acquire);
        cap += used[t];
    }
    request_entry_t *e = hy_xreallocarray(NULL, cap, sizeof(*e));
    for (size_t t = 0; t != m->nthreads; ++t) {
        hy_metrics_shard_t *s = m->shards[t];
        for (uint64_t i = 0; i != used[t]; ++i) {
            request_slot_t *slot = &s->slots[s->order[i]];
            e[n].key = atomic_load_explicit(&slot->key, memory_order_acquire);
            e[n].count = cell_get(&slot->count);
            ++n;
        }
    }
    for (size_t series = 0; series != m->nseries; ++series) {
        uint64_t other = 0;
        for (size_t t = 0; t != m->nthreads; ++t)
            other += cell_get(&m->shards[t]->other[series]);
        if (other != 0)
            e[n++] = (request_entry_t){KEY_USED | (uint64_t)series << STATUS_BITS | STATUS_OTHER, other};
    }
    qsort(e, n, sizeof(*e), cmp_entry);

    if (n != 0)
        w_family(w, "http_requests_total", "HTTP requests completed, by method, route template and status code.", 1, "counter");
    for (size_t i = 0; i != n;) {
        uint64_t key = e[i].key, count = 0;
        for (; i != n && e[i].key == key; ++i)
            count += e[i].count;
        unsigned status = (unsigned)(key & ((1u << STATUS_BITS) - 1));
        size_t series = (size_t)((key & ~KEY_USED) >> STATUS_BITS);
        char code[8];
        snprintf(code, sizeof(code), "%u", status);
        w_head(w, "http_requests_total", "", m->series_labels[series], "status", status == STATUS_OTHER ? "other" : code);
        w_u64(w, count);
        w_puts(w, "\n");
    }
    free(e);
    free(used);
}

/* The three request histograms, each over the series that saw a request. `active` marks those series once for all
 * three, so that the families list the same series even while requests complete during the scrape. */
static void render_request_histograms(hy_metrics_t *m, hy_metrics_writer_t *w)
{
    static const struct {
        const char *name; /* family */
        const char *help; /* its HELP text (needs no escaping) */
    } fams[3] = {
        {"http_request_duration_seconds", "Time to complete HTTP requests in seconds, by method and route template."},
        {"http_request_size_bytes", "Body bytes received with HTTP requests, by method and route template."},
        {"http_response_size_bytes", "Bytes sent in HTTP responses, by method and route template."},
    };
    const buckets_t *b[3] = {&m->duration, &m->size, &m->size};
    size_t offset[3] = {0, m->duration.n + 2, m->duration.n + 2 + m->size.n + 2};
    size_t maxn = m->duration.n > m->size.n ? m->duration.n : m->size.n;
    uint64_t *counts = hy_xreallocarray(NULL, maxn + 1, sizeof(uint64_t));
    char *active = hy_xcalloc(m->nseries, 1);
    size_t nactive = 0;

    for (size_t series = 0; series != m->nseries; ++series) {
        for (size_t t = 0; t != m->nthreads && !active[series]; ++t) {
            cell_t *c = m->shards[t]->hist + series * m->hist_stride;
            for (size_t i = 0; i <= m->duration.n; ++i) {
                if (cell_get(&c[i]) != 0) {
                    active[series] = 1;
                    ++nactive;
                    break;
                }
            }
        }
    }
    for (size_t f = 0; f != 3 && nactive != 0; ++f) {
        w_family(w, fams[f].name, fams[f].help, 1, "histogram");
        for (size_t series = 0; series != m->nseries; ++series) {
            if (!active[series])
                continue;
            double sum = 0;
            memset(counts, 0, (b[f]->n + 1) * sizeof(uint64_t));
            for (size_t t = 0; t != m->nthreads; ++t)
                add_histogram(m->shards[t]->hist + series * m->hist_stride + offset[f], b[f], counts, &sum);
            w_histogram(w, fams[f].name, m->series_labels[series], b[f], counts, sum);
        }
    }
    free(active);
    free(counts);
}

/* The gauges and connection counters, always written. */
static void render_connections(hy_metrics_t *m, hy_metrics_writer_t *w)
{
    uint64_t in_flight = 0, conns[NPROTOS] = {0}, total = 0, upgrades = 0;
    for (size_t t = 0; t != m->nthreads; ++t) {
        hy_metrics_shard_t *s = m->shards[t];
        in_flight += cell_get(&s->in_flight);
        for (size_t p = 0; p != NPROTOS; ++p)
            conns[p] += cell_get(&s->conns[p]);
        total += cell_get(&s->conns_total);
        upgrades += cell_get(&s->upgrades);
    }
    /* in flight and open counts are differences summed modulo 2^64: read as signed, a racing scrape that saw a close
     * before its open may show a transient -1 rather than 2^64 - 1 */
    w_family(w, "http_requests_in_flight", "HTTP requests being served.", 1, "gauge");
    w_head(w, "http_requests_in_flight", "", NULL, NULL, NULL);
    w_i64(w, (int64_t)in_flight);
    w_puts(w, "\n");
    w_family(w, "hydrant_connections", "Client connections open, by protocol.", 1, "gauge");
    for (size_t p = 0; p != NPROTOS; ++p) {
        w_head(w, "hydrant_connections", "", NULL, "protocol", proto_names[p]);
        w_i64(w, (int64_t)conns[p]);
        w_puts(w, "\n");
    }
    w_family(w, "hydrant_connections_total", "Client connections accepted.", 1, "counter");
    w_head(w, "hydrant_connections_total", "", NULL, NULL, NULL);
    w_u64(w, total);
    w_puts(w, "\n");
    w_family(w, "hydrant_connection_upgrades_total", "HTTP/1.1 connections upgraded to HTTP/2 (h2c).", 1, "counter");
    w_head(w, "hydrant_connection_upgrades_total", "", NULL, NULL, NULL);
    w_u64(w, upgrades);
    w_puts(w, "\n");
}

/* The extra families, every series. */
static void render_families(hy_metrics_t *m, hy_metrics_writer_t *w)
{
    for (size_t i = 0; i != m->nfamilies; ++i) {
        const family_t *f = &m->families[i];
        if (w_family(w, f->name, f->help, 1, f->kind == FAMILY_COUNTER ? "counter" : "histogram") != 0)
            continue;
        if (f->kind == FAMILY_COUNTER) {
            for (size_t v = 0; v != f->nvalues; ++v) {
                uint64_t sum = 0;
                for (size_t t = 0; t != m->nthreads; ++t)
                    sum += cell_get(&f->cells[t * f->per_thread + v]);
                w_head(w, f->name, "", f->labels[v], NULL, NULL);
                w_u64(w, sum);
                w_puts(w, "\n");
            }
        } else {
            uint64_t *counts = hy_xreallocarray(NULL, f->buckets.n + 1, sizeof(uint64_t));
            for (size_t v = 0; v != f->nvalues; ++v) {
                double sum = 0;
                memset(counts, 0, (f->buckets.n + 1) * sizeof(uint64_t));
                for (size_t t = 0; t != m->nthreads; ++t)
                    add_histogram(&f->cells[t * f->per_thread + v * f->stride], &f->buckets, counts, &sum);
                w_histogram(w, f->name, f->labels[v], &f->buckets, counts, sum);
            }
            free(counts);
        }
    }
}

char *hy_metrics_render(hy_metrics_t *m, size_t *len)
{
    hy_metrics_writer_t w = {0};
    w_reserve(&w, 0);
    w.buf[0] = '\0';
    render_requests_total(m, &w);
    render_request_histograms(m, &w);
    render_connections(m, &w);
    render_families(m, &w);
    for (size_t i = 0; i != m->ncollectors; ++i)
        m->collectors[i].cb(m->collectors[i].data, &w);
    for (size_t i = 0; i != w.nfamilies; ++i)
        free(w.families[i]);
    free(w.families);
    if (len != NULL)
        *len = w.len;
    return w.buf;
}
