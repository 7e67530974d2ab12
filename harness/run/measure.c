/* measure: readings of the target from outside (see measure.h). */
#include "measure.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
    s->files_known = procfs_tree_regular_files(pid, &s->files_baseline) == 0;
    s->fds_peak = prev.total;
    return 0;
}

void measure_baseline(pid_t pid, struct scenario_samples *s)
{
    baseline_fds(pid, s);
    uint64_t kb = 0;
    if (procfs_tree_anon_kb(pid, &kb) == 0)
        s->anon_baseline_kb = kb;
    else
        s->memory_unknown = "cannot read the target's memory from /proc";
}

/* The IPv4 address of a peer (an IPv4-mapped IPv6 one too: a server listening on [::]). */
static bool peer_ipv4(const struct sockdiag_endpoint *end, struct in_addr *out)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (end->family == AF_INET) {
        memcpy(out, end->addr, 4);
        return true;
    }
    if (end->family == AF_INET6 && memcmp(end->addr, mapped, sizeof(mapped)) == 0) {
        memcpy(out, end->addr + 12, 4);
        return true;
    }
    return false;
}

/* One held socket, of age_s: counted, and the oldest remembered. */
static void held_count(bool live, double age_s, struct held_counts *out)
{
    if (live)
        out->live++;
    else
        out->vanished++;
    if (age_s > out->oldest_s)
        out->oldest_s = age_s;
}

/* An ESTABLISHED socket the engine has no row for, whose loopback peer has no socket left in
 * the netns that could still tell it anything: none in any state, or one in TIME_WAIT (a closed
 * connection of the same addresses and ports: it only ever re-acknowledges a FIN). The peer
 * vanished and the server was never told (a FIN would have made it CLOSE_WAIT, a reset would
 * have taken it out of the table). Seen when a burst overflows a small listen backlog: the
 * kernel hands the server a connection (from a SYN cookie, say) whose client had already closed
 * or given up. */
static bool peer_vanished(const struct sockdiag_sock *row, const struct sockdiag_sock *all,
                          size_t nall)
{
    if (row->state != TCP_ESTABLISHED || !sockdiag_endpoint_is_loopback(&row->peer))
        return false;
    const struct sockdiag_sock *peer = sockdiag_table_find_pair(all, nall, &row->peer, &row->local);
    return !peer || peer->state == TCP_TIME_WAIT;
}

int measure_classify_rows(const uint64_t *inodes, size_t n, const struct engine_peer *peers,
                          size_t npeers, const struct sockdiag_sock *rows, size_t nrows,
                          uint64_t now, struct held_counts *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        const struct sockdiag_sock *row = sockdiag_table_find(rows, nrows, inodes[i]);
        struct in_addr peer;
        /* CLOSE_WAIT: its peer closed and the server never did, whoever the peer is */
        if (!row || row->state == TCP_LISTEN || row->state == TCP_CLOSE_WAIT)
            continue;
        const struct engine_peer *p = peer_ipv4(&row->peer, &peer)
                                          ? engine_peer_find(peers, npeers, peer, row->peer.port)
                                          : NULL;
        if (p)
            held_count(p->state == ENGINE_PEER_LIVE,
                       now > p->connected_ms ? (double)(now - p->connected_ms) / 1000.0 : 0, out);
        else if (peer_vanished(row, rows, nrows))
            held_count(false, row->silent_ms > 0 ? (double)row->silent_ms / 1000.0 : 0, out);
    }
    out->known = true;
    return 0;
}

int measure_classify_held(const uint64_t *inodes, size_t n, const struct engine_peer *peers,
                          size_t npeers, uint64_t now, struct held_counts *out)
{
    struct sockdiag_sock *rows = NULL;
    size_t nrows = 0;
    memset(out, 0, sizeof(*out));
    /* one dump of every socket: the server's ends and their peers' at the same moment */
    int rc = sockdiag_tcp_table_all(&rows, &nrows);
    if (rc == 0)
        measure_classify_rows(inodes, n, peers, npeers, rows, nrows, now, out);
    free(rows);
    return rc;
}

/* Which of the target's sockets its fault clients hold (measure_classify_held), from the
 * engine's peers at this moment. Unknown on any failure: the leftovers then read as leaked. */
static void held_classify(const uint64_t *inodes, size_t n, const struct engine *e,
                          struct held_counts *out)
{
    struct engine_peer *peers = NULL;
    size_t npeers = 0;
    out->known = false;
    if (e && engine_peers(e, &peers, &npeers) == 0)
        measure_classify_held(inodes, n, peers, npeers, engine_now_ms(), out);
    free(peers);
}

void measure_held(pid_t pid, const struct engine *e, struct held_counts *out)
{
    uint64_t *inodes = NULL;
    size_t n = 0;
    struct fd_counts counts;
    out->known = false;
    if (procfs_tree_scan(pid, &counts, &inodes, &n) == 0)
        held_classify(inodes, n, e, out);
    free(inodes);
}

void measure_final_fds(pid_t pid, const struct engine *e, struct scenario_samples *s)
{
    uint64_t *inodes = NULL;
    size_t n = 0;
    int rc = procfs_tree_scan(pid, &s->fds_final, &inodes, &n);
    int sockets_rc = rc < 0 ? rc : sockdiag_tcp_states(inodes, n, &s->sockets_final);
    if (rc == 0 && s->fds_final.total > s->fds_peak)
        s->fds_peak = s->fds_final.total;
    if (rc == 0 && sockets_rc == 0)
        held_classify(inodes, n, e, &s->held);
    s->files_known = s->files_known && rc == 0 && s->fds_final.files > s->fds_baseline.files &&
                     procfs_tree_regular_files(pid, &s->files_final) == 0;
    free(inodes);
    if (rc < 0 && !s->fds_unknown)
        s->fds_unknown = "could not read the target's fds";
    if (sockets_rc < 0 && !s->sockets_unknown)
        s->sockets_unknown = "could not read the target's socket states";
    uint64_t now = engine_now_ms();
    s->settle_waited_s = s->settle_start_ms && now >= s->settle_start_ms
                             ? (double)(now - s->settle_start_ms) / 1000.0
                             : -1;
    /* back, though the wait ended between two samples: back by the final count */
    if (!s->fds_unknown && s->fds_final.total <= s->fds_baseline.total && s->fds_settled_s < 0)
        s->fds_settled_s = s->settle_waited_s;
}

void measure_final_memory(pid_t pid, struct scenario_samples *s)
{
    uint64_t kb = 0;
    if (!s->memory_unknown && procfs_tree_anon_kb(pid, &kb) == 0)
        s->anon_final_kb = kb;
    else if (!s->memory_unknown)
        s->memory_unknown = "cannot read the target's memory from /proc";
}

static void cpu_window_next(struct cpu_window *w, uint64_t now)
{
    w->start_ms = now;
    w->end_ms = now + w->window_ms;
}

void measure_cpu_begin_at(struct cpu_window *w, uint64_t now, uint64_t window_ms,
                          double threshold_pct)
{
    w->window_ms = window_ms;
    w->threshold_pct = threshold_pct;
    cpu_window_next(w, now);
    w->rc = 0;
    w->done = false;
}

void measure_cpu_begin(struct cpu_window *w, pid_t pid, uint64_t now, uint64_t window_ms,
                       double threshold_pct)
{
    measure_cpu_begin_at(w, now, window_ms, threshold_pct);
    w->rc = procfs_tree_cpu_sample(pid, &w->at_start);
}

/* One window's figures into the samples; the judged figure is the lowest busy % so far. */
static void cpu_window_record(struct scenario_samples *s, double pct, double busy_pct,
                              double window_s)
{
    if (s->cpu_nwindows == 0 || busy_pct < s->cpu_pct)
        s->cpu_pct = busy_pct;
    s->cpu_windows_pct[s->cpu_nwindows] = pct;
    s->cpu_windows_busy_pct[s->cpu_nwindows++] = busy_pct;
    s->cpu_window_s = window_s;
}

/* A window in which the target got less than this much of a core is no spin, however long its
 * threads waited for a CPU. A busy loop gets its share even of a loaded machine (2 cores at load
 * 30: 6-7% of a core), while an idle server woken by probes waits a whole timeslice per wake-up
 * there and then runs for microseconds: lighttpd in epoll_wait was "running or waiting" 58% of
 * a window and used 0.0%, beside other tests at load 15-30. */
#define MEASURE_CPU_SPIN_MIN_USED_PCT 1.0

bool measure_cpu_step(struct cpu_window *w, const struct procfs_cpu_sample *at_end, uint64_t now,
                      struct scenario_samples *s)
{
    uint64_t elapsed_ms = now > w->start_ms ? now - w->start_ms : 1;
    double pct = (double)procfs_cpu_used_ns(&w->at_start, at_end) / 1e4 / (double)elapsed_ms;
    double busy = (double)procfs_cpu_busy_ns(&w->at_start, at_end) / 1e4 / (double)elapsed_ms;
    busy = busy > pct ? busy : pct; /* the two clocks differ a little: busy is never less */
    if (pct < MEASURE_CPU_SPIN_MIN_USED_PCT)
        busy = pct; /* it waited for wake-ups' timeslices, it did not spin */
    cpu_window_record(s, pct, busy, (double)elapsed_ms / 1000.0);
    w->done = busy < w->threshold_pct || s->cpu_nwindows == CHECKS_CPU_WINDOWS;
    if (&w->at_start != at_end)
        w->at_start = *at_end;
    cpu_window_next(w, now);
    return w->done;
}

bool measure_cpu_end(struct cpu_window *w, pid_t pid, uint64_t now, struct scenario_samples *s)
{
    if (w->done || now < w->end_ms)
        return false;
    if (w->rc == 0)
        w->rc = procfs_tree_cpu_sample(pid, &w->at_end);
    if (w->rc < 0) {
        s->cpu_unknown = measure_errno_reason(w->rc);
        w->done = true;
        return true;
    }
    return measure_cpu_step(w, &w->at_end, now, s);
}

void measure_kernel_begin(pid_t pid, bool own_netns, struct scenario_samples *s)
{
    s->kernel.known = procfs_read_tcpext(pid, &s->kernel.start) == 0;
    s->kernel.own_netns = own_netns;
}

/* A counter's rise; a counter never goes down, but a wrap or a reset reads as no rise. */
static uint64_t counter_rise(uint64_t start, uint64_t end)
{
    return end > start ? end - start : 0;
}

void measure_kernel_end(pid_t pid, int port, struct scenario_samples *s)
{
    struct procfs_tcpext end, *a = &s->kernel.start, *r = &s->kernel.rise;
    unsigned queued = 0;
    if (!s->kernel.known || procfs_read_tcpext(pid, &end) < 0) {
        s->kernel.known = false;
        return;
    }
    r->listen_overflows = counter_rise(a->listen_overflows, end.listen_overflows);
    r->listen_drops = counter_rise(a->listen_drops, end.listen_drops);
    r->syncookies_sent = counter_rise(a->syncookies_sent, end.syncookies_sent);
    r->syncookies_failed = counter_rise(a->syncookies_failed, end.syncookies_failed);
    if (sockdiag_listen_queue(port, &queued, &s->kernel.backlog) < 0)
        s->kernel.backlog = 0;
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
