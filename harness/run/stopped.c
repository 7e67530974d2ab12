/* stopped: the entries of a run that stopped early (stopped.h says why they exist). */
#include "stopped.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "result.h"
#include "scenario.h"

/* k zeroed entries after the last one (what lies past nscenarios is never read, so the array
 * may as well be cut to fit). NULL: out of memory, nothing changed. */
static struct scenario_result *stopped_grow(struct run_report *rep, size_t k)
{
    struct scenario_result *more = realloc(rep->scenarios, (rep->nscenarios + k) * sizeof(*more));
    if (!more)
        return NULL;
    rep->scenarios = more;
    memset(more + rep->nscenarios, 0, k * sizeof(*more));
    return more + rep->nscenarios;
}

/* "; not run: a, b, c" after what out holds: as many names as fit, then " and N more". */
static void append_not_run(char *out, size_t cap, const struct scenario *list, int from, int n)
{
    size_t used = strlen(out);
    for (int i = from; i < n; i++) {
        if (used + strlen(list[i].name) + 40 >= cap) { /* room for " and N more" */
            snprintf(out + used, cap - used, " and %d more", n - i);
            return;
        }
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i == from ? "; not run: " : ", ",
                                 list[i].name);
    }
}

int stopped_setup_error(struct run_report *rep, const char *err, const struct scenario *list, int n,
                        int next)
{
    struct scenario_result *r = stopped_grow(rep, 1);
    if (!r)
        return -1;
    snprintf(r->name, sizeof(r->name), "%s", STOPPED_SETUP_NAME);
    r->verdict = VERDICT_ERROR;
    if (next >= 0 && next < n)
        snprintf(r->reason, sizeof(r->reason), "set-up error during %s: %s", list[next].name, err);
    else
        snprintf(r->reason, sizeof(r->reason), "set-up error: %s", err);
    append_not_run(r->reason, sizeof(r->reason), list, next < 0 ? 0 : next, n);
    rep->nscenarios++;
    return 0;
}

/* The scenario the interrupt cut short: no verdict, what its clients did so far kept. */
static void mark_interrupted(struct scenario_result *r)
{
    r->verdict = VERDICT_ERROR;
    r->nchecks = 0; /* nothing was judged: no check may look made */
    snprintf(r->reason, sizeof(r->reason),
             "interrupted (SIGINT or SIGTERM) %.1fs into the scenario, before its verdict%s",
             r->duration_s, r->ngroups ? ": what its clients did so far is below" : "");
}

int stopped_interrupted(struct run_report *rep, const struct scenario *list, int n, int next)
{
    const char *during = next >= 0 && next < n ? list[next].name : "the pre-flight";
    int first_not_run = next < 0 ? 0 : next + 1;
    if (next < 0 || next >= n) {
        struct scenario_result *r = stopped_grow(rep, 1);
        if (!r)
            return -1;
        snprintf(r->name, sizeof(r->name), "%s", STOPPED_SETUP_NAME);
        r->verdict = VERDICT_ERROR;
        snprintf(r->reason, sizeof(r->reason), "interrupted (SIGINT or SIGTERM) during %s", during);
        rep->nscenarios++;
    } else {
        mark_interrupted(&rep->scenarios[rep->nscenarios++]);
    }
    if (first_not_run >= n)
        return 0;
    struct scenario_result *r = stopped_grow(rep, (size_t)(n - first_not_run));
    if (!r)
        return -1;
    for (int i = first_not_run; i < n; i++, r++) {
        snprintf(r->name, sizeof(r->name), "%s", list[i].name);
        r->verdict = VERDICT_SKIP;
        snprintf(r->reason, sizeof(r->reason), "not run: the run was interrupted during %s",
                 during);
    }
    rep->nscenarios += (size_t)(n - first_not_run);
    return 0;
}
