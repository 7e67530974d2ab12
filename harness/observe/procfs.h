/* procfs: what /proc says about a target's process tree (the root pid and all its
 * descendants): open fds by type, socket inodes, CPU time, anonymous memory, fd limit.
 * Every function returns 0 or a negative errno (-ESRCH: the root is gone, -EACCES: not
 * allowed to look); it never prints. */
#ifndef CONNFAULT_PROCFS_H
#define CONNFAULT_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROCFS_MAX_TREE 1024

struct fd_counts {
    unsigned total;
    unsigned sockets;
    unsigned pipes;
    unsigned files; /* regular files, directories, devices */
    unsigned anon;  /* anon_inode: eventpoll, eventfd, timerfd, signalfd, ... */
    unsigned other;
    /* Tree counts only (procfs_tree_scan): the processes walked, and the most fds one of them
     * held, with its pid. RLIMIT_NOFILE is per process: a fork-per-connection server's tree
     * may hold thousands of fds while no process comes near its limit. */
    unsigned processes;
    unsigned most_in_one;
    pid_t most_pid;
};

/* root and its descendants (children of children...), root first. */
int procfs_tree(pid_t root, pid_t *pids, size_t max, size_t *n);

int procfs_fd_counts(pid_t pid, struct fd_counts *out); /* one process */
/* Summed over the tree, except sockets: each socket counts once however many of the tree's
 * processes hold it (a fork-per-connection server's child shares its parent's sockets). */
int procfs_tree_fd_counts(pid_t root, struct fd_counts *out);

/* Both of the above in one walk of the tree's fd tables (inodes may be NULL: counts only).
 * *inodes is malloc'd, sorted, without repeats; the caller frees it. */
int procfs_tree_scan(pid_t root, struct fd_counts *counts, uint64_t **inodes, size_t *n);

/* The regular files the tree holds open, each with its number of fds: what tells a server's
 * cache of served files (one fd per file, however many clients asked for it) from a leak
 * (one fd per request, so the same file many times). */
#define PROCFS_MAX_FILES 32 /* distinct files listed; past it, `cut` */
struct procfs_file {
    uint64_t dev, ino;
    unsigned fds;  /* fds open on it, in every fd table of the tree */
    char name[64]; /* its base name */
};
struct procfs_regular_files {
    unsigned fds; /* fds on regular files */
    size_t n;
    bool cut; /* more distinct files than listed */
    struct procfs_file files[PROCFS_MAX_FILES];
};
int procfs_tree_regular_files(pid_t root, struct procfs_regular_files *out);

/* A small file (such as one in /proc) into buf, NUL-terminated: its length, or -errno. */
ssize_t procfs_read_file(const char *path, char *buf, size_t size);

/* Socket inodes held by the tree (deduplicated: a socket shared by several processes
 * counts once). *inodes is malloc'd; the caller frees it. */
int procfs_tree_socket_inodes(pid_t root, uint64_t **inodes, size_t *n);

/* The CPU time of each live process of the tree, sorted by pid. */
struct procfs_cpu {
    pid_t pid;
    uint64_t ns;      /* utime + stime: the CPU it got */
    uint64_t busy_ns; /* its threads' time on a CPU or in the run queue (schedstat): the CPU
                         it wanted, whatever a loaded machine gave it; ns without schedstat */
    uint64_t sleeps;  /* its threads' voluntary context switches: how often they blocked */
};
struct procfs_cpu_sample {
    size_t n;
    struct procfs_cpu procs[PROCFS_MAX_TREE];
};
int procfs_tree_cpu_sample(pid_t root, struct procfs_cpu_sample *out);

/* The CPU the tree used between samples a and b, process by process: never negative, however
 * the tree changed. A process only in b was born in between and counts all its CPU; one only
 * in a exited and takes its CPU with it (the difference of the two sums would go negative and
 * wrap); a smaller figure in b (the pid reused) counts 0. */
uint64_t procfs_cpu_used_ns(const struct procfs_cpu_sample *a, const struct procfs_cpu_sample *b);
/* The same for busy_ns: the time the tree was running or runnable between a and b; of a
 * process that blocked in between (its sleeps changed), only the CPU it got. */
uint64_t procfs_cpu_busy_ns(const struct procfs_cpu_sample *a, const struct procfs_cpu_sample *b);
/* Anonymous memory of the tree in KiB (malloc, stacks: what a leak grows), each page counted
 * once: the sum of Pss_Anon (RssAnon on kernels before 5.9). Not VmRSS, which counts a file
 * mmap'd per request and counts a page shared by forked processes once per process. */
int procfs_tree_anon_kb(pid_t root, uint64_t *kb);
int procfs_rlimit_nofile(pid_t pid, uint64_t *soft, uint64_t *hard); /* /proc/PID/limits */

/* 'R', 'S', 'D', 'Z', ... from /proc/PID/stat; -ESRCH if gone. */
int procfs_state(pid_t pid, char *state);

/* The few fields of /proc/PID/stat the harness uses. */
struct procfs_stat {
    char state; /* 'R', 'S', 'D', 'Z', ... */
    pid_t ppid;
    uint64_t utime_ticks; /* in sysconf(_SC_CLK_TCK) ticks */
    uint64_t stime_ticks;
};

/* The one /proc/PID/stat parser. The process name (field 2) is whatever the process chose,
 * including ')' and spaces ("a) b"), so the fields are read from after the LAST ')'.
 * -EINVAL for text that is not a stat line. */
int procfs_parse_stat(const char *text, struct procfs_stat *st);

/* /proc/PID/stat (tid 0) or /proc/PID/task/TID/stat (one thread), parsed; -ESRCH if gone. */
int procfs_read_stat(pid_t pid, pid_t tid, struct procfs_stat *st);

/* The kernel's TCP counters (TcpExt in /proc/PID/net/netstat) that tell a listen backlog
 * overflowed: per network namespace, so read through a process of the target's. */
struct procfs_tcpext {
    uint64_t listen_overflows;  /* ListenOverflows: a handshake's last ACK dropped, queue full */
    uint64_t listen_drops;      /* ListenDrops: every SYN or ACK a listener dropped */
    uint64_t syncookies_sent;   /* SyncookiesSent: SYN-ACKs with a cookie, SYN queue full */
    uint64_t syncookies_failed; /* SyncookiesFailed: ACKs whose cookie did not check: reset */
};

/* The TcpExt lines ("TcpExt: Name ..." then "TcpExt: 1 ...") of netstat text. -EINVAL when a
 * counter is missing or the lines do not match. */
int procfs_parse_tcpext(const char *text, struct procfs_tcpext *out);

/* /proc/PID/net/netstat parsed: the counters of pid's network namespace; -ESRCH if gone. */
int procfs_read_tcpext(pid_t pid, struct procfs_tcpext *out);

/* utime + stime in ns. */
uint64_t procfs_stat_cpu_ns(const struct procfs_stat *st);

#endif
