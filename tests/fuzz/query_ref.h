/* query_ref.h: the reference model of hy_query_find for tests: the loop of hy_query_get (app/respond.c) as it was
 * before app/query.c existed, over a plain buffer, so that fuzz_query and check_query can assert that the new parser
 * reads every query exactly as the old one did. Test code only: one static function, included by one file each. */
#ifndef HY_QUERY_REF_H
#define HY_QUERY_REF_H

#include <stddef.h>
#include <string.h>

static int query_ref_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* hy_query_get's algorithm: `base` holds the `len` bytes after '?'; out holds len + 1 bytes. Returns 0 with the value
 * in out (NUL-terminated, *outlen bytes), or -1 when absent. The only change: the scan stops at the end instead of
 * forming a pointer one past it. */
static int query_ref_find(const char *base, size_t len, const char *name, char *out, size_t *outlen)
{
    const char *p = base, *end = base + len;
    size_t nlen = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq != NULL ? eq : pe;
        if ((size_t)(ke - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq != NULL ? eq + 1 : pe;
            size_t n = 0;
            for (const char *s = v; s < pe; ++s) {
                int hi, lo;
                if (*s == '%' && pe - s >= 3 && (hi = query_ref_hex(s[1])) >= 0 && (lo = query_ref_hex(s[2])) >= 0) {
                    out[n++] = (char)(hi << 4 | lo);
                    s += 2;
                } else {
                    out[n++] = *s == '+' ? ' ' : *s;
                }
            }
            out[n] = '\0';
            *outlen = n;
            return 0;
        }
        if (pe == end)
            break;
        p = pe + 1;
    }
    return -1;
}

#endif
