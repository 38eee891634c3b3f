"""test_protocols.py: the protocols a plain and a TLS listener speak: HTTP/1.1, h2c with prior knowledge, h2c by
Upgrade, TLS with ALPN h2 and http/1.1 (curl, nghttp, openssl s_client), many concurrent streams on one HTTP/2
connection (python3-h2), and TLS minimum versions."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import H2Client, assert_common_headers, curl, nghttp, run  # noqa: E402

PLAIN = "text/plain; charset=utf-8"
JSON = "application/json"
ROUTES = [("/plaintext", PLAIN, b"Hello, World!"), ("/json", JSON, b'{"message":"Hello, World!"}'),
          ("/health", PLAIN, b"OK")]


def s_client(port, *args):
    """openssl s_client to 127.0.0.1:port with `args`; returns (handshake succeeded, protocol, output without the PEM)."""
    p = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost"] + list(args),
            timeout=harness.CLIENT_TIMEOUT)
    out = re.sub(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", "", p.stdout + p.stderr, flags=re.S)
    m = re.search(r"^New, (\S+), Cipher is (\S+)", out, re.M)
    ok = p.returncode == 0 and m is not None and m.group(2) != "(NONE)"
    proto = re.search(r"^\s*Protocol\s*:\s*(\S+)", out, re.M)
    if proto:
        proto = proto.group(1)
    elif ok and m.group(1) == "TLSv1.3":  # s_client may exit before printing the TLS 1.3 session
        proto = "TLSv1.3"
    return ok, proto, out


class Protocols(harness.SharedServerTestCase):
    @classmethod
    def make_config(cls):
        cls.tls_port = harness.free_port()
        return harness.make_config([harness.plain_listener(cls.port),
                                    harness.tls_listener(cls.tls_port, min_version="TLSv1.2")], threads=2)

    def url(self, path, tls=False):
        return "%s://127.0.0.1:%d%s" % ("https" if tls else "http", self.tls_port if tls else self.port, path)

    def check(self, r, p, version, path, ctype, body):
        self.assertIsNotNone(r, "client failed:\n%s\n%s" % (getattr(p, "stdout", ""), getattr(p, "stderr", "")))
        self.assertEqual(r.version, version, r)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, body, r)
        assert_common_headers(self, r, ctype, body)

    # ---- curl ----

    def test_curl_http11(self):
        for path, ctype, body in ROUTES:
            with self.subTest(path=path):
                r, p = curl(self.url(path), "--http1.1")
                self.check(r, p, "1.1", path, ctype, body)

    def test_curl_h2c_prior_knowledge(self):
        for path, ctype, body in ROUTES:
            with self.subTest(path=path):
                r, p = curl(self.url(path), "--http2-prior-knowledge")
                self.check(r, p, "2", path, ctype, body)

    def test_curl_h2c_upgrade(self):
        for path, ctype, body in ROUTES:
            with self.subTest(path=path):
                r, p = curl(self.url(path), "--http2")
                self.check(r, p, "2", path, ctype, body)
                self.assertRegex(r.all_status_lines[0], r"^HTTP/1\.1 101\b", r.all_status_lines)
                self.assertEqual(len(r.all_status_lines), 2, r.all_status_lines)

    def test_curl_tls_alpn_h2(self):
        cert, _ = harness.tls_cert()
        for path, ctype, body in ROUTES:
            with self.subTest(path=path):
                r, p = curl(self.url(path, tls=True), "--cacert", cert, "--http2")
                self.check(r, p, "2", path, ctype, body)

    def test_curl_tls_http11(self):
        cert, _ = harness.tls_cert()
        for path, ctype, body in ROUTES:
            with self.subTest(path=path):
                r, p = curl(self.url(path, tls=True), "--cacert", cert, "--http1.1")
                self.check(r, p, "1.1", path, ctype, body)

    def test_curl_tls_localhost_name(self):
        # the certificate names localhost; curl verifies it against the listener's certificate
        cert, _ = harness.tls_cert()
        r, p = curl("https://localhost:%d/health" % self.tls_port, "--cacert", cert, "--http2",
                    "--resolve", "localhost:%d:127.0.0.1" % self.tls_port)
        self.check(r, p, "2", "/health", PLAIN, b"OK")

    def test_plain_listener_is_not_tls(self):
        r, p = curl(self.url("/health").replace("http:", "https:"), "-k")
        self.assertIsNone(r, "TLS handshake succeeded on the plain listener")

    # ---- nghttp ----

    def test_nghttp_h2c_prior_knowledge(self):
        for path, ctype, body in ROUTES:
            with self.subTest(path=path):
                r, p = nghttp(self.url(path))
                self.check(r, p, "2", path, ctype, body)
                self.assertIn("recv SETTINGS frame", p.stdout)

    def test_nghttp_h2c_upgrade(self):
        for path, ctype, body in ROUTES:
            with self.subTest(path=path):
                r, p = nghttp(self.url(path), "-u")
                self.check(r, p, "2", path, ctype, body)
                self.assertIn("HTTP Upgrade success", p.stdout)

    def test_nghttp_tls(self):
        for path, ctype, body in ROUTES:
            with self.subTest(path=path):
                r, p = nghttp(self.url(path, tls=True), "-y")
                self.check(r, p, "2", path, ctype, body)

    # ---- ALPN ----

    def test_alpn_h2_preferred(self):
        for offered in ("h2", "h2,http/1.1", "http/1.1,h2"):
            with self.subTest(offered=offered):
                ok, _, out = s_client(self.tls_port, "-alpn", offered)
                self.assertTrue(ok, out)
                self.assertIn("ALPN protocol: h2\n", out)

    def test_alpn_http11_selected(self):
        # A client offering only http/1.1 must get it selected by ALPN (not "No ALPN negotiated").
        ok, _, out = s_client(self.tls_port, "-alpn", "http/1.1")
        self.assertTrue(ok, out)
        self.assertTrue("ALPN protocol: http/1.1\n" in out,
                        "ALPN offer [http/1.1] was not selected: s_client says %r"
                        % re.search(r"^.*ALPN.*$", out, re.M).group(0))

    # ---- many streams on one connection ----

    def many_streams(self, tls):
        c = H2Client(self.tls_port if tls else self.port, tls=tls)
        try:
            self.assertTrue(c.wait_settings(), "no SETTINGS frame from the server")
            sids = []
            for i in range(50):
                sids.append(c.request(ROUTES[i % 2][0]))
            self.assertTrue(c.wait_all(sids), "not all 50 streams ended: %r" %
                            {s: r for s, r in c.responses.items() if not r["ended"]})
            for i, sid in enumerate(sids):
                path, ctype, body = ROUTES[i % 2]
                r = c.response(sid)
                self.assertIsNotNone(r, "stream %d got no headers" % sid)
                self.assertIsNone(c.responses[sid]["reset"], "stream %d was reset" % sid)
                self.assertEqual((r.status, r.body), (200, body), "stream %d (%s)" % (sid, path))
                assert_common_headers(self, r, ctype, body)
            self.assertTrue(c.receive_until(lambda: c.settings_acked, timeout=2), "our SETTINGS were not acknowledged")
            self.assertIsNone(c.goaway, "unexpected GOAWAY")
            # the connection is still usable afterwards
            sid = c.request("/health")
            self.assertTrue(c.wait_all([sid]))
            self.assertEqual(c.response(sid).body, b"OK")
        finally:
            c.close()

    def test_h2c_50_concurrent_streams(self):
        self.many_streams(tls=False)

    def test_tls_h2_50_concurrent_streams(self):
        self.many_streams(tls=True)

    def test_h2_server_settings(self):
        c = H2Client(self.port)
        try:
            self.assertTrue(c.wait_settings())
            mcs = c.remote_settings.get(3)  # SETTINGS_MAX_CONCURRENT_STREAMS
            self.assertIsNotNone(mcs, "server SETTINGS lack MAX_CONCURRENT_STREAMS: %r" % c.remote_settings)
            self.assertGreaterEqual(mcs, 50)
        finally:
            c.close()

    def test_h2_post_and_errors_on_one_connection(self):
        c = H2Client(self.port)
        try:
            self.assertTrue(c.wait_settings())
            a = c.request("/teapot", "POST", body=b"milk")
            b = c.request("/nope")
            d = c.request("/teapot")
            e = c.request("/users/12", "HEAD")
            self.assertTrue(c.wait_all([a, b, d, e]))
            self.assertEqual(c.response(a).status, 418)
            self.assertEqual(c.response(a).body, b"short and stout")
            self.assertEqual(c.response(b).status, 404)
            self.assertEqual(c.response(d).status, 405)
            self.assertEqual(c.response(d).header("allow"), "POST")
            self.assertEqual(c.response(e).status, 200)
            self.assertEqual(c.response(e).body, b"")
            self.assertEqual(c.response(e).header("content-length"), "11")
        finally:
            c.close()

    # ---- TLS versions ----

    def test_tls12_and_tls13_accepted(self):
        cert, _ = harness.tls_cert()
        for args in (["--tlsv1.2", "--tls-max", "1.2"], ["--tlsv1.3"]):
            with self.subTest(args=args):
                r, p = curl(self.url("/health", tls=True), "--cacert", cert, *args)
                self.check(r, p, "2", "/health", PLAIN, b"OK")
        ok, proto, out = s_client(self.tls_port, "-tls1_2")
        self.assertTrue(ok, out)
        self.assertEqual(proto, "TLSv1.2")

    def test_tls11_rejected(self):
        # Control first: this openssl client can speak TLS 1.1 when the server allows it (OpenSSL 3 needs
        # SECLEVEL=0 for that), so a failure against hydrant is hydrant's refusal.
        cert, key = harness.tls_cert()
        port = harness.free_port()
        d = harness.make_tempdir()
        log = os.path.join(d, "s_server.out")
        with open(log, "wb") as f:
            srv = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-cert", cert, "-key", key,
                                    "-tls1_1", "-cipher", "ALL:@SECLEVEL=0", "-www"],
                                   stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with open(log) as f:
                    if "ACCEPT" in f.read():
                        break
                time.sleep(0.05)
            ok, proto, out = s_client(port, "-tls1_1", "-cipher", "ALL:@SECLEVEL=0")
            self.assertTrue(ok and proto == "TLSv1.1", "control: the client cannot do TLS 1.1 at all:\n" + out)
        finally:
            srv.kill()
            srv.wait(timeout=5)
        ok, proto, out = s_client(self.tls_port, "-tls1_1", "-cipher", "ALL:@SECLEVEL=0")
        self.assertFalse(ok, "TLS 1.1 handshake succeeded against min_version TLSv1.2:\n" + out)
        # and the listener still serves afterwards
        r, p = curl(self.url("/health", tls=True), "-k")
        self.assertIsNotNone(r, p.stderr)


class TLS13Only(harness.SharedServerTestCase):
    @classmethod
    def make_config(cls):
        cls.tls_port = harness.free_port()
        return harness.make_config([harness.plain_listener(cls.port),
                                    harness.tls_listener(cls.tls_port, min_version="TLSv1.3")], threads=1)

    def test_tls12_rejected_tls13_accepted(self):
        cert, _ = harness.tls_cert()
        url = "https://127.0.0.1:%d/health" % self.tls_port
        r, p = curl(url, "--cacert", cert, "--tlsv1.2", "--tls-max", "1.2")
        self.assertIsNone(r, "TLS 1.2 handshake succeeded against min_version TLSv1.3: %r" % r)
        self.assertNotEqual(p.returncode, 0)
        r, p = curl(url, "--cacert", cert, "--tlsv1.3")
        self.assertIsNotNone(r, p.stderr)
        self.assertEqual((r.status, r.body, r.version), (200, b"OK", "2"))
        ok, proto, out = s_client(self.tls_port, "-tls1_2")
        self.assertFalse(ok, out)
        ok, proto, out = s_client(self.tls_port, "-tls1_3")
        self.assertTrue(ok, out)
        self.assertEqual(proto, "TLSv1.3")


class StreamLimit(harness.ServerTestCase):
    def test_streams_over_the_limit_are_queued_not_refused(self):
        # limits.http2.max_concurrent_streams caps the requests processed at once; extra streams wait their turn
        port = harness.free_port()
        s = self.start_server(harness.make_config([harness.plain_listener(port)], threads=1,
                                                  limits={"http2": {"max_concurrent_streams": 10}}), ready_port=port)
        c = H2Client(port)
        try:
            self.assertTrue(c.wait_settings())
            sids = [c.request(ROUTES[i % 3][0]) for i in range(50)]
            self.assertTrue(c.wait_all(sids))
            for i, sid in enumerate(sids):
                self.assertIsNone(c.responses[sid]["reset"], "stream %d reset" % sid)
                self.assertEqual(c.response(sid).body, ROUTES[i % 3][2])
        finally:
            c.close()
        s.stop()


class RelativeTLSPaths(harness.ServerTestCase):
    def test_serve_with_paths_relative_to_the_config(self):
        # the server runs from the repository root; the files are found beside the config
        d = harness.make_tempdir()
        cert, key = harness.tls_cert()
        os.mkdir(os.path.join(d, "tls"))
        for src, name in ((cert, "c.pem"), (key, "k.pem")):
            with open(src) as f:
                harness.write_file(os.path.join(d, "tls"), name, f.read())
        port, tls_port = harness.free_port(), harness.free_port()
        text = harness.make_config([harness.plain_listener(port), {"host": "127.0.0.1", "port": tls_port,
                                    "tls": {"certificate": "tls/c.pem", "key": "tls/k.pem"}}], threads=1)
        s = self.start_server(config_path=harness.write_file(d, "hydrant.yaml", text), ready_port=port)
        r, p = curl("https://127.0.0.1:%d/plaintext" % tls_port, "--cacert", cert, "--http2")
        self.assertIsNotNone(r, p.stderr)
        self.assertEqual((r.status, r.version, r.body), (200, "2", b"Hello, World!"))
        s.stop()


class IPv6(harness.ServerTestCase):
    def test_ipv6_loopback_listener(self):
        try:
            port = harness.free_port("::1")
        except OSError:
            self.skipTest("no IPv6 loopback here")
        plain4 = harness.free_port()
        s = self.start_server(harness.make_config([harness.plain_listener(plain4), harness.plain_listener(port, "::1")],
                                                  threads=1), ready_port=plain4)
        r = harness.http1_request(port, "GET", "/plaintext", host="::1")
        self.assertEqual((r.status, r.body), (200, b"Hello, World!"))
        r, p = curl("http://[::1]:%d/json" % port, "--http2-prior-knowledge")
        self.assertIsNotNone(r, p.stderr)
        self.assertEqual((r.status, r.version), (200, "2"))
        self.assertIn("listening on [::1]:%d" % port, s.stderr())
        s.stop()


if __name__ == "__main__":
    harness.run_tests()
