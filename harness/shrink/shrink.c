/* shrink: the command: load the scenario, confirm it fails (K of K runs), then greedy
 * delta debugging over the candidates of search.c until no candidate fails or the budget is
 * spent, then write minimal.ini and repro.c. */
#include "shrink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalogue.h"
#include "cf_time.h"
#include "shrink_internal.h"

bool shrink_budget_left(const struct shrink_state *st)
{
    return st->stop == 0 && st->trials < st->so->max_trials &&
           cf_now_ms() - st->t0_ms < st->so->time_limit_ms &&
           !(st->opt->interrupted && *st->opt->interrupted);
}

static void progress(const struct shrink_state *st, const char *what, const struct scenario *cand,
                     bool fails)
{
    uint64_t spent = cf_now_ms() - st->t0_ms, limit = st->so->time_limit_ms;
    fprintf(stderr,
            "connfault shrink: trial %u/%u (%s): %zu group(s), %llu client(s), %ums: %s%s%s%s; "
            "best so far %zu group(s), %llu client(s), %ums (%.0f s, %.0f s left)\n",
            st->trials, st->so->max_trials, what, cand->ngroups, shrink_clients(cand),
            cand->duration_ms, fails ? "fails" : "does not fail", fails ? "" : " (",
            fails ? "" : st->last_miss, fails ? "" : ")", st->best.ngroups,
            shrink_clients(&st->best), st->best.duration_ms, (double)spent / 1000.0,
            spent < limit ? (double)(limit - spent) / 1000.0 : 0.0);
}

/* The best so far joins the earlier ones (the final re-confirmation may step back to them).
 * false: no memory for it (then it is simply dropped). */
static bool push_past(struct shrink_state *st)
{
    struct scenario *p = realloc(st->past, (st->npast + 1) * sizeof(*p));
    if (!p)
        return false;
    st->past = p;
    st->past[st->npast++] = st->best;
    return true;
}

static void free_past(struct shrink_state *st)
{
    for (size_t i = 0; i < st->npast; i++)
        shrink_view_free(&st->past[i]);
    free(st->past);
    st->past = NULL;
    st->npast = 0;
}

/* The best must fail in final_runs more runs (K of K at each step lets a 1-in-K fluke
 * through); when it does not, the best before it is tried, and so on. true when one did;
 * false when none did (nothing reliable to write), or st->stop was set. */
static bool reconfirm(struct shrink_state *st)
{
    st->final_runs =
        st->so->confirm * 2 > SHRINK_FINAL_MIN ? st->so->confirm * 2 : SHRINK_FINAL_MIN;
    for (;;) {
        if (shrink_trial_runs(st, &st->best, st->final_runs))
            return true;
        if (st->stop)
            return false;
        fprintf(stderr,
                "connfault shrink: re-confirming: %zu group(s), %llu client(s) did not fail %s "
                "in %u of %u runs; stepping back\n",
                st->best.ngroups, shrink_clients(&st->best), st->check, st->final_runs,
                st->final_runs);
        if (st->npast == 0)
            return false;
        shrink_view_free(&st->best);
        st->best = st->past[--st->npast];
    }
}

/* One candidate tried: true when it failed and became the best. */
static bool try_candidate(struct shrink_state *st, unsigned kind, size_t gi)
{
    struct scenario cand;
    if (!shrink_candidate(&st->best, kind, gi, &cand))
        return false;
    char what[128];
    if (shrink_candidate_scenario_wide(kind))
        snprintf(what, sizeof(what), "%s", shrink_candidate_what(kind));
    else
        snprintf(what, sizeof(what), "%s %s", st->best.groups[gi].name,
                 shrink_candidate_what(kind));
    st->trials++;
    bool fails = shrink_trial(st, &cand);
    if (fails && push_past(st)) {
        st->best = cand; /* cand's groups are the best's now */
    } else if (fails) {
        shrink_view_free(&st->best);
        st->best = cand;
    }
    if (st->stop != 130)
        progress(st, what, &cand, fails);
    if (!fails)
        shrink_view_free(&cand);
    return fails;
}

/* Passes over every candidate kind and group until a whole pass finds nothing smaller. A kind
 * that worked is tried again on the new best (halving goes on). */
static void search(struct shrink_state *st)
{
    bool progressed = true;
    while (progressed && shrink_budget_left(st)) {
        progressed = false;
        for (unsigned kind = 0; kind < SHRINK_CANDIDATE_KINDS && shrink_budget_left(st); kind++)
            for (size_t gi = 0; gi < st->best.ngroups && shrink_budget_left(st);)
                if (try_candidate(st, kind, gi))
                    progressed = true;
                else
                    gi++;
    }
}

void shrink_out_dir(const struct shrink_state *st, const char *name, char *dir, size_t len)
{
    if (st->so->out_dir)
        snprintf(dir, len, "%s", st->so->out_dir);
    else
        snprintf(dir, len, "connfault-shrink/%s-%llu", name, (unsigned long long)st->opt->seed);
}

int shrink_mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc < 0 && errno != EEXIST)
            return -errno;
    }
    return mkdir(path, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

void shrink_describe_target(const struct run_options *opt, char *out, size_t len)
{
    if (opt->target_pid)
        snprintf(out, len, "pid %d", (int)opt->target_pid);
    else if (opt->target_cmd)
        snprintf(out, len, "--target-cmd '%.900s'", opt->target_cmd);
    else if (opt->bug)
        snprintf(out, len, "the reference server with --bug %.100s", opt->bug);
    else
        snprintf(out, len, "the reference server");
}

static int write_minimal(const struct shrink_state *st, const struct scenario *orig,
                         const char *path)
{
    char target[1024], header[16384], final[96];
    struct scenario_vars vars;
    shrink_describe_target(st->opt, target, sizeof(target));
    if (st->final_runs && st->stop == 0)
        snprintf(final, sizeof(final), "then in %u of %u runs of this file", st->final_runs,
                 st->final_runs);
    else
        snprintf(final, sizeof(final), "NOT re-confirmed (interrupted)");
    snprintf(header, sizeof(header),
             "%s: written by connfault shrink\n"
             "shrunk from: %s (%zu group(s), %llu client(s), duration %ums)\n"
             "to: %zu group(s), %llu client(s), duration %ums\n"
             "target: %s\n"
             "failing check: %s, in %u of %u runs at each step, %s (%s)\n"
             "trials: %u (%u runs), time taken: %.1f s, seed %llu\n"
             "run it: connfault run%s%s --seed %llu %s",
             path, orig->path, orig->ngroups, shrink_clients(orig), orig->duration_ms,
             st->best.ngroups, shrink_clients(&st->best), st->best.duration_ms, target, st->check,
             st->so->confirm, st->so->confirm, final, st->last_reason, st->trials, st->runs,
             (double)(cf_now_ms() - st->t0_ms) / 1000.0, (unsigned long long)st->opt->seed,
             st->opt->bug ? " --bug " : "", st->opt->bug ? st->opt->bug : "",
             (unsigned long long)st->opt->seed, path);
    run_env_scenario_vars(st->env, &vars);
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    int rc = scenario_write(f, &st->best, &vars, header);
    return fclose(f) < 0 && rc == 0 ? -errno : rc;
}

static int write_repro(const struct shrink_state *st, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    int rc = shrink_write_repro(f, &st->best, st->opt, st->check);
    return fclose(f) < 0 && rc == 0 ? -errno : rc;
}

/* minimal.ini and repro.c in the output directory, then minimal.pcap (one more failing run,
 * recorded; not when interrupted). 0 or 2. */
static int write_outputs(struct shrink_state *st, const struct scenario *orig)
{
    char dir[4096], ini[4200], repro[4200];
    shrink_out_dir(st, orig->name, dir, sizeof(dir));
    snprintf(ini, sizeof(ini), "%s/minimal.ini", dir);
    snprintf(repro, sizeof(repro), "%s/repro.c", dir);
    int rc = shrink_mkdir_p(dir);
    const char *failed = dir;
    if (rc == 0 && (rc = write_minimal(st, orig, ini)) < 0)
        failed = ini;
    else if (rc == 0 && (rc = write_repro(st, repro)) < 0)
        failed = repro;
    if (rc < 0) {
        fprintf(stderr, "connfault shrink: %s: %s\n", failed, strerror(-rc));
        return 2;
    }
    printf("connfault shrink: %s fails %s with %zu group(s), %llu client(s) (from %llu) after "
           "%u trial(s)\n  %s\n  %s\n",
           orig->name, st->check, st->best.ngroups, shrink_clients(&st->best), shrink_clients(orig),
           st->trials, ini, repro);
    snprintf(ini, sizeof(ini), "%s/minimal.pcap", dir);
    if (st->stop == 0 && shrink_record(st, &st->best, dir, ini) == 0)
        printf("  %s\n", ini);
    fflush(stdout);
    return 0;
}

/* The one scenario `name` stands for, loaded with the env's placeholders. 0 or 2. */
static int load_one(struct run_env *env, const char *name, struct scenario *sc)
{
    char err[512], **paths = NULL, *names[1] = {(char *)name};
    struct scenario_vars vars;
    int n = catalogue_resolve(names, 1, &paths, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "connfault shrink: %s\n", err);
        return 2;
    }
    run_env_scenario_vars(env, &vars);
    int rc = n == 1 ? scenario_load(paths[0], &vars, sc, err, sizeof(err)) : -1;
    catalogue_free(paths, n);
    if (rc < 0) {
        fprintf(stderr, "connfault shrink: %s\n", n == 1 ? err : "give one scenario");
        return 2;
    }
    return 0;
}

/* The target is ready for sc: the sandbox when it needs one, the pre-flight. 0 or 2/130. */
int shrink_prepare(struct run_env *env, const struct scenario *sc)
{
    char err[512];
    const char *why = sc->needs_sandbox ? run_env_sandbox(env) : NULL;
    if (why) {
        fprintf(stderr, "connfault shrink: %s needs the network sandbox: %s\n", sc->name, why);
        return 2;
    }
    int rc = run_env_preflight(env, sc, 1, NULL, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "connfault shrink: %s\n", err);
    return rc == 0 ? 0 : rc == RUN_INTERRUPTED ? 130 : 2;
}

/* Confirm, search, write. Returns the exit status. */
static int shrink_loaded(struct shrink_state *st, const struct scenario *orig)
{
    int rc = shrink_prepare(st->env, orig);
    if (rc != 0)
        return rc;
    if (shrink_view_copy(&st->best, orig) < 0)
        return 2;
    fprintf(stderr,
            "connfault shrink: %s: %zu group(s), %llu client(s), %ums; confirming (%u "
            "run(s))\n",
            orig->name, orig->ngroups, shrink_clients(orig), orig->duration_ms, st->so->confirm);
    bool fails = shrink_trial(st, orig);
    if (st->stop)
        return st->stop;
    if (!fails) {
        printf("connfault shrink: nothing to shrink: %s does not fail %s in %u of %u runs "
               "against this target\n",
               orig->name, st->check[0] ? st->check : "any check", st->so->confirm,
               st->so->confirm);
        return 1;
    }
    fprintf(stderr, "connfault shrink: %s fails %s in %u of %u runs; shrinking\n", orig->name,
            st->check, st->so->confirm, st->so->confirm);
    search(st);
    if (st->stop == 0 && !reconfirm(st) && st->stop == 0) {
        printf("connfault shrink: nothing reliable to write: %s and every smaller scenario "
               "found failed %s in %u of %u runs, but not in %u of %u more\n",
               orig->name, st->check, st->so->confirm, st->so->confirm, st->final_runs,
               st->final_runs);
        return 1;
    }
    if (st->stop == 2)
        return 2;
    rc = write_outputs(st, orig);
    return st->stop ? st->stop : rc;
}

/* The checks of run/checks.c, by the names their results carry. */
static bool is_check(const char *name)
{
    static const char *const names[] = {"accepting", "alive", "fds", "sockets", "cpu", "memory"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

int shrink_main(const struct run_options *opt, const struct shrink_options *so, const char *name)
{
    char err[512];
    if (so->check && !is_check(so->check)) {
        fprintf(stderr,
                "connfault shrink: --check %s: not a check (expected accepting, alive, "
                "fds, sockets, cpu or memory)\n",
                so->check);
        return 2;
    }
    struct scenario orig;
    struct shrink_state st = {.opt = opt, .so = so, .t0_ms = cf_now_ms()};
    if (so->check)
        snprintf(st.check, sizeof(st.check), "%s", so->check);
    st.env = run_env_new(opt, err, sizeof(err));
    if (!st.env) {
        fprintf(stderr, "connfault shrink: %s\n", err);
        return 2;
    }
    int rc = load_one(st.env, name, &orig);
    if (rc == 0) {
        rc = shrink_loaded(&st, &orig);
        shrink_view_free(&st.best);
        free_past(&st);
        scenario_free(&orig);
    }
    run_env_free(st.env);
    return rc;
}
