/* measure: readings of the target from outside (see measure.h). */
#include "measure.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "engine.h"
#include "procfs.h"
#include "run_internal.h"
#include "sockdiag.h"

/* The baseline waits at most this long for the fd count to hold still. */
#define MEASURE_BASELINE_MAX_MS 1000

const char *measure_errno_reason(int rc)
{
    switch (-rc) {
    case EACCES:
    case EPERM:
        return "no access to the target's /proc entries (run as its user or as root)";
    case ESRCH:
        return "the target exited";
    default:
        return "could not read /proc";
    }
}

int measure_sample(pid_t pid, struct scenario_samples *s, struct fd_counts *fds,
                   struct tcp_states *sockets, int *sockets_rc)
{
    uint64_t *inodes = NULL;
    size_t n = 0;
    int rc = procfs_tree_scan(pid, fds, sockets ? &inodes : NULL, &n);
    if (rc == 0 && fds->total > s->fds_peak)
        s->fds_peak = fds->total;
    if (sockets)
        *sockets_rc = rc < 0 ? rc : sockdiag_tcp_states(inodes, n, sockets);
    free(inodes);
    return rc;
}

/* Wait until the fd count holds still (the first probe's connection is closed on the
 * server side a moment after ours), bounded. */
static int baseline_fds(pid_t pid, struct scenario_samples *s)
{
    struct fd_counts prev, cur;
    int rc = procfs_tree_fd_counts(pid, &prev);
    uint64_t deadline = engine_now_ms() + MEASURE_BASELINE_MAX_MS;
    while (rc == 0 && engine_now_ms() < deadline) {
        struct timespec ts = {0, RUN_FD_SAMPLE_MS * 1000000L};
        nanosleep(&ts, NULL); /* sampling interval between two reads, not a wait for a result */
        rc = procfs_tree_fd_counts(pid, &cur);
        if (rc == 0 && cur.total == prev.total)
            break;
        prev = cur;
    }
    if (rc < 0) {
        s->fds_unknown = measure_errno_reason(rc);
        return rc;
    }
    s->fds_baseline = prev;
    s->fds_peak = prev.total;
    return 0;
}

void measure_baseline(pid_t pid, struct scenario_samples *s)
{
    baseline_fds(pid, s);
    uint64_t rss = 0;
    if (procfs_tree_rss_kb(pid, &rss) == 0)
        s->rss_baseline_kb = rss;
    else
        s->memory_unknown = "cannot read the target's RSS from /proc";
}

void measure_final_fds(pid_t pid, struct scenario_samples *s)
{
    int sockets_rc = 0;
    if (measure_sample(pid, s, &s->fds_final, &s->sockets_final, &sockets_rc) < 0 &&
        !s->fds_unknown)
        s->fds_unknown = "could not read the target's fds";
    if (sockets_rc < 0 && !s->sockets_unknown)
        s->sockets_unknown = "could not read the target's socket states";
}

void measure_final_rss(pid_t pid, struct scenario_samples *s)
{
    uint64_t rss = 0;
    if (!s->memory_unknown && procfs_tree_rss_kb(pid, &rss) == 0)
        s->rss_final_kb = rss;
    else if (!s->memory_unknown)
        s->memory_unknown = "cannot read the target's RSS from /proc";
}

void measure_cpu_begin(struct cpu_window *w, pid_t pid, uint64_t now, uint64_t window_ms)
{
    w->start_ms = now;
    w->end_ms = now + window_ms;
    w->cpu0_ns = 0;
    w->rc = procfs_tree_cpu_ns(pid, &w->cpu0_ns);
    w->done = false;
}

bool measure_cpu_end(struct cpu_window *w, pid_t pid, uint64_t now, struct scenario_samples *s)
{
    if (w->done || now < w->end_ms)
        return false;
    uint64_t cpu1;
    if (w->rc == 0)
        w->rc = procfs_tree_cpu_ns(pid, &cpu1);
    if (w->rc == 0) {
        s->cpu_window_s = (double)(now - w->start_ms) / 1000.0;
        s->cpu_pct = (double)(cpu1 - w->cpu0_ns) / 1e6 / (double)(now - w->start_ms) * 100.0;
    } else {
        s->cpu_unknown = measure_errno_reason(w->rc);
    }
    w->done = true;
    return true;
}

void measure_target_gone(struct target *t, struct scenario_samples *s)
{
    static const char gone[] = "the target exited";
    s->target_exited = true;
    target_describe_exit(t, s->exit_description, sizeof(s->exit_description));
    target_last_log_line(t, s->last_log_line, sizeof(s->last_log_line));
    s->fds_unknown = s->fds_unknown ? s->fds_unknown : gone;
    s->sockets_unknown = s->sockets_unknown ? s->sockets_unknown : gone;
    s->cpu_unknown = s->cpu_unknown ? s->cpu_unknown : gone;
    s->memory_unknown = s->memory_unknown ? s->memory_unknown : gone;
}
