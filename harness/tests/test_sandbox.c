/* The network sandbox (issue: silent drop): the drop rules really silence a connection or a
 * host both ways, an unprivileged user gets a sandbox or a SKIP with the reason, and a
 * harness killed with SIGKILL leaves nothing behind once `connfault cleanup` ran. */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cf_time.h"
#include "sandbox.h"
#include "support.h"

#ifndef CONNFAULT_BIN
#define CONNFAULT_BIN "connfault"
#endif

/* A connected pair on loopback: client bound to from_ip, server side accepted. */
static void connect_pair(const char *from_ip, int *client, int *server, struct sockaddr_in *caddr)
{
    int lst = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    ck_assert_int_eq(bind(lst, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lst, 4), 0);
    ck_assert_int_eq(getsockname(lst, (struct sockaddr *)&sa, &len), 0);
    *client = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in from = {.sin_family = AF_INET};
    inet_pton(AF_INET, from_ip, &from.sin_addr);
    ck_assert_int_eq(bind(*client, (struct sockaddr *)&from, sizeof(from)), 0);
    ck_assert_int_eq(connect(*client, (struct sockaddr *)&sa, sizeof(sa)), 0);
    *server = accept(lst, NULL, NULL);
    ck_assert_int_ge(*server, 0);
    close(lst);
    len = sizeof(*caddr);
    ck_assert_int_eq(getsockname(*client, (struct sockaddr *)caddr, &len), 0);
}

/* Does a byte sent on from arrive on to within wait_ms? */
static bool byte_arrives(int from, int to, int wait_ms)
{
    ck_assert_int_eq(send(from, "x", 1, MSG_NOSIGNAL), 1);
    struct pollfd p = {.fd = to, .events = POLLIN};
    return poll(&p, 1, wait_ms) == 1;
}

/* Each Check test runs in its own forked process: entering the namespace here does not
 * touch the test runner. */
START_TEST(dropped_connection_is_silent_both_ways_others_are_not)
{
    struct sandbox sb;
    if (sandbox_enter(&sb) < 0) {
        /* As root (as in CI) the sandbox must work: a failure, not a skip reported as a pass. */
        ck_assert_msg(geteuid() != 0, "no sandbox as root: %s", sb.why_not);
        printf("SKIP dropped_connection...: %s\n", sb.why_not);
        return;
    }
    int c1, s1, c2, s2;
    struct sockaddr_in a1, a2;
    connect_pair("127.0.0.2", &c1, &s1, &a1);
    connect_pair("127.0.0.2", &c2, &s2, &a2);
    ck_assert(byte_arrives(c1, s1, 2000)); /* the path works before the drop */
    char b;
    ck_assert_int_eq(recv(s1, &b, 1, 0), 1);
    ck_assert_int_eq(sandbox_drop_connection(&sb, &a1), 0);
    /* 300 ms is far beyond loopback delivery (microseconds): the absence is the result. */
    ck_assert(!byte_arrives(c1, s1, 300));
    ck_assert(!byte_arrives(s1, c1, 300));
    ck_assert(byte_arrives(c2, s2, 2000)); /* another connection of the same host still works */
    ck_assert(byte_arrives(s2, c2, 2000));
    ck_assert_uint_eq(sb.dropped_connections, 1);
    sandbox_free(&sb);
}
END_TEST

START_TEST(dropped_host_is_silent_other_host_is_not)
{
    struct sandbox sb;
    if (sandbox_enter(&sb) < 0) {
        /* As root (as in CI) the sandbox must work: a failure, not a skip reported as a pass. */
        ck_assert_msg(geteuid() != 0, "no sandbox as root: %s", sb.why_not);
        printf("SKIP dropped_host...: %s\n", sb.why_not);
        return;
    }
    int c1, s1, c2, s2;
    struct sockaddr_in a1, a2;
    connect_pair("127.0.0.3", &c1, &s1, &a1);
    connect_pair("127.0.0.4", &c2, &s2, &a2);
    ck_assert_int_eq(sandbox_drop_host(&sb, a1.sin_addr), 0);
    ck_assert(!byte_arrives(c1, s1, 300));
    ck_assert(!byte_arrives(s1, c1, 300));
    ck_assert(byte_arrives(c2, s2, 2000));
    ck_assert_int_eq(sandbox_clear(&sb), 0); /* and back */
    ck_assert(byte_arrives(s1, c1, 3000) || byte_arrives(s1, c1, 3000));
    sandbox_free(&sb);
}
END_TEST

/* Run argv within timeout_ms: stdout and stderr together in res->out. */
static void run(const char *const *argv, int timeout_ms, struct ts_proc *res)
{
    const struct ts_run_opts opts = {.timeout_ms = timeout_ms, .merge_stderr = true};
    ck_assert_int_eq(ts_run(res, argv, &opts), 0);
}

START_TEST(unprivileged_user_gets_a_sandbox_or_a_skip_with_reason)
{
    if (geteuid() != 0) {
        printf("SKIP unprivileged test: needs root to become nobody\n");
        return;
    }
    struct ts_proc res;
    run(TS_ARGV("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "env",
                "TMPDIR=/tmp", CONNFAULT_BIN, "run", "--seed", "1", "drop-idle"),
        60000, &res);
    ck_assert_msg(res.status == 0, "status %d:\n%s", res.status, res.out);
    bool passed = strstr(res.out, "PASS  drop-idle") != NULL;
    bool skipped =
        strstr(res.out, "SKIP  drop-idle") != NULL && strstr(res.out, "namespace") != NULL;
    ck_assert_msg(passed || skipped, "neither a pass nor a reasoned skip:\n%s", res.out);
    printf("unprivileged drop-idle: %s\n",
           passed ? "PASS (user namespace)" : "SKIP (reason given)");
    ts_proc_free(&res);
}
END_TEST

START_TEST(no_sandbox_skips_with_reason_and_exits_0)
{
    struct ts_proc res;
    run(TS_ARGV(CONNFAULT_BIN, "run", "--no-sandbox", "drop-mid-response", "cable-pull"), 30000,
        &res);
    ck_assert_msg(res.status == 0, "status %d:\n%s", res.status, res.out);
    ck_assert_ptr_nonnull(strstr(res.out, "SKIP  drop-mid-response"));
    ck_assert_ptr_nonnull(strstr(res.out, "--no-sandbox"));
    ck_assert_ptr_nonnull(strstr(res.out, "0 passed, 0 failed, 2 skipped"));
    ts_proc_free(&res);
}
END_TEST

/* The harness's child running connfault-server (its target), or 0: a grandchild, under the
 * init of the target's PID namespace (connfault-init). Other children come and go (the
 * sandbox is tried in a short-lived child first). */
static pid_t target_child(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    int child, found = 0;
    while (f && !found && fscanf(f, "%d", &child) == 1) {
        char comm_path[64], comm[32] = "";
        snprintf(comm_path, sizeof(comm_path), "/proc/%d/comm", child);
        FILE *c = fopen(comm_path, "r");
        if (c && fgets(comm, sizeof(comm), c) && strncmp(comm, "connfault-serve", 15) == 0)
            found = child;
        else if (strncmp(comm, "connfault-init", 14) == 0)
            found = target_child(child);
        if (c)
            fclose(c);
    }
    if (f)
        fclose(f);
    return found;
}

/* One scenario at a time (the target a child of the harness); test_jobs kills a run with jobs. */
START_TEST(killed_harness_leaves_nothing_after_cleanup)
{
    /* A TMPDIR of its own: other harnesses (tests running in parallel) sweep /tmp too. */
    char base[64];
    ck_assert_int_eq(ts_tmpdir_create(base, sizeof(base), "connfault-test"), 0);
    setenv("TMPDIR", base, 1);
    struct ts_proc harness_run;
    const struct ts_run_opts opts = {.timeout_ms = 60000, .merge_stderr = true};
    ck_assert_int_eq(ts_proc_start(&harness_run,
                                   TS_ARGV(CONNFAULT_BIN, "run", "--jobs", "1", "--seed", "1",
                                           "cable-pull", "drop-idle"),
                                   &opts),
                     0);
    pid_t harness = harness_run.pid;
    /* Mid-scenario: the target holds client connections (faults under way). The first target
     * seen may be the pre-flight's, which gets no fault clients and goes: look again. */
    pid_t target = 0, seen = 0;
    uint64_t deadline = cf_now_ms() + 30000;
    while (cf_now_ms() < deadline) {
        target = target_child(harness);
        seen |= target;
        if (target > 0 && ts_fd_count(target) >= 20)
            break;
        poll(NULL, 0, 20);
    }
    ck_assert_msg(seen > 0, "the harness started no target");
    ck_assert_msg(target > 0 && ts_fd_count(target) >= 20, "the fault phase never began");
    ck_assert_int_eq(kill(harness, SIGKILL), 0);
    ck_assert_int_eq(ts_proc_finish(&harness_run), 0);
    ts_proc_free(&harness_run);
    /* The target dies with the harness (PR_SET_PDEATHSIG), and its namespace with it. */
    deadline = cf_now_ms() + 5000;
    while (kill(target, 0) == 0 && cf_now_ms() < deadline)
        poll(NULL, 0, 20);
    ck_assert_msg(kill(target, 0) < 0 && errno == ESRCH, "target %d outlived the harness",
                  (int)target);
    ck_assert_msg(ts_harness_tmpdir_left(base, harness),
                  "expected a leftover temp dir after SIGKILL");
    struct ts_proc res;
    run(TS_ARGV(CONNFAULT_BIN, "cleanup"), 10000, &res);
    ck_assert_int_eq(res.status, 0);
    ck_assert_msg(!ts_harness_tmpdir_left(base, harness), "cleanup left the temp dir:\n%s",
                  res.out);
    ck_assert_int_eq(rmdir(base), 0); /* empty: nothing else was left either */
    ts_proc_free(&res);
    /* Nothing in the host's firewall, ever: no table of ours in this namespace. */
    run(TS_ARGV("nft", "list", "tables"), 10000, &res);
    ck_assert_msg(strstr(res.out, "connfault_") == NULL, "leftover table:\n%s", res.out);
    ts_proc_free(&res);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sandbox");
    TCase *tc = tcase_create("drop");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, dropped_connection_is_silent_both_ways_others_are_not);
    tcase_add_test(tc, dropped_host_is_silent_other_host_is_not);
    tcase_add_test(tc, unprivileged_user_gets_a_sandbox_or_a_skip_with_reason);
    tcase_add_test(tc, no_sandbox_skips_with_reason_and_exits_0);
    tcase_add_test(tc, killed_harness_leaves_nothing_after_cleanup);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
