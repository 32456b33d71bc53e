/* client.h - the client role: chains, sending and receiving messages.
 *
 * Sending: client_send() encrypts a message end to end to the destination
 * node's onion key (from its descriptor, dir_lookup):
 *     blob = eph_pk(32) | AEAD(k, plaintext)      (ChaCha20-Poly1305, nonce 0,
 *                                                  associated data = msg_id)
 *     plaintext = flags(1) | sent(8) | [reply_pk(32) if CLIENT_F_REPLY] | message
 *     k = first output of KDF2(H("ovl-e2e-v2"),
 *                              X25519(eph_sk, onion_pk) || eph_pk || onion_pk)
 * cuts the blob into fragments  msg_id(16) | offset(4) | total(4) | bytes
 * (BODY_DATA_MAX bytes each at most) and sends each in one BODY_DELIVER
 * forward cell over the current chain. The exit hands each to the
 * destination in a CELL_CHAIN_DELIVER cell; the destination reassembles by
 * msg_id (bounded: max_message, inbox caps and each link's and delivery
 * chain's share of them, reassembly timeout), decrypts with its current or
 * previous onion key, refuses a message sealed outside replay_window of
 * its clock or delivered before, and puts the message in its inbox.
 * It takes CHAIN_DELIVER cells only under IDs the link's other end may
 * open, and registers each (at most CLIENT_DELIV_PER_LINK per link,
 * forgotten after reassembly_timeout idle).
 * The receiver learns the sender only if the sender set reply; that ID is
 * claimed by the sender, not authenticated. It can answer any message it
 * remembers, anonymous or not, with client_reply: the answer goes back
 * under the delivery ID the message came on, sealed under a key derived
 * from the message's, and only the sender can read it (msg.h).
 *
 * Reliability: the destination acknowledges each message it delivered (and
 * again each retransmitted copy, which it does not deliver twice) with a
 * CELL_CHAIN_DELIVER back to the exit, which sends it to the sender along
 * the chain in a BODY_DELIVER_BACK; the tag in it (msg.h) proves the
 * destination read the message. A message without an acknowledgement is
 * sent again after retransmit_ms, doubling up to 8 s, at once after its
 * chain failed, and fails at deadline_ms (which must stay below the
 * receiver's reassembly_timeout, so a late copy still finds its tombstone).
 *
 * A relay's loop cover runs the same code with CLIENT_O_COVER_ONLY: the
 * main line's chains, kept ready once our descriptor is registered, and
 * loop cover on them, nothing else (docs/PROTOCOL.md 19.11).
 *
 * Chains: built on demand and kept ready; from the bootstrap's generator
 * (chain_source bootstrap) or picked uniformly from the signed relay list
 * (local). Setup is one CELL_CHAIN_SETUP to the first hop and one
 * BODY_SETUP_OK back. A chain is replaced shortly before its lifetime ends
 * (a new one is built, new messages use it, the old one is destroyed once
 * idle), so traffic is not interrupted. A chain that fails is destroyed and
 * its unsent messages move to the next chain. Messages use the main chain;
 * SOCKS streams use a chain of their class (credentials isolate) whose
 * exit's policy takes their target, at most max_chains lines of chains at
 * once (docs/PROTOCOL.md 19.13).
 */
#ifndef OVL_CLIENT_CLIENT_H
#define OVL_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/stream.h"
#include "core/node.h"
#include "lib/err.h"
#include "lib/hist.h"

#define CLIENT_MSG_ID          16
#define CLIENT_F_REPLY         0x01
#define CLIENT_DELIV_PER_LINK  64    /* delivery IDs open on one link */
#define CLIENT_REPLY_MAX       65536 /* bytes of one reply (and at most max_message) */
#define CLIENT_MAX_SOCKS       4     /* [socks] listen addresses */
#define CLIENT_SOCKS_ADDR      64    /* "host:port" of one, including NUL */
#define CLIENT_MAX_STREAMS     1024  /* streams open at once */
#define CLIENT_MAX_SOCKS_CONNS 1024  /* SOCKS connections at once, streams or not */
#define CLIENT_MAX_EXITS       256   /* exits kept in the view of the relay list */
#define CLIENT_CLASS_LABEL     12    /* "default" or "k" and 8 hex digits, and a NUL */
#define CLIENT_MAX_SERVICES    16    /* [service.NAME] sections */
#define CLIENT_SERVICE_NAME    32    /* a service's NAME, including NUL */
#define CLIENT_MAX_CHOICES     8     /* [chain] choices at most (= DIR_MAX_CHOICES) */

enum client_chain_source { CHAIN_SOURCE_BOOTSTRAP = 0, CHAIN_SOURCE_LOCAL = 1 };

/* struct client_opts's flags. */
enum client_opt_flag {
    /* A relay's loop cover ([relay] loop_interval, docs/PROTOCOL.md 19.11):
     * the client only builds its main line's chains and sends loop cover
     * on them. No messages (client_send and client_reply refuse with
     * OVL_EPERM), no deliveries taken, no SOCKS, no services, not hidden;
     * so loop_interval_ms > 0 and cover_interval_ms, constant_rate,
     * n_socks, n_services and intros are 0, or client_init refuses. */
    CLIENT_O_COVER_ONLY = 1u << 0,
};

/* A [service.NAME]: streams to port of our <node id>.ovl name reach target. */
struct client_service {
    char name[CLIENT_SERVICE_NAME];
    uint16_t port;               /* 1..65535, one service each */
    struct stream_target target; /* STA_NAME: a name or a literal, resolved per stream */
};

struct client_opts {
    unsigned flags;                  /* enum client_opt_flag; 0 by default */
    enum client_chain_source source; /* [chain] source, default bootstrap */
    uint32_t length;                 /* [chain] length, 1..8, default 3 */
    uint32_t backups;                /* [chain] backups, 0..4, default 2 */
    uint32_t lifetime_ms;            /* [chain] lifetime, default 600000 */
    uint32_t setup_timeout_ms;       /* [chain] setup_timeout, default 10000 */
    uint64_t max_message;            /* [client] max_message, default 1048576 */
    uint32_t inbox_messages;         /* [client] inbox_messages, default 1024 */
    uint64_t inbox_bytes;            /* [client] inbox_bytes, default 67108864 */
    uint32_t send_queue;             /* [client] send_queue: messages waiting, default 1024 */
    uint32_t reassembly_timeout_ms;  /* [client] reassembly_timeout, default 60000 */
    uint32_t retransmit_ms;          /* [client] retransmit: first wait for an ack, default 2000 */
    uint32_t deadline_ms;            /* [client] deadline: give up unacked, default 30000 */
    bool distinct_subnets;           /* [chain] distinct_subnets (local source), default true */
    bool by_capacity;                /* [chain] weighting = capacity (local source) */
    uint32_t cover_interval_ms;      /* [client] cover_interval: mean gap of drop cover, 0 off */
    uint32_t loop_interval_ms;       /* [client] loop_interval: mean gap of loop cover, 0 off */
    uint32_t constant_rate;          /* [client] constant_rate: cells/s on the chain, 0 off */
    uint32_t replay_window_ms;       /* [client] replay_window: +- sealing time, default 600000 */
    uint32_t tombstones;             /* [client] tombstones: delivered IDs kept, default 65536 */
    uint32_t max_chains;             /* [client] max_chains: lines of chains at once, default 8 */
    uint32_t chain_idle_ms;          /* [client] chain_idle: a line without streams ends, 60000 */
    char socks[CLIENT_MAX_SOCKS][CLIENT_SOCKS_ADDR]; /* [socks] listen: IP literal and port */
    unsigned n_socks;
    bool socks_remote; /* [socks] allow_remote: listen beyond loopback */
    struct client_service services[CLIENT_MAX_SERVICES];
    unsigned n_services;
    uint32_t svc_max_streams;   /* [service] max_streams, default 1024 */
    uint32_t svc_max_per_chain; /* [service] max_streams_per_chain, default 256 */
    uint32_t svc_idle_ms;       /* [service] stream_idle_timeout, default 300000 */
    uint32_t intros;            /* [node] intros when [node] hidden: introduction relays,
                                   1..4; 0: not hidden (the default) */
    uint32_t idesc_life_ms;     /* inbound descriptor lifetime, default 600000 */
    uint32_t guards;            /* [client] guards: entry guards kept, 0..8, default 3;
                                   0: hop 0 drawn like the other hops */
    uint64_t guard_down_ms;     /* [client] guard_down: a guard unlisted or failing this
                                   long is replaced, default 20 days */
    uint64_t guard_life_ms;     /* [client] guard_lifetime: a guard is kept a random time
                                   in [this, twice this], default 30 days */
    uint32_t choices;           /* [chain] choices: chains asked of the bootstrap at once,
                                   one kept in private, 1..8, default 4 */
};

/* What became of a message: 0 delivered (acknowledged by the destination),
 * or the error it failed with (OVL_ETIMEDOUT at the deadline). */
typedef void (*client_sent_cb)(void *arg, const uint8_t id[CLIENT_MSG_ID], int err);

/* A received message, handed to the caller by client_recv (caller frees
 * with free()). */
struct client_msg {
    uint8_t id[CLIENT_MSG_ID];
    uint64_t received_ms; /* wall clock */
    uint64_t sent_ms;     /* the sender's wall clock when it sealed the message, whole
                             seconds (claimed) */
    bool has_from;
    uint8_t from[OVL_ED25519_PK];
    bool has_reply_to; /* a reply: to our message reply_to */
    uint8_t reply_to[CLIENT_MSG_ID];
    size_t len;
    uint8_t data[]; /* len bytes */
};

/* A chain as shown by "ovlctl chains". */
struct client_chain_info {
    uint32_t serial;   /* local number, for display */
    const char *state; /* "building", "ready", "retiring", "failed" */
    uint64_t age_ms, expires_in_ms;
    unsigned length;
    uint8_t hops[8][OVL_ED25519_PK];
    uint64_t cells_out, cells_in, messages;
    char cls[CLIENT_CLASS_LABEL]; /* its line's class: "default", or "k" and 8 hex digits */
    uint32_t streams;             /* streams on its line, when it is the line's current chain */
};

/* One introduction relay of a hidden node, as "ovlctl status" shows it. */
struct client_intro_info {
    uint8_t relay[OVL_ED25519_PK];
    const char *state; /* "building", "establishing", "established" */
    uint32_t chain;    /* serial of the chain that holds the cookie (or is being set up) */
    uint32_t deliveries; /* deliveries it hands down now */
};

/* A hidden node's side, as "ovlctl status" shows it. */
struct client_hidden_info {
    unsigned n;                                      /* introduction relays in use */
    struct client_intro_info intro[4];               /* IDESC_MAX_INTRO */
    uint64_t seq;                                    /* of the descriptor published last */
    uint64_t published_ago_ms, expires_in_ms;        /* 0 when none was published */
};

struct client_stats {
    uint64_t messages_sent, messages_failed, messages_received;
    uint64_t cells_out, cells_in, fragments_in;
    uint64_t chains_built, chains_failed, chains_replaced;
    uint64_t dropped_auth, dropped_bad, dropped_reassembly, dropped_inbox_full;
    uint64_t duplicates;          /* copies of delivered messages, acknowledged again */
    uint64_t dropped_stale;       /* messages sealed outside replay_window of our clock */
    uint64_t refused_tombstones;  /* messages refused: every tombstone still in its window */
    uint64_t refused_share;       /* messages dropped: their link or chain had its share */
    uint64_t refused_ids;         /* delivery cells under an ID we do not take */
    uint64_t acks_sent, acks_in;  /* acknowledgements sent as receiver, accepted as sender */
    uint64_t replies_sent;        /* replies sent (client_reply) */
    uint64_t replies_in;          /* replies to our messages put in the inbox */
    uint64_t reply_keys_dropped;  /* keys of sent messages forgotten early: `tombstones` kept */
    uint64_t retransmits;         /* messages sent again for want of an acknowledgement */
    uint64_t chains_repaired;     /* chains rebuilt with a backup in the failed position */
    uint64_t avoid_builds;        /* chains built to leave a message's destination out */
    uint64_t cover_out;           /* cover cells sent: drop, loop, constant-rate (in cells_out) */
    uint64_t cover_skipped;       /* cover cells not sent: over [node] cover_budget */
    uint64_t rate_missed;         /* constant-rate slots with no ready chain or no room */
    uint64_t loops_out, loops_in; /* loop cover sent, and come back */
    uint64_t bytes_acked;         /* message bytes acknowledged */
    uint64_t busy_us;             /* time with a message queued or unacknowledged */
    uint64_t streams_opened;      /* SOCKS streams the far end took */
    uint64_t streams_failed;      /* streams that ended otherwise than done both ways */
    uint64_t stream_cells_out, stream_cells_in; /* BODY_STREAM sent, BODY_STREAM_BACK taken */
    uint64_t stream_unknown;                    /* stream frames for no stream of ours */
    uint64_t socks_refused;           /* SOCKS connections refused: bad, slow, over a cap */
    uint64_t streams_no_exit;         /* streams refused at once: no registered exit takes them */
    uint64_t service_streams_opened;  /* streams to our services that connected */
    uint64_t service_streams_refused; /* opens refused: no such service, a cap, malformed */
    uint64_t service_streams_failed;  /* service connections that failed or timed out */
    uint64_t service_records_bad;     /* stream records dropped: not authentic, malformed,
                                         for no stream (either end) */
    uint64_t service_replays;         /* opens seen before: dropped */
    uint64_t intros_established;      /* hidden: cookies an introduction relay took */
    uint64_t intros_refused;          /* hidden: INTRO_FAILs (another relay is picked) */
    uint64_t intro_cells_in;          /* hidden: INTRO_DELIVERs taken */
    uint64_t idesc_published;         /* hidden: descriptors a chain's exit passed on */
    uint64_t idesc_unpublished;       /* hidden: publishes no bootstrap took (PUBLISHED(0)) */
    uint64_t hidden_gone;             /* as sender: a hidden destination's introduction
                                         ended (DELIVER_FAIL gone): sent again */
    uint64_t routes_offered;          /* chains offered by the bootstrap (choices asked) */
    uint64_t routes_chosen;           /* routes taken from those offers */
    uint64_t routes_local;            /* routes picked from the relay list: [chain] source =
                                         local, or no offer fitted, or no bootstrap answered */
    uint64_t routes_unfit;            /* offers set aside: a guard, the pinned last hop or the
                                         destination on them, or a relay related to those */
    uint64_t guards_sampled;          /* relays taken as guards */
    uint64_t guards_dropped_down;     /* guards replaced after guard_down unlisted or failing */
    uint64_t guards_dropped_old;      /* guards replaced at the end of their lifetime */
    uint64_t guard_failures;          /* chains that could not reach their guard */
    uint64_t guards_loaded;           /* guards read from <data_dir>/guards at start */
    uint32_t guards;                  /* guards held now */
    uint32_t streams_active;          /* streams open now */
    uint32_t service_streams_active;  /* streams to our services open now */
    uint32_t setup_us_p50, setup_us_p90, setup_samples; /* SETUP sent -> SETUP_OK, recent chains */
    uint32_t rtt_us_p50, rtt_us_p90, rtt_samples;       /* first send -> ack, messages sent once */
    uint32_t inbox_messages, send_queued;
    uint32_t chains;         /* live chains (building, ready or retiring) */
    uint32_t deliveries;     /* delivery IDs open: exits' chains delivering to us */
    uint32_t tombstones;     /* delivered messages remembered (replay protection) */
    uint32_t cover_permille; /* cover's share of cells_out, per mille */
    uint64_t bytes_held;     /* queued and unacknowledged messages, reassembly, inbox, chains */
    uint64_t inbox_bytes;
};

struct client;

/* Fill o with the documented defaults. */
void client_opts_defaults(struct client_opts *o);

/* Create the client role (node->client = *out) and register its handlers.
 * Needs node->dir. Call after dir_init and before node_start. */
int client_init(struct node *n, const struct client_opts *o, struct client **out) OVL_WUR;

/* Take o's settings while the role runs, for what comes from now on:
 * [chain] (chains built from now on; the ready ones serve until their
 * lifetime ends, as they would have), send_queue, retransmit and deadline
 * (below the running reassembly_timeout), max_chains and chain_idle,
 * cover_interval, loop_interval and constant_rate (at once), guard_down
 * and guard_lifetime, the [socks] listeners (a new address is listened on,
 * a removed one closed: the connections it took go on until they end),
 * the [service.NAME] sections and the [service] caps (new streams; those
 * open go on). The rest of o is kept as client_init took it: flags, the
 * inbox and reassembly settings, max_message, tombstones, guards,
 * intros. 0, or OVL_EINVAL (options client_init refuses, another
 * CLIENT_O_COVER_ONLY), OVL_ENOMEM or a listen's error, with nothing
 * changed. */
int client_reconfigure(struct client *c, const struct client_opts *o) OVL_WUR;

/* Destroy chains, fail queued messages, stop timers. Safe to call twice. */
void client_stop(struct client *c);

/* Free c after the loop ended (NULL-safe); wipes keys and messages.
 * client_stop must have run while the loop was running; c does not touch
 * the node here. */
void client_free(struct client *c);

/* Queue msg (len bytes, copied) for node dest; id receives the message id.
 * With reply set the receiver learns our node ID. OVL_ETOOBIG above
 * max_message, OVL_ENOMEM when the send queue is full, OVL_EINVAL for a
 * bad destination (ourselves, empty message), OVL_EPERM for a client made
 * with CLIENT_O_COVER_ONLY. Delivery is asynchronous. */
int client_send(struct client *c, const uint8_t dest[OVL_ED25519_PK], const uint8_t *msg,
                size_t len, bool reply, uint8_t id[CLIENT_MSG_ID]) OVL_WUR;

/* As client_send, and call cb(arg, id, result) once when the message is
 * acknowledged or fails (never from inside this call). */
int client_send_cb(struct client *c, const uint8_t dest[OVL_ED25519_PK], const uint8_t *msg,
                   size_t len, bool reply, uint8_t id[CLIENT_MSG_ID], client_sent_cb cb,
                   void *arg) OVL_WUR;

/* Answer message id of our inbox (or taken from it within its replay
 * window) with msg (len bytes, copied), back on the path it came;
 * rid receives the reply's ID. Sent at once and not acknowledged:
 * OVL_EINVAL for an empty reply, OVL_ETOOBIG above CLIENT_REPLY_MAX or
 * max_message, OVL_ENOENT for an unknown id, OVL_EPERM for a reply (it
 * has no path back, and for every id with CLIENT_O_COVER_ONLY), OVL_ECLOSED
 * when the path is gone (the sender's chain or the link to its exit
 * ended), OVL_EAGAIN when that link has no room. */
int client_reply(struct client *c, const uint8_t id[CLIENT_MSG_ID], const uint8_t *msg, size_t len,
                 uint8_t rid[CLIENT_MSG_ID]) OVL_WUR;

/* Call fn(arg) each time a message enters the inbox, after it is there
 * (fn may take it with client_recv). One hook: a new call replaces it, fn
 * NULL removes it. NULL-safe. */
void client_on_inbox(struct client *c, void (*fn)(void *arg), void *arg);

/* Build a fresh chain now and move new messages to it once it is ready
 * (the current one retires): a new route, unlinkable from the old one but
 * for timing. OVL_EAGAIN while a chain is being built, OVL_ECLOSED once
 * stopped. */
int client_new_chain(struct client *c) OVL_WUR;

/* Forget every callback registered with arg (its owner is going away). */
void client_forget_cb(struct client *c, void *arg);

/* Move up to max received messages, oldest first, into out; returns how
 * many. The caller frees each. */
size_t client_recv(struct client *c, struct client_msg **out, size_t max);

/* Call fn for each chain. */
void client_each_chain(const struct client *c,
                       void (*fn)(void *arg, const struct client_chain_info *ci), void *arg);

/* Fill hi with the hidden node's introduction relays and descriptor;
 * OVL_ENOENT when the node is not hidden. */
int client_hidden(const struct client *c, struct client_hidden_info *hi) OVL_WUR;

/* Write the address [socks] listen number i is bound to (its port when 0
 * was asked for) into out as tcp://host:port; OVL_ENOENT when there is
 * none. */
int client_socks_addr(const struct client *c, unsigned i, char *out, size_t len);

/* One entry guard as "ovlctl status" shows it. */
struct client_guard_info {
    uint8_t id[OVL_ED25519_PK];
    const char *state; /* "up", "failing", "unlisted", "unknown" (no list since start) */
    uint64_t age_ms;   /* since it was sampled (wall clock) */
    uint64_t bad_ms;   /* how long it has been unlisted or failing; 0 while good */
    bool first;        /* the one hop 0 uses now */
};

/* Call fn for each entry guard, in order. */
void client_each_guard(const struct client *c,
                       void (*fn)(void *arg, const struct client_guard_info *gi), void *arg);

/* Fill st. */
void client_stats(const struct client *c, struct client_stats *st);

/* Point *setup and *rtt at c's histograms, kept since start: chain setup
 * (SETUP sent to SETUP_OK, as setup_us_p50) and message round trips (first
 * send to acknowledgement, messages sent once, as rtt_us_p50). */
void client_hists(const struct client *c, const struct hist **setup, const struct hist **rtt);

#endif
