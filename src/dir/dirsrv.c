/* dirsrv.c - both ends of registration and the bootstrap server.
 *
 * Publishing: our onion keys, our signed descriptor, DIR_REGISTER on every
 * bootstrap link as it opens, heartbeats, rotation. Serving: answering
 * CELL_DIR_REQUEST from the registry (bootstraps) or refusing (others), and
 * expiring silent nodes.
 */
#include <stdlib.h>
#include <string.h>

#include "core/link.h"
#include "dir/dir_int.h"

/* ---- publishing -------------------------------------------------------- */

/* ---- our onion keys and descriptor ------------------------------------ */

static void dir_onion_prune(struct dir *d, uint64_t now)
{
    unsigned i = 1;

    while (i < d->n_onion) {
        if (d->onion[i].retire_ms && d->onion[i].retire_ms <= now) {
            ovl_wipe(&d->onion[i], sizeof(d->onion[i]));
            memmove(&d->onion[i], &d->onion[i + 1], (d->n_onion - i - 1) * sizeof(d->onion[0]));
            d->n_onion--;
            ovl_wipe(&d->onion[d->n_onion], sizeof(d->onion[0]));
        } else {
            i++;
        }
    }
}

void dir_onion_new(struct dir *d)
{
    uint64_t now = clock_now_ms();

    if (d->n_onion == DIR_MAX_ONION) /* the oldest goes early rather than the cap growing */
        ovl_wipe(&d->onion[--d->n_onion], sizeof(d->onion[0]));
    if (d->n_onion > 0) {
        memmove(&d->onion[1], &d->onion[0], d->n_onion * sizeof(d->onion[0]));
        d->onion[1].retire_ms = now + d->o.onion_overlap_ms;
    }
    ovl_x25519_keypair(d->onion[0].pk, d->onion[0].sk);
    d->onion[0].created_ms = now;
    d->onion[0].retire_ms = 0;
    d->n_onion++;
    d->desc_len = 0; /* the descriptor names the current key: rebuild it */
}

/* Build and sign our descriptor; OVL_ENOENT when we have nothing to publish. */
static int dir_build_desc(struct dir *d)
{
    struct node *n = d->n;
    struct desc ds;
    int rc;

    memset(&ds, 0, sizeof(ds));
    if (n->roles & ROLE_RELAY)
        ds.flags |= DESC_RELAY;
    if (n->roles & ROLE_CLIENT)
        ds.flags |= DESC_ENDPOINT;
    for (unsigned i = 0; i < n->n_listeners && ds.n_uris < DESC_MAX_URIS; i++)
        if (n->listen_uri[i][0])
            memcpy(ds.uris[ds.n_uris++], n->listen_uri[i], OVL_URI_MAX);
    if (!ds.flags || !ds.n_uris) {
        if (!d->said_no_desc)
            log_info(&n->log, "directory: not publishing a descriptor (%s)",
                     !ds.flags ? "neither relay nor client" : "no listen address");
        d->said_no_desc = true;
        return OVL_ENOENT;
    }
    ds.suites = (uint8_t)n->opts.aead_suites;
    ds.published_ms = clock_wall_ms();
    ds.expires_ms = ds.published_ms + d->o.desc_lifetime_ms;
    memcpy(ds.id_pk, n->id.pk, OVL_ED25519_PK);
    memcpy(ds.onion_pk, d->onion[0].pk, OVL_X25519_LEN);
    ds.capacity = d->o.capacity_kib;
    rc = desc_sign(&ds, &n->id, d->desc_raw + 1, sizeof(d->desc_raw) - 1, &d->desc_len);
    if (rc) {
        log_error(&n->log, "directory: cannot sign our descriptor: %s", ovl_strerror(rc));
        d->desc_len = 0;
        return rc;
    }
    d->desc_raw[0] = DIR_REGISTER; /* kept ready as a whole DIR_REGISTER request */
    d->desc_expires_ms = ds.expires_ms;
    return 0;
}

/* Make sure d->desc_raw holds a descriptor that is not close to expiry:
 * 0 if it did, 1 if a new one was built, else an error. */
static int dir_ensure_desc(struct dir *d)
{
    uint64_t margin = 2ull * d->o.heartbeat_ms;
    int rc;

    if (d->desc_len && clock_wall_ms() + margin < d->desc_expires_ms)
        return 0;
    d->desc_len = 0;
    rc = dir_build_desc(d);
    return rc ? rc : 1;
}

/* A bootstrap that also relays lists itself: no link to itself needed. */
void dir_self_register(struct dir *d, bool force)
{
    struct node *n = d->n;
    int rc;

    if (!d->reg || dir_ensure_desc(d) < 0)
        return;
    if (!force && registry_heartbeat(d->reg, n->id.pk, clock_now_ms()) == 0)
        return;
    rc = registry_register(d->reg, n->id.pk, d->desc_raw + 1, d->desc_len, clock_now_ms(),
                           clock_wall_ms());
    if (rc) {
        d->st.registrations_failed++;
        log_warn(&n->log, "directory: cannot register in our own registry: %s", ovl_strerror(rc));
        return;
    }
    d->st.registrations_ok++;
    if (!d->registered)
        log_info(&n->log, "directory: registered in our own registry");
    d->registered = true;
}

void dir_register_with(struct dir *d, unsigned i, struct link *l)
{
    struct dir_bs *b = &d->bs[i];
    int rc;

    if (dir_ensure_desc(d) < 0)
        return;
    b->reg_id = dir_next_id(d);
    rc = dir_send(l, CELL_DIR_REQUEST, b->reg_id, d->desc_raw, d->desc_len + 1);
    if (rc) {
        d->st.registrations_failed++;
        log_debug(&d->n->log, "directory: cannot send registration to %s: %s", b->spec.name,
                  ovl_strerror(rc));
        b->reg_id = 0;
        return;
    }
    log_debug(&d->n->log, "directory: registering with bootstrap %s", b->spec.name);
}

void dir_on_reg_reply(struct dir *d, unsigned i, struct link *l, uint32_t id, uint8_t status)
{
    struct dir_bs *b = &d->bs[i];

    if (id == b->reg_id) {
        b->reg_id = 0;
        if (status == DIR_STATUS_OK) {
            d->st.registrations_ok++;
            if (!b->registered)
                log_info(&d->n->log, "directory: registered with bootstrap %s", b->spec.name);
            b->registered = true;
            d->registered = true;
        } else {
            d->st.registrations_failed++;
            log_warn(&d->n->log, "directory: bootstrap %s refused our descriptor (status %u)",
                     b->spec.name, status);
        }
    } else if (id == b->hb_id) {
        b->hb_id = 0;
        if (status == DIR_STATUS_UNKNOWN) { /* it forgot us (restart, expiry) */
            log_info(&d->n->log, "directory: bootstrap %s forgot us, registering again",
                     b->spec.name);
            b->registered = false;
            dir_register_with(d, i, l);
        }
    } else {
        log_debug(&d->n->log, "directory: late reply %08x from %s", id, b->spec.name);
    }
}

static void dir_heartbeat_cb(uv_timer_t *t)
{
    static const uint8_t hb = DIR_HEARTBEAT;
    struct dir *d = t->data;
    bool fresh;
    int rc;

    dir_onion_prune(d, clock_now_ms());
    if (!d->desc_len) /* nothing published yet: that starts when a bootstrap link opens */
        return;
    rc = dir_ensure_desc(d);
    if (rc < 0)
        return;
    fresh = rc > 0; /* the old descriptor was about to expire */
    dir_self_register(d, fresh);
    for (unsigned i = 0; i < d->n_bs; i++) {
        struct dir_bs *b = &d->bs[i];
        struct link *l = link_find(d->n, b->spec.pk);

        if (!l)
            continue;
        if (fresh || !b->registered) { /* new descriptor, or an attempt failed or got lost */
            dir_register_with(d, i, l);
            continue;
        }
        b->hb_id = dir_next_id(d);
        if (dir_send(l, CELL_DIR_REQUEST, b->hb_id, &hb, 1) == 0)
            d->st.heartbeats_sent++;
    }
}

static void dir_rotate_cb(uv_timer_t *t)
{
    struct dir *d = t->data;
    struct link *l;

    dir_onion_prune(d, clock_now_ms());
    dir_onion_new(d);
    log_info(&d->n->log, "directory: rotated our onion key");
    if (dir_ensure_desc(d) < 0)
        return;
    dir_self_register(d, true);
    for (unsigned i = 0; i < d->n_bs; i++)
        if ((l = link_find(d->n, d->bs[i].spec.pk)) != NULL)
            dir_register_with(d, i, l);
}

/* ---- serving ----------------------------------------------------------- */

static int dir_srv_register(struct dir *d, const uint8_t peer[OVL_ED25519_PK], const uint8_t *in,
                            size_t len)
{
    char id[OVL_NODE_ID_LEN + 1];
    bool known = registry_lookup(d->reg, peer) != NULL;
    int rc = registry_register(d->reg, peer, in, len, clock_now_ms(), clock_wall_ms());

    node_id_format(id, peer);
    if (rc) {
        log_debug(&d->n->log, "bootstrap: registration of %s refused: %s", id, ovl_strerror(rc));
        return rc == OVL_EPERM    ? DIR_STATUS_REFUSED
               : rc == OVL_ENOMEM ? DIR_STATUS_FULL
                                  : DIR_STATUS_BAD;
    }
    if (!known)
        log_info(&d->n->log, "bootstrap: registered node %s", id);
    return DIR_STATUS_OK;
}

struct dir_list_ctx {
    struct doc_builder b;
    size_t need;
    bool full;
};

static void dir_list_size(void *arg, const struct reg_node *rn)
{
    struct dir_list_ctx *c = arg;

    c->need += 2 + rn->raw_len;
}

static void dir_list_add(void *arg, const struct reg_node *rn)
{
    struct dir_list_ctx *c = arg;

    /* Past DOC_MAX_LEN the list is cut short rather than not sent at all. */
    if (!c->full && doc_add(&c->b, rn->raw, rn->raw_len) != 0)
        c->full = true;
}

static int dir_srv_list(struct dir *d, uint8_t **res, size_t *res_len)
{
    static const uint8_t zero[16];
    struct dir_list_ctx c;
    uint64_t wall = clock_wall_ms();
    size_t cap;
    int rc;

    memset(&c, 0, sizeof(c));
    registry_each_relay(d->reg, dir_list_size, &c);
    cap = DOC_HDR_LEN + c.need + OVL_SIG_LEN;
    rc = doc_begin(&c.b, DOC_LIST, 0, 0, zero, wall, wall + d->o.ttl_ms,
                   cap > DOC_MAX_LEN ? DOC_MAX_LEN : cap);
    if (rc)
        return rc;
    registry_each_relay(d->reg, dir_list_add, &c);
    rc = doc_finish(&c.b, &d->n->id, res, res_len);
    doc_builder_free(&c.b);
    return rc ? rc : DIR_STATUS_OK;
}

static int dir_srv_chain(struct dir *d, const uint8_t peer[OVL_ED25519_PK], const uint8_t *in,
                         size_t len, uint8_t **res, size_t *res_len)
{
    static const uint8_t zero[OVL_ED25519_PK];
    const struct reg_chain *ch;
    struct doc_builder b;
    uint64_t now = clock_now_ms(), wall = clock_wall_ms(), left;
    size_t need = DOC_HDR_LEN + OVL_SIG_LEN;
    unsigned count, i;
    int rc;

    if (len != 2 + OVL_ED25519_PK)
        return DIR_STATUS_BAD;
    rc = registry_chain(d->reg, peer, in[0], in[1],
                        memcmp(in + 2, zero, OVL_ED25519_PK) ? in + 2 : NULL, now, &ch);
    if (rc)
        return rc == OVL_EINVAL   ? DIR_STATUS_BAD
               : rc == OVL_ENOENT ? DIR_STATUS_NO_RELAYS
                                  : DIR_STATUS_FULL;
    count = ch->length * (1u + ch->backups);
    for (i = 0; i < count; i++)
        need += 2 + ch->nodes[i]->raw_len;
    left = ch->expires_ms > now ? ch->expires_ms - now : 0;
    rc = doc_begin(&b, DOC_CHAIN, ch->length, ch->backups, ch->ref, wall, wall + left, need);
    if (rc)
        return rc;
    for (i = 0; i < count && rc == 0; i++)
        rc = doc_add(&b, ch->nodes[i]->raw, ch->nodes[i]->raw_len);
    if (rc == 0)
        rc = doc_finish(&b, &d->n->id, res, res_len);
    doc_builder_free(&b);
    return rc ? rc : DIR_STATUS_OK;
}

static int dir_srv_lookup(struct dir *d, const uint8_t *in, size_t len, uint8_t **res,
                          size_t *res_len)
{
    const struct reg_node *rn;

    if (len != OVL_ED25519_PK)
        return DIR_STATUS_BAD;
    rn = registry_lookup(d->reg, in);
    if (!rn)
        return DIR_STATUS_UNKNOWN;
    *res = malloc(rn->raw_len);
    if (!*res)
        return OVL_ENOMEM;
    memcpy(*res, rn->raw, rn->raw_len);
    *res_len = rn->raw_len;
    return DIR_STATUS_OK;
}

/* A node says relay `in` failed for it. Believe the relay, not the
 * report: probe it over our own link, which drops it (link closed, 16.3)
 * unless it answers within one heartbeat. Only registered nodes may
 * report, and a probe already pending is not sent again, so a liar costs
 * one PING per heartbeat. */
static int dir_srv_report(struct dir *d, const uint8_t peer[OVL_ED25519_PK], const uint8_t *in,
                          size_t len)
{
    struct link *l;
    uint64_t probes;

    if (len != OVL_ED25519_PK)
        return DIR_STATUS_BAD;
    if (!registry_lookup(d->reg, peer))
        return DIR_STATUS_REFUSED;
    if (!registry_lookup(d->reg, in))
        return DIR_STATUS_UNKNOWN;
    d->st.reports_in++;
    if (ovl_equal(in, d->n->id.pk, OVL_ED25519_PK))
        return DIR_STATUS_OK; /* we are alive */
    l = link_find(d->n, in);
    if (!l) {
        d->st.dropped_link_closed += registry_drop(d->reg, in, clock_now_ms());
        return DIR_STATUS_OK;
    }
    probes = d->n->ctr.probes; /* 0 also when a probe is pending: count new ones only */
    if (link_probe(l, d->n->opts.heartbeat_ms) == 0 && d->n->ctr.probes > probes)
        d->st.reports_probed++;
    return DIR_STATUS_OK;
}

static int dir_srv_op(struct dir *d, const uint8_t peer[OVL_ED25519_PK], const uint8_t *msg,
                      size_t len, uint8_t **res, size_t *res_len)
{
    if (!d->reg)
        return DIR_STATUS_REFUSED;
    switch (msg[0]) {
    case DIR_REGISTER:
        return dir_srv_register(d, peer, msg + 1, len - 1);
    case DIR_HEARTBEAT:
        if (len != 1)
            return DIR_STATUS_BAD;
        return registry_heartbeat(d->reg, peer, clock_now_ms()) ? DIR_STATUS_UNKNOWN : DIR_STATUS_OK;
    case DIR_LIST:
        return len == 1 ? dir_srv_list(d, res, res_len) : DIR_STATUS_BAD;
    case DIR_CHAIN:
        return dir_srv_chain(d, peer, msg + 1, len - 1, res, res_len);
    case DIR_LOOKUP:
        return dir_srv_lookup(d, msg + 1, len - 1, res, res_len);
    case DIR_REPORT:
        return dir_srv_report(d, peer, msg + 1, len - 1);
    default:
        return DIR_STATUS_BAD;
    }
}

int dir_answer(struct dir *d, const uint8_t peer[OVL_ED25519_PK], const uint8_t *msg, size_t len,
               uint8_t **out, size_t *out_len)
{
    uint8_t *res = NULL;
    size_t res_len = 0;
    int status = len ? dir_srv_op(d, peer, msg, len, &res, &res_len) : DIR_STATUS_BAD;

    *out = NULL;
    *out_len = 0;
    if (status < 0) {
        free(res);
        return status;
    }
    *out = malloc(2 + res_len);
    if (!*out) {
        free(res);
        return OVL_ENOMEM;
    }
    (*out)[0] = len ? msg[0] : 0;
    (*out)[1] = (uint8_t)status;
    if (res_len)
        memcpy(*out + 2, res, res_len);
    *out_len = 2 + res_len;
    free(res);
    return 0;
}

void dir_serve(struct dir *d, struct link *l, uint32_t id, const uint8_t *msg, size_t len)
{
    uint8_t *rep = NULL;
    size_t rep_len = 0;
    int rc = dir_answer(d, l->peer_pk, msg, len, &rep, &rep_len);

    if (rc == 0)
        rc = dir_send(l, CELL_DIR_REPLY, id, rep, rep_len);
    if (rc) {
        d->st.replies_dropped++;
        log_debug(&d->n->log, "directory: reply to %s dropped: %s", l->peer_id, ovl_strerror(rc));
    } else {
        d->st.replies_out++;
        log_debug(&d->n->log, "directory: op %u from %s: status %u", msg[0], l->peer_id, rep[1]);
    }
    free(rep);
}

#define DIR_LOG_DROPS 16

struct dir_stale {
    uint64_t now, wall, ttl;
    uint8_t pk[DIR_LOG_DROPS][OVL_ED25519_PK];
    unsigned n;
};

static void dir_find_stale(void *arg, const struct reg_node *rn)
{
    struct dir_stale *s = arg;

    if (s->n < DIR_LOG_DROPS &&
        (rn->last_seen_ms + s->ttl <= s->now || desc_expired(&rn->d, s->wall)))
        memcpy(s->pk[s->n++], rn->d.id_pk, OVL_ED25519_PK);
}

static void dir_expire_cb(uv_timer_t *t)
{
    struct dir *d = t->data;
    struct dir_stale s = {.now = clock_now_ms(), .wall = clock_wall_ms(), .ttl = d->o.ttl_ms};
    unsigned dropped, logged = 0;
    char id[OVL_NODE_ID_LEN + 1];

    /* The registry only counts its drops: note the likely ones first to name them. */
    registry_each_relay(d->reg, dir_find_stale, &s);
    dropped = registry_expire(d->reg, s.now, s.wall);
    for (unsigned i = 0; i < s.n; i++) {
        if (registry_lookup(d->reg, s.pk[i]))
            continue;
        node_id_format(id, s.pk[i]);
        log_info(&d->n->log, "bootstrap: dropped relay %s", id);
        logged++;
    }
    if (dropped > logged)
        log_info(&d->n->log, "bootstrap: dropped %u more node(s)", dropped - logged);
}

void dir_publish_start(struct dir *d)
{
    uint64_t half = d->o.heartbeat_ms / 2 ? d->o.heartbeat_ms / 2 : 1;

    uv_timer_start(&d->heartbeat, dir_heartbeat_cb, d->o.heartbeat_ms, d->o.heartbeat_ms);
    uv_timer_start(&d->rotate, dir_rotate_cb, d->o.onion_rotate_ms, d->o.onion_rotate_ms);
    if (d->reg)
        uv_timer_start(&d->expire, dir_expire_cb, half, half);
}

int dir_each_registered(const struct dir *d, void (*fn)(void *arg, const struct reg_node *n),
                        void *arg)
{
    if (!d || !d->reg)
        return OVL_EUNSUPP;
    registry_each_relay(d->reg, fn, arg);
    return 0;
}
