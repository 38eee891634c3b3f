/* check_router.c: unit tests of the router: template validation, duplicates, precedence, methods, decoding, limits. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "router.h"

/* ---- helpers ---------------------------------------------------------------------------------------------------------- */

#define GET HY_METHOD_GET
#define HEAD HY_METHOD_HEAD
#define POST HY_METHOD_POST
#define PUT HY_METHOD_PUT
#define DELETE HY_METHOD_DELETE
#define PATCH HY_METHOD_PATCH
#define OPTIONS HY_METHOD_OPTIONS

static char buf[8192]; /* decoding buffer for the short paths of most tests */

/* Adds a route that must be accepted. `data` identifies it in matches. */
static void add_ok(hy_router_t *r, const char *tmpl, unsigned methods, void *data)
{
    char err[256] = "";
    int ret = hy_router_add(r, tmpl, methods, data, err, sizeof(err));
    ck_assert_msg(ret == 0, "adding %s failed: %s", tmpl, err);
}

/* Adds a route that must be refused with exactly `expected` as the reason. */
static void add_err(hy_router_t *r, const char *tmpl, unsigned methods, const char *expected)
{
    char err[256] = "";
    ck_assert_int_eq(hy_router_add(r, tmpl, methods, NULL, err, sizeof(err)), -1);
    ck_assert_str_eq(err, expected);
}

/* Checks a template that must be refused with exactly `expected`, both by check_template and by add. */
static void template_err(const char *tmpl, const char *expected)
{
    char err[256] = "";
    ck_assert_int_eq(hy_router_check_template(tmpl, err, sizeof(err)), -1);
    ck_assert_str_eq(err, expected);
    hy_router_t *r = hy_router_new();
    add_err(r, tmpl, GET, expected);
    hy_router_free(r);
}

static void template_ok(const char *tmpl)
{
    char err[256] = "";
    int ret = hy_router_check_template(tmpl, err, sizeof(err));
    ck_assert_msg(ret == 0, "template %s refused: %s", tmpl, err);
}

/* Matches a NUL-terminated path with the shared buffer. */
static hy_match_result_t match(const hy_router_t *r, unsigned method, const char *path, hy_match_t *m)
{
    return hy_router_match(r, method, path, strlen(path), buf, sizeof(buf), m);
}

/* Asserts that `path` matches the route identified by `data` for `method`. */
static void expect_route(const hy_router_t *r, unsigned method, const char *path, void *data)
{
    hy_match_t m;
    hy_match_result_t res = match(r, method, path, &m);
    ck_assert_msg(res == HY_MATCH_OK, "%s: expected OK, got %d", path, (int)res);
    ck_assert_msg(m.data == data, "%s: matched %s", path, m.template_);
}

static void expect_result(const hy_router_t *r, unsigned method, const char *path, hy_match_result_t expected)
{
    hy_match_t m;
    hy_match_result_t res = match(r, method, path, &m);
    ck_assert_msg(res == expected, "%s: expected %d, got %d", path, (int)expected, (int)res);
}

/* Asserts that `path` matches and that param `i` is `name` = `value`. */
static void expect_param(const hy_router_t *r, const char *path, size_t i, const char *name, const char *value, size_t len)
{
    hy_match_t m;
    ck_assert_int_eq(match(r, GET, path, &m), HY_MATCH_OK);
    ck_assert_uint_gt(m.nparams, i);
    ck_assert_str_eq(m.params[i].name, name);
    ck_assert_uint_eq(m.params[i].len, len);
    ck_assert_mem_eq(m.params[i].value, value, len);
    ck_assert_int_eq(m.params[i].value[len], '\0');
}

static int r1, r2, r3, r4, r5; /* addresses used as route data */

/* ---- templates -------------------------------------------------------------------------------------------------------- */

START_TEST(template_valid)
{
    template_ok("/");
    template_ok("/a");
    template_ok("/api/v1/users");
    template_ok("/users/{id}");
    template_ok("/users/{id:int}");
    template_ok("/{_x1}/{Y_2:int}");
    template_ok("/caf%C3%A9");
    template_ok("/a%2Fb");
    template_ok("/%7Bnot-a-param%7D");
    template_ok("/...");
    template_ok("/a.b/..c/.d");
    template_ok("/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}/{k}/{l}/{m}/{n}/{o}/{p}"); /* 16 = HY_MAX_PARAMS */
}
END_TEST

START_TEST(template_shape_errors)
{
    template_err(NULL, "template is missing");
    template_err("", "template is empty (it must start with \"/\")");
    template_err("users", "template must start with \"/\"");
    template_err("{id}", "template must start with \"/\"");
    template_err("/a//b", "empty segment (\"//\") in template");
    template_err("//", "empty segment (\"//\") in template");
    template_err("/a/", "trailing \"/\" is not allowed (only the root template \"/\" ends in \"/\")");
    template_err("/a?b=1", "\"?\" is not allowed in a template (the query string is not routed; write %3F for a literal \"?\")");
    template_err("/a#top", "\"#\" is not allowed in a template (clients never send fragments)");
    template_err("/a b", "space at offset 2 in template (write %20)");
    template_err("/a\tb", "control character 0x09 at offset 2 in template");
    template_err("/a\x7f", "control character 0x7f at offset 2 in template");
}
END_TEST

START_TEST(template_param_errors)
{
    template_err("/a{b}", "a parameter must be a whole segment: \"a{b}\"");
    template_err("/{a}b", "a parameter must be a whole segment: \"{a}b\"");
    template_err("/x/{id}.json", "a parameter must be a whole segment: \"{id}.json\"");
    template_err("/a}", "unmatched \"}\" in segment \"a}\"");
    template_err("/{id", "unterminated parameter \"{id\" (missing \"}\")");
    template_err("/{id/x}", "unterminated parameter \"{id\" (missing \"}\")");
    template_err("/{}", "empty parameter name in \"{}\"");
    template_err("/{:int}", "empty parameter name in \"{:int}\"");
    template_err("/{1d}", "bad parameter name in \"{1d}\" (letters, digits and \"_\", not starting with a digit)");
    template_err("/{user-id}", "bad parameter name in \"{user-id}\" (letters, digits and \"_\", not starting with a digit)");
    template_err("/{a{b}", "bad parameter name in \"{a{b}\" (letters, digits and \"_\", not starting with a digit)");
    template_err("/{id:}", "empty parameter type in \"{id:}\" (known: int)");
    template_err("/{id:uuid}", "unknown parameter type \"uuid\" in \"{id:uuid}\" (known: int)");
    template_err("/{id:INT}", "unknown parameter type \"INT\" in \"{id:INT}\" (known: int)");
    template_err("/{id:int:x}", "unknown parameter type \"int:x\" in \"{id:int:x}\" (known: int)");
    template_err("/u/{id}/p/{id}", "parameter \"id\" appears twice");
    template_err("/u/{id}/p/{id:int}", "parameter \"id\" appears twice");
    template_err("/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}/{k}/{l}/{m}/{n}/{o}/{p}/{q}", "too many parameters (at most 16)");
}
END_TEST

START_TEST(template_literal_errors)
{
    template_err("/a%G1", "bad percent-escape in segment \"a%G1\" (expected % and two hex digits)");
    template_err("/a%4", "bad percent-escape in segment \"a%4\" (expected % and two hex digits)");
    template_err("/a%4/b", "bad percent-escape in segment \"a%4\" (expected % and two hex digits)");
    template_err("/a%", "bad percent-escape in segment \"a%\" (expected % and two hex digits)");
    template_err("/a%00", "\"%00\" is not allowed in segment \"a%00\"");
    template_err("/./a", "dot segment \".\" can never match (request paths are normalised)");
    template_err("/a/..", "dot segment \"..\" can never match (request paths are normalised)");
    template_err("/a/%2E%2e/b", "dot segment \"%2E%2e\" can never match (request paths are normalised)");
}
END_TEST

START_TEST(template_too_many_segments)
{
    char t[2 * HY_ROUTER_MAX_SEGMENTS + 8];
    size_t n = 0;
    for (int i = 0; i != HY_ROUTER_MAX_SEGMENTS; ++i) {
        t[n++] = '/';
        t[n++] = 's';
    }
    t[n] = '\0';
    template_ok(t);
    strcpy(t + n, "/s");
    template_err(t, "too many segments in template (at most 128)");
}
END_TEST

START_TEST(template_bad_methods)
{
    hy_router_t *r = hy_router_new();
    add_err(r, "/a", 0, "no methods given for the route");
    add_err(r, "/a", GET | (1u << 9), "unknown method bits 0x200");
    /* nothing was added */
    expect_result(r, GET, "/a", HY_MATCH_NOT_FOUND);
    hy_router_free(r);
}
END_TEST

START_TEST(template_err_buffer)
{
    /* a small or absent err buffer is fine */
    char err[8];
    ck_assert_int_eq(hy_router_check_template("/{id:uuid}", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "unknown");
    ck_assert_int_eq(hy_router_check_template("/{id:uuid}", NULL, 0), -1);
}
END_TEST

START_TEST(duplicates)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/u/{id}", GET | HEAD, &r1);
    add_err(r, "/u/{id}", GET | HEAD, "duplicate route: GET, HEAD /u/{id} is already declared");
    add_err(r, "/u/{uid}", GET, "duplicate route: GET /u/{uid} is already declared as \"/u/{id}\"");
    add_err(r, "/u/{x}", POST | HEAD, "duplicate route: HEAD /u/{x} is already declared as \"/u/{id}\"");
    add_ok(r, "/u/{id:int}", GET | HEAD, &r2); /* a different template, tried first */
    add_err(r, "/u/{n:int}", GET, "duplicate route: GET /u/{n:int} is already declared as \"/u/{id:int}\"");
    add_ok(r, "/u/{uid}", DELETE, &r3); /* same shape, disjoint methods */
    add_err(r, "/u/{id}", PUT | DELETE, "duplicate route: DELETE /u/{id} is already declared as \"/u/{uid}\"");
    add_ok(r, "/u/{id}", PUT, &r4);

    /* literal spellings that decode to the same bytes are one template */
    add_ok(r, "/caf%C3%A9", GET, &r1);
    add_err(r, "/caf\xC3\xA9", GET, "duplicate route: GET /caf\xC3\xA9 is already declared as \"/caf%C3%A9\"");
    add_err(r, "/caf%c3%a9", GET, "duplicate route: GET /caf%c3%a9 is already declared as \"/caf%C3%A9\"");

    /* literal vs parameter and parameter position make different shapes */
    add_ok(r, "/a/b", GET, &r1);
    add_ok(r, "/a/{b}", GET, &r2);
    add_ok(r, "/{a}/b", GET, &r3);
    add_ok(r, "/a/b/c", GET, &r4);
    add_ok(r, "/", GET, &r5);
    add_err(r, "/", GET, "duplicate route: GET / is already declared");

    /* a GET route implies HEAD, but an explicit HEAD route on the same template is allowed and wins */
    add_ok(r, "/h", GET, &r1);
    add_ok(r, "/h", HEAD, &r2);
    expect_route(r, GET, "/h", &r1);
    expect_route(r, HEAD, "/h", &r2);

    /* the refused routes changed nothing */
    expect_route(r, GET, "/u/x", &r1);
    expect_result(r, POST, "/u/x", HY_MATCH_METHOD_NOT_ALLOWED);
    hy_router_free(r);
}
END_TEST

/* ---- match ------------------------------------------------------------------------------------------------------------ */

START_TEST(match_literal_over_param)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/users/{id}", GET, &r1);
    add_ok(r, "/users/me", GET, &r2);
    add_ok(r, "/users", GET, &r3);
    expect_route(r, GET, "/users/me", &r2);
    expect_route(r, GET, "/users/42", &r1);
    expect_route(r, GET, "/users/mee", &r1);
    expect_route(r, GET, "/users", &r3);
    expect_result(r, GET, "/users/me/x", HY_MATCH_NOT_FOUND);
    expect_result(r, GET, "/user", HY_MATCH_NOT_FOUND);
    expect_result(r, GET, "/Users", HY_MATCH_NOT_FOUND); /* case-sensitive */

    hy_match_t m;
    ck_assert_int_eq(match(r, GET, "/users/me", &m), HY_MATCH_OK);
    ck_assert_str_eq(m.template_, "/users/me");
    ck_assert_uint_eq(m.nparams, 0);
    ck_assert_int_eq(match(r, GET, "/users/42", &m), HY_MATCH_OK);
    ck_assert_str_eq(m.template_, "/users/{id}");
    ck_assert_uint_eq(m.nparams, 1);
    ck_assert_str_eq(m.params[0].name, "id");
    ck_assert_str_eq(m.params[0].value, "42");
    ck_assert_uint_eq(m.params[0].len, 2);
    ck_assert_int_eq(m.params[0].type, HY_PARAM_STRING);
    ck_assert_int_eq(m.params[0].ival, 0);
    hy_router_free(r);
}
END_TEST

START_TEST(match_int_over_string)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/u/{name}", GET, &r1);
    add_ok(r, "/u/{id:int}", GET, &r2);
    expect_route(r, GET, "/u/42", &r2);
    expect_route(r, GET, "/u/abc", &r1);
    expect_route(r, GET, "/u/-1", &r1);
    expect_route(r, GET, "/u/9223372036854775808", &r1);

    hy_match_t m;
    ck_assert_int_eq(match(r, GET, "/u/42", &m), HY_MATCH_OK);
    ck_assert_str_eq(m.params[0].name, "id");
    ck_assert_int_eq(m.params[0].type, HY_PARAM_INT);
    ck_assert_int_eq(m.params[0].ival, 42);
    ck_assert_int_eq(match(r, GET, "/u/abc", &m), HY_MATCH_OK);
    ck_assert_str_eq(m.params[0].name, "name");
    ck_assert_int_eq(m.params[0].type, HY_PARAM_STRING);
    hy_router_free(r);
}
END_TEST

START_TEST(match_backtracking)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/a/{x}/c", GET, &r1);
    add_ok(r, "/a/b/d", GET, &r2);
    add_ok(r, "/{p}/b/c/e", GET, &r3);
    add_ok(r, "/a/{n:int}/c/e", GET, &r4);
    expect_route(r, GET, "/a/b/c", &r1);
    expect_param(r, "/a/b/c", 0, "x", "b", 1);
    expect_route(r, GET, "/a/b/d", &r2);
    expect_route(r, GET, "/a/z/c", &r1);
    expect_result(r, GET, "/a/b/e", HY_MATCH_NOT_FOUND);
    /* the literal "a" then {x} lead nowhere for 4 segments: back to the root's {p} */
    expect_route(r, GET, "/a/b/c/e", &r3);
    expect_param(r, "/a/b/c/e", 0, "p", "a", 1);
    /* the int child wins over falling back to {p} */
    expect_route(r, GET, "/a/7/c/e", &r4);
    expect_route(r, GET, "/z/b/c/e", &r3);
    expect_result(r, GET, "/z/7/c/e", HY_MATCH_NOT_FOUND);
    hy_router_free(r);
}
END_TEST

START_TEST(match_int_params)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/n/{v:int}", GET, &r1);
    struct {
        const char *path;
        int ok;
        int64_t value;
    } cases[] = {
        {"/n/0", 1, 0},
        {"/n/7", 1, 7},
        {"/n/007", 1, 7},
        {"/n/0000000000000000000000000042", 1, 42},
        {"/n/9223372036854775807", 1, INT64_MAX},
        {"/n/%31%32", 1, 12},
        {"/n/9223372036854775808", 0, 0},
        {"/n/18446744073709551616", 0, 0},
        {"/n/99999999999999999999999", 0, 0},
        {"/n/-1", 0, 0},
        {"/n/+1", 0, 0},
        {"/n/1a", 0, 0},
        {"/n/a1", 0, 0},
        {"/n/1.5", 0, 0},
        {"/n/1%20", 0, 0},
        {"/n/%201", 0, 0},
        {"/n/0x10", 0, 0},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        hy_match_t m;
        hy_match_result_t res = match(r, GET, cases[i].path, &m);
        if (cases[i].ok) {
            ck_assert_msg(res == HY_MATCH_OK, "%s", cases[i].path);
            ck_assert_int_eq(m.params[0].ival, cases[i].value);
            ck_assert_int_eq(m.params[0].type, HY_PARAM_INT);
        } else {
            ck_assert_msg(res == HY_MATCH_NOT_FOUND, "%s: %d", cases[i].path, (int)res);
        }
    }
    expect_param(r, "/n/007", 0, "v", "007", 3); /* the value keeps the leading zeros */
    hy_router_free(r);
}
END_TEST

START_TEST(match_params_in_order)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/orgs/{org}/repos/{repo}/issues/{num:int}", GET, &r1);
    hy_match_t m;
    ck_assert_int_eq(match(r, GET, "/orgs/acme/repos/rocket/issues/12", &m), HY_MATCH_OK);
    ck_assert_ptr_eq(m.data, &r1);
    ck_assert_str_eq(m.template_, "/orgs/{org}/repos/{repo}/issues/{num:int}");
    ck_assert_uint_eq(m.nparams, 3);
    ck_assert_str_eq(m.params[0].name, "org");
    ck_assert_str_eq(m.params[0].value, "acme");
    ck_assert_str_eq(m.params[1].name, "repo");
    ck_assert_str_eq(m.params[1].value, "rocket");
    ck_assert_str_eq(m.params[2].name, "num");
    ck_assert_str_eq(m.params[2].value, "12");
    ck_assert_int_eq(m.params[2].ival, 12);
    /* the param names follow the route that matched, not the first one declared on that shape */
    add_ok(r, "/orgs/{o}/repos/{r}/issues/{n:int}", DELETE, &r2);
    ck_assert_int_eq(match(r, DELETE, "/orgs/acme/repos/rocket/issues/12", &m), HY_MATCH_OK);
    ck_assert_ptr_eq(m.data, &r2);
    ck_assert_str_eq(m.params[0].name, "o");
    ck_assert_str_eq(m.params[2].name, "n");
    hy_router_free(r);
}
END_TEST

START_TEST(match_root)
{
    hy_router_t *r = hy_router_new();
    expect_result(r, GET, "/", HY_MATCH_NOT_FOUND); /* empty router */
    add_ok(r, "/", GET, &r1);
    add_ok(r, "/a", GET, &r2);
    expect_route(r, GET, "/", &r1);
    expect_route(r, GET, "//", &r1);
    expect_route(r, GET, "/.", &r1);
    expect_route(r, GET, "/..", &r1);
    expect_route(r, GET, "/a/..", &r1);
    expect_route(r, GET, "/a", &r2);
    hy_match_t m;
    ck_assert_int_eq(match(r, GET, "/", &m), HY_MATCH_OK);
    ck_assert_str_eq(m.template_, "/");
    ck_assert_uint_eq(m.nparams, 0);
    expect_result(r, GET, "/b", HY_MATCH_NOT_FOUND);
    hy_router_free(r);
}
END_TEST

START_TEST(match_trailing_slash)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/health", GET, &r1);
    add_ok(r, "/files/{name}", GET, &r2);
    expect_route(r, GET, "/health", &r1);
    expect_result(r, GET, "/health/", HY_MATCH_NOT_FOUND);
    expect_result(r, GET, "/health//", HY_MATCH_NOT_FOUND);
    expect_result(r, GET, "/health/.", HY_MATCH_NOT_FOUND);    /* "/health/" */
    expect_result(r, GET, "/health/x/..", HY_MATCH_NOT_FOUND); /* "/health/" */
    expect_result(r, GET, "/files/", HY_MATCH_NOT_FOUND);      /* a parameter is never empty */
    expect_result(r, GET, "/files/a/", HY_MATCH_NOT_FOUND);
    expect_result(r, POST, "/health/", HY_MATCH_NOT_FOUND); /* not 405: the path does not exist */
    hy_router_free(r);
}
END_TEST

/* ---- methods ---------------------------------------------------------------------------------------------------------- */

START_TEST(methods_names)
{
    ck_assert_uint_eq(hy_method_from_name("GET", 3), GET);
    ck_assert_uint_eq(hy_method_from_name("HEAD", 4), HEAD);
    ck_assert_uint_eq(hy_method_from_name("POST", 4), POST);
    ck_assert_uint_eq(hy_method_from_name("PUT", 3), PUT);
    ck_assert_uint_eq(hy_method_from_name("DELETE", 6), DELETE);
    ck_assert_uint_eq(hy_method_from_name("PATCH", 5), PATCH);
    ck_assert_uint_eq(hy_method_from_name("OPTIONS", 7), OPTIONS);
    ck_assert_uint_eq(hy_method_from_name("GETX", 3), GET); /* only `len` bytes count */
    ck_assert_uint_eq(hy_method_from_name("GET", 2), 0);
    ck_assert_uint_eq(hy_method_from_name("GETX", 4), 0);
    ck_assert_uint_eq(hy_method_from_name("get", 3), 0);
    ck_assert_uint_eq(hy_method_from_name("CONNECT", 7), 0);
    ck_assert_uint_eq(hy_method_from_name("TRACE", 5), 0);
    ck_assert_uint_eq(hy_method_from_name("", 0), 0);
    ck_assert_uint_eq(hy_method_from_name(NULL, 0), 0);
}
END_TEST

START_TEST(methods_format)
{
    char b[64];
    ck_assert_uint_eq(hy_methods_format(0, b, sizeof(b)), 0);
    ck_assert_str_eq(b, "");
    ck_assert_uint_eq(hy_methods_format(GET, b, sizeof(b)), 3);
    ck_assert_str_eq(b, "GET");
    hy_methods_format(HY_METHOD_ALL, b, sizeof(b));
    ck_assert_str_eq(b, "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS");
    hy_methods_format(DELETE | GET | POST, b, sizeof(b));
    ck_assert_str_eq(b, "GET, POST, DELETE");
    hy_methods_format(OPTIONS | PATCH, b, sizeof(b));
    ck_assert_str_eq(b, "PATCH, OPTIONS");
    /* truncation */
    ck_assert_uint_eq(hy_methods_format(GET | HEAD, b, 5), 4);
    ck_assert_str_eq(b, "GET,");
    ck_assert_uint_eq(hy_methods_format(GET | HEAD, b, 1), 0);
    ck_assert_str_eq(b, "");
    ck_assert_uint_eq(hy_methods_format(GET | HEAD, b, 0), 0);
    ck_assert_uint_eq(hy_methods_format(GET | HEAD, b, 10), 9);
    ck_assert_str_eq(b, "GET, HEAD");
}
END_TEST

START_TEST(methods_405)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/users/{id}", GET, &r1);
    add_ok(r, "/users/{id}", DELETE, &r2);
    add_ok(r, "/users", POST, &r3);

    hy_match_t m;
    char allow[64];
    ck_assert_int_eq(match(r, POST, "/users/1", &m), HY_MATCH_METHOD_NOT_ALLOWED);
    ck_assert_uint_eq(m.allowed, GET | HEAD | DELETE);
    ck_assert_ptr_null(m.data);
    ck_assert_uint_eq(m.nparams, 0);
    hy_methods_format(m.allowed, allow, sizeof(allow));
    ck_assert_str_eq(allow, "GET, HEAD, DELETE");

    ck_assert_int_eq(match(r, GET, "/users", &m), HY_MATCH_METHOD_NOT_ALLOWED);
    ck_assert_uint_eq(m.allowed, POST);
    ck_assert_int_eq(match(r, HEAD, "/users", &m), HY_MATCH_METHOD_NOT_ALLOWED); /* HEAD comes only from GET */
    ck_assert_uint_eq(m.allowed, POST);

    /* unknown methods are 0: 405 when the path exists, 404 when it does not */
    ck_assert_int_eq(match(r, 0, "/users/1", &m), HY_MATCH_METHOD_NOT_ALLOWED);
    ck_assert_uint_eq(m.allowed, GET | HEAD | DELETE);
    ck_assert_int_eq(match(r, 0, "/nope", &m), HY_MATCH_NOT_FOUND);
    ck_assert_uint_eq(m.allowed, 0);
    ck_assert_int_eq(match(r, POST, "/nope", &m), HY_MATCH_NOT_FOUND);
    ck_assert_uint_eq(m.allowed, 0);

    /* OK also reports the methods allowed on the path */
    ck_assert_int_eq(match(r, DELETE, "/users/1", &m), HY_MATCH_OK);
    ck_assert_ptr_eq(m.data, &r2);
    ck_assert_uint_eq(m.allowed, GET | HEAD | DELETE);
    hy_router_free(r);
}
END_TEST

START_TEST(methods_union_over_templates)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/a/b", GET, &r1);
    add_ok(r, "/a/{x}", POST, &r2);
    add_ok(r, "/{y}/b", PUT, &r3);
    add_ok(r, "/{y}/{z:int}", PATCH, &r4);
    hy_match_t m;
    char allow[64];
    ck_assert_int_eq(match(r, DELETE, "/a/b", &m), HY_MATCH_METHOD_NOT_ALLOWED);
    ck_assert_uint_eq(m.allowed, GET | HEAD | POST | PUT);
    hy_methods_format(m.allowed, allow, sizeof(allow));
    ck_assert_str_eq(allow, "GET, HEAD, POST, PUT");
    /* the most specific template that allows the method wins */
    expect_route(r, GET, "/a/b", &r1);
    expect_route(r, POST, "/a/b", &r2);
    expect_route(r, PUT, "/a/b", &r3);
    expect_result(r, PATCH, "/a/b", HY_MATCH_METHOD_NOT_ALLOWED);
    ck_assert_int_eq(match(r, DELETE, "/a/5", &m), HY_MATCH_METHOD_NOT_ALLOWED);
    ck_assert_uint_eq(m.allowed, POST | PATCH);
    expect_route(r, PATCH, "/a/5", &r4);
    expect_result(r, GET, "/c/d", HY_MATCH_NOT_FOUND);
    hy_router_free(r);
}
END_TEST

START_TEST(methods_head_via_get)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/g", GET, &r1);
    add_ok(r, "/p", POST, &r2);
    add_ok(r, "/x/{id}", GET, &r3);
    add_ok(r, "/x/{id:int}", HEAD, &r4);
    hy_match_t m;
    ck_assert_int_eq(match(r, HEAD, "/g", &m), HY_MATCH_OK);
    ck_assert_ptr_eq(m.data, &r1);
    ck_assert_uint_eq(m.allowed, GET | HEAD);
    ck_assert_int_eq(match(r, HEAD, "/p", &m), HY_MATCH_METHOD_NOT_ALLOWED);
    ck_assert_uint_eq(m.allowed, POST);
    /* path precedence first: the int template declares HEAD and is more specific */
    expect_route(r, HEAD, "/x/5", &r4);
    expect_route(r, GET, "/x/5", &r3);
    expect_route(r, HEAD, "/x/five", &r3);
    hy_router_free(r);
}
END_TEST

/* ---- encoding --------------------------------------------------------------------------------------------------------- */

START_TEST(encoding_decoded_values)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/files/{name}", GET, &r1);
    add_ok(r, "/users/me", GET, &r2);
    expect_param(r, "/files/a%20b", 0, "name", "a b", 3);
    expect_param(r, "/files/a%2Fb", 0, "name", "a/b", 3); /* %2F does not split */
    expect_param(r, "/files/a%2fb", 0, "name", "a/b", 3);
    expect_param(r, "/files/%2F", 0, "name", "/", 1);
    expect_param(r, "/files/%E2%82%AC", 0, "name", "\xE2\x82\xAC", 3);
    expect_param(r, "/files/100%25", 0, "name", "100%", 4);
    expect_param(r, "/files/%2E%2E%2Fetc", 0, "name", "../etc", 6); /* not a dot segment: it contains a '/' */
    expect_param(r, "/files/...", 0, "name", "...", 3);
    expect_param(r, "/files/..a", 0, "name", "..a", 3);
    expect_param(r, "/files/a+b", 0, "name", "a+b", 3); /* '+' is not a space in a path */
    expect_result(r, GET, "/files/a/b", HY_MATCH_NOT_FOUND);
    expect_route(r, GET, "/%75sers/%6De", &r2); /* literals compare after decoding */
    expect_result(r, GET, "/users%2Fme", HY_MATCH_NOT_FOUND);
    hy_router_free(r);
}
END_TEST

START_TEST(encoding_literal_templates)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/caf%C3%A9", GET, &r1);
    add_ok(r, "/a%2Fb", GET, &r2);
    add_ok(r, "/%7Bx%7D", GET, &r3);
    expect_route(r, GET, "/caf%c3%a9", &r1);
    expect_route(r, GET, "/caf\xC3\xA9", &r1);
    expect_route(r, GET, "/a%2Fb", &r2);
    expect_result(r, GET, "/a/b", HY_MATCH_NOT_FOUND);
    expect_route(r, GET, "/%7bx%7d", &r3);
    expect_route(r, GET, "/{x}", &r3);
    hy_router_free(r);
}
END_TEST

START_TEST(encoding_malformed)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/files/{name}", GET, &r1);
    const char *bad[] = {
        "/files/%G1", "/files/%1G",   "/files/%4",        "/files/%", "/files/a%2", "/%4/files/x", "/files/%00",
        "/files/a%",  "/nothing/%ZZ", "/a/../%x/files/b", "files/a",  "x/files/a",  "*",
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        hy_match_t m;
        ck_assert_msg(match(r, GET, bad[i], &m) == HY_MATCH_BAD_REQUEST, "%s", bad[i]);
        ck_assert_ptr_null(m.data);
    }
    hy_match_t m;
    /* empty path, raw NUL byte, buffer too small */
    ck_assert_int_eq(hy_router_match(r, GET, "", 0, buf, sizeof(buf), &m), HY_MATCH_BAD_REQUEST);
    ck_assert_int_eq(hy_router_match(r, GET, "/files/a\0b", 10, buf, sizeof(buf), &m), HY_MATCH_BAD_REQUEST);
    ck_assert_int_eq(hy_router_match(r, GET, "/files/ab", 9, buf, 9, &m), HY_MATCH_BAD_REQUEST);
    ck_assert_int_eq(hy_router_match(r, GET, "/files/ab", 9, buf, 10, &m), HY_MATCH_OK);
    /* `len` bounds the path: what follows is not read */
    ck_assert_int_eq(hy_router_match(r, GET, "/files/ab%ZZ", 9, buf, 10, &m), HY_MATCH_OK);
    ck_assert_str_eq(m.params[0].value, "ab");
    hy_router_free(r);
}
END_TEST

START_TEST(encoding_dot_segments)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/a/b", GET, &r1);
    add_ok(r, "/b", GET, &r2);
    add_ok(r, "/files/{name}", GET, &r3);
    expect_route(r, GET, "/a/./b", &r1);
    expect_route(r, GET, "/a/x/../b", &r1);
    expect_route(r, GET, "/a/x/y/../../b", &r1);
    expect_route(r, GET, "/../a/b", &r1);
    expect_route(r, GET, "/../../../a/b", &r1);
    expect_route(r, GET, "/a/../b", &r2);
    expect_route(r, GET, "/a/%2E%2E/b", &r2);
    expect_route(r, GET, "/a/%2e%2E/b", &r2);
    expect_route(r, GET, "/a/.%2e/b", &r2);
    expect_route(r, GET, "/a/%2E/b", &r1);
    expect_route(r, GET, "/files/x/../../b", &r2);
    expect_route(r, GET, "/files/%2E%2E/a/b", &r1);
    expect_param(r, "/files/a/../c", 0, "name", "c", 1);
    expect_result(r, GET, "/files/a/..", HY_MATCH_NOT_FOUND); /* "/files/" */
    expect_result(r, GET, "/files/..", HY_MATCH_NOT_FOUND);   /* "/" */
    hy_router_free(r);
}
END_TEST

START_TEST(encoding_double_slashes)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/files/{name}", GET, &r1);
    add_ok(r, "/", GET, &r2);
    expect_param(r, "//files///x", 0, "name", "x", 1);
    expect_param(r, "/files//x", 0, "name", "x", 1);
    expect_route(r, GET, "///", &r2);
    expect_result(r, GET, "/files//", HY_MATCH_NOT_FOUND);
    expect_result(r, GET, "/files/x//", HY_MATCH_NOT_FOUND);
    hy_router_free(r);
}
END_TEST

/* ---- limits ----------------------------------------------------------------------------------------------------------- */

/* Matches a path of `len` bytes with a buffer of exactly len + 1 bytes (the least router.h allows), so that AddressSanitizer
 * or valgrind catch any write past it. */
static hy_match_result_t match_big(const hy_router_t *r, const char *path, size_t len, hy_match_t *m, char **bufp)
{
    *bufp = malloc(len + 1);
    ck_assert_ptr_nonnull(*bufp);
    return hy_router_match(r, GET, path, len, *bufp, len + 1, m);
}

START_TEST(limits_64k_segment)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/files/{name}", GET, &r1);
    size_t n = 64 * 1024;
    char *path = malloc(n + 8), *b;
    memcpy(path, "/files/", 7);
    memset(path + 7, 'a', n);
    hy_match_t m;
    ck_assert_int_eq(match_big(r, path, n + 7, &m, &b), HY_MATCH_OK);
    ck_assert_uint_eq(m.params[0].len, n);
    ck_assert_int_eq(m.params[0].value[n - 1], 'a');
    ck_assert_int_eq(m.params[0].value[n], '\0');
    free(b);
    /* the same length, all escapes */
    for (size_t i = 7; i + 3 <= n + 7; i += 3)
        memcpy(path + i, "%41", 3);
    ck_assert_int_eq(match_big(r, path, 7 + (n / 3) * 3, &m, &b), HY_MATCH_OK);
    ck_assert_uint_eq(m.params[0].len, n / 3);
    ck_assert_int_eq(m.params[0].value[0], 'A');
    free(b);
    /* a long path that matches nothing */
    path[1] = 'x';
    ck_assert_int_eq(match_big(r, path, n + 7, &m, &b), HY_MATCH_NOT_FOUND);
    free(b);
    free(path);
    hy_router_free(r);
}
END_TEST

START_TEST(limits_many_segments)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/{x}", GET, &r1);
    add_ok(r, "/a/{y:int}", GET, &r2);
    add_ok(r, "/{p}/{q}/{r}", GET, &r3);
    size_t nseg = 10000;
    char *path = malloc(nseg * 16 + 16), *b;
    hy_match_t m;

    /* 10,000 segments: too deep for any template */
    size_t n = 0;
    for (size_t i = 0; i != nseg; ++i)
        n += (size_t)sprintf(path + n, "/s%zu", i);
    ck_assert_int_eq(match_big(r, path, n, &m, &b), HY_MATCH_NOT_FOUND);
    free(b);

    /* ... followed by 9,998 ".." segments and one more: back to the first two segments */
    for (size_t i = 0; i != nseg - 2; ++i)
        n += (size_t)sprintf(path + n, "/..");
    n += (size_t)sprintf(path + n, "/t");
    ck_assert_int_eq(match_big(r, path, n, &m, &b), HY_MATCH_OK);
    ck_assert_ptr_eq(m.data, &r3);
    ck_assert_str_eq(m.params[0].value, "s0");
    ck_assert_str_eq(m.params[1].value, "s1");
    ck_assert_str_eq(m.params[2].value, "t");
    free(b);

    /* ending in ".." leaves a trailing slash ("/s0/"), which nothing matches */
    n -= 2;
    n += (size_t)sprintf(path + n, "/..");
    ck_assert_int_eq(match_big(r, path, n, &m, &b), HY_MATCH_NOT_FOUND);
    free(b);

    /* 10,000 "%2E%2E" segments go to the root, then "/a/42" */
    n = 0;
    for (size_t i = 0; i != nseg; ++i)
        n += (size_t)sprintf(path + n, "/%%2E%%2E");
    n += (size_t)sprintf(path + n, "/a/42");
    ck_assert_int_eq(match_big(r, path, n, &m, &b), HY_MATCH_OK);
    ck_assert_ptr_eq(m.data, &r2);
    ck_assert_int_eq(m.params[0].ival, 42);
    free(b);

    /* 10,000 slashes collapse */
    memset(path, '/', nseg);
    memcpy(path + nseg, "a/7", 3);
    ck_assert_int_eq(match_big(r, path, nseg + 3, &m, &b), HY_MATCH_OK);
    ck_assert_ptr_eq(m.data, &r2);
    free(b);

    /* 64 KiB of "/a": 32,768 segments */
    n = 0;
    while (n + 2 <= 64 * 1024)
        n += (size_t)sprintf(path + n, "/a");
    ck_assert_int_eq(match_big(r, path, n, &m, &b), HY_MATCH_NOT_FOUND);
    free(b);
    free(path);
    hy_router_free(r);
}
END_TEST

START_TEST(limits_deep_template)
{
    hy_router_t *r = hy_router_new();
    char t[4 * HY_ROUTER_MAX_SEGMENTS + 16], p[4 * HY_ROUTER_MAX_SEGMENTS + 16];
    size_t tn = 0, pn = 0;
    for (int i = 0; i != HY_ROUTER_MAX_SEGMENTS; ++i) {
        tn += (size_t)sprintf(t + tn, "/s");
        pn += (size_t)sprintf(p + pn, "/s");
    }
    add_ok(r, t, GET, &r1);
    expect_route(r, GET, p, &r1);
    strcpy(p + pn, "/s");
    expect_result(r, GET, p, HY_MATCH_NOT_FOUND);
    pn = (size_t)sprintf(p, "/x/..");
    for (int i = 0; i != HY_ROUTER_MAX_SEGMENTS; ++i)
        pn += (size_t)sprintf(p + pn, "/s");
    expect_route(r, GET, p, &r1);
    hy_router_free(r);
}
END_TEST

START_TEST(limits_max_params)
{
    hy_router_t *r = hy_router_new();
    add_ok(r, "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}/{k}/{l}/{m}/{n}/{o}/{p:int}", GET, &r1);
    hy_match_t m;
    ck_assert_int_eq(match(r, GET, "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", &m), HY_MATCH_OK);
    ck_assert_uint_eq(m.nparams, HY_MAX_PARAMS);
    ck_assert_str_eq(m.params[0].name, "a");
    ck_assert_str_eq(m.params[9].value, "10");
    ck_assert_str_eq(m.params[15].name, "p");
    ck_assert_int_eq(m.params[15].ival, 16);
    /* the tight buffer the header promises is enough */
    const char *path = "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16";
    char small[64];
    ck_assert_uint_lt(strlen(path) + HY_MAX_PARAMS, sizeof(small));
    ck_assert_int_eq(hy_router_match(r, GET, path, strlen(path), small, strlen(path) + 1, &m), HY_MATCH_OK);
    ck_assert_str_eq(m.params[15].value, "16");
    hy_router_free(r);
}
END_TEST

START_TEST(limits_many_routes)
{
    hy_router_t *r = hy_router_new();
    static int data[1000];
    char t[64];
    for (int i = 0; i != 1000; ++i) {
        snprintf(t, sizeof(t), "/r/%d/x", (i * 7919) % 1000); /* out of order, to exercise the sorted insert */
        add_ok(r, t, GET, &data[(i * 7919) % 1000]);
    }
    for (int i = 0; i != 1000; ++i) {
        snprintf(t, sizeof(t), "/r/%d/x", i);
        expect_route(r, GET, t, &data[i]);
    }
    expect_result(r, GET, "/r/1000/x", HY_MATCH_NOT_FOUND);
    hy_router_free(r);
    hy_router_free(NULL);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------------------------------------ */

/* ---- catch-all ------------------------------------------------------------------------------------------------------- */

/* Asserts that `path` matches `data` with its last param being the catch-all `rest` = `value`. */
static void expect_rest(const hy_router_t *r, const char *path, void *data, const char *value)
{
    hy_match_t m;
    hy_match_result_t res = match(r, GET, path, &m);
    ck_assert_msg(res == HY_MATCH_OK, "%s: expected OK, got %d", path, (int)res);
    ck_assert_msg(m.data == data, "%s: matched %s", path, m.template_);
    ck_assert_uint_ge(m.nparams, 1);
    const hy_param_t *p = &m.params[m.nparams - 1];
    ck_assert_str_eq(p->name, "rest");
    ck_assert_int_eq(p->type, HY_PARAM_REST);
    ck_assert_uint_eq(p->len, strlen(value));
    ck_assert_str_eq(p->value, value);
}

START_TEST(rest_templates)
{
    template_ok("/{rest...}");
    template_ok("/api/{v}/{rest...}");
    template_err("/a/{rest...}/b", "a catch-all parameter \"{rest...}\" must be the last segment");
    template_err("/a/{rest...:int}", "a catch-all parameter has no type: \"{rest...:int}\"");
    template_err("/a/{...}", "empty parameter name in \"{...}\"");
    template_err("/a/{r.s...}", "bad parameter name in \"{r.s...}\" (letters, digits and \"_\", not starting with a digit)");
    template_err("/a/{x}/{x...}", "parameter \"x\" appears twice");
    hy_router_t *r = hy_router_new();
    add_ok(r, "/a/{rest...}", GET, NULL);
    add_ok(r, "/a/{x}", GET, NULL); /* a different shape */
    add_err(r, "/a/{other...}", GET, "duplicate route: GET /a/{other...} is already declared as \"/a/{rest...}\"");
    hy_router_free(r);
}
END_TEST

START_TEST(rest_values_raw)
{
    hy_router_t *r = hy_router_new();
    int a = 0;
    add_ok(r, "/api/v1/catalog/{rest...}", GET, &a);
    expect_rest(r, "/api/v1/catalog", &a, "");
    expect_rest(r, "/api/v1/catalog/", &a, "/");
    expect_rest(r, "/api/v1/catalog/items", &a, "/items");
    expect_rest(r, "/api/v1/catalog/items/42/", &a, "/items/42/");
    expect_rest(r, "/api/v1/catalog/a%2Fb/caf%C3%A9%20x", &a, "/a%2Fb/caf%C3%A9%20x"); /* not decoded */
    expect_rest(r, "/api/v1/catalog//x///y", &a, "/x/y");                              /* slashes collapsed */
    expect_rest(r, "/api/v1/catalog/x/../y/./z", &a, "/y/z");                          /* dot segments resolved */
    expect_rest(r, "/api/v1/%63atalog/x", &a, "/x");                                   /* the literal part is decoded */
    expect_result(r, GET, "/api/v1/catalog/x/../../..", HY_MATCH_NOT_FOUND);           /* ".." leaves the prefix */
    expect_result(r, GET, "/api/v1/catalogue", HY_MATCH_NOT_FOUND);
    expect_result(r, GET, "/api/v1/catalog/%zz", HY_MATCH_BAD_REQUEST);
    hy_router_free(r);
}
END_TEST

START_TEST(rest_precedence)
{
    hy_router_t *r = hy_router_new();
    int all = 0, a = 0, ab = 0, ax = 0, root = 0, deep = 0;
    add_ok(r, "/{rest...}", GET, &all);
    add_ok(r, "/", GET, &root);
    add_ok(r, "/a", GET, &a);
    add_ok(r, "/a/b", GET, &ab);
    add_ok(r, "/a/{x}", POST, &ax);
    add_ok(r, "/a/b/{rest...}", GET, &deep);
    expect_route(r, GET, "/", &root);         /* an exact template wins over zero segments of a catch-all */
    expect_rest(r, "/zzz/y", &all, "/zzz/y"); /* nothing else takes it */
    expect_route(r, GET, "/a", &a);
    expect_rest(r, "/a/", &all, "/a/"); /* "/a" does not take a trailing slash */
    expect_route(r, GET, "/a/b", &ab);
    expect_rest(r, "/a/b/", &deep, "/");
    expect_rest(r, "/a/b/c/d", &deep, "/c/d");
    expect_rest(r, "/a/c", &all, "/a/c"); /* "/a/{x}" is POST only: the catch-all takes GET */
    expect_route(r, POST, "/a/c", &ax);
    hy_match_t m;
    ck_assert_int_eq(match(r, DELETE, "/a/c", &m), HY_MATCH_METHOD_NOT_ALLOWED);
    ck_assert_uint_eq(m.allowed, GET | HEAD | POST);
    hy_router_free(r);
}
END_TEST

START_TEST(rest_with_params_and_limits)
{
    hy_router_t *r = hy_router_new();
    int a = 0;
    add_ok(r, "/u/{id:int}/files/{rest...}", GET, &a);
    hy_match_t m;
    ck_assert_int_eq(match(r, GET, "/u/7/files/x/y.txt", &m), HY_MATCH_OK);
    ck_assert_uint_eq(m.nparams, 2);
    ck_assert_int_eq(m.params[0].ival, 7);
    ck_assert_str_eq(m.params[1].value, "/x/y.txt");
    expect_result(r, GET, "/u/x/files/y", HY_MATCH_NOT_FOUND);

    /* a catch-all reaches HY_ROUTER_MAX_SEGMENTS segments and no further */
    static char path[4 * HY_ROUTER_MAX_SEGMENTS + 16];
    size_t n = (size_t)snprintf(path, sizeof(path), "/u/1/files");
    for (size_t i = 3; i != HY_ROUTER_MAX_SEGMENTS; ++i)
        n += (size_t)snprintf(path + n, sizeof(path) - n, "/s");
    ck_assert_int_eq(match(r, GET, path, &m), HY_MATCH_OK);
    ck_assert_uint_eq(m.params[1].len, 2 * (HY_ROUTER_MAX_SEGMENTS - 3));
    snprintf(path + n, sizeof(path) - n, "/s");
    expect_result(r, GET, path, HY_MATCH_NOT_FOUND);

    /* the buffer: HY_ROUTER_BUF_SIZE is enough, a smaller one is a bad request rather than an overflow */
    const char *p = "/u/1/files/abc/def";
    size_t len = strlen(p), need = HY_ROUTER_BUF_SIZE(len);
    char *small = malloc(need);
    ck_assert_int_eq(hy_router_match(r, GET, p, len, small, need, &m), HY_MATCH_OK);
    ck_assert_str_eq(m.params[1].value, "/abc/def");
    ck_assert_int_eq(hy_router_match(r, GET, p, len, small, len + 1, &m), HY_MATCH_BAD_REQUEST);
    free(small);
    hy_router_free(r);
}
END_TEST

Suite *make_router_suite(void)
{
    Suite *s = suite_create("router");

    TCase *tc = tcase_create("templates");
    tcase_add_test(tc, template_valid);
    tcase_add_test(tc, template_shape_errors);
    tcase_add_test(tc, template_param_errors);
    tcase_add_test(tc, template_literal_errors);
    tcase_add_test(tc, template_too_many_segments);
    tcase_add_test(tc, template_bad_methods);
    tcase_add_test(tc, template_err_buffer);
    tcase_add_test(tc, duplicates);
    suite_add_tcase(s, tc);

    tc = tcase_create("match");
    tcase_add_test(tc, match_literal_over_param);
    tcase_add_test(tc, match_int_over_string);
    tcase_add_test(tc, match_backtracking);
    tcase_add_test(tc, match_int_params);
    tcase_add_test(tc, match_params_in_order);
    tcase_add_test(tc, match_root);
    tcase_add_test(tc, match_trailing_slash);
    suite_add_tcase(s, tc);

    tc = tcase_create("methods");
    tcase_add_test(tc, methods_names);
    tcase_add_test(tc, methods_format);
    tcase_add_test(tc, methods_405);
    tcase_add_test(tc, methods_union_over_templates);
    tcase_add_test(tc, methods_head_via_get);
    suite_add_tcase(s, tc);

    tc = tcase_create("encoding");
    tcase_add_test(tc, encoding_decoded_values);
    tcase_add_test(tc, encoding_literal_templates);
    tcase_add_test(tc, encoding_malformed);
    tcase_add_test(tc, encoding_dot_segments);
    tcase_add_test(tc, encoding_double_slashes);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_set_timeout(tc, 30); /* generous for valgrind */
    tcase_add_test(tc, limits_64k_segment);
    tcase_add_test(tc, limits_many_segments);
    tcase_add_test(tc, limits_deep_template);
    tcase_add_test(tc, limits_max_params);
    tcase_add_test(tc, limits_many_routes);
    suite_add_tcase(s, tc);

    tc = tcase_create("catch-all");
    tcase_add_test(tc, rest_templates);
    tcase_add_test(tc, rest_values_raw);
    tcase_add_test(tc, rest_precedence);
    tcase_add_test(tc, rest_with_params_and_limits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(make_router_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
