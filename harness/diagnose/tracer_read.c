/* tracer_read: the parent's side of the ptrace helper: forks it (tracer.c), reads its records
 * (format in diagnose_internal.h) until it exits or the budget ends, reaps it (killing it at
 * the deadline, which detaches it from the target) and folds the records into the model. */
#include "diagnose_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cf_time.h"

static struct diag_thread *diag_find_thread(struct diag_ctx *ctx, pid_t tid)
{
    for (size_t i = 0; i < ctx->nprocs; i++) {
        for (size_t j = 0; j < ctx->procs[i].nthreads; j++) {
            if (ctx->procs[i].threads[j].tid == tid)
                return &ctx->procs[i].threads[j];
        }
    }
    return NULL;
}

static struct diag_process *diag_find_process(struct diag_ctx *ctx, pid_t pid)
{
    for (size_t i = 0; i < ctx->nprocs; i++) {
        if (ctx->procs[i].pid == pid)
            return &ctx->procs[i];
    }
    return NULL;
}

/* Splits a line at tabs in place; returns the number of fields. */
static size_t diag_split(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        p = strchr(p, '\t');
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    return n;
}

static void diag_parse_frame(struct diag_thread *t, char **f)
{
    if (t->nframes == DIAG_MAX_FRAMES)
        return;
    if (t->frames == NULL) {
        t->frames = calloc(DIAG_MAX_FRAMES, sizeof(*t->frames));
        if (t->frames == NULL)
            return;
    }
    struct diag_frame *fr = &t->frames[t->nframes++];
    fr->pc = strtoull(f[2], NULL, 16);
    fr->inlined = atoi(f[3]) != 0;
    fr->line = atoi(f[4]);
    diag_copy(fr->function, sizeof(fr->function), f[5]);
    diag_copy(fr->file, sizeof(fr->file), f[6]);
    diag_copy(fr->module, sizeof(fr->module), f[7]);
}

static void diag_parse_count(struct diag_thread *t, char **f, size_t n)
{
    struct diag_count *c = diag_count_slot(t->traced, &t->ntraced, strtol(f[2], NULL, 10));
    if (c == NULL)
        return;
    c->count = (unsigned)strtoul(f[3], NULL, 10);
    for (size_t i = 4; i < n; i++) {
        int err;
        unsigned times;
        if (sscanf(f[i], "%d:%u", &err, &times) == 2)
            diag_count_error(c, err, times);
    }
}

static void diag_parse_line(struct diag_ctx *ctx, char *line)
{
    char *f[10];
    size_t n = diag_split(line, f, 10);
    if (n < 3)
        return;
    pid_t id = (pid_t)atoi(f[1]);
    struct diag_thread *t = diag_find_thread(ctx, id);
    struct diag_process *p = diag_find_process(ctx, id);
    switch ((enum diag_record)f[0][0]) {
    case DIAG_RECORD_FRAME:
        if (t != NULL && n == 8)
            diag_parse_frame(t, f);
        break;
    case DIAG_RECORD_UNWIND_STOPPED:
        if (t != NULL)
            diag_copy(t->unwind_error, sizeof(t->unwind_error), f[2]);
        break;
    case DIAG_RECORD_SYSCALL_COUNT:
        if (t != NULL && n >= 4) {
            diag_parse_count(t, f, n);
            ctx->traced_any = true;
        }
        break;
    case DIAG_RECORD_STOPPED:
        if (t != NULL) {
            t->stopped_for_trace = f[2][0] == '1';
            t->not_stopped = !t->stopped_for_trace;
            ctx->ptrace_ok = true;
        }
        break;
    case DIAG_RECORD_WINDOW:
        if (p != NULL)
            p->trace_window_ms = (unsigned)strtoul(f[2], NULL, 10);
        break;
    case DIAG_RECORD_PTRACE_ERROR:
        if (p != NULL && p->ptrace_error[0] == '\0')
            diag_copy(p->ptrace_error, sizeof(p->ptrace_error), f[2]);
        break;
    default:
        break;
    }
}

void diag_read_records(struct diag_ctx *ctx, char *buf)
{
    char *line = buf;
    char *nl;
    while ((nl = strchr(line, '\n')) != NULL) { /* a cut-off last line is dropped */
        *nl = '\0';
        diag_parse_line(ctx, line);
        line = nl + 1;
    }
    for (size_t i = 0; i < ctx->nprocs; i++) {
        for (size_t j = 0; j < ctx->procs[i].nthreads; j++) {
            struct diag_thread *t = &ctx->procs[i].threads[j];
            diag_sort_counts(t->traced, t->ntraced);
        }
    }
}

/* Reads everything the helper writes until it exits or the deadline passes. */
static char *diag_collect(int fd, uint64_t deadline, bool *timed_out)
{
    size_t len = 0, cap = 16384;
    char *buf = malloc(cap);
    *timed_out = false;
    while (buf != NULL) {
        uint64_t now = cf_now_ms();
        if (now >= deadline) {
            *timed_out = true;
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, (int)(deadline - now));
        if (ready < 0 && errno != EINTR)
            break;
        if (ready <= 0)
            continue; /* timeout (checked above) or EINTR */
        if (len + 4096 > cap) {
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL)
                break;
            buf = grown;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + len, cap - len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

/* Reaps the helper, killing it first if asked; bounded: a helper that does not die even then
 * (stuck in the kernel) is left for the harness's exit to reap. */
static bool diag_reap(pid_t child, bool kill_first)
{
    if (kill_first)
        kill(child, SIGKILL);
    uint64_t deadline = cf_now_ms() + DIAG_REAP_WAIT_MS;
    for (;;) {
        int status;
        pid_t r = waitpid(child, &status, WNOHANG);
        if (r == child || (r < 0 && errno == ECHILD))
            return true;
        if (cf_now_ms() >= deadline) {
            if (kill_first)
                return false;
            kill(child, SIGKILL);
            kill_first = true;
            deadline = cf_now_ms() + DIAG_REAP_WAIT_MS;
        }
        struct timespec tick = {0, 2 * 1000000L};
        nanosleep(&tick, NULL); /* polling a child's exit: waitpid has no timeout */
    }
}

void diag_run_helper(struct diag_ctx *ctx)
{
    uint64_t hard = ctx->deadline_ms > DIAG_RENDER_RESERVE_MS
                        ? ctx->deadline_ms - DIAG_RENDER_RESERVE_MS
                        : ctx->deadline_ms;
    if (cf_now_ms() + 100 >= hard) {
        diag_note(ctx, "no time left in the budget for backtraces");
        return;
    }
    /* The helper aims to finish a little before the hard deadline, where it is killed. */
    uint64_t soft = hard - (hard - cf_now_ms()) / 8;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        diag_note(ctx, "no backtraces: pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        diag_note(ctx, "no backtraces: fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (child == 0) {
        close(fds[0]);
        diag_tracer_main(ctx, fds[1], parent, soft);
    }
    close(fds[1]);
    ctx->helper_ran = true;
    bool timed_out;
    char *found = diag_collect(fds[0], hard, &timed_out);
    close(fds[0]);
    if (!diag_reap(child, timed_out))
        diag_note(ctx, "the ptrace helper (pid %d) could not be reaped", (int)child);
    if (timed_out)
        diag_note(ctx, "the ptrace helper overran the budget and was killed (which detached "
                       "it): backtraces may be missing");
    if (found != NULL)
        diag_read_records(ctx, found);
    free(found);
}
