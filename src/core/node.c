/* node.c - the node context: option defaults, link observers, the node-wide
 * cover budget, the roles' names. Bringing a node up and down is node_run.c. */
#include <stdlib.h>
#include <string.h>

#include "core/node.h"

void node_opts_defaults(struct node_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->aead_suites = ovl_aead_available();
    o->handshake_timeout_ms = 5000;
    o->idle_timeout_ms = 0;
    o->heartbeat_ms = 1000;
    o->heartbeat_misses = 3;
    o->max_links = 1024;
    o->max_links_per_block = 64;
    o->hs_rate_per_block = 50;
    o->hs_burst_per_block = 200;
    o->sendq_max = 1048576;
    o->max_queued = 64u << 20;
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
    uint64_t now = clock_now_ms(), cells, cover;

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

int node_observe_links(struct node *n, const struct link_observer *obs)
{
    if (n->n_observers >= NODE_MAX_OBSERVERS)
        return OVL_ENOMEM;
    n->observers[n->n_observers++] = *obs;
    return 0;
}

void node_unobserve_links(struct node *n, const void *ctx)
{
    for (unsigned i = 0; i < n->n_observers; i++) {
        if (n->observers[i].ctx != ctx)
            continue;
        memmove(&n->observers[i], &n->observers[i + 1],
                (n->n_observers - i - 1) * sizeof(n->observers[0]));
        n->n_observers--;
        return;
    }
}

void node_roles_format(char *out, size_t outlen, unsigned roles)
{
    static const struct {
        const char *name;
        unsigned bit;
    } order[] = {{"bootstrap", ROLE_BOOTSTRAP}, {"relay", ROLE_RELAY}, {"client", ROLE_CLIENT}};
    size_t used = 0;

    if (!out || outlen == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (!(roles & order[i].bit))
            continue;
        int k = snprintf(out + used, outlen - used, "%s%s", used ? "," : "", order[i].name);
        if (k < 0 || (size_t)k >= outlen - used)
            return; /* truncated but terminated */
        used += (size_t)k;
    }
    if (used == 0)
        snprintf(out, outlen, "none");
}
