/* check_main.h - the one main() of every Check runner in tests/unit/.
 *
 * A test file defines its suite function and ends with
 *     OVL_CHECK_MAIN(name_suite)
 * libsodium is initialised first (every layer above lib/ needs it); the
 * runner honours CK_VERBOSITY and CK_FORK from the environment.
 */
#ifndef OVL_TESTS_CHECK_MAIN_H
#define OVL_TESTS_CHECK_MAIN_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/crypto.h"

/* Run suite s and return the process exit status. */
static inline int ovl_check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY=verbose lists each test */
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#define OVL_CHECK_MAIN(suite_fn)                                                                   \
    int main(void)                                                                                 \
    {                                                                                              \
        if (ovl_crypto_init() != 0) {                                                              \
            fprintf(stderr, "libsodium failed to initialise\n");                                   \
            return EXIT_FAILURE;                                                                   \
        }                                                                                          \
        return ovl_check_run(suite_fn());                                                          \
    }

#endif
