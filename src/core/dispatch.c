/* dispatch.c - route received cells to the handler registered for their command. */
#include <string.h>

#include "core/dispatch.h"

void dispatch_init(struct dispatcher *d)
{
    memset(d, 0, sizeof(*d));
}

int dispatch_register(struct dispatcher *d, uint8_t cmd, dispatch_fn fn, void *ctx)
{
    if (!fn)
        return OVL_EINVAL;
    if (d->h[cmd].fn)
        return OVL_EEXIST;
    d->h[cmd].fn = fn;
    d->h[cmd].ctx = ctx;
    return 0;
}

void dispatch_unregister(struct dispatcher *d, uint8_t cmd, dispatch_fn fn, void *ctx)
{
    if (d->h[cmd].fn == fn && d->h[cmd].ctx == ctx) {
        d->h[cmd].fn = NULL;
        d->h[cmd].ctx = NULL;
    }
}

void dispatch_cell(struct dispatcher *d, struct link *l, const struct cell *c)
{
    if (!d->h[c->cmd].fn) {
        d->unhandled++;
        return;
    }
    d->h[c->cmd].fn(d->h[c->cmd].ctx, l, c);
}
