/* sandbox: a private network namespace for the target and the harness's clients, with an
 * nftables table of the harness's own that makes chosen connections or whole client hosts
 * vanish (every packet dropped, both ways: no FIN, no RST, like a pulled cable).
 *
 * The harness moves itself into a fresh network namespace (as root a plain one; otherwise a
 * user namespace too, so no sudo is needed) before it starts the target, which inherits it.
 * Inside there is only a loopback device: nothing can leave the machine. The namespace, its
 * table and its rules exist only while the harness and its target live: when both are gone,
 * even after a SIGKILL (the target dies with the harness: PR_SET_PDEATHSIG), the kernel frees
 * all of it. Nothing is ever added to the host's own firewall. */
#ifndef CONNFAULT_SANDBOX_H
#define CONNFAULT_SANDBOX_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

struct nft_ctx;

struct sandbox {
    bool ready;
    bool user_namespace; /* entered without root, through a user namespace */
    char why_not[512];   /* when not ready: why, and how to enable it */
    struct nft_ctx *nft;
    char table[48];
    unsigned dropped_connections, dropped_hosts;
};

/* Enter the sandbox. 0, or -errno with sb->why_not explaining (the caller then skips the
 * scenarios that need it). Call before any target is started. */
int sandbox_enter(struct sandbox *sb);

/* From now on, drop every packet of this client connection (its local address and port),
 * in both directions. 0 or -errno. */
int sandbox_drop_connection(struct sandbox *sb, const struct sockaddr_in *client);

/* Drop every packet from or to this client host. 0 or -errno. */
int sandbox_drop_host(struct sandbox *sb, struct in_addr host);

/* Forget every drop and zero the counts (at the start and end of every scenario). 0 or -errno;
 * 0 when the sandbox is not ready (nothing to forget). */
int sandbox_clear(struct sandbox *sb);

/* In a process forked from the one that entered the sandbox (a job of --jobs): drops of its
 * own, in a table named after this process, so that clearing them (sandbox_clear) never
 * touches another job's. The inherited context is let go (its netlink socket is shared with
 * the parent). 0, or -errno with why_not; the sandbox is then not ready. */
int sandbox_fork_job(struct sandbox *sb);

/* In the parent, once a job's process has been reaped: its table, if it could not remove it
 * itself (killed), goes. Nothing when the sandbox is not ready. */
void sandbox_forget_job(struct sandbox *sb, int pid);

/* Remove the table and free the context (the namespace itself goes when we exit). */
void sandbox_free(struct sandbox *sb);

#endif
