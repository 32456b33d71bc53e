/* samples.c - a ring of recent values and their quantiles (samples.h). */
#include "lib/samples.h"

void samples_add(struct samples *s, uint32_t v)
{
    s->v[s->next] = v;
    s->next = (s->next + 1) % SAMPLES_MAX;
    if (s->n < SAMPLES_MAX)
        s->n++;
}

uint32_t samples_quantile(const struct samples *s, unsigned q_permille)
{
    uint32_t sorted[SAMPLES_MAX], rank, i, j;

    if (s->n == 0)
        return 0;
    /* Insertion sort: at most 256 values, for the control socket only,
     * and shorter than qsort's import and comparison function. */
    for (i = 0; i < s->n; i++) {
        uint32_t v = s->v[i];

        for (j = i; j > 0 && sorted[j - 1] > v; j--)
            sorted[j] = sorted[j - 1];
        sorted[j] = v;
    }
    if (q_permille > 1000)
        q_permille = 1000;
    /* Nearest rank: the smallest value with at least q of them at or below. */
    rank = (uint32_t)(((uint64_t)q_permille * s->n + 999) / 1000);
    return sorted[rank ? rank - 1 : 0];
}
