/* fd-exhaustion passes only if the target really could take no more clients (issue 12;
 * run/exhaustion.h): out of fds (a), or stopped accepting with connections waiting (b).
 *
 * The rule on made-up samples first, then real servers, whose documented behaviour fixes the
 * verdict:
 *   connfault-server  holds every fd it may (a reserve fd for 503s): out of fds, PASS (a)
 *   nginx             accept4() fails with EMFILE, accept disabled for a moment: PASS (a)
 *   lighttpd          server.max-connections (max-fds / 3 with max-fds 256, ~94 fds): stops
 *                     accepting well below the limit, connections wait: PASS (b)
 *   python3 -m http.server  listen backlog 5: behind it the kernel completes handshakes it
 *                     then drops (SYN cookies), idle clients never retry, and the server holds
 *                     50-170 fds of 256: `error`, not PASS (it PASSed before: the regression)
 *   busybox httpd     a process per connection, none near its limit: `error` saying so */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exhaustion.h"
#include "checks.h"
#include "support.h"

/* ---- the rule, on made-up samples ---------------------------------------------------- */

/* A sample every 50 ms as the fault phase takes them. */
struct feed {
    struct exhaust_track x;
    struct kernel_counts kernel; /* measure_kernel_end's, made up */
    uint64_t now;
};

static void feed_begin(struct feed *f, unsigned limit)
{
    memset(f, 0, sizeof(*f));
    f->x.on = true;
    f->x.limit_default = limit;
    f->now = f->x.start_ms = f->x.last_ms = 1000;
}

/* n samples of one process holding fds, queued connections of backlog waiting. */
static void feed(struct feed *f, unsigned n, unsigned fds, unsigned queued, unsigned backlog)
{
    for (unsigned i = 0; i < n; i++) {
        struct fd_counts c = {.total = fds, .processes = 1, .most_in_one = fds, .most_pid = 42};
        f->now += 50;
        exhaust_sample(&f->x, &c, 0, 0, queued, backlog, f->now);
    }
}

static void judge(const struct feed *f, uint64_t connected, struct exhaustion_evidence *e)
{
    exhaust_judge(&f->x, &f->kernel, 2.0, connected, e);
}

START_TEST(fds_at_the_limit_are_out_of_fds)
{
    struct feed f;
    struct exhaustion_evidence e;
    feed_begin(&f, 256);
    feed(&f, 3, 100, 0, 128);
    feed(&f, 1, 252, 0, 128); /* within EXHAUST_NEAR_LIMIT (4) of 256 */
    feed(&f, 4, 200, 0, 128); /* it may let some go after: the peak is what counts */
    judge(&f, 1000, &e);
    ck_assert_int_eq(e.how, EXHAUSTION_OUT_OF_FDS);
    ck_assert_uint_eq(e.fds_peak, 252);
    ck_assert_uint_eq(e.fds_limit, 256);
    ck_assert_msg(strstr(e.summary, "fds peaked at 252 of 256 (RLIMIT_NOFILE) at +0.20s"), "%s",
                  e.summary);
}
END_TEST

/* The limit the process has (read from /proc) wins over the scenario's: nginx may raise it. */
START_TEST(the_process_limit_wins_over_the_scenario)
{
    struct feed f;
    struct exhaustion_evidence e;
    feed_begin(&f, 256);
    struct fd_counts c = {.total = 254, .processes = 1, .most_in_one = 254, .most_pid = 7};
    exhaust_sample(&f.x, &c, 1024, 0, 0, 128, 1050);
    judge(&f, 254, &e);
    ck_assert_uint_eq(e.fds_limit, 1024);
    ck_assert_int_ne(e.how, EXHAUSTION_OUT_OF_FDS);
}
END_TEST

START_TEST(flat_fds_with_connections_waiting_is_stopped_accepting)
{
    struct feed f;
    struct exhaustion_evidence e;
    feed_begin(&f, 256);
    feed(&f, 2, 50, 900, 1024);
    feed(&f, 6, 94, 900, 1024);
    feed(&f, 6, 96, 905, 1024); /* within EXHAUST_FLAT_SLACK: still flat */
    judge(&f, 1000, &e);
    ck_assert_int_eq(e.how, EXHAUSTION_STOPPED);
    ck_assert_double_eq_tol(e.plateau_s, 0.55, 1e-9); /* 12 samples: 11 gaps of 50 ms */
    ck_assert_msg(strstr(e.summary, "stopped accepting at 96 fds of 256 with up to 905 "
                                    "connections waiting in its listen queue for the last 0.6s"),
                  "%s", e.summary);
    /* full: said so */
    feed_begin(&f, 256);
    feed(&f, 12, 94, 128, 128);
    judge(&f, 1000, &e);
    ck_assert_int_eq(e.how, EXHAUSTION_STOPPED);
    ck_assert(e.queue_full);
    ck_assert_msg(strstr(e.summary, "its listen queue full (128 of 128)"), "%s", e.summary);
}
END_TEST

/* Still accepting at the end: rising past the slack restarts the plateau, and a short one is
 * not enough. The python case: backlog 5 full, fds rising. */
START_TEST(rising_fds_at_the_end_are_not_exhausted)
{
    struct feed f;
    struct exhaustion_evidence e;
    feed_begin(&f, 256);
    for (unsigned fds = 10; fds < 80; fds += 3)
        feed(&f, 1, fds, 5, 5);
    judge(&f, 1000, &e);
    ck_assert_int_eq(e.how, EXHAUSTION_NOT_REACHED);
    ck_assert_msg(strstr(e.summary, "fds peaked at 79 of 256 and were still rising when the fault "
                                    "phase ended (listen queue 5 of 5 full") &&
                      strstr(e.summary, "give a longer duration than 2.0s"),
                  "%s", e.summary);
    /* flat, but for less than EXHAUST_PLATEAU_MS */
    feed_begin(&f, 256);
    feed(&f, 10, 30, 5, 5);
    feed(&f, 9, 94, 5, 5); /* 8 gaps: 400 ms */
    judge(&f, 1000, &e);
    ck_assert_int_eq(e.how, EXHAUSTION_NOT_REACHED);
    /* a plateau that ended before the end of the fault phase (the queue emptied) */
    feed_begin(&f, 256);
    feed(&f, 20, 94, 50, 128);
    feed(&f, 1, 94, 0, 128);
    judge(&f, 94, &e);
    ck_assert_int_eq(e.how, EXHAUSTION_NOT_REACHED);
    ck_assert_msg(strstr(e.summary, "accepted every client that connected"), "%s", e.summary);
}
END_TEST

/* Connected from the client's side, never seen by the server: python's backlog of 5. */
START_TEST(clients_the_server_never_saw_are_named)
{
    struct feed f;
    struct exhaustion_evidence e;
    feed_begin(&f, 256);
    f.kernel.known = true;
    f.kernel.rise.syncookies_sent = 880;
    f.kernel.rise.listen_overflows = 1800;
    feed(&f, 20, 105, 0, 5);
    judge(&f, 1000, &e);
    ck_assert_int_eq(e.how, EXHAUSTION_NOT_REACHED);
    ck_assert_msg(strstr(e.summary, "though 1000 clients connected") &&
                      strstr(e.summary, "(SYN cookies 880, ListenOverflows 1800)") &&
                      strstr(e.summary, "never reached the server"),
                  "%s", e.summary);
}
END_TEST

START_TEST(a_process_per_connection_is_named)
{
    struct feed f;
    struct exhaustion_evidence e;
    feed_begin(&f, 256);
    struct fd_counts c = {.total = 338, .processes = 168, .most_in_one = 5, .most_pid = 9};
    exhaust_sample(&f.x, &c, 0, 0, 0, 9, 1050);
    judge(&f, 1000, &e);
    ck_assert_int_eq(e.how, EXHAUSTION_NOT_REACHED);
    ck_assert_msg(strstr(e.summary, "no process of the target held more than 5 of its 256 fds, "
                                    "while it ran up to 168 processes (338 fds in all)") &&
                      strstr(e.summary, "process per connection"),
                  "%s", e.summary);
}
END_TEST

START_TEST(an_unread_queue_cannot_show_stopped)
{
    struct feed f;
    struct exhaustion_evidence e;
    feed_begin(&f, 256);
    struct fd_counts c = {.total = 94, .processes = 1, .most_in_one = 94, .most_pid = 9};
    for (unsigned i = 0; i < 20; i++)
        exhaust_sample(&f.x, &c, 0, -ENOENT, 0, 0, 1050 + 50 * i);
    judge(&f, 1000, &e);
    ck_assert_int_eq(e.how, EXHAUSTION_NOT_REACHED);
    ck_assert_msg(strstr(e.summary, "could not be read (no listener found"), "%s", e.summary);
    /* and no sample at all: not measured (evidence_judge makes that an error too) */
    feed_begin(&f, 256);
    judge(&f, 1000, &e);
    ck_assert_int_eq(e.how, EXHAUSTION_NOT_MEASURED);
}
END_TEST

/* ---- real servers ---------------------------------------------------------------------- */

#define REAL_DATA_DIR CONNFAULT_SOURCE_DIR "/harness/tests/data/real"
#define REAL_RUN_MS   60000 /* one fd-exhaustion: about 5 s, more on a loaded machine */

static char dir[128];

static void real_dir_create(void)
{
    ck_assert_int_eq(ts_www_dir_create(dir, sizeof(dir), "connfault-exhaustion"), 0);
}

static void real_dir_remove(void)
{
    ts_tmpdir_remove(dir);
}

/* What one run of fd-exhaustion said: verdict, reason and the exhaustion fact. */
struct real_result {
    char verdict[16], reason[1024], how[32], summary[512];
    char failed[128]; /* the failed checks' names, "fds " */
    long long fds_peak;
    char *out; /* connfault's output, for the messages */
};

static void real_read(const char *json_path, struct real_result *res)
{
    char *text = ts_slurp(json_path, NULL);
    ck_assert_msg(text, "no JSON report:\n%s", res->out);
    char error[256];
    struct ts_json *root = ts_json_parse(text, error, sizeof(error));
    ck_assert_msg(root, "JSON report: %s", error);
    const struct ts_json *sc = ts_json_at(ts_json_get(root, "scenarios"), 0);
    const struct ts_json *x = ts_json_get(sc, "exhaustion");
    ck_assert_msg(x && ts_json_str(x, "how"), "no exhaustion fact:\n%s", res->out);
    snprintf(res->verdict, sizeof(res->verdict), "%s", ts_json_str(sc, "verdict"));
    snprintf(res->reason, sizeof(res->reason), "%s", ts_json_str(sc, "reason"));
    snprintf(res->how, sizeof(res->how), "%s", ts_json_str(x, "how"));
    snprintf(res->summary, sizeof(res->summary), "%s", ts_json_str(x, "summary"));
    res->fds_peak = strtoll(ts_json_num(x, "fds_peak"), NULL, 10);
    const struct ts_json *checks = ts_json_get(sc, "checks");
    res->failed[0] = '\0';
    for (size_t i = 0; i < ts_json_count(checks); i++) {
        const struct ts_json *c = ts_json_at(checks, i);
        if (strcmp(ts_json_str(c, "status"), "failed") == 0)
            snprintf(res->failed + strlen(res->failed), sizeof(res->failed) - strlen(res->failed),
                     "%s ", ts_json_str(c, "name"));
    }
    ts_json_free(root);
    free(text);
}

/* connfault run fd-exhaustion against target_cmd (extra flags: NULL-terminated). */
static void real_run(const char *target_cmd, const char *const *extra, struct real_result *res)
{
    char json_path[256];
    snprintf(json_path, sizeof(json_path), "%s/report.json", dir);
    unlink(json_path);
    const char *argv[24] = {
        CONNFAULT_BIN, "run",          "--jobs",  "1", "--target-cmd", target_cmd, "--seed",
        "12",          "--no-capture", "--grace", "3", "--json",       json_path};
    size_t argc = 13;
    for (size_t i = 0; extra && extra[i]; i++)
        argv[argc++] = extra[i];
    argv[argc++] = "fd-exhaustion";
    struct ts_proc p;
    const struct ts_run_opts opts = {.timeout_ms = REAL_RUN_MS, .merge_stderr = true};
    ck_assert_int_eq(ts_run(&p, argv, &opts), 0);
    ck_assert_msg(!p.timed_out, "connfault run did not end in %d ms:\n%s", REAL_RUN_MS, p.out);
    res->out = ts_nonnull(strdup(p.out));
    ts_proc_free(&p);
    real_read(json_path, res);
}

static void real_expect(const struct real_result *res, const char *verdict, const char *how,
                        const char *says)
{
    ck_assert_msg(strcmp(res->verdict, verdict) == 0, "verdict %s, expected %s: %s\n%s",
                  res->verdict, verdict, res->reason, res->out);
    ck_assert_msg(strcmp(res->how, how) == 0, "exhaustion %s, expected %s: %s\n%s", res->how, how,
                  res->summary, res->out);
    ck_assert_msg(strstr(res->summary, says), "exhaustion summary lacks '%s': %s", says,
                  res->summary);
    if (strcmp(verdict, "error") == 0)
        ck_assert_msg(strstr(res->reason, "not exhausted (rlimit_nofile = 256): ") &&
                          strstr(res->reason, res->summary),
                      "reason: %s", res->reason);
}

/* Not exhausted: `error` with the cause, or a failed fds check (which stands) with the same
 * fact in the report. Both servers, which hold an idle connection for ever (python) or 60 s
 * (busybox), sometimes keep 1-9 sockets ESTABLISHED whose peer is gone: half-open connections
 * the kernel completed behind their overflowing listen backlog, whose client's FIN or RST was
 * lost (test_real_servers' closing note: "held after the peer vanished" is not yet told from
 * "leaked"). Seen here: python failed fds in 1 of 16 runs ("2 sockets leaked"). Never a pass. */
static void real_expect_not_exhausted(const struct real_result *res, const char *says)
{
    if (strcmp(res->verdict, "fail") == 0) {
        ck_assert_msg(strcmp(res->failed, "fds ") == 0, "failed: %s(%s)\n%s", res->failed,
                      res->reason, res->out);
        ck_assert_msg(strcmp(res->how, "not-reached") == 0 && strstr(res->summary, says),
                      "exhaustion %s: %s", res->how, res->summary);
        ck_assert_msg(strstr(res->out, "not exhausted: "), "the FAIL does not say it: %s",
                      res->out);
        return;
    }
    real_expect(res, "error", "not-reached", says);
}

START_TEST(connfault_server_runs_out_of_fds)
{
    struct real_result res;
    real_run("exec " CONNFAULT_SERVER_BIN " --port {port} --header-timeout 1 --idle-timeout 2 "
             "--quiet",
             NULL, &res);
    real_expect(&res, "pass", "out-of-fds", "out of fds, accept() fails with EMFILE");
    ck_assert_msg(strstr(res.out, "exhausted: fds peaked at "), "%s", res.out); /* the line */
    free(res.out);
}
END_TEST

START_TEST(nginx_runs_out_of_fds)
{
    ts_need_program("/usr/sbin/nginx", "nginx");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "sed -e 's|@DIR@|%s|g' -e 's|@PORT@|{port}|g' %s/nginx.conf >%s/nginx.conf && "
             "exec /usr/sbin/nginx -e stderr -p %s/ -c %s/nginx.conf",
             dir, REAL_DATA_DIR, dir, dir, dir);
    struct real_result res;
    real_run(cmd, NULL, &res);
    real_expect(&res, "pass", "out-of-fds", "of 256 (RLIMIT_NOFILE)");
    free(res.out);
}
END_TEST

START_TEST(lighttpd_stops_accepting_at_its_connection_limit)
{
    ts_need_program("/usr/sbin/lighttpd", "lighttpd");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "sed -e 's|@DIR@|%s|g' -e 's|@PORT@|{port}|g' %s/lighttpd.conf >%s/lighttpd.conf && "
             "exec /usr/sbin/lighttpd -D -f %s/lighttpd.conf",
             dir, REAL_DATA_DIR, dir, dir);
    struct real_result res;
    real_run(cmd, NULL, &res);
    real_expect(&res, "pass", "stopped-accepting", "a connection limit of its own");
    ck_assert_msg(res.fds_peak < 200, "lighttpd held %lld fds: %s", res.fds_peak, res.summary);
    free(res.out);
}
END_TEST

/* The regression: it PASSed with 53-170 fds of 256 held. */
START_TEST(python_http_server_is_not_exhausted)
{
    ts_need_program("/usr/bin/python3", "python3");
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "exec /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory %s/www {port}",
             dir);
    struct real_result res;
    /* --probe-timeout: a probe's SYN dropped at the backlog of 5 gets in on its retry */
    real_run(cmd, TS_ARGV("--probe-timeout", "4.5"), &res);
    real_expect_not_exhausted(&res, "fds peaked at ");
    ck_assert_msg(res.fds_peak < 252, "python held %lld fds: %s", res.fds_peak, res.summary);
    free(res.out);
}
END_TEST

START_TEST(busybox_process_per_connection_is_not_exhausted)
{
    ts_need_program("/usr/bin/busybox", "busybox");
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "exec /usr/bin/busybox httpd -f -p 127.0.0.1:{port} -h %s/www", dir);
    struct real_result res;
    /* --cpu-threshold: after the release, a hundred children exiting on a loaded machine wait
     * for a CPU (busy 26-77 % of a core, CPU used 1-5 %) and the cpu check took that for a spin
     * (seen 1 of 1 at load 23): not what this test is about */
    real_run(cmd, TS_ARGV("--probe-timeout", "4.5", "--cpu-threshold", "10000"), &res);
    real_expect_not_exhausted(&res, "a server with a process per connection");
    free(res.out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("exhaustion");
    TCase *rule = tcase_create("rule");
    tcase_add_test(rule, fds_at_the_limit_are_out_of_fds);
    tcase_add_test(rule, the_process_limit_wins_over_the_scenario);
    tcase_add_test(rule, flat_fds_with_connections_waiting_is_stopped_accepting);
    tcase_add_test(rule, rising_fds_at_the_end_are_not_exhausted);
    tcase_add_test(rule, clients_the_server_never_saw_are_named);
    tcase_add_test(rule, a_process_per_connection_is_named);
    tcase_add_test(rule, an_unread_queue_cannot_show_stopped);
    suite_add_tcase(s, rule);
    TCase *real = tcase_create("real servers");
    tcase_set_timeout(real, REAL_RUN_MS / 1000 + 20);
    /* made once by the parent: removed even when a test fails */
    tcase_add_unchecked_fixture(real, real_dir_create, real_dir_remove);
    tcase_add_test(real, connfault_server_runs_out_of_fds);
    tcase_add_test(real, nginx_runs_out_of_fds);
    tcase_add_test(real, lighttpd_stops_accepting_at_its_connection_limit);
    tcase_add_test(real, python_http_server_is_not_exhausted);
    tcase_add_test(real, busybox_process_per_connection_is_not_exhausted);
    suite_add_tcase(s, real);
    return ts_run_suite(s);
}
