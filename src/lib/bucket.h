/* bucket.h - a token bucket kept as one number (GCRA): what the
 * bootstrap's links, address blocks' requests and chain draws, and the
 * handshakes of an address block are each limited by.
 *
 * *tat is the time from which the bucket is full again (0: full). A
 * token comes every 1000 / rate ms (1 ms at most rates above 1000); at
 * most burst are held (0 counts as 1).
 */
#ifndef OVL_LIB_BUCKET_H
#define OVL_LIB_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

/* Take a token at now (ms) if there is one: true and *tat moved on, or
 * false and *tat untouched. rate must be at least 1. */
static inline bool ovl_bucket_take(uint64_t *tat, uint32_t rate, uint32_t burst, uint64_t now)
{
    uint64_t step = 1000 / rate ? 1000 / rate : 1;
    uint64_t t = *tat > now ? *tat : now;

    if (t - now > step * (burst ? burst - 1 : 0))
        return false;
    *tat = t + step;
    return true;
}

#endif
