/* scenario: load a fault scenario file (format: scenarios/README.md) into a struct scenario.
 *
 * inih splits "key = value" lines; everything else is ours. We feed inih through our own line
 * reader so that we know the line number of every key (this inih build has no line numbers in
 * its handler), see section headers even when the section has no keys, and can reject a bad
 * line before inih silently accepts or truncates it. Keys are checked as they come; what can
 * only be judged once a group is complete (missing count, contradicting keys) is checked when
 * the next section starts or the file ends, so the first error in file order is the one shown.
 */
#include "scenario.h"

#include "escape.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CONNFAULT_SOURCE_SCENARIO_DIR
#define CONNFAULT_SOURCE_SCENARIO_DIR "scenarios"
#endif
#ifndef CONNFAULT_INSTALL_SCENARIO_DIR
#define CONNFAULT_INSTALL_SCENARIO_DIR "/usr/local/share/connfault/scenarios"
#endif

#define SCENARIO_MAX_LINE        16384 /* characters, not counting the line end */
#define SCENARIO_MAX_GROUPS      256
#define SCENARIO_MAX_GROUP_NAME  40
#define SCENARIO_MAX_DESCRIPTION 512
#define SCENARIO_MAX_REQUEST     (1u << 20)
#define SCENARIO_MAX_COUNT       1000000
#define SCENARIO_MAX_CONCURRENCY 100000
#define SCENARIO_MAX_MS          3600000 /* one hour: longer is a typo, not a fault phase */
#define SCENARIO_DEFAULT_MS      5000

enum section_kind { SECTION_NONE, SECTION_SCENARIO, SECTION_CLIENTS };

enum scenario_key {
    SK_DESCRIPTION,
    SK_DURATION,
    SK_RLIMIT_NOFILE,
    SK_PROBE_RAW,
    SK_PROBE_EXPECT,
    SK_CABLE_PULL,
    SK_COUNT_
};

enum group_key {
    GK_COUNT,
    GK_CONCURRENCY,
    GK_RATE,
    GK_START,
    GK_REQUEST,
    GK_REQUEST_RAW,
    GK_REQUEST_PAD,
    GK_PIPELINE,
    GK_SEND,
    GK_SEND_BYTES,
    GK_TRICKLE_BYTES,
    GK_TRICKLE_INTERVAL,
    GK_TRICKLE_TAIL,
    GK_READ,
    GK_HOLD,
    GK_END,
    GK_RCVBUF,
    GK_HOST,
    GK_COUNT_
};

static const char *const scenario_key_names[SK_COUNT_] = {
    "description", "duration", "rlimit_nofile", "probe_raw", "probe_expect", "cable_pull"};

static const char *const group_key_names[GK_COUNT_] = {
    "count",        "concurrency", "rate", "start",      "request",       "request_raw",
    "request_pad",  "pipeline",    "send", "send_bytes", "trickle_bytes", "trickle_interval",
    "trickle_tail", "read",        "hold", "end",        "rcvbuf",        "host",
};

/* A group while its section is being read: the result plus where each key was given. */
struct group_draft {
    struct client_group g;
    int key_line[GK_COUNT_]; /* 0 = not given */
    uint64_t request_pad;
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
    int scenario_key_line[SK_COUNT_];
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

/* Expands the {placeholder} starting at s[0] == '{'; returns characters consumed, or 0. */
static size_t expand_placeholder(struct parse_ctx *ctx, const char *key, const char *s,
                                 struct strbuf *out)
{
    const char *close = strchr(s, '}');
    size_t name_len = close ? (size_t)(close - s - 1) : strcspn(s + 1, " \"");
    const char *value = NULL;
    if (close != NULL && span_equals(s + 1, name_len, "host"))
        value = ctx->vars.host;
    else if (close != NULL && span_equals(s + 1, name_len, "probe_path"))
        value = ctx->vars.probe_path;
    else if (close != NULL && span_equals(s + 1, name_len, "large_path"))
        value = ctx->vars.large_path;
    if (value == NULL) {
        char shown[64];
        parse_fail(ctx, ctx->lineno,
                   "%s: unknown placeholder \"{%s\"; expected {host}, {probe_path} or "
                   "{large_path} (write \\x7b for a literal \"{\")",
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

/* ---- one key of [scenario] ---- */

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

/* Index of v in words, or -1 with ctx failed. */
static int value_to_choice(struct parse_ctx *ctx, const char *key, const struct strbuf *v,
                           const char *const *words, size_t nwords, const char *expected)
{
    for (size_t i = 0; i < nwords; i++)
        if (span_equals(v->data, v->len, words[i]))
            return (int)i;
    fail_expected(ctx, key, expected, v);
    return -1;
}

static int take_bytes(struct parse_ctx *ctx, const char *key, struct strbuf *v, char **dst,
                      size_t *dst_len);

static void scenario_set_key(struct parse_ctx *ctx, enum scenario_key k, struct strbuf *v)
{
    struct scenario *sc = ctx->sc;
    uint64_t n;
    switch (k) {
    case SK_DESCRIPTION:
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
        return;
    case SK_DURATION:
        if (value_to_duration(ctx, "duration", v, 1, &n))
            sc->duration_ms = (unsigned)n;
        return;
    case SK_RLIMIT_NOFILE:
        if (value_to_uint(ctx, "rlimit_nofile", v, 8, 1048576, &n))
            sc->rlimit_nofile = (unsigned)n;
        return;
    case SK_CABLE_PULL:
        if (value_to_duration(ctx, "cable_pull", v, 1, &n))
            sc->cable_pull_ms = (unsigned)n;
        return;
    case SK_PROBE_RAW:
        take_bytes(ctx, "probe_raw", v, &sc->probe_raw, &sc->probe_raw_len);
        return;
    case SK_PROBE_EXPECT:
        take_bytes(ctx, "probe_expect", v, &sc->probe_expect, &sc->probe_expect_len);
        return;
    case SK_COUNT_:
        break;
    }
}

/* ---- one key of [clients NAME] ---- */

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

static bool is_token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* "large", "probe" or "METHOD PATH" (already placeholder-expanded) into the request bytes. */
static void group_set_request(struct parse_ctx *ctx, struct group_draft *d, struct strbuf *v)
{
    const struct scenario_vars *vars = &ctx->vars;
    struct strbuf req = {0};
    const char *raw = NULL;
    size_t raw_len = 0, method_len = 0;
    if (span_equals(v->data, v->len, "large")) {
        raw = vars->request_raw, raw_len = vars->request_raw_len;
        v->len = 0;
        strbuf_append_str(v, "GET ");
        strbuf_append_str(v, vars->large_path);
    } else if (span_equals(v->data, v->len, "probe")) {
        raw = vars->probe_raw, raw_len = vars->probe_raw_len;
        v->len = 0;
        strbuf_append_str(v, "GET ");
        strbuf_append_str(v, vars->probe_path);
    }
    while (method_len < v->len && is_token_char(v->data[method_len]))
        method_len++;
    const char *path = v->data + method_len + 1;
    size_t path_len = v->len > method_len ? v->len - method_len - 1 : 0;
    bool path_ok = path_len > 0 && path[0] != ' ';
    for (size_t i = 0; path_ok && i < path_len; i++)
        path_ok = (unsigned char)path[i] > 0x20 && (unsigned char)path[i] != 0x7f;
    if (raw == NULL && (method_len == 0 || v->data[method_len] != ' ' || !path_ok)) {
        fail_expected(ctx, "request",
                      "large, probe or METHOD PATH (like GET /bytes/65536); for anything else "
                      "use request_raw",
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

static void group_set_key(struct parse_ctx *ctx, struct group_draft *d, enum group_key k,
                          struct strbuf *v)
{
    static const char *const send_words[] = {"whole", "partial", "trickle", "none"};
    static const char *const end_words[] = {"close", "reset", "half-close", "hold", "drop"};
    struct client_group *g = &d->g;
    const char *key = group_key_names[k];
    uint64_t n;
    int choice;
    switch (k) {
    case GK_COUNT:
        if (value_to_uint(ctx, key, v, 1, SCENARIO_MAX_COUNT, &n))
            g->count = (unsigned)n;
        break;
    case GK_CONCURRENCY:
        if (value_to_uint(ctx, key, v, 1, SCENARIO_MAX_CONCURRENCY, &n))
            g->concurrency = (unsigned)n;
        break;
    case GK_RATE: {
        char *end;
        double rate = strtod(v->data, &end);
        /* strtod also takes "nan", "inf" and hex: accept only plain decimal numbers */
        if (v->len == 0 || end != v->data + v->len || strspn(v->data, "0123456789.") != v->len ||
            !(rate >= 0 && rate <= 1e6))
            fail_expected(ctx, key, "connections per second from 0 to 1000000 (0 = no limit)", v);
        else
            g->rate = rate;
        break;
    }
    case GK_START:
        if (value_to_duration(ctx, key, v, 0, &n))
            g->start_ms = (unsigned)n;
        break;
    case GK_REQUEST:
        group_set_request(ctx, d, v);
        break;
    case GK_REQUEST_RAW:
        take_bytes(ctx, key, v, &g->request, &g->request_len);
        break;
    case GK_REQUEST_PAD:
        value_to_uint(ctx, key, v, 1, SCENARIO_MAX_REQUEST, &d->request_pad);
        break;
    case GK_PIPELINE:
        if (value_to_uint(ctx, key, v, 1, 1000, &n))
            g->pipeline = (unsigned)n;
        break;
    case GK_SEND:
        choice =
            value_to_choice(ctx, key, v, send_words, 4, "one of whole, partial, trickle, none");
        if (choice >= 0)
            g->send = (enum send_mode)choice;
        break;
    case GK_SEND_BYTES:
        value_to_range(ctx, key, v, false, 1, SCENARIO_MAX_REQUEST * 1000ull, &g->send_bytes);
        break;
    case GK_TRICKLE_BYTES:
        if (value_to_uint(ctx, key, v, 1, 65536, &n))
            g->trickle_bytes = (unsigned)n;
        break;
    case GK_TRICKLE_INTERVAL:
        if (value_to_duration(ctx, key, v, 1, &n))
            g->trickle_interval_ms = (unsigned)n;
        break;
    case GK_TRICKLE_TAIL:
        take_bytes(ctx, key, v, &g->trickle_tail, &g->trickle_tail_len);
        break;
    case GK_READ:
        if (span_equals(v->data, v->len, "all"))
            g->read = READ_ALL;
        else if (span_equals(v->data, v->len, "none"))
            g->read = READ_NONE;
        else if (v->len > 0 && v->data[0] >= '0' && v->data[0] <= '9') {
            g->read = READ_BYTES;
            value_to_range(ctx, key, v, false, 1, 1ull << 40, &g->read_bytes);
        } else
            fail_expected(ctx, key, "all, none, N or A-B (bytes)", v);
        break;
    case GK_HOLD:
        value_to_range(ctx, key, v, true, 0, SCENARIO_MAX_MS, &g->hold_ms);
        break;
    case GK_END:
        choice = value_to_choice(ctx, key, v, end_words, 5,
                                 "one of close, reset, half-close, hold, drop");
        if (choice >= 0)
            g->end = (enum end_mode)choice;
        break;
    case GK_RCVBUF:
        if (value_to_uint(ctx, key, v, 1, 64u << 20, &n))
            g->rcvbuf = (int)n;
        break;
    case GK_HOST:
        /* Simulated client hosts are extra loopback addresses: never anything else. */
        if (inet_pton(AF_INET, v->data, &g->host) != 1 || (ntohl(g->host.s_addr) >> 24) != 127 ||
            ntohl(g->host.s_addr) == INADDR_LOOPBACK)
            parse_fail(ctx, ctx->lineno,
                       "host: expected a loopback address other than 127.0.0.1 (127.0.0.2 and "
                       "up: probes use 127.0.0.1); got \"%s\"",
                       v->data);
        break;
    case GK_COUNT_:
        break;
    }
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
        parse_fail(ctx, d->key_line[GK_REQUEST_PAD],
                   "request_pad: the padded request would be longer than %u bytes",
                   SCENARIO_MAX_REQUEST);
        return -1;
    }
    char *req = malloc(len + 1);
    if (req == NULL) {
        parse_fail(ctx, d->key_line[GK_REQUEST_PAD], "request_pad: out of memory");
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

/* The first of the given keys that is set, or GK_COUNT_. */
static enum group_key first_set(const struct group_draft *d, const enum group_key *keys, size_t n)
{
    enum group_key best = GK_COUNT_;
    for (size_t i = 0; i < n; i++)
        if (d->key_line[keys[i]] && (best == GK_COUNT_ || d->key_line[keys[i]] < d->key_line[best]))
            best = keys[i];
    return best;
}

static void group_check_send(struct parse_ctx *ctx, struct group_draft *d)
{
    static const char *const send_words[] = {"whole", "partial", "trickle", "none"};
    static const enum group_key trickle_keys[] = {GK_TRICKLE_BYTES, GK_TRICKLE_INTERVAL,
                                                  GK_TRICKLE_TAIL};
    static const enum group_key request_keys[] = {GK_REQUEST, GK_REQUEST_RAW, GK_REQUEST_PAD,
                                                  GK_PIPELINE};
    const struct client_group *g = &d->g;
    enum group_key k;
    if (g->send != SEND_PARTIAL && d->key_line[GK_SEND_BYTES])
        parse_fail(ctx, d->key_line[GK_SEND_BYTES],
                   "send_bytes: only used with send = partial (send is %s)", send_words[g->send]);
    if (g->send == SEND_PARTIAL && !d->key_line[GK_SEND_BYTES])
        parse_fail(ctx, d->key_line[GK_SEND],
                   "send: partial needs send_bytes = N or A-B (how much of the request)");
    k = first_set(d, trickle_keys, 3);
    if (g->send != SEND_TRICKLE && k != GK_COUNT_)
        parse_fail(ctx, d->key_line[k], "%s: only used with send = trickle (send is %s)",
                   group_key_names[k], send_words[g->send]);
    k = first_set(d, request_keys, 4);
    if (g->send == SEND_NONE && k != GK_COUNT_)
        parse_fail(ctx, d->key_line[k], "%s: unused because send = none (line %d)",
                   group_key_names[k], d->key_line[GK_SEND]);
    if (g->trickle_tail != NULL && g->end == END_HALF_CLOSE)
        parse_fail(ctx, d->key_line[GK_END],
                   "end: half-close never happens: trickle_tail (line %d) keeps sending",
                   d->key_line[GK_TRICKLE_TAIL]);
}

static void group_finish(struct parse_ctx *ctx, struct group_draft *d)
{
    struct client_group *g = &d->g;
    if (!d->key_line[GK_COUNT]) {
        parse_fail(ctx, g->line, "[clients %s]: missing count = N (required)", g->name);
        return;
    }
    if (d->key_line[GK_REQUEST] && d->key_line[GK_REQUEST_RAW]) {
        parse_fail(ctx, d->key_line[GK_REQUEST_RAW],
                   "request_raw: conflicts with request (line %d); give one of them",
                   d->key_line[GK_REQUEST]);
        return;
    }
    if (g->request == NULL) {
        struct strbuf v = {0};
        int line = ctx->lineno;
        ctx->lineno = g->line; /* an error here belongs to the group, not the current line */
        if (strbuf_append_str(&v, "large") == 0)
            group_set_request(ctx, d, &v);
        ctx->lineno = line;
        free(v.data);
        if (ctx->failed)
            return;
    }
    if (d->request_pad && group_apply_pad(ctx, d) < 0)
        return;
    group_check_send(ctx, d);
    if (!d->key_line[GK_CONCURRENCY])
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

static int find_key(const char *const *names, int count, const char *key)
{
    for (int i = 0; i < count; i++)
        if (strcmp(names[i], key) == 0)
            return i;
    return -1;
}

static bool key_has_placeholders(int key)
{
    return key == GK_REQUEST || key == GK_REQUEST_RAW || key == GK_TRICKLE_TAIL;
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
    int *key_line = in_group ? ctx->drafts[ctx->ndrafts - 1].key_line : ctx->scenario_key_line;
    int key = in_group ? find_key(group_key_names, GK_COUNT_, name)
                       : find_key(scenario_key_names, SK_COUNT_, name);
    if (key < 0) {
        parse_fail(ctx, ctx->lineno, "%s: unknown key in [%s%s]; see scenarios/README.md", name,
                   in_group ? "clients " : "scenario",
                   in_group ? ctx->drafts[ctx->ndrafts - 1].g.name : "");
        return 1;
    }
    if (key_line[key]) {
        parse_fail(ctx, ctx->lineno, "%s: given twice in this section (first at line %d)", name,
                   key_line[key]);
        return 1;
    }
    key_line[key] = ctx->lineno;
    struct strbuf v = {0};
    bool placeholders = in_group ? key_has_placeholders(key) : key == SK_PROBE_RAW;
    if (parse_value(ctx, name, value, placeholders, &v) == 0) {
        if (in_group)
            group_set_key(ctx, &ctx->drafts[ctx->ndrafts - 1], (enum group_key)key, &v);
        else
            scenario_set_key(ctx, (enum scenario_key)key, &v);
    }
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
            parse_fail(ctx, d->key_line[GK_START],
                       "start: %ums is not before the end of the fault phase (duration = %ums)",
                       d->g.start_ms, sc->duration_ms);
    }
    if (sc->cable_pull_ms && sc->cable_pull_ms >= sc->duration_ms)
        parse_fail(ctx, ctx->scenario_key_line[SK_CABLE_PULL],
                   "cable_pull: %ums is not before the end of the fault phase (duration = %ums)",
                   sc->cable_pull_ms, sc->duration_ms);
    if (sc->probe_expect && !sc->probe_raw)
        parse_fail(ctx, ctx->scenario_key_line[SK_PROBE_EXPECT],
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
    memset(sc, 0, sizeof(*sc));
}

static bool is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* <dir of this executable>/../share/connfault/scenarios: an installation moved elsewhere, or
 * installed with `cmake --install --prefix` other than the configured one. */
static const char *scenario_dir_next_to_executable(void)
{
    static char dir[PATH_MAX];
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    snprintf(dir, sizeof(dir), "%.4000s/../share/connfault/scenarios", self);
    return is_directory(dir) ? dir : NULL;
}

const char *scenario_builtin_dir(void)
{
    const char *env = getenv("CONNFAULT_SCENARIO_DIR");
    if (env != NULL && env[0] != '\0')
        return env;
    if (is_directory(CONNFAULT_SOURCE_SCENARIO_DIR))
        return CONNFAULT_SOURCE_SCENARIO_DIR;
    const char *next_to_us = scenario_dir_next_to_executable();
    return next_to_us ? next_to_us : CONNFAULT_INSTALL_SCENARIO_DIR;
}
