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

/* The peers' observer context: one for the node's life, whatever array
 * n->peers is (peer_reconfigure replaces it). */
static const char peer_ctx;

static const struct link_observer peer_observer = {
    .opened = peer_link_opened,
    .closed = peer_link_closed,
    .ctx = (void *)&peer_ctx,
};

/* Watch links for the peers, once. */
static int peer_observe(struct node *n)
{
    for (unsigned i = 0; i < n->n_observers; i++)
        if (n->observers[i].ctx == &peer_ctx)
            return 0;
    return node_observe_links(n, &peer_observer);
}

int peer_start_all(struct node *n, const struct peer_spec *specs, unsigned count)
{
    unsigned i;
    int rc;

    if (count == 0)
        return 0;
    n->peers = calloc(count, sizeof(*n->peers));
    if (!n->peers)
        return OVL_ENOMEM;
    rc = peer_observe(n);
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
    node_unobserve_links(n, &peer_ctx);
    for (unsigned i = 0; i < n->n_peers; i++)
        timer_close(&n->peers[i].timer);
}

/* Return the index of the running peer with spec s's id and address, or -1. */
static int peer_find(const struct node *n, const struct peer_spec *s)
{
    for (unsigned i = 0; i < n->n_peers; i++)
        if (ovl_equal(n->peers[i].spec.pk, s->pk, OVL_ED25519_PK) &&
            strcmp(n->peers[i].spec.uri, s->uri) == 0)
            return (int)i;
    return -1;
}

/* Move the running peer old into place p: its timer and link follow. */
static void peer_move(struct peer *p, struct peer *old, const struct peer_spec *s)
{
    struct peer_spec spec = *s; /* s may be p's own: the name may have changed */

    *p = *old;
    p->spec = spec;
    p->timer->data = p;
    if (p->link)
        p->link->peer = p;
    old->timer = NULL;
}

/* Stop the running peer p: no more dials; its link, if any, stays open as
 * a link of no peer. */
static void peer_drop(struct peer *p)
{
    timer_close(&p->timer);
    if (p->link)
        p->link->peer = NULL;
    p->link = NULL;
}

/* Fill np with the peers of specs (want[i]: index of the running peer
 * kept for specs[i], or -1 for a new one with a fresh timer); return how
 * many, or OVL_ENOMEM with nothing changed. */
static int peer_plan(struct node *n, const struct peer_spec *specs, unsigned count, struct peer *np,
                     int *want)
{
    unsigned k = 0;

    for (unsigned i = 0; i < count; i++) {
        if (ovl_equal(specs[i].pk, n->id.pk, OVL_ED25519_PK))
            continue;
        want[k] = peer_find(n, &specs[i]);
        for (unsigned j = 0; j < k && want[k] >= 0; j++)
            if (want[j] == want[k])
                want[k] = -1; /* named twice: one keeps the running peer */
        np[k].spec = specs[i];
        if (want[k] < 0 && !(np[k].timer = timer_new(n->loop, &np[k]))) {
            for (unsigned j = 0; j < k; j++)
                if (want[j] < 0)
                    timer_close(&np[j].timer);
            return OVL_ENOMEM;
        }
        k++;
    }
    return (int)k;
}

/* Make specs the node's peers; see peer.h. */
int peer_reconfigure(struct node *n, const struct peer_spec *specs, unsigned count)
{
    struct peer *np = NULL;
    int want[NODE_MAX_PEERS];
    int k, rc;

    if (count > NODE_MAX_PEERS || (count && !specs) || n->stopping)
        return OVL_EINVAL;
    if (count && !(np = calloc(count, sizeof(*np))))
        return OVL_ENOMEM;
    k = peer_plan(n, specs, count, np, want);
    rc = k > 0 ? peer_observe(n) : k;
    if (rc) {
        for (int j = 0; j < k; j++)
            if (want[j] < 0)
                timer_close(&np[j].timer);
        free(np);
        return rc;
    }
    for (int j = 0; j < k; j++) {
        if (want[j] >= 0) {
            peer_move(&np[j], &n->peers[want[j]], &np[j].spec);
        } else {
            np[j].node = n;
            np[j].backoff_ms = n->opts.reconnect_min_ms;
        }
    }
    for (unsigned i = 0; i < n->n_peers; i++)
        if (n->peers[i].timer) /* not moved: no longer configured */
            peer_drop(&n->peers[i]);
    free(n->peers);
    n->peers = k ? np : (free(np), NULL);
    n->n_peers = (unsigned)k;
    for (int j = 0; j < k; j++)
        if (want[j] < 0)
            peer_dial(&n->peers[j]);
    return 0;
}
