/* router.c: compiles route templates into a segment tree at config time and matches request paths against it without
 * allocating. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "chars.h"
#include "router.h"

/* ---- methods ---------------------------------------------------------------------------------------------------------- */

static const char *const method_names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}; /* enum order */
#define NUM_METHODS (sizeof(method_names) / sizeof(method_names[0]))

unsigned hy_method_from_name(const char *name, size_t len)
{
    if (name == NULL)
        return 0;
    for (size_t i = 0; i != NUM_METHODS; ++i)
        if (strlen(method_names[i]) == len && memcmp(method_names[i], name, len) == 0)
            return 1u << i;
    return 0;
}

size_t hy_methods_format(unsigned mask, char *buf, size_t bufsize)
{
    size_t off = 0;
    if (bufsize == 0)
        return 0;
    for (size_t i = 0; i != NUM_METHODS; ++i) {
        if ((mask & (1u << i)) == 0)
            continue;
        const char *sep = off == 0 ? "" : ", ";
        for (const char *s = sep; *s != '\0' && off + 1 < bufsize; ++s)
            buf[off++] = *s;
        for (const char *s = method_names[i]; *s != '\0' && off + 1 < bufsize; ++s)
            buf[off++] = *s;
    }
    buf[off] = '\0';
    return off;
}

/* The methods a route answers: its declared ones, plus HEAD when it declares GET. */
static unsigned effective_methods(unsigned declared)
{
    return declared | ((declared & HY_METHOD_GET) != 0 ? HY_METHOD_HEAD : 0);
}

/* ---- data structures -------------------------------------------------------------------------------------------------- */

typedef enum en_seg_kind_t {
    SEG_LITERAL = 0, /* matched byte for byte */
    SEG_INT,         /* `{name:int}` */
    SEG_STRING,      /* `{name}` */
    SEG_REST         /* `{name...}`: the rest of the path, zero or more segments (last segment only) */
} seg_kind_t;

/* One route: a template with its methods and the caller's data. Several may end at one node (disjoint methods). */
typedef struct st_entry_t {
    char *template_;                           /* the template as written */
    unsigned methods;                          /* HY_METHOD_* mask as declared (HEAD not added for GET) */
    void *data;                                /* returned by hy_router_match */
    size_t nparams;                            /* number of parameters */
    char *param_names[HY_MAX_PARAMS];          /* parameter names in template order, owned */
    size_t param_depth[HY_MAX_PARAMS];         /* index of the path segment each parameter takes */
    hy_param_type_t param_type[HY_MAX_PARAMS]; /* declared type of each parameter */
} entry_t;

/* A node of the segment tree: the segment that leads to it (for literal children) and what may follow. */
typedef struct st_node_t node_t;
struct st_node_t {
    char *literal;      /* decoded literal bytes when this node is a literal child, else NULL */
    size_t literal_len; /* length of literal */
    node_t **literals;  /* literal children, sorted by (length, bytes) for binary search */
    size_t nliterals;   /* number of literal children */
    node_t *int_child;  /* the `{x:int}` child, or NULL */
    node_t *str_child;  /* the `{x}` child, or NULL */
    node_t *rest_child; /* the `{x...}` child (a leaf: the routes ending in a catch-all), or NULL */
    entry_t **entries;  /* routes whose template ends here, in the order added */
    size_t nentries;    /* number of entries */
    size_t height;      /* most segments below this node on any route (prunes paths that are too deep) */
};

struct st_hy_router_t {
    node_t root;    /* the node of "/" */
    size_t nroutes; /* routes added */
};

/* ---- template parsing ------------------------------------------------------------------------------------------------- */

/* One segment of a parsed template. */
typedef struct st_tseg_t {
    seg_kind_t kind; /* literal or parameter type */
    const char *str; /* decoded literal bytes or parameter name (NUL-terminated, inside parsed_t.store) */
    size_t len;      /* length of str */
} tseg_t;

/* A parsed template. */
typedef struct st_parsed_t {
    tseg_t segs[HY_ROUTER_MAX_SEGMENTS]; /* the segments after the root */
    size_t nsegs;                        /* number of segments (0 for "/") */
    size_t nparams;                      /* number of parameter segments */
    char *store;                         /* decoded literals and names, malloc'ed; freed by parsed_dispose */
} parsed_t;

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Writes a one-line reason into err (when there is room) and returns -1. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen != 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int is_name_start(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(unsigned char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static int is_dot_segment(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

static void parsed_dispose(parsed_t *p)
{
    free(p->store);
    p->store = NULL;
}

/* Parses a `{...}` segment (seg, len, braces included, '}' last). Writes the name into *out. Returns 0 or -1. */
static int parse_param(const char *seg, size_t len, char **out, tseg_t *ts, char *err, size_t errlen)
{
    const char *inner = seg + 1, *end = seg + len - 1, *colon = memchr(inner, ':', (size_t)(end - inner));
    const char *name_end = colon != NULL ? colon : end;
    size_t name_len = (size_t)(name_end - inner);
    int rest = name_len >= 3 && memcmp(name_end - 3, "...", 3) == 0;

    if (rest) {
        if (colon != NULL)
            return fail(err, errlen, "a catch-all parameter has no type: \"%.*s\"", (int)len, seg);
        name_len -= 3;
    }

    if (name_len == 0)
        return fail(err, errlen, "empty parameter name in \"%.*s\"", (int)len, seg);
    if (!is_name_start((unsigned char)inner[0]))
        goto BadName;
    for (size_t i = 1; i != name_len; ++i)
        if (!is_name_char((unsigned char)inner[i]))
            goto BadName;

    ts->kind = rest ? SEG_REST : SEG_STRING;
    if (colon != NULL) {
        const char *type = colon + 1;
        size_t type_len = (size_t)(end - type);
        if (type_len == 0)
            return fail(err, errlen, "empty parameter type in \"%.*s\" (known: int)", (int)len, seg);
        if (type_len == 3 && memcmp(type, "int", 3) == 0)
            ts->kind = SEG_INT;
        else
            return fail(err, errlen, "unknown parameter type \"%.*s\" in \"%.*s\" (known: int)", (int)type_len, type, (int)len,
                        seg);
    }
    memcpy(*out, inner, name_len);
    (*out)[name_len] = '\0';
    ts->str = *out;
    ts->len = name_len;
    *out += name_len + 1;
    return 0;

BadName:
    return fail(err, errlen, "bad parameter name in \"%.*s\" (letters, digits and \"_\", not starting with a digit)", (int)len,
                seg);
}

/* Percent-decodes a literal segment into *out. Returns 0 or -1. */
static int parse_literal(const char *seg, size_t len, char **out, tseg_t *ts, char *err, size_t errlen)
{
    char *dst = *out;
    size_t n = 0;

    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)seg[i];
        if (c == '{')
            return fail(err, errlen, "a parameter must be a whole segment: \"%.*s\"", (int)len, seg);
        if (c == '}')
            return fail(err, errlen, "unmatched \"}\" in segment \"%.*s\"", (int)len, seg);
        if (c == '%') {
            int hi = i + 2 < len ? hy_hex_value((unsigned char)seg[i + 1]) : -1;
            int lo = i + 2 < len ? hy_hex_value((unsigned char)seg[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return fail(err, errlen, "bad percent-escape in segment \"%.*s\" (expected %% and two hex digits)", (int)len, seg);
            c = (unsigned char)(hi << 4 | lo);
            if (c == '\0')
                return fail(err, errlen, "\"%%00\" is not allowed in segment \"%.*s\"", (int)len, seg);
            i += 2;
        }
        dst[n++] = (char)c;
    }
    if (is_dot_segment(dst, n))
        return fail(err, errlen, "dot segment \"%.*s\" can never match (request paths are normalised)", (int)len, seg);
    dst[n] = '\0';
    ts->kind = SEG_LITERAL;
    ts->str = dst;
    ts->len = n;
    *out += n + 1;
    return 0;
}

/* Parses and validates a template. Returns 0 with p filled (release with parsed_dispose), or -1 with a reason. */
static int parse_template(const char *t, parsed_t *p, char *err, size_t errlen)
{
    p->nsegs = 0;
    p->nparams = 0;
    p->store = NULL;

    if (t == NULL)
        return fail(err, errlen, "template is missing");
    size_t len = strlen(t);
    if (len == 0)
        return fail(err, errlen, "template is empty (it must start with \"/\")");
    if (t[0] != '/')
        return fail(err, errlen, "template must start with \"/\"");
    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)t[i];
        if (c == '?')
            return fail(err, errlen,
                        "\"?\" is not allowed in a template (the query string is not routed; write %%3F for a "
                        "literal \"?\")");
        if (c == '#')
            return fail(err, errlen, "\"#\" is not allowed in a template (clients never send fragments)");
        if (c == ' ')
            return fail(err, errlen, "space at offset %zu in template (write %%20)", i);
        if (c < 0x20 || c == 0x7f)
            return fail(err, errlen, "control character 0x%02x at offset %zu in template", c, i);
    }

    p->store = hy_xmalloc(len + 1); /* decoded literals and names are never longer than the template */
    char *out = p->store;
    const char *s = t + 1, *end = t + len;
    if (s == end)
        return 0; /* the root "/" */
    for (;;) {
        const char *q = memchr(s, '/', (size_t)(end - s));
        if (q == NULL)
            q = end;
        size_t seglen = (size_t)(q - s);
        if (seglen == 0) {
            if (q == end) {
                fail(err, errlen, "trailing \"/\" is not allowed (only the root template \"/\" ends in \"/\")");
            } else {
                fail(err, errlen, "empty segment (\"//\") in template");
            }
            goto Error;
        }
        if (p->nsegs == HY_ROUTER_MAX_SEGMENTS) {
            fail(err, errlen, "too many segments in template (at most %d)", HY_ROUTER_MAX_SEGMENTS);
            goto Error;
        }
        tseg_t *ts = &p->segs[p->nsegs];
        if (s[0] == '{') {
            const char *close = memchr(s, '}', seglen);
            if (close == NULL) {
                fail(err, errlen, "unterminated parameter \"%.*s\" (missing \"}\")", (int)seglen, s);
                goto Error;
            }
            if (close != q - 1) {
                fail(err, errlen, "a parameter must be a whole segment: \"%.*s\"", (int)seglen, s);
                goto Error;
            }
            if (parse_param(s, seglen, &out, ts, err, errlen) != 0)
                goto Error;
            if (ts->kind == SEG_REST && q != end) {
                fail(err, errlen, "a catch-all parameter \"%.*s\" must be the last segment", (int)seglen, s);
                goto Error;
            }
            for (size_t i = 0; i != p->nsegs; ++i) {
                if (p->segs[i].kind != SEG_LITERAL && p->segs[i].len == ts->len && memcmp(p->segs[i].str, ts->str, ts->len) == 0) {
                    fail(err, errlen, "parameter \"%s\" appears twice", ts->str);
                    goto Error;
                }
            }
            if (p->nparams == HY_MAX_PARAMS) {
                fail(err, errlen, "too many parameters (at most %d)", HY_MAX_PARAMS);
                goto Error;
            }
            ++p->nparams;
        } else if (parse_literal(s, seglen, &out, ts, err, errlen) != 0) {
            goto Error;
        }
        ++p->nsegs;
        if (q == end)
            break;
        s = q + 1;
    }
    return 0;

Error:
    parsed_dispose(p);
    return -1;
}

int hy_router_check_template(const char *template_, char *err, size_t errlen)
{
    parsed_t p;
    if (parse_template(template_, &p, err, errlen) != 0)
        return -1;
    parsed_dispose(&p);
    return 0;
}

/* ---- building the tree ------------------------------------------------------------------------------------------------ */

/* Orders literals by length, then bytes. */
static int literal_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

/* Returns the index of the literal child equal to (s, len), or -1; *ins is where it would be inserted. */
static ptrdiff_t find_literal(const node_t *n, const char *s, size_t len, size_t *ins)
{
    size_t lo = 0, hi = n->nliterals;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = literal_cmp(n->literals[mid]->literal, n->literals[mid]->literal_len, s, len);
        if (c == 0)
            return (ptrdiff_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (ins != NULL)
        *ins = lo;
    return -1;
}

static node_t *new_node(void)
{
    return hy_xcalloc(1, sizeof(node_t));
}

/* Returns the child of n for segment ts, creating it when create is set (else NULL when absent). */
static node_t *child_for(node_t *n, const tseg_t *ts, int create)
{
    node_t **slot;
    switch (ts->kind) {
    case SEG_INT:
        slot = &n->int_child;
        break;
    case SEG_STRING:
        slot = &n->str_child;
        break;
    case SEG_REST:
        slot = &n->rest_child;
        break;
    default: {
        size_t ins = 0;
        ptrdiff_t i = find_literal(n, ts->str, ts->len, &ins);
        if (i >= 0)
            return n->literals[i];
        if (!create)
            return NULL;
        node_t *c = new_node();
        c->literal = hy_xmemdup(ts->str, ts->len);
        c->literal_len = ts->len;
        n->literals = hy_xreallocarray(n->literals, n->nliterals + 1, sizeof(*n->literals));
        memmove(n->literals + ins + 1, n->literals + ins, (n->nliterals - ins) * sizeof(*n->literals));
        n->literals[ins] = c;
        ++n->nliterals;
        return c;
    }
    }
    if (*slot == NULL && create)
        *slot = new_node();
    return *slot;
}

static void free_node(node_t *n)
{
    for (size_t i = 0; i != n->nliterals; ++i) {
        free_node(n->literals[i]);
        free(n->literals[i]);
    }
    free(n->literals);
    if (n->int_child != NULL) {
        free_node(n->int_child);
        free(n->int_child);
    }
    if (n->str_child != NULL) {
        free_node(n->str_child);
        free(n->str_child);
    }
    if (n->rest_child != NULL) {
        free_node(n->rest_child);
        free(n->rest_child);
    }
    for (size_t i = 0; i != n->nentries; ++i) {
        entry_t *e = n->entries[i];
        for (size_t j = 0; j != e->nparams; ++j)
            free(e->param_names[j]);
        free(e->template_);
        free(e);
    }
    free(n->entries);
    free(n->literal);
}

hy_router_t *hy_router_new(void)
{
    return hy_xcalloc(1, sizeof(hy_router_t));
}

void hy_router_free(hy_router_t *router)
{
    if (router == NULL)
        return;
    free_node(&router->root);
    free(router);
}

int hy_router_add(hy_router_t *router, const char *template_, unsigned methods, void *data, char *err, size_t errlen)
{
    parsed_t p;

    if (parse_template(template_, &p, err, errlen) != 0)
        return -1;
    if (methods == 0) {
        fail(err, errlen, "no methods given for the route");
        goto Error;
    }
    if ((methods & ~(unsigned)HY_METHOD_ALL) != 0) {
        fail(err, errlen, "unknown method bits 0x%x", methods & ~(unsigned)HY_METHOD_ALL);
        goto Error;
    }

    /* A route with the same shape ends at the same node; its methods must not overlap ours. */
    node_t *n = &router->root;
    for (size_t i = 0; i != p.nsegs && n != NULL; ++i)
        n = child_for(n, &p.segs[i], 0);
    if (n != NULL) {
        for (size_t i = 0; i != n->nentries; ++i) {
            unsigned overlap = n->entries[i]->methods & methods;
            if (overlap == 0)
                continue;
            char names[64];
            hy_methods_format(overlap, names, sizeof(names));
            if (strcmp(n->entries[i]->template_, template_) == 0) {
                fail(err, errlen, "duplicate route: %s %s is already declared", names, template_);
            } else {
                fail(err, errlen, "duplicate route: %s %s is already declared as \"%s\"", names, template_,
                     n->entries[i]->template_);
            }
            goto Error;
        }
    }

    /* Insert, raising the height of each node on the way. */
    entry_t *e = hy_xcalloc(1, sizeof(*e));
    e->template_ = hy_xstrdup(template_);
    e->methods = methods;
    e->data = data;
    n = &router->root;
    /* a catch-all reaches any depth the matcher looks at */
    int rest = p.nsegs != 0 && p.segs[p.nsegs - 1].kind == SEG_REST;
    for (size_t i = 0; i != p.nsegs; ++i) {
        size_t below = rest ? HY_ROUTER_MAX_SEGMENTS : p.nsegs - i;
        if (n->height < below)
            n->height = below;
        const tseg_t *ts = &p.segs[i];
        if (ts->kind != SEG_LITERAL) {
            e->param_names[e->nparams] = hy_xmemdup(ts->str, ts->len);
            e->param_depth[e->nparams] = i;
            e->param_type[e->nparams] = ts->kind == SEG_INT ? HY_PARAM_INT : ts->kind == SEG_REST ? HY_PARAM_REST : HY_PARAM_STRING;
            ++e->nparams;
        }
        n = child_for(n, ts, 1);
    }
    n->entries = hy_xreallocarray(n->entries, n->nentries + 1, sizeof(*n->entries));
    n->entries[n->nentries++] = e;
    ++router->nroutes;
    parsed_dispose(&p);
    return 0;

Error:
    parsed_dispose(&p);
    return -1;
}

/* ---- matching --------------------------------------------------------------------------------------------------------- */

/* State of one match, on the caller's stack. */
typedef struct st_match_ctx_t {
    const char *segs[HY_ROUTER_MAX_SEGMENTS]; /* decoded, NUL-terminated segments inside the caller's buf */
    size_t lens[HY_ROUTER_MAX_SEGMENTS];      /* their lengths */
    size_t raw_at[HY_ROUTER_MAX_SEGMENTS];    /* offset of each segment's raw (undecoded) bytes in the path */
    size_t raw_lens[HY_ROUTER_MAX_SEGMENTS];  /* their raw lengths */
    size_t nsegs;                             /* number of segments of the normalised path */
    size_t used;                              /* bytes of buf the decoded segments take */
    int trailing;                             /* the normalised path ends in '/' (only a catch-all or "/" match it) */
    unsigned method;                          /* the request's method bit */
    unsigned allowed;                         /* union of the methods of every template matching the path */
    const entry_t *winner;                    /* first route in precedence order that allows the method */
} match_ctx_t;

/* Parses ASCII digits into an int64_t. Returns 0, or -1 on an empty string, another byte or overflow. */
static int parse_int64(const char *s, size_t len, int64_t *out)
{
    uint64_t v = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i != len; ++i) {
        unsigned d = (unsigned char)s[i] - (unsigned)'0';
        if (d > 9)
            return -1;
        if (v > ((uint64_t)INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = (int64_t)v;
    return 0;
}

/* Splits, percent-decodes and normalises the path into buf as NUL-terminated segments (see router.h). Fills ctx->segs
 * for the first HY_ROUTER_MAX_SEGMENTS of them and sets *nsegs (possibly larger) and *trailing. One pass, no recursion.
 * buf never needs more than len bytes: a decoded segment and its NUL take no more room than the raw segment and the '/'
 * before it, whether or not a later ".." gives that room back. Returns 0, or -1 for a bad request. */
static int normalise(const char *path, size_t len, char *buf, match_ctx_t *ctx, size_t *nsegs, int *trailing)
{
    const char *s = path + 1, *end = path + len;
    size_t w = 0, depth = 0;

    *trailing = 0;
    for (;;) {
        const char *q = memchr(s, '/', (size_t)(end - s));
        if (q == NULL)
            q = end;
        int last = q == end;
        size_t start = w;
        for (const char *c = s; c != q; ++c) {
            unsigned char ch = (unsigned char)*c;
            if (ch == '%') {
                if (q - c < 3)
                    return -1;
                int hi = hy_hex_value((unsigned char)c[1]), lo = hy_hex_value((unsigned char)c[2]);
                if (hi < 0 || lo < 0)
                    return -1;
                ch = (unsigned char)(hi << 4 | lo);
                c += 2;
            }
            if (ch == '\0')
                return -1;
            buf[w++] = (char)ch;
        }
        size_t dlen = w - start;
        if (dlen == 0 || is_dot_segment(buf + start, dlen)) {
            w = start;
            if (dlen == 2 && depth != 0) { /* ".." removes the previous segment */
                --depth;
                if (depth < HY_ROUTER_MAX_SEGMENTS)
                    w = (size_t)(ctx->segs[depth] - buf); /* reuse its bytes; deeper ones are never read, so stay */
            }
            if (last)
                *trailing = 1; /* "/a/", "/a/." and "/a/b/.." all end in a slash */
        } else {
            if (depth < HY_ROUTER_MAX_SEGMENTS) {
                ctx->segs[depth] = buf + start;
                ctx->lens[depth] = dlen;
                ctx->raw_at[depth] = (size_t)(s - path);
                ctx->raw_lens[depth] = (size_t)(q - s);
            }
            buf[w++] = '\0';
            ++depth;
        }
        if (last)
            break;
        s = q + 1;
    }
    *nsegs = depth;
    ctx->used = w;
    return 0;
}

/* Records the routes ending at n: all add to `allowed`; the first that allows the method (an explicit HEAD before the
 * HEAD implied by GET) wins unless a route of higher precedence already did. */
static void visit_terminal(const node_t *n, match_ctx_t *ctx)
{
    if (n == NULL)
        return;
    const entry_t *pick = NULL, *via_get = NULL;
    for (size_t i = 0; i != n->nentries; ++i) {
        const entry_t *e = n->entries[i];
        ctx->allowed |= effective_methods(e->methods);
        if ((e->methods & ctx->method) != 0) {
            if (pick == NULL)
                pick = e;
        } else if (ctx->method == HY_METHOD_HEAD && (e->methods & HY_METHOD_GET) != 0 && via_get == NULL) {
            via_get = e;
        }
    }
    if (ctx->winner == NULL)
        ctx->winner = pick != NULL ? pick : via_get;
}

/* Depth-first walk in precedence order: literal child, then `{x:int}`, then `{x}`. The recursion depth is bounded by
 * the height of the tree (at most HY_ROUTER_MAX_SEGMENTS), never by the path; each node is visited at most once. */
static void match_node(const node_t *n, size_t depth, match_ctx_t *ctx)
{
    if (depth == ctx->nsegs) {
        if (!ctx->trailing || ctx->nsegs == 0)
            visit_terminal(n, ctx);
        visit_terminal(n->rest_child, ctx); /* zero segments for a catch-all */
        return;
    }
    if (ctx->nsegs - depth > n->height)
        return;
    const char *seg = ctx->segs[depth];
    size_t len = ctx->lens[depth];
    ptrdiff_t i = find_literal(n, seg, len, NULL);
    if (i >= 0)
        match_node(n->literals[i], depth + 1, ctx);
    int64_t ival;
    if (n->int_child != NULL && parse_int64(seg, len, &ival) == 0)
        match_node(n->int_child, depth + 1, ctx);
    if (n->str_child != NULL)
        match_node(n->str_child, depth + 1, ctx);
    visit_terminal(n->rest_child, ctx); /* lowest precedence: the rest of the path from here */
}

/* Writes the raw rest of the path from segment `depth` on into buf at ctx->used: "/" before each segment, the segments
 * as they were sent (not decoded, dot segments resolved, repeated slashes collapsed), and "/" when the path ends in a
 * slash; "" for nothing. Returns its length, or SIZE_MAX when buf is too small. */
static size_t write_rest(const match_ctx_t *ctx, const char *path, size_t depth, char *buf, size_t bufsize)
{
    size_t w = ctx->used;
    for (size_t i = depth; i != ctx->nsegs; ++i) {
        if (bufsize - w < ctx->raw_lens[i] + 2)
            return SIZE_MAX;
        buf[w++] = '/';
        memcpy(buf + w, path + ctx->raw_at[i], ctx->raw_lens[i]);
        w += ctx->raw_lens[i];
    }
    if (ctx->trailing) {
        if (bufsize - w < 2)
            return SIZE_MAX;
        buf[w++] = '/';
    }
    if (bufsize - w < 1)
        return SIZE_MAX;
    buf[w] = '\0';
    return w - ctx->used;
}

hy_match_result_t hy_router_match(const hy_router_t *router, unsigned method, const char *path, size_t len, char *buf,
                                  size_t bufsize, hy_match_t *out)
{
    match_ctx_t ctx;
    size_t nsegs;
    int trailing;

    out->data = NULL;
    out->template_ = NULL;
    out->allowed = 0;
    out->nparams = 0;
    if (path == NULL || len == 0 || path[0] != '/' || buf == NULL || bufsize < len + 1)
        return HY_MATCH_BAD_REQUEST;
    if (normalise(path, len, buf, &ctx, &nsegs, &trailing) != 0)
        return HY_MATCH_BAD_REQUEST;
    if (nsegs > router->root.height)
        return HY_MATCH_NOT_FOUND;

    ctx.nsegs = nsegs;
    ctx.trailing = trailing;
    ctx.method = method;
    ctx.allowed = 0;
    ctx.winner = NULL;
    match_node(&router->root, 0, &ctx);
    if (ctx.allowed == 0)
        return HY_MATCH_NOT_FOUND;
    out->allowed = ctx.allowed;
    if (ctx.winner == NULL)
        return HY_MATCH_METHOD_NOT_ALLOWED;

    const entry_t *e = ctx.winner;
    out->data = e->data;
    out->template_ = e->template_;
    out->nparams = e->nparams;
    for (size_t i = 0; i != e->nparams; ++i) {
        hy_param_t *prm = &out->params[i];
        size_t d = e->param_depth[i];
        prm->name = e->param_names[i];
        prm->type = e->param_type[i];
        prm->ival = 0;
        if (prm->type == HY_PARAM_REST) {
            size_t n = write_rest(&ctx, path, d, buf, bufsize);
            if (n == SIZE_MAX)
                return HY_MATCH_BAD_REQUEST;
            prm->value = buf + ctx.used;
            prm->len = n;
            continue;
        }
        prm->value = ctx.segs[d];
        prm->len = ctx.lens[d];
        if (prm->type == HY_PARAM_INT)
            parse_int64(prm->value, prm->len, &prm->ival);
    }
    return HY_MATCH_OK;
}
