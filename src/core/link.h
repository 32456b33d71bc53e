/* link.h - an authenticated, encrypted connection to one neighbour.
 *
 * A link owns one transport. It runs the handshake (handshake.h), then
 * seals every cell with the directional keys and a per-direction counter,
 * ratcheting each key forward every 2^rekey_log2 cells (the smaller of the
 * two ends' opts.rekey_cells, agreed in the handshake). Over a transport
 * that protects the frames itself and names the connection they are bound
 * to (tp_binding: QUIC), the link binds the handshake to that connection
 * instead and sends its cells unsealed inside the transport's protection
 * (LINK_F_BOUND; docs/PROTOCOL.md 8.3); which transport it is, the link
 * neither knows nor asks. Received cells
 * go to the node's dispatcher. Any protocol violation closes the link and
 * counts the reason (enum link_close_reason in link_reason.h).
 *
 * Links are created by link_dial (outbound) or by a listener (inbound) and
 * live in node->links until their transport's close completes; then they
 * are freed. Never keep a struct link pointer across loop iterations
 * without a way to learn it closed (peers are told through peer->link).
 */
#ifndef OVL_CORE_LINK_H
#define OVL_CORE_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "core/admit.h"
#include "core/cell.h"
#include "core/handshake.h"
#include "core/link_timers.h"
#include "core/node.h"
#include "core/transport.h"

/* The link's state machine; link.c changes it only through link_set_state,
 * whose table of legal transitions is checked in debug builds:
 *
 *   CONNECTING -> HANDSHAKE (transport connected; initiator)
 *   (accepted)    HANDSHAKE -> OPEN (initiator: response read, HELLO sent)
 *                 HANDSHAKE -> CONFIRMING (responder: response sent)
 *                 CONFIRMING -> OPEN (the initiator's HELLO arrived)
 *   any but CLOSING -> CLOSING
 */
enum link_state {
    LINK_CONNECTING = 0, /* outbound: transport not yet connected */
    LINK_HANDSHAKE,      /* handshake messages in flight */
    LINK_CONFIRMING,     /* responder: keys made, waiting for CELL_HELLO */
    LINK_OPEN,           /* authenticated both ways */
    LINK_CLOSING,        /* close started; waiting for the transport */
    LINK_STATE_COUNT
};

/* Bits of link->flags. */
#define LINK_F_INITIATOR  (1u << 0) /* we dialed */
#define LINK_F_HS_STARTED (1u << 1) /* a handshake message was exchanged or due */
#define LINK_F_WAS_OPEN   (1u << 2) /* reached LINK_OPEN at some point */
#define LINK_F_PAUSED     (1u << 3) /* we stopped reading: silence is ours, not the peer's */
#define LINK_F_INBOUND    (1u << 4) /* holds an inbound slot (n_links_in, its block's share) */
#define LINK_F_UNAUTH_IN  (1u << 5) /* on node->unauth_in: inbound, not authenticated yet */
#define LINK_F_BOUND      (1u << 6) /* cells unsealed: the transport protects them (hs_bind) */

struct link {
    struct node *node;
    struct transport *tp;
    struct link *prev, *next;               /* node->links */
    struct link *unauth_prev, *unauth_next; /* node->unauth_in (utlist DL) */
    uint64_t serial;                        /* unique per node; never reused */
    struct peer *peer;                      /* configured peer that dialed this, or NULL (peer.h) */
    struct link_alts *alts;                 /* addresses still to try while connecting, or NULL */
    struct chanmap_slot *chan_slots;        /* chains on this link (chanmap.c's list) */
    enum link_state state;                  /* written by link_set_state only */
    unsigned flags;                         /* LINK_F_* */
    enum link_close_reason reason;
    int close_err;   /* the transport's error when it closed (0: ours), for observers */
    admit_key block; /* inbound: the peer's address block (admit.h); 0 otherwise */

    struct handshake *hs; /* only during the handshake */
    uv_timer_t *timer;    /* handshake timeout; freed in its close callback */

    enum ovl_aead_suite suite;
    uint8_t rekey_log2; /* agreed in the handshake: 2^rekey_log2 cells per key */
    /* Sealed links only (not LINK_F_BOUND): */
    struct ovl_aead tx, rx;
    uint8_t tx_key[OVL_AEAD_KEY], rx_key[OVL_AEAD_KEY]; /* for the ratchet */
    uint64_t tx_ctr, rx_ctr;                            /* next counter to send / expect */
    /* Bound responder while confirming: what the initiator's HELLO must carry. */
    uint8_t confirm[HS_CONFIRM_LEN];

    uint8_t peer_pk[OVL_ED25519_PK]; /* expected (outbound) or learnt */
    char peer_id[OVL_NODE_ID_LEN + 1];
    char remote[OVL_URI_MAX];
    uint64_t opened_ms;          /* clock_now_ms() when the link was created */
    struct link_timers lt;       /* liveness: heartbeat, dead, idle, probe, padding */
    uint64_t tx_epoch, rx_epoch; /* key generation: counter >> rekey_log2 */
    uint64_t cells_in, cells_out;
};

/* Return true when we dialed l (chain IDs take the direction from it). */
static inline bool link_is_initiator(const struct link *l)
{
    return (l->flags & LINK_F_INITIATOR) != 0;
}

/* Return true when l was authenticated both ways at some point. */
static inline bool link_was_open(const struct link *l)
{
    return (l->flags & LINK_F_WAS_OPEN) != 0;
}

/* Return the snake_case name of a close reason ("hs_timeout", ...). */
const char *link_close_reason_name(enum link_close_reason r);

/* Return the name of what protects l's cells: its AEAD suite
 * ("aes256gcm", ...), or "bound" when the transport's protection does. */
const char *link_cipher_name(const struct link *l);

/* Return the name of a link state ("open", ...). */
const char *link_state_name(enum link_state s);

/* Dial uri expecting the identity peer_pk. On success the link is in
 * node->links; it becomes LINK_OPEN or closes by itself. At max_links the
 * oldest inbound link still in its handshake is evicted to make room;
 * OVL_ENOMEM (LC_LIMIT counted) when there is none. */
int link_dial(struct node *n, const char *uri, const uint8_t peer_pk[OVL_ED25519_PK],
              struct peer *peer, struct link **out) OVL_WUR;

/* Most addresses link_dial_any considers. */
#define LINK_MAX_ALTS 8

/* Dial a node that publishes several addresses: only transports the node
 * uses (opts.transports), its preferred one (opts.prefer) first, the rest
 * in the given order. When a dial fails before its transport connects, or
 * its handshake timer fires while still connecting, the same link (same
 * serial, same observers) moves on to the next address. OVL_ENOENT when no
 * address is usable. */
int link_dial_any(struct node *n, const char uris[][OVL_URI_MAX], unsigned count,
                  const uint8_t peer_pk[OVL_ED25519_PK], struct link **out) OVL_WUR;

/* Take over an accepted transport as an inbound link. Inbound links may
 * hold 7/8 of max_links (the rest is kept for our own dials) and
 * opts.max_links_per_block from one address block; at the first cap the
 * oldest inbound link still in its handshake is evicted to make room, and
 * only when there is none is the transport closed (LC_LIMIT counted). */
void link_accept(struct node *n, struct transport *tp);

/* Seal and send one cell on an open link. OVL_EAGAIN when the send queue is
 * full (nothing queued; retry later), OVL_ECLOSED unless LINK_OPEN. */
int link_send(struct link *l, const struct cell *c) OVL_WUR;

/* Return true when an open link can queue n more cells right now; when it
 * cannot, the link observers' drained() follows once the queue is below half. */
bool link_can_send(struct link *l, unsigned n);

/* Ask an open link's peer for a sign of life now: send a PING and close
 * the link as dead (LC_DEAD) unless the PONG echoing it arrives within
 * within_ms (other cells do not count: a peer that sends but does not
 * read is not well).
 * For a report that the peer failed (dir): a live peer costs one PING.
 * 0 when the probe is sent or one is pending already; OVL_EUNSUPP without
 * heartbeats, OVL_EAGAIN while the link is paused or full. */
int link_probe(struct link *l, uint32_t within_ms) OVL_WUR;

/* Stop reading cells from the peer (backpressure) / start again. */
void link_pause(struct link *l);
void link_resume(struct link *l);

/* Close the link, counting reason; idempotent. The link is freed later. */
void link_close(struct link *l, enum link_close_reason reason);

/* Return the link with the given serial if it still exists, or NULL. */
struct link *link_by_serial(struct node *n, uint64_t serial);

/* Return the first open link to the node with identity pk, or NULL. */
struct link *link_find(struct node *n, const uint8_t pk[OVL_ED25519_PK]);

/* Register the link-level cell handlers (padding, hello, ping, pong);
 * node_init does. */
int link_register_handlers(struct node *n) OVL_WUR;

#endif
