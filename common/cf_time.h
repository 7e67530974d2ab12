/* cf_time: the one monotonic clock of server, harness and bench.
 *
 * CLOCK_MONOTONIC never jumps with the wall clock, so deadlines and durations computed from it
 * stay right across NTP steps. Inline: the engine and the event loop read it on every turn. */
#ifndef CONNFAULT_CF_TIME_H
#define CONNFAULT_CF_TIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t cf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t cf_now_us(void)
{
    return cf_now_ns() / 1000u;
}

static inline uint64_t cf_now_ms(void)
{
    return cf_now_ns() / 1000000u;
}

/* Seconds as a double, for benchmarks and reports that print fractions. */
static inline double cf_now_seconds(void)
{
    return (double)cf_now_ns() / 1e9;
}

#endif
