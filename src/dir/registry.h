/* registry.h - the bootstrap's state: live nodes and generated chains.
 *
 * Pure data structure, no I/O; the caller passes the time (monotonic ms for
 * TTLs, wall-clock ms for descriptor expiry). Memory is O(live nodes +
 * cached chains) and bounded by the caps in registry_opts.
 *
 * A node is registered with its signed descriptor and stays live while
 * heartbeats arrive; one silent for ttl_ms is dropped by registry_expire(),
 * and every cached chain that contains it is evicted at once. Relays
 * (DESC_RELAY) are drawn for chains and listed; endpoints (DESC_ENDPOINT
 * only) can only be looked up.
 *
 * Chains: for (requester, length, backups, exclude) a random chain of
 * distinct live relays, length primaries plus `backups` backups per
 * position, never the requester or `exclude`, drawn with libsodium's
 * generator (uniform, or weighted by capacity: select.h). It is cached for chain_ttl_ms: the same
 * request within that time returns the same chain (same ref). With E eligible relays (E >= length)
 * a chain gets min(backups, (E - length) / length) backups per position; reg_chain.backups holds
 * that effective number. An exclude that names no registered relay (zero, the requester, an
 * unknown key, an endpoint) changes nothing about the draw, so it is the same request as none.
 * One requester holds at most REGISTRY_CHAINS_PER_REQUESTER cached chains: a new one replaces
 * its own oldest, and at max_chains a requester that holds any replaces its own oldest too;
 * only a requester holding none evicts the oldest chain of the table. So one requester (however
 * it varies its requests) can push out at most one other requester's chain.
 *
 * Sets: registry_chains asks for count (1..REGISTRY_MAX_SET) chains at once, each drawn on its
 * own like the one above (one relay may be in several; never twice in one), cached as one entry
 * under (requester, length, backups, exclude, count). REG_FRESH draws the set anew, but only once
 * the cached one is chain_refresh_ms old (0: always); before that the cached set is the answer.
 * REG_NO_DRAW answers only a cached set (OVL_EAGAIN where one would be drawn), so that the caller
 * can charge each draw to something a requester cannot mint for free (dirsrv.c: its address
 * block).
 *
 * Address blocks: a node may be tagged with the address block it registered from
 * (registry_set_block), and counts against that block until it is dropped
 * (registry_block_nodes): the bootstrap's cap of nodes per block. The table of blocks holds only
 * blocks with a live node, so it is bounded by max_nodes.
 *
 * Registration refuses a descriptor naming an address that is not public
 * (desc_addresses_ok) unless allow_private.
 */
#ifndef OVL_DIR_REGISTRY_H
#define OVL_DIR_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "dir/desc.h"
#include "lib/err.h"

#define REGISTRY_CHAINS_PER_REQUESTER 4
#define REGISTRY_MAX_SET              8 /* chains in one set */

/* Flags of registry_chains. */
enum registry_chain_flags {
    REG_FRESH = 1u << 0,   /* draw anew if the cached set is at least chain_refresh_ms old */
    REG_NO_DRAW = 1u << 1, /* never draw: OVL_EAGAIN where a set would be drawn */
};

struct registry_opts {
    uint32_t max_nodes;  /* relays and endpoints together */
    uint32_t max_chains; /* cached chains */
    uint32_t ttl_ms;     /* drop a node this long after its last heartbeat */
    uint32_t chain_ttl_ms;
    bool distinct_subnets; /* select.h: no two relays of a chain in one /16 or /32 */
    bool by_capacity;      /* select.h: picks weighted by capped advertised capacity */
    bool allow_private;    /* accept descriptors naming non-public addresses (desc.h) */

    uint32_t chain_refresh_ms; /* REG_FRESH is honoured once a set is this old; 0: always */
};

/* One registered node. */
struct reg_node {
    struct desc d;
    uint8_t *raw; /* the signed descriptor as received */
    size_t raw_len;
    uint64_t registered_ms, last_seen_ms; /* monotonic */
    uint64_t heartbeats;
};

/* A generated chain, or a set of count chains of one shape: count * length *
 * (1 + backups) nodes, chain-major, each chain position-major. */
struct reg_chain {
    uint8_t ref[16];
    uint8_t length, backups;
    uint8_t count; /* chains: 1 from registry_chain, 1..REGISTRY_MAX_SET from registry_chains */
    uint64_t created_ms, expires_ms; /* monotonic */
    const struct reg_node **nodes;
};

struct registry;

/* Create an empty registry; *out is NULL on failure. OVL_EINVAL when
 * max_nodes or max_chains is 0. */
int registry_new(const struct registry_opts *o, struct registry **out) OVL_WUR;

/* Free r and everything in it (NULL-safe). */
void registry_free(struct registry *r);

/* Add or replace the node whose signed descriptor is raw (verified here,
 * and its id_pk must equal peer_pk, the link's authenticated identity).
 * OVL_EPROTO / OVL_ECRYPTO for a bad descriptor, OVL_EPERM when it
 * describes another node, OVL_ETIMEDOUT when expired at wall_ms, OVL_EUNSUPP
 * when it names an address that is not public (unless allow_private),
 * OVL_ENOMEM at max_nodes. Replacing keeps the node's cached chains. */
int registry_register(struct registry *r, const uint8_t peer_pk[OVL_ED25519_PK], const uint8_t *raw,
                      size_t len, uint64_t now_ms, uint64_t wall_ms) OVL_WUR;

/* Record a heartbeat; OVL_ENOENT if pk is not registered. */
int registry_heartbeat(struct registry *r, const uint8_t pk[OVL_ED25519_PK],
                       uint64_t now_ms) OVL_WUR;

/* Drop nodes silent for ttl_ms or whose descriptor expired at wall_ms, and
 * chains past their TTL or containing a dropped node. Returns the number of
 * nodes dropped. */
unsigned registry_expire(struct registry *r, uint64_t now_ms, uint64_t wall_ms);

/* Drop the node pk at once, and the cached chains that hold it (its link
 * to us closed: dead, or unreachable from here). Returns 1 if it was
 * registered, else 0. */
unsigned registry_drop(struct registry *r, const uint8_t pk[OVL_ED25519_PK], uint64_t now_ms);

/* Return the node with identity pk, or NULL. */
const struct reg_node *registry_lookup(const struct registry *r, const uint8_t pk[OVL_ED25519_PK]);

/* Call fn for every live relay (DESC_RELAY), in no particular order. */
void registry_each_relay(const struct registry *r, void (*fn)(void *arg, const struct reg_node *n),
                         void *arg);

/* Return the cached chain for this request or generate one. exclude may be
 * NULL; 32 zero bytes, or any key but a registered relay's, ask the same (see above).
 * OVL_EINVAL for length outside 1..8 or
 * backups above 4, OVL_ENOENT when there are not enough eligible relays, OVL_ENOMEM. The chain
 * stays valid until the next call that changes r. */
int registry_chain(struct registry *r, const uint8_t requester[OVL_ED25519_PK], unsigned length,
                   unsigned backups, const uint8_t exclude[OVL_ED25519_PK], uint64_t now_ms,
                   const struct reg_chain **out) OVL_WUR;

/* Return the cached set of count chains for this request, or draw one (see above; flags:
 * enum registry_chain_flags). OVL_EINVAL also for count outside 1..REGISTRY_MAX_SET or unknown
 * flags, OVL_EAGAIN with REG_NO_DRAW when a set would be drawn, else as registry_chain. */
int registry_chains(struct registry *r, const uint8_t requester[OVL_ED25519_PK], unsigned length,
                    unsigned backups, const uint8_t exclude[OVL_ED25519_PK], unsigned count,
                    unsigned flags, uint64_t now_ms, const struct reg_chain **out) OVL_WUR;

/* Tag the registered node pk with the address block it registered from (block 0: none), which
 * it counts against until it is dropped. OVL_ENOENT if pk is not registered, OVL_ENOMEM. */
int registry_set_block(struct registry *r, const uint8_t pk[OVL_ED25519_PK],
                       uint64_t block) OVL_WUR;

/* Return how many live nodes count against address block block (0 for block 0). */
uint32_t registry_block_nodes(const struct registry *r, uint64_t block);

/* Return a number that changes whenever a node is registered (again) or
 * dropped: what a relay list built from r depends on. */
uint64_t registry_version(const struct registry *r);

/* Counts for status. */
struct registry_stats {
    uint32_t relays, endpoints, chains;
    uint64_t registered, dropped, chains_generated, chains_cached, chains_evicted;
    uint64_t chains_refreshed; /* sets drawn anew for REG_FRESH (also in chains_generated) */
};
void registry_stats(const struct registry *r, struct registry_stats *st);

#endif
