/* test_admit.c - per address block accounting: blocks of addresses, the
 * inbound share, the handshake rate, the message-1 replay filter. */
#include <check.h>
#include <string.h>

#include "core/admit.h"
#include "core/node.h"

#include "check_main.h"

static void setup(struct node *n)
{
    memset(n, 0, sizeof(*n));
    node_opts_defaults(&n->opts);
    ck_assert_int_eq(admit_init(n), 0);
}

/* Which addresses share a block: /24 for IPv4, /48 for IPv6, none for names. */
static const struct {
    const char *a, *b;
    bool same;
} block_cases[] = {
    {"tcp://10.1.2.3:1", "tcp://10.1.2.200:9", true},
    {"tcp://10.1.2.3:1", "tcp://10.1.3.3:1", false},
    {"tcp://[2001:db8:1::1]:1", "tcp://[2001:db8:1:ffff::2]:1", true},
    {"tcp://[2001:db8:1::1]:1", "tcp://[2001:db8:2::1]:1", false},
    {"tcp://10.1.2.3:1", "quic://10.1.2.3:1", true},
    {"tcp://[::ffff:10.1.2.3]:1", "tcp://10.1.2.99:1", true}, /* IPv4 on a dual-stack socket */
    {"tcp://[::ffff:10.1.2.3]:1", "tcp://[::ffff:10.9.2.3]:1", false},
    {"tcp://[2001:db8::1]:1", "tcp://10.1.2.3:1", false},
};

START_TEST(test_blocks)
{
    admit_key a = admit_block_of(block_cases[_i].a), b = admit_block_of(block_cases[_i].b);

    ck_assert_uint_ne(a, 0);
    ck_assert_uint_ne(b, 0);
    ck_assert_int_eq(a == b, block_cases[_i].same);
}
END_TEST

START_TEST(test_unknown_block)
{
    ck_assert_uint_eq(admit_block_of("tcp://relay.example:1"), 0);
    ck_assert_uint_eq(admit_block_of("unknown"), 0);
}
END_TEST

/* One block gets max_links_per_block inbound slots; another block is not
 * affected; a slot given back can be taken again. */
START_TEST(test_inbound_share)
{
    struct node n;
    admit_key k = admit_block_of("tcp://192.0.2.7:1"), other = admit_block_of("tcp://198.51.100.1:1");

    setup(&n);
    n.opts.max_links_per_block = 3;
    for (int i = 0; i < 3; i++)
        ck_assert(admit_inbound(&n, k));
    ck_assert(!admit_inbound(&n, k));
    ck_assert_uint_eq(n.ctr.links_limited_block, 1);
    ck_assert(admit_inbound(&n, other));
    admit_inbound_gone(&n, k);
    ck_assert(admit_inbound(&n, k));
    ck_assert(admit_inbound(&n, 0)); /* unknown address: no per-block account */
    n.opts.max_links_per_block = 0;   /* 0: no limit */
    ck_assert(admit_inbound(&n, k));
    admit_free(&n);
}
END_TEST

/* A burst of hs_burst handshakes, then nothing until the bucket refills;
 * another block has its own bucket. */
START_TEST(test_handshake_rate)
{
    struct node n;
    admit_key k = admit_block_of("tcp://192.0.2.7:1"), other = admit_block_of("tcp://198.51.100.1:1");
    uint8_t eph[32];
    unsigned ok = 0;

    setup(&n);
    n.opts.hs_rate_per_block = 1; /* one a second: no refill within the test */
    n.opts.hs_burst_per_block = 5;
    for (int i = 0; i < 20; i++) {
        ovl_random(eph, sizeof(eph));
        if (admit_handshake(&n, k, eph) == 0)
            ok++;
    }
    ck_assert_uint_eq(ok, 5);
    ck_assert_uint_eq(n.ctr.hs_limited, 15);
    ovl_random(eph, sizeof(eph));
    ck_assert_int_eq(admit_handshake(&n, other, eph), 0);
    admit_free(&n);
}
END_TEST

/* A message 1 seen once is refused after, whatever its block; the filter
 * holds the last ADMIT_SEEN, older ones age out. */
START_TEST(test_replay_filter)
{
    struct node n;
    admit_key k = admit_block_of("tcp://192.0.2.7:1");
    uint8_t first[32], eph[32];

    setup(&n);
    n.opts.hs_rate_per_block = 0;
    ovl_random(first, sizeof(first));
    ck_assert_int_eq(admit_handshake(&n, k, first), 0);
    admit_handshake_seen(&n, first);
    ck_assert_int_eq(admit_handshake(&n, k, first), OVL_EEXIST);
    ck_assert_int_eq(admit_handshake(&n, admit_block_of("tcp://203.0.113.9:2"), first), OVL_EEXIST);
    ck_assert_uint_eq(n.ctr.hs_replays, 2);
    for (unsigned i = 0; i < ADMIT_SEEN; i++) {
        ovl_random(eph, sizeof(eph));
        admit_handshake_seen(&n, eph);
    }
    ck_assert_int_eq(admit_handshake(&n, k, first), 0);
    admit_free(&n);
    admit_free(&n); /* NULL-safe */
}
END_TEST

static Suite *admit_suite(void)
{
    Suite *s = suite_create("admit");
    TCase *tc = tcase_create("admit");

    tcase_add_loop_test(tc, test_blocks, 0, sizeof(block_cases) / sizeof(block_cases[0]));
    tcase_add_test(tc, test_unknown_block);
    tcase_add_test(tc, test_inbound_share);
    tcase_add_test(tc, test_handshake_rate);
    tcase_add_test(tc, test_replay_filter);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(admit_suite)
