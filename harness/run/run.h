/* run: `connfault run`: for each scenario, start (or attach to) the target, take a
 * baseline, throw the scenario's clients at it while probing, let it settle, judge it. */
#ifndef CONNFAULT_RUN_H
#define CONNFAULT_RUN_H

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct run_options {
    /* target */
    const char *target_cmd;       /* NULL: the reference server */
    pid_t target_pid;             /* > 0: attach */
    const char *bug;              /* reference server only: --bug NAME */
    bool no_sandbox;              /* never enter a network namespace: silent drops skip */
    const char *reference_server; /* path of connfault-server */
    struct sockaddr_in addr;      /* host and port (port 0: pick one per scenario) */
    uint64_t ready_timeout_ms;
    /* probes and requests */
    const char *probe_path, *large_path;
    const char *probe_raw, *probe_expect, *request_raw; /* NULL, or bytes after escapes */
    size_t probe_raw_len, probe_expect_len, request_raw_len;
    uint64_t probe_timeout_ms, probe_interval_ms;
    /* judging */
    uint64_t grace_ms, cpu_window_ms;
    double cpu_max_pct;
    uint64_t memory_slack_kb;
    /* output */
    uint64_t seed;
    const char *junit_path, *json_path;
    int verbosity; /* 0 quiet, 1 normal, 2 verbose */
    bool progress; /* a live status line on stderr (a terminal) */
    /* --capture DIR: every scenario's traffic in DIR/NAME-SEED.pcap. Without it, and with
     * capture_failures, only failing scenarios' captures are kept, in ./connfault-captures/ */
    const char *capture_dir;
    bool capture_failures;
    bool color;
    volatile sig_atomic_t *interrupted; /* set by SIGINT/SIGTERM */
};

/* The defaults of `connfault run` (documented in its --help). */
void run_options_defaults(struct run_options *o, volatile sig_atomic_t *interrupted);

/* Run the named scenarios (built-in names or file paths; none = all built-in).
 * Returns the exit status: 0 all passed or skipped, 1 a failure, 2 usage/set-up error,
 * 130 interrupted. Messages go to stderr, results to stdout. */
int run_main(const struct run_options *opt, char **names, int nnames);

struct run_report;
/* The same, without printing totals or writing report files: the results are left in *rep
 * (free with run_report_free). For self-tests that inspect verdicts and numbers. */
int run_collect(const struct run_options *opt, char **names, int nnames, struct run_report *rep);

struct scenario;
/* `connfault replay`: run_main() for one scenario built by the caller (sc->replay set). */
int run_replay(const struct run_options *opt, struct scenario *sc);

/* `connfault list`. Returns an exit status. */
int run_list(void);

#endif
