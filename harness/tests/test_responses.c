/* The `responses` check: the `expect` key of a client group (parsed, and refused where it
 * cannot be met), the check's rules on hand-made evidence (run/check_responses.c), and end to
 * end against the reference server: half-closed clients get their whole response from the
 * correct server (pass, the check ok with its counts) and nothing from --bug half-close-drop
 * (fail, on responses, with the counts). */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "engine.h"
#include "report.h"
#include "run.h"
#include "scenario.h"
#include "support.h"

static volatile sig_atomic_t never_interrupted;
static char test_dir[128]; /* CONNFAULT_SERVER_BIN comes from harness/CMakeLists.txt */

static void dir_create(void)
{
    ck_assert_int_eq(ts_tmpdir_create(test_dir, sizeof(test_dir), "connfault-responses"), 0);
}

static void dir_remove(void)
{
    ts_tmpdir_remove(test_dir);
}

static const char *write_ini(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s.ini", test_dir, name);
    ck_assert_int_eq(ts_write_file(path, text), 0);
    return path;
}

/* ---- the key ---- */

START_TEST(expect_response_and_responses_n_are_parsed)
{
    struct scenario sc;
    char err[512];
    const char *path = write_ini("expect-ok", "[clients a]\ncount = 1\nend = half-close\n"
                                              "expect = response\n"
                                              "[clients b]\ncount = 1\npipeline = 3\n"
                                              "read = 100\nexpect = responses 3\n"
                                              "[clients c]\ncount = 1\n");
    ck_assert_msg(scenario_load(path, NULL, &sc, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(sc.ngroups, 3);
    ck_assert_uint_eq(sc.groups[0].expect_responses, 1);
    ck_assert_uint_eq(sc.groups[1].expect_responses, 3);
    ck_assert_uint_eq(sc.groups[2].expect_responses, 0);
    scenario_free(&sc);
}
END_TEST

static const struct {
    const char *text, *error;
} expect_errors[] = {
    {"[clients a]\ncount = 1\nexpect = all\n",
     ":3: expect: expected response, or responses N (N from 1 to 1000); got \"all\""},
    {"[clients a]\ncount = 1\nexpect = responses 0\n", ":3: expect: expected response"},
    {"[clients a]\ncount = 1\nexpect = responses 2x\n", ":3: expect: expected response"},
    {"[clients a]\ncount = 1\nexpect = responses 2\n",
     ":3: expect: 2 responses, but only 1 request is sent (pipeline)"},
    {"[clients a]\ncount = 1\nread = none\nexpect = response\n",
     ":4: expect: a client that never reads (read = none, line 3) receives nothing"},
    {"[clients a]\ncount = 1\nsend = none\nexpect = response\n",
     ":4: expect: no request is sent (send = none, line 3)"},
    {"[scenario]\nexpect = response\n[clients a]\ncount = 1\n",
     ":2: expect: belongs in [clients NAME], not in [scenario]"},
    {"[scenario]\ncatches = x:response\n[clients a]\ncount = 1\n",
     "expected accepting, alive, fds, sockets, cpu, memory or responses"},
};

START_TEST(expect_errors_name_the_line_and_the_rule)
{
    struct scenario sc;
    char err[512];
    const char *path = write_ini("expect-bad", expect_errors[_i].text);
    ck_assert_int_eq(scenario_load(path, NULL, &sc, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, expect_errors[_i].error), "got: %s", err);
}
END_TEST

START_TEST(catches_takes_the_responses_check)
{
    struct scenario sc;
    char err[512];
    const char *path = write_ini("catches", "[scenario]\ncatches = half-close-drop:responses\n"
                                            "[clients a]\ncount = 1\nexpect = response\n");
    ck_assert_msg(scenario_load(path, NULL, &sc, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(sc.ncatches, 1);
    ck_assert_str_eq(sc.catches[0].check, "responses");
    scenario_free(&sc);
}
END_TEST

/* ---- the rules, on hand-made evidence ---- */

static char http_request[] = "GET /bytes/1048576 HTTP/1.1\r\nHost: t\r\n\r\n";

/* What check_responses reads and writes: one half-closing group whose `reached` clients all
 * reached their fault, after six checks that passed. */
static struct scenario sc;
static struct client_group grp;
static struct scenario_result res;

static void one_group(unsigned expect, uint64_t reached)
{
    memset(&sc, 0, sizeof(sc));
    memset(&grp, 0, sizeof(grp));
    memset(&res, 0, sizeof(res));
    snprintf(grp.name, sizeof(grp.name), "half-closers");
    grp.count = (unsigned)reached;
    grp.request = http_request;
    grp.request_len = strlen(http_request);
    grp.pipeline = 1;
    grp.end = END_HALF_CLOSE;
    grp.expect_responses = expect;
    sc.groups = &grp;
    sc.ngroups = 1;
    res.ngroups = 1;
    snprintf(res.groups[0].name, sizeof(res.groups[0].name), "half-closers");
    snprintf(res.groups[0].fault, sizeof(res.groups[0].fault), "half-close");
    res.groups[0].planned = res.groups[0].reached = reached;
    res.verdict = VERDICT_PASS;
    res.nchecks = 6;
}

/* Judge ev; the responses check it added. */
static const struct check_result *judge(const struct engine_group_evidence *ev)
{
    check_responses(&sc, ev, NULL, &res);
    ck_assert_uint_eq(res.nchecks, 7);
    ck_assert_str_eq(res.checks[6].name, "responses");
    return &res.checks[6];
}

/* A number of c, by its key; -1 when absent. */
static int64_t number(const struct check_result *c, const char *key)
{
    for (size_t i = 0; i < c->nfields; i++)
        if (strcmp(c->fields[i].key, key) == 0 && c->fields[i].type == FIELD_INT)
            return c->fields[i].i;
    return -1;
}

START_TEST(dropped_half_closed_clients_fail_with_the_counts)
{
    one_group(1, 20);
    const struct check_result *c = judge(&(struct engine_group_evidence){.expect_eof = 20});
    ck_assert_int_eq(c->status, CHECK_FAILED);
    ck_assert_str_eq(c->summary, "responses: 0 of 20 half-closed clients (group half-closers) got "
                                 "the whole response (20 got EOF after 0 bytes)");
    ck_assert_int_eq(res.verdict, VERDICT_FAIL);
    ck_assert_str_eq(res.reason, c->summary);
    ck_assert_int_eq(number(c, "clients"), 20);
    ck_assert_int_eq(number(c, "got"), 0);
    ck_assert_int_eq(number(c, "eof"), 20);
    ck_assert_int_eq(number(c, "eof_bytes_max"), 0);
}
END_TEST

START_TEST(every_kind_of_miss_is_counted)
{
    one_group(1, 100);
    snprintf(res.reason, sizeof(res.reason), "fds: leaked");
    res.verdict = VERDICT_FAIL;
    const struct check_result *c = judge(&(struct engine_group_evidence){
        .expect_met = 90,
        .expect_eof = 4,
        .expect_eof_bytes_min = 100,
        .expect_eof_bytes_max = 5000,
        .expect_reset = 3,
        .expect_cut = 2,
    });
    ck_assert_int_eq(c->status, CHECK_FAILED);
    ck_assert_str_eq(c->summary,
                     "responses: 90 of 100 half-closed clients (group half-closers) got the whole "
                     "response (4 got EOF after 100 to 5000 bytes, 3 were reset, 2 still waiting "
                     "when the fault phase ended, 1 stopped reading first (their script))");
    ck_assert_msg(strncmp(res.reason, "fds: leaked; responses: 90 of 100", 33) == 0, "%s",
                  res.reason);
}
END_TEST

START_TEST(all_answered_is_ok_and_the_verdict_stays)
{
    one_group(1, 100);
    const struct check_result *c = judge(&(struct engine_group_evidence){.expect_met = 100});
    ck_assert_int_eq(c->status, CHECK_OK);
    ck_assert_str_eq(c->summary, "responses: 100 of 100 half-closed clients (group half-closers) "
                                 "got the whole response");
    ck_assert_int_eq(res.verdict, VERDICT_PASS);
    ck_assert_str_eq(res.reason, "");
}
END_TEST

START_TEST(pipelined_expectation_is_named_with_its_n)
{
    one_group(3, 10);
    grp.pipeline = 8;
    grp.end = END_RESET;
    snprintf(res.groups[0].fault, sizeof(res.groups[0].fault), "abort-after-bytes");
    ck_assert_str_eq(judge(&(struct engine_group_evidence){.expect_met = 10})->summary,
                     "responses: 10 of 10 clients of group half-closers that reached their fault "
                     "(abort-after-bytes) got their first 3 responses whole");
}
END_TEST

START_TEST(no_expect_lists_no_check)
{
    one_group(0, 20);
    check_responses(&sc, &(struct engine_group_evidence){0}, NULL, &res);
    ck_assert_uint_eq(res.nchecks, 6);
    ck_assert_int_eq(res.verdict, VERDICT_PASS);
}
END_TEST

START_TEST(nothing_to_judge_is_not_checked_never_ok)
{
    static const struct engine_group_evidence none = {0};
    one_group(1, 0);
    const struct check_result *c = judge(&none);
    ck_assert_int_eq(c->status, CHECK_NOT_CHECKED);
    ck_assert_str_eq(c->summary,
                     "responses: not checked: group half-closers: no client reached its fault");
    ck_assert_int_eq(res.verdict, VERDICT_PASS); /* the evidence makes it an error */

    static char raw[] = "PING\r\n";
    one_group(1, 20);
    grp.request = raw;
    grp.request_len = strlen(raw);
    c = judge(&none);
    ck_assert_int_eq(c->status, CHECK_NOT_CHECKED);
    ck_assert_ptr_nonnull(strstr(c->summary, "not HTTP"));
}
END_TEST

/* ---- end to end ---- */

static const char half_close_ini[] = "[scenario]\n"
                                     "duration = 3s\n"
                                     "[clients half-closers]\n"
                                     "count = 20\n"
                                     "concurrency = 10\n"
                                     "request = large\n"
                                     "end = half-close\n"
                                     "expect = response\n";

static const struct scenario_result *run_half_close(const char *bug, struct run_report *rep,
                                                    int *status)
{
    char *names[] = {(char *)write_ini("half-close-20", half_close_ini)};
    struct run_options o;
    run_options_defaults(&o, &never_interrupted);
    o.reference_server = CONNFAULT_SERVER_BIN;
    o.bug = bug;
    o.seed = 42;
    o.verbosity = 0;
    *status = run_collect(&o, names, 1, rep);
    ck_assert_uint_eq(rep->nscenarios, 1);
    return &rep->scenarios[0];
}

static const struct check_result *check_named(const struct scenario_result *r, const char *name)
{
    for (size_t i = 0; i < r->nchecks; i++)
        if (strcmp(r->checks[i].name, name) == 0)
            return &r->checks[i];
    ck_abort_msg("no %s check", name);
    return NULL;
}

START_TEST(correct_server_answers_every_half_closed_client)
{
    struct run_report rep;
    int status;
    const struct scenario_result *r = run_half_close(NULL, &rep, &status);
    ck_assert_msg(r->verdict == VERDICT_PASS, "%s: %s", verdict_name(r->verdict), r->reason);
    ck_assert_int_eq(status, 0);
    const struct check_result *c = check_named(r, "responses");
    ck_assert_int_eq(c->status, CHECK_OK);
    ck_assert_str_eq(c->summary, "responses: 20 of 20 half-closed clients (group half-closers) "
                                 "got the whole response");
    run_report_free(&rep);
}
END_TEST

START_TEST(half_close_drop_fails_on_responses)
{
    struct run_report rep;
    int status;
    const struct scenario_result *r = run_half_close("half-close-drop", &rep, &status);
    ck_assert_msg(r->verdict == VERDICT_FAIL, "%s: %s", verdict_name(r->verdict), r->reason);
    ck_assert_int_eq(status, 1);
    const struct check_result *c = check_named(r, "responses");
    ck_assert_int_eq(c->status, CHECK_FAILED);
    ck_assert_msg(strstr(c->summary, "of 20 half-closed clients (group half-closers) got the whole "
                                     "response ("),
                  "%s", c->summary);
    ck_assert_msg(strstr(c->summary, "got EOF after 0 bytes"), "%s", c->summary);
    ck_assert_ptr_nonnull(strstr(r->reason, "responses: "));
    run_report_free(&rep);
}
END_TEST

/* The kernel's resets (SYN cookies that failed behind an overflowed listen backlog) are
 * excused, at most as many as the counter rose and as there were resets before any byte. */
START_TEST(kernel_resets_are_excused_never_more_than_the_counter_rose)
{
    struct kernel_counts k = {.known = true, .own_netns = true, .backlog = 5};
    k.rise.syncookies_failed = 3;
    k.rise.listen_overflows = 41;
    ck_assert_uint_eq(check_kernel_resets(3, &k), 3);
    ck_assert_uint_eq(check_kernel_resets(5, &k), 3); /* never more than the counter rose */
    ck_assert_uint_eq(check_kernel_resets(2, &k), 2); /* nor than there were such resets */
    ck_assert_uint_eq(check_kernel_resets(0, &k), 0);
    ck_assert_uint_eq(check_kernel_resets(3, NULL), 0);
    k.known = false;
    ck_assert_uint_eq(check_kernel_resets(3, &k), 0); /* unknown counters excuse nothing */
    k.known = true;
    k.own_netns = false;
    ck_assert_uint_eq(check_kernel_resets(3, &k), 0); /* nor a namespace shared with others */
    k.own_netns = true;

    k.known = true;
    one_group(1, 100);
    check_responses(&sc,
                    &(struct engine_group_evidence){
                        .expect_met = 97, .expect_reset = 3, .expect_reset_unread = 3},
                    &k, &res);
    const struct check_result *c = &res.checks[6];
    ck_assert_int_eq(c->status, CHECK_OK);
    ck_assert_str_eq(c->summary,
                     "responses: 97 of 100 half-closed clients (group half-closers) got the whole "
                     "response (3 were reset); 3 resets before any byte excused: the kernel's, "
                     "SyncookiesFailed +3 with ListenOverflows +41 (listen backlog 5)");
    ck_assert_int_eq(res.verdict, VERDICT_PASS);
    ck_assert_int_eq(number(c, "reset_before_any_byte"), 3);
    ck_assert_int_eq(number(c, "excused_resets"), 3);
    ck_assert_int_eq(number(c, "syncookies_failed"), 3);
    ck_assert_int_eq(number(c, "listen_overflows"), 41);
}
END_TEST

/* More resets before any byte than cookies failed: the rest are the server's, and fail. So do
 * resets after bytes were read, whatever the counter. */
START_TEST(resets_past_the_kernels_fail)
{
    struct kernel_counts k = {.known = true, .own_netns = true};
    k.rise.syncookies_failed = 3;
    one_group(1, 100);
    check_responses(&sc,
                    &(struct engine_group_evidence){
                        .expect_met = 95, .expect_reset = 5, .expect_reset_unread = 5},
                    &k, &res);
    const struct check_result *c = &res.checks[6];
    ck_assert_int_eq(c->status, CHECK_FAILED);
    ck_assert_msg(strstr(c->summary, "; 3 resets before any byte (of 5) excused: the kernel's, "
                                     "SyncookiesFailed +3 with ListenOverflows +0"),
                  "%s", c->summary);
    ck_assert_int_eq(number(c, "excused_resets"), 3);
    ck_assert_int_eq(res.verdict, VERDICT_FAIL);

    one_group(1, 100);
    check_responses(&sc,
                    &(struct engine_group_evidence){
                        .expect_met = 97, .expect_reset = 3, .expect_reset_unread = 0},
                    &k, &res);
    ck_assert_int_eq(res.checks[6].status, CHECK_FAILED);
    ck_assert_int_eq(number(&res.checks[6], "excused_resets"), -1);

    one_group(1, 100); /* counters unknown: nothing excused, and said */
    check_responses(&sc,
                    &(struct engine_group_evidence){
                        .expect_met = 97, .expect_reset = 3, .expect_reset_unread = 3},
                    NULL, &res);
    ck_assert_int_eq(res.checks[6].status, CHECK_FAILED);
    ck_assert_msg(strstr(res.checks[6].summary, "3 resets before any byte, none excused"), "%s",
                  res.checks[6].summary);
}
END_TEST

static Suite *responses_suite(void)
{
    Suite *s = suite_create("responses");
    TCase *key = tcase_create("the expect key");
    tcase_add_unchecked_fixture(key, dir_create, dir_remove);
    tcase_add_test(key, expect_response_and_responses_n_are_parsed);
    tcase_add_loop_test(key, expect_errors_name_the_line_and_the_rule, 0,
                        sizeof(expect_errors) / sizeof(expect_errors[0]));
    tcase_add_test(key, catches_takes_the_responses_check);
    suite_add_tcase(s, key);
    TCase *rules = tcase_create("the check's rules");
    tcase_add_test(rules, dropped_half_closed_clients_fail_with_the_counts);
    tcase_add_test(rules, every_kind_of_miss_is_counted);
    tcase_add_test(rules, all_answered_is_ok_and_the_verdict_stays);
    tcase_add_test(rules, pipelined_expectation_is_named_with_its_n);
    tcase_add_test(rules, no_expect_lists_no_check);
    tcase_add_test(rules, nothing_to_judge_is_not_checked_never_ok);
    tcase_add_test(rules, kernel_resets_are_excused_never_more_than_the_counter_rose);
    tcase_add_test(rules, resets_past_the_kernels_fail);
    suite_add_tcase(s, rules);
    TCase *e2e = tcase_create("reference server");
    tcase_set_timeout(e2e, 60);
    tcase_add_unchecked_fixture(e2e, dir_create, dir_remove);
    tcase_add_test(e2e, correct_server_answers_every_half_closed_client);
    tcase_add_test(e2e, half_close_drop_fails_on_responses);
    suite_add_tcase(s, e2e);
    return s;
}

int main(void)
{
    return ts_run_suite(responses_suite());
}
