/* counts: per-thread tallies of system calls (from /proc samples or from tracing) and of the
 * errors they failed with. */
#include "diagnose_internal.h"

#include <stdlib.h>

struct diag_count *diag_count_slot(struct diag_count *counts, size_t *n, long nr)
{
    for (size_t i = 0; i < *n; i++) {
        if (counts[i].nr == nr)
            return &counts[i];
    }
    if (*n == DIAG_MAX_COUNTS)
        return NULL; /* more distinct calls than we list: the rare ones are dropped */
    counts[*n] = (struct diag_count){.nr = nr};
    return &counts[(*n)++];
}

void diag_count_error(struct diag_count *c, int err, unsigned times)
{
    for (size_t i = 0; i < DIAG_MAX_ERRNOS; i++) {
        if (c->errors[i].count == 0 || c->errors[i].err == err) {
            c->errors[i].err = err;
            c->errors[i].count += times;
            return;
        }
    }
}

static int diag_compare_count(const void *a, const void *b)
{
    unsigned x = ((const struct diag_count *)a)->count, y = ((const struct diag_count *)b)->count;
    return (x < y) - (x > y); /* most frequent first */
}

void diag_sort_counts(struct diag_count *counts, size_t n)
{
    qsort(counts, n, sizeof(*counts), diag_compare_count);
}

unsigned diag_count_errors(const struct diag_count *c, int err)
{
    for (size_t i = 0; i < DIAG_MAX_ERRNOS; i++) {
        if (c->errors[i].count && c->errors[i].err == err)
            return c->errors[i].count;
    }
    return 0;
}

/* The traced counts of all threads, summed, most frequent first. */
size_t diag_total_counts(const struct diag_ctx *ctx, struct diag_count *sum, unsigned *window_ms)
{
    size_t n = 0;
    *window_ms = 0;
    for (size_t i = 0; i < ctx->nprocs; i++) {
        const struct diag_process *p = &ctx->procs[i];
        if (p->trace_window_ms > *window_ms)
            *window_ms = p->trace_window_ms;
        for (size_t j = 0; j < p->nthreads; j++) {
            const struct diag_thread *t = &p->threads[j];
            for (size_t k = 0; k < t->ntraced; k++) {
                struct diag_count *c = diag_count_slot(sum, &n, t->traced[k].nr);
                if (c == NULL)
                    continue;
                c->count += t->traced[k].count;
                for (size_t e = 0; e < DIAG_MAX_ERRNOS && t->traced[k].errors[e].count; e++)
                    diag_count_error(c, t->traced[k].errors[e].err, t->traced[k].errors[e].count);
            }
        }
    }
    diag_sort_counts(sum, n);
    return n;
}
