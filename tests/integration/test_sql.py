"""test_sql.py: the `sql` route kind against a real PostgreSQL, over HTTP/1.1 and h2c: every parameter source (path,
query string, JSON body) and type (int, text, bool, uuid, timestamptz) with defaults, bounds and optional values; each
error (400 missing_parameter / invalid_parameter / invalid_json, 415, 413, error_map and the default SQLSTATE
mapping); each result mode (one, many with max_rows, none, one with status 204); the column type mapping (numbers,
booleans, null, json/jsonb embedded, timestamps RFC 3339, bytea base64, uuid); injection strings bound, never
spliced; a query that does not prepare (start-up refused with file:line:col and the server's message; reload
rejected); reload changing a query; the route deadline (504, the statement cancelled); metrics per route and
statement; and an sql route giving the same answer as the users.get C handler.

Needs HYDRANT_TEST_DATABASE_URL (tools/dev test); without it every test is skipped. The file makes its own database
(hy_it_sql_<pid>), migrates it, seeds 30 users, adds a table of its own, and drops it at the end."""

import json
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import dbharness  # noqa: E402
from dbharness import PROTOCOLS, needs_db, request  # noqa: E402
from harness import Server, clean_env, free_port, hydrant_bin, make_config, plain_listener, run  # noqa: E402

CT_JSON = {"Content-Type": "application/json"}
SEEDED = 30
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

ITEMS_TABLE = """
CREATE TABLE sql_items (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    name text NOT NULL UNIQUE,
    qty int NOT NULL CHECK (qty >= 0),
    price numeric(10, 2),
    active bool NOT NULL DEFAULT true,
    tag uuid,
    at timestamptz,
    meta jsonb,
    blob bytea
)"""

ITEM_COLUMNS = "id, user_id, name, qty, price, active, tag, at, meta, blob"

SQL_ROUTES = """\
middleware: [request_id, metrics, timeout]
routes:
  - path: /health
    handler: health
  - path: /ready
    handler: ready
  - path: /metrics
    handler: metrics
    middleware: []
  - path: /api/v1/users/{id:int}
    handler: users.get
  - path: /sql/users/{id:int}
    sql:
      query: SELECT id, name, email, created_at FROM users WHERE id = $1
      params: [path.id]
  - path: /api/v1/users/{id:int}/orders
    sql:
      query: SELECT id, total_cents, status, created_at FROM orders WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2
      params: [path.id, query.limit:int(1..100)=20]
      result: many
  - path: /sql/items
    methods: [POST]
    max_request_body: 1KiB
    sql:
      query: >-
        INSERT INTO sql_items (user_id, name, qty, price, active, tag, at, meta, blob)
        VALUES ($1, $2, $3, $4::numeric, $5, $6, $7, $8::jsonb, decode($9, 'hex'))
        RETURNING %(cols)s
      params: [body.user_id:int, body.name:text(1..50), body.qty:int, body.price?, body.active:bool=true, body.tag:uuid?,
               body.at:timestamptz?, body.meta?, body.blob_hex?]
      result: one
      status: 201
      error_map:
        unique_violation: {status: 409, error: item_exists, message: an item with this name exists}
        foreign_key_violation: {status: 422, error: unknown_user}
  - path: /sql/items/{id:int}
    sql:
      query: SELECT %(cols)s, 'NaN'::float8 AS nan, 1.5::float4 AS f4, 7::int2 AS small FROM sql_items WHERE id = $1
      params: [path.id]
  - path: /sql/items
    sql:
      query: SELECT id, name FROM sql_items WHERE active = $1 AND id > $2 AND ($3::text IS NULL OR name LIKE $3 || '%%') ORDER BY id
      params: [query.active:bool=true, query.after:int(0..)=0, query.prefix?]
      result: many
      max_rows: 3
  - path: /sql/items/{id:int}
    methods: [DELETE]
    sql:
      query: DELETE FROM sql_items WHERE id = $1
      params: [path.id]
      result: none
  - path: /sql/items/{id:int}/touch
    methods: [PUT]
    sql:
      query: UPDATE sql_items SET qty = qty + 1 WHERE id = $1 RETURNING id
      params: [path.id]
      status: 204
  - path: /sql/by-name/{name}
    sql:
      query: SELECT id, name FROM sql_items WHERE name = $1
      params: [path.name]
  - path: /sql/by-tag/{tag}
    sql:
      query: SELECT id, tag FROM sql_items WHERE tag = $1
      params: [path.tag:uuid]
      result: many
  - path: /sql/echo
    sql:
      query: SELECT $1::text AS t, $2::bool AS b, $3::timestamptz AS ts, $4::bigint AS n
      params: [query.t?, query.b:bool?, query.ts:timestamptz?, query.n:int(-5..5)?]
  - path: /sql/users/{id:int}/preferences
    methods: [PUT]
    sql:
      query: >-
        INSERT INTO preferences (user_id, data) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET data = EXCLUDED.data
        RETURNING user_id, data
      params: [path.id, body.data:json]
  - path: /sql/slow
    timeout: 300ms
    sql:
      query: SELECT pg_sleep($1::float8) AS slept
      params: [query.s:text=0]
""" % {"cols": ITEM_COLUMNS}


def log(msg):
    sys.stderr.write("  %s\n" % msg)
    sys.stderr.flush()


def metrics_text(port):
    return harness.http1_request(port, "GET", "/metrics").body.decode()


@needs_db
class SqlRoutes(unittest.TestCase):
    maxDiff = None
    db = None
    server = None

    @classmethod
    def setUpClass(cls):
        cls.db = dbharness.prepare_database("sql", seed_users=SEEDED)
        try:
            cls.db.sql(ITEMS_TABLE)
            cls.server, cls.port = dbharness.start_db_server(cls.db.url, threads=2, routes=SQL_ROUTES,
                                                             pool={"max_open": 4, "acquire_timeout": "5s"})
            if not dbharness.wait_pool_ready(cls.port, 10):
                raise AssertionError("/ready never said 200\n" + cls.server.describe())
        except BaseException:
            if cls.server is not None:
                cls.server.kill()
            cls.db.drop()
            raise
        cls.user_ids = [int(r[0]) for r in cls.db.rows("SELECT id FROM users ORDER BY id")]

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.server is not None:
                cls.server.terminate()
                cls.server.assert_no_sanitizer_report()
                cls.server.cleanup()
        finally:
            cls.db.drop()

    def setUp(self):
        self.db.sql("DELETE FROM sql_items")

    def req(self, method, path, body=None, headers=None, proto="http/1.1"):
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            headers = dict(CT_JSON, **(headers or {}))
        return request(proto, self.port, method, path, body=body.encode() if isinstance(body, str) else body,
                       headers=headers)

    def assert_error(self, r, status, code, message_part=None):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.header("content-type").startswith("application/json"), r)
        doc = r.json()
        self.assertEqual(doc["error"], code, doc)
        if message_part is not None:
            self.assertIn(message_part, doc.get("message", ""), doc)
        return doc

    def create_item(self, proto="http/1.1", **fields):
        body = {"user_id": self.user_ids[0], "name": "item-%d" % time.monotonic_ns(), "qty": 1}
        body.update(fields)
        r = self.req("POST", "/sql/items", body, proto=proto)
        self.assertEqual(r.status, 201, r)
        return r.json()

    # ---- results and types -----------------------------------------------------------------------------------------

    def test_same_answer_as_the_c_handler(self):
        for proto in PROTOCOLS:
            for uid in self.user_ids[:5]:
                c = self.req("GET", "/api/v1/users/%d" % uid, proto=proto)
                s = self.req("GET", "/sql/users/%d" % uid, proto=proto)
                self.assertEqual((s.status, s.header("content-type")), (200, "application/json"), s)
                self.assertEqual(s.json(), c.json(), proto)
            self.assert_error(self.req("GET", "/sql/users/999999999", proto=proto), 404, "not_found")

    def test_many_with_default_and_bounded_limit(self):
        uid = self.user_ids[3]
        want = [int(r[0]) for r in self.db.rows("SELECT id FROM orders WHERE user_id = %d ORDER BY created_at DESC, id DESC"
                                                 % uid)]
        self.assertGreater(len(want), 0)
        for proto in PROTOCOLS:
            r = self.req("GET", "/api/v1/users/%d/orders" % uid, proto=proto)
            self.assertEqual(r.status, 200, r)
            rows = r.json()
            self.assertEqual([o["id"] for o in rows], want[:20])
            for o in rows:
                self.assertEqual(sorted(o), ["created_at", "id", "status", "total_cents"])
                self.assertIsInstance(o["total_cents"], int)
                self.assertRegex(o["created_at"], RFC3339_UTC)
            r = self.req("GET", "/api/v1/users/%d/orders?limit=1" % uid, proto=proto)
            self.assertEqual([o["id"] for o in r.json()], want[:1])
            for bad in ("0", "101", "x", "1.5", "", "9999999999999999999999"):
                self.assert_error(self.req("GET", "/api/v1/users/%d/orders?limit=%s" % (uid, bad), proto=proto), 400,
                                  "invalid_parameter", 'query parameter "limit" must be an integer from 1 to 100')
            self.assertEqual(self.req("GET", "/api/v1/users/999999/orders", proto=proto).json(), [])

    def test_column_types_map_to_json(self):
        item = self.create_item(name="typed", qty=3, price="12.50", active=False, tag="123e4567-e89b-12d3-a456-426614174000",
                                at="2024-02-29T23:59:58.25+05:30", meta=json.dumps({"a": [1, 2.5, None, True], "b": {"c": "ü"}}),
                                blob_hex="0102ff")
        self.assertEqual(item["name"], "typed")
        for proto in PROTOCOLS:
            r = self.req("GET", "/sql/items/%d" % item["id"], proto=proto)
            self.assertEqual(r.status, 200, r)
            doc = r.json()
            self.assertEqual(doc, {
                "id": item["id"], "user_id": self.user_ids[0], "name": "typed", "qty": 3, "price": 12.5,
                "active": False, "tag": "123e4567-e89b-12d3-a456-426614174000", "at": "2024-02-29T18:29:58.250000Z",
                "meta": {"a": [1, 2.5, None, True], "b": {"c": "ü"}}, "blob": "AQL/", "nan": "NaN", "f4": 1.5,
                "small": 7})
            # numbers are JSON numbers, not strings (and price keeps its scale: 12.50)
            self.assertIn(b'"price":12.50', r.body)
        # nulls and defaults: only the required fields
        bare = self.create_item(name="bare")
        r = self.req("GET", "/sql/items/%d" % bare["id"])
        doc = r.json()
        for k in ("price", "tag", "at", "meta", "blob"):
            self.assertIsNone(doc[k], k)
        self.assertIs(doc["active"], True)  # the param's default (true), not the column's

    def test_query_parameter_types_and_optional_values(self):
        cases = [
            ("", {"t": None, "b": None, "ts": None, "n": None}),
            ("?t=h%C3%A9llo+w", {"t": "héllo w", "b": None, "ts": None, "n": None}),
            ("?b=TRUE&n=-5", {"t": None, "b": True, "ts": None, "n": -5}),
            ("?b=0&n=5", {"t": None, "b": False, "ts": None, "n": 5}),
            ("?ts=2024-05-01T12:00:00Z", {"t": None, "b": None, "ts": "2024-05-01T12:00:00.000000Z", "n": None}),
            ("?ts=2024-05-01 12:00:00.5-02:00", {"t": None, "b": None, "ts": "2024-05-01T14:00:00.500000Z", "n": None}),
            ("?t=", {"t": "", "b": None, "ts": None, "n": None}),
        ]
        for proto in PROTOCOLS:
            for qs, want in cases:
                r = self.req("GET", "/sql/echo" + qs.replace(" ", "%20"), proto=proto)
                self.assertEqual((r.status, r.json()), (200, want), qs)
        bad = [("?b=yes", 'query parameter "b" must be true or false'),
               ("?n=6", 'query parameter "n" must be an integer from -5 to 5'),
               ("?n=1e3", 'query parameter "n" must be an integer from -5 to 5'),
               ("?ts=2024-05-01T12:00:00", 'query parameter "ts" must be an RFC 3339 timestamp'),
               ("?ts=2023-02-29T12:00:00Z", 'query parameter "ts" must be an RFC 3339 timestamp'),
               ("?t=%FF%FE", 'query parameter "t" must be UTF-8 text without NUL characters'),
               ("?t=a%00b", 'query parameter "t" must be UTF-8 text without NUL characters')]
        for qs, msg in bad:
            self.assert_error(self.req("GET", "/sql/echo" + qs), 400, "invalid_parameter", msg)

    def test_path_parameter_types(self):
        a = self.create_item(name="with space/é", tag="0e5f6a2c-1b2d-4e3f-9a8b-7c6d5e4f3a2b")
        r = self.req("GET", "/sql/by-name/with%20space%2F%C3%A9")
        self.assertEqual((r.status, r.json()), (200, {"id": a["id"], "name": "with space/é"}))
        self.assert_error(self.req("GET", "/sql/by-name/nothing-here"), 404, "not_found")
        r = self.req("GET", "/sql/by-tag/0E5F6A2C-1B2D-4E3F-9A8B-7C6D5E4F3A2B")
        self.assertEqual((r.status, [x["id"] for x in r.json()]), (200, [a["id"]]))
        self.assert_error(self.req("GET", "/sql/by-tag/not-a-uuid"), 400, "invalid_parameter",
                          'path parameter "tag" must be a UUID')
        # {id:int} is refused by the router before the handler: 404, never a database error
        self.assertEqual(self.req("GET", "/sql/items/abc").status, 404)

    def test_body_parameter_errors(self):
        uid = self.user_ids[1]
        cases = [
            ({"name": "x", "qty": 1}, 400, "missing_parameter", 'body field "user_id" is required'),
            ({"user_id": uid, "name": "x", "qty": None}, 400, "missing_parameter", 'body field "qty" is required'),
            ({"user_id": str(uid), "name": "x", "qty": 1}, 400, "invalid_parameter",
             'body field "user_id" must be a number, not a string'),
            ({"user_id": uid, "name": "x", "qty": 1.5}, 400, "invalid_parameter", 'body field "qty" must be an integer'),
            ({"user_id": uid, "name": "", "qty": 1}, 400, "invalid_parameter",
             'body field "name" must be text of a length from 1 to 50 characters'),
            ({"user_id": uid, "name": "é" * 51, "qty": 1}, 400, "invalid_parameter",
             'body field "name" must be text of a length from 1 to 50 characters'),
            ({"user_id": uid, "name": ["x"], "qty": 1}, 400, "invalid_parameter",
             'body field "name" must be a string, not an array'),
            ({"user_id": uid, "name": "x", "qty": 1, "active": "yes"}, 400, "invalid_parameter",
             'body field "active" must be a boolean, not a string'),
            ({"user_id": uid, "name": "x", "qty": 1, "tag": "zz"}, 400, "invalid_parameter",
             'body field "tag" must be a UUID'),
            ({"user_id": uid, "name": "x", "qty": 1, "at": "yesterday"}, 400, "invalid_parameter",
             'body field "at" must be an RFC 3339 timestamp'),
        ]
        for proto in PROTOCOLS:
            for body, status, code, msg in cases:
                self.assert_error(self.req("POST", "/sql/items", body, proto=proto), status, code, msg)
            self.assert_error(self.req("POST", "/sql/items", b'{"user_id": 1,', CT_JSON, proto=proto), 400,
                              "invalid_json")
            self.assert_error(self.req("POST", "/sql/items", b'[1]', CT_JSON, proto=proto), 400, "invalid_json")
            self.assert_error(self.req("POST", "/sql/items", b'user_id=1', {"Content-Type": "text/plain"}, proto=proto),
                              415, "unsupported_media_type")
            big = {"user_id": uid, "name": "x", "qty": 1, "meta": {"pad": "p" * 2000}}
            self.assert_error(self.req("POST", "/sql/items", big, proto=proto), 413, "payload_too_large")
        self.assertEqual(self.db.sql("SELECT count(*) FROM sql_items"), "0", "a refused request wrote a row")

    def test_error_map_and_default_sqlstate_mapping(self):
        uid = self.user_ids[2]
        self.create_item(name="dup")
        for proto in PROTOCOLS:
            self.assert_error(self.req("POST", "/sql/items", {"user_id": uid, "name": "dup", "qty": 1}, proto=proto),
                              409, "item_exists", "an item with this name exists")
            self.assert_error(self.req("POST", "/sql/items", {"user_id": 987654321, "name": "fk", "qty": 1}, proto=proto),
                              422, "unknown_user", "SQLSTATE 23503")
            # not mapped: a CHECK violation (class 23) is 409 constraint_violation
            self.assert_error(self.req("POST", "/sql/items", {"user_id": uid, "name": "neg", "qty": -1}, proto=proto),
                              409, "constraint_violation", "SQLSTATE 23514")
            # not mapped: numeric(10,2) overflow (class 22) is 400 invalid_value
            self.assert_error(self.req("POST", "/sql/items", {"user_id": uid, "name": "big", "qty": 1,
                                                              "price": "1e20"}, proto=proto),
                              400, "invalid_value", "SQLSTATE 22003")
            # a bad value for a cast in the query (22P02): 400 too
            self.assert_error(self.req("POST", "/sql/items", {"user_id": uid, "name": "nan", "qty": 1, "price": "abc"},
                                       proto=proto), 400, "invalid_value", "SQLSTATE 22P02")
        self.assertEqual(self.db.sql("SELECT count(*) FROM sql_items"), "1")

    def test_json_parameters_take_any_json_value(self):
        uid = self.user_ids[6]
        path = "/sql/users/%d/preferences" % uid
        doc = {"theme": "dark", "n": [1, 2.5, None, True], "s": "\u00e9 \"quoted\" \\ \u2603", "nested": {"deep": [{}]}}
        for proto in PROTOCOLS:
            for value in (doc, ["a", 1], "just a string", 12.5, False, {}):
                r = self.req("PUT", path, {"data": value}, proto=proto)
                self.assertEqual((r.status, r.json()), (200, {"user_id": uid, "data": value}), value)
                stored = self.db.sql("SELECT data::text FROM preferences WHERE user_id = %d" % uid)
                self.assertEqual(json.loads(stored), value)
        # the member's text is bound as written, whitespace and all, and jsonb normalises it
        r = self.req("PUT", path, b'{"data" :  { "b" : [ 1 ,2 ] , "a" : "x" } }', CT_JSON)
        self.assertEqual((r.status, r.json()["data"]), (200, {"a": "x", "b": [1, 2]}))
        self.assert_error(self.req("PUT", path, {"data": None}), 400, "missing_parameter", 'body field "data" is required')
        self.assert_error(self.req("PUT", path, {"other": 1}), 400, "missing_parameter", 'body field "data" is required')
        self.db.sql("DELETE FROM preferences WHERE user_id = %d" % uid)

    def test_injection_strings_are_bound_not_spliced(self):
        uid = self.user_ids[4]
        for name in ("x'); DROP TABLE sql_items; --", "' OR '1'='1", "$1", "\\x00 ; SELECT pg_sleep(10)"):
            item = self.create_item(user_id=uid, name=name)
            self.assertEqual(item["name"], name)
            r = self.req("GET", "/sql/by-name/" + "".join("%%%02X" % b for b in name.encode()))
            self.assertEqual((r.status, r.json()["name"]), (200, name))
        self.assertEqual(self.db.sql("SELECT count(*) FROM sql_items"), "4")

    def test_many_truncated_at_max_rows_none_and_status_204(self):
        ids = [self.create_item(name="m%d" % i)["id"] for i in range(5)]
        for proto in PROTOCOLS:
            r = self.req("GET", "/sql/items", proto=proto)
            self.assertEqual([x["id"] for x in r.json()], ids[:3])
            self.assertEqual(r.header("x-result-truncated"), "true")
            r = self.req("GET", "/sql/items?after=%d" % ids[2], proto=proto)
            self.assertEqual([x["id"] for x in r.json()], ids[3:])
            self.assertIsNone(r.header("x-result-truncated"))
            r = self.req("GET", "/sql/items?prefix=m4", proto=proto)
            self.assertEqual([x["id"] for x in r.json()], ids[4:])
            self.assertEqual(self.req("GET", "/sql/items?active=false", proto=proto).json(), [])
        r = self.req("PUT", "/sql/items/%d/touch" % ids[0])
        self.assertEqual((r.status, r.body), (204, b""))
        self.assertEqual(self.db.sql("SELECT qty FROM sql_items WHERE id = %d" % ids[0]), "2")
        self.assert_error(self.req("PUT", "/sql/items/999999/touch"), 404, "not_found")
        r = self.req("DELETE", "/sql/items/%d" % ids[1])
        self.assertEqual((r.status, r.body), (204, b""))
        self.assertEqual(self.db.sql("SELECT count(*) FROM sql_items WHERE id = %d" % ids[1]), "0")
        r = self.req("HEAD", "/sql/items/%d" % ids[0])
        self.assertEqual((r.status, r.body), (200, b""))

    def test_deadline_answers_504_and_cancels_the_statement(self):
        for proto in PROTOCOLS:
            t0 = time.monotonic()
            r = self.req("GET", "/sql/slow?s=5", proto=proto)
            took = time.monotonic() - t0
            self.assert_error(r, 504, "deadline_exceeded")
            self.assertLess(took, 2.5, "504 after %.2fs (deadline 300ms)" % took)
            gone = dbharness.wait_until(lambda: self.db.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hydrant' "
                "AND datname = current_database() AND query LIKE '%pg_sleep%' AND state = 'active'") == "0", 3)
            self.assertTrue(gone, "%s: the pg_sleep statement still runs 3s after the 504" % proto)
        r = self.req("GET", "/sql/slow?s=0.01")
        self.assertEqual((r.status, r.json()), (200, {"slept": ""}), r)

    def test_metrics_count_the_routes_and_statements(self):
        uid = self.user_ids[0]
        for _ in range(3):
            self.assertEqual(self.req("GET", "/sql/users/%d" % uid).status, 200)
        text = metrics_text(self.port)
        got = re.search(r'^http_requests_total\{method="GET",route="/sql/users/\{id:int\}",status="200"\} (\d+)',
                        text, re.M)
        self.assertIsNotNone(got, text[:3000])
        self.assertGreaterEqual(int(got.group(1)), 3)
        got = re.search(r'^hydrant_db_queries_total\{statement="sql:GET /sql/users/\{id:int\}",outcome="ok"\} (\d+)', text, re.M)
        self.assertIsNotNone(got, [l for l in text.splitlines() if "db_queries" in l])
        self.assertGreaterEqual(int(got.group(1)), 3)


@needs_db
class SqlConfig(unittest.TestCase):
    """Start-up and reload with queries that do or do not prepare."""

    @classmethod
    def setUpClass(cls):
        cls.db = dbharness.prepare_database("sqlcfg", seed_users=3)

    @classmethod
    def tearDownClass(cls):
        cls.db.drop()

    def config(self, port, query, extra=""):
        routes = ("routes:\n  - path: /health\n    handler: health\n  - path: /v\n    sql:\n      query: %s\n%s"
                  % (query, extra))
        return make_config([plain_listener(port)], threads=1, routes=dbharness.database_section() + routes)

    def test_a_query_that_does_not_prepare_stops_the_start(self):
        d = harness.make_tempdir()
        path = harness.write_file(d, "bad.yaml", self.config(free_port(), "SELECT nope FROM users WHERE id = $1",
                                                             "      params: [query.id:int]\n"))
        p = run([hydrant_bin(), "serve", "-c", path], timeout=30, env=clean_env(DATABASE_URL=self.db.url))
        self.assertEqual(p.returncode, 2, p.stderr)
        lines = [l for l in p.stderr.splitlines() if "routes[1]" in l]
        self.assertEqual(lines, ['%s:%d:14: routes[1].sql.query: the query does not prepare: column "nope" does not exist'
                                 % (path, self.config(0, "").splitlines().index("      query: ") + 1)], p.stderr)
        # a parameter of the wrong type for its use is a prepare error too (uuid compared with bigint)
        path = harness.write_file(d, "type.yaml", self.config(free_port(), "SELECT id FROM users WHERE id = $1",
                                                              "      params: [query.id:uuid]\n"))
        p = run([hydrant_bin(), "serve", "-c", path], timeout=30, env=clean_env(DATABASE_URL=self.db.url))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("operator does not exist: bigint = uuid", p.stderr)
        # `check` needs no database: the same file passes its offline checks
        p = run([hydrant_bin(), "check", "-c", path], timeout=30, env=clean_env())
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_check_with_database_prepares_the_queries(self):
        d = harness.make_tempdir()
        good = harness.write_file(d, "good.yaml", self.config(free_port(), "SELECT id FROM users WHERE id = $1",
                                                              "      params: [query.id:int]\n"))
        bad = harness.write_file(d, "bad.yaml", self.config(free_port(), "SELECT nope FROM users"))
        env = clean_env(DATABASE_URL=self.db.url)
        p = run([hydrant_bin(), "check", "-c", good, "--database"], timeout=30, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("%s: ok (sql queries prepared on the database)\n" % good), p.stdout)
        p = run([hydrant_bin(), "check", "-c", bad, "-d"], timeout=30, env=env)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn('routes[1].sql.query: the query does not prepare: column "nope" does not exist', p.stderr)
        p = run([hydrant_bin(), "check", "-c", bad], timeout=30, env=env)  # offline: the query is not prepared
        self.assertEqual(p.returncode, 0, p.stderr)
        down = clean_env(DATABASE_URL=dbharness.url_with(port=dbharness.closed_port(), password=dbharness.SECRET))
        p = run([hydrant_bin(), "check", "-c", good, "--database"], timeout=30, env=down)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cannot check the sql routes' queries: the database is unreachable", p.stderr)
        self.assertNotIn(dbharness.SECRET, p.stdout + p.stderr)  # never the password

    def test_database_down_at_start_still_serves(self):
        port = free_port()
        s = Server(self.config(port, "SELECT 1 AS v"),
                   env=clean_env(DATABASE_URL=dbharness.url_with(port=dbharness.closed_port())))
        try:
            s.start(ready_port=port)
            self.assertEqual(harness.http1_request(port, "GET", "/health").status, 200)
            r = harness.http1_request(port, "GET", "/v")
            self.assertEqual(r.status, 503, r)
            self.assertIn("were not checked: the database is unreachable", s.stderr())
            s.terminate()
            s.assert_no_sanitizer_report()
        finally:
            s.cleanup()

    def test_reload_changes_the_query_and_rejects_one_that_does_not_prepare(self):
        port = free_port()
        d = harness.make_tempdir()
        path = harness.write_file(d, "hydrant.yaml", self.config(port, "SELECT 1 AS v"))
        s = Server(config_path=path, env=clean_env(DATABASE_URL=self.db.url))
        try:
            s.start(ready_port=port)
            self.assertEqual(harness.http1_request(port, "GET", "/v").json(), {"v": 1})
            harness.write_file(d, "hydrant.yaml", self.config(
                port, "SELECT count(*) AS users, $1::text AS tag FROM users", "      params: [query.tag=none]\n"))
            s.proc.send_signal(signal.SIGHUP)
            ok = dbharness.wait_until(lambda: harness.http1_request(port, "GET", "/v").json() == {"users": 3, "tag": "none"}, 5)
            self.assertTrue(ok, harness.http1_request(port, "GET", "/v").body + s.stderr().encode()[-2000:])
            self.assertEqual(harness.http1_request(port, "GET", "/v?tag=x").json(), {"users": 3, "tag": "x"})
            bad = self.config(port, "SELECT missing_column FROM users")
            harness.write_file(d, "hydrant.yaml", bad)
            s.proc.send_signal(signal.SIGHUP)
            want = "reload rejected: %s:%d:14: routes[1].sql.query: the query does not prepare: column " \
                   "\"missing_column\" does not exist" % (path, bad.splitlines().index("      query: SELECT missing_column FROM users") + 1)
            found = dbharness.wait_until(lambda: any(want == json.loads(l).get("msg") for l in s.stderr().splitlines()
                                                     if l.startswith("{")), 5)
            self.assertTrue(found, s.stderr()[-3000:])
            # the previous config still serves
            self.assertEqual(harness.http1_request(port, "GET", "/v").json(), {"users": 3, "tag": "none"})
            s.terminate()
            s.assert_no_sanitizer_report()
        finally:
            s.cleanup()


if __name__ == "__main__":
    dbharness.run_tests()
