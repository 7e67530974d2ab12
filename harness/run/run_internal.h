/* run_internal: what the files of run/ share and its tests may look at; not for other
 * folders (they use run.h). */
#ifndef CONNFAULT_RUN_INTERNAL_H
#define CONNFAULT_RUN_INTERNAL_H

#include "capture.h"
#include "checks.h"
#include "run.h"
#include "sandbox.h"
#include "target.h"

#define RUN_SLICE_MS             20   /* the engine runs in slices this long between samples */
#define RUN_FD_SAMPLE_MS         50   /* fd tables are read this often */
#define RUN_SOCKET_SAMPLE_MS     200  /* socket states (sock_diag) this often, while settling */
#define RUN_PROGRESS_MS          250  /* the live status line is redrawn this often */
#define RUN_TARGET_STOP_GRACE_MS 2000 /* SIGTERM to SIGKILL for a started target */

/* The fault clients' host; probes come from 127.0.0.1, a second host that keeps probing.
 * Job k of --jobs moves it, and every host of its scenarios' groups, to 127.k.x.x. */
#define RUN_FAULT_CLIENT_HOST "127.0.0.2"

/* What stays the same from one scenario to the next (run_env_new .. run_env_free). */
struct run_env {
    const struct run_options *opt;
    struct check_limits limits;
    char tmpdir[256];     /* the started targets' logs, and captures awaiting a verdict */
    char command[4096];   /* target command template ({port}); empty when attached */
    char capture_tag[64]; /* the target in capture file names: reference, bug-NAME, nginx... */
    struct target attached;
    struct sockaddr_in addr;   /* the target's: --host and --port (+ the job's slot) */
    struct in_addr fault_host; /* RUN_FAULT_CLIENT_HOST, moved to 127.k.0.2 in job k */
    int gate_fd;               /* a job's lock on the fault phases (run_env_gate), or -1 */
    bool gate_held;
    char probe_request[2048];
    size_t probe_request_len;
    char host_header[64];
    struct sandbox sandbox; /* ready when a scenario needs silent drops and we could enter it */
    const char *no_sandbox; /* why scenarios that need it are skipped, or NULL */
    struct capture_plan capture;
    run_progress_fn *on_progress; /* or NULL */
    void *progress_arg;
};

/* In the process jobs.c forked for job slot (run.c's run_in_job): the fault clients' host moves to
 * 127.slot.0.2, an explicit --port to --port + slot (a free port is picked per scenario anyway)
 * and the drops to a table of the job's own. 0, or -errno with why in err. env.c. */
int run_env_enter_job(struct run_env *env, unsigned slot, char *err, size_t errlen);
/* The lock file of run_env_gate, in the env's temp dir (run.c makes it before the jobs). */
void run_env_gate_path(const struct run_env *env, char *path, size_t len);

/* --jobs: one job at a time takes its baseline and runs its fault clients (hold true, until
 * hold false); the waits after the faults overlap. On 2 cores, fault phases run side by side
 * starved each other's clients and probes (clients that missed their fault, probes unanswered)
 * and changed verdicts; a wait costs almost nothing. Nothing outside a job. env.c. */
void run_env_gate(struct run_env *env, bool hold);

/* A client host (loopback) as job slot sees it: 127.a.b.c -> 127.(a + slot).b.c. */
struct in_addr run_job_host(struct in_addr host, unsigned slot);

/* Start the env's command as a target on --port (or a free port): refused when another
 * process holds the port; then wait until it listens, and check that the listener is its
 * own. 0, or -errno with why in err (the target is stopped again then). setup.c. */
int run_start_target(struct run_env *env, struct target *t, unsigned rlimit_nofile, const char *log,
                     char *err, size_t errlen);

/* Stop a started target and remove its log; nothing for an attached one. */
void run_stop_target(struct target *t);

#endif
