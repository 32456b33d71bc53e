/* dir.h - the directory role: bootstrap server and directory client.
 *
 * Every node has one struct dir (node->dir).
 *  - As a bootstrap (ROLE_BOOTSTRAP) it answers CELL_DIR_REQUEST on any
 *    link from its registry (registry.h) and expires silent nodes (checked
 *    every half heartbeat period). Each link may make request_burst
 *    requests at once and request_rate a second (heartbeats are free); a
 *    request over that, or whose whole reply the link cannot take now, is
 *    answered DIR_STATUS_BUSY without doing the work. The signed relay
 *    list is built at most once per half heartbeat (and only when the
 *    registry changed, or half its ttl passed) and served from that copy,
 *    to all links together list_rate KiB a second at most (BUSY past it).
 *    It holds hidden nodes' inbound descriptors passed on by exits
 *    (DIR_IDESC, ihold.h) and answers them to lookups of those nodes.
 *  - Unless allow_private, no descriptor naming an address that is not a
 *    public IP literal (desc_uri_public) is registered, used from a
 *    bootstrap's reply or published by us: nothing here hands the roles an
 *    address that would make them dial loopback, a private network or a
 *    name.
 *  - As a relay or client it keeps an onion key pair (rotated every
 *    onion_rotate_ms; the previous keys stay usable for onion_overlap_ms),
 *    and publishes a signed descriptor (DESC_RELAY for relays, DESC_ENDPOINT
 *    for clients, both for both; DESC_EXIT and the policy for a relay whose
 *    exit_policy has rules; DESC_FAMILY and the family for a relay that
 *    declares one) to every configured bootstrap as soon as
 *    the link to it opens, then heartbeats every heartbeat_ms. It re-registers
 *    when the onion key rotates or the bootstrap answers "unknown".
 *  - A bootstrap with other bootstraps configured asks each linked one for
 *    its directly registered nodes every heartbeat (DIR_SYNC) and holds
 *    them as replicated; it answers DIR_SYNC only to them. It keeps its
 *    direct nodes in <data_dir>/registry (node opts state_dir) and loads
 *    them at start (docs/PROTOCOL.md 16.9). A configured bootstrap whose
 *    id is our own is ignored.
 *  - It serves the other roles' requests (chains, relay lists, lookups),
 *    asking the first bootstrap whose link is open and the next one when a
 *    request fails or times out. Everything a bootstrap signs is verified
 *    with that bootstrap's key from the config.
 *
 * Callbacks: never called from inside the call that started the request
 * (always from the loop), exactly once, unless cancelled with
 * dir_cancel(). Data passed to a callback is lent for the call.
 *
 * Implemented by dir.c (life cycle, handlers, requests), dirpub.c
 * (publishing), dirsrv.c (serving) and dirreply.c (checking and caching
 * replies); dir_int.h is what they share.
 */
#ifndef OVL_DIR_DIR_H
#define OVL_DIR_DIR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/node.h"
#include "core/peer.h"
#include "dir/desc.h"
#include "dir/idesc.h"
#include "dir/registry.h"
#include "lib/err.h"

#define DIR_MAX_BOOTSTRAPS 8
#define DIR_MAX_ONION      3 /* current + previous keys kept for the overlap */
#define DIR_MAX_HOPS       8 /* = ONION_MAX_HOPS */
#define DIR_MAX_BACKUPS    4
#define DIR_MAX_CHOICES    8 /* chains in one answer of dir_request_chains (= DOC_MAX_SET) */

/* Flags of dir_request_chains (the request's flags byte, docs/PROTOCOL.md 15.3). */
#define DIR_CHAIN_FRESH 1u /* a new draw, once the cached one is [dir] chain_refresh old */

struct dir_opts {
    uint32_t heartbeat_ms;       /* [dir] heartbeat, default 5000 */
    uint32_t ttl_ms;             /* [dir] ttl (bootstrap), default 15000 */
    uint32_t chain_cache_ttl_ms; /* [dir] chain_cache_ttl, default 600000 */
    uint32_t max_nodes;          /* [dir] max_nodes, default 4096 */
    uint32_t max_chains;         /* [dir] max_cached_chains, default 1024 */
    uint32_t onion_rotate_ms;    /* [dir] onion_rotate, default 3600000 */
    uint32_t onion_overlap_ms;   /* [dir] onion_overlap, default 600000 */
    uint32_t request_timeout_ms; /* [dir] request_timeout, default 5000 */
    uint32_t desc_lifetime_ms;   /* descriptor expiry after publication, default 3 x onion_rotate */
    bool distinct_subnets;       /* [chain] distinct_subnets, for the generator; default true */
    bool by_capacity;            /* [chain] weighting = capacity, for the generator */
    uint32_t capacity_kib;       /* [relay] capacity, KiB/s in our descriptor; 0 none */
    uint32_t request_rate;       /* [dir] request_rate: requests a second per link, default 20 */
    uint32_t request_burst;      /* [dir] request_burst, default 40 */
    uint32_t list_lifetime_ms;   /* [dir] list_lifetime: relay list expiry after signing, 3 h */
    bool allow_private;          /* [dir] allow_private_addresses, default false */
    struct exit_policy exit_policy; /* [exit] policy, published by a relay; no rules: no exit */

    /* [dir] keys of the same names (docs/CONFIG.md); 0 = off but chain_refresh (0 = always) */
    uint32_t chain_refresh_ms; /* FRESH honoured once a set is this old, default 60000 */
    uint32_t block_request_rate, block_request_burst; /* per address block, 100 and 1000 */
    uint32_t block_chain_rate, block_chain_burst;     /* chain draws per block, 2 and 60 */
    uint32_t max_nodes_per_block;                     /* new identities per block, 64 */
    uint32_t list_rate; /* KiB a second of relay lists to all links together, 8192 */

    uint8_t n_family; /* [relay] family: relays we declare ours, never us */
    uint8_t family[DESC_FAMILY_MAX][OVL_ED25519_PK];
};

/* A configured bootstrap ([bootstrap.NAME] address, id). */
struct dir_bootstrap_spec {
    char name[PEER_NAME_MAX];
    char uri[OVL_URI_MAX];
    uint8_t pk[OVL_ED25519_PK];
};

/* One onion key pair of this node. sk is secret. */
struct dir_onion {
    uint8_t pk[OVL_X25519_LEN], sk[OVL_X25519_LEN];
    uint64_t created_ms, retire_ms; /* monotonic; retire_ms 0 while current */
};

/* A chain from a bootstrap (or picked locally), decoded and verified. */
struct dir_chain {
    uint8_t ref[16];
    unsigned length, backups;
    uint64_t expires_ms;                                 /* wall clock */
    struct desc hops[DIR_MAX_HOPS][1 + DIR_MAX_BACKUPS]; /* [position][0 = primary, 1.. backups] */
};

struct dir_stats {
    uint64_t requests_in, replies_out, bad_requests;
    uint64_t replies_dropped;  /* answered but the link had no room (or out of memory) */
    uint64_t requests_limited; /* answered BUSY: over the link's request_rate */
    uint64_t replies_no_room;  /* answered BUSY: the whole reply did not fit the link now */
    uint64_t lists_built;      /* bootstrap: relay lists signed (each served many times) */
    uint64_t lists_limited;    /* bootstrap: lists answered BUSY: over [dir] list_rate */
    uint64_t bad_addresses;    /* descriptors refused for a non-public address */
    uint64_t registrations_ok, registrations_failed, heartbeats_sent;
    uint64_t requests_out, replies_in, request_timeouts, bad_replies;
    uint64_t dropped_link_closed; /* bootstrap: nodes dropped because their link to us closed */
    uint64_t reports_sent;        /* DIR_REPORTs we sent (one per bootstrap) */
    uint64_t reports_in;          /* bootstrap: DIR_REPORTs accepted */
    uint64_t reports_probed;      /* bootstrap: of those, probes sent to the named relay */
    uint64_t list_fallbacks;      /* relay lists answered from the last good one: no
                                     bootstrap answered (docs/PROTOCOL.md 16.7) */
    uint64_t lists_saved;         /* relay lists written to <data_dir>/relays */
    uint64_t list_restored;       /* 1 when the list on disk was taken at start */
    uint64_t lookup_fallbacks;    /* lookups answered from the last good relay list */
    uint32_t list_relays;         /* relays in the last good relay list we hold */
    struct registry_stats reg;    /* bootstrap only */
    /* Bootstrap: per address block (docs/PROTOCOL.md 16.8). */
    uint64_t requests_limited_block;   /* answered BUSY: over the block's request rate */
    uint64_t chains_limited_block;     /* chain draws refused: the block's chain bucket empty */
    uint64_t chains_held_block;        /* ... of those, answered the cached set, not BUSY */
    uint64_t registrations_full_block; /* new identities refused: max_nodes_per_block */
    uint32_t blocks;                   /* address blocks held (dblock.h) */

    /* Hidden destinations (docs/PROTOCOL.md 22.3). Every node: */
    uint64_t idesc_published;      /* DIR_IDESCs we sent (one per bootstrap) */
    uint64_t idesc_answers;        /* lookups answered by an inbound descriptor we took */
    uint64_t idesc_answer_bad;     /* ... refused: malformed (idesc_parse OVL_EPROTO) */
    uint64_t idesc_answer_bad_sig; /* ... refused: bad signature */
    uint64_t idesc_answer_refused[IDESC_VERDICTS]; /* ... refused by idesc_accept, per verdict */
    /* Bootstrap: DIR_IDESCs judged, each counted once, by outcome. */
    uint64_t idesc_accepted, idesc_bad, idesc_bad_sig;
    uint64_t idesc_relay;                   /* its id is a relay's or a bootstrap's */
    uint64_t idesc_full;                    /* new node at the cap, or past the peer's share */
    uint64_t idesc_refused[IDESC_VERDICTS]; /* refused by idesc_accept, per verdict */
    uint64_t idescs_dropped;                /* held ones dropped when they expired */
    uint32_t idescs;                        /* inbound descriptors held now */

    /* Several bootstraps and the registry on disk (docs/PROTOCOL.md 16.9),
     * bootstrap only: */
    uint64_t syncs_sent;       /* DIR_SYNCs we asked of the other bootstraps */
    uint64_t syncs_ok;         /* DOC_SYNC documents taken */
    uint64_t syncs_failed;     /* answered otherwise than OK, or with a bad document */
    uint64_t syncs_served;     /* DOC_SYNC documents sent to the other bootstraps */
    uint64_t syncs_refused;    /* DIR_SYNCs from a peer that is not one of our bootstraps */
    uint64_t sync_added;       /* entries new here, held as replicated */
    uint64_t sync_bad;         /* entries refused: malformed, badly signed, expired, address */
    uint64_t sync_full;        /* entries refused: max_nodes, or their origin's share */
    uint64_t registry_loaded;  /* entries taken from <data_dir>/registry at start */
    uint64_t registry_skipped; /* entries there that no longer held (expired, ...) */
    uint64_t registry_saves;   /* writes of <data_dir>/registry asked for */
};

struct dir;

typedef void (*dir_chain_cb)(void *arg, int err, const struct dir_chain *chain);
/* chains: n (1..count asked) chains on success, NULL and 0 on failure;
 * lent for the call. */
typedef void (*dir_chains_cb)(void *arg, int err, const struct dir_chain *chains, unsigned n);
/* A lookup's answer: on success exactly one of d (a node's descriptor:
 * relays, bootstraps, and nodes that publish their address) and in (a
 * hidden node's inbound descriptor, verified and accepted by idesc_accept
 * under the key looked up) is non-NULL; on failure both are NULL. */
typedef void (*dir_lookup_cb)(void *arg, int err, const struct desc *d, const struct idesc *in);
typedef void (*dir_list_cb)(void *arg, int err, const struct desc *relays, unsigned n);

/* Fill o with the documented defaults. */
void dir_opts_defaults(struct dir_opts *o);

/* Create node's directory role (node->dir = *out) and register its cell
 * handlers and link observer. bootstraps are also added by the app as
 * peers to dial. Call after node_init and before node_start. */
int dir_init(struct node *n, const struct dir_opts *o, const struct dir_bootstrap_spec *bs,
             unsigned n_bs, struct dir **out) OVL_WUR;

/* Take from o, bs and n_bs what may change while the role runs: the
 * configured bootstraps (those still named keep their registration and
 * the requests in flight to them; a new one whose link is open already
 * hears our descriptor at once; a removed one is no longer asked or
 * published to, and a request in flight to it goes to another), the
 * chain selection rules (distinct_subnets, by_capacity: also the
 * bootstrap's generator), and what our descriptor says (capacity_kib,
 * exit_policy, the family): when that changed, a new descriptor is signed
 * and registered at once. The rest of o is kept as dir_init took it.
 * 0, or OVL_EINVAL (a family naming us, too many bootstraps) with
 * nothing changed. */
int dir_reconfigure(struct dir *d, const struct dir_opts *o, const struct dir_bootstrap_spec *bs,
                    unsigned n_bs) OVL_WUR;

/* Stop timers and fail pending requests with OVL_ECLOSED (callbacks run
 * from the loop). Safe to call twice. */
void dir_stop(struct dir *d);

/* Free d after the loop ended (NULL-safe); wipes onion keys. */
void dir_free(struct dir *d);

/* Return our onion keys, current first; *count receives how many. */
const struct dir_onion *dir_onion_keys(const struct dir *d, unsigned *count);

/* Return the monotonic time after which onion key k opens nothing any more
 * (for the current key: when it will have rotated and its overlap ended). */
uint64_t dir_onion_expiry(const struct dir *d, const struct dir_onion *k);

/* Ask for a chain of length hops and backups backups per position,
 * excluding exclude (may be NULL). */
int dir_request_chain(struct dir *d, unsigned length, unsigned backups,
                      const uint8_t exclude[OVL_ED25519_PK], dir_chain_cb cb, void *arg) OVL_WUR;

/* Ask for count (1..DIR_MAX_CHOICES) chains of one shape at once, each
 * drawn on its own, so that the caller can pick one the bootstrap does not
 * learn (docs/PROTOCOL.md 16.5). flags: DIR_CHAIN_FRESH asks a new draw
 * rather than the set the bootstrap cached for this request (honoured once
 * that one is [dir] chain_refresh old). The answer may hold fewer chains
 * than asked (a set that would not fit one document); the chains of a set
 * share its ref but for the last byte, XORed with their index. OVL_EINVAL
 * for a bad shape, count or flag. */
int dir_request_chains(struct dir *d, unsigned length, unsigned backups, unsigned count,
                       unsigned flags, const uint8_t exclude[OVL_ED25519_PK], dir_chains_cb cb,
                       void *arg) OVL_WUR;

/* Fetch the signed list of live relays (cached for heartbeat_ms). When
 * no bootstrap answers, the last verified list (kept on disk under
 * [node] data_dir, read at start) answers instead until its document
 * expires. */
int dir_request_list(struct dir *d, dir_list_cb cb, void *arg) OVL_WUR;

/* Look up the descriptor of node pk, or its inbound descriptor when it is
 * hidden (checked against pk, the clock and the newest one taken for pk:
 * docs/PROTOCOL.md 22.3); either is cached until it expires, 60 s at
 * most. */
int dir_lookup(struct dir *d, const uint8_t pk[OVL_ED25519_PK], dir_lookup_cb cb,
               void *arg) OVL_WUR;

/* Hand the inbound descriptor idesc (len bytes, signed by the hidden node,
 * which sent it through a chain whose exit we are) to every bootstrap we
 * have an open link to, as DIR_IDESC. Fire and forget: each bootstrap
 * judges it (idesc_parse, idesc_accept) and keeps the newest per node.
 * Returns how many bootstraps it went to (0: none linked), or OVL_EINVAL
 * for a length outside IDESC_MIN_LEN..IDESC_MAX_LEN. */
int dir_publish_idesc(struct dir *d, const uint8_t *idesc, size_t len) OVL_WUR;

/* Forget the cached descriptor of pk (its addresses did not answer: the
 * node may have come back elsewhere), or its cached inbound descriptor
 * (its introduction ended), but for the latter's seq, so that no older
 * one is taken again; the next dir_lookup asks again. */
void dir_forget(struct dir *d, const uint8_t pk[OVL_ED25519_PK]);

/* Tell every bootstrap we have a link to that relay pk failed for us (a
 * chain hop reported it lost, or could not reach it). Fire and forget: a
 * bootstrap probes the relay and drops it if it does not answer. */
void dir_report(struct dir *d, const uint8_t pk[OVL_ED25519_PK]);

/* Cancel every pending request whose callback argument is arg. */
void dir_cancel(struct dir *d, void *arg);

/* Return our exit policy ([exit] policy), or NULL when it has no rules:
 * this node is no exit. */
const struct exit_policy *dir_exit_policy(const struct dir *d);

/* True when [dir] allow_private_addresses is on (loopback testnets). */
bool dir_allow_private(const struct dir *d);

/* True while we hold a relay list whose document has not expired (one
 * fetched, or the one kept on disk): chains can be picked from it. */
bool dir_has_list(const struct dir *d);

/* True once our descriptor was accepted by at least one bootstrap. */
bool dir_registered(const struct dir *d);

/* Return the counters (and registry counts on a bootstrap). */
void dir_stats(const struct dir *d, struct dir_stats *st);

/* Bootstrap only: call fn for every live relay (for "ovlctl relays"),
 * replicated ones included (REG_NODE_REPLICATED); OVL_EUNSUPP on other
 * nodes. */
int dir_each_registered(const struct dir *d, void (*fn)(void *arg, const struct reg_node *n),
                        void *arg) OVL_WUR;

#endif
