/* check_db.c: the PostgreSQL pool against a real PostgreSQL (HYDRANT_TEST_DATABASE_URL), driven by real evloops. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "db.h"

/* ---- fixture: a pool with N event-loop threads ------------------------------------------------------------------------ */

static const hy_db_stmt_t stmt_add = {"t_add", "SELECT $1::int + 1", 1, 1, NULL, NULL};
static const hy_db_stmt_t stmt_sleep = {"t_sleep", "SELECT pg_sleep($1::float8), pg_backend_pid()", 1, 1, NULL, NULL};
static const hy_db_stmt_t stmt_fail = {"t_fail", "SELECT 1 / $1::int", 1, 0, NULL, NULL};
static const hy_db_stmt_t stmt_count = {
    "t_count", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hydrant' AND datname = current_database()",
    0,         1,
    NULL,      NULL};
static const hy_db_stmt_t *const stmts[] = {&stmt_add, &stmt_sleep, &stmt_fail, &stmt_count};

typedef struct st_loop_t {
    h2o_evloop_t *loop;             /* the thread's loop */
    h2o_multithread_queue_t *queue; /* its queue */
    hy_db_local_t *local;           /* its pool attachment */
} loop_t;

static const char *kw[] = {"dbname", NULL};
static const char *vals[] = {NULL, NULL};

static hy_db_settings_t settings_for(const char *url)
{
    vals[0] = url;
    hy_db_settings_t s = {0};
    s.keywords = kw;
    s.values = vals;
    s.max_open = 4;
    s.max_idle = 4;
    s.acquire_timeout_ms = 2000;
    s.connect_timeout_ms = 2000;
    s.pipeline_depth = 16;
    return s;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void loop_init(loop_t *l, hy_db_pool_t *pool, size_t index)
{
    l->loop = h2o_evloop_create();
    l->queue = h2o_multithread_create_queue(l->loop);
    l->local = hy_db_local_attach(pool, index, l->loop, l->queue);
}

/* Detaches from the pool and frees the loop (closed sockets are freed on one more loop turn). */
static void loop_dispose(loop_t *l)
{
    hy_db_local_detach(l->local);
    h2o_evloop_run(l->loop, 0);
}

/* Runs the loop until *done != 0 or timeout_ms passes. Returns 1 when done. */
static int run_until(loop_t *l, _Atomic int *done, uint64_t timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    while (!atomic_load(done) && now_ms() < deadline)
        h2o_evloop_run(l->loop, 10);
    return atomic_load(done) != 0;
}

typedef struct st_answer_t {
    _Atomic int done;      /* set by the callback */
    hy_db_status_t status; /* what it got */
    char value[64];        /* first cell */
    char sqlstate[8];      /* for errors */
    uint64_t at;           /* when */
} answer_t;

static void on_answer(void *data, const hy_db_result_t *r)
{
    answer_t *a = data;
    a->status = r->status;
    if (r->res != NULL && r->status == HY_DB_OK && PQntuples(r->res) > 0)
        snprintf(a->value, sizeof(a->value), "%s", PQgetvalue(r->res, 0, PQnfields(r->res) - 1));
    snprintf(a->sqlstate, sizeof(a->sqlstate), "%s", r->sqlstate);
    a->at = now_ms();
    atomic_store(&a->done, 1);
}

static const char *url(void)
{
    return getenv("HYDRANT_TEST_DATABASE_URL");
}

/* ---- single thread ---------------------------------------------------------------------------------------------------- */

START_TEST(test_query_and_error)
{
    hy_db_settings_t s = settings_for(url());
    hy_db_pool_t *pool = hy_db_pool_create(&s, stmts, 4, 1);
    static loop_t l; /* static: the loop stays reachable (its queue keeps the pool's receiver) */
    loop_init(&l, pool, 0);

    answer_t a = {0}, e = {0};
    const char *v1[] = {"41"}, *v0[] = {"0"};
    hy_db_submit(l.local, &stmt_add, v1, 1, on_answer, &a);
    hy_db_submit(l.local, &stmt_fail, v0, 1, on_answer, &e);
    ck_assert(run_until(&l, &a.done, 5000));
    ck_assert(run_until(&l, &e.done, 5000));
    ck_assert_int_eq(a.status, HY_DB_OK);
    ck_assert_str_eq(a.value, "42");
    ck_assert_int_eq(e.status, HY_DB_QUERY_ERROR);
    ck_assert_str_eq(e.sqlstate, "22012"); /* division_by_zero */
    ck_assert(hy_db_pool_ready(pool));

    /* the error did not spoil the pipeline: more statements on the same connection work */
    answer_t many[50];
    memset(many, 0, sizeof(many));
    for (int i = 0; i != 50; ++i) {
        char buf[16];
        snprintf(buf, sizeof(buf), "%d", i);
        const char *v[] = {buf};
        hy_db_submit(l.local, &stmt_add, v, 1, on_answer, &many[i]);
    }
    ck_assert(run_until(&l, &many[49].done, 5000));
    for (int i = 0; i != 50; ++i) {
        char want[16];
        snprintf(want, sizeof(want), "%d", i + 1);
        ck_assert_int_eq(many[i].status, HY_DB_OK);
        ck_assert_str_eq(many[i].value, want);
    }
    loop_dispose(&l);
    hy_db_pool_free(pool);
}
END_TEST

static void on_must_not_run(void *data, const hy_db_result_t *r)
{
    (void)data, (void)r;
    ck_abort_msg("the callback of an abandoned query ran");
}

START_TEST(test_abandon)
{
    hy_db_settings_t s = settings_for(url());
    s.max_open = 1;
    hy_db_pool_t *pool = hy_db_pool_create(&s, stmts, 4, 1);
    static loop_t l; /* static: the loop stays reachable (its queue keeps the pool's receiver) */
    loop_init(&l, pool, 0);
    const char *slow[] = {"0.2"}, *v[] = {"1"};
    hy_db_query_t *q = hy_db_submit(l.local, &stmt_sleep, slow, 1, on_must_not_run, NULL);
    _Atomic int never = 0;
    run_until(&l, &never, 50); /* the query is now on the wire */
    hy_db_abandon(q);
    answer_t a = {0};
    hy_db_submit(l.local, &stmt_add, v, 1, on_answer, &a);
    ck_assert(run_until(&l, &a.done, 5000));
    ck_assert_int_eq(a.status, HY_DB_OK);
    ck_assert_str_eq(a.value, "2");
    loop_dispose(&l);
    hy_db_pool_free(pool);
}
END_TEST

START_TEST(test_acquire_timeout_and_queue_limit)
{
    hy_db_settings_t s = settings_for(url());
    s.max_open = 1;
    s.pipeline_depth = 1;
    s.acquire_timeout_ms = 200;
    s.queue_limit = 2;
    hy_db_pool_t *pool = hy_db_pool_create(&s, stmts, 4, 1);
    static loop_t l; /* static: the loop stays reachable (its queue keeps the pool's receiver) */
    loop_init(&l, pool, 0);
    const char *slow[] = {"1"}, *v[] = {"1"};
    answer_t busy = {0}, waiting = {0}, waiting2 = {0}, over = {0};
    _Atomic int never = 0;
    for (int i = 0; i != 500 && !hy_db_pool_ready(pool); ++i)
        run_until(&l, &never, 10);
    hy_db_submit(l.local, &stmt_sleep, slow, 1, on_answer, &busy);
    run_until(&l, &never, 100);
    uint64_t start = now_ms();
    hy_db_submit(l.local, &stmt_add, v, 1, on_answer, &waiting);
    hy_db_submit(l.local, &stmt_add, v, 1, on_answer, &waiting2);
    hy_db_submit(l.local, &stmt_add, v, 1, on_answer, &over);
    ck_assert(run_until(&l, &over.done, 1000));
    ck_assert_int_eq(over.status, HY_DB_OVERLOADED);
    ck_assert(over.at - start < 100);
    ck_assert(run_until(&l, &waiting.done, 2000));
    ck_assert_int_eq(waiting.status, HY_DB_UNAVAILABLE);
    ck_assert_uint_ge(waiting.at - start, 190);
    ck_assert_uint_lt(waiting.at - start, 600);
    ck_assert(run_until(&l, &busy.done, 3000));
    ck_assert_int_eq(busy.status, HY_DB_OK);
    hy_db_stats_t st;
    hy_db_pool_stats(pool, &st);
    ck_assert(waiting2.done);
    ck_assert_int_eq(waiting2.status, HY_DB_UNAVAILABLE);
    ck_assert_uint_ge(st.acquire_timeouts, 2);
    loop_dispose(&l);
    hy_db_pool_free(pool);
}
END_TEST

START_TEST(test_database_down)
{
    hy_db_settings_t s = settings_for("postgresql://app:app@127.0.0.1:1/app?sslmode=disable");
    s.acquire_timeout_ms = 300;
    hy_db_pool_t *pool = hy_db_pool_create(&s, stmts, 4, 1);
    static loop_t l; /* static: the loop stays reachable (its queue keeps the pool's receiver) */
    loop_init(&l, pool, 0);
    const char *v[] = {"1"};
    answer_t a = {0};
    uint64_t start = now_ms();
    hy_db_submit(l.local, &stmt_add, v, 1, on_answer, &a);
    ck_assert(run_until(&l, &a.done, 3000));
    ck_assert_int_eq(a.status, HY_DB_UNAVAILABLE);
    ck_assert_uint_lt(a.at - start, 700);
    ck_assert(!hy_db_pool_ready(pool));
    hy_db_stats_t st;
    hy_db_pool_stats(pool, &st);
    ck_assert_uint_ge(st.connect_errors, 1);
    loop_dispose(&l);
    hy_db_pool_free(pool);
}
END_TEST

START_TEST(test_lost_connection_retried)
{
    hy_db_settings_t s = settings_for(url());
    s.max_open = 1;
    hy_db_pool_t *pool = hy_db_pool_create(&s, stmts, 4, 1);
    static loop_t l; /* static: the loop stays reachable (its queue keeps the pool's receiver) */
    loop_init(&l, pool, 0);
    /* learn the backend pid, then have another session kill it */
    const char *z[] = {"0"};
    answer_t pid = {0};
    hy_db_submit(l.local, &stmt_sleep, z, 1, on_answer, &pid);
    ck_assert(run_until(&l, &pid.done, 5000));
    ck_assert_int_eq(pid.status, HY_DB_OK);
    PGconn *admin = PQconnectdb(url());
    ck_assert_int_eq(PQstatus(admin), CONNECTION_OK);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%s)", pid.value);
    PQclear(PQexec(admin, sql));
    PQfinish(admin);
    usleep(100000);
    /* an idempotent statement on the dead connection is retried on a new one */
    const char *v[] = {"9"};
    answer_t a = {0};
    hy_db_submit(l.local, &stmt_add, v, 1, on_answer, &a);
    ck_assert(run_until(&l, &a.done, 5000));
    ck_assert_int_eq(a.status, HY_DB_OK);
    ck_assert_str_eq(a.value, "10");
    loop_dispose(&l);
    hy_db_pool_free(pool);
}
END_TEST

/* ---- several threads sharing one pool --------------------------------------------------------------------------------- */

typedef struct st_worker_t {
    loop_t loop;          /* its loop */
    hy_db_pool_t *pool;   /* shared */
    size_t index;         /* thread index */
    int nqueries;         /* to run */
    answer_t answers[20]; /* results */
    _Atomic int done;     /* all answered */
    _Atomic int *go;      /* start signal */
    _Atomic int *stop;    /* end signal */
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    loop_init(&w->loop, w->pool, w->index);
    while (!atomic_load(w->go))
        h2o_evloop_run(w->loop.loop, 1);
    const char *v[] = {"0.02"};
    for (int i = 0; i != w->nqueries; ++i)
        hy_db_submit(w->loop.local, &stmt_sleep, v, 1, on_answer, &w->answers[i]);
    uint64_t deadline = now_ms() + 10000;
    while (now_ms() < deadline) {
        int all = 1;
        for (int i = 0; i != w->nqueries; ++i)
            all &= atomic_load(&w->answers[i].done);
        if (all)
            break;
        h2o_evloop_run(w->loop.loop, 10);
    }
    atomic_store(&w->done, 1);
    while (!atomic_load(w->stop))
        h2o_evloop_run(w->loop.loop, 10); /* keep serving hand-offs until every thread is done */
    loop_dispose(&w->loop);
    return NULL;
}

START_TEST(test_threads_share_one_connection)
{
    hy_db_settings_t s = settings_for(url());
    s.max_open = 1;
    s.acquire_timeout_ms = 5000;
    hy_db_pool_t *pool = hy_db_pool_create(&s, stmts, 4, 2);
    _Atomic int go = 0, stop = 0;
    static worker_t w[2];
    memset(w, 0, sizeof(w));
    pthread_t tid[2];
    for (size_t i = 0; i != 2; ++i) {
        w[i].pool = pool;
        w[i].index = i;
        w[i].nqueries = 20;
        w[i].go = &go;
        w[i].stop = &stop;
        pthread_create(&tid[i], NULL, worker_main, &w[i]);
    }
    usleep(100000);
    atomic_store(&go, 1);
    size_t max_open = 0;
    while (!atomic_load(&w[0].done) || !atomic_load(&w[1].done)) {
        hy_db_stats_t st;
        hy_db_pool_stats(pool, &st);
        if (st.open > max_open)
            max_open = st.open;
        usleep(1000);
    }
    atomic_store(&stop, 1);
    for (size_t i = 0; i != 2; ++i)
        pthread_join(tid[i], NULL);
    for (size_t i = 0; i != 2; ++i)
        for (int k = 0; k != 20; ++k) {
            ck_assert_msg(atomic_load(&w[i].answers[k].done), "thread %zu query %d unanswered", i, k);
            ck_assert_int_eq(w[i].answers[k].status, HY_DB_OK);
        }
    ck_assert_uint_eq(max_open, 1);
    hy_db_pool_free(pool);
}
END_TEST

START_TEST(test_max_open_cap)
{
    hy_db_settings_t s = settings_for(url());
    s.max_open = 3;
    s.pipeline_depth = 1;
    s.acquire_timeout_ms = 5000;
    hy_db_pool_t *pool = hy_db_pool_create(&s, stmts, 4, 2);
    _Atomic int go = 0, stop = 0;
    static worker_t w[2];
    memset(w, 0, sizeof(w));
    pthread_t tid[2];
    for (size_t i = 0; i != 2; ++i) {
        w[i].pool = pool;
        w[i].index = i;
        w[i].nqueries = 20;
        w[i].go = &go;
        w[i].stop = &stop;
        pthread_create(&tid[i], NULL, worker_main, &w[i]);
    }
    usleep(100000);
    atomic_store(&go, 1);
    /* what PostgreSQL itself sees, sampled while the load runs */
    PGconn *admin = PQconnectdb(url());
    ck_assert_int_eq(PQstatus(admin), CONNECTION_OK);
    long seen = 0;
    while (!atomic_load(&w[0].done) || !atomic_load(&w[1].done)) {
        PGresult *r = PQexec(admin, stmt_count.sql);
        long n = atol(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (n > seen)
            seen = n;
        usleep(5000);
    }
    PQfinish(admin);
    atomic_store(&stop, 1);
    for (size_t i = 0; i != 2; ++i)
        pthread_join(tid[i], NULL);
    for (size_t i = 0; i != 2; ++i)
        for (int k = 0; k != 20; ++k)
            ck_assert_int_eq(w[i].answers[k].status, HY_DB_OK);
    ck_assert_int_le(seen, 3);
    ck_assert_int_ge(seen, 2);
    hy_db_pool_free(pool);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------------------------------------ */

Suite *make_db_suite(void)
{
    Suite *s = suite_create("db");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_query_and_error);
    tcase_add_test(tc, test_abandon);
    tcase_add_test(tc, test_lost_connection_retried);
    suite_add_tcase(s, tc);
    tc = tcase_create("limits");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_acquire_timeout_and_queue_limit);
    tcase_add_test(tc, test_database_down);
    tcase_add_test(tc, test_threads_share_one_connection);
    tcase_add_test(tc, test_max_open_cap);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (url() == NULL || url()[0] == '\0') {
        fprintf(stderr, "check_db: HYDRANT_TEST_DATABASE_URL is not set; tools/dev test starts a PostgreSQL and sets it\n");
        return 77; /* CTest: skipped */
    }
    SRunner *sr = srunner_create(make_db_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
