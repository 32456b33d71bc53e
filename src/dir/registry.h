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
 *
 * Several bootstraps (docs/PROTOCOL.md 16.9): a node registered directly
 * here is *direct*; one another bootstrap's DOC_SYNC named is *replicated*
 * (registry_replicate), remembering that bootstrap as its origin. A
 * replicated node is listed, drawn and looked up like a direct one, lives
 * until ttl_ms after the last sync that named it, is never dropped by
 * registry_drop (its link to us means nothing: it may have none), and is
 * superseded by a direct registration of its identity. It counts against
 * max_nodes, and at most half of max_nodes (at least one) are held from
 * any one origin; a new direct node at max_nodes takes the place of a
 * replicated one. Only direct nodes are exported (registry_each_direct)
 * and kept across restarts (registry_save, registry_restore).
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

#define REGISTRY_MAX_ORIGINS 8 /* bootstraps replicated from (= DIR_MAX_BOOTSTRAPS) */

/* Bits of struct reg_node's flags. */
enum reg_node_flag {
    REG_NODE_REPLICATED = 1u << 0, /* from another bootstrap's DOC_SYNC, not registered here */
};

/* One registered node. */
struct reg_node {
    struct desc d;
    uint8_t *raw; /* the signed descriptor as received */
    size_t raw_len;
    uint64_t registered_ms, last_seen_ms; /* monotonic; replicated: the last sync naming it */
    uint64_t heartbeats;
    unsigned flags;                 /* REG_NODE_* */
    uint8_t origin[OVL_ED25519_PK]; /* replicated: the bootstrap it came from; else zero */
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

/* Change the rules chains are drawn by (registry_opts distinct_subnets
 * and by_capacity) from the next draw on; cached chains stay. */
void registry_set_selection(struct registry *r, bool distinct_subnets, bool by_capacity);

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
 * registered, else 0; a replicated node is kept (and counted: kept). */
unsigned registry_drop(struct registry *r, const uint8_t pk[OVL_ED25519_PK], uint64_t now_ms);

/* Return the node with identity pk, or NULL. */
const struct reg_node *registry_lookup(const struct registry *r, const uint8_t pk[OVL_ED25519_PK]);

/* Call fn for every live relay (DESC_RELAY), in no particular order. */
void registry_each_relay(const struct registry *r, void (*fn)(void *arg, const struct reg_node *n),
                         void *arg);

/* Call fn for every live relay that takes chains (not DESC_DORMANT): what
 * the relay list holds and chains are drawn from. */
void registry_each_listed(const struct registry *r, void (*fn)(void *arg, const struct reg_node *n),
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
    uint32_t dormant; /* of relays: dormant (DESC_DORMANT), in no list or chain */
    uint64_t registered, dropped, chains_generated, chains_cached, chains_evicted;
    uint64_t chains_refreshed; /* sets drawn anew for REG_FRESH (also in chains_generated) */
    uint32_t replicated_relays, replicated_endpoints; /* of relays and endpoints: replicated */
    uint64_t full;                                    /* new direct nodes refused at max_nodes */
    uint64_t replicated_kept;  /* registry_drop of a replicated node, which stays */
    uint64_t replicated_ceded; /* replicated nodes dropped for a new direct one at max_nodes */
};
void registry_stats(const struct registry *r, struct registry_stats *st);

/* What registry_replicate did with a descriptor. */
enum reg_sync_result {
    REG_SYNC_ADDED = 1,     /* a new identity, held as replicated */
    REG_SYNC_REFRESHED = 2, /* held as replicated already: alive again, newer bytes taken */
    REG_SYNC_DIRECT = 3,    /* registered directly here: left alone */
};

/* Hold the node whose signed descriptor is raw (len bytes) as replicated
 * from origin, a configured bootstrap whose DOC_SYNC named it at now_ms.
 * Bytes equal to those held are not verified again; others are verified
 * (desc_parse) and taken only when published later than the held ones.
 * Returns an enum reg_sync_result, or OVL_EPROTO / OVL_ECRYPTO for a bad
 * descriptor, OVL_ETIMEDOUT when expired at wall_ms, OVL_EUNSUPP for an
 * address that is not public (unless allow_private), OVL_ENOMEM at
 * max_nodes or at origin's share, or with more than REGISTRY_MAX_ORIGINS
 * origins. */
int registry_replicate(struct registry *r, const uint8_t origin[OVL_ED25519_PK], const uint8_t *raw,
                       size_t len, uint64_t now_ms, uint64_t wall_ms) OVL_WUR;

/* Call fn for every node registered directly (relays and endpoints). */
void registry_each_direct(const struct registry *r, void (*fn)(void *arg, const struct reg_node *n),
                          void *arg);

/* Return a number that changes whenever the direct nodes or their
 * descriptors change: what a DOC_SYNC built from r depends on. */
uint64_t registry_direct_version(const struct registry *r);

/* Serialise the direct nodes' descriptors into *out (malloc'd, the
 * caller's): version(1) = 1 | count(4, LE) | count x (len(2, LE) | raw).
 * OVL_ENOMEM. */
int registry_save(const struct registry *r, uint8_t **out, size_t *len) OVL_WUR;

/* Register directly every descriptor of what registry_save wrote (buf, len
 * bytes) that still holds: it verifies, has not expired at wall_ms, names
 * only addresses allowed; each is live as if it had registered at now_ms.
 * *loaded receives how many were taken, *skipped how many were not.
 * OVL_EPROTO when buf is not such a file (what came before the fault is
 * kept). */
int registry_restore(struct registry *r, const uint8_t *buf, size_t len, uint64_t now_ms,
                     uint64_t wall_ms, unsigned *loaded, unsigned *skipped) OVL_WUR;

#endif
