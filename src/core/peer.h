/* peer.h - configured outbound peers: dial at start, redial with backoff.
 *
 * A peer owns at most one link at a time (peer->link, and the link names
 * its peer in link->peer); the peers watch links as a link observer, and
 * when their link closes they schedule the next dial with
 * exponential backoff between opts.reconnect_min_ms and reconnect_max_ms,
 * with +-20% jitter so restarted nodes do not redial in lockstep.
 */
#ifndef OVL_CORE_PEER_H
#define OVL_CORE_PEER_H

#include <stdint.h>

#include <uv.h>

#include "core/link_reason.h"
#include "lib/crypto.h"
#include "lib/uri.h"

#define PEER_NAME_MAX 32

struct node;
struct link;

/* A configured outbound peer: dialed at start and redialed with backoff. */
struct peer_spec {
    char name[PEER_NAME_MAX];
    char uri[OVL_URI_MAX];
    uint8_t pk[OVL_ED25519_PK];
};

/* Runtime state of a configured peer. */
struct peer {
    struct node *node;
    struct peer_spec spec;
    struct link *link; /* current link, or NULL */
    uv_timer_t *timer; /* reconnect backoff (core/timer.h) */
    uint32_t backoff_ms;
    uint64_t attempts;
    uint64_t failures;
    int last_error; /* last dial/close error, 0 if none */
    enum link_close_reason last_reason;
};

/* Copy specs into n->peers (but one naming our own identity: a config may
 * list every bootstrap of a set, us among them), watch links for them and
 * dial each one. */
int peer_start_all(struct node *n, const struct peer_spec *specs, unsigned count) OVL_WUR;

/* Make specs (count of them) the configured peers of a running node, as
 * peer_start_all would, keeping every running peer whose id and address
 * are still there (its link, backoff and counters; a renamed one takes
 * its new name), dialing the new ones, and dropping the rest: a dropped
 * peer is no longer dialed, and its link, if any, stays open as any
 * link does until it closes. 0, or OVL_ENOMEM / OVL_EINVAL with nothing
 * changed. */
int peer_reconfigure(struct node *n, const struct peer_spec *specs, unsigned count) OVL_WUR;

/* Stop watching links and close every reconnect timer (the array is freed
 * by node_free). */
void peer_stop_all(struct node *n);

#endif
