/* dir.c - the directory role: our descriptor, registration, client requests.
 *
 * The bootstrap-server half (answering requests from the registry) lives in
 * dirsrv.c; both share struct dir through dir_int.h.
 */
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "lib/htab.h"
#include "core/link.h"
#include "dir/dir_int.h"

#define DIR_MAX_PENDING      1024
#define DIR_LOOKUP_CACHE_MAX 4096
#define DIR_LOOKUP_CACHE_MS  60000u

/* ---- small helpers ---------------------------------------------------- */

uint32_t dir_next_id(struct dir *d)
{
    if (++d->next_id == 0)
        d->next_id = 1;
    return d->next_id;
}

int dir_bs_index(const struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    for (unsigned i = 0; i < d->n_bs; i++)
        if (memcmp(d->bs[i].spec.pk, pk, OVL_ED25519_PK) == 0)
            return (int)i;
    return -1;
}

int dir_send(struct link *l, uint8_t cmd, uint32_t id, const uint8_t *msg, size_t len)
{
    struct cell c;
    uint16_t count = 0, i;
    int rc;

    memset(&c, 0, sizeof(c));
    rc = dirmsg_fragment(&c, cmd, id, msg, len, 0, &count);
    if (rc)
        return rc;
    /* All fragments or none: two messages must never interleave on a link. */
    if (!link_can_send(l, count))
        return OVL_EAGAIN;
    for (i = 0; i < count; i++) {
        if (i > 0) {
            rc = dirmsg_fragment(&c, cmd, id, msg, len, i, &count);
            if (rc)
                return rc;
        }
        rc = link_send(l, &c);
        if (rc) {
            if (i > 0) /* the peer would reassemble garbage: give up on the link */
                link_close(l, LC_QUEUE_FULL);
            return rc;
        }
    }
    return 0;
}

/* Free rx after taking it out of the table (one copy of HASH_DEL). */
static void dir_rx_free(struct dir *d, struct dir_rx *rx)
{
    HASH_DEL(d->rx, rx);
    dirmsg_rx_free(&rx->req);
    dirmsg_rx_free(&rx->rep);
    free(rx);
}

/* Take e out of the lookup cache, and free it unless it is to be reused. */
static void dir_cache_del(struct dir *d, struct dir_cache_ent *e, bool keep)
{
    HASH_DEL(d->lookups, e);
    if (!keep)
        free(e);
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
    free(r);
}

/* Complete r with err: its callback runs from the kick timer, never here. */
static void dir_req_finish(struct dir *d, struct dir_req *r, int err)
{
    DL_DELETE(d->pending, r);
    d->n_pending--;
    r->err = err;
    if (err) {
        free(r->chain);
        r->chain = NULL;
        free(r->descs);
        r->descs = NULL;
        r->n_descs = 0;
    }
    DL_APPEND(d->done, r);
    if (!d->kick_closed)
        uv_timer_start(&d->kick, dir_kick_cb, 0, 0);
}

static int dir_status_err(uint8_t status)
{
    switch (status) {
    case DIR_STATUS_BAD:
        return OVL_EINVAL;
    case DIR_STATUS_UNKNOWN:
    case DIR_STATUS_NO_RELAYS:
        return OVL_ENOENT;
    case DIR_STATUS_FULL:
        return OVL_ENOMEM;
    case DIR_STATUS_REFUSED:
        return OVL_EPERM;
    default:
        return OVL_EPROTO;
    }
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
        int rc = dir_answer(d, n->id.pk, r->msg, r->msg_len, &rep, &rep_len);

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
        rc = dir_send(l, CELL_DIR_REQUEST, r->id, r->msg, r->msg_len);
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
    if (d->stopping)
        return OVL_ECLOSED;
    if (!d->reg && d->n_bs == 0)
        return OVL_ENOENT;
    if (d->n_pending >= DIR_MAX_PENDING)
        return OVL_ENOMEM;
    r = calloc(1, sizeof(*r));
    if (!r)
        return OVL_ENOMEM;
    r->id = dir_next_id(d);
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

/* ---- reply verification ------------------------------------------------ */

static void dir_cache_put(struct dir *d, const struct desc *ds)
{
    uint64_t wall = clock_wall_ms(), life = DIR_LOOKUP_CACHE_MS;
    struct dir_cache_ent *e;

    if (ds->expires_ms <= wall)
        return;
    if (ds->expires_ms - wall < life)
        life = ds->expires_ms - wall;
    HASH_FIND(hh, d->lookups, ds->id_pk, OVL_ED25519_PK, e);
    if (e) {
        dir_cache_del(d, e, true); /* re-added at the end: the table stays in age order */
    } else {
        if (HASH_COUNT(d->lookups) >= DIR_LOOKUP_CACHE_MAX)
            dir_cache_del(d, d->lookups, false);
        e = malloc(sizeof(*e));
        if (!e)
            return;
    }
    e->d = *ds;
    e->until_ms = clock_now_ms() + life;
    HASH_ADD(hh, d->lookups, d.id_pk, OVL_ED25519_PK, e);
}

void dir_report(struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    uint8_t msg[1 + OVL_ED25519_PK] = {DIR_REPORT};

    memcpy(msg + 1, pk, OVL_ED25519_PK);
    for (unsigned i = 0; d && i < d->n_bs; i++) {
        struct link *l = link_find(d->n, d->bs[i].spec.pk);

        /* The reply only says whether it was listed: nobody waits for it. */
        if (l && dir_send(l, CELL_DIR_REQUEST, dir_next_id(d), msg, sizeof(msg)) == 0)
            d->st.reports_sent++;
    }
}

void dir_forget(struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    struct dir_cache_ent *e;

    if (!d || !pk)
        return;
    HASH_FIND(hh, d->lookups, pk, OVL_ED25519_PK, e);
    if (e)
        dir_cache_del(d, e, false);
}

static const struct desc *dir_cache_get(struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    struct dir_cache_ent *e;

    HASH_FIND(hh, d->lookups, pk, OVL_ED25519_PK, e);
    if (!e)
        return NULL;
    if (clock_now_ms() >= e->until_ms || desc_expired(&e->d, clock_wall_ms())) {
        dir_cache_del(d, e, false);
        return NULL;
    }
    return &e->d;
}

static int dir_parse_list(struct dir *d, struct dir_req *r, const uint8_t *in, size_t len,
                          const uint8_t bs_pk[OVL_ED25519_PK])
{
    struct doc doc;
    struct desc *v = NULL;
    unsigned k = 0;
    int rc = doc_parse(&doc, in, len, bs_pk);

    if (rc)
        return rc;
    rc = OVL_EPROTO;
    if (doc.kind != DOC_LIST || doc.expires_ms <= clock_wall_ms())
        goto fail;
    rc = OVL_ENOMEM;
    v = calloc(doc.count ? doc.count : 1, sizeof(*v));
    if (!v)
        goto fail;
    for (unsigned i = 0; i < doc.count; i++) {
        rc = desc_parse(&v[k], doc.entries[i].desc, doc.entries[i].len);
        if (rc)
            goto fail;
        if (!(v[k].flags & DESC_RELAY)) {
            rc = OVL_EPROTO;
            goto fail;
        }
        if (!desc_expired(&v[k], clock_wall_ms()))
            k++;
    }
    doc_free(&doc);
    free(d->list);
    d->list = NULL;
    d->n_list = 0;
    d->list_until = 0;
    r->descs = v;
    r->n_descs = k;
    /* Keep a copy: the caller's array is lent only for its callback. */
    d->list = malloc((k ? k : 1) * sizeof(*v));
    if (d->list) {
        memcpy(d->list, v, k * sizeof(*v));
        d->n_list = k;
        d->list_until = clock_now_ms() + d->o.heartbeat_ms;
    }
    return 0;
fail:
    free(v);
    doc_free(&doc);
    return rc;
}

static int dir_chain_check(const struct dir_req *r, const struct doc *doc)
{
    /* The bootstrap may give fewer backups than asked when relays are few. */
    if (doc->kind != DOC_CHAIN || doc->length != r->length || doc->backups > r->backups ||
        doc->expires_ms <= clock_wall_ms())
        return OVL_EPROTO;
    return 0;
}

static int dir_parse_chain(struct dir *d, struct dir_req *r, const uint8_t *in, size_t len,
                           const uint8_t bs_pk[OVL_ED25519_PK])
{
    struct doc doc;
    struct dir_chain *ch = NULL;
    unsigned per;
    int rc = doc_parse(&doc, in, len, bs_pk);

    if (rc)
        return rc;
    rc = dir_chain_check(r, &doc);
    per = doc.backups + 1u;
    if (rc)
        goto fail;
    rc = OVL_ENOMEM;
    ch = calloc(1, sizeof(*ch));
    if (!ch)
        goto fail;
    for (unsigned i = 0; i < doc.count; i++) {
        struct desc *h = &ch->hops[i / per][i % per];

        rc = desc_parse(h, doc.entries[i].desc, doc.entries[i].len);
        if (rc)
            goto fail;
        rc = OVL_EPROTO;
        if (!(h->flags & DESC_RELAY) || desc_expired(h, clock_wall_ms()) ||
            memcmp(h->id_pk, d->n->id.pk, OVL_ED25519_PK) == 0 ||
            (r->has_pk && memcmp(h->id_pk, r->pk, OVL_ED25519_PK) == 0))
            goto fail;
        for (unsigned j = 0; j < i; j++) /* a relay twice in one chain is no chain */
            if (memcmp(ch->hops[j / per][j % per].id_pk, h->id_pk, OVL_ED25519_PK) == 0)
                goto fail;
    }
    memcpy(ch->ref, doc.ref, sizeof(ch->ref));
    ch->length = doc.length;
    ch->backups = doc.backups;
    ch->expires_ms = doc.expires_ms;
    doc_free(&doc);
    r->chain = ch;
    return 0;
fail:
    free(ch);
    doc_free(&doc);
    return rc;
}

static int dir_parse_lookup(struct dir *d, struct dir_req *r, const uint8_t *in, size_t len)
{
    struct desc *v = calloc(1, sizeof(*v));
    int rc;

    if (!v)
        return OVL_ENOMEM;
    rc = desc_parse(v, in, len);
    if (rc == 0 &&
        (memcmp(v->id_pk, r->pk, OVL_ED25519_PK) != 0 || desc_expired(v, clock_wall_ms())))
        rc = OVL_EPROTO;
    if (rc) {
        free(v);
        return rc;
    }
    dir_cache_put(d, v);
    r->descs = v;
    r->n_descs = 1;
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
    if (r->op == DIR_LIST)
        rc = dir_parse_list(d, r, msg + 2, len - 2, bs_pk);
    else if (r->op == DIR_CHAIN)
        rc = dir_parse_chain(d, r, msg + 2, len - 2, bs_pk);
    else
        rc = dir_parse_lookup(d, r, msg + 2, len - 2);
    if (rc) {
        d->st.bad_replies++;
        log_debug(&d->n->log, "directory: bad reply to %08x: %s", r->id, ovl_strerror(rc));
        dir_req_retry(d, r, rc == OVL_ENOMEM ? rc : OVL_EPROTO, true);
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

    if (d->stopping || !(rx = dir_rx_get(d, l->serial)))
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
    dir_serve(d, l, id, msg, len);
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

    if (d->stopping)
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

    if (d->stopping || i < 0)
        return;
    dir_register_with(d, (unsigned)i, l);
    dir_retry_waiting(d);
}

static void dir_link_closed(void *ctx, struct link *l)
{
    struct dir *d = ctx;
    struct dir_req *r, *tmp;
    int i;

    dir_rx_drop(d, l->serial);
    if (d->stopping)
        return;
    i = dir_bs_index(d, l->peer_pk);
    if (i >= 0 && !link_find(d->n, l->peer_pk))
        d->bs[i].registered = false;
    /* A bootstrap hands out only relays it can still reach: a node whose
     * last link to us closed (killed, or dead by heartbeat) is dropped
     * now, not a TTL later; it registers again when it comes back. */
    if (d->reg && link_was_open(l) && !link_find(d->n, l->peer_pk) &&
        registry_drop(d->reg, l->peer_pk, clock_now_ms()))
        d->st.dropped_link_closed++;
    DL_FOREACH_SAFE(d->pending, r, tmp)
    if (r->serial == l->serial)
        dir_req_retry(d, r, OVL_ECLOSED, true);
}

/* ---- timers ------------------------------------------------------------ */

static void dir_fire(struct dir_req *r)
{
    switch (r->op) {
    case DIR_CHAIN:
        r->cb.chain(r->arg, r->err, r->err ? NULL : r->chain);
        break;
    case DIR_LIST:
        r->cb.list(r->arg, r->err, r->err ? NULL : r->descs, r->err ? 0 : r->n_descs);
        break;
    default:
        r->cb.lookup(r->arg, r->err, r->err ? NULL : r->descs);
        break;
    }
}

static void dir_handle_closed(uv_handle_t *h)
{
    struct dir *d = h->data;

    d->open_handles--;
}

static void dir_close_timer(uv_timer_t *t)
{
    if (uv_is_closing((uv_handle_t *)t))
        return;
    uv_close((uv_handle_t *)t, dir_handle_closed);
}

static void dir_kick_cb(uv_timer_t *t)
{
    struct dir *d = t->data;
    struct dir_req *r;

    if (!d->started) { /* first turn of the loop: node_start has bound our addresses */
        d->started = true;
        if (!d->stopping)
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
    if (d->stopping && !d->done) {
        d->kick_closed = true;
        dir_close_timer(&d->kick);
    }
}

static void dir_tick_cb(uv_timer_t *t)
{
    struct dir *d = t->data;
    uint64_t now = clock_now_ms();
    struct dir_req *r, *tmp;

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

/* Replace zero fields by their defaults (onion_overlap_ms may be 0). */
static void dir_opts_fill(struct dir_opts *o)
{
    if (!o->heartbeat_ms)
        o->heartbeat_ms = 5000;
    if (!o->ttl_ms)
        o->ttl_ms = 15000;
    if (!o->chain_cache_ttl_ms)
        o->chain_cache_ttl_ms = 600000;
    if (!o->max_nodes)
        o->max_nodes = 4096;
    if (!o->max_chains)
        o->max_chains = 1024;
    if (!o->onion_rotate_ms)
        o->onion_rotate_ms = 3600000;
    if (!o->request_timeout_ms)
        o->request_timeout_ms = 5000;
    if (!o->desc_lifetime_ms)
        o->desc_lifetime_ms = 3 * o->onion_rotate_ms;
}

void dir_opts_defaults(struct dir_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->onion_overlap_ms = 600000;
    o->distinct_subnets = true;
    dir_opts_fill(o);
}

static void dir_timer_init(struct dir *d, uv_timer_t *t)
{
    uv_timer_init(d->n->loop, t);
    t->data = d;
    d->open_handles++;
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
    node_unobserve_links(d->n, &(struct link_observer){.ctx = d});
}

int dir_init(struct node *n, const struct dir_opts *o, const struct dir_bootstrap_spec *bs,
             unsigned n_bs, struct dir **out)
{
    struct dir *d;
    int rc;

    *out = NULL;
    if (n_bs > DIR_MAX_BOOTSTRAPS || (n_bs && !bs))
        return OVL_EINVAL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return OVL_ENOMEM;
    d->n = n;
    d->o = *o;
    dir_opts_fill(&d->o);
    for (unsigned i = 0; i < n_bs; i++)
        d->bs[i].spec = bs[i];
    d->n_bs = n_bs;
    ovl_random(&d->next_id, sizeof(d->next_id));
    if (n->roles & ROLE_BOOTSTRAP) {
        struct registry_opts ro = {.max_nodes = d->o.max_nodes,
                                   .max_chains = d->o.max_chains,
                                   .ttl_ms = d->o.ttl_ms,
                                   .chain_ttl_ms = d->o.chain_cache_ttl_ms,
                                   .distinct_subnets = d->o.distinct_subnets,
                                   .by_capacity = d->o.by_capacity};

        rc = registry_new(&ro, &d->reg);
        if (rc)
            goto fail;
    }
    rc = dir_handlers(d);
    if (rc)
        goto fail;
    dir_onion_new(d);
    dir_timer_init(d, &d->kick);
    dir_timer_init(d, &d->tick);
    dir_timer_init(d, &d->heartbeat);
    dir_timer_init(d, &d->rotate);
    dir_timer_init(d, &d->expire);
    uv_timer_start(&d->kick, dir_kick_cb, 0, 0);
    uint64_t tick = d->o.request_timeout_ms / 8;
    uv_timer_start(&d->tick, dir_tick_cb, tick ? tick : 1, tick ? tick : 1);
    dir_publish_start(d);
    n->dir = d;
    *out = d;
    return 0;
fail:
    registry_free(d->reg);
    free(d);
    return rc;
}

void dir_stop(struct dir *d)
{
    if (!d || d->stopping)
        return;
    d->stopping = true;
    dir_unhandle(d);
    while (d->pending)
        dir_req_finish(d, d->pending, OVL_ECLOSED);
    dir_close_timer(&d->tick);
    dir_close_timer(&d->heartbeat);
    dir_close_timer(&d->rotate);
    dir_close_timer(&d->expire);
    if (!d->done && !d->kick_closed && d->started) {
        d->kick_closed = true;
        dir_close_timer(&d->kick);
    }
    /* else the kick timer fires the callbacks, then closes itself */
}

void dir_free(struct dir *d)
{
    struct dir_rx *rx, *rtmp;
    struct dir_cache_ent *e, *etmp;
    struct dir_req *r, *tmp;

    if (!d)
        return;
    if (d->open_handles)
        log_error(&d->n->log, "directory: freed with %u timers open", d->open_handles);
    HASH_ITER(hh, d->rx, rx, rtmp)
    {
        dir_rx_free(d, rx);
    }
    HASH_ITER(hh, d->lookups, e, etmp)
    {
        dir_cache_del(d, e, false);
    }
    DL_FOREACH_SAFE(d->pending, r, tmp) dir_req_free(r);
    DL_FOREACH_SAFE(d->done, r, tmp) dir_req_free(r);
    free(d->list);
    registry_free(d->reg);
    if (d->n->dir == d)
        d->n->dir = NULL;
    ovl_wipe(d->onion, sizeof(d->onion));
    free(d);
}

const struct dir_onion *dir_onion_keys(const struct dir *d, unsigned *count)
{
    *count = d->n_onion;
    return d->onion;
}

uint64_t dir_onion_expiry(const struct dir *d, const struct dir_onion *k)
{
    if (k->retire_ms)
        return k->retire_ms;
    return k->created_ms + d->o.onion_rotate_ms + d->o.onion_overlap_ms;
}

int dir_request_chain(struct dir *d, unsigned length, unsigned backups,
                      const uint8_t exclude[OVL_ED25519_PK], dir_chain_cb cb, void *arg)
{
    struct dir_req *r;
    int rc;

    if (!cb || length < 1 || length > DIR_MAX_HOPS || backups > DIR_MAX_BACKUPS)
        return OVL_EINVAL;
    rc = dir_req_new(d, DIR_CHAIN, arg, &r);
    if (rc)
        return rc;
    r->cb.chain = cb;
    r->length = length;
    r->backups = backups;
    r->msg[1] = (uint8_t)length;
    r->msg[2] = (uint8_t)backups;
    if (exclude) {
        memcpy(r->msg + 3, exclude, OVL_ED25519_PK);
        memcpy(r->pk, exclude, OVL_ED25519_PK);
        r->has_pk = true;
    }
    r->msg_len = 3 + OVL_ED25519_PK;
    dir_req_try(d, r, true);
    return 0;
}

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
    if (d->list && clock_now_ms() < d->list_until) {
        r->descs = malloc((d->n_list ? d->n_list : 1) * sizeof(*r->descs));
        if (r->descs) {
            memcpy(r->descs, d->list, d->n_list * sizeof(*r->descs));
            r->n_descs = d->n_list;
            dir_req_finish(d, r, 0);
            return 0;
        }
    }
    dir_req_try(d, r, true);
    return 0;
}

int dir_lookup(struct dir *d, const uint8_t pk[OVL_ED25519_PK], dir_lookup_cb cb, void *arg)
{
    const struct desc *hit;
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
    hit = dir_cache_get(d, pk);
    if (hit && (r->descs = malloc(sizeof(*r->descs))) != NULL) {
        *r->descs = *hit;
        r->n_descs = 1;
        dir_req_finish(d, r, 0);
        return 0;
    }
    dir_req_try(d, r, true);
    return 0;
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

void dir_cancel(struct dir *d, void *arg)
{
    if (!d)
        return;
    dir_cancel_list(&d->pending, arg, &d->n_pending);
    dir_cancel_list(&d->done, arg, NULL);
    dir_cancel_list(&d->firing, arg, NULL);
}

bool dir_registered(const struct dir *d)
{
    return d && d->registered;
}

void dir_stats(const struct dir *d, struct dir_stats *st)
{
    *st = d->st;
    memset(&st->reg, 0, sizeof(st->reg));
    if (d->reg)
        registry_stats(d->reg, &st->reg);
}
