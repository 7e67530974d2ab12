/* run: a whole run: load the scenarios, run each (phases.c), print each verdict as it comes,
 * then the totals and the report files. */
#include "run.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "catalogue.h"
#include "cleanup.h"
#include "engine.h"
#include "jobs.h"
#include "pcap_flows.h"
#include "report.h"
#include "run_internal.h"
#include "scenario.h"
#include "stopped.h"

/* A replay's fault phase lasts the capture's span (at the replay speed), at most this long, */
#define REPLAY_MAX_SPAN_MS 3600000u
/* and then this long for the last flows to end (they wait for the server's bytes: up to 2 s
 * past each flow's end). */
#define REPLAY_END_SLACK_MS 5000u

void run_options_defaults(struct run_options *o, volatile sig_atomic_t *interrupted)
{
    memset(o, 0, sizeof(*o));
    o->addr.sin_family = AF_INET;
    o->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    o->probe_path = "/";
    o->large_path = "/bytes/1048576";
    o->huge_path = "/bytes/16777216";
    o->ready_timeout_ms = 10000;
    o->probe_timeout_ms = 2000;
    o->probe_interval_ms = 250;
    /* Real servers' timescales: nginx and most others time idle and stalled clients out
     * after 60 s. The wait ends as soon as fds and sockets are back, so a server with short
     * timeouts is not slowed down by it. */
    o->grace_ms = 75000;
    o->cpu_window_ms = 1000;
    o->cpu_max_pct = 20;
    o->memory_slack_kb = 32 * 1024;
    o->verbosity = 1;
    o->interrupted = interrupted;
}

void run_result_free(struct scenario_result *res)
{
    free(res->diagnosis);
    free(res->diagnosis_summary);
    free(res->diagnosis_json);
    res->diagnosis = res->diagnosis_summary = res->diagnosis_json = NULL;
}

/* The live status line on stderr (a terminal). */
static void print_progress(void *arg, const struct run_progress *p)
{
    (void)arg;
    if (!p)
        fputs("\r\033[K", stderr);
    else
        fprintf(stderr, "\r\033[K  %s: %s  clients %llu/%llu started, %llu done  probes %u/%u ok",
                p->scenario, p->phase, (unsigned long long)p->clients_started,
                (unsigned long long)p->clients_total, (unsigned long long)p->clients_done,
                p->probes_ok, p->probes);
    fflush(stderr);
}

/* --shard I/N: keep this job's slice of the resolved files. An empty shard (more shards than
 * scenarios) is said and runs nothing: its CI job passes. */
static int run_shard(const struct run_options *opt, char **paths, int n)
{
    const struct catalogue_shard shard = {opt->shard_index, opt->shard_count};
    int kept = catalogue_shard_select(paths, n, &shard);
    if (kept < 0) {
        catalogue_free(paths, n);
        fprintf(stderr, "connfault: out of memory\n");
    } else if (kept == 0) {
        fprintf(stderr, "connfault: shard %u/%u has no scenarios (there are %d)\n", shard.index,
                shard.count, n);
    }
    return kept;
}

/* Load every scenario before running any, so a typo in the last file costs no time. */
static int load_scenarios(const struct run_env *env, char **names, int nnames,
                          struct scenario **out, int *count, char *err, size_t errlen)
{
    char **paths = NULL;
    int n = catalogue_resolve(names, nnames, &paths, err, errlen);
    if (n < 0)
        return -1;
    if ((n = run_shard(env->opt, paths, n)) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct scenario *list = calloc((size_t)n, sizeof(*list));
    struct scenario_vars vars;
    run_env_scenario_vars(env, &vars);
    int loaded = 0;
    while (list && loaded < n &&
           scenario_load(paths[loaded], &vars, &list[loaded], err, errlen) == 0)
        loaded++;
    catalogue_free(paths, n);
    if (loaded == n) {
        *out = list;
        *count = n;
        return 0;
    }
    if (!list)
        snprintf(err, errlen, "out of memory");
    for (int j = 0; j < loaded; j++)
        scenario_free(&list[j]);
    free(list);
    return -1;
}

/* A group with `expect`: the responses check excuses the kernel's own resets by the counters
 * of the target's netns, which are the target's only in a namespace of our own. */
static bool expects_responses(const struct scenario *sc)
{
    for (size_t i = 0; i < sc->ngroups; i++)
        if (sc->groups[i].expect_responses)
            return true;
    return false;
}

/* Silent drops need the target and the clients in a network namespace of our own, and so do
 * the kernel counters the responses check reads. Enter it for the whole run (before any target
 * starts) if any scenario needs it. */
static void prepare_sandbox(struct run_env *env, const struct scenario *list, int n)
{
    bool needed = false;
    for (int i = 0; i < n; i++)
        needed |= list[i].needs_sandbox || expects_responses(&list[i]);
    if (needed && !run_env_sandbox(env) && env->opt->verbosity > 1)
        printf("connfault: in a private network namespace%s (nftables table %s)\n",
               env->sandbox.user_namespace ? " inside a user namespace" : "", env->sandbox.table);
}

/* command: the target's command line (env->command), or NULL when there is no env yet. */
static void describe_target(const struct run_options *o, const char *command,
                            struct run_report *rep)
{
    snprintf(rep->target_kind, sizeof(rep->target_kind), "%s",
             o->target_pid   ? "pid"
             : o->target_cmd ? "cmd"
                             : "reference");
    if (o->target_pid)
        snprintf(rep->target_desc, sizeof(rep->target_desc), "pid %d", (int)o->target_pid);
    else
        snprintf(rep->target_desc, sizeof(rep->target_desc), "%.1000s",
                 command         ? command
                 : o->target_cmd ? o->target_cmd
                                 : "connfault-server");
    inet_ntop(AF_INET, &o->addr.sin_addr, rep->host, sizeof(rep->host));
    rep->port = ntohs(o->addr.sin_port);
}

/* A run of a list of scenarios, as their outcomes are taken in the scenarios' order. */
struct list_run {
    struct run_env *env;
    const struct run_options *opt;
    const struct scenario *list;
    int n;
    struct run_report *rep;
    int exit_status;
    bool over;            /* a set-up error or an interrupt: what comes after it is not reported */
    int stop_rc, stop_at; /* which of the two, in which scenario (stopped.h makes entries) */
    char stop_err[512];
    /* --jobs: what came back, and the next scenario to report */
    struct job_outcome *outcomes;
    int next;
};

/* Scenario i's outcome (its result in rep->scenarios[i]): counted and printed, or the end of
 * the run with exit status 2 (set-up error) or 130 (interrupted). */
static void take_outcome(struct list_run *lr, int i, int rc, const char *err)
{
    const struct run_options *opt = lr->opt;
    struct scenario_result *res = &lr->rep->scenarios[i];
    if (rc == RUN_SETUP_ERROR && *opt->interrupted)
        rc = RUN_INTERRUPTED; /* a set-up cut short by the interrupt */
    if (rc == RUN_SETUP_ERROR || rc == RUN_INTERRUPTED) {
        if (rc == RUN_SETUP_ERROR && opt->progress)
            print_progress(NULL, NULL);
        if (rc == RUN_SETUP_ERROR)
            fprintf(stderr, "connfault: %s: %s\n", lr->list[i].name, err);
        else
            fprintf(stderr, "connfault: interrupted during %s\n", lr->list[i].name);
        if (rc == RUN_SETUP_ERROR)
            run_result_free(res); /* a job's partial result may hold a diagnosis */
        /* (an interrupted one keeps what its clients did so far: stopped_interrupted) */
        lr->exit_status = rc == RUN_SETUP_ERROR ? 2 : 130;
        lr->over = true;
        lr->stop_rc = rc;
        lr->stop_at = i;
        snprintf(lr->stop_err, sizeof(lr->stop_err), "%s", err);
        return;
    }
    lr->rep->nscenarios++;
    /* 1 when a scenario failed, else 2 when one could not be exercised (error) */
    if (res->verdict == VERDICT_FAIL)
        lr->exit_status = 1;
    else if (res->verdict == VERDICT_ERROR && lr->exit_status == 0)
        lr->exit_status = 2;
    if (opt->verbosity > 0 || res->verdict == VERDICT_FAIL || res->verdict == VERDICT_ERROR)
        report_print_scenario(stdout, res, opt->verbosity > 1, opt->color);
    fflush(stdout);
}

/* --jobs, in the job's own process: scenario index as job slot sees it (its client hosts
 * moved to the slot's, jobs.h), run as the sequential run does. */
static int run_in_job(void *ctx, int index, unsigned slot, struct scenario_result *res, char *err,
                      size_t errlen)
{
    struct list_run *lr = ctx;
    const struct scenario *sc = &lr->list[index];
    struct scenario mine = *sc;
    mine.groups = calloc(sc->ngroups ? sc->ngroups : 1, sizeof(*mine.groups));
    int rc = RUN_SETUP_ERROR;
    for (size_t i = 0; mine.groups && i < sc->ngroups; i++) {
        mine.groups[i] = sc->groups[i];
        if (mine.groups[i].host.s_addr)
            mine.groups[i].host = run_job_host(mine.groups[i].host, slot);
    }
    if (!mine.groups)
        snprintf(err, errlen, "out of memory");
    else if (run_env_enter_job(lr->env, slot, err, errlen) == 0)
        rc = run_scenario_once(lr->env, &mine, res, err, errlen);
    sandbox_free(&lr->env->sandbox); /* this job's table */
    return rc;
}

static void job_reaped(void *ctx, int pid)
{
    struct list_run *lr = ctx;
    sandbox_forget_job(&lr->env->sandbox, pid);
}

/* A job that died without its result is a set-up error that says how it died. */
static int job_rc(const struct list_run *lr, int i, char *err, size_t errlen)
{
    const struct job_outcome *out = &lr->outcomes[i];
    snprintf(err, errlen, "%s", out->err);
    if (!out->lost)
        return out->rc;
    int st = out->wait_status;
    if (WIFSIGNALED(st))
        snprintf(err, errlen, "its job was killed by signal %d (%s) before its result",
                 WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(err, errlen, "its job exited with status %d before its result",
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return RUN_SETUP_ERROR;
}

/* --jobs: an outcome came back; report those now in order (none past the end of the run). */
static void job_done(void *ctx, int index)
{
    struct list_run *lr = ctx;
    char err[512];
    (void)index;
    /* (after the end of the run, what comes back waits for take_stop) */
    for (; !lr->over && lr->next < lr->n && lr->outcomes[lr->next].done; lr->next++)
        take_outcome(lr, lr->next, job_rc(lr, lr->next, err, sizeof(err)), err);
}

_Static_assert(RUN_MAX_JOBS <= JOBS_MAX, "--jobs beyond what jobs.c keeps slots for");

/* How many scenarios run at once: --jobs, or the default. One when the port is fixed (--port,
 * --target-pid): a server whose configuration names its port cannot be started N times, and
 * an attached one is one process. */
static unsigned jobs_of(const struct run_options *opt, int n)
{
    bool fixed_port = opt->target_pid || opt->addr.sin_port;
    unsigned jobs = opt->jobs ? opt->jobs : fixed_port ? 1 : RUN_DEFAULT_JOBS;
    return jobs < (unsigned)n ? jobs : (unsigned)n;
}

/* The entries of a run that stopped (stopped.h), once no job writes into rep->scenarios any
 * more: they may move it. */
static void take_stop(struct list_run *lr)
{
    if (!lr->over)
        return;
    /* --jobs: the scenarios after the one the run stopped in ran at the same time: each
     * finished (its verdict stands), was cut short (no verdict) or never started */
    enum stopped_fate *fate = lr->outcomes ? calloc((size_t)lr->n, sizeof(*fate)) : NULL;
    for (int i = lr->stop_at + 1; fate && i < lr->n; i++) {
        struct scenario_result *res = &lr->rep->scenarios[i];
        const struct job_outcome *out = &lr->outcomes[i];
        fate[i] = !out->done                   ? STOPPED_NOT_RUN
                  : out->rc == 0 && !out->lost ? STOPPED_FINISHED
                                               : STOPPED_CUT;
        if (fate[i] == STOPPED_CUT)
            run_result_free(res); /* a diagnosis of a scenario cut short tells nothing */
        else if (fate[i] == STOPPED_FINISHED &&
                 (lr->opt->verbosity > 0 || res->verdict == VERDICT_FAIL ||
                  res->verdict == VERDICT_ERROR))
            report_print_scenario(stdout, res, lr->opt->verbosity > 1, lr->opt->color);
    }
    if (lr->stop_rc == RUN_SETUP_ERROR)
        stopped_setup_error(lr->rep, lr->stop_err, lr->list, lr->n, lr->stop_at, fate);
    else
        stopped_interrupted(lr->rep, lr->list, lr->n, lr->stop_at, fate);
    free(fate);
}

/* Run the scenarios, printing each verdict in the scenarios' order. Returns the exit status. */
static int run_list_of(struct run_env *env, const struct scenario *list, int n,
                       struct run_report *rep)
{
    struct list_run lr = {.env = env, .opt = env->opt, .list = list, .n = n, .rep = rep};
    unsigned jobs = jobs_of(env->opt, n);
    if (jobs > 1) {
        char gate[300];
        run_env_gate_path(env, gate, sizeof(gate));
        int fd = open(gate, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        lr.outcomes = fd >= 0 ? calloc((size_t)n, sizeof(*lr.outcomes)) : NULL;
        if (fd >= 0)
            close(fd);
        if (!lr.outcomes) {
            fprintf(stderr, "connfault: %s: %s\n", fd < 0 ? gate : "out of memory",
                    fd < 0 ? strerror(errno) : "");
            return 2;
        }
        const struct jobs_plan plan = {.n = n,
                                       .njobs = jobs,
                                       .interrupted = env->opt->interrupted,
                                       .run_one = run_in_job,
                                       .reaped = job_reaped,
                                       .done = job_done,
                                       .ctx = &lr};
        jobs_run(&plan, rep->scenarios, lr.outcomes);
        take_stop(&lr);
        free(lr.outcomes);
        return lr.exit_status;
    }
    char err[512];
    for (int i = 0; i < n && !lr.over; i++) {
        int rc = run_scenario_once(env, &list[i], &rep->scenarios[i], err, sizeof(err));
        take_outcome(&lr, i, rc, err);
    }
    take_stop(&lr);
    return lr.exit_status;
}

/* The run of a list of scenarios (given or loaded), with the run's own set-up and tidy-up. */
static int run_loaded(struct run_env *env, const struct scenario *list, int n,
                      struct run_report *rep)
{
    const struct run_options *opt = env->opt;
    char err[512];
    prepare_sandbox(env, list, n);
    int pf = run_env_preflight(env, list, n, opt->verbosity > 1 ? stdout : NULL, err, sizeof(err));
    if (pf != 0) {
        fprintf(stderr, "connfault: %s\n", err);
        if (pf == RUN_INTERRUPTED)
            return stopped_interrupted(rep, list, n, -1, NULL), 130;
        return stopped_setup_error(rep, err, list, n, -1, NULL), 2;
    }
    if (opt->progress)
        run_env_set_progress(env, print_progress, NULL);
    rep->scenarios = calloc((size_t)n, sizeof(*rep->scenarios));
    uint64_t t0 = engine_now_ms();
    if (opt->verbosity > 0)
        printf("connfault: %d scenario(s) against %s, seed %llu\n", n, rep->target_desc,
               (unsigned long long)opt->seed);
    fflush(stdout);
    int exit_status = rep->scenarios ? run_list_of(env, list, n, rep) : 2;
    rep->duration_s = (double)(engine_now_ms() - t0) / 1000.0;
    return exit_status;
}

/* run_collect() of the named scenarios, or of the one given (connfault replay). */
static int run_collect_some(const struct run_options *opt, char **names, int nnames,
                            const struct scenario *given, struct run_report *rep)
{
    char err[512];
    struct scenario *list = NULL;
    int n = 0;
    memset(rep, 0, sizeof(*rep));
    rep->seed = opt->seed;
    cleanup_stale(opt->verbosity > 1 ? stdout : NULL); /* what a killed run left behind */
    struct run_env *env = run_env_new(opt, err, sizeof(err));
    describe_target(opt, env ? env->command : NULL, rep);
    if (!env) {
        fprintf(stderr, "connfault: %s\n", err);
        stopped_setup_error(rep, err, NULL, 0, -1, NULL);
        return 2;
    }
    if (!given && load_scenarios(env, names, nnames, &list, &n, err, sizeof(err)) < 0) {
        fprintf(stderr, "connfault: %s\n", err);
        stopped_setup_error(rep, err, NULL, 0, -1, NULL);
        run_env_free(env);
        return 2;
    }
    int exit_status = given ? run_loaded(env, given, 1, rep) : run_loaded(env, list, n, rep);
    run_env_free(env);
    for (int i = 0; i < n; i++)
        scenario_free(&list[i]);
    free(list);
    return exit_status;
}

int run_collect(const struct run_options *opt, char **names, int nnames, struct run_report *rep)
{
    return run_collect_some(opt, names, nnames, NULL, rep);
}

/* The run, then its totals and report files. */
static int run_main_some(const struct run_options *opt, char **names, int nnames,
                         const struct scenario *given)
{
    struct run_report rep;
    int exit_status = run_collect_some(opt, names, nnames, given, &rep);
    if (rep.nscenarios > 0 || exit_status < 2) {
        report_print_totals(stdout, &rep, opt->color);
        fflush(stdout);
    }
    const struct {
        const char *path;
        int (*write)(const char *, const struct run_report *, char *, size_t);
    } files[] = {{opt->junit_path, report_write_junit},
                 {opt->json_path, report_write_json},
                 {opt->tap_path, report_write_tap}};
    char err[512];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (files[i].path && files[i].write(files[i].path, &rep, err, sizeof(err)) < 0) {
            fprintf(stderr, "connfault: %s\n", err);
            exit_status = exit_status ? exit_status : 2;
        }
    }
    run_report_free(&rep);
    return exit_status;
}

int run_main(const struct run_options *opt, char **names, int nnames)
{
    return run_main_some(opt, names, nnames, NULL);
}

/* A scenario whose fault clients are the capture's flows. */
static void replay_scenario(struct scenario *sc, const struct replay_set *set)
{
    uint64_t span_ms =
        set->speed > 0 ? (uint64_t)((double)set->duration_us / 1000.0 / set->speed) : 0;
    memset(sc, 0, sizeof(*sc));
    snprintf(sc->name, sizeof(sc->name), "%s", set->name);
    sc->duration_ms = (unsigned)(span_ms < REPLAY_MAX_SPAN_MS ? span_ms : REPLAY_MAX_SPAN_MS) +
                      REPLAY_END_SLACK_MS;
    for (size_t i = 0; i < set->nflows; i++)
        sc->needs_sandbox |= set->flows[i].end == FLOW_END_SILENT;
    sc->replay = set;
}

int run_replay(const struct run_options *opt, const struct replay_set *set)
{
    struct scenario sc;
    replay_scenario(&sc, set);
    return run_main_some(opt, NULL, 0, &sc);
}

int run_list(const struct run_options *opt, bool json)
{
    const struct catalogue_list_opts lo = {
        .shard = {opt->shard_index, opt->shard_count},
        .json = json,
        .grace_ms = opt->grace_ms > UINT32_MAX ? UINT32_MAX : (unsigned)opt->grace_ms};
    return catalogue_list_some(stdout, stderr, "connfault", &lo) < 0 ? 2 : 0;
}
