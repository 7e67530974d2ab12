/* shrink_internal: what the files of shrink/ share. */
#ifndef CONNFAULT_SHRINK_INTERNAL_H
#define CONNFAULT_SHRINK_INTERNAL_H

#include <stdbool.h>
#include <stdio.h>

#include "pcap_flows.h"
#include "result.h"
#include "scenario.h"
#include "shrink.h"

/* A candidate: a copy of the original scenario with an array of groups of its own; the
 * groups' requests and tails stay the original's (never freed through a view). */
struct shrink_state {
    const struct run_options *opt;
    const struct shrink_options *so;
    struct run_env *env;
    struct scenario best;  /* a view; groups owned */
    struct scenario *past; /* the earlier bests, oldest first (views; groups owned) */
    size_t npast;
    unsigned final_runs;     /* the runs of the final re-confirmation (0: not done yet) */
    char check[16];          /* the check that must keep failing */
    char last_reason[512];   /* what the best's last failing run said */
    char last_miss[128];     /* why the last trial did not count as failing */
    char last_capture[4096]; /* the capture of the last failing run, when one was kept */
    unsigned trials, runs;
    uint64_t t0_ms;
    int stop; /* 0, or the exit status that ends the search (2 set-up error, 130) */
};

/* Trials and time are left, and no stop or interrupt (shrink.c). */
bool shrink_budget_left(const struct shrink_state *st);

/* One more run of sc with its traffic captured, kept as `path` when that run fails st->check
 * (up to 3 runs) (record.c). 0, or -1 with why on stderr. */
int shrink_record(struct shrink_state *st, const struct scenario *sc, const char *dir,
                  const char *path);

/* The target is ready for sc: the sandbox when it needs one, the pre-flight (shrink.c). 0, or
 * the exit status (2, 130), said on stderr. */
int shrink_prepare(struct run_env *env, const struct scenario *sc);

/* The output directory: --out, else connfault-shrink/NAME-SEED (shrink.c). */
void shrink_out_dir(const struct shrink_state *st, const char *name, char *dir, size_t len);

/* mkdir -p (shrink.c). 0 or -errno. */
int shrink_mkdir_p(char *path);

/* A view of src (groups copied into an array of its own). 0, or -ENOMEM. */
int shrink_view_copy(struct scenario *dst, const struct scenario *src);
void shrink_view_free(struct scenario *v);

/* "the reference server with --bug accept-once", "pid 42"...: the target, for headers
 * (shrink.c). */
void shrink_describe_target(const struct run_options *opt, char *out, size_t len);

/* Clients of all groups: the size shown in progress lines and the header. */
unsigned long long shrink_clients(const struct scenario *sc);

/* Run sc K times (trial.c): true when each run fails st->check, with some group reaching its
 * fault; stops at the first run that does not. A set-up error or an interrupt sets st->stop. */
bool shrink_trial(struct shrink_state *st, const struct scenario *sc);
/* The same with `runs` runs instead of K. */
bool shrink_trial_runs(struct shrink_state *st, const struct scenario *sc, unsigned runs);

/* The check the first run of the confirmation failed (trial.c): alive when it failed (a dead
 * server fails the rest too), else the first failed one. */
void shrink_pick_check(const struct scenario_result *res, char *check, size_t len);

/* Candidate kinds (search.c says which, in the order tried). */
#define SHRINK_CANDIDATE_KINDS 24

/* Candidate kind `kind` applied to group gi of best (scenario-wide kinds: gi 0) into cand
 * (search.c): true when made, false when it would change nothing (no cand then). */
bool shrink_candidate(const struct scenario *best, unsigned kind, size_t gi, struct scenario *cand);
/* What kind `kind` does, for the progress line ("count halved"), and whether it is about the
 * scenario (gi 0 stands for no group) rather than a group. */
const char *shrink_candidate_what(unsigned kind);
bool shrink_candidate_scenario_wide(unsigned kind);

/* repro_write.c: the standalone reproducer of sc, for the check that fails. 0 or -errno. */
int shrink_write_repro(FILE *out, const struct scenario *sc, const struct run_options *opt,
                       const char *check);

/* ---- captures (flows.c, cut.c, capture_out.c) --------------------------------------- */

/* A part of a capture: some of its flows, each with some of its client segments (bytes packed,
 * times kept), moved so the first starts at 0; set and its flows owned (replay_set_free). */
struct shrink_cut {
    struct replay_set set;
    size_t *orig; /* orig[i]: flow i's index in the capture read */
};

/* All of set (copied). 0, or -1 (no memory). */
int shrink_cut_from(const struct replay_set *set, struct shrink_cut *out);
/* From's flows flows[0..n) (all n when flows is NULL), the one of index seg_flow (an index
 * of from; SIZE_MAX: none) cut to its segments segs[0..nsegs), in order. 0, or -1. */
int shrink_cut_make(const struct shrink_cut *from, const size_t *flows, size_t n, size_t seg_flow,
                    const size_t *segs, size_t nsegs, struct shrink_cut *out);
void shrink_cut_free(struct shrink_cut *cut);
unsigned long long shrink_set_segments(const struct replay_set *set);
/* "2 flow(s), 2 segment(s), speed max": the size shown in progress lines. */
void shrink_cut_describe(const struct shrink_cut *cut, char *out, size_t len);

/* The cut's flows as a scenario file's groups (flows with the same bytes, start and end in
 * one group), into out (free with scenario_free). 0; -1 with why in why (a flow a
 * scenario client cannot do as captured: nothing is written then) (capture_out.c). */
int shrink_cut_scenario(const struct shrink_cut *cut, struct scenario *out, char *why, size_t len);

/* flows.txt, minimal.ini and repro.c (where the flows can be expressed), minimal.pcap (a
 * failing run of the cut, recorded) (capture_out.c). 0 or 2. */
int shrink_capture_write(struct shrink_state *st, const struct replay_set *orig,
                         const struct shrink_cut *best);

#endif
