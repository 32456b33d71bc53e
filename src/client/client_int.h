/* client_int.h - what the client's files share. Private to src/client/.
 *
 * The files depend on each other one way only (each calls functions of
 * those before it, never of those after):
 *     msg.c     end-to-end encryption, fragments, reassembly, the inbox
 *     sendq.c   the send queue: messages until acknowledged or failed
 *     route.c   a chain's route: the guard, the middle hops (one of the
 *               bootstrap's offers, or picked locally), the line's exit
 *     cchain.c  chains: the state machine, building, setup, repair,
 *               retiring, the cells coming back; each chain serves a line
 *     hidden.c  a hidden node's side: lines of chains to introduction
 *               relays, cookies, the inbound descriptor published; and
 *               the way back of every delivery (an exit's link, or an
 *               introduction relay's handle down one of those chains)
 *     lines.c   lines of chains for streams: classes (isolation keys),
 *               the registered exits' policies, which line takes a stream
 *     send.c    sending: lookups, the pump, cover, constant rate
 *     socks.c   the SOCKS5 front end and its streams
 *     svc.c     our end of streams to our services
 *     client.c  the role: init and stop, the tick, link events, delivery
 * (srec.c, the sealing of stream records, socks5.c and guard.c, the entry
 * guards' rules, call none of them.)
 * The ways back up are callbacks, not calls by name: a chain becoming
 * current runs c->chain_ready_cb, which client_init points at send_pump,
 * and the exits' policies arriving run c->view_cb (socks_view); frames
 * and records for the SOCKS streams reach socks.c through c->stream_cb,
 * c->rec_cb and c->unreach_cb; an introduction relay's bodies reach
 * client.c through c->intro_cb.
 * A message entering the inbox runs c->inbox_cb, which the layer above
 * registers (client_on_inbox).
 */
#ifndef OVL_CLIENT_CLIENT_INT_H
#define OVL_CLIENT_CLIENT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "chain/onion.h"
#include "chain/stream.h"
#include "chain/stsock.h"
#include "client/client.h"
#include "client/guard.h"
#include "client/lines.h"
#include "client/msg.h"
#include "core/link.h"
#include "dir/dir.h"
#include "lib/hist.h"
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

/* Bits of struct cchain's flags. */
enum cchain_flag {
    CCF_GUARD_LIST = 1u << 0, /* the relay list was asked for because no guard was usable */
};

struct cline;

struct cchain {
    struct client *c;
    struct cline *line;         /* the line it serves */
    struct cchain *prev, *next; /* c->chains */
    uint32_t serial;
    enum cchain_state state;
    unsigned length;
    unsigned lead;                 /* 1 when hops[0] is a guard (its backups the next ones) */
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
    uint32_t splices; /* times its hops from a lost one on were set up anew (chain_splice):
                         its exit then holds a new chain, without what the old one held */
    unsigned flags;   /* enum cchain_flag */
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
    CF_VIEW = 1u << 2,    /* the relay list for c->exits is being fetched */
    CF_COVER = 1u << 3,   /* CLIENT_O_COVER_ONLY: a relay's loop cover, no messages; the
                             main line keeps a chain while our descriptor is registered */
};

/* struct deliv's flags. */
enum deliv_flag {
    DF_KEPT = 1u << 0,  /* it delivered a message, which may be answered on it */
    DF_INTRO = 1u << 1, /* an introduction relay's delivery: chain and handle, not l */
};

/* Where an introduction relay's deliveries sit among the inbox's sources
 * (struct msg_from's link): above every link serial, one per chain. */
#define DELIV_INTRO_SRC (UINT64_C(1) << 63)

/* A delivery to us (client.c): a delivery ID an exit opened on a link to
 * us, which the chanmap routes its later cells to, or with DF_INTRO what
 * an introduction relay hands down one of our chains to it under one
 * handle (22.2). Answers go back the same way (deliv_send). */
struct deliv {
    struct client *c;
    struct deliv *prev, *next; /* c->delivs */
    unsigned flags;            /* enum deliv_flag */
    struct link *l;            /* the exit's link; NULL with DF_INTRO */
    uint32_t id;               /* its delivery ID there; with DF_INTRO our own number */
    uint32_t chain;            /* with DF_INTRO: serial of our chain to the relay */
    uint8_t handle[8];         /* with DF_INTRO: the relay's name for it (BODY_HANDLE) */
    uint64_t last_ms;          /* its last cell (monotonic) */
    struct svc_stream *svcs;   /* streams to our services whose way back it is (svc.c,
                                  utlist through wprev/wnext), in the order a wake pumps */
    unsigned n_streams;        /* how many are on svcs */
    struct stream_pool pool;   /* the chain window of those streams (svc.c) */
};

struct socks_conn;
struct socks_lis;
struct svc_stream;

/* struct cline's flags. */
enum cline_flag {
    CLF_REPAIR = 1u << 0, /* repair is the next build's route */
    CLF_KEYED = 1u << 1,  /* a class of credentials: key holds its isolation key */
    CLF_EXIT = 1u << 2,   /* every chain of the line ends at exit */
    CLF_MOVED = 1u << 3,  /* a chain became current or was repaired: streams rewind */
    CLF_DEAD = 1u << 4,   /* its exit is gone: its streams end, then the line */
    CLF_AVOID = 1u << 5,  /* the next build leaves avoid out */
    CLF_INTRO = 1u << 6,  /* with CLF_EXIT: a hidden node's line to an introduction relay */
};

/* A line: the chains that follow one another (built, repaired, replaced)
 * for one purpose. c->main carries the messages and the streams of the
 * default class that its exit takes; every other line carries streams of
 * one class (credentials, or none) and, with CLF_EXIT, ends at one exit
 * whose policy took the stream that made it, so its streams survive a
 * replacement. */
struct cline {
    struct client *c;
    struct cline *prev, *next; /* c->lines, c->main first */
    unsigned flags;            /* enum cline_flag */
    struct cchain *current;    /* the ready chain its cells use, or NULL */
    struct cchain *building;   /* at most one chain of a line is built at a time */
    struct dir_chain *repair;  /* with CLF_REPAIR: the next build's route (allocated) */
    uint8_t repair_avail[ONION_MAX_HOPS];
    unsigned repair_lead;          /* its lead (1: a guard in position 0) */
    uint32_t backoff_ms;           /* the wait after the next failed build */
    uint64_t next_build_ms;        /* no build before this (monotonic) */
    unsigned fails;                /* builds failed since its last ready chain */
    uint8_t key[CLIENT_CLASS_KEY]; /* with CLF_KEYED */
    struct desc exit;              /* with CLF_EXIT */
    uint8_t avoid[OVL_ED25519_PK]; /* with CLF_AVOID: a destination (of a message, or a
                                      .ovl stream) that is a relay of its chain */
    struct socks_conn *conns;      /* its streams (socks.c, utlist) */
    unsigned streams;              /* how many */
    struct stream_pool pool;       /* the chain window its streams share (socks.c) */
    uint64_t idle_ms;              /* since when it has none (monotonic) */
};

struct client {
    struct node *n;
    struct client_opts o;
    unsigned flags; /* enum client_flag */
    struct cchain *chains;
    struct cline main;   /* messages: main.current is the chain they use */
    struct cline *lines; /* every line, main first (utlist) */
    unsigned n_lines;
    uint32_t next_serial;
    struct desc *exits; /* lines.c: registered exits (our view), n_exits */
    unsigned n_exits;
    uint64_t view_ms;         /* when the view was taken; 0: none yet */
    uint64_t view_try_ms;     /* when a fetch of it last failed; 0: none */
    uint8_t class_secret[32]; /* keys isolation keys: random, per run */
    struct out_msg *queue;
    struct out_msg *unacked; /* sent whole, waiting for the acknowledgement */
    struct out_msg *adding;  /* the message client_send_cb is adding, until it returns */
    int adding_err;          /* why it failed there, if it did */
    uint32_t n_queue;        /* both lists */
    unsigned n_lookups;
    struct msg_rx rx;
    struct deliv *delivs;     /* client.c: delivery IDs exits opened to us */
    uint32_t next_deliv;      /* client.c: numbers of introduction relays' deliveries */
    struct hidden *hidden;    /* hidden.c: the hidden node's side, NULL when not hidden */
    struct guard_set *guards; /* cchain.c: the entry guards, NULL when [client] guards = 0 */
    uint64_t guards_ms;       /* cchain.c: when a relay list last updated them (monotonic) */
    struct client_stats st;
    struct samples setup_us, rtt_us; /* recent setup round trips and message round trips */
    struct hist setup_hist, rtt_hist; /* the same, every one since start (the metrics) */
    uint64_t busy_from_us;           /* since when messages are waiting or in flight; 0: none */
    /* Handles by core/timer.h: each NULL when off or closed. */
    uv_timer_t *tick;            /* client.c: every deadline */
    struct stsock_env *ssenv;    /* SOCKS and service sockets: their writes per loop turn */
    uv_timer_t *cover, *loop;    /* send.c: drop and loop cover, when configured */
    uv_timer_t *rate;            /* send.c: constant rate, when configured */
    uv_idle_t *pump;             /* send.c: continues a burst once the loop went round */
    uint64_t rate_t0, rate_sent; /* constant rate: slots since rate_t0, and those used */
    void (*chain_ready_cb)(struct client *c); /* a chain became current: send_pump */
    void (*view_cb)(struct client *c);        /* the exits' view came (or failed): socks_view */
    void (*inbox_cb)(void *arg);              /* a message entered the inbox (client_on_inbox) */
    void (*stream_cb)(struct cchain *ch, const uint8_t *f, size_t len); /* BODY_STREAM_BACK */
    /* A stream record dest sent back on ch (socks_rec_back), and dest
     * cannot be reached (socks_unreachable). */
    void (*rec_cb)(struct cchain *ch, const uint8_t *dest, const uint8_t *rec, size_t len);
    void (*unreach_cb)(struct client *c, const uint8_t *dest);
    /* A body an introduction relay originated on ch, a chain of a CLF_INTRO
     * line (cmd: BODY_INTRO_OK, _FAIL, _DELIVER, BODY_PUBLISHED; len bytes
     * of args, hostile): client_intro_body. */
    void (*intro_cb)(struct cchain *ch, uint8_t cmd, const uint8_t *args, size_t len);
    /* socks.c: the SOCKS front end and its streams */
    struct socks_lis *socks_lis[CLIENT_MAX_SOCKS];
    struct socks_conn *socks_conns; /* every connection (utlist) */
    struct socks_conn *streams;     /* those with a stream, by sid (uthash) */
    unsigned n_socks_conns;
    unsigned stream_slots; /* constant_rate: frames the streams may send now */
    /* svc.c: streams to our services */
    struct svc_stream *svcs; /* by sid (uthash) */
    unsigned svc_resolving, svc_blocked;
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

/* Fail every queued message to dest, and every stream to dest that is
 * not open yet (c->unreach_cb). */
void sendq_fail_to(struct client *c, const uint8_t dest[OVL_ED25519_PK], const char *why);

/* The exit could not hand a fragment to dest (reason from BODY_DELIVER_FAIL,
 * hostile): fail the message to dest in flight, if any. */
void sendq_undeliverable(struct client *c, const uint8_t dest[OVL_ED25519_PK], unsigned reason);

/* The directory answered m's lookup (err, else d, its descriptor, or in,
 * its inbound descriptor when it is hidden): seal m for its onion key, or
 * fail it. m may be gone on return. */
void sendq_looked_up(struct out_msg *m, int err, const struct desc *d, const struct idesc *in);

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

/* ---- route.c: a chain's route ---- */

/* Remove entry k of position p (avail[p] > 0 when k is 0): a backup, or
 * with k = 0 the hop in use, whose place its first backup takes. */
void route_drop(struct dir_chain *route, uint8_t avail[ONION_MAX_HOPS], unsigned p, unsigned k);

/* Leave pk (and with near, relays of its subnet) out of the first length
 * positions of route r: drop it from every position's backups, and move a
 * backup into a position it holds. OVL_ENOENT when none is left. */
int route_avoid(struct dir_chain *r, uint8_t avail[ONION_MAX_HOPS], unsigned length,
                const uint8_t *pk, const struct desc *near);

/* Start ch's route afresh: with guards, the first usable guard that may
 * precede the line's exit and is not the destination to avoid in
 * position 0, the next ones (up to [chain] backups) as its backups
 * (ch->lead 1). 0, or OVL_ENOENT when no guard is usable. */
int route_put_guard(struct cchain *ch);

/* Return how many middle hops ch needs: all but the guard and the exit. */
unsigned route_middle(const struct cchain *ch);

/* Choose among the bootstrap's n offers of middle hops, uniformly among
 * those that fit (none names ourselves, the destination to avoid, the
 * guard or the line's exit, or a relay related to those, not even as a
 * backup) and are not the line's current route; the offer's index, or -1
 * when none is left (then the hops are picked locally). Counted in
 * c->st. */
int route_choose(struct cchain *ch, const struct dir_chain *offers, unsigned n);

/* Put offer o's hops (one route_choose chose) after the guard. */
void route_take(struct cchain *ch, const struct dir_chain *o);

/* Pick the middle hops from the relay list (count descriptors) by the
 * selection rule, among the relays route_choose would let through;
 * OVL_ENOENT when too few are left. */
int route_pick(struct cchain *ch, const struct desc *relays, unsigned count);

/* Append the line's exit, if it has one, without backups (leaving it out
 * of the positions before it); OVL_ENOENT when no room or no backup is
 * left. */
int route_put_exit(struct cchain *ch);

/* ---- cchain.c: chains ---- */

/* Return the name "ovlctl chains" shows for s. */
const char *cchain_state_name(enum cchain_state s);

/* Start a chain for each line that has none ready and a reason to (the
 * main line: messages queued or our descriptor registered; any line:
 * streams), or whose current one is due for replacement, unless the line
 * is building one or backing off. */
void cchain_maybe_build(struct client *c);

/* Set line up empty (flags, its exit when CLF_EXIT) and put it in
 * c->lines; the main line is made by client_init the same way. */
void cchain_line_add(struct client *c, struct cline *line);

/* Destroy line's chains (telling their first hops), take it out of
 * c->lines and free it (never c->main). Its streams must be gone. */
void cchain_line_free(struct cline *line);

/* The first queued message (line: the main one) or a .ovl stream of
 * line goes to dest, a relay of line's chain: have a chain built for
 * line that leaves dest out. */
void cchain_avoid(struct cline *line, const uint8_t dest[OVL_ED25519_PK]);

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

/* Destroy every chain, telling the first hops, and free every line but
 * the main one (client_stop, after the streams ended). */
void cchain_destroy_all(struct client *c);

/* Return ch's last hop: the exit of what it carries. */
const struct desc *cchain_exit(const struct cchain *ch);

/* Fail or destroy chains whose state's deadline or lifetime passed. */
void cchain_tick(struct client *c, uint64_t now);

/* Send the setup of each chain that waited for link l to open. */
void cchain_link_opened(struct client *c, struct link *l);

/* Fail each chain still waiting for link l, which closed, to open. */
void cchain_link_closed(struct client *c, struct link *l);

/* Return our chain with this serial (any state), or NULL. */
struct cchain *cchain_find(struct client *c, uint32_t serial);

/* ---- hidden.c: a hidden node's side, and the way back of deliveries ---- */

/* Set up the hidden side when o->intros > 0 (c->hidden); 0 or OVL_ENOMEM. */
int hidden_init(struct client *c) OVL_WUR;

/* Free the hidden side (NULL-safe); its lines go with cchain_destroy_all. */
void hidden_free(struct client *c);

/* Keep o->intros introduction relays with a cookie each, establish cookies
 * on new chains, publish the inbound descriptor when it changed or is
 * due for refresh. */
void hidden_tick(struct client *c, uint64_t now);

/* Take INTRO_OK, INTRO_FAIL or PUBLISHED (len bytes of args, hostile)
 * from ch's introduction relay; false when it is not one we expect. */
bool hidden_body(struct cchain *ch, uint8_t cmd, const uint8_t *args, size_t len);

/* Return the link d's answers leave on (the exit's, or the first hop of
 * the chain to its introduction relay), or NULL when it is gone. */
struct link *deliv_link(const struct deliv *d);

/* Send data (len bytes, at most BODY_DATA_MAX) back on d: a
 * CELL_CHAIN_DELIVER under its ID, or an INTRO_BACK with its handle up its
 * chain. 0, OVL_ECLOSED when its way is gone, or link_send's error. An
 * INTRO_BACK is a chain cell, counted in cells_out as every chain cell is;
 * a CELL_CHAIN_DELIVER is counted by the caller (DELIV_OUT). */
int deliv_send(struct deliv *d, const uint8_t *data, size_t len) OVL_WUR;

/* What a sent CELL_CHAIN_DELIVER on d adds to cells_out (see deliv_send). */
#define DELIV_OUT(d, rc) ((rc) == 0 && !((d)->flags & DF_INTRO))

/* Fill from with d's place among the inbox's sources. */
void deliv_from(const struct deliv *d, struct msg_from *from);

/* ---- lines.c: which line carries a stream (and lines.h) ---- */

/* Find the line for a stream of the class key (NULL: the default class)
 * to t (NULL: a target that needs no exit policy): a line of the class
 * whose exit takes t (the main line first, for the default class), else
 * a new line ending at an exit drawn among those of the view that take
 * t. 0 and *out; OVL_EAGAIN while the view is fetched (c->view_cb tells
 * when to ask again); OVL_EPERM when no registered exit takes t;
 * OVL_ENOMEM at max_chains lines, none idle, or out of memory;
 * OVL_ECLOSED when the view could not be fetched. */
int lines_place(struct client *c, const uint8_t *key, const struct stream_target *t,
                struct cline **out);

/* Write line's class label (CLIENT_CLASS_LABEL bytes): "intro" for a
 * hidden node's line to an introduction relay, "default", or "k" and 8
 * hex digits of its key. */
void lines_label(const struct cline *line, char *out);

/* Free lines idle for chain_idle, or dead, that no stream uses. */
void lines_tick(struct client *c, uint64_t now);

/* Free the view (client_stop). */
void lines_stop(struct client *c);

/* ---- send.c: sending ---- */

/* Allocate the send handles (pump, and the cover, loop and rate timers as
 * configured): 0 or OVL_ENOMEM (send_close frees what was made). */
int send_open(struct client *c) OVL_WUR;

/* Start the cover, loop and rate timers. */
void send_start(struct client *c);

/* Close the send handles (NULL-safe, each once). */
void send_close(struct client *c);

/* Timers client_reconfigure may need (send_plan), until send_commit takes
 * them or send_unplan frees them. */
struct send_plan {
    uv_timer_t *cover, *loop, *rate;
};

/* Allocate into p the timers o's cover and constant rate need that are
 * not running: 0, or OVL_ENOMEM with p empty. */
int send_plan(struct client *c, const struct client_opts *o, struct send_plan *p) OVL_WUR;

/* Free what p still holds. */
void send_unplan(struct send_plan *p);

/* Take o's cover_interval, loop_interval and constant_rate, with p's
 * timers: a timer no longer needed closes, a new one or one whose mean
 * changed is armed afresh (a gap drawn for the old mean is dropped; the
 * gaps stay exponential), constant rate starts its slots again from now,
 * and turned off lets the pump send what waited for slots. */
void send_commit(struct client *c, const struct client_opts *o, struct send_plan *p);

/* Send what can be sent: messages on the main chain, then streams. */
void send_pump(struct client *c);

/* ---- socks.c: the SOCKS5 front end and its streams ---- */

/* Listen on every [socks] listen address: 0 or an error (logged). */
int socks_start(struct client *c);

/* Close the listeners, reset every stream and close every connection. */
void socks_stop(struct client *c);

/* Fill nl (CLIENT_MAX_SOCKS) with a listener for each of o's [socks]
 * listen addresses, in o's order: a running one bound to that IP and
 * port, else one listed with the same text, else for port 0 one bound to
 * that IP, else a new one, whose bit is set in *fresh.
 * 0, or the error of a listen that failed (logged), with the new ones
 * closed again and nothing changed. */
int socks_plan(struct client *c, const struct client_opts *o, struct socks_lis **nl,
               unsigned *fresh) OVL_WUR;

/* Close the listeners of nl that socks_plan opened (bits of fresh). */
void socks_unplan(struct socks_lis **nl, unsigned fresh);

/* Make nl o's listeners, closing the running ones not among them: a
 * closed listener takes no more connections, and those it took go on
 * until they end. Takes o's addresses and allow_remote. */
void socks_commit(struct client *c, const struct client_opts *o, struct socks_lis **nl,
                  unsigned fresh);

/* A stream frame (len bytes, hostile) from ch's exit. */
void socks_back(struct cchain *ch, const uint8_t *f, size_t len);

/* Let the streams of every line with a ready chain send (the link
 * drained, a chain became current), the main line's only with main set;
 * after a change of chain, from their last acknowledged byte. */
void socks_pump(struct client *c, bool main);

/* With constant_rate: let a stream of line send one frame in this slot;
 * true when one did. */
bool socks_slot(struct cline *line);

/* The exits' view came or failed: place the streams that waited for it. */
void socks_view(struct client *c);

/* Bytes the SOCKS connections and their streams hold now. */
uint64_t socks_bytes_held(const struct client *c);

/* End handshakes that take too long; pump the streams of a line whose
 * window has room again for one held back. */
void socks_tick(struct client *c, uint64_t now);

/* A stream record (len bytes, hostile) node dest sent back on ch: to
 * its stream, opened with its keys. */
void socks_rec_back(struct cchain *ch, const uint8_t *dest, const uint8_t *rec, size_t len);

/* dest cannot be reached (the exit could not, or every route crosses
 * it): its streams not opened yet fail. */
void socks_unreachable(struct client *c, const uint8_t *dest);

/* ---- svc.c: our end of streams to our services (docs/PROTOCOL.md 20.6) ---- */

/* A stream record (len bytes, hostile) that came on delivery ID d: to its
 * stream, opening one for an open record. */
void svc_input(struct client *c, struct deliv *d, const uint8_t *rec, size_t len);

/* d is going: its streams lose their way back until a record comes on
 * another delivery ID. */
void svc_way_gone(struct client *c, struct deliv *d);

/* l drained: pump the streams that found it full. */
void svc_drained(struct client *c, struct link *l);

/* Fail dials that passed their deadline; pump the streams of a way back
 * whose window has room again for one held back. */
void svc_tick(struct client *c, uint64_t now);

/* Reset every stream (the client stops). */
void svc_stop(struct client *c);

/* Bytes the service streams hold now. */
uint64_t svc_bytes_held(const struct client *c);

#endif
