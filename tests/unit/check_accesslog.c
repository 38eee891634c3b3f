/* check_accesslog.c: unit tests of JSON log lines, the batching writer and sampling (app/accesslog.c). Lines are
 * checked with yajl's parser. */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>
#include "accesslog.h"

/* ---- helpers ----------------------------------------------------------------------------------------------------------- */

/* An assertion that costs nothing when it holds (Check's own record each passing assertion with a system call, too slow
 * in loops of thousands). */
#define CHECK(cond, ...)                                                                                                           \
    do {                                                                                                                           \
        if (!(cond))                                                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                                                             \
    } while (0)

#define IOV(lit) ((h2o_iovec_t){(char *)(lit), sizeof(lit) - 1})
#define NO_IOV ((h2o_iovec_t){NULL, 0})

static hy_accesslog_entry_t sample_entry(void)
{
    hy_accesslog_entry_t e = {
        .time = {.tv_sec = 1795811721, .tv_usec = 544999}, /* 2026-11-27T20:35:21.544999Z */
        .request_id = IOV("0f3kq8m2x9abcdefghjkmnpqrs"),
        .client_ip = IOV("203.0.113.7"),
        .method = IOV("GET"),
        .path = IOV("/users/42?x=1&y=%20"),
        .route = IOV("/users/{id}"),
        .status = 200,
        .bytes_in = 0,
        .bytes_out = 512,
        .duration_us = 873,
        .http_version = 0x200,
        .tls = 1,
        .user_agent = IOV("curl/8.5.0"),
        .traceparent = IOV("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    };
    return e;
}

/* Checks that line[0..len) is one line of one valid JSON object (yajl, UTF-8 validated) and returns its tree (free
 * with yajl_tree_free). */
static yajl_val parse_line(const char *line, size_t len)
{
    CHECK(len > 2 && strlen(line) == len && line[len - 1] == '\n', "not one line of length %zu: %s", len, line);
    for (size_t i = 0; i != len - 1; ++i)
        CHECK((unsigned char)line[i] >= 0x20 && line[i] != 0x7f, "raw control byte 0x%02x at %zu in %s", (unsigned char)line[i], i,
              line);
    char err[256];
    yajl_val root = yajl_tree_parse(line, err, sizeof(err));
    CHECK(root != NULL && YAJL_IS_OBJECT(root), "not a JSON object (%s): %s", err, line);
    return root;
}

static yajl_val member(yajl_val root, const char *name)
{
    const char *path[] = {name, NULL};
    return yajl_tree_get(root, path, yajl_t_any);
}

static const char *str_member(yajl_val root, const char *name)
{
    yajl_val v = member(root, name);
    CHECK(v != NULL && YAJL_IS_STRING(v), "\"%s\" is not a string", name);
    return YAJL_GET_STRING(v);
}

static const char *num_member(yajl_val root, const char *name)
{
    yajl_val v = member(root, name);
    CHECK(v != NULL && YAJL_IS_NUMBER(v), "\"%s\" is not a number", name);
    return YAJL_GET_NUMBER(v);
}

/* Formats e into a heap buffer of exactly bufsize bytes (so ASan sees any overrun); returns it (free it). */
static char *format(const hy_accesslog_entry_t *e, size_t bufsize, size_t *len)
{
    char *buf = malloc(bufsize != 0 ? bufsize : 1);
    CHECK(buf != NULL, "out of memory");
    *len = hy_accesslog_format(buf, bufsize, e);
    return buf;
}

/* The escaped form of one value, as it appears between the quotes of "path". */
static const char *escaped_path(const char *raw, size_t rawlen)
{
    static char line[HY_ACCESSLOG_LINE_MAX];
    hy_accesslog_entry_t e = sample_entry();
    e.path = (h2o_iovec_t){(char *)raw, rawlen};
    size_t len = hy_accesslog_format(line, sizeof(line), &e);
    yajl_tree_free(parse_line(line, len));
    char *start = strstr(line, "\"path\":\"") + 8, *end = strstr(start, "\",\"route\":");
    CHECK(end != NULL, "no route after the path: %s", line);
    *end = '\0';
    return start;
}

/* ---- fields ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_every_field)
{
    hy_accesslog_entry_t e = sample_entry();
    char buf[HY_ACCESSLOG_LINE_MAX];
    size_t len = hy_accesslog_format(buf, sizeof(buf), &e);
    ck_assert_str_eq(
        buf, "{\"time\":\"2026-11-27T20:35:21.544Z\",\"level\":\"info\",\"request_id\":\"0f3kq8m2x9abcdefghjkmnpqrs\","
             "\"client_ip\":\"203.0.113.7\",\"method\":\"GET\",\"path\":\"/users/42?x=1&y=%20\",\"route\":\"/users/{id}\","
             "\"status\":200,\"bytes_in\":0,\"bytes_out\":512,\"duration_us\":873,\"protocol\":\"HTTP/2\",\"tls\":true,"
             "\"user_agent\":\"curl/8.5.0\",\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\"}\n");
    yajl_val root = parse_line(buf, len);
    ck_assert_uint_eq(YAJL_GET_OBJECT(root)->len, 15);
    ck_assert_str_eq(str_member(root, "time"), "2026-11-27T20:35:21.544Z");
    ck_assert_str_eq(str_member(root, "level"), "info");
    ck_assert_str_eq(str_member(root, "request_id"), "0f3kq8m2x9abcdefghjkmnpqrs");
    ck_assert_str_eq(str_member(root, "client_ip"), "203.0.113.7");
    ck_assert_str_eq(str_member(root, "method"), "GET");
    ck_assert_str_eq(str_member(root, "path"), "/users/42?x=1&y=%20");
    ck_assert_str_eq(str_member(root, "route"), "/users/{id}");
    ck_assert_str_eq(num_member(root, "status"), "200");
    ck_assert_str_eq(num_member(root, "bytes_in"), "0");
    ck_assert_str_eq(num_member(root, "bytes_out"), "512");
    ck_assert_str_eq(num_member(root, "duration_us"), "873");
    ck_assert_str_eq(str_member(root, "protocol"), "HTTP/2");
    ck_assert(YAJL_IS_TRUE(member(root, "tls")));
    ck_assert_str_eq(str_member(root, "user_agent"), "curl/8.5.0");
    ck_assert_str_eq(str_member(root, "traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    yajl_tree_free(root);
}
END_TEST

START_TEST(test_nulls_and_absent)
{
    hy_accesslog_entry_t e = sample_entry();
    e.route = NO_IOV;
    e.user_agent = NO_IOV;
    e.traceparent = NO_IOV;
    e.tls = 0;
    e.http_version = 0x101;
    e.status = 404;
    char buf[HY_ACCESSLOG_LINE_MAX];
    size_t len = hy_accesslog_format(buf, sizeof(buf), &e);
    yajl_val root = parse_line(buf, len);
    ck_assert(YAJL_IS_NULL(member(root, "route")));
    ck_assert(YAJL_IS_NULL(member(root, "user_agent")));
    ck_assert_ptr_null(member(root, "traceparent"));
    ck_assert(YAJL_IS_FALSE(member(root, "tls")));
    ck_assert_str_eq(str_member(root, "protocol"), "HTTP/1.1");
    ck_assert_str_eq(num_member(root, "status"), "404");
    ck_assert_uint_eq(YAJL_GET_OBJECT(root)->len, 14);
    yajl_tree_free(root);

    /* empty strings stay strings */
    e.route = IOV("");
    e.user_agent = IOV("");
    len = hy_accesslog_format(buf, sizeof(buf), &e);
    root = parse_line(buf, len);
    ck_assert_str_eq(str_member(root, "route"), "");
    ck_assert_str_eq(str_member(root, "user_agent"), "");
    yajl_tree_free(root);
}
END_TEST

START_TEST(test_numbers_and_protocols)
{
    hy_accesslog_entry_t e = sample_entry();
    e.bytes_in = UINT64_MAX;
    e.bytes_out = UINT64_MAX;
    e.duration_us = UINT64_MAX;
    e.status = -1;
    char buf[HY_ACCESSLOG_LINE_MAX];
    size_t len = hy_accesslog_format(buf, sizeof(buf), &e);
    yajl_val root = parse_line(buf, len);
    ck_assert_str_eq(num_member(root, "bytes_in"), "18446744073709551615");
    ck_assert_str_eq(num_member(root, "bytes_out"), "18446744073709551615");
    ck_assert_str_eq(num_member(root, "duration_us"), "18446744073709551615");
    ck_assert_str_eq(num_member(root, "status"), "-1");
    yajl_tree_free(root);

    static const struct {
        int version;
        const char *text;
    } protocols[] = {{0x100, "HTTP/1.0"}, {0x101, "HTTP/1.1"}, {0x200, "HTTP/2"}, {0x300, "HTTP/3"}, {0x009, "HTTP/0.9"}};
    for (size_t i = 0; i != sizeof(protocols) / sizeof(protocols[0]); ++i) {
        e.http_version = protocols[i].version;
        len = hy_accesslog_format(buf, sizeof(buf), &e);
        root = parse_line(buf, len);
        ck_assert_str_eq(str_member(root, "protocol"), protocols[i].text);
        yajl_tree_free(root);
    }
}
END_TEST

static const char *time_text(time_t sec, long usec)
{
    static char buf[HY_ACCESSLOG_LINE_MAX];
    hy_accesslog_entry_t e = sample_entry();
    e.time.tv_sec = sec;
    e.time.tv_usec = usec;
    hy_accesslog_format(buf, sizeof(buf), &e);
    buf[9 + 24] = '\0';
    return buf + 9;
}

START_TEST(test_time)
{
    ck_assert_str_eq(time_text(0, 0), "1970-01-01T00:00:00.000Z");
    ck_assert_str_eq(time_text(0, 999999), "1970-01-01T00:00:00.999Z"); /* truncated, not rounded */
    ck_assert_str_eq(time_text(951782400, 1000), "2000-02-29T00:00:00.001Z");
    ck_assert_str_eq(time_text(951868799, 0), "2000-02-29T23:59:59.000Z");
    ck_assert_str_eq(time_text(1709251199, 0), "2024-02-29T23:59:59.000Z");
    ck_assert_str_eq(time_text(4107542399, 0), "2100-02-28T23:59:59.000Z"); /* 2100 is not a leap year */
    ck_assert_str_eq(time_text(4107542400, 0), "2100-03-01T00:00:00.000Z");
    ck_assert_str_eq(time_text(-1, 0), "1969-12-31T23:59:59.000Z");
    ck_assert_str_eq(time_text(-2208988800, 0), "1900-01-01T00:00:00.000Z");
    ck_assert_str_eq(time_text(-62135596800, 0), "0001-01-01T00:00:00.000Z");
    ck_assert_str_eq(time_text(0, 1999999), "1970-01-01T00:00:01.999Z"); /* tv_usec out of range */
    ck_assert_str_eq(time_text(1, -1), "1970-01-01T00:00:00.999Z");
    ck_assert_str_eq(time_text(253402300799, 999999), "9999-12-31T23:59:59.999Z");
    ck_assert_str_eq(time_text(253402300800, 0), "9999-12-31T23:59:59.999Z"); /* clamped */
    ck_assert_str_eq(time_text(-99999999999, 0), "0000-01-01T00:00:00.000Z");

    /* against gmtime_r over a spread of times, 1970-2400 */
    uint64_t x = 88172645463325252u;
    for (int i = 0; i != 20000; ++i) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        time_t t = (time_t)(x % UINT64_C(13569465600));
        struct tm tm;
        gmtime_r(&t, &tm);
        char want[32];
        strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S.123Z", &tm);
        const char *got = time_text(t, 123456);
        CHECK(strcmp(got, want) == 0, "%lld: %s, not %s", (long long)t, got, want);
    }
}
END_TEST

/* ---- escaping ---------------------------------------------------------------------------------------------------------- */

#define ESC(lit) escaped_path((lit), sizeof(lit) - 1)

START_TEST(test_escaping)
{
    ck_assert_str_eq(ESC("a\"b\\c/d"), "a\\\"b\\\\c/d");
    ck_assert_str_eq(ESC("\b\f\n\r\t"), "\\b\\f\\n\\r\\t");
    ck_assert_str_eq(ESC("\x00\x01\x1f\x7f"), "\\u0000\\u0001\\u001f\\u007f");
    ck_assert_str_eq(ESC("\x1b[31mred"), "\\u001b[31mred");
    /* valid UTF-8 is kept */
    ck_assert_str_eq(ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf"),
                     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf");
    /* line separators are escaped */
    ck_assert_str_eq(ESC("a\xe2\x80\xa8"
                         "b\xe2\x80\xa9"
                         "c"),
                     "a\\u2028b\\u2029c");
    ck_assert_str_eq(ESC("\xe2\x80\xaa"), "\xe2\x80\xaa"); /* U+202A is just a character */

    /* every control byte */
    for (int c = 0; c != 0x20; ++c) {
        char raw[1] = {(char)c};
        const char *got = escaped_path(raw, 1);
        CHECK(got[0] == '\\' && strlen(got) >= 2, "byte %d: %s", c, got);
    }
}
END_TEST

START_TEST(test_escaping_positions)
{
    /* one special byte at every position of plain strings of 1 to 48 bytes (the fast paths take 16 and 8 at a time) */
    static const struct {
        const char *raw, *esc;
    } specials[] = {{"\"", "\\\""},      {"\\", "\\\\"},           {"\n", "\\n"},       {"\x7f", "\\u007f"},
                    {"\x1f", "\\u001f"}, {"\xc3\xa9", "\xc3\xa9"}, {"\xff", "\\ufffd"}, {"\xe2\x80\xa8", "\\u2028"}};
    for (size_t k = 0; k != sizeof(specials) / sizeof(specials[0]); ++k) {
        size_t slen = strlen(specials[k].raw);
        for (size_t n = 1; n <= 48; ++n)
            for (size_t at = 0; at + slen <= n; ++at) {
                char raw[64], want[128];
                memset(raw, 'a', n);
                memcpy(raw + at, specials[k].raw, slen);
                memset(want, 'a', at);
                strcpy(want + at, specials[k].esc);
                memset(want + strlen(want), 'a', n - at - slen);
                want[at + strlen(specials[k].esc) + n - at - slen] = '\0';
                const char *got = escaped_path(raw, n);
                CHECK(strcmp(got, want) == 0, "special %zu at %zu of %zu: %s, not %s", k, at, n, got, want);
            }
    }
}
END_TEST

START_TEST(test_invalid_utf8)
{
    ck_assert_str_eq(ESC("\x80"), "\\ufffd");                                  /* lone continuation */
    ck_assert_str_eq(ESC("\xbf\x80"), "\\ufffd\\ufffd");                       /* two of them */
    ck_assert_str_eq(ESC("\xc0\x80"), "\\ufffd\\ufffd");                       /* overlong NUL: C0 never starts */
    ck_assert_str_eq(ESC("\xc1\xbf"), "\\ufffd\\ufffd");                       /* overlong */
    ck_assert_str_eq(ESC("\xe0\x80\x80"), "\\ufffd\\ufffd\\ufffd");            /* overlong 3-byte: E0 needs A0..BF */
    ck_assert_str_eq(ESC("\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd");            /* a surrogate, U+D800 */
    ck_assert_str_eq(ESC("\xf0\x80\x80\x80"), "\\ufffd\\ufffd\\ufffd\\ufffd"); /* overlong 4-byte */
    ck_assert_str_eq(ESC("\xf4\x90\x80\x80"), "\\ufffd\\ufffd\\ufffd\\ufffd"); /* above U+10FFFF */
    ck_assert_str_eq(ESC("\xf5\xff\xfe"), "\\ufffd\\ufffd\\ufffd");            /* never in UTF-8 */
    ck_assert_str_eq(ESC("a\xc3"), "a\\ufffd");                                /* cut at the end */
    ck_assert_str_eq(ESC("\xe2\x82x"), "\\ufffdx");                            /* maximal subpart: one U+FFFD for E2 82 */
    ck_assert_str_eq(ESC("\xf0\x9f\x98"), "\\ufffd");                          /* 3 of 4 bytes: one */
    ck_assert_str_eq(ESC("\xf0\x9f\x98\xc3\xa9"), "\\ufffd\xc3\xa9");          /* and the next character survives */
    ck_assert_str_eq(ESC("\xc3\x28"), "\\ufffd(");
    ck_assert_str_eq(ESC("/p\xa0th?q=\xff"), "/p\\ufffdth?q=\\ufffd");
}
END_TEST

START_TEST(test_every_byte_pair)
{
    /* every 2-byte input gives valid JSON (yajl checks the UTF-8), with and without trailing context */
    for (int a = 0; a != 256; ++a)
        for (int b = 0; b < 256; b += 3) {
            char raw[4] = {(char)a, (char)b, (char)0xa9, 'x'};
            escaped_path(raw, 2);
            escaped_path(raw, 4);
        }
}
END_TEST

/* ---- truncation -------------------------------------------------------------------------------------------------------- */

START_TEST(test_field_caps)
{
    enum { N = 5000 };
    char *big = malloc(N);
    ck_assert_ptr_nonnull(big);
    memset(big, 'p', N);
    big[0] = '/';

    hy_accesslog_entry_t e = sample_entry();
    e.path = (h2o_iovec_t){big, N};
    e.user_agent = (h2o_iovec_t){big, N};
    e.request_id = (h2o_iovec_t){big, N};
    char buf[HY_ACCESSLOG_LINE_MAX];
    size_t len = hy_accesslog_format(buf, sizeof(buf), &e);
    yajl_val root = parse_line(buf, len);
    const char *path = str_member(root, "path");
    ck_assert_uint_eq(strlen(path), HY_ACCESSLOG_PATH_MAX + 3);
    ck_assert_str_eq(path + HY_ACCESSLOG_PATH_MAX, "...");
    ck_assert_int_eq(memcmp(path, big, HY_ACCESSLOG_PATH_MAX), 0);
    ck_assert_uint_eq(strlen(str_member(root, "user_agent")), HY_ACCESSLOG_UA_MAX + 3);
    ck_assert_uint_eq(strlen(str_member(root, "request_id")), HY_ACCESSLOG_ID_MAX + 3);
    yajl_tree_free(root);

    /* exactly at the cap: whole, no "..." */
    e.path = (h2o_iovec_t){big, HY_ACCESSLOG_PATH_MAX};
    len = hy_accesslog_format(buf, sizeof(buf), &e);
    root = parse_line(buf, len);
    ck_assert_uint_eq(strlen(str_member(root, "path")), HY_ACCESSLOG_PATH_MAX);
    yajl_tree_free(root);

    /* the cap never splits a character: 3-byte euro signs, 2048 = 682 * 3 + 2 */
    for (size_t i = 0; i + 3 <= N; i += 3)
        memcpy(big + i, "\xe2\x82\xac", 3);
    e.path = (h2o_iovec_t){big, N - N % 3};
    len = hy_accesslog_format(buf, sizeof(buf), &e);
    root = parse_line(buf, len);
    path = str_member(root, "path");
    ck_assert_uint_eq(strlen(path), 682 * 3 + 3);
    ck_assert_ptr_null(strstr(path, "\xef\xbf\xbd")); /* no U+FFFD from a split */
    yajl_tree_free(root);
    free(big);
}
END_TEST

/* An entry with every string long and full of bytes that escape to 6. */
static hy_accesslog_entry_t nasty_entry(char *junk, size_t n)
{
    for (size_t i = 0; i != n; ++i)
        junk[i] = "\x01\"\\\xff\xc3\xa9\xe2\x80\xa8zz"[i % 11];
    hy_accesslog_entry_t e = sample_entry();
    e.request_id = (h2o_iovec_t){junk, n};
    e.client_ip = (h2o_iovec_t){junk + 1, n - 1};
    e.method = (h2o_iovec_t){junk + 2, n - 2};
    e.path = (h2o_iovec_t){junk + 3, n - 3};
    e.route = (h2o_iovec_t){junk + 4, n - 4};
    e.user_agent = (h2o_iovec_t){junk + 5, n - 5};
    e.traceparent = (h2o_iovec_t){junk + 6, n - 6};
    return e;
}

START_TEST(test_line_max)
{
    /* the worst case fits HY_ACCESSLOG_LINE_MAX: every byte of every capped field escapes to 6 */
    enum { N = 4000 };
    char *junk = malloc(N);
    ck_assert_ptr_nonnull(junk);
    memset(junk, 1, N);
    hy_accesslog_entry_t e = sample_entry();
    e.request_id = e.client_ip = e.method = e.path = e.route = e.user_agent = e.traceparent = (h2o_iovec_t){junk, N};
    e.status = INT_MIN;
    e.bytes_in = e.bytes_out = e.duration_us = UINT64_MAX;
    e.http_version = 0x1ff;
    static char big[2 * HY_ACCESSLOG_LINE_MAX];
    size_t whole = hy_accesslog_format(big, sizeof(big), &e);
    ck_assert_uint_lt(whole, HY_ACCESSLOG_LINE_MAX);
    size_t len;
    char *buf = format(&e, HY_ACCESSLOG_LINE_MAX, &len);
    ck_assert_uint_eq(len, whole);
    ck_assert_str_eq(buf, big);
    yajl_tree_free(parse_line(buf, len));
    free(buf);
    free(junk);
}
END_TEST

START_TEST(test_every_buffer_size)
{
    enum { N = 700 };
    char *junk = malloc(N);
    ck_assert_ptr_nonnull(junk);
    hy_accesslog_entry_t e = nasty_entry(junk, N);
    char whole[HY_ACCESSLOG_LINE_MAX];
    size_t full = hy_accesslog_format(whole, sizeof(whole), &e);
    yajl_tree_free(parse_line(whole, full));

    size_t first = 0; /* the smallest buffer that gets a line */
    for (size_t size = 0; size <= full + 2; ++size) {
        size_t len;
        char *buf = format(&e, size, &len);
        if (len == 0) {
            CHECK(first == 0, "size %zu failed after size %zu worked", size, first);
            CHECK(size == 0 || buf[0] == '\0', "size %zu: no line but the buffer is not empty", size);
        } else {
            if (first == 0)
                first = size;
            CHECK(len < size, "size %zu: a line of %zu", size, len);
            yajl_val root = parse_line(buf, len);
            CHECK(YAJL_GET_OBJECT(root)->len == 15, "size %zu: a member is lost: %s", size, buf);
            if (size > full) {
                CHECK(strcmp(buf, whole) == 0, "size %zu: cut though it fits", size);
            } else {
                /* cut values end in "..." */
                const char *path = str_member(root, "path");
                CHECK(strlen(path) >= 3 && strcmp(path + strlen(path) - 3, "...") == 0, "size %zu: path %s", size, path);
            }
            yajl_tree_free(root);
        }
        free(buf);
    }
    ck_assert_uint_gt(first, 0);
    ck_assert_uint_lt(first, 512); /* the names, numbers and seven "..." */
    free(junk);
}
END_TEST

START_TEST(test_short_values_kept_whole)
{
    /* a long path is cut before the short values */
    enum { N = 3000 };
    char *big = malloc(N);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', N);
    hy_accesslog_entry_t e = sample_entry();
    e.path = (h2o_iovec_t){big, N};
    e.user_agent = (h2o_iovec_t){big, 600};
    char buf[1024];
    size_t len = hy_accesslog_format(buf, sizeof(buf), &e);
    ck_assert_uint_gt(len, 900);
    yajl_val root = parse_line(buf, len);
    ck_assert_str_eq(str_member(root, "request_id"), "0f3kq8m2x9abcdefghjkmnpqrs");
    ck_assert_str_eq(str_member(root, "client_ip"), "203.0.113.7");
    ck_assert_str_eq(str_member(root, "method"), "GET");
    ck_assert_str_eq(str_member(root, "route"), "/users/{id}");
    ck_assert_str_eq(str_member(root, "traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    size_t plen = strlen(str_member(root, "path")), ulen = strlen(str_member(root, "user_agent"));
    ck_assert_uint_lt(plen, 600);
    ck_assert_uint_lt(ulen, 600);
    ck_assert_uint_le(plen > ulen ? plen - ulen : ulen - plen, 1); /* the two long ones share the room */
    yajl_tree_free(root);
    free(big);
}
END_TEST

/* ---- error-log lines --------------------------------------------------------------------------------------------------- */

START_TEST(test_errorlog)
{
    char buf[8192];
    struct timespec before;
    clock_gettime(CLOCK_REALTIME, &before);
    size_t len = hy_errorlog_format(buf, sizeof(buf), "error", "abc123", "upstream \"db\" timed out\n");
    yajl_val root = parse_line(buf, len);
    ck_assert_uint_eq(YAJL_GET_OBJECT(root)->len, 4);
    ck_assert_str_eq(YAJL_GET_OBJECT(root)->keys[0], "time");
    ck_assert_str_eq(YAJL_GET_OBJECT(root)->keys[3], "msg");
    ck_assert_str_eq(str_member(root, "level"), "error");
    ck_assert_str_eq(str_member(root, "request_id"), "abc123");
    ck_assert_str_eq(str_member(root, "msg"), "upstream \"db\" timed out\n");
    const char *t = str_member(root, "time");
    ck_assert_uint_eq(strlen(t), 24);
    struct tm tm = {0};
    ck_assert_ptr_nonnull(strptime(t, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t sec = timegm(&tm);
    ck_assert_int_le(labs((long)(sec - before.tv_sec)), 2);
    yajl_tree_free(root);

    len = hy_errorlog_format(buf, sizeof(buf), "warn", NULL, "no id");
    root = parse_line(buf, len);
    ck_assert_uint_eq(YAJL_GET_OBJECT(root)->len, 3);
    ck_assert_ptr_null(member(root, "request_id"));
    ck_assert_str_eq(str_member(root, "level"), "warn");
    yajl_tree_free(root);

    /* a long message is cut at HY_ERRORLOG_MSG_MAX; invalid bytes are replaced */
    char *msg = malloc(3 * HY_ERRORLOG_MSG_MAX);
    ck_assert_ptr_nonnull(msg);
    memset(msg, 'm', 3 * HY_ERRORLOG_MSG_MAX - 1);
    msg[3 * HY_ERRORLOG_MSG_MAX - 1] = '\0';
    msg[0] = '\xff';
    len = hy_errorlog_format(buf, sizeof(buf), "error", "id", msg);
    root = parse_line(buf, len);
    const char *m = str_member(root, "msg");
    ck_assert_uint_eq(strlen(m), 3 + (HY_ERRORLOG_MSG_MAX - 1) + 3);
    ck_assert_int_eq(memcmp(m, "\xef\xbf\xbd", 3), 0);
    yajl_tree_free(root);

    /* a small buffer cuts the message, keeping valid JSON */
    len = hy_errorlog_format(buf, 120, "error", "id", msg);
    ck_assert_uint_gt(len, 0);
    ck_assert_uint_lt(len, 120);
    yajl_tree_free(parse_line(buf, len));
    ck_assert_uint_eq(hy_errorlog_format(buf, 20, "error", "id", msg), 0);
    ck_assert_int_eq(buf[0], '\0');
    free(msg);

    /* NULL level and message */
    len = hy_errorlog_format(buf, sizeof(buf), NULL, NULL, NULL);
    root = parse_line(buf, len);
    ck_assert_str_eq(str_member(root, "level"), "error");
    ck_assert_str_eq(str_member(root, "msg"), "");
    yajl_tree_free(root);
}
END_TEST

/* ---- the buffered writer ----------------------------------------------------------------------------------------------- */

static int temp_file(void)
{
    char path[] = "/tmp/check_accesslog.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    return fd;
}

static size_t read_all(int fd, char *buf, size_t size)
{
    size_t len = 0;
    ssize_t n;
    while (len < size && (n = read(fd, buf + len, size - len)) > 0)
        len += (size_t)n;
    return len;
}

START_TEST(test_logbuf_file_batches)
{
    int fd = temp_file();
    hy_logbuf_t *lb = malloc(sizeof(*lb));
    ck_assert_ptr_nonnull(lb);
    hy_logbuf_init(lb, fd);
    ck_assert_uint_eq(lb->piece, HY_LOGBUF_SIZE);

    /* 1000 lines of 100 bytes: nothing is written until the buffer is full, then one write per full buffer */
    char line[100];
    memset(line, 'x', sizeof(line));
    line[99] = '\n';
    for (int i = 0; i != 1000; ++i) {
        line[0] = (char)('0' + i % 10);
        ck_assert_int_eq(hy_logbuf_append(lb, line, sizeof(line)), 0);
        ck_assert_uint_eq(lb->writes, (uint64_t)(i >= 655)); /* 655 lines fill 65500 of 65536 bytes */
    }
    ck_assert_uint_eq(lb->bytes_written, 65500);
    ck_assert_int_eq(hy_logbuf_flush(lb), 0);
    ck_assert_uint_eq(lb->writes, 2);
    ck_assert_uint_eq(lb->len, 0);
    ck_assert_int_eq(hy_logbuf_flush(lb), 0); /* nothing to write: no system call */
    ck_assert_uint_eq(lb->writes, 2);
    ck_assert_uint_eq(lb->bytes_written, 100000);

    static char back[200000];
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    ck_assert_uint_eq(read_all(fd, back, sizeof(back)), 100000);
    for (int i = 0; i != 1000; ++i)
        ck_assert_int_eq(back[i * 100], '0' + i % 10);

    /* a batch longer than the buffer goes out on its own, after what was buffered */
    ck_assert_int_eq(hy_logbuf_append(lb, "a\n", 2), 0);
    char *huge = malloc(HY_LOGBUF_SIZE + 10);
    memset(huge, 'h', HY_LOGBUF_SIZE + 10);
    huge[HY_LOGBUF_SIZE + 9] = '\n';
    ck_assert_int_eq(hy_logbuf_append(lb, huge, HY_LOGBUF_SIZE + 10), 0);
    ck_assert_uint_eq(lb->writes, 4);
    ck_assert_uint_eq(lb->len, 0);
    ck_assert_int_eq(lseek(fd, 100000, SEEK_SET), 100000);
    ck_assert_uint_eq(read_all(fd, back, sizeof(back)), 2 + HY_LOGBUF_SIZE + 10);
    ck_assert_int_eq(memcmp(back, "a\nhhh", 5), 0);
    free(huge);
    free(lb);
    close(fd);
}
END_TEST

START_TEST(test_logbuf_pipe_pieces)
{
    /* a packet-mode pipe (O_DIRECT): each read returns what one write(2) wrote */
    int p[2];
    ck_assert_int_eq(pipe2(p, O_DIRECT), 0);
    ck_assert_int_ge(fcntl(p[1], F_SETPIPE_SZ, 1 << 20), 1 << 20);
    hy_logbuf_t *lb = malloc(sizeof(*lb));
    ck_assert_ptr_nonnull(lb);
    hy_logbuf_init(lb, p[1]);
    ck_assert_uint_eq(lb->piece, PIPE_BUF);

    /* lines of 1 to 300 bytes, 60 KB in all */
    char line[300];
    size_t total = 0;
    int nlines = 0;
    while (total < 60000) {
        size_t n = 1 + (size_t)(nlines * 37) % 300;
        memset(line, 'a' + nlines % 26, n - 1);
        line[n - 1] = '\n';
        ck_assert_int_eq(hy_logbuf_append(lb, line, n), 0);
        total += n;
        ++nlines;
    }
    ck_assert_uint_eq(lb->writes, 0);
    ck_assert_int_eq(hy_logbuf_flush(lb), 0);
    ck_assert_uint_eq(lb->bytes_written, total);
    ck_assert_uint_ge(lb->writes, total / PIPE_BUF + 1);
    ck_assert_uint_le(lb->writes, total / (PIPE_BUF - 300) + 1); /* each piece nearly full */

    /* every piece ends at a line end and is at most PIPE_BUF */
    static char back[PIPE_BUF];
    size_t got = 0;
    for (uint64_t w = 0; w != lb->writes; ++w) {
        ssize_t n = read(p[0], back, sizeof(back));
        ck_assert_int_gt(n, 0);
        ck_assert_int_le(n, PIPE_BUF);
        ck_assert_int_eq(back[n - 1], '\n');
        got += (size_t)n;
    }
    ck_assert_uint_eq(got, total);

    /* a line longer than PIPE_BUF is one write */
    char *longline = malloc(3 * PIPE_BUF);
    memset(longline, 'L', 3 * PIPE_BUF);
    longline[3 * PIPE_BUF - 1] = '\n';
    uint64_t before = lb->writes;
    ck_assert_int_eq(hy_logbuf_append(lb, "x\n", 2), 0);
    ck_assert_int_eq(hy_logbuf_append(lb, longline, 3 * PIPE_BUF), 0);
    ck_assert_int_eq(hy_logbuf_append(lb, "y\n", 2), 0);
    ck_assert_int_eq(hy_logbuf_flush(lb), 0);
    ck_assert_uint_eq(lb->writes - before, 3); /* "x\n", the long line on its own, "y\n" */
    free(longline);
    free(lb);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(test_logbuf_access_lines)
{
    int fd = temp_file();
    hy_logbuf_t *lb = malloc(sizeof(*lb));
    ck_assert_ptr_nonnull(lb);
    hy_logbuf_init(lb, fd);
    hy_accesslog_entry_t e = sample_entry();
    char one[HY_ACCESSLOG_LINE_MAX];
    size_t linelen = hy_accesslog_format(one, sizeof(one), &e);

    /* formatted in place; flushed when the next line does not fit */
    int n = 1000;
    for (int i = 0; i != n; ++i)
        ck_assert_int_eq(hy_accesslog_write(lb, &e), 0);
    size_t per_batch = HY_LOGBUF_SIZE / linelen;
    ck_assert_uint_eq(lb->writes, (uint64_t)(n - 1) / per_batch);
    ck_assert_int_eq(hy_logbuf_flush(lb), 0);

    size_t total = linelen * (size_t)n;
    char *back = malloc(total + 1);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    ck_assert_uint_eq(read_all(fd, back, total + 1), total);
    for (int i = 0; i != n; ++i)
        ck_assert_int_eq(memcmp(back + (size_t)i * linelen, one, linelen), 0);
    free(back);

    /* the worst-case line after a nearly full buffer: flushed first, then whole */
    enum { N = 4000 };
    char *junk = malloc(N);
    hy_accesslog_entry_t nasty = nasty_entry(junk, N);
    char *whole = malloc(HY_ACCESSLOG_LINE_MAX);
    size_t wlen = hy_accesslog_format(whole, HY_ACCESSLOG_LINE_MAX, &nasty);
    while (HY_LOGBUF_SIZE - lb->len > wlen)
        ck_assert_int_eq(hy_accesslog_write(lb, &e), 0);
    uint64_t before = lb->writes;
    ck_assert_int_eq(hy_accesslog_write(lb, &nasty), 0);
    ck_assert_uint_eq(lb->writes, before + 1);
    ck_assert_uint_eq(lb->len, wlen);
    ck_assert_int_eq(memcmp(lb->buf, whole, wlen), 0);
    free(whole);
    free(junk);
    free(lb);
    close(fd);
}
END_TEST

START_TEST(test_logbuf_errors)
{
    signal(SIGPIPE, SIG_IGN);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    hy_logbuf_t *lb = malloc(sizeof(*lb));
    ck_assert_ptr_nonnull(lb);
    hy_logbuf_init(lb, p[1]);
    ck_assert_int_eq(hy_logbuf_append(lb, "one\ntwo\n", 8), 0);
    ck_assert_int_eq(hy_logbuf_flush(lb), -1);
    ck_assert_int_eq(lb->last_errno, EPIPE);
    ck_assert_uint_eq(lb->bytes_dropped, 8);
    ck_assert_uint_eq(lb->len, 0);
    close(p[1]);

    /* a non-blocking pipe that is full: the rest of the batch is dropped, not waited for; the next batch tries again */
    ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
    hy_logbuf_init(lb, p[1]);
    char line[1000];
    memset(line, 'z', sizeof(line));
    line[999] = '\n';
    for (int i = 0; i != 130; ++i)
        hy_logbuf_append(lb, line, sizeof(line));
    ck_assert_int_eq(hy_logbuf_flush(lb), -1);
    ck_assert_int_eq(lb->last_errno, EAGAIN);
    ck_assert_uint_gt(lb->bytes_written, 60000); /* about the pipe's 64 KiB */
    ck_assert_uint_eq(lb->bytes_written + lb->bytes_dropped, 130 * sizeof(line));
    ck_assert_uint_eq(lb->bytes_written % sizeof(line), 0); /* whole lines only */
    static char drain[1 << 17];
    ck_assert_int_eq(read(p[0], drain, sizeof(drain)), (ssize_t)lb->bytes_written);
    ck_assert_int_eq(hy_logbuf_append(lb, line, sizeof(line)), 0);
    ck_assert_int_eq(hy_logbuf_flush(lb), 0);
    free(lb);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(test_logbuf_open)
{
    char path[] = "/tmp/check_accesslog_open.XXXXXX";
    int tmp = mkstemp(path);
    ck_assert_int_ge(tmp, 0);
    ck_assert_int_eq(write(tmp, "old\n", 4), 4);
    close(tmp);
    int fd = hy_logbuf_open(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ne(fcntl(fd, F_GETFL) & O_APPEND, 0);
    ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    hy_logbuf_t *lb = malloc(sizeof(*lb));
    hy_logbuf_init(lb, fd);
    ck_assert_int_eq(hy_logbuf_append(lb, "new\n", 4), 0);
    ck_assert_int_eq(hy_logbuf_flush(lb), 0);
    close(fd);
    fd = open(path, O_RDONLY);
    char back[16] = {0};
    ck_assert_uint_eq(read_all(fd, back, sizeof(back)), 8);
    ck_assert_str_eq(back, "old\nnew\n"); /* appended */
    close(fd);
    unlink(path);
    free(lb);
    ck_assert_int_eq(hy_logbuf_open("/nonexistent-dir/x.log"), -1);
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

/* ---- sampling ---------------------------------------------------------------------------------------------------------- */

static int count_sampled(uint64_t seed, double ratio, int n)
{
    hy_sampler_t s;
    hy_sampler_init(&s, seed);
    int k = 0;
    for (int i = 0; i != n; ++i)
        k += hy_accesslog_sampled(&s, ratio);
    return k;
}

START_TEST(test_sampling)
{
    enum { N = 100000 };
    for (uint64_t seed = 0; seed != 8; ++seed) {
        ck_assert_int_eq(count_sampled(seed, 1.0, N), N);
        ck_assert_int_eq(count_sampled(seed, 0.0, N), 0);
        int k = count_sampled(seed, 0.1, N);
        ck_assert_msg(k >= 9800 && k <= 10200, "seed %d: %d of %d sampled at 0.1", (int)seed, k, N); /* +-2% */
        k = count_sampled(seed, 0.5, N);
        ck_assert_msg(k >= 49000 && k <= 51000, "seed %d: %d of %d sampled at 0.5", (int)seed, k, N);
        k = count_sampled(seed, 0.001, N);
        ck_assert_msg(k >= 50 && k <= 150, "seed %d: %d of %d sampled at 0.001", (int)seed, k, N);
    }
    ck_assert_int_eq(count_sampled(1, 2.0, 1000), 1000);
    ck_assert_int_eq(count_sampled(1, -1.0, 1000), 0);
    ck_assert_int_eq(count_sampled(1, NAN, 1000), 0);
    ck_assert_int_eq(count_sampled(1, INFINITY, 1000), 1000);

    /* deterministic per seed; different seeds decide differently */
    hy_sampler_t a, b, c;
    hy_sampler_init(&a, 42);
    hy_sampler_init(&b, 42);
    hy_sampler_init(&c, 43);
    int same = 1, differ = 0;
    for (int i = 0; i != 1000; ++i) {
        int x = hy_accesslog_sampled(&a, 0.3), y = hy_accesslog_sampled(&b, 0.3), z = hy_accesslog_sampled(&c, 0.3);
        same &= x == y;
        differ |= x != z;
    }
    ck_assert(same);
    ck_assert(differ);
}
END_TEST

/* ---- the suite --------------------------------------------------------------------------------------------------------- */

static Suite *make_accesslog_suite(void)
{
    Suite *s = suite_create("accesslog");

    TCase *tc = tcase_create("fields");
    tcase_add_test(tc, test_every_field);
    tcase_add_test(tc, test_nulls_and_absent);
    tcase_add_test(tc, test_numbers_and_protocols);
    tcase_add_test(tc, test_time);
    suite_add_tcase(s, tc);

    tc = tcase_create("escaping");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_escaping_positions);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_every_byte_pair);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_field_caps);
    tcase_add_test(tc, test_line_max);
    tcase_add_test(tc, test_every_buffer_size);
    tcase_add_test(tc, test_short_values_kept_whole);
    suite_add_tcase(s, tc);

    tc = tcase_create("errorlog");
    tcase_add_test(tc, test_errorlog);
    suite_add_tcase(s, tc);

    tc = tcase_create("writer");
    tcase_add_test(tc, test_logbuf_file_batches);
    tcase_add_test(tc, test_logbuf_pipe_pieces);
    tcase_add_test(tc, test_logbuf_access_lines);
    tcase_add_test(tc, test_logbuf_errors);
    tcase_add_test(tc, test_logbuf_open);
    suite_add_tcase(s, tc);

    tc = tcase_create("sampling");
    tcase_add_test(tc, test_sampling);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(make_accesslog_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
