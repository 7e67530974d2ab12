/* sample: which system calls the threads are in, read from /proc every few milliseconds, and
 * their CPU use over the same window, to tell busy threads from sleeping ones. */
#include "diagnose_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "cf_time.h"
#include "procfs.h"

/* Time on a CPU in ns: schedstat (ns) where the kernel has it, else utime+stime in ticks. */
static bool diag_thread_cpu_ns(pid_t pid, pid_t tid, uint64_t *ns)
{
    char path[96], text[512];
    diag_thread_path(path, sizeof(path), pid, tid, "schedstat");
    if (diag_read_file(path, text, sizeof(text)) > 0 && sscanf(text, "%" SCNu64, ns) == 1)
        return true;
    struct procfs_stat st;
    if (procfs_read_stat(pid, tid, &st) < 0)
        return false;
    *ns = procfs_stat_cpu_ns(&st);
    return true;
}

static void diag_sample_round(struct diag_process *p)
{
    for (size_t i = 0; i < p->nthreads; i++) {
        struct diag_thread *t = &p->threads[i];
        struct diag_thread probe = {.tid = t->tid};
        diag_read_syscall(p->pid, &probe);
        if (probe.sc == DIAG_SC_UNKNOWN)
            continue;
        t->samples++;
        long nr = probe.sc == DIAG_SC_IN        ? probe.nr
                  : probe.sc == DIAG_SC_RUNNING ? DIAG_NR_RUNNING
                                                : DIAG_NR_USER;
        if (probe.sc == DIAG_SC_RUNNING)
            t->samples_running++;
        struct diag_count *c = diag_count_slot(t->sampled, &t->nsampled, nr);
        if (c != NULL)
            c->count++;
    }
}

void diag_sample(struct diag_ctx *ctx)
{
    uint64_t window = DIAG_SAMPLE_WINDOW_MS;
    if (window > diag_remaining_ms(ctx) / 5)
        window = diag_remaining_ms(ctx) / 5;
    for (size_t i = 0; i < ctx->nprocs; i++) {
        struct diag_process *p = &ctx->procs[i];
        for (size_t j = 0; j < p->nthreads; j++)
            p->threads[j].cpu_known =
                diag_thread_cpu_ns(p->pid, p->threads[j].tid, &p->threads[j].cpu_ns_start);
    }
    uint64_t start = cf_now_ms(), end = start + window;
    do {
        for (size_t i = 0; i < ctx->nprocs; i++)
            diag_sample_round(&ctx->procs[i]);
        struct timespec period = {0, DIAG_SAMPLE_PERIOD_MS * 1000000L};
        nanosleep(&period, NULL); /* the sampling period, not a wait for a result */
    } while (cf_now_ms() < end);
    uint64_t elapsed_ms = cf_now_ms() - start;
    ctx->sample_window_ms = (unsigned)elapsed_ms;

    for (size_t i = 0; i < ctx->nprocs; i++) {
        struct diag_process *p = &ctx->procs[i];
        for (size_t j = 0; j < p->nthreads; j++) {
            struct diag_thread *t = &p->threads[j];
            uint64_t cpu_end;
            if (t->cpu_known && elapsed_ms > 0 && diag_thread_cpu_ns(p->pid, t->tid, &cpu_end))
                t->cpu_pct = (double)(cpu_end - t->cpu_ns_start) / 1e4 / (double)elapsed_ms;
            else
                t->cpu_known = false;
            diag_sort_counts(t->sampled, t->nsampled);
            t->busy = (t->samples > 0 && 2 * t->samples_running >= t->samples) ||
                      (t->cpu_known && t->cpu_pct >= 50.0);
        }
    }
}
