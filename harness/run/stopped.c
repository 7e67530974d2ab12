/* stopped: the entries of a run that stopped early (stopped.h says why they exist). */
#include "stopped.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "result.h"
#include "scenario.h"

/* Room for the entries of a run of n scenarios that stopped with rep->nscenarios taken: its
 * own entry, then one for each scenario from list[from] on. The array holds n (the run's) or
 * none yet (stopped before the first); what is new is zeroed. -1: out of memory, nothing
 * changed. */
static int stopped_room(struct run_report *rep, int n, int from)
{
    size_t have = rep->scenarios ? (size_t)n : 0;
    size_t need = rep->nscenarios + 1 + (size_t)(n - from);
    size_t want = need > (size_t)n ? need : (size_t)n;
    if (want <= have)
        return 0;
    struct scenario_result *more = realloc(rep->scenarios, want * sizeof(*more));
    if (!more)
        return -1;
    rep->scenarios = more;
    memset(more + have, 0, (want - have) * sizeof(*more));
    return 0;
}

static enum stopped_fate fate_of(const enum stopped_fate *fate, int i)
{
    return fate ? fate[i] : STOPPED_NOT_RUN;
}

/* "; not run: a, b, c" after what out holds: as many names as fit, then " and N more". */
static void append_not_run(char *out, size_t cap, const struct scenario *list, int from, int n,
                           const enum stopped_fate *fate)
{
    size_t used = strlen(out);
    int left = 0, listed = 0;
    for (int i = from; i < n; i++)
        left += fate_of(fate, i) == STOPPED_NOT_RUN;
    for (int i = from; i < n; i++) {
        if (fate_of(fate, i) != STOPPED_NOT_RUN)
            continue;
        if (used + strlen(list[i].name) + 40 >= cap) { /* room for " and N more" */
            snprintf(out + used, cap - used, " and %d more", left - listed);
            return;
        }
        used += (size_t)snprintf(out + used, cap - used, "%s%s",
                                 listed ? ", " : "; not run: ", list[i].name);
        listed++;
    }
}

/* A scenario stopped before its verdict: no verdict, what its clients did so far kept. */
static void mark_cut(struct scenario_result *r, const char *why)
{
    r->verdict = VERDICT_ERROR;
    r->nchecks = 0; /* nothing was judged: no check may look made */
    snprintf(r->reason, sizeof(r->reason), "%s %.1fs into the scenario, before its verdict%s", why,
             r->duration_s, r->ngroups ? ": what its clients did so far is below" : "");
}

/* The entries of the scenarios after the one the run stopped in (list[from] on), each moved
 * to rep->scenarios[rep->nscenarios++]: a finished one as it is, a cut one in error (why_cut),
 * one not run a skip (not_run_reason) or, with not_run_reason NULL, no entry at all. (An
 * entry moves down, over what was taken already, or up only when it was not run: before the
 * first scenario, the set-up entry comes first and nothing has a result yet.) */
static void entries_after(struct run_report *rep, const struct scenario *list, int n, int from,
                          const enum stopped_fate *fate, const char *why_cut,
                          const char *not_run_reason)
{
    for (int i = from; i < n; i++) {
        enum stopped_fate f = fate_of(fate, i);
        if (f == STOPPED_NOT_RUN && !not_run_reason)
            continue;
        struct scenario_result *r = &rep->scenarios[rep->nscenarios++];
        if (r != &rep->scenarios[i])
            *r = rep->scenarios[i]; /* (its strings move with it) */
        if (f == STOPPED_CUT) {
            mark_cut(r, why_cut);
        } else if (f == STOPPED_NOT_RUN) {
            memset(r, 0, sizeof(*r));
            snprintf(r->name, sizeof(r->name), "%s", list[i].name);
            r->verdict = VERDICT_SKIP;
            snprintf(r->reason, sizeof(r->reason), "%s", not_run_reason);
        }
    }
}

int stopped_setup_error(struct run_report *rep, const char *err, const struct scenario *list, int n,
                        int next, const enum stopped_fate *fate)
{
    if (stopped_room(rep, n, next < 0 ? n : next + 1) < 0)
        return -1;
    struct scenario_result *r = &rep->scenarios[rep->nscenarios];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", STOPPED_SETUP_NAME);
    r->verdict = VERDICT_ERROR;
    if (next >= 0 && next < n)
        snprintf(r->reason, sizeof(r->reason), "set-up error during %s: %s", list[next].name, err);
    else
        snprintf(r->reason, sizeof(r->reason), "set-up error: %s", err);
    append_not_run(r->reason, sizeof(r->reason), list, next < 0 ? 0 : next, n, fate);
    rep->nscenarios++;
    char why[200];
    if (next >= 0 && next < n) {
        snprintf(why, sizeof(why), "stopped by the set-up error in %s", list[next].name);
        entries_after(rep, list, n, next + 1, fate, why, NULL);
    }
    return 0;
}

int stopped_interrupted(struct run_report *rep, const struct scenario *list, int n, int next,
                        const enum stopped_fate *fate)
{
    const char *during = next >= 0 && next < n ? list[next].name : "the pre-flight";
    if (stopped_room(rep, n, next < 0 ? 0 : next + 1) < 0)
        return -1;
    if (next < 0 || next >= n) {
        struct scenario_result *r = &rep->scenarios[rep->nscenarios++];
        memset(r, 0, sizeof(*r));
        snprintf(r->name, sizeof(r->name), "%s", STOPPED_SETUP_NAME);
        r->verdict = VERDICT_ERROR;
        snprintf(r->reason, sizeof(r->reason), "interrupted (SIGINT or SIGTERM) during %s", during);
    } else {
        mark_cut(&rep->scenarios[rep->nscenarios++], "interrupted (SIGINT or SIGTERM)");
    }
    char not_run[200];
    /* one at a time, the interrupt came during one scenario; with --jobs, several ran */
    snprintf(not_run, sizeof(not_run), "not run: the run was interrupted %s%s",
             fate ? "before it started" : "during ", fate ? "" : during);
    entries_after(rep, list, n, next < 0 ? 0 : next + 1, fate, "interrupted (SIGINT or SIGTERM)",
                  not_run);
    return 0;
}
