/* control.h - the control socket server (protocol: docs/CONTROL.md).
 *
 * A unix stream socket, mode 0600, on the node's loop. Each request is a
 * kvmsg ("key=value" lines, blank line ends it) naming a command; each reply
 * is a kvmsg ending in errno=N. Malformed, oversized or unknown requests get
 * an error reply; a client that exceeds the caps is disconnected. At most
 * CONTROL_MAX_CLIENTS clients at once, each with a bounded input buffer that
 * grows on demand: CONTROL_REQ_MAX bytes for every request except "send",
 * which may carry a whole message (control_send_max()).
 *
 * Some replies are deferred ("dir-chain" waits for a bootstrap): the client
 * stays connected and its later requests wait, so replies keep the request
 * order; if the client goes away first the directory request is cancelled.
 * A "subscribe" turns the connection into a stream of events: each
 * message is taken from the inbox as it enters and pushed to one
 * subscriber that has room for it (docs/CONTROL.md).
 */
#ifndef OVL_CONTROL_CONTROL_H
#define OVL_CONTROL_CONTROL_H

#include <stdint.h>

#include "client/client.h"
#include "core/node.h"
#include "lib/err.h"

#define CONTROL_PROTO_VERSION 1
#define CONTROL_MAX_CLIENTS   16
#define CONTROL_REQ_MAX       4096  /* bytes of one request (other than send) */
#define CONTROL_REQ_PAIRS     32    /* lines of one request (other than send) */
#define CONTROL_IDLE_MS       30000 /* a client silent this long is disconnected */
#define CONTROL_DATA_CHUNK    1000  /* base64 characters per data= line */

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

/* Take the [chain] and [client] settings the commands need: the size cap of
 * "send" (from max_message) and the defaults of "dir-chain" (length,
 * backups). Without it: max_message 1048576, length 3, backups 2. */
void control_set_client_opts(struct control *c, const struct client_opts *o);

struct kvbuf;

/* The application's reload behind "reload": re-read the configuration
 * and apply it, adding what it did to out as key=value pairs; 0, or a
 * negative error with *err saying why (a string fn keeps until its next
 * call). */
typedef int (*control_reload_fn)(void *arg, struct kvbuf *out, const char **err);

/* Have "reload" call fn(arg, ...); without it "reload" answers that the
 * process cannot reload. */
void control_on_reload(struct control *c, control_reload_fn fn, void *arg);

/* Return the largest "send" request accepted for a max_message cap M:
 * 4*ceil(M/3) base64 characters, 6 bytes per CONTROL_DATA_CHUNK characters
 * for "data=" and the newline, plus 64 KiB for everything else. */
uint64_t control_send_max(uint64_t max_message);

/* Return the server's counters. */
const struct control_stats *control_stats(const struct control *c);

#endif
