/* relay_int.h - private to relay.c (chains, forwarding) and exit.c (the
 * exit's deliveries and the destinations being looked up or dialed).
 *
 * Ownership: struct relay owns every chain (r->chains, by serial) and every
 * wait (r->waits). A chain owns its pending-extension record (ch->ext) and
 * its delivery records; a wait owns its queued DELIVER data. Chains are
 * registered in the node's chanmap under (prev link, prev ID), (next link,
 * next ID) and each (destination link, delivery ID) with relay_chain_owner.
 */
#ifndef OVL_CHAIN_RELAY_INT_H
#define OVL_CHAIN_RELAY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/htab.h"
#include "chain/body.h"
#include "chain/onion.h"
#include "chain/relay.h"

#define RELAY_MAX_DELIV 8 /* destinations per chain at the exit */
#define RELAY_MAX_WAITS                                                                            \
    256 /* destinations being looked up or dialed at once                                          \
         */
#define RELAY_MAX_PENDING                                                                          \
    1024                     /* setups waiting for a link to their next hop                        \
                              */
#define RELAY_MAX_PAUSES 256 /* (incoming, outgoing) link pairs held back */
#define RELAY_TICK_MS    1000
#define RELAY_HEADROOM   64 /* cells: about one 64 KiB read batch still in flight */
#define RELAY_BP_POLL_MS 2  /* look for room this often while links are paused */

/* CH_BROKEN: the next hop's link closed; BODY_BROKEN went back and the
 * chain waits (until broken_ms + setup_timeout) for a BODY_EXTEND. */
enum relay_chain_state { CH_EXTENDING = 1, CH_OPEN, CH_BROKEN };

/* One destination of a chain at the exit. link is NULL when no DELIVER
 * can be sent (never opened, or closed); the record then only remembers
 * that a DELIVER_FAIL was sent. */
struct relay_deliv {
    uint8_t pk[OVL_ED25519_PK];
    struct link *link;
    uint32_t id; /* delivery ID on link, ours */
    bool fail_sent;
};

struct relay_wait;
struct relay_ext;

struct relay_chain {
    struct relay *r;
    uint64_t serial; /* hash key; never reused */
    UT_hash_handle hh;
    struct link *prev, *next; /* next is NULL at the exit and while extending */
    uint32_t prev_id, next_id;
    bool exit;
    enum relay_chain_state state;
    struct onion_keys keys;
    uint64_t fwd_ctr, back_ctr; /* next forward counter expected, next backward to use */
    uint64_t created_ms, expires_ms, broken_ms;
    struct relay_ext *ext; /* while extending and waiting for a link */
    struct relay_deliv deliv[RELAY_MAX_DELIV];
    unsigned n_deliv;
};

struct relay_pause {
    struct link *in, *out;
};

struct relay {
    struct node *n;
    struct relay_opts o;
    struct relay_stats st;
    struct relay_chain *chains;
    uint64_t next_serial;
    struct relay_wait *waits;
    unsigned n_waits, n_pending;
    struct relay_pause pauses[RELAY_MAX_PAUSES];
    unsigned n_pauses;
    unsigned headroom;       /* pause the incoming link below this many free cells */
    unsigned resume_room;    /* resume once this many are free (half the queue) */
    uv_timer_t *timer;       /* lifetimes and waits; freed in its close callback */
    uv_timer_t *bp_timer;    /* runs only while links are paused */
    struct relay_seen *seen; /* ephemeral keys of accepted setups (uthash) */
    uint32_t n_seen;
    bool stopped;
};

extern const struct chain_owner relay_chain_owner;

/* relay.c */

/* Bytes the waits hold (exit.c): their records and queued cells. */
uint64_t exit_bytes_held(const struct relay *r);

/* True when out can take one more cell; otherwise hold in back until out
 * drains and count RD_QUEUE_FULL. in may be NULL. */
bool relay_room(struct relay *r, struct link *in, struct link *out);

/* True while in is paused because some full outgoing link holds it. */
bool relay_link_held(const struct relay *r, const struct link *in);

/* Send c on out; on OVL_EAGAIN hold in back (if not NULL); count drops. */
int relay_send(struct relay *r, struct link *in, struct link *out, const struct cell *c);

/* Send CELL_CHAIN_DESTROY(reason) for (l, id), best effort. */
void relay_send_destroy(struct relay *r, struct link *l, uint32_t id, uint8_t reason);

/* Originate a backward body (cmd, args of alen bytes) to the sender. */
int relay_originate(struct relay_chain *ch, uint8_t cmd, const uint8_t *args, size_t alen);

/* Forget remembered setups expired at now; now 0 forgets them all. */
void relay_seen_prune(struct relay *r, uint64_t now);

/* Return the live chain with serial, or NULL. */
struct relay_chain *relay_chain_find(struct relay *r, uint64_t serial);

/* Release every slot of ch, tell the named sides, wipe and free it. */
void relay_chain_end(struct relay_chain *ch, uint8_t reason, bool tell_prev, bool tell_next);

/* Originate SETUP_FAIL(reason), count why, and forget ch. */
void relay_setup_fail(struct relay_chain *ch, uint8_t reason, enum relay_drop why);

/* Send the rewritten setup header on out under a fresh ID. */
void relay_extend_on(struct relay_chain *ch, struct link *out, const uint8_t hdr[ONION_HDR_LEN]);

/* exit.c */

/* Act on a peeled forward body at the exit. */
void exit_body(struct relay_chain *ch, const uint8_t body[ONION_BODY]);

/* Park ch's setup until a link to next opens (or fail it). */
void exit_wait_setup(struct relay_chain *ch, const uint8_t next[OVL_ED25519_PK],
                     const uint8_t hdr[ONION_HDR_LEN]);

/* A cell on one of ch's delivery IDs. */
void exit_dest_cell(struct relay_chain *ch, struct link *l, const struct cell *c);

/* The link of one of ch's delivery IDs is closing. */
void exit_dest_closed(struct relay_chain *ch, struct link *l, uint32_t id);

/* Release ch's deliveries and pending extension (chain ending). */
void exit_chain_end(struct relay_chain *ch);

/* Free ch's pending extension without touching links (relay_free). */
void exit_chain_forget(struct relay_chain *ch);

/* Time out waits past their deadline. */
void exit_tick(struct relay *r, uint64_t now);

/* Link observer hooks. */
void exit_link_opened(struct relay *r, struct link *l);
void exit_link_closed(struct relay *r, struct link *l);

/* Drop every wait (relay_stop) / free what is left (relay_free). */
void exit_stop(struct relay *r);
void exit_free(struct relay *r);

#endif
