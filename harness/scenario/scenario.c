/* scenario: load a fault scenario file (format: scenarios/README.md) into a struct scenario.
 *
 * inih splits "key = value" lines; everything else is ours. We feed inih through our own line
 * reader so that we know the line number of every key (this inih build has no line numbers in
 * its handler), see section headers even when the section has no keys, and can reject a bad
 * line before inih silently accepts or truncates it. Keys are checked as they come; what can
 * only be judged once a group is complete (missing count, contradicting keys) is checked when
 * the next section starts or the file ends, so the first error in file order is the one shown.
 *
 * Every key is one row of key_specs: its section, its kind (number, duration, range, word,
 * bytes, or a setter of its own), its allowed range and the field it fills. Adding a key is
 * adding a row (and its KEY_ id, and its line in scenarios/README.md, which a test checks);
 * checks between keys go in group_check_send / group_finish / scenario_finish.
 */
#include "scenario.h"

#include "escape.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCENARIO_MAX_LINE        16384 /* characters, not counting the line end */
#define SCENARIO_MAX_GROUPS      256
#define SCENARIO_MAX_GROUP_NAME  40
#define SCENARIO_MAX_DESCRIPTION 512
#define SCENARIO_MAX_REQUEST     (1u << 20)
#define SCENARIO_MAX_COUNT       1000000
#define SCENARIO_MAX_CONCURRENCY 100000
#define SCENARIO_MAX_MS          3600000 /* one hour: longer is a typo, not a fault phase */
#define SCENARIO_DEFAULT_MS      5000
#define SCENARIO_MAX_CATCHES     64

enum section_kind { SECTION_NONE, SECTION_SCENARIO, SECTION_CLIENTS };

/* Every key of both sections: the index into key_specs (the table that says how each key is
 * parsed and where its value goes) and into the key_line arrays. */
enum key_id {
    /* [scenario] */
    KEY_DESCRIPTION,
    KEY_DURATION,
    KEY_BOUND,
    KEY_RELEASE,
    KEY_RLIMIT_NOFILE,
    KEY_PROBE_RAW,
    KEY_PROBE_EXPECT,
    KEY_CABLE_PULL,
    KEY_CATCHES,
    /* [clients NAME] */
    KEY_COUNT,
    KEY_CONCURRENCY,
    KEY_RATE,
    KEY_START,
    KEY_REQUEST,
    KEY_REQUEST_RAW,
    KEY_REQUEST_PAD,
    KEY_PIPELINE,
    KEY_SEND,
    KEY_SEND_BYTES,
    KEY_TRICKLE_BYTES,
    KEY_TRICKLE_INTERVAL,
    KEY_TRICKLE_TAIL,
    KEY_READ,
    KEY_HOLD,
    KEY_END,
    KEY_RCVBUF,
    KEY_HOST,
    KEY_EXPECT,
    KEY_NKEYS
};

/* A group while its section is being read: the result plus where each key was given. */
struct group_draft {
    struct client_group g;
    int key_line[KEY_NKEYS]; /* 0 = not given; only [clients] keys are ever set */
    uint64_t request_pad;
    unsigned paths; /* enum scenario_path: what its request, request_raw, trickle_tail ask for */
};

struct strbuf {
    char *data;
    size_t len, cap;
};

struct parse_ctx {
    const char *path;
    struct scenario_vars vars; /* with defaults filled in */
    FILE *file;
    char *line; /* getline buffer */
    size_t line_cap;
    int lineno;

    enum section_kind section;
    bool seen_scenario_section;
    int scenario_key_line[KEY_NKEYS]; /* only [scenario] keys are ever set */
    struct scenario *sc;
    struct group_draft *drafts;
    size_t ndrafts;

    bool failed;
    char *err;
    size_t errlen;
};

/* ---- errors ---- */

static void parse_fail(struct parse_ctx *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void parse_fail(struct parse_ctx *ctx, int line, const char *fmt, ...)
{
    if (ctx->failed)
        return; /* keep the first error: later ones are often its consequences */
    ctx->failed = true;
    if (ctx->errlen == 0)
        return;
    int n = line > 0 ? snprintf(ctx->err, ctx->errlen, "%s:%d: ", ctx->path, line)
                     : snprintf(ctx->err, ctx->errlen, "%s: ", ctx->path);
    if (n < 0 || (size_t)n >= ctx->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* A value as it can be shown inside "..." in a one-line message: escaped and shortened. */
static const char *quote_for_message(const char *s, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 8 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 12 >= outlen) {
            o += (size_t)snprintf(out + o, outlen - o, "...");
            break;
        }
        if (c == '"' || c == '\\')
            o += (size_t)snprintf(out + o, outlen - o, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02X", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

/* ---- small string helpers ---- */

static int strbuf_append(struct strbuf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (data == NULL)
            return -ENOMEM;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static int strbuf_append_str(struct strbuf *b, const char *s)
{
    return strbuf_append(b, s, strlen(s));
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static const char *skip_blank(const char *s)
{
    while (is_blank(*s))
        s++;
    return s;
}

static size_t trim_end(const char *s, size_t len)
{
    while (len > 0 && is_blank(s[len - 1]))
        len--;
    return len;
}

static bool span_equals(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

/* ---- numbers, durations and ranges ---- */

static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* Splits "A-B" (blanks allowed around '-'); a single number gives lo == hi text. */
static void split_range(const char *s, size_t len, const char **lo, size_t *lo_len, const char **hi,
                        size_t *hi_len)
{
    const char *dash = memchr(s, '-', len);
    if (dash == NULL) {
        *lo = *hi = s;
        *lo_len = *hi_len = len;
        return;
    }
    *lo = s;
    *lo_len = trim_end(s, (size_t)(dash - s));
    *hi = skip_blank(dash + 1);
    *hi_len = len - (size_t)(*hi - s);
}

enum time_unit { UNIT_NONE, UNIT_MS, UNIT_S };

/* "250ms", "1.5s", "0": the number in thousandths and its unit. */
static bool parse_time_term(const char *s, size_t len, uint64_t *milli, enum time_unit *unit)
{
    *unit = UNIT_NONE;
    if (len >= 2 && memcmp(s + len - 2, "ms", 2) == 0) {
        *unit = UNIT_MS;
        len -= 2;
    } else if (len >= 1 && s[len - 1] == 's') {
        *unit = UNIT_S;
        len -= 1;
    }
    const char *dot = memchr(s, '.', len);
    size_t int_len = dot ? (size_t)(dot - s) : len;
    uint64_t whole, frac = 0;
    if (!parse_u64(s, int_len, &whole) || whole > SCENARIO_MAX_MS)
        return false;
    if (dot != NULL) {
        size_t frac_len = len - int_len - 1;
        if (frac_len == 0 || frac_len > 3 || !parse_u64(dot + 1, frac_len, &frac))
            return false;
        for (size_t i = frac_len; i < 3; i++)
            frac *= 10;
    }
    *milli = whole * 1000 + frac;
    return true;
}

static bool time_term_to_ms(uint64_t milli, enum time_unit unit, uint64_t *ms)
{
    switch (unit) {
    case UNIT_S:
        *ms = milli;
        return true;
    case UNIT_MS:
        *ms = milli / 1000;
        return milli % 1000 == 0; /* no fractions of a millisecond */
    case UNIT_NONE:
        *ms = 0;
        return milli == 0; /* a bare number is ambiguous, except 0 */
    }
    return false;
}

/* "N" or "A-B" where A and B are durations; "100-300ms" gives A the unit of B. */
static bool parse_ms_range(const char *s, size_t len, struct range *out)
{
    const char *lo, *hi;
    size_t lo_len, hi_len;
    uint64_t lo_milli, hi_milli;
    enum time_unit lo_unit, hi_unit;
    split_range(s, len, &lo, &lo_len, &hi, &hi_len);
    if (!parse_time_term(lo, lo_len, &lo_milli, &lo_unit) ||
        !parse_time_term(hi, hi_len, &hi_milli, &hi_unit))
        return false;
    if (lo_unit == UNIT_NONE)
        lo_unit = hi_unit;
    return time_term_to_ms(lo_milli, lo_unit, &out->lo) &&
           time_term_to_ms(hi_milli, hi_unit, &out->hi) && out->hi <= SCENARIO_MAX_MS;
}

static bool parse_u64_range(const char *s, size_t len, struct range *out)
{
    const char *lo, *hi;
    size_t lo_len, hi_len;
    split_range(s, len, &lo, &lo_len, &hi, &hi_len);
    return parse_u64(lo, lo_len, &out->lo) && parse_u64(hi, hi_len, &out->hi);
}

/* ---- values: quotes, escapes, comments, placeholders ---- */

/* A path placeholder was used: by the group being read, or by the [scenario] (probe_raw). */
static void note_path(struct parse_ctx *ctx, unsigned path)
{
    if (ctx->section == SECTION_CLIENTS && ctx->ndrafts > 0)
        ctx->drafts[ctx->ndrafts - 1].paths |= path;
    else
        ctx->sc->paths |= path;
}

/* Expands the {placeholder} starting at s[0] == '{'; returns characters consumed, or 0. */
static size_t expand_placeholder(struct parse_ctx *ctx, const char *key, const char *s,
                                 struct strbuf *out)
{
    const struct {
        const char *name, *value;
        unsigned path; /* enum scenario_path, 0 for {host} */
    } known[] = {
        {"host", ctx->vars.host, 0},
        {"probe_path", ctx->vars.probe_path, SCENARIO_PATH_PROBE},
        {"large_path", ctx->vars.large_path, SCENARIO_PATH_LARGE},
        {"huge_path", ctx->vars.huge_path, SCENARIO_PATH_HUGE},
    };
    const char *close = strchr(s, '}');
    size_t name_len = close ? (size_t)(close - s - 1) : strcspn(s + 1, " \"");
    const char *value = NULL;
    for (size_t i = 0; close != NULL && value == NULL && i < sizeof(known) / sizeof(known[0]);
         i++) {
        if (span_equals(s + 1, name_len, known[i].name)) {
            value = known[i].value;
            note_path(ctx, known[i].path);
        }
    }
    if (value == NULL) {
        char shown[64];
        parse_fail(ctx, ctx->lineno,
                   "%s: unknown placeholder \"{%s\"; expected {host}, {probe_path}, "
                   "{large_path} or {huge_path} (write \\x7b for a literal \"{\")",
                   key,
                   quote_for_message(s + 1, close ? name_len + 1 : name_len, shown, sizeof(shown)));
        return 0;
    }
    if (strbuf_append_str(out, value) < 0) {
        parse_fail(ctx, ctx->lineno, "%s: out of memory", key);
        return 0;
    }
    return name_len + 2;
}

/* One backslash escape at s[0] == '\\' (escape.c: the same set as on the command line, so a
 * request can move between the two); returns characters consumed, or 0. */
static size_t unescape_one(struct parse_ctx *ctx, const char *key, const char *s,
                           struct strbuf *out)
{
    char c;
    size_t used = escape_decode_one(s, strnlen(s, 4), &c);
    if (used == 0) {
        char shown[16];
        if (s[1] == 'x')
            parse_fail(ctx, ctx->lineno, "%s: bad escape \"\\x\": expected two hex digits", key);
        else
            parse_fail(
                ctx, ctx->lineno,
                "%s: bad escape \"\\%s\"; expected \\r, \\n, \\t, \\0, \\\\, \\\", \\' or \\xHH",
                key, quote_for_message(s + 1, s[1] ? 1 : 0, shown, sizeof(shown)));
        return 0;
    }
    if (strbuf_append(out, &c, 1) < 0) {
        parse_fail(ctx, ctx->lineno, "%s: out of memory", key);
        return 0;
    }
    return used;
}

static bool is_comment_start(const char *value, size_t i)
{
    return (value[i] == '#' || value[i] == ';') && (i == 0 || is_blank(value[i - 1]));
}

/* The bytes a value stands for. Quoted: escapes apply and a comment may follow the closing
 * quote. Bare: taken literally up to an inline comment ('#' or ';' after a blank). With
 * placeholders, every '{' must start a known placeholder. Returns 0, or -1 with ctx failed. */
static int parse_value(struct parse_ctx *ctx, const char *key, const char *value, bool placeholders,
                       struct strbuf *out)
{
    out->len = 0;
    if (strbuf_append(out, "", 0) < 0) {
        parse_fail(ctx, ctx->lineno, "%s: out of memory", key);
        return -1;
    }
    if (value[0] != '"') {
        size_t len = 0;
        while (value[len] != '\0' && !is_comment_start(value, len))
            len++;
        len = trim_end(value, len);
        for (size_t i = 0; i < len;) {
            size_t used = 1;
            if (value[i] == '{' && placeholders)
                used = expand_placeholder(ctx, key, value + i, out);
            else if (strbuf_append(out, value + i, 1) < 0)
                used = 0, parse_fail(ctx, ctx->lineno, "%s: out of memory", key);
            if (used == 0)
                return -1;
            i += used;
        }
        return 0;
    }
    size_t i = 1;
    for (;;) {
        size_t used = 1;
        if (value[i] == '\0' || (value[i] == '\\' && value[i + 1] == '\0')) {
            parse_fail(ctx, ctx->lineno, "%s: unterminated quoted string (no closing \")", key);
            return -1;
        }
        if (value[i] == '"')
            break;
        if (value[i] == '\\')
            used = unescape_one(ctx, key, value + i, out);
        else if (value[i] == '{' && placeholders)
            used = expand_placeholder(ctx, key, value + i, out);
        else if (strbuf_append(out, value + i, 1) < 0)
            used = 0, parse_fail(ctx, ctx->lineno, "%s: out of memory", key);
        if (used == 0)
            return -1;
        i += used;
    }
    const char *rest = skip_blank(value + i + 1);
    if (*rest != '\0' && *rest != '#' && *rest != ';') {
        char shown[48];
        parse_fail(ctx, ctx->lineno, "%s: unexpected text after the closing quote: \"%s\"", key,
                   quote_for_message(rest, strlen(rest), shown, sizeof(shown)));
        return -1;
    }
    return 0;
}

/* ---- values of keys ---- */

static void fail_expected(struct parse_ctx *ctx, const char *key, const char *expected,
                          const struct strbuf *v)
{
    char shown[64];
    parse_fail(ctx, ctx->lineno, "%s: expected %s; got \"%s\"", key, expected,
               quote_for_message(v->data, v->len, shown, sizeof(shown)));
}

/* A whole number in [min, max]; false (ctx failed) otherwise. */
static bool value_to_uint(struct parse_ctx *ctx, const char *key, const struct strbuf *v,
                          uint64_t min, uint64_t max, uint64_t *out)
{
    if (parse_u64(v->data, v->len, out) && *out >= min && *out <= max)
        return true;
    char expected[96];
    snprintf(expected, sizeof(expected), "a whole number from %llu to %llu",
             (unsigned long long)min, (unsigned long long)max);
    fail_expected(ctx, key, expected, v);
    return false;
}

static bool value_to_duration(struct parse_ctx *ctx, const char *key, const struct strbuf *v,
                              uint64_t min_ms, uint64_t *out)
{
    struct range r;
    if (memchr(v->data, '-', v->len) == NULL && parse_ms_range(v->data, v->len, &r) &&
        r.lo >= min_ms) {
        *out = r.lo;
        return true;
    }
    char expected[96];
    snprintf(expected, sizeof(expected), "a duration from %llums to %ds, like 250ms or 1.5s",
             (unsigned long long)min_ms, SCENARIO_MAX_MS / 1000);
    fail_expected(ctx, key, expected, v);
    return false;
}

/* "N" or "A-B" checked against [min, max] and for order. */
static bool value_to_range(struct parse_ctx *ctx, const char *key, const struct strbuf *v,
                           bool durations, uint64_t min, uint64_t max, struct range *out)
{
    bool ok =
        durations ? parse_ms_range(v->data, v->len, out) : parse_u64_range(v->data, v->len, out);
    if (ok && out->lo > out->hi) {
        char shown[64];
        parse_fail(ctx, ctx->lineno, "%s: range \"%s\" is backwards: expected A-B with A <= B", key,
                   quote_for_message(v->data, v->len, shown, sizeof(shown)));
        return false;
    }
    if (ok && out->lo >= min && out->hi <= max)
        return true;
    char expected[128];
    if (durations)
        snprintf(expected, sizeof(expected), "a duration or range like 250ms, 1s or 100-300ms");
    else
        snprintf(expected, sizeof(expected), "N or A-B with whole numbers from %llu to %llu",
                 (unsigned long long)min, (unsigned long long)max);
    fail_expected(ctx, key, expected, v);
    return false;
}

/* Index of v in the NULL-terminated words, or -1 with ctx failed. */
static int value_to_choice(struct parse_ctx *ctx, const char *key, const struct strbuf *v,
                           const char *const *words)
{
    char expected[128] = "one of ";
    for (int i = 0; words[i] != NULL; i++) {
        if (span_equals(v->data, v->len, words[i]))
            return i;
        size_t n = strlen(expected);
        snprintf(expected + n, sizeof(expected) - n, "%s%s", i ? ", " : "", words[i]);
    }
    fail_expected(ctx, key, expected, v);
    return -1;
}

/* Moves v's bytes into *dst (freeing what was there); v starts again empty. */
static int take_bytes(struct parse_ctx *ctx, const char *key, struct strbuf *v, char **dst,
                      size_t *dst_len)
{
    if (v->len == 0) {
        parse_fail(ctx, ctx->lineno, "%s: empty", key);
        return -1;
    }
    if (v->len > SCENARIO_MAX_REQUEST) {
        parse_fail(ctx, ctx->lineno, "%s: longer than %u bytes", key, SCENARIO_MAX_REQUEST);
        return -1;
    }
    free(*dst);
    *dst = v->data; /* the buffer changes hands: the caller's strbuf starts again */
    *dst_len = v->len;
    v->data = NULL;
    v->len = v->cap = 0;
    return 0;
}

/* ---- keys that need more than a number, a range, a word or bytes ---- */

static void set_description(struct parse_ctx *ctx, void *base, struct strbuf *v)
{
    struct scenario *sc = base;
    for (size_t i = 0; i < v->len; i++) {
        if ((unsigned char)v->data[i] < 0x20) {
            parse_fail(ctx, ctx->lineno, "description: must be one line of text");
            return;
        }
    }
    if (v->len > SCENARIO_MAX_DESCRIPTION) {
        parse_fail(ctx, ctx->lineno, "description: longer than %d characters",
                   SCENARIO_MAX_DESCRIPTION);
        return;
    }
    free(sc->description);
    sc->description = strdup(v->data);
    if (sc->description == NULL)
        parse_fail(ctx, ctx->lineno, "description: out of memory");
}

static void set_rate(struct parse_ctx *ctx, void *base, struct strbuf *v)
{
    struct group_draft *d = base;
    char *end;
    double rate = strtod(v->data, &end);
    /* strtod also takes "nan", "inf" and hex: accept only plain decimal numbers */
    if (v->len == 0 || end != v->data + v->len || strspn(v->data, "0123456789.") != v->len ||
        !(rate >= 0 && rate <= 1e6))
        fail_expected(ctx, "rate", "connections per second from 0 to 1000000 (0 = no limit)", v);
    else
        d->g.rate = rate;
}

static bool is_token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A shorthand of `request` into "GET PATH" in v: the command line's raw bytes replace it when
 * given (*raw), else its path is one the group asks for. Anything else is left as it is. */
static void expand_shorthand(struct group_draft *d, const struct scenario_vars *vars,
                             struct strbuf *v, const char **raw, size_t *raw_len)
{
    const char *path;
    unsigned used;
    if (span_equals(v->data, v->len, "large"))
        path = vars->large_path, used = SCENARIO_PATH_LARGE;
    else if (span_equals(v->data, v->len, "huge"))
        path = vars->huge_path, used = SCENARIO_PATH_HUGE;
    else if (span_equals(v->data, v->len, "probe"))
        path = vars->probe_path, used = SCENARIO_PATH_PROBE;
    else
        return;
    *raw = used == SCENARIO_PATH_PROBE ? vars->probe_raw : vars->request_raw;
    *raw_len = used == SCENARIO_PATH_PROBE ? vars->probe_raw_len : vars->request_raw_len;
    if (*raw == NULL)
        d->paths |= used;
    v->len = 0;
    strbuf_append_str(v, "GET ");
    strbuf_append_str(v, path);
}

/* "large", "huge", "probe" or "METHOD PATH" (already placeholder-expanded) into the request
 * bytes. */
static void set_request(struct parse_ctx *ctx, void *base, struct strbuf *v)
{
    struct group_draft *d = base;
    const struct scenario_vars *vars = &ctx->vars;
    struct strbuf req = {0};
    const char *raw = NULL;
    size_t raw_len = 0, method_len = 0;
    expand_shorthand(d, vars, v, &raw, &raw_len);
    while (method_len < v->len && is_token_char(v->data[method_len]))
        method_len++;
    const char *path = v->data + method_len + 1;
    size_t path_len = v->len > method_len ? v->len - method_len - 1 : 0;
    bool path_ok = path_len > 0 && path[0] != ' ';
    for (size_t i = 0; path_ok && i < path_len; i++)
        path_ok = (unsigned char)path[i] > 0x20 && (unsigned char)path[i] != 0x7f;
    if (raw == NULL && (method_len == 0 || v->data[method_len] != ' ' || !path_ok)) {
        fail_expected(ctx, "request",
                      "large, huge, probe or METHOD PATH (like GET /index.html); for anything "
                      "else use request_raw",
                      v);
        return;
    }
    if (raw != NULL) {
        /* --request-raw / --probe-raw bytes are used verbatim: they are the user's own */
        strbuf_append(&req, raw, raw_len);
    } else {
        strbuf_append(&req, v->data, v->len);
        strbuf_append_str(&req, " HTTP/1.1\r\nHost: ");
        strbuf_append_str(&req, vars->host);
        strbuf_append_str(&req, "\r\n\r\n");
    }
    if (req.data == NULL) {
        parse_fail(ctx, ctx->lineno, "request: out of memory");
        return;
    }
    take_bytes(ctx, "request", &req, &d->g.request, &d->g.request_len);
    free(req.data);
}

static void set_read(struct parse_ctx *ctx, void *base, struct strbuf *v)
{
    struct client_group *g = &((struct group_draft *)base)->g;
    if (span_equals(v->data, v->len, "all"))
        g->read = READ_ALL;
    else if (span_equals(v->data, v->len, "none"))
        g->read = READ_NONE;
    else if (v->len > 0 && v->data[0] >= '0' && v->data[0] <= '9') {
        g->read = READ_BYTES;
        value_to_range(ctx, "read", v, false, 1, 1ull << 40, &g->read_bytes);
    } else
        fail_expected(ctx, "read", "all, none, N or A-B (bytes)", v);
}

static void set_host(struct parse_ctx *ctx, void *base, struct strbuf *v)
{
    struct client_group *g = &((struct group_draft *)base)->g;
    /* Simulated client hosts are extra loopback addresses: never anything else. */
    if (inet_pton(AF_INET, v->data, &g->host) != 1 || (ntohl(g->host.s_addr) >> 24) != 127 ||
        ntohl(g->host.s_addr) == INADDR_LOOPBACK)
        parse_fail(ctx, ctx->lineno,
                   "host: expected a loopback address other than 127.0.0.1 (127.0.0.2 and "
                   "up: probes use 127.0.0.1); got \"%s\"",
                   v->data);
}

/* "response" (1) or "responses N" (N from 1 to 1000): what each client must read whole. */
static void set_expect(struct parse_ctx *ctx, void *base, struct strbuf *v)
{
    struct client_group *g = &((struct group_draft *)base)->g;
    const char *n = v->data + strlen("responses");
    char *end = NULL;
    if (span_equals(v->data, v->len, "response")) {
        g->expect_responses = 1;
        return;
    }
    if (v->len > strlen("responses ") && strncmp(v->data, "responses ", 10) == 0) {
        n = skip_blank(n);
        unsigned long count = *n >= '0' && *n <= '9' ? strtoul(n, &end, 10) : 0;
        if (count >= 1 && count <= 1000 && end == v->data + v->len) {
            g->expect_responses = (unsigned)count;
            return;
        }
    }
    fail_expected(ctx, "expect", "response, or responses N (N from 1 to 1000)", v);
}

/* The checks of run/checks.c and run/check_responses.c, by the names their results carry. */
static const char *const check_names[] = {"accepting", "alive",  "fds",       "sockets",
                                          "cpu",       "memory", "responses", NULL};

static bool is_bug_name(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
            return false;
    return true;
}

/* One "BUG:CHECK" of the catches list (blanks around it already removed). */
static int catch_add(struct parse_ctx *ctx, struct scenario *sc, const char *item, size_t len)
{
    char shown[64];
    struct scenario_catch c = {0};
    const char *colon = memchr(item, ':', len);
    size_t bug_len = colon ? (size_t)(colon - item) : 0, check_len = len - bug_len - 1;
    if (colon == NULL || bug_len == 0 || check_len == 0) {
        parse_fail(ctx, ctx->lineno,
                   "catches: expected BUG:CHECK, like accept-once:accepting; got \"%s\"",
                   quote_for_message(item, len, shown, sizeof(shown)));
        return -1;
    }
    if (!is_bug_name(item, bug_len, sizeof(c.bug) - 1)) {
        parse_fail(ctx, ctx->lineno,
                   "catches: bug mode \"%s\" is not 1 to %zu lowercase letters, digits or '-'",
                   quote_for_message(item, bug_len, shown, sizeof(shown)), sizeof(c.bug) - 1);
        return -1;
    }
    int check = -1;
    for (int i = 0; check_names[i] != NULL; i++)
        if (span_equals(colon + 1, check_len, check_names[i]))
            check = i;
    if (check < 0) {
        parse_fail(ctx, ctx->lineno,
                   "catches: unknown check \"%s\"; expected accepting, alive, fds, sockets, cpu, "
                   "memory or responses",
                   quote_for_message(colon + 1, check_len, shown, sizeof(shown)));
        return -1;
    }
    memcpy(c.bug, item, bug_len);
    snprintf(c.check, sizeof(c.check), "%s", check_names[check]);
    for (size_t i = 0; i < sc->ncatches; i++) {
        if (strcmp(sc->catches[i].bug, c.bug) == 0 && strcmp(sc->catches[i].check, c.check) == 0) {
            parse_fail(ctx, ctx->lineno, "catches: %s:%s given twice", c.bug, c.check);
            return -1;
        }
    }
    if (sc->ncatches == SCENARIO_MAX_CATCHES) {
        parse_fail(ctx, ctx->lineno, "catches: more than %d pairs", SCENARIO_MAX_CATCHES);
        return -1;
    }
    sc->catches[sc->ncatches++] = c;
    return 0;
}

/* "BUG:CHECK, BUG:CHECK, ...": what the scenario exists to catch. */
static void set_catches(struct parse_ctx *ctx, void *base, struct strbuf *v)
{
    struct scenario *sc = base;
    sc->catches = calloc(SCENARIO_MAX_CATCHES, sizeof(*sc->catches));
    if (sc->catches == NULL) {
        parse_fail(ctx, ctx->lineno, "catches: out of memory");
        return;
    }
    const char *end = v->data + v->len;
    for (const char *s = v->data;;) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *item = skip_blank(s); /* stops at the comma or the end */
        size_t len = trim_end(item, (size_t)((comma ? comma : end) - item));
        if (catch_add(ctx, sc, item, len) < 0 || comma == NULL)
            return;
        s = comma + 1;
    }
}

/* ---- the key table ---- */

enum key_kind {
    KIND_UINT,     /* a whole number in [min, max] */
    KIND_DURATION, /* one duration of at least min ms (and at most SCENARIO_MAX_MS) */
    KIND_RANGE,    /* N or A-B, whole numbers in [min, max], into a struct range */
    KIND_MS_RANGE, /* a duration or duration range in [min, max] ms, into a struct range */
    KIND_CHOICE,   /* one of words; its index goes into an enum field */
    KIND_BYTES,    /* any bytes, into an owned char * with its size_t length at len_offset */
    KIND_CUSTOM,   /* set() parses and stores it */
};

struct key_spec {
    const char *name;
    enum key_kind kind;
    enum section_kind section;
    /* Where the value goes: a field of struct scenario ([scenario]) or of struct group_draft
     * ([clients NAME]), as offset and size (numbers go into unsigned, int, enum or uint64_t). */
    size_t offset, size;
    size_t len_offset;        /* KIND_BYTES */
    uint64_t min, max;        /* KIND_UINT, KIND_DURATION (min), KIND_RANGE, KIND_MS_RANGE */
    const char *const *words; /* KIND_CHOICE, NULL-terminated, in the enum's order */
    bool placeholders; /* {host}, {probe_path}, {large_path}, {huge_path} expand in the value */
    void (*set)(struct parse_ctx *ctx, void *base, struct strbuf *v); /* KIND_CUSTOM */
};

/* Numbers are stored through memcpy of an unsigned: the same size as these fields. */
_Static_assert(sizeof(enum send_mode) == sizeof(unsigned), "enum send_mode is not an unsigned");
_Static_assert(sizeof(enum end_mode) == sizeof(unsigned), "enum end_mode is not an unsigned");
_Static_assert(sizeof(enum scenario_bound) == sizeof(unsigned),
               "enum scenario_bound is not an unsigned");
_Static_assert(sizeof(enum scenario_release) == sizeof(unsigned),
               "enum scenario_release is not an unsigned");
_Static_assert(sizeof(int) == sizeof(unsigned), "int is not the size of unsigned");

#define FIELD_OF(type, f) offsetof(type, f), sizeof(((type *)0)->f)
#define IN_SCENARIO(f)    SECTION_SCENARIO, FIELD_OF(struct scenario, f)
#define IN_GROUP(f)       SECTION_CLIENTS, FIELD_OF(struct group_draft, g.f)

static const char *const send_words[] = {"whole", "partial", "trickle", "none", NULL};
static const char *const end_words[] = {"close", "reset", "half-close", "hold", "drop", NULL};
static const char *const bound_words[] = {"count", "duration", NULL};
static const char *const release_words[] = {"judged", "end", NULL};

static const struct key_spec key_specs[KEY_NKEYS] = {
    [KEY_DESCRIPTION] = {"description", KIND_CUSTOM, IN_SCENARIO(description),
                         .set = set_description},
    [KEY_DURATION] = {"duration", KIND_DURATION, IN_SCENARIO(duration_ms), .min = 1},
    [KEY_BOUND] = {"bound", KIND_CHOICE, IN_SCENARIO(bound), .words = bound_words},
    [KEY_RELEASE] = {"release", KIND_CHOICE, IN_SCENARIO(release), .words = release_words},
    [KEY_RLIMIT_NOFILE] = {"rlimit_nofile", KIND_UINT, IN_SCENARIO(rlimit_nofile), .min = 8,
                           .max = 1048576},
    [KEY_PROBE_RAW] = {"probe_raw", KIND_BYTES, IN_SCENARIO(probe_raw),
                       .len_offset = offsetof(struct scenario, probe_raw_len),
                       .placeholders = true},
    [KEY_PROBE_EXPECT] = {"probe_expect", KIND_BYTES, IN_SCENARIO(probe_expect),
                          .len_offset = offsetof(struct scenario, probe_expect_len)},
    [KEY_CABLE_PULL] = {"cable_pull", KIND_DURATION, IN_SCENARIO(cable_pull_ms), .min = 1},
    [KEY_CATCHES] = {"catches", KIND_CUSTOM, IN_SCENARIO(catches), .set = set_catches},

    [KEY_COUNT] = {"count", KIND_UINT, IN_GROUP(count), .min = 1, .max = SCENARIO_MAX_COUNT},
    [KEY_CONCURRENCY] = {"concurrency", KIND_UINT, IN_GROUP(concurrency), .min = 1,
                         .max = SCENARIO_MAX_CONCURRENCY},
    [KEY_RATE] = {"rate", KIND_CUSTOM, IN_GROUP(rate), .set = set_rate},
    [KEY_START] = {"start", KIND_DURATION, IN_GROUP(start_ms), .min = 0},
    [KEY_REQUEST] = {"request", KIND_CUSTOM, IN_GROUP(request), .placeholders = true,
                     .set = set_request},
    [KEY_REQUEST_RAW] = {"request_raw", KIND_BYTES, IN_GROUP(request),
                         .len_offset = offsetof(struct group_draft, g.request_len),
                         .placeholders = true},
    [KEY_REQUEST_PAD] = {"request_pad", KIND_UINT, SECTION_CLIENTS,
                         FIELD_OF(struct group_draft, request_pad), .min = 1,
                         .max = SCENARIO_MAX_REQUEST},
    [KEY_PIPELINE] = {"pipeline", KIND_UINT, IN_GROUP(pipeline), .min = 1, .max = 1000},
    [KEY_SEND] = {"send", KIND_CHOICE, IN_GROUP(send), .words = send_words},
    [KEY_SEND_BYTES] = {"send_bytes", KIND_RANGE, IN_GROUP(send_bytes), .min = 1,
                        .max = SCENARIO_MAX_REQUEST * 1000ull},
    [KEY_TRICKLE_BYTES] = {"trickle_bytes", KIND_UINT, IN_GROUP(trickle_bytes), .min = 1,
                           .max = 65536},
    [KEY_TRICKLE_INTERVAL] = {"trickle_interval", KIND_DURATION, IN_GROUP(trickle_interval_ms),
                              .min = 1},
    [KEY_TRICKLE_TAIL] = {"trickle_tail", KIND_BYTES, IN_GROUP(trickle_tail),
                          .len_offset = offsetof(struct group_draft, g.trickle_tail_len),
                          .placeholders = true},
    [KEY_READ] = {"read", KIND_CUSTOM, IN_GROUP(read), .set = set_read},
    [KEY_HOLD] = {"hold", KIND_MS_RANGE, IN_GROUP(hold_ms), .min = 0, .max = SCENARIO_MAX_MS},
    [KEY_END] = {"end", KIND_CHOICE, IN_GROUP(end), .words = end_words},
    [KEY_RCVBUF] = {"rcvbuf", KIND_UINT, IN_GROUP(rcvbuf), .min = 1, .max = 64u << 20},
    [KEY_HOST] = {"host", KIND_CUSTOM, IN_GROUP(host), .set = set_host},
    [KEY_EXPECT] = {"expect", KIND_CUSTOM, IN_GROUP(expect_responses), .set = set_expect},
};

static void store_number(void *field, size_t size, uint64_t n)
{
    if (size == sizeof(uint64_t)) {
        memcpy(field, &n, sizeof(n));
    } else {
        unsigned u = (unsigned)n; /* the table's ranges keep n within the field */
        memcpy(field, &u, sizeof(u));
    }
}

/* Parses v as the table says and stores it in base (struct scenario or struct group_draft). */
static void key_apply(struct parse_ctx *ctx, const struct key_spec *k, void *base, struct strbuf *v)
{
    void *field = (char *)base + k->offset;
    uint64_t n;
    int choice;
    switch (k->kind) {
    case KIND_UINT:
        if (value_to_uint(ctx, k->name, v, k->min, k->max, &n))
            store_number(field, k->size, n);
        break;
    case KIND_DURATION:
        if (value_to_duration(ctx, k->name, v, k->min, &n))
            store_number(field, k->size, n);
        break;
    case KIND_RANGE:
    case KIND_MS_RANGE:
        value_to_range(ctx, k->name, v, k->kind == KIND_MS_RANGE, k->min, k->max, field);
        break;
    case KIND_CHOICE:
        choice = value_to_choice(ctx, k->name, v, k->words);
        if (choice >= 0)
            store_number(field, k->size, (uint64_t)choice);
        break;
    case KIND_BYTES:
        take_bytes(ctx, k->name, v, field, (size_t *)(void *)((char *)base + k->len_offset));
        break;
    case KIND_CUSTOM:
        k->set(ctx, base, v);
        break;
    }
}

/* The key of this name in this section, or NULL. */
static const struct key_spec *key_find(enum section_kind section, const char *name)
{
    for (size_t i = 0; i < KEY_NKEYS; i++)
        if (key_specs[i].section == section && strcmp(key_specs[i].name, name) == 0)
            return &key_specs[i];
    return NULL;
}

const char *scenario_key_name(bool clients, size_t i)
{
    enum section_kind section = clients ? SECTION_CLIENTS : SECTION_SCENARIO;
    for (size_t k = 0; k < KEY_NKEYS; k++)
        if (key_specs[k].section == section && i-- == 0)
            return key_specs[k].name;
    return NULL;
}

/* One typo apart: a character changed, added or dropped, or two neighbours swapped. */
static bool one_typo_apart(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i = 0;
    if (la < lb)
        return one_typo_apart(b, a);
    if (la - lb > 1)
        return false;
    while (i < lb && a[i] == b[i])
        i++;
    if (la > lb)
        return strcmp(a + i + 1, b + i) == 0;
    if (i == la)
        return false; /* the same word */
    return strcmp(a + i + 1, b + i + 1) == 0 ||
           (i + 1 < la && a[i] == b[i + 1] && a[i + 1] == b[i] &&
            strcmp(a + i + 2, b + i + 2) == 0);
}

/* An unknown key, with a hint: the section it belongs in, or the key it is a typo of. */
static void fail_unknown_key(struct parse_ctx *ctx, const char *name, const char *group)
{
    enum section_kind other = group ? SECTION_SCENARIO : SECTION_CLIENTS;
    const char *here = group ? "clients " : "scenario",
               *there = group ? "scenario" : "clients NAME";
    if (key_find(other, name) != NULL) {
        parse_fail(ctx, ctx->lineno, "%s: belongs in [%s], not in [%s%s]", name, there, here,
                   group ? group : "");
        return;
    }
    for (size_t i = 0; i < KEY_NKEYS; i++) {
        if (key_specs[i].section == ctx->section && one_typo_apart(name, key_specs[i].name)) {
            parse_fail(ctx, ctx->lineno,
                       "%s: unknown key in [%s%s] (did you mean %s?); see scenarios/README.md",
                       name, here, group ? group : "", key_specs[i].name);
            return;
        }
    }
    parse_fail(ctx, ctx->lineno, "%s: unknown key in [%s%s]; see scenarios/README.md", name, here,
               group ? group : "");
}

/* ---- end of a group: defaults and contradictions ---- */

/* X-Pad goes before the blank line that ends the headers, or at the end if there is none. */
static int group_apply_pad(struct parse_ctx *ctx, struct group_draft *d)
{
    struct client_group *g = &d->g;
    size_t pad = (size_t)d->request_pad;
    size_t at = g->request_len;
    if (at >= 4 && memcmp(g->request + at - 4, "\r\n\r\n", 4) == 0)
        at -= 2;
    size_t len = g->request_len + pad + 9; /* "X-Pad: " + pad + "\r\n" */
    if (len > SCENARIO_MAX_REQUEST) {
        parse_fail(ctx, d->key_line[KEY_REQUEST_PAD],
                   "request_pad: the padded request would be longer than %u bytes",
                   SCENARIO_MAX_REQUEST);
        return -1;
    }
    char *req = malloc(len + 1);
    if (req == NULL) {
        parse_fail(ctx, d->key_line[KEY_REQUEST_PAD], "request_pad: out of memory");
        return -1;
    }
    memcpy(req, g->request, at);
    memcpy(req + at, "X-Pad: ", 7);
    memset(req + at + 7, 'A', pad);
    memcpy(req + at + 7 + pad, "\r\n", 2);
    memcpy(req + at + 9 + pad, g->request + at, g->request_len - at);
    req[len] = '\0';
    free(g->request);
    g->request = req;
    g->request_len = len;
    return 0;
}

/* The first of the given keys that is set, or KEY_NKEYS. */
static enum key_id first_set(const struct group_draft *d, const enum key_id *keys, size_t n)
{
    enum key_id best = KEY_NKEYS;
    for (size_t i = 0; i < n; i++)
        if (d->key_line[keys[i]] && (best == KEY_NKEYS || d->key_line[keys[i]] < d->key_line[best]))
            best = keys[i];
    return best;
}

static void group_check_send(struct parse_ctx *ctx, struct group_draft *d)
{
    static const enum key_id trickle_keys[] = {KEY_TRICKLE_BYTES, KEY_TRICKLE_INTERVAL,
                                               KEY_TRICKLE_TAIL};
    static const enum key_id request_keys[] = {KEY_REQUEST, KEY_REQUEST_RAW, KEY_REQUEST_PAD,
                                               KEY_PIPELINE};
    const struct client_group *g = &d->g;
    enum key_id k;
    if (g->send != SEND_PARTIAL && d->key_line[KEY_SEND_BYTES])
        parse_fail(ctx, d->key_line[KEY_SEND_BYTES],
                   "send_bytes: only used with send = partial (send is %s)", send_words[g->send]);
    if (g->send == SEND_PARTIAL && !d->key_line[KEY_SEND_BYTES])
        parse_fail(ctx, d->key_line[KEY_SEND],
                   "send: partial needs send_bytes = N or A-B (how much of the request)");
    k = first_set(d, trickle_keys, 3);
    if (g->send != SEND_TRICKLE && k != KEY_NKEYS)
        parse_fail(ctx, d->key_line[k], "%s: only used with send = trickle (send is %s)",
                   key_specs[k].name, send_words[g->send]);
    k = first_set(d, request_keys, 4);
    if (g->send == SEND_NONE && k != KEY_NKEYS)
        parse_fail(ctx, d->key_line[k], "%s: unused because send = none (line %d)",
                   key_specs[k].name, d->key_line[KEY_SEND]);
    if (g->trickle_tail != NULL && g->end == END_HALF_CLOSE)
        parse_fail(ctx, d->key_line[KEY_END],
                   "end: half-close never happens: trickle_tail (line %d) keeps sending",
                   d->key_line[KEY_TRICKLE_TAIL]);
}

/* expect: only for clients that send a request and read, and no more responses than they
 * ask for. */
static void group_check_expect(struct parse_ctx *ctx, struct group_draft *d)
{
    const struct client_group *g = &d->g;
    int line = d->key_line[KEY_EXPECT];
    if (!line)
        return;
    if (g->read == READ_NONE)
        parse_fail(ctx, line,
                   "expect: a client that never reads (read = none, line %d) receives "
                   "nothing",
                   d->key_line[KEY_READ]);
    else if (g->send == SEND_NONE)
        parse_fail(ctx, line, "expect: no request is sent (send = none, line %d)",
                   d->key_line[KEY_SEND]);
    else if (g->expect_responses > g->pipeline)
        parse_fail(ctx, line, "expect: %u responses, but only %u request%s sent (pipeline)",
                   g->expect_responses, g->pipeline, g->pipeline == 1 ? " is" : "s are");
}

static void group_finish(struct parse_ctx *ctx, struct group_draft *d)
{
    struct client_group *g = &d->g;
    if (!d->key_line[KEY_COUNT]) {
        parse_fail(ctx, g->line, "[clients %s]: missing count = N (required)", g->name);
        return;
    }
    if (d->key_line[KEY_REQUEST] && d->key_line[KEY_REQUEST_RAW]) {
        parse_fail(ctx, d->key_line[KEY_REQUEST_RAW],
                   "request_raw: conflicts with request (line %d); give one of them",
                   d->key_line[KEY_REQUEST]);
        return;
    }
    if (g->request == NULL) {
        struct strbuf v = {0};
        int line = ctx->lineno;
        ctx->lineno = g->line; /* an error here belongs to the group, not the current line */
        if (strbuf_append_str(&v, "large") == 0)
            set_request(ctx, d, &v);
        ctx->lineno = line;
        free(v.data);
        if (ctx->failed)
            return;
    }
    if (d->request_pad && group_apply_pad(ctx, d) < 0)
        return;
    group_check_send(ctx, d);
    group_check_expect(ctx, d);
    if (!d->key_line[KEY_CONCURRENCY])
        g->concurrency = g->count < SCENARIO_MAX_CONCURRENCY ? g->count : SCENARIO_MAX_CONCURRENCY;
    if (g->concurrency > g->count)
        g->concurrency = g->count;
    /* a partial send of the whole request or more is a whole send: clamp so the engine never
     * sends past the end (the request may be replaced from the command line) */
    uint64_t total = (uint64_t)g->request_len * g->pipeline;
    if (g->send_bytes.hi > total)
        g->send_bytes.hi = total;
    if (g->send_bytes.lo > g->send_bytes.hi)
        g->send_bytes.lo = g->send_bytes.hi;
}

/* ---- sections ---- */

static void group_draft_init(struct group_draft *d, const char *name, int line)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->g.name, sizeof(d->g.name), "%s", name);
    d->g.line = line;
    d->g.pipeline = 1;
    d->g.send = SEND_WHOLE;
    d->g.trickle_bytes = 1;
    d->g.trickle_interval_ms = 200;
    d->g.read = READ_ALL;
    d->g.end = END_CLOSE;
}

static void start_group(struct parse_ctx *ctx, const char *name, size_t name_len)
{
    char shown[64];
    if (name_len == 0) {
        parse_fail(ctx, ctx->lineno, "[clients]: expected a group name, like [clients readers]");
        return;
    }
    if (name_len > SCENARIO_MAX_GROUP_NAME ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") <
            name_len) {
        parse_fail(ctx, ctx->lineno,
                   "[clients %s]: a group name is 1 to %d letters, digits, '_', '.' or '-'",
                   quote_for_message(name, name_len, shown, sizeof(shown)),
                   SCENARIO_MAX_GROUP_NAME);
        return;
    }
    char buf[SCENARIO_MAX_GROUP_NAME + 1];
    memcpy(buf, name, name_len);
    buf[name_len] = '\0';
    for (size_t i = 0; i < ctx->ndrafts; i++) {
        if (strcmp(ctx->drafts[i].g.name, buf) == 0) {
            parse_fail(ctx, ctx->lineno, "[clients %s]: duplicate group name (first at line %d)",
                       buf, ctx->drafts[i].g.line);
            return;
        }
    }
    if (ctx->ndrafts == SCENARIO_MAX_GROUPS) {
        parse_fail(ctx, ctx->lineno, "[clients %s]: more than %d groups", buf, SCENARIO_MAX_GROUPS);
        return;
    }
    struct group_draft *drafts = realloc(ctx->drafts, (ctx->ndrafts + 1) * sizeof(*drafts));
    if (drafts == NULL) {
        parse_fail(ctx, ctx->lineno, "out of memory");
        return;
    }
    ctx->drafts = drafts;
    group_draft_init(&drafts[ctx->ndrafts++], buf, ctx->lineno);
    ctx->section = SECTION_CLIENTS;
}

static void end_section(struct parse_ctx *ctx)
{
    if (ctx->section == SECTION_CLIENTS)
        group_finish(ctx, &ctx->drafts[ctx->ndrafts - 1]);
    ctx->section = SECTION_NONE;
}

/* "[...]" at the start of a line: s points at '['. */
static void start_section(struct parse_ctx *ctx, const char *s)
{
    char shown[64];
    const char *close = strchr(s, ']');
    if (close == NULL) {
        parse_fail(ctx, ctx->lineno, "expected \"]\" to close the section header");
        return;
    }
    const char *after = skip_blank(close + 1);
    if (*after != '\0' && *after != '#' && *after != ';') {
        parse_fail(ctx, ctx->lineno, "unexpected text after the section header: \"%s\"",
                   quote_for_message(after, trim_end(after, strlen(after)), shown, sizeof(shown)));
        return;
    }
    end_section(ctx);
    if (ctx->failed)
        return;
    const char *name = skip_blank(s + 1);
    size_t len = trim_end(name, (size_t)(close - name));
    if (span_equals(name, len, "scenario")) {
        if (ctx->seen_scenario_section)
            parse_fail(ctx, ctx->lineno, "[scenario]: given twice");
        ctx->seen_scenario_section = true;
        ctx->section = SECTION_SCENARIO;
    } else if (len >= 7 && memcmp(name, "clients", 7) == 0 && (len == 7 || is_blank(name[7]))) {
        const char *group = skip_blank(name + 7);
        start_group(ctx, group, len - (size_t)(group - name));
    } else {
        parse_fail(ctx, ctx->lineno, "unknown section [%s]; expected [scenario] or [clients NAME]",
                   quote_for_message(name, len, shown, sizeof(shown)));
    }
}

/* ---- the line reader inih pulls from, and the handler it calls ---- */

/* Checks what inih would accept silently or mangle; tracks sections. */
static void check_line(struct parse_ctx *ctx, const char *line)
{
    const char *s = line;
    if (ctx->lineno == 1 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3; /* UTF-8 byte order mark: inih skips it too */
    s = skip_blank(s);
    if (*s == '\0' || *s == '#' || *s == ';')
        return;
    if (*s == '[') {
        start_section(ctx, s);
        return;
    }
    size_t key_len = strcspn(s, "=:");
    if (s[key_len] == '\0' || trim_end(s, key_len) == 0) {
        char shown[64];
        parse_fail(ctx, ctx->lineno,
                   "expected \"key = value\", \"[section]\" or a comment; got \"%s\"",
                   quote_for_message(s, trim_end(s, strlen(s)), shown, sizeof(shown)));
    }
}

static char *scenario_read_line(char *str, int num, void *stream)
{
    struct parse_ctx *ctx = stream;
    if (ctx->failed)
        return NULL; /* stop inih at the first error */
    errno = 0;
    ssize_t n = getline(&ctx->line, &ctx->line_cap, ctx->file);
    if (n < 0) {
        if (ferror(ctx->file))
            parse_fail(ctx, 0, "%s", strerror(errno ? errno : EIO));
        return NULL;
    }
    ctx->lineno++;
    size_t len = (size_t)n;
    if (len > 0 && ctx->line[len - 1] == '\n')
        len--;
    if (len > 0 && ctx->line[len - 1] == '\r')
        len--;
    if (len > SCENARIO_MAX_LINE || (size_t)n + 1 > (size_t)num) {
        parse_fail(ctx, ctx->lineno, "line too long (%zu characters; at most %d)", len,
                   SCENARIO_MAX_LINE);
        return NULL;
    }
    if (memchr(ctx->line, '\0', (size_t)n) != NULL) {
        parse_fail(ctx, ctx->lineno, "NUL byte in line (write \\x00 in a quoted value)");
        return NULL;
    }
    check_line(ctx, ctx->line);
    if (ctx->failed)
        return NULL;
    memcpy(str, ctx->line, (size_t)n + 1);
    return str;
}

static int scenario_handle_pair(void *user, const char *section, const char *name,
                                const char *value)
{
    struct parse_ctx *ctx = user;
    (void)section; /* we track sections ourselves (check_line) */
    if (ctx->failed)
        return 1;
    if (ctx->section == SECTION_NONE) {
        parse_fail(ctx, ctx->lineno,
                   "%s: key outside any section; put it under [scenario] or [clients NAME]", name);
        return 1;
    }
    bool in_group = ctx->section == SECTION_CLIENTS;
    struct group_draft *d = in_group ? &ctx->drafts[ctx->ndrafts - 1] : NULL;
    int *key_line = in_group ? d->key_line : ctx->scenario_key_line;
    const struct key_spec *k = key_find(ctx->section, name);
    if (k == NULL) {
        fail_unknown_key(ctx, name, in_group ? d->g.name : NULL);
        return 1;
    }
    size_t id = (size_t)(k - key_specs);
    if (key_line[id]) {
        parse_fail(ctx, ctx->lineno, "%s: given twice in this section (first at line %d)", name,
                   key_line[id]);
        return 1;
    }
    key_line[id] = ctx->lineno;
    struct strbuf v = {0};
    if (parse_value(ctx, name, value, k->placeholders, &v) == 0)
        key_apply(ctx, k, in_group ? (void *)d : (void *)ctx->sc, &v);
    free(v.data);
    return 1;
}

/* ---- the whole file ---- */

static int scenario_set_name(struct parse_ctx *ctx, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 4 && strcmp(base + len - 4, ".ini") == 0)
        len -= 4;
    if (len == 0 || len >= sizeof(ctx->sc->name) || strlen(path) >= sizeof(ctx->sc->path)) {
        parse_fail(ctx, 0, "file name too long (or empty) for a scenario name");
        return -1;
    }
    memcpy(ctx->sc->name, base, len);
    ctx->sc->name[len] = '\0';
    snprintf(ctx->sc->path, sizeof(ctx->sc->path), "%s", path);
    return 0;
}

/* Checks that need the whole file: a group at all, every start inside the fault phase. */
static void scenario_finish(struct parse_ctx *ctx)
{
    struct scenario *sc = ctx->sc;
    if (ctx->ndrafts == 0) {
        parse_fail(ctx, 0, "no [clients NAME] section: a scenario needs at least one group");
        return;
    }
    for (size_t i = 0; i < ctx->ndrafts; i++) {
        const struct group_draft *d = &ctx->drafts[i];
        if (d->g.start_ms >= sc->duration_ms)
            parse_fail(ctx, d->key_line[KEY_START],
                       "start: %ums is not before the end of the fault phase (duration = %ums)",
                       d->g.start_ms, sc->duration_ms);
    }
    if (sc->cable_pull_ms && sc->cable_pull_ms >= sc->duration_ms)
        parse_fail(ctx, ctx->scenario_key_line[KEY_CABLE_PULL],
                   "cable_pull: %ums is not before the end of the fault phase (duration = %ums)",
                   sc->cable_pull_ms, sc->duration_ms);
    if (sc->probe_expect && !sc->probe_raw)
        parse_fail(ctx, ctx->scenario_key_line[KEY_PROBE_EXPECT],
                   "probe_expect: goes with probe_raw (the bytes the probe sends)");
    if (ctx->failed)
        return;
    sc->groups = calloc(ctx->ndrafts, sizeof(*sc->groups));
    if (sc->groups == NULL) {
        parse_fail(ctx, 0, "out of memory");
        return;
    }
    for (size_t i = 0; i < ctx->ndrafts; i++) {
        sc->groups[i] = ctx->drafts[i].g; /* ownership of request/trickle_tail moves */
        if (sc->groups[i].end == END_DROP)
            sc->needs_sandbox = true;
        /* a partial or endless request is never answered: it asks for no path */
        const struct client_group *g = &sc->groups[i];
        if (g->send == SEND_WHOLE || (g->send == SEND_TRICKLE && g->trickle_tail == NULL))
            sc->paths |= ctx->drafts[i].paths;
    }
    if (sc->cable_pull_ms)
        sc->needs_sandbox = true;
    sc->ngroups = ctx->ndrafts;
    ctx->ndrafts = 0;
}

/* Debian's libinih exposes its build options as process-wide variables. We want: no
 * Python-style continuation lines (an indented key must not be glued to the previous value),
 * no inih inline comments (it would cut quoted values at " ;"; we strip comments ourselves),
 * and a heap line buffer big enough for our own line limit. connfault is the only inih user in
 * the process, so setting them on every load is harmless. */
static void scenario_configure_inih(void)
{
    ini_allow_multiline = false;
    ini_allow_inline_comments = false;
    ini_stop_on_first_error = true;
    ini_use_stack = false;
    ini_allow_realloc = false;
    ini_initial_alloc = SCENARIO_MAX_LINE + 3; /* + "\r\n\0" */
    ini_max_line = SCENARIO_MAX_LINE + 3;
}

static void scenario_vars_defaults(struct scenario_vars *out, const struct scenario_vars *in)
{
    memset(out, 0, sizeof(*out));
    if (in != NULL)
        *out = *in;
    if (out->host == NULL)
        out->host = "127.0.0.1";
    if (out->probe_path == NULL)
        out->probe_path = "/";
    if (out->large_path == NULL)
        out->large_path = "/bytes/1048576";
    if (out->huge_path == NULL)
        out->huge_path = "/bytes/16777216";
}

static void parse_ctx_free(struct parse_ctx *ctx)
{
    for (size_t i = 0; i < ctx->ndrafts; i++) {
        free(ctx->drafts[i].g.request);
        free(ctx->drafts[i].g.trickle_tail);
    }
    free(ctx->drafts);
    free(ctx->line);
    if (ctx->file != NULL)
        fclose(ctx->file);
}

int scenario_load(const char *path, const struct scenario_vars *vars, struct scenario *out,
                  char *err, size_t errlen)
{
    struct parse_ctx ctx = {.path = path, .sc = out, .err = err, .errlen = errlen};
    memset(out, 0, sizeof(*out));
    out->duration_ms = SCENARIO_DEFAULT_MS;
    if (errlen > 0)
        err[0] = '\0';
    scenario_vars_defaults(&ctx.vars, vars);
    if (scenario_set_name(&ctx, path) == 0) {
        ctx.file = fopen(path, "r");
        if (ctx.file == NULL)
            parse_fail(&ctx, 0, "%s", strerror(errno));
    }
    if (!ctx.failed) {
        scenario_configure_inih();
        int rc = ini_parse_stream(scenario_read_line, &ctx, scenario_handle_pair, &ctx);
        if (rc == -2)
            parse_fail(&ctx, 0, "out of memory");
        else if (rc != 0) /* check_line should have caught it; keep inih's word as a backstop */
            parse_fail(&ctx, rc, "syntax error");
    }
    if (!ctx.failed)
        end_section(&ctx);
    if (!ctx.failed)
        scenario_finish(&ctx);
    if (!ctx.failed && out->description == NULL && (out->description = strdup("")) == NULL)
        parse_fail(&ctx, 0, "out of memory");
    parse_ctx_free(&ctx);
    if (ctx.failed) {
        scenario_free(out);
        return -1;
    }
    return 0;
}

void scenario_free(struct scenario *sc)
{
    if (sc == NULL)
        return;
    for (size_t i = 0; i < sc->ngroups; i++) {
        free(sc->groups[i].request);
        free(sc->groups[i].trickle_tail);
    }
    free(sc->groups);
    free(sc->description);
    free(sc->probe_raw);
    free(sc->probe_expect);
    free(sc->catches);
    memset(sc, 0, sizeof(*sc));
}
