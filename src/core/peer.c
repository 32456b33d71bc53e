/* peer.c - keep a link up to every configured peer. */
#include <stdlib.h>
#include <string.h>

#include "core/link.h"
#include "core/node.h"
#include "core/peer.h"
#include "core/timer.h"

static void peer_schedule(struct peer *p);

static void peer_dial(struct peer *p)
{
    struct node *n = p->node;
    int rc;

    if (n->stopping || p->link)
        return;
    p->attempts++;
    rc = link_dial(n, p->spec.uri, p->spec.pk, p, &p->link);
    if (rc) {
        p->failures++;
        p->last_error = rc;
        log_warn(&n->log, "peer %s: cannot dial %s: %s", p->spec.name, p->spec.uri,
                 ovl_strerror(rc));
        peer_schedule(p);
    }
}

static void peer_timer_cb(uv_timer_t *t)
{
    peer_dial(t->data);
}

/* Arm the reconnect timer with the current backoff (+-20% jitter), then double it. */
static void peer_schedule(struct peer *p)
{
    const struct node_opts *o = &p->node->opts;
    uint64_t delay = p->backoff_ms;
    uint32_t span = (uint32_t)(delay * 2 / 5); /* 40% wide window around delay */

    if (p->node->stopping)
        return;
    if (span > 0)
        delay = delay - span / 2 + ovl_random_uniform(span + 1);
    uv_timer_start(p->timer, peer_timer_cb, delay, 0);
    p->backoff_ms =
        p->backoff_ms * 2 > o->reconnect_max_ms ? o->reconnect_max_ms : p->backoff_ms * 2;
}

/* The link observer: a peer's own link opened or closed. */
static void peer_link_opened(void *ctx, struct link *l)
{
    struct peer *p = l->peer;

    (void)ctx;
    if (!p || p->link != l)
        return;
    p->backoff_ms = p->node->opts.reconnect_min_ms;
    p->last_error = 0;
    p->last_reason = LC_NONE;
}

static void peer_link_closed(void *ctx, struct link *l)
{
    struct peer *p = l->peer;

    (void)ctx;
    if (!p || p->link != l)
        return;
    p->link = NULL;
    p->last_reason = l->reason;
    p->last_error = l->close_err;
    if (!(l->flags & LINK_F_WAS_OPEN))
        p->failures++;
    peer_schedule(p);
}

static const struct link_observer peer_observer = {
    .opened = peer_link_opened,
    .closed = peer_link_closed,
};

int peer_start_all(struct node *n, const struct peer_spec *specs, unsigned count)
{
    struct link_observer obs = peer_observer;
    unsigned i;
    int rc;

    if (count == 0)
        return 0;
    n->peers = calloc(count, sizeof(*n->peers));
    if (!n->peers)
        return OVL_ENOMEM;
    obs.ctx = n->peers;
    rc = node_observe_links(n, &obs);
    if (rc)
        goto fail;
    for (i = 0; i < count; i++) {
        struct peer *p = &n->peers[n->n_peers];

        /* One config may name every bootstrap of a set, us among them. */
        if (ovl_equal(specs[i].pk, n->id.pk, OVL_ED25519_PK))
            continue;
        p->timer = timer_new(n->loop, p);
        if (!p->timer) {
            rc = OVL_ENOMEM;
            goto fail_timers;
        }
        p->node = n;
        p->spec = specs[i];
        p->backoff_ms = n->opts.reconnect_min_ms;
        n->n_peers++;
    }
    for (i = 0; i < n->n_peers; i++)
        peer_dial(&n->peers[i]);
    return 0;
fail_timers:
    peer_stop_all(n);
    return rc;
fail:
    free(n->peers);
    n->peers = NULL;
    return rc;
}

void peer_stop_all(struct node *n)
{
    if (n->peers)
        node_unobserve_links(n, n->peers);
    for (unsigned i = 0; i < n->n_peers; i++)
        timer_close(&n->peers[i].timer);
}
