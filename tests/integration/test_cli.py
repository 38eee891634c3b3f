"""test_cli.py: hydrant's command line: `check` on good and bad configs (exact FILE:LINE:COL: key.path: message
diagnostics), ${VAR} interpolation, environment overrides, HYDRANT_CONFIG, `version`, `--help`, usage errors."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import fixture, hydrant_bin, clean_env, run, write_file  # noqa: E402

DIAG = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<rest>.*)$")


def hydrant(*args, env=None, cwd=None):
    """Runs hydrant with `args` (cwd: the repository root unless given) and returns the CompletedProcess."""
    return run([hydrant_bin()] + list(args), env=env if env is not None else clean_env(), cwd=cwd or harness.REPO)


class CheckGood(unittest.TestCase):
    maxDiff = None

    def assert_ok(self, p, path):
        self.assertEqual(p.returncode, 0, "stdout:\n%s\nstderr:\n%s" % (p.stdout, p.stderr))
        self.assertTrue(p.stdout.startswith("%s: ok\n" % path), "stdout:\n" + p.stdout)
        self.assertIsNone(harness.sanitizer_report(p.stderr), p.stderr)

    def test_good_config_ok_and_summary(self):
        path = fixture("good.yaml")
        p = hydrant("check", "-c", path)
        self.assert_ok(p, path)
        lines = [l.strip() for l in p.stdout.splitlines()]
        norm = [re.sub(r"\s+", " ", l) for l in lines]
        self.assertEqual(norm, [
            "%s: ok" % path,
            "listeners:",
            "127.0.0.1:18080 plain (HTTP/1.1, h2c)",
            "threads: 2",
            "timeouts: handshake=10s read=15s write=15s idle=1m request=30s shutdown=20s",
            "limits: max_connections=10000 max_active_requests=256 max_request_body=1MiB http2.max_concurrent_streams=100",
            "middleware: none",
            "routes:",
            "GET,HEAD /health -> handler health",
            "GET,HEAD /plaintext -> handler plaintext",
            "GET,HEAD /json -> handler json",
            "GET,HEAD,DELETE /users/{id:int} -> static 200 application/json (11 bytes, 1 header)",
            "POST /teapot -> static 418 text/plain; charset=utf-8 (15 bytes)",
        ], p.stdout)
        self.assertEqual(p.stderr, "")

    def test_summary_tls_listener_and_threads_auto(self):
        d = harness.make_tempdir()
        text = harness.make_config([harness.plain_listener(18080), harness.tls_listener(18443, min_version="TLSv1.3")],
                                   threads="auto")
        path = write_file(d, "hydrant.yaml", text)
        p = hydrant("check", "-c", path)
        self.assert_ok(p, path)
        self.assertIn("\n  127.0.0.1:18443 tls (h2, HTTP/1.1; min TLSv1.3)\n", p.stdout)
        self.assertRegex(p.stdout, r"\nthreads: [1-9]\d* \(auto\)\n")

    def test_long_option_forms(self):
        path = fixture("good.yaml")
        self.assert_ok(hydrant("check", "--config", path), path)
        self.assert_ok(hydrant("check", "--config=" + path), path)

    def test_hydrant_config_env_used_without_c(self):
        path = fixture("good.yaml")
        p = hydrant("check", env=clean_env(HYDRANT_CONFIG=path))
        self.assert_ok(p, path)

    def test_c_wins_over_hydrant_config_env(self):
        good = fixture("good.yaml")
        p = hydrant("check", "-c", good, env=clean_env(HYDRANT_CONFIG=fixture("bad.yaml")))
        self.assert_ok(p, good)

    def test_default_is_conf_hydrant_yaml(self):
        # In a directory without conf/hydrant.yaml, the default path is used and named in the error.
        d = harness.make_tempdir()
        p = hydrant("check", cwd=d)
        self.assertEqual(p.returncode, 2, p)
        self.assertTrue(p.stderr.startswith("conf/hydrant.yaml: cannot read: No such file or directory\n"), p.stderr)
        # ... and with one there, it is the file checked
        os.mkdir(os.path.join(d, "conf"))
        with open(fixture("good.yaml")) as f:
            write_file(os.path.join(d, "conf"), "hydrant.yaml", f.read())
        p = hydrant("check", cwd=d)
        self.assert_ok(p, "conf/hydrant.yaml")

    def test_server_port_env_overrides_first_plain_listener(self):
        d = harness.make_tempdir()
        text = harness.make_config([harness.plain_listener(18080), harness.tls_listener(18443)])
        path = write_file(d, "hydrant.yaml", text)
        p = hydrant("check", "-c", path)
        self.assert_ok(p, path)
        self.assertIn("127.0.0.1:18080", p.stdout)
        self.assertIn("127.0.0.1:18443", p.stdout)
        p = hydrant("check", "-c", path, env=clean_env(SERVER_PORT="23456"))
        self.assert_ok(p, path)
        self.assertIn("127.0.0.1:23456", p.stdout)
        self.assertNotIn("18080", p.stdout)
        self.assertIn("127.0.0.1:18443", p.stdout)  # the TLS listener keeps its port

    def test_timeout_env_overrides(self):
        path = fixture("good.yaml")
        base = hydrant("check", "-c", path)
        self.assert_ok(base, path)
        p = hydrant("check", "-c", path, env=clean_env(SERVER_READ_TIMEOUT="7s", SERVER_WRITE_TIMEOUT="8s",
                                                       SERVER_IDLE_TIMEOUT="9m"))
        self.assert_ok(p, path)
        self.assertNotEqual(base.stdout, p.stdout)
        self.assertIn("\ntimeouts: handshake=10s read=7s write=8s idle=9m request=30s shutdown=20s\n", p.stdout)

    def test_bad_env_override_is_an_error(self):
        # the error points at the value in the file that the variable overrides
        path = fixture("good.yaml")
        for env, want in [
            ({"SERVER_PORT": "notaport"},
             '5:31: server.listen[0].port: SERVER_PORT="notaport": not a port number (1-65535)'),
            ({"SERVER_PORT": "0"}, '5:31: server.listen[0].port: SERVER_PORT="0": not a port number (1-65535)'),
            ({"SERVER_READ_TIMEOUT": "soon"},
             '6:36: server.timeouts.read: SERVER_READ_TIMEOUT="soon": not a duration (e.g. 15s, 1m30s, or a number '
             'of seconds)'),
        ]:
            with self.subTest(env=env):
                p = hydrant("check", "-c", path, env=clean_env(**env))
                self.assertEqual(p.returncode, 2, p)
                self.assertEqual(p.stderr, "%s:%s\nhydrant: 1 error in %s\n" % (path, want, path))
                self.assertEqual(p.stdout, "")

    def test_bare_seconds_and_empty_overrides(self):
        # a bare number in an override is seconds; an empty variable counts as unset
        path = fixture("good.yaml")
        p = hydrant("check", "-c", path, env=clean_env(SERVER_PORT="", SERVER_IDLE_TIMEOUT="90",
                                                       SERVER_READ_TIMEOUT="1500ms"))
        self.assert_ok(p, path)
        self.assertIn("\n  127.0.0.1:18080 plain (HTTP/1.1, h2c)\n", p.stdout)
        self.assertIn("\ntimeouts: handshake=10s read=1500ms write=15s idle=90s request=30s shutdown=20s\n", p.stdout)

    def test_zero_timeout_override_refused(self):
        path = fixture("good.yaml")
        p = hydrant("check", "-c", path, env=clean_env(SERVER_WRITE_TIMEOUT="0"))
        self.assertEqual(p.returncode, 2, p)
        self.assertEqual(p.stderr, '%s:6:48: server.timeouts.write: SERVER_WRITE_TIMEOUT="0": must be greater than 0\n'
                                   'hydrant: 1 error in %s\n' % (path, path))

    def test_server_port_without_plain_listener(self):
        d = harness.make_tempdir()
        text = harness.make_config([harness.tls_listener(18443)], threads=1)
        path = write_file(d, "hydrant.yaml", text)
        self.assert_ok(hydrant("check", "-c", path), path)
        p = hydrant("check", "-c", path, env=clean_env(SERVER_PORT="8081"))
        self.assertEqual(p.returncode, 2, p)
        # the error is at the server.listen value: make_config writes its first "- host:" on line 4, column 5
        self.assertEqual(p.stderr, '%s:4:5: server.listen: SERVER_PORT="8081": there is no plain (non-TLS) listener '
                                   'to override\nhydrant: 1 error in %s\n' % (path, path))

    def test_relative_tls_paths_resolve_beside_the_config(self):
        d = harness.make_tempdir()
        cert, key = harness.tls_cert()
        os.mkdir(os.path.join(d, "tls"))
        for src, name in ((cert, "c.pem"), (key, "k.pem")):
            with open(src) as f:
                write_file(os.path.join(d, "tls"), name, f.read())
        text = harness.make_config([{"host": "127.0.0.1", "port": 18443,
                                     "tls": {"certificate": "tls/c.pem", "key": "tls/k.pem"}}], threads=1)
        path = write_file(d, "hydrant.yaml", text)
        self.assert_ok(hydrant("check", "-c", path, cwd="/"), path)  # the working directory does not matter

    def test_missing_tls_files(self):
        d = harness.make_tempdir()
        text = ("server:\n  threads: 1\n  listen:\n    - host: 127.0.0.1\n      port: 18443\n"
                "      tls: {certificate: /nonexistent/cert.pem, key: /nonexistent/key.pem}\n"
                "routes:\n  - path: /health\n    handler: health\n")
        path = write_file(d, "hydrant.yaml", text)
        p = hydrant("check", "-c", path)
        self.assertEqual(p.returncode, 2, p)
        self.assertEqual(p.stderr, "".join("%s:%s\n" % (path, m) for m in [
            '6:26: server.listen[0].tls.certificate: cannot read "/nonexistent/cert.pem": No such file or directory',
            '6:54: server.listen[0].tls.key: cannot read "/nonexistent/key.pem": No such file or directory',
        ]) + "hydrant: 2 errors in %s\n" % path)

    def test_env_default_interpolation(self):
        path = fixture("env-default.yaml")
        p = hydrant("check", "-c", path, env=clean_env(HYDRANT_IT_PORT=None))
        self.assert_ok(p, path)
        self.assertIn("127.0.0.1:18181", p.stdout)
        p = hydrant("check", "-c", path, env=clean_env(HYDRANT_IT_PORT="18282"))
        self.assert_ok(p, path)
        self.assertIn("127.0.0.1:18282", p.stdout)
        self.assertNotIn("18181", p.stdout)


class CheckBad(unittest.TestCase):
    maxDiff = None

    def diags(self, p, path):
        """The FILE:LINE:COL lines of stderr as (line, col, rest), after asserting exit 2 and the summary line."""
        self.assertEqual(p.returncode, 2, "stdout:\n%s\nstderr:\n%s" % (p.stdout, p.stderr))
        self.assertNotIn(": ok", p.stdout)
        self.assertIsNone(harness.sanitizer_report(p.stderr), p.stderr)
        lines = p.stderr.rstrip("\n").split("\n")
        m = re.fullmatch(r"hydrant: (\d+) errors? in (.*)", lines[-1])
        self.assertTrue(m, "last stderr line is not the error count:\n" + p.stderr)
        self.assertEqual(m.group(2), path)
        out = []
        for l in lines[:-1]:
            d = DIAG.match(l)
            self.assertTrue(d, "stderr line is not FILE:LINE:COL: ...: %r" % l)
            self.assertEqual(d.group("file"), path)
            out.append((int(d.group("line")), int(d.group("col")), d.group("rest")))
        self.assertEqual(int(m.group(1)), len(out), "count line disagrees with the messages:\n" + p.stderr)
        return out

    def test_bad_config_reports_every_error(self):
        path = fixture("bad.yaml")
        p = hydrant("check", "-c", path)
        got = self.diags(p, path)
        # (line, col, key path, a pattern the message must match); positions are 1-based, read off bad.yaml
        expected = [
            (3, 3, "server.bogus", r"unknown key"),
            (7, 7, "server.listen[0].prot", r"unknown key.*did you mean \"port\""),
            (9, 11, "server.timeouts.read", r"\"15 parsecs\""),
            (12, 14, "routes[0].handler", r"unknown handler \"healthz\".*did you mean \"health\""),
            (13, 11, "routes[1].path", r"\{1d\}"),
        ]
        for line, col, key, pattern in expected:
            hits = [r for (l, c, r) in got if (l, c) == (line, col) and r.startswith(key + ": ")]
            self.assertEqual(len(hits), 1, "want one %s:%d:%d: %s: ... in:\n%s" % (path, line, col, key, p.stderr))
            self.assertRegex(hits[0], pattern)
        self.assertEqual(len(got), len(expected), "unexpected extra errors:\n" + p.stderr)
        # and the exact text, in file order
        self.assertEqual(p.stderr, "".join("%s:%s\n" % (path, m) for m in [
            '3:3: server.bogus: unknown key "bogus"',
            '7:7: server.listen[0].prot: unknown key "prot" (did you mean "port"?)',
            '9:11: server.timeouts.read: expected a duration (e.g. 250ms, 5s, 1m30s), got "15 parsecs"',
            '12:14: routes[0].handler: unknown handler "healthz" (did you mean "health"?)',
            '13:11: routes[1].path: bad parameter name in "{1d}" (letters, digits and "_", not starting with a digit)',
        ]) + "hydrant: 5 errors in %s\n" % path)
        self.assertEqual(p.stdout, "")

    def test_unset_variable_named(self):
        path = fixture("env-unset.yaml")
        p = hydrant("check", "-c", path, env=clean_env(HYDRANT_IT_UNSET_PORT=None))
        got = self.diags(p, path)
        self.assertEqual(len(got), 1, p.stderr)
        line, col, rest = got[0]
        self.assertEqual((line, col), (5, 13), p.stderr)
        self.assertTrue(rest.startswith("server.listen[0].port: "), p.stderr)
        self.assertEqual(rest, "server.listen[0].port: environment variable HYDRANT_IT_UNSET_PORT is not set")
        # set, it is fine
        # set but empty counts as unset
        p = hydrant("check", "-c", path, env=clean_env(HYDRANT_IT_UNSET_PORT=""))
        self.assertEqual(self.diags(p, path), got)
        p = hydrant("check", "-c", path, env=clean_env(HYDRANT_IT_UNSET_PORT="18383"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("127.0.0.1:18383", p.stdout)

    def test_nonexistent_file(self):
        path = os.path.join(harness.make_tempdir(), "no-such.yaml")
        p = hydrant("check", "-c", path)
        self.assertEqual(p.returncode, 2, p)
        self.assertEqual(p.stderr, "%s: cannot read: No such file or directory\nhydrant: 1 error in %s\n" % (path, path))
        self.assertEqual(p.stdout, "")

    def test_yaml_syntax_error(self):
        d = harness.make_tempdir()
        path = write_file(d, "broken.yaml", "server:\n  threads: [1, 2\nroutes: []\n")
        p = hydrant("check", "-c", path)
        got = self.diags(p, path)
        self.assertEqual(got, [(3, 7, "yaml: did not find expected ',' or ']'")], p.stderr)

    def test_serve_reports_errors_like_check(self):
        path = fixture("bad.yaml")
        c = hydrant("check", "-c", path)
        s = hydrant("serve", "-c", path)
        self.assertEqual(s.returncode, 2, s)
        self.assertEqual(s.stderr, c.stderr)
        self.assertNotIn("listening", s.stderr)


class Usage(unittest.TestCase):
    def test_version(self):
        for arg in ("version", "--version"):
            p = hydrant(arg)
            self.assertEqual(p.returncode, 0, p)
            self.assertRegex(p.stdout, r"^hydrant 0\.1\.0 \(libh2o 2\.2\.5, OpenSSL \d+\.\d+\.\d+[^,]*, "
                                       r"libyaml \d+\.\d+\.\d+, yajl \d+\.\d+\.\d+\)\n$")

    def test_help_for_each_command(self):
        for args, usage in [(["--help"], "usage: hydrant <command>"), (["help"], "usage: hydrant <command>"),
                            (["-h"], "usage: hydrant <command>"),
                            (["serve", "--help"], "usage: hydrant serve"), (["serve", "-h"], "usage: hydrant serve"),
                            (["check", "--help"], "usage: hydrant check"), (["check", "-h"], "usage: hydrant check"),
                            (["version", "--help"], "usage: hydrant version"),
                            (["migrate", "--help"], "usage: hydrant migrate")]:
            with self.subTest(args=args):
                p = hydrant(*args)
                self.assertEqual(p.returncode, 0, p)
                self.assertTrue(p.stdout.startswith(usage), p.stdout)
                self.assertEqual(p.stderr, "")

    def test_serve_help_does_not_serve(self):
        # --help wins even with a config that would serve
        p = hydrant("serve", "-c", fixture("good.yaml"), "--help")
        self.assertEqual(p.returncode, 0, p)
        self.assertTrue(p.stdout.startswith("usage: hydrant serve"))

    def test_no_command(self):
        p = hydrant()
        self.assertEqual(p.returncode, 2, p)
        self.assertIn("usage: hydrant", p.stderr)

    def test_unknown_command(self):
        p = hydrant("frobnicate")
        self.assertEqual(p.returncode, 2, p)
        self.assertIn("frobnicate", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_unknown_argument(self):
        for args in (["check", "--frob"], ["serve", "--frob"], ["version", "--frob"], ["check", "extra"]):
            with self.subTest(args=args):
                p = hydrant(*args)
                self.assertEqual(p.returncode, 2, p)
                self.assertIn(args[1], p.stderr)
                self.assertEqual(p.stdout, "")

    def test_c_without_argument(self):
        for cmd in ("check", "serve"):
            with self.subTest(cmd=cmd):
                p = hydrant(cmd, "-c")
                self.assertEqual(p.returncode, 2, p)
                self.assertIn("-c", p.stderr)
                self.assertEqual(p.stdout, "")


if __name__ == "__main__":
    harness.run_tests()
