/* options: the options of `connfault run` and `connfault replay`, as one table (options.c)
 * that drives parsing, the errors for bad values and --help. */
#ifndef CONNFAULT_OPTIONS_H
#define CONNFAULT_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

#include "pcap_flows.h"
#include "run.h"
#include "shrink.h"

#define CLI_MAX_RAW 65536 /* bytes of a --probe-raw, --probe-expect or --request-raw value */

/* What `connfault replay` adds to run's options. */
struct replay_cli {
    struct pcap_flows_limits limits; /* server_port */
    double speed;                    /* 0: max */
    bool dump;
};

/* Where the options go: run's options, replay's, and the storage of decoded bytes. */
struct cli_values {
    struct run_options run;
    struct replay_cli replay;
    bool list_json;               /* connfault list --json */
    struct shrink_options shrink; /* connfault shrink */
    char probe_raw[CLI_MAX_RAW], probe_expect[CLI_MAX_RAW], request_raw[CLI_MAX_RAW];
};

/* The full --help text. */
void cli_usage(FILE *out);

/* Parse the options of argv (argv[0]: the command, "run", "replay", "list" or "shrink"; replay's
 * own options only with replay, list's only with "list", shrink's only with "shrink") into v, which
 * holds the defaults. Returns 0 to go on (optind: the first operand), 1 when done (--help or
 * --version printed), 2 on a usage error (said on stderr, naming the flag and what it accepts).
 * Without --seed, a random seed is drawn. */
int cli_parse(int argc, char **argv, bool replay, struct cli_values *v);

#endif
