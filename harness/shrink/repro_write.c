/* repro_write: repro.c, the standalone reproducer: the minimal scenario's client behaviour as
 * data tables, then the fixed code of repro_template.h (batches of clients, then probes). It
 * needs nothing but libc; what it cannot do is said in its header comment. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "repro_template.h"
#include "shrink_internal.h"

/* Bytes as C string literals, 32 bytes a line; octal escapes (a \x escape would swallow a
 * following hex digit) for all but plain printable characters. */
static void write_literal(FILE *out, const char *s, size_t len)
{
    fputs("\n        \"", out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i > 0 && i % 32 == 0)
            fputs("\"\n        \"", out);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '?')
            fputc(c, out);
        else
            fprintf(out, "\\%03o", c);
    }
    fputc('"', out);
}

/* What repro.c does differently from connfault for this group, or NULL. */
static const char *unsupported(const struct scenario *sc, const struct client_group *g)
{
    if (g->send == SEND_TRICKLE)
        return "trickling (the request is sent whole, the tail never)";
    if (g->end == END_DROP)
        return "vanishing without FIN or RST (needs a network sandbox; it closes instead)";
    if (sc->cable_pull_ms)
        return "the cable pull (needs a network sandbox; not done)";
    if (g->rate > 0)
        return "the connection rate (clients start in batches of their concurrency)";
    if (g->host.s_addr)
        return "the client host address (connects from the default address)";
    return NULL;
}

static void write_group(FILE *out, const struct scenario *sc, const struct client_group *g)
{
    static const char *const ends[] = {"END_CLOSE", "END_RESET", "END_HALF_CLOSE", "END_HOLD",
                                       "END_CLOSE"};
    long send_bytes = g->send == SEND_PARTIAL ? (long)g->send_bytes.lo : -1;
    long read_bytes = g->read == READ_ALL ? -1 : g->read == READ_NONE ? 0 : (long)g->read_bytes.lo;
    (void)sc;
    fprintf(out, "    {\"%s\", %u, %u, %u,", g->name, g->count, g->concurrency,
            g->pipeline ? g->pipeline : 1);
    if (g->send == SEND_NONE || !g->request)
        fputs(" NULL, 0,", out);
    else {
        write_literal(out, g->request, g->request_len);
        fprintf(out, ",\n        %zu,", g->request_len);
    }
    fprintf(out, " %ld, %ld, %llu, %u, %d, %s},\n", send_bytes, read_bytes,
            (unsigned long long)g->hold_ms.lo, g->start_ms, g->rcvbuf, ends[g->end]);
}

/* The checks this program judges by the server's open fds (given its pid). */
static bool counts_fds(const char *check)
{
    return strcmp(check, "fds") == 0 || strcmp(check, "sockets") == 0;
}

static void write_header(FILE *out, const struct scenario *sc, const char *check)
{
    fprintf(out,
            "/* repro.c: written by connfault shrink from scenario %s; one C file, nothing but "
            "libc.\n"
            " *   cc -Wall -Werror -o repro repro.c && ./repro HOST PORT [SERVER_PID]\n"
            " * Performs the minimal scenario's clients against HOST PORT (each group in "
            "batches of its\n"
            " * concurrency: connect, send, read, hold, end) while one probe connects, then "
            "GETs the probe\n"
            " * path on that probe and on a fresh one; with SERVER_PID (the server on this "
            "host) it also\n"
            " * counts the server's open fds, before the clients and after. Up to 20 rounds (a "
            "race may\n"
            " * spare the server one). Exits 1 with one line when a probe is not answered "
            "within 2 s, the\n"
            " * server is gone, or it holds fds the clients left (connfault saw check "
            "\"%s\" fail), else 0.\n",
            sc->name, check);
    if (counts_fds(check))
        fprintf(out, " * Check %s is seen in the server's fds: SERVER_PID is required.\n", check);
    else if (strcmp(check, "accepting") != 0 && strcmp(check, "alive") != 0)
        fprintf(out,
                " * NOT SUPPORTED: check %s is seen from inside the server's process "
                "(procfs); this\n * program only sees what a client sees.\n",
                check);
    if (sc->ngroups > 1)
        fputs(" * Groups that start at the same time, each in one batch, run side by side (the "
              "longest\n * hold of them for all); other groups run one after another.\n",
              out);
    for (size_t i = 0; i < sc->ngroups; i++) {
        const char *why = unsupported(sc, &sc->groups[i]);
        if (why)
            fprintf(out, " * NOT SUPPORTED in group %s: %s.\n", sc->groups[i].name, why);
    }
    fputs(" */\n", out);
}

int shrink_write_repro(FILE *out, const struct scenario *sc, const struct run_options *opt,
                       const char *check)
{
    write_header(out, sc, check);
    fputs(repro_head, out);
    fputs("static const char probe_path[] =", out);
    write_literal(out, opt->probe_path, strlen(opt->probe_path));
    fputs(";\nstatic const char check[] = ", out);
    fprintf(out,
            "\"%s\";\nstatic const int needs_pid = %d;\n\nstatic const struct group groups[] = {\n",
            check, counts_fds(check));
    for (size_t i = 0; i < sc->ngroups; i++)
        write_group(out, sc, &sc->groups[i]);
    fputs("};\n\n", out);
    fputs(repro_body, out);
    fflush(out);
    return ferror(out) ? -EIO : 0;
}
