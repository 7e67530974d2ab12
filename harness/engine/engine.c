/* engine: see engine.h. One level-triggered epoll loop and one timer heap drive every client
 * and probe; nothing ever blocks.
 *
 * This file holds the loop, the services the client kinds share (engine_core.h: timers, the
 * client lists, connecting) and the engine-wide parts of the public API. The client kinds
 * live in fault_client.c, replay_client.c and probe_client.c, on top of tcp_conn.c.
 */
#include "engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cf_time.h"
#include "engine_core.h"
#include "sort_util.h"

#define EVENT_BATCH    256
#define TIMER_HEAP_MIN 64    /* the heap's first size, then doubled: no realloc per client */
#define MAX_WAIT_MS    60000 /* one epoll_wait at most; engine_run checks its end after */

uint64_t engine_now_ms(void)
{
    return cf_now_ms();
}

void engine_fail(struct engine *e, int err)
{
    if (e->error == 0)
        e->error = err;
}

/* ---- services for the client kinds ------------------------------------------------------ */

void engine_timer_init(struct engine_timer *t, void (*fire)(struct engine_timer *t))
{
    timer_node_init(&t->node);
    t->fire = fire;
}

int engine_timer_reserve(struct engine *e)
{
    size_t need = e->timer_owners + 1, cap = e->timers.cap;

    if (need <= cap)
        return 0;
    cap = cap < TIMER_HEAP_MIN ? TIMER_HEAP_MIN : cap;
    while (cap < need)
        cap *= 2;
    return timer_heap_reserve(&e->timers, cap);
}

void engine_timer_arm(struct engine *e, struct engine_timer *t, uint64_t due_ms)
{
    if (timer_heap_arm(&e->timers, &t->node, due_ms) < 0)
        abort(); /* a caller skipped engine_timer_reserve(): a bug, not a runtime condition */
}

void engine_timer_cancel(struct engine *e, struct engine_timer *t)
{
    timer_heap_cancel(&e->timers, &t->node);
}

static void engine_client_fire(struct engine_timer *t)
{
    struct engine_client *c = container_of(t, struct engine_client, timer);

    c->ops->on_timer(c);
}

void *engine_client_new(struct engine *e, size_t size, const struct engine_client_ops *ops)
{
    struct engine_client *c;

    if (engine_timer_reserve(e) < 0)
        return NULL;
    c = calloc(1, size);
    if (!c)
        return NULL;
    c->ops = ops;
    c->engine = e;
    c->conn.fd = -1;
    engine_timer_init(&c->timer, engine_client_fire);
    cf_list_push_front(&e->live, &c->link);
    e->timer_owners++;
    return c;
}

void engine_client_discard(struct engine_client *c)
{
    cf_list_remove(&c->link);
    c->engine->timer_owners--;
    c->ops->free(c);
}

int engine_client_open(struct engine *e, size_t size, const struct engine_client_ops *ops,
                       void **out)
{
    struct engine_client *c = engine_client_new(e, size, ops);
    int rc;

    if (!c)
        return -ENOMEM;
    rc = tcp_conn_open(&c->conn, e->epfd);
    if (rc < 0) {
        engine_client_discard(c);
        return rc;
    }
    *out = c;
    return 0;
}

void engine_client_connect(struct engine_client *c, const struct tcp_conn_options *opt,
                           uint64_t timeout_ms)
{
    struct engine *e = c->engine;
    int rc = tcp_conn_connect(&c->conn, &e->cfg.target, opt);

    if (rc == 0) {
        c->connected_ms = e->now_ms;
        c->ops->on_connected(c);
    } else if (rc == -EINPROGRESS) {
        engine_client_watch(c, EPOLLOUT);
        if (timeout_ms > 0)
            engine_timer_arm(e, &c->timer, e->now_ms + timeout_ms);
    } else {
        c->ops->on_connect_failed(c, rc);
    }
}

void engine_client_connect_event(struct engine_client *c)
{
    int err = tcp_conn_error(&c->conn);

    if (err == 0) {
        c->connected_ms = c->engine->now_ms;
        c->ops->on_connected(c);
    } else
        c->ops->on_connect_failed(c, err);
}

void engine_client_watch(struct engine_client *c, uint32_t events)
{
    int rc = tcp_conn_watch(&c->conn, events);

    if (rc < 0)
        engine_fail(c->engine, rc);
}

bool engine_client_vanish(struct engine_client *c, struct engine_group_stats *st)
{
    const struct engine_config *cfg = &c->engine->cfg;

    if (tcp_conn_vanish(&c->conn, cfg->drop, cfg->drop_ctx) < 0)
        return false;
    st->holding--;
    st->dropped++;
    return true;
}

void engine_client_count_pulled(const struct engine_client *c, bool held,
                                struct engine_group_stats *st)
{
    if (c->conn.vanished)
        return;
    if (held)
        st->holding--;
    else
        st->ended++;
    st->dropped++;
}

bool engine_client_read(struct engine_client *c)
{
    char *buf = c->engine->buf;

    for (int i = 0; i < READS_PER_EVENT; i++) {
        size_t want = c->ops->read_want(c, READ_BUF_SIZE);
        ssize_t n;

        if (want == 0)
            break;
        n = tcp_conn_recv(&c->conn, buf, want);
        if (n == -EAGAIN)
            break;
        if (n == 0) {
            c->ops->on_eof(c);
            return false;
        }
        if (n < 0) {
            c->ops->on_recv_error(c, (int)n);
            return false;
        }
        c->ops->on_data(c, buf, (size_t)n);
    }
    return true;
}

void engine_client_close(struct engine_client *c, bool reset)
{
    struct engine *e = c->engine;

    engine_timer_cancel(e, &c->timer);
    tcp_conn_close(&c->conn, reset);
    cf_list_remove(&c->link);
    cf_list_push_front(&e->closed, &c->link);
}

void engine_bytes_spread(const uint64_t *received, size_t n, uint64_t *min, uint64_t *median,
                         uint64_t *max)
{
    uint64_t *sorted = n ? malloc(n * sizeof(*sorted)) : NULL;

    *min = *median = *max = 0;
    if (!sorted)
        return;
    memcpy(sorted, received, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cf_compare_u64);
    *min = sorted[0];
    *median = sorted[(n - 1) / 2];
    *max = sorted[n - 1];
    free(sorted);
}

/* ---- the loop --------------------------------------------------------------------------- */

static void engine_fire_timers(struct engine *e)
{
    struct timer_node *node;

    while ((node = timer_heap_pop_expired(&e->timers, e->now_ms))) {
        struct engine_timer *t = container_of(node, struct engine_timer, node);
        t->fire(t);
    }
}

/* Free what handlers closed during the last step (see engine_core.h). */
static void engine_sweep(struct engine *e)
{
    struct cf_list *node;

    while ((node = cf_list_first(&e->closed))) {
        struct engine_client *c = container_of(node, struct engine_client, link);
        cf_list_remove(node);
        c->ops->free(c);
        e->timer_owners--;
    }
}

static int engine_wait_ms(const struct engine *e, uint64_t until_ms)
{
    const struct timer_node *next = timer_heap_peek(&e->timers);
    uint64_t wake = until_ms;

    if (next && next->deadline_ms < wake)
        wake = next->deadline_ms;
    if (wake <= e->now_ms)
        return 0;
    return wake - e->now_ms > MAX_WAIT_MS ? MAX_WAIT_MS : (int)(wake - e->now_ms);
}

static void engine_dispatch(const struct epoll_event *events, int n)
{
    for (int i = 0; i < n; i++) {
        struct engine_client *c = container_of(events[i].data.ptr, struct engine_client, conn);
        c->ops->on_event(c, events[i].events);
    }
}

int engine_run(struct engine *e, uint64_t until_ms)
{
    struct epoll_event events[EVENT_BATCH];
    int rc;

    do {
        int n;

        e->now_ms = engine_now_ms();
        engine_fire_timers(e);
        engine_sweep(e);
        if (e->error)
            break;
        n = epoll_wait(e->epfd, events, EVENT_BATCH, engine_wait_ms(e, until_ms));
        if (n < 0 && errno != EINTR)
            return -errno;
        e->now_ms = engine_now_ms();
        engine_dispatch(events, n);
        engine_fire_timers(e);
        engine_sweep(e);
    } while (!e->error && e->now_ms < until_ms);
    rc = e->error;
    e->error = 0;
    return rc;
}

/* ---- the engine-wide API ---------------------------------------------------------------- */

struct engine *engine_new(const struct engine_config *cfg, char *err, size_t errlen)
{
    struct engine *e = calloc(1, sizeof(*e));

    if (!e || timer_heap_init(&e->timers) < 0) {
        snprintf(err, errlen, "out of memory");
        free(e);
        return NULL;
    }
    e->cfg = *cfg;
    e->now_ms = engine_now_ms();
    cf_list_init(&e->live);
    cf_list_init(&e->closed);
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        timer_heap_free(&e->timers);
        free(e);
        return NULL;
    }
    return e;
}

bool engine_groups_done(const struct engine *e)
{
    if (e->cut_off)
        return true;
    return fault_groups_done(e) && (!e->replay || replay_done(e->replay));
}

/* Cut off (or make vanish) every live client whose kind does that; the action may move the
 * client (only that one) to the closed list. */
static void engine_each_client(struct engine *e, bool vanish)
{
    struct cf_list *pos, *tmp;

    cf_list_for_each_safe(pos, tmp, &e->live)
    {
        struct engine_client *c = container_of(pos, struct engine_client, link);
        void (*action)(struct engine_client *) = vanish ? c->ops->vanish : c->ops->cut_off;
        if (action && vanish)
            engine_peer_note_pulled(e, c);
        if (action)
            action(c);
    }
}

void engine_stop_starting(struct engine *e)
{
    e->stopped = true;
    fault_groups_cut_off(e);
    if (e->replay)
        replay_cut_off(e->replay);
}

void engine_cut_off(struct engine *e)
{
    e->cut_off = true;
    fault_groups_cut_off(e);
    if (e->replay)
        replay_cut_off(e->replay);
    engine_each_client(e, false);
}

void engine_vanish_all(struct engine *e)
{
    e->cut_off = true;
    engine_each_client(e, true);
}

void engine_free(struct engine *e)
{
    struct cf_list *node;

    if (!e)
        return;
    /* First: freeing the heap touches the timers still armed, in owners not yet freed. */
    timer_heap_free(&e->timers);
    /* An RST for every held socket: nothing lingers in TIME_WAIT or FIN_WAIT. */
    while ((node = cf_list_first(&e->live))) {
        struct engine_client *c = container_of(node, struct engine_client, link);
        cf_list_remove(node);
        tcp_conn_close(&c->conn, c->ops->reset_at_free);
        c->ops->free(c);
    }
    engine_sweep(e);
    replay_free(e->replay);
    fault_groups_free(e);
    free(e->pulled);
    close(e->epfd);
    free(e);
}
