/* sandbox: private network namespace + nftables drop sets, through libnftables in-process
 * (one library call per drop: 1,000 silent drops cost no process spawns, and one rule per
 * direction matches them all through a set). */
#include "sandbox.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int rc = n == (ssize_t)strlen(text) ? 0 : -errno;
    close(fd);
    return rc;
}

/* Without root: a user namespace in which we are root, mapped to our own uid and gid. */
static int sandbox_unshare_as_user(struct sandbox *sb)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0) {
        int err = errno;
        snprintf(sb->why_not, sizeof(sb->why_not),
                 "cannot create an unprivileged user+network namespace (%s): run as root, or "
                 "allow them (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces "
                 "> 0; on Ubuntu also kernel.apparmor_restrict_unprivileged_userns=0)",
                 strerror(err));
        return -err;
    }
    char map[64];
    int rc = write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
    if (rc == 0)
        rc = write_file("/proc/self/uid_map", map);
    snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
    if (rc == 0)
        rc = write_file("/proc/self/gid_map", map);
    if (rc < 0)
        snprintf(sb->why_not, sizeof(sb->why_not), "cannot map ids in the user namespace: %s",
                 strerror(-rc));
    sb->user_namespace = true;
    return rc;
}

static int sandbox_loopback_up(struct sandbox *sb)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    int rc = 0;
    if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
        rc = -errno;
    ifr.ifr_flags |= IFF_UP;
    if (rc == 0 && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        snprintf(sb->why_not, sizeof(sb->why_not), "cannot bring up loopback in the sandbox: %s",
                 strerror(-rc));
    return rc;
}

/* Run nft commands; on failure keep nft's own message in why_not. */
__attribute__((format(printf, 2, 3))) static int sandbox_nft(struct sandbox *sb, const char *fmt,
                                                             ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (nft_run_cmd_from_buffer(sb->nft, cmd) == 0)
        return 0;
    const char *msg = nft_ctx_get_error_buffer(sb->nft);
    snprintf(sb->why_not, sizeof(sb->why_not), "nftables: %.400s", msg && *msg ? msg : "failed");
    char *nl = strchr(sb->why_not, '\n');
    if (nl)
        *nl = '\0';
    return -EIO;
}

static int sandbox_create_table(struct sandbox *sb)
{
    sb->nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!sb->nft) {
        snprintf(sb->why_not, sizeof(sb->why_not), "nftables: cannot create a context");
        return -ENOMEM;
    }
    nft_ctx_buffer_output(sb->nft); /* libnftables prints to stdout otherwise */
    nft_ctx_buffer_error(sb->nft);
    snprintf(sb->table, sizeof(sb->table), "connfault_%d", (int)getpid());
    /* On loopback every packet passes the output hook once, so one chain sees both
     * directions: client -> server matches the client as source, server -> client as
     * destination. */
    return sandbox_nft(sb,
                       "add table inet %1$s\n"
                       "add set inet %1$s conns { type ipv4_addr . inet_service; size 262144; }\n"
                       "add set inet %1$s hosts { type ipv4_addr; size 1024; }\n"
                       "add chain inet %1$s out { type filter hook output priority -10; }\n"
                       "add rule inet %1$s out ip saddr . tcp sport @conns drop\n"
                       "add rule inet %1$s out ip daddr . tcp dport @conns drop\n"
                       "add rule inet %1$s out ip saddr @hosts drop\n"
                       "add rule inet %1$s out ip daddr @hosts drop\n",
                       sb->table);
}

static int sandbox_setup(struct sandbox *sb)
{
    int rc;
    if (geteuid() == 0) {
        rc = unshare(CLONE_NEWNET) < 0 ? -errno : 0;
        if (rc < 0)
            snprintf(sb->why_not, sizeof(sb->why_not), "cannot create a network namespace: %s",
                     strerror(-rc));
    } else {
        rc = sandbox_unshare_as_user(sb);
    }
    if (rc == 0)
        rc = sandbox_loopback_up(sb);
    if (rc == 0)
        rc = sandbox_create_table(sb);
    return rc;
}

/* Try the whole setup in a child first: a namespace cannot be left again (a user namespace
 * not at all), so the harness itself only moves once it is known to work. */
static int sandbox_try(struct sandbox *sb)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -errno;
    }
    if (pid == 0) {
        close(fds[0]);
        struct sandbox trial;
        memset(&trial, 0, sizeof(trial));
        int rc = sandbox_setup(&trial);
        if (rc < 0) {
            ssize_t ignored = write(fds[1], trial.why_not, strlen(trial.why_not));
            (void)ignored;
        }
        _exit(rc < 0 ? 1 : 0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], sb->why_not, sizeof(sb->why_not) - 1);
    sb->why_not[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (!sb->why_not[0])
        snprintf(sb->why_not, sizeof(sb->why_not), "the network sandbox could not be set up");
    return -EPERM;
}

int sandbox_enter(struct sandbox *sb)
{
    memset(sb, 0, sizeof(*sb));
    int rc = sandbox_try(sb);
    if (rc == 0)
        rc = sandbox_setup(sb);
    sb->ready = rc == 0;
    return rc;
}

int sandbox_drop_connection(struct sandbox *sb, const struct sockaddr_in *client)
{
    if (!sb->ready)
        return -ENOTCONN;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &client->sin_addr, ip, sizeof(ip));
    int rc = sandbox_nft(sb, "add element inet %s conns { %s . %u }", sb->table, ip,
                         (unsigned)ntohs(client->sin_port));
    if (rc == 0)
        sb->dropped_connections++;
    return rc;
}

int sandbox_drop_host(struct sandbox *sb, struct in_addr host)
{
    if (!sb->ready)
        return -ENOTCONN;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &host, ip, sizeof(ip));
    int rc = sandbox_nft(sb, "add element inet %s hosts { %s }", sb->table, ip);
    if (rc == 0)
        sb->dropped_hosts++;
    return rc;
}

int sandbox_clear(struct sandbox *sb)
{
    sb->dropped_connections = sb->dropped_hosts = 0;
    if (!sb->ready)
        return 0;
    return sandbox_nft(sb, "flush set inet %1$s conns\nflush set inet %1$s hosts", sb->table);
}

int sandbox_fork_job(struct sandbox *sb)
{
    if (!sb->ready)
        return 0;
    nft_ctx_free(sb->nft); /* closes this process's copy of the socket only */
    sb->nft = NULL;
    sb->dropped_connections = sb->dropped_hosts = 0;
    int rc = sandbox_create_table(sb); /* named after getpid(): this job's */
    sb->ready = rc == 0;
    return rc;
}

void sandbox_forget_job(struct sandbox *sb, int pid)
{
    if (!sb->ready)
        return;
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "delete table inet connfault_%d", pid);
    /* fails when the job removed it itself, as it does unless killed: that is the good case */
    nft_run_cmd_from_buffer(sb->nft, cmd);
}

void sandbox_free(struct sandbox *sb)
{
    if (sb->nft) {
        if (sb->ready)
            sandbox_nft(sb, "delete table inet %s", sb->table);
        nft_ctx_free(sb->nft);
    }
    sb->nft = NULL;
    sb->ready = false;
}
