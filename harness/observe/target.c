/* target: start, watch, and stop the server under test. */
#include "target.h"
#include "cf_escape.h"
#include "cf_time.h"

#include "procfs.h"
#include "sockdiag.h"
#include "target_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long a started target's init may take to say it forked the target. */
#define TARGET_SPAWN_TIMEOUT_MS 5000

static void target_close_pipes(struct target *t)
{
    if (t->status_fd >= 0)
        close(t->status_fd);
    if (t->life_fd >= 0)
        close(t->life_fd);
    t->status_fd = t->life_fd = -1;
}

int target_pick_port(const struct in_addr *addr, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = *addr};
    socklen_t len = sizeof(sa);
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        rc = -errno;
    else
        *port = ntohs(sa.sin_port);
    close(fd);
    return rc;
}

/* cmd_template with every {port} replaced. -ENAMETOOLONG if it does not fit. */
static int expand_port(char *out, size_t outlen, const char *tmpl, int port)
{
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    size_t o = 0;
    for (const char *p = tmpl; *p;) {
        const char *piece = p;
        size_t n = 1;
        if (strncmp(p, "{port}", 6) == 0) {
            piece = portstr;
            n = strlen(portstr);
            p += 6;
        } else {
            p++;
        }
        if (o + n >= outlen)
            return -ENAMETOOLONG;
        memcpy(out + o, piece, n);
        o += n;
    }
    out[o] = '\0';
    return 0;
}

/* Wait (bounded) for the init's "started" word, then find the target: the init's child. */
static int target_find_contained(struct target *t)
{
    struct pollfd pfd = {.fd = t->status_fd, .events = POLLIN};
    int word = 0;
    if (poll(&pfd, 1, TARGET_SPAWN_TIMEOUT_MS) != 1 ||
        read(t->status_fd, &word, sizeof(word)) != sizeof(word) || word != 1)
        return -ECHILD;
    pid_t pids[PROCFS_MAX_TREE];
    size_t n = 0;
    int rc = procfs_tree(t->init_pid, pids, PROCFS_MAX_TREE, &n);
    for (size_t i = 1; rc == 0 && i < n; i++) {
        struct procfs_stat st;
        if (procfs_read_stat(pids[i], 0, &st) == 0 && st.ppid == t->init_pid) {
            t->pid = pids[i];
            return 0;
        }
    }
    /* The target exited already: the init is about to report it; watch the init. */
    t->pid = t->init_pid;
    return 0;
}

/* Start the init of a PID namespace that starts the target. -EPERM, -EINVAL: no namespace
 * here (the caller starts the target plainly); other errors are real. */
static int target_start_contained(struct target *t, struct spawn_plan *sp)
{
    int life[2], status[2];
    if (pipe2(life, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(status, O_CLOEXEC) < 0) {
        int rc = -errno;
        close(life[0]);
        close(life[1]);
        return rc;
    }
    sp->life_r = life[0];
    sp->status_w = status[1];
    int rc = target_spawn_contained(sp, &t->init_pid);
    close(life[0]);
    close(status[1]);
    t->life_fd = life[1];
    t->status_fd = status[0];
    if (rc == 0)
        rc = target_find_contained(t);
    if (rc < 0 && t->init_pid > 0) {
        kill(t->init_pid, SIGKILL);
        waitpid(t->init_pid, NULL, 0);
    }
    if (rc < 0)
        target_close_pipes(t);
    return rc;
}

static int target_start_plain(struct target *t, struct spawn_plan *sp)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0)
        target_spawn_plain(sp);
    setpgid(pid, pid); /* also in the parent, so kill(-pid) works whoever runs first */
    t->pid = pid;
    return 0;
}

int target_start(struct target *t, const char *cmd_template, const struct sockaddr_in *addr,
                 unsigned rlimit_nofile, const char *log_path, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->owned = true;
    t->addr = *addr;
    t->status_fd = t->life_fd = -1;
    char text[sizeof(t->command) + 8], owner[64], *argv[TARGET_MAX_WORDS + 1];
    struct spawn_plan sp = {.log_path = t->log_path, .rlimit_nofile = rlimit_nofile, .text = text};
    if (expand_port(t->command, sizeof(t->command), cmd_template, ntohs(addr->sin_port)) < 0 ||
        target_plan_command(t->command, text, sizeof(text), argv, &sp.how) < 0) {
        snprintf(err, errlen, "--target-cmd: command too long");
        return -ENAMETOOLONG;
    }
    snprintf(t->log_path, sizeof(t->log_path), "%s", log_path);
    sp.argv = argv;
    sp.envp = target_spawn_environment(owner, sizeof(owner));
    if (!sp.envp) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = target_start_contained(t, &sp);
    if (rc == -EPERM || rc == -EINVAL || rc == -ENOSPC || rc == -EUSERS)
        rc = target_start_plain(t, &sp);
    free(sp.envp);
    if (rc < 0)
        snprintf(err, errlen, "cannot start the target: %s", strerror(-rc));
    return rc;
}

int target_attach(struct target *t, pid_t pid, const struct sockaddr_in *addr, char *err,
                  size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->pid = pid;
    t->addr = *addr;
    t->status_fd = t->life_fd = -1;
    if (kill(pid, 0) < 0 && errno == ESRCH) {
        snprintf(err, errlen, "--target-pid %d: no such process", (int)pid);
        return -ESRCH;
    }
    return 0;
}

/* An owned target's wait status, once the process we wait for is reaped: a contained
 * target's own, as its init reported it (else the init's: killed before it could say). */
static void target_reaped(struct target *t, int status)
{
    t->exited = true;
    t->wait_status = status;
    int reported;
    if (t->init_pid > 0 && read(t->status_fd, &reported, sizeof(reported)) == sizeof(reported))
        t->wait_status = reported;
    target_close_pipes(t);
}

bool target_alive(struct target *t)
{
    if (t->exited)
        return false;
    if (t->owned) {
        int status;
        pid_t waited = t->init_pid > 0 ? t->init_pid : t->pid;
        if (waitpid(waited, &status, WNOHANG) == waited)
            target_reaped(t, status);
        return !t->exited;
    }
    /* A zombie is not serving anyone. A stat line that does not parse says nothing either way:
     * the process is there. */
    struct procfs_stat st;
    int rc = procfs_read_stat(t->pid, 0, &st);
    if ((rc < 0 && rc != -EINVAL) || (rc == 0 && (st.state == 'Z' || st.state == 'X')))
        t->exited = true;
    return !t->exited;
}

/* Did a connect() succeed within wait_ms? 0, or -1. */
static int target_try_connect(const struct sockaddr_in *addr, int wait_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
    if (rc < 0 && errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        rc = -1;
        if (poll(&pfd, 1, wait_ms) == 1) {
            int soerr = 0;
            socklen_t len = sizeof(soerr);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
            rc = soerr ? -1 : 0;
        }
    }
    close(fd);
    return rc;
}

int target_wait_listening(struct target *t, uint64_t timeout_ms)
{
    uint64_t deadline = cf_now_ms() + timeout_ms;
    int port = ntohs(t->addr.sin_port);
    for (;;) {
        if (!target_alive(t))
            return -ESRCH;
        /* Look for the listening socket rather than connect to it: a test connection would
         * sit in the backlog, and on some broken servers (one accept per epoll edge) it
         * would swallow the edge of the first real probe. Connect only where sock_diag is
         * not available. */
        unsigned queued, backlog;
        int rc = sockdiag_listen_queue(port, &queued, &backlog);
        if (rc == 0)
            return 0;
        if (rc != -ENOENT && target_try_connect(&t->addr, 200) == 0)
            return 0;
        if (cf_now_ms() >= deadline)
            return -ETIMEDOUT;
        /* Nothing listens yet: look again shortly. A bounded retry, not a wait on time. */
        struct pollfd none;
        poll(&none, 0, 20);
    }
}

void target_stop(struct target *t, uint64_t grace_ms)
{
    if (!t->owned || t->pid <= 0)
        return;
    if (!t->exited) {
        kill(-t->pid, SIGTERM);
        kill(t->pid, SIGTERM); /* in case it has not made its process group yet */
        uint64_t deadline = cf_now_ms() + grace_ms;
        while (target_alive(t) && cf_now_ms() < deadline) {
            struct pollfd none;
            poll(&none, 0, 10);
        }
    }
    /* Whatever is left goes too: the init's end takes every process of its namespace,
     * whatever group or session it made; without one, the group is what we can reach. */
    if (t->init_pid > 0)
        kill(t->init_pid, SIGKILL);
    else
        kill(-t->pid, SIGKILL);
    if (!t->exited) {
        int status;
        pid_t waited = t->init_pid > 0 ? t->init_pid : t->pid;
        if (waitpid(waited, &status, 0) == waited)
            target_reaped(t, status);
    }
    target_close_pipes(t);
}

void target_describe_exit(const struct target *t, char *buf, size_t len)
{
    if (!t->owned) {
        snprintf(buf, len, "process %d no longer exists", (int)t->pid);
    } else if (WIFSIGNALED(t->wait_status)) {
        int sig = WTERMSIG(t->wait_status);
        snprintf(buf, len, "killed by signal %d (SIG%s)", sig,
                 sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
    } else {
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(t->wait_status));
    }
}

void target_last_log_line(const struct target *t, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!t->log_path[0])
        return;
    FILE *f = fopen(t->log_path, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0])
            snprintf(buf, len, "%s", line);
    }
    fclose(f);
    cf_escape_in_place(buf, len, CF_ESCAPE_DQUOTE); /* its own bytes, quoted in "..." */
}
