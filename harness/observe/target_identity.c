/* target_identity: is the process that listens on host:port the target? (see target.h) */
#include "target.h"
#include "target_internal.h"

#include "cf_escape.h"
#include "procfs.h"
#include "sockdiag.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LISTENERS_MAX 16

void target_describe_pid(pid_t pid, char *buf, size_t len)
{
    char path[64], comm[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    if (procfs_read_file(path, comm, sizeof(comm)) <= 0)
        snprintf(comm, sizeof(comm), "?");
    comm[strcspn(comm, "\n")] = '\0';
    cf_escape_in_place(comm, sizeof(comm), 0); /* a process names itself: control bytes too */
    snprintf(buf, len, "%d (%s)", (int)pid, comm);
}

/* Does a socket bound to end accept connections to addr? Its port, and its address the
 * same or a wildcard (0.0.0.0, ::, or ::ffff:a.b.c.d for addr). */
static bool listener_serves(const struct sockdiag_endpoint *end, const struct sockaddr_in *addr)
{
    if (end->port != ntohs(addr->sin_port))
        return false;
    static const uint8_t zero[16], mapped[12] = {[10] = 0xff, [11] = 0xff};
    if (end->family == AF_INET)
        return memcmp(end->addr, zero, 4) == 0 || memcmp(end->addr, &addr->sin_addr, 4) == 0;
    return memcmp(end->addr, zero, 16) == 0 ||
           (memcmp(end->addr, mapped, 12) == 0 && memcmp(end->addr + 12, &addr->sin_addr, 4) == 0);
}

/* The inodes of the LISTEN sockets serving addr. */
static int listener_inodes(const struct sockaddr_in *addr, uint64_t *inodes, size_t *n)
{
    struct sockdiag_sock *rows = NULL;
    size_t nrows = 0;
    int rc = sockdiag_tcp_table(&rows, &nrows);
    *n = 0;
    for (size_t i = 0; rc == 0 && i < nrows && *n < LISTENERS_MAX; i++)
        if (rows[i].state == 10 /* TCP_LISTEN */ && listener_serves(&rows[i].local, addr))
            inodes[(*n)++] = rows[i].inode;
    free(rows);
    return rc;
}

/* The first process (in /proc order) with an fd on socket inode; 0 if none we can see. */
static pid_t inode_holder(uint64_t inode)
{
    char want[48];
    snprintf(want, sizeof(want), "socket:[%llu]", (unsigned long long)inode);
    DIR *proc = opendir("/proc");
    pid_t found = 0;
    struct dirent *de;
    while (proc && !found && (de = readdir(proc)) != NULL) {
        pid_t pid = (pid_t)atoi(de->d_name);
        char path[300], link[64];
        snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
        DIR *fds = pid > 0 ? opendir(path) : NULL;
        struct dirent *fe;
        while (fds && !found && (fe = readdir(fds)) != NULL) {
            ssize_t n = readlinkat(dirfd(fds), fe->d_name, link, sizeof(link) - 1);
            if (n > 0 && (size_t)n == strlen(want) && memcmp(link, want, (size_t)n) == 0)
                found = pid;
        }
        if (fds)
            closedir(fds);
    }
    if (proc)
        closedir(proc);
    return found;
}

static void describe_holder(uint64_t inode, char *who, size_t wholen)
{
    pid_t pid = inode_holder(inode);
    char desc[96];
    if (pid > 0) {
        target_describe_pid(pid, desc, sizeof(desc));
        snprintf(who, wholen, "pid %s", desc);
    } else {
        snprintf(who, wholen, "a process connfault cannot see (run as root to name it)");
    }
}

int target_port_holder(const struct sockaddr_in *addr, char *who, size_t wholen)
{
    uint64_t inodes[LISTENERS_MAX];
    size_t n = 0;
    who[0] = '\0';
    int rc = listener_inodes(addr, inodes, &n);
    if (rc < 0 || n == 0)
        return rc;
    describe_holder(inodes[0], who, wholen);
    return -EADDRINUSE;
}

static bool inode_in(const uint64_t *v, size_t n, uint64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

int target_verify_listener(const struct target *t, char *err, size_t errlen)
{
    char ip[INET_ADDRSTRLEN], self[96];
    inet_ntop(AF_INET, &t->addr.sin_addr, ip, sizeof(ip));
    int port = ntohs(t->addr.sin_port);
    target_describe_pid(t->pid, self, sizeof(self));
    uint64_t listeners[LISTENERS_MAX], *mine = NULL;
    size_t nl = 0, nm = 0;
    int rc = listener_inodes(&t->addr, listeners, &nl);
    if (rc == 0 && nl == 0) {
        snprintf(err, errlen, "the target, pid %s, does not listen on %s:%d: nothing does", self,
                 ip, port);
        return -ENOENT;
    }
    if (rc == 0)
        rc = procfs_tree_socket_inodes(t->pid, &mine, &nm);
    for (size_t i = 0; rc == 0 && i < nl; i++)
        if (inode_in(mine, nm, listeners[i])) {
            free(mine);
            return 0;
        }
    free(mine);
    if (rc < 0) {
        snprintf(err, errlen, "cannot tell who listens on %s:%d (pid %s): %s", ip, port, self,
                 strerror(-rc));
        return rc;
    }
    char who[160];
    describe_holder(listeners[0], who, sizeof(who));
    snprintf(err, errlen, "the target, pid %s, does not listen on %s:%d: %s does", self, ip, port,
             who);
    return -EADDRINUSE;
}
