/* The bug catalogue against its documents. The built-in scenario files' `catches` keys are the
 * one list of which scenario catches which --bug mode of connfault-server, on which check
 * (scenarios/README.md, "The bug catalogue"). This test holds everything else to it:
 * - every --bug mode `connfault-server --help` lists is caught by some scenario, and the
 *   catalogue names no mode the server lacks;
 * - README.md's scenario table names exactly the built-in scenarios, and its --bug table
 *   exactly the modes, each with exactly its "caught by" pairs;
 * - scenarios/README.md's table of built-in scenarios names exactly them;
 * - connfault(1) lists exactly the scenarios (SCENARIOS), each with the pairs it catches;
 * - connfault-server(1) lists exactly the modes (BUG MODES), each with its pairs;
 * and, from the same parser, that scenarios/README.md's key tables list exactly its keys.
 * A mismatch names the document and what is missing from it or extra in it. */
#include "builtin_catalogue.h"
#include "scenario.h"

#include <check.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#ifndef CONNFAULT_SOURCE_DIR
#define CONNFAULT_SOURCE_DIR "."
#endif
#ifndef CONNFAULT_SERVER_BIN
#define CONNFAULT_SERVER_BIN "connfault-server"
#endif

/* ---- sets of strings ---- */

#define NAMES_MAX 256

struct names {
    char *v[NAMES_MAX];
    size_t n;
};

static void names_add(struct names *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void names_add(struct names *s, const char *fmt, ...)
{
    ck_assert_uint_lt(s->n, NAMES_MAX);
    va_list ap;
    va_start(ap, fmt);
    ck_assert_int_ge(vasprintf(&s->v[s->n++], fmt, ap), 0);
    va_end(ap);
}

static void names_free(struct names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    s->n = 0;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends to msg every element of a that b lacks, after label. */
static void names_missing(const struct names *a, const struct names *b, const char *label,
                          char *msg, size_t len)
{
    for (size_t i = 0; i < a->n; i++) {
        if (bsearch(&a->v[i], b->v, b->n, sizeof(b->v[0]), compare_strings) == NULL) {
            size_t used = strlen(msg);
            snprintf(msg + used, len - used, "\n  %s: %s", label, a->v[i]);
        }
    }
}

/* The document (got) must name exactly the set of source (want); duplicates are errors. */
static void expect_same(const char *document, const char *source, struct names *got,
                        struct names *want)
{
    char msg[4096] = "";
    qsort(got->v, got->n, sizeof(got->v[0]), compare_strings);
    qsort(want->v, want->n, sizeof(want->v[0]), compare_strings);
    for (size_t i = 1; i < got->n; i++) {
        size_t used = strlen(msg);
        if (strcmp(got->v[i - 1], got->v[i]) == 0)
            snprintf(msg + used, sizeof(msg) - used, "\n  twice: %s", got->v[i]);
    }
    names_missing(want, got, "missing", msg, sizeof(msg));
    names_missing(got, want, "extra", msg, sizeof(msg));
    ck_assert_msg(msg[0] == '\0', "%s does not agree with %s:%s", document, source, msg);
    ck_assert_uint_gt(got->n, 0);
}

/* ---- the catalogue ---- */

struct catalogue_sets {
    struct names scenarios, bugs, pairs; /* pairs: "SCENARIO catches BUG:CHECK" */
    struct names keys[2];                /* the parser's keys: [scenario], [clients NAME] */
};

static struct catalogue_sets cat; /* made afresh for each test by the fixture */

static void catalogue_sets_add(const struct scenario *sc)
{
    names_add(&cat.scenarios, "%s", sc->name);
    for (size_t j = 0; j < sc->ncatches; j++) {
        const struct scenario_catch *c = &sc->catches[j];
        names_add(&cat.pairs, "%s catches %s:%s", sc->name, c->bug, c->check);
        bool seen = false;
        for (size_t k = 0; k < cat.bugs.n; k++)
            seen = seen || strcmp(cat.bugs.v[k], c->bug) == 0;
        if (!seen)
            names_add(&cat.bugs, "%s", c->bug);
    }
}

static void catalogue_load(void)
{
    struct builtin_catalogue builtin;
    char err[512];
    memset(&cat, 0, sizeof(cat));
    int rc = builtin_catalogue_load(CONNFAULT_SOURCE_DIR "/scenarios", &builtin, err, sizeof(err));
    for (size_t i = 0; i < builtin.n; i++)
        catalogue_sets_add(&builtin.sc[i]);
    builtin_catalogue_free(&builtin);
    ck_assert_msg(rc == 0, "%s", err);
    for (int clients = 0; clients < 2; clients++)
        for (size_t i = 0; scenario_key_name(clients, i) != NULL; i++)
            names_add(&cat.keys[clients], "%s", scenario_key_name(clients, i));
}

static void catalogue_unload(void)
{
    names_free(&cat.scenarios);
    names_free(&cat.bugs);
    names_free(&cat.pairs);
    names_free(&cat.keys[0]);
    names_free(&cat.keys[1]);
}

/* ---- reading documents ---- */

static char *read_document(const char *relative)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", CONNFAULT_SOURCE_DIR, relative);
    char *text = ts_slurp(path, NULL);
    ck_assert_msg(text != NULL, "%s: cannot open", path);
    return text;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* troff's "\-" is a plain '-' here. */
static void troff_plain(char *text)
{
    char *out = text;
    for (const char *in = text; *in; in++)
        if (!(in[0] == '\\' && in[1] == '-'))
            *out++ = *in;
    *out = '\0';
}

/* s without blanks and backticks, into out. */
static void bare_word(const char *s, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < outlen; i++)
        if (!isspace((unsigned char)s[i]) && s[i] != '`')
            out[n++] = s[i];
    out[n] = '\0';
}

/* "a, b ARROW check; c ARROW check2." about one fixed scenario or bug: the items before each
 * arrow are the others. Adds "SCENARIO catches BUG:CHECK" per item. */
static void parse_pairs(const char *text, const char *arrow, const char *fixed, bool fixed_is_bug,
                        struct names *out)
{
    char buf[1024], *seg_save, *item_save;
    snprintf(buf, sizeof(buf), "%s", text);
    for (char *seg = strtok_r(buf, ";", &seg_save); seg; seg = strtok_r(NULL, ";", &seg_save)) {
        char *at = strstr(seg, arrow), check[32];
        ck_assert_msg(at != NULL, "no \"%s\" in \"%s\" (%s)", arrow, seg, fixed);
        const char *c = at + strlen(arrow);
        bare_word(c, strcspn(c, ".|"), check, sizeof(check));
        *at = '\0';
        for (char *item = strtok_r(seg, ",", &item_save); item;
             item = strtok_r(NULL, ",", &item_save)) {
            char name[64];
            bare_word(item, strlen(item), name, sizeof(name));
            names_add(out, "%s catches %s:%s", fixed_is_bug ? name : fixed,
                      fixed_is_bug ? fixed : name, check);
        }
    }
}

/* Markdown table cell i (0 = the first) of row, as written. */
static void table_cell(const char *row, int i, char *out, size_t outlen)
{
    const char *s = strchr(row, '|');
    for (int k = 0; k < i && s; k++)
        s = strchr(s + 1, '|');
    const char *end = s ? strchr(s + 1, '|') : NULL;
    ck_assert_msg(end != NULL, "no cell %d in \"%s\"", i, row);
    snprintf(out, outlen, "%.*s", (int)(end - s - 1), s + 1);
}

/* The lines of text after the one starting with `from`, up to the next one starting with
 * `until` (NULL: to the end); each is handed to fn. */
static void for_each_line_in(const char *text, const char *from, const char *until,
                             void (*fn)(const char *line, void *ctx), void *ctx)
{
    bool inside = false, found = false;
    for (const char *s = text; *s != '\0';) {
        size_t len = strcspn(s, "\n");
        char line[2048];
        snprintf(line, sizeof(line), "%.*s", (int)len, s);
        s += len + (s[len] == '\n');
        if (inside && until != NULL && starts_with(line, until))
            break;
        if (inside)
            fn(line, ctx);
        if (!inside && starts_with(line, from))
            inside = found = true;
    }
    ck_assert_msg(found, "no line starting with \"%s\"", from);
}

/* ---- what each document says ---- */

struct doc_sets {
    struct names names, pairs;
    char current[64]; /* the man page entry (.TP, .B NAME) the lines belong to */
    bool after_tp;    /* the previous man page line was .TP */
};

static void doc_sets_free(struct doc_sets *d)
{
    names_free(&d->names);
    names_free(&d->pairs);
}

/* "  accept-once        edge-triggered ...": a mode of the help's "Bug modes" list. */
static void help_bug_line(const char *line, void *ctx)
{
    struct doc_sets *d = ctx;
    if (starts_with(line, "  ") && islower((unsigned char)line[2]))
        names_add(&d->names, "%.*s", (int)strcspn(line + 2, " "), line + 2);
}

/* "| `slowloris` | ... |": a row of a table whose first cell is a backticked name. */
static void table_name_line(const char *line, void *ctx)
{
    struct doc_sets *d = ctx;
    char cell[512], name[64];
    if (!starts_with(line, "| `"))
        return;
    table_cell(line, 0, cell, sizeof(cell));
    bare_word(cell, strlen(cell), name, sizeof(name));
    size_t n = strlen(name);
    if (n > 4 && strcmp(name + n - 4, ".ini") == 0)
        name[n - 4] = '\0'; /* scenarios/README.md names the files */
    names_add(&d->names, "%s", name);
}

/* "| `blocking` | ... | ... | `slowloris`, `zero-window` → accepting |" */
static void readme_bug_line(const char *line, void *ctx)
{
    struct doc_sets *d = ctx;
    char cell[512];
    if (!starts_with(line, "| `") || starts_with(line, "| `--bug`"))
        return;
    table_name_line(line, ctx);
    table_cell(line, 3, cell, sizeof(cell));
    parse_pairs(cell, "→", d->names.v[d->names.n - 1], true, &d->pairs);
}

/* ".B NAME" after ".TP" starts an entry; "PREFIX a, b \(-> check; ..." gives its pairs. */
static void man_entry_line(const char *line, struct doc_sets *d, const char *prefix,
                           bool entry_is_bug)
{
    bool after_tp = d->after_tp;
    d->after_tp = strcmp(line, ".TP") == 0;
    if (after_tp && starts_with(line, ".B ")) {
        snprintf(d->current, sizeof(d->current), "%s", line + 3);
        names_add(&d->names, "%s", d->current);
    } else if (starts_with(line, prefix)) {
        ck_assert_msg(d->current[0] != '\0', "\"%s\" before any entry", line);
        parse_pairs(line + strlen(prefix), "\\(->", d->current, entry_is_bug, &d->pairs);
    }
}

static void server_man_line(const char *line, void *ctx)
{
    man_entry_line(line, ctx, "Caught by:", true);
}

static void connfault_man_line(const char *line, void *ctx)
{
    man_entry_line(line, ctx, "Catches:", false);
}

/* ---- tests ---- */

START_TEST(every_server_bug_mode_is_caught)
{
    struct ts_proc p;
    ck_assert_int_eq(ts_run(&p, TS_ARGV(CONNFAULT_SERVER_BIN, "--help"), NULL), 0);
    ck_assert_msg(p.status == 0, CONNFAULT_SERVER_BIN " --help: status %d: %s", p.status, p.err);
    const char *help = p.out;
    struct doc_sets d = {0};
    for_each_line_in(help, "Bug modes", NULL, help_bug_line, &d);
    expect_same("connfault-server --help (its bug modes)", "the scenarios' catches keys", &d.names,
                &cat.bugs);
    doc_sets_free(&d);
    ts_proc_free(&p);
}
END_TEST

/* Where each document lists the catalogue, and how to read its lines. */
enum doc_list { LISTS_SCENARIOS, LISTS_BUGS, LISTS_SCENARIO_KEYS, LISTS_CLIENT_KEYS };

struct doc_check {
    const char *document;     /* below the source tree; "*.1" are troff */
    const char *from, *until; /* the lines after `from`, up to `until` */
    void (*line)(const char *line, void *doc_sets);
    enum doc_list lists;
    bool pairs; /* the lines name the catch pairs too */
};

static const struct doc_check doc_checks[] = {
    {"README.md", "### Scenarios", "#", table_name_line, LISTS_SCENARIOS, false},
    {"README.md", "## connfault-server", "## ", readme_bug_line, LISTS_BUGS, true},
    {"scenarios/README.md", "## Built-in scenarios", "#", table_name_line, LISTS_SCENARIOS, false},
    {"scenarios/README.md", "## Keys of `[scenario]`", "#", table_name_line, LISTS_SCENARIO_KEYS,
     false},
    {"scenarios/README.md", "## Keys of `[clients NAME]`", "#", table_name_line, LISTS_CLIENT_KEYS,
     false},
    {"harness/connfault.1", ".SH SCENARIOS", ".SH", connfault_man_line, LISTS_SCENARIOS, true},
    {"server/connfault-server.1", ".SH BUG MODES", ".SH", server_man_line, LISTS_BUGS, true},
};

START_TEST(document_matches_catalogue)
{
    const struct doc_check *dc = &doc_checks[_i];
    char *text = read_document(dc->document), what[128];
    size_t len = strlen(dc->document);
    if (len > 2 && strcmp(dc->document + len - 2, ".1") == 0)
        troff_plain(text);
    struct doc_sets d = {0};
    for_each_line_in(text, dc->from, dc->until, dc->line, &d);
    static const char *const list_names[] = {"scenarios", "bug modes", "keys", "keys"};
    struct names *want[] = {&cat.scenarios, &cat.bugs, &cat.keys[0], &cat.keys[1]};
    snprintf(what, sizeof(what), "%s after \"%s\" (%s)", dc->document, dc->from,
             list_names[dc->lists]);
    expect_same(what, dc->lists >= LISTS_SCENARIO_KEYS ? "the parser's keys" : "the catalogue",
                &d.names, want[dc->lists]);
    if (dc->pairs) {
        snprintf(what, sizeof(what), "%s after \"%s\" (catch pairs)", dc->document, dc->from);
        expect_same(what, "the scenarios' catches keys", &d.pairs, &cat.pairs);
    }
    doc_sets_free(&d);
    free(text);
}
END_TEST

/* The checker itself: a document that drops a pair or adds one is caught. */
START_TEST(parse_pairs_reads_both_shapes)
{
    struct names got = {0};
    parse_pairs("`a-b`, `c` → accepting; `d` → fds", "→", "blocking", true, &got);
    parse_pairs(" x \\(-> alive; y, z \\(-> cpu.", "\\(->", "sc", false, &got);
    ck_assert_uint_eq(got.n, 6);
    ck_assert_str_eq(got.v[0], "a-b catches blocking:accepting");
    ck_assert_str_eq(got.v[1], "c catches blocking:accepting");
    ck_assert_str_eq(got.v[2], "d catches blocking:fds");
    ck_assert_str_eq(got.v[3], "sc catches x:alive");
    ck_assert_str_eq(got.v[4], "sc catches y:cpu");
    ck_assert_str_eq(got.v[5], "sc catches z:cpu");
    names_free(&got);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("catalogue_docs");
    TCase *tc = tcase_create("docs");
    tcase_add_checked_fixture(tc, catalogue_load, catalogue_unload);
    tcase_add_test(tc, every_server_bug_mode_is_caught);
    tcase_add_loop_test(tc, document_matches_catalogue, 0,
                        (int)(sizeof(doc_checks) / sizeof(doc_checks[0])));
    tcase_add_test(tc, parse_pairs_reads_both_shapes);
    suite_add_tcase(s, tc);
    return ts_run_suite(s);
}
