/* run: the life of one scenario, and of a whole run.
 *
 * Per scenario (a fresh target each time when the harness starts it, so one scenario's
 * damage cannot leak into the next, and fd-exhaustion can lower the fd limit):
 *   start -> wait until it accepts -> first probe (must pass: else a set-up error)
 *   -> baseline (fds, RSS) -> faults (clients run; probes every probe_interval; fds sampled)
 *   -> settle (probes go on; the CPU window; wait up to the grace for fds and sockets to come
 *      back) -> final probe -> judge (checks.c) -> release held clients -> stop target.
 * The harness never closes held or silent clients itself before judging: the server has to
 * release them on its own, within the grace.
 */
#include "run.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "checks.h"
#include "cleanup.h"
#include "diagnose.h"
#include "engine.h"
#include "pcap_flows.h"
#include "procfs.h"
#include "report.h"
#include "sandbox.h"
#include "scenario.h"
#include "sockdiag.h"
#include "target.h"

#define SLICE_MS             20
#define FD_SAMPLE_MS         50
#define SOCKET_SAMPLE_MS     200
#define PROGRESS_MS          250
#define TARGET_STOP_GRACE_MS 2000

/* Timeouts the reference server runs with in the suite: short, so that the grace period
 * (default 5 s) covers them with room to spare. */
#define REFERENCE_FLAGS                                                                            \
    "--port {port} --header-timeout 1 --idle-timeout 2 --send-timeout 1 --tcp-user-timeout 2 "     \
    "--shutdown-timeout 1 --quiet"

enum { SCENARIO_DONE = 0, SCENARIO_SETUP_ERROR = -1, SCENARIO_INTERRUPTED = -2 };

struct run_ctx {
    const struct run_options *opt;
    struct check_limits limits;
    char tmpdir[256];
    char command[4096]; /* target command template */
    struct target attached;
    char probe_request[2048];
    size_t probe_request_len;
    char host_header[64];
    char err[512];
    struct sandbox sandbox; /* ready when a scenario needs silent drops and we could enter it */
    const char *no_sandbox; /* why scenarios that need it are skipped, or NULL */
    struct capture_plan capture;
};

/* The fault clients' host; probes come from 127.0.0.1, a second host that keeps probing. */
#define FAULT_CLIENT_HOST "127.0.0.2"

struct prober {
    const char *request, *expect; /* what every probe sends, and the reply prefix (or NULL) */
    size_t request_len, expect_len;
    struct probe_result cur;
    bool active;
    uint64_t next_at_ms;
    uint64_t faults_start_ms; /* 0 before the faults start */
    struct scenario_samples *samples;
    size_t capacity;
};

/* ---- probes --------------------------------------------------------------------------- */

static void prober_record(struct prober *p, uint64_t now)
{
    struct scenario_samples *s = p->samples;
    if (s->nlatencies == p->capacity) {
        size_t cap = p->capacity ? p->capacity * 2 : 64;
        uint64_t *grown = realloc(s->latencies_us, cap * sizeof(*grown));
        if (!grown)
            return;
        s->latencies_us = grown;
        p->capacity = cap;
    }
    s->latencies_us[s->nlatencies++] = p->cur.latency_us;
    s->probes++;
    if (p->cur.ok) {
        s->probes_ok++;
    } else if (s->probes - s->probes_ok == 1) {
        snprintf(s->first_failure, sizeof(s->first_failure), "%s", p->cur.error);
        uint64_t started = now - p->cur.latency_us / 1000;
        s->first_failure_at_s =
            p->faults_start_ms ? ((double)started - (double)p->faults_start_ms) / 1000.0 : -0.0;
    }
}

/* Finish the running probe if done; start the next one when it is due. */
static void prober_tick(struct run_ctx *ctx, struct engine *e, struct prober *p, uint64_t now)
{
    if (p->active && p->cur.done) {
        prober_record(p, now);
        p->active = false;
        p->next_at_ms = now + ctx->opt->probe_interval_ms;
    }
    if (!p->active && now >= p->next_at_ms) {
        memset(&p->cur, 0, sizeof(p->cur));
        if (engine_probe(e, p->request, p->request_len, p->expect, p->expect_len,
                         ctx->opt->probe_timeout_ms, &p->cur) == 0)
            p->active = true;
    }
}

/* Let the running probe finish (bounded by its own timeout). */
static void prober_drain(struct run_ctx *ctx, struct engine *e, struct prober *p)
{
    uint64_t deadline = engine_now_ms() + ctx->opt->probe_timeout_ms + 500;
    while (p->active && !p->cur.done && engine_now_ms() < deadline)
        engine_run(e, engine_now_ms() + SLICE_MS);
    if (p->active && p->cur.done)
        prober_record(p, engine_now_ms());
    p->active = false;
}

/* One probe, start to end: used for the first probe and the final one. */
static bool prober_once(struct run_ctx *ctx, struct engine *e, struct prober *p)
{
    p->next_at_ms = 0;
    prober_tick(ctx, e, p, engine_now_ms());
    prober_drain(ctx, e, p);
    return p->cur.done && p->cur.ok;
}

/* ---- measurements ----------------------------------------------------------------------- */

static const char *errno_reason(int rc)
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

/* One walk of the target's fd tables: its fd counts (and the peak), and, when sockets is not
 * NULL, the TCP states of its sockets (*sockets_rc: 0 or -errno). Returns 0 or -errno. */
static int sample_target(pid_t pid, struct scenario_samples *s, struct fd_counts *fds,
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
static int take_baseline(pid_t pid, struct scenario_samples *s)
{
    struct fd_counts prev, cur;
    int rc = procfs_tree_fd_counts(pid, &prev);
    uint64_t deadline = engine_now_ms() + 1000;
    while (rc == 0 && engine_now_ms() < deadline) {
        struct timespec ts = {0, FD_SAMPLE_MS * 1000000L};
        nanosleep(&ts, NULL); /* sampling interval between two reads, not a wait for a result */
        rc = procfs_tree_fd_counts(pid, &cur);
        if (rc == 0 && cur.total == prev.total)
            break;
        prev = cur;
    }
    if (rc < 0) {
        s->fds_unknown = errno_reason(rc);
        return rc;
    }
    s->fds_baseline = prev;
    s->fds_peak = prev.total;
    return 0;
}

/* ---- one scenario ----------------------------------------------------------------------- */

static void progress(struct run_ctx *ctx, const char *name, const char *phase, struct engine *e,
                     const struct scenario *sc, const struct scenario_samples *s)
{
    if (!ctx->opt->progress)
        return;
    uint64_t started = 0, ended = 0, total = 0;
    for (size_t i = 0; i < sc->ngroups; i++) {
        struct engine_group_stats st;
        engine_group_stats(e, i, &st);
        started += st.started;
        ended += st.ended;
        total += sc->groups[i].count;
    }
    fprintf(stderr, "\r\033[K  %s: %s  clients %llu/%llu started, %llu done  probes %u/%u ok", name,
            phase, (unsigned long long)started, (unsigned long long)total,
            (unsigned long long)ended, s->probes_ok, s->probes);
    fflush(stderr);
}

static void clear_progress(struct run_ctx *ctx)
{
    if (ctx->opt->progress) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}

static void skip(struct scenario_result *res, const char *fmt, const char *arg)
{
    res->verdict = VERDICT_SKIP;
    snprintf(res->reason, sizeof(res->reason), fmt, arg);
}

static int start_target(struct run_ctx *ctx, const struct scenario *sc, struct target *t)
{
    const struct run_options *o = ctx->opt;
    struct sockaddr_in addr = o->addr;
    if (addr.sin_port == 0) {
        int port;
        int rc = target_pick_port(&addr.sin_addr, &port);
        if (rc < 0) {
            snprintf(ctx->err, sizeof(ctx->err), "cannot find a free port: %s", strerror(-rc));
            return rc;
        }
        addr.sin_port = htons((uint16_t)port);
    }
    char log[512];
    snprintf(log, sizeof(log), "%s/%s.log", ctx->tmpdir, sc->name);
    int rc =
        target_start(t, ctx->command, &addr, sc->rlimit_nofile, log, ctx->err, sizeof(ctx->err));
    if (rc < 0)
        return rc;
    rc = target_wait_listening(t, o->ready_timeout_ms);
    if (rc == 0)
        return 0;
    if (rc == -ESRCH) {
        char how[160], last[200];
        target_describe_exit(t, how, sizeof(how));
        target_last_log_line(t, last, sizeof(last));
        snprintf(ctx->err, sizeof(ctx->err), "target %s before accepting a connection%s%s%s", how,
                 last[0] ? " (last output: \"" : "", last, last[0] ? "\")" : "");
    } else {
        snprintf(ctx->err, sizeof(ctx->err),
                 "target did not accept a connection on %s:%d within %.1fs (--ready-timeout)",
                 inet_ntoa(addr.sin_addr), ntohs(addr.sin_port),
                 (double)o->ready_timeout_ms / 1000.0);
    }
    target_stop(t, TARGET_STOP_GRACE_MS);
    return rc;
}

/* Checks that cannot be made once the target is gone. */
static void mark_target_gone(struct target *t, struct scenario_samples *s)
{
    s->target_exited = true;
    target_describe_exit(t, s->exit_description, sizeof(s->exit_description));
    target_last_log_line(t, s->last_log_line, sizeof(s->last_log_line));
    s->fds_unknown = s->fds_unknown ? s->fds_unknown : "the target exited";
    s->sockets_unknown = s->sockets_unknown ? s->sockets_unknown : "the target exited";
    s->cpu_unknown = s->cpu_unknown ? s->cpu_unknown : "the target exited";
    s->memory_unknown = s->memory_unknown ? s->memory_unknown : "the target exited";
}

/* Every client host goes dark at once: its packets are dropped both ways, then its sockets
 * are discarded (their resets never arrive). The probes' host is not touched. */
static void cable_pull(struct run_ctx *ctx, const struct scenario *sc, struct engine *e)
{
    struct in_addr host;
    inet_pton(AF_INET, FAULT_CLIENT_HOST, &host);
    sandbox_drop_host(&ctx->sandbox, host);
    for (size_t i = 0; i < sc->ngroups; i++)
        if (sc->groups[i].host.s_addr)
            sandbox_drop_host(&ctx->sandbox, sc->groups[i].host);
    engine_vanish_all(e);
}

static int drop_connection(void *sandbox, const struct sockaddr_in *client)
{
    return sandbox_drop_connection(sandbox, client);
}

/* The fault phase: run the clients until all are done or the scenario's duration ends. */
static void run_faults(struct run_ctx *ctx, const struct scenario *sc, struct target *t,
                       struct engine *e, struct prober *p, struct scenario_samples *s)
{
    uint64_t start = engine_now_ms(), deadline = start + sc->duration_ms;
    uint64_t next_fd = start, next_progress = start;
    struct fd_counts fc;
    bool pulled = false;
    p->faults_start_ms = start;
    p->next_at_ms = start;
    while (!*ctx->opt->interrupted) {
        uint64_t now = engine_now_ms();
        if (sc->cable_pull_ms && !pulled && now >= start + sc->cable_pull_ms) {
            cable_pull(ctx, sc, e);
            pulled = true;
        }
        bool pull_pending = sc->cable_pull_ms && !pulled; /* held clients wait for it */
        if (now >= deadline || (engine_groups_done(e) && !pull_pending) || !target_alive(t))
            break;
        engine_run(e, now + SLICE_MS);
        now = engine_now_ms();
        prober_tick(ctx, e, p, now);
        if (now >= next_fd) {
            sample_target(t->pid, s, &fc, NULL, NULL);
            next_fd = now + FD_SAMPLE_MS;
        }
        if (now >= next_progress) {
            progress(ctx, sc->name, "faults", e, sc, s);
            next_progress = now + PROGRESS_MS;
        }
    }
    engine_cut_off(e);
}

/* Where is it stuck? Taken while the fault is still live (clients held, target running), once
 * per scenario: at the moment the CPU check fails (a spin may not last), else before teardown
 * when accepting failed. Bounded in time; never on passing scenarios. */
struct stuck_report {
    struct diagnosis d;
    bool made;
};

static void diagnose_now(struct target *t, bool busy, struct stuck_report *stuck)
{
    if (stuck->made || !target_alive(t))
        return;
    struct diagnose_options dopt = {
        .port = ntohs(t->addr.sin_port), .sample_syscalls = busy, .budget_ms = 3000};
    stuck->made = diagnose_target(t->pid, &dopt, &stuck->d) == 0;
}

static const struct check_result *failed_check(const struct scenario_result *r, const char *name)
{
    for (size_t i = 0; i < r->nchecks; i++)
        if (strcmp(r->checks[i].name, name) == 0 && r->checks[i].status == CHECK_FAILED)
            return &r->checks[i];
    return NULL;
}

/* Hand the diagnosis to the report (it owns the strings from here on). */
static void attach_diagnosis(struct scenario_result *res, struct stuck_report *stuck)
{
    if (!stuck->made)
        return;
    res->diagnosis = stuck->d.text;
    res->diagnosis_summary = stuck->d.summary;
    res->diagnosis_json = stuck->d.json;
    stuck->d.text = stuck->d.summary = stuck->d.json = NULL;
    size_t used = strlen(res->reason);
    if (res->diagnosis_summary && used + 4 < sizeof(res->reason))
        snprintf(res->reason + used, sizeof(res->reason) - used, "; %s", res->diagnosis_summary);
}

/* After the faults: measure CPU over the window, and wait (up to the grace) for fds to
 * return to the baseline and CLOSE_WAIT sockets to go. Probes go on meanwhile. */
static void run_settle(struct run_ctx *ctx, const struct scenario *sc, struct target *t,
                       struct engine *e, struct prober *p, struct scenario_samples *s,
                       struct stuck_report *stuck)
{
    const struct run_options *o = ctx->opt;
    uint64_t start = engine_now_ms();
    uint64_t cpu_end = start + o->cpu_window_ms, grace_end = start + o->grace_ms;
    uint64_t next_fd = start, next_sock = start, next_progress = start;
    if (grace_end < cpu_end)
        grace_end = cpu_end;
    uint64_t cpu0 = 0;
    int cpu_rc = procfs_tree_cpu_ns(t->pid, &cpu0);
    bool cpu_done = false, fds_ok = false, sockets_ok = false;
    s->fds_settled_s = -1;
    s->fds_final = s->fds_baseline;
    while (!*o->interrupted && target_alive(t)) {
        uint64_t now = engine_now_ms();
        if (!cpu_done && now >= cpu_end) {
            uint64_t cpu1;
            if (cpu_rc == 0)
                cpu_rc = procfs_tree_cpu_ns(t->pid, &cpu1);
            if (cpu_rc == 0) {
                s->cpu_window_s = (double)(now - start) / 1000.0;
                s->cpu_pct = (double)(cpu1 - cpu0) / 1e6 / (double)(now - start) * 100.0;
                if (s->cpu_pct >= ctx->limits.cpu_max_pct)
                    diagnose_now(t, true, stuck); /* while it spins */
            } else {
                s->cpu_unknown = errno_reason(cpu_rc);
            }
            cpu_done = true;
        }
        bool sockets_due = now >= next_sock;
        if (now >= next_fd || sockets_due) {
            int sockets_rc = 0;
            int rc = sample_target(t->pid, s, &s->fds_final, sockets_due ? &s->sockets_final : NULL,
                                   &sockets_rc);
            if (rc < 0)
                s->fds_unknown = errno_reason(rc);
            fds_ok = rc == 0 && s->fds_final.total <= s->fds_baseline.total;
            if (fds_ok && s->fds_settled_s < 0)
                s->fds_settled_s = (double)(now - start) / 1000.0;
            next_fd = now + FD_SAMPLE_MS;
            if (sockets_due) {
                if (sockets_rc < 0)
                    s->sockets_unknown = errno_reason(sockets_rc);
                sockets_ok = sockets_rc == 0 && s->sockets_final.count[TCP_CLOSE_WAIT] == 0;
                next_sock = now + SOCKET_SAMPLE_MS;
            }
        }
        if (now >= next_progress) {
            progress(ctx, sc->name, "settling", e, sc, s);
            next_progress = now + PROGRESS_MS;
        }
        if ((cpu_done && fds_ok && sockets_ok) || now >= grace_end)
            break;
        engine_run(e, now + SLICE_MS);
        prober_tick(ctx, e, p, engine_now_ms());
    }
}

static int run_scenario(struct run_ctx *ctx, const struct scenario *sc, struct scenario_result *res)
{
    const struct run_options *o = ctx->opt;
    uint64_t t0 = engine_now_ms();
    memset(res, 0, sizeof(*res));
    snprintf(res->name, sizeof(res->name), "%s", sc->name);
    if (sc->needs_sandbox && ctx->no_sandbox) {
        skip(res, "%s", ctx->no_sandbox);
        return SCENARIO_DONE;
    }
    if (sc->needs_sandbox && sandbox_clear(&ctx->sandbox) < 0) {
        snprintf(ctx->err, sizeof(ctx->err), "%s", ctx->sandbox.why_not);
        return SCENARIO_SETUP_ERROR;
    }

    struct target owned, *t = &ctx->attached;
    if (!o->target_pid) {
        t = &owned;
        if (start_target(ctx, sc, t) < 0)
            return SCENARIO_SETUP_ERROR;
    } else if (sc->rlimit_nofile) {
        uint64_t soft = 0, hard = 0;
        unsigned clients = 0;
        for (size_t i = 0; i < sc->ngroups; i++)
            clients += sc->groups[i].count;
        int rc = procfs_rlimit_nofile(t->pid, &soft, &hard);
        if (rc < 0 || soft >= clients) {
            char why[200];
            snprintf(why, sizeof(why),
                     rc < 0 ? "cannot read the target's fd limit from /proc"
                            : "the target's RLIMIT_NOFILE (%llu) is more than this scenario's "
                              "%u clients can exhaust",
                     (unsigned long long)soft, clients);
            skip(res, "%s", why);
            return SCENARIO_DONE;
        }
    }

    struct scenario_samples s = {0};
    struct prober p = {.samples = &s,
                       .request = ctx->probe_request,
                       .request_len = ctx->probe_request_len,
                       .expect = o->probe_expect,
                       .expect_len = o->probe_expect_len};
    if (sc->probe_raw) { /* the scenario knows its protocol better than the defaults */
        p.request = sc->probe_raw;
        p.request_len = sc->probe_raw_len;
        p.expect = sc->probe_expect;
        p.expect_len = sc->probe_expect_len;
    }
    struct engine_config ecfg = {.target = t->addr, .seed = o->seed};
    /* Fault clients come from their own loopback address (a "client host"), probes from
     * 127.0.0.1, so the two are told apart in captures and rules. */
    inet_pton(AF_INET, FAULT_CLIENT_HOST, &ecfg.source);
    if (ctx->sandbox.ready) {
        ecfg.drop = drop_connection;
        ecfg.drop_ctx = &ctx->sandbox;
    }
    struct engine *e = engine_new(&ecfg, ctx->err, sizeof(ctx->err));
    if (!e) {
        if (t->owned)
            target_stop(t, TARGET_STOP_GRACE_MS);
        return SCENARIO_SETUP_ERROR;
    }
    char capture_path[sizeof(res->capture_path)];
    struct capture *cap =
        capture_plan_begin(&ctx->capture, sc->name, o->seed, ntohs(t->addr.sin_port), capture_path,
                           sizeof(capture_path));

    int status = SCENARIO_DONE;
    struct stuck_report stuck = {.made = false};
    if (!target_alive(t)) {
        mark_target_gone(t, &s); /* an attached target that died in an earlier scenario */
    } else if (!prober_once(ctx, e, &p)) {
        snprintf(ctx->err, sizeof(ctx->err), "the first probe, before any fault, failed: %s",
                 p.cur.done ? p.cur.error : "no result");
        status = SCENARIO_SETUP_ERROR;
    } else {
        s.probes = s.probes_ok = 0; /* the first probe checks set-up; it is not a sample */
        s.nlatencies = 0;
        take_baseline(t->pid, &s);
        uint64_t rss = 0;
        if (procfs_tree_rss_kb(t->pid, &rss) == 0)
            s.rss_baseline_kb = rss;
        else
            s.memory_unknown = "cannot read the target's RSS from /proc";
        for (size_t i = 0; i < sc->ngroups; i++)
            engine_add_group(e, &sc->groups[i]);
        if (sc->replay)
            engine_add_replay(e, sc->replay->flows, sc->replay->nflows, sc->replay->speed);
        run_faults(ctx, sc, t, e, &p, &s);
        run_settle(ctx, sc, t, e, &p, &s, &stuck);
        prober_drain(ctx, e, &p);
        if (!*o->interrupted && target_alive(t)) {
            /* The verdict is on the state at the end, not on the last periodic sample. */
            int sockets_rc = 0;
            if (sample_target(t->pid, &s, &s.fds_final, &s.sockets_final, &sockets_rc) < 0 &&
                !s.fds_unknown)
                s.fds_unknown = "could not read the target's fds";
            if (sockets_rc < 0 && !s.sockets_unknown)
                s.sockets_unknown = "could not read the target's socket states";
        }
        if (*o->interrupted) {
            status = SCENARIO_INTERRUPTED;
        } else if (target_alive(t)) {
            prober_once(ctx, e, &p); /* the last word: it must still answer */
            if (!s.memory_unknown && procfs_tree_rss_kb(t->pid, &rss) == 0)
                s.rss_final_kb = rss;
            else if (!s.memory_unknown)
                s.memory_unknown = "cannot read the target's RSS from /proc";
        }
        if (!target_alive(t))
            mark_target_gone(t, &s);
    }
    clear_progress(ctx);

    if (status == SCENARIO_DONE) {
        checks_evaluate(&s, &ctx->limits, res);
        if (failed_check(res, "accepting") || failed_check(res, "cpu")) {
            diagnose_now(t, failed_check(res, "cpu") != NULL, &stuck);
            attach_diagnosis(res, &stuck);
        }
        for (size_t i = 0; i < sc->ngroups; i++) {
            struct engine_group_stats st;
            engine_group_stats(e, i, &st);
            res->clients_started += st.started;
            res->clients_connected += st.connected;
            res->clients_failed_connect += st.connect_failed;
            res->clients_completed += st.ended;
        }
        struct engine_group_stats st;
        engine_replay_stats(e, &st);
        res->clients_started += st.started;
        res->clients_connected += st.connected;
        res->clients_failed_connect += st.connect_failed;
        res->clients_completed += st.ended;
    }
    /* Before engine_free(): the resets it sends for held clients are the harness tidying
     * up, not part of the scenario. */
    capture_plan_end(&ctx->capture, cap, capture_path, res);
    diagnosis_free(&stuck.d); /* if made but not attached (interrupted) */
    engine_free(e);
    if (t->owned)
        target_stop(t, TARGET_STOP_GRACE_MS);
    free(s.latencies_us);
    res->duration_s = (double)(engine_now_ms() - t0) / 1000.0;
    return status;
}

void run_options_defaults(struct run_options *o, volatile sig_atomic_t *interrupted)
{
    memset(o, 0, sizeof(*o));
    o->addr.sin_family = AF_INET;
    o->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    o->probe_path = "/";
    o->large_path = "/bytes/1048576";
    o->ready_timeout_ms = 10000;
    o->probe_timeout_ms = 2000;
    o->probe_interval_ms = 250;
    o->grace_ms = 5000;
    o->cpu_window_ms = 1000;
    o->cpu_max_pct = 20;
    o->memory_slack_kb = 32 * 1024;
    o->verbosity = 1;
    o->interrupted = interrupted;
}

/* ---- the whole run ---------------------------------------------------------------------- */

static bool is_path(const char *name)
{
    return strchr(name, '/') != NULL || strstr(name, ".ini") != NULL;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The built-in scenario files, sorted. Returns the count, or -errno. */
static int builtin_paths(char ***out)
{
    const char *dir = scenario_builtin_dir();
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    char **paths = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".ini") != 0)
            continue;
        char **grown = realloc(paths, (size_t)(n + 1) * sizeof(*paths));
        if (!grown)
            break;
        paths = grown;
        size_t plen = strlen(dir) + len + 2;
        paths[n] = malloc(plen);
        if (!paths[n])
            break;
        snprintf(paths[n++], plen, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    qsort(paths, (size_t)n, sizeof(*paths), compare_names);
    *out = paths;
    return n;
}

static void free_paths(char **paths, int n)
{
    for (int i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

static void scenario_vars_for(const struct run_ctx *ctx, struct scenario_vars *vars)
{
    const struct run_options *o = ctx->opt;
    memset(vars, 0, sizeof(*vars));
    vars->host = ctx->host_header;
    vars->probe_path = o->probe_path;
    vars->large_path = o->large_path;
    vars->request_raw = o->request_raw;
    vars->request_raw_len = o->request_raw_len;
    vars->probe_raw = o->probe_raw;
    vars->probe_raw_len = o->probe_raw_len;
}

/* Load every scenario before running any, so a typo in the last file costs no time. */
static int load_scenarios(struct run_ctx *ctx, char **names, int nnames, struct scenario **out,
                          int *count)
{
    char **paths = NULL;
    int n;
    if (nnames == 0) {
        n = builtin_paths(&paths);
        if (n <= 0) {
            fprintf(stderr, "connfault: no built-in scenarios in %s\n", scenario_builtin_dir());
            return -1;
        }
    } else {
        n = nnames;
        paths = calloc((size_t)n, sizeof(*paths));
        for (int i = 0; paths && i < n; i++) {
            size_t len = strlen(names[i]) + strlen(scenario_builtin_dir()) + 8;
            paths[i] = malloc(len);
            if (!paths[i])
                break;
            if (is_path(names[i]))
                snprintf(paths[i], len, "%s", names[i]);
            else
                snprintf(paths[i], len, "%s/%s.ini", scenario_builtin_dir(), names[i]);
            if (!is_path(names[i]) && access(paths[i], R_OK) != 0) {
                fprintf(stderr,
                        "connfault: unknown scenario '%s' (`connfault list` shows the built-in "
                        "ones; give a path for a file of your own)\n",
                        names[i]);
                free_paths(paths, i + 1);
                return -1;
            }
        }
    }
    struct scenario *list = calloc((size_t)n, sizeof(*list));
    struct scenario_vars vars;
    scenario_vars_for(ctx, &vars);
    int rc = list ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        if (scenario_load(paths[i], &vars, &list[i], ctx->err, sizeof(ctx->err)) < 0) {
            fprintf(stderr, "connfault: %s\n", ctx->err);
            for (int j = 0; j < i; j++)
                scenario_free(&list[j]);
            rc = -1;
        }
    }
    free_paths(paths, n);
    if (rc < 0) {
        free(list);
        return -1;
    }
    *out = list;
    *count = n;
    return 0;
}

static void build_probe_request(struct run_ctx *ctx)
{
    const struct run_options *o = ctx->opt;
    if (o->probe_raw) {
        size_t n = o->probe_raw_len < sizeof(ctx->probe_request) ? o->probe_raw_len
                                                                 : sizeof(ctx->probe_request);
        memcpy(ctx->probe_request, o->probe_raw, n);
        ctx->probe_request_len = n;
        return;
    }
    int n = snprintf(ctx->probe_request, sizeof(ctx->probe_request),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", o->probe_path,
                     ctx->host_header);
    ctx->probe_request_len = n > 0 && (size_t)n < sizeof(ctx->probe_request) ? (size_t)n : 0;
}

static int run_setup(struct run_ctx *ctx)
{
    const struct run_options *o = ctx->opt;
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &o->addr.sin_addr, host, sizeof(host));
    if (o->addr.sin_port)
        snprintf(ctx->host_header, sizeof(ctx->host_header), "%s:%d", host,
                 ntohs(o->addr.sin_port));
    else
        snprintf(ctx->host_header, sizeof(ctx->host_header), "%s", host);
    build_probe_request(ctx);
    ctx->limits.cpu_max_pct = o->cpu_max_pct;
    ctx->limits.memory_slack_kb = o->memory_slack_kb;
    ctx->limits.probe_timeout_ms = o->probe_timeout_ms;
    ctx->limits.grace_ms = o->grace_ms;

    if (o->target_pid) {
        return target_attach(&ctx->attached, o->target_pid, &o->addr, ctx->err, sizeof(ctx->err));
    }
    if (o->target_cmd) {
        snprintf(ctx->command, sizeof(ctx->command), "%s", o->target_cmd);
    } else {
        snprintf(ctx->command, sizeof(ctx->command), "exec '%s' " REFERENCE_FLAGS "%s%s",
                 o->reference_server, o->bug ? " --bug " : "", o->bug ? o->bug : "");
    }
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(ctx->tmpdir, sizeof(ctx->tmpdir), "%s/connfault-%d.XXXXXX", base, (int)getpid());
    if (!mkdtemp(ctx->tmpdir)) {
        snprintf(ctx->err, sizeof(ctx->err), "mkdtemp %s: %s", ctx->tmpdir, strerror(errno));
        ctx->tmpdir[0] = '\0';
        return -errno;
    }
    return 0;
}

static void run_cleanup(struct run_ctx *ctx, const struct scenario *list, int n)
{
    if (ctx->tmpdir[0]) {
        for (int i = 0; i < n; i++) {
            char log[512];
            snprintf(log, sizeof(log), "%s/%s.log", ctx->tmpdir, list[i].name);
            unlink(log);
        }
        rmdir(ctx->tmpdir);
    }
}

/* Silent drops need the target and the clients in a network namespace of our own. Enter it
 * for the whole run (before any target starts) if any scenario needs it. */
static void prepare_sandbox(struct run_ctx *ctx, const struct scenario *list, int n)
{
    bool needed = false;
    for (int i = 0; i < n; i++)
        needed |= list[i].needs_sandbox;
    if (!needed)
        return;
    if (ctx->opt->no_sandbox) {
        ctx->no_sandbox = "--no-sandbox: silent drop needs connfault's own network namespace";
        return;
    }
    if (ctx->opt->target_pid) {
        ctx->no_sandbox = "silent drop needs the target inside connfault's own network namespace; "
                          "an attached process (--target-pid) is not: start it with --target-cmd";
        return;
    }
    if (sandbox_enter(&ctx->sandbox) < 0)
        ctx->no_sandbox = ctx->sandbox.why_not;
    else if (ctx->opt->verbosity > 1)
        printf("connfault: in a private network namespace%s (nftables table %s)\n",
               ctx->sandbox.user_namespace ? " inside a user namespace" : "", ctx->sandbox.table);
}

static void describe_target(const struct run_ctx *ctx, struct run_report *rep)
{
    const struct run_options *o = ctx->opt;
    snprintf(rep->target_kind, sizeof(rep->target_kind), "%s",
             o->target_pid   ? "pid"
             : o->target_cmd ? "cmd"
                             : "reference");
    if (o->target_pid)
        snprintf(rep->target_desc, sizeof(rep->target_desc), "pid %d", (int)o->target_pid);
    else
        snprintf(rep->target_desc, sizeof(rep->target_desc), "%.1000s", ctx->command);
    inet_ntop(AF_INET, &o->addr.sin_addr, rep->host, sizeof(rep->host));
    rep->port = ntohs(o->addr.sin_port);
}

/* run_collect() of the named scenarios, or of the one given (connfault replay). */
static int run_collect_some(const struct run_options *opt, char **names, int nnames,
                            struct scenario *given, struct run_report *rep)
{
    struct run_ctx ctx = {.opt = opt};
    struct scenario *list = NULL;
    int n = 0;
    memset(rep, 0, sizeof(*rep));
    rep->seed = opt->seed;
    cleanup_stale(opt->verbosity > 1 ? stdout : NULL); /* what a killed run left behind */
    if (run_setup(&ctx) < 0) {
        fprintf(stderr, "connfault: %s\n", ctx.err);
        return 2;
    }
    if (given) {
        list = given;
        n = 1;
    } else if (load_scenarios(&ctx, names, nnames, &list, &n) < 0) {
        run_cleanup(&ctx, NULL, 0);
        return 2;
    }
    ctx.capture = (struct capture_plan){.dir = opt->capture_dir,
                                        .tmpdir = ctx.tmpdir,
                                        .on_failure = opt->capture_failures,
                                        .verbosity = opt->verbosity};
    prepare_sandbox(&ctx, list, n);
    describe_target(&ctx, rep);
    rep->scenarios = calloc((size_t)n, sizeof(*rep->scenarios));
    uint64_t t0 = engine_now_ms();
    int exit_status = rep->scenarios ? 0 : 2;
    if (opt->verbosity > 0)
        printf("connfault: %d scenario(s) against %s, seed %llu\n", n, rep->target_desc,
               (unsigned long long)opt->seed);
    fflush(stdout);
    for (int i = 0; rep->scenarios && i < n; i++) {
        struct scenario_result *res = &rep->scenarios[rep->nscenarios];
        int rc = run_scenario(&ctx, &list[i], res);
        if (rc == SCENARIO_SETUP_ERROR) {
            clear_progress(&ctx);
            fprintf(stderr, "connfault: %s: %s\n", list[i].name, ctx.err);
            exit_status = 2;
            break;
        }
        if (rc == SCENARIO_INTERRUPTED) {
            fprintf(stderr, "connfault: interrupted during %s\n", list[i].name);
            exit_status = 130;
            break;
        }
        rep->nscenarios++;
        if (res->verdict == VERDICT_FAIL && exit_status == 0)
            exit_status = 1;
        if (opt->verbosity > 0 || res->verdict == VERDICT_FAIL)
            report_print_scenario(stdout, res, opt->verbosity > 1, opt->color);
        fflush(stdout);
    }
    rep->duration_s = (double)(engine_now_ms() - t0) / 1000.0;
    sandbox_free(&ctx.sandbox);
    run_cleanup(&ctx, list, n);
    for (int i = 0; !given && i < n; i++)
        scenario_free(&list[i]);
    if (!given)
        free(list);
    return exit_status;
}

int run_collect(const struct run_options *opt, char **names, int nnames, struct run_report *rep)
{
    return run_collect_some(opt, names, nnames, NULL, rep);
}

static int run_main_some(const struct run_options *opt, char **names, int nnames,
                         struct scenario *given)
{
    struct run_report rep;
    int exit_status = run_collect_some(opt, names, nnames, given, &rep);
    if (rep.nscenarios > 0 || exit_status < 2) {
        report_print_totals(stdout, &rep, opt->color);
        fflush(stdout);
    }
    char err[512];
    if (opt->junit_path && report_write_junit(opt->junit_path, &rep, err, sizeof(err)) < 0) {
        fprintf(stderr, "connfault: %s\n", err);
        exit_status = exit_status ? exit_status : 2;
    }
    if (opt->json_path && report_write_json(opt->json_path, &rep, err, sizeof(err)) < 0) {
        fprintf(stderr, "connfault: %s\n", err);
        exit_status = exit_status ? exit_status : 2;
    }
    run_report_free(&rep);
    return exit_status;
}

int run_main(const struct run_options *opt, char **names, int nnames)
{
    return run_main_some(opt, names, nnames, NULL);
}

int run_replay(const struct run_options *opt, struct scenario *sc)
{
    return run_main_some(opt, NULL, 0, sc);
}

int run_list(void)
{
    char **paths = NULL;
    int n = builtin_paths(&paths);
    if (n <= 0) {
        fprintf(stderr, "connfault: no built-in scenarios in %s\n", scenario_builtin_dir());
        return 2;
    }
    struct scenario_vars vars = {
        .host = "127.0.0.1", .probe_path = "/", .large_path = "/bytes/1048576"};
    int status = 0;
    for (int i = 0; i < n; i++) {
        struct scenario sc;
        char err[512];
        if (scenario_load(paths[i], &vars, &sc, err, sizeof(err)) < 0) {
            fprintf(stderr, "connfault: %s\n", err);
            status = 2;
            continue;
        }
        printf("%-20s %s\n", sc.name, sc.description ? sc.description : "");
        scenario_free(&sc);
    }
    free_paths(paths, n);
    return status;
}
