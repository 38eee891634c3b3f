"""test_proxy.py: the `proxy:` route kind against real upstreams on 127.0.0.1: a second hydrant and a small Python
HTTP/1.1 server (for echoing what arrived, slowness, broken answers and counting connections). GET/POST with bodies
and query strings over HTTP/1.1 and h2c, status and headers passed through, hop-by-hop headers dropped, the forwarding
headers, 502 for a dead or broken upstream, 504 for proxy.timeout and for the route's deadline (with the upstream
request cancelled), keep-alive reuse, clients that abandon a request, a body cut short, reload adding a proxy route,
the metrics label, and `hydrant check`."""

import http.client
import json
import os
import select
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import curl, http1_request  # noqa: E402

# ---- the Python upstream ----------------------------------------------------------------------------------------------


class Upstream:
    """A threaded HTTP/1.1 server on 127.0.0.1 with keep-alive. Records every TCP connection it accepted and the
    requests whose client went away while they waited."""

    def __init__(self):
        self.lock = threading.Lock()
        self.connections = 0
        self.cancelled = []  # paths of /slow requests whose connection closed before they answered
        up = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with up.lock:
                    up.connections += 1

            def log_message(self, *a):
                pass

            def do_GET(self):
                self.handle_any()

            do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

            def send_body(self, status, body, headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                path = urllib.parse.urlsplit(self.path).path
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                if path.endswith("/slow"):
                    ms = int(query.get("ms", ["3000"])[0])
                    deadline = time.monotonic() + ms / 1000.0
                    while time.monotonic() < deadline:
                        r, _, _ = select.select([self.connection], [], [], 0.02)
                        if r and self.connection.recv(1, socket.MSG_PEEK) == b"":
                            with up.lock:
                                up.cancelled.append(self.path)
                            self.close_connection = True
                            return
                    self.send_body(200, b"slow done")
                elif path.endswith("/hop"):
                    self.send_body(200, b"hop", [("Connection", "X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "timeout=5"),
                                                 ("X-Passed", "yes"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
                elif path.endswith("/malformed"):
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello")
                    self.close_connection = True
                elif path.endswith("/garbage"):
                    self.wfile.write(b"this is not HTTP\r\n\r\n")
                    self.close_connection = True
                elif path.endswith("/cut"):
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.wfile.write(b"x" * 1000)
                    self.wfile.flush()
                    time.sleep(0.2)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                elif path.endswith("/big"):
                    chunk = b"0123456789abcdef" * 4096  # 64 KiB
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for _ in range(32):  # 2 MiB, chunked
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    doc = {"method": self.command, "path": self.path, "body": body.decode("latin-1"),
                           "headers": [[k.lower(), v] for k, v in self.headers.items()]}
                    self.send_body(200, json.dumps(doc).encode(), [("Content-Type", "application/json")])

        class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass  # the proxy closing a cancelled exchange is expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def wait_cancelled(self, path, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if any(path in p for p in self.cancelled):
                    return True
            time.sleep(0.02)
        return False


def header_values(doc, name):
    return [v for k, v in doc["headers"] if k == name]


# ---- the proxy under test -----------------------------------------------------------------------------------------------


def proxy_routes(py_port, hy_port, dead_port):
    return """\
middleware: [request_id, client_ip, access_log, metrics, timeout]
routes:
  - path: /health
    handler: health
  - path: /metrics
    handler: metrics
  - path: /py/{rest...}
    methods: [GET, POST, PUT, DELETE]
    proxy:
      upstream: http://127.0.0.1:%(py)d/base/
      timeout: 600ms
  - path: /deadline/{rest...}
    timeout: 400ms
    proxy: {upstream: "http://127.0.0.1:%(py)d", timeout: 5s}
  - path: /exact
    methods: [GET, POST]
    proxy: {upstream: "http://127.0.0.1:%(py)d/pre", host: preserve}
  - path: /hy/{rest...}
    methods: [GET, POST]
    proxy: {upstream: "http://127.0.0.1:%(hy)d", keepalive: 4}
  - path: /noreuse/{rest...}
    proxy: {upstream: "http://127.0.0.1:%(py)d", keepalive: 0, idle_timeout: 5s}
  - path: /dead/{rest...}
    proxy: {upstream: "http://127.0.0.1:%(dead)d", connect_timeout: 1s}
  - path: /unresolvable
    proxy: {upstream: "http://no-such-host.invalid:80"}
""" % {"py": py_port, "hy": hy_port, "dead": dead_port}


UPSTREAM_HYDRANT_ROUTES = """\
middleware: [request_id]
routes:
  - path: /health
    handler: health
  - path: /plaintext
    handler: plaintext
  - path: /teapot
    methods: [POST]
    static: {status: 418, body: "short and stout", headers: {x-static: yes}}
"""


class Proxy(harness.SharedServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = Upstream()
        cls.hy_port = harness.free_port()
        cls.dead_port = harness.free_port()  # nothing listens there
        cls.hy = harness.Server(harness.make_config([harness.plain_listener(cls.hy_port)], threads=1,
                                                    routes=UPSTREAM_HYDRANT_ROUTES))
        cls.hy.start(ready_port=cls.hy_port)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.hy.stop()
            cls.up.close()

    @classmethod
    def make_config(cls):
        return harness.make_config([harness.plain_listener(cls.port)], threads=2,
                                   routes=proxy_routes(cls.up.port, cls.hy_port, cls.dead_port))

    def get(self, path, method="GET", **kw):
        return http1_request(self.port, method, path, **kw)

    def echo(self, path, method="GET", **kw):
        r = self.get(path, method, **kw)
        self.assertEqual(r.status, 200, r)
        return r, json.loads(r.body)

    # ---- forwarding ----

    def test_get_with_raw_rest_and_query(self):
        r, doc = self.echo("/py/items/a%2Fb/caf%C3%A9?x=1&y=%20z")
        self.assertEqual(doc["method"], "GET")
        self.assertEqual(doc["path"], "/base/items/a%2Fb/caf%C3%A9?x=1&y=%20z")
        self.assertEqual(r.header("content-type"), "application/json")
        _, doc = self.echo("/py")
        self.assertEqual(doc["path"], "/base")
        _, doc = self.echo("/py/?q")
        self.assertEqual(doc["path"], "/base/?q")

    def test_template_without_rest_forwards_the_path(self):
        _, doc = self.echo("/exact?k=v", headers={"Host": "public.example"})
        self.assertEqual(doc["path"], "/pre/exact?k=v")
        self.assertEqual(header_values(doc, "host"), ["public.example"])  # host: preserve

    def test_post_body_http1(self):
        body = b"hello \x00 world" * 1000
        _, doc = self.echo("/py/things?z=9", "POST", body=body, headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(doc["method"], "POST")
        self.assertEqual(doc["path"], "/base/things?z=9")
        self.assertEqual(doc["body"].encode("latin-1"), body)
        self.assertEqual(header_values(doc, "content-length"), [str(len(body))])
        self.assertEqual(header_values(doc, "content-type"), ["application/octet-stream"])
        self.assertEqual(header_values(doc, "host"), ["127.0.0.1:%d" % self.up.port])

    def test_h2c_curl_and_python_h2(self):
        r, p = curl("http://127.0.0.1:%d/py/h2?a=b" % self.port, "--http2-prior-knowledge", "-X", "PUT",
                    "--data-binary", "curl-body")
        self.assertIsNotNone(r, p.stderr)
        self.assertEqual((r.version, r.status), ("2", 200), r)
        doc = json.loads(r.body)
        self.assertEqual((doc["method"], doc["path"], doc["body"]), ("PUT", "/base/h2?a=b", "curl-body"))
        c = harness.H2Client(self.port)
        try:
            sids = [c.request("/py/s%d" % i, method="POST", body=b"b%d" % i) for i in range(5)]
            self.assertTrue(c.wait_all(sids))
            for i, sid in enumerate(sids):
                resp = c.response(sid)
                self.assertEqual(resp.status, 200, resp)
                doc = json.loads(resp.body)
                self.assertEqual((doc["path"], doc["body"]), ("/base/s%d" % i, "b%d" % i))
        finally:
            c.close()

    def test_status_and_headers_from_a_hydrant_upstream(self):
        r = self.get("/hy/teapot", "POST", body=b"")
        self.assertEqual(r.status, 418, r)
        self.assertEqual(r.body, b"short and stout")
        self.assertEqual(r.header("x-static"), "yes")
        self.assertEqual(r.header_all("server"), ["hydrant"])  # one Server, one Date
        self.assertEqual(len(r.header_all("date")), 1)
        self.assertEqual(len(r.header_all("x-request-id")), 1)
        r = self.get("/hy/plaintext")
        self.assertEqual((r.status, r.body), (200, b"Hello, World!"))
        r = self.get("/hy/nowhere")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(json.loads(r.body)["error"], "not_found")

    def test_large_chunked_body_streams(self):
        r = self.get("/py/big")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"0123456789abcdef" * 4096 * 32)
        r, p = curl("http://127.0.0.1:%d/py/big" % self.port, "--http2-prior-knowledge")
        self.assertIsNotNone(r, p.stderr)
        self.assertEqual(len(r.body), 16 * 4096 * 32)

    # ---- headers ----

    def test_forwarding_headers(self):
        r, doc = self.echo("/py/h", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https",
                                             "X-Request-Id": "abc-123"})
        self.assertEqual(header_values(doc, "x-forwarded-for"), ["203.0.113.7, 127.0.0.1"])
        self.assertEqual(header_values(doc, "x-forwarded-proto"), ["http"])
        self.assertEqual(header_values(doc, "x-request-id"), ["abc-123"])
        self.assertEqual(r.header("x-request-id"), "abc-123")
        r, doc = self.echo("/py/h")
        self.assertEqual(header_values(doc, "x-forwarded-for"), ["127.0.0.1"])
        gen = r.header("x-request-id")
        self.assertTrue(gen)
        self.assertEqual(header_values(doc, "x-request-id"), [gen])

    def test_hop_by_hop_request_headers_removed(self):
        # http.client sends its own Connection only when asked; a raw request says exactly what we want
        raw = ("GET /py/hbh HTTP/1.1\r\nHost: x\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\n"
               "Proxy-Authorization: Basic abc\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\n"
               "Upgrade: websocket\r\nX-Custom: kept\r\n\r\n").encode()
        resp = harness.parse_raw_http1(harness.raw_http1(self.port, raw))
        self.assertEqual(resp.status, 200, resp)
        doc = json.loads(resp.body)
        names = {k for k, _ in doc["headers"]}
        for gone in ("x-secret", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer", "upgrade"):
            self.assertNotIn(gone, names, doc)
        self.assertEqual(header_values(doc, "connection"), ["keep-alive"])
        self.assertEqual(header_values(doc, "x-custom"), ["kept"])

    def test_hop_by_hop_response_headers_removed(self):
        r = self.get("/py/hop")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("x-hop"))
        self.assertIsNone(r.header("keep-alive"))
        self.assertEqual(r.header("x-passed"), "yes")
        self.assertEqual(r.header_all("set-cookie"), ["a=1", "b=2"])

    # ---- failures ----

    def test_upstream_down_is_502(self):
        for path in ("/dead/x", "/unresolvable"):
            with self.subTest(path=path):
                r = self.get(path)
                self.assertEqual(r.status, 502, r)
                self.assertEqual(r.header("content-type"), "application/json")
                self.assertEqual(json.loads(r.body)["error"], "bad_gateway")

    def test_malformed_upstream_is_502(self):
        for path in ("/py/malformed", "/py/garbage"):
            with self.subTest(path=path):
                r = self.get(path)
                self.assertEqual(r.status, 502, r)
                self.assertEqual(json.loads(r.body)["error"], "bad_gateway")

    def test_proxy_timeout_is_504(self):
        t0 = time.monotonic()
        r = self.get("/py/slow?ms=3000&t=proxy")
        took = time.monotonic() - t0
        self.assertEqual(r.status, 504, r)
        self.assertEqual(json.loads(r.body)["error"], "upstream_timeout")
        self.assertLess(took, 2.0)
        self.assertTrue(self.up.wait_cancelled("/slow?ms=3000&t=proxy"), "the upstream request was not cancelled")

    def test_route_deadline_is_504_and_cancels(self):
        t0 = time.monotonic()
        r = self.get("/deadline/slow?ms=3000&t=deadline")
        self.assertEqual(r.status, 504, r)
        self.assertEqual(json.loads(r.body)["error"], "deadline_exceeded")
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertTrue(self.up.wait_cancelled("/slow?ms=3000&t=deadline"), "the upstream request was not cancelled")
        r, _ = self.echo("/deadline/after")  # the route still serves

    def test_body_cut_short_ends_the_response_abruptly(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/py/cut")
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            with self.assertRaises(http.client.IncompleteRead):
                resp.read()
        finally:
            conn.close()
        c = harness.H2Client(self.port)
        try:
            sid = c.request("/py/cut")
            c.wait_all([sid])
            got = c.responses[sid]
            self.assertTrue(got["reset"] is not None or c.closed or len(got["body"]) < 100000, got["reset"])
            self.assertLess(len(got["body"]), 100000)
        finally:
            c.close()
        self.echo("/py/fine")

    def test_client_abandons_mid_request(self):
        # HTTP/1.1: close the socket while the upstream is still thinking
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(b"GET /py/slow?ms=3000&t=h1gone HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        s.close()
        self.assertTrue(self.up.wait_cancelled("/slow?ms=3000&t=h1gone"))
        # HTTP/2: RST_STREAM on one stream, the connection carries on
        c = harness.H2Client(self.port)
        try:
            sid = c.request("/py/slow?ms=3000&t=h2reset")
            time.sleep(0.2)
            c.conn.reset_stream(sid)
            c.flush()
            self.assertTrue(self.up.wait_cancelled("/slow?ms=3000&t=h2reset"))
            sid2 = c.request("/py/after-reset")
            self.assertTrue(c.wait_all([sid2]))
            self.assertEqual(c.response(sid2).status, 200)
        finally:
            c.close()
        # HTTP/2 while the body streams: reset after the head
        c = harness.H2Client(self.port)
        try:
            sid = c.request("/py/big")
            c.receive_until(lambda: c.responses[sid]["headers"] is not None)
            c.conn.reset_stream(sid)
            c.flush()
            c.close()
        finally:
            c.close()
        for _ in range(3):
            self.echo("/py/still-serving")

    # ---- keep-alive ----

    def test_keepalive_reuses_connections(self):
        with self.up.lock:
            before = self.up.connections
        n = 20
        for i in range(n):
            self.echo("/py/ka%d" % i)
        with self.up.lock:
            used = self.up.connections - before
        # every request reached the upstream (echo checks it) over at most the two threads' connections
        self.assertLessEqual(used, 2, "%d upstream connections for %d sequential requests" % (used, n))
        # keepalive: 0 opens one per request
        with self.up.lock:
            before = self.up.connections
        for i in range(5):
            r = self.get("/noreuse/x%d" % i)
            self.assertEqual(r.status, 200)
        with self.up.lock:
            self.assertEqual(self.up.connections - before, 5)

    # ---- metrics ----

    def test_metrics_count_the_route(self):
        self.echo("/py/metered")
        body = self.get("/metrics").body.decode()
        lines = [l for l in body.splitlines()
                 if l.startswith("http_requests_total{") and 'route="/py/{rest...}"' in l and 'status="200"' in l]
        self.assertTrue(lines, body[:3000])


# ---- reload and check ---------------------------------------------------------------------------------------------------


class ProxyReloadAndCheck(harness.ServerTestCase):
    def test_reload_adds_a_proxy_route(self):
        up = harness.free_port()
        upstream = self.start_server(harness.make_config([harness.plain_listener(up)], threads=1), ready_port=up)
        port = harness.free_port()
        before = harness.make_config([harness.plain_listener(port)], threads=2)
        s = self.start_server(before, ready_port=port)
        self.assertEqual(http1_request(port, "GET", "/via/plaintext").status, 404)
        after = before + "  - path: /via/{rest...}\n    proxy: {upstream: \"http://127.0.0.1:%d\"}\n" % up
        harness.write_file(s.workdir, "hydrant.yaml", after)
        s.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        r = None
        while time.monotonic() < deadline:
            r = http1_request(port, "GET", "/via/plaintext")
            if r.status == 200:
                break
            time.sleep(0.1)
        self.assertEqual((r.status, r.body), (200, b"Hello, World!"), s.describe())
        for _ in range(5):
            self.assertEqual(http1_request(port, "GET", "/via/plaintext").status, 200)
        s.stop()
        upstream.stop()

    def test_check_reports_proxy_errors_with_positions(self):
        path = harness.fixture("../conf/proxy_errors.yaml")
        p = harness.run([harness.hydrant_bin(), "check", "-c", path])
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("proxy_errors.yaml:8:17: routes[0].proxy.upstream: https upstreams are not supported (use http://), "
                      "got \"https://catalog:8443\"", p.stderr)

    def test_check_summary_shows_proxy(self):
        port = harness.free_port()
        text = harness.make_config([harness.plain_listener(port)], routes="""\
routes:
  - path: /api/v1/catalog/{rest...}
    proxy:
      upstream: http://catalog.default.svc:8080
      timeout: 2s
      keepalive: 64
""")
        path = harness.write_file(self.tmp, "ok.yaml", text)
        p = harness.run([harness.hydrant_bin(), "check", "-c", path])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("/api/v1/catalog/{rest...}  -> proxy http://catalog.default.svc:8080 (timeout=2s connect_timeout=5s "
                      "keepalive=64 idle_timeout=30s host=upstream)", p.stdout)


if __name__ == "__main__":
    harness.run_tests()
