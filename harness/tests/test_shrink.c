/* connfault shrink: from a failing scenario to a minimal one and a standalone reproducer.
 * One ctest test per case (harness/CMakeLists.txt passes the case's name), so ctest -j runs
 * them side by side:
 * - library: scenario_write: every built-in scenario written back loads as the same scenario;
 *   the candidates: trickles, byte offsets and rates cut like counts, every candidate of every
 *   built-in written back loads as itself;
 * - cli: usage errors; a scenario that passes is "nothing to shrink", exit 1;
 * - accept-once: --bug accept-once x burst-abort shrinks to at most 3 clients at once still
 *   failing accepting;
 * - sigpipe: --bug sigpipe x rst-mid-response to 1 client failing alive, the same clients twice
 *   with one seed;
 * - leak-on-error: --bug leak-on-error x rst-mid-response to 1 client failing fds, the same
 *   minimal.ini twice with one seed;
 * - blocking: --bug blocking x slowloris to 1 client failing accepting.
 * Each minimal.ini is taken by `connfault run` and fails there; each repro.c compiles with
 * `cc -Wall -Werror` and exits 1 against the bug mode, 0 against the correct server (the fds
 * one given the server's pid). Every shrink confirms K = 2 of 2 runs per step and 4 of 4 at
 * the end, with a budget of trials measured to be enough (the numbers are at each case).
 * Every case's files are in a temp dir of its own that the parent process removes after the
 * case, whether it passed or not.
 * The normal build only (see .ci/test). A capture's shrink is test_shrink_capture.c. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalogue.h"
#include "scenario.h"
#include "shrink_internal.h"
#include "support.h"

#ifndef CONNFAULT_BIN
#define CONNFAULT_BIN "connfault"
#endif
#ifndef CONNFAULT_SERVER_BIN
#define CONNFAULT_SERVER_BIN "connfault-server"
#endif

#include "shrink_check.h"

#define SHRINK_MS 240000 /* one shrink, bounded (its own budget is far smaller) */

static const struct scenario_vars vars = {.host = "127.0.0.1:8080",
                                          .probe_path = "/",
                                          .large_path = "/bytes/1048576",
                                          .huge_path = "/bytes/16777216"};

/* The case's temp dir: made by the parent before the case, removed by it after the case
 * (an unchecked fixture), so a failed assertion, which ends the forked test at once, leaves
 * nothing in /tmp. */
static char case_dir[256];

static void case_dir_make(void)
{
    if (ts_tmpdir_create(case_dir, sizeof(case_dir), "test_shrink") < 0)
        case_dir[0] = '\0';
}

static void case_dir_remove(void)
{
    if (case_dir[0])
        ts_tmpdir_remove(case_dir);
    case_dir[0] = '\0';
}

/* The path of NAME in the case's temp dir (a static buffer). */
static const char *case_dir_sub(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", case_dir, name);
    return path;
}

/* A fresh directory NAME in the case's temp dir, its path in dir. */
static void case_subdir(char *dir, size_t len, const char *name)
{
    ck_assert_msg(case_dir[0], "no temp dir for the case");
    snprintf(dir, len, "%s/%s", case_dir, name);
    ck_assert_msg(mkdir(dir, 0700) == 0, "%s: %s", dir, strerror(errno));
}

static void same_group(const struct client_group *a, const struct client_group *b)
{
    ck_assert_str_eq(a->name, b->name);
    ck_assert_uint_eq(a->count, b->count);
    ck_assert_uint_eq(a->concurrency, b->concurrency);
    ck_assert(a->rate == b->rate);
    ck_assert_uint_eq(a->start_ms, b->start_ms);
    ck_assert_uint_eq(a->request_len, b->request_len);
    ck_assert(a->request_len == 0 || memcmp(a->request, b->request, a->request_len) == 0);
    ck_assert_uint_eq(a->pipeline, b->pipeline);
    ck_assert_int_eq(a->send, b->send);
    ck_assert(a->send != SEND_PARTIAL ||
              (a->send_bytes.lo == b->send_bytes.lo && a->send_bytes.hi == b->send_bytes.hi));
    ck_assert(a->send != SEND_TRICKLE || (a->trickle_bytes == b->trickle_bytes &&
                                          a->trickle_interval_ms == b->trickle_interval_ms));
    ck_assert_int_eq(a->read, b->read);
    ck_assert(a->read != READ_BYTES ||
              (a->read_bytes.lo == b->read_bytes.lo && a->read_bytes.hi == b->read_bytes.hi));
    ck_assert(a->hold_ms.lo == b->hold_ms.lo && a->hold_ms.hi == b->hold_ms.hi);
    ck_assert_int_eq(a->end, b->end);
    ck_assert_uint_eq(a->trickle_tail_len, b->trickle_tail_len);
    ck_assert(a->trickle_tail_len == 0 ||
              memcmp(a->trickle_tail, b->trickle_tail, a->trickle_tail_len) == 0);
    ck_assert_int_eq(a->rcvbuf, b->rcvbuf);
    ck_assert_uint_eq(a->host.s_addr, b->host.s_addr);
}

/* sc written to file and loaded back is the same scenario. */
static void writes_back(const struct scenario *sc, const char *file)
{
    char err[512];
    struct scenario b;
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(scenario_write(f, sc, &vars, "a header\nof two lines"), 0);
    fclose(f);
    ck_assert_msg(scenario_load(file, &vars, &b, err, sizeof(err)) == 0, "%s: %s", sc->name, err);
    ck_assert_uint_eq(sc->duration_ms, b.duration_ms);
    ck_assert_uint_eq(sc->ngroups, b.ngroups);
    for (size_t g = 0; g < sc->ngroups; g++)
        same_group(&sc->groups[g], &b.groups[g]);
    scenario_free(&b);
}

START_TEST(written_scenarios_load_back_the_same)
{
    char **paths, file[512], err[512];
    int n = catalogue_builtin(&paths);
    ck_assert_int_gt(n, 0);
    for (int i = 0; i < n; i++) {
        struct scenario a, b;
        ck_assert_msg(scenario_load(paths[i], &vars, &a, err, sizeof(err)) == 0, "%s", err);
        snprintf(file, sizeof(file), "%s/%s.ini", case_dir, a.name);
        writes_back(&a, file);
        ck_assert_int_eq(scenario_load(file, &vars, &b, err, sizeof(err)), 0);
        ck_assert_uint_eq(a.paths, b.paths);
        scenario_free(&b);
        scenario_free(&a);
    }
    catalogue_free(paths, n);
}
END_TEST

/* The candidate kind whose progress words are `what`. */
static unsigned kind_named(const char *what)
{
    for (unsigned k = 0; k < SHRINK_CANDIDATE_KINDS; k++)
        if (strcmp(shrink_candidate_what(k), what) == 0)
            return k;
    ck_abort_msg("no candidate kind \"%s\"", what);
    return 0;
}

/* Candidate `what` of group gi of sc, which must apply; its group gi in *g (a copy). */
static void candidate(const struct scenario *sc, const char *what, size_t gi,
                      struct client_group *g)
{
    struct scenario cand;
    ck_assert_msg(shrink_candidate(sc, kind_named(what), gi, &cand), "%s: %s does not apply",
                  sc->name, what);
    *g = cand.groups[gi];
    shrink_view_free(&cand);
}

static bool applies(const struct scenario *sc, const char *what, size_t gi)
{
    struct scenario cand;
    bool made = shrink_candidate(sc, kind_named(what), gi, &cand);
    if (made)
        shrink_view_free(&cand);
    return made;
}

static void load_builtin(const char *name, struct scenario *sc)
{
    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/scenarios/%s.ini", CONNFAULT_SOURCE_DIR, name);
    ck_assert_msg(scenario_load(path, &vars, sc, err, sizeof(err)) == 0, "%s", err);
}

/* slowloris: the endless tail dropped, the trickled request cut to a prefix of itself. */
START_TEST(trickles_are_cut_like_counts)
{
    struct scenario sc;
    struct client_group g;
    load_builtin("slowloris", &sc);
    size_t len = sc.groups[0].request_len;
    ck_assert_uint_gt(len, 8);
    candidate(&sc, "trickle_tail dropped", 0, &g);
    ck_assert_ptr_null(g.trickle_tail);
    ck_assert_uint_eq(g.trickle_tail_len, 0);
    ck_assert_uint_eq(g.request_len, len);
    candidate(&sc, "trickled request to 1 byte", 0, &g);
    ck_assert_uint_eq(g.request_len, 1);
    ck_assert_ptr_eq(g.request, sc.groups[0].request);
    ck_assert_ptr_nonnull(g.trickle_tail);
    candidate(&sc, "trickled request halved", 0, &g);
    ck_assert_uint_eq(g.request_len, len / 2);
    candidate(&sc, "trickled request cut by a quarter", 0, &g);
    ck_assert_uint_eq(g.request_len, len - len / 4);
    ck_assert(!applies(&sc, "trickle_bytes to 1", 0)); /* 1 already */
    ck_assert(!applies(&sc, "read to 1 byte", 0));     /* read = none */
    ck_assert_uint_eq(sc.groups[0].request_len, len);  /* the best is never changed */
    ck_assert_ptr_nonnull(sc.groups[0].trickle_tail);
    scenario_free(&sc);
}
END_TEST

/* drop-mid-request's send_bytes = 10-30 and rst-mid-response's read = 1024-65536: to 1,
 * halved, cut by a quarter, both ends of the range. */
START_TEST(byte_offsets_are_cut_like_counts)
{
    struct scenario sc;
    struct client_group g;
    load_builtin("drop-mid-request", &sc);
    ck_assert(sc.groups[0].send_bytes.lo == 10 && sc.groups[0].send_bytes.hi == 30);
    candidate(&sc, "send_bytes to 1", 0, &g);
    ck_assert(g.send_bytes.lo == 1 && g.send_bytes.hi == 1);
    candidate(&sc, "send_bytes halved", 0, &g);
    ck_assert(g.send_bytes.lo == 5 && g.send_bytes.hi == 15);
    candidate(&sc, "send_bytes cut by a quarter", 0, &g);
    ck_assert(g.send_bytes.lo == 7 && g.send_bytes.hi == 23);
    scenario_free(&sc);
    load_builtin("rst-mid-response", &sc);
    candidate(&sc, "read to 1 byte", 0, &g);
    ck_assert(g.read_bytes.lo == 1 && g.read_bytes.hi == 1);
    candidate(&sc, "read bytes halved", 0, &g);
    ck_assert(g.read_bytes.lo == 512 && g.read_bytes.hi == 32768);
    ck_assert(!applies(&sc, "read to 1 byte", 1));  /* closers: read = none */
    ck_assert(!applies(&sc, "send_bytes to 1", 0)); /* send = whole */
    scenario_free(&sc);
}
END_TEST

/* A connection rate of 8 a second: halved, cut by a quarter, never below 1 a second; a
 * trickle of 4 bytes a step: to 1, halved, cut by 1. */
START_TEST(rates_are_cut_like_counts)
{
    char file[512], err[512];
    struct scenario sc;
    struct client_group g;
    snprintf(file, sizeof(file), "%s/rates.ini", case_dir);
    ck_assert_int_eq(ts_write_file(file, "[scenario]\nduration = 2s\n\n[clients a]\ncount = 8\n"
                                         "rate = 8\nsend = trickle\ntrickle_bytes = 4\n"
                                         "\n[clients b]\ncount = 2\nrate = 1.5\n"),
                     0);
    ck_assert_msg(scenario_load(file, &vars, &sc, err, sizeof(err)) == 0, "%s", err);
    candidate(&sc, "rate halved", 0, &g);
    ck_assert(g.rate == 4.0);
    candidate(&sc, "rate cut by a quarter", 0, &g);
    ck_assert(g.rate == 6.0);
    ck_assert(!applies(&sc, "rate halved", 1)); /* 0.75 a second: below the least */
    candidate(&sc, "rate cut by a quarter", 1, &g);
    ck_assert(g.rate == 1.125);
    candidate(&sc, "trickle_bytes to 1", 0, &g);
    ck_assert_uint_eq(g.trickle_bytes, 1);
    candidate(&sc, "trickle_bytes halved", 0, &g);
    ck_assert_uint_eq(g.trickle_bytes, 2);
    candidate(&sc, "trickle_bytes cut by a quarter", 0, &g); /* at least 1 */
    ck_assert_uint_eq(g.trickle_bytes, 3);
    sc.groups[0].trickle_bytes = 2;
    ck_assert(!applies(&sc, "trickle_bytes cut by a quarter", 0)); /* 1 is the half */
    scenario_free(&sc);
}
END_TEST

/* The finer cut reaches every number: 4 clients -> 3 (where 2 did not fail), 3 -> 2. */
START_TEST(small_counts_are_cut_one_by_one)
{
    struct scenario sc;
    struct client_group g;
    load_builtin("burst-abort", &sc);
    sc.groups[0].count = sc.groups[0].concurrency = 4;
    candidate(&sc, "count cut by a quarter", 0, &g);
    ck_assert_uint_eq(g.count, 3);
    ck_assert_uint_eq(g.concurrency, 3);
    sc.groups[0].count = sc.groups[0].concurrency = 3;
    candidate(&sc, "count cut by a quarter", 0, &g);
    ck_assert_uint_eq(g.count, 2);
    ck_assert(!applies(&sc, "count halved", 0)); /* 1: that is count to 1 */
    sc.groups[0].count = sc.groups[0].concurrency = 2;
    ck_assert(!applies(&sc, "count cut by a quarter", 0));
    scenario_free(&sc);
}
END_TEST

/* Every candidate of every built-in scenario is one scenario_load would make: written back,
 * it loads as itself (so minimal.ini runs what the trials ran). */
START_TEST(every_candidate_writes_back_as_itself)
{
    char **paths, file[512], err[512];
    int n = catalogue_builtin(&paths), made = 0;
    snprintf(file, sizeof(file), "%s/candidate.ini", case_dir);
    for (int i = 0; i < n; i++) {
        struct scenario sc, cand;
        ck_assert_msg(scenario_load(paths[i], &vars, &sc, err, sizeof(err)) == 0, "%s", err);
        for (unsigned k = 0; k < SHRINK_CANDIDATE_KINDS; k++)
            for (size_t gi = 0; gi < sc.ngroups; gi++) {
                if (!shrink_candidate(&sc, k, gi, &cand))
                    continue;
                made++;
                writes_back(&cand, file);
                shrink_view_free(&cand);
            }
        scenario_free(&sc);
    }
    catalogue_free(paths, n);
    ck_assert_int_gt(made, 100);
}
END_TEST

/* Clients in a scenario file: the sum of its count lines. */
static unsigned long file_clients(const char *text)
{
    unsigned long n = 0;
    for (const char *p = text; (p = strstr(p, "\ncount = ")) != NULL; p++)
        n += strtoul(p + 9, NULL, 10);
    return n;
}

/* The file without its header comment (times differ from one shrink to the next). */
static const char *body(const char *text)
{
    const char *b = strstr(text, "[scenario]");
    ck_assert_ptr_nonnull(b);
    return b;
}

/* The last shrink's progress lines, each cut to its first 110 characters (a failure message
 * of Check holds 4 KiB at most: past that it says only "Message string too long"). */
static char progress[2600];

static void keep_progress(const char *err)
{
    size_t used = 0;
    progress[0] = '\0';
    for (const char *l = err; *l && used + 120 < sizeof(progress);) {
        const char *nl = strchr(l, '\n');
        int len = nl ? (int)(nl - l) : (int)strlen(l);
        used += (size_t)snprintf(progress + used, sizeof(progress) - used, "%.*s\n",
                                 len < 110 ? len : 110, l);
        l = nl ? nl + 1 : l + len;
    }
}

/* What a shrink is given: its budget and the probes' deadline (a bug that never answers again
 * needs no 2 s to be seen). The CPU windows are cut to 0.25 s (from 1 s, three of them a run):
 * no case follows cpu (sigpipe's minimal.ini failed 19 of 20 runs with either). */
struct budget {
    const char *trials, *confirm, *probe_timeout;
};

/* Shrink SCENARIO against --bug BUG into dir within budget b; the minimal.ini text
 * (malloc'd). */
static char *shrink(const char *dir, const char *bug, const char *scenario, struct budget b)
{
    char out[512];
    struct ts_proc p;
    snprintf(out, sizeof(out), "%s/minimal.ini", dir);
    run_ok(&p,
           TS_ARGV(CONNFAULT_BIN, "shrink", "--bug", bug, "--seed", "7", "--confirm", b.confirm,
                   "--max-trials", b.trials, "--time-limit", "200", "--grace", "0.5",
                   "--probe-timeout", b.probe_timeout, "--cpu-window", "0.25", "--out", dir,
                   scenario),
           SHRINK_MS);
    keep_progress(p.err);
    ck_assert_msg(p.status == 0, "shrink: status %d:\n%.1000s%s", p.status, p.out, progress);
    ck_assert_ptr_nonnull(strstr(p.err, "trial 1/"));
    ts_proc_free(&p);
    char *text = ts_slurp(out, NULL);
    ck_assert_ptr_nonnull(text);
    return text;
}

/* `connfault run` takes minimal.ini, and it fails there: the written file's round trip. How
 * reliably the scenario fails is the shrink's own re-confirmation (4 of 4 runs of the same
 * scenario); a race may decide a small reproducer's runs now and then (sigpipe's one client,
 * before its request and FIN went in one segment: its minimal.ini failed 19 of 20 runs, and
 * one CI run of this test met the 20th). So up to MINIMAL_RUNS runs, until one fails: every
 * run must fail (status 1) or pass, none may end otherwise, and against the correct server it
 * never would. */
#define MINIMAL_RUNS 3
static void run_minimal(const char *dir, const char *bug, struct budget b)
{
    char ini[512];
    snprintf(ini, sizeof(ini), "%s/minimal.ini", dir);
    for (int i = 0; i < MINIMAL_RUNS; i++) {
        struct ts_proc p;
        run_ok(&p,
               TS_ARGV(CONNFAULT_BIN, "run", "--no-capture", "--bug", bug, "--seed", "7", "--grace",
                       "0.5", "--probe-timeout", b.probe_timeout, "--cpu-window", "0.25", ini),
               60000);
        int status = p.status;
        ck_assert_msg(status == 1 || (status == 0 && i < MINIMAL_RUNS - 1),
                      "run %d of %d of minimal.ini: status %d:\n%s%s", i + 1, MINIMAL_RUNS, status,
                      p.out, p.err);
        ts_proc_free(&p);
        if (status == 1)
            return;
    }
}

/* Budgets: what each shrink needed (with --seed 7, on 2 CPUs other work kept busy), with
 * margin for the races. */
/* 400 -> 3 is 8 trials (1 client does not fail, then 7 halvings). Under load a burst comes
 * apart now and then (the server then accepts each connection at its own edge) and a step is
 * lost, which costs the rest of a pass: on 2 CPUs kept busy by other work, 12 clients passed
 * a run while 15 failed, and the search reached 3 at trial 18 of 20 (77 s); another time 16
 * trials left it at 38. 24. The probes keep their 2 s: with 0.5 s, a minimal.ini of 3 clients
 * failed 4 of 6 runs (6 of 6 with 2 s), and the shrink stalled at 6 clients. */
static const struct budget accept_once = {"24", "2", "2"};
/* 300 -> 1 is 2 trials (the resetters dropped, the count to 1). A closer's request and FIN go
 * in one segment, so the server always answers a client already gone: one client fails every
 * run (40 of 40 with both cores kept busy). Sent apart, its FIN lost the race to the response
 * now and then (1 run in 16), and in one CI run both tries of 1 client missed (a trial must
 * fail K of K): the shrink ended at 2. 16 trials leave room for such a step all the same. */
static const struct budget sigpipe = {"16", "2", "2"};
/* 300 -> 1 is 2 trials; 1 more for a step lost to a fluke. */
static const struct budget leak_on_error = {"3", "2", "2"};
/* 50 -> 1 is 1 trial; 1 more for a fluke. The server blocks for good on the first client's
 * unfinished request: a probe needs no 2 s. */
static const struct budget blocking = {"2", "2", "0.5"};

START_TEST(accept_once_burst_abort_shrinks_to_three_clients_at_once)
{
    char dir[512];
    case_subdir(dir, sizeof(dir), "accept-once");
    char *text = shrink(dir, "accept-once", "burst-abort", accept_once);
    ck_assert_msg(!strstr(text, "\nconcurrency = 1\n"), "the burst is kept: %.1200s", body(text));
    ck_assert_msg(strstr(text, "failing check: accepting"), "%.3000s", text);
    ck_assert_msg(file_clients(text) >= 1 && file_clients(text) <= 3, "%.1200s\n%s", body(text),
                  progress);
    free(text);
    run_minimal(dir, "accept-once", accept_once);
    check_repro(dir, "accept-once", false);
}
END_TEST

/* rst-mid-response shrunk against --bug BUG twice with one seed, into case dirs "one" and
 * "two": the first fails `check` with 1 client. Both minimal.ini texts (malloc'd). */
static char *shrink_twice(const char *bug, const char *check, struct budget b, char **again)
{
    char dir[512], dir2[512], want[64];
    case_subdir(dir, sizeof(dir), "one");
    case_subdir(dir2, sizeof(dir2), "two");
    char *text = shrink(dir, bug, "rst-mid-response", b);
    snprintf(want, sizeof(want), "failing check: %s", check);
    ck_assert_msg(strstr(text, want), "%.3000s", text);
    ck_assert_msg(file_clients(text) == 1, "%.1200s\n%s", body(text), progress);
    *again = shrink(dir2, bug, "rst-mid-response", b);
    run_minimal(dir, bug, b);
    return text;
}

START_TEST(sigpipe_rst_mid_response_shrinks_to_one_client)
{
    char *again, *text = shrink_twice("sigpipe", "alive", sigpipe, &again);
    /* the same clients; a fault phase halved once more or less is the one race left */
    ck_assert_str_eq(strstr(body(text), "[clients"), strstr(body(again), "[clients"));
    free(text);
    free(again);
    check_repro(case_dir_sub("one"), "sigpipe", false);
}
END_TEST

START_TEST(leak_on_error_rst_mid_response_shrinks_to_one_client)
{
    char *again, *text = shrink_twice("leak-on-error", "fds", leak_on_error, &again);
    /* the same seed, the same minimal.ini, fault phase and all */
    ck_assert_str_eq(body(text), body(again));
    free(text);
    free(again);
    check_repro(case_dir_sub("one"), "leak-on-error", true);
}
END_TEST

START_TEST(blocking_slowloris_shrinks_to_one_client)
{
    char dir[512];
    case_subdir(dir, sizeof(dir), "blocking");
    char *text = shrink(dir, "blocking", "slowloris", blocking);
    ck_assert_msg(strstr(text, "failing check: accepting"), "%.3000s", text);
    ck_assert_msg(file_clients(text) == 1, "%.1200s\n%s", body(text), progress);
    free(text);
    run_minimal(dir, "blocking", blocking);
    check_repro(dir, "blocking", false);
}
END_TEST

START_TEST(a_passing_scenario_is_nothing_to_shrink)
{
    struct ts_proc p;
    run_ok(&p,
           TS_ARGV(CONNFAULT_BIN, "shrink", "--seed", "7", "--confirm", "1", "--grace", "0.5",
                   "connect-close"),
           60000);
    ck_assert_msg(p.status == 1, "status %d:\n%s%s", p.status, p.out, p.err);
    ck_assert_msg(strstr(p.out, "nothing to shrink"), "%s%s", p.out, p.err);
    ts_proc_free(&p);
}
END_TEST

START_TEST(usage_errors_name_the_problem)
{
    struct ts_proc p;
    run_ok(&p, TS_ARGV(CONNFAULT_BIN, "shrink", "--confirm", "0", "burst-abort"), 10000);
    ck_assert_int_eq(p.status, 2);
    ck_assert_ptr_nonnull(strstr(p.err, "--confirm: invalid value '0'"));
    ts_proc_free(&p);
    run_ok(&p, TS_ARGV(CONNFAULT_BIN, "shrink", "--check", "speed", "burst-abort"), 10000);
    ck_assert_int_eq(p.status, 2);
    ck_assert_ptr_nonnull(strstr(p.err, "--check"));
    ts_proc_free(&p);
    run_ok(&p, TS_ARGV(CONNFAULT_BIN, "shrink"), 10000);
    ck_assert_int_eq(p.status, 2);
    ts_proc_free(&p);
}
END_TEST

/* A case: its name (harness/CMakeLists.txt registers one ctest test per name), its tests. */
static TCase *add_case(Suite *s, const char *name, int timeout_s)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, timeout_s);
    tcase_add_unchecked_fixture(tc, case_dir_make, case_dir_remove);
    suite_add_tcase(s, tc);
    return tc;
}

static const char *const cases[] = {"library", "cli",           "accept-once",
                                    "sigpipe", "leak-on-error", "blocking"};

int main(int argc, char **argv)
{
    bool known = argc < 2;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) && !known; i++)
        known = strcmp(argv[1], cases[i]) == 0;
    if (argc > 2 || !known) {
        /* Check would run no test at all for an unknown case, and pass */
        fprintf(stderr, "usage: %s [library|cli|accept-once|sigpipe|leak-on-error|blocking]\n",
                argv[0]);
        return 2;
    }
    if (argc == 2)
        setenv("CK_RUN_CASE", argv[1], 1);
    Suite *s = suite_create("shrink");
    TCase *tc = add_case(s, "library", 60);
    tcase_add_test(tc, written_scenarios_load_back_the_same);
    tcase_add_test(tc, trickles_are_cut_like_counts);
    tcase_add_test(tc, byte_offsets_are_cut_like_counts);
    tcase_add_test(tc, rates_are_cut_like_counts);
    tcase_add_test(tc, small_counts_are_cut_one_by_one);
    tcase_add_test(tc, every_candidate_writes_back_as_itself);
    tc = add_case(s, "cli", 120);
    tcase_add_test(tc, usage_errors_name_the_problem);
    tcase_add_test(tc, a_passing_scenario_is_nothing_to_shrink);
    tcase_add_test(add_case(s, "accept-once", 400),
                   accept_once_burst_abort_shrinks_to_three_clients_at_once);
    tcase_add_test(add_case(s, "sigpipe", 400), sigpipe_rst_mid_response_shrinks_to_one_client);
    tcase_add_test(add_case(s, "leak-on-error", 400),
                   leak_on_error_rst_mid_response_shrinks_to_one_client);
    tcase_add_test(add_case(s, "blocking", 400), blocking_slowloris_shrinks_to_one_client);
    return ts_run_suite(s);
}
