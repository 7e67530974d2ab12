/* procfs: reads a process tree's resources from /proc.
 *
 * Everything here races with the target: processes exit, fds close and pids move between
 * parents while we read. The rule is simple: whatever vanishes mid-read is skipped, except
 * the root, whose disappearance is reported as -ESRCH. */
#include "procfs.h"
#include "sort_util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ENOENT from a /proc/PID path means the process is gone. */
static int procfs_gone_errno(int err)
{
    return err == ENOENT ? -ESRCH : -err;
}

ssize_t procfs_read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t len;
    do {
        len = read(fd, buf, size - 1);
    } while (len < 0 && errno == EINTR);
    int err = errno;
    close(fd);
    if (len < 0)
        return -err;
    buf[len] = '\0';
    return len;
}

/* procfs_read_file without stdio (this runs for every process of the tree at every sample),
 * with "the process is gone" errors folded into -ESRCH. */
static int procfs_read_small(const char *path, char *buf, size_t size)
{
    ssize_t len = procfs_read_file(path, buf, size);
    return len < 0 ? procfs_gone_errno((int)-len) : 0;
}

int procfs_parse_stat(const char *text, struct procfs_stat *st)
{
    const char *p = strrchr(text, ')');
    if (p == NULL || p[1] != ' ' || p[2] == '\0')
        return -EINVAL;
    p += 2;
    st->state = *p++;

    /* Fields 4..15 follow: ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime
     * stime. */
    uint64_t field[12];
    for (int i = 0; i < 12; i++) {
        char *end;
        errno = 0;
        field[i] = strtoull(p, &end, 10);
        if (end == p || errno != 0)
            return -EINVAL;
        p = end;
    }
    st->ppid = (pid_t)field[0];
    st->utime_ticks = field[10];
    st->stime_ticks = field[11];
    return 0;
}

int procfs_read_stat(pid_t pid, pid_t tid, struct procfs_stat *st)
{
    char path[96];
    char text[1024]; /* the fields we need end well before 1 KiB */
    if (tid == 0)
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    else
        snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    int rc = procfs_read_small(path, text, sizeof(text));
    if (rc < 0)
        return rc;
    return procfs_parse_stat(text, st);
}

/* The value under name in two space-separated lines (names, values), after their prefix. */
static bool procfs_netstat_value(const char *names, const char *values, const char *name,
                                 uint64_t *out)
{
    size_t len = strlen(name);
    for (const char *n = names, *v = values;;) {
        n += strspn(n, " ");
        v += strspn(v, " ");
        if (*n == '\0' || *n == '\n' || *v == '\0' || *v == '\n')
            return false;
        size_t nlen = strcspn(n, " \n");
        if (nlen == len && memcmp(n, name, len) == 0) {
            char *end;
            errno = 0;
            *out = strtoull(v, &end, 10);
            return end != v && errno == 0;
        }
        n += nlen;
        v += strcspn(v, " \n");
    }
}

int procfs_parse_tcpext(const char *text, struct procfs_tcpext *out)
{
    static const char prefix[] = "TcpExt:";
    const char *names = strstr(text, prefix);
    const char *values = names ? strchr(names, '\n') : NULL;
    if (!values || strncmp(values + 1, prefix, sizeof(prefix) - 1) != 0)
        return -EINVAL;
    names += sizeof(prefix) - 1;
    values += sizeof(prefix);
    memset(out, 0, sizeof(*out));
    bool ok = procfs_netstat_value(names, values, "ListenOverflows", &out->listen_overflows) &&
              procfs_netstat_value(names, values, "ListenDrops", &out->listen_drops) &&
              procfs_netstat_value(names, values, "SyncookiesSent", &out->syncookies_sent) &&
              procfs_netstat_value(names, values, "SyncookiesFailed", &out->syncookies_failed);
    return ok ? 0 : -EINVAL;
}

int procfs_read_tcpext(pid_t pid, struct procfs_tcpext *out)
{
    char path[64];
    char text[16384]; /* about 4 KiB on 6.x kernels, with IpExt and MPTcpExt after it */
    snprintf(path, sizeof(path), "/proc/%d/net/netstat", (int)pid);
    int rc = procfs_read_small(path, text, sizeof(text));
    return rc < 0 ? rc : procfs_parse_tcpext(text, out);
}

/* Parses a decimal pid; returns 0 if name is not one (".", "self", ...). */
static pid_t procfs_parse_pid(const char *name)
{
    char *end;
    if (!isdigit((unsigned char)name[0]))
        return 0;
    long value = strtol(name, &end, 10);
    if (*end != '\0' || value <= 0 || value > INT32_MAX)
        return 0;
    return (pid_t)value;
}

/* Appends pid unless already listed. A process re-parented while we read could be seen under two
 * parents; the linear check is cheap for trees of this size. */
static int procfs_tree_add(pid_t *pids, size_t max, size_t *n, pid_t pid)
{
    for (size_t i = 0; i < *n; i++) {
        if (pids[i] == pid)
            return 0;
    }
    if (*n == max)
        return -ENOBUFS;
    pids[(*n)++] = pid;
    return 0;
}

/* Appends the pids of a /proc/PID/task/TID/children file ("12 34 56 "). Read in chunks
 * so an inetd-style parent with thousands of children is listed completely. */
static int procfs_add_pid_list(const char *path, pid_t *pids, size_t max, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0; /* the thread is gone: it has no children left */

    char chunk[4096];
    pid_t pid = 0;
    bool in_number = false;
    int rc = 0;
    ssize_t len;
    while (rc == 0 && (len = read(fd, chunk, sizeof(chunk))) > 0) {
        for (ssize_t i = 0; rc == 0 && i < len; i++) {
            if (isdigit((unsigned char)chunk[i])) {
                pid = pid * 10 + (chunk[i] - '0');
                in_number = true;
            } else if (in_number) {
                rc = procfs_tree_add(pids, max, n, pid);
                pid = 0;
                in_number = false;
            }
        }
    }
    if (rc == 0 && in_number)
        rc = procfs_tree_add(pids, max, n, pid);
    close(fd);
    return rc;
}

/* Appends the children of every thread of pid (each thread has its own list). */
static int procfs_add_children_of(pid_t pid, pid_t *pids, size_t max, size_t *n)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *tasks = opendir(path);
    if (tasks == NULL)
        return 0; /* gone */

    int rc = 0;
    struct dirent *task;
    while (rc == 0 && (task = readdir(tasks)) != NULL) {
        pid_t tid = procfs_parse_pid(task->d_name);
        if (tid == 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)tid);
        rc = procfs_add_pid_list(path, pids, max, n);
    }
    closedir(tasks);
    return rc;
}

static int procfs_tree_by_children(pid_t *pids, size_t max, size_t *n)
{
    /* pids doubles as the breadth-first queue: pids[next] is the next parent to expand. */
    int rc = 0;
    for (size_t next = 0; rc == 0 && next < *n; next++)
        rc = procfs_add_children_of(pids[next], pids, max, n);
    return rc;
}

struct procfs_parent_link {
    pid_t pid;
    pid_t ppid;
};

/* Every live process with its parent, from /proc/[0-9]+/stat. *links is malloc'd. */
static int procfs_scan_parents(struct procfs_parent_link **links, size_t *count)
{
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return -errno;

    size_t cap = 256, len = 0;
    struct procfs_parent_link *all = malloc(cap * sizeof(*all));
    int rc = all == NULL ? -ENOMEM : 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir(proc)) != NULL) {
        pid_t pid = procfs_parse_pid(entry->d_name);
        struct procfs_stat st;
        if (pid == 0 || procfs_read_stat(pid, 0, &st) < 0)
            continue; /* not a process, or gone since readdir */
        if (len == cap) {
            struct procfs_parent_link *bigger = realloc(all, 2 * cap * sizeof(*all));
            if (bigger == NULL) {
                rc = -ENOMEM;
                break;
            }
            all = bigger;
            cap *= 2;
        }
        all[len++] = (struct procfs_parent_link){pid, st.ppid};
    }
    closedir(proc);
    if (rc < 0) {
        free(all);
        return rc;
    }
    *links = all;
    *count = len;
    return 0;
}

/* For kernels without CONFIG_PROC_CHILDREN: one pass over /proc for parent links, then a
 * breadth-first walk over them. */
static int procfs_tree_by_scan(pid_t *pids, size_t max, size_t *n)
{
    struct procfs_parent_link *links = NULL;
    size_t count = 0;
    int rc = procfs_scan_parents(&links, &count);
    if (rc < 0)
        return rc;

    for (size_t next = 0; rc == 0 && next < *n; next++) {
        for (size_t i = 0; rc == 0 && i < count; i++) {
            if (links[i].ppid == pids[next])
                rc = procfs_tree_add(pids, max, n, links[i].pid);
        }
    }
    free(links);
    return rc;
}

static bool procfs_exists(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    return access(path, F_OK) == 0;
}

static int procfs_tree_walk(pid_t root, pid_t *pids, size_t max, size_t *n, bool use_children)
{
    *n = 0;
    if (!procfs_exists(root))
        return -ESRCH;
    if (max == 0)
        return -ENOBUFS;

    pids[0] = root;
    *n = 1;
    int rc =
        use_children ? procfs_tree_by_children(pids, max, n) : procfs_tree_by_scan(pids, max, n);
    if (rc < 0)
        return rc;

    /* If the root died while we walked, its former children now belong to someone else: the list is
     * stale, so report the root as gone. */
    return procfs_exists(root) ? 0 : -ESRCH;
}

/* Not in procfs.h: the fallback walk, exposed so that tests can run it on kernels that do have the
 * children files. */
int procfs_tree_by_stat_scan(pid_t root, pid_t *pids, size_t max, size_t *n);

int procfs_tree_by_stat_scan(pid_t root, pid_t *pids, size_t max, size_t *n)
{
    return procfs_tree_walk(root, pids, max, n, false);
}

int procfs_tree(pid_t root, pid_t *pids, size_t max, size_t *n)
{
    /* task/N/children needs CONFIG_PROC_CHILDREN; it saves reading the stat of every process on the
     * system, which matters at one sample every 50 ms. */
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)root, (int)root);
    bool have_children_files = access(path, R_OK) == 0;
    return procfs_tree_walk(root, pids, max, n, have_children_files);
}

/* Calls visit(target, ctx) with the readlink() text of every open fd of pid. Fds that close during
 * the scan are skipped. The readlink() per fd is the dominant cost (about 2-3 us each), which is
 * why the callers never do anything per fd that allocates. */
typedef void (*procfs_fd_visit_fn)(const char *target, void *ctx);

static int procfs_walk_fds(pid_t pid, procfs_fd_visit_fn visit, void *ctx)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return procfs_gone_errno(errno);

    int dir_fd = dirfd(dir);
    struct dirent *entry;
    char target[256]; /* long paths are cut short: only their start is looked at */
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        ssize_t len = readlinkat(dir_fd, entry->d_name, target, sizeof(target) - 1);
        if (len < 0)
            continue;
        target[len] = '\0';
        visit(target, ctx);
    }
    closedir(dir);
    return 0;
}

static bool procfs_has_prefix(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

static void procfs_count_fd(const char *target, void *ctx)
{
    struct fd_counts *counts = ctx;
    counts->total++;
    if (procfs_has_prefix(target, "socket:["))
        counts->sockets++;
    else if (procfs_has_prefix(target, "pipe:["))
        counts->pipes++;
    else if (procfs_has_prefix(target, "anon_inode:"))
        counts->anon++;
    else if (target[0] == '/')
        counts->files++;
    else
        counts->other++; /* "net:[...]", "mnt:[...]", ... */
}

int procfs_fd_counts(pid_t pid, struct fd_counts *out)
{
    memset(out, 0, sizeof(*out));
    return procfs_walk_fds(pid, procfs_count_fd, out);
}

static void procfs_fd_counts_add(struct fd_counts *sum, const struct fd_counts *part)
{
    sum->total += part->total;
    sum->sockets += part->sockets;
    sum->pipes += part->pipes;
    sum->files += part->files;
    sum->anon += part->anon;
    sum->other += part->other;
}

/* The per-process step of a tree aggregate: -ESRCH of a descendant means "it exited
 * since we listed it" and is skipped; of the root it is the answer. */
static int procfs_tree_step_result(pid_t root, pid_t pid, int rc)
{
    if (rc == -ESRCH && pid != root)
        return 0;
    return rc;
}

/* One growing array for the whole tree, so a scan of 10,000 sockets costs a handful of reallocs
 * rather than one allocation per fd. */
struct procfs_inode_list {
    uint64_t *items;
    size_t len, cap;
    bool out_of_memory;
};

static void procfs_collect_socket_inode(const char *target, void *ctx)
{
    struct procfs_inode_list *list = ctx;
    static const char prefix[] = "socket:[";
    if (list->out_of_memory || strncmp(target, prefix, sizeof(prefix) - 1) != 0)
        return;
    uint64_t inode = strtoull(target + sizeof(prefix) - 1, NULL, 10);
    if (list->len == list->cap) {
        size_t cap = list->cap ? 2 * list->cap : 256;
        uint64_t *bigger = realloc(list->items, cap * sizeof(*bigger));
        if (bigger == NULL) {
            list->out_of_memory = true;
            return;
        }
        list->items = bigger;
        list->cap = cap;
    }
    list->items[list->len++] = inode;
}

/* One readlink() pass over every fd of the tree serves both the counts and the socket
 * inodes: the pass is the expensive part (~3 us per fd). */
struct procfs_scan {
    struct fd_counts *counts;
    struct procfs_inode_list *inodes;
};

static void procfs_scan_fd(const char *target, void *ctx)
{
    struct procfs_scan *scan = ctx;
    procfs_count_fd(target, scan->counts);
    if (scan->inodes)
        procfs_collect_socket_inode(target, scan->inodes);
}

/* A socket inherited across fork() or dup()ed is in several fd tables but is one socket: a
 * fork-per-connection server's 50 clients are 50 sockets, not one per process that holds
 * them. Other fds count once per fd table entry. */
static void procfs_count_sockets_once(struct fd_counts *counts, size_t unique)
{
    counts->total = counts->total - counts->sockets + (unsigned)unique;
    counts->sockets = (unsigned)unique;
}

int procfs_tree_scan(pid_t root, struct fd_counts *counts, uint64_t **inodes, size_t *n)
{
    memset(counts, 0, sizeof(*counts));
    if (inodes) {
        *inodes = NULL;
        *n = 0;
    }
    pid_t pids[PROCFS_MAX_TREE];
    size_t count;
    int rc = procfs_tree(root, pids, PROCFS_MAX_TREE, &count);
    struct procfs_inode_list list = {0};
    for (size_t i = 0; rc == 0 && i < count; i++) {
        struct fd_counts one = {0};
        struct procfs_scan scan = {.counts = &one, .inodes = &list};
        int step = procfs_walk_fds(pids[i], procfs_scan_fd, &scan);
        if (step == 0) {
            procfs_fd_counts_add(counts, &one);
            counts->processes++;
        }
        if (step == 0 && one.total > counts->most_in_one) {
            counts->most_in_one = one.total;
            counts->most_pid = pids[i];
        }
        rc = procfs_tree_step_result(root, pids[i], step);
    }
    if (rc == 0 && list.out_of_memory)
        rc = -ENOMEM;
    size_t unique = 0;
    if (rc == 0) {
        unique = cf_sort_unique_u64(list.items, list.len);
        procfs_count_sockets_once(counts, unique);
    }
    if (rc < 0 || !inodes) {
        free(list.items);
        return rc;
    }
    *inodes = list.items;
    *n = unique;
    return 0;
}

int procfs_tree_fd_counts(pid_t root, struct fd_counts *out)
{
    return procfs_tree_scan(root, out, NULL, NULL);
}

int procfs_tree_socket_inodes(pid_t root, uint64_t **inodes, size_t *n)
{
    struct fd_counts unused;
    return procfs_tree_scan(root, &unused, inodes, n);
}

uint64_t procfs_stat_cpu_ns(const struct procfs_stat *st)
{
    long ticks_per_second = sysconf(_SC_CLK_TCK); /* 100 on every Linux; never fails there */
    if (ticks_per_second <= 0)
        ticks_per_second = 100;
    return (st->utime_ticks + st->stime_ticks) * 1000000000ULL / (uint64_t)ticks_per_second;
}

static int procfs_compare_cpu(const void *a, const void *b)
{
    const struct procfs_cpu *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Finds "key<spaces>value" at the start of a line of a /proc/PID text file and parses the
 * first number after it. -ENODATA if no line starts with key. */
static int procfs_find_number(const char *path, const char *key, uint64_t *value)
{
    FILE *file = fopen(path, "re");
    if (file == NULL)
        return procfs_gone_errno(errno);

    char line[256];
    size_t key_len = strlen(key);
    bool at_line_start = true; /* lines longer than the buffer arrive in pieces */
    int rc = -ENODATA;
    while (rc == -ENODATA && fgets(line, sizeof(line), file) != NULL) {
        bool starts_line = at_line_start;
        at_line_start = strchr(line, '\n') != NULL;
        if (starts_line && strncmp(line, key, key_len) == 0)
            rc = sscanf(line + key_len, "%" SCNu64, value) == 1 ? 0 : -EINVAL;
    }
    fclose(file);
    return rc;
}

/* A thread's voluntary context switches (it blocked: in read, epoll_wait, a lock) from
 * /proc/PID/task/TID/status; 0 if unreadable (then it counts as never having blocked). */
static uint64_t procfs_thread_sleeps(pid_t pid, pid_t tid)
{
    char path[96];
    uint64_t n = 0;
    snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
    return procfs_find_number(path, "voluntary_ctxt_switches:", &n) == 0 ? n : 0;
}

/* Time pid's threads spent on a CPU or waiting for one: the sum of run and run-queue wait
 * times of /proc/PID/task/TID/schedstat ("run_ns wait_ns slices"), into out->busy_ns, and
 * their voluntary context switches into out->sleeps. A busy loop is runnable all the time,
 * however little CPU a loaded machine gives it. busy_ns falls back to out->ns (what it got)
 * if the kernel has no schedstat. */
static void procfs_busy(pid_t pid, struct procfs_cpu *out)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    out->busy_ns = out->ns;
    out->sleeps = 0;
    DIR *tasks = opendir(path);
    if (tasks == NULL)
        return;
    uint64_t busy = 0;
    bool any = false;
    struct dirent *task;
    while ((task = readdir(tasks)) != NULL) {
        pid_t tid = procfs_parse_pid(task->d_name);
        char text[128];
        unsigned long long run, wait;
        snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
        if (tid == 0 || procfs_read_small(path, text, sizeof(text)) < 0 ||
            sscanf(text, "%llu %llu", &run, &wait) != 2)
            continue; /* not a thread, or it exited since readdir */
        busy += run + wait;
        out->sleeps += procfs_thread_sleeps(pid, tid);
        any = true;
    }
    closedir(tasks);
    if (any && busy > out->ns)
        out->busy_ns = busy;
}

int procfs_tree_cpu_sample(pid_t root, struct procfs_cpu_sample *out)
{
    out->n = 0;
    pid_t pids[PROCFS_MAX_TREE];
    size_t n;
    int rc = procfs_tree(root, pids, PROCFS_MAX_TREE, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct procfs_stat st;
        int step = procfs_read_stat(pids[i], 0, &st);
        if (step == 0) {
            struct procfs_cpu *c = &out->procs[out->n++];
            *c = (struct procfs_cpu){.pid = pids[i], .ns = procfs_stat_cpu_ns(&st)};
            procfs_busy(pids[i], c);
        }
        rc = procfs_tree_step_result(root, pids[i], step);
    }
    if (rc < 0) {
        out->n = 0;
        return rc;
    }
    qsort(out->procs, out->n, sizeof(out->procs[0]), procfs_compare_cpu);
    return 0;
}

/* The merge of procfs_cpu_used_ns and procfs_cpu_busy_ns over one field. */
static uint64_t procfs_cpu_delta(const struct procfs_cpu_sample *a,
                                 const struct procfs_cpu_sample *b, bool busy)
{
    uint64_t used = 0;
    size_t i = 0;
    for (size_t j = 0; j < b->n; j++) { /* both sorted by pid: one merge pass */
        while (i < a->n && a->procs[i].pid < b->procs[j].pid)
            i++; /* gone by b: its CPU left with it */
        const struct procfs_cpu *was =
            i < a->n && a->procs[i].pid == b->procs[j].pid ? &a->procs[i] : NULL;
        /* A process that blocked in the window (a voluntary context switch) was not
         * spinning: its run-queue waits are a loaded machine's, counted only as the CPU it
         * got. (300 busybox children, each woken by its client, waited for a core at load
         * 20 until their sum crossed the spin threshold.) A sum that fell lost a thread that
         * had blocked: a thread-per-connection server's, as much not a spin. */
        bool slept = b->procs[j].sleeps != (was ? was->sleeps : 0);
        bool as_busy = busy && !slept;
        uint64_t before = was ? (as_busy ? was->busy_ns : was->ns) : 0;
        uint64_t after = as_busy ? b->procs[j].busy_ns : b->procs[j].ns;
        if (after > before) /* less in b (the pid reused, a thread gone): clamped */
            used += after - before;
    }
    return used;
}

uint64_t procfs_cpu_used_ns(const struct procfs_cpu_sample *a, const struct procfs_cpu_sample *b)
{
    return procfs_cpu_delta(a, b, false);
}

uint64_t procfs_cpu_busy_ns(const struct procfs_cpu_sample *a, const struct procfs_cpu_sample *b)
{
    return procfs_cpu_delta(a, b, true);
}

/* A process's share of the anonymous memory it maps, in KiB: Pss_Anon from smaps_rollup
 * (kernel 5.9+; a page shared copy-on-write with a forked child counts half in each, so the
 * tree's sum counts it once), else RssAnon from status (older kernels: shared pages counted in
 * each). File pages (a file mmap'd per request) and page cache are not the server's growth. */
static int procfs_anon_kb(pid_t pid, uint64_t *kb)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    int rc = procfs_find_number(path, "Pss_Anon:", kb);
    if (rc == -ENODATA || rc == -ESRCH) {
        /* no such field (older kernel), no such file, or gone: status says which */
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        rc = procfs_find_number(path, "RssAnon:", kb);
    }
    if (rc == -ENODATA) {
        *kb = 0; /* zombies and kernel threads have no memory of their own */
        rc = 0;
    }
    return rc;
}

int procfs_tree_anon_kb(pid_t root, uint64_t *kb)
{
    *kb = 0;
    pid_t pids[PROCFS_MAX_TREE];
    size_t n;
    int rc = procfs_tree(root, pids, PROCFS_MAX_TREE, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint64_t one;
        int step = procfs_anon_kb(pids[i], &one);
        if (step == 0)
            *kb += one;
        rc = procfs_tree_step_result(root, pids[i], step);
    }
    return rc;
}

static int procfs_parse_limit(const char *word, uint64_t *value)
{
    if (strcmp(word, "unlimited") == 0) {
        *value = UINT64_MAX;
        return 0;
    }
    char *end;
    errno = 0;
    *value = strtoull(word, &end, 10);
    return end == word || *end != '\0' || errno != 0 ? -EINVAL : 0;
}

int procfs_rlimit_nofile(pid_t pid, uint64_t *soft, uint64_t *hard)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
    FILE *file = fopen(path, "re");
    if (file == NULL)
        return procfs_gone_errno(errno);

    /* "Max open files            1024                 524288               files" */
    static const char key[] = "Max open files";
    char line[256];
    int rc = -ENODATA;
    while (rc == -ENODATA && fgets(line, sizeof(line), file) != NULL) {
        if (strncmp(line, key, sizeof(key) - 1) != 0)
            continue;
        char soft_word[32], hard_word[32];
        rc = -EINVAL;
        if (sscanf(line + sizeof(key) - 1, "%31s %31s", soft_word, hard_word) == 2 &&
            procfs_parse_limit(soft_word, soft) == 0 && procfs_parse_limit(hard_word, hard) == 0)
            rc = 0;
    }
    fclose(file);
    return rc;
}

int procfs_state(pid_t pid, char *state)
{
    struct procfs_stat st;
    int rc = procfs_read_stat(pid, 0, &st);
    if (rc == 0)
        *state = st.state;
    return rc;
}

/* ---- regular files: a cache or a leak ---- */

/* Counts fd name of dir_fd (a /proc/PID/fd) against its file, listed the first time seen. */
static void procfs_regular_add(int dir_fd, const char *name, const struct stat *st,
                               struct procfs_regular_files *out)
{
    out->fds++;
    for (size_t i = 0; i < out->n; i++)
        if (out->files[i].dev == st->st_dev && out->files[i].ino == st->st_ino) {
            out->files[i].fds++;
            return;
        }
    if (out->n == PROCFS_MAX_FILES) {
        out->cut = true;
        return;
    }
    struct procfs_file *f = &out->files[out->n++];
    *f = (struct procfs_file){.dev = st->st_dev, .ino = st->st_ino, .fds = 1};
    char target[256];
    ssize_t len = readlinkat(dir_fd, name, target, sizeof(target) - 1);
    target[len > 0 ? len : 0] = '\0';
    const char *slash = strrchr(target, '/');
    snprintf(f->name, sizeof(f->name), "%.63s", slash ? slash + 1 : target);
}

static int procfs_regular_of(pid_t pid, struct procfs_regular_files *out)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return procfs_gone_errno(errno);
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        struct stat st; /* of the open file itself: the fd link is followed */
        if (entry->d_name[0] != '.' && fstatat(dirfd(dir), entry->d_name, &st, 0) == 0 &&
            S_ISREG(st.st_mode))
            procfs_regular_add(dirfd(dir), entry->d_name, &st, out);
    }
    closedir(dir);
    return 0;
}

int procfs_tree_regular_files(pid_t root, struct procfs_regular_files *out)
{
    memset(out, 0, sizeof(*out));
    pid_t pids[PROCFS_MAX_TREE];
    size_t count;
    int rc = procfs_tree(root, pids, PROCFS_MAX_TREE, &count);
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = procfs_tree_step_result(root, pids[i], procfs_regular_of(pids[i], out));
    return rc;
}
