/* How connfault judges what real servers do that is not a fault (issue 11):
 *
 *   redis      a raw request (--request-raw 'PING\r\n') whose answer (+PONG, 7 bytes) is
 *              smaller than a scenario's `read = N`: the fault clients wait for bytes that never
 *              come and hold their connections, while redis waits for the next command. That
 *              is the scenario meeting this target: `error` naming read and the bytes sent, and
 *              fds not checked (not a FAIL of redis).
 *   lighttpd   its stat cache keeps the fd of a file it served (big.bin) open for a few seconds
 *              after the requests: one fd per file, not per client, judged a file cache (a
 *              PASS that names it), where a file open once per client would still fail
 *              (test_checks has that side).
 *
 * The servers are Debian's, started by `connfault run --target-cmd` in the foreground; a
 * missing one fails with the package to install (ci/setup installs them). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#define JUDGING_DATA_DIR  CONNFAULT_SOURCE_DIR "/harness/tests/data/real"
#define JUDGING_RUN_MS    100000 /* one connfault run of two short scenarios */
#define JUDGING_SCENARIOS 2

static char dir[128];

/* redis spoken to in its own protocol: PING, +PONG */
#define REDIS_RAW                                                                                  \
    "--probe-raw", "PING\\r\\n", "--probe-expect", "+PONG", "--request-raw", "PING\\r\\n"

/* www/index.html for the probes and www/big.bin (1 MiB, --large-path); tmp/ for lighttpd. */
static void judging_dir_create(void)
{
    char path[256];
    ck_assert_int_eq(ts_www_dir_create(dir, sizeof(dir), "connfault-judging"), 0);
    char *bytes = ts_nonnull(calloc(1, 1u << 20));
    snprintf(path, sizeof(path), "%s/www/big.bin", dir);
    ck_assert_int_eq(ts_write_bytes(path, bytes, 1u << 20), 0);
    free(bytes);
}

static void judging_dir_remove(void)
{
    ts_tmpdir_remove(dir);
}

/* connfault run of target_cmd with extra flags (NULL-terminated) on two scenarios; its JSON
 * report parsed, its output in *out (free both). */
static struct ts_json *judging_run(const char *target_cmd, const char *const *extra,
                                   const char *const scenarios[JUDGING_SCENARIOS], int *status,
                                   char **out)
{
    char json_path[256];
    snprintf(json_path, sizeof(json_path), "%s/report.json", dir);
    unlink(json_path);
    /* --jobs 1: lighttpd's configuration is one file, written with the port by the command;
     * two scenarios at once would write it over each other (extra may say --jobs again: the
     * last one counts) */
    const char *argv[40] = {
        CONNFAULT_BIN, "run",          "--jobs", "1",       "--target-cmd", target_cmd, "--seed",
        "5",           "--no-capture", "--json", json_path, "--large-path", "/big.bin"};
    size_t argc = 13;
    for (size_t i = 0; extra[i]; i++)
        argv[argc++] = extra[i];
    for (size_t i = 0; i < JUDGING_SCENARIOS; i++)
        argv[argc++] = scenarios[i];
    struct ts_proc p;
    const struct ts_run_opts opts = {.timeout_ms = JUDGING_RUN_MS, .merge_stderr = true};
    ck_assert_int_eq(ts_run(&p, argv, &opts), 0);
    ck_assert_msg(!p.timed_out, "connfault run did not end in %d ms:\n%s", JUDGING_RUN_MS, p.out);
    char *text = ts_slurp(json_path, NULL);
    ck_assert_msg(text, "no JSON report (status %d):\n%s", p.status, p.out);
    char error[256];
    struct ts_json *root = ts_json_parse(text, error, sizeof(error));
    ck_assert_msg(root, "JSON report: %s", error);
    free(text);
    *status = p.status;
    *out = strdup(p.out);
    ts_proc_free(&p);
    return root;
}

static const struct ts_json *judging_check(const struct ts_json *sc, const char *name)
{
    const struct ts_json *checks = ts_json_get(sc, "checks");
    for (size_t i = 0; i < ts_json_count(checks); i++)
        if (strcmp(ts_json_str(ts_json_at(checks, i), "name"), name) == 0)
            return ts_json_at(checks, i);
    ck_abort_msg("no check %s in %s", name, ts_json_str(sc, "name"));
    return NULL;
}

START_TEST(redis_raw_read_larger_than_the_answer_is_an_error)
{
    ts_need_program("/usr/bin/redis-server", "redis-server");
    static const char *const extra[] = {REDIS_RAW, "--grace", "2", NULL};
    static const char *const scenarios[] = {"abort-mid-response", "connect-close"};
    int status;
    char *out;
    struct ts_json *root = judging_run(
        "/usr/bin/redis-server --port {port} --save '' --appendonly no --protected-mode no", extra,
        scenarios, &status, &out);
    const struct ts_json *sc = ts_json_at(ts_json_get(root, "scenarios"), 0);
    const char *reason = ts_json_str(sc, "reason");
    ck_assert_msg(strcmp(ts_json_str(sc, "verdict"), "error") == 0, "verdict %s: %.800s\n%.2000s",
                  ts_json_str(sc, "verdict"), reason, out);
    ck_assert_msg(strstr(reason, "but the server sent 7 bytes ('+PONG\\r\\n') and then waited") &&
                      strstr(reason, "the fault never happened") && strstr(reason, "lower read"),
                  "reason: %s", reason);
    /* the clients waiting were connfault's: never the server's failure. Either the harness
     * closed them at the end of the fault phase's cap (fds back: ok), or fds is not checked
     * and says why */
    const struct ts_json *fds = judging_check(sc, "fds");
    const char *summary = ts_json_str(fds, "summary");
    const char *fds_status = ts_json_str(fds, "status");
    ck_assert_msg(strcmp(fds_status, "ok") == 0 ||
                      (strcmp(fds_status, "not_checked") == 0 &&
                       strstr(summary, "connfault's own clients still waiting")),
                  "fds: %s: %s", fds_status, summary);
    /* a scenario that needs no more than redis sends still passes */
    ck_assert_str_eq(ts_json_str(ts_json_at(ts_json_get(root, "scenarios"), 1), "verdict"), "pass");
    ck_assert_msg(status == 2, "status %d\n%s", status, out);
    ts_json_free(root);
    free(out);
}
END_TEST

/* Redis in protected mode answers clients not from 127.0.0.1 with -DENIED: with --jobs 2 the
 * second scenario's fault clients come from job slot 1's host, 127.1.0.2, and its error must
 * name that host (it named 127.0.0.2, where no client of that job came from). */
START_TEST(the_refused_host_named_is_the_jobs_own)
{
    ts_need_program("/usr/bin/redis-server", "redis-server");
    static const char *const extra[] = {REDIS_RAW, "--grace", "2", "--jobs", "2", NULL};
    static const char *const scenarios[] = {"connect-close", "rst-mid-response"};
    int status;
    char *out;
    struct ts_json *root =
        judging_run("/usr/bin/redis-server --port {port} --save '' --appendonly no", extra,
                    scenarios, &status, &out);
    const struct ts_json *sc = ts_json_at(ts_json_get(root, "scenarios"), 1);
    const char *reason = ts_json_str(sc, "reason");
    ck_assert_msg(strcmp(ts_json_str(sc, "verdict"), "error") == 0, "verdict %s: %.800s\n%.2000s",
                  ts_json_str(sc, "verdict"), reason, out);
    ck_assert_msg(strstr(reason, "refuses or drops clients from 127.1.0.2") &&
                      !strstr(reason, "127.0.0.2"),
                  "reason: %.800s\n%.2000s", reason, out);
    ts_json_free(root);
    free(out);
}
END_TEST

/* Judged 1 s after the faults (lighttpd lets the cached fd go about 3 s after), so the cached
 * fd is still open: both scenarios pass, and one at least says why the fd stays. */
START_TEST(lighttpd_file_cache_is_not_a_leak)
{
    ts_need_program("/usr/sbin/lighttpd", "lighttpd");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "sed -e 's|@DIR@|%s|g' -e 's|@PORT@|{port}|g' %s/lighttpd.conf >%s/lighttpd.conf && "
             "exec /usr/sbin/lighttpd -D -f %s/lighttpd.conf",
             dir, JUDGING_DATA_DIR, dir, dir);
    static const char *const extra[] = {"--grace", "1", "--cpu-window", "0.2", NULL};
    static const char *const scenarios[] = {"abort-mid-response", "rst-mid-response"};
    int status;
    char *out;
    struct ts_json *root = judging_run(cmd, extra, scenarios, &status, &out);
    int cached = 0;
    for (size_t i = 0; i < JUDGING_SCENARIOS; i++) {
        const struct ts_json *sc = ts_json_at(ts_json_get(root, "scenarios"), i);
        ck_assert_msg(strcmp(ts_json_str(sc, "verdict"), "pass") == 0, "%s: %.800s\n%.2000s",
                      scenarios[i], ts_json_str(sc, "reason"), out);
        const struct ts_json *fds = judging_check(sc, "fds");
        const char *files = ts_json_str(fds, "file_cache_files");
        if (files) {
            ck_assert_str_eq(files, "big.bin");
            ck_assert_ptr_nonnull(strstr(ts_json_str(fds, "summary"), "a file cache"));
            cached++;
        }
    }
    ck_assert_msg(cached > 0, "no scenario judged with lighttpd's cached fd open:\n%s", out);
    ck_assert_msg(status == 0, "status %d\n%s", status, out);
    ts_json_free(root);
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("real servers: judging");
    TCase *tc = tcase_create("judging");
    tcase_set_timeout(tc, JUDGING_RUN_MS / 1000 + 20);
    tcase_add_unchecked_fixture(tc, judging_dir_create, judging_dir_remove);
    tcase_add_test(tc, redis_raw_read_larger_than_the_answer_is_an_error);
    tcase_add_test(tc, lighttpd_file_cache_is_not_a_leak);
    tcase_add_test(tc, the_refused_host_named_is_the_jobs_own);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
