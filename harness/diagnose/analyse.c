/* analyse: the notes of a diagnosis: what the findings mean together (an accept loop failing
 * with EMFILE, an edge-triggered listener with connections left queued, a full listen queue)
 * and what could not be seen, and why (no ptrace rights, no debug info). */
#include "diagnose_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int diag_yama_scope(void)
{
    char text[16];
    if (diag_read_file("/proc/sys/kernel/yama/ptrace_scope", text, sizeof(text)) <= 0)
        return -1;
    return atoi(text);
}

static void diag_note_access(struct diag_ctx *ctx, const struct diag_process *p)
{
    if (p->ptrace_error[0] != '\0') {
        int scope = diag_yama_scope();
        char yama[200] = "";
        if (scope >= 1)
            snprintf(yama, sizeof(yama), " (kernel.yama.ptrace_scope is %d: %s)", scope,
                     scope == 1 ? "only a parent process may trace, and this helper is not one; "
                                  "run as root or set it to 0"
                                : "only root with CAP_SYS_PTRACE may trace");
        diag_note(ctx,
                  "no ptrace access to pid %d: %s%s; no backtraces or system call counts, "
                  "only what /proc shows",
                  (int)p->pid, p->ptrace_error, yama);
    }
    if (!p->fds_known && p->fds_error == EACCES)
        diag_note(ctx, "no access to /proc/%d/fd: fds unknown (run as the target's user or root)",
                  (int)p->pid);
    for (size_t i = 0; i < p->nthreads; i++) {
        const struct diag_thread *t = &p->threads[i];
        if (t->sc == DIAG_SC_UNKNOWN)
            diag_note(ctx, "cannot read /proc/%d/task/*/syscall (%s): the system call is unknown",
                      (int)p->pid, strerror(t->sc_error));
        if (t->state == 'D')
            diag_note(ctx,
                      "thread %d is in an uninterruptible sleep (D)%s%s: it cannot be stopped "
                      "for a backtrace until the kernel wait ends",
                      (int)t->tid, t->wchan[0] ? " in " : "", t->wchan);
        if (t->not_stopped && t->state != 'D')
            diag_note(ctx, "thread %d did not stop for a backtrace in time", (int)t->tid);
    }
}

/* Modules whose frames all lack function names, or all lack file:line (one frame without, such
 * as _start from crt1.o, is normal even in a program built with -g). */
static bool diag_module_has(const struct diag_process *p, const char *module, bool want_line)
{
    for (size_t i = 0; i < p->nthreads; i++) {
        const struct diag_thread *t = &p->threads[i];
        for (size_t j = 0; j < t->nframes; j++) {
            const struct diag_frame *f = &t->frames[j];
            if (strcmp(f->module, module) == 0 && (want_line ? f->file[0] : f->function[0]))
                return true;
        }
    }
    return false;
}

static void diag_list_add(char *list, size_t size, const char *item)
{
    if (strstr(list, item) != NULL)
        return;
    size_t used = strlen(list);
    snprintf(list + used, size - used, "%s%s", used ? ", " : "", item);
}

static void diag_note_debug_info(struct diag_ctx *ctx, const struct diag_process *p)
{
    char no_lines[256] = "", no_symbols[256] = "";
    for (size_t i = 0; i < p->nthreads; i++) {
        const struct diag_thread *t = &p->threads[i];
        for (size_t j = 0; j < t->nframes; j++) {
            const char *module = t->frames[j].module;
            if (module[0] == '\0')
                continue;
            if (!diag_module_has(p, module, false))
                diag_list_add(no_symbols, sizeof(no_symbols), module);
            else if (!diag_module_has(p, module, true))
                diag_list_add(no_lines, sizeof(no_lines), module);
        }
    }
    if (no_symbols[0])
        diag_note(ctx, "no symbols (function names) for frames in %s: stripped binaries?",
                  no_symbols);
    if (no_lines[0])
        diag_note(ctx,
                  "no file:line for frames in %s: no debug info found (build with -g, or "
                  "install the debug symbol packages)",
                  no_lines);
}

static void diag_note_busy(struct diag_ctx *ctx, const struct diag_process *p)
{
    bool at_limit = p->fds_known && p->limit_known && p->fd_soft > 0 && p->nfds >= p->fd_soft;
    if (at_limit)
        diag_note(ctx,
                  "pid %d holds %u fds, its RLIMIT_NOFILE is %" PRIu64
                  ": accept() and open() fail with EMFILE",
                  (int)p->pid, p->nfds, p->fd_soft);
    for (size_t i = 0; i < p->nthreads; i++) {
        const struct diag_thread *t = &p->threads[i];
        if (!t->busy)
            continue;
        bool accept_emfile = false;
        for (size_t j = 0; j < t->ntraced; j++) {
            const struct diag_count *c = &t->traced[j];
            unsigned emfile = diag_count_errors(c, EMFILE) + diag_count_errors(c, ENFILE);
            const struct diag_syscall_info *info = diag_syscall_lookup(t->abi, c->nr);
            bool accept = info && strncmp(info->name, "accept", 6) == 0; /* accept, accept4 */
            if (emfile > 0 && accept) {
                accept_emfile = true;
                diag_note(ctx,
                          "busy loop in thread %d: %s fails with EMFILE (%u of %u calls) and "
                          "the listener stays readable, so the event loop wakes at once, again "
                          "and again",
                          (int)t->tid, info->name, emfile, c->count);
            }
        }
        if (!accept_emfile && at_limit && t->ntraced == 0)
            diag_note(ctx,
                      "thread %d is busy (CPU %.0f%%) while out of fds: probably retrying "
                      "accept() on EMFILE (its system calls could not be traced)",
                      (int)t->tid, t->cpu_pct);
    }
}

/* The accept-once pattern: asleep in epoll_wait on a set holding an edge-triggered listener that
 * has connections queued. The edge came and went; no new one comes until a new connection. */
static void diag_note_edge_listener(struct diag_ctx *ctx, const struct diag_thread *t)
{
    if (t->sc != DIAG_SC_IN || t->nfd_args == 0 || t->fd_args[0].kind != DIAG_FD_EPOLL)
        return;
    const struct diag_fd *ep = &t->fd_args[0];
    for (size_t i = 0; i < ep->nwatches; i++) {
        const struct diag_watch *w = &ep->watches[i];
        if (!w->listener || w->queued == 0 || !(w->events & DIAG_EPOLLET))
            continue;
        diag_note(ctx,
                  "thread %d sleeps in epoll_wait while its edge-triggered listener (fd %d) has "
                  "%u connections queued: with EPOLLET each event must be drained by accepting "
                  "until EAGAIN, or the rest wait until another client connects",
                  (int)t->tid, w->fd, w->queued);
    }
}

static void diag_note_listen_queue(struct diag_ctx *ctx)
{
    if (!ctx->listen_known || ctx->listen_queued == 0)
        return;
    if (ctx->listen_backlog > 0 && ctx->listen_queued >= ctx->listen_backlog)
        diag_note(ctx,
                  "the listen queue of port %d is full (%u of %u): new connections are dropped",
                  ctx->opt->port, ctx->listen_queued, ctx->listen_backlog);
    else
        diag_note(ctx, "%u connection%s wait%s in the listen queue of port %d, not accepted",
                  ctx->listen_queued, ctx->listen_queued == 1 ? "" : "s",
                  ctx->listen_queued == 1 ? "s" : "", ctx->opt->port);
}

void diag_analyse(struct diag_ctx *ctx)
{
    for (size_t i = 0; i < ctx->nprocs; i++) {
        diag_note_access(ctx, &ctx->procs[i]);
        diag_note_busy(ctx, &ctx->procs[i]);
        diag_note_debug_info(ctx, &ctx->procs[i]);
        for (size_t j = 0; j < ctx->procs[i].nthreads; j++)
            diag_note_edge_listener(ctx, &ctx->procs[i].threads[j]);
    }
    diag_note_listen_queue(ctx);
    if (ctx->socks_error < 0)
        diag_note(ctx, "the TCP tables could not be read (%s): sockets are shown without addresses",
                  strerror(-ctx->socks_error));
    if (ctx->procs_total > ctx->nprocs)
        diag_note(ctx, "%zu processes in the tree; only the first %zu are described",
                  ctx->procs_total, ctx->nprocs);
}
