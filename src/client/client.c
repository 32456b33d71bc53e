/* client.c - the client role: init and stop, the tick, link events,
 * delivery cells for us (under the delivery IDs exits open to us, into
 * the inbox, acknowledged), and what the public functions show. Chains
 * are cchain.c's, sending is send.c's, the send queue sendq.c's, the
 * inbox msg.c's.
 *
 * One periodic tick drives every deadline (chain setup timeouts, chain
 * replacement and expiry, build backoff, message retransmission and
 * deadlines, reassembly timeouts, tombstones, idle delivery IDs), so no
 * per-object timer has to be closed asynchronously.
 */
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "chain/body.h"
#include "client/client_int.h"
#include "core/chanmap.h"
#include "core/timer.h"

#define TICK_MS 100

/* ---- link events, the tick, delivery cells ---- */

static void on_link_opened(void *ctx, struct link *l)
{
    struct client *c = ctx;

    if (!(c->flags & CF_STOPPED))
        cchain_link_opened(c, l);
}

static void on_link_closed(void *ctx, struct link *l)
{
    struct client *c = ctx;

    if (!(c->flags & CF_STOPPED))
        cchain_link_closed(c, l);
}

static void on_link_drained(void *ctx, struct link *l)
{
    struct client *c = ctx;
    struct cline *line;

    if (c->flags & CF_STOPPED)
        return;
    svc_drained(c, l);
    DL_FOREACH(c->lines, line)
    {
        if (line->current && line->current->link_serial == l->serial) {
            send_pump(c); /* the messages, then every line's streams */
            return;
        }
    }
}

/* Forget d (its chanmap slot already gone or removed by the caller). Only
 * the first cell of a delivery ID goes to on_deliver: the chanmap routes
 * the later ones to deliv_cell. */
static void deliv_free(struct deliv *d)
{
    if (d->n_streams)
        svc_way_gone(d->c, d);
    DL_DELETE(d->c->delivs, d);
    free(d);
}

/* Take one delivery cell's data (len bytes, hostile) that came on d: a
 * stream record for svc.c, or a fragment for the inbox, acknowledged
 * back the way it came when it completes a message. */
static void deliv_input(struct deliv *d, const uint8_t *data, size_t len)
{
    struct client *c = d->c;
    const struct dir_onion *keys;
    unsigned n_keys = 0;
    uint8_t ack[MSG_ACK_LEN];
    struct msg_from from = {0};
    enum msg_rx_result r;

    d->last_ms = from.now_ms = clock_now_ms();
    if (len > 0 && data[0] == MSG_STREAM_TYPE) {
        svc_input(c, d, data, len);
        return;
    }
    deliv_from(d, &from);
    from.wall_ms = clock_wall_ms();
    keys = dir_onion_keys(c->n->dir, &n_keys);
    r = msg_rx_fragment(&c->rx, &from, data, len, keys, n_keys, ack);
    /* A lost acknowledgement is made good by the sender's retransmission. */
    if ((r == MSG_RX_DONE || r == MSG_RX_AGAIN) && deliv_send(d, ack, MSG_ACK_LEN) == 0)
        c->st.acks_sent++;
    if (r == MSG_RX_DONE) {
        d->flags |= DF_KEPT;
        client_tell_inbox(c);
    }
}

static void deliv_cell(void *obj, struct link *l, const struct cell *cl)
{
    struct deliv *d = obj;
    struct client *c = d->c;

    if (cl->cmd == CELL_CHAIN_DESTROY) { /* the exit is done with this ID */
        chanmap_del(c->n, l, d->id);
        deliv_free(d);
        return;
    }
    if (cl->cmd != CELL_CHAIN_DELIVER || (c->flags & CF_STOPPED))
        return;
    c->st.cells_in++;
    deliv_input(d, cl->payload, cl->len);
}

static void deliv_closed(void *obj, struct link *l, uint32_t id)
{
    (void)l;
    (void)id;
    deliv_free(obj);
}

static const struct chain_owner deliv_owner = {.cell = deliv_cell, .link_closed = deliv_closed};

/* The chanmap's opener for CHAIN_DELIVER under an ID nobody owns: take
 * the ID if the link has fewer than CLIENT_DELIV_PER_LINK open, so a
 * stream of made-up IDs cannot each leave state behind, and if the link's
 * other end may have opened it (chanmap_add checks its direction bit:
 * an exit opens delivery IDs with chanmap_alloc on its side). */
static void on_deliver(void *ctx, struct link *l, const struct cell *cl)
{
    struct client *c = ctx;
    struct deliv *d;
    unsigned n = 0;

    if (c->flags & CF_STOPPED)
        return;
    DL_FOREACH(c->delivs, d)
    {
        n += d->l == l;
    }
    d = n < CLIENT_DELIV_PER_LINK ? calloc(1, sizeof(*d)) : NULL;
    if (d && chanmap_add(c->n, l, cl->chain_id, &deliv_owner, d) != 0) {
        free(d);
        d = NULL;
    }
    if (!d) {
        c->st.cells_in++;
        c->st.refused_ids++;
        return;
    }
    d->c = c;
    d->l = l;
    d->id = cl->chain_id;
    DL_APPEND(c->delivs, d);
    deliv_cell(d, l, cl);
}

/* INTRO_DELIVER(handle, data) from the introduction relay of ch (args
 * len bytes, hostile): the data goes to the delivery the handle names on
 * ch, made on its first cell if ch has fewer than CLIENT_DELIV_PER_LINK
 * (the relay's own cap per cookie is as large). */
static void intro_deliver(struct cchain *ch, const uint8_t *args, size_t len)
{
    struct client *c = ch->c;
    struct deliv *d;
    unsigned n = 0;

    if (len < BODY_HANDLE || len - BODY_HANDLE > BODY_DATA_MAX) {
        c->st.dropped_bad++;
        return;
    }
    c->st.intro_cells_in++;
    DL_FOREACH(c->delivs, d)
    {
        if ((d->flags & DF_INTRO) && d->chain == ch->serial) {
            if (memcmp(d->handle, args, BODY_HANDLE) == 0)
                break;
            n++;
        }
    }
    if (!d && n < CLIENT_DELIV_PER_LINK && (d = calloc(1, sizeof(*d)))) {
        d->c = c;
        d->flags = DF_INTRO;
        d->chain = ch->serial;
        d->id = ++c->next_deliv ? c->next_deliv : ++c->next_deliv;
        memcpy(d->handle, args, BODY_HANDLE);
        DL_APPEND(c->delivs, d);
    }
    if (!d) {
        c->st.refused_ids++;
        return;
    }
    deliv_input(d, args + BODY_HANDLE, len - BODY_HANDLE);
}

/* c->intro_cb: a body from the introduction relay at the end of ch. */
static void client_intro_body(struct cchain *ch, uint8_t cmd, const uint8_t *args, size_t len)
{
    if (cmd == BODY_INTRO_DELIVER)
        intro_deliver(ch, args, len);
    else if (!hidden_body(ch, cmd, args, len))
        ch->c->st.dropped_bad++;
}

/* Forget delivery IDs idle for reassembly_timeout, or replay_window once
 * they delivered a message (all of them with now UINT64_MAX); the exit's
 * next cell on one opens it again. The way back of a stream stays, but
 * not past the end of the chain an introduction relay's delivery came
 * on: the relay forgot its handle. */
static void deliv_expire(struct client *c, uint64_t now)
{
    struct deliv *d, *tmp;

    DL_FOREACH_SAFE(c->delivs, d, tmp)
    {
        bool gone = (d->flags & DF_INTRO) && !cchain_find(c, d->chain);

        if (gone || ((!d->n_streams || now == UINT64_MAX) &&
                     now - d->last_ms >= ((d->flags & DF_KEPT) ? c->o.replay_window_ms
                                                               : c->o.reassembly_timeout_ms))) {
            if (!(d->flags & DF_INTRO))
                chanmap_del(c->n, d->l, d->id);
            deliv_free(d);
        }
    }
}

static void on_tick(uv_timer_t *t)
{
    struct client *c = t->data;
    uint64_t now = clock_now_ms();

    msg_rx_expire(&c->rx, now, clock_wall_ms());
    deliv_expire(c, now);
    sendq_tick(c, now);
    cchain_tick(c, now);
    socks_tick(c, now);
    lines_tick(c, now);
    hidden_tick(c, now);
    cchain_maybe_build(c);
    svc_tick(c, now);
    if (c->queue)
        send_pump(c);
}

/* A cover-only client (a relay's loop cover) has loop cover and nothing
 * that would make it an endpoint or send anything else. */
static bool cover_only_valid(const struct client_opts *o)
{
    return !(o->flags & CLIENT_O_COVER_ONLY) ||
           (o->loop_interval_ms > 0 && !o->cover_interval_ms && !o->constant_rate && !o->n_socks &&
            !o->n_services && !o->intros);
}

/* Set up the entry guards ([client] guards > 0) from <data_dir>/guards:
 * 0 or OVL_ENOMEM; a file that cannot be used is logged and replaced. */
static int guards_init(struct client *c)
{
    struct node *n = c->n;
    struct guard_opts go = {.want = c->o.guards,
                            .down_ms = c->o.guard_down_ms,
                            .life_ms = c->o.guard_life_ms,
                            .distinct_subnets = c->o.distinct_subnets,
                            .by_capacity = c->o.by_capacity,
                            .suites = (uint8_t)n->opts.aead_suites};
    int rc;

    if (!c->o.guards)
        return 0;
    c->guards = malloc(sizeof(*c->guards));
    if (!c->guards)
        return OVL_ENOMEM;
    memcpy(go.self, n->id.pk, OVL_ED25519_PK);
    guard_init(c->guards, &go);
    rc = guard_open(c->guards, n->loop, n->opts.state_dir);
    if (rc == 0)
        log_info(&n->log, "client: %u entry guards read from disk", c->guards->n);
    else if (rc != OVL_ENOENT)
        log_warn(&n->log, "client: the guards on disk are not used: %s", ovl_strerror(rc));
    return 0;
}

/* Free the guards (after the loop ended: their file's last write is done). */
static void guards_free(struct client *c)
{
    if (c->guards) {
        guard_close(c->guards);
        free(c->guards);
        c->guards = NULL;
    }
}

static bool opts_valid(const struct client_opts *o)
{
    return !(o->flags & ~(unsigned)CLIENT_O_COVER_ONLY) && cover_only_valid(o) &&
           o->retransmit_ms > 0 && o->deadline_ms > 0 &&
           (o->source == CHAIN_SOURCE_BOOTSTRAP || o->source == CHAIN_SOURCE_LOCAL) &&
           o->length >= 1 && o->length <= ONION_MAX_HOPS && o->backups <= DIR_MAX_BACKUPS &&
           o->lifetime_ms >= 1000 && o->setup_timeout_ms > 0 && o->max_message > 0 &&
           o->max_message <= UINT32_MAX - MSG_OVERHEAD_MAX && o->inbox_messages > 0 &&
           o->inbox_bytes > 0 && o->send_queue > 0 && o->reassembly_timeout_ms > 0 &&
           o->constant_rate <= 10000 && o->replay_window_ms > 0 && o->tombstones > 0 &&
           o->max_chains > 0 && o->chain_idle_ms > 0 && o->n_services <= CLIENT_MAX_SERVICES &&
           o->svc_max_streams > 0 && o->svc_max_per_chain > 0 && o->svc_idle_ms > 0 &&
           o->intros <= IDESC_MAX_INTRO && o->idesc_life_ms >= 10000 &&
           o->idesc_life_ms <= IDESC_MAX_LIFE_MS && o->guards <= GUARD_WANT_MAX &&
           o->guard_down_ms >= 1000 && o->guard_life_ms >= 1000 && o->choices >= 1 &&
           o->choices <= CLIENT_MAX_CHOICES;
}

void client_opts_defaults(struct client_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->source = CHAIN_SOURCE_BOOTSTRAP;
    o->length = 3;
    o->backups = 2;
    o->lifetime_ms = 600000;
    o->setup_timeout_ms = 10000;
    o->max_message = 1048576;
    o->inbox_messages = 1024;
    o->inbox_bytes = 67108864;
    o->send_queue = 1024;
    o->reassembly_timeout_ms = 60000;
    o->retransmit_ms = 2000;
    o->deadline_ms = 30000;
    o->distinct_subnets = true;
    o->replay_window_ms = 600000;
    o->tombstones = 65536;
    o->max_chains = 8;
    o->chain_idle_ms = 60000;
    o->svc_max_streams = 1024;
    o->svc_max_per_chain = 256;
    o->svc_idle_ms = 300000;
    o->idesc_life_ms = 600000;
    o->guards = 3;
    o->guard_down_ms = 20ull * 86400000;
    o->guard_life_ms = 30ull * 86400000;
    o->choices = 4;
}

int client_init(struct node *n, const struct client_opts *o, struct client **out)
{
    struct link_observer obs = {
        .opened = on_link_opened,
        .closed = on_link_closed,
        .drained = on_link_drained,
    };
    struct client *c;
    int rc;

    *out = NULL;
    if (!n->dir || !opts_valid(o))
        return OVL_EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return OVL_ENOMEM;
    c->n = n;
    c->o = *o;
    if (o->flags & CLIENT_O_COVER_ONLY)
        c->flags |= CF_COVER;
    cchain_line_add(c, &c->main);
    ovl_random(c->class_secret, sizeof(c->class_secret));
    c->chain_ready_cb = send_pump;
    c->view_cb = socks_view;
    c->stream_cb = socks_back;
    c->rec_cb = socks_rec_back;
    c->unreach_cb = socks_unreachable;
    c->intro_cb = client_intro_body;
    rc = hidden_init(c);
    if (rc)
        goto fail;
    rc = guards_init(c);
    if (rc)
        goto fail;
    rc = msg_rx_init(&c->rx, o, &c->st);
    if (rc)
        goto fail;
    c->tick = timer_new(n->loop, c);
    c->ssenv = stsock_env_new(n->loop);
    rc = c->tick && c->ssenv ? send_open(c) : OVL_ENOMEM;
    if (rc)
        goto fail;
    obs.ctx = c;
    rc = node_observe_links(n, &obs);
    if (rc)
        goto fail;
    /* Nothing is delivered to a relay's loop cover: it takes no IDs. */
    rc = (c->flags & CF_COVER) ? 0 : chanmap_register_opener(n, CELL_CHAIN_DELIVER, on_deliver, c);
    if (rc)
        goto fail_observer;
    rc = socks_start(c);
    if (rc)
        goto fail_opener;
    uv_timer_start(c->tick, on_tick, TICK_MS, TICK_MS);
    send_start(c);
    n->client = c;
    *out = c;
    return 0;
fail_opener:
    socks_stop(c);
    chanmap_unregister_opener(n, CELL_CHAIN_DELIVER, on_deliver, c);
fail_observer:
    node_unobserve_links(n, c);
fail:
    send_close(c);
    timer_close(&c->tick);
    stsock_env_close(&c->ssenv);
    msg_rx_free(&c->rx);
    hidden_free(c);
    guards_free(c);
    free(c);
    return rc;
}

/* Take the chain, sending, service and guard settings of o (those the
 * plans do not: client_reconfigure). */
static void client_take(struct client *c, const struct client_opts *o)
{
    struct client_opts *cur = &c->o;

    cur->source = o->source;
    cur->length = o->length;
    cur->backups = o->backups;
    cur->lifetime_ms = o->lifetime_ms;
    cur->setup_timeout_ms = o->setup_timeout_ms;
    cur->choices = o->choices;
    cur->distinct_subnets = o->distinct_subnets;
    cur->by_capacity = o->by_capacity;
    cur->send_queue = o->send_queue;
    cur->retransmit_ms = o->retransmit_ms;
    cur->deadline_ms = o->deadline_ms;
    cur->max_chains = o->max_chains;
    cur->chain_idle_ms = o->chain_idle_ms;
    cur->guard_down_ms = o->guard_down_ms;
    cur->guard_life_ms = o->guard_life_ms;
    memcpy(cur->services, o->services, sizeof(o->services));
    cur->n_services = o->n_services;
    cur->svc_max_streams = o->svc_max_streams;
    cur->svc_max_per_chain = o->svc_max_per_chain;
    cur->svc_idle_ms = o->svc_idle_ms;
    if (c->guards) {
        c->guards->o.down_ms = o->guard_down_ms;
        c->guards->o.life_ms = o->guard_life_ms;
        c->guards->o.distinct_subnets = o->distinct_subnets;
        c->guards->o.by_capacity = o->by_capacity;
    }
}

/* Take o's settings that may change while the role runs; see client.h. */
int client_reconfigure(struct client *c, const struct client_opts *o)
{
    struct socks_lis *nl[CLIENT_MAX_SOCKS];
    struct send_plan sp;
    unsigned fresh;
    int rc;

    if (!c || !o || !opts_valid(o) || (c->flags & CF_STOPPED) ||
        (o->flags & CLIENT_O_COVER_ONLY) != (c->o.flags & CLIENT_O_COVER_ONLY) ||
        o->deadline_ms >= c->o.reassembly_timeout_ms)
        return OVL_EINVAL;
    rc = socks_plan(c, o, nl, &fresh);
    if (rc)
        return rc;
    rc = send_plan(c, o, &sp);
    if (rc) {
        socks_unplan(nl, fresh);
        return rc;
    }
    socks_commit(c, o, nl, fresh);
    client_take(c, o);
    send_commit(c, o, &sp);
    return 0;
}

void client_stop(struct client *c)
{
    if (!c || (c->flags & CF_STOPPED))
        return;
    c->flags |= CF_STOPPED;
    socks_stop(c);
    svc_stop(c);
    chanmap_unregister_opener(c->n, CELL_CHAIN_DELIVER, on_deliver, c);
    deliv_expire(c, UINT64_MAX);
    node_unobserve_links(c->n, c);
    lines_stop(c);
    cchain_destroy_all(c);
    while (c->queue)
        sendq_fail(c->queue, "the client is stopping");
    while (c->unacked)
        sendq_fail(c->unacked, "the client is stopping");
    timer_close(&c->tick);
    stsock_env_close(&c->ssenv); /* socks_stop and svc_stop closed the sockets */
    send_close(c);
}

void client_free(struct client *c)
{
    if (!c)
        return;
    /* After client_stop nothing is left here but the inbox and reassembly;
     * never touch the node (it may be gone already). */
    msg_rx_free(&c->rx);
    hidden_free(c);
    guards_free(c);
    ovl_wipe(c, sizeof(*c));
    free(c);
}

int client_reply(struct client *c, const uint8_t id[CLIENT_MSG_ID], const uint8_t *msg, size_t len,
                 uint8_t rid[CLIENT_MSG_ID])
{
    uint8_t frag[OVL_CELL_PAYLOAD];
    struct msg_from path, at;
    struct deliv *d;
    struct link *l;
    uint8_t *blob;
    size_t blob_len, n, i;
    int rc;

    if (c->flags & CF_COVER)
        return OVL_EPERM; /* it took no message to answer */
    if (len > CLIENT_REPLY_MAX || len > c->o.max_message)
        return OVL_ETOOBIG;
    rc = msg_reply_seal(&c->rx, id, msg, len, rid, &blob, &blob_len, &path);
    if (rc)
        return rc;
    DL_FOREACH(c->delivs, d)
    {
        deliv_from(d, &at);
        if (at.link == path.link && at.chain == path.chain)
            break;
    }
    /* All or nothing: a reply is never half sent. */
    n = msg_frag_count(blob_len);
    l = d ? deliv_link(d) : NULL;
    rc = !l ? OVL_ECLOSED : link_can_send(l, (unsigned)n) ? 0 : OVL_EAGAIN;
    for (i = 0; rc == 0 && i < n; i++) {
        rc = deliv_send(d, frag, msg_frag_build(frag, rid, blob, blob_len, i));
        c->st.cells_out += DELIV_OUT(d, rc);
    }
    free(blob);
    c->st.replies_sent += rc == 0;
    return rc;
}

void client_on_inbox(struct client *c, void (*fn)(void *arg), void *arg)
{
    if (c) {
        c->inbox_cb = fn;
        c->inbox_arg = arg;
    }
}

size_t client_recv(struct client *c, struct client_msg **out, size_t max)
{
    return c ? msg_rx_recv(&c->rx, out, max) : 0;
}

void client_each_chain(const struct client *c,
                       void (*fn)(void *arg, const struct client_chain_info *ci), void *arg)
{
    const struct cchain *ch;
    uint64_t now = clock_now_ms();

    if (!c)
        return;
    DL_FOREACH(c->chains, ch)
    {
        struct client_chain_info ci;
        unsigned i;

        memset(&ci, 0, sizeof(ci));
        ci.serial = ch->serial;
        ci.state = cchain_state_name(ch->state);
        ci.age_ms = now - ch->created_ms;
        ci.expires_in_ms = ch->expires_ms > now ? ch->expires_ms - now : 0;
        ci.length = ch->length;
        for (i = 0; i < ch->length; i++)
            memcpy(ci.hops[i], ch->route.hops[i][0].id_pk, OVL_ED25519_PK);
        ci.cells_out = ch->cells_out;
        ci.cells_in = ch->cells_in;
        ci.messages = ch->messages;
        lines_label(ch->line, ci.cls);
        ci.streams = ch->line->current == ch ? ch->line->streams : 0;
        fn(arg, &ci);
    }
}

void client_each_guard(const struct client *c,
                       void (*fn)(void *arg, const struct client_guard_info *gi), void *arg)
{
    const struct guard *first = NULL;
    uint64_t now = clock_wall_ms();

    if (!c || !c->guards)
        return;
    (void)guard_usable(c->guards, now, NULL, NULL, &first, 1);
    for (unsigned i = 0; i < c->guards->n; i++) {
        const struct guard *g = &c->guards->g[i];
        struct client_guard_info gi;

        memset(&gi, 0, sizeof(gi));
        memcpy(gi.id, g->id, OVL_ED25519_PK);
        gi.state = !c->guards->have_list                          ? "unknown"
                   : !(g->flags & GF_LISTED)                      ? "unlisted"
                   : (g->flags & GF_FAILING) && now < g->retry_ms ? "failing"
                                                                  : "up";
        gi.age_ms = now > g->added_ms ? now - g->added_ms : 0;
        gi.bad_ms = g->bad_since_ms && now > g->bad_since_ms ? now - g->bad_since_ms : 0;
        gi.first = g == first;
        fn(arg, &gi);
    }
}

void client_hists(const struct client *c, const struct hist **setup, const struct hist **rtt)
{
    *setup = &c->setup_hist;
    *rtt = &c->rtt_hist;
}

void client_stats(const struct client *c, struct client_stats *st)
{
    const struct cchain *ch;
    const struct deliv *d;

    memset(st, 0, sizeof(*st));
    if (!c)
        return;
    *st = c->st;
    if (c->guards) {
        st->guards_sampled = c->guards->st.sampled;
        st->guards_dropped_down = c->guards->st.dropped_down;
        st->guards_dropped_old = c->guards->st.dropped_old;
        st->guard_failures = c->guards->st.failures;
        st->guards_loaded = c->guards->st.loaded;
        st->guards = c->guards->n;
    }
    st->inbox_messages = c->rx.in_count;
    st->inbox_bytes = c->rx.in_bytes;
    st->send_queued = c->n_queue;
    if (c->busy_from_us)
        st->busy_us += clock_now_us() - c->busy_from_us;
    st->setup_us_p50 = samples_quantile(&c->setup_us, 500);
    st->setup_us_p90 = samples_quantile(&c->setup_us, 900);
    st->setup_samples = c->setup_us.n;
    st->rtt_us_p50 = samples_quantile(&c->rtt_us, 500);
    st->rtt_us_p90 = samples_quantile(&c->rtt_us, 900);
    st->rtt_samples = c->rtt_us.n;
    DL_COUNT(c->chains, ch, st->chains);
    DL_COUNT(c->delivs, d, st->deliveries);
    st->tombstones = c->rx.count[MSG_DONE];
    st->cover_permille = st->cells_out ? (uint32_t)(st->cover_out * 1000 / st->cells_out) : 0;
    st->bytes_held = sendq_bytes(c) + msg_rx_held(&c->rx) +
                     (uint64_t)st->chains * sizeof(struct cchain) + socks_bytes_held(c) +
                     (uint64_t)c->n_exits * sizeof(struct desc) +
                     (uint64_t)c->n_lines * sizeof(struct cline) + svc_bytes_held(c);
}
