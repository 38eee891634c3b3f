/* check_guard.c: unit tests of the guard (app/h2o_guard.c): the strict chunked decoder and the HTTP/2 frame rule. */

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include "h2o_guard.h"

/* ---- decoding helpers ---------------------------------------------------------------------------------------------------- */

typedef struct {
    int status;        /* 0: complete, -1: error, -2: incomplete after all the input */
    char out[16384];   /* the decoded data */
    size_t outlen;     /* its length */
    char rest[16384];  /* what followed the body */
    size_t restlen;    /* its length */
    int in_data_after; /* phr_decode_chunked_is_in_data after the last call */
} result_t;

/* Feeds `in` to a fresh decoder in pieces: `first` bytes, then `step` bytes at a time, each piece in a buffer of its
 * own size (so that ASan sees any read past it), as libh2o does with each read. */
static void decode_pieces(const char *in, size_t len, int consume_trailer, size_t first, size_t step, result_t *r)
{
    struct phr_chunked_decoder d;
    memset(&d, 0, sizeof(d));
    d.consume_trailer = (char)consume_trailer;
    memset(r, 0, sizeof(*r));
    r->status = -2;
    for (size_t off = 0, n = first; off < len; off += n, n = step) {
        if (n > len - off)
            n = len - off;
        char *buf = malloc(n);
        ck_assert_ptr_nonnull(buf);
        memcpy(buf, in + off, n);
        size_t sz = n;
        ssize_t ret = phr_decode_chunked(&d, buf, &sz);
        ck_assert_uint_le(sz, n);
        memcpy(r->out + r->outlen, buf, sz);
        r->outlen += sz;
        if (ret >= 0) {
            ck_assert_uint_le(sz + (size_t)ret, n);
            memcpy(r->rest, buf + sz, (size_t)ret);
            memcpy(r->rest + ret, in + off + n, len - off - n);
            r->restlen = (size_t)ret + len - off - n;
            r->status = 0;
        } else if (ret == -1) {
            r->status = -1;
        } else {
            ck_assert_int_eq(ret, -2);
        }
        free(buf);
        if (ret != -2)
            break;
    }
    r->in_data_after = phr_decode_chunked_is_in_data(&d);
}

/* Checks that `in` decodes to the outcome `status` (with `out` and `rest` when complete) whole, split in two at every
 * byte, and fed one byte at a time. */
static void expect(const char *in, int consume_trailer, int status, const char *out, const char *rest)
{
    size_t len = strlen(in);
    static result_t r;
    for (size_t k = 1; k <= len + 1; ++k) {
        size_t f = k <= len ? k : 1, step = k <= len ? len : 1; /* split after byte k (k == len: whole), bytewise */
        decode_pieces(in, len, consume_trailer, f, step, &r);
        ck_assert_msg(r.status == status, "%.200s (pieces of %zu then %zu): status %d, expected %d", in, f, step, r.status, status);
        if (status == 0) {
            ck_assert_msg(r.outlen == strlen(out) && memcmp(r.out, out, r.outlen) == 0, "%.200s (%zu/%zu): decoded %.*s", in, f,
                          step, (int)r.outlen, r.out);
            ck_assert_msg(r.restlen == strlen(rest) && memcmp(r.rest, rest, r.restlen) == 0, "%.200s (%zu/%zu): rest %.*s", in, f,
                          step, (int)r.restlen, r.rest);
        }
    }
}

static void expect_body(const char *in, const char *out)
{
    expect(in, 1, 0, out, "");
}

static void expect_error(const char *in)
{
    expect(in, 1, -1, NULL, NULL);
}

/* ---- valid bodies ------------------------------------------------------------------------------------------------------- */

START_TEST(test_single_and_multi_chunk)
{
    expect_body("5\r\nhello\r\n0\r\n\r\n", "hello");
    expect_body("0\r\n\r\n", "");
    expect_body("000\r\n\r\n", "");
    expect_body("5\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", "hello 0123456789abcdefghij");
    expect_body("00005\r\nhello\r\n0\r\n\r\n", "hello");
    expect_body("3\r\n\r\n\n\r\n0\r\n\r\n", "\r\n\n"); /* data is data, CR and LF included */
}
END_TEST

START_TEST(test_extensions)
{
    expect_body("5;a\r\nhello\r\n0\r\n\r\n", "hello");
    expect_body("5;a=b\r\nhello\r\n0;last=1\r\n\r\n", "hello");
    expect_body("5 ;a\r\nhello\r\n0\r\n\r\n", "hello");
    expect_body("5\t; a = b ;c;d=\"quoted \\\" value;\"\r\nhello\r\n0\r\n\r\n", "hello");
    expect_body("5;a=\"\"\r\nhello\r\n0\r\n\r\n", "hello");
    expect_body("5;a=\"x\" ;b\r\nhello\r\n0\r\n\r\n", "hello");
    expect_body("5;name!#$%&'*+-.^_`|~=token!#$%&'*+-.^_`|~\r\nhello\r\n0\r\n\r\n", "hello");
}
END_TEST

START_TEST(test_trailers)
{
    expect_body("5\r\nhello\r\n0\r\nX-Sum: abc\r\nEmpty:\r\nY:\tv  w \r\n\r\n", "hello");
    /* without consume_trailer the body ends after the last chunk's line: the trailers are what follows */
    expect("5\r\nhello\r\n0\r\nX-Sum: abc\r\n\r\n", 0, 0, "hello", "X-Sum: abc\r\n\r\n");
    expect("0\r\n\r\n", 0, 0, "", "\r\n");
}
END_TEST

START_TEST(test_bytes_after_the_body)
{
    expect("3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n", 1, 0, "abc", "GET / HTTP/1.1\r\n\r\n");
    expect("0\r\nT: v\r\n\r\n0\r\n\r\n", 1, 0, "", "0\r\n\r\n");

    /* the bytes after the body are moved next to the decoded data, and the return value counts them */
    char buf[] = "3\r\nabc\r\n0\r\n\r\nnext";
    struct phr_chunked_decoder d;
    memset(&d, 0, sizeof(d));
    d.consume_trailer = 1;
    size_t sz = strlen(buf);
    ck_assert_int_eq(phr_decode_chunked(&d, buf, &sz), 4);
    ck_assert_uint_eq(sz, 3);
    ck_assert(memcmp(buf, "abcnext", 7) == 0);
    /* once complete, anything else given is not body */
    char more[] = "xyz";
    sz = 3;
    ck_assert_int_eq(phr_decode_chunked(&d, more, &sz), 3);
    ck_assert_uint_eq(sz, 0);
}
END_TEST

START_TEST(test_incomplete)
{
    expect("5\r\nhel", 1, -2, NULL, NULL);
    expect("5\r\nhello\r\n0\r\n", 1, -2, NULL, NULL);
    expect("5\r\nhello\r\n0\r\nX: y\r\n", 1, -2, NULL, NULL);
    expect("5;a=\"b", 1, -2, NULL, NULL);

    static result_t r;
    decode_pieces("5\r\nhe", 5, 1, 5, 5, &r);
    ck_assert_int_eq(r.status, -2);
    ck_assert_uint_eq(r.outlen, 2);
    ck_assert_int_eq(r.in_data_after, 1);
    decode_pieces("5\r\nhello", 8, 1, 8, 8, &r); /* the data is complete, its CRLF is not: no longer in data */
    ck_assert_int_eq(r.in_data_after, 0);
    decode_pieces("5\r\nhello\r\n", 10, 1, 10, 10, &r);
    ck_assert_int_eq(r.in_data_after, 0);
}
END_TEST

/* ---- malformed bodies --------------------------------------------------------------------------------------------------- */

START_TEST(test_junk_in_the_size)
{
    expect_error("0x5\r\nhello\r\n0\r\n\r\n");
    expect_error("5 5\r\nhello\r\n0\r\n\r\n");
    expect_error("5xyz\r\nhello\r\n0\r\n\r\n");
    expect_error("zz\r\nhello\r\n0\r\n\r\n");
    expect_error("-5\r\nhello\r\n0\r\n\r\n");
    expect_error("+5\r\nhello\r\n0\r\n\r\n");
    expect_error(" 5\r\nhello\r\n0\r\n\r\n");
    expect_error("5 \r\nhello\r\n0\r\n\r\n"); /* BWS only before ';' */
    expect_error("\r\nhello\r\n0\r\n\r\n");
    expect_error(";a\r\nhello\r\n0\r\n\r\n");
    expect_error("0x0\r\n\r\n");
    expect_error("0 0\r\n\r\n");
}
END_TEST

START_TEST(test_bare_cr_and_lf)
{
    expect_error("5\rhello\r\n0\r\n\r\n");
    expect_error("5\nhello\r\n0\r\n\r\n");
    expect_error("5;a\nhello\r\n0\r\n\r\n");
    expect_error("5;a=b\rhello\r\n0\r\n\r\n");
    expect_error("5\r\nhello\n0\r\n\r\n");
    expect_error("5\r\nhello\r0\r\n\r\n");
    expect_error("5\r\nhello\r\n0\n\r\n");
    expect_error("5\r\nhello\r\n0\r\n\n");
    expect_error("5\r\nhello\r\n0\r\n\r\r");
    expect_error("5\r\nhello\r\n0\r\nX: a\nY: b\r\n\r\n");
    expect_error("5\r\nhello\r\n0\r\nX: a\rY: b\r\n\r\n");
}
END_TEST

START_TEST(test_bad_extensions)
{
    expect_error("5;\r\nhello\r\n0\r\n\r\n");
    expect_error("5;;a\r\nhello\r\n0\r\n\r\n");
    expect_error("5;a=\r\nhello\r\n0\r\n\r\n");
    expect_error("5;a b\r\nhello\r\n0\r\n\r\n");
    expect_error("5;a=b c\r\nhello\r\n0\r\n\r\n");
    expect_error("5;a=b \r\nhello\r\n0\r\n\r\n"); /* BWS only before ';' */
    expect_error("5;a \r\nhello\r\n0\r\n\r\n");
    expect_error("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n");
    expect_error("5;a=\"x\r\nhello\r\n0\r\n\r\n");
    expect_error("5;a=\"x\x01\"\r\nhello\r\n0\r\n\r\n");
    expect_error("5;a=b=c\r\nhello\r\n0\r\n\r\n");
    expect_error("5;(a)\r\nhello\r\n0\r\n\r\n");
    expect_error("5;a=@\r\nhello\r\n0\r\n\r\n");
}
END_TEST

START_TEST(test_bad_data_framing)
{
    expect_error("3\r\nhello\r\n0\r\n\r\n"); /* size too small: "lo" where CRLF must be */
    expect_error("5\r\nhelloXX0\r\n\r\n");
    expect_error("5\r\nhello0\r\n\r\n");
    expect_error("5\r\nhello\r\n\r\n");
}
END_TEST

START_TEST(test_bad_trailers)
{
    expect_error("0\r\n folded\r\n\r\n");
    expect_error("0\r\nX: a\r\n\tfolded\r\n\r\n");
    expect_error("0\r\nno-colon\r\n\r\n");
    expect_error("0\r\n: no name\r\n\r\n");
    expect_error("0\r\nX : space before the colon\r\n\r\n");
    expect_error("0\r\nX: a\x01\r\n\r\n");
}
END_TEST

START_TEST(test_errors_stay)
{
    struct phr_chunked_decoder d;
    memset(&d, 0, sizeof(d));
    d.consume_trailer = 1;
    char bad[] = "5x\r\n", good[] = "5\r\nhello\r\n0\r\n\r\n";
    size_t sz = strlen(bad);
    ck_assert_int_eq(phr_decode_chunked(&d, bad, &sz), -1);
    sz = strlen(good);
    ck_assert_int_eq(phr_decode_chunked(&d, good, &sz), -1);
}
END_TEST

/* ---- limits ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_size_digits)
{
    expect_error("10000000000000000\r\n");      /* 17 digits: 2^64 */
    expect_error("00000000000000005\r\nhello"); /* 17 digits, even with leading zeros */
    expect_error("ffffffffffffffffff\r\nhello\r\n0\r\n\r\n");

    /* 16 digits: the largest size_t, then waiting for that much data */
    struct phr_chunked_decoder d;
    memset(&d, 0, sizeof(d));
    char line[] = "ffffffffffffffff\r\nab";
    size_t sz = strlen(line);
    ck_assert_int_eq(phr_decode_chunked(&d, line, &sz), -2);
    ck_assert_uint_eq(sz, 2);
    ck_assert_uint_eq(d.bytes_left_in_chunk, SIZE_MAX - 2);
    ck_assert_int_eq(phr_decode_chunked_is_in_data(&d), 1);
}
END_TEST

START_TEST(test_chunk_line_limit)
{
    static char in[1024];
    /* "5;" + a name, up to the CR: HY_GUARD_CHUNK_LINE_MAX bytes with the CR counted */
    size_t name = HY_GUARD_CHUNK_LINE_MAX - 3;
    memcpy(in, "5;", 2);
    memset(in + 2, 'a', name);
    strcpy(in + 2 + name, "\r\nhello\r\n0\r\n\r\n");
    expect_body(in, "hello");
    memset(in + 2, 'a', name + 1);
    strcpy(in + 3 + name, "\r\nhello\r\n0\r\n\r\n");
    expect_error(in);
}
END_TEST

START_TEST(test_trailer_limit)
{
    static char in[HY_GUARD_TRAILERS_MAX + 64];
    /* "0\r\n", then "X:" + value + "\r\n" and "\r\n": HY_GUARD_TRAILERS_MAX bytes of trailer section */
    size_t value = HY_GUARD_TRAILERS_MAX - 6;
    strcpy(in, "0\r\nX:");
    memset(in + 5, 'v', value);
    strcpy(in + 5 + value, "\r\n\r\n");
    expect_body(in, "");
    memset(in + 5, 'v', value + 1);
    strcpy(in + 6 + value, "\r\n\r\n");
    expect_error(in);
}
END_TEST

/* ---- HTTP/2 frames ------------------------------------------------------------------------------------------------------ */

/* a frame header (9 bytes) and `len` payload bytes of 'x' in `out`; returns the frame's size */
static size_t make_frame(uint8_t *out, size_t len, uint8_t type, uint8_t flags, uint32_t stream_id)
{
    out[0] = (uint8_t)(len >> 16);
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)len;
    out[3] = type;
    out[4] = flags;
    out[5] = (uint8_t)(stream_id >> 24);
    out[6] = (uint8_t)(stream_id >> 16);
    out[7] = (uint8_t)(stream_id >> 8);
    out[8] = (uint8_t)stream_id;
    memset(out + 9, 'x', len);
    return 9 + len;
}

static ssize_t decode(size_t len, uint8_t type, uint8_t flags, const char **err_desc, h2o_http2_frame_t *frame)
{
    static uint8_t buf[9 + 20000];
    size_t n = make_frame(buf, len, type, flags, 1);
    *err_desc = NULL;
    return h2o_http2_decode_frame(frame, buf, n, &H2O_HTTP2_SETTINGS_HOST, err_desc);
}

START_TEST(test_empty_continuation_refused)
{
    h2o_http2_frame_t f;
    const char *err;
    ck_assert_int_eq(decode(0, HY_H2_FRAME_TYPE_CONTINUATION, 0, &err, &f), H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM);
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(err, "empty CONTINUATION frame without END_HEADERS");
    ck_assert_int_eq(decode(0, HY_H2_FRAME_TYPE_CONTINUATION, 0x1 | 0x8, &err, &f), H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM);
}
END_TEST

START_TEST(test_other_frames_pass)
{
    h2o_http2_frame_t f;
    const char *err;
    /* an empty CONTINUATION that ends the block, a non-empty one, and other frame types: libh2o's answer */
    ck_assert_int_eq(decode(0, HY_H2_FRAME_TYPE_CONTINUATION, HY_H2_FRAME_FLAG_END_HEADERS, &err, &f), 9);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(decode(1, HY_H2_FRAME_TYPE_CONTINUATION, 0, &err, &f), 10);
    ck_assert_uint_eq(f.length, 1);
    ck_assert_uint_eq(f.type, HY_H2_FRAME_TYPE_CONTINUATION);
    ck_assert_uint_eq(f.stream_id, 1);
    ck_assert_ptr_null(err);
    ck_assert_int_eq(decode(0, 1 /* HEADERS */, 0, &err, &f), 9);
    ck_assert_int_eq(decode(0, 0 /* DATA */, 0, &err, &f), 9);
    ck_assert_int_eq(decode(100, 1, 0x4, &err, &f), 109);
    /* libh2o's own errors pass through */
    ck_assert_int_eq(decode(16385, HY_H2_FRAME_TYPE_CONTINUATION, 0, &err, &f), H2O_HTTP2_ERROR_FRAME_SIZE);
    static const uint8_t partial[5] = {0};
    ck_assert_int_eq(h2o_http2_decode_frame(&f, partial, sizeof(partial), &H2O_HTTP2_SETTINGS_HOST, &err),
                     H2O_HTTP2_ERROR_INCOMPLETE);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------------------------------------- */

static Suite *make_guard_suite(void)
{
    Suite *s = suite_create("guard");

    TCase *tc = tcase_create("chunked");
    tcase_add_test(tc, test_single_and_multi_chunk);
    tcase_add_test(tc, test_extensions);
    tcase_add_test(tc, test_trailers);
    tcase_add_test(tc, test_bytes_after_the_body);
    tcase_add_test(tc, test_incomplete);
    suite_add_tcase(s, tc);

    tc = tcase_create("chunked errors");
    tcase_add_test(tc, test_junk_in_the_size);
    tcase_add_test(tc, test_bare_cr_and_lf);
    tcase_add_test(tc, test_bad_extensions);
    tcase_add_test(tc, test_bad_data_framing);
    tcase_add_test(tc, test_bad_trailers);
    tcase_add_test(tc, test_errors_stay);
    suite_add_tcase(s, tc);

    tc = tcase_create("chunked limits");
    tcase_add_test(tc, test_size_digits);
    tcase_add_test(tc, test_chunk_line_limit);
    tcase_add_test(tc, test_trailer_limit);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("http2 frames");
    tcase_add_test(tc, test_empty_continuation_refused);
    tcase_add_test(tc, test_other_frames_pass);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(make_guard_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
