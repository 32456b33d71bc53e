/* node_run.c - bring a node up and down: init, start, stop and free
 * everything core owns. The top of core; nothing in core calls it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/admit.h"
#include "core/chanmap.h"
#include "core/link.h"
#include "core/memcap.h"
#include "core/node_run.h"
#include "core/peer.h"
#include "core/timer.h"

/* False for options a node cannot run with. */
static bool node_opts_valid(const struct node_opts *opts)
{
    return opts->aead_suites && opts->rekey_cells >= 16 &&
           opts->rekey_cells <= (UINT64_C(1) << 32) &&
           (opts->rekey_cells & (opts->rekey_cells - 1)) == 0 && opts->max_links &&
           opts->cover_budget <= 100 &&
           !(opts->padding_max_ms && opts->padding_min_ms > opts->padding_max_ms) &&
           opts->reconnect_min_ms <= opts->reconnect_max_ms;
}

int node_init(struct node *n, uv_loop_t *loop, const struct node_opts *opts,
              const struct ovl_identity *id, unsigned roles)
{
    int rc;

    if (!node_opts_valid(opts))
        return OVL_EINVAL;
    n->loop = loop;
    n->opts = *opts;
    n->id = *id;
    n->link_id = *id;
    if ((opts->flags & NODE_O_HIDDEN) && ovl_identity_generate(&n->link_id) != 0)
        return OVL_ECRYPTO;
    n->roles = roles;
    node_id_format(n->node_id, n->id.pk);
    n->tp_env.loop = loop;
    n->tp_env.log = &n->log;
    n->tp_env.sendq_max = opts->sendq_max;
    n->tp_env.idle_timeout_ms = opts->idle_timeout_ms;
    /* The seed is the first half of sk; the secret outlives restarts. */
    ovl_kdf_label(n->tp_env.secret, n->id.sk, "ovl quic secret v1");
    dispatch_init(&n->disp);
    n->started_ms = clock_now_ms();
    n->budget.start_ms = n->started_ms;
    rc = bw_init(&n->bw, &n->tp_env, &n->log, opts->state_dir);
    if (rc == 0)
        rc = bw_apply(&n->bw, &opts->bw);
    if (rc == 0)
        rc = admit_init(n);
    if (rc == 0)
        rc = link_register_handlers(n);
    if (rc == 0)
        rc = chanmap_register_handlers(n);
    return rc;
}

static void node_on_accept(struct tp_listener *lst, struct transport *t)
{
    t->flags |= TP_F_INBOUND;
    link_accept(lst->udata, t);
}

static const struct tp_listen_cb node_listen_cb = {.accept = node_on_accept};

static void node_memcap_cb(uv_timer_t *t)
{
    (void)memcap_check(t->data);
}

int node_start(struct node *n, const char (*uris)[OVL_URI_MAX], unsigned n_uris,
               const struct peer_spec *peers, unsigned n_peers)
{
    unsigned i;
    int rc;

    if (n_uris > NODE_MAX_LISTEN || n_peers > NODE_MAX_PEERS)
        return OVL_EINVAL;
    for (i = 0; i < n_uris; i++) {
        struct tp_listener *lst;

        rc = tp_listen(&n->tp_env, uris[i], &node_listen_cb, n, &lst);
        if (rc) {
            log_error(&n->log, "cannot listen on %s: %s", uris[i], ovl_strerror(rc));
            goto fail;
        }
        n->listeners[n->n_listeners] = lst;
        if (tp_listener_uri(lst, n->listen_uri[n->n_listeners], OVL_URI_MAX) != 0)
            snprintf(n->listen_uri[n->n_listeners], OVL_URI_MAX, "%s", uris[i]);
        log_info(&n->log, "listening on %s", n->listen_uri[n->n_listeners]);
        n->n_listeners++;
    }
    rc = peer_start_all(n, peers, n_peers);
    if (rc)
        goto fail;
    if (n->opts.max_queued) {
        n->memcap_timer = timer_new(n->loop, n);
        if (!n->memcap_timer) {
            rc = OVL_ENOMEM;
            goto fail;
        }
        uv_timer_start(n->memcap_timer, node_memcap_cb, MEMCAP_CHECK_MS, MEMCAP_CHECK_MS);
    }
    return 0;
fail:
    node_stop(n);
    return rc;
}

/* Take the settings of o a running node may change; see node_run.h. */
int node_reconfigure(struct node *n, const struct node_opts *o)
{
    struct node_opts *cur = &n->opts;

    if (!node_opts_valid(o) || n->stopping)
        return OVL_EINVAL;
    if (o->max_queued && !n->memcap_timer) {
        n->memcap_timer = timer_new(n->loop, n);
        if (!n->memcap_timer)
            return OVL_ENOMEM;
        uv_timer_start(n->memcap_timer, node_memcap_cb, MEMCAP_CHECK_MS, MEMCAP_CHECK_MS);
    }
    /* Last of what may fail: the timer above runs harmlessly on the old
     * max_queued when this does. */
    if (memcmp(&o->bw, &cur->bw, sizeof(o->bw)) != 0) {
        int rc = bw_apply(&n->bw, &o->bw);

        if (rc)
            return rc;
        cur->bw = o->bw;
    }
    cur->handshake_timeout_ms = o->handshake_timeout_ms;
    cur->idle_timeout_ms = o->idle_timeout_ms;
    cur->heartbeat_ms = o->heartbeat_ms;
    cur->heartbeat_misses = o->heartbeat_misses;
    cur->max_links = o->max_links;
    cur->max_links_per_block = o->max_links_per_block;
    cur->hs_rate_per_block = o->hs_rate_per_block;
    cur->hs_burst_per_block = o->hs_burst_per_block;
    cur->max_queued = o->max_queued; /* 0: memcap_check does nothing */
    cur->rekey_cells = o->rekey_cells;
    cur->reconnect_min_ms = o->reconnect_min_ms;
    cur->reconnect_max_ms = o->reconnect_max_ms;
    cur->padding_min_ms = o->padding_min_ms;
    cur->padding_max_ms = o->padding_max_ms;
    cur->cover_budget = o->cover_budget;
    n->tp_env.idle_timeout_ms = o->idle_timeout_ms;
    return 0;
}

void node_stop(struct node *n)
{
    struct link *l, *next;
    unsigned i;

    if (n->stopping)
        return;
    n->stopping = true;
    timer_close(&n->memcap_timer);
    for (i = 0; i < n->n_listeners; i++)
        tp_listener_close(n->listeners[i]);
    n->n_listeners = 0;
    peer_stop_all(n);
    for (l = n->links; l; l = next) {
        next = l->next; /* link_close never frees synchronously, but stay safe */
        link_close(l, LC_SHUTDOWN);
    }
    bw_stop(&n->bw); /* after the links: closing, they wait for nothing */
}

void node_free(struct node *n)
{
    bw_free(&n->bw);
    chanmap_free(n);
    admit_free(n);
    free(n->peers);
    n->peers = NULL;
    n->n_peers = 0;
    ovl_identity_wipe(&n->id);
    ovl_identity_wipe(&n->link_id);
    ovl_wipe(n->tp_env.secret, sizeof(n->tp_env.secret));
}
