/* scenario_write: a struct scenario back to a scenario file that scenario_load reads as the
 * same scenario (for `connfault shrink`, whose output must be a file `connfault run` takes).
 * Requests are written as request_raw with {host} and the path placeholders put back, so the
 * file still names the paths the pre-flight checks and follows --host/--port of the run. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "scenario.h"

/* Bytes for inside a quoted value: C escapes for the unprintable, '"', '\\' and '{' (a
 * placeholder's start in the file format). */
static void write_escaped(FILE *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            fputs("\\r", out);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c == '\\' || c == '"')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f || c == '{')
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
}

static void write_bytes_key(FILE *out, const char *key, const char *s, size_t len)
{
    fprintf(out, "%s = \"", key);
    write_escaped(out, s, len);
    fputs("\"\n", out);
}

static bool starts_with(const char *s, size_t len, const char *prefix, size_t plen)
{
    return plen > 0 && len >= plen && memcmp(s, prefix, plen) == 0;
}

/* The path placeholder whose value is exactly s[0..len), or NULL. */
static const char *path_placeholder(const char *s, size_t len, const struct scenario_vars *v)
{
    const struct {
        const char *name, *value;
    } paths[] = {{"{huge_path}", v->huge_path},
                 {"{large_path}", v->large_path},
                 {"{probe_path}", v->probe_path}};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (paths[i].value && strlen(paths[i].value) == len && memcmp(s, paths[i].value, len) == 0)
            return paths[i].name;
    return NULL;
}

/* The "X-Pad: AAA...\r\n" header request_pad added: its start and the number of A's, or NULL
 * (written back as request_pad: a padded request is longer than a line of the file may be). */
static const char *find_pad(const char *req, size_t len, size_t *pad)
{
    static const char name[] = "X-Pad: ";
    for (const char *p = req; (p = memmem(p, len - (size_t)(p - req), name, 7)) != NULL; p++) {
        size_t n = 0, rest = len - (size_t)(p - req) - 7;
        while (n < rest && p[7 + n] == 'A')
            n++;
        if (n > 0 && rest - n >= 2 && memcmp(p + 7 + n, "\r\n", 2) == 0) {
            *pad = n;
            return p;
        }
    }
    return NULL;
}

/* A request: in "METHOD PATH ", a PATH that is one of the run's paths, and the HOST of
 * "Host: HOST", get their placeholders back; request_pad's header goes back to the key; the
 * rest is written as escaped bytes. */
static void write_request(FILE *out, const char *req, size_t len, const struct scenario_vars *v)
{
    size_t i = 0, pad = 0, host_len = v->host ? strlen(v->host) : 0;
    const char *sp = memchr(req, ' ', len);
    const char *sp2 = sp ? memchr(sp + 1, ' ', len - (size_t)(sp + 1 - req)) : NULL;
    const char *ph = sp2 ? path_placeholder(sp + 1, (size_t)(sp2 - sp - 1), v) : NULL;
    const char *pad_at = find_pad(req, len, &pad);
    fputs("request_raw = \"", out);
    while (i < len) {
        if (ph && req + i == sp + 1) {
            fputs(ph, out);
            i = (size_t)(sp2 - req);
        } else if (pad_at && req + i == pad_at) {
            i += 7 + pad + 2;
        } else if (starts_with(req + i, len - i, "Host: ", 6) &&
                   starts_with(req + i + 6, len - i - 6, v->host, host_len)) {
            fputs("Host: {host}", out);
            i += 6 + host_len;
        } else {
            write_escaped(out, req + i, 1);
            i++;
        }
    }
    fputs("\"\n", out);
    if (pad_at)
        fprintf(out, "request_pad = %zu\n", pad);
}

static void write_range(FILE *out, const char *key, struct range r, const char *unit)
{
    if (r.lo == r.hi)
        fprintf(out, "%s = %llu%s\n", key, (unsigned long long)r.lo, unit);
    else
        fprintf(out, "%s = %llu%s-%llu%s\n", key, (unsigned long long)r.lo, unit,
                (unsigned long long)r.hi, unit);
}

static void write_send(FILE *out, const struct client_group *g, const struct scenario_vars *v)
{
    static const char *const words[] = {"whole", "partial", "trickle", "none"};
    fprintf(out, "send = %s\n", words[g->send]);
    if (g->send == SEND_NONE)
        return; /* no request keys with send = none */
    write_request(out, g->request, g->request_len, v);
    if (g->pipeline > 1)
        fprintf(out, "pipeline = %u\n", g->pipeline);
    if (g->send == SEND_PARTIAL)
        write_range(out, "send_bytes", g->send_bytes, "");
    if (g->send != SEND_TRICKLE)
        return;
    fprintf(out, "trickle_bytes = %u\ntrickle_interval = %ums\n", g->trickle_bytes,
            g->trickle_interval_ms);
    if (g->trickle_tail)
        write_bytes_key(out, "trickle_tail", g->trickle_tail, g->trickle_tail_len);
}

static void write_group(FILE *out, const struct client_group *g, const struct scenario_vars *v)
{
    static const char *const ends[] = {"close", "reset", "half-close", "hold", "drop"};
    fprintf(out, "\n[clients %s]\ncount = %u\n", g->name, g->count);
    if (g->concurrency)
        fprintf(out, "concurrency = %u\n", g->concurrency);
    if (g->rate > 0)
        fprintf(out, "rate = %.3f\n", g->rate);
    if (g->start_ms)
        fprintf(out, "start = %ums\n", g->start_ms);
    write_send(out, g, v);
    if (g->read == READ_BYTES)
        write_range(out, "read", g->read_bytes, "");
    else
        fprintf(out, "read = %s\n", g->read == READ_ALL ? "all" : "none");
    write_range(out, "hold", g->hold_ms, "ms");
    fprintf(out, "end = %s\n", ends[g->end]);
    if (g->rcvbuf)
        fprintf(out, "rcvbuf = %d\n", g->rcvbuf);
    if (g->host.s_addr) {
        const unsigned char *b = (const unsigned char *)&g->host.s_addr;
        fprintf(out, "host = %u.%u.%u.%u\n", b[0], b[1], b[2], b[3]);
    }
}

/* The description as one line (the format's limit), without characters a value cannot hold. */
static void write_description(FILE *out, const char *d)
{
    fputs("description = ", out);
    for (; d && *d; d++)
        fputc(*d == '\n' || *d == '\r' || *d == '#' || *d == ';' ? ' ' : *d, out);
    fputc('\n', out);
}

int scenario_write(FILE *out, const struct scenario *sc, const struct scenario_vars *vars,
                   const char *header)
{
    for (const char *h = header, *nl; h && *h; h = nl ? nl + 1 : h + strlen(h)) {
        nl = strchr(h, '\n');
        fprintf(out, "# %.*s\n", nl ? (int)(nl - h) : (int)strlen(h), h);
    }
    fputs("\n[scenario]\n", out);
    if (sc->description && *sc->description)
        write_description(out, sc->description);
    fprintf(out, "duration = %ums\n", sc->duration_ms);
    if (sc->rlimit_nofile)
        fprintf(out, "rlimit_nofile = %u\n", sc->rlimit_nofile);
    if (sc->cable_pull_ms)
        fprintf(out, "cable_pull = %ums\n", sc->cable_pull_ms);
    if (sc->probe_raw)
        write_bytes_key(out, "probe_raw", sc->probe_raw, sc->probe_raw_len);
    if (sc->probe_expect)
        write_bytes_key(out, "probe_expect", sc->probe_expect, sc->probe_expect_len);
    for (size_t i = 0; i < sc->ngroups; i++)
        write_group(out, &sc->groups[i], vars);
    fflush(out);
    return ferror(out) ? -EIO : 0;
}
