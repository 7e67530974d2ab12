/* render_text: the one-line summary and the multi-line text report of a diagnosis. */
#include "diagnose_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_escape.h"

/* A string the target chose (a thread or file name, a symbol, an fd described with its file
 * name): escaped, as are newlines, so it can neither act on a terminal nor fake a line. */
static void diag_put_esc(FILE *out, const char *s)
{
    char *escaped = cf_escape_dup(s, 0);
    fputs(escaped ? escaped : "?", out);
    free(escaped);
}

/* One argument as the signature letter says. */
static void diag_put_arg(FILE *out, char kind, uint64_t value)
{
    switch (kind) {
    case 'f':
    case 'i':
    case 't':
        fprintf(out, "%d", (int)(uint32_t)value);
        break;
    case 'u':
        fprintf(out, "%" PRIu64, value);
        break;
    default:
        fprintf(out, "0x%" PRIx64, value);
        break;
    }
}

static void diag_put_call(FILE *out, const struct diag_thread *t)
{
    char buf[32];
    const struct diag_syscall_info *info = diag_syscall_lookup(t->abi, t->nr);
    const char *sig = info ? info->args : "xxxxxx";
    fprintf(out, "%s(", diag_syscall_name(t->abi, t->nr, buf, sizeof(buf)));
    for (size_t i = 0; sig[i] != '\0' && i < 6; i++) {
        if (i > 0)
            fputs(", ", out);
        diag_put_arg(out, sig[i], t->args[i]);
    }
    fputc(')', out);
}

/* The frame that says where in the program a thread is: the first named one in the main
 * executable (a stripped one names only its exported functions), else its first one, else the
 * first with a name. */
static const struct diag_frame *diag_where(const struct diag_process *p,
                                           const struct diag_thread *t)
{
    const struct diag_frame *first_in_exe = NULL;
    for (size_t i = 0; i < t->nframes; i++) {
        if (!p->exe_base[0] || strcmp(t->frames[i].module, p->exe_base) != 0)
            continue;
        if (t->frames[i].function[0])
            return &t->frames[i];
        if (first_in_exe == NULL)
            first_in_exe = &t->frames[i];
    }
    if (first_in_exe != NULL)
        return first_in_exe;
    for (size_t i = 0; i < t->nframes; i++) {
        if (t->frames[i].function[0])
            return &t->frames[i];
    }
    return NULL;
}

static void diag_put_frame_short(FILE *out, const struct diag_frame *f)
{
    diag_put_esc(out, f->function[0] ? f->function : "??");
    if (f->file[0]) {
        fputs(" (", out);
        diag_put_esc(out, diag_basename(f->file));
        fprintf(out, ":%d)", f->line);
    } else if (f->module[0]) {
        fputs(" (in ", out);
        diag_put_esc(out, f->module);
        fputc(')', out);
    }
}

static void diag_put_counts_short(FILE *out, const struct diag_thread *t, unsigned window_ms,
                                  size_t max)
{
    for (size_t i = 0; i < t->ntraced && i < max; i++) {
        char buf[32], ebuf[32];
        const struct diag_count *c = &t->traced[i];
        fprintf(out, "%s%s x%u", i ? ", " : "", diag_syscall_name(t->abi, c->nr, buf, sizeof(buf)),
                c->count);
        if (window_ms > 0)
            fprintf(out, " (%.0f/s)", (double)c->count * 1000.0 / window_ms);
        for (size_t k = 0; k < DIAG_MAX_ERRNOS && c->errors[k].count; k++)
            fprintf(out, "%s%u %s", k ? ", " : " failing: ", c->errors[k].count,
                    diag_errno_name(c->errors[k].err, ebuf, sizeof(ebuf)));
    }
}

static const struct diag_thread *diag_main_thread(const struct diag_ctx *ctx,
                                                  const struct diag_process **proc)
{
    if (!ctx->head_known)
        return NULL;
    *proc = &ctx->procs[ctx->head_proc];
    return &(*proc)->threads[ctx->head_thread];
}

void diag_put_summary(FILE *out, const struct diag_ctx *ctx)
{
    const struct diag_process *p = NULL;
    const struct diag_thread *t = diag_main_thread(ctx, &p);
    if (t == NULL) {
        fprintf(out, "pid %d: no threads found", (int)ctx->root);
        return;
    }
    if (t->busy) {
        fprintf(out, "busy");
        if (t->cpu_known)
            fprintf(out, " at %.0f%% CPU", t->cpu_pct);
        if (t->ntraced > 0) {
            /* Counts, not rates: tracing every call slows the target down. */
            fputs(", repeating ", out);
            diag_put_counts_short(out, t, 0, 2);
            fprintf(out, " (calls in %u ms traced)", p->trace_window_ms);
        }
    } else if (t->sc == DIAG_SC_IN) {
        fprintf(out, "%s in ", t->state == 'D' ? "stuck" : t->state == 'T' ? "stopped" : "blocked");
        char buf[32];
        fputs(diag_syscall_name(t->abi, t->nr, buf, sizeof(buf)), out);
        if (t->nfd_args > 0) {
            fprintf(out, "(fd %d = ", t->fd_args[0].fd);
            diag_put_esc(out, t->fd_args[0].text);
            fputc(')', out);
        } else
            fputs("()", out);
    } else if (t->sc == DIAG_SC_USER) {
        fprintf(out, "%s outside any system call", diag_state_name(t->state));
    } else {
        fprintf(out, "%s (%s)", diag_state_name(t->state),
                t->sc == DIAG_SC_RUNNING ? "on a CPU"
                : p->ptrace_error[0]     ? "system call unknown: no ptrace access"
                                         : "system call unknown");
    }
    const struct diag_frame *where = diag_where(p, t);
    if (where != NULL) {
        fputs(" at ", out);
        diag_put_frame_short(out, where);
        if (where->inlined && where + 1 < t->frames + t->nframes) {
            fputs(", inlined in ", out);
            diag_put_frame_short(out, where + 1);
        }
    }
    if (p->fds_known && p->limit_known && p->nfds >= p->fd_soft)
        fprintf(out, "; %u of %" PRIu64 " fds open (EMFILE)", p->nfds, p->fd_soft);
    if (ctx->listen_known && ctx->listen_queued > 0)
        fprintf(out, "; %u connection%s waiting in the listen queue (backlog %u)",
                ctx->listen_queued, ctx->listen_queued == 1 ? "" : "s", ctx->listen_backlog);
    size_t threads = 0;
    for (size_t i = 0; i < ctx->nprocs; i++)
        threads += ctx->procs[i].threads_total;
    if (threads > 1)
        fprintf(out, " (pid %d thread %d; %zu threads in %zu process%s)", (int)p->pid, (int)t->tid,
                threads, ctx->procs_total, ctx->procs_total == 1 ? "" : "es");
}

/* ---- the text report ------------------------------------------------------------------------- */

/* Where the thread is, as far as /proc can tell: its system call and that call's fds. */
static void diag_text_syscall(FILE *out, const struct diag_thread *t)
{
    switch (t->sc) {
    case DIAG_SC_IN:
        fputs("      in system call ", out);
        diag_put_call(out, t);
        fputc('\n', out);
        break;
    case DIAG_SC_RUNNING:
        fputs("      on a CPU (or runnable)\n", out);
        break;
    case DIAG_SC_USER:
        fputs("      not in a system call\n", out);
        break;
    default:
        fprintf(out, "      system call unknown (%s)\n", strerror(t->sc_error));
        break;
    }
    for (size_t i = 0; i < t->nfd_args; i++) {
        fprintf(out, "      fd %d: ", t->fd_args[i].fd);
        diag_put_esc(out, t->fd_args[i].text);
        fputc('\n', out);
    }
}

static void diag_text_counts(FILE *out, const struct diag_process *p, const struct diag_thread *t)
{
    if (t->samples > 0) {
        fprintf(out, "      /proc samples (%u):", t->samples);
        for (size_t i = 0; i < t->nsampled; i++) {
            char buf[32];
            long nr = t->sampled[i].nr;
            fprintf(out, "%s %s %u", i ? "," : "",
                    nr == DIAG_NR_RUNNING ? "on-cpu"
                    : nr == DIAG_NR_USER  ? "user"
                                          : diag_syscall_name(t->abi, nr, buf, sizeof(buf)),
                    t->sampled[i].count);
        }
        fputc('\n', out);
    }
    if (t->ntraced > 0) {
        fprintf(out,
                "      system calls traced for %u ms (ptrace slows the target: compare the "
                "counts, not the rates): ",
                p->trace_window_ms);
        diag_put_counts_short(out, t, p->trace_window_ms, DIAG_MAX_COUNTS);
        fputc('\n', out);
    }
}

static void diag_text_backtrace(FILE *out, const struct diag_thread *t)
{
    if (t->nframes > 0) {
        fputs("      backtrace:\n", out);
        for (size_t i = 0; i < t->nframes; i++) {
            const struct diag_frame *f = &t->frames[i];
            fprintf(out, "        #%-2zu 0x%016" PRIx64 " ", i, f->pc);
            diag_put_esc(out, f->function[0] ? f->function : "??");
            if (f->file[0]) {
                fputs(" at ", out);
                diag_put_esc(out, f->file);
                fprintf(out, ":%d", f->line);
            }
            fputs(" [", out);
            diag_put_esc(out, f->module[0] ? f->module : "?");
            fprintf(out, "]%s\n", f->inlined ? " (inlined)" : "");
        }
    }
    if (t->unwind_error[0] && t->nframes < 2) {
        fputs("      backtrace stopped: ", out);
        diag_put_esc(out, t->unwind_error);
        fputc('\n', out);
    }
}

static void diag_text_thread(FILE *out, const struct diag_process *p, const struct diag_thread *t)
{
    fprintf(out, "    thread %d (", (int)t->tid);
    diag_put_esc(out, t->comm);
    fprintf(out, "): %s (%c)", diag_state_name(t->state), t->state);
    if (t->wchan[0])
        fprintf(out, ", kernel wait %s", t->wchan);
    if (t->cpu_known)
        fprintf(out, ", CPU %.0f%%", t->cpu_pct);
    fputc('\n', out);
    diag_text_syscall(out, t);
    diag_text_counts(out, p, t);
    diag_text_backtrace(out, t);
}

static void diag_text_process(FILE *out, const struct diag_process *p)
{
    fprintf(out, "  pid %d ", (int)p->pid);
    diag_put_esc(out, p->exe[0] ? p->exe : "(exe unknown)");
    fputs(": ", out);
    if (p->fds_known)
        fprintf(out, "%u fds open", p->nfds);
    else
        fprintf(out, "fds unknown");
    if (p->limit_known)
        fprintf(out, " (RLIMIT_NOFILE %" PRIu64 ")", p->fd_soft);
    fprintf(out, ", %zu thread%s\n", p->threads_total, p->threads_total == 1 ? "" : "s");
    for (size_t i = 0; i < p->nthreads; i++)
        diag_text_thread(out, p, &p->threads[i]);
    if (p->threads_total > p->nthreads)
        fprintf(out, "    (%zu more threads not shown)\n", p->threads_total - p->nthreads);
}

void diag_render_text(FILE *out, const struct diag_ctx *ctx, uint64_t elapsed_ms)
{
    fprintf(out, "diagnosis of pid %d (%zu process%s, %" PRIu64 " ms)", (int)ctx->root,
            ctx->procs_total, ctx->procs_total == 1 ? "" : "es", elapsed_ms);
    if (ctx->opt->moment != NULL)
        fprintf(out, ", taken %s", ctx->opt->moment);
    fputs(":\n", out);
    fputs("  ", out);
    diag_put_summary(out, ctx);
    fputc('\n', out);
    for (size_t i = 0; i < ctx->nprocs; i++)
        diag_text_process(out, &ctx->procs[i]);
    if (ctx->listen_known)
        fprintf(out, "  listen queue of port %d: %u waiting (backlog %u)\n", ctx->opt->port,
                ctx->listen_queued, ctx->listen_backlog);
    for (size_t i = 0; i < ctx->nnotes; i++) {
        fputs("  note: ", out); /* notes quote names: thread, process and file names */
        diag_put_esc(out, ctx->notes[i]);
        fputc('\n', out);
    }
    if (ctx->opt->capture_path != NULL)
        fprintf(out, "  packet capture: %s\n", ctx->opt->capture_path);
}
