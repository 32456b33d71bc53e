/* chanmap.h - which object owns each link-local chain ID.
 *
 * A chain crosses a link under a 32-bit ID that is local to that link. The
 * side that opens a chain on a link picks the ID: the link's initiator (the
 * dialer) uses IDs with the top bit set, the responder IDs with it clear, so
 * the two ends never collide. ID 0 means "no chain" (link-level cells).
 *
 * The chanmap is the dispatcher's handler for every chain-level command
 * (32..63; chanmap_register_handlers, from node_init). A cell with a
 * registered (link, ID) goes to its owner's cell() callback; one with an
 * unknown, non-zero ID goes to the opener registered for its command
 * (chanmap_register_opener: e.g. the relay accepts a CHAIN_SETUP that opens
 * a new chain, the client a CHAIN_DELIVER under an exit's delivery ID);
 * anything else is dropped and counted in node->ctr.chain_unknown.
 *
 * When a link closes, every slot on it is removed and its owner's
 * link_closed() is called once per slot, before the link is freed (the
 * chanmap is the first link observer, registered by node_init, so this
 * happens before any role hears of the close). Owners must not use the
 * link after that call.
 */
#ifndef OVL_CORE_CHANMAP_H
#define OVL_CORE_CHANMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/cell.h"
#include "core/dispatch.h"
#include "lib/err.h"

struct node;
struct link;

/* An owner of chain slots; one static table per kind of owner. */
struct chain_owner {
    /* A cell for (l, c->chain_id); the cell is lent for the call. */
    void (*cell)(void *obj, struct link *l, const struct cell *c);
    /* l is closing: the slot (l, id) is already gone. */
    void (*link_closed)(void *obj, struct link *l, uint32_t id);
};

/* Register (l, id) for obj. OVL_EEXIST if taken, OVL_EINVAL for id 0 or an
 * ID whose direction bit belongs to the other end of l, OVL_ENOMEM. */
int chanmap_add(struct node *n, struct link *l, uint32_t id, const struct chain_owner *owner,
                void *obj) OVL_WUR;

/* Pick a free random ID for our side of l and register it; *id is 0 on failure. */
int chanmap_alloc(struct node *n, struct link *l, const struct chain_owner *owner, void *obj,
                  uint32_t *id) OVL_WUR;

/* Remove (l, id) if present; never calls the owner. */
void chanmap_del(struct node *n, struct link *l, uint32_t id);

/* Return the object registered for (l, id), or NULL. */
void *chanmap_find(struct node *n, struct link *l, uint32_t id);

/* True when id may be opened by the remote end of l (its direction bit). */
bool chanmap_id_is_remote(const struct link *l, uint32_t id);

/* Route a chain-level cell to its owner; false if (l, id) is not registered. */
bool chanmap_deliver(struct node *n, struct link *l, const struct cell *c);

/* Make the chanmap the dispatcher's handler for every chain-level command
 * and a link observer (for link_closed). */
int chanmap_register_handlers(struct node *n) OVL_WUR;

/* Handle chain-level cells of command cmd whose (link, ID) nobody owns yet
 * with fn (one opener per command). OVL_EINVAL for a command that is not
 * chain-level, OVL_EEXIST when cmd has an opener. */
int chanmap_register_opener(struct node *n, uint8_t cmd, dispatch_fn fn, void *ctx) OVL_WUR;

/* Remove cmd's opener if it is fn with ctx. */
void chanmap_unregister_opener(struct node *n, uint8_t cmd, dispatch_fn fn, void *ctx);

/* Remove every slot of l, calling each owner's link_closed(). */
void chanmap_link_closed(struct node *n, struct link *l);

/* Return the number of registered slots. */
uint32_t chanmap_count(const struct node *n);

/* Free every slot without calling owners (node_free). */
void chanmap_free(struct node *n);

#endif
