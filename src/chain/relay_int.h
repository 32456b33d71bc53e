/* relay_int.h - private to the relay role's three files, in this order:
 *
 *  - relay.c, the core: the chain table, setup, peel-and-forward, the
 *    chain's state machine and backpressure. It reaches the exit only
 *    through struct relay_hooks, which it owns.
 *  - intro.c, built on the core: the introduction relay's cookies and the
 *    deliveries bound to them (docs/PROTOCOL.md 22.2).
 *  - exit.c, built on the core: the exit's deliveries and the destinations
 *    (or next hops) being looked up or dialed; it fills in exit_hooks and
 *    hands intro.c its bodies and the end of each chain.
 *  - relay_role.c, on top: relay_init/stop/free, the tick and the link
 *    observers, wiring the two.
 *
 * Ownership: struct relay owns every chain (r->chains, by serial) and every
 * wait (r->waits). A chain owns its pending-extension record (ch->ext) and
 * its delivery records; a wait owns its queued DELIVER data. Chains are
 * registered in the node's chanmap under (prev link, prev ID) and (next
 * link, next ID) with relay_chain_owner, and under each (destination link,
 * delivery ID) with exit.c's own owner. An exit chain owns its
 * introduction point (ch->intro), which owns the deliveries bound to its
 * cookie, each registered under (link, ID) with intro.c's owner; the
 * relay's r->intros finds the points by cookie. The relay owns its shares
 * (r->link_shares, r->block_shares): an entry lives while a chain or a
 * remembered setup is charged to it, and those point at it.
 */
#ifndef OVL_CHAIN_RELAY_INT_H
#define OVL_CHAIN_RELAY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/htab.h"
#include "chain/body.h"
#include "chain/onion.h"
#include "chain/relay.h"
#include "chain/stream.h"
#include "chain/stsock.h"

#define RELAY_MAX_DELIV   8    /* destinations per chain at the exit */
#define RELAY_MAX_WAITS   256  /* destinations being looked up or dialed at once */
#define RELAY_MAX_PENDING 1024 /* setups waiting for a link to their next hop */
#define RELAY_MAX_PAUSES  256  /* (incoming, outgoing) link pairs held back */
#define RELAY_TICK_MS     1000
#define RELAY_HEADROOM    64 /* cells: about one 64 KiB read batch still in flight */

/* Cells that may still arrive once a link is paused, for a queue of cap
 * cells: about one read batch, at most half the queue, at least one. The
 * relay pauses with this much room left on a link, the exit with this
 * much left in a destination's queue. */
static inline unsigned relay_headroom(size_t cap)
{
    size_t h = cap / 2 < RELAY_HEADROOM ? cap / 2 : RELAY_HEADROOM;

    return h ? (unsigned)h : 1;
}

/* A chain's life; relay_chain_set_state() is the only writer and checks
 * each move against its table:
 *   RCH_NONE -> RCH_EXTENDING   the setup opened (chain_new)
 *   RCH_EXTENDING -> RCH_OPEN   the header went on to the next hop, or
 *                               this hop is the exit
 *   RCH_OPEN -> RCH_BROKEN      the next hop's link closed; BODY_BROKEN went
 *                               back and the chain waits (until broken_ms +
 *                               setup_timeout) for a BODY_EXTEND
 *   RCH_BROKEN -> RCH_EXTENDING a BODY_EXTEND named a new next hop
 * Any state may end (relay_chain_end frees the chain). The prefix is the
 * relay's own: the client's chains have a state enum of their own. */
enum relay_chain_state { RCH_NONE = 0, RCH_EXTENDING, RCH_OPEN, RCH_BROKEN, RCH_COUNT };

/* Bits of struct relay_chain's flags. */
enum {
    RCHF_EXIT = 1u << 0,      /* the last hop: forward bodies end here */
    RCHF_PUBLISHED = 1u << 1, /* exit: a BODY_PUBLISH went on, at publish_ms */
    RCHF_USED = 1u << 2,      /* its keys sealed or opened a cell since the last tick */
};

/* Bits of struct relay_deliv's flags. */
enum {
    DELIVF_FAIL_SENT = 1u << 0, /* a DELIVER_FAIL for this destination went back */
    DELIVF_INTRO = 1u << 1,     /* pk is hidden: link leads to one of its introduction
                                   relays, and id was opened with chain_intro */
};

/* Bits of struct relay's flags. */
enum {
    RELAYF_STOPPED = 1u << 0, /* relay_stop ran: no new chains */
};

/* One destination of a chain at the exit. link is NULL when no DELIVER
 * can be sent (never opened, or closed); the record then only remembers
 * whether a DELIVER_FAIL was sent. For a hidden destination (DELIVF_INTRO)
 * link's peer is the introduction relay, not pk. */
struct relay_deliv {
    uint8_t pk[OVL_ED25519_PK];
    struct link *link;
    uint32_t id;   /* delivery ID on link, ours */
    uint8_t flags; /* DELIVF_* */
};

struct relay_wait;
struct relay_ext;
struct xs_refused;
struct intro_point;
struct intro_link;

/* What one incoming link (key: its serial) or one address block (key:
 * admit_block_of) holds at this relay. */
struct relay_share {
    uint64_t key;
    uint32_t chains; /* live chains whose setup came through it */
    uint32_t seen;   /* remembered setups charged to it (blocks only) */
    UT_hash_handle hh;
};

struct relay_chain {
    struct relay *r;
    uint64_t serial; /* hash key; never reused */
    UT_hash_handle hh;
    struct link *prev, *next; /* next is NULL at the exit and while extending */
    uint32_t prev_id, next_id;
    uint8_t flags; /* RCHF_* */
    enum relay_chain_state state;
    struct onion_keys keys;
    uint64_t fwd_ctr, back_ctr; /* next forward counter expected, next backward to use */
    uint64_t created_ms, expires_ms, broken_ms;
    struct relay_share *link_share, *block_share; /* what the setup's link and block hold */
    struct relay_ext *ext;                        /* while extending and waiting for a link */
    struct relay_deliv *deliv; /* exit: RELAY_MAX_DELIV records, made with the first */
    unsigned n_deliv;
    struct xstream *xs;        /* exit: streams whose way back is this chain (xstream.c,
                                  utlist through cprev/cnext), in the order a wake pumps */
    unsigned n_streams;        /* exit: how many are on xs */
    struct stream_pool pool;   /* exit: the chain window of those streams (xstream.c) */
    struct intro_point *intro; /* exit: the cookie this chain's sender holds here (intro.c) */
    uint8_t intro_tries;       /* exit: INTRO_ESTABLISH signatures checked on this chain */
    uint64_t publish_ms;       /* exit: when its last PUBLISH went on (RCHF_PUBLISHED) */
};

/* Bits of struct relay_pause's flags. */
enum {
    RPF_DEST = 1u << 0, /* out leads to a destination: nothing further on holds it */
};

/* in is paused until out drains, since since_ms. */
struct relay_pause {
    struct link *in, *out;
    uint64_t since_ms;
    unsigned flags; /* RPF_* */
};

/* What the core asks of the exit (exit.c's exit_hooks; relay_init sets
 * r->hooks). Every hook is set. */
struct relay_hooks {
    /* Act on a forward body peeled at the exit. */
    void (*exit_body)(struct relay_chain *ch, const uint8_t body[ONION_BODY]);
    /* No link to next is open: park ch's setup until one opens, or fail it. */
    void (*park_setup)(struct relay_chain *ch, const uint8_t next[OVL_ED25519_PK],
                       const uint8_t hdr[ONION_HDR_LEN]);
    /* ch is ending: release its deliveries and pending extension. */
    void (*chain_end)(struct relay_chain *ch);
    /* True while the exit itself holds in paused (a destination's queue). */
    bool (*holds)(const struct relay *r, const struct link *in);
    /* l is closed for stalling: end the chains that deliver to it. */
    void (*link_stalled)(struct relay *r, struct link *l);
};

struct relay {
    struct node *n;
    struct relay_opts o;
    struct relay_stats st;
    const struct relay_hooks *hooks;
    struct relay_chain *chains;
    uint64_t next_serial;
    struct relay_wait *waits;
    unsigned n_waits, n_pending;
    struct relay_pause pauses[RELAY_MAX_PAUSES];
    unsigned n_pauses;
    unsigned headroom;        /* pause the incoming link below this many free cells */
    uv_timer_t *timer;        /* lifetimes and waits; freed in its close callback */
    struct stsock_env *ssenv; /* the exit's target sockets: their writes per loop turn */
    uint64_t tick_due_ms;     /* when the tick should run next (a late one closes nothing) */
    struct relay_seen *seen;  /* ephemeral keys of accepted setups (uthash) */
    uint32_t n_seen;
    struct relay_share *link_shares, *block_shares; /* uthash by key */
    uint32_t n_shares;
    unsigned flags;             /* RELAYF_* */
    struct xstream *xstreams;   /* the exit's streams by sid (uthash; xstream.c) */
    struct xs_refused *refused; /* recently refused opens (XS_REFUSED, lazily) */
    unsigned refused_next;
    unsigned n_resolving, n_xblocked; /* names being resolved; streams waiting for drained() */
    struct intro_point *intros;       /* cookies held, by cookie (uthash; intro.c) */
    struct intro_link *intro_links;   /* deliveries per link, by serial (uthash; intro.c) */
    uint32_t n_intro_links;
    uint32_t publish_tokens;    /* exit: PUBLISH bodies it may pass on now (exit.c) */
    uint64_t publish_refill_ms; /* exit: when publish_tokens was last topped up */
};

/* ---- relay.c: the core ---- */

extern const struct chain_owner relay_chain_owner;

/* True when out can take one more cell; otherwise hold in back until out
 * drains and count RD_QUEUE_FULL. in may be NULL; pf (RPF_*) says what
 * out leads to. */
bool relay_room(struct relay *r, struct link *in, struct link *out, unsigned pf);

/* Send c on out; on OVL_EAGAIN hold in back (if not NULL); count drops. */
int relay_send(struct relay *r, struct link *in, struct link *out, const struct cell *c,
               unsigned pf);

/* Resume in unless a full outgoing link or the exit (hooks->holds) still
 * holds it: the one place that decides to read from a held link again. */
void relay_resume(struct relay *r, struct link *in);

/* Drop the pause records naming l (closing) as either end, resuming the
 * links that only l held. */
void relay_pauses_link_closed(struct relay *r, struct link *l);

/* l's send queue fell below half (the observers' drained()): resume the
 * links it held. */
void relay_pauses_drained(struct relay *r, struct link *l);

/* Resume every held link (relay_stop: links outlive the role). */
void relay_pauses_clear(struct relay *r);

/* Close each outgoing link that has held incoming links for longer than
 * stall_timeout (RPF_DEST) or twice that, resuming them (LC_STALLED).
 * late_ms: how late the tick runs (the loop was held up), or 0. */
void relay_stalls_tick(struct relay *r, uint64_t now, uint64_t late_ms);

/* Send CELL_CHAIN_DESTROY(reason) for (l, id), best effort. */
void relay_send_destroy(struct relay *r, struct link *l, uint32_t id, uint8_t reason);

/* Remove the slot (l, id) from the chanmap and, when tell, send DESTROY. */
void relay_slot_end(struct relay *r, struct link *l, uint32_t id, uint8_t reason, bool tell);

/* Originate a backward body (cmd, args of alen bytes) to the sender. */
int relay_originate(struct relay_chain *ch, uint8_t cmd, const uint8_t *args, size_t alen);

/* Originate as relay_originate, for a cell that came in on in: when the
 * way back is nearly full, in is held back until it drains. */
int relay_originate_in(struct relay_chain *ch, struct link *in, uint8_t cmd, const uint8_t *args,
                       size_t alen);

/* Return the live chain with serial, or NULL. */
struct relay_chain *relay_chain_find(struct relay *r, uint64_t serial);

/* Release every slot of ch, tell the named sides, wipe and free it. */
void relay_chain_end(struct relay_chain *ch, uint8_t reason, bool tell_prev, bool tell_next);

/* Originate SETUP_FAIL(reason), count why, and forget ch. */
void relay_setup_fail(struct relay_chain *ch, uint8_t reason, enum relay_drop why);

/* Send the rewritten setup header on out under a fresh ID. */
void relay_extend_on(struct relay_chain *ch, struct link *out, const uint8_t hdr[ONION_HDR_LEN]);

/* The chanmap opener of CELL_CHAIN_SETUP (ctx is the relay): open a chain. */
void relay_on_setup(void *ctx, struct link *l, const struct cell *c);

/* End chains whose lifetime is over or whose repair did not come, and
 * forget setups whose onion key expired. */
void relay_chains_tick(struct relay *r, uint64_t now);

/* End every chain, telling both sides (relay_stop). */
void relay_chains_stop(struct relay *r);

/* Free every chain, remembered setup and share without touching links
 * (relay_free, after exit_free). */
void relay_chains_free(struct relay *r);

/* Bytes the chains, remembered setups and shares hold. */
uint64_t relay_chains_bytes(const struct relay *r);

/* ---- intro.c: the introduction relay, on top of the core ----
 *
 * One point per cookie a hidden node holds here, on the chain it
 * established it on; deliveries bound to the cookie by other nodes'
 * CELL_CHAIN_INTRO, each under (their link, their ID). */

/* A BODY_INTRO_ESTABLISH of len argument bytes read at ch's exit: take
 * the cookie for ch and answer BODY_INTRO_OK, or BODY_INTRO_FAIL; a
 * malformed one is dropped (RD_BAD_CELL). */
void intro_establish(struct relay_chain *ch, const uint8_t *args, size_t len);

/* A BODY_INTRO_BACK of len argument bytes: send its data on the delivery
 * its handle names, if ch's cookie has it; else dropped and counted. */
void intro_back(struct relay_chain *ch, const uint8_t *args, size_t len);

/* The chanmap opener of CELL_CHAIN_INTRO (ctx is the relay): bind (l, ID)
 * to the cookie, or answer CELL_CHAIN_DESTROY. */
void intro_on_intro(void *ctx, struct link *l, const struct cell *c);

/* ch is ending: forget its cookie and end the deliveries bound to it. */
void intro_chain_end(struct relay_chain *ch);

/* Forget the cookies whose expires_ms passed (wall clock wall_ms). */
void intro_tick(struct relay *r, uint64_t wall_ms);

/* Free every point and delivery without touching links (relay_free). */
void intro_free(struct relay *r);

/* Bytes the points, deliveries and link counts hold. */
uint64_t intro_bytes_held(const struct relay *r);

/* ---- exit.c: the exit, on top of the core ---- */

extern const struct relay_hooks exit_hooks;

/* Bytes the waits hold: their records and queued cells. */
uint64_t exit_bytes_held(const struct relay *r);

/* Time out waits past their deadline. */
void exit_tick(struct relay *r, uint64_t now);

/* Link observer hooks. */
void exit_link_opened(struct relay *r, struct link *l);
void exit_link_closed(struct relay *r, struct link *l);

/* Drop every wait (relay_stop) / free what is left (relay_free). */
void exit_stop(struct relay *r);
void exit_free(struct relay *r);

/* ---- xstream.c: the exit's end of streams (docs/PROTOCOL.md 20.5) ----
 *
 * A node-wide table of streams by sid; each stream has a way back (the
 * chain its last frame came on, on whose list it is; NULL once that chain
 * ended) and a TCP socket to its target (stsock.h). Records are freed
 * once their stream closed and libuv is done with their socket and
 * resolution. */

/* One BODY_STREAM frame (len bytes) from ch: to its stream, opening one
 * for SF_OPEN, answered SF_RESET(unknown) otherwise; malformed frames are
 * dropped (RD_BAD_CELL). */
void xstream_input(struct relay_chain *ch, const uint8_t *f, size_t len);

/* ch is ending: its streams lose their way back, and live on until the
 * sender comes back on another chain or their idle timeout ends them. */
void xstream_chain_end(struct relay_chain *ch);

/* l drained: pump the streams that found it full. */
void xstream_drained(struct relay *r, struct link *l);

/* Time out resolutions and connects; pump the streams of a chain whose
 * window has room again for one held back. */
void xstream_tick(struct relay *r, uint64_t now);

/* Reset and close every stream (relay_stop, before the chains end); the
 * records go once their handles closed, before the loop ends. */
void xstream_stop(struct relay *r);

/* Add the live streams' bytes (moved, held) to st. */
void xstream_stats(const struct relay *r, struct relay_stats *st);

#endif
