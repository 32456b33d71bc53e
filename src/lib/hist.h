/* hist.h - a histogram of durations over fixed buckets, for the metrics.
 *
 * The buckets' bounds are the same for every histogram and fixed at build
 * time (hist_bound_us), so adding is a few compares and an increment: no
 * allocation, nothing to configure, and a scrape always sees the same
 * buckets. Counts are per bucket, not cumulative; the exposition adds them
 * up (control/metrics.h).
 */
#ifndef OVL_LIB_HIST_H
#define OVL_LIB_HIST_H

#include <stdint.h>

/* Finite buckets: 0.1 ms to 10 s, roughly 1, 2.5, 5 a decade. */
#define HIST_BOUNDS 16

/* The upper bound (inclusive) of bucket i in microseconds, ascending. */
extern const uint32_t hist_bound_us[HIST_BOUNDS];

struct hist {
    uint64_t n[HIST_BOUNDS + 1]; /* values in bucket i; n[HIST_BOUNDS]: above the last bound */
    uint64_t sum_us;             /* every value added, in microseconds */
};

/* Add one value of us microseconds. */
void hist_add(struct hist *h, uint64_t us);

/* Return how many values were added. */
uint64_t hist_count(const struct hist *h);

#endif
