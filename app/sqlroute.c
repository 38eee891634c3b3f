/* sqlroute.c: the `sql` route kind's model, parameter specs, value checks, column conversions, and the validation of
 * the queries against the database (see sqlroute.h). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "chars.h"
#include "json.h"
#include "pq.h"
#include "sqlroute.h"
#include <yajl/yajl_parse.h>

/* ---- names ------------------------------------------------------------------------------------------------------------ */

static const struct {
    const char *name; /* as written after ':' */
    unsigned oid;     /* the PostgreSQL type it binds as */
} types[HY_SQL_NTYPES] = {{"int", 20}, {"text", 25}, {"bool", 16}, {"uuid", 2950}, {"timestamptz", 1184}, {"json", 3802}};

const char *hy_sql_type_name(hy_sql_type_t t)
{
    return t < HY_SQL_NTYPES ? types[t].name : "?";
}

unsigned hy_sql_type_oid(hy_sql_type_t t)
{
    return t < HY_SQL_NTYPES ? types[t].oid : 0;
}

/* The conditions an error_map may name (PostgreSQL's Appendix A names), most useful first. */
static const struct {
    const char *name;
    const char *code;
} conditions[] = {
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

const char *hy_sql_condition_code(const char *name)
{
    for (size_t i = 0; i != sizeof(conditions) / sizeof(conditions[0]); ++i)
        if (strcmp(conditions[i].name, name) == 0)
            return conditions[i].code;
    return NULL;
}

/* ---- parameter specs -------------------------------------------------------------------------------------------------- */

static int parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0, limit = (uint64_t)INT64_MAX;
    if (len != 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        limit += neg;
        ++i;
    }
    if (i == len)
        return -1;
    for (; i != len; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return 0;
}

void hy_sql_param_clear(hy_sql_param_t *p)
{
    free(p->name);
    free(p->def);
    memset(p, 0, sizeof(*p));
}

int hy_sql_param_parse(const char *spec, int (*path_type)(void *ctx, const char *name), void *ctx, hy_sql_param_t *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *s = spec, *dot = strchr(s, '.');
    if (dot == NULL) {
        snprintf(err, errlen, "expected SOURCE.NAME[:TYPE][(MIN..MAX)][?][=DEFAULT] with SOURCE path, query or body");
        return -1;
    }
    size_t slen = (size_t)(dot - s);
    if (slen == 4 && memcmp(s, "path", 4) == 0)
        out->source = HY_SQL_FROM_PATH;
    else if (slen == 5 && memcmp(s, "query", 5) == 0)
        out->source = HY_SQL_FROM_QUERY;
    else if (slen == 4 && memcmp(s, "body", 4) == 0)
        out->source = HY_SQL_FROM_BODY;
    else {
        snprintf(err, errlen, "unknown source \"%.*s\" (expected path, query or body)", (int)(slen < 40 ? slen : 40), s);
        return -1;
    }
    s = dot + 1;
    size_t nlen = 0;
    while (s[nlen] != '\0' && (isalnum((unsigned char)s[nlen]) || s[nlen] == '_' || s[nlen] == '-'))
        ++nlen;
    if (nlen == 0 || nlen > 64) {
        snprintf(err, errlen, "expected a name of 1 to 64 letters, digits, '_' or '-' after \"%.*s.\"", (int)slen, spec);
        return -1;
    }
    out->name = hy_xmemdup(s, nlen);
    s += nlen;
    int typed = 0;
    if (*s == ':') {
        ++s;
        size_t tlen = 0;
        while (isalpha((unsigned char)s[tlen]))
            ++tlen;
        size_t t = 0;
        while (t != HY_SQL_NTYPES && !(strlen(types[t].name) == tlen && memcmp(types[t].name, s, tlen) == 0))
            ++t;
        if (t == HY_SQL_NTYPES) {
            snprintf(err, errlen, "unknown type \"%.*s\" (expected int, text, bool, uuid, timestamptz or json)",
                     (int)(tlen < 40 ? tlen : 40), s);
            goto Error;
        }
        out->type = (hy_sql_type_t)t;
        typed = 1;
        s += tlen;
    }
    if (out->source == HY_SQL_FROM_PATH) {
        int pt = path_type != NULL ? path_type(ctx, out->name) : -1;
        if (pt < 0) {
            snprintf(err, errlen, "the route's path has no parameter {%s}", out->name);
            goto Error;
        }
        if (!typed)
            out->type = (hy_sql_type_t)pt;
    } else if (!typed) {
        out->type = HY_SQL_TEXT;
    }
    if (*s == '(') {
        const char *close = strchr(s, ')'), *dots = strstr(s, "..");
        if (close == NULL || dots == NULL || dots > close) {
            snprintf(err, errlen, "bounds are written (MIN..MAX), either side may be left out");
            goto Error;
        }
        if (out->type != HY_SQL_INT && out->type != HY_SQL_TEXT) {
            snprintf(err, errlen, "bounds apply to int (the value) and text (the length) only, not %s", types[out->type].name);
            goto Error;
        }
        if (dots != s + 1) {
            if (parse_i64(s + 1, (size_t)(dots - s - 1), &out->min) != 0) {
                snprintf(err, errlen, "the lower bound \"%.*s\" is not an integer", (int)(dots - s - 1 < 40 ? dots - s - 1 : 40),
                         s + 1);
                goto Error;
            }
            out->has_min = 1;
        }
        if (dots + 2 != close) {
            if (parse_i64(dots + 2, (size_t)(close - dots - 2), &out->max) != 0) {
                snprintf(err, errlen, "the upper bound \"%.*s\" is not an integer",
                         (int)(close - dots - 2 < 40 ? close - dots - 2 : 40), dots + 2);
                goto Error;
            }
            out->has_max = 1;
        }
        if (!out->has_min && !out->has_max) {
            snprintf(err, errlen, "empty bounds: give MIN, MAX or both");
            goto Error;
        }
        if (out->has_min && out->has_max && out->min > out->max) {
            snprintf(err, errlen, "the lower bound %" PRId64 " is above the upper bound %" PRId64, out->min, out->max);
            goto Error;
        }
        if (out->type == HY_SQL_TEXT && ((out->has_min && out->min < 0) || (out->has_max && out->max < 0))) {
            snprintf(err, errlen, "text bounds are lengths and cannot be negative");
            goto Error;
        }
        s = close + 1;
    }
    if (*s == '?') {
        out->optional = 1;
        ++s;
    }
    if (*s == '=') {
        if (out->optional) {
            snprintf(err, errlen, "give either '?' (SQL NULL when absent) or a default, not both");
            goto Error;
        }
        if (out->source == HY_SQL_FROM_PATH) {
            snprintf(err, errlen, "a path parameter is always present and takes no default");
            goto Error;
        }
        ++s;
        size_t len = strlen(s);
        char *buf = hy_xmalloc(len + 2), why[160];
        if (hy_sql_value_check(out, s, len, buf, len + 2, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "the default \"%.*s\" %s", (int)(len < 40 ? len : 40), s, why);
            free(buf);
            goto Error;
        }
        out->def = buf;
        s += len;
    }
    if (out->optional && out->source == HY_SQL_FROM_PATH) {
        snprintf(err, errlen, "a path parameter is always present and cannot be optional");
        goto Error;
    }
    if (*s != '\0') {
        snprintf(err, errlen, "unexpected \"%.20s\" (expected SOURCE.NAME[:TYPE][(MIN..MAX)][?][=DEFAULT])", s);
        goto Error;
    }
    return 0;
Error:
    hy_sql_param_clear(out);
    return -1;
}

/* ---- the query text --------------------------------------------------------------------------------------------------- */

/* Skips whitespace and comments from s; returns where the next token starts. */
static const char *skip_space(const char *s)
{
    for (;;) {
        while (isspace((unsigned char)*s) || *s == '(')
            ++s;
        if (s[0] == '-' && s[1] == '-') {
            while (*s != '\0' && *s != '\n')
                ++s;
        } else if (s[0] == '/' && s[1] == '*') {
            const char *e = strstr(s + 2, "*/");
            s = e != NULL ? e + 2 : s + strlen(s);
        } else {
            return s;
        }
    }
}

int hy_sql_is_select(const char *query)
{
    const char *s = skip_space(query);
    return strncasecmp(s, "select", 6) == 0 && !isalnum((unsigned char)s[6]) && s[6] != '_';
}

int hy_sql_max_placeholder(const char *q)
{
    int max = 0;
    while (*q != '\0') {
        if (*q == '\'' || *q == '"') {
            char quote = *q++;
            while (*q != '\0' && !(*q == quote && q[1] != quote))
                q += *q == quote ? 2 : 1;
            if (*q != '\0')
                ++q;
        } else if (q[0] == '-' && q[1] == '-') {
            while (*q != '\0' && *q != '\n')
                ++q;
        } else if (q[0] == '/' && q[1] == '*') {
            const char *e = strstr(q + 2, "*/");
            q = e != NULL ? e + 2 : q + strlen(q);
        } else if (*q == '$' && isdigit((unsigned char)q[1])) {
            long n = strtol(q + 1, (char **)&q, 10);
            if (n > max && n < 100000)
                max = (int)n;
        } else if (*q == '$') {
            /* a dollar-quoted string: $tag$ ... $tag$ */
            const char *t = q + 1;
            while (isalnum((unsigned char)*t) || *t == '_')
                ++t;
            if (*t == '$') {
                size_t tlen = (size_t)(t - q + 1);
                const char *end = q + tlen;
                while (*end != '\0' && strncmp(end, q, tlen) != 0)
                    ++end;
                q = *end != '\0' ? end + tlen : end;
            } else {
                ++q;
            }
        } else {
            ++q;
        }
    }
    return max;
}

void hy_sql_finish(hy_sql_t *sql, const char *label)
{
    sql->param_types = hy_xcalloc(sql->nparams + 1, sizeof(unsigned));
    uint64_t h = hy_config_hash(sql->query, strlen(sql->query));
    for (size_t i = 0; i != sql->nparams; ++i) {
        sql->param_types[i] = hy_sql_type_oid(sql->params[i].type);
        h = (h ^ sql->param_types[i]) * UINT64_C(1099511628211);
    }
    snprintf(sql->stmt_name, sizeof(sql->stmt_name), "hy_sql_%016" PRIx64, h);
    sql->label = hy_xstrdup(label);
    sql->stmt = (hy_db_stmt_t){sql->stmt_name, sql->query, (int)sql->nparams, sql->idempotent, sql->param_types, sql->label};
}

void hy_sql_free(hy_sql_t *sql)
{
    if (sql == NULL)
        return;
    free(sql->query);
    for (size_t i = 0; i != sql->nparams; ++i)
        hy_sql_param_clear(&sql->params[i]);
    free(sql->params);
    for (size_t i = 0; i != sql->nerrors; ++i) {
        free(sql->errors[i].error);
        free(sql->errors[i].message);
    }
    free(sql->errors);
    free(sql->param_types);
    free(sql->label);
    free(sql);
}

/* ---- values ----------------------------------------------------------------------------------------------------------- */

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i != n; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* RFC 3339 date-time with a zone: YYYY-MM-DD(T|t| )HH:MM:SS[.frac](Z|z|+HH:MM|-HH:MM). */
static int is_rfc3339(const char *s, size_t len)
{
    int y, mo, d, h, mi, se, oh, om;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':' ||
        digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) || digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) ||
        digits(s + 17, 2, &se))
        return 0;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) || h > 23 || mi > 59 || se > 60)
        return 0;
    size_t i = 19;
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            ++i;
        if (i == start)
            return 0;
    }
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z'))
        return 1;
    return i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':' && digits(s + i + 1, 2, &oh) == 0 &&
           digits(s + i + 4, 2, &om) == 0 && oh <= 23 && om <= 59;
}

/* One complete JSON value, in valid UTF-8 (what jsonb accepts, NUL escapes aside). */
static int is_json(const char *s, size_t len)
{
    if (memchr(s, '\0', len) != NULL || !hy_utf8_valid((const unsigned char *)s, len))
        return 0;
    yajl_handle h = yajl_alloc(NULL, NULL, NULL);
    if (h == NULL)
        return 0;
    int ok = yajl_parse(h, (const unsigned char *)s, len) == yajl_status_ok && yajl_complete_parse(h) == yajl_status_ok;
    yajl_free(h);
    return ok;
}

static int is_uuid(const char *s, size_t len)
{
    if (len != 36)
        return 0;
    for (size_t i = 0; i != 36; ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (hy_hex_value((unsigned char)s[i]) < 0) {
            return 0;
        }
    }
    return 1;
}

/* "from 1 to 100", "of at least 1", "of at most 100" */
static void describe_bounds(const hy_sql_param_t *p, char *buf, size_t len)
{
    if (p->has_min && p->has_max)
        snprintf(buf, len, " from %" PRId64 " to %" PRId64, p->min, p->max);
    else if (p->has_min)
        snprintf(buf, len, " of at least %" PRId64, p->min);
    else if (p->has_max)
        snprintf(buf, len, " of at most %" PRId64, p->max);
    else
        buf[0] = '\0';
}

int hy_sql_value_check(const hy_sql_param_t *p, const char *v, size_t len, char *out, size_t outsize, char *err, size_t errlen)
{
    char bounds[64];
    if (outsize < len + 2) {
        snprintf(err, errlen, "is too long");
        return -1;
    }
    switch (p->type) {
    case HY_SQL_INT: {
        int64_t n;
        describe_bounds(p, bounds, sizeof(bounds));
        if (parse_i64(v, len, &n) != 0 || (p->has_min && n < p->min) || (p->has_max && n > p->max)) {
            snprintf(err, errlen, "must be an integer%s", bounds[0] != '\0' ? bounds : " (64-bit)");
            return -1;
        }
        snprintf(out, outsize, "%" PRId64, n);
        return 0;
    }
    case HY_SQL_TEXT: {
        size_t chars = 0;
        for (size_t i = 0; i != len; ++i)
            chars += ((unsigned char)v[i] & 0xc0) != 0x80;
        if (memchr(v, '\0', len) != NULL || !hy_utf8_valid((const unsigned char *)v, len)) {
            snprintf(err, errlen, "must be UTF-8 text without NUL characters");
            return -1;
        }
        if ((p->has_min && (int64_t)chars < p->min) || (p->has_max && (int64_t)chars > p->max)) {
            describe_bounds(p, bounds, sizeof(bounds));
            snprintf(err, errlen, "must be text of a length%s characters", bounds);
            return -1;
        }
        memcpy(out, v, len);
        out[len] = '\0';
        return 0;
    }
    case HY_SQL_BOOL:
        if ((len == 4 && strncasecmp(v, "true", 4) == 0) || (len == 1 && v[0] == '1')) {
            strcpy(out, "t");
            return 0;
        }
        if ((len == 5 && strncasecmp(v, "false", 5) == 0) || (len == 1 && v[0] == '0')) {
            strcpy(out, "f");
            return 0;
        }
        snprintf(err, errlen, "must be true or false");
        return -1;
    case HY_SQL_UUID:
        if (!is_uuid(v, len)) {
            snprintf(err, errlen, "must be a UUID (8-4-4-4-12 hex digits)");
            return -1;
        }
        memcpy(out, v, len);
        out[len] = '\0';
        return 0;
    case HY_SQL_JSON:
        if (!is_json(v, len)) {
            snprintf(err, errlen, "must be JSON");
            return -1;
        }
        memcpy(out, v, len);
        out[len] = '\0';
        return 0;
    case HY_SQL_TIMESTAMPTZ:
        if (!is_rfc3339(v, len)) {
            snprintf(err, errlen, "must be an RFC 3339 timestamp with a zone (2024-05-01T12:00:00Z)");
            return -1;
        }
        memcpy(out, v, len);
        out[len] = '\0';
        return 0;
    default:
        snprintf(err, errlen, "has an unknown type");
        return -1;
    }
}

size_t hy_sql_rfc3339(const char *v, size_t len, char *out)
{
    /* ISO output is "YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]"; anything else (BC dates, infinity, years past 9999) as is */
    if (len < 19 || v[4] != '-' || v[7] != '-' || v[10] != ' ' || v[13] != ':' || v[16] != ':' ||
        memcmp(v + len - 3, " BC", 3) == 0) {
        memcpy(out, v, len);
        return len;
    }
    memcpy(out, v, 19);
    out[10] = 'T';
    /* always microseconds, as the C handlers write them */
    size_t i = 19, o = 19, f = 0;
    out[o++] = '.';
    if (i < len && v[i] == '.')
        for (++i; i < len && v[i] >= '0' && v[i] <= '9'; ++i)
            if (f < 6)
                out[o++] = v[i], ++f;
    for (; f < 6; ++f)
        out[o++] = '0';
    if (i == len || (v[i] != '+' && v[i] != '-')) /* a timestamp without a zone */
        return o;
    size_t zlen = len - i - 1;
    if (zlen == 2 && v[i + 1] == '0' && v[i + 2] == '0') {
        out[o++] = 'Z';
    } else {
        memcpy(out + o, v + i, zlen + 1);
        o += zlen + 1;
        if (zlen == 2) {
            memcpy(out + o, ":00", 3);
            o += 3;
        }
    }
    return o;
}

size_t hy_sql_bytea_base64(const char *v, size_t len, char *out)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len < 2 || v[0] != '\\' || v[1] != 'x' || len % 2 != 0)
        return (size_t)-1;
    size_t n = (len - 2) / 2, o = 0;
    unsigned char b[3];
    for (size_t i = 0; i < n; i += 3) {
        size_t k = 0;
        for (; k != 3 && i + k < n; ++k) {
            int hi = hy_hex_value((unsigned char)v[2 + 2 * (i + k)]), lo = hy_hex_value((unsigned char)v[3 + 2 * (i + k)]);
            if (hi < 0 || lo < 0)
                return (size_t)-1;
            b[k] = (unsigned char)(hi << 4 | lo);
        }
        for (size_t z = k; z != 3; ++z)
            b[z] = 0;
        out[o++] = alphabet[b[0] >> 2];
        out[o++] = alphabet[(b[0] & 3) << 4 | b[1] >> 4];
        out[o++] = k > 1 ? alphabet[(b[1] & 15) << 2 | b[2] >> 6] : '=';
        out[o++] = k > 2 ? alphabet[b[2] & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

/* ---- validation against the database ---------------------------------------------------------------------------------- */

/* The first line of a server message, without the "ERROR:  " prefix. */
static void first_line(const char *msg, char *out, size_t outsize)
{
    if (strncmp(msg, "ERROR:", 6) == 0)
        for (msg += 6; *msg == ' ';)
            ++msg;
    size_t n = strcspn(msg, "\n");
    snprintf(out, outsize, "%.*s", (int)n, msg);
}

int hy_sql_validate(const hy_config_t *config, hy_diags_t *diags, char *why, size_t whylen)
{
    size_t nsql = 0;
    for (size_t i = 0; i != config->nroutes; ++i)
        nsql += config->routes[i].kind == HY_ROUTE_SQL;
    if (nsql == 0 || !config->has_database)
        return 0;
    char err[300];
    if (hy_pq_load(err, sizeof(err)) != 0) {
        snprintf(why, whylen, "%s", err);
        return 1;
    }
    hy_conninfo_t ci;
    hy_conninfo_build(&config->database, &ci);
    PGconn *pg = PQconnectdbParams(ci.keywords, ci.values, 1);
    if (PQstatus(pg) != CONNECTION_OK) {
        first_line(PQerrorMessage(pg), err, sizeof(err));
        snprintf(why, whylen, "%s", err);
        PQfinish(pg);
        return 1;
    }
    int ret = 0;
    for (size_t i = 0; i != config->nroutes; ++i) {
        const hy_route_t *r = &config->routes[i];
        if (r->kind != HY_ROUTE_SQL)
            continue;
        const hy_sql_t *sql = r->sql;
        char key[64];
        snprintf(key, sizeof(key), "routes[%zu].sql.query", i);
        PGresult *res = PQprepare(pg, "", sql->query, (int)sql->nparams, sql->param_types);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            first_line(PQresultErrorMessage(res), err, sizeof(err));
            hy_diags_add(diags, config->file, sql->query_pos.line, sql->query_pos.col, key, "the query does not prepare: %s", err);
            PQclear(res);
            ret = -1;
            continue;
        }
        PQclear(res);
        res = PQdescribePrepared(pg, "");
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            if ((size_t)PQnparams(res) != sql->nparams) {
                hy_diags_add(diags, config->file, sql->query_pos.line, sql->query_pos.col, key,
                             "the query uses %d parameter%s but params lists %zu", PQnparams(res), PQnparams(res) == 1 ? "" : "s",
                             sql->nparams);
                ret = -1;
            } else if (sql->result != HY_SQL_RESULT_NONE && PQnfields(res) == 0) {
                hy_diags_add(diags, config->file, sql->query_pos.line, sql->query_pos.col, key,
                             "result: %s needs a query that returns rows (add RETURNING, or use result: none)",
                             sql->result == HY_SQL_RESULT_ONE ? "one" : "many");
                ret = -1;
            }
        }
        PQclear(res);
    }
    PQfinish(pg);
    return ret;
}
