/* fuzz_json_body.c: libFuzzer target for hy_json_parse_fields (app/json.c), the reader of request bodies: every input
 * is parsed for the members name/email/other over a fresh h2o_mem_pool_t, and the kinds, values, error messages and the
 * memory the parse takes must keep the contract of json.h. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sanitizer/allocator_interface.h>
#include <yajl/yajl_parse.h>
#include "json.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The memory one parse may take from the pool: linear in the body. A request body is bounded by
 * server.limits.max_request_body (1MiB by default), so a parse that grows faster than the body lets one request take
 * memory out of all proportion to it. */
#define BUDGET(len) (64 * 1024 + 16 * (len))

/* ---- oracles ---------------------------------------------------------------------------------------------------------- */

/* JSON's white space (RFC 8259: space, tab, LF, CR) and the two more bytes that yajl 2.1 skips as white space: VT and FF.
 * That leniency is harmless, so the oracle allows it. */
static int is_yajl_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Returns 1 when the `len` bytes at s are well-formed UTF-8 (RFC 3629: shortest form, no surrogates, <= U+10FFFF). */
static int is_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            ++i;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (len - i - 1 < n)
            return 0;
        for (size_t k = 1; k <= n; ++k) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* ---- invariants ------------------------------------------------------------------------------------------------------- */

static void check_field(const hy_json_field_t *f)
{
    switch (f->kind) {
    case HY_JSON_STRING:
        CHECK(f->value.base != NULL && f->value.base[f->value.len] == '\0');
        CHECK(is_utf8((const unsigned char *)f->value.base, f->value.len)); /* json.h: "the decoded UTF-8 string" */
        break;
    case HY_JSON_NUMBER:
        CHECK(f->value.base != NULL && f->value.len != 0 && f->value.base[f->value.len] == '\0');
        CHECK(f->value.base[0] == '-' || (f->value.base[0] >= '0' && f->value.base[0] <= '9'));
        CHECK(strspn(f->value.base, "0123456789+-.eE") == f->value.len);
        break;
    case HY_JSON_BOOL:
        CHECK(f->value.base != NULL && ((f->value.len == 4 && strcmp(f->value.base, "true") == 0) ||
                                        (f->value.len == 5 && strcmp(f->value.base, "false") == 0)));
        break;
    case HY_JSON_OBJECT:
    case HY_JSON_ARRAY: {
        /* json.h: the member's JSON text as written, one complete value */
        char open = f->kind == HY_JSON_OBJECT ? '{' : '[', close = f->kind == HY_JSON_OBJECT ? '}' : ']';
        CHECK(f->value.base != NULL && f->value.len >= 2 && f->value.base[f->value.len] == '\0');
        CHECK(f->value.base[0] == open && f->value.base[f->value.len - 1] == close);
        yajl_handle h = yajl_alloc(NULL, NULL, NULL);
        CHECK(h != NULL);
        CHECK(yajl_parse(h, (const unsigned char *)f->value.base, f->value.len) == yajl_status_ok &&
              yajl_complete_parse(h) == yajl_status_ok);
        yajl_free(h);
        break;
    }
    case HY_JSON_ABSENT:
    case HY_JSON_NULL:
        CHECK(f->value.base == NULL && f->value.len == 0);
        break;
    default:
        __builtin_trap();
    }
    CHECK(hy_json_kind_name(f->kind) != NULL);
}

/* Parses body with `fields` over a fresh pool; checks the answer; returns the result and leaves the message in err. */
static int parse(const char *body, size_t len, hy_json_field_t *fields, size_t nfields, char *err, size_t errlen)
{
    enum { SENTINEL = 0x5a };
    h2o_mem_pool_t pool;
    char ebuf[512];

    CHECK(errlen <= sizeof(ebuf));
    memset(ebuf, SENTINEL, sizeof(ebuf));
    h2o_mem_init_pool(&pool);
    size_t before = __sanitizer_get_current_allocated_bytes();
    int ret = hy_json_parse_fields(&pool, body, len, fields, nfields, ebuf, errlen);
    size_t after = __sanitizer_get_current_allocated_bytes();
    if (after > before && after - before > BUDGET(len))
        fprintf(stderr, "fuzz_json_body: parsing %zu bytes took %zu bytes of memory (budget %zu)\n", len, after - before,
                (size_t)BUDGET(len));
    CHECK(after < before || after - before <= BUDGET(len));

    CHECK(ret == 0 || ret == -1);
    for (size_t i = errlen; i != sizeof(ebuf); ++i) /* the message stays inside errlen */
        CHECK((unsigned char)ebuf[i] == SENTINEL);
    if (ret == -1) {
        CHECK(memchr(ebuf, '\0', errlen) != NULL && ebuf[0] != '\0');
    } else {
        /* a success is one JSON object: '{' first and '}' last, leaving out white space */
        size_t a = 0, b = len;
        while (a < len && is_yajl_space((unsigned char)body[a]))
            ++a;
        while (b > a && is_yajl_space((unsigned char)body[b - 1]))
            --b;
        CHECK(b - a >= 2 && body[a] == '{' && body[b - 1] == '}');
        for (size_t i = 0; i != nfields; ++i)
            check_field(&fields[i]);
    }
    memcpy(err, ebuf, errlen);
    h2o_mem_clear_pool(&pool);
    return ret;
}

/* ---- the target ------------------------------------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    char err[256], err2[256], tiny[8];

    hy_json_field_t f[] = {
        {"name", HY_JSON_ABSENT, {NULL, 0}}, {"email", HY_JSON_ABSENT, {NULL, 0}}, {"other", HY_JSON_ABSENT, {NULL, 0}}};
    int ret = parse(body, size, f, 3, err, sizeof(err));

    /* The same body with the fields in another order: the same answer for each name (values compared while both pools
     * are gone, so copy the first answer's kinds and lengths only). */
    hy_json_kind_t kinds[3] = {f[0].kind, f[1].kind, f[2].kind};
    size_t lens[3] = {f[0].value.len, f[1].value.len, f[2].value.len};
    hy_json_field_t r[] = {
        {"other", HY_JSON_ABSENT, {NULL, 0}}, {"email", HY_JSON_ABSENT, {NULL, 0}}, {"name", HY_JSON_ABSENT, {NULL, 0}}};
    CHECK(parse(body, size, r, 3, err2, sizeof(err2)) == ret);
    CHECK(ret == 0 || strcmp(err, err2) == 0); /* the message does not depend on the fields */
    if (ret == 0)
        for (size_t i = 0; i != 3; ++i)
            CHECK(r[2 - i].kind == kinds[i] && r[2 - i].value.len == lens[i]);

    /* no fields at all, and a tiny error buffer: the same result */
    CHECK(parse(body, size, NULL, 0, tiny, sizeof(tiny)) == ret);
    return 0;
}
