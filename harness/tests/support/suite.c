/* Running a test program's suite: see support.h for the contract. */
#include "support.h"

#include <check.h>
#include <stdlib.h>
#include <unistd.h>

int ts_run_suite(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void ts_need_program(const char *path, const char *package)
{
    ck_assert_msg(access(path, X_OK) == 0,
                  "%s is not installed (package %s): run ci/setup, which installs it", path,
                  package);
}
