/* relay.h - the relay role: chain setup, peel-and-forward, exit delivery.
 *
 * A relay keeps one entry per chain through it: (prev link, prev ID) ->
 * (next link, next ID), the hop's onion_keys and counters, registered in the
 * node's chanmap for both IDs. It learns only its neighbours.
 *
 *  - CELL_CHAIN_SETUP on an unknown ID opens a chain: peel the header with
 *    the current onion key, then the older ones (dir_onion_keys); RELAY hops
 *    find the next hop (link_find, else dir_lookup + link_dial), pick an ID
 *    there (chanmap_alloc) and forward the rewritten header; EXIT hops
 *    originate BODY_SETUP_OK backward. A hop that cannot extend originates
 *    BODY_SETUP_FAIL and forgets the chain. Setups waiting for a link are
 *    bounded and time out.
 *  - CELL_CHAIN_FWD: onion_fwd_peel, then forward (RELAY) or act on the body
 *    (EXIT: BODY_DELIVER -> CELL_CHAIN_DELIVER to dest over a link found or
 *    dialed as above, cells queued (bounded) while it opens; BODY_DROP ->
 *    discard). CELL_CHAIN_BACK from the next hop: onion_back_add and pass to
 *    the previous hop. A cell that does not verify is dropped and counted.
 *  - CELL_CHAIN_DESTROY from either side, a closed link or the lifetime
 *    ending tears the chain down and sends DESTROY the other way, except
 *    that a RELAY hop whose next link closes originates BODY_BROKEN and
 *    keeps its part for setup_timeout: a BODY_EXTEND from the sender then
 *    names a new next hop and carries a setup header for the rest of the
 *    chain, so a repair sets up only the hops from the failed one on.
 *  - Backpressure: when the outgoing link is nearly full the relay pauses
 *    the incoming link (link_pause) and resumes it once that link's queue
 *    is below half (its drained()); a cell that finds no room at all is
 *    dropped. No cell is queued without bound. An outgoing link that holds
 *    incoming links for stall_timeout (a destination's link at the exit)
 *    or twice that (a link to a neighbour on a chain) without draining is
 *    closed (LC_STALLED), so that one peer that does not read holds up
 *    other chains for a bounded time only.
 *  - Shares: a setup is refused with SETUP_FAIL(limit), counted RD_SHARE,
 *    when its incoming link holds max_chains_per_link chains or its
 *    address block (admit_block_of) max_chains_per_block; and with
 *    DESTROY(protocol), counted RD_SHARE too, when the block's part of the
 *    setup-replay filter (twice its chain share) is full. The filter is
 *    one table for all links, so a replay is refused wherever it comes.
 *  - Bandwidth (core/bw.h): every cell read on a chain and every one sent
 *    is charged to the relay's scope of the node's meter; a link whose
 *    cell leaves it in debt stops reading until tokens come back. While
 *    accounting's bytes are spent (bw_dormant) a setup is refused with
 *    SETUP_FAIL(limit), counted RD_DORMANT; chains already up go on.
 *  - Introduction relay (intro.c, docs/PROTOCOL.md 22.2): a chain's exit
 *    takes a cookie for its sender (BODY_INTRO_ESTABLISH, signed by the
 *    hidden node); another node's CELL_CHAIN_INTRO binds a delivery ID to
 *    that cookie, whose CELL_CHAIN_DELIVER cells go down the chain as
 *    BODY_INTRO_DELIVER and whose answers (BODY_INTRO_BACK) come back on
 *    it. At most max_intros cookies (RELAY_MAX_INTROS by default),
 *    RELAY_MAX_INTRO_DELIVS deliveries per cookie.
 * No public-key operation and no allocation per data cell.
 */
#ifndef OVL_CHAIN_RELAY_H
#define OVL_CHAIN_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/node.h"
#include "dir/dir.h"
#include "lib/err.h"

#define RELAY_MAX_INTROS       4096 /* cookies held by the node: max_intros's default */
#define RELAY_MAX_INTRO_DELIVS 64   /* deliveries bound to one cookie */

struct relay_opts {
    uint32_t max_chains;       /* [relay] max_chains, default 65536 */
    uint32_t setup_timeout_ms; /* [relay] setup_timeout, default 10000 */
    uint32_t max_lifetime_s;   /* [relay] max_lifetime: cap on the setup's lifetime, default 3600 */
    uint32_t exit_queue;       /* [relay] exit_queue: cells held per destination, default 256 */
    /* [relay] max_chains_per_link and max_chains_per_block: chains one
     * incoming link / address block may hold; 0 (the default) is
     * max(max_chains / 16, 64) / max(max_chains / 4, the link share). */
    uint32_t max_chains_per_link, max_chains_per_block;
    uint32_t stall_timeout_ms;      /* [relay] stall_timeout, default 5000 */
    uint32_t max_streams;           /* [exit] max_streams: node-wide, default 1024 */
    uint32_t max_streams_per_chain; /* [exit] max_streams_per_chain, default 256 */
    uint32_t stream_idle_ms;        /* [exit] stream_idle_timeout, default 300000 */
    /* Cookies the node holds at once as an introduction relay: default
     * RELAY_MAX_INTROS, no config key (tests lower it). */
    uint32_t max_intros;
};

enum relay_drop {
    RD_UNKNOWN_CHAIN = 0, /* counted by core as node->ctr.chain_unknown; mirrored here */
    RD_AUTH,              /* a layer did not verify: tampered, replayed or foreign */
    RD_BAD_CELL,          /* wrong length or malformed body */
    RD_QUEUE_FULL,        /* the next link or the exit queue was full */
    RD_NO_ROUTE,          /* next hop or destination unknown or unreachable */
    RD_LIMIT,             /* max_chains or pending caps */
    RD_EXPIRED,           /* chain lifetime over */
    RD_REPLAY,            /* a setup header accepted before */
    RD_SHARE,             /* a setup over its link's or address block's share */
    RD_DORMANT,           /* a setup while accounting's bytes are spent (core/bw.h) */
    RD_COUNT
};

struct relay_stats {
    uint64_t setups_ok, setups_failed, setups_in;
    uint64_t cells_fwd_in, cells_peeled, cells_forwarded;
    uint64_t cells_back_in, cells_back_out, cells_originated;
    uint64_t delivered, delivered_cells, dropped_cover;
    uint64_t delivered_back; /* cells a destination sent back, passed to the sender */
    uint64_t broken;         /* chains whose next hop we lost (BODY_BROKEN sent) */
    uint64_t reextended;     /* of those, chains the sender extended again (BODY_EXTEND) */
    uint64_t stalled;        /* outgoing links closed for holding others back (LC_STALLED) */
    uint64_t dropped[RD_COUNT];
    uint32_t chains;     /* live chains through this relay */
    uint64_t bytes_held; /* chain state, setups seen, cells waiting for a dial, streams */
    /* Exit streams (docs/PROTOCOL.md 20.5): taken (connected), live now,
     * refused for the policy / a cap, frames for a sid we do not have,
     * resolutions or connects that failed or timed out, and bytes read
     * from targets (in) and written to them (out). */
    uint32_t streams_active;
    uint64_t streams_opened, streams_refused_policy, streams_refused_limit;
    uint64_t streams_unknown, streams_failed_connect;
    uint64_t stream_bytes_in, stream_bytes_out;
    /* Introduction relay (docs/PROTOCOL.md 22.2): cookies held now, taken,
     * refused per INTRO_FAIL reason; deliveries bound to cookies now;
     * cells passed down to hidden nodes (INTRO_DELIVER) and up from them
     * (INTRO_BACK); chain_intro for a cookie or INTRO_BACK for a handle
     * we do not have. */
    uint32_t intros_active;
    uint64_t intros_established;
    uint64_t intros_refused_protocol, intros_refused_expired;
    uint64_t intros_refused_busy, intros_refused_limit;
    uint32_t intro_delivs_active;
    uint64_t intro_cells_down, intro_cells_up, intro_unknown;
    /* The exit's part of hidden destinations (docs/PROTOCOL.md 22.3,
     * 22.4): inbound descriptors passed on to bootstraps (BODY_PUBLISH) and
     * refused by the caps; deliveries opened through an introduction
     * relay, and those that ended with DELIVER_FAIL(gone). */
    uint64_t publishes, publishes_refused;
    uint64_t hidden_delivs, hidden_gone;
};

/* Fill o with the defaults documented above. */
void relay_opts_defaults(struct relay_opts *o);

/* Return the name of a drop reason ("auth", "queue_full", ...). */
const char *relay_drop_name(enum relay_drop r);

struct relay;

/* Create the relay role (node->relay = *out) and register its handlers.
 * Needs node->dir. Call after dir_init and before node_start. */
int relay_init(struct node *n, const struct relay_opts *o, struct relay **out) OVL_WUR;

/* Take o's settings while the role runs, for what comes from now on:
 * max_chains and the shares (new setups), setup_timeout, max_lifetime (a
 * chain set up from now on), stall_timeout, and the exit's stream caps and
 * idle timeout (new streams). Chains and streams through the relay stay;
 * none is closed for being over a new cap. exit_queue (the size of the
 * rings of cells waiting for a dial) and max_intros are kept. 0, or
 * OVL_EINVAL (options relay_init refuses) with nothing changed. */
int relay_reconfigure(struct relay *r, const struct relay_opts *o) OVL_WUR;

/* Tear down every chain and stop timers. Safe to call twice. */
void relay_stop(struct relay *r);

/* Free r after the loop ended (NULL-safe); wipes keys. */
void relay_free(struct relay *r);

#define RELAY_INFO_INTROS 8 /* RELAY_MAX_DELIV: a chain's destinations at the exit */

/* What this relay knows about one chain through it: its two neighbours
 * and, at the exit, its deliveries; never a destination's identity when
 * an introduction relay stands for it. */
struct relay_chain_info {
    uint8_t prev[OVL_ED25519_PK]; /* identity of the previous hop (or sender) */
    uint8_t next[OVL_ED25519_PK]; /* identity of the next hop; zero without one */
    bool has_next;                /* false at the exit and while extending */
    bool exit;
    bool broken; /* waiting for the sender to name a new next hop */
    uint64_t age_ms, expires_in_ms;
    uint64_t cells_fwd, cells_back; /* forward cells peeled, backward cells sent */
    unsigned delivs;                /* exit: destinations with an open delivery ID */
    unsigned n_intros;              /* of those, delivered through an introduction relay: */
    uint8_t intros[RELAY_INFO_INTROS][OVL_ED25519_PK]; /* that relay, the delivery link's peer */
};

/* Call fn for every live chain through r. */
void relay_each_chain(const struct relay *r,
                      void (*fn)(void *arg, const struct relay_chain_info *ci), void *arg);

/* Fill st. */
void relay_stats(const struct relay *r, struct relay_stats *st);

#endif
