/* check_clientip.c: unit tests of CIDR lists and the client address behind proxies (app/clientip.c). */

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clientip.h"

/* ---- helpers ----------------------------------------------------------------------------------------------------------- */

/* A socket address from text, in a static slot (the tests use at most a few at once). */
static const struct sockaddr *sa(const char *text)
{
    static struct sockaddr_storage slots[4];
    static unsigned next;
    struct sockaddr_storage *ss = &slots[next++ % 4];
    memset(ss, 0, sizeof(*ss));
    if (strchr(text, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    }
    return (const struct sockaddr *)ss;
}

static hy_cidr_t cidr(const char *text)
{
    hy_cidr_t c;
    char err[256];
    ck_assert_msg(hy_cidr_parse(text, &c, err, sizeof(err)) == 0, "\"%s\" should parse: %s", text, err);
    return c;
}

static const char *formatted(const char *text)
{
    static char buf[HY_CLIENT_IP_MAX];
    hy_cidr_t c = cidr(text);
    ck_assert_int_eq(hy_cidr_format(&c, buf, sizeof(buf)), 0);
    return buf;
}

static int in(const char *net, const char *addr)
{
    hy_cidr_t c = cidr(net);
    return hy_cidr_match(&c, 1, sa(addr));
}

/* ---- CIDR parsing ------------------------------------------------------------------------------------------------------ */

START_TEST(test_cidr_parse)
{
    hy_cidr_t c = cidr("10.0.0.0/8");
    ck_assert_int_eq(c.family, AF_INET);
    ck_assert_uint_eq(c.prefix, 8);
    ck_assert_uint_eq(c.addr[0], 10);

    ck_assert_str_eq(formatted("10.0.0.0/8"), "10.0.0.0/8");
    ck_assert_str_eq(formatted("192.168.1.5"), "192.168.1.5/32");
    ck_assert_str_eq(formatted("0.0.0.0/0"), "0.0.0.0/0");
    ck_assert_str_eq(formatted("255.255.255.255/32"), "255.255.255.255/32");
    ck_assert_str_eq(formatted("172.16.0.0/12"), "172.16.0.0/12");
    ck_assert_str_eq(formatted("fd00::/8"), "fd00::/8");
    ck_assert_str_eq(formatted("::1"), "::1/128");
    ck_assert_str_eq(formatted("::/0"), "::/0");
    ck_assert_str_eq(formatted("2001:DB8:0:0:0:0:0:0/32"), "2001:db8::/32");
    ck_assert_str_eq(formatted("fe80::/10"), "fe80::/10");
    ck_assert_str_eq(formatted("2001:db8::8:800:200c:417a"), "2001:db8::8:800:200c:417a/128");
    /* IPv4-mapped networks are IPv4 networks */
    c = cidr("::ffff:10.0.0.0/104");
    ck_assert_int_eq(c.family, AF_INET);
    ck_assert_uint_eq(c.prefix, 8);
    ck_assert_str_eq(formatted("::ffff:0:0/96"), "0.0.0.0/0");
    ck_assert_str_eq(formatted("::ffff:1.2.3.4"), "1.2.3.4/32");
}
END_TEST

START_TEST(test_cidr_parse_errors)
{
    static const struct {
        const char *text;
        const char *err; /* a part of the message */
    } bad[] = {
        {"", "empty"},
        {"10.0.0.0/33", "from 0 to 32"},
        {"fd00::/129", "from 0 to 128"},
        {"10.0.0.0/", "from 0 to 32"},
        {"10.0.0.0/-1", "from 0 to 32"},
        {"10.0.0.0/+8", "from 0 to 32"},
        {"10.0.0.0/08", "from 0 to 32"},
        {"10.0.0.0/0008", "from 0 to 32"},
        {"10.0.0.0/8 ", "from 0 to 32"},
        {"10.0.0.0/8/8", "from 0 to 32"},
        {"10.0.0.0/99999999999999999999", "from 0 to 32"},
        {"10.1.2.3/8", "did you mean 10.0.0.0/8?"},
        {"192.168.1.1/24", "did you mean 192.168.1.0/24?"},
        {"1.2.3.4/0", "did you mean 0.0.0.0/0?"},
        {"fd00::1/8", "did you mean fd00::/8?"},
        {"::1/0", "did you mean ::/0?"},
        {"::ffff:10.0.0.0/80", "at least 96"},
        {"10.0.0", "not an IP address"},
        {"10.0.0.256", "not an IP address"},
        {"010.0.0.0/8", "not an IP address"},
        {" 10.0.0.0/8", "not an IP address"},
        {"10.0.0.0 /8", "not an IP address"},
        {"localhost", "not an IP address"},
        {"fe80::1%eth0", "not an IP address"},
        {"[::1]", "not an IP address"},
        {"1::2::3", "not an IP address"},
        {"/8", "not an IP address"},
        {"10.0.0.0:80", "not an IP address"},
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        hy_cidr_t c;
        char err[256] = "";
        ck_assert_msg(hy_cidr_parse(bad[i].text, &c, err, sizeof(err)) == -1, "\"%s\" should be refused", bad[i].text);
        ck_assert_msg(strstr(err, bad[i].err) != NULL, "\"%s\": message \"%s\" lacks \"%s\"", bad[i].text, err, bad[i].err);
    }
    hy_cidr_t c;
    char err[256];
    ck_assert_int_eq(hy_cidr_parse(NULL, &c, err, sizeof(err)), -1);
    ck_assert_int_eq(hy_cidr_parse("x", &c, err, 8), -1); /* a short err buffer is cut, not overrun */
    ck_assert_uint_eq(strlen(err), 7);
    ck_assert_int_eq(hy_cidr_parse("\x01\x02zz", &c, err, sizeof(err)), -1); /* control bytes are not echoed */
    ck_assert_ptr_null(strchr(err, '\x01'));
}
END_TEST

START_TEST(test_ipv4_like_inet_pton)
{
    /* IPv4 literals are parsed by hand; they must be exactly the ones inet_pton(3) takes */
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int i = 0; i != 200000; ++i) {
        char text[24];
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t len = 1 + x % 18;
        uint64_t r = x;
        for (size_t k = 0; k != len; ++k) {
            r = r * 6364136223846793005u + 1442695040888963407u;
            text[k] = "0123456789....12.5"[(r >> 33) % 18];
        }
        text[len] = '\0';
        unsigned char want[4];
        hy_cidr_t c;
        char err[128];
        int ok = inet_pton(AF_INET, text, want) == 1;
        int got = hy_cidr_parse(text, &c, err, sizeof(err)) == 0;
        if (ok != got || (ok && (c.family != AF_INET || c.prefix != 32 || memcmp(c.addr, want, 4) != 0)))
            ck_abort_msg("\"%s\": inet_pton says %d, hy_cidr_parse %d", text, ok, got);
    }
}
END_TEST

/* ---- CIDR matching ----------------------------------------------------------------------------------------------------- */

START_TEST(test_cidr_match_v4)
{
    ck_assert_int_eq(in("10.0.0.0/8", "10.0.0.0"), 1);
    ck_assert_int_eq(in("10.0.0.0/8", "10.255.255.255"), 1);
    ck_assert_int_eq(in("10.0.0.0/8", "11.0.0.0"), 0);
    ck_assert_int_eq(in("10.0.0.0/8", "9.255.255.255"), 0);
    ck_assert_int_eq(in("172.16.0.0/12", "172.31.255.255"), 1);
    ck_assert_int_eq(in("172.16.0.0/12", "172.32.0.0"), 0);
    ck_assert_int_eq(in("192.168.1.5", "192.168.1.5"), 1); /* /32 */
    ck_assert_int_eq(in("192.168.1.5", "192.168.1.4"), 0);
    ck_assert_int_eq(in("192.168.1.4/31", "192.168.1.5"), 1);
    ck_assert_int_eq(in("192.168.1.4/31", "192.168.1.6"), 0);
    ck_assert_int_eq(in("128.0.0.0/1", "255.0.0.1"), 1);
    ck_assert_int_eq(in("128.0.0.0/1", "127.255.255.255"), 0);
}
END_TEST

START_TEST(test_cidr_match_edges)
{
    ck_assert_int_eq(in("0.0.0.0/0", "0.0.0.0"), 1);
    ck_assert_int_eq(in("0.0.0.0/0", "255.255.255.255"), 1);
    ck_assert_int_eq(in("0.0.0.0/0", "2001:db8::1"), 0); /* IPv4 networks hold no IPv6 address */
    ck_assert_int_eq(in("::/0", "2001:db8::1"), 1);
    ck_assert_int_eq(in("::/0", "::"), 1);
    ck_assert_int_eq(in("::/0", "1.2.3.4"), 0); /* nor IPv6 networks IPv4 ones */
    ck_assert_int_eq(in("::/0", "::ffff:1.2.3.4"), 0);
    ck_assert_int_eq(in("::1", "::1"), 1); /* /128 */
    ck_assert_int_eq(in("::1", "::2"), 0);
    ck_assert_int_eq(in("fd00::/8", "fdff:ffff::1"), 1);
    ck_assert_int_eq(in("fd00::/8", "fc00::1"), 0);
    ck_assert_int_eq(in("fe80::/10", "febf::1"), 1);
    ck_assert_int_eq(in("fe80::/10", "fec0::1"), 0);
    ck_assert_int_eq(in("2001:db8::/127", "2001:db8::1"), 1);
    ck_assert_int_eq(in("2001:db8::/127", "2001:db8::2"), 0);
    /* IPv4-mapped IPv6 peers (dual-stack sockets) match IPv4 networks, and mapped networks match IPv4 peers */
    ck_assert_int_eq(in("1.2.3.0/24", "::ffff:1.2.3.4"), 1);
    ck_assert_int_eq(in("1.2.3.0/24", "::ffff:1.2.4.4"), 0);
    ck_assert_int_eq(in("::ffff:1.2.3.0/120", "1.2.3.4"), 1);
    ck_assert_int_eq(in("::ffff:1.2.3.0/120", "::ffff:1.2.3.9"), 1);
    ck_assert_int_eq(in("1.2.3.4", "::1.2.3.4"), 0); /* IPv4-compatible (deprecated) is plain IPv6 */

    hy_cidr_t list[3] = {cidr("10.0.0.0/8"), cidr("fd00::/8"), cidr("127.0.0.1")};
    ck_assert_int_eq(hy_cidr_match(list, 3, sa("127.0.0.1")), 1);
    ck_assert_int_eq(hy_cidr_match(list, 3, sa("fd12::1")), 1);
    ck_assert_int_eq(hy_cidr_match(list, 3, sa("8.8.8.8")), 0);
    ck_assert_int_eq(hy_cidr_match(list, 0, sa("127.0.0.1")), 0);
    ck_assert_int_eq(hy_cidr_match(list, 3, NULL), 0);
    struct sockaddr un = {.sa_family = AF_UNIX};
    ck_assert_int_eq(hy_cidr_match(list, 3, &un), 0);
}
END_TEST

/* ---- the client address ------------------------------------------------------------------------------------------------ */

static hy_cidr_t trusted[3];
static const size_t ntrusted = 3;

static void setup_trusted(void)
{
    trusted[0] = cidr("10.0.0.0/8");
    trusted[1] = cidr("fd00::/8");
    trusted[2] = cidr("127.0.0.1");
}

/* The client address for a peer and headers (NULL = absent), with the trusted list above. */
static const char *client(const char *peer, const char *xff, const char *xri)
{
    static char out[HY_CLIENT_IP_MAX];
    memset(out, 'X', sizeof(out));
    ck_assert_int_eq(hy_client_ip(sa(peer), xff, xff != NULL ? strlen(xff) : 0, xri, xri != NULL ? strlen(xri) : 0, trusted,
                                  ntrusted, out, sizeof(out)),
                     0);
    return out;
}

START_TEST(test_untrusted_peer)
{
    /* spoofed headers from an untrusted peer are ignored */
    ck_assert_str_eq(client("203.0.113.7", "1.1.1.1", NULL), "203.0.113.7");
    ck_assert_str_eq(client("203.0.113.7", "1.1.1.1, 10.0.0.1", "2.2.2.2"), "203.0.113.7");
    ck_assert_str_eq(client("203.0.113.7", NULL, "2.2.2.2"), "203.0.113.7");
    ck_assert_str_eq(client("2001:db8::7", "1.1.1.1", NULL), "2001:db8::7");
    ck_assert_str_eq(client("::ffff:203.0.113.7", "1.1.1.1", NULL), "203.0.113.7"); /* mapped peers print as IPv4 */
    ck_assert_str_eq(client("2001:DB8:0:0:1:0:0:1", NULL, NULL), "2001:db8::1:0:0:1");

    char out[HY_CLIENT_IP_MAX];
    ck_assert_int_eq(hy_client_ip(sa("203.0.113.7"), "1.1.1.1", 7, NULL, 0, NULL, 0, out, sizeof(out)), 0); /* no list */
    ck_assert_str_eq(out, "203.0.113.7");
}
END_TEST

START_TEST(test_trusted_chain)
{
    /* the right-most untrusted element is the client */
    ck_assert_str_eq(client("10.0.0.1", "198.51.100.9", NULL), "198.51.100.9");
    ck_assert_str_eq(client("10.0.0.1", "198.51.100.9, 10.0.0.2", NULL), "198.51.100.9");
    ck_assert_str_eq(client("10.0.0.1", "198.51.100.9, 10.0.0.3, 10.0.0.2", NULL), "198.51.100.9");
    /* a client that sends its own X-Forwarded-For: whatever it put on the left is not believed */
    ck_assert_str_eq(client("10.0.0.1", "6.6.6.6, 198.51.100.9, 10.0.0.2", NULL), "198.51.100.9");
    ck_assert_str_eq(client("10.0.0.1", "10.9.9.9, 198.51.100.9", NULL), "198.51.100.9"); /* a spoofed "trusted" one */
    /* IPv6 and mapped hops; trusted proxies written in other forms */
    ck_assert_str_eq(client("fd00::1", "2001:db8::42, fd00::2", NULL), "2001:db8::42");
    ck_assert_str_eq(client("::ffff:10.0.0.1", "198.51.100.9, ::ffff:10.0.0.2", NULL), "198.51.100.9");
    ck_assert_str_eq(client("127.0.0.1", "::ffff:198.51.100.9", NULL), "198.51.100.9");
    ck_assert_str_eq(client("127.0.0.1", "2001:DB8::0042", NULL), "2001:db8::42");
    /* ports and brackets */
    ck_assert_str_eq(client("10.0.0.1", "198.51.100.9:4711", NULL), "198.51.100.9");
    ck_assert_str_eq(client("10.0.0.1", "[2001:db8::42]:443, 10.0.0.2:80", NULL), "2001:db8::42");
    ck_assert_str_eq(client("10.0.0.1", "[2001:db8::42]", NULL), "2001:db8::42");
    ck_assert_str_eq(client("10.0.0.1", "198.51.100.9:65535", NULL), "198.51.100.9");
}
END_TEST

START_TEST(test_fallbacks)
{
    /* absent or empty X-Forwarded-For: X-Real-IP, else the peer */
    ck_assert_str_eq(client("10.0.0.1", NULL, "198.51.100.9"), "198.51.100.9");
    ck_assert_str_eq(client("10.0.0.1", "", " 198.51.100.9 "), "198.51.100.9");
    ck_assert_str_eq(client("10.0.0.1", " , ,", "2001:db8::9"), "2001:db8::9");
    ck_assert_str_eq(client("10.0.0.1", NULL, NULL), "10.0.0.1");
    ck_assert_str_eq(client("10.0.0.1", NULL, "garbage"), "10.0.0.1");
    ck_assert_str_eq(client("10.0.0.1", NULL, ""), "10.0.0.1");
    ck_assert_str_eq(client("10.0.0.1", NULL, "198.51.100.9, 1.1.1.1"), "10.0.0.1"); /* one address only */
    /* only trusted proxies: X-Real-IP, else the left-most of them */
    ck_assert_str_eq(client("10.0.0.1", "10.0.0.3, 10.0.0.2", "198.51.100.9"), "198.51.100.9");
    ck_assert_str_eq(client("10.0.0.1", "10.0.0.3, 10.0.0.2", NULL), "10.0.0.3");
    ck_assert_str_eq(client("10.0.0.1", "10.0.0.3, 10.0.0.2", "nope"), "10.0.0.3");
    /* X-Real-IP is not used when X-Forwarded-For names the client */
    ck_assert_str_eq(client("10.0.0.1", "198.51.100.9", "1.1.1.1"), "198.51.100.9");
}
END_TEST

START_TEST(test_garbage)
{
    /* garbage stops the walk: the last accepted address, or the peer */
    ck_assert_str_eq(client("10.0.0.1", "unknown", NULL), "10.0.0.1");
    ck_assert_str_eq(client("10.0.0.1", "unknown", "198.51.100.9"), "10.0.0.1"); /* not X-Real-IP: the chain is broken */
    ck_assert_str_eq(client("10.0.0.1", "198.51.100.9, unknown, 10.0.0.2", NULL), "10.0.0.2");
    ck_assert_str_eq(client("10.0.0.1", "198.51.100.9, _hidden", NULL), "10.0.0.1");
    ck_assert_str_eq(client("10.0.0.1", "1.2.3.4, 5.6.7.8 9.10.11.12", NULL), "10.0.0.1");
    static const char *const bad[] = {
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.256",
        "01.2.3.4",
        "1.2.3.4:",
        "1.2.3.4:65536",
        "1.2.3.4:80:80",
        "1.2.3.4:http",
        "[1.2.3.4]",
        "[2001:db8::1",
        "[2001:db8::1]x",
        "[2001:db8::1]:",
        "[2001:db8::1]:99999",
        "2001:db8::1::2",
        "fe80::1%eth0",
        "2001:db8::1]",
        "\"1.2.3.4\"",
        "1.2.3.4;",
        "-",
        "\x01",
        "\xc3\xa9",
        "1111:2222:3333:4444:5555:6666:7777:8888:9999", /* long but not an address */
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        char xff[128];
        snprintf(xff, sizeof(xff), "198.51.100.9, %s, 10.0.0.2", bad[i]);
        ck_assert_msg(strcmp(client("10.0.0.1", xff, NULL), "10.0.0.2") == 0, "%s: got %s", xff, client("10.0.0.1", xff, NULL));
    }
}
END_TEST

START_TEST(test_spaces_and_empty_elements)
{
    ck_assert_str_eq(client("10.0.0.1", "  198.51.100.9  ", NULL), "198.51.100.9");
    ck_assert_str_eq(client("10.0.0.1", "198.51.100.9,10.0.0.2", NULL), "198.51.100.9");
    ck_assert_str_eq(client("10.0.0.1", "198.51.100.9 ,\t10.0.0.2\t", NULL), "198.51.100.9");
    ck_assert_str_eq(client("10.0.0.1", "198.51.100.9, , 10.0.0.2, ", NULL), "198.51.100.9");
    ck_assert_str_eq(client("10.0.0.1", ",,198.51.100.9,,", NULL), "198.51.100.9");
    ck_assert_str_eq(client("10.0.0.1", "198.51.100.9, ", NULL), "198.51.100.9"); /* two headers, the second empty */
    ck_assert_str_eq(client("10.0.0.1", "1.2.3.4 5.6.7.8", NULL), "10.0.0.1");    /* space is not a separator */

    /* the length given counts, not a NUL */
    char out[HY_CLIENT_IP_MAX];
    ck_assert_int_eq(
        hy_client_ip(sa("10.0.0.1"), "198.51.100.9, 10.0.0.2garbage", 22, NULL, 0, trusted, ntrusted, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "198.51.100.9");
}
END_TEST

START_TEST(test_long_xff)
{
    enum { SIZE = 10 * 1024 };
    char *xff = malloc(SIZE + 64);
    ck_assert_ptr_nonnull(xff);

    /* 10 KB of spoofed addresses, then the client, then a trusted proxy: only the right end is read */
    size_t len = 0;
    while (len < SIZE)
        len += (size_t)sprintf(xff + len, "6.6.6.%d, ", (int)(len % 200));
    len += (size_t)sprintf(xff + len, "198.51.100.9, 10.0.0.2");
    ck_assert_str_eq(client("10.0.0.1", xff, NULL), "198.51.100.9");

    /* 10 KB of trusted proxies: the walk gives up after HY_XFF_MAX_HOPS of them, at the last one it accepted */
    len = 0;
    while (len < SIZE)
        len += (size_t)sprintf(xff + len, "10.0.%d.%d,", (int)(len / 200 % 250), (int)(len % 200));
    xff[len - 1] = '\0';
    const char *got = client("10.0.0.1", xff, NULL);
    ck_assert_msg(strncmp(got, "10.0.", 5) == 0, "got %s", got);

    /* one 10 KB element */
    memset(xff, '1', SIZE);
    xff[SIZE] = '\0';
    ck_assert_str_eq(client("10.0.0.1", xff, NULL), "10.0.0.1");
    /* 10 KB of commas */
    memset(xff, ',', SIZE);
    ck_assert_str_eq(client("10.0.0.1", xff, "198.51.100.9"), "198.51.100.9");
    free(xff);
}
END_TEST

START_TEST(test_hop_limit)
{
    /* exactly HY_XFF_MAX_HOPS trusted elements are walked; one more is garbage */
    char xff[2048];
    size_t len = (size_t)sprintf(xff, "198.51.100.9");
    for (int i = 0; i != HY_XFF_MAX_HOPS - 1; ++i)
        len += (size_t)sprintf(xff + len, ", 10.0.1.%d", i);
    ck_assert_str_eq(client("10.0.0.1", xff, NULL), "198.51.100.9");
    len = (size_t)sprintf(xff, "198.51.100.9");
    for (int i = 0; i != HY_XFF_MAX_HOPS; ++i)
        len += (size_t)sprintf(xff + len, ", 10.0.1.%d", i);
    ck_assert_str_eq(client("10.0.0.1", xff, NULL), "10.0.1.0");
}
END_TEST

START_TEST(test_client_ip_errors)
{
    char out[HY_CLIENT_IP_MAX];
    memset(out, 'X', sizeof(out));
    ck_assert_int_eq(hy_client_ip(NULL, NULL, 0, NULL, 0, trusted, ntrusted, out, sizeof(out)), -1);
    ck_assert_str_eq(out, "");
    struct sockaddr un = {.sa_family = AF_UNIX};
    ck_assert_int_eq(hy_client_ip(&un, "1.2.3.4", 7, NULL, 0, trusted, ntrusted, out, sizeof(out)), -1);
    ck_assert_int_eq(hy_client_ip(sa("1.2.3.4"), NULL, 0, NULL, 0, trusted, ntrusted, out, HY_CLIENT_IP_MAX - 1), -1);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(hy_client_ip(sa("1.2.3.4"), NULL, 0, NULL, 0, trusted, ntrusted, NULL, 0), -1);
}
END_TEST

START_TEST(test_ipv6_text)
{
    /* RFC 5952 text for peers */
    ck_assert_str_eq(client("::", NULL, NULL), "::");
    ck_assert_str_eq(client("::1", NULL, NULL), "::1");
    ck_assert_str_eq(client("1::", NULL, NULL), "1::");
    ck_assert_str_eq(client("2001:db8:0:1:1:1:1:1", NULL, NULL), "2001:db8:0:1:1:1:1:1"); /* one zero group stays */
    ck_assert_str_eq(client("2001:0:0:1:0:0:0:1", NULL, NULL), "2001:0:0:1::1");          /* the longest run */
    ck_assert_str_eq(client("2001:db8:0:0:1:0:0:1", NULL, NULL), "2001:db8::1:0:0:1");    /* the first of equal runs */
    ck_assert_str_eq(client("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL, NULL), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    ck_assert_str_eq(client("::ffff:0.0.0.0", NULL, NULL), "0.0.0.0");
    ck_assert_str_eq(client("255.255.255.255", NULL, NULL), "255.255.255.255");
    ck_assert_str_eq(client("1.20.100.0", NULL, NULL), "1.20.100.0");
}
END_TEST

/* ---- the suite --------------------------------------------------------------------------------------------------------- */

static Suite *make_clientip_suite(void)
{
    Suite *s = suite_create("clientip");

    TCase *tc = tcase_create("cidr");
    tcase_add_test(tc, test_cidr_parse);
    tcase_add_test(tc, test_cidr_parse_errors);
    tcase_add_test(tc, test_ipv4_like_inet_pton);
    tcase_add_test(tc, test_cidr_match_v4);
    tcase_add_test(tc, test_cidr_match_edges);
    suite_add_tcase(s, tc);

    tc = tcase_create("client address");
    tcase_add_checked_fixture(tc, setup_trusted, NULL);
    tcase_add_test(tc, test_untrusted_peer);
    tcase_add_test(tc, test_trusted_chain);
    tcase_add_test(tc, test_fallbacks);
    tcase_add_test(tc, test_ipv6_text);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, setup_trusted, NULL);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_spaces_and_empty_elements);
    tcase_add_test(tc, test_client_ip_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_checked_fixture(tc, setup_trusted, NULL);
    tcase_add_test(tc, test_long_xff);
    tcase_add_test(tc, test_hop_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(make_clientip_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
