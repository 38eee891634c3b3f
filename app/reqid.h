/* reqid.h: request ids: which incoming X-Request-Id values to keep, a lock-free per-thread id generator, and W3C
 * traceparent validation. */
#ifndef HY_REQID_H
#define HY_REQID_H

#include <stddef.h>
#include <stdint.h>

/* ---- incoming ids ------------------------------------------------------------------------------------------------------ */

/* Longest incoming X-Request-Id that is kept, in bytes. A buffer of HY_REQID_MAX + 1 bytes holds any id (kept or
 * generated) with its NUL. */
#define HY_REQID_MAX 128

/* Returns 1 when an incoming X-Request-Id may be kept as the request's id, 0 when a new one must be generated: 1 to
 * HY_REQID_MAX bytes, each printable ASCII 0x21-0x7e. Spaces are refused (an id is one token: it must survive grep,
 * awk and being pasted into a query); so are control bytes, DEL and any byte >= 0x80 (no UTF-8). `s` is not
 * NUL-terminated and may be NULL when len is 0. No allocation. */
int hy_reqid_is_sane(const char *s, size_t len);

/* ---- generated ids ----------------------------------------------------------------------------------------------------- */

/* Generated ids are HY_REQID_LEN characters of lower-case Crockford base32 ("0-9a-z" without i, l, o, u), so they are
 * URL-safe and pass hy_reqid_is_sane. They encode 130 bits:
 *
 *     [ 50-bit counter, scrambled ][ 64 random bits ][ 16-bit thread index ]
 *       10 characters               16 characters, the same for every id of one generator
 *
 * - Unique within a thread: the counter does not repeat for 2^50 ids (71 years at 500k ids/s; should it wrap, the
 *   random bits are stepped to new ones), and the scramble is a bijection of 50-bit numbers, so distinct counters give
 *   distinct fields.
 * - Unique across the threads of one process: the thread index differs.
 * - Unique across restarts, processes and hosts: each generator draws 64 fresh random bits (getrandom(2)) when it is
 *   initialised; two generators share them with probability 2^-64.
 * The scramble (a keyed multiply/xor-shift permutation) only keeps ids from looking sequential: it hides the request
 * count from casual clients but is not cryptographic. */
#define HY_REQID_LEN 26

typedef struct st_hy_reqid_gen_t {
    uint64_t counter; /* ids generated since the random bits were drawn (< 2^50) */
    uint64_t key;     /* random key of the counter scramble */
    uint64_t random;  /* random bits drawn at init, the middle of every id */
    unsigned thread;  /* the thread index (low 16 bits), the end of every id */
    char suffix[16];  /* the last 16 characters of every id: base32 of random and thread (not NUL-terminated) */
} hy_reqid_gen_t;

/* Seeds `g` for the calling thread: 128 random bits from getrandom(2) (one system call; if it fails, a weaker mix of
 * clocks, pid and addresses), the thread index and a zero counter. Call once per event-loop thread at start-up; the
 * generator is then used by that thread only (no locks). Indexes above 65535 are reduced mod 65536 (ids of such
 * threads then differ through their random bits alone). */
void hy_reqid_thread_init(hy_reqid_gen_t *g, unsigned thread_index);

/* Writes the next id, HY_REQID_LEN characters and a NUL, into `buf`, which the caller owns and which must hold at least
 * HY_REQID_LEN + 1 bytes (an HY_REQID_MAX + 1 buffer does). Returns HY_REQID_LEN. No system call, lock or allocation. */
size_t hy_reqid_next(hy_reqid_gen_t *g, char *buf);

/* ---- W3C trace context ------------------------------------------------------------------------------------------------- */

/* Returns 1 when `s` is a valid W3C traceparent header value, 0 otherwise:
 *
 *     version "-" trace-id "-" parent-id "-" trace-flags
 *     2 hex       32 hex       16 hex        2 hex          (lower-case hex only)
 *
 * The version "ff" is invalid, and so is an all-zero trace-id or parent-id. Version "00" is exactly 55 characters;
 * a later version may be longer when character 55 is "-" (the fields it adds are not checked), as the specification
 * asks of parsers that meet a version they do not know. `s` is not NUL-terminated. No allocation. */
int hy_traceparent_is_valid(const char *s, size_t len);

#endif
