/* check_units.c: unit tests of the duration and size syntax (app/units.c). */

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include "config.h"

/* ---- durations ------------------------------------------------------------------------------------------------------- */

static uint64_t duration(const char *s)
{
    uint64_t ms = UINT64_MAX;
    ck_assert_msg(hy_parse_duration(s, &ms) == 0, "\"%s\" should parse", s);
    return ms;
}

START_TEST(test_duration_units)
{
    ck_assert_uint_eq(duration("250ms"), 250);
    ck_assert_uint_eq(duration("5s"), 5000);
    ck_assert_uint_eq(duration("2m"), 120000);
    ck_assert_uint_eq(duration("1h"), 3600000);
    ck_assert_uint_eq(duration("0"), 0);
    ck_assert_uint_eq(duration("0s"), 0);
    ck_assert_uint_eq(duration("0ms"), 0);
    ck_assert_uint_eq(duration("007s"), 7000);
}
END_TEST

START_TEST(test_duration_compounds)
{
    ck_assert_uint_eq(duration("1m30s"), 90000);
    ck_assert_uint_eq(duration("1h30m"), 5400000);
    ck_assert_uint_eq(duration("1h2m3s4ms"), 3723004);
    ck_assert_uint_eq(duration("1s500ms"), 1500);
    ck_assert_uint_eq(duration("90s"), 90000);
}
END_TEST

START_TEST(test_duration_bad)
{
    static const char *const bad[] = {
        "",                       /* empty */
        "5",                      /* no unit (only "0" may go without one) */
        "5x",                     /* unknown unit */
        "5S",                     /* units are lower-case */
        "-1s",                    /* no sign */
        "+1s",                    /* no sign */
        "1.5s",                   /* no fraction: write 1500ms */
        "1 s",                    /* no space */
        " 1s",                    /* no space */
        "1s ",                    /* no space */
        "s",                      /* no number */
        "30s1m",                  /* units must decrease */
        "1s1s",                   /* each unit once */
        "1m1m",                   /* each unit once */
        "1ms1s",                  /* units must decrease */
        "1d",                     /* no days */
        "00",                     /* "0" alone only */
        "18446744073709551616ms", /* 2^64 overflows the number */
        "18446744073709551615s",  /* overflows once multiplied */
        "5124095576031h",         /* overflows once multiplied */
        "5124095576030h26m",      /* overflows on the sum */
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        uint64_t ms = 12345;
        ck_assert_msg(hy_parse_duration(bad[i], &ms) == -1, "\"%s\" should be refused", bad[i]);
        ck_assert_uint_eq(ms, 12345);
    }
    uint64_t ms;
    ck_assert_int_eq(hy_parse_duration(NULL, &ms), -1);
}
END_TEST

START_TEST(test_duration_limits)
{
    ck_assert_uint_eq(duration("18446744073709551615ms"), UINT64_MAX);
    ck_assert_uint_eq(duration("5124095576030h"), UINT64_C(5124095576030) * 3600000);
    ck_assert_uint_eq(duration("5124095576030h25m"), UINT64_C(5124095576030) * 3600000 + 25 * 60000);
}
END_TEST

START_TEST(test_duration_format)
{
    char buf[32];
    ck_assert_str_eq(hy_format_duration(0, buf, sizeof(buf)), "0");
    ck_assert_str_eq(hy_format_duration(250, buf, sizeof(buf)), "250ms");
    ck_assert_str_eq(hy_format_duration(1500, buf, sizeof(buf)), "1500ms");
    ck_assert_str_eq(hy_format_duration(5000, buf, sizeof(buf)), "5s");
    ck_assert_str_eq(hy_format_duration(90000, buf, sizeof(buf)), "90s");
    ck_assert_str_eq(hy_format_duration(120000, buf, sizeof(buf)), "2m");
    ck_assert_str_eq(hy_format_duration(3600000, buf, sizeof(buf)), "1h");
    ck_assert_str_eq(hy_format_duration(5400000, buf, sizeof(buf)), "90m");
    /* round trips */
    static const uint64_t values[] = {0, 1, 999, 1000, 1001, 59000, 60000, 61000, 3599999, 3600000, 86400000, UINT64_MAX};
    for (size_t i = 0; i != sizeof(values) / sizeof(values[0]); ++i) {
        uint64_t back = 0;
        hy_format_duration(values[i], buf, sizeof(buf));
        ck_assert_msg(hy_parse_duration(buf, &back) == 0, "\"%s\" should parse", buf);
        ck_assert_uint_eq(back, values[i]);
    }
}
END_TEST

/* ---- sizes ----------------------------------------------------------------------------------------------------------- */

static uint64_t size(const char *s)
{
    uint64_t bytes = UINT64_MAX;
    ck_assert_msg(hy_parse_size(s, &bytes) == 0, "\"%s\" should parse", s);
    return bytes;
}

START_TEST(test_size_units)
{
    ck_assert_uint_eq(size("0"), 0);
    ck_assert_uint_eq(size("512"), 512);
    ck_assert_uint_eq(size("512B"), 512);
    ck_assert_uint_eq(size("64KiB"), 65536);
    ck_assert_uint_eq(size("1MiB"), 1048576);
    ck_assert_uint_eq(size("1GiB"), 1073741824);
    ck_assert_uint_eq(size("2TiB"), UINT64_C(2) << 40);
    ck_assert_uint_eq(size("10KB"), 10000);
    ck_assert_uint_eq(size("10MB"), 10000000);
    ck_assert_uint_eq(size("3GB"), 3000000000);
    ck_assert_uint_eq(size("1TB"), 1000000000000);
    ck_assert_uint_eq(size("18446744073709551615"), UINT64_MAX);
}
END_TEST

START_TEST(test_size_bad)
{
    static const char *const bad[] = {
        "",
        "KiB",
        "1kib",
        "1mb",
        "1 MiB",
        "1.5MiB",
        "-1",
        "+1",
        "1K",
        "1M",
        "1KiBB",
        "1iB",
        "1 ",
        " 1",
        "18446744073709551616", /* 2^64 */
        "16777216TiB",          /* 2^64 bytes */
        "18446744073709552KB",  /* overflows once multiplied */
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        uint64_t bytes = 12345;
        ck_assert_msg(hy_parse_size(bad[i], &bytes) == -1, "\"%s\" should be refused", bad[i]);
        ck_assert_uint_eq(bytes, 12345);
    }
}
END_TEST

START_TEST(test_size_format)
{
    char buf[32];
    ck_assert_str_eq(hy_format_size(0, buf, sizeof(buf)), "0");
    ck_assert_str_eq(hy_format_size(512, buf, sizeof(buf)), "512");
    ck_assert_str_eq(hy_format_size(1024, buf, sizeof(buf)), "1KiB");
    ck_assert_str_eq(hy_format_size(65536, buf, sizeof(buf)), "64KiB");
    ck_assert_str_eq(hy_format_size(1048576, buf, sizeof(buf)), "1MiB");
    ck_assert_str_eq(hy_format_size(1073741824, buf, sizeof(buf)), "1GiB");
    ck_assert_str_eq(hy_format_size(1000, buf, sizeof(buf)), "1KB");
    ck_assert_str_eq(hy_format_size(1000000, buf, sizeof(buf)), "1MB");
    ck_assert_str_eq(hy_format_size(1536, buf, sizeof(buf)), "1536");
    ck_assert_str_eq(hy_format_size(1500, buf, sizeof(buf)), "1500");
    ck_assert_str_eq(hy_format_size(1024000, buf, sizeof(buf)), "1024KB"); /* shorter than "1000KiB" */
    static const uint64_t values[] = {0, 1, 1000, 1023, 1024, 1536, 4096, 1000000, 1048576, 123456789, UINT64_MAX};
    for (size_t i = 0; i != sizeof(values) / sizeof(values[0]); ++i) {
        uint64_t back = 0;
        hy_format_size(values[i], buf, sizeof(buf));
        ck_assert_msg(hy_parse_size(buf, &back) == 0, "\"%s\" should parse", buf);
        ck_assert_uint_eq(back, values[i]);
    }
}
END_TEST

/* ---- suite ----------------------------------------------------------------------------------------------------------- */

Suite *make_units_suite(void)
{
    Suite *s = suite_create("units");
    TCase *tc;

    tc = tcase_create("durations");
    tcase_add_test(tc, test_duration_units);
    tcase_add_test(tc, test_duration_compounds);
    tcase_add_test(tc, test_duration_limits);
    suite_add_tcase(s, tc);

    tc = tcase_create("duration errors");
    tcase_add_test(tc, test_duration_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("sizes");
    tcase_add_test(tc, test_size_units);
    suite_add_tcase(s, tc);

    tc = tcase_create("size errors");
    tcase_add_test(tc, test_size_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("formatting");
    tcase_add_test(tc, test_duration_format);
    tcase_add_test(tc, test_size_format);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(make_units_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
