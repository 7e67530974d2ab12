/* env: what one run sets up once for all its scenarios (see run.h, run_internal.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "run_internal.h"
#include "scenario.h"

/* Timeouts the reference server runs with in the suite: short, so that the wait after the
 * faults (up to the grace, 90 s by default) ends within a couple of seconds. */
#define REFERENCE_FLAGS                                                                            \
    "--port {port} --header-timeout 1 --idle-timeout 2 --send-timeout 1 --tcp-user-timeout 2 "     \
    "--shutdown-timeout 1 --quiet"

static void build_probe_request(struct run_env *env)
{
    const struct run_options *o = env->opt;
    if (o->probe_raw) {
        size_t n = o->probe_raw_len < sizeof(env->probe_request) ? o->probe_raw_len
                                                                 : sizeof(env->probe_request);
        memcpy(env->probe_request, o->probe_raw, n);
        env->probe_request_len = n;
        return;
    }
    int n = snprintf(env->probe_request, sizeof(env->probe_request),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", o->probe_path,
                     env->host_header);
    env->probe_request_len = n > 0 && (size_t)n < sizeof(env->probe_request) ? (size_t)n : 0;
}

static void build_host_header(struct run_env *env)
{
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &env->addr.sin_addr, host, sizeof(host));
    if (env->addr.sin_port)
        snprintf(env->host_header, sizeof(env->host_header), "%s:%d", host,
                 ntohs(env->addr.sin_port));
    else
        snprintf(env->host_header, sizeof(env->host_header), "%s", host);
}

/* The command template and the temp dir for the targets the harness starts. */
static int prepare_started_target(struct run_env *env, char *err, size_t errlen)
{
    const struct run_options *o = env->opt;
    if (o->target_cmd)
        snprintf(env->command, sizeof(env->command), "%s", o->target_cmd);
    else
        snprintf(env->command, sizeof(env->command), "exec '%s' " REFERENCE_FLAGS "%s%s",
                 o->reference_server, o->bug ? " --bug " : "", o->bug ? o->bug : "");
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(env->tmpdir, sizeof(env->tmpdir), "%s/connfault-%d.XXXXXX", base, (int)getpid());
    if (!mkdtemp(env->tmpdir)) {
        int rc = -errno;
        snprintf(err, errlen, "mkdtemp %s: %s", env->tmpdir, strerror(errno));
        env->tmpdir[0] = '\0';
        return rc;
    }
    return 0;
}

/* --target-pid: the process must exist and be the one listening on the port, before
 * anything else: measuring a process that receives no traffic would judge the wrong server. */
static int attach_target(struct run_env *env, char *err, size_t errlen)
{
    const struct run_options *o = env->opt;
    int rc = target_attach(&env->attached, o->target_pid, &o->addr, err, errlen);
    char why[400];
    if (rc == 0 && (rc = target_verify_listener(&env->attached, why, sizeof(why))) < 0)
        snprintf(err, errlen, "--target-pid: %s", why);
    return rc;
}

/* A short name of the target for capture files: runs against different targets into one
 * folder must not be told apart by their seed alone. */
static void set_capture_tag(struct run_env *env)
{
    const struct run_options *o = env->opt;
    if (o->target_pid) {
        snprintf(env->capture_tag, sizeof(env->capture_tag), "pid-%d", (int)o->target_pid);
        return;
    }
    if (!o->target_cmd) {
        snprintf(env->capture_tag, sizeof(env->capture_tag), "%s%s", o->bug ? "bug-" : "reference",
                 o->bug ? o->bug : "");
        return;
    }
    /* the program's base name: the first word, after an `exec` */
    const char *cmd = o->target_cmd + strspn(o->target_cmd, " \t");
    if (strncmp(cmd, "exec ", 5) == 0)
        cmd += 5 + strspn(cmd + 5, " \t");
    size_t len = strcspn(cmd, " \t");
    const char *base = cmd;
    for (const char *p = cmd; p < cmd + len; p++)
        if (*p == '/')
            base = p + 1;
    snprintf(env->capture_tag, sizeof(env->capture_tag), "%.*s", (int)(cmd + len - base), base);
}

struct run_env *run_env_new(const struct run_options *opt, char *err, size_t errlen)
{
    struct run_env *env = calloc(1, sizeof(*env));
    if (!env) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    env->opt = opt;
    env->gate_fd = -1;
    env->addr = opt->addr;
    inet_pton(AF_INET, RUN_FAULT_CLIENT_HOST, &env->fault_host);
    build_host_header(env);
    build_probe_request(env);
    env->limits = (struct check_limits){.cpu_max_pct = opt->cpu_max_pct,
                                        .memory_slack_kb = opt->memory_slack_kb,
                                        .probe_timeout_ms = opt->probe_timeout_ms,
                                        .grace_ms = opt->grace_ms};
    int rc = opt->target_pid ? attach_target(env, err, errlen)
                             : prepare_started_target(env, err, errlen);
    if (rc < 0) {
        free(env);
        return NULL;
    }
    set_capture_tag(env);
    env->capture = (struct capture_plan){.dir = opt->capture_dir,
                                         .tmpdir = env->tmpdir,
                                         .on_failure = opt->capture_failures,
                                         .verbosity = opt->verbosity,
                                         .target_tag = env->capture_tag};
    return env;
}

const char *run_env_sandbox(struct run_env *env)
{
    if (env->sandbox.ready || env->no_sandbox)
        return env->no_sandbox;
    if (env->opt->no_sandbox)
        env->no_sandbox = "--no-sandbox: silent drop needs connfault's own network namespace";
    else if (env->opt->target_pid)
        env->no_sandbox = "silent drop needs the target inside connfault's own network namespace; "
                          "an attached process (--target-pid) is not: start it with --target-cmd";
    else if (sandbox_enter(&env->sandbox) < 0)
        env->no_sandbox = env->sandbox.why_not;
    return env->no_sandbox;
}

struct in_addr run_job_host(struct in_addr host, unsigned slot)
{
    return (struct in_addr){.s_addr = htonl(ntohl(host.s_addr) + ((uint32_t)slot << 16))};
}

int run_env_enter_job(struct run_env *env, unsigned slot, char *err, size_t errlen)
{
    env->fault_host = run_job_host(env->fault_host, slot);
    if (env->addr.sin_port) {
        env->addr.sin_port = htons((uint16_t)(ntohs(env->addr.sin_port) + slot));
        build_host_header(env);
        build_probe_request(env);
    }
    env->on_progress = NULL; /* the parent draws the status line */
    char gate[300];
    run_env_gate_path(env, gate, sizeof(gate));
    env->gate_fd = open(gate, O_RDWR | O_CLOEXEC); /* a lock of this job's own (flock) */
    if (sandbox_fork_job(&env->sandbox) < 0) {
        snprintf(err, errlen, "job %u: %s", slot + 1, env->sandbox.why_not);
        return -EIO;
    }
    return 0;
}

void run_env_gate_path(const struct run_env *env, char *path, size_t len)
{
    snprintf(path, len, "%s/fault-phase.lock", env->tmpdir);
}

void run_env_gate(struct run_env *env, bool hold)
{
    if (env->gate_fd < 0 || env->gate_held == hold)
        return;
    /* interrupted (EINTR): go on unlocked; the phases see the flag and end */
    env->gate_held = flock(env->gate_fd, hold ? LOCK_EX : LOCK_UN) == 0 && hold;
}

void run_env_set_progress(struct run_env *env, run_progress_fn *fn, void *arg)
{
    env->on_progress = fn;
    env->progress_arg = arg;
}

void run_env_scenario_vars(const struct run_env *env, struct scenario_vars *vars)
{
    const struct run_options *o = env->opt;
    memset(vars, 0, sizeof(*vars));
    vars->host = env->host_header;
    vars->probe_path = o->probe_path;
    vars->large_path = o->large_path;
    vars->huge_path = o->huge_path;
    vars->request_raw = o->request_raw;
    vars->request_raw_len = o->request_raw_len;
    vars->probe_raw = o->probe_raw;
    vars->probe_raw_len = o->probe_raw_len;
}

void run_env_free(struct run_env *env)
{
    if (!env)
        return;
    sandbox_free(&env->sandbox);
    if (env->gate_fd >= 0)
        close(env->gate_fd);
    if (env->tmpdir[0]) {
        char gate[300];
        run_env_gate_path(env, gate, sizeof(gate));
        unlink(gate);
        rmdir(env->tmpdir);
    }
    free(env);
}
