/* test_samples.c - the ring of recent values and its quantiles (lib/samples.c). */
#include <check.h>
#include <string.h>

#include "lib/samples.h"

#include "check_main.h"

/* Values 1..n added in the given order; the quantile asked; the answer. */
static const struct q_case {
    unsigned n;
    bool reversed;
    unsigned q;
    uint32_t want;
} q_cases[] = {
    {0, false, 500, 0}, /* nothing held */
    {1, false, 500, 1},     {1, false, 1000, 1},
    {1, false, 0, 1},       {4, false, 500, 2}, /* nearest rank: ceil(0.5 x 4) = 2nd */
    {5, true, 500, 3},                          /* order of arrival does not matter */
    {10, false, 900, 9},    {10, false, 1000, 10},
    {10, false, 1001, 10}, /* capped at max */
    {100, true, 990, 99},   {256, false, 500, 128},
    {300, false, 0, 45}, /* 1..44 were forgotten: the ring holds 45..300 */
    {300, false, 500, 172}, {300, false, 1000, 300},
};

START_TEST(test_quantiles)
{
    const struct q_case *t = &q_cases[_i];
    struct samples s;

    memset(&s, 0, sizeof(s));
    for (unsigned i = 0; i < t->n; i++)
        samples_add(&s, t->reversed ? t->n - i : i + 1);
    ck_assert_uint_eq(s.n, t->n < SAMPLES_MAX ? t->n : SAMPLES_MAX);
    ck_assert_msg(samples_quantile(&s, t->q) == t->want, "n %u q %u: got %u, want %u", t->n, t->q,
                  samples_quantile(&s, t->q), t->want);
}
END_TEST

static Suite *samples_suite(void)
{
    Suite *s = suite_create("samples");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_quantiles, 0, (int)(sizeof(q_cases) / sizeof(q_cases[0])));
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(samples_suite)
