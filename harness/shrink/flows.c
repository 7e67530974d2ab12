/* flows: `connfault shrink CAPTURE.pcap`: delta debugging (ddmin, Zeller) over the capture's
 * flows: the replay of a subset of them, its flows' start times moved so the first starts at
 * once, must fail the same check in K of K runs. Segments within a flow are not cut (yet):
 * each kept flow is replayed whole. */
#include <stdlib.h>
#include <string.h>

#include "cf_time.h"
#include "pcap_flows.h"
#include "shrink_internal.h"

/* As run.c's replay of a capture: the fault phase lasts its span, and 5 s for the ends. */
#define REPLAY_END_SLACK_MS 5000u

/* Flows keep[0..n) of set as a replay set of their own (flows copied, their data shared),
 * moved to start at 0. 0, or -1 (no memory). */
static int subset(const struct replay_set *set, const size_t *keep, size_t n,
                  struct replay_set *out)
{
    *out = *set;
    out->warnings = NULL;
    out->flows = calloc(n ? n : 1, sizeof(*out->flows));
    if (!out->flows)
        return -1;
    uint64_t first = UINT64_MAX, last = 0;
    for (size_t i = 0; i < n; i++)
        first = set->flows[keep[i]].start_us < first ? set->flows[keep[i]].start_us : first;
    for (size_t i = 0; i < n; i++) {
        out->flows[i] = set->flows[keep[i]];
        out->flows[i].start_us -= first;
        uint64_t end = out->flows[i].start_us + out->flows[i].duration_us;
        last = end > last ? end : last;
    }
    out->nflows = n;
    out->duration_us = last;
    return 0;
}

/* The scenario that replays sub (as run_replay makes it). */
static void replay_scenario(struct scenario *sc, const struct replay_set *sub)
{
    uint64_t span_ms =
        sub->speed > 0 ? (uint64_t)((double)sub->duration_us / 1000.0 / sub->speed) : 0;
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->name, sizeof(sc->name), "%s", sub->name);
    sc->duration_ms = (unsigned)(span_ms < 3600000u ? span_ms : 3600000u) + REPLAY_END_SLACK_MS;
    for (size_t i = 0; i < sub->nflows; i++)
        sc->needs_sandbox |= sub->flows[i].end == FLOW_END_SILENT;
    sc->replay = sub;
}

/* Flows keep[0..n) fail in `runs` runs (K when runs is 0). */
static bool flows_fail(struct shrink_state *st, const struct replay_set *set, const size_t *keep,
                       size_t n, unsigned runs)
{
    struct replay_set sub;
    struct scenario sc;
    if (subset(set, keep, n, &sub) < 0) {
        st->stop = 2;
        return false;
    }
    replay_scenario(&sc, &sub);
    bool fails = shrink_trial_runs(st, &sc, runs ? runs : st->so->confirm);
    free(sub.flows);
    return fails;
}

struct ddmin {
    size_t *keep, n; /* the best so far: flow indexes */
    size_t *cand;    /* room for a candidate */
    size_t npast;    /* earlier bests, for the final re-confirmation to step back to */
    struct past {
        size_t *keep, n;
    } past[64];
};

/* The best so far joins the earlier ones (beyond 64, the oldest are forgotten). */
static void push_past(struct ddmin *d)
{
    size_t *copy = malloc((d->n ? d->n : 1) * sizeof(*copy));
    if (!copy)
        return;
    memcpy(copy, d->keep, d->n * sizeof(*copy));
    if (d->npast == sizeof(d->past) / sizeof(d->past[0])) {
        free(d->past[0].keep);
        memmove(&d->past[0], &d->past[1], (d->npast - 1) * sizeof(d->past[0]));
        d->npast--;
    }
    d->past[d->npast++] = (struct past){copy, d->n};
}

/* Step back to the best before this one. false: there is none. */
static bool pop_past(struct ddmin *d)
{
    if (d->npast == 0)
        return false;
    struct past *p = &d->past[--d->npast];
    memcpy(d->keep, p->keep, p->n * sizeof(*d->keep));
    d->n = p->n;
    free(p->keep);
    return true;
}

/* Candidate: chunk c of `parts` (complement: all but it) of the best. Its size. */
static size_t chunk(const struct ddmin *d, size_t parts, size_t c, bool complement)
{
    size_t lo = d->n * c / parts, hi = d->n * (c + 1) / parts, m = 0;
    for (size_t i = 0; i < d->n; i++)
        if ((i >= lo && i < hi) != complement)
            d->cand[m++] = d->keep[i];
    return m;
}

static void progress(const struct shrink_state *st, size_t tried, size_t best, bool fails)
{
    fprintf(stderr,
            "connfault shrink: trial %u/%u: %zu flow(s): %s%s%s%s; best so far %zu "
            "flow(s) (%.0f s)\n",
            st->trials, st->so->max_trials, tried, fails ? "fails" : "does not fail",
            fails ? "" : " (", fails ? "" : st->last_miss, fails ? "" : ")", best,
            (double)(cf_now_ms() - st->t0_ms) / 1000.0);
}

/* One pass over the chunks (or their complements) of `parts`: true when one failed (then it
 * is the best). */
static bool ddmin_pass(struct shrink_state *st, const struct replay_set *set, struct ddmin *d,
                       size_t parts, bool complement)
{
    for (size_t c = 0; c < parts && shrink_budget_left(st); c++) {
        size_t m = chunk(d, parts, c, complement);
        if (m == 0 || m == d->n)
            continue;
        st->trials++;
        bool fails = flows_fail(st, set, d->cand, m, 0);
        if (st->stop != 130)
            progress(st, m, fails ? m : d->n, fails);
        if (fails) {
            push_past(d);
            memcpy(d->keep, d->cand, m * sizeof(*d->keep));
            d->n = m;
            return true;
        }
    }
    return false;
}

static void ddmin(struct shrink_state *st, const struct replay_set *set, struct ddmin *d)
{
    size_t parts = 2;
    while (d->n >= 2 && shrink_budget_left(st)) {
        if (ddmin_pass(st, set, d, parts, false))
            parts = 2;
        else if (parts > 2 && ddmin_pass(st, set, d, parts, true))
            parts = parts - 1 > 2 ? parts - 1 : 2;
        else if (parts >= d->n)
            break;
        else
            parts = parts * 2 < d->n ? parts * 2 : d->n;
    }
}

/* The kept flows, one line each, as `connfault replay --dump` names them. */
static int write_flows(const struct shrink_state *st, const struct replay_set *set,
                       const struct ddmin *d, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "# written by connfault shrink: %zu of the %zu flows of %s fail %s in %u of %u "
            "runs, then in %u of %u (trials %u, runs %u, %.1f s, seed %llu)\n",
            d->n, set->nflows, set->name, st->check, st->so->confirm, st->so->confirm,
            st->final_runs, st->final_runs, st->trials, st->runs,
            (double)(cf_now_ms() - st->t0_ms) / 1000.0, (unsigned long long)st->opt->seed);
    for (size_t i = 0; i < d->n; i++) {
        const struct replay_flow *fl = &set->flows[d->keep[i]];
        fprintf(f,
                "flow %zu: client port %u, start %.6f s, %llu bytes sent, %zu segment(s), end %s\n",
                d->keep[i] + 1, fl->client_port, (double)fl->start_us / 1e6,
                (unsigned long long)fl->data_len, fl->nsegs, flow_end_name(fl->end));
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* minimal.pcap (a failing run of the kept flows, recorded) and flows.txt. 0 or 2. */
static int write_capture_outputs(struct shrink_state *st, const struct replay_set *set,
                                 const struct ddmin *d)
{
    char dir[4096], pcap[4200], list[4200];
    struct replay_set sub;
    struct scenario sc;
    if (st->so->out_dir)
        snprintf(dir, sizeof(dir), "%s", st->so->out_dir);
    else
        snprintf(dir, sizeof(dir), "connfault-shrink/%s-%llu", set->name,
                 (unsigned long long)st->opt->seed);
    snprintf(pcap, sizeof(pcap), "%s/minimal.pcap", dir);
    snprintf(list, sizeof(list), "%s/flows.txt", dir);
    if (shrink_mkdir_p(dir) < 0 || write_flows(st, set, d, list) < 0) {
        fprintf(stderr, "connfault shrink: %s: cannot write\n", list);
        return 2;
    }
    if (subset(set, d->keep, d->n, &sub) < 0)
        return 2;
    replay_scenario(&sc, &sub);
    int rc = shrink_record(st, &sc, dir, pcap);
    free(sub.flows);
    printf("connfault shrink: %s fails %s with %zu flow(s) (from %zu) after %u trial(s)\n  %s\n",
           set->name, st->check, d->n, set->nflows, st->trials, list);
    if (rc == 0)
        printf("  %s\n", pcap);
    return 0;
}

/* Confirm, ddmin, re-confirm, write. The exit status. */
static int shrink_flows(struct shrink_state *st, const struct replay_set *set, struct ddmin *d)
{
    fprintf(stderr, "connfault shrink: %s: %zu flow(s); confirming (%u run(s))\n", set->name,
            set->nflows, st->so->confirm);
    if (!flows_fail(st, set, d->keep, d->n, 0)) {
        if (st->stop)
            return st->stop;
        printf("connfault shrink: nothing to shrink: %s does not fail %s in %u of %u runs "
               "against this target\n",
               set->name, st->check[0] ? st->check : "any check", st->so->confirm, st->so->confirm);
        return 1;
    }
    fprintf(stderr, "connfault shrink: %s fails %s in %u of %u runs; shrinking\n", set->name,
            st->check, st->so->confirm, st->so->confirm);
    ddmin(st, set, d);
    if (st->stop)
        return st->stop;
    st->final_runs =
        st->so->confirm * 2 > SHRINK_FINAL_MIN ? st->so->confirm * 2 : SHRINK_FINAL_MIN;
    while (!flows_fail(st, set, d->keep, d->n, st->final_runs)) {
        if (st->stop)
            return st->stop;
        fprintf(stderr,
                "connfault shrink: re-confirming: %zu flow(s) did not fail %s in %u of %u runs; "
                "stepping back\n",
                d->n, st->check, st->final_runs, st->final_runs);
        if (pop_past(d))
            continue;
        printf("connfault shrink: nothing reliable to write: %zu flow(s) failed %s in %u of %u "
               "runs, but not in %u of %u more\n",
               d->n, st->check, st->so->confirm, st->so->confirm, st->final_runs, st->final_runs);
        return 1;
    }
    return write_capture_outputs(st, set, d);
}

int shrink_capture_main(const struct run_options *opt, const struct shrink_options *so,
                        const struct replay_set *set)
{
    char err[512];
    struct shrink_state st = {.opt = opt, .so = so, .t0_ms = cf_now_ms()};
    struct ddmin d = {.n = set->nflows};
    struct replay_set all;
    struct scenario sc;
    if (so->check)
        snprintf(st.check, sizeof(st.check), "%s", so->check);
    d.keep = calloc(set->nflows + 1, sizeof(*d.keep));
    d.cand = calloc(set->nflows + 1, sizeof(*d.cand));
    st.env = d.keep && d.cand ? run_env_new(opt, err, sizeof(err)) : NULL;
    int rc = 2;
    for (size_t i = 0; i < d.n && d.keep; i++)
        d.keep[i] = i;
    if (st.env && subset(set, d.keep, d.n, &all) == 0) {
        replay_scenario(&sc, &all);
        rc = shrink_prepare(st.env, &sc);
        free(all.flows);
        rc = rc ? rc : shrink_flows(&st, set, &d);
    } else if (!st.env && d.keep && d.cand)
        fprintf(stderr, "connfault shrink: %s\n", err);
    if (st.env)
        run_env_free(st.env);
    while (pop_past(&d))
        ;
    free(d.keep);
    free(d.cand);
    return rc;
}
