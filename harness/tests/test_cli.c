/* The connfault command line, end to end: exit statuses, error messages, report files,
 * refusing non-loopback targets, --target-cmd and --target-pid. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#ifndef CONNFAULT_BIN
#define CONNFAULT_BIN "connfault"
#endif
#ifndef CONNFAULT_SERVER_BIN
#define CONNFAULT_SERVER_BIN "connfault-server"
#endif

static struct ts_proc res; /* the last run's */

/* Run argv with a deadline; its status and output in res. */
static void run(const char *const *argv, int timeout_ms)
{
    if (res.out)
        ts_proc_free(&res);
    const struct ts_run_opts opts = {.timeout_ms = timeout_ms};
    ck_assert_int_eq(ts_run(&res, argv, &opts), 0);
    ck_assert_msg(!res.timed_out, "%s did not finish within %d ms", argv[1], timeout_ms);
}

/* A usage error (exit status 2) whose message contains expect. */
static void expect_usage_error(const char *const *argv, const char *expect)
{
    run(argv, 10000);
    ck_assert_int_eq(res.status, 2);
    ck_assert_msg(strstr(res.err, expect) != NULL, "expected \"%s\" in stderr: %s", expect,
                  res.err);
}

START_TEST(unknown_flag_is_a_usage_error)
{
    expect_usage_error(TS_ARGV(CONNFAULT_BIN, "run", "--no-such-flag"),
                       "unknown option '--no-such-flag'");
}
END_TEST

START_TEST(non_loopback_host_is_refused)
{
    expect_usage_error(TS_ARGV(CONNFAULT_BIN, "run", "--host", "192.0.2.7", "--port", "80"),
                       "refused");
    ck_assert_ptr_nonnull(strstr(res.err, "loopback"));
}
END_TEST

START_TEST(bad_values_name_the_flag)
{
    expect_usage_error(TS_ARGV(CONNFAULT_BIN, "run", "--grace", "soon"),
                       "--grace: invalid value 'soon'");
    expect_usage_error(TS_ARGV(CONNFAULT_BIN, "run", "--target-pid", "1"),
                       "--target-pid needs --port");
    /* a command that cannot be told its port: where it listens must be given, once */
    expect_usage_error(TS_ARGV(CONNFAULT_BIN, "run", "--target-cmd", "/bin/true"),
                       "--target-cmd has no {port} and no --port says where it listens");
    expect_usage_error(TS_ARGV(CONNFAULT_BIN, "run", "--target-cmd", "/bin/true", "--port", "18080",
                               "--jobs", "2"),
                       "--jobs above 1 needs {port} in --target-cmd");
    expect_usage_error(TS_ARGV(CONNFAULT_BIN, "run", "--probe-raw", "PING\\q"), "unknown escape");
}
END_TEST

/* Every bad value names the flag and what it accepts (zero used to fail silently). */
START_TEST(bad_values_name_the_allowed_range)
{
    expect_usage_error(
        TS_ARGV(CONNFAULT_BIN, "run", "--target-pid", "0"),
        "--target-pid: invalid value '0' (expected a whole number from 1 to 2147483647)");
    expect_usage_error(TS_ARGV(CONNFAULT_BIN, "run", "--cpu-threshold", "0"),
                       "--cpu-threshold: invalid value '0'");
    expect_usage_error(TS_ARGV(CONNFAULT_BIN, "replay", "--server-port", "0", "x.pcap"),
                       "--server-port: invalid value '0'");
    expect_usage_error(TS_ARGV(CONNFAULT_BIN, "run", "--cpu-window", "0.05"),
                       "(expected seconds from 0.1 to 86400");
    /* --speed is replay's only */
    expect_usage_error(TS_ARGV(CONNFAULT_BIN, "run", "--speed", "2"), "unknown option '--speed'");
}
END_TEST

START_TEST(unknown_scenario_is_a_usage_error)
{
    expect_usage_error(TS_ARGV(CONNFAULT_BIN, "run", "no-such-scenario"),
                       "unknown scenario 'no-such-scenario'");
}
END_TEST

START_TEST(scenario_file_error_names_file_and_line)
{
    char dir[64], path[256];
    ck_assert_int_eq(ts_tmpdir_create(dir, sizeof(dir), "connfault-cli"), 0);
    snprintf(path, sizeof(path), "%s/broken.ini", dir);
    ck_assert_int_eq(
        ts_write_file(path,
                      "[scenario]\ndescription = x\n[clients a]\ncount = 3\nend = sideways\n"),
        0);
    run(TS_ARGV(CONNFAULT_BIN, "run", path), 10000);
    ck_assert_int_eq(ts_tmpdir_remove(dir), 0);
    ck_assert_int_eq(res.status, 2);
    char expect[300];
    snprintf(expect, sizeof(expect), "%s:5:", path);
    ck_assert_msg(strstr(res.err, expect) != NULL, "stderr: %s", res.err);
}
END_TEST

START_TEST(list_names_every_builtin_scenario)
{
    run(TS_ARGV(CONNFAULT_BIN, "list"), 10000);
    ck_assert_int_eq(res.status, 0);
    const char *names[] = {"abort-mid-response", "burst-abort", "fd-exhaustion",
                           "slowloris",          "zero-window", "rst-mid-response"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_msg(strstr(res.out, names[i]) != NULL, "missing %s in:\n%s", names[i], res.out);
}
END_TEST

START_TEST(help_documents_exit_status)
{
    run(TS_ARGV(CONNFAULT_BIN, "run", "--help"), 10000);
    ck_assert_int_eq(res.status, 0);
    ck_assert_ptr_nonnull(strstr(res.out, "Exit status"));
    ck_assert_ptr_nonnull(strstr(res.out, "--target-cmd"));
}
END_TEST

START_TEST(passing_run_exits_0_and_writes_reports)
{
    char dir[64], xml_path[128], json_path[128], tap_path[128];
    ck_assert_int_eq(ts_tmpdir_create(dir, sizeof(dir), "connfault-cli"), 0);
    snprintf(xml_path, sizeof(xml_path), "%s/test.xml", dir);
    snprintf(json_path, sizeof(json_path), "%s/test.json", dir);
    snprintf(tap_path, sizeof(tap_path), "%s/test.tap", dir);
    run(TS_ARGV(CONNFAULT_BIN, "run", "--seed", "7", "--junit", xml_path, "--json", json_path,
                "--tap", tap_path, "connect-close"),
        60000);
    ck_assert_msg(res.status == 0, "status %d\nstdout:\n%s\nstderr:\n%s", res.status, res.out,
                  res.err);
    ck_assert_ptr_nonnull(strstr(res.out, "connect-close"));
    ck_assert_ptr_nonnull(strstr(res.out, "seed 7"));
    ck_assert_ptr_nonnull(strstr(res.out, "1 passed, 0 failed"));
    char *xml = ts_slurp(xml_path, NULL);
    ck_assert_ptr_nonnull(xml);
    ck_assert_ptr_nonnull(strstr(xml, "<testcase"));
    ck_assert_ptr_nonnull(strstr(xml, "connect-close"));
    char *json = ts_slurp(json_path, NULL);
    ck_assert_ptr_nonnull(json);
    ck_assert_ptr_nonnull(strstr(json, "\"seed\""));
    ck_assert_ptr_nonnull(strstr(json, "\"verdict\""));
    char *tap = ts_slurp(tap_path, NULL);
    ck_assert_ptr_nonnull(tap);
    ck_assert_str_eq(tap, "TAP version 13\n1..1\nok 1 - connect-close\n"
                          "# connfault: 1 passed, 0 failed, 0 skipped, 0 errored; seed 7\n");
    free(tap);
    free(xml);
    free(json);
    ck_assert_int_eq(ts_tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(failing_run_exits_1)
{
    /* --no-capture: a failing run would keep its capture in ./connfault-captures */
    run(TS_ARGV(CONNFAULT_BIN, "run", "--no-capture", "--seed", "7", "--bug", "sigpipe",
                "rst-mid-response"),
        60000);
    ck_assert_msg(res.status == 1, "status %d\nstdout:\n%s\nstderr:\n%s", res.status, res.out,
                  res.err);
    ck_assert_ptr_nonnull(strstr(res.out, "FAIL"));
    ck_assert_ptr_nonnull(strstr(res.out, "SIGPIPE"));
}
END_TEST

START_TEST(target_that_exits_at_once_is_a_setup_error)
{
    run(TS_ARGV(CONNFAULT_BIN, "run", "--target-cmd", "echo starting on {port}; exit 3",
                "connect-close"),
        30000);
    ck_assert_int_eq(res.status, 2);
    ck_assert_msg(strstr(res.err, "exited with status 3") != NULL, "stderr: %s", res.err);
}
END_TEST

START_TEST(target_cmd_with_port_placeholder)
{
    run(TS_ARGV(CONNFAULT_BIN, "run", "--seed", "3", "--target-cmd",
                CONNFAULT_SERVER_BIN " --port {port} --header-timeout 1 --send-timeout 1 -q",
                "half-close"),
        60000);
    ck_assert_msg(res.status == 0, "status %d\nstdout:\n%s\nstderr:\n%s", res.status, res.out,
                  res.err);
}
END_TEST

/* Attach: start a server ourselves, give connfault its pid and port. */
START_TEST(target_pid_attaches_to_a_running_server)
{
    struct ts_proc srv;
    const struct ts_run_opts srv_opts = {.timeout_ms = 120000, .discard_stderr = true};
    int srv_port;
    ck_assert_int_eq(
        ts_server_start(&srv,
                        TS_ARGV(CONNFAULT_SERVER_BIN, "--port", "0", "--header-timeout", "1", "-q"),
                        &srv_opts, &srv_port),
        0);
    char port[16], pid[16];
    snprintf(port, sizeof(port), "%d", srv_port);
    snprintf(pid, sizeof(pid), "%d", (int)srv.pid);
    run(TS_ARGV(CONNFAULT_BIN, "run", "--target-pid", pid, "--port", port, "--seed", "5",
                "connect-close"),
        60000);
    ts_proc_free(&srv);
    ck_assert_msg(res.status == 0, "status %d\nstdout:\n%s\nstderr:\n%s", res.status, res.out,
                  res.err);
    ck_assert_ptr_nonnull(strstr(res.out, "PASS"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli");
    TCase *fast = tcase_create("usage");
    tcase_add_test(fast, unknown_flag_is_a_usage_error);
    tcase_add_test(fast, non_loopback_host_is_refused);
    tcase_add_test(fast, bad_values_name_the_flag);
    tcase_add_test(fast, bad_values_name_the_allowed_range);
    tcase_add_test(fast, unknown_scenario_is_a_usage_error);
    tcase_add_test(fast, scenario_file_error_names_file_and_line);
    tcase_add_test(fast, list_names_every_builtin_scenario);
    tcase_add_test(fast, help_documents_exit_status);
    suite_add_tcase(s, fast);
    TCase *runs = tcase_create("runs");
    tcase_set_timeout(runs, 90);
    tcase_add_test(runs, passing_run_exits_0_and_writes_reports);
    tcase_add_test(runs, failing_run_exits_1);
    tcase_add_test(runs, target_that_exits_at_once_is_a_setup_error);
    tcase_add_test(runs, target_cmd_with_port_placeholder);
    tcase_add_test(runs, target_pid_attaches_to_a_running_server);
    suite_add_tcase(s, runs);
    return ts_run_suite(s);
}
