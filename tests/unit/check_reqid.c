/* check_reqid.c: unit tests of request ids: the X-Request-Id sanity rule, the generator, traceparent (app/reqid.c). */

#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "reqid.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- incoming ids ------------------------------------------------------------------------------------------------------ */

START_TEST(test_sane_accepts)
{
    ck_assert_int_eq(hy_reqid_is_sane(S("a")), 1);
    ck_assert_int_eq(hy_reqid_is_sane(S("f47ac10b-58cc-4372-a567-0e02b2c3d479")), 1);
    ck_assert_int_eq(hy_reqid_is_sane(S("!~\"\\{}[]<>=;:@#$%^&*()_+|`'")), 1); /* every printable is fine; logs escape */

    char buf[HY_REQID_MAX + 1];
    memset(buf, 'x', sizeof(buf));
    ck_assert_int_eq(hy_reqid_is_sane(buf, HY_REQID_MAX), 1);
}
END_TEST

START_TEST(test_sane_refuses)
{
    ck_assert_int_eq(hy_reqid_is_sane(NULL, 0), 0);
    ck_assert_int_eq(hy_reqid_is_sane(S("")), 0);
    ck_assert_int_eq(hy_reqid_is_sane(S("abc def")), 0); /* space */
    ck_assert_int_eq(hy_reqid_is_sane(S(" abc")), 0);
    ck_assert_int_eq(hy_reqid_is_sane(S("abc\tdef")), 0);
    ck_assert_int_eq(hy_reqid_is_sane(S("abc\r\nX-Injected: 1")), 0);
    ck_assert_int_eq(hy_reqid_is_sane(S("abc\x1b[31m")), 0);
    ck_assert_int_eq(hy_reqid_is_sane(S("abc\x7f")), 0);      /* DEL */
    ck_assert_int_eq(hy_reqid_is_sane(S("caf\xc3\xa9")), 0);  /* UTF-8 é */
    ck_assert_int_eq(hy_reqid_is_sane(S("\xe2\x80\xa8")), 0); /* U+2028 */
    ck_assert_int_eq(hy_reqid_is_sane(S("\xff\xfe")), 0);     /* not UTF-8 at all */
    ck_assert_int_eq(hy_reqid_is_sane("ab\0cd", 5), 0);       /* NUL inside */

    char buf[HY_REQID_MAX + 1];
    memset(buf, 'x', sizeof(buf));
    ck_assert_int_eq(hy_reqid_is_sane(buf, HY_REQID_MAX + 1), 0);
    ck_assert_int_eq(hy_reqid_is_sane(buf, 100000), 0); /* refused by length before any byte is read past the 129th */
}
END_TEST

/* ---- generated ids ----------------------------------------------------------------------------------------------------- */

static void assert_well_formed(const char *id, size_t len)
{
    ck_assert_uint_eq(len, HY_REQID_LEN);
    ck_assert_uint_eq(strlen(id), HY_REQID_LEN);
    ck_assert_msg(strspn(id, "0123456789abcdefghjkmnpqrstvwxyz") == HY_REQID_LEN, "\"%s\" has a character out of base32", id);
    ck_assert_int_eq(hy_reqid_is_sane(id, len), 1);
}

START_TEST(test_generated_shape)
{
    hy_reqid_gen_t g;
    hy_reqid_thread_init(&g, 3);
    char a[HY_REQID_MAX + 1], b[HY_REQID_MAX + 1];
    assert_well_formed(a, hy_reqid_next(&g, a));
    assert_well_formed(b, hy_reqid_next(&g, b));
    ck_assert_str_ne(a, b);
    /* one generator: the last 16 characters (random bits + thread) are shared, the first 10 are not */
    ck_assert_int_eq(memcmp(a + 10, b + 10, 16), 0);
    ck_assert_int_ne(memcmp(a, b, 10), 0);
    /* the thread index is the last 16 bits: 3 -> the final character encodes 3 */
    ck_assert_int_eq(a[HY_REQID_LEN - 1], '3');

    /* an exact-size buffer is enough */
    char exact[HY_REQID_LEN + 1];
    assert_well_formed(exact, hy_reqid_next(&g, exact));
}
END_TEST

/* An open-addressing set of ids, for the uniqueness tests. */
typedef struct st_idset_t {
    const char (*ids)[HY_REQID_LEN]; /* the ids, owned by the caller */
    uint32_t *slots;                 /* index + 1 into ids, 0 = empty */
    size_t mask;                     /* slot count - 1 (a power of two) */
} idset_t;

static void idset_init(idset_t *set, const char (*ids)[HY_REQID_LEN], size_t n)
{
    size_t cap = 1;
    while (cap < n * 2)
        cap <<= 1;
    set->ids = ids;
    set->slots = calloc(cap, sizeof(*set->slots));
    ck_assert_ptr_nonnull(set->slots);
    set->mask = cap - 1;
}

/* Adds ids[i]; returns 0, or -1 when an equal id is already in the set. */
static int idset_add(idset_t *set, uint32_t i)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (size_t k = 0; k != HY_REQID_LEN; ++k)
        h = (h ^ (unsigned char)set->ids[i][k]) * 1099511628211u;
    for (size_t s = h & set->mask;; s = (s + 1) & set->mask) {
        if (set->slots[s] == 0) {
            set->slots[s] = i + 1;
            return 0;
        }
        if (memcmp(set->ids[set->slots[s] - 1], set->ids[i], HY_REQID_LEN) == 0)
            return -1;
    }
}

#define NTHREADS 4
#define PER_THREAD 250000

typedef struct st_worker_t {
    unsigned index;            /* thread index given to the generator */
    char (*out)[HY_REQID_LEN]; /* where to put this thread's ids */
} worker_t;

static void *on_worker(void *p)
{
    worker_t *w = p;
    hy_reqid_gen_t g;
    hy_reqid_thread_init(&g, w->index);
    char buf[HY_REQID_MAX + 1];
    for (size_t i = 0; i != PER_THREAD; ++i) {
        hy_reqid_next(&g, buf);
        memcpy(w->out[i], buf, HY_REQID_LEN);
    }
    return NULL;
}

START_TEST(test_unique_across_threads)
{
    char(*ids)[HY_REQID_LEN] = malloc(sizeof(*ids) * NTHREADS * PER_THREAD);
    ck_assert_ptr_nonnull(ids);
    pthread_t tids[NTHREADS];
    worker_t workers[NTHREADS];
    for (unsigned t = 0; t != NTHREADS; ++t) {
        workers[t] = (worker_t){t, ids + (size_t)t * PER_THREAD};
        ck_assert_int_eq(pthread_create(&tids[t], NULL, on_worker, &workers[t]), 0);
    }
    for (unsigned t = 0; t != NTHREADS; ++t)
        pthread_join(tids[t], NULL);

    idset_t set;
    idset_init(&set, (const char(*)[HY_REQID_LEN])ids, NTHREADS * PER_THREAD);
    for (uint32_t i = 0; i != NTHREADS * PER_THREAD; ++i)
        if (idset_add(&set, i) != 0) /* (not ck_assert: Check records each passing assertion with a system call) */
            ck_abort_msg("id %u (%.26s) repeats", i, ids[i]);
    free(set.slots);
    free(ids);
}
END_TEST

START_TEST(test_unique_across_restarts)
{
    /* two generators seeded the same way, as two runs of the process would be */
    enum { N = 20000 };
    char(*ids)[HY_REQID_LEN] = malloc(sizeof(*ids) * 2 * N);
    ck_assert_ptr_nonnull(ids);
    hy_reqid_gen_t run1, run2;
    hy_reqid_thread_init(&run1, 0);
    hy_reqid_thread_init(&run2, 0);
    ck_assert_int_ne(memcmp(run1.suffix, run2.suffix, sizeof(run1.suffix)), 0);
    char buf[HY_REQID_MAX + 1];
    for (size_t i = 0; i != N; ++i) {
        hy_reqid_next(&run1, buf);
        memcpy(ids[i], buf, HY_REQID_LEN);
        hy_reqid_next(&run2, buf);
        memcpy(ids[N + i], buf, HY_REQID_LEN);
    }
    ck_assert_int_ne(memcmp(ids[0], ids[N], HY_REQID_LEN), 0);
    idset_t set;
    idset_init(&set, (const char(*)[HY_REQID_LEN])ids, 2 * N);
    for (uint32_t i = 0; i != 2 * N; ++i)
        if (idset_add(&set, i) != 0)
            ck_abort_msg("id %u repeats", i);
    free(set.slots);
    free(ids);
}
END_TEST

START_TEST(test_counter_wrap)
{
    hy_reqid_gen_t g;
    hy_reqid_thread_init(&g, 7);
    g.counter = (UINT64_C(1) << 50) - 2;
    char before[16];
    memcpy(before, g.suffix, sizeof(before));
    char ids[4][HY_REQID_MAX + 1];
    for (int i = 0; i != 4; ++i)
        assert_well_formed(ids[i], hy_reqid_next(&g, ids[i]));
    ck_assert_uint_eq(g.counter, 2);
    ck_assert_int_ne(memcmp(before, g.suffix, sizeof(before)), 0); /* new random bits after the wrap */
    ck_assert_int_eq(ids[3][HY_REQID_LEN - 1], '7');               /* the thread index stays */
    for (int i = 0; i != 4; ++i)
        for (int j = i + 1; j != 4; ++j)
            ck_assert_str_ne(ids[i], ids[j]);
}
END_TEST

START_TEST(test_large_thread_index)
{
    hy_reqid_gen_t g;
    hy_reqid_thread_init(&g, 65536 + 5);
    ck_assert_uint_eq(g.thread, 5);
    char id[HY_REQID_MAX + 1];
    assert_well_formed(id, hy_reqid_next(&g, id));
}
END_TEST

/* ---- traceparent ------------------------------------------------------------------------------------------------------- */

START_TEST(test_traceparent_valid)
{
    ck_assert_int_eq(hy_traceparent_is_valid(S("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")), 1);
    ck_assert_int_eq(hy_traceparent_is_valid(S("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")), 1);
    ck_assert_int_eq(hy_traceparent_is_valid(S("00-00000000000000000000000000000001-0000000000000001-ff")), 1);
    /* a later version: same 55 characters, or more after a dash */
    ck_assert_int_eq(hy_traceparent_is_valid(S("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")), 1);
    ck_assert_int_eq(hy_traceparent_is_valid(S("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds")),
                     1);
    /* not NUL-terminated: only len bytes count */
    ck_assert_int_eq(hy_traceparent_is_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01garbage", 55), 1);
}
END_TEST

START_TEST(test_traceparent_invalid)
{
    static const char *const bad[] = {
        "",
        "00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",    /* short */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  /* version 00 has nothing more */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",  /* trailing space */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version ff */
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  /* later version: more must follow a dash */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* upper-case trace-id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",   /* upper-case parent-id */
        "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* upper-case version */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0G",   /* flags not hex */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* all-zero trace-id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* all-zero parent-id */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",   /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",   /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",   /* fields shifted */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n", /* newline */
        "00-4bf92f3577b34da6a3ce929d0e0e47 6-00f067aa0ba902b7-01",   /* space inside */
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version not hex */
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        ck_assert_msg(hy_traceparent_is_valid(bad[i], strlen(bad[i])) == 0, "\"%s\" should be invalid", bad[i]);
    ck_assert_int_eq(hy_traceparent_is_valid(NULL, 0), 0);
}
END_TEST

/* ---- the suite --------------------------------------------------------------------------------------------------------- */

static Suite *make_reqid_suite(void)
{
    Suite *s = suite_create("reqid");

    TCase *tc = tcase_create("incoming");
    tcase_add_test(tc, test_sane_accepts);
    tcase_add_test(tc, test_sane_refuses);
    suite_add_tcase(s, tc);

    tc = tcase_create("generated");
    tcase_set_timeout(tc, 120); /* a million ids under valgrind */
    tcase_add_test(tc, test_generated_shape);
    tcase_add_test(tc, test_unique_across_threads);
    tcase_add_test(tc, test_unique_across_restarts);
    tcase_add_test(tc, test_counter_wrap);
    tcase_add_test(tc, test_large_thread_index);
    suite_add_tcase(s, tc);

    tc = tcase_create("traceparent");
    tcase_add_test(tc, test_traceparent_valid);
    tcase_add_test(tc, test_traceparent_invalid);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(make_reqid_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
