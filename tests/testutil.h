/* tests/testutil.h - helpers shared by the Check suites: a suite runner that
 * never forks (GCC's OpenMP runtime is not fork-safe) and returns a failing
 * exit status when any check fails. */
#ifndef DPO_TESTUTIL_H
#define DPO_TESTUTIL_H

#include <check.h>
#include <stdlib.h>

static int testutil_run(Suite *s) {
    SRunner *sr = srunner_create(s);
    int failed;
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
