/* check_config.c: unit tests of the configuration DSL (app/config.c, app/config_yaml.c, app/diags.c): every error kind
 * with its exact message, defaults, ${VAR} interpolation, environment overrides, TLS file checks and the summary. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include "config.h"
#include "sqlroute.h"

#define FIXTURES "tests/fixtures/conf/"

/* ---- helpers --------------------------------------------------------------------------------------------------------- */

/* Every variable a test may set; unset before each test so that the runner's environment cannot leak in. */
static const char *const test_env[] = {
    "SERVER_PORT",  "SERVER_READ_TIMEOUT", "SERVER_WRITE_TIMEOUT", "SERVER_IDLE_TIMEOUT", "HY_TEST_CERT",       "HY_TEST_KEY",
    "HY_TEST_HOST", "HY_TEST_PORT",        "HY_TEST_IDLE",         "HY_TEST_CURRENCY",    "HY_TEST_UNSET_HOST", "HY_TEST_A",
    "HY_TEST_B",    "HYDRANT_TLS_CERT",    "HYDRANT_TLS_KEY",      "HYDRANT_TLS_PORT",
};

static void clear_env(void)
{
    for (size_t i = 0; i != sizeof(test_env) / sizeof(test_env[0]); ++i)
        unsetenv(test_env[i]);
}

/* Joins messages with "\n" into buf. */
static const char *join(const char *const *msgs, size_t n, char *buf, size_t bufsize)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i != n; ++i) {
        int w = snprintf(buf + o, bufsize - o, "%s%s", i != 0 ? "\n" : "", msgs[i]);
        ck_assert(w >= 0 && (size_t)w < bufsize - o);
        o += (size_t)w;
    }
    return buf;
}

/* Loads `path`, which must fail, and asserts that the messages are exactly `expected` (NULL-terminated), in order. */
static void expect_errors_v(const char *path, const char *const *expected)
{
    static char want[16384], got[16384];
    hy_diags_t d = {NULL, 0, 0};
    size_t n = 0;

    while (expected[n] != NULL)
        ++n;
    hy_config_t *config = hy_config_load(path, &d);
    ck_assert_msg(config == NULL, "%s should not load", path);
    join(expected, n, want, sizeof(want));
    join((const char *const *)d.msgs, d.count, got, sizeof(got));
    ck_assert_str_eq(got, want);
    hy_diags_clear(&d);
}
#define expect_errors(path, ...)                                                                                                   \
    do {                                                                                                                           \
        static const char *const expected_[] = {__VA_ARGS__, NULL};                                                                \
        expect_errors_v((path), expected_);                                                                                        \
    } while (0)

/* Loads `path`, which must succeed without any message. The caller frees the config. */
static hy_config_t *load_ok(const char *path)
{
    hy_diags_t d = {NULL, 0, 0};
    char got[8192];
    hy_config_t *config = hy_config_load(path, &d);
    ck_assert_msg(config != NULL, "%s should load, got:\n%s", path, join((const char *const *)d.msgs, d.count, got, sizeof(got)));
    ck_assert_uint_eq(d.count, 0);
    hy_diags_clear(&d);
    return config;
}

/* Parses `text` as the config file `path`; returns the config or NULL, and the first message in first (or ""). */
static hy_config_t *parse_text(const char *path, const char *text, size_t len, char *first, size_t firstsize)
{
    hy_diags_t d = {NULL, 0, 0};
    hy_config_t *config = hy_config_parse(path, text, len, &d);
    snprintf(first, firstsize, "%s", d.count != 0 ? d.msgs[0] : "");
    hy_diags_clear(&d);
    return config;
}

/* Runs `fn(config, out)` and returns what it printed (malloc'ed). */
static char *capture_summary(const hy_config_t *config)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(out);
    hy_config_print_summary(config, out);
    fclose(out);
    return buf;
}

/* ---- YAML syntax and document shape ---------------------------------------------------------------------------------- */

START_TEST(test_yaml_syntax_error)
{
    expect_errors(FIXTURES "yaml_syntax.yaml",
                  FIXTURES "yaml_syntax.yaml:4:17: yaml: mapping values are not allowed in this context");
}
END_TEST

START_TEST(test_empty_file)
{
    expect_errors(FIXTURES "empty.yaml",
                  FIXTURES "empty.yaml:1:1: the configuration is empty (expected a mapping with \"server\" and \"routes\")");
    char first[512];
    ck_assert_ptr_null(parse_text("buf.yaml", "", 0, first, sizeof(first)));
    ck_assert_str_eq(first, "buf.yaml:1:1: the configuration is empty (expected a mapping with \"server\" and \"routes\")");
    ck_assert_ptr_null(parse_text("buf.yaml", "---\n~\n", 6, first, sizeof(first)));
    ck_assert_str_eq(first, "buf.yaml:2:1: the configuration is empty (expected a mapping with \"server\" and \"routes\")");
}
END_TEST

START_TEST(test_not_a_mapping)
{
    expect_errors(FIXTURES "not_mapping.yaml",
                  FIXTURES "not_mapping.yaml:1:1: expected a mapping at the top level, got a sequence");
    char first[512];
    ck_assert_ptr_null(parse_text("buf.yaml", "hello\n", 6, first, sizeof(first)));
    ck_assert_str_eq(first, "buf.yaml:1:1: expected a mapping at the top level, got a scalar");
}
END_TEST

START_TEST(test_aliases_refused)
{
    expect_errors(FIXTURES "alias.yaml", FIXTURES "alias.yaml:6:7: yaml: aliases (*name) are not supported");
}
END_TEST

START_TEST(test_one_document_only)
{
    expect_errors(FIXTURES "two_documents.yaml", FIXTURES "two_documents.yaml:8:1: yaml: only one document is allowed");
}
END_TEST

START_TEST(test_nesting_limit)
{
    char text[512], first[512];
    size_t n = 0;
    n += (size_t)snprintf(text + n, sizeof(text) - n, "a: ");
    for (int i = 0; i != 100; ++i)
        text[n++] = '[';
    for (int i = 0; i != 100; ++i)
        text[n++] = ']';
    text[n] = '\0';
    ck_assert_ptr_null(parse_text("deep.yaml", text, n, first, sizeof(first)));
    ck_assert_str_eq(first, "deep.yaml:1:67: yaml: nesting deeper than 64 levels");
}
END_TEST

START_TEST(test_bad_encoding)
{
    char first[512];
    static const char text[] = "server:\n  listen: \"\xff\"\n";
    ck_assert_ptr_null(parse_text("enc.yaml", text, sizeof(text) - 1, first, sizeof(first)));
    ck_assert_str_eq(first, "enc.yaml:2:12: yaml: invalid leading UTF-8 octet");
}
END_TEST

START_TEST(test_unreadable_file)
{
    expect_errors(FIXTURES "does_not_exist.yaml", FIXTURES "does_not_exist.yaml: cannot read: No such file or directory");
    expect_errors(FIXTURES, FIXTURES ": cannot read: Is a directory");
}
END_TEST

/* ---- keys ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_unknown_keys)
{
    expect_errors(FIXTURES "unknown_key.yaml",
                  FIXTURES "unknown_key.yaml:5:3: server.threadz: unknown key \"threadz\" (did you mean \"threads\"?)",
                  FIXTURES "unknown_key.yaml:7:5: server.timeouts.idel: unknown key \"idel\" (did you mean \"idle\"?)",
                  FIXTURES "unknown_key.yaml:11:5: routes[0].threads: unknown key \"threads\" (it belongs in server)",
                  FIXTURES "unknown_key.yaml:12:1: frobnicate: unknown key \"frobnicate\"");
}
END_TEST

START_TEST(test_missing_required_keys)
{
    expect_errors(FIXTURES "missing_sections.yaml", FIXTURES "missing_sections.yaml:2:1: version: unknown key \"version\"",
                  FIXTURES "missing_sections.yaml:2:1: missing required key \"server\"",
                  FIXTURES "missing_sections.yaml:2:1: missing required key \"routes\"");
}
END_TEST

START_TEST(test_duplicate_keys)
{
    expect_errors(FIXTURES "duplicate_key.yaml",
                  FIXTURES "duplicate_key.yaml:5:7: server.listen[0].port: duplicate key \"port\" (first at line 4)",
                  FIXTURES "duplicate_key.yaml:8:5: server.timeouts.request_header: \"request_header\" and \"read\" are the same "
                           "setting (line 7); give only one",
                  FIXTURES "duplicate_key.yaml:12:1: server: duplicate key \"server\" (first at line 1)");
}
END_TEST

START_TEST(test_wrong_node_kinds)
{
    expect_errors(FIXTURES "wrong_types.yaml", FIXTURES "wrong_types.yaml:3:5: server.listen: expected a sequence, got a mapping",
                  FIXTURES "wrong_types.yaml:5:13: server.timeouts: expected a mapping, got a sequence",
                  FIXTURES "wrong_types.yaml:7:12: server.limits.http2: expected a mapping, got a scalar",
                  FIXTURES "wrong_types.yaml:8:11: server.threads: expected \"auto\" or an integer, got an empty value",
                  FIXTURES "wrong_types.yaml:10:11: routes[0].path: expected a string, got a sequence",
                  FIXTURES "wrong_types.yaml:11:14: routes[0].handler: expected a string, got a mapping",
                  FIXTURES "wrong_types.yaml:13:14: routes[1].methods: expected a sequence, got a scalar",
                  FIXTURES "wrong_types.yaml:14:13: routes[1].static: expected a mapping, got a scalar",
                  FIXTURES "wrong_types.yaml:15:5: routes[2]: expected a mapping, got a scalar");
}
END_TEST

START_TEST(test_secrets_never_shown)
{
    hy_diags_t d = {NULL, 0, 0};
    ck_assert_ptr_null(hy_config_load(FIXTURES "secret.yaml", &d));
    ck_assert_uint_eq(d.count, 1);
    ck_assert_str_eq(d.msgs[0], FIXTURES "secret.yaml:5:3: server.db_password: unknown key \"db_password\"");
    ck_assert_ptr_null(strstr(d.msgs[0], "hunter2"));
    hy_diags_clear(&d);
}
END_TEST

/* ---- values ---------------------------------------------------------------------------------------------------------- */

START_TEST(test_bad_durations)
{
    expect_errors(
        FIXTURES "bad_durations.yaml",
        FIXTURES "bad_durations.yaml:6:16: server.timeouts.handshake: expected a duration (e.g. 250ms, 5s, 1m30s), got \"5\"",
        FIXTURES "bad_durations.yaml:7:11: server.timeouts.read: must be greater than 0",
        FIXTURES "bad_durations.yaml:8:12: server.timeouts.write: expected a duration (e.g. 250ms, 5s, 1m30s), got \"1.5s\"",
        FIXTURES "bad_durations.yaml:9:11: server.timeouts.idle: expected a duration (e.g. 250ms, 5s, 1m30s), got \"5x\"",
        FIXTURES "bad_durations.yaml:10:14: server.timeouts.request: expected a duration (e.g. 250ms, 5s, 1m30s), got \"-1s\"",
        FIXTURES "bad_durations.yaml:11:15: server.timeouts.shutdown: expected a duration (e.g. 250ms, 5s, 1m30s), got \"30s1m\"",
        FIXTURES "bad_durations.yaml:15:14: routes[0].timeout: expected a duration (e.g. 250ms, 5s, 1m30s), got "
                 "\"99999999999999999999h\"");
}
END_TEST

START_TEST(test_zero_timeouts)
{
    expect_errors(FIXTURES "zero_timeouts.yaml",
                  FIXTURES "zero_timeouts.yaml:6:16: server.timeouts.handshake: must be greater than 0",
                  FIXTURES "zero_timeouts.yaml:7:11: server.timeouts.read: must be greater than 0",
                  FIXTURES "zero_timeouts.yaml:8:12: server.timeouts.write: must be greater than 0",
                  FIXTURES "zero_timeouts.yaml:9:11: server.timeouts.idle: must be greater than 0",
                  FIXTURES "zero_timeouts.yaml:13:14: routes[0].timeout: must be greater than 0");
}
END_TEST

START_TEST(test_bad_sizes_and_limits)
{
    expect_errors(
        FIXTURES "bad_sizes.yaml", FIXTURES "bad_sizes.yaml:6:22: server.limits.max_connections: 0 is out of range (1-1000000)",
        FIXTURES "bad_sizes.yaml:7:23: server.limits.max_request_body: expected a size (e.g. 512, 64KiB, 1MiB), got \"1mb\"",
        FIXTURES "bad_sizes.yaml:9:31: server.limits.http2.max_concurrent_streams: 200 is out of range (1-100): libh2o "
                 "2.2.5 always advertises 100 concurrent streams");
}
END_TEST

START_TEST(test_bad_ports)
{
    expect_errors(
        FIXTURES "bad_ports.yaml", FIXTURES "bad_ports.yaml:4:13: server.listen[0].port: expected an integer, got \"http\"",
        FIXTURES "bad_ports.yaml:6:13: server.listen[1].port: 0 is out of range (1-65535)",
        FIXTURES "bad_ports.yaml:8:13: server.listen[2].port: 70000 is out of range (1-65535)",
        FIXTURES "bad_ports.yaml:9:13: server.listen[3].host: bad host \"bad host\" (expected an address like 127.0.0.1 "
                 "or ::, or a host name)",
        FIXTURES "bad_ports.yaml:11:13: server.listen[4].host: bad host \"[::1]\" (write an IPv6 address without brackets, "
                 "e.g. ::1)");
}
END_TEST

START_TEST(test_bad_values)
{
    expect_errors(
        FIXTURES "bad_values.yaml",
        FIXTURES "bad_values.yaml:8:22: server.listen[0].tls.min_version: unsupported TLS version \"TLSv1.1\" (expected TLSv1.2 or "
                 "TLSv1.3)",
        FIXTURES "bad_values.yaml:6:22: server.listen[0].tls.certificate: cannot read \"cert.pem\": No such file or directory",
        FIXTURES "bad_values.yaml:7:14: server.listen[0].tls.key: cannot read \"key.pem\": No such file or directory",
        FIXTURES "bad_values.yaml:9:12: server.threads: 0 is out of range (1-256)",
        FIXTURES "bad_values.yaml:11:23: server.limits.max_request_body: 2GiB is out of range (1-1GiB)",
        FIXTURES "bad_values.yaml:13:31: server.limits.http2.max_concurrent_streams: 0 is out of range (1-100)",
        FIXTURES "bad_values.yaml:17:15: routes[0].static.status: 700 is out of range (200-599)",
        FIXTURES "bad_values.yaml:18:21: routes[0].static.content_type: \"\" is not a valid header value",
        FIXTURES "bad_values.yaml:21:15: routes[1].static.status: expected an integer, got \"ok\"");
}
END_TEST

START_TEST(test_listener_errors)
{
    expect_errors(FIXTURES "listen_errors.yaml", FIXTURES "listen_errors.yaml:5:7: server.listen[1]: missing required key \"host\"",
                  FIXTURES "listen_errors.yaml:8:7: server.listen[3]: expected a mapping, got a scalar",
                  FIXTURES "listen_errors.yaml:6:7: server.listen[2]: duplicate listener 127.0.0.1:8080 (already declared by "
                           "server.listen[0] at line 3)");
    expect_errors(FIXTURES "listen_empty.yaml", FIXTURES "listen_empty.yaml:2:11: server.listen: at least one listener is required",
                  FIXTURES "listen_empty.yaml:3:9: routes: at least one route is required");
}
END_TEST

START_TEST(test_multiple_errors_all_reported)
{
    expect_errors(
        FIXTURES "multiple_errors.yaml",
        FIXTURES "multiple_errors.yaml:5:13: server.listen[0].port: 80800 is out of range (1-65535)",
        FIXTURES "multiple_errors.yaml:6:12: server.threads: expected \"auto\" or an integer, got \"lots\"",
        FIXTURES "multiple_errors.yaml:8:11: server.timeouts.read: expected a duration (e.g. 250ms, 5s, 1m30s), got \"soon\"",
        FIXTURES "multiple_errors.yaml:10:23: server.limits.max_request_body: expected a size (e.g. 512, 64KiB, 1MiB), got "
                 "\"huge\"",
        FIXTURES "multiple_errors.yaml:13:14: routes[0].handler: unknown handler \"nope\"",
        FIXTURES "multiple_errors.yaml:14:5: routes[1]: missing \"handler\", \"static\", \"sql\" or \"proxy\" (a route needs one "
                 "of them)",
        FIXTURES "multiple_errors.yaml:15:5: routes[2].pth: unknown key \"pth\" (did you mean \"path\"?)",
        FIXTURES "multiple_errors.yaml:15:5: routes[2]: missing required key \"path\"");
}
END_TEST

/* ---- routes ---------------------------------------------------------------------------------------------------------- */

START_TEST(test_duplicate_routes)
{
    expect_errors(FIXTURES "duplicate_routes.yaml",
                  FIXTURES "duplicate_routes.yaml:8:11: routes[1].path: duplicate route: GET,HEAD /users/{uid} is already declared "
                           "by routes[0] at line 6",
                  FIXTURES "duplicate_routes.yaml:13:11: routes[3].path: duplicate route: HEAD /users/{id} is already declared by "
                           "routes[0] at line 6",
                  FIXTURES "duplicate_routes.yaml:19:11: routes[5].path: duplicate route: DELETE /items is already declared by "
                           "routes[4] at line 16");
}
END_TEST

START_TEST(test_unknown_handler)
{
    expect_errors(FIXTURES "unknown_handler.yaml",
                  FIXTURES "unknown_handler.yaml:7:14: routes[0].handler: unknown handler \"helth\" (did you mean \"health\"?)",
                  FIXTURES "unknown_handler.yaml:9:14: routes[1].handler: unknown handler \"frobnicator\"",
                  FIXTURES
                  "unknown_handler.yaml:11:14: routes[2].handler: unknown handler \"plain\" (did you mean \"plaintext\"?)");
}
END_TEST

START_TEST(test_handler_xor_static)
{
    expect_errors(
        FIXTURES "handler_and_static.yaml",
        FIXTURES "handler_and_static.yaml:6:5: routes[0]: give only one of \"handler\", \"static\", \"sql\" or \"proxy\" (this "
                 "route has \"handler\" and \"static\")",
        FIXTURES
        "handler_and_static.yaml:10:5: routes[1]: missing \"handler\", \"static\", \"sql\" or \"proxy\" (a route needs one of "
        "them)");
}
END_TEST

/* ---- proxy routes ---------------------------------------------------------------------------------------------------- */

START_TEST(test_proxy_ok)
{
    hy_config_t *c = load_ok(FIXTURES "proxy_ok.yaml");
    ck_assert_uint_eq(c->nroutes, 3);
    const hy_route_t *r = &c->routes[0];
    ck_assert_int_eq(r->kind, HY_ROUTE_PROXY);
    ck_assert_str_eq(r->proxy.upstream, "http://catalog.default.svc:8080/v2/");
    ck_assert_str_eq(r->proxy.host, "catalog.default.svc");
    ck_assert_uint_eq(r->proxy.port, 8080);
    ck_assert_str_eq(r->proxy.authority, "catalog.default.svc:8080");
    ck_assert_str_eq(r->proxy.prefix, "/v2");
    ck_assert_uint_eq(r->proxy.timeout_ms, 2000);
    ck_assert_uint_eq(r->proxy.connect_timeout_ms, 500);
    ck_assert_uint_eq(r->proxy.keepalive, 0);
    ck_assert_uint_eq(r->proxy.idle_timeout_ms, 60000);
    ck_assert_int_eq(r->proxy.preserve_host, 1);
    ck_assert_ptr_null(r->proxy.rt);
    r = &c->routes[1]; /* defaults; the timeout is the route's deadline */
    ck_assert_str_eq(r->proxy.host, "::1");
    ck_assert_uint_eq(r->proxy.port, 80);
    ck_assert_str_eq(r->proxy.authority, "[::1]");
    ck_assert_str_eq(r->proxy.prefix, "");
    ck_assert_uint_eq(r->proxy.timeout_ms, 3000);
    ck_assert_uint_eq(r->proxy.connect_timeout_ms, 5000);
    ck_assert_uint_eq(r->proxy.keepalive, 64);
    ck_assert_uint_eq(r->proxy.idle_timeout_ms, 30000);
    ck_assert_int_eq(r->proxy.preserve_host, 0);
    r = &c->routes[2]; /* server.timeouts.request */
    ck_assert_str_eq(r->proxy.host, "10.0.0.1");
    ck_assert_uint_eq(r->proxy.port, 9000);
    ck_assert_uint_eq(r->proxy.timeout_ms, 7000);
    hy_config_free(c);
}
END_TEST

START_TEST(test_proxy_errors)
{
    expect_errors(
        FIXTURES "proxy_errors.yaml",
        FIXTURES "proxy_errors.yaml:8:17: routes[0].proxy.upstream: https upstreams are not supported (use http://), got "
                 "\"https://catalog:8443\"",
        FIXTURES "proxy_errors.yaml:9:7: routes[0].proxy.keepalve: unknown key \"keepalve\" (did you mean \"keepalive\"?)",
        FIXTURES "proxy_errors.yaml:12:17: routes[1].proxy.upstream: expected an http://host:port[/prefix] URL, got \"ftp://x\"",
        FIXTURES "proxy_errors.yaml:13:18: routes[1].proxy.keepalive: 100000 is out of range (0-10000)",
        FIXTURES "proxy_errors.yaml:14:13: routes[1].proxy.host: unknown host mode \"preserv\" (did you mean \"preserve\"?)",
        FIXTURES "proxy_errors.yaml:15:16: routes[1].proxy.timeout: expected a duration (e.g. 250ms, 5s, 1m30s), got \"soon\"",
        FIXTURES "proxy_errors.yaml:17:23: routes[2].proxy.upstream: the upstream's port must be 1-65535, got \"http://h:0\"",
        FIXTURES "proxy_errors.yaml:19:23: routes[3].proxy.upstream: an upstream URL may not have a query or a fragment, got "
                 "\"http://[::1]:8080/p?q=1\"",
        FIXTURES "proxy_errors.yaml:21:12: routes[4].proxy: missing required key \"upstream\"",
        FIXTURES
        "proxy_errors.yaml:22:5: routes[5]: give only one of \"handler\", \"static\", \"sql\" or \"proxy\" (this route has "
        "\"handler\" and \"proxy\")",
        FIXTURES "proxy_errors.yaml:26:23: routes[6].proxy.upstream: an upstream URL may not have user information, got "
                 "\"http://user@h:1\"",
        FIXTURES "proxy_errors.yaml:26:59: routes[6].proxy.connect_timeout: must be greater than 0",
        FIXTURES "proxy_errors.yaml:28:23: routes[7].proxy.upstream: bad character in the upstream's host (letters, digits, "
                 "\".\" and \"-\", or [IPv6]), got \"http://h_x:80\"",
        FIXTURES "proxy_errors.yaml:28:46: routes[7].proxy.host: unknown host mode \"other\" (expected preserve or upstream)");
}
END_TEST

START_TEST(test_methods)
{
    expect_errors(FIXTURES "methods.yaml",
                  FIXTURES "methods.yaml:7:15: routes[0].methods[0]: unknown method \"GTE\" (expected one of GET HEAD POST PUT "
                           "DELETE PATCH OPTIONS)",
                  FIXTURES "methods.yaml:7:20: routes[0].methods[1]: unknown method \"post\" (did you mean \"POST\"?)",
                  FIXTURES "methods.yaml:7:31: routes[0].methods[3]: duplicate method \"GET\"",
                  FIXTURES "methods.yaml:7:36: routes[0].methods[4]: unknown method \"BREW\" (expected one of GET HEAD POST PUT "
                           "DELETE PATCH OPTIONS)",
                  FIXTURES "methods.yaml:10:14: routes[1].methods: at least one method is required");
}
END_TEST

START_TEST(test_static_headers)
{
    expect_errors(
        FIXTURES "static_headers.yaml",
        FIXTURES "static_headers.yaml:9:9: routes[0].static.headers.x bad: bad header name \"x bad\" (expected an HTTP token such "
                 "as x-frame-options)",
        FIXTURES "static_headers.yaml:10:9: routes[0].static.headers.Content-Length: header \"content-length\" may not be set here "
                 "(the server sets it)",
        FIXTURES
        "static_headers.yaml:11:9: routes[0].static.headers.Date: header \"date\" may not be set here (the server sets it)",
        FIXTURES "static_headers.yaml:12:9: routes[0].static.headers.Connection: header \"connection\" may not be set here (the "
                 "server sets it)",
        FIXTURES
        "static_headers.yaml:13:9: routes[0].static.headers.Content-Type: header \"content-type\" may not be set here (use "
        "content_type)",
        FIXTURES "static_headers.yaml:15:9: routes[0].static.headers.x-frame-options: duplicate header \"x-frame-options\"",
        FIXTURES "static_headers.yaml:16:18: routes[0].static.headers.X-Split: header values may not contain control characters "
                 "(CR, LF...)",
        FIXTURES "static_headers.yaml:17:17: routes[0].static.headers.X-Empty: expected a string, got an empty value");
}
END_TEST

START_TEST(test_bad_template_uses_router_message)
{
    /* the text after "routes[0].path: " is the router's own reason */
    hy_diags_t d = {NULL, 0, 0};
    ck_assert_ptr_null(hy_config_load(FIXTURES "bad_template.yaml", &d));
    ck_assert_uint_eq(d.count, 1);
    const char *prefix = FIXTURES "bad_template.yaml:6:11: routes[0].path: ";
    ck_assert_msg(strncmp(d.msgs[0], prefix, strlen(prefix)) == 0 && strlen(d.msgs[0]) > strlen(prefix), "got %s", d.msgs[0]);
    hy_diags_clear(&d);
}
END_TEST

START_TEST(test_route_model)
{
    hy_config_t *c = load_ok(FIXTURES "static_route.yaml");
    ck_assert_uint_eq(c->nroutes, 3);

    const hy_route_t *r = &c->routes[0];
    ck_assert_str_eq(r->path, "/robots.txt");
    ck_assert_int_eq(r->kind, HY_ROUTE_STATIC);
    ck_assert_uint_eq(r->methods, HY_METHOD_GET | HY_METHOD_HEAD);
    ck_assert_int_eq(r->static_.status, 200);
    ck_assert_str_eq(r->static_.content_type, "text/plain; charset=utf-8");
    ck_assert_uint_eq(r->static_.body_len, 24);
    ck_assert_str_eq(r->static_.body, "User-agent: *\nDisallow:\n");
    ck_assert_uint_eq(r->static_.nheaders, 0);
    ck_assert_uint_eq(r->timeout_ms, 0);
    ck_assert_uint_eq(r->index, 0);
    ck_assert_uint_eq(r->pos.line, 7);
    ck_assert_uint_eq(r->pos.col, 5);

    r = &c->routes[1];
    ck_assert_uint_eq(r->methods, HY_METHOD_GET | HY_METHOD_HEAD | HY_METHOD_POST); /* GET implies HEAD */
    ck_assert_int_eq(r->static_.status, 418);
    ck_assert_str_eq(r->static_.content_type, "application/json");
    ck_assert_uint_eq(r->static_.body_len, 9); /* {"a":"\0"} keeps its NUL byte */
    ck_assert_mem_eq(r->static_.body, "{\"a\":\"\0\"}", 9);
    ck_assert_uint_eq(r->static_.nheaders, 2);
    ck_assert_str_eq(r->static_.headers[0].name, "x-frame-options");
    ck_assert_str_eq(r->static_.headers[0].value, "DENY");
    ck_assert_str_eq(r->static_.headers[1].name, "cache-control");
    ck_assert_str_eq(r->static_.headers[1].value, "max-age=60");
    ck_assert_uint_eq(r->timeout_ms, 250);

    r = &c->routes[2];
    ck_assert_int_eq(r->kind, HY_ROUTE_HANDLER);
    ck_assert_str_eq(r->handler_name, "json");
    ck_assert_ptr_eq(r->handler, hy_handler_lookup("json"));
    ck_assert_uint_eq(r->methods, HY_METHOD_POST | HY_METHOD_PUT | HY_METHOD_DELETE | HY_METHOD_PATCH | HY_METHOD_OPTIONS);

    ck_assert_ptr_nonnull(c->router);
    ck_assert_uint_eq(c->threads, 3);
    ck_assert_int_eq(c->threads_auto, 0);
    ck_assert_str_eq(c->listeners[0].host, "::");
    hy_config_free(c);
}
END_TEST

/* ---- defaults and the summary ---------------------------------------------------------------------------------------- */

START_TEST(test_minimal_defaults)
{
    hy_config_t *c = load_ok(FIXTURES "minimal.yaml");
    ck_assert_str_eq(c->file, FIXTURES "minimal.yaml");
    ck_assert_uint_eq(c->nlisteners, 1);
    ck_assert_str_eq(c->listeners[0].host, "127.0.0.1");
    ck_assert_uint_eq(c->listeners[0].port, 8080);
    ck_assert_ptr_null(c->listeners[0].tls);
    ck_assert_uint_eq(c->listeners[0].pos.line, 4);
    ck_assert_uint_eq(c->listeners[0].pos.col, 7);
    ck_assert_int_eq(c->threads_auto, 1);
    ck_assert_uint_eq(c->threads, hy_cpu_count() < 256 ? hy_cpu_count() : 256);
    ck_assert_uint_eq(c->timeouts.handshake_ms, 10000);
    ck_assert_uint_eq(c->timeouts.read_ms, 15000);
    ck_assert_uint_eq(c->timeouts.write_ms, 15000);
    ck_assert_uint_eq(c->timeouts.idle_ms, 60000);
    ck_assert_uint_eq(c->timeouts.request_ms, 30000);
    ck_assert_uint_eq(c->timeouts.shutdown_ms, 20000);
    ck_assert_uint_eq(c->limits.max_connections, 10000);
    ck_assert_uint_eq(c->limits.max_request_body, 1048576);
    ck_assert_uint_eq(c->limits.max_concurrent_streams, 100);
    ck_assert_uint_eq(c->nroutes, 1);
    ck_assert_str_eq(c->routes[0].path, "/health");
    ck_assert_uint_eq(c->routes[0].methods, HY_METHOD_GET | HY_METHOD_HEAD);
    ck_assert_int_eq(c->routes[0].kind, HY_ROUTE_HANDLER);
    ck_assert_ptr_eq(c->routes[0].handler, hy_handler_lookup("health"));
    hy_config_free(c);
}
END_TEST

START_TEST(test_every_timeout_and_limit)
{
    hy_config_t *c = load_ok(FIXTURES "timeouts_all.yaml");
    ck_assert_uint_eq(c->timeouts.handshake_ms, 2000);
    ck_assert_uint_eq(c->timeouts.read_ms, 90000); /* request_header is read's other name */
    ck_assert_uint_eq(c->timeouts.write_ms, 250);
    ck_assert_uint_eq(c->timeouts.idle_ms, 3600000);
    ck_assert_uint_eq(c->timeouts.request_ms, 0);  /* 0: no per-request deadline */
    ck_assert_uint_eq(c->timeouts.shutdown_ms, 0); /* 0: do not wait for in-flight requests */
    ck_assert_uint_eq(c->limits.max_connections, 1000000);
    ck_assert_uint_eq(c->limits.max_request_body, 65536);
    ck_assert_uint_eq(c->limits.max_concurrent_streams, 1);
    hy_config_free(c);
}
END_TEST

START_TEST(test_summary_format)
{
    hy_config_t *c = load_ok(FIXTURES "static_route.yaml");
    char *got = capture_summary(c);
    ck_assert_str_eq(
        got, "listeners:\n"
             "  [::]:8080 plain (HTTP/1.1, h2c)\n"
             "threads: 3\n"
             "timeouts: handshake=10s read=15s write=15s idle=1m request=30s shutdown=20s\n"
             "limits: max_connections=10000 max_active_requests=256 max_request_body=1MiB http2.max_concurrent_streams=100\n"
             "middleware: none\n"
             "routes:\n"
             "  GET,HEAD                       /robots.txt  -> static 200 text/plain; charset=utf-8 (24 bytes)\n"
             "  GET,HEAD,POST                  /teapot      -> static 418 application/json (9 bytes, 2 headers) "
             "timeout=250ms\n"
             "  POST,PUT,DELETE,PATCH,OPTIONS  /submit      -> handler json\n");
    free(got);
    hy_config_free(c);

    c = load_ok(FIXTURES "timeouts_all.yaml");
    got = capture_summary(c);
    char want[1024];
    snprintf(want, sizeof(want),
             "listeners:\n"
             "  127.0.0.1:8080 plain (HTTP/1.1, h2c)\n"
             "threads: %u (auto)\n"
             "timeouts: handshake=2s read=90s write=250ms idle=1h request=0 shutdown=0\n"
             "limits: max_connections=1000000 max_active_requests=256 max_request_body=64KiB http2.max_concurrent_streams=1\n"
             "middleware: none\n"
             "routes:\n"
             "  GET,HEAD  /a  -> handler health\n",
             c->threads);
    ck_assert_str_eq(got, want);
    free(got);
    hy_config_free(c);
}
END_TEST

/* ---- ${VAR} interpolation -------------------------------------------------------------------------------------------- */

START_TEST(test_interpolation_defaults)
{
    hy_config_t *c = load_ok(FIXTURES "interpolation.yaml");
    ck_assert_str_eq(c->listeners[0].host, "127.0.0.1");
    ck_assert_uint_eq(c->listeners[0].port, 8080);
    ck_assert_uint_eq(c->timeouts.idle_ms, 120000);
    ck_assert_str_eq(c->routes[0].static_.body, "costs $5 (EUR) and $HOME stays");
    hy_config_free(c);
}
END_TEST

START_TEST(test_interpolation_from_env)
{
    setenv("HY_TEST_HOST", "0.0.0.0", 1);
    setenv("HY_TEST_PORT", "9999", 1);
    setenv("HY_TEST_IDLE", "5s", 1);
    setenv("HY_TEST_CURRENCY", "CHF", 1);
    hy_config_t *c = load_ok(FIXTURES "interpolation.yaml");
    ck_assert_str_eq(c->listeners[0].host, "0.0.0.0");
    ck_assert_uint_eq(c->listeners[0].port, 9999);
    ck_assert_uint_eq(c->timeouts.idle_ms, 5000);
    ck_assert_str_eq(c->routes[0].static_.body, "costs $5 (CHF) and $HOME stays");
    hy_config_free(c);

    /* the value is parsed by type after interpolation */
    setenv("HY_TEST_PORT", "eighty", 1);
    setenv("HY_TEST_CURRENCY", "", 1); /* empty counts as unset: the default applies */
    expect_errors(FIXTURES "interpolation.yaml",
                  FIXTURES "interpolation.yaml:4:13: server.listen[0].port: expected an integer, got \"eighty\"");
}
END_TEST

START_TEST(test_interpolation_errors)
{
    expect_errors(FIXTURES "interpolation_errors.yaml",
                  FIXTURES
                  "interpolation_errors.yaml:3:13: server.listen[0].host: environment variable HY_TEST_UNSET_HOST is not set",
                  FIXTURES "interpolation_errors.yaml:8:13: routes[0].static.body: bad variable name \"1BAD\" in \"${...}\"",
                  FIXTURES "interpolation_errors.yaml:11:13: routes[1].static.body: bad \"${HY_TEST_X...}\" (expected ${NAME} or "
                           "${NAME:-default})",
                  FIXTURES "interpolation_errors.yaml:14:13: routes[2].static.body: unterminated \"${\" (expected ${NAME} or "
                           "${NAME:-default})");
    /* set but empty is the same as unset */
    setenv("HY_TEST_UNSET_HOST", "", 1);
    hy_diags_t d = {NULL, 0, 0};
    ck_assert_ptr_null(hy_config_load(FIXTURES "interpolation_errors.yaml", &d));
    ck_assert_str_eq(d.msgs[0], FIXTURES
                     "interpolation_errors.yaml:3:13: server.listen[0].host: environment variable HY_TEST_UNSET_HOST is not set");
    hy_diags_clear(&d);
}
END_TEST

/* Interpolates `in`; returns the result (static buffer) or the error prefixed with "ERR ". */
static const char *interp(const char *in)
{
    static char buf[512];
    char err[256], *out;
    size_t outlen;
    if (hy_interpolate(in, strlen(in), &out, &outlen, err, sizeof(err)) != 0) {
        snprintf(buf, sizeof(buf), "ERR %s", err);
        return buf;
    }
    ck_assert_uint_eq(outlen, strlen(out));
    snprintf(buf, sizeof(buf), "%s", out);
    free(out);
    return buf;
}

START_TEST(test_interpolate_function)
{
    setenv("HY_TEST_A", "alpha", 1);
    setenv("HY_TEST_B", "", 1);
    ck_assert_str_eq(interp("plain"), "plain");
    ck_assert_str_eq(interp(""), "");
    ck_assert_str_eq(interp("${HY_TEST_A}"), "alpha");
    ck_assert_str_eq(interp("x${HY_TEST_A}y${HY_TEST_A}z"), "xalphayalphaz");
    ck_assert_str_eq(interp("${HY_TEST_B:-dflt}"), "dflt");
    ck_assert_str_eq(interp("${HY_TEST_UNSET_HOST:-}"), "");
    ck_assert_str_eq(interp("${HY_TEST_UNSET_HOST:-a:b-c$d}"), "a:b-c$d");
    ck_assert_str_eq(interp("${HY_TEST_A:-dflt}"), "alpha");
    ck_assert_str_eq(interp("$$"), "$");
    ck_assert_str_eq(interp("$${HY_TEST_A}"), "${HY_TEST_A}");
    ck_assert_str_eq(interp("$$$$"), "$$");
    ck_assert_str_eq(interp("a $ b $"), "a $ b $");
    ck_assert_str_eq(interp("$HY_TEST_A"), "$HY_TEST_A");
    ck_assert_str_eq(interp("${HY_TEST_B}"), "ERR environment variable HY_TEST_B is not set");
    ck_assert_str_eq(interp("${}"), "ERR bad variable name \"\" in \"${...}\"");
    ck_assert_str_eq(interp("${A-B}"), "ERR bad variable name \"A-B\" in \"${...}\"");
    ck_assert_str_eq(interp("${HY_TEST_A:secret}"), "ERR bad \"${HY_TEST_A...}\" (expected ${NAME} or ${NAME:-default})");
    ck_assert_str_eq(interp("${HY_TEST_A"), "ERR unterminated \"${\" (expected ${NAME} or ${NAME:-default})");
}
END_TEST

/* ---- environment overrides ------------------------------------------------------------------------------------------- */

START_TEST(test_env_overrides_win)
{
    setenv("SERVER_PORT", "9090", 1);
    setenv("SERVER_READ_TIMEOUT", "5", 1); /* a bare integer is seconds */
    setenv("SERVER_WRITE_TIMEOUT", "1m", 1);
    setenv("SERVER_IDLE_TIMEOUT", "1m30s", 1);
    hy_config_t *c = load_ok(FIXTURES "env_overrides.yaml");
    ck_assert_uint_eq(c->listeners[0].port, 9090);
    ck_assert_uint_eq(c->timeouts.read_ms, 5000);
    ck_assert_uint_eq(c->timeouts.write_ms, 60000);
    ck_assert_uint_eq(c->timeouts.idle_ms, 90000);
    hy_config_free(c);

    /* the same over a file that does not mention the timeouts */
    c = load_ok(FIXTURES "minimal.yaml");
    ck_assert_uint_eq(c->listeners[0].port, 9090);
    ck_assert_uint_eq(c->timeouts.read_ms, 5000);
    hy_config_free(c);
}
END_TEST

START_TEST(test_env_empty_is_unset)
{
    setenv("SERVER_PORT", "", 1);
    setenv("SERVER_READ_TIMEOUT", "", 1);
    hy_config_t *c = load_ok(FIXTURES "env_overrides.yaml");
    ck_assert_uint_eq(c->listeners[0].port, 8080);
    ck_assert_uint_eq(c->timeouts.read_ms, 15000);
    hy_config_free(c);
}
END_TEST

START_TEST(test_env_bad_values)
{
    setenv("SERVER_PORT", "abc", 1);
    setenv("SERVER_READ_TIMEOUT", "abc", 1);
    setenv("SERVER_WRITE_TIMEOUT", "0", 1);
    setenv("SERVER_IDLE_TIMEOUT", "5x", 1);
    expect_errors(FIXTURES "env_overrides.yaml",
                  FIXTURES "env_overrides.yaml:4:13: server.listen[0].port: SERVER_PORT=\"abc\": not a port number (1-65535)",
                  FIXTURES "env_overrides.yaml:6:11: server.timeouts.read: SERVER_READ_TIMEOUT=\"abc\": not a duration (e.g. 15s, "
                           "1m30s, or a number of seconds)",
                  FIXTURES "env_overrides.yaml:7:12: server.timeouts.write: SERVER_WRITE_TIMEOUT=\"0\": must be greater than 0",
                  FIXTURES "env_overrides.yaml:8:11: server.timeouts.idle: SERVER_IDLE_TIMEOUT=\"5x\": not a duration (e.g. 15s, "
                           "1m30s, or a number of seconds)");
}
END_TEST

START_TEST(test_env_bad_values_absent_nodes)
{
    /* the file has no timeouts: the message points at the `server` key; with no server at all, at 1:1 */
    setenv("SERVER_PORT", "70000", 1);
    setenv("SERVER_IDLE_TIMEOUT", "0s", 1);
    expect_errors(FIXTURES "minimal.yaml",
                  FIXTURES "minimal.yaml:5:13: server.listen[0].port: SERVER_PORT=\"70000\": not a port number (1-65535)",
                  FIXTURES "minimal.yaml:2:1: server.timeouts.idle: SERVER_IDLE_TIMEOUT=\"0s\": must be greater than 0");
    unsetenv("SERVER_IDLE_TIMEOUT");
    setenv("SERVER_PORT", "8081", 1);
    expect_errors(FIXTURES "missing_sections.yaml", FIXTURES "missing_sections.yaml:2:1: version: unknown key \"version\"",
                  FIXTURES "missing_sections.yaml:2:1: missing required key \"server\"",
                  FIXTURES "missing_sections.yaml:2:1: missing required key \"routes\"",
                  FIXTURES "missing_sections.yaml:1:1: server.listen: SERVER_PORT=\"8081\": there is no plain (non-TLS) listener "
                           "to override");
}
END_TEST

START_TEST(test_env_port_makes_duplicate)
{
    char text[] = "server:\n"
                  "  listen:\n"
                  "    - {host: 127.0.0.1, port: 8080}\n"
                  "    - {host: 127.0.0.1, port: 8081}\n"
                  "routes:\n"
                  "  - {path: /a, handler: health}\n";
    char first[512];
    setenv("SERVER_PORT", "8081", 1);
    ck_assert_ptr_null(parse_text("dup.yaml", text, strlen(text), first, sizeof(first)));
    ck_assert_str_eq(first, "dup.yaml:4:7: server.listen[1]: duplicate listener 127.0.0.1:8081 (already declared by "
                            "server.listen[0] at line 3)");
}
END_TEST

/* ---- TLS ------------------------------------------------------------------------------------------------------------- */

static char tls_dir[64];

/* Generates two self-signed pairs (a, b), an encrypted key and a non-PEM file into a temporary directory. */
static void setup_tls(void)
{
    char cmd[1024];
    snprintf(tls_dir, sizeof(tls_dir), "/tmp/check_config.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tls_dir));
    for (int i = 0; i != 2; ++i) {
        snprintf(cmd, sizeof(cmd),
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost "
                 "-keyout '%s/%c.key' -out '%s/%c.crt' >/dev/null 2>&1",
                 tls_dir, 'a' + i, tls_dir, 'a' + i);
        ck_assert_int_eq(system(cmd), 0);
    }
    snprintf(cmd, sizeof(cmd), "openssl pkey -in '%s/a.key' -aes256 -passout pass:test-only -out '%s/enc.key' 2>/dev/null", tls_dir,
             tls_dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "echo 'not a pem file' > '%s/junk.pem'", tls_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void teardown_tls(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tls_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Points HY_TEST_CERT and HY_TEST_KEY at files of the TLS directory. */
static void use_tls_files(const char *cert, const char *key)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tls_dir, cert);
    setenv("HY_TEST_CERT", path, 1);
    snprintf(path, sizeof(path), "%s/%s", tls_dir, key);
    setenv("HY_TEST_KEY", path, 1);
}

/* Loads tls_env.yaml and asserts its single message, where "%s" stands for the TLS directory (used twice at most). */
static void expect_tls_error(const char *fmt)
{
    char want[1024];
    snprintf(want, sizeof(want), fmt, tls_dir, tls_dir);
    const char *expected[] = {want, NULL};
    expect_errors_v(FIXTURES "tls_env.yaml", expected);
}

START_TEST(test_tls_good_pair)
{
    use_tls_files("a.crt", "a.key");
    hy_config_t *c = load_ok(FIXTURES "tls_env.yaml");
    ck_assert_ptr_nonnull(c->listeners[0].tls);
    ck_assert_int_eq(c->listeners[0].tls->min_version, TLS1_3_VERSION);
    ck_assert_str_eq(c->listeners[0].tls->certificate, getenv("HY_TEST_CERT"));
    ck_assert_str_eq(c->listeners[0].tls->key, getenv("HY_TEST_KEY"));
    char *got = capture_summary(c);
    ck_assert_ptr_nonnull(strstr(got, "listeners:\n  127.0.0.1:8443 tls (h2, HTTP/1.1; min TLSv1.3)\n"));
    free(got);
    hy_config_free(c);
}
END_TEST

START_TEST(test_tls_relative_paths)
{
    /* a config file inside the TLS directory names its files relative to itself */
    char path[256], text[512];
    snprintf(path, sizeof(path), "%s/hydrant.yaml", tls_dir);
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs("server:\n"
          "  listen:\n"
          "    - host: 127.0.0.1\n"
          "      port: 8443\n"
          "      tls: {certificate: a.crt, key: ./a.key}\n"
          "routes:\n"
          "  - {path: /a, handler: health}\n",
          fp);
    fclose(fp);
    hy_config_t *c = load_ok(path);
    snprintf(text, sizeof(text), "%s/a.crt", tls_dir);
    ck_assert_str_eq(c->listeners[0].tls->certificate, text);
    snprintf(text, sizeof(text), "%s/./a.key", tls_dir);
    ck_assert_str_eq(c->listeners[0].tls->key, text);
    ck_assert_int_eq(c->listeners[0].tls->min_version, TLS1_2_VERSION);
    hy_config_free(c);
}
END_TEST

START_TEST(test_tls_unreadable_files)
{
    expect_errors(
        FIXTURES "tls_missing_files.yaml",
        FIXTURES "tls_missing_files.yaml:8:22: server.listen[1].tls.certificate: cannot read \"missing-cert.pem\": No such "
                 "file or directory",
        FIXTURES "tls_missing_files.yaml:9:14: server.listen[1].tls.key: cannot read \"x.pem\": No such file or directory",
        FIXTURES "tls_missing_files.yaml:13:9: server.listen[2].tls: missing required key \"certificate\"",
        FIXTURES "tls_missing_files.yaml:13:9: server.listen[2].tls: missing required key \"key\"");
    use_tls_files("", "a.key");
    expect_tls_error(FIXTURES "tls_env.yaml:7:22: server.listen[0].tls.certificate: cannot read \"%s/\": Is a directory");
}
END_TEST

START_TEST(test_tls_mismatch)
{
    use_tls_files("a.crt", "b.key");
    expect_tls_error(FIXTURES "tls_env.yaml:8:14: server.listen[0].tls.key: private key \"%s/b.key\" does not match certificate "
                              "\"%s/a.crt\"");
}
END_TEST

START_TEST(test_tls_not_pem)
{
    use_tls_files("junk.pem", "a.key");
    expect_tls_error(FIXTURES "tls_env.yaml:7:22: server.listen[0].tls.certificate: no PEM certificate in \"%s/junk.pem\"");
    use_tls_files("a.crt", "junk.pem");
    expect_tls_error(FIXTURES "tls_env.yaml:8:14: server.listen[0].tls.key: no PEM private key in \"%s/junk.pem\"");
}
END_TEST

START_TEST(test_tls_key_never_shown)
{
    /* a certificate given as the key, and a key given as the certificate: no PEM content in any message */
    hy_diags_t d = {NULL, 0, 0};
    use_tls_files("a.key", "a.crt");
    ck_assert_ptr_null(hy_config_load(FIXTURES "tls_env.yaml", &d));
    ck_assert_uint_eq(d.count, 2);
    for (size_t i = 0; i != d.count; ++i)
        ck_assert_ptr_null(strstr(d.msgs[i], "-----"));
    hy_diags_clear(&d);

    use_tls_files("a.crt", "enc.key");
    expect_tls_error(FIXTURES "tls_env.yaml:8:14: server.listen[0].tls.key: private key in \"%s/enc.key\" is encrypted (not "
                              "supported)");
}
END_TEST

START_TEST(test_env_port_needs_plain_listener)
{
    use_tls_files("a.crt", "a.key");
    setenv("SERVER_PORT", "8081", 1);
    expect_errors(FIXTURES "tls_env.yaml", FIXTURES "tls_env.yaml:4:5: server.listen: SERVER_PORT=\"8081\": there is no plain "
                                                    "(non-TLS) listener to override");
}
END_TEST

START_TEST(test_shipped_config_loads)
{
    /* conf/hydrant.yaml names .local/tls/ files that the run command creates; point it at a generated pair instead */
    use_tls_files("a.crt", "a.key");
    setenv("HYDRANT_TLS_CERT", getenv("HY_TEST_CERT"), 1);
    setenv("HYDRANT_TLS_KEY", getenv("HY_TEST_KEY"), 1);
    hy_config_t *c = load_ok("conf/hydrant.yaml");
    ck_assert_uint_eq(c->nlisteners, 2);
    ck_assert_uint_eq(c->listeners[0].port, 8080);
    ck_assert_ptr_null(c->listeners[0].tls);
    ck_assert_uint_eq(c->listeners[1].port, 8443);
    ck_assert_ptr_nonnull(c->listeners[1].tls);
    ck_assert_int_eq(c->threads_auto, 1);
    ck_assert_uint_ge(c->nroutes, 5);
    hy_config_free(c);
}
END_TEST

/* ---- observability: middleware, client_ip, access_log, metrics, server.admin ------------------------------------------ */

/* The start and the end of a small config for the inline cases: the extra lines go in between, from line 4. */
#define OBS_HEAD "server:\n  listen:\n    - {host: 127.0.0.1, port: 8080}\n"
#define OBS_ROUTES "routes:\n  - {path: /a, handler: health}\n  - {path: \"/u/{id:int}\", handler: json}\n"

/* Parses `text` as the config `path`, which must fail, and asserts that the messages are exactly `expected`. */
static void expect_text_errors_v(const char *path, const char *text, const char *const *expected)
{
    static char want[8192], got[8192];
    hy_diags_t d = {NULL, 0, 0};
    size_t n = 0;

    while (expected[n] != NULL)
        ++n;
    hy_config_t *config = hy_config_parse(path, text, strlen(text), &d);
    ck_assert_msg(config == NULL, "%s should not load:\n%s", path, text);
    join(expected, n, want, sizeof(want));
    join((const char *const *)d.msgs, d.count, got, sizeof(got));
    ck_assert_str_eq(got, want);
    hy_diags_clear(&d);
}
#define expect_text_errors(path, text, ...)                                                                                        \
    do {                                                                                                                           \
        static const char *const expected_[] = {__VA_ARGS__, NULL};                                                                \
        expect_text_errors_v((path), (text), expected_);                                                                           \
    } while (0)

/* Parses `text` as the config `path`, which must load without a message. The caller frees the config. */
static hy_config_t *parse_ok(const char *path, const char *text)
{
    char first[1024];
    hy_config_t *c = parse_text(path, text, strlen(text), first, sizeof(first));
    ck_assert_msg(c != NULL, "%s should load, got: %s\n%s", path, first, text);
    ck_assert_str_eq(first, "");
    return c;
}

/* Asserts that `mw` is exactly the kinds given, in order (n of them). */
static void assert_mw(const hy_middleware_t *mw, size_t n, const hy_mw_kind_t *kinds)
{
    unsigned mask = 0;
    ck_assert_uint_eq(mw->n, n);
    for (size_t i = 0; i != n; ++i) {
        ck_assert_uint_eq(mw->kinds[i], kinds[i]);
        mask |= 1u << kinds[i];
    }
    ck_assert_uint_eq(mw->mask, mask);
}

START_TEST(test_middleware_names)
{
    ck_assert_str_eq(hy_mw_name(HY_MW_REQUEST_ID), "request_id");
    ck_assert_str_eq(hy_mw_name(HY_MW_CLIENT_IP), "client_ip");
    ck_assert_str_eq(hy_mw_name(HY_MW_ACCESS_LOG), "access_log");
    ck_assert_str_eq(hy_mw_name(HY_MW_METRICS), "metrics");
    ck_assert_str_eq(hy_mw_name(HY_MW_NKINDS), "?");
}
END_TEST

START_TEST(test_middleware_errors)
{
    expect_errors(
        FIXTURES "middleware_errors.yaml",
        FIXTURES "middleware_errors.yaml:4:14: middleware[0]: unknown middleware \"reqest_id\" (did you mean \"request_id\"?)",
        FIXTURES "middleware_errors.yaml:4:34: middleware[2]: unknown middleware \"tracing\" (known: request_id, client_ip, "
                 "access_log, metrics, admission, timeout)",
        FIXTURES "middleware_errors.yaml:4:43: middleware[3]: middleware \"metrics\" is listed twice",
        FIXTURES "middleware_errors.yaml:4:52: middleware[4]: expected a middleware name, got a mapping",
        FIXTURES "middleware_errors.yaml:8:18: routes[0].middleware[0]: unknown middleware \"acces_log\" (did you mean "
                 "\"access_log\"?)",
        FIXTURES "middleware_errors.yaml:8:41: routes[0].middleware[2]: middleware \"request_id\" is listed twice",
        FIXTURES "middleware_errors.yaml:11:17: routes[1].middleware: expected a sequence, got a scalar");
    /* names are case-sensitive; an empty item is not a name */
    expect_text_errors("mw.yaml", OBS_HEAD "middleware: [Metrics, \"\", ~]\n" OBS_ROUTES,
                       "mw.yaml:4:14: middleware[0]: unknown middleware \"Metrics\" (did you mean \"metrics\"?)",
                       "mw.yaml:4:23: middleware[1]: unknown middleware \"\" (known: request_id, client_ip, access_log, metrics, "
                       "admission, timeout)",
                       "mw.yaml:4:27: middleware[2]: expected a middleware name, got an empty value");
}
END_TEST

START_TEST(test_middleware_model)
{
    static const hy_mw_kind_t all[] = {HY_MW_REQUEST_ID, HY_MW_CLIENT_IP, HY_MW_ACCESS_LOG, HY_MW_METRICS};
    static const hy_mw_kind_t own[] = {HY_MW_METRICS, HY_MW_REQUEST_ID};
    hy_config_t *c = load_ok(FIXTURES "middleware_routes.yaml");
    ck_assert_uint_eq(c->nroutes, 3);
    assert_mw(&c->middleware, 4, all);
    assert_mw(&c->routes[0].middleware, 4, all);  /* no list of its own: the global one */
    assert_mw(&c->routes[1].middleware, 2, own);  /* its own list replaces the global one, in its order */
    assert_mw(&c->routes[2].middleware, 0, NULL); /* `middleware: []` runs none */
    char *got = capture_summary(c);
    ck_assert_ptr_nonnull(strstr(got, "\nmiddleware: request_id, client_ip, access_log, metrics\nroutes:\n"));
    free(got);
    hy_config_free(c);

    /* no global list: routes without their own run none; a route's own list still applies */
    c = parse_ok("mw.yaml", OBS_HEAD "routes:\n  - {path: /a, handler: health}\n"
                                     "  - {path: /b, handler: health, middleware: [access_log]}\n");
    static const hy_mw_kind_t log_only[] = {HY_MW_ACCESS_LOG};
    assert_mw(&c->middleware, 0, NULL);
    assert_mw(&c->routes[0].middleware, 0, NULL);
    assert_mw(&c->routes[1].middleware, 1, log_only);
    got = capture_summary(c);
    ck_assert_ptr_nonnull(strstr(got, "\nmiddleware: none\nroutes:\n"));
    free(got);
    hy_config_free(c);

    /* an empty global list is the same as none */
    c = parse_ok("mw.yaml", OBS_HEAD "middleware: []\n" OBS_ROUTES);
    assert_mw(&c->middleware, 0, NULL);
    assert_mw(&c->routes[1].middleware, 0, NULL);
    hy_config_free(c);

    /* the default: no middleware at all */
    c = load_ok(FIXTURES "minimal.yaml");
    assert_mw(&c->middleware, 0, NULL);
    assert_mw(&c->routes[0].middleware, 0, NULL);
    hy_config_free(c);
}
END_TEST

START_TEST(test_trusted_proxies_errors)
{
    expect_errors(FIXTURES "client_ip_errors.yaml",
                  FIXTURES "client_ip_errors.yaml:6:7: client_ip.trusted_proxies[0]: \"10.1.2.3/8\": host bits are set after the "
                           "prefix (did you mean 10.0.0.0/8?)",
                  FIXTURES "client_ip_errors.yaml:7:7: client_ip.trusted_proxies[1]: \"fd00::1/8\": host bits are set after the "
                           "prefix (did you mean fd00::/8?)",
                  FIXTURES "client_ip_errors.yaml:8:7: client_ip.trusted_proxies[2]: \"not-an-ip\": not an IP address or network "
                           "(expected one like 10.0.0.0/8 or fd00::/8)",
                  FIXTURES "client_ip_errors.yaml:9:7: client_ip.trusted_proxies[3]: \"10.0.0.0/33\": the prefix length must be a "
                           "number from 0 to 32",
                  FIXTURES "client_ip_errors.yaml:10:7: client_ip.trusted_proxies[4]: \"10.0.0.0/08\": the prefix length must be "
                           "a number from 0 to 32",
                  FIXTURES "client_ip_errors.yaml:11:7: client_ip.trusted_proxies[5]: an empty network (expected an address like "
                           "10.0.0.0/8 or fd00::/8)",
                  FIXTURES "client_ip_errors.yaml:12:7: client_ip.trusted_proxies[6]: \"::ffff:10.0.0.0/8\": an IPv4-mapped "
                           "network (::ffff:a.b.c.d) needs a prefix length of at least 96",
                  FIXTURES "client_ip_errors.yaml:13:7: client_ip.trusted_proxies[7]: expected a network (CIDR), got a sequence");
    /* the message is hy_cidr_parse's own */
    hy_cidr_t cidr;
    char err[256];
    ck_assert_int_eq(hy_cidr_parse("10.1.2.3/8", &cidr, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "\"10.1.2.3/8\": host bits are set after the prefix (did you mean 10.0.0.0/8?)");
    /* the section and the list must have the right kinds */
    expect_text_errors("cip.yaml", OBS_HEAD "client_ip: {trusted_proxies: 10.0.0.0/8}\n" OBS_ROUTES,
                       "cip.yaml:4:30: client_ip.trusted_proxies: expected a sequence, got a scalar");
    expect_text_errors("cip.yaml", OBS_HEAD "client_ip: [10.0.0.0/8]\n" OBS_ROUTES,
                       "cip.yaml:4:12: client_ip: expected a mapping, got a sequence");
}
END_TEST

START_TEST(test_trusted_proxies_model)
{
    static const struct {
        int family;
        const char *text;
    } want[] = {{AF_INET, "10.0.0.0/8"}, {AF_INET, "192.168.1.5/32"}, {AF_INET6, "fd00::/8"},
                {AF_INET6, "::1/128"},   {AF_INET, "172.16.0.0/12"},  {AF_INET, "0.0.0.0/0"}};
    char buf[HY_CLIENT_IP_MAX];
    hy_config_t *c = load_ok(FIXTURES "client_ip_ok.yaml");
    ck_assert_uint_eq(c->ntrusted_proxies, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i != c->ntrusted_proxies; ++i) {
        ck_assert_int_eq(c->trusted_proxies[i].family, want[i].family);
        ck_assert_int_eq(hy_cidr_format(&c->trusted_proxies[i], buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, want[i].text); /* a host is a /32 or /128; ::ffff:172.16.0.0/108 is the IPv4 172.16.0.0/12 */
    }
    hy_config_free(c);

    /* an empty list trusts nobody; so does a missing section */
    c = parse_ok("cip.yaml", OBS_HEAD "client_ip: {trusted_proxies: []}\n" OBS_ROUTES);
    ck_assert_uint_eq(c->ntrusted_proxies, 0);
    hy_config_free(c);
    c = load_ok(FIXTURES "minimal.yaml");
    ck_assert_uint_eq(c->ntrusted_proxies, 0);
    hy_config_free(c);
}
END_TEST

START_TEST(test_access_log_errors)
{
    expect_errors(FIXTURES "access_log_errors.yaml",
                  FIXTURES "access_log_errors.yaml:6:11: access_log.sample: expected a number from 0 to 1 (the share of requests "
                           "logged), got \"1.5\"",
                  FIXTURES "access_log_errors.yaml:7:13: access_log.exclude[0]: no route has the path \"/nope\"",
                  FIXTURES "access_log_errors.yaml:7:24: access_log.exclude[2]: no route has the path \"/users/42\"",
                  FIXTURES "access_log_errors.yaml:7:54: access_log.exclude[4]: expected a route path, got a sequence");

    /* sample: a decimal number from 0 to 1, nothing else */
    static const char *const bad[] = {"half", "-0.1", "+0.5", "nan", "inf", "1.0000001", "\" 0.5\"", "2"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        char text[512], want[256], got[512];
        snprintf(text, sizeof(text), OBS_HEAD "access_log: {sample: %s}\n" OBS_ROUTES, bad[i]);
        const char *shown = bad[i][0] == '"' ? " 0.5" : bad[i];
        snprintf(want, sizeof(want),
                 "al.yaml:4:22: access_log.sample: expected a number from 0 to 1 (the share of requests logged), got \"%s\"",
                 shown);
        ck_assert_msg(parse_text("al.yaml", text, strlen(text), got, sizeof(got)) == NULL, "sample %s should be refused", bad[i]);
        ck_assert_str_eq(got, want);
    }
    expect_text_errors("al.yaml", OBS_HEAD "access_log: {sample: }\n" OBS_ROUTES,
                       "al.yaml:4:22: access_log.sample: expected a number from 0 to 1, got an empty value");
    expect_text_errors("al.yaml", OBS_HEAD "access_log: {exclude: /a}\n" OBS_ROUTES,
                       "al.yaml:4:23: access_log.exclude: expected a sequence, got a scalar");
    expect_text_errors("al.yaml", OBS_HEAD "access_log: {path: [a]}\n" OBS_ROUTES,
                       "al.yaml:4:20: access_log.path: expected a string, got a sequence");
    /* exclude names a route by its template as written, not by a request path */
    expect_text_errors("al.yaml", OBS_HEAD "access_log: {exclude: [/u/1, \"/u/{n:int}\", /A]}\n" OBS_ROUTES,
                       "al.yaml:4:24: access_log.exclude[0]: no route has the path \"/u/1\"",
                       "al.yaml:4:30: access_log.exclude[1]: no route has the path \"/u/{n:int}\"",
                       "al.yaml:4:44: access_log.exclude[2]: no route has the path \"/A\"");
}
END_TEST

START_TEST(test_access_log_model)
{
    hy_config_t *c = load_ok(FIXTURES "access_log_ok.yaml");
    ck_assert_str_eq(c->access_log_path, FIXTURES "logs/access.log"); /* relative to the config file's directory */
    ck_assert(c->access_log_sample == 0.25);
    ck_assert_int_eq(c->routes[0].log_excluded, 1); /* /health */
    ck_assert_int_eq(c->routes[1].log_excluded, 0); /* /plaintext */
    ck_assert_int_eq(c->routes[2].log_excluded, 1); /* /users/{id:int} */
    hy_config_free(c);

    /* defaults: stdout (NULL), every request */
    c = load_ok(FIXTURES "minimal.yaml");
    ck_assert_ptr_null(c->access_log_path);
    ck_assert(c->access_log_sample == 1.0);
    ck_assert_int_eq(c->routes[0].log_excluded, 0);
    hy_config_free(c);

    static const struct {
        const char *file;  /* the config path */
        const char *value; /* access_log.path as written */
        const char *want;  /* the model's path (NULL: stdout) */
    } paths[] = {
        {"/etc/hydrant/h.yaml", "logs/a.log", "/etc/hydrant/logs/a.log"},
        {"/etc/hydrant/h.yaml", "./a.log", "/etc/hydrant/./a.log"},
        {"/etc/hydrant/h.yaml", "/var/log/a.log", "/var/log/a.log"},
        {"/etc/hydrant/h.yaml", "stdout", NULL},
        {"/etc/hydrant/h.yaml", "\"-\"", NULL},
        {"h.yaml", "logs/a.log", "logs/a.log"}, /* a config named without a directory: relative to the working directory */
    };
    for (size_t i = 0; i != sizeof(paths) / sizeof(paths[0]); ++i) {
        char text[512];
        snprintf(text, sizeof(text), OBS_HEAD "access_log: {path: %s}\n" OBS_ROUTES, paths[i].value);
        c = parse_ok(paths[i].file, text);
        if (paths[i].want == NULL)
            ck_assert_ptr_null(c->access_log_path);
        else
            ck_assert_str_eq(c->access_log_path, paths[i].want);
        hy_config_free(c);
    }

    static const struct {
        const char *text;
        double want;
    } samples[] = {{"0", 0}, {"1", 1}, {"0.001", 0.001}, {"1e-1", 0.1}, {"1.0", 1}, {".5", 0.5}, {"\"0.75\"", 0.75}};
    for (size_t i = 0; i != sizeof(samples) / sizeof(samples[0]); ++i) {
        char text[512];
        snprintf(text, sizeof(text), OBS_HEAD "access_log: {sample: %s}\n" OBS_ROUTES, samples[i].text);
        c = parse_ok("al.yaml", text);
        ck_assert_msg(c->access_log_sample == samples[i].want, "sample %s gave %g", samples[i].text, c->access_log_sample);
        hy_config_free(c);
    }
}
END_TEST

START_TEST(test_buckets_errors)
{
    expect_errors(FIXTURES "buckets_errors.yaml",
                  FIXTURES "buckets_errors.yaml:5:18: metrics.buckets[1]: bucket bounds must increase (0.05 is not above 0.1)",
                  FIXTURES "buckets_errors.yaml:5:24: metrics.buckets[2]: expected a positive number of seconds, got \"-1\"",
                  FIXTURES "buckets_errors.yaml:5:28: metrics.buckets[3]: expected a positive number of seconds, got \"fast\"",
                  FIXTURES "buckets_errors.yaml:5:34: metrics.buckets[4]: expected a positive number of seconds, got \"0\"",
                  FIXTURES "buckets_errors.yaml:5:42: metrics.buckets[6]: bucket bounds must increase (0.2 is not above 0.2)",
                  FIXTURES "buckets_errors.yaml:5:47: metrics.buckets[7]: expected a number of seconds, got a sequence",
                  FIXTURES "buckets_errors.yaml:5:52: metrics.buckets[8]: expected a positive number of seconds, got \"1e10\"");
    /* empty, or more than 64 */
    expect_text_errors("b.yaml", OBS_HEAD "metrics: {buckets: []}\n" OBS_ROUTES,
                       "b.yaml:4:20: metrics.buckets: expected 1 to 64 bucket bounds");
    char text[2048];
    size_t n = (size_t)snprintf(text, sizeof(text), OBS_HEAD "metrics: {buckets: [");
    for (int i = 1; i <= 65; ++i)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%d", i == 1 ? "" : ", ", i);
    snprintf(text + n, sizeof(text) - n, "]}\n" OBS_ROUTES);
    expect_text_errors("b.yaml", text, "b.yaml:4:20: metrics.buckets: expected 1 to 64 bucket bounds");
    expect_text_errors("b.yaml", OBS_HEAD "metrics: {buckets: 0.1}\n" OBS_ROUTES,
                       "b.yaml:4:20: metrics.buckets: expected a sequence, got a scalar");
    expect_text_errors("b.yaml", OBS_HEAD "metrics: {buckets: [0.5, 0.5]}\n" OBS_ROUTES,
                       "b.yaml:4:26: metrics.buckets[1]: bucket bounds must increase (0.5 is not above 0.5)");
}
END_TEST

START_TEST(test_numbers_are_decimal)
{
    /* access_log.sample and metrics.buckets read "a decimal number (digits, one optional '.', optional exponent)"
     * (parse_number in config.c); strtod(3) alone also takes C99 hex floats, which nobody means in a config */
    expect_text_errors("al.yaml", OBS_HEAD "access_log: {sample: 0x0.8}\n" OBS_ROUTES,
                       "al.yaml:4:22: access_log.sample: expected a number from 0 to 1 (the share of requests logged), got "
                       "\"0x0.8\"");
    expect_text_errors("b.yaml", OBS_HEAD "metrics: {buckets: [0x10]}\n" OBS_ROUTES,
                       "b.yaml:4:21: metrics.buckets[0]: expected a positive number of seconds, got \"0x10\"");
}
END_TEST

START_TEST(test_buckets_model)
{
    hy_config_t *c = load_ok(FIXTURES "observability.yaml");
    static const double want[] = {0.001, 0.01, 0.1, 1, 10};
    ck_assert_uint_eq(c->nbuckets, 5);
    for (size_t i = 0; i != 5; ++i)
        ck_assert(c->buckets[i] == want[i]);
    hy_config_free(c);

    /* the default: NULL, for client_golang's buckets */
    c = load_ok(FIXTURES "minimal.yaml");
    ck_assert_ptr_null(c->buckets);
    ck_assert_uint_eq(c->nbuckets, 0);
    hy_config_free(c);

    /* 64 bounds is the most */
    char text[2048];
    size_t n = (size_t)snprintf(text, sizeof(text), OBS_HEAD "metrics: {buckets: [");
    for (int i = 1; i <= 64; ++i)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%d", i == 1 ? "" : ", ", i);
    snprintf(text + n, sizeof(text) - n, "]}\n" OBS_ROUTES);
    c = parse_ok("b.yaml", text);
    ck_assert_uint_eq(c->nbuckets, 64);
    ck_assert(c->buckets[63] == 64);
    hy_config_free(c);
}
END_TEST

START_TEST(test_admin_errors)
{
    expect_errors(FIXTURES "admin_errors.yaml",
                  FIXTURES "admin_errors.yaml:6:5: server.admin.path: unknown key \"path\" (it belongs in routes[])",
                  FIXTURES "admin_errors.yaml:5:5: server.admin: missing required key \"port\"");
    expect_text_errors("adm.yaml", OBS_HEAD "  admin: {host: 127.0.0.1, port: metrics}\n" OBS_ROUTES,
                       "adm.yaml:4:34: server.admin.port: expected an integer, got \"metrics\"");
    expect_text_errors("adm.yaml", OBS_HEAD "  admin: {host: 127.0.0.1, port: 0}\n" OBS_ROUTES,
                       "adm.yaml:4:34: server.admin.port: 0 is out of range (1-65535)");
    expect_text_errors("adm.yaml", OBS_HEAD "  admin: {host: 127.0.0.1, port: 65536}\n" OBS_ROUTES,
                       "adm.yaml:4:34: server.admin.port: 65536 is out of range (1-65535)");
    expect_text_errors("adm.yaml", OBS_HEAD "  admin: {host: \"[::1]\", port: 9090}\n" OBS_ROUTES,
                       "adm.yaml:4:17: server.admin.host: bad host \"[::1]\" (write an IPv6 address without brackets, e.g. ::1)");
    expect_text_errors("adm.yaml", OBS_HEAD "  admin: {port: 9090}\n" OBS_ROUTES,
                       "adm.yaml:4:10: server.admin: missing required key \"host\"");
    expect_text_errors("adm.yaml", OBS_HEAD "  admin: 9090\n" OBS_ROUTES,
                       "adm.yaml:4:10: server.admin: expected a mapping, got a scalar");
    expect_text_errors("adm.yaml", OBS_HEAD "admin: {host: 127.0.0.1, port: 9090}\n" OBS_ROUTES,
                       "adm.yaml:4:1: admin: unknown key \"admin\" (it belongs in server)");
}
END_TEST

START_TEST(test_admin_model)
{
    hy_config_t *c = load_ok(FIXTURES "observability.yaml");
    ck_assert_ptr_nonnull(c->admin);
    ck_assert_str_eq(c->admin->host, "127.0.0.1");
    ck_assert_uint_eq(c->admin->port, 9090);
    ck_assert_ptr_null(c->admin->tls);
    ck_assert_uint_eq(c->admin->pos.line, 7);
    ck_assert_uint_eq(c->admin->pos.col, 5);
    ck_assert_uint_eq(c->nlisteners, 1); /* the admin listener is not one of server.listen */
    static const hy_mw_kind_t all[] = {HY_MW_REQUEST_ID, HY_MW_CLIENT_IP, HY_MW_ACCESS_LOG, HY_MW_METRICS};
    static const hy_mw_kind_t rid[] = {HY_MW_REQUEST_ID};
    assert_mw(&c->middleware, 4, all);
    assert_mw(&c->routes[1].middleware, 4, all);
    assert_mw(&c->routes[3].middleware, 1, rid);
    ck_assert_uint_eq(c->ntrusted_proxies, 2);
    ck_assert_str_eq(c->access_log_path, "/var/log/hydrant/access.log");
    ck_assert(c->access_log_sample == 0.5);
    ck_assert_int_eq(c->routes[0].log_excluded, 1);
    hy_config_free(c);

    c = load_ok(FIXTURES "minimal.yaml");
    ck_assert_ptr_null(c->admin);
    hy_config_free(c);
}
END_TEST

START_TEST(test_admin_same_address_as_listener)
{
    /* `hydrant check` refuses what `hydrant serve` could not bind: the admin listener on a public listener's address */
    expect_text_errors("adm.yaml", OBS_HEAD "  admin: {host: 127.0.0.1, port: 8080}\n" OBS_ROUTES,
                       "adm.yaml:4:10: server.admin: 127.0.0.1:8080 is already a public listener (server.listen[0] at line 3); "
                       "the admin listener needs its own port");
    /* another host or port is fine */
    hy_config_t *c = parse_ok("adm.yaml", OBS_HEAD "  admin: {host: 127.0.0.1, port: 8081}\n" OBS_ROUTES);
    hy_config_free(c);
    c = parse_ok("adm.yaml", OBS_HEAD "  admin: {host: 127.0.0.2, port: 8080}\n" OBS_ROUTES);
    hy_config_free(c);
}
END_TEST

START_TEST(test_observability_unknown_keys)
{
    expect_errors(
        FIXTURES "observability_keys.yaml",
        FIXTURES "observability_keys.yaml:4:3: server.middleware: unknown key \"middleware\" (it belongs in the top level)",
        FIXTURES "observability_keys.yaml:5:1: acces_log: unknown key \"acces_log\" (did you mean \"access_log\"?)",
        FIXTURES "observability_keys.yaml:6:11: metrics.bucket: unknown key \"bucket\" (did you mean \"buckets\"?)",
        FIXTURES "observability_keys.yaml:7:13: client_ip.trusted: unknown key \"trusted\" (did you mean \"trusted_proxies\"?)",
        FIXTURES "observability_keys.yaml:11:5: routes[0].access_log: unknown key \"access_log\" (it belongs in the top level)");
}
END_TEST

START_TEST(test_observability_summary)
{
    hy_config_t *c = load_ok(FIXTURES "observability.yaml");
    char *got = capture_summary(c);
    /* after limits, before routes: the admin listener, then the global middleware in the order written */
    ck_assert_msg(strstr(got, "http2.max_concurrent_streams=100\n"
                              "admin: 127.0.0.1:9090 (metrics, status, health, ready only)\n"
                              "middleware: request_id, client_ip, access_log, metrics\n"
                              "routes:\n") != NULL,
                  "got:\n%s", got);
    free(got);
    hy_config_free(c);

    c = parse_ok("adm.yaml", OBS_HEAD "  admin: {host: \"::1\", port: 9091}\nmiddleware: [metrics, request_id]\n" OBS_ROUTES);
    got = capture_summary(c);
    ck_assert_msg(
        strstr(got, "\nadmin: [::1]:9091 (metrics, status, health, ready only)\nmiddleware: metrics, request_id\nroutes:\n") !=
            NULL,
        "got:\n%s", got);
    free(got);
    hy_config_free(c);

    /* without server.admin there is no admin line */
    c = load_ok(FIXTURES "minimal.yaml");
    got = capture_summary(c);
    ck_assert_ptr_null(strstr(got, "admin:"));
    ck_assert_ptr_nonnull(strstr(got, "\nmiddleware: none\nroutes:\n"));
    free(got);
    hy_config_free(c);
}
END_TEST

/* ---- helpers of diags.c ---------------------------------------------------------------------------------------------- */

START_TEST(test_diags_format)
{
    hy_diags_t d = {NULL, 0, 0};
    hy_diags_add(&d, "f.yaml", 3, 7, "server.listen[1].port", "bad %s", "port");
    hy_diags_add(&d, "f.yaml", 1, 1, NULL, "no key path");
    hy_diags_add(&d, "f.yaml", 1, 1, "", "empty key path");
    hy_diags_add(&d, "f.yaml", 0, 0, NULL, "about the whole file");
    for (int i = 0; i != 20; ++i)
        hy_diags_add(&d, "f.yaml", 1, 1, NULL, "grow %d", i);
    ck_assert_uint_eq(d.count, 24);
    ck_assert_str_eq(d.msgs[0], "f.yaml:3:7: server.listen[1].port: bad port");
    ck_assert_str_eq(d.msgs[1], "f.yaml:1:1: no key path");
    ck_assert_str_eq(d.msgs[2], "f.yaml:1:1: empty key path");
    ck_assert_str_eq(d.msgs[3], "f.yaml: about the whole file");
    ck_assert_str_eq(d.msgs[23], "f.yaml:1:1: grow 19");

    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    hy_diags_t two = {NULL, 0, 0};
    hy_diags_add(&two, "a", 1, 2, "k", "m");
    hy_diags_add(&two, "a", 3, 4, NULL, "n");
    hy_diags_print(&two, out);
    fclose(out);
    ck_assert_str_eq(buf, "a:1:2: k: m\na:3:4: n\n");
    free(buf);
    hy_diags_clear(&two);

    hy_diags_clear(&d);
    ck_assert_uint_eq(d.count, 0);
    ck_assert_ptr_null(d.msgs);
    hy_diags_add(&d, "f", 1, 1, NULL, "reused");
    ck_assert_str_eq(d.msgs[0], "f:1:1: reused");
    hy_diags_clear(&d);
}
END_TEST

START_TEST(test_quote)
{
    char buf[16];
    ck_assert_str_eq(hy_quote("abc", 3, buf, sizeof(buf)), "\"abc\"");
    ck_assert_str_eq(hy_quote("a\"b\\c", 5, buf, sizeof(buf)), "\"a\\\"b\\\\c\"");
    ck_assert_str_eq(hy_quote("a\nb\r\t", 5, buf, sizeof(buf)), "\"a\\nb\\r\\t\"");
    ck_assert_str_eq(hy_quote("\0\x1f", 2, buf, sizeof(buf)), "\"\\x00\\x1f\"");
    ck_assert_str_eq(hy_quote("abcdefghijklmnop", 16, buf, sizeof(buf)), "\"abcdefghij\"...");
    ck_assert_uint_lt(strlen(buf), sizeof(buf));
}
END_TEST

START_TEST(test_did_you_mean)
{
    static const char *const keys[] = {"listen", "threads", "timeouts", "limits"};
    static const char *const handlers[] = {"health", "users.get", "users.list", "plaintext"};
    ck_assert_str_eq(hy_did_you_mean("threadz", keys, 4), "threads");
    ck_assert_str_eq(hy_did_you_mean("lisen", keys, 4), "listen");
    ck_assert_str_eq(hy_did_you_mean("timeout", keys, 4), "timeouts");
    ck_assert_str_eq(hy_did_you_mean("LIMITS", keys, 4), "limits");
    ck_assert_ptr_null(hy_did_you_mean("database", keys, 4));
    ck_assert_ptr_null(hy_did_you_mean("x", keys, 4));
    ck_assert_ptr_null(hy_did_you_mean("", keys, 4));
    ck_assert_str_eq(hy_did_you_mean("userz", handlers, 4), "users.get");
    ck_assert_str_eq(hy_did_you_mean("users.lst", handlers, 4), "users.list");
    ck_assert_str_eq(hy_did_you_mean("helth", handlers, 4), "health");
    ck_assert_str_eq(hy_did_you_mean("plain", handlers, 4), "plaintext");
    ck_assert_ptr_null(hy_did_you_mean("metrics", handlers, 4));
}
END_TEST

/* ---- sql routes ------------------------------------------------------------------------------------------------------ */

/* The database variables configure a database when the file has none: unset so the runner's environment cannot leak in. */
static void clear_db_env(void)
{
    static const char *const vars[] = {"DATABASE_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_SSLMODE"};
    for (size_t i = 0; i != sizeof(vars) / sizeof(vars[0]); ++i)
        unsetenv(vars[i]);
}

/* Asserts the derived statement of an sql route: its OIDs, its name, its label and the hy_db_stmt_t pointing into it. */
static void expect_stmt(const hy_sql_t *sql, const char *label, const unsigned *oids)
{
    for (size_t i = 0; i != sql->nparams; ++i)
        ck_assert_uint_eq(sql->param_types[i], oids[i]);
    ck_assert_uint_eq(strlen(sql->stmt_name), 23); /* "hy_sql_" + 16 hex digits */
    ck_assert_msg(strncmp(sql->stmt_name, "hy_sql_", 7) == 0 && strspn(sql->stmt_name + 7, "0123456789abcdef") == 16, "%s",
                  sql->stmt_name);
    ck_assert_str_eq(sql->label, label);
    ck_assert_ptr_eq(sql->stmt.name, sql->stmt_name);
    ck_assert_ptr_eq(sql->stmt.sql, sql->query);
    ck_assert_int_eq(sql->stmt.nparams, (int)sql->nparams);
    ck_assert_int_eq(sql->stmt.idempotent, sql->idempotent);
    ck_assert_ptr_eq(sql->stmt.param_types, sql->param_types);
    ck_assert_ptr_eq(sql->stmt.label, sql->label);
    ck_assert_ptr_null(sql->registered);
}

static void expect_param(const hy_sql_param_t *p, hy_sql_source_t source, const char *name, hy_sql_type_t type, const char *def,
                         int optional, unsigned line, unsigned col)
{
    ck_assert_int_eq(p->source, source);
    ck_assert_str_eq(p->name, name);
    ck_assert_int_eq(p->type, type);
    if (def == NULL)
        ck_assert_ptr_null(p->def);
    else
        ck_assert_str_eq(p->def, def);
    ck_assert_int_eq(p->optional, optional);
    ck_assert_uint_eq(p->pos.line, line);
    ck_assert_uint_eq(p->pos.col, col);
}

START_TEST(test_sql_route_model)
{
    clear_db_env();
    hy_config_t *c = load_ok(FIXTURES "sql_ok.yaml");
    ck_assert_int_eq(c->has_database, 1);
    ck_assert_uint_eq(c->nroutes, 6);
    for (size_t i = 0; i != c->nroutes; ++i) {
        ck_assert_int_eq(c->routes[i].kind, HY_ROUTE_SQL);
        ck_assert_ptr_nonnull(c->routes[i].sql);
    }

    /* a path parameter takes the template's type; SELECT is retried by default */
    const hy_route_t *r = &c->routes[0];
    const hy_sql_t *sql = r->sql;
    ck_assert_str_eq(r->path, "/items/{id:int}");
    ck_assert_uint_eq(r->methods, HY_METHOD_GET | HY_METHOD_HEAD);
    ck_assert_str_eq(sql->query, "SELECT id, name FROM items WHERE id = $1");
    ck_assert_uint_eq(sql->query_pos.line, 13);
    ck_assert_uint_eq(sql->query_pos.col, 14);
    ck_assert_uint_eq(sql->nparams, 1);
    expect_param(&sql->params[0], HY_SQL_FROM_PATH, "id", HY_SQL_INT, NULL, 0, 14, 16);
    ck_assert_int_eq(sql->params[0].has_min + sql->params[0].has_max, 0);
    ck_assert_int_eq(sql->result, HY_SQL_RESULT_ONE);
    ck_assert_uint_eq(sql->max_rows, 1000);
    ck_assert_uint_eq(sql->status, 200);
    ck_assert_int_eq(sql->idempotent, 1);
    ck_assert_uint_eq(sql->nerrors, 0);
    ck_assert_int_eq(sql->has_body_params, 0);
    expect_stmt(sql, "sql:GET /items/{id:int}", (const unsigned[]){20});

    /* query parameters with bounds, defaults and '?'; a leading comment does not hide the SELECT */
    r = &c->routes[1];
    sql = r->sql;
    ck_assert_str_eq(sql->query, "-- the newest first\nSELECT id, name FROM items\n"
                                 "WHERE ($2::text IS NULL OR name = $2) AND ($3::bool IS NULL OR active = $3)\n"
                                 "ORDER BY id DESC LIMIT $1\n");
    ck_assert_uint_eq(sql->query_pos.line, 17);
    ck_assert_uint_eq(sql->query_pos.col, 14);
    ck_assert_uint_eq(sql->nparams, 3);
    expect_param(&sql->params[0], HY_SQL_FROM_QUERY, "limit", HY_SQL_INT, "20", 0, 23, 11);
    ck_assert_int_eq(sql->params[0].has_min, 1);
    ck_assert_int_eq(sql->params[0].min, 1);
    ck_assert_int_eq(sql->params[0].has_max, 1);
    ck_assert_int_eq(sql->params[0].max, 100);
    expect_param(&sql->params[1], HY_SQL_FROM_QUERY, "name", HY_SQL_TEXT, NULL, 1, 24, 11);
    ck_assert_int_eq(sql->params[1].has_min, 0);
    ck_assert_int_eq(sql->params[1].has_max, 1);
    ck_assert_int_eq(sql->params[1].max, 40);
    expect_param(&sql->params[2], HY_SQL_FROM_QUERY, "active", HY_SQL_BOOL, NULL, 1, 25, 11);
    ck_assert_int_eq(sql->result, HY_SQL_RESULT_MANY);
    ck_assert_uint_eq(sql->max_rows, 50);
    ck_assert_uint_eq(sql->status, 200);
    ck_assert_int_eq(sql->idempotent, 1);
    ck_assert_int_eq(sql->has_body_params, 0);
    expect_stmt(sql, "sql:GET /items", (const unsigned[]){20, 25, 16});
    ck_assert_str_ne(sql->stmt_name, c->routes[0].sql->stmt_name);

    /* body parameters, result none (204), INSERT is not retried, the error map in file order */
    r = &c->routes[2];
    sql = r->sql;
    ck_assert_uint_eq(r->methods, HY_METHOD_POST);
    ck_assert_uint_eq(sql->nparams, 3);
    expect_param(&sql->params[0], HY_SQL_FROM_BODY, "name", HY_SQL_TEXT, NULL, 0, 32, 16);
    ck_assert_int_eq(sql->params[0].min, 1);
    ck_assert_int_eq(sql->params[0].max, 80);
    expect_param(&sql->params[1], HY_SQL_FROM_BODY, "owner", HY_SQL_UUID, NULL, 0, 32, 39);
    expect_param(&sql->params[2], HY_SQL_FROM_BODY, "at", HY_SQL_TIMESTAMPTZ, NULL, 0, 32, 56);
    ck_assert_int_eq(sql->has_body_params, 1);
    ck_assert_int_eq(sql->result, HY_SQL_RESULT_NONE);
    ck_assert_uint_eq(sql->status, 204);
    ck_assert_int_eq(sql->idempotent, 0);
    ck_assert_uint_eq(sql->nerrors, 4);
    ck_assert_str_eq(sql->errors[0].sqlstate, "23505"); /* a condition name: its code, and the name as "error" */
    ck_assert_int_eq(sql->errors[0].status, 409);
    ck_assert_str_eq(sql->errors[0].error, "unique_violation");
    ck_assert_ptr_null(sql->errors[0].message);
    ck_assert_str_eq(sql->errors[1].sqlstate, "23"); /* a class */
    ck_assert_int_eq(sql->errors[1].status, 422);
    ck_assert_str_eq(sql->errors[1].error, "database_error");
    ck_assert_ptr_null(sql->errors[1].message);
    ck_assert_str_eq(sql->errors[2].sqlstate, "23503"); /* the long form */
    ck_assert_int_eq(sql->errors[2].status, 404);
    ck_assert_str_eq(sql->errors[2].error, "no_such_owner");
    ck_assert_str_eq(sql->errors[2].message, "the owner does not exist");
    ck_assert_str_eq(sql->errors[3].sqlstate, "23P01"); /* a SQLSTATE */
    ck_assert_int_eq(sql->errors[3].status, 409);
    ck_assert_str_eq(sql->errors[3].error, "database_error");
    ck_assert_str_eq(sql->errors[3].message, "overlaps");
    expect_stmt(sql, "sql:POST /items", (const unsigned[]){25, 2950, 1184});

    /* a {slug} is text; status and idempotent as written */
    r = &c->routes[3];
    sql = r->sql;
    ck_assert_uint_eq(r->methods, HY_METHOD_PUT);
    expect_param(&sql->params[0], HY_SQL_FROM_PATH, "slug", HY_SQL_TEXT, NULL, 0, 46, 16);
    ck_assert_int_eq(sql->result, HY_SQL_RESULT_ONE);
    ck_assert_uint_eq(sql->status, 202);
    ck_assert_int_eq(sql->idempotent, 1);
    expect_stmt(sql, "sql:PUT /items/{slug}/touch", (const unsigned[]){25});

    /* no params; WITH is not a SELECT, so not retried unless declared */
    sql = c->routes[4].sql;
    ck_assert_uint_eq(sql->nparams, 0);
    ck_assert_int_eq(sql->idempotent, 0);
    ck_assert_uint_eq(sql->status, 200);
    expect_stmt(sql, "sql:GET /stats", NULL);

    /* idempotent: false wins over the SELECT */
    sql = c->routes[5].sql;
    ck_assert_int_eq(sql->idempotent, 0);
    expect_param(&sql->params[0], HY_SQL_FROM_PATH, "id", HY_SQL_INT, NULL, 0, 55, 16);
    ck_assert_int_eq(sql->params[0].has_min, 1);
    ck_assert_int_eq(sql->params[0].min, 1);
    ck_assert_int_eq(sql->params[0].has_max, 0);
    expect_stmt(sql, "sql:GET /items/{id:int}/name", (const unsigned[]){20});

    /* the summary `hydrant check` prints */
    char *got = capture_summary(c);
    const char *routes = strstr(got, "routes:\n");
    ck_assert_ptr_nonnull(routes);
    ck_assert_str_eq(routes, "routes:\n"
                             "  GET,HEAD  /items/{id:int}       -> sql one, 1 param, status 200, retried on a lost connection\n"
                             "  GET,HEAD  /items                -> sql many, 3 params, status 200, retried on a lost connection\n"
                             "  POST      /items                -> sql none, 3 params, status 204\n"
                             "  PUT       /items/{slug}/touch   -> sql one, 1 param, status 202, retried on a lost connection\n"
                             "  GET,HEAD  /stats                -> sql one, 0 params, status 200\n"
                             "  GET,HEAD  /items/{id:int}/name  -> sql one, 1 param, status 200\n");
    free(got);
    hy_config_free(c);
}
END_TEST

START_TEST(test_sql_key_errors)
{
    clear_db_env();
    expect_errors(FIXTURES "sql_keys.yaml",
                  FIXTURES "sql_keys.yaml:11:7: routes[0].sql.results: unknown key \"results\" (did you mean \"result\"?)",
                  FIXTURES "sql_keys.yaml:14:7: routes[1].sql: missing required key \"query\"",
                  FIXTURES "sql_keys.yaml:17:14: routes[2].sql.query: the query is empty",
                  FIXTURES "sql_keys.yaml:22:15: routes[3].sql.result: unknown result \"mani\" (expected one, many or none; did "
                           "you mean \"many\"?)",
                  FIXTURES "sql_keys.yaml:26:15: routes[4].sql.status: 404 is out of range (200-299)",
                  FIXTURES
                  "sql_keys.yaml:27:5: routes[5]: give only one of \"handler\", \"static\", \"sql\" or \"proxy\" (this route has "
                  "\"handler\" and \"sql\")",
                  FIXTURES "sql_keys.yaml:34:19: routes[6].sql.idempotent: expected true or false, got \"maybe\"",
                  FIXTURES "sql_keys.yaml:35:17: routes[6].sql.max_rows: 0 is out of range (1-100000)");

    /* `sql: {}` and a query that is not there are reported once, without a parameter count on top */
    char first[512];
    static const char empty_sql[] = "server: {listen: [{host: 127.0.0.1, port: 8080}]}\n"
                                    "database: {host: 127.0.0.1}\n"
                                    "routes:\n"
                                    "  - path: /x\n"
                                    "    sql: {params: [query.a]}\n";
    hy_diags_t d = {NULL, 0, 0};
    ck_assert_ptr_null(hy_config_parse("buf.yaml", empty_sql, sizeof(empty_sql) - 1, &d));
    ck_assert_uint_eq(d.count, 1);
    ck_assert_str_eq(d.msgs[0], "buf.yaml:5:10: routes[0].sql: missing required key \"query\"");
    hy_diags_clear(&d);
    static const char not_mapping[] = "server: {listen: [{host: 127.0.0.1, port: 8080}]}\n"
                                      "database: {host: 127.0.0.1}\n"
                                      "routes:\n"
                                      "  - path: /x\n"
                                      "    sql: SELECT 1\n";
    ck_assert_ptr_null(parse_text("buf.yaml", not_mapping, sizeof(not_mapping) - 1, first, sizeof(first)));
    ck_assert_str_eq(first, "buf.yaml:5:10: routes[0].sql: expected a mapping, got a scalar");
}
END_TEST

START_TEST(test_sql_param_errors)
{
    clear_db_env();
    expect_errors(
        FIXTURES "sql_params.yaml",
        FIXTURES "sql_params.yaml:11:25: routes[0].sql.params[1]: \"query.limit:integer\": unknown type \"integer\" (expected int, "
                 "text, bool, uuid, timestamptz or json)",
        FIXTURES "sql_params.yaml:11:46: routes[0].sql.params[2]: \"header.x\": unknown source \"header\" (expected path, query "
                 "or body)",
        FIXTURES "sql_params.yaml:11:56: routes[0].sql.params[3]: \"path.nope\": the route's path has no parameter {nope}",
        FIXTURES "sql_params.yaml:11:67: routes[0].sql.params[4]: \"query.n:int(5..1)\": the lower bound 5 is above the upper "
                 "bound 1",
        FIXTURES "sql_params.yaml:8:5: routes[0].sql: body parameters need a method with a body (methods: [POST], [PUT] or "
                 "[PATCH])",
        FIXTURES "sql_params.yaml:14:14: routes[1].sql.query: the query uses $3 but params lists 2 values",
        FIXTURES "sql_params.yaml:18:14: routes[2].sql.query: the query uses no parameter but params lists 1 value",
        FIXTURES "sql_params.yaml:20:5: routes[3].sql: body parameters need a method with a body (methods: [POST], [PUT] or "
                 "[PATCH])",
        FIXTURES "sql_params.yaml:27:16: routes[4].sql.params[0]: \"query.limit:int(1..100)=500\": the default \"500\" must be "
                 "an integer from 1 to 100",
        FIXTURES "sql_params.yaml:32:11: routes[5].sql.params[0]: expected a parameter spec such as "
                 "query.limit:int(1..100)=20, got a mapping");
}
END_TEST

START_TEST(test_sql_error_map_errors)
{
    clear_db_env();
    expect_errors(FIXTURES "sql_error_map.yaml",
                  FIXTURES "sql_error_map.yaml:14:9: routes[0].sql.error_map.unique_violaton: unknown condition "
                           "\"unique_violaton\" (a PostgreSQL condition name such as unique_violation, a 5-character SQLSTATE "
                           "such as 23505, or a 2-character class such as 23)",
                  FIXTURES "sql_error_map.yaml:16:11: routes[0].sql.error_map.foreign_key_violation: missing \"status\"",
                  FIXTURES "sql_error_map.yaml:17:26: routes[0].sql.error_map.check_violation: 200 is out of range (400-599)",
                  FIXTURES "sql_error_map.yaml:18:9: routes[0].sql.error_map.2: unknown condition \"2\" (a PostgreSQL "
                           "condition name such as unique_violation, a 5-character SQLSTATE such as 23505, or a 2-character "
                           "class such as 23)",
                  FIXTURES "sql_error_map.yaml:19:43: routes[0].sql.error_map.not_null_violation.mesage: unknown key "
                           "\"mesage\" (did you mean \"message\"?)",
                  FIXTURES "sql_error_map.yaml:20:15: routes[0].sql.error_map.23: expected an HTTP status or a mapping "
                           "{status, error, message}, got a sequence");
}
END_TEST

START_TEST(test_sql_needs_database)
{
    clear_db_env();
    expect_errors(FIXTURES "sql_no_database.yaml",
                  FIXTURES "sql_no_database.yaml:8:5: routes[1]: an sql route needs a database (add a \"database\" section or "
                           "set DATABASE_URL)");
    /* the environment may supply the database instead */
    setenv("DB_HOST", "127.0.0.1", 1);
    hy_config_t *c = load_ok(FIXTURES "sql_no_database.yaml");
    ck_assert_int_eq(c->has_database, 1);
    ck_assert_int_eq(c->routes[1].kind, HY_ROUTE_SQL);
    ck_assert_str_eq(c->routes[1].sql->query, "SELECT 1");
    hy_config_free(c);
    unsetenv("DB_HOST");
}
END_TEST

/* ---- suite ----------------------------------------------------------------------------------------------------------- */

Suite *make_config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc;

    tc = tcase_create("yaml");
    tcase_add_checked_fixture(tc, clear_env, NULL);
    tcase_add_test(tc, test_yaml_syntax_error);
    tcase_add_test(tc, test_empty_file);
    tcase_add_test(tc, test_not_a_mapping);
    tcase_add_test(tc, test_aliases_refused);
    tcase_add_test(tc, test_one_document_only);
    tcase_add_test(tc, test_nesting_limit);
    tcase_add_test(tc, test_bad_encoding);
    tcase_add_test(tc, test_unreadable_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_add_checked_fixture(tc, clear_env, NULL);
    tcase_add_test(tc, test_unknown_keys);
    tcase_add_test(tc, test_missing_required_keys);
    tcase_add_test(tc, test_duplicate_keys);
    tcase_add_test(tc, test_wrong_node_kinds);
    tcase_add_test(tc, test_secrets_never_shown);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_checked_fixture(tc, clear_env, NULL);
    tcase_add_test(tc, test_bad_durations);
    tcase_add_test(tc, test_zero_timeouts);
    tcase_add_test(tc, test_bad_sizes_and_limits);
    tcase_add_test(tc, test_bad_ports);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_listener_errors);
    tcase_add_test(tc, test_multiple_errors_all_reported);
    suite_add_tcase(s, tc);

    tc = tcase_create("routes");
    tcase_add_checked_fixture(tc, clear_env, NULL);
    tcase_add_test(tc, test_duplicate_routes);
    tcase_add_test(tc, test_unknown_handler);
    tcase_add_test(tc, test_handler_xor_static);
    tcase_add_test(tc, test_proxy_ok);
    tcase_add_test(tc, test_proxy_errors);
    tcase_add_test(tc, test_methods);
    tcase_add_test(tc, test_static_headers);
    tcase_add_test(tc, test_bad_template_uses_router_message);
    tcase_add_test(tc, test_route_model);
    tcase_add_test(tc, test_sql_route_model);
    tcase_add_test(tc, test_sql_key_errors);
    tcase_add_test(tc, test_sql_param_errors);
    tcase_add_test(tc, test_sql_error_map_errors);
    tcase_add_test(tc, test_sql_needs_database);
    suite_add_tcase(s, tc);

    tc = tcase_create("defaults");
    tcase_add_checked_fixture(tc, clear_env, NULL);
    tcase_add_test(tc, test_minimal_defaults);
    tcase_add_test(tc, test_every_timeout_and_limit);
    tcase_add_test(tc, test_summary_format);
    suite_add_tcase(s, tc);

    tc = tcase_create("interpolation");
    tcase_add_checked_fixture(tc, clear_env, clear_env);
    tcase_add_test(tc, test_interpolation_defaults);
    tcase_add_test(tc, test_interpolation_from_env);
    tcase_add_test(tc, test_interpolation_errors);
    tcase_add_test(tc, test_interpolate_function);
    suite_add_tcase(s, tc);

    tc = tcase_create("environment");
    tcase_add_checked_fixture(tc, clear_env, clear_env);
    tcase_add_test(tc, test_env_overrides_win);
    tcase_add_test(tc, test_env_empty_is_unset);
    tcase_add_test(tc, test_env_bad_values);
    tcase_add_test(tc, test_env_bad_values_absent_nodes);
    tcase_add_test(tc, test_env_port_makes_duplicate);
    suite_add_tcase(s, tc);

    tc = tcase_create("tls");
    tcase_add_unchecked_fixture(tc, setup_tls, teardown_tls);
    tcase_add_checked_fixture(tc, clear_env, clear_env);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_tls_good_pair);
    tcase_add_test(tc, test_tls_relative_paths);
    tcase_add_test(tc, test_tls_unreadable_files);
    tcase_add_test(tc, test_tls_mismatch);
    tcase_add_test(tc, test_tls_not_pem);
    tcase_add_test(tc, test_tls_key_never_shown);
    tcase_add_test(tc, test_env_port_needs_plain_listener);
    tcase_add_test(tc, test_shipped_config_loads);
    suite_add_tcase(s, tc);

    tc = tcase_create("observability");
    tcase_add_checked_fixture(tc, clear_env, NULL);
    tcase_add_test(tc, test_middleware_names);
    tcase_add_test(tc, test_middleware_errors);
    tcase_add_test(tc, test_middleware_model);
    tcase_add_test(tc, test_trusted_proxies_errors);
    tcase_add_test(tc, test_trusted_proxies_model);
    tcase_add_test(tc, test_access_log_errors);
    tcase_add_test(tc, test_access_log_model);
    tcase_add_test(tc, test_buckets_errors);
    tcase_add_test(tc, test_buckets_model);
    tcase_add_test(tc, test_numbers_are_decimal);
    tcase_add_test(tc, test_admin_errors);
    tcase_add_test(tc, test_admin_model);
    tcase_add_test(tc, test_admin_same_address_as_listener);
    tcase_add_test(tc, test_observability_unknown_keys);
    tcase_add_test(tc, test_observability_summary);
    suite_add_tcase(s, tc);

    tc = tcase_create("diagnostics");
    tcase_add_test(tc, test_diags_format);
    tcase_add_test(tc, test_quote);
    tcase_add_test(tc, test_did_you_mean);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(make_config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
