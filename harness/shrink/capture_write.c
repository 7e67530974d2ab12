/* capture_write: the files of `connfault shrink CAPTURE` (capture_out.c makes the scenario):
 * flows.txt, minimal.ini and repro.c when the kept flows can be scenario clients (minimal.ini
 * run K more times first: its header says how it did), minimal.pcap. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cf_time.h"
#include "shrink_internal.h"

/* "then in N of N" of the final re-confirmation, or that it did not end (interrupted). */
static void final_runs_said(const struct shrink_state *st, char *out, size_t len)
{
    if (st->stop == 0)
        snprintf(out, len, "then in %u of %u", st->final_runs, st->final_runs);
    else
        snprintf(out, len, "NOT re-confirmed (interrupted)");
}

/* The kept flows, one line each, numbered as `connfault replay --dump` numbers them. */
static int write_flows(const struct shrink_state *st, const struct replay_set *orig,
                       const struct shrink_cut *best, const char *path)
{
    char d[128];
    char final[64];
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    shrink_cut_describe(best, d, sizeof(d));
    final_runs_said(st, final, sizeof(final));
    fprintf(f,
            "# written by connfault shrink: %s of the %zu flows of %s fail %s in %u of %u "
            "runs, %s (trials %u, runs %u, %.1f s, seed %llu)\n",
            d, orig->nflows, orig->name, st->check, st->so->confirm, st->so->confirm, final,
            st->trials, st->runs, (double)(cf_now_ms() - st->t0_ms) / 1000.0,
            (unsigned long long)st->opt->seed);
    for (size_t i = 0; i < best->set.nflows; i++) {
        const struct replay_flow *fl = &best->set.flows[i];
        const struct replay_flow *was = &orig->flows[best->orig[i]];
        fprintf(f,
                "flow %zu: client port %u, start %.6f s, %llu bytes sent in %zu of its %zu "
                "segment(s), end %s\n",
                best->orig[i] + 1, fl->client_port, (double)fl->start_us / 1e6,
                (unsigned long long)fl->data_len, fl->nsegs, was->nsegs, flow_end_name(fl->end));
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* minimal.ini's header comment: where it comes from and how it did in its own runs. */
static void ini_header(const struct shrink_state *st, const struct replay_set *orig,
                       const struct shrink_cut *best, const struct scenario *sc, int own_fails,
                       const char *path, char *out, size_t len)
{
    char target[1024], d[128], own[256], final[64];
    unsigned long long clients = shrink_clients(sc);
    shrink_describe_target(st->opt, target, sizeof(target));
    shrink_cut_describe(best, d, sizeof(d));
    final_runs_said(st, final, sizeof(final));
    if (own_fails < 0)
        snprintf(own, sizeof(own), "this file itself NOT run (interrupted)");
    else if (own_fails)
        snprintf(own, sizeof(own), "this file itself failed %s in %u of %u runs", st->check,
                 st->so->confirm, st->so->confirm);
    else
        snprintf(own, sizeof(own), "this file itself did NOT fail %s in %u of %u runs (%.150s)",
                 st->check, st->so->confirm, st->so->confirm, st->last_miss);
    snprintf(out, len,
             "%s: written by connfault shrink\n"
             "shrunk from: the capture %s (%zu flow(s), %llu segment(s))\n"
             "to: %s; here as %zu group(s), %llu client(s) (flows that sent the same bytes at "
             "the same time and ended alike: one group)\n"
             "target: %s\n"
             "failing check: %s, the replay of the kept flows in %u of %u runs at each step, "
             "%s; %s\n"
             "trials: %u (%u runs), time taken: %.1f s, seed %llu\n"
             "run it: connfault run%s%s --seed %llu %s",
             path, orig->name, orig->nflows, shrink_set_segments(orig), d, sc->ngroups, clients,
             target, st->check, st->so->confirm, st->so->confirm, final, own, st->trials, st->runs,
             (double)(cf_now_ms() - st->t0_ms) / 1000.0, (unsigned long long)st->opt->seed,
             st->opt->bug ? " --bug " : "", st->opt->bug ? st->opt->bug : "",
             (unsigned long long)st->opt->seed, path);
}

static int write_file(const char *path, const struct scenario *sc, const struct scenario_vars *v,
                      const char *header, const struct run_options *opt, const char *check)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    int rc = header ? scenario_write(f, sc, v, header) : shrink_write_repro(f, sc, opt, check);
    return fclose(f) < 0 && rc == 0 ? -errno : rc;
}

/* minimal.ini and repro.c, or why not, on stdout. 0 or 2. */
static int write_scenario(struct shrink_state *st, const struct replay_set *orig,
                          const struct shrink_cut *best, const char *dir)
{
    char ini[4200], repro[4200], why[512];
    struct scenario sc;
    struct scenario_vars vars;
    if (shrink_cut_scenario(best, &sc, why, sizeof(why)) < 0) {
        printf("  minimal.ini, repro.c: not written: %s\n", why);
        return 0;
    }
    /* after an interruption nothing more is run: the files say so */
    int own_fails = st->stop ? -1 : shrink_trial_runs(st, &sc, st->so->confirm);
    char *header = malloc(16384);
    snprintf(ini, sizeof(ini), "%s/minimal.ini", dir);
    snprintf(repro, sizeof(repro), "%s/repro.c", dir);
    if (header)
        ini_header(st, orig, best, &sc, own_fails, ini, header, 16384);
    run_env_scenario_vars(st->env, &vars);
    int rc = !header ? -ENOMEM : write_file(ini, &sc, &vars, header, st->opt, st->check);
    const char *failed = ini;
    if (rc == 0 && (rc = write_file(repro, &sc, &vars, NULL, st->opt, st->check)) < 0)
        failed = repro;
    free(header);
    scenario_free(&sc);
    if (rc < 0) {
        fprintf(stderr, "connfault shrink: %s: %s\n", failed, strerror(-rc));
        return 2;
    }
    if (own_fails < 0)
        printf("  %s (NOT run: interrupted)\n  %s\n", ini, repro);
    else
        printf("  %s (%s %s in %u of %u runs of it)\n  %s\n", ini,
               own_fails ? "fails" : "does NOT fail", st->check, st->so->confirm, st->so->confirm,
               repro);
    return 0;
}

int shrink_capture_write(struct shrink_state *st, const struct replay_set *orig,
                         const struct shrink_cut *best)
{
    char dir[4096], pcap[4200], list[4200], d[128];
    struct scenario sc;
    shrink_out_dir(st, orig->name, dir, sizeof(dir));
    snprintf(pcap, sizeof(pcap), "%s/minimal.pcap", dir);
    snprintf(list, sizeof(list), "%s/flows.txt", dir);
    if (shrink_mkdir_p(dir) < 0 || write_flows(st, orig, best, list) < 0) {
        fprintf(stderr, "connfault shrink: %s: cannot write\n", list);
        return 2;
    }
    shrink_cut_describe(best, d, sizeof(d));
    printf("connfault shrink: %s fails %s with %s (from %zu flow(s)) after %u trial(s)%s\n  "
           "%s\n",
           orig->name, st->check, d, orig->nflows, st->trials,
           st->stop ? "; interrupted: the best so far, NOT re-confirmed" : "", list);
    fflush(stdout);
    int rc = write_scenario(st, orig, best, dir);
    run_replay_scenario(&sc, &best->set);
    if (rc == 0 && st->stop == 0 && shrink_record(st, &sc, dir, pcap) == 0)
        printf("  %s\n", pcap);
    fflush(stdout);
    return st->stop ? st->stop : rc; /* 130: interrupted while minimal.ini ran */
}
