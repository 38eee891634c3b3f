/* clientip.c: CIDR parsing and matching, IP literal parsing and canonical formatting, and the right-most untrusted walk
 * of X-Forwarded-For that finds a request's client address. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include "clientip.h"

/* ---- addresses --------------------------------------------------------------------------------------------------------- */

typedef struct st_ipaddr_t {
    int family;    /* AF_INET (also for IPv4-mapped IPv6) or AF_INET6 */
    uint8_t b[16]; /* network byte order; AF_INET uses b[0..3] */
} ipaddr_t;

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Stores 16 bytes of IPv6 into *a, as IPv4 when they are an IPv4-mapped address. */
static void set_v6(ipaddr_t *a, const uint8_t *b16)
{
    if (memcmp(b16, v4mapped_prefix, 12) == 0) {
        a->family = AF_INET;
        memcpy(a->b, b16 + 12, 4);
    } else {
        a->family = AF_INET6;
        memcpy(a->b, b16, 16);
    }
}

static int from_sockaddr(const struct sockaddr *sa, ipaddr_t *a)
{
    if (sa == NULL)
        return -1;
    switch (sa->sa_family) {
    case AF_INET:
        a->family = AF_INET;
        memcpy(a->b, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 0;
    case AF_INET6:
        set_v6(a, ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
        return 0;
    default:
        return -1;
    }
}

/* Parses a dotted quad of exactly `len` bytes into b[0..3]: four decimal numbers 0-255 without leading zeros, the
 * strict form inet_pton(3) takes ("010.0.0.1" is refused rather than read as octal or decimal). Returns 0 or -1. */
static int parse_v4(const char *s, size_t len, uint8_t *b)
{
    const char *end = s + len;
    for (int part = 0; part != 4; ++part) {
        if (part != 0 && (s == end || *s++ != '.'))
            return -1;
        if (s == end || *s < '0' || *s > '9')
            return -1;
        unsigned v = (unsigned)(*s++ - '0');
        while (s != end && *s >= '0' && *s <= '9') {
            if (v == 0) /* a leading zero */
                return -1;
            v = v * 10 + (unsigned)(*s++ - '0');
            if (v > 255)
                return -1;
        }
        b[part] = (uint8_t)v;
    }
    return s == end ? 0 : -1;
}

/* Parses an IP literal of exactly `len` bytes (not NUL-terminated); `family` is AF_INET, AF_INET6 or AF_UNSPEC (IPv6
 * when there is a colon). IPv6 goes through inet_pton(3). Returns 0 or -1. */
static int parse_ip(const char *s, size_t len, int family, ipaddr_t *a)
{
    if (family == AF_UNSPEC)
        family = memchr(s, ':', len) != NULL ? AF_INET6 : AF_INET;
    if (family == AF_INET) {
        a->family = AF_INET;
        return parse_v4(s, len, a->b);
    }
    char tmp[INET6_ADDRSTRLEN]; /* 46: the longest literal, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", and NUL */
    uint8_t b16[16];
    if (len == 0 || len >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (inet_pton(AF_INET6, tmp, b16) != 1)
        return -1;
    set_v6(a, b16);
    return 0;
}

/* A port: 1-5 decimal digits, at most 65535. */
static int is_port(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return 0;
    unsigned v = 0;
    for (size_t i = 0; i != len; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v <= 65535;
}

/* Parses one X-Forwarded-For element or X-Real-IP value (already trimmed): "1.2.3.4", "1.2.3.4:80", "2001:db8::1",
 * "[2001:db8::1]", "[2001:db8::1]:443". Returns 0 or -1. */
static int parse_candidate(const char *s, size_t len, ipaddr_t *a)
{
    if (len == 0)
        return -1;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return -1;
        size_t after = len - (size_t)(close + 1 - s);
        if (after != 0 && !(close[1] == ':' && is_port(close + 2, after - 1)))
            return -1;
        return parse_ip(s + 1, (size_t)(close - (s + 1)), AF_INET6, a);
    }
    const char *colon = memchr(s, ':', len);
    if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)) == NULL) {
        /* exactly one colon: IPv6 has at least two, so this is IPv4 with a port */
        if (!is_port(colon + 1, len - (size_t)(colon + 1 - s)))
            return -1;
        return parse_ip(s, (size_t)(colon - s), AF_INET, a);
    }
    return parse_ip(s, len, AF_UNSPEC, a);
}

/* Writes the decimal of v (0-255) at p; returns the end. */
static char *put_u8(char *p, unsigned v)
{
    if (v >= 100)
        *p++ = (char)('0' + v / 100);
    if (v >= 10)
        *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

/* Writes the canonical text of an address and a NUL at p (room for HY_CLIENT_IP_MAX bytes); returns the end (at the
 * NUL). IPv6 follows RFC 5952: lower-case hex without leading zeros, the longest run of two or more zero groups (the
 * first of equal runs) as "::". */
static char *format_ip(const ipaddr_t *a, char *p)
{
    static const char hex[] = "0123456789abcdef";
    if (a->family == AF_INET) {
        for (int i = 0; i != 4; ++i) {
            if (i != 0)
                *p++ = '.';
            p = put_u8(p, a->b[i]);
        }
        *p = '\0';
        return p;
    }
    unsigned g[8];
    for (int i = 0; i != 8; ++i)
        g[i] = (unsigned)a->b[2 * i] << 8 | a->b[2 * i + 1];
    int best = -1, best_len = 1; /* a single zero group is not compressed */
    for (int i = 0; i < 8;) {
        if (g[i] != 0) {
            ++i;
            continue;
        }
        int j = i;
        while (j < 8 && g[j] == 0)
            ++j;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    for (int i = 0; i < 8; ++i) {
        if (i == best) {
            *p++ = ':';
            *p++ = ':';
            i += best_len - 1;
            continue;
        }
        if (i != 0 && i != best + best_len)
            *p++ = ':';
        int started = 0;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned d = (g[i] >> shift) & 15;
            if (d != 0 || started || shift == 0) {
                *p++ = hex[d];
                started = 1;
            }
        }
    }
    *p = '\0';
    return p;
}

/* ---- CIDR lists -------------------------------------------------------------------------------------------------------- */

/* 1 when the first `prefix` bits of a and net agree. */
static int prefix_equal(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == net[full];
}

static int match_any(const hy_cidr_t *list, size_t n, const ipaddr_t *a)
{
    for (size_t i = 0; i != n; ++i)
        if (list[i].family == a->family && prefix_equal(a->b, list[i].addr, list[i].prefix))
            return 1;
    return 0;
}

int hy_cidr_match(const hy_cidr_t *list, size_t n, const struct sockaddr *sa)
{
    ipaddr_t a;
    return from_sockaddr(sa, &a) == 0 && match_any(list, n, &a);
}

/* Copies at most 60 bytes of s into buf for a message, '?' for bytes that are not printable ASCII. Returns buf. */
static const char *printable(const char *s, char *buf, size_t bufsize)
{
    size_t i = 0;
    for (; s[i] != '\0' && i != 60 && i + 4 < bufsize; ++i)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (s[i] != '\0' && i + 4 < bufsize)
        buf[i++] = '.', buf[i++] = '.', buf[i++] = '.';
    buf[i] = '\0';
    return buf;
}

int hy_cidr_parse(const char *s, hy_cidr_t *out, char *err, size_t errlen)
{
    char shown[64];
    const char *why;

    if (s == NULL || s[0] == '\0') {
        snprintf(err, errlen, "an empty network (expected an address like 10.0.0.0/8 or fd00::/8)");
        return -1;
    }
    const char *slash = strchr(s, '/');
    size_t addr_len = slash != NULL ? (size_t)(slash - s) : strlen(s);
    ipaddr_t a;
    if (parse_ip(s, addr_len, AF_UNSPEC, &a) != 0) {
        snprintf(err, errlen, "\"%s\": not an IP address or network (expected one like 10.0.0.0/8 or fd00::/8)",
                 printable(s, shown, sizeof(shown)));
        return -1;
    }
    int written_v6 = memchr(s, ':', addr_len) != NULL;
    unsigned max = written_v6 ? 128 : 32, prefix = max;
    if (slash != NULL) {
        const char *d = slash + 1;
        size_t n = strlen(d);
        prefix = 0;
        for (size_t i = 0; i != n; ++i) {
            if (d[i] < '0' || d[i] > '9' || i == 3) {
                prefix = max + 1;
                break;
            }
            prefix = prefix * 10 + (unsigned)(d[i] - '0');
        }
        if (n == 0 || (n > 1 && d[0] == '0') || prefix > max) {
            snprintf(err, errlen, "\"%s\": the prefix length must be a number from 0 to %u", printable(s, shown, sizeof(shown)),
                     max);
            return -1;
        }
    }
    if (written_v6 && a.family == AF_INET) {
        /* an IPv4-mapped network is an IPv4 network */
        if (prefix < 96) {
            why = "an IPv4-mapped network (::ffff:a.b.c.d) needs a prefix length of at least 96";
            goto Error;
        }
        prefix -= 96;
    }

    out->family = a.family;
    out->prefix = prefix;
    memset(out->addr, 0, sizeof(out->addr));
    unsigned nbytes = a.family == AF_INET ? 4 : 16;
    for (unsigned i = 0; i != nbytes; ++i) {
        unsigned bits = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;
        out->addr[i] = a.b[i] & (uint8_t)(0xff00 >> bits);
    }
    if (memcmp(out->addr, a.b, nbytes) != 0) {
        char meant[HY_CLIENT_IP_MAX];
        hy_cidr_format(out, meant, sizeof(meant));
        snprintf(err, errlen, "\"%s\": host bits are set after the prefix (did you mean %s?)", printable(s, shown, sizeof(shown)),
                 meant);
        return -1;
    }
    return 0;

Error:
    snprintf(err, errlen, "\"%s\": %s", printable(s, shown, sizeof(shown)), why);
    return -1;
}

int hy_cidr_format(const hy_cidr_t *cidr, char *buf, size_t bufsize)
{
    if (bufsize < HY_CLIENT_IP_MAX || (cidr->family != AF_INET && cidr->family != AF_INET6)) {
        if (bufsize != 0)
            buf[0] = '\0';
        return -1;
    }
    ipaddr_t a = {.family = cidr->family};
    memcpy(a.b, cidr->addr, sizeof(a.b));
    char *p = format_ip(&a, buf);
    *p++ = '/';
    p = put_u8(p, cidr->prefix);
    *p = '\0';
    return 0;
}

/* ---- the client address ------------------------------------------------------------------------------------------------ */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses a header value with optional whitespace around it. */
static int parse_trimmed(const char *s, size_t len, ipaddr_t *a)
{
    while (len != 0 && is_ows(s[0]))
        ++s, --len;
    while (len != 0 && is_ows(s[len - 1]))
        --len;
    return parse_candidate(s, len, a);
}

int hy_client_ip(const struct sockaddr *peer, const char *xff, size_t xff_len, const char *xrealip, size_t xri_len,
                 const hy_cidr_t *trusted, size_t ntrusted, char *out, size_t outlen)
{
    ipaddr_t peer_addr, cand, last; /* last: the left-most address the walk accepted */
    int have_last = 0;

    if (outlen < HY_CLIENT_IP_MAX || from_sockaddr(peer, &peer_addr) != 0) {
        if (outlen != 0)
            out[0] = '\0';
        return -1;
    }
    if (!match_any(trusted, ntrusted, &peer_addr))
        goto Peer;

    /* right-most untrusted: walk X-Forwarded-For from the right */
    if (xff != NULL) {
        const char *end = xff + xff_len;
        unsigned hops = 0;
        while (end > xff) {
            const char *comma = memrchr(xff, ',', (size_t)(end - xff));
            const char *begin = comma != NULL ? comma + 1 : xff;
            const char *e = end;
            end = comma != NULL ? comma : xff;
            while (begin != e && is_ows(*begin))
                ++begin;
            while (e != begin && is_ows(e[-1]))
                --e;
            if (begin == e)
                continue; /* an empty element */
            if (++hops > HY_XFF_MAX_HOPS || parse_candidate(begin, (size_t)(e - begin), &cand) != 0)
                goto Garbage;
            if (!match_any(trusted, ntrusted, &cand)) {
                format_ip(&cand, out);
                return 0;
            }
            last = cand;
            have_last = 1;
        }
    }

    /* no X-Forwarded-For, an empty one, or only trusted proxies */
    if (xrealip != NULL && parse_trimmed(xrealip, xri_len, &cand) == 0) {
        format_ip(&cand, out);
        return 0;
    }

Garbage:
    if (have_last) {
        format_ip(&last, out);
        return 0;
    }
Peer:
    format_ip(&peer_addr, out);
    return 0;
}
