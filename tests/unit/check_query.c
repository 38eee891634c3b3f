/* check_query.c: unit tests of the pure query-string parser (app/query.c): lookup, decoding, NUL bytes, limits, and
 * equality with the old hy_query_get loop on every short query. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "query.h"
#include "../fuzz/query_ref.h"

/* ---- helpers ---------------------------------------------------------------------------------------------------------- */

#define S(lit) (lit), (sizeof(lit) - 1)

/* Asserts that `name` is in the query (`len` bytes) with the decoded value `want` (`wantlen` bytes), and that nothing
 * past the value's NUL was written. */
static void expect_value(const char *query, size_t len, const char *name, const char *want, size_t wantlen)
{
    char out[512];
    size_t outlen = 12345;
    ck_assert_uint_lt(len, sizeof(out) - 8);
    memset(out, 0x5a, sizeof(out));
    int ret = hy_query_find(query, len, name, out, len + 1, &outlen);
    ck_assert_msg(ret == 0, "\"%.*s\": \"%s\" not found", (int)len, query, name);
    ck_assert_uint_eq(outlen, wantlen);
    ck_assert_msg(memcmp(out, want, wantlen) == 0, "\"%.*s\": \"%s\" is \"%.*s\"", (int)len, query, name, (int)outlen, out);
    ck_assert_int_eq(out[outlen], '\0');
    for (size_t i = outlen + 1; i != sizeof(out); ++i)
        ck_assert_msg(out[i] == 0x5a, "byte %zu past the value was written", i);
}

#define EXPECT(query, name, want) expect_value(S(query), (name), S(want))

static void expect_absent(const char *query, size_t len, const char *name)
{
    char out[512];
    size_t outlen = 12345;
    memset(out, 0x5a, sizeof(out));
    ck_assert_int_eq(hy_query_find(query, len, name, out, len + 1, &outlen), -1);
    ck_assert_uint_eq(outlen, 0);
    ck_assert_int_eq(out[0], '\0');
}

#define ABSENT(query, name) expect_absent(S(query), (name))

/* ---- lookup ----------------------------------------------------------------------------------------------------------- */

START_TEST(test_present_absent)
{
    EXPECT("limit=10", "limit", "10");
    EXPECT("limit=10&after=42", "limit", "10");
    EXPECT("limit=10&after=42", "after", "42");
    EXPECT("a=1&b=2&c=3", "b", "2");
    ABSENT("limit=10&after=42", "before");
    ABSENT("", "a");
    ABSENT("ab=1", "a"); /* a key is compared whole, */
    ABSENT("a=1", "ab"); /* in both directions */
    ABSENT("A=1", "a");  /* and case-sensitively */
    ABSENT("xa=1&ax=2", "a");
    EXPECT("a=b=c", "a", "b=c"); /* the value runs to the next '&', '=' included */
    ABSENT("a=b=c", "b");

    size_t outlen = 7;
    char out[1];
    ck_assert_int_eq(hy_query_find(NULL, 0, "a", out, sizeof(out), &outlen), -1); /* no query at all */
    ck_assert_uint_eq(outlen, 0);
}
END_TEST

START_TEST(test_empty_values)
{
    EXPECT("a=&b=1", "a", "");
    EXPECT("a=&b=1", "b", "1");
    EXPECT("debug&a=1", "debug", ""); /* a key without '=' */
    EXPECT("a=1&debug", "debug", "");
    EXPECT("a=1&debug", "a", "1");
    EXPECT("a", "a", "");
    EXPECT("a=", "a", "");
}
END_TEST

START_TEST(test_repeated_keys)
{
    EXPECT("a=1&a=2", "a", "1");
    EXPECT("a&a=2", "a", ""); /* the first occurrence wins even when it has no value */
    EXPECT("a=&a=2", "a", "");
    EXPECT("b=0&a=first&b=1&a=second", "a", "first");
}
END_TEST

START_TEST(test_empty_keys)
{
    EXPECT("=x", "", "x");
    EXPECT("a=1&&b=2", "", ""); /* the empty parameter between "&&" */
    EXPECT("&a=1", "", "");     /* a leading '&' makes one too */
    EXPECT("&a=1", "a", "1");
    ABSENT("a=1&", ""); /* a trailing '&' does not */
    ABSENT("a=1", "");
    ABSENT("", "");
    ABSENT("a=1&b=2", "a=1"); /* a name with '=' or '&' never matches */
    ABSENT("a=1&b=2", "1&b");
}
END_TEST

/* ---- decoding --------------------------------------------------------------------------------------------------------- */

START_TEST(test_decoding)
{
    EXPECT("q=hello+world", "q", "hello world");
    EXPECT("q=a%20b", "q", "a b");
    EXPECT("q=%41%62%7e%7E", "q", "Ab~~"); /* either case of hex digits */
    EXPECT("q=%2B", "q", "+");             /* an encoded '+' is a plus, not a space */
    EXPECT("q=%26%3D", "q", "&=");         /* encoded separators are data */
    EXPECT("q=%26&r=1", "q", "&");
    EXPECT("q=caf%C3%A9", "q", "caf\xc3\xa9");
    EXPECT("q=%ff%FE", "q", "\xff\xfe"); /* any byte; UTF-8 is not checked */
    EXPECT("q=\xc3\xa9\x01#", "q", "\xc3\xa9\x01#");
    EXPECT("q=a%2Bb+c", "q", "a+b c");
}
END_TEST

START_TEST(test_keys_not_decoded)
{
    ABSENT("a%62=1", "ab");
    EXPECT("a%62=1", "a%62", "1");
    ABSENT("a+b=1", "a b");
    EXPECT("a+b=1", "a+b", "1");
}
END_TEST

START_TEST(test_malformed_escapes)
{
    EXPECT("q=%", "q", "%");
    EXPECT("q=%4", "q", "%4");
    EXPECT("q=100%", "q", "100%");
    EXPECT("q=%G1", "q", "%G1");
    EXPECT("q=%1G", "q", "%1G");
    EXPECT("q=%%41", "q", "%A");   /* the bad '%' is copied, the next escape still decodes */
    EXPECT("q=%+1", "q", "% 1");   /* and '+' after it is still a space */
    EXPECT("q=%4&r=1", "q", "%4"); /* an escape never reaches across '&' into the next parameter */
    EXPECT("q=%4&1=1", "q", "%4");
    EXPECT("q=%&", "q", "%");
    EXPECT("q=%%%", "q", "%%%");
}
END_TEST

/* ---- NUL bytes -------------------------------------------------------------------------------------------------------- */

START_TEST(test_nul_kept)
{
    /* "%00" decodes to a NUL that is kept; the length tells the caller, so nothing is silently cut at "10". */
    EXPECT("limit=10%00x", "limit", "10\0x");
    EXPECT("a=%00", "a", "\0");
    EXPECT("a=%00%00", "a", "\0\0");

    char out[64];
    size_t outlen;
    ck_assert_int_eq(hy_query_find(S("limit=10%00x"), "limit", out, sizeof(out), &outlen), 0);
    ck_assert_uint_eq(outlen, 4);
    ck_assert_uint_eq(strlen(out), 2);                /* as a C string it would look like "10", */
    ck_assert_ptr_nonnull(memchr(out, '\0', outlen)); /* which is how a caller must detect it */

    /* a raw NUL byte in the query is ordinary data too */
    EXPECT("a=x\0y&b=1", "a", "x\0y");
    ABSENT("a\0b=1", "a"); /* the key is the 3 bytes "a\0b", not "a" */
    EXPECT("a\0b=1&a=2", "a", "2");
}
END_TEST

/* ---- limits ----------------------------------------------------------------------------------------------------------- */

START_TEST(test_outsize)
{
    char out[16];
    size_t outlen = 99;

    memset(out, 0x5a, sizeof(out));
    ck_assert_int_eq(hy_query_find(S("a=12345"), "a", out, 7, &outlen), -1); /* needs len + 1 = 8 */
    ck_assert_uint_eq(outlen, 0);
    ck_assert_int_eq(out[0], '\0');
    for (size_t i = 1; i != sizeof(out); ++i)
        ck_assert_int_eq(out[i], 0x5a);

    outlen = 99;
    ck_assert_int_eq(hy_query_find(S("a=1"), "a", NULL, 0, &outlen), -1); /* outsize 0: out is never touched */
    ck_assert_uint_eq(outlen, 0);

    ck_assert_int_eq(hy_query_find(S("a=12345"), "a", out, 8, &outlen), 0);
    ck_assert_str_eq(out, "12345");
    ck_assert_int_eq(hy_query_find(S("a=1"), "a", out, SIZE_MAX, &outlen), 0); /* no overflow in len + 1 */
    ck_assert_str_eq(out, "1");
}
END_TEST

START_TEST(test_long_query)
{
    size_t n = 1u << 20;
    char *q = malloc(n), *out = malloc(n + 1);
    size_t outlen;
    ck_assert_ptr_nonnull(q);
    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i != n; ++i)
        q[i] = "x=&"[i % 3];
    memcpy(q + n - 6, "&z=%41", 6);
    ck_assert_int_eq(hy_query_find(q, n, "z", out, n + 1, &outlen), 0);
    ck_assert_uint_eq(outlen, 1);
    ck_assert_str_eq(out, "A");
    ck_assert_int_eq(hy_query_find(q, n, "y", out, n + 1, &outlen), -1);
    free(q);
    free(out);
}
END_TEST

/* ---- the old loop ----------------------------------------------------------------------------------------------------- */

/* Every query of up to 6 bytes over an alphabet of the bytes that matter is read as hy_query_get read it. (Check
 * reports to its parent on each assertion, so the loop counts mismatches and asserts once.) */
START_TEST(test_same_as_hy_query_get)
{
    static const char alphabet[] = {'a', 'b', '=', '&', '%', '4', '1', 'G', '+', '\0'};
    static const char *const names[] = {"a", "ab", "", "b", "a=", "%41"};
    enum { NA = sizeof(alphabet), MAXLEN = 6 };
    char q[MAXLEN], out[MAXLEN + 1], ref[MAXLEN + 1], first[128] = "";
    unsigned long checked = 0, mismatches = 0;

    for (size_t len = 0; len <= MAXLEN; ++len) {
        size_t total = 1;
        for (size_t i = 0; i != len; ++i)
            total *= NA;
        for (size_t k = 0; k != total; ++k) {
            size_t x = k;
            for (size_t i = 0; i != len; ++i, x /= NA)
                q[i] = alphabet[x % NA];
            for (size_t j = 0; j != sizeof(names) / sizeof(names[0]); ++j) {
                size_t outlen = 0, reflen = 0;
                int got = hy_query_find(q, len, names[j], out, len + 1, &outlen);
                int want = query_ref_find(q, len, names[j], ref, &reflen);
                if (got != want || (want == 0 && (outlen != reflen || memcmp(out, ref, reflen + 1) != 0))) {
                    if (mismatches++ == 0)
                        snprintf(first, sizeof(first), "query \"%.*s\" (%zu bytes), name \"%s\": %d, expected %d", (int)len, q, len,
                                 names[j], got, want);
                }
                ++checked;
            }
        }
    }
    ck_assert_msg(mismatches == 0, "%lu of %lu lookups differ, the first: %s", mismatches, checked, first);
    ck_assert_uint_gt(checked, 1000000);
}
END_TEST

/* ---- the suite -------------------------------------------------------------------------------------------------------- */

static Suite *make_query_suite(void)
{
    Suite *s = suite_create("query");

    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_present_absent);
    tcase_add_test(tc, test_empty_values);
    tcase_add_test(tc, test_repeated_keys);
    tcase_add_test(tc, test_empty_keys);
    suite_add_tcase(s, tc);

    tc = tcase_create("decoding");
    tcase_add_test(tc, test_decoding);
    tcase_add_test(tc, test_keys_not_decoded);
    tcase_add_test(tc, test_malformed_escapes);
    tcase_add_test(tc, test_nul_kept);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, test_outsize);
    tcase_add_test(tc, test_long_query);
    suite_add_tcase(s, tc);

    tc = tcase_create("compat");
    tcase_set_timeout(tc, 120); /* a few million lookups, slower under sanitizers or valgrind */
    tcase_add_test(tc, test_same_as_hy_query_get);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(make_query_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
