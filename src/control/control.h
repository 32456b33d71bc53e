/* control.h - the control socket server (protocol: docs/CONTROL.md).
 *
 * A unix stream socket, mode 0600, on the node's loop. Each request is a
 * kvmsg ("key=value" lines, blank line ends it) naming a command; each reply
 * is a kvmsg ending in errno=N. Malformed, oversized or unknown requests get
 * an error reply; a client that exceeds the caps is disconnected. At most
 * CONTROL_MAX_CLIENTS clients at once, each with a bounded input buffer.
 */
#ifndef OVL_CONTROL_CONTROL_H
#define OVL_CONTROL_CONTROL_H

#include "core/node.h"
#include "lib/err.h"

#define CONTROL_PROTO_VERSION 1
#define CONTROL_MAX_CLIENTS 16
#define CONTROL_REQ_MAX 4096  /* bytes of one request */
#define CONTROL_REQ_PAIRS 32
#define CONTROL_IDLE_MS 30000 /* a client silent this long is disconnected */

struct control;

/* Counters of the control server, shown by "status". */
struct control_stats {
    uint64_t requests, errors, clients_refused, clients_dropped;
};

/* Bind path (removing a stale socket nobody listens on; OVL_EEXIST if a live
 * ovld owns it), chmod 0600 and start accepting. *out is NULL on failure. */
int control_start(struct node *n, const char *path, struct control **out) OVL_WUR;

/* Close the listening socket and every client, unlink the path; frees c
 * asynchronously. NULL-safe. */
void control_stop(struct control *c);

/* Return the server's counters. */
const struct control_stats *control_stats(const struct control *c);

#endif
