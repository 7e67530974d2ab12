/* checks: the rules that decide each check, with the numbers behind them. */
#include "checks.h"
#include "sort_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <netinet/tcp.h>
#include <string.h>

static struct check_result *check_new(struct scenario_result *res, const char *name)
{
    struct check_result *c = &res->checks[res->nchecks++];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    return c;
}

static void check_not_checked(struct check_result *c, const char *why)
{
    char name[sizeof(c->name)];
    memcpy(name, c->name, sizeof(name)); /* summary and name share the struct: no overlap */
    c->status = CHECK_NOT_CHECKED;
    snprintf(c->summary, sizeof(c->summary), "%s: not checked: %s", name, why);
    check_add_str(c, "not_checked", why);
}

/* The median and the largest probe latency, in ms. */
static void latency_spread(const struct scenario_samples *s, double *p50, double *max)
{
    uint64_t *sorted = malloc(s->nlatencies * sizeof(*sorted) + 1);
    *p50 = *max = 0;
    if (sorted && s->nlatencies) {
        memcpy(sorted, s->latencies_us, s->nlatencies * sizeof(*sorted));
        qsort(sorted, s->nlatencies, sizeof(*sorted), cf_compare_u64);
        *p50 = (double)sorted[(s->nlatencies - 1) / 2] / 1000.0;
        *max = (double)sorted[s->nlatencies - 1] / 1000.0;
    }
    free(sorted);
}

/* "while 1000 fault clients held their connections, 4 probes: 2 answered, 0 answered 503, 2
 * still waiting at the 2000 ms deadline (in the accept queue), 0 otherwise failed" */
static void while_held_text(const struct scenario_samples *s, const struct check_limits *lim,
                            char *out, size_t size)
{
    snprintf(out, size,
             "while the fault clients held their connections (out of fds), %u probe%s: %u "
             "answered, %u answered 503, %u still waiting at the %llu ms deadline, %u otherwise "
             "failed%s%.120s%s",
             s->while_held.probes, s->while_held.probes == 1 ? "" : "s", s->while_held.ok,
             s->while_held.status_503, s->while_held.timed_out,
             (unsigned long long)lim->probe_timeout_ms, s->while_held.other,
             s->while_held.other ? " (first: " : "", s->while_held.first_other,
             s->while_held.other ? ")" : "");
}

/* release = end: a probe made while the fault clients hold every fd may be answered, refused
 * with a 503 or left waiting; after the release every probe from the first answered one on
 * must be answered (the server serves again, within the grace). */
static void check_accepting_released(const struct scenario_samples *s,
                                     const struct check_limits *lim, struct check_result *c)
{
    char held[400];
    while_held_text(s, lim, held, sizeof(held));
    check_add_int(c, "probes", s->probes);
    check_add_int(c, "probes_ok", s->probes_ok);
    check_add_int(c, "held_probes", s->while_held.probes);
    check_add_int(c, "held_probes_ok", s->while_held.ok);
    check_add_int(c, "held_probes_503", s->while_held.status_503);
    check_add_int(c, "held_probes_waiting", s->while_held.timed_out);
    check_add_int(c, "held_probes_other", s->while_held.other);
    check_add_int(c, "released_clients", s->released_clients);
    check_add_double(c, "released_at_s", s->released_at_s);
    check_add_double(c, "recovered_s", s->recovered_s);
    check_add_int(c, "failed_before_recovery", s->failed_before_recovery);
    bool recovered = s->recovered_s >= 0;
    unsigned failed_after = s->probes - s->probes_ok - s->failed_before_recovery;
    c->status = recovered && failed_after == 0 ? CHECK_OK : CHECK_FAILED;
    if (c->status == CHECK_OK)
        snprintf(c->summary, sizeof(c->summary),
                 "accepting: %.300s; after the release of %u clients at %+.1fs, answered again "
                 "%.1fs later (%u probes failed before), then %u/%u probes answered",
                 held, s->released_clients, s->released_at_s, s->recovered_s,
                 s->failed_before_recovery, s->probes_ok, s->probes - s->failed_before_recovery);
    else if (!recovered)
        snprintf(c->summary, sizeof(c->summary),
                 "accepting: after the release of %u clients at %+.1fs, none of %u probe%s was "
                 "answered (first failure: %.150s): the server does not serve again; %.200s",
                 s->released_clients, s->released_at_s, s->probes, s->probes == 1 ? "" : "s",
                 s->first_failure, held);
    else
        snprintf(c->summary, sizeof(c->summary),
                 "accepting: after the release of %u clients, answered again %.1fs later, then "
                 "%u of %u probes failed; %.300s",
                 s->released_clients, s->recovered_s, failed_after,
                 s->probes - s->failed_before_recovery, held);
}

/* A listen backlog that overflowed during the faults, with the kernel's numbers: "; the listen
 * backlog (5) overflowed during the faults: ListenOverflows +41, ListenDrops +41,
 * SyncookiesSent +30, SyncookiesFailed +3". A user must see that connections (a probe's too)
 * waited for a SYN retransmission or were reset by the kernel, not by the server. */
static void listen_overflow_text(const struct scenario_samples *s, struct check_result *c)
{
    const struct procfs_tcpext *r = &s->kernel.rise;
    if (!s->kernel.known ||
        !(r->listen_overflows || r->listen_drops || r->syncookies_sent || r->syncookies_failed))
        return;
    check_add_int(c, "listen_overflows", (int64_t)r->listen_overflows);
    check_add_int(c, "listen_drops", (int64_t)r->listen_drops);
    check_add_int(c, "syncookies_sent", (int64_t)r->syncookies_sent);
    check_add_int(c, "syncookies_failed", (int64_t)r->syncookies_failed);
    if (s->kernel.backlog)
        check_add_int(c, "listen_backlog", s->kernel.backlog);
    check_add_str(c, "kernel_counts_of", s->kernel.own_netns ? "own netns" : "shared netns");
    char backlog[32] = "";
    if (s->kernel.backlog)
        snprintf(backlog, sizeof(backlog), " (%u)", s->kernel.backlog);
    size_t used = strlen(c->summary);
    snprintf(c->summary + used, sizeof(c->summary) - used,
             "; the listen backlog%s overflowed during the faults: ListenOverflows +%llu, "
             "ListenDrops +%llu, SyncookiesSent +%llu, SyncookiesFailed +%llu%s",
             backlog, (unsigned long long)r->listen_overflows, (unsigned long long)r->listen_drops,
             (unsigned long long)r->syncookies_sent, (unsigned long long)r->syncookies_failed,
             s->kernel.own_netns ? ""
                                 : " (of the whole network namespace, shared with the "
                                   "machine's other processes)");
}

static void check_accepting_judged(const struct scenario_samples *s, const struct check_limits *lim,
                                   struct check_result *c)
{
    if (s->probes == 0) {
        check_not_checked(c, s->release_end ? "no probe was made after the fault clients were "
                                              "released"
                                            : "no probe was made");
        return;
    }
    double p50, max;
    latency_spread(s, &p50, &max);
    if (s->release_end) {
        check_add_double(c, "latency_p50_ms", p50);
        check_add_double(c, "latency_max_ms", max);
        check_accepting_released(s, lim, c);
        return;
    }
    check_add_int(c, "probes", s->probes);
    check_add_int(c, "probes_ok", s->probes_ok);
    check_add_double(c, "latency_p50_ms", p50);
    check_add_double(c, "latency_max_ms", max);
    check_add_int(c, "deadline_ms", (int64_t)lim->probe_timeout_ms);
    c->status = s->probes_ok == s->probes ? CHECK_OK : CHECK_FAILED;
    if (c->status == CHECK_OK) {
        snprintf(c->summary, sizeof(c->summary),
                 "accepting: %u/%u probes answered, latency p50 %.1f ms, max %.1f ms", s->probes_ok,
                 s->probes, p50, max);
    } else {
        check_add_str(c, "first_failure", s->first_failure);
        check_add_double(c, "first_failure_at_s", s->first_failure_at_s);
        snprintf(c->summary, sizeof(c->summary),
                 "accepting: %u/%u probes failed (deadline %llu ms); first at %+.1fs: %s; "
                 "latency p50 %.1f ms, max %.1f ms",
                 s->probes - s->probes_ok, s->probes, (unsigned long long)lim->probe_timeout_ms,
                 s->first_failure_at_s, s->first_failure, p50, max);
    }
}

static void check_accepting(const struct scenario_samples *s, const struct check_limits *lim,
                            struct scenario_result *res)
{
    struct check_result *c = check_new(res, "accepting");
    check_accepting_judged(s, lim, c);
    if (c->status != CHECK_NOT_CHECKED)
        listen_overflow_text(s, c);
}

static void check_alive(const struct scenario_samples *s, struct scenario_result *res)
{
    struct check_result *c = check_new(res, "alive");
    check_add_str(c, "exit", s->target_exited ? s->exit_description : "running");
    if (!s->target_exited) {
        c->status = CHECK_OK;
        snprintf(c->summary, sizeof(c->summary), "alive: still running");
        return;
    }
    c->status = CHECK_FAILED;
    if (s->last_log_line[0])
        check_add_str(c, "last_output", s->last_log_line);
    snprintf(c->summary, sizeof(c->summary), "alive: target %s%s%s%s", s->exit_description,
             s->last_log_line[0] ? " (last output: \"" : "", s->last_log_line,
             s->last_log_line[0] ? "\")" : "");
}

/* The leftovers (final above the baseline) split by what the harness knows of their peers:
 * sockets held by live clients, held after the peer vanished, and the other sockets: leaked
 * (the peer closed, reset or is gone, and the server never closed). Fds that are not sockets
 * (a file opened per request, a pipe) have no peer: they are "still open", not "leaked", since
 * a file served to a held client is held with it. Held ones never count past the leftovers (a
 * socket of the baseline cannot be a fault client's). */
struct leftovers {
    int total, held_live, held_vanished, leaked, other_open;
};

static struct leftovers leftovers_of(const struct scenario_samples *s)
{
    const struct fd_counts *b = &s->fds_baseline, *f = &s->fds_final;
    struct leftovers l = {.total = (int)f->total - (int)b->total};
    int sockets = (int)f->sockets - (int)b->sockets;
    if (s->held.known && l.total > 0) {
        int room = sockets < l.total ? sockets : l.total;
        room = room > 0 ? room : 0;
        l.held_live = (int)s->held.live < room ? (int)s->held.live : room;
        room -= l.held_live;
        l.held_vanished = (int)s->held.vanished < room ? (int)s->held.vanished : room;
    }
    l.leaked = sockets - l.held_live - l.held_vanished;
    l.leaked = l.leaked > 0 ? l.leaked : 0;
    l.other_open = l.total - l.held_live - l.held_vanished - l.leaked;
    l.other_open = l.other_open > 0 ? l.other_open : 0;
    return l;
}

/* "50 held by live clients (oldest 6.1s: ...); 3 leaked; 20 other fds still open (files +20)" */
static void leftovers_text(const struct scenario_samples *s, const struct check_limits *lim,
                           const struct leftovers *l, char *out, size_t size)
{
    const struct fd_counts *b = &s->fds_baseline, *f = &s->fds_final;
    char held[200] = "", leaked[48] = "", other[160] = "";
    int n = 0;
    if (l->held_live)
        n = snprintf(held, sizeof(held), "%d held by live clients", l->held_live);
    if (l->held_vanished && n >= 0 && (size_t)n < sizeof(held))
        n += snprintf(held + n, sizeof(held) - (size_t)n, "%s%d held after the peer vanished",
                      n ? ", " : "", l->held_vanished);
    if (n > 0 && (size_t)n < sizeof(held))
        snprintf(held + n, sizeof(held) - (size_t)n,
                 " (oldest %.1fs: the server closed none of them within the %.1fs grace)",
                 s->held.oldest_s, (double)lim->grace_ms / 1000.0);
    if (l->leaked)
        snprintf(leaked, sizeof(leaked), "%d socket%s leaked", l->leaked,
                 l->leaked == 1 ? "" : "s");
    if (l->other_open)
        snprintf(other, sizeof(other), "%d other fd%s still open (pipes %+d, files %+d, other %+d)",
                 l->other_open, l->other_open == 1 ? "" : "s", (int)f->pipes - (int)b->pipes,
                 (int)f->files - (int)b->files,
                 (int)(f->anon + f->other) - (int)(b->anon + b->other));
    snprintf(out, size, "%s%s%s%s%s", held, held[0] && leaked[0] ? "; " : "", leaked,
             (held[0] || leaked[0]) && other[0] ? "; " : "", other);
}

/* A pass after the server let go of held ones: "; when the faults ended 50 were held by live
 * clients, 10 after the peer vanished" (nothing when none were held, or it is not known). */
static void held_after_faults_text(const struct scenario_samples *s, char *out, size_t size)
{
    const struct held_counts *h = &s->held_after_faults;
    if (!h->known || !(h->live || h->vanished) || s->fds_settled_s < 0)
        return;
    snprintf(out, size,
             "; when the faults ended %u were held by live clients, %u after the peer "
             "vanished",
             h->live, h->vanished);
}

static void fds_fields(struct check_result *c, const struct scenario_samples *s,
                       const struct check_limits *lim, const struct leftovers *l)
{
    const struct fd_counts *b = &s->fds_baseline, *f = &s->fds_final;
    check_add_int(c, "baseline", b->total);
    check_add_int(c, "peak", s->fds_peak);
    check_add_int(c, "final", f->total);
    check_add_int(c, "held_live", l->held_live);
    check_add_int(c, "held_vanished", l->held_vanished);
    check_add_int(c, "leaked", l->leaked);
    if (l->held_live || l->held_vanished)
        check_add_double(c, "oldest_held_s", s->held.oldest_s);
    check_add_int(c, "other_open", l->other_open);
    check_add_int(c, "open_pipes", (int64_t)f->pipes - b->pipes);
    check_add_int(c, "open_files", (int64_t)f->files - b->files);
    check_add_int(c, "open_other", (int64_t)(f->anon + f->other) - (b->anon + b->other));
    check_add_double(c, "settled_s", s->fds_settled_s);
    if (f->total <= b->total && s->fds_settled_s >= 0 && s->fds_peak > b->total)
        check_add_double(c, "released_s", s->fds_settled_s);
    const struct held_counts *h = &s->held_after_faults;
    if (h->known && (h->live || h->vanished)) {
        check_add_int(c, "held_live_after_faults", h->live);
        check_add_int(c, "held_vanished_after_faults", h->vanished);
    }
    check_add_int(c, "grace_ms", (int64_t)lim->grace_ms);
    check_add_double(c, "waited_s", s->settle_waited_s);
}

/* The fds on a file at the baseline (0: it was not open). */
static unsigned baseline_fds_on(const struct procfs_regular_files *b, const struct procfs_file *f)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->files[i].dev == f->dev && b->files[i].ino == f->ino)
            return b->files[i].fds;
    return 0;
}

/* The fds above the baseline a cache of served files explains, their names in names: each a
 * regular file with one fd more than at the baseline, never two (a leak opens one per request,
 * so the same file many times), at most CHECKS_FILE_CACHE_MAX files (a scenario asks for a
 * handful of paths, from hundreds of clients). lighttpd keeps the fd of a file it served in
 * its stat cache for a few seconds, for the next request of it. 0 when they are not all such. */
static int file_cache_fds(const struct scenario_samples *s, char *names, size_t cap)
{
    const struct procfs_regular_files *b = &s->files_baseline, *f = &s->files_final;
    int extra = (int)s->fds_final.files - (int)s->fds_baseline.files, cached = 0;
    names[0] = '\0';
    if (!s->files_known || extra <= 0 || b->cut || f->cut)
        return 0;
    for (size_t i = 0, used = 0; i < f->n; i++) {
        unsigned before = baseline_fds_on(b, &f->files[i]);
        if (f->files[i].fds > before + 1)
            return 0;
        if (f->files[i].fds == before + 1 && used < cap) {
            int w =
                snprintf(names + used, cap - used, "%s%s", cached ? ", " : "", f->files[i].name);
            used = w < 0 ? cap : used + (size_t)w;
        }
        cached += f->files[i].fds == before + 1;
    }
    return cached <= CHECKS_FILE_CACHE_MAX && extra <= cached ? extra : 0;
}

/* A pass with a file cache: "fds: 9 before, peak 123, 10 after a 3.0s wait: 1 file fd kept
 * open (big.bin): a file cache, each file open once, not one per client". */
static void fds_cache_summary(struct check_result *c, const struct scenario_samples *s, int cached,
                              const char *names)
{
    const struct fd_counts *b = &s->fds_baseline, *f = &s->fds_final;
    check_add_int(c, "file_cache", cached);
    check_add_str(c, "file_cache_files", names);
    snprintf(c->summary, sizeof(c->summary),
             "fds: %u before, peak %u, %u after a %.1fs wait: %d file fd%s kept open (%s): a "
             "file cache, each file open once, not one per client",
             b->total, s->fds_peak, f->total, s->settle_waited_s, cached, cached == 1 ? "" : "s",
             names);
}

static void check_fds(const struct scenario_samples *s, const struct check_limits *lim,
                      struct scenario_result *res)
{
    struct check_result *c = check_new(res, "fds");
    if (s->fds_unknown) {
        check_not_checked(c, s->fds_unknown);
        return;
    }
    const struct fd_counts *b = &s->fds_baseline, *f = &s->fds_final;
    struct leftovers l = leftovers_of(s);
    fds_fields(c, s, lim, &l);
    char names[120];
    int cached = file_cache_fds(s, names, sizeof(names));
    c->status = (int)f->total - (int)b->total <= cached ? CHECK_OK : CHECK_FAILED;
    if (c->status == CHECK_OK && f->total > b->total) {
        fds_cache_summary(c, s, cached, names);
        return;
    }
    char when[64] = "";
    if (c->status == CHECK_OK && s->fds_settled_s >= 0)
        snprintf(when, sizeof(when), " (%s %.1fs after the faults)",
                 s->fds_peak > b->total ? "released" : "back", s->fds_settled_s);
    else if (c->status == CHECK_FAILED && s->settle_waited_s >= 0)
        snprintf(when, sizeof(when), " a %.1fs wait", s->settle_waited_s); /* as waited */
    else if (c->status == CHECK_FAILED)
        snprintf(when, sizeof(when), " the wait");
    if (c->status == CHECK_OK) {
        char held[96] = "";
        held_after_faults_text(s, held, sizeof(held));
        snprintf(c->summary, sizeof(c->summary), "fds: %u before, peak %u, %u after%s%s", b->total,
                 s->fds_peak, f->total, when, held);
        return;
    }
    char what[400];
    leftovers_text(s, lim, &l, what, sizeof(what));
    snprintf(c->summary, sizeof(c->summary), "fds: %u before, peak %u, %u after%s: %s", b->total,
             s->fds_peak, f->total, when, what);
}

/* States a server's socket should not be left in once its clients are gone: CLOSE_WAIT
 * (the peer closed, we never did) above all; ESTABLISHED ones are counted and shown but are
 * the fds check's business (a held client may still legitimately be connected). */
static void check_sockets(const struct scenario_samples *s, struct scenario_result *res)
{
    struct check_result *c = check_new(res, "sockets");
    if (s->sockets_unknown) {
        check_not_checked(c, s->sockets_unknown);
        return;
    }
    const struct tcp_states *st = &s->sockets_final;
    char states[256] = "";
    size_t used = 0;
    for (int i = 1; i < TCP_STATE_MAX; i++) {
        if (!st->count[i])
            continue;
        check_add_int(c, tcp_state_name(i), st->count[i]);
        int n = snprintf(states + used, sizeof(states) - used, "%s%s %u", used ? ", " : "",
                         tcp_state_name(i), st->count[i]);
        if (n > 0 && (size_t)n < sizeof(states) - used)
            used += (size_t)n;
    }
    unsigned close_wait = st->count[TCP_CLOSE_WAIT];
    c->status = close_wait == 0 ? CHECK_OK : CHECK_FAILED;
    char held[128] = "";
    if (s->held.known && (s->held.live || s->held.vanished)) {
        check_add_int(c, "held_live", s->held.live);
        check_add_int(c, "held_vanished", s->held.vanished);
        snprintf(held, sizeof(held), "; held: %u by live clients, %u after the peer vanished",
                 s->held.live, s->held.vanished);
    }
    snprintf(
        c->summary, sizeof(c->summary), "sockets: %s%s%s", used ? states : "none but listeners",
        close_wait ? " (CLOSE_WAIT: leaked: the server never closed sockets its clients closed)"
                   : "",
        held);
}

/* "97.2%, 95.0%, 0.4%" */
static void cpu_windows_text(const double *pct, unsigned n, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < n && i < CHECKS_CPU_WINDOWS; i++) {
        int len = snprintf(out + used, size - used, "%s%.1f%%", i ? ", " : "", pct[i]);
        if (len < 0 || (size_t)len >= size - used)
            break;
        used += (size_t)len;
    }
}

/* A spin stays hot, a flush cools: failed only if the target was busy (running, or runnable
 * and waiting for a CPU on a loaded machine) over the threshold in every window measured after
 * the faults (measure_cpu_end stops at the first window in which it was not). */
static void check_cpu(const struct scenario_samples *s, const struct check_limits *lim,
                      struct scenario_result *res)
{
    struct check_result *c = check_new(res, "cpu");
    if (s->cpu_unknown || s->cpu_nwindows == 0) {
        check_not_checked(c, s->cpu_unknown ? s->cpu_unknown : "no CPU window was completed");
        return;
    }
    char used[64], busy[64];
    cpu_windows_text(s->cpu_windows_pct, s->cpu_nwindows, used, sizeof(used));
    cpu_windows_text(s->cpu_windows_busy_pct, s->cpu_nwindows, busy, sizeof(busy));
    check_add_double(c, "cpu_pct", s->cpu_pct);
    check_add_double(c, "window_s", s->cpu_window_s);
    check_add_int(c, "windows", s->cpu_nwindows);
    check_add_str(c, "windows_pct", used);
    check_add_str(c, "windows_busy_pct", busy);
    check_add_double(c, "threshold_pct", lim->cpu_max_pct);
    if (s->cpu_while_held)
        check_add_str(c, "measured", "while held");
    c->status = s->cpu_pct < lim->cpu_max_pct ? CHECK_OK : CHECK_FAILED;
    if (c->status == CHECK_FAILED)
        snprintf(c->summary, sizeof(c->summary),
                 "cpu: running or waiting for a CPU at least %.1f%% of a core in each of %u "
                 "windows of %.1fs %s (%s; CPU used %s): a busy loop, over the "
                 "%.0f%% threshold and not cooling",
                 s->cpu_pct, s->cpu_nwindows, s->cpu_window_s,
                 s->cpu_while_held ? "while the fault clients held every fd" : "after the faults",
                 busy, used, lim->cpu_max_pct);
    else if (s->cpu_nwindows == 1)
        snprintf(c->summary, sizeof(c->summary),
                 "cpu: %.1f%% of a core over %.1fs after the faults", s->cpu_windows_pct[0],
                 s->cpu_window_s);
    else
        snprintf(c->summary, sizeof(c->summary),
                 "cpu: busy after the faults, then cooled to %.1f%% of a core (windows of %.1fs, "
                 "CPU used %s; running or waiting %s)",
                 s->cpu_pct, s->cpu_window_s, used, busy);
}

static void check_memory(const struct scenario_samples *s, const struct check_limits *lim,
                         struct scenario_result *res)
{
    struct check_result *c = check_new(res, "memory");
    if (s->memory_unknown) {
        check_not_checked(c, s->memory_unknown);
        return;
    }
    check_add_int(c, "anon_baseline_kb", (int64_t)s->anon_baseline_kb);
    check_add_int(c, "anon_final_kb", (int64_t)s->anon_final_kb);
    check_add_int(c, "slack_kb", (int64_t)lim->memory_slack_kb);
    c->status =
        s->anon_final_kb <= s->anon_baseline_kb + lim->memory_slack_kb ? CHECK_OK : CHECK_FAILED;
    snprintf(c->summary, sizeof(c->summary), "memory: anonymous %.1f MiB before, %.1f MiB after%s",
             (double)s->anon_baseline_kb / 1024.0, (double)s->anon_final_kb / 1024.0,
             c->status == CHECK_OK ? "" : " (grew past the allowed slack)");
}

void checks_evaluate(const struct scenario_samples *s, const struct check_limits *lim,
                     struct scenario_result *res)
{
    res->nchecks = 0;
    check_accepting(s, lim, res);
    check_alive(s, res);
    check_fds(s, lim, res);
    check_sockets(s, res);
    check_cpu(s, lim, res);
    check_memory(s, lim, res);

    res->verdict = VERDICT_PASS;
    res->reason[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < res->nchecks; i++) {
        if (res->checks[i].status != CHECK_FAILED)
            continue;
        res->verdict = VERDICT_FAIL;
        int n = snprintf(res->reason + used, sizeof(res->reason) - used, "%s%s", used ? "; " : "",
                         res->checks[i].summary);
        if (n > 0)
            used = (size_t)n >= sizeof(res->reason) - used ? sizeof(res->reason) - 1
                                                           : used + (size_t)n;
    }
}
