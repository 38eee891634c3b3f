/* units.c: parsing and formatting of the durations ("1m30s") and sizes ("64KiB") written in the configuration. */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "config.h"

/* ---- durations ------------------------------------------------------------------------------------------------------- */

/* Duration syntax: "0", or one or more <digits><unit> terms with units in strictly decreasing order, each at most once:
 *     1h  2m  5s  250ms  1m30s  1h2m3s4ms
 * No sign, no fraction ("1.5s" is written "1500ms"), no spaces, units lower-case. */

typedef struct st_duration_unit_t {
    const char *name; /* as written */
    uint64_t ms;      /* milliseconds in one unit */
} duration_unit_t;

/* Largest first; "ms" precedes "m" so that the longer name is tried first. */
static const duration_unit_t duration_units[] = {{"h", 3600000}, {"ms", 1}, {"m", 60000}, {"s", 1000}};

/* Rank of a unit for the "decreasing order" rule: h=3, m=2, s=1, ms=0. */
static int duration_rank(uint64_t unit_ms)
{
    return unit_ms == 3600000 ? 3 : unit_ms == 60000 ? 2 : unit_ms == 1000 ? 1 : 0;
}

int hy_parse_duration(const char *s, uint64_t *ms)
{
    uint64_t total = 0;
    int last_rank = 4;

    if (s == NULL || *s == '\0')
        return -1;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    while (*s != '\0') {
        uint64_t v = 0;
        if (*s < '0' || *s > '9')
            return -1;
        for (; *s >= '0' && *s <= '9'; ++s) {
            if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
                return -1;
            v = v * 10 + (uint64_t)(*s - '0');
        }
        const duration_unit_t *unit = NULL;
        for (size_t i = 0; i != sizeof(duration_units) / sizeof(duration_units[0]); ++i) {
            size_t n = strlen(duration_units[i].name);
            if (strncmp(s, duration_units[i].name, n) == 0) {
                unit = &duration_units[i];
                s += n;
                break;
            }
        }
        if (unit == NULL)
            return -1;
        int rank = duration_rank(unit->ms);
        if (rank >= last_rank)
            return -1;
        last_rank = rank;
        if (v > UINT64_MAX / unit->ms || total > UINT64_MAX - v * unit->ms)
            return -1;
        total += v * unit->ms;
    }
    *ms = total;
    return 0;
}

char *hy_format_duration(uint64_t ms, char *buf, size_t bufsize)
{
    if (ms == 0)
        snprintf(buf, bufsize, "0");
    else if (ms % 3600000 == 0)
        snprintf(buf, bufsize, "%juh", (uintmax_t)(ms / 3600000));
    else if (ms % 60000 == 0)
        snprintf(buf, bufsize, "%jum", (uintmax_t)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, bufsize, "%jus", (uintmax_t)(ms / 1000));
    else
        snprintf(buf, bufsize, "%jums", (uintmax_t)ms);
    return buf;
}

/* ---- sizes ----------------------------------------------------------------------------------------------------------- */

/* Size syntax: <digits> followed by nothing or "B" (bytes), KiB MiB GiB TiB (powers of 1024) or KB MB GB TB (powers of
 * 1000). Case-sensitive, no fraction, no spaces. */

typedef struct st_size_unit_t {
    const char *name; /* as written */
    uint64_t bytes;   /* bytes in one unit */
} size_unit_t;

static const size_unit_t size_units[] = {
    {"", 1},
    {"B", 1},
    {"KiB", UINT64_C(1) << 10},
    {"MiB", UINT64_C(1) << 20},
    {"GiB", UINT64_C(1) << 30},
    {"TiB", UINT64_C(1) << 40},
    {"KB", UINT64_C(1000)},
    {"MB", UINT64_C(1000000)},
    {"GB", UINT64_C(1000000000)},
    {"TB", UINT64_C(1000000000000)},
};

int hy_parse_size(const char *s, uint64_t *bytes)
{
    uint64_t v = 0;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; ++s) {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    for (size_t i = 0; i != sizeof(size_units) / sizeof(size_units[0]); ++i) {
        if (strcmp(s, size_units[i].name) == 0) {
            if (v > UINT64_MAX / size_units[i].bytes)
                return -1;
            *bytes = v * size_units[i].bytes;
            return 0;
        }
    }
    return -1;
}

/* Writes `bytes` with the largest unit of `units` (largest first, `n` of them) that divides it exactly. */
static void format_with(uint64_t bytes, const size_unit_t *units, size_t n, char *buf, size_t bufsize)
{
    for (size_t i = 0; i != n; ++i) {
        if (bytes % units[i].bytes == 0) {
            snprintf(buf, bufsize, "%ju%s", (uintmax_t)(bytes / units[i].bytes), units[i].name);
            return;
        }
    }
    snprintf(buf, bufsize, "%ju", (uintmax_t)bytes);
}

char *hy_format_size(uint64_t bytes, char *buf, size_t bufsize)
{
    static const size_unit_t binary[] = {
        {"TiB", UINT64_C(1) << 40}, {"GiB", UINT64_C(1) << 30}, {"MiB", UINT64_C(1) << 20}, {"KiB", UINT64_C(1) << 10}};
    static const size_unit_t decimal[] = {
        {"TB", UINT64_C(1000000000000)}, {"GB", UINT64_C(1000000000)}, {"MB", UINT64_C(1000000)}, {"KB", UINT64_C(1000)}};
    char b[32], d[32];

    if (bytes == 0) {
        snprintf(buf, bufsize, "0");
        return buf;
    }
    /* the shortest of the binary and the decimal spelling; a tie goes to binary (and plain bytes are both's fallback) */
    format_with(bytes, binary, sizeof(binary) / sizeof(binary[0]), b, sizeof(b));
    format_with(bytes, decimal, sizeof(decimal) / sizeof(decimal[0]), d, sizeof(d));
    snprintf(buf, bufsize, "%s", strlen(d) < strlen(b) ? d : b);
    return buf;
}
