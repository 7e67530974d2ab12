/* --jobs N: scenarios in parallel (run/jobs.h). The same verdicts as one at a time, on the
 * correct reference server and on a bug mode; each job's target on a port of its own with
 * its fault clients on hosts of its own; nothing left when the harness is killed mid-run;
 * the command line's refusals. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builtin_catalogue.h"
#include "report.h"
#include "run.h"
#include "support.h"

#ifndef CONNFAULT_SERVER_BIN
#define CONNFAULT_SERVER_BIN "connfault-server"
#endif

#define MAX_PIDS 16

static volatile sig_atomic_t never_interrupted;

/* ---- the same verdicts ---- */

static int run_with_jobs(unsigned jobs, const char *bug, char **names, int n,
                         struct run_report *rep)
{
    struct run_options o;
    run_options_defaults(&o, &never_interrupted);
    o.reference_server = CONNFAULT_SERVER_BIN;
    o.bug = bug;
    o.seed = 42;
    o.verbosity = 0;
    o.jobs = jobs;
    if (bug)
        o.grace_ms = 3000; /* what the bug holds it holds for ever: no need to wait longer */
    return run_collect(&o, names, n, rep);
}

/* Every scenario in the same place, with the same verdict and the same status of each check. */
static void expect_same_verdicts(const struct run_report *a, const struct run_report *b)
{
    ck_assert_uint_eq(a->nscenarios, b->nscenarios);
    for (size_t i = 0; i < a->nscenarios; i++) {
        const struct scenario_result *x = &a->scenarios[i], *y = &b->scenarios[i];
        ck_assert_str_eq(x->name, y->name);
        ck_assert_msg(x->verdict == y->verdict, "%s: %s one at a time, %s with --jobs (%s)",
                      x->name, verdict_name(x->verdict), verdict_name(y->verdict), y->reason);
        ck_assert_uint_eq(x->nchecks, y->nchecks);
        for (size_t c = 0; c < x->nchecks; c++)
            ck_assert_msg(x->checks[c].status == y->checks[c].status, "%s: %s: %s / %s", x->name,
                          x->checks[c].name, x->checks[c].summary, y->checks[c].summary);
    }
}

static void compare_jobs(const char *bug, char **names, int n, int expected_status)
{
    struct run_report one, four;
    int s1 = run_with_jobs(1, bug, names, n, &one);
    int s4 = run_with_jobs(4, bug, names, n, &four);
    ck_assert_int_eq(s1, expected_status);
    ck_assert_int_eq(s4, expected_status);
    expect_same_verdicts(&one, &four);
    run_report_free(&one);
    run_report_free(&four);
}

/* One at a time, every built-in scenario passes on the correct server (test_selftest): so it
 * must with jobs, each having looked (its checks made). fd-exhaustion included: its flake
 * (a probe starved while the engine opened 256 clients per pass) was fixed at its cause
 * (START_BURST 32): 0 of 50 runs of the suite with --jobs 4 and both CPUs busy. */
START_TEST(jobs_give_the_verdicts_of_one_at_a_time_on_the_correct_server)
{
    struct builtin_catalogue cat;
    char err[512], *names[64];
    ck_assert_msg(builtin_catalogue_load(scenario_builtin_dir(), &cat, err, sizeof(err)) == 0, "%s",
                  err);
    int n = 0;
    for (size_t i = 0; i < cat.n && n < 64; i++)
        names[n++] = cat.sc[i].name;
    struct run_report four;
    int status = run_with_jobs(4, NULL, names, n, &four);
    ck_assert_uint_eq(four.nscenarios, (size_t)n);
    for (size_t i = 0; i < four.nscenarios; i++) {
        const struct scenario_result *r = &four.scenarios[i];
        ck_assert_msg(r->verdict == VERDICT_PASS, "%s: %s with --jobs 4: %s", r->name,
                      verdict_name(r->verdict), r->reason);
        for (size_t c = 0; c < r->nchecks; c++)
            ck_assert_msg(r->checks[c].status == CHECK_OK, "%s: %s", r->name, r->checks[c].summary);
    }
    ck_assert_int_eq(status, 0);
    run_report_free(&four);
    builtin_catalogue_free(&cat);
}
END_TEST

START_TEST(jobs_give_the_verdicts_of_one_at_a_time_on_a_bug_mode)
{
    /* scenarios that catch no-timeouts (fds, held for ever) and two that do not */
    char *names[] = {"slowloris",   "drop-idle",     "cable-pull",
                     "zero-window", "connect-close", "rst-mid-response"};
    compare_jobs("no-timeouts", names, 6, 1);
}
END_TEST

/* ---- ports, hosts, and a SIGKILL ---- */

static bool comm_is(pid_t pid, const char *prefix)
{
    char path[64], comm[32] = "";
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    bool is = f && fgets(comm, sizeof(comm), f) && strncmp(comm, prefix, strlen(prefix)) == 0;
    if (f)
        fclose(f);
    return is;
}

/* The descendants of pid whose name starts with prefix (connfault-init is looked through). */
static void descendants(pid_t pid, const char *prefix, pid_t *out, int *n)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    int child;
    while (f && fscanf(f, "%d", &child) == 1) {
        if (comm_is(child, prefix) && *n < MAX_PIDS)
            out[(*n)++] = child;
        descendants(child, prefix, out, n);
    }
    if (f)
        fclose(f);
}

struct busy_targets {
    pid_t harness, target[MAX_PIDS];
    int n;
};

/* Two targets at once, each holding its fault clients. */
static bool two_busy_targets(void *arg)
{
    struct busy_targets *b = arg;
    pid_t all[MAX_PIDS];
    int n = 0;
    descendants(b->harness, "connfault-serve", all, &n);
    b->n = 0;
    for (int i = 0; i < n; i++)
        if (ts_fd_count(all[i]) >= 20)
            b->target[b->n++] = all[i];
    return b->n >= 2;
}

/* What a target's sockets say (/proc/PID/net/tcp of its namespace, its own fds' inodes):
 * the port it listens on, and the network (127.a.0.0/16) its fault clients come from. */
struct target_view {
    unsigned listen_port, client_net; /* client_net: 0 if none seen */
};

static bool owns_inode(pid_t pid, unsigned long inode)
{
    char dir[64], path[400], link[64], want[48];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    snprintf(want, sizeof(want), "socket:[%lu]", inode);
    DIR *d = opendir(dir);
    struct dirent *de;
    bool found = false;
    while (d && !found && (de = readdir(d)) != NULL) {
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        ssize_t len = readlink(path, link, sizeof(link) - 1);
        found = len > 0 && (size_t)len == strlen(want) && memcmp(link, want, (size_t)len) == 0;
    }
    if (d)
        closedir(d);
    return found;
}

static void view_target(pid_t pid, struct target_view *v)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/net/tcp", (int)pid);
    FILE *f = fopen(path, "r");
    memset(v, 0, sizeof(*v));
    while (f && fgets(line, sizeof(line), f)) {
        unsigned laddr, lport, raddr, rport, state;
        unsigned long inode;
        if (sscanf(line, " %*d: %x:%x %x:%x %x %*s %*s %*s %*s %*s %lu", &laddr, &lport, &raddr,
                   &rport, &state, &inode) != 6 ||
            !owns_inode(pid, inode))
            continue;
        if (state == 0x0A)
            v->listen_port = lport;
        else if (state == 0x01 && raddr != 0x0100007Fu) /* not a probe from 127.0.0.1 */
            v->client_net = (raddr >> 8) & 0xFF;        /* little-endian: 127.a.b.c -> a */
    }
    if (f)
        fclose(f);
}

struct gone {
    pid_t pid[2 * MAX_PIDS];
    int n;
};

static bool all_gone(void *arg)
{
    const struct gone *g = arg;
    for (int i = 0; i < g->n; i++)
        if (kill(g->pid[i], 0) == 0 || errno != ESRCH)
            return false;
    return true;
}

/* Two jobs mid-fault: their targets, and the jobs' own processes. */
static void look_at_two_jobs(pid_t harness, struct gone *g)
{
    struct busy_targets b = {.harness = harness};
    ck_assert_msg(ts_wait_until(two_busy_targets, &b, 30000, 20),
                  "two targets never held their fault clients at once (%d did)", b.n);
    struct target_view v[2];
    view_target(b.target[0], &v[0]);
    view_target(b.target[1], &v[1]);
    ck_assert_uint_ne(v[0].listen_port, 0);
    ck_assert_uint_ne(v[1].listen_port, 0);
    ck_assert_uint_ne(v[0].listen_port, v[1].listen_port);
    ck_assert_msg(v[0].client_net != v[1].client_net,
                  "both jobs' fault clients come from 127.%u.x.x", v[0].client_net);
    g->n = 0;
    descendants(harness, "connfault", g->pid, &g->n); /* jobs, inits and targets */
    ck_assert_int_ge(g->n, 4);
}

static void run_cmd(const char *const *argv, struct ts_proc *res)
{
    const struct ts_run_opts o = {.timeout_ms = 10000};
    ck_assert_int_eq(ts_run(res, argv, &o), 0);
}

START_TEST(jobs_have_their_own_ports_and_hosts_and_die_with_the_harness)
{
    char base[64];
    ck_assert_int_eq(ts_tmpdir_create(base, sizeof(base), "connfault-jobs"), 0);
    setenv("TMPDIR", base, 1);
    struct ts_proc h;
    const struct ts_run_opts opts = {.timeout_ms = 60000, .merge_stderr = true};
    /* no-timeouts: the fault clients stay held, so both targets are busy at once */
    ck_assert_int_eq(
        ts_proc_start(&h,
                      TS_ARGV(CONNFAULT_BIN, "run", "--jobs", "2", "--seed", "1", "--no-capture",
                              "--grace", "10", "--bug", "no-timeouts", "slowloris", "drop-idle"),
                      &opts),
        0);
    struct gone g;
    pid_t harness = h.pid; /* h.pid is 0 once reaped */
    look_at_two_jobs(harness, &g);
    ck_assert_int_eq(kill(harness, SIGKILL), 0);
    ck_assert_int_eq(ts_proc_finish(&h), 0);
    ck_assert_msg(ts_wait_until(all_gone, &g, 5000, 20), "a job or target outlived the harness");
    ck_assert_msg(ts_harness_tmpdir_left(base, harness),
                  "expected a leftover temp dir after SIGKILL");
    ts_proc_free(&h);
    struct ts_proc res;
    run_cmd(TS_ARGV(CONNFAULT_BIN, "cleanup"), &res);
    ck_assert_int_eq(res.status, 0);
    ts_proc_free(&res);
    ck_assert_int_eq(rmdir(base), 0); /* empty: nothing else was left either */
    run_cmd(TS_ARGV("nft", "list", "tables"), &res);
    ck_assert_msg(strstr(res.out, "connfault_") == NULL, "leftover table:\n%s", res.out);
    ts_proc_free(&res);
}
END_TEST

/* ---- the command line ---- */

static void expect_usage_error(const char *const *argv, const char *message)
{
    struct ts_proc res;
    run_cmd(argv, &res);
    ck_assert_msg(res.status == 2, "status %d\n%s", res.status, res.err);
    ck_assert_msg(strstr(res.err, message), "stderr lacks \"%s\":\n%s", message, res.err);
    ts_proc_free(&res);
}

START_TEST(jobs_zero_and_jobs_with_target_pid_are_refused)
{
    expect_usage_error(TS_ARGV(CONNFAULT_BIN, "run", "--jobs", "0"),
                       "--jobs: invalid value '0' (expected a whole number from 1 to 64)");
    expect_usage_error(TS_ARGV(CONNFAULT_BIN, "run", "--jobs", "65"), "--jobs: invalid value");
    expect_usage_error(
        TS_ARGV(CONNFAULT_BIN, "run", "--jobs", "2", "--target-pid", "1", "--port", "8080"),
        "--jobs above 1 needs --target-cmd");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("jobs");
    TCase *cli = tcase_create("command line");
    tcase_add_test(cli, jobs_zero_and_jobs_with_target_pid_are_refused);
    suite_add_tcase(s, cli);
    TCase *same = tcase_create("same verdicts");
    tcase_set_timeout(same, 300);
    tcase_add_test(same, jobs_give_the_verdicts_of_one_at_a_time_on_the_correct_server);
    tcase_add_test(same, jobs_give_the_verdicts_of_one_at_a_time_on_a_bug_mode);
    tcase_add_test(same, jobs_have_their_own_ports_and_hosts_and_die_with_the_harness);
    suite_add_tcase(s, same);
    return ts_run_suite(s);
}
