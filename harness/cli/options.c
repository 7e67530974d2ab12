/* options: one table of connfault's options (name, kind, range, where the value goes, help)
 * drives getopt_long, the checks of each value with their error messages, and --help. */
#include "options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "escape.h"

#ifndef CONNFAULT_VERSION
#define CONNFAULT_VERSION "0.1.0"
#endif

#define MAX_SECONDS_MS 86400000ull /* a day: no wait of the harness is longer */
#define HELP_COLUMN    24          /* where the help of an option starts in --help */
#define LONG_ONLY_BASE 256         /* getopt_long's value for option i without a short name */

/* --help groups the options; replay's own come first, in replay's paragraph. */
enum cli_section {
    SEC_REPLAY,
    SEC_SUITE,
    SEC_TARGET,
    SEC_PROBES,
    SEC_JUDGING,
    SEC_OUTPUT,
    SEC_LIST,
    SEC_SHRINK,
    SEC_UNLISTED
};

/* Which commands take an option (a row's .commands; 0: run, replay and shrink, or replay and
 * shrink (of a capture) for SEC_REPLAY rows). */
enum cli_command { CMD_RUN = 1, CMD_REPLAY = 2, CMD_LIST = 4, CMD_SHRINK = 8 };

enum cli_kind {
    CLI_TEXT,    /* the value as given: a const char * */
    CLI_SET,     /* takes no value: .store(.set) */
    CLI_SECONDS, /* seconds, stored as uint64_t milliseconds; .min/.max in milliseconds */
    CLI_WHOLE,   /* a whole number from .min to .max, stored by .store */
    CLI_BYTES,   /* C escapes decoded into the buffer at .buf; .where: pointer, .len: length */
    CLI_HOST,    /* an IPv4 loopback address, or localhost: a struct in_addr */
    CLI_SPEED,   /* a replay's pace: a factor, or max (0): a double */
    CLI_SHARD,   /* I/N with 1 <= I <= N: run.shard_index, run.shard_count */
    CLI_HELP,
    CLI_VERSION,
};

typedef void cli_store(void *where, unsigned long long v);

struct cli_option {
    const char *name;
    char short_name;
    enum cli_kind kind;
    const char *arg; /* the value's name in --help; NULL: the option takes no value */
    enum cli_section section;
    unsigned long long min, max; /* CLI_WHOLE; CLI_SECONDS in milliseconds */
    cli_store *store;            /* CLI_WHOLE, CLI_SET */
    unsigned long long set;      /* CLI_SET: the value stored */
    size_t where, len, buf;      /* offsets in struct cli_values */
    const char *help;            /* "\n" starts a new line of it; NULL: not listed alone */
    unsigned commands;           /* enum cli_command bits; 0: see enum cli_command */
};

static void store_bool(void *where, unsigned long long v)
{
    *(bool *)where = v != 0;
}

static void store_int(void *where, unsigned long long v)
{
    *(int *)where = (int)v;
}

static void store_pid(void *where, unsigned long long v)
{
    *(pid_t *)where = (pid_t)v;
}

static void store_u16(void *where, unsigned long long v)
{
    *(uint16_t *)where = (uint16_t)v;
}

static void store_port(void *where, unsigned long long v) /* network byte order */
{
    *(in_port_t *)where = htons((uint16_t)v);
}

static void store_unsigned(void *where, unsigned long long v)
{
    *(unsigned *)where = (unsigned)v;
}

static void store_u64(void *where, unsigned long long v)
{
    *(uint64_t *)where = v;
}

static void store_kib_from_mib(void *where, unsigned long long v)
{
    *(uint64_t *)where = v * 1024;
}

static void store_double(void *where, unsigned long long v)
{
    *(double *)where = (double)v;
}

#define AT(field)       offsetof(struct cli_values, field)
#define SECONDS(min_ms) .min = (min_ms), .max = MAX_SECONDS_MS
#define BYTES(field)    .where = AT(run.field), .len = AT(run.field##_len), .buf = AT(field)

static const struct cli_option cli_options[] = {
    {"server-port", 0, CLI_WHOLE, "P", SEC_REPLAY, .min = 1, .max = 65535, .store = store_u16,
     .where = AT(replay.limits.server_port),
     .help = "the server side of the capture is port P (default: the side\n"
             "that received SYNs, else the lower port)"},
    {"speed", 0, CLI_SPEED, "X|max", SEC_REPLAY, .where = AT(replay.speed),
     .help = "X times the captured pace (1); max: no waits"},
    {"dump", 0, CLI_SET, NULL, SEC_REPLAY, .commands = CMD_REPLAY, .store = store_bool, .set = 1,
     .where = AT(replay.dump), .help = "print what was understood of the capture, replay nothing"},
    {"strict", 0, CLI_SET, NULL, SEC_REPLAY, .store = store_bool, .set = 1,
     .where = AT(replay.limits.strict),
     .help = "refuse captures cut by a snap length or mid-packet"},

    {"shard", 0, CLI_SHARD, "I/N", SEC_SUITE, .commands = CMD_RUN | CMD_LIST,
     .help = "only shard I of N: the scenarios ranked by name, every Nth\n"
             "from the Ith (one CI job's slice; the N shards are the suite)"},

    {"jobs", 'j', CLI_WHOLE, "N", SEC_SUITE, .min = 1, .max = RUN_MAX_JOBS, .store = store_unsigned,
     .where = AT(run.jobs), .commands = CMD_RUN,
     .help = "run N scenarios at a time, each with its own target, port\n"
             "and client hosts (default 4; 1 with --port or --target-pid)"},

    {"target-cmd", 0, CLI_TEXT, "CMD", SEC_TARGET, .where = AT(run.target_cmd),
     .help = "start the server: CMD exec'd (through /bin/sh -c\n"
             "'exec CMD' if it needs a shell), in a PID namespace\n"
             "of its own; {port} in CMD is replaced by the port"},
    {"target-pid", 0, CLI_WHOLE, "PID", SEC_TARGET, .min = 1, .max = INT_MAX, .store = store_pid,
     .where = AT(run.target_pid), .help = "attach to a running server (needs --port)"},
    {"port", 0, CLI_WHOLE, "N", SEC_TARGET, .min = 0, .max = 65535, .store = store_port,
     .where = AT(run.addr.sin_port),
     .help = "the server's port (default: a free port, via {port})"},
    {"host", 0, CLI_HOST, "ADDR", SEC_TARGET, .where = AT(run.addr.sin_addr),
     .help = "the server's address; loopback only (default 127.0.0.1)"},
    {"ready-timeout", 0, CLI_SECONDS, "S", SEC_TARGET, SECONDS(1),
     .where = AT(run.ready_timeout_ms),
     .help = "wait this long for the first accepted connection (10)"},
    {"bug", 0, CLI_TEXT, "NAME", SEC_TARGET, .where = AT(run.bug),
     .help = "run the reference server with --bug NAME (self-tests, demos)"},
    {"no-sandbox", 0, CLI_SET, NULL, SEC_TARGET, .store = store_bool, .set = 1,
     .where = AT(run.no_sandbox),
     .help = "never enter a network namespace (silent-drop scenarios skip)"},

    {"probe-path", 0, CLI_TEXT, "P", SEC_PROBES, .where = AT(run.probe_path),
     .help = "path the probes GET (default /)"},
    {"large-path", 0, CLI_TEXT, "P", SEC_PROBES, .where = AT(run.large_path),
     .help = "a response of at least 1 MiB for mid-response faults\n"
             "(default /bytes/1048576; /big.bin suits file servers)"},
    {"huge-path", 0, CLI_TEXT, "P", SEC_PROBES, .where = AT(run.huge_path),
     .help = "a response of at least 16 MiB, more than socket buffers\n"
             "hold (zero-window, drop-mid-response, cable-pull; default\n"
             "/bytes/16777216; /huge.bin suits file servers)"},
    {"probe-raw", 0, CLI_BYTES, "BYTES", SEC_PROBES, BYTES(probe_raw),
     .help = "non-HTTP servers: the probe's bytes (C escapes: 'PING\\r\\n')"},
    {"probe-expect", 0, CLI_BYTES, "BYTES", SEC_PROBES, BYTES(probe_expect),
     .help = "the reply must start with these bytes (e.g. '+PONG')"},
    {"request-raw", 0, CLI_BYTES, "BYTES", SEC_PROBES, BYTES(request_raw),
     .help = "non-HTTP servers: what `request = large|huge` clients send"},
    {"probe-timeout", 0, CLI_SECONDS, "S", SEC_PROBES, SECONDS(1),
     .where = AT(run.probe_timeout_ms), .help = "a probe must be answered within S (2)"},
    {"probe-interval", 0, CLI_SECONDS, "S", SEC_PROBES, SECONDS(1),
     .where = AT(run.probe_interval_ms), .help = "time between probes (0.25)"},

    {"grace", 0, CLI_SECONDS, "S", SEC_JUDGING, SECONDS(0), .where = AT(run.grace_ms),
     .help = "the longest wait after the faults for fds and sockets to\n"
             "come back; ends as soon as they are (75: nginx's 60 s\n"
             "timeouts pass)"},
    {"cpu-window", 0, CLI_SECONDS, "S", SEC_JUDGING, SECONDS(100), .where = AT(run.cpu_window_ms),
     .help = "each window after the faults in which CPU is measured (1)"},
    {"cpu-threshold", 0, CLI_WHOLE, "PCT", SEC_JUDGING, .min = 1, .max = 10000,
     .store = store_double, .where = AT(run.cpu_max_pct),
     .help = "max CPU, % of one core: fails if over it in 3 windows\n"
             "in a row (20)"},
    {"memory-slack", 0, CLI_WHOLE, "MIB", SEC_JUDGING, .min = 0, .max = 1u << 20,
     .store = store_kib_from_mib, .where = AT(run.memory_slack_kb),
     .help = "allowed growth of anonymous memory over the baseline (32)"},

    {"seed", 0, CLI_WHOLE, "N", SEC_OUTPUT, .min = 0, .max = UINT64_MAX, .store = store_u64,
     .where = AT(run.seed), .help = "random offsets and timings (default: random; printed)"},
    {"junit", 0, CLI_TEXT, "FILE", SEC_OUTPUT, .commands = CMD_RUN | CMD_REPLAY,
     .where = AT(run.junit_path), .help = "JUnit XML, one testcase per scenario"},
    {"json", 0, CLI_TEXT, "FILE", SEC_OUTPUT, .commands = CMD_RUN | CMD_REPLAY,
     .where = AT(run.json_path), .help = "JSON (format: harness/REPORTS.md)"},
    {"tap", 0, CLI_TEXT, "FILE", SEC_OUTPUT, .commands = CMD_RUN | CMD_REPLAY,
     .where = AT(run.tap_path), .help = "TAP version 13 (for prove), one test per scenario"},
    {"capture", 0, CLI_TEXT, "DIR", SEC_OUTPUT, .commands = CMD_RUN | CMD_REPLAY,
     .where = AT(run.capture_dir),
     .help = "keep each scenario's traffic (pcap) in DIR/SCENARIO-TARGET-SEED.pcap"},
    {"no-capture", 0, CLI_SET, NULL, SEC_OUTPUT, .commands = CMD_RUN | CMD_REPLAY,
     .store = store_bool, .set = 0, .where = AT(run.capture_failures),
     .help = "do not capture; by default (with CAP_NET_RAW) a failing\n"
             "scenario's traffic is kept in ./connfault-captures/"},
    {"quiet", 'q', CLI_SET, NULL, SEC_OUTPUT, .store = store_int, .set = 0,
     .where = AT(run.verbosity), .help = "print failures and totals only"},
    {"verbose", 'v', CLI_SET, NULL, SEC_OUTPUT, .store = store_int, .set = 2,
     .where = AT(run.verbosity), .help = "print every check of every scenario"},
    {"help", 'h', CLI_HELP, NULL, SEC_OUTPUT,
     .commands = CMD_RUN | CMD_REPLAY | CMD_LIST | CMD_SHRINK,
     .help = "this text;  --version  the version"},

    {"json", 0, CLI_SET, NULL, SEC_LIST, .commands = CMD_LIST, .store = store_bool, .set = 1,
     .where = AT(list_json),
     .help = "a JSON array: name, description, path, sandbox, privileges,\n"
             "expected_duration_s (fault phase + default grace: an estimate)"},
    {"check", 0, CLI_TEXT, "NAME", SEC_SHRINK, .commands = CMD_SHRINK, .where = AT(shrink.check),
     .help = "the check that must keep failing (default: the one the\n"
             "first run fails; alive before the others)"},
    {"confirm", 0, CLI_WHOLE, "K", SEC_SHRINK, .commands = CMD_SHRINK, .min = 1, .max = 100,
     .store = store_unsigned, .where = AT(shrink.confirm),
     .help = "a candidate fails only if it fails in K of K runs (3)"},
    {"max-trials", 0, CLI_WHOLE, "N", SEC_SHRINK, .commands = CMD_SHRINK, .min = 1, .max = 1000000,
     .store = store_unsigned, .where = AT(shrink.max_trials),
     .help = "candidates tried at most (60)"},
    {"time-limit", 0, CLI_SECONDS, "S", SEC_SHRINK, .commands = CMD_SHRINK, SECONDS(1000),
     .where = AT(shrink.time_limit_ms), .help = "no trial starts after S seconds (300)"},
    {"out", 0, CLI_TEXT, "DIR", SEC_SHRINK, .commands = CMD_SHRINK, .where = AT(shrink.out_dir),
     .help = "write minimal.ini and repro.c in DIR\n"
             "(default ./connfault-shrink/SCENARIO-SEED/)"},
    {"version", 0, CLI_VERSION, NULL, SEC_UNLISTED, .help = NULL},
};

#define NOPTIONS (sizeof(cli_options) / sizeof(cli_options[0]))

/* ---- --help ----------------------------------------------------------------------------- */

static const char usage_head[] =
    "Usage: connfault run [OPTIONS] [SCENARIO...]\n"
    "       connfault replay [OPTIONS] [--server-port P] [--speed X|max] CAPTURE\n"
    "       connfault replay --dump [--server-port P] CAPTURE\n"
    "       connfault list [--shard I/N] [--json]\n"
    "       connfault shrink [OPTIONS] [--check NAME] [--confirm K] [--max-trials N]\n"
    "                        [--time-limit S] [--out DIR] SCENARIO|CAPTURE.pcap\n"
    "       connfault cleanup\n"
    "\n"
    "Throws misbehaving TCP clients at a server (aborts mid-response, resets, half-closes,\n"
    "slowloris, clients that never read, floods) and checks from outside its process that\n"
    "it keeps accepting, stays alive, does not spin, and leaks no fds or sockets.\n"
    "SCENARIO is a built-in name (see `connfault list`) or a scenario file path;\n"
    "none runs every built-in scenario. `cleanup` ends and removes what a killed\n"
    "connfault left behind (a later run does it too).\n"
    "\n"
    "`replay` replays every TCP connection of a capture (pcap or pcapng, e.g. from\n"
    "tcpdump or `run --capture`) against the target, over real sockets: the clients'\n"
    "bytes, segment boundaries, timing and concurrency, and how each connection ended\n"
    "(close, reset, stopped reading, or vanished); then the same checks as `run`. Its\n"
    "options are run's, and:\n";

static const char usage_sandbox[] =
    "\n"
    "Silent drops (clients that vanish without FIN or RST) run in a private network\n"
    "namespace the harness creates for itself and the target (as root a plain one,\n"
    "otherwise inside a user namespace: no sudo needed); where the kernel refuses, those\n"
    "scenarios are skipped with the reason. Nothing is added to the host's firewall.\n"
    "\n";

static const char *const section_titles[] = {
    [SEC_TARGET] = "Target (default: the reference connfault-server, started for each scenario):",
    [SEC_PROBES] = "Probes and requests:",
    [SEC_JUDGING] = "Judging:",
    [SEC_OUTPUT] = "Output:",
    [SEC_SUITE] = "Scenarios (run and list):",
    [SEC_LIST] = "Listing (connfault list):",
    [SEC_SHRINK] = "Shrinking (connfault shrink SCENARIO: run's options, and these; shrink\n"
                   "CAPTURE.pcap: replay's too). It runs the input, notes the failing check,\n"
                   "then looks for the smallest input that still fails it in K of K runs\n"
                   "(fewer groups, clients, concurrency, a shorter fault phase; for a capture\n"
                   "fewer flows), then in max(2K, 4) more; writes minimal.ini (for connfault\n"
                   "run) and repro.c (standalone C: cc repro.c && ./a.out HOST PORT [PID]),\n"
                   "or for a capture flows.txt and minimal.pcap; exit 1 when it does not fail\n"
                   "(nothing to shrink). Its options:",
};

static const char usage_tail[] =
    "Checks: accepting (probes answered, p50/max latency), alive (exit status or signal),\n"
    "fds (before/peak/after, over the whole process tree), sockets (TCP states; CLOSE_WAIT\n"
    "fails), cpu (% of a core after the faults, window by window: a spin stays hot, a\n"
    "flush cools), memory (anonymous memory before/after; a mapped file is not counted).\n"
    "\n"
    "Exit status: 0 every scenario passed or was skipped (with a reason), 1 a scenario\n"
    "failed, 2 usage or set-up error (bad flag, scenario file error, target did not\n"
    "start) or, with no failure, a scenario in error (its faults did not happen against\n"
    "this target: the reason says why and how to fix it), 130 interrupted. NO_COLOR\n"
    "disables colors.\n";

static void print_option(FILE *out, const struct cli_option *o)
{
    char left[64];
    if (o->short_name)
        snprintf(left, sizeof(left), "-%c, --%s", o->short_name, o->name);
    else
        snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    fprintf(out, "  %-*s ", HELP_COLUMN - 3, left);
    for (const char *h = o->help; *h; h++) {
        if (*h == '\n')
            fprintf(out, "\n%*s", HELP_COLUMN, "");
        else
            fputc(*h, out);
    }
    fputc('\n', out);
}

static void print_section(FILE *out, enum cli_section section)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (cli_options[i].section == section && cli_options[i].help)
            print_option(out, &cli_options[i]);
}

void cli_usage(FILE *out)
{
    fputs(usage_head, out);
    print_section(out, SEC_REPLAY);
    fputs(usage_sandbox, out);
    for (enum cli_section s = SEC_SUITE; s <= SEC_SHRINK; s++) {
        fprintf(out, "%s\n", section_titles[s]);
        print_section(out, s);
        fputc('\n', out);
    }
    fputs(usage_tail, out);
}

/* ---- values ----------------------------------------------------------------------------- */

static int parse_seconds(const struct cli_option *o, const char *text, uint64_t *ms)
{
    char *end;
    errno = 0;
    double s = strtod(text, &end);
    if (errno || end == text || *end || !(s >= 0) || s * 1000 > (double)o->max ||
        s * 1000 < (double)o->min) {
        fprintf(stderr,
                "connfault: --%s: invalid value '%s' (expected seconds from %g to %g, e.g. 2 or "
                "0.5)\n",
                o->name, text, (double)o->min / 1000.0, (double)o->max / 1000.0);
        return -1;
    }
    *ms = (uint64_t)(s * 1000 + 0.5);
    return 0;
}

static int parse_whole(const struct cli_option *o, const char *text, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v < o->min || v > o->max) {
        fprintf(stderr,
                "connfault: --%s: invalid value '%s' (expected a whole number from %llu to %llu)\n",
                o->name, text, o->min, o->max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_bytes(const struct cli_option *o, const char *text, struct cli_values *v)
{
    char err[160], *buf = (char *)v + o->buf;
    long n = escape_decode(text, strlen(text), buf, CLI_MAX_RAW, err, sizeof(err));
    if (n <= 0) {
        fprintf(stderr, "connfault: --%s: %s\n", o->name, n == 0 ? "empty" : err);
        return -1;
    }
    *(const char **)((char *)v + o->where) = buf;
    *(size_t *)((char *)v + o->len) = (size_t)n;
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

static int parse_speed(const char *text, double *speed)
{
    char *end;
    errno = 0;
    if (strcmp(text, "max") == 0) {
        *speed = 0;
        return 0;
    }
    *speed = strtod(text, &end);
    if (errno || end == text || *end || !(*speed > 0.001) || *speed > 1e6) {
        fprintf(stderr,
                "connfault: --speed: invalid value '%s' (expected max, or a factor over 0.001 "
                "and up to 1000000, such as 1, 10 or 0.5)\n",
                text);
        return -1;
    }
    return 0;
}

static int parse_shard(const char *text, struct run_options *run)
{
    unsigned index, count;
    int end = 0;
    if (sscanf(text, "%u/%u%n", &index, &count, &end) != 2 || text[end] != '\0' ||
        strspn(text, "0123456789/") != strlen(text) || index < 1 || index > count ||
        count > 100000) {
        fprintf(stderr,
                "connfault: --shard: invalid value '%s' (expected I/N, shard I of N with "
                "1 <= I <= N, e.g. 2/4)\n",
                text);
        return -1;
    }
    run->shard_index = index;
    run->shard_count = count;
    return 0;
}

/* Put one option's value where it goes. 0 go on, 1 done (--help, --version), 2 error. */
static int apply(const struct cli_option *o, const char *arg, struct cli_values *v)
{
    void *where = (char *)v + o->where;
    unsigned long long n;
    switch (o->kind) {
    case CLI_TEXT:
        *(const char **)where = arg;
        return 0;
    case CLI_SET:
        o->store(where, o->set);
        return 0;
    case CLI_SECONDS:
        return parse_seconds(o, arg, where) < 0 ? 2 : 0;
    case CLI_WHOLE:
        if (parse_whole(o, arg, &n) < 0)
            return 2;
        o->store(where, n);
        return 0;
    case CLI_BYTES:
        return parse_bytes(o, arg, v) < 0 ? 2 : 0;
    case CLI_HOST:
        return parse_host(arg, where) < 0 ? 2 : 0;
    case CLI_SPEED:
        return parse_speed(arg, where) < 0 ? 2 : 0;
    case CLI_SHARD:
        return parse_shard(arg, &v->run) < 0 ? 2 : 0;
    case CLI_HELP:
        cli_usage(stdout);
        return 1;
    case CLI_VERSION:
        printf("connfault %s\n", CONNFAULT_VERSION);
        return 1;
    }
    return 2;
}

/* ---- the command line ------------------------------------------------------------------- */

/* getopt_long's tables for the options of one command. */
static bool takes(const struct cli_option *o, enum cli_command cmd)
{
    unsigned commands = o->commands                ? o->commands
                        : o->section == SEC_REPLAY ? (unsigned)(CMD_REPLAY | CMD_SHRINK)
                                                   : (unsigned)(CMD_RUN | CMD_REPLAY | CMD_SHRINK);
    return (commands & cmd) != 0;
}

static void getopt_tables(enum cli_command cmd, struct option *longs, char *shorts)
{
    size_t n = 0, ns = 0;
    shorts[ns++] = ':'; /* a missing value is told apart from an unknown option */
    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct cli_option *o = &cli_options[i];
        if (!takes(o, cmd))
            continue;
        int val = o->short_name ? o->short_name : LONG_ONLY_BASE + (int)i;
        longs[n++] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL, val};
        if (o->short_name) {
            shorts[ns++] = o->short_name;
            if (o->arg)
                shorts[ns++] = ':';
        }
    }
    longs[n] = (struct option){NULL, 0, NULL, 0};
    shorts[ns] = '\0';
}

static size_t option_index(int val)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (cli_options[i].short_name && cli_options[i].short_name == val)
            return i;
    return (size_t)(val - LONG_ONLY_BASE);
}

static bool given(const bool *seen, const char *name)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strcmp(cli_options[i].name, name) == 0)
            return seen[i];
    return false;
}

/* Options that are fine alone but not together. */
static int check_combinations(const struct run_options *o)
{
    const char *why = NULL;
    if (o->target_cmd && o->target_pid)
        why = "--target-cmd and --target-pid exclude each other";
    else if (o->target_pid && o->jobs > 1)
        why = "--jobs above 1 needs --target-cmd: --target-pid is one process, one scenario "
              "at a time";
    else if (o->target_pid && o->addr.sin_port == 0)
        why = "--target-pid needs --port (the port it listens on)";
    else if (o->target_cmd && !strstr(o->target_cmd, "{port}") && o->addr.sin_port == 0)
        why = "--target-cmd has no {port} and no --port says where it listens: put {port} where "
              "the command takes its port (connfault picks a free one), or give --port";
    else if (o->target_cmd && !strstr(o->target_cmd, "{port}") && o->jobs > 1)
        why = "--jobs above 1 needs {port} in --target-cmd: each job's target listens on a port "
              "of its own (--port + job), which a command without {port} cannot be told; use "
              "--jobs 1 or put {port} in the command";
    else if (o->bug && (o->target_cmd || o->target_pid))
        why = "--bug applies to the reference server only; put it in --target-cmd instead";
    else if (o->probe_expect && !o->probe_raw)
        why = "--probe-expect goes with --probe-raw";
    else if (o->probe_path[0] != '/' || o->large_path[0] != '/' || o->huge_path[0] != '/')
        why = "--probe-path, --large-path and --huge-path must start with '/'";
    if (why)
        fprintf(stderr, "connfault: %s\n", why);
    return why ? -1 : 0;
}

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
        seed = (uint64_t)getpid() * 2654435761u;
    return seed % 1000000000u; /* short enough to retype */
}

int cli_parse(int argc, char **argv, bool replay, struct cli_values *v)
{
    struct option longs[NOPTIONS + 1];
    char shorts[2 * NOPTIONS + 2];
    bool seen[NOPTIONS] = {false};
    int c;
    enum cli_command cmd = replay                           ? CMD_REPLAY
                           : strcmp(argv[0], "list") == 0   ? CMD_LIST
                           : strcmp(argv[0], "shrink") == 0 ? CMD_SHRINK
                                                            : CMD_RUN;
    getopt_tables(cmd, longs, shorts);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
        if (c == ':' || c == '?') {
            fprintf(stderr, "connfault %s: %s '%s' (try --help)\n", argv[0],
                    c == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            return 2;
        }
        size_t i = option_index(c);
        int rc = apply(&cli_options[i], optarg, v);
        if (rc != 0)
            return rc;
        seen[i] = true;
    }
    if (check_combinations(&v->run) < 0)
        return 2;
    if (!given(seen, "seed"))
        v->run.seed = random_seed();
    v->run.progress = v->run.verbosity > 0 && isatty(STDERR_FILENO);
    v->run.color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    return 0;
}
