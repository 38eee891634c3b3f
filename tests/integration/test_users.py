"""test_users.py: the users API (h2o-handlers/users.c) against a real PostgreSQL, over HTTP/1.1 and h2c: get, create,
update, delete, keyset pagination, the profile fan-out, every validation error (400 invalid_json / invalid_field /
invalid_parameter, 409, 413, 415), HEAD, /ready, HTTP/1.1 pipelining and 200 requests on one HTTP/2 connection.

Needs HYDRANT_TEST_DATABASE_URL (tools/dev test); without it every test is skipped. The file makes its own database
(hy_it_users_<pid>), migrates it, seeds 250 users with tools/seed, and drops it at the end. Users a test creates are
deleted after it, so the seeded 250 are all there is when a test starts."""

import calendar
import json
import os
import re
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import dbharness  # noqa: E402
from dbharness import PROTOCOLS, needs_db  # noqa: E402

JSON = "application/json"
CT_JSON = {"Content-Type": "application/json"}
SEEDED = 250
MAX_BODY = 4096  # server.limits.max_request_body of the server under test
CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
USER_SQL = ("SELECT id, name, email, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
            "FROM users")


def email_of_length(n, tag):
    """A unique plausible address of exactly n bytes: a 64-byte local part, then labels of at most 63 bytes and .com."""
    local = ("it-%s-%s" % (tag, uuid.uuid4().hex) + "x" * 64)[:64]
    rest = n - len(local) - 1 - len(".com")  # bytes for the labels and the dots between them
    labels = []
    while rest > 0:
        if rest <= 63:
            labels.append("d" * rest)
            rest = 0
        elif rest == 64:
            labels.append("d" * 62)
            rest -= 63
        else:
            labels.append("d" * 63)
            rest -= 64
    e = local + "@" + ".".join(labels) + ".com"
    assert len(e.encode()) == n, (len(e), n)
    return e


@needs_db
class Users(unittest.TestCase):
    maxDiff = None
    db = None
    server = None

    @classmethod
    def setUpClass(cls):
        cls.db = dbharness.prepare_database("users", seed_users=SEEDED)
        try:
            cls.server, cls.port = dbharness.start_db_server(
                cls.db.url, threads=2, limits={"max_request_body": "4KiB"},
                pool={"max_open": 8, "acquire_timeout": "5s"})
            if not dbharness.wait_pool_ready(cls.port, 10):
                raise AssertionError("/ready never said 200\n" + cls.server.describe())
        except BaseException:
            cls.db.drop()
            raise
        cls.seed_ids = [int(r[0]) for r in cls.db.rows("SELECT id FROM users ORDER BY id")]

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.server is not None:
                # the exit status with a database is test_db_faults' business (test_signals_with_a_database)
                try:
                    cls.server.terminate()
                    cls.server.assert_no_sanitizer_report()
                finally:
                    cls.server.kill()
        finally:
            if cls.db is not None:
                cls.db.drop()

    def tearDown(self):
        s = self.server
        if not s.alive():
            self.fail("the server died during this test\n" + s.describe())
        report = harness.sanitizer_report(s.stderr())
        if report:
            self.fail("sanitizer report after this test: %s\n%s" % (report, s.describe()))
        # only the seeded users stay (orders and preferences of the others go by ON DELETE CASCADE)
        self.db.sql("DELETE FROM users WHERE email NOT LIKE 'seed-%@example.com'")

    # ---- helpers ----

    def req(self, proto, method, path, body=None, headers=None):
        return dbharness.request(proto, self.port, method, path, body=body, headers=headers)

    def post(self, proto, obj, headers=CT_JSON, path="/api/v1/users", ascii_only=False):
        body = obj if isinstance(obj, (str, bytes)) else json.dumps(obj, ensure_ascii=ascii_only)
        return self.req(proto, "POST", path, body=body, headers=headers)

    def put(self, proto, uid, obj, headers=CT_JSON):
        body = obj if isinstance(obj, (str, bytes)) else json.dumps(obj, ensure_ascii=False)
        return self.req(proto, "PUT", "/api/v1/users/%s" % uid, body=body, headers=headers)

    def email(self, tag, proto="x"):
        return "it-%s-%s-%s@example.com" % (tag, proto.replace("/", ""), uuid.uuid4().hex[:8])

    def assert_json(self, r, status):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("content-type"), JSON, r)
        self.assertEqual(r.header("content-length"), str(len(r.body)), r)
        self.assertEqual(r.header("server"), "hydrant", r)
        return r.json()

    def assert_error(self, r, status, code, mentions=None):
        doc = self.assert_json(r, status)
        self.assertEqual(doc.get("error"), code, r)
        self.assertIsInstance(doc.get("message"), str, r)
        if mentions is not None:
            self.assertIn(mentions, doc["message"], r)
        return doc

    def assert_user_doc(self, doc, uid=None, name=None, email=None):
        self.assertEqual(set(doc), {"id", "name", "email", "created_at"}, doc)
        self.assertIsInstance(doc["id"], int, doc)
        if uid is not None:
            self.assertEqual(doc["id"], uid, doc)
        if name is not None:
            self.assertEqual(doc["name"], name, doc)
        if email is not None:
            self.assertEqual(doc["email"], email, doc)
        self.assertRegex(doc["created_at"], CREATED_AT)

    def sql_user(self, uid):
        rows = self.db.rows(USER_SQL + " WHERE id = %d" % int(uid))
        if not rows:
            return None
        i, n, e, c = rows[0]
        return {"id": int(i), "name": n, "email": e, "created_at": c}

    def create(self, proto, name, email, ascii_only=False):
        r = self.post(proto, {"name": name, "email": email}, ascii_only=ascii_only)
        doc = self.assert_json(r, 201)
        self.assert_user_doc(doc)
        return doc, r

    # ---- GET /api/v1/users/{id} ----

    def test_get_user(self):
        uid = self.seed_ids[41]
        want = self.sql_user(uid)
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                r = self.req(proto, "GET", "/api/v1/users/%d" % uid)
                doc = self.assert_json(r, 200)
                self.assertEqual(r.version, "2" if proto == "h2c" else "1.1")
                self.assert_user_doc(doc)
                self.assertEqual(doc, want)

    def test_created_at_is_utc_microseconds_now(self):
        doc, _ = self.create("http/1.1", "Clock", self.email("clock"))
        ts = calendar.timegm(time.strptime(doc["created_at"][:19], "%Y-%m-%dT%H:%M:%S"))
        self.assertLess(abs(ts - time.time()), 300, doc)

    def test_get_missing_user(self):
        for proto in PROTOCOLS:
            for uid in ("0", "999999", "9223372036854775807", "007777777"):
                with self.subTest(proto=proto, id=uid):
                    self.assert_error(self.req(proto, "GET", "/api/v1/users/" + uid), 404, "user_not_found")

    def test_non_numeric_id_is_a_router_404(self):
        for proto in PROTOCOLS:
            for uid in ("abc", "-1", "1.5", "9223372036854775808", "1e3"):
                with self.subTest(proto=proto, id=uid):
                    self.assert_error(self.req(proto, "GET", "/api/v1/users/" + uid), 404, "not_found")
            with self.subTest(proto=proto, path="profile"):
                self.assert_error(self.req(proto, "GET", "/api/v1/users/x/profile"), 404, "not_found")

    def test_methods_not_allowed(self):
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                self.assert_error(self.req(proto, "PATCH", "/api/v1/users/1", body="{}", headers=CT_JSON), 405,
                                  "method_not_allowed")
                self.assert_error(self.req(proto, "POST", "/api/v1/users/1", body="{}", headers=CT_JSON), 405,
                                  "method_not_allowed")
                self.assert_error(self.req(proto, "DELETE", "/api/v1/users"), 405, "method_not_allowed")

    def test_head_user(self):
        uid = self.seed_ids[7]
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                g = self.req(proto, "GET", "/api/v1/users/%d" % uid)
                self.assertEqual(g.status, 200, g)
                h = self.req(proto, "HEAD", "/api/v1/users/%d" % uid)
                self.assertEqual(h.status, 200, h)
                self.assertEqual(h.body, b"", h)
                self.assertEqual(h.header("content-type"), JSON, h)
                self.assertEqual(h.header("content-length"), str(len(g.body)), (g, h))
                m = self.req(proto, "HEAD", "/api/v1/users/999999")
                self.assertEqual((m.status, m.body), (404, b""), m)
                self.assertEqual(m.header("content-type"), JSON, m)

    # ---- POST /api/v1/users ----

    def test_create_round_trip(self):
        names = ["Alice Example", "Zoë Ñandú-Łukasz", "李小龍", "🚀 launch 🚀", "e\u0301te\u0301 (combining)",
                 "quote \" backslash \\ slash /", "tab\tinside", "Ωμέγα"]
        # raw UTF-8, and \uXXXX escapes (surrogate pairs for the emoji)
        cases = [(proto, name, esc) for proto in PROTOCOLS for name in names for esc in (False, True)]
        for proto, name, ascii_only in cases:
            with self.subTest(proto=proto, name=name, escaped=ascii_only):
                email = self.email("rt", proto)
                doc, r = self.create(proto, name, email, ascii_only)
                self.assert_user_doc(doc, name=name, email=email)
                self.assertEqual(r.header("location"), "/api/v1/users/%d" % doc["id"], r)
                g = self.req(proto, "GET", r.header("location"))
                self.assertEqual(self.assert_json(g, 200), doc)
                self.assertEqual(self.sql_user(doc["id"]), doc)

    def test_create_trims_ascii_whitespace(self):
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                email = self.email("trim", proto)
                doc, _ = self.create(proto, " \t\r\n  Trimmed Name \n\t ", "  %s\t\n" % email)
                self.assertEqual((doc["name"], doc["email"]), ("Trimmed Name", email))
                self.assertEqual(self.sql_user(doc["id"])["name"], "Trimmed Name")
                # inner whitespace stays; non-ASCII spaces are not trimmed
                doc, _ = self.create(proto, "a  b\u00a0", self.email("trim2", proto))
                self.assertEqual(doc["name"], "a  b\u00a0")

    def test_create_ignores_unknown_fields(self):
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                email = self.email("extra", proto)
                r = self.post(proto, {"id": 1, "created_at": "1999-01-01T00:00:00Z", "name": "Extra",
                                      "nested": {"name": 5, "email": [1]}, "email": email, "admin": True,
                                      "list": [{"name": None}]})
                doc = self.assert_json(r, 201)
                self.assert_user_doc(doc, name="Extra", email=email)
                self.assertNotEqual(doc["id"], 1)
                self.assertFalse(doc["created_at"].startswith("1999"), doc)

    def test_name_length_limits(self):
        cases = [("a" * 100, 201), ("a" * 101, 400), ("é" * 100, 201), ("é" * 101, 400), ("🚀" * 100, 201),
                 ("🚀" * 101, 400), ("  " + "b" * 100 + "  ", 201), ("x", 201), ("", 400), ("   \t\n ", 400)]
        for proto in PROTOCOLS:
            for name, status in cases:
                with self.subTest(proto=proto, name=name[:8], chars=len(name)):
                    r = self.post(proto, {"name": name, "email": self.email("len", proto)})
                    if status == 201:
                        doc = self.assert_json(r, 201)
                        self.assertEqual(doc["name"], name.strip())
                        self.assertEqual(self.sql_user(doc["id"])["name"], name.strip())
                    else:
                        self.assert_error(r, 400, "invalid_field", '"name"')

    def test_email_length_limits(self):
        for proto in PROTOCOLS:
            tag = proto.replace("/", "")
            with self.subTest(proto=proto, bytes=254):
                e = email_of_length(254, tag)
                doc, _ = self.create(proto, "Long Mail", e)
                self.assertEqual(doc["email"], e)
                self.assertEqual(self.sql_user(doc["id"])["email"], e)
            with self.subTest(proto=proto, bytes=255):
                r = self.post(proto, {"name": "Too Long", "email": email_of_length(255, tag)})
                self.assert_error(r, 400, "invalid_field", '"email"')

    def test_implausible_emails(self):
        bad = ["plain", "a@b", "@example.com", "a@@example.com", "a@b@example.com", "a b@example.com",
               "a@example", "a..b@example.com", ".a@example.com", "a.@example.com", "a@-example.com",
               "a@example.com.", "a@.example.com", "x" * 65 + "@example.com", "a<b>@example.com", "a@exa,mple.com",
               "", "  "]
        for proto in PROTOCOLS:
            for e in bad:
                with self.subTest(proto=proto, email=e[:20]):
                    self.assert_error(self.post(proto, {"name": "Bad Mail", "email": e}), 400, "invalid_field",
                                      '"email"')
        self.assertEqual(self.db.sql("SELECT count(*) FROM users WHERE name = 'Bad Mail'"), "0")

    def test_malformed_json(self):
        bodies = ['{"name": "a", "email": ', "{", "nope", '{"name":"a","email":"b@c.de"} trailing',
                  '{"name":"a","email":"b@c.de"}{"name":"a"}', "", "[]", '"string"', "42", "null",
                  '{"name":"a",}', "{'name':'a'}", b'{"name":"\xff\xfe","email":"u@example.com"}',
                  b'{"name":"\xc3","email":"u@example.com"}']
        for proto in PROTOCOLS:
            for b in bodies:
                with self.subTest(proto=proto, body=b[:30]):
                    self.assert_error(self.post(proto, b), 400, "invalid_json")
        self.assertEqual(self.db.sql("SELECT count(*) FROM users WHERE email NOT LIKE 'seed-%'"), "0")

    def test_missing_or_mistyped_fields(self):
        cases = [({"email": "m@example.com"}, "name"), ({"name": "No Mail"}, "email"), ({}, "name"),
                 ({"name": 5, "email": "m@example.com"}, "name"), ({"name": None, "email": "m@example.com"}, "name"),
                 ({"name": "N", "email": True}, "email"), ({"name": ["N"], "email": "m@example.com"}, "name"),
                 ({"name": {"first": "N"}, "email": "m@example.com"}, "name"), ({"name": "N", "email": 1.5}, "email"),
                 ({"x": {"name": "N", "email": "m@example.com"}}, "name")]
        for proto in PROTOCOLS:
            for obj, field in cases:
                with self.subTest(proto=proto, body=obj):
                    self.assert_error(self.post(proto, obj), 400, "invalid_field", '"%s"' % field)

    def test_nul_in_name_is_rejected(self):
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                r = self.post(proto, '{"name":"a\\u0000b","email":"%s"}' % self.email("nul", proto))
                self.assert_error(r, 400, "invalid_field", '"name"')
                r = self.post(proto, '{"name":"ok","email":"a\\u0000b@example.com"}')
                self.assert_error(r, 400, "invalid_field", '"email"')

    def test_escaped_unicode_round_trips(self):
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                email = self.email("esc", proto)
                r = self.post(proto, '{"name":"\\u00e9t\\u00e9 \\ud83d\\ude80","email":"%s"}' % email)
                doc = self.assert_json(r, 201)
                self.assertEqual(doc["name"], "été 🚀")

    def test_lone_surrogate_escapes_are_rejected(self):
        # "\udc00" (a lone low surrogate) and "\ud800" (a lone high surrogate) are not characters: a 400, not a 500
        # from PostgreSQL ("invalid byte sequence for encoding UTF8: 0xed 0xb0 0x80") nor a silent "?".
        for proto in PROTOCOLS:
            for esc in ("\\udc00", "\\ud800", "x\\ud800y", "\\ud800\\u0041"):
                with self.subTest(proto=proto, name=esc):
                    r = self.post(proto, '{"name":"%s","email":"%s"}' % (esc, self.email("sur", proto)))
                    self.assertIn(r.status, (400,), "POST name=%r answered %d %r (expected 400 invalid_json or "
                                                    "invalid_field)" % (esc, r.status, r.body))

    def test_content_type_must_be_json(self):
        for proto in PROTOCOLS:
            for ct in (None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx", "json",
                       "text/json"):
                with self.subTest(proto=proto, content_type=ct):
                    obj = {"name": "CT", "email": self.email("ct", proto)}
                    headers = {"Content-Type": ct} if ct else {}
                    self.assert_error(self.post(proto, obj, headers=headers), 415, "unsupported_media_type")
                    self.assert_error(self.put(proto, self.seed_ids[0], obj, headers=headers), 415,
                                      "unsupported_media_type")
            for ct in ("application/json; charset=utf-8", "APPLICATION/JSON", "application/merge-patch+json",
                       "application/vnd.api+json;charset=utf-8"):
                with self.subTest(proto=proto, content_type=ct):
                    r = self.post(proto, {"name": "CT ok", "email": self.email("ct", proto)},
                                  headers={"Content-Type": ct})
                    self.assert_json(r, 201)
        self.assertEqual(self.sql_user(self.seed_ids[0])["name"], "Seed User 1")

    def body_too_large(self, proto):
        pad = "p" * (MAX_BODY + 100)
        r = self.post(proto, {"name": "Big", "email": self.email("big", proto), "pad": pad})
        self.assertEqual(r.status, 413, r)
        # the body just under the limit is served
        obj = {"name": "Small", "email": self.email("small", proto), "pad": ""}
        obj["pad"] = "p" * (MAX_BODY - len(json.dumps(obj)))
        self.assertEqual(len(json.dumps(obj)), MAX_BODY)
        self.assert_json(self.post(proto, obj), 201)
        self.assertEqual(self.db.sql("SELECT count(*) FROM users WHERE name = 'Big'"), "0")

    def test_body_too_large_http1(self):
        self.body_too_large("http/1.1")

    def test_body_too_large_h2c(self):
        # HTTP/2 too answers 413 (not a REFUSED_STREAM reset), as test_routing's test_413_too_large_body_h2c asks.
        self.body_too_large("h2c")

    def test_duplicate_email(self):
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                email = self.email("dup", proto)
                first, _ = self.create(proto, "First", email)
                self.assert_error(self.post(proto, {"name": "Second", "email": email}), 409, "email_taken")
                self.assert_error(self.post(proto, {"name": "Third", "email": "  %s " % email}), 409, "email_taken")
                self.assert_error(self.post(proto, {"name": "Seed", "email": "seed-3@example.com"}), 409,
                                  "email_taken")
                rows = self.db.rows("SELECT id, name FROM users WHERE email = '%s'" % email)
                self.assertEqual(rows, [[str(first["id"]), "First"]])

    # ---- PUT /api/v1/users/{id} ----

    def test_update(self):
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                doc, _ = self.create(proto, "Before", self.email("upd", proto))
                new_email = self.email("upd2", proto)
                r = self.put(proto, doc["id"], {"name": "  After ✓ ", "email": new_email, "ignored": 1})
                upd = self.assert_json(r, 200)
                self.assertEqual(upd, {"id": doc["id"], "name": "After ✓", "email": new_email,
                                       "created_at": doc["created_at"]})
                self.assertEqual(self.assert_json(self.req(proto, "GET", "/api/v1/users/%d" % doc["id"]), 200), upd)
                self.assertEqual(self.sql_user(doc["id"]), upd)
                # keeping one's own email is fine
                r = self.put(proto, doc["id"], {"name": "Again", "email": new_email})
                self.assertEqual(self.assert_json(r, 200)["name"], "Again")

    def test_update_errors(self):
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                doc, _ = self.create(proto, "Victim", self.email("upde", proto))
                uid = doc["id"]
                self.assert_error(self.put(proto, 999999, {"name": "Ghost", "email": self.email("g", proto)}), 404,
                                  "user_not_found")
                self.assert_error(self.put(proto, uid, {"name": "Thief", "email": "seed-1@example.com"}), 409,
                                  "email_taken")
                self.assert_error(self.put(proto, uid, {"name": "a" * 101, "email": doc["email"]}), 400,
                                  "invalid_field", '"name"')
                self.assert_error(self.put(proto, uid, {"name": "N", "email": "nope"}), 400, "invalid_field",
                                  '"email"')
                self.assert_error(self.put(proto, uid, {"name": "N"}), 400, "invalid_field", '"email"')
                self.assert_error(self.put(proto, uid, "{bad"), 400, "invalid_json")
                self.assert_error(self.req(proto, "PUT", "/api/v1/users/abc", body="{}", headers=CT_JSON), 404,
                                  "not_found")
                self.assertEqual(self.sql_user(uid), doc)

    # ---- DELETE /api/v1/users/{id} ----

    def test_delete(self):
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                doc, _ = self.create(proto, "Doomed", self.email("del", proto))
                uid = doc["id"]
                self.db.sql("INSERT INTO orders (user_id, total_cents) VALUES (%d, 100), (%d, 200);"
                            "INSERT INTO preferences (user_id, data) VALUES (%d, '{}')" % (uid, uid, uid))
                r = self.req(proto, "DELETE", "/api/v1/users/%d" % uid)
                self.assertEqual((r.status, r.body), (204, b""), r)
                self.assertIn(r.header("content-length"), (None, "0"), r)
                self.assert_error(self.req(proto, "GET", "/api/v1/users/%d" % uid), 404, "user_not_found")
                self.assert_error(self.req(proto, "GET", "/api/v1/users/%d/profile" % uid), 404, "user_not_found")
                self.assert_error(self.req(proto, "DELETE", "/api/v1/users/%d" % uid), 404, "user_not_found")
                self.assertEqual(self.db.sql("SELECT (SELECT count(*) FROM orders WHERE user_id = %d) + "
                                             "(SELECT count(*) FROM preferences WHERE user_id = %d)" % (uid, uid)), "0")
                self.assert_error(self.req(proto, "DELETE", "/api/v1/users/9223372036854775807"), 404,
                                  "user_not_found")

    # ---- GET /api/v1/users (keyset pagination) ----

    def list_page(self, proto, query=""):
        r = self.req(proto, "GET", "/api/v1/users" + query)
        doc = self.assert_json(r, 200)
        self.assertEqual(set(doc), {"users", "next"}, doc)
        for u in doc["users"]:
            self.assert_user_doc(u)
        return doc

    def test_list_default_page(self):
        self.assertEqual(len(self.seed_ids), SEEDED)
        want = [self.sql_user(i) for i in self.seed_ids[:20]]
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                doc = self.list_page(proto)
                self.assertEqual(doc["users"], want)
                self.assertEqual(doc["next"], str(self.seed_ids[19]))
                doc = self.list_page(proto, "?limit=1&after=%d" % self.seed_ids[5])
                self.assertEqual(doc, {"users": [self.sql_user(self.seed_ids[6])], "next": str(self.seed_ids[6])})
                doc = self.list_page(proto, "?limit=%31%30")  # percent-encoded "10"
                self.assertEqual(len(doc["users"]), 10)
                doc = self.list_page(proto, "?after=%d" % self.seed_ids[-1])
                self.assertEqual(doc, {"users": [], "next": None})
                doc = self.list_page(proto, "?limit=5&after=9223372036854775807")
                self.assertEqual(doc, {"users": [], "next": None})

    def test_keyset_pagination_walks_every_user_once(self):
        self.assertEqual(self.db.sql("SELECT count(*) FROM users"), str(SEEDED))
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                seen, pages, after = [], [], None
                for _ in range(10):  # bounded: 3 pages expected
                    doc = self.list_page(proto, "?limit=100" + ("" if after is None else "&after=%s" % after))
                    ids = [u["id"] for u in doc["users"]]
                    pages.append(len(ids))
                    seen += ids
                    if doc["next"] is None:
                        break
                    self.assertIsInstance(doc["next"], str, doc["next"])
                    self.assertEqual(doc["next"], str(ids[-1]))
                    after = doc["next"]
                self.assertEqual(pages, [100, 100, 50])
                self.assertEqual(seen, self.seed_ids)
                self.assertEqual(len(set(seen)), SEEDED)

    def test_pagination_exact_multiple_ends_with_null(self):
        # 250 users, limit 50: the fifth page is full and its next must be null (the handler fetches limit+1 rows)
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                after, pages = 0, []
                for _ in range(10):
                    doc = self.list_page(proto, "?limit=50&after=%d" % after)
                    pages.append(len(doc["users"]))
                    if doc["next"] is None:
                        break
                    after = int(doc["next"])
                self.assertEqual(pages, [50] * 5)

    def test_list_invalid_parameters(self):
        cases = [("limit", "0"), ("limit", "101"), ("limit", "-1"), ("limit", "abc"), ("limit", ""), ("limit", "1.5"),
                 ("limit", "%2B5"), ("limit", "5x"), ("limit", "1e2"), ("limit", "99999999999999999999999999999999"),
                 ("after", "-1"), ("after", "x"), ("after", ""), ("after", "1.0"), ("after", "%20")]
        for proto in PROTOCOLS:
            for name, value in cases:
                with self.subTest(proto=proto, **{name: value}):
                    r = self.req(proto, "GET", "/api/v1/users?%s=%s" % (name, value))
                    self.assert_error(r, 400, "invalid_parameter", '"%s"' % name)

    def test_list_after_beyond_int64_is_rejected(self):
        # The message of a bad ?after= says "must be an integer from 0 to 9223372036854775807"; 2^64+ is not one.
        for proto in PROTOCOLS:
            for value in ("9223372036854775808", "99999999999999999999"):
                with self.subTest(proto=proto, after=value):
                    r = self.req(proto, "GET", "/api/v1/users?after=" + value)
                    self.assert_error(r, 400, "invalid_parameter", '"after"')

    # ---- GET /api/v1/users/{id}/profile ----

    def expected_orders(self, uid):
        rows = self.db.rows("SELECT id, total_cents, status, to_char(created_at AT TIME ZONE 'UTC', "
                            "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM orders WHERE user_id = %d "
                            "ORDER BY created_at DESC, id DESC LIMIT 10" % uid)
        return [{"id": int(i), "total_cents": int(t), "status": s, "created_at": c} for i, t, s, c in rows]

    def test_profile_ten_newest_orders(self):
        doc, _ = self.create("http/1.1", "Shopper", self.email("prof"))
        uid = doc["id"]
        # 14 orders: distinct times, two pairs with equal created_at (id DESC breaks the tie), one in the future
        self.db.sql(
            "INSERT INTO orders (user_id, total_cents, status, created_at) SELECT %d, k * 100, "
            "(ARRAY['pending','paid','shipped','delivered','cancelled'])[1 + k %% 5], "
            "timestamptz '2024-03-01 12:00:00.123456+00' + (k / 2) * interval '1 hour 0.5 second' "
            "FROM generate_series(1, 12) k;"
            "INSERT INTO orders (user_id, total_cents, created_at) VALUES "
            "(%d, 9223372036854775807, now() + interval '1 day'), (%d, 0, '1970-01-01Z');"
            "INSERT INTO preferences (user_id, data) VALUES (%d, '{\"theme\":\"dark\",\"n\":[1,2.5,null],"
            "\"s\":\"é\\\"\"}')" % (uid, uid, uid, uid))
        want_orders = self.expected_orders(uid)
        self.assertEqual(len(want_orders), 10)
        prefs = json.loads(self.db.sql("SELECT data::text FROM preferences WHERE user_id = %d" % uid))
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                r = self.req(proto, "GET", "/api/v1/users/%d/profile" % uid)
                p = self.assert_json(r, 200)
                self.assertEqual(set(p), {"user", "orders", "preferences"}, p)
                self.assertEqual(p["user"], doc)
                self.assertEqual(p["orders"], want_orders)
                self.assertEqual(p["preferences"], prefs)
                times = [o["created_at"] for o in p["orders"]]
                self.assertEqual(times, sorted(times, reverse=True))

    def test_profile_of_seeded_users(self):
        for uid in (self.seed_ids[0], self.seed_ids[1], self.seed_ids[123], self.seed_ids[-1]):
            want_orders = self.expected_orders(uid)
            prefs = json.loads(self.db.sql("SELECT data::text FROM preferences WHERE user_id = %d" % uid))
            for proto in PROTOCOLS:
                with self.subTest(proto=proto, id=uid):
                    p = self.assert_json(self.req(proto, "GET", "/api/v1/users/%d/profile" % uid), 200)
                    self.assertEqual(p, {"user": self.sql_user(uid), "orders": want_orders, "preferences": prefs})
                    self.assertLessEqual(len(p["orders"]), 10)

    def test_profile_without_orders_or_preferences(self):
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                doc, _ = self.create(proto, "Newcomer", self.email("new", proto))
                p = self.assert_json(self.req(proto, "GET", "/api/v1/users/%d/profile" % doc["id"]), 200)
                self.assertEqual(p, {"user": doc, "orders": [], "preferences": None})

    def test_profile_missing_user(self):
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                self.assert_error(self.req(proto, "GET", "/api/v1/users/999999/profile"), 404, "user_not_found")
                h = self.req(proto, "HEAD", "/api/v1/users/999999/profile")
                self.assertEqual((h.status, h.body), (404, b""))

    # ---- /ready, /health ----

    def test_ready_and_health(self):
        for proto in PROTOCOLS:
            with self.subTest(proto=proto):
                self.assertEqual(self.assert_json(self.req(proto, "GET", "/ready"), 200), {"status": "ready"})
                self.assertEqual(self.req(proto, "GET", "/health").status, 200)

    # ---- concurrency ----

    def test_200_concurrent_gets_on_one_h2_connection(self):
        paths = []
        for i in range(200):
            if i % 10 == 9:
                paths.append(("/api/v1/users/%d" % (900000 + i), 404, None))
            elif i % 10 == 4:
                uid = self.seed_ids[i]
                paths.append(("/api/v1/users/%d/profile" % uid, 200, uid))
            else:
                uid = self.seed_ids[i]
                paths.append(("/api/v1/users/%d" % uid, 200, uid))
        users = {int(r[0]): {"id": int(r[0]), "name": r[1], "email": r[2], "created_at": r[3]}
                 for r in self.db.rows(USER_SQL)}
        c = harness.H2Client(self.port, timeout=30)
        try:
            self.assertTrue(c.wait_settings())
            limit = c.remote_settings.get(3, 100)  # SETTINGS_MAX_CONCURRENT_STREAMS (hydrant: 100)
            self.assertGreaterEqual(limit, 100)
            sids, todo = {}, list(paths)
            ended = lambda: sum(1 for s in sids if c.responses[s]["ended"])  # noqa: E731
            deadline = time.monotonic() + 30
            # the first 100 go out at once; each stream that ends makes room for the next
            while (todo or ended() < len(sids)) and time.monotonic() < deadline:
                while todo and len(sids) - ended() < limit:
                    p = todo.pop(0)
                    sids[c.request(p[0])] = p
                before = ended()
                c.receive_until(lambda: ended() > before or c.closed, timeout=5)
                if c.closed:
                    break
            self.assertEqual(len(sids), 200)
            for sid, (path, status, uid) in sids.items():
                r = c.response(sid)
                self.assertIsNotNone(r, "stream %d (%s): no response, reset=%s"
                                     % (sid, path, c.responses[sid]["reset"]))
                doc = self.assert_json(r, status)
                if status == 404:
                    self.assertEqual(doc["error"], "user_not_found")
                elif path.endswith("/profile"):
                    self.assertEqual(doc["user"], users[uid], path)
                else:
                    self.assertEqual(doc, users[uid], path)
        finally:
            c.close()

    def test_http1_pipelining(self):
        ids = self.seed_ids[100:120]
        reqs = b"".join(b"GET /api/v1/users/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in ids)
        reqs += b"GET /api/v1/users/999999 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        raw = harness.raw_http1(self.port, reqs, timeout=15)
        got = []
        rest = raw
        for _ in range(len(ids) + 1):
            head, sep, rest = rest.partition(b"\r\n\r\n")
            self.assertTrue(sep, "incomplete pipelined responses: got %d, then %r" % (len(got), head[:200]))
            r = harness.parse_raw_http1(head + b"\r\n\r\n")
            n = int(r.header("content-length"))
            r.body, rest = rest[:n], rest[n:]
            got.append(r)
        self.assertEqual(rest, b"")
        for uid, r in zip(ids, got):
            self.assertEqual(self.assert_json(r, 200)["id"], uid)
        self.assertEqual(self.assert_json(got[-1], 404)["error"], "user_not_found")

    def test_parallel_writes_keep_emails_unique(self):
        # 20 creates of the same email at once on 20 connections: exactly one 201, the rest 409
        import concurrent.futures
        import threading
        email = self.email("race")
        barrier = threading.Barrier(20, timeout=10)

        def one(i):
            barrier.wait()
            return self.post(PROTOCOLS[i % 2], {"name": "Racer %d" % i, "email": email}).status

        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as ex:
            statuses = sorted(ex.map(one, range(20), timeout=30))
        self.assertEqual(statuses, [201] + [409] * 19)
        self.assertEqual(self.db.sql("SELECT count(*) FROM users WHERE email = '%s'" % email), "1")


if __name__ == "__main__":
    dbharness.run_tests()
