/* target: start, watch, and stop the server under test. */
#include "target.h"
#include "cf_time.h"

#include "procfs.h"
#include "sockdiag.h"

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

/* In the child, between fork and exec: only async-signal-safe calls. */
static void target_child(const char *command, unsigned rlimit_nofile, const char *log_path,
                         pid_t parent)
{
    setpgid(0, 0);
    /* If the harness dies, even by SIGKILL, the target must not outlive it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    /* Under Yama ptrace_scope 1 only an ancestor may attach: let the harness (and the helper
     * it forks to take a backtrace when the target is stuck) do so. */
    prctl(PR_SET_PTRACER, parent);
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log < 0 || null < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
        _exit(127);
    if (rlimit_nofile) {
        struct rlimit rl = {rlimit_nofile, rlimit_nofile};
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            _exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execl("/bin/sh", "sh", "-c", command, (char *)NULL);
    _exit(127);
}

int target_start(struct target *t, const char *cmd_template, const struct sockaddr_in *addr,
                 unsigned rlimit_nofile, const char *log_path, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->owned = true;
    t->addr = *addr;
    if (expand_port(t->command, sizeof(t->command), cmd_template, ntohs(addr->sin_port)) < 0) {
        snprintf(err, errlen, "--target-cmd: command too long");
        return -ENAMETOOLONG;
    }
    snprintf(t->log_path, sizeof(t->log_path), "%s", log_path);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -errno;
    }
    if (pid == 0)
        target_child(t->command, rlimit_nofile, t->log_path, parent);
    setpgid(pid, pid); /* also in the parent, so kill(-pid) works whoever runs first */
    t->pid = pid;
    return 0;
}

int target_attach(struct target *t, pid_t pid, const struct sockaddr_in *addr, char *err,
                  size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->pid = pid;
    t->addr = *addr;
    if (kill(pid, 0) < 0 && errno == ESRCH) {
        snprintf(err, errlen, "--target-pid %d: no such process", (int)pid);
        return -ESRCH;
    }
    return 0;
}

bool target_alive(struct target *t)
{
    if (t->exited)
        return false;
    if (t->owned) {
        int status;
        pid_t r = waitpid(t->pid, &status, WNOHANG);
        if (r == t->pid) {
            t->exited = true;
            t->wait_status = status;
        }
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
        uint64_t deadline = cf_now_ms() + grace_ms;
        while (target_alive(t) && cf_now_ms() < deadline) {
            struct pollfd none;
            poll(&none, 0, 10);
        }
    }
    /* Whatever is left of the group (children the shell or server started) goes too. */
    kill(-t->pid, SIGKILL);
    if (!t->exited) {
        int status;
        if (waitpid(t->pid, &status, 0) == t->pid) {
            t->exited = true;
            t->wait_status = status;
        }
    }
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
}
