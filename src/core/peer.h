/* peer.h - configured outbound peers: dial at start, redial with backoff.
 *
 * struct peer lives in node.h (the control server reports on it). A peer
 * owns at most one link at a time (peer->link); the link tells the peer when
 * it opens and when it closes, and the peer schedules the next dial with
 * exponential backoff between opts.reconnect_min_ms and reconnect_max_ms,
 * with +-20% jitter so restarted nodes do not redial in lockstep.
 */
#ifndef OVL_CORE_PEER_H
#define OVL_CORE_PEER_H

#include "core/node.h"

/* Copy specs into n->peers and dial each one. */
int peer_start_all(struct node *n, const struct peer_spec *specs, unsigned count) OVL_WUR;

/* Stop every reconnect timer (closes them; the array is freed by node_free). */
void peer_stop_all(struct node *n);

/* Tell p that its link l finished the handshake. */
void peer_link_opened(struct peer *p, struct link *l);

/* Tell p that its link l closed for reason/err; schedules a redial. */
void peer_link_closed(struct peer *p, struct link *l, enum link_close_reason reason, int err);

#endif
