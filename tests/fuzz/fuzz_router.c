/* fuzz_router.c: libFuzzer target for hy_router_match (app/router.c): every input is matched as a raw request path,
 * with every method, against one fixed router of realistic templates; the answers must keep the invariants of
 * router.h, agree with each other across methods, and not change when the path is rewritten into an equivalent one. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "router.h"
#include "fuzz_check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the router ------------------------------------------------------------------------------------------------------- */

typedef struct st_route_def_t {
    const char *template_; /* as given to hy_router_add */
    unsigned methods;      /* HY_METHOD_* */
} route_def_t;

#define G HY_METHOD_GET
#define H HY_METHOD_HEAD
#define P HY_METHOD_POST
#define U HY_METHOD_PUT
#define D HY_METHOD_DELETE
#define A HY_METHOD_PATCH
#define O HY_METHOD_OPTIONS

static route_def_t routes[] = {
    {"/", G},
    {"/health", G},
    {"/ready", G},
    {"/plaintext", G},
    {"/json", G},
    {"/robots.txt", G},
    {"/api/v1/users", G},
    {"/api/v1/users", P},
    {"/api/v1/users/{id:int}", G | U | D},
    {"/api/v1/users/{id:int}/profile", G},
    {"/api/v1/users/me", G},     /* a literal beside an int parameter */
    {"/api/v1/users/{name}", A}, /* and a string parameter */
    {"/files/{dir}/{name}", G},
    {"/a/{x}/c", G},
    {"/a/b/d", G}, /* "/a/b/c" needs backtracking into {x} */
    {"/u/{id}", G},
    {"/u/{id:int}", P},
    {"/caf%C3%A9", G},     /* a decoded non-ASCII literal */
    {"/a%2Fb", G},         /* a literal holding a '/' */
    {"/%7Bbraces%7D", G},  /* a literal holding braces */
    {"/explicit-head", G}, /* GET implies HEAD, */
    {"/explicit-head", H}, /* but an explicit HEAD wins */
    {"/opt", O | A},
    {"/{page}", P}, /* any single segment, POST only: other methods get 405 */
    {"/x/{n:int}/y/{m:int}", U},
    {"/p/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}/{k}/{l}/{m}/{n}/{o}/{q:int}", G}, /* HY_MAX_PARAMS parameters */
    {NULL, 0},                                                                     /* the deepest template, built below */
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static hy_router_t *router;
static char deepest[2 * HY_ROUTER_MAX_SEGMENTS + 1]; /* "/l/l/.../l", HY_ROUTER_MAX_SEGMENTS segments */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];
    (void)argc, (void)argv;

    for (size_t i = 0; i != HY_ROUTER_MAX_SEGMENTS; ++i)
        memcpy(deepest + 2 * i, "/l", 2);
    routes[NROUTES - 1].template_ = deepest;
    routes[NROUTES - 1].methods = G;

    router = hy_router_new();
    for (size_t i = 0; i != NROUTES; ++i)
        CHECK(hy_router_add(router, routes[i].template_, routes[i].methods, &routes[i], err, sizeof(err)) == 0);
    return 0;
}

/* ---- oracles ---------------------------------------------------------------------------------------------------------- */

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* router.h: a path is a bad request when it is empty or does not start with '/', or holds a raw NUL, a malformed
 * escape or "%00" anywhere. */
static int is_bad_path(const char *p, size_t len)
{
    if (len == 0 || p[0] != '/')
        return 1;
    for (size_t i = 0; i != len; ++i) {
        if (p[i] == '\0')
            return 1;
        if (p[i] == '%') {
            if (len - i < 3)
                return 1;
            int hi = hex_value((unsigned char)p[i + 1]), lo = hex_value((unsigned char)p[i + 2]);
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return 1;
            i += 2;
        }
    }
    return 0;
}

/* The name of the n-th parameter of a template and whether it is `:int`. */
static void template_param(const char *t, size_t n, const char **name, size_t *nlen, int *is_int)
{
    for (const char *s = strchr(t, '{'); s != NULL; s = strchr(s + 1, '{')) {
        if (n-- != 0)
            continue;
        const char *close = strchr(s, '}'), *colon = memchr(s, ':', (size_t)(close - s));
        *name = s + 1;
        *nlen = (size_t)((colon != NULL ? colon : close) - s - 1);
        *is_int = colon != NULL;
        return;
    }
    __builtin_trap();
}

static size_t count_params(const char *t)
{
    size_t n = 0;
    for (; *t != '\0'; ++t)
        n += *t == '{';
    return n;
}

/* ---- invariants of one answer ----------------------------------------------------------------------------------------- */

static void check_match(unsigned method, hy_match_result_t res, const hy_match_t *m, const char *buf, size_t bufsize)
{
    CHECK(res == HY_MATCH_OK || res == HY_MATCH_NOT_FOUND || res == HY_MATCH_METHOD_NOT_ALLOWED || res == HY_MATCH_BAD_REQUEST);
    CHECK((m->allowed & ~(unsigned)HY_METHOD_ALL) == 0);
    if (res != HY_MATCH_OK) {
        CHECK(m->data == NULL && m->template_ == NULL && m->nparams == 0);
        if (res == HY_MATCH_METHOD_NOT_ALLOWED)
            CHECK(m->allowed != 0 && (m->allowed & method) == 0);
        else
            CHECK(m->allowed == 0);
        return;
    }

    /* OK: a route of ours that allows the method, its template, its parameters */
    CHECK(method != 0 && (m->allowed & method) != 0);
    CHECK(m->data != NULL);
    const route_def_t *r = m->data;
    CHECK(r >= routes && r < routes + NROUTES);
    CHECK(m->template_ != NULL && strcmp(m->template_, r->template_) == 0);
    unsigned effective = r->methods | ((r->methods & HY_METHOD_GET) != 0 ? HY_METHOD_HEAD : 0);
    CHECK((effective & method) != 0 && (m->allowed & effective) == effective);
    CHECK(m->nparams == count_params(r->template_) && m->nparams <= HY_MAX_PARAMS);

    for (size_t i = 0; i != m->nparams; ++i) {
        const hy_param_t *p = &m->params[i];
        const char *name;
        size_t nlen;
        int is_int;
        template_param(r->template_, i, &name, &nlen, &is_int);
        CHECK(p->name != NULL && strlen(p->name) == nlen && memcmp(p->name, name, nlen) == 0);
        CHECK(p->type == (is_int ? HY_PARAM_INT : HY_PARAM_STRING));

        /* the value lies inside buf, NUL included, is never empty, ".", ".." and holds no NUL */
        CHECK(p->value >= buf && p->len < bufsize && (size_t)(p->value - buf) <= bufsize - p->len - 1);
        CHECK(p->len != 0 && p->value[p->len] == '\0' && memchr(p->value, '\0', p->len) == NULL);
        CHECK(!(p->len == 1 && p->value[0] == '.') && !(p->len == 2 && p->value[0] == '.' && p->value[1] == '.'));
        for (size_t j = 0; j != i; ++j) /* two parameters never share bytes */
            CHECK(m->params[j].value + m->params[j].len < p->value || p->value + p->len < m->params[j].value);

        /* an int is ASCII digits whose value fits int64_t, and ival is it; a string has ival 0 */
        if (is_int) {
            uint64_t v = 0;
            for (size_t k = 0; k != p->len; ++k) {
                unsigned d = (unsigned char)p->value[k] - (unsigned)'0';
                CHECK(d <= 9 && v <= ((uint64_t)INT64_MAX - d) / 10);
                v = v * 10 + d;
            }
            CHECK(p->ival == (int64_t)v);
        } else {
            CHECK(p->ival == 0);
        }
    }
}

/* What a path matched, for comparing equivalent paths. */
typedef struct st_outcome_t {
    hy_match_result_t res; /* the result for GET */
    hy_match_t m;          /* the match for GET (params point into the caller's buffer) */
} outcome_t;

/* Matches path with every method (and 0, a method no route has) into a buffer of exactly len + 1 bytes, checks every
 * answer and their agreement, and returns the GET answer in *out; buf must stay alive while *out is read. */
static void match_all(const char *path, size_t len, char *buf, outcome_t *out)
{
    static const unsigned methods[] = {HY_METHOD_GET,    HY_METHOD_HEAD,  HY_METHOD_POST,    HY_METHOD_PUT,
                                       HY_METHOD_DELETE, HY_METHOD_PATCH, HY_METHOD_OPTIONS, 0};
    int bad = is_bad_path(path, len);
    hy_match_result_t first = HY_MATCH_OK;
    unsigned allowed = 0;

    for (size_t i = 0; i != sizeof(methods) / sizeof(methods[0]); ++i) {
        hy_match_t m;
        memset(&m, 0xa5, sizeof(m)); /* every field must be written */
        hy_match_result_t res = hy_router_match(router, methods[i], path, len, buf, len + 1, &m);
        check_match(methods[i], res, &m, buf, len + 1);
        CHECK((res == HY_MATCH_BAD_REQUEST) == bad);
        /* whether a path is found, and the methods it allows, do not depend on the method */
        int found = res == HY_MATCH_OK || res == HY_MATCH_METHOD_NOT_ALLOWED;
        if (i == 0) {
            first = res;
            allowed = m.allowed;
            out->res = res;
            out->m = m;
        } else {
            int first_found = first == HY_MATCH_OK || first == HY_MATCH_METHOD_NOT_ALLOWED;
            CHECK(found == first_found && (found || res == first) && m.allowed == allowed);
        }
        if (methods[i] == HY_METHOD_GET && res == HY_MATCH_OK) /* GET implies HEAD: HEAD is answered too */
            CHECK((allowed & HY_METHOD_HEAD) != 0);
    }
    /* no route has method 0, and a buffer one byte short is refused */
    hy_match_t m;
    if (len != 0)
        CHECK(hy_router_match(router, HY_METHOD_GET, path, len, buf, len, &m) == HY_MATCH_BAD_REQUEST);
    /* the GET answer again, for the caller (the loop above reused buf) */
    out->res = hy_router_match(router, HY_METHOD_GET, path, len, buf, len + 1, &out->m);
}

/* Two answers for equivalent paths must be the same route with the same parameter values. */
static void check_same(const outcome_t *a, const outcome_t *b)
{
    CHECK(a->res == b->res && a->m.data == b->m.data && a->m.allowed == b->m.allowed && a->m.nparams == b->m.nparams);
    for (size_t i = 0; i != a->m.nparams; ++i) {
        const hy_param_t *p = &a->m.params[i], *q = &b->m.params[i];
        CHECK(p->len == q->len && memcmp(p->value, q->value, p->len) == 0 && p->ival == q->ival);
    }
}

/* ---- the target ------------------------------------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = (const char *)data;
    char *buf = malloc(size + 1);
    outcome_t plain;
    CHECK(buf != NULL);
    match_all(path, size, buf, &plain);

    /* Equivalent rewrites of a well-formed path: "/" + path (a doubled slash collapses) and "/x/.." + path (the ".."
     * removes "x"). */
    if (size != 0 && path[0] == '/' && plain.res != HY_MATCH_BAD_REQUEST) {
        static const char *const prefixes[] = {"/", "/x/.."};
        for (size_t k = 0; k != sizeof(prefixes) / sizeof(prefixes[0]); ++k) {
            size_t plen = strlen(prefixes[k]), len = plen + size;
            char *p2 = malloc(len), *buf2 = malloc(len + 1);
            outcome_t other;
            CHECK(p2 != NULL && buf2 != NULL);
            memcpy(p2, prefixes[k], plen);
            memcpy(p2 + plen, data, size);
            match_all(p2, len, buf2, &other);
            check_same(&plain, &other);
            free(p2);
            free(buf2);
        }
    }
    free(buf);
    return 0;
}
