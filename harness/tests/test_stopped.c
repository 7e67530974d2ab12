/* A run that stops early still reports it: a set-up error (a target that does not start, a
 * port another server holds) or an interrupt (SIGINT in the middle of a run) is an entry in
 * the JSON, a testcase in the JUnit and a test in the TAP, with its reason; scenarios not run
 * are `skip`ped ("not run"), never missing and never passed. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

#ifndef CONNFAULT_BIN
#define CONNFAULT_BIN "connfault"
#endif
#ifndef CONNFAULT_SERVER_BIN
#define CONNFAULT_SERVER_BIN "connfault-server"
#endif

#define RUN_MS 120000 /* a deadline for a whole run, never reached when all is well */

/* A run's report files, in a temp dir of its own. */
struct reports {
    char dir[64], junit[128], json[128], tap[128];
    char *junit_text, *tap_text;
    struct ts_json *json_root;
};

static void reports_init(struct reports *r)
{
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(ts_tmpdir_create(r->dir, sizeof(r->dir), "connfault-stopped"), 0);
    snprintf(r->junit, sizeof(r->junit), "%s/r.xml", r->dir);
    snprintf(r->json, sizeof(r->json), "%s/r.json", r->dir);
    snprintf(r->tap, sizeof(r->tap), "%s/r.tap", r->dir);
}

static void reports_read(struct reports *r, const struct ts_proc *p)
{
    char *json = ts_slurp(r->json, NULL);
    ck_assert_msg(json != NULL, "no JSON report\nstdout:\n%s\nstderr:\n%s", p->out, p->err);
    char error[128];
    r->json_root = ts_json_parse(json, error, sizeof(error));
    ck_assert_msg(r->json_root != NULL, "bad JSON (%s):\n%s", error, json);
    free(json);
    r->junit_text = ts_slurp(r->junit, NULL);
    r->tap_text = ts_slurp(r->tap, NULL);
    ck_assert_ptr_nonnull(r->junit_text);
    ck_assert_ptr_nonnull(r->tap_text);
}

static void reports_free(struct reports *r)
{
    ts_json_free(r->json_root);
    free(r->junit_text);
    free(r->tap_text);
    ck_assert_int_eq(ts_tmpdir_remove(r->dir), 0);
}

/* The JSON entry i: its name and verdict, and its reason containing what. */
static void expect_entry(const struct reports *r, size_t i, const char *name, const char *verdict,
                         const char *what)
{
    const struct ts_json *e = ts_json_at(ts_json_get(r->json_root, "scenarios"), i);
    ck_assert_msg(e != NULL, "no entry %zu", i);
    ck_assert_str_eq(ts_json_str(e, "name"), name);
    ck_assert_str_eq(ts_json_str(e, "verdict"), verdict);
    const char *reason = ts_json_str(e, "reason");
    ck_assert_msg(reason && strstr(reason, what), "entry %s: reason '%s' lacks '%s'", name,
                  reason ? reason : "(none)", what);
}

/* The JUnit counts, and a testcase named name with the element tag (error, skipped...). */
static void expect_junit(const struct reports *r, const char *counts, const char *name,
                         const char *tag)
{
    ck_assert_msg(strstr(r->junit_text, counts), "JUnit lacks %s:\n%s", counts, r->junit_text);
    char testcase[128];
    snprintf(testcase, sizeof(testcase), "<testcase classname=\"connfault\" name=\"%s\"", name);
    const char *t = strstr(r->junit_text, testcase);
    ck_assert_msg(t != NULL, "no testcase %s:\n%s", name, r->junit_text);
    const char *end = strstr(t, "</testcase>");
    const char *elem = strstr(t, tag);
    ck_assert_msg(elem && end && elem < end, "testcase %s has no %s:\n%s", name, tag,
                  r->junit_text);
}

static void run_connfault(struct ts_proc *p, const struct reports *r, const char *target_cmd,
                          const char *port, const char *scenario)
{
    const struct ts_run_opts opts = {.timeout_ms = RUN_MS};
    if (port)
        ck_assert_int_eq(ts_run(p,
                                TS_ARGV(CONNFAULT_BIN, "run", "--no-capture", "--target-cmd",
                                        target_cmd, "--port", port, "--junit", r->junit, "--json",
                                        r->json, "--tap", r->tap, scenario),
                                &opts),
                         0);
    else
        ck_assert_int_eq(
            ts_run(p,
                   TS_ARGV(CONNFAULT_BIN, "run", "--no-capture", "--target-cmd", target_cmd,
                           "--junit", r->junit, "--json", r->json, "--tap", r->tap, scenario),
                   &opts),
            0);
    ck_assert(!p->timed_out);
}

START_TEST(target_that_does_not_start_is_a_setup_entry)
{
    struct reports r;
    struct ts_proc p;
    reports_init(&r);
    run_connfault(&p, &r, "echo 'no <config> here for {port}'; exit 3", NULL, "connect-close");
    ck_assert_msg(p.status == 2, "status %d\nstderr:\n%s", p.status, p.err);
    reports_read(&r, &p);
    ck_assert_uint_eq(ts_json_count(ts_json_get(r.json_root, "scenarios")), 1);
    expect_entry(&r, 0, "set-up", "error", "exited with status 3");
    expect_entry(&r, 0, "set-up", "error", "not run: connect-close");
    expect_entry(&r, 0, "set-up", "error", "no <config> here");
    expect_junit(&r, "tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\"", "set-up", "<error");
    ck_assert_ptr_nonnull(strstr(r.junit_text, "no &lt;config&gt; here")); /* escaped */
    ck_assert_ptr_nonnull(strstr(r.tap_text, "1..1\nnot ok 1 - set-up\n"));
    ck_assert_ptr_nonnull(strstr(r.tap_text, "severity: error"));
    /* the human totals agree with the files */
    ck_assert_ptr_nonnull(strstr(p.out, "0 passed, 0 failed, 0 skipped, 1 errored"));
    ts_proc_free(&p);
    reports_free(&r);
}
END_TEST

START_TEST(port_held_by_another_server_is_a_setup_entry)
{
    struct ts_proc srv, p;
    const struct ts_run_opts srv_opts = {.timeout_ms = RUN_MS, .discard_stderr = true};
    int port;
    ck_assert_int_eq(
        ts_server_start(&srv, TS_ARGV(CONNFAULT_SERVER_BIN, "--port", "0", "-q"), &srv_opts, &port),
        0);
    char port_s[16], holder[64];
    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(holder, sizeof(holder), "port %d is held by pid %d", port, (int)srv.pid);
    struct reports r;
    reports_init(&r);
    run_connfault(&p, &r, CONNFAULT_SERVER_BIN " --port {port} -q", port_s, "connect-close");
    ts_proc_free(&srv);
    ck_assert_msg(p.status == 2, "status %d\nstderr:\n%s", p.status, p.err);
    reports_read(&r, &p);
    ck_assert_uint_eq(ts_json_count(ts_json_get(r.json_root, "scenarios")), 1);
    expect_entry(&r, 0, "set-up", "error", holder);
    expect_junit(&r, "errors=\"1\"", "set-up", "<error");
    ck_assert_ptr_nonnull(strstr(r.junit_text, holder));
    ck_assert_str_eq(ts_json_str(ts_json_get(r.json_root, "target"), "kind"), "cmd");
    ts_proc_free(&p);
    reports_free(&r);
}
END_TEST

/* SIGINT to the run, which then ends with status 130 and its reports holding n entries. */
static void interrupt_run(struct ts_proc *p, struct reports *r, size_t n)
{
    ck_assert_int_eq(kill(p->pid, SIGINT), 0);
    ck_assert_int_eq(ts_proc_finish(p), 0);
    ck_assert_msg(p->status == 130, "status %d\nstdout:\n%s\nstderr:\n%s", p->status, p->out,
                  p->err);
    reports_read(r, p);
    ck_assert_uint_eq(ts_json_count(ts_json_get(r->json_root, "scenarios")), n);
}

/* SIGINT while the second of three scenarios runs (one at a time): the first keeps its
 * verdict, the second is in error ("interrupted"), the third was not run (skip), and the exit
 * status is 130. */
START_TEST(interrupt_mid_run_reports_every_scenario)
{
    struct reports r;
    struct ts_proc p;
    reports_init(&r);
    const struct ts_run_opts opts = {.timeout_ms = RUN_MS};
    ck_assert_int_eq(
        ts_proc_start(&p,
                      TS_ARGV(CONNFAULT_BIN, "run", "--jobs", "1", "--no-capture", "--seed", "3",
                              "--junit", r.junit, "--json", r.json, "--tap", r.tap, "connect-close",
                              "slowloris", "half-close"),
                      &opts),
        0);
    /* the first verdict is printed when the first scenario is over: the second has begun */
    ck_assert_msg(ts_proc_wait_out(&p, "PASS  connect-close", RUN_MS) == 0, "stdout:\n%s", p.out);
    interrupt_run(&p, &r, 3);
    expect_entry(&r, 0, "connect-close", "pass", "");
    expect_entry(&r, 1, "slowloris", "error", "interrupted");
    expect_entry(&r, 2, "half-close", "skip", "not run: the run was interrupted during slowloris");
    /* nothing was judged in the interrupted one: no check may look made */
    const struct ts_json *cut = ts_json_at(ts_json_get(r.json_root, "scenarios"), 1);
    ck_assert_uint_eq(ts_json_count(ts_json_get(cut, "checks")), 0);
    expect_junit(&r, "tests=\"3\" failures=\"0\" errors=\"1\" skipped=\"1\"", "slowloris",
                 "<error");
    expect_junit(&r, "tests=\"3\"", "half-close", "<skipped");
    ck_assert_ptr_nonnull(strstr(r.tap_text, "1..3\n"));
    ck_assert_ptr_nonnull(strstr(r.tap_text, "not ok 2 - slowloris\n"));
    ck_assert_ptr_nonnull(strstr(r.tap_text, "ok 3 - half-close # SKIP not run"));
    ck_assert_ptr_nonnull(strstr(p.out, "1 passed, 0 failed, 1 skipped, 1 errored"));
    ts_proc_free(&p);
    reports_free(&r);
}
END_TEST

/* The job processes of a run: its children running the harness itself for 500 ms or more (a
 * target forked from it, as the pre-flight's, runs connfault only until it execs). */
#define JOB_SEEN_MS 500
struct jobs_seen {
    pid_t run;
    pid_t pid[64];
    uint64_t first_ms[64];
    bool job[64];
    size_t n, njobs;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool runs_connfault(int pid)
{
    char path[64], exe[256];
    snprintf(path, sizeof(path), "/proc/%d/exe", pid);
    ssize_t len = readlink(path, exe, sizeof(exe) - 1);
    if (len <= 0)
        return false;
    exe[len] = '\0';
    const char *base = strrchr(exe, '/');
    return strcmp(base ? base + 1 : exe, "connfault") == 0;
}

/* A third job has been seen: with --jobs 2, one of the first two ended and its slot took the
 * next scenario. */
static bool third_job_started(void *arg)
{
    struct jobs_seen *js = arg;
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)js->run, (int)js->run);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    int pid;
    while (fscanf(f, "%d", &pid) == 1) {
        if (!runs_connfault(pid))
            continue;
        size_t i = 0;
        while (i < js->n && js->pid[i] != pid)
            i++;
        if (i == js->n && js->n < 64)
            js->pid[js->n] = pid, js->first_ms[js->n++] = now_ms();
        else if (i < js->n && !js->job[i] && now_ms() - js->first_ms[i] >= JOB_SEEN_MS)
            js->job[i] = true, js->njobs++;
    }
    fclose(f);
    return js->njobs >= 3;
}

/* --jobs 2, an interrupt while two scenarios run, after a third finished ahead of the one
 * before it: the finished one keeps its verdict (it used to be called "not run"), both running
 * are in error (interrupted), the one never started is skip. The target has no timeouts, so
 * slowloris and zero-window wait out their whole grace: they are running when the interrupt
 * comes. */
START_TEST(interrupt_with_jobs_keeps_what_finished)
{
    struct reports r;
    struct ts_proc p;
    reports_init(&r);
    const struct ts_run_opts opts = {.timeout_ms = RUN_MS};
    ck_assert_int_eq(
        ts_proc_start(&p,
                      TS_ARGV(CONNFAULT_BIN, "run", "--jobs", "2", "--grace", "90", "--no-capture",
                              "--seed", "3", "--target-cmd",
                              CONNFAULT_SERVER_BIN " --bug no-timeouts --port {port}", "--junit",
                              r.junit, "--json", r.json, "--tap", r.tap, "slowloris",
                              "connect-close", "zero-window", "half-close"),
                      &opts),
        0);
    struct jobs_seen js = {.run = p.pid};
    ck_assert_msg(ts_wait_until(third_job_started, &js, RUN_MS, 20),
                  "no third job within %d ms\nstdout:\n%s", RUN_MS, p.out);
    interrupt_run(&p, &r, 4);
    expect_entry(&r, 0, "slowloris", "error", "interrupted (SIGINT or SIGTERM)");
    expect_entry(&r, 1, "connect-close", "pass", "");
    expect_entry(&r, 2, "zero-window", "error", "interrupted (SIGINT or SIGTERM)");
    expect_entry(&r, 3, "half-close", "skip", "not run: the run was interrupted before it started");
    const struct ts_json *done = ts_json_at(ts_json_get(r.json_root, "scenarios"), 1);
    ck_assert_uint_gt(ts_json_count(ts_json_get(done, "checks")), 0); /* it was judged */
    expect_junit(&r, "tests=\"4\" failures=\"0\" errors=\"2\" skipped=\"1\"", "connect-close",
                 "<testcase");
    ck_assert_ptr_nonnull(strstr(p.out, "1 passed, 0 failed, 1 skipped, 2 errored"));
    ts_proc_free(&p);
    reports_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stopped");
    TCase *tc = tcase_create("stopped");
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, target_that_does_not_start_is_a_setup_entry);
    tcase_add_test(tc, port_held_by_another_server_is_a_setup_entry);
    tcase_add_test(tc, interrupt_mid_run_reports_every_scenario);
    tcase_add_test(tc, interrupt_with_jobs_keeps_what_finished);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
