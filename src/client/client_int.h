/* client_int.h - what the client's files share. Private to src/client/.
 *
 * The files depend on each other one way only (each calls functions of
 * those before it, never of those after):
 *     msg.c     end-to-end encryption, fragments, reassembly, the inbox
 *     sendq.c   the send queue: messages until acknowledged or failed
 *     cchain.c  chains: the state machine, building, setup, repair,
 *               retiring, the cells coming back
 *     send.c    sending: lookups, the pump, cover, constant rate
 *     client.c  the role: init and stop, the tick, link events, delivery
 * The one way back up is a callback, not a call by name: a chain becoming
 * current runs c->chain_ready_cb, which client_init points at send_pump.
 * A message entering the inbox runs c->inbox_cb, which the layer above
 * registers (client_on_inbox).
 */
#ifndef OVL_CLIENT_CLIENT_INT_H
#define OVL_CLIENT_CLIENT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "chain/onion.h"
#include "client/client.h"
#include "client/msg.h"
#include "core/link.h"
#include "dir/dir.h"
#include "lib/samples.h"

#define LOOKUPS_MAX    16   /* destination lookups in flight */
#define RTO_MAX_MS     8000 /* longest wait for an acknowledgement */
#define BACKOFF_MIN_MS 250  /* first wait after a failed build */

/* A client chain's states. Only cchain.c changes them, through one
 * checked function (the legal moves are listed there):
 *     CCH_DIR -> CCH_CONNECTING -> CCH_SETUP -> CCH_READY -> CCH_RETIRING
 *                                               CCH_READY <-> CCH_REPAIR
 * CCH_REPAIR: a hop lost its next hop; the hops from there on are being
 * set up again through it (BODY_EXTEND), the ones before it kept. A chain
 * leaves any state by being destroyed. */
enum cchain_state { CCH_DIR, CCH_CONNECTING, CCH_SETUP, CCH_READY, CCH_RETIRING, CCH_REPAIR };

struct cchain {
    struct client *c;
    struct cchain *prev, *next; /* c->chains */
    uint32_t serial;
    enum cchain_state state;
    unsigned length;
    struct dir_chain route;        /* hops[p][0] in use, hops[p][1..avail[p]] its backups */
    uint8_t avail[ONION_MAX_HOPS]; /* backups left per position */
    unsigned broken;               /* 1 + the position a hop reported lost, or 0 */
    bool has_avoid;                /* the route must leave avoid out (a destination) */
    uint8_t avoid[OVL_ED25519_PK];
    struct onion_keys keys[ONION_MAX_HOPS];
    uint64_t fwd_ctr[ONION_MAX_HOPS], back_next[ONION_MAX_HOPS]; /* per hop: see onion.h */
    uint8_t hdr[ONION_HDR_LEN];                                  /* setup header until it is sent */
    uint64_t link_serial;                      /* first hop's link; 0 before dialing */
    uint32_t chain_id;                         /* registered in the chanmap when non-zero */
    uint64_t created_ms, ready_ms, expires_ms; /* monotonic */
    uint64_t deadline_ms; /* the state's deadline (setup, retiring), set with the state */
    uint64_t setup_us;    /* setup cell sent (clock_now_us) */
    uint64_t cells_out, cells_in, messages;
};

enum out_state { OM_WAIT, OM_LOOKUP, OM_READY };

struct out_msg {
    struct client *c;
    struct out_msg *prev, *next; /* c->queue */
    uint8_t id[CLIENT_MSG_ID];
    uint8_t dest[OVL_ED25519_PK];
    bool reply;
    enum out_state state;
    uint8_t *data; /* plaintext until sealed */
    size_t len;
    uint8_t *blob; /* sealed */
    size_t blob_len, nfrags, next_frag;
    uint32_t chain_serial; /* chain that carried its last fragment */
    bool unacked;          /* in c->unacked (all sent) rather than c->queue */
    uint8_t ack[MSG_ACK_TAG];
    uint64_t deadline_ms, retry_ms; /* monotonic */
    uint64_t sent_us;               /* first fragment first sent (clock_now_us), or 0 */
    bool resent;                    /* sent again: its round trip is not measured */
    uint32_t rto_ms;
    client_sent_cb cb;
    void *cb_arg;
};

/* struct client's flags. */
enum client_flag {
    CF_STOPPED = 1u << 0, /* client_stop ran */
    CF_REPAIR = 1u << 1,  /* c->repair is the next build's route */
    CF_AVOID = 1u << 2,   /* the next build leaves c->avoid out */
};

struct deliv;
struct socks_conn;
struct socks_lis;

struct client {
    struct node *n;
    struct client_opts o;
    unsigned flags; /* enum client_flag */
    struct cchain *chains;
    struct cchain *current;  /* the ready chain new cells use, or NULL */
    struct cchain *building; /* at most one chain is built at a time */
    uint32_t next_serial;
    struct dir_chain repair; /* the next build's route, with CF_REPAIR */
    uint8_t repair_avail[ONION_MAX_HOPS];
    uint8_t avoid[OVL_ED25519_PK]; /* with CF_AVOID: a message's destination that is a
                                      relay of the current chain */
    struct out_msg *queue;
    struct out_msg *unacked; /* sent whole, waiting for the acknowledgement */
    struct out_msg *adding;  /* the message client_send_cb is adding, until it returns */
    int adding_err;          /* why it failed there, if it did */
    uint32_t n_queue;        /* both lists */
    unsigned n_lookups;
    struct msg_rx rx;
    struct deliv *delivs; /* client.c: delivery IDs exits opened to us */
    struct client_stats st;
    struct samples setup_us, rtt_us; /* recent setup round trips and message round trips */
    uint64_t busy_from_us;           /* since when messages are waiting or in flight; 0: none */
    /* Handles by core/timer.h: each NULL when off or closed. */
    uv_timer_t *tick;            /* client.c: every deadline */
    uv_timer_t *cover, *loop;    /* send.c: drop and loop cover, when configured */
    uv_timer_t *rate;            /* send.c: constant rate, when configured */
    uv_idle_t *pump;             /* send.c: continues a burst once the loop went round */
    uint64_t rate_t0, rate_sent; /* constant rate: slots since rate_t0, and those used */
    unsigned fails;              /* consecutive build failures */
    uint32_t backoff_ms;
    uint64_t next_build_ms;
    void (*chain_ready_cb)(struct client *c); /* a chain became current: send_pump */
    void (*inbox_cb)(void *arg);              /* a message entered the inbox (client_on_inbox) */
    void (*stream_cb)(struct client *c, const uint8_t *f, size_t len); /* BODY_STREAM_BACK */
    /* socks.c: the SOCKS front end and its streams */
    struct socks_lis *socks_lis[CLIENT_MAX_SOCKS];
    struct socks_conn *socks_conns; /* every connection (utlist) */
    struct socks_conn *streams;     /* those with a stream, by sid (uthash) */
    unsigned n_socks_conns;
    uint32_t streams_serial;  /* the chain the streams last went on */
    uint64_t streams_repairs; /* chains_repaired then */
    unsigned stream_slots;    /* constant_rate: frames the streams may send now */
    void *inbox_arg;
};

/* Tell the inbox hook, if any, that a message entered the inbox. */
static inline void client_tell_inbox(struct client *c)
{
    if (c->inbox_cb)
        c->inbox_cb(c->inbox_arg);
}

/* ---- sendq.c: the send queue ---- */

/* Queue a copy of msg (len bytes) for dest, with a fresh ID. NULL when
 * out of memory. */
struct out_msg *sendq_add(struct client *c, const uint8_t dest[OVL_ED25519_PK], const uint8_t *msg,
                          size_t len, bool reply, client_sent_cb cb, void *arg);

/* Fail m (counted, logged) and tell its owner. */
void sendq_fail(struct out_msg *m, const char *why);

/* Fail every queued message to dest. */
void sendq_fail_to(struct client *c, const uint8_t dest[OVL_ED25519_PK], const char *why);

/* The exit could not hand a fragment to dest (reason from BODY_DELIVER_FAIL,
 * hostile): fail the message to dest in flight, if any. */
void sendq_undeliverable(struct client *c, const uint8_t dest[OVL_ED25519_PK], unsigned reason);

/* The directory answered m's lookup (err, else d, its descriptor): seal m
 * for d's onion key, or fail it. m may be gone on return. */
void sendq_looked_up(struct out_msg *m, int err, const struct desc *d);

/* Every fragment of m left: wait for its acknowledgement. */
void sendq_await(struct out_msg *m);

/* Cells sent on chain serial may be lost: send again what they carried. */
void sendq_requeue(struct client *c, uint32_t serial);

/* Fail what passed its deadline; queue again what waited too long. */
void sendq_tick(struct client *c, uint64_t now);

/* Take a record dest sent back (len bytes, hostile) from ch's exit: an
 * acknowledgement, or a fragment of a reply. */
void sendq_back(struct cchain *ch, const uint8_t *dest, const uint8_t *rec, size_t len);

/* Return the bytes the send queue holds (messages not done yet). */
uint64_t sendq_bytes(const struct client *c);

/* ---- cchain.c: chains ---- */

/* Return the name "ovlctl chains" shows for s. */
const char *cchain_state_name(enum cchain_state s);

/* Start a chain when none is ready or the current one is due for
 * replacement, unless one is being built or we are backing off. */
void cchain_maybe_build(struct client *c);

/* The first queued message goes to dest, a relay of the current chain:
 * have a chain built that leaves dest out. */
void cchain_avoid(struct client *c, const uint8_t dest[OVL_ED25519_PK]);

/* Return whether pk is one of ch's relays. A chain never carries a message
 * to one of its own relays: that relay would see the route and the
 * delivery both. */
bool cchain_crosses(const struct cchain *ch, const uint8_t pk[OVL_ED25519_PK]);

/* Wrap body for ch's first `hops` hops (all, or fewer for a cell that ends
 * at an earlier hop) and send it on l; 0, or the error with the counters
 * unchanged (the cell never left). */
int cchain_fwd_send(struct cchain *ch, struct link *l, unsigned hops, const uint8_t *body);

/* A chain broke (or could not be built): forget it, back off the next
 * build, send its unacknowledged cells again. With send_destroy the first
 * hop hears a CELL_CHAIN_DESTROY. */
void cchain_fail(struct cchain *ch, const char *why, bool send_destroy);

/* Destroy every chain, telling the first hops (client_stop). */
void cchain_destroy_all(struct client *c);

/* Fail or destroy chains whose state's deadline or lifetime passed. */
void cchain_tick(struct client *c, uint64_t now);

/* Send the setup of each chain that waited for link l to open. */
void cchain_link_opened(struct client *c, struct link *l);

/* Fail each chain still waiting for link l, which closed, to open. */
void cchain_link_closed(struct client *c, struct link *l);

/* ---- send.c: sending ---- */

/* Allocate the send handles (pump, and the cover, loop and rate timers as
 * configured): 0 or OVL_ENOMEM (send_close frees what was made). */
int send_open(struct client *c) OVL_WUR;

/* Start the cover, loop and rate timers. */
void send_start(struct client *c);

/* Close the send handles (NULL-safe, each once). */
void send_close(struct client *c);

/* Send what can be sent on the current chain. */
void send_pump(struct client *c);

/* ---- socks.c: the SOCKS5 front end and its streams ---- */

/* Listen on every [socks] listen address: 0 or an error (logged). */
int socks_start(struct client *c);

/* Close the listeners, reset every stream and close every connection. */
void socks_stop(struct client *c);

/* A stream frame (len bytes, hostile) from the current chain's exit. */
void socks_back(struct client *c, const uint8_t *f, size_t len);

/* Let the streams send (the link drained, a chain became current); after
 * a change of chain, from their last acknowledged byte. */
void socks_pump(struct client *c);

/* With constant_rate: let the streams send one frame in this slot; true
 * when one did. */
bool socks_slot(struct client *c);

/* Bytes the SOCKS connections and their streams hold now. */
uint64_t socks_bytes_held(const struct client *c);

/* End handshakes that take too long. */
void socks_tick(struct client *c, uint64_t now);

#endif
