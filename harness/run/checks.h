/* checks: turn what was measured during a scenario into the six named checks
 * (accepting, alive, fds, sockets, cpu, memory) and a verdict. Pure: no I/O, so every
 * rule here is unit-tested. A measurement that could not be made yields "not checked",
 * never a pass. */
#ifndef CONNFAULT_CHECKS_H
#define CONNFAULT_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "procfs.h"
#include "result.h"
#include "sockdiag.h"

/* A spin stays hot, a flush cools: cpu fails only if this many consecutive windows after the
 * faults are all over the threshold (a correct server filling dead peers' socket buffers burns
 * a second or so, then goes quiet). Measuring stops at the first window below it. */
#define CHECKS_CPU_WINDOWS 3
/* Most regular files a server may keep open after the faults as a cache of the files it
 * served (one fd per file, not per client) and pass the fds check (checks.c). */
#define CHECKS_FILE_CACHE_MAX 8

struct check_limits {
    double cpu_max_pct;       /* of one core, while idle after the faults */
    uint64_t memory_slack_kb; /* allowed growth of anonymous memory over the baseline */
    uint64_t probe_timeout_ms;
    uint64_t grace_ms;
};

/* The target's sockets by what the harness knows of their peers (measure_classify_held): held
 * by a fault client still connected (stalling, or cut off and holding), held after their peer
 * vanished (a silent drop or a cable pull). The other leftovers (CLOSE_WAIT, peers that closed
 * or reset, pipes, files) are leaked. With known false the sockets could not be told apart:
 * every leftover reads as leaked. */
struct held_counts {
    bool known;
    unsigned live, vanished;
    double oldest_s; /* age of the oldest held connection (since it connected) */
};

/* What the kernel of the target's network namespace counted during the fault phase (the rise
 * of its TcpExt counters, procfs_read_tcpext): a listen backlog that overflowed, and the resets
 * the kernel itself sent for SYN cookies that failed, which the server never saw. */
struct kernel_counts {
    bool known;
    bool own_netns; /* the target is in connfault's own netns: the counts are its and ours
                       alone, not every process's on the machine (only then excuse resets) */
    struct procfs_tcpext start, rise; /* start: at the start of the fault phase */
    unsigned backlog;                 /* of the target's listener; 0: unknown */
};

struct scenario_samples {
    /* accepting */
    unsigned probes, probes_ok;
    uint64_t *latencies_us; /* of every probe, ok or not */
    size_t nlatencies;
    char first_failure[200];
    double first_failure_at_s; /* since the faults started; negative: before */
    /* release = end (the fault clients hold every fd, then let go at the end of the fault
     * phase): probes started before the release are only counted here, by outcome (answered,
     * answered 503, still waiting at their deadline: the queue, or another failure); probes,
     * probes_ok and the latencies are those started after it, and each must be answered from
     * the first one that is (recovered_s) on. */
    bool release_end;
    struct {
        unsigned probes, ok, status_503, timed_out, other;
        char first_other[200];
    } while_held;
    unsigned released_clients;
    double released_at_s;            /* since the faults started */
    double recovered_s;              /* release to the first probe answered; < 0: none */
    unsigned failed_before_recovery; /* probes after the release that failed before it */
    bool cpu_while_held; /* the cpu windows are those measured before the release, and hot */
    /* alive */
    bool target_exited;
    char exit_description[160];
    char last_log_line[200];
    /* fds */
    const char *fds_unknown; /* why they could not be read, or NULL */
    struct fd_counts fds_baseline, fds_final;
    unsigned fds_peak;
    double fds_settled_s;     /* time after the faults until back at baseline; < 0: never */
    uint64_t settle_start_ms; /* engine_now_ms() when the faults ended and the wait began */
    double settle_waited_s;   /* how long it was waited for, to the final count; < 0: unknown */
    /* what the sockets left over at the end are (held), and what the target held when the
     * faults ended (held_after_faults): see struct held_counts */
    struct held_counts held, held_after_faults;
    /* the regular files open at the baseline and at the end (read only when more files are
     * open than at the baseline): a cache of served files is told from a leak by them */
    struct procfs_regular_files files_baseline, files_final;
    bool files_known;
    /* sockets */
    const char *sockets_unknown;
    struct tcp_states sockets_final;
    /* cpu */
    const char *cpu_unknown;
    /* each consecutive window after the faults, in % of a core: the CPU the tree got, and the
     * time it was running or waiting for a CPU (a spin on a loaded machine gets little CPU but
     * is runnable all the time; an idle server is neither) */
    double cpu_windows_pct[CHECKS_CPU_WINDOWS], cpu_windows_busy_pct[CHECKS_CPU_WINDOWS];
    unsigned cpu_nwindows;
    double cpu_pct;      /* the judged figure: the lowest busy % of the windows */
    double cpu_window_s; /* the length of one window */
    struct kernel_counts kernel;
    /* memory: anonymous memory of the tree, each page once (procfs_tree_anon_kb) */
    const char *memory_unknown;
    uint64_t anon_baseline_kb, anon_final_kb;
};

/* Fill res->checks and res->verdict/reason from the samples. */
void checks_evaluate(const struct scenario_samples *s, const struct check_limits *lim,
                     struct scenario_result *res);

struct scenario;
struct engine_group_evidence;

/* responses (check_responses.c): for a scenario with a group that has `expect`, one more check
 * after checks_evaluate's: every client of such a group that reached its fault (res->groups[i],
 * filled by run/evidence.c) must have read its expected whole responses (ev[i], the engine's
 * evidence of group i), but for the resets before any byte the kernel sent itself (kernel:
 * check_kernel_resets). Failed: the verdict is fail and the summary joins the reason. Not
 * checked, with why: no client reached its fault, or the request is not HTTP. Without any
 * `expect` the check is not listed at all. */
void check_responses(const struct scenario *sc, const struct engine_group_evidence *ev,
                     const struct kernel_counts *kernel, struct scenario_result *res);

/* Of reset_unread clients reset before reading any byte, how many the kernel reset itself
 * (SYN cookies that failed: kernel->rise.syncookies_failed), never more than either; 0 when
 * kernel is NULL or unknown, or not of connfault's own netns (shared, the counters count other
 * processes' connections too). The responses check excuses that many and says so. */
uint64_t check_kernel_resets(uint64_t reset_unread, const struct kernel_counts *kernel);

#endif
