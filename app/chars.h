/* chars.h: byte classes of the HTTP grammar (RFC 9110 5.6.2 tchar, hex digits), shared by the parsers in app/. */
#ifndef HY_CHARS_H
#define HY_CHARS_H

#include <string.h>

/* Returns the value of a hex digit of either case, or -1. */
static inline int hy_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Returns 1 when `c` is an HTTP token character (tchar), 0 otherwise. */
static inline int hy_is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

#endif
