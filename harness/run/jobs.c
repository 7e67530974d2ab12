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

#include "result.h"

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
    int index; /* the item it runs */
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

/* The job's process: one item, its result down the pipe, and out without running the
 * parent's exit handlers or flushing its stdio buffers. */
static void job_main(const struct jobs_plan *plan, int index, unsigned slot, int fd, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with the harness, and its target with it */
    if (getppid() != parent)
        _exit(1); /* the harness died before the line above */
    static struct job_wire w;
    w.rc = plan->run_one(plan->ctx, index, slot, &w.res, w.err, sizeof(w.err));
    send_outcome(fd, &w);
    _exit(0);
}

static int job_start(const struct jobs_plan *plan, struct job_slot *slots, unsigned k, int index)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    fflush(NULL); /* nothing buffered is written twice */
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        close(fds[0]);
        for (unsigned j = 0; j < plan->njobs; j++)
            if (slots[j].pid > 0)
                close(slots[j].fd);
        job_main(plan, index, k, fds[1], parent);
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

/* A job that ended without its whole result. */
static void mark_lost(struct job_outcome *out, int status)
{
    out->rc = -1;
    out->lost = true;
    out->wait_status = status;
    out->err[0] = '\0';
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
    const struct jobs_plan *plan;
    int next; /* the first item not started */
    unsigned running;
    bool stopping; /* no new job: a set-up error, a lost job or an interrupt */
    struct job_slot slots[JOBS_MAX];
    struct scenario_result *results;
    struct job_outcome *outcomes;
};

static void jobs_stop(struct jobs_state *st)
{
    if (st->stopping)
        return;
    st->stopping = true;
    for (unsigned k = 0; k < st->plan->njobs; k++)
        if (st->slots[k].pid > 0)
            kill(st->slots[k].pid, SIGTERM); /* as an interrupt: each tidies up and answers */
}

/* A job's process ended (its pipe did): reap it, decode its result, tell the caller. */
static void job_collect(struct jobs_state *st, struct job_slot *s)
{
    const struct jobs_plan *plan = st->plan;
    int status = 0;
    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
        continue;
    plan->reaped(plan->ctx, (int)s->pid);
    struct job_outcome *out = &st->outcomes[s->index];
    struct job_wire w;
    if (s->len >= sizeof(w)) {
        memcpy(&w, s->buf, sizeof(w));
        bool whole = decode_strings(s, &w);
        st->results[s->index] = w.res;
        out->rc = w.rc;
        snprintf(out->err, sizeof(out->err), "%s", w.err);
        if (!whole)
            mark_lost(out, status);
    } else {
        mark_lost(out, status);
    }
    out->done = true;
    int index = s->index;
    close(s->fd);
    free(s->buf);
    *s = (struct job_slot){0};
    st->running--;
    if (out->rc < 0)
        jobs_stop(st);
    plan->done(plan->ctx, index);
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
    struct pollfd pfd[JOBS_MAX];
    unsigned which[JOBS_MAX], n = 0;
    for (unsigned k = 0; k < st->plan->njobs; k++)
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

/* Start jobs in the free slots while items remain. */
static void jobs_fill(struct jobs_state *st)
{
    const struct jobs_plan *plan = st->plan;
    for (unsigned k = 0; k < plan->njobs && st->next < plan->n && !st->stopping; k++) {
        if (st->slots[k].pid > 0)
            continue;
        int index = st->next++;
        int rc = job_start(plan, st->slots, k, index);
        if (rc == 0) {
            st->running++;
            continue;
        }
        struct job_outcome *out = &st->outcomes[index];
        *out = (struct job_outcome){.rc = rc, .done = true};
        snprintf(out->err, sizeof(out->err), "cannot start a job: %s", strerror(-rc));
        jobs_stop(st);
        plan->done(plan->ctx, index);
    }
}

void jobs_run(const struct jobs_plan *plan, struct scenario_result *results,
              struct job_outcome *outcomes)
{
    struct jobs_plan capped = *plan;
    capped.njobs = plan->njobs > JOBS_MAX ? JOBS_MAX : plan->njobs;
    struct jobs_state st = {.plan = &capped, .results = results, .outcomes = outcomes};
    while ((st.next < capped.n && !st.stopping) || st.running > 0) {
        if (*capped.interrupted)
            jobs_stop(&st); /* a SIGTERM reached the harness only: pass it on */
        jobs_fill(&st);
        jobs_wait(&st);
    }
}
