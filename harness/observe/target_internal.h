/* target_internal: what target.c, target_spawn.c and target_identity.c share; not for other
 * folders (they use target.h). */
#ifndef CONNFAULT_TARGET_INTERNAL_H
#define CONNFAULT_TARGET_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#include "target.h"

/* Every started target's environment has CONNFAULT_OWNER=<pid of the harness that started it>
 * (sandbox/cleanup.c looks for the same name: it does not link this library). */
#define TARGET_OWNER_ENV "CONNFAULT_OWNER"

/* Everything the child side of a start needs, prepared before the fork: the child only
 * makes system calls. */
struct spawn_plan {
    enum target_exec how;
    char **argv;      /* TARGET_EXEC_DIRECT */
    const char *text; /* otherwise: sh -c text */
    char **envp;
    const char *log_path;
    unsigned rlimit_nofile;
    int life_r;   /* contained: the init's end of the life pipe */
    int status_w; /* contained: where the init writes "started" and then the target's status */
};

/* Clone the init (PID 1 of a new PID namespace) that starts the target. 0, or -errno (EPERM,
 * EINVAL: no PID namespace here; the caller falls back to target_spawn_plain). */
int target_spawn_contained(struct spawn_plan *sp, pid_t *init_pid);

/* In a forked child: exec the target. Never returns. */
void target_spawn_plain(struct spawn_plan *sp) __attribute__((noreturn));

/* Our environment plus CONNFAULT_OWNER=<our pid> (written into owner). malloc'd array; NULL
 * when out of memory. */
char **target_spawn_environment(char *owner, size_t ownerlen);

#endif
