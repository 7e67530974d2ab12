/* harness/REPORTS.md is true to the program: connfault is run against the reference server
 * (a pass with the responses check, a skip, a failure with a diagnosis, a target killed, a
 * scenario in error, a set-up error) and
 *   - every key of the JSON reports is in REPORTS.md's key table, and every key the table
 *     names was seen in them or, when these runs cannot make it (a capture's, a file cache's),
 *     is written by the program's sources (a literal "KEY");
 *   - the JSON example is valid JSON whose keys are all in the table;
 *   - the JUnit example has the same elements, attributes and properties as the real files;
 *   - every key of the TAP YAML blocks is named in the TAP section. */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define DOC_PATH CONNFAULT_SOURCE_DIR "/harness/REPORTS.md"
#define RUN_MS   120000
#define NRUNS    5
#define MAX_KEYS 512

/* A set of strings (small: linear look-ups). */
struct keys {
    char *k[MAX_KEYS];
    size_t n;
};

static bool keys_has(const struct keys *s, const char *k)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->k[i], k) == 0)
            return true;
    return false;
}

static void keys_add(struct keys *s, const char *k)
{
    if (!keys_has(s, k)) {
        ck_assert_uint_lt(s->n, MAX_KEYS);
        s->k[s->n++] = ts_nonnull(strdup(k));
    }
}

static void keys_free(struct keys *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->k[i]);
    s->n = 0;
}

static char dir[64];
static char *json_text[NRUNS], *junit_text[NRUNS], *tap_text[NRUNS];
static char *doc;

/* The text between the line starting with from and the next one starting with to. */
static char *doc_section(const char *from, const char *to)
{
    const char *a = strstr(doc, from);
    ck_assert_msg(a != NULL, "REPORTS.md has no '%s'", from);
    const char *b = strstr(a + 1, to);
    size_t len = b ? (size_t)(b - a) : strlen(a);
    return ts_nonnull(strndup(a, len));
}

/* ---- the runs ------------------------------------------------------------------------- */

static const char missing_ini[] = "[scenario]\ndescription = a path the server lacks\n"
                                  "duration = 1s\n[clients readers]\ncount = 10\n"
                                  "concurrency = 5\nrequest = GET /missing/large\n"
                                  "read = 1000\nend = close\n";

static void run_one(int i, const char *const *args)
{
    char json[128], junit[128], tap[128];
    snprintf(json, sizeof(json), "%s/%d.json", dir, i);
    snprintf(junit, sizeof(junit), "%s/%d.xml", dir, i);
    snprintf(tap, sizeof(tap), "%s/%d.tap", dir, i);
    const char *argv[32] = {CONNFAULT_BIN, "run",     "--no-capture", "--seed", "9", "--json",
                            json,          "--junit", junit,          "--tap",  tap};
    size_t argc = 11;
    for (size_t j = 0; args[j]; j++)
        argv[argc++] = args[j];
    struct ts_proc p;
    const struct ts_run_opts opts = {.timeout_ms = RUN_MS, .merge_stderr = true};
    ck_assert_int_eq(ts_run(&p, argv, &opts), 0);
    ck_assert_msg(!p.timed_out, "run %d did not end:\n%s", i, p.out);
    json_text[i] = ts_slurp(json, NULL);
    junit_text[i] = ts_slurp(junit, NULL);
    tap_text[i] = ts_slurp(tap, NULL);
    ck_assert_msg(json_text[i] && junit_text[i] && tap_text[i], "run %d: a report is missing:\n%s",
                  i, p.out);
    ts_proc_free(&p);
}

static void runs_make(void)
{
    char ini[128];
    ck_assert_int_eq(ts_tmpdir_create(dir, sizeof(dir), "connfault-reports-doc"), 0);
    snprintf(ini, sizeof(ini), "%s/missing.ini", dir);
    ck_assert_int_eq(ts_write_file(ini, missing_ini), 0);
    doc = ts_slurp(DOC_PATH, NULL);
    ck_assert_ptr_nonnull(doc);
    /* pass (with the responses check), skip */
    run_one(0, TS_ARGV("--no-sandbox", "--grace", "1", "connect-close", "half-close", "drop-idle"));
    /* fail: accepting (with a diagnosis) and fds held by live clients */
    run_one(1, TS_ARGV("--bug", "blocking", "--grace", "1", "slowloris"));
    /* fail: the target killed (alive, with its last output) */
    run_one(2, TS_ARGV("--bug", "sigpipe", "rst-mid-response"));
    /* error: a path the server does not have */
    run_one(3, TS_ARGV("--grace", "1", ini));
    /* a set-up error */
    run_one(4, TS_ARGV("--target-cmd", "echo no server here on {port}; exit 3", "connect-close"));
}

static void runs_free(void)
{
    for (int i = 0; i < NRUNS; i++) {
        free(json_text[i]);
        free(junit_text[i]);
        free(tap_text[i]);
    }
    free(doc);
    ts_tmpdir_remove(dir);
}

/* ---- JSON ----------------------------------------------------------------------------- */

/* A check's members: name, status, ok, summary and not_checked are every check's
 * (checks[].KEY); its numbers are named by the check (checks[fds].peak), a TCP state of
 * sockets as STATE. */
static void walk_check(const struct ts_json *c, const char *path, struct keys *out)
{
    static const char *const generic[] = {"name", "status", "ok", "summary", "not_checked"};
    const char *name = ts_json_str(c, "name");
    for (size_t i = 0; i < c->n; i++) {
        const char *k = c->keys[i];
        bool common = false;
        for (size_t j = 0; j < sizeof(generic) / sizeof(generic[0]); j++)
            common |= strcmp(k, generic[j]) == 0;
        bool state = name && strcmp(name, "sockets") == 0 && isupper((unsigned char)k[0]);
        char p[256];
        if (common)
            snprintf(p, sizeof(p), "%s[].%s", path, k);
        else
            snprintf(p, sizeof(p), "%s[%s].%s", path, name ? name : "?", state ? "STATE" : k);
        keys_add(out, p);
    }
}

/* Every key path of v: objects by name, arrays as [], the open-ended objects (status codes,
 * a diagnosis's detail) as one key. */
static void walk(const struct ts_json *v, const char *path, struct keys *out)
{
    static const char *const leaves[] = {"scenarios[].groups[].statuses",
                                         "scenarios[].diagnosis.detail"};
    bool leaf = v->type != TS_JSON_OBJECT && v->type != TS_JSON_ARRAY;
    for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++)
        leaf |= strcmp(path, leaves[i]) == 0;
    if (leaf) {
        keys_add(out, path);
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        char p[256];
        if (v->type == TS_JSON_ARRAY && strcmp(path, "scenarios[].checks") == 0) {
            walk_check(v->items[i], path, out);
            continue;
        }
        if (v->type == TS_JSON_ARRAY)
            snprintf(p, sizeof(p), "%s[]", path);
        else
            snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", v->keys[i]);
        walk(v->items[i], p, out);
    }
}

static void walk_text(const char *text, struct keys *out)
{
    char error[128];
    struct ts_json *root = ts_json_parse(text, error, sizeof(error));
    ck_assert_msg(root != NULL, "not JSON (%s):\n%s", error, text);
    walk(root, "", out);
    ts_json_free(root);
}

/* The keys of one row's first cell: `a.b`, `.c` is a.b and a.c. */
static void doc_row_keys(const char *cell, size_t len, struct keys *out)
{
    char parent[256] = "", token[256];
    for (const char *p = memchr(cell, '`', len); p && p < cell + len;) {
        const char *end = memchr(p + 1, '`', (size_t)(cell + len - p - 1));
        if (!end)
            break;
        snprintf(token, sizeof(token), "%.*s", (int)(end - p - 1), p + 1);
        char full[512];
        if (token[0] == '.') {
            snprintf(full, sizeof(full), "%s%s", parent, token);
        } else {
            snprintf(full, sizeof(full), "%s", token);
            char *dot = strrchr(token, '.');
            snprintf(parent, sizeof(parent), "%.*s", dot ? (int)(dot - token) : 0, token);
        }
        keys_add(out, full);
        p = memchr(end + 1, '`', (size_t)(cell + len - end - 1));
    }
}

/* The key table of the JSON section: the first cell of every row that starts with a key. */
static void doc_json_keys(struct keys *out)
{
    char *section = doc_section("## JSON", "## TAP");
    for (const char *line = section; line && *line; line = strchr(line, '\n')) {
        line += *line == '\n';
        if (strncmp(line, "| `", 3) != 0)
            continue;
        const char *cell_end = strstr(line + 1, " |");
        ck_assert_ptr_nonnull(cell_end);
        doc_row_keys(line + 1, (size_t)(cell_end - line - 1), out);
    }
    free(section);
    ck_assert_uint_gt(out->n, 30);
}

/* Whether the program's sources write key (its last part, quoted). */
static bool sources_write(const char *key)
{
    static const char *const files[] = {"/harness/run/checks.c", "/harness/run/check_responses.c",
                                        "/harness/report/report.c"};
    const char *last = strrchr(key, '.') ? strrchr(key, '.') + 1 : key;
    char quoted[96], escaped[96]; /* "KEY" in a call, \"KEY\" in a format string */
    snprintf(quoted, sizeof(quoted), "\"%s\"", last);
    snprintf(escaped, sizeof(escaped), "\\\"%s\\\"", last);
    bool found = false;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && !found; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s%s", CONNFAULT_SOURCE_DIR, files[i]);
        char *text = ts_nonnull(ts_slurp(path, NULL));
        found = strstr(text, quoted) != NULL || strstr(text, escaped) != NULL;
        free(text);
    }
    return found;
}

START_TEST(every_json_key_is_documented_and_every_documented_key_is_real)
{
    struct keys real = {0}, documented = {0};
    for (int i = 0; i < NRUNS; i++)
        walk_text(json_text[i], &real);
    doc_json_keys(&documented);
    for (size_t i = 0; i < real.n; i++)
        ck_assert_msg(keys_has(&documented, real.k[i]),
                      "the JSON has %s, which REPORTS.md's key table does not name", real.k[i]);
    for (size_t i = 0; i < documented.n; i++) {
        if (keys_has(&real, documented.k[i]))
            continue;
        ck_assert_msg(sources_write(documented.k[i]),
                      "REPORTS.md names %s, which neither these runs nor the sources write",
                      documented.k[i]);
        printf("reports_doc: %s is documented, not made by these runs, written by the sources\n",
               documented.k[i]);
    }
    keys_free(&real);
    keys_free(&documented);
}
END_TEST

/* The example is JSON a reader can paste, and uses only documented keys. */
START_TEST(the_json_example_parses_and_uses_documented_keys)
{
    char *section = doc_section("## JSON", "## TAP");
    char *start = strstr(section, "```json\n");
    ck_assert_ptr_nonnull(start);
    start += 8;
    char *end = strstr(start, "```");
    ck_assert_ptr_nonnull(end);
    *end = '\0';
    struct keys example = {0}, documented = {0};
    walk_text(start, &example);
    doc_json_keys(&documented);
    for (size_t i = 0; i < example.n; i++)
        ck_assert_msg(keys_has(&documented, example.k[i]),
                      "REPORTS.md's JSON example has %s, which its key table does not name",
                      example.k[i]);
    keys_free(&example);
    keys_free(&documented);
    free(section);
}
END_TEST

/* ---- JUnit and TAP ---------------------------------------------------------------------- */

/* Every element@attribute of an XML text, and property=NAME for each property. */
static void xml_attrs(const char *xml, struct keys *out)
{
    for (const char *p = strchr(xml, '<'); p; p = strchr(p + 1, '<')) {
        if (!isalpha((unsigned char)p[1]))
            continue;
        size_t nlen = strcspn(p + 1, " />");
        const char *a = p + 1 + nlen;
        while (*a == ' ') { /* name="value" ... (values skipped whole: they hold spaces) */
            a++;
            size_t alen = strcspn(a, "=");
            char key[128];
            snprintf(key, sizeof(key), "%.*s@%.*s", (int)nlen, p + 1, (int)alen, a);
            keys_add(out, key);
            const char *value = a + alen + 2, *q = strchr(value, '"');
            ck_assert_msg(a[alen] == '=' && a[alen + 1] == '"' && q, "bad XML at %.40s", p);
            if (strncmp(p, "<property ", 10) == 0 && strncmp(a, "name=", 5) == 0) {
                snprintf(key, sizeof(key), "property=%.*s", (int)(q - value), value);
                keys_add(out, key);
            }
            a = q + 1;
        }
    }
}

static void expect_same(const struct keys *a, const char *a_name, const struct keys *b,
                        const char *b_name)
{
    for (size_t i = 0; i < a->n; i++)
        ck_assert_msg(keys_has(b, a->k[i]), "%s has %s, %s does not", a_name, a->k[i], b_name);
}

START_TEST(the_junit_example_has_the_real_elements_and_attributes)
{
    struct keys real = {0}, example = {0};
    for (int i = 0; i < NRUNS; i++)
        xml_attrs(junit_text[i], &real);
    char *section = doc_section("## JUnit XML", "## JSON");
    char *start = strstr(section, "```xml\n");
    ck_assert_ptr_nonnull(start);
    *strstr(start + 7, "```") = '\0';
    xml_attrs(start + 7, &example);
    expect_same(&real, "the real JUnit", &example, "REPORTS.md's example");
    expect_same(&example, "REPORTS.md's JUnit example", &real, "the real files");
    ck_assert(keys_has(&real, "error@message") && keys_has(&real, "skipped@message"));
    keys_free(&real);
    keys_free(&example);
    free(section);
}
END_TEST

/* Every key of the real YAML blocks ("  message: ...", "    - check: ...") is in the TAP
 * section, as `key` or as key: in its example. */
START_TEST(every_tap_yaml_key_is_documented)
{
    char *section = doc_section("## TAP", "## A run stopped early");
    size_t seen = 0;
    for (int i = 0; i < NRUNS; i++) {
        for (const char *line = tap_text[i]; line && *line; line = strchr(line, '\n')) {
            line += *line == '\n';
            const char *k = line + strspn(line, " ");
            if (k == line || *k == '"')
                continue; /* a test line, or a number under data (the JSON's keys) */
            k += strncmp(k, "- ", 2) == 0 ? 2 : 0;
            size_t len = strspn(k, "abcdefghijklmnopqrstuvwxyz_");
            if (len == 0 || k[len] != ':')
                continue;
            char ticked[64], colon[64];
            snprintf(ticked, sizeof(ticked), "`%.*s`", (int)len, k);
            snprintf(colon, sizeof(colon), " %.*s:", (int)len, k);
            ck_assert_msg(strstr(section, ticked) || strstr(section, colon),
                          "the TAP has the key %.*s, REPORTS.md's TAP section does not", (int)len,
                          k);
            seen++;
        }
    }
    ck_assert_uint_gt(seen, 10);
    free(section);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reports doc");
    TCase *tc = tcase_create("reports doc");
    tcase_set_timeout(tc, 5 * RUN_MS / 1000);
    /* the runs are made once, by the parent: every test reads them */
    tcase_add_unchecked_fixture(tc, runs_make, runs_free);
    tcase_add_test(tc, every_json_key_is_documented_and_every_documented_key_is_real);
    tcase_add_test(tc, the_json_example_parses_and_uses_documented_keys);
    tcase_add_test(tc, the_junit_example_has_the_real_elements_and_attributes);
    tcase_add_test(tc, every_tap_yaml_key_is_documented);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
