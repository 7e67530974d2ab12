/* event_loop: epoll + a timer heap. */
#include "event_loop.h"

#include "cf_list.h"
#include "cf_time.h"

#include <errno.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

int event_loop_init(struct event_loop *loop)
{
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        return -errno;
    int rc = timer_heap_init(&loop->timers);
    if (rc < 0) {
        close(loop->epfd);
        return rc;
    }
    loop->now_ms = cf_now_ms();
    return 0;
}

void event_loop_free(struct event_loop *loop)
{
    if (loop->epfd >= 0)
        close(loop->epfd);
    loop->epfd = -1;
    timer_heap_free(&loop->timers);
}

static int event_loop_ctl(struct event_loop *loop, int op, int fd, uint32_t events,
                          struct event_source *src)
{
    struct epoll_event ev = {.events = events, .data.ptr = src};
    return epoll_ctl(loop->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

int event_loop_add(struct event_loop *loop, int fd, uint32_t events, struct event_source *src)
{
    return event_loop_ctl(loop, EPOLL_CTL_ADD, fd, events, src);
}

int event_loop_mod(struct event_loop *loop, int fd, uint32_t events, struct event_source *src)
{
    return event_loop_ctl(loop, EPOLL_CTL_MOD, fd, events, src);
}

int event_loop_del(struct event_loop *loop, int fd)
{
    return event_loop_ctl(loop, EPOLL_CTL_DEL, fd, 0, NULL);
}

void loop_timer_init(struct loop_timer *timer, void (*on_timer)(struct loop_timer *))
{
    timer_node_init(&timer->node);
    timer->on_timer = on_timer;
}

int loop_timer_arm(struct event_loop *loop, struct loop_timer *timer, uint64_t deadline_ms)
{
    return timer_heap_arm(&loop->timers, &timer->node, deadline_ms);
}

void loop_timer_cancel(struct event_loop *loop, struct loop_timer *timer)
{
    timer_heap_cancel(&loop->timers, &timer->node);
}

static int event_loop_wait_ms(struct event_loop *loop, int max_wait_ms)
{
    struct timer_node *next = timer_heap_peek(&loop->timers);
    if (!next)
        return max_wait_ms;
    uint64_t until = next->deadline_ms > loop->now_ms ? next->deadline_ms - loop->now_ms : 0;
    if (max_wait_ms >= 0 && until > (uint64_t)max_wait_ms)
        return max_wait_ms;
    return until > 60000 ? 60000 : (int)until;
}

int event_loop_turn(struct event_loop *loop, int max_wait_ms)
{
    struct epoll_event events[EVENT_LOOP_BATCH];
    int n = epoll_wait(loop->epfd, events, EVENT_LOOP_BATCH, event_loop_wait_ms(loop, max_wait_ms));
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    loop->now_ms = cf_now_ms();
    for (int i = 0; i < n; i++) {
        struct event_source *src = events[i].data.ptr;
        src->on_event(src, events[i].events);
    }
    struct timer_node *node;
    while ((node = timer_heap_pop_expired(&loop->timers, loop->now_ms)) != NULL) {
        struct loop_timer *timer = container_of(node, struct loop_timer, node);
        timer->on_timer(timer);
    }
    return n;
}
