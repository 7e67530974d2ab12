/* exhaustion: did a scenario with rlimit_nofile (fd-exhaustion) bring the target to the point
 * where it could take no more clients? Its groups' evidence ("connected") cannot say: behind a
 * small listen backlog the kernel completes handshakes (SYN cookies) for connections the server
 * never accepts. So during the fault phase the target's fds and its listener's accept queue
 * are sampled, and the fault happened when either
 *   (a) out of fds: one process's fds came within EXHAUST_NEAR_LIMIT of its RLIMIT_NOFILE
 *       (accept() fails with EMFILE there), or
 *   (b) stopped accepting: the tree's fds stopped rising (within EXHAUST_FLAT_SLACK) while
 *       connections waited in its accept queue, for EXHAUST_PLATEAU_MS or more up to the end
 *       of the fault phase: a connection limit of its own below the fd limit (lighttpd's
 *       server.max-connections), the fault met and answered.
 * Neither (still accepting when the fault phase ended; a process per connection, none of which
 * comes near its limit): the verdict is `error`, with the cause and the fix. */
#ifndef CONNFAULT_EXHAUSTION_H
#define CONNFAULT_EXHAUSTION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "procfs.h"
#include "result.h"

#define EXHAUST_NEAR_LIMIT 4   /* fds this close to RLIMIT_NOFILE: out of fds */
#define EXHAUST_PLATEAU_MS 500 /* fds flat with connections waiting this long: stopped */
/* Fds may move this much on a plateau (a file opened for a response, a log rotated) */
#define EXHAUST_FLAT_SLACK 2
/* A tree of this many processes at one sample: a process per connection (or a pool of them),
 * each with its own RLIMIT_NOFILE (nginx has 2: master and worker) */
#define EXHAUST_MANY_PROCESSES 8

/* What the fault phase showed, sample by sample (exhaust_sample); pure data. */
struct exhaust_track {
    bool on;
    unsigned samples;
    unsigned limit_default; /* the scenario's rlimit_nofile */
    unsigned limit;         /* RLIMIT_NOFILE of the process that held the most (0: unread) */
    unsigned peak_one;      /* most fds one process held */
    pid_t peak_pid;
    unsigned tree_peak;      /* most fds the tree held (each socket once) */
    unsigned processes_peak; /* most processes in the tree at one sample */
    uint64_t start_ms, last_ms;
    double peak_at_s; /* since the fault phase started, when peak_one was first reached */
    /* the listener: most connections waiting, and its backlog (queue_known: read at least once) */
    bool queue_known;
    unsigned queue_peak, backlog;
    const char *queue_why; /* why it could not be read, or NULL */
    /* the stretch going on now: connections waiting at every sample, tree fds within
     * EXHAUST_FLAT_SLACK of flat_base; flat_since_ms 0: none */
    uint64_t flat_since_ms;
    unsigned flat_base, flat_queue_max, flat_queue_last;
    bool flat_full; /* the queue was full (queued >= backlog) at a sample of the stretch */
    unsigned last_queue;
};

/* Starts a track. */
void exhaust_begin(struct exhaust_track *x, unsigned rlimit_nofile, uint64_t now);

/* One sample of the fault phase: the tree's fd counts (procfs_tree_scan's, with most_in_one),
 * the listener's queue (queue_rc 0, or -errno: then queued and backlog are not looked at), and
 * the RLIMIT_NOFILE of counts->most_pid (limit 0: unread). Pure. */
void exhaust_sample(struct exhaust_track *x, const struct fd_counts *counts, unsigned limit,
                    int queue_rc, unsigned queued, unsigned backlog, uint64_t now);

/* exhaust_sample with what else it needs read now: the queue of the listener on port
 * (sock_diag) and, at a new peak, the RLIMIT_NOFILE of the process holding it (/proc). */
void exhaust_read(struct exhaust_track *x, const struct fd_counts *counts, int port, uint64_t now);

/* The fact for the report, from the samples: out->how, its numbers and its line (a cause and
 * fix when not reached). kernel: the rise of the kernel's counters over the fault phase
 * (measure_kernel_end; SYN cookies and accept-queue drops name connections the server never
 * saw), or NULL; duration_s: the scenario's duration, for the fix; connected: how many fault
 * clients saw their connect succeed. Pure. */
struct kernel_counts;
void exhaust_judge(const struct exhaust_track *x, const struct kernel_counts *kernel,
                   double duration_s, uint64_t connected, struct exhaustion_evidence *out);

#endif
