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

/* ---- the cgroup walk on the fixture trees of tests/fixtures/cgroup ------------------------------------------------- */

/* Each tree <name>/ holds a fake proc/self/cgroup and a fake sys/fs/cgroup with cpu.max files at several levels (see
 * tests/fixtures/cgroup/README.md). Paths are relative to the repository root, where ctest runs the unit tests. */
#define CG_FIXTURES "tests/fixtures/cgroup/"

static void require_fixtures(void)
{
    ck_assert_msg(access(CG_FIXTURES "quota_1_5/proc/self/cgroup", R_OK) == 0,
                  "%squota_1_5 is missing: run check_cpus from the repository root", CG_FIXTURES);
}

/* hy_cpu_cgroup_limit on tree `name`; `root_suffix` is appended to its sys/fs/cgroup (e.g. "/" to test trailing slashes). */
static unsigned tree_limit(const char *name, const char *root_suffix)
{
    char proc[512], root[512];
    require_fixtures();
    snprintf(proc, sizeof(proc), CG_FIXTURES "%s/proc/self/cgroup", name);
    snprintf(root, sizeof(root), CG_FIXTURES "%s/sys/fs/cgroup%s", name, root_suffix);
    return hy_cpu_cgroup_limit(proc, root);
}

static const struct {
    const char *tree;  /* directory under tests/fixtures/cgroup */
    unsigned expected; /* hy_cpu_cgroup_limit: 0 = no limit */
    const char *why;
} trees[] = {
    {"quota_1_5", 2, "150000 100000 on the container's cgroup: 1.5 CPUs round up"},
    {"quota_half", 1, "50000 100000: half a CPU is one thread"},
    {"unlimited", 0, "max 100000 at every level"},
    {"parent_stricter", 1, "the leaf allows 4, its parent 1: the parent wins"},
    {"grandparent_stricter", 2, "leaf max, parent 3.5, grandparent 1.2: the grandparent wins"},
    {"malformed", 3, "a malformed leaf and a malformed grandparent are ignored; the parent's 3 applies"},
    {"malformed_only", 0, "every cpu.max malformed (no period, period 0, empty, negative, a fraction): no limit"},
    {"hybrid", 2, "v1 controller lines are ignored, the 0:: line is followed (not the v1 path's decoy)"},
    {"namespace_root", 3, "\"0::/\" in a cgroup namespace: the mount root's cpu.max"},
    {"missing_leaf", 2, "the process's cgroup directory is absent: its parents still count"},
    {"dotdot", 0, "a path with /.. is treated as /: nothing above the root is read"},
    {"no_newline", 3, "files without a final newline"},
    {"v1_only", 0, "a cgroup v1 host (no 0:: line): v1 quota files are not read"},
    {"other_period", 2, "75000 50000: another period, 1.5 CPUs"},
};

START_TEST(test_fixture_tree)
{
    unsigned got = tree_limit(trees[_i].tree, "");
    ck_assert_msg(got == trees[_i].expected, "tree %s: got %u, expected %u (%s)", trees[_i].tree, got, trees[_i].expected,
                  trees[_i].why);
}
END_TEST

START_TEST(test_fixture_root_trailing_slashes)
{
    ck_assert_uint_eq(tree_limit("quota_1_5", "/"), 2);
    ck_assert_uint_eq(tree_limit("quota_1_5", "//"), 2);
    ck_assert_uint_eq(tree_limit("parent_stricter", "/"), 1);
    ck_assert_uint_eq(tree_limit("namespace_root", "/"), 3);
}
END_TEST

START_TEST(test_fixture_missing_proc_file)
{
    require_fixtures();
    ck_assert_uint_eq(hy_cpu_cgroup_limit(CG_FIXTURES "quota_1_5/proc/self/nonexistent", CG_FIXTURES "quota_1_5/sys/fs/cgroup"), 0);
    /* a root that does not exist: the walk finds no file */
    ck_assert_uint_eq(hy_cpu_cgroup_limit(CG_FIXTURES "quota_1_5/proc/self/cgroup", CG_FIXTURES "quota_1_5/nonexistent"), 0);
}
END_TEST

/* hy_cpu_max_parse on the contents of each fixture cpu.max file. */
static unsigned parse_file(const char *rel)
{
    char path[512], buf[256];
    require_fixtures();
    snprintf(path, sizeof(path), CG_FIXTURES "%s", rel);
    FILE *fp = fopen(path, "r");
    ck_assert_msg(fp != NULL, "cannot open %s", path);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return hy_cpu_max_parse(buf);
}

START_TEST(test_fixture_cpu_max_files)
{
    static const struct {
        const char *file;
        unsigned expected;
    } files[] = {
        {"quota_1_5/sys/fs/cgroup/kubepods.slice/kubepods-pod1.slice/cri-containerd-app.scope/cpu.max", 2},
        {"quota_1_5/sys/fs/cgroup/kubepods.slice/cpu.max", 0},
        {"quota_half/sys/fs/cgroup/kubepods/pod1/app/cpu.max", 1},
        {"unlimited/sys/fs/cgroup/kubepods/pod1/app/cpu.max", 0},
        {"parent_stricter/sys/fs/cgroup/kubepods/pod1/app/cpu.max", 4},
        {"parent_stricter/sys/fs/cgroup/kubepods/pod1/cpu.max", 1},
        {"parent_stricter/sys/fs/cgroup/kubepods/cpu.max", 8},
        {"grandparent_stricter/sys/fs/cgroup/kubepods/pod1/cpu.max", 4},
        {"grandparent_stricter/sys/fs/cgroup/kubepods/cpu.max", 2},
        {"malformed/sys/fs/cgroup/kubepods/pod1/app/cpu.max", 0},
        {"malformed/sys/fs/cgroup/kubepods/cpu.max", 0},
        {"malformed_only/sys/fs/cgroup/a/b/c/d/cpu.max", 0},
        {"malformed_only/sys/fs/cgroup/a/b/c/cpu.max", 0},
        {"malformed_only/sys/fs/cgroup/a/b/cpu.max", 0},
        {"malformed_only/sys/fs/cgroup/a/cpu.max", 0},
        {"malformed_only/sys/fs/cgroup/cpu.max", 0},
        {"no_newline/sys/fs/cgroup/a/b/cpu.max", 3},
        {"other_period/sys/fs/cgroup/app/cpu.max", 2},
    };
    for (size_t i = 0; i != sizeof(files) / sizeof(files[0]); ++i) {
        unsigned got = parse_file(files[i].file);
        ck_assert_msg(got == files[i].expected, "%s: got %u, expected %u", files[i].file, got, files[i].expected);
    }
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

    tc = tcase_create("cgroup fixture trees");
    tcase_add_loop_test(tc, test_fixture_tree, 0, (int)(sizeof(trees) / sizeof(trees[0])));
    tcase_add_test(tc, test_fixture_root_trailing_slashes);
    tcase_add_test(tc, test_fixture_missing_proc_file);
    tcase_add_test(tc, test_fixture_cpu_max_files);
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
