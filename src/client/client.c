/* client.c - the client role: chains, sending cells, delivery cells (the
 * send queue and acknowledgements are in sendq.c).
 *
 * One periodic tick drives every deadline (chain setup timeouts, chain
 * replacement and expiry, build backoff, reassembly timeouts), so no
 * per-object timer has to be closed asynchronously. Messages are sent in
 * queue order on the current chain; a message's fragments may straddle a
 * chain replacement, since the receiver reassembles by message ID.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "chain/body.h"
#include "chain/onion.h"
#include "client/client_int.h"
#include "core/chanmap.h"
#include "core/link.h"
#include "dir/dir.h"
#include "dir/select.h"

#define TICK_MS              100
#define BACKOFF_MIN_MS       250
#define BACKOFF_MAX_MS       2000 /* well inside a message's deadline */
#define RETIRE_GRACE_MS      2000 /* a replaced chain lingers for late backward cells */
#define NO_DESTROY           (-1)
#define REPLACE_AT(lifetime) ((lifetime) / 5 * 4)
#define RATE_BURST           8  /* constant-rate slots made up at once after a stall */
#define PUMP_BURST           64 /* cells wrapped before the loop runs (writes, reads) */

static void chain_cell(void *obj, struct link *l, const struct cell *cl);
static void chain_link_closed(void *obj, struct link *l, uint32_t id);
static int chain_fwd_send(struct cchain *ch, struct link *l, unsigned hops, const uint8_t *body);

static const struct chain_owner client_chain_owner = {
    .cell = chain_cell,
    .link_closed = chain_link_closed,
};

static const char *const chain_state_names[] = {
    [CH_DIR] = "building", [CH_CONNECTING] = "building", [CH_SETUP] = "building",
    [CH_READY] = "ready",  [CH_RETIRING] = "retiring",   [CH_REPAIR] = "repairing",
};

/* ---- chains: teardown ---- */

/* Forget ch; reason >= 0 sends CELL_CHAIN_DESTROY with it (enum
 * chain_destroy_reason) to the first hop. */
static void chain_destroy(struct cchain *ch, int reason)
{
    struct client *c = ch->c;
    struct node *n = c->n;
    unsigned i;

    dir_cancel(n->dir, ch);
    if (ch->chain_id) {
        struct link *l = link_by_serial(n, ch->link_serial);

        if (l) {
            if (reason >= 0 && l->state == LINK_OPEN) {
                struct cell cl = {.chain_id = ch->chain_id, .cmd = CELL_CHAIN_DESTROY, .len = 1};

                cl.payload[0] = (uint8_t)reason;

                if (link_send(l, &cl) != 0)
                    log_debug(&n->log, "client: chain %u: DESTROY not sent", ch->serial);
            }
            chanmap_del(n, l, ch->chain_id);
        }
    }
    DL_DELETE(c->chains, ch);
    if (c->current == ch)
        c->current = NULL;
    if (c->building == ch)
        c->building = NULL;
    for (i = 0; i < ONION_MAX_HOPS; i++)
        onion_keys_wipe(&ch->keys[i]);
    ovl_wipe(ch, sizeof(*ch));
    free(ch);
}

/* Remove entry k of position p (avail[p] > 0 when k is 0): a backup, or
 * with k = 0 the hop in use, whose place its first backup takes. */
static void route_drop(struct dir_chain *route, uint8_t avail[ONION_MAX_HOPS], unsigned p,
                       unsigned k)
{
    memmove(&route->hops[p][k], &route->hops[p][k + 1], (avail[p] - k) * sizeof(route->hops[p][k]));
    avail[p]--;
}

/* 1 + the position of r whose hop is pk, or 0. A chain never carries a
 * message to one of its own relays: that relay would see the route and
 * the delivery both. */
static unsigned route_find(const struct dir_chain *r, unsigned length, const uint8_t *pk)
{
    for (unsigned p = 0; p < length; p++)
        if (memcmp(r->hops[p][0].id_pk, pk, OVL_ED25519_PK) == 0)
            return p + 1;
    return 0;
}

/* Leave pk out of route r: drop it from every position's backups, and
 * move a backup into a position it holds. OVL_ENOENT when none is left. */
static int route_avoid(struct dir_chain *r, uint8_t avail[ONION_MAX_HOPS], unsigned length,
                       const uint8_t *pk)
{
    for (unsigned p = 0; p < length; p++) {
        for (unsigned k = avail[p]; k > 0; k--)
            if (memcmp(r->hops[p][k].id_pk, pk, OVL_ED25519_PK) == 0)
                route_drop(r, avail, p, k);
        if (memcmp(r->hops[p][0].id_pk, pk, OVL_ED25519_PK) == 0) {
            if (avail[p] == 0)
                return OVL_ENOENT;
            route_drop(r, avail, p, 0);
        }
    }
    return 0;
}

/* A hop told us position p (ch->broken - 1) is gone: keep the route for
 * the next build with p's first backup moved into its place. */
static void chain_plan_repair(struct cchain *ch)
{
    struct client *c = ch->c;
    unsigned p = ch->broken - 1;

    if (!ch->broken || p >= ch->length || ch->avail[p] == 0 || c->has_repair)
        return;
    c->repair = ch->route;
    memcpy(c->repair_avail, ch->avail, sizeof(c->repair_avail));
    route_drop(&c->repair, c->repair_avail, p, 0);
    c->has_repair = true;
    c->next_build_ms = 0; /* no backoff: the rest of the route is known good */
}

/* Cells sent on chain serial may be lost: send again what they carried. */
static void chain_requeue(struct client *c, uint32_t serial)
{
    struct out_msg *m;

    /* A half-sent message goes again whole; the receiver ignores
     * duplicates. */
    DL_FOREACH(c->queue, m)
    {
        if (m->chain_serial == serial && m->next_frag < m->nfrags)
            m->next_frag = 0;
    }
    /* Sent whole but not acknowledged: again on the next chain. */
    DL_FOREACH(c->unacked, m)
    {
        if (m->chain_serial == serial)
            m->retry_ms = 0;
    }
}

/* A chain broke (or could not be built): forget it, back off the next
 * build, and fail the queue when builds keep failing. */
static void chain_fail(struct cchain *ch, const char *why, bool send_destroy)
{
    struct client *c = ch->c;
    uint32_t serial = ch->serial;

    c->st.chains_failed++;
    log_info(&c->n->log, "client: chain %u failed: %s", serial, why);
    chain_plan_repair(ch);
    chain_destroy(ch, send_destroy ? DESTROY_R_NONE : NO_DESTROY);
    chain_requeue(c, serial);
    if (!c->has_repair) {
        c->next_build_ms = clock_now_ms() + c->backoff_ms;
        c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    }
    if (!c->current)
        c->fails++; /* messages wait for the next chain until their deadline */
}

/* No route leaves ch->avoid out: fail the messages to it (they would
 * have to cross it), not the rest of the queue, and this build. */
static void chain_avoid_failed(struct cchain *ch)
{
    struct out_msg *m, *tmp;

    DL_FOREACH_SAFE(ch->c->queue, m, tmp)
    {
        if (memcmp(m->dest, ch->avoid, OVL_ED25519_PK) == 0)
            sendq_fail(m, "the destination is a relay of every route on offer");
    }
    chain_fail(ch, "no route leaves the destination out", false);
}

/* ---- chains: building ---- */

/* Send the setup on the open first-hop link l. */
static void chain_send_setup(struct cchain *ch, struct link *l)
{
    struct client *c = ch->c;
    struct cell cl;
    int rc;

    rc = chanmap_alloc(c->n, l, &client_chain_owner, ch, &ch->chain_id);
    if (rc) {
        chain_fail(ch, ovl_strerror(rc), false);
        return;
    }
    ch->link_serial = l->serial;
    memset(&cl, 0, sizeof(cl));
    cl.chain_id = ch->chain_id;
    cl.cmd = CELL_CHAIN_SETUP;
    cl.len = ONION_HDR_LEN;
    memcpy(cl.payload, ch->hdr, ONION_HDR_LEN);
    rc = link_send(l, &cl);
    if (rc) {
        chain_fail(ch, ovl_strerror(rc), false);
        return;
    }
    ch->cells_out++;
    c->st.cells_out++;
    ch->setup_us = clock_now_us();
    ch->state = CH_SETUP;
    ch->deadline_ms = clock_now_ms() + c->o.setup_timeout_ms;
}

/* Fill the hop infos of hops from.. from the route and build their setup
 * header (keys[from..] receive their keys, counters start at zero). */
static int chain_onion(struct cchain *ch, unsigned from)
{
    struct client *c = ch->c;
    uint8_t opk[ONION_MAX_HOPS][OVL_X25519_LEN];
    struct onion_hop_info info[ONION_MAX_HOPS];
    unsigned i, j;

    memset(info, 0, sizeof(info));
    for (i = from; i < ch->length; i++) {
        const struct desc *d = &ch->route.hops[i][0];

        j = i - from;
        memcpy(opk[j], d->onion_pk, OVL_X25519_LEN);
        info[j].type = i + 1 < ch->length ? ONION_HOP_RELAY : ONION_HOP_EXIT;
        info[j].suite = (uint8_t)ovl_aead_pick(d->suites & c->n->opts.aead_suites);
        if (!info[j].suite)
            return OVL_EUNSUPP;
        info[j].lifetime_s = c->o.lifetime_ms / 1000 + 60;
        if (i + 1 < ch->length)
            memcpy(info[j].next, ch->route.hops[i + 1][0].id_pk, OVL_ED25519_PK);
        onion_keys_wipe(&ch->keys[i]);
        ch->fwd_ctr[i] = ch->back_next[i] = 0;
    }
    return onion_setup_build(ch->hdr, (const uint8_t(*)[OVL_X25519_LEN])opk, info,
                             ch->length - from, ch->keys + from);
}

/* The route is known: make the onion and reach the first hop. */
static void chain_connect(struct cchain *ch)
{
    struct client *c = ch->c;
    struct node *n = c->n;
    const struct desc *d0 = &ch->route.hops[0][0];
    struct link *l;
    int rc;

    if (route_find(&ch->route, ch->length, n->id.pk)) {
        chain_fail(ch, "route goes through ourselves", false);
        return;
    }
    if (ch->has_avoid && route_avoid(&ch->route, ch->avail, ch->length, ch->avoid) != 0) {
        chain_avoid_failed(ch);
        return;
    }
    rc = chain_onion(ch, 0);
    if (rc) {
        chain_fail(ch, ovl_strerror(rc), false);
        return;
    }
    ch->state = CH_CONNECTING;
    ch->deadline_ms = clock_now_ms() + c->o.setup_timeout_ms;
    l = link_find(n, d0->id_pk);
    if (l) {
        chain_send_setup(ch, l);
        return;
    }
    rc = link_dial_any(n, d0->uris, d0->n_uris < DESC_MAX_URIS ? d0->n_uris : DESC_MAX_URIS,
                       d0->id_pk, &l);
    if (rc) {
        chain_fail(ch, "cannot dial the first hop", false);
        return;
    }
    ch->link_serial = l->serial; /* the observer's opened() continues */
}

static void on_dir_chain(void *arg, int err, const struct dir_chain *route)
{
    struct cchain *ch = arg;

    if (err) {
        chain_fail(ch, ovl_strerror(err), false);
        return;
    }
    if (route->length != ch->c->o.length || route->backups > DIR_MAX_BACKUPS) {
        chain_fail(ch, "the bootstrap sent a chain of the wrong shape", false);
        return;
    }
    ch->route = *route;
    ch->length = route->length;
    memset(ch->avail, (int)route->backups, sizeof(ch->avail));
    chain_connect(ch);
}

/* Pick ch->length distinct relays from list by select.h (never ourselves,
 * only relays we share an AEAD suite with). */
static int pick_route(struct cchain *ch, const struct desc *relays, unsigned count)
{
    struct client *c = ch->c;
    const struct desc **cand;
    unsigned n = 0, i;

    cand = calloc(count ? count : 1, sizeof(*cand));
    if (!cand)
        return OVL_ENOMEM;
    for (i = 0; i < count; i++)
        if ((relays[i].flags & DESC_RELAY) &&
            memcmp(relays[i].id_pk, c->n->id.pk, OVL_ED25519_PK) != 0 &&
            (!ch->has_avoid || memcmp(relays[i].id_pk, ch->avoid, OVL_ED25519_PK) != 0) &&
            (relays[i].suites & c->n->opts.aead_suites))
            cand[n++] = &relays[i];
    if (select_relays(cand, n, c->o.length, c->o.distinct_subnets, c->o.by_capacity) <
        c->o.length) {
        free(cand);
        return OVL_ENOENT;
    }
    memset(&ch->route, 0, sizeof(ch->route));
    for (i = 0; i < c->o.length; i++)
        ch->route.hops[i][0] = *cand[i];
    free(cand);
    ch->route.length = ch->length = c->o.length;
    return 0;
}

static void on_dir_list(void *arg, int err, const struct desc *relays, unsigned count)
{
    struct cchain *ch = arg;
    int rc = err ? err : pick_route(ch, relays, count);

    if (rc == OVL_ENOENT && ch->has_avoid)
        chain_avoid_failed(ch);
    else if (rc)
        chain_fail(ch, rc == OVL_ENOENT ? "not enough relays" : ovl_strerror(rc), false);
    else
        chain_connect(ch);
}

static void chain_build(struct client *c)
{
    struct cchain *ch = calloc(1, sizeof(*ch));
    int rc;

    if (!ch) {
        c->next_build_ms = clock_now_ms() + c->backoff_ms;
        return;
    }
    ch->c = c;
    ch->serial = ++c->next_serial;
    ch->state = CH_DIR;
    ch->created_ms = clock_now_ms();
    DL_APPEND(c->chains, ch);
    c->building = ch;
    if (c->has_avoid) {
        ch->has_avoid = true;
        memcpy(ch->avoid, c->avoid, OVL_ED25519_PK);
        c->has_avoid = false;
        c->st.avoid_builds++;
    }
    if (c->has_repair) {
        /* Same hops but the failed one: one setup round trip, no directory. */
        c->has_repair = false;
        c->st.chains_repaired++;
        ch->route = c->repair;
        ch->length = c->repair.length;
        memcpy(ch->avail, c->repair_avail, sizeof(ch->avail));
        log_info(&c->n->log, "client: chain %u: repairing with a backup relay", ch->serial);
        chain_connect(ch);
        return;
    }
    if (c->o.source == CHAIN_SOURCE_LOCAL)
        rc = dir_request_list(c->n->dir, on_dir_list, ch);
    else
        rc = dir_request_chain(c->n->dir, c->o.length, c->o.backups, c->n->id.pk, on_dir_chain, ch);
    if (rc)
        chain_fail(ch, ovl_strerror(rc), false);
}

/* Start a chain when none is ready or the current one is due for
 * replacement, unless one is being built or we are backing off. */
static void maybe_build(struct client *c)
{
    uint64_t now = clock_now_ms();
    bool want;

    if (c->stopped || c->building || now < c->next_build_ms)
        return;
    if (c->current)
        want = c->has_avoid || now >= c->current->ready_ms + REPLACE_AT(c->o.lifetime_ms);
    else
        want = c->n_queue > 0 || ((c->n->roles & ROLE_CLIENT) && dir_registered(c->n->dir));
    if (want)
        chain_build(c);
}

int client_new_chain(struct client *c)
{
    if (c->stopped)
        return OVL_ECLOSED;
    if (c->building)
        return OVL_EAGAIN;
    c->next_build_ms = 0; /* asked for: no backoff */
    chain_build(c);
    return 0;
}

/* The exit answered the setup: new messages use this chain now. */
static void chain_ready(struct cchain *ch)
{
    struct client *c = ch->c;
    struct cchain *old = c->current;
    uint64_t now = clock_now_ms();

    if (ch->state == CH_REPAIR) {
        log_info(&c->n->log, "client: chain %u repaired", ch->serial);
    } else {
        ch->ready_ms = now;
        ch->expires_ms = now + c->o.lifetime_ms;
        if (ch->setup_us)
            samples_add(&c->setup_us, (uint32_t)(clock_now_us() - ch->setup_us));
        c->st.chains_built++;
        log_info(&c->n->log, "client: chain %u ready (%u hops)", ch->serial, ch->length);
    }
    ch->state = CH_READY;
    ch->broken = 0;
    ch->deadline_ms = 0;
    ovl_wipe(ch->hdr, sizeof(ch->hdr));
    if (c->building == ch)
        c->building = NULL;
    c->current = ch;
    c->has_avoid = false; /* send_next asks again if this chain has the destination too */
    c->fails = 0;
    c->backoff_ms = BACKOFF_MIN_MS;
    if (old && old != ch) {
        old->state = CH_RETIRING;
        old->deadline_ms = now + RETIRE_GRACE_MS;
        c->st.chains_replaced++;
    }
    client_pump(c);
}

/* Hop o lost its next hop and kept its part of the chain: move position
 * o + 1's first backup into place and set up only the hops from there on,
 * with a BODY_EXTEND that ends at hop o (the only cell it can read now).
 * False when that cannot be done here: the chain is not the current one,
 * no backup is left, or the cell did not leave. */
static bool chain_splice(struct cchain *ch, unsigned o)
{
    struct client *c = ch->c;
    struct link *l = link_by_serial(c->n, ch->link_serial);
    uint8_t body[ONION_BODY] = {BODY_EXTEND, 0, BODY_EXTEND_LEN & 0xff, BODY_EXTEND_LEN >> 8};
    unsigned f = o + 1;
    int rc;

    if (ch != c->current || ch->avail[f] == 0 || !l)
        return false;
    route_drop(&ch->route, ch->avail, f, 0);
    rc = chain_onion(ch, f);
    if (rc == 0) {
        memcpy(body + BODY_HDR, ch->route.hops[f][0].id_pk, OVL_ED25519_PK);
        memcpy(body + BODY_HDR + OVL_ED25519_PK, ch->hdr, ONION_HDR_LEN);
        rc = chain_fwd_send(ch, l, f, body);
        ovl_wipe(body, sizeof(body));
    }
    if (rc)
        return false;
    log_info(&c->n->log, "client: chain %u: hop %u lost its next hop, repairing from there",
             ch->serial, o);
    ch->state = CH_REPAIR;
    ch->deadline_ms = clock_now_ms() + c->o.setup_timeout_ms;
    c->current = NULL;
    if (!c->building)
        c->building = ch;
    c->st.chains_repaired++;
    chain_requeue(c, ch->serial);
    return true;
}

/* ---- chains: cells from the first hop ---- */

/* The exit could not hand a fragment to dest: fail the message in flight. */
static void on_deliver_fail(struct client *c, const uint8_t *dest, unsigned reason)
{
    struct out_msg *m;
    char id[OVL_NODE_ID_LEN + 1];

    node_id_format(id, dest);
    log_info(&c->n->log, "client: exit cannot deliver to %s (reason %u)", id, reason);
    DL_FOREACH(c->queue, m)
    {
        if (m->next_frag > 0 && memcmp(m->dest, dest, OVL_ED25519_PK) == 0) {
            sendq_fail(m, "the exit could not reach the destination");
            return;
        }
    }
}

static void chain_back(struct cchain *ch, const struct cell *cl)
{
    struct client *c = ch->c;
    uint8_t body[ONION_BODY];
    unsigned origin;
    int blen;

    if (cl->len != OVL_CELL_PAYLOAD) {
        c->st.dropped_bad++;
        return;
    }
    if (onion_back_unwrap(body, &origin, ch->keys, ch->length, ch->back_next, cl->payload) != 0) {
        c->st.dropped_auth++;
        return;
    }
    if ((blen = body_hdr_len(body)) < 0)
        goto bad;
    switch (body[0]) {
    case BODY_SETUP_OK:
        if ((ch->state != CH_SETUP && ch->state != CH_REPAIR) || origin + 1 != ch->length)
            goto bad;
        chain_ready(ch);
        return;
    case BODY_SETUP_FAIL:
        if (ch->state != CH_SETUP && ch->state != CH_REPAIR)
            goto bad;
        log_info(&c->n->log, "client: chain %u: hop %u refused the setup (reason %u)", ch->serial,
                 origin, blen >= 1 ? body[BODY_HDR] : 0);
        /* It could not reach the next hop: that position is the one to replace. */
        if (blen >= 1 && body[BODY_HDR] == BODY_R_UNREACHABLE && origin + 1 < ch->length) {
            ch->broken = origin + 2;
            dir_report(c->n->dir, ch->route.hops[origin + 1][0].id_pk);
        }
        chain_fail(ch, "setup refused", true);
        return;
    case BODY_LOOP_BACK:
        if (origin + 1 != ch->length)
            goto bad;
        c->st.loops_in++; /* our own loop cover, home again */
        return;
    case BODY_BROKEN:
        if ((ch->state != CH_READY && ch->state != CH_RETIRING) || origin + 1 >= ch->length)
            goto bad;
        ch->broken = origin + 2;
        dir_report(c->n->dir, ch->route.hops[origin + 1][0].id_pk);
        if (!chain_splice(ch, origin))
            chain_fail(ch, "a hop lost its next hop", true);
        return;
    case BODY_DELIVER_FAIL:
        if (origin + 1 != ch->length || blen < OVL_ED25519_PK + 1)
            goto bad;
        on_deliver_fail(c, body + BODY_HDR, body[BODY_HDR + OVL_ED25519_PK]);
        return;
    case BODY_DELIVER_BACK:
        if (origin + 1 != ch->length || blen < OVL_ED25519_PK)
            goto bad;
        sendq_ack(c, body + BODY_HDR, body + BODY_HDR + OVL_ED25519_PK, blen - OVL_ED25519_PK);
        return;
    default:
        goto bad;
    }
bad:
    c->st.dropped_bad++;
}

static void chain_cell(void *obj, struct link *l, const struct cell *cl)
{
    struct cchain *ch = obj;
    struct client *c = ch->c;

    (void)l;
    if (c->stopped)
        return;
    ch->cells_in++;
    c->st.cells_in++;
    switch (cl->cmd) {
    case CELL_CHAIN_BACK:
        chain_back(ch, cl);
        break;
    case CELL_CHAIN_DESTROY:
        chain_fail(ch, "destroyed by the first hop", false);
        break;
    default:
        c->st.dropped_bad++;
        break;
    }
}

static void chain_link_closed(void *obj, struct link *l, uint32_t id)
{
    struct cchain *ch = obj;

    (void)l;
    (void)id;
    ch->chain_id = 0; /* the slot is gone already */
    if (ch->state == CH_READY)
        ch->broken = 1; /* the first hop: rebuild with its backup */
    if (!ch->c->stopped)
        chain_fail(ch, "first-hop link closed", false);
}

/* ---- sending ---- */

/* Wrap body for ch's first `hops` hops (all, or fewer for a cell that
 * ends at an earlier hop) and send it on l; counters advance only when it
 * left. */
static int chain_fwd_send(struct cchain *ch, struct link *l, unsigned hops, const uint8_t *body)
{
    struct cell cl;
    int rc;

    memset(&cl, 0, offsetof(struct cell, payload));
    cl.chain_id = ch->chain_id;
    cl.cmd = CELL_CHAIN_FWD;
    cl.len = OVL_CELL_PAYLOAD;
    rc = onion_fwd_wrap(cl.payload, ch->keys, hops, ch->fwd_ctr, body);
    if (rc == 0)
        rc = link_send(l, &cl);
    if (rc)
        return rc; /* the wrapped cell never left: its counters are reused */
    for (unsigned i = 0; i < hops; i++)
        ch->fwd_ctr[i]++;
    ch->cells_out++;
    ch->c->st.cells_out++;
    return 0;
}

/* Send one cover cell (BODY_DROP or BODY_LOOP) on ch over l if the node's
 * cover budget allows (node_cover_allowed). 0 when sent. */
static int cover_send(struct client *c, struct cchain *ch, struct link *l, uint8_t cmd)
{
    uint8_t body[ONION_BODY] = {cmd};
    int rc;

    if (!node_cover_allowed(c->n)) {
        c->st.cover_skipped++;
        return OVL_ENOMEM; /* the budget is a cap */
    }
    rc = chain_fwd_send(ch, l, ch->length, body);
    if (rc == 0) {
        c->st.cover_out++;
        c->n->ctr.cover_out++;
    }
    return rc;
}

/* Wrap the next fragment of m and send it on ch over l. */
static int send_frag(struct cchain *ch, struct link *l, struct out_msg *m)
{
    uint8_t body[ONION_BODY];
    size_t flen;
    int rc;

    memset(body, 0, sizeof(body));
    flen =
        msg_frag_build(body + BODY_HDR + OVL_ED25519_PK, m->id, m->blob, m->blob_len, m->next_frag);
    body_hdr_put(body, BODY_DELIVER, (uint16_t)(OVL_ED25519_PK + flen));
    memcpy(body + BODY_HDR, m->dest, OVL_ED25519_PK);
    rc = chain_fwd_send(ch, l, ch->length, body);
    ovl_wipe(body, sizeof(body));
    if (rc)
        return rc;
    if (m->next_frag == 0) {
        m->resent = m->sent_us != 0;
        m->sent_us = clock_now_us();
    }
    m->next_frag++;
    m->chain_serial = ch->serial;
    return 0;
}

/* Drop cover (Loopix): a cell only the exit can tell from a real one,
 * sent on the current chain at Poisson times (gaps exponential with mean
 * cover_interval). It is skipped, not queued, when the link is full. */
static void on_cover(uv_timer_t *t)
{
    struct client *c = t->data;
    struct cchain *ch = c->current;
    struct link *l = ch ? link_by_serial(c->n, ch->link_serial) : NULL;
    bool loop = t == &c->loop;

    if (c->stopped)
        return;
    if (l && ch->state == CH_READY && link_can_send(l, 1) &&
        cover_send(c, ch, l, loop ? BODY_LOOP : BODY_DROP) == 0)
        c->st.loops_out += loop;
    uv_timer_start(t, on_cover,
                   ovl_random_exp_ms(loop ? c->o.loop_interval_ms : c->o.cover_interval_ms), 0);
}

/* Send the next fragment of the first message if it is ready: 1 when a
 * cell left, 0 when there was nothing to send, else the error. */
static int send_next(struct client *c, struct cchain *ch, struct link *l)
{
    struct out_msg *m = c->queue;
    int rc;

    if (!m || m->state != OM_READY)
        return 0;
    if (route_find(&ch->route, ch->length, m->dest)) {
        /* It waits for a chain without its destination; so does the queue
         * behind it, as order is kept. */
        if (!c->has_avoid && (!c->building || !c->building->has_avoid ||
                              memcmp(c->building->avoid, m->dest, OVL_ED25519_PK) != 0)) {
            c->has_avoid = true;
            memcpy(c->avoid, m->dest, OVL_ED25519_PK);
        }
        maybe_build(c);
        return 0;
    }
    if (m->next_frag < m->nfrags) {
        rc = send_frag(ch, l, m);
        if (rc)
            return rc;
    }
    if (m->next_frag == m->nfrags) {
        c->st.messages_sent++;
        ch->messages++;
        sendq_await(m);
        sendq_lookups(c);
    }
    return 1;
}

/* Constant rate: the chain carries exactly constant_rate cells a second,
 * a waiting fragment in each slot if there is one, cover otherwise; real
 * cells wait in the send queue (bounded by send_queue), never dropped. */
static void on_rate(uv_timer_t *t)
{
    struct client *c = t->data;
    uint64_t due = (clock_now_ms() - c->rate_t0) * c->o.constant_rate / 1000;

    if (c->stopped)
        return;
    if (due - c->rate_sent > RATE_BURST) /* the loop stalled: do not burst */
        c->rate_sent = due - RATE_BURST;
    for (; c->rate_sent < due; c->rate_sent++) {
        struct cchain *ch = c->current;
        struct link *l = ch ? link_by_serial(c->n, ch->link_serial) : NULL;
        int rc;

        if (!l || ch->state != CH_READY || !link_can_send(l, 1)) {
            c->st.rate_missed++;
            continue;
        }
        rc = send_next(c, ch, l);
        if (rc == 0)
            (void)cover_send(c, ch, l, BODY_DROP); /* skipped over budget */
        else if (rc < 0 && rc != OVL_EAGAIN)
            chain_fail(ch, ovl_strerror(rc), true);
    }
}

static void on_pump(uv_idle_t *h)
{
    uv_idle_stop(h);
    client_pump(h->data);
}

/* Send what can be sent: queue order, current chain, while the link takes
 * cells; the link's drained() brings us back. With constant_rate the rate
 * timer sends instead. */
void client_pump(struct client *c)
{
    struct cchain *ch;
    struct link *l;
    int rc;

    if (c->stopped)
        return;
    sendq_lookups(c);
    ch = c->current;
    if (!ch) {
        maybe_build(c);
        return;
    }
    l = link_by_serial(c->n, ch->link_serial);
    if (!l || c->o.constant_rate)
        return; /* no link: its link_closed() fails the chain */
    /* No link_can_send() check first: only an OVL_EAGAIN from link_send
     * arms the drained() callback that resumes us. A burst ends after
     * PUMP_BURST cells so the link writes them while we wrap the next:
     * wrapping a whole 1 MB message first left every hop idle for
     * milliseconds, and the loop deaf as long. */
    for (unsigned k = 0; (rc = send_next(c, ch, l)) > 0;)
        if (++k == PUMP_BURST) {
            /* An idle handle, not a 0 ms timer: libuv 1.44 runs a timer
             * re-armed for now again in the same pass, before any I/O. */
            uv_idle_start(&c->pump, on_pump);
            return;
        }
    if (rc < 0 && rc != OVL_EAGAIN)
        chain_fail(ch, ovl_strerror(rc), true);
}

/* ---- link events, the tick, delivery cells ---- */

static void on_link_opened(void *ctx, struct link *l)
{
    struct client *c = ctx;
    struct cchain *ch, *tmp;

    if (c->stopped)
        return;
    DL_FOREACH_SAFE(c->chains, ch, tmp)
    {
        if (ch->state == CH_CONNECTING &&
            (ch->link_serial == l->serial ||
             memcmp(l->peer_pk, ch->route.hops[0][0].id_pk, OVL_ED25519_PK) == 0))
            chain_send_setup(ch, l);
    }
}

static void on_link_closed(void *ctx, struct link *l)
{
    struct client *c = ctx;
    struct cchain *ch, *tmp;

    if (c->stopped)
        return;
    /* Chains with a slot on l hear it from the chanmap; this catches the
     * ones still waiting for the link to open. */
    DL_FOREACH_SAFE(c->chains, ch, tmp)
    {
        if (ch->state == CH_CONNECTING && ch->link_serial == l->serial)
            chain_fail(ch, "cannot reach the first hop", false);
    }
}

static void on_link_drained(void *ctx, struct link *l)
{
    struct client *c = ctx;

    if (!c->stopped && c->current && c->current->link_serial == l->serial)
        client_pump(c);
}

static void on_tick(uv_timer_t *t)
{
    struct client *c = t->data;
    struct cchain *ch, *tmp;
    uint64_t now = clock_now_ms();

    if (c->stopped)
        return;
    msg_rx_expire(&c->rx, now);
    sendq_tick(c, now);
    DL_FOREACH_SAFE(c->chains, ch, tmp)
    {
        if ((ch->state == CH_CONNECTING || ch->state == CH_SETUP || ch->state == CH_REPAIR) &&
            now >= ch->deadline_ms)
            chain_fail(ch, "setup timed out", ch->state != CH_CONNECTING);
        else if (ch->state == CH_READY && now >= ch->expires_ms)
            chain_destroy(ch, DESTROY_R_EXPIRED); /* no replacement came in time */
        else if (ch->state == CH_RETIRING && (now >= ch->deadline_ms || now >= ch->expires_ms))
            chain_destroy(ch, DESTROY_R_NONE);
    }
    maybe_build(c);
    if (c->queue)
        client_pump(c);
}

static void on_deliver(void *ctx, struct link *l, const struct cell *cl)
{
    struct client *c = ctx;
    const struct dir_onion *keys;
    unsigned n_keys = 0;
    struct cell ack = {.chain_id = cl->chain_id, .cmd = CELL_CHAIN_DELIVER, .len = MSG_ACK_LEN};
    enum msg_rx_result r;

    if (c->stopped)
        return;
    c->st.cells_in++;
    keys = dir_onion_keys(c->n->dir, &n_keys);
    r = msg_rx_fragment(&c->rx, cl->payload, cl->len, keys, n_keys, clock_now_ms(), clock_wall_ms(),
                        ack.payload);
    /* Back to the exit under its delivery ID; a lost one is made good by
     * the sender's retransmission. */
    if ((r == MSG_RX_DONE || r == MSG_RX_AGAIN) && link_send(l, &ack) == 0)
        c->st.acks_sent++;
}

/* ---- the public functions ---- */

static bool opts_valid(const struct client_opts *o)
{
    return o->retransmit_ms > 0 && o->deadline_ms > 0 &&
           (o->source == CHAIN_SOURCE_BOOTSTRAP || o->source == CHAIN_SOURCE_LOCAL) &&
           o->length >= 1 && o->length <= ONION_MAX_HOPS && o->backups <= DIR_MAX_BACKUPS &&
           o->lifetime_ms >= 1000 && o->setup_timeout_ms > 0 && o->max_message > 0 &&
           o->max_message <= UINT32_MAX - MSG_OVERHEAD_MAX && o->inbox_messages > 0 &&
           o->inbox_bytes > 0 && o->send_queue > 0 && o->reassembly_timeout_ms > 0 &&
           o->constant_rate <= 10000;
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
    c->backoff_ms = BACKOFF_MIN_MS;
    rc = msg_rx_init(&c->rx, o, &c->st);
    if (rc)
        goto fail;
    obs.ctx = c;
    rc = node_observe_links(n, &obs);
    if (rc)
        goto fail;
    rc = chanmap_register_opener(n, CELL_CHAIN_DELIVER, on_deliver, c);
    if (rc)
        goto fail_observer;
    uv_timer_init(n->loop, &c->tick);
    c->tick.data = c;
    uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS);
    c->tick_open = true;
    uv_idle_init(n->loop, &c->pump);
    c->pump.data = c;
    c->pump_open = true;
    if (o->cover_interval_ms) {
        uv_timer_init(n->loop, &c->cover);
        c->cover.data = c;
        uv_timer_start(&c->cover, on_cover, ovl_random_exp_ms(o->cover_interval_ms), 0);
        c->cover_open = true;
    }
    if (o->loop_interval_ms) {
        uv_timer_init(n->loop, &c->loop);
        c->loop.data = c;
        uv_timer_start(&c->loop, on_cover, ovl_random_exp_ms(o->loop_interval_ms), 0);
        c->loop_open = true;
    }
    if (o->constant_rate) {
        uint64_t period = 1000 / o->constant_rate;

        uv_timer_init(n->loop, &c->rate);
        c->rate.data = c;
        c->rate_t0 = clock_now_ms();
        uv_timer_start(&c->rate, on_rate, period ? period : 1, period ? period : 1);
        c->rate_open = true;
    }
    n->client = c;
    *out = c;
    return 0;
fail_observer:
    node_unobserve_links(n, &obs);
fail:
    msg_rx_free(&c->rx);
    free(c);
    return rc;
}

static void on_tick_closed(uv_handle_t *h)
{
    struct client *c = h->data;

    if (h == (uv_handle_t *)&c->cover)
        c->cover_open = false;
    else if (h == (uv_handle_t *)&c->loop)
        c->loop_open = false;
    else if (h == (uv_handle_t *)&c->rate)
        c->rate_open = false;
    else if (h == (uv_handle_t *)&c->pump)
        c->pump_open = false;
    else
        c->tick_open = false;
}

void client_stop(struct client *c)
{
    if (!c || c->stopped)
        return;
    c->stopped = true;
    chanmap_unregister_opener(c->n, CELL_CHAIN_DELIVER, on_deliver, c);
    node_unobserve_links(c->n, &(struct link_observer){.ctx = c});
    while (c->chains)
        chain_destroy(c->chains, DESTROY_R_SHUTDOWN);
    while (c->queue)
        sendq_fail(c->queue, "the client is stopping");
    while (c->unacked)
        sendq_fail(c->unacked, "the client is stopping");
    if (c->tick_open)
        uv_close((uv_handle_t *)&c->tick, on_tick_closed);
    if (c->cover_open)
        uv_close((uv_handle_t *)&c->cover, on_tick_closed);
    if (c->loop_open)
        uv_close((uv_handle_t *)&c->loop, on_tick_closed);
    if (c->rate_open)
        uv_close((uv_handle_t *)&c->rate, on_tick_closed);
    if (c->pump_open)
        uv_close((uv_handle_t *)&c->pump, on_tick_closed);
}

void client_free(struct client *c)
{
    if (!c)
        return;
    /* After client_stop nothing is left here but the inbox and reassembly;
     * never touch the node (it may be gone already). */
    msg_rx_free(&c->rx);
    ovl_wipe(c, sizeof(*c));
    free(c);
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
        ci.state = chain_state_names[ch->state];
        ci.age_ms = now - ch->created_ms;
        ci.expires_in_ms = ch->expires_ms > now ? ch->expires_ms - now : 0;
        ci.length = ch->length;
        for (i = 0; i < ch->length; i++)
            memcpy(ci.hops[i], ch->route.hops[i][0].id_pk, OVL_ED25519_PK);
        ci.cells_out = ch->cells_out;
        ci.cells_in = ch->cells_in;
        ci.messages = ch->messages;
        fn(arg, &ci);
    }
}

void client_stats(const struct client *c, struct client_stats *st)
{
    const struct cchain *ch;

    memset(st, 0, sizeof(*st));
    if (!c)
        return;
    *st = c->st;
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
    DL_FOREACH(c->chains, ch)
    st->chains++;
    st->bytes_held = sendq_bytes(c) + c->rx.part_bytes + c->rx.in_bytes +
                     (uint64_t)st->chains * sizeof(struct cchain);
}
