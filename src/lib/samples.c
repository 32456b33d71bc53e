/* samples.c - a ring of recent values and their quantiles (samples.h). */
#include <stdlib.h>
#include <string.h>

#include "lib/samples.h"

void samples_add(struct samples *s, uint32_t v)
{
    s->v[s->next] = v;
    s->next = (s->next + 1) % SAMPLES_MAX;
    if (s->n < SAMPLES_MAX)
        s->n++;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

uint32_t samples_quantile(const struct samples *s, unsigned q_permille)
{
    uint32_t sorted[SAMPLES_MAX], rank;

    if (s->n == 0)
        return 0;
    memcpy(sorted, s->v, s->n * sizeof(sorted[0]));
    qsort(sorted, s->n, sizeof(sorted[0]), cmp_u32);
    if (q_permille > 1000)
        q_permille = 1000;
    /* Nearest rank: the smallest value with at least q of them at or below. */
    rank = (uint32_t)(((uint64_t)q_permille * s->n + 999) / 1000);
    return sorted[rank ? rank - 1 : 0];
}
