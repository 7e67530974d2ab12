/* peers: which fault and replay clients are still open, vanished or pulled (see engine.h,
 * engine_peers). Read-only for the clients: one getsockname() per open client, at the moment
 * the run asks (the end of the grace), not per event. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "engine_core.h"

/* Fault and replay clients have a vanish action; probes do not (they are not the fault). */
static bool peer_is_fault_client(const struct engine_client *c)
{
    return c->ops->vanish != NULL && c->conn.fd >= 0;
}

/* A client the engine never saw connect (cut off while its connect was pending behind a full
 * accept queue) may still have been connected by the kernel since: the server then holds a
 * connection whose peer is this open socket, a live client, not a leak. */
static bool peer_established(const struct engine_client *c)
{
    struct tcp_info info;
    socklen_t len = sizeof(info);
    return c->connected_ms != 0 ||
           (getsockopt(c->conn.fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
            info.tcpi_state == TCP_ESTABLISHED);
}

static bool peer_fill(const struct engine_client *c, struct engine_peer *out)
{
    struct sockaddr_in local;
    socklen_t len = sizeof(local);

    if (!peer_established(c) || getsockname(c->conn.fd, (struct sockaddr *)&local, &len) < 0 ||
        local.sin_family != AF_INET)
        return false;
    out->addr = local.sin_addr;
    out->port = ntohs(local.sin_port);
    out->state = c->conn.vanished ? ENGINE_PEER_VANISHED : ENGINE_PEER_LIVE;
    /* never seen connecting: its age is not known; the engine's now is the safe low bound */
    out->connected_ms = c->connected_ms ? c->connected_ms : c->engine->now_ms;
    return true;
}

void engine_peer_note_pulled(struct engine *e, const struct engine_client *c)
{
    if (!peer_is_fault_client(c))
        return;
    if (e->npulled == e->pulled_cap) {
        size_t cap = e->pulled_cap ? e->pulled_cap * 2 : 64;
        struct engine_peer *grown = realloc(e->pulled, cap * sizeof(*grown));
        if (!grown)
            return;
        e->pulled = grown;
        e->pulled_cap = cap;
    }
    if (peer_fill(c, &e->pulled[e->npulled])) {
        e->pulled[e->npulled].state = ENGINE_PEER_VANISHED;
        e->npulled++;
    }
}

static int peer_compare(const void *a, const void *b)
{
    const struct engine_peer *x = a, *y = b;
    uint32_t xa = ntohl(x->addr.s_addr), ya = ntohl(y->addr.s_addr);

    if (xa != ya)
        return xa < ya ? -1 : 1;
    return (x->port > y->port) - (x->port < y->port);
}

int engine_peers(const struct engine *e, struct engine_peer **out, size_t *n)
{
    size_t cap = e->npulled;
    struct cf_list *pos, *tmp;

    *out = NULL;
    *n = 0;
    cf_list_for_each_safe(pos, tmp, &e->live)
    {
        cap++;
    }
    if (cap == 0)
        return 0;
    struct engine_peer *rows = malloc(cap * sizeof(*rows));
    if (!rows)
        return -ENOMEM;
    size_t used = 0;
    cf_list_for_each_safe(pos, tmp, &e->live)
    {
        const struct engine_client *c = container_of(pos, struct engine_client, link);
        if (peer_is_fault_client(c) && peer_fill(c, &rows[used]))
            used++;
    }
    if (e->npulled > 0) /* e->pulled is NULL until a cable pull */
        memcpy(rows + used, e->pulled, e->npulled * sizeof(*rows));
    used += e->npulled;
    qsort(rows, used, sizeof(*rows), peer_compare);
    *out = rows;
    *n = used;
    return 0;
}

const struct engine_peer *engine_peer_find(const struct engine_peer *peers, size_t n,
                                           struct in_addr addr, unsigned port)
{
    struct engine_peer key = {.addr = addr, .port = port};

    if (n == 0)
        return NULL; /* peers may then be NULL, which bsearch must not be given */
    return bsearch(&key, peers, n, sizeof(*peers), peer_compare);
}
