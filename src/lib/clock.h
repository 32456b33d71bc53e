/* clock.h - the node's clocks: monotonic for ages and timeouts, wall for
 * signed documents. Every layer reads time through these three. */
#ifndef OVL_LIB_CLOCK_H
#define OVL_LIB_CLOCK_H

#include <stdint.h>

/* Return a monotonic clock in milliseconds (for ages and timeouts). */
uint64_t clock_now_ms(void);

/* Return the same clock in microseconds (for round trips under 1 ms). */
uint64_t clock_now_us(void);

/* Return wall-clock time in milliseconds since the Unix epoch (for signed
 * documents that other nodes read); 0 if the system cannot tell. */
uint64_t clock_wall_ms(void);

#endif
