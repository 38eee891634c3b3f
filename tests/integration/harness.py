"""harness.py: shared helpers for hydrant's integration tests: free ports, YAML configs, a self-signed certificate,
starting and stopping the real `hydrant serve`, and HTTP/1.1, curl, nghttp and raw HTTP/2 (python3-h2) clients.

Every test file runs as `python3 tests/integration/test_<name>.py` from the repository root with HYDRANT_BIN set to
the binary. Everything talks to 127.0.0.1 (or ::1) only, and every subprocess and socket has a timeout.
"""

import os
import sys

# ---- interpreter ------------------------------------------------------------------------------------------------------
# python3-h2 is a Debian package: it lives in /usr/lib/python3/dist-packages and is importable by /usr/bin/python3 only.
# CMake's FindPython3 may pick another interpreter (pyenv, a venv) first on PATH; re-run under Debian's then.


def _ensure_h2():
    import importlib.util

    if importlib.util.find_spec("h2") is not None:
        return
    debian = "/usr/bin/python3"
    if os.environ.get("HYDRANT_IT_REEXEC") or not os.path.exists(debian):
        return  # the tests that need h2 fail with a clear ImportError
    if os.path.realpath(sys.executable) == os.path.realpath(debian):
        return
    os.environ["HYDRANT_IT_REEXEC"] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(debian, [debian] + sys.argv)


_ensure_h2()

import atexit  # noqa: E402
import email.utils  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "integration")

CLIENT_TIMEOUT = 10.0  # seconds, for any one client call (socket, curl, nghttp, openssl)
READY_TIMEOUT = 10.0  # seconds for `serve` to answer GET /health
STOP_TIMEOUT = 10.0  # seconds for `serve` to exit after SIGTERM

# Environment variables that change what hydrant does; removed from the server's environment unless a test sets them.
HYDRANT_ENV = ("SERVER_PORT", "SERVER_READ_TIMEOUT", "SERVER_WRITE_TIMEOUT", "SERVER_IDLE_TIMEOUT", "HYDRANT_CONFIG",
               "DATABASE_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_SSLMODE")

# What sanitizer builds print when they find a bug.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def hydrant_bin():
    """The binary under test: $HYDRANT_BIN, else build/debug/hydrant for runs by hand."""
    path = os.path.abspath(os.environ.get("HYDRANT_BIN") or os.path.join(REPO, "build", "debug", "hydrant"))
    if not os.access(path, os.X_OK):
        raise RuntimeError("hydrant binary not found: set HYDRANT_BIN (tried %s)" % path)
    return path


LSAN_SUPPRESSIONS = os.path.join(REPO, "tests", "lsan.supp")  # the project's own, as tools/dev test uses it


def clean_env(**overrides):
    """A copy of os.environ without hydrant's own variables, plus `overrides` (a value of None removes the name).
    When LSAN_OPTIONS is unset, it points LeakSanitizer at tests/lsan.supp as `tools/dev test` does, so a plain
    `ctest` run of an Asan build judges leaks the same way."""
    env = {k: v for k, v in os.environ.items() if k not in HYDRANT_ENV}
    if "LSAN_OPTIONS" not in env and os.path.exists(LSAN_SUPPRESSIONS):
        env["LSAN_OPTIONS"] = "suppressions=" + LSAN_SUPPRESSIONS
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def run(cmd, timeout=CLIENT_TIMEOUT + 5, **kw):
    """Runs a command to completion with a timeout; returns CompletedProcess with text stdout/stderr."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def sanitizer_report(text):
    """Returns the first sanitizer report line in `text`, or None."""
    for line in text.splitlines():
        if any(m in line for m in SANITIZER_MARKERS):
            return line
    return None


# ---- ports, files, certificate -----------------------------------------------------------------------------------------


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind port 0, read it, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_tempdir(prefix="hydrant-it-"):
    """A fresh temporary directory, removed at exit unless HYDRANT_IT_KEEP is set."""
    d = tempfile.mkdtemp(prefix=prefix)
    if not os.environ.get("HYDRANT_IT_KEEP"):
        atexit.register(shutil.rmtree, d, True)
    return d


def write_file(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def fixture(name):
    return os.path.join(FIXTURES, name)


_cert = None


def tls_cert():
    """(certificate path, key path) of a self-signed P-256 certificate for localhost and 127.0.0.1, made once per run."""
    global _cert
    if _cert is None:
        d = make_tempdir("hydrant-it-cert-")
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        r = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                 "-keyout", key, "-out", cert])
        if r.returncode != 0:
            raise RuntimeError("openssl req failed: " + r.stderr)
        _cert = (cert, key)
    return _cert


# ---- YAML configs ------------------------------------------------------------------------------------------------------

# The routes of the contract, used by every serving test unless it needs others.
DEFAULT_ROUTES = """\
routes:
  - path: /health
    handler: health
  - path: /plaintext
    handler: plaintext
  - path: /json
    handler: json
  - path: /users/{id:int}
    methods: [GET, DELETE]
    static: {status: 200, content_type: application/json, body: '{"ok":true}', headers: {x-static: yes}}
  - path: /teapot
    methods: [POST]
    static: {status: 418, body: "short and stout"}
"""


def q(s):
    """A YAML double-quoted scalar (a JSON string is one)."""
    return json.dumps(str(s))


def plain_listener(port, host="127.0.0.1"):
    return {"host": host, "port": port}


def tls_listener(port, host="127.0.0.1", min_version="TLSv1.2"):
    cert, key = tls_cert()
    return {"host": host, "port": port, "tls": {"certificate": cert, "key": key, "min_version": min_version}}


def make_config(listeners, threads=2, timeouts=None, limits=None, routes=DEFAULT_ROUTES):
    """Renders a config. `listeners` as made by plain_listener/tls_listener; `timeouts` a dict of name -> duration
    string; `limits` a dict of name -> value (nested dicts for http2); `routes` the YAML of the routes section."""
    out = ["server:", "  threads: %s" % threads, "  listen:"]
    for l in listeners:
        out.append("    - host: %s" % q(l["host"]))
        out.append("      port: %s" % l["port"])
        if l.get("tls"):
            t = l["tls"]
            out.append("      tls:")
            out.append("        certificate: %s" % q(t["certificate"]))
            out.append("        key: %s" % q(t["key"]))
            if t.get("min_version"):
                out.append("        min_version: %s" % t["min_version"])
    if timeouts:
        out.append("  timeouts: {%s}" % ", ".join("%s: %s" % kv for kv in timeouts.items()))
    if limits:
        def flow(d):
            return "{%s}" % ", ".join("%s: %s" % (k, flow(v) if isinstance(v, dict) else v) for k, v in d.items())
        out.append("  limits: %s" % flow(limits))
    return "\n".join(out) + "\n" + routes


# ---- the server --------------------------------------------------------------------------------------------------------


class ServerError(AssertionError):
    pass


class Server:
    """One `hydrant serve -c FILE` process with stdout/stderr in files."""

    def __init__(self, config_text=None, config_path=None, env=None, workdir=None, args=None):
        self.workdir = workdir or make_tempdir()
        if config_path is None:
            config_path = write_file(self.workdir, "hydrant.yaml", config_text)
        self.config_path = config_path
        self.env = clean_env() if env is None else env
        self.args = args
        self.proc = None
        self.returncode = None
        self.stop_seconds = None
        self.sanitizer_reported = False
        self.out_path = os.path.join(self.workdir, "serve.stdout")
        self.err_path = os.path.join(self.workdir, "serve.stderr")

    def start(self, ready_port=None, ready_host="127.0.0.1"):
        """Starts the process; with `ready_port`, waits until GET /health on it answers 200."""
        args = self.args if self.args is not None else ["serve", "-c", self.config_path]
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([hydrant_bin()] + args, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=self.env, cwd=REPO)
        if ready_port is not None:
            self.wait_ready(ready_port, ready_host)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stdout(self):
        try:
            with open(self.out_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def describe(self):
        return "hydrant serve -c %s (exit %s)\n--- stderr ---\n%s" % (
            self.config_path, self.proc.poll() if self.proc else None, self.stderr()[-6000:])

    def wait_ready(self, port, host="127.0.0.1", timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError("server exited before it was ready\n" + self.describe())
            try:
                r = http1_request(port, "GET", "/health", host=host, timeout=1.0)
                if r.status == 200:
                    return
                last = "GET /health answered %d" % r.status
            except OSError as e:
                last = repr(e)
            except http.client.HTTPException as e:
                last = repr(e)
            time.sleep(0.05)
        self.kill()
        raise ServerError("server not ready on %s:%d after %.0fs (%s)\n%s" % (host, port, timeout, last, self.describe()))

    def wait_exit(self, timeout):
        """Waits for the process to exit on its own; returns the exit code, or None on timeout."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
            return self.returncode
        except subprocess.TimeoutExpired:
            return None

    def terminate(self, timeout=STOP_TIMEOUT):
        """Sends SIGTERM and waits; returns (exit code, seconds taken). Kills and raises when it does not exit."""
        if self.proc.poll() is not None:
            raise ServerError("server had already exited before SIGTERM\n" + self.describe())
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ServerError("server did not exit within %.0fs of SIGTERM\n%s" % (timeout, self.describe()))
        self.stop_seconds = time.monotonic() - t0
        return self.returncode, self.stop_seconds

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then asserts exit code 0 and no sanitizer report. Returns the seconds the exit took."""
        rc, secs = self.terminate(timeout)
        self.assert_no_sanitizer_report()
        if rc != 0:
            raise ServerError("server exited %d after SIGTERM, expected 0\n%s" % (rc, self.describe()))
        return secs

    def kill(self):
        if self.alive():
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def assert_no_sanitizer_report(self):
        report = sanitizer_report(self.stderr())
        if report and not self.sanitizer_reported:
            self.sanitizer_reported = True  # raise it once, not again from cleanup
            raise ServerError("sanitizer report in the server's stderr: %s\n%s" % (report, self.describe()))

    def cleanup(self):
        """For addCleanup/tearDown: kills a server the test left running, then fails on any sanitizer report."""
        self.kill()
        self.assert_no_sanitizer_report()


class ServerTestCase(unittest.TestCase):
    """Helpers for tests that start their own servers; every started server is killed (if still running) and checked
    for sanitizer reports when the test ends."""

    maxDiff = None

    def setUp(self):
        self.tmp = make_tempdir()

    def start_server(self, config_text=None, ready_port=None, **kw):
        kw.setdefault("workdir", make_tempdir())
        s = Server(config_text, **kw)
        self.addCleanup(s.cleanup)
        s.start(ready_port=ready_port)
        return s


class SharedServerTestCase(unittest.TestCase):
    """One server for the whole class: subclasses define `config(cls)` returning the YAML text after setting ports.
    Each test checks the server is still alive afterwards (so a crash is pinned on the test that caused it); the
    class ends with SIGTERM and asserts exit 0 and no sanitizer report."""

    maxDiff = None
    server = None

    @classmethod
    def make_config(cls):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        text = cls.make_config()
        cls.server = Server(text)
        try:
            cls.server.start(ready_port=cls.port)
        except BaseException:
            cls.server.kill()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.server is None:
            return
        try:
            cls.server.stop()
        finally:
            cls.server.kill()

    def tearDown(self):
        s = type(self).server
        if s is not None and not s.alive():
            self.fail("the server died during this test\n" + s.describe())
        if s is not None and not s.sanitizer_reported:
            report = sanitizer_report(s.stderr())
            if report:
                s.sanitizer_reported = True  # pinned on this test; later tests and tearDownClass do not repeat it
                self.fail("sanitizer report after this test: %s\n%s" % (report, s.describe()))


# ---- responses ---------------------------------------------------------------------------------------------------------


class Response:
    """A response from any client: status, version ("1.1" or "2"), headers as a list of (lower-case name, value)."""

    def __init__(self, status, headers, body, version):
        self.status = status
        self.headers = [(k.lower(), v) for k, v in headers]
        self.body = body
        self.version = version

    def header(self, name):
        """The one value of header `name`, or None; fails when it appears more than once."""
        vals = self.header_all(name)
        if len(vals) > 1:
            raise AssertionError("header %s appears %d times: %r" % (name, len(vals), vals))
        return vals[0] if vals else None

    def header_all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response HTTP/%s %d %r %r>" % (self.version, self.status, self.headers, self.body[:200])


def http1_request(port, method, path, host="127.0.0.1", body=None, headers=None, timeout=CLIENT_TIMEOUT, conn=None):
    """One HTTP/1.1 request with http.client (a new connection unless `conn` is given). Returns a Response."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.getheaders(), data, "1.1" if r.version == 11 else "1.0")
    finally:
        if own:
            conn.close()


def raw_http1(port, request_bytes, host="127.0.0.1", timeout=CLIENT_TIMEOUT):
    """Sends raw bytes (the request must say `Connection: close`) and returns everything until EOF."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        s.sendall(request_bytes)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                c = s.recv(65536)
            except ConnectionResetError:
                break
            if not c:
                break
            chunks.append(c)
        return b"".join(chunks)


def parse_raw_http1(data):
    """Parses one HTTP/1.x response (Content-Length bodies) from raw bytes into a Response."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/(1\.[01]) (\d{3})", lines[0])
    if not m:
        raise AssertionError("not an HTTP/1 response: %r" % data[:200])
    headers = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:] if ":" in l]
    resp = Response(int(m.group(2)), headers, b"", m.group(1))
    cl = resp.header("content-length")
    resp.body = rest[: int(cl)] if cl is not None else rest
    return resp


def parse_http_date(value):
    """Parses an RFC 7231 IMF-fixdate; returns seconds since the epoch, or raises."""
    if not re.fullmatch(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                        r"\d{4} \d\d:\d\d:\d\d GMT", value or ""):
        raise ValueError("not an IMF-fixdate: %r" % value)
    return email.utils.parsedate_to_datetime(value).timestamp()


# ---- curl --------------------------------------------------------------------------------------------------------------


def curl(url, *args, workdir=None, timeout=CLIENT_TIMEOUT):
    """Runs curl with `args` on `url`. Returns (Response of the last response, CompletedProcess). The Response is None
    when curl failed (see the CompletedProcess)."""
    d = workdir or make_tempdir("hydrant-it-curl-")
    hdr, body = os.path.join(d, "curl.headers"), os.path.join(d, "curl.body")
    for p in (hdr, body):
        if os.path.exists(p):
            os.unlink(p)
    cmd = ["curl", "-sS", "--max-time", str(int(timeout)), "--connect-timeout", "5", "-D", hdr, "-o", body,
           "-w", "%{http_version} %{response_code}"] + list(args) + [url]
    p = run(cmd, timeout=timeout + 5)
    if p.returncode != 0:
        return None, p
    with open(hdr, "rb") as f:
        raw = f.read().decode("latin-1")
    data = b""
    if os.path.exists(body):
        with open(body, "rb") as f:
            data = f.read()
    # With an Upgrade, the dump holds the 101 block then the final block: use the last one.
    blocks = [b for b in re.split(r"\r?\n\r?\n", raw) if b.strip()]
    last = blocks[-1].splitlines()
    status = int(last[0].split()[1])
    headers = [tuple(x.strip() for x in l.split(":", 1)) for l in last[1:] if ":" in l]
    version, code = p.stdout.split()
    if int(code) != status:
        raise AssertionError("curl -w says %s but the header dump says %d" % (code, status))
    resp = Response(status, headers, data, version)
    resp.all_status_lines = [b.splitlines()[0] for b in blocks]
    return resp, p


# ---- nghttp ------------------------------------------------------------------------------------------------------------

_NGHTTP_HDR = re.compile(r"^\[\s*[\d.]+\] recv \(stream_id=(\d+)(?:, [^)]*)?\) (:?[^:\s]+): (.*)$")
_NGHTTP_DATA = re.compile(rb"\[\s*[\d.]+\] recv DATA frame <length=(\d+), flags=0x[0-9a-f]+, stream_id=(\d+)>")


def nghttp(url, *args, timeout=CLIENT_TIMEOUT):
    """Runs `nghttp -v URL` (HTTP/2 only: prior knowledge for http://, ALPN for https://, upgrade with -u). Returns
    (Response, CompletedProcess with text output); Response is None when no :status arrived. nghttp writes each DATA
    frame's payload to stdout just before its "recv DATA frame <length=N ...>" line, which is how the body is found."""
    cmd = ["nghttp", "-v", "-t", str(int(timeout))] + list(args) + [url]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout + 5, stdin=subprocess.DEVNULL)
    raw = p.stdout
    body = bytearray()
    for m in _NGHTTP_DATA.finditer(raw):
        n = int(m.group(1))
        body += raw[m.start() - n:m.start()]
    p = subprocess.CompletedProcess(p.args, p.returncode, raw.decode("utf-8", "replace"),
                                    p.stderr.decode("utf-8", "replace"))
    headers, status = [], None
    for line in p.stdout.splitlines():
        m = _NGHTTP_HDR.match(line)
        if not m:
            continue
        name, value = m.group(2), m.group(3)
        if name == ":status":
            status = int(value)
        elif not name.startswith(":"):
            headers.append((name, value))
    if status is None:
        return None, p
    return Response(status, headers, bytes(body), "2"), p


# ---- raw HTTP/2 (python3-h2) -------------------------------------------------------------------------------------------


class H2Client:
    """A minimal HTTP/2 client on python3-h2 over one socket: h2c with prior knowledge, or TLS with ALPN h2."""

    def __init__(self, port, host="127.0.0.1", tls=False, timeout=CLIENT_TIMEOUT):
        import h2.config
        import h2.connection

        self.timeout = timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect((host, port))
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
            if sock.selected_alpn_protocol() != "h2":
                raise AssertionError("ALPN selected %r, expected h2" % sock.selected_alpn_protocol())
        self.sock = sock
        self.authority = "%s:%d" % ("[%s]" % host if ":" in host else host, port)
        self.scheme = "https" if tls else "http"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.flush()
        self.responses = {}  # stream id -> {"headers": [...], "body": bytearray, "ended": bool, "reset": code}
        self.remote_settings = None  # the changed settings of the server's first SETTINGS frame
        self.settings_acked = False  # the server acknowledged our SETTINGS
        self.goaway = None  # the h2.events.ConnectionTerminated event, when GOAWAY came
        self.closed = False  # EOF on the socket

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, method="GET", headers=(), body=None):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", self.scheme), (":authority", self.authority), (":path", path)]
        hdrs += list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=True)
        self.responses[sid] = {"headers": None, "body": bytearray(), "ended": False, "reset": None}
        self.flush()
        return sid

    def _handle(self, event):
        import h2.events as ev

        if isinstance(event, ev.RemoteSettingsChanged):
            if self.remote_settings is None:
                self.remote_settings = {k: v.new_value for k, v in event.changed_settings.items()}
        elif isinstance(event, ev.SettingsAcknowledged):
            self.settings_acked = True
        elif isinstance(event, ev.ResponseReceived):
            self.responses[event.stream_id]["headers"] = list(event.headers)
        elif isinstance(event, ev.DataReceived):
            self.responses[event.stream_id]["body"] += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, ev.StreamEnded):
            self.responses[event.stream_id]["ended"] = True
        elif isinstance(event, ev.StreamReset):
            if event.stream_id in self.responses:
                self.responses[event.stream_id]["reset"] = event.error_code
                self.responses[event.stream_id]["ended"] = True
        elif isinstance(event, ev.ConnectionTerminated):
            self.goaway = event

    def receive_until(self, done, timeout=None):
        """Reads and handles frames until done() is true, EOF, or the timeout. Returns done()."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not done():
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                break
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ssl.SSLError):
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            for e in self.conn.receive_data(data):
                self._handle(e)
            try:
                self.flush()
            except OSError:
                self.closed = True
        return done()

    def wait_settings(self):
        return self.receive_until(lambda: self.remote_settings is not None)

    def wait_all(self, sids):
        return self.receive_until(lambda: all(self.responses[s]["ended"] for s in sids))

    def response(self, sid):
        r = self.responses[sid]
        if r["headers"] is None:
            return None
        hdrs = [(k, v) for k, v in r["headers"] if not k.startswith(":")]
        status = int(dict(r["headers"])[":status"])
        return Response(status, hdrs, bytes(r["body"]), "2")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def h2_request(port, method, path, body=None, headers=(), timeout=CLIENT_TIMEOUT, allow_reset=False):
    """One request on a fresh h2c (prior knowledge) connection with python3-h2. A body (bytes or str) goes out in
    frames within flow control, so any size works, with content-length unless `headers` has one. Returns a Response;
    a stream reset without a response is an AssertionError, or None with allow_reset."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    c = H2Client(port, timeout=timeout)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # HEADERS and DATA go out in separate writes
    import h2.exceptions
    try:
        hdrs = [(":method", method), (":scheme", "http"), (":authority", c.authority), (":path", path)]
        hdrs += list(headers)
        if body is not None and not any(k.lower() == "content-length" for k, _ in headers):
            hdrs.append(("content-length", str(len(body))))
        sid = c.conn.get_next_available_stream_id()
        c.responses[sid] = {"headers": None, "body": bytearray(), "ended": False, "reset": None}
        c.conn.send_headers(sid, hdrs, end_stream=body is None)
        c.flush()
        off = 0
        deadline = time.monotonic() + timeout
        while body is not None and off < len(body) and not c.responses[sid]["ended"]:
            try:
                room = min(c.conn.local_flow_control_window(sid), c.conn.max_outbound_frame_size, len(body) - off)
            except h2.exceptions.StreamClosedError:
                break
            if room > 0:
                c.conn.send_data(sid, body[off:off + room], end_stream=off + room == len(body))
                off += room
                c.flush()
            else:
                c.receive_until(lambda: c.conn.local_flow_control_window(sid) > 0 or c.responses[sid]["ended"],
                                timeout=max(0.1, deadline - time.monotonic()))
                if time.monotonic() > deadline:
                    raise AssertionError("h2c %s %s: flow control never opened" % (method, path))
        if body is not None and len(body) == 0:
            c.conn.send_data(sid, b"", end_stream=True)  # an empty body: one empty DATA frame ends the stream
            c.flush()
        if not c.wait_all([sid]):
            raise AssertionError("h2c %s %s: no complete answer within %.0fs" % (method, path, timeout))
        r = c.response(sid)
        if r is None and not allow_reset:
            raise AssertionError("h2c %s %s: stream reset (code %s) without a response" % (
                method, path, c.responses[sid]["reset"]))
        return r
    finally:
        c.close()


# ---- assertions ----------------------------------------------------------------------------------------------------------


def assert_common_headers(tc, resp, content_type, body):
    """The headers every hydrant response carries: date (a current IMF-fixdate), server: hydrant, content-length equal
    to the body's length (also for HEAD, where `body` is what GET would send) and the content type."""
    tc.assertEqual(resp.header("server"), "hydrant", resp)
    tc.assertEqual(resp.header("content-type"), content_type, resp)
    tc.assertEqual(resp.header("content-length"), str(len(body)), resp)
    date = resp.header("date")
    tc.assertIsNotNone(date, "no date header: %r" % resp)
    tc.assertLess(abs(parse_http_date(date) - time.time()), 120, "date header is not now: %r" % date)


def run_tests():
    """unittest.main with verbose output; exits nonzero when a test fails."""
    unittest.main(verbosity=2, buffer=False)
