/* fault_rate: fault clients per second on the rst-mid-response pattern, driven two ways
 * against the same server, so the harness's engine can be compared with the least code that
 * does the same thing on the wire.
 *
 *   fault_rate -p PORT [-a ADDR] [-n COUNT] [-c CONCURRENCY] [-r ROUNDS] [-s SEED] [-S PID]
 *              [-t DEADLINE_S] [-l engine|minimal]
 *
 * Every client: connect, send "GET /bytes/1048576", read a number of response bytes drawn
 * from 1024-65536, then reset (SO_LINGER {1,0} + close()), at most CONCURRENCY at once.
 *   engine   the harness's engine (engine_new / engine_add_group / engine_run) with one
 *            client group, exactly as a scenario file would give it
 *   minimal  a hand-written non-blocking loop: one epoll set, a fixed table of slots, a new
 *            client started the moment one ends
 * Both draw each client's read size with the engine's own seeded draw, so client i reads the
 * same number of bytes in both: the two loops do the same work, byte for byte.
 *
 * The two run alternately (engine, minimal, engine, minimal, ...) ROUNDS times each, so a
 * change in machine load hits both alike. The result: each loop's median rate, and the
 * median over the rounds of engine rate / minimal rate within the round. With
 * -S (the server's pid) it also reports the server's CPU time, and before each run waits
 * until the server has closed every connection of the previous one.
 *
 * The last line is machine-readable:
 *   result engine_rate=R minimal_rate=R ratio=X ratio_of_medians=X engine_us_per_client=U
 *          minimal_us_per_client=U
 * Exit status: 0 measured, 1 a run went wrong (clients failed, deadline), 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "cf_time.h"
#include "engine.h"
#include "engine_internal.h"
#include "scenario.h"
#include "sort_util.h"

#define READ_LO          1024
#define READ_HI          65536
#define LARGE_PATH       "/bytes/1048576"
#define MAX_ROUNDS       25
#define SLICE_MS         20 /* engine_run() slice, as `connfault run` uses */
#define QUIET_TIMEOUT_MS 10000

enum loop_kind { LOOP_ENGINE, LOOP_MINIMAL };

struct bench_options {
    struct sockaddr_in target;
    unsigned count, concurrency, rounds;
    uint64_t seed;
    long server_pid; /* 0: not known */
    unsigned deadline_s;
    bool run_loop[2]; /* by enum loop_kind: -l runs one alone (to profile it) */
};

/* What one run of either loop measured. */
struct run_result {
    double wall_s;
    double cpu_s;        /* our own user + system CPU time */
    double server_cpu_s; /* -1: not known */
    uint64_t completed;  /* read their bytes and reset */
    uint64_t failed;     /* connect failed, or the server closed/reset first */
    uint64_t bytes_received;
    bool timed_out;
};

/* ---- measurement plumbing ---------------------------------------------------------------- */

static double self_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* utime + stime of a process from /proc/PID/stat, or -1. */
static double proc_cpu_s(long pid)
{
    char path[64], line[1024];
    unsigned long long utime, stime;
    const char *p;
    FILE *f;
    size_t n;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    /* The command name may hold spaces and ')': the fields start after the last ')'. */
    p = strrchr(line, ')');
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Open fds of a process, or -1. */
static int proc_fd_count(long pid)
{
    char path[64];
    struct dirent *d;
    DIR *dir;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
    dir = opendir(path);
    if (!dir)
        return -1;
    while ((d = readdir(dir)))
        if (d->d_name[0] != '.')
            n++;
    closedir(dir);
    return n;
}

/* Wait (bounded) until the server is back to its idle fd count: the connections of the
 * previous run are all closed, so runs never overlap in the server's work. */
static void wait_server_quiet(long pid, int idle_fds)
{
    double deadline = cf_now_seconds() + QUIET_TIMEOUT_MS / 1000.0;
    struct timespec step = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};

    if (pid <= 0 || idle_fds < 0)
        return;
    while (proc_fd_count(pid) > idle_fds && cf_now_seconds() < deadline)
        nanosleep(&step, NULL);
}

static uint64_t read_size(uint64_t seed, unsigned client)
{
    struct range r = {READ_LO, READ_HI};

    /* Group 0, as the engine draws for the first group of a scenario. */
    return engine_draw(seed, 0, client, ENGINE_DRAW_READ_BYTES, r);
}

/* ---- the engine ---------------------------------------------------------------------------- */

static int run_engine(const struct bench_options *o, const char *request, size_t request_len,
                      unsigned count, struct run_result *res)
{
    struct engine_config cfg = {.target = o->target, .seed = o->seed};
    struct client_group g;
    struct engine_group_stats st;
    struct engine *e;
    char err[256];
    double deadline;
    int idx, rc = 0;

    memset(&g, 0, sizeof(g));
    snprintf(g.name, sizeof(g.name), "resetters");
    g.count = count;
    g.concurrency = o->concurrency;
    g.request = (char *)request; /* the engine only reads it */
    g.request_len = request_len;
    g.pipeline = 1;
    g.send = SEND_WHOLE;
    g.read = READ_BYTES;
    g.read_bytes = (struct range){READ_LO, READ_HI};
    g.end = END_RESET;

    cfg.source.s_addr = htonl(INADDR_ANY);
    e = engine_new(&cfg, err, sizeof(err));
    if (!e) {
        fprintf(stderr, "fault_rate: engine_new: %s\n", err);
        return -1;
    }
    res->wall_s = cf_now_seconds();
    res->cpu_s = self_cpu_s();
    deadline = res->wall_s + o->deadline_s;
    idx = engine_add_group(e, &g);
    if (idx < 0) {
        fprintf(stderr, "fault_rate: engine_add_group: %s\n", strerror(-idx));
        engine_free(e);
        return -1;
    }
    while (rc == 0 && !engine_groups_done(e)) {
        if (cf_now_seconds() >= deadline) {
            res->timed_out = true;
            engine_cut_off(e);
            break;
        }
        rc = engine_run(e, engine_now_ms() + SLICE_MS);
    }
    res->wall_s = cf_now_seconds() - res->wall_s;
    res->cpu_s = self_cpu_s() - res->cpu_s;
    engine_group_stats(e, (size_t)idx, &st);
    engine_free(e);
    if (rc < 0) {
        fprintf(stderr, "fault_rate: engine_run: %s\n", strerror(-rc));
        return -1;
    }
    /* The engine counts a reset as "ended"; a client whose server let go first is not. */
    res->completed = st.ended;
    res->failed = st.connect_failed + st.peer_closed + st.peer_reset;
    res->bytes_received = st.bytes_received;
    return 0;
}

/* ---- the minimal loop ---------------------------------------------------------------------- */

struct mini_slot {
    int fd; /* -1: free */
    bool connecting;
    unsigned client;
    uint64_t limit, received;
};

struct mini_loop {
    const struct bench_options *opt;
    const char *request;
    size_t request_len;
    int epfd;
    unsigned count, next_client, active;
    struct mini_slot *slots;
    struct run_result *res;
    char buf[65536];
};

static void mini_end(struct mini_loop *m, struct mini_slot *s, bool reset)
{
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(s->fd); /* leaves the epoll set with it */
    s->fd = -1;
    m->active--;
}

/* Start the next client in a free slot; failures to connect are counted, not fatal. */
static int mini_start(struct mini_loop *m, unsigned slot_index)
{
    struct mini_slot *s = &m->slots[slot_index];
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = slot_index};

    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -errno;
    s->client = m->next_client++;
    s->limit = read_size(m->opt->seed, s->client);
    s->received = 0;
    s->connecting = true;
    m->active++;
    if (connect(s->fd, (const struct sockaddr *)&m->opt->target, sizeof(m->opt->target)) < 0 &&
        errno != EINPROGRESS) {
        m->res->failed++;
        mini_end(m, s, false);
        return 0;
    }
    if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0)
        return -errno;
    return 0;
}

/* Connected (or failed): send the request in one go, then wait for the response. */
static int mini_on_connected(struct mini_loop *m, struct mini_slot *s, unsigned slot_index)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = slot_index};
    ssize_t n = send(s->fd, m->request, m->request_len, MSG_NOSIGNAL);

    /* A small request into an empty socket buffer: all of it or an error (refused). */
    if (n != (ssize_t)m->request_len) {
        m->res->failed++;
        mini_end(m, s, false);
        return 0;
    }
    s->connecting = false;
    if (epoll_ctl(m->epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
        return -errno;
    return 0;
}

static void mini_on_readable(struct mini_loop *m, struct mini_slot *s)
{
    while (s->received < s->limit) {
        size_t want = sizeof(m->buf);
        ssize_t n;

        if (s->limit - s->received < want)
            want = (size_t)(s->limit - s->received);
        n = recv(s->fd, m->buf, want, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) { /* the server closed or reset before we were done */
            m->res->failed++;
            mini_end(m, s, false);
            return;
        }
        s->received += (uint64_t)n;
        m->res->bytes_received += (uint64_t)n;
    }
    m->res->completed++;
    mini_end(m, s, true);
}

static int mini_fill_slots(struct mini_loop *m)
{
    for (unsigned i = 0; i < m->opt->concurrency && m->next_client < m->count; i++) {
        if (m->slots[i].fd >= 0)
            continue;
        int rc = mini_start(m, i);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int mini_loop_run(struct mini_loop *m)
{
    struct epoll_event events[256];
    double deadline = cf_now_seconds() + m->opt->deadline_s;
    int rc = mini_fill_slots(m);

    while (rc == 0 && (m->active > 0 || m->next_client < m->count)) {
        int n = epoll_wait(m->epfd, events, 256, 1000);

        if (n < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < n && rc == 0; i++) {
            unsigned slot_index = events[i].data.u32;
            struct mini_slot *s = &m->slots[slot_index];

            if (s->fd < 0)
                continue;
            if (s->connecting)
                rc = mini_on_connected(m, s, slot_index);
            else
                mini_on_readable(m, s);
            /* The slot is free again: its replacement starts right away. */
            if (rc == 0 && s->fd < 0 && m->next_client < m->count)
                rc = mini_start(m, slot_index);
        }
        /* A connect() that failed at once left its slot free with no event to come. */
        if (rc == 0 && m->active < m->opt->concurrency && m->next_client < m->count)
            rc = mini_fill_slots(m);
        if (cf_now_seconds() >= deadline) {
            m->res->timed_out = true;
            break;
        }
    }
    return rc;
}

static int run_minimal(const struct bench_options *o, const char *request, size_t request_len,
                       unsigned count, struct run_result *res)
{
    struct mini_loop *m = calloc(1, sizeof(*m));
    int rc;

    if (!m)
        return -1;
    m->opt = o;
    m->request = request;
    m->request_len = request_len;
    m->count = count;
    m->res = res;
    m->slots = calloc(o->concurrency, sizeof(*m->slots));
    m->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!m->slots || m->epfd < 0) {
        fprintf(stderr, "fault_rate: minimal loop set-up: %s\n", strerror(errno));
        free(m->slots);
        free(m);
        return -1;
    }
    for (unsigned i = 0; i < o->concurrency; i++)
        m->slots[i].fd = -1;
    res->wall_s = cf_now_seconds();
    res->cpu_s = self_cpu_s();
    rc = mini_loop_run(m);
    res->wall_s = cf_now_seconds() - res->wall_s;
    res->cpu_s = self_cpu_s() - res->cpu_s;
    for (unsigned i = 0; i < o->concurrency; i++)
        if (m->slots[i].fd >= 0)
            mini_end(m, &m->slots[i], true);
    close(m->epfd);
    free(m->slots);
    free(m);
    if (rc < 0) {
        fprintf(stderr, "fault_rate: minimal loop: %s\n", strerror(-rc));
        return -1;
    }
    return 0;
}

/* ---- rounds and the report ----------------------------------------------------------------- */

static const char *loop_name(enum loop_kind k)
{
    return k == LOOP_ENGINE ? "engine" : "minimal";
}

/* One run of one loop, with the server's CPU time around it. Returns 0 if every client
 * completed, 1 if some did not, -1 on a set-up error. */
static int run_one(const struct bench_options *o, enum loop_kind k, const char *request,
                   size_t request_len, unsigned count, int idle_fds, struct run_result *res)
{
    double server_before;
    int rc;

    memset(res, 0, sizeof(*res));
    wait_server_quiet(o->server_pid, idle_fds);
    server_before = proc_cpu_s(o->server_pid);
    rc = k == LOOP_ENGINE ? run_engine(o, request, request_len, count, res)
                          : run_minimal(o, request, request_len, count, res);
    res->server_cpu_s = server_before < 0 ? -1 : proc_cpu_s(o->server_pid) - server_before;
    if (rc < 0)
        return -1;
    return res->completed == count && !res->timed_out ? 0 : 1;
}

static double rate_of(const struct run_result *r)
{
    return r->wall_s > 0 ? (double)r->completed / r->wall_s : 0;
}

static double us_per_client(double cpu_s, const struct run_result *r)
{
    return r->completed ? cpu_s * 1e6 / (double)r->completed : 0;
}

static double median(const double *v, unsigned n)
{
    double sorted[MAX_ROUNDS];

    memcpy(sorted, v, n * sizeof(*v));
    qsort(sorted, n, sizeof(*sorted), cf_compare_double);
    return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

static void print_run(enum loop_kind k, unsigned round, const struct run_result *r)
{
    printf("  %-7s round %u: %8.0f clients/s  %6.3f s  client CPU %5.1f us/client (%3.0f%% of a "
           "core)",
           loop_name(k), round, rate_of(r), r->wall_s, us_per_client(r->cpu_s, r),
           r->wall_s > 0 ? 100 * r->cpu_s / r->wall_s : 0);
    if (r->server_cpu_s >= 0)
        printf("  server CPU %5.1f us/client (%3.0f%%)", us_per_client(r->server_cpu_s, r),
               r->wall_s > 0 ? 100 * r->server_cpu_s / r->wall_s : 0);
    if (r->completed != 0 && (r->failed || r->timed_out))
        printf("  [%" PRIu64 " failed%s]", r->failed, r->timed_out ? ", deadline hit" : "");
    printf("\n");
    fflush(stdout);
}

struct loop_figures {
    double rate[MAX_ROUNDS], cpu_us[MAX_ROUNDS], server_us[MAX_ROUNDS];
    uint64_t bytes;
};

/* Medians over the rounds, and the goal's figure: the median of the rounds' own ratios
 * (engine rate / minimal rate of the same round). The two runs of a round are back to back,
 * so load from other work that comes and goes hits both; the ratio of the two median rates,
 * printed too, is thrown far off when a burst of load falls on more runs of one loop. */
static void print_summary(const struct bench_options *o, struct loop_figures *fig)
{
    double rate[2], cpu[2], server[2], pair_ratio[MAX_ROUNDS], ratio, ratio_of_medians;

    for (int k = LOOP_ENGINE; k <= LOOP_MINIMAL; k++) {
        rate[k] = median(fig[k].rate, o->rounds);
        cpu[k] = median(fig[k].cpu_us, o->rounds);
        server[k] = median(fig[k].server_us, o->rounds);
    }
    printf("median over %u rounds:\n", o->rounds);
    for (int k = LOOP_ENGINE; k <= LOOP_MINIMAL; k++) {
        if (!o->run_loop[k])
            continue;
        printf("  %-7s %8.0f clients/s  client CPU %5.1f us/client", loop_name((enum loop_kind)k),
               rate[k], cpu[k]);
        if (o->server_pid > 0)
            printf("  server CPU %5.1f us/client", server[k]);
        printf("  (%" PRIu64 " response bytes read per run)\n", fig[k].bytes);
    }
    if (!o->run_loop[LOOP_ENGINE] || !o->run_loop[LOOP_MINIMAL])
        return;
    for (unsigned i = 0; i < o->rounds; i++)
        pair_ratio[i] = fig[LOOP_MINIMAL].rate[i] > 0
                            ? fig[LOOP_ENGINE].rate[i] / fig[LOOP_MINIMAL].rate[i]
                            : 0;
    ratio = median(pair_ratio, o->rounds);
    ratio_of_medians = rate[LOOP_MINIMAL] > 0 ? rate[LOOP_ENGINE] / rate[LOOP_MINIMAL] : 0;
    printf("  engine / minimal: %.3f (median of the rounds' own ratios); ratio of the median "
           "rates %.3f\n",
           ratio, ratio_of_medians);
    printf("result engine_rate=%.0f minimal_rate=%.0f ratio=%.3f ratio_of_medians=%.3f "
           "engine_us_per_client=%.1f minimal_us_per_client=%.1f\n",
           rate[LOOP_ENGINE], rate[LOOP_MINIMAL], ratio, ratio_of_medians, cpu[LOOP_ENGINE],
           cpu[LOOP_MINIMAL]);
}

static int bench_rounds(const struct bench_options *o, const char *request, size_t request_len)
{
    struct loop_figures fig[2];
    unsigned warmup = o->count / 10 < 1000 ? o->count / 10 : 1000;
    int idle_fds = o->server_pid > 0 ? proc_fd_count(o->server_pid) : -1;
    int status = 0;

    memset(fig, 0, sizeof(fig));
    /* Warm-up, not counted: the server's buffers, the page cache, the first page faults. */
    for (int k = LOOP_ENGINE; k <= LOOP_MINIMAL && warmup > 0; k++) {
        struct run_result r;
        if (o->run_loop[k] &&
            run_one(o, (enum loop_kind)k, request, request_len, warmup, idle_fds, &r) < 0)
            return 1;
    }
    for (unsigned round = 1; round <= o->rounds; round++) {
        for (int k = LOOP_ENGINE; k <= LOOP_MINIMAL; k++) {
            struct run_result r;
            int rc;

            if (!o->run_loop[k])
                continue;
            rc = run_one(o, (enum loop_kind)k, request, request_len, o->count, idle_fds, &r);
            if (rc < 0)
                return 1;
            if (rc > 0)
                status = 1;
            print_run((enum loop_kind)k, round, &r);
            fig[k].rate[round - 1] = rate_of(&r);
            fig[k].cpu_us[round - 1] = us_per_client(r.cpu_s, &r);
            fig[k].server_us[round - 1] = us_per_client(r.server_cpu_s, &r);
            fig[k].bytes = r.bytes_received;
        }
    }
    print_summary(o, fig);
    if (status)
        fprintf(stderr, "fault_rate: some clients did not complete (see the runs above)\n");
    return status;
}

/* ---- command line -------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fputs("Usage: fault_rate -p PORT [-a ADDR] [-n COUNT] [-c CONCURRENCY] [-r ROUNDS]\n"
          "                  [-s SEED] [-S SERVER_PID] [-t DEADLINE_S]\n"
          "                  [-l engine|minimal]\n"
          "rst-mid-response clients per second: the harness's engine against a minimal\n"
          "loop, alternately, ROUNDS times each (defaults: -n 20000 -c 50 -r 5 -s 42 -t 300;\n"
          "ADDR must be a loopback address, default 127.0.0.1). -l runs only that loop,\n"
          "to profile it.\n",
          out);
}

static int parse_unsigned(const char *text, unsigned long long max, unsigned long long *out)
{
    char *end;

    errno = 0;
    *out = strtoull(text, &end, 10);
    return errno || end == text || *end || text[0] == '-' || *out > max ? -1 : 0;
}

/* One option's value into o; false when it is out of range. */
static bool apply_option(int opt, const char *arg, struct bench_options *o,
                         unsigned long long *port, const char **addr)
{
    unsigned long long v = 0;
    switch (opt) {
    case 'p':
        return parse_unsigned(arg, 65535, port) == 0 && *port != 0;
    case 'a':
        *addr = arg;
        return true;
    case 'n':
        return parse_unsigned(arg, 10000000, &v) == 0 && (o->count = (unsigned)v) != 0;
    case 'c':
        return parse_unsigned(arg, 10000, &v) == 0 && (o->concurrency = (unsigned)v) != 0;
    case 'r':
        return parse_unsigned(arg, MAX_ROUNDS, &v) == 0 && (o->rounds = (unsigned)v) != 0;
    case 's':
        if (parse_unsigned(arg, UINT64_MAX, &v) < 0)
            return false;
        o->seed = v;
        return true;
    case 'S':
        return parse_unsigned(arg, 1u << 30, &v) == 0 && (o->server_pid = (long)v) != 0;
    case 't':
        return parse_unsigned(arg, 86400, &v) == 0 && (o->deadline_s = (unsigned)v) != 0;
    case 'l':
        o->run_loop[LOOP_ENGINE] = strcmp(arg, "engine") == 0;
        o->run_loop[LOOP_MINIMAL] = strcmp(arg, "minimal") == 0;
        return o->run_loop[LOOP_ENGINE] || o->run_loop[LOOP_MINIMAL];
    }
    return false;
}

static int parse_options(int argc, char **argv, struct bench_options *o)
{
    const char *addr = "127.0.0.1";
    unsigned long long port = 0;
    int opt;

    *o = (struct bench_options){.count = 20000,
                                .concurrency = 50,
                                .rounds = 5,
                                .seed = 42,
                                .deadline_s = 300,
                                .run_loop = {true, true}};
    while ((opt = getopt(argc, argv, "p:a:n:c:r:s:S:t:l:h")) != -1) {
        if (opt == 'h') {
            usage(stdout);
            exit(0);
        }
        if (!apply_option(opt, optarg, o, &port, &addr)) {
            usage(stderr);
            return -1;
        }
    }
    o->target.sin_family = AF_INET;
    o->target.sin_port = htons((uint16_t)port);
    /* Network safety: loopback only. */
    if (port == 0 || optind != argc || inet_pton(AF_INET, addr, &o->target.sin_addr) != 1 ||
        (ntohl(o->target.sin_addr.s_addr) >> 24) != 127) {
        usage(stderr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct bench_options o;
    char request[256];
    int len;

    if (parse_options(argc, argv, &o) < 0)
        return 2;
    /* The bytes `request = large` expands to in a scenario file. */
    len = snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: %s:%u\r\n\r\n", LARGE_PATH,
                   inet_ntoa(o.target.sin_addr), (unsigned)ntohs(o.target.sin_port));
    printf("rst-mid-response: %u clients, %u at once, read %d-%d bytes then reset; "
           "engine and minimal loop alternately, %u rounds each\n",
           o.count, o.concurrency, READ_LO, READ_HI, o.rounds);
    fflush(stdout);
    return bench_rounds(&o, request, (size_t)len);
}
