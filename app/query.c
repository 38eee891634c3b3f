/* query.c: finds one parameter of a raw query string and percent-decodes its value, without allocating. */
#include <string.h>
#include "chars.h"
#include "query.h"

/* ---- decoding --------------------------------------------------------------------------------------------------------- */

/* Decodes the `len` bytes at `v` ('+' is a space, "%XX" a byte, a malformed escape stays as it is) into out, which
 * holds at least len + 1 bytes, and NUL-terminates it. Returns the decoded length. */
static size_t decode_value(const char *v, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)v[i];
        int hi, lo;
        if (c == '%' && len - i >= 3 && (hi = hy_hex_value((unsigned char)v[i + 1])) >= 0 &&
            (lo = hy_hex_value((unsigned char)v[i + 2])) >= 0) {
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = c == '+' ? ' ' : (char)c;
        }
    }
    out[n] = '\0';
    return n;
}

/* ---- lookup ----------------------------------------------------------------------------------------------------------- */

/* The grammar (see query.h):
 *     query = param *( "&" param )     param = key [ "=" value ]
 * scanned by offsets so that no pointer is ever formed past the end of the query. */
int hy_query_find(const char *query, size_t len, const char *name, char *out, size_t outsize, size_t *outlen)
{
    size_t nlen = strlen(name), at = 0;

    *outlen = 0;
    if (outsize != 0)
        out[0] = '\0';
    if (outsize == 0 || outsize - 1 < len)
        return -1;
    while (at < len) {
        const char *p = query + at;
        size_t rest = len - at;
        const char *amp = memchr(p, '&', rest);
        size_t plen = amp != NULL ? (size_t)(amp - p) : rest; /* this parameter: key [ "=" value ] */
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq != NULL ? (size_t)(eq - p) : plen;
        if (klen == nlen && memcmp(p, name, nlen) == 0) {
            size_t voff = eq != NULL ? klen + 1 : plen;
            *outlen = decode_value(p + voff, plen - voff, out);
            return 0;
        }
        at += plen + 1;
    }
    return -1;
}
