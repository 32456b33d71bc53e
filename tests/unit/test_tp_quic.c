#include <check.h>

#include "core/transport.h"

#include "check_main.h"

START_TEST(test_registered)
{
    ck_assert_ptr_nonnull(tp_lookup("quic"));
}
END_TEST

static Suite *tp_quic_suite(void)
{
    Suite *s = suite_create("tp_quic");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_registered);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(tp_quic_suite)
