"""test_image.py: the container image, built and run as Kubernetes would run it. Opt-in: HYDRANT_IMAGE_TEST=1.

It builds the image with tools/image and runs the image's own root filesystem:

- engine: docker when a Docker engine answers, else buildah (tools/image installs it), else, or with
  HYDRANT_IMAGE_MODE=rootfs, no engine at all: `tools/image --rootfs DIR` lays out the same tree (tools/rootfs is what
  the Dockerfile runs too). With an engine, the tree run is the built image's, taken out of the engine (buildah mount /
  docker export), and the image's config (user, entrypoint, cmd, ports) is checked.
- run: in a private mount namespace (unshare -m), the tree is bind-mounted READ-ONLY, a ConfigMap-like directory
  (the kubelet's ..data symlink layout) is mounted at /etc/hydrant and the TLS files at /etc/hydrant-tls, both
  read-only, /proc and /sys are mounted, and `chroot --userspec=10001:10001` starts /hydrant: non-root, no writable
  path. Network: the host's loopback, where the test PostgreSQL listens.
- checks: `hydrant check` of the image's own /etc/hydrant/hydrant.yaml, `hydrant migrate`, then `hydrant serve`:
  /health, /ready (database reached), a user created and read back, h2c and TLS h2, /metrics on the admin port only,
  the JSON access log on stdout without the probes, uid 10001, a read-only root, and exit 0 on SIGTERM. It prints the
  build time and the size of the tree.

Needs: root (mounts, chroot), HYDRANT_TEST_DATABASE_URL (tools/dev test sets it), psql, curl, openssl. Without any of
them, or without HYDRANT_IMAGE_TEST=1, every test is skipped with the reason.

Environment: HYDRANT_IMAGE_MODE=auto|docker|buildah|rootfs (default auto), HYDRANT_IMAGE_BINARY=PATH (rootfs mode: a
Release binary to use instead of building one), HYDRANT_IMAGE_MAX_BYTES (default 20 MiB: the size goal).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

REPO = harness.REPO
TAG = "localhost/hydrant:test"
UID = 10001
MAX_BYTES = int(os.environ.get("HYDRANT_IMAGE_MAX_BYTES") or 20 * 1024 * 1024)
BUILD_TIMEOUT = 1800  # seconds: a first buildah build makes the Debian base and installs the toolchain
DB_URL = os.environ.get("HYDRANT_TEST_DATABASE_URL") or None


def skip_reason():
    if os.environ.get("HYDRANT_IMAGE_TEST") != "1":
        return ("SKIPPED: the image test is opt-in: set HYDRANT_IMAGE_TEST=1 (it builds the container image, which "
                "takes minutes, and needs root)")
    if os.geteuid() != 0:
        return "SKIPPED: the image test needs root (mount namespaces, read-only bind mounts, chroot)"
    if not DB_URL:
        return "SKIPPED: HYDRANT_TEST_DATABASE_URL is not set (run it through `tools/dev test`)"
    for tool in ("unshare", "chroot", "mount", "psql", "curl", "openssl"):
        if shutil.which(tool) is None:
            return "SKIPPED: %s is not installed" % tool
    return None


SKIP = skip_reason()
if SKIP:
    print("test_image: " + SKIP, file=sys.stderr)


def run(cmd, timeout=120, **kw):
    return harness.run(cmd, timeout=timeout, **kw)


def psql(url, sql):
    r = run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qtAc", sql], timeout=60)
    if r.returncode != 0:
        raise AssertionError("psql failed: %s" % r.stderr)
    return r.stdout.strip()


def docker_engine():
    return shutil.which("docker") is not None and run(["docker", "info"], timeout=30).returncode == 0


# ---- the tree under test -------------------------------------------------------------------------------------------------


class Image:
    """Builds the image (or the root filesystem) once; .rootfs is the tree to run, .config the image config or None."""

    def __init__(self):
        mode = os.environ.get("HYDRANT_IMAGE_MODE", "auto")
        if mode == "auto":
            mode = "docker" if docker_engine() else "buildah"
        self.mode = mode
        self.tmp = tempfile.mkdtemp(prefix="hydrant-image-test-")
        self.cleanups = []
        self.config = None
        self.engine_bytes = None
        t0 = time.monotonic()
        if mode == "rootfs":
            self.build_rootfs()
        else:
            env = harness.clean_env(HYDRANT_IMAGE_ENGINE=mode)
            r = run([os.path.join(REPO, "tools", "image"), "--tag", TAG], timeout=BUILD_TIMEOUT, env=env, cwd=REPO)
            self.log = r.stdout + r.stderr
            if r.returncode != 0:
                raise AssertionError("tools/image (%s) failed:\n%s" % (mode, self.log[-8000:]))
            m = re.search(r"built \S+ in \d+s: .* \((\d+) bytes\)", self.log)
            self.engine_bytes = int(m.group(1)) if m else None
            if mode == "buildah":
                self.extract_buildah()
            else:
                self.extract_docker()
        self.build_seconds = time.monotonic() - t0
        self.bytes = int(run(["du", "-sb", self.rootfs]).stdout.split()[0])
        print("\n  image test: mode %s, built in %.0fs, root filesystem %d bytes (%.1f MiB)%s" % (
            self.mode, self.build_seconds, self.bytes, self.bytes / 1048576.0,
            "" if self.engine_bytes is None else ", tools/image says %d bytes" % self.engine_bytes), file=sys.stderr)

    def build_rootfs(self):
        self.rootfs = os.path.join(self.tmp, "rootfs")
        cmd = [os.path.join(REPO, "tools", "image"), "--rootfs", self.rootfs]
        if os.environ.get("HYDRANT_IMAGE_BINARY"):
            cmd += ["--binary", os.environ["HYDRANT_IMAGE_BINARY"]]
        r = run(cmd, timeout=BUILD_TIMEOUT, cwd=REPO)
        self.log = r.stdout + r.stderr
        if r.returncode != 0:
            raise AssertionError("tools/image --rootfs failed:\n%s" % self.log[-8000:])

    def extract_buildah(self):
        r = run(["buildah", "inspect", "--type", "image", TAG])
        if r.returncode != 0:
            raise AssertionError("buildah inspect: " + r.stderr)
        self.config = json.loads(r.stdout)["OCIv1"]["config"]
        ctr = run(["buildah", "from", "--quiet", "--pull=never", TAG]).stdout.strip()
        self.cleanups.append(lambda: run(["buildah", "rm", ctr]))
        r = run(["buildah", "mount", ctr])
        if r.returncode != 0:
            raise AssertionError("buildah mount: " + r.stderr)
        self.cleanups.append(lambda: run(["buildah", "umount", ctr]))
        self.rootfs = r.stdout.strip()

    def extract_docker(self):
        r = run(["docker", "image", "inspect", TAG])
        self.config = json.loads(r.stdout)[0]["Config"]
        ctr = run(["docker", "create", TAG]).stdout.strip()
        self.cleanups.append(lambda: run(["docker", "rm", ctr]))
        self.rootfs = os.path.join(self.tmp, "rootfs")
        os.mkdir(self.rootfs)
        r = subprocess.run("docker export %s | tar -x -C %s" % (ctr, self.rootfs), shell=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError("docker export failed")

    def close(self):
        for f in reversed(self.cleanups):
            f()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---- running the tree the way a pod would --------------------------------------------------------------------------------

# In a private mount namespace: the tree read-only at $MNT, the config directory and TLS directory read-only on their
# mount points, /proc and a read-only /sys; then, as 10001:10001, exec the command (so the pid is hydrant's).
SANDBOX = r"""
set -eu
mount --make-rprivate /
mount --bind "$ROOTFS" "$MNT"
mount -o remount,bind,ro "$MNT"
if [ -n "$CONFIG_DIR" ]; then mount --bind "$CONFIG_DIR" "$MNT/etc/hydrant"; mount -o remount,bind,ro "$MNT/etc/hydrant"; fi
mount --bind "$TLS_DIR" "$MNT/etc/hydrant-tls"
mount -o remount,bind,ro "$MNT/etc/hydrant-tls"
mount -t proc proc "$MNT/proc"
mount --rbind /sys "$MNT/sys"
mount --bind /dev "$MNT/dev"
if touch "$MNT/.probe" 2>/dev/null; then echo "sandbox: the root filesystem is writable" >&2; exit 97; fi
exec chroot --userspec=10001:10001 "$MNT" "$@"
"""


class Pod:
    """One process of the tree: `/hydrant ARGS...` in the sandbox, with env and mounts like the Deployment's."""

    def __init__(self, image, tmp, env, args, config_dir=None, tls_dir=None):
        self.mnt = tempfile.mkdtemp(prefix="mnt-", dir=tmp)
        self.out = os.path.join(tmp, "pod-%d.stdout" % id(self))
        self.err = os.path.join(tmp, "pod-%d.stderr" % id(self))
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "ROOTFS": image.rootfs, "MNT": self.mnt,
             "CONFIG_DIR": config_dir or "", "TLS_DIR": tls_dir}
        e.update(env)
        with open(self.out, "wb") as o, open(self.err, "wb") as er:
            self.proc = subprocess.Popen(["unshare", "--mount", "sh", "-c", SANDBOX, "sandbox", "/hydrant"] + args,
                                         stdin=subprocess.DEVNULL, stdout=o, stderr=er, env=e)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("timed out after %ss:\n%s" % (timeout, self.stderr()))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stdout(self):
        with open(self.out, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.err, "rb") as f:
            return f.read().decode("utf-8", "replace")


def configmap_dir(parent, text):
    """A directory laid out as the kubelet lays out a ConfigMap volume: hydrant.yaml -> ..data/hydrant.yaml,
    ..data -> ..<timestamp>/, the file inside that."""
    d = os.path.join(parent, "configmap")
    ts = "..2026_01_01_00_00_00.000000001"
    os.makedirs(os.path.join(d, ts))
    harness.write_file(os.path.join(d, ts), "hydrant.yaml", text)
    os.symlink(ts, os.path.join(d, "..data"))
    os.symlink("..data/hydrant.yaml", os.path.join(d, "hydrant.yaml"))
    for root, dirs, files in os.walk(d):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    return d


def configmap_update(d, text):
    """What the kubelet does when the ConfigMap changes: the new content in a new timestamped directory, ..data swapped
    to it by a rename, the old directory removed."""
    old = os.readlink(os.path.join(d, "..data"))
    ts = "..2026_01_01_00_01_00.000000002"
    os.makedirs(os.path.join(d, ts))
    harness.write_file(os.path.join(d, ts), "hydrant.yaml", text)
    os.chmod(os.path.join(d, ts), 0o755)
    os.chmod(os.path.join(d, ts, "hydrant.yaml"), 0o644)
    os.symlink(ts, os.path.join(d, "..data_tmp"))
    os.rename(os.path.join(d, "..data_tmp"), os.path.join(d, "..data"))
    shutil.rmtree(os.path.join(d, old))


def tls_dir(parent):
    """The TLS Secret's files (tls.crt, tls.key), readable by group 10001 only, as fsGroup + defaultMode 0440 give."""
    d = os.path.join(parent, "tls")
    os.makedirs(d)
    cert, key = harness.tls_cert()
    shutil.copy(cert, os.path.join(d, "tls.crt"))
    shutil.copy(key, os.path.join(d, "tls.key"))
    for f in ("tls.crt", "tls.key"):
        os.chown(os.path.join(d, f), 0, UID)
        os.chmod(os.path.join(d, f), 0o440)
    os.chmod(d, 0o755)
    return d


@unittest.skipIf(SKIP, SKIP or "")
class ImageTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hydrant-image-run-")
        os.chmod(cls.tmp, 0o755)
        cls.image = Image()
        try:
            cls.set_up_pod_inputs()
        except BaseException:
            cls.image.close()
            raise

    @classmethod
    def set_up_pod_inputs(cls):
        # this file's own role (not a superuser, with a password worth hiding) owning its own database, migrated by
        # the image's `hydrant migrate`
        cls.dbname = cls.role = "hy_it_image_%d" % os.getpid()
        cls.password = "pw-%d-not-to-be-printed" % os.getpid()
        u = urllib.parse.urlsplit(DB_URL)
        psql(DB_URL, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % cls.dbname)
        psql(DB_URL, 'DROP ROLE IF EXISTS "%s"' % cls.role)
        psql(DB_URL, "CREATE ROLE \"%s\" LOGIN PASSWORD '%s'" % (cls.role, cls.password))
        psql(DB_URL, 'CREATE DATABASE "%s" OWNER "%s"' % (cls.dbname, cls.role))
        netloc = "%s:%s@%s:%d" % (cls.role, cls.password, u.hostname, u.port or 5432)
        cls.db_url = urllib.parse.urlunsplit((u.scheme, netloc, "/" + cls.dbname, u.query, ""))
        q = dict(urllib.parse.parse_qsl(u.query))
        # the Deployment's variables: DB_USER / DB_PASSWORD from the Secret, the rest literal
        cls.env = {"DB_HOST": u.hostname, "DB_PORT": str(u.port or 5432), "DB_NAME": cls.dbname,
                   "DB_SSLMODE": q.get("sslmode", "prefer"), "DB_USER": cls.role, "DB_PASSWORD": cls.password}
        cls.tls = tls_dir(cls.tmp)
        # the ConfigMap: conf/kubernetes.yaml with free ports (8080/8443/9090 may be taken on a developer machine)
        cls.http, cls.https, cls.admin = harness.free_port(), harness.free_port(), harness.free_port()
        with open(os.path.join(REPO, "conf", "kubernetes.yaml")) as f:
            text = f.read()
        for old, new in (("port: 8080", cls.http), ("port: 8443", cls.https), ("port: 9090", cls.admin)):
            assert text.count(old) == 1, old
            text = text.replace(old, "port: %d" % new)
        cls.config_text = text
        cls.config_dir = configmap_dir(cls.tmp, text)
        cls.pods = []

    @classmethod
    def tearDownClass(cls):
        for p in cls.pods:
            p.kill()
        try:
            psql(DB_URL, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % cls.dbname)
            psql(DB_URL, 'DROP ROLE IF EXISTS "%s"' % cls.role)
        finally:
            cls.image.close()
            if not os.environ.get("HYDRANT_IT_KEEP"):
                shutil.rmtree(cls.tmp, ignore_errors=True)

    def pod(self, args, config_dir=True):
        p = Pod(self.image, self.tmp, self.env, args, self.config_dir if config_dir else None, self.tls)
        self.pods.append(p)
        return p

    # -- the tree -------------------------------------------------------------------------------------------------------

    def test_1_tree(self):
        root = self.image.rootfs
        self.assertLessEqual(self.image.bytes, MAX_BYTES, "the root filesystem is %d bytes, over the %d-byte goal" % (
            self.image.bytes, MAX_BYTES))
        for path in ("hydrant", "etc/passwd", "etc/group", "etc/ssl/certs/ca-certificates.crt",
                     "etc/hydrant/hydrant.yaml", "usr/share/hydrant/migrations/0001_users.sql",
                     "lib64/ld-linux-x86-64.so.2"):
            self.assertTrue(os.path.isfile(os.path.join(root, path)), path)
        # libpq is loaded with dlopen (app/pq.c): ldd of the binary does not list it, the tree must have it anyway
        libpq = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f == "libpq.so.5"]
        self.assertEqual(len(libpq), 1, "libpq.so.5 is not in the tree")
        for shell in ("bin/sh", "bin/bash", "usr/bin/sh", "bin/busybox"):
            self.assertFalse(os.path.lexists(os.path.join(root, shell)), "the image must not have " + shell)
        with open(os.path.join(root, "etc", "passwd")) as f:
            self.assertIn("hydrant:x:%d:%d:" % (UID, UID), f.read())
        with open(os.path.join(root, "etc", "hydrant", "hydrant.yaml")) as f, \
                open(os.path.join(REPO, "conf", "kubernetes.yaml")) as g:
            self.assertEqual(f.read(), g.read(), "the image's /etc/hydrant/hydrant.yaml is conf/kubernetes.yaml")
        # nothing in the tree is writable by the user the server runs as
        for dirpath, dirs, files in os.walk(root):
            for n in dirs + files:
                st = os.lstat(os.path.join(dirpath, n))
                self.assertFalse(st.st_uid == UID or (st.st_mode & 0o002 and not os.path.islink(os.path.join(dirpath, n))),
                                 os.path.join(dirpath, n))

    def test_1_image_config(self):
        c = self.image.config
        if c is None:
            self.skipTest("rootfs mode: no image config to check")
        self.assertEqual(c.get("User"), "%d:%d" % (UID, UID))
        self.assertEqual(c.get("Entrypoint"), ["/hydrant", "serve"])
        self.assertEqual(c.get("Cmd"), ["-c", "/etc/hydrant/hydrant.yaml"])
        self.assertEqual(sorted(c.get("ExposedPorts", {})), ["8080/tcp", "8443/tcp", "9090/tcp"])
        self.assertNotIn("Healthcheck", c)

    # -- the commands -----------------------------------------------------------------------------------------------------

    def test_2_check_the_images_own_config(self):
        p = self.pod(["check", "-c", "/etc/hydrant/hydrant.yaml"], config_dir=False)
        rc = p.wait(60)
        self.assertEqual(rc, 0, p.stdout() + p.stderr())
        self.assertIn("0.0.0.0:8443 tls", p.stdout())
        self.assertNotIn(self.env["DB_PASSWORD"], p.stdout() + p.stderr())

    def test_3_serve(self):
        m = self.pod(["migrate", "-c", "/etc/hydrant/hydrant.yaml"])
        rc = m.wait(120)
        self.assertEqual(rc, 0, "hydrant migrate failed:\n" + m.stdout() + m.stderr())
        self.assertIn("users", psql(self.db_url, "SELECT string_agg(tablename, ',') FROM pg_tables "
                                                 "WHERE schemaname = 'public'"))

        s = self.pod(["serve", "-c", "/etc/hydrant/hydrant.yaml"])
        try:
            self.serve_checks(s)
            self.reload_checks(s)
        except BaseException:
            s.kill()
            raise
        self.termination_checks(s)

    def wait_status(self, s, port, path, want, timeout=15):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if s.proc.poll() is not None:
                self.fail("the server exited (%s):\n%s" % (s.proc.returncode, s.stderr()[-4000:]))
            try:
                r = harness.http1_request(port, "GET", path, timeout=2)
                if r.status == want:
                    return r
                last = r.status
            except OSError as e:
                last = e
            time.sleep(0.1)
        self.fail("GET %s on %d: wanted %d, last %r\n%s" % (path, port, want, last, s.stderr()[-4000:]))

    def serve_checks(self, s):
        self.wait_status(s, self.http, "/health", 200)
        self.wait_status(s, self.http, "/ready", 200)  # the pool reached the database

        # a user created and read back through the database
        email = "image-%d@example.com" % os.getpid()
        r = harness.http1_request(self.http, "POST", "/api/v1/users",
                                  body=json.dumps({"name": "Image Test", "email": email}),
                                  headers={"content-type": "application/json"})
        self.assertEqual(r.status, 201, r)
        loc = r.header("location")
        self.assertRegex(loc or "", r"^/api/v1/users/\d+$")
        r = harness.http1_request(self.http, "GET", loc)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["email"], email)

        # h2c with prior knowledge on the plain port, h2 over TLS with the mounted Secret's certificate
        r, p = harness.curl("http://127.0.0.1:%d/json" % self.http, "--http2-prior-knowledge")
        self.assertIsNotNone(r, p.stderr)
        self.assertEqual((r.version, r.status), ("2", 200))
        r, p = harness.curl("https://127.0.0.1:%d%s" % (self.https, loc), "-k", "--http2")
        self.assertIsNotNone(r, p.stderr)
        self.assertEqual((r.version, r.status), ("2", 200))

        # metrics on the admin port, not on the public one
        r = harness.http1_request(self.admin, "GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertIn(b"hydrant_", r.body)
        self.assertEqual(harness.http1_request(self.http, "GET", "/metrics").status, 404)

        # the process: uid/gid 10001, a read-only root
        pid = s.proc.pid
        with open("/proc/%d/status" % pid) as f:
            status = f.read()
        self.assertRegex(status, r"\nUid:\s+%d\s+%d\s+%d\s+%d\n" % ((UID,) * 4))
        self.assertRegex(status, r"\nGid:\s+%d\s+%d\s+%d\s+%d\n" % ((UID,) * 4))
        self.assertRegex(status, r"\nCapEff:\s+0+\n")
        self.assertEqual(os.readlink("/proc/%d/exe" % pid).rsplit("/", 1)[-1], "hydrant")
        with open("/proc/%d/mountinfo" % pid) as f:
            mounts = {}
            for line in f:
                fields = line.split()
                mounts[fields[4]] = fields[5].split(",")
        for point in ("/", "/etc/hydrant", "/etc/hydrant-tls"):
            self.assertIn(point, mounts)
            self.assertIn("ro", mounts[point], "%s is not read-only: %s" % (point, mounts[point]))

        # access log: JSON on stdout, the user requests in it, the probes not
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and email not in s.stdout() and loc not in s.stdout():
            time.sleep(0.1)
        lines = [json.loads(l) for l in s.stdout().splitlines() if l.strip()]
        paths = [(str(l.get("path")), l.get("status")) for l in lines]
        self.assertTrue(any(p.startswith("/api/v1/users") for p, _ in paths), lines[:5])
        # excluded routes: the probes and the admin port's scrapes (the public port's 404 for /metrics is logged)
        self.assertEqual([(p, st) for p, st in paths if p in ("/health", "/ready") or (p == "/metrics" and st != 404)],
                         [], paths)
        self.assertNotIn(self.password, s.stdout() + s.stderr())
        # server logs: JSON on stderr
        first = s.stderr().splitlines()[0]
        self.assertIsInstance(json.loads(first), dict, first)
        self.user = loc

    def reload_checks(self, s):
        """`kubectl edit configmap hydrant`: the kubelet swaps ..data, hydrant reloads without a restart."""
        r = harness.http1_request(self.http, "GET", "/robots.txt")
        self.assertEqual((r.status, r.body), (200, b"User-agent: *\nDisallow: /\n"))
        old = 'body: "User-agent: *\\nDisallow: /\\n"'
        self.assertEqual(self.config_text.count(old), 1, old)
        configmap_update(self.config_dir, self.config_text.replace(old, 'body: "reloaded from the ConfigMap\\n"'))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = harness.http1_request(self.http, "GET", "/robots.txt")
            if r.body == b"reloaded from the ConfigMap\n":
                break
            time.sleep(0.1)
        self.assertEqual(r.body, b"reloaded from the ConfigMap\n", "no reload after the ..data swap:\n" +
                         s.stderr()[-3000:])
        self.assertEqual(s.proc.poll(), None)

    def termination_checks(self, s):
        """SIGTERM as the kubelet sends it: /ready 503 at once, still serving during drain_delay, then exit 0 within
        drain_delay + timeouts.shutdown (the Deployment's grace period is longer)."""
        conf = self.config_text
        drain = int(re.search(r"\n  drain_delay: (\d+)s\n", conf).group(1))
        shutdown = int(re.search(r"\n    shutdown: (\d+)s\n", conf).group(1))
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        try:
            self.wait_status(s, self.admin, "/ready", 503, timeout=2)
            self.assertLess(time.monotonic() - t0, 2.0)
            self.assertEqual(harness.http1_request(self.http, "GET", "/health").status, 200)
            self.assertEqual(harness.http1_request(self.http, "GET", self.user).status, 200, "not serving while "
                             "draining")
        finally:
            rc = s.wait(drain + shutdown + 10)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0, "serve did not exit 0 after SIGTERM (%s):\n%s" % (
            "killed by signal %d" % -rc if rc < 0 else "exit %d" % rc, s.stderr()[-4000:]))
        self.assertGreaterEqual(elapsed, drain - 0.5, "exited before drain_delay")
        self.assertLess(elapsed, drain + shutdown + 5)


if __name__ == "__main__":
    harness.run_tests()
