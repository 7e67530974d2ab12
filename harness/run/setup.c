/* setup and teardown of one scenario (see phases.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phases.h"
#include "procfs.h"

static enum phase_status skip(struct scenario_result *res, const char *why)
{
    res->verdict = VERDICT_SKIP;
    snprintf(res->reason, sizeof(res->reason), "%s", why);
    return PHASE_SKIPPED;
}

/* Stop a started target and remove its log (read by now, or never to be). Once: a pid
 * already reaped must never be signalled again (it may be someone else's by now). */
void run_stop_target(struct target *t)
{
    if (!t->owned)
        return;
    target_stop(t, RUN_TARGET_STOP_GRACE_MS);
    if (t->log_path[0])
        unlink(t->log_path);
    t->owned = false;
}

/* A started target that never accepted: say how it ended, or that it did not answer. */
static void describe_start_failure(const struct run_env *env, struct target *t,
                                   const struct sockaddr_in *addr, int rc, char *err, size_t errlen)
{
    if (rc == -ESRCH) {
        char how[160], last[200];
        target_describe_exit(t, how, sizeof(how));
        target_last_log_line(t, last, sizeof(last));
        snprintf(err, errlen, "target %s before accepting a connection%s%s%s", how,
                 last[0] ? " (last output: \"" : "", last, last[0] ? "\")" : "");
    } else {
        snprintf(err, errlen,
                 "target did not accept a connection on %s:%d within %.1fs (--ready-timeout)",
                 inet_ntoa(addr->sin_addr), ntohs(addr->sin_port),
                 (double)env->opt->ready_timeout_ms / 1000.0);
    }
}

int run_start_target(struct run_env *env, struct target *t, unsigned rlimit_nofile, const char *log,
                     char *err, size_t errlen)
{
    struct sockaddr_in addr = env->addr;
    if (addr.sin_port == 0) {
        int port;
        int rc = target_pick_port(&addr.sin_addr, &port);
        if (rc < 0) {
            t->owned = false;
            snprintf(err, errlen, "cannot find a free port: %s", strerror(-rc));
            return rc;
        }
        addr.sin_port = htons((uint16_t)port);
    }
    char who[160];
    /* A port someone else holds would have the probes answered by them, not by the target. */
    if (target_port_holder(&addr, who, sizeof(who)) == -EADDRINUSE) {
        t->owned = false;
        snprintf(err, errlen, "port %d is held by %s: stop it or choose another --port",
                 ntohs(addr.sin_port), who);
        return -EADDRINUSE;
    }
    int rc = target_start(t, env->command, &addr, rlimit_nofile, log, err, errlen);
    if (rc == 0)
        rc = target_wait_listening(t, env->opt->ready_timeout_ms);
    else
        t->owned = false; /* never started: nothing to stop */
    if (rc < 0 && t->owned)
        describe_start_failure(env, t, &addr, rc, err, errlen);
    else if (rc == 0)
        rc = target_verify_listener(t, err, errlen);
    if (rc < 0 && t->owned)
        run_stop_target(t);
    return rc;
}

/* A fresh target for each scenario, so one scenario's damage cannot leak into the next
 * (and fd-exhaustion can lower the fd limit). */
static int start_target(struct scenario_run *r)
{
    char log[512];
    snprintf(log, sizeof(log), "%s/%s.log", r->env->tmpdir, r->sc->name);
    return run_start_target(r->env, r->t, r->sc->rlimit_nofile, log, r->err, r->errlen);
}

/* An attached target cannot have its fd limit lowered: a scenario that exhausts fds runs
 * only if its clients can reach the limit the target has. NULL, or why it is skipped. */
static const char *attached_cannot_exhaust(struct scenario_run *r, char *why, size_t len)
{
    uint64_t soft = 0, hard = 0;
    unsigned clients = 0;
    for (size_t i = 0; i < r->sc->ngroups; i++)
        clients += r->sc->groups[i].count;
    int rc = procfs_rlimit_nofile(r->t->pid, &soft, &hard);
    if (rc == 0 && soft < clients)
        return NULL;
    snprintf(why, len,
             rc < 0 ? "cannot read the target's fd limit from /proc"
                    : "the target's RLIMIT_NOFILE (%llu) is more than this scenario's "
                      "%u clients can exhaust",
             (unsigned long long)soft, clients);
    return why;
}

static void setup_prober(struct scenario_run *r)
{
    const struct run_options *o = r->env->opt;
    r->p = (struct prober){.samples = &r->s,
                           .request = r->env->probe_request,
                           .request_len = r->env->probe_request_len,
                           .expect = o->probe_expect,
                           .expect_len = o->probe_expect_len,
                           .timeout_ms = o->probe_timeout_ms,
                           .interval_ms = o->probe_interval_ms};
    if (r->sc->probe_raw) { /* the scenario knows its protocol better than the defaults */
        r->p.request = r->sc->probe_raw;
        r->p.request_len = r->sc->probe_raw_len;
        r->p.expect = r->sc->probe_expect;
        r->p.expect_len = r->sc->probe_expect_len;
    }
}

static int drop_connection(void *sandbox, const struct sockaddr_in *client)
{
    return sandbox_drop_connection(sandbox, client);
}

static int setup_engine(struct scenario_run *r)
{
    struct engine_config ecfg = {.target = r->t->addr, .seed = r->env->opt->seed};
    /* Fault clients come from their own loopback address (a "client host"), probes from
     * 127.0.0.1, so the two are told apart in captures and rules. */
    ecfg.source = r->env->fault_host;
    if (r->env->sandbox.ready) {
        ecfg.drop = drop_connection;
        ecfg.drop_ctx = &r->env->sandbox;
    }
    r->e = engine_new(&ecfg, r->err, r->errlen);
    return r->e ? 0 : -1;
}

enum phase_status phase_setup(struct scenario_run *r)
{
    const struct scenario *sc = r->sc;
    char why[200];
    memset(r->res, 0, sizeof(*r->res));
    snprintf(r->res->name, sizeof(r->res->name), "%s", sc->name);
    if (sc->needs_sandbox && r->env->no_sandbox)
        return skip(r->res, r->env->no_sandbox);
    /* Every scenario starts clean: no drop a previous one set may cut off this one's clients,
     * whether or not this one needs the sandbox. */
    if (sandbox_clear(&r->env->sandbox) < 0) {
        snprintf(r->err, r->errlen, "%s", r->env->sandbox.why_not);
        return PHASE_SETUP_ERROR;
    }
    r->t = r->env->opt->target_pid ? &r->env->attached : &r->owned;
    if (!r->env->opt->target_pid && start_target(r) < 0)
        return PHASE_SETUP_ERROR;
    /* An attached target is checked again: it may have handed its port to another process. */
    if (r->env->opt->target_pid && target_verify_listener(r->t, r->err, r->errlen) < 0)
        return PHASE_SETUP_ERROR;
    if (r->env->opt->target_pid && sc->rlimit_nofile &&
        attached_cannot_exhaust(r, why, sizeof(why)))
        return skip(r->res, why);
    setup_prober(r);
    if (setup_engine(r) < 0) {
        run_stop_target(r->t);
        return PHASE_SETUP_ERROR;
    }
    r->cap =
        capture_plan_begin(&r->env->capture, sc->name, r->env->opt->seed,
                           ntohs(r->t->addr.sin_port), r->capture_path, sizeof(r->capture_path));
    return PHASE_GO_ON;
}

/* Before engine_free(): the resets it sends for held clients are the harness tidying up,
 * not part of the scenario, and must not be in the capture. */
void phase_teardown(struct scenario_run *r)
{
    capture_plan_end(&r->env->capture, r->cap, r->capture_path, r->res);
    stuck_free(&r->stuck); /* if made but not attached (interrupted, or passed) */
    engine_free(r->e);
    run_stop_target(r->t);
    /* ... and ends clean: its drops go with it (a failure here is caught by the next setup). */
    sandbox_clear(&r->env->sandbox);
    free(r->s.latencies_us);
    r->res->duration_s = (double)(engine_now_ms() - r->t0) / 1000.0;
}
