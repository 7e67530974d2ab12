/* tracer: the ptrace helper, run in a forked child so that a target which never stops (or a
 * helper stuck in the kernel) cannot hold the harness: it seizes the target's threads
 * (PTRACE_SEIZE: no SIGSTOP is ever sent), counts the system calls of the busy ones, stops
 * them all, has unwind.c walk their stacks and detaches. Its findings go to the parent as the
 * records described in diagnose_internal.h, one line each, line-buffered, so the parent keeps
 * whatever was found before a kill at the deadline. */
#include "diagnose_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cf_time.h"

struct tracee {
    struct diag_thread *thread;
    pid_t tid;
    bool seized, stopped, gone, tracing, group_stopped;
    int pending_sig; /* a signal caught at its delivery stop: handed back on resume/detach */
    long current_nr; /* the call a traced thread entered, for its exit stop */
};

enum tracer_phase { TRACER_STOPPING, TRACER_TRACING };

struct tracer {
    FILE *out;
    int sigchld_fd;
    struct tracee *tracees;
    size_t n;
    enum tracer_phase phase;
};

/* No record field may hold a tab, CR or newline (diagnose_internal.h): they become spaces. */
static void tracer_clean(char *s)
{
    for (; *s; s++) {
        if (*s == '\t' || *s == '\n' || *s == '\r')
            *s = ' ';
    }
}

/* A record whose last field is free text: "X\tid\ttext". */
static void tracer_put_text(struct tracer *tr, enum diag_record type, pid_t id, const char *text)
{
    char clean[320];
    diag_copy(clean, sizeof(clean), text);
    tracer_clean(clean);
    fprintf(tr->out, "%c\t%d\t%s\n", (char)type, (int)id, clean);
}

static void tracer_put_frame(void *sink_ctx, pid_t tid, const struct diag_frame *frame)
{
    struct tracer *tr = sink_ctx;
    struct diag_frame f = *frame;
    tracer_clean(f.function);
    tracer_clean(f.file);
    tracer_clean(f.module);
    fprintf(tr->out, "%c\t%d\t%" PRIx64 "\t%d\t%d\t%s\t%s\t%s\n", (char)DIAG_RECORD_FRAME, (int)tid,
            f.pc, f.inlined, f.line, f.function, f.file, f.module);
}

static void tracer_put_unwind_stop(void *sink_ctx, pid_t tid, const char *why)
{
    tracer_put_text(sink_ctx, DIAG_RECORD_UNWIND_STOPPED, tid, why);
}

static struct tracee *tracer_find(struct tracer *tr, pid_t tid)
{
    for (size_t i = 0; i < tr->n; i++) {
        if (tr->tracees[i].tid == tid)
            return &tr->tracees[i];
    }
    return NULL;
}

/* Next wait status of any tracee, or -ETIMEDOUT at the deadline. SIGCHLD is read through a
 * signalfd so the wait can be bounded without a timer signal breaking other system calls. */
static int tracer_wait(struct tracer *tr, uint64_t deadline, pid_t *tid, int *status)
{
    for (;;) {
        struct signalfd_siginfo info;
        while (read(tr->sigchld_fd, &info, sizeof(info)) > 0)
            ; /* drained before waitpid, so no SIGCHLD is lost between the two */
        pid_t r = waitpid(-1, status, __WALL | WNOHANG);
        if (r > 0) {
            *tid = r;
            return 0;
        }
        if (r < 0 && errno != EINTR)
            return -errno;
        uint64_t now = cf_now_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = tr->sigchld_fd, .events = POLLIN};
        poll(&pfd, 1, (int)(deadline - now));
    }
}

static void tracer_resume(struct tracee *t)
{
    int sig = t->pending_sig;
    t->pending_sig = 0;
    t->stopped = false;
    if (ptrace(PTRACE_SYSCALL, t->tid, NULL, (void *)(long)sig) < 0)
        t->gone = errno == ESRCH;
}

static void tracer_on_syscall_stop(struct tracee *t)
{
    struct __ptrace_syscall_info info;
    long size = ptrace(PTRACE_GET_SYSCALL_INFO, t->tid, (void *)sizeof(info), &info);
    if (size <= 0)
        return;
    struct diag_thread *th = t->thread;
    if (info.op == PTRACE_SYSCALL_INFO_ENTRY) {
        t->current_nr = (long)info.entry.nr;
        struct diag_count *c = diag_count_slot(th->traced, &th->ntraced, t->current_nr);
        if (c != NULL)
            c->count++;
    } else if (info.op == PTRACE_SYSCALL_INFO_EXIT && info.exit.is_error && t->current_nr >= 0) {
        struct diag_count *c = diag_count_slot(th->traced, &th->ntraced, t->current_nr);
        if (c != NULL)
            diag_count_error(c, (int)-info.exit.rval, 1);
    }
}

static void tracer_on_event(struct tracer *tr, pid_t tid, int status)
{
    struct tracee *t = tracer_find(tr, tid);
    if (t == NULL)
        return;
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
        t->gone = true;
        t->stopped = false;
        return;
    }
    if (!WIFSTOPPED(status))
        return;
    int sig = WSTOPSIG(status);
    bool keep_going = tr->phase == TRACER_TRACING && t->tracing;
    if (sig == (SIGTRAP | 0x80)) {
        if (t->tracing)
            tracer_on_syscall_stop(t);
    } else if ((status >> 16) == PTRACE_EVENT_STOP) {
        /* Our interrupt (SIGTRAP), or a group stop (SIGSTOP...): a group-stopped thread is left
         * stopped, as it was. */
        t->group_stopped = sig != SIGTRAP;
        keep_going = keep_going && !t->group_stopped;
    } else {
        t->pending_sig = sig; /* signal-delivery stop: delivered when we let go */
    }
    t->stopped = true;
    if (keep_going)
        tracer_resume(t);
}

/* Whether a thread we wait for (only the busy ones if busy_only) has not stopped yet. */
static bool tracer_stop_pending(const struct tracer *tr, bool busy_only)
{
    for (size_t i = 0; i < tr->n; i++) {
        const struct tracee *t = &tr->tracees[i];
        if (t->seized && !t->gone && !t->stopped && (!busy_only || t->thread->busy))
            return true;
    }
    return false;
}

/* Interrupts the threads (only the busy ones if busy_only) and waits until they stop. */
static void tracer_stop(struct tracer *tr, bool busy_only, uint64_t deadline)
{
    tr->phase = TRACER_STOPPING;
    for (size_t i = 0; i < tr->n; i++) {
        struct tracee *t = &tr->tracees[i];
        if (t->seized && !t->gone && !t->stopped && (!busy_only || t->thread->busy))
            ptrace(PTRACE_INTERRUPT, t->tid, NULL, NULL);
    }
    pid_t tid;
    int status;
    while (tracer_stop_pending(tr, busy_only) && tracer_wait(tr, deadline, &tid, &status) == 0)
        tracer_on_event(tr, tid, status);
}

/* Counts the system calls of the busy threads for window_ms. */
static unsigned tracer_count_syscalls(struct tracer *tr, unsigned window_ms, uint64_t deadline)
{
    uint64_t stop_by = cf_now_ms() + DIAG_STOP_WAIT_MS;
    tracer_stop(tr, true, stop_by < deadline ? stop_by : deadline);
    uint64_t start = cf_now_ms(), end = start + window_ms;
    if (end > deadline)
        end = deadline;
    tr->phase = TRACER_TRACING;
    bool any = false;
    for (size_t i = 0; i < tr->n; i++) {
        struct tracee *t = &tr->tracees[i];
        if (t->thread->busy && t->stopped && !t->gone && !t->group_stopped) {
            t->tracing = true;
            t->current_nr = -1;
            tracer_resume(t);
            any = true;
        }
    }
    pid_t tid;
    int status;
    while (any && tracer_wait(tr, end, &tid, &status) == 0)
        tracer_on_event(tr, tid, status);
    return any ? (unsigned)(cf_now_ms() - start) : 0;
}

static void tracer_backtraces(struct tracer *tr, pid_t pid)
{
    pid_t tids[DIAG_MAX_THREADS];
    size_t n = 0;
    for (size_t i = 0; i < tr->n; i++) {
        if (tr->tracees[i].stopped && !tr->tracees[i].gone)
            tids[n++] = tr->tracees[i].tid;
    }
    const struct diag_unwind_sink sink = {
        .frame = tracer_put_frame, .stopped = tracer_put_unwind_stop, .sink_ctx = tr};
    char err[200];
    if (diag_unwind(pid, tids, n, &sink, err, sizeof(err)) < 0)
        tracer_put_text(tr, DIAG_RECORD_PTRACE_ERROR, pid, err);
}

static void tracer_report_counts(struct tracer *tr)
{
    for (size_t i = 0; i < tr->n; i++) {
        const struct diag_thread *th = tr->tracees[i].thread;
        for (size_t j = 0; tr->tracees[i].tracing && j < th->ntraced; j++) {
            const struct diag_count *c = &th->traced[j];
            fprintf(tr->out, "%c\t%d\t%ld\t%u", (char)DIAG_RECORD_SYSCALL_COUNT, (int)th->tid,
                    c->nr, c->count);
            for (size_t k = 0; k < DIAG_MAX_ERRNOS && c->errors[k].count; k++)
                fprintf(tr->out, "\t%d:%u", c->errors[k].err, c->errors[k].count);
            fputc('\n', tr->out);
        }
    }
}

static void tracer_detach(struct tracer *tr)
{
    for (size_t i = 0; i < tr->n; i++) {
        struct tracee *t = &tr->tracees[i];
        if (!t->seized || t->gone)
            continue;
        if (t->stopped) {
            ptrace(PTRACE_DETACH, t->tid, NULL, (void *)(long)t->pending_sig);
            fprintf(tr->out, "%c\t%d\t1\n", (char)DIAG_RECORD_STOPPED, (int)t->tid);
        } else {
            /* Still running (e.g. in an uninterruptible sleep): it cannot be detached now; our
             * exit releases it, and the pending interrupt is dropped with the tracing. */
            fprintf(tr->out, "%c\t%d\t0\n", (char)DIAG_RECORD_STOPPED, (int)t->tid);
        }
    }
}

static void tracer_process(struct tracer *tr, struct diag_process *p, unsigned trace_window_ms,
                           uint64_t deadline)
{
    struct tracee tracees[DIAG_MAX_THREADS];
    tr->tracees = tracees;
    tr->n = p->nthreads;
    bool any_busy = false;
    for (size_t i = 0; i < p->nthreads; i++) {
        struct tracee *t = &tracees[i];
        *t = (struct tracee){.thread = &p->threads[i], .tid = p->threads[i].tid};
        if (ptrace(PTRACE_SEIZE, t->tid, NULL, (void *)(long)PTRACE_O_TRACESYSGOOD) == 0) {
            t->seized = true;
            any_busy |= p->threads[i].busy;
        } else if (errno != ESRCH) {
            char why[200];
            snprintf(why, sizeof(why), "PTRACE_SEIZE of thread %d: %s", (int)t->tid,
                     strerror(errno));
            tracer_put_text(tr, DIAG_RECORD_PTRACE_ERROR, p->pid, why);
            break; /* no rights: the same for every thread */
        }
    }
    if (any_busy && trace_window_ms > 0) {
        unsigned traced = tracer_count_syscalls(tr, trace_window_ms, deadline);
        fprintf(tr->out, "%c\t%d\t%u\n", (char)DIAG_RECORD_WINDOW, (int)p->pid, traced);
    }
    uint64_t stop_by = cf_now_ms() + DIAG_STOP_WAIT_MS;
    tracer_stop(tr, false, stop_by < deadline ? stop_by : deadline);
    tracer_report_counts(tr);
    bool any_stopped = false;
    for (size_t i = 0; i < tr->n; i++)
        any_stopped |= tracees[i].stopped && !tracees[i].gone;
    if (any_stopped)
        tracer_backtraces(tr, p->pid);
    tracer_detach(tr);
    fflush(tr->out);
}

static int tracer_signal_fd(void)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    return signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* The helper process: never returns. */
void diag_tracer_main(struct diag_ctx *ctx, int out_fd, pid_t parent, uint64_t deadline)
{
    /* If the harness dies, so do we, which detaches every tracee; a Ctrl-C ends us at once
     * rather than running the harness's handler in this copy of it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (getppid() != parent)
        _exit(1);
    if (out_fd != 3 && dup2(out_fd, 3) < 0)
        _exit(1);
    /* Do not hold the harness's sockets open (a client it closes must really close). */
    close_range(4, ~0u, 0);
    /* debuginfod would download debug info over the network: never in a bounded diagnosis. */
    unsetenv("DEBUGINFOD_URLS");
    struct tracer tr = {.out = fdopen(3, "w"), .sigchld_fd = tracer_signal_fd()};
    if (tr.out == NULL || tr.sigchld_fd < 0)
        _exit(1);
    setvbuf(tr.out, NULL, _IOLBF, 0); /* each finding reaches the parent even if we are killed */
    for (size_t i = 0; i < ctx->nprocs && cf_now_ms() < deadline; i++) {
        struct diag_process *p = &ctx->procs[i];
        unsigned window = DIAG_TRACE_WINDOW_MS;
        uint64_t left = deadline > cf_now_ms() ? deadline - cf_now_ms() : 0;
        if (window > left / 3)
            window = (unsigned)(left / 3);
        tracer_process(&tr, p, ctx->opt->sample_syscalls ? window : 0, deadline);
    }
    fclose(tr.out);
    _exit(0);
}
