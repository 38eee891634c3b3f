/* check_cpus.c: unit tests of the CPU count (app/cpus.c): cgroup v2 cpu.max parsing and the cgroup walk. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "config.h"

/* ---- cpu.max --------------------------------------------------------------------------------------------------------- */

START_TEST(test_cpu_max_unlimited)
{
    ck_assert_uint_eq(hy_cpu_max_parse("max 100000\n"), 0);
    ck_assert_uint_eq(hy_cpu_max_parse("max 100000"), 0);
    ck_assert_uint_eq(hy_cpu_max_parse("max"), 0);
}
END_TEST

START_TEST(test_cpu_max_quota)
{
    ck_assert_uint_eq(hy_cpu_max_parse("100000 100000\n"), 1);
    ck_assert_uint_eq(hy_cpu_max_parse("200000 100000\n"), 2);
    ck_assert_uint_eq(hy_cpu_max_parse("150000 100000\n"), 2); /* 1.5 CPUs round up */
    ck_assert_uint_eq(hy_cpu_max_parse("50000 100000\n"), 1);  /* half a CPU is still one thread */
    ck_assert_uint_eq(hy_cpu_max_parse("1000 100000"), 1);
    ck_assert_uint_eq(hy_cpu_max_parse("400000 100000"), 4);
    ck_assert_uint_eq(hy_cpu_max_parse("400001 100000"), 5);
    ck_assert_uint_eq(hy_cpu_max_parse("25000 50000\n"), 1);
    ck_assert_uint_eq(hy_cpu_max_parse("300000  100000 \n"), 3);
}
END_TEST

START_TEST(test_cpu_max_malformed)
{
    static const char *const bad[] = {
        "",
        "\n",
        "100000",
        "100000\n",
        "abc 100000",
        "100000 abc",
        "100000 0",
        "0 100000",
        "-1 100000",
        "100000 100000 5",
        "1.5 1",
        " 100000 100000",
        "99999999999999999999 100000",
        "100000 99999999999999999999",
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        ck_assert_msg(hy_cpu_max_parse(bad[i]) == 0, "\"%s\" should give 0", bad[i]);
    ck_assert_uint_eq(hy_cpu_max_parse(NULL), 0);
}
END_TEST

/* ---- the cgroup walk, on a fake /proc/self/cgroup and /sys/fs/cgroup ------------------------------------------------- */

static char tmpdir[64];

static void write_file(const char *rel, const char *contents)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs(contents, fp);
    fclose(fp);
}

static void make_dir(const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    ck_assert_int_eq(mkdir(path, 0700), 0);
}

static void setup_tree(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_cpus.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    make_dir("cg");
    make_dir("cg/kubepods");
    make_dir("cg/kubepods/pod1");
    make_dir("cg/kubepods/pod1/app");
}

static void teardown_tree(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static unsigned limit(void)
{
    char proc[512], root[512];
    snprintf(proc, sizeof(proc), "%s/cgroup", tmpdir);
    snprintf(root, sizeof(root), "%s/cg", tmpdir);
    return hy_cpu_cgroup_limit(proc, root);
}

START_TEST(test_cgroup_smallest_limit_wins)
{
    write_file("cgroup", "0::/kubepods/pod1/app\n");
    write_file("cg/kubepods/cpu.max", "800000 100000\n");
    write_file("cg/kubepods/pod1/cpu.max", "250000 100000\n");
    write_file("cg/kubepods/pod1/app/cpu.max", "max 100000\n");
    ck_assert_uint_eq(limit(), 3);
}
END_TEST

START_TEST(test_cgroup_leaf_limit)
{
    write_file("cgroup", "0::/kubepods/pod1/app\n");
    write_file("cg/kubepods/pod1/app/cpu.max", "100000 100000\n");
    write_file("cg/kubepods/cpu.max", "800000 100000\n");
    ck_assert_uint_eq(limit(), 1);
}
END_TEST

START_TEST(test_cgroup_no_limit)
{
    write_file("cgroup", "0::/kubepods/pod1/app\n");
    write_file("cg/kubepods/pod1/app/cpu.max", "max 100000\n");
    ck_assert_uint_eq(limit(), 0);
}
END_TEST

START_TEST(test_cgroup_namespace_root)
{
    /* inside a cgroup namespace the process sees "0::/" and the limit sits at the mount's root */
    write_file("cgroup", "0::/\n");
    write_file("cg/cpu.max", "200000 100000\n");
    ck_assert_uint_eq(limit(), 2);
}
END_TEST

START_TEST(test_cgroup_v1_lines_ignored)
{
    /* hybrid hosts list v1 controllers too; only the "0::" line counts; a path missing under the root walks up */
    write_file("cgroup", "12:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/elsewhere/abc\n");
    write_file("cg/cpu.max", "300000 100000\n");
    ck_assert_uint_eq(limit(), 3);
}
END_TEST

START_TEST(test_cgroup_missing_files)
{
    ck_assert_uint_eq(hy_cpu_cgroup_limit("/nonexistent/cgroup", "/nonexistent"), 0);
    write_file("cgroup", "0::/kubepods/pod1/app\n");
    ck_assert_uint_eq(limit(), 0);
}
END_TEST

START_TEST(test_cpu_count_positive)
{
    unsigned n = hy_cpu_count();
    ck_assert_uint_ge(n, 1);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0)
        ck_assert_uint_le(n, (unsigned long)online);
}
END_TEST

/* ---- suite ----------------------------------------------------------------------------------------------------------- */

Suite *make_cpus_suite(void)
{
    Suite *s = suite_create("cpus");
    TCase *tc;

    tc = tcase_create("cpu.max");
    tcase_add_test(tc, test_cpu_max_unlimited);
    tcase_add_test(tc, test_cpu_max_quota);
    tcase_add_test(tc, test_cpu_max_malformed);
    suite_add_tcase(s, tc);

    tc = tcase_create("cgroup walk");
    tcase_add_checked_fixture(tc, setup_tree, teardown_tree);
    tcase_add_test(tc, test_cgroup_smallest_limit_wins);
    tcase_add_test(tc, test_cgroup_leaf_limit);
    tcase_add_test(tc, test_cgroup_no_limit);
    tcase_add_test(tc, test_cgroup_namespace_root);
    tcase_add_test(tc, test_cgroup_v1_lines_ignored);
    tcase_add_test(tc, test_cgroup_missing_files);
    suite_add_tcase(s, tc);

    tc = tcase_create("count");
    tcase_add_test(tc, test_cpu_count_positive);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(make_cpus_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
