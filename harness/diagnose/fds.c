/* fds: what an fd of the target is, in words: a TCP socket with its addresses, state and queues
 * (from observe/sockdiag), a listener with its accept queue, an epoll instance with the fds it
 * watches (from /proc/PID/fdinfo), a pipe, a file. */
#include "diagnose_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockdiag.h"

/* The TCP table is read once per diagnosis, at the first socket described. */
static void diag_socks_load(struct diag_ctx *ctx)
{
    ctx->socks_loaded = true;
    ctx->socks_error = sockdiag_tcp_table(&ctx->socks, &ctx->nsocks);
}

/* The socket's row as the report shows it; false if it is in no TCP table. */
static bool diag_socks_find(struct diag_ctx *ctx, uint64_t inode, struct diag_sock *out)
{
    if (!ctx->socks_loaded)
        diag_socks_load(ctx);
    const struct sockdiag_sock *row = sockdiag_table_find(ctx->socks, ctx->nsocks, inode);
    if (row == NULL)
        return false;
    out->state = row->state;
    out->rq = row->rqueue;
    out->wq = row->wqueue;
    sockdiag_format_endpoint(&row->local, out->local, sizeof(out->local));
    sockdiag_format_endpoint(&row->peer, out->peer, sizeof(out->peer));
    return true;
}

static void diag_describe_sock(const struct diag_sock *s, char *out, size_t size)
{
    if (s->state == DIAG_TCP_LISTEN)
        snprintf(out, size, "TCP LISTEN %s, %u queued (backlog %u)", s->local, s->rq, s->wq);
    else
        snprintf(out, size, "TCP %s <- %s %s, rq %u sq %u", s->local, s->peer,
                 tcp_state_name(s->state), s->rq, s->wq);
}

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

void diag_describe_fd(struct diag_ctx *ctx, pid_t pid, int fd, struct diag_fd *out,
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
        if (diag_socks_find(ctx, inode, &out->sock)) {
            out->kind = out->sock.state == DIAG_TCP_LISTEN ? DIAG_FD_TCP_LISTEN : DIAG_FD_TCP;
            diag_describe_sock(&out->sock, out->text, sizeof(out->text));
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
