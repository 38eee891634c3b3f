/* h2o_guard.h: the functions hydrant defines in place of libh2o's own (ELF symbol interposition), to refuse HTTP/1.1
 * chunk framing and HTTP/2 CONTINUATION floods that libh2o 2.2.5 lets through. See docs/architecture.md, "The guard".
 *
 * These names are libh2o's, not hydrant's (the `hy_` rule does not apply): a definition in the executable replaces the
 * one in libh2o-evloop.so for every call libh2o makes through its PLT. libh2o 2.2.5 ships neither picohttpparser.h
 * nor a usable h2o/http2_internal.h (it needs khash.h), so the types are declared here with the layouts of h2o v2.2.5
 * (deps/picohttpparser/picohttpparser.h and include/h2o/http2_internal.h). */
#ifndef HY_H2O_GUARD_H
#define HY_H2O_GUARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <h2o.h>
#include <h2o/http2.h>

/* ---- HTTP/1.1 chunked transfer coding (picohttpparser's decoder) ------------------------------------------------------- */

#define HY_GUARD_CHUNK_SIZE_DIGITS 16 /* at most this many hex digits in a chunk-size (no overflow of size_t) */
#define HY_GUARD_CHUNK_LINE_MAX 255   /* bytes of a chunk line before its CR: size and extensions */
#define HY_GUARD_TRAILERS_MAX 8192    /* bytes of the trailer section, its final CRLF included */

/* picohttpparser's decoder state; zero-fill it before the first call, set consume_trailer as wanted. */
struct phr_chunked_decoder {
    size_t bytes_left_in_chunk; /* data bytes left in the current chunk; the size read so far on a chunk line; the trailer
                                   bytes seen in the trailer section */
    char consume_trailer;       /* 1: consume the trailer section up to its empty line; 0: stop after the last chunk */
    char _hex_count;            /* bytes of the current chunk line so far (read as unsigned char) */
    char _state;                /* where the decoder stands (private to app/h2o_guard.c) */
};

/* Decodes the chunked body in (buf, *bufsz) in place: the chunk data is moved to the start of buf and *bufsz set to
 * its length. Call it again with each new piece of input while it returns -2 (all of the piece was consumed; the
 * decoder keeps what it needs). Returns -1 on malformed framing (RFC 9112 7.1, strictly; then *bufsz holds the data
 * decoded before the error, and every later call returns -1), -2 when the body is not complete yet, otherwise the
 * number of bytes that follow the body: they are moved to buf + *bufsz. */
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

/* Returns 1 when the decoder stands inside a chunk's data, 0 otherwise (libh2o's HTTP/1 client treats a connection
 * closed between chunks as the end of the body). */
int phr_decode_chunked_is_in_data(struct phr_chunked_decoder *decoder);

/* ---- HTTP/2 frames ------------------------------------------------------------------------------------------------------ */

/* h2o_http2_frame_t of libh2o 2.2.5 */
typedef struct st_h2o_http2_frame_t {
    uint32_t length;        /* payload length */
    uint8_t type;           /* frame type */
    uint8_t flags;          /* frame flags */
    uint32_t stream_id;     /* stream identifier, reserved bit cleared */
    const uint8_t *payload; /* the payload, in the caller's input buffer */
} h2o_http2_frame_t;

#define HY_H2_FRAME_TYPE_CONTINUATION 9
#define HY_H2_FRAME_FLAG_END_HEADERS 0x4

/* libh2o's frame decoder (lib/http2/frame.c), then the guard's rule: a CONTINUATION frame without END_HEADERS must
 * carry part of the header block. Returns the frame's size (header included), H2O_HTTP2_ERROR_INCOMPLETE, or a
 * negative H2O_HTTP2_ERROR_* (a connection error: libh2o sends GOAWAY with that code and *err_desc, then closes). */
ssize_t h2o_http2_decode_frame(h2o_http2_frame_t *frame, const uint8_t *src, size_t len, const h2o_http2_settings_t *host_settings,
                               const char **err_desc);

#endif
