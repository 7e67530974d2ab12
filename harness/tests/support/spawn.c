/* Running a command with a bounded timeout: see support.h for the contract. The child's exit
 * is watched through a pidfd rather than the pipes' EOF: a server the command started in the
 * background may hold the pipes open long after the command itself is done. */
#include "support.h"

#include "cf_time.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const struct ts_run_opts ts_default_opts = {0};

static char *ts_empty_string(void)
{
    return ts_nonnull(calloc(1, 1));
}

/* In the child: never returns. Only what is safe between fork and exec in a single-threaded
 * test process. fn set: call it instead of exec'ing argv. */
static void ts_child(const int out[2], const int err[2], const char *const *argv,
                     const struct ts_run_opts *opts, int (*fn)(void *), void *arg)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed assertion ends the test without cleaning up */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    int err_to = opts->merge_stderr ? out[1] : opts->discard_stderr ? null : err[1];
    if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err_to, 2) < 0)
        _exit(127);
    struct rlimit nofile = {opts->nofile, opts->nofile};
    if (opts->nofile > 0 && setrlimit(RLIMIT_NOFILE, &nofile) < 0)
        _exit(127);
    if (fn)
        _exit(fn(arg));
    for (size_t i = 0; opts->env && opts->env[i]; i++)
        putenv(strdup(opts->env[i]));
    if (opts->dir && chdir(opts->dir) < 0)
        _exit(126);
    close_range(3, ~0u, 0); /* the command's fds are its own: none of the test's leak in */
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

static void ts_close_pair(int fds[2])
{
    close(fds[0]);
    close(fds[1]);
}

/* ts_proc_start and ts_proc_call: fork a child running argv or fn(arg). */
static int ts_proc_fork(struct ts_proc *proc, const char *const *argv, int (*fn)(void *), void *arg,
                        const struct ts_run_opts *opts)
{
    if (!opts)
        opts = &ts_default_opts;
    memset(proc, 0, sizeof(*proc));
    proc->status = -1;
    proc->out_fd = proc->err_fd = proc->pidfd = -1;
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(err, O_CLOEXEC) < 0) {
        int e = errno;
        ts_close_pair(out);
        return -e;
    }
    pid_t pid = fork();
    if (pid == 0)
        ts_child(out, err, argv, opts, fn, arg);
    int e = errno;
    close(out[1]);
    close(err[1]);
    if (pid < 0) {
        close(out[0]);
        close(err[0]);
        return -e;
    }
    setpgid(pid, pid); /* also here: no window in which a timeout would miss the group */
    proc->pid = pid;
    proc->out_fd = out[0];
    proc->err_fd = err[0];
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    proc->out = ts_empty_string();
    proc->err = ts_empty_string();
    int timeout = opts->timeout_ms > 0 ? opts->timeout_ms : TS_RUN_TIMEOUT_MS;
    proc->deadline_ms = (long long)cf_now_ms() + timeout;
    proc->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (proc->pidfd < 0) {
        e = errno;
        ts_proc_free(proc);
        return -e;
    }
    return 0;
}

int ts_proc_start(struct ts_proc *proc, const char *const *argv, const struct ts_run_opts *opts)
{
    return ts_proc_fork(proc, argv, NULL, NULL, opts);
}

int ts_proc_call(struct ts_proc *proc, int (*fn)(void *), void *arg, const struct ts_run_opts *opts)
{
    return ts_proc_fork(proc, NULL, fn, arg, opts);
}

/* Read what one pipe has now. Returns false once it is at EOF (or broken) and closed. */
static bool ts_read_pipe(int *fd, char **buf, size_t *len)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(*fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0) {
            close(*fd);
            *fd = -1;
            return false;
        }
        size_t keep = *len + (size_t)n > TS_OUTPUT_MAX ? TS_OUTPUT_MAX - *len : (size_t)n;
        if (keep == 0)
            continue;
        *buf = ts_nonnull(realloc(*buf, *len + keep + 1));
        memcpy(*buf + *len, chunk, keep);
        *len += keep;
        (*buf)[*len] = '\0';
    }
}

static void ts_read_pipes(struct ts_proc *proc)
{
    if (proc->out_fd >= 0)
        ts_read_pipe(&proc->out_fd, &proc->out, &proc->out_len);
    if (proc->err_fd >= 0)
        ts_read_pipe(&proc->err_fd, &proc->err, &proc->err_len);
}

/* Poll until the pidfd says the command exited (true) or the deadline passes (false). */
static bool ts_wait_exit(struct ts_proc *proc)
{
    for (;;) {
        long long left = proc->deadline_ms - (long long)cf_now_ms();
        if (left <= 0)
            return false;
        struct pollfd fds[3] = {{.fd = proc->out_fd, .events = POLLIN},
                                {.fd = proc->err_fd, .events = POLLIN},
                                {.fd = proc->pidfd, .events = POLLIN}};
        int ready = poll(fds, 3, (int)left);
        if (ready < 0 && errno != EINTR)
            return false;
        ts_read_pipes(proc);
        if (ready > 0 && fds[2].revents)
            return true;
    }
}

int ts_proc_wait_out(struct ts_proc *proc, const char *text, int timeout_ms)
{
    long long deadline = (long long)cf_now_ms() + timeout_ms;
    for (;;) {
        ts_read_pipes(proc);
        if (strstr(proc->out, text))
            return 0;
        if (proc->out_fd < 0)
            return -EPIPE; /* stdout closed (the command exited) before it wrote text */
        long long left = deadline - (long long)cf_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd fds[2] = {{.fd = proc->out_fd, .events = POLLIN},
                                {.fd = proc->err_fd, .events = POLLIN}};
        if (poll(fds, 2, (int)left) < 0 && errno != EINTR)
            return -errno;
    }
}

int ts_server_start(struct ts_proc *proc, const char *const *argv, const struct ts_run_opts *opts,
                    int *port)
{
    int rc = ts_proc_start(proc, argv, opts);
    if (rc == 0)
        rc = ts_proc_wait_out(proc, "\n", TS_SERVER_READY_MS);
    if (rc < 0)
        return rc;
    size_t line = strcspn(proc->out, "\n");
    const char *colon = memrchr(proc->out, ':', line);
    char *end;
    long value = colon ? strtol(colon + 1, &end, 10) : 0;
    if (strncmp(proc->out, "listening on ", 13) != 0 || !colon || end != proc->out + line ||
        value <= 0 || value > 65535)
        return -EPROTO;
    *port = (int)value;
    return 0;
}

static void ts_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int ts_proc_finish(struct ts_proc *proc)
{
    if (proc->pid <= 0)
        return -ECHILD;
    if (!ts_wait_exit(proc)) {
        proc->timed_out = true;
        kill(-proc->pid, SIGKILL);
        kill(proc->pid, SIGKILL);
    }
    int wstatus;
    pid_t reaped;
    do
        reaped = waitpid(proc->pid, &wstatus, 0);
    while (reaped < 0 && errno == EINTR);
    int e = errno;
    proc->pid = 0;
    ts_read_pipes(proc); /* what it wrote just before exiting */
    ts_close_fd(&proc->out_fd);
    ts_close_fd(&proc->err_fd);
    ts_close_fd(&proc->pidfd);
    if (reaped < 0)
        return -e;
    proc->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    return 0;
}

int ts_run(struct ts_proc *proc, const char *const *argv, const struct ts_run_opts *opts)
{
    int rc = ts_proc_start(proc, argv, opts);
    return rc < 0 ? rc : ts_proc_finish(proc);
}

void ts_proc_free(struct ts_proc *proc)
{
    if (proc->pid > 0) {
        kill(-proc->pid, SIGKILL);
        kill(proc->pid, SIGKILL);
        waitpid(proc->pid, NULL, 0);
        proc->pid = 0;
    }
    ts_close_fd(&proc->out_fd);
    ts_close_fd(&proc->err_fd);
    ts_close_fd(&proc->pidfd);
    free(proc->out);
    free(proc->err);
    proc->out = proc->err = NULL;
}
