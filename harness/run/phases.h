/* phases: the life of one scenario against one target, one function per phase:
 *
 *   setup    sandbox rules cleared, target started (or checked), engine and capture ready
 *   baseline first probe (must pass: else a set-up error), fds and RSS before any fault
 *   faults   clients start until `duration`, then those started finish their script (up to
 *            PHASE_FINISH_CAP_MS; the rest are closed, not exercised); probes every
 *            probe_interval; fds sampled; cable pulled if asked; release = end: cpu measured
 *            while held, then the clients let go
 *   settle   probes go on; the CPU window; wait up to the grace for fds and sockets to come
 *            back; then the final readings and the final probe
 *   judge    checks.c's verdict, a diagnosis of a stuck target, the clients' totals, each
 *            group's evidence (evidence.c): `error` when a pass would not have looked
 *   teardown capture kept or dropped, held clients released, target stopped
 *
 * The harness never closes held, trickling or silent clients itself before judging (unless
 * the scenario says release = end): the server has to release them on its own, within the
 * grace. */
#ifndef CONNFAULT_PHASES_H
#define CONNFAULT_PHASES_H

#include <stdbool.h>
#include <stddef.h>

#include "diagnose.h"
#include "engine.h"
#include "exhaustion.h"
#include "prober.h"
#include "run_internal.h"

/* After `duration`, how long clients already started may take to finish their script (a
 * connect behind a full accept queue, a response still arriving) before they are closed and
 * counted not exercised. Above the engine's connect timeout, so a connect can end on its own. */
#define PHASE_FINISH_CAP_MS 6000

enum phase_status {
    PHASE_GO_ON,       /* on to the next phase */
    PHASE_JUDGE,       /* straight to judging (the target is already gone) */
    PHASE_SKIPPED,     /* res says why; nothing to tear down */
    PHASE_SETUP_ERROR, /* err says why */
    PHASE_INTERRUPTED, /* *opt->interrupted was set */
};

/* Where is it stuck? Two diagnoses, each taken at the moment that shows its failure, while
 * the fault is still live (stuck.c): */
struct stuck_report {
    struct diagnosis hang; /* for `accepting`: at the first failed probe of the newest hang */
    struct diagnosis spin; /* for `cpu`: while a CPU window was over the limit */
    bool hang_made, spin_made, spin_tried;
    unsigned hangs_diagnosed; /* bounded by STUCK_MAX_HANG_DIAGNOSES */
    bool in_hang;             /* the last probe recorded failed: the same hang goes on */
    unsigned seen_probes, seen_ok;
};

struct scenario_run {
    struct run_env *env;
    const struct scenario *sc;
    struct scenario_result *res;
    char *err;
    size_t errlen;
    struct target owned, *t; /* t: &owned, or the env's attached target */
    struct engine *e;
    struct capture *cap;
    char capture_path[sizeof(((struct scenario_result *)0)->capture_path)];
    struct scenario_samples s;
    struct prober p;
    struct stuck_report stuck;
    struct exhaust_track exhaust; /* a scenario with rlimit_nofile: sampled in the fault phase */
    uint64_t t0;
};

/* setup.c */
enum phase_status phase_setup(struct scenario_run *r);
void phase_teardown(struct scenario_run *r);

/* phases.c */
enum phase_status phase_baseline(struct scenario_run *r);
void phase_faults(struct scenario_run *r);
enum phase_status phase_settle(struct scenario_run *r);
void phase_judge(struct scenario_run *r);

/* evidence.c: each client group's evidence into the result (never-reading clients peek at
 * what waits for them first) and the `responses` check of groups with `expect`
 * (check_responses.c); then `error` instead of a pass when fewer than half of a
 * group's clients reached their fault, with the cause and the fix in the reason. */
void evidence_collect(struct scenario_run *r);
void evidence_judge(struct scenario_run *r);

/* stuck.c: the diagnoses of a stuck target. A diagnosis stops the loop for up to its budget
 * (DIAGNOSE_DEFAULT_BUDGET_MS, 3 s), so there are at most STUCK_MAX_HANG_DIAGNOSES for hangs
 * plus one for a spin per scenario; none on a scenario whose probes all answer and whose CPU
 * cools before the last window.
 *
 * stuck_watch, after every prober_tick: a probe that failed after one that answered (or the
 * first probe of all) starts a hang: diagnose it now, while the target is stuck, replacing the
 * diagnosis of an earlier hang that recovered (the newest hang is the one still unexplained).
 * stuck_spin, after every CPU window: when all but the last window were over the limit (only
 * a spin that stays on until the last fails `cpu`), diagnose the spin, once.
 * stuck_attach, when judging: the diagnosis that belongs to each failing check goes to the
 * result (accepting: the hang's; cpu: the spin's; both when both failed), taken now if none
 * was taken in time (the final probe was the first to fail). */
#define STUCK_MAX_HANG_DIAGNOSES 3
void stuck_watch(struct scenario_run *r);
/* The probes made so far are not a hang (release = end: those while the fault clients held
 * every fd); stuck_watch looks only at those after. */
void stuck_forget_probes(struct scenario_run *r);
void stuck_spin(struct scenario_run *r);
void stuck_attach(struct scenario_run *r);
void stuck_free(struct stuck_report *stuck);

/* The live status line, if the env has a listener; phase NULL: the phases are over. */
void phase_progress(struct scenario_run *r, const char *phase);

#endif
