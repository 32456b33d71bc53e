/* config.h - ovld's INI configuration (reference: docs/CONFIG.md).
 *
 *   [node]     roles, data_dir, listen, control_socket, aead, transports, prefer,
 *              cover_budget, max_queued, hidden, intros, rate, burst
 *   [log]      level, syslog
 *   [link]     handshake_timeout, idle_timeout, heartbeat, heartbeat_misses,
 *              padding_min, padding_max, max_links, max_links_per_block,
 *              handshake_rate, handshake_burst, send_queue, rekey_cells,
 *              reconnect_min, reconnect_max
 *   [peer.NAME] address, id     (one section per peer to dial)
 *   [dir]      heartbeat, ttl, chain_cache_ttl, max_nodes, max_cached_chains,
 *              onion_rotate, onion_overlap, request_timeout, request_rate,
 *              request_burst, allow_private_addresses, chain_refresh,
 *              block_request_rate, block_request_burst, block_chain_rate,
 *              block_chain_burst, max_nodes_per_block, list_lifetime, list_rate
 *   [bootstrap.NAME] address, id (a directory server; also dialed as a peer)
 *   [chain]    source, distinct_subnets, weighting, length, backups, lifetime,
 *              setup_timeout
 *   [client]   max_message, inbox_messages, inbox_bytes, send_queue,
 *              reassembly_timeout, retransmit, deadline, cover_interval,
 *              loop_interval, constant_rate
 *   [relay]    max_chains, setup_timeout, max_lifetime, exit_queue, capacity,
 *              loop_interval, family, rate, burst, max_per_day, max_per_month,
 *              accounting_start
 *   [exit]     policy (relays only; may repeat, each line adds rules)
 *   [service.NAME] port, target (a service of the client's .ovl name)
 *   [service]  max_streams, max_streams_per_chain, stream_idle_timeout
 *   [metrics]  listen (the HTTP listener of the metrics; off when unset)
 *
 * Unknown sections or keys, bad values and duplicates are rejected with a
 * "file:line: message" error. The reader is config.c, the table of keys and
 * their setters config_keys.c.
 */
#ifndef OVL_APP_CONFIG_H
#define OVL_APP_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "chain/relay.h"
#include "client/client.h"
#include "core/node.h"
#include "core/peer.h"
#include "dir/dir.h"
#include "lib/err.h"
#include "lib/log.h"

#define CONFIG_ERR_MAX 512

/* What the file said, beyond the values (struct ovl_config's flags). */
enum config_flag {
    CFG_F_DATA_DIR = 1u << 0, /* [node] data_dir was given (not the default) */
};

struct ovl_config {
    char path[PATH_MAX];
    unsigned flags; /* enum config_flag bits */
    unsigned roles; /* enum node_role bits; default relay */
    char data_dir[PATH_MAX];
    char control_socket[PATH_MAX];
    char listen[NODE_MAX_LISTEN][OVL_URI_MAX];
    unsigned n_listen;
    enum ovl_log_level log_level;           /* default info */
    bool syslog;                            /* default false */
    struct node_opts opts;                  /* [link], aead, rates and accounting (opts.bw) */
    struct peer_spec peers[NODE_MAX_PEERS]; /* the [peer.NAME] sections only */
    unsigned n_peers;
    struct dir_opts dir;       /* [dir], [relay] capacity and family, [exit] policy;
                                * desc_lifetime_ms = 3 x onion_rotate */
    struct relay_opts relay;   /* [relay] */
    struct client_opts client; /* [chain] and [client] */
    struct dir_bootstrap_spec bootstraps[DIR_MAX_BOOTSTRAPS];
    unsigned n_bootstraps;
    bool hidden;            /* [node] hidden; unset: on for a client alone with no listen */
    uint32_t intros;        /* [node] intros, 1..4, default 2: client.intros when hidden */
    uint32_t relay_loop_ms; /* [relay] loop_interval: mean gap of a relay's loop cover, 0 off */
    char metrics_listen[64]; /* [metrics] listen: IP:PORT, "" for none */
};

/* Fill c with the documented defaults (no peers, no listen address). */
void config_defaults(struct ovl_config *c);

/* Read path into c (defaults first). On failure return OVL_EINVAL (or
 * OVL_ENOENT when the file cannot be opened, OVL_ENOMEM without memory for
 * the parser) with "path:line: message" in err; c is then unspecified. */
int config_load(struct ovl_config *c, const char *path, char *err, size_t errlen) OVL_WUR;

/* Parse a config held in memory (name is used in messages); for tests. */
int config_parse_string(struct ovl_config *c, const char *name, const char *text, char *err,
                        size_t errlen) OVL_WUR;

/* Check what the roles need that config_load leaves to the daemon (ovld
 * --print-id runs without it): a client, or a relay's loop cover, needs a
 * [bootstrap.NAME], and [relay] loop_interval the relay role. 0, or
 * OVL_EINVAL with "path: message" in err. */
int config_check_roles(const struct ovl_config *c, char *err, size_t errlen) OVL_WUR;

/* Fill co with the options of the client code a node of c runs, and
 * return true, or false when it runs none. A relay's loop cover ([relay]
 * loop_interval) is that code in cover-only mode (CLIENT_O_COVER_ONLY):
 * the [chain] settings, loop cover alone, no message, SOCKS, service or
 * hidden side, and no client role, so the relay is never published as an
 * endpoint. On a node that is a client as well, the relay's loops join
 * the client's: one Poisson process at the sum of both rates. */
bool config_client_opts(const struct ovl_config *c, struct client_opts *co);

/* Write into out (NODE_MAX_PEERS entries) the peers the node dials: every
 * [peer.NAME], then every [bootstrap.NAME] whose id no [peer.NAME] has.
 * Return how many; config_load guarantees they fit. */
unsigned config_dial_peers(const struct ovl_config *c, struct peer_spec *out);

#endif
