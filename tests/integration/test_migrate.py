"""test_migrate.py: `hydrant migrate -c FILE` against a real PostgreSQL: a fresh database gets 0001..0003 (exit 0, each
listed), a second run is a no-op, the tables and columns are as specified, a failing migration stops with its file
name and the server's error (exit 1) leaving the earlier ones applied and itself unrecorded, no database is exit 2, an
unreachable one exit 1; and the password never appears in the output of migrate, check or serve.

Needs HYDRANT_TEST_DATABASE_URL (tools/dev test); skipped otherwise. Each test recreates this file's database
(hy_it_migrate_<pid>), dropped at the end."""

import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import dbharness  # noqa: E402
from dbharness import MIGRATIONS, SECRET, needs_db, psql  # noqa: E402
from harness import clean_env, free_port, hydrant_bin, make_tempdir, run, write_file  # noqa: E402

NAMES = ["0001_users.sql", "0002_orders.sql", "0003_preferences.sql"]
NO_DB_ROUTES = """\
routes:
  - path: /health
    handler: health
"""


def where(url):
    """What migrate prints for a URL: user@host:port/dbname."""
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    return "%s@%s:%s/%s" % (u.username, u.hostname, u.port, u.path.lstrip("/"))


@needs_db
class Migrate(unittest.TestCase):
    maxDiff = None
    db = None

    @classmethod
    def setUpClass(cls):
        cls.db = dbharness.TestDatabase("migrate")
        cls.role = "hy_it_pw_%d" % os.getpid()

    @classmethod
    def tearDownClass(cls):
        if cls.db is not None:
            cls.db.drop()
        psql('DROP ROLE IF EXISTS "%s"' % cls.role, check=False)

    def setUp(self):
        self.db.create()  # fresh for every test
        self.tmp = make_tempdir()

    # ---- helpers ----

    def config(self, migrations=MIGRATIONS, fields=None, routes=dbharness.USERS_ROUTES, name="hydrant.yaml",
               database=True):
        if database:
            text = dbharness.db_config(free_port(), migrations=migrations, fields=fields, routes=routes)
        else:
            text = harness.make_config([harness.plain_listener(free_port())], routes=routes)
        return write_file(self.tmp, name, text)

    def migrate(self, cfg, url=None, env=None):
        return dbharness.migrate(cfg, url or self.db.url, env=env)

    def tables(self):
        return sorted(r[0] for r in self.db.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"))

    def versions(self):
        return self.db.rows("SELECT version, name FROM schema_migrations ORDER BY version")

    def assert_secret_absent(self, *texts):
        for t in texts:
            self.assertNotIn(SECRET, t)

    # ---- applying ----

    def test_fresh_database_then_no_op(self):
        cfg = self.config()
        p = self.migrate(cfg)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.splitlines(), ["applied %s" % n for n in NAMES] +
                         ["%s: applied 3 migrations" % where(self.db.url)])
        self.assertEqual(p.stderr, "")
        self.assertEqual(self.versions(), [[n[:4], n] for n in NAMES])
        self.assertEqual(self.tables(), ["orders", "preferences", "schema_migrations", "users"])
        applied_at = self.db.sql("SELECT string_agg(applied_at::text, ',' ORDER BY version) FROM schema_migrations")
        p = self.migrate(cfg)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "%s: schema is up to date (3 migrations)\n" % where(self.db.url))
        self.assertEqual(p.stderr, "")
        self.assertEqual(self.db.sql("SELECT string_agg(applied_at::text, ',' ORDER BY version) "
                                     "FROM schema_migrations"), applied_at)

    def test_schema_is_as_specified(self):
        p = self.migrate(self.config())
        self.assertEqual(p.returncode, 0, p.stderr)
        cols = self.db.rows("SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '') "
                            "FROM information_schema.columns WHERE table_schema = 'public' "
                            "ORDER BY table_name, ordinal_position")
        got = {(t, c): (ty, null, d) for t, c, ty, null, d in cols}
        want = {
            ("users", "id"): ("bigint", "NO", "nextval('users_id_seq'::regclass)"),
            ("users", "name"): ("text", "NO", ""),
            ("users", "email"): ("text", "NO", ""),
            ("users", "created_at"): ("timestamp with time zone", "NO", "now()"),
            ("orders", "id"): ("bigint", "NO", "nextval('orders_id_seq'::regclass)"),
            ("orders", "user_id"): ("bigint", "NO", ""),
            ("orders", "total_cents"): ("bigint", "NO", ""),
            ("orders", "status"): ("text", "NO", "'pending'::text"),
            ("orders", "created_at"): ("timestamp with time zone", "NO", "now()"),
            ("preferences", "user_id"): ("bigint", "NO", ""),
            ("preferences", "data"): ("jsonb", "NO", "'{}'::jsonb"),
            ("schema_migrations", "version"): ("text", "NO", ""),
            ("schema_migrations", "name"): ("text", "NO", ""),
            ("schema_migrations", "applied_at"): ("timestamp with time zone", "NO", "now()"),
        }
        self.assertEqual(got, want)
        cons = self.db.rows("SELECT conrelid::regclass::text, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                            "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2, 3")
        self.assertEqual(sorted(tuple(c) for c in cons), sorted([
            ("orders", "c", "CHECK ((status = ANY (ARRAY['pending'::text, 'paid'::text, 'shipped'::text, "
                            "'delivered'::text, 'cancelled'::text])))"),
            ("orders", "c", "CHECK ((total_cents >= 0))"),
            ("orders", "f", "FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE"),
            ("orders", "p", "PRIMARY KEY (id)"),
            ("preferences", "f", "FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE"),
            ("preferences", "p", "PRIMARY KEY (user_id)"),
            ("schema_migrations", "p", "PRIMARY KEY (version)"),
            ("users", "p", "PRIMARY KEY (id)"),
            ("users", "u", "UNIQUE (email)"),
        ]))
        idx = self.db.sql("SELECT indexdef FROM pg_indexes WHERE indexname = 'orders_user_created'")
        self.assertEqual(idx, "CREATE INDEX orders_user_created ON public.orders USING btree "
                              "(user_id, created_at DESC, id DESC)")

    def test_relative_migrations_folder_is_beside_the_config(self):
        shutil.copytree(MIGRATIONS, os.path.join(self.tmp, "m"))
        cfg = self.config(migrations="m")
        p = subprocess.run([hydrant_bin(), "migrate", "-c", cfg], capture_output=True, text=True, timeout=60,
                           env=clean_env(DATABASE_URL=self.db.url), cwd="/", stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r[1] for r in self.versions()], NAMES)

    def test_other_files_are_ignored(self):
        d = os.path.join(self.tmp, "mixed")
        os.mkdir(d)
        shutil.copy(os.path.join(MIGRATIONS, NAMES[0]), d)
        for junk in ("README.md", "01_short.sql", "0002-dash.sql", "0003_users.txt", "abcd_letters.sql",
                     "0004_.sql"):
            write_file(d, junk, "THIS IS NOT SQL;\n")
        p = self.migrate(self.config(migrations=d))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.splitlines(), ["applied 0001_users.sql",
                                                 "%s: applied 1 migration" % where(self.db.url)])

    def test_two_migrators_at_once_apply_each_file_once(self):
        cfg = self.config()
        env = clean_env(DATABASE_URL=self.db.url)
        procs = [subprocess.Popen([hydrant_bin(), "migrate", "-c", cfg], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)
                 for _ in range(3)]
        outs = [p.communicate(timeout=60) for p in procs]
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, err)
        applied = [l for out, _ in outs for l in out.splitlines() if l.startswith("applied ")]
        self.assertEqual(sorted(applied), ["applied %s" % n for n in NAMES])
        self.assertEqual(len(self.versions()), 3)

    # ---- failures ----

    def broken_dir(self, broken_sql):
        d = os.path.join(self.tmp, "broken")
        os.mkdir(d)
        shutil.copy(os.path.join(MIGRATIONS, NAMES[0]), d)
        write_file(d, "0002_broken.sql", broken_sql)
        write_file(d, "0003_later.sql", "CREATE TABLE later (id int);\n")
        return d

    def test_failing_migration_stops_and_is_not_recorded(self):
        d = self.broken_dir("CREATE TABLE half_done (id int);\nINSERT INTO half_done SELECT * FROM no_such_table;\n")
        cfg = self.config(migrations=d)
        p = self.migrate(cfg)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(p.stdout, "applied 0001_users.sql\n")
        self.assertIn("0002_broken.sql", p.stderr)
        self.assertIn('relation "no_such_table" does not exist', p.stderr)
        self.assertIn("stopped at 0002_broken.sql", p.stderr)
        self.assertNotIn("0003_later", p.stdout + p.stderr)
        self.assertEqual(self.versions(), [["0001", "0001_users.sql"]])
        self.assertEqual(self.tables(), ["schema_migrations", "users"])  # nothing of 0002 (half_done) stays
        # fixed, the next run applies 0002 and 0003 only
        write_file(d, "0002_broken.sql", "CREATE TABLE half_done (id int);\n")
        p = self.migrate(cfg)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.splitlines(), ["applied 0002_broken.sql", "applied 0003_later.sql",
                                                 "%s: applied 2 migrations" % where(self.db.url)])
        self.assertEqual(self.tables(), ["half_done", "later", "schema_migrations", "users"])

    def test_syntax_error_names_the_file_and_the_error(self):
        cfg = self.config(migrations=self.broken_dir("CREAT TABLE oops (id int);\n"))
        p = self.migrate(cfg)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"0002_broken\.sql.*syntax error at or near \"CREAT\"")
        self.assertEqual(self.versions(), [["0001", "0001_users.sql"]])

    def test_missing_migrations_folder(self):
        p = self.migrate(self.config(migrations=os.path.join(self.tmp, "nope")))
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot open migrations folder", p.stderr)
        self.assertIn(os.path.join(self.tmp, "nope"), p.stderr)
        self.assertEqual(self.tables(), [])

    def test_no_database_configured_is_exit_2(self):
        cfg = self.config(database=False, routes=NO_DB_ROUTES)
        p = run([hydrant_bin(), "migrate", "-c", cfg], env=clean_env())
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("no database section", p.stderr)
        self.assertEqual(p.stdout, "")
        # the users routes without a database are a config error: exit 2 as well
        cfg = self.config(database=False, routes=dbharness.USERS_ROUTES, name="users.yaml")
        p = run([hydrant_bin(), "migrate", "-c", cfg], env=clean_env())
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("needs a database", p.stderr)

    def test_unreachable_database_is_exit_1_without_the_password(self):
        port = dbharness.closed_port()
        cfg = self.config()
        url = dbharness.url_with(password=SECRET, port=port, dbname="nowhere")
        for label, env in (
                ("DATABASE_URL", clean_env(DATABASE_URL=url)),
                ("DB_*", clean_env(DB_HOST="127.0.0.1", DB_PORT=str(port), DB_USER="app", DB_PASSWORD=SECRET,
                                   DB_NAME="nowhere", DB_SSLMODE="disable"))):
            with self.subTest(env=label):
                t0 = time.monotonic()
                p = run([hydrant_bin(), "migrate", "-c", cfg], env=env, timeout=30)
                self.assertLess(time.monotonic() - t0, 15)
                self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                self.assertIn("cannot connect to app@127.0.0.1:%d/nowhere" % port, p.stderr)
                self.assert_secret_absent(p.stdout, p.stderr)
        # the password in the file itself
        cfg = self.config(fields={"host": "127.0.0.1", "port": str(port), "user": "app", "password": SECRET,
                                  "name": "nowhere", "sslmode": "disable"}, name="file.yaml")
        p = run([hydrant_bin(), "migrate", "-c", cfg], env=clean_env(), timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assert_secret_absent(p.stdout, p.stderr)

    def test_wrong_password_is_exit_1_without_the_password(self):
        url = dbharness.url_with(dbname=self.db.name, password=SECRET + "-wrong")
        p = self.migrate(self.config(), url=url)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("password authentication failed", p.stderr)
        self.assert_secret_absent(p.stdout, p.stderr)
        self.assertEqual(self.tables(), [])

    # ---- the password never shows ----

    def secret_role(self):
        """A login role whose password is SECRET, owning this test's database."""
        psql('DROP ROLE IF EXISTS "%s"' % self.role, check=False)
        psql("CREATE ROLE \"%s\" LOGIN PASSWORD '%s'" % (self.role, SECRET))
        psql('ALTER DATABASE "%s" OWNER TO "%s"' % (self.db.name, self.role))
        self.db.sql('GRANT ALL ON SCHEMA public TO "%s"' % self.role)
        return dbharness.url_with(dbname=self.db.name, user=self.role, password=SECRET)

    def test_password_never_printed_by_migrate_check_or_serve(self):
        url = self.secret_role()
        cfg = self.config()
        p = self.migrate(cfg, url=url)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("%s@127.0.0.1:" % self.role, p.stdout)
        self.assert_secret_absent(p.stdout, p.stderr)
        p = self.migrate(cfg, url=url)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assert_secret_absent(p.stdout, p.stderr)

        # hydrant check, with the password in DATABASE_URL, DB_PASSWORD, the file's url and the file's password
        file_url = self.config(fields={"url": url}, name="url.yaml")
        file_pw = self.config(fields={"host": "127.0.0.1", "port": str(dbharness.server_port()),
                                      "user": self.role, "password": SECRET, "name": self.db.name,
                                      "sslmode": "disable"}, name="pw.yaml")
        for label, c, env in (("DATABASE_URL", cfg, clean_env(DATABASE_URL=url)),
                              ("DB_PASSWORD", cfg, clean_env(DATABASE_URL=url, DB_PASSWORD=SECRET)),
                              ("file url", file_url, clean_env()),
                              ("file password", file_pw, clean_env())):
            with self.subTest(check=label):
                p = run([hydrant_bin(), "check", "-c", c], env=env)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assertRegex(p.stdout, r"(?m)^database: %s@127\.0\.0\.1:\d+/%s" % (self.role, self.db.name))
                self.assert_secret_absent(p.stdout, p.stderr)
            with self.subTest(migrate=label):
                p = run([hydrant_bin(), "migrate", "-c", c], env=env)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assert_secret_absent(p.stdout, p.stderr)
        # a config error about the URL does not echo it
        p = run([hydrant_bin(), "check", "-c", cfg], env=clean_env(DATABASE_URL="mysql://u:%s@h/db" % SECRET))
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("not a PostgreSQL URL", p.stderr)
        self.assert_secret_absent(p.stdout, p.stderr)

        # serve: connects with the password, logs where it connects, never the password
        s, port = dbharness.start_db_server(url)
        try:
            self.assertTrue(dbharness.wait_pool_ready(port, 10), s.describe())
            r = harness.http1_request(port, "GET", "/api/v1/users?limit=1")
            self.assertEqual(r.status, 200, r)
            s.terminate()
            s.assert_no_sanitizer_report()
        finally:
            s.kill()
        self.assertIn("%s@127.0.0.1" % self.role, s.stderr())
        self.assert_secret_absent(s.stdout(), s.stderr())
        # and with a wrong password: connection errors are logged, the password is not
        s, port = dbharness.start_db_server(dbharness.url_with(dbname=self.db.name, user=self.role,
                                                               password=SECRET + "-wrong"),
                                            pool={"acquire_timeout": "300ms"})
        try:
            r = harness.http1_request(port, "GET", "/api/v1/users/1")
            self.assertEqual(r.status, 503, r)
            time.sleep(0.3)
            s.terminate()
            s.assert_no_sanitizer_report()
        finally:
            s.kill()
        self.assertIn("password authentication failed", s.stderr())
        self.assert_secret_absent(s.stdout(), s.stderr())

    # ---- precedence ----

    def test_database_url_wins_over_the_files_connection_fields(self):
        # conf/hydrant.yaml: "The environment wins over these values ... DATABASE_URL, DB_HOST, ...". A file that sets
        # host/port/name (like the shipped one) must not redirect a DATABASE_URL elsewhere.
        closed = dbharness.closed_port()
        cfg = self.config(fields={"host": "127.0.0.1", "port": str(closed), "user": "app", "password": "app",
                                  "name": "elsewhere", "sslmode": "disable"})
        env = clean_env(DATABASE_URL=self.db.url)
        p = run([hydrant_bin(), "check", "-c", cfg], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("database: %s" % where(self.db.url), p.stdout,
                      "check describes the file's host/port/name although DATABASE_URL is set")
        p = run([hydrant_bin(), "migrate", "-c", cfg], env=env, timeout=30)
        self.assertEqual(p.returncode, 0, "migrate with DATABASE_URL=%s and a file naming port %d / database "
                                          "\"elsewhere\":\n%s%s" % (self.db.url, closed, p.stdout, p.stderr))
        self.assertEqual(len(self.versions()), 3)


if __name__ == "__main__":
    dbharness.run_tests()
