/* node.h - the node context: one per ovld process, passed explicitly.
 *
 * It owns the loop, the identity, the transports' environment, the
 * dispatcher, every link and listener, the configured peers and the
 * counters. Roles hang their own state off it through opaque pointers; core
 * code never includes a role's header.
 */
#ifndef OVL_CORE_NODE_H
#define OVL_CORE_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "core/bw.h"
#include "core/dispatch.h"
#include "core/link_reason.h"
#include "core/transport.h"
#include "lib/clock.h"
#include "lib/crypto.h"
#include "lib/encode.h"
#include "lib/log.h"
#include "lib/uri.h"

enum node_role {
    ROLE_BOOTSTRAP = 1u << 0,
    ROLE_RELAY = 1u << 1,
    ROLE_CLIENT = 1u << 2,
};

#define NODE_MAX_LISTEN 8
#define NODE_MAX_PEERS  64

/* Tunables the core needs; the app fills them from the config. */
struct node_opts {
    uint32_t aead_suites; /* acceptable AEAD suites (mask) */
    uint32_t handshake_timeout_ms;
    uint32_t idle_timeout_ms;     /* 0 = never */
    uint32_t heartbeat_ms;        /* PING an open link quiet this long; 0 = never */
    uint32_t heartbeat_misses;    /* dead after this many intervals with no cell */
    uint32_t max_links;           /* links, inbound and outbound; inbound get 7/8 */
    uint32_t max_links_per_block; /* inbound links from one /24 or /48; 0 = no limit */
    uint32_t hs_rate_per_block;   /* handshakes per second from one block; 0 = no limit */
    uint32_t hs_burst_per_block;  /* and how many at once */
    size_t sendq_max;             /* per-link send queue, bytes */
    uint64_t max_queued;          /* all links' send queues together, bytes; 0 = no budget */
    uint64_t rekey_cells;         /* ratchet each direction's key after this many cells */
    uint32_t reconnect_min_ms;
    uint32_t reconnect_max_ms;
    unsigned transports;     /* tp_bit() mask a node may dial and listen on; 0 = all */
    unsigned prefer;         /* tp_bit() of the transport dialed first; 0 = tcp */
    uint32_t padding_min_ms; /* link padding after U(min, max) ms of no traffic */
    uint32_t padding_max_ms; /* but upkeep; padding_max_ms 0 = no link padding */
    uint32_t cover_budget;   /* most cover (padding, chain cover) in % of cells sent */
    unsigned flags;          /* enum node_opt_flag */
    const char *state_dir;   /* [node] data_dir: where roles keep state across restarts
                                (lib/statefile.h); NULL keeps nothing. Lent: outlives the node */
    struct bw_opts bw;       /* [node] and [relay] rate and burst, accounting (bw.h) */
};

/* Bits of struct node_opts's flags. */
enum node_opt_flag {
    /* A hidden node: its links authenticate with a throwaway identity made
     * at start (node->link_id), never its own, so no peer it links to (a
     * first hop, a bootstrap) learns which node sits at the address. */
    NODE_O_HIDDEN = 1u << 0,
};

struct link;
struct peer;
struct admit;
struct chanmap_slot;
struct dir;
struct relay;
struct client;

/* A role's interest in link events; registered with node_observe_links().
 * Any callback may be NULL. The link is valid for the duration of the call. */
struct link_observer {
    void (*opened)(void *ctx, struct link *l);  /* authenticated both ways */
    void (*closed)(void *ctx, struct link *l);  /* closing; freed right after */
    void (*drained)(void *ctx, struct link *l); /* queue fell below half after OVL_EAGAIN */
    void *ctx;
};
#define NODE_MAX_OBSERVERS 8

struct node_counters {
    uint64_t links_accepted, links_dialed;
    uint64_t links_evicted;          /* unauthenticated inbound links closed to make room */
    uint64_t links_limited_block;    /* inbound links refused: their block was at its share */
    uint64_t hs_limited, hs_replays; /* message 1 refused: over the block's rate, seen before */
    uint64_t handshakes_ok, handshakes_failed;
    uint64_t link_closed[LC_REASON_COUNT];
    uint64_t cells_in, cells_out, cells_unhandled;
    uint64_t frames_in, frames_out;
    uint64_t bytes_in, bytes_out;
    uint64_t tp_bytes_in[TP_MAX], tp_bytes_out[TP_MAX]; /* the same by transport (tp_index) */
    uint64_t rekeys;
    uint64_t chain_unknown;         /* chain-level cells for an ID nobody owns */
    uint64_t dial_fallbacks;        /* dials retried on a relay's next address */
    uint64_t heartbeats;            /* PINGs sent because a link was quiet */
    uint64_t pongs_skipped;         /* PONGs not sent: the link's queue was full */
    uint64_t memory_closed;         /* links closed because all queues were over max_queued */
    uint64_t probes, probes_failed; /* link_probe PINGs, and links they found dead */
    uint64_t dead_detect_ms_last, dead_detect_ms_max; /* silence before a link was declared dead */
    uint64_t padding_in, padding_out; /* link padding cells (padding_out is in cover_out) */
    uint64_t cover_out;     /* cover cells sent: link padding and the client's chain cover */
    uint64_t cover_skipped; /* cover cells not sent: over cover_budget */
    /* Reloads of the configuration (SIGHUP, ovlctl reload; the app counts
     * them): files taken, files refused (nothing changed), and steps that
     * failed to apply (their settings kept as they ran). */
    uint64_t reloads, reloads_refused, reload_failures;
};

/* The cover budget's window: counters where it starts (node_cover_allowed). */
struct node_budget {
    uint64_t start_ms;
    uint64_t cells, cover; /* ctr.cells_out and ctr.cover_out at the start */
};

struct node {
    uv_loop_t *loop;
    struct ovl_log log;
    struct node_opts opts;
    struct ovl_identity id;      /* who we are: signs descriptors, names us */
    struct ovl_identity link_id; /* what our links authenticate with: id, or a
                                    throwaway one with NODE_O_HIDDEN */
    char node_id[OVL_NODE_ID_LEN + 1];
    unsigned roles;
    struct tp_env tp_env;
    struct dispatcher disp;       /* every received cell, by command */
    struct dispatcher chain_open; /* chain cells for unowned IDs (chanmap.h) */

    struct tp_listener *listeners[NODE_MAX_LISTEN];
    char listen_uri[NODE_MAX_LISTEN][OVL_URI_MAX]; /* bound addresses */
    unsigned n_listeners;

    struct link *links;     /* doubly linked list of every link, newest first */
    struct link *unauth_in; /* inbound links still in their handshake, oldest first */
    uint32_t n_links;
    uint32_t n_closing;       /* of those, closing (they hold no slot) */
    uint32_t n_links_in;      /* inbound links not closing */
    uv_timer_t *memcap_timer; /* memcap_check, while started */

    struct peer *peers;
    unsigned n_peers;

    struct node_counters ctr;
    struct node_budget budget;
    struct bw bw; /* bandwidth limits and accounting; change them with bw_apply */
    uint64_t started_ms;
    bool stopping;

    uint64_t next_link_serial;    /* link->serial: unique for the node's life */
    struct chanmap_slot *chanmap; /* (link, chain ID) -> owner; see chanmap.h */
    struct admit *admit;          /* per address block accounting; see admit.h */
    uint32_t n_chanmap;
    struct link_observer observers[NODE_MAX_OBSERVERS];
    unsigned n_observers;

    /* Role contexts, created by the app after node_init (node_run.h); opaque to core.
     * NULL when the role is off. */
    struct dir *dir;       /* directory: bootstrap server and directory client */
    struct relay *relay;   /* peel-and-forward, exit delivery */
    struct client *client; /* chains, sending and receiving messages */

    /* The one upcall into the application: asked to stop the daemon (by
     * ovlctl shutdown or a signal). Set by the app before node_start(). */
    void (*app_stop)(struct node *n);
    void *app;
};

/* Fill opts with the documented defaults. */
void node_opts_defaults(struct node_opts *o);

/* Register a link observer (copied). OVL_ENOMEM past NODE_MAX_OBSERVERS. */
int node_observe_links(struct node *n, const struct link_observer *obs) OVL_WUR;

/* Remove the observer registered with context ctx (the order of the
 * others is kept); nothing when there is none. */
void node_unobserve_links(struct node *n, const void *ctx);

/* Write the roles as "bootstrap,relay,client" (those set, in that order) or
 * "none" into out; truncated but terminated when out is too short. */
void node_roles_format(char *out, size_t outlen, unsigned roles);

/* Return true when one more cover cell keeps cover within opts.cover_budget
 * percent of the cells this node sent over the last 10 to 20 s, the cell
 * itself included; count a skip when not. The caller counts ctr.cover_out
 * once the cell is sent. Cover is a luxury: over budget it is skipped. */
bool node_cover_allowed(struct node *n);

#endif
