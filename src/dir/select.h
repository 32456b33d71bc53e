/* select.h - drawing relays for a chain: the one rule both the bootstrap's
 * generator (registry.c) and a client's local choice (chain_source =
 * local) follow.
 *
 * Each pick is made among the candidates still allowed, so relays are
 * distinct; all randomness is libsodium's. By default it is uniform. With
 * by_capacity it is proportional to a weight: the relay's advertised
 * capacity, where 0 (no claim) counts as M, the lower median of the
 * candidates' non-zero capacities (the ceil(m/2)-th smallest of m; 1 when
 * none advertise), and every weight is capped at 8 x M. Capacity is a
 * self-signed claim: the cap bounds what a relay gains by lying to eight
 * times a typical relay's share. M is taken once, over all n candidates.
 *
 * With distinct_subnets, a candidate sharing an IPv4 /16 or IPv6 /32 with
 * any relay already picked (by any IP-literal address in its descriptor)
 * is set aside, so one operator's block of addresses cannot fill a chain.
 * Loopback test networks must turn the rule off: every node there is
 * 127.0.0.1.
 */
#ifndef OVL_DIR_SELECT_H
#define OVL_DIR_SELECT_H

#include <stdbool.h>

#include "dir/desc.h"

/* Reorder cand (n descriptors) so that its first k entries are the picks,
 * in pick order; return k (at most want; less when the rules run out of
 * candidates). The rest of cand is left in no particular order. */
unsigned select_relays(const struct desc **cand, unsigned n, unsigned want, bool distinct_subnets,
                       bool by_capacity);

/* True when a and b share an IPv4 /16 or an IPv6 /32 (IP-literal URIs only). */
bool select_same_subnet(const struct desc *a, const struct desc *b);

#endif
