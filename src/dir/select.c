/* select.c - uniform or capacity-weighted relay selection with the subnet
 * and family rules (select.h). */
#include <netinet/in.h>
#include <string.h>

#include "dir/select.h"
#include "lib/bytes.h"
#include "lib/crypto.h"
#include "lib/uri.h"

/* The subnet keys of d's IP-literal URIs: family tag and /16 or /32 prefix. */
static unsigned subnet_keys(const struct desc *d, uint64_t keys[DESC_MAX_URIS])
{
    unsigned n = 0;

    for (unsigned i = 0; i < d->n_uris && i < DESC_MAX_URIS; i++) {
        struct ovl_uri u;
        struct sockaddr_storage ss;
        const uint8_t *a;

        if (uri_parse(&u, d->uris[i]) != 0 || !u.is_literal || uri_sockaddr(&u, &ss) != 0)
            continue;
        if (ss.ss_family == AF_INET) {
            a = (const uint8_t *)&((const struct sockaddr_in *)&ss)->sin_addr;
            keys[n++] = (UINT64_C(4) << 32) | ld_be16(a);
        } else {
            a = (const uint8_t *)&((const struct sockaddr_in6 *)&ss)->sin6_addr;
            keys[n++] = (UINT64_C(6) << 32) | ld_be32(a);
        }
    }
    return n;
}

bool select_same_subnet(const struct desc *a, const struct desc *b)
{
    uint64_t ka[DESC_MAX_URIS], kb[DESC_MAX_URIS];
    unsigned na = subnet_keys(a, ka), nb = subnet_keys(b, kb);

    for (unsigned i = 0; i < na; i++)
        for (unsigned j = 0; j < nb; j++)
            if (ka[i] == kb[j])
                return true;
    return false;
}

/* Return true when each of a and b names the other as family. */
bool select_same_family(const struct desc *a, const struct desc *b)
{
    return desc_names_family(a, b->id_pk) && desc_names_family(b, a->id_pk);
}

/* Return true when a and b may not share a chain (select.h). */
bool select_related(const struct desc *a, const struct desc *b, bool distinct_subnets)
{
    return select_same_family(a, b) || (distinct_subnets && select_same_subnet(a, b));
}

/* A uniform integer in [0, bound), bound > 0: randombytes_uniform's method
 * in 64 bits (a weight sum can pass 2^32). Draws below 2^64 mod bound are
 * rejected so that every residue is equally likely. */
static uint64_t random_below(uint64_t bound)
{
    uint64_t r, min = -bound % bound;

    do
        ovl_random(&r, sizeof(r));
    while (r < min);
    return r % bound;
}

/* M of select.h, by bisection over the values so that nothing is sorted
 * or allocated: the least c with at least half of the m non-zero
 * capacities, rounded up, at or below it (1 when m = 0). */
static uint64_t median_capacity(const struct desc **cand, unsigned n)
{
    uint64_t lo = 1, hi = UINT32_MAX, m = 0;

    for (unsigned i = 0; i < n; i++)
        m += cand[i]->capacity != 0;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2, le = 0;

        for (unsigned i = 0; i < n; i++)
            le += cand[i]->capacity != 0 && cand[i]->capacity <= mid;
        if (2 * le >= m)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* d's weight given M = med >= 1: 1 .. 8 x M < 2^35, so a sum over fewer
 * than 2^29 candidates fits 64 bits. */
static uint64_t weight(const struct desc *d, uint64_t med)
{
    uint64_t c = d->capacity ? d->capacity : med;

    return c < 8 * med ? c : 8 * med;
}

/* An index in [from, n): uniform when med is 0, else weighted. */
static unsigned draw(const struct desc **cand, unsigned from, unsigned n, uint64_t med)
{
    uint64_t sum = 0, r;
    unsigned i;

    if (!med)
        return from + ovl_random_uniform(n - from);
    for (i = from; i < n; i++)
        sum += weight(cand[i], med);
    r = random_below(sum);
    for (i = from; r >= weight(cand[i], med); i++)
        r -= weight(cand[i], med);
    return i;
}

unsigned select_relays(const struct desc **cand, unsigned n, unsigned want, bool distinct_subnets,
                       bool by_capacity)
{
    uint64_t med = by_capacity ? median_capacity(cand, n) : 0;
    unsigned got = 0;

    while (got < want && got < n) {
        unsigned j = draw(cand, got, n, med);
        const struct desc *t = cand[j];
        bool clash = false;

        for (unsigned i = 0; i < got && !clash; i++)
            clash = select_related(cand[i], t, distinct_subnets);
        if (clash) {
            /* Set it aside for good: it clashes with a pick that stays. */
            cand[j] = cand[n - 1];
            cand[n - 1] = t;
            n--;
            continue;
        }
        cand[j] = cand[got];
        cand[got++] = t;
    }
    return got;
}
