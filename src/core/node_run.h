/* node_run.h - bringing a node up and down: init, start, stop, free.
 *
 * The top of core: it builds on every other core module (links, peers,
 * the chanmap, the dispatcher), and none of them calls back into it. The
 * app, and tests that run nodes, call these in order: node_init, then the
 * roles' init (they register handlers), node_start, the loop, node_stop
 * (the loop ends once every close callback has run), then node_free.
 */
#ifndef OVL_CORE_NODE_RUN_H
#define OVL_CORE_NODE_RUN_H

#include "core/node.h"
#include "core/peer.h"

/* Set up n on loop: copy opts, take over id (n wipes it at node_free), make
 * the node ID and register the link-level cell handlers. */
int node_init(struct node *n, uv_loop_t *loop, const struct node_opts *opts,
              const struct ovl_identity *id, unsigned roles) OVL_WUR;

/* Listen on every URI in uris (count n_uris) and dial every peer; roles must
 * have registered their handlers before. Fails (and closes what it opened)
 * if any listen fails. */
int node_start(struct node *n, const char (*uris)[OVL_URI_MAX], unsigned n_uris,
               const struct peer_spec *peers, unsigned n_peers) OVL_WUR;

/* Take from o the settings a running node may change, for every link
 * from now on (each open link at its next timer: heartbeat, idle, padding):
 * timeouts, heartbeats, padding, link caps and handshake rates, max_queued,
 * rekey_cells (links set up from now on), reconnect backoff,
 * cover_budget, and the bandwidth limits and accounting (bw_apply: at
 * once, the buckets keeping what they hold within the new burst). The
 * rest of o is left as node_init took it: the AEAD
 * suites, transports, prefer, flags, sendq_max and state_dir. 0, or
 * OVL_EINVAL (options node_init would refuse) / OVL_ENOMEM with nothing
 * changed. */
int node_reconfigure(struct node *n, const struct node_opts *o) OVL_WUR;

/* Close every listener, link and timer; the loop ends once their close
 * callbacks have run. Safe to call twice. */
void node_stop(struct node *n);

/* Release what node_init and node_start allocated; call after the loop ended. */
void node_free(struct node *n);

#endif
