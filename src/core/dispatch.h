/* dispatch.h - the one dispatcher: routes every received cell by command.
 *
 * Each link hands its decrypted cells here; roles (bootstrap, relay, client)
 * and the link layer itself register one handler per command at start-up.
 * A cell whose command nobody registered is dropped and counted.
 */
#ifndef OVL_CORE_DISPATCH_H
#define OVL_CORE_DISPATCH_H

#include <stdint.h>

#include "core/cell.h"
#include "lib/err.h"

struct link;

/* A handler. The cell is lent for the duration of the call. The handler may
 * close the link (link_close); the link stays valid until the call returns. */
typedef void (*dispatch_fn)(void *ctx, struct link *l, const struct cell *c);

struct dispatcher {
    struct {
        dispatch_fn fn;
        void *ctx;
    } h[CELL_CMD_COUNT];
    uint64_t unhandled; /* cells dropped for want of a handler */
};

/* Clear every handler. */
void dispatch_init(struct dispatcher *d);

/* Register fn for cmd; OVL_EEXIST if cmd already has a handler. */
int dispatch_register(struct dispatcher *d, uint8_t cmd, dispatch_fn fn, void *ctx) OVL_WUR;

/* Remove cmd's handler if it is fn with ctx (so a role's init can undo
 * what it registered, and a role's free what it did); otherwise nothing. */
void dispatch_unregister(struct dispatcher *d, uint8_t cmd, dispatch_fn fn, void *ctx);

/* Route c to its handler, or count it as unhandled. */
void dispatch_cell(struct dispatcher *d, struct link *l, const struct cell *c);

#endif
