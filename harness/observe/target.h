/* target: the server under test. Either started by the harness (the reference server, or
 * --target-cmd) or attached to (--target-pid).
 *
 * A started target runs as the one child of a small init that is PID 1 of a PID namespace of
 * its own (where the kernel allows one: root, or inside the sandbox's user namespace). When
 * that init ends, the kernel kills everything in the namespace: daemons' workers, setsid()'d
 * children, fork-per-connection children. The init ends when the target exits, when
 * target_stop() kills it, and when the harness dies, even by SIGKILL (PR_SET_PDEATHSIG, and a
 * pipe only the harness holds, for the moment before the prctl). Where no PID namespace can be
 * made the target runs in a process group of its own with PR_SET_PDEATHSIG, as before, and
 * `connfault cleanup` ends what is left: every started target carries CONNFAULT_OWNER=<pid of
 * the harness> in its environment.
 *
 * The command: {port} expanded; a command of plain words is exec'd directly (split on blanks),
 * a single simple command with quotes or expansions is run as `sh -c 'exec COMMAND'`, anything
 * else (pipes, lists, redirections) as `sh -c COMMAND`. So pid is the server itself, not a
 * shell waiting for it, whenever it can be. */
#ifndef CONNFAULT_TARGET_H
#define CONNFAULT_TARGET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct target {
    bool owned; /* started (and stopped) by us */
    pid_t pid;  /* the root of the target's process tree */
    struct sockaddr_in addr;
    char command[4096];  /* as run, {port} expanded; empty when attached */
    char log_path[4096]; /* the started target's stdout and stderr; empty when attached */
    bool exited;         /* reaped (owned) or gone (attached) */
    int wait_status;     /* valid when exited && owned: the target's own, not its init's */
    pid_t init_pid;      /* owned and contained: the PID namespace's init (our child); else 0 */
    int status_fd;       /* contained: the init reports the target's pid and exit status */
    int life_fd;         /* contained: held open by the harness only; EOF ends the init */
};

/* How target_start runs a command (see the top of this file). */
enum target_exec {
    TARGET_EXEC_DIRECT,     /* argv: the command's words, exec'd without a shell */
    TARGET_EXEC_SHELL_EXEC, /* sh -c 'exec COMMAND': a single simple command */
    TARGET_EXEC_SHELL,      /* sh -c COMMAND: a pipeline, list, redirection, ... */
};

#define TARGET_MAX_WORDS 64

/* Decide how to run command. For TARGET_EXEC_DIRECT the words are copied into buf and argv
 * points into it (NULL-terminated); otherwise buf holds the text for sh -c. -ENAMETOOLONG
 * when it does not fit. */
int target_plan_command(const char *command, char *buf, size_t buflen,
                        char *argv[TARGET_MAX_WORDS + 1], enum target_exec *how);

/* Who holds a LISTEN socket on addr's port (on addr, or on every address)? 0 and "" when
 * nobody does; -EADDRINUSE with "pid 4242 (nginx)" in who (or "a process connfault cannot
 * see" when no fd table visible to us holds it). */
int target_port_holder(const struct sockaddr_in *addr, char *who, size_t wholen);

/* Is the LISTEN socket on t->addr held by t's process tree? 0; -ENOENT when nothing listens
 * there; -EADDRINUSE when another process does (err names it); -ESRCH when t is gone. err
 * says it in words a user can act on. */
int target_verify_listener(const struct target *t, char *err, size_t errlen);

/* "4242 (nginx)": a pid and its name, for messages. */
void target_describe_pid(pid_t pid, char *buf, size_t len);

/* Pick a free TCP port on the loopback address given (bind port 0, read it, close). */
int target_pick_port(const struct in_addr *addr, int *port);

/* Start cmd_template with {port} replaced (see the top of this file), in its own process
 * group, with RLIMIT_NOFILE lowered to rlimit_nofile if non-zero; output appended to
 * log_path. t->pid is the process exec'd (the server, when the command is simple). */
int target_start(struct target *t, const char *cmd_template, const struct sockaddr_in *addr,
                 unsigned rlimit_nofile, const char *log_path, char *err, size_t errlen);

/* Attach to a running process. -ESRCH if it does not exist. (Whether it is the one listening
 * on addr is target_verify_listener's question: the run asks it before anything else.) */
int target_attach(struct target *t, pid_t pid, const struct sockaddr_in *addr, char *err,
                  size_t errlen);

/* Is it still running? Reaps an owned target that exited (see wait_status). */
bool target_alive(struct target *t);

/* Wait until a TCP connect to the target succeeds, for at most timeout_ms. 0, -ETIMEDOUT,
 * or -ESRCH if the target exited meanwhile. */
int target_wait_listening(struct target *t, uint64_t timeout_ms);

/* Owned targets: SIGTERM to the process group, up to grace_ms to exit, then SIGKILL to the
 * group and to the init (which takes the whole PID namespace with it); always reaped, and
 * nothing the target started is left. Attached targets are left alone. */
void target_stop(struct target *t, uint64_t grace_ms);

/* "exited with status 1", "killed by signal 13 (SIGPIPE)", "no longer exists" */
void target_describe_exit(const struct target *t, char *buf, size_t len);

/* The last line the target wrote to its log (for the report), or "" */
void target_last_log_line(const struct target *t, char *buf, size_t len);

#endif
