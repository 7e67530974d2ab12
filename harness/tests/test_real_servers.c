/* connfault against real servers nobody here wrote (issue 11): Debian's nginx, lighttpd,
 * busybox httpd, `python3 -m http.server` and redis, each started by `connfault run
 * --target-cmd` in the foreground on 127.0.0.1:{port}, serving a temp dir that holds the
 * files --large-path (1 MiB) and --huge-path (16 MiB) name. The servers are configured with
 * short timeouts (harness/tests/data/real/) so that a correct one releases every faulty client
 * within --grace; each is asked a handful of scenarios in one run, and the verdict of each
 * is the one its documented behaviour implies:
 *
 *   nginx      client_header_timeout is for the whole request head: everything PASSes.
 *   lighttpd   max-read-idle is re-armed on every byte: a trickle holds it for ever, slowloris
 *              FAILs (fds); the rest PASSes (with a 6 s grace: it closes the file fd it keeps
 *              after sending big.bin 2.8 s after the faults).
 *   busybox    a process per connection, alarm(60) re-armed on every header line: slowloris
 *              FAILs (fds); rst-mid-response, abort-mid-response PASS; half-close PASSes
 *              (the kernel's resets excused); connect-close PASSes with the default 75 s grace
 *              (below).
 *   python     ThreadingHTTPServer, no timeout at all: a thread blocked in readline() per
 *              slowloris client, held for ever: FAILs (fds); rst-mid-response,
 *              abort-mid-response, half-close PASS; connect-close PASSes or FAILs only with
 *              "held after the peer vanished" (below).
 *   redis      protected mode on answers 127.0.0.2 (where fault clients come from) with
 *              -DENIED and closes: `error` naming it; protected mode off PASSes.
 *
 * The end of the fault phase is no guillotine: a client still connecting (behind busybox's
 * and python's listen backlogs of 9 and 5) or still reading when the duration ends finishes its
 * script, so busybox and python rst-mid-response, and python abort-mid-response
 * (single-threaded, it used to block in sendto() to a client the harness had stopped reading)
 * PASS as their behaviour implies. fd-exhaustion lets its idle clients
 * go at the end of the fault phase (release = end): nginx and lighttpd, which stop accepting
 * or leave probes in the queue while out of fds and serve again after, PASS; so does
 * connfault-server answering 503 at once (fd-exhaustion-busy.ini, in data/real/).
 *
 * Small listen backlogs (busybox 9, python 5) under 100 clients at once. connect-close: 1 to
 * 9 server sockets are sometimes left ESTABLISHED with no peer (ss: segs_in 2, nothing
 * received since the handshake, the client's end in TIME_WAIT or in no TCP table of the netns):
 * the kernel handed the server a connection (made, it seems, from a SYN cookie) whose client
 * had already closed, and the server was never told (seen in 2 of 6 python runs). They are held
 * after the peer vanished, not leaked (run/measure.c). busybox's child for one has alarm(60)
 * (HEADER_READ_TIMEOUT in busybox's httpd.c) and exits: with the default 75 s grace, connect-close
 * PASSes (after ~60 s when some vanished, at once when none did); python has no timeout: with a
 * short grace it PASSes when none vanished (most runs) and FAILs with "N held after the peer
 * vanished" when some did (never "leaked"): the test accepts exactly those two. half-close: 3-23 of
 * 100 half-closed clients are reset before reading a byte: the kernel answered SYNs past the
 * backlog with SYN cookies and reset the connections whose cookie then failed (TcpExt
 * SyncookiesFailed rose by exactly the number of such resets in every run measured, in connfault's
 * own network namespace). The responses check excuses that many, never more: half-close PASSes, its
 * summary says "N resets before any byte excused: the kernel's". (A raw read waiting for more than
 * redis sends, and lighttpd's file cache judged at once, are in test_real_judging.)
 *
 * A PASS must have looked: each group of a passing scenario reached its fault (reached >=
 * planned / 2). A server that is not installed FAILs the test with the package to install
 * (ci/setup installs them all): it is never skipped. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

/* CONNFAULT_BIN and CONNFAULT_SOURCE_DIR come from harness/CMakeLists.txt. */
#define REAL_DATA_DIR       CONNFAULT_SOURCE_DIR "/harness/tests/data/real"
#define REAL_RUN_TIMEOUT_MS 100000 /* one connfault run: a few scenarios of ~5 s each */
#define REAL_GRACE          "3"    /* s: above every configured timeout (1-2 s) */

/* One expected verdict: scenario, verdict, and for `error` or `fail` a text the reason has. */
struct real_expect {
    const char *scenario; /* a built-in name, or a file under REAL_DATA_DIR (NAME.ini) */
    const char *verdict;
    const char *reason_has;    /* NULL: not looked at */
    const char *accepting_key; /* a number of the accepting check that must be > 0, or NULL */
};

/* The verdict of a scenario where both are right: a pass, or a fail whose reason has
 * reason_has and never "leaked" (what the kernel does under an overflowed backlog varies from
 * run to run). */
#define REAL_PASS_OR_FAIL "pass, or fail"

static char real_dir[128];

/* The temp dir every server serves: www/index.html for the probes, www/big.bin (1 MiB) and
 * www/huge.bin (16 MiB), and tmp/ for the servers' own files. */
static void real_dir_create(void)
{
    char path[256];
    ck_assert_int_eq(ts_tmpdir_create(real_dir, sizeof(real_dir), "connfault-real"), 0);
    snprintf(path, sizeof(path), "%s/www", real_dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/tmp", real_dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/www/index.html", real_dir);
    ck_assert_int_eq(ts_write_file(path, "<html><body>connfault</body></html>\n"), 0);
    size_t huge = 16u << 20;
    char *bytes = ts_nonnull(malloc(huge));
    memset(bytes, 'x', huge);
    snprintf(path, sizeof(path), "%s/www/big.bin", real_dir);
    ck_assert_int_eq(ts_write_bytes(path, bytes, 1u << 20), 0);
    snprintf(path, sizeof(path), "%s/www/huge.bin", real_dir);
    ck_assert_int_eq(ts_write_bytes(path, bytes, huge), 0);
    free(bytes);
}

static void real_dir_remove(void)
{
    ts_tmpdir_remove(real_dir);
}

/* A missing server is a failure with the fix, never a silent skip. */
static void real_need(const char *binary, const char *package)
{
    ck_assert_msg(access(binary, X_OK) == 0,
                  "%s is not installed (package %s): run ci/setup, which installs every server "
                  "these tests start",
                  binary, package);
}

/* The --target-cmd of a server configured by the template data/real/NAME.conf: @DIR@ and
 * @PORT@ replaced by sed, then the shell execs the server (`exec` so that it is the target,
 * not a shell waiting for it). */
static void real_templated_cmd(char *cmd, size_t cap, const char *name, const char *exec_fmt)
{
    char exec_part[512];
    snprintf(exec_part, sizeof(exec_part), exec_fmt, real_dir, real_dir);
    snprintf(cmd, cap,
             "sed -e 's|@DIR@|%s|g' -e 's|@PORT@|{port}|g' %s/%s.conf >%s/%s.conf && exec %s",
             real_dir, REAL_DATA_DIR, name, real_dir, name, exec_part);
}

/* The number of a JSON member, or -1 when it has none. */
static long long real_num(const struct ts_json *obj, const char *key)
{
    const char *text = ts_json_num(obj, key);
    return text ? strtoll(text, NULL, 10) : -1;
}

/* The scenario named name in the report, or a failed assertion with connfault's own output
 * (a run that stopped early, on a set-up error say, tells why there). */
static const struct ts_json *real_scenario(const struct ts_json *root, const char *scenario,
                                           const char *out)
{
    char name[128];
    snprintf(name, sizeof(name), "%.*s", (int)strcspn(scenario, "."), scenario);
    const struct ts_json *list = ts_json_get(root, "scenarios");
    for (size_t i = 0; i < ts_json_count(list); i++) {
        const char *n = ts_json_str(ts_json_at(list, i), "name");
        if (n && strcmp(n, name) == 0)
            return ts_json_at(list, i);
    }
    ck_abort_msg("scenario %s is not in the JSON report (%zu scenarios); connfault said:\n%s", name,
                 ts_json_count(list), out);
    return NULL;
}

/* A PASS must have looked: every group reached its fault in at least half its clients. */
static void real_assert_reached(const char *server, const struct ts_json *sc)
{
    const struct ts_json *groups = ts_json_get(sc, "groups");
    ck_assert_msg(ts_json_count(groups) > 0, "%s %s: no group evidence", server,
                  ts_json_str(sc, "name"));
    for (size_t i = 0; i < ts_json_count(groups); i++) {
        const struct ts_json *g = ts_json_at(groups, i);
        long long planned = real_num(g, "planned"), reached = real_num(g, "reached");
        ck_assert_msg(planned > 0 && reached >= planned / 2,
                      "%s %s: group %s (%s) reached its fault in %lld of %lld clients", server,
                      ts_json_str(sc, "name"), ts_json_str(g, "name"), ts_json_str(g, "fault"),
                      reached, planned);
    }
}

/* The accepting check's number e->accepting_key is above 0 (what the verdict rests on was
 * seen: e.g. probes answered 503 while out of fds). */
static void real_assert_accepting(const char *server, const struct ts_json *sc,
                                  const struct real_expect *e)
{
    const struct ts_json *checks = ts_json_get(sc, "checks");
    for (size_t i = 0; i < ts_json_count(checks); i++) {
        const struct ts_json *c = ts_json_at(checks, i);
        const char *name = ts_json_str(c, "name");
        if (!name || strcmp(name, "accepting") != 0)
            continue;
        ck_assert_msg(real_num(c, e->accepting_key) > 0, "%s %s: accepting %s is %lld: %s", server,
                      e->scenario, e->accepting_key, real_num(c, e->accepting_key),
                      ts_json_str(c, "summary"));
        return;
    }
    ck_abort_msg("%s %s: no accepting check", server, e->scenario);
}

/* REAL_PASS_OR_FAIL: a fail for e->reason_has (and no leak) is the expectation met the other
 * way; it goes to stderr, for the numbers over runs. */
static bool real_other_way(const char *server, const struct real_expect *e, const char *verdict,
                           const char *reason)
{
    if (strcmp(e->verdict, REAL_PASS_OR_FAIL) != 0 || !verdict || strcmp(verdict, "fail") != 0)
        return false;
    ck_assert_msg(reason && strstr(reason, e->reason_has) && !strstr(reason, "leaked"),
                  "%s %s: failed, but not only with '%s': %s", server, e->scenario, e->reason_has,
                  reason ? reason : "(none)");
    fprintf(stderr, "%s %s: fail: %s\n", server, e->scenario, reason);
    return true;
}

static void real_assert_one(const char *server, const struct ts_json *root,
                            const struct real_expect *e, const char *out)
{
    const struct ts_json *sc = real_scenario(root, e->scenario, out);
    const char *verdict = ts_json_str(sc, "verdict");
    const char *reason = ts_json_str(sc, "reason");
    if (real_other_way(server, e, verdict, reason))
        return;
    bool either = strcmp(e->verdict, REAL_PASS_OR_FAIL) == 0;
    ck_assert_msg(verdict && strcmp(verdict, either ? "pass" : e->verdict) == 0,
                  "%s %s: verdict %s, expected %s (reason: %s)\n%s", server, e->scenario,
                  verdict ? verdict : "(none)", e->verdict, reason ? reason : "", out);
    if (e->reason_has && !either)
        ck_assert_msg(reason && strstr(reason, e->reason_has),
                      "%s %s: the reason does not name '%s': %s", server, e->scenario,
                      e->reason_has, reason ? reason : "(none)");
    if (strcmp(verdict, "pass") == 0)
        real_assert_reached(server, sc);
    if (e->accepting_key)
        real_assert_accepting(server, sc, e);
}

/* The exit status the verdicts imply (each already asserted to be what e expects): 1 if one
 * failed, else 2 if one is in error, else 0. */
static int real_status_of(const struct ts_json *root, const struct real_expect *e, size_t n,
                          const char *out)
{
    int status = 0;
    for (size_t i = 0; i < n; i++) {
        const char *verdict = ts_json_str(real_scenario(root, e[i].scenario, out), "verdict");
        if (strcmp(verdict, "fail") == 0)
            return 1;
        if (strcmp(verdict, "error") == 0)
            status = 2;
    }
    return status;
}

/* Run `connfault run` with target_cmd and extra flags (NULL-terminated, up to 8) on the
 * scenarios of e, then assert each scenario's verdict from the JSON report. */
static void real_run(const char *server, const char *target_cmd, const char *const *extra,
                     const struct real_expect *e, size_t n)
{
    char json_path[256];
    snprintf(json_path, sizeof(json_path), "%s/report.json", real_dir);
    unlink(json_path); /* the previous server's report is not this one's */
    /* --jobs 1: each server's configuration is one file (data/real/NAME.conf made into
     * real_dir/NAME.conf), which parallel jobs would overwrite with one another's ports. */
    const char *argv[48] = {
        CONNFAULT_BIN, "run",         "--target-cmd", target_cmd, "--seed",  "11",
        "--grace",     REAL_GRACE,    "--no-capture", "--json",   json_path, "--large-path",
        "/big.bin",    "--huge-path", "/huge.bin",    "--jobs",   "1"};
    size_t argc = 17;
    for (size_t i = 0; extra && extra[i]; i++)
        argv[argc++] = extra[i];
    char files[8][256];
    for (size_t i = 0; i < n; i++) {
        argv[argc++] = e[i].scenario;
        if (strchr(e[i].scenario, '.') && i < 8) { /* a scenario file of the test data */
            snprintf(files[i], sizeof(files[i]), "%s/%s", REAL_DATA_DIR, e[i].scenario);
            argv[argc - 1] = files[i];
        }
    }
    argv[argc] = NULL;

    struct ts_proc p;
    struct ts_run_opts opts = {.timeout_ms = REAL_RUN_TIMEOUT_MS, .merge_stderr = true};
    ck_assert_int_eq(ts_run(&p, argv, &opts), 0);
    ck_assert_msg(!p.timed_out, "%s: connfault run did not end in %d ms:\n%s", server,
                  REAL_RUN_TIMEOUT_MS, p.out);
    char *text = ts_slurp(json_path, NULL);
    ck_assert_msg(text, "%s: no JSON report (status %d):\n%s", server, p.status, p.out);
    char error[256];
    struct ts_json *root = ts_json_parse(text, error, sizeof(error));
    ck_assert_msg(root, "%s: JSON report: %s", server, error);
    for (size_t i = 0; i < n; i++)
        real_assert_one(server, root, &e[i], p.out);
    int status = real_status_of(root, e, n, p.out);
    ck_assert_msg(p.status == status, "%s: exit status %d, expected %d:\n%s", server, p.status,
                  status, p.out);
    ts_json_free(root);
    free(text);
    ts_proc_free(&p);
}

#define REAL_N(a) (sizeof(a) / sizeof((a)[0]))

/* real_run with the server configured by the template data/real/NAME.conf. */
static void real_run_templated(const char *name, const char *exec_fmt, const char *const *extra,
                               const struct real_expect *e, size_t n)
{
    char cmd[1024];
    real_templated_cmd(cmd, sizeof(cmd), name, exec_fmt);
    real_run(name, cmd, extra, e, n);
}

/* nginx: client_header_timeout covers the whole head (it is not re-armed per byte), so even a
 * trickle is cut after 1 s; send_timeout and keepalive_timeout release the rest. */
START_TEST(nginx_releases_every_faulty_client)
{
    real_need("/usr/sbin/nginx", "nginx");
    static const struct real_expect e[] = {
        {"connect-close", "pass", NULL, NULL},    {"abort-mid-response", "pass", NULL, NULL},
        {"rst-mid-response", "pass", NULL, NULL}, {"slowloris", "pass", NULL, NULL},
        {"half-close", "pass", NULL, NULL},       {"keepalive-abort", "pass", NULL, NULL},
        {"fd-exhaustion", "pass", NULL, NULL},
    };
    real_run_templated("nginx", "/usr/sbin/nginx -e stderr -p %s/ -c %s/nginx.conf", NULL, e,
                       REAL_N(e));
}
END_TEST

/* lighttpd: max-read-idle is an idle timeout, re-armed on every byte read, so a client that
 * trickles a header line every 1.2 s is held for ever: slowloris fails on fds. */
START_TEST(lighttpd_is_held_by_a_trickle)
{
    real_need("/usr/sbin/lighttpd", "lighttpd");
    static const struct real_expect e[] = {
        {"connect-close", "pass", NULL, NULL},    {"slowloris", "fail", "fds", NULL},
        {"half-close", "pass", NULL, NULL},       {"keepalive-abort", "pass", NULL, NULL},
        {"fd-exhaustion", "pass", NULL, NULL},    {"abort-mid-response", "pass", NULL, NULL},
        {"rst-mid-response", "pass", NULL, NULL},
    };
    /* The last --grace wins: lighttpd closes the file fd it keeps after sending a file (big.bin)
     * 2.8 s after the faults, every time measured (3 of 3, half-close and abort-mid-response):
     * within a 3 s grace only just, so sometimes not. */
    static const char *const slow_file_close[] = {"--grace", "6", NULL};
    real_run_templated("lighttpd", "/usr/sbin/lighttpd -D -f %s/lighttpd.conf", slow_file_close, e,
                       REAL_N(e));
}
END_TEST

/* busybox's and python's listen backlogs (9 and 5) overflow under a scenario's 100 clients at
 * once: the kernel drops the SYNs past them, a probe's included, and the probe gets in on its
 * SYN's retransmission at 1 s or 3 s. A probe deadline past the second one judges the server,
 * not the backlog's arithmetic. */
static const char *const small_backlog_flags[] = {"--probe-timeout", "4.5", NULL};

/* busybox httpd -f: a child process per connection; get_line() re-arms alarm(60) for every
 * header line, so the trickle's header lines keep each child for ever: slowloris fails on
 * fds (the listener still accepts: accepting is not what fails). */
START_TEST(busybox_is_held_by_a_trickle)
{
    real_need("/usr/bin/busybox", "busybox");
    static const struct real_expect e[] = {
        {"rst-mid-response", "pass", NULL, NULL},
        {"abort-mid-response", "pass", NULL, NULL},
        {"slowloris", "fail", "fds", NULL},
        {"half-close", "pass", NULL, NULL}, /* the kernel's resets excused */
    };
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "/usr/bin/busybox httpd -f -p 127.0.0.1:{port} -h %s/www", real_dir);
    real_run("busybox httpd", cmd, small_backlog_flags, e, REAL_N(e));
}
END_TEST

/* connect-close with the default grace (75 s): a socket left behind the overflowed backlog
 * with its peer gone is held by a child whose alarm(60) ends it. The wait ends as soon as the
 * fds are back: at once in most runs, ~60 s after the faults in those where some vanished
 * (measured: "released 58.2s after the faults; when the faults ended 0 were held by live
 * clients, 1 after the peer vanished"). A short grace would only make the verdict depend on
 * whether any vanished. The probes wait 10 s: 1 of 4 runs had a probe unanswered at 4.5 s
 * while busybox sat in accept() with nothing queued: its connection, past the overflowed
 * backlog (ListenOverflows +1364), waits for the kernel's retransmissions (SYN-ACK at 1 s and
 * 3 s, data from 0.2 s doubling), not for the server. */
START_TEST(busybox_lets_vanished_peers_go_at_its_alarm)
{
    real_need("/usr/bin/busybox", "busybox");
    static const struct real_expect e[] = {{"connect-close", "pass", NULL, NULL}};
    static const char *const flags[] = {"--probe-timeout", "10", "--grace", "75", NULL};
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "/usr/bin/busybox httpd -f -p 127.0.0.1:{port} -h %s/www", real_dir);
    real_run("busybox httpd", cmd, flags, e, REAL_N(e));
}
END_TEST

/* python3 -m http.server: ThreadingHTTPServer without any timeout: each slowloris client
 * keeps a thread blocked in readline() and its socket for ever: fails on fds. */
START_TEST(python_http_server_is_held_by_a_trickle)
{
    real_need("/usr/bin/python3", "python3");
    /* connect-close: no timeout, so a socket whose peer vanished behind the backlog is held
     * for ever: a fail, with those words, in the runs where the kernel left one */
    static const struct real_expect e[] = {
        {"rst-mid-response", "pass", NULL, NULL},
        {"abort-mid-response", "pass", NULL, NULL},
        {"slowloris", "fail", "fds", NULL},
        {"half-close", "pass", NULL, NULL}, /* the kernel's resets excused */
        {"connect-close", REAL_PASS_OR_FAIL, "held after the peer vanished", NULL},
    };
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory %s/www {port}",
             real_dir);
    real_run("python http.server", cmd, small_backlog_flags, e, REAL_N(e));
}
END_TEST

/* Out of fds with no idle connection to evict (every fault client is in the middle of its
 * request head), connfault-server answers each new client 503 at once with its reserve fd:
 * while held, those 503s are acceptable; let go at the end of the fault phase, it serves
 * again. Timeouts longer than the run, so the fault clients are still held when released. */
START_TEST(a_503_while_out_of_fds_passes)
{
    static const struct real_expect e[] = {
        {"fd-exhaustion-busy.ini", "pass", NULL, "held_probes_503"},
    };
    real_run("connfault-server (503 when out of fds)",
             "exec " CONNFAULT_SERVER_BIN " --port {port} --header-timeout 60 --idle-timeout 60 "
             "--quiet",
             NULL, e, REAL_N(e));
}
END_TEST

static const char *const redis_raw[] = {
    "--probe-raw", "PING\\r\\n", "--probe-expect", "+PONG", "--request-raw", "PING\\r\\n", NULL};

/* redis in protected mode answers clients not from 127.0.0.1 with -DENIED and closes: the
 * fault clients (from 127.0.0.2) never reach their fault, and connfault must say so. */
START_TEST(redis_protected_mode_is_an_error)
{
    real_need("/usr/bin/redis-server", "redis-server");
    /* One run per scenario: in one run of both, the second scenario was sometimes missing
     * from the report (seen once in CI; not yet explained: see the closing note). */
    static const struct real_expect e1[] = {{"rst-mid-response", "error", "127.0.0.2", NULL}};
    static const struct real_expect e2[] = {
        {"abort-mid-response", "error", "Redis is running in protected mode", NULL}};
    real_run("redis (protected mode)",
             "/usr/bin/redis-server --port {port} --save '' --appendonly no", redis_raw, e1,
             REAL_N(e1));
    real_run("redis (protected mode)",
             "/usr/bin/redis-server --port {port} --save '' --appendonly no", redis_raw, e2,
             REAL_N(e2));
}
END_TEST

START_TEST(redis_without_protected_mode_passes)
{
    real_need("/usr/bin/redis-server", "redis-server");
    static const struct real_expect e[] = {
        {"connect-close", "pass", NULL, NULL},
        {"half-close", "pass", NULL, NULL},
    };
    real_run("redis",
             "/usr/bin/redis-server --port {port} --save '' --appendonly no --protected-mode no",
             redis_raw, e, REAL_N(e));
}
END_TEST

static Suite *real_servers_suite(void)
{
    Suite *s = suite_create("real servers");
    TCase *tc = tcase_create("real servers");
    tcase_set_timeout(tc, REAL_RUN_TIMEOUT_MS / 1000 + 20);
    /* Made once by the parent: removed even when a test fails (a checked fixture's teardown is
     * not run then, and every failure would leave 17 MiB in /tmp). */
    tcase_add_unchecked_fixture(tc, real_dir_create, real_dir_remove);
    const TTest *tests[] = {nginx_releases_every_faulty_client,
                            lighttpd_is_held_by_a_trickle,
                            busybox_is_held_by_a_trickle,
                            busybox_lets_vanished_peers_go_at_its_alarm,
                            python_http_server_is_held_by_a_trickle,
                            redis_protected_mode_is_an_error,
                            redis_without_protected_mode_passes,
                            a_503_while_out_of_fds_passes};
    for (size_t i = 0; i < REAL_N(tests); i++)
        tcase_add_test(tc, tests[i]);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ts_run_suite(real_servers_suite());
}
