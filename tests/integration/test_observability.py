"""test_observability.py: the observability features of the real binary over real sockets: the request_id, client_ip,
access_log and metrics middleware (global and per route), the access-log file (fields, exclusion, sampling, the
1-second flush and the flush at SIGTERM), the Prometheus exposition (exact counts over HTTP/1.1 and h2c, histograms,
connection gauges, process and build families, promtool, a real Prometheus server scraping it), the admin listener
(which routes answer where), the JSON /status document, the JSON server log on stderr, and (with a test database)
the pool's status and metrics and that a database password never shows up anywhere.

External tools: promtool and /usr/bin/prometheus (Debian's `prometheus` package) and psql; each test that needs one is
skipped with a message when it is missing, and the database tests are skipped without HYDRANT_TEST_DATABASE_URL."""

import calendar
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (H2Client, REPO, Server, clean_env, curl, free_port, http1_request, make_tempdir, q,  # noqa: E402
                     raw_http1)

PROMTOOL = shutil.which("promtool")
PROMETHEUS = "/usr/bin/prometheus"
PSQL = shutil.which("psql")
TEST_DB_URL = os.environ.get("HYDRANT_TEST_DATABASE_URL") or None
DB_SKIP = ("skipped: HYDRANT_TEST_DATABASE_URL is not set (run `tools/dev test`, or `tools/pg start` and export "
           "HYDRANT_TEST_DATABASE_URL=<the URL it prints>)")

ALL_MW = ("request_id", "client_ip", "access_log", "metrics")
PLAIN = "text/plain; charset=utf-8"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NOT_FOUND = b'{"error":"not_found","message":"no route matches this path"}'

# reqid.h: generated ids are 26 characters of lower-case Crockford base32 (no i, l, o, u)
REQID_RE = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")
# accesslog.h: RFC 3339, UTC, milliseconds
TIME_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z$")
# the members of an access-log line, in order; traceparent only when a valid one was sent
LOG_FIELDS = ["time", "level", "request_id", "client_ip", "method", "path", "route", "status", "bytes_in", "bytes_out",
              "duration_us", "protocol", "tls", "user_agent"]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
FLUSH_LIMIT = 2.0  # seconds: the access log is flushed every second; allow the timer's tick and a slow (Asan) build

ROUTES = """\
routes:
  - {path: /health, handler: health}
  - {path: /ready, handler: ready}
  - {path: /plaintext, handler: plaintext}
  - {path: /json, handler: json}
  - {path: /metrics, handler: metrics}
  - {path: /status, handler: status}
  - path: /static
    methods: [GET, POST]
    static: {status: 202, body: "static body"}
  - path: "/items/{id:int}"
    static: {body: "item"}
  - path: /quiet
    handler: plaintext
    middleware: []
  - path: /counted
    handler: json
    middleware: [metrics]
"""
NROUTES = 10


def obs_config(port, log_path, admin_port=None, threads=2, middleware=ALL_MW, trusted=("127.0.0.1/32",), sample=None,
               exclude=("/health",), buckets=None, database=None, routes=ROUTES):
    """The YAML of a server with the observability keys; None leaves a key out."""
    out = ["server:", "  threads: %d" % threads, "  listen:", "    - {host: 127.0.0.1, port: %d}" % port]
    if admin_port is not None:
        out.append("  admin: {host: 127.0.0.1, port: %d}" % admin_port)
    if middleware is not None:
        out.append("middleware: [%s]" % ", ".join(middleware))
    if trusted is not None:
        out.append("client_ip: {trusted_proxies: [%s]}" % ", ".join(q(t) for t in trusted))
    log = []
    if log_path is not None:
        log.append("path: %s" % q(log_path))
    if sample is not None:
        log.append("sample: %s" % sample)
    if exclude:
        log.append("exclude: [%s]" % ", ".join(q(e) for e in exclude))
    if log:
        out.append("access_log: {%s}" % ", ".join(log))
    if buckets is not None:
        out.append("metrics: {buckets: [%s]}" % ", ".join(str(b) for b in buckets))
    if database is not None:
        out.append("database: %s" % database)
    return "\n".join(out) + "\n" + routes


def wait_for(predicate, timeout, interval=0.05):
    """Calls predicate() until it returns a true value or the timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def new_mark():
    return uuid.uuid4().hex[:12]


# LeakSanitizer's summary of the suppressions it used (tests/lsan.supp), printed at exit by Asan builds: not a log line
_LSAN_SUMMARY = re.compile(r"^-+\nSuppressions used:\n(?:.*\n)*?-+\n", re.M)


def server_log(stderr):
    """The server's stderr as parsed JSON lines (a line that is not JSON fails the test)."""
    return [json.loads(l) for l in _LSAN_SUMMARY.sub("", stderr).splitlines() if l.strip()]


# ---- the access log --------------------------------------------------------------------------------------------------


def read_log(path):
    """The access log's complete lines, parsed (a line that is not JSON fails the test)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for raw in data.split(b"\n")[:-1]:  # the last element is "" or an incomplete line
        out.append(json.loads(raw.decode("utf-8")))
    return out


def marked(lines, mark):
    return [l for l in lines if mark in (l.get("path") or "")]


def parse_log_time(value):
    m = TIME_RE.match(value)
    if not m:
        raise AssertionError("time %r is not RFC 3339 UTC with milliseconds" % value)
    y, mo, d, h, mi, s, ms = (int(x) for x in m.groups())
    return calendar.timegm((y, mo, d, h, mi, s)) + ms / 1000.0


# ---- the Prometheus text format --------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def _unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def _value(s):
    return float({"+Inf": "inf", "-Inf": "-inf", "NaN": "nan"}.get(s, s))


class Scrape:
    """One /metrics answer: samples by (name, sorted label pairs), TYPE and HELP lines by family."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        self.order = []  # sample names in the order they appear
        self.types = {}
        self.helps = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, fam, typ = line.split(" ", 3)
                self.types[fam] = typ
            elif line.startswith("# HELP "):
                parts = line.split(" ", 3)
                self.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            elif line.startswith("#") or not line.strip():
                continue
            else:
                m = _SAMPLE.match(line)
                if not m:
                    raise AssertionError("not a sample line: %r" % line)
                labels = {}
                rest = m.group(2) or ""
                pos = 0
                while pos < len(rest):
                    lm = _LABEL.match(rest, pos)
                    if not lm:
                        raise AssertionError("bad labels in %r" % line)
                    labels[lm.group(1)] = _unescape(lm.group(2))
                    pos = lm.end()
                key = (m.group(1), tuple(sorted(labels.items())))
                if key in self.samples:
                    raise AssertionError("sample repeated: %r" % line)
                self.samples[key] = _value(m.group(3))
                self.order.append(m.group(1))

    def get(self, name, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def series(self, name):
        """{label dict as a sorted tuple: value} of every sample called `name`."""
        return {l: v for (n, l), v in self.samples.items() if n == name}

    def requests_total(self):
        """{(method, route, status): count} of http_requests_total."""
        return {(dict(l)["method"], dict(l)["route"], dict(l)["status"]): v
                for l, v in self.series("http_requests_total").items()}


def counter_delta(before, after, ignore_routes=("/metrics",)):
    """The series of after - before that changed (and the new ones), leaving out the routes in ignore_routes."""
    out = {}
    for k, v in after.items():
        if k[1] in ignore_routes:
            continue
        d = v - before.get(k, 0)
        if d != 0:
            out[k] = d
    return out


class AdminClient:
    """Scrapes over one keep-alive HTTP/1.1 connection (so polling adds no connections of its own)."""

    def __init__(self, port):
        import http.client

        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=harness.CLIENT_TIMEOUT)
        self.requests = 0

    def get(self, path):
        self.requests += 1
        return http1_request(self.port, "GET", path, conn=self.conn)

    def scrape(self):
        r = self.get("/metrics")
        if r.status != 200:
            raise AssertionError("GET /metrics answered %r" % r)
        return Scrape(r.body.decode("utf-8"))

    def close(self):
        self.conn.close()


# ---- the database (psql) ---------------------------------------------------------------------------------------------


def psql(sql, url=None):
    p = harness.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", url or TEST_DB_URL, "-c", sql],
                    timeout=30, env=clean_env(PGCONNECT_TIMEOUT="5"))
    if p.returncode != 0:
        raise AssertionError("psql failed on %r: %s" % (sql, p.stderr))
    return p.stdout.strip()


def db_url(user, password, dbname):
    u = urllib.parse.urlsplit(TEST_DB_URL)
    netloc = "%s:%s@%s:%d" % (user, password, u.hostname, u.port or 5432)
    return urllib.parse.urlunsplit((u.scheme, netloc, "/" + dbname, u.query, ""))


# ---- the shared server -----------------------------------------------------------------------------------------------


class Observability(harness.SharedServerTestCase):
    """One server with every middleware, trusted proxy 127.0.0.1/32, an access-log file excluding /health, custom
    duration buckets and an admin listener."""

    BUCKETS = ("0.005", "0.05", "0.5", "5")

    @classmethod
    def make_config(cls):
        cls.admin_port = free_port()
        while cls.admin_port == cls.port:
            cls.admin_port = free_port()
        cls.logdir = make_tempdir("hydrant-it-obs-")
        cls.log_path = os.path.join(cls.logdir, "access.log")
        return obs_config(cls.port, cls.log_path, admin_port=cls.admin_port, buckets=cls.BUCKETS)

    def setUp(self):
        self.admin = AdminClient(self.admin_port)
        self.addCleanup(self.admin.close)

    def get(self, path, method="GET", **kw):
        return http1_request(self.port, method, path, **kw)

    def h2(self):
        c = H2Client(self.port)
        self.addCleanup(c.close)
        return c

    def h2_get(self, client, path, method="GET", headers=(), body=None):
        sid = client.request(path, method=method, headers=list(headers), body=body)
        self.assertTrue(client.wait_all([sid]), "no answer to %s %s over h2c" % (method, path))
        r = client.response(sid)
        self.assertIsNotNone(r)
        return r

    def wait_log(self, mark, n, timeout=FLUSH_LIMIT + 3):
        """Waits until the log holds n lines marked `mark`; returns them (fails on more, or on fewer at the timeout)."""
        def enough():
            lines = marked(read_log(self.log_path), mark)
            return len(lines) >= n and lines

        lines = wait_for(enough, timeout) or marked(read_log(self.log_path), mark)
        self.assertEqual(len(lines), n, "log lines marked %s: %s" % (mark, json.dumps(lines, indent=1)))
        return lines

    def quiescent_scrape(self, predicate, timeout=5.0):
        """Scrapes until predicate(scrape) holds (requests are recorded when they are disposed, just after the response
        is written); returns the last scrape."""
        last = [None]

        def check():
            last[0] = self.admin.scrape()
            return predicate(last[0])

        wait_for(check, timeout, interval=0.1)
        return last[0]

    # ---- request_id ----

    def test_request_id_generated_and_echoed(self):
        seen = set()
        for i in range(3):
            r = self.get("/plaintext")
            self.assertEqual(r.status, 200, r)
            rid = r.header("x-request-id")
            self.assertRegex(rid or "", REQID_RE)
            seen.add(rid)
        c = self.h2()
        for i in range(3):
            r = self.h2_get(c, "/json")
            rid = r.header("x-request-id")
            self.assertRegex(rid or "", REQID_RE)
            seen.add(rid)
        self.assertEqual(len(seen), 6, seen)
        # errors and static routes carry one too; probes as well (request_id is in the global list)
        for path in ("/nope", "/static", "/health", "/items/1"):
            with self.subTest(path=path):
                self.assertRegex(self.get(path).header("x-request-id") or "", REQID_RE)

    def test_request_id_sane_incoming_is_kept(self):
        for value in ("abc-123", "A" * 128, "!#$%&'*+-.^_`|~{}[]<>\"\\/:;=?@", "7f0e4b2c-6a34-4d6e-9c1d-0a9e3b1f2c3d"):
            with self.subTest(value=value):
                r = self.get("/plaintext", headers={"X-Request-Id": value})
                self.assertEqual(r.header_all("x-request-id"), [value])
                r = self.h2_get(self.h2(), "/plaintext", headers=[("x-request-id", value)])
                self.assertEqual(r.header_all("x-request-id"), [value])

    def test_request_id_insane_incoming_is_replaced(self):
        cases = [("space", "bad id"), ("tab (a control byte libh2o lets through)", "a\tb"), ("129 bytes", "x" * 129),
                 ("200 bytes", "y" * 200), ("UTF-8", "caf\xc3\xa9".encode("latin-1")), ("a byte above 0x7e", b"\xff")]
        for name, value in cases:
            with self.subTest(case=name):
                r = self.get("/plaintext", headers={"X-Request-Id": value})
                self.assertEqual(r.status, 200, r)
                got = r.header_all("x-request-id")
                self.assertEqual(len(got), 1, r)
                self.assertRegex(got[0], REQID_RE)
        # over h2c (h2 refuses to send control bytes; libh2o answers them 400 itself before any middleware)
        r = self.h2_get(self.h2(), "/plaintext", headers=[("x-request-id", "z" * 200)])
        self.assertRegex(r.header("x-request-id") or "", REQID_RE)

    def test_request_id_unique_across_1000_requests(self):
        def worker(n):
            ids = []
            for _ in range(n):
                r = self.get("/plaintext")  # a new connection each time: the kernel spreads them over both threads
                self.assertEqual(r.status, 200)
                ids.append(r.header("x-request-id"))
            return ids

        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            ids = sum(ex.map(worker, [500, 500]), [])
        self.assertEqual(len(ids), 1000)
        for rid in ids:
            self.assertRegex(rid, REQID_RE)
        self.assertEqual(len(set(ids)), 1000, "duplicate request ids")
        # the last 16 characters identify the generator: one per server thread, and both served some
        self.assertEqual(len({rid[10:] for rid in ids}), 2, sorted({rid[10:] for rid in ids}))

    # ---- access_log ----

    def test_access_log_lines(self):
        mark = new_mark()
        expected = []  # (response, method, path, route, status, bytes_in, protocol, user_agent, traceparent)
        t0 = time.time()

        def h1(method, path, route, headers=None, body=None):
            hdrs = dict(headers or {})
            r = self.get(path, method, headers=hdrs, body=body)
            expected.append((r, method, path, route, len(body or b""), "HTTP/1.1", hdrs.get("User-Agent"),
                             hdrs.get("traceparent")))
            return r

        p = "?m=" + mark
        h1("GET", "/plaintext" + p, "/plaintext", {"User-Agent": "obs-test/1.0"})
        h1("GET", "/json" + p, "/json", {"traceparent": TRACEPARENT})
        h1("GET", "/json" + p + "&bad-tp", "/json", {"traceparent": TRACEPARENT.upper()})  # not lower-case hex: invalid
        h1("POST", "/static" + p, "/static", {"User-Agent": "curl/8 \"quoted\" \u00e9".encode("utf-8")},
           body=b"x" * 321)
        h1("GET", "/items/42" + p + "&x=1", "/items/{id:int}")
        h1("GET", "/nope" + p, None)  # 404: route null
        h1("HEAD", "/plaintext" + p, "/plaintext")
        # not logged: /health is excluded; /quiet runs no middleware; /counted runs metrics only
        for path in ("/health", "/quiet", "/counted"):
            self.assertEqual(self.get(path + p).status, 200)

        c = self.h2()

        def h2(method, path, route, headers=(), body=None):
            r = self.h2_get(c, path, method, headers=headers, body=body)
            hd = dict(headers)
            expected.append((r, method, path, route, len(body or b""), "HTTP/2", hd.get("user-agent"),
                             hd.get("traceparent")))

        h2("GET", "/plaintext" + p + "&h2", "/plaintext", [("user-agent", "h2-client/0.1")])
        h2("POST", "/static" + p + "&h2", "/static", [("traceparent", TRACEPARENT)], body=b"y" * 1000)
        h2("GET", "/nope" + p + "&h2", None)
        for path in ("/health", "/quiet", "/counted"):
            self.assertEqual(self.h2_get(c, path + p + "&h2").status, 200)
        t_last = time.monotonic()

        lines = self.wait_log(mark, len(expected))
        flushed_after = time.monotonic() - t_last
        self.assertLessEqual(flushed_after, FLUSH_LIMIT, "the access log took %.2fs to flush" % flushed_after)
        by_id = {l["request_id"]: l for l in lines}
        self.assertEqual(len(by_id), len(lines), "request ids repeat in the log")
        t1 = time.time()
        for r, method, path, route, bytes_in, proto, ua, tp in expected:
            rid = r.header("x-request-id")
            with self.subTest(method=method, path=path, protocol=proto):
                self.assertIn(rid, by_id, "no log line has the echoed request id %s" % rid)
                line = by_id[rid]
                want_fields = LOG_FIELDS + (["traceparent"] if tp == TRACEPARENT else [])
                self.assertEqual(list(line), want_fields, line)
                self.assertGreaterEqual(parse_log_time(line["time"]), t0 - 1)
                self.assertLessEqual(parse_log_time(line["time"]), t1 + 1)
                self.assertEqual(line["level"], "info")
                self.assertEqual(line["client_ip"], "127.0.0.1")
                self.assertEqual(line["method"], method)
                self.assertEqual(line["path"], path)
                self.assertEqual(line["route"], route)
                self.assertEqual(line["status"], r.status)
                self.assertEqual(line["bytes_in"], bytes_in)
                self.assertEqual(line["bytes_out"], len(r.body))
                self.assertIsInstance(line["duration_us"], int)
                self.assertGreaterEqual(line["duration_us"], 0)
                self.assertLess(line["duration_us"], 10_000_000)
                self.assertEqual(line["protocol"], proto)
                self.assertIs(line["tls"], False)
                want_ua = ua.decode("utf-8") if isinstance(ua, bytes) else ua
                self.assertEqual(line["user_agent"], want_ua)
                if tp == TRACEPARENT:
                    self.assertEqual(line["traceparent"], TRACEPARENT)
        # nothing else turns up after another flush
        time.sleep(1.2)
        self.assertEqual(len(marked(read_log(self.log_path), mark)), len(expected))

    def test_access_log_client_ip_behind_trusted_proxy(self):
        mark = new_mark()
        cases = [
            ("xff one hop", {"X-Forwarded-For": "203.0.113.7"}, "203.0.113.7"),
            ("right-most untrusted", {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}, "203.0.113.7"),
            ("trusted hops skipped", {"X-Forwarded-For": "203.0.113.8, 127.0.0.1, 127.0.0.1"}, "203.0.113.8"),
            ("port and spaces", {"X-Forwarded-For": " 203.0.113.9:4711 "}, "203.0.113.9"),
            ("ipv6 in brackets", {"X-Forwarded-For": "[2001:DB8::1]:443"}, "2001:db8::1"),
            ("ipv4-mapped", {"X-Forwarded-For": "::ffff:192.0.2.44"}, "192.0.2.44"),
            ("garbage stops the walk", {"X-Forwarded-For": "198.51.100.2, unknown"}, "127.0.0.1"),
            ("x-real-ip fallback", {"X-Real-IP": "198.51.100.9"}, "198.51.100.9"),
            ("xff wins over x-real-ip", {"X-Forwarded-For": "203.0.113.10", "X-Real-IP": "198.51.100.9"},
             "203.0.113.10"),
            ("only trusted hops: x-real-ip", {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "198.51.100.11"},
             "198.51.100.11"),
            ("no headers", {}, "127.0.0.1"),
        ]
        want = {}
        for i, (name, headers, ip) in enumerate(cases):
            r = self.get("/plaintext?m=%s&case=%d" % (mark, i), headers=headers)
            want[r.header("x-request-id")] = (name, ip)
        # two X-Forwarded-For headers are one list, in order
        raw = raw_http1(self.port, ("GET /plaintext?m=%s&case=two HTTP/1.1\r\nHost: x\r\n"
                                    "X-Forwarded-For: 198.51.100.3\r\nX-Forwarded-For: 203.0.113.11\r\n"
                                    "Connection: close\r\n\r\n" % mark).encode())
        want[harness.parse_raw_http1(raw).header("x-request-id")] = ("two headers", "203.0.113.11")
        # and over h2c
        r = self.h2_get(self.h2(), "/plaintext?m=%s&case=h2" % mark, headers=[("x-forwarded-for", "203.0.113.12")])
        want[r.header("x-request-id")] = ("h2c", "203.0.113.12")

        lines = self.wait_log(mark, len(want))
        for line in lines:
            name, ip = want[line["request_id"]]
            with self.subTest(case=name):
                self.assertEqual(line["client_ip"], ip, line)

    # ---- the admin listener ----

    def test_admin_routes_only_on_admin_listener(self):
        for path in ("/metrics", "/status"):
            with self.subTest(path=path, listener="admin"):
                r = http1_request(self.admin_port, "GET", path)
                self.assertEqual(r.status, 200, r)
            with self.subTest(path=path, listener="public"):
                r = self.get(path)
                self.assertEqual(r.status, 404, r)
                self.assertEqual(r.body, NOT_FOUND)
                r = self.h2_get(self.h2(), path)
                self.assertEqual(r.status, 404, r)
        self.assertEqual(http1_request(self.admin_port, "GET", "/metrics").header("content-type"), METRICS_TYPE)
        self.assertEqual(http1_request(self.admin_port, "GET", "/status").header("content-type"), "application/json")
        # the public routes are not on the admin listener
        for path in ("/plaintext", "/json", "/static", "/items/1", "/quiet", "/counted"):
            with self.subTest(path=path, listener="admin"):
                r = http1_request(self.admin_port, "GET", path)
                self.assertEqual(r.status, 404, r)
                self.assertEqual(r.body, NOT_FOUND)
        # the probes answer on both
        for port in (self.port, self.admin_port):
            for path in ("/health", "/ready"):
                with self.subTest(path=path, port=port):
                    self.assertEqual(http1_request(port, "GET", path).status, 200)
        # h2c works on the admin listener too
        c = H2Client(self.admin_port)
        self.addCleanup(c.close)
        self.assertEqual(self.h2_get(c, "/metrics").status, 200)
        self.assertEqual(self.h2_get(c, "/plaintext").status, 404)

    def test_admin_split_also_applies_to_other_methods(self):
        # A route that is not served on a listener must not be revealed there by a 405 (with its Allow header):
        # POST /metrics on the public listener and POST /plaintext on the admin listener are "no such route".
        r = self.get("/metrics", "POST", body=b"")
        self.assertEqual((r.status, r.header("allow")), (404, None), r)
        r = http1_request(self.admin_port, "POST", "/plaintext", body=b"")
        self.assertEqual((r.status, r.header("allow")), (404, None), r)

    # ---- /status ----

    def test_status_document(self):
        before = json.loads(self.admin.get("/status").body)
        for _ in range(5):
            self.get("/plaintext")
        r = self.admin.get("/status")
        self.assertEqual(r.status, 200, r)
        st = json.loads(r.body)
        for key in ("version", "h2o_version", "uptime_seconds", "state", "threads", "per_thread", "connections",
                    "requests", "database", "config"):
            self.assertIn(key, st)
        version = harness.run([harness.hydrant_bin(), "version"]).stdout
        self.assertTrue(version.startswith("hydrant %s " % st["version"]), (version, st["version"]))
        self.assertIn("libh2o %s" % st["h2o_version"], version)
        self.assertIsInstance(st["uptime_seconds"], float)
        self.assertGreater(st["uptime_seconds"], before["uptime_seconds"])
        self.assertLess(st["uptime_seconds"], 3600)
        self.assertEqual(st["state"], "serving")
        self.assertEqual(st["threads"], 2)
        self.assertEqual([t["thread"] for t in st["per_thread"]], [0, 1])
        for t in st["per_thread"]:
            self.assertEqual(sorted(t), ["connections", "requests", "thread"])
        self.assertEqual(st["requests"], sum(t["requests"] for t in st["per_thread"]))
        self.assertEqual(st["connections"], sum(t["connections"] for t in st["per_thread"]))
        # every request counts, on any listener, this one included
        self.assertEqual(st["requests"], before["requests"] + 5 + 1)
        self.assertGreaterEqual(st["connections"], 1)  # the connection asking
        self.assertIsNone(st["database"])
        self.assertEqual(st["config"]["file"], self.server.config_path)
        self.assertEqual(st["config"]["routes"], NROUTES)
        self.assertLessEqual(st["config"]["loaded_at"], time.time())
        self.assertGreater(st["config"]["loaded_at"], time.time() - 3600)

    # ---- metrics ----

    def test_metrics_exact_counts(self):
        before = self.quiescent_scrape(lambda s: s.get("http_requests_in_flight") == 1)
        b_req = before.requests_total()
        body = b"z" * 777
        want = {}

        def count(method, route, status, n=1):
            want[(method, route, status)] = want.get((method, route, status), 0) + n

        for _ in range(3):
            self.assertEqual(self.get("/plaintext").status, 200)
        count("GET", "/plaintext", "200", 3)
        for _ in range(2):
            self.assertEqual(self.get("/json").status, 200)
        count("GET", "/json", "200", 2)
        for _ in range(2):
            self.assertEqual(self.get("/static", "POST", body=body).status, 202)
        count("POST", "/static", "202", 2)
        self.assertEqual(self.get("/items/7").status, 200)
        count("GET", "/items/{id:int}", "200")
        for _ in range(2):
            self.assertEqual(self.get("/nope").status, 404)
        count("GET", "none", "404", 2)
        self.assertEqual(self.get("/health").status, 200)  # excluded from the log, not from the metrics
        count("GET", "/health", "200")
        self.assertEqual(self.get("/plaintext", "HEAD").status, 200)
        count("HEAD", "/plaintext", "200")
        for _ in range(2):
            self.assertEqual(self.get("/quiet").status, 200)  # no middleware: not counted
        for _ in range(3):
            self.assertEqual(self.get("/counted").status, 200)  # its own list: [metrics]
        count("GET", "/counted", "200", 3)
        self.assertEqual(self.get("/metrics").status, 404)  # the public listener: no route
        count("GET", "none", "404")
        c = self.h2()
        for _ in range(2):
            self.assertEqual(self.h2_get(c, "/plaintext").status, 200)
        count("GET", "/plaintext", "200", 2)
        self.assertEqual(self.h2_get(c, "/json").status, 200)
        count("GET", "/json", "200")
        self.assertEqual(self.h2_get(c, "/static", "POST", body=body).status, 202)
        count("POST", "/static", "202")
        self.assertEqual(self.h2_get(c, "/nope").status, 404)
        count("GET", "none", "404")
        self.assertEqual(self.h2_get(c, "/quiet").status, 200)

        after = self.quiescent_scrape(lambda s: counter_delta(b_req, s.requests_total()) == want)
        self.assertEqual(counter_delta(b_req, after.requests_total()), want)
        self.assertEqual(after.types["http_requests_total"], "counter")

        def hdelta(family, suffix, method, route):
            lab = dict(method=method, route=route)
            return (after.get(family + suffix, **lab) or 0) - (before.get(family + suffix, **lab) or 0)

        # one duration, request size and response size observation per counted request
        for (method, route, status), n in want.items():
            if route == "none":
                continue
            for fam in ("http_request_duration_seconds", "http_request_size_bytes", "http_response_size_bytes"):
                with self.subTest(family=fam, method=method, route=route):
                    self.assertEqual(hdelta(fam, "_count", method, route), n)
        self.assertEqual(hdelta("http_request_duration_seconds", "_count", "GET", "none"), 4)
        self.assertEqual(hdelta("http_request_size_bytes", "_sum", "POST", "/static"), 3 * len(body))
        self.assertEqual(hdelta("http_response_size_bytes", "_sum", "GET", "/plaintext"), 5 * len(b"Hello, World!"))
        self.assertEqual(hdelta("http_response_size_bytes", "_sum", "HEAD", "/plaintext"), 0)
        self.assertEqual(hdelta("http_response_size_bytes", "_sum", "POST", "/static"), 3 * len(b"static body"))
        self.assertIsNone(after.get("http_requests_total", method="GET", route="/quiet", status="200"))

    def test_histograms_are_consistent(self):
        for _ in range(3):
            self.get("/plaintext")
            self.get("/nope")
        def disagreements(s):
            """(method, route) series whose http_requests_total differs from a histogram's _count."""
            out = []
            for fam in ("http_request_duration_seconds", "http_request_size_bytes", "http_response_size_bytes"):
                for labels, count in s.series(fam + "_count").items():
                    lab = dict(labels)
                    total = sum(v for (m, r, _), v in s.requests_total().items()
                                if m == lab["method"] and r == lab["route"])
                    if total != count:
                        out.append((fam, lab, total, count))
            return out

        # a scrape may see a request's counter and not yet its histograms (metrics.h); at rest they agree
        s = self.quiescent_scrape(lambda s: s.get("http_requests_in_flight") == 1 and not disagreements(s))
        self.assertEqual(disagreements(s), [])
        for fam in ("http_request_duration_seconds", "http_request_size_bytes", "http_response_size_bytes"):
            self.assertEqual(s.types[fam], "histogram")
            counts = s.series(fam + "_count")
            self.assertTrue(counts, "no %s series" % fam)
            for labels, count in counts.items():
                lab = dict(labels)
                with self.subTest(family=fam, **lab):
                    buckets = [(dict(l)["le"], v) for l, v in s.series(fam + "_bucket").items()
                               if {k: x for k, x in dict(l).items() if k != "le"} == lab]
                    les = [le for le, _ in buckets]
                    self.assertEqual(les[-1], "+Inf")
                    values = [v for _, v in buckets]
                    self.assertEqual(values, sorted(values), "buckets are cumulative")
                    self.assertEqual(values[-1], count, "+Inf bucket == _count")
                    self.assertIsNotNone(s.get(fam + "_sum", **lab))
                    if fam == "http_request_duration_seconds":
                        self.assertEqual(les, list(self.BUCKETS) + ["+Inf"])  # metrics.buckets
                    else:
                        self.assertEqual(les, ["100", "1000", "10000", "100000", "1e+06", "1e+07", "+Inf"])

    def test_in_flight_counts_the_scrape_itself(self):
        # The scrape is itself a request through the global middleware (metrics included), started before the text is
        # rendered: with nothing else in flight the gauge reads 1, not 0.
        s = self.quiescent_scrape(lambda s: s.get("http_requests_in_flight") == 1)
        self.assertEqual(s.types["http_requests_in_flight"], "gauge")
        self.assertEqual(s.get("http_requests_in_flight"), 1)
        # a scrape over h2c reads the same (once the previous scrape, on another connection, has been disposed)
        c = H2Client(self.admin_port)
        self.addCleanup(c.close)
        got = wait_for(lambda: Scrape(self.h2_get(c, "/metrics").body.decode()).get("http_requests_in_flight") == 1, 5,
                       interval=0.1)
        self.assertTrue(got, "http_requests_in_flight never read 1 over h2c")

    def test_connection_gauges(self):
        def conns(s):
            return (s.get("hydrant_connections", protocol="http1"), s.get("hydrant_connections", protocol="http2"))

        # only the scraping connection open
        s0 = self.quiescent_scrape(lambda s: conns(s) == (1, 0))
        self.assertEqual(conns(s0), (1, 0))
        self.assertEqual(s0.types["hydrant_connections"], "gauge")
        self.assertEqual(s0.types["hydrant_connections_total"], "counter")
        total0 = s0.get("hydrant_connections_total")

        import http.client

        h1 = http.client.HTTPConnection("127.0.0.1", self.port, timeout=harness.CLIENT_TIMEOUT)
        self.addCleanup(h1.close)
        self.assertEqual(http1_request(self.port, "GET", "/plaintext", conn=h1).status, 200)
        c = H2Client(self.port)  # h2c with prior knowledge counts as http2 from its first request
        self.addCleanup(c.close)
        self.assertEqual(self.h2_get(c, "/plaintext").status, 200)
        s1 = self.quiescent_scrape(lambda s: conns(s) == (2, 1))
        self.assertEqual(conns(s1), (2, 1))
        self.assertEqual(s1.get("hydrant_connections_total"), total0 + 2)
        st = json.loads(self.admin.get("/status").body)
        self.assertEqual(st["connections"], 3)

        h1.close()
        c.close()
        s2 = self.quiescent_scrape(lambda s: conns(s) == (1, 0))
        self.assertEqual(conns(s2), (1, 0))
        self.assertEqual(s2.get("hydrant_connections_total"), total0 + 2)

    def test_h2c_upgrade_counts_as_upgrade(self):
        before = self.admin.scrape().get("hydrant_connection_upgrades_total")
        r, p = curl("http://127.0.0.1:%d/plaintext" % self.port, "--http2")
        self.assertIsNotNone(r, p.stderr)
        self.assertEqual(r.version, "2")
        s = self.quiescent_scrape(lambda s: s.get("hydrant_connection_upgrades_total") == before + 1)
        self.assertEqual(s.get("hydrant_connection_upgrades_total"), before + 1)

    def test_h2c_prior_knowledge_is_not_an_upgrade(self):
        # hydrant_connection_upgrades_total counts "HTTP/1.1 connections upgraded to HTTP/2 (h2c)" (metrics.h): a
        # connection that spoke HTTP/2 from its first byte was never an HTTP/1.1 connection.
        before = self.admin.scrape()
        c = self.h2()
        self.assertEqual(self.h2_get(c, "/plaintext").status, 200)
        s = self.quiescent_scrape(lambda s: s.get("hydrant_connections", protocol="http2") == 1)
        self.assertEqual(s.get("hydrant_connections", protocol="http2"), 1)
        self.assertEqual(s.get("hydrant_connection_upgrades_total"), before.get("hydrant_connection_upgrades_total"))

    def test_families_present(self):
        self.get("/plaintext")
        s = self.quiescent_scrape(lambda s: s.get("http_requests_in_flight") == 1)
        types = {
            "http_requests_total": "counter", "http_request_duration_seconds": "histogram",
            "http_request_size_bytes": "histogram", "http_response_size_bytes": "histogram",
            "http_requests_in_flight": "gauge", "hydrant_connections": "gauge", "hydrant_connections_total": "counter",
            "hydrant_connection_upgrades_total": "counter", "process_cpu_seconds_total": "counter",
            "process_open_fds": "gauge", "process_max_fds": "gauge", "process_virtual_memory_bytes": "gauge",
            "process_resident_memory_bytes": "gauge", "process_start_time_seconds": "gauge",
            "hydrant_build_info": "gauge", "hydrant_threads": "gauge",
        }
        for fam, typ in types.items():
            with self.subTest(family=fam):
                self.assertEqual(s.types.get(fam), typ)
                self.assertTrue(s.helps.get(fam), "no HELP for %s" % fam)
        self.assertEqual(s.get("hydrant_threads"), 2)
        info = s.series("hydrant_build_info")
        self.assertEqual(len(info), 1)
        labels, v = next(iter(info.items()))
        labels = dict(labels)
        self.assertEqual(v, 1)
        self.assertEqual(sorted(labels), ["h2o_version", "openssl_version", "version"])
        st = json.loads(self.admin.get("/status").body)
        self.assertEqual((labels["version"], labels["h2o_version"]), (st["version"], st["h2o_version"]))
        self.assertTrue(labels["openssl_version"].startswith("OpenSSL "), labels)
        self.assertGreater(s.get("process_resident_memory_bytes"), 1e6)
        self.assertGreater(s.get("process_virtual_memory_bytes"), s.get("process_resident_memory_bytes"))
        self.assertGreater(s.get("process_open_fds"), 5)
        self.assertGreaterEqual(s.get("process_max_fds"), s.get("process_open_fds"))
        self.assertGreaterEqual(s.get("process_cpu_seconds_total"), 0)
        start = s.get("process_start_time_seconds")
        self.assertLess(abs(start - (time.time() - st["uptime_seconds"])), 5, "process_start_time_seconds %r" % start)
        # no database: no pool families
        self.assertFalse([n for n in s.types if n.startswith("hydrant_db_")])

    def test_promtool_check_metrics(self):
        if PROMTOOL is None:
            self.skipTest("skipped: promtool not found (Debian package `prometheus`)")
        for path in ("/plaintext", "/nope", "/items/3"):
            self.get(path)
        text = self.admin.get("/metrics").body
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
        self.assertEqual(p.stdout.decode().strip() + p.stderr.decode().strip(), "", "promtool found problems")

    # ---- the server's own log ----

    def test_server_log_is_json(self):
        lines = [l for l in _LSAN_SUMMARY.sub("", self.server.stderr()).splitlines() if l.strip()]
        self.assertTrue(lines)
        msgs = []
        for line in lines:
            with self.subTest(line=line):
                obj = json.loads(line)
                self.assertEqual(list(obj)[:2], ["time", "level"])
                self.assertEqual(list(obj)[-1], "msg")
                parse_log_time(obj["time"])
                self.assertIn(obj["level"], ("info", "warn", "error"))
                msgs.append(obj["msg"])
        self.assertIn("listening on 127.0.0.1:%d (HTTP/1.1, h2c)" % self.port, msgs)
        self.assertIn("listening on 127.0.0.1:%d (admin: metrics, status, health, ready)" % self.admin_port, msgs)
        self.assertTrue([m for m in msgs if m.startswith("serving with 2 threads")], msgs)


# ---- other configurations --------------------------------------------------------------------------------------------


class NoTrustedProxies(harness.SharedServerTestCase):
    """trusted_proxies empty, a relative access_log.path, the middleware in another order, default buckets and no admin
    listener (the admin routes then answer on the public listener)."""

    @classmethod
    def make_config(cls):
        cls.workdir = make_tempdir("hydrant-it-obs2-")
        cls.config_path = os.path.join(cls.workdir, "hydrant.yaml")
        cls.log_path = os.path.join(cls.workdir, "relative-access.log")
        return obs_config(cls.port, "relative-access.log", trusted=(), exclude=(),
                          middleware=("metrics", "access_log", "client_ip", "request_id"))

    @classmethod
    def setUpClass(cls):
        # the config lives in its own directory while the server runs from the repository root (harness cwd)
        cls.port = free_port()
        text = cls.make_config()
        harness.write_file(cls.workdir, "hydrant.yaml", text)
        cls.server = Server(config_path=cls.config_path, workdir=cls.workdir)
        try:
            cls.server.start(ready_port=cls.port)
        except BaseException:
            cls.server.kill()
            raise

    def test_relative_log_path_is_next_to_the_config(self):
        mark = new_mark()
        self.assertEqual(http1_request(self.port, "GET", "/plaintext?m=" + mark).status, 200)
        self.assertTrue(wait_for(lambda: marked(read_log(self.log_path), mark), FLUSH_LIMIT + 3),
                        "no line in %s" % self.log_path)
        self.assertFalse(os.path.exists(os.path.join(REPO, "relative-access.log")))

    def test_spoofed_forwarding_headers_are_ignored(self):
        mark = new_mark()
        ids = []
        for h in ({"X-Forwarded-For": "203.0.113.7"}, {"X-Real-IP": "203.0.113.8"},
                  {"X-Forwarded-For": "127.0.0.1, 203.0.113.9", "X-Real-IP": "203.0.113.10"}):
            ids.append(http1_request(self.port, "GET", "/plaintext?m=" + mark, headers=h).header("x-request-id"))
        c = H2Client(self.port)
        self.addCleanup(c.close)
        sid = c.request("/plaintext?m=" + mark, headers=[("x-forwarded-for", "203.0.113.11")])
        c.wait_all([sid])
        ids.append(c.response(sid).header("x-request-id"))
        def four():
            lines = marked(read_log(self.log_path), mark)
            return len(lines) == 4 and lines

        lines = wait_for(four, FLUSH_LIMIT + 3)
        self.assertTrue(lines, read_log(self.log_path))
        self.assertEqual(sorted(l["request_id"] for l in lines), sorted(ids))
        for line in lines:
            self.assertEqual(line["client_ip"], "127.0.0.1", line)

    def test_admin_routes_on_public_listener_without_admin(self):
        self.assertEqual(http1_request(self.port, "GET", "/plaintext").status, 200)

        def plaintext_buckets():
            r = http1_request(self.port, "GET", "/metrics")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("content-type"), METRICS_TYPE)
            return [dict(l)["le"] for l in Scrape(r.body.decode()).series("http_request_duration_seconds_bucket")
                    if dict(l)["route"] == "/plaintext" and dict(l)["method"] == "GET"]

        # no metrics.buckets: client_golang's default duration buckets
        les = wait_for(plaintext_buckets, 5, interval=0.1)
        self.assertEqual(les, ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"])
        r = http1_request(self.port, "GET", "/status")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["threads"], 2)

    def test_probes_are_logged_unless_excluded(self):
        mark = new_mark()
        r = http1_request(self.port, "GET", "/health?m=" + mark)
        lines = wait_for(lambda: marked(read_log(self.log_path), mark), FLUSH_LIMIT + 3)
        self.assertEqual([l["request_id"] for l in lines], [r.header("x-request-id")])
        self.assertEqual(lines[0]["route"], "/health")


class SeparateServers(harness.ServerTestCase):
    """Servers of their own: sample 0, no middleware at all, the flush at SIGTERM, a reload that adds the access log."""

    def start(self, **kw):
        port = free_port()
        log_path = os.path.join(self.tmp, "access.log")
        s = self.start_server(obs_config(port, log_path, **kw), ready_port=port)
        return s, port, log_path

    def test_sample_zero_logs_nothing(self):
        s, port, log_path = self.start(sample=0, middleware=("access_log",))
        for path in ("/plaintext", "/json", "/nope", "/static"):
            r = http1_request(port, "GET", path)
            self.assertIsNone(r.header("x-request-id"), "request_id is not in the list")
        time.sleep(1.3)
        s.stop()
        self.assertTrue(os.path.exists(log_path), "the access log is opened even when nothing is sampled")
        self.assertEqual(os.path.getsize(log_path), 0)

    def test_no_middleware_by_default(self):
        port = free_port()
        log_path = os.path.join(self.tmp, "access.log")
        text = obs_config(port, log_path, middleware=None, trusted=None, exclude=())
        self.assertNotIn("middleware: [", text.split("routes:")[0])
        s = self.start_server(text, ready_port=port)
        for path in ("/plaintext", "/counted"):
            http1_request(port, "GET", path)
        r = http1_request(port, "GET", "/plaintext")
        self.assertIsNone(r.header("x-request-id"))
        time.sleep(1.3)
        scrape = Scrape(http1_request(port, "GET", "/metrics").body.decode())
        # only /counted has a list of its own ([metrics])
        self.assertEqual(scrape.requests_total(), {("GET", "/counted", "200"): 1})
        self.assertEqual(scrape.get("http_requests_in_flight"), 0)  # the scrape runs no metrics middleware here
        s.stop()
        self.assertEqual(read_log(log_path), [])

    def test_sigterm_flushes_the_access_log(self):
        s, port, log_path = self.start()
        mark = new_mark()
        ids = []
        c = H2Client(port)
        self.addCleanup(c.close)
        for i in range(40):
            ids.append(http1_request(port, "GET", "/plaintext?m=%s&i=%d" % (mark, i)).header("x-request-id"))
            sid = c.request("/json?m=%s&i=%d" % (mark, i))
            c.wait_all([sid])
            ids.append(c.response(sid).header("x-request-id"))
        c.close()
        s.stop()  # at once: well inside the 1-second flush interval
        lines = marked(read_log(log_path), mark)
        self.assertEqual(sorted(l["request_id"] for l in lines), sorted(ids))
        # the server's own lines, to the end, are JSON
        msgs = []
        for obj in server_log(s.stderr()):
            self.assertEqual(sorted(obj), ["level", "msg", "time"], obj)
            msgs.append(obj["msg"])
        self.assertTrue(any(m.startswith("shutting down") for m in msgs), msgs)
        self.assertEqual(msgs[-1], "stopped")


    def test_reload_that_enables_the_access_log(self):
        # A reload (SIGHUP) that adds access_log to the middleware, the log going to stdout: the lines must appear, or
        # the reload must say that this takes effect after a restart, as it does for access_log.path.
        port = free_port()
        text = obs_config(port, None, middleware=None, trusted=None, exclude=())
        s = self.start_server(text, ready_port=port)
        with open(s.config_path, "w") as f:
            f.write(obs_config(port, None, middleware=("request_id", "access_log"), trusted=None, exclude=()))
        s.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "configuration reloaded" in s.stderr(), 5), s.describe())
        r = http1_request(port, "GET", "/plaintext?after-reload")
        rid = r.header("x-request-id")
        self.assertRegex(rid or "", REQID_RE)  # the new middleware list is in use
        time.sleep(1.5)
        logged = [json.loads(l) for l in s.stdout().splitlines() if l.strip()]
        warned = [e for e in server_log(s.stderr()) if e["level"] == "warn" and "access_log" in e["msg"]]
        self.assertTrue([l for l in logged if l["request_id"] == rid] or warned,
                        "no access-log line on stdout and no warning\n" + s.describe())


class PrometheusScrapes(harness.ServerTestCase):
    """A real Prometheus server scrapes the admin listener every second."""

    def test_prometheus_sees_the_counts(self):
        if not os.access(PROMETHEUS, os.X_OK):
            self.skipTest("skipped: %s not found (Debian package `prometheus`)" % PROMETHEUS)
        port, admin_port, prom_port = free_port(), free_port(), free_port()
        log_path = os.path.join(self.tmp, "access.log")
        self.start_server(obs_config(port, log_path, admin_port=admin_port), ready_port=port)
        cfg = harness.write_file(self.tmp, "prometheus.yml", """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: hydrant
    static_configs:
      - targets: ["127.0.0.1:%d"]
""" % admin_port)
        out = open(os.path.join(self.tmp, "prometheus.log"), "wb")
        self.addCleanup(out.close)
        prom = subprocess.Popen([PROMETHEUS, "--config.file=" + cfg,
                                 "--storage.tsdb.path=" + os.path.join(self.tmp, "tsdb"),
                                 "--web.listen-address=127.0.0.1:%d" % prom_port], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp)

        def stop_prometheus():
            if prom.poll() is None:
                prom.send_signal(signal.SIGTERM)
                try:
                    prom.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    prom.kill()
                    prom.wait(timeout=5)

        self.addCleanup(stop_prometheus)

        def api(path):
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (prom_port, path), timeout=5) as r:
                return json.loads(r.read())

        def ready():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % prom_port, timeout=2) as r:
                    return r.status == 200
            except OSError:
                return prom.poll() is not None

        self.assertTrue(wait_for(ready, 30, 0.2), "prometheus not ready")
        if prom.poll() is not None:
            with open(out.name, "rb") as f:
                self.fail("prometheus exited: %s" % f.read()[-2000:].decode("utf-8", "replace"))

        n = 37
        for _ in range(n):
            self.assertEqual(http1_request(port, "GET", "/plaintext").status, 200)
        query = "/api/v1/query?query=" + urllib.parse.quote('http_requests_total{route="/plaintext"}')

        def value():
            res = api(query)
            self.assertEqual(res["status"], "success", res)
            vals = [float(r["value"][1]) for r in res["data"]["result"]]
            return vals == [n] and vals

        got = wait_for(value, 20, 0.5)
        last = api(query)["data"]["result"]
        self.assertTrue(got, "prometheus never saw %d: %s" % (n, last))
        metric = last[0]["metric"]
        self.assertEqual((metric["method"], metric["status"], metric["job"]), ("GET", "200", "hydrant"))
        targets = api("/api/v1/targets")["data"]["activeTargets"]
        self.assertEqual([(t["health"], t["lastError"]) for t in targets], [("up", "")], targets)
        up = api("/api/v1/query?query=up")["data"]["result"]
        self.assertEqual([r["value"][1] for r in up], ["1"])


# ---- the database ----------------------------------------------------------------------------------------------------


@unittest.skipUnless(TEST_DB_URL, DB_SKIP)
class DatabaseObservability(harness.ServerTestCase):
    """/status and /metrics with a pool; a distinctive password never shows up in any output."""

    SECRET = "Obs9Qz-distinct-Pw-7731"

    @classmethod
    def setUpClass(cls):
        if PSQL is None:
            raise unittest.SkipTest("skipped: psql not found")
        cls.role = "hy_obs_%d" % os.getpid()
        cls.dbname = cls.role
        psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % cls.dbname)
        psql("DROP ROLE IF EXISTS %s" % cls.role)
        psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (cls.role, cls.SECRET))
        psql("CREATE DATABASE %s OWNER %s" % (cls.dbname, cls.role))
        cls.url = db_url(cls.role, cls.SECRET, cls.dbname)

    @classmethod
    def tearDownClass(cls):
        psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % cls.dbname)
        psql("DROP ROLE IF EXISTS %s" % cls.role)

    def config(self, port, admin_port, log_path):
        routes = ROUTES + "  - {path: \"/users/{id:int}\", handler: users.get}\n"
        migrations = q(os.path.join(REPO, "conf", "migrations"))
        return obs_config(port, log_path, admin_port=admin_port, routes=routes,
                          database="{migrations: %s, pool: {max_open: 4}}" % migrations)

    def assert_secret_absent(self, name, text):
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.assertNotIn(self.SECRET, text, "the password shows up in %s" % name)
        self.assertNotIn(urllib.parse.quote(self.SECRET), text, "the password shows up in %s" % name)

    def start_with_db(self, url):
        """Migrates (when the password is right) and starts a server on `url`; returns (server, port, admin, log)."""
        port, admin_port = free_port(), free_port()
        log_path = os.path.join(self.tmp, "access.log")
        cfg = harness.write_file(self.tmp, "hydrant.yaml", self.config(port, admin_port, log_path))
        env = clean_env(DATABASE_URL=url)
        if url == self.url:
            m = harness.run([harness.hydrant_bin(), "migrate", "-c", cfg], env=env, timeout=60)
            self.assertEqual(m.returncode, 0, m.stdout + m.stderr)
            self.assert_secret_absent("hydrant migrate's output", m.stdout + m.stderr)
        s = self.start_server(config_path=cfg, env=env, ready_port=port)
        admin = AdminClient(admin_port)
        self.addCleanup(admin.close)
        return s, port, admin, log_path

    def test_status_and_metrics_with_a_pool(self):
        s, port, admin, log_path = self.start_with_db(self.url)

        def ready():
            d = json.loads(admin.get("/status").body)
            return d["database"]["ready"] and d

        st = wait_for(ready, 10)
        self.assertTrue(st, "the pool never became ready")
        db = st["database"]
        self.assertEqual(sorted(db), ["acquire_timeouts", "connection_errors", "idle", "in_use", "max_open", "open",
                                      "ready", "target", "waiting"])
        u = urllib.parse.urlsplit(TEST_DB_URL)
        self.assertEqual(db["target"], "%s@%s:%d/%s" % (self.role, u.hostname, u.port or 5432, self.dbname))
        self.assertIs(db["ready"], True)
        self.assertGreaterEqual(db["open"], 1)
        self.assertLessEqual(db["open"], 4)
        self.assertEqual(db["max_open"], 4)
        self.assertEqual(db["connection_errors"], 0)

        for i in range(3):
            r = http1_request(port, "GET", "/users/%d" % (i + 1))
            self.assertEqual(r.status, 404, r)  # an empty table
        def counted():
            sc = admin.scrape()
            return (sc.get("hydrant_db_queries_total", statement="users_get", outcome="ok") == 3
                    and sc.requests_total().get(("GET", "/users/{id:int}", "404")) == 3 and sc)

        scrape = wait_for(counted, 5)
        self.assertTrue(scrape, "hydrant_db_queries_total{statement=\"users_get\",outcome=\"ok\"} never reached 3")
        self.assertEqual(scrape.get("hydrant_db_pool_ready"), 1)
        for state in ("open", "idle", "in_use"):
            self.assertIsNotNone(scrape.get("hydrant_db_pool_connections", state=state), state)
        for fam, typ in (("hydrant_db_pool_connections", "gauge"), ("hydrant_db_pool_waiting", "gauge"),
                         ("hydrant_db_pool_ready", "gauge"), ("hydrant_db_pool_acquire_timeouts_total", "counter"),
                         ("hydrant_db_pool_connection_errors_total", "counter"),
                         ("hydrant_db_queries_total", "counter"), ("hydrant_db_pool_acquire_seconds", "histogram"),
                         ("hydrant_db_query_duration_seconds", "histogram")):
            self.assertEqual(scrape.types.get(fam), typ, fam)
        self.assertEqual(scrape.get("hydrant_db_query_duration_seconds_count", statement="users_get"), 3)
        self.assertEqual(scrape.requests_total().get(("GET", "/users/{id:int}", "404")), 3)
        if PROMTOOL is not None:
            p = subprocess.run([PROMTOOL, "check", "metrics"], input=scrape.text.encode(), capture_output=True,
                               timeout=30)
            self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())

        status_text = admin.get("/status").body
        metrics_text = admin.get("/metrics").body
        time.sleep(1.3)  # the access log's flush
        with open(log_path, "rb") as f:
            log_text = f.read()
        self.assertTrue(log_text)
        for name, text in (("/status", status_text), ("/metrics", metrics_text), ("stderr", s.stderr()),
                           ("stdout", s.stdout()), ("the access log", log_text)):
            self.assert_secret_absent(name, text)
        s.terminate()  # test_sigterm_with_a_database is about how it exits
        self.assert_secret_absent("stderr", s.stderr())

    def test_sigterm_with_a_database_is_graceful(self):
        # SIGTERM drains and exits 0 with a database as without one: the last access-log lines are flushed and the
        # server logs "stopped". (Any thread that does not block SIGTERM, e.g. one the pool starts before the server
        # blocks the signals, would take the signal's default action: the process dies of it at once.)
        s, port, admin, log_path = self.start_with_db(self.url)
        mark = new_mark()
        ids = [http1_request(port, "GET", "/users/%d?m=%s" % (i + 1, mark)).header("x-request-id") for i in range(5)]
        rc, _ = s.terminate()
        self.assertEqual(rc, 0, "exit status after SIGTERM\n" + s.describe())
        self.assertEqual(sorted(l["request_id"] for l in marked(read_log(log_path), mark)), sorted(ids))
        self.assertEqual(server_log(s.stderr())[-1]["msg"], "stopped")

    def test_wrong_password_is_not_logged(self):
        wrong = "Wr0ng-" + self.SECRET
        s, port, admin, log_path = self.start_with_db(db_url(self.role, wrong, self.dbname))
        def failing():
            d = json.loads(admin.get("/status").body)
            return d["database"]["connection_errors"] > 0 and d

        st = wait_for(failing, 10)
        self.assertTrue(st, "no connection error counted")
        self.assertIs(st["database"]["ready"], False)
        self.assertEqual(http1_request(port, "GET", "/ready").status, 503)
        r = http1_request(port, "GET", "/users/1")
        self.assertEqual(r.status, 503, r)
        texts = [("/status", admin.get("/status").body), ("/metrics", admin.get("/metrics").body)]
        time.sleep(1.3)  # the access log's flush
        texts += [("stderr", s.stderr()), ("stdout", s.stdout())]
        with open(log_path, "rb") as f:
            texts.append(("the access log", f.read()))
        s.terminate()
        texts.append(("stderr at exit", s.stderr()))
        for name, text in texts:
            with self.subTest(output=name):
                t = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
                self.assertNotIn(wrong, t)
                self.assertNotIn(self.SECRET, t)
        # the failures are logged, as JSON, naming the target but not the password
        errors = server_log(s.stderr())
        self.assertTrue([e for e in errors if e["level"] in ("warn", "error")], errors)


if __name__ == "__main__":
    if not TEST_DB_URL:
        print(DB_SKIP, flush=True)
    harness.run_tests()
