/* Evidence and the `error` verdict, end to end against the reference server (in-process,
 * run_collect): a scenario whose path the server does not have must not PASS. It is an error
 * naming the status, how many clients got it and the flag (or the file) to fix, with the
 * evidence of every group; the exit status is 2. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "run.h"
#include "support.h"

#ifndef CONNFAULT_SERVER_BIN
#define CONNFAULT_SERVER_BIN "connfault-server"
#endif

static volatile sig_atomic_t never_interrupted;
static char test_dir[128];

static void dir_create(void)
{
    ck_assert_int_eq(ts_tmpdir_create(test_dir, sizeof(test_dir), "connfault-evidence"), 0);
}

static void dir_remove(void)
{
    ts_tmpdir_remove(test_dir);
}

/* Write NAME.ini with text and run it against the correct reference server. */
static int run_file(const char *name, const char *text, const char *large_path,
                    struct run_report *rep)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s.ini", test_dir, name);
    ck_assert_int_eq(ts_write_file(path, text), 0);
    struct run_options o;
    run_options_defaults(&o, &never_interrupted);
    o.reference_server = CONNFAULT_SERVER_BIN;
    o.seed = 42;
    o.verbosity = 0;
    if (large_path)
        o.large_path = large_path;
    char *names[] = {path};
    return run_collect(&o, names, 1, rep);
}

/* The one group of r: every one of its n clients sent its request, got a 404, and none
 * reached its fault. */
static const struct group_evidence *only_group_got_404(const struct scenario_result *r,
                                                       const char *fault, uint64_t n)
{
    ck_assert_uint_eq(r->ngroups, 1);
    const struct group_evidence *g = &r->groups[0];
    ck_assert_str_eq(g->fault, fault);
    ck_assert_uint_eq(g->planned, n);
    ck_assert_uint_eq(g->reached, 0);
    ck_assert_uint_eq(g->request_sent, n);
    ck_assert_uint_eq(g->nstatuses, 1);
    ck_assert_int_eq(g->statuses[0].status, 404);
    ck_assert_uint_eq(g->statuses[0].clients, n);
    return g;
}

static const char abort_missing[] = "[scenario]\n"
                                    "duration = 2s\n"
                                    "[clients readers]\n"
                                    "count = 20\n"
                                    "concurrency = 20\n"
                                    "request = GET /no/such/thing\n"
                                    "read = 1024-4096\n"
                                    "end = close\n";

/* abort-mid-response against a path the server does not have: 404 for every client, no
 * response ever read to its N bytes. Before: PASS. */
START_TEST(missing_path_is_an_error_not_a_pass)
{
    struct run_report rep;
    int status = run_file("abort-missing", abort_missing, NULL, &rep);
    ck_assert_uint_eq(rep.nscenarios, 1);
    const struct scenario_result *r = &rep.scenarios[0];
    ck_assert_msg(r->verdict == VERDICT_ERROR, "%s: %s", verdict_name(r->verdict), r->reason);
    ck_assert_int_eq(status, 2);
    ck_assert_msg(strstr(r->reason, "GET /no/such/thing answered 404 for 20 of 20 clients"), "%s",
                  r->reason);
    ck_assert_msg(strstr(r->reason, "abort-missing.ini:3) a resource the server has"), "%s",
                  r->reason);
    const struct group_evidence *g = only_group_got_404(r, "abort-after-bytes", 20);
    ck_assert_str_eq(g->name, "readers");
    ck_assert_ptr_nonnull(strstr(g->criterion, "read its 1024-4096 bytes"));
    ck_assert_uint_lt(g->bytes_max, 1024); /* the 404 is smaller than what they wanted */
    ck_assert_ptr_nonnull(strstr(g->first_bytes, "404"));
    /* every check was made and none failed: only the evidence made it an error */
    for (size_t i = 0; i < r->nchecks; i++)
        ck_assert_msg(r->checks[i].status == CHECK_OK, "%s", r->checks[i].summary);
    run_report_free(&rep);
}
END_TEST

static const char never_read_large[] = "[scenario]\n"
                                       "duration = 1s\n"
                                       "[clients stalled]\n"
                                       "count = 10\n"
                                       "request = large\n"
                                       "rcvbuf = 4096\n"
                                       "read = none\n"
                                       "end = hold\n";

static const char never_read_missing[] = "[scenario]\n"
                                         "duration = 1s\n"
                                         "[clients stalled]\n"
                                         "count = 10\n"
                                         "request = GET /missing/large\n"
                                         "rcvbuf = 4096\n"
                                         "read = none\n"
                                         "end = hold\n";

/* A never-reading client sees the 404 waiting in its receive queue (peeked, not read). */
START_TEST(never_read_of_a_missing_path_is_an_error)
{
    struct run_report rep;
    int status = run_file("stalled", never_read_missing, NULL, &rep);
    ck_assert_uint_eq(rep.nscenarios, 1);
    const struct scenario_result *r = &rep.scenarios[0];
    ck_assert_msg(r->verdict == VERDICT_ERROR, "%s: %s", verdict_name(r->verdict), r->reason);
    ck_assert_int_eq(status, 2);
    ck_assert_msg(strstr(r->reason, "GET /missing/large answered 404 for 10 of 10 clients: give "
                                    "the scenario's path"),
                  "%s", r->reason);
    const struct group_evidence *g = only_group_got_404(r, "never-read", 10);
    ck_assert_uint_eq(g->bytes_max, 0); /* looked at, never read */
    run_report_free(&rep);
}
END_TEST

/* A --large-path the server does not have never gets as far as a scenario: the pre-flight
 * stops the run (a set-up error, exit status 2) before any fault client is started; the
 * report's one entry is the set-up error, naming the flag. */
START_TEST(a_missing_large_path_stops_at_the_pre_flight)
{
    struct run_report rep;
    int status = run_file("stalled", never_read_large, "/missing/large", &rep);
    ck_assert_int_eq(status, 2);
    ck_assert_uint_eq(rep.nscenarios, 1);
    ck_assert_str_eq(rep.scenarios[0].name, "set-up");
    ck_assert_int_eq(rep.scenarios[0].verdict, VERDICT_ERROR);
    ck_assert_uint_eq(rep.scenarios[0].clients_started, 0);
    ck_assert_msg(strstr(rep.scenarios[0].reason, "/missing/large"), "%s",
                  rep.scenarios[0].reason);
    run_report_free(&rep);
}
END_TEST

/* Counts far beyond what the duration lets start: with bound = count (the default) the
 * scenario did not happen as written (error); with bound = duration the counts are caps (a
 * soak) and the clients that started are what is judged. */
static const char capped[] = "[scenario]\n"
                             "duration = 1s\n"
                             "%s"
                             "[clients quick]\n"
                             "count = 1000000\n"
                             "concurrency = 4\n"
                             "request = GET {probe_path}\n"
                             "read = all\n"
                             "end = close\n";

START_TEST(counts_are_caps_only_when_bound_by_duration)
{
    char text[512];
    struct run_report rep;
    snprintf(text, sizeof(text), capped, "");
    int status = run_file("capped", text, NULL, &rep);
    ck_assert_uint_eq(rep.nscenarios, 1);
    ck_assert_msg(rep.scenarios[0].verdict == VERDICT_ERROR, "%s",
                  verdict_name(rep.scenarios[0].verdict));
    ck_assert_msg(strstr(rep.scenarios[0].reason, "of 1000000 clients started within the fault"),
                  "%s", rep.scenarios[0].reason);
    ck_assert_int_eq(status, 2);
    run_report_free(&rep);

    snprintf(text, sizeof(text), capped, "bound = duration\n");
    status = run_file("capped", text, NULL, &rep);
    ck_assert_uint_eq(rep.nscenarios, 1);
    const struct scenario_result *r = &rep.scenarios[0];
    ck_assert_msg(r->verdict == VERDICT_PASS, "%s: %s", verdict_name(r->verdict), r->reason);
    ck_assert_int_eq(status, 0);
    ck_assert_uint_gt(r->groups[0].started, 0);
    ck_assert_uint_ge(r->groups[0].reached * 2, r->groups[0].started);
    run_report_free(&rep);
}
END_TEST

/* The same never-reading clients with a path the server has: the evidence shows the 2xx
 * waiting unread, and it passes. */
START_TEST(never_read_with_a_real_path_passes)
{
    struct run_report rep;
    int status = run_file("stalled-ok", never_read_large, NULL, &rep);
    const struct scenario_result *r = &rep.scenarios[0];
    ck_assert_msg(r->verdict == VERDICT_PASS, "%s: %s", verdict_name(r->verdict), r->reason);
    ck_assert_int_eq(status, 0);
    ck_assert_uint_eq(r->groups[0].reached, 10);
    ck_assert_int_eq(r->groups[0].statuses[0].status, 200);
    run_report_free(&rep);
}
END_TEST

static Suite *evidence_suite(void)
{
    Suite *s = suite_create("evidence");
    TCase *tc = tcase_create("reference server");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, dir_create, dir_remove);
    tcase_add_test(tc, missing_path_is_an_error_not_a_pass);
    tcase_add_test(tc, never_read_of_a_missing_path_is_an_error);
    tcase_add_test(tc, a_missing_large_path_stops_at_the_pre_flight);
    tcase_add_test(tc, never_read_with_a_real_path_passes);
    tcase_add_test(tc, counts_are_caps_only_when_bound_by_duration);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ts_run_suite(evidence_suite());
}
