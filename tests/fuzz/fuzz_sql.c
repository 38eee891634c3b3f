/* fuzz_sql.c: libFuzzer target for the `sql` route kind's pure parts (app/sqlroute.c): the input is read as a parameter
 * spec, as a value of each type, as PostgreSQL column text to convert (RFC 3339, bytea), and as a query to scan for
 * placeholders. Invariants: no crash or overrun (ASan), outputs within their documented sizes, a spec that parses
 * yields a value check that runs on its own default, and a value that passes is accepted again as it was written out
 * (int normalises; bool is written "t"/"f", which is not input, so it is left out of that check). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_check.h"
#include "sqlroute.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* {id:int} is an int, {slug} text, anything else absent */
static int path_type(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "id") == 0 ? HY_SQL_INT : strcmp(name, "slug") == 0 ? HY_SQL_TEXT : -1;
}

static void check_value(const hy_sql_param_t *p, const char *v, size_t len)
{
    char *out = malloc(len + 2), err[256];
    CHECK(out != NULL);
    if (hy_sql_value_check(p, v, len, out, len + 2, err, sizeof(err)) == 0) {
        size_t olen = strlen(out);
        CHECK(olen <= len + 1);
        /* what is bound is accepted again, unchanged */
        if (p->type != HY_SQL_BOOL) {
            char *again = malloc(olen + 2);
            CHECK(again != NULL);
            CHECK(hy_sql_value_check(p, out, olen, again, olen + 2, err, sizeof(err)) == 0);
            CHECK(strcmp(again, out) == 0);
            free(again);
        } else {
            CHECK(strcmp(out, "t") == 0 || strcmp(out, "f") == 0);
        }
    } else {
        CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';

    /* a parameter spec (a C string: what the YAML scalar gives) */
    hy_sql_param_t p;
    char err[256];
    if (hy_sql_param_parse(s, path_type, NULL, &p, err, sizeof(err)) == 0) {
        CHECK(p.name != NULL && p.name[0] != '\0');
        CHECK(p.type < HY_SQL_NTYPES);
        CHECK(!(p.optional && p.def != NULL));
        if (p.def != NULL)
            check_value(&p, p.def, strlen(p.def));
        hy_sql_param_clear(&p);
    } else {
        CHECK(err[0] != '\0');
    }

    /* a value of each type, without and with bounds */
    for (int t = 0; t != HY_SQL_NTYPES; ++t) {
        hy_sql_param_t v = {.type = (hy_sql_type_t)t};
        check_value(&v, (const char *)data, size);
        if (t == HY_SQL_INT || t == HY_SQL_TEXT) {
            v.has_min = v.has_max = 1;
            v.min = 1;
            v.max = 100;
            check_value(&v, (const char *)data, size);
        }
    }

    /* column text conversions, with outputs of exactly the documented sizes */
    char *ts = malloc(size + 12);
    CHECK(ts != NULL);
    CHECK(hy_sql_rfc3339((const char *)data, size, ts) <= size + 12);
    free(ts);
    size_t cap = (size / 2 + 2) / 3 * 4 + 1;
    char *b64 = malloc(cap);
    CHECK(b64 != NULL);
    size_t n = hy_sql_bytea_base64((const char *)data, size, b64);
    CHECK(n == (size_t)-1 || (n < cap && n % 4 == 0 && b64[n] == '\0'));
    free(b64);

    /* a query */
    int max = hy_sql_max_placeholder(s);
    CHECK(max >= 0 && max < 100000);
    (void)hy_sql_is_select(s);
    free(s);
    return 0;
}
