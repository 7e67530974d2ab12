/* search: the candidates, each one small step from the best so far. Kinds in the order they
 * are tried (the big cuts first): drop a whole group; a group's count to 1, halved, cut by a
 * quarter; its concurrency halved (not below 2); the fault phase halved; holds to 0; pipelines to
 * 1; a reset replaced by a close; then the finer numbers, each to its least, halved, cut by a
 * quarter as counts are: a trickle's endless tail dropped and its trickled bytes cut; the byte
 * offsets where a partial send stops and where a read stops; the connection rate (halved and
 * cut by a quarter only: at its least, 1 a second, a group hardly starts) and the trickle's
 * bytes a step. The search (shrink.c) retries a kind that worked on the new best, so halving
 * goes on until it stops failing. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shrink_internal.h"

#define MIN_DURATION_MS 200 /* a fault phase shorter than this hardly starts the clients */
/* Concurrency is halved, never below 2: a burst of one is a sequence, and a failure that
 * needs two connections within one turn of the server (accept-once) then hangs on the
 * prober's timing: 3 clients one at a time still failed connfault's runs, but their repro.c
 * failed 18 of 20 times; 3 at once, 20 of 20. Fewer clients is the goal, not less overlap. */
#define MIN_BURST      2
#define MIN_RATE_MILLI 1000 /* rates are cut in thousandths, down to 1 connection a second */

enum cand_op {
    OP_DROP_GROUP,
    OP_COUNT,
    OP_CONC_HALF,
    OP_DURATION_HALF,
    OP_HOLD_ZERO,
    OP_PIPELINE_ONE,
    OP_RESET_TO_CLOSE,
    OP_TAIL_NONE,
    OP_TRICKLE_LEN,
    OP_SEND_BYTES,
    OP_READ_BYTES,
    OP_RATE,
    OP_TRICKLE_BYTES,
};

/* How a number is cut (the ops that take one): as counts are. */
enum cut_step { STEP_LEAST, STEP_HALF, STEP_QUARTER };

/* The kinds in the order tried, each with the words of the progress line. */
static const struct cand_kind {
    enum cand_op op;
    enum cut_step step;
    const char *what;
} kinds[] = {
    {OP_DROP_GROUP, 0, "dropped"},
    {OP_COUNT, STEP_LEAST, "count to 1"},
    {OP_COUNT, STEP_HALF, "count halved"},
    {OP_COUNT, STEP_QUARTER, "count cut by a quarter"},
    {OP_CONC_HALF, 0, "concurrency halved"},
    {OP_DURATION_HALF, 0, "fault phase halved"},
    {OP_HOLD_ZERO, 0, "hold to 0"},
    {OP_PIPELINE_ONE, 0, "pipeline to 1"},
    {OP_RESET_TO_CLOSE, 0, "reset to close"},
    {OP_TAIL_NONE, 0, "trickle_tail dropped"},
    {OP_TRICKLE_LEN, STEP_LEAST, "trickled request to 1 byte"},
    {OP_TRICKLE_LEN, STEP_HALF, "trickled request halved"},
    {OP_TRICKLE_LEN, STEP_QUARTER, "trickled request cut by a quarter"},
    {OP_SEND_BYTES, STEP_LEAST, "send_bytes to 1"},
    {OP_SEND_BYTES, STEP_HALF, "send_bytes halved"},
    {OP_SEND_BYTES, STEP_QUARTER, "send_bytes cut by a quarter"},
    {OP_READ_BYTES, STEP_LEAST, "read to 1 byte"},
    {OP_READ_BYTES, STEP_HALF, "read bytes halved"},
    {OP_READ_BYTES, STEP_QUARTER, "read bytes cut by a quarter"},
    {OP_RATE, STEP_HALF, "rate halved"},
    {OP_RATE, STEP_QUARTER, "rate cut by a quarter"},
    {OP_TRICKLE_BYTES, STEP_LEAST, "trickle_bytes to 1"},
    {OP_TRICKLE_BYTES, STEP_HALF, "trickle_bytes halved"},
    {OP_TRICKLE_BYTES, STEP_QUARTER, "trickle_bytes cut by a quarter"},
};
_Static_assert(sizeof(kinds) / sizeof(kinds[0]) == SHRINK_CANDIDATE_KINDS,
               "shrink_internal.h says how many");

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

/* v cut one step, never below least; v itself when the step would not make it smaller. The
 * finer cut takes a quarter, at least 1, so that every number is reached in the end: when 2
 * of 4 clients do not fail, 3 is tried (it was not: a quarter of 4 landed on the half + 1). It
 * is not tried where it lands on the half or below (the half was tried). */
static uint64_t cut(enum cut_step step, uint64_t v, uint64_t least)
{
    uint64_t quarter = v / 4 > 1 ? v / 4 : 1;
    uint64_t to = step == STEP_LEAST ? least : step == STEP_HALF ? v / 2 : v - quarter;
    if (step == STEP_HALF && to <= least)
        return v;
    if (step == STEP_QUARTER && to <= v / 2)
        return v;
    return to >= least && to < v ? to : v;
}

/* A byte range cut at its top, its bottom scaled with it (a drawn range stays one, in the
 * same proportion), never below 1. true when it changed. */
static bool cut_range(enum cut_step step, struct range *r)
{
    uint64_t hi = cut(step, r->hi, 1);
    if (hi == r->hi)
        return false;
    uint64_t lo = (uint64_t)((double)r->lo * (double)hi / (double)r->hi);
    r->lo = lo < 1 ? 1 : lo > hi ? hi : lo;
    r->hi = hi;
    return true;
}

static bool cut_uint(enum cut_step step, unsigned *v, unsigned least)
{
    unsigned was = *v;
    *v = (unsigned)cut(step, was, least);
    return *v != was;
}

static bool cut_rate(enum cut_step step, double *rate)
{
    uint64_t milli = (uint64_t)llround(*rate * 1000.0), to = cut(step, milli, MIN_RATE_MILLI);
    if (*rate <= 0 || to == milli)
        return false;
    *rate = (double)to / 1000.0;
    return true;
}

static unsigned effective_conc(const struct client_group *g)
{
    return g->concurrency && g->concurrency < g->count ? g->concurrency : g->count;
}

/* What scenario_load keeps true of a group, kept true of a candidate: no more concurrency
 * than clients, no partial send past the end of the request. */
static void keep_group_valid(struct client_group *g)
{
    uint64_t total = (uint64_t)g->request_len * (g->pipeline ? g->pipeline : 1);
    if (g->concurrency > g->count)
        g->concurrency = g->count;
    if (g->send == SEND_PARTIAL && g->send_bytes.hi > total)
        g->send_bytes.hi = total;
    if (g->send_bytes.lo > g->send_bytes.hi)
        g->send_bytes.lo = g->send_bytes.hi;
}

/* The structural ops on group g; false when it changes nothing. */
static bool apply_shape(enum cand_op op, struct client_group *g)
{
    unsigned conc = effective_conc(g);
    switch (op) {
    case OP_CONC_HALF:
        if (conc / 2 < MIN_BURST)
            return false;
        g->concurrency = conc / 2;
        return true;
    case OP_HOLD_ZERO:
        g->hold_ms.lo = g->hold_ms.hi = 0;
        return true;
    case OP_PIPELINE_ONE:
        g->pipeline = 1;
        return true;
    case OP_RESET_TO_CLOSE:
        g->end = END_CLOSE;
        return true;
    case OP_TAIL_NONE:
        g->trickle_tail = NULL; /* the original's bytes, not freed through a view */
        g->trickle_tail_len = 0;
        return true;
    default:
        return false;
    }
}

/* Whether op could change group g at all (so a trial is worth it). */
static bool group_applies(enum cand_op op, const struct client_group *g)
{
    switch (op) {
    case OP_HOLD_ZERO:
        return g->hold_ms.hi > 0;
    case OP_PIPELINE_ONE:
        return g->pipeline > 1;
    case OP_RESET_TO_CLOSE:
        return g->end == END_RESET;
    case OP_TAIL_NONE:
        return g->send == SEND_TRICKLE && g->trickle_tail != NULL;
    case OP_TRICKLE_LEN:
    case OP_TRICKLE_BYTES:
        return g->send == SEND_TRICKLE;
    case OP_SEND_BYTES:
        return g->send == SEND_PARTIAL;
    case OP_READ_BYTES:
        return g->read == READ_BYTES;
    default:
        return true;
    }
}

/* Kind k applied to group g; false when it changes nothing. */
static bool apply_group(const struct cand_kind *k, struct client_group *g)
{
    bool changed;
    size_t len;
    if (!group_applies(k->op, g))
        return false;
    switch (k->op) {
    case OP_COUNT:
        changed = cut_uint(k->step, &g->count, 1);
        break;
    case OP_TRICKLE_LEN: /* a prefix of the same bytes: the request stays the original's */
        len = (size_t)cut(k->step, g->request_len, 1);
        changed = len != g->request_len;
        g->request_len = len;
        break;
    case OP_SEND_BYTES:
        changed = cut_range(k->step, &g->send_bytes);
        break;
    case OP_READ_BYTES:
        changed = cut_range(k->step, &g->read_bytes);
        break;
    case OP_RATE:
        changed = cut_rate(k->step, &g->rate);
        break;
    case OP_TRICKLE_BYTES:
        changed = cut_uint(k->step, &g->trickle_bytes, 1);
        break;
    default:
        changed = apply_shape(k->op, g);
    }
    keep_group_valid(g);
    return changed;
}

static bool apply_scenario(const struct cand_kind *k, const struct scenario *best, unsigned gi,
                           struct scenario *cand)
{
    if (k->op == OP_DROP_GROUP) {
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
    if (k->op == OP_DURATION_HALF) {
        unsigned d = best->duration_ms / 2;
        if (gi != 0 || d < MIN_DURATION_MS || d <= best->cable_pull_ms)
            return false;
        cand->duration_ms = d;
        return true;
    }
    return apply_group(k, &cand->groups[gi]);
}

bool shrink_candidate_scenario_wide(unsigned kind)
{
    return kind < SHRINK_CANDIDATE_KINDS && kinds[kind].op == OP_DURATION_HALF;
}

const char *shrink_candidate_what(unsigned kind)
{
    return kind < SHRINK_CANDIDATE_KINDS ? kinds[kind].what : "?";
}

bool shrink_candidate(const struct scenario *best, unsigned kind, size_t gi, struct scenario *cand)
{
    if (kind >= SHRINK_CANDIDATE_KINDS || gi >= best->ngroups || shrink_view_copy(cand, best) < 0)
        return false;
    bool applies = apply_scenario(&kinds[kind], best, (unsigned)gi, cand);
    if (!applies)
        shrink_view_free(cand);
    return applies;
}
