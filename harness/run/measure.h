/* measure: what the harness reads about the target from outside (/proc and sock_diag) and
 * writes into the scenario's samples, for checks.c to judge. A reading that fails leaves a
 * reason in the samples (s->fds_unknown...), so the check says "not checked", never "ok". */
#ifndef CONNFAULT_MEASURE_H
#define CONNFAULT_MEASURE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "checks.h"
#include "procfs.h"
#include "target.h"

/* The user's words for a failed /proc read (rc: -errno). */
const char *measure_errno_reason(int rc);

/* One walk of the target's fd tables: its fd counts (and the peak), and, when sockets is not
 * NULL, the TCP states of its sockets (*sockets_rc: 0 or -errno). Returns 0 or -errno. */
int measure_sample(pid_t pid, struct scenario_samples *s, struct fd_counts *fds,
                   struct tcp_states *sockets, int *sockets_rc);

/* Before the faults: fd counts once they hold still, and anonymous memory. */
void measure_baseline(pid_t pid, struct scenario_samples *s);

/* After the settle phase: fds, socket states and anonymous memory at the end (the verdict is
 * on the state at the end, not on the last periodic sample). measure_final_fds also records
 * how long the wait since s->settle_start_ms lasted, and, if the fds are back but no sample
 * during the wait saw it, that they were back by then; and, with e, which of the target's
 * sockets are held by the engine's clients (s->held, see measure_classify_held). */
struct engine;
void measure_final_fds(pid_t pid, const struct engine *e, struct scenario_samples *s);

/* Of the target's sockets (inodes, each once), those the server has not been told are closed
 * (not CLOSE_WAIT) and that are held: counted into out. Held by a live client or after the
 * peer vanished, when the peer is one of peers (a snapshot from engine_peers; age: since it
 * connected); after the peer vanished also when the socket is ESTABLISHED and its loopback peer
 * has no socket left in the netns (or only a TIME_WAIT one) (age: since the server last heard from
 * it; the engine never knew of such a peer, or forgot it). out->oldest_s: the oldest's age at now.
 * Needs the TCP tables of the netns the target's sockets are in. 0 (out->known set), or -errno
 * (out->known false). */
struct engine_peer;
struct sockdiag_sock;
int measure_classify_held(const uint64_t *inodes, size_t n, const struct engine_peer *peers,
                          size_t npeers, uint64_t now, struct held_counts *out);

/* measure_classify_held on a table already read (rows: sockdiag_tcp_table_all's, sorted by
 * inode), without I/O: tests give it made-up rows. Returns 0. */
int measure_classify_rows(const uint64_t *inodes, size_t n, const struct engine_peer *peers,
                          size_t npeers, const struct sockdiag_sock *rows, size_t nrows,
                          uint64_t now, struct held_counts *out);

/* What the target's sockets to e's clients are now (one scan and one snapshot): for the start
 * of the settle phase, so a pass can say what was released. out->known false on failure. */
void measure_held(pid_t pid, const struct engine *e, struct held_counts *out);
void measure_final_memory(pid_t pid, struct scenario_samples *s);

/* The CPU the target's process tree uses after the faults, over up to CHECKS_CPU_WINDOWS
 * consecutive windows of window_ms: measuring ends at the first window in which it was busy
 * (running or waiting for a CPU) less than threshold_pct (it is idle, or cooled after a flush)
 * or after the last (it spins). */
struct cpu_window {
    uint64_t window_ms, start_ms, end_ms; /* the current window */
    double threshold_pct;
    /* per process: a child that exits cannot wrap the figure (16 KiB each) */
    struct procfs_cpu_sample at_start, at_end;
    int rc; /* 0, or -errno of the first failed reading */
    bool done;
};
void measure_cpu_begin(struct cpu_window *w, pid_t pid, uint64_t now, uint64_t window_ms,
                       double threshold_pct);
/* Call often. At the end of each window it adds the window to s->cpu_windows_pct and
 * s->cpu_windows_busy_pct and sets s->cpu_pct (the lowest busy %), or s->cpu_unknown; returns
 * true on the call that ends the last. */
bool measure_cpu_end(struct cpu_window *w, pid_t pid, uint64_t now, struct scenario_samples *s);
/* measure_cpu_begin without reading /proc: w->at_start is the caller's (tests). */
void measure_cpu_begin_at(struct cpu_window *w, uint64_t now, uint64_t window_ms,
                          double threshold_pct);
/* The end of one window from a sample taken at now (measure_cpu_end's rule, without /proc:
 * tests give it made-up samples). Returns w->done. */
bool measure_cpu_step(struct cpu_window *w, const struct procfs_cpu_sample *at_end, uint64_t now,
                      struct scenario_samples *s);

/* The kernel's TcpExt counters of the target's netns (read through its pid) at the start and
 * the end of the fault phase: s->kernel.rise, and the backlog of the listener on port.
 * s->kernel.known false when either reading failed; own_netns: the target is in connfault's
 * own network namespace (the sandbox). */
void measure_kernel_begin(pid_t pid, bool own_netns, struct scenario_samples *s);
void measure_kernel_end(pid_t pid, int port, struct scenario_samples *s);

/* Checks that cannot be made once the target is gone say so. */
void measure_target_gone(struct target *t, struct scenario_samples *s);

#endif
