/* check_cooldown.c: unit tests of the address cool-down table (app/cooldown.c): refusal and expiry, IPv4 and its
 * IPv4-mapped IPv6 form, extension, a full table replacing the entry that ends first, and other address families. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include "cooldown.h"

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    ck_assert_int_eq(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    ck_assert_int_eq(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
    return ss;
}

#define SA(ss) ((struct sockaddr *)&(ss))

START_TEST(test_refused_until_it_expires)
{
    hy_cooldown_t *c = hy_cooldown_create();
    struct sockaddr_storage a = v4("127.0.0.2"), b = v4("127.0.0.1"), a_port = v4("127.0.0.2");
    ((struct sockaddr_in *)&a_port)->sin_port = htons(4242);
    ck_assert_int_eq(hy_cooldown_check(c, SA(a), 1000), 0);
    hy_cooldown_add(c, SA(a), 1000, 500);
    ck_assert_int_eq(hy_cooldown_check(c, SA(a), 1000), 1);
    ck_assert_int_eq(hy_cooldown_check(c, SA(a_port), 1499), 1); /* the port does not matter */
    ck_assert_int_eq(hy_cooldown_check(c, SA(b), 1200), 0);      /* another address is served */
    ck_assert_int_eq(hy_cooldown_check(c, SA(a), 1500), 0);      /* expired */
    hy_cooldown_add(c, SA(b), 2000, 0);                          /* 0: no cool-down */
    ck_assert_int_eq(hy_cooldown_check(c, SA(b), 2000), 0);
    hy_cooldown_free(c);
}
END_TEST

START_TEST(test_ipv4_and_its_mapped_form_are_one)
{
    hy_cooldown_t *c = hy_cooldown_create();
    struct sockaddr_storage a = v4("192.0.2.7"), mapped = v6("::ffff:192.0.2.7"), other = v6("2001:db8::7");
    hy_cooldown_add(c, SA(mapped), 0, 100);
    ck_assert_int_eq(hy_cooldown_check(c, SA(a), 50), 1);
    ck_assert_int_eq(hy_cooldown_check(c, SA(other), 50), 0);
    hy_cooldown_add(c, SA(other), 0, 100);
    ck_assert_int_eq(hy_cooldown_check(c, SA(other), 50), 1);
    hy_cooldown_free(c);
}
END_TEST

START_TEST(test_adding_again_extends)
{
    hy_cooldown_t *c = hy_cooldown_create();
    struct sockaddr_storage a = v6("::1");
    hy_cooldown_add(c, SA(a), 0, 100);
    hy_cooldown_add(c, SA(a), 90, 100); /* now until 190 */
    hy_cooldown_add(c, SA(a), 95, 10);  /* a shorter one does not shorten it */
    ck_assert_int_eq(hy_cooldown_check(c, SA(a), 150), 1);
    ck_assert_int_eq(hy_cooldown_check(c, SA(a), 189), 1);
    ck_assert_int_eq(hy_cooldown_check(c, SA(a), 190), 0);
    hy_cooldown_free(c);
}
END_TEST

START_TEST(test_full_table_replaces_the_one_ending_first)
{
    hy_cooldown_t *c = hy_cooldown_create();
    char ip[32];
    for (int i = 0; i != HY_COOLDOWN_SLOTS; ++i) {
        snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
        struct sockaddr_storage a = v4(ip);
        hy_cooldown_add(c, SA(a), 0, 1000 + (uint64_t)i); /* 10.0.0.0 ends first */
    }
    struct sockaddr_storage first = v4("10.0.0.0"), second = v4("10.0.0.1"), newcomer = v4("198.51.100.1");
    hy_cooldown_add(c, SA(newcomer), 10, 5000);
    ck_assert_int_eq(hy_cooldown_check(c, SA(newcomer), 20), 1);
    ck_assert_int_eq(hy_cooldown_check(c, SA(first), 20), 0); /* forgotten */
    ck_assert_int_eq(hy_cooldown_check(c, SA(second), 20), 1);
    hy_cooldown_free(c);
}
END_TEST

START_TEST(test_other_families_are_ignored)
{
    hy_cooldown_t *c = hy_cooldown_create();
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    hy_cooldown_add(c, (struct sockaddr *)&un, 0, 100);
    ck_assert_int_eq(hy_cooldown_check(c, (struct sockaddr *)&un, 10), 0);
    struct sockaddr_storage a = v4("127.0.0.1");
    hy_cooldown_add(c, SA(a), 0, 100);
    ck_assert_int_eq(hy_cooldown_check(c, (struct sockaddr *)&un, 10), 0);
    hy_cooldown_free(c);
}
END_TEST

static Suite *make_cooldown_suite(void)
{
    Suite *s = suite_create("cooldown");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, test_refused_until_it_expires);
    tcase_add_test(tc, test_ipv4_and_its_mapped_form_are_one);
    tcase_add_test(tc, test_adding_again_extends);
    tcase_add_test(tc, test_full_table_replaces_the_one_ending_first);
    tcase_add_test(tc, test_other_families_are_ignored);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(make_cooldown_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
