/* flows: `connfault shrink CAPTURE.pcap`: delta debugging (ddmin, Zeller) over the capture's
 * flows, then over each kept flow's client segments, then the replay's pace. A candidate is a
 * cut (cut.c): the kept flows and segments as a replay set of their own, its flows' start
 * times moved so the first starts at once; it must fail the same check in K of K runs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cf_time.h"
#include "shrink_internal.h"

#define PAST_MAX        64 /* earlier bests kept for the re-confirmation to step back to */
#define SPEED_DOUBLINGS 4  /* faster paces tried when "no waits" does not fail: x2 .. x16 */

struct capture_search {
    struct shrink_state *st;
    struct shrink_cut best; /* owned */
    struct shrink_cut past[PAST_MAX];
    size_t npast;
    size_t *idx;     /* room for a candidate's items */
    size_t seg_flow; /* SIZE_MAX: ddmin over flows; else over this flow's segments */
};

/* The cut fails in `runs` runs (K when runs is 0). */
static bool cut_fails(struct shrink_state *st, const struct shrink_cut *cut, unsigned runs)
{
    struct scenario sc;
    run_replay_scenario(&sc, &cut->set);
    return shrink_trial_runs(st, &sc, runs ? runs : st->so->confirm);
}

/* The best so far joins the earlier ones (beyond PAST_MAX, the oldest is forgotten). */
static void push_past(struct capture_search *cs)
{
    if (cs->npast == PAST_MAX) {
        shrink_cut_free(&cs->past[0]);
        memmove(&cs->past[0], &cs->past[1], (PAST_MAX - 1) * sizeof(cs->past[0]));
        cs->npast--;
    }
    cs->past[cs->npast++] = cs->best;
}

/* Step back to the best before this one. false: there is none. */
static bool pop_past(struct capture_search *cs)
{
    if (cs->npast == 0)
        return false;
    shrink_cut_free(&cs->best);
    cs->best = cs->past[--cs->npast];
    return true;
}

static void progress(const struct shrink_state *st, const struct shrink_cut *tried,
                     const struct shrink_cut *best, bool fails)
{
    char t[128], b[128];
    shrink_cut_describe(tried, t, sizeof(t));
    shrink_cut_describe(best, b, sizeof(b));
    fprintf(stderr, "connfault shrink: trial %u/%u: %s: %s%s%s%s; best so far %s (%.0f s)\n",
            st->trials, st->so->max_trials, t, fails ? "fails" : "does not fail", fails ? "" : " (",
            fails ? "" : st->last_miss, fails ? "" : ")", b,
            (double)(cf_now_ms() - st->t0_ms) / 1000.0);
}

/* Try cand (owned, taken): true when it failed and became the best. */
static bool try_cut(struct capture_search *cs, struct shrink_cut *cand)
{
    struct shrink_state *st = cs->st;
    st->trials++;
    bool fails = cut_fails(st, cand, 0);
    if (st->stop != 130)
        progress(st, cand, fails ? cand : &cs->best, fails);
    if (!fails) {
        shrink_cut_free(cand);
        return false;
    }
    push_past(cs);
    cs->best = *cand;
    return true;
}

/* Items of the level searched: the best's flows, or the segments of one of its flows. */
static size_t items(const struct capture_search *cs)
{
    return cs->seg_flow == SIZE_MAX ? cs->best.set.nflows : cs->best.set.flows[cs->seg_flow].nsegs;
}

/* The candidate that keeps items idx[0..m) of the level searched. 0, or -1 (no memory). */
static int make_cut(const struct capture_search *cs, size_t m, struct shrink_cut *out)
{
    if (cs->seg_flow == SIZE_MAX)
        return shrink_cut_make(&cs->best, cs->idx, m, SIZE_MAX, NULL, 0, out);
    return shrink_cut_make(&cs->best, NULL, cs->best.set.nflows, cs->seg_flow, cs->idx, m, out);
}

/* One pass over the chunks (or their complements) of `parts`: true when one failed (then it
 * is the best, its items renumbered from 0). */
static bool ddmin_pass(struct capture_search *cs, size_t parts, bool complement)
{
    for (size_t c = 0; c < parts && shrink_budget_left(cs->st); c++) {
        size_t n = items(cs), lo = n * c / parts, hi = n * (c + 1) / parts, m = 0;
        for (size_t i = 0; i < n; i++)
            if ((i >= lo && i < hi) != complement)
                cs->idx[m++] = i;
        if (m == 0 || m == n)
            continue;
        struct shrink_cut cand;
        if (make_cut(cs, m, &cand) < 0) {
            cs->st->stop = 2;
            return false;
        }
        if (try_cut(cs, &cand))
            return true;
    }
    return false;
}

/* ddmin over the items of the level searched. */
static void ddmin(struct capture_search *cs)
{
    size_t parts = 2;
    while (items(cs) >= 2 && shrink_budget_left(cs->st)) {
        if (ddmin_pass(cs, parts, false))
            parts = 2;
        else if (parts > 2 && ddmin_pass(cs, parts, true))
            parts = parts - 1 > 2 ? parts - 1 : 2;
        else if (parts >= items(cs))
            break;
        else
            parts = parts * 2 < items(cs) ? parts * 2 : items(cs);
    }
}

/* Each kept flow's segments: first none at all (connect, send nothing, end as captured), then
 * ddmin (which never tries the empty set). */
static void shrink_segments(struct capture_search *cs)
{
    for (size_t f = 0; f < cs->best.set.nflows && shrink_budget_left(cs->st); f++) {
        cs->seg_flow = f;
        struct shrink_cut cand;
        if (items(cs) > 0) {
            if (make_cut(cs, 0, &cand) < 0) {
                cs->st->stop = 2;
                break;
            }
            if (try_cut(cs, &cand))
                continue;
        }
        ddmin(cs);
    }
    cs->seg_flow = SIZE_MAX;
}

/* The pace: no waits at all, else twice as fast as the best, as long as that fails. */
static void shrink_speed(struct capture_search *cs)
{
    double next = 0;
    for (int i = 0; i <= SPEED_DOUBLINGS && cs->best.set.speed > 0 && shrink_budget_left(cs->st);
         i++) {
        struct shrink_cut cand;
        if (shrink_cut_make(&cs->best, NULL, cs->best.set.nflows, SIZE_MAX, NULL, 0, &cand) < 0) {
            cs->st->stop = 2;
            return;
        }
        cand.set.speed = next;
        bool was_max = next == 0;
        if (!try_cut(cs, &cand) && !was_max)
            return;
        next = (was_max ? cs->best.set.speed : next) * 2;
        if (cs->best.set.speed == 0)
            return;
    }
}

/* The best must fail in final_runs more runs; else step back. 0, or the exit status. */
static int reconfirm(struct capture_search *cs)
{
    struct shrink_state *st = cs->st;
    char d[128];
    st->final_runs =
        st->so->confirm * 2 > SHRINK_FINAL_MIN ? st->so->confirm * 2 : SHRINK_FINAL_MIN;
    while (!cut_fails(st, &cs->best, st->final_runs)) {
        if (st->stop)
            return st->stop;
        shrink_cut_describe(&cs->best, d, sizeof(d));
        fprintf(stderr,
                "connfault shrink: re-confirming: %s did not fail %s in %u of %u runs; stepping "
                "back\n",
                d, st->check, st->final_runs, st->final_runs);
        if (pop_past(cs))
            continue;
        printf("connfault shrink: nothing reliable to write: %s failed %s in %u of %u runs, but "
               "not in %u of %u more\n",
               d, st->check, st->so->confirm, st->so->confirm, st->final_runs, st->final_runs);
        return 1;
    }
    return 0;
}

/* Confirm, ddmin over flows, segments, pace, re-confirm, write. The exit status. */
static int shrink_flows(struct capture_search *cs, const struct replay_set *set)
{
    struct shrink_state *st = cs->st;
    fprintf(stderr, "connfault shrink: %s: %zu flow(s); confirming (%u run(s))\n", set->name,
            set->nflows, st->so->confirm);
    if (!cut_fails(st, &cs->best, 0)) {
        if (st->stop)
            return st->stop;
        printf("connfault shrink: nothing to shrink: %s does not fail %s in %u of %u runs "
               "against this target\n",
               set->name, st->check[0] ? st->check : "any check", st->so->confirm, st->so->confirm);
        return 1;
    }
    fprintf(stderr, "connfault shrink: %s fails %s in %u of %u runs; shrinking\n", set->name,
            st->check, st->so->confirm, st->so->confirm);
    ddmin(cs);
    shrink_segments(cs);
    shrink_speed(cs);
    int rc = st->stop ? st->stop : reconfirm(cs);
    /* interrupted (Ctrl-C, SIGTERM): the best so far is written, marked as not re-confirmed,
     * rather than lost with the trials that found it */
    return rc == 0 || (rc == 130 && st->stop == 130) ? shrink_capture_write(st, set, &cs->best)
                                                     : rc;
}

int shrink_capture_main(const struct run_options *opt, const struct shrink_options *so,
                        const struct replay_set *set)
{
    char err[512];
    struct shrink_state st = {.opt = opt, .so = so, .t0_ms = cf_now_ms()};
    struct capture_search cs = {.st = &st, .seg_flow = SIZE_MAX};
    if (so->check)
        snprintf(st.check, sizeof(st.check), "%s", so->check);
    size_t most = set->nflows;
    for (size_t i = 0; i < set->nflows; i++)
        most = set->flows[i].nsegs > most ? set->flows[i].nsegs : most;
    cs.idx = calloc(most + 1, sizeof(*cs.idx));
    int rc = 2;
    if (!cs.idx || shrink_cut_from(set, &cs.best) < 0) {
        fprintf(stderr, "connfault shrink: out of memory\n");
    } else if (!(st.env = run_env_new(opt, err, sizeof(err)))) {
        fprintf(stderr, "connfault shrink: %s\n", err);
    } else {
        struct scenario sc;
        run_replay_scenario(&sc, &cs.best.set);
        rc = shrink_prepare(st.env, &sc);
        rc = rc ? rc : shrink_flows(&cs, set);
        run_env_free(st.env);
    }
    while (pop_past(&cs))
        ;
    shrink_cut_free(&cs.best);
    free(cs.idx);
    return rc;
}
