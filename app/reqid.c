/* reqid.c: request ids: the X-Request-Id sanity rule, the per-thread id generator, and traceparent validation. */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "reqid.h"

/* ---- incoming ids ------------------------------------------------------------------------------------------------------ */

int hy_reqid_is_sane(const char *s, size_t len)
{
    if (len == 0 || len > HY_REQID_MAX)
        return 0;
    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e)
            return 0;
    }
    return 1;
}

/* ---- generated ids ----------------------------------------------------------------------------------------------------- */

#define COUNTER_BITS 50
#define COUNTER_MASK ((UINT64_C(1) << COUNTER_BITS) - 1)

/* Crockford's base32 alphabet, lower-case: no i, l, o or u, so ids cannot be misread or spell words easily. */
static const char alphabet[32] = "0123456789abcdefghjkmnpqrstvwxyz";

/* One step of the splitmix64 sequence: a good 64-bit mix of a counter-like state. Advances *state. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Fills `out` with random bytes from getrandom(2), or returns -1 when the kernel cannot give them. */
static int os_random(void *out, size_t len)
{
    unsigned char *p = out;
    while (len != 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The weak fallback when getrandom(2) fails (seccomp, very old kernels): two clocks, the pid, the thread index and the
 * generator's address, mixed. */
static void fallback_random(uint64_t out[2], const void *salt, unsigned thread_index)
{
    struct timespec rt, mono;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    uint64_t state = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec;
    state = splitmix64(&state) ^ ((uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec);
    state = splitmix64(&state) ^ ((uint64_t)getpid() << 16) ^ thread_index;
    state = splitmix64(&state) ^ (uint64_t)(uintptr_t)salt;
    out[0] = splitmix64(&state);
    out[1] = splitmix64(&state);
}

/* Writes the base32 of random (64 bits) followed by thread (16 bits), 80 bits = 16 characters, into g->suffix. */
static void make_suffix(hy_reqid_gen_t *g)
{
    uint64_t hi = g->random >> 48, lo = (g->random << 16) | (g->thread & 0xffff); /* the 80 bits as hi:lo */
    for (int i = 15; i >= 0; --i) {
        g->suffix[i] = alphabet[lo & 31];
        lo = (lo >> 5) | (hi << 59);
        hi >>= 5;
    }
}

void hy_reqid_thread_init(hy_reqid_gen_t *g, unsigned thread_index)
{
    uint64_t r[2];
    if (os_random(r, sizeof(r)) != 0)
        fallback_random(r, g, thread_index);
    g->counter = 0;
    g->key = r[0];
    g->random = r[1];
    g->thread = thread_index & 0xffff;
    make_suffix(g);
}

/* A bijection of 50-bit numbers (each step is invertible mod 2^50: adding a key, multiplying by an odd constant,
 * xor with a right shift of itself), so distinct counters never give the same field. */
static uint64_t scramble(uint64_t n, uint64_t key)
{
    uint64_t x = (n + key) & COUNTER_MASK;
    x = (x * UINT64_C(0x9e3779b97f4a7c15)) & COUNTER_MASK;
    x ^= x >> 23;
    x = (x * UINT64_C(0xbf58476d1ce4e5b9)) & COUNTER_MASK;
    x ^= x >> 26;
    return x;
}

size_t hy_reqid_next(hy_reqid_gen_t *g, char *buf)
{
    uint64_t x = scramble(g->counter, g->key);
    if (++g->counter > COUNTER_MASK) {
        /* 2^50 ids later: new random bits (a deterministic step, no system call) make a new suffix */
        g->counter = 0;
        uint64_t state = g->random;
        g->random = splitmix64(&state);
        make_suffix(g);
    }
    for (int i = 9; i >= 0; --i) {
        buf[i] = alphabet[x & 31];
        x >>= 5;
    }
    memcpy(buf + 10, g->suffix, 16);
    buf[HY_REQID_LEN] = '\0';
    return HY_REQID_LEN;
}

/* ---- W3C trace context ------------------------------------------------------------------------------------------------- */

/* Checks `n` lower-case hex digits at s; returns 1 when they all are, and sets *nonzero when any digit is not '0'. */
static int lower_hex(const char *s, size_t n, int *nonzero)
{
    for (size_t i = 0; i != n; ++i) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
        if (c != '0')
            *nonzero = 1;
    }
    return 1;
}

/* https://www.w3.org/TR/trace-context/#traceparent-header:
 *     00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
 *     ^0 ^3                               ^36              ^53 */
int hy_traceparent_is_valid(const char *s, size_t len)
{
    int version_nonzero = 0, trace_nonzero = 0, parent_nonzero = 0, flags_nonzero = 0;

    if (len < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return 0;
    if (!lower_hex(s, 2, &version_nonzero) || (s[0] == 'f' && s[1] == 'f'))
        return 0;
    if (!lower_hex(s + 3, 32, &trace_nonzero) || !trace_nonzero)
        return 0;
    if (!lower_hex(s + 36, 16, &parent_nonzero) || !parent_nonzero)
        return 0;
    if (!lower_hex(s + 53, 2, &flags_nonzero))
        return 0;
    if (len == 55)
        return 1;
    /* only a later version may carry more, and then after a dash */
    return version_nonzero && s[55] == '-';
}
