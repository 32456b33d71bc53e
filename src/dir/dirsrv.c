/* dirsrv.c - the bootstrap serving directory requests.
 *
 * A bootstrap answers every CELL_DIR_REQUEST from its registry
 * (registry.h): registrations and heartbeats of the link's authenticated
 * peer, the signed relay list, generated chains, lookups, and reports of
 * relays that failed someone. Any other node refuses (DIR_STATUS_REFUSED).
 * It drops nodes silent for ttl_ms (checked every half heartbeat) and, at
 * once, nodes whose last link to it closed.
 */
#include <stdlib.h>
#include <string.h>

#include "core/link.h"
#include "dir/dir_int.h"

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
        return registry_heartbeat(d->reg, peer, clock_now_ms()) ? DIR_STATUS_UNKNOWN
                                                                : DIR_STATUS_OK;
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

/* Build the reply to request msg from peer. */
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

/* Answer request id from l, or drop and count the reply. */
void dir_serve(struct dir *d, struct link *l, uint32_t id, const uint8_t *msg, size_t len)
{
    uint8_t *rep = NULL;
    size_t rep_len = 0;
    int rc = dir_answer(d, l->peer_pk, msg, len, &rep, &rep_len);

    if (rc == 0)
        rc = dirmsg_send(l, CELL_DIR_REPLY, id, rep, rep_len);
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

/* Start the expiry timer on a bootstrap. */
void dir_serve_start(struct dir *d)
{
    uint64_t half = d->o.heartbeat_ms / 2 ? d->o.heartbeat_ms / 2 : 1;

    if (d->reg)
        uv_timer_start(d->expire, dir_expire_cb, half, half);
}

/* Drop the peer of closed link l unless another link to it remains. */
void dir_serve_link_closed(struct dir *d, struct link *l)
{
    /* A bootstrap hands out only relays it can still reach: a node whose
     * last link to us closed (killed, or dead by heartbeat) is dropped
     * now, not a TTL later; it registers again when it comes back. */
    if (d->reg && link_was_open(l) && !link_find(d->n, l->peer_pk) &&
        registry_drop(d->reg, l->peer_pk, clock_now_ms()))
        d->st.dropped_link_closed++;
}

/* Call fn for every live relay in our registry. */
int dir_each_registered(const struct dir *d, void (*fn)(void *arg, const struct reg_node *n),
                        void *arg)
{
    if (!d || !d->reg)
        return OVL_EUNSUPP;
    registry_each_relay(d->reg, fn, arg);
    return 0;
}
