/* run: `connfault run`: for each scenario, start (or attach to) the target, take a
 * baseline, throw the scenario's clients at it while probing, let it settle, judge it.
 * Files: run.c the whole run (loop, totals, reports), env.c what the scenarios share,
 * setup.c and phases.c one scenario's phases (phases.h), prober.c, measure.c, checks.c. */
#ifndef CONNFAULT_RUN_H
#define CONNFAULT_RUN_H

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct run_options {
    /* target */
    const char *target_cmd;       /* NULL: the reference server */
    pid_t target_pid;             /* > 0: attach */
    const char *bug;              /* reference server only: --bug NAME */
    bool no_sandbox;              /* never enter a network namespace: silent drops skip */
    const char *reference_server; /* path of connfault-server */
    struct sockaddr_in addr;      /* host and port (port 0: pick one per scenario) */
    /* --jobs N: scenarios run N at a time, each in a process of its own with its own target,
     * port, fault client hosts and drops (jobs.h); 0: the default (RUN_DEFAULT_JOBS; 1 with
     * target_pid or a port given: one process, or a server configured for that port) */
    unsigned jobs;
    uint64_t ready_timeout_ms;
    /* probes and requests */
    const char *probe_path, *large_path, *huge_path;    /* huge: at least 16 MiB */
    const char *probe_raw, *probe_expect, *request_raw; /* NULL, or bytes after escapes */
    size_t probe_raw_len, probe_expect_len, request_raw_len;
    uint64_t probe_timeout_ms, probe_interval_ms;
    /* judging */
    uint64_t grace_ms, cpu_window_ms;
    double cpu_max_pct;
    uint64_t memory_slack_kb;
    /* output */
    uint64_t seed;
    /* --shard I/N: run only shard I (1-based) of N of the scenarios (catalogue.h says which);
     * shard_count 0: all of them */
    unsigned shard_index, shard_count;
    const char *junit_path, *json_path, *tap_path;
    int verbosity; /* 0 quiet, 1 normal, 2 verbose */
    bool progress; /* a live status line on stderr (a terminal) */
    /* --capture DIR: every scenario's traffic in DIR/SCENARIO-TARGET-SEED.pcap. Without it, and
     * with capture_failures, only failing scenarios' captures are kept, in ./connfault-captures/ */
    const char *capture_dir;
    bool capture_failures;
    bool color;
    volatile sig_atomic_t *interrupted; /* set by SIGINT/SIGTERM */
};

/* --jobs when not given: measured on 2 cores (README, bench/suite-time): the suite's
 * verdicts are the same as one at a time, and scenarios that wait out a grace overlap. */
#define RUN_DEFAULT_JOBS 4
#define RUN_MAX_JOBS     64 /* job k's client hosts are 127.k.x.x (k < 256); JOBS_MAX */

/* The defaults of `connfault run` (documented in its --help). */
void run_options_defaults(struct run_options *o, volatile sig_atomic_t *interrupted);

/* Run the named scenarios (built-in names or file paths; none = all built-in).
 * Returns the exit status: 0 all passed or skipped, 1 a failure, 2 usage/set-up error or,
 * with no failure, a scenario in error (not exercised), 130 interrupted. Messages go to stderr,
 * results to stdout. */
int run_main(const struct run_options *opt, char **names, int nnames);

struct run_report;
/* The same, without printing totals or writing report files: the results are left in *rep
 * (free with run_report_free). For self-tests that inspect verdicts and numbers. */
int run_collect(const struct run_options *opt, char **names, int nnames, struct run_report *rep);

struct replay_set;
/* `connfault replay`: run_main() for one scenario whose fault clients are the capture's flows
 * (set->speed applies). */
int run_replay(const struct run_options *opt, const struct replay_set *set);

struct scenario;
/* The scenario run_replay() runs for set (replay.c): its fault clients are set's flows (not
 * copied: set must outlive it; nothing to free), its fault phase their span at set->speed
 * plus the time the last ones take to end, the sandbox when a flow ends silently. */
void run_replay_scenario(struct scenario *sc, const struct replay_set *set);

/* `connfault list`: the built-in scenarios of opt's shard (all without one), as lines or,
 * with json, a JSON array whose expected durations count opt's grace. Returns an exit status. */
int run_list(const struct run_options *opt, bool json);

/* ---- one scenario, as a library call ----------------------------------------------------
 * What run_main() does for each scenario, for callers that run scenarios of their own making
 * (e.g. over and over, each a little smaller): no exiting, no global state, and no printing
 * (the live status goes to a callback) except the capture's notes on stderr when the options
 * ask for captures (capture_dir, capture_failures) and one cannot be made or kept.
 *
 *   env = run_env_new(&opt, err, len);          once: target command or attached pid, temp dir
 *   run_env_sandbox(env);                       once, before the first target starts, if any
 *                                               scenario needs silent drops
 *   run_env_preflight(env, list, n, ...)        once: the paths the scenarios use are there
 *   run_scenario_once(env, &sc, &res, err, len) per scenario
 *   run_env_free(env);
 */
struct run_env;
struct scenario;
struct scenario_result;
struct scenario_vars;

/* NULL with a message in err (attaching to --target-pid failed, no temp dir). opt must
 * outlive the env. */
struct run_env *run_env_new(const struct run_options *opt, char *err, size_t errlen);

/* Enter the network sandbox silent drops need (once; later calls repeat the answer).
 * NULL when ready, else why scenarios that need it will be skipped. */
const char *run_env_sandbox(struct run_env *env);

/* The live status of the scenario running, a few times a second; NULL when its measured
 * phases are over (a status line can be cleared then). */
struct run_progress {
    const char *scenario, *phase; /* phase: "faults", "settling" */
    uint64_t clients_started, clients_done, clients_total;
    unsigned probes, probes_ok;
};
typedef void run_progress_fn(void *arg, const struct run_progress *p);
void run_env_set_progress(struct run_env *env, run_progress_fn *fn, void *arg);

/* Before the first scenario (after run_env_sandbox, if any): one GET from the fault clients'
 * host for each of --probe-path, --large-path, --huge-path the scenarios list[0..n) use, its
 * status and size checked (preflight.c). 0 (checked, or nothing to check: --probe-raw and
 * --request-raw targets are not HTTP), RUN_SETUP_ERROR (err names the flag, the answer and
 * the fix, or why a started target did not come up) or RUN_INTERRUPTED. Scenarios skipped
 * for want of the sandbox ask for nothing. note (or NULL) gets what was checked, or why
 * nothing was. */
int run_env_preflight(struct run_env *env, const struct scenario *list, int n, FILE *note,
                      char *err, size_t errlen);

/* What the options make of a scenario file's placeholders (for scenario_load). */
void run_env_scenario_vars(const struct run_env *env, struct scenario_vars *vars);

void run_env_free(struct run_env *env);

enum run_status {
    RUN_DONE = 0,         /* *res holds the verdict (pass, fail, error or skip with its reason) */
    RUN_SETUP_ERROR = -1, /* err says why: the target did not start or answer, no engine... */
    RUN_INTERRUPTED = -2, /* *opt->interrupted was set; *res is incomplete */
};

/* Run one scenario against the env's target (a fresh one when the harness starts it) and
 * fill *res, which then owns its diagnosis strings (see run_result_free, or hand it to a
 * struct run_report). Returns an enum run_status. */
int run_scenario_once(struct run_env *env, const struct scenario *sc, struct scenario_result *res,
                      char *err, size_t errlen);

/* Free what one result owns (not res itself). */
void run_result_free(struct scenario_result *res);

#endif
