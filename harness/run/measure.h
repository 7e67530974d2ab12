/* measure: what the harness reads about the target from outside (/proc and sock_diag) and
 * writes into the scenario's samples, for checks.c to judge. A reading that fails leaves a
 * reason in the samples (s->fds_unknown...), so the check says "not checked", never "ok". */
#ifndef CONNFAULT_MEASURE_H
#define CONNFAULT_MEASURE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "checks.h"
#include "target.h"

/* The user's words for a failed /proc read (rc: -errno). */
const char *measure_errno_reason(int rc);

/* One walk of the target's fd tables: its fd counts (and the peak), and, when sockets is not
 * NULL, the TCP states of its sockets (*sockets_rc: 0 or -errno). Returns 0 or -errno. */
int measure_sample(pid_t pid, struct scenario_samples *s, struct fd_counts *fds,
                   struct tcp_states *sockets, int *sockets_rc);

/* Before the faults: fd counts once they hold still, and RSS. */
void measure_baseline(pid_t pid, struct scenario_samples *s);

/* After the settle phase: fds, socket states and RSS at the end (the verdict is on the state
 * at the end, not on the last periodic sample). */
void measure_final_fds(pid_t pid, struct scenario_samples *s);
void measure_final_rss(pid_t pid, struct scenario_samples *s);

/* The CPU the target's process tree uses over a window after the faults. */
struct cpu_window {
    uint64_t start_ms, end_ms, cpu0_ns;
    int rc; /* 0, or -errno of the first failed reading */
    bool done;
};
void measure_cpu_begin(struct cpu_window *w, pid_t pid, uint64_t now, uint64_t window_ms);
/* Once the window is over: s->cpu_pct (or s->cpu_unknown). True on the call that ends it. */
bool measure_cpu_end(struct cpu_window *w, pid_t pid, uint64_t now, struct scenario_samples *s);

/* Checks that cannot be made once the target is gone say so. */
void measure_target_gone(struct target *t, struct scenario_samples *s);

#endif
