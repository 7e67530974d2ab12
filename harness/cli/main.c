/* connfault: command line. `run` throws misbehaving clients at a server and judges it;
 * `list` names the built-in scenarios. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cleanup.h"
#include "escape.h"
#include "pcap_flows.h"
#include "run.h"
#include "scenario.h"

#ifndef CONNFAULT_VERSION
#define CONNFAULT_VERSION "0.1.0"
#endif
#ifndef CONNFAULT_REFERENCE_SERVER
#define CONNFAULT_REFERENCE_SERVER "connfault-server"
#endif

#define MAX_RAW 65536

static volatile sig_atomic_t interrupted; /* the one global: signal handlers need it */

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *out)
{
    fputs("Usage: connfault run [OPTIONS] [SCENARIO...]\n"
          "       connfault replay [OPTIONS] [--server-port P] [--speed X|max] CAPTURE\n"
          "       connfault replay --dump [--server-port P] CAPTURE\n"
          "       connfault list\n"
          "       connfault cleanup\n"
          "\n"
          "Throws misbehaving TCP clients at a server (aborts mid-response, resets, half-closes,\n"
          "slowloris, clients that never read, floods) and checks from outside its process that\n"
          "it keeps accepting, stays alive, does not spin, and leaks no fds or sockets.\n"
          "SCENARIO is a built-in name (see `connfault list`) or a scenario file path;\n"
          "none runs every built-in scenario. `cleanup` removes what a killed connfault left\n"
          "behind (a later run does it too).\n"
          "\n"
          "`replay` replays every TCP connection of a capture (pcap or pcapng, e.g. from\n"
          "tcpdump or `run --capture`) against the target, over real sockets: the clients'\n"
          "bytes, segment boundaries, timing and concurrency, and how each connection ended\n"
          "(close, reset, stopped reading, or vanished); then the same checks as `run`. Its\n"
          "options are run's, and:\n"
          "  --server-port P       the server side of the capture is port P (default: the side\n"
          "                        that received SYNs, else the lower port)\n"
          "  --speed X|max         X times the captured pace (1); max: no waits\n"
          "  --dump                print what was understood of the capture, replay nothing\n"
          "\n"
          "Silent drops (clients that vanish without FIN or RST) run in a private network\n"
          "namespace the harness creates for itself and the target (as root a plain one,\n"
          "otherwise inside a user namespace: no sudo needed); where the kernel refuses, those\n"
          "scenarios are skipped with the reason. Nothing is added to the host's firewall.\n"
          "\n"
          "Target (default: the reference connfault-server, started for each scenario):\n"
          "  --target-cmd CMD      start the server with /bin/sh -c CMD (own process group);\n"
          "                        {port} in CMD is replaced by the port\n"
          "  --target-pid PID      attach to a running server (needs --port)\n"
          "  --port N              the server's port (default: a free port, via {port})\n"
          "  --host ADDR           the server's address; loopback only (default 127.0.0.1)\n"
          "  --ready-timeout S     wait this long for the first accepted connection (10)\n"
          "  --bug NAME            run the reference server with --bug NAME (self-tests, demos)\n"
          "  --no-sandbox          never enter a network namespace (silent-drop scenarios skip)\n"
          "\n"
          "Probes and requests:\n"
          "  --probe-path P        path the probes GET (default /)\n"
          "  --large-path P        a response of at least 1 MiB for mid-response faults\n"
          "                        (default /bytes/1048576; /big.bin suits file servers)\n"
          "  --probe-raw BYTES     non-HTTP servers: the probe's bytes (C escapes: 'PING\\r\\n')\n"
          "  --probe-expect BYTES  the reply must start with these bytes (e.g. '+PONG')\n"
          "  --request-raw BYTES   non-HTTP servers: what `request = large` clients send\n"
          "  --probe-timeout S     a probe must be answered within S (2)\n"
          "  --probe-interval S    time between probes (0.25)\n"
          "\n"
          "Judging:\n"
          "  --grace S             time after the faults for fds and sockets to come back (5)\n"
          "  --cpu-window S        idle time after the faults over which CPU is measured (1)\n"
          "  --cpu-threshold PCT   max CPU, % of one core, in that window (20)\n"
          "  --memory-slack MIB    allowed RSS growth over the baseline (32)\n"
          "\n"
          "Output:\n"
          "  --seed N              random offsets and timings (default: random; printed)\n"
          "  --junit FILE          JUnit XML, one testcase per scenario\n"
          "  --json FILE           JSON (format: harness/REPORTS.md)\n"
          "  --capture DIR         keep each scenario's traffic (pcap) in DIR/NAME-SEED.pcap\n"
          "  --no-capture          do not capture; by default (with CAP_NET_RAW) a failing\n"
          "                        scenario's traffic is kept in ./connfault-captures/\n"
          "  -q, --quiet           print failures and totals only\n"
          "  -v, --verbose         print every check of every scenario\n"
          "  -h, --help            this text;  --version  the version\n"
          "\n"
          "Checks: accepting (probes answered, p50/max latency), alive (exit status or signal),\n"
          "fds (before/peak/after, over the whole process tree), sockets (TCP states; CLOSE_WAIT\n"
          "fails), cpu (% of a core while idle after the faults), memory (RSS before/after).\n"
          "\n"
          "Exit status: 0 every scenario passed or was skipped (with a reason), 1 a scenario\n"
          "failed, 2 usage or set-up error (bad flag, scenario file error, target did not\n"
          "start), 130 interrupted. NO_COLOR disables colors.\n",
          out);
}

enum {
    OPT_TARGET_CMD = 256,
    OPT_TARGET_PID,
    OPT_PORT,
    OPT_HOST,
    OPT_READY_TIMEOUT,
    OPT_BUG,
    OPT_PROBE_PATH,
    OPT_LARGE_PATH,
    OPT_PROBE_RAW,
    OPT_PROBE_EXPECT,
    OPT_REQUEST_RAW,
    OPT_PROBE_TIMEOUT,
    OPT_PROBE_INTERVAL,
    OPT_GRACE,
    OPT_CPU_WINDOW,
    OPT_CPU_THRESHOLD,
    OPT_MEMORY_SLACK,
    OPT_SEED,
    OPT_JUNIT,
    OPT_JSON,
    OPT_VERSION,
    OPT_NO_SANDBOX,
    OPT_CAPTURE,
    OPT_NO_CAPTURE,
    OPT_SERVER_PORT, /* replay only, from here on */
    OPT_SPEED,
    OPT_DUMP,
};

static const struct option run_options_table[] = {
    {"target-cmd", required_argument, NULL, OPT_TARGET_CMD},
    {"target-pid", required_argument, NULL, OPT_TARGET_PID},
    {"port", required_argument, NULL, OPT_PORT},
    {"host", required_argument, NULL, OPT_HOST},
    {"ready-timeout", required_argument, NULL, OPT_READY_TIMEOUT},
    {"bug", required_argument, NULL, OPT_BUG},
    {"probe-path", required_argument, NULL, OPT_PROBE_PATH},
    {"large-path", required_argument, NULL, OPT_LARGE_PATH},
    {"probe-raw", required_argument, NULL, OPT_PROBE_RAW},
    {"probe-expect", required_argument, NULL, OPT_PROBE_EXPECT},
    {"request-raw", required_argument, NULL, OPT_REQUEST_RAW},
    {"probe-timeout", required_argument, NULL, OPT_PROBE_TIMEOUT},
    {"probe-interval", required_argument, NULL, OPT_PROBE_INTERVAL},
    {"grace", required_argument, NULL, OPT_GRACE},
    {"cpu-window", required_argument, NULL, OPT_CPU_WINDOW},
    {"cpu-threshold", required_argument, NULL, OPT_CPU_THRESHOLD},
    {"memory-slack", required_argument, NULL, OPT_MEMORY_SLACK},
    {"seed", required_argument, NULL, OPT_SEED},
    {"junit", required_argument, NULL, OPT_JUNIT},
    {"json", required_argument, NULL, OPT_JSON},
    {"no-sandbox", no_argument, NULL, OPT_NO_SANDBOX},
    {"capture", required_argument, NULL, OPT_CAPTURE},
    {"no-capture", no_argument, NULL, OPT_NO_CAPTURE},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Storage behind the option pointers that need decoding. */
struct cli_buffers {
    char probe_raw[MAX_RAW], probe_expect[MAX_RAW], request_raw[MAX_RAW];
};

static int parse_seconds(const char *flag, const char *text, uint64_t min_ms, uint64_t *ms)
{
    char *end;
    errno = 0;
    double s = strtod(text, &end);
    if (errno || end == text || *end || !(s >= 0) || s > 86400 || s * 1000 < (double)min_ms) {
        fprintf(stderr, "connfault: %s: invalid value '%s' (expected seconds%s, e.g. 2 or 0.5)\n",
                flag, text, min_ms ? " > 0" : "");
        return -1;
    }
    *ms = (uint64_t)(s * 1000 + 0.5);
    return 0;
}

static int parse_number(const char *flag, const char *text, unsigned long long max,
                        unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v > max) {
        fprintf(stderr, "connfault: %s: invalid value '%s' (expected a whole number up to %llu)\n",
                flag, text, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_raw(const char *flag, const char *text, char *buf, const char **out, size_t *len)
{
    char err[160];
    long n = escape_decode(text, strlen(text), buf, MAX_RAW, err, sizeof(err));
    if (n <= 0) {
        fprintf(stderr, "connfault: %s: %s\n", flag, n == 0 ? "empty" : err);
        return -1;
    }
    *out = buf;
    *len = (size_t)n;
    return 0;
}

/* Network safety: connfault sends traffic only to loopback. */
static int parse_host(const char *text, struct in_addr *addr)
{
    const char *ip = strcmp(text, "localhost") == 0 ? "127.0.0.1" : text;
    if (inet_pton(AF_INET, ip, addr) != 1) {
        fprintf(stderr, "connfault: --host: '%s' is not an IPv4 address (or localhost)\n", text);
        return -1;
    }
    if ((ntohl(addr->s_addr) >> 24) != 127) {
        fprintf(stderr,
                "connfault: --host %s: refused: connfault only sends traffic to loopback "
                "addresses (127.0.0.0/8)\n",
                text);
        return -1;
    }
    return 0;
}

/* The reference server: $CONNFAULT_SERVER, next to us (installed), in the build tree. */
static const char *find_reference_server(char *buf, size_t len)
{
    const char *env = getenv("CONNFAULT_SERVER");
    if (env && *env)
        return env;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(buf, len, "%.4000s/connfault-server", self);
            if (access(buf, X_OK) == 0)
                return buf;
            snprintf(buf, len, "%.4000s/../server/connfault-server", self);
            if (access(buf, X_OK) == 0)
                return buf;
        }
    }
    return CONNFAULT_REFERENCE_SERVER;
}

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
        seed = (uint64_t)getpid() * 2654435761u;
    return seed % 1000000000u; /* short enough to retype */
}

static int apply_option(int opt, const char *arg, struct run_options *o, struct cli_buffers *b)
{
    unsigned long long n;
    switch (opt) {
    case OPT_TARGET_CMD:
        o->target_cmd = arg;
        return 0;
    case OPT_TARGET_PID:
        if (parse_number("--target-pid", arg, INT_MAX, &n) < 0 || n == 0)
            return -1;
        o->target_pid = (pid_t)n;
        return 0;
    case OPT_PORT:
        if (parse_number("--port", arg, 65535, &n) < 0)
            return -1;
        o->addr.sin_port = htons((uint16_t)n);
        return 0;
    case OPT_HOST:
        return parse_host(arg, &o->addr.sin_addr);
    case OPT_READY_TIMEOUT:
        return parse_seconds("--ready-timeout", arg, 1, &o->ready_timeout_ms);
    case OPT_BUG:
        o->bug = arg;
        return 0;
    case OPT_PROBE_PATH:
        o->probe_path = arg;
        return 0;
    case OPT_LARGE_PATH:
        o->large_path = arg;
        return 0;
    case OPT_PROBE_RAW:
        return parse_raw("--probe-raw", arg, b->probe_raw, &o->probe_raw, &o->probe_raw_len);
    case OPT_PROBE_EXPECT:
        return parse_raw("--probe-expect", arg, b->probe_expect, &o->probe_expect,
                         &o->probe_expect_len);
    case OPT_REQUEST_RAW:
        return parse_raw("--request-raw", arg, b->request_raw, &o->request_raw,
                         &o->request_raw_len);
    case OPT_PROBE_TIMEOUT:
        return parse_seconds("--probe-timeout", arg, 1, &o->probe_timeout_ms);
    case OPT_PROBE_INTERVAL:
        return parse_seconds("--probe-interval", arg, 1, &o->probe_interval_ms);
    case OPT_GRACE:
        return parse_seconds("--grace", arg, 0, &o->grace_ms);
    case OPT_CPU_WINDOW:
        return parse_seconds("--cpu-window", arg, 100, &o->cpu_window_ms);
    case OPT_CPU_THRESHOLD:
        if (parse_number("--cpu-threshold", arg, 10000, &n) < 0 || n == 0)
            return -1;
        o->cpu_max_pct = (double)n;
        return 0;
    case OPT_MEMORY_SLACK:
        if (parse_number("--memory-slack", arg, 1u << 20, &n) < 0)
            return -1;
        o->memory_slack_kb = n * 1024;
        return 0;
    case OPT_SEED:
        if (parse_number("--seed", arg, UINT64_MAX, &n) < 0)
            return -1;
        o->seed = n;
        return 0;
    case OPT_JUNIT:
        o->junit_path = arg;
        return 0;
    case OPT_JSON:
        o->json_path = arg;
        return 0;
    case OPT_NO_SANDBOX:
        o->no_sandbox = true;
        return 0;
    case OPT_CAPTURE:
        o->capture_dir = arg;
        return 0;
    case OPT_NO_CAPTURE:
        o->capture_failures = false;
        return 0;
    case 'q':
        o->verbosity = 0;
        return 0;
    case 'v':
        o->verbosity = 2;
        return 0;
    }
    return -1;
}

static int check_combinations(const struct run_options *o)
{
    if (o->target_cmd && o->target_pid) {
        fprintf(stderr, "connfault: --target-cmd and --target-pid exclude each other\n");
        return -1;
    }
    if (o->target_pid && o->addr.sin_port == 0) {
        fprintf(stderr, "connfault: --target-pid needs --port (the port it listens on)\n");
        return -1;
    }
    if (o->bug && (o->target_cmd || o->target_pid)) {
        fprintf(stderr, "connfault: --bug applies to the reference server only; put it in "
                        "--target-cmd instead\n");
        return -1;
    }
    if (o->probe_expect && !o->probe_raw) {
        fprintf(stderr, "connfault: --probe-expect goes with --probe-raw\n");
        return -1;
    }
    if (o->probe_path[0] != '/' || o->large_path[0] != '/') {
        fprintf(stderr, "connfault: --probe-path and --large-path must start with '/'\n");
        return -1;
    }
    return 0;
}

static void raise_fd_limit(void)
{
    /* Thousands of clients need thousands of fds: use all the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* What `connfault replay` adds to run's options. */
struct replay_cli {
    struct pcap_flows_limits limits; /* server_port */
    double speed;
    bool dump;
};

static int apply_replay_option(int opt, const char *arg, struct replay_cli *r)
{
    unsigned long long n;
    char *end;
    switch (opt) {
    case OPT_SERVER_PORT:
        if (parse_number("--server-port", arg, 65535, &n) < 0 || n == 0)
            return -1;
        r->limits.server_port = (uint16_t)n;
        return 0;
    case OPT_SPEED:
        errno = 0;
        r->speed = strcmp(arg, "max") == 0 ? 0 : strtod(arg, &end);
        if (strcmp(arg, "max") != 0 &&
            (errno || end == arg || *end || !(r->speed > 0.001) || r->speed > 1e6)) {
            fprintf(stderr,
                    "connfault: --speed: invalid value '%s' (a factor such as 1, 10 "
                    "or 0.5, or max)\n",
                    arg);
            return -1;
        }
        return 0;
    case OPT_DUMP:
        r->dump = true;
        return 0;
    }
    return -1;
}

/* Parse run's options (and replay's, with r) into o. 0 go on, 1 done (--help), 2 error. */
static int parse_options(const char *cmd, int argc, char **argv, const struct option *table,
                         struct run_options *o, struct replay_cli *r)
{
    static struct cli_buffers buffers;
    bool seeded = false;
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":qvh", table, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            return 1;
        }
        if (opt == OPT_VERSION) {
            printf("connfault %s\n", CONNFAULT_VERSION);
            return 1;
        }
        if (opt == ':' || opt == '?') {
            fprintf(stderr, "connfault %s: %s '%s' (try --help)\n", cmd,
                    opt == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            return 2;
        }
        int rc = opt >= OPT_SERVER_PORT ? apply_replay_option(opt, optarg, r)
                                        : apply_option(opt, optarg, o, &buffers);
        if (rc < 0)
            return 2;
        seeded |= opt == OPT_SEED;
    }
    if (check_combinations(o) < 0)
        return 2;
    if (!seeded)
        o->seed = random_seed();
    o->progress = o->verbosity > 0 && isatty(STDERR_FILENO);
    o->color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    return 0;
}

static void prepare_to_run(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
}

static int command_run(int argc, char **argv)
{
    char server_path[PATH_MAX];
    struct run_options o;
    run_options_defaults(&o, &interrupted);
    /* On the command line a failure comes with its capture by default (cheap: see
     * harness/src/capture.h); in-process callers such as self-tests opt in. */
    o.capture_failures = true;
    int rc = parse_options("run", argc, argv, run_options_table, &o, NULL);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    o.reference_server = find_reference_server(server_path, sizeof(server_path));
    prepare_to_run();
    return run_main(&o, argv + optind, argc - optind);
}

static int command_replay(int argc, char **argv)
{
    struct option table[sizeof(run_options_table) / sizeof(run_options_table[0]) + 3];
    static const struct option replay_only[] = {
        {"server-port", required_argument, NULL, OPT_SERVER_PORT},
        {"speed", required_argument, NULL, OPT_SPEED},
        {"dump", no_argument, NULL, OPT_DUMP},
    };
    size_t nrun = sizeof(run_options_table) / sizeof(run_options_table[0]) - 1;
    memcpy(table, run_options_table, nrun * sizeof(table[0]));
    memcpy(table + nrun, replay_only, sizeof(replay_only));
    memset(&table[nrun + 3], 0, sizeof(table[0]));

    char server_path[PATH_MAX], err[512];
    struct run_options o;
    struct replay_cli r = {.speed = 1.0};
    run_options_defaults(&o, &interrupted);
    o.capture_failures = true;
    int rc = parse_options("replay", argc, argv, table, &o, &r);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (argc - optind != 1) {
        fprintf(stderr, "connfault replay: give one capture file (try --help)\n");
        return 2;
    }
    const char *path = argv[optind];
    struct replay_set set;
    if (pcap_flows_read_file(path, &r.limits, &set, err, sizeof(err)) < 0) {
        fprintf(stderr, "connfault replay: %s: %s\n", path, err);
        return 2;
    }
    if (r.dump) {
        pcap_flows_print(stdout, &set);
        replay_set_free(&set);
        return 0;
    }
    set.speed = r.speed;
    o.reference_server = find_reference_server(server_path, sizeof(server_path));
    prepare_to_run();
    rc = run_replay(&o, &set);
    replay_set_free(&set);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return command_run(argc - 1, argv + 1);
    if (strcmp(cmd, "replay") == 0)
        return command_replay(argc - 1, argv + 1);
    if (strcmp(cmd, "cleanup") == 0) {
        int n = cleanup_stale(stdout);
        printf("connfault: %d leftover(s) removed\n", n);
        return 0;
    }
    if (strcmp(cmd, "list") == 0) {
        if (argc > 2) {
            fprintf(stderr, "connfault list: takes no arguments\n");
            return 2;
        }
        return run_list();
    }
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("connfault %s\n", CONNFAULT_VERSION);
        return 0;
    }
    fprintf(stderr,
            "connfault: unknown command '%s' (commands: run, replay, list, cleanup; try --help)\n",
            cmd);
    return 2;
}
