/* The YAML subset CI files are written in, parsed into a tree: see support.h for what is read
 * and what is rejected. One function per construct; each returns NULL once p->error is set. */
#include "support.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct yaml_line {
    int number; /* 1-based, for messages */
    int indent; /* leading spaces */
    char *text; /* after the indentation; may be moved on by a sequence item's "- " */
};

struct yaml_parser {
    struct yaml_line *lines;
    size_t nlines, pos;
    char error[256];
};

void ts_yaml_free(struct ts_yaml *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->n; i++) {
        if (node->keys)
            free(node->keys[i]);
        ts_yaml_free(node->values[i]);
    }
    free(node->keys);
    free(node->values);
    free(node->scalar);
    free(node);
}

static struct ts_yaml *yaml_node_new(enum ts_yaml_kind kind, int line)
{
    struct ts_yaml *node = ts_nonnull(calloc(1, sizeof(*node)));
    node->kind = kind;
    node->line = line;
    return node;
}

static void yaml_append(struct ts_yaml *parent, char *key, struct ts_yaml *value)
{
    parent->values = ts_nonnull(realloc(parent->values, (parent->n + 1) * sizeof(*parent->values)));
    if (parent->kind == TS_YAML_MAP) {
        parent->keys = ts_nonnull(realloc(parent->keys, (parent->n + 1) * sizeof(*parent->keys)));
        parent->keys[parent->n] = key;
    }
    parent->values[parent->n++] = value;
}

static struct ts_yaml *yaml_scalar_new(const char *text, size_t len, int line)
{
    struct ts_yaml *node = yaml_node_new(TS_YAML_SCALAR, line);
    node->scalar = ts_nonnull(strndup(text, len));
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
    char *out = ts_nonnull(malloc(strlen(text) + 1));
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
static struct ts_yaml *yaml_plain(struct yaml_parser *p, const char *text, int line)
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
static struct ts_yaml *yaml_flow_seq(struct yaml_parser *p, const char *text, int line)
{
    struct ts_yaml *seq = yaml_node_new(TS_YAML_SEQ, line);
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
            ts_yaml_free(seq);
            return NULL;
        }
        struct ts_yaml *node = yaml_node_new(TS_YAML_SCALAR, line);
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
        ts_yaml_free(seq);
        return NULL;
    }
    if (!yaml_rest_is_empty(s + 1)) {
        yaml_fail(p, line, "text after a [ ] list");
        ts_yaml_free(seq);
        return NULL;
    }
    return seq;
}

/* A value written on the same line as its key or dash. */
static struct ts_yaml *yaml_inline_value(struct yaml_parser *p, const char *text, int line)
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
        struct ts_yaml *node = yaml_node_new(TS_YAML_SCALAR, line);
        node->scalar = value;
        return node;
    }
    if (text[0] == '[')
        return yaml_flow_seq(p, text, line);
    return yaml_plain(p, text, line);
}

/* | or > after a key: the following lines indented deeper than the key are its text. */
static struct ts_yaml *yaml_block_scalar(struct yaml_parser *p, const char *indicator,
                                         int key_indent, int line)
{
    bool folded = indicator[0] == '>';
    char chomp = indicator[1] == '-' || indicator[1] == '+' ? indicator[1] : 'c';
    if (!yaml_rest_is_empty(indicator + (chomp == 'c' ? 1 : 2))) {
        yaml_fail(p, line, "bad block scalar indicator (use |, |-, |+, >, >- or >+)");
        return NULL;
    }
    size_t cap = 64, len = 0;
    char *text = ts_nonnull(malloc(cap));
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
            text = ts_nonnull(realloc(text, cap));
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
    struct ts_yaml *node = yaml_node_new(TS_YAML_SCALAR, line);
    node->scalar = text;
    return node;
}

static struct ts_yaml *yaml_block(struct yaml_parser *p, int indent);

/* The value of "key:" with nothing after it: a deeper block, a sequence at the key's own
 * indentation (allowed by YAML), or empty. */
static struct ts_yaml *yaml_nested_value(struct yaml_parser *p, int key_indent, int line)
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

static struct ts_yaml *yaml_map(struct yaml_parser *p, int indent)
{
    struct ts_yaml *map = yaml_node_new(TS_YAML_MAP, p->lines[p->pos].number);
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
        char *key = ts_nonnull(strndup(l->text, (size_t)key_len));
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
        struct ts_yaml *child;
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
    ts_yaml_free(map);
    return NULL;
}

static struct ts_yaml *yaml_seq(struct yaml_parser *p, int indent)
{
    struct ts_yaml *seq = yaml_node_new(TS_YAML_SEQ, p->lines[p->pos].number);
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
        struct ts_yaml *item;
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
    ts_yaml_free(seq);
    return NULL;
}

static struct ts_yaml *yaml_block(struct yaml_parser *p, int indent)
{
    struct yaml_line *l = yaml_peek(p);
    return yaml_is_seq_item(l->text) ? yaml_seq(p, indent) : yaml_map(p, indent);
}

/* Splits text in place into p->lines (indentation measured, trailing \r dropped). Returns the
 * number of the last line, for an error at the end of the document. */
static int yaml_split_lines(struct yaml_parser *p, char *text)
{
    size_t cap = 0;
    int number = 0;
    for (char *s = text; s && *s;) {
        char *nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        number++;
        if (nl > s && nl[-1] == '\r')
            nl[-1] = '\0';
        if (p->nlines == cap) {
            cap = cap ? cap * 2 : 64;
            p->lines = ts_nonnull(realloc(p->lines, cap * sizeof(*p->lines)));
        }
        int indent = 0;
        while (s[indent] == ' ')
            indent++;
        if (s[indent] == '\t')
            yaml_fail(p, number, "tab in indentation");
        /* A line of blanks counts as empty (it may sit inside a block scalar). */
        char *body = s + indent;
        if (body[strspn(body, " \t")] == '\0')
            body += strlen(body);
        p->lines[p->nlines++] = (struct yaml_line){number, indent, body};
        s = nl ? nl + 1 : NULL;
    }
    return number;
}

struct ts_yaml *ts_yaml_parse(const char *text, char *error, size_t error_cap)
{
    struct yaml_parser p = {0};
    /* The lines point into a copy; the tree holds copies of every string it keeps. */
    char *copy = ts_nonnull(strdup(text));
    int last = yaml_split_lines(&p, copy);
    struct ts_yaml *root = NULL;
    struct yaml_line *first = p.error[0] ? NULL : yaml_peek(&p);
    if (first && strncmp(first->text, "---", 3) == 0)
        yaml_fail(&p, first->number, "documents markers are not supported");
    else if (first && first->indent != 0)
        yaml_fail(&p, first->number, "the document must start at column 1");
    else if (first)
        root = yaml_block(&p, 0);
    else if (!p.error[0])
        yaml_fail(&p, last, "empty document");
    struct yaml_line *trailing = root ? yaml_peek(&p) : NULL;
    if (trailing)
        yaml_fail(&p, trailing->number, "unexpected indentation");
    if (error_cap > 0)
        snprintf(error, error_cap, "%s", p.error);
    free(p.lines);
    free(copy);
    if (p.error[0]) {
        ts_yaml_free(root);
        root = NULL;
    }
    return root;
}

const struct ts_yaml *ts_yaml_get(const struct ts_yaml *map, const char *key)
{
    if (!map || map->kind != TS_YAML_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->values[i];
    return NULL;
}

const char *ts_yaml_get_scalar(const struct ts_yaml *map, const char *key)
{
    const struct ts_yaml *node = ts_yaml_get(map, key);
    return node && node->kind == TS_YAML_SCALAR ? node->scalar : NULL;
}
