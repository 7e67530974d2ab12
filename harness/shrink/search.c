/* search: the candidates, each one small step from the best so far. Kinds in the order they
 * are tried (the big cuts first): drop a whole group; a group's count to 1, halved, cut by a
 * quarter; its concurrency halved (not below 2); the fault phase halved; holds to 0; pipelines to
 * 1; a reset replaced by a close. The search (shrink.c) retries a kind that worked on the new best,
 * so halving goes on until it stops failing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shrink_internal.h"

#define MIN_DURATION_MS 200 /* a fault phase shorter than this hardly starts the clients */
/* Concurrency is halved, never below 2: a burst of one is a sequence, and a failure that
 * needs two connections within one turn of the server (accept-once) then hangs on the
 * prober's timing: 3 clients one at a time still failed connfault's runs, but their repro.c
 * failed 18 of 20 times; 3 at once, 20 of 20. Fewer clients is the goal, not less overlap. */
#define MIN_BURST 2

enum cand_kind {
    CAND_DROP_GROUP,
    CAND_COUNT_ONE,
    CAND_COUNT_HALF,
    CAND_COUNT_QUARTER,
    CAND_CONC_HALF,
    CAND_DURATION_HALF,
    CAND_HOLD_ZERO,
    CAND_PIPELINE_ONE,
    CAND_RESET_TO_CLOSE,
    CAND_KINDS
};
_Static_assert(CAND_KINDS == SHRINK_CANDIDATE_KINDS, "shrink_internal.h says how many");

int shrink_view_copy(struct scenario *dst, const struct scenario *src)
{
    *dst = *src;
    dst->groups = calloc(src->ngroups ? src->ngroups : 1, sizeof(*dst->groups));
    if (!dst->groups)
        return -ENOMEM;
    memcpy(dst->groups, src->groups, src->ngroups * sizeof(*dst->groups));
    return 0;
}

void shrink_view_free(struct scenario *v)
{
    free(v->groups);
    v->groups = NULL;
    v->ngroups = 0;
}

unsigned long long shrink_clients(const struct scenario *sc)
{
    unsigned long long n = 0;
    for (size_t i = 0; i < sc->ngroups; i++)
        n += sc->groups[i].count;
    return n;
}

static unsigned effective_conc(const struct client_group *g)
{
    return g->concurrency && g->concurrency < g->count ? g->concurrency : g->count;
}

/* Apply kind to group g of cand; false when it changes nothing. */
static bool apply_group(enum cand_kind kind, struct client_group *g)
{
    unsigned count = g->count, conc = effective_conc(g);
    switch (kind) {
    case CAND_COUNT_ONE:
        g->count = 1;
        break;
    case CAND_COUNT_HALF:
        g->count = count / 2 > 1 ? count / 2 : count;
        break;
    case CAND_COUNT_QUARTER:
        g->count = count - count / 4 > count / 2 + 1 ? count - count / 4 : count;
        break;
    case CAND_CONC_HALF:
        g->concurrency = conc / 2 >= MIN_BURST ? conc / 2 : g->concurrency;
        return conc / 2 >= MIN_BURST;
    case CAND_HOLD_ZERO:
        g->hold_ms.lo = g->hold_ms.hi = 0;
        return true;
    case CAND_PIPELINE_ONE:
        g->pipeline = 1;
        return true;
    case CAND_RESET_TO_CLOSE:
        g->end = END_CLOSE;
        return true;
    default:
        return false;
    }
    if (g->concurrency > g->count)
        g->concurrency = g->count;
    return g->count != count;
}

/* Whether kind would change group g (so a trial is worth it). */
static bool group_applies(enum cand_kind kind, const struct client_group *g)
{
    switch (kind) {
    case CAND_HOLD_ZERO:
        return g->hold_ms.hi > 0;
    case CAND_PIPELINE_ONE:
        return g->pipeline > 1;
    case CAND_RESET_TO_CLOSE:
        return g->end == END_RESET;
    default:
        return true;
    }
}

static bool apply_scenario(enum cand_kind kind, const struct scenario *best, unsigned gi,
                           struct scenario *cand)
{
    if (kind == CAND_DROP_GROUP) {
        if (best->ngroups < 2)
            return false;
        memmove(&cand->groups[gi], &cand->groups[gi + 1],
                (cand->ngroups - gi - 1) * sizeof(*cand->groups));
        cand->ngroups--;
        bool sandbox = cand->cable_pull_ms > 0;
        for (size_t i = 0; i < cand->ngroups; i++)
            sandbox |= cand->groups[i].end == END_DROP;
        cand->needs_sandbox = sandbox;
        return true;
    }
    if (kind == CAND_DURATION_HALF) {
        unsigned d = best->duration_ms / 2;
        if (gi != 0 || d < MIN_DURATION_MS || d <= best->cable_pull_ms)
            return false;
        cand->duration_ms = d;
        return true;
    }
    struct client_group *g = &cand->groups[gi];
    return group_applies(kind, g) && apply_group(kind, g);
}

bool shrink_candidate(const struct scenario *best, unsigned kind, size_t gi, struct scenario *cand)
{
    if (kind >= CAND_KINDS || gi >= best->ngroups || shrink_view_copy(cand, best) < 0)
        return false;
    bool applies = apply_scenario((enum cand_kind)kind, best, (unsigned)gi, cand);
    if (!applies)
        shrink_view_free(cand);
    return applies;
}
