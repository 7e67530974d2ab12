/* Unit tests for checks.c (the rules behind each verdict), escape.c, the scenario catalogue
 * and run/'s library call (the parts that need no target). */
#include "support.h"

#include <check.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"
#include "checks.h"
#include "escape.h"
#include "measure.h"
#include "run.h"
#include "scenario.h"

static const struct check_limits limits = {
    .cpu_max_pct = 20, .memory_slack_kb = 32 * 1024, .probe_timeout_ms = 2000, .grace_ms = 5000};

/* A scenario in which everything went right. */
static void healthy(struct scenario_samples *s, uint64_t *lat)
{
    memset(s, 0, sizeof(*s));
    lat[0] = 1000, lat[1] = 3000, lat[2] = 2000;
    s->probes = s->probes_ok = 3;
    s->latencies_us = lat;
    s->nlatencies = 3;
    s->fds_baseline.total = s->fds_final.total = 6;
    s->fds_peak = 120;
    s->fds_settled_s = 1.2;
    s->sockets_final.count[TCP_LISTEN] = 1;
    s->cpu_pct = s->cpu_windows_pct[0] = 0.5;
    s->cpu_nwindows = 1;
    s->cpu_window_s = 1.0;
    s->anon_baseline_kb = 2000;
    s->anon_final_kb = 2100;
    s->settle_waited_s = 1.2;
}

static const struct check_result *find(const struct scenario_result *r, const char *name)
{
    for (size_t i = 0; i < r->nchecks; i++)
        if (strcmp(r->checks[i].name, name) == 0)
            return &r->checks[i];
    return NULL;
}

START_TEST(all_six_checks_pass_with_their_numbers)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    healthy(&s, lat);
    checks_evaluate(&s, &limits, &r);
    ck_assert_int_eq(r.verdict, VERDICT_PASS);
    ck_assert_uint_eq(r.nchecks, 6);
    const char *names[] = {"accepting", "alive", "fds", "sockets", "cpu", "memory"};
    for (int i = 0; i < 6; i++) {
        const struct check_result *c = find(&r, names[i]);
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(c->status, CHECK_OK);
        ck_assert_uint_gt(c->nfields, 0);
    }
    ck_assert_ptr_nonnull(strstr(find(&r, "accepting")->summary, "p50 2.0 ms, max 3.0 ms"));
    ck_assert_ptr_nonnull(strstr(find(&r, "fds")->summary, "6 before, peak 120, 6 after"));
}
END_TEST

START_TEST(one_failed_probe_fails_accepting)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    healthy(&s, lat);
    s.probes_ok = 2;
    strcpy(s.first_failure, "timeout after 2000 ms waiting for the status line");
    s.first_failure_at_s = 0.4;
    checks_evaluate(&s, &limits, &r);
    ck_assert_int_eq(r.verdict, VERDICT_FAIL);
    ck_assert_int_eq(find(&r, "accepting")->status, CHECK_FAILED);
    ck_assert_ptr_nonnull(strstr(r.reason, "1/3 probes failed"));
    ck_assert_ptr_nonnull(strstr(r.reason, "waiting for the status line"));
}
END_TEST

/* release = end (fd-exhaustion), while the fault clients held every fd: probes answered,
 * answered 503 and left waiting in the queue; after the release: served again. */
static void out_of_fds(struct scenario_samples *s, uint64_t *lat)
{
    healthy(s, lat);
    s->release_end = true;
    s->while_held.probes = 6;
    s->while_held.ok = 1;
    s->while_held.status_503 = 3;
    s->while_held.timed_out = 2;
    s->released_clients = 1000;
    s->released_at_s = 2.1;
    s->recovered_s = 0.2;
}

START_TEST(out_of_fds_503_and_queued_probes_pass_once_it_serves_again)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    out_of_fds(&s, lat);
    checks_evaluate(&s, &limits, &r);
    const struct check_result *c = find(&r, "accepting");
    ck_assert_msg(r.verdict == VERDICT_PASS && c->status == CHECK_OK, "%s", c->summary);
    ck_assert_ptr_nonnull(strstr(c->summary, "6 probes: 1 answered, 3 answered 503, 2 still "
                                             "waiting"));
    ck_assert_ptr_nonnull(strstr(c->summary, "release of 1000 clients at +2.1s, answered again "
                                             "0.2s later"));
}
END_TEST

START_TEST(out_of_fds_fails_when_it_never_serves_again)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    out_of_fds(&s, lat);
    s.probes_ok = 0;
    s.recovered_s = -1;
    s.failed_before_recovery = 3;
    strcpy(s.first_failure, "timeout after 2000 ms waiting for the status line");
    checks_evaluate(&s, &limits, &r);
    const struct check_result *c = find(&r, "accepting");
    ck_assert_int_eq(r.verdict, VERDICT_FAIL);
    ck_assert_int_eq(c->status, CHECK_FAILED);
    ck_assert_msg(strstr(c->summary, "none of 3 probes was answered") &&
                      strstr(c->summary, "does not serve again"),
                  "%s", c->summary);
}
END_TEST

/* Answered again, then a failure: not recovered after all. */
START_TEST(out_of_fds_fails_on_a_failure_after_recovering)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    out_of_fds(&s, lat);
    s.probes_ok = 2;
    checks_evaluate(&s, &limits, &r);
    const struct check_result *c = find(&r, "accepting");
    ck_assert_int_eq(c->status, CHECK_FAILED);
    ck_assert_msg(strstr(c->summary, "then 1 of 3 probes failed"), "%s", c->summary);
}
END_TEST

/* A spin while held is judged by cpu on the windows measured before the release. */
START_TEST(out_of_fds_spin_while_held_fails_cpu)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    out_of_fds(&s, lat);
    s.cpu_while_held = true;
    s.cpu_nwindows = 3;
    s.cpu_pct = s.cpu_windows_busy_pct[0] = s.cpu_windows_busy_pct[1] = 100;
    s.cpu_windows_busy_pct[2] = 100;
    checks_evaluate(&s, &limits, &r);
    const struct check_result *c = find(&r, "cpu");
    ck_assert_int_eq(c->status, CHECK_FAILED);
    ck_assert_msg(strstr(c->summary, "while the fault clients held every fd"), "%s", c->summary);
}
END_TEST

START_TEST(leaked_fds_fail_and_are_broken_down_by_type)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    healthy(&s, lat);
    s.fds_baseline.sockets = 1;
    s.fds_final.total = 26;
    s.fds_final.sockets = 21;
    checks_evaluate(&s, &limits, &r);
    ck_assert_int_eq(find(&r, "fds")->status, CHECK_FAILED);
    ck_assert_ptr_nonnull(strstr(find(&r, "fds")->summary, "20 sockets leaked"));
}
END_TEST

static const struct report_field *field(const struct check_result *c, const char *key)
{
    for (size_t i = 0; i < c->nfields; i++)
        if (strcmp(c->fields[i].key, key) == 0)
            return &c->fields[i];
    return NULL;
}

static int64_t int_field(const struct check_result *c, const char *key)
{
    const struct report_field *f = field(c, key);
    ck_assert_msg(f && f->type == FIELD_INT, "no int field %s in %s", key, c->summary);
    return f->i;
}

/* Issue 12, item 1: nginx holding slowloris clients until its 60 s timeout was "50 leaked". */
START_TEST(held_by_live_clients_is_not_leaked)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    healthy(&s, lat);
    s.fds_baseline.total = 10, s.fds_baseline.sockets = 1;
    s.fds_final.total = 60, s.fds_final.sockets = 51;
    s.fds_peak = 60;
    s.settle_waited_s = 5.0;
    s.held = (struct held_counts){.known = true, .live = 50, .oldest_s = 6.1};
    checks_evaluate(&s, &limits, &r);
    const struct check_result *fds = find(&r, "fds");
    ck_assert_int_eq(fds->status, CHECK_FAILED); /* no timeout shorter than the grace */
    ck_assert_str_eq(fds->summary,
                     "fds: 10 before, peak 60, 60 after a 5.0s wait: 50 held by live clients "
                     "(oldest 6.1s: the server closed none of them within the 5.0s grace)");
    ck_assert_int_eq(int_field(fds, "held_live"), 50);
    ck_assert_int_eq(int_field(fds, "held_vanished"), 0);
    ck_assert_int_eq(int_field(fds, "leaked"), 0);
    ck_assert_int_eq(int_field(fds, "other_open"), 0);
    ck_assert_double_eq_tol(field(fds, "oldest_held_s")->d, 6.1, 1e-9);
    ck_assert_ptr_nonnull(strstr(find(&r, "sockets")->summary, "held: 50 by live clients"));
}
END_TEST

/* Held ones never count past the leftovers; sockets whose peers let go are leaked, and only
 * they are called so; a pipe has no peer: it is "still open". */
START_TEST(held_vanished_and_leaked_are_told_apart)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    healthy(&s, lat);
    s.fds_baseline.total = 10, s.fds_baseline.sockets = 1;
    s.fds_final.total = 31, s.fds_final.sockets = 21, s.fds_final.pipes = 1;
    s.settle_waited_s = 5.0;
    s.held = (struct held_counts){.known = true, .live = 5, .vanished = 10, .oldest_s = 3.0};
    checks_evaluate(&s, &limits, &r);
    const struct check_result *fds = find(&r, "fds");
    ck_assert_ptr_nonnull(strstr(fds->summary, ": 5 held by live clients, 10 held after the peer "
                                               "vanished (oldest 3.0s"));
    ck_assert_ptr_nonnull(
        strstr(fds->summary, "; 5 sockets leaked; 1 other fd still open (pipes +1, files +0,"));
    ck_assert_int_eq(int_field(fds, "leaked"), 5);
    ck_assert_int_eq(int_field(fds, "other_open"), 1);

    s.held.live = 40; /* more than the sockets above the baseline: capped */
    checks_evaluate(&s, &limits, &r);
    fds = find(&r, "fds");
    ck_assert_int_eq(int_field(fds, "held_live"), 20);
    ck_assert_int_eq(int_field(fds, "held_vanished"), 0);
    ck_assert_int_eq(int_field(fds, "leaked"), 0);
    ck_assert_int_eq(int_field(fds, "other_open"), 1);
}
END_TEST

/* lighttpd under slowloris: 50 sockets held by live clients, and the file fd it had cached at
 * the baseline closed meanwhile, so the total is up 49 only. All 50 are held, none leaked (the
 * cap by the total made one "1 socket leaked"). */
START_TEST(a_closed_file_fd_leaves_held_sockets_held)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    healthy(&s, lat);
    s.fds_baseline.total = 9, s.fds_baseline.sockets = 1, s.fds_baseline.files = 1;
    s.fds_final.total = 58, s.fds_final.sockets = 51, s.fds_final.files = 0;
    s.settle_waited_s = 75.0;
    s.held = (struct held_counts){.known = true, .live = 50, .oldest_s = 76.0};
    checks_evaluate(&s, &limits, &r);
    const struct check_result *fds = find(&r, "fds");
    ck_assert_int_eq(int_field(fds, "held_live"), 50);
    ck_assert_int_eq(int_field(fds, "leaked"), 0);
    ck_assert_int_eq(int_field(fds, "other_open"), 0);
    ck_assert_msg(!strstr(fds->summary, "leaked"), "%s", fds->summary);
}
END_TEST

/* Released within the grace: a pass, with when. */
START_TEST(released_says_when)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    healthy(&s, lat);
    s.fds_settled_s = 58.0;
    checks_evaluate(&s, &limits, &r);
    const struct check_result *fds = find(&r, "fds");
    ck_assert_int_eq(fds->status, CHECK_OK);
    ck_assert_str_eq(fds->summary, "fds: 6 before, peak 120, 6 after (released 58.0s after the "
                                   "faults)");
    ck_assert_double_eq_tol(field(fds, "released_s")->d, 58.0, 1e-9);
    ck_assert_ptr_null(field(fds, "held_live_after_faults"));

    s.held_after_faults = (struct held_counts){.known = true, .live = 50, .vanished = 2};
    checks_evaluate(&s, &limits, &r);
    fds = find(&r, "fds");
    ck_assert_str_eq(fds->summary, "fds: 6 before, peak 120, 6 after (released 58.0s after the "
                                   "faults); when the faults ended 50 were held by live "
                                   "clients, 2 after the peer vanished");
    ck_assert_int_eq(int_field(fds, "held_live_after_faults"), 50);
    ck_assert_int_eq(int_field(fds, "held_vanished_after_faults"), 2);
}
END_TEST

/* The target's regular files: name=fds pairs, e.g. file_list(&s.files_final, 2, "a.log", 1,
 * "big.bin", 1). Distinct names are distinct files (inode = position + 1). */
static void file_list(struct procfs_regular_files *out, size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        struct procfs_file *f = &out->files[out->n++];
        snprintf(f->name, sizeof(f->name), "%s", va_arg(ap, const char *));
        f->fds = va_arg(ap, unsigned);
        f->dev = 1;
        f->ino = i + 1;
        out->fds += f->fds;
    }
    va_end(ap);
}

/* A server that keeps the fd of the one file it served (lighttpd's stat cache) passes, saying
 * so with the file's name; the same file open twice more is one fd per request: a leak. */
START_TEST(a_file_cache_is_not_a_leak_but_one_per_client_is)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    healthy(&s, lat);
    s.fds_baseline.files = 1;
    s.fds_final.total = 7;
    s.fds_final.files = 2;
    s.files_known = true;
    file_list(&s.files_baseline, 1, "a.log", 1u);
    file_list(&s.files_final, 2, "a.log", 1u, "big.bin", 1u);
    checks_evaluate(&s, &limits, &r);
    const struct check_result *c = find(&r, "fds");
    ck_assert_msg(c->status == CHECK_OK, "%s", c->summary);
    ck_assert_ptr_nonnull(strstr(c->summary, "1 file fd kept open (big.bin): a file cache"));
    ck_assert_int_eq(r.verdict, VERDICT_PASS);

    /* big.bin three times: one fd per client, a leak */
    s.fds_final.total = 9;
    s.fds_final.files = 4;
    file_list(&s.files_final, 2, "a.log", 1u, "big.bin", 3u);
    checks_evaluate(&s, &limits, &r);
    c = find(&r, "fds");
    ck_assert_int_eq(c->status, CHECK_FAILED);
    ck_assert_ptr_nonnull(strstr(c->summary, "files +3"));

    /* one more fd on a file open at the baseline, and the files not read: no cache claimed */
    s.fds_final.total = 7;
    s.fds_final.files = 2;
    file_list(&s.files_final, 1, "a.log", 2u);
    checks_evaluate(&s, &limits, &r);
    ck_assert_int_eq(find(&r, "fds")->status, CHECK_OK); /* one more on a served file: cached */
    s.files_known = false;
    checks_evaluate(&s, &limits, &r);
    ck_assert_int_eq(find(&r, "fds")->status, CHECK_FAILED);

    /* more files than a scenario asks for, each once: not a cache of served files */
    s.files_known = true;
    s.fds_final.total = 6 + CHECKS_FILE_CACHE_MAX + 1;
    s.fds_final.files = 1 + CHECKS_FILE_CACHE_MAX + 1;
    file_list(&s.files_final, 10, "a.log", 1u, "1", 1u, "2", 1u, "3", 1u, "4", 1u, "5", 1u, "6", 1u,
              "7", 1u, "8", 1u, "9", 1u);
    checks_evaluate(&s, &limits, &r);
    ck_assert_int_eq(find(&r, "fds")->status, CHECK_FAILED);
}
END_TEST

START_TEST(close_wait_fails_sockets)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    healthy(&s, lat);
    s.sockets_final.count[TCP_CLOSE_WAIT] = 4;
    checks_evaluate(&s, &limits, &r);
    ck_assert_int_eq(find(&r, "sockets")->status, CHECK_FAILED);
    ck_assert_ptr_nonnull(strstr(find(&r, "sockets")->summary, "CLOSE_WAIT 4"));
}
END_TEST

START_TEST(cpu_at_threshold_fails)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    healthy(&s, lat);
    s.cpu_pct = 20.0;
    checks_evaluate(&s, &limits, &r);
    ck_assert_int_eq(find(&r, "cpu")->status, CHECK_FAILED);
    s.cpu_nwindows = 0; /* no window was completed: nothing was seen */
    checks_evaluate(&s, &limits, &r);
    ck_assert_int_eq(find(&r, "cpu")->status, CHECK_NOT_CHECKED);
}
END_TEST

/* Made-up readings of a tree: pid, CPU ns; pairs. Busy as much as it used. */
static void cpu_sample(struct procfs_cpu_sample *out, size_t n, const uint64_t *pid_ns)
{
    out->n = n;
    for (size_t i = 0; i < n; i++)
        out->procs[i] =
            (struct procfs_cpu){(pid_t)pid_ns[2 * i], pid_ns[2 * i + 1], pid_ns[2 * i + 1], 0};
}

/* Per window of 1 s, % of a core the target used and was busy (running or runnable; 0: as
 * much as it used). */
struct cpu_case {
    double pct[CHECKS_CPU_WINDOWS], busy[CHECKS_CPU_WINDOWS];
    size_t n;
    enum check_status status;
    const char *said[2];
};

/* The windows of c judged: measuring must end at the last window and not before. */
static const struct check_result *cpu_judged(const struct cpu_case *c, struct scenario_result *r)
{
    static struct scenario_samples s;
    static struct cpu_window w;
    static struct procfs_cpu_sample at = {.n = 1, .procs = {{42, 0, 0, 0}}};
    uint64_t lat[3], now = 1000;
    healthy(&s, lat);
    s.cpu_nwindows = 0;
    at.procs[0].ns = at.procs[0].busy_ns = 0;
    w.at_start = at;
    measure_cpu_begin_at(&w, now, 1000, limits.cpu_max_pct);
    for (size_t i = 0; i < c->n; i++) {
        at.procs[0].ns += (uint64_t)(c->pct[i] * 1e7); /* % of 1 s in ns */
        at.procs[0].busy_ns += (uint64_t)((c->busy[i] ? c->busy[i] : c->pct[i]) * 1e7);
        now += 1000;
        ck_assert_int_eq(measure_cpu_step(&w, &at, now, &s), i == c->n - 1);
    }
    checks_evaluate(&s, &limits, r);
    return find(r, "cpu");
}

/* A server filling dead peers' socket buffers burns a second or two, then goes quiet: a flush,
 * not a spin. A spin stays hot in every window, also on a machine so loaded that it gets less
 * than the threshold (but is runnable all the time). An idle target takes one window. */
START_TEST(cpu_judged_window_by_window)
{
    static const struct cpu_case cases[] = {
        {{96.0, 65.0, 0.5}, {0}, 3, CHECK_OK, {"cooled to 0.5% of a core", "96.0%, 65.0%, 0.5%"}},
        {{99.0, 97.0, 98.0},
         {0},
         3,
         CHECK_FAILED,
         {"at least 97.0% of a core in each of 3 windows", "99.0%, 97.0%, 98.0%"}},
        {{15.0, 12.0, 19.0},
         {99.0, 98.0, 99.5},
         3,
         CHECK_FAILED,
         {"waiting for a CPU at least 98.0% of a core", "CPU used 15.0%, 12.0%, 19.0%"}},
        {{1.5}, {0}, 1, CHECK_OK, {"cpu: 1.5% of a core over 1.0s after the faults", "cpu: 1.5%"}},
        /* a spinner on a machine at load 30: 2 cores shared, it gets 6-7% but always waits */
        {{6.5, 6.8, 7.0},
         {99.0, 99.2, 99.1},
         3,
         CHECK_FAILED,
         {"waiting for a CPU at least 99.0% of a core", "CPU used 6.5%, 6.8%, 7.0%"}},
        /* an idle server woken by probes on that machine: each wake-up waits a timeslice, and
         * it runs for microseconds (lighttpd: 58% running or waiting, 0.0% used) */
        {{0.0}, {58.0}, 1, CHECK_OK, {"cpu: 0.0% of a core over 1.0s", "after the faults"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct scenario_result r = {0};
        const struct check_result *c = cpu_judged(&cases[i], &r);
        ck_assert_int_eq(c->status, cases[i].status);
        for (size_t k = 0; k < 2; k++)
            ck_assert_msg(strstr(c->summary, cases[i].said[k]), "case %zu: \"%s\" not in \"%s\"", i,
                          cases[i].said[k], c->summary);
    }
}
END_TEST

/* A child that exits during the window takes its CPU with it: the tree's sum drops, and the
 * difference of sums wrapped round to "cpu: 1821001389308.9%". */
START_TEST(cpu_child_exiting_in_the_window_never_wraps)
{
    struct procfs_cpu_sample a, b;
    cpu_sample(&a, 2, (uint64_t[]){10, 1000000, 11, 5000000000ULL});
    cpu_sample(&b, 1, (uint64_t[]){10, 3000000});
    ck_assert_uint_eq(procfs_cpu_used_ns(&a, &b), 2000000);
    /* a child born in the window counts all its CPU; a reused pid with less counts 0 */
    cpu_sample(&b, 3, (uint64_t[]){9, 700, 10, 3000000, 11, 40});
    ck_assert_uint_eq(procfs_cpu_used_ns(&a, &b), 2000700);
    ck_assert_uint_eq(procfs_cpu_busy_ns(&a, &b), 2000700);

    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    healthy(&s, lat);
    s.cpu_nwindows = 0;
    struct cpu_window w;
    w.at_start = a;
    measure_cpu_begin_at(&w, 0, 1000, limits.cpu_max_pct);
    ck_assert(measure_cpu_step(&w, &b, 1000, &s));
    ck_assert_double_eq_tol(s.cpu_pct, 0.20007, 1e-6);
    checks_evaluate(&s, &limits, &r);
    ck_assert_int_eq(find(&r, "cpu")->status, CHECK_OK);
}
END_TEST

/* A process that blocked in the window (its voluntary switches rose) waited for a core because
 * the machine was loaded, not because it spun: only the CPU it got counts. 300 busybox children
 * at load 20, each woken by its client, summed to a "spin". One that never blocked counts its
 * waits too: a busy loop on that machine gets 6% of a core but is runnable all the time. */
START_TEST(cpu_waits_of_a_process_that_blocked_are_not_busy)
{
    static struct procfs_cpu_sample a = {.n = 3,
                                         .procs = {{10, 1000000, 500000000, 3},
                                                   {11, 1000000, 500000000, 7},
                                                   {14, 1000000, 500000000, 9}}};
    static struct procfs_cpu_sample b = {.n = 5,
                                         .procs = {{10, 2000000, 900000000, 4},
                                                   {11, 2000000, 900000000, 7},
                                                   {12, 1000, 300000000, 1},
                                                   {13, 1000, 300000000, 0},
                                                   {14, 2000000, 900000000, 5}}};
    /* 10 blocked: +1 ms; 11 never did: +400 ms; 12 was born and blocked: 1 us; 13 born and
     * never blocked: 300 ms; 14 lost a thread that had blocked (its sum fell): +1 ms */
    ck_assert_uint_eq(procfs_cpu_busy_ns(&a, &b), 1000000 + 400000000 + 1000 + 300000000 + 1000000);
    ck_assert_uint_eq(procfs_cpu_used_ns(&a, &b), 1000000 + 1000000 + 1000 + 1000 + 1000000);
}
END_TEST

/* The wait ended between two samples and the final count is back: "back -1.0s" was printed.
 * A leak after a wait that ended at 60 s with a 75 s grace said "after 75.0s grace". */
START_TEST(fds_times_are_never_negative_and_are_as_waited)
{
    struct check_limits long_grace = limits;
    long_grace.grace_ms = 75000;
    struct scenario_samples s;
    uint64_t lat[3];
    healthy(&s, lat);
    s.fds_settled_s = -1;
    struct scenario_result r = {0};
    checks_evaluate(&s, &long_grace, &r);
    const struct check_result *fds = find(&r, "fds");
    ck_assert_int_eq(fds->status, CHECK_OK);
    ck_assert_str_eq(fds->summary, "fds: 6 before, peak 120, 6 after");

    s.fds_final.total = 8;
    s.settle_waited_s = 60.0;
    checks_evaluate(&s, &long_grace, &r);
    ck_assert_ptr_nonnull(
        strstr(find(&r, "fds")->summary, "8 after a 60.0s wait: 2 other fds still open"));
    ck_assert_ptr_null(strstr(find(&r, "fds")->summary, "75"));
}
END_TEST

START_TEST(memory_past_slack_fails)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    healthy(&s, lat);
    s.anon_final_kb = s.anon_baseline_kb + 32 * 1024 + 1;
    checks_evaluate(&s, &limits, &r);
    ck_assert_int_eq(find(&r, "memory")->status, CHECK_FAILED);
}
END_TEST

START_TEST(dead_target_fails_alive_and_nothing_else_passes_by_default)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    healthy(&s, lat);
    s.target_exited = true;
    strcpy(s.exit_description, "killed by signal 13 (SIGPIPE)");
    s.fds_unknown = s.sockets_unknown = s.cpu_unknown = s.memory_unknown = "the target exited";
    checks_evaluate(&s, &limits, &r);
    ck_assert_int_eq(r.verdict, VERDICT_FAIL);
    ck_assert_int_eq(find(&r, "alive")->status, CHECK_FAILED);
    ck_assert_ptr_nonnull(strstr(find(&r, "alive")->summary, "SIGPIPE"));
    const char *unknown[] = {"fds", "sockets", "cpu", "memory"};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(find(&r, unknown[i])->status, CHECK_NOT_CHECKED);
        ck_assert_ptr_nonnull(strstr(find(&r, unknown[i])->summary, "not checked"));
    }
}
END_TEST

START_TEST(no_probes_is_not_checked_never_passed)
{
    struct scenario_samples s;
    uint64_t lat[3];
    struct scenario_result r = {0};
    healthy(&s, lat);
    s.probes = s.probes_ok = 0;
    s.nlatencies = 0;
    checks_evaluate(&s, &limits, &r);
    ck_assert_int_eq(find(&r, "accepting")->status, CHECK_NOT_CHECKED);
}
END_TEST

START_TEST(escapes_decode_and_errors_name_the_column)
{
    char out[16], err[128];
    long n = escape_decode("PING\\r\\n\\x00\\\\", 14, out, sizeof(out), err, sizeof(err));
    ck_assert_int_eq(n, 8);
    ck_assert_mem_eq(out, "PING\r\n\0\\", 8);
    ck_assert_int_eq(escape_decode("ab\\q", 4, out, sizeof(out), err, sizeof(err)), -1);
    ck_assert_str_eq(err, "column 3: unknown escape \\q");
    ck_assert_int_eq(escape_decode("\\x4", 3, out, sizeof(out), err, sizeof(err)), -1);
    ck_assert_int_eq(escape_decode("abc\\", 4, out, sizeof(out), err, sizeof(err)), -1);
    ck_assert_int_eq(escape_decode("0123456789abcdefX", 17, out, sizeof(out), err, sizeof(err)),
                     -1);
}
END_TEST

START_TEST(catalogue_resolves_names_and_paths)
{
    ck_assert(!catalogue_is_path("slowloris"));
    ck_assert(catalogue_is_path("./mine"));
    ck_assert(catalogue_is_path("mine.ini"));
    char err[512], **paths = NULL;
    char *names[] = {"slowloris", "/no/such/dir/mine.ini"};
    ck_assert_int_eq(catalogue_resolve(names, 2, &paths, err, sizeof(err)), 2);
    ck_assert_ptr_nonnull(strstr(paths[0], "/slowloris.ini"));
    ck_assert_str_eq(paths[1], "/no/such/dir/mine.ini"); /* a path is not opened here */
    catalogue_free(paths, 2);
    char *unknown[] = {"slowloris", "no-such-scenario"};
    ck_assert_int_eq(catalogue_resolve(unknown, 2, &paths, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "unknown scenario 'no-such-scenario'"));
}
END_TEST

START_TEST(catalogue_with_no_names_is_every_builtin_sorted)
{
    char err[512], **paths = NULL;
    int n = catalogue_resolve(NULL, 0, &paths, err, sizeof(err));
    ck_assert_int_ge(n, 6);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(paths[i]);
        ck_assert_str_eq(paths[i] + len - 4, ".ini");
        if (i > 0)
            ck_assert_int_lt(strcmp(paths[i - 1], paths[i]), 0);
    }
    catalogue_free(paths, n);
}
END_TEST

static volatile sig_atomic_t never_interrupted;

/* The library call decides a skip without starting anything, and reports it in the result. */
START_TEST(library_call_skips_a_scenario_it_cannot_run)
{
    struct run_options o;
    run_options_defaults(&o, &never_interrupted);
    o.no_sandbox = true;
    o.reference_server = "/bin/false";
    char err[512];
    struct run_env *env = run_env_new(&o, err, sizeof(err));
    ck_assert_ptr_nonnull(env);
    ck_assert_ptr_nonnull(strstr(run_env_sandbox(env), "--no-sandbox"));
    struct scenario sc = {.needs_sandbox = true};
    snprintf(sc.name, sizeof(sc.name), "silent");
    struct scenario_result res;
    ck_assert_int_eq(run_scenario_once(env, &sc, &res, err, sizeof(err)), RUN_DONE);
    ck_assert_int_eq(res.verdict, VERDICT_SKIP);
    ck_assert_str_eq(res.name, "silent");
    ck_assert_ptr_nonnull(strstr(res.reason, "--no-sandbox"));
    run_result_free(&res);
    run_env_free(env);
}
END_TEST

START_TEST(library_call_env_fails_with_a_reason)
{
    struct run_options o;
    run_options_defaults(&o, &never_interrupted);
    o.target_pid = INT32_MAX; /* above any pid_max */
    o.addr.sin_port = htons(1);
    char err[512] = "";
    ck_assert_ptr_null(run_env_new(&o, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "no such process"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("checks");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, all_six_checks_pass_with_their_numbers);
    tcase_add_test(tc, one_failed_probe_fails_accepting);
    tcase_add_test(tc, out_of_fds_503_and_queued_probes_pass_once_it_serves_again);
    tcase_add_test(tc, out_of_fds_fails_when_it_never_serves_again);
    tcase_add_test(tc, out_of_fds_fails_on_a_failure_after_recovering);
    tcase_add_test(tc, out_of_fds_spin_while_held_fails_cpu);
    tcase_add_test(tc, leaked_fds_fail_and_are_broken_down_by_type);
    tcase_add_test(tc, held_by_live_clients_is_not_leaked);
    tcase_add_test(tc, held_vanished_and_leaked_are_told_apart);
    tcase_add_test(tc, a_closed_file_fd_leaves_held_sockets_held);
    tcase_add_test(tc, released_says_when);
    tcase_add_test(tc, a_file_cache_is_not_a_leak_but_one_per_client_is);
    tcase_add_test(tc, close_wait_fails_sockets);
    tcase_add_test(tc, cpu_at_threshold_fails);
    tcase_add_test(tc, cpu_judged_window_by_window);
    tcase_add_test(tc, cpu_child_exiting_in_the_window_never_wraps);
    tcase_add_test(tc, cpu_waits_of_a_process_that_blocked_are_not_busy);
    tcase_add_test(tc, fds_times_are_never_negative_and_are_as_waited);
    tcase_add_test(tc, memory_past_slack_fails);
    tcase_add_test(tc, dead_target_fails_alive_and_nothing_else_passes_by_default);
    tcase_add_test(tc, no_probes_is_not_checked_never_passed);
    tcase_add_test(tc, escapes_decode_and_errors_name_the_column);
    suite_add_tcase(s, tc);
    TCase *lib = tcase_create("library");
    tcase_add_test(lib, catalogue_resolves_names_and_paths);
    tcase_add_test(lib, catalogue_with_no_names_is_every_builtin_sorted);
    tcase_add_test(lib, library_call_skips_a_scenario_it_cannot_run);
    tcase_add_test(lib, library_call_env_fails_with_a_reason);
    suite_add_tcase(s, lib);
    return ts_run_suite(s);
}
