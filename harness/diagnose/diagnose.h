/* diagnose: when a target hangs or spins, say where it is stuck and on what.
 *
 * For every thread of the target's process tree: its state and kernel wait channel, the
 * system call it sleeps in with its arguments (an fd argument described: a TCP socket with
 * its addresses, state and queues, a listener with its accept queue, an epoll instance with
 * the fds it watches, a pipe, a file), and a symbolized user-space backtrace (elfutils
 * libdwfl, with file:line where debug info exists). For a busy target it also counts which
 * system calls the spinning threads make and how they fail (EMFILE...).
 *
 * Everything that needs ptrace (backtraces, counting system calls) runs in a forked helper
 * that seizes the target's threads (PTRACE_SEIZE: no SIGSTOP is ever sent), stops them for a
 * moment and detaches; the helper is killed if it overruns the budget, which also detaches.
 * The target's memory and registers are only read. A side effect that cannot be avoided with
 * any debugger: a thread stopped while sleeping in epoll_wait/poll/select/nanosleep-style
 * calls sees that call return EINTR (or restart), as after any signal.
 *
 * Without ptrace rights (kernel.yama.ptrace_scope, another user's process) the diagnosis says
 * so and reports what /proc still shows. */
#ifndef CONNFAULT_DIAGNOSE_H
#define CONNFAULT_DIAGNOSE_H

#include <stdbool.h>
#include <sys/types.h>

#define DIAGNOSE_DEFAULT_BUDGET_MS 3000

struct diagnose_options {
    int port;             /* the target's listening port (for the listen backlog), 0 = unknown */
    bool sample_syscalls; /* for a CPU failure: which system calls it repeats */
    unsigned budget_ms;   /* hard bound on the whole diagnosis; 0 = DIAGNOSE_DEFAULT_BUDGET_MS */
    const char *capture_path; /* mentioned in the report, or NULL */
    const char *moment;       /* when and why it was taken, as the report says it, or NULL */
};

/* All three strings are malloc'd and NUL-terminated (possibly empty, never NULL after a
 * successful diagnose_target). */
struct diagnosis {
    char *text;    /* multi-line human report */
    char *json;    /* one JSON object */
    char *summary; /* one line, e.g. for a JUnit failure message */
};

/* Diagnoses root and its descendants within opt->budget_ms. Returns 0 (the report may still
 * say that parts could not be seen), -ESRCH if root does not exist, -ENOMEM. */
int diagnose_target(pid_t root, const struct diagnose_options *opt, struct diagnosis *out);

void diagnosis_free(struct diagnosis *d);

#endif
