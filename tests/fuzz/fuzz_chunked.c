/* fuzz_chunked.c: libFuzzer target for the guard's chunked decoder (phr_decode_chunked in app/h2o_guard.c): each input
 * is decoded whole, in pieces and a byte at a time, and by a separate whole-buffer reading of the RFC 9112 7.1 grammar
 * written for this target; all must agree on the outcome, the decoded data and what follows the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "chars.h"
#include "h2o_guard.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the reference: the grammar read over the whole input ---------------------------------------------------------------- */

static int is_ws(int c)
{
    return c == ' ' || c == '\t';
}

/* a field-value or quoted-string byte: HTAB, SP, VCHAR, obs-text */
static int is_text(int c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* A reading position with a byte budget: a chunk line may hold HY_GUARD_CHUNK_LINE_MAX bytes up to its CR, the trailer
 * section HY_GUARD_TRAILERS_MAX bytes up to its final LF. */
typedef struct {
    const uint8_t *in; /* the input */
    size_t len;        /* its length */
    size_t i;          /* the next byte */
    size_t start;      /* where the budget started */
    size_t max;        /* the budget */
} cursor_t;

/* Returns the next byte, -2 at the end of the input, -1 when it is over the budget. */
static int next(cursor_t *cur)
{
    if (cur->i == cur->len)
        return -2;
    if (cur->i - cur->start + 1 > cur->max)
        return -1;
    return cur->in[cur->i++];
}

#define NEXT(c)                                                                                                                    \
    do {                                                                                                                           \
        if (((c) = next(&cur)) < 0)                                                                                                \
            return (c);                                                                                                            \
    } while (0)

/* Returns 0 (complete: the data in out[0..*outlen), the rest from in + len - *restlen), -1 (malformed) or -2
 * (incomplete: the data so far in out[0..*outlen)). */
static int ref_decode(const uint8_t *in, size_t len, int consume_trailer, uint8_t *out, size_t *outlen, size_t *restlen)
{
    cursor_t cur = {.in = in, .len = len};
    int c;
    *outlen = 0;
    for (;;) {
        /* chunk-size [ chunk-ext ] CRLF */
        size_t chunk = 0, digits = 0;
        cur.start = cur.i;
        cur.max = HY_GUARD_CHUNK_LINE_MAX;
        NEXT(c);
        while (hy_hex_value((unsigned char)c) >= 0) {
            if (++digits > HY_GUARD_CHUNK_SIZE_DIGITS)
                return -1;
            chunk = chunk << 4 | (size_t)hy_hex_value((unsigned char)c);
            NEXT(c);
        }
        if (digits == 0)
            return -1;
        for (int ws = 0;;) { /* *( BWS ";" BWS name [ BWS "=" BWS value ] ), then CR */
            while (is_ws(c)) {
                ws = 1;
                NEXT(c);
            }
            if (c == '\r' && !ws)
                break;
            if (c != ';')
                return -1;
            do
                NEXT(c);
            while (is_ws(c));
            if (!hy_is_tchar((unsigned char)c))
                return -1;
            while (hy_is_tchar((unsigned char)c))
                NEXT(c);
            ws = 0;
            while (is_ws(c)) {
                ws = 1;
                NEXT(c);
            }
            if (c == '=') {
                do
                    NEXT(c);
                while (is_ws(c));
                if (c == '"') {
                    NEXT(c);
                    while (c != '"') {
                        if (c == '\\')
                            NEXT(c);
                        if (!is_text(c))
                            return -1;
                        NEXT(c);
                    }
                    NEXT(c);
                } else if (hy_is_tchar((unsigned char)c)) {
                    while (hy_is_tchar((unsigned char)c))
                        NEXT(c);
                } else {
                    return -1;
                }
                ws = 0;
            }
        }
        cur.max = SIZE_MAX; /* the LF is not counted */
        NEXT(c);
        if (c != '\n')
            return -1;
        if (chunk == 0)
            break;
        /* chunk-data CRLF */
        size_t n = len - cur.i < chunk ? len - cur.i : chunk;
        memcpy(out + *outlen, in + cur.i, n);
        *outlen += n;
        cur.i += n;
        if (n < chunk)
            return -2;
        NEXT(c);
        if (c != '\r')
            return -1;
        NEXT(c);
        if (c != '\n')
            return -1;
    }
    if (consume_trailer) { /* *( field-line CRLF ) CRLF */
        cur.start = cur.i;
        cur.max = HY_GUARD_TRAILERS_MAX;
        for (;;) {
            NEXT(c);
            if (c == '\r')
                break;
            if (!hy_is_tchar((unsigned char)c))
                return -1;
            do
                NEXT(c);
            while (hy_is_tchar((unsigned char)c));
            if (c != ':')
                return -1;
            NEXT(c);
            while (c != '\r') {
                if (!is_text(c))
                    return -1;
                NEXT(c);
            }
            NEXT(c);
            if (c != '\n')
                return -1;
        }
        NEXT(c);
        if (c != '\n')
            return -1;
    }
    *restlen = len - cur.i;
    return 0;
}

/* ---- the decoder under test ---------------------------------------------------------------------------------------------- */

typedef struct {
    int status;     /* 0, -1 or -2, as ref_decode */
    uint8_t *out;   /* the decoded data */
    size_t outlen;  /* its length */
    uint8_t *rest;  /* what followed the body */
    size_t restlen; /* its length */
} result_t;

/* Feeds the input to a fresh decoder in pieces of `step` bytes, each in a buffer of its own size, and checks the
 * contract of each call. */
static void decode(const uint8_t *in, size_t len, int consume_trailer, size_t step, result_t *r)
{
    struct phr_chunked_decoder d;
    memset(&d, 0, sizeof(d));
    d.consume_trailer = (char)consume_trailer;
    r->status = -2;
    r->outlen = r->restlen = 0;
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step, sz = n;
        char *buf = malloc(n);
        CHECK(buf != NULL);
        memcpy(buf, in + off, n);
        ssize_t ret = phr_decode_chunked(&d, buf, &sz);
        CHECK(ret >= -2);
        CHECK(sz <= n);
        if (ret != -1) {
            memcpy(r->out + r->outlen, buf, sz);
            r->outlen += sz;
        }
        if (ret >= 0) {
            CHECK(sz + (size_t)ret <= n);
            memcpy(r->rest, buf + sz, (size_t)ret);
            memcpy(r->rest + ret, in + off + n, len - off - n);
            r->restlen = (size_t)ret + len - off - n;
            r->status = 0;
        } else if (ret == -1) {
            r->status = -1;
            /* errors stay */
            char one = 'x';
            size_t onesz = 1;
            CHECK(phr_decode_chunked(&d, &one, &onesz) == -1);
        }
        free(buf);
        if (ret != -2)
            break;
    }
}

static void check_same(const result_t *a, const result_t *b)
{
    CHECK(a->status == b->status);
    if (a->status == -1)
        return;
    CHECK(a->outlen == b->outlen && memcmp(a->out, b->out, a->outlen) == 0);
    if (a->status == 0)
        CHECK(a->restlen == b->restlen && memcmp(a->rest, b->rest, a->restlen) == 0);
}

/* ---- the target ---------------------------------------------------------------------------------------------------------- */

/* The first byte: bit 0 is consume_trailer, the others a piece size (1-128); the rest is the body. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 65536)
        return 0;
    int consume_trailer = data[0] & 1;
    size_t step = 1 + (data[0] >> 1);
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    if (len == 0)
        return 0;

    uint8_t *bufs = malloc(6 * len); /* out and rest of the three results */
    CHECK(bufs != NULL);
    result_t ref = {.out = bufs, .rest = bufs + len}, whole = {.out = bufs + 2 * len, .rest = bufs + 3 * len},
             pieces = {.out = bufs + 4 * len, .rest = bufs + 5 * len};
    size_t reflen = 0, restlen = 0;
    ref.status = ref_decode(in, len, consume_trailer, ref.out, &reflen, &restlen);
    ref.outlen = reflen;
    if (ref.status == 0) {
        ref.restlen = restlen;
        memcpy(ref.rest, in + len - restlen, restlen);
    }

    decode(in, len, consume_trailer, len, &whole);
    check_same(&whole, &ref);
    decode(in, len, consume_trailer, step, &pieces);
    check_same(&pieces, &ref);
    if (len <= 4096) {
        decode(in, len, consume_trailer, 1, &pieces);
        check_same(&pieces, &ref);
    }
    free(bufs);
    return 0;
}
