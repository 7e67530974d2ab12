/* The CI files users copy: ci/github/connfault.yml and ci/gitlab/connfault.yml must be valid
 * YAML, run only scripts that exist in this repository with flags those scripts and
 * `connfault run` accept, and publish what ci/connfault-ci writes. Then ci/connfault-ci itself
 * runs against the reference server: a pass on the correct server, a failure on `alive` with
 * --bug sigpipe, an errored testcase when the server does not start.
 *
 * The YAML checker below reads the block-style subset CI files are written in (mappings,
 * sequences, plain and quoted scalars, | and > block scalars, [a, b] lists, comments) and
 * rejects the rest (anchors, tags, flow mappings, tabs in indentation, bad indentation,
 * duplicate keys, ": " in a plain scalar) rather than guessing: a file it accepts means the
 * same thing to GitHub's and GitLab's parsers. Written here instead of linking libyaml so the
 * project needs no extra package for one test. */
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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
#define GITLAB_FILE       CONNFAULT_SOURCE_DIR "/ci/gitlab/connfault.yml"
#define RESULTS_DIR       "connfault-results" /* --out of both CI files */
#define CI_RUN_TIMEOUT_MS 180000

/* ---- YAML subset ---------------------------------------------------------------------- */

enum yaml_kind { YAML_SCALAR, YAML_MAP, YAML_SEQ };

struct yaml_node {
    enum yaml_kind kind;
    int line;
    char *scalar;              /* YAML_SCALAR; "" for an empty value */
    size_t n;                  /* entries of a map, items of a sequence */
    char **keys;               /* YAML_MAP */
    struct yaml_node **values; /* map values or sequence items */
};

struct yaml_line {
    int number; /* 1-based, for messages */
    int indent; /* leading spaces */
    char *text; /* after the indentation; may be moved on by a sequence item's "- " */
};

struct yaml_parser {
    struct yaml_line *lines;
    size_t nlines, pos;
    char *buf; /* the file, split in place into lines */
    char error[256];
};

static void yaml_free(struct yaml_node *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->n; i++) {
        if (node->keys)
            free(node->keys[i]);
        yaml_free(node->values[i]);
    }
    free(node->keys);
    free(node->values);
    free(node->scalar);
    free(node);
}

static struct yaml_node *yaml_node_new(enum yaml_kind kind, int line)
{
    struct yaml_node *node = calloc(1, sizeof(*node));
    ck_assert_ptr_nonnull(node);
    node->kind = kind;
    node->line = line;
    return node;
}

static void yaml_append(struct yaml_node *parent, char *key, struct yaml_node *value)
{
    parent->values = realloc(parent->values, (parent->n + 1) * sizeof(*parent->values));
    ck_assert_ptr_nonnull(parent->values);
    if (parent->kind == YAML_MAP) {
        parent->keys = realloc(parent->keys, (parent->n + 1) * sizeof(*parent->keys));
        ck_assert_ptr_nonnull(parent->keys);
        parent->keys[parent->n] = key;
    }
    parent->values[parent->n++] = value;
}

static struct yaml_node *yaml_scalar_new(const char *text, size_t len, int line)
{
    struct yaml_node *node = yaml_node_new(YAML_SCALAR, line);
    node->scalar = strndup(text, len);
    ck_assert_ptr_nonnull(node->scalar);
    return node;
}

static bool yaml_fail(struct yaml_parser *p, int line, const char *what)
{
    if (p->error[0] == '\0')
        snprintf(p->error, sizeof(p->error), "line %d: %s", line, what);
    return false;
}

static bool yaml_is_comment_or_blank(const char *text)
{
    return text[0] == '\0' || text[0] == '#';
}

/* The next line that carries structure (not blank, not only a comment), or NULL. */
static struct yaml_line *yaml_peek(struct yaml_parser *p)
{
    while (p->pos < p->nlines && yaml_is_comment_or_blank(p->lines[p->pos].text))
        p->pos++;
    return p->pos < p->nlines ? &p->lines[p->pos] : NULL;
}

static bool yaml_is_seq_item(const char *text)
{
    return text[0] == '-' && (text[1] == '\0' || text[1] == ' ');
}

/* After a scalar, only blanks and a comment may follow. */
static bool yaml_rest_is_empty(const char *rest)
{
    while (*rest == ' ')
        rest++;
    return *rest == '\0' || *rest == '#';
}

/* A quoted scalar at text[0]; *end gets the first byte after the closing quote. */
static char *yaml_unquote(const char *text, const char **end)
{
    char quote = text[0];
    char *out = malloc(strlen(text) + 1);
    ck_assert_ptr_nonnull(out);
    size_t n = 0;
    for (const char *s = text + 1; *s; s++) {
        if (*s == quote && quote == '\'' && s[1] == '\'') {
            out[n++] = '\'';
            s++;
        } else if (*s == quote) {
            out[n] = '\0';
            *end = s + 1;
            return out;
        } else if (*s == '\\' && quote == '"' && s[1]) {
            s++;
            out[n++] = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
        } else {
            out[n++] = *s;
        }
    }
    free(out);
    return NULL;
}

/* A plain scalar ends at " #"; it may not hold ": " (YAML would read a mapping there). */
static struct yaml_node *yaml_plain(struct yaml_parser *p, const char *text, int line)
{
    if ((text[0] && strchr("&*!{}%@`|>?,]", text[0])) || yaml_is_seq_item(text)) {
        yaml_fail(p, line, "unsupported or reserved start of a scalar (quote it)");
        return NULL;
    }
    size_t len = 0;
    while (text[len] && !(text[len] == '#' && len > 0 && text[len - 1] == ' '))
        len++;
    while (len > 0 && text[len - 1] == ' ')
        len--;
    for (size_t i = 0; i < len; i++)
        if (text[i] == ':' && (i + 1 == len || text[i + 1] == ' ')) {
            yaml_fail(p, line, "\": \" inside a plain scalar (quote the value)");
            return NULL;
        }
    return yaml_scalar_new(text, len, line);
}

/* [a, "b", c]: one level, scalars only. */
static struct yaml_node *yaml_flow_seq(struct yaml_parser *p, const char *text, int line)
{
    struct yaml_node *seq = yaml_node_new(YAML_SEQ, line);
    const char *s = text + 1;
    for (;;) {
        while (*s == ' ')
            s++;
        if (*s == ']' && seq->n == 0)
            break;
        const char *item_end;
        char *item;
        if (*s == '"' || *s == '\'') {
            item = yaml_unquote(s, &item_end);
        } else {
            item_end = s + strcspn(s, ",]");
            const char *e = item_end;
            while (e > s && e[-1] == ' ')
                e--;
            item = strndup(s, (size_t)(e - s));
            if (item && (item[0] == '\0' || strchr("[{&*!", item[0]))) {
                free(item);
                item = NULL;
            }
        }
        if (!item) {
            yaml_fail(p, line, "bad item in a [ ] list");
            yaml_free(seq);
            return NULL;
        }
        struct yaml_node *node = yaml_node_new(YAML_SCALAR, line);
        node->scalar = item;
        yaml_append(seq, NULL, node);
        s = item_end;
        while (*s == ' ')
            s++;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == ']')
            break;
        yaml_fail(p, line, "unterminated [ ] list");
        yaml_free(seq);
        return NULL;
    }
    if (!yaml_rest_is_empty(s + 1)) {
        yaml_fail(p, line, "text after a [ ] list");
        yaml_free(seq);
        return NULL;
    }
    return seq;
}

/* A value written on the same line as its key or dash. */
static struct yaml_node *yaml_inline_value(struct yaml_parser *p, const char *text, int line)
{
    if (text[0] == '"' || text[0] == '\'') {
        const char *end;
        char *value = yaml_unquote(text, &end);
        if (!value) {
            yaml_fail(p, line, "unterminated quoted scalar");
            return NULL;
        }
        if (!yaml_rest_is_empty(end)) {
            free(value);
            yaml_fail(p, line, "text after a quoted scalar");
            return NULL;
        }
        struct yaml_node *node = yaml_node_new(YAML_SCALAR, line);
        node->scalar = value;
        return node;
    }
    if (text[0] == '[')
        return yaml_flow_seq(p, text, line);
    return yaml_plain(p, text, line);
}

/* | or > after a key: the following lines indented deeper than the key are its text. */
static struct yaml_node *yaml_block_scalar(struct yaml_parser *p, const char *indicator,
                                           int key_indent, int line)
{
    bool folded = indicator[0] == '>';
    char chomp = indicator[1] == '-' || indicator[1] == '+' ? indicator[1] : 'c';
    if (!yaml_rest_is_empty(indicator + (chomp == 'c' ? 1 : 2))) {
        yaml_fail(p, line, "bad block scalar indicator (use |, |-, |+, >, >- or >+)");
        return NULL;
    }
    size_t cap = 64, len = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    int block_indent = -1;
    bool previous_blank = true;
    for (; p->pos < p->nlines; p->pos++) {
        struct yaml_line *l = &p->lines[p->pos];
        bool blank = l->text[0] == '\0';
        if (!blank && l->indent <= key_indent)
            break;
        if (!blank && block_indent < 0)
            block_indent = l->indent;
        if (!blank && l->indent < block_indent) {
            free(text);
            yaml_fail(p, l->number, "block scalar line indented less than its first line");
            return NULL;
        }
        size_t extra = blank ? 0 : (size_t)(l->indent - block_indent);
        size_t need = len + extra + strlen(l->text) + 2;
        if (need > cap) {
            cap = need * 2;
            text = realloc(text, cap);
            ck_assert_ptr_nonnull(text);
        }
        /* Folding joins neighbouring lines with a blank, and a run of N blank lines becomes N
         * newlines (the first one replaces the break after the text); | keeps every newline. */
        bool was_blank = previous_blank;
        previous_blank = blank;
        if (folded && !blank && !was_blank && len > 0)
            text[len - 1] = ' ';
        if (folded && blank && !was_blank)
            continue;
        memset(text + len, ' ', extra);
        len += extra;
        len += (size_t)sprintf(text + len, "%s\n", l->text);
    }
    if (chomp != '+')
        while (len > 0 && text[len - 1] == '\n')
            len--;
    if (chomp == 'c' && len > 0)
        text[len++] = '\n';
    text[len] = '\0';
    struct yaml_node *node = yaml_node_new(YAML_SCALAR, line);
    node->scalar = text;
    return node;
}

static struct yaml_node *yaml_block(struct yaml_parser *p, int indent);

/* The value of "key:" with nothing after it: a deeper block, a sequence at the key's own
 * indentation (allowed by YAML), or empty. */
static struct yaml_node *yaml_nested_value(struct yaml_parser *p, int key_indent, int line)
{
    struct yaml_line *next = yaml_peek(p);
    if (next && next->indent > key_indent)
        return yaml_block(p, next->indent);
    if (next && next->indent == key_indent && yaml_is_seq_item(next->text))
        return yaml_block(p, key_indent);
    return yaml_scalar_new("", 0, line);
}

/* key: value, where key is plain. Returns the offset of the value, or -1. */
static int yaml_split_key(const char *text)
{
    if (!isalnum((unsigned char)text[0]) && text[0] != '_' && text[0] != '.')
        return -1;
    for (int i = 0; text[i]; i++) {
        if (text[i] == ':' && (text[i + 1] == '\0' || text[i + 1] == ' '))
            return i;
        if (text[i] == '#' && i > 0 && text[i - 1] == ' ')
            return -1;
    }
    return -1;
}

static struct yaml_node *yaml_map(struct yaml_parser *p, int indent)
{
    struct yaml_node *map = yaml_node_new(YAML_MAP, p->lines[p->pos].number);
    struct yaml_line *l;
    while ((l = yaml_peek(p)) && l->indent >= indent) {
        if (l->indent > indent || yaml_is_seq_item(l->text)) {
            yaml_fail(p, l->number, "unexpected indentation or '-' inside a mapping");
            goto fail;
        }
        int colon = yaml_split_key(l->text);
        if (colon < 0) {
            yaml_fail(p, l->number, "expected \"key: value\"");
            goto fail;
        }
        int key_len = colon;
        while (key_len > 0 && l->text[key_len - 1] == ' ')
            key_len--;
        char *key = strndup(l->text, (size_t)key_len);
        ck_assert_ptr_nonnull(key);
        for (size_t i = 0; i < map->n; i++)
            if (strcmp(map->keys[i], key) == 0) {
                free(key);
                yaml_fail(p, l->number, "duplicate key");
                goto fail;
            }
        const char *value = l->text + colon + 1;
        while (*value == ' ')
            value++;
        int line = l->number;
        p->pos++;
        struct yaml_node *child;
        if (yaml_is_comment_or_blank(value))
            child = yaml_nested_value(p, indent, line);
        else if (value[0] == '|' || value[0] == '>')
            child = yaml_block_scalar(p, value, indent, line);
        else
            child = yaml_inline_value(p, value, line);
        if (!child) {
            free(key);
            goto fail;
        }
        yaml_append(map, key, child);
    }
    return map;
fail:
    yaml_free(map);
    return NULL;
}

static struct yaml_node *yaml_seq(struct yaml_parser *p, int indent)
{
    struct yaml_node *seq = yaml_node_new(YAML_SEQ, p->lines[p->pos].number);
    struct yaml_line *l;
    while ((l = yaml_peek(p)) && l->indent >= indent && yaml_is_seq_item(l->text)) {
        if (l->indent > indent) {
            yaml_fail(p, l->number, "unexpected indentation in a sequence");
            goto fail;
        }
        int offset = 1;
        while (l->text[offset] == ' ')
            offset++;
        const char *rest = l->text + offset;
        struct yaml_node *item;
        if (yaml_is_comment_or_blank(rest)) {
            int line = l->number;
            p->pos++;
            item = yaml_nested_value(p, indent, line);
        } else if (yaml_split_key(rest) >= 0 || yaml_is_seq_item(rest)) {
            /* "- key: value" opens a mapping whose keys line up with "key". */
            l->indent += offset;
            l->text += offset;
            item = yaml_block(p, l->indent);
        } else {
            item = yaml_inline_value(p, rest, l->number);
            p->pos++;
        }
        if (!item)
            goto fail;
        yaml_append(seq, NULL, item);
    }
    if (l && l->indent > indent) {
        yaml_fail(p, l->number, "unexpected indentation after a sequence");
        goto fail;
    }
    return seq;
fail:
    yaml_free(seq);
    return NULL;
}

static struct yaml_node *yaml_block(struct yaml_parser *p, int indent)
{
    struct yaml_line *l = yaml_peek(p);
    return yaml_is_seq_item(l->text) ? yaml_seq(p, indent) : yaml_map(p, indent);
}

/* Parses text (modified in place, kept by the caller) into a tree; NULL with error set. */
static struct yaml_node *yaml_parse(char *text, char *error, size_t error_len)
{
    struct yaml_parser p = {0};
    size_t cap = 0;
    int number = 0;
    for (char *s = text; s && *s;) {
        char *nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        number++;
        if (nl > s && nl[-1] == '\r')
            nl[-1] = '\0';
        if (p.nlines == cap) {
            cap = cap ? cap * 2 : 64;
            p.lines = realloc(p.lines, cap * sizeof(*p.lines));
            ck_assert_ptr_nonnull(p.lines);
        }
        int indent = 0;
        while (s[indent] == ' ')
            indent++;
        if (s[indent] == '\t')
            yaml_fail(&p, number, "tab in indentation");
        /* A line of blanks counts as empty (it may sit inside a block scalar). */
        char *body = s + indent;
        if (body[strspn(body, " \t")] == '\0')
            body += strlen(body);
        p.lines[p.nlines++] = (struct yaml_line){number, indent, body};
        s = nl ? nl + 1 : NULL;
    }
    struct yaml_node *root = NULL;
    struct yaml_line *first = p.error[0] ? NULL : yaml_peek(&p);
    if (first && strncmp(first->text, "---", 3) == 0)
        yaml_fail(&p, first->number, "documents markers are not supported");
    else if (first && first->indent != 0)
        yaml_fail(&p, first->number, "the document must start at column 1");
    else if (first)
        root = yaml_block(&p, 0);
    else if (!p.error[0])
        yaml_fail(&p, number, "empty document");
    struct yaml_line *trailing = root ? yaml_peek(&p) : NULL;
    if (trailing) {
        yaml_fail(&p, trailing->number, "unexpected indentation");
        yaml_free(root);
        root = NULL;
    }
    snprintf(error, error_len, "%s", p.error);
    free(p.lines);
    if (p.error[0] && root) {
        yaml_free(root);
        root = NULL;
    }
    return root;
}

static const struct yaml_node *yaml_get(const struct yaml_node *map, const char *key)
{
    if (!map || map->kind != YAML_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->values[i];
    return NULL;
}

static const char *yaml_get_scalar(const struct yaml_node *map, const char *key)
{
    const struct yaml_node *node = yaml_get(map, key);
    return node && node->kind == YAML_SCALAR ? node->scalar : NULL;
}

/* ---- helpers ------------------------------------------------------------------------ */

static char *read_whole_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static struct yaml_node *parse_file_or_fail(const char *path, char **text)
{
    *text = read_whole_file(path);
    ck_assert_msg(*text != NULL, "%s: %s", path, strerror(errno));
    char error[256];
    struct yaml_node *root = yaml_parse(*text, error, sizeof(error));
    ck_assert_msg(root != NULL, "%s: %s", path, error);
    ck_assert_int_eq(root->kind, YAML_MAP);
    return root;
}

/* Output of a command (stdout and stderr), read whole. */
static char *command_output(const char *command)
{
    FILE *f = popen(command, "r");
    ck_assert_ptr_nonnull(f);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    buf[len] = '\0';
    ck_assert_int_eq(pclose(f), 0);
    return buf;
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
    const struct yaml_node *variables; /* env (GitHub) or variables (GitLab) */
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
        bool from_ci = strcmp(var, "PATH") == 0 || strcmp(var, "RUNNER_TEMP") == 0 ||
                       strncmp(var, "GITHUB_", 7) == 0 || strncmp(var, "CI_", 3) == 0;
        ck_assert_msg(from_ci || yaml_get(cf->variables, var),
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
            const char *value = yaml_get_scalar(cf->variables, "CONNFAULT_ARGS");
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
        ci_help = command_output("'" CI_SCRIPT "' --help 2>&1");
        run_help = command_output("'" CONNFAULT_BIN "' run --help 2>&1");
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

/* What both files share: the variables a user sets, and a call of ci/setup and connfault-ci. */
static void check_variables(const struct ci_file *cf)
{
    ck_assert_msg(cf->variables && cf->variables->kind == YAML_MAP, "%s: no variables", cf->path);
    static const char *const names[] = {"CONNFAULT_REPO", "CONNFAULT_REF", "SERVER_CMD",
                                        "SCENARIOS", "CONNFAULT_ARGS"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_msg(yaml_get_scalar(cf->variables, names[i]), "%s: no variable %s", cf->path,
                      names[i]);
    ck_assert_msg(strstr(yaml_get_scalar(cf->variables, "SERVER_CMD"), "{port}"),
                  "%s: SERVER_CMD has no {port}", cf->path);
}

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

static void check_man_page(const char *help_command, const char *man_path)
{
    char *help = command_output(help_command);
    char *man = read_whole_file(man_path);
    ck_assert_msg(man != NULL, "%s: %s", man_path, strerror(errno));
    struct flag_check in_man = {man, man_path, true};
    for_each_flag(help, false, true, flag_must_be_in_other, &in_man);
    struct flag_check in_help = {help, help_command, false};
    for_each_flag(man, true, false, flag_must_be_in_other, &in_help);
    free(help);
    free(man);
}

START_TEST(man_pages_document_every_flag_of_the_help)
{
    check_man_page("'" CONNFAULT_BIN "' run --help 2>&1",
                   CONNFAULT_SOURCE_DIR "/harness/connfault.1");
    check_man_page("'" CONNFAULT_SERVER_BIN "' --help 2>&1",
                   CONNFAULT_SOURCE_DIR "/server/connfault-server.1");
}
END_TEST

/* ---- tests: the YAML checker itself --------------------------------------------------- */

static struct yaml_node *parse_string(const char *yaml, char *error, size_t len)
{
    char *copy = strdup(yaml);
    ck_assert_ptr_nonnull(copy);
    struct yaml_node *root = yaml_parse(copy, error, len);
    /* The tree owns copies of every string: the text can go. */
    free(copy);
    return root;
}

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
    struct yaml_node *root = parse_string(yaml, error, sizeof(error));
    ck_assert_msg(root != NULL, "%s", error);
    ck_assert_str_eq(yaml_get_scalar(root, "name"), "ci");
    ck_assert_str_eq(yaml_get_scalar(yaml_get(root, "on"), "push"), "");
    const struct yaml_node *list = yaml_get(root, "list");
    ck_assert_uint_eq(list->n, 3);
    ck_assert_str_eq(list->values[1]->scalar, "b c");
    ck_assert_str_eq(list->values[2]->scalar, "d'e");
    const struct yaml_node *steps = yaml_get(root, "steps");
    ck_assert_int_eq(steps->kind, YAML_SEQ);
    ck_assert_uint_eq(steps->n, 2);
    ck_assert_str_eq(yaml_get_scalar(steps->values[0], "run"),
                     "echo a\n\n  indented # not a comment\n");
    ck_assert_str_eq(yaml_get_scalar(yaml_get(steps->values[1], "with"), "k"), "q\"uote");
    ck_assert_str_eq(yaml_get_scalar(root, "folded"), "a b");
    ck_assert_uint_eq(yaml_get(root, "seq")->n, 2);
    ck_assert_str_eq(yaml_get(root, "seq")->values[1]->scalar, "two words");
    yaml_free(root);
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
    struct yaml_node *root = parse_string(bad_yaml[_i].yaml, error, sizeof(error));
    ck_assert_msg(root == NULL, "accepted: %s", bad_yaml[_i].yaml);
    ck_assert_msg(strncmp(error, bad_yaml[_i].error, strlen(bad_yaml[_i].error)) == 0,
                  "error for %s: got \"%s\", expected \"%s...\"", bad_yaml[_i].yaml, error,
                  bad_yaml[_i].error);
}
END_TEST

/* ---- tests: the two CI files ----------------------------------------------------------- */

START_TEST(github_workflow_is_valid_and_matches_the_cli)
{
    char *text;
    struct yaml_node *root = parse_file_or_fail(GITHUB_FILE, &text);
    struct ci_file cf = {.path = GITHUB_FILE, .variables = yaml_get(root, "env")};
    check_variables(&cf);
    ck_assert_ptr_nonnull(yaml_get_scalar(root, "name"));
    ck_assert_ptr_nonnull(yaml_get(root, "on"));
    const struct yaml_node *jobs = yaml_get(root, "jobs");
    ck_assert_msg(jobs && jobs->kind == YAML_MAP && jobs->n > 0, "no jobs");

    bool published_junit = false, uploaded = false;
    for (size_t j = 0; j < jobs->n; j++) {
        const struct yaml_node *job = jobs->values[j];
        ck_assert_msg(yaml_get_scalar(job, "runs-on"), "job %s: no runs-on", jobs->keys[j]);
        const struct yaml_node *steps = yaml_get(job, "steps");
        ck_assert_msg(steps && steps->kind == YAML_SEQ, "job %s: no steps", jobs->keys[j]);
        for (size_t s = 0; s < steps->n; s++) {
            const struct yaml_node *step = steps->values[s];
            const char *run = yaml_get_scalar(step, "run");
            const char *uses = yaml_get_scalar(step, "uses");
            ck_assert_msg((run != NULL) != (uses != NULL),
                          "step at line %d needs exactly one of run and uses", step->line);
            if (run) {
                check_commands(&cf, run);
                continue;
            }
            ck_assert_msg(strchr(uses, '@'), "line %d: pin the action's version", step->line);
            const struct yaml_node *with = yaml_get(step, "with");
            const char *when = yaml_get_scalar(step, "if");
            if (strncmp(uses, "mikepenz/action-junit-report@", 29) == 0) {
                ck_assert_str_eq(yaml_get_scalar(with, "report_paths"), RESULTS_DIR "/junit.xml");
                ck_assert_msg(when && strcmp(when, "always()") == 0, "report only on success");
                published_junit = true;
            }
            if (strncmp(uses, "actions/upload-artifact@", 24) == 0) {
                ck_assert_str_eq(yaml_get_scalar(with, "path"), RESULTS_DIR "/");
                ck_assert_msg(when && strcmp(when, "always()") == 0, "artifacts only on success");
                uploaded = true;
            }
        }
    }
    check_calls(&cf);
    ck_assert_msg(published_junit, "the JUnit report is not published");
    ck_assert_msg(uploaded, "the results are not uploaded");
    yaml_free(root);
    free(text);
}
END_TEST

static void check_script_list(struct ci_file *cf, const struct yaml_node *list)
{
    if (!list)
        return;
    ck_assert_msg(list->kind == YAML_SEQ, "%s: line %d: a script is a list", cf->path, list->line);
    for (size_t i = 0; i < list->n; i++) {
        ck_assert_int_eq(list->values[i]->kind, YAML_SCALAR);
        check_commands(cf, list->values[i]->scalar);
    }
}

START_TEST(gitlab_job_is_valid_and_matches_the_cli)
{
    char *text;
    struct yaml_node *root = parse_file_or_fail(GITLAB_FILE, &text);
    const struct yaml_node *job = yaml_get(root, "connfault");
    ck_assert_msg(job && job->kind == YAML_MAP, "no job \"connfault\"");
    struct ci_file cf = {.path = GITLAB_FILE, .variables = yaml_get(job, "variables")};
    check_variables(&cf);
    ck_assert_ptr_nonnull(yaml_get_scalar(job, "image"));
    check_script_list(&cf, yaml_get(job, "before_script"));
    ck_assert_ptr_nonnull(yaml_get(job, "script"));
    check_script_list(&cf, yaml_get(job, "script"));
    check_calls(&cf);

    const struct yaml_node *artifacts = yaml_get(job, "artifacts");
    ck_assert_str_eq(yaml_get_scalar(artifacts, "when"), "always");
    ck_assert_str_eq(yaml_get_scalar(yaml_get(artifacts, "reports"), "junit"),
                     RESULTS_DIR "/junit.xml");
    const struct yaml_node *paths = yaml_get(artifacts, "paths");
    ck_assert_msg(paths && paths->kind == YAML_SEQ && paths->n == 1, "artifacts: paths");
    ck_assert_str_eq(paths->values[0]->scalar, RESULTS_DIR "/");
    yaml_free(root);
    free(text);
}
END_TEST

/* ---- tests: ci/connfault-ci against the reference server ------------------------------- */

struct ci_run {
    char dir[64]; /* temp dir: results in dir/out, the script's output in dir/log */
    char out[96];
    char path[160];
    int status; /* exit status, -1 if killed */
};

/* Runs ci/connfault-ci with args (NULL-terminated) and waits, bounded, in its own process
 * group so that a timeout takes the server with it. */
static void ci_run(struct ci_run *r, const char *const *args)
{
    snprintf(r->dir, sizeof(r->dir), "/tmp/test_ci_files.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(r->dir));
    snprintf(r->out, sizeof(r->out), "%s/out", r->dir);
    char log[96], summary[96];
    snprintf(log, sizeof(log), "%s/log", r->dir);
    snprintf(summary, sizeof(summary), "%s/step-summary.md", r->dir);

    const char *argv[32] = {CI_SCRIPT, "--connfault", CONNFAULT_BIN, "--out", r->out};
    size_t argc = 5;
    for (size_t i = 0; args[i]; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(127);
        setenv("GITHUB_STEP_SUMMARY", summary, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    ck_assert_int_ge(pidfd, 0);
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    int ready;
    do
        ready = poll(&pfd, 1, CI_RUN_TIMEOUT_MS);
    while (ready < 0 && errno == EINTR);
    close(pidfd);
    if (ready == 0)
        kill(-pid, SIGKILL);
    int wstatus;
    ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
    r->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
}

static char *ci_run_file(const struct ci_run *r, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", r->out, name);
    char *text = read_whole_file(path);
    if (!text) {
        char log[128];
        snprintf(log, sizeof(log), "%s/log", r->dir);
        char *output = read_whole_file(log);
        ck_abort_msg("no %s; connfault-ci said:\n%s", name, output ? output : "(nothing)");
    }
    return text;
}

static void ci_run_cleanup(struct ci_run *r)
{
    char command[160];
    snprintf(command, sizeof(command), "rm -rf '%s'", r->dir);
    ck_assert_int_eq(system(command), 0);
}

#define SERVER_CMD CONNFAULT_SERVER_BIN " --port {port} --header-timeout 1 --send-timeout 1 -q"

START_TEST(connfault_ci_passes_the_correct_server)
{
    /* A scenario file of the user's, found through a glob, next to a built-in name. */
    char mine[] = "/tmp/test_ci_scenarios.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(mine));
    char command[512], scenarios[256];
    snprintf(command, sizeof(command), "cp '%s/scenarios/half-close.ini' '%s/mine.ini'",
             CONNFAULT_SOURCE_DIR, mine);
    ck_assert_int_eq(system(command), 0);
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
    char *help = command_output("'" CONNFAULT_BIN "' run --help 2>&1");
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
    char *md = read_whole_file(step_summary);
    ck_assert_msg(md && strstr(md, "## connfault: passed"), "no GitHub step summary");
    free(md);
    free(junit);
    free(json);
    free(summary);
    ci_run_cleanup(&r);
    snprintf(command, sizeof(command), "rm -rf '%s'", mine);
    ck_assert_int_eq(system(command), 0);
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
    ck_assert_ptr_nonnull(strstr(failure, "alive: target exited"));
    ck_assert_ptr_nonnull(strstr(summary, "FAIL  rst-mid-response"));
    free(junit);
    free(summary);
    ci_run_cleanup(&r);
}
END_TEST

START_TEST(connfault_ci_reports_a_server_that_does_not_start)
{
    struct ci_run r;
    const char *args[] = {"--server-cmd", "echo 'no <config> & no port'; exit 3", "--scenarios",
                          "connect-close", NULL};
    ci_run(&r, args);
    char *junit = ci_run_file(&r, "junit.xml");
    ck_assert_int_eq(r.status, 2);
    const char *error = strstr(junit, "<testcase classname=\"connfault\" name=\"set-up\">");
    ck_assert_msg(error != NULL, "no set-up testcase:\n%s", junit);
    ck_assert_ptr_nonnull(strstr(error, "<error"));
    ck_assert_ptr_nonnull(strstr(error, "no &lt;config&gt; &amp; no port")); /* escaped */
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

int main(void)
{
    /* The scripts write temp files and start servers: run them with a known environment. */
    unsetenv("CONNFAULT");
    Suite *s = suite_create("ci_files");
    TCase *yaml = tcase_create("yaml");
    tcase_add_test(yaml, yaml_reads_the_subset);
    tcase_add_loop_test(yaml, yaml_rejects_what_it_does_not_understand, 0,
                        (int)(sizeof(bad_yaml) / sizeof(bad_yaml[0])));
    suite_add_tcase(s, yaml);
    TCase *files = tcase_create("ci files");
    tcase_set_timeout(files, 30);
    tcase_add_test(files, github_workflow_is_valid_and_matches_the_cli);
    tcase_add_test(files, gitlab_job_is_valid_and_matches_the_cli);
    tcase_add_test(files, man_pages_document_every_flag_of_the_help);
    suite_add_tcase(s, files);
    TCase *runs = tcase_create("connfault-ci runs");
    tcase_set_timeout(runs, CI_RUN_TIMEOUT_MS / 1000 + 30);
    tcase_add_test(runs, connfault_ci_passes_the_correct_server);
    tcase_add_test(runs, connfault_ci_fails_a_server_killed_by_sigpipe);
    tcase_add_test(runs, connfault_ci_reports_a_server_that_does_not_start);
    tcase_add_test(runs, connfault_ci_refuses_bad_usage);
    suite_add_tcase(s, runs);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
