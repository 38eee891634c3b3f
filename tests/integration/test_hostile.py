"""test_hostile.py: hostile input against the real binary. Every request here must get a 4xx (or have its connection
closed), and the server must keep serving: after each case a normal request on a fresh connection (HTTP/1.1 and
h2c) must succeed, the process must be alive, and its stderr must hold no sanitizer report (run it with an Asan
HYDRANT_BIN).

- HostileHttp (no database): path traversal, NUL bytes and invalid percent-encoding in paths, oversized and
  numerous headers, very long URLs, HTTP/1.1 request smuggling shapes on raw sockets (Content-Length with
  Transfer-Encoding, two Content-Lengths, bad chunked encoding, obs-fold lines), hostile X-Request-Id values, a
  broken HPACK block, and HTTP/2 CONTINUATION floods (memory bounded: VmRSS < +50 MiB)
- HostileJson (needs HYDRANT_TEST_DATABASE_URL): POST /api/v1/users with invalid UTF-8, deeply nested JSON,
  huge numbers, NUL bytes, and SQL injection strings (stored verbatim and read back identical, never executed)
"""

import hashlib
import json
import os
import re
import socket
import struct
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import dbharness  # noqa: E402
import hpack  # noqa: E402
from dbharness import needs_db  # noqa: E402
from harness import http1_request, make_config, plain_listener  # noqa: E402

CT_JSON = {"Content-Type": "application/json"}
RSS_BUDGET_MIB = 50


def log(msg):
    sys.stderr.write("  %s\n" % msg)
    sys.stderr.flush()


# ---- clients -------------------------------------------------------------------------------------------------------


def exchange(port, data, wait=1.5, host="127.0.0.1"):
    """Sends raw bytes on a fresh connection and reads until the server closes it or nothing came for `wait`
    seconds. Returns (bytes received, closed): closed is True when the server ended the connection (FIN or RST)."""
    so = socket.create_connection((host, port), timeout=5)
    try:
        so.sendall(data)
        got = b""
        so.settimeout(wait)
        while True:
            try:
                c = so.recv(65536)
            except socket.timeout:
                return got, False
            except ConnectionResetError:
                return got, True
            if not c:
                return got, True
            got += c
    finally:
        so.close()


def split_responses(data):
    """The HTTP/1.1 responses in a byte stream (Content-Length framed), as a list of (status, headers dict, body)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
        if not m:
            raise AssertionError("not an HTTP/1 response: %r" % data[:200])
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        n = int(hdrs.get("content-length", "0"))
        out.append((int(m.group(1)), hdrs, rest[:n]))
        data = rest[n:]
    return out


def h2_request(port, method, path, body=None, headers=(), timeout=10):
    """harness.h2_request; None when the stream was reset without a response (see .reset_code on the client)."""
    return harness.h2_request(port, method, path, body=body, headers=headers, timeout=timeout, allow_reset=True)


def request(proto, port, method, path, body=None, headers=None, timeout=10):
    if isinstance(body, str):
        body = body.encode("utf-8")
    if proto == "h2c":
        return h2_request(port, method, path, body=body, headers=[(k.lower(), v) for k, v in (headers or {}).items()],
                          timeout=timeout)
    return http1_request(port, method, path, body=body, headers=dict(headers or {}), timeout=timeout)


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def frames_in(data):
    """(type, flags, stream id, payload) of each complete HTTP/2 frame in `data` (after the server's preface)."""
    out, i = [], 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i:i + 3], "big")
        out.append((data[i + 3], data[i + 4], int.from_bytes(data[i + 5:i + 9], "big") & 0x7fffffff,
                    data[i + 9:i + 9 + n]))
        i += 9 + n
    return out


def hpack_int(value, prefix_bits, first=0):
    """An HPACK integer (RFC 7541 5.1) with `first` holding the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = [first | limit], value - limit
    while value >= 128:
        out.append(0x80 | (value & 0x7f))
        value >>= 7
    return bytes(out + [value])


def literal_field(name, value):
    """A literal header field without indexing, with a new name, no Huffman coding (RFC 7541 6.2.2)."""
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def is_asan_build(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def vmrss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS for pid %d" % pid)


GOAWAY, RST_STREAM = 7, 3


def error_code(f):
    """The error code of a GOAWAY or RST_STREAM frame (type, flags, stream, payload)."""
    return int.from_bytes(f[3][4:8] if f[0] == GOAWAY else f[3][:4], "big")
H2_ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR", 5: "STREAM_CLOSED",
             6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR", 11: "ENHANCE_YOUR_CALM"}


# ---- protocol-level hostility (no database) -------------------------------------------------------------------------

ROUTES = """\
middleware: [request_id, client_ip, metrics]
routes:
  - path: /health
    handler: health
  - path: /json
    handler: json
  - path: /metrics
    handler: metrics
  - path: /submit
    methods: [POST]
    static: {status: 200, body: "accepted"}
  - path: /users/{id:int}
    methods: [GET, DELETE]
    static: {status: 200, content_type: application/json, body: '{"ok":true}'}
"""


class HostileHttp(harness.SharedServerTestCase):
    """One server (1 thread: a stall or crash shows at once) for every case; after each, a normal request on fresh
    HTTP/1.1 and h2c connections must be served (and SharedServerTestCase checks that the process is alive and that
    its stderr has no sanitizer report)."""

    @classmethod
    def make_config(cls):
        return make_config([plain_listener(cls.port)], threads=1, routes=ROUTES)

    @classmethod
    def setUpClass(cls):
        # Under AddressSanitizer, freed memory sits in a quarantine of up to 256 MiB before it is reused, which would
        # make VmRSS meaningless for the memory bound of the CONTINUATION floods: keep the quarantine small (8 MiB:
        # a use after free of recent memory is still caught).
        if is_asan_build(harness.hydrant_bin()):
            opts = os.environ.get("ASAN_OPTIONS", "")
            os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "quarantine_size_mb=8"
            try:
                super().setUpClass()
            finally:
                if opts:
                    os.environ["ASAN_OPTIONS"] = opts
                else:
                    del os.environ["ASAN_OPTIONS"]
        else:
            super().setUpClass()

    def tearDown(self):
        if type(self).server.alive():
            self.assert_serving()
        super().tearDown()

    def assert_serving(self):
        r = http1_request(self.port, "GET", "/health", timeout=5)
        self.assertEqual((r.status, r.body), (200, b"OK"), r)
        r = h2_request(self.port, "GET", "/health", timeout=5)
        self.assertEqual((r.status, r.body), (200, b"OK"), r)

    def exchange_one(self, data, what):
        got, closed = exchange(self.port, data)
        rs = split_responses(got)
        self.assertLessEqual(len(rs), 1, "%s: %d responses on one connection (the bytes after the first request were "
                             "served as another request): %r" % (what, len(rs), [r[0] for r in rs]))
        return rs, closed

    def assert_refused(self, data, what):
        """One exchange: a 4xx, or no answer and the connection closed."""
        rs, closed = self.exchange_one(data, what)
        if rs:
            self.assertTrue(400 <= rs[0][0] < 500, "%s: answered %d: %r" % (what, rs[0][0], rs[0][2][:200]))
        else:
            self.assertTrue(closed, "%s: no answer and the connection is still open" % what)
        return rs, closed

    def assert_not_smuggled(self, data, what):
        """One exchange of a request followed by more bytes (no Connection: close): a 4xx, or the connection closed
        after at most one answer; never a second answer."""
        rs, closed = self.exchange_one(data, what)
        self.assertTrue((rs and 400 <= rs[0][0] < 500) or closed,
                        "%s: answered %r and kept the connection open (what follows could be served as the next "
                        "request)" % (what, [r[0] for r in rs]))
        return rs, closed

    # ---- paths ----

    def test_path_traversal(self):
        for path in ("/../../etc/passwd", "/../../../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                     "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "/users/..%2f..%2f..%2fetc%2fpasswd",
                     "/health/../../etc/passwd", "/..\\..\\etc\\passwd", "/%c0%ae%c0%ae/etc/passwd",
                     "/.%2e/.%2e/etc/passwd", "/users/1/../../../proc/self/environ"):
            for proto in ("http/1.1", "h2c"):
                with self.subTest(path=path, proto=proto):
                    if proto == "h2c":
                        r = h2_request(self.port, "GET", path)
                        status, body = r.status, r.body
                    else:
                        got, _ = exchange(self.port, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                                          % path.encode())
                        rs = split_responses(got)
                        self.assertEqual(len(rs), 1, got[:300])
                        status, _, body = rs[0]
                    self.assertIn(status, (400, 404), body[:200])
                    self.assertNotIn(b"root:", body)
                    self.assertNotIn(b"PATH=", body)

    def test_nul_bytes_in_paths(self):
        for path in ("/health%00", "/health%00.txt", "/users/1%00", "/users/%00", "/%00", "/users/1%00/../2"):
            for proto in ("http/1.1", "h2c"):
                with self.subTest(path=path, proto=proto):
                    r = request(proto, self.port, "GET", path)
                    self.assertEqual(r.status, 400, r)
                    self.assertEqual(r.json()["error"], "bad_request", r)
        # a raw NUL byte in the request line and in a header
        self.assert_refused(b"GET /hea\x00lth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "raw NUL in path")
        self.assert_refused(b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n",
                                  "raw NUL in a header")

    def test_invalid_percent_encoding(self):
        for path in ("/%zz", "/health%", "/health%4", "/health%g0", "/users/%G1", "/users/1%", "/%%30"):
            for proto in ("http/1.1", "h2c"):
                with self.subTest(path=path, proto=proto):
                    r = request(proto, self.port, "GET", path)
                    self.assertEqual(r.status, 400, r)
                    self.assertEqual(r.json()["error"], "bad_request", r)

    def test_very_long_url(self):
        long_path = "/" + "a" * 100 * 1024
        for proto in ("http/1.1", "h2c"):
            with self.subTest(proto=proto):
                r = request(proto, self.port, "GET", long_path)
                self.assertEqual(r.status, 404, r)
                r = request(proto, self.port, "GET", "/users/" + "9" * 100 * 1024)
                self.assertEqual(r.status, 404, r)
                # a 100 KB query on a route that ignores it: answered (hydrant has no URI length limit of its own)
                r = request(proto, self.port, "GET", "/health?" + "q=" + "a" * 100 * 1024)
                self.assertLess(r.status, 500, r)
        # 1 MB: over libh2o's request-head limit
        self.assert_refused(b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                  "a 1 MB request line")

    # ---- headers ----

    def test_oversized_header(self):
        big = "a" * 64 * 1024
        got, _ = exchange(self.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\nConnection: close\r\n\r\n"
                          % big.encode())
        rs = split_responses(got)
        self.assertEqual([r[0] for r in rs], [431], got[:300])
        r = h2_request(self.port, "GET", "/health", headers=[("x-big", big)])
        self.assertEqual(r.status, 431, r)
        # a cookie of 64 KiB in 4 KiB pieces (h2 splits cookies into separate fields)
        r = h2_request(self.port, "GET", "/health", headers=[("cookie", "c%d=%s" % (i, "b" * 4096)) for i in range(16)])
        self.assertEqual(r.status, 431, r)

    def test_many_small_headers(self):
        fields = b"".join(b"X-H%d: v\r\n" % i for i in range(1000))
        self.assert_refused(b"GET /health HTTP/1.1\r\nHost: x\r\n" + fields + b"Connection: close\r\n\r\n",
                                  "1000 header fields")
        fields = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
        self.assert_refused(b"GET /health HTTP/1.1\r\nHost: x\r\n" + fields + b"Connection: close\r\n\r\n",
                                  "150 header fields")
        r = h2_request(self.port, "GET", "/health", headers=[("x-h%d" % i, "v") for i in range(5000)])
        self.assertEqual(r.status, 431, r)
        r = h2_request(self.port, "GET", "/health", headers=[("x-same", "v")] * 2000)
        self.assertEqual(r.status, 431, r)

    def test_hostile_request_ids(self):
        # request_id keeps only sane ids (1-128 printable ASCII); anything else is replaced by a generated one (or
        # libh2o refuses the request first: control characters in a field value are a 400 over HTTP/2)
        for value, kept in (("a" * 129, False), ("a b", False), ("x\x7fy", False), ("\u00e9t\u00e9", False),
                            ("a\tb", False), ("<script>alert(1)</script>", True), ("../../etc/passwd", True)):
            with self.subTest(value=value):
                r = h2_request(self.port, "GET", "/health", headers=[("x-request-id", value)])
                if r.status == 400:
                    self.assertFalse(kept)
                    continue
                self.assertEqual(r.status, 200, r)
                rid = r.header("x-request-id")
                if kept:
                    self.assertEqual(rid, value)  # printable ASCII: kept (it is only echoed in a header)
                else:
                    self.assertRegex(rid, r"^[0-9a-hjkmnp-tv-z]{26}$", "x-request-id %r was kept" % value)
        # a lone CR inside a value over HTTP/1.1: refused, or at least never echoed back
        got, _ = exchange(self.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: ab\rcd\r\nConnection: close"
                          b"\r\n\r\n")
        for status, hdrs, _ in split_responses(got):
            self.assertTrue(status == 400 or "\r" not in hdrs.get("x-request-id", ""), got[:300])

    # ---- request smuggling shapes (HTTP/1.1) ----

    SMUGGLED = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"

    def test_smuggling_content_length_and_transfer_encoding(self):
        # RFC 9112 6.1: with both, a server may reject the request, or use Transfer-Encoding, but MUST close the
        # connection after responding; otherwise what follows the chunked body is served as the next request, which
        # a front proxy that went by Content-Length forwarded as part of this one
        for name, head in (("CL then TE", b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
                           ("TE then CL", b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n")):
            with self.subTest(order=name):
                self.assert_not_smuggled(b"POST /submit HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n0\r\n\r\n"
                                         + self.SMUGGLED, name)

    def test_smuggling_two_content_lengths(self):
        # RFC 9112 6.3: differing Content-Length values are an unrecoverable error: 400, and the connection closed
        n = len(self.SMUGGLED)
        for name, head in (("0 then %d" % n, b"Content-Length: 0\r\nContent-Length: %d\r\n" % n),
                           ("%d then 0" % n, b"Content-Length: %d\r\nContent-Length: 0\r\n" % n),
                           ("a list", b"Content-Length: 0, %d\r\n" % n)):
            with self.subTest(values=name):
                rs, closed = self.assert_not_smuggled(b"POST /submit HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n"
                                                      + self.SMUGGLED, name)
                self.assertEqual(([r[0] for r in rs], closed), ([400], True), name)

    def chunked_failures(self, cases):
        # each request alone (a valid request after a body the server accepted would be plain pipelining)
        failures = []
        for name, body in cases:
            got, closed = exchange(self.port, b"POST /submit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   + body)
            rs = split_responses(got)
            if not ((len(rs) == 1 and 400 <= rs[0][0] < 500) or (not rs and closed)):
                failures.append("%s %r: answered %r, connection %s" % (name, body, [r[0] for r in rs],
                                                                     "closed" if closed else "open"))
        return failures

    def test_chunk_size_with_junk(self):
        # RFC 9112 7.1: chunk-size is hex digits, optionally followed by ";ext", then CRLF. libh2o's own decoder reads
        # the hex digits and skips anything else up to the line end ("0x5" would be a last chunk, "5 5" and "5xyz"
        # size 5): a front proxy that reads these differently is out of step with the server. hydrant's guard
        # (app/h2o_guard.c) replaces that decoder with a strict one: libh2o then answers 400 and closes.
        cases = (("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
                 ("a space inside the size", b"5 5\r\nhello\r\n0\r\n\r\n"),
                 ("junk after the size", b"5xyz\r\nhello\r\n0\r\n\r\n"),
                 ("a bare CR after the size", b"5\rhello\r\n0\r\n\r\n"),
                 ("a bare LF after the size", b"5\nhello\r\n0\r\n\r\n"),
                 ("a space before the CRLF", b"5 \r\nhello\r\n0\r\n\r\n"),
                 ("a space before the size", b" 5\r\nhello\r\n0\r\n\r\n"),
                 ("an extension without a name", b"5;\r\nhello\r\n0\r\n\r\n"),
                 ("junk in an extension", b"5;a=b c\r\nhello\r\n0\r\n\r\n"),
                 ("an unterminated quoted extension", b"5;a=\"b\r\nhello\r\n0\r\n\r\n"),
                 ("0x in the last chunk", b"5\r\nhello\r\n0x0\r\n\r\n"),
                 ("a bare LF after the data", b"5\r\nhello\n0\r\n\r\n"),
                 ("a folded trailer", b"5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n"),
                 ("a bare LF ending the trailers", b"5\r\nhello\r\n0\r\n\n"))
        failures = self.chunked_failures(cases)
        self.assertEqual(failures, [], "chunk sizes with junk after the digits must be refused:\n"
                         + "\n".join(failures))
        # what the client gets: libh2o's 400 (plain text, not hydrant's JSON: libh2o answers before any handler),
        # "Connection: close", and the connection closed
        got, closed = exchange(self.port, b"POST /submit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"0x5\r\nhello\r\n0\r\n\r\n" + self.SMUGGLED)
        rs = split_responses(got)
        self.assertEqual(([r[0] for r in rs], closed), ([400], True), got[:300])
        self.assertEqual(rs[0][1].get("connection"), "close", rs[0][1])

    def test_valid_chunked_bodies(self):
        # what the guard must keep accepting: extensions (token and quoted values, BWS before ';'), trailers, upper-
        # and lower-case hex, leading zeros, many small chunks, a body that arrives a few bytes at a time; each
        # request is followed by a pipelined GET, which must be served as the next request (the bytes after the body
        # are handed back to libh2o intact)
        cases = (("one chunk", b"5\r\nhello\r\n0\r\n\r\n"),
                 ("extensions", b"5;a=b ;c\t; d = \"q \\\" ;v\"\r\nhello\r\n0;last\r\n\r\n"),
                 ("trailers", b"5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-Empty:\r\n\r\n"),
                 ("hex digits", b"A\r\n0123456789\r\nb\r\n0123456789a\r\n0000\r\n\r\n"),
                 ("leading zeros", b"0005\r\nhello\r\n0\r\n\r\n"),
                 ("many small chunks", b"".join(b"1\r\n%c\r\n" % c for c in b"abcdefghijklmnopqrstuvwxyz") * 20
                  + b"0\r\n\r\n"))
        for name, body in cases:
            for pieces in (1, 7):
                with self.subTest(case=name, pieces=pieces):
                    data = (b"POST /submit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body
                            + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    so = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                    try:
                        so.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        step = -(-len(data) // pieces)
                        for i in range(0, len(data), step):
                            so.sendall(data[i:i + step])
                            if pieces > 1:
                                time.sleep(0.02)
                        got = b""
                        while True:
                            c = so.recv(65536)
                            if not c:
                                break
                            got += c
                    finally:
                        so.close()
                    rs = split_responses(got)
                    self.assertEqual([(r[0], r[2]) for r in rs], [(200, b"accepted"), (200, b"OK")], got[:600])

    def test_smuggling_bad_chunked_encoding(self):
        failures = self.chunked_failures((("not hex", b"zz\r\nhello\r\n0\r\n\r\n"),
                                          ("size too small", b"3\r\nhello\r\n0\r\n\r\n"),
                                          ("negative", b"-5\r\nhello\r\n0\r\n\r\n"),
                                          ("overflowing size", b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
                                          ("no CRLF after data", b"5\r\nhelloXX0\r\n\r\n")))
        self.assertEqual(failures, [], "malformed chunked bodies must be refused:\n" + "\n".join(failures))
        for te in (b"gzip, chunked", b"xchunked", b"chunked, identity", b"identity"):
            with self.subTest(te=te):
                self.assert_not_smuggled(b"POST /submit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te
                                         + b"\r\nContent-Length: 0\r\n\r\n" + self.SMUGGLED, te.decode())
        # "Transfer-Encoding : chunked" (a space before the colon) is not a valid field line: 400
        self.assert_not_smuggled(b"POST /submit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n"
                                 b"Content-Length: 0\r\n\r\n" + self.SMUGGLED, "space before the colon")

    def test_obs_fold_in_transfer_encoding(self):
        self.assert_not_smuggled(b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding:\r\n"
                                 b" chunked\r\n\r\n" % len(self.SMUGGLED) + self.SMUGGLED, "folded Transfer-Encoding")

    def test_obs_fold_header_lines(self):
        # RFC 9112 5.2: a server MUST either reject obs-fold with 400, or replace each fold with spaces before it
        # interprets the field. libh2o 2.2.5's parser drops the continuation line instead and answers 200 as if it
        # was not there (with an access log, "User-Agent: first\r\n second" logs user_agent "first").
        failures = []
        for name, head in (("a folded User-Agent", b"User-Agent: first\r\n second\r\n\tthird\r\n"),
                           ("a folded X-Forwarded-For", b"X-Forwarded-For: 10.0.0.1,\r\n 203.0.113.9\r\n"),
                           ("a fold as the first field line", b" folded-first\r\nUser-Agent: ua\r\n")):
            got, closed = exchange(self.port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n")
            rs = split_responses(got)
            if not ((rs and 400 <= rs[0][0] < 500) or (not rs and closed)):
                failures.append("%s: %r (connection %s)" % (name, [r[0] for r in rs], "closed" if closed else "open"))
        self.assertEqual(failures, [], "obs-fold lines must be refused (400): " + "; ".join(failures))

    # ---- HTTP/2 ----

    def h2_connect(self):
        so = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.addCleanup(so.close)
        so.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
        return so

    def read_until_closed(self, so, wait):
        """Reads until EOF/RST or `wait` seconds of silence; returns (bytes, closed)."""
        got = b""
        so.settimeout(wait)
        while True:
            try:
                c = so.recv(65536)
            except socket.timeout:
                return got, False
            except ConnectionResetError:
                return got, True
            if not c:
                return got, True
            got += c

    def test_broken_hpack_block(self):
        so = self.h2_connect()
        # an indexed field pointing past the static and dynamic tables
        so.sendall(frame(1, 0x5, 1, b"\x82\x86\xff\xff\xff\xff\x0f"))
        got, closed = self.read_until_closed(so, 3)
        goaways = [f for f in frames_in(got) if f[0] == GOAWAY]
        self.assertTrue(closed, "the connection stayed open after a broken HPACK block")
        self.assertTrue(goaways, "no GOAWAY after a broken HPACK block: %r" % frames_in(got))
        self.assertEqual(H2_ERRORS.get(error_code(goaways[0])), "COMPRESSION_ERROR")

    def continuation_flood(self, payload, max_frames, batch):
        """HEADERS (END_STREAM, no END_HEADERS) for GET /health, then CONTINUATION frames with `payload`, in batches,
        until the server ends the connection or max_frames were sent. Returns (frames sent, the frames the server
        sent, closed)."""
        so = self.h2_connect()
        block = hpack.Encoder().encode([(":method", "GET"), (":scheme", "http"), (":path", "/health"),
                                        (":authority", "x")])
        so.sendall(frame(1, 0x1, 1, block))
        chunk = frame(9, 0, 1, payload) * batch
        sent, got, closed = 0, b"", False
        so.settimeout(5)
        while sent < max_frames:
            try:
                so.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sent += batch
            so.setblocking(False)
            try:
                c = so.recv(65536)
                if not c:
                    closed = True
                    break
                got += c
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed = True
                break
            so.setblocking(True)
            so.settimeout(5)
        if not closed:
            more, closed = self.read_until_closed(so, 1.0)
            got += more
        else:
            try:
                so.setblocking(True)
                more, _ = self.read_until_closed(so, 0.5)
                got += more
            except OSError:
                pass
        return sent, frames_in(got), closed

    def test_continuation_flood(self):
        pid = type(self).server.proc.pid
        rss0 = vmrss_mib(pid)
        # complete literal header fields, 4 of 4000 bytes per frame (16 KB frames): libh2o refuses a header block
        # over its request limit (RST_STREAM REFUSED_STREAM), then the next CONTINUATION is a protocol error (GOAWAY)
        payload = literal_field(b"x-f", b"a" * 4000) * 4
        results = []
        for _ in range(20):
            sent, frames, closed = self.continuation_flood(payload, 2000, 20)
            ends = sorted({"%s %s" % ("GOAWAY" if f[0] == GOAWAY else "RST_STREAM",
                                      H2_ERRORS.get(error_code(f), error_code(f)))
                           for f in frames if f[0] in (GOAWAY, RST_STREAM)})
            results.append((sent, closed, ends))
            self.assertTrue(closed, "a CONTINUATION flood of %d frames of %d bytes did not end the connection"
                            % (sent, len(payload)))
            self.assertTrue(ends, "the connection ended without GOAWAY or RST_STREAM: %r" % [f[:3] for f in frames])
            self.assertFalse([f for f in frames if f[0] == 1], "a response was made from the flood")
        rss1 = vmrss_mib(pid)
        log("CONTINUATION flood x20 (16 KB frames): %r; VmRSS %.1f -> %.1f MiB" % (results[0], rss0, rss1))
        self.assertLess(rss1 - rss0, RSS_BUDGET_MIB, "VmRSS grew from %.1f to %.1f MiB" % (rss0, rss1))

    def test_continuation_flood_of_empty_frames(self):
        # Zero-length CONTINUATION frames never make the header block bigger, so no size limit is ever reached:
        # the flood is bounded in memory, but the connection should still be ended (nghttp2 caps the number of
        # CONTINUATION frames per header block since CVE-2024-28182). Each frame also resets the idle timer, so a
        # trickle of them holds a connection with an unfinished request open indefinitely.
        pid = type(self).server.proc.pid
        rss0 = vmrss_mib(pid)
        t0 = time.monotonic()
        sent, frames, closed = self.continuation_flood(b"", 50000, 1000)
        took = time.monotonic() - t0
        rss1 = vmrss_mib(pid)
        log("empty CONTINUATION flood: %d frames in %.1fs, closed %s, frames from the server %r; VmRSS %.1f -> "
            "%.1f MiB" % (sent, took, closed, [f[:3] for f in frames][:5], rss0, rss1))
        self.assert_serving()  # served meanwhile (the flood's connection may still be open)
        self.assertLess(rss1 - rss0, RSS_BUDGET_MIB, "VmRSS grew from %.1f to %.1f MiB" % (rss0, rss1))
        self.assertTrue(closed, "%d zero-length CONTINUATION frames after a HEADERS without END_HEADERS: the "
                        "connection is still open (no GOAWAY/RST_STREAM)" % sent)
        # the guard's rule (app/h2o_guard.c): the first empty CONTINUATION without END_HEADERS is a connection error
        goaways = [f for f in frames if f[0] == GOAWAY]
        self.assertTrue(goaways, "no GOAWAY: %r" % [f[:3] for f in frames])
        self.assertEqual(H2_ERRORS.get(error_code(goaways[0])), "ENHANCE_YOUR_CALM", goaways[0])
        self.assertIn(b"empty CONTINUATION", goaways[0][3][8:])
        self.assertFalse([f for f in frames if f[0] == 1], "a response was made from the flood")

    def test_header_block_in_several_frames(self):
        # a legitimate header block split over HEADERS and CONTINUATION frames, the last of them empty with
        # END_HEADERS (legal, and not refused by the guard): answered as usual
        block = hpack.Encoder().encode([(":method", "GET"), (":scheme", "http"), (":path", "/health"),
                                        (":authority", "x"), ("x-a", "a" * 100), ("x-b", "b" * 100)])
        for name, pieces in (("HEADERS + CONTINUATION", [block[:10], block[10:]]),
                             ("three frames, the last one empty", [block[:10], block[10:], b""]),
                             ("a byte a frame", [block[i:i + 1] for i in range(len(block))])):
            with self.subTest(split=name):
                so = self.h2_connect()
                data = frame(1, 0x1 | (0x4 if len(pieces) == 1 else 0), 1, pieces[0])
                for i, p in enumerate(pieces[1:], 2):
                    data += frame(9, 0x4 if i == len(pieces) else 0, 1, p)
                so.sendall(data)
                got = b""
                so.settimeout(5)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    got += so.recv(65536)
                    if any(f[0] == 0 and f[2] == 1 and f[1] & 0x1 for f in frames_in(got)):
                        break
                frames = frames_in(got)
                self.assertFalse([f for f in frames if f[0] == GOAWAY], [f[:3] for f in frames])
                heads = [f for f in frames if f[0] == 1 and f[2] == 1]
                self.assertTrue(heads, "no response: %r" % [f[:3] for f in frames])
                self.assertIn((":status", "200"), [(k.decode() if isinstance(k, bytes) else k,
                                                     v.decode() if isinstance(v, bytes) else v)
                                                    for k, v in hpack.Decoder().decode(heads[0][3])])
                body = b"".join(f[3] for f in frames if f[0] == 0 and f[2] == 1)
                self.assertEqual(body, b"OK")


# ---- hostile JSON and SQL (database) --------------------------------------------------------------------------------

DB_ROUTES = """\
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
"""

SEEDED = 20


def nested(depth, kind):
    if kind == "array":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b'[{"a":' * (depth // 2) + b"1" + b"}]" * (depth // 2)


@needs_db
class HostileJson(unittest.TestCase):
    maxDiff = None
    db = None
    server = None

    @classmethod
    def setUpClass(cls):
        cls.db = dbharness.prepare_database("hostile", seed_users=SEEDED)
        try:
            cls.server, cls.port = dbharness.start_db_server(cls.db.url, threads=1,
                                                             pool={"max_open": 2, "acquire_timeout": "5s"},
                                                             routes=DB_ROUTES)
            if not dbharness.wait_pool_ready(cls.port, 10):
                raise AssertionError("/ready never said 200\n" + cls.server.describe())
        except BaseException:
            if cls.server is not None:
                cls.server.kill()
            cls.db.drop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.server is not None:
                rc, _ = cls.server.terminate()
                cls.server.assert_no_sanitizer_report()
                if rc != 0:
                    raise AssertionError("server exited %s after SIGTERM\n%s" % (rc, cls.server.describe()))
        finally:
            if cls.server is not None:
                cls.server.kill()
            cls.db.drop()

    def setUp(self):
        self.db.sql("DELETE FROM users WHERE email NOT LIKE 'seed-%@example.com'")

    def tearDown(self):
        s = type(self).server
        if not s.alive():
            self.fail("the server died during this test\n" + s.describe())
        report = harness.sanitizer_report(s.stderr())
        if report and not s.sanitizer_reported:
            s.sanitizer_reported = True
            self.fail("sanitizer report after this test: %s\n%s" % (report, s.describe()))
        r = http1_request(self.port, "GET", "/api/v1/users/%s" % self.first_id())
        self.assertEqual(r.status, 200, r)
        r = h2_request(self.port, "GET", "/health")
        self.assertEqual(r.status, 200, r)

    def first_id(self):
        return self.db.sql("SELECT min(id) FROM users")

    def count(self):
        return int(self.db.sql("SELECT count(*) FROM users"))

    def post(self, proto, body):
        if isinstance(body, str):
            body = body.encode("utf-8")
        return request(proto, self.port, "POST", "/api/v1/users", body=body, headers=CT_JSON)

    def assert_400(self, r, codes=("invalid_json", "invalid_field"), what=""):
        self.assertIsNotNone(r, "%s: the stream was reset without a response" % what)
        self.assertEqual(r.status, 400, "%s: %r" % (what, r))
        self.assertEqual(r.header("content-type"), "application/json", r)
        self.assertIn(r.json().get("error"), codes, "%s: %r" % (what, r))

    def test_chunked_upload(self):
        # a chunked request body (extensions, a trailer, the JSON split across chunks) reaches the users API through
        # the guard's decoder intact; a chunked body with junk in a chunk size is refused before any handler runs
        email = "chunked-%s@example.com" % uuid.uuid4().hex[:10]
        doc = json.dumps({"name": "Chunked Upload", "email": email}).encode()
        cut = len(doc) // 2
        body = (b"%x;part=1\r\n%s\r\n%X ; part=\"2\"\r\n%s\r\n0\r\nX-Checksum: none\r\n\r\n"
                % (cut, doc[:cut], len(doc) - cut, doc[cut:]))
        head = (b"POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        got, _ = exchange(self.port, head + body, wait=5)
        rs = split_responses(got)
        self.assertEqual([r[0] for r in rs], [201], got[:500])
        self.assertEqual(json.loads(rs[0][2])["email"], email)
        self.assertEqual(self.db.sql("SELECT name FROM users WHERE email = '%s'" % email), "Chunked Upload")

        before = self.count()
        email = "junk-%s@example.com" % uuid.uuid4().hex[:10]
        doc = json.dumps({"name": "Junk", "email": email}).encode()
        got, closed = exchange(self.port, head + b"0x%x\r\n%s\r\n0\r\n\r\n" % (len(doc), doc))
        self.assertEqual(([r[0] for r in split_responses(got)], closed), ([400], True), got[:300])
        self.assertEqual(self.count(), before)

    def test_invalid_utf8_in_json(self):
        before = self.count()
        cases = {
            "a lone 0xff": b"\xff",
            "a stray continuation byte": b"\x80",
            "a truncated sequence": b"\xe2\x82",
            "a sequence cut by the quote": b"\xc2",
            "overlong '/' (2 bytes)": b"\xc0\xaf",
            "overlong '/' (3 bytes)": b"\xe0\x80\xaf",
            "overlong '/' (4 bytes)": b"\xf0\x80\x80\xaf",
            "an encoded surrogate (U+D800)": b"\xed\xa0\x80",
            "an encoded surrogate (U+DFFF)": b"a\xed\xbf\xbfb",
            "beyond U+10FFFF": b"\xf4\x90\x80\x80",
            "a 5-byte sequence": b"\xf8\x88\x80\x80\x80",
        }
        failures = []
        for name, bad in cases.items():
            for field in ("name", "email", "key"):
                for proto in ("http/1.1", "h2c"):
                    email = ("u-%s@example.com" % uuid.uuid4().hex[:10]).encode()
                    if field == "name":
                        body = b'{"name":"x' + bad + b'","email":"' + email + b'"}'
                    elif field == "email":
                        body = b'{"name":"x","email":"' + bad + email + b'"}'
                    else:
                        body = b'{"n' + bad + b'":1,"name":"x","email":"' + email + b'"}'
                    r = self.post(proto, body)
                    if r.status != 400:
                        failures.append("%s in %s (%s): %d %s" % (name, field, proto, r.status,
                                                                  r.body[:70].decode("utf-8", "replace")))
        self.assertEqual(failures, [], "invalid UTF-8 in a JSON body must be 400; %d cases were not:\n%s"
                         % (len(failures), "\n".join(failures)))
        self.assertEqual(self.count(), before, "rows were created from invalid UTF-8")

    def test_escaped_surrogates_in_json(self):
        # a valid escaped pair is a character; lone escaped surrogates are not characters at all
        r = self.post("http/1.1", '{"name":"\\ud83d\\ude00 smile","email":"pair@example.com"}')
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["name"], "\U0001F600 smile")
        failures = []
        for esc in ("\\ud800", "\\udc00", "\\udbff\\u0041", "x\\udfffy", "\\ude00\\ud83d"):
            for proto in ("http/1.1", "h2c"):
                r = self.post(proto, '{"name":"%s","email":"s-%s@example.com"}' % (esc, uuid.uuid4().hex[:10]))
                if r.status != 400:
                    failures.append("%s (%s): %d %s" % (esc, proto, r.status, r.body[:90].decode("utf-8", "replace")))
        self.assertEqual(failures, [], "lone escaped surrogates must be 400 (not stored altered, not a database "
                         "error):\n" + "\n".join(failures))

    def test_deeply_nested_json(self):
        before = self.count()
        for kind in ("array", "object", "mixed"):
            for proto in ("http/1.1", "h2c"):
                with self.subTest(kind=kind, proto=proto):
                    self.assert_400(self.post(proto, nested(10000, kind)), what="10,000 levels (%s)" % kind)
                    # as the value of a field, and unclosed
                    body = b'{"name":' + nested(10000, kind) + b',"email":"deep@example.com"}'
                    self.assert_400(self.post(proto, body), what="10,000 levels in name (%s)" % kind)
                    self.assert_400(self.post(proto, b"[" * 100000), what="100,000 unclosed arrays")
                    self.assert_400(self.post(proto, b'{"a":' * 100000), what="100,000 unclosed objects")
        self.assertEqual(self.count(), before)

    def test_huge_numbers(self):
        before = self.count()
        for value in (b"1e999999", b"-1e999999", b"9" * 100000, b"-" + b"9" * 100000, b"0." + b"0" * 100000 + b"1",
                      b"1" + b"0" * 400 + b"e-400", b"1E+2147483648", b"-0"):
            for field in ("name", "email"):
                for proto in ("http/1.1", "h2c"):
                    with self.subTest(value=value[:20], field=field, proto=proto):
                        doc = {"name": "N", "email": "n-%s@example.com" % uuid.uuid4().hex[:10]}
                        body = json.dumps(doc).replace('"%s"' % doc[field], "@@").encode().replace(b"@@", value)
                        r = self.post(proto, body)
                        self.assert_400(r, ("invalid_field",), what="a number in %s" % field)
                        self.assertIn("must be a string", r.json()["message"])
        self.assertEqual(self.count(), before)
        # in a field that is not read: ignored (201) or refused (400), never a crash
        for proto in ("http/1.1", "h2c"):
            email = "extra-%s@example.com" % uuid.uuid4().hex[:10]
            r = self.post(proto, b'{"name":"N","email":"%s","extra":%s}' % (email.encode(), b"9" * 100000))
            self.assertIn(r.status, (201, 400), r)

    def test_nul_bytes_in_json(self):
        before = self.count()
        for proto in ("http/1.1", "h2c"):
            with self.subTest(proto=proto):
                self.assert_400(self.post(proto, '{"name":"a\\u0000b","email":"nul1@example.com"}'),
                                ("invalid_field",), "escaped NUL in name")
                self.assert_400(self.post(proto, '{"name":"\\u0000","email":"nul2@example.com"}'),
                                ("invalid_field",), "name that is only NUL")
                self.assert_400(self.post(proto, '{"name":"ab","email":"nul3\\u0000@example.com"}'),
                                ("invalid_field",), "escaped NUL in email")
                self.assert_400(self.post(proto, b'{"name":"a\x00b","email":"nul4@example.com"}'),
                                ("invalid_json",), "raw NUL in a string")
                self.assert_400(self.post(proto, b'{"name":"ab","email":"nul5@example.com"}\x00'),
                                ("invalid_json",), "raw NUL after the document")
                self.assert_400(self.post(proto, '{"na\\u0000me":"x","email":"nul6@example.com"}'),
                                ("invalid_field",), "NUL in a key")
        self.assertEqual(self.count(), before)
        for path in ("/api/v1/users/1%00", "/api/v1/users%00", "/api/v1/users?limit=1%00", "/api/v1/users?after=%00"):
            with self.subTest(path=path):
                r = http1_request(self.port, "GET", path)
                self.assertEqual(r.status, 400, r)

    def test_sql_injection_strings_are_stored_verbatim(self):
        names = ["Robert'); DROP TABLE users;--", "' OR '1'='1", "1; SELECT pg_sleep(5)--", "$1",
                 "$$; DROP TABLE users; $$",
                 "\\'; DROP TABLE users; --", "%s%s%s%n%x", "\\x00\\000", "users\"); DELETE FROM users; --",
                 "Ω' UNION SELECT passwd FROM pg_shadow --", "'; COPY users TO '/tmp/x'; --", "E'\\\\'",
                 "/* */ SELECT 1; --", "a\u2028b\u2029c \ufeff", "${jndi:ldap://x/a}", "x" * 100]
        emails = ["x'or'1'='1@example.com", "a'--@example.com", "it$$@example.com", "b%27@example.com",
                  "drop.table.users@example.com", "o'reilly+tag@example.com", "{$gt:''}@example.com",
                  "semi%3Bcolon@example.com"]
        before = self.count()
        created = []
        for i, name in enumerate(names + ["plain"] * len(emails)):
            email = emails[i - len(names)] if i >= len(names) else "inj-%d-%s@example.com" % (i, uuid.uuid4().hex[:6])
            proto = ("http/1.1", "h2c")[i % 2]
            t0 = time.monotonic()
            r = self.post(proto, json.dumps({"name": name, "email": email}))
            took = time.monotonic() - t0
            self.assertEqual(r.status, 201, "%r / %r: %r" % (name, email, r))
            self.assertLess(took, 2.0, "%r took %.1fs" % (name, took))  # pg_sleep(5) never ran
            self.assertEqual((r.json()["name"], r.json()["email"]), (name, email))
            created.append((r.json()["id"], name, email))
        # read back identical, through the API and straight from the table
        for uid, name, email in created:
            r = request(("http/1.1", "h2c")[uid % 2], self.port, "GET", "/api/v1/users/%d" % uid)
            self.assertEqual((r.status, r.json()["name"], r.json()["email"]), (200, name, email))
            row = self.db.rows("SELECT md5(name), md5(email) FROM users WHERE id = %d" % uid)
            self.assertEqual(row, [[hashlib.md5(name.encode()).hexdigest(), hashlib.md5(email.encode()).hexdigest()]])
        # nothing was executed: the tables are all there and the counts add up
        self.assertEqual(self.count(), before + len(created))
        self.assertEqual(self.db.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' "
                                     "AND table_name IN ('users', 'orders', 'preferences')"), "3")
        self.assertEqual(int(self.db.sql("SELECT count(*) FROM users WHERE email LIKE 'seed-%@example.com'")), SEEDED)
        # in the query string and the path: refused before any SQL
        for path in ("/api/v1/users?limit=1;DROP%20TABLE%20users", "/api/v1/users?after=1%20OR%201=1",
                     "/api/v1/users?limit=1%27--", "/api/v1/users?after=-1"):
            with self.subTest(path=path):
                r = http1_request(self.port, "GET", path)
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json()["error"], "invalid_parameter")
        for path in ("/api/v1/users/1%20OR%201=1", "/api/v1/users/1;DROP%20TABLE%20users", "/api/v1/users/1'--"):
            with self.subTest(path=path):
                r = http1_request(self.port, "GET", path)
                self.assertIn(r.status, (400, 404), r)
        self.assertEqual(self.count(), before + len(created))


if __name__ == "__main__":
    dbharness.run_tests()
