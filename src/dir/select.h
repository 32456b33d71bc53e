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
 *
 * Always (not a setting), a candidate of one family with a relay already
 * picked is set aside the same way. Two relays are one family only when
 * each one's signed descriptor names the other (DESC_FAMILY, desc.h): a
 * relay cannot pull another into its family by naming it, so it cannot
 * keep honest relays out of the chains it is in. An operator who declares
 * no family is not caught (docs/ANONYMITY.md).
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

/* True when a and b are one family: each one's descriptor names the other. */
bool select_same_family(const struct desc *a, const struct desc *b);

/* True when select_relays would never put a and b in one chain: one
 * family, or, with distinct_subnets, one subnet. For callers that filter
 * relays of their own against picks (a pinned exit, a guard). */
bool select_related(const struct desc *a, const struct desc *b, bool distinct_subnets);

#endif
