/* clientip.h: CIDR lists of trusted proxies and the client address of a request, from the peer and, behind trusted
 * proxies, from X-Forwarded-For / X-Real-IP. */
#ifndef HY_CLIENTIP_H
#define HY_CLIENTIP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- CIDR lists -------------------------------------------------------------------------------------------------------- */

/* Room for any address that hy_client_ip or hy_cidr_format writes, with its NUL ("ffff:...:255.255.255.255/128"). */
#define HY_CLIENT_IP_MAX 64

/* One network. IPv4-mapped IPv6 addresses (::ffff:1.2.3.4) are IPv4 addresses everywhere in this module: a network
 * written "::ffff:10.0.0.0/104" is stored as 10.0.0.0/8, and ::ffff:10.1.2.3 is inside 10.0.0.0/8. An IPv6 network
 * never holds an IPv4 address: "::/0" is every IPv6 address, so trusting everything takes "0.0.0.0/0" and "::/0". */
typedef struct st_hy_cidr_t {
    int family;       /* AF_INET or AF_INET6 */
    unsigned prefix;  /* prefix length in bits: 0-32 (AF_INET) or 0-128 (AF_INET6) */
    uint8_t addr[16]; /* network address, network byte order, host bits zero; AF_INET uses the first 4 bytes */
} hy_cidr_t;

/* Parses one network: "10.0.0.0/8", "192.168.1.5" (a host: /32), "fd00::/8", "::1" (/128), "::ffff:10.0.0.0/104".
 * Addresses are those inet_pton(3) takes (dotted-quad IPv4 without leading zeros; no zone id, no spaces); the prefix
 * is 0-32 or 0-128 in decimal without a sign or leading zero. A network with host bits set ("10.1.2.3/8") is refused,
 * naming the network meant ("did you mean 10.0.0.0/8?"): it is more often a typo than an intent. Returns 0, or -1 with
 * a one-line reason in err (always NUL-terminated when errlen > 0; *out is then unspecified). */
int hy_cidr_parse(const char *s, hy_cidr_t *out, char *err, size_t errlen);

/* Writes the network as text ("10.0.0.0/8", "fd00::/8") into buf, NUL-terminated. bufsize >= HY_CLIENT_IP_MAX.
 * Returns 0, or -1 when the buffer is too small or the family unknown. */
int hy_cidr_format(const hy_cidr_t *cidr, char *buf, size_t bufsize);

/* Returns 1 when the address of `sa` (AF_INET, or AF_INET6 including IPv4-mapped) lies in one of the n networks of
 * `list`, 0 otherwise (and for any other family or a NULL sa). Nothing is kept. */
int hy_cidr_match(const hy_cidr_t *list, size_t n, const struct sockaddr *sa);

/* ---- the client address ------------------------------------------------------------------------------------------------ */

/* Most X-Forwarded-For elements examined (from the right) before the rest counts as garbage. */
#define HY_XFF_MAX_HOPS 64

/* Writes the client's address as canonical text into `out` (outlen >= HY_CLIENT_IP_MAX): dotted quad for IPv4 and
 * IPv4-mapped IPv6, RFC 5952 form for IPv6 ("2001:db8::1"), never a port. The rules:
 *
 * 1. The peer is not in `trusted`: the peer, whatever the headers say (anyone can send them).
 * 2. Otherwise X-Forwarded-For is walked from the right, the standard right-most untrusted algorithm: each element was
 *    appended by the hop to its right, so the first element (from the right) that is not itself a trusted proxy is the
 *    client. Empty elements (", ,") are skipped.
 * 3. An element that is not an address ("unknown", "_hidden", junk), or the (HY_XFF_MAX_HOPS + 1)th element, stops the
 *    walk: what lies to its left cannot be believed. The result is the last address the walk accepted (a trusted
 *    proxy, the nearest hop known to be real), or the peer when the right-most element is already bad.
 * 4. When X-Forwarded-For is absent, empty, or only trusted proxies: X-Real-IP when it is an address; otherwise the
 *    left-most X-Forwarded-For element (a trusted proxy nearer the client than the peer) when there is one; otherwise
 *    the peer.
 *
 * An address (an element or X-Real-IP, with spaces and tabs around it ignored) is an IPv4 literal, optionally with a
 * port ("1.2.3.4:8080", as some proxies add), or an IPv6 literal, bare or in brackets with an optional port
 * ("2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:443"); "1.2.3.4:" or a port above 65535 is not.
 *
 * `peer` is the connection's address (AF_INET or AF_INET6). `xff` is the X-Forwarded-For value, several headers joined
 * by the caller with ", " (NULL when absent); `xrealip` the X-Real-IP value (NULL when absent); neither is
 * NUL-terminated and neither is kept. Returns 0, or -1 (out set to "" when outlen > 0) when the peer is NULL or of
 * another family or outlen is too small. No allocation, system call or lock. */
int hy_client_ip(const struct sockaddr *peer, const char *xff, size_t xff_len, const char *xrealip, size_t xri_len,
                 const hy_cidr_t *trusted, size_t ntrusted, char *out, size_t outlen);

#endif
