/* h2o_guard.c: strict replacements for two libh2o 2.2.5 parsers, linked into the executable so that they interpose
 * libh2o's own: the HTTP/1.1 chunked body decoder (phr_decode_chunked) and the HTTP/2 frame decoder
 * (h2o_http2_decode_frame). See h2o_guard.h for the contracts and docs/architecture.md, "The guard", for why. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "chars.h"
#include "h2o_guard.h"
#include "readgate.h"

/* ---- HTTP/1.1 chunked transfer coding ---------------------------------------------------------------------------------- */

/* RFC 9112 7.1, which this decoder follows to the letter:
 *
 *   chunked-body   = *chunk last-chunk trailer-section CRLF
 *   chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-size     = 1*HEXDIG
 *   last-chunk     = 1*("0") [ chunk-ext ] CRLF
 *   chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *   chunk-ext-name = token
 *   chunk-ext-val  = token / quoted-string
 *   trailer-section = *( field-line CRLF )
 *
 * CR and LF only as CRLF (a bare CR or a bare LF is an error), whitespace only where BWS stands (so "5 5", "5 \r\n"
 * and "0x5" are errors), 1 to 16 hex digits, a chunk line of at most HY_GUARD_CHUNK_LINE_MAX bytes and a trailer
 * section of at most HY_GUARD_TRAILERS_MAX (trailer field lines are checked for shape, then dropped, as libh2o does). */

enum {
    ST_SIZE = 0,     /* chunk-size digits (a zero-filled decoder starts here) */
    ST_SIZE_BWS,     /* whitespace after the size: only ';' may follow */
    ST_EXT_PRE_NAME, /* after ';': BWS, then an ext-name */
    ST_EXT_NAME,     /* in an ext-name */
    ST_EXT_NAME_BWS, /* whitespace after an ext-name: '=' or ';' may follow */
    ST_EXT_PRE_VAL,  /* after '=': BWS, then a token or a quoted-string */
    ST_EXT_VAL,      /* in a token ext-val */
    ST_EXT_QUOTED,   /* in a quoted-string ext-val */
    ST_EXT_ESCAPE,   /* after a backslash in a quoted-string */
    ST_EXT_END,      /* after the closing quote */
    ST_EXT_VAL_BWS,  /* whitespace after an ext-val: only ';' may follow */
    ST_LINE_LF,      /* the CR of a chunk line was read: LF must follow */
    ST_DATA,         /* in chunk-data */
    ST_DATA_CR,      /* after chunk-data: CR must follow */
    ST_DATA_LF,      /* after chunk-data and CR: LF must follow */
    ST_TRAILER_LINE, /* at the start of a trailer field line, or of the final empty line */
    ST_TRAILER_NAME, /* in a trailer field name */
    ST_TRAILER_VAL,  /* in a trailer field value */
    ST_TRAILER_LF,   /* the CR of a trailer field line was read: LF must follow */
    ST_END_LF,       /* the CR of the final empty line was read: LF must follow */
    ST_DONE,         /* the body is complete */
    ST_ERROR         /* the body was malformed */
};

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* The state after an ext-name or ext-val ended by `c` (whitespace goes to `bws`), or ST_ERROR. */
static int after_ext_item(unsigned char c, int bws)
{
    if (is_ws(c))
        return bws;
    if (c == ';')
        return ST_EXT_PRE_NAME;
    if (c == '\r')
        return ST_LINE_LF;
    return ST_ERROR;
}

/* One byte of a chunk line (size and extensions, up to and including its CR), counted in d->_hex_count and, while in
 * the size, added to d->bytes_left_in_chunk. Returns the next state, or ST_ERROR. */
static int chunk_line_byte(struct phr_chunked_decoder *d, int st, unsigned char c)
{
    unsigned line = (unsigned char)d->_hex_count + 1u;
    if (line > HY_GUARD_CHUNK_LINE_MAX)
        return ST_ERROR;
    d->_hex_count = (char)(unsigned char)line;
    switch (st) {
    case ST_SIZE: {
        int v = hy_hex_value(c);
        if (v >= 0) {
            if (line > HY_GUARD_CHUNK_SIZE_DIGITS)
                return ST_ERROR;
            d->bytes_left_in_chunk = (d->bytes_left_in_chunk << 4) | (size_t)v;
            return ST_SIZE;
        }
        if (line == 1) /* no digit */
            return ST_ERROR;
        return after_ext_item(c, ST_SIZE_BWS);
    }
    case ST_SIZE_BWS:
    case ST_EXT_VAL_BWS:
        return is_ws(c) ? st : c == ';' ? ST_EXT_PRE_NAME : ST_ERROR;
    case ST_EXT_PRE_NAME:
        return is_ws(c) ? ST_EXT_PRE_NAME : hy_is_tchar(c) ? ST_EXT_NAME : ST_ERROR;
    case ST_EXT_NAME:
        if (hy_is_tchar(c))
            return ST_EXT_NAME;
        return c == '=' ? ST_EXT_PRE_VAL : after_ext_item(c, ST_EXT_NAME_BWS);
    case ST_EXT_NAME_BWS:
        return is_ws(c) ? ST_EXT_NAME_BWS : c == '=' ? ST_EXT_PRE_VAL : c == ';' ? ST_EXT_PRE_NAME : ST_ERROR;
    case ST_EXT_PRE_VAL:
        return is_ws(c) ? ST_EXT_PRE_VAL : c == '"' ? ST_EXT_QUOTED : hy_is_tchar(c) ? ST_EXT_VAL : ST_ERROR;
    case ST_EXT_VAL:
        return hy_is_tchar(c) ? ST_EXT_VAL : after_ext_item(c, ST_EXT_VAL_BWS);
    case ST_EXT_QUOTED: /* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
        if (c == '"')
            return ST_EXT_END;
        if (c == '\\')
            return ST_EXT_ESCAPE;
        return c == '\t' || (c >= 0x20 && c != 0x7f) ? ST_EXT_QUOTED : ST_ERROR;
    case ST_EXT_ESCAPE: /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
        return c == '\t' || (c >= 0x20 && c != 0x7f) ? ST_EXT_QUOTED : ST_ERROR;
    case ST_EXT_END:
        return after_ext_item(c, ST_EXT_VAL_BWS);
    }
    return ST_ERROR;
}

/* One byte of the trailer section. Returns the next state, or ST_ERROR. */
static int trailer_byte(struct phr_chunked_decoder *d, int st, unsigned char c)
{
    if (++d->bytes_left_in_chunk > HY_GUARD_TRAILERS_MAX)
        return ST_ERROR;
    switch (st) {
    case ST_TRAILER_LINE: /* a field line starts with a field-name: no obs-fold, no empty name */
        return c == '\r' ? ST_END_LF : hy_is_tchar(c) ? ST_TRAILER_NAME : ST_ERROR;
    case ST_TRAILER_NAME:
        return hy_is_tchar(c) ? ST_TRAILER_NAME : c == ':' ? ST_TRAILER_VAL : ST_ERROR;
    case ST_TRAILER_VAL: /* field-value bytes: HTAB, SP, VCHAR, obs-text */
        if (c == '\r')
            return ST_TRAILER_LF;
        return c == '\t' || (c >= 0x20 && c != 0x7f) ? ST_TRAILER_VAL : ST_ERROR;
    case ST_TRAILER_LF:
        return c == '\n' ? ST_TRAILER_LINE : ST_ERROR;
    case ST_END_LF:
        return c == '\n' ? ST_DONE : ST_ERROR;
    }
    return ST_ERROR;
}

ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz)
{
    size_t src = 0, dst = 0, len = *bufsz;
    int st = decoder->_state;
    ssize_t ret = -2;

    if (st == ST_DONE) { /* everything after the body is not body */
        *bufsz = 0;
        return (ssize_t)len;
    }
    while (st != ST_ERROR && src != len) {
        unsigned char c = (unsigned char)buf[src];
        if (st == ST_DATA) {
            size_t n = len - src < decoder->bytes_left_in_chunk ? len - src : decoder->bytes_left_in_chunk;
            memmove(buf + dst, buf + src, n);
            src += n;
            dst += n;
            if ((decoder->bytes_left_in_chunk -= n) == 0)
                st = ST_DATA_CR;
            continue;
        }
        ++src;
        if (st < ST_LINE_LF) {
            st = chunk_line_byte(decoder, st, c);
        } else if (st == ST_LINE_LF) {
            if (c != '\n')
                st = ST_ERROR;
            else if (decoder->bytes_left_in_chunk != 0)
                st = ST_DATA;
            else if (decoder->consume_trailer)
                st = ST_TRAILER_LINE; /* the last chunk: bytes_left_in_chunk (0) now counts the trailer bytes */
            else
                st = ST_DONE;
        } else if (st == ST_DATA_CR) {
            st = c == '\r' ? ST_DATA_LF : ST_ERROR;
        } else if (st == ST_DATA_LF) {
            st = c == '\n' ? ST_SIZE : ST_ERROR;
            decoder->_hex_count = 0; /* a new chunk line */
        } else {
            st = trailer_byte(decoder, st, c);
        }
        if (st == ST_DONE)
            break;
    }
    if (st == ST_ERROR) {
        ret = -1;
    } else if (st == ST_DONE) {
        ret = (ssize_t)(len - src);
        memmove(buf + dst, buf + src, len - src);
    }
    decoder->_state = (char)st;
    *bufsz = dst;
    return ret;
}

int phr_decode_chunked_is_in_data(struct phr_chunked_decoder *decoder)
{
    return decoder->_state == ST_DATA;
}

/* ---- HTTP/2 frames ------------------------------------------------------------------------------------------------------ */

/* The rule: a CONTINUATION frame without END_HEADERS must carry part of the header block. An empty one never brings
 * the block closer to libh2o's size limit (H2O_MAX_REQLEN, 8 KiB), so an endless run of them would hold the
 * connection (each frame resets its idle timer) and cost a frame's work each (CVE-2024-27316, CVE-2024-28182): it is
 * a connection error, ENHANCE_YOUR_CALM. Non-empty frames are bounded by that limit: at most 8192 per header block,
 * then libh2o resets the stream (REFUSED_STREAM) and the next CONTINUATION is a PROTOCOL_ERROR. An empty CONTINUATION
 * with END_HEADERS ends a block and stays legal; outside a header block libh2o refuses any CONTINUATION itself. */

typedef ssize_t (*decode_frame_fn)(h2o_http2_frame_t *frame, const uint8_t *src, size_t len,
                                   const h2o_http2_settings_t *host_settings, const char **err_desc);

static pthread_once_t real_decode_frame_once = PTHREAD_ONCE_INIT;
static decode_frame_fn real_decode_frame; /* libh2o's h2o_http2_decode_frame, set once */

static void resolve_real_decode_frame(void)
{
    void *sym = dlsym(RTLD_NEXT, "h2o_http2_decode_frame");
    if (sym == NULL) {
        fprintf(stderr, "%s:%d: libh2o's h2o_http2_decode_frame not found: %s\n", __FILE__, __LINE__, dlerror());
        abort();
    }
    memcpy(&real_decode_frame, &sym, sizeof(real_decode_frame)); /* ISO C has no cast from void * to a function */
}

ssize_t h2o_http2_decode_frame(h2o_http2_frame_t *frame, const uint8_t *src, size_t len, const h2o_http2_settings_t *host_settings,
                               const char **err_desc)
{
    pthread_once(&real_decode_frame_once, resolve_real_decode_frame);
    ssize_t ret = real_decode_frame(frame, src, len, host_settings, err_desc);
    if (ret > 0 && frame->type == HY_H2_FRAME_TYPE_CONTINUATION && frame->length == 0 &&
        (frame->flags & HY_H2_FRAME_FLAG_END_HEADERS) == 0) {
        *err_desc = "empty CONTINUATION frame without END_HEADERS";
        return H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM;
    }
    return ret;
}

/* ---- HTTP/1.1 reads: the read gate (app/readgate.h) ------------------------------------------------------------------- */

/* libh2o starts and stops reading every socket through these; the gate holds back HTTP/1.1 connections beyond
 * limits.max_active_requests and passes every other call on to libh2o's own. */
void h2o_socket_read_start(h2o_socket_t *sock, h2o_socket_cb cb)
{
    hy_readgate_read_start(sock, cb);
}

void h2o_socket_read_stop(h2o_socket_t *sock)
{
    hy_readgate_read_stop(sock);
}
