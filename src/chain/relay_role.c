/* relay_role.c - the relay role as the node sees it: init, stop and free,
 * the tick and the link observers, wiring the core (relay.c), the exit
 * (exit.c) and the introduction relay (intro.c) together.
 *
 * This is the one file that names both: the core reaches the exit only
 * through r->hooks, which relay_init points at exit_hooks, and the exit
 * builds on the core, so neither of the two depends on the other's file
 * both ways.
 */
#include <stdlib.h>
#include <string.h>

#include "chain/relay_int.h"
#include "core/chanmap.h"
#include "core/link.h"
#include "core/timer.h"
#include "lib/clock.h"

static const char *const drop_names[RD_COUNT] = {
    [RD_UNKNOWN_CHAIN] = "unknown_chain",
    [RD_AUTH] = "auth",
    [RD_BAD_CELL] = "bad_cell",
    [RD_QUEUE_FULL] = "queue_full",
    [RD_REPLAY] = "replay",
    [RD_NO_ROUTE] = "no_route",
    [RD_LIMIT] = "limit",
    [RD_EXPIRED] = "expired",
    [RD_SHARE] = "share",
    [RD_DORMANT] = "dormant",
};

const char *relay_drop_name(enum relay_drop d)
{
    if ((unsigned)d >= RD_COUNT)
        return "unknown";
    return drop_names[d];
}

void relay_opts_defaults(struct relay_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_chains = 65536;
    o->setup_timeout_ms = 10000;
    o->max_lifetime_s = 3600;
    o->exit_queue = 256;
    o->stall_timeout_ms = 5000;
    o->max_streams = 1024;
    o->max_streams_per_chain = 256;
    o->stream_idle_ms = 300000;
    o->max_intros = RELAY_MAX_INTROS;
}

static void relay_tick(uv_timer_t *t)
{
    struct relay *r = t->data;
    uint64_t now = clock_now_ms();
    uint64_t late = now > r->tick_due_ms + LT_LATE_MS ? now - r->tick_due_ms : 0;

    r->tick_due_ms = now + uv_timer_get_repeat(t);
    relay_chains_tick(r, now);
    relay_stalls_tick(r, now, late);
    exit_tick(r, now);
    xstream_tick(r, now);
    intro_tick(r, clock_wall_ms()); /* cookies expire as their hidden node signed them */
}

/* Fill in the shares left at 0 (auto) from max_chains. */
static void relay_opts_shares(struct relay_opts *o)
{
    if (!o->max_chains_per_link)
        o->max_chains_per_link = o->max_chains / 16 > 64 ? o->max_chains / 16 : 64;
    if (!o->max_chains_per_block)
        o->max_chains_per_block =
            o->max_chains / 4 > o->max_chains_per_link ? o->max_chains / 4 : o->max_chains_per_link;
}

static void on_link_opened(void *ctx, struct link *l)
{
    exit_link_opened(ctx, l);
}

static void on_link_closed(void *ctx, struct link *l)
{
    struct relay *r = ctx;

    relay_pauses_link_closed(r, l);
    exit_link_closed(r, l);
}

static void on_link_drained(void *ctx, struct link *l)
{
    relay_pauses_drained(ctx, l);
    xstream_drained(ctx, l);
}

/* The tick's period: it also times out dials and stalls, so it is at
 * most a quarter of either. */
static uint64_t relay_tick_ms(const struct relay_opts *o)
{
    uint64_t tick =
        o->setup_timeout_ms < o->stall_timeout_ms ? o->setup_timeout_ms : o->stall_timeout_ms;

    tick = tick / 4 < RELAY_TICK_MS ? tick / 4 : RELAY_TICK_MS;
    return tick ? tick : 1;
}

static bool relay_opts_valid(const struct relay_opts *o)
{
    return o->max_chains && o->setup_timeout_ms && o->max_lifetime_s && o->exit_queue &&
           o->stall_timeout_ms;
}

int relay_init(struct node *n, const struct relay_opts *o, struct relay **out)
{
    struct link_observer obs = {
        .opened = on_link_opened,
        .closed = on_link_closed,
        .drained = on_link_drained,
    };
    struct relay *r;
    uint64_t tick;
    int rc = OVL_ENOMEM;

    *out = NULL;
    if (!n->dir || !relay_opts_valid(o))
        return OVL_EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return OVL_ENOMEM;
    r->timer = timer_new(n->loop, r);
    r->ssenv = stsock_env_new(n->loop);
    if (!r->timer || !r->ssenv)
        goto fail;
    r->n = n;
    r->o = *o;
    relay_opts_shares(&r->o);
    r->hooks = &exit_hooks;
    r->headroom = relay_headroom(n->opts.sendq_max / (FRAME_CELL_LEN + OVL_FRAME_LENHDR));
    obs.ctx = r;
    rc = chanmap_register_opener(n, CELL_CHAIN_SETUP, relay_on_setup, r);
    if (rc)
        goto fail;
    rc = chanmap_register_opener(n, CELL_CHAIN_INTRO, intro_on_intro, r);
    if (rc)
        goto fail_opener;
    rc = node_observe_links(n, &obs);
    if (rc)
        goto fail_intro;
    tick = relay_tick_ms(o);
    r->tick_due_ms = clock_now_ms() + tick;
    uv_timer_start(r->timer, relay_tick, tick, tick);
    n->relay = r;
    *out = r;
    return 0;
fail_intro:
    chanmap_unregister_opener(n, CELL_CHAIN_INTRO, intro_on_intro, r);
fail_opener:
    chanmap_unregister_opener(n, CELL_CHAIN_SETUP, relay_on_setup, r);
fail:
    timer_close(&r->timer);
    stsock_env_close(&r->ssenv);
    free(r);
    return rc;
}

/* Take o's settings that may change while the role runs; see relay.h. */
int relay_reconfigure(struct relay *r, const struct relay_opts *o)
{
    struct relay_opts no = *o;
    uint64_t tick;

    if (!r || !relay_opts_valid(o) || (r->flags & RELAYF_STOPPED))
        return OVL_EINVAL;
    relay_opts_shares(&no);
    no.exit_queue = r->o.exit_queue; /* sizes the rings of waiting cells */
    no.max_intros = r->o.max_intros;
    tick = relay_tick_ms(&no);
    if (tick != relay_tick_ms(&r->o)) {
        r->tick_due_ms = clock_now_ms() + tick;
        uv_timer_start(r->timer, relay_tick, tick, tick);
    }
    r->o = no;
    return 0;
}

void relay_stop(struct relay *r)
{
    if (!r || (r->flags & RELAYF_STOPPED))
        return;
    r->flags |= RELAYF_STOPPED;
    chanmap_unregister_opener(r->n, CELL_CHAIN_SETUP, relay_on_setup, r);
    chanmap_unregister_opener(r->n, CELL_CHAIN_INTRO, intro_on_intro, r);
    node_unobserve_links(r->n, r);
    xstream_stop(r); /* their RESETs go out on the chains, which end next */
    relay_chains_stop(r); /* and their cookies, with a DESTROY on each delivery */
    exit_stop(r);
    relay_pauses_clear(r); /* links that outlive the role must not stay paused */
    timer_close(&r->timer);
    stsock_env_close(&r->ssenv); /* xstream_stop closed the sockets */
}

void relay_free(struct relay *r)
{
    if (!r)
        return;
    /* Normally empty: relay_stop or the links' closing ended every chain.
     * The links are gone by now, so only memory is released here: the
     * waits first, since they point at the chains whose setups they park. */
    exit_free(r);
    intro_free(r); /* before the chains its points name */
    relay_chains_free(r);
    timer_close(&r->timer); /* only if relay_stop was skipped */
    stsock_env_close(&r->ssenv);
    if (r->n && r->n->relay == r)
        r->n->relay = NULL;
    free(r);
}

void relay_stats(const struct relay *r, struct relay_stats *st)
{
    *st = r->st;
    st->dropped[RD_UNKNOWN_CHAIN] = r->n->ctr.chain_unknown;
    st->bytes_held = relay_chains_bytes(r) + exit_bytes_held(r) + intro_bytes_held(r);
    xstream_stats(r, st);
}
