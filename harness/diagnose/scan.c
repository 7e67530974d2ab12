/* scan: the target's process tree as /proc shows it: each process's executable, fds and fd
 * limit; each thread's name, state, kernel wait channel and the system call it is in, with
 * its fd arguments described. */
#include "diagnose_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procfs.h"
#include "sockdiag.h"

void diag_thread_path(char *buf, size_t size, pid_t pid, pid_t tid, const char *file)
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

void diag_read_syscall(pid_t pid, struct diag_thread *t)
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
    const struct diag_syscall_info *info = diag_syscall_lookup(t->abi, t->nr);
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

static void diag_read_thread(struct diag_ctx *ctx, pid_t pid, struct diag_thread *t)
{
    char path[96];
    diag_thread_path(path, sizeof(path), pid, t->tid, "comm");
    if (diag_read_file(path, t->comm, sizeof(t->comm)) < 0)
        t->comm[0] = '\0';
    struct procfs_stat st;
    t->state = procfs_read_stat(pid, t->tid, &st) == 0 ? st.state : '?';
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
    for (size_t i = 0; i < p->nthreads; i++) {
        p->threads[i].abi = p->abi;
        diag_read_thread(ctx, p->pid, &p->threads[i]);
    }
}

/* Whose system call numbers: its executable's ELF header says (x86_64 when unreadable). */
static enum diag_abi diag_exe_abi(pid_t pid)
{
    char path[64];
    unsigned char hdr[20];
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    FILE *exe = fopen(path, "re");
    if (exe == NULL)
        return DIAG_ABI_X86_64;
    size_t len = fread(hdr, 1, sizeof(hdr), exe);
    fclose(exe);
    return diag_abi_of_elf(hdr, len);
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

    p->abi = diag_exe_abi(p->pid);
    struct procfs_stat st;
    p->ppid = procfs_read_stat(p->pid, 0, &st) == 0 ? st.ppid : 0;
    struct fd_counts counts;
    int rc = procfs_fd_counts(p->pid, &counts);
    p->fds_known = rc == 0;
    p->fds_error = -rc;
    p->nfds = counts.total;
    p->limit_known = procfs_rlimit_nofile(p->pid, &p->fd_soft, &p->fd_hard) == 0;
    diag_scan_threads(ctx, p);
}

int diag_scan(struct diag_ctx *ctx)
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

const char *diag_state_name(char state)
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
