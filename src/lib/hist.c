/* hist.c - fixed-bucket histograms of durations (hist.h). */
#include "lib/hist.h"

const uint32_t hist_bound_us[HIST_BOUNDS] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

void hist_add(struct hist *h, uint64_t us)
{
    unsigned i = 0;

    while (i < HIST_BOUNDS && us > hist_bound_us[i])
        i++;
    h->n[i]++;
    h->sum_us += us;
}

uint64_t hist_count(const struct hist *h)
{
    uint64_t c = 0;

    for (unsigned i = 0; i <= HIST_BOUNDS; i++)
        c += h->n[i];
    return c;
}
