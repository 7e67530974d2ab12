/* jobs: scenarios in parallel (--jobs N), so that scenarios which wait out a long grace
 * (a server with 60 s timeouts) overlap instead of adding up.
 *
 * Each scenario runs in a process forked for it, which calls the caller's run_one (run.c:
 * run_scenario_once(), as the sequential run does) and sends its result back through a pipe.
 * This file knows nothing of what a scenario is: run.c says what each job does. A process per
 * scenario, not a thread: the engine, the capture, the tracer and the target's child handling each
 * assume one scenario per process, and a job that dies takes nothing of the others with it.
 *
 * Job slot k (0 .. N-1, reused as jobs end) keeps the jobs apart where they would meet
 * (run_env_enter_job):
 * its fault clients come from 127.k.0.2 and its groups' hosts are moved to 127.k.x.x (a cable
 * pull of one job never darkens another's clients); its drops are in an nftables table of its
 * own (sandbox_fork_job: clearing them never clears another's); its target gets a port of its
 * own (a free one per scenario, or --port + k). Probes of every job come from 127.0.0.1, which
 * is never dropped. One job at a time takes its baseline and runs its fault clients
 * (run_env_gate): only the waits after the faults overlap. Each job's process dies with the
 * harness (PR_SET_PDEATHSIG), and its target with it. */
#ifndef CONNFAULT_JOBS_H
#define CONNFAULT_JOBS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#define JOBS_MAX 64

struct scenario_result;

/* One item's outcome. */
struct job_outcome {
    bool done;       /* set once it is in (or the job is lost) */
    int rc;          /* what run_one returned: 0, or a negative status that ends the run */
    bool lost;       /* the job's process ended without its whole result (crashed, killed) */
    int wait_status; /* with lost: how it ended (waitpid's status) */
    char err[512];   /* with rc < 0: why */
};

struct jobs_plan {
    int n;          /* items 0 .. n-1 */
    unsigned njobs; /* at most this many at a time (up to JOBS_MAX) */
    volatile sig_atomic_t *interrupted;
    /* In the job's own process: run item index as job slot, filling *res (its strings owned by
     * it: they are copied back). 0, or a negative status (with err) that ends the run. */
    int (*run_one)(void *ctx, int index, unsigned slot, struct scenario_result *res, char *err,
                   size_t errlen);
    /* In the parent, after a job's process was reaped (and before done). */
    void (*reaped)(void *ctx, int pid);
    /* In the parent, once per item whose outcome is in, in the order they end; results[index]
     * then owns its strings. */
    void (*done)(void *ctx, int index);
    void *ctx;
};

/* Run the plan's items; results[i] and outcomes[i] (zeroed by the caller) receive item i's.
 * After an outcome with rc < 0, a lost job or an interrupt no new job starts, and those running
 * are told to stop (SIGTERM: they end as interrupted, tidying up). Returns when every job's
 * process has been reaped. */
void jobs_run(const struct jobs_plan *plan, struct scenario_result *results,
              struct job_outcome *outcomes);

#endif
