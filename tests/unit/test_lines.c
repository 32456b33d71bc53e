/* test_lines.c - choosing chains for streams, the pure part: isolation
 * keys of SOCKS credentials, which exits take a target by their
 * published policies, and the draw of an exit among those that do. */
#include <check.h>
#include <string.h>

#include "client/lines.h"
#include "lib/crypto.h"
#include "check_main.h"

static const uint8_t secret[32] = {1, 2, 3};

static void key_of(const uint8_t *sec, const char *user, size_t ul, const char *pass, size_t pl,
                   uint8_t key[CLIENT_CLASS_KEY])
{
    lines_class_key(sec, (const uint8_t *)user, ul, (const uint8_t *)pass, pl, key);
}

START_TEST(class_keys)
{
    uint8_t a[CLIENT_CLASS_KEY], b[CLIENT_CLASS_KEY], other[32] = {9};
    uint8_t big[300];

    key_of(secret, "alice", 5, "pw", 2, a);
    key_of(secret, "alice", 5, "pw", 2, b);
    ck_assert_mem_eq(a, b, sizeof(a)); /* the same credentials, the same class */
    key_of(secret, "bob", 3, "pw", 2, b);
    ck_assert(memcmp(a, b, sizeof(a)) != 0);
    key_of(secret, "alice", 5, "px", 2, b);
    ck_assert(memcmp(a, b, sizeof(a)) != 0);
    /* A byte moved from the user name to the password is another pair. */
    key_of(secret, "alicep", 6, "w", 1, b);
    ck_assert(memcmp(a, b, sizeof(a)) != 0);
    /* Another client (secret) gives the same credentials another key. */
    key_of(other, "alice", 5, "pw", 2, b);
    ck_assert(memcmp(a, b, sizeof(a)) != 0);
    /* Empty credentials are a class too, and NULs count. */
    key_of(secret, "", 0, "", 0, a);
    key_of(secret, "\0", 1, "", 0, b);
    ck_assert(memcmp(a, b, sizeof(a)) != 0);
    /* Longer than SOCKS allows: cut at 255 bytes, never past the buffer. */
    memset(big, 'x', sizeof(big));
    lines_class_key(secret, big, sizeof(big), big, sizeof(big), a);
    lines_class_key(secret, big, 255, big, 255, b);
    ck_assert_mem_eq(a, b, sizeof(a));
}
END_TEST

/* An exit with policy text (NULL: a relay that is no exit). */
static void exit_desc(struct desc *d, const char *policy)
{
    struct exit_policy p = {0};
    size_t len = 0;

    memset(d, 0, sizeof(*d));
    d->flags = DESC_RELAY;
    if (!policy)
        return;
    ck_assert_int_eq(exit_policy_parse(&p, policy, NULL, NULL), 0);
    ck_assert_int_eq(exit_policy_encode(&p, d->policy, sizeof(d->policy), &len), 0);
    d->policy_len = (uint8_t)len;
    d->flags |= DESC_EXIT;
}

static struct stream_target v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    struct stream_target t = {.atyp = STA_IPV4, .port = port, .addr = {a, b, c, d}};

    return t;
}

static struct stream_target name(const char *host, uint16_t port)
{
    struct stream_target t = {.atyp = STA_NAME, .port = port};

    strcpy(t.name, host);
    return t;
}

START_TEST(accepts)
{
    struct desc d;
    struct stream_target t6 = {.atyp = STA_IPV6, .port = 443, .addr = {0x20, 0x01, 0x48, 0x60}};
    struct stream_target lo = v4(127, 0, 0, 1, 443);

    exit_desc(&d, NULL);
    ck_assert(!lines_accepts(&d, &lo, true)); /* no exit at all */
    exit_desc(&d, "accept 8.8.8.0/24:443, accept 127.0.0.1:443, accept *6:443, reject *:*");
    lo = v4(8, 8, 8, 8, 443);
    ck_assert(lines_accepts(&d, &lo, false));
    lo = v4(8, 8, 8, 8, 80);
    ck_assert(!lines_accepts(&d, &lo, false)); /* the port */
    lo = v4(8, 8, 4, 4, 443);
    ck_assert(!lines_accepts(&d, &lo, false)); /* the address */
    lo = v4(127, 0, 0, 1, 443);
    ck_assert(lines_accepts(&d, &lo, true));
    ck_assert(!lines_accepts(&d, &lo, false)); /* loopback: the exit would refuse it */
    ck_assert(lines_accepts(&d, &t6, false));
    t6.port = 80;
    ck_assert(!lines_accepts(&d, &t6, false));
    /* A name: any address on its port will do, the exit resolves it. */
    lo = name("example.org", 443);
    ck_assert(lines_accepts(&d, &lo, false));
    lo = name("example.org", 22);
    ck_assert(!lines_accepts(&d, &lo, false));
    /* A descriptor whose policy bytes do not decode takes nothing. */
    d.policy_len = 1;
    d.policy[0] = 0x7f;
    lo = v4(8, 8, 8, 8, 443);
    ck_assert(!lines_accepts(&d, &lo, false));
}
END_TEST

START_TEST(pick_exit)
{
    struct desc ex[4];
    struct stream_target t = v4(8, 8, 8, 8, 443);
    unsigned hits[4] = {0};

    exit_desc(&ex[0], "accept *:80, reject *:*");
    exit_desc(&ex[1], "accept *:443, reject *:*");
    exit_desc(&ex[2], NULL);
    exit_desc(&ex[3], "accept *:443, accept *:80, reject *:*");
    for (int i = 0; i < 400; i++) {
        int k = lines_pick_exit(ex, 4, &t, false, false);

        ck_assert(k == 1 || k == 3);
        hits[k]++;
    }
    /* Uniform between the two that take it: each well over a quarter. */
    ck_assert_uint_gt(hits[1], 100);
    ck_assert_uint_gt(hits[3], 100);
    t.port = 80;
    for (int i = 0; i < 50; i++) {
        int k = lines_pick_exit(ex, 4, &t, false, false);

        ck_assert(k == 0 || k == 3);
    }
    t.port = 22;
    ck_assert_int_eq(lines_pick_exit(ex, 4, &t, false, false), -1);
    ck_assert_int_eq(lines_pick_exit(ex, 0, &t, false, false), -1);
    t = v4(10, 0, 0, 1, 443); /* private: no exit takes it here */
    ck_assert_int_eq(lines_pick_exit(ex, 4, &t, false, false), -1);
    ck_assert_int_ge(lines_pick_exit(ex, 4, &t, true, false), 1);
}
END_TEST

static Suite *lines_suite(void)
{
    Suite *s = suite_create("lines");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, class_keys);
    tcase_add_test(tc, accepts);
    tcase_add_test(tc, pick_exit);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(lines_suite)
