/* json.c: per-thread yajl generators that write JSON for one request at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "chars.h"
#include "json.h"

/* ---- the per-thread generator ---------------------------------------------------------------------------------------- */

static _Thread_local yajl_gen thread_gen; /* created on first use on each event-loop thread */

yajl_gen hy_json_begin(void)
{
    if (thread_gen == NULL) {
        if ((thread_gen = yajl_gen_alloc(NULL)) == NULL)
            hy_alloc_fail_(__FILE__, __LINE__);
        yajl_gen_config(thread_gen, yajl_gen_validate_utf8, 1);
    }
    return thread_gen;
}

h2o_iovec_t hy_json_finish(yajl_gen gen, h2o_mem_pool_t *pool)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(gen, &buf, &len);
    h2o_iovec_t out = h2o_strdup(pool, (const char *)buf, len);
    yajl_gen_clear(gen);
    yajl_gen_reset(gen, NULL);
    return out;
}

void hy_json_thread_dispose(void)
{
    if (thread_gen != NULL) {
        yajl_gen_free(thread_gen);
        thread_gen = NULL;
    }
}

/* ---- helpers ---------------------------------------------------------------------------------------------------------- */

void hy_json_str(yajl_gen gen, const char *s)
{
    yajl_gen_string(gen, (const unsigned char *)s, strlen(s));
}

void hy_json_kv_str(yajl_gen gen, const char *key, const char *value)
{
    hy_json_str(gen, key);
    hy_json_str(gen, value);
}

void hy_json_kv_int(yajl_gen gen, const char *key, long long value)
{
    hy_json_str(gen, key);
    yajl_gen_integer(gen, value);
}

void hy_json_gen_error(yajl_gen gen, const char *code, const char *message)
{
    yajl_gen_map_open(gen);
    hy_json_kv_str(gen, "error", code);
    if (message != NULL)
        hy_json_kv_str(gen, "message", message);
    yajl_gen_map_close(gen);
}

char *hy_json_error_render(const char *code, const char *message, size_t *len)
{
    yajl_gen gen = yajl_gen_alloc(NULL);
    if (gen == NULL)
        hy_alloc_fail_(__FILE__, __LINE__);
    hy_json_gen_error(gen, code, message);
    const unsigned char *buf;
    size_t buflen;
    yajl_gen_get_buf(gen, &buf, &buflen);
    char *out = hy_xmemdup(buf, buflen);
    *len = buflen;
    yajl_gen_free(gen);
    return out;
}

/* ---- reading request bodies ------------------------------------------------------------------------------------------- */

#include <yajl/yajl_parse.h>

typedef struct st_field_parser_t {
    h2o_mem_pool_t *pool;     /* where strings go */
    hy_json_field_t *fields;  /* what to fill */
    size_t nfields;           /* how many */
    int depth;                /* nesting depth: 1 inside the top-level object */
    int top_is_object;        /* the document starts with '{' */
    hy_json_field_t *current; /* the field whose value comes next at depth 1, or NULL */
    int failure;              /* why parsing was stopped: FAIL_* */
    yajl_handle handle;       /* the parser (for its byte offset) */
    const char *body;         /* the text parsed */
    hy_json_field_t *capture; /* an object or array member being read: its text is kept */
    size_t capture_start;     /* where that member's value starts in body */
} field_parser_t;

/* yajl allocates through the request pool: each block remembers its size so realloc can copy; free is a no-op. */
static void *on_pool_malloc(void *ctx, size_t sz)
{
    size_t *p = h2o_mem_alloc_pool((h2o_mem_pool_t *)ctx, sz + sizeof(size_t));
    *p = sz;
    return p + 1;
}

static void *on_pool_realloc(void *ctx, void *ptr, size_t sz)
{
    void *n = on_pool_malloc(ctx, sz);
    if (ptr != NULL) {
        size_t old = ((size_t *)ptr)[-1];
        memcpy(n, ptr, old < sz ? old : sz);
    }
    return n;
}

static void on_pool_free(void *ctx, void *ptr)
{
    (void)ctx, (void)ptr;
}

static int set_value(field_parser_t *p, hy_json_kind_t kind, const char *s, size_t len)
{
    if (p->depth == 0 && !p->top_is_object)
        return 0; /* a scalar document: stop */
    if (p->depth == 1 && p->current != NULL) {
        p->current->kind = kind;
        p->current->value = s != NULL ? h2o_strdup(p->pool, s, len) : h2o_iovec_init(NULL, 0);
        p->current = NULL;
    }
    return 1;
}

static int on_null(void *ctx)
{
    return set_value(ctx, HY_JSON_NULL, NULL, 0);
}

static int on_boolean(void *ctx, int b)
{
    return set_value(ctx, HY_JSON_BOOL, b ? "true" : "false", b ? 4 : 5);
}

static int on_number(void *ctx, const char *s, size_t len)
{
    return set_value(ctx, HY_JSON_NUMBER, s, len);
}

enum { FAIL_NONE = 0, FAIL_DEPTH, FAIL_UTF8 };

#define MAX_DEPTH 64 /* JSON nesting accepted in a request body (yajl's stack grows with it, in the request's pool) */

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
int hy_utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        for (size_t k = 1; k <= n; ++k) {
            if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    field_parser_t *p = ctx;
    if (!hy_utf8_valid(s, len)) {
        p->failure = FAIL_UTF8;
        return 0;
    }
    return set_value(ctx, HY_JSON_STRING, (const char *)s, len);
}

/* An object or array starts: when it is a wanted member's value, remember where (its text is kept at its end). */
static void begin_container(field_parser_t *p, hy_json_kind_t kind)
{
    hy_json_field_t *f = p->depth == 1 ? p->current : NULL;
    set_value(p, kind, NULL, 0);
    if (f != NULL) {
        p->capture = f;
        p->capture_start = yajl_get_bytes_consumed(p->handle) - 1; /* the offset is just past the '{' or '[' */
    }
}

/* An object or array ends: the member being captured gets its text. */
static void end_container(field_parser_t *p)
{
    if (--p->depth == 1 && p->capture != NULL) {
        size_t end = yajl_get_bytes_consumed(p->handle);
        p->capture->value = h2o_strdup(p->pool, p->body + p->capture_start, end - p->capture_start);
        p->capture = NULL;
    }
}

static int on_start_map(void *ctx)
{
    field_parser_t *p = ctx;
    if (p->depth >= MAX_DEPTH) {
        p->failure = FAIL_DEPTH;
        return 0;
    }
    if (p->depth == 0)
        p->top_is_object = 1;
    else
        begin_container(p, HY_JSON_OBJECT);
    ++p->depth;
    return 1;
}

static int on_map_key(void *ctx, const unsigned char *key, size_t len)
{
    field_parser_t *p = ctx;
    if (!hy_utf8_valid(key, len)) {
        p->failure = FAIL_UTF8;
        return 0;
    }
    if (p->depth != 1)
        return 1;
    p->current = NULL;
    for (size_t i = 0; i != p->nfields; ++i)
        if (strlen(p->fields[i].name) == len && memcmp(p->fields[i].name, key, len) == 0)
            p->current = &p->fields[i];
    return 1;
}

static int on_end_map(void *ctx)
{
    end_container(ctx);
    return 1;
}

static int on_start_array(void *ctx)
{
    field_parser_t *p = ctx;
    if (p->depth >= MAX_DEPTH) {
        p->failure = FAIL_DEPTH;
        return 0;
    }
    if (p->depth == 0)
        return 0; /* the document is an array: stop */
    begin_container(p, HY_JSON_ARRAY);
    ++p->depth;
    return 1;
}

static int on_end_array(void *ctx)
{
    end_container(ctx);
    return 1;
}

static const yajl_callbacks field_callbacks = {on_null,      on_boolean, NULL,       NULL,           on_number,   on_string,
                                               on_start_map, on_map_key, on_end_map, on_start_array, on_end_array};

/* The value of 4 hex digits, or -1. */
static int hex4(const char *s)
{
    int v = 0;
    for (int i = 0; i != 4; ++i) {
        int d = hy_hex_value((unsigned char)s[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* yajl turns a lone UTF-16 surrogate escape ("\ud800") into '?' or into bytes that are not UTF-8; such a string is
 * refused before parsing. Returns the offset of the bad escape, or SIZE_MAX when every \u escape is sound. */
static size_t find_bad_surrogate(const char *s, size_t len)
{
    int in_string = 0;
    for (size_t i = 0; i < len; ++i) {
        if (!in_string) {
            in_string = s[i] == '"';
        } else if (s[i] == '"') {
            in_string = 0;
        } else if (s[i] == '\\') {
            if (i + 1 < len && s[i + 1] == 'u') {
                int cp = i + 5 < len ? hex4(s + i + 2) : -1;
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return i;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    int lo = i + 11 < len && s[i + 6] == '\\' && s[i + 7] == 'u' ? hex4(s + i + 8) : -1;
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return i;
                    i += 6;
                }
                i += 5;
            } else {
                ++i;
            }
        }
    }
    return SIZE_MAX;
}

int hy_json_parse_fields(h2o_mem_pool_t *pool, const char *body, size_t len, hy_json_field_t *fields, size_t nfields, char *err,
                         size_t errlen)
{
    size_t bad = find_bad_surrogate(body, len);
    if (bad != SIZE_MAX) {
        snprintf(err, errlen, "malformed JSON near byte %zu: a \\u escape is a lone UTF-16 surrogate", bad);
        return -1;
    }
    field_parser_t p = {pool, fields, nfields, 0, 0, NULL, FAIL_NONE, NULL, body, NULL, 0};
    yajl_alloc_funcs afs = {on_pool_malloc, on_pool_realloc, on_pool_free, pool};
    for (size_t i = 0; i != nfields; ++i) {
        fields[i].kind = HY_JSON_ABSENT;
        fields[i].value = h2o_iovec_init(NULL, 0);
    }
    yajl_handle h = yajl_alloc(&field_callbacks, &afs, &p);
    p.handle = h;
    yajl_status st = yajl_parse(h, (const unsigned char *)body, len);
    if (st == yajl_status_ok)
        st = yajl_parse(h, (const unsigned char *)"\n", 1); /* ends a string left open after the object ("{}\"") */
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    if (p.failure == FAIL_DEPTH) {
        snprintf(err, errlen, "malformed JSON: nested deeper than %d levels", MAX_DEPTH);
        return -1;
    }
    if (p.failure == FAIL_UTF8) {
        snprintf(err, errlen, "malformed JSON: a string is not valid UTF-8");
        return -1;
    }
    if (st == yajl_status_client_canceled || (st == yajl_status_ok && !p.top_is_object) || len == 0) {
        snprintf(err, errlen, "the body must be a JSON object");
        return -1;
    }
    if (st != yajl_status_ok) {
        size_t at = yajl_get_bytes_consumed(h);
        unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
        size_t mlen = strlen((const char *)msg);
        while (mlen != 0 && (msg[mlen - 1] == '\n' || msg[mlen - 1] == ' '))
            --mlen;
        snprintf(err, errlen, "malformed JSON near byte %zu: %.*s", at, (int)mlen, (const char *)msg);
        yajl_free_error(h, msg);
        return -1;
    }
    return 0;
}

const char *hy_json_kind_name(hy_json_kind_t kind)
{
    static const char *const names[] = {"absent", "a string", "a number", "a boolean", "null", "an object", "an array"};
    return names[kind];
}
