/* capture: where a scenario's capture goes, and that no capture ever replaces another
 * (runs against different targets or with equal seeds used to overwrite each other).
 * Needs CAP_NET_RAW (root), as capturing does. */
#include "capture.h"
#include "result.h"
#include "support.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[PATH_MAX];

static void setup(void)
{
    ck_assert_msg(geteuid() == 0, "capturing needs CAP_NET_RAW: run this test as root");
    ck_assert_int_eq(ts_tmpdir_create(dir, sizeof(dir), "test_capture"), 0);
}

static void teardown(void)
{
    ts_tmpdir_remove(dir);
}

static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

START_TEST(test_name_has_scenario_target_and_seed_and_never_overwrites)
{
    struct capture_plan plan = {.dir = dir, .target_tag = "nginx -c /etc/x"};
    char first[PATH_MAX], second[PATH_MAX];
    struct scenario_result res = {0};

    struct capture *a = capture_plan_begin(&plan, "slowloris", 42, 18091, first, sizeof(first));
    ck_assert_ptr_nonnull(a);
    struct capture *b = capture_plan_begin(&plan, "slowloris", 42, 18091, second, sizeof(second));
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(base_of(first), "slowloris-nginx_-c__etc_x-42.pcap");
    ck_assert_str_eq(base_of(second), "slowloris-nginx_-c__etc_x-42-2.pcap");
    capture_plan_end(&plan, a, first, &res);
    ck_assert_str_eq(res.capture_path, first);
    capture_plan_end(&plan, b, second, &res);
    ck_assert_str_eq(res.capture_path, second);
    struct stat st;
    ck_assert_int_eq(stat(first, &st), 0);
    ck_assert_int_ge(st.st_size, 24); /* a pcap file header at least: written, not reserved */
}
END_TEST

/* Without --capture, a failure's capture moves to ./connfault-captures/ beside any earlier one
 * of the same name, and a passing scenario's is removed. */
START_TEST(test_failures_kept_beside_earlier_ones_passes_removed)
{
    char cwd[PATH_MAX], tmp[PATH_MAX + 8], path[PATH_MAX];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
    ck_assert_int_eq(mkdir(tmp, 0700), 0);
    ck_assert_int_eq(chdir(dir), 0);
    struct capture_plan plan = {.tmpdir = tmp, .on_failure = true};

    for (int i = 0; i < 2; i++) {
        struct scenario_result res = {.verdict = VERDICT_FAIL};
        struct capture *c = capture_plan_begin(&plan, "burst-abort", 7, 18092, path, sizeof(path));
        ck_assert_ptr_nonnull(c);
        capture_plan_end(&plan, c, path, &res);
        ck_assert_str_eq(res.capture_path, i == 0 ? "connfault-captures/burst-abort-7.pcap"
                                                  : "connfault-captures/burst-abort-7-2.pcap");
        ck_assert_int_eq(access(path, F_OK), -1); /* moved, not copied */
    }
    struct scenario_result pass = {.verdict = VERDICT_PASS};
    struct capture *c = capture_plan_begin(&plan, "burst-abort", 8, 18092, path, sizeof(path));
    ck_assert_ptr_nonnull(c);
    capture_plan_end(&plan, c, path, &pass);
    ck_assert_str_eq(pass.capture_path, "");
    ck_assert_int_eq(access(path, F_OK), -1);
    ck_assert_int_eq(access("connfault-captures/burst-abort-8.pcap", F_OK), -1);
    ck_assert_int_eq(chdir(cwd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("capture");
    TCase *tc = tcase_create("naming");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_name_has_scenario_target_and_seed_and_never_overwrites);
    tcase_add_test(tc, test_failures_kept_beside_earlier_ones_passes_removed);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
