/* select.c - uniform relay selection with the subnet rule (select.h). */
#include <netinet/in.h>
#include <string.h>

#include "dir/select.h"
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
            keys[n++] = (UINT64_C(4) << 32) | (uint64_t)a[0] << 8 | a[1];
        } else {
            a = (const uint8_t *)&((const struct sockaddr_in6 *)&ss)->sin6_addr;
            keys[n++] = (UINT64_C(6) << 32) | (uint64_t)a[0] << 24 | (uint64_t)a[1] << 16 |
                        (uint64_t)a[2] << 8 | a[3];
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

unsigned select_relays(const struct desc **cand, unsigned n, unsigned want, bool distinct_subnets)
{
    unsigned got = 0;

    while (got < want && got < n) {
        unsigned j = got + ovl_random_uniform(n - got);
        const struct desc *t = cand[j];
        bool clash = false;

        for (unsigned i = 0; distinct_subnets && i < got && !clash; i++)
            clash = select_same_subnet(cand[i], t);
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
