/* accesslog.h: JSON access-log and error-log lines formatted into caller buffers, a per-thread buffered writer that
 * batches lines into few write(2) calls, and per-thread sampling. */
#ifndef HY_ACCESSLOG_H
#define HY_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <h2o/memory.h>

/* ---- line format ------------------------------------------------------------------------------------------------------- */

/* One access-log line, one JSON object followed by "\n", members in this order:
 *
 *     {"time":"2026-11-27T20:35:21.544Z","level":"info","request_id":"0f3k...","client_ip":"203.0.113.7",
 *      "method":"GET","path":"/users/42?x=1","route":"/users/{id}","status":200,"bytes_in":0,"bytes_out":512,
 *      "duration_us":873,"protocol":"HTTP/2","tls":true,"user_agent":"curl/8.5.0","traceparent":"00-..."}
 *
 * - time: RFC 3339, UTC, milliseconds (truncated, not rounded); years are clamped to 0000-9999.
 * - Strings are escaped per RFC 8259: '"' and '\' with a backslash; \b \f \n \r \t by name; the other bytes below
 *   0x20 and DEL (0x7f) as \u00XX; U+2028 and U+2029 as \u2028 / \u2029, so no byte of a value ends a line for any
 *   reader. Other valid UTF-8 is kept as is. Bytes that are not valid UTF-8 become \ufffd (U+FFFD), one per maximal
 *   ill-formed subsequence (Unicode's "substitution of maximal subparts"), so the line is always valid UTF-8 and JSON;
 *   the raw byte values are lost (a \u00XX would silently turn them into Latin-1 characters instead).
 * - A string member whose value is {NULL, 0} is null, except traceparent, which is then left out.
 * - Each string has a cap on the input bytes written (below); a value cut at its cap, or cut to fit the buffer, ends
 *   in "..." inside the quotes, and is never cut inside a UTF-8 character or an escape. */
#define HY_ACCESSLOG_ID_MAX 128          /* request_id */
#define HY_ACCESSLOG_IP_MAX 64           /* client_ip */
#define HY_ACCESSLOG_METHOD_MAX 32       /* method */
#define HY_ACCESSLOG_PATH_MAX 2048       /* path */
#define HY_ACCESSLOG_ROUTE_MAX 256       /* route */
#define HY_ACCESSLOG_UA_MAX 512          /* user_agent */
#define HY_ACCESSLOG_TRACEPARENT_MAX 128 /* traceparent */

/* A buffer of this size always holds a whole line with every value written up to its cap (each input byte becomes at
 * most 6 output bytes; 512 covers the names, numbers and punctuation). */
#define HY_ACCESSLOG_LINE_MAX                                                                                                      \
    (512 + 6 * (HY_ACCESSLOG_ID_MAX + HY_ACCESSLOG_IP_MAX + HY_ACCESSLOG_METHOD_MAX + HY_ACCESSLOG_PATH_MAX +                      \
                HY_ACCESSLOG_ROUTE_MAX + HY_ACCESSLOG_UA_MAX + HY_ACCESSLOG_TRACEPARENT_MAX))

typedef struct st_hy_accesslog_entry_t {
    struct timeval time;     /* the moment the line is about (UTC) */
    h2o_iovec_t request_id;  /* the request's id (kept X-Request-Id or generated) */
    h2o_iovec_t client_ip;   /* the client's address as text (hy_client_ip) */
    h2o_iovec_t method;      /* the request method, as received */
    h2o_iovec_t path;        /* the raw path with its query, as received */
    h2o_iovec_t route;       /* the matched route's template; {NULL, 0} when no route matched (null) */
    int status;              /* the response status */
    uint64_t bytes_in;       /* request body bytes received */
    uint64_t bytes_out;      /* response bytes sent */
    uint64_t duration_us;    /* from the request's start to the response's end, in microseconds */
    int http_version;        /* h2o's encoding: 0x100 "HTTP/1.0", 0x101 "HTTP/1.1", 0x200 "HTTP/2" */
    int tls;                 /* nonzero when the connection is TLS */
    h2o_iovec_t user_agent;  /* the User-Agent value; {NULL, 0} when absent (null) */
    h2o_iovec_t traceparent; /* the traceparent value; {NULL, 0} when absent (the member is left out) */
} hy_accesslog_entry_t;

/* Formats one access-log line, ending in "\n", into buf and adds a NUL after it. The entry's strings are only read
 * (they need not be NUL-terminated) and nothing is kept. When the whole line does not fit in bufsize, the longest
 * values are cut (with "...") so that it does, shorter values kept whole first. Returns the line's length without the
 * NUL, or 0 (buf[0] = '\0' when bufsize > 0) when bufsize cannot hold even the line with every string cut to "...".
 * No allocation, system call or lock. */
size_t hy_accesslog_format(char *buf, size_t bufsize, const hy_accesslog_entry_t *e);

/* Longest message (input bytes) an error-log line holds before it is cut with "...". */
#define HY_ERRORLOG_MSG_MAX 4096

/* Formats one error-log line into buf, NUL-terminated, with the current time:
 *     {"time":"2026-11-27T20:35:21.544Z","level":"error","request_id":"0f3k...","msg":"upstream timed out"}
 * `level` ("error", "warn", "info") and `message` are NUL-terminated and escaped like access-log values;
 * `request_id` may be NULL, and the member is then left out. Nothing is kept. Returns the line's length without the
 * NUL, or 0 when bufsize is too small for even a cut line. Reads the clock (clock_gettime, a vDSO call). */
size_t hy_errorlog_format(char *buf, size_t bufsize, const char *level, const char *request_id, const char *message);

/* ---- buffered writer --------------------------------------------------------------------------------------------------- */

#define HY_LOGBUF_SIZE 65536

/* Lines of one thread, written to `fd` in batches. Owned and used by a single thread (no locks); any number of threads
 * may write their own buffers to the same fd. Each write(2) holds whole lines:
 * - to a regular file (open it with O_APPEND: hy_logbuf_open), a terminal or /dev/null, a batch is one write, which the
 *   kernel appends whole;
 * - to a pipe (such as a container's stdout) or a socket, a batch is written in pieces of at most PIPE_BUF bytes ending
 *   at line ends, because only writes that small are atomic on a pipe: larger ones from several threads may interleave
 *   mid-line when the pipe is full. A single line longer than PIPE_BUF is one write of its own. A server that runs one
 *   thread, or accepts that risk, may set `piece` to HY_LOGBUF_SIZE after hy_logbuf_init.
 * A blocking fd stalls the thread while the reader is slow, as any logging to stdout does. When the fd refuses the
 * bytes (an error, or EAGAIN on a non-blocking fd), the rest of the batch is dropped and counted, never retried. */
typedef struct st_hy_logbuf_t {
    int fd;                   /* where batches go (not owned: the caller closes it) */
    size_t len;               /* bytes waiting in buf */
    size_t piece;             /* most bytes per write(2): PIPE_BUF for pipes and sockets, else HY_LOGBUF_SIZE */
    uint64_t writes;          /* write(2) calls made */
    uint64_t bytes_written;   /* bytes the fd accepted */
    uint64_t bytes_dropped;   /* bytes lost to write errors */
    int last_errno;           /* errno of the latest failed write, 0 if none failed */
    char buf[HY_LOGBUF_SIZE]; /* the batch */
} hy_logbuf_t;

/* Opens `path` for appending (O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode 0644). Returns the fd, which the caller
 * owns, or -1 with errno set. */
int hy_logbuf_open(const char *path);

/* Prepares an empty buffer writing to `fd` (fstat(2) once, to pick `piece`). The fd stays the caller's and
 * must outlive the buffer. */
void hy_logbuf_init(hy_logbuf_t *lb, int fd);

/* Appends `len` bytes (whole lines, each ending in "\n") to the batch, flushing first when they do not fit. A line
 * longer than the buffer is written on its own. Returns 0, or -1 when a flush failed (the bytes then buffered or
 * written are not lost; those of the failed batch are, and counted). The bytes are copied. */
int hy_logbuf_append(hy_logbuf_t *lb, const char *lines, size_t len);

/* Formats the access-log line of `e` straight into the batch (hy_accesslog_format), flushing first when it does not
 * fit. Returns 0, or -1 when that flush failed (the line is still buffered). */
int hy_accesslog_write(hy_logbuf_t *lb, const hy_accesslog_entry_t *e);

/* Writes the batch out now; the server calls it from a 1-second timer and at shutdown. No system call when the batch
 * is empty. Returns 0, or -1 when the fd refused bytes (they are dropped and counted in bytes_dropped). The buffer is
 * empty afterwards either way. */
int hy_logbuf_flush(hy_logbuf_t *lb);

/* ---- sampling ---------------------------------------------------------------------------------------------------------- */

typedef struct st_hy_sampler_t {
    uint64_t state; /* the splitmix64 sequence's position */
} hy_sampler_t;

/* Seeds a sampler; the same seed gives the same decisions (e.g. the thread index, for reproducible tests). */
void hy_sampler_init(hy_sampler_t *s, uint64_t seed);

/* Returns 1 when this request's line should be logged: with probability `ratio` per call. A ratio >= 1 always logs
 * and <= 0 (or NaN) never does, both without drawing. One thread per sampler; no lock, allocation or system call. */
int hy_accesslog_sampled(hy_sampler_t *s, double ratio);

#endif
