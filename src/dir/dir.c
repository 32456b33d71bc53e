/* dir.c - the directory role: its life cycle, its cell handlers and link
 * events, and the client's requests.
 *
 * Every directory message arrives here (CELL_DIR_REQUEST, CELL_DIR_REPLY,
 * reassembled per link) and goes to the file that deals with it: requests
 * to the bootstrap server (dirsrv.c), replies to our pending request
 * (checked by dirreply.c) or to our registration (dirpub.c). A request
 * asks the first bootstrap whose link is open, the next one when that
 * fails or times out (the tick), and its callback always runs from the
 * kick timer, never from inside the call that finished it. See dir_int.h
 * for how the files divide struct dir.
 */
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "lib/htab.h"
#include "core/link.h"
#include "core/timer.h"
#include "dir/dir_int.h"

#define DIR_MAX_PENDING 1024

/* ---- small helpers ---------------------------------------------------- */

/* Return the index of the bootstrap with key pk, or -1. */
static int dir_bs_index(const struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    for (unsigned i = 0; i < d->n_bs; i++)
        if (memcmp(d->bs[i].spec.pk, pk, OVL_ED25519_PK) == 0)
            return (int)i;
    return -1;
}

/* Free rx after taking it out of the table (one copy of HASH_DEL). */
static void dir_rx_free(struct dir *d, struct dir_rx *rx)
{
    HASH_DEL(d->rx, rx);
    dirmsg_rx_free(&rx->req);
    dirmsg_rx_free(&rx->rep);
    free(rx);
}

static struct dir_rx *dir_rx_get(struct dir *d, uint64_t serial)
{
    struct dir_rx *rx;

    HASH_FIND(hh, d->rx, &serial, sizeof(serial), rx);
    if (rx)
        return rx;
    rx = calloc(1, sizeof(*rx));
    if (!rx)
        return NULL;
    rx->serial = serial;
    HASH_ADD(hh, d->rx, serial, sizeof(rx->serial), rx);
    return rx;
}

static void dir_rx_drop(struct dir *d, uint64_t serial)
{
    struct dir_rx *rx;

    HASH_FIND(hh, d->rx, &serial, sizeof(serial), rx);
    if (rx)
        dir_rx_free(d, rx);
}

/* ---- pending requests -------------------------------------------------- */

static void dir_kick_cb(uv_timer_t *t);

static void dir_req_free(struct dir_req *r)
{
    if (!r)
        return;
    free(r->chain);
    free(r->descs);
    free(r->in);
    free(r);
}

/* Complete r with err: its callback runs from the kick timer, never here. */
static void dir_req_finish(struct dir *d, struct dir_req *r, int err)
{
    DL_DELETE(d->pending, r);
    d->n_pending--;
    /* No bootstrap answered: the last good relay list, while it lasts. */
    if (err && dir_unanswered(d, err) &&
        ((r->op == DIR_LIST && dir_list_fallback(d, r)) ||
         (r->op == DIR_LOOKUP && dir_lookup_fallback(d, r))))
        err = 0;
    r->err = err;
    if (err) {
        free(r->chain);
        r->chain = NULL;
        r->n_chains = 0;
        free(r->descs);
        r->descs = NULL;
        r->n_descs = 0;
        free(r->in);
        r->in = NULL;
    }
    DL_APPEND(d->done, r);
    if (d->kick) /* else dir_stop closed it: nothing is pending any more */
        uv_timer_start(d->kick, dir_kick_cb, 0, 0);
}

static void dir_req_reply(struct dir *d, struct dir_req *r, const uint8_t *msg, size_t len,
                          const uint8_t bs_pk[OVL_ED25519_PK]);

/* Ask the first open bootstrap r has not tried. With wait false, finish r
 * instead of waiting for a link to open. */
static void dir_req_try(struct dir *d, struct dir_req *r, bool wait)
{
    struct node *n = d->n;
    bool untried = false;

    r->serial = 0;
    r->bs = -1;
    if (d->reg) { /* we are a bootstrap: answer from our own registry */
        uint8_t *rep = NULL;
        size_t rep_len = 0;
        int rc = dir_answer(d, NULL, r->msg, r->msg_len, &rep, &rep_len);

        if (rc == 0)
            dir_req_reply(d, r, rep, rep_len, n->id.pk);
        else
            dir_req_finish(d, r, rc);
        free(rep);
        return;
    }
    for (unsigned i = 0; i < d->n_bs; i++) {
        struct link *l;
        int rc;

        if (r->tried & (1u << i))
            continue;
        untried = true;
        l = link_find(n, d->bs[i].spec.pk);
        if (!l)
            continue;
        rc = dirmsg_send(l, CELL_DIR_REQUEST, r->id, r->msg, r->msg_len);
        if (rc) {
            r->tried |= 1u << i;
            r->err = rc;
            continue;
        }
        r->serial = l->serial;
        r->bs = (int)i;
        r->deadline = clock_now_ms() + d->o.request_timeout_ms;
        d->st.requests_out++;
        log_debug(&n->log, "directory: request %08x (op %u) to %s", r->id, r->op,
                  d->bs[i].spec.name);
        return;
    }
    if (!untried || !wait)
        dir_req_finish(d, r, r->err ? r->err : OVL_ETIMEDOUT);
}

/* The attempt in flight failed with err: move on to the next bootstrap. */
static void dir_req_retry(struct dir *d, struct dir_req *r, int err, bool wait)
{
    if (d->reg) { /* our own registry answered: there is nobody else to ask */
        dir_req_finish(d, r, err);
        return;
    }
    if (r->bs >= 0)
        r->tried |= 1u << r->bs;
    r->err = err;
    r->deadline = clock_now_ms() + d->o.request_timeout_ms;
    dir_req_try(d, r, wait);
}

static int dir_req_new(struct dir *d, uint8_t op, void *arg, struct dir_req **out)
{
    struct dir_req *r;

    *out = NULL;
    if (dir_stopping(d))
        return OVL_ECLOSED;
    if (!d->reg && d->n_bs == 0)
        return OVL_ENOENT;
    if (d->n_pending >= DIR_MAX_PENDING)
        return OVL_ENOMEM;
    r = calloc(1, sizeof(*r));
    if (!r)
        return OVL_ENOMEM;
    r->id = dirmsg_next_id(&d->next_id);
    r->op = op;
    r->arg = arg;
    r->bs = -1;
    r->msg[0] = op;
    r->msg_len = 1;
    r->deadline = clock_now_ms() + d->o.request_timeout_ms;
    DL_APPEND(d->pending, r);
    d->n_pending++;
    *out = r;
    return 0;
}

/* Verify a complete reply to r from the bootstrap with key bs_pk. */
static void dir_req_reply(struct dir *d, struct dir_req *r, const uint8_t *msg, size_t len,
                          const uint8_t bs_pk[OVL_ED25519_PK])
{
    int rc;

    if (len < 2 || msg[0] != r->op) {
        d->st.bad_replies++;
        dir_req_retry(d, r, OVL_EPROTO, true);
        return;
    }
    if (msg[1] != DIR_STATUS_OK) { /* an answer, not a fault: only try who is open now */
        dir_req_retry(d, r, dir_status_err(msg[1]), false);
        return;
    }
    rc = dir_reply_check(d, r, msg + 2, len - 2, bs_pk);
    if (rc) {
        d->st.bad_replies++;
        log_debug(&d->n->log, "directory: bad reply to %08x: %s", r->id, ovl_strerror(rc));
        dir_req_retry(d, r, rc == OVL_ENOMEM || rc == OVL_ECRYPTO ? rc : OVL_EPROTO, true);
        return;
    }
    dir_req_finish(d, r, 0);
}

/* ---- cell handlers and link events -------------------------------------- */

static void dir_on_request(void *ctx, struct link *l, const struct cell *c)
{
    struct dir *d = ctx;
    struct dir_rx *rx;
    const uint8_t *msg;
    size_t len;
    uint32_t id;
    int rc;

    if (dir_stopping(d) || !(rx = dir_rx_get(d, l->serial)))
        return;
    rc = dirmsg_rx_feed(&rx->req, c, DIR_REQ_MAX_LEN, &id, &msg, &len);
    if (rc == 0)
        return;
    if (rc < 0) {
        d->st.bad_requests++;
        log_debug(&d->n->log, "directory: bad request from %s: %s", l->peer_id, ovl_strerror(rc));
        link_close(l, LC_BAD_CELL);
        return;
    }
    d->st.requests_in++;
    dir_serve(d, l, rx, id, msg, len);
}

static void dir_on_reply(void *ctx, struct link *l, const struct cell *c)
{
    struct dir *d = ctx;
    int i = dir_bs_index(d, l->peer_pk);
    struct dir_req *r;
    struct dir_rx *rx;
    const uint8_t *msg;
    size_t len;
    uint32_t id;
    int rc;

    if (dir_stopping(d))
        return;
    if (i < 0) { /* we ask only bootstraps: anything else is unsolicited */
        d->st.bad_replies++;
        return;
    }
    if (!(rx = dir_rx_get(d, l->serial)))
        return;
    rc = dirmsg_rx_feed(&rx->rep, c, DIRMSG_MAX_LEN, &id, &msg, &len);
    if (rc == 0)
        return;
    if (rc < 0) {
        d->st.bad_replies++;
        link_close(l, LC_BAD_CELL);
        return;
    }
    d->st.replies_in++;
    if (dsync_on_reply(d, (unsigned)i, id, msg, len))
        return;
    DL_FOREACH(d->pending, r)
    if (r->id == id && r->serial == l->serial) {
        dir_req_reply(d, r, msg, len, d->bs[i].spec.pk);
        return;
    }
    if (len < 2) {
        d->st.bad_replies++;
        return;
    }
    dir_on_reg_reply(d, (unsigned)i, l, id, msg[1]);
}

static void dir_retry_waiting(struct dir *d)
{
    struct dir_req *r, *tmp;

    DL_FOREACH_SAFE(d->pending, r, tmp)
    if (r->serial == 0)
        dir_req_try(d, r, true);
}

static void dir_link_opened(void *ctx, struct link *l)
{
    struct dir *d = ctx;
    int i = dir_bs_index(d, l->peer_pk);

    if (dir_stopping(d) || i < 0)
        return;
    dir_register_with(d, (unsigned)i, l);
    dsync_linked(d, (unsigned)i, l);
    dir_retry_waiting(d);
}

static void dir_link_closed(void *ctx, struct link *l)
{
    struct dir *d = ctx;
    struct dir_req *r, *tmp;
    int i;

    dir_rx_drop(d, l->serial);
    if (dir_stopping(d))
        return;
    i = dir_bs_index(d, l->peer_pk);
    if (i >= 0 && !link_find(d->n, l->peer_pk))
        dir_bs_unlinked(d, (unsigned)i);
    dir_serve_link_closed(d, l);
    DL_FOREACH_SAFE(d->pending, r, tmp)
    if (r->serial == l->serial)
        dir_req_retry(d, r, OVL_ECLOSED, true);
}

/* ---- timers ------------------------------------------------------------ */

static void dir_fire(struct dir_req *r)
{
    switch (r->op) {
    case DIR_CHAIN:
        if (r->many)
            r->cb.chains(r->arg, r->err, r->err ? NULL : r->chain, r->err ? 0 : r->n_chains);
        else
            r->cb.chain(r->arg, r->err, r->err ? NULL : r->chain);
        break;
    case DIR_LIST:
        r->cb.list(r->arg, r->err, r->err ? NULL : r->descs, r->err ? 0 : r->n_descs);
        break;
    default:
        r->cb.lookup(r->arg, r->err, r->err || r->in ? NULL : r->descs, r->err ? NULL : r->in);
        break;
    }
}

/* The one place the role's state changes; it only moves forward, so a
 * kick after dir_stop cannot start the role. */
static void dir_set_state(struct dir *d, enum dir_state s)
{
    if (s > d->state)
        d->state = s;
}

static void dir_kick_cb(uv_timer_t *t)
{
    struct dir *d = t->data;
    struct dir_req *r;

    if (d->state == DIR_NEW) { /* first turn of the loop: node_start has bound our addresses */
        dir_set_state(d, DIR_RUNNING);
        dir_self_register(d, true);
    }
    /* Fire only what is done now; callbacks may start or cancel requests. */
    d->firing = d->done;
    d->done = NULL;
    while ((r = d->firing) != NULL) {
        DL_DELETE(d->firing, r);
        dir_fire(r);
        dir_req_free(r);
    }
    if (dir_stopping(d) && !d->done)
        timer_close(&d->kick);
}

/* The relay list fetched to keep the last good one fresh: dirreply.c
 * kept it, nothing else to do. */
#define DIR_LIST_BUSY_MS 2000u /* a list answered busy is asked again after 2 to 6 s */

/* The list fetched by the tick: kept by dirreply.c. One a bootstrap was
 * too busy to send ([dir] list_rate) is asked again within seconds, not
 * DIR_LIST_REFRESH_MIN_MS later, and at spread times, not all at once. */
static void dir_list_kept(void *arg, int err, const struct desc *relays, unsigned n)
{
    struct dir *d = arg;
    uint64_t soon = clock_now_ms() + DIR_LIST_BUSY_MS + ovl_random_uniform(2 * DIR_LIST_BUSY_MS);

    (void)relays;
    (void)n;
    if (err == OVL_EAGAIN && !d->list && soon < d->list_next_ms)
        d->list_next_ms = soon;
}

static void dir_tick_cb(uv_timer_t *t)
{
    struct dir *d = t->data;
    uint64_t now = clock_now_ms();
    struct dir_req *r, *tmp;

    if (dir_list_due(d, now) && dir_request_list(d, dir_list_kept, d) != 0)
        log_debug(&d->n->log, "directory: no relay list asked for now");

    DL_FOREACH_SAFE(d->pending, r, tmp)
    {
        if (now < r->deadline)
            continue;
        if (r->serial) {
            d->st.request_timeouts++;
            log_debug(&d->n->log, "directory: request %08x timed out", r->id);
            dir_req_retry(d, r, OVL_ETIMEDOUT, true);
        } else {
            dir_req_finish(d, r, r->err ? r->err : OVL_ETIMEDOUT);
        }
    }
}

/* ---- public API -------------------------------------------------------- */

/* Replace zero fields by their defaults (onion_overlap_ms may be 0): the
 * uint32_t field at offs[i] by defs[i], a table rather than a test each. */
#define DIR_OPT(f) (uint8_t) offsetof(struct dir_opts, f)
static void dir_opts_fill(struct dir_opts *o)
{
    static const uint8_t offs[] = {
        DIR_OPT(heartbeat_ms),       DIR_OPT(ttl_ms),       DIR_OPT(chain_cache_ttl_ms),
        DIR_OPT(max_nodes),          DIR_OPT(max_chains),   DIR_OPT(onion_rotate_ms),
        DIR_OPT(request_timeout_ms), DIR_OPT(request_rate), DIR_OPT(request_burst)};
    static const uint32_t defs[] = {5000, 15000, 600000, 4096, 1024, 3600000, 5000, 20, 40};
    uint32_t v;

    for (unsigned i = 0; i < sizeof(offs); i++) {
        memcpy(&v, (char *)o + offs[i], sizeof(v));
        if (!v)
            memcpy((char *)o + offs[i], &defs[i], sizeof(v));
    }
    if (!o->desc_lifetime_ms)
        o->desc_lifetime_ms = 3 * o->onion_rotate_ms;
    if (!o->list_lifetime_ms)
        o->list_lifetime_ms = 3 * 3600000; /* 3 h */
}

/* Fill o with the documented defaults. */
void dir_opts_defaults(struct dir_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->onion_overlap_ms = 600000;
    o->distinct_subnets = true;
    o->chain_refresh_ms = 60000;
    o->block_request_rate = 100;
    o->block_request_burst = 1000;
    o->block_chain_rate = 2;
    o->block_chain_burst = 60;
    o->max_nodes_per_block = 64;
    o->list_rate = 8192;
    dir_opts_fill(o);
}

/* Close every timer still open; each is freed once libuv is done with it. */
static void dir_timers_close(struct dir *d)
{
    timer_close(&d->kick);
    timer_close(&d->tick);
    timer_close(&d->heartbeat);
    timer_close(&d->rotate);
    timer_close(&d->expire);
    timer_close(&d->sync_timer);
}

/* Allocate the role's timers (dir_int.h: each file starts its own). */
static int dir_timers_new(struct dir *d)
{
    uv_loop_t *loop = d->n->loop;

    d->kick = timer_new(loop, d);
    d->tick = timer_new(loop, d);
    d->heartbeat = timer_new(loop, d);
    d->rotate = timer_new(loop, d);
    d->expire = timer_new(loop, d);
    d->sync_timer = timer_new(loop, d);
    if (d->kick && d->tick && d->heartbeat && d->rotate && d->expire && d->sync_timer)
        return 0;
    dir_timers_close(d);
    return OVL_ENOMEM;
}

/* Read the relay list kept on disk, if any, as the fallback list: a node
 * with bootstraps that is not one keeps the last good list it got. */
static void dir_list_load(struct dir *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    if (d->reg || d->n_bs == 0)
        return;
    rc = dir_store_open(d, &buf, &len);
    if (rc == 0)
        rc = dir_list_restore(d, buf, len);
    if (rc == 0)
        log_info(&d->n->log, "directory: %u relays listed on disk, kept as the fallback",
                 d->n_list);
    else if (rc == OVL_EPROTO) /* expired, most likely: the node was down long */
        log_info(&d->n->log, "directory: the relay list on disk is not used: %s", ovl_strerror(rc));
    else if (rc != OVL_ENOENT)
        log_warn(&d->n->log, "directory: the relay list on disk is not used: %s", ovl_strerror(rc));
    free(buf);
}

/* Register the directory's cell handlers and link observer; on failure
 * undo what was registered. */
static int dir_handlers(struct dir *d)
{
    struct link_observer obs = {.opened = dir_link_opened, .closed = dir_link_closed, .ctx = d};
    int rc = dispatch_register(&d->n->disp, CELL_DIR_REQUEST, dir_on_request, d);

    if (rc)
        return rc;
    rc = dispatch_register(&d->n->disp, CELL_DIR_REPLY, dir_on_reply, d);
    if (rc)
        goto fail_request;
    rc = node_observe_links(d->n, &obs);
    if (rc)
        goto fail_reply;
    return 0;
fail_reply:
    dispatch_unregister(&d->n->disp, CELL_DIR_REPLY, dir_on_reply, d);
fail_request:
    dispatch_unregister(&d->n->disp, CELL_DIR_REQUEST, dir_on_request, d);
    return rc;
}

/* Undo dir_handlers. */
static void dir_unhandle(struct dir *d)
{
    dispatch_unregister(&d->n->disp, CELL_DIR_REQUEST, dir_on_request, d);
    dispatch_unregister(&d->n->disp, CELL_DIR_REPLY, dir_on_reply, d);
    node_unobserve_links(d->n, d);
}

/* Create the directory role and register its handlers. */
int dir_init(struct node *n, const struct dir_opts *o, const struct dir_bootstrap_spec *bs,
             unsigned n_bs, struct dir **out)
{
    struct dir *d;
    uint64_t tick;
    int rc;

    *out = NULL;
    if (n_bs > DIR_MAX_BOOTSTRAPS || (n_bs && !bs) || !dir_family_ok(n, o))
        return OVL_EINVAL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return OVL_ENOMEM;
    d->n = n;
    d->o = *o;
    dir_opts_fill(&d->o);
    for (unsigned i = 0; i < n_bs; i++) /* one config may list every bootstrap, us among them */
        if (!ovl_equal(bs[i].pk, n->id.pk, OVL_ED25519_PK))
            d->bs[d->n_bs++].spec = bs[i];
    ovl_random(&d->next_id, sizeof(d->next_id));
    rc = dir_timers_new(d);
    if (rc)
        goto fail;
    if (n->roles & ROLE_BOOTSTRAP) {
        struct registry_opts ro = {.max_nodes = d->o.max_nodes,
                                   .max_chains = d->o.max_chains,
                                   .ttl_ms = d->o.ttl_ms,
                                   .chain_ttl_ms = d->o.chain_cache_ttl_ms,
                                   .chain_refresh_ms = d->o.chain_refresh_ms,
                                   .distinct_subnets = d->o.distinct_subnets,
                                   .by_capacity = d->o.by_capacity,
                                   .allow_private = d->o.allow_private};

        rc = registry_new(&ro, &d->reg);
        if (rc)
            goto fail_timers;
        rc = ihold_new(d->o.max_nodes, &d->hold);
        if (rc == 0)
            rc = dsync_init(d);
        if (rc)
            goto fail_registry;
        rc = dblocks_new(DBLOCK_MAX, &d->blocks);
        if (rc)
            goto fail_registry;
    }
    rc = dir_handlers(d);
    if (rc)
        goto fail_registry;
    dir_list_load(d);
    dir_onion_new(d);
    uv_timer_start(d->kick, dir_kick_cb, 0, 0);
    tick = d->o.request_timeout_ms / 8 ? d->o.request_timeout_ms / 8 : 1;
    uv_timer_start(d->tick, dir_tick_cb, tick, tick);
    dir_publish_start(d);
    dir_serve_start(d);
    dsync_start(d);
    n->dir = d;
    *out = d;
    return 0;
fail_registry:
    dblocks_free(d->blocks);
    dsync_free(d);
    ihold_free(d->hold);
    registry_free(d->reg);
fail_timers:
    dir_timers_close(d);
fail:
    free(d);
    return rc;
}

/* Stop the role; pending requests fail with OVL_ECLOSED from the loop. */
void dir_stop(struct dir *d)
{
    bool running;

    if (!d || dir_stopping(d))
        return;
    running = d->state == DIR_RUNNING;
    dir_set_state(d, DIR_STOPPING);
    dir_unhandle(d);
    while (d->pending)
        dir_req_finish(d, d->pending, OVL_ECLOSED);
    dsync_stop(d);
    timer_close(&d->sync_timer);
    timer_close(&d->tick);
    timer_close(&d->heartbeat);
    timer_close(&d->rotate);
    timer_close(&d->expire);
    if (!d->done && running)
        timer_close(&d->kick);
    /* else the kick has work left (callbacks to fire, or the loop's first
     * turn to run): it does it, then closes itself */
}

/* Free d once the loop has ended. */
void dir_free(struct dir *d)
{
    struct dir_rx *rx, *rtmp;
    struct dir_req *r, *tmp;

    if (!d)
        return;
    dir_timers_close(d); /* only if dir_stop was skipped or the loop stopped early */
    HASH_ITER(hh, d->rx, rx, rtmp)
    {
        dir_rx_free(d, rx);
    }
    dir_caches_free(d);
    DL_FOREACH_SAFE(d->pending, r, tmp) dir_req_free(r);
    DL_FOREACH_SAFE(d->done, r, tmp) dir_req_free(r);
    registry_free(d->reg);
    ihold_free(d->hold);
    dblocks_free(d->blocks);
    dir_store_free(d);
    free(d->list_doc);
    dsync_free(d);
    if (d->n->dir == d)
        d->n->dir = NULL;
    ovl_wipe(d->onion, sizeof(d->onion));
    free(d);
}

/* ---- reconfiguring ------------------------------------------------------ */

/* Move the pending requests' bootstrap indexes from the old ones to
 * their new places (map[old]: new index, or -1 for a bootstrap no longer
 * configured). A request in flight to one of those is retried, since its
 * reply would now be unsolicited. */
static void dir_req_remap(struct dir *d, const int *map, unsigned n_old)
{
    struct dir_req *r, *tmp;

    DL_FOREACH_SAFE(d->pending, r, tmp)
    {
        uint32_t tried = 0;

        for (unsigned i = 0; i < n_old; i++)
            if ((r->tried & (1u << i)) && map[i] >= 0)
                tried |= 1u << map[i];
        r->tried = tried;
        if (r->bs >= 0 && map[r->bs] >= 0) {
            r->bs = map[r->bs];
        } else if (r->bs >= 0) {
            r->bs = -1;
            r->serial = 0; /* dir_retry_waiting sends it again */
        }
    }
}

/* Make bs the configured bootstraps, keeping the state of those still
 * there (by id): registrations, syncs, requests in flight. */
static void dir_bs_reconfigure(struct dir *d, const struct dir_bootstrap_spec *bs, unsigned n_bs)
{
    struct dir_bootstrap_spec keep[DIR_MAX_BOOTSTRAPS];
    int map[DIR_MAX_BOOTSTRAPS], from[DIR_MAX_BOOTSTRAPS];
    unsigned n = 0, n_old = d->n_bs;
    struct link *l;

    for (unsigned i = 0; i < n_bs; i++) /* us among them: left out, as dir_init does */
        if (!ovl_equal(bs[i].pk, d->n->id.pk, OVL_ED25519_PK)) {
            from[n] = dir_bs_index(d, bs[i].pk);
            keep[n++] = bs[i];
        }
    for (unsigned i = 0; i < n_old; i++)
        map[i] = -1;
    for (unsigned i = 0; i < n; i++)
        if (from[i] >= 0)
            map[from[i]] = (int)i;
    dir_req_remap(d, map, n_old);
    dsync_remap(d, from, n);
    dir_bs_replace(d, keep, n, from);
    for (unsigned i = 0; i < n; i++)
        if (from[i] < 0 && (l = link_find(d->n, d->bs[i].spec.pk)) != NULL) {
            dir_register_with(d, i, l); /* linked already: as a relay, or a peer */
            dsync_linked(d, i, l);
        }
    dir_retry_waiting(d);
}

/* Take o's settings that may change while the role runs; see dir.h. */
int dir_reconfigure(struct dir *d, const struct dir_opts *o, const struct dir_bootstrap_spec *bs,
                    unsigned n_bs)
{
    bool publish;

    if (!d || !o || n_bs > DIR_MAX_BOOTSTRAPS || (n_bs && !bs) || dir_stopping(d) ||
        !dir_family_ok(d->n, o))
        return OVL_EINVAL;
    publish = d->o.capacity_kib != o->capacity_kib ||
              memcmp(&d->o.exit_policy, &o->exit_policy, sizeof(o->exit_policy)) != 0 ||
              d->o.n_family != o->n_family ||
              memcmp(d->o.family, o->family, sizeof(o->family)) != 0;
    d->o.distinct_subnets = o->distinct_subnets;
    d->o.by_capacity = o->by_capacity;
    if (d->reg)
        registry_set_selection(d->reg, o->distinct_subnets, o->by_capacity);
    d->o.capacity_kib = o->capacity_kib;
    d->o.exit_policy = o->exit_policy;
    d->o.n_family = o->n_family;
    memcpy(d->o.family, o->family, sizeof(o->family));
    dir_bs_reconfigure(d, bs, n_bs);
    if (publish && d->state == DIR_RUNNING)
        dir_publish_again(d);
    return 0;
}

/* Start a chain request: the 34-byte form for one chain without flags (what
 * every bootstrap understands), else with count and flags. */
static int dir_chain_req(struct dir *d, unsigned length, unsigned backups, unsigned count,
                         unsigned flags, const uint8_t exclude[OVL_ED25519_PK], void *arg,
                         struct dir_req **out)
{
    struct dir_req *r;
    int rc;

    if (length < 1 || length > DIR_MAX_HOPS || backups > DIR_MAX_BACKUPS || count < 1 ||
        count > DIR_MAX_CHOICES || (flags & ~DIR_CHAIN_FRESH))
        return OVL_EINVAL;
    rc = dir_req_new(d, DIR_CHAIN, arg, &r);
    if (rc)
        return rc;
    r->length = length;
    r->backups = backups;
    r->count = count;
    r->msg[1] = (uint8_t)length;
    r->msg[2] = (uint8_t)backups;
    if (exclude) {
        memcpy(r->msg + 3, exclude, OVL_ED25519_PK);
        memcpy(r->pk, exclude, OVL_ED25519_PK);
        r->has_pk = true;
    }
    r->msg_len = 3 + OVL_ED25519_PK;
    if (count > 1 || flags) {
        r->msg[r->msg_len++] = (uint8_t)count;
        r->msg[r->msg_len++] = (uint8_t)flags;
    }
    *out = r;
    return 0;
}

/* Ask for a chain. */
int dir_request_chain(struct dir *d, unsigned length, unsigned backups,
                      const uint8_t exclude[OVL_ED25519_PK], dir_chain_cb cb, void *arg)
{
    struct dir_req *r;
    int rc;

    if (!cb)
        return OVL_EINVAL;
    rc = dir_chain_req(d, length, backups, 1, 0, exclude, arg, &r);
    if (rc)
        return rc;
    r->cb.chain = cb;
    dir_req_try(d, r, true);
    return 0;
}

/* Ask for count chains at once. */
int dir_request_chains(struct dir *d, unsigned length, unsigned backups, unsigned count,
                       unsigned flags, const uint8_t exclude[OVL_ED25519_PK], dir_chains_cb cb,
                       void *arg)
{
    struct dir_req *r;
    int rc;

    if (!cb)
        return OVL_EINVAL;
    rc = dir_chain_req(d, length, backups, count, flags, exclude, arg, &r);
    if (rc)
        return rc;
    r->cb.chains = cb;
    r->many = true;
    dir_req_try(d, r, true);
    return 0;
}

/* Fetch the relay list. */
int dir_request_list(struct dir *d, dir_list_cb cb, void *arg)
{
    struct dir_req *r;
    int rc;

    if (!cb)
        return OVL_EINVAL;
    rc = dir_req_new(d, DIR_LIST, arg, &r);
    if (rc)
        return rc;
    r->cb.list = cb;
    if (dir_cache_answer(d, r))
        dir_req_finish(d, r, 0);
    else
        dir_req_try(d, r, true);
    return 0;
}

/* Look up pk's descriptor. */
int dir_lookup(struct dir *d, const uint8_t pk[OVL_ED25519_PK], dir_lookup_cb cb, void *arg)
{
    struct dir_req *r;
    int rc;

    if (!cb || !pk)
        return OVL_EINVAL;
    rc = dir_req_new(d, DIR_LOOKUP, arg, &r);
    if (rc)
        return rc;
    r->cb.lookup = cb;
    memcpy(r->pk, pk, OVL_ED25519_PK);
    r->has_pk = true;
    memcpy(r->msg + 1, pk, OVL_ED25519_PK);
    r->msg_len = 1 + OVL_ED25519_PK;
    if (dir_cache_answer(d, r))
        dir_req_finish(d, r, 0);
    else
        dir_req_try(d, r, true);
    return 0;
}

/* Tell every bootstrap we have a link to that relay pk failed for us. */
void dir_report(struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    uint8_t msg[1 + OVL_ED25519_PK] = {DIR_REPORT};

    memcpy(msg + 1, pk, OVL_ED25519_PK);
    for (unsigned i = 0; d && i < d->n_bs; i++) {
        struct link *l = link_find(d->n, d->bs[i].spec.pk);

        if (!l)
            continue;
        /* The reply only says whether it was listed: nobody waits for it. */
        if (dirmsg_send(l, CELL_DIR_REQUEST, dirmsg_next_id(&d->next_id), msg, sizeof(msg)) == 0)
            d->st.reports_sent++;
    }
}

/* Hand inbound descriptor idesc to every bootstrap we have a link to. */
int dir_publish_idesc(struct dir *d, const uint8_t *idesc, size_t len)
{
    uint8_t msg[1 + IDESC_MAX_LEN] = {DIR_IDESC};
    int sent = 0;

    if (!d || !idesc || len < IDESC_MIN_LEN || len > IDESC_MAX_LEN)
        return OVL_EINVAL;
    memcpy(msg + 1, idesc, len);
    if (d->reg) { /* a bootstrap holds it itself; the answer is for nobody */
        uint8_t *rep = NULL;
        size_t rep_len;

        if (dir_answer(d, NULL, msg, 1 + len, &rep, &rep_len) == 0)
            sent++;
        free(rep);
    }
    for (unsigned i = 0; i < d->n_bs; i++) {
        struct link *l = link_find(d->n, d->bs[i].spec.pk);

        /* Fire and forget, as reports: the reply matches no request and
         * goes by as a late one (dir_on_reg_reply). */
        if (l && dirmsg_send(l, CELL_DIR_REQUEST, dirmsg_next_id(&d->next_id), msg, 1 + len) == 0) {
            d->st.idesc_published++;
            sent++;
        }
    }
    return sent;
}

static void dir_cancel_list(struct dir_req **head, void *arg, unsigned *n_pending)
{
    struct dir_req *r, *tmp;

    DL_FOREACH_SAFE(*head, r, tmp)
    if (r->arg == arg) {
        DL_DELETE(*head, r);
        dir_req_free(r);
        if (n_pending)
            (*n_pending)--;
    }
}

/* Cancel every pending request whose callback argument is arg. */
void dir_cancel(struct dir *d, void *arg)
{
    if (!d)
        return;
    dir_cancel_list(&d->pending, arg, &d->n_pending);
    dir_cancel_list(&d->done, arg, NULL);
    dir_cancel_list(&d->firing, arg, NULL);
}

/* Return the counters. */
void dir_stats(const struct dir *d, struct dir_stats *st)
{
    *st = d->st;
    memset(&st->reg, 0, sizeof(st->reg));
    if (d->reg)
        registry_stats(d->reg, &st->reg);
    st->blocks = dblocks_count(d->blocks);
    st->idescs = ihold_count(d->hold);
    st->list_relays = d->n_list;
}

/* Return the exit policy, or NULL when there is none. */
const struct exit_policy *dir_exit_policy(const struct dir *d)
{
    return d && d->o.exit_policy.n ? &d->o.exit_policy : NULL;
}

/* True when private addresses are allowed. */
bool dir_allow_private(const struct dir *d)
{
    return d && d->o.allow_private;
}
