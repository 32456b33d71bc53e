/* stats.h - the statistics the anonymity suite needs, in one place. */
#ifndef OVL_TESTS_STATS_H
#define OVL_TESTS_STATS_H

#include <math.h>

/* Upper tail of chi-square with df degrees of freedom (Wilson-Hilferty
 * approximation: good to a few percent of p around 0.01 for df >= 10). */
static inline double chi2_p(double x, unsigned df)
{
    double k = df, z = (cbrt(x / k) - (1 - 2 / (9 * k))) / sqrt(2 / (9 * k));

    return 0.5 * erfc(z / sqrt(2));
}

#endif
