/* Tests for the report writers: human lines and the totals line CI reads, JUnit XML that is
 * well-formed (a small checker here, and xmllint when installed), JSON that parses (the strict
 * parser of tests/support) with the documented fields, TAP that perl's TAP::Parser and prove
 * read back (when installed), and nasty strings escaped. */
#include "report.h"
#include "json_writer.h" /* cf_utf8_sequence */
#include "support.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a report with one scenario of each verdict and hostile strings ---- */

#define NASTY "q\"uo'te <tag> & amp \x01 ctl \x1b[31m bad\xff\xfe utf8 \xc3\xa9 \\ end"
/* what NASTY must read back as from JSON: invalid bytes became U+FFFD */
#define NASTY_DECODED                                                                              \
    "q\"uo'te <tag> & amp \x01 ctl \x1b[31m bad\xef\xbf\xbd\xef\xbf\xbd utf8 \xc3\xa9 \\ end"

static void add_check(struct scenario_result *r, const char *name, enum check_status status,
                      const char *summary)
{
    struct check_result *c = &r->checks[r->nchecks++];
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->status = status;
    snprintf(c->summary, sizeof(c->summary), "%s", summary);
}

static void build_report(struct run_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    rep->seed = UINT64_MAX;
    snprintf(rep->target_kind, sizeof(rep->target_kind), "cmd");
    snprintf(rep->target_desc, sizeof(rep->target_desc), "./server --flag " NASTY);
    snprintf(rep->host, sizeof(rep->host), "127.0.0.1");
    rep->port = 8080;
    rep->duration_s = 12.34;
    rep->nscenarios = 3;
    rep->scenarios = calloc(3, sizeof(*rep->scenarios));
    ck_assert_ptr_nonnull(rep->scenarios);

    struct scenario_result *pass = &rep->scenarios[0];
    snprintf(pass->name, sizeof(pass->name), "rst-mid-response");
    pass->verdict = VERDICT_PASS;
    pass->duration_s = 3.21;
    pass->clients_started = 300;
    pass->clients_connected = 299;
    pass->clients_failed_connect = 1;
    pass->clients_completed = 298;
    add_check(pass, "accepting", CHECK_OK, "accepting p50 1.1ms max 4.0ms");
    add_check(pass, "fds", CHECK_OK, "fds 5 -> peak 57 -> 5");
    add_check(pass, "cpu", CHECK_NOT_CHECKED, "cpu: /proc/1/stat: Permission denied");
    check_add_int(&pass->checks[1], "fds_baseline", 5);
    check_add_int(&pass->checks[1], "fds_peak", -57);
    check_add_double(&pass->checks[0], "p50_ms", 1.1);

    struct scenario_result *fail = &rep->scenarios[1];
    snprintf(fail->name, sizeof(fail->name), "fail<&>\"'");
    fail->verdict = VERDICT_FAIL;
    fail->duration_s = 2.0;
    snprintf(fail->reason, sizeof(fail->reason), "fds leaked");
    add_check(fail, "fds", CHECK_FAILED, "fds 5 -> 40 " NASTY);
    add_check(fail, "alive", CHECK_OK, "alive: pid 42 running");
    add_check(fail, "cpu", CHECK_FAILED, "cpu 99% while idle");
    check_add_double(&fail->checks[0], "nan", NAN);
    check_add_double(&fail->checks[0], "inf", INFINITY);
    check_add_double(&fail->checks[0], "half", 0.5);
    check_add_str(&fail->checks[0], "text", NASTY);
    check_add_int(&fail->checks[0], "ok", 1); /* collides with a fixed key */
    snprintf(fail->capture_path, sizeof(fail->capture_path), "/tmp/cap.pcap");
    fail->diagnosis = strdup("line one\n  RST after FIN " NASTY "\nline three");
    ck_assert_ptr_nonnull(fail->diagnosis);
    fail->diagnosis_summary = strdup("blocked in recvfrom");
    fail->diagnosis_json = strdup("{\"state\":\"S\"}"); /* written as is */

    struct scenario_result *skip = &rep->scenarios[2];
    snprintf(skip->name, sizeof(skip->name), "drop");
    skip->verdict = VERDICT_SKIP;
    snprintf(skip->reason, sizeof(skip->reason), "needs root & <sandbox>");
}

static char test_dir[64];

static void temp_dir_create(void)
{
    int rc = ts_tmpdir_create(test_dir, sizeof(test_dir), "connfault-report");
    if (rc < 0) {
        fprintf(stderr, "temp dir: %s\n", strerror(-rc));
        exit(1);
    }
}

static void temp_dir_remove(void)
{
    ts_tmpdir_remove(test_dir);
}

static char *read_whole_file(const char *path)
{
    char *text = ts_slurp(path, NULL);
    ck_assert_msg(text != NULL, "%s: %s", path, strerror(errno));
    return text;
}

static bool file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Length of the valid UTF-8 sequence at s, 0 if there is none. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned long cp;
    return cf_utf8_sequence(s, strnlen((const char *)s, 4), &cp);
}

/* ---- a tiny XML well-formedness checker ---- */

struct xml_stats {
    int testcases, failures, skipped, system_outs, properties;
    char failure_message[2048]; /* decoded message of the last <failure> */
    char first_testsuite_tests[16];
};

/* Checks character data up to '<' (or an attribute value up to the quote): only known
 * entities, no forbidden control characters, valid UTF-8. Decodes into out if given. */
static const char *xml_check_text(const char *p, char stop, char *out, size_t outlen)
{
    size_t o = 0;
    while (*p && *p != stop && *p != '<') {
        char c = *p;
        size_t n = 1;
        if (c == '&') {
            static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            static const char decoded[] = "&<>\"'";
            n = 0;
            for (size_t i = 0; i < 5; i++)
                if (strncmp(p, ents[i], strlen(ents[i])) == 0)
                    n = strlen(ents[i]), c = decoded[i];
            if (n == 0 && p[1] == '#') {
                char *end;
                long v = strtol(p + 2, &end, 10);
                ck_assert_msg(*end == ';' && (v == 9 || v == 10 || v == 13 || v >= 0x20),
                              "bad character reference at %.20s", p);
                n = (size_t)(end - p + 1), c = (char)v;
            }
            ck_assert_msg(n > 0, "unescaped '&' at %.20s", p);
        } else if ((unsigned char)c < 0x20) {
            ck_assert_msg(c == '\t' || c == '\n' || c == '\r', "control character 0x%02x", c);
        } else {
            n = utf8_len((const unsigned char *)p);
            ck_assert_msg(n > 0, "invalid UTF-8 at %.20s", p);
        }
        if (out != NULL && o + n < outlen) {
            if (*p == '&')
                out[o++] = c;
            else
                memcpy(out + o, p, n), o += n;
        }
        p += n;
    }
    if (out != NULL)
        out[o] = '\0';
    return p;
}

static const char *xml_name(const char *p, char *name, size_t len)
{
    size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:.");
    ck_assert_msg(n > 0 && n < len, "expected a name at %.20s", p);
    memcpy(name, p, n);
    name[n] = '\0';
    return p + n;
}

/* One start tag at p (just after '<'); returns after '>' and whether it was empty (/>). */
static const char *xml_start_tag(const char *p, char *name, size_t len, bool *empty,
                                 struct xml_stats *st)
{
    p = xml_name(p, name, len);
    char seen[16][32];
    int nseen = 0;
    for (;;) {
        const char *q = p + strspn(p, " \t\n\r");
        if (*q == '>' || (q[0] == '/' && q[1] == '>')) {
            *empty = *q == '/';
            return q + (*empty ? 2 : 1);
        }
        ck_assert_msg(q > p, "expected space before attribute at %.20s", q);
        char attr[32], value[2048];
        p = xml_name(q, attr, sizeof(attr));
        for (int i = 0; i < nseen; i++)
            ck_assert_msg(strcmp(seen[i], attr) != 0, "attribute %s twice", attr);
        if (nseen < 16)
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", attr);
        ck_assert_msg(p[0] == '=' && p[1] == '"', "expected =\" after %s", attr);
        p = xml_check_text(p + 2, '"', value, sizeof(value));
        ck_assert_msg(*p == '"', "unterminated attribute %s (raw '<' in it?)", attr);
        p++;
        if (strcmp(name, "failure") == 0 && strcmp(attr, "message") == 0)
            snprintf(st->failure_message, sizeof(st->failure_message), "%s", value);
        if (strcmp(name, "testsuite") == 0 && strcmp(attr, "tests") == 0)
            snprintf(st->first_testsuite_tests, sizeof(st->first_testsuite_tests), "%.15s", value);
    }
}

static void xml_count(const char *name, struct xml_stats *st)
{
    st->testcases += strcmp(name, "testcase") == 0;
    st->failures += strcmp(name, "failure") == 0;
    st->skipped += strcmp(name, "skipped") == 0;
    st->system_outs += strcmp(name, "system-out") == 0;
    st->properties += strcmp(name, "property") == 0;
}

static void xml_check(const char *doc, struct xml_stats *st)
{
    char stack[16][32];
    int depth = 0, roots = 0;
    const char *p = doc;
    memset(st, 0, sizeof(*st));
    ck_assert_msg(strncmp(p, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38) == 0,
                  "no XML declaration");
    p = strstr(p, "?>") + 2;
    while (*p) {
        p = xml_check_text(p, '\0', NULL, 0);
        if (*p == '\0')
            break;
        p++; /* '<' */
        char name[32];
        if (*p == '/') {
            p = xml_name(p + 1, name, sizeof(name));
            ck_assert_msg(depth > 0 && strcmp(stack[depth - 1], name) == 0,
                          "</%s> does not close the open element", name);
            depth--;
            ck_assert_msg(*p == '>', "expected > after </%s", name);
            p++;
            continue;
        }
        bool empty;
        p = xml_start_tag(p, name, sizeof(name), &empty, st);
        ck_assert_msg(depth > 0 || roots++ == 0, "more than one root element");
        xml_count(name, st);
        if (!empty) {
            ck_assert_int_lt(depth, 16);
            snprintf(stack[depth++], sizeof(stack[0]), "%s", name);
        }
    }
    ck_assert_msg(depth == 0, "unclosed <%s>", depth ? stack[depth - 1] : "");
    ck_assert_int_eq(roots, 1);
}

/* ---- JSON: parsed by tests/support, asserted on here ---- */

static struct ts_json *json_parse(const char *doc)
{
    char error[256];
    struct ts_json *root = ts_json_parse(doc, error, sizeof(error));
    ck_assert_msg(root != NULL, "invalid JSON: %s", error);
    return root;
}

/* The member key of object, which must be there. */
static const struct ts_json *json_get(const struct ts_json *object, const char *key)
{
    const struct ts_json *value = ts_json_get(object, key);
    ck_assert_msg(value != NULL, "no key \"%s\"", key);
    return value;
}

static const struct ts_json *json_at(const struct ts_json *array, size_t i)
{
    const struct ts_json *item = ts_json_at(array, i);
    ck_assert_msg(item != NULL, "no item %zu", i);
    return item;
}

static const char *json_str(const struct ts_json *object, const char *key)
{
    ck_assert_int_eq(json_get(object, key)->type, TS_JSON_STRING);
    return ts_json_str(object, key);
}

static const char *json_num(const struct ts_json *object, const char *key)
{
    ck_assert_int_eq(json_get(object, key)->type, TS_JSON_NUMBER);
    return ts_json_num(object, key);
}

/* ---- tests ---- */

__attribute__((noinline)) static char *
print_to_string(void (*print)(FILE *, const struct run_report *, bool, bool),
                const struct run_report *rep, bool verbose, bool color)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    print(out, rep, verbose, color);
    fclose(out);
    return text;
}

static void print_all(FILE *out, const struct run_report *rep, bool verbose, bool color)
{
    for (size_t i = 0; i < rep->nscenarios; i++)
        report_print_scenario(out, &rep->scenarios[i], verbose, color);
}

static void print_totals(FILE *out, const struct run_report *rep, bool verbose, bool color)
{
    (void)verbose;
    report_print_totals(out, rep, color);
}

START_TEST(test_human_lines)
{
    struct run_report rep;
    build_report(&rep);
    char *text = print_to_string(print_all, &rep, false, false);
    const char *expected_pass =
        "PASS  rst-mid-response       3.2s  accepting p50 1.1ms max 4.0ms; fds 5 -> peak 57 -> 5 "
        "(1 not checked)\n";
    ck_assert_msg(strncmp(text, expected_pass, strlen(expected_pass)) == 0, "got: %s", text);
    const char *fail = strstr(text, "\nFAIL  fail<&>\"'");
    ck_assert_ptr_nonnull(fail);
    /* failed checks only, control characters neutralized for the terminal */
    ck_assert_ptr_nonnull(strstr(fail, "2.0s  fds 5 -> 40 q\"uo'te <tag> & amp ? ctl ?[31m"));
    ck_assert_ptr_nonnull(strstr(fail, "; cpu 99% while idle\n"));
    ck_assert_ptr_null(strstr(fail, "alive: pid 42"));
    ck_assert_ptr_nonnull(strstr(fail, "\n    capture: /tmp/cap.pcap\n"));
    ck_assert_ptr_nonnull(strstr(fail, "\n    line one\n      RST after FIN"));
    ck_assert_ptr_nonnull(
        strstr(text, "\nSKIP  drop                   0.0s  needs root & <sandbox>\n"));
    ck_assert_ptr_null(strchr(text, '\033'));
    free(text);

    text = print_to_string(print_all, &rep, false, true);
    ck_assert_ptr_nonnull(strstr(text, "\033[32mPASS\033[0m  rst-mid-response"));
    ck_assert_ptr_nonnull(strstr(text, "\033[31mFAIL\033[0m  fail"));
    ck_assert_ptr_nonnull(strstr(text, "\033[33mSKIP\033[0m  drop"));
    free(text);

    text = print_to_string(print_all, &rep, true, false);
    ck_assert_ptr_nonnull(strstr(text, "\n    ok      accepting p50 1.1ms max 4.0ms\n"));
    ck_assert_ptr_nonnull(strstr(text, "\n    ok      fds 5 -> peak 57 -> 5\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "\n    not checked: cpu: /proc/1/stat: Permission denied\n"));
    ck_assert_ptr_nonnull(strstr(text, "\n    FAILED  cpu 99% while idle\n"));
    ck_assert_ptr_nonnull(strstr(text, "\n    ok      alive: pid 42 running\n"));
    free(text);
    run_report_free(&rep);
    ck_assert_ptr_null(rep.scenarios);
}
END_TEST

START_TEST(test_totals_line)
{
    struct run_report rep;
    build_report(&rep);
    char *text = print_to_string(print_totals, &rep, false, false);
    ck_assert_str_eq(text, "connfault: 1 passed, 1 failed, 1 skipped\n"
                           "seed 18446744073709551615, 12.3s\n");
    unsigned passed, failed, skipped;
    ck_assert_int_eq(
        sscanf(text, "connfault: %u passed, %u failed, %u skipped", &passed, &failed, &skipped), 3);
    free(text);

    /* in color the words are unchanged: only wrapped */
    text = print_to_string(print_totals, &rep, false, true);
    ck_assert_ptr_nonnull(strstr(text, "connfault: 1 passed, 1 failed, 1 skipped\033[0m\n"));
    free(text);
    run_report_free(&rep);

    struct run_report empty = {.seed = 7};
    text = print_to_string(print_totals, &empty, false, false);
    ck_assert_str_eq(text, "connfault: 0 passed, 0 failed, 0 skipped\nseed 7, 0.0s\n");
    free(text);
}
END_TEST

static bool have_xmllint(void)
{
    return system("command -v xmllint >/dev/null 2>&1") == 0;
}

START_TEST(test_junit)
{
    struct run_report rep;
    char path[256], tmp[300], err[256] = "", cmd[600];
    build_report(&rep);
    snprintf(path, sizeof(path), "%s/junit.xml", test_dir);
    ck_assert_int_eq(report_write_junit(path, &rep, err, sizeof(err)), 0);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    ck_assert(!file_exists(tmp));

    char *doc = read_whole_file(path);
    struct xml_stats st;
    xml_check(doc, &st);
    ck_assert_int_eq(st.testcases, 3);
    ck_assert_int_eq(st.failures, 1);
    ck_assert_int_eq(st.skipped, 1);
    ck_assert_int_eq(st.system_outs, 3);
    ck_assert_int_ge(st.properties, 2);
    ck_assert_str_eq(st.first_testsuite_tests, "3");
    ck_assert_ptr_nonnull(strstr(doc, "<testsuite name=\"connfault\" tests=\"3\" failures=\"1\""));
    ck_assert_ptr_nonnull(strstr(doc, "skipped=\"1\" time=\"12.340\">"));
    ck_assert_ptr_nonnull(strstr(doc, "<property name=\"seed\" value=\"18446744073709551615\"/>"));
    ck_assert_ptr_nonnull(
        strstr(doc, "<testcase classname=\"connfault\" name=\"rst-mid-response\" time=\"3.210\">"));
    ck_assert_ptr_nonnull(strstr(doc, "name=\"fail&lt;&amp;&gt;&quot;&apos;\""));
    ck_assert_ptr_nonnull(strstr(doc, "<skipped message=\"needs root &amp; &lt;sandbox&gt;\"/>"));
    /* the failure message holds every failed summary; invalid bytes and controls replaced */
    ck_assert_str_eq(st.failure_message,
                     "fds 5 -> 40 q\"uo'te <tag> & amp \xef\xbf\xbd ctl \xef\xbf\xbd[31m "
                     "bad\xef\xbf\xbd\xef\xbf\xbd utf8 \xc3\xa9 \\ end; cpu 99% while idle");
    /* the body carries the diagnosis */
    ck_assert_ptr_nonnull(strstr(doc, "line one\n  RST after FIN"));
    free(doc);

    if (have_xmllint()) {
        snprintf(cmd, sizeof(cmd), "xmllint --noout '%s'", path);
        ck_assert_int_eq(system(cmd), 0);
    } else {
        printf("test_junit: xmllint not installed, schema-free check only\n");
    }
    unlink(path);
    run_report_free(&rep);
}
END_TEST

/* The failing and the skipped scenario of build_report(), as report.json has them. */
static void check_json_fail_and_skip(const struct ts_json *fail, const struct ts_json *skip)
{
    ck_assert_str_eq(json_str(fail, "name"), "fail<&>\"'");
    ck_assert_str_eq(json_str(fail, "verdict"), "fail");
    ck_assert_str_eq(json_str(fail, "capture"), "/tmp/cap.pcap");
    const struct ts_json *diag = json_get(fail, "diagnosis");
    ck_assert_str_eq(json_str(diag, "text"),
                     "line one\n  RST after FIN " NASTY_DECODED "\nline three");
    ck_assert_str_eq(json_str(diag, "summary"), "blocked in recvfrom");
    ck_assert_str_eq(json_str(json_get(diag, "detail"), "state"), "S");
    const struct ts_json *fds = json_at(json_get(fail, "checks"), 0);
    ck_assert_str_eq(json_str(fds, "name"), "fds");
    ck_assert_str_eq(json_str(fds, "status"), "failed");
    ck_assert_int_eq(json_get(fds, "ok")->type, TS_JSON_BOOL);
    ck_assert(!json_get(fds, "ok")->boolean);
    ck_assert_str_eq(json_str(fds, "summary"), "fds 5 -> 40 " NASTY_DECODED);
    ck_assert_int_eq(json_get(fds, "nan")->type, TS_JSON_NULL);
    ck_assert_int_eq(json_get(fds, "inf")->type, TS_JSON_NULL);
    ck_assert_str_eq(json_num(fds, "half"), "0.5");
    ck_assert_str_eq(json_str(fds, "text"), NASTY_DECODED);
    ck_assert_str_eq(json_num(fds, "field_ok"), "1");

    ck_assert_str_eq(json_str(skip, "verdict"), "skip");
    ck_assert_str_eq(json_str(skip, "reason"), "needs root & <sandbox>");
    ck_assert_uint_eq(json_get(skip, "checks")->n, 0);
    ck_assert_ptr_null(ts_json_get(skip, "extra"));
}

START_TEST(test_json)
{
    struct run_report rep;
    char path[256], tmp[300], err[256] = "";
    build_report(&rep);
    snprintf(path, sizeof(path), "%s/report.json", test_dir);
    ck_assert_int_eq(report_write_json(path, &rep, err, sizeof(err)), 0);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    ck_assert(!file_exists(tmp));
    char *doc = read_whole_file(path);
    struct ts_json *root = json_parse(doc);

    ck_assert_str_eq(json_num(root, "seed"), "18446744073709551615");
    ck_assert_double_eq_tol(strtod(json_num(root, "duration_s"), NULL), 12.34, 1e-9);
    const struct ts_json *target = json_get(root, "target");
    ck_assert_str_eq(json_str(target, "kind"), "cmd");
    ck_assert_str_eq(json_str(target, "description"), "./server --flag " NASTY_DECODED);
    ck_assert_str_eq(json_str(target, "host"), "127.0.0.1");
    ck_assert_str_eq(json_num(target, "port"), "8080");

    const struct ts_json *scenarios = json_get(root, "scenarios");
    ck_assert_uint_eq(scenarios->n, 3);
    const struct ts_json *pass = json_at(scenarios, 0), *fail = json_at(scenarios, 1),
                         *skip = json_at(scenarios, 2);
    ck_assert_str_eq(json_str(pass, "name"), "rst-mid-response");
    ck_assert_str_eq(json_str(pass, "verdict"), "pass");
    ck_assert_str_eq(json_str(pass, "reason"), "");
    ck_assert_int_eq(json_get(pass, "capture")->type, TS_JSON_NULL);
    ck_assert_int_eq(json_get(pass, "diagnosis")->type, TS_JSON_NULL);
    const struct ts_json *clients = json_get(pass, "clients");
    ck_assert_str_eq(json_num(clients, "started"), "300");
    ck_assert_str_eq(json_num(clients, "connected"), "299");
    ck_assert_str_eq(json_num(clients, "failed_connect"), "1");
    ck_assert_str_eq(json_num(clients, "completed"), "298");
    const struct ts_json *checks = json_get(pass, "checks");
    ck_assert_uint_eq(checks->n, 3);
    ck_assert_str_eq(json_str(json_at(checks, 0), "status"), "ok");
    ck_assert(json_get(json_at(checks, 0), "ok")->boolean);
    ck_assert_double_eq_tol(strtod(json_num(json_at(checks, 0), "p50_ms"), NULL), 1.1, 1e-12);
    ck_assert_str_eq(json_num(json_at(checks, 1), "fds_peak"), "-57");
    ck_assert_str_eq(json_str(json_at(checks, 2), "status"), "not_checked");
    ck_assert_int_eq(json_get(json_at(checks, 2), "ok")->type, TS_JSON_NULL);

    check_json_fail_and_skip(fail, skip);

    ts_json_free(root);
    free(doc);
    unlink(path);
    run_report_free(&rep);
}
END_TEST

/* One scenario the harness could not exercise: a group of 20 that got 404 (statuses, bytes,
 * first bytes with escapes), as each writer shows it. */
static void build_error_report(struct run_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    rep->seed = 42;
    rep->nscenarios = 3;
    rep->scenarios = calloc(3, sizeof(*rep->scenarios));
    ck_assert_ptr_nonnull(rep->scenarios);
    struct scenario_result *pass = &rep->scenarios[0];
    snprintf(pass->name, sizeof(pass->name), "half-close");
    pass->verdict = VERDICT_PASS;
    struct scenario_result *r = &rep->scenarios[1];
    snprintf(r->name, sizeof(r->name), "zero-window");
    r->verdict = VERDICT_ERROR;
    r->duration_s = 1.5;
    snprintf(r->reason, sizeof(r->reason),
             "group stalled reached its fault (never-read) in 0 of 20 clients: GET "
             "/bytes/16777216 answered 404 for 20 of 20 clients: give --large-path <&> a "
             "resource the server has");
    add_check(r, "fds", CHECK_OK, "fds: 5 before, peak 25, 5 after");
    r->ngroups = 1;
    struct group_evidence *g = &r->groups[0];
    snprintf(g->name, sizeof(g->name), "stalled");
    snprintf(g->fault, sizeof(g->fault), "never-read");
    snprintf(g->criterion, sizeof(g->criterion), "a 2xx response waiting unread");
    g->planned = g->started = g->connected = g->request_sent = 20;
    g->statuses[0] = (struct status_count){.status = 404, .clients = 18};
    g->statuses[1] = (struct status_count){.status = 0, .clients = 2};
    g->nstatuses = 2;
    g->bytes_max = 7;
    result_escape_bytes("HTTP/1.1 404 Not Found\r\n\x01", 25, g->first_bytes,
                        sizeof(g->first_bytes));
    /* a failure stands whatever the evidence; the group that missed its fault is shown */
    struct scenario_result *f = &rep->scenarios[2];
    snprintf(f->name, sizeof(f->name), "crash");
    f->verdict = VERDICT_FAIL;
    add_check(f, "alive", CHECK_FAILED, "alive: target killed by signal 11");
    f->ngroups = 2;
    snprintf(f->groups[0].name, sizeof(f->groups[0].name), "hit");
    snprintf(f->groups[1].name, sizeof(f->groups[1].name), "missed");
    f->groups[0].planned = f->groups[0].reached = 4;
    f->groups[1].planned = 4;
    f->groups[1].reached = 1;
}

START_TEST(test_error_verdict)
{
    struct run_report rep;
    char path[256], err[256] = "";
    build_error_report(&rep);
    ck_assert_str_eq(rep.scenarios[1].groups[0].first_bytes, "HTTP/1.1 404 Not Found\\r\\n\\x01");
    ck_assert_str_eq(verdict_name(VERDICT_ERROR), "error");

    /* human: ERROR with the cause and the fix, then the group's evidence, without -v */
    char *text = print_to_string(print_all, &rep, false, false);
    ck_assert_ptr_nonnull(strstr(text, "\nERROR  zero-window            1.5s  group stalled "
                                       "reached its fault (never-read) in 0 of 20 clients: GET "
                                       "/bytes/16777216 answered 404"));
    ck_assert_ptr_nonnull(strstr(text, "\n    group stalled: never-read reached by 0/20; 20 "
                                       "started, 20 connected, 20 sent; status 404 x18, 0 x2; "
                                       "read 0..7 B (median 0)\n"));
    ck_assert_ptr_null(strstr(text, "group half-close")); /* a pass shows none without -v */
    ck_assert_ptr_nonnull(strstr(text, "signal 11\n    group missed:  reached by 1/4;"));
    ck_assert_ptr_null(strstr(text, "group hit:"));
    free(text);
    /* totals: the fixed words first, errors appended */
    text = print_to_string(print_totals, &rep, false, false);
    ck_assert_str_eq(text, "connfault: 1 passed, 1 failed, 0 skipped, 1 errored\n"
                           "seed 42, 0.0s\n");
    free(text);

    /* JUnit: an <error> with the reason as its message, errors="1" */
    snprintf(path, sizeof(path), "%s/error.xml", test_dir);
    ck_assert_int_eq(report_write_junit(path, &rep, err, sizeof(err)), 0);
    char *doc = read_whole_file(path);
    struct xml_stats st;
    xml_check(doc, &st);
    ck_assert_int_eq(st.failures, 1);
    ck_assert_ptr_nonnull(strstr(doc, "tests=\"3\" failures=\"1\" errors=\"1\" skipped=\"0\""));
    ck_assert_ptr_nonnull(strstr(doc, "group hit:  reached by 4/4;")); /* in the failure body */
    ck_assert_ptr_nonnull(strstr(doc, "<error type=\"connfault\" message=\"group stalled "));
    ck_assert_ptr_nonnull(strstr(doc, "give --large-path &lt;&amp;&gt; a resource"));
    ck_assert_ptr_nonnull(strstr(doc, "  first bytes: HTTP/1.1 404 Not Found\\r\\n\\x01\n"));
    free(doc);
    unlink(path);

    /* JSON: "error" and the group object with its numbers */
    snprintf(path, sizeof(path), "%s/error.json", test_dir);
    ck_assert_int_eq(report_write_json(path, &rep, err, sizeof(err)), 0);
    doc = read_whole_file(path);
    struct ts_json *root = json_parse(doc);
    const struct ts_json *r = json_at(json_get(root, "scenarios"), 1);
    ck_assert_str_eq(json_str(r, "verdict"), "error");
    const struct ts_json *g = json_at(json_get(r, "groups"), 0);
    ck_assert_str_eq(json_str(g, "name"), "stalled");
    ck_assert_str_eq(json_str(g, "fault"), "never-read");
    ck_assert_str_eq(json_str(g, "criterion"), "a 2xx response waiting unread");
    ck_assert_str_eq(json_num(g, "planned"), "20");
    ck_assert_str_eq(json_num(g, "reached"), "0");
    ck_assert_str_eq(json_num(g, "request_sent"), "20");
    ck_assert_str_eq(json_num(json_get(g, "statuses"), "404"), "18");
    ck_assert_str_eq(json_num(json_get(g, "statuses"), "not_http"), "2");
    ck_assert_str_eq(json_num(json_get(g, "bytes_read"), "max"), "7");
    ck_assert_str_eq(json_str(g, "first_bytes"), "HTTP/1.1 404 Not Found\\r\\n\\x01");
    ck_assert_uint_eq(json_get(json_at(json_get(root, "scenarios"), 0), "groups")->n, 0);
    ts_json_free(root);
    free(doc);
    unlink(path);
    run_report_free(&rep);
}
END_TEST

/* An error with no group (a run's set-up error, an interrupt before any client) still says why
 * in the <error> body, not only in its message attribute: some readers show only the body. */
START_TEST(test_error_without_groups_has_its_reason_in_the_body)
{
    struct run_report rep = {.seed = 1, .nscenarios = 1};
    rep.scenarios = ts_nonnull(calloc(1, sizeof(*rep.scenarios)));
    snprintf(rep.scenarios[0].name, sizeof(rep.scenarios[0].name), "set-up");
    rep.scenarios[0].verdict = VERDICT_ERROR;
    snprintf(rep.scenarios[0].reason, sizeof(rep.scenarios[0].reason),
             "set-up error: port 1 is held by pid 2 (x<y)");
    char path[256], err[256] = "";
    snprintf(path, sizeof(path), "%s/setup.xml", test_dir);
    ck_assert_int_eq(report_write_junit(path, &rep, err, sizeof(err)), 0);
    char *doc = read_whole_file(path);
    ck_assert_ptr_nonnull(strstr(doc, "tests=\"1\" failures=\"0\" errors=\"1\""));
    ck_assert_ptr_nonnull(strstr(doc, "message=\"set-up error: port 1 is held by pid 2 "
                                      "(x&lt;y)\">set-up error: port 1 is held by pid 2 (x&lt;y)\n"
                                      "</error>"));
    free(doc);
    unlink(path);
    run_report_free(&rep);
}
END_TEST

/* Escaped bytes are cut with "..." and never overflow. */
START_TEST(test_escape_bytes_cut)
{
    char out[12];
    result_escape_bytes("abcdefghijklmnop", 16, out, sizeof(out));
    ck_assert_str_eq(out, "abcdefgh...");
    result_escape_bytes("\x00\xff\t'", 4, out, sizeof(out));
    ck_assert_str_eq(out, "\\x00\\xff...");
    result_escape_bytes("ab", 2, out, 3);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_empty_report_files)
{
    struct run_report rep = {.seed = 1, .port = 1};
    char path[256], err[256];
    snprintf(path, sizeof(path), "%s/empty.json", test_dir);
    ck_assert_int_eq(report_write_json(path, &rep, err, sizeof(err)), 0);
    char *doc = read_whole_file(path);
    struct ts_json *root = json_parse(doc);
    ck_assert_uint_eq(json_get(root, "scenarios")->n, 0);
    ts_json_free(root);
    free(doc);
    unlink(path);

    snprintf(path, sizeof(path), "%s/empty.xml", test_dir);
    ck_assert_int_eq(report_write_junit(path, &rep, err, sizeof(err)), 0);
    doc = read_whole_file(path);
    struct xml_stats st;
    xml_check(doc, &st);
    ck_assert_int_eq(st.testcases, 0);
    free(doc);
    unlink(path);
}
END_TEST

START_TEST(test_write_error)
{
    struct run_report rep = {.seed = 1};
    char path[256], err[512] = "";
    snprintf(path, sizeof(path), "%s/no-such-dir/report.json", test_dir);
    ck_assert_int_eq(report_write_json(path, &rep, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "no-such-dir/report.json.tmp: No such file or directory"));
    ck_assert_int_eq(report_write_junit(path, &rep, err, sizeof(err)), -ENOENT);

    /* the target is a directory: the rename fails and the temporary file is removed */
    char tmp[300];
    snprintf(path, sizeof(path), "%s/adir", test_dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    char inner[300];
    snprintf(inner, sizeof(inner), "%s/x", path);
    FILE *f = fopen(inner, "w"); /* a non-empty directory cannot be replaced */
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_lt(report_write_json(path, &rep, err, sizeof(err)), 0);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    ck_assert(!file_exists(tmp));
    unlink(inner);
    rmdir(path);
}
END_TEST

START_TEST(test_fields_and_names)
{
    struct check_result c;
    memset(&c, 0, sizeof(c));
    for (int i = 0; i < REPORT_MAX_FIELDS + 6; i++)
        check_add_int(&c, "k", i);
    ck_assert_uint_eq(c.nfields, REPORT_MAX_FIELDS);
    ck_assert_int_eq(c.fields[REPORT_MAX_FIELDS - 1].i, REPORT_MAX_FIELDS - 1);

    memset(&c, 0, sizeof(c));
    check_add_str(&c, "a_key_that_is_much_longer_than_thirty_one_characters", "v");
    ck_assert_uint_eq(strlen(c.fields[0].key), sizeof(c.fields[0].key) - 1);
    check_add_str(&c, "null", NULL);
    ck_assert_str_eq(c.fields[1].s, "");
    check_add_double(&c, "d", 2.5);
    ck_assert_int_eq(c.fields[2].type, FIELD_DOUBLE);

    ck_assert_str_eq(verdict_name(VERDICT_PASS), "pass");
    ck_assert_str_eq(verdict_name(VERDICT_FAIL), "fail");
    ck_assert_str_eq(verdict_name(VERDICT_SKIP), "skip");
    run_report_free(NULL);
}
END_TEST

/* The JSON checker the tests above rely on must say no to what is not JSON. */
static const struct {
    const char *doc, *error;
} bad_json[] = {
    {"{\"a\":1,\"a\":2}", "offset 7: key twice"},
    {"[1,]", "offset 3: bad value"},
    {"01", "offset 1: trailing text"},
    {"\"\\ud800\"", "offset 2: lone surrogate"},
    {"\"a\x01\"", "offset 2: raw control character"},
    {"\"a\xff\"", "offset 2: invalid UTF-8"},
    {"\"abc", "offset 4: unterminated string"},
    {"{\"a\" 1}", "offset 5: expected ':'"},
    {"[1 2]", "offset 3: expected ',' or ']'"},
    {"1.", "offset 0: bad fraction"},
    {"", "offset 0: bad value"},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
     "offset 32: nested too deep"},
};

START_TEST(test_json_checker_reads_values)
{
    char error[256];
    struct ts_json *root;
    root = ts_json_parse(" {\"k\": [true, null, -1.5e3, \"\\u00e9\"]} ", error, sizeof(error));
    ck_assert_msg(root != NULL, "%s", error);
    const struct ts_json *k = ts_json_get(root, "k");
    ck_assert_uint_eq(ts_json_count(k), 4);
    ck_assert_int_eq(ts_json_at(k, 0)->boolean, true);
    ck_assert_int_eq(ts_json_type(ts_json_at(k, 1)), TS_JSON_NULL);
    ck_assert_str_eq(ts_json_at(k, 2)->text, "-1.5e3");
    ck_assert_str_eq(ts_json_at(k, 3)->text, "\xc3\xa9");
    ck_assert_int_eq(ts_json_type(ts_json_at(k, 4)), TS_JSON_MISSING);
    ts_json_free(root);
}
END_TEST

START_TEST(test_json_checker_rejects_invalid_documents)
{
    char error[256];
    struct ts_json *root = ts_json_parse(bad_json[_i].doc, error, sizeof(error));
    ts_json_free(root);
    /* The message must begin with the expected offset and words. */
    ck_assert_msg(root == NULL && strstr(error, bad_json[_i].error) == error,
                  "%s: expected \"%s...\", got %s", bad_json[_i].doc, bad_json[_i].error,
                  root ? "a tree" : error);
}
END_TEST

/* ---- TAP ---- */

/* build_report() with a name and a skip reason holding '#', '\' and a newline: unescaped, the
 * name's "# SKIP" would make the test line a skip. */
static void build_tap_report(struct run_report *rep)
{
    build_report(rep);
    snprintf(rep->scenarios[0].name, sizeof(rep->scenarios[0].name), "a # SKIP b\\c\nd");
    snprintf(rep->scenarios[2].reason, sizeof(rep->scenarios[2].reason),
             "needs root # really\nsee docs");
}

static char *write_tap(const struct run_report *rep, const char *name, char *path, size_t cap)
{
    char err[256] = "";
    snprintf(path, cap, "%s/%s", test_dir, name);
    ck_assert_int_eq(report_write_tap(path, rep, err, sizeof(err)), 0);
    return read_whole_file(path);
}

START_TEST(test_tap)
{
    struct run_report rep;
    char path[256];
    build_tap_report(&rep);
    char *doc = write_tap(&rep, "report.tap", path, sizeof(path));
    /* the plan first; '#' and '\' escaped and the newline gone from the description */
    ck_assert_ptr_eq(strstr(doc, "TAP version 13\n1..3\nok 1 - a \\# SKIP b\\\\c?d\nnot ok 2 - "
                                 "fail<&>\"'\n  ---\n  message: \"fds 5 -> 40 q\\\"uo'te"),
                     doc);
    /* the failed checks with their numbers, YAML-escaped; a check that passed is not there */
    ck_assert_ptr_nonnull(strstr(doc, " \\x01 ctl \\x1b[31m bad\xef\xbf\xbd\xef\xbf\xbd utf8 "
                                      "\xc3\xa9 \\\\ end; cpu 99% while idle\"\n"
                                      "  severity: fail\n  duration_s: 2.000\n  failed:\n"
                                      "    - check: \"fds\"\n      summary: \"fds 5 -> 40 "));
    ck_assert_ptr_nonnull(strstr(doc, "      data:\n        \"nan\": ~\n        \"inf\": ~\n"
                                      "        \"half\": 0.5\n        \"text\": \"q\\\"uo"));
    ck_assert_ptr_nonnull(strstr(doc, "        \"ok\": 1\n    - check: \"cpu\"\n      summary: "
                                      "\"cpu 99% while idle\"\n  reason: \"fds leaked\"\n"
                                      "  diagnosis: \"line one\\n  RST after FIN q"));
    ck_assert_ptr_null(strstr(doc, "alive: pid 42"));
    ck_assert_ptr_nonnull(strstr(doc, "\\nline three\"\n  capture: \"/tmp/cap.pcap\"\n  ...\n"
                                      "ok 3 - drop # SKIP needs root # really?see docs\n"
                                      "# connfault: 1 passed, 1 failed, 1 skipped, 0 errored; "
                                      "seed 18446744073709551615\n"));
    free(doc);
    run_report_free(&rep);

    /* an error is a "not ok" whose severity says so, with the cause and the groups' evidence */
    build_error_report(&rep);
    doc = write_tap(&rep, "error.tap", path, sizeof(path));
    ck_assert_ptr_nonnull(strstr(doc, "1..3\nok 1 - half-close\nnot ok 2 - zero-window\n  ---\n"
                                      "  message: \"group stalled reached its fault"));
    ck_assert_ptr_nonnull(strstr(doc, "give --large-path <&> a resource the server has\"\n"
                                      "  severity: error\n  duration_s: 1.500\n  reason: "));
    ck_assert_ptr_nonnull(strstr(doc, "  groups:\n    - \"group stalled: never-read reached by "
                                      "0/20; 20 started, 20 connected, 20 sent; status 404 "
                                      "x18, 0 x2; read 0..7 B (median 0)\"\n  ...\nnot ok 3 - "
                                      "crash\n"));
    ck_assert_ptr_nonnull(strstr(doc, "# connfault: 1 passed, 1 failed, 0 skipped, 1 errored"));
    free(doc);
    run_report_free(&rep);

    struct run_report empty = {.seed = 1};
    doc = write_tap(&empty, "empty.tap", path, sizeof(path));
    ck_assert_str_eq(doc, "TAP version 13\n1..0\n# connfault: 0 passed, 0 failed, 0 skipped, 0 "
                          "errored; seed 1\n");
    free(doc);
    char err[256] = "";
    snprintf(path, sizeof(path), "%s/no-such-dir/report.tap", test_dir);
    ck_assert_int_eq(report_write_tap(path, &empty, err, sizeof(err)), -ENOENT);
}
END_TEST

/* Perl's own TAP parser (TAP::Parser, what prove uses) reading a file back: every test line,
 * every YAML block's message, severity and failed checks, and the parse errors. */
static const char tap_dump_pl[] =
    "use strict; use warnings; use TAP::Parser;\n"
    "open(my $f, '<', $ARGV[0]) or die \"$ARGV[0]: $!\"; local $/; my $t = <$f>;\n"
    "my $p = TAP::Parser->new({tap => $t});\n"
    "while (my $r = $p->next) {\n"
    "  if ($r->is_test) { printf \"test %d %s|%s|%s|%s\\n\", $r->number, $r->ok,\n"
    "      $r->description, $r->directive, $r->explanation }\n"
    "  elsif ($r->is_yaml) { my $d = $r->data;\n"
    "    print \"yaml message=$d->{message}|severity=$d->{severity}\\n\";\n"
    "    for my $c (@{$d->{failed} || []}) { my $n = $c->{data} || {};\n"
    "      print \"failed $c->{check}|$c->{summary}|\",\n"
    "        join(',', map { \"$_=\" . ($n->{$_} // '~') } sort keys %$n), \"\\n\" } }\n"
    "  elsif ($r->is_unknown) { print 'unknown ', $r->as_string, \"\\n\" } }\n"
    "printf \"plan %s version %s\\n\", $p->plan, $p->version;\n"
    "print \"parse error: $_\\n\" for $p->parse_errors;\n";

static bool have_prove(void)
{
    return system("command -v prove >/dev/null 2>&1 && perl -MTAP::Parser -e1 2>/dev/null") == 0;
}

static void run_tool(struct ts_proc *p, const char *const *argv)
{
    struct ts_run_opts opts = {.timeout_ms = 30000};
    ck_assert_int_eq(ts_run(p, argv, &opts), 0);
}

START_TEST(test_tap_read_by_prove)
{
    if (!have_prove()) {
        printf("test_tap_read_by_prove: prove (perl's TAP::Harness) not installed, skipped\n");
        return;
    }
    struct run_report rep;
    char path[256], script[256];
    build_tap_report(&rep);
    free(write_tap(&rep, "report.tap", path, sizeof(path)));
    snprintf(script, sizeof(script), "%s/dump.pl", test_dir);
    ck_assert_int_eq(ts_write_file(script, tap_dump_pl), 0);
    struct ts_proc p;
    run_tool(&p, TS_ARGV("perl", script, path));
    ck_assert_msg(p.status == 0, "perl: %d\n%s%s", p.status, p.out, p.err);
    ck_assert_str_eq(p.out, "test 1 ok|- a \\# SKIP b\\\\c?d||\n"
                            "test 2 not ok|- fail<&>\"'||\n"
                            "yaml message=fds 5 -> 40 " NASTY_DECODED "; cpu 99% while idle|"
                            "severity=fail\n"
                            "failed fds|fds 5 -> 40 " NASTY_DECODED "|half=0.5,inf=~,nan=~,ok=1,"
                            "text=" NASTY_DECODED "\n"
                            "failed cpu|cpu 99% while idle|\n"
                            "test 3 ok|- drop|SKIP|needs root # really?see docs\n"
                            "plan 1..3 version 13\n");
    ts_proc_free(&p);

    /* prove itself: a failure is reported as one, and nothing is a parse error */
    run_tool(&p, TS_ARGV("prove", "-e", "cat", path));
    ck_assert_msg(p.status == 1, "prove: %d\n%s%s", p.status, p.out, p.err);
    ck_assert_msg(strstr(p.out, "Failed 1/3 subtests") && !strstr(p.out, "Parse errors"),
                  "prove:\n%s%s", p.out, p.err);
    ts_proc_free(&p);
    rep.scenarios[1].verdict = VERDICT_PASS;
    free(write_tap(&rep, "report.tap", path, sizeof(path)));
    run_tool(&p, TS_ARGV("prove", "-e", "cat", path));
    ck_assert_msg(p.status == 0 && strstr(p.out, "All tests successful"), "prove: %d\n%s%s",
                  p.status, p.out, p.err);
    ts_proc_free(&p);
    unlink(script);
    unlink(path);
    run_report_free(&rep);
}
END_TEST

/* fd-exhaustion's fact (run/exhaustion.h): which of out of fds and stopped accepting, on the
 * PASS line; under a FAIL when the fault did not happen; in every file. */
static void build_exhaustion_report(struct run_report *rep)
{
    *rep = (struct run_report){.seed = 7, .nscenarios = 3};
    rep->scenarios = ts_nonnull(calloc(3, sizeof(*rep->scenarios)));
    const enum verdict verdicts[] = {VERDICT_PASS, VERDICT_ERROR, VERDICT_FAIL};
    const enum exhaustion_how hows[] = {EXHAUSTION_OUT_OF_FDS, EXHAUSTION_NOT_REACHED,
                                        EXHAUSTION_NOT_REACHED};
    const char *const summaries[] = {"fds peaked at 256 of 256", "fds peaked at 75 of 256 <&>",
                                     "no process held more than 5"};
    for (size_t i = 0; i < 3; i++) {
        struct scenario_result *r = &rep->scenarios[i];
        snprintf(r->name, sizeof(r->name), "exhaust-%zu", i);
        r->verdict = verdicts[i];
        r->exhaustion = (struct exhaustion_evidence){
            .how = hows[i], .fds_peak = 256, .fds_limit = 256, .backlog = 5, .plateau_s = 1.5};
        snprintf(r->exhaustion.summary, sizeof(r->exhaustion.summary), "%s", summaries[i]);
    }
    snprintf(rep->scenarios[1].reason, sizeof(rep->scenarios[1].reason),
             "not exhausted (rlimit_nofile = 256): fds peaked at 75 of 256 <&>");
    add_check(&rep->scenarios[2], "fds", CHECK_FAILED, "fds: 1 socket leaked");
    snprintf(rep->scenarios[2].reason, sizeof(rep->scenarios[2].reason), "fds");
}

START_TEST(test_exhaustion_fact)
{
    struct run_report rep;
    char path[256], err[256] = "";
    build_exhaustion_report(&rep);
    char *text = print_to_string(print_all, &rep, false, false);
    ck_assert_msg(strstr(text, "; exhausted: fds peaked at 256 of 256\n") &&
                      strstr(text, "ERROR  exhaust-1              0.0s  not exhausted "
                                   "(rlimit_nofile = 256): fds peaked at 75") &&
                      strstr(text, "1 socket leaked\n    not exhausted: no process held"),
                  "%s", text);
    free(text);
    snprintf(path, sizeof(path), "%s/exhaustion.json", test_dir);
    ck_assert_int_eq(report_write_json(path, &rep, err, sizeof(err)), 0);
    char *doc = read_whole_file(path);
    struct ts_json *root = json_parse(doc);
    const struct ts_json *x = json_get(json_at(json_get(root, "scenarios"), 0), "exhaustion");
    ck_assert_str_eq(json_str(x, "how"), "out-of-fds");
    ck_assert_str_eq(json_num(x, "fds_limit"), "256");
    ck_assert_str_eq(json_num(x, "plateau_s"), "1.5");
    ck_assert_int_eq(ts_json_bool(x, "queue_full"), 0);
    x = json_get(json_at(json_get(root, "scenarios"), 1), "exhaustion");
    ck_assert_str_eq(json_str(x, "how"), "not-reached");
    ts_json_free(root);
    free(doc);
    snprintf(path, sizeof(path), "%s/exhaustion.xml", test_dir);
    ck_assert_int_eq(report_write_junit(path, &rep, err, sizeof(err)), 0);
    doc = read_whole_file(path);
    ck_assert_ptr_nonnull(strstr(doc, "exhausted: fds peaked at 256 of 256\n</system-out>"));
    ck_assert_ptr_nonnull(strstr(doc, "not exhausted: fds peaked at 75 of 256 &lt;&amp;&gt;"));
    free(doc);
    doc = write_tap(&rep, "exhaustion.tap", path, sizeof(path));
    ck_assert_ptr_nonnull(strstr(doc, "  exhaustion: \"no process held more than 5\"\n"));
    free(doc);
    run_report_free(&rep);
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("human");
    tcase_add_test(tc, test_human_lines);
    tcase_add_test(tc, test_totals_line);
    tcase_add_test(tc, test_escape_bytes_cut);
    tcase_add_test(tc, test_fields_and_names);
    tcase_add_test(tc, test_json_checker_reads_values);
    tcase_add_loop_test(tc, test_json_checker_rejects_invalid_documents, 0,
                        (int)(sizeof(bad_json) / sizeof(bad_json[0])));
    suite_add_tcase(s, tc);
    tc = tcase_create("files");
    /* perl and prove run three times in test_tap_read_by_prove: over Check's 4 s default
     * when both cores are busy (seen in ctest -j2); each run has run_tool's own deadline. */
    tcase_set_timeout(tc, 100);
    tcase_add_unchecked_fixture(tc, temp_dir_create, temp_dir_remove);
    tcase_add_test(tc, test_junit);
    tcase_add_test(tc, test_json);
    tcase_add_test(tc, test_error_verdict);
    tcase_add_test(tc, test_error_without_groups_has_its_reason_in_the_body);
    tcase_add_test(tc, test_exhaustion_fact);
    tcase_add_test(tc, test_empty_report_files);
    tcase_add_test(tc, test_write_error);
    tcase_add_test(tc, test_tap);
    tcase_add_test(tc, test_tap_read_by_prove);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ts_run_suite(report_suite());
}
