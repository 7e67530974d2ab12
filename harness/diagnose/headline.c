/* headline: which thread the one-line summary speaks of. Not the root process as such: a
 * `sh -c` wrapper waiting in wait4, or nginx's master in rt_sigsuspend, only waits for the
 * process that serves. The headline is, in order: a busy thread (it explains a CPU failure),
 * a thread blocked on a client's connection (a stuck client socket: busybox httpd's child
 * per connection), a thread watching the listener (nginx's worker), any other thread; a
 * process that only waits for its children comes last. Ties go to the first in tree order
 * (the root first, the main thread first). */
#include "diagnose_internal.h"

#include <string.h>

enum diag_rank {
    DIAG_RANK_WAITER,  /* a process that only waits for its children */
    DIAG_RANK_OTHER,   /* sleeping elsewhere */
    DIAG_RANK_LISTENS, /* in a call on the listener, or on an epoll set watching it */
    DIAG_RANK_CLIENT,  /* in a call on a TCP connection */
    DIAG_RANK_BUSY,
};

static bool diag_has_child(const struct diag_ctx *ctx, pid_t pid)
{
    for (size_t i = 0; i < ctx->nprocs; i++)
        if (ctx->procs[i].ppid == pid)
            return true;
    return false;
}

/* Every thread sleeps in wait4, waitpid, rt_sigsuspend, pause... and it has children. */
static bool diag_only_waits(const struct diag_ctx *ctx, const struct diag_process *p)
{
    if (p->nthreads == 0 || !diag_has_child(ctx, p->pid))
        return false;
    for (size_t i = 0; i < p->nthreads; i++) {
        const struct diag_thread *t = &p->threads[i];
        if (t->busy || t->sc != DIAG_SC_IN || !diag_syscall_waits_for_child(t->abi, t->nr))
            return false;
    }
    return true;
}

static bool diag_fd_listens(const struct diag_fd *fd)
{
    if (fd->kind == DIAG_FD_TCP_LISTEN)
        return true;
    for (size_t i = 0; fd->kind == DIAG_FD_EPOLL && i < fd->nwatches; i++)
        if (fd->watches[i].listener)
            return true;
    return false;
}

static enum diag_rank diag_thread_rank(const struct diag_thread *t)
{
    if (t->busy)
        return DIAG_RANK_BUSY;
    enum diag_rank rank = DIAG_RANK_OTHER;
    for (size_t i = 0; t->sc == DIAG_SC_IN && i < t->nfd_args; i++) {
        if (t->fd_args[i].kind == DIAG_FD_TCP)
            return DIAG_RANK_CLIENT;
        if (diag_fd_listens(&t->fd_args[i]))
            rank = DIAG_RANK_LISTENS;
    }
    return rank;
}

static const char *diag_rank_why(enum diag_rank rank)
{
    switch (rank) {
    case DIAG_RANK_BUSY:
        return "is busy";
    case DIAG_RANK_CLIENT:
        return "is blocked on a client's connection";
    case DIAG_RANK_LISTENS:
        return "waits on the listener";
    default:
        return "is where the work is done";
    }
}

/* Why the summary is about another process than the one connfault started. */
static void diag_note_headline(struct diag_ctx *ctx, enum diag_rank rank)
{
    const struct diag_process *root = &ctx->procs[0], *head = &ctx->procs[ctx->head_proc];
    char buf[32];
    if (diag_only_waits(ctx, root))
        diag_note(ctx,
                  "pid %d (%s) only waits for its children (in %s): the summary is about pid %d "
                  "(%s), which %s",
                  (int)root->pid, root->exe_base,
                  diag_syscall_name(root->threads[0].abi, root->threads[0].nr, buf, sizeof(buf)),
                  (int)head->pid, head->exe_base, diag_rank_why(rank));
    else
        diag_note(ctx, "the summary is about pid %d (%s), a descendant of pid %d, which %s",
                  (int)head->pid, head->exe_base, (int)root->pid, diag_rank_why(rank));
}

void diag_pick_headline(struct diag_ctx *ctx)
{
    int best = -1;
    for (size_t i = 0; i < ctx->nprocs; i++) {
        const struct diag_process *p = &ctx->procs[i];
        bool waits = diag_only_waits(ctx, p);
        for (size_t j = 0; j < p->nthreads; j++) {
            int rank = waits ? DIAG_RANK_WAITER : (int)diag_thread_rank(&p->threads[j]);
            if (rank > best) {
                best = rank;
                ctx->head_proc = i;
                ctx->head_thread = j;
            }
        }
    }
    ctx->head_known = best >= 0;
    if (ctx->head_known && ctx->head_proc != 0)
        diag_note_headline(ctx, (enum diag_rank)best);
}
