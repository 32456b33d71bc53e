/* peer.c - keep a link up to every configured peer. */
#include <stdlib.h>
#include <string.h>

#include "core/link.h"
#include "core/peer.h"

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
    uv_timer_start(&p->timer, peer_timer_cb, delay, 0);
    p->backoff_ms = p->backoff_ms * 2 > o->reconnect_max_ms ? o->reconnect_max_ms
                                                            : p->backoff_ms * 2;
}

int peer_start_all(struct node *n, const struct peer_spec *specs, unsigned count)
{
    unsigned i;

    if (count == 0)
        return 0;
    n->peers = calloc(count, sizeof(*n->peers));
    if (!n->peers)
        return OVL_ENOMEM;
    for (i = 0; i < count; i++) {
        struct peer *p = &n->peers[i];

        p->node = n;
        p->spec = specs[i];
        p->backoff_ms = n->opts.reconnect_min_ms;
        uv_timer_init(n->loop, &p->timer);
        p->timer.data = p;
        n->n_peers++;
    }
    for (i = 0; i < count; i++)
        peer_dial(&n->peers[i]);
    return 0;
}

void peer_stop_all(struct node *n)
{
    unsigned i;

    for (i = 0; i < n->n_peers; i++) {
        uv_timer_stop(&n->peers[i].timer);
        if (!uv_is_closing((uv_handle_t *)&n->peers[i].timer))
            uv_close((uv_handle_t *)&n->peers[i].timer, NULL);
    }
}

void peer_link_opened(struct peer *p, struct link *l)
{
    if (p->link != l)
        return;
    p->backoff_ms = p->node->opts.reconnect_min_ms;
    p->last_error = 0;
    p->last_reason = LC_NONE;
}

void peer_link_closed(struct peer *p, struct link *l, enum link_close_reason reason, int err)
{
    if (p->link != l)
        return;
    p->link = NULL;
    p->last_reason = reason;
    p->last_error = err;
    if (!l->was_open)
        p->failures++;
    peer_schedule(p);
}
