/* render_json: a diagnosis as one JSON object (the "diagnosis" of report.json). Every string
 * goes through the shared writer, which turns bytes that are not UTF-8 (a thread may name
 * itself anything) into U+FFFD. */
#include "diagnose_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "json_writer.h"

/* ,"key":12.5 with one decimal whatever LC_NUMERIC says. */
static void diag_json_tenths(FILE *out, const char *key, double v)
{
    char number[64];
    cf_format_double(number, sizeof(number), "%.1f", v);
    fprintf(out, ",\"%s\":%s", key, number);
}

static const char *diag_fd_kind_name(enum diag_fd_kind kind)
{
    static const char *const names[] = {
        [DIAG_FD_UNKNOWN] = "unknown",
        [DIAG_FD_TCP] = "tcp",
        [DIAG_FD_TCP_LISTEN] = "tcp_listen",
        [DIAG_FD_SOCKET] = "socket",
        [DIAG_FD_EPOLL] = "epoll",
        [DIAG_FD_PIPE] = "pipe",
        [DIAG_FD_FILE] = "file",
        [DIAG_FD_ANON] = "anon_inode",
    };
    return names[kind];
}

static void diag_json_fd(FILE *out, const struct diag_fd *fd)
{
    fprintf(out, "{\"fd\":%d,\"type\":\"%s\",\"target\":", fd->fd, diag_fd_kind_name(fd->kind));
    json_put_string_or_null(out, fd->target);
    fputs(",\"description\":", out);
    json_put_string(out, fd->text);
    if (fd->kind == DIAG_FD_TCP) {
        fputs(",\"local\":", out);
        json_put_string(out, fd->sock.local);
        fputs(",\"peer\":", out);
        json_put_string(out, fd->sock.peer);
        fprintf(out, ",\"state\":\"%s\",\"rq\":%u,\"sq\":%u", tcp_state_name(fd->sock.state),
                fd->sock.rq, fd->sock.wq);
    } else if (fd->kind == DIAG_FD_TCP_LISTEN) {
        fputs(",\"local\":", out);
        json_put_string(out, fd->sock.local);
        fprintf(out, ",\"queued\":%u,\"backlog\":%u", fd->sock.rq, fd->sock.wq);
    } else if (fd->kind == DIAG_FD_EPOLL) {
        fprintf(out, ",\"watches_total\":%zu,\"watches\":[", fd->watches_total);
        for (size_t i = 0; i < fd->nwatches; i++) {
            const struct diag_watch *w = &fd->watches[i];
            fprintf(out, "%s{\"fd\":%d,\"events\":\"0x%x\",\"edge_triggered\":%s,\"what\":",
                    i ? "," : "", w->fd, w->events, (w->events & DIAG_EPOLLET) ? "true" : "false");
            json_put_string(out, w->what);
            fputc('}', out);
        }
        fputc(']', out);
    }
    fputc('}', out);
}

static void diag_json_counts(FILE *out, enum diag_abi abi, const struct diag_count *counts,
                             size_t n, unsigned window_ms)
{
    fputc('[', out);
    for (size_t i = 0; i < n; i++) {
        char buf[32], ebuf[32];
        const struct diag_count *c = &counts[i];
        const char *name = c->nr == DIAG_NR_RUNNING ? "(on-cpu)"
                           : c->nr == DIAG_NR_USER
                               ? "(user)"
                               : diag_syscall_name(abi, c->nr, buf, sizeof(buf));
        fprintf(out, "%s{\"name\":\"%s\",\"nr\":%ld,\"count\":%u", i ? "," : "", name, c->nr,
                c->count);
        if (window_ms > 0)
            diag_json_tenths(out, "per_s", (double)c->count * 1000.0 / window_ms);
        fputs(",\"errors\":[", out);
        for (size_t k = 0; k < DIAG_MAX_ERRNOS && c->errors[k].count; k++)
            fprintf(out, "%s{\"errno\":\"%s\",\"count\":%u}", k ? "," : "",
                    diag_errno_name(c->errors[k].err, ebuf, sizeof(ebuf)), c->errors[k].count);
        fputs("]}", out);
    }
    fputc(']', out);
}

static void diag_json_syscall(FILE *out, const struct diag_thread *t)
{
    static const char *const states[] = {
        [DIAG_SC_UNKNOWN] = "unknown",
        [DIAG_SC_RUNNING] = "running",
        [DIAG_SC_USER] = "not_in_syscall",
        [DIAG_SC_IN] = "in_syscall",
    };
    fprintf(out, "{\"state\":\"%s\"", states[t->sc]);
    if (t->sc == DIAG_SC_IN) {
        char buf[32];
        const struct diag_syscall_info *info = diag_syscall_lookup(t->abi, t->nr);
        size_t nargs = info ? strlen(info->args) : 6;
        fprintf(out, ",\"nr\":%ld,\"name\":\"%s\",\"args\":[", t->nr,
                diag_syscall_name(t->abi, t->nr, buf, sizeof(buf)));
        for (size_t i = 0; i < nargs; i++)
            fprintf(out, "%s\"0x%" PRIx64 "\"", i ? "," : "", t->args[i]);
        fputs("],\"fds\":[", out);
        for (size_t i = 0; i < t->nfd_args; i++) {
            if (i)
                fputc(',', out);
            diag_json_fd(out, &t->fd_args[i]);
        }
        fputc(']', out);
    } else if (t->sc == DIAG_SC_UNKNOWN) {
        fputs(",\"error\":", out);
        json_put_string(out, strerror(t->sc_error));
    }
    fputc('}', out);
}

static void diag_json_frames(FILE *out, const struct diag_thread *t)
{
    fputc('[', out);
    for (size_t i = 0; i < t->nframes; i++) {
        const struct diag_frame *f = &t->frames[i];
        fprintf(out, "%s{\"pc\":\"0x%" PRIx64 "\",\"function\":", i ? "," : "", f->pc);
        json_put_string_or_null(out, f->function);
        fputs(",\"file\":", out);
        json_put_string_or_null(out, f->file);
        if (f->line > 0)
            fprintf(out, ",\"line\":%d", f->line);
        else
            fputs(",\"line\":null", out);
        fputs(",\"module\":", out);
        json_put_string_or_null(out, f->module);
        fprintf(out, ",\"inlined\":%s}", f->inlined ? "true" : "false");
    }
    fputc(']', out);
}

static void diag_json_thread(FILE *out, const struct diag_process *p, const struct diag_thread *t)
{
    fprintf(out, "{\"tid\":%d,\"comm\":", (int)t->tid);
    json_put_string(out, t->comm);
    fprintf(out, ",\"state\":\"%c\",\"state_name\":\"%s\",\"wchan\":", t->state,
            diag_state_name(t->state));
    json_put_string_or_null(out, t->wchan);
    fputs(",\"syscall\":", out);
    diag_json_syscall(out, t);
    if (t->cpu_known)
        diag_json_tenths(out, "cpu_pct", t->cpu_pct);
    else
        fputs(",\"cpu_pct\":null", out);
    fprintf(out, ",\"busy\":%s,\"proc_samples\":", t->busy ? "true" : "false");
    diag_json_counts(out, t->abi, t->sampled, t->nsampled, 0);
    fputs(",\"syscall_samples\":", out);
    diag_json_counts(out, t->abi, t->traced, t->ntraced, p->trace_window_ms);
    fputs(",\"backtrace\":", out);
    diag_json_frames(out, t);
    fputs(",\"backtrace_error\":", out);
    json_put_string_or_null(out, t->nframes < 2 ? t->unwind_error : "");
    fputc('}', out);
}

static void diag_json_process(FILE *out, const struct diag_process *p)
{
    fprintf(out, "{\"pid\":%d,\"exe\":", (int)p->pid);
    json_put_string_or_null(out, p->exe);
    if (p->fds_known)
        fprintf(out, ",\"fds\":%u", p->nfds);
    else
        fputs(",\"fds\":null", out);
    if (p->limit_known)
        fprintf(out, ",\"fd_limit\":%" PRIu64, p->fd_soft);
    else
        fputs(",\"fd_limit\":null", out);
    fputs(",\"ptrace_error\":", out);
    json_put_string_or_null(out, p->ptrace_error);
    fprintf(out, ",\"trace_window_ms\":%u,\"threads_total\":%zu,\"threads\":[", p->trace_window_ms,
            p->threads_total);
    for (size_t i = 0; i < p->nthreads; i++) {
        if (i)
            fputc(',', out);
        diag_json_thread(out, p, &p->threads[i]);
    }
    fputs("]}", out);
}

void diag_render_json(FILE *out, const struct diag_ctx *ctx, uint64_t elapsed_ms,
                      const char *summary)
{
    fprintf(out, "{\"target_pid\":%d,\"elapsed_ms\":%" PRIu64 ",\"budget_ms\":%u", (int)ctx->root,
            elapsed_ms, ctx->opt->budget_ms ? ctx->opt->budget_ms : DIAGNOSE_DEFAULT_BUDGET_MS);
    fputs(",\"taken\":", out);
    json_put_string_or_null(out, ctx->opt->moment);
    fputs(",\"summary\":", out);
    json_put_string(out, summary);
    if (ctx->head_known)
        fprintf(out, ",\"headline\":{\"pid\":%d,\"tid\":%d}", (int)ctx->procs[ctx->head_proc].pid,
                (int)ctx->procs[ctx->head_proc].threads[ctx->head_thread].tid);
    else
        fputs(",\"headline\":null", out);
    fprintf(out, ",\"ptrace\":%s,\"processes_total\":%zu,\"processes\":[",
            ctx->ptrace_ok ? "true" : "false", ctx->procs_total);
    for (size_t i = 0; i < ctx->nprocs; i++) {
        if (i)
            fputc(',', out);
        diag_json_process(out, &ctx->procs[i]);
    }
    fputs("],\"listen_queue\":", out);
    if (ctx->listen_known)
        fprintf(out, "{\"port\":%d,\"queued\":%u,\"backlog\":%u}", ctx->opt->port,
                ctx->listen_queued, ctx->listen_backlog);
    else
        fputs("null", out);
    struct diag_count sum[DIAG_MAX_COUNTS];
    unsigned window_ms;
    size_t n = diag_total_counts(ctx, sum, &window_ms);
    fprintf(out, ",\"sampling\":{\"method\":%s,\"proc_window_ms\":%u,\"trace_window_ms\":%u}",
            n > 0                   ? "\"ptrace\""
            : ctx->sample_window_ms ? "\"proc\""
                                    : "null",
            ctx->sample_window_ms, window_ms);
    fputs(",\"syscall_samples\":", out);
    /* summed over threads by number: named by the root process's ABI */
    diag_json_counts(out, ctx->nprocs ? ctx->procs[0].abi : DIAG_ABI_X86_64, sum, n, window_ms);
    fputs(",\"notes\":[", out);
    for (size_t i = 0; i < ctx->nnotes; i++) {
        if (i)
            fputc(',', out);
        json_put_string(out, ctx->notes[i]);
    }
    fputs("],\"capture_path\":", out);
    json_put_string_or_null(out, ctx->opt->capture_path);
    fputc('}', out);
}
