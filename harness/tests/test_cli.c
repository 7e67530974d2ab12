/* The connfault command line, end to end: exit statuses, error messages, report files,
 * refusing non-loopback targets, --target-cmd and --target-pid. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CONNFAULT_BIN
#define CONNFAULT_BIN "connfault"
#endif
#ifndef CONNFAULT_SERVER_BIN
#define CONNFAULT_SERVER_BIN "connfault-server"
#endif

struct result {
    int status; /* exit status, or 128 + signal */
    char out[65536];
    char err[16384];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run argv with a deadline; collect stdout and stderr. */
static void run(char *const argv[], uint64_t timeout_ms, struct result *r)
{
    int out[2], err[2];
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    size_t no = 0, ne = 0;
    struct pollfd p[2] = {{.fd = out[0], .events = POLLIN}, {.fd = err[0], .events = POLLIN}};
    uint64_t deadline = now_ms() + timeout_ms;
    int open_pipes = 2;
    while (open_pipes > 0 && now_ms() < deadline) {
        if (poll(p, 2, (int)(deadline - now_ms())) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !p[i].revents)
                continue;
            char *buf = i == 0 ? r->out : r->err;
            size_t *len = i == 0 ? &no : &ne;
            size_t cap = i == 0 ? sizeof(r->out) : sizeof(r->err);
            ssize_t n = read(p[i].fd, buf + *len, cap - 1 - *len);
            if (n <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open_pipes--;
            } else {
                *len += (size_t)n;
            }
        }
    }
    r->out[no] = r->err[ne] = '\0';
    if (open_pipes > 0)
        kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    for (int i = 0; i < 2; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    ck_assert_msg(open_pipes == 0, "%s did not finish within %llu ms", argv[1],
                  (unsigned long long)timeout_ms);
}

static struct result res;

START_TEST(unknown_flag_is_a_usage_error)
{
    char *argv[] = {CONNFAULT_BIN, "run", "--no-such-flag", NULL};
    run(argv, 10000, &res);
    ck_assert_int_eq(res.status, 2);
    ck_assert_ptr_nonnull(strstr(res.err, "unknown option '--no-such-flag'"));
}
END_TEST

START_TEST(non_loopback_host_is_refused)
{
    char *argv[] = {CONNFAULT_BIN, "run", "--host", "192.0.2.7", "--port", "80", NULL};
    run(argv, 10000, &res);
    ck_assert_int_eq(res.status, 2);
    ck_assert_ptr_nonnull(strstr(res.err, "refused"));
    ck_assert_ptr_nonnull(strstr(res.err, "loopback"));
}
END_TEST

START_TEST(bad_values_name_the_flag)
{
    char *a1[] = {CONNFAULT_BIN, "run", "--grace", "soon", NULL};
    run(a1, 10000, &res);
    ck_assert_int_eq(res.status, 2);
    ck_assert_ptr_nonnull(strstr(res.err, "--grace: invalid value 'soon'"));
    char *a2[] = {CONNFAULT_BIN, "run", "--target-pid", "1", NULL};
    run(a2, 10000, &res);
    ck_assert_int_eq(res.status, 2);
    ck_assert_ptr_nonnull(strstr(res.err, "--target-pid needs --port"));
    char *a3[] = {CONNFAULT_BIN, "run", "--probe-raw", "PING\\q", NULL};
    run(a3, 10000, &res);
    ck_assert_int_eq(res.status, 2);
    ck_assert_ptr_nonnull(strstr(res.err, "unknown escape"));
}
END_TEST

/* A usage error (exit status 2) whose message contains expect. */
static void expect_usage_error(char *const argv[], const char *expect)
{
    run(argv, 10000, &res);
    ck_assert_int_eq(res.status, 2);
    ck_assert_msg(strstr(res.err, expect) != NULL, "expected \"%s\" in stderr: %s", expect,
                  res.err);
}

/* Every bad value names the flag and what it accepts (zero used to fail silently). */
START_TEST(bad_values_name_the_allowed_range)
{
    char *a1[] = {CONNFAULT_BIN, "run", "--target-pid", "0", NULL};
    expect_usage_error(
        a1, "--target-pid: invalid value '0' (expected a whole number from 1 to 2147483647)");
    char *a2[] = {CONNFAULT_BIN, "run", "--cpu-threshold", "0", NULL};
    expect_usage_error(a2, "--cpu-threshold: invalid value '0'");
    char *a3[] = {CONNFAULT_BIN, "replay", "--server-port", "0", "x.pcap", NULL};
    expect_usage_error(a3, "--server-port: invalid value '0'");
    char *a4[] = {CONNFAULT_BIN, "run", "--cpu-window", "0.05", NULL};
    expect_usage_error(a4, "(expected seconds from 0.1 to 86400");
    char *a5[] = {CONNFAULT_BIN, "run", "--speed", "2", NULL}; /* replay's only */
    expect_usage_error(a5, "unknown option '--speed'");
}
END_TEST

START_TEST(unknown_scenario_is_a_usage_error)
{
    char *argv[] = {CONNFAULT_BIN, "run", "no-such-scenario", NULL};
    run(argv, 10000, &res);
    ck_assert_int_eq(res.status, 2);
    ck_assert_ptr_nonnull(strstr(res.err, "unknown scenario 'no-such-scenario'"));
}
END_TEST

START_TEST(scenario_file_error_names_file_and_line)
{
    char dir[] = "/tmp/connfault-cli-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/broken.ini", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("[scenario]\ndescription = x\n[clients a]\ncount = 3\nend = sideways\n", f);
    fclose(f);
    char *argv[] = {CONNFAULT_BIN, "run", path, NULL};
    run(argv, 10000, &res);
    unlink(path);
    rmdir(dir);
    ck_assert_int_eq(res.status, 2);
    char expect[300];
    snprintf(expect, sizeof(expect), "%s:5:", path);
    ck_assert_msg(strstr(res.err, expect) != NULL, "stderr: %s", res.err);
}
END_TEST

START_TEST(list_names_every_builtin_scenario)
{
    char *argv[] = {CONNFAULT_BIN, "list", NULL};
    run(argv, 10000, &res);
    ck_assert_int_eq(res.status, 0);
    const char *names[] = {"abort-mid-response", "burst-abort", "fd-exhaustion",
                           "slowloris",          "zero-window", "rst-mid-response"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_msg(strstr(res.out, names[i]) != NULL, "missing %s in:\n%s", names[i], res.out);
}
END_TEST

START_TEST(help_documents_exit_status)
{
    char *argv[] = {CONNFAULT_BIN, "run", "--help", NULL};
    run(argv, 10000, &res);
    ck_assert_int_eq(res.status, 0);
    ck_assert_ptr_nonnull(strstr(res.out, "Exit status"));
    ck_assert_ptr_nonnull(strstr(res.out, "--target-cmd"));
}
END_TEST

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

START_TEST(passing_run_exits_0_and_writes_reports)
{
    char *argv[] = {CONNFAULT_BIN,   "run",
                    "--seed",        "7",
                    "--junit",       "/tmp/connfault-cli-test.xml",
                    "--json",        "/tmp/connfault-cli-test.json",
                    "connect-close", NULL};
    run(argv, 60000, &res);
    ck_assert_msg(res.status == 0, "status %d\nstdout:\n%s\nstderr:\n%s", res.status, res.out,
                  res.err);
    ck_assert_ptr_nonnull(strstr(res.out, "connect-close"));
    ck_assert_ptr_nonnull(strstr(res.out, "seed 7"));
    ck_assert_ptr_nonnull(strstr(res.out, "1 passed, 0 failed"));
    char *xml = slurp("/tmp/connfault-cli-test.xml");
    ck_assert_ptr_nonnull(xml);
    ck_assert_ptr_nonnull(strstr(xml, "<testcase"));
    ck_assert_ptr_nonnull(strstr(xml, "connect-close"));
    char *json = slurp("/tmp/connfault-cli-test.json");
    ck_assert_ptr_nonnull(json);
    ck_assert_ptr_nonnull(strstr(json, "\"seed\""));
    ck_assert_ptr_nonnull(strstr(json, "\"verdict\""));
    unlink("/tmp/connfault-cli-test.xml");
    unlink("/tmp/connfault-cli-test.json");
}
END_TEST

START_TEST(failing_run_exits_1)
{
    /* --no-capture: a failing run would keep its capture in ./connfault-captures */
    char *argv[] = {CONNFAULT_BIN, "run",     "--no-capture",     "--seed", "7",
                    "--bug",       "sigpipe", "rst-mid-response", NULL};
    run(argv, 60000, &res);
    ck_assert_msg(res.status == 1, "status %d\nstdout:\n%s\nstderr:\n%s", res.status, res.out,
                  res.err);
    ck_assert_ptr_nonnull(strstr(res.out, "FAIL"));
    ck_assert_ptr_nonnull(strstr(res.out, "SIGPIPE"));
}
END_TEST

START_TEST(target_that_exits_at_once_is_a_setup_error)
{
    char *argv[] = {CONNFAULT_BIN,           "run",           "--target-cmd",
                    "echo starting; exit 3", "connect-close", NULL};
    run(argv, 30000, &res);
    ck_assert_int_eq(res.status, 2);
    ck_assert_msg(strstr(res.err, "exited with status 3") != NULL, "stderr: %s", res.err);
}
END_TEST

START_TEST(target_cmd_with_port_placeholder)
{
    char *argv[] = {CONNFAULT_BIN,
                    "run",
                    "--seed",
                    "3",
                    "--target-cmd",
                    CONNFAULT_SERVER_BIN " --port {port} --header-timeout 1 --send-timeout 1 -q",
                    "half-close",
                    NULL};
    run(argv, 60000, &res);
    ck_assert_msg(res.status == 0, "status %d\nstdout:\n%s\nstderr:\n%s", res.status, res.out,
                  res.err);
}
END_TEST

/* Attach: start a server ourselves, give connfault its pid and port. */
START_TEST(target_pid_attaches_to_a_running_server)
{
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    pid_t srv = fork();
    if (srv == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(CONNFAULT_SERVER_BIN, CONNFAULT_SERVER_BIN, "--port", "0", "--header-timeout", "1",
              "-q", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[128] = "";
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    ck_assert_int_eq(poll(&p, 1, 5000), 1);
    ssize_t n = read(out[0], line, sizeof(line) - 1);
    ck_assert_int_gt(n, 0);
    line[n] = '\0';
    char *colon = strrchr(line, ':');
    ck_assert_ptr_nonnull(colon);
    char port[16], pid[16];
    snprintf(port, sizeof(port), "%d", atoi(colon + 1));
    snprintf(pid, sizeof(pid), "%d", (int)srv);
    char *argv[] = {CONNFAULT_BIN, "run", "--target-pid",  pid, "--port", port,
                    "--seed",      "5",   "connect-close", NULL};
    run(argv, 60000, &res);
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    close(out[0]);
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
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
