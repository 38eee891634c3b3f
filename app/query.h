/* query.h: a pure parser of raw query strings (the part of a request target after '?'): finds one parameter and
 * percent-decodes its value into a buffer the caller owns. */
#ifndef HY_QUERY_H
#define HY_QUERY_H

#include <stddef.h>

/* Finds the first parameter called `name` in the raw query string `query` (`len` bytes, without the leading '?', not
 * NUL-terminated; may be NULL when len is 0) and decodes its value into `out`.
 *
 * Syntax, exactly as hy_query_get has always read it:
 *     query = param *( "&" param )     param = key [ "=" value ]
 *   - Parameters are separated by '&' only (never ';'). The key runs to the first '=' or '&'; a parameter without '='
 *     ("?debug&a=1") has the empty value, as does "a=". The key may be empty: "=x" has the key "" and the value "x",
 *     and so does an empty parameter ("a=1&&b=2", a leading '&') with the empty value; only an empty `name` finds
 *     those. A trailing '&' ("a=1&") and the empty query add no parameter.
 *   - Keys are compared byte for byte, case-sensitively and WITHOUT decoding: "a%62=1" and "a+b=1" are the keys
 *     "a%62" and "a+b", never "ab" or "a b". A `name` containing '=' or '&' never matches.
 *   - Repeated keys: the first occurrence wins ("a=1&a=2" gives "1").
 *   - Values are percent-decoded: "%XX" with two hex digits of either case becomes that byte, '+' becomes a space.
 *     A malformed escape (a '%' not followed by two hex digits inside the value, e.g. "%G1", "%4", a final "%") is kept
 *     literally: the '%' is copied and the bytes after it are read as usual ("%%41" gives "%A", "%+" gives "% "); decoding
 *     never reads past the end of the parameter.
 *   - "%00" is decoded to a NUL byte and KEPT (not rejected): the value is binary-safe and *outlen is its true length,
 *     so "10%00x" gives the 4 bytes "10\0x" with *outlen 4, not the C string "10". A caller that needs a C string must
 *     refuse a value with memchr(out, '\0', *outlen) != NULL (or validate every byte, as users.c does for integers).
 *   - No other normalisation: bytes >= 0x80, control bytes and '#' are copied as they are.
 *
 * `out` is owned by the caller and must hold at least len + 1 bytes (a decoded value is never longer than the query).
 * Returns 0 with the value and a NUL written to out and its length (NUL excluded) in *outlen. Returns -1 when there is
 * no such parameter, and also when outsize < len + 1 (a caller error, checked before the query is read); then *outlen
 * is 0 and, when outsize >= 1, out[0] is '\0'. No allocation, no global state: safe on any thread. */
int hy_query_find(const char *query, size_t len, const char *name, char *out, size_t outsize, size_t *outlen);

#endif
