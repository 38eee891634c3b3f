"""dbharness.py: PostgreSQL helpers for hydrant's database integration tests (test_users, test_db_faults,
test_migrate), on top of harness.py.

- The tests need HYDRANT_TEST_DATABASE_URL (tools/dev test starts a throwaway PostgreSQL 15 and sets it, with
  HYDRANT_PG_DIR and HYDRANT_PG_PORT). Without it every test class is skipped with a clear reason and the file
  exits 0.
- Each test file makes its own database, hy_it_<file>_<pid>, on that server (psql), points hydrant at it with
  DATABASE_URL, applies conf/migrations with `hydrant migrate`, and drops it at the end.
- psql is the only database client (no Python driver is installed): one-shot `psql -c`, or a long-lived session
  (PsqlSession) for holding locks and sampling pg_stat_activity.
- TcpProxy sits between hydrant and PostgreSQL to lose connections on the wire and to count the statements sent.
Everything is on 127.0.0.1; every subprocess and read has a timeout.
"""

import atexit
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import REPO, Server, clean_env, free_port, hydrant_bin, make_config, plain_listener, run  # noqa: E402

TEST_URL = os.environ.get("HYDRANT_TEST_DATABASE_URL") or None
PG_DIR = os.environ.get("HYDRANT_PG_DIR") or None
PG_PORT = os.environ.get("HYDRANT_PG_PORT") or None
SKIP_REASON = ("HYDRANT_TEST_DATABASE_URL is not set (run `tools/dev test`, or start tools/pg and export "
               "HYDRANT_TEST_DATABASE_URL, HYDRANT_PG_DIR and HYDRANT_PG_PORT)")
MIGRATIONS = os.path.join(REPO, "conf", "migrations")
SECRET = "s3cr3t-pw"  # a password that must never show up in hydrant's output
PSQL_TIMEOUT = 30.0


def needs_db(cls):
    """Class decorator: skip (with a clear reason, printed by unittest) when there is no test database."""
    return unittest.skipUnless(TEST_URL, SKIP_REASON)(cls)


def run_tests():
    """harness.run_tests, after saying plainly when everything will be skipped."""
    if not TEST_URL:
        print("skipped: " + SKIP_REASON, flush=True)
    harness.run_tests()


# ---- URLs ------------------------------------------------------------------------------------------------------------


def url_with(url=None, dbname=None, user=None, password=None, port=None, host=None, application_name=None):
    """TEST_URL (or `url`) with some parts replaced. The query (sslmode=disable) is kept."""
    u = urllib.parse.urlsplit(url or TEST_URL)
    cur_user = urllib.parse.unquote(u.username or "")
    cur_pw = urllib.parse.unquote(u.password) if u.password is not None else None
    user = cur_user if user is None else user
    password = cur_pw if password is None else password
    host = u.hostname if host is None else host
    port = u.port if port is None else port
    netloc = urllib.parse.quote(user, safe="")
    if password is not None:
        netloc += ":" + urllib.parse.quote(password, safe="")
    netloc += "@%s" % host
    if port:
        netloc += ":%d" % int(port)
    path = "/" + (dbname if dbname is not None else u.path.lstrip("/"))
    query = u.query
    if application_name:
        query = (query + "&" if query else "") + "application_name=" + application_name
    return urllib.parse.urlunsplit((u.scheme, netloc, path, query, ""))


def server_port():
    """The port of the test PostgreSQL."""
    return urllib.parse.urlsplit(TEST_URL).port or 5432


def closed_port():
    """A loopback TCP port nothing listens on (free a moment ago)."""
    return free_port()


# ---- psql ------------------------------------------------------------------------------------------------------------


class PsqlError(AssertionError):
    pass


def psql(sql, url=None, timeout=PSQL_TIMEOUT, check=True):
    """Runs `sql` with psql (-X -qtA, ON_ERROR_STOP) on `url` (default TEST_URL); returns stdout, stripped."""
    p = run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url or TEST_URL, "-c", sql],
            timeout=timeout, env=clean_env(PGCONNECT_TIMEOUT="5"))
    if check and p.returncode != 0:
        raise PsqlError("psql failed (%d) on %r:\n%s" % (p.returncode, sql[:300], p.stderr))
    return p.stdout.strip()


def psql_rows(sql, url=None, sep="|"):
    """Rows of a query as lists of strings (psql -A output split on `sep`)."""
    out = psql(sql, url=url)
    return [line.split(sep) for line in out.splitlines() if line != ""]


class PsqlSession:
    """One long-lived psql process (stdin/stdout pipes). `query(sql)` runs one statement and returns its output lines;
    completion is detected with a marker echoed after the statement, so statements that print nothing work too."""

    _n = 0

    def __init__(self, url=None, timeout=PSQL_TIMEOUT):
        self.timeout = timeout
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-t", "-A", "-d", url or TEST_URL], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=clean_env(),
                                     bufsize=0)
        self.buf = b""
        self.lock = threading.Lock()

    def _readline(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PsqlError("psql session: no answer within %.0fs (have %r)" % (self.timeout, self.buf[-300:]))
            r, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise PsqlError("psql session ended: %r" % self.buf[-300:])
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("utf-8", "replace")

    def send(self, sql):
        """Sends a statement without waiting for it (e.g. one that blocks on a lock); collect() reads its answer."""
        with self.lock:
            PsqlSession._n += 1
            marker = "__hy_done_%d__" % PsqlSession._n
            self.proc.stdin.write(("%s\n\\echo %s\n" % (sql.rstrip().rstrip(";") + ";", marker)).encode())
            self.proc.stdin.flush()
            return marker

    def collect(self, marker, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        while True:
            line = self._readline(deadline)
            if line == marker:
                return lines
            lines.append(line)

    def query(self, sql, timeout=None):
        lines = self.collect(self.send(sql), timeout)
        errors = [l for l in lines if l.startswith("ERROR:") or l.startswith("psql:")]
        if errors:
            raise PsqlError("psql session: %r failed: %s" % (sql[:200], "\n".join(lines)))
        return lines

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"\\q\n")
                self.proc.stdin.flush()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


# ---- one database per test file --------------------------------------------------------------------------------------


class TestDatabase:
    """CREATE DATABASE hy_it_<tag>_<pid> on the test server; drop() (also registered at exit) removes it."""

    def __init__(self, tag):
        self.name = "hy_it_%s_%d" % (tag, os.getpid())
        self.url = url_with(dbname=self.name)
        self.dropped = True
        self.registered = False

    def create(self):
        """Creates the database, empty (dropping a previous one of the same name)."""
        psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name)
        psql('CREATE DATABASE "%s"' % self.name)
        self.dropped = False
        if not self.registered:
            atexit.register(self.drop)
            self.registered = True
        return self

    def drop(self):
        if self.dropped:
            return
        try:
            psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name)
            self.dropped = True
        except Exception as e:  # the server may be down after a failed fault test: say so, do not mask the result
            print("dbharness: could not drop database %s: %s" % (self.name, e), file=sys.stderr)

    def sql(self, text):
        return psql(text, url=self.url)

    def rows(self, text):
        return psql_rows(text, url=self.url)

    def hydrant_backends(self):
        """Connections hydrant holds to this database (pg_stat_activity, application_name 'hydrant')."""
        return int(psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hydrant' AND datname = '%s'"
                        % self.name))


# ---- configs, migrate, seed ------------------------------------------------------------------------------------------

USERS_ROUTES = """\
routes:
  - path: /health
    handler: health
  - path: /ready
    handler: ready
  - path: /api/v1/users
    methods: [GET]
    handler: users.list
  - path: /api/v1/users
    methods: [POST]
    handler: users.create
  - path: /api/v1/users/{id:int}
    methods: [GET]
    handler: users.get
  - path: /api/v1/users/{id:int}
    methods: [PUT]
    handler: users.update
  - path: /api/v1/users/{id:int}
    methods: [DELETE]
    handler: users.delete
  - path: /api/v1/users/{id:int}/profile
    methods: [GET]
    handler: users.profile
"""


def database_section(migrations=MIGRATIONS, pool=None, fields=None):
    """The YAML `database:` section: the absolute migrations folder, optional connection `fields` (dict) and `pool`
    settings (dict). The connection itself normally comes from DATABASE_URL in the environment."""
    out = ["database:", "  migrations: %s" % harness.q(migrations)]
    for k, v in (fields or {}).items():
        out.append("  %s: %s" % (k, harness.q(v)))
    if pool:
        out.append("  pool:")
        for k, v in pool.items():
            out.append("    %s: %s" % (k, v))
    return "\n".join(out) + "\n"


def db_config(port, threads=2, pool=None, limits=None, timeouts=None, migrations=MIGRATIONS, fields=None,
              routes=USERS_ROUTES):
    """A serve config: one plain listener on `port`, a database section, and the users routes."""
    return make_config([plain_listener(port)], threads=threads, timeouts=timeouts, limits=limits,
                       routes=database_section(migrations, pool, fields) + routes)


def migrate(config_path, url, timeout=60, env=None):
    """`hydrant migrate -c CONFIG` with DATABASE_URL=url; returns the CompletedProcess."""
    e = clean_env(DATABASE_URL=url) if env is None else env
    return run([hydrant_bin(), "migrate", "-c", config_path], timeout=timeout, env=e, cwd=REPO)


def seed(url, n, timeout=120):
    """tools/seed N on `url`."""
    p = run([os.path.join(REPO, "tools", "seed"), str(n)], timeout=timeout, env=clean_env(DATABASE_URL=url), cwd=REPO)
    if p.returncode != 0:
        raise PsqlError("tools/seed %d failed:\n%s\n%s" % (n, p.stdout, p.stderr))
    return p


def prepare_database(tag, seed_users=0):
    """Creates this file's database, applies the migrations (asserting success) and seeds it. Returns TestDatabase."""
    db = TestDatabase(tag).create()
    d = harness.make_tempdir("hydrant-it-migrate-")
    cfg = harness.write_file(d, "migrate.yaml", db_config(free_port()))
    p = migrate(cfg, db.url)
    if p.returncode != 0:
        raise PsqlError("hydrant migrate failed (%d):\n%s\n%s" % (p.returncode, p.stdout, p.stderr))
    if seed_users:
        seed(db.url, seed_users)
    return db


def start_db_server(db_url, port=None, wait=True, **config_kw):
    """Starts `hydrant serve` on a fresh port with DATABASE_URL=db_url and db_config(**config_kw). Returns (Server,
    port). With wait, waits for /health. The caller stops/cleans it."""
    port = port or free_port()
    s = Server(db_config(port, **config_kw), env=clean_env(DATABASE_URL=db_url))
    try:
        s.start(ready_port=port if wait else None)
    except BaseException:
        s.kill()
        raise
    return s, port


def wait_until(pred, timeout, interval=0.05):
    """Polls pred() until it is true or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    v = pred()
    while not v and time.monotonic() < deadline:
        time.sleep(interval)
        v = pred()
    return v


def wait_pool_ready(port, timeout=10):
    """Waits until GET /ready says 200 (the pool has a live connection)."""
    def ready():
        try:
            return harness.http1_request(port, "GET", "/ready", timeout=2).status == 200
        except OSError:
            return False
    return wait_until(ready, timeout)


# ---- HTTP/1.1 and h2c one-shot requests ------------------------------------------------------------------------------


h2_request = harness.h2_request


def h1_request(port, method, path, body=None, headers=None, timeout=harness.CLIENT_TIMEOUT):
    if isinstance(body, str):
        body = body.encode("utf-8")
    return harness.http1_request(port, method, path, body=body, headers=dict(headers or {}), timeout=timeout)


PROTOCOLS = ("http/1.1", "h2c")


def request(proto, port, method, path, body=None, headers=None, timeout=harness.CLIENT_TIMEOUT):
    """One request over `proto` ("http/1.1" or "h2c"). `headers` is a dict."""
    if proto == "h2c":
        return h2_request(port, method, path, body=body, headers=[(k.lower(), v) for k, v in (headers or {}).items()],
                          timeout=timeout)
    return h1_request(port, method, path, body=body, headers=headers, timeout=timeout)


# ---- a TCP proxy in front of PostgreSQL ------------------------------------------------------------------------------


class TcpProxy:
    """A loopback TCP proxy to PostgreSQL (host/port of TEST_URL) that can cut every connection at once with an RST
    (kill_all), so a statement is lost on the wire while its backend goes on, and can hold new connections back
    (connect_delay; cancel requests are new connections too). It records what clients sent, so a test can count the
    statements that went out (bind_count)."""

    def __init__(self, upstream_host=None, upstream_port=None):
        u = urllib.parse.urlsplit(TEST_URL)
        self.upstream = (upstream_host or u.hostname, int(upstream_port or u.port or 5432))
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.pairs = []
        self.dangling = []
        self.sent = []  # bytes sent by each client connection (bytearray per connection)
        self.lock = threading.Lock()
        self.closing = False
        self.connect_delay = 0.0  # seconds a new connection waits before it reaches PostgreSQL
        self.accepted = 0  # connections accepted so far
        self.delayed_done = []  # monotonic times at which held-back connections were let through
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def url(self, dbname):
        return url_with(dbname=dbname, host="127.0.0.1", port=self.port)

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            if self.connect_delay > 0:
                threading.Thread(target=self._connect, args=(c, self.connect_delay), daemon=True).start()
            else:
                self._connect(c, 0)

    def _connect(self, c, delay):
        if delay:
            time.sleep(delay)
        try:
            u = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            c.close()
            return
        if delay:
            with self.lock:
                self.delayed_done.append(time.monotonic())
        log = bytearray()
        with self.lock:
            self.pairs.append((c, u))
            self.sent.append(log)
        threading.Thread(target=self._pump, args=(c, u, log), daemon=True).start()
        threading.Thread(target=self._pump, args=(u, c, None), daemon=True).start()

    def _pump(self, src, dst, log):
        src.settimeout(None)
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if log is not None:
                    with self.lock:
                        log += data
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @staticmethod
    def _rst(s):
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.shutdown(socket.SHUT_RD)  # wakes the pump blocked in recv; sends nothing
        except OSError:
            pass
        try:
            s.close()  # linger 0: RST
        except OSError:
            pass

    def kill_all(self):
        """Cuts every proxied connection: an RST to the client (hydrant); the backend's side is left open, so the
        statement it is running goes on (as when a network path dies)."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
            self.dangling += [u for _, u in pairs]
        for c, _ in pairs:
            self._rst(c)
        return len(pairs)

    def bind_count(self, statement):
        """How many Bind messages for the prepared statement `statement` clients sent (unnamed portal)."""
        pat = re.compile(rb"B.{4}\x00" + re.escape(statement.encode()) + rb"\x00", re.S)
        with self.lock:
            return sum(len(pat.findall(bytes(log))) for log in self.sent)

    def close(self):
        self.closing = True
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            pairs, self.pairs = self.pairs, []
            dangling, self.dangling = self.dangling, []
        for c, u in pairs:
            self._rst(c)
            self._rst(u)
        for u in dangling:
            self._rst(u)
        self.thread.join(2)
