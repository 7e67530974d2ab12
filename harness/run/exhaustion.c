/* exhaustion: the fd-exhaustion fault, seen or not (see exhaustion.h). */
#include "exhaustion.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"
#include "sockdiag.h"

void exhaust_begin(struct exhaust_track *x, unsigned rlimit_nofile, uint64_t now)
{
    memset(x, 0, sizeof(*x));
    x->on = true;
    x->limit_default = rlimit_nofile;
    x->start_ms = x->last_ms = now;
}

static void exhaust_queue(struct exhaust_track *x, int queue_rc, unsigned queued, unsigned backlog)
{
    if (queue_rc < 0) {
        x->queue_why = queue_rc == -ENOENT ? "no listener found on the target's port"
                                           : "sock_diag could not be read";
        x->last_queue = 0;
        return;
    }
    x->queue_known = true;
    x->last_queue = queued;
    if (queued > x->queue_peak)
        x->queue_peak = queued;
    if (backlog > x->backlog)
        x->backlog = backlog;
}

void exhaust_sample(struct exhaust_track *x, const struct fd_counts *c, unsigned limit,
                    int queue_rc, unsigned queued, unsigned backlog, uint64_t now)
{
    x->samples++;
    x->last_ms = now;
    if (c->most_in_one > x->peak_one) {
        x->peak_one = c->most_in_one;
        x->peak_pid = c->most_pid;
        x->peak_at_s = now > x->start_ms ? (double)(now - x->start_ms) / 1000.0 : 0;
        if (limit)
            x->limit = limit;
    }
    if (c->total > x->tree_peak)
        x->tree_peak = c->total;
    if (c->processes > x->processes_peak)
        x->processes_peak = c->processes;
    exhaust_queue(x, queue_rc, queued, backlog);
    /* The stretch "nothing accepted while connections wait" ends at a sample with none
     * waiting, and starts afresh when the fds rose past the slack (it accepted). */
    if (queue_rc < 0 || queued == 0) {
        x->flat_since_ms = 0;
        return;
    }
    if (x->flat_since_ms == 0 || c->total > x->flat_base + EXHAUST_FLAT_SLACK) {
        x->flat_since_ms = now;
        x->flat_base = c->total;
        x->flat_queue_max = 0;
        x->flat_full = false;
    }
    if (queued > x->flat_queue_max)
        x->flat_queue_max = queued;
    x->flat_full = x->flat_full || (backlog > 0 && queued >= backlog);
}

void exhaust_read(struct exhaust_track *x, const struct fd_counts *counts, int port, uint64_t now)
{
    uint64_t soft = 0, hard = 0;
    unsigned queued = 0, backlog = 0;
    if (counts->most_in_one > x->peak_one &&
        procfs_rlimit_nofile(counts->most_pid, &soft, &hard) < 0)
        soft = 0; /* it exited meanwhile: the limit read at an earlier peak, or the scenario's */
    if (soft > UINT_MAX)
        soft = UINT_MAX; /* RLIM_INFINITY: no limit to come near */
    int rc = sockdiag_listen_queue(port, &queued, &backlog);
    exhaust_sample(x, counts, (unsigned)soft, rc, queued, backlog, now);
}

/* "5 of 5 full", "3 waiting, backlog 128", "3 waiting" (backlog unknown). */
static void queue_words(unsigned queued, unsigned backlog, char *out, size_t cap)
{
    if (backlog > 0 && queued >= backlog)
        snprintf(out, cap, "%u of %u full", queued, backlog);
    else if (backlog > 0)
        snprintf(out, cap, "%u waiting, backlog %u", queued, backlog);
    else
        snprintf(out, cap, "%u waiting", queued);
}

/* The queue was empty at the end, yet more clients connected than the server held: the
 * kernel completed their handshakes behind a full accept queue (a SYN cookie, or the ACK the
 * listener then dropped) and the server never saw them. */
static void unseen_text(const struct exhaust_track *x, const struct kernel_counts *k,
                        const struct exhaustion_evidence *e, uint64_t connected, char *out,
                        size_t cap)
{
    char kernel[96] = "";
    if (k && k->known)
        snprintf(kernel, sizeof(kernel), " (SYN cookies %" PRIu64 ", ListenOverflows %" PRIu64 ")",
                 k->rise.syncookies_sent, k->rise.listen_overflows);
    snprintf(out, cap,
             "fds peaked at %u of %u, none waiting in its listen queue (backlog %u) at the end "
             "of the fault phase, though %" PRIu64 " clients connected: the kernel completed "
             "most handshakes behind its full queue and dropped them%s; idle clients never "
             "retry, so they never reached the server: with so small a backlog they cannot run "
             "it out of fds",
             e->fds_peak, e->fds_limit, x->backlog, connected, kernel);
}

/* Neither (a) nor (b): why, and what to change. */
static void not_reached_text(const struct exhaust_track *x, const struct kernel_counts *k,
                             const struct exhaustion_evidence *e, double duration_s,
                             uint64_t connected, char *out, size_t cap)
{
    char q[64];
    queue_words(x->last_queue, x->backlog, q, sizeof(q));
    if (e->processes_peak >= EXHAUST_MANY_PROCESSES) {
        snprintf(out, cap,
                 "no process of the target held more than %u of its %u fds, while it ran up to "
                 "%u processes (%u fds in all): a server with a process per connection does not "
                 "run out of fds this way (RLIMIT_NOFILE is per process); fd-exhaustion does "
                 "not apply to it",
                 e->fds_peak, e->fds_limit, e->processes_peak, e->tree_fds_peak);
    } else if (!x->queue_known) {
        snprintf(out, cap,
                 "fds peaked at %u of %u and its listen queue could not be read (%s): whether it "
                 "stopped accepting is unknown",
                 e->fds_peak, e->fds_limit, x->queue_why ? x->queue_why : "no sample");
    } else if (x->flat_since_ms) {
        snprintf(out, cap,
                 "fds peaked at %u of %u and were still rising when the fault phase ended "
                 "(listen queue %s; the last rise %.1fs before its end): the server accepts "
                 "too slowly to run out of fds in %.1fs; give a longer duration than %.1fs",
                 e->fds_peak, e->fds_limit, q, e->plateau_s, e->fault_phase_s, duration_s);
    } else if (connected > e->tree_fds_peak) {
        unseen_text(x, k, e, connected, out, cap);
    } else {
        snprintf(out, cap,
                 "fds peaked at %u of %u with no connection waiting in its listen queue when the "
                 "fault phase ended: it accepted every client that connected and never ran out; "
                 "give it more clients than its fd limit",
                 e->fds_peak, e->fds_limit);
    }
}

void exhaust_judge(const struct exhaust_track *x, const struct kernel_counts *kernel,
                   double duration_s, uint64_t connected, struct exhaustion_evidence *e)
{
    memset(e, 0, sizeof(*e));
    if (!x->on || x->samples == 0)
        return;
    e->fds_peak = x->peak_one;
    e->fds_limit = x->limit ? x->limit : x->limit_default;
    e->tree_fds_peak = x->tree_peak;
    e->processes_peak = x->processes_peak;
    e->peak_at_s = x->peak_at_s;
    e->queue_peak = x->queue_peak;
    e->backlog = x->backlog;
    e->fault_phase_s = (double)(x->last_ms - x->start_ms) / 1000.0;
    if (x->flat_since_ms) {
        e->plateau_s = (double)(x->last_ms - x->flat_since_ms) / 1000.0;
        e->queue_full = x->flat_full;
    }
    char q[96];
    if (e->fds_peak + EXHAUST_NEAR_LIMIT >= e->fds_limit) {
        e->how = EXHAUSTION_OUT_OF_FDS;
        snprintf(e->summary, sizeof(e->summary),
                 "fds peaked at %u of %u (RLIMIT_NOFILE) at +%.2fs: out of fds, accept() fails "
                 "with EMFILE",
                 e->fds_peak, e->fds_limit, e->peak_at_s);
    } else if (x->flat_since_ms && e->plateau_s * 1000 >= EXHAUST_PLATEAU_MS) {
        e->how = EXHAUSTION_STOPPED;
        if (x->flat_full)
            snprintf(q, sizeof(q), "its listen queue full (%u of %u)", x->flat_queue_max,
                     x->backlog);
        else
            snprintf(q, sizeof(q), "up to %u connections waiting in its listen queue",
                     x->flat_queue_max);
        snprintf(e->summary, sizeof(e->summary),
                 "stopped accepting at %u fds of %u with %s for the last %.1fs of the fault "
                 "phase: a connection limit of its own, below its fd limit",
                 e->fds_peak, e->fds_limit, q, e->plateau_s);
    } else {
        e->how = EXHAUSTION_NOT_REACHED;
        not_reached_text(x, kernel, e, duration_s, connected, e->summary, sizeof(e->summary));
    }
}
