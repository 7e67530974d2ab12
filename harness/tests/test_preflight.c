/* preflight: before the first scenario, every path the scenarios use is asked for once from the
 * fault clients' host; a missing or too small one is a set-up error naming its flag. And no
 * built-in scenario names a path of the reference server: they go through the placeholders
 * the pre-flight checks. */
#include "preflight.h"

#include <arpa/inet.h>
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catalogue.h"
#include "scenario.h"
#include "support.h"

#define RUN_TIMEOUT_MS 60000

static volatile sig_atomic_t never_interrupted;

/* ---- the connfault binary against the reference server ------------------------------------ */

static void run_connfault(struct ts_proc *p, const char *const *argv)
{
    struct ts_run_opts opts = {.timeout_ms = RUN_TIMEOUT_MS};
    ck_assert_int_eq(ts_run(p, argv, &opts), 0);
    ck_assert_msg(!p->timed_out, "timed out:\n%s%s", p->out, p->err);
}

START_TEST(defaults_pass_against_the_reference_server)
{
    struct ts_proc p;
    run_connfault(&p, TS_ARGV(CONNFAULT_BIN, "run", "-v", "--no-capture", "zero-window"));
    ck_assert_msg(p.status == 0, "status %d:\n%s%s", p.status, p.out, p.err);
    ck_assert_msg(strstr(p.out, "pre-flight: --probe-path / from 127.0.0.2: 200") != NULL, "%s",
                  p.out);
    ck_assert_msg(strstr(p.out, "pre-flight: --huge-path /bytes/16777216 from 127.0.0.2: 200, "
                                "16777216 bytes of body read: ok") != NULL,
                  "%s", p.out);
    ck_assert_msg(strstr(p.out, "--large-path") == NULL, "zero-window needs no large path:\n%s",
                  p.out);
    ts_proc_free(&p);
}
END_TEST

START_TEST(a_missing_huge_path_is_a_setup_error_naming_the_flag)
{
    struct ts_proc p;
    run_connfault(&p, TS_ARGV(CONNFAULT_BIN, "run", "--huge-path", "/nonexistent", "zero-window"));
    ck_assert_msg(p.status == 2, "status %d:\n%s%s", p.status, p.out, p.err);
    ck_assert_str_eq(p.err, "connfault: --huge-path /nonexistent: answered 404 Not Found "
                            "(zero-window needs a response of at least 16 MiB: give --huge-path a "
                            "path that has one)\n");
    ck_assert_msg(strstr(p.out, "PASS") == NULL, "a scenario ran:\n%s", p.out);
    ts_proc_free(&p);
}
END_TEST

START_TEST(a_small_large_path_is_a_setup_error_naming_the_size)
{
    struct ts_proc p;
    run_connfault(&p, TS_ARGV(CONNFAULT_BIN, "run", "--large-path", "/bytes/4096",
                              "abort-mid-response", "half-close"));
    ck_assert_msg(p.status == 2, "status %d:\n%s%s", p.status, p.out, p.err);
    ck_assert_str_eq(p.err, "connfault: --large-path /bytes/4096: 200 but only 4096 bytes "
                            "(abort-mid-response, half-close need a response of at least 1 MiB: "
                            "give --large-path a path that has one)\n");
    ts_proc_free(&p);
}
END_TEST

/* A target spoken to in raw bytes is no HTTP server: nothing to ask it, and -v says so. */
START_TEST(raw_targets_are_not_checked)
{
    struct ts_proc p;
    run_connfault(&p, TS_ARGV(CONNFAULT_BIN, "run", "-v", "--no-capture", "--probe-raw",
                              "GET / HTTP/1.0\\r\\n\\r\\n", "--probe-path", "/nonexistent",
                              "connect-close"));
    ck_assert_msg(p.status == 0, "status %d:\n%s%s", p.status, p.out, p.err);
    ck_assert_msg(strstr(p.out, "pre-flight skipped: --probe-raw") != NULL, "%s", p.out);
    ts_proc_free(&p);
}
END_TEST

/* ---- the library call -------------------------------------------------------------------- */

/* Every built-in scenario, loaded with the env's placeholders. */
static int load_builtin(struct run_env *env, struct scenario **out)
{
    char **paths, err[512];
    int n = catalogue_builtin(&paths);
    ck_assert_int_gt(n, 0);
    struct scenario_vars vars;
    run_env_scenario_vars(env, &vars);
    *out = ts_nonnull(calloc((size_t)n, sizeof(**out)));
    for (int i = 0; i < n; i++)
        ck_assert_msg(scenario_load(paths[i], &vars, &(*out)[i], err, sizeof(err)) == 0, "%s", err);
    catalogue_free(paths, n);
    return n;
}

static void free_builtin(struct scenario *list, int n)
{
    for (int i = 0; i < n; i++)
        scenario_free(&list[i]);
    free(list);
}

/* The pre-flight of every built-in scenario against the reference server; returns its status,
 * with its message in err and its notes in notes. */
static int preflight_builtin(struct run_options *o, char *err, size_t errlen, char *notes,
                             size_t noteslen)
{
    char env_err[512];
    o->reference_server = CONNFAULT_SERVER_BIN;
    struct run_env *env = run_env_new(o, env_err, sizeof(env_err));
    ck_assert_msg(env != NULL, "%s", env_err);
    run_env_sandbox(env); /* as a run does: with --no-sandbox, the drop scenarios are skipped */
    struct scenario *list;
    int n = load_builtin(env, &list);
    FILE *note = ts_nonnull(fmemopen(notes, noteslen, "w"));
    int rc = run_env_preflight(env, list, n, note, err, errlen);
    fclose(note);
    free_builtin(list, n);
    run_env_free(env);
    return rc;
}

START_TEST(every_builtin_path_is_there_on_the_reference_server)
{
    struct run_options o;
    char err[512] = "", notes[2048] = "";
    run_options_defaults(&o, &never_interrupted);
    o.no_sandbox = true; /* no namespace in this test; the huge path is still zero-window's */
    ck_assert_msg(preflight_builtin(&o, err, sizeof(err), notes, sizeof(notes)) == 0, "%s", err);
    ck_assert_msg(strstr(notes, "--probe-path / from 127.0.0.2: 200") != NULL, "%s", notes);
    ck_assert_msg(strstr(notes, "--large-path /bytes/1048576 from 127.0.0.2: 200, 1048576 bytes") !=
                      NULL,
                  "%s", notes);
    ck_assert_msg(
        strstr(notes, "--huge-path /bytes/16777216 from 127.0.0.2: 200, 16777216 bytes") != NULL,
        "%s", notes);
}
END_TEST

/* Scenarios skipped for want of the sandbox ask for nothing; the error names those that do,
 * and a path every scenario needs says so. */
START_TEST(the_error_names_the_scenarios_that_need_the_path)
{
    struct run_options o;
    char err[512] = "", notes[2048] = "";
    run_options_defaults(&o, &never_interrupted);
    o.no_sandbox = true;
    o.huge_path = "/bytes/5";
    ck_assert_int_eq(preflight_builtin(&o, err, sizeof(err), notes, sizeof(notes)),
                     RUN_SETUP_ERROR);
    ck_assert_str_eq(err, "--huge-path /bytes/5: 200 but only 5 bytes (zero-window needs a "
                          "response of at least 16 MiB: give --huge-path a path that has one)");

    o.probe_path = "/missing";
    ck_assert_int_eq(preflight_builtin(&o, err, sizeof(err), notes, sizeof(notes)),
                     RUN_SETUP_ERROR);
    ck_assert_str_eq(err, "--probe-path /missing: answered 404 Not Found (every scenario needs a "
                          "2xx answer: give --probe-path a path that has one)");
}
END_TEST

/* ---- answers no HTTP server of ours gives: a one-connection fake server ------------------- */

enum fake_kind { FAKE_CLOSE, FAKE_DENY, FAKE_SHORT };

/* Listen on 127.0.0.1, fork a child that accepts one connection, reads the request, answers
 * as kind says and exits (bounded by alarm). Returns the child's pid; *addr is where. */
static pid_t fake_server(enum fake_kind kind, struct sockaddr_in *addr)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t len = sizeof(*addr);
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    ck_assert_int_eq(bind(ls, (struct sockaddr *)addr, sizeof(*addr)), 0);
    ck_assert_int_eq(listen(ls, 4), 0);
    ck_assert_int_eq(getsockname(ls, (struct sockaddr *)addr, &len), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid > 0) {
        close(ls);
        return pid;
    }
    alarm(10);
    struct sockaddr_in peer;
    socklen_t plen = sizeof(peer);
    int c = accept(ls, (struct sockaddr *)&peer, &plen);
    char buf[4096], reply[256];
    ssize_t got = c < 0 ? -1 : read(c, buf, sizeof(buf)); /* the request: one small send */
    int n = kind == FAKE_DENY
                ? snprintf(reply, sizeof(reply), "-DENIED from %s\r\n", inet_ntoa(peer.sin_addr))
                : snprintf(reply, sizeof(reply),
                           "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n%0100d", 0);
    if (got > 0 && kind != FAKE_CLOSE && write(c, reply, (size_t)n) != n)
        _exit(1);
    _exit(got > 0 ? 0 : 1);
}

static void check_against_fake(enum fake_kind kind, const char *want)
{
    struct sockaddr_in addr;
    pid_t pid = fake_server(kind, &addr);
    struct in_addr from = {.s_addr = htonl(0x7f000002)};
    struct preflight_need need = {.flag = "--large-path",
                                  .path = "/big.bin",
                                  .min_bytes = SCENARIO_LARGE_MIN,
                                  .users = "half-close"};
    char err[512] = "";
    int rc = preflight_check(&addr, from, "127.0.0.1", &need, &never_interrupted, NULL, err,
                             sizeof(err));
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fake server: status %d", status);
    ck_assert_int_eq(rc, RUN_SETUP_ERROR);
    ck_assert_str_eq(err, want);
}

START_TEST(a_server_that_hangs_up_on_the_fault_host)
{
    check_against_fake(FAKE_CLOSE,
                       "--large-path /big.bin: the connection from 127.0.0.2 (the fault clients' "
                       "host) was closed with no answer: does the server refuse that host? "
                       "(half-close needs it)");
}
END_TEST

START_TEST(a_server_that_does_not_speak_http)
{
    check_against_fake(FAKE_DENY, "--large-path /big.bin: not an HTTP answer: "
                                  "\"-DENIED from 127.0.0.2\\r\\n\" (half-close needs it)");
}
END_TEST

START_TEST(a_response_smaller_than_promised)
{
    check_against_fake(FAKE_SHORT,
                       "--large-path /big.bin: 200 but only 100 bytes (half-close needs a "
                       "response of at least 1 MiB: give --large-path a path that has one)");
}
END_TEST

START_TEST(nothing_listening)
{
    struct sockaddr_in addr;
    pid_t pid = fake_server(FAKE_CLOSE, &addr); /* a port that was free, then is again */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    struct preflight_need need = {.flag = "--probe-path", .path = "/", .users = "slowloris"};
    char err[512] = "";
    ck_assert_int_eq(preflight_check(&addr, (struct in_addr){htonl(0x7f000002)}, "h", &need,
                                     &never_interrupted, NULL, err, sizeof(err)),
                     RUN_SETUP_ERROR);
    ck_assert_str_eq(err, "--probe-path /: Connection refused, connecting from 127.0.0.2 "
                          "(slowloris needs it)");
}
END_TEST

/* ---- the built-in scenarios name their paths only through placeholders -------------------- */

START_TEST(no_builtin_scenario_names_a_path_of_the_reference_server)
{
    char **paths, err[512];
    int n = catalogue_builtin(&paths);
    ck_assert_int_gt(n, 0);
    struct scenario_vars vars = {.probe_path = "/P", .large_path = "/L", .huge_path = "/H"};
    unsigned huge = 0;
    for (int i = 0; i < n; i++) {
        size_t len;
        char *text = ts_slurp(paths[i], &len);
        ck_assert_msg(text != NULL, "%s", paths[i]);
        ck_assert_msg(strstr(text, "/bytes/") == NULL, "%s names /bytes/", paths[i]);
        free(text);
        struct scenario sc;
        ck_assert_msg(scenario_load(paths[i], &vars, &sc, err, sizeof(err)) == 0, "%s", err);
        for (size_t g = 0; g < sc.ngroups; g++) {
            const char *req = sc.groups[g].request;
            if (strncmp(req, "GET ", 4) == 0) /* an HTTP request: its path is a placeholder's */
                ck_assert_msg(strchr("PLH", req[5]) && req[4] == '/' && strchr(" \r", req[6]),
                              "%s [clients %s]: %.40s", sc.name, sc.groups[g].name, req);
        }
        /* the faults that need the server still sending use the huge path, and only they */
        bool wants_huge = strcmp(sc.name, "zero-window") == 0 ||
                          strcmp(sc.name, "drop-mid-response") == 0 ||
                          strcmp(sc.name, "cable-pull") == 0;
        ck_assert_msg(((sc.paths & SCENARIO_PATH_HUGE) != 0) == wants_huge, "%s: paths %#x",
                      sc.name, sc.paths);
        huge += wants_huge;
        scenario_free(&sc);
    }
    catalogue_free(paths, n);
    ck_assert_uint_eq(huge, 3);
}
END_TEST

int main(void)
{
    const struct {
        const char *tcase; /* a new one when it changes */
        const TTest *test;
    } tests[] = {
        {"connfault", defaults_pass_against_the_reference_server},
        {"connfault", a_missing_huge_path_is_a_setup_error_naming_the_flag},
        {"connfault", a_small_large_path_is_a_setup_error_naming_the_size},
        {"connfault", raw_targets_are_not_checked},
        {"library", every_builtin_path_is_there_on_the_reference_server},
        {"library", the_error_names_the_scenarios_that_need_the_path},
        {"library", a_server_that_hangs_up_on_the_fault_host},
        {"library", a_server_that_does_not_speak_http},
        {"library", a_response_smaller_than_promised},
        {"library", nothing_listening},
        {"scenarios", no_builtin_scenario_names_a_path_of_the_reference_server},
    };
    Suite *s = suite_create("preflight");
    TCase *tc = NULL;
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (i == 0 || strcmp(tests[i].tcase, tests[i - 1].tcase) != 0) {
            tc = tcase_create(tests[i].tcase);
            tcase_set_timeout(tc, 120); /* each connfault run is bounded by RUN_TIMEOUT_MS */
            suite_add_tcase(s, tc);
        }
        tcase_add_test(tc, tests[i].test);
    }
    return ts_run_suite(s);
}
