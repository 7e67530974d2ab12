/* shrink: `connfault shrink`: from a scenario that makes the target fail to the smallest
 * scenario found that still fails the same check, written as a scenario file (minimal.ini) and
 * a standalone C reproducer (repro.c). Built on run.h's library call: every trial runs the
 * candidate K times, each against a fresh target when the harness starts it.
 * Files: shrink.c the command (confirm, search loop, output), search.c the candidates,
 * trial.c one trial, repro_write.c the standalone program (repro_template.h), record.c
 * minimal.pcap; for a capture: flows.c the search (flows, then segments, then pace), cut.c its
 * candidates, capture_out.c the kept flows as a scenario, capture_write.c its files. */
#ifndef CONNFAULT_SHRINK_H
#define CONNFAULT_SHRINK_H

#include <stdint.h>

#include "run.h"

struct shrink_options {
    const char *check;      /* the check that must keep failing; NULL: what the first run fails */
    unsigned confirm;       /* K: a candidate fails only if it fails in K of K runs (>= 1) */
    unsigned max_trials;    /* candidates tried at most (the confirmation is not counted) */
    uint64_t time_limit_ms; /* no trial starts after this long */
    const char *out_dir;    /* NULL: ./connfault-shrink/NAME-SEED */
};

#define SHRINK_DEFAULT_CONFIRM    3
#define SHRINK_DEFAULT_MAX_TRIALS 60
#define SHRINK_DEFAULT_TIME_MS    300000
/* The minimal scenario must then fail in max(2K, this) more runs before it is written. */
#define SHRINK_FINAL_MIN 4

/* Shrink the scenario `name` (a built-in name or a file) against opt's target. Progress lines
 * on stderr, the files' paths on stdout. Returns the exit status: 0 a reproducer was written,
 * 1 the scenario does not fail K of K runs (nothing to shrink), 2 usage or set-up error, 130
 * interrupted (the best reproducer so far is written first, when there is one). */
int shrink_main(const struct run_options *opt, const struct shrink_options *so, const char *name);

/* Shrink a capture that makes the target fail (flows.c): ddmin over its flows, then over each
 * kept flow's client segments (none at all tried first), then the pace (no waits, else twice
 * set->speed and faster while it fails). Writes flows.txt (the flows and segments kept),
 * minimal.ini and repro.c when every kept flow can be a scenario client (else says why not),
 * and minimal.pcap (a failing run of the kept flows, recorded). The same exit statuses. */
struct replay_set;
int shrink_capture_main(const struct run_options *opt, const struct shrink_options *so,
                        const struct replay_set *set);

#endif
