/* config: defaults, flag parsing and --help for connfault-server. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

void config_defaults(struct server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->bind_addr, "127.0.0.1");
    cfg->port = 8080;
    cfg->max_conns = 10000;
    cfg->max_header_bytes = 8192;
    cfg->header_timeout_ms = 10000;
    cfg->idle_timeout_ms = 15000;
    cfg->send_timeout_ms = 10000;
    cfg->tcp_user_timeout_ms = 10000;
    cfg->shutdown_timeout_ms = 5000;
    cfg->evict_grace_ms = 250;
    cfg->bug = BUG_NONE;
    cfg->verbosity = 1;
}

static void config_usage(FILE *out)
{
    fprintf(out,
            "Usage: connfault-server [OPTIONS]\n"
            "A single-threaded epoll HTTP/1.1 server that handles connection faults correctly,\n"
            "and reproduces known server bugs on demand (--bug) for the connfault harness.\n"
            "\n"
            "Options (S: seconds, fractions allowed; 0 turns a timeout off):\n"
            "  --bind ADDR             listen address (default 127.0.0.1)\n"
            "  --port N                port (default 8080; 0 = a free port)\n"
            "  --max-conns N           above N open connections answer 503 and close (default "
            "10000)\n"
            "  --max-header-bytes N    request head limit, larger gets 431 (default 8192)\n"
            "  --header-timeout S      whole request head must arrive within S of the connection\n"
            "                          or of its first byte; a trickle does not extend it (default "
            "10)\n"
            "  --idle-timeout S        keep-alive connection idle between requests (default 15)\n"
            "  --send-timeout S        close when the kernel took no byte of output for S (default "
            "10)\n"
            "  --tcp-user-timeout S    TCP_USER_TIMEOUT: drop a peer that leaves sent data\n"
            "                          unacknowledged for S (default 10)\n"
            "  --shutdown-timeout S    on SIGTERM/SIGINT, time allowed for in-flight responses\n"
            "                          (default 5)\n"
            "  --evict-grace S         out of fds, an idle connection is closed to make room only\n"
            "                          once idle for S: a new one's request may be on its way\n"
            "                          (default 0.25)\n"
            "  --bug NAME              reproduce a known bug (see below)\n"
            "  -q, --quiet             log errors only\n"
            "  -v, --verbose           log every connection event\n"
            "  -h, --help              this text\n"
            "      --version           print the version\n"
            "\n"
            "Endpoints (GET, HEAD): /  small text body; /bytes/N  N bytes with Content-Length;\n"
            "  /chunked/N  N bytes chunked; /big.bin  1 MiB; /huge.bin  16 MiB. Body byte i is\n"
            "  'a' + i %% 26. Other paths 404, other methods 405/501.\n"
            "\n"
            "When ready, prints \"listening on ADDR:PORT\" as the first line of stdout.\n"
            "\n"
            "Bug modes (--bug NAME) and the symptom each produces:\n");
    bug_modes_usage(out);
}

static int parse_unsigned(const char *text, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    if (text[0] < '0' || text[0] > '9')
        return -EINVAL;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end != '\0' || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_seconds(const char *text, uint64_t *ms)
{
    char *end;
    errno = 0;
    double s = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !(s >= 0) || s > 86400.0 * 365)
        return -EINVAL;
    *ms = (uint64_t)(s * 1000.0 + 0.5);
    if (s > 0 && *ms == 0)
        *ms = 1;
    return 0;
}

enum {
    OPT_BIND = 256,
    OPT_PORT,
    OPT_MAX_CONNS,
    OPT_MAX_HEADER,
    OPT_HEADER_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_SEND_TIMEOUT,
    OPT_USER_TIMEOUT,
    OPT_SHUTDOWN_TIMEOUT,
    OPT_EVICT_GRACE,
    OPT_BUG,
    OPT_VERSION,
};

static const struct option long_options[] = {
    {"bind", required_argument, NULL, OPT_BIND},
    {"port", required_argument, NULL, OPT_PORT},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"max-header-bytes", required_argument, NULL, OPT_MAX_HEADER},
    {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"send-timeout", required_argument, NULL, OPT_SEND_TIMEOUT},
    {"tcp-user-timeout", required_argument, NULL, OPT_USER_TIMEOUT},
    {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT},
    {"evict-grace", required_argument, NULL, OPT_EVICT_GRACE},
    {"bug", required_argument, NULL, OPT_BUG},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* One flag's value into cfg. Returns 0, or -EINVAL with err saying what was expected. */
static int config_apply(struct server_config *cfg, int opt, const char *name, const char *value,
                        char *err, size_t errlen)
{
    unsigned long n;
    uint64_t *timeout = NULL;
    switch (opt) {
    case OPT_BIND:
        if (strlen(value) >= sizeof(cfg->bind_addr)) {
            snprintf(err, errlen, "--bind: address too long");
            return -EINVAL;
        }
        strcpy(cfg->bind_addr, value);
        return 0;
    case OPT_PORT:
        if (parse_unsigned(value, 65535, &n) < 0)
            break;
        cfg->port = (int)n;
        return 0;
    case OPT_MAX_CONNS:
        if (parse_unsigned(value, 10000000, &n) < 0 || n == 0)
            break;
        cfg->max_conns = (unsigned)n;
        return 0;
    case OPT_MAX_HEADER:
        if (parse_unsigned(value, 1 << 20, &n) < 0 || n < 64)
            break;
        cfg->max_header_bytes = (unsigned)n;
        return 0;
    case OPT_HEADER_TIMEOUT:
        timeout = &cfg->header_timeout_ms;
        break;
    case OPT_IDLE_TIMEOUT:
        timeout = &cfg->idle_timeout_ms;
        break;
    case OPT_SEND_TIMEOUT:
        timeout = &cfg->send_timeout_ms;
        break;
    case OPT_USER_TIMEOUT:
        timeout = &cfg->tcp_user_timeout_ms;
        break;
    case OPT_SHUTDOWN_TIMEOUT:
        timeout = &cfg->shutdown_timeout_ms;
        break;
    case OPT_EVICT_GRACE:
        timeout = &cfg->evict_grace_ms;
        break;
    case OPT_BUG:
        if (bug_mode_parse(value, &cfg->bug) == 0)
            return 0;
        char names[128];
        bug_modes_list(names, sizeof(names));
        snprintf(err, errlen, "--bug: unknown mode '%s' (%s)", value, names);
        return -EINVAL;
    }
    if (timeout && parse_seconds(value, timeout) == 0)
        return 0;
    snprintf(err, errlen, "--%s: invalid value '%s' (%s)", name, value,
             timeout                 ? "expected seconds, e.g. 10 or 0.5"
             : opt == OPT_MAX_HEADER ? "expected a number from 64 to 1048576"
                                     : "expected a positive whole number in range");
    return -EINVAL;
}

enum config_result config_parse_args(struct server_config *cfg, int argc, char **argv, FILE *out,
                                     char *err, size_t errlen)
{
    int opt, index;
    opterr = 0; /* we word the errors ourselves */
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":qvh", long_options, &index)) != -1) {
        switch (opt) {
        case 'q':
            cfg->verbosity = 0;
            break;
        case 'v':
            cfg->verbosity = 2;
            break;
        case 'h':
            config_usage(out);
            return CONFIG_EXIT_OK;
        case OPT_VERSION:
            fprintf(out, "connfault-server 0.1.0\n");
            return CONFIG_EXIT_OK;
        case ':':
            snprintf(err, errlen, "%s: missing value (try --help)", argv[optind - 1]);
            return CONFIG_ERROR;
        case '?':
            snprintf(err, errlen, "unknown option '%s' (try --help)", argv[optind - 1]);
            return CONFIG_ERROR;
        default:
            if (config_apply(cfg, opt, long_options[index].name, optarg, err, errlen) < 0)
                return CONFIG_ERROR;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (try --help)", argv[optind]);
        return CONFIG_ERROR;
    }
    return CONFIG_OK;
}
