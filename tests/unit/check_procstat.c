/* check_procstat.c: unit tests of the process metrics (app/procstat.c): /proc text parsing and a live read. */

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "procstat.h"

/* ---- /proc/self/stat -------------------------------------------------------------------------------------------------- */

/* A real-looking line whose comm holds spaces and parentheses; fields 14, 15, 22, 23, 24 are 250 125 98765 123456789
 * 2048, and field 25 (rsslim) is the largest unsigned long. */
static const char stat_line[] = "1234 (a b) c) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 125 0 0 20 0 4 0 98765 123456789 2048 "
                                "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 3 0 0 0 0 0\n";

START_TEST(test_stat_comm_with_parentheses)
{
    hy_proc_stat_fields_t f;
    ck_assert_int_eq(hy_procstat_parse_stat(stat_line, &f), 0);
    ck_assert_uint_eq(f.utime, 250);
    ck_assert_uint_eq(f.stime, 125);
    ck_assert_uint_eq(f.starttime, 98765);
    ck_assert_uint_eq(f.vsize, 123456789);
    ck_assert_uint_eq(f.rss, 2048);
}
END_TEST

START_TEST(test_stat_plain_and_truncated)
{
    hy_proc_stat_fields_t f;
    /* exactly 24 fields, no newline, a comm that is ")" */
    ck_assert_int_eq(hy_procstat_parse_stat("1 ()) R 0 1 1 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 9 10 11", &f), 0);
    ck_assert_uint_eq(f.utime, 7);
    ck_assert_uint_eq(f.stime, 8);
    ck_assert_uint_eq(f.starttime, 9);
    ck_assert_uint_eq(f.vsize, 10);
    ck_assert_uint_eq(f.rss, 11);
}
END_TEST

START_TEST(test_stat_malformed)
{
    static const char *const bad[] = {
        "",
        "1234",
        "1234 (comm S 1 2 3",                                                     /* no ')' */
        "1234 comm) S 1 1234 1234 0 -1 0 0 0 0 0 250 125 0 0 20 0 4 0 98765 1 2", /* no '(' */
        "1234 (comm)S 1 1234 1234 0 -1 0 0 0 0 0 250 125 0 0 20 0 4 0 98765 1 2", /* no space after ')' */
        "1234 (comm) S 1 1234 1234 0 -1 0 0 0 0 0 250 125 0 0 20 0 4 0 98765 1",  /* 23 fields */
        "1234 (comm) S 1 1234 1234 0 -1 0 0 0 0 0 x 125 0 0 20 0 4 0 98765 1 2",  /* utime not a number */
        "1234 (comm) S 1 1234 1234 0 -1 0 0 0 0 0 -5 125 0 0 20 0 4 0 98765 1 2", /* negative */
        "1234 (comm) S 1 1234 1234 0 -1 0 0 0 0 0 250 125 0 0 20 0 4 0 98765 1 2x",
        "1234 (comm) S 1 1234 1234 0 -1 0 0 0 0 0 99999999999999999999 125 0 0 20 0 4 0 98765 1 2", /* overflows */
        "1234 (comm) S 1 1234 1234 0 -1 0 0 0 0 0 250 125 0 0 20 0 4 0 98765 1\n2",                 /* cut by a newline */
    };
    hy_proc_stat_fields_t f;
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        ck_assert_msg(hy_procstat_parse_stat(bad[i], &f) == -1, "\"%s\" should not parse", bad[i]);
    ck_assert_int_eq(hy_procstat_parse_stat(NULL, &f), -1);
}
END_TEST

/* ---- /proc/stat ------------------------------------------------------------------------------------------------------- */

START_TEST(test_btime)
{
    static const char proc_stat[] = "cpu  10132153 290696 3084719 46828483 16683 0 25195 0 0 0\n"
                                    "cpu0 1393280 32966 572056 13343292 6130 0 17875 0 0 0\n"
                                    "intr 114930548 113199788 3 0 5 263 0 4 [... many more ...]\n"
                                    "ctxt 1990473\n"
                                    "btime 1062191376\n"
                                    "processes 2915\n"
                                    "procs_running 1\n";
    uint64_t btime = 0;
    ck_assert_int_eq(hy_procstat_parse_btime(proc_stat, &btime), 0);
    ck_assert_uint_eq(btime, 1062191376);
    ck_assert_int_eq(hy_procstat_parse_btime("btime 5", &btime), 0); /* first line, no newline */
    ck_assert_uint_eq(btime, 5);
    ck_assert_int_eq(hy_procstat_parse_btime("ctxt 1\nbtime 7 \n", &btime), 0);
    ck_assert_uint_eq(btime, 7);
}
END_TEST

START_TEST(test_btime_missing_or_malformed)
{
    static const char *const bad[] = {
        "", "cpu 1 2 3\n", "btimex 5\n", "xbtime 5\n", "cpu 1 btime 5\n", "btime\n", "btime x\n", "btime 5x\n", "btime -5\n",
    };
    uint64_t btime;
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        ck_assert_msg(hy_procstat_parse_btime(bad[i], &btime) == -1, "\"%s\" should not parse", bad[i]);
    ck_assert_int_eq(hy_procstat_parse_btime(NULL, &btime), -1);
}
END_TEST

START_TEST(test_from_fields)
{
    hy_proc_stat_fields_t f;
    ck_assert_int_eq(hy_procstat_parse_stat(stat_line, &f), 0);
    hy_procstat_t ps = {0};
    hy_procstat_from_fields(&f, 1700000000, 100, 4096, &ps);
    ck_assert_uint_eq(ps.valid, HY_PROCSTAT_CPU | HY_PROCSTAT_MEMORY | HY_PROCSTAT_START_TIME);
    ck_assert_double_eq(ps.cpu_seconds, 3.75);
    ck_assert_double_eq(ps.resident_bytes, 2048.0 * 4096);
    ck_assert_double_eq(ps.virtual_bytes, 123456789);
    ck_assert_double_eq_tol(ps.start_time, 1700000987.65, 1e-6);
}
END_TEST

/* ---- the live process ------------------------------------------------------------------------------------------------- */

START_TEST(test_live_read)
{
    hy_procstat_t ps;
    ck_assert_int_eq(hy_procstat_read(&ps), 0);
    ck_assert_uint_eq(ps.valid, HY_PROCSTAT_ALL);
    ck_assert(ps.resident_bytes > 0);
    ck_assert(ps.virtual_bytes >= ps.resident_bytes);
    ck_assert(ps.open_fds >= 3); /* stdin, stdout, stderr (and the directory being listed) */
    ck_assert(ps.max_fds >= ps.open_fds);
    ck_assert(ps.cpu_seconds >= 0);
    double now = (double)time(NULL);
    ck_assert_msg(ps.start_time > 1e9 && ps.start_time <= now + 1, "start time %f, now %f", ps.start_time, now);
}
END_TEST

START_TEST(test_collector_output)
{
    hy_metrics_t *m = hy_metrics_create(1, NULL, 0, NULL, 0);
    hy_metrics_add_collector(m, hy_procstat_collect, NULL);
    char *text = hy_metrics_render(m, NULL);
    static const char *const lines[] = {
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ",
        "# TYPE process_open_fds gauge\nprocess_open_fds ",
        "# TYPE process_max_fds gauge\nprocess_max_fds ",
        "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes ",
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes ",
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds ",
    };
    for (size_t i = 0; i != sizeof(lines) / sizeof(lines[0]); ++i)
        ck_assert_msg(strstr(text, lines[i]) != NULL, "no \"%s\" in:\n%s", lines[i], text);
    const char *rss = strstr(text, "\nprocess_resident_memory_bytes ");
    ck_assert(strtod(rss + 31, NULL) > 0);
    free(text);
    hy_metrics_free(m);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------------------------------------ */

Suite *make_procstat_suite(void)
{
    Suite *s = suite_create("procstat");
    TCase *tc;

    tc = tcase_create("stat parsing");
    tcase_add_test(tc, test_stat_comm_with_parentheses);
    tcase_add_test(tc, test_stat_plain_and_truncated);
    tcase_add_test(tc, test_stat_malformed);
    tcase_add_test(tc, test_btime);
    tcase_add_test(tc, test_btime_missing_or_malformed);
    tcase_add_test(tc, test_from_fields);
    suite_add_tcase(s, tc);

    tc = tcase_create("live");
    tcase_add_test(tc, test_live_read);
    tcase_add_test(tc, test_collector_output);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(make_procstat_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
