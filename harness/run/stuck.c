/* stuck: the diagnoses of a stuck target, taken at the moment that shows each failure (see
 * phases.h). A hang is diagnosed at its first failed probe, not at judgement: by then a
 * server may have moved on (or recovered), and a diagnosis made for an earlier CPU blip says
 * nothing of a hang that began later. */
#include "phases.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *stuck_phase(const struct scenario_run *r)
{
    return r->s.settle_start_ms ? "while settling" : "during the faults";
}

/* A fresh diagnosis into *d (the old one replaced); moment says when and why, for the report. */
static bool stuck_diagnose(struct scenario_run *r, const char *moment, struct diagnosis *d)
{
    if (!target_alive(r->t))
        return false;
    /* A probe in flight would wait out the diagnosis (up to its budget) and be counted as
     * failed for the harness's pause: let it end first. */
    prober_drain(&r->p, r->e);
    struct diagnose_options dopt = {.port = ntohs(r->t->addr.sin_port),
                                    .sample_syscalls = true, /* a hang may be a spin */
                                    .budget_ms = DIAGNOSE_DEFAULT_BUDGET_MS,
                                    .moment = moment};
    struct diagnosis fresh;
    if (diagnose_target(r->t->pid, &dopt, &fresh) != 0)
        return false;
    diagnosis_free(d);
    *d = fresh;
    return true;
}

static double stuck_since_faults_s(const struct scenario_run *r)
{
    uint64_t now = engine_now_ms(), start = r->p.faults_start_ms;
    return start && now > start ? (double)(now - start) / 1000.0 : 0.0;
}

void stuck_watch(struct scenario_run *r)
{
    struct stuck_report *st = &r->stuck;
    const struct scenario_samples *s = &r->s;
    if (s->probes == st->seen_probes)
        return;
    unsigned answered = s->probes_ok - st->seen_ok, made = s->probes - st->seen_probes;
    st->seen_probes = s->probes;
    st->seen_ok = s->probes_ok;
    bool last_failed = answered < made; /* one probe at a time: at most one recorded per tick */
    bool starts = last_failed && !st->in_hang;
    st->in_hang = last_failed;
    if (!starts || st->hangs_diagnosed >= STUCK_MAX_HANG_DIAGNOSES)
        return;
    char moment[160];
    snprintf(moment, sizeof(moment),
             "%+.1fs after the faults began (%s), when probe %u failed after %u answered",
             stuck_since_faults_s(r), stuck_phase(r), s->probes, s->probes_ok);
    if (stuck_diagnose(r, moment, &st->hang)) {
        st->hang_made = true;
        st->hangs_diagnosed++;
    }
}

void stuck_forget_probes(struct scenario_run *r)
{
    r->stuck.seen_probes = r->s.probes;
    r->stuck.seen_ok = r->s.probes_ok;
    r->stuck.in_hang = false;
}

/* Every CPU window so far over the limit, and enough of them that only the last is left:
 * `cpu` fails only if that one is hot too, so a spin that fails it is still on now, and a
 * flush that cooled sooner costs no diagnosis. */
static bool stuck_spinning(const struct scenario_run *r)
{
    const struct scenario_samples *s = &r->s;
    unsigned want = CHECKS_CPU_WINDOWS > 1 ? CHECKS_CPU_WINDOWS - 1 : 1;
    if (s->cpu_unknown || s->cpu_nwindows < want)
        return false;
    for (unsigned i = 0; i < s->cpu_nwindows; i++)
        if (s->cpu_windows_busy_pct[i] < r->env->limits.cpu_max_pct)
            return false;
    return true;
}

void stuck_spin(struct scenario_run *r)
{
    struct stuck_report *st = &r->stuck;
    if (st->spin_made || st->spin_tried || !stuck_spinning(r))
        return;
    st->spin_tried = true;
    const struct scenario_samples *s = &r->s;
    char moment[160];
    snprintf(moment, sizeof(moment),
             "%+.1fs after the faults began (%s), while CPU was %.0f%% of a core in %u windows "
             "in a row",
             stuck_since_faults_s(r), stuck_phase(r), s->cpu_windows_busy_pct[s->cpu_nwindows - 1],
             s->cpu_nwindows);
    r->stuck.spin_made = stuck_diagnose(r, moment, &r->stuck.spin);
}

static bool stuck_failed(const struct scenario_result *res, const char *name)
{
    for (size_t i = 0; i < res->nchecks; i++)
        if (strcmp(res->checks[i].name, name) == 0 && res->checks[i].status == CHECK_FAILED)
            return true;
    return false;
}

/* Hand d to the result (it owns the strings from here on); a second one is added to the
 * text only (the JSON detail and the summary are the first one's). */
static void stuck_give(struct scenario_result *res, struct diagnosis *d)
{
    if (res->diagnosis == NULL) {
        res->diagnosis = d->text;
        res->diagnosis_summary = d->summary;
        res->diagnosis_json = d->json;
        d->text = d->summary = d->json = NULL;
        return;
    }
    char *both = NULL;
    if (asprintf(&both, "%s%s", res->diagnosis, d->text) < 0)
        return;
    free(res->diagnosis);
    res->diagnosis = both;
    diagnosis_free(d);
}

void stuck_attach(struct scenario_run *r)
{
    struct scenario_result *res = r->res;
    struct stuck_report *st = &r->stuck;
    bool accepting = stuck_failed(res, "accepting"), cpu = stuck_failed(res, "cpu");
    if (!accepting && !cpu)
        return;
    stuck_watch(r); /* the final probe may have been the first to fail */
    if (accepting && !st->hang_made)
        st->hang_made =
            stuck_diagnose(r, "at judgement (no hang was diagnosed in time)", &st->hang);
    if (cpu && !st->spin_made && !(accepting && st->hang_made))
        st->spin_made =
            stuck_diagnose(r, "at judgement (no spin was diagnosed in time)", &st->spin);
    if (accepting && st->hang_made)
        stuck_give(res, &st->hang);
    if (cpu && st->spin_made)
        stuck_give(res, &st->spin);
    size_t used = strlen(res->reason);
    if (res->diagnosis_summary && used + 4 < sizeof(res->reason))
        snprintf(res->reason + used, sizeof(res->reason) - used, "; %s", res->diagnosis_summary);
}

void stuck_free(struct stuck_report *stuck)
{
    diagnosis_free(&stuck->hang);
    diagnosis_free(&stuck->spin);
}
