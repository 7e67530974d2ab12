/* capture: see capture.h. */
#include "capture.h"
#include "cf_time.h"

#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "result.h"

#define CAPTURE_CLIENT_SNAP 262144 /* whole packets (loopback's MTU is 64 KiB) */
/* Ethernet, IP and TCP headers with options at their longest, then some payload. */
#define CAPTURE_SERVER_SNAP (14 + 60 + 60 + CAPTURE_SERVER_PAYLOAD)
#define CAPTURE_BUFFER      (16 << 20)
#define CAPTURE_TIMEOUT_MS  10   /* the kernel hands over a partly filled block after this */
#define CAPTURE_DRAIN_MS    1000 /* bound on draining after stop */

struct capture {
    pcap_t *pcap;
    pcap_dumper_t *dumper;
    pthread_t thread;
    atomic_bool stopping;
    uint64_t packets;
};

/* "tcp port P" for Ethernet framing (loopback's), except that the program's return value,
 * which the kernel uses as the snap length, keeps client->server packets whole and cuts
 * server->client ones (pcap_compile cannot say that). IPv4 fragments after the first and
 * IPv6 with extension headers are not matched. */
static int capture_filter_ethernet(pcap_t *p, uint16_t port)
{
    enum { SERVER = 18, CLIENT = 19, DROP = 20 };
    struct bpf_insn prog[] = {
        /* 0 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12), /* ethertype */
        /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0800, 0, 11 - 2),
        /* 2 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 23), /* IPv4 protocol */
        /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 0, DROP - 4),
        /* 4 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 20), /* flags, fragment offset */
        /* 5 */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, DROP - 6, 0),
        /* 6 */ BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 14), /* X = IPv4 header length */
        /* 7 */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, 14),  /* source port */
        /* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, SERVER - 9, 0),
        /* 9 */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, 16), /* destination port */
        /* 10 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, CLIENT - 11, DROP - 11),
        /* 11 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x86dd, 0, DROP - 12),
        /* 12 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 20), /* IPv6 next header */
        /* 13 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 0, DROP - 14),
        /* 14 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 54),
        /* 15 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, SERVER - 16, 0),
        /* 16 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 56),
        /* 17 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, CLIENT - 18, DROP - 18),
        /* 18 */ BPF_STMT(BPF_RET | BPF_K, CAPTURE_SERVER_SNAP),
        /* 19 */ BPF_STMT(BPF_RET | BPF_K, CAPTURE_CLIENT_SNAP),
        /* 20 */ BPF_STMT(BPF_RET | BPF_K, 0),
    };
    struct bpf_program fp = {.bf_len = sizeof(prog) / sizeof(prog[0]), .bf_insns = prog};

    return pcap_setfilter(p, &fp);
}

static int capture_filter(pcap_t *p, uint16_t port)
{
    struct bpf_program fp;
    char expr[32];
    int rc;

    if (pcap_datalink(p) == DLT_EN10MB)
        return capture_filter_ethernet(p, port);
    snprintf(expr, sizeof(expr), "tcp port %u", port);
    if (pcap_compile(p, &fp, expr, 1, PCAP_NETMASK_UNKNOWN) < 0)
        return -1;
    rc = pcap_setfilter(p, &fp);
    pcap_freecode(&fp);
    return rc;
}

static void capture_on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
    struct capture *c = (struct capture *)user;

    pcap_dump((u_char *)c->dumper, h, bytes);
    c->packets++;
}

/* Drain the ring into the file until told to stop; then until the kernel has handed over
 * its last partly filled block (it does so CAPTURE_TIMEOUT_MS after the last packet). */
static void *capture_thread(void *arg)
{
    struct capture *c = arg;
    struct pollfd pfd = {.fd = pcap_get_selectable_fd(c->pcap), .events = POLLIN};
    uint64_t stop_at = 0;

    for (;;) {
        int n;
        poll(&pfd, 1, CAPTURE_TIMEOUT_MS);
        n = pcap_dispatch(c->pcap, -1, capture_on_packet, (u_char *)c);
        if (n < 0)
            break;
        if (atomic_load(&c->stopping)) {
            uint64_t now = cf_now_ms();
            if (stop_at == 0)
                stop_at = now;
            if ((n == 0 && now >= stop_at + 3 * CAPTURE_TIMEOUT_MS) ||
                now >= stop_at + CAPTURE_DRAIN_MS)
                break;
        }
    }
    return NULL;
}

static int capture_fail(pcap_t *p, int rc, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s: %s", what, p ? pcap_geterr(p) : "?");
    if (p)
        pcap_close(p);
    return rc;
}

int capture_start(struct capture **out, const char *path, uint16_t port, char *err, size_t errlen)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_create("lo", errbuf);
    struct capture *c;
    int rc;

    *out = NULL;
    if (!p) {
        snprintf(err, errlen, "cannot capture on lo: %s", errbuf);
        return -ENODEV;
    }
    pcap_set_snaplen(p, CAPTURE_CLIENT_SNAP);
    pcap_set_buffer_size(p, CAPTURE_BUFFER);
    pcap_set_timeout(p, CAPTURE_TIMEOUT_MS);
    rc = pcap_activate(p);
    if (rc == PCAP_ERROR_PERM_DENIED) {
        pcap_close(p);
        snprintf(err, errlen,
                 "capturing needs CAP_NET_RAW (run as root; inside the network "
                 "sandbox the harness has it)");
        return -EPERM;
    }
    if (rc < 0)
        return capture_fail(p, -EIO, err, errlen, "cannot capture on lo");
    if (capture_filter(p, port) < 0)
        return capture_fail(p, -EINVAL, err, errlen, "capture filter");
    if (pcap_setnonblock(p, 1, errbuf) < 0)
        return capture_fail(p, -EIO, err, errlen, "capture");
    c = calloc(1, sizeof(*c));
    if (!c) {
        pcap_close(p);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->pcap = p;
    c->dumper = pcap_dump_open(p, path);
    if (!c->dumper) {
        free(c);
        return capture_fail(p, -EIO, err, errlen, path);
    }
    atomic_init(&c->stopping, false);
    rc = pthread_create(&c->thread, NULL, capture_thread, c);
    if (rc != 0) {
        pcap_dump_close(c->dumper);
        unlink(path);
        free(c);
        pcap_close(p);
        snprintf(err, errlen, "capture thread: %s", strerror(rc));
        return -rc;
    }
    *out = c;
    return 0;
}

void capture_stop(struct capture *c, struct capture_stats *stats)
{
    struct pcap_stat ps;

    memset(stats, 0, sizeof(*stats));
    if (!c)
        return;
    atomic_store(&c->stopping, true);
    pthread_join(c->thread, NULL);
    stats->packets = c->packets;
    if (pcap_stats(c->pcap, &ps) == 0)
        stats->dropped = (uint64_t)ps.ps_drop + ps.ps_ifdrop;
    pcap_dump_close(c->dumper);
    pcap_close(c->pcap);
    free(c);
}

/* ---- the run's policy ------------------------------------------------------------------- */

/* dir/base.pcap, or dir/base-N.pcap for the first N from 2 that names no file yet. The name
 * is reserved by creating the file (O_EXCL), so two runs sharing a folder cannot both take
 * it. 0, or -errno. */
static int capture_free_name(const char *dir, const char *base, char *path, size_t len)
{
    for (unsigned n = 1; n < 1000; n++) {
        if (n == 1)
            snprintf(path, len, "%s/%s.pcap", dir, base);
        else
            snprintf(path, len, "%s/%s-%u.pcap", dir, base, n);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

/* SCENARIO-TARGET-SEED, with only file-name-safe characters of the tag. */
static void capture_base_name(const struct capture_plan *plan, const char *scenario, uint64_t seed,
                              char *base, size_t len)
{
    char tag[64] = "";
    size_t n = 0;
    for (const char *p = plan->target_tag ? plan->target_tag : ""; *p && n + 1 < sizeof(tag); p++) {
        bool safe = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-';
        tag[n++] = safe ? *p : '_';
    }
    tag[n] = '\0';
    snprintf(base, len, "%s%s%s-%llu", scenario, tag[0] ? "-" : "", tag, (unsigned long long)seed);
}

struct capture *capture_plan_begin(struct capture_plan *plan, const char *scenario, uint64_t seed,
                                   uint16_t port, char *path, size_t len)
{
    struct capture *c = NULL;
    const char *dir = plan->dir ? plan->dir : plan->tmpdir;
    char err[512];
    int rc;

    path[0] = '\0';
    if (plan->unavailable || (!plan->dir && (!plan->on_failure || !dir || !dir[0])))
        return NULL;
    if (plan->dir && mkdir(plan->dir, 0777) < 0 && errno != EEXIST) {
        plan->unavailable = true;
        fprintf(stderr, "connfault: --capture %s: %s\n", plan->dir, strerror(errno));
        return NULL;
    }
    char base[256];
    capture_base_name(plan, scenario, seed, base, sizeof(base));
    rc = capture_free_name(dir, base, path, len);
    if (rc < 0) {
        snprintf(err, sizeof(err), "%s/%s.pcap: %s", dir, base, strerror(-rc));
        path[0] = '\0'; /* not ours: never to be removed below */
    } else {
        rc = capture_start(&c, path, port, err, sizeof(err));
    }
    if (rc < 0) {
        /* Once is enough: the next scenario would fail the same way. Without --capture,
         * capturing failures is a convenience: say so only when asked to be verbose. */
        plan->unavailable = true;
        if (plan->dir || plan->verbosity > 1)
            fprintf(stderr, "connfault: no captures: %s\n", err);
        if (path[0])
            unlink(path); /* the reserved name */
        path[0] = '\0';
        return NULL;
    }
    return c;
}

/* rename(), or copy and remove across file systems. */
static int move_file(const char *from, const char *to)
{
    char buf[65536];
    FILE *in, *out;
    size_t n;
    int rc = 0;

    if (rename(from, to) == 0)
        return 0;
    if (errno != EXDEV)
        return -errno;
    in = fopen(from, "rb");
    out = in ? fopen(to, "wb") : NULL;
    if (!in || !out) {
        rc = -errno;
        if (in)
            fclose(in);
        return rc;
    }
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -EIO;
    fclose(in);
    if (fclose(out) != 0)
        rc = -EIO;
    if (rc == 0)
        unlink(from);
    else
        unlink(to);
    return rc;
}

void capture_plan_end(struct capture_plan *plan, struct capture *c, const char *path,
                      struct scenario_result *res)
{
    struct capture_stats st;
    char kept[sizeof(res->capture_path)];
    const char *base;

    if (!c)
        return;
    capture_stop(c, &st);
    res->capture_packets = st.packets;
    res->capture_dropped = st.dropped;
    if (plan->dir) {
        snprintf(res->capture_path, sizeof(res->capture_path), "%s", path);
        return;
    }
    if (res->verdict != VERDICT_FAIL) {
        unlink(path);
        return;
    }
    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char stem[256];
    snprintf(stem, sizeof(stem), "%.*s", (int)(strlen(base) - strlen(".pcap")), base);
    int rc = mkdir(CAPTURE_FAILURE_DIR, 0777) < 0 && errno != EEXIST ? -errno : 0;
    if (rc == 0)
        rc = capture_free_name(CAPTURE_FAILURE_DIR, stem, kept, sizeof(kept));
    if (rc == 0 && (rc = move_file(path, kept)) < 0)
        unlink(kept);
    if (rc < 0) {
        fprintf(stderr, "connfault: cannot keep the capture in %s/: %s\n", CAPTURE_FAILURE_DIR,
                strerror(-rc));
        unlink(path);
        return;
    }
    snprintf(res->capture_path, sizeof(res->capture_path), "%s", kept);
}
