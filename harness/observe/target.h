/* target: the server under test. Either started by the harness (the reference server, or
 * --target-cmd run by /bin/sh -c in its own process group) or attached to (--target-pid).
 * Started targets die with the harness (PR_SET_PDEATHSIG) and are always reaped. */
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
    int wait_status;     /* valid when exited && owned */
};

/* Pick a free TCP port on the loopback address given (bind port 0, read it, close). */
int target_pick_port(const struct in_addr *addr, int *port);

/* Start cmd_template with {port} replaced, under /bin/sh -c, in its own process group, with
 * RLIMIT_NOFILE lowered to rlimit_nofile if non-zero; output appended to log_path. */
int target_start(struct target *t, const char *cmd_template, const struct sockaddr_in *addr,
                 unsigned rlimit_nofile, const char *log_path, char *err, size_t errlen);

/* Attach to a running process. -ESRCH if it does not exist. */
int target_attach(struct target *t, pid_t pid, const struct sockaddr_in *addr, char *err,
                  size_t errlen);

/* Is it still running? Reaps an owned target that exited (see wait_status). */
bool target_alive(struct target *t);

/* Wait until a TCP connect to the target succeeds, for at most timeout_ms. 0, -ETIMEDOUT,
 * or -ESRCH if the target exited meanwhile. */
int target_wait_listening(struct target *t, uint64_t timeout_ms);

/* Owned targets: SIGTERM to the process group, up to grace_ms to exit, then SIGKILL;
 * always reaped. Attached targets are left alone. */
void target_stop(struct target *t, uint64_t grace_ms);

/* "exited with status 1", "killed by signal 13 (SIGPIPE)", "no longer exists" */
void target_describe_exit(const struct target *t, char *buf, size_t len);

/* The last line the target wrote to its log (for the report), or "" */
void target_last_log_line(const struct target *t, char *buf, size_t len);

#endif
