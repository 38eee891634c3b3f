/* accesslog.c: JSON log lines built from literal and escaped-string segments with an exact space budget, the per-thread
 * batching writer, and the sampler. */
#include <errno.h>
#include <fcntl.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "accesslog.h"

/* ---- JSON string escaping ---------------------------------------------------------------------------------------------- */

/* 1 for bytes copied as they are: printable ASCII except '"' and '\'. */
static inline int is_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* The number of leading bytes of s[0..n) that are copied as they are (is_plain), 16 or 8 at a time. */
static size_t plain_run(const unsigned char *s, size_t n)
{
    size_t i = 0;
#ifdef __SSE2__
    const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f), quote = _mm_set1_epi8('"'),
                  backslash = _mm_set1_epi8('\\');
    for (; n - i >= 16; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        /* signed compare: bytes >= 0x80 are negative, so "< 0x20" catches them with the control bytes */
        __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)),
                                   _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
        unsigned mask = (unsigned)_mm_movemask_epi8(bad);
        if (mask != 0)
            return i + (size_t)__builtin_ctz(mask);
    }
#endif
    /* 8 at a time: each test is the "some byte is zero / less than k" word trick, exact as a yes/no answer */
    const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
    for (; n - i >= 8; i += 8) {
        uint64_t w, q, b, d;
        memcpy(&w, s + i, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        d = w ^ (ones * 0x7f);
        if ((((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | ((d - ones) & ~d) | w) & high)
            break;
    }
    while (i != n && is_plain(s[i]))
        ++i;
    return i;
}

static const char hexdig[] = "0123456789abcdef";

/* Looks at the bytes from s[0] (which is not plain) and writes the output for the unit starting there into unit[]:
 * an escape, a whole valid UTF-8 character, or \ufffd for a maximal ill-formed subsequence. Sets *ulen to the output
 * length (at most 6) and returns the input bytes the unit covers (1-4). len >= 1. */
static size_t next_unit(const unsigned char *s, size_t len, char unit[6], size_t *ulen)
{
    unsigned c = s[0];
    if (c < 0x80) {
        unit[0] = '\\';
        switch (c) {
        case '"':
        case '\\':
            unit[1] = (char)c;
            break;
        case '\b':
            unit[1] = 'b';
            break;
        case '\f':
            unit[1] = 'f';
            break;
        case '\n':
            unit[1] = 'n';
            break;
        case '\r':
            unit[1] = 'r';
            break;
        case '\t':
            unit[1] = 't';
            break;
        default: /* other control bytes and DEL */
            memcpy(unit + 1, "u00", 3);
            unit[4] = hexdig[c >> 4];
            unit[5] = hexdig[c & 15];
            *ulen = 6;
            return 1;
        }
        *ulen = 2;
        return 1;
    }

    /* UTF-8 (Unicode table 3-7): the range of the second byte depends on the first; the others are 80..BF */
    size_t need;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        need = 2;
    else if (c >= 0xe0 && c <= 0xef)
        need = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        need = 1; /* 80..C1, F5..FF never start a character */
    size_t n = 1;
    while (n < need && n < len && s[n] >= (n == 1 ? lo : 0x80) && s[n] <= (n == 1 ? hi : 0xbf))
        ++n;
    if (need == 1 || n < need) {
        memcpy(unit, "\\ufffd", 6);
        *ulen = 6;
        return n;
    }
    if (c == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9)) { /* U+2028, U+2029 */
        memcpy(unit, s[2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
        *ulen = 6;
        return 3;
    }
    memcpy(unit, s, need);
    *ulen = need;
    return need;
}

/* Writes the escaped bytes of s[0..len) at *pp, stopping before a unit that would pass `lim`. Advances *pp and returns
 * the input bytes consumed (len when everything fit). */
static size_t escape(char **pp, const char *lim, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    char *p = *pp;
    size_t i = 0;
    while (i != len) {
        size_t run = plain_run(s + i, len - i);
        if (run != 0) {
            if (run > (size_t)(lim - p))
                run = (size_t)(lim - p);
            memcpy(p, s + i, run);
            p += run;
            i += run;
            if (i == len || p == lim)
                break;
        }
        char unit[6];
        size_t ulen, ilen = next_unit(s + i, len - i, unit, &ulen);
        if ((size_t)(lim - p) < ulen)
            break;
        memcpy(p, unit, ulen);
        p += ulen;
        i += ilen;
    }
    *pp = p;
    return i;
}

/* The length of the escaped form of s[0..len). */
static size_t escaped_len(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t out = 0;
    for (size_t i = 0; i != len;) {
        size_t run = plain_run(s + i, len - i);
        out += run;
        i += run;
        if (i == len)
            break;
        char unit[6];
        size_t ulen;
        i += next_unit(s + i, len - i, unit, &ulen);
        out += ulen;
    }
    return out;
}

/* The largest n <= cap that does not split a UTF-8 character of s (looking back at most 3 continuation bytes). */
static size_t utf8_floor(const char *s, size_t cap)
{
    size_t n = cap;
    while (n != 0 && cap - n < 3 && ((unsigned char)s[n] & 0xc0) == 0x80)
        --n;
    return ((unsigned char)s[n] & 0xc0) == 0x80 ? cap : n;
}

/* ---- lines from segments ----------------------------------------------------------------------------------------------- */

/* A line is a list of segments: JSON text copied as it is, or a string value written quoted and escaped. */
typedef struct st_seg_t {
    const char *s; /* the bytes */
    size_t len;    /* their length (a string's after its cap) */
    int is_string; /* 1: a string value to quote and escape; 0: literal JSON text */
    int capped;    /* 1: a string cut at its cap (it gets "...") */
    int cut;       /* 1: a string that gets "..." (capped, or cut to its budget in the second pass) */
    size_t give;   /* a string's output budget with quotes (second pass only) */
} seg_t;

#define MAX_SEGS 40

typedef struct st_line_t {
    seg_t segs[MAX_SEGS]; /* the segments in order */
    size_t n;             /* how many */
} line_t;

static void add_lit(line_t *l, const char *s, size_t len)
{
    l->segs[l->n++] = (seg_t){s, len, 0, 0, 0, 0};
}

#define ADD_LIT(l, lit) add_lit((l), (lit), sizeof(lit) - 1)

/* Adds a string value of at most `cap` input bytes; a NULL s is null. */
static void add_str(line_t *l, const char *s, size_t len, size_t cap)
{
    if (s == NULL) {
        ADD_LIT(l, "null");
        return;
    }
    int capped = 0;
    if (len > cap) {
        len = utf8_floor(s, cap);
        capped = 1;
    }
    l->segs[l->n++] = (seg_t){s, len, 1, capped, capped, 0};
}

/* Writes the string segment g at *pp: in the first pass whole (or "..." after its cap) up to lim, returning -1 when it
 * does not fit; in the second pass within its budget g->give, which emit_cut made large enough. Returns 0 or -1. */
static int put_string(char **pp, const char *lim, const seg_t *g, int first_pass)
{
    char *p = *pp;
    const char *end = first_pass ? lim : p + g->give;
    size_t tail = 1 + (g->cut ? 3 : 0); /* the closing quote and "..." */
    if ((size_t)(end - p) < 1 + tail)
        return -1;
    *p++ = '"';
    size_t done = escape(&p, end - tail, g->s, g->len);
    if (done != g->len && first_pass)
        return -1;
    if (g->cut) {
        memcpy(p, "...", 3);
        p += 3;
    }
    *p++ = '"';
    *pp = p;
    return 0;
}

/* First pass: everything whole, or 0 when it does not fit in bufsize (with the NUL). */
static size_t emit_whole(const line_t *l, char *buf, size_t bufsize)
{
    char *p = buf;
    const char *lim = buf + bufsize - 1; /* room for the NUL */
    for (size_t i = 0; i != l->n; ++i) {
        const seg_t *g = &l->segs[i];
        if (g->is_string) {
            if (put_string(&p, lim, g, 1) != 0)
                return 0;
        } else {
            if ((size_t)(lim - p) < g->len)
                return 0;
            memcpy(p, g->s, g->len);
            p += g->len;
        }
    }
    *p = '\0';
    return (size_t)(p - buf);
}

/* Second pass: shares the room left by the literal text among the strings, the shortest served first and each of the
 * rest getting at most an equal share of what remains, then writes with those budgets. 0 when even "..." for every
 * cut string does not fit. */
static size_t emit_cut(line_t *l, char *buf, size_t bufsize)
{
    size_t fixed = 1, need[MAX_SEGS], order[MAX_SEGS], nstr = 0; /* fixed: literal text and the NUL */
    for (size_t i = 0; i != l->n; ++i) {
        seg_t *g = &l->segs[i];
        if (!g->is_string) {
            fixed += g->len;
            continue;
        }
        need[i] = 2 + escaped_len(g->s, g->len) + (g->capped ? 3 : 0);
        size_t j = nstr++; /* insertion sort by need */
        while (j != 0 && need[order[j - 1]] > need[i]) {
            order[j] = order[j - 1];
            --j;
        }
        order[j] = i;
    }
    if (fixed > bufsize)
        goto Fail;
    size_t room = bufsize - fixed;
    for (size_t k = 0; k != nstr; ++k) {
        seg_t *g = &l->segs[order[k]];
        size_t share = room / (nstr - k);
        g->give = need[order[k]] <= share ? need[order[k]] : share;
        if (g->give < need[order[k]]) {
            if (g->give < 5) /* "..." and its quotes */
                goto Fail;
            g->cut = 1;
        }
        room -= g->give;
    }
    char *p = buf;
    for (size_t i = 0; i != l->n; ++i) {
        const seg_t *g = &l->segs[i];
        if (g->is_string) {
            put_string(&p, NULL, g, 0);
        } else {
            memcpy(p, g->s, g->len);
            p += g->len;
        }
    }
    *p = '\0';
    return (size_t)(p - buf);

Fail:
    if (bufsize != 0)
        buf[0] = '\0';
    return 0;
}

/* Writes the line whole when it fits, else cut to fit when may_cut, else returns 0. */
static size_t emit(line_t *l, char *buf, size_t bufsize, int may_cut)
{
    size_t n = bufsize != 0 ? emit_whole(l, buf, bufsize) : 0;
    if (n == 0 && may_cut)
        n = emit_cut(l, buf, bufsize);
    return n;
}

/* ---- numbers and time -------------------------------------------------------------------------------------------------- */

/* Writes the decimal of v at p; returns the end. */
static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n != 0)
        *p++ = tmp[--n];
    return p;
}

static char *put_int(char *p, int v)
{
    if (v < 0) {
        *p++ = '-';
        return put_u64(p, (uint64_t)0 - (uint64_t)(int64_t)v);
    }
    return put_u64(p, (uint64_t)v);
}

/* Writes v as exactly `width` digits (v < 10^width). */
static char *put_fixed(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; --i) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* The last second this thread wrote, as "YYYY-MM-DDTHH:MM:SS": lines come many per second. */
static _Thread_local int64_t cached_sec = INT64_MIN;
static _Thread_local char cached_text[19];

/* Writes "YYYY-MM-DDTHH:MM:SS" (19 bytes) for sec at p, a second within years 0000-9999.
 *
 * The date comes from the day number by counting in 400-year eras of 146097 days that start on March 1st, so that
 * February 29th is the last day of an era's year and leap days need no special case until the year is known. */
static void put_seconds(char *p, int64_t sec)
{
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0)
        rem += 86400, days -= 1;
    int64_t z = days + 719468; /* days since 0000-03-01 */
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                      /* day of the era, 0-146096 */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* year of the era, 0-399 */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* day of the March-based year, 0-365 */
    int64_t mp = (5 * doy + 2) / 153;                                    /* month from March, 0-11 */
    unsigned day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    unsigned month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    int64_t year = yoe + era * 400 + (month <= 2);

    p = put_fixed(p, (unsigned)year, 4);
    *p++ = '-';
    p = put_fixed(p, month, 2);
    *p++ = '-';
    p = put_fixed(p, day, 2);
    *p++ = 'T';
    p = put_fixed(p, (unsigned)(rem / 3600), 2);
    *p++ = ':';
    p = put_fixed(p, (unsigned)(rem / 60 % 60), 2);
    *p++ = ':';
    put_fixed(p, (unsigned)(rem % 60), 2);
}

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 bytes) for tv at p, UTC, milliseconds truncated, clamped to years 0000-9999;
 * returns the end. */
static char *put_time(char *p, const struct timeval *tv)
{
    int64_t sec = (int64_t)tv->tv_sec, usec = (int64_t)tv->tv_usec;
    sec += usec / 1000000; /* a tv_usec outside 0-999999 */
    usec %= 1000000;
    if (usec < 0)
        usec += 1000000, sec -= 1;
    const int64_t min_sec = INT64_C(-62167219200), max_sec = INT64_C(253402300799); /* 0000-01-01, 9999-12-31T23:59:59 */
    if (sec < min_sec)
        sec = min_sec, usec = 0;
    if (sec > max_sec)
        sec = max_sec, usec = 999999;
    if (sec != cached_sec) {
        put_seconds(cached_text, sec);
        cached_sec = sec;
    }
    memcpy(p, cached_text, 19);
    p += 19;
    *p++ = '.';
    p = put_fixed(p, (unsigned)(usec / 1000), 3);
    *p++ = 'Z';
    return p;
}

/* "HTTP/1.1" for 0x101, "HTTP/2" for 0x200: the minor version only below 2. */
static char *put_protocol(char *p, int version)
{
    unsigned major = ((unsigned)version >> 8) & 0xff, minor = (unsigned)version & 0xff;
    memcpy(p, "\"HTTP/", 6);
    p = put_u64(p + 6, major);
    if (major < 2) {
        *p++ = '.';
        p = put_u64(p, minor);
    }
    *p++ = '"';
    return p;
}

/* ---- access-log and error-log lines ------------------------------------------------------------------------------------ */

/* Scratch for the non-string values of one line. */
typedef struct st_scratch_t {
    char time[24];     /* the RFC 3339 time */
    char numbers[128]; /* status, sizes, duration, protocol: each written here and pointed at */
} scratch_t;

/* Appends a number's text, written into *np, as a literal. */
static void add_number(line_t *l, char **np, char *end)
{
    add_lit(l, *np, (size_t)(end - *np));
    *np = end;
}

static size_t format_entry(char *buf, size_t bufsize, const hy_accesslog_entry_t *e, int may_cut)
{
    line_t l;
    scratch_t sc;
    char *np = sc.numbers;
    l.n = 0;

    put_time(sc.time, &e->time);
    ADD_LIT(&l, "{\"time\":\"");
    add_lit(&l, sc.time, sizeof(sc.time));
    ADD_LIT(&l, "\",\"level\":\"info\",\"request_id\":");
    add_str(&l, e->request_id.base, e->request_id.len, HY_ACCESSLOG_ID_MAX);
    ADD_LIT(&l, ",\"client_ip\":");
    add_str(&l, e->client_ip.base, e->client_ip.len, HY_ACCESSLOG_IP_MAX);
    ADD_LIT(&l, ",\"method\":");
    add_str(&l, e->method.base, e->method.len, HY_ACCESSLOG_METHOD_MAX);
    ADD_LIT(&l, ",\"path\":");
    add_str(&l, e->path.base, e->path.len, HY_ACCESSLOG_PATH_MAX);
    ADD_LIT(&l, ",\"route\":");
    add_str(&l, e->route.base, e->route.len, HY_ACCESSLOG_ROUTE_MAX);
    ADD_LIT(&l, ",\"status\":");
    add_number(&l, &np, put_int(np, e->status));
    ADD_LIT(&l, ",\"bytes_in\":");
    add_number(&l, &np, put_u64(np, e->bytes_in));
    ADD_LIT(&l, ",\"bytes_out\":");
    add_number(&l, &np, put_u64(np, e->bytes_out));
    ADD_LIT(&l, ",\"duration_us\":");
    add_number(&l, &np, put_u64(np, e->duration_us));
    ADD_LIT(&l, ",\"protocol\":");
    add_number(&l, &np, put_protocol(np, e->http_version));
    if (e->tls)
        ADD_LIT(&l, ",\"tls\":true,\"user_agent\":");
    else
        ADD_LIT(&l, ",\"tls\":false,\"user_agent\":");
    add_str(&l, e->user_agent.base, e->user_agent.len, HY_ACCESSLOG_UA_MAX);
    if (e->traceparent.base != NULL) {
        ADD_LIT(&l, ",\"traceparent\":");
        add_str(&l, e->traceparent.base, e->traceparent.len, HY_ACCESSLOG_TRACEPARENT_MAX);
    }
    ADD_LIT(&l, "}\n");
    return emit(&l, buf, bufsize, may_cut);
}

size_t hy_accesslog_format(char *buf, size_t bufsize, const hy_accesslog_entry_t *e)
{
    return format_entry(buf, bufsize, e, 1);
}

size_t hy_errorlog_format(char *buf, size_t bufsize, const char *level, const char *request_id, const char *message)
{
    line_t l;
    char time[24];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct timeval tv = {.tv_sec = ts.tv_sec, .tv_usec = ts.tv_nsec / 1000};
    l.n = 0;

    put_time(time, &tv);
    ADD_LIT(&l, "{\"time\":\"");
    add_lit(&l, time, sizeof(time));
    ADD_LIT(&l, "\",\"level\":");
    level = level != NULL ? level : "error";
    add_str(&l, level, strnlen(level, 17), 16);
    if (request_id != NULL) {
        ADD_LIT(&l, ",\"request_id\":");
        add_str(&l, request_id, strnlen(request_id, HY_ACCESSLOG_ID_MAX + 1), HY_ACCESSLOG_ID_MAX);
    }
    ADD_LIT(&l, ",\"msg\":");
    message = message != NULL ? message : "";
    add_str(&l, message, strnlen(message, HY_ERRORLOG_MSG_MAX + 1), HY_ERRORLOG_MSG_MAX);
    ADD_LIT(&l, "}\n");
    return emit(&l, buf, bufsize, 1);
}

/* ---- buffered writer --------------------------------------------------------------------------------------------------- */

int hy_logbuf_open(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

void hy_logbuf_init(hy_logbuf_t *lb, int fd)
{
    struct stat st;
    lb->fd = fd;
    lb->len = 0;
    lb->piece = fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) ? PIPE_BUF : HY_LOGBUF_SIZE;
    lb->writes = 0;
    lb->bytes_written = 0;
    lb->bytes_dropped = 0;
    lb->last_errno = 0;
}

/* Writes all of s[0..len) with as many write(2) calls as it takes. Returns 0, or -1 with the bytes left unwritten
 * counted as dropped. */
static int write_all(hy_logbuf_t *lb, const char *s, size_t len)
{
    while (len != 0) {
        ssize_t n = write(lb->fd, s, len);
        ++lb->writes;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            lb->last_errno = errno;
            lb->bytes_dropped += len;
            return -1;
        }
        lb->bytes_written += (uint64_t)n;
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes s[0..len) in pieces of at most lb->piece bytes that end at line ends (a longer line is one piece). */
static int write_lines(hy_logbuf_t *lb, const char *s, size_t len)
{
    while (len != 0) {
        size_t n = len;
        if (n > lb->piece) {
            const char *nl = memrchr(s, '\n', lb->piece);
            if (nl == NULL)
                nl = memchr(s + lb->piece, '\n', len - lb->piece);
            n = nl != NULL ? (size_t)(nl + 1 - s) : len;
        }
        if (write_all(lb, s, n) != 0) {
            lb->bytes_dropped += len - n;
            return -1;
        }
        s += n;
        len -= n;
    }
    return 0;
}

int hy_logbuf_flush(hy_logbuf_t *lb)
{
    if (lb->len == 0)
        return 0;
    int ret = write_lines(lb, lb->buf, lb->len);
    lb->len = 0;
    return ret;
}

int hy_logbuf_append(hy_logbuf_t *lb, const char *lines, size_t len)
{
    int ret = 0;
    if (len > sizeof(lb->buf) - lb->len)
        ret = hy_logbuf_flush(lb);
    if (len > sizeof(lb->buf))
        return write_lines(lb, lines, len) != 0 ? -1 : ret;
    memcpy(lb->buf + lb->len, lines, len);
    lb->len += len;
    return ret;
}

int hy_accesslog_write(hy_logbuf_t *lb, const hy_accesslog_entry_t *e)
{
    int ret = 0;
    size_t n = format_entry(lb->buf + lb->len, sizeof(lb->buf) - lb->len, e, 0);
    if (n == 0) {
        ret = hy_logbuf_flush(lb);
        n = format_entry(lb->buf, sizeof(lb->buf), e, 1); /* HY_ACCESSLOG_LINE_MAX < HY_LOGBUF_SIZE: always whole */
    }
    lb->len += n;
    return ret;
}

/* ---- sampling ---------------------------------------------------------------------------------------------------------- */

void hy_sampler_init(hy_sampler_t *s, uint64_t seed)
{
    s->state = seed;
}

int hy_accesslog_sampled(hy_sampler_t *s, double ratio)
{
    if (ratio >= 1.0)
        return 1;
    if (!(ratio > 0.0))
        return 0;
    /* splitmix64: a Weyl sequence through a 64-bit mixer; any seed (even 0) is fine */
    uint64_t z = (s->state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53 < ratio;
}
