/* check_metrics.c: unit tests of the Prometheus registry (app/metrics.c): exposition format, shards, threads, limits. */

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "metrics.h"

/* ---- helpers ---------------------------------------------------------------------------------------------------------- */

/* Renders `m`; the text is owned by the caller. Checks that the length is that of the string. */
static char *render(hy_metrics_t *m)
{
    size_t len;
    char *text = hy_metrics_render(m, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(strlen(text), len);
    return text;
}

/* Number of lines of `text` that start with `prefix`. */
static size_t count_lines(const char *text, const char *prefix)
{
    size_t n = 0, plen = strlen(prefix);
    for (const char *line = text; *line != '\0';) {
        if (strncmp(line, prefix, plen) == 0)
            ++n;
        const char *nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    return n;
}

/* The value of the one sample line `series` (name and labels exactly as rendered, e.g. `a_total{x="y"}`), as text in
 * buf. Fails the test when there is not exactly one such line. */
static const char *value_text(const char *text, const char *series, char *buf, size_t bufsize)
{
    size_t slen = strlen(series), found = 0;
    for (const char *line = text; *line != '\0';) {
        const char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        if (strncmp(line, series, slen) == 0 && line[slen] == ' ') {
            size_t vlen = (size_t)(nl - (line + slen + 1));
            ck_assert_uint_lt(vlen, bufsize);
            memcpy(buf, line + slen + 1, vlen);
            buf[vlen] = '\0';
            ++found;
        }
        line = nl + 1;
    }
    ck_assert_msg(found == 1, "series %s found %zu times in:\n%s", series, found, text);
    return buf;
}

static double value_of(const char *text, const char *series)
{
    char buf[64];
    return strtod(value_text(text, series, buf, sizeof(buf)), NULL);
}

static int is_name_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

/* Checks `text` against the text exposition format 0.0.4 as hydrant writes it: every line ends in '\n'; each family has
 * one "# HELP" line followed by its "# TYPE" line, before its samples, and never reappears; a sample's name is its
 * family's (with _bucket/_sum/_count for a histogram); labels are name="value" with only \\ \" \n escapes; values
 * parse; a histogram series' buckets are cumulative and end with le="+Inf" equal to its _count. Returns NULL when
 * valid, else a message in err. Safe to call from any thread (no Check assertions). */
static const char *exposition_error(const char *text, char *err, size_t errsize)
{
    char family[128] = "", type[16] = "", series[512] = "", seen[8192] = " ";
    double prev_bucket = -1, inf_bucket = -1;
    size_t lineno = 0;

    if (*text != '\0' && text[strlen(text) - 1] != '\n')
        return snprintf(err, errsize, "text does not end in a newline"), err;
    for (const char *line = text; *line != '\0';) {
        const char *nl = strchr(line, '\n');
        char l[1024];
        size_t len = (size_t)(nl - line);
        ++lineno;
        if (len >= sizeof(l))
            return snprintf(err, errsize, "line %zu too long", lineno), err;
        memcpy(l, line, len);
        l[len] = '\0';
        line = nl + 1;

        if (strncmp(l, "# HELP ", 7) == 0) {
            char name[128], key[132];
            if (sscanf(l + 7, "%127s", name) != 1)
                return snprintf(err, errsize, "line %zu: bad HELP", lineno), err;
            snprintf(key, sizeof(key), " %s ", name);
            if (strstr(seen, key) != NULL)
                return snprintf(err, errsize, "line %zu: family %s repeated", lineno, name), err;
            if (strlen(seen) + strlen(key) >= sizeof(seen))
                return snprintf(err, errsize, "too many families"), err;
            strcat(seen, name);
            strcat(seen, " ");
            for (const char *h = l + 7 + strlen(name); *h != '\0'; ++h)
                if (*h == '\\' && h[1] != '\\' && h[1] != 'n')
                    return snprintf(err, errsize, "line %zu: bad escape in HELP", lineno), err;
                else if (*h == '\\')
                    ++h;
            strcpy(family, name);
            type[0] = '\0';
            continue;
        }
        if (strncmp(l, "# TYPE ", 7) == 0) {
            char name[128], t[16];
            if (sscanf(l + 7, "%127s %15s", name, t) != 2 || strcmp(name, family) != 0 || type[0] != '\0')
                return snprintf(err, errsize, "line %zu: TYPE not right after its HELP", lineno), err;
            if (strcmp(t, "counter") != 0 && strcmp(t, "gauge") != 0 && strcmp(t, "histogram") != 0)
                return snprintf(err, errsize, "line %zu: unknown type %s", lineno, t), err;
            strcpy(type, t);
            prev_bucket = inf_bucket = -1;
            series[0] = '\0';
            continue;
        }
        if (l[0] == '#' || type[0] == '\0')
            return snprintf(err, errsize, "line %zu: sample outside a family: %.80s", lineno, l), err;

        /* the name */
        size_t n = 0;
        while (is_name_char(l[n], n == 0))
            ++n;
        char name[160];
        memcpy(name, l, n);
        name[n] = '\0';
        const char *suffix = "";
        size_t flen = strlen(family);
        if (strcmp(name, family) != 0) {
            if (strcmp(type, "histogram") != 0 || strncmp(name, family, flen) != 0)
                return snprintf(err, errsize, "line %zu: %.60s is not of family %.60s", lineno, name, family), err;
            suffix = name + flen;
            if (strcmp(suffix, "_bucket") != 0 && strcmp(suffix, "_sum") != 0 && strcmp(suffix, "_count") != 0)
                return snprintf(err, errsize, "line %zu: bad histogram suffix %s", lineno, suffix), err;
        } else if (strcmp(type, "histogram") == 0) {
            return snprintf(err, errsize, "line %zu: histogram sample without suffix", lineno), err;
        }

        /* the labels; `rest` collects them without le */
        char rest[512] = "", le[64] = "";
        const char *p = l + n;
        if (*p == '{') {
            ++p;
            while (*p != '}') {
                size_t ln = 0;
                while (is_name_char(p[ln], ln == 0) && p[ln] != ':')
                    ++ln;
                if (ln == 0 || p[ln] != '=' || p[ln + 1] != '"')
                    return snprintf(err, errsize, "line %zu: bad label", lineno), err;
                int is_le = ln == 2 && strncmp(p, "le", 2) == 0;
                const char *v = p + ln + 2, *q = v;
                while (*q != '"') {
                    if (*q == '\0' || *q == '\n')
                        return snprintf(err, errsize, "line %zu: unterminated label value", lineno), err;
                    if (*q == '\\') {
                        if (q[1] != '\\' && q[1] != '"' && q[1] != 'n')
                            return snprintf(err, errsize, "line %zu: bad escape in label value", lineno), err;
                        ++q;
                    }
                    ++q;
                }
                if (is_le) {
                    snprintf(le, sizeof(le), "%.*s", (int)(q - v), v);
                } else {
                    size_t rl = strlen(rest);
                    snprintf(rest + rl, sizeof(rest) - rl, "%.*s;", (int)(q + 1 - p), p);
                }
                p = q + 1;
                if (*p == ',')
                    ++p;
                else if (*p != '}')
                    return snprintf(err, errsize, "line %zu: bad label separator", lineno), err;
            }
            ++p;
        }
        if (*p != ' ')
            return snprintf(err, errsize, "line %zu: no space before the value", lineno), err;
        char *end;
        double v = strtod(p + 1, &end);
        if (end == p + 1 || *end != '\0')
            return snprintf(err, errsize, "line %zu: bad value \"%.40s\"", lineno, p + 1), err;

        if (strcmp(suffix, "_bucket") == 0) {
            if (le[0] == '\0')
                return snprintf(err, errsize, "line %zu: bucket without le", lineno), err;
            if (strcmp(rest, series) != 0) {
                if (prev_bucket >= 0 && inf_bucket < 0)
                    return snprintf(err, errsize, "line %zu: previous series had no +Inf bucket", lineno), err;
                snprintf(series, sizeof(series), "%s", rest);
                prev_bucket = inf_bucket = -1;
            }
            if (v < prev_bucket)
                return snprintf(err, errsize, "line %zu: buckets not cumulative", lineno), err;
            prev_bucket = v;
            if (strcmp(le, "+Inf") == 0)
                inf_bucket = v;
        } else if (strcmp(suffix, "_count") == 0) {
            if (strcmp(rest, series) != 0 || inf_bucket < 0 || v != inf_bucket)
                return snprintf(err, errsize, "line %zu: _count differs from the +Inf bucket", lineno), err;
        } else if (strcmp(suffix, "_sum") == 0) {
            if (strcmp(rest, series) != 0)
                return snprintf(err, errsize, "line %zu: _sum of another series", lineno), err;
        } else if (le[0] != '\0') {
            return snprintf(err, errsize, "line %zu: le label outside a bucket", lineno), err;
        }
    }
    return NULL;
}

static void assert_valid(const char *text)
{
    char err[256];
    const char *e = exposition_error(text, err, sizeof(err));
    ck_assert_msg(e == NULL, "%s in:\n%s", e, text);
}

/* Fails unless `a` and `b` both occur in text, the first `a` before the first `b`. */
static void assert_before(const char *text, const char *a, const char *b)
{
    const char *pa = strstr(text, a), *pb = strstr(text, b);
    ck_assert_msg(pa != NULL && pb != NULL && pa < pb, "\"%s\" should come before \"%s\" in:\n%s", a, b, text);
}

static const char *const routes3[] = {"/users/{id}", "a\"b\\c", "x\ny"};

/* ---- exposition format ------------------------------------------------------------------------------------------------ */

START_TEST(test_empty_registry)
{
    hy_metrics_t *m = hy_metrics_create(2, routes3, 3, NULL, 0);
    ck_assert_ptr_nonnull(m);
    char *text = render(m);
    assert_valid(text);
    /* no request yet: the request families are left out; gauges and connection counters are always there */
    ck_assert_uint_eq(count_lines(text, "http_request_"), 0);
    ck_assert_uint_eq(count_lines(text, "http_requests_total"), 0);
    ck_assert_uint_eq(count_lines(text, "# HELP http_requests_total "), 0);
    ck_assert_double_eq(value_of(text, "http_requests_in_flight"), 0);
    ck_assert_double_eq(value_of(text, "hydrant_connections{protocol=\"http1\"}"), 0);
    ck_assert_double_eq(value_of(text, "hydrant_connections{protocol=\"http2\"}"), 0);
    ck_assert_double_eq(value_of(text, "hydrant_connections_total"), 0);
    ck_assert_uint_eq(count_lines(text, "# TYPE http_requests_in_flight gauge"), 1);
    ck_assert_uint_eq(count_lines(text, "# TYPE hydrant_connections gauge"), 1);
    ck_assert_uint_eq(count_lines(text, "# TYPE hydrant_connections_total counter"), 1);
    free(text);
    hy_metrics_free(m);
}
END_TEST

START_TEST(test_help_and_type_once_per_family)
{
    hy_metrics_t *m = hy_metrics_create(1, routes3, 3, NULL, 0);
    hy_metrics_shard_t *s = hy_metrics_shard(m, 0);
    for (int i = 0; i != 3; ++i) {
        hy_metrics_request_start(s);
        hy_metrics_request_done(s, HY_METRICS_GET, (size_t)i, 200 + i, 0.01, 10, 100);
        hy_metrics_request_start(s);
        hy_metrics_request_done(s, HY_METRICS_POST, (size_t)i, 201, 0.02, 10, 100);
    }
    char *text = render(m);
    assert_valid(text);
    static const char *const families[][2] = {
        {"http_requests_total", "counter"},       {"http_request_duration_seconds", "histogram"},
        {"http_request_size_bytes", "histogram"}, {"http_response_size_bytes", "histogram"},
        {"http_requests_in_flight", "gauge"},     {"hydrant_connections", "gauge"},
        {"hydrant_connections_total", "counter"},
    };
    const char *last = text;
    for (size_t i = 0; i != sizeof(families) / sizeof(families[0]); ++i) {
        char help[128], type[128];
        snprintf(help, sizeof(help), "# HELP %s ", families[i][0]);
        snprintf(type, sizeof(type), "# TYPE %s %s\n", families[i][0], families[i][1]);
        ck_assert_uint_eq(count_lines(text, help), 1);
        ck_assert_uint_eq(count_lines(text, type), 1);
        /* stable order: each family after the previous one */
        const char *at = strstr(text, type);
        ck_assert_ptr_nonnull(at);
        ck_assert_msg(at >= last, "%s out of order", families[i][0]);
        last = at;
    }
    /* 6 (method, route) pairs, 6 request counter series */
    ck_assert_uint_eq(count_lines(text, "http_requests_total{"), 6);
    ck_assert_uint_eq(count_lines(text, "http_request_duration_seconds_count{"), 6);
    ck_assert_uint_eq(count_lines(text, "http_request_size_bytes_count{"), 6);
    ck_assert_uint_eq(count_lines(text, "http_response_size_bytes_count{"), 6);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"GET\",route=\"/users/{id}\",status=\"200\"}"), 1);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"POST\",route=\"/users/{id}\",status=\"201\"}"), 1);
    free(text);
    hy_metrics_free(m);
}
END_TEST

START_TEST(test_label_escaping)
{
    hy_metrics_t *m = hy_metrics_create(1, routes3, 3, NULL, 0);
    hy_metrics_shard_t *s = hy_metrics_shard(m, 0);
    hy_metrics_request_start(s);
    hy_metrics_request_done(s, HY_METRICS_GET, 1, 200, 0.01, 0, 0);
    hy_metrics_request_start(s);
    hy_metrics_request_done(s, HY_METRICS_GET, 2, 200, 0.01, 0, 0);
    char *text = render(m);
    assert_valid(text);
    /* a"b\c renders as a\"b\\c; a newline as \n */
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"GET\",route=\"a\\\"b\\\\c\",status=\"200\"}"), 1);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"GET\",route=\"x\\ny\",status=\"200\"}"), 1);
    ck_assert_double_eq(value_of(text, "http_request_duration_seconds_count{method=\"GET\",route=\"x\\ny\"}"), 1);
    ck_assert_ptr_null(strstr(text, "x\ny"));
    free(text);

    char buf[64];
    ck_assert_uint_eq(hy_metrics_escape_label_value("a\"b\\c\nd", buf, sizeof(buf)), 10);
    ck_assert_str_eq(buf, "a\\\"b\\\\c\\nd");
    ck_assert_uint_eq(hy_metrics_escape_label_value("a\"b", buf, 3), 4); /* truncated, still terminated */
    ck_assert_str_eq(buf, "a\\");
    ck_assert_uint_eq(hy_metrics_escape_label_value("plain", buf, sizeof(buf)), 5);
    ck_assert_str_eq(buf, "plain");
    hy_metrics_free(m);
}
END_TEST

START_TEST(test_help_escaping)
{
    hy_metrics_t *m = hy_metrics_create(1, NULL, 0, NULL, 0);
    size_t f;
    ck_assert_int_eq(hy_metrics_add_counter(m, "hy_test_total", "back\\slash \"quoted\"\nsecond line", NULL, NULL, 0, &f), 0);
    char *text = render(m);
    assert_valid(text);
    /* HELP escapes backslash and newline, not the double quote */
    ck_assert_uint_eq(count_lines(text, "# HELP hy_test_total back\\\\slash \"quoted\"\\nsecond line\n"), 1);
    free(text);
    hy_metrics_free(m);
}
END_TEST

START_TEST(test_histogram_buckets)
{
    hy_metrics_t *m = hy_metrics_create(1, routes3, 3, NULL, 0);
    hy_metrics_shard_t *s = hy_metrics_shard(m, 0);
    static const double seconds[] = {0.003, 0.02, 0.2, 3, 20};
    static const uint64_t sizes[] = {50, 150, 5000, 2000000, 50000000};
    double sum = 0, size_sum = 0;
    for (size_t i = 0; i != 5; ++i) {
        hy_metrics_request_start(s);
        hy_metrics_request_done(s, HY_METRICS_GET, 0, 200, seconds[i], sizes[i], sizes[4 - i]);
        sum += seconds[i];
        size_sum += (double)sizes[i];
    }
    char *text = render(m);
    assert_valid(text);

    static const struct {
        const char *le;
        double count;
    } expect[] = {{"0.005", 1}, {"0.01", 1}, {"0.025", 2}, {"0.05", 2}, {"0.1", 2}, {"0.25", 3},
                  {"0.5", 3},   {"1", 3},    {"2.5", 3},   {"5", 4},    {"10", 4},  {"+Inf", 5}};
    for (size_t i = 0; i != sizeof(expect) / sizeof(expect[0]); ++i) {
        char series[160];
        snprintf(series, sizeof(series), "http_request_duration_seconds_bucket{method=\"GET\",route=\"/users/{id}\",le=\"%s\"}",
                 expect[i].le);
        ck_assert_msg(value_of(text, series) == expect[i].count, "%s", series);
    }
    ck_assert_uint_eq(count_lines(text, "http_request_duration_seconds_bucket{"), 12);
    ck_assert_double_eq(value_of(text, "http_request_duration_seconds_count{method=\"GET\",route=\"/users/{id}\"}"), 5);
    ck_assert_double_eq(value_of(text, "http_request_duration_seconds_sum{method=\"GET\",route=\"/users/{id}\"}"), sum);

    static const struct {
        const char *le;
        double count;
    } size_expect[] = {{"100", 1}, {"1000", 2}, {"10000", 3}, {"100000", 3}, {"1e+06", 3}, {"1e+07", 4}, {"+Inf", 5}};
    for (size_t i = 0; i != sizeof(size_expect) / sizeof(size_expect[0]); ++i) {
        char series[160];
        snprintf(series, sizeof(series), "http_request_size_bytes_bucket{method=\"GET\",route=\"/users/{id}\",le=\"%s\"}",
                 size_expect[i].le);
        ck_assert_msg(value_of(text, series) == size_expect[i].count, "%s", series);
        snprintf(series, sizeof(series), "http_response_size_bytes_bucket{method=\"GET\",route=\"/users/{id}\",le=\"%s\"}",
                 size_expect[i].le);
        ck_assert_msg(value_of(text, series) == size_expect[i].count, "%s", series);
    }
    ck_assert_double_eq(value_of(text, "http_request_size_bytes_sum{method=\"GET\",route=\"/users/{id}\"}"), size_sum);
    ck_assert_double_eq(value_of(text, "http_response_size_bytes_count{method=\"GET\",route=\"/users/{id}\"}"), 5);
    free(text);
    hy_metrics_free(m);
}
END_TEST

START_TEST(test_histogram_custom_buckets)
{
    static const double buckets[] = {0.001, 0.0025, 1.5, 1234567};
    hy_metrics_t *m = hy_metrics_create(1, NULL, 0, buckets, 4);
    hy_metrics_shard_t *s = hy_metrics_shard(m, 0);
    hy_metrics_request_start(s);
    hy_metrics_request_done(s, HY_METRICS_GET, 0, 404, 0.001, 0, 0); /* on a bound: counts in that bucket */
    hy_metrics_request_start(s);
    hy_metrics_request_done(s, HY_METRICS_GET, 0, 404, -1, 0, 0); /* negative: 0 */
    hy_metrics_request_start(s);
    hy_metrics_request_done(s, HY_METRICS_GET, 0, 404, NAN, 0, 0); /* NaN: 0 */
    char *text = render(m);
    assert_valid(text);
    ck_assert_double_eq(value_of(text, "http_request_duration_seconds_bucket{method=\"GET\",route=\"none\",le=\"0.001\"}"), 3);
    ck_assert_double_eq(value_of(text, "http_request_duration_seconds_bucket{method=\"GET\",route=\"none\",le=\"0.0025\"}"), 3);
    ck_assert_double_eq(value_of(text, "http_request_duration_seconds_bucket{method=\"GET\",route=\"none\",le=\"1.5\"}"), 3);
    ck_assert_double_eq(value_of(text, "http_request_duration_seconds_bucket{method=\"GET\",route=\"none\",le=\"1.234567e+06\"}"),
                        3);
    ck_assert_double_eq(value_of(text, "http_request_duration_seconds_sum{method=\"GET\",route=\"none\"}"), 0.001);
    /* a size of 0 lands in the first size bucket */
    ck_assert_double_eq(value_of(text, "http_request_size_bytes_bucket{method=\"GET\",route=\"none\",le=\"100\"}"), 3);
    free(text);
    hy_metrics_free(m);
}
END_TEST

/* ---- values, via a collector ------------------------------------------------------------------------------------------ */

static void on_collect_values(void *data, hy_metrics_writer_t *w)
{
    (void)data;
    static const double values[] = {0.1, 0.1 + 0.2, 100000, 1234567, 1e21, 0.0001, 0.00001, -2.5, 3, 0};
    for (size_t i = 0; i != sizeof(values) / sizeof(values[0]); ++i) {
        char labels[32];
        snprintf(labels, sizeof(labels), "i=\"%zu\"", i);
        hy_metrics_write_gauge(w, "hy_test_value", "Values.", labels, values[i]);
    }
    hy_metrics_write_gauge(w, "hy_test_value", "Values.", "i=\"nan\"", NAN);
    hy_metrics_write_gauge(w, "hy_test_value", "Values.", "i=\"inf\"", INFINITY);
    hy_metrics_write_gauge(w, "hy_test_value", "Values.", "i=\"-inf\"", -INFINITY);
}

START_TEST(test_number_formats)
{
    hy_metrics_t *m = hy_metrics_create(1, NULL, 0, NULL, 0);
    hy_metrics_add_collector(m, on_collect_values, NULL);
    char *text = render(m);
    assert_valid(text);
    static const char *const expect[] = {
        "0.1", "0.30000000000000004", "100000", "1.234567e+06", "1e+21", "0.0001", "1e-05", "-2.5", "3", "0"};
    char buf[64];
    for (size_t i = 0; i != sizeof(expect) / sizeof(expect[0]); ++i) {
        char series[64];
        snprintf(series, sizeof(series), "hy_test_value{i=\"%zu\"}", i);
        ck_assert_str_eq(value_text(text, series, buf, sizeof(buf)), expect[i]);
    }
    ck_assert_str_eq(value_text(text, "hy_test_value{i=\"nan\"}", buf, sizeof(buf)), "NaN");
    ck_assert_str_eq(value_text(text, "hy_test_value{i=\"inf\"}", buf, sizeof(buf)), "+Inf");
    ck_assert_str_eq(value_text(text, "hy_test_value{i=\"-inf\"}", buf, sizeof(buf)), "-Inf");
    ck_assert_uint_eq(count_lines(text, "# HELP hy_test_value "), 1);
    free(text);
    hy_metrics_free(m);
}
END_TEST

/* ---- shards and threads ----------------------------------------------------------------------------------------------- */

START_TEST(test_shards_summed)
{
    hy_metrics_t *m = hy_metrics_create(3, routes3, 3, NULL, 0);
    ck_assert_ptr_null(hy_metrics_shard(m, 3));
    for (size_t t = 0; t != 3; ++t) {
        hy_metrics_shard_t *s = hy_metrics_shard(m, t);
        ck_assert_ptr_nonnull(s);
        for (size_t i = 0; i != t + 1; ++i) {
            hy_metrics_request_start(s);
            hy_metrics_request_done(s, HY_METRICS_GET, 0, 200, 0.5, 1, 2);
        }
        hy_metrics_request_start(s); /* one still in flight on each thread */
        hy_metrics_conn_open(s, HY_PROTO_HTTP1);
        hy_metrics_conn_open(s, HY_PROTO_HTTP2);
        hy_metrics_conn_open(s, HY_PROTO_HTTP1);
        hy_metrics_conn_close(s, HY_PROTO_HTTP1);
    }
    hy_metrics_conn_upgrade(hy_metrics_shard(m, 2));
    hy_metrics_request_start(hy_metrics_shard(m, 1));
    hy_metrics_request_done(hy_metrics_shard(m, 1), HY_METRICS_DELETE, 0, 204, 0.25, 0, 0);

    char *text = render(m);
    assert_valid(text);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"GET\",route=\"/users/{id}\",status=\"200\"}"), 6);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"DELETE\",route=\"/users/{id}\",status=\"204\"}"), 1);
    ck_assert_double_eq(value_of(text, "http_request_duration_seconds_count{method=\"GET\",route=\"/users/{id}\"}"), 6);
    ck_assert_double_eq(value_of(text, "http_request_duration_seconds_sum{method=\"GET\",route=\"/users/{id}\"}"), 3);
    ck_assert_double_eq(value_of(text, "http_request_size_bytes_sum{method=\"GET\",route=\"/users/{id}\"}"), 6);
    ck_assert_double_eq(value_of(text, "http_response_size_bytes_sum{method=\"GET\",route=\"/users/{id}\"}"), 12);
    ck_assert_double_eq(value_of(text, "http_requests_in_flight"), 3);
    ck_assert_double_eq(value_of(text, "hydrant_connections{protocol=\"http1\"}"), 2);
    ck_assert_double_eq(value_of(text, "hydrant_connections{protocol=\"http2\"}"), 4);
    ck_assert_double_eq(value_of(text, "hydrant_connections_total"), 9);
    ck_assert_double_eq(value_of(text, "hydrant_connection_upgrades_total"), 1);
    /* the GET series comes before the DELETE series of the same route (method order), one line per key */
    assert_before(text, "http_requests_total{method=\"GET\"", "http_requests_total{method=\"DELETE\"");
    free(text);
    hy_metrics_free(m);
}
END_TEST

#define THREAD_ITERATIONS 100000

typedef struct st_worker_t {
    hy_metrics_t *m;  /* registry */
    size_t index;     /* shard */
    size_t counter;   /* extra counter family */
    size_t histogram; /* extra histogram family */
} worker_t;

static void *worker_main(void *p)
{
    worker_t *w = p;
    hy_metrics_shard_t *s = hy_metrics_shard(w->m, w->index);
    for (unsigned i = 0; i != THREAD_ITERATIONS; ++i) {
        hy_metrics_conn_open(s, (int)(i % 2));
        hy_metrics_request_start(s);
        hy_metrics_request_done(s, i % 3 == 0 ? HY_METRICS_POST : HY_METRICS_GET, i % 4, i % 2 == 0 ? 200 : 404,
                                (double)(i % 100) / 1000, i % 5000, i % 7000);
        hy_metrics_counter_add(s, w->counter, i % 2, 1);
        hy_metrics_histogram_observe(s, w->histogram, 0, 0.5);
        hy_metrics_conn_close(s, (int)(i % 2));
    }
    return NULL;
}

typedef struct st_scraper_t {
    hy_metrics_t *m;  /* registry */
    _Atomic int stop; /* set when the workers are done */
    size_t renders;   /* renders done */
    char error[256];  /* the first format error seen, or "" */
} scraper_t;

static void *scraper_main(void *p)
{
    scraper_t *sc = p;
    double last_total = 0;
    do {
        char *text = hy_metrics_render(sc->m, NULL);
        char err[200];
        const char *e = exposition_error(text, err, sizeof(err));
        if (e != NULL && sc->error[0] == '\0')
            snprintf(sc->error, sizeof(sc->error), "%s", e);
        /* counters only grow */
        const char *at = strstr(text, "\nhydrant_connections_total ");
        double total = at != NULL ? strtod(at + 27, NULL) : -1;
        if (total < last_total && sc->error[0] == '\0')
            snprintf(sc->error, sizeof(sc->error), "hydrant_connections_total went down");
        last_total = total;
        free(text);
        ++sc->renders;
    } while (!atomic_load(&sc->stop));
    return NULL;
}

START_TEST(test_threads_concurrent)
{
    static const char *const routes[] = {"/a", "/b", "/c"};
    static const char *const outcomes[] = {"ok", "error"};
    hy_metrics_t *m = hy_metrics_create(3, routes, 3, NULL, 0);
    size_t counter, histogram;
    ck_assert_int_eq(hy_metrics_add_counter(m, "hy_test_outcomes_total", "Outcomes.", "outcome", outcomes, 2, &counter), 0);
    ck_assert_int_eq(hy_metrics_add_histogram(m, "hy_test_wait_seconds", "Waits.", NULL, NULL, 0, NULL, 0, &histogram), 0);

    worker_t workers[2] = {{m, 0, counter, histogram}, {m, 1, counter, histogram}};
    scraper_t sc = {.m = m};
    pthread_t tw[2], ts;
    ck_assert_int_eq(pthread_create(&ts, NULL, scraper_main, &sc), 0);
    for (size_t i = 0; i != 2; ++i)
        ck_assert_int_eq(pthread_create(&tw[i], NULL, worker_main, &workers[i]), 0);
    for (size_t i = 0; i != 2; ++i)
        pthread_join(tw[i], NULL);
    atomic_store(&sc.stop, 1);
    pthread_join(ts, NULL);
    ck_assert_msg(sc.error[0] == '\0', "scrape during updates: %s", sc.error);
    ck_assert_uint_gt(sc.renders, 0);

    /* exact totals: recount what the workers did */
    double expect[HY_METRICS_NMETHODS][4][2] = {{{0}}}, expect_sum[HY_METRICS_NMETHODS][4] = {{0}};
    for (unsigned i = 0; i != THREAD_ITERATIONS; ++i) {
        unsigned meth = i % 3 == 0 ? HY_METRICS_POST : HY_METRICS_GET;
        expect[meth][i % 4][i % 2] += 2;
        expect_sum[meth][i % 4] += (double)(i % 5000);
    }
    char *text = render(m);
    assert_valid(text);
    static const char *const labels[] = {"/a", "/b", "/c", "none"};
    double total = 0;
    for (unsigned meth = 0; meth != HY_METRICS_NMETHODS; ++meth) {
        for (size_t r = 0; r != 4; ++r) {
            for (size_t st = 0; st != 2; ++st) {
                if (expect[meth][r][st] == 0)
                    continue;
                char series[160];
                snprintf(series, sizeof(series), "http_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"}",
                         meth == HY_METRICS_POST ? "POST" : "GET", labels[r], st == 0 ? "200" : "404");
                ck_assert_msg(value_of(text, series) == expect[meth][r][st], "%s", series);
                total += expect[meth][r][st];
            }
            if (expect_sum[meth][r] == 0)
                continue;
            char series[160];
            snprintf(series, sizeof(series), "http_request_size_bytes_sum{method=\"%s\",route=\"%s\"}",
                     meth == HY_METRICS_POST ? "POST" : "GET", labels[r]);
            ck_assert_msg(value_of(text, series) == 2 * expect_sum[meth][r], "%s", series);
        }
    }
    ck_assert_double_eq(total, 2 * THREAD_ITERATIONS);
    ck_assert_double_eq(value_of(text, "http_requests_in_flight"), 0);
    ck_assert_double_eq(value_of(text, "hydrant_connections{protocol=\"http1\"}"), 0);
    ck_assert_double_eq(value_of(text, "hydrant_connections{protocol=\"http2\"}"), 0);
    ck_assert_double_eq(value_of(text, "hydrant_connections_total"), 2 * THREAD_ITERATIONS);
    ck_assert_double_eq(value_of(text, "hy_test_outcomes_total{outcome=\"ok\"}"), THREAD_ITERATIONS);
    ck_assert_double_eq(value_of(text, "hy_test_outcomes_total{outcome=\"error\"}"), THREAD_ITERATIONS);
    ck_assert_double_eq(value_of(text, "hy_test_wait_seconds_count"), 2 * THREAD_ITERATIONS);
    ck_assert_double_eq(value_of(text, "hy_test_wait_seconds_sum"), THREAD_ITERATIONS);
    free(text);
    hy_metrics_free(m);
}
END_TEST

/* ---- routes, methods and limits --------------------------------------------------------------------------------------- */

START_TEST(test_route_none_and_method_other)
{
    hy_metrics_t *m = hy_metrics_create(1, routes3, 3, NULL, 0);
    hy_metrics_shard_t *s = hy_metrics_shard(m, 0);
    hy_metrics_request_start(s);
    hy_metrics_request_done(s, HY_METRICS_GET, 3, 404, 0.001, 0, 9); /* nroutes: unmatched */
    hy_metrics_request_start(s);
    hy_metrics_request_done(s, HY_METRICS_GET, 99, 404, 0.001, 0, 9); /* beyond: also none */
    hy_metrics_request_start(s);
    hy_metrics_request_done(s, hy_metrics_method("PROPFIND", 8), 0, 405, 0.001, 0, 0);
    hy_metrics_request_start(s);
    hy_metrics_request_done(s, 42, 0, 405, 0.001, 0, 0); /* an index out of range is OTHER */
    char *text = render(m);
    assert_valid(text);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"GET\",route=\"none\",status=\"404\"}"), 2);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"OTHER\",route=\"/users/{id}\",status=\"405\"}"), 2);
    ck_assert_double_eq(value_of(text, "http_response_size_bytes_sum{method=\"GET\",route=\"none\"}"), 18);
    free(text);

    ck_assert_uint_eq(hy_metrics_method("GET", 3), HY_METRICS_GET);
    ck_assert_uint_eq(hy_metrics_method("HEAD", 4), HY_METRICS_HEAD);
    ck_assert_uint_eq(hy_metrics_method("POST", 4), HY_METRICS_POST);
    ck_assert_uint_eq(hy_metrics_method("PUT", 3), HY_METRICS_PUT);
    ck_assert_uint_eq(hy_metrics_method("DELETE", 6), HY_METRICS_DELETE);
    ck_assert_uint_eq(hy_metrics_method("PATCH", 5), HY_METRICS_PATCH);
    ck_assert_uint_eq(hy_metrics_method("OPTIONS", 7), HY_METRICS_OPTIONS);
    ck_assert_uint_eq(hy_metrics_method("get", 3), HY_METRICS_OTHER);
    ck_assert_uint_eq(hy_metrics_method("GETX", 4), HY_METRICS_OTHER);
    ck_assert_uint_eq(hy_metrics_method("GETX", 3), HY_METRICS_GET);
    ck_assert_uint_eq(hy_metrics_method("OTHER", 5), HY_METRICS_OTHER);
    ck_assert_uint_eq(hy_metrics_method("", 0), HY_METRICS_OTHER);
    hy_metrics_free(m);
}
END_TEST

START_TEST(test_table_full_counts_other)
{
    /* no routes: the table holds 1 route * 8 methods * 16 statuses = 128 keys per shard */
    hy_metrics_t *m = hy_metrics_create(2, NULL, 0, NULL, 0);
    hy_metrics_shard_t *s0 = hy_metrics_shard(m, 0), *s1 = hy_metrics_shard(m, 1);
    for (int status = 100; status != 228; ++status) {
        hy_metrics_request_start(s0);
        hy_metrics_request_done(s0, HY_METRICS_GET, 0, status, 0.001, 0, 0);
    }
    for (int status = 228; status != 231; ++status) { /* full: these count as "other" */
        hy_metrics_request_start(s0);
        hy_metrics_request_done(s0, HY_METRICS_GET, 0, status, 0.001, 0, 0);
    }
    hy_metrics_request_start(s0);
    hy_metrics_request_done(s0, HY_METRICS_GET, 0, 100, 0.001, 0, 0); /* a key already there still counts */
    hy_metrics_request_start(s0);
    hy_metrics_request_done(s0, HY_METRICS_POST, 0, 200, 0.001, 0, 0); /* full for every key */
    hy_metrics_request_start(s1);
    hy_metrics_request_done(s1, HY_METRICS_GET, 0, 228, 0.001, 0, 0); /* the other shard has room */

    char *text = render(m);
    assert_valid(text);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"GET\",route=\"none\",status=\"100\"}"), 2);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"GET\",route=\"none\",status=\"227\"}"), 1);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"GET\",route=\"none\",status=\"228\"}"), 1);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"GET\",route=\"none\",status=\"other\"}"), 3);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"POST\",route=\"none\",status=\"other\"}"), 1);
    ck_assert_uint_eq(count_lines(text, "http_requests_total{"), 128 + 1 + 2);
    ck_assert_uint_eq(count_lines(text, "http_requests_total{method=\"GET\",route=\"none\",status=\"229\"}"), 0);
    /* "other" sorts after the codes of its series */
    assert_before(text, "status=\"227\"", "method=\"GET\",route=\"none\",status=\"other\"");
    ck_assert_double_eq(value_of(text, "http_request_duration_seconds_count{method=\"GET\",route=\"none\"}"), 133);
    free(text);
    hy_metrics_free(m);
}
END_TEST

START_TEST(test_status_out_of_range)
{
    hy_metrics_t *m = hy_metrics_create(1, NULL, 0, NULL, 0);
    hy_metrics_shard_t *s = hy_metrics_shard(m, 0);
    static const int statuses[] = {0, 999, 1000, -1, 100000};
    for (size_t i = 0; i != 5; ++i) {
        hy_metrics_request_start(s);
        hy_metrics_request_done(s, HY_METRICS_GET, 0, statuses[i], 0.001, 0, 0);
    }
    char *text = render(m);
    assert_valid(text);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"GET\",route=\"none\",status=\"0\"}"), 1);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"GET\",route=\"none\",status=\"999\"}"), 1);
    ck_assert_double_eq(value_of(text, "http_requests_total{method=\"GET\",route=\"none\",status=\"other\"}"), 3);
    free(text);
    hy_metrics_free(m);
}
END_TEST

START_TEST(test_create_errors)
{
    static const double equal[] = {1, 1}, decreasing[] = {2, 1}, nan[] = {1, NAN}, inf[] = {1, INFINITY};
    static const char *const with_null[] = {"/a", NULL};
    ck_assert_ptr_null(hy_metrics_create(0, NULL, 0, NULL, 0));
    ck_assert_ptr_null(hy_metrics_create(1, NULL, 0, equal, 2));
    ck_assert_ptr_null(hy_metrics_create(1, NULL, 0, decreasing, 2));
    ck_assert_ptr_null(hy_metrics_create(1, NULL, 0, nan, 2));
    ck_assert_ptr_null(hy_metrics_create(1, NULL, 0, inf, 2));
    ck_assert_ptr_null(hy_metrics_create(1, NULL, 2, NULL, 0));
    ck_assert_ptr_null(hy_metrics_create(1, with_null, 2, NULL, 0));
    hy_metrics_free(NULL);

    /* no duration buckets at all: only +Inf */
    hy_metrics_t *m = hy_metrics_create(1, NULL, 0, equal, 0);
    ck_assert_ptr_nonnull(m);
    hy_metrics_request_start(hy_metrics_shard(m, 0));
    hy_metrics_request_done(hy_metrics_shard(m, 0), HY_METRICS_GET, 0, 200, 1, 1, 1);
    char *text = render(m);
    assert_valid(text);
    ck_assert_uint_eq(count_lines(text, "http_request_duration_seconds_bucket{"), 1);
    ck_assert_double_eq(value_of(text, "http_request_duration_seconds_bucket{method=\"GET\",route=\"none\",le=\"+Inf\"}"), 1);
    free(text);
    hy_metrics_free(m);
}
END_TEST

/* ---- extra families and collectors ------------------------------------------------------------------------------------ */

START_TEST(test_extra_families)
{
    static const char *const stmts[] = {"users.get", "users.list", "we\"ird"};
    static const char *const outcomes[] = {"ok", "error", "timeout"};
    static const double buckets[] = {0.001, 0.01, 0.1};
    hy_metrics_t *m = hy_metrics_create(2, NULL, 0, NULL, 0);
    size_t queries, outcome, latency, wait;
    ck_assert_int_eq(hy_metrics_add_counter(m, "hydrant_db_queries_total", "Queries run.", "statement", stmts, 3, &queries), 0);
    ck_assert_int_eq(hy_metrics_add_counter(m, "hydrant_db_outcomes_total", "Outcomes.", "outcome", outcomes, 3, &outcome), 0);
    ck_assert_int_eq(
        hy_metrics_add_histogram(m, "hydrant_db_query_seconds", "Query time.", "statement", stmts, 3, buckets, 3, &latency), 0);
    ck_assert_int_eq(hy_metrics_add_histogram(m, "hydrant_db_wait_seconds", "Wait.", NULL, NULL, 0, NULL, 0, &wait), 0);
    ck_assert_uint_ne(queries, outcome);

    hy_metrics_shard_t *s0 = hy_metrics_shard(m, 0), *s1 = hy_metrics_shard(m, 1);
    hy_metrics_counter_add(s0, queries, 0, 5);
    hy_metrics_counter_add(s1, queries, 0, 2);
    hy_metrics_counter_add(s1, queries, 2, 1);
    hy_metrics_counter_add(s0, outcome, 1, 7);
    hy_metrics_histogram_observe(s0, latency, 1, 0.005);
    hy_metrics_histogram_observe(s1, latency, 1, 0.05);
    hy_metrics_histogram_observe(s1, latency, 1, 0.01); /* on a bound */
    hy_metrics_histogram_observe(s0, wait, 0, 0.2);
    hy_metrics_histogram_observe(s0, wait, 0, NAN); /* ignored */
    /* out of range or of the wrong kind: ignored */
    hy_metrics_counter_add(s0, queries, 3, 100);
    hy_metrics_counter_add(s0, latency, 0, 100);
    hy_metrics_counter_add(s0, 99, 0, 100);
    hy_metrics_histogram_observe(s0, queries, 0, 1);
    hy_metrics_histogram_observe(s0, latency, 3, 1);
    hy_metrics_histogram_observe(s0, 99, 0, 1);

    char *text = render(m);
    assert_valid(text);
    ck_assert_uint_eq(count_lines(text, "# TYPE hydrant_db_queries_total counter\n"), 1);
    ck_assert_uint_eq(count_lines(text, "# TYPE hydrant_db_query_seconds histogram\n"), 1);
    ck_assert_double_eq(value_of(text, "hydrant_db_queries_total{statement=\"users.get\"}"), 7);
    ck_assert_double_eq(value_of(text, "hydrant_db_queries_total{statement=\"users.list\"}"), 0); /* zeros render */
    ck_assert_double_eq(value_of(text, "hydrant_db_queries_total{statement=\"we\\\"ird\"}"), 1);
    ck_assert_double_eq(value_of(text, "hydrant_db_outcomes_total{outcome=\"error\"}"), 7);
    ck_assert_double_eq(value_of(text, "hydrant_db_outcomes_total{outcome=\"ok\"}"), 0);
    ck_assert_double_eq(value_of(text, "hydrant_db_query_seconds_bucket{statement=\"users.list\",le=\"0.001\"}"), 0);
    ck_assert_double_eq(value_of(text, "hydrant_db_query_seconds_bucket{statement=\"users.list\",le=\"0.01\"}"), 2);
    ck_assert_double_eq(value_of(text, "hydrant_db_query_seconds_bucket{statement=\"users.list\",le=\"0.1\"}"), 3);
    ck_assert_double_eq(value_of(text, "hydrant_db_query_seconds_bucket{statement=\"users.list\",le=\"+Inf\"}"), 3);
    ck_assert_double_eq(value_of(text, "hydrant_db_query_seconds_count{statement=\"users.list\"}"), 3);
    ck_assert_double_eq(value_of(text, "hydrant_db_query_seconds_count{statement=\"users.get\"}"), 0);
    ck_assert_double_eq(value_of(text, "hydrant_db_query_seconds_sum{statement=\"users.list\"}"), 0.005 + 0.05 + 0.01);
    ck_assert_uint_eq(count_lines(text, "hydrant_db_query_seconds_bucket{"), 3 * 4);
    ck_assert_double_eq(value_of(text, "hydrant_db_wait_seconds_bucket{le=\"0.25\"}"), 1);
    ck_assert_double_eq(value_of(text, "hydrant_db_wait_seconds_bucket{le=\"+Inf\"}"), 1);
    ck_assert_double_eq(value_of(text, "hydrant_db_wait_seconds_count"), 1);
    ck_assert_double_eq(value_of(text, "hydrant_db_wait_seconds_sum"), 0.2);
    /* in the order added, after the built-in families */
    assert_before(text, "# HELP hydrant_connections_total", "# HELP hydrant_db_queries_total");
    assert_before(text, "# HELP hydrant_db_queries_total", "# HELP hydrant_db_outcomes_total");
    assert_before(text, "# HELP hydrant_db_query_seconds", "# HELP hydrant_db_wait_seconds");
    free(text);
    hy_metrics_free(m);
}
END_TEST

START_TEST(test_extra_family_errors)
{
    static const char *const values[] = {"a", "b"}, *const dup[] = {"a", "a"}, *const with_null[] = {"a", NULL};
    hy_metrics_t *m = hy_metrics_create(1, NULL, 0, NULL, 0);
    size_t f;
    ck_assert_int_eq(hy_metrics_add_counter(m, "", "h", NULL, NULL, 0, &f), -1);
    ck_assert_int_eq(hy_metrics_add_counter(m, NULL, "h", NULL, NULL, 0, &f), -1);
    ck_assert_int_eq(hy_metrics_add_counter(m, "1abc", "h", NULL, NULL, 0, &f), -1);
    ck_assert_int_eq(hy_metrics_add_counter(m, "a-b", "h", NULL, NULL, 0, &f), -1);
    ck_assert_int_eq(hy_metrics_add_counter(m, "ok_total", NULL, NULL, NULL, 0, &f), -1);
    ck_assert_int_eq(hy_metrics_add_counter(m, "http_requests_total", "h", NULL, NULL, 0, &f), -1); /* built in */
    ck_assert_int_eq(hy_metrics_add_counter(m, "ok_total", "h", "__x", values, 2, &f), -1);
    ck_assert_int_eq(hy_metrics_add_counter(m, "ok_total", "h", "a:b", values, 2, &f), -1);
    ck_assert_int_eq(hy_metrics_add_counter(m, "ok_total", "h", "x", dup, 2, &f), -1);
    ck_assert_int_eq(hy_metrics_add_counter(m, "ok_total", "h", "x", with_null, 2, &f), -1);
    ck_assert_int_eq(hy_metrics_add_counter(m, "ok_total", "h", "x", NULL, 2, &f), -1);
    ck_assert_int_eq(hy_metrics_add_counter(m, "ok_total", "h", "x", values, 0, &f), -1);
    ck_assert_int_eq(hy_metrics_add_histogram(m, "ok_seconds", "h", "le", values, 2, NULL, 0, &f), -1);
    static const double bad[] = {1, 0.5};
    ck_assert_int_eq(hy_metrics_add_histogram(m, "ok_seconds", "h", "x", values, 2, bad, 2, &f), -1);

    ck_assert_int_eq(hy_metrics_add_counter(m, "ns:ok_total", "h", "x", values, 2, &f), 0);
    ck_assert_uint_eq(f, 0);
    ck_assert_int_eq(hy_metrics_add_counter(m, "ns:ok_total", "h", NULL, NULL, 0, &f), -1); /* taken */
    ck_assert_int_eq(hy_metrics_add_histogram(m, "ns:ok_total", "h", NULL, NULL, 0, NULL, 0, &f), -1);
    ck_assert_int_eq(hy_metrics_add_histogram(m, "ok_seconds", "h", "x", values, 2, NULL, 0, &f), 0);
    ck_assert_uint_eq(f, 1);
    char *text = render(m);
    assert_valid(text);
    ck_assert_uint_eq(count_lines(text, "ok_seconds_bucket{x=\"a\","), 12);
    free(text);
    hy_metrics_free(m);
}
END_TEST

static void on_collect_pool(void *data, hy_metrics_writer_t *w)
{
    int *calls = data;
    ++*calls;
    hy_metrics_write_gauge(w, "hydrant_db_connections", "Connections, by state.", "state=\"idle\"", 3);
    hy_metrics_write_gauge(w, "hydrant_db_connections", "ignored: the first HELP wins", "state=\"busy\"", 2);
    hy_metrics_write_counter(w, "hydrant_db_errors_total", "Errors.", NULL, 12);
    hy_metrics_write_counter(w, "hydrant_db_errors_total", "Errors.", "", 13);          /* same family, no label */
    hy_metrics_write_gauge(w, "hydrant_db_connections", "Again.", "state=\"late\"", 1); /* closed already: dropped */
    hy_metrics_write_gauge(w, "http_requests_in_flight", "Clash.", NULL, 5);            /* a built-in name: dropped */
}

static void on_collect_second(void *data, hy_metrics_writer_t *w)
{
    (void)data;
    char labels[64] = "path=\"";
    hy_metrics_escape_label_value("/tmp/a\"b", labels + strlen(labels), sizeof(labels) - strlen(labels) - 1);
    strcat(labels, "\"");
    hy_metrics_write_gauge(w, "hy_test_second", "Second collector.\nTwo lines.", labels, 1.5);
}

START_TEST(test_collectors)
{
    hy_metrics_t *m = hy_metrics_create(1, NULL, 0, NULL, 0);
    int calls = 0;
    hy_metrics_add_collector(m, on_collect_pool, &calls);
    hy_metrics_add_collector(m, on_collect_second, NULL);
    char *text = render(m);
    assert_valid(text);
    ck_assert_int_eq(calls, 1);
    ck_assert_uint_eq(count_lines(text, "# HELP hydrant_db_connections Connections, by state.\n"), 1);
    ck_assert_uint_eq(count_lines(text, "# TYPE hydrant_db_connections gauge\n"), 1);
    ck_assert_uint_eq(count_lines(text, "# TYPE hydrant_db_errors_total counter\n"), 1);
    ck_assert_double_eq(value_of(text, "hydrant_db_connections{state=\"idle\"}"), 3);
    ck_assert_double_eq(value_of(text, "hydrant_db_connections{state=\"busy\"}"), 2);
    ck_assert_uint_eq(count_lines(text, "hydrant_db_connections{state=\"late\"}"), 0);
    ck_assert_uint_eq(count_lines(text, "hydrant_db_errors_total "), 2);
    ck_assert_double_eq(value_of(text, "http_requests_in_flight"), 0);
    ck_assert_double_eq(value_of(text, "hy_test_second{path=\"/tmp/a\\\"b\"}"), 1.5);
    ck_assert_uint_eq(count_lines(text, "# HELP hy_test_second Second collector.\\nTwo lines.\n"), 1);
    assert_before(text, "hydrant_db_errors_total", "hy_test_second");
    free(text);
    text = render(m); /* each render starts afresh */
    assert_valid(text);
    ck_assert_int_eq(calls, 2);
    ck_assert_uint_eq(count_lines(text, "# HELP hydrant_db_connections "), 1);
    free(text);
    hy_metrics_free(m);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------------------------------------ */

Suite *make_metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc;

    tc = tcase_create("exposition format");
    tcase_add_test(tc, test_empty_registry);
    tcase_add_test(tc, test_help_and_type_once_per_family);
    tcase_add_test(tc, test_label_escaping);
    tcase_add_test(tc, test_help_escaping);
    tcase_add_test(tc, test_histogram_buckets);
    tcase_add_test(tc, test_histogram_custom_buckets);
    tcase_add_test(tc, test_number_formats);
    suite_add_tcase(s, tc);

    tc = tcase_create("shards");
    tcase_add_test(tc, test_shards_summed);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_threads_concurrent);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, test_route_none_and_method_other);
    tcase_add_test(tc, test_table_full_counts_other);
    tcase_add_test(tc, test_status_out_of_range);
    tcase_add_test(tc, test_create_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("extra families");
    tcase_add_test(tc, test_extra_families);
    tcase_add_test(tc, test_extra_family_errors);
    tcase_add_test(tc, test_collectors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(make_metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
