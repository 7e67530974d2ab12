/* Tests for procfs: a forked "kid" process opens known resources on command and the test
 * checks what /proc says about it. The kid keeps only its two control pipes (fd 0: commands
 * in, fd 1: replies out), so its fd counts are exact. Every step is synchronised through
 * those pipes; nothing sleeps. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cf_time.h"
#include "procfs.h"
#include "target.h"
#include "support.h"

/* procfs.c's fallback tree walk (scanning /proc/N/stat for parents), exposed for tests. */
int procfs_tree_by_stat_scan(pid_t root, pid_t *pids, size_t max, size_t *n);

#define KID_REPLY_TIMEOUT_MS 20000
#define KID_SPIN_CPU_NS      50000000ULL /* 5 clock ticks at 100 Hz */
#define KID_TOUCH_BYTES      (32u << 20)

/* Commands understood by the kid. */
enum {
    KID_OPEN = 'o',       /* open 3 pipes, 3 sockets, 3 files, 2 anon inodes */
    KID_GRANDCHILD = 'g', /* fork a grandchild that opens 2 pipes and 1 socket */
    KID_SPIN = 's',       /* burn ~50 ms of CPU */
    KID_TOUCH = 'm',      /* map and touch 32 MiB */
    KID_MAP_FILE = 'f',   /* map a 32 MiB file and read every page of it */
    KID_RLIMIT = 'r',     /* setrlimit(RLIMIT_NOFILE, 123, 456) */
    KID_QUIT = 'q',       /* reap the grandchild and exit */
    KID_READY = 'R',      /* not a command: the kid's first reply, once its fds are set */
};

/* Written in one write() (below PIPE_BUF, so atomic). */
struct kid_reply {
    char command;
    uint32_t count;
    uint64_t values[4];
};

struct kid {
    pid_t pid;
    int command_fd;
    int reply_fd;
};

/* What the kid process remembers between commands. */
struct kid_state {
    pid_t grandchild;
    int grandchild_hold_fd; /* closing it tells the grandchild to exit */
};

static uint64_t inode_of(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        _exit(90);
    return (uint64_t)st.st_ino;
}

static void kid_reply(int fd, const struct kid_reply *reply)
{
    if (write(fd, reply, sizeof(*reply)) != (ssize_t)sizeof(*reply))
        _exit(91);
}

static void kid_open_resources(struct kid_reply *reply)
{
    int fds[2];
    for (int i = 0; i < 3; i++) {
        if (pipe(fds) != 0)
            _exit(92);
    }
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    if (tcp < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
        _exit(93);
    if (open("/dev/null", O_RDONLY) < 0 || open("/dev/null", O_WRONLY) < 0 ||
        open("/", O_RDONLY | O_DIRECTORY) < 0)
        _exit(94);
    if (epoll_create1(0) < 0 || eventfd(0, 0) < 0)
        _exit(95);
    reply->count = 3;
    reply->values[0] = inode_of(tcp);
    reply->values[1] = inode_of(fds[0]);
    reply->values[2] = inode_of(fds[1]);
}

/* The grandchild keeps everything it inherited except the write end of the hold pipe and the read
 * end of the ready pipe, adds 2 pipes and a socket, and reports. */
static void grandchild_main(int hold[2], int ready[2])
{
    close(hold[1]);
    close(ready[0]);
    int fds[2];
    if (pipe(fds) != 0 || pipe(fds) != 0)
        _exit(96);
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    if (tcp < 0)
        _exit(97);
    uint64_t inode = inode_of(tcp);
    if (write(ready[1], &inode, sizeof(inode)) != (ssize_t)sizeof(inode))
        _exit(98);
    char byte;
    while (read(hold[0], &byte, 1) != 0) /* until the kid closes its end */
        ;
    _exit(0);
}

static void kid_fork_grandchild(struct kid_state *state, struct kid_reply *reply)
{
    int hold[2], ready[2];
    if (pipe(hold) != 0 || pipe(ready) != 0)
        _exit(99);
    pid_t pid = fork();
    if (pid < 0)
        _exit(100);
    if (pid == 0)
        grandchild_main(hold, ready);
    close(hold[0]);
    close(ready[1]);
    uint64_t inode;
    if (read(ready[0], &inode, sizeof(inode)) != (ssize_t)sizeof(inode))
        _exit(101);
    close(ready[0]);
    state->grandchild = pid;
    state->grandchild_hold_fd = hold[1];
    reply->count = 2;
    reply->values[0] = (uint64_t)pid;
    reply->values[1] = inode;
}

static uint64_t process_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Spins until this process has used KID_SPIN_CPU_NS of CPU; the iteration cap only guards against a
 * clock that never advances. */
static void kid_spin(void)
{
    uint64_t start = process_cpu_ns();
    volatile uint64_t sink = 0;
    for (uint64_t i = 1; i < (1ULL << 40); i++) {
        sink += i;
        if ((i & 0xffff) == 0 && process_cpu_ns() - start >= KID_SPIN_CPU_NS)
            break;
    }
}

static void kid_touch_memory(void)
{
    char *mem =
        mmap(NULL, KID_TOUCH_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        _exit(102);
    memset(mem, 1, KID_TOUCH_BYTES); /* kept mapped until exit */
}

/* What a server mapping a file per request does: the pages are resident, but they are the
 * file's (page cache), not the server's memory. Kept mapped until exit. */
static void kid_map_file(void)
{
    int fd = open(".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, KID_TOUCH_BYTES) != 0)
        _exit(106);
    const volatile char *mem = mmap(NULL, KID_TOUCH_BYTES, PROT_READ, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED)
        _exit(107);
    close(fd);
    unsigned sum = 0;
    for (size_t i = 0; i < KID_TOUCH_BYTES; i += 4096)
        sum += (unsigned)mem[i];
    if (sum != 0)
        _exit(108);
}

static void kid_quit(const struct kid_state *state)
{
    if (state->grandchild > 0) {
        close(state->grandchild_hold_fd);
        waitpid(state->grandchild, NULL, 0);
    }
    _exit(0);
}

static void kid_main(void)
{
    struct kid_state state = {.grandchild = -1, .grandchild_hold_fd = -1};
    struct kid_reply ready = {.command = KID_READY};
    kid_reply(1, &ready);
    char command;
    while (read(0, &command, 1) == 1) {
        struct kid_reply reply = {.command = command};
        switch (command) {
        case KID_OPEN:
            kid_open_resources(&reply);
            break;
        case KID_GRANDCHILD:
            kid_fork_grandchild(&state, &reply);
            break;
        case KID_SPIN:
            kid_spin();
            break;
        case KID_TOUCH:
            kid_touch_memory();
            break;
        case KID_MAP_FILE:
            kid_map_file();
            break;
        case KID_RLIMIT: {
            struct rlimit limit = {.rlim_cur = 123, .rlim_max = 456};
            if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
                _exit(103);
            break;
        }
        case KID_QUIT:
            kid_quit(&state);
            break;
        default:
            _exit(104);
        }
        kid_reply(1, &reply);
    }
    kid_quit(&state);
}

static struct kid_reply kid_read_reply(const struct kid *kid, char command)
{
    struct pollfd pfd = {.fd = kid->reply_fd, .events = POLLIN};
    ck_assert_msg(poll(&pfd, 1, KID_REPLY_TIMEOUT_MS) == 1, "kid did not answer '%c'", command);
    struct kid_reply reply;
    ck_assert_int_eq(read(kid->reply_fd, &reply, sizeof(reply)), (ssize_t)sizeof(reply));
    ck_assert_int_eq(reply.command, command);
    return reply;
}

static struct kid_reply kid_command(const struct kid *kid, char command)
{
    ck_assert_int_eq(write(kid->command_fd, &command, 1), 1);
    return kid_read_reply(kid, command);
}

/* Forks the kid with exactly two fds: 0 = commands, 1 = replies. */
static void kid_start(struct kid *kid)
{
    int commands[2], replies[2];
    ck_assert_int_eq(pipe2(commands, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(replies, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* Move the ends above 2 first so the dup2() calls cannot clobber each other. */
        int in = fcntl(commands[0], F_DUPFD_CLOEXEC, 10);
        int out = fcntl(replies[1], F_DUPFD_CLOEXEC, 10);
        if (in < 0 || out < 0 || dup2(in, 0) != 0 || dup2(out, 1) != 1)
            _exit(105);
        close_range(2, ~0U, 0);
        kid_main();
    }
    close(commands[0]);
    close(replies[1]);
    kid->pid = pid;
    kid->command_fd = commands[1];
    kid->reply_fd = replies[0];
    kid_read_reply(kid, KID_READY);
}

static void kid_stop(struct kid *kid)
{
    char quit = KID_QUIT;
    ck_assert_int_eq(write(kid->command_fd, &quit, 1), 1);
    int status;
    ck_assert_int_eq(waitpid(kid->pid, &status, 0), kid->pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "kid failed: status %d", status);
    close(kid->command_fd);
    close(kid->reply_fd);
}

static void assert_fd_counts(const struct fd_counts *c, unsigned total, unsigned sockets,
                             unsigned pipes, unsigned files, unsigned anon)
{
    ck_assert_uint_eq(c->total, total);
    ck_assert_uint_eq(c->sockets, sockets);
    ck_assert_uint_eq(c->pipes, pipes);
    ck_assert_uint_eq(c->files, files);
    ck_assert_uint_eq(c->anon, anon);
    ck_assert_uint_eq(c->other, 0);
}

/* The TcpExt counters by name, wherever the kernel puts them in the line (the order changed
 * between kernels); a missing one is an error, never a 0. */
START_TEST(test_tcpext_parsed_by_name)
{
    static const char text[] =
        "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts ListenOverflows "
        "ListenDrops TCPHPHits\n"
        "TcpExt: 30 2 3 0 41 43 9\n"
        "IpExt: InNoRoutes ListenOverflows\n"
        "IpExt: 0 77\n";
    struct procfs_tcpext t;
    ck_assert_int_eq(procfs_parse_tcpext(text, &t), 0);
    ck_assert_uint_eq(t.syncookies_sent, 30);
    ck_assert_uint_eq(t.syncookies_failed, 3);
    ck_assert_uint_eq(t.listen_overflows, 41);
    ck_assert_uint_eq(t.listen_drops, 43);
    ck_assert_int_eq(procfs_parse_tcpext("TcpExt: SyncookiesSent ListenDrops\nTcpExt: 1 2\n", &t),
                     -EINVAL);
    ck_assert_int_eq(procfs_parse_tcpext("IpExt: a\nIpExt: 1\n", &t), -EINVAL);
    /* the real file of this process's netns reads */
    ck_assert_int_eq(procfs_read_tcpext(getpid(), &t), 0);
}
END_TEST

START_TEST(test_fd_counts_by_type)
{
    struct kid kid;
    kid_start(&kid);
    struct fd_counts counts;

    ck_assert_int_eq(procfs_fd_counts(kid.pid, &counts), 0);
    assert_fd_counts(&counts, 2, 0, 2, 0, 0);

    kid_command(&kid, KID_OPEN);
    ck_assert_int_eq(procfs_fd_counts(kid.pid, &counts), 0);
    assert_fd_counts(&counts, 16, 3, 8, 3, 2);
    ck_assert_int_eq(procfs_tree_fd_counts(kid.pid, &counts), 0);
    assert_fd_counts(&counts, 16, 3, 8, 3, 2);

    /* Kid: + hold pipe's write end. Grandchild: the kid's 16 + hold read end + ready write end + 2
     * pipes + 1 socket. */
    struct kid_reply reply = kid_command(&kid, KID_GRANDCHILD);
    pid_t grandchild = (pid_t)reply.values[0];
    ck_assert_int_eq(procfs_fd_counts(kid.pid, &counts), 0);
    assert_fd_counts(&counts, 17, 3, 9, 3, 2);
    ck_assert_int_eq(procfs_fd_counts(grandchild, &counts), 0);
    assert_fd_counts(&counts, 23, 4, 14, 3, 2);
    /* The grandchild shares the kid's 3 sockets: 7 socket fds are 4 sockets, counted once (a
     * fork-per-connection server's 50 clients were "300 leaked"); other fds per process. */
    ck_assert_int_eq(procfs_tree_fd_counts(kid.pid, &counts), 0);
    assert_fd_counts(&counts, 37, 4, 23, 6, 4);

    kid_stop(&kid);
}
END_TEST

typedef int (*tree_walk_fn)(pid_t root, pid_t *pids, size_t max, size_t *n);

static const tree_walk_fn tree_walks[] = {procfs_tree, procfs_tree_by_stat_scan};

static bool pid_listed(const pid_t *pids, size_t n, pid_t pid)
{
    for (size_t i = 0; i < n; i++) {
        if (pids[i] == pid)
            return true;
    }
    return false;
}

START_TEST(test_tree_lists_descendants)
{
    struct kid kid;
    kid_start(&kid);
    struct kid_reply reply = kid_command(&kid, KID_GRANDCHILD);
    pid_t grandchild = (pid_t)reply.values[0];

    for (size_t w = 0; w < sizeof(tree_walks) / sizeof(tree_walks[0]); w++) {
        pid_t pids[PROCFS_MAX_TREE];
        size_t n;
        ck_assert_int_eq(tree_walks[w](kid.pid, pids, PROCFS_MAX_TREE, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(pids[0], kid.pid);
        ck_assert_int_eq(pids[1], grandchild);

        /* From the test process down, both generations are found. */
        ck_assert_int_eq(tree_walks[w](getpid(), pids, PROCFS_MAX_TREE, &n), 0);
        ck_assert_int_eq(pids[0], getpid());
        ck_assert(pid_listed(pids, n, kid.pid));
        ck_assert(pid_listed(pids, n, grandchild));

        /* Too small a buffer: what fits, and -ENOBUFS. */
        ck_assert_int_eq(tree_walks[w](kid.pid, pids, 1, &n), -ENOBUFS);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(pids[0], kid.pid);
    }
    kid_stop(&kid);
}
END_TEST

/* Enough children that their pids take more than one 4 KiB read of the children file. */
#define MANY_CHILDREN 1000

START_TEST(test_tree_with_many_children)
{
    int hold[2];
    ck_assert_int_eq(pipe2(hold, O_CLOEXEC), 0);
    static pid_t children[MANY_CHILDREN];
    for (size_t i = 0; i < MANY_CHILDREN; i++) {
        children[i] = fork();
        ck_assert_int_ge(children[i], 0);
        if (children[i] == 0) {
            char byte;
            close(hold[1]);
            while (read(hold[0], &byte, 1) != 0) /* until the test closes its end */
                ;
            _exit(0);
        }
    }

    static pid_t pids[2 * MANY_CHILDREN];
    for (size_t w = 0; w < sizeof(tree_walks) / sizeof(tree_walks[0]); w++) {
        size_t n;
        ck_assert_int_eq(tree_walks[w](getpid(), pids, 2 * MANY_CHILDREN, &n), 0);
        ck_assert_uint_ge(n, MANY_CHILDREN + 1);
        for (size_t i = 0; i < MANY_CHILDREN; i++)
            ck_assert_msg(pid_listed(pids, n, children[i]), "child %d missing", children[i]);
    }

    close(hold[1]);
    close(hold[0]);
    for (size_t i = 0; i < MANY_CHILDREN; i++)
        ck_assert_int_eq(waitpid(children[i], NULL, 0), children[i]);
}
END_TEST

START_TEST(test_socket_inodes_deduplicated)
{
    struct kid kid;
    kid_start(&kid);
    uint64_t *inodes;
    size_t n;
    ck_assert_int_eq(procfs_tree_socket_inodes(kid.pid, &inodes, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(inodes);

    struct kid_reply opened = kid_command(&kid, KID_OPEN);
    struct kid_reply forked = kid_command(&kid, KID_GRANDCHILD);
    /* The grandchild shares the kid's 3 sockets and adds 1: 7 socket fds, 4 sockets. */
    uint64_t expected[4] = {opened.values[0], opened.values[1], opened.values[2], forked.values[1]};
    ck_assert_int_eq(procfs_tree_socket_inodes(kid.pid, &inodes, &n), 0);
    ck_assert_uint_eq(n, 4);
    for (size_t i = 1; i < n; i++)
        ck_assert_uint_lt(inodes[i - 1], inodes[i]);
    for (size_t e = 0; e < 4; e++) {
        bool found = false;
        for (size_t i = 0; i < n; i++)
            found |= inodes[i] == expected[e];
        ck_assert_msg(found, "socket inode %llu missing", (unsigned long long)expected[e]);
    }

    /* The single walk the harness samples with gives the same as the two separate calls. */
    struct fd_counts counts, scanned;
    uint64_t *both = NULL;
    size_t nboth = 0;
    ck_assert_int_eq(procfs_tree_fd_counts(kid.pid, &counts), 0);
    ck_assert_int_eq(procfs_tree_scan(kid.pid, &scanned, &both, &nboth), 0);
    ck_assert_mem_eq(&scanned, &counts, sizeof(counts));
    ck_assert_uint_eq(nboth, n);
    ck_assert_mem_eq(both, inodes, n * sizeof(*inodes));
    ck_assert_int_eq(procfs_tree_scan(kid.pid, &scanned, NULL, NULL), 0);
    ck_assert_mem_eq(&scanned, &counts, sizeof(counts));
    ck_assert_uint_eq(scanned.sockets, 4); /* 7 socket fds, 4 sockets */
    free(both);
    free(inodes);
    kid_stop(&kid);
}
END_TEST

START_TEST(test_cpu_time_grows_when_spinning)
{
    struct kid kid;
    kid_start(&kid);
    kid_command(&kid, KID_GRANDCHILD); /* the sum must include the kid, not only the last */
    static struct procfs_cpu_sample before, after;
    ck_assert_int_eq(procfs_tree_cpu_sample(kid.pid, &before), 0);
    ck_assert_uint_eq(before.n, 2);
    kid_command(&kid, KID_SPIN);
    ck_assert_int_eq(procfs_tree_cpu_sample(kid.pid, &after), 0);
    ck_assert_uint_gt(procfs_cpu_used_ns(&before, &after), 0);
    ck_assert_uint_gt(procfs_cpu_busy_ns(&before, &after), 0);
    kid_stop(&kid);
}
END_TEST

static uint64_t vm_rss_kb(pid_t pid)
{
    char path[64], text[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    ck_assert_int_gt(procfs_read_file(path, text, sizeof(text)), 0);
    const char *line = strstr(text, "VmRSS:");
    ck_assert_ptr_nonnull(line);
    return strtoull(line + strlen("VmRSS:"), NULL, 10);
}

/* The tree's anonymous memory before and after a command. */
static void anon_kb_across(const struct kid *kid, char command, uint64_t *before, uint64_t *after)
{
    ck_assert_int_eq(procfs_tree_anon_kb(kid->pid, before), 0);
    kid_command(kid, command);
    ck_assert_int_eq(procfs_tree_anon_kb(kid->pid, after), 0);
}

START_TEST(test_anon_memory_grows_when_touching_memory)
{
    struct kid kid;
    kid_start(&kid);
    kid_command(&kid, KID_GRANDCHILD); /* the sum must include the kid, not only the last */
    uint64_t before, after;
    anon_kb_across(&kid, KID_TOUCH, &before, &after);
    ck_assert_uint_gt(before, 0);
    /* Half the touched size: the figure is the kernel's, its accounting lags slightly. */
    ck_assert_uint_ge(after, before + KID_TOUCH_BYTES / 1024 / 2);
    kid_stop(&kid);
}
END_TEST

#if defined(__SANITIZE_ADDRESS__)
#define ANON_ASAN_SHADOW_KB (KID_TOUCH_BYTES / 1024 / 8)
#else
#define ANON_ASAN_SHADOW_KB 0u
#endif

/* A file mapped and read is in VmRSS, but it is not memory the server grew. */
START_TEST(test_anon_memory_ignores_a_mapped_file)
{
    struct kid kid;
    kid_start(&kid);
    uint64_t before, after, rss_before = vm_rss_kb(kid.pid);
    anon_kb_across(&kid, KID_MAP_FILE, &before, &after);
    ck_assert_uint_ge(vm_rss_kb(kid.pid), rss_before + KID_TOUCH_BYTES / 1024 / 2); /* resident */
    /* Page tables and such (1 MiB), not 32 MiB; under ASan also its shadow of what was read,
     * an eighth of it: the allowance is that and no more, so the plain build stays strict. */
    ck_assert_uint_lt(after, before + 1024 + ANON_ASAN_SHADOW_KB);
    kid_stop(&kid);
}
END_TEST

/* Memory the kid touched, then shared copy-on-write with a forked grandchild, is one copy:
 * summing each process's RSS counted it twice. */
START_TEST(test_anon_memory_shared_by_fork_counted_once)
{
    struct kid kid;
    kid_start(&kid);
    kid_command(&kid, KID_TOUCH);
    uint64_t alone, forked;
    anon_kb_across(&kid, KID_GRANDCHILD, &alone, &forked);
    ck_assert_uint_ge(alone, KID_TOUCH_BYTES / 1024 / 2);
    ck_assert_uint_lt(forked, alone + KID_TOUCH_BYTES / 1024 / 4);
    kid_stop(&kid);
}
END_TEST

/* The tree's CPU sample lists every process, sorted by pid; the CPU used since is not
 * negative when a process of the first sample has gone. */
START_TEST(test_cpu_sample_per_process)
{
    struct kid kid;
    kid_start(&kid);
    struct kid_reply reply = kid_command(&kid, KID_GRANDCHILD);
    static struct procfs_cpu_sample a, b;
    ck_assert_int_eq(procfs_tree_cpu_sample(kid.pid, &a), 0);
    ck_assert_uint_eq(a.n, 2);
    ck_assert_int_lt(a.procs[0].pid, a.procs[1].pid);
    ck_assert((a.procs[0].pid == kid.pid) != (a.procs[1].pid == kid.pid));
    ck_assert(a.procs[0].pid == (pid_t)reply.values[0] || a.procs[1].pid == (pid_t)reply.values[0]);
    kid_command(&kid, KID_SPIN);
    ck_assert_int_eq(procfs_tree_cpu_sample(kid.pid, &b), 0);
    ck_assert_uint_gt(procfs_cpu_used_ns(&a, &b), 0);
    ck_assert_uint_gt(procfs_cpu_busy_ns(&a, &b), 0); /* on a CPU, or waiting for one */
    for (size_t i = 0; i < b.n; i++)
        ck_assert_uint_ge(b.procs[i].busy_ns, b.procs[i].ns);
    /* the kid blocks in read() for its next command: its voluntary switches rise */
    uint64_t kid_sleeps = 0;
    for (size_t i = 0; i < b.n; i++)
        if (b.procs[i].pid == kid.pid)
            kid_sleeps = b.procs[i].sleeps;
    bool rose = false;
    for (uint64_t until = cf_now_ms() + 5000; !rose && cf_now_ms() < until;) {
        kid_command(&kid, KID_SPIN); /* it wakes, runs it, replies, blocks again */
        ck_assert_int_eq(procfs_tree_cpu_sample(kid.pid, &b), 0);
        for (size_t i = 0; i < b.n; i++)
            rose |= b.procs[i].pid == kid.pid && b.procs[i].sleeps > kid_sleeps;
    }
    ck_assert_msg(rose, "the kid's voluntary context switches stayed at %llu",
                  (unsigned long long)kid_sleeps);
    b.n = 0; /* every process gone: nothing used, not a wrapped difference */
    ck_assert_uint_eq(procfs_cpu_used_ns(&a, &b), 0);
    kid_stop(&kid);
}
END_TEST

START_TEST(test_rlimit_nofile_read_back)
{
    struct kid kid;
    kid_start(&kid);
    uint64_t soft, hard;
    struct rlimit own;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &own), 0);
    ck_assert_int_eq(procfs_rlimit_nofile(kid.pid, &soft, &hard), 0);
    ck_assert_uint_eq(soft, own.rlim_cur); /* inherited */
    ck_assert_uint_eq(hard, own.rlim_max);

    kid_command(&kid, KID_RLIMIT);
    ck_assert_int_eq(procfs_rlimit_nofile(kid.pid, &soft, &hard), 0);
    ck_assert_uint_eq(soft, 123);
    ck_assert_uint_eq(hard, 456);
    kid_stop(&kid);
}
END_TEST

START_TEST(test_state_sleeping_then_zombie)
{
    struct kid kid;
    kid_start(&kid);
    char state = '?';
    /* Having answered, the kid goes back to read() and falls asleep there; how soon is up to the
     * scheduler, so wait for it with a deadline. */
    kid_command(&kid, KID_OPEN);
    uint64_t deadline = cf_now_ms() + KID_REPLY_TIMEOUT_MS;
    do {
        ck_assert_int_eq(procfs_state(kid.pid, &state), 0);
    } while (state != 'S' && cf_now_ms() < deadline);
    ck_assert_int_eq(state, 'S');

    /* WNOWAIT waits for the exit but leaves the zombie in place. */
    char quit = KID_QUIT;
    ck_assert_int_eq(write(kid.command_fd, &quit, 1), 1);
    siginfo_t info;
    ck_assert_int_eq(waitid(P_PID, (id_t)kid.pid, &info, WEXITED | WNOWAIT), 0);
    ck_assert_int_eq(procfs_state(kid.pid, &state), 0);
    ck_assert_int_eq(state, 'Z');
    struct fd_counts counts;
    ck_assert_int_eq(procfs_tree_fd_counts(kid.pid, &counts), 0);
    ck_assert_uint_eq(counts.total, 0);
    uint64_t kb;
    ck_assert_int_eq(procfs_tree_anon_kb(kid.pid, &kb), 0);
    ck_assert_uint_eq(kb, 0);

    ck_assert_int_eq(waitpid(kid.pid, NULL, 0), kid.pid);
    close(kid.command_fd);
    close(kid.reply_fd);
}
END_TEST

START_TEST(test_reaped_pid_is_esrch)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);

    pid_t pids[4];
    size_t n;
    struct fd_counts counts;
    uint64_t value, other, *inodes;
    char state;
    ck_assert_int_eq(procfs_tree(pid, pids, 4, &n), -ESRCH);
    ck_assert_int_eq(procfs_fd_counts(pid, &counts), -ESRCH);
    ck_assert_int_eq(procfs_tree_fd_counts(pid, &counts), -ESRCH);
    ck_assert_int_eq(procfs_tree_socket_inodes(pid, &inodes, &n), -ESRCH);
    ck_assert_ptr_null(inodes);
    ck_assert_int_eq(procfs_tree_anon_kb(pid, &value), -ESRCH);
    static struct procfs_cpu_sample sample;
    ck_assert_int_eq(procfs_tree_cpu_sample(pid, &sample), -ESRCH);
    ck_assert_int_eq(procfs_rlimit_nofile(pid, &value, &other), -ESRCH);
    ck_assert_int_eq(procfs_state(pid, &state), -ESRCH);
}
END_TEST

START_TEST(test_own_fds_counted_by_type)
{
    struct fd_counts before, after;
    ck_assert_int_eq(procfs_fd_counts(getpid(), &before), 0);
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    int file = open("/dev/null", O_RDONLY);
    int epoll = epoll_create1(0);
    ck_assert(sock >= 0 && file >= 0 && epoll >= 0);
    ck_assert_int_eq(procfs_fd_counts(getpid(), &after), 0);
    ck_assert_uint_eq(after.total, before.total + 3);
    ck_assert_uint_eq(after.sockets, before.sockets + 1);
    ck_assert_uint_eq(after.files, before.files + 1);
    ck_assert_uint_eq(after.anon, before.anon + 1);
    close(sock);
    close(file);
    close(epoll);
}
END_TEST

/* Regular files are listed once each with their number of fds (a file opened twice: 2), by
 * base name; a device (/dev/null) is not a regular file. */
START_TEST(test_regular_files_counted_per_file)
{
    char dir[64], path[128];
    ck_assert_int_eq(ts_tmpdir_create(dir, sizeof(dir), "connfault-procfs"), 0);
    snprintf(path, sizeof(path), "%s/served.bin", dir);
    ck_assert_int_eq(ts_write_file(path, "x"), 0);
    struct procfs_regular_files before, after;
    ck_assert_int_eq(procfs_tree_regular_files(getpid(), &before), 0);
    int a = open(path, O_RDONLY), b = open(path, O_RDONLY), dev = open("/dev/null", O_RDONLY);
    ck_assert(a >= 0 && b >= 0 && dev >= 0);
    ck_assert_int_eq(procfs_tree_regular_files(getpid(), &after), 0);
    ck_assert_uint_eq(after.fds, before.fds + 2);
    ck_assert_uint_eq(after.n, before.n + 1);
    const struct procfs_file *served = NULL;
    for (size_t i = 0; i < after.n; i++)
        if (strcmp(after.files[i].name, "served.bin") == 0)
            served = &after.files[i];
    ck_assert_ptr_nonnull(served);
    ck_assert_uint_eq(served->fds, 2);
    close(a);
    close(b);
    close(dev);
    ck_assert_int_eq(ts_tmpdir_remove(dir), 0);
}
END_TEST

/* The name of a process is its own choice: ") " in it must not shift the fields after it. */
START_TEST(test_stat_parsed_from_last_paren)
{
    struct procfs_stat st;
    ck_assert_int_eq(procfs_parse_stat("42 (a) b) S 7 42 42 0 -1 4194560 1 0 0 0 11 22 0 0", &st),
                     0);
    ck_assert_int_eq(st.state, 'S');
    ck_assert_int_eq(st.ppid, 7);
    ck_assert_uint_eq(st.utime_ticks, 11);
    ck_assert_uint_eq(st.stime_ticks, 22);
    ck_assert_int_eq(procfs_parse_stat("42 (no closing paren S 7", &st), -EINVAL);
    ck_assert_int_eq(procfs_parse_stat("42 (x) S", &st), -EINVAL);
}
END_TEST

/* A child named "a) b": its state, parent and liveness as every reader of /proc/PID/stat sees
 * them (procfs, the target's liveness check), asleep and then as a zombie. */
START_TEST(test_paren_in_process_name)
{
    int go[2], named[2];
    ck_assert_int_eq(pipe(go), 0);
    ck_assert_int_eq(pipe(named), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char byte = 0;
        prctl(PR_SET_NAME, "a) b");
        close(go[1]);
        if (write(named[1], &byte, 1) != 1 || read(go[0], &byte, 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(go[0]);
    close(named[1]);
    char byte;
    ck_assert_int_eq(read(named[0], &byte, 1), 1);
    struct procfs_stat st;
    ck_assert_int_eq(procfs_read_stat(pid, 0, &st), 0);
    ck_assert_int_eq(st.ppid, getpid());
    ck_assert_int_eq(procfs_read_stat(pid, pid, &st), 0); /* the thread's own stat file */
    ck_assert_int_eq(st.ppid, getpid());
    struct target t;
    struct sockaddr_in addr = {.sin_family = AF_INET};
    char err[128];
    ck_assert_int_eq(target_attach(&t, pid, &addr, err, sizeof(err)), 0);
    ck_assert(target_alive(&t));

    close(go[1]); /* the child exits; WNOWAIT leaves the zombie in place */
    siginfo_t info;
    ck_assert_int_eq(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), 0);
    char state;
    ck_assert_int_eq(procfs_state(pid, &state), 0);
    ck_assert_int_eq(state, 'Z');
    ck_assert(!target_alive(&t));
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    close(named[0]);
}
END_TEST

static Suite *procfs_suite(void)
{
    Suite *suite = suite_create("procfs");
    TCase *tc = tcase_create("tree");
    tcase_set_timeout(tc, 60); /* sanitizer builds are slow; nothing here waits on time */
    tcase_add_test(tc, test_fd_counts_by_type);
    tcase_add_test(tc, test_tcpext_parsed_by_name);
    tcase_add_test(tc, test_tree_lists_descendants);
    tcase_add_test(tc, test_tree_with_many_children);
    tcase_add_test(tc, test_socket_inodes_deduplicated);
    tcase_add_test(tc, test_cpu_time_grows_when_spinning);
    tcase_add_test(tc, test_anon_memory_grows_when_touching_memory);
    tcase_add_test(tc, test_anon_memory_ignores_a_mapped_file);
    tcase_add_test(tc, test_anon_memory_shared_by_fork_counted_once);
    tcase_add_test(tc, test_cpu_sample_per_process);
    tcase_add_test(tc, test_rlimit_nofile_read_back);
    tcase_add_test(tc, test_state_sleeping_then_zombie);
    tcase_add_test(tc, test_reaped_pid_is_esrch);
    tcase_add_test(tc, test_own_fds_counted_by_type);
    tcase_add_test(tc, test_regular_files_counted_per_file);
    tcase_add_test(tc, test_stat_parsed_from_last_paren);
    tcase_add_test(tc, test_paren_in_process_name);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    return ts_run_suite(procfs_suite());
}
