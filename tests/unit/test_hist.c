/* test_hist.c - fixed-bucket histograms of durations (lib/hist.c). */
#include <check.h>
#include <string.h>

#include "lib/hist.h"

#include "check_main.h"

START_TEST(test_bounds_ascend)
{
    for (unsigned i = 1; i < HIST_BOUNDS; i++)
        ck_assert_uint_gt(hist_bound_us[i], hist_bound_us[i - 1]);
    ck_assert_uint_eq(hist_bound_us[0], 100);
    ck_assert_uint_eq(hist_bound_us[HIST_BOUNDS - 1], 10000000);
}
END_TEST

/* A bound is inclusive (le): a value equal to it is in its bucket, one
 * more is in the next; past the last bound is the overflow bucket. */
START_TEST(test_buckets)
{
    struct hist h;

    memset(&h, 0, sizeof(h));
    hist_add(&h, 0);
    hist_add(&h, 100);
    hist_add(&h, 101);
    hist_add(&h, 250);
    hist_add(&h, 10000000);
    hist_add(&h, 10000001);
    hist_add(&h, UINT64_C(1) << 40);
    ck_assert_uint_eq(h.n[0], 2);
    ck_assert_uint_eq(h.n[1], 2);
    ck_assert_uint_eq(h.n[HIST_BOUNDS - 1], 1);
    ck_assert_uint_eq(h.n[HIST_BOUNDS], 2);
    ck_assert_uint_eq(hist_count(&h), 7);
    ck_assert_uint_eq(h.sum_us, 0 + 100 + 101 + 250 + 10000000 + 10000001 + (UINT64_C(1) << 40));
}
END_TEST

START_TEST(test_empty)
{
    struct hist h;

    memset(&h, 0, sizeof(h));
    ck_assert_uint_eq(hist_count(&h), 0);
}
END_TEST

static Suite *hist_suite(void)
{
    Suite *s = suite_create("hist");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_bounds_ascend);
    tcase_add_test(tc, test_buckets);
    tcase_add_test(tc, test_empty);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(hist_suite)
