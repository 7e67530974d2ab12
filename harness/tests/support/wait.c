/* Waiting for a condition against a deadline: see support.h for the contract. */
#include "support.h"

#include "cf_time.h"

#include <poll.h>

bool ts_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms, int period_ms)
{
    uint64_t deadline = cf_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        if (cond(arg))
            return true;
        uint64_t now = cf_now_ms();
        if (now >= deadline)
            return false;
        uint64_t left = deadline - now;
        poll(NULL, 0, left < (uint64_t)period_ms ? (int)left : period_ms);
    }
}
