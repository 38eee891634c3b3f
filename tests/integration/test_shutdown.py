"""test_shutdown.py: graceful shutdown. SIGTERM (or SIGINT) makes /ready answer 503 at once while every other route
keeps answering for server.drain_delay; then the listeners close, requests in flight finish (up to
server.timeouts.shutdown) and the process exits 0. A second SIGTERM exits at once with status 1.

The load runs are h2load over h2c and over HTTP/1.1: requests h2load got an answer for must all be 2xx (requests that
were never accepted, after the listener closed, fail on the connection and are not counted as answers).

Requests in flight are held without a database by HTTP/2 flow control: a raw h2c client (RawH2) asks for a large static
body and does not open its window, so the server keeps the response pending until the client reads on. With
HYDRANT_TEST_DATABASE_URL, one more test holds a table lock so a users GET waits in the database."""

import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import free_port, http1_request, make_config, plain_listener, q  # noqa: E402

DRAIN = 1.0  # seconds: server.drain_delay of the load tests
EXIT_MARGIN = 1.0  # seconds after drain_delay within which the process must have exited (nothing holds it)
BIG = "".join("%07d\n" % i for i in range(125000))  # 1 MB: far beyond the 64 KiB HTTP/2 initial window


def config(port, drain_delay="1s", shutdown="5s", threads=2, big=False):
    r = """\
routes:
  - {path: /health, handler: health}
  - {path: /ready, handler: ready}
  - {path: /metrics, handler: metrics}
  - {path: /status, handler: status}
  - path: /s
    static: {body: "ok"}
"""
    if big:
        r += "  - path: /big\n    static: {body: %s}\n" % q(BIG)
    text = make_config([plain_listener(port)], threads=threads, timeouts={"shutdown": shutdown}, routes=r)
    return text.replace("server:\n", "server:\n  drain_delay: %s\n" % drain_delay, 1)


def status(port, path, timeout=2.0):
    """The status of GET path on a fresh HTTP/1.1 connection, or None when the connection fails."""
    try:
        return http1_request(port, "GET", path, timeout=timeout).status
    except (OSError, http.client.HTTPException):
        return None


def refused(port):
    """True when nothing listens on the port. A connection reset while connecting (the listener closed under it)
    is neither answer: False, so that wait_for tries again."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False


def wait_for(pred, timeout, interval=0.01):
    """Polls pred() until true; returns the seconds it took, or None on timeout."""
    t0 = time.monotonic()
    while True:
        if pred():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(interval)


def log_messages(server):
    return [json.loads(l)["msg"] for l in server.stderr().splitlines() if l.startswith("{")]


H2LOAD_REQUESTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                             r"(\d+) errored, (\d+) timeout")
H2LOAD_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


def h2load_summary(text):
    m, s = H2LOAD_REQUESTS.search(text), H2LOAD_STATUS.search(text)
    if not m or not s:
        raise AssertionError("no h2load summary in:\n" + text[-3000:])
    out = dict(zip(("total", "started", "done", "succeeded", "failed", "errored", "timeout"), map(int, m.groups())))
    out.update(zip(("2xx", "3xx", "4xx", "5xx"), map(int, s.groups())))
    return out


# ---- a raw h2c client that controls its flow-control window ----------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


class RawH2:
    """h2c with prior knowledge, frame by frame. The client opens the window only when told to (window=True), so a
    response stays in flight as long as the test wants; and it reads a stream to its end after GOAWAY (python3-h2
    refuses every frame after a GOAWAY)."""

    def __init__(self, port):
        import hpack

        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=harness.CLIENT_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.enc, self.dec = hpack.Encoder(), hpack.Decoder()
        self.buf = b""
        self.status, self.body, self.ended, self.reset = {}, {}, set(), {}
        self.unacked = {}  # stream -> DATA bytes received and not yet given back by WINDOW_UPDATE
        self.goaways = []  # (last stream id, error code) of each GOAWAY
        self.eof = False
        self.send_failed = False
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def request(self, sid, path):
        block = self.enc.encode([(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1:%d" % self.port),
                                 (":path", path)])
        self.body[sid] = bytearray()
        self.unacked[sid] = 0
        self.sock.sendall(frame(HEADERS, END_STREAM | END_HEADERS, sid, block))

    def _frame(self, deadline):
        while True:
            if len(self.buf) >= 9:
                n = struct.unpack(">I", b"\0" + self.buf[:3])[0]
                if len(self.buf) >= 9 + n:
                    ftype, flags = self.buf[3], self.buf[4]
                    sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
                    payload, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
                    return ftype, flags, sid, payload
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(min(left, 0.5))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                return None
            self.buf += chunk

    def send(self, data):
        """Sends, ignoring a connection the server closed already (what it sent before is still read)."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.send_failed = True

    def give_back(self):
        """Opens the windows by what was read so far (stream and connection)."""
        total = 0
        for sid, n in self.unacked.items():
            if n and sid not in self.ended:
                self.send(frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", n)))
            total += n
            self.unacked[sid] = 0
        if total:
            self.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", total)))

    def pump(self, until, window=False, timeout=harness.CLIENT_TIMEOUT):
        """Handles frames until until() is true, EOF or the timeout; with window, gives back every DATA frame's
        bytes at once. Returns until()."""
        deadline = time.monotonic() + timeout
        while not until() and not self.eof:
            f = self._frame(deadline)
            if f is None:
                break
            ftype, flags, sid, payload = f
            if ftype == SETTINGS and not flags & ACK:
                self.send(frame(SETTINGS, ACK, 0))
            elif ftype == PING and not flags & ACK:
                self.send(frame(PING, ACK, 0, payload))
            elif ftype == HEADERS:
                if flags & PADDED:
                    payload = payload[1:len(payload) - payload[0]]
                if flags & PRIORITY:
                    payload = payload[5:]
                headers = dict((k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v)
                               for k, v in self.dec.decode(payload))
                if ":status" in headers:
                    self.status[sid] = int(headers[":status"])
            elif ftype == DATA:
                data = payload[1:len(payload) - payload[0]] if flags & PADDED else payload
                self.body.setdefault(sid, bytearray()).extend(data)
                self.unacked[sid] = self.unacked.get(sid, 0) + len(payload)
                if window:
                    self.give_back()
            elif ftype == RST_STREAM:
                self.reset[sid] = struct.unpack(">I", payload[:4])[0]
                self.ended.add(sid)
            elif ftype == GOAWAY:
                last, code = struct.unpack(">II", payload[:8])
                self.goaways.append((last & 0x7FFFFFFF, code))
            if ftype in (DATA, HEADERS) and flags & END_STREAM:
                self.ended.add(sid)
        return until()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class H2Load:
    """h2load in the background for `seconds` (-D), its output in a file."""

    def __init__(self, workdir, url, h1=False, seconds=3, clients=8, streams=8):
        self.out_path = os.path.join(workdir, "h2load-%s.out" % ("h1" if h1 else "h2c"))
        cmd = ["h2load", "-c", str(clients), "-m", str(streams), "-D", str(seconds)] + (["--h1"] if h1 else []) + [url]
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.seconds = seconds

    def finish(self):
        try:
            self.proc.wait(timeout=self.seconds + 20)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("h2load did not finish")
        with open(self.out_path) as f:
            return f.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


# ---- the tests -------------------------------------------------------------------------------------------------------


class GracefulShutdown(harness.ServerTestCase):
    def serve(self, **kw):
        port = free_port()
        s = self.start_server(config(port, **kw), ready_port=port)
        return s, port

    def hold_big_response(self, port):
        """A RawH2 connection with GET /big in flight: some of the body read, the window closed."""
        c = RawH2(port)
        self.addCleanup(c.close)
        c.request(1, "/big")
        self.assertTrue(c.pump(lambda: len(c.body[1]) > 0), "no DATA for /big")
        self.assertEqual(c.status.get(1), 200)
        # whatever fits the initial window arrives; then the server waits for WINDOW_UPDATE
        c.pump(lambda: False, timeout=0.3)
        self.assertLess(len(c.body[1]), len(BIG), "the whole body arrived: nothing is in flight")
        return c

    def drain_timeline(self, s, port, t0, drain=DRAIN):
        """From the signal at t0: /ready 503 at once; /s and /health 200 on new connections during the delay; the
        listener closed after it; exit 0 soon after. Returns the exit time (seconds after t0)."""
        took = wait_for(lambda: status(port, "/ready") == 503, 2, interval=0.005)
        self.assertIsNotNone(took, "/ready never answered 503 after the signal\n" + s.describe())
        self.assertLess(time.monotonic() - t0, 0.3, "/ready took %.3fs to answer 503" % (time.monotonic() - t0))
        samples = []
        while time.monotonic() - t0 < drain - 0.25:
            samples.append((status(port, "/s"), status(port, "/health"), status(port, "/ready")))
            time.sleep(0.05)
        self.assertGreaterEqual(len(samples), 3, samples)
        self.assertEqual(set(samples), {(200, 200, 503)}, "answers during drain_delay: %r" % samples)
        rc = s.wait_exit(drain + EXIT_MARGIN + 5)
        exit_at = time.monotonic() - t0
        self.assertTrue(refused(port), "the port still accepts after the drain delay")
        self.assertEqual(rc, 0, s.describe())
        self.assertGreaterEqual(exit_at, drain - 0.05, "exited before drain_delay")
        self.assertLess(exit_at, drain + EXIT_MARGIN, "exit took %.2fs after the signal\n%s" % (exit_at, s.describe()))
        s.assert_no_sanitizer_report()
        msgs = log_messages(s)
        self.assertIn("termination signal: not ready; serving for drain_delay %dms, then draining" % (drain * 1000),
                      msgs)
        self.assertIn("stopped", msgs)
        return exit_at

    def sigterm_under_load(self, h1, sig=signal.SIGTERM):
        s, port = self.serve(drain_delay="1s", shutdown="5s")
        load = H2Load(self.tmp, "http://127.0.0.1:%d/s" % port, h1=h1, seconds=3)
        self.addCleanup(load.kill)
        time.sleep(0.6)
        self.assertIsNone(load.proc.poll(), "h2load ended early")
        t0 = time.monotonic()
        s.proc.send_signal(sig)
        self.drain_timeline(s, port, t0)
        self.assertIn("shutting down: draining connections (up to 5000ms)", log_messages(s))
        summary = h2load_summary(load.finish())
        self.assertGreater(summary["succeeded"], 100, summary)
        self.assertEqual((summary["3xx"], summary["4xx"], summary["5xx"]), (0, 0, 0),
                         "h2load got non-2xx answers: %r" % summary)
        self.assertEqual(summary["2xx"], summary["succeeded"], summary)
        self.assertEqual(summary["done"], summary["succeeded"] + summary["failed"], summary)

    def test_sigterm_under_h2c_load(self):
        self.sigterm_under_load(h1=False)

    def test_sigterm_under_http1_load(self):
        self.sigterm_under_load(h1=True)

    def test_sigint_behaves_like_sigterm(self):
        s, port = self.serve(drain_delay="1s", shutdown="5s")
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGINT)
        self.drain_timeline(s, port, t0)

    def test_second_sigterm_during_the_delay_exits_at_once(self):
        s, port = self.serve(drain_delay="3s", shutdown="5s")
        s.proc.send_signal(signal.SIGTERM)
        self.assertIsNotNone(wait_for(lambda: status(port, "/ready") == 503, 2), s.describe())
        self.assertEqual(status(port, "/s"), 200)
        t1 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        rc = s.wait_exit(3)
        took = time.monotonic() - t1
        self.assertEqual(rc, 1, s.describe())
        self.assertLess(took, 0.2, "the second SIGTERM took %.3fs to end the process" % took)
        self.assertIn("second termination signal: exiting now", log_messages(s))
        s.assert_no_sanitizer_report()

    def test_second_sigterm_during_the_drain_exits_at_once(self):
        """After drain_delay the listeners are closed and the process waits for requests in flight: a second SIGTERM
        there must end it at once too (docs/kubernetes.md: "A second SIGTERM exits at once")."""
        s, port = self.serve(drain_delay="0s", shutdown="5s", threads=1, big=True)
        c = self.hold_big_response(port)
        s.proc.send_signal(signal.SIGTERM)
        self.assertIsNotNone(wait_for(lambda: refused(port), 2), "the listener did not close")
        self.assertTrue(s.alive(), "exited with a response in flight\n" + s.describe())
        t1 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        rc = s.wait_exit(6)
        took = time.monotonic() - t1
        c.close()
        self.assertEqual((rc, took < 0.5), (1, True),
                         "a second SIGTERM during the drain: exit %s after %.2fs (expected 1 at once; the drain's "
                         "deadline is 5s)\n%s" % (rc, took, s.describe()))

    def test_response_in_flight_completes(self):
        s, port = self.serve(drain_delay="500ms", shutdown="5s", threads=1, big=True)
        c = self.hold_big_response(port)
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        # not ready at once, then the listener closes while the response is still in flight
        self.assertIsNotNone(wait_for(lambda: status(port, "/ready") == 503, 1), s.describe())
        self.assertIsNotNone(wait_for(lambda: refused(port), 2), "the listener did not close")
        self.assertGreaterEqual(time.monotonic() - t0, 0.45, "the listener closed before drain_delay")
        self.assertTrue(s.alive(), "exited with a response in flight\n" + s.describe())
        # the connection got GOAWAY, which lets stream 1 finish
        self.assertTrue(c.pump(lambda: c.goaways != [], timeout=3), "no GOAWAY on the open connection")
        self.assertEqual(c.goaways[0][1], 0, "GOAWAY error code %r" % (c.goaways,))
        time.sleep(0.5)
        self.assertTrue(s.alive(), "exited with a response in flight\n" + s.describe())
        # read on: the whole body arrives, then the process exits 0
        c.give_back()
        self.assertTrue(c.pump(lambda: 1 in c.ended, window=True), "the in-flight response did not complete")
        done = time.monotonic()
        self.assertNotIn(1, c.reset, "stream 1 was reset: %r" % c.reset)
        self.assertEqual(len(c.body[1]), len(BIG))
        self.assertTrue(bytes(c.body[1]) == BIG.encode(), "the body differs")
        self.assertTrue(all(last >= 1 for last, _ in c.goaways), c.goaways)
        rc = s.wait_exit(5)
        self.assertEqual(rc, 0, s.describe())
        self.assertLess(time.monotonic() - done, 1.0, "the exit waited after the last response")
        s.assert_no_sanitizer_report()

    def test_shutdown_timeout_ends_a_stuck_response(self):
        s, port = self.serve(drain_delay="0s", shutdown="1s", threads=1, big=True)
        self.hold_big_response(port)
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        rc = s.wait_exit(6)
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, s.describe())
        self.assertGreaterEqual(took, 0.95, "exited before timeouts.shutdown with a response in flight")
        self.assertLess(took, 1.0 + EXIT_MARGIN, "exit took %.2fs with timeouts.shutdown 1s" % took)
        s.assert_no_sanitizer_report()

    def test_shutdown_zero_does_not_wait(self):
        s, port = self.serve(drain_delay="0s", shutdown="0s", threads=1, big=True)
        self.hold_big_response(port)
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        rc = s.wait_exit(6)
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, s.describe())
        self.assertLess(took, 1.0, "timeouts.shutdown 0 (do not wait) took %.2fs with a response in flight" % took)
        self.assertIn("shutting down: draining connections (up to 0ms)", log_messages(s))
        s.assert_no_sanitizer_report()

    def test_drain_delay_is_reloaded(self):
        port = free_port()
        path = os.path.join(self.tmp, "hydrant.yaml")
        harness.write_file(self.tmp, "hydrant.yaml", config(port, drain_delay="5s"))
        s = self.start_server(config_path=path, ready_port=port)
        time.sleep(0.3)  # the config directory is watched a moment after the server answers
        # an editor's save: write a new file, rename it over the old one
        harness.write_file(self.tmp, "hydrant.yaml.new", config(port, drain_delay="1s"))
        os.rename(path + ".new", path)
        self.assertIsNotNone(wait_for(lambda: any(m.startswith("configuration reloaded") for m in log_messages(s)), 5),
                             s.describe())
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        self.drain_timeline(s, port, t0, drain=1.0)


@unittest.skipUnless(os.environ.get("HYDRANT_TEST_DATABASE_URL"),
                     "HYDRANT_TEST_DATABASE_URL is not set: no database request to hold in flight")
class InFlightDatabaseRequest(harness.ServerTestCase):
    def test_users_get_waiting_on_a_lock_completes(self):
        import dbharness
        db = dbharness.prepare_database("shutdown", seed_users=3)
        self.addCleanup(db.drop)
        uid = db.sql("SELECT min(id) FROM users")
        port = free_port()
        # one thread, whose database connection is made (and its statements prepared) before the lock: preparing
        # on a new connection would wait for the lock too, and acquire_timeout would answer 503
        text = dbharness.db_config(port, threads=1, timeouts={"shutdown": "5s"}, pool={"acquire_timeout": "10s"})
        text = text.replace("server:\n", "server:\n  drain_delay: 0s\n", 1)
        s = self.start_server(text, ready_port=port, env=harness.clean_env(DATABASE_URL=db.url))
        self.assertTrue(dbharness.wait_pool_ready(port), s.describe())
        self.assertEqual(http1_request(port, "GET", "/api/v1/users/%s" % uid).status, 200)

        lock = dbharness.PsqlSession(db.url)
        self.addCleanup(lock.close)
        lock.query("BEGIN")
        lock.query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        result = {}

        def slow():
            try:
                result["r"] = http1_request(port, "GET", "/api/v1/users/%s" % uid, timeout=20)
            except Exception as e:  # reported below
                result["e"] = e
        t = threading.Thread(target=slow)
        t.start()
        waiting = ("SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND application_name = 'hydrant' "
                   "AND wait_event_type = 'Lock'" % db.name)
        self.assertTrue(dbharness.wait_until(lambda: dbharness.psql(waiting) != "0", 10), "the GET never waited")
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        self.assertIsNotNone(wait_for(lambda: refused(port), 2), "the listener did not close\n" + s.describe())
        time.sleep(max(0.0, t0 + 1.0 - time.monotonic()))
        self.assertTrue(s.alive(), "exited with a request in flight\n" + s.describe())
        lock.query("COMMIT")
        released = time.monotonic()
        t.join(20)
        self.assertNotIn("e", result, result.get("e"))
        self.assertEqual(result["r"].status, 200, result["r"])
        self.assertEqual(str(result["r"].json()["id"]), uid)
        rc = s.wait_exit(6)
        self.assertEqual(rc, 0, s.describe())
        self.assertLess(time.monotonic() - released, 1.5, "the exit waited long after the request finished")
        s.assert_no_sanitizer_report()
        # answered while draining, so the HTTP/1.1 connection must not be offered for reuse (docs/configuration.md,
        # server.drain_delay: "... sends HTTP/2 GOAWAY and `Connection: close`")
        self.assertEqual((result["r"].header("connection") or "").lower(), "close",
                         "a response sent during the drain says connection: %s" % result["r"].header("connection"))


if __name__ == "__main__":
    harness.run_tests()
