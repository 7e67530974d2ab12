/* The phases between setup and teardown, and one scenario start to end (see phases.h). */
#include "phases.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>

#include "measure.h"
#include "pcap_flows.h"
#include "sockdiag.h"

void phase_progress(struct scenario_run *r, const char *phase)
{
    if (!r->env->on_progress)
        return;
    if (!phase) {
        r->env->on_progress(r->env->progress_arg, NULL);
        return;
    }
    struct run_progress pr = {.scenario = r->sc->name,
                              .phase = phase,
                              .probes = r->s.probes,
                              .probes_ok = r->s.probes_ok};
    for (size_t i = 0; i < r->sc->ngroups; i++) {
        struct engine_group_stats st;
        engine_group_stats(r->e, i, &st);
        pr.clients_started += st.started;
        pr.clients_done += st.ended;
        pr.clients_total += r->sc->groups[i].count;
    }
    r->env->on_progress(r->env->progress_arg, &pr);
}

enum phase_status phase_baseline(struct scenario_run *r)
{
    if (!target_alive(r->t)) {
        measure_target_gone(r->t, &r->s); /* an attached target that died in an earlier one */
        return PHASE_JUDGE;
    }
    if (!prober_once(&r->p, r->e)) {
        snprintf(r->err, r->errlen, "the first probe, before any fault, failed: %s",
                 r->p.cur.done ? r->p.cur.error : "no result");
        return PHASE_SETUP_ERROR;
    }
    r->s.probes = r->s.probes_ok = 0; /* the first probe checks set-up; it is not a sample */
    r->s.nlatencies = 0;
    measure_baseline(r->t->pid, &r->s);
    return PHASE_GO_ON;
}

/* Every client host goes dark at once: its packets are dropped both ways, then its sockets
 * are discarded (their resets never arrive). The probes' host is not touched. */
static void cable_pull(struct scenario_run *r)
{
    sandbox_drop_host(&r->env->sandbox, r->env->fault_host);
    for (size_t i = 0; i < r->sc->ngroups; i++)
        if (r->sc->groups[i].host.s_addr)
            sandbox_drop_host(&r->env->sandbox, r->sc->groups[i].host);
    engine_vanish_all(r->e);
}

/* One slice of the fault phase: clients and probes run, fds sampled, progress shown. */
static void faults_slice(struct scenario_run *r, uint64_t *next_fd, uint64_t *next_progress)
{
    struct fd_counts fc;
    engine_run(r->e, engine_now_ms() + RUN_SLICE_MS);
    uint64_t now = engine_now_ms();
    prober_tick(&r->p, r->e, now);
    if (!r->s.release_end)
        stuck_watch(r); /* a hang is diagnosed at its first failed probe */
    /* (release = end: a probe may fail while the fault clients hold every fd; the hang that
     * counts is one after they are let go, watched from faults_release on) */
    if (now >= *next_fd) {
        /* (rlimit_nofile: with the listener's queue, for evidence_judge: was it exhausted?) */
        if (measure_sample(r->t->pid, &r->s, &fc, NULL, NULL) == 0 && r->exhaust.on)
            exhaust_read(&r->exhaust, &fc, ntohs(r->t->addr.sin_port), now);
        *next_fd = now + RUN_FD_SAMPLE_MS;
    }
    if (now >= *next_progress) {
        phase_progress(r, "faults");
        *next_progress = now + RUN_PROGRESS_MS;
    }
}

/* release = end: is the target spinning while the fault clients hold every fd? Measured
 * before they are let go (after, the spin would stop with the shortage): windows as the
 * settle phase's, a failure kept for the cpu check. */
static void faults_cpu_while_held(struct scenario_run *r)
{
    const struct run_options *o = r->env->opt;
    uint64_t next_fd = engine_now_ms(), next_progress = next_fd;
    struct cpu_window cpu;
    measure_cpu_begin(&cpu, r->t->pid, next_fd, o->cpu_window_ms, r->env->limits.cpu_max_pct);
    while (!*o->interrupted && target_alive(r->t) && !cpu.done) {
        if (measure_cpu_end(&cpu, r->t->pid, engine_now_ms(), &r->s)) {
            stuck_spin(r); /* while it spins */
            continue;
        }
        faults_slice(r, &next_fd, &next_progress);
    }
    r->s.cpu_while_held = cpu.done && cpu.rc == 0 && r->s.cpu_pct >= r->env->limits.cpu_max_pct;
    if (r->s.cpu_while_held)
        return;
    r->s.cpu_nwindows = 0; /* not spinning: the settle phase measures afresh */
    r->s.cpu_pct = 0;
}

/* release = end: every fault client still open (holding, or trickling) let go, a FIN each;
 * the probes from now on must be answered again within the grace. */
static void faults_release(struct scenario_run *r)
{
    if (target_alive(r->t))
        faults_cpu_while_held(r);
    engine_cut_off(r->e); /* a trickle too: counted as trickling, held, then let go */
    r->s.released_clients = engine_release_held(r->e);
    r->p.release_ms = engine_now_ms();
    stuck_forget_probes(r); /* the probes while held are not a hang */
    r->s.released_at_s = (double)(r->p.release_ms - r->p.faults_start_ms) / 1000.0;
}

/* Until `duration`, clients start as their groups say; then none starts, and those started
 * run to the end of their script, up to PHASE_FINISH_CAP_MS more: a client still connecting
 * or reading then is closed and counted not exercised (the harness ended it, not the server).
 * Trickles trickle on and held clients stay held until the verdict (release = end: until the
 * end of this phase). */
void phase_faults(struct scenario_run *r)
{
    const struct scenario *sc = r->sc;
    for (size_t i = 0; i < sc->ngroups; i++)
        engine_add_group(r->e, &sc->groups[i]);
    if (sc->replay)
        engine_add_replay(r->e, sc->replay->flows, sc->replay->nflows, sc->replay->speed);
    uint64_t start = engine_now_ms(), deadline = start + sc->duration_ms;
    uint64_t next_fd = start, next_progress = start;
    bool pulled = false, stopped = false;
    r->p.faults_start_ms = r->p.next_at_ms = start;
    if (sc->rlimit_nofile)
        exhaust_begin(&r->exhaust, sc->rlimit_nofile, start);
    r->s.release_end = sc->release == SCENARIO_RELEASE_END;
    r->s.recovered_s = -1;
    measure_kernel_begin(r->t->pid, r->env->sandbox.ready, &r->s);
    while (!*r->env->opt->interrupted && target_alive(r->t)) {
        uint64_t now = engine_now_ms();
        if (sc->cable_pull_ms && !pulled && now >= start + sc->cable_pull_ms) {
            cable_pull(r);
            pulled = true;
        }
        if (!stopped && now >= deadline) {
            engine_stop_starting(r->e);
            stopped = true;
        }
        bool pull_pending = sc->cable_pull_ms && !pulled; /* held clients wait for it */
        if ((stopped && (engine_scripts_done(r->e) || now >= deadline + PHASE_FINISH_CAP_MS)) ||
            (engine_groups_done(r->e) && !pull_pending))
            break;
        faults_slice(r, &next_fd, &next_progress);
    }
    engine_stop_starting(r->e);
    engine_close_unfinished(r->e);
    measure_kernel_end(r->t->pid, ntohs(r->t->addr.sin_port), &r->s);
    /* What waits for the clients that never read, while the fault is fresh (a server that
     * gives up on them later may reset them); evidence_collect looks again for the rest. */
    engine_peek_unread(r->e);
    if (r->s.release_end && !*r->env->opt->interrupted)
        faults_release(r);
}

/* While settling: is it back? Fds every sample, socket states when due. */
struct settle_state {
    uint64_t start, next_fd, next_sock;
    bool fds_ok, sockets_ok;
};

static void settle_sample(struct scenario_run *r, struct settle_state *st, uint64_t now)
{
    struct scenario_samples *s = &r->s;
    bool sockets_due = now >= st->next_sock;
    if (now < st->next_fd && !sockets_due)
        return;
    int sockets_rc = 0;
    int rc = measure_sample(r->t->pid, s, &s->fds_final, sockets_due ? &s->sockets_final : NULL,
                            &sockets_rc);
    if (rc < 0)
        s->fds_unknown = measure_errno_reason(rc);
    st->fds_ok = rc == 0 && s->fds_final.total <= s->fds_baseline.total;
    /* A connection still waiting in the listener's queue becomes an fd once accepted: not back
     * yet. (lighttpd, accepting the 900 clients fd-exhaustion had released one by one, was back
     * between two accepts, and the final count then caught one: "1 socket leaked".) */
    unsigned queued = 0, backlog = 0;
    if (st->fds_ok && sockdiag_listen_queue(ntohs(r->t->addr.sin_port), &queued, &backlog) == 0 &&
        queued > 0)
        st->fds_ok = false;
    if (st->fds_ok && s->fds_settled_s < 0)
        s->fds_settled_s = (double)(now - st->start) / 1000.0;
    st->next_fd = now + RUN_FD_SAMPLE_MS;
    if (sockets_due) {
        if (sockets_rc < 0)
            s->sockets_unknown = measure_errno_reason(sockets_rc);
        st->sockets_ok = sockets_rc == 0 && s->sockets_final.count[TCP_CLOSE_WAIT] == 0;
        st->next_sock = now + RUN_SOCKET_SAMPLE_MS;
    }
}

/* When the settle phase begun at start ends at the latest: the grace, or the CPU windows. */
static uint64_t settle_end_ms(const struct scenario_run *r, uint64_t start)
{
    const struct run_options *o = r->env->opt;
    uint64_t cpu_span = CHECKS_CPU_WINDOWS * o->cpu_window_ms;
    return start + (o->grace_ms > cpu_span ? o->grace_ms : cpu_span);
}

/* Measure CPU over the window, and wait (up to the grace) for fds to return to the
 * baseline and CLOSE_WAIT sockets to go. Probes go on meanwhile. */
static void settle_wait(struct scenario_run *r)
{
    const struct run_options *o = r->env->opt;
    uint64_t start = engine_now_ms(), next_progress = start;
    uint64_t grace_end = settle_end_ms(r, start);
    struct settle_state st = {.start = start, .next_fd = start, .next_sock = start};
    struct cpu_window cpu;
    measure_cpu_begin(&cpu, r->t->pid, start, o->cpu_window_ms, r->env->limits.cpu_max_pct);
    r->s.settle_start_ms = start;
    measure_held(r->t->pid, r->e, &r->s.held_after_faults); /* for a pass: what was released */
    r->s.fds_settled_s = -1;
    r->s.fds_final = r->s.fds_baseline;
    r->p.backoff_from_ms = start;
    while (!*o->interrupted && target_alive(r->t)) {
        uint64_t now = engine_now_ms();
        if (!r->s.cpu_while_held) {
            measure_cpu_end(&cpu, r->t->pid, now, &r->s);
            stuck_spin(r); /* while it spins */
        }
        settle_sample(r, &st, now);
        if (now >= next_progress) {
            phase_progress(r, "settling");
            next_progress = now + RUN_PROGRESS_MS;
        }
        if (((cpu.done || r->s.cpu_while_held) && st.fds_ok && st.sockets_ok) || now >= grace_end)
            break;
        engine_run(r->e, now + RUN_SLICE_MS);
        prober_tick(&r->p, r->e, engine_now_ms());
        stuck_watch(r);
    }
}

/* The probe prober_drain just finished may still be open on the server's side for a moment
 * (a thread that closes after its client read the whole response): once the fds were back,
 * wait for them to be back again, within the grace, so the final count is not that probe's
 * socket (in CLOSE_WAIT) and file. */
static void settle_after_drain(struct scenario_run *r)
{
    const struct run_options *o = r->env->opt;
    uint64_t end = settle_end_ms(r, r->s.settle_start_ms);
    struct fd_counts fc;
    if (r->s.fds_settled_s < 0)
        return; /* never back: nothing to wait for */
    while (!*o->interrupted && target_alive(r->t) && engine_now_ms() < end) {
        if (measure_sample(r->t->pid, &r->s, &fc, NULL, NULL) == 0 &&
            fc.total <= r->s.fds_baseline.total)
            return;
        engine_run(r->e, engine_now_ms() + RUN_SLICE_MS);
    }
}

enum phase_status phase_settle(struct scenario_run *r)
{
    settle_wait(r);
    prober_drain(&r->p, r->e);
    settle_after_drain(r);
    enum phase_status status = PHASE_GO_ON;
    if (!*r->env->opt->interrupted && target_alive(r->t))
        measure_final_fds(r->t->pid, r->e, &r->s);
    if (*r->env->opt->interrupted) {
        status = PHASE_INTERRUPTED;
    } else if (target_alive(r->t)) {
        prober_once(&r->p, r->e); /* the last word: it must still answer */
        measure_final_memory(r->t->pid, &r->s);
    }
    if (!target_alive(r->t))
        measure_target_gone(r->t, &r->s);
    return status;
}

static void add_client_stats(struct scenario_result *res, const struct engine_group_stats *st)
{
    res->clients_started += st->started;
    res->clients_connected += st->connected;
    res->clients_failed_connect += st->connect_failed;
    res->clients_completed += st->ended;
}

/* What the clients did: their counts and each group's evidence. Also for a scenario
 * interrupted before its verdict: the report keeps what was measured so far. */
static void phase_collect(struct scenario_run *r)
{
    struct engine_group_stats st;
    for (size_t i = 0; i < r->sc->ngroups; i++) {
        engine_group_stats(r->e, i, &st);
        add_client_stats(r->res, &st);
    }
    engine_replay_stats(r->e, &st);
    add_client_stats(r->res, &st);
    evidence_collect(r);
}

void phase_judge(struct scenario_run *r)
{
    struct scenario_result *res = r->res;
    engine_cut_off(r->e); /* trickles stop here: those still trickling are counted as such */
    checks_evaluate(&r->s, &r->env->limits, res);
    stuck_attach(r); /* the diagnoses of failing accepting and cpu checks */
    phase_collect(r);
    evidence_judge(r);
}

int run_scenario_once(struct run_env *env, const struct scenario *sc, struct scenario_result *res,
                      char *err, size_t errlen)
{
    struct scenario_run r = {
        .env = env, .sc = sc, .res = res, .err = err, .errlen = errlen, .t0 = engine_now_ms()};
    enum phase_status status = phase_setup(&r);
    if (status == PHASE_SKIPPED)
        return RUN_DONE;
    if (status == PHASE_SETUP_ERROR)
        return RUN_SETUP_ERROR;
    run_env_gate(env, true); /* --jobs: one baseline and fault phase at a time */
    status = phase_baseline(&r);
    if (status == PHASE_GO_ON) {
        phase_faults(&r);
        run_env_gate(env, false);
        status = phase_settle(&r);
    }
    run_env_gate(env, false);
    phase_progress(&r, NULL);
    if (status == PHASE_GO_ON || status == PHASE_JUDGE)
        phase_judge(&r);
    else if (status == PHASE_INTERRUPTED)
        phase_collect(&r);
    phase_teardown(&r);
    return status == PHASE_SETUP_ERROR   ? RUN_SETUP_ERROR
           : status == PHASE_INTERRUPTED ? RUN_INTERRUPTED
                                         : RUN_DONE;
}
