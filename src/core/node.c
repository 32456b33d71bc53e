/* node.c - the node context: start, stop and free everything core owns. */
#include <stdlib.h>
#include <string.h>

#include "core/chanmap.h"
#include "core/link.h"
#include "core/node.h"
#include "core/peer.h"

static const char *const reason_names[LC_REASON_COUNT] = {
    [LC_NONE] = "none",
    [LC_SHUTDOWN] = "shutdown",
    [LC_PEER_CLOSED] = "peer_closed",
    [LC_IO_ERROR] = "io_error",
    [LC_HS_TIMEOUT] = "hs_timeout",
    [LC_HS_MALFORMED] = "hs_malformed",
    [LC_HS_AUTH] = "hs_auth",
    [LC_HS_SUITE] = "hs_suite",
    [LC_HS_UNCONFIRMED] = "hs_unconfirmed",
    [LC_OVERSIZED] = "oversized",
    [LC_BAD_FRAME] = "bad_frame",
    [LC_REPLAY] = "replay",
    [LC_REORDER] = "reorder",
    [LC_TAMPERED] = "tampered",
    [LC_BAD_CELL] = "bad_cell",
    [LC_QUEUE_FULL] = "queue_full",
    [LC_LIMIT] = "limit",
    [LC_IDLE] = "idle",
    [LC_DEAD] = "dead",
};

const char *link_close_reason_name(enum link_close_reason r)
{
    if ((unsigned)r >= LC_REASON_COUNT || !reason_names[r])
        return "unknown";
    return reason_names[r];
}

void node_opts_defaults(struct node_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->aead_suites = ovl_aead_available();
    o->handshake_timeout_ms = 5000;
    o->idle_timeout_ms = 0;
    o->heartbeat_ms = 1000;
    o->heartbeat_misses = 3;
    o->max_links = 1024;
    o->sendq_max = 1048576;
    o->rekey_cells = 1048576;
    o->reconnect_min_ms = 1000;
    o->reconnect_max_ms = 60000;
    o->padding_min_ms = 1500;
    o->padding_max_ms = 9500;
    o->cover_budget = 100;
}

#define BUDGET_PERIOD_MS 10000 /* the window's start moves halfway up once a period */

bool node_cover_allowed(struct node *n)
{
    struct node_budget *b = &n->budget;
    uint64_t now = node_now_ms(), cells, cover;

    if (n->opts.cover_budget >= 100)
        return true;
    /* The window holds the last period and half the one before, and so on:
     * recent traffic weighs most, and no per-cell bookkeeping is needed. */
    for (unsigned i = 0; now - b->start_ms >= BUDGET_PERIOD_MS && i < 64; i++) {
        b->cells += (n->ctr.cells_out - b->cells) / 2;
        b->cover += (n->ctr.cover_out - b->cover) / 2;
        b->start_ms += BUDGET_PERIOD_MS;
    }
    if (now - b->start_ms >= BUDGET_PERIOD_MS)
        b->start_ms = now;
    cells = n->ctr.cells_out - b->cells;
    cover = n->ctr.cover_out - b->cover;
    if ((cover + 1) * 100 > (uint64_t)n->opts.cover_budget * (cells + 1)) {
        n->ctr.cover_skipped++;
        return false;
    }
    return true;
}

uint64_t node_now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

uint64_t node_now_us(void)
{
    return uv_hrtime() / 1000u;
}

uint64_t node_wall_ms(void)
{
    uv_timeval64_t tv;

    if (uv_gettimeofday(&tv) != 0)
        return 0;
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

int node_observe_links(struct node *n, const struct link_observer *obs)
{
    if (n->n_observers >= NODE_MAX_OBSERVERS)
        return OVL_ENOMEM;
    n->observers[n->n_observers++] = *obs;
    return 0;
}

int node_init(struct node *n, uv_loop_t *loop, const struct node_opts *opts,
              const struct ovl_identity *id, unsigned roles)
{
    if (!opts->aead_suites || opts->rekey_cells < 16 || opts->rekey_cells > (UINT64_C(1) << 32) ||
        (opts->rekey_cells & (opts->rekey_cells - 1)) != 0 || !opts->max_links ||
        opts->cover_budget > 100 ||
        (opts->padding_max_ms && opts->padding_min_ms > opts->padding_max_ms))
        return OVL_EINVAL;
    n->loop = loop;
    n->opts = *opts;
    n->id = *id;
    n->roles = roles;
    node_id_format(n->node_id, n->id.pk);
    n->tp_env.loop = loop;
    n->tp_env.log = &n->log;
    n->tp_env.sendq_max = opts->sendq_max;
    n->tp_env.idle_timeout_ms = opts->idle_timeout_ms;
    /* The seed is the first half of sk; the secret outlives restarts. */
    ovl_kdf_label(n->tp_env.secret, n->id.sk, "ovl quic secret v1");
    dispatch_init(&n->disp);
    n->started_ms = node_now_ms();
    n->budget.start_ms = n->started_ms;
    return link_register_handlers(n);
}

static void node_on_accept(struct tp_listener *lst, struct transport *t)
{
    t->flags |= TP_F_INBOUND;
    link_accept(lst->udata, t);
}

static const struct tp_listen_cb node_listen_cb = {.accept = node_on_accept};

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
    return 0;
fail:
    node_stop(n);
    return rc;
}

void node_stop(struct node *n)
{
    struct link *l, *next;
    unsigned i;

    if (n->stopping)
        return;
    n->stopping = true;
    for (i = 0; i < n->n_listeners; i++)
        tp_listener_close(n->listeners[i]);
    n->n_listeners = 0;
    peer_stop_all(n);
    for (l = n->links; l; l = next) {
        next = l->next; /* link_close never frees synchronously, but stay safe */
        link_close(l, LC_SHUTDOWN);
    }
}

void node_free(struct node *n)
{
    chanmap_free(n);
    free(n->peers);
    n->peers = NULL;
    n->n_peers = 0;
    ovl_identity_wipe(&n->id);
    ovl_wipe(n->tp_env.secret, sizeof(n->tp_env.secret));
}
