"""test_routing.py: what the router and the built-in handlers answer, over HTTP/1.1 and h2c: the handlers, static
routes, 404/405/400 JSON errors with their headers, HEAD, typed parameters, trailing slashes, query strings,
percent-encoding, 413 for large bodies, and many parallel requests on two threads."""

import concurrent.futures
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import assert_common_headers, curl, http1_request, parse_raw_http1, raw_http1  # noqa: E402

PLAIN = "text/plain; charset=utf-8"
JSON = "application/json"
NOT_FOUND = b'{"error":"not_found","message":"no route matches this path"}'
NOT_ALLOWED = b'{"error":"method_not_allowed","message":"the route does not allow this method"}'

BUILTINS = [("/health", PLAIN, b"OK"), ("/plaintext", PLAIN, b"Hello, World!"),
            ("/json", JSON, b'{"message":"Hello, World!"}')]


class Routing(harness.SharedServerTestCase):
    @classmethod
    def make_config(cls):
        return harness.make_config([harness.plain_listener(cls.port)], threads=2,
                                   limits={"max_request_body": "1KiB"})

    def get(self, path, method="GET", **kw):
        return http1_request(self.port, method, path, **kw)

    def h2c(self, path, *args):
        r, p = curl("http://127.0.0.1:%d%s" % (self.port, path), "--http2-prior-knowledge", *args)
        self.assertIsNotNone(r, p.stderr)
        self.assertEqual(r.version, "2")
        return r

    # ---- handlers and static routes ----

    def test_builtin_handlers(self):
        for path, ctype, body in BUILTINS:
            with self.subTest(path=path):
                r = self.get(path)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, body)
                assert_common_headers(self, r, ctype, body)

    def test_builtin_handlers_h2c(self):
        for path, ctype, body in BUILTINS:
            with self.subTest(path=path):
                r = self.h2c(path)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, body)
                assert_common_headers(self, r, ctype, body)

    def test_static_route(self):
        for method in ("GET", "DELETE"):
            with self.subTest(method=method):
                r = self.get("/users/42", method)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, b'{"ok":true}')
                self.assertEqual(r.header("x-static"), "yes")
                assert_common_headers(self, r, JSON, b'{"ok":true}')

    def test_static_route_h2c(self):
        r = self.h2c("/users/7")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b'{"ok":true}')
        self.assertEqual(r.header("x-static"), "yes")
        assert_common_headers(self, r, JSON, b'{"ok":true}')

    def test_static_default_content_type_and_status(self):
        r = self.get("/teapot", "POST", body=b"")
        self.assertEqual(r.status, 418, r)
        self.assertEqual(r.body, b"short and stout")
        assert_common_headers(self, r, PLAIN, b"short and stout")
        self.assertIsNone(r.header("x-static"))

    def test_static_route_any_int(self):
        for value in ("0", "9223372036854775807", "0042"):
            with self.subTest(value=value):
                self.assertEqual(self.get("/users/" + value).status, 200)

    # ---- errors ----

    def assert_not_found(self, r):
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.body, NOT_FOUND)
        assert_common_headers(self, r, JSON, NOT_FOUND)

    def assert_not_allowed(self, r, allow):
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.body, NOT_ALLOWED)
        self.assertEqual(r.header("allow"), allow)
        assert_common_headers(self, r, JSON, NOT_ALLOWED)

    def test_404(self):
        for path in ("/nope", "/", "/healthz", "/health/x", "/users", "/users/"):
            with self.subTest(path=path):
                self.assert_not_found(self.get(path))

    def test_404_h2c(self):
        self.assert_not_found(self.h2c("/nope"))

    def test_404_any_method(self):
        for method in ("POST", "DELETE", "PUT", "PATCH", "OPTIONS"):
            with self.subTest(method=method):
                self.assert_not_found(self.get("/nope", method, body=b"" if method in ("POST", "PUT", "PATCH") else None))

    def test_405(self):
        self.assert_not_allowed(self.get("/users/1", "POST", body=b""), "GET, HEAD, DELETE")
        self.assert_not_allowed(self.get("/users/1", "PUT", body=b""), "GET, HEAD, DELETE")
        self.assert_not_allowed(self.get("/health", "POST", body=b""), "GET, HEAD")
        self.assert_not_allowed(self.get("/health", "DELETE"), "GET, HEAD")
        self.assert_not_allowed(self.get("/teapot"), "POST")
        # HEAD is implied by GET only: on a POST-only route it is not allowed (headers as for GET, no body)
        r = self.get("/teapot", "HEAD")
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("allow"), "POST")
        assert_common_headers(self, r, JSON, NOT_ALLOWED)

    def test_405_h2c(self):
        self.assert_not_allowed(self.h2c("/users/1", "-X", "PATCH"), "GET, HEAD, DELETE")
        self.assert_not_allowed(self.h2c("/teapot"), "POST")

    def test_405_unknown_method(self):
        # a method the router does not know is not allowed anywhere a route exists
        self.assert_not_allowed(self.get("/health", "BREW"), "GET, HEAD")

    def test_400_bad_escape(self):
        for path in ("/%zz", "/health%", "/users/%4", "/a%00b"):
            with self.subTest(path=path):
                raw = raw_http1(self.port, ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                                            % path).encode())
                r = parse_raw_http1(raw)
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json()["error"], "bad_request", r)
                self.assertIsInstance(r.json().get("message"), str)
                assert_common_headers(self, r, JSON, r.body)

    def test_400_bad_escape_h2c(self):
        r = self.h2c("/%zz")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error"], "bad_request", r)
        assert_common_headers(self, r, JSON, r.body)

    # ---- HEAD ----

    def test_head_handler_route(self):
        for path, ctype, body in BUILTINS:
            with self.subTest(path=path):
                r = self.get(path, "HEAD")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, b"")
                assert_common_headers(self, r, ctype, body)

    def test_head_static_route(self):
        r = self.get("/users/5", "HEAD")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("x-static"), "yes")
        assert_common_headers(self, r, JSON, b'{"ok":true}')

    def test_head_sends_no_body_bytes(self):
        # http.client would not notice extra bytes after a HEAD response; read the raw stream instead.
        raw = raw_http1(self.port, b"HEAD /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, _, rest = raw.partition(b"\r\n\r\n")
        self.assertIn(b"content-length: 13", head.lower())
        self.assertEqual(rest, b"")

    def test_head_h2c(self):
        c = harness.H2Client(self.port)
        try:
            sids = [c.request("/users/5", "HEAD"), c.request("/json", "HEAD")]
            self.assertTrue(c.wait_all(sids))
            r = c.response(sids[0])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, b"")
            self.assertEqual(r.header("x-static"), "yes")
            assert_common_headers(self, r, JSON, b'{"ok":true}')
            r = c.response(sids[1])
            self.assertEqual((r.status, r.body), (200, b""))
            assert_common_headers(self, r, JSON, b'{"message":"Hello, World!"}')
        finally:
            c.close()

    # ---- path matching ----

    def test_int_param_rejects_non_digits(self):
        for value in ("abc", "12a", "-1", "+1", "1.5", "%31x", "99999999999999999999", "%20"):
            with self.subTest(value=value):
                self.assert_not_found(self.get("/users/" + value))

    def test_int_param_percent_encoded_digits(self):
        self.assertEqual(self.get("/users/%34%32").status, 200)

    def test_trailing_slash_significant(self):
        self.assert_not_found(self.get("/health/"))
        self.assert_not_found(self.get("/users/1/"))

    def test_query_string_ignored(self):
        for path in ("/health?x=1", "/health?", "/users/3?id=abc", "/json?a=b&c=%zz"):
            with self.subTest(path=path):
                self.assertEqual(self.get(path).status, 200)
        r = self.get("/plaintext?x=1")
        self.assertEqual(r.body, b"Hello, World!")

    def test_percent_encoded_literal(self):
        for path in ("/h%65alth", "/%68%65%61%6C%74%68", "/%68ealth"):
            with self.subTest(path=path):
                r = self.get(path)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, b"OK")

    def test_encoded_slash_is_not_a_separator(self):
        self.assert_not_found(self.get("/users%2F1"))

    def test_dot_segments_and_slashes_normalised(self):
        for path in ("/x/../health", "/./health", "//health", "/json/../health"):
            with self.subTest(path=path):
                raw = raw_http1(self.port, ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
                r = parse_raw_http1(raw)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, b"OK")

    def test_dot_dot_above_root_stays_at_root(self):
        raw = raw_http1(self.port, b"GET /../../../health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(parse_raw_http1(raw).status, 200)

    def test_long_and_deep_paths(self):
        # many segments (deeper than any template) and a long one: 404, answered at once
        for path in ("/a" * 2000, "/users/" + "9" * 3000, "/" + "x" * 6000):
            with self.subTest(len=len(path)):
                self.assert_not_found(self.get(path))

    # ---- bad input never harms the server (tearDown checks it is alive) ----

    def test_garbage_on_the_plain_listener(self):
        for junk in (b"\x00\x01\x02garbage\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                     b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff"):
            with self.subTest(junk=junk[:20]):
                try:
                    raw_http1(self.port, junk, timeout=5)
                except OSError:
                    pass
                self.assertEqual(self.get("/health").status, 200)

    # ---- request bodies ----

    def test_413_too_large_body(self):
        r = self.get("/teapot", "POST", body=b"x" * 2048, headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(r.status, 413, r)
        # control: a body under the limit reaches the route
        r = self.get("/teapot", "POST", body=b"x" * 512, headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(r.status, 418, r)

    def test_413_too_large_body_h2c(self):
        # The contract (and ARCHITECTURE.md: "too large -> 413") asks for a 413 response on HTTP/2 too.
        c = harness.H2Client(self.port)
        try:
            self.assertTrue(c.wait_settings())
            big = c.request("/teapot", "POST", headers=[("content-length", "2048")], body=b"y" * 2048)
            small = c.request("/teapot", "POST", headers=[("content-length", "512")], body=b"y" * 512)
            self.assertTrue(c.wait_all([big, small]))
            # control: a body under the limit reaches the route on the same connection
            self.assertEqual(c.response(small).status, 418)
            reset = c.responses[big]["reset"]
            self.assertIsNone(reset, "POST of 2 KiB (limit 1 KiB) over h2c: stream reset with error code %s "
                                     "(7 = REFUSED_STREAM, which tells clients to retry) instead of a 413 response"
                              % reset)
            self.assertEqual(c.response(big).status, 413)
        finally:
            c.close()

    def test_413_too_large_chunked_body(self):
        chunk = b"z" * 700
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
        raw = raw_http1(self.port, b"POST /teapot HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                   b"Connection: close\r\n\r\n" + body)
        self.assertEqual(parse_raw_http1(raw).status, 413)

    # ---- keep-alive and concurrency ----

    def test_keep_alive_many_requests_one_connection(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=harness.CLIENT_TIMEOUT)
        try:
            for i in range(50):
                path, ctype, body = BUILTINS[i % 3]
                r = http1_request(self.port, "GET", path, conn=conn)
                self.assertEqual((r.status, r.body), (200, body))
            r = http1_request(self.port, "GET", "/nope", conn=conn)
            self.assertEqual(r.status, 404)
            r = http1_request(self.port, "GET", "/health", conn=conn)
            self.assertEqual(r.status, 200)
        finally:
            conn.close()

    def test_200_parallel_requests(self):
        n = 200
        barrier = threading.Barrier(n, timeout=harness.CLIENT_TIMEOUT)

        def one(i):
            path, ctype, body = BUILTINS[i % 3]
            barrier.wait()
            r = http1_request(self.port, "GET", path)
            return r.status, r.body, body

        with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
            results = list(ex.map(one, range(n), timeout=30))
        self.assertEqual(len(results), n)
        for status, got, want in results:
            self.assertEqual((status, got), (200, want))


if __name__ == "__main__":
    harness.run_tests()
