"""test_reload.py: live configuration reload from a mounted ConfigMap, SIGHUP, restart-only settings, TLS certificate
rotation from a Secret-like directory, and requests in flight across a reload.

A ConfigMap or Secret volume is updated by the kubelet's AtomicWriter: the files are written into a fresh
`..<timestamp>` directory, a `..data_tmp` symlink to it is renamed over `..data`, and the old directory is removed. The
visible names (`hydrant.yaml`, `tls.crt`) are symlinks `name -> ..data/name` that never change. AtomicDir below does
exactly that, and hydrant serves `-c DIR/hydrant.yaml`.

The swaps happen while h2load loads the server (h2c, then HTTP/1.1); h2load must then report no failed or errored
request, and every answer 2xx.

Environment: HYDRANT_BIN (the binary under test); HYDRANT_TEST_DATABASE_URL for the one test that holds a database
lock across a reload (skipped with a message without it)."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import H2Client, free_port, http1_request, make_config, plain_listener, q, run  # noqa: E402

PROPAGATION = 1.0  # seconds: a swap must be served within this
# hydrant answers requests a moment before it watches the directory and takes the file's fingerprint; a swap in that
# window is lost (test_a_swap_during_start_up_is_not_lost). The other tests wait this long after start-up so that they
# test what they are about.
SETTLE = 0.3


# ---- a kubelet-style atomically updated directory --------------------------------------------------------------------


class AtomicDir:
    """A directory updated the way the kubelet updates a ConfigMap or Secret volume (pkg/volume/util/atomic_writer.go):
    DIR/..<timestamp>/<files>, DIR/..data -> ..<timestamp>, DIR/<name> -> ..data/<name>."""

    def __init__(self, path, files):
        os.makedirs(path)
        self.path = path
        self.n = 0
        self.current = None
        self.update(files)

    def file(self, name):
        return os.path.join(self.path, name)

    def update(self, files):
        """Publishes a new version of every file; returns time.monotonic() right after the swap (the rename)."""
        self.n += 1
        ts = "..2026_11_27_10_00_00.%09d" % self.n
        tsdir = os.path.join(self.path, ts)
        os.mkdir(tsdir)
        for name, content in files.items():
            with open(os.path.join(tsdir, name), "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
        tmp = os.path.join(self.path, "..data_tmp")
        os.symlink(ts, tmp)
        os.rename(tmp, os.path.join(self.path, "..data"))
        swapped = time.monotonic()
        for name in files:
            link = os.path.join(self.path, name)
            if not os.path.lexists(link):
                os.symlink(os.path.join("..data", name), link)
        if self.current is not None:
            shutil.rmtree(os.path.join(self.path, self.current))
        self.current = ts
        return swapped

    def edit_in_place(self, name, content):
        """Rewrites a file inside the current ..<timestamp> directory: no event in DIR itself (the kubelet never does
        this; it is how a test changes the file without inotify noticing)."""
        with open(os.path.join(self.path, self.current, name), "w") as f:
            f.write(content)


# ---- configs ---------------------------------------------------------------------------------------------------------


def routes(body="v1", new_route=False, extra=""):
    out = """\
routes:
  - {path: /health, handler: health}
  - {path: /ready, handler: ready}
  - {path: /metrics, handler: metrics}
  - {path: /status, handler: status}
  - path: /s
    static: {body: %s}
""" % q(body)
    if new_route:
        out += "  - path: /new\n    static: {status: 201, body: \"added by a reload\"}\n"
    return out + extra


def cm_config(port, body="v1", new_route=False, threads=2, bad_key=False, timeouts=None, listen_port=None):
    """A config for the ConfigMap tests. With bad_key, line 2 column 3 holds the unknown key `threadz`."""
    text = make_config([plain_listener(listen_port or port)], threads=threads, timeouts=timeouts,
                       routes=routes(body, new_route))
    if bad_key:
        assert text.startswith("server:\n")
        text = "server:\n  threadz: 2\n" + text[len("server:\n"):]
    return text


# ---- clients ---------------------------------------------------------------------------------------------------------


def get(port, path, timeout=2.0):
    """GET over a fresh HTTP/1.1 connection; None when the connection fails."""
    try:
        return http1_request(port, "GET", path, timeout=timeout)
    except (OSError, http.client.HTTPException):
        return None


def metrics(port):
    """The samples of GET /metrics as {name{labels}: float}."""
    r = http1_request(port, "GET", "/metrics")
    assert r.status == 200, r
    out = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


RELOAD_OK = 'hydrant_config_reloads_total{result="success"}'
RELOAD_FAILED = 'hydrant_config_reloads_total{result="failure"}'
RELOAD_TS = "hydrant_config_last_reload_success_timestamp_seconds"


def wait_for(pred, timeout, interval=0.02):
    """Polls pred() until true; returns the seconds it took, or None on timeout."""
    t0 = time.monotonic()
    while True:
        if pred():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(interval)


def log_lines(server):
    """The server's stderr as parsed JSON log lines (lines that are not JSON fail the test that reads them)."""
    out = []
    for line in server.stderr().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


H2LOAD_REQUESTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                             r"(\d+) errored, (\d+) timeout")
H2LOAD_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


def h2load_summary(text):
    m, s = H2LOAD_REQUESTS.search(text), H2LOAD_STATUS.search(text)
    if not m or not s:
        raise AssertionError("no h2load summary in:\n" + text[-3000:])
    keys = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
    out = dict(zip(keys, map(int, m.groups())))
    out.update(zip(("2xx", "3xx", "4xx", "5xx"), map(int, s.groups())))
    return out


class H2Load:
    """h2load in the background for `seconds` (-D), output in a file."""

    def __init__(self, workdir, url, h1=False, seconds=4, clients=8, streams=8):
        self.out_path = os.path.join(workdir, "h2load-%s.out" % ("h1" if h1 else "h2c"))
        cmd = ["h2load", "-c", str(clients), "-m", str(streams), "-D", str(seconds)] + (["--h1"] if h1 else []) + [url]
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        self.seconds = seconds

    def finish(self):
        try:
            self.proc.wait(timeout=self.seconds + 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("h2load did not finish")
        with open(self.out_path) as f:
            return f.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


# ---- the tests -------------------------------------------------------------------------------------------------------


class ConfigMapReload(harness.ServerTestCase):
    def serve_configmap(self, text_fn, threads=2, **kw):
        """An AtomicDir with hydrant.yaml = text_fn(port), and hydrant serving -c DIR/hydrant.yaml."""
        port = free_port()
        cm = AtomicDir(os.path.join(self.tmp, "hydrant-config"), {"hydrant.yaml": text_fn(port)})
        s = self.start_server(config_path=cm.file("hydrant.yaml"), ready_port=port, **kw)
        time.sleep(SETTLE)
        return s, cm, port

    def assert_body(self, port, path, body):
        r = get(port, path)
        self.assertIsNotNone(r, "GET %s failed" % path)
        self.assertEqual((r.status, r.body), (200, body.encode()))

    def swaps_under_load(self, h1):
        s, cm, port = self.serve_configmap(lambda p: cm_config(p, body="v1"))
        boot = metrics(port)
        self.assertEqual((boot[RELOAD_OK], boot[RELOAD_FAILED]), (0, 0))
        load = H2Load(self.tmp, "http://127.0.0.1:%d/s" % port, h1=h1, seconds=4)
        self.addCleanup(load.kill)
        time.sleep(0.5)
        # the reload timestamp has a one-second resolution: make sure the next load happens in a later second
        time.sleep(max(0.0, boot[RELOAD_TS] + 1.05 - time.time()))

        # 1. a valid swap: a new static body and a new route, served within PROPAGATION
        swapped = cm.update({"hydrant.yaml": cm_config(port, body="v2", new_route=True)})

        def v2_served():
            a, b = get(port, "/s"), get(port, "/new")
            return a is not None and a.body == b"v2" and b is not None and b.status == 201

        took = wait_for(v2_served, 5)
        self.assertIsNotNone(took, "the swapped config is not served after 5s\n" + s.describe())
        took = time.monotonic() - swapped
        self.assertLess(took, PROPAGATION, "the new config took %.2fs to be served" % took)
        m = metrics(port)
        self.assertEqual((m[RELOAD_OK], m[RELOAD_FAILED]), (1, 0))
        self.assertGreater(m[RELOAD_TS], boot[RELOAD_TS], "the last-success timestamp did not move")

        # 2. an invalid swap (unknown key): rejected, logged with file:line:col, counted; the old config keeps serving
        cm.update({"hydrant.yaml": cm_config(port, body="v-bad", bad_key=True)})
        took = wait_for(lambda: metrics(port)[RELOAD_FAILED] == 1, 5)
        self.assertIsNotNone(took, "the invalid config was not counted as a failed reload\n" + s.describe())
        m2 = metrics(port)
        self.assertEqual((m2[RELOAD_OK], m2[RELOAD_FAILED]), (1, 1))
        self.assertEqual(m2[RELOAD_TS], m[RELOAD_TS], "a failed reload moved the last-success timestamp")
        self.assert_body(port, "/s", "v2")
        self.assertEqual(get(port, "/new").status, 201)
        errors = [l for l in log_lines(s) if l.get("level") == "error"]
        want = "%s:2:3: server.threadz: unknown key" % cm.file("hydrant.yaml")
        self.assertTrue(any("reload rejected" in l["msg"] and want in l["msg"] for l in errors),
                        "no JSON error line with %r:\n%s" % (want, s.stderr()[-3000:]))

        # 3. a valid swap again: applied, counted, the timestamp moves again
        time.sleep(max(0.0, m[RELOAD_TS] + 1.05 - time.time()))
        swapped = cm.update({"hydrant.yaml": cm_config(port, body="v3")})
        self.assertIsNotNone(wait_for(lambda: getattr(get(port, "/s"), "body", None) == b"v3", 5), s.describe())
        took = time.monotonic() - swapped
        self.assertLess(took, PROPAGATION, "the new config took %.2fs to be served" % took)
        self.assertEqual(get(port, "/new").status, 404, "a route removed by the reload still answers")
        m3 = metrics(port)
        self.assertEqual((m3[RELOAD_OK], m3[RELOAD_FAILED]), (2, 1))
        self.assertGreater(m3[RELOAD_TS], m[RELOAD_TS])
        self.assertIn('"generation":3', http1_request(port, "GET", "/status").body.decode().replace(" ", ""))

        summary = h2load_summary(load.finish())
        self.assertGreater(summary["succeeded"], 100, summary)
        self.assertEqual((summary["failed"], summary["errored"], summary["timeout"]), (0, 0, 0),
                         "h2load requests failed across the reloads: %r" % summary)
        self.assertEqual((summary["3xx"], summary["4xx"], summary["5xx"]), (0, 0, 0), summary)
        self.assertEqual(summary["2xx"], summary["succeeded"], summary)
        self.assertEqual(summary["done"], summary["succeeded"], summary)
        self.assertTrue(s.alive(), s.describe())
        s.stop()

    def test_configmap_swaps_under_h2c_load(self):
        self.swaps_under_load(h1=False)

    def test_configmap_swaps_under_http1_load(self):
        self.swaps_under_load(h1=True)

    def test_a_swap_during_start_up_is_not_lost(self):
        """A ConfigMap swap between the moment `serve` reads its config and the moment it watches the directory (a
        ConfigMap edited while the pod starts) must still be applied, at the latest on the kubelet's next sync.

        The window is held open deterministically: access_log.path is a FIFO, whose open(2) blocks until a reader
        comes, and `serve` opens it after loading the config and before it watches the directory."""
        port = free_port()
        fifo = os.path.join(self.tmp, "access.fifo")
        os.mkfifo(fifo)

        def text(body):
            return cm_config(port, body=body).replace("routes:\n", "access_log: {path: %s}\nroutes:\n" % q(fifo), 1)

        cm = AtomicDir(os.path.join(self.tmp, "hydrant-config"), {"hydrant.yaml": text("v1")})
        s = self.start_server(config_path=cm.file("hydrant.yaml"))

        def blocked_on_fifo():
            try:
                with open("/proc/%d/wchan" % s.proc.pid) as f:
                    return f.read().strip() == "wait_for_partner"
            except OSError:
                return False
        if wait_for(blocked_on_fifo, 5) is None:
            self.skipTest("cannot see `serve` blocked opening the FIFO (/proc/PID/wchan)\n" + s.describe())
        cm.update({"hydrant.yaml": text("v2")})  # the config loaded says v1; the file now says v2

        def drain_fifo():
            with open(fifo, "rb") as f:
                while f.read(65536):
                    pass
        reader = threading.Thread(target=drain_fifo, daemon=True)
        reader.start()
        s.wait_ready(port)
        time.sleep(SETTLE)
        if getattr(get(port, "/s"), "body", None) != b"v2":
            # the kubelet syncs again with the same content: that event must be enough
            cm.update({"hydrant.yaml": text("v2")})
            took = wait_for(lambda: getattr(get(port, "/s"), "body", None) == b"v2", 2)
            self.assertIsNotNone(took, "the config file says body v2 but the server serves %r, also after another "
                                       "(identical) swap: the change made during start-up is lost until the next "
                                       "different change or SIGHUP\n%s" % (get(port, "/s").body, s.describe()))
        s.stop()
        reader.join(5)

    def test_sighup_reloads_and_an_unchanged_file_does_not(self):
        s, cm, port = self.serve_configmap(lambda p: cm_config(p, body="v1"))
        # a swap whose content is the same (the kubelet does this when another key of the ConfigMap changes), and an
        # unrelated file appearing in the directory: events, but the file did not change, so no reload
        cm.update({"hydrant.yaml": cm_config(port, body="v1")})
        with open(os.path.join(cm.path, "unrelated"), "w") as f:
            f.write("x")
        time.sleep(0.6)
        m = metrics(port)
        self.assertEqual((m[RELOAD_OK], m[RELOAD_FAILED]), (0, 0), "an unchanged file was reloaded")
        self.assertNotIn("configuration reloaded", s.stderr())

        # a change inside the ..<timestamp> directory makes no event in the watched directory: SIGHUP applies it
        cm.edit_in_place("hydrant.yaml", cm_config(port, body="v2"))
        time.sleep(0.4)
        self.assert_body(port, "/s", "v1")
        sent = time.monotonic()
        s.proc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(wait_for(lambda: getattr(get(port, "/s"), "body", None) == b"v2", 5), s.describe())
        self.assertLess(time.monotonic() - sent, PROPAGATION)
        self.assertEqual(metrics(port)[RELOAD_OK], 1)
        lines = log_lines(s)
        self.assertTrue(any(l["level"] == "info" and "SIGHUP" in l["msg"] for l in lines), s.stderr())
        self.assertTrue(any(l["level"] == "info" and l["msg"].startswith("configuration reloaded from %s"
                                                                         % cm.file("hydrant.yaml")) for l in lines),
                        s.stderr())

        # SIGHUP with an invalid file: rejected and counted, the old config serves
        cm.edit_in_place("hydrant.yaml", cm_config(port, body="v3", bad_key=True))
        s.proc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(wait_for(lambda: metrics(port)[RELOAD_FAILED] == 1, 5), s.describe())
        self.assert_body(port, "/s", "v2")
        # the invalid file fixed and swapped in the kubelet's way
        cm.update({"hydrant.yaml": cm_config(port, body="v4")})
        self.assertIsNotNone(wait_for(lambda: getattr(get(port, "/s"), "body", None) == b"v4", 5), s.describe())
        m = metrics(port)
        self.assertEqual((m[RELOAD_OK], m[RELOAD_FAILED]), (2, 1))
        # the same file again, by inotify: no reload
        cm.update({"hydrant.yaml": cm_config(port, body="v4")})
        time.sleep(0.6)
        self.assertEqual(metrics(port)[RELOAD_OK], 2)
        s.stop()

    def test_restart_only_settings_warn_and_the_old_listener_keeps_serving(self):
        s, cm, port = self.serve_configmap(lambda p: cm_config(p, body="v1", threads=2))
        other = free_port()
        cm.update({"hydrant.yaml": cm_config(port, body="v2", threads=3, listen_port=other,
                                             timeouts={"idle": "30s"})})
        self.assertIsNotNone(wait_for(lambda: "configuration reloaded" in s.stderr(), 5), s.describe())
        warns = [l["msg"] for l in log_lines(s) if l["level"] == "warn"]
        self.assertTrue(any("server.listen changed" in w and "restart" in w for w in warns), warns)
        self.assertTrue(any("server.threads changed (2 -> 3)" in w and "restart" in w for w in warns), warns)
        self.assertTrue(any("timeouts.handshake/read/idle/write" in w and "restart" in w for w in warns), warns)
        # the old listener serves the rest of the new config; the new address is not listened on
        self.assert_body(port, "/s", "v2")
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", other), timeout=2).close()
        m = metrics(port)
        self.assertEqual((m[RELOAD_OK], m["hydrant_threads"]), (1, 2))
        s.stop()

    def test_response_in_flight_across_reload_keeps_the_old_body(self):
        """A large static response held by HTTP/2 flow control while a reload replaces (and frees) its config."""
        big_a = "".join("a%06d\n" % i for i in range(80000))  # 640 KB, far beyond the 64 KiB initial window
        big_b = "b" * 1000

        def text(p, big):
            return cm_config(p, body="v1", threads=1).replace("routes:\n", "routes:\n  - path: /big\n    static: "
                                                                          "{body: %s}\n" % q(big), 1)

        s, cm, port = self.serve_configmap(lambda p: text(p, big_a))
        c = H2Client(port)
        self.addCleanup(c.close)
        sid = c.request("/big")
        self.assertTrue(c.receive_until(lambda: len(c.responses[sid]["body"]) > 0), "no DATA for /big")
        # stop reading: the server holds the rest of the body (a pointer into the config's memory) for the window
        cm.update({"hydrant.yaml": text(port, big_b)})
        self.assertIsNotNone(wait_for(lambda: getattr(get(port, "/big"), "body", b"")[:1] == b"b", 5), s.describe())
        # on the same connection (threads: 1: the same thread), a new request under the new config, then the rest
        sid2 = c.request("/big")
        self.assertTrue(c.wait_all([sid, sid2]), "the responses did not complete")
        r1, r2 = c.response(sid), c.response(sid2)
        self.assertEqual(r1.status, 200)
        self.assertEqual(len(r1.body), len(big_a))
        self.assertTrue(r1.body == big_a.encode(), "the in-flight body changed across the reload")
        self.assertEqual(r2.body, big_b.encode())
        c.close()
        self.assertIsNone(harness.sanitizer_report(s.stderr()), s.describe())
        s.stop()


class ThreadsAuto(harness.ServerTestCase):
    """`threads: auto` states the thread count and why (affinity mask, cgroup cpu.max) at start-up."""

    @staticmethod
    def cgroup_limit(proc="/proc/self/cgroup", root="/sys/fs/cgroup"):
        """What app/cpus.c computes, in Python: the smallest ceil(quota/period) up the cgroup v2 path, 0 = none."""
        try:
            with open(proc) as f:
                lines = f.read().splitlines()
        except OSError:
            return 0
        path = next((l[3:] for l in lines if l.startswith("0::/")), "/")
        if "/.." in path:
            path = "/"
        best = 0
        d = root.rstrip("/") + path.rstrip("/")
        while True:
            try:
                with open(os.path.join(d, "cpu.max")) as f:
                    m = re.fullmatch(r"(\d+) +(\d+)[ \n]*", f.read())
                if m and int(m.group(1)) > 0 and int(m.group(2)) > 0:
                    n = -(-int(m.group(1)) // int(m.group(2)))
                    best = n if best == 0 else min(best, n)
            except OSError:
                pass
            if len(d) <= len(root.rstrip("/")):
                return best
            d = d.rsplit("/", 1)[0]

    def start_auto(self, cpus=None):
        port = free_port()
        path = harness.write_file(self.tmp, "auto.yaml", make_config([plain_listener(port)], threads="auto",
                                                                      routes=routes()))
        cmd = ([shutil.which("taskset"), "-c", cpus] if cpus is not None else []) + [harness.hydrant_bin(), "serve",
                                                                                    "-c", path]
        err_path = os.path.join(self.tmp, "auto.stderr")
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    env=harness.clean_env(), cwd=harness.REPO)

        def cleanup():
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        self.addCleanup(cleanup)
        ok = wait_for(lambda: get(port, "/health") is not None or proc.poll() is not None, harness.READY_TIMEOUT)

        def text():
            with open(err_path) as f:
                return f.read()
        self.assertTrue(ok is not None and proc.poll() is None, "not ready:\n" + text())
        return proc, port, text

    def check(self, cpus, affinity):
        proc, port, stderr = self.start_auto(cpus)
        # the line comes a moment after the listeners accept
        wait_for(lambda: "serving with" in stderr(), 2)
        quota = self.cgroup_limit()
        expected = min(affinity, quota) if quota else affinity
        why = "cgroup cpu.max allows %d" % quota if quota else "no cgroup cpu.max limit"
        line = "serving with %d thread%s (threads: auto: %d CPUs in the affinity mask, %s)" % (
            expected, "" if expected == 1 else "s", affinity, why)
        msgs = [json.loads(l)["msg"] for l in stderr().splitlines() if l.startswith("{")]
        self.assertIn(line, msgs, stderr())
        self.assertEqual(metrics(port)["hydrant_threads"], expected)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(harness.STOP_TIMEOUT), 0, stderr())
        self.assertIsNone(harness.sanitizer_report(stderr()), stderr())

    @unittest.skipUnless(shutil.which("taskset"), "taskset is not installed")
    def test_taskset_one_cpu_gives_one_thread(self):
        self.check("0", 1)

    def test_affinity_of_this_process(self):
        self.check(None, len(os.sched_getaffinity(0)))


class TlsRotation(harness.ServerTestCase):
    """A TLS listener whose certificate and key live in a Secret-like directory of their own."""

    def make_cert(self, cn):
        d = harness.make_tempdir("hydrant-it-tls-")
        cert, key = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
        r = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-days", "1", "-subj", "/CN=" + cn, "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                 "-keyout", key, "-out", cert])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(cert) as c, open(key) as k:
            return {"tls.crt": c.read(), "tls.key": k.read()}

    @staticmethod
    def subject(port):
        """The subject of the certificate a new connection gets (openssl s_client)."""
        p = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost", "-alpn", "h2"],
                timeout=harness.CLIENT_TIMEOUT)
        m = re.search(r"^subject=(.*)$", p.stdout, re.M)
        return m.group(1).strip() if m else None

    def test_secret_swap_rotates_the_certificate(self):
        old, new = self.make_cert("hydrant-old"), self.make_cert("hydrant-new")
        secret = AtomicDir(os.path.join(self.tmp, "hydrant-tls"), old)
        port, tport = free_port(), free_port()
        tls = {"host": "127.0.0.1", "port": tport,
               "tls": {"certificate": secret.file("tls.crt"), "key": secret.file("tls.key")}}
        config = make_config([plain_listener(port), tls], threads=2, routes=routes())
        s = self.start_server(config, ready_port=port)
        time.sleep(SETTLE)
        self.assertRegex(self.subject(tport) or "", r"CN ?= ?hydrant-old")

        c = H2Client(tport, tls=True)
        self.addCleanup(c.close)
        sid = c.request("/s")
        self.assertTrue(c.wait_all([sid]))
        self.assertEqual(c.response(sid).status, 200)
        old_der = c.sock.getpeercert(binary_form=True)

        swapped = secret.update(new)
        took = wait_for(lambda: "hydrant-new" in (self.subject(tport) or ""), 5, interval=0.05)
        self.assertIsNotNone(took, "new connections still get the old certificate\n" + s.describe())
        took = time.monotonic() - swapped
        self.assertLess(took, PROPAGATION + 0.5, "the new certificate took %.2fs" % took)
        m = metrics(port)
        self.assertEqual((m[RELOAD_OK], m[RELOAD_FAILED]), (1, 0))

        # the connection opened before the swap keeps working (with the certificate it was opened with)
        for _ in range(3):
            sid = c.request("/s")
            self.assertTrue(c.wait_all([sid]), "the open HTTP/2 connection stopped answering after the swap")
            self.assertEqual(c.response(sid).status, 200)
        self.assertEqual(c.sock.getpeercert(binary_form=True), old_der)
        self.assertIsNone(c.goaway)

        # a Secret whose key does not match its certificate: rejected, the current certificate stays
        secret.update({"tls.crt": old["tls.crt"], "tls.key": new["tls.key"]})
        self.assertIsNotNone(wait_for(lambda: metrics(port)[RELOAD_FAILED] == 1, 5), s.describe())
        self.assertIn("hydrant-new", self.subject(tport) or "")
        errors = [l["msg"] for l in log_lines(s) if l["level"] == "error"]
        self.assertTrue(any("reload rejected" in e and secret.file("tls.") in e for e in errors), errors)
        c.close()
        s.stop()


@unittest.skipUnless(os.environ.get("HYDRANT_TEST_DATABASE_URL"),
                     "HYDRANT_TEST_DATABASE_URL is not set: no slow request to hold across a reload")
class InFlightDatabaseRequest(harness.ServerTestCase):
    def test_users_get_waiting_on_a_lock_survives_a_reload(self):
        import dbharness
        db = dbharness.prepare_database("reload", seed_users=3)
        self.addCleanup(db.drop)
        uid = db.sql("SELECT min(id) FROM users")
        port = free_port()

        def text(new_route):
            # one thread, whose database connection is made (and its statements prepared) before the lock:
            # preparing on a new connection would wait for the lock too, and acquire_timeout would answer 503
            extra = "  - path: /new\n    static: {status: 201, body: added}\n" if new_route else ""
            return dbharness.db_config(port, threads=1, pool={"acquire_timeout": "10s"},
                                       routes=dbharness.USERS_ROUTES + extra)

        cm = AtomicDir(os.path.join(self.tmp, "hydrant-config"), {"hydrant.yaml": text(False)})
        s = self.start_server(config_path=cm.file("hydrant.yaml"), ready_port=port,
                              env=harness.clean_env(DATABASE_URL=db.url))
        time.sleep(SETTLE)
        self.assertTrue(dbharness.wait_pool_ready(port), s.describe())
        self.assertEqual(get(port, "/api/v1/users/%s" % uid).status, 200)

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
        cm.update({"hydrant.yaml": text(True)})
        self.assertIsNotNone(wait_for(lambda: getattr(get(port, "/new"), "status", 0) == 201, 5), s.describe())
        self.assertTrue(t.is_alive(), "the GET finished while the lock was held")
        lock.query("COMMIT")
        t.join(20)
        self.assertNotIn("e", result, result.get("e"))
        self.assertEqual(result["r"].status, 200, result["r"])
        self.assertEqual(str(result["r"].json()["id"]), uid)
        s.stop()


if __name__ == "__main__":
    harness.run_tests()
