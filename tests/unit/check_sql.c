/* check_sql.c: unit tests of the `sql` route kind's pure functions (app/sqlroute.c): parameter specs with every
 * refusal's exact message, value checks per type, the timestamp and bytea conversions, placeholder counting, the
 * SELECT test and the condition names. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sqlroute.h"

/* ---- helpers ---------------------------------------------------------------------------------------------------------- */

#define S(lit) (lit), (sizeof(lit) - 1)

/* The route template of these tests, as config.c reads it: /items/{id:int}/{slug}. */
static int path_type(void *ctx, const char *name)
{
    ++*(int *)ctx;
    if (strcmp(name, "id") == 0)
        return HY_SQL_INT;
    if (strcmp(name, "slug") == 0)
        return HY_SQL_TEXT;
    return -1;
}

static int ncalls;

/* Parses `spec`, which must be accepted, into *p (cleared by the caller). */
static void parse_ok(const char *spec, hy_sql_param_t *p)
{
    char err[256] = "";
    int r = hy_sql_param_parse(spec, path_type, &ncalls, p, err, sizeof(err));
    ck_assert_msg(r == 0, "\"%s\" refused: %s", spec, err);
    ck_assert_ptr_nonnull(p->name);
}

/* Parses `spec`, which must be refused with exactly `want`, and leaves nothing allocated. */
static void parse_fails(const char *spec, const char *want)
{
    char err[256] = "";
    hy_sql_param_t p;
    memset(&p, 0x5a, sizeof(p));
    int r = hy_sql_param_parse(spec, path_type, &ncalls, &p, err, sizeof(err));
    ck_assert_msg(r == -1, "\"%s\" accepted", spec);
    ck_assert_msg(strcmp(err, want) == 0, "\"%s\": got \"%s\", want \"%s\"", spec, err, want);
    ck_assert_ptr_null(p.name);
    ck_assert_ptr_null(p.def);
}

/* A parameter of `type` with the given bounds, for the value checks. */
static hy_sql_param_t param(hy_sql_type_t type, int has_min, int64_t min, int has_max, int64_t max)
{
    hy_sql_param_t p;
    memset(&p, 0, sizeof(p));
    p.source = HY_SQL_FROM_QUERY;
    p.type = type;
    p.has_min = has_min, p.min = min;
    p.has_max = has_max, p.max = max;
    return p;
}

/* Checks `len` bytes of v for p: accepted and bound as `want`. */
static void value_ok(const hy_sql_param_t *p, const char *v, size_t len, const char *want)
{
    char out[256], err[256] = "";
    memset(out, 0x5a, sizeof(out));
    ck_assert_uint_lt(len + 2, sizeof(out));
    int r = hy_sql_value_check(p, v, len, out, len + 2, err, sizeof(err));
    ck_assert_msg(r == 0, "%s \"%.*s\" refused: %s", hy_sql_type_name(p->type), (int)len, v, err);
    ck_assert_msg(strcmp(out, want) == 0, "%s \"%.*s\" bound as \"%s\", want \"%s\"", hy_sql_type_name(p->type), (int)len, v, out,
                  want);
}

/* Checks `len` bytes of v for p: refused with exactly `want`. */
static void value_fails(const hy_sql_param_t *p, const char *v, size_t len, const char *want)
{
    char out[256], err[256] = "";
    ck_assert_uint_lt(len + 2, sizeof(out));
    int r = hy_sql_value_check(p, v, len, out, len + 2, err, sizeof(err));
    ck_assert_msg(r == -1, "%s \"%.*s\" accepted", hy_sql_type_name(p->type), (int)len, v);
    ck_assert_msg(strcmp(err, want) == 0, "%s \"%.*s\": got \"%s\", want \"%s\"", hy_sql_type_name(p->type), (int)len, v, err,
                  want);
}

#define VALUE_OK(p, lit, want) value_ok((p), S(lit), (want))
#define VALUE_FAILS(p, lit, want) value_fails((p), S(lit), (want))

/* ---- parameter specs: accepted ---------------------------------------------------------------------------------------- */

START_TEST(test_param_path)
{
    hy_sql_param_t p;

    ncalls = 0;
    parse_ok("path.id", &p); /* {id:int}: an int */
    ck_assert_int_eq(p.source, HY_SQL_FROM_PATH);
    ck_assert_str_eq(p.name, "id");
    ck_assert_int_eq(p.type, HY_SQL_INT);
    ck_assert_ptr_null(p.def);
    ck_assert_int_eq(p.optional, 0);
    ck_assert_int_eq(p.has_min, 0);
    ck_assert_int_eq(p.has_max, 0);
    ck_assert_int_eq(ncalls, 1); /* the template was asked */
    hy_sql_param_clear(&p);
    ck_assert_ptr_null(p.name);

    parse_ok("path.slug", &p); /* {slug}: text */
    ck_assert_int_eq(p.source, HY_SQL_FROM_PATH);
    ck_assert_str_eq(p.name, "slug");
    ck_assert_int_eq(p.type, HY_SQL_TEXT);
    hy_sql_param_clear(&p);

    parse_ok("path.slug:uuid", &p); /* a written type wins over the template's */
    ck_assert_int_eq(p.type, HY_SQL_UUID);
    hy_sql_param_clear(&p);

    parse_ok("path.id(1..)", &p); /* the template's int takes bounds */
    ck_assert_int_eq(p.type, HY_SQL_INT);
    ck_assert_int_eq(p.has_min, 1);
    ck_assert_int_eq(p.min, 1);
    ck_assert_int_eq(p.has_max, 0);
    hy_sql_param_clear(&p);

    ncalls = 0;
    parse_ok("query.id", &p); /* query and body parameters do not ask the template */
    ck_assert_int_eq(ncalls, 0);
    hy_sql_param_clear(&p);
}
END_TEST

START_TEST(test_param_query_and_body)
{
    hy_sql_param_t p;

    parse_ok("query.q", &p); /* untyped: text, required */
    ck_assert_int_eq(p.source, HY_SQL_FROM_QUERY);
    ck_assert_str_eq(p.name, "q");
    ck_assert_int_eq(p.type, HY_SQL_TEXT);
    ck_assert_ptr_null(p.def);
    ck_assert_int_eq(p.optional, 0);
    hy_sql_param_clear(&p);

    parse_ok("query.limit:int=20", &p);
    ck_assert_int_eq(p.type, HY_SQL_INT);
    ck_assert_str_eq(p.def, "20");
    ck_assert_int_eq(p.has_min + p.has_max, 0);
    hy_sql_param_clear(&p);

    parse_ok("query.limit:int(1..100)=20", &p);
    ck_assert_str_eq(p.name, "limit");
    ck_assert_int_eq(p.type, HY_SQL_INT);
    ck_assert_int_eq(p.has_min, 1);
    ck_assert_int_eq(p.min, 1);
    ck_assert_int_eq(p.has_max, 1);
    ck_assert_int_eq(p.max, 100);
    ck_assert_str_eq(p.def, "20");
    ck_assert_int_eq(p.optional, 0);
    hy_sql_param_clear(&p);

    parse_ok("query.limit:int(..100)", &p);
    ck_assert_int_eq(p.has_min, 0);
    ck_assert_int_eq(p.has_max, 1);
    ck_assert_int_eq(p.max, 100);
    hy_sql_param_clear(&p);

    parse_ok("query.offset:int(1..)", &p);
    ck_assert_int_eq(p.has_min, 1);
    ck_assert_int_eq(p.min, 1);
    ck_assert_int_eq(p.has_max, 0);
    hy_sql_param_clear(&p);

    parse_ok("query.t:int(-9223372036854775808..9223372036854775807)", &p);
    ck_assert(p.min == INT64_MIN);
    ck_assert(p.max == INT64_MAX);
    hy_sql_param_clear(&p);

    parse_ok("query.n:int(-5..-5)", &p); /* MIN == MAX is allowed */
    ck_assert_int_eq(p.min, -5);
    ck_assert_int_eq(p.max, -5);
    hy_sql_param_clear(&p);

    parse_ok("body.nick:text(..40)?", &p);
    ck_assert_int_eq(p.source, HY_SQL_FROM_BODY);
    ck_assert_str_eq(p.name, "nick");
    ck_assert_int_eq(p.type, HY_SQL_TEXT);
    ck_assert_int_eq(p.has_min, 0);
    ck_assert_int_eq(p.has_max, 1);
    ck_assert_int_eq(p.max, 40);
    ck_assert_int_eq(p.optional, 1);
    ck_assert_ptr_null(p.def);
    hy_sql_param_clear(&p);

    parse_ok("body.bio:text(0..0)", &p);
    ck_assert_int_eq(p.min, 0);
    ck_assert_int_eq(p.max, 0);
    hy_sql_param_clear(&p);

    /* the default is stored as it is bound */
    parse_ok("query.active:bool=TRUE", &p);
    ck_assert_str_eq(p.def, "t");
    hy_sql_param_clear(&p);
    parse_ok("query.n:int=+007", &p);
    ck_assert_str_eq(p.def, "7");
    hy_sql_param_clear(&p);
    parse_ok("query.q:text=", &p); /* an empty text default */
    ck_assert_str_eq(p.def, "");
    hy_sql_param_clear(&p);
    parse_ok("query.q:text=a=b?", &p); /* everything after the first '=' */
    ck_assert_str_eq(p.def, "a=b?");
    hy_sql_param_clear(&p);
    parse_ok("query.since:timestamptz=2024-01-01T00:00:00Z", &p);
    ck_assert_str_eq(p.def, "2024-01-01T00:00:00Z");
    hy_sql_param_clear(&p);
}
END_TEST

START_TEST(test_param_types_and_names)
{
    static const struct {
        const char *spec;
        hy_sql_type_t type;
    } cases[] = {
        {"query.a:int", HY_SQL_INT},
        {"query.a:text", HY_SQL_TEXT},
        {"query.a:bool", HY_SQL_BOOL},
        {"query.a:uuid", HY_SQL_UUID},
        {"query.a:timestamptz", HY_SQL_TIMESTAMPTZ},
        {"query.a", HY_SQL_TEXT},
    };
    hy_sql_param_t p;
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        parse_ok(cases[i].spec, &p);
        ck_assert_msg(p.type == cases[i].type, "%s: type %d", cases[i].spec, (int)p.type);
        hy_sql_param_clear(&p);
    }

    parse_ok("query.sort-by", &p);
    ck_assert_str_eq(p.name, "sort-by");
    hy_sql_param_clear(&p);
    parse_ok("body.X_9-a:int?", &p);
    ck_assert_str_eq(p.name, "X_9-a");
    ck_assert_int_eq(p.type, HY_SQL_INT);
    ck_assert_int_eq(p.optional, 1);
    hy_sql_param_clear(&p);
    parse_ok("query.-", &p);
    ck_assert_str_eq(p.name, "-");
    hy_sql_param_clear(&p);

    char spec[128] = "query.";
    memset(spec + 6, 'n', 64); /* 64 characters: the longest name */
    parse_ok(spec, &p);
    ck_assert_uint_eq(strlen(p.name), 64);
    hy_sql_param_clear(&p);

    ck_assert_str_eq(hy_sql_type_name(HY_SQL_INT), "int");
    ck_assert_str_eq(hy_sql_type_name(HY_SQL_TEXT), "text");
    ck_assert_str_eq(hy_sql_type_name(HY_SQL_BOOL), "bool");
    ck_assert_str_eq(hy_sql_type_name(HY_SQL_UUID), "uuid");
    ck_assert_str_eq(hy_sql_type_name(HY_SQL_TIMESTAMPTZ), "timestamptz");
    ck_assert_str_eq(hy_sql_type_name(HY_SQL_JSON), "json");
    ck_assert_uint_eq(hy_sql_type_oid(HY_SQL_JSON), 3802);
    ck_assert_str_eq(hy_sql_type_name(HY_SQL_NTYPES), "?");
    ck_assert_uint_eq(hy_sql_type_oid(HY_SQL_INT), 20);
    ck_assert_uint_eq(hy_sql_type_oid(HY_SQL_TEXT), 25);
    ck_assert_uint_eq(hy_sql_type_oid(HY_SQL_BOOL), 16);
    ck_assert_uint_eq(hy_sql_type_oid(HY_SQL_UUID), 2950);
    ck_assert_uint_eq(hy_sql_type_oid(HY_SQL_TIMESTAMPTZ), 1184);
    ck_assert_uint_eq(hy_sql_type_oid(HY_SQL_NTYPES), 0);
}
END_TEST

/* ---- parameter specs: refused ----------------------------------------------------------------------------------------- */

#define FORM "SOURCE.NAME[:TYPE][(MIN..MAX)][?][=DEFAULT]"

START_TEST(test_param_refused_source_and_name)
{
    parse_fails("header.x", "unknown source \"header\" (expected path, query or body)");
    parse_fails("Query.x", "unknown source \"Query\" (expected path, query or body)");
    parse_fails(".x", "unknown source \"\" (expected path, query or body)");
    parse_fails("limit", "expected " FORM " with SOURCE path, query or body");
    parse_fails("", "expected " FORM " with SOURCE path, query or body");
    parse_fails("query", "expected " FORM " with SOURCE path, query or body");
    parse_fails("query.", "expected a name of 1 to 64 letters, digits, '_' or '-' after \"query.\"");
    parse_fails("body.:int", "expected a name of 1 to 64 letters, digits, '_' or '-' after \"body.\"");
    parse_fails("path.$x", "expected a name of 1 to 64 letters, digits, '_' or '-' after \"path.\"");

    char spec[128] = "query.";
    memset(spec + 6, 'n', 65); /* one too many */
    parse_fails(spec, "expected a name of 1 to 64 letters, digits, '_' or '-' after \"query.\"");

    /* what follows the name must be a type, bounds, '?' or a default */
    parse_fails("query.a.b", "unexpected \".b\" (expected " FORM ")");
    parse_fails("query.a b", "unexpected \" b\" (expected " FORM ")");
    parse_fails("query.limit:int)", "unexpected \")\" (expected " FORM ")");
    parse_fails("query.a?x", "unexpected \"x\" (expected " FORM ")");
    parse_fails("query.a??", "unexpected \"?\" (expected " FORM ")");
    parse_fails("query.a(1..2):int", "unexpected \":int\" (expected " FORM ")"); /* bounds come after the type */
    parse_fails("query.a:int(1..2)(3..4)", "unexpected \"(3..4)\" (expected " FORM ")");
    parse_fails("query.a:text?abcdefghijklmnopqrstuvwxyz", "unexpected \"abcdefghijklmnopqrst\" (expected " FORM ")");
}
END_TEST

START_TEST(test_param_refused_type_and_bounds)
{
    parse_fails("query.x:integer", "unknown type \"integer\" (expected int, text, bool, uuid, timestamptz or json)");
    parse_fails("query.x:Int", "unknown type \"Int\" (expected int, text, bool, uuid, timestamptz or json)");
    parse_fails("query.x:", "unknown type \"\" (expected int, text, bool, uuid, timestamptz or json)");
    parse_fails("query.x:(1..2)", "unknown type \"\" (expected int, text, bool, uuid, timestamptz or json)");

    /* malformed bounds */
    parse_fails("query.x:int(1..100", "bounds are written (MIN..MAX), either side may be left out");
    parse_fails("query.x:int(1-100)", "bounds are written (MIN..MAX), either side may be left out");
    parse_fails("query.x:int(1)=1..2", "bounds are written (MIN..MAX), either side may be left out");
    parse_fails("query.x:int(a..100)", "the lower bound \"a\" is not an integer");
    parse_fails("query.x:int( 1..100)", "the lower bound \" 1\" is not an integer");
    parse_fails("query.x:int(1..1e3)", "the upper bound \"1e3\" is not an integer");
    parse_fails("query.x:int(1...5)", "the upper bound \".5\" is not an integer");
    parse_fails("query.x:int(..9223372036854775808)", "the upper bound \"9223372036854775808\" is not an integer");
    parse_fails("query.x:int(-9223372036854775809..)", "the lower bound \"-9223372036854775809\" is not an integer");
    parse_fails("query.x:int(-..)", "the lower bound \"-\" is not an integer");
    parse_fails("query.x:int(..)", "empty bounds: give MIN, MAX or both");
    parse_fails("query.x:text(..)", "empty bounds: give MIN, MAX or both");
    parse_fails("query.x:int(100..1)", "the lower bound 100 is above the upper bound 1");
    parse_fails("query.x:int(-1..-2)", "the lower bound -1 is above the upper bound -2");

    /* bounds on types without an order */
    parse_fails("query.x:bool(0..1)", "bounds apply to int (the value) and text (the length) only, not bool");
    parse_fails("query.x:uuid(1..)", "bounds apply to int (the value) and text (the length) only, not uuid");
    parse_fails("query.x:timestamptz(..5)", "bounds apply to int (the value) and text (the length) only, not timestamptz");

    /* text bounds are lengths */
    parse_fails("query.x:text(-1..5)", "text bounds are lengths and cannot be negative");
    parse_fails("query.x:text(..-1)", "text bounds are lengths and cannot be negative");
    parse_fails("query.x(-3..)", "text bounds are lengths and cannot be negative"); /* untyped: text */
}
END_TEST

START_TEST(test_param_refused_optional_default_path)
{
    parse_fails("query.x?=1", "give either '?' (SQL NULL when absent) or a default, not both");
    parse_fails("query.x:int(1..9)?=1", "give either '?' (SQL NULL when absent) or a default, not both");
    parse_fails("path.id=5", "a path parameter is always present and takes no default");
    parse_fails("path.slug:text=x", "a path parameter is always present and takes no default");
    parse_fails("path.id?", "a path parameter is always present and cannot be optional");
    parse_fails("path.slug:text(..5)?", "a path parameter is always present and cannot be optional");
    parse_fails("path.nope", "the route's path has no parameter {nope}");
    parse_fails("path.Id", "the route's path has no parameter {Id}"); /* names are case-sensitive */
    parse_fails("path.nope:int", "the route's path has no parameter {nope}");

    /* without a template callback no path parameter exists */
    char err[256];
    hy_sql_param_t p;
    ck_assert_int_eq(hy_sql_param_parse("path.id", NULL, NULL, &p, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "the route's path has no parameter {id}");
    ck_assert_int_eq(hy_sql_param_parse("query.id", NULL, NULL, &p, err, sizeof(err)), 0);
    hy_sql_param_clear(&p);

    /* a default must pass its own type and bounds */
    parse_fails("query.limit:int=abc", "the default \"abc\" must be an integer (64-bit)");
    parse_fails("query.limit:int=", "the default \"\" must be an integer (64-bit)");
    parse_fails("query.limit:int= 5", "the default \" 5\" must be an integer (64-bit)");
    parse_fails("query.limit:int=1?", "the default \"1?\" must be an integer (64-bit)");
    parse_fails("query.limit:int(1..100)=0", "the default \"0\" must be an integer from 1 to 100");
    parse_fails("query.limit:int(1..100)=500", "the default \"500\" must be an integer from 1 to 100");
    parse_fails("query.limit:int(1..)=0", "the default \"0\" must be an integer of at least 1");
    parse_fails("query.limit:int(..10)=11", "the default \"11\" must be an integer of at most 10");
    parse_fails("query.q:text(..3)=abcd", "the default \"abcd\" must be text of a length of at most 3 characters");
    parse_fails("query.q:text(2..)=", "the default \"\" must be text of a length of at least 2 characters");
    parse_fails("query.b:bool=yes", "the default \"yes\" must be true or false");
    parse_fails("query.u:uuid=123", "the default \"123\" must be a UUID (8-4-4-4-12 hex digits)");
    parse_fails("query.t:timestamptz=2024-01-01",
                "the default \"2024-01-01\" must be an RFC 3339 timestamp with a zone (2024-05-01T12:00:00Z)");
    /* a long default is cut at 40 characters in the message */
    parse_fails("query.n:int=12345678901234567890123456789012345678901234567890",
                "the default \"1234567890123456789012345678901234567890\" must be an integer (64-bit)");
}
END_TEST

/* ---- values ----------------------------------------------------------------------------------------------------------- */

START_TEST(test_value_int)
{
    hy_sql_param_t p = param(HY_SQL_INT, 0, 0, 0, 0);
    VALUE_OK(&p, "0", "0");
    VALUE_OK(&p, "42", "42");
    VALUE_OK(&p, "+42", "42");
    VALUE_OK(&p, "-42", "-42");
    VALUE_OK(&p, "-0", "0");
    VALUE_OK(&p, "007", "7");
    VALUE_OK(&p, "9223372036854775807", "9223372036854775807");
    VALUE_OK(&p, "-9223372036854775808", "-9223372036854775808");
    VALUE_OK(&p, "+9223372036854775807", "9223372036854775807");
    value_ok(&p, "12345", 2, "12"); /* only len bytes are read */

    static const char *const bad[] = {"",
                                      "+",
                                      "-",
                                      " 1",
                                      "1 ",
                                      "1.0",
                                      "1e3",
                                      "0x10",
                                      "--1",
                                      "+-1",
                                      "1-",
                                      "\xd9\xa1\xd9\xa2",
                                      "abc",
                                      "9223372036854775808",
                                      "-9223372036854775809",
                                      "99999999999999999999",
                                      "18446744073709551616"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        value_fails(&p, bad[i], strlen(bad[i]), "must be an integer (64-bit)");
    value_fails(&p, "1\0002", 3, "must be an integer (64-bit)");

    p = param(HY_SQL_INT, 1, 1, 1, 100);
    VALUE_OK(&p, "1", "1");
    VALUE_OK(&p, "100", "100");
    VALUE_FAILS(&p, "0", "must be an integer from 1 to 100");
    VALUE_FAILS(&p, "101", "must be an integer from 1 to 100");
    VALUE_FAILS(&p, "-5", "must be an integer from 1 to 100");
    VALUE_FAILS(&p, "x", "must be an integer from 1 to 100");

    p = param(HY_SQL_INT, 1, -10, 0, 0);
    VALUE_OK(&p, "-10", "-10");
    VALUE_OK(&p, "9223372036854775807", "9223372036854775807");
    VALUE_FAILS(&p, "-11", "must be an integer of at least -10");

    p = param(HY_SQL_INT, 0, 0, 1, 0);
    VALUE_OK(&p, "-9223372036854775808", "-9223372036854775808");
    VALUE_FAILS(&p, "1", "must be an integer of at most 0");

    /* the output must hold len + 2 bytes */
    char out[8], err[64];
    ck_assert_int_eq(hy_sql_value_check(&p, "-1", 2, out, 3, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "is too long");
}
END_TEST

START_TEST(test_value_text)
{
    hy_sql_param_t p = param(HY_SQL_TEXT, 0, 0, 0, 0);
    VALUE_OK(&p, "", "");
    VALUE_OK(&p, "hello world", "hello world");
    VALUE_OK(&p, "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
             "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
    VALUE_OK(&p, "'; DROP TABLE x; --", "'; DROP TABLE x; --"); /* bound, never spliced */
    value_ok(&p, "abcdef", 3, "abc");

    static const char *const msg = "must be UTF-8 text without NUL characters";
    VALUE_FAILS(&p, "a\0b", msg);
    VALUE_FAILS(&p, "\0", msg);
    VALUE_FAILS(&p, "\xff", msg);
    VALUE_FAILS(&p, "caf\xe9", msg);          /* Latin-1 */
    VALUE_FAILS(&p, "\xc0\xaf", msg);         /* overlong '/' */
    VALUE_FAILS(&p, "\xe2\x82", msg);         /* truncated */
    VALUE_FAILS(&p, "\xed\xa0\x80", msg);     /* a surrogate */
    VALUE_FAILS(&p, "\xf4\x90\x80\x80", msg); /* above U+10FFFF */
    VALUE_FAILS(&p, "\x80", msg);             /* a lone continuation byte */

    /* bounds count characters, not bytes */
    p = param(HY_SQL_TEXT, 0, 0, 1, 5);
    VALUE_OK(&p, "h\xc3\xa9llo", "h\xc3\xa9llo"); /* 5 characters, 6 bytes */
    VALUE_OK(&p, "\xe6\x97\xa5\xe6\x9c\xac\xe6\x97\xa5\xe6\x9c\xac\xe6\x97\xa5",
             "\xe6\x97\xa5\xe6\x9c\xac\xe6\x97\xa5\xe6\x9c\xac\xe6\x97\xa5");
    VALUE_OK(&p, "", "");
    VALUE_FAILS(&p, "h\xc3\xa9llo!", "must be text of a length of at most 5 characters");
    VALUE_FAILS(&p, "abcdef", "must be text of a length of at most 5 characters");

    p = param(HY_SQL_TEXT, 1, 3, 0, 0);
    VALUE_OK(&p, "abc", "abc");
    VALUE_OK(&p, "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80");
    VALUE_FAILS(&p, "\xe6\x97\xa5\xe6\x9c\xac", "must be text of a length of at least 3 characters"); /* 6 bytes, 2 chars */
    VALUE_FAILS(&p, "", "must be text of a length of at least 3 characters");

    p = param(HY_SQL_TEXT, 1, 1, 1, 2);
    VALUE_OK(&p, "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac");
    VALUE_FAILS(&p, "", "must be text of a length from 1 to 2 characters");
    VALUE_FAILS(&p, "abc", "must be text of a length from 1 to 2 characters");
    VALUE_FAILS(&p, "a\xff", msg); /* encoding is checked before the length */
}
END_TEST

START_TEST(test_value_bool)
{
    hy_sql_param_t p = param(HY_SQL_BOOL, 0, 0, 0, 0);
    VALUE_OK(&p, "true", "t");
    VALUE_OK(&p, "TRUE", "t");
    VALUE_OK(&p, "True", "t");
    VALUE_OK(&p, "tRuE", "t");
    VALUE_OK(&p, "1", "t");
    VALUE_OK(&p, "false", "f");
    VALUE_OK(&p, "FALSE", "f");
    VALUE_OK(&p, "False", "f");
    VALUE_OK(&p, "0", "f");
    value_ok(&p, "truex", 4, "t");

    static const char *const bad[] = {"",   "t",  "f",  "yes",   "no",    "on",    "off",  "2",
                                      "01", "00", "-1", " true", "true ", "truex", "fals", "null"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        value_fails(&p, bad[i], strlen(bad[i]), "must be true or false");
}
END_TEST

START_TEST(test_value_json)
{
    hy_sql_param_t p = param(HY_SQL_JSON, 0, 0, 0, 0);
    VALUE_OK(&p, "{\"a\":[1,2.5,null,true],\"b\":{\"c\":\"\\u00fc\"}}", "{\"a\":[1,2.5,null,true],\"b\":{\"c\":\"\\u00fc\"}}");
    VALUE_OK(&p, "[]", "[]");
    VALUE_OK(&p, " 42 ", " 42 ");
    VALUE_OK(&p, "\"text\"", "\"text\"");
    VALUE_OK(&p, "null", "null");
    static const char *const bad[] = {"", "{", "{\"a\":}", "[1,]", "tru", "{} {}", "'x'", "{\"a\":1}x", "\"\xff\""};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        value_fails(&p, bad[i], strlen(bad[i]), "must be JSON");
    value_fails(&p, "[1,\0]", 5, "must be JSON");
    hy_sql_param_t q;
    char err[256];
    ck_assert_int_eq(hy_sql_param_parse("body.doc:json?", NULL, NULL, &q, err, sizeof(err)), 0);
    ck_assert_int_eq(q.type, HY_SQL_JSON);
    hy_sql_param_clear(&q);
    ck_assert_int_eq(hy_sql_param_parse("query.doc:json={\"k\":1}", NULL, NULL, &q, err, sizeof(err)), 0);
    ck_assert_str_eq(q.def, "{\"k\":1}");
    hy_sql_param_clear(&q);
    ck_assert_int_eq(hy_sql_param_parse("query.doc:json={", NULL, NULL, &q, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "the default \"{\" must be JSON");
    ck_assert_int_eq(hy_sql_param_parse("query.doc:json(1..2)", NULL, NULL, &q, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "bounds apply to int (the value) and text (the length) only, not json");
}
END_TEST

START_TEST(test_value_uuid)
{
    hy_sql_param_t p = param(HY_SQL_UUID, 0, 0, 0, 0);
    VALUE_OK(&p, "123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000");
    VALUE_OK(&p, "123E4567-E89B-12D3-A456-426614174000", "123E4567-E89B-12D3-A456-426614174000"); /* as given */
    VALUE_OK(&p, "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000");
    VALUE_OK(&p, "ffffffff-ffff-ffff-ffff-ffffffffffff", "ffffffff-ffff-ffff-ffff-ffffffffffff");

    static const char *const bad[] = {
        "",
        "123e4567-e89b-12d3-a456-42661417400",   /* 35 */
        "123e4567-e89b-12d3-a456-4266141740000", /* 37 */
        "123e4567-e89b-12d3-a456-42661417400g",  /* not hex */
        "123e4567-e89b-12d3-a456_426614174000",  /* not a dash */
        "123e4567e-89b-12d3-a456-426614174000",  /* dash moved */
        "123e456-7e89b-12d3-a456-426614174000",
        "123e4567-e89b-12d3a-456-426614174000",
        "123e4567-e89b-12d-3a456-426614174000",
        "123e4567e89b12d3a456426614174000",      /* no dashes */
        "{123e4567-e89b-12d3-a456-426614174000", /* braces */
        " 123e4567-e89b-12d3-a456-42661417400",
        "123e4567-e89b-12d3-a456-4266141740-0",
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        value_fails(&p, bad[i], strlen(bad[i]), "must be a UUID (8-4-4-4-12 hex digits)");
}
END_TEST

START_TEST(test_value_timestamptz)
{
    hy_sql_param_t p = param(HY_SQL_TIMESTAMPTZ, 0, 0, 0, 0);
    static const char *const good[] = {
        "2024-05-01T12:00:00Z",
        "2024-05-01t12:00:00z",
        "2024-05-01 12:00:00Z", /* RFC 3339 allows a space */
        "2024-05-01T12:00:00+02:00",
        "2024-05-01T12:00:00-05:30",
        "2024-05-01T12:00:00+00:00",
        "2024-05-01T12:00:00-00:00",
        "2024-05-01T12:00:00+23:59",
        "2024-05-01T12:00:00.5Z",
        "2024-05-01T12:00:00.123456789+01:00",
        "2024-02-29T00:00:00Z", /* leap years: divisible by 4, */
        "2000-02-29T00:00:00Z", /* or by 400 */
        "2023-02-28T23:59:59Z",
        "2024-12-31T23:59:60Z", /* a leap second */
        "2024-01-31T00:00:00Z",
        "2024-04-30T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
    };
    for (size_t i = 0; i != sizeof(good) / sizeof(good[0]); ++i)
        value_ok(&p, good[i], strlen(good[i]), good[i]);

    static const char *const bad[] = {
        "",
        "2024-05-01",
        "2024-05-01T12:00:00",   /* no zone */
        "2024-05-01T12:00:00.5", /* no zone */
        "2024-05-01T12:00Z",     /* no seconds */
        "2024-05-01T12:00:00 Z", /* a space before the zone */
        "2024-13-01T12:00:00Z",  /* month */
        "2024-00-01T12:00:00Z",
        "2024-05-00T12:00:00Z", /* day */
        "2024-05-32T12:00:00Z",
        "2024-04-31T12:00:00Z", /* April has 30 */
        "2024-06-31T12:00:00Z",
        "2023-02-29T12:00:00Z", /* not a leap year */
        "1900-02-29T12:00:00Z", /* divisible by 100, not by 400 */
        "2024-02-30T12:00:00Z",
        "2024-05-01T24:00:00Z",  /* hour */
        "2024-05-01T12:60:00Z",  /* minute */
        "2024-05-01T12:00:61Z",  /* second */
        "0000-01-01T00:00:00Z",  /* year 0 */
        "2024-05-01T12:00:00.Z", /* a '.' without digits */
        "2024-05-01T12:00:00.+01:00",
        "2024-05-01T12:00:00+0530", /* malformed offsets */
        "2024-05-01T12:00:00+05",
        "2024-05-01T12:00:00+5:30",
        "2024-05-01T12:00:00+05:3",
        "2024-05-01T12:00:00+24:00",
        "2024-05-01T12:00:00+05:60",
        "2024-05-01T12:00:00*05:00",
        "2024-05-01T12:00:00+05-30",
        "2024-05-01T12:00:00+ab:cd",
        "2024-05-01T12:00:00ZZ", /* trailing junk */
        "2024-05-01T12:00:00Z ",
        "2024-05-01T12:00:00+01:00Z",
        "2024-05-01X12:00:00Z", /* separator */
        "2024/05/01T12:00:00Z",
        "2024-05-01T12-00-00Z",
        "24-05-01T12:00:00Z", /* short fields */
        "2024-5-01T12:00:00Z",
        "2024-05-01T1:00:00Z",
        "+024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.5.5Z",
        "infinity",
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        value_fails(&p, bad[i], strlen(bad[i]), "must be an RFC 3339 timestamp with a zone (2024-05-01T12:00:00Z)");
    /* only len bytes count: a valid prefix of a longer buffer is judged on its own */
    value_fails(&p, "2024-05-01T12:00:00Z", 19, "must be an RFC 3339 timestamp with a zone (2024-05-01T12:00:00Z)");
    value_ok(&p, "2024-05-01T12:00:00Zjunk", 20, "2024-05-01T12:00:00Z");
}
END_TEST

/* ---- column conversions ----------------------------------------------------------------------------------------------- */

/* Converts v and asserts the result is exactly want (hy_sql_rfc3339 does not terminate its output) and that nothing past
 * len + 12 bytes was written. */
static void expect_rfc3339(const char *v, const char *want)
{
    char out[128];
    size_t len = strlen(v);
    memset(out, 0x5a, sizeof(out));
    size_t n = hy_sql_rfc3339(v, len, out);
    ck_assert_msg(n == strlen(want) && memcmp(out, want, n) == 0, "\"%s\" became \"%.*s\", want \"%s\"", v, (int)n, out, want);
    ck_assert_uint_le(n, len + 12);
    for (size_t i = len + 12; i != sizeof(out); ++i)
        ck_assert_msg(out[i] == 0x5a, "\"%s\": byte %zu written past len + 12", v, i);
}

START_TEST(test_rfc3339)
{
    /* UTC ("+00") becomes Z; the fraction is always six digits */
    expect_rfc3339("2024-05-01 12:00:00+00", "2024-05-01T12:00:00.000000Z");
    expect_rfc3339("2024-05-01 12:00:00.5+00", "2024-05-01T12:00:00.500000Z");
    expect_rfc3339("2024-05-01 12:00:00.123456+00", "2024-05-01T12:00:00.123456Z");
    expect_rfc3339("2024-05-01 12:00:00.1234567+00", "2024-05-01T12:00:00.123456Z"); /* cut, not rounded */
    /* an hour offset gets its minutes; an offset with minutes is kept */
    expect_rfc3339("2024-05-01 12:00:00+05", "2024-05-01T12:00:00.000000+05:00");
    expect_rfc3339("2024-05-01 12:00:00-08", "2024-05-01T12:00:00.000000-08:00");
    expect_rfc3339("2024-05-01 12:00:00.25-03", "2024-05-01T12:00:00.250000-03:00");
    expect_rfc3339("2024-05-01 12:00:00+05:30", "2024-05-01T12:00:00.000000+05:30");
    expect_rfc3339("2024-05-01 12:00:00-09:30", "2024-05-01T12:00:00.000000-09:30");
    expect_rfc3339("2024-05-01 12:00:00.999999+05:45", "2024-05-01T12:00:00.999999+05:45");
    expect_rfc3339("2024-05-01 12:00:00+00:30", "2024-05-01T12:00:00.000000+00:30");
    /* timestamp without time zone: the 'T' and the fraction, no zone */
    expect_rfc3339("2024-05-01 12:00:00", "2024-05-01T12:00:00.000000");
    expect_rfc3339("2024-05-01 12:00:00.5", "2024-05-01T12:00:00.500000");
    expect_rfc3339("2024-05-01 12:00:00.123456", "2024-05-01T12:00:00.123456");
    /* anything else is copied as it is */
    expect_rfc3339("infinity", "infinity");
    expect_rfc3339("-infinity", "-infinity");
    expect_rfc3339("2024-05-01", "2024-05-01");
    expect_rfc3339("", "");
    expect_rfc3339("12345-05-01 12:00:00+00", "12345-05-01 12:00:00+00");
    expect_rfc3339("2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z");
    expect_rfc3339("0044-03-15 12:00:00+00 BC", "0044-03-15 12:00:00+00 BC"); /* not turned into AD 44 */
    expect_rfc3339("0044-03-15 12:00:00.5+00 BC", "0044-03-15 12:00:00.5+00 BC");
    expect_rfc3339("0044-03-15 12:00:00 BC", "0044-03-15 12:00:00 BC");
}
END_TEST

/* Converts bytea hex output v and asserts the base64 is exactly want, NUL-terminated, within the documented size. */
static void expect_base64(const char *v, const char *want)
{
    char out[128];
    size_t len = strlen(v), cap = (len / 2 + 2) / 3 * 4 + 1;
    memset(out, 0x5a, sizeof(out));
    size_t n = hy_sql_bytea_base64(v, len, out);
    ck_assert_msg(n != (size_t)-1, "\"%s\" refused", v);
    ck_assert_msg(n == strlen(want) && strcmp(out, want) == 0, "\"%s\" became \"%s\", want \"%s\"", v, out, want);
    ck_assert_uint_lt(n, cap);
    for (size_t i = cap; i != sizeof(out); ++i)
        ck_assert_msg(out[i] == 0x5a, "\"%s\": byte %zu written past the documented size", v, i);
}

START_TEST(test_bytea_base64)
{
    expect_base64("\\x", "");
    expect_base64("\\x66", "Zg==");
    expect_base64("\\x666f", "Zm8=");
    expect_base64("\\x666f6f", "Zm9v");
    expect_base64("\\x666f6f62", "Zm9vYg==");
    expect_base64("\\x666f6f6261", "Zm9vYmE=");
    expect_base64("\\x666f6f626172", "Zm9vYmFy");
    expect_base64("\\x00", "AA==");
    expect_base64("\\x000000", "AAAA");
    expect_base64("\\xfbff", "+/8=");
    expect_base64("\\xFFFE", "//4=");         /* uppercase hex */
    expect_base64("\\xDeAdBeEf", "3q2+7w=="); /* mixed case */
    expect_base64("\\x0102030405060708090a", "AQIDBAUGBwgJCg==");
    expect_base64("\\x48656c6c6f2c20776f726c6421", "SGVsbG8sIHdvcmxkIQ=="); /* "Hello, world!" */

    static const char *const bad[] = {"",       "\\",    "x",     "\\X01",   "0102",  "x0102",     "\\x0",
                                      "\\x123", "\\x0g", "\\xg0", "\\x01 2", "\\x-1", "\\x0102zz", "\\\\x01"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        char out[64];
        ck_assert_msg(hy_sql_bytea_base64(bad[i], strlen(bad[i]), out) == (size_t)-1, "\"%s\" accepted", bad[i]);
    }
}
END_TEST

/* ---- the query text --------------------------------------------------------------------------------------------------- */

START_TEST(test_max_placeholder)
{
    ck_assert_int_eq(hy_sql_max_placeholder(""), 0);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT 1"), 0);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $1"), 1);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $2"), 2); /* the highest, not the count */
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $1::int, $2::text"), 2);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12"), 12);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $12, $3"), 12);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $3 WHERE $1 = $2"), 3);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $99999"), 99999);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $"), 0);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $ 1"), 0);

    /* string literals, '' escapes included */
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT '$5'"), 0);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT '$5', $1"), 1);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT 'it''s $5', $1"), 1);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT '''$9''', $1"), 1);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT '', $2"), 2);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT '''', $2, '$7'"), 2);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT 'unterminated $4"), 0);
    /* quoted identifiers */
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT \"$3\" FROM t WHERE a = $1"), 1);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT \"a\"\"$4\" FROM t WHERE a = $2"), 2);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT \"it's\", $1, '\"$8'"), 1);
    /* comments */
    ck_assert_int_eq(hy_sql_max_placeholder("-- $9\nSELECT $1"), 1);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $1 -- and $9"), 1);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $1 /* $7 */"), 1);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT /* '$7 */ $2 /* \" */"), 2);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $1 /* unterminated $3"), 1);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT 1 - $2"), 2);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT 10/$3"), 3);
    /* dollar quotes */
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $$ $5 $$, $1"), 1);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $$it's $5$$, $1"), 1);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $tag$ it's $5 $$ $tag$, $2"), 2);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $a$ $b$ $3 $b$ $a$, $1"), 1);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $_x1$ $6 $_x1$ || $2"), 2);
    ck_assert_int_eq(hy_sql_max_placeholder("SELECT $x$ unterminated $4"), 0);
    ck_assert_int_eq(hy_sql_max_placeholder("DO $$ BEGIN PERFORM $9; END $$"), 0);
}
END_TEST

START_TEST(test_is_select)
{
    ck_assert_int_eq(hy_sql_is_select("SELECT 1"), 1);
    ck_assert_int_eq(hy_sql_is_select("select 1"), 1);
    ck_assert_int_eq(hy_sql_is_select("SeLeCt 1"), 1);
    ck_assert_int_eq(hy_sql_is_select("   SELECT 1"), 1);
    ck_assert_int_eq(hy_sql_is_select("\n\t\r SELECT\n1"), 1);
    ck_assert_int_eq(hy_sql_is_select("SELECT"), 1);
    ck_assert_int_eq(hy_sql_is_select("SELECT*FROM t"), 1);
    ck_assert_int_eq(hy_sql_is_select("-- the users\nSELECT * FROM users"), 1);
    ck_assert_int_eq(hy_sql_is_select("/* a comment */ SELECT 1"), 1);
    ck_assert_int_eq(hy_sql_is_select("/* one */ -- two\n /* three */SELECT 1"), 1);
    ck_assert_int_eq(hy_sql_is_select("(SELECT 1) UNION (SELECT 2)"), 1);
    ck_assert_int_eq(hy_sql_is_select("( ( select 1 ) )"), 1);

    ck_assert_int_eq(hy_sql_is_select(""), 0);
    ck_assert_int_eq(hy_sql_is_select("   "), 0);
    ck_assert_int_eq(hy_sql_is_select("selected FROM t"), 0); /* a column named "selected" */
    ck_assert_int_eq(hy_sql_is_select("select_count FROM t"), 0);
    ck_assert_int_eq(hy_sql_is_select("select1"), 0);
    ck_assert_int_eq(hy_sql_is_select("SELEC 1"), 0);
    ck_assert_int_eq(hy_sql_is_select("WITH t AS (SELECT 1) SELECT * FROM t"), 0);
    ck_assert_int_eq(hy_sql_is_select("INSERT INTO t SELECT 1"), 0);
    ck_assert_int_eq(hy_sql_is_select("UPDATE t SET a = 1 RETURNING a"), 0);
    ck_assert_int_eq(hy_sql_is_select("DELETE FROM t"), 0);
    ck_assert_int_eq(hy_sql_is_select("VALUES (1)"), 0);
    ck_assert_int_eq(hy_sql_is_select("-- SELECT\nINSERT INTO t VALUES (1)"), 0);
    ck_assert_int_eq(hy_sql_is_select("/* SELECT */ DELETE FROM t"), 0);
    ck_assert_int_eq(hy_sql_is_select("-- only a comment SELECT"), 0);
    ck_assert_int_eq(hy_sql_is_select("/* unterminated SELECT"), 0);
    ck_assert_int_eq(hy_sql_is_select("'SELECT'"), 0);
}
END_TEST

START_TEST(test_condition_code)
{
    static const struct {
        const char *name, *code;
    } known[] = {
        {"unique_violation", "23505"},
        {"foreign_key_violation", "23503"},
        {"not_null_violation", "23502"},
        {"check_violation", "23514"},
        {"exclusion_violation", "23P01"},
        {"integrity_constraint_violation", "23000"},
        {"restrict_violation", "23001"},
        {"invalid_text_representation", "22P02"},
        {"numeric_value_out_of_range", "22003"},
        {"string_data_right_truncation", "22001"},
        {"invalid_datetime_format", "22007"},
        {"datetime_field_overflow", "22008"},
        {"division_by_zero", "22012"},
        {"data_exception", "22000"},
        {"raise_exception", "P0001"},
        {"no_data_found", "P0002"},
        {"too_many_rows", "P0003"},
        {"serialization_failure", "40001"},
        {"deadlock_detected", "40P01"},
        {"lock_not_available", "55P03"},
        {"query_canceled", "57014"},
        {"insufficient_privilege", "42501"},
        {"undefined_table", "42P01"},
        {"undefined_column", "42703"},
        {"read_only_sql_transaction", "25006"},
    };
    for (size_t i = 0; i != sizeof(known) / sizeof(known[0]); ++i) {
        const char *code = hy_sql_condition_code(known[i].name);
        ck_assert_msg(code != NULL && strcmp(code, known[i].code) == 0, "%s: %s", known[i].name, code != NULL ? code : "NULL");
    }
    ck_assert_ptr_null(hy_sql_condition_code(""));
    ck_assert_ptr_null(hy_sql_condition_code("unique_violaton"));
    ck_assert_ptr_null(hy_sql_condition_code("unique_violation "));
    ck_assert_ptr_null(hy_sql_condition_code("UNIQUE_VIOLATION")); /* names are lowercase */
    ck_assert_ptr_null(hy_sql_condition_code("23505"));            /* a code is not a name */
    ck_assert_ptr_null(hy_sql_condition_code("unique"));
}
END_TEST

/* ---- the suite -------------------------------------------------------------------------------------------------------- */

static Suite *make_sql_suite(void)
{
    Suite *s = suite_create("sql");
    TCase *tc = tcase_create("params");
    tcase_add_test(tc, test_param_path);
    tcase_add_test(tc, test_param_query_and_body);
    tcase_add_test(tc, test_param_types_and_names);
    tcase_add_test(tc, test_param_refused_source_and_name);
    tcase_add_test(tc, test_param_refused_type_and_bounds);
    tcase_add_test(tc, test_param_refused_optional_default_path);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_test(tc, test_value_int);
    tcase_add_test(tc, test_value_text);
    tcase_add_test(tc, test_value_bool);
    tcase_add_test(tc, test_value_uuid);
    tcase_add_test(tc, test_value_json);
    tcase_add_test(tc, test_value_timestamptz);
    suite_add_tcase(s, tc);

    tc = tcase_create("conversions");
    tcase_add_test(tc, test_rfc3339);
    tcase_add_test(tc, test_bytea_base64);
    suite_add_tcase(s, tc);

    tc = tcase_create("query");
    tcase_add_test(tc, test_max_placeholder);
    tcase_add_test(tc, test_is_select);
    tcase_add_test(tc, test_condition_code);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(make_sql_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
