/* The CI files users copy: the GitHub Action (ci/github/action.yml), its example workflow
 * (ci/github/connfault.yml) and the GitLab job (ci/gitlab/connfault.yml) must be valid
 * YAML, run only scripts that exist in this repository with flags those scripts and
 * `connfault run` accept, take the inputs they document, and publish what ci/connfault-ci
 * writes. The Action's shell steps run here, in order, against the reference server, as far
 * as they can without GitHub. Then ci/connfault-ci itself
 * runs against the reference server: a pass on the correct server, a failure on `alive` with
 * --bug sigpipe, an errored testcase when the server does not start. Every script of ci/ and
 * .ci/ answers --help with its usage and refuses an unknown option with exit status 2.
 *
 * The YAML checker (tests/support, ts_yaml_*) reads the block-style subset CI files are
 * written in and rejects the rest rather than guessing; its own tests are here too. */
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

#ifndef CONNFAULT_SOURCE_DIR
#define CONNFAULT_SOURCE_DIR "."
#endif
#ifndef CONNFAULT_SERVER_BIN
#define CONNFAULT_SERVER_BIN "connfault-server"
#endif
#ifndef CONNFAULT_BIN
#define CONNFAULT_BIN "connfault"
#endif

#define CI_SCRIPT         CONNFAULT_SOURCE_DIR "/ci/connfault-ci"
#define GITHUB_FILE       CONNFAULT_SOURCE_DIR "/ci/github/connfault.yml"
#define ACTION_FILE       CONNFAULT_SOURCE_DIR "/ci/github/action.yml"
#define GITLAB_FILE       CONNFAULT_SOURCE_DIR "/ci/gitlab/connfault.yml"
#define RESULTS_DIR       "connfault-results" /* --out of both CI files */
#define CI_RUN_TIMEOUT_MS 180000

/* ---- helpers ------------------------------------------------------------------------ */

static struct ts_yaml *parse_text_or_fail(const char *path, const char *text)
{
    char error[256];
    struct ts_yaml *root = ts_yaml_parse(text, error, sizeof(error));
    ck_assert_msg(root != NULL, "%s: %s", path, error);
    ck_assert_int_eq(root->kind, TS_YAML_MAP);
    return root;
}

static struct ts_yaml *parse_file_or_fail(const char *path)
{
    char *text = ts_slurp(path, NULL);
    ck_assert_msg(text != NULL, "%s: %s", path, strerror(errno));
    struct ts_yaml *root = parse_text_or_fail(path, text);
    free(text);
    return root;
}

/* Output of a command (stdout and stderr), read whole; it must succeed. */
static char *command_output(const char *const *argv)
{
    struct ts_proc p;
    const struct ts_run_opts opts = {.merge_stderr = true};
    ck_assert_int_eq(ts_run(&p, argv, &opts), 0);
    ck_assert_msg(p.status == 0, "%s: exit status %d:\n%s", argv[0], p.status, p.out);
    char *out = p.out;
    p.out = NULL;
    ts_proc_free(&p);
    return out;
}

/* Does a --help text document this flag (as a whole word)? */
static bool help_has_flag(const char *help, const char *flag)
{
    size_t len = strlen(flag);
    for (const char *s = strstr(help, flag); s; s = strstr(s + 1, flag)) {
        bool starts = s == help || strchr(" \t\n[,(", s[-1]);
        bool ends = !isalnum((unsigned char)s[len]) && s[len] != '-';
        if (starts && ends)
            return true;
    }
    return false;
}

/* ---- shell command lines -------------------------------------------------------------- */

#define MAX_WORDS 64

struct shell_words {
    size_t n;
    char *word[MAX_WORDS]; /* quotes removed; "&&", "||", ";", "|" are words of their own */
    bool quoted[MAX_WORDS];
};

/* A shell line split the way sh would split it (quotes, no expansion). Enough for the CI
 * files: they are written to be read, not clever. */
static void shell_split(const char *line, struct shell_words *w)
{
    memset(w, 0, sizeof(*w));
    const char *s = line;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n')
            s++;
        if (*s == '\0' || *s == '#')
            return;
        ck_assert_uint_lt(w->n, MAX_WORDS);
        char *word = malloc(strlen(s) + 1);
        ck_assert_ptr_nonnull(word);
        size_t n = 0;
        bool quoted = false;
        if (strchr("&|;", *s)) {
            word[n++] = *s++;
            if ((s[-1] == '&' || s[-1] == '|') && *s == s[-1])
                word[n++] = *s++;
        } else {
            while (*s && !strchr(" \t\n&|;", *s)) {
                if (*s == '"' || *s == '\'') {
                    char quote = *s++;
                    quoted = true;
                    while (*s && *s != quote)
                        word[n++] = *s++;
                    ck_assert_msg(*s == quote, "unterminated quote in: %s", line);
                    s++;
                } else {
                    word[n++] = *s++;
                }
            }
        }
        word[n] = '\0';
        w->quoted[w->n] = quoted;
        w->word[w->n++] = word;
    }
}

static void shell_words_free(struct shell_words *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->word[i]);
}

struct ci_file {
    const char *path;
    const struct ts_yaml *variables; /* env (GitHub) or variables (GitLab) */
    bool ran_setup, ran_connfault_ci;
    char out_dir[256]; /* --out of the connfault-ci call */
};

/* $NAME and ${NAME} are the file's own variables or the CI system's. */
static void check_variable_reference(struct ci_file *cf, const char *word)
{
    for (const char *s = strchr(word, '$'); s; s = strchr(s + 1, '$')) {
        const char *name = s + 1 + (s[1] == '{');
        size_t len = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
        if (len == 0 || isdigit((unsigned char)name[0]))
            continue; /* $(...), $1 and the like */
        char var[128];
        snprintf(var, sizeof(var), "%.*s", (int)len, name);
        bool from_ci = strcmp(var, "PATH") == 0 || strncmp(var, "RUNNER_", 7) == 0 ||
                       strncmp(var, "GITHUB_", 7) == 0 || strncmp(var, "CI_", 3) == 0;
        ck_assert_msg(from_ci || ts_yaml_get(cf->variables, var),
                      "%s: $%s is used but not defined in the file", cf->path, var);
    }
}

/* ".../ci/NAME" in a command is one of this repository's ci scripts: it must exist. */
static const char *ci_script_name(const char *word)
{
    const char *s = strstr(word, "/ci/");
    if (!s)
        return NULL;
    const char *name = s + 4;
    return name[0] && !strchr(name, '/') ? name : NULL;
}

/* The flags of a connfault-ci call: its own before "--", `connfault run`'s after. */
static void check_connfault_ci_call(struct ci_file *cf, const struct shell_words *w, size_t i,
                                    const char *ci_help, const char *run_help)
{
    bool run_args = false;
    for (i++; i < w->n && !strchr("&|;", w->word[i][0]); i++) {
        const char *word = w->word[i];
        if (strcmp(word, "--") == 0 && !run_args) {
            run_args = true;
        } else if (word[0] == '-') {
            const char *help = run_args ? run_help : ci_help;
            ck_assert_msg(help_has_flag(help, word), "%s: %s is not a flag of %s", cf->path, word,
                          run_args ? "connfault run" : "ci/connfault-ci");
            if (!run_args && strcmp(word, "--out") == 0 && i + 1 < w->n)
                snprintf(cf->out_dir, sizeof(cf->out_dir), "%s", w->word[i + 1]);
        } else if (run_args && strcmp(word, "$CONNFAULT_ARGS") == 0 && !w->quoted[i]) {
            /* Split by the shell: each word of the variable's value is a flag or its value. */
            const char *value = ts_yaml_get_scalar(cf->variables, "CONNFAULT_ARGS");
            ck_assert_ptr_nonnull(value);
            struct shell_words args;
            shell_split(value, &args);
            for (size_t a = 0; a < args.n; a++)
                if (args.word[a][0] == '-')
                    ck_assert_msg(help_has_flag(run_help, args.word[a]),
                                  "%s: CONNFAULT_ARGS: %s is not a flag of connfault run", cf->path,
                                  args.word[a]);
            shell_words_free(&args);
        }
    }
    ck_assert_msg(run_args, "%s: connfault-ci is called without \"--\" before connfault's flags",
                  cf->path);
}

static void check_command(struct ci_file *cf, const char *command, const char *ci_help,
                          const char *run_help)
{
    struct shell_words w;
    shell_split(command, &w);
    for (size_t i = 0; i < w.n; i++) {
        check_variable_reference(cf, w.word[i]);
        /* .ci/ holds connfault's own CI: a user's job must not depend on it. */
        ck_assert_msg(!strstr(w.word[i], ".ci/"), "%s runs %s: not a script for users", cf->path,
                      w.word[i]);
        const char *name = ci_script_name(w.word[i]);
        if (!name)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/ci/%s", CONNFAULT_SOURCE_DIR, name);
        ck_assert_msg(access(path, X_OK) == 0, "%s runs %s: no executable %s", cf->path, w.word[i],
                      path);
        if (strcmp(name, "setup") == 0)
            cf->ran_setup = true;
        if (strcmp(name, "connfault-ci") == 0) {
            cf->ran_connfault_ci = true;
            check_connfault_ci_call(cf, &w, i, ci_help, run_help);
        }
    }
    shell_words_free(&w);
}

/* Every command of a run: block or a script: line (continuation lines joined). */
static void check_commands(struct ci_file *cf, const char *text)
{
    static char *ci_help, *run_help;
    if (!ci_help) {
        ci_help = command_output(TS_ARGV(CI_SCRIPT, "--help"));
        run_help = command_output(TS_ARGV(CONNFAULT_BIN, "run", "--help"));
    }
    char *copy = strdup(text);
    ck_assert_ptr_nonnull(copy);
    for (char *s = copy; (s = strstr(s, "\\\n")) != NULL;)
        s[0] = s[1] = ' ';
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        check_command(cf, line, ci_help, run_help);
    free(copy);
}

/* What the Action and the GitLab job share: a call of ci/setup and connfault-ci. */

static void check_calls(const struct ci_file *cf)
{
    ck_assert_msg(cf->ran_setup, "%s: ci/setup is never run", cf->path);
    ck_assert_msg(cf->ran_connfault_ci, "%s: ci/connfault-ci is never run", cf->path);
    ck_assert_str_eq(cf->out_dir, RESULTS_DIR);
}

/* ---- tests: the man pages against --help ---------------------------------------------- */

/* Calls fn for every "--flag" (and, with short, "-x") a text names. */
static void for_each_flag(const char *text, bool troff, bool short_too,
                          void (*fn)(const char *flag, void *ctx), void *ctx)
{
    const char *dash = troff ? "\\-" : "-";
    size_t dash_len = strlen(dash);
    for (const char *s = text; *s; s++) {
        bool starts = s == text || strchr(" \t\n[(,|", s[-1]) || (troff && s[-1] == 'B');
        if (!starts || strncmp(s, dash, dash_len) != 0)
            continue;
        bool long_flag = strncmp(s + dash_len, dash, dash_len) == 0;
        if (!long_flag && !short_too)
            continue;
        char flag[64];
        size_t n = 0;
        const char *p = s;
        while (n < sizeof(flag) - 1) {
            if (strncmp(p, dash, dash_len) == 0) {
                flag[n++] = '-';
                p += dash_len;
            } else if (islower((unsigned char)*p) || isdigit((unsigned char)*p)) {
                flag[n++] = *p++;
            } else {
                break;
            }
        }
        flag[n] = '\0';
        size_t prefix = long_flag ? 2 : 1;
        if (n > prefix && islower((unsigned char)flag[prefix]) && flag[n - 1] != '-' &&
            (long_flag || n == 2))
            fn(flag, ctx);
        s = p - 1;
    }
}

struct flag_check {
    const char *other, *what; /* the text every flag must be in, for messages */
    bool troff;               /* other is troff: "-" is written "\-" */
};

static void flag_must_be_in_other(const char *flag, void *ctx)
{
    const struct flag_check *fc = ctx;
    char needle[160];
    size_t n = 0;
    for (const char *f = flag; *f && n < sizeof(needle) - 3; f++) {
        if (*f == '-' && fc->troff)
            needle[n++] = '\\';
        needle[n++] = *f;
    }
    needle[n] = '\0';
    ck_assert_msg(help_has_flag(fc->other, needle) || (fc->troff && strstr(fc->other, needle)),
                  "%s is not in %s", flag, fc->what);
}

static void check_man_page(const char *const *help_command, const char *man_path)
{
    char *help = command_output(help_command);
    char *man = ts_slurp(man_path, NULL);
    ck_assert_msg(man != NULL, "%s: %s", man_path, strerror(errno));
    struct flag_check in_man = {man, man_path, true};
    for_each_flag(help, false, true, flag_must_be_in_other, &in_man);
    struct flag_check in_help = {help, help_command[0], false};
    for_each_flag(man, true, false, flag_must_be_in_other, &in_help);
    free(help);
    free(man);
}

START_TEST(man_pages_document_every_flag_of_the_help)
{
    check_man_page(TS_ARGV(CONNFAULT_BIN, "run", "--help"),
                   CONNFAULT_SOURCE_DIR "/harness/connfault.1");
    check_man_page(TS_ARGV(CONNFAULT_SERVER_BIN, "--help"),
                   CONNFAULT_SOURCE_DIR "/server/connfault-server.1");
}
END_TEST

/* ---- tests: every script's --help and usage errors -------------------------------------- */

/* The scripts of ci/ (users') and .ci/ (the project's own). .ci/run is CI's entry point and
 * takes no arguments: it runs README's two commands, nothing else. */
static const struct {
    const char *path;
    bool passes_options_on; /* to `connfault run`, which judges them after a whole build */
} scripts[] = {
    {"ci/connfault-ci", false},      {"ci/setup", false},
    {".ci/run-suite", true},         {".ci/test", false},
    {".ci/fuzz-smoke", false},       {".ci/check-leftovers", false},
    {".ci/check-code-shape", false}, {".ci/install-deb", false},
};
#define NSCRIPTS (sizeof(scripts) / sizeof(scripts[0]))

static struct ts_proc run_script(const char *path, const char *arg)
{
    char full[512];
    snprintf(full, sizeof(full), "%s/%s", CONNFAULT_SOURCE_DIR, path);
    struct ts_proc p;
    /* Bounded: a script that ignored the option would start building or installing. */
    const struct ts_run_opts opts = {.timeout_ms = 10000};
    ck_assert_int_eq(ts_run(&p, TS_ARGV(full, arg), &opts), 0);
    ck_assert_msg(!p.timed_out, "%s %s: still running after 10 s", path, arg);
    return p;
}

/* The help is a usage() text of its own, not lines cut out of the script's header by number
 * (which broke silently whenever the header changed). */
START_TEST(scripts_answer_help_and_refuse_unknown_options)
{
    const char *path = scripts[_i].path;
    char full[512];
    snprintf(full, sizeof(full), "%s/%s", CONNFAULT_SOURCE_DIR, path);
    char *text = ts_slurp(full, NULL);
    ck_assert_msg(text != NULL, "%s: %s", full, strerror(errno));
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        ck_assert_msg(!strstr(line, "sed -n") ||
                          (!strstr(line, "\"$0\"") && !strstr(line, "BASH_SOURCE")),
                      "%s cuts text out of itself by line number: %s", path, line);
    free(text);

    char usage[128];
    snprintf(usage, sizeof(usage), "Usage: %s ", path);
    struct ts_proc p = run_script(path, "--help");
    ck_assert_msg(p.status == 0, "%s --help: exit status %d:\n%s", path, p.status, p.err);
    ck_assert_msg(strncmp(p.out, usage, strlen(usage)) == 0, "%s --help says:\n%s", path, p.out);
    ts_proc_free(&p);
    if (scripts[_i].passes_options_on)
        return;
    p = run_script(path, "--no-such-option");
    ck_assert_msg(p.status == 2, "%s --no-such-option: exit status %d", path, p.status);
    ck_assert_msg(strstr(p.err, "unknown option '--no-such-option'"), "%s said:\n%s", path, p.err);
    ts_proc_free(&p);
}
END_TEST

/* A new script gets a --help too: it must be in the table above. */
static void check_every_script_listed(const char *dir)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", CONNFAULT_SOURCE_DIR, dir);
    DIR *d = opendir(path);
    ck_assert_msg(d != NULL, "%s: %s", path, strerror(errno));
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char name[300], file[800];
        snprintf(name, sizeof(name), "%s/%s", dir, e->d_name);
        snprintf(file, sizeof(file), "%s/%s", CONNFAULT_SOURCE_DIR, name);
        struct stat st;
        if (stat(file, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR) ||
            strcmp(name, ".ci/run") == 0)
            continue;
        bool listed = false;
        for (size_t i = 0; i < NSCRIPTS; i++)
            listed |= strcmp(scripts[i].path, name) == 0;
        ck_assert_msg(listed, "%s: add it to the scripts whose --help is tested", name);
    }
    closedir(d);
}

START_TEST(every_script_is_tested)
{
    check_every_script_listed("ci");
    check_every_script_listed(".ci");
}
END_TEST

/* ---- tests: the YAML checker itself --------------------------------------------------- */

START_TEST(yaml_reads_the_subset)
{
    const char *yaml = "# comment\n"
                       "name: ci   # trailing comment\n"
                       "on:\n"
                       "  push:\n"
                       "list: [a, \"b c\", 'd''e']\n"
                       "steps:\n"
                       "  - name: one\n"
                       "    run: |\n"
                       "      echo a\n"
                       "\n"
                       "        indented # not a comment\n"
                       "  - uses: x@v1\n"
                       "    with:\n"
                       "      k: \"q\\\"uote\"\n"
                       "folded: >-\n"
                       "  a\n"
                       "  b\n"
                       "seq:\n"
                       "- 1\n"
                       "- two words\n";
    char error[256];
    struct ts_yaml *root = ts_yaml_parse(yaml, error, sizeof(error));
    ck_assert_msg(root != NULL, "%s", error);
    ck_assert_str_eq(ts_yaml_get_scalar(root, "name"), "ci");
    ck_assert_str_eq(ts_yaml_get_scalar(ts_yaml_get(root, "on"), "push"), "");
    const struct ts_yaml *list = ts_yaml_get(root, "list");
    ck_assert_uint_eq(list->n, 3);
    ck_assert_str_eq(list->values[1]->scalar, "b c");
    ck_assert_str_eq(list->values[2]->scalar, "d'e");
    const struct ts_yaml *steps = ts_yaml_get(root, "steps");
    ck_assert_int_eq(steps->kind, TS_YAML_SEQ);
    ck_assert_uint_eq(steps->n, 2);
    ck_assert_str_eq(ts_yaml_get_scalar(steps->values[0], "run"),
                     "echo a\n\n  indented # not a comment\n");
    ck_assert_str_eq(ts_yaml_get_scalar(ts_yaml_get(steps->values[1], "with"), "k"), "q\"uote");
    ck_assert_str_eq(ts_yaml_get_scalar(root, "folded"), "a b");
    ck_assert_uint_eq(ts_yaml_get(root, "seq")->n, 2);
    ck_assert_str_eq(ts_yaml_get(root, "seq")->values[1]->scalar, "two words");
    ts_yaml_free(root);
}
END_TEST

static const struct {
    const char *yaml, *error;
} bad_yaml[] = {
    {"a: 1\n\tb: 2\n", "line 2: tab in indentation"},
    {"a:\n  b: 1\n   c: 2\n", "line 3: unexpected indentation"},
    {"a: 1\na: 2\n", "line 2: duplicate key"},
    {"a: \"open\n", "line 1: unterminated quoted scalar"},
    {"run: echo a: b\n", "line 1: \": \" inside a plain scalar"},
    {"a: &anchor x\n", "line 1: unsupported"},
    {"a: {b: 1}\n", "line 1: unsupported"},
    {"a:\n  - x\n  b: y\n", "line 3: unexpected indentation"},
    {"a: 1\n  b: 2\n", "line 2: unexpected indentation"},
    {"just text\n", "line 1: expected \"key: value\""},
    {"a: [x, y\n", "line 1: unterminated [ ] list"},
    {"a: |x\n  t\n", "line 1: bad block scalar indicator"},
};

START_TEST(yaml_rejects_what_it_does_not_understand)
{
    char error[256];
    struct ts_yaml *root = ts_yaml_parse(bad_yaml[_i].yaml, error, sizeof(error));
    ck_assert_msg(root == NULL, "accepted: %s", bad_yaml[_i].yaml);
    ck_assert_msg(strncmp(error, bad_yaml[_i].error, strlen(bad_yaml[_i].error)) == 0,
                  "error for %s: got \"%s\", expected \"%s...\"", bad_yaml[_i].yaml, error,
                  bad_yaml[_i].error);
}
END_TEST

/* ---- tests: the CI files --------------------------------------------------------------- */

/* Calls fn for every scalar under node (values, not keys). */
static void for_each_scalar(const struct ts_yaml *node, void (*fn)(const char *text, void *ctx),
                            void *ctx)
{
    if (!node)
        return;
    if (node->kind == TS_YAML_SCALAR)
        fn(node->scalar, ctx);
    for (size_t i = 0; node->kind != TS_YAML_SCALAR && i < node->n; i++)
        for_each_scalar(node->values[i], fn, ctx);
}

/* Inputs as a CI file declares them and uses them: "${{ inputs.NAME }}" (GitHub) or
 * "$[[ inputs.NAME ]]" (GitLab). */
struct input_refs {
    const char *path, *open, *close;
    const struct ts_yaml *inputs; /* the map of declared inputs */
    bool used[32];
};

/* One "inputs.NAME" at name: declared, and now used. */
static void note_input(struct input_refs *r, const char *name)
{
    size_t len = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_");
    bool declared = false;
    for (size_t i = 0; i < r->inputs->n && i < 32; i++)
        if (strlen(r->inputs->keys[i]) == len && strncmp(r->inputs->keys[i], name, len) == 0)
            declared = r->used[i] = true;
    ck_assert_msg(declared, "%s: input '%.*s' is used but not declared", r->path, (int)len, name);
}

static void note_input_refs(const char *text, void *ctx)
{
    struct input_refs *r = ctx;
    for (const char *s = strstr(text, r->open); s; s = strstr(s + 1, r->open)) {
        const char *end = strstr(s, r->close);
        ck_assert_msg(end, "%s: unterminated %s in: %s", r->path, r->open, text);
        for (const char *in = strstr(s, "inputs."); in && in < end; in = strstr(in + 1, "inputs."))
            note_input(r, in + 7);
    }
}

/* Every input used is declared, every one declared is used, each has a description. */
static void check_inputs(struct input_refs *r, const struct ts_yaml *uses_in)
{
    ck_assert_msg(r->inputs && r->inputs->kind == TS_YAML_MAP, "%s: no inputs", r->path);
    ck_assert_uint_le(r->inputs->n, 32);
    for_each_scalar(uses_in, note_input_refs, r);
    for (size_t i = 0; i < r->inputs->n; i++) {
        ck_assert_msg(r->used[i], "%s: input %s is never used", r->path, r->inputs->keys[i]);
        ck_assert_msg(ts_yaml_get_scalar(r->inputs->values[i], "description"),
                      "%s: input %s has no description", r->path, r->inputs->keys[i]);
    }
}

/* What both the Action and the GitLab job take. */
static const char *const common_inputs[] = {"server-cmd", "scenarios", "args", "grace", "shard"};
#define NCOMMON_INPUTS (sizeof(common_inputs) / sizeof(common_inputs[0]))

static void check_common_inputs(const char *path, const struct ts_yaml *inputs)
{
    for (size_t i = 0; i < NCOMMON_INPUTS; i++)
        ck_assert_msg(ts_yaml_get(inputs, common_inputs[i]), "%s: no input %s", path,
                      common_inputs[i]);
    /* server-cmd has no default: a job without it is refused before it starts. */
    ck_assert_ptr_null(ts_yaml_get(ts_yaml_get(inputs, "server-cmd"), "default"));
    ck_assert_str_eq(ts_yaml_get_scalar(ts_yaml_get(inputs, "shard"), "default"), "1/1");
}

static const char *const action_outputs[] = {"passed", "failed", "skipped", "errored"};
#define NACTION_OUTPUTS (sizeof(action_outputs) / sizeof(action_outputs[0]))

static void check_action_outputs(const struct ts_yaml *root)
{
    const struct ts_yaml *outputs = ts_yaml_get(root, "outputs");
    for (size_t i = 0; i < NACTION_OUTPUTS; i++) {
        char value[96];
        snprintf(value, sizeof(value), "${{ steps.counts.outputs.%s }}", action_outputs[i]);
        const struct ts_yaml *out = ts_yaml_get(outputs, action_outputs[i]);
        ck_assert_msg(out && ts_yaml_get_scalar(out, "description"), "no output %s",
                      action_outputs[i]);
        ck_assert_str_eq(ts_yaml_get_scalar(out, "value"), value);
    }
}

/* One step of the Action: a shell step checked like a workflow's, or a pinned action. */
static void check_action_step(struct ci_file *cf, const struct ts_yaml *step, bool *cached,
                              bool *uploaded)
{
    const char *run = ts_yaml_get_scalar(step, "run");
    const char *uses = ts_yaml_get_scalar(step, "uses");
    const char *when = ts_yaml_get_scalar(step, "if");
    ck_assert_msg((run != NULL) != (uses != NULL), "step at line %d: one of run and uses",
                  step->line);
    if (run) {
        ck_assert_msg(ts_yaml_get_scalar(step, "shell"),
                      "line %d: a composite step's run "
                      "needs a shell",
                      step->line);
        /* The test below runs shell steps: only conditions it can evaluate. */
        ck_assert_msg(!when || strcmp(when, "always()") == 0, "line %d: if: %s", step->line, when);
        cf->variables = ts_yaml_get(step, "env");
        check_commands(cf, run);
        return;
    }
    ck_assert_msg(strchr(uses, '@'), "line %d: pin the action's version", step->line);
    const struct ts_yaml *with = ts_yaml_get(step, "with");
    if (strncmp(uses, "actions/cache@", 14) == 0) {
        ck_assert_str_eq(ts_yaml_get_scalar(with, "path"), "${{ runner.temp }}/connfault-build");
        *cached = true;
    }
    if (strncmp(uses, "actions/upload-artifact@", 24) == 0) {
        ck_assert_str_eq(ts_yaml_get_scalar(with, "path"), RESULTS_DIR "/");
        ck_assert_str_eq(when, "${{ always() && inputs.upload-results == 'true' }}");
        *uploaded = true;
    }
}

START_TEST(github_action_is_valid_and_matches_the_cli)
{
    struct ts_yaml *root = parse_file_or_fail(ACTION_FILE);
    ck_assert_ptr_nonnull(ts_yaml_get_scalar(root, "name"));
    ck_assert_ptr_nonnull(ts_yaml_get_scalar(root, "description"));
    const struct ts_yaml *inputs = ts_yaml_get(root, "inputs");
    check_common_inputs(ACTION_FILE, inputs);
    ck_assert_str_eq(ts_yaml_get_scalar(ts_yaml_get(inputs, "server-cmd"), "required"), "true");
    ck_assert_str_eq(ts_yaml_get_scalar(ts_yaml_get(inputs, "upload-results"), "default"), "true");
    check_action_outputs(root);

    const struct ts_yaml *runs = ts_yaml_get(root, "runs");
    ck_assert_str_eq(ts_yaml_get_scalar(runs, "using"), "composite");
    struct input_refs refs = {.path = ACTION_FILE, .open = "${{", .close = "}}", .inputs = inputs};
    check_inputs(&refs, runs);
    const struct ts_yaml *steps = ts_yaml_get(runs, "steps");
    ck_assert_msg(steps && steps->kind == TS_YAML_SEQ, "no steps");
    struct ci_file cf = {.path = ACTION_FILE};
    bool cached = false, uploaded = false, counted = false;
    for (size_t i = 0; i < steps->n; i++) {
        check_action_step(&cf, steps->values[i], &cached, &uploaded);
        const char *id = ts_yaml_get_scalar(steps->values[i], "id");
        counted |= id && strcmp(id, "counts") == 0;
    }
    check_calls(&cf);
    ck_assert_msg(cached, "the build is not cached");
    ck_assert_msg(uploaded, "the results are not uploaded");
    ck_assert_msg(counted, "no step \"counts\" for the outputs");
    ts_yaml_free(root);
}
END_TEST

/* The example's matrix: shard [1/N, ..., N/N], and the Action's step takes it. */
static void check_shard_matrix(const struct ts_yaml *job, const char *shard_input)
{
    const struct ts_yaml *strategy = ts_yaml_get(job, "strategy");
    ck_assert_str_eq(ts_yaml_get_scalar(strategy, "fail-fast"), "false");
    const struct ts_yaml *shards = ts_yaml_get(ts_yaml_get(strategy, "matrix"), "shard");
    ck_assert_msg(shards && shards->kind == TS_YAML_SEQ && shards->n == 4, "no 4-way matrix");
    for (size_t i = 0; i < shards->n; i++) {
        char want[48];
        snprintf(want, sizeof(want), "%zu/%zu", i + 1, shards->n);
        ck_assert_str_eq(shards->values[i]->scalar, want);
    }
    ck_assert_str_eq(shard_input, "${{ matrix.shard }}");
}

/* A use of the Action: only inputs it declares, and flags `connfault run` has; with a
 * matrix (`want_matrix`), the 4-way shard matrix. */
static void check_action_use(const struct ts_yaml *step, const struct ts_yaml *job,
                             bool want_matrix)
{
    struct ts_yaml *action = parse_file_or_fail(ACTION_FILE);
    const struct ts_yaml *inputs = ts_yaml_get(action, "inputs");
    const struct ts_yaml *with = ts_yaml_get(step, "with");
    ck_assert_msg(with && with->kind == TS_YAML_MAP, "the action's step has no with:");
    for (size_t i = 0; i < with->n; i++)
        ck_assert_msg(ts_yaml_get(inputs, with->keys[i]), "with: %s is not an input of %s",
                      with->keys[i], ACTION_FILE);
    const char *server = ts_yaml_get_scalar(with, "server-cmd");
    ck_assert_msg(server && strstr(server, "{port}"), "server-cmd without {port}");
    const char *args = ts_yaml_get_scalar(with, "args");
    if (args) {
        char *help = command_output(TS_ARGV(CONNFAULT_BIN, "run", "--help"));
        struct shell_words w;
        shell_split(args, &w);
        for (size_t i = 0; i < w.n; i++)
            ck_assert_msg(w.word[i][0] != '-' || help_has_flag(help, w.word[i]),
                          "args: %s is not a flag of connfault run", w.word[i]);
        shell_words_free(&w);
        free(help);
    }
    if (want_matrix)
        check_shard_matrix(job, ts_yaml_get_scalar(with, "shard"));
    else
        ck_assert_msg(!ts_yaml_get(job, "strategy") && !ts_yaml_get(with, "shard"),
                      "a one-job workflow with a strategy or a shard");
    ts_yaml_free(action);
}

/* A workflow uses the Action, pinned, with the inputs it declares. */
static void check_workflow(const char *path, struct ts_yaml *root, bool want_matrix)
{
    ck_assert_ptr_nonnull(ts_yaml_get(root, "on"));
    const struct ts_yaml *jobs = ts_yaml_get(root, "jobs");
    ck_assert_msg(jobs && jobs->kind == TS_YAML_MAP && jobs->n > 0, "%s: no jobs", path);
    bool used = false;
    for (size_t j = 0; j < jobs->n; j++) {
        const struct ts_yaml *job = jobs->values[j];
        ck_assert_msg(ts_yaml_get_scalar(job, "runs-on"), "job %s: no runs-on", jobs->keys[j]);
        const struct ts_yaml *steps = ts_yaml_get(job, "steps");
        ck_assert_msg(steps && steps->kind == TS_YAML_SEQ, "job %s: no steps", jobs->keys[j]);
        for (size_t s = 0; s < steps->n; s++) {
            const struct ts_yaml *step = steps->values[s];
            const char *uses = ts_yaml_get_scalar(step, "uses");
            ck_assert_msg((ts_yaml_get_scalar(step, "run") != NULL) != (uses != NULL),
                          "%s: step at line %d needs exactly one of run and uses", path,
                          step->line);
            if (!uses)
                continue;
            ck_assert_msg(strchr(uses, '@'), "%s: line %d: pin the action's version", path,
                          step->line);
            if (strstr(uses, "/connfault/ci/github@")) {
                check_action_use(step, job, want_matrix);
                used = true;
            }
        }
    }
    ck_assert_msg(used, "%s does not use OWNER/connfault/ci/github@REF", path);
}

START_TEST(github_workflow_uses_the_action)
{
    struct ts_yaml *root = parse_file_or_fail(GITHUB_FILE);
    ck_assert_ptr_nonnull(ts_yaml_get_scalar(root, "name"));
    check_workflow(GITHUB_FILE, root, true);
    ts_yaml_free(root);
}
END_TEST

/* The first ```yaml block after `heading` in README.md (malloc'd), and its line count. */
static char *readme_yaml_block(const char *heading, int *nlines)
{
    char *readme = ts_slurp(CONNFAULT_SOURCE_DIR "/README.md", NULL);
    ck_assert_ptr_nonnull(readme);
    const char *at = strstr(readme, heading);
    ck_assert_msg(at, "README.md has no \"%s\"", heading);
    const char *open = strstr(at, "```yaml\n");
    ck_assert_msg(open, "README.md: no yaml block after \"%s\"", heading);
    open += strlen("```yaml\n");
    const char *close = strstr(open, "```");
    ck_assert_ptr_nonnull(close);
    char *block = strndup(open, (size_t)(close - open));
    free(readme);
    *nlines = 0;
    for (const char *c = block; *c; c++)
        *nlines += *c == '\n';
    return block;
}

/* README's workflow is a whole one, in 10 lines (issue 14), and it is valid: the same checks
 * as ci/github/connfault.yml. */
START_TEST(readme_workflow_is_ten_valid_lines)
{
    int nlines;
    char *block = readme_yaml_block("### GitHub Actions", &nlines);
    ck_assert_msg(nlines <= 10, "README's workflow has %d lines (at most 10)", nlines);
    struct ts_yaml *root = parse_text_or_fail("README.md's workflow", block);
    check_workflow("README.md's workflow", root, false);
    ts_yaml_free(root);
    free(block);
}
END_TEST

static void check_script_list(struct ci_file *cf, const struct ts_yaml *list)
{
    if (!list)
        return;
    ck_assert_msg(list->kind == TS_YAML_SEQ, "%s: line %d: a script is a list", cf->path,
                  list->line);
    for (size_t i = 0; i < list->n; i++) {
        ck_assert_int_eq(list->values[i]->kind, TS_YAML_SCALAR);
        check_commands(cf, list->values[i]->scalar);
    }
}

/* The job's variables are its inputs ("$[[ inputs.X ]]"), and the script uses them. */
static void check_gitlab_variables(const struct ci_file *cf)
{
    ck_assert_msg(cf->variables && cf->variables->kind == TS_YAML_MAP, "%s: no variables",
                  cf->path);
    static const char *const names[] = {"CONNFAULT_REPO", "CONNFAULT_REF",  "SERVER_CMD",
                                        "SCENARIOS",      "CONNFAULT_ARGS", "GRACE",
                                        "SHARD"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *value = ts_yaml_get_scalar(cf->variables, names[i]);
        ck_assert_msg(value && strncmp(value, "$[[ inputs.", 11) == 0,
                      "%s: variable %s is not an input", cf->path, names[i]);
    }
}

START_TEST(gitlab_job_is_valid_and_matches_the_cli)
{
    /* Two YAML documents: the spec of the inputs, then the job. */
    char *text = ts_slurp(GITLAB_FILE, NULL);
    ck_assert_ptr_nonnull(text);
    char *job_text = strstr(text, "\n---\n");
    ck_assert_msg(job_text, "%s: no \"---\" after spec:", GITLAB_FILE);
    job_text[1] = '\0';
    job_text += 5;
    struct ts_yaml *header = parse_text_or_fail(GITLAB_FILE, text);
    struct ts_yaml *root = parse_text_or_fail(GITLAB_FILE, job_text);
    free(text);
    const struct ts_yaml *inputs = ts_yaml_get(ts_yaml_get(header, "spec"), "inputs");
    check_common_inputs(GITLAB_FILE, inputs);
    struct input_refs refs = {.path = GITLAB_FILE, .open = "$[[", .close = "]]", .inputs = inputs};
    check_inputs(&refs, root);

    const struct ts_yaml *job = ts_yaml_get(root, "connfault");
    ck_assert_msg(job && job->kind == TS_YAML_MAP, "no job \"connfault\"");
    struct ci_file cf = {.path = GITLAB_FILE, .variables = ts_yaml_get(job, "variables")};
    check_gitlab_variables(&cf);
    ck_assert_ptr_nonnull(ts_yaml_get_scalar(job, "image"));
    check_script_list(&cf, ts_yaml_get(job, "before_script"));
    ck_assert_ptr_nonnull(ts_yaml_get(job, "script"));
    check_script_list(&cf, ts_yaml_get(job, "script"));
    check_calls(&cf);

    const struct ts_yaml *artifacts = ts_yaml_get(job, "artifacts");
    ck_assert_str_eq(ts_yaml_get_scalar(artifacts, "when"), "always");
    ck_assert_str_eq(ts_yaml_get_scalar(ts_yaml_get(artifacts, "reports"), "junit"),
                     RESULTS_DIR "/junit.xml");
    const struct ts_yaml *paths = ts_yaml_get(artifacts, "paths");
    ck_assert_msg(paths && paths->kind == TS_YAML_SEQ && paths->n == 1, "artifacts: paths");
    ck_assert_str_eq(paths->values[0]->scalar, RESULTS_DIR "/");
    ts_yaml_free(root);
    ts_yaml_free(header);
}
END_TEST

/* ---- tests: ci/connfault-ci against the reference server ------------------------------- */

struct ci_run {
    char dir[64]; /* temp dir: results in dir/out, the GitHub step summary in dir */
    char out[96];
    char *output; /* what the script printed (stdout and stderr) */
    int status;   /* exit status; 128 + signal if killed */
};

/* Runs ci/connfault-ci with args (NULL-terminated) and waits, bounded: a timeout kills its
 * process group, the server with it. */
static void ci_run(struct ci_run *r, const char *const *args)
{
    ck_assert_int_eq(ts_tmpdir_create(r->dir, sizeof(r->dir), "test_ci_files"), 0);
    snprintf(r->out, sizeof(r->out), "%s/out", r->dir);
    char summary[128];
    snprintf(summary, sizeof(summary), "GITHUB_STEP_SUMMARY=%s/step-summary.md", r->dir);

    const char *argv[32] = {CI_SCRIPT, "--connfault", CONNFAULT_BIN, "--out", r->out};
    size_t argc = 5;
    for (size_t i = 0; args[i]; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;

    struct ts_proc p;
    const struct ts_run_opts opts = {
        .timeout_ms = CI_RUN_TIMEOUT_MS, .env = TS_ARGV(summary), .merge_stderr = true};
    ck_assert_int_eq(ts_run(&p, argv, &opts), 0);
    r->status = p.status;
    r->output = p.out;
    p.out = NULL;
    ts_proc_free(&p);
}

static char *ci_run_file(const struct ci_run *r, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", r->out, name);
    char *text = ts_slurp(path, NULL);
    ck_assert_msg(text != NULL, "no %s; connfault-ci said:\n%s", name, r->output);
    return text;
}

static void ci_run_cleanup(struct ci_run *r)
{
    ck_assert_int_eq(ts_tmpdir_remove(r->dir), 0);
    free(r->output);
    r->output = NULL;
}

#define SERVER_CMD CONNFAULT_SERVER_BIN " --port {port} --header-timeout 1 --send-timeout 1 -q"

START_TEST(connfault_ci_passes_the_correct_server)
{
    /* A scenario file of the user's, found through a glob, next to a built-in name. */
    char mine[64], path[128], scenarios[256];
    ck_assert_int_eq(ts_tmpdir_create(mine, sizeof(mine), "test_ci_scenarios"), 0);
    char *ini = ts_slurp(CONNFAULT_SOURCE_DIR "/scenarios/half-close.ini", NULL);
    ck_assert_ptr_nonnull(ini);
    snprintf(path, sizeof(path), "%s/mine.ini", mine);
    ck_assert_int_eq(ts_write_file(path, ini), 0);
    free(ini);
    snprintf(scenarios, sizeof(scenarios), "connect-close %s/*.ini", mine);

    struct ci_run r;
    const char *args[] = {"--server-cmd", SERVER_CMD, "--scenarios", scenarios, "--", "-v", NULL};
    ci_run(&r, args);
    char *junit = ci_run_file(&r, "junit.xml");
    char *json = ci_run_file(&r, "report.json");
    char *summary = ci_run_file(&r, "summary.txt");
    ck_assert_msg(r.status == 0, "exit status %d:\n%s", r.status, summary);
    ck_assert_ptr_nonnull(strstr(junit, "tests=\"2\" failures=\"0\" errors=\"0\" skipped=\"0\""));
    ck_assert_ptr_nonnull(
        strstr(junit, "<testcase classname=\"connfault\" name=\"connect-close\""));
    ck_assert_ptr_nonnull(strstr(junit, "mine"));
    ck_assert_ptr_null(strstr(junit, "<failure"));
    ck_assert_ptr_null(strstr(junit, "<error"));
    ck_assert_ptr_nonnull(strstr(json, "\"verdict\":\"pass\""));
    ck_assert_ptr_null(strstr(json, "\"verdict\":\"fail\""));
    ck_assert_ptr_nonnull(strstr(summary, "2 passed, 0 failed"));
    ck_assert_ptr_nonnull(strstr(summary, "ok      alive")); /* -v went through to connfault */

    /* The traffic is kept where this connfault captures (--capture in its help). */
    char *help = command_output(TS_ARGV(CONNFAULT_BIN, "run", "--help"));
    if (strstr(help, "--capture DIR")) {
        char captures[128];
        snprintf(captures, sizeof(captures), "%s/captures", r.out);
        DIR *dir = opendir(captures);
        ck_assert_msg(dir != NULL, "no %s", captures);
        size_t pcaps = 0;
        for (struct dirent *d; (d = readdir(dir)) != NULL;)
            pcaps += strstr(d->d_name, ".pcap") != NULL;
        closedir(dir);
        ck_assert_uint_eq(pcaps, 2);
    }
    free(help);

    char step_summary[128];
    snprintf(step_summary, sizeof(step_summary), "%s/step-summary.md", r.dir);
    char *md = ts_slurp(step_summary, NULL);
    ck_assert_msg(md && strstr(md, "## connfault: passed"), "no GitHub step summary");
    free(md);
    free(junit);
    free(json);
    free(summary);
    ci_run_cleanup(&r);
    ck_assert_int_eq(ts_tmpdir_remove(mine), 0);
}
END_TEST

START_TEST(connfault_ci_fails_a_server_killed_by_sigpipe)
{
    struct ci_run r;
    const char *args[] = {"--server-cmd", SERVER_CMD " --bug sigpipe", "--scenarios",
                          "rst-mid-response", NULL};
    ci_run(&r, args);
    char *junit = ci_run_file(&r, "junit.xml");
    char *summary = ci_run_file(&r, "summary.txt");
    ck_assert_msg(r.status == 1, "exit status %d:\n%s", r.status, summary);
    ck_assert_ptr_nonnull(strstr(junit, "tests=\"1\" failures=\"1\""));
    const char *testcase = strstr(junit, "name=\"rst-mid-response\"");
    ck_assert_ptr_nonnull(testcase);
    const char *failure = strstr(testcase, "<failure");
    ck_assert_ptr_nonnull(failure);
    /* The command is plain words, so the server itself is the target (no shell in between
     * to turn the signal into "exited with status 141"). */
    ck_assert_ptr_nonnull(strstr(failure, "alive: target killed by signal 13 (SIGPIPE)"));
    ck_assert_ptr_nonnull(strstr(summary, "FAIL  rst-mid-response"));
    free(junit);
    free(summary);
    ci_run_cleanup(&r);
}
END_TEST

START_TEST(connfault_ci_reports_a_server_that_does_not_start)
{
    struct ci_run r;
    const char *args[] = {"--server-cmd", "echo 'no <config> & no port' {port}; exit 3",
                          "--scenarios", "connect-close", NULL};
    ci_run(&r, args);
    char *junit = ci_run_file(&r, "junit.xml");
    ck_assert_int_eq(r.status, 2);
    const char *error = strstr(junit, "<testcase classname=\"connfault\" name=\"set-up\"");
    ck_assert_msg(error != NULL, "no set-up testcase:\n%s", junit);
    ck_assert_ptr_nonnull(strstr(error, "<error"));
    ck_assert_ptr_nonnull(strstr(error, "no &lt;config&gt; &amp; no port")); /* escaped */
    /* The counts say so too (one testcase, connfault's own: the script adds none then). */
    const char *counts = "tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\"";
    const char *suites = strstr(junit, "<testsuites ");
    const char *suite = strstr(junit, "<testsuite ");
    ck_assert_msg(suites && strstr(suites, counts) && strstr(suites, counts) < suite &&
                      strstr(suite, counts) && strstr(suite, counts) < error,
                  "counts not updated:\n%s", junit);
    free(junit);
    ci_run_cleanup(&r);
}
END_TEST

START_TEST(connfault_ci_refuses_bad_usage)
{
    struct ci_run r;
    const char *no_server[] = {"--scenarios", "connect-close", NULL};
    ci_run(&r, no_server);
    ck_assert_int_eq(r.status, 2);
    ci_run_cleanup(&r);
    const char *unknown[] = {"--server-cmd", "true", "--bogus", NULL};
    ci_run(&r, unknown);
    ck_assert_int_eq(r.status, 2);
    ci_run_cleanup(&r);
}
END_TEST

/* ---- tests: the Action's shell steps, run here ------------------------------------------ */

#define ACTION_RUN_BUDGET_MS 55000 /* all steps of one case; two cases stay under 120 s */
#define ACTION_MAX_OUTPUTS   32

/* What GitHub would give the steps, in a temp dir: the workspace (the steps' working
 * directory), RUNNER_TEMP, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, and bin/ with an
 * apt-get that installs nothing (ci/setup calls it only for a missing package). */
struct action_run {
    char dir[96], workspace[128], runner_temp[128], bin[128], summary[128];
    const struct ts_yaml *inputs;
    const struct action_case *tc;
    struct {
        char id[32], key[32], value[128];
    } out[ACTION_MAX_OUTPUTS];
    size_t nout;
    uint64_t deadline_ms;
};

/* One run of the Action here: the test's values of its inputs (the rest take their
 * defaults), and what must come of them. No sudo (as-root false): the test may not be root,
 * and when it is nothing changes. */
struct action_case {
    const char *name;
    const char *inputs[8][2];
    int run_status;           /* of the step "run" (connfault-ci's) */
    const char *counts[4];    /* the outputs passed, failed, skipped, errored */
    const char *junit_has[2]; /* in connfault-results/junit.xml */
    const char *junit_lacks;
    const char *summary_has[2]; /* in the step summary */
};

static const struct action_case action_cases[] = {
    /* One built-in scenario of two through --shard 1/2 (ranked by name, connect-close is
     * shard 1), a short grace, a flag through args. */
    {"passes",
     {{"server-cmd", SERVER_CMD},
      {"scenarios", "half-close connect-close"},
      {"args", "-v"},
      {"grace", "1"},
      {"shard", "1/2"},
      {"as-root", "false"}},
     0,
     {"1", "0", "0", "0"},
     {"name=\"connect-close\"", "failures=\"0\""},
     "name=\"half-close\"",
     {"## connfault: passed", "(shard 1/2): 1 passed, 0 failed, 0 skipped, 0 errored"}},
    /* A server that never starts: the run step fails, the counts still come (one errored). */
    {"errors",
     {{"server-cmd", "echo 'no port' {port}; exit 3"},
      {"scenarios", "connect-close"},
      {"as-root", "false"}},
     2,
     {"0", "0", "0", "1"},
     {"name=\"set-up\"", "no port"},
     "name=\"connect-close\"",
     {"## connfault: could not run", "0 passed, 0 failed, 0 skipped, 1 errored"}},
};
#define NACTION_CASES (sizeof(action_cases) / sizeof(action_cases[0]))

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *action_input(const struct action_run *ar, const char *name, size_t len)
{
    for (size_t i = 0; i < 8 && ar->tc->inputs[i][0]; i++)
        if (strlen(ar->tc->inputs[i][0]) == len && strncmp(ar->tc->inputs[i][0], name, len) == 0)
            return ar->tc->inputs[i][1];
    for (size_t i = 0; i < ar->inputs->n; i++)
        if (strlen(ar->inputs->keys[i]) == len && strncmp(ar->inputs->keys[i], name, len) == 0) {
            const char *def = ts_yaml_get_scalar(ar->inputs->values[i], "default");
            return def ? def : "";
        }
    ck_abort_msg("input %.*s is not declared", (int)len, name);
    return NULL;
}

static const char *action_step_output(const struct action_run *ar, const char *ref, size_t len)
{
    for (size_t i = 0; i < ar->nout; i++) {
        char name[96];
        snprintf(name, sizeof(name), "steps.%s.outputs.%s", ar->out[i].id, ar->out[i].key);
        if (strlen(name) == len && strncmp(name, ref, len) == 0)
            return ar->out[i].value;
    }
    ck_abort_msg("%.*s: no such output (yet)", (int)len, ref);
    return NULL;
}

/* The value of one "${{ EXPR }}": the expressions the Action's shell steps use. */
static const char *action_expression(const struct action_run *ar, const char *expr, size_t len)
{
    if (len > 7 && strncmp(expr, "inputs.", 7) == 0)
        return action_input(ar, expr + 7, len - 7);
    if (len == 18 && strncmp(expr, "github.action_path", 18) == 0)
        return CONNFAULT_SOURCE_DIR "/ci/github";
    if (len == 11 && strncmp(expr, "runner.temp", 11) == 0)
        return ar->runner_temp;
    if (len > 6 && strncmp(expr, "steps.", 6) == 0)
        return action_step_output(ar, expr, len);
    ck_abort_msg("the test does not know the expression ${{ %.*s }}", (int)len, expr);
    return NULL;
}

/* text with every "${{ EXPR }}" replaced, as GitHub does before a step runs (new string). */
static char *action_expand(const struct action_run *ar, const char *text)
{
    size_t cap = strlen(text) + 1, n = 0;
    char *out = ts_nonnull(malloc(cap));
    for (const char *s = text; *s;) {
        const char *open = strstr(s, "${{");
        size_t lit = open ? (size_t)(open - s) : strlen(s);
        const char *value = "";
        const char *close = open ? strstr(open, "}}") : NULL;
        if (open) {
            ck_assert_msg(close != NULL, "unterminated ${{ in: %s", text);
            const char *e = open + 3;
            e += strspn(e, " ");
            size_t elen = (size_t)(close - e);
            while (elen > 0 && e[elen - 1] == ' ')
                elen--;
            value = action_expression(ar, e, elen);
        }
        cap += lit + strlen(value);
        out = ts_nonnull(realloc(out, cap));
        memcpy(out + n, s, lit);
        n += lit;
        memcpy(out + n, value, strlen(value));
        n += strlen(value);
        s = open ? close + 2 : s + lit;
    }
    out[n] = '\0';
    return out;
}

/* The "key=value" lines a step wrote to its GITHUB_OUTPUT. */
static void action_read_outputs(struct action_run *ar, const char *id, const char *path)
{
    char *text = ts_slurp(path, NULL);
    if (!text)
        return;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        ck_assert_msg(eq && !strstr(line, "<<"), "step %s: output line %s", id, line);
        ck_assert_uint_lt(ar->nout, ACTION_MAX_OUTPUTS);
        *eq = '\0';
        snprintf(ar->out[ar->nout].id, sizeof(ar->out[0].id), "%s", id);
        snprintf(ar->out[ar->nout].key, sizeof(ar->out[0].key), "%s", line);
        snprintf(ar->out[ar->nout].value, sizeof(ar->out[0].value), "%s", eq + 1);
        ar->nout++;
    }
    free(text);
}

/* The environment of step number i: GitHub's variables, then the step's env: (expanded). */
static size_t action_step_env(const struct action_run *ar, const struct ts_yaml *step, size_t i,
                              char **env, size_t cap)
{
    size_t n = 0;
    env[n++] = ts_nonnull(strdup("GITHUB_ACTION_PATH=" CONNFAULT_SOURCE_DIR "/ci/github"));
    env[n++] = ts_nonnull(strdup("GITHUB_ACTION_REF=test"));
    env[n++] = ts_nonnull(strdup("RUNNER_ARCH=X64"));
    char buf[4096];
    snprintf(buf, sizeof(buf), "GITHUB_OUTPUT=%s/output-%zu", ar->dir, i);
    env[n++] = ts_nonnull(strdup(buf));
    snprintf(buf, sizeof(buf), "GITHUB_STEP_SUMMARY=%s", ar->summary);
    env[n++] = ts_nonnull(strdup(buf));
    snprintf(buf, sizeof(buf), "GITHUB_WORKSPACE=%s", ar->workspace);
    env[n++] = ts_nonnull(strdup(buf));
    snprintf(buf, sizeof(buf), "RUNNER_TEMP=%s", ar->runner_temp);
    env[n++] = ts_nonnull(strdup(buf));
    snprintf(buf, sizeof(buf), "PATH=%s:%.3000s", ar->bin, getenv("PATH") ? getenv("PATH") : "");
    env[n++] = ts_nonnull(strdup(buf));
    const struct ts_yaml *vars = ts_yaml_get(step, "env");
    for (size_t v = 0; vars && v < vars->n; v++) {
        ck_assert_uint_lt(n, cap - 1);
        char *value = action_expand(ar, vars->values[v]->scalar);
        snprintf(buf, sizeof(buf), "%s=%s", vars->keys[v], value);
        free(value);
        env[n++] = ts_nonnull(strdup(buf));
    }
    env[n] = NULL;
    return n;
}

/* Run shell step number i as GitHub would (bash --noprofile --norc -eo pipefail). Its exit
 * status; its outputs are recorded under its id. */
static int action_run_step(struct action_run *ar, const struct ts_yaml *step, size_t i)
{
    char script[128], output[128];
    snprintf(script, sizeof(script), "%s/step-%zu.sh", ar->dir, i);
    snprintf(output, sizeof(output), "%s/output-%zu", ar->dir, i);
    char *run = action_expand(ar, ts_yaml_get_scalar(step, "run"));
    ck_assert_int_eq(ts_write_file(script, run), 0);
    free(run);
    char *env[32];
    size_t nenv = action_step_env(ar, step, i, env, 32);
    uint64_t now = now_ms();
    ck_assert_msg(now < ar->deadline_ms, "the Action's steps took over %d ms",
                  ACTION_RUN_BUDGET_MS);
    struct ts_proc p;
    const struct ts_run_opts opts = {.timeout_ms = (int)(ar->deadline_ms - now),
                                     .dir = ar->workspace,
                                     .env = (const char *const *)env,
                                     .merge_stderr = true};
    ck_assert_int_eq(
        ts_run(&p, TS_ARGV("bash", "--noprofile", "--norc", "-eo", "pipefail", script), &opts), 0);
    printf("action step %zu (%s): exit status %d, %llu ms\n", i + 1,
           ts_yaml_get_scalar(step, "name"), p.status, (unsigned long long)(now_ms() - now));
    ck_assert_msg(!p.timed_out, "step %zu: still running at the deadline:\n%s", i + 1, p.out);
    const char *id = ts_yaml_get_scalar(step, "id");
    int want = id && strcmp(id, "run") == 0 ? ar->tc->run_status : 0;
    ck_assert_msg(p.status == want, "step %zu (%s): exit status %d, expected %d:\n%s", i + 1,
                  ts_yaml_get_scalar(step, "name"), p.status, want, p.out);
    if (id)
        action_read_outputs(ar, id, output);
    int status = p.status;
    ts_proc_free(&p);
    for (size_t e = 0; e < nenv; e++)
        free(env[e]);
    return status;
}

/* The temp dir is made and removed by the parent (an unchecked fixture), so a failing step
 * leaves nothing behind either. */
static char action_dir[64];

static void action_dir_create(void)
{
    if (ts_tmpdir_create(action_dir, sizeof(action_dir), "test_ci_action") < 0)
        action_dir[0] = '\0';
}

static void action_dir_remove(void)
{
    if (action_dir[0])
        ts_tmpdir_remove(action_dir);
}

static void action_run_setup(struct action_run *ar, const struct ts_yaml *inputs,
                             const struct action_case *tc)
{
    memset(ar, 0, sizeof(*ar));
    ar->inputs = inputs;
    ar->tc = tc;
    ar->deadline_ms = now_ms() + ACTION_RUN_BUDGET_MS;
    ck_assert_msg(action_dir[0], "no temp dir");
    snprintf(ar->dir, sizeof(ar->dir), "%s/%s", action_dir, tc->name);
    ck_assert_int_eq(mkdir(ar->dir, 0700), 0);
    snprintf(ar->workspace, sizeof(ar->workspace), "%s/workspace", ar->dir);
    snprintf(ar->runner_temp, sizeof(ar->runner_temp), "%s/runner-temp", ar->dir);
    snprintf(ar->bin, sizeof(ar->bin), "%s/bin", ar->dir);
    snprintf(ar->summary, sizeof(ar->summary), "%s/step-summary.md", ar->dir);
    ck_assert_int_eq(mkdir(ar->workspace, 0700), 0);
    ck_assert_int_eq(mkdir(ar->runner_temp, 0700), 0);
    ck_assert_int_eq(mkdir(ar->bin, 0700), 0);
    char path[160];
    snprintf(path, sizeof(path), "%s/apt-get", ar->bin);
    ck_assert_int_eq(ts_write_file(path, "#!/bin/sh\necho \"apt-get (test stub, installs "
                                         "nothing): $*\" >&2\n"),
                     0);
    ck_assert_int_eq(chmod(path, 0755), 0);

    /* actions/cache cannot run here: a hit is simulated by this test's own build tree (the
     * directory of CONNFAULT_BIN's harness/), so the build step has nothing to do. */
    char build[512], link[160];
    snprintf(build, sizeof(build), "%s", CONNFAULT_BIN);
    for (int up = 0; up < 2; up++)
        *strrchr(build, '/') = '\0';
    snprintf(link, sizeof(link), "%s/connfault-build", ar->runner_temp);
    ck_assert_int_eq(symlink(build, link), 0);
}

static void check_action_results(struct action_run *ar, const struct ts_yaml *outputs)
{
    for (size_t i = 0; i < NACTION_OUTPUTS; i++) {
        const char *ref = ts_yaml_get_scalar(ts_yaml_get(outputs, action_outputs[i]), "value");
        char *value = action_expand(ar, ref);
        ck_assert_msg(strcmp(value, ar->tc->counts[i]) == 0, "output %s: %s, expected %s",
                      action_outputs[i], value, ar->tc->counts[i]);
        free(value);
    }
    const char *shard = action_input(ar, "shard", 5);
    ck_assert_str_eq(action_step_output(ar, "steps.counts.outputs.artifact", 29),
                     strcmp(shard, "1/2") == 0 ? "connfault-results-1-of-2" : "connfault-results");
    char path[160];
    snprintf(path, sizeof(path), "%s/" RESULTS_DIR "/junit.xml", ar->workspace);
    char *junit = ts_slurp(path, NULL);
    ck_assert_msg(junit != NULL, "no %s", path);
    for (size_t i = 0; i < 2; i++)
        ck_assert_msg(strstr(junit, ar->tc->junit_has[i]), "%s not in:\n%s", ar->tc->junit_has[i],
                      junit);
    ck_assert_msg(!strstr(junit, ar->tc->junit_lacks), "%s in:\n%s", ar->tc->junit_lacks, junit);
    free(junit);
    char *summary = ts_slurp(ar->summary, NULL);
    for (size_t i = 0; i < 2; i++)
        ck_assert_msg(summary && strstr(summary, ar->tc->summary_has[i]),
                      "\"%s\" not in the step summary:\n%s", ar->tc->summary_has[i], summary);
    free(summary);
}

/* Shell steps run in order; after a failed one only those with `if: always()` (GitHub's
 * rule); uses: steps are named in the log and skipped. */
START_TEST(github_action_steps_run_here)
{
    const struct action_case *tc = &action_cases[_i];
    printf("the Action, case \"%s\":\n", tc->name);
    struct ts_yaml *root = parse_file_or_fail(ACTION_FILE);
    struct action_run ar;
    action_run_setup(&ar, ts_yaml_get(root, "inputs"), tc);
    const struct ts_yaml *steps = ts_yaml_get(ts_yaml_get(root, "runs"), "steps");
    size_t ran = 0;
    bool failed = false;
    for (size_t i = 0; i < steps->n; i++) {
        const struct ts_yaml *step = steps->values[i];
        const char *uses = ts_yaml_get_scalar(step, "uses");
        const char *name = ts_yaml_get_scalar(step, "name");
        if (uses) {
            printf("action step %zu (%s): skipped, uses: %s needs GitHub\n", i + 1, name, uses);
        } else if (failed && !ts_yaml_get_scalar(step, "if")) {
            printf("action step %zu (%s): skipped after a failed step\n", i + 1, name);
        } else {
            failed |= action_run_step(&ar, step, i) != 0;
            ran++;
        }
    }
    ck_assert_uint_ge(ran, 4);
    check_action_results(&ar, ts_yaml_get(root, "outputs"));
    ts_yaml_free(root);
}
END_TEST

int main(void)
{
    /* The scripts write temp files and start servers: run them with a known environment. */
    unsetenv("CONNFAULT");
    setvbuf(stdout, NULL, _IOLBF, 0); /* the Action's step log survives a failing step */
    Suite *s = suite_create("ci_files");
    TCase *yaml = tcase_create("yaml");
    tcase_add_test(yaml, yaml_reads_the_subset);
    tcase_add_loop_test(yaml, yaml_rejects_what_it_does_not_understand, 0,
                        (int)(sizeof(bad_yaml) / sizeof(bad_yaml[0])));
    suite_add_tcase(s, yaml);
    TCase *files = tcase_create("ci files");
    tcase_set_timeout(files, 30);
    tcase_add_test(files, github_action_is_valid_and_matches_the_cli);
    tcase_add_test(files, github_workflow_uses_the_action);
    tcase_add_test(files, readme_workflow_is_ten_valid_lines);
    tcase_add_test(files, gitlab_job_is_valid_and_matches_the_cli);
    tcase_add_test(files, man_pages_document_every_flag_of_the_help);
    tcase_add_loop_test(files, scripts_answer_help_and_refuse_unknown_options, 0, (int)NSCRIPTS);
    tcase_add_test(files, every_script_is_tested);
    suite_add_tcase(s, files);
    TCase *runs = tcase_create("connfault-ci runs");
    tcase_set_timeout(runs, CI_RUN_TIMEOUT_MS / 1000 + 30);
    tcase_add_test(runs, connfault_ci_passes_the_correct_server);
    tcase_add_test(runs, connfault_ci_fails_a_server_killed_by_sigpipe);
    tcase_add_test(runs, connfault_ci_reports_a_server_that_does_not_start);
    tcase_add_test(runs, connfault_ci_refuses_bad_usage);
    suite_add_tcase(s, runs);
    TCase *action = tcase_create("action steps");
    tcase_set_timeout(action, ACTION_RUN_BUDGET_MS / 1000 + 10);
    tcase_add_unchecked_fixture(action, action_dir_create, action_dir_remove);
    tcase_add_loop_test(action, github_action_steps_run_here, 0, (int)NACTION_CASES);
    suite_add_tcase(s, action);
    return ts_run_suite(s);
}
