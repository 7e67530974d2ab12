/* jobs: scenarios in parallel, a forked process each (see jobs.h). */
#include "jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run_internal.h"
#include "scenario.h"

#define JOBS_POLL_MS 200 /* how often the parent looks at the interrupt flag while it waits */

/* What a job sends back: the result as a whole (the same program on both ends of the pipe),
 * then the three strings it owns, whose pointers mean nothing in the parent. */
struct job_wire {
    int rc;
    char err[512];
    struct scenario_result res;
    uint32_t len[3]; /* diagnosis, diagnosis_summary, diagnosis_json; 0: NULL */
};

struct job_slot {
    pid_t pid; /* 0: free */
    int fd;    /* read end of the job's result pipe */
    int index; /* the scenario it runs */
    char *buf;
    size_t len, cap;
};

static void write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the parent is gone or gave up: nobody to tell */
        p += w;
        len -= (size_t)w;
    }
}

static void send_outcome(int fd, struct job_wire *w)
{
    char *strs[3] = {w->res.diagnosis, w->res.diagnosis_summary, w->res.diagnosis_json};
    for (int i = 0; i < 3; i++)
        w->len[i] = strs[i] ? (uint32_t)strlen(strs[i]) + 1 : 0;
    write_all(fd, w, sizeof(*w));
    for (int i = 0; i < 3; i++)
        write_all(fd, strs[i], w->len[i]);
}

/* The scenario as job slot sees it: its groups' client hosts moved to the slot's. */
static struct client_group *job_groups(const struct scenario *sc, unsigned slot)
{
    struct client_group *g = calloc(sc->ngroups ? sc->ngroups : 1, sizeof(*g));
    for (size_t i = 0; g && i < sc->ngroups; i++) {
        g[i] = sc->groups[i];
        if (g[i].host.s_addr)
            g[i].host = run_job_host(g[i].host, slot);
    }
    return g;
}

/* The job's process: one scenario, its result down the pipe, and out without running the
 * parent's exit handlers or flushing its stdio buffers. */
static void job_main(struct run_env *env, const struct scenario *sc, unsigned slot, int fd,
                     pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with the harness, and its target with it */
    if (getppid() != parent)
        _exit(1); /* the harness died before the line above */
    static struct job_wire w;
    w.rc = RUN_SETUP_ERROR;
    struct scenario mine = *sc;
    mine.groups = job_groups(sc, slot);
    if (!mine.groups)
        snprintf(w.err, sizeof(w.err), "out of memory");
    else if (run_env_enter_job(env, slot, w.err, sizeof(w.err)) == 0)
        w.rc = run_scenario_once(env, &mine, &w.res, w.err, sizeof(w.err));
    sandbox_free(&env->sandbox); /* this job's table */
    send_outcome(fd, &w);
    _exit(0);
}

static int job_start(struct run_env *env, const struct scenario *list, struct job_slot *slots,
                     unsigned njobs, unsigned k, int index)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    fflush(NULL); /* nothing buffered is written twice */
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        close(fds[0]);
        for (unsigned j = 0; j < njobs; j++)
            if (slots[j].pid > 0)
                close(slots[j].fd);
        job_main(env, &list[index], k, fds[1], parent);
    }
    int rc = pid < 0 ? -errno : 0;
    close(fds[1]);
    if (rc < 0) {
        close(fds[0]);
        return rc;
    }
    slots[k] = (struct job_slot){.pid = pid, .fd = fds[0], .index = index};
    return 0;
}

/* A job that ended without its whole result: how it ended, for the set-up error. */
static void describe_lost_job(const struct scenario *sc, int status, struct job_outcome *out)
{
    out->rc = RUN_SETUP_ERROR;
    if (WIFSIGNALED(status))
        snprintf(out->err, sizeof(out->err),
                 "the job running %s was killed by signal %d (%s) before its result", sc->name,
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(out->err, sizeof(out->err),
                 "the job running %s exited with status %d before its result", sc->name,
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* The strings after the result, back into the parent's memory. false if cut short. */
static bool decode_strings(const struct job_slot *s, struct job_wire *w)
{
    char **strs[3] = {&w->res.diagnosis, &w->res.diagnosis_summary, &w->res.diagnosis_json};
    size_t at = sizeof(*w);
    bool whole = true;
    for (int i = 0; i < 3; i++) {
        *strs[i] = NULL;
        if (w->len[i] == 0)
            continue;
        if (!whole || at + w->len[i] > s->len || s->buf[at + w->len[i] - 1] != '\0') {
            whole = false;
            continue;
        }
        *strs[i] = strdup(s->buf + at);
        at += w->len[i];
    }
    return whole;
}

/* The run's state in the parent. */
struct jobs_state {
    struct run_env *env;
    const struct scenario *list;
    int n, next; /* next: the first scenario not started */
    unsigned njobs, running;
    bool stopping; /* no new job: a set-up error or an interrupt */
    struct job_slot slots[RUN_MAX_JOBS];
    struct scenario_result *results;
    struct job_outcome *outcomes;
    jobs_done_fn *done;
    void *arg;
};

static void jobs_stop(struct jobs_state *st)
{
    if (st->stopping)
        return;
    st->stopping = true;
    for (unsigned k = 0; k < st->njobs; k++)
        if (st->slots[k].pid > 0)
            kill(st->slots[k].pid, SIGTERM); /* as an interrupt: each tidies up and answers */
}

/* A job's process ended (its pipe did): reap it, decode its result, tell the caller. */
static void job_collect(struct jobs_state *st, struct job_slot *s)
{
    int status = 0;
    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
        continue;
    sandbox_forget_job(&st->env->sandbox, (int)s->pid);
    const struct scenario *sc = &st->list[s->index];
    struct job_outcome *out = &st->outcomes[s->index];
    struct job_wire w;
    if (s->len >= sizeof(w)) {
        memcpy(&w, s->buf, sizeof(w));
        bool whole = decode_strings(s, &w);
        st->results[s->index] = w.res;
        out->rc = w.rc;
        snprintf(out->err, sizeof(out->err), "%s", w.err);
        if (!whole)
            describe_lost_job(sc, status, out);
    } else {
        describe_lost_job(sc, status, out);
    }
    out->done = true;
    int index = s->index;
    close(s->fd);
    free(s->buf);
    *s = (struct job_slot){0};
    st->running--;
    if (out->rc != RUN_DONE)
        jobs_stop(st);
    st->done(st->arg, index);
}

/* Read what the job sent so far; true at the end of it (EOF or an error). */
static bool job_read(struct job_slot *s)
{
    if (s->cap - s->len < 4096) {
        size_t cap = s->cap ? s->cap * 2 : sizeof(struct job_wire) + 8192;
        char *grown = realloc(s->buf, cap);
        if (!grown)
            return true;
        s->buf = grown;
        s->cap = cap;
    }
    ssize_t r = read(s->fd, s->buf + s->len, s->cap - s->len);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return false;
    if (r <= 0)
        return true;
    s->len += (size_t)r;
    return false;
}

/* Wait a little for any job's bytes; collect the jobs that ended. */
static void jobs_wait(struct jobs_state *st)
{
    struct pollfd pfd[RUN_MAX_JOBS];
    unsigned which[RUN_MAX_JOBS], n = 0;
    for (unsigned k = 0; k < st->njobs; k++)
        if (st->slots[k].pid > 0) {
            pfd[n] = (struct pollfd){.fd = st->slots[k].fd, .events = POLLIN};
            which[n++] = k;
        }
    if (poll(pfd, n, JOBS_POLL_MS) <= 0)
        return;
    for (unsigned i = 0; i < n; i++)
        if (pfd[i].revents && job_read(&st->slots[which[i]]))
            job_collect(st, &st->slots[which[i]]);
}

/* Start jobs in the free slots while scenarios remain. */
static void jobs_fill(struct jobs_state *st)
{
    for (unsigned k = 0; k < st->njobs && st->next < st->n && !st->stopping; k++) {
        if (st->slots[k].pid > 0)
            continue;
        int index = st->next++;
        int rc = job_start(st->env, st->list, st->slots, st->njobs, k, index);
        if (rc == 0) {
            st->running++;
            continue;
        }
        struct job_outcome *out = &st->outcomes[index];
        *out = (struct job_outcome){.rc = RUN_SETUP_ERROR, .done = true};
        snprintf(out->err, sizeof(out->err), "cannot start a job: %s", strerror(-rc));
        jobs_stop(st);
        st->done(st->arg, index);
    }
}

void jobs_run(struct run_env *env, const struct scenario *list, int n, unsigned njobs,
              struct scenario_result *results, struct job_outcome *outcomes, jobs_done_fn *done,
              void *arg)
{
    struct jobs_state st = (struct jobs_state){.env = env,
                                               .list = list,
                                               .n = n,
                                               .njobs = njobs > RUN_MAX_JOBS ? RUN_MAX_JOBS : njobs,
                                               .results = results,
                                               .outcomes = outcomes,
                                               .done = done,
                                               .arg = arg};
    while ((st.next < n && !st.stopping) || st.running > 0) {
        if (*env->opt->interrupted)
            jobs_stop(&st); /* a SIGTERM reached the harness only: pass it on */
        jobs_fill(&st);
        jobs_wait(&st);
    }
}
