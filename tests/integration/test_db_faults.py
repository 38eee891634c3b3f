"""test_db_faults.py: the PostgreSQL pool under load and under faults, against the real binary and a real PostgreSQL:

(a) max_open is a hard cap: 3000 profile/list requests, 300 at a time (h2load), while pg_stat_activity is sampled
    every 20 ms: never more than max_open backends, every request 200
(b) threads: 2 with max_open: 1: rounds of twenty HTTP/1.1 connections (both threads get some), every request succeeds
(c) clients that go away mid-query (h2 RST_STREAM, HTTP/1.1 close/RST) while the statement waits on a table lock, with
    the statements sent and with them still queued for a connection: the server keeps answering (on the same h2
    connection too), the pool recovers, exit 0, no sanitizer report (run it with an Asan HYDRANT_BIN)
(d) PostgreSQL down at start: /health 200, /ready 503, every API route 503 within acquire_timeout, never a hang
(e) PostgreSQL stopped and started during the run (tools/pg on HYDRANT_PG_DIR; restarted in a finally): 503 quickly
    and /ready 503, then recovery on its own without restarting hydrant
(f) a write whose connection is lost after it was sent (a TCP proxy cuts it while the INSERT waits on a lock; or
    pg_terminate_backend) is answered 503 outcome_unknown and sent exactly once; a read is retried exactly once
(g) statement_timeout -> 504, queue_limit -> immediate 503, max_idle_time and /ready, max_lifetime, max_idle
(h) signals with a database configured (SIGHUP keeps serving, SIGTERM exits 0), SIGTERM with statements in flight

Needs HYDRANT_TEST_DATABASE_URL (and HYDRANT_PG_DIR / HYDRANT_PG_PORT for (e)); skipped otherwise. The file makes its
own database (hy_it_db_faults_<pid>, 200 seeded users) and drops it at the end."""

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import dbharness  # noqa: E402
from dbharness import PROTOCOLS, SECRET, PsqlSession, needs_db  # noqa: E402
from harness import REPO, clean_env, http1_request  # noqa: E402

CT_JSON = {"Content-Type": "application/json"}
N_LOAD = 3000  # requests of the max_open load test, 300 at a time (about 0.5 s on an idle Debug build)


class ActivitySampler(threading.Thread):
    """Counts hydrant's backends on one database every `interval` seconds, on its own psql session."""

    def __init__(self, dbname, interval=0.02):
        super().__init__(daemon=True)
        self.sql = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hydrant' AND datname = '%s'"
                    % dbname)
        self.interval = interval
        self.samples = []
        self.error = None
        self.stopping = threading.Event()
        self.session = PsqlSession(timeout=10)

    def run(self):
        try:
            while not self.stopping.is_set():
                self.samples.append(int(self.session.query(self.sql)[0]))
                self.stopping.wait(self.interval)
        except Exception as e:  # reported by stop()
            self.error = e

    def stop(self):
        self.stopping.set()
        self.join(15)
        self.session.close()
        if self.error:
            raise self.error
        return self.samples


@needs_db
class DbFaults(unittest.TestCase):
    maxDiff = None
    db = None

    @classmethod
    def setUpClass(cls):
        cls.db = dbharness.prepare_database("db_faults", seed_users=200)
        cls.ids = [int(r[0]) for r in cls.db.rows("SELECT id FROM users ORDER BY id")]

    @classmethod
    def tearDownClass(cls):
        if cls.db is not None:
            cls.db.drop()

    def setUp(self):
        self.db.sql("DELETE FROM users WHERE email NOT LIKE 'seed-%@example.com'")

    # ---- helpers ----

    def serve(self, url=None, wait_ready=True, **config_kw):
        s, port = dbharness.start_db_server(url or self.db.url, **config_kw)
        self.addCleanup(s.cleanup)
        if wait_ready and not dbharness.wait_pool_ready(port, 10):
            self.fail("/ready never said 200\n" + s.describe())
        return s, port

    def finish(self, s):
        """Stops a server at the end of a test: a sanitizer report fails the test. The exit status is checked by
        test_signals_with_a_database, the abandonment tests and the SIGTERM test, so one lifecycle bug does not fail
        every test here."""
        s.terminate()
        s.assert_no_sanitizer_report()

    def session(self, url=None):
        p = PsqlSession(url or self.db.url)
        self.addCleanup(p.close)
        return p

    def users(self):
        """Every user as the API renders it, by id."""
        return {int(i): {"id": int(i), "name": n, "email": e, "created_at": c}
                for i, n, e, c in self.db.rows(dbharness_user_sql())}

    def user(self, uid):
        return self.users()[uid]

    def assert_503(self, r, code):
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.header("content-type"), "application/json", r)
        self.assertEqual(r.json().get("error"), code, r)
        self.assertEqual(r.header("retry-after"), "1", r)

    def backends(self, where=""):
        return self.db.rows("SELECT pid, state, coalesce(wait_event_type, ''), query FROM pg_stat_activity "
                            "WHERE application_name = 'hydrant' AND datname = current_database() %s" % where)

    def wait_backend_waiting_on_lock(self, like, timeout=10):
        """Waits until one of hydrant's backends waits on a lock running a statement like `like`; returns its pid."""
        sql = "AND wait_event_type = 'Lock' AND query LIKE '%s'" % like
        found = dbharness.wait_until(lambda: self.backends(sql), timeout)
        if not found:
            self.fail("no hydrant backend waiting on the lock with %r; backends: %r" % (like, self.backends()))
        return [int(r[0]) for r in found]

    def lock_users(self):
        """A psql session holding ACCESS EXCLUSIVE on users; returns a function that releases it (idempotent)."""
        p = self.session()
        p.query("BEGIN")
        p.query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        done = []

        def release():
            if not done:
                done.append(1)
                p.query("COMMIT")
        self.addCleanup(release)
        return release

    # ---- (a) max_open is a cap ----

    def test_max_open_is_never_exceeded_under_load(self):
        s, port = self.serve(threads=2, pool={"max_open": 3, "acquire_timeout": "10s"})
        sampler = ActivitySampler(self.db.name)
        sampler.start()
        try:
            # the sampler's session is up before the load starts
            self.assertTrue(dbharness.wait_until(lambda: sampler.samples or sampler.error, 10), "no first sample")
            # 300 streams at a time (50 connections x 6): profiles (three statements each) and 100-user pages
            uris = ["http://127.0.0.1:%d/api/v1/users/%d/profile" % (port, uid) for uid in self.ids[:40]]
            uris += ["http://127.0.0.1:%d/api/v1/users?limit=100&after=%d" % (port, uid) for uid in self.ids[:10]]
            p = subprocess.run(["h2load", "-n", str(N_LOAD), "-c", "50", "-m", "6", "-t", "2"] + uris,
                               capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
        finally:
            samples = sampler.stop()
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        self.assertRegex(out, r"requests: %d total, %d started, %d done, %d succeeded, 0 failed" % ((N_LOAD,) * 4), out)
        self.assertRegex(out, r"status codes: %d 2xx, 0 3xx, 0 4xx, 0 5xx" % N_LOAD, out)
        self.assertGreater(len(samples), 5, "too few pg_stat_activity samples: %r" % samples)
        self.assertLessEqual(max(samples), 3, "hydrant held %d connections (max_open 3); samples %r"
                             % (max(samples), samples))
        self.assertGreaterEqual(max(samples), 1, samples)
        sys.stderr.write("  max_open cap: %d samples, max %d, histogram %r\n" % (
            len(samples), max(samples), {k: samples.count(k) for k in sorted(set(samples))}))
        # the responses were right, not just 200: spot-check after the load
        r = http1_request(port, "GET", "/api/v1/users/%d/profile" % self.ids[3])
        self.assertEqual(r.json()["user"], self.user(self.ids[3]))
        self.finish(s)

    # ---- (b) two threads, one connection ----

    def test_two_threads_share_one_connection(self):
        # Rounds of 20 HTTP/1.1 connections (spread over both threads by SO_REUSEPORT) x 12 requests, mostly profiles
        # (three statements each), all at once. Every request must succeed within acquire_timeout (1 s, against
        # round trips of a few ms): the one connection has to travel between the threads. A round takes ~0.1 s; up
        # to 12 rounds, stopping at the first failure.
        s, port = self.serve(threads=2, pool={"max_open": 1, "acquire_timeout": "1s"})
        users = self.users()

        def client(rnd, i, barrier):
            import http.client
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            errors = []
            try:
                barrier.wait()
                for k in range(12):
                    uid = self.ids[(i * 12 + k) % 40]
                    kind = k - 8 if k >= 9 else 0
                    t0 = time.monotonic()
                    if kind == 0:
                        r = http1_request(port, "GET", "/api/v1/users/%d/profile" % uid, conn=conn)
                        ok = r.status == 200 and r.json()["user"] == users[uid]
                    elif kind == 1:
                        r = http1_request(port, "GET", "/api/v1/users/%d" % uid, conn=conn)
                        ok = r.status == 200 and r.json() == users[uid]
                    elif kind == 2:
                        r = http1_request(port, "GET", "/api/v1/users?limit=3&after=%d" % (uid - 1), conn=conn)
                        ok = r.status == 200 and r.json()["users"][0] == users[uid]
                    else:
                        body = json.dumps({"name": "T", "email": "t%d-%d-%d@threads.example" % (rnd, i, k)})
                        r = http1_request(port, "POST", "/api/v1/users", body=body.encode(), headers=CT_JSON,
                                          conn=conn)
                        ok = r.status == 201
                    if not ok:
                        errors.append("round %d: %.2fs: %d %s" % (rnd + 1, time.monotonic() - t0, r.status,
                                                                    r.body[:90].decode("utf-8", "replace")))
            finally:
                conn.close()
            return errors

        rounds = 0
        errors = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as ex:
            for rnd in range(12):
                rounds += 1
                barrier = threading.Barrier(20, timeout=10)
                results = list(ex.map(lambda i: client(rnd, i, barrier), range(20), timeout=60))
                errors = [e for r in results for e in r]
                if errors:
                    break
        self.assertFalse(errors, "threads 2, max_open 1, a healthy database: %d of %d requests failed in round "
                         "%d, e.g. %r\n%s" % (len(errors), 240, rounds, errors[:3], s.stderr()[-1500:]))
        self.assertEqual(self.db.sql("SELECT count(*) FROM users WHERE email LIKE '%@threads.example'"),
                         str(rounds * 20))
        self.assertLessEqual(len(self.backends()), 1)
        self.finish(s)

    # ---- (c) clients that go away mid-query ----

    def abandon_mid_query(self, pool, hold):
        s, port = self.serve(threads=2, pool=pool)
        uid = self.ids[0]
        want = self.user(uid)
        # warm the pool (connections opened and statements prepared before the lock is taken)
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
            list(ex.map(lambda i: http1_request(port, "GET", "/api/v1/users/%d" % uid), range(16), timeout=30))
        release = self.lock_users()

        # 50 streams on one h2 connection, reset once their queries wait on the lock
        h2 = harness.H2Client(port, timeout=10)
        self.addCleanup(h2.close)
        self.assertTrue(h2.wait_settings())
        sids = [h2.request("/api/v1/users/%d" % uid if i % 2 else "/api/v1/users/%d/profile" % uid)
                for i in range(50)]
        # 50 HTTP/1.1 connections, closed the same way
        socks = []
        for i in range(50):
            so = socket.create_connection(("127.0.0.1", port), timeout=10)
            self.addCleanup(so.close)
            so.sendall(b"GET /api/v1/users/%d HTTP/1.1\r\nHost: x\r\n\r\n" % uid)
            socks.append(so)
        self.wait_backend_waiting_on_lock("SELECT%users%")
        h2.receive_until(lambda: False, timeout=0.2)
        for sid in sids:
            if h2.responses[sid]["ended"]:  # only a statement still queued past acquire_timeout may answer (503)
                self.assert_503(h2.response(sid), "database_unavailable" if sid % 4 == 3 else "profile_unavailable")
            else:
                h2.conn.reset_stream(sid, error_code=8)  # CANCEL
        h2.flush()
        for i, so in enumerate(socks):
            if i % 2:  # half with an RST (SO_LINGER 0), half with a FIN
                so.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            so.close()
        # hold the lock past acquire_timeout: abandoned statements still queued for a connection expire meanwhile
        time.sleep(hold)
        release()

        # the server still answers, on the same h2 connection too, and the pool serves again
        sid = h2.request("/api/v1/users/%d" % uid)
        self.assertTrue(h2.wait_all([sid]), "no answer on the h2 connection after the lock was released")
        self.assertEqual(h2.response(sid).status, 200)
        self.assertEqual(json.loads(h2.response(sid).body), want)
        for proto in PROTOCOLS:
            r = dbharness.request(proto, port, "GET", "/api/v1/users/%d" % uid)
            self.assertEqual((r.status, r.json()), (200, want), r)
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as ex:
            statuses = list(ex.map(lambda i: http1_request(port, "GET", "/api/v1/users/%d" % self.ids[i]).status,
                                   range(50), timeout=30))
        self.assertEqual(statuses, [200] * 50)
        self.assertEqual(http1_request(port, "GET", "/ready").status, 200)
        self.assertLessEqual(len(self.backends()), pool["max_open"])
        s.assert_no_sanitizer_report()
        s.stop()
        s.assert_no_sanitizer_report()

    def test_clients_abandon_queries_in_flight(self):
        # 4 connections x pipeline depth 16: most statements are sent and wait on the lock inside PostgreSQL
        self.abandon_mid_query({"max_open": 4, "acquire_timeout": "10s"}, hold=0.3)

    def test_clients_abandon_queries_waiting_for_a_connection(self):
        # one connection, depth 2: most statements wait in the pool's queue; the lock is held past their
        # acquire_timeout, so their timers fire after they were abandoned
        self.abandon_mid_query({"max_open": 1, "pipeline_depth": 2, "acquire_timeout": "2s"}, hold=2.3)

    # ---- (d) PostgreSQL down at start ----

    def test_database_down_at_start(self):
        url = dbharness.url_with(password=SECRET, port=dbharness.closed_port(), dbname="nowhere")
        s, port = self.serve(url=url, wait_ready=False, threads=2,
                             pool={"acquire_timeout": "500ms", "connect_timeout": "1s"})
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                self.assertEqual(dbharness.request(proto, port, "GET", "/health").status, 200)
                r = dbharness.request(proto, port, "GET", "/ready")
                self.assertEqual((r.status, r.json()), (503, {"status": "database_unavailable"}), r)
                for method, path, body, code in (
                        ("GET", "/api/v1/users/1", None, "database_unavailable"),
                        ("GET", "/api/v1/users?limit=5", None, "database_unavailable"),
                        ("POST", "/api/v1/users", '{"name":"N","email":"n@example.com"}', "database_unavailable"),
                        ("PUT", "/api/v1/users/1", '{"name":"N","email":"n@example.com"}', "database_unavailable"),
                        ("DELETE", "/api/v1/users/1", None, "database_unavailable"),
                        ("GET", "/api/v1/users/1/profile", None, "profile_unavailable")):
                    t0 = time.monotonic()
                    r = dbharness.request(proto, port, method, path, body=body, headers=CT_JSON if body else None,
                                          timeout=5)
                    took = time.monotonic() - t0
                    self.assert_503(r, code)
                    self.assertLess(took, 1.5, "%s %s took %.2fs (acquire_timeout 500ms)" % (method, path, took))
        # many at once: each still bounded by acquire_timeout
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as ex:
            rs = list(ex.map(lambda i: http1_request(port, "GET", "/api/v1/users/%d" % i, timeout=5), range(40),
                             timeout=20))
        self.assertEqual([r.status for r in rs], [503] * 40)
        self.assertLess(time.monotonic() - t0, 3.0)
        self.finish(s)
        self.assertNotIn(SECRET, s.stderr() + s.stdout())

    # ---- (e) PostgreSQL stopped and restarted ----

    def pg_tool(self, cmd):
        env = clean_env(HYDRANT_PG_PORT=dbharness.PG_PORT, HYDRANT_PG_DIR=dbharness.PG_DIR)
        p = harness.run([os.path.join(REPO, "tools", "pg"), cmd, dbharness.PG_DIR], timeout=60, env=env)
        if p.returncode != 0:
            raise AssertionError("tools/pg %s failed (%d):\n%s%s" % (cmd, p.returncode, p.stdout, p.stderr))

    def test_postgres_restart_recovers_by_itself(self):
        if not dbharness.PG_DIR or not dbharness.PG_PORT:
            self.skipTest("HYDRANT_PG_DIR / HYDRANT_PG_PORT are not set, so PostgreSQL cannot be restarted")
        s, port = self.serve(threads=2, pool={"acquire_timeout": "500ms", "connect_timeout": "1s"})
        uid = self.ids[5]
        want = self.user(uid)
        pid = s.proc.pid
        for proto in PROTOCOLS:
            r = dbharness.request(proto, port, "GET", "/api/v1/users/%d" % uid)
            self.assertEqual((r.status, r.json()), (200, want))
        try:
            self.pg_tool("stop")
            # /ready notices the lost connection by itself (no traffic needed)
            self.assertTrue(dbharness.wait_until(
                lambda: http1_request(port, "GET", "/ready", timeout=2).status == 503, 5),
                "/ready still 200 5s after PostgreSQL stopped")
            for proto in PROTOCOLS:
                for method, path, body, code in (
                        ("GET", "/api/v1/users/%d" % uid, None, "database_unavailable"),
                        ("POST", "/api/v1/users", '{"name":"Down","email":"down@example.com"}',
                         "database_unavailable"),
                        ("GET", "/api/v1/users/%d/profile" % uid, None, "profile_unavailable")):
                    with self.subTest(proto=proto, method=method, path=path):
                        t0 = time.monotonic()
                        r = dbharness.request(proto, port, method, path, body=body,
                                              headers=CT_JSON if body else None, timeout=5)
                        took = time.monotonic() - t0
                        self.assert_503(r, code)
                        self.assertLess(took, 1.5, "%s took %.2fs during the outage" % (path, took))
            r = http1_request(port, "GET", "/ready")
            self.assertEqual((r.status, r.json()), (503, {"status": "database_unavailable"}))
            self.assertEqual(http1_request(port, "GET", "/health").status, 200)
        finally:
            self.pg_tool("start")  # always: the other tests (and files) need it
        # recovery without restarting hydrant: poll (the pool's reconnect backoff is at most 5 s)
        t0 = time.monotonic()

        def back():
            try:
                return http1_request(port, "GET", "/api/v1/users/%d" % uid, timeout=3).status == 200
            except OSError:
                return False
        self.assertTrue(dbharness.wait_until(back, 15, 0.2), "no recovery 15s after PostgreSQL restarted\n"
                        + s.describe())
        sys.stderr.write("  recovered %.1fs after PostgreSQL restarted\n" % (time.monotonic() - t0))
        self.assertEqual(s.proc.pid, pid)
        self.assertTrue(s.alive())
        for proto in PROTOCOLS:
            r = dbharness.request(proto, port, "GET", "/api/v1/users/%d" % uid)
            self.assertEqual((r.status, r.json()), (200, want))
        self.assertTrue(dbharness.wait_pool_ready(port, 5))
        r = http1_request(port, "POST", "/api/v1/users", body=b'{"name":"Back","email":"back@example.com"}',
                          headers=CT_JSON)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.db.sql("SELECT count(*) FROM users WHERE email = 'down@example.com'"), "0")
        self.finish(s)

    # ---- (f) connection killed after the statement was sent ----

    def post_in_background(self, port, email):
        results = {}

        def post():
            results["r"] = http1_request(port, "POST", "/api/v1/users", headers=CT_JSON, timeout=20,
                                         body=json.dumps({"name": "Maybe", "email": email}).encode())
        t = threading.Thread(target=post, daemon=True)
        t.start()
        return t, results

    def test_write_lost_on_the_wire_is_outcome_unknown_and_not_retried(self):
        # hydrant -> TCP proxy -> PostgreSQL. The INSERT is sent and waits on a lock inside PostgreSQL; the proxy then
        # cuts hydrant's connections (RST), so hydrant cannot know whether the INSERT will happen. It must answer 503
        # outcome_unknown (Retry-After) and must not send the INSERT again; the backend itself goes on and inserts the
        # row once the lock is released.
        proxy = dbharness.TcpProxy()
        self.addCleanup(proxy.close)
        s, port = self.serve(url=proxy.url(self.db.name), threads=1, pool={"max_open": 2, "acquire_timeout": "10s"})
        self.assertEqual(http1_request(port, "GET", "/api/v1/users/%d" % self.ids[0]).status, 200)
        release = self.lock_users()
        email = "lost-on-the-wire@example.com"
        t, results = self.post_in_background(port, email)
        self.wait_backend_waiting_on_lock("INSERT INTO users%")
        self.assertEqual(proxy.bind_count("users_create"), 1)
        self.assertGreaterEqual(proxy.kill_all(), 1)
        t.join(15)
        self.assertFalse(t.is_alive(), "the POST got no answer after its connection was cut")
        r = results["r"]
        self.assertEqual(r.status, 503, "POST whose connection was cut after the INSERT was sent: %r\n%s"
                         % (r, s.stderr()[-2000:]))
        self.assertEqual(r.json().get("error"), "outcome_unknown", r)
        self.assertEqual(r.header("retry-after"), "1", r)
        release()
        # the orphaned backend finishes its INSERT; hydrant sent it exactly once
        self.assertTrue(dbharness.wait_until(
            lambda: self.db.sql("SELECT count(*) FROM users WHERE email = '%s'" % email) == "1", 5),
            "the INSERT whose answer was lost never landed")
        time.sleep(0.3)
        self.assertEqual(proxy.bind_count("users_create"), 1, "the INSERT was sent again after its outcome was lost")
        # the pool reconnects (through the proxy) and serves writes again
        r = http1_request(port, "POST", "/api/v1/users", headers=CT_JSON,
                          body=json.dumps({"name": "After", "email": "after-cut@example.com"}).encode())
        self.assertEqual(r.status, 201, r)
        self.finish(s)

    def test_write_on_a_terminated_backend_is_outcome_unknown_and_not_retried(self):
        # pg_terminate_backend while the INSERT waits on a lock: the connection dies after the INSERT was sent.
        # Acceptable answers: 503 outcome_unknown (the documented one) or 201; never a retry, never a 500.
        s, port = self.serve(threads=1, pool={"max_open": 2, "acquire_timeout": "10s"})
        self.assertEqual(http1_request(port, "GET", "/api/v1/users/%d" % self.ids[0]).status, 200)
        release = self.lock_users()
        email = "terminated@example.com"
        t, results = self.post_in_background(port, email)
        pids = self.wait_backend_waiting_on_lock("INSERT INTO users%")
        self.assertEqual(self.db.sql("SELECT bool_and(pg_terminate_backend(pid)) FROM unnest(ARRAY[%s]) pid"
                                     % ",".join(map(str, pids))), "t")
        t.join(15)
        self.assertFalse(t.is_alive(), "the POST got no answer after its connection was killed")
        release()
        r = results["r"]
        time.sleep(0.5)  # a retry (which must not happen) would have inserted the row by now
        count = self.db.sql("SELECT count(*) FROM users WHERE email = '%s'" % email)
        if r.status == 201:
            self.assertEqual(count, "1")
        else:
            self.assertEqual(r.status, 503, "POST whose connection was terminated while it waited: %r\n%s"
                             % (r, s.stderr()[-2000:]))
            self.assertEqual(r.json().get("error"), "outcome_unknown", r)
            self.assertEqual(r.header("retry-after"), "1", r)
            self.assertEqual(count, "0", "the write was retried after its outcome was unknown")
        # the pool recovers
        r = http1_request(port, "POST", "/api/v1/users", headers=CT_JSON,
                          body=json.dumps({"name": "After", "email": "after-kill@example.com"}).encode())
        self.assertEqual(r.status, 201, r)
        self.finish(s)

    def test_read_is_retried_once_after_connection_loss(self):
        s, port = self.serve(threads=1, pool={"max_open": 2, "acquire_timeout": "10s"})
        uid = self.ids[9]
        want = self.user(uid)
        self.assertEqual(http1_request(port, "GET", "/api/v1/users/%d" % uid).status, 200)
        release = self.lock_users()
        results = {}

        def get():
            results["r"] = http1_request(port, "GET", "/api/v1/users/%d" % uid, timeout=20)
        t = threading.Thread(target=get, daemon=True)
        t.start()
        pids = self.wait_backend_waiting_on_lock("SELECT%FROM users WHERE id%")
        self.db.sql("SELECT pg_terminate_backend(pid) FROM unnest(ARRAY[%s]) pid" % ",".join(map(str, pids)))
        time.sleep(0.5)
        self.assertNotIn("r", results, "answered before the lock was released: %r" % results.get("r"))
        release()
        t.join(15)
        self.assertFalse(t.is_alive(), "the GET got no answer")
        r = results["r"]
        self.assertEqual((r.status, r.json()), (200, want), "GET whose connection was killed: %r\n%s"
                         % (r, s.stderr()[-2000:]))
        self.finish(s)

    def test_read_lost_on_the_wire_is_retried_exactly_once(self):
        proxy = dbharness.TcpProxy()
        self.addCleanup(proxy.close)
        s, port = self.serve(url=proxy.url(self.db.name), threads=1, pool={"max_open": 2, "acquire_timeout": "10s"})
        uid = self.ids[11]
        want = self.user(uid)
        self.assertEqual(http1_request(port, "GET", "/api/v1/users/%d" % uid).status, 200)
        before = proxy.bind_count("users_get")
        release = self.lock_users()
        results = {}

        def get():
            results["r"] = http1_request(port, "GET", "/api/v1/users/%d" % uid, timeout=20)
        t = threading.Thread(target=get, daemon=True)
        t.start()
        self.wait_backend_waiting_on_lock("SELECT%FROM users WHERE id%")
        self.assertGreaterEqual(proxy.kill_all(), 1)
        time.sleep(0.3)
        self.assertNotIn("r", results, "answered before the lock was released: %r" % results.get("r"))
        release()
        t.join(15)
        self.assertFalse(t.is_alive(), "the GET got no answer")
        r = results["r"]
        self.assertEqual((r.status, r.json()), (200, want), "GET whose connection was cut: %r\n%s"
                         % (r, s.stderr()[-2000:]))
        self.assertEqual(proxy.bind_count("users_get") - before, 2, "expected the first send and one retry")
        self.finish(s)

    def test_cancel_meant_for_an_abandoned_read_spares_the_next_write(self):
        # One connection. A GET waits on a lock; a POST is pipelined behind it on the same connection. The GET's client
        # resets its stream, so hydrant sends a cancel request for it (PQcancel: a new TCP connection), which the proxy
        # holds back 3 s. Meanwhile the lock moves on: the GET completes, and the POST starts and waits on a SHARE
        # lock. The late cancel then stops whatever that backend runs: the POST. That cancel was not meant for it:
        # its client must not get a 504 database_timeout (no statement_timeout is set); a cancelled INSERT did not
        # happen, so it may be sent again (201) or answered 503.
        proxy = dbharness.TcpProxy()
        self.addCleanup(proxy.close)
        s, port = self.serve(url=proxy.url(self.db.name), threads=1,
                             pool={"max_open": 1, "acquire_timeout": "20s"})
        uid = self.ids[6]
        self.assertEqual(http1_request(port, "GET", "/api/v1/users/%d" % uid).status, 200)
        release = self.lock_users()
        h2 = harness.H2Client(port, timeout=10)
        self.addCleanup(h2.close)
        self.assertTrue(h2.wait_settings())
        sid = h2.request("/api/v1/users/%d" % uid)
        self.wait_backend_waiting_on_lock("SELECT%FROM users WHERE id%")
        email = "stray-cancel@example.com"
        t, results = self.post_in_background(port, email)
        self.assertTrue(dbharness.wait_until(lambda: proxy.bind_count("users_create") == 1, 5),
                        "the INSERT was not pipelined behind the waiting SELECT")
        # a SHARE lock queued behind the ACCESS EXCLUSIVE one: it will let the SELECT through and hold the INSERT
        share = self.session()
        share.query("BEGIN")
        marker = share.send("LOCK TABLE users IN SHARE MODE")
        self.addCleanup(lambda: share.query("ROLLBACK"))
        self.assertTrue(dbharness.wait_until(lambda: self.db.sql(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND mode = 'ShareLock' "
            "AND relation = 'users'::regclass") == "1", 5), "the SHARE lock is not queued")
        accepted = proxy.accepted
        proxy.connect_delay = 3.0
        h2.conn.reset_stream(sid, error_code=8)  # the SELECT has been running for well over 20 ms
        h2.flush()
        if not dbharness.wait_until(lambda: proxy.accepted > accepted, 3):
            self.skipTest("no cancel request was sent for the abandoned statement")
        proxy.connect_delay = 0
        release()
        share.collect(marker, timeout=10)
        self.wait_backend_waiting_on_lock("INSERT INTO users%")
        insert_waiting = time.monotonic()
        t.join(8)  # the held cancel request reaches PostgreSQL 3 s after the reset
        cancel_at = proxy.delayed_done[0] if proxy.delayed_done else None
        share.query("ROLLBACK")
        t.join(10)
        self.assertFalse(t.is_alive(), "the POST got no answer")
        if cancel_at is None or cancel_at < insert_waiting:
            self.skipTest("too slow here: the cancel request went through before the INSERT was waiting")
        r = results["r"]
        count = self.db.sql("SELECT count(*) FROM users WHERE email = '%s'" % email)
        self.assertNotEqual(r.status, 504, "POST behind an abandoned GET got %r: the cancel request meant for the GET "
                            "stopped the INSERT\n%s" % (r, s.stderr()[-2000:]))
        self.assertIn(r.status, (201, 503), r)
        self.assertEqual(count, "1" if r.status == 201 else "0")
        self.finish(s)

    def test_idle_connections_killed_are_replaced(self):
        # backends killed while idle: the next requests (writes included) must not fail or report outcome_unknown
        s, port = self.serve(threads=2, pool={"max_open": 4, "acquire_timeout": "5s"})
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
            list(ex.map(lambda i: http1_request(port, "GET", "/api/v1/users/%d" % self.ids[i]), range(16), timeout=30))
        killed = self.db.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE application_name = 'hydrant' AND datname = current_database()")
        self.assertGreaterEqual(int(killed), 1)
        time.sleep(0.3)
        for i in range(6):
            proto = PROTOCOLS[i % 2]
            r = dbharness.request(proto, port, "POST", "/api/v1/users", headers=CT_JSON,
                                  body=json.dumps({"name": "Idle %d" % i, "email": "idle-%d@example.com" % i}))
            self.assertEqual(r.status, 201, r)
            r = dbharness.request(proto, port, "GET", "/api/v1/users/%d" % self.ids[i])
            self.assertEqual(r.status, 200, r)
        self.assertTrue(dbharness.wait_pool_ready(port, 5))
        self.finish(s)


    # ---- (g) statement_timeout, queue_limit, connection lifetimes ----

    def test_statement_timeout_is_504(self):
        s, port = self.serve(threads=1, pool={"max_open": 2, "statement_timeout": "300ms", "acquire_timeout": "5s"})
        uid = self.ids[2]
        self.assertEqual(http1_request(port, "GET", "/api/v1/users/%d" % uid).status, 200)
        release = self.lock_users()
        for proto in PROTOCOLS:
            for method, path, body in (("GET", "/api/v1/users/%d" % uid, None),
                                       ("POST", "/api/v1/users", '{"name":"T","email":"timeout@example.com"}')):
                with self.subTest(proto=proto, method=method):
                    t0 = time.monotonic()
                    r = dbharness.request(proto, port, method, path, body=body, headers=CT_JSON if body else None)
                    took = time.monotonic() - t0
                    self.assertEqual(r.status, 504, r)
                    self.assertEqual(r.json()["error"], "database_timeout", r)
                    self.assertLess(took, 2.0)
        release()
        r = http1_request(port, "GET", "/api/v1/users/%d" % uid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.db.sql("SELECT count(*) FROM users WHERE email = 'timeout@example.com'"), "0")
        self.finish(s)

    def test_queue_limit_answers_503_at_once(self):
        s, port = self.serve(threads=1, pool={"max_open": 1, "pipeline_depth": 1, "queue_limit": 2,
                                              "acquire_timeout": "10s"})
        uid = self.ids[3]
        self.assertEqual(http1_request(port, "GET", "/api/v1/users/%d" % uid).status, 200)
        release = self.lock_users()
        c = harness.H2Client(port, timeout=15)
        self.addCleanup(c.close)
        self.assertTrue(c.wait_settings())
        sids = [c.request("/api/v1/users/%d" % uid) for _ in range(12)]
        # one statement in flight, two queued: the other nine are refused at once
        c.receive_until(lambda: sum(c.responses[x]["ended"] for x in sids) >= 9, timeout=3)
        early = [x for x in sids if c.responses[x]["ended"]]
        self.assertGreaterEqual(len(early), 9, "queue_limit 2: expected >= 9 immediate answers, got %d" % len(early))
        for x in early:
            self.assert_503(c.response(x), "database_unavailable")
        release()
        self.assertTrue(c.wait_all(sids))
        late = [c.response(x) for x in sids if x not in early]
        self.assertEqual([r.status for r in late], [200] * len(late))
        self.finish(s)

    def test_ready_stays_200_with_max_idle_time(self):
        # max_idle_time closes idle connections; the one thread 0 keeps warm must not make /ready flap while the
        # database is fine
        s, port = self.serve(threads=2, pool={"max_idle_time": "200ms", "acquire_timeout": "2s"})
        statuses = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            statuses.append(http1_request(port, "GET", "/ready").status)
            time.sleep(0.005)
        bad = sum(1 for x in statuses if x != 200)
        self.assertEqual(bad, 0, "/ready answered 503 %d times out of %d in 2s with a healthy database "
                                 "(max_idle_time 200ms)" % (bad, len(statuses)))
        self.finish(s)

    def test_max_lifetime_replaces_connections_without_errors(self):
        s, port = self.serve(threads=2, pool={"max_open": 3, "max_lifetime": "300ms", "acquire_timeout": "5s"})
        pids = set()
        errors = []
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as ex:
            # until more backends than max_open were seen (so some were replaced), at most 8 s
            while len(pids) <= 3 and time.monotonic() - t0 < 8.0:
                rs = list(ex.map(lambda i: http1_request(port, "GET", "/api/v1/users/%d/profile" % self.ids[i]),
                                 range(6), timeout=30))
                errors += [r for r in rs if r.status != 200]
                pids |= {row[0] for row in self.backends()}
        self.assertEqual(errors, [])
        self.assertGreater(len(pids), 3, "max_lifetime 300ms, up to 8 s of traffic: expected the backends to be "
                           "replaced, saw %r"
                           % sorted(pids))
        self.assertLessEqual(len(self.backends()), 3)
        self.finish(s)

    def test_idle_connections_beyond_max_idle_are_closed(self):
        # pipeline_depth 1 makes a burst open many connections; once it is over, at most max_idle stay open
        s, port = self.serve(threads=2, pool={"max_open": 10, "max_idle": 2, "pipeline_depth": 1,
                                              "acquire_timeout": "10s"})
        sampler = ActivitySampler(self.db.name)
        sampler.start()
        try:
            self.assertTrue(dbharness.wait_until(lambda: sampler.samples or sampler.error, 10), "no first sample")
            uris = ["http://127.0.0.1:%d/api/v1/users?limit=100&after=%d" % (port, uid) for uid in self.ids[:20]]
            p = subprocess.run(["h2load", "-n", "1500", "-c", "20", "-m", "10", "-t", "2"] + uris,
                               capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
        finally:
            samples = sampler.stop()
        self.assertRegex(p.stdout, r"status codes: 1500 2xx, 0 3xx, 0 4xx, 0 5xx", p.stdout + p.stderr)
        peak = max(samples)
        self.assertLessEqual(peak, 10)
        if peak <= 2:
            self.skipTest("the burst never needed more than %d connections" % peak)
        self.assertTrue(dbharness.wait_until(lambda: len(self.backends()) <= 2, 3),
                        "max_idle 2: %d connections still open 3s after the burst (peak %d)"
                        % (len(self.backends()), peak))
        self.finish(s)

    # ---- signals with a database configured ----

    def test_signals_with_a_database(self):
        # The same signals as test_lifecycle, with a database section: SIGHUP keeps serving, SIGTERM drains and
        # exits 0 (not killed by the signal).
        s, port = self.serve(threads=2)
        s.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertTrue(s.alive(), "SIGHUP killed the server (exit %s)\n%s" % (s.proc.poll(), s.describe()))
        self.assertEqual(http1_request(port, "GET", "/api/v1/users/%d" % self.ids[0]).status, 200)
        rc, secs = s.terminate()
        self.assertEqual(rc, 0, "SIGTERM: exit %s (a negative status is death by that signal)\n%s"
                         % (rc, s.describe()))
        s.assert_no_sanitizer_report()

    # ---- (h) SIGTERM with statements in flight ----

    def test_sigterm_with_statements_in_flight(self):
        # statements stuck on a lock (sent ones and queued ones, on both threads) when SIGTERM comes: the drain
        # deadline (shutdown: 1s) ends it, the exit is 0 and clean (no sanitizer report with an Asan binary)
        s, port = self.serve(threads=2, timeouts={"shutdown": "1s"},
                             pool={"max_open": 2, "pipeline_depth": 4, "acquire_timeout": "10s"})
        uid = self.ids[4]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
            list(ex.map(lambda i: http1_request(port, "GET", "/api/v1/users/%d" % uid), range(16), timeout=30))
        release = self.lock_users()
        clients = []
        for _ in range(4):
            c = harness.H2Client(port, timeout=10)
            self.addCleanup(c.close)
            self.assertTrue(c.wait_settings())
            clients.append((c, [c.request(p) for p in ("/api/v1/users/%d" % uid, "/api/v1/users/%d/profile" % uid,
                                                       "/api/v1/users?limit=5") * 5]))
        socks = []
        for i in range(10):
            so = socket.create_connection(("127.0.0.1", port), timeout=10)
            self.addCleanup(so.close)
            so.sendall(b"POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % ((lambda b: (len(b), b))(
                           b'{"name":"Sig","email":"sig-%d@example.com"}' % i)))
            socks.append(so)
        self.wait_backend_waiting_on_lock("%users%")
        time.sleep(0.2)
        rc, secs = s.terminate(timeout=10)
        release()
        self.assertEqual(rc, 0, s.describe())
        self.assertLess(secs, 4.0, "exit took %.1fs with shutdown: 1s" % secs)
        s.assert_no_sanitizer_report()


def dbharness_user_sql():
    return ("SELECT id, name, email, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
            "FROM users")


if __name__ == "__main__":
    dbharness.run_tests()
