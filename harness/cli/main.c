/* connfault: command line. `run` throws misbehaving clients at a server and judges it;
 * `replay` does the same with a capture's connections; `list` names the built-in scenarios
 * (a shard of them, or as JSON); `shrink` cuts a failing scenario down to a reproducer;
 * `cleanup` removes what a killed run left behind. The options are options.c's table. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cleanup.h"
#include "options.h"
#include "pcap_flows.h"
#include "run.h"
#include "shrink.h"

#ifndef CONNFAULT_VERSION
#define CONNFAULT_VERSION "0.1.0"
#endif
#ifndef CONNFAULT_REFERENCE_SERVER
#define CONNFAULT_REFERENCE_SERVER "connfault-server"
#endif

static volatile sig_atomic_t interrupted; /* the one global: signal handlers need it */

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
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

static void raise_fd_limit(void)
{
    /* Thousands of clients need thousands of fds: use all the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
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

/* The defaults, then the command line. 0 go on, else the exit status. */
static int read_options(int argc, char **argv, bool replay, struct cli_values *v)
{
    memset(v, 0, sizeof(*v));
    run_options_defaults(&v->run, &interrupted);
    /* On the command line a failure comes with its capture by default (cheap: see
     * harness/capture/capture.h); in-process callers such as self-tests opt in. */
    v->run.capture_failures = true;
    v->replay.speed = 1.0; /* replay, and shrink of a capture */
    v->shrink = (struct shrink_options){.confirm = SHRINK_DEFAULT_CONFIRM,
                                        .max_trials = SHRINK_DEFAULT_MAX_TRIALS,
                                        .time_limit_ms = SHRINK_DEFAULT_TIME_MS};
    int rc = cli_parse(argc, argv, replay, v);
    return rc == 1 ? -1 : rc;
}

static int command_run(int argc, char **argv)
{
    static struct cli_values v; /* static: the byte buffers are large */
    char server_path[PATH_MAX];
    int rc = read_options(argc, argv, false, &v);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    v.run.reference_server = find_reference_server(server_path, sizeof(server_path));
    prepare_to_run();
    return run_main(&v.run, argv + optind, argc - optind);
}

static int command_replay(int argc, char **argv)
{
    static struct cli_values v;
    char server_path[PATH_MAX], err[512];
    int rc = read_options(argc, argv, true, &v);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (argc - optind != 1) {
        fprintf(stderr, "connfault replay: give one capture file (try --help)\n");
        return 2;
    }
    const char *path = argv[optind];
    struct replay_set set;
    if (pcap_flows_read_file(path, &v.replay.limits, &set, err, sizeof(err)) < 0) {
        fprintf(stderr, "connfault replay: %s: %s\n", path, err);
        return 2;
    }
    for (const char *w = set.warnings, *nl; w && (nl = strchr(w, '\n')); w = nl + 1)
        fprintf(stderr, "connfault replay: %s: warning: %.*s\n", path, (int)(nl - w), w);
    if (v.replay.dump) {
        pcap_flows_print(stdout, &set);
        replay_set_free(&set);
        return 0;
    }
    set.speed = v.replay.speed;
    v.run.reference_server = find_reference_server(server_path, sizeof(server_path));
    prepare_to_run();
    rc = run_replay(&v.run, &set);
    replay_set_free(&set);
    return rc;
}

static int command_list(int argc, char **argv)
{
    static struct cli_values v;
    int rc = read_options(argc, argv, false, &v);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (optind < argc) {
        fprintf(stderr, "connfault list: takes no scenario names, only --shard and --json (try "
                        "--help)\n");
        return 2;
    }
    return run_list(&v.run, v.list_json);
}

/* A capture file, by its name (shrink takes a scenario or a capture). */
static bool is_capture(const char *path)
{
    size_t n = strlen(path);
    return (n > 5 && strcmp(path + n - 5, ".pcap") == 0) ||
           (n > 7 && strcmp(path + n - 7, ".pcapng") == 0);
}

static int command_shrink(int argc, char **argv)
{
    static struct cli_values v;
    char server_path[PATH_MAX];
    int rc = read_options(argc, argv, false, &v);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (argc - optind != 1) {
        fprintf(stderr, "connfault shrink: give one scenario (a built-in name or a file) or one "
                        "capture (.pcap, .pcapng) (try --help)\n");
        return 2;
    }
    v.run.capture_failures = false; /* trials are many; their captures are not kept */
    v.run.reference_server = find_reference_server(server_path, sizeof(server_path));
    prepare_to_run();
    if (!is_capture(argv[optind]))
        return shrink_main(&v.run, &v.shrink, argv[optind]);
    struct replay_set set;
    char err[512];
    if (pcap_flows_read_file(argv[optind], &v.replay.limits, &set, err, sizeof(err)) < 0) {
        fprintf(stderr, "connfault shrink: %s: %s\n", argv[optind], err);
        return 2;
    }
    set.speed = v.replay.speed;
    rc = shrink_capture_main(&v.run, &v.shrink, &set);
    replay_set_free(&set);
    return rc;
}

static int command_cleanup(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    int n = cleanup_stale(stdout);
    printf("connfault: %d leftover(s) removed\n", n);
    return 0;
}

static int command_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_usage(stdout);
    return 0;
}

static int command_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("connfault %s\n", CONNFAULT_VERSION);
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv); /* argv[0]: the command */
} commands[] = {
    {"run", command_run},       {"replay", command_replay},   {"list", command_list},
    {"shrink", command_shrink}, {"cleanup", command_cleanup}, {"help", command_help},
    {"-h", command_help},       {"--help", command_help},     {"--version", command_version},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr,
            "connfault: unknown command '%s' (commands: run, replay, list, shrink, cleanup; try "
            "--help)\n",
            argv[1]);
    return 2;
}
