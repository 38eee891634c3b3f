"""test_lifecycle.py: the life of `hydrant serve`: start, SIGTERM/SIGINT and a clean exit 0, draining idle HTTP/1.1 and
HTTP/2 connections (GOAWAY), ports in use (exit 1 naming the address), environment overrides that change what is
served, invalid configs (exit 2, nothing listens), and connection limits."""

import http.client
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import H2Client, clean_env, free_port, http1_request, make_config, plain_listener  # noqa: E402


def refused(port, host="127.0.0.1"):
    """True when nothing accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


class Lifecycle(harness.ServerTestCase):
    def serve(self, threads=1, timeouts=None, env=None, limits=None, port=None):
        port = port or free_port()
        s = self.start_server(make_config([plain_listener(port)], threads=threads, timeouts=timeouts, limits=limits),
                              ready_port=int(env["SERVER_PORT"]) if env and "SERVER_PORT" in env else port,
                              env=env)
        return s, port

    # ---- start and stop ----

    def test_sigterm_exits_zero(self):
        s, port = self.serve(threads=2)
        self.assertIn("listening on 127.0.0.1:%d" % port, s.stderr())
        self.assertEqual(http1_request(port, "GET", "/health").status, 200)
        secs = s.stop()
        self.assertLess(secs, 3, "exit took %.1fs" % secs)
        self.assertIn("shutting down", s.stderr())
        self.assertTrue(refused(port), "the port still accepts after exit")

    def test_sigint_exits_zero(self):
        s, port = self.serve()
        s.proc.send_signal(signal.SIGINT)
        self.assertEqual(s.wait_exit(harness.STOP_TIMEOUT), 0, s.describe())
        s.assert_no_sanitizer_report()

    def test_sighup_keeps_serving(self):
        s, port = self.serve()
        s.proc.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        self.assertTrue(s.alive(), s.describe())
        self.assertEqual(http1_request(port, "GET", "/health").status, 200)
        s.stop()

    def test_threads_auto(self):
        port = free_port()
        s = self.start_server(make_config([plain_listener(port)], threads="auto"), ready_port=port)
        self.assertRegex(s.stderr(), r"serving with \d+ threads?")
        s.stop()

    def test_idle_connections_do_not_hold_the_exit_and_h2_gets_goaway(self):
        # shutdown: 10s, so an exit held by idle connections until the deadline would show
        s, port = self.serve(threads=2, timeouts={"shutdown": "10s"})
        self.drain_idle(s, port, max_seconds=3)

    def test_shutdown_2s_with_idle_connections(self):
        s, port = self.serve(threads=2, timeouts={"shutdown": "2s"})
        self.drain_idle(s, port, max_seconds=3)

    def drain_idle(self, s, port, max_seconds):
        h1 = http.client.HTTPConnection("127.0.0.1", port, timeout=harness.CLIENT_TIMEOUT)
        self.addCleanup(h1.close)
        r = http1_request(port, "GET", "/health", conn=h1)
        self.assertEqual(r.status, 200)
        self.assertNotEqual((r.header("connection") or "").lower(), "close")
        h2 = H2Client(port)
        self.addCleanup(h2.close)
        self.assertTrue(h2.wait_settings())
        sid = h2.request("/health")
        self.assertTrue(h2.wait_all([sid]))
        self.assertEqual(h2.response(sid).status, 200)
        # both connections now idle; read the h2 one while the server shuts down
        reader = threading.Thread(target=h2.receive_until, args=(lambda: h2.goaway is not None,), kwargs={"timeout": 8})
        reader.start()
        secs = s.stop()
        reader.join(10)
        self.assertLess(secs, max_seconds, "exit with idle connections took %.1fs" % secs)
        self.assertIsNotNone(h2.goaway, "the HTTP/2 client got no GOAWAY")
        self.assertEqual(h2.goaway.error_code, 0, "GOAWAY error code is not NO_ERROR: %r" % h2.goaway)
        self.assertGreaterEqual(h2.goaway.last_stream_id, sid)
        # the idle HTTP/1.1 connection is closed, not left hanging
        h1.sock.settimeout(3)
        try:
            self.assertEqual(h1.sock.recv(1024), b"")
        except ConnectionResetError:
            pass

    # ---- ports in use ----

    def test_port_in_use_by_a_socket(self):
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        holder.listen(8)
        port = holder.getsockname()[1]
        s = self.start_server(make_config([plain_listener(port)], threads=2))
        self.assertEqual(s.wait_exit(harness.STOP_TIMEOUT), 1, s.describe())
        self.assertIn("hydrant: cannot listen on 127.0.0.1:%d: Address already in use\n" % port, s.stderr())
        s.assert_no_sanitizer_report()

    def test_port_in_use_by_another_hydrant(self):
        first, port = self.serve(threads=2)
        second = self.start_server(make_config([plain_listener(port)], threads=2))
        self.assertEqual(second.wait_exit(harness.STOP_TIMEOUT), 1, second.describe())
        self.assertIn("hydrant: cannot listen on 127.0.0.1:%d: Address already in use\n" % port, second.stderr())
        self.assertNotIn("listening on", second.stderr())
        second.assert_no_sanitizer_report()
        # the first one is unharmed and still serves every request (none went to the failed second)
        for _ in range(20):
            self.assertEqual(http1_request(port, "GET", "/health").status, 200)
        first.stop()

    def test_second_listener_in_use(self):
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        holder.listen(8)
        busy, port = holder.getsockname()[1], free_port()
        s = self.start_server(make_config([plain_listener(port), harness.tls_listener(busy)], threads=1))
        self.assertEqual(s.wait_exit(harness.STOP_TIMEOUT), 1, s.describe())
        self.assertIn("hydrant: cannot listen on 127.0.0.1:%d: Address already in use\n" % busy, s.stderr())
        self.assertTrue(refused(port))

    # ---- configuration ----

    def test_server_port_env_serves_there(self):
        file_port, env_port = free_port(), free_port()
        s = self.start_server(make_config([plain_listener(file_port)]), ready_port=env_port,
                              env=clean_env(SERVER_PORT=env_port))
        self.assertEqual(http1_request(env_port, "GET", "/plaintext").body, b"Hello, World!")
        self.assertTrue(refused(file_port), "the file's port is served although SERVER_PORT overrides it")
        self.assertIn("listening on 127.0.0.1:%d" % env_port, s.stderr())
        s.stop()

    def test_idle_timeout_env_closes_idle_h2(self):
        port = free_port()
        s = self.start_server(make_config([plain_listener(port)], timeouts={"idle": "60s"}), ready_port=port,
                              env=clean_env(SERVER_IDLE_TIMEOUT="1s"))
        c = H2Client(port)
        self.addCleanup(c.close)
        self.assertTrue(c.wait_settings())
        t0 = time.monotonic()
        c.receive_until(lambda: c.goaway is not None, timeout=5)
        self.assertTrue(c.goaway is not None or c.closed, "idle HTTP/2 connection still open after 5s")
        self.assertLess(time.monotonic() - t0, 4)
        s.stop()

    def test_read_timeout_env_closes_idle_http1(self):
        port = free_port()
        s = self.start_server(make_config([plain_listener(port)], timeouts={"read": "60s"}), ready_port=port,
                              env=clean_env(SERVER_READ_TIMEOUT="1s"))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never finish
            t0 = time.monotonic()
            data = b""
            try:
                while True:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except socket.timeout:
                self.fail("a request whose headers never finish was not timed out within 5s")
            except ConnectionResetError:
                pass
            self.assertLess(time.monotonic() - t0, 4)
        s.stop()

    def test_invalid_config_exits_2_without_listening(self):
        port = free_port()
        text = make_config([plain_listener(port)], routes="routes:\n  - path: /health\n    handler: nosuch\n")
        s = self.start_server(text)
        self.assertEqual(s.wait_exit(harness.STOP_TIMEOUT), 2, s.describe())
        err = s.stderr()
        self.assertRegex(err, r"hydrant\.yaml:\d+:\d+: routes\[0\]\.handler: .*nosuch")
        self.assertRegex(err, r"hydrant: 1 error in .*hydrant\.yaml")
        self.assertNotIn("listening", err)
        self.assertTrue(refused(port))

    def test_missing_certificate_fails_without_listening(self):
        # TLS files are checked when the config loads: exit 2 before anything listens
        port, tls_port = free_port(), free_port()
        d = harness.make_tempdir()
        missing = os.path.join(d, "missing-cert.pem")
        _, key = harness.tls_cert()
        text = make_config([plain_listener(port), {"host": "127.0.0.1", "port": tls_port,
                                                   "tls": {"certificate": missing, "key": key}}])
        s = self.start_server(text)
        self.assertEqual(s.wait_exit(harness.STOP_TIMEOUT), 2, s.describe())
        self.assertRegex(s.stderr(), r'hydrant\.yaml:\d+:\d+: server\.listen\[1\]\.tls\.certificate: cannot read "%s": '
                                     r'No such file or directory\n' % re.escape(missing))
        self.assertNotIn("listening", s.stderr())
        self.assertTrue(refused(port))

    # ---- limits ----

    def test_max_connections(self):
        s, port = self.serve(threads=1, limits={"max_connections": 1})
        a = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        self.addCleanup(a.close)
        self.assertEqual(http1_request(port, "GET", "/health", conn=a).status, 200)
        b = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(b.close)
        b.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        b.settimeout(1.0)
        try:
            early = b.recv(4096)
        except socket.timeout:
            early = None
        self.assertIsNone(early, "a second connection was served while max_connections: 1 was in use: %r" % early)
        a.close()
        b.settimeout(5)
        data = b""
        try:
            while True:
                chunk = b.recv(4096)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), "the waiting connection was not served after the first "
                                                          "closed: %r" % data)
        s.stop()


if __name__ == "__main__":
    harness.run_tests()
