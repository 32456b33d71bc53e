/* samples.h - the last few hundred values of a measurement, for quantiles.
 *
 * A fixed ring: adding is O(1) and never allocates, so the data path can
 * record a chain's setup time or a message's round trip; quantiles sort a
 * copy, which only the control socket asks for.
 */
#ifndef OVL_LIB_SAMPLES_H
#define OVL_LIB_SAMPLES_H

#include <stdint.h>

#define SAMPLES_MAX 256

struct samples {
    uint32_t v[SAMPLES_MAX];
    uint32_t n;    /* values held, at most SAMPLES_MAX */
    uint32_t next; /* where the next one goes */
};

/* Record v, forgetting the oldest once SAMPLES_MAX are held. */
void samples_add(struct samples *s, uint32_t v);

/* Return the q-th per-mille quantile (500 = median, 1000 = max) of the
 * values held, the nearest-rank way; 0 when there are none. */
uint32_t samples_quantile(const struct samples *s, unsigned q_permille);

#endif
