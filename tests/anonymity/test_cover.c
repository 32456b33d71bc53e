/* test_cover.c - the timing of drop cover (suite "anonymity").
 *
 * Cover cells leave at the jumps of a Poisson process: their gaps must
 * follow the configured exponential. A Kolmogorov-Smirnov test over 20,000
 * gaps drawn by ovl_random_exp_ms (what the client's cover timer waits)
 * must not reject it (p > 0.01); a gap distribution that is not
 * exponential (uniform, same mean) must be rejected, so the test can fail.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/crypto.h"
#include "check_main.h"

#define N    20000
#define MEAN 1000 /* ms: gaps are whole milliseconds */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* KS distance between the sorted gaps (floored ms) and the exponential of
 * mean MEAN: a floored value k stands for [k, k + 1). */
static double ks_distance(uint32_t *g)
{
    double d = 0;

    qsort(g, N, sizeof(*g), cmp_u32);
    for (size_t i = 0; i < N; i++) {
        double lo = 1 - exp(-(double)g[i] / MEAN), hi = 1 - exp(-((double)g[i] + 1) / MEAN);

        /* The empirical CDF steps from i/N to (i+1)/N inside [g, g + 1). */
        if (fabs((double)(i + 1) / N - hi) > d)
            d = fabs((double)(i + 1) / N - hi);
        if (fabs((double)i / N - lo) > d)
            d = fabs((double)i / N - lo);
    }
    return d;
}

/* Critical KS distance for p = 0.01 (asymptotic: 1.628 / sqrt(n)). */
static double ks_critical(void)
{
    return 1.628 / sqrt((double)N);
}

START_TEST(test_gaps_exponential)
{
    uint32_t *g = malloc(N * sizeof(*g));
    double d = 1, crit = ks_critical();

    ck_assert_ptr_nonnull(g);
    /* A fair draw is rejected one time in a hundred: try a second one then. */
    for (int attempt = 0; attempt < 2 && d >= crit; attempt++) {
        double sum = 0;

        for (size_t i = 0; i < N; i++) {
            g[i] = ovl_random_exp_ms(MEAN);
            sum += g[i];
        }
        d = ks_distance(g);
        printf("exponential gaps: mean %.1f ms, KS distance %.4f (critical %.4f)\n", sum / N, d,
               crit);
    }
    ck_assert_msg(d < crit, "cover gaps are not exponential: D = %g", d);
    free(g);
}
END_TEST

/* The test has teeth: uniform gaps of the same mean are told apart. */
START_TEST(test_uniform_rejected)
{
    uint32_t *g = malloc(N * sizeof(*g));
    double d;

    ck_assert_ptr_nonnull(g);
    for (size_t i = 0; i < N; i++)
        g[i] = ovl_random_uniform(2 * MEAN);
    d = ks_distance(g);
    printf("uniform gaps: KS distance %.4f\n", d);
    ck_assert_msg(d > ks_critical(), "the KS test cannot tell uniform from exponential");
    free(g);
}
END_TEST

START_TEST(test_exp_edges)
{
    ck_assert_uint_eq(ovl_random_exp_ms(0), 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_le(ovl_random_exp_ms(10), 1000);
}
END_TEST

static Suite *cover_suite(void)
{
    Suite *s = suite_create("cover");
    TCase *tc = tcase_create("cover");

    tcase_add_test(tc, test_gaps_exponential);
    tcase_add_test(tc, test_uniform_rejected);
    tcase_add_test(tc, test_exp_edges);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(cover_suite)
