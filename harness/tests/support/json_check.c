/* A strict JSON parser (RFC 8259) building a tree for tests to query: see support.h. Every
 * parse function returns the position after what it read, or NULL once an error is set. */
#include "support.h"

#include "json_writer.h" /* cf_utf8_sequence */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_JSON_MAX_DEPTH 32

struct json_parser {
    const char *doc;
    char *error;
    size_t error_cap;
};

static const char *jp_fail(struct json_parser *jp, const char *at, const char *what)
{
    if (jp->error_cap > 0 && jp->error[0] == '\0')
        snprintf(jp->error, jp->error_cap, "offset %zu: %s at \"%.20s\"", (size_t)(at - jp->doc),
                 what, at);
    return NULL;
}

void ts_json_free(struct ts_json *json)
{
    if (json == NULL)
        return;
    for (size_t i = 0; i < json->n; i++) {
        ts_json_free(json->items[i]);
        if (json->keys)
            free(json->keys[i]);
    }
    free(json->items);
    free(json->keys);
    free(json->text);
    free(json);
}

static const char *json_ws(const char *p)
{
    return p + strspn(p, " \t\n\r");
}

static void json_put_utf8(FILE *out, unsigned long cp)
{
    if (cp < 0x80) {
        fputc((int)cp, out);
    } else if (cp < 0x800) {
        fputc((int)(0xc0 | cp >> 6), out);
        fputc((int)(0x80 | (cp & 0x3f)), out);
    } else {
        fputc((int)(0xe0 | cp >> 12), out); /* \uXXXX: at most U+FFFF (no surrogates) */
        fputc((int)(0x80 | ((cp >> 6) & 0x3f)), out);
        fputc((int)(0x80 | (cp & 0x3f)), out);
    }
}

/* The escape at p (just after the backslash), decoded into mem; NULL on a bad one. */
static const char *json_escape(struct json_parser *jp, const char *p, FILE *mem)
{
    if (*p == '\0' || !strchr("\"\\/bfnrtu", *p))
        return jp_fail(jp, p, "bad escape");
    if (*p != 'u') {
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        fputc(to[strchr(from, *p) - from], mem);
        return p + 1;
    }
    char hex[5] = {0};
    memcpy(hex, p + 1, strnlen(p + 1, 4));
    if (strspn(hex, "0123456789abcdefABCDEF") != 4)
        return jp_fail(jp, p, "bad \\u escape");
    unsigned long cp = strtoul(hex, NULL, 16);
    if (cp >= 0xd800 && cp <= 0xdfff)
        return jp_fail(jp, p, "lone surrogate");
    json_put_utf8(mem, cp);
    return p + 5;
}

static const char *json_string(struct json_parser *jp, const char *p, char **out)
{
    size_t len = 0;
    FILE *mem = ts_nonnull(open_memstream(out, &len));
    p++; /* the opening quote */
    while (p && *p != '"') {
        unsigned char c = (unsigned char)*p;
        unsigned long cp;
        size_t n = cf_utf8_sequence((const unsigned char *)p, strnlen(p, 4), &cp);
        if (c == '\0')
            p = jp_fail(jp, p, "unterminated string");
        else if (c < 0x20)
            p = jp_fail(jp, p, "raw control character in a string");
        else if (c == '\\')
            p = json_escape(jp, p + 1, mem);
        else if (n == 0)
            p = jp_fail(jp, p, "invalid UTF-8 in a string");
        else
            p += fwrite(p, 1, n, mem);
    }
    fclose(mem);
    if (!p) {
        free(*out);
        *out = NULL;
        return NULL;
    }
    return p + 1;
}

static const char *json_digits(const char *p)
{
    return p + strspn(p, "0123456789");
}

static const char *json_number(struct json_parser *jp, const char *p, char **text)
{
    const char *start = p;
    if (*p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return jp_fail(jp, start, "bad value");
    p = *p == '0' ? p + 1 : json_digits(p);
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return jp_fail(jp, start, "bad fraction");
        p = json_digits(p);
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (*p < '0' || *p > '9')
            return jp_fail(jp, start, "bad exponent");
        p = json_digits(p);
    }
    *text = ts_nonnull(strndup(start, (size_t)(p - start)));
    return p;
}

static const char *json_value(struct json_parser *jp, const char *p, struct ts_json **out,
                              int depth);

/* One member's key and colon; p is at the key. */
static const char *json_key(struct json_parser *jp, const char *p, struct ts_json *j)
{
    if (*p != '"')
        return jp_fail(jp, p, "expected a key");
    const char *key_at = p;
    p = json_string(jp, p, &j->keys[j->n]);
    if (!p)
        return NULL;
    for (size_t i = 0; i < j->n; i++)
        if (strcmp(j->keys[i], j->keys[j->n]) == 0)
            return jp_fail(jp, key_at, "key twice in one object");
    p = json_ws(p);
    if (*p != ':')
        return jp_fail(jp, p, "expected ':'");
    return json_ws(p + 1);
}

static const char *json_container(struct json_parser *jp, const char *p, struct ts_json *j,
                                  int depth)
{
    bool object = *p == '{';
    char close = object ? '}' : ']';
    p = json_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        j->items = ts_nonnull(realloc(j->items, (j->n + 1) * sizeof(*j->items)));
        j->items[j->n] = NULL;
        if (object) {
            j->keys = ts_nonnull(realloc(j->keys, (j->n + 1) * sizeof(*j->keys)));
            j->keys[j->n] = NULL;
            p = json_key(jp, p, j);
        }
        if (p)
            p = json_value(jp, p, &j->items[j->n], depth + 1);
        j->n++; /* even when incomplete: ts_json_free releases what is there */
        if (!p)
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p != ',')
            return jp_fail(jp, p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        p = json_ws(p + 1);
    }
}

static const char *json_value(struct json_parser *jp, const char *p, struct ts_json **out,
                              int depth)
{
    struct ts_json *j = ts_nonnull(calloc(1, sizeof(*j)));
    *out = j;
    if (depth >= TS_JSON_MAX_DEPTH)
        return jp_fail(jp, p, "nested too deep");
    if (*p == '{' || *p == '[') {
        j->type = *p == '{' ? TS_JSON_OBJECT : TS_JSON_ARRAY;
        return json_container(jp, p, j, depth);
    }
    if (*p == '"') {
        j->type = TS_JSON_STRING;
        return json_string(jp, p, &j->text);
    }
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0) {
        j->type = *p == 't' ? TS_JSON_BOOL : TS_JSON_NULL;
        j->boolean = *p == 't';
        return p + 4;
    }
    if (strncmp(p, "false", 5) == 0) {
        j->type = TS_JSON_BOOL;
        return p + 5;
    }
    j->type = TS_JSON_NUMBER;
    return json_number(jp, p, &j->text);
}

struct ts_json *ts_json_parse(const char *text, char *error, size_t error_cap)
{
    struct json_parser jp = {.doc = text, .error = error, .error_cap = error_cap};
    if (error_cap > 0)
        error[0] = '\0';
    struct ts_json *root = NULL;
    const char *end = json_value(&jp, json_ws(text), &root, 0);
    if (end) {
        end = json_ws(end);
        if (*end != '\0')
            end = jp_fail(&jp, end, "trailing text");
    }
    if (!end) {
        ts_json_free(root);
        return NULL;
    }
    return root;
}

/* ---- queries ---- */

enum ts_json_type ts_json_type(const struct ts_json *json)
{
    return json ? json->type : TS_JSON_MISSING;
}

const struct ts_json *ts_json_get(const struct ts_json *object, const char *key)
{
    if (ts_json_type(object) != TS_JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < object->n; i++)
        if (strcmp(object->keys[i], key) == 0)
            return object->items[i];
    return NULL;
}

const struct ts_json *ts_json_at(const struct ts_json *array, size_t index)
{
    if (ts_json_type(array) != TS_JSON_ARRAY || index >= array->n)
        return NULL;
    return array->items[index];
}

size_t ts_json_count(const struct ts_json *json)
{
    enum ts_json_type type = ts_json_type(json);
    return type == TS_JSON_ARRAY || type == TS_JSON_OBJECT ? json->n : 0;
}

static const char *ts_json_text_of(const struct ts_json *object, const char *key,
                                   enum ts_json_type type)
{
    const struct ts_json *value = ts_json_get(object, key);
    return ts_json_type(value) == type ? value->text : NULL;
}

const char *ts_json_str(const struct ts_json *object, const char *key)
{
    return ts_json_text_of(object, key, TS_JSON_STRING);
}

const char *ts_json_num(const struct ts_json *object, const char *key)
{
    return ts_json_text_of(object, key, TS_JSON_NUMBER);
}

int ts_json_bool(const struct ts_json *object, const char *key)
{
    const struct ts_json *value = ts_json_get(object, key);
    return ts_json_type(value) == TS_JSON_BOOL ? value->boolean : -1;
}
