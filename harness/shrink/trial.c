/* trial: one candidate, run K times against a fresh target each time; it counts as failing
 * only when every run fails the same check and some group reached its fault (a trial whose
 * fault did not happen "does not fail", whatever a check said). */
#include <stdlib.h>
#include <string.h>

#include "shrink_internal.h"

void shrink_pick_check(const struct scenario_result *res, char *check, size_t len)
{
    check[0] = '\0';
    for (size_t i = 0; i < res->nchecks; i++) {
        const struct check_result *c = &res->checks[i];
        if (c->status != CHECK_FAILED)
            continue;
        if (check[0] == '\0' || strcmp(c->name, "alive") == 0)
            snprintf(check, len, "%s", c->name);
    }
}

static bool check_failed(const struct scenario_result *res, const char *check)
{
    for (size_t i = 0; i < res->nchecks; i++)
        if (strcmp(res->checks[i].name, check) == 0)
            return res->checks[i].status == CHECK_FAILED;
    return false;
}

/* Some group reached its fault. Not every group: a server that dies of one group's fault
 * denies the others theirs (that run still fails, and dropping them is a later candidate). */
static bool faults_happened(const struct scenario_result *res)
{
    for (size_t i = 0; i < res->ngroups; i++)
        if (res->groups[i].reached > 0)
            return true;
    return res->ngroups == 0;
}

/* One run: 1 fails as wanted, 0 does not, -1 stop (st->stop set). */
static int one_run(struct shrink_state *st, const struct scenario *sc, struct scenario_result *res)
{
    char err[512];
    memset(res, 0, sizeof(*res));
    int rc = run_scenario_once(st->env, sc, res, err, sizeof(err));
    st->runs++;
    if (rc == RUN_SETUP_ERROR) {
        fprintf(stderr, "connfault shrink: %s: %s\n", sc->name, err);
        st->stop = 2;
    } else if (rc == RUN_INTERRUPTED) {
        st->stop = 130;
    }
    if (rc != RUN_DONE) {
        run_result_free(res);
        return -1;
    }
    if (st->check[0] == '\0')
        shrink_pick_check(res, st->check, sizeof(st->check));
    int fails = res->verdict == VERDICT_FAIL && st->check[0] && check_failed(res, st->check) &&
                faults_happened(res);
    if (fails)
        snprintf(st->last_reason, sizeof(st->last_reason), "%s", res->reason);
    else
        snprintf(st->last_miss, sizeof(st->last_miss), "run %u: %s: %.90s", st->runs,
                 verdict_name(res->verdict), res->reason);
    snprintf(st->last_capture, sizeof(st->last_capture), "%s", res->capture_path);
    run_result_free(res);
    return fails;
}

bool shrink_trial(struct shrink_state *st, const struct scenario *sc)
{
    return shrink_trial_runs(st, sc, st->so->confirm);
}

bool shrink_trial_runs(struct shrink_state *st, const struct scenario *sc, unsigned runs)
{
    struct scenario_result *res = malloc(sizeof(*res));
    if (!res) {
        st->stop = 2;
        return false;
    }
    int fails = 1;
    for (unsigned k = 0; k < runs && fails == 1; k++)
        fails = one_run(st, sc, res);
    free(res);
    return fails == 1;
}
