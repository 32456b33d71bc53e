/* client_int.h - what client.c (chains, cells, the tick) and sendq.c (the
 * send queue, acknowledgements) share. Private to src/client/.
 */
#ifndef OVL_CLIENT_CLIENT_INT_H
#define OVL_CLIENT_CLIENT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "chain/onion.h"
#include "client/client.h"
#include "client/msg.h"
#include "dir/dir.h"
#include "lib/samples.h"

#define LOOKUPS_MAX 16   /* destination lookups in flight */
#define RTO_MAX_MS  8000 /* longest wait for an acknowledgement */

/* CH_REPAIR: a hop lost its next hop; the hops from there on are being
 * set up again through it (BODY_EXTEND), the ones before it kept. */
enum chain_state { CH_DIR, CH_CONNECTING, CH_SETUP, CH_READY, CH_RETIRING, CH_REPAIR };

struct cchain {
    struct client *c;
    struct cchain *prev, *next; /* c->chains */
    uint32_t serial;
    enum chain_state state;
    unsigned length;
    struct dir_chain route;        /* hops[p][0] in use, hops[p][1..avail[p]] its backups */
    uint8_t avail[ONION_MAX_HOPS]; /* backups left per position */
    unsigned broken;               /* 1 + the position a hop reported lost, or 0 */
    bool has_avoid;                /* the route must leave avoid out (a destination) */
    uint8_t avoid[OVL_ED25519_PK];
    struct onion_keys keys[ONION_MAX_HOPS];
    uint64_t fwd_ctr[ONION_MAX_HOPS], back_next[ONION_MAX_HOPS]; /* per hop: see onion.h */
    uint8_t hdr[ONION_HDR_LEN];                                  /* setup header until it is sent */
    uint64_t link_serial; /* first hop's link; 0 before dialing */
    uint32_t chain_id;    /* registered in the chanmap when non-zero */
    uint64_t created_ms, ready_ms, expires_ms, deadline_ms; /* monotonic */
    uint64_t setup_us;                                      /* setup cell sent (clock_now_us) */
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

struct client {
    struct node *n;
    struct client_opts o;
    struct cchain *chains;
    struct cchain *current;  /* the ready chain new cells use, or NULL */
    struct cchain *building; /* at most one chain is built at a time */
    uint32_t next_serial;
    struct dir_chain repair; /* the next build's route, when has_repair */
    uint8_t repair_avail[ONION_MAX_HOPS];
    bool has_repair;
    bool has_avoid;                /* the next build leaves avoid out: a message's */
    uint8_t avoid[OVL_ED25519_PK]; /* destination is a relay of the current chain */
    struct out_msg *queue;
    struct out_msg *unacked; /* sent whole, waiting for the acknowledgement */
    struct out_msg *adding;  /* the message client_send_cb is adding, until it returns */
    int adding_err;          /* why it failed there, if it did */
    uint32_t n_queue;        /* both lists */
    unsigned n_lookups;
    struct msg_rx rx;
    struct client_stats st;
    struct samples setup_us, rtt_us; /* recent setup round trips and message round trips */
    uint64_t busy_from_us;           /* since when messages are waiting or in flight; 0: none */
    uv_timer_t tick, cover, loop, rate;
    uv_idle_t pump; /* continues a burst cut at PUMP_BURST, once the loop went round */
    bool tick_open, cover_open, loop_open, rate_open, pump_open, stopped;
    uint64_t rate_t0, rate_sent; /* constant rate: slots since rate_t0, and those used */
    unsigned fails;              /* consecutive build failures */
    uint32_t backoff_ms;
    uint64_t next_build_ms;
};

/* Send what can be sent on the current chain (client.c). */
void client_pump(struct client *c);

/* Fail m (counted, logged) and tell its owner (sendq.c). */
void sendq_fail(struct out_msg *m, const char *why);

/* Every fragment of m left: wait for its acknowledgement. */
void sendq_await(struct out_msg *m);

/* Fail what passed its deadline; queue again what waited too long. */
void sendq_tick(struct client *c, uint64_t now);

/* Take an acknowledgement record (len bytes, hostile) from dest's exit. */
void sendq_ack(struct client *c, const uint8_t *dest, const uint8_t *rec, size_t len);

/* Return the bytes the send queue holds (messages not done yet). */
uint64_t sendq_bytes(const struct client *c);

/* Ask the directory for the destinations of waiting messages. */
void sendq_lookups(struct client *c);

#endif
