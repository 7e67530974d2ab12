/* target_spawn: how a started target's command is run (target_plan_command) and the small
 * init that holds it in a PID namespace of its own (target_spawn). See target.h. */
#include "target.h"
#include "target_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Characters that make a command more than plain words: the shell must read it. */
static const char SHELL_SPECIAL[] = "\"'\\$`*?[]~#{}|&;<>()!\n\r\t=%";
/* Of those, the ones that (outside quotes) make it more than one simple command. */
static const char SHELL_OPERATORS[] = "|&;<>()\n`";

/* Words that start a compound command or do not name a program: `exec` cannot go before them. */
static bool shell_keyword(const char *word, size_t n)
{
    static const char *const kw[] = {"if",  "then",  "else",     "elif",   "fi",   "case", "esac",
                                     "for", "while", "until",    "do",     "done", "{",    "}",
                                     "!",   "exec",  "function", "select", "time", NULL};
    for (size_t i = 0; kw[i]; i++)
        if (strlen(kw[i]) == n && strncmp(word, kw[i], n) == 0)
            return true;
    return false;
}

/* One simple command: no operator outside quotes, and a first word that names a program
 * (not a keyword, not an assignment NAME=value). */
static bool single_simple_command(const char *cmd)
{
    char quote = 0;
    for (const char *p = cmd; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
            else if (*p == '\\' && quote == '"' && p[1])
                p++;
            continue;
        }
        if (*p == '\'' || *p == '"')
            quote = *p;
        else if (*p == '\\' && p[1])
            p++;
        else if (strchr(SHELL_OPERATORS, *p) || (*p == '$' && p[1] == '('))
            return false;
    }
    const char *w = cmd + strspn(cmd, " ");
    size_t n = strcspn(w, " ");
    return quote == 0 && n > 0 && !shell_keyword(w, n) && memchr(w, '=', n) == NULL;
}

/* Split plain words on spaces into buf; argv points into buf. -E2BIG: too many words. */
static int split_words(const char *cmd, char *buf, char *argv[TARGET_MAX_WORDS + 1])
{
    strcpy(buf, cmd);
    size_t n = 0;
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        if (n == TARGET_MAX_WORDS)
            return -E2BIG;
        argv[n++] = w;
    }
    argv[n] = NULL;
    return n ? 0 : -EINVAL;
}

int target_plan_command(const char *command, char *buf, size_t buflen,
                        char *argv[TARGET_MAX_WORDS + 1], enum target_exec *how)
{
    argv[0] = NULL;
    if (strlen(command) + sizeof("exec ") > buflen)
        return -ENAMETOOLONG;
    if (strpbrk(command, SHELL_SPECIAL) == NULL && split_words(command, buf, argv) == 0 &&
        !shell_keyword(argv[0], strlen(argv[0]))) {
        *how = TARGET_EXEC_DIRECT;
        return 0;
    }
    argv[0] = NULL;
    *how = single_simple_command(command) ? TARGET_EXEC_SHELL_EXEC : TARGET_EXEC_SHELL;
    snprintf(buf, buflen, "%s%s", *how == TARGET_EXEC_SHELL_EXEC ? "exec " : "", command);
    return 0;
}

/* fd, moved to 3 or above if it is one of 0-2 (a system call only: see below). */
static int spawn_fd_above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* The target itself, between fork and exec: its process group, its log, its fd limit, its
 * environment (CONNFAULT_OWNER, for `connfault cleanup`). System calls only (no malloc: the
 * copy of the harness it runs in may hold a lock of another thread). Never returns. */
__attribute__((noreturn)) static void spawn_exec_target(const struct spawn_plan *sp)
{
    setpgid(0, 0);
    /* If our parent dies (the harness, or the init), even by SIGKILL, so do we. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* Under Yama ptrace_scope 1 only an ancestor may attach, and the helper the harness forks
     * to take a backtrace of a stuck target is not one. Inside a PID namespace the harness's
     * pid cannot be named to PR_SET_PTRACER, so any process of ours may. */
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY);
    /* The init closed every fd, 0-2 included: opened plainly, the log would become fd 0 and
     * the dup2s below would send the target's output to /dev/null. Keep both above 2. */
    int log =
        spawn_fd_above_stdio(open(sp->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    int null = spawn_fd_above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (log < 0 || null < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
        _exit(127);
    if (sp->rlimit_nofile) {
        struct rlimit rl = {sp->rlimit_nofile, sp->rlimit_nofile};
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            _exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    if (sp->how == TARGET_EXEC_DIRECT)
        execvpe(sp->argv[0], sp->argv, sp->envp);
    else
        execle("/bin/sh", "sh", "-c", sp->text, (char *)NULL, sp->envp);
    _exit(127);
}

/* Close every fd but keep (a copy of the harness's fds must not live on in the init). */
static void spawn_close_all_but(int keep1, int keep2)
{
    int lo = keep1 < keep2 ? keep1 : keep2, hi = keep1 < keep2 ? keep2 : keep1;
    if (lo > 0)
        close_range(0, (unsigned)lo - 1, 0);
    if (hi > lo + 1)
        close_range((unsigned)lo + 1, (unsigned)hi - 1, 0);
    close_range((unsigned)hi + 1, ~0U, 0);
}

static void on_sigchld(int sig)
{
    (void)sig; /* only there so that ppoll() returns */
}

/* The init: PID 1 of the target's PID namespace. Forks the target, reports its pid, reaps
 * whatever is reparented to it, and exits (taking the namespace with it) when the target
 * exits, after writing its wait status, or when the harness's end of the life pipe closes. */
static int spawn_init(void *arg)
{
    const struct spawn_plan *sp = arg;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    spawn_close_all_but(sp->life_r, sp->status_w);
    struct pollfd life = {.fd = sp->life_r, .events = POLLIN};
    if (poll(&life, 1, 0) != 0) /* the harness died before the prctl */
        _exit(1);
    prctl(PR_SET_NAME, "connfault-init");
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    struct sigaction sa = {.sa_handler = on_sigchld};
    sigaction(SIGCHLD, &sa, NULL);
    /* The raw system call, not fork(): glibc's fork() takes malloc's locks, and one another
     * thread of the harness held when we were cloned would never be released here. */
    pid_t child = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (child == 0) {
        close(sp->life_r);
        close(sp->status_w);
        spawn_exec_target(sp);
    }
    int msg[2] = {child > 0 ? 1 : -1, 0};
    if (child < 0 || write(sp->status_w, msg, sizeof(int)) != sizeof(int))
        _exit(1);
    for (;;) {
        int status;
        pid_t w;
        while ((w = waitpid(-1, &status, WNOHANG)) > 0)
            if (w == child) {
                msg[1] = status;
                _exit(write(sp->status_w, &msg[1], sizeof(int)) == sizeof(int) ? 0 : 1);
            }
        life.revents = 0;
        if (ppoll(&life, 1, NULL, &old) > 0)
            _exit(1); /* EOF: the harness is gone */
    }
}

/* A stack for clone(): the child runs on it in its own copy of our memory, so it is never
 * freed by the child; the parent frees its copy once the init is started. */
#define SPAWN_STACK_SIZE (256 * 1024)

int target_spawn_contained(struct spawn_plan *sp, pid_t *init_pid)
{
    char *stack = malloc(SPAWN_STACK_SIZE);
    if (!stack)
        return -ENOMEM;
    pid_t pid = clone(spawn_init, stack + SPAWN_STACK_SIZE, CLONE_NEWPID | SIGCHLD, sp);
    int rc = pid < 0 ? -errno : 0;
    free(stack);
    if (rc == 0)
        *init_pid = pid;
    return rc;
}

void target_spawn_plain(struct spawn_plan *sp)
{
    spawn_exec_target(sp);
}

/* The environment of a target: ours plus CONNFAULT_OWNER=<our pid>. malloc'd (NULL: no
 * memory); free with free() (the strings other than the last are environ's). */
char **target_spawn_environment(char *owner, size_t ownerlen)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = malloc((n + 2) * sizeof(*envp));
    if (!envp)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], TARGET_OWNER_ENV "=", sizeof(TARGET_OWNER_ENV)) != 0)
            envp[o++] = environ[i];
    snprintf(owner, ownerlen, "%s=%d", TARGET_OWNER_ENV, (int)getpid());
    envp[o++] = owner;
    envp[o] = NULL;
    return envp;
}
