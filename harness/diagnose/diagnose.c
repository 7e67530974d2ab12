/* diagnose: where a hung or spinning target is stuck, and on what.
 *
 * The work happens in four steps, each bounded by the budget:
 *   1. /proc scan: for each thread of the tree, its state, wchan and /proc/.../syscall; fd
 *      arguments of that system call described (TCP sockets through inet_diag, epoll sets
 *      through fdinfo, pipes, files).
 *   2. optional sampling: /proc/.../syscall read every few ms, and CPU time from schedstat.
 *      /proc says "running" for a thread that is on a CPU, so this shows where sleepy threads
 *      wait but not what a spinning thread does; hence step 3.
 *   3. a forked ptrace helper: seizes the threads, counts the system calls of the busy ones
 *      (PTRACE_SYSCALL, with each call's errno), stops them, walks their stacks with libdwfl
 *      and detaches. It writes its findings as tab-separated lines to a pipe, so whatever it
 *      found before being killed at the deadline is kept.
 *   4. analysis and rendering: notes (EMFILE, full listen queue, no ptrace rights, missing
 *      debug info), the one-line summary, the text report and the JSON object.
 */
#include "diagnose.h"
#include "cf_time.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procfs.h"
#include "sockdiag.h"

#define DIAG_MAX_PROCS         32 /* processes described in detail; the rest are counted */
#define DIAG_MAX_THREADS       64 /* threads per process */
#define DIAG_MAX_FRAMES        48
#define DIAG_MAX_FD_ARGS       2  /* sendfile and splice have two */
#define DIAG_MAX_WATCHES       16 /* fds listed per epoll instance */
#define DIAG_MAX_COUNTS        12 /* distinct system calls counted per thread */
#define DIAG_MAX_ERRNOS        3  /* distinct errors counted per system call */
#define DIAG_MAX_NOTES         24
#define DIAG_SAMPLE_WINDOW_MS  300
#define DIAG_SAMPLE_PERIOD_MS  5
#define DIAG_TRACE_WINDOW_MS   300
#define DIAG_STOP_WAIT_MS      500 /* how long a thread may take to reach a ptrace stop */
#define DIAG_RENDER_RESERVE_MS 50  /* kept out of the helper's share of the budget */
#define DIAG_REAP_WAIT_MS      500
#define DIAG_TCP_LISTEN        10         /* TCP_LISTEN in <netinet/tcp.h> */
#define DIAG_EPOLLET           (1u << 31) /* EPOLLET, as /proc/PID/fdinfo shows the event mask */

/* ---- system call names (x86_64) ---------------------------------------------------------- */

/* args: one letter per argument, saying how to show it: f fd, i int, u size or count, x flags
 * (hex), p pointer, t timeout in ms (int, -1 = forever). */
struct diag_syscall_info {
    int nr;
    const char *name;
    const char *args;
};

#if defined(__x86_64__)
static const struct diag_syscall_info diag_syscalls[] = {
    {0, "read", "fpu"},
    {1, "write", "fpu"},
    {2, "open", "pxx"},
    {3, "close", "f"},
    {4, "stat", "pp"},
    {5, "fstat", "fp"},
    {7, "poll", "put"},
    {8, "lseek", "fix"},
    {9, "mmap", "puxxfu"},
    {10, "mprotect", "pux"},
    {11, "munmap", "pu"},
    {12, "brk", "p"},
    {13, "rt_sigaction", "ippu"},
    {14, "rt_sigprocmask", "ippu"},
    {16, "ioctl", "fxp"},
    {17, "pread64", "fpuu"},
    {18, "pwrite64", "fpuu"},
    {19, "readv", "fpi"},
    {20, "writev", "fpi"},
    {21, "access", "px"},
    {22, "pipe", "p"},
    {23, "select", "ipppp"},
    {24, "sched_yield", ""},
    {28, "madvise", "pux"},
    {32, "dup", "f"},
    {33, "dup2", "ff"},
    {34, "pause", ""},
    {35, "nanosleep", "pp"},
    {39, "getpid", ""},
    {40, "sendfile", "ffpu"},
    {41, "socket", "iii"},
    {42, "connect", "fpu"},
    {43, "accept", "fpp"},
    {44, "sendto", "fpuxpu"},
    {45, "recvfrom", "fpuxpp"},
    {46, "sendmsg", "fpx"},
    {47, "recvmsg", "fpx"},
    {48, "shutdown", "fi"},
    {49, "bind", "fpu"},
    {50, "listen", "fi"},
    {51, "getsockname", "fpp"},
    {52, "getpeername", "fpp"},
    {54, "setsockopt", "fiipu"},
    {55, "getsockopt", "fiipp"},
    {56, "clone", "xppxp"},
    {57, "fork", ""},
    {59, "execve", "ppp"},
    {60, "exit", "i"},
    {61, "wait4", "ipxp"},
    {62, "kill", "ii"},
    {72, "fcntl", "fix"},
    {73, "flock", "fx"},
    {74, "fsync", "f"},
    {75, "fdatasync", "f"},
    {77, "ftruncate", "fu"},
    {78, "getdents", "fpu"},
    {89, "readlink", "ppu"},
    {96, "gettimeofday", "pp"},
    {97, "getrlimit", "ip"},
    {128, "rt_sigtimedwait", "pppu"},
    {130, "rt_sigsuspend", "pu"},
    {202, "futex", "pxipp"},
    {213, "epoll_create", "i"},
    {217, "getdents64", "fpu"},
    {228, "clock_gettime", "ip"},
    {230, "clock_nanosleep", "ixpp"},
    {231, "exit_group", "i"},
    {232, "epoll_wait", "fpit"},
    {233, "epoll_ctl", "fifp"},
    {247, "waitid", "iipxp"},
    {257, "openat", "fpxx"},
    {262, "newfstatat", "fppx"},
    {270, "pselect6", "ipppp"},
    {271, "ppoll", "pupp"},
    {275, "splice", "fpfpux"},
    {281, "epoll_pwait", "fpitpu"},
    {282, "signalfd", "fpu"},
    {283, "timerfd_create", "ix"},
    {284, "eventfd", "u"},
    {286, "timerfd_settime", "fxpp"},
    {288, "accept4", "fppx"},
    {289, "signalfd4", "fpux"},
    {290, "eventfd2", "ux"},
    {291, "epoll_create1", "x"},
    {292, "dup3", "ffx"},
    {293, "pipe2", "px"},
    {299, "recvmmsg", "fpuxp"},
    {302, "prlimit64", "iipp"},
    {307, "sendmmsg", "fpux"},
    {318, "getrandom", "pux"},
    {426, "io_uring_enter", "fuuxp"},
    {435, "clone3", "pu"},
    {441, "epoll_pwait2", "fpippu"},
};
#else
/* Other architectures: numbers only (the table above is x86_64's). */
static const struct diag_syscall_info diag_syscalls[] = {{-1, NULL, ""}};
#endif

static const struct diag_syscall_info *diag_syscall_lookup(long nr)
{
    for (size_t i = 0; i < sizeof(diag_syscalls) / sizeof(diag_syscalls[0]); i++) {
        if (diag_syscalls[i].nr == nr && diag_syscalls[i].name != NULL)
            return &diag_syscalls[i];
    }
    return NULL;
}

/* "recvfrom", or "syscall_999" in buf. */
static const char *diag_syscall_name(long nr, char *buf, size_t size)
{
    const struct diag_syscall_info *info = diag_syscall_lookup(nr);
    if (info != NULL)
        return info->name;
    snprintf(buf, size, "syscall_%ld", nr);
    return buf;
}

/* Error names, including the kernel's restart codes that ptrace shows at syscall exit. */
static const char *diag_errno_name(int err, char *buf, size_t size)
{
    switch (err) {
    case 512:
        return "ERESTARTSYS";
    case 513:
        return "ERESTARTNOINTR";
    case 514:
        return "ERESTARTNOHAND";
    case 516:
        return "ERESTART_RESTARTBLOCK";
    default:
        break;
    }
    const char *name = strerrorname_np(err);
    if (name != NULL)
        return name;
    snprintf(buf, size, "errno %d", err);
    return buf;
}

/* ---- the model ------------------------------------------------------------------------------- */

enum diag_fd_kind {
    DIAG_FD_UNKNOWN,
    DIAG_FD_TCP,
    DIAG_FD_TCP_LISTEN,
    DIAG_FD_SOCKET, /* a socket in no TCP table: UNIX, UDP, netlink, or a reset TCP socket */
    DIAG_FD_EPOLL,
    DIAG_FD_PIPE,
    DIAG_FD_FILE,
    DIAG_FD_ANON,
};

struct diag_sock {
    uint64_t inode;
    int state;
    unsigned rq, wq; /* for LISTEN: queued connections and the backlog */
    char local[64], peer[64];
};

struct diag_watch {
    int fd;
    uint32_t events;
    bool listener;
    unsigned queued; /* of a listener */
    char what[200];
};

struct diag_fd {
    int fd;
    enum diag_fd_kind kind;
    char target[256]; /* readlink of /proc/PID/fd/N */
    struct diag_sock sock;
    struct diag_watch watches[DIAG_MAX_WATCHES];
    size_t nwatches, watches_total;
    char text[600]; /* "TCP 127.0.0.1:8080 <- 127.0.0.2:40312 ESTABLISHED, rq 0 sq 0" */
};

struct diag_errno_count {
    int err;
    unsigned count;
};

struct diag_count {
    long nr; /* DIAG_NR_RUNNING and DIAG_NR_USER in /proc samples */
    unsigned count;
    struct diag_errno_count errors[DIAG_MAX_ERRNOS];
};

#define DIAG_NR_RUNNING (-2L)
#define DIAG_NR_USER    (-1L)

struct diag_frame {
    uint64_t pc;
    bool inlined; /* an inlined call: pc is shared with the next frame */
    int line;     /* 0: unknown */
    char function[128];
    char file[256];
    char module[96];
};

enum diag_syscall_state {
    DIAG_SC_UNKNOWN, /* not readable */
    DIAG_SC_RUNNING, /* on a CPU (or runnable): /proc cannot say */
    DIAG_SC_USER,    /* blocked, but not in a system call (page fault, stopped in user code) */
    DIAG_SC_IN,
};

struct diag_thread {
    pid_t tid;
    char comm[32];
    char state;
    char wchan[64];
    enum diag_syscall_state sc;
    int sc_error; /* errno when DIAG_SC_UNKNOWN */
    long nr;
    uint64_t args[6];
    struct diag_fd fd_args[DIAG_MAX_FD_ARGS];
    size_t nfd_args;

    /* sampling */
    bool cpu_known;
    uint64_t cpu_ns_start;
    double cpu_pct;
    unsigned samples, samples_running;
    struct diag_count sampled[DIAG_MAX_COUNTS];
    size_t nsampled;
    bool busy;

    /* from the ptrace helper */
    bool stopped_for_trace;
    bool not_stopped; /* seized, but never reached a stop in time */
    struct diag_count traced[DIAG_MAX_COUNTS];
    size_t ntraced;
    struct diag_frame *frames;
    size_t nframes;
    char unwind_error[160];
};

struct diag_process {
    pid_t pid;
    char exe[256];
    char exe_base[96];
    struct diag_thread *threads;
    size_t nthreads, threads_total;
    bool fds_known, limit_known;
    int fds_error;
    unsigned nfds;
    uint64_t fd_soft, fd_hard;
    char ptrace_error[200]; /* why the helper could not trace it */
    unsigned trace_window_ms;
};

struct diag_ctx {
    const struct diagnose_options *opt;
    pid_t root;
    uint64_t start_ms, deadline_ms;
    struct diag_process *procs;
    size_t nprocs, procs_total;

    struct diag_sock *socks; /* the TCP table, sorted by inode, loaded on first use */
    size_t nsocks;
    bool socks_loaded;
    int socks_error;

    bool listen_known;
    unsigned listen_queued, listen_backlog;

    unsigned sample_window_ms;
    bool traced_any; /* the helper counted system calls */
    bool ptrace_ok;  /* the helper seized at least one thread */
    bool helper_ran;
    char notes[DIAG_MAX_NOTES][320];
    size_t nnotes;
};

static uint64_t diag_remaining_ms(const struct diag_ctx *ctx)
{
    uint64_t now = cf_now_ms();
    return now < ctx->deadline_ms ? ctx->deadline_ms - now : 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
diag_note(struct diag_ctx *ctx, const char *fmt, ...)
{
    if (ctx->nnotes == DIAG_MAX_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->notes[ctx->nnotes], sizeof(ctx->notes[0]), fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < ctx->nnotes; i++) {
        if (strcmp(ctx->notes[i], ctx->notes[ctx->nnotes]) == 0)
            return; /* the same note for another thread */
    }
    ctx->nnotes++;
}

/* Reads a small /proc file, NUL-terminated, trailing newline removed. Returns the length or
 * -errno. */
static ssize_t diag_read_file(const char *path, char *buf, size_t size)
{
    ssize_t len = procfs_read_file(path, buf, size);
    while (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    return len;
}

/* Copies src into dst (size bytes), cut short if needed. */
static void diag_copy(char *dst, size_t size, const char *src)
{
    size_t len = strnlen(src, size - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static const char *diag_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* ---- TCP sockets by inode (inet_diag, with addresses) --------------------------------------- */

/* sockdiag.c counts states and reads listen queues but keeps no addresses; describing one fd
 * needs its addresses, so this is a small dump of its own. */
static void diag_format_addr(int family, const uint32_t *addr, uint16_t port_be, char *out,
                             size_t size)
{
    char host[INET6_ADDRSTRLEN];
    if (inet_ntop(family, addr, host, sizeof(host)) == NULL)
        snprintf(host, sizeof(host), "?");
    if (family == AF_INET6)
        snprintf(out, size, "[%s]:%u", host, ntohs(port_be));
    else
        snprintf(out, size, "%s:%u", host, ntohs(port_be));
}

static int diag_socks_add(struct diag_ctx *ctx, size_t *cap, const struct inet_diag_msg *msg)
{
    if (msg->idiag_inode == 0)
        return 0; /* TIME_WAIT and request sockets belong to no fd */
    if (ctx->nsocks == *cap) {
        size_t bigger = *cap ? 2 * *cap : 256;
        struct diag_sock *grown = realloc(ctx->socks, bigger * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        ctx->socks = grown;
        *cap = bigger;
    }
    struct diag_sock *s = &ctx->socks[ctx->nsocks++];
    s->inode = msg->idiag_inode;
    s->state = msg->idiag_state;
    s->rq = msg->idiag_rqueue;
    s->wq = msg->idiag_wqueue;
    diag_format_addr(msg->idiag_family, msg->id.idiag_src, msg->id.idiag_sport, s->local,
                     sizeof(s->local));
    diag_format_addr(msg->idiag_family, msg->id.idiag_dst, msg->id.idiag_dport, s->peer,
                     sizeof(s->peer));
    return 0;
}

/* One dump of one family. 1 when done, 0 for more, -errno. */
static int diag_socks_consume(struct diag_ctx *ctx, size_t *cap, const void *buf, size_t len)
{
    for (const struct nlmsghdr *h = buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_type == NLMSG_DONE)
            return 1;
        if (h->nlmsg_type == NLMSG_ERROR) {
            const struct nlmsgerr *err = NLMSG_DATA(h);
            return err->error < 0 ? err->error : -EPROTO;
        }
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
            continue;
        int rc = diag_socks_add(ctx, cap, NLMSG_DATA(h));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int diag_socks_dump(struct diag_ctx *ctx, int nl, int family, size_t *cap)
{
    struct {
        struct nlmsghdr header;
        struct inet_diag_req_v2 request;
    } query = {
        .header = {.nlmsg_len = sizeof(query),
                   .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
        .request = {.sdiag_family = (uint8_t)family,
                    .sdiag_protocol = IPPROTO_TCP,
                    .idiag_states = ~0u},
    };
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (sendto(nl, &query, sizeof(query), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        return -errno;
    _Alignas(struct nlmsghdr) char buf[32768];
    for (;;) {
        /* A netlink dump answers at once; the poll only guards the budget. */
        struct pollfd pfd = {.fd = nl, .events = POLLIN};
        int ready = poll(&pfd, 1, 1000);
        if (ready <= 0)
            return ready == 0 ? -ETIMEDOUT : -errno;
        ssize_t len = recv(nl, buf, sizeof(buf), 0);
        if (len < 0 && errno == EINTR)
            continue;
        if (len <= 0)
            return len < 0 ? -errno : -EPROTO;
        int rc = diag_socks_consume(ctx, cap, buf, (size_t)len);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
}

static int diag_compare_sock(const void *a, const void *b)
{
    uint64_t x = ((const struct diag_sock *)a)->inode, y = ((const struct diag_sock *)b)->inode;
    return (x > y) - (x < y);
}

static void diag_socks_load(struct diag_ctx *ctx)
{
    ctx->socks_loaded = true;
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0) {
        ctx->socks_error = -errno;
        return;
    }
    size_t cap = 0;
    int rc = diag_socks_dump(ctx, nl, AF_INET, &cap);
    if (rc == 0)
        rc = diag_socks_dump(ctx, nl, AF_INET6, &cap);
    close(nl);
    ctx->socks_error = rc;
    if (ctx->nsocks > 0)
        qsort(ctx->socks, ctx->nsocks, sizeof(*ctx->socks), diag_compare_sock);
}

static const struct diag_sock *diag_socks_find(struct diag_ctx *ctx, uint64_t inode)
{
    if (!ctx->socks_loaded)
        diag_socks_load(ctx);
    if (ctx->nsocks == 0)
        return NULL;
    struct diag_sock key = {.inode = inode};
    return bsearch(&key, ctx->socks, ctx->nsocks, sizeof(key), diag_compare_sock);
}

/* ---- fds ------------------------------------------------------------------------------------- */

static void diag_describe_sock(const struct diag_sock *s, char *out, size_t size)
{
    if (s->state == DIAG_TCP_LISTEN)
        snprintf(out, size, "TCP LISTEN %s, %u queued (backlog %u)", s->local, s->rq, s->wq);
    else
        snprintf(out, size, "TCP %s <- %s %s, rq %u sq %u", s->local, s->peer,
                 tcp_state_name(s->state), s->rq, s->wq);
}

static void diag_describe_fd(struct diag_ctx *ctx, pid_t pid, int fd, struct diag_fd *out,
                             bool with_watches);

/* The fds an epoll instance watches: "tfd:        5 events:       19 data: ..." lines. */
static void diag_read_watches(struct diag_ctx *ctx, pid_t pid, struct diag_fd *ep)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, ep->fd);
    FILE *info = fopen(path, "re");
    if (info == NULL)
        return;
    char line[256];
    while (fgets(line, sizeof(line), info) != NULL) {
        int tfd;
        unsigned events;
        if (sscanf(line, "tfd: %d events: %x", &tfd, &events) != 2)
            continue;
        ep->watches_total++;
        if (ep->nwatches == DIAG_MAX_WATCHES)
            continue;
        struct diag_watch *w = &ep->watches[ep->nwatches++];
        w->fd = tfd;
        w->events = events;
        struct diag_fd *inner = calloc(1, sizeof(*inner));
        if (inner == NULL) {
            snprintf(w->what, sizeof(w->what), "?");
            continue;
        }
        diag_describe_fd(ctx, pid, tfd, inner, false);
        diag_copy(w->what, sizeof(w->what), inner->text);
        w->listener = inner->kind == DIAG_FD_TCP_LISTEN;
        w->queued = w->listener ? inner->sock.rq : 0;
        free(inner);
    }
    fclose(info);
}

static void diag_describe_epoll(struct diag_fd *ep)
{
    size_t used = (size_t)snprintf(ep->text, sizeof(ep->text), "epoll watching %zu fd%s",
                                   ep->watches_total, ep->watches_total == 1 ? "" : "s");
    for (size_t i = 0; i < ep->nwatches && used < sizeof(ep->text); i++) {
        const struct diag_watch *w = &ep->watches[i];
        used += (size_t)snprintf(ep->text + used, sizeof(ep->text) - used, "%s fd %d (%s%s)",
                                 i == 0 ? ":" : ",", w->fd, w->what,
                                 (w->events & DIAG_EPOLLET) ? ", edge-triggered" : "");
    }
}

static void diag_describe_fd(struct diag_ctx *ctx, pid_t pid, int fd, struct diag_fd *out,
                             bool with_watches)
{
    char path[64];
    out->fd = fd;
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
    ssize_t len = readlink(path, out->target, sizeof(out->target) - 1);
    if (len < 0) {
        out->kind = DIAG_FD_UNKNOWN;
        out->target[0] = '\0';
        snprintf(out->text, sizeof(out->text), "%s",
                 errno == ENOENT ? "not open" : "not readable (no access to /proc/PID/fd)");
        return;
    }
    out->target[len] = '\0';

    unsigned long long inode;
    if (sscanf(out->target, "socket:[%llu]", &inode) == 1) {
        const struct diag_sock *s = diag_socks_find(ctx, inode);
        if (s != NULL) {
            out->sock = *s;
            out->kind = s->state == DIAG_TCP_LISTEN ? DIAG_FD_TCP_LISTEN : DIAG_FD_TCP;
            diag_describe_sock(s, out->text, sizeof(out->text));
        } else {
            out->kind = DIAG_FD_SOCKET;
            snprintf(out->text, sizeof(out->text), "%s (in no TCP table: UNIX, UDP or closed)",
                     out->target);
        }
    } else if (strcmp(out->target, "anon_inode:[eventpoll]") == 0) {
        out->kind = DIAG_FD_EPOLL;
        if (with_watches) {
            diag_read_watches(ctx, pid, out);
            diag_describe_epoll(out);
        } else {
            snprintf(out->text, sizeof(out->text), "epoll instance");
        }
    } else if (strncmp(out->target, "pipe:", 5) == 0) {
        out->kind = DIAG_FD_PIPE;
        snprintf(out->text, sizeof(out->text), "pipe %s", out->target + 5);
    } else if (strncmp(out->target, "anon_inode:", 11) == 0) {
        /* "anon_inode:[signalfd]" -> "signalfd" */
        out->kind = DIAG_FD_ANON;
        const char *name = out->target + 11 + (out->target[11] == '[');
        diag_copy(out->text, sizeof(out->text), name);
        out->text[strcspn(out->text, "]")] = '\0';
    } else {
        out->kind = out->target[0] == '/' ? DIAG_FD_FILE : DIAG_FD_UNKNOWN;
        snprintf(out->text, sizeof(out->text), "%s%s", out->kind == DIAG_FD_FILE ? "file " : "",
                 out->target);
    }
}

/* ---- /proc scan ---------------------------------------------------------------------------- */

static void diag_thread_path(char *buf, size_t size, pid_t pid, pid_t tid, const char *file)
{
    snprintf(buf, size, "/proc/%d/task/%d/%s", (int)pid, (int)tid, file);
}

/* Parses /proc/.../syscall: "running", "-1 sp pc" or "nr a1..a6 sp pc" (hex). */
static void diag_parse_syscall(struct diag_thread *t, const char *text)
{
    if (strncmp(text, "running", 7) == 0) {
        t->sc = DIAG_SC_RUNNING;
        return;
    }
    char *end;
    long nr = strtol(text, &end, 10);
    if (end == text) {
        t->sc = DIAG_SC_UNKNOWN;
        t->sc_error = EINVAL;
        return;
    }
    if (nr < 0) {
        t->sc = DIAG_SC_USER;
        return;
    }
    t->sc = DIAG_SC_IN;
    t->nr = nr;
    const char *p = end;
    for (int i = 0; i < 6; i++) {
        t->args[i] = strtoull(p, &end, 16);
        p = end;
    }
}

static void diag_read_syscall(pid_t pid, struct diag_thread *t)
{
    char path[96], text[256];
    diag_thread_path(path, sizeof(path), pid, t->tid, "syscall");
    ssize_t len = diag_read_file(path, text, sizeof(text));
    if (len < 0) {
        t->sc = DIAG_SC_UNKNOWN;
        t->sc_error = (int)-len;
        return;
    }
    diag_parse_syscall(t, text);
}

static void diag_describe_fd_args(struct diag_ctx *ctx, pid_t pid, struct diag_thread *t)
{
    const struct diag_syscall_info *info = diag_syscall_lookup(t->nr);
    if (info == NULL)
        return;
    for (size_t i = 0; info->args[i] != '\0' && t->nfd_args < DIAG_MAX_FD_ARGS; i++) {
        if (info->args[i] != 'f')
            continue;
        int fd = (int)(uint32_t)t->args[i];
        if (fd < 0)
            continue; /* e.g. mmap's -1 */
        diag_describe_fd(ctx, pid, fd, &t->fd_args[t->nfd_args++], true);
    }
}

/* Time on a CPU in ns: schedstat (ns) where the kernel has it, else utime+stime in ticks. */
static bool diag_thread_cpu_ns(pid_t pid, pid_t tid, uint64_t *ns)
{
    char path[96], text[512];
    diag_thread_path(path, sizeof(path), pid, tid, "schedstat");
    if (diag_read_file(path, text, sizeof(text)) > 0 && sscanf(text, "%" SCNu64, ns) == 1)
        return true;
    diag_thread_path(path, sizeof(path), pid, tid, "stat");
    if (diag_read_file(path, text, sizeof(text)) <= 0)
        return false;
    const char *p = strrchr(text, ')');
    unsigned long long utime, stime;
    long ticks = sysconf(_SC_CLK_TCK);
    /* after ')': state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
     * stime */
    if (p == NULL || ticks <= 0 ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
            2)
        return false;
    *ns = (uint64_t)(utime + stime) * 1000000000ull / (uint64_t)ticks;
    return true;
}

static void diag_read_thread(struct diag_ctx *ctx, pid_t pid, struct diag_thread *t)
{
    char path[96], text[512];
    diag_thread_path(path, sizeof(path), pid, t->tid, "comm");
    if (diag_read_file(path, t->comm, sizeof(t->comm)) < 0)
        t->comm[0] = '\0';
    diag_thread_path(path, sizeof(path), pid, t->tid, "stat");
    t->state = '?';
    if (diag_read_file(path, text, sizeof(text)) > 0) {
        const char *p = strrchr(text, ')');
        if (p != NULL && p[1] == ' ' && p[2] != '\0')
            t->state = p[2];
    }
    diag_thread_path(path, sizeof(path), pid, t->tid, "wchan");
    /* "0" means none, or that we may not see it. */
    if (diag_read_file(path, t->wchan, sizeof(t->wchan)) < 0 || strcmp(t->wchan, "0") == 0)
        t->wchan[0] = '\0';
    diag_read_syscall(pid, t);
    if (t->sc == DIAG_SC_IN)
        diag_describe_fd_args(ctx, pid, t);
}

static int diag_compare_pid(const void *a, const void *b)
{
    pid_t x = ((const struct diag_thread *)a)->tid, y = ((const struct diag_thread *)b)->tid;
    return (x > y) - (x < y);
}

static void diag_scan_threads(struct diag_ctx *ctx, struct diag_process *p)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)p->pid);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return;
    p->threads = calloc(DIAG_MAX_THREADS, sizeof(*p->threads));
    struct dirent *entry;
    while (p->threads != NULL && (entry = readdir(dir)) != NULL) {
        if (!isdigit((unsigned char)entry->d_name[0]))
            continue;
        p->threads_total++;
        if (p->nthreads < DIAG_MAX_THREADS)
            p->threads[p->nthreads++].tid = (pid_t)atoi(entry->d_name);
    }
    closedir(dir);
    if (p->threads == NULL)
        return;
    /* The main thread (tid == pid) first: it is the one a summary talks about. */
    qsort(p->threads, p->nthreads, sizeof(*p->threads), diag_compare_pid);
    for (size_t i = 0; i < p->nthreads; i++)
        diag_read_thread(ctx, p->pid, &p->threads[i]);
}

static void diag_scan_process(struct diag_ctx *ctx, struct diag_process *p)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)p->pid);
    ssize_t len = readlink(path, p->exe, sizeof(p->exe) - 1);
    p->exe[len > 0 ? len : 0] = '\0';
    diag_copy(p->exe_base, sizeof(p->exe_base), diag_basename(p->exe));
    char *deleted = strstr(p->exe_base, " (deleted)");
    if (deleted != NULL)
        *deleted = '\0';

    struct fd_counts counts;
    int rc = procfs_fd_counts(p->pid, &counts);
    p->fds_known = rc == 0;
    p->fds_error = -rc;
    p->nfds = counts.total;
    p->limit_known = procfs_rlimit_nofile(p->pid, &p->fd_soft, &p->fd_hard) == 0;
    diag_scan_threads(ctx, p);
}

static int diag_scan(struct diag_ctx *ctx)
{
    pid_t *pids = malloc(PROCFS_MAX_TREE * sizeof(*pids));
    if (pids == NULL)
        return -ENOMEM;
    size_t n = 0;
    int rc = procfs_tree(ctx->root, pids, PROCFS_MAX_TREE, &n);
    if (rc == -ENOBUFS)
        rc = 0; /* a huge tree: describe the first ones */
    if (rc < 0) {
        free(pids);
        return rc;
    }
    ctx->procs_total = n;
    ctx->nprocs = n < DIAG_MAX_PROCS ? n : DIAG_MAX_PROCS;
    ctx->procs = calloc(ctx->nprocs, sizeof(*ctx->procs));
    if (ctx->procs == NULL) {
        free(pids);
        return -ENOMEM;
    }
    for (size_t i = 0; i < ctx->nprocs; i++) {
        ctx->procs[i].pid = pids[i];
        diag_scan_process(ctx, &ctx->procs[i]);
    }
    free(pids);
    if (ctx->opt->port > 0)
        ctx->listen_known =
            sockdiag_listen_queue(ctx->opt->port, &ctx->listen_queued, &ctx->listen_backlog) == 0;
    return 0;
}

/* ---- counting system calls ------------------------------------------------------------------ */

static struct diag_count *diag_count_slot(struct diag_count *counts, size_t *n, long nr)
{
    for (size_t i = 0; i < *n; i++) {
        if (counts[i].nr == nr)
            return &counts[i];
    }
    if (*n == DIAG_MAX_COUNTS)
        return NULL; /* more distinct calls than we list: the rare ones are dropped */
    counts[*n] = (struct diag_count){.nr = nr};
    return &counts[(*n)++];
}

static void diag_count_error(struct diag_count *c, int err, unsigned times)
{
    for (size_t i = 0; i < DIAG_MAX_ERRNOS; i++) {
        if (c->errors[i].count == 0 || c->errors[i].err == err) {
            c->errors[i].err = err;
            c->errors[i].count += times;
            return;
        }
    }
}

static int diag_compare_count(const void *a, const void *b)
{
    unsigned x = ((const struct diag_count *)a)->count, y = ((const struct diag_count *)b)->count;
    return (x < y) - (x > y); /* most frequent first */
}

/* ---- sampling through /proc -------------------------------------------------------------------
 */

static void diag_sample_round(struct diag_process *p)
{
    for (size_t i = 0; i < p->nthreads; i++) {
        struct diag_thread *t = &p->threads[i];
        struct diag_thread probe = {.tid = t->tid};
        diag_read_syscall(p->pid, &probe);
        if (probe.sc == DIAG_SC_UNKNOWN)
            continue;
        t->samples++;
        long nr = probe.sc == DIAG_SC_IN        ? probe.nr
                  : probe.sc == DIAG_SC_RUNNING ? DIAG_NR_RUNNING
                                                : DIAG_NR_USER;
        if (probe.sc == DIAG_SC_RUNNING)
            t->samples_running++;
        struct diag_count *c = diag_count_slot(t->sampled, &t->nsampled, nr);
        if (c != NULL)
            c->count++;
    }
}

static void diag_sample(struct diag_ctx *ctx)
{
    uint64_t window = DIAG_SAMPLE_WINDOW_MS;
    if (window > diag_remaining_ms(ctx) / 5)
        window = diag_remaining_ms(ctx) / 5;
    for (size_t i = 0; i < ctx->nprocs; i++) {
        struct diag_process *p = &ctx->procs[i];
        for (size_t j = 0; j < p->nthreads; j++)
            p->threads[j].cpu_known =
                diag_thread_cpu_ns(p->pid, p->threads[j].tid, &p->threads[j].cpu_ns_start);
    }
    uint64_t start = cf_now_ms(), end = start + window;
    do {
        for (size_t i = 0; i < ctx->nprocs; i++)
            diag_sample_round(&ctx->procs[i]);
        struct timespec period = {0, DIAG_SAMPLE_PERIOD_MS * 1000000L};
        nanosleep(&period, NULL); /* the sampling period, not a wait for a result */
    } while (cf_now_ms() < end);
    uint64_t elapsed_ms = cf_now_ms() - start;
    ctx->sample_window_ms = (unsigned)elapsed_ms;

    for (size_t i = 0; i < ctx->nprocs; i++) {
        struct diag_process *p = &ctx->procs[i];
        for (size_t j = 0; j < p->nthreads; j++) {
            struct diag_thread *t = &p->threads[j];
            uint64_t cpu_end;
            if (t->cpu_known && elapsed_ms > 0 && diag_thread_cpu_ns(p->pid, t->tid, &cpu_end))
                t->cpu_pct = (double)(cpu_end - t->cpu_ns_start) / 1e4 / (double)elapsed_ms;
            else
                t->cpu_known = false;
            qsort(t->sampled, t->nsampled, sizeof(t->sampled[0]), diag_compare_count);
            t->busy = (t->samples > 0 && 2 * t->samples_running >= t->samples) ||
                      (t->cpu_known && t->cpu_pct >= 50.0);
        }
    }
}

/* ---- the ptrace helper (runs in a forked child) ---------------------------------------------- */

struct tracee {
    struct diag_thread *thread;
    pid_t tid;
    bool seized, stopped, gone, tracing, group_stopped;
    int pending_sig; /* a signal caught at its delivery stop: handed back on resume/detach */
    long current_nr; /* the call a traced thread entered, for its exit stop */
};

enum tracer_phase { TRACER_STOPPING, TRACER_TRACING };

struct tracer {
    FILE *out;
    int sigchld_fd;
    struct tracee *tracees;
    size_t n;
    enum tracer_phase phase;
    Dwfl *dwfl;
};

/* Protocol: one finding per line, fields separated by tabs; strings never hold tabs or
 * newlines (tracer_clean).
 *   F tid pc inlined line function file module   one stack frame, innermost first
 *   U tid message                                  why unwinding stopped
 *   S tid nr count [errno:count]...                system calls counted on a busy thread
 *   W pid window_ms                                how long they were counted
 *   T tid stopped(0/1)                             whether the thread reached a stop
 *   P pid message                                  why the process could not be traced */
static void tracer_clean(char *s)
{
    for (; *s; s++) {
        if (*s == '\t' || *s == '\n' || *s == '\r')
            *s = ' ';
    }
}

static struct tracee *tracer_find(struct tracer *tr, pid_t tid)
{
    for (size_t i = 0; i < tr->n; i++) {
        if (tr->tracees[i].tid == tid)
            return &tr->tracees[i];
    }
    return NULL;
}

/* Next wait status of any tracee, or -ETIMEDOUT at the deadline. SIGCHLD is read through a
 * signalfd so the wait can be bounded without a timer signal breaking other system calls. */
static int tracer_wait(struct tracer *tr, uint64_t deadline, pid_t *tid, int *status)
{
    for (;;) {
        struct signalfd_siginfo info;
        while (read(tr->sigchld_fd, &info, sizeof(info)) > 0)
            ; /* drained before waitpid, so no SIGCHLD is lost between the two */
        pid_t r = waitpid(-1, status, __WALL | WNOHANG);
        if (r > 0) {
            *tid = r;
            return 0;
        }
        if (r < 0 && errno != EINTR)
            return -errno;
        uint64_t now = cf_now_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = tr->sigchld_fd, .events = POLLIN};
        poll(&pfd, 1, (int)(deadline - now));
    }
}

static void tracer_resume(struct tracee *t)
{
    int sig = t->pending_sig;
    t->pending_sig = 0;
    t->stopped = false;
    if (ptrace(PTRACE_SYSCALL, t->tid, NULL, (void *)(long)sig) < 0)
        t->gone = errno == ESRCH;
}

static void tracer_on_syscall_stop(struct tracee *t)
{
    struct __ptrace_syscall_info info;
    long size = ptrace(PTRACE_GET_SYSCALL_INFO, t->tid, (void *)sizeof(info), &info);
    if (size <= 0)
        return;
    struct diag_thread *th = t->thread;
    if (info.op == PTRACE_SYSCALL_INFO_ENTRY) {
        t->current_nr = (long)info.entry.nr;
        struct diag_count *c = diag_count_slot(th->traced, &th->ntraced, t->current_nr);
        if (c != NULL)
            c->count++;
    } else if (info.op == PTRACE_SYSCALL_INFO_EXIT && info.exit.is_error && t->current_nr >= 0) {
        struct diag_count *c = diag_count_slot(th->traced, &th->ntraced, t->current_nr);
        if (c != NULL)
            diag_count_error(c, (int)-info.exit.rval, 1);
    }
}

static void tracer_on_event(struct tracer *tr, pid_t tid, int status)
{
    struct tracee *t = tracer_find(tr, tid);
    if (t == NULL)
        return;
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
        t->gone = true;
        t->stopped = false;
        return;
    }
    if (!WIFSTOPPED(status))
        return;
    int sig = WSTOPSIG(status);
    bool keep_going = tr->phase == TRACER_TRACING && t->tracing;
    if (sig == (SIGTRAP | 0x80)) {
        if (t->tracing)
            tracer_on_syscall_stop(t);
    } else if ((status >> 16) == PTRACE_EVENT_STOP) {
        /* Our interrupt (SIGTRAP), or a group stop (SIGSTOP...): a group-stopped thread is left
         * stopped, as it was. */
        t->group_stopped = sig != SIGTRAP;
        keep_going = keep_going && !t->group_stopped;
    } else {
        t->pending_sig = sig; /* signal-delivery stop: delivered when we let go */
    }
    t->stopped = true;
    if (keep_going)
        tracer_resume(t);
}

/* Whether a thread we wait for (only the busy ones if busy_only) has not stopped yet. */
static bool tracer_stop_pending(const struct tracer *tr, bool busy_only)
{
    for (size_t i = 0; i < tr->n; i++) {
        const struct tracee *t = &tr->tracees[i];
        if (t->seized && !t->gone && !t->stopped && (!busy_only || t->thread->busy))
            return true;
    }
    return false;
}

/* Interrupts the threads (only the busy ones if busy_only) and waits until they stop. */
static void tracer_stop(struct tracer *tr, bool busy_only, uint64_t deadline)
{
    tr->phase = TRACER_STOPPING;
    for (size_t i = 0; i < tr->n; i++) {
        struct tracee *t = &tr->tracees[i];
        if (t->seized && !t->gone && !t->stopped && (!busy_only || t->thread->busy))
            ptrace(PTRACE_INTERRUPT, t->tid, NULL, NULL);
    }
    pid_t tid;
    int status;
    while (tracer_stop_pending(tr, busy_only) && tracer_wait(tr, deadline, &tid, &status) == 0)
        tracer_on_event(tr, tid, status);
}

/* Counts the system calls of the busy threads for window_ms. */
static unsigned tracer_count_syscalls(struct tracer *tr, unsigned window_ms, uint64_t deadline)
{
    uint64_t stop_by = cf_now_ms() + DIAG_STOP_WAIT_MS;
    tracer_stop(tr, true, stop_by < deadline ? stop_by : deadline);
    uint64_t start = cf_now_ms(), end = start + window_ms;
    if (end > deadline)
        end = deadline;
    tr->phase = TRACER_TRACING;
    bool any = false;
    for (size_t i = 0; i < tr->n; i++) {
        struct tracee *t = &tr->tracees[i];
        if (t->thread->busy && t->stopped && !t->gone && !t->group_stopped) {
            t->tracing = true;
            t->current_nr = -1;
            tracer_resume(t);
            any = true;
        }
    }
    pid_t tid;
    int status;
    while (any && tracer_wait(tr, end, &tid, &status) == 0)
        tracer_on_event(tr, tid, status);
    return any ? (unsigned)(cf_now_ms() - start) : 0;
}

/* ---- backtraces (libdwfl) ---- */

struct tracer_walk {
    struct tracer *tr;
    pid_t tid;
    unsigned nframes;
};

static void tracer_emit_frame(struct tracer_walk *w, uint64_t pc, bool inlined, int line,
                              const char *function, const char *file, const char *module)
{
    char fn[128], fl[256], mod[96];
    diag_copy(fn, sizeof(fn), function ? function : "");
    diag_copy(fl, sizeof(fl), file ? file : "");
    diag_copy(mod, sizeof(mod), module ? diag_basename(module) : "");
    tracer_clean(fn);
    tracer_clean(fl);
    tracer_clean(mod);
    fprintf(w->tr->out, "F\t%d\t%" PRIx64 "\t%d\t%d\t%s\t%s\t%s\n", (int)w->tid, pc, inlined, line,
            fn, fl, mod);
    w->nframes++;
}

static const char *tracer_die_name(Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
    return name;
}

/* Where an inlined call was made: its DW_AT_call_file / DW_AT_call_line. */
static void tracer_call_site(Dwarf_Die *cudie, Dwarf_Die *inlined, const char **file, int *line)
{
    Dwarf_Attribute attr;
    Dwarf_Word file_index, call_line;
    Dwarf_Files *files;
    size_t nfiles;
    if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr), &file_index) != 0 ||
        dwarf_getsrcfiles(cudie, &files, &nfiles) != 0 || file_index >= nfiles) {
        *file = NULL;
        *line = 0;
        return;
    }
    *file = dwarf_filesrc(files, file_index, NULL, NULL);
    *line = dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attr), &call_line) == 0
                ? (int)call_line
                : 0;
}

/* One machine frame, expanded into its inlined calls (innermost first) as eu-stack -i does. */
static void tracer_frames_at(struct tracer_walk *w, Dwfl_Module *mod, uint64_t pc, Dwarf_Addr at)
{
    const char *module =
        mod ? dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL) : NULL;
    const char *symbol = mod ? dwfl_module_addrname(mod, at) : NULL;
    const char *file = NULL;
    int line = 0;
    Dwfl_Line *src = mod ? dwfl_module_getsrc(mod, at) : NULL;
    if (src != NULL)
        file = dwfl_lineinfo(src, NULL, &line, NULL, NULL, NULL);

    Dwarf_Addr bias = 0;
    Dwarf_Die *cudie = mod ? dwfl_module_addrdie(mod, at, &bias) : NULL;
    Dwarf_Die *scopes = NULL;
    int nscopes = cudie ? dwarf_getscopes(cudie, at - bias, &scopes) : 0;
    for (int i = 0; i < nscopes && w->nframes < DIAG_MAX_FRAMES; i++) {
        if (dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine)
            continue;
        tracer_emit_frame(w, pc, true, line, tracer_die_name(&scopes[i]), file, module);
        tracer_call_site(cudie, &scopes[i], &file, &line);
    }
    free(scopes);
    if (w->nframes < DIAG_MAX_FRAMES)
        tracer_emit_frame(w, pc, false, line, symbol, file, module);
}

static int tracer_frame(Dwfl_Frame *frame, void *arg)
{
    struct tracer_walk *w = arg;
    Dwarf_Addr pc;
    bool activation;
    if (!dwfl_frame_pc(frame, &pc, &activation))
        return DWARF_CB_ABORT;
    /* A return address points after the call; pc - 1 is inside it, on the caller's line. */
    Dwarf_Addr at = activation ? pc : pc - 1;
    tracer_frames_at(w, dwfl_addrmodule(w->tr->dwfl, at), pc, at);
    return w->nframes >= DIAG_MAX_FRAMES ? DWARF_CB_ABORT : DWARF_CB_OK;
}

static void tracer_backtraces(struct tracer *tr, pid_t pid)
{
    static const Dwfl_Callbacks callbacks = {
        .find_elf = dwfl_linux_proc_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
    };
    tr->dwfl = dwfl_begin(&callbacks);
    if (tr->dwfl == NULL) {
        fprintf(tr->out, "P\t%d\tdwfl_begin: %s\n", (int)pid, dwfl_errmsg(-1));
        return;
    }
    dwfl_report_begin(tr->dwfl);
    int rc = dwfl_linux_proc_report(tr->dwfl, pid);
    dwfl_report_end(tr->dwfl, NULL, NULL);
    /* true: the threads are already ptrace-stopped by us; dwfl must not attach or detach. */
    if (rc == 0)
        rc = dwfl_linux_proc_attach(tr->dwfl, pid, true);
    if (rc != 0) {
        fprintf(tr->out, "P\t%d\tlibdwfl could not read the process: %s\n", (int)pid,
                rc > 0 ? strerror(rc) : dwfl_errmsg(-1));
        dwfl_end(tr->dwfl);
        return;
    }
    for (size_t i = 0; i < tr->n; i++) {
        struct tracee *t = &tr->tracees[i];
        if (!t->stopped || t->gone)
            continue;
        struct tracer_walk w = {.tr = tr, .tid = t->tid};
        if (dwfl_getthread_frames(tr->dwfl, t->tid, tracer_frame, &w) != 0 &&
            w.nframes < DIAG_MAX_FRAMES) {
            char msg[160];
            diag_copy(msg, sizeof(msg), dwfl_errmsg(-1));
            tracer_clean(msg);
            fprintf(tr->out, "U\t%d\t%s\n", (int)t->tid, msg);
        }
    }
    dwfl_end(tr->dwfl);
    tr->dwfl = NULL;
}

static void tracer_report_counts(struct tracer *tr)
{
    for (size_t i = 0; i < tr->n; i++) {
        const struct diag_thread *th = tr->tracees[i].thread;
        for (size_t j = 0; tr->tracees[i].tracing && j < th->ntraced; j++) {
            const struct diag_count *c = &th->traced[j];
            fprintf(tr->out, "S\t%d\t%ld\t%u", (int)th->tid, c->nr, c->count);
            for (size_t k = 0; k < DIAG_MAX_ERRNOS && c->errors[k].count; k++)
                fprintf(tr->out, "\t%d:%u", c->errors[k].err, c->errors[k].count);
            fputc('\n', tr->out);
        }
    }
}

static void tracer_detach(struct tracer *tr)
{
    for (size_t i = 0; i < tr->n; i++) {
        struct tracee *t = &tr->tracees[i];
        if (!t->seized || t->gone)
            continue;
        if (t->stopped) {
            ptrace(PTRACE_DETACH, t->tid, NULL, (void *)(long)t->pending_sig);
            fprintf(tr->out, "T\t%d\t1\n", (int)t->tid);
        } else {
            /* Still running (e.g. in an uninterruptible sleep): it cannot be detached now; our
             * exit releases it, and the pending interrupt is dropped with the tracing. */
            fprintf(tr->out, "T\t%d\t0\n", (int)t->tid);
        }
    }
}

static void tracer_process(struct tracer *tr, struct diag_process *p, unsigned trace_window_ms,
                           uint64_t deadline)
{
    struct tracee tracees[DIAG_MAX_THREADS];
    tr->tracees = tracees;
    tr->n = p->nthreads;
    bool any_busy = false;
    for (size_t i = 0; i < p->nthreads; i++) {
        struct tracee *t = &tracees[i];
        *t = (struct tracee){.thread = &p->threads[i], .tid = p->threads[i].tid};
        if (ptrace(PTRACE_SEIZE, t->tid, NULL, (void *)(long)PTRACE_O_TRACESYSGOOD) == 0) {
            t->seized = true;
            any_busy |= p->threads[i].busy;
        } else if (errno != ESRCH) {
            fprintf(tr->out, "P\t%d\tPTRACE_SEIZE of thread %d: %s\n", (int)p->pid, (int)t->tid,
                    strerror(errno));
            break; /* no rights: the same for every thread */
        }
    }
    if (any_busy && trace_window_ms > 0) {
        unsigned traced = tracer_count_syscalls(tr, trace_window_ms, deadline);
        fprintf(tr->out, "W\t%d\t%u\n", (int)p->pid, traced);
    }
    uint64_t stop_by = cf_now_ms() + DIAG_STOP_WAIT_MS;
    tracer_stop(tr, false, stop_by < deadline ? stop_by : deadline);
    tracer_report_counts(tr);
    bool any_stopped = false;
    for (size_t i = 0; i < tr->n; i++)
        any_stopped |= tracees[i].stopped && !tracees[i].gone;
    if (any_stopped)
        tracer_backtraces(tr, p->pid);
    tracer_detach(tr);
    fflush(tr->out);
}

static int tracer_signal_fd(void)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    return signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* The helper process: never returns. */
static void tracer_main(struct diag_ctx *ctx, int out_fd, pid_t parent, uint64_t deadline)
{
    /* If the harness dies, so do we, which detaches every tracee; a Ctrl-C ends us at once
     * rather than running the harness's handler in this copy of it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (getppid() != parent)
        _exit(1);
    if (out_fd != 3 && dup2(out_fd, 3) < 0)
        _exit(1);
    /* Do not hold the harness's sockets open (a client it closes must really close). */
    close_range(4, ~0u, 0);
    /* debuginfod would download debug info over the network: never in a bounded diagnosis. */
    unsetenv("DEBUGINFOD_URLS");
    struct tracer tr = {.out = fdopen(3, "w"), .sigchld_fd = tracer_signal_fd()};
    if (tr.out == NULL || tr.sigchld_fd < 0)
        _exit(1);
    setvbuf(tr.out, NULL, _IOLBF, 0); /* each finding reaches the parent even if we are killed */
    for (size_t i = 0; i < ctx->nprocs && cf_now_ms() < deadline; i++) {
        struct diag_process *p = &ctx->procs[i];
        unsigned window = DIAG_TRACE_WINDOW_MS;
        uint64_t left = deadline > cf_now_ms() ? deadline - cf_now_ms() : 0;
        if (window > left / 3)
            window = (unsigned)(left / 3);
        tracer_process(&tr, p, ctx->opt->sample_syscalls ? window : 0, deadline);
    }
    fclose(tr.out);
    _exit(0);
}

/* ---- running the helper, reading its findings ----------------------------------------------- */

static struct diag_thread *diag_find_thread(struct diag_ctx *ctx, pid_t tid)
{
    for (size_t i = 0; i < ctx->nprocs; i++) {
        for (size_t j = 0; j < ctx->procs[i].nthreads; j++) {
            if (ctx->procs[i].threads[j].tid == tid)
                return &ctx->procs[i].threads[j];
        }
    }
    return NULL;
}

static struct diag_process *diag_find_process(struct diag_ctx *ctx, pid_t pid)
{
    for (size_t i = 0; i < ctx->nprocs; i++) {
        if (ctx->procs[i].pid == pid)
            return &ctx->procs[i];
    }
    return NULL;
}

/* Splits a line at tabs in place; returns the number of fields. */
static size_t diag_split(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        p = strchr(p, '\t');
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    return n;
}

static void diag_parse_frame(struct diag_thread *t, char **f)
{
    if (t->nframes == DIAG_MAX_FRAMES)
        return;
    if (t->frames == NULL) {
        t->frames = calloc(DIAG_MAX_FRAMES, sizeof(*t->frames));
        if (t->frames == NULL)
            return;
    }
    struct diag_frame *fr = &t->frames[t->nframes++];
    fr->pc = strtoull(f[2], NULL, 16);
    fr->inlined = atoi(f[3]) != 0;
    fr->line = atoi(f[4]);
    diag_copy(fr->function, sizeof(fr->function), f[5]);
    diag_copy(fr->file, sizeof(fr->file), f[6]);
    diag_copy(fr->module, sizeof(fr->module), f[7]);
}

static void diag_parse_count(struct diag_thread *t, char **f, size_t n)
{
    struct diag_count *c = diag_count_slot(t->traced, &t->ntraced, strtol(f[2], NULL, 10));
    if (c == NULL)
        return;
    c->count = (unsigned)strtoul(f[3], NULL, 10);
    for (size_t i = 4; i < n; i++) {
        int err;
        unsigned times;
        if (sscanf(f[i], "%d:%u", &err, &times) == 2)
            diag_count_error(c, err, times);
    }
}

static void diag_parse_line(struct diag_ctx *ctx, char *line)
{
    char *f[10];
    size_t n = diag_split(line, f, 10);
    if (n < 3)
        return;
    pid_t id = (pid_t)atoi(f[1]);
    struct diag_thread *t = diag_find_thread(ctx, id);
    struct diag_process *p = diag_find_process(ctx, id);
    switch (f[0][0]) {
    case 'F':
        if (t != NULL && n == 8)
            diag_parse_frame(t, f);
        break;
    case 'U':
        if (t != NULL)
            diag_copy(t->unwind_error, sizeof(t->unwind_error), f[2]);
        break;
    case 'S':
        if (t != NULL && n >= 4) {
            diag_parse_count(t, f, n);
            ctx->traced_any = true;
        }
        break;
    case 'T':
        if (t != NULL) {
            t->stopped_for_trace = f[2][0] == '1';
            t->not_stopped = !t->stopped_for_trace;
            ctx->ptrace_ok = true;
        }
        break;
    case 'W':
        if (p != NULL)
            p->trace_window_ms = (unsigned)strtoul(f[2], NULL, 10);
        break;
    case 'P':
        if (p != NULL && p->ptrace_error[0] == '\0')
            diag_copy(p->ptrace_error, sizeof(p->ptrace_error), f[2]);
        break;
    default:
        break;
    }
}

static void diag_parse_output(struct diag_ctx *ctx, char *buf)
{
    char *line = buf;
    char *nl;
    while ((nl = strchr(line, '\n')) != NULL) { /* a cut-off last line is dropped */
        *nl = '\0';
        diag_parse_line(ctx, line);
        line = nl + 1;
    }
    for (size_t i = 0; i < ctx->nprocs; i++) {
        for (size_t j = 0; j < ctx->procs[i].nthreads; j++) {
            struct diag_thread *t = &ctx->procs[i].threads[j];
            qsort(t->traced, t->ntraced, sizeof(t->traced[0]), diag_compare_count);
        }
    }
}

/* Reads everything the helper writes until it exits or the deadline passes. */
static char *diag_collect(int fd, uint64_t deadline, bool *timed_out)
{
    size_t len = 0, cap = 16384;
    char *buf = malloc(cap);
    *timed_out = false;
    while (buf != NULL) {
        uint64_t now = cf_now_ms();
        if (now >= deadline) {
            *timed_out = true;
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, (int)(deadline - now));
        if (ready < 0 && errno != EINTR)
            break;
        if (ready <= 0)
            continue; /* timeout (checked above) or EINTR */
        if (len + 4096 > cap) {
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL)
                break;
            buf = grown;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + len, cap - len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

/* Reaps the helper, killing it first if asked; bounded: a helper that does not die even then
 * (stuck in the kernel) is left for the harness's exit to reap. */
static bool diag_reap(pid_t child, bool kill_first)
{
    if (kill_first)
        kill(child, SIGKILL);
    uint64_t deadline = cf_now_ms() + DIAG_REAP_WAIT_MS;
    for (;;) {
        int status;
        pid_t r = waitpid(child, &status, WNOHANG);
        if (r == child || (r < 0 && errno == ECHILD))
            return true;
        if (cf_now_ms() >= deadline) {
            if (kill_first)
                return false;
            kill(child, SIGKILL);
            kill_first = true;
            deadline = cf_now_ms() + DIAG_REAP_WAIT_MS;
        }
        struct timespec tick = {0, 2 * 1000000L};
        nanosleep(&tick, NULL); /* polling a child's exit: waitpid has no timeout */
    }
}

static void diag_run_helper(struct diag_ctx *ctx)
{
    uint64_t hard = ctx->deadline_ms > DIAG_RENDER_RESERVE_MS
                        ? ctx->deadline_ms - DIAG_RENDER_RESERVE_MS
                        : ctx->deadline_ms;
    if (cf_now_ms() + 100 >= hard) {
        diag_note(ctx, "no time left in the budget for backtraces");
        return;
    }
    /* The helper aims to finish a little before the hard deadline, where it is killed. */
    uint64_t soft = hard - (hard - cf_now_ms()) / 8;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        diag_note(ctx, "no backtraces: pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        diag_note(ctx, "no backtraces: fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (child == 0) {
        close(fds[0]);
        tracer_main(ctx, fds[1], parent, soft);
    }
    close(fds[1]);
    ctx->helper_ran = true;
    bool timed_out;
    char *found = diag_collect(fds[0], hard, &timed_out);
    close(fds[0]);
    if (!diag_reap(child, timed_out))
        diag_note(ctx, "the ptrace helper (pid %d) could not be reaped", (int)child);
    if (timed_out)
        diag_note(ctx, "the ptrace helper overran the budget and was killed (which detached "
                       "it): backtraces may be missing");
    if (found != NULL)
        diag_parse_output(ctx, found);
    free(found);
}

/* ---- analysis ------------------------------------------------------------------------------- */

static const char *diag_state_name(char state)
{
    switch (state) {
    case 'R':
        return "running";
    case 'S':
        return "sleeping";
    case 'D':
        return "uninterruptible sleep";
    case 'T':
        return "stopped";
    case 't':
        return "stopped by a tracer";
    case 'Z':
        return "zombie";
    case 'X':
        return "dead";
    case 'I':
        return "idle";
    default:
        return "unknown";
    }
}

static int diag_yama_scope(void)
{
    char text[16];
    if (diag_read_file("/proc/sys/kernel/yama/ptrace_scope", text, sizeof(text)) <= 0)
        return -1;
    return atoi(text);
}

static void diag_note_access(struct diag_ctx *ctx, const struct diag_process *p)
{
    if (p->ptrace_error[0] != '\0') {
        int scope = diag_yama_scope();
        char yama[200] = "";
        if (scope >= 1)
            snprintf(yama, sizeof(yama), " (kernel.yama.ptrace_scope is %d: %s)", scope,
                     scope == 1 ? "only a parent process may trace, and this helper is not one; "
                                  "run as root or set it to 0"
                                : "only root with CAP_SYS_PTRACE may trace");
        diag_note(ctx,
                  "no ptrace access to pid %d: %s%s; no backtraces or system call counts, "
                  "only what /proc shows",
                  (int)p->pid, p->ptrace_error, yama);
    }
    if (!p->fds_known && p->fds_error == EACCES)
        diag_note(ctx, "no access to /proc/%d/fd: fds unknown (run as the target's user or root)",
                  (int)p->pid);
    for (size_t i = 0; i < p->nthreads; i++) {
        const struct diag_thread *t = &p->threads[i];
        if (t->sc == DIAG_SC_UNKNOWN)
            diag_note(ctx, "cannot read /proc/%d/task/*/syscall (%s): the system call is unknown",
                      (int)p->pid, strerror(t->sc_error));
        if (t->state == 'D')
            diag_note(ctx,
                      "thread %d is in an uninterruptible sleep (D)%s%s: it cannot be stopped "
                      "for a backtrace until the kernel wait ends",
                      (int)t->tid, t->wchan[0] ? " in " : "", t->wchan);
        if (t->not_stopped && t->state != 'D')
            diag_note(ctx, "thread %d did not stop for a backtrace in time", (int)t->tid);
    }
}

/* Modules whose frames all lack function names, or all lack file:line (one frame without, such
 * as _start from crt1.o, is normal even in a program built with -g). */
static bool diag_module_has(const struct diag_process *p, const char *module, bool want_line)
{
    for (size_t i = 0; i < p->nthreads; i++) {
        const struct diag_thread *t = &p->threads[i];
        for (size_t j = 0; j < t->nframes; j++) {
            const struct diag_frame *f = &t->frames[j];
            if (strcmp(f->module, module) == 0 && (want_line ? f->file[0] : f->function[0]))
                return true;
        }
    }
    return false;
}

static void diag_list_add(char *list, size_t size, const char *item)
{
    if (strstr(list, item) != NULL)
        return;
    size_t used = strlen(list);
    snprintf(list + used, size - used, "%s%s", used ? ", " : "", item);
}

static void diag_note_debug_info(struct diag_ctx *ctx, const struct diag_process *p)
{
    char no_lines[256] = "", no_symbols[256] = "";
    for (size_t i = 0; i < p->nthreads; i++) {
        const struct diag_thread *t = &p->threads[i];
        for (size_t j = 0; j < t->nframes; j++) {
            const char *module = t->frames[j].module;
            if (module[0] == '\0')
                continue;
            if (!diag_module_has(p, module, false))
                diag_list_add(no_symbols, sizeof(no_symbols), module);
            else if (!diag_module_has(p, module, true))
                diag_list_add(no_lines, sizeof(no_lines), module);
        }
    }
    if (no_symbols[0])
        diag_note(ctx, "no symbols (function names) for frames in %s: stripped binaries?",
                  no_symbols);
    if (no_lines[0])
        diag_note(ctx,
                  "no file:line for frames in %s: no debug info found (build with -g, or "
                  "install the debug symbol packages)",
                  no_lines);
}

static unsigned diag_count_errors(const struct diag_count *c, int err)
{
    for (size_t i = 0; i < DIAG_MAX_ERRNOS; i++) {
        if (c->errors[i].count && c->errors[i].err == err)
            return c->errors[i].count;
    }
    return 0;
}

static void diag_note_busy(struct diag_ctx *ctx, const struct diag_process *p)
{
    bool at_limit = p->fds_known && p->limit_known && p->fd_soft > 0 && p->nfds >= p->fd_soft;
    if (at_limit)
        diag_note(ctx,
                  "pid %d holds %u fds, its RLIMIT_NOFILE is %" PRIu64
                  ": accept() and open() fail with EMFILE",
                  (int)p->pid, p->nfds, p->fd_soft);
    for (size_t i = 0; i < p->nthreads; i++) {
        const struct diag_thread *t = &p->threads[i];
        if (!t->busy)
            continue;
        bool accept_emfile = false;
        for (size_t j = 0; j < t->ntraced; j++) {
            const struct diag_count *c = &t->traced[j];
            unsigned emfile = diag_count_errors(c, EMFILE) + diag_count_errors(c, ENFILE);
            if (emfile > 0 && (c->nr == 43 || c->nr == 288)) {
                accept_emfile = true;
                diag_note(ctx,
                          "busy loop in thread %d: %s fails with EMFILE (%u of %u calls) and "
                          "the listener stays readable, so the event loop wakes at once, again "
                          "and again",
                          (int)t->tid, c->nr == 43 ? "accept" : "accept4", emfile, c->count);
            }
        }
        if (!accept_emfile && at_limit && t->ntraced == 0)
            diag_note(ctx,
                      "thread %d is busy (CPU %.0f%%) while out of fds: probably retrying "
                      "accept() on EMFILE (its system calls could not be traced)",
                      (int)t->tid, t->cpu_pct);
    }
}

/* The accept-once pattern: asleep in epoll_wait on a set holding an edge-triggered listener that
 * has connections queued. The edge came and went; no new one comes until a new connection. */
static void diag_note_edge_listener(struct diag_ctx *ctx, const struct diag_thread *t)
{
    if (t->sc != DIAG_SC_IN || t->nfd_args == 0 || t->fd_args[0].kind != DIAG_FD_EPOLL)
        return;
    const struct diag_fd *ep = &t->fd_args[0];
    for (size_t i = 0; i < ep->nwatches; i++) {
        const struct diag_watch *w = &ep->watches[i];
        if (!w->listener || w->queued == 0 || !(w->events & DIAG_EPOLLET))
            continue;
        diag_note(ctx,
                  "thread %d sleeps in epoll_wait while its edge-triggered listener (fd %d) has "
                  "%u connections queued: with EPOLLET each event must be drained by accepting "
                  "until EAGAIN, or the rest wait until another client connects",
                  (int)t->tid, w->fd, w->queued);
    }
}

static void diag_note_listen_queue(struct diag_ctx *ctx)
{
    if (!ctx->listen_known || ctx->listen_queued == 0)
        return;
    if (ctx->listen_backlog > 0 && ctx->listen_queued >= ctx->listen_backlog)
        diag_note(ctx,
                  "the listen queue of port %d is full (%u of %u): new connections are dropped",
                  ctx->opt->port, ctx->listen_queued, ctx->listen_backlog);
    else
        diag_note(ctx, "%u connection%s wait%s in the listen queue of port %d, not accepted",
                  ctx->listen_queued, ctx->listen_queued == 1 ? "" : "s",
                  ctx->listen_queued == 1 ? "s" : "", ctx->opt->port);
}

static void diag_analyse(struct diag_ctx *ctx)
{
    for (size_t i = 0; i < ctx->nprocs; i++) {
        diag_note_access(ctx, &ctx->procs[i]);
        diag_note_busy(ctx, &ctx->procs[i]);
        diag_note_debug_info(ctx, &ctx->procs[i]);
        for (size_t j = 0; j < ctx->procs[i].nthreads; j++)
            diag_note_edge_listener(ctx, &ctx->procs[i].threads[j]);
    }
    diag_note_listen_queue(ctx);
    if (ctx->socks_error < 0)
        diag_note(ctx, "inet_diag failed (%s): sockets are shown without addresses",
                  strerror(-ctx->socks_error));
    if (ctx->procs_total > ctx->nprocs)
        diag_note(ctx, "%zu processes in the tree; only the first %zu are described",
                  ctx->procs_total, ctx->nprocs);
}

/* ---- rendering: shared pieces ---------------------------------------------------------------- */

/* One argument as the signature letter says. */
static void diag_put_arg(FILE *out, char kind, uint64_t value)
{
    switch (kind) {
    case 'f':
    case 'i':
    case 't':
        fprintf(out, "%d", (int)(uint32_t)value);
        break;
    case 'u':
        fprintf(out, "%" PRIu64, value);
        break;
    default:
        fprintf(out, "0x%" PRIx64, value);
        break;
    }
}

static void diag_put_call(FILE *out, const struct diag_thread *t)
{
    char buf[32];
    const struct diag_syscall_info *info = diag_syscall_lookup(t->nr);
    const char *sig = info ? info->args : "xxxxxx";
    fprintf(out, "%s(", diag_syscall_name(t->nr, buf, sizeof(buf)));
    for (size_t i = 0; sig[i] != '\0' && i < 6; i++) {
        if (i > 0)
            fputs(", ", out);
        diag_put_arg(out, sig[i], t->args[i]);
    }
    fputc(')', out);
}

/* The frame that says where in the program a thread is: the first one in the main executable,
 * else the first with a name. */
static const struct diag_frame *diag_where(const struct diag_process *p,
                                           const struct diag_thread *t)
{
    for (size_t i = 0; i < t->nframes; i++) {
        if (p->exe_base[0] && strcmp(t->frames[i].module, p->exe_base) == 0)
            return &t->frames[i];
    }
    for (size_t i = 0; i < t->nframes; i++) {
        if (t->frames[i].function[0])
            return &t->frames[i];
    }
    return NULL;
}

static void diag_put_frame_short(FILE *out, const struct diag_frame *f)
{
    fputs(f->function[0] ? f->function : "??", out);
    if (f->file[0])
        fprintf(out, " (%s:%d)", diag_basename(f->file), f->line);
    else if (f->module[0])
        fprintf(out, " (in %s)", f->module);
}

static void diag_put_counts_short(FILE *out, const struct diag_count *counts, size_t n,
                                  unsigned window_ms, size_t max)
{
    for (size_t i = 0; i < n && i < max; i++) {
        char buf[32], ebuf[32];
        const struct diag_count *c = &counts[i];
        fprintf(out, "%s%s x%u", i ? ", " : "", diag_syscall_name(c->nr, buf, sizeof(buf)),
                c->count);
        if (window_ms > 0)
            fprintf(out, " (%.0f/s)", (double)c->count * 1000.0 / window_ms);
        for (size_t k = 0; k < DIAG_MAX_ERRNOS && c->errors[k].count; k++)
            fprintf(out, "%s%u %s", k ? ", " : " failing: ", c->errors[k].count,
                    diag_errno_name(c->errors[k].err, ebuf, sizeof(ebuf)));
    }
}

static const struct diag_thread *diag_main_thread(const struct diag_ctx *ctx,
                                                  const struct diag_process **proc)
{
    /* A busy thread explains a CPU failure better than a sleeping main thread. */
    for (size_t i = 0; i < ctx->nprocs; i++) {
        for (size_t j = 0; j < ctx->procs[i].nthreads; j++) {
            if (ctx->procs[i].threads[j].busy) {
                *proc = &ctx->procs[i];
                return &ctx->procs[i].threads[j];
            }
        }
    }
    if (ctx->nprocs == 0 || ctx->procs[0].nthreads == 0)
        return NULL;
    *proc = &ctx->procs[0];
    return &ctx->procs[0].threads[0];
}

static void diag_put_summary(FILE *out, const struct diag_ctx *ctx)
{
    const struct diag_process *p = NULL;
    const struct diag_thread *t = diag_main_thread(ctx, &p);
    if (t == NULL) {
        fprintf(out, "pid %d: no threads found", (int)ctx->root);
        return;
    }
    if (t->busy) {
        fprintf(out, "busy");
        if (t->cpu_known)
            fprintf(out, " at %.0f%% CPU", t->cpu_pct);
        if (t->ntraced > 0) {
            /* Counts, not rates: tracing every call slows the target down. */
            fputs(", repeating ", out);
            diag_put_counts_short(out, t->traced, t->ntraced, 0, 2);
            fprintf(out, " (calls in %u ms traced)", p->trace_window_ms);
        }
    } else if (t->sc == DIAG_SC_IN) {
        fprintf(out, "%s in ", t->state == 'D' ? "stuck" : t->state == 'T' ? "stopped" : "blocked");
        char buf[32];
        fputs(diag_syscall_name(t->nr, buf, sizeof(buf)), out);
        if (t->nfd_args > 0)
            fprintf(out, "(fd %d = %s)", t->fd_args[0].fd, t->fd_args[0].text);
        else
            fputs("()", out);
    } else if (t->sc == DIAG_SC_USER) {
        fprintf(out, "%s outside any system call", diag_state_name(t->state));
    } else {
        fprintf(out, "%s (%s)", diag_state_name(t->state),
                t->sc == DIAG_SC_RUNNING ? "on a CPU"
                : p->ptrace_error[0]     ? "system call unknown: no ptrace access"
                                         : "system call unknown");
    }
    const struct diag_frame *where = diag_where(p, t);
    if (where != NULL) {
        fputs(" at ", out);
        diag_put_frame_short(out, where);
        if (where->inlined && where + 1 < t->frames + t->nframes) {
            fputs(", inlined in ", out);
            diag_put_frame_short(out, where + 1);
        }
    }
    if (p->fds_known && p->limit_known && p->nfds >= p->fd_soft)
        fprintf(out, "; %u of %" PRIu64 " fds open (EMFILE)", p->nfds, p->fd_soft);
    if (ctx->listen_known && ctx->listen_queued > 0)
        fprintf(out, "; %u connection%s waiting in the listen queue (backlog %u)",
                ctx->listen_queued, ctx->listen_queued == 1 ? "" : "s", ctx->listen_backlog);
    size_t threads = 0;
    for (size_t i = 0; i < ctx->nprocs; i++)
        threads += ctx->procs[i].threads_total;
    if (threads > 1)
        fprintf(out, " (pid %d thread %d; %zu threads in %zu processes)", (int)p->pid, (int)t->tid,
                threads, ctx->procs_total);
}

/* ---- rendering: text ------------------------------------------------------------------------- */

static void diag_text_thread(FILE *out, const struct diag_process *p, const struct diag_thread *t)
{
    fprintf(out, "    thread %d (%s): %s (%c)", (int)t->tid, t->comm, diag_state_name(t->state),
            t->state);
    if (t->wchan[0])
        fprintf(out, ", kernel wait %s", t->wchan);
    if (t->cpu_known)
        fprintf(out, ", CPU %.0f%%", t->cpu_pct);
    fputc('\n', out);
    switch (t->sc) {
    case DIAG_SC_IN:
        fputs("      in system call ", out);
        diag_put_call(out, t);
        fputc('\n', out);
        break;
    case DIAG_SC_RUNNING:
        fputs("      on a CPU (or runnable)\n", out);
        break;
    case DIAG_SC_USER:
        fputs("      not in a system call\n", out);
        break;
    default:
        fprintf(out, "      system call unknown (%s)\n", strerror(t->sc_error));
        break;
    }
    for (size_t i = 0; i < t->nfd_args; i++)
        fprintf(out, "      fd %d: %s\n", t->fd_args[i].fd, t->fd_args[i].text);
    if (t->samples > 0) {
        fprintf(out, "      /proc samples (%u):", t->samples);
        for (size_t i = 0; i < t->nsampled; i++) {
            char buf[32];
            long nr = t->sampled[i].nr;
            fprintf(out, "%s %s %u", i ? "," : "",
                    nr == DIAG_NR_RUNNING ? "on-cpu"
                    : nr == DIAG_NR_USER  ? "user"
                                          : diag_syscall_name(nr, buf, sizeof(buf)),
                    t->sampled[i].count);
        }
        fputc('\n', out);
    }
    if (t->ntraced > 0) {
        fprintf(out,
                "      system calls traced for %u ms (ptrace slows the target: compare the "
                "counts, not the rates): ",
                p->trace_window_ms);
        diag_put_counts_short(out, t->traced, t->ntraced, p->trace_window_ms, DIAG_MAX_COUNTS);
        fputc('\n', out);
    }
    if (t->nframes > 0) {
        fputs("      backtrace:\n", out);
        for (size_t i = 0; i < t->nframes; i++) {
            const struct diag_frame *f = &t->frames[i];
            fprintf(out, "        #%-2zu 0x%016" PRIx64 " ", i, f->pc);
            fputs(f->function[0] ? f->function : "??", out);
            if (f->file[0])
                fprintf(out, " at %s:%d", f->file, f->line);
            fprintf(out, " [%s]%s\n", f->module[0] ? f->module : "?",
                    f->inlined ? " (inlined)" : "");
        }
    }
    if (t->unwind_error[0] && t->nframes < 2)
        fprintf(out, "      backtrace stopped: %s\n", t->unwind_error);
}

static void diag_text_process(FILE *out, const struct diag_process *p)
{
    fprintf(out, "  pid %d %s: ", (int)p->pid, p->exe[0] ? p->exe : "(exe unknown)");
    if (p->fds_known)
        fprintf(out, "%u fds open", p->nfds);
    else
        fprintf(out, "fds unknown");
    if (p->limit_known)
        fprintf(out, " (RLIMIT_NOFILE %" PRIu64 ")", p->fd_soft);
    fprintf(out, ", %zu thread%s\n", p->threads_total, p->threads_total == 1 ? "" : "s");
    for (size_t i = 0; i < p->nthreads; i++)
        diag_text_thread(out, p, &p->threads[i]);
    if (p->threads_total > p->nthreads)
        fprintf(out, "    (%zu more threads not shown)\n", p->threads_total - p->nthreads);
}

static void diag_render_text(FILE *out, const struct diag_ctx *ctx, uint64_t elapsed_ms)
{
    fprintf(out, "diagnosis of pid %d (%zu process%s, %" PRIu64 " ms):\n", (int)ctx->root,
            ctx->procs_total, ctx->procs_total == 1 ? "" : "es", elapsed_ms);
    fputs("  ", out);
    diag_put_summary(out, ctx);
    fputc('\n', out);
    for (size_t i = 0; i < ctx->nprocs; i++)
        diag_text_process(out, &ctx->procs[i]);
    if (ctx->listen_known)
        fprintf(out, "  listen queue of port %d: %u waiting (backlog %u)\n", ctx->opt->port,
                ctx->listen_queued, ctx->listen_backlog);
    for (size_t i = 0; i < ctx->nnotes; i++)
        fprintf(out, "  note: %s\n", ctx->notes[i]);
    if (ctx->opt->capture_path != NULL)
        fprintf(out, "  packet capture: %s\n", ctx->opt->capture_path);
}

/* ---- rendering: JSON ------------------------------------------------------------------------- */

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* A string, or null when empty. */
static void json_str_or_null(FILE *out, const char *s)
{
    if (s == NULL || s[0] == '\0')
        fputs("null", out);
    else
        json_str(out, s);
}

static const char *diag_fd_kind_name(enum diag_fd_kind kind)
{
    static const char *const names[] = {
        [DIAG_FD_UNKNOWN] = "unknown",
        [DIAG_FD_TCP] = "tcp",
        [DIAG_FD_TCP_LISTEN] = "tcp_listen",
        [DIAG_FD_SOCKET] = "socket",
        [DIAG_FD_EPOLL] = "epoll",
        [DIAG_FD_PIPE] = "pipe",
        [DIAG_FD_FILE] = "file",
        [DIAG_FD_ANON] = "anon_inode",
    };
    return names[kind];
}

static void diag_json_fd(FILE *out, const struct diag_fd *fd)
{
    fprintf(out, "{\"fd\":%d,\"type\":\"%s\",\"target\":", fd->fd, diag_fd_kind_name(fd->kind));
    json_str_or_null(out, fd->target);
    fputs(",\"description\":", out);
    json_str(out, fd->text);
    if (fd->kind == DIAG_FD_TCP) {
        fputs(",\"local\":", out);
        json_str(out, fd->sock.local);
        fputs(",\"peer\":", out);
        json_str(out, fd->sock.peer);
        fprintf(out, ",\"state\":\"%s\",\"rq\":%u,\"sq\":%u", tcp_state_name(fd->sock.state),
                fd->sock.rq, fd->sock.wq);
    } else if (fd->kind == DIAG_FD_TCP_LISTEN) {
        fputs(",\"local\":", out);
        json_str(out, fd->sock.local);
        fprintf(out, ",\"queued\":%u,\"backlog\":%u", fd->sock.rq, fd->sock.wq);
    } else if (fd->kind == DIAG_FD_EPOLL) {
        fprintf(out, ",\"watches_total\":%zu,\"watches\":[", fd->watches_total);
        for (size_t i = 0; i < fd->nwatches; i++) {
            const struct diag_watch *w = &fd->watches[i];
            fprintf(out, "%s{\"fd\":%d,\"events\":\"0x%x\",\"edge_triggered\":%s,\"what\":",
                    i ? "," : "", w->fd, w->events, (w->events & DIAG_EPOLLET) ? "true" : "false");
            json_str(out, w->what);
            fputc('}', out);
        }
        fputc(']', out);
    }
    fputc('}', out);
}

static void diag_json_counts(FILE *out, const struct diag_count *counts, size_t n,
                             unsigned window_ms)
{
    fputc('[', out);
    for (size_t i = 0; i < n; i++) {
        char buf[32], ebuf[32];
        const struct diag_count *c = &counts[i];
        const char *name = c->nr == DIAG_NR_RUNNING ? "(on-cpu)"
                           : c->nr == DIAG_NR_USER  ? "(user)"
                                                    : diag_syscall_name(c->nr, buf, sizeof(buf));
        fprintf(out, "%s{\"name\":\"%s\",\"nr\":%ld,\"count\":%u", i ? "," : "", name, c->nr,
                c->count);
        if (window_ms > 0)
            fprintf(out, ",\"per_s\":%.1f", (double)c->count * 1000.0 / window_ms);
        fputs(",\"errors\":[", out);
        for (size_t k = 0; k < DIAG_MAX_ERRNOS && c->errors[k].count; k++)
            fprintf(out, "%s{\"errno\":\"%s\",\"count\":%u}", k ? "," : "",
                    diag_errno_name(c->errors[k].err, ebuf, sizeof(ebuf)), c->errors[k].count);
        fputs("]}", out);
    }
    fputc(']', out);
}

static void diag_json_syscall(FILE *out, const struct diag_thread *t)
{
    static const char *const states[] = {
        [DIAG_SC_UNKNOWN] = "unknown",
        [DIAG_SC_RUNNING] = "running",
        [DIAG_SC_USER] = "not_in_syscall",
        [DIAG_SC_IN] = "in_syscall",
    };
    fprintf(out, "{\"state\":\"%s\"", states[t->sc]);
    if (t->sc == DIAG_SC_IN) {
        char buf[32];
        const struct diag_syscall_info *info = diag_syscall_lookup(t->nr);
        size_t nargs = info ? strlen(info->args) : 6;
        fprintf(out, ",\"nr\":%ld,\"name\":\"%s\",\"args\":[", t->nr,
                diag_syscall_name(t->nr, buf, sizeof(buf)));
        for (size_t i = 0; i < nargs; i++)
            fprintf(out, "%s\"0x%" PRIx64 "\"", i ? "," : "", t->args[i]);
        fputs("],\"fds\":[", out);
        for (size_t i = 0; i < t->nfd_args; i++) {
            if (i)
                fputc(',', out);
            diag_json_fd(out, &t->fd_args[i]);
        }
        fputc(']', out);
    } else if (t->sc == DIAG_SC_UNKNOWN) {
        fputs(",\"error\":", out);
        json_str(out, strerror(t->sc_error));
    }
    fputc('}', out);
}

static void diag_json_frames(FILE *out, const struct diag_thread *t)
{
    fputc('[', out);
    for (size_t i = 0; i < t->nframes; i++) {
        const struct diag_frame *f = &t->frames[i];
        fprintf(out, "%s{\"pc\":\"0x%" PRIx64 "\",\"function\":", i ? "," : "", f->pc);
        json_str_or_null(out, f->function);
        fputs(",\"file\":", out);
        json_str_or_null(out, f->file);
        if (f->line > 0)
            fprintf(out, ",\"line\":%d", f->line);
        else
            fputs(",\"line\":null", out);
        fputs(",\"module\":", out);
        json_str_or_null(out, f->module);
        fprintf(out, ",\"inlined\":%s}", f->inlined ? "true" : "false");
    }
    fputc(']', out);
}

static void diag_json_thread(FILE *out, const struct diag_process *p, const struct diag_thread *t)
{
    fprintf(out, "{\"tid\":%d,\"comm\":", (int)t->tid);
    json_str(out, t->comm);
    fprintf(out, ",\"state\":\"%c\",\"state_name\":\"%s\",\"wchan\":", t->state,
            diag_state_name(t->state));
    json_str_or_null(out, t->wchan);
    fputs(",\"syscall\":", out);
    diag_json_syscall(out, t);
    if (t->cpu_known)
        fprintf(out, ",\"cpu_pct\":%.1f", t->cpu_pct);
    else
        fputs(",\"cpu_pct\":null", out);
    fprintf(out, ",\"busy\":%s,\"proc_samples\":", t->busy ? "true" : "false");
    diag_json_counts(out, t->sampled, t->nsampled, 0);
    fputs(",\"syscall_samples\":", out);
    diag_json_counts(out, t->traced, t->ntraced, p->trace_window_ms);
    fputs(",\"backtrace\":", out);
    diag_json_frames(out, t);
    fputs(",\"backtrace_error\":", out);
    json_str_or_null(out, t->nframes < 2 ? t->unwind_error : "");
    fputc('}', out);
}

static void diag_json_process(FILE *out, const struct diag_process *p)
{
    fprintf(out, "{\"pid\":%d,\"exe\":", (int)p->pid);
    json_str_or_null(out, p->exe);
    if (p->fds_known)
        fprintf(out, ",\"fds\":%u", p->nfds);
    else
        fputs(",\"fds\":null", out);
    if (p->limit_known)
        fprintf(out, ",\"fd_limit\":%" PRIu64, p->fd_soft);
    else
        fputs(",\"fd_limit\":null", out);
    fputs(",\"ptrace_error\":", out);
    json_str_or_null(out, p->ptrace_error);
    fprintf(out, ",\"trace_window_ms\":%u,\"threads_total\":%zu,\"threads\":[", p->trace_window_ms,
            p->threads_total);
    for (size_t i = 0; i < p->nthreads; i++) {
        if (i)
            fputc(',', out);
        diag_json_thread(out, p, &p->threads[i]);
    }
    fputs("]}", out);
}

/* The traced counts of all threads, summed, most frequent first. */
static size_t diag_total_counts(const struct diag_ctx *ctx, struct diag_count *sum,
                                unsigned *window_ms)
{
    size_t n = 0;
    *window_ms = 0;
    for (size_t i = 0; i < ctx->nprocs; i++) {
        const struct diag_process *p = &ctx->procs[i];
        if (p->trace_window_ms > *window_ms)
            *window_ms = p->trace_window_ms;
        for (size_t j = 0; j < p->nthreads; j++) {
            const struct diag_thread *t = &p->threads[j];
            for (size_t k = 0; k < t->ntraced; k++) {
                struct diag_count *c = diag_count_slot(sum, &n, t->traced[k].nr);
                if (c == NULL)
                    continue;
                c->count += t->traced[k].count;
                for (size_t e = 0; e < DIAG_MAX_ERRNOS && t->traced[k].errors[e].count; e++)
                    diag_count_error(c, t->traced[k].errors[e].err, t->traced[k].errors[e].count);
            }
        }
    }
    qsort(sum, n, sizeof(*sum), diag_compare_count);
    return n;
}

static void diag_render_json(FILE *out, const struct diag_ctx *ctx, uint64_t elapsed_ms,
                             const char *summary)
{
    fprintf(out, "{\"target_pid\":%d,\"elapsed_ms\":%" PRIu64 ",\"budget_ms\":%u", (int)ctx->root,
            elapsed_ms, ctx->opt->budget_ms ? ctx->opt->budget_ms : DIAGNOSE_DEFAULT_BUDGET_MS);
    fputs(",\"summary\":", out);
    json_str(out, summary);
    fprintf(out, ",\"ptrace\":%s,\"processes_total\":%zu,\"processes\":[",
            ctx->ptrace_ok ? "true" : "false", ctx->procs_total);
    for (size_t i = 0; i < ctx->nprocs; i++) {
        if (i)
            fputc(',', out);
        diag_json_process(out, &ctx->procs[i]);
    }
    fputs("],\"listen_queue\":", out);
    if (ctx->listen_known)
        fprintf(out, "{\"port\":%d,\"queued\":%u,\"backlog\":%u}", ctx->opt->port,
                ctx->listen_queued, ctx->listen_backlog);
    else
        fputs("null", out);
    struct diag_count sum[DIAG_MAX_COUNTS];
    unsigned window_ms;
    size_t n = diag_total_counts(ctx, sum, &window_ms);
    fprintf(out, ",\"sampling\":{\"method\":%s,\"proc_window_ms\":%u,\"trace_window_ms\":%u}",
            n > 0                   ? "\"ptrace\""
            : ctx->sample_window_ms ? "\"proc\""
                                    : "null",
            ctx->sample_window_ms, window_ms);
    fputs(",\"syscall_samples\":", out);
    diag_json_counts(out, sum, n, window_ms);
    fputs(",\"notes\":[", out);
    for (size_t i = 0; i < ctx->nnotes; i++) {
        if (i)
            fputc(',', out);
        json_str(out, ctx->notes[i]);
    }
    fputs("],\"capture_path\":", out);
    json_str_or_null(out, ctx->opt->capture_path);
    fputc('}', out);
}

/* ---- the API --------------------------------------------------------------------------------- */

static char *diag_render(const struct diag_ctx *ctx, uint64_t elapsed_ms, const char *summary,
                         int which)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (out == NULL)
        return NULL;
    if (which == 0)
        diag_put_summary(out, ctx);
    else if (which == 1)
        diag_render_text(out, ctx, elapsed_ms);
    else
        diag_render_json(out, ctx, elapsed_ms, summary);
    if (fclose(out) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void diag_ctx_free(struct diag_ctx *ctx)
{
    for (size_t i = 0; i < ctx->nprocs; i++) {
        for (size_t j = 0; j < ctx->procs[i].nthreads; j++)
            free(ctx->procs[i].threads[j].frames);
        free(ctx->procs[i].threads);
    }
    free(ctx->procs);
    free(ctx->socks);
}

int diagnose_target(pid_t root, const struct diagnose_options *opt, struct diagnosis *out)
{
    memset(out, 0, sizeof(*out));
    struct diag_ctx ctx = {.opt = opt, .root = root, .start_ms = cf_now_ms()};
    unsigned budget = opt->budget_ms ? opt->budget_ms : DIAGNOSE_DEFAULT_BUDGET_MS;
    ctx.deadline_ms = ctx.start_ms + budget;

    int rc = diag_scan(&ctx);
    if (rc < 0) {
        diag_ctx_free(&ctx);
        return rc;
    }
    if (opt->sample_syscalls)
        diag_sample(&ctx);
    diag_run_helper(&ctx);
    diag_analyse(&ctx);

    uint64_t elapsed = cf_now_ms() - ctx.start_ms;
    out->summary = diag_render(&ctx, elapsed, NULL, 0);
    out->text = diag_render(&ctx, elapsed, NULL, 1);
    out->json = out->summary ? diag_render(&ctx, elapsed, out->summary, 2) : NULL;
    diag_ctx_free(&ctx);
    if (out->summary == NULL || out->text == NULL || out->json == NULL) {
        diagnosis_free(out);
        return -ENOMEM;
    }
    return 0;
}

void diagnosis_free(struct diagnosis *d)
{
    free(d->text);
    free(d->json);
    free(d->summary);
    d->text = d->json = d->summary = NULL;
}
