/* Self-test: the harness against the reference server. Every built-in scenario must pass
 * against the correct server, and each --bug mode must fail the scenarios meant to catch it
 * (their `catches` keys), on the check named there. Runs the harness in-process (run_collect) so
 * the test reads verdicts and numbers from the report struct, not from printed text. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_catalogue.h"
#include "report.h"
#include "run.h"
#include "scenario.h"
#include "support.h"

#ifndef CONNFAULT_SERVER_BIN
#define CONNFAULT_SERVER_BIN "connfault-server"
#endif

static volatile sig_atomic_t never_interrupted;

/* The matrix comes from the built-in scenario files (their catches keys): every scenario
 * passes on the correct server, and every BUG:CHECK pair of a scenario fails that check under
 * --bug BUG. Built in main() before the test cases fork. */
static struct builtin_catalogue catalogue;

struct bug_case {
    const char *bug, *scenario, *check;
};

static struct bug_case *bug_cases;
static size_t nbug_cases;

/* Scenarios that need the network sandbox last, as the hand-made matrix had them: the
 * kernel tears their namespaces down after they end, and that work then does not overlap
 * the probes and CPU readings of the other scenarios. */
static int sandbox_last(const void *a, const void *b)
{
    const struct scenario *x = a, *y = b;
    if (x->needs_sandbox != y->needs_sandbox)
        return x->needs_sandbox ? 1 : -1;
    return strcmp(x->name, y->name);
}

static int matrix_build(void)
{
    char err[512];
    if (builtin_catalogue_load(scenario_builtin_dir(), &catalogue, err, sizeof(err)) < 0) {
        fprintf(stderr, "selftest: %s\n", err);
        return -1;
    }
    qsort(catalogue.sc, catalogue.n, sizeof(catalogue.sc[0]), sandbox_last);
    for (size_t i = 0; i < catalogue.n; i++)
        nbug_cases += catalogue.sc[i].ncatches;
    bug_cases = calloc(nbug_cases ? nbug_cases : 1, sizeof(*bug_cases));
    if (bug_cases == NULL || nbug_cases == 0) {
        fprintf(stderr, "selftest: %s\n",
                bug_cases ? "no scenario catches a bug mode" : "no memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < catalogue.n; i++) {
        const struct scenario *sc = &catalogue.sc[i];
        for (size_t j = 0; j < sc->ncatches; j++)
            bug_cases[k++] = (struct bug_case){sc->catches[j].bug, sc->name, sc->catches[j].check};
    }
    return 0;
}

static int run_one(const char *bug, const char *scenario, struct run_report *rep)
{
    struct run_options o;
    run_options_defaults(&o, &never_interrupted);
    o.reference_server = CONNFAULT_SERVER_BIN;
    o.bug = bug;
    o.seed = 42;
    /* A bug mode that holds fds holds them for ever: the wait would last the whole default
     * grace (90 s) to learn nothing more. The correct server keeps the default: its wait ends
     * when everything is back. */
    if (bug)
        o.grace_ms = 5000;
    o.verbosity = 0; /* failures are still printed: useful in the test log */
    char *names[] = {(char *)scenario};
    return run_collect(&o, names, 1, rep);
}

static const struct check_result *find_check(const struct scenario_result *r, const char *name)
{
    for (size_t i = 0; i < r->nchecks; i++)
        if (strcmp(r->checks[i].name, name) == 0)
            return &r->checks[i];
    return NULL;
}

START_TEST(builtin_scenario_passes_on_correct_server)
{
    const char *name = catalogue.sc[_i].name;
    struct run_report rep;
    int status = run_one(NULL, name, &rep);
    ck_assert_uint_eq(rep.nscenarios, 1);
    const struct scenario_result *r = &rep.scenarios[0];
    if (r->verdict != VERDICT_PASS)
        ck_abort_msg("%s: %s: %s", name, verdict_name(r->verdict), r->reason);
    ck_assert_int_eq(status, 0);
    /* A pass must have looked: every check made, none "not checked" (the six, and responses
     * where a group has `expect`). */
    size_t checks = 6;
    for (size_t i = 0; i < catalogue.sc[_i].ngroups; i++)
        checks = catalogue.sc[_i].groups[i].expect_responses ? 7 : checks;
    ck_assert_uint_eq(r->nchecks, checks);
    for (size_t i = 0; i < r->nchecks; i++)
        ck_assert_msg(r->checks[i].status == CHECK_OK, "%s: %s", name, r->checks[i].summary);
    ck_assert_uint_gt(r->clients_started, 0);
    /* ...and shows that its faults happened: every group has its evidence, and at least half
     * of each group's clients reached the fault (by its criterion, REPORTS.md). */
    ck_assert_uint_gt(r->ngroups, 0);
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct group_evidence *g = &r->groups[i];
        ck_assert_msg(g->planned > 0 && g->reached * 2 >= g->planned,
                      "%s: group %s reached its fault (%s: %s) in %llu of %llu", name, g->name,
                      g->fault, g->criterion, (unsigned long long)g->reached,
                      (unsigned long long)g->planned);
    }
    ck_assert_msg(r->diagnosis == NULL, "a passing scenario was diagnosed");
    run_report_free(&rep);
}
END_TEST

START_TEST(bug_mode_fails_the_check_that_catches_it)
{
    const struct bug_case *bc = &bug_cases[_i];
    struct run_report rep;
    int status = run_one(bc->bug, bc->scenario, &rep);
    ck_assert_uint_eq(rep.nscenarios, 1);
    const struct scenario_result *r = &rep.scenarios[0];
    ck_assert_msg(r->verdict == VERDICT_FAIL, "--bug %s x %s: expected a failure, got %s", bc->bug,
                  bc->scenario, verdict_name(r->verdict));
    ck_assert_int_eq(status, 1);
    const struct check_result *c = find_check(r, bc->check);
    ck_assert_ptr_nonnull(c);
    ck_assert_msg(c->status == CHECK_FAILED,
                  "--bug %s x %s: check %s did not fail: %s (reason: %s)", bc->bug, bc->scenario,
                  bc->check, c->summary, r->reason);
    /* A stuck or spinning target comes with where it is stuck (the diagnosis). */
    if (strcmp(bc->check, "accepting") == 0 || strcmp(bc->check, "cpu") == 0) {
        ck_assert_msg(r->diagnosis && r->diagnosis_summary && r->diagnosis_json,
                      "--bug %s x %s: no diagnosis", bc->bug, bc->scenario);
        ck_assert_ptr_nonnull(strstr(r->diagnosis, "connfault-server"));
    }
    run_report_free(&rep);
}
END_TEST

/* Which bug cases this process runs: argv "bugs cpu" those judged on `cpu` (a spinning target:
 * ctest keeps them apart from the other CPU-judging tests), "bugs K/N" the K-th of N shards of
 * the rest (ctest runs the shards side by side: each case mostly waits out its grace), "bugs"
 * all of them. Returns -1 on a malformed argument or an empty part. */
static int bugs_select(int argc, char **argv)
{
    int cpu_only = argc > 2 && strcmp(argv[2], "cpu") == 0;
    unsigned k = 0, n = 0;
    if (argc > 2 && !cpu_only) {
        char end;
        if (sscanf(argv[2], "%u/%u%c", &k, &n, &end) != 2 || k < 1 || k > n)
            return -1;
    }
    size_t kept = 0, rest = 0;
    for (size_t i = 0; i < nbug_cases; i++) {
        int keep = 1;
        if (cpu_only)
            keep = strcmp(bug_cases[i].check, "cpu") == 0;
        else if (n > 0 && strcmp(bug_cases[i].check, "cpu") != 0)
            keep = rest++ % n == k - 1;
        else if (n > 0)
            keep = 0;
        if (keep)
            bug_cases[kept++] = bug_cases[i];
    }
    nbug_cases = kept;
    return kept > 0 ? 0 : -1; /* an empty part would pass without looking */
}

/* argv[1] "correct" or "bugs" runs one half (ctest runs the halves side by side), argv[2] a
 * part of the bugs half (bugs_select). */
int main(int argc, char **argv)
{
    if (matrix_build() < 0)
        return 1;
    if (argc > 1)
        setenv("CK_RUN_CASE", strcmp(argv[1], "bugs") == 0 ? "bug modes" : "correct server", 1);
    if (argc > 1 && strcmp(argv[1], "bugs") == 0 && bugs_select(argc, argv) < 0) {
        fprintf(stderr, "selftest: bugs '%s': expected cpu or K/N (1 <= K <= N), with a case\n",
                argv[2]);
        return 2;
    }
    Suite *s = suite_create("selftest");
    TCase *correct = tcase_create("correct server");
    tcase_set_timeout(correct, 60);
    tcase_add_loop_test(correct, builtin_scenario_passes_on_correct_server, 0, (int)catalogue.n);
    suite_add_tcase(s, correct);
    TCase *bugs = tcase_create("bug modes");
    tcase_set_timeout(bugs, 60);
    tcase_add_loop_test(bugs, bug_mode_fails_the_check_that_catches_it, 0, (int)nbug_cases);
    suite_add_tcase(s, bugs);
    int status = ts_run_suite(s);
    free(bug_cases);
    builtin_catalogue_free(&catalogue);
    return status;
}
