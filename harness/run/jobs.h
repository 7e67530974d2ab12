/* jobs: scenarios in parallel (--jobs N), so that scenarios which wait out a long grace
 * (a server with 60 s timeouts) overlap instead of adding up.
 *
 * Each scenario runs in a process forked for it, which calls run_scenario_once() as the
 * sequential run does and sends its result back through a pipe. A process per scenario, not a
 * thread: the engine, the capture, the tracer and the target's child handling each assume
 * one scenario per process, and a job that dies takes nothing of the others with it.
 *
 * Job slot k (0 .. N-1, reused as jobs end) keeps the jobs apart where they would meet:
 * its fault clients come from 127.k.0.2 and its groups' hosts are moved to 127.k.x.x (a cable
 * pull of one job never darkens another's clients); its drops are in an nftables table of its
 * own (sandbox_fork_job: clearing them never clears another's); its target gets a port of its
 * own (a free one per scenario, or --port + k). Probes of every job come from 127.0.0.1, which
 * is never dropped. Each job's process dies with the harness (PR_SET_PDEATHSIG), and its
 * target with it. */
#ifndef CONNFAULT_JOBS_H
#define CONNFAULT_JOBS_H

#include <stdbool.h>
#include <stddef.h>

struct run_env;
struct scenario;
struct scenario_result;

/* One scenario's outcome, as run_scenario_once() gave it in the job's process. */
struct job_outcome {
    int rc;        /* enum run_status; RUN_SETUP_ERROR when the job died without a result */
    char err[512]; /* with RUN_SETUP_ERROR: why */
    bool done;
};

/* Called in the parent once per scenario whose outcome is in (outcomes[index].done), in the
 * order they end; results[index] then owns its diagnosis strings. */
typedef void jobs_done_fn(void *arg, int index);

/* Run list[0..n) at most njobs at a time; results[i] and outcomes[i] (zeroed by the caller)
 * receive scenario i's. After a set-up error or an interrupt no new job starts, and those
 * running are told to stop (SIGTERM: they end as interrupted, tidying up). Returns when every
 * job's process has been reaped. */
void jobs_run(struct run_env *env, const struct scenario *list, int n, unsigned njobs,
              struct scenario_result *results, struct job_outcome *outcomes, jobs_done_fn *done,
              void *arg);

#endif
