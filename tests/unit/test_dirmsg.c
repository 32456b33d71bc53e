/* test_dirmsg.c - placeholder until the module's tests are written. */
#include <check.h>

#include "check_main.h"

START_TEST(placeholder)
{
    ck_assert_int_eq(1, 1);
}
END_TEST

static Suite *dirmsg_suite(void)
{
    Suite *s = suite_create("dirmsg");
    TCase *tc = tcase_create("dirmsg");
    tcase_add_test(tc, placeholder);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(dirmsg_suite)
