/* test_bucket.c - the token buckets of lib/bucket.h: whole requests
 * (ovl_bucket_take) and bytes (struct ovl_tbucket): rates, bursts, debt,
 * clocks that jump either way, huge gaps, no limit, and sums that must not
 * overflow. */
#include <check.h>
#include <stdint.h>

#include "lib/bucket.h"

#include "check_main.h"

START_TEST(test_take_rate_burst)
{
    uint64_t tat = 0;
    unsigned got = 0;

    for (int i = 0; i < 10; i++)
        got += ovl_bucket_take(&tat, 10, 3, 1000);
    ck_assert_uint_eq(got, 3); /* the burst at once */
    ck_assert(!ovl_bucket_take(&tat, 10, 3, 1099));
    ck_assert(ovl_bucket_take(&tat, 10, 3, 1100)); /* one every 100 ms */
    ck_assert(!ovl_bucket_take(&tat, 10, 3, 1100));
    ck_assert(ovl_bucket_take(&tat, 10, 0, 100000)); /* burst 0 counts as 1 */
    ck_assert(!ovl_bucket_take(&tat, 10, 0, 100000));
}
END_TEST

START_TEST(test_starts_full)
{
    struct ovl_tbucket b = {0};

    ovl_tb_set(&b, 1000, 500, 10000);
    ck_assert_int_eq(b.tokens, 500);
    ovl_tb_charge(&b, 500);
    ck_assert(!ovl_tb_empty(&b)); /* zero is not a debt */
    ovl_tb_charge(&b, 1);
    ck_assert(ovl_tb_empty(&b));
    ck_assert_int_eq(b.tokens, -1);
    ovl_tb_refill(&b, 10001); /* 1 byte a ms */
    ck_assert_int_eq(b.tokens, 0);
    ck_assert(!ovl_tb_empty(&b));
}
END_TEST

START_TEST(test_rate_exact)
{
    struct ovl_tbucket b = {0};

    /* 333 bytes a second, counted 1 ms at a time: no thousandth lost. */
    ovl_tb_set(&b, 333, 1000, 0);
    ovl_tb_charge(&b, 1000);
    for (uint64_t t = 1; t <= 1000; t++)
        ovl_tb_refill(&b, t);
    ck_assert_int_eq(b.tokens, 333);
    /* 1 byte a second: nothing for 999 ms, the byte at 1000. */
    ovl_tb_set(&b, 1, 10, 5000);
    ovl_tb_charge(&b, b.tokens);
    ovl_tb_refill(&b, 5999);
    ck_assert_int_eq(b.tokens, 0);
    ovl_tb_refill(&b, 6000);
    ck_assert_int_eq(b.tokens, 1);
}
END_TEST

START_TEST(test_burst_caps)
{
    struct ovl_tbucket b = {0};

    ovl_tb_set(&b, 1000, 300, 0);
    ovl_tb_charge(&b, 300);
    ovl_tb_refill(&b, 250);
    ck_assert_int_eq(b.tokens, 250);
    ovl_tb_refill(&b, 100000); /* idle for long: full, no more */
    ck_assert_int_eq(b.tokens, 300);
    ck_assert_uint_eq(b.part, 0);
    /* A burst of 0 is one second of the rate. */
    ovl_tb_set(&b, 4096, 0, 0);
    ck_assert_uint_eq(b.burst, 4096);
}
END_TEST

START_TEST(test_debt_paid)
{
    struct ovl_tbucket b = {0};

    /* A charge larger than the bucket is owed, and waited for. */
    ovl_tb_set(&b, 1000, 100, 0);
    ovl_tb_charge(&b, 600);
    ck_assert_int_eq(b.tokens, -500);
    ck_assert_uint_eq(ovl_tb_wait_ms(&b, 100), 600);
    ck_assert_uint_eq(ovl_tb_wait_ms(&b, 5000), 600); /* at most the burst */
    ovl_tb_refill(&b, 599);
    ck_assert_int_eq(b.tokens, 99);
    ck_assert_uint_eq(ovl_tb_wait_ms(&b, 100), 1);
    ovl_tb_refill(&b, 600);
    ck_assert_int_eq(b.tokens, 100);
    ck_assert_uint_eq(ovl_tb_wait_ms(&b, 100), 0);
}
END_TEST

START_TEST(test_clock_backward)
{
    struct ovl_tbucket b = {0};

    ovl_tb_set(&b, 1000, 1000, 10000);
    ovl_tb_charge(&b, 1100);
    ovl_tb_refill(&b, 5000); /* back 5 s: nothing earned, no debt forgiven */
    ck_assert_int_eq(b.tokens, -100);
    ck_assert_uint_eq(b.last_ms, 5000);
    ovl_tb_refill(&b, 5050); /* counted from where the clock is now */
    ck_assert_int_eq(b.tokens, -50);
    ovl_tb_refill(&b, 5050);
    ck_assert_int_eq(b.tokens, -50);
}
END_TEST

START_TEST(test_huge_gap)
{
    struct ovl_tbucket b = {0};

    ovl_tb_set(&b, 1000, 1000, 0);
    ovl_tb_charge(&b, 5000);
    ovl_tb_refill(&b, UINT64_MAX); /* forward past anything: full, no overflow */
    ck_assert_int_eq(b.tokens, 1000);
    ovl_tb_refill(&b, 0); /* and all the way back */
    ck_assert_int_eq(b.tokens, 1000);
    ck_assert_uint_eq(b.last_ms, 0);
}
END_TEST

START_TEST(test_no_limit)
{
    struct ovl_tbucket b = {0};

    ovl_tb_set(&b, 0, 0, 0);
    ck_assert_uint_eq(b.burst, 0);
    ovl_tb_charge(&b, UINT64_MAX);
    ck_assert(!ovl_tb_empty(&b));
    ck_assert_int_eq(b.tokens, 0);
    ck_assert_uint_eq(ovl_tb_wait_ms(&b, 1000), 0);
    ovl_tb_refill(&b, 123456);
    ck_assert(!ovl_tb_empty(&b));
    /* A limit set later starts with a full bucket... */
    ovl_tb_set(&b, 100, 50, 200000);
    ck_assert_int_eq(b.tokens, 50);
    ck_assert_uint_eq(b.last_ms, 200000);
    /* ... and one taken away forgets the debt. */
    ovl_tb_charge(&b, 500);
    ovl_tb_set(&b, 0, 0, 200001);
    ck_assert(!ovl_tb_empty(&b));
}
END_TEST

START_TEST(test_live_change)
{
    struct ovl_tbucket b = {0};

    ovl_tb_set(&b, 1000, 1000, 0);
    ovl_tb_charge(&b, 200);
    ovl_tb_set(&b, 100, 300, 10); /* tokens earned at the old rate first */
    ck_assert_int_eq(b.tokens, 300);
    ck_assert_uint_eq(b.rate, 100);
    ovl_tb_set(&b, 100, 10000, 10); /* a larger burst does not add tokens */
    ck_assert_int_eq(b.tokens, 300);
    ovl_tb_charge(&b, 1300);
    ovl_tb_set(&b, 2000, 10000, 10); /* a debt stays owed */
    ck_assert_int_eq(b.tokens, -1000);
    ovl_tb_refill(&b, 510);
    ck_assert_int_eq(b.tokens, 0);
}
END_TEST

START_TEST(test_overflow)
{
    struct ovl_tbucket b = {0};

    ovl_tb_set(&b, UINT64_MAX, UINT64_MAX, 0);
    ck_assert_uint_eq(b.rate, OVL_TB_MAX);
    ck_assert_uint_eq(b.burst, OVL_TB_MAX);
    for (int i = 0; i < 8; i++)
        ovl_tb_charge(&b, UINT64_MAX);
    ck_assert_int_eq(b.tokens, -(int64_t)OVL_TB_MAX); /* debts are capped too */
    ck_assert_uint_le(ovl_tb_wait_ms(&b, OVL_TB_MAX), 2001);
    ovl_tb_refill(&b, 1000);
    ck_assert_int_eq(b.tokens, 0);
    ovl_tb_refill(&b, 1999);
    ck_assert_int_lt(b.tokens, (int64_t)OVL_TB_MAX);
    ck_assert_int_gt(b.tokens, 0);
    ovl_tb_refill(&b, 2000);
    ck_assert_int_eq(b.tokens, (int64_t)OVL_TB_MAX);
    /* The smallest rate with the largest debt. */
    ovl_tb_set(&b, 1, OVL_TB_MAX, 0);
    ovl_tb_charge(&b, UINT64_MAX);
    ovl_tb_charge(&b, UINT64_MAX);
    ck_assert_uint_gt(ovl_tb_wait_ms(&b, 1), 0);
    ovl_tb_refill(&b, UINT64_MAX - 1);
    ck_assert_int_gt(b.tokens, 0);
}
END_TEST

static Suite *bucket_suite(void)
{
    Suite *s = suite_create("bucket");
    TCase *tc = tcase_create("bucket");

    tcase_add_test(tc, test_take_rate_burst);
    tcase_add_test(tc, test_starts_full);
    tcase_add_test(tc, test_rate_exact);
    tcase_add_test(tc, test_burst_caps);
    tcase_add_test(tc, test_debt_paid);
    tcase_add_test(tc, test_clock_backward);
    tcase_add_test(tc, test_huge_gap);
    tcase_add_test(tc, test_no_limit);
    tcase_add_test(tc, test_live_change);
    tcase_add_test(tc, test_overflow);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(bucket_suite)
