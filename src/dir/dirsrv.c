/* dirsrv.c - the bootstrap serving directory requests.
 *
 * A bootstrap answers every CELL_DIR_REQUEST from its registry
 * (registry.h): registrations and heartbeats of the link's authenticated
 * peer, the signed relay list, generated chains, lookups, and reports of
 * relays that failed someone. Any other node refuses (DIR_STATUS_REFUSED).
 * It drops nodes silent for ttl_ms (checked every half heartbeat, judged
 * as of the check before: dir_expire_cb) and, at once, nodes whose last
 * link to it closed.
 *
 * What one peer may cost it: a request over the link's bucket, or whose
 * whole reply the link cannot queue now, is answered BUSY before any work,
 * and the relay list (up to DOC_MAX_LEN signed) is built once and served
 * from that copy until the registry changes, so a flood of one-cell
 * requests buys neither signatures nor a growing queue. What one address
 * block may cost it (dblock.h): every request but heartbeats takes a token
 * of its block's request bucket, every chain draw one of its chain bucket,
 * and a block holds at most max_nodes_per_block registered identities:
 * link identities are free to mint, addresses are not.
 * What all peers together may cost it: relay lists of list_rate KiB a
 * second (a quarter second's worth at once), or one loop turn answering
 * hundreds of links' lists would hold the loop for seconds.
 */
#include <stdlib.h>
#include <string.h>

#include "core/admit.h"
#include "core/link.h"
#include "dir/dir_int.h"
#include "lib/bucket.h"

static int dir_srv_register(struct dir *d, const uint8_t peer[OVL_ED25519_PK], const uint8_t *in,
                            size_t len)
{
    char id[OVL_NODE_ID_LEN + 1];
    bool known = registry_lookup(d->reg, peer) != NULL;
    int rc = registry_register(d->reg, peer, in, len, clock_now_ms(), clock_wall_ms());

    node_id_format(id, peer);
    if (rc) {
        log_debug(&d->n->log, "bootstrap: registration of %s refused: %s", id, ovl_strerror(rc));
        d->st.bad_addresses += rc == OVL_EUNSUPP;
        if (rc == OVL_ENOMEM)
            dsync_registry_full(d);
        return rc == OVL_EPERM     ? DIR_STATUS_REFUSED
               : rc == OVL_ENOMEM  ? DIR_STATUS_FULL
               : rc == OVL_EUNSUPP ? DIR_STATUS_ADDRESS
                                   : DIR_STATUS_BAD;
    }
    if (!known)
        log_info(&d->n->log, "bootstrap: registered node %s", id);
    return DIR_STATUS_OK;
}

/* Whether l (NULL: ourselves) can queue a reply with len result bytes,
 * all of it, now; if not, counted: the request is answered BUSY instead. */
static bool dir_room(struct dir *d, struct link *l, size_t len)
{
    if (!l || link_can_send(l, (unsigned)((2 + len + DIRMSG_FRAG_DATA - 1) / DIRMSG_FRAG_DATA)))
        return true;
    d->st.replies_no_room++;
    return false;
}

/* Sign the list of live relays into d->list_doc. */
static int dir_list_build(struct dir *d, uint64_t now)
{
    int rc = dir_sign_nodes(d, DOC_LIST, registry_each_listed, d->o.list_lifetime_ms, &d->list_doc,
                            &d->list_doc_len);

    if (rc)
        return rc;
    d->list_version = registry_version(d->reg);
    d->list_built_ms = now;
    d->st.lists_built++;
    return 0;
}

#define DIR_LIST_BURST_US 250000u /* the list budget's bucket: this long of list_rate */

/* Take len bytes of the relay list budget at now (us), shared by every
 * link (GCRA: list_rate KiB a second, DIR_LIST_BURST_US of it at most at
 * once, a list past the bucket when it is full); false when it is spent. */
static bool dir_list_budget(struct dir *d, size_t len, uint64_t now)
{
    uint64_t t = d->list_tat_us > now ? d->list_tat_us : now;

    if (!d->o.list_rate)
        return true;
    if (t - now > DIR_LIST_BURST_US)
        return false;
    d->list_tat_us = t + (uint64_t)len * 1000000u / ((uint64_t)d->o.list_rate * 1024u);
    return true;
}

/* The relay list: the copy signed last, rebuilt once half its ttl has
 * passed, or half a heartbeat after the last build when the registry
 * changed since. So it is signed at most twice a heartbeat whatever is
 * asked, and a request costs a copy, for a link with room for it. */
static int dir_srv_list(struct dir *d, struct link *l, uint8_t **res, size_t *res_len)
{
    uint64_t now = clock_now_ms(), age = now - d->list_built_ms;
    int rc;

    if (!d->list_doc || age >= d->o.ttl_ms / 2 || age >= d->o.list_lifetime_ms / 2 ||
        (age >= d->o.heartbeat_ms / 2 && registry_version(d->reg) != d->list_version)) {
        rc = dir_list_build(d, now);
        if (rc)
            return rc;
    }
    if (!dir_room(d, l, d->list_doc_len))
        return DIR_STATUS_BUSY;
    if (l && !dir_list_budget(d, d->list_doc_len, clock_now_us())) {
        d->st.lists_limited++;
        return DIR_STATUS_BUSY;
    }
    *res = malloc(d->list_doc_len);
    if (!*res)
        return OVL_ENOMEM;
    memcpy(*res, d->list_doc, d->list_doc_len);
    *res_len = d->list_doc_len;
    return DIR_STATUS_OK;
}

/* The address block of l's peer (admit.h), 0 when unknown or for
 * ourselves. */
static uint64_t dir_block_of(const struct link *l)
{
    if (!l)
        return 0;
    return l->block ? l->block : admit_block_of(l->remote);
}

/* The set for a chain request, charging a draw to the block of l's peer:
 * a cached set needs no token; a draw (none cached, or FRESH honoured)
 * takes one, and without one the cached set is the answer if there is
 * one, else busy (OVL_EAGAIN). Refused draws are counted. */
static int dir_srv_draw(struct dir *d, struct link *l, const uint8_t peer[OVL_ED25519_PK],
                        const uint8_t *in, const uint8_t *excl, unsigned count, unsigned flags,
                        const struct reg_chain **ch)
{
    uint64_t now = clock_now_ms();
    unsigned reg_flags = flags & DIR_CHAIN_FRESH ? REG_FRESH : 0;
    int rc =
        registry_chains(d->reg, peer, in[0], in[1], excl, count, reg_flags | REG_NO_DRAW, now, ch);

    if (rc != OVL_EAGAIN)
        return rc;
    if (dblocks_take(d->blocks, dir_block_of(l), DBLOCK_CHAINS, d->o.block_chain_rate,
                     d->o.block_chain_burst, now))
        return registry_chains(d->reg, peer, in[0], in[1], excl, count, reg_flags, now, ch);
    d->st.chains_limited_block++;
    rc = registry_chains(d->reg, peer, in[0], in[1], excl, count, REG_NO_DRAW, now, ch);
    d->st.chains_held_block += rc == 0;
    return rc;
}

/* How many of the set's k chains fit one document, and its size
 * through *need. */
static unsigned dir_set_fit(const struct reg_chain *ch, size_t *need)
{
    unsigned per = ch->length * (1u + ch->backups), k;

    *need = DOC_HDR_LEN + OVL_SIG_LEN;
    for (k = 0; k < ch->count; k++) {
        size_t more = 0;

        for (unsigned i = 0; i < per; i++)
            more += 2 + ch->nodes[k * per + i]->raw_len;
        if (*need + more > DOC_MAX_LEN)
            break;
        *need += more;
    }
    return k;
}

/* DIR_CHAIN: length | backups | exclude, then count | flags (both
 * optional: one chain, no flags). One chain is answered as DOC_CHAIN, a
 * request of more as DOC_CHAIN_SET of as many of them as fit. */
static int dir_srv_chain(struct dir *d, struct link *l, const uint8_t peer[OVL_ED25519_PK],
                         const uint8_t *in, size_t len, uint8_t **res, size_t *res_len)
{
    static const uint8_t zero[OVL_ED25519_PK];
    const struct reg_chain *ch;
    struct doc_builder b;
    uint64_t now = clock_now_ms(), wall = clock_wall_ms(), left;
    unsigned count = len > 2 + OVL_ED25519_PK ? in[2 + OVL_ED25519_PK] : 1;
    unsigned flags = len > 2 + OVL_ED25519_PK ? in[3 + OVL_ED25519_PK] : 0, k;
    size_t need;
    int rc;

    if ((len != 2 + OVL_ED25519_PK && len != 4 + OVL_ED25519_PK) || count < 1 ||
        count > DIR_MAX_CHOICES || (flags & ~DIR_CHAIN_FRESH))
        return DIR_STATUS_BAD;
    rc = dir_srv_draw(d, l, peer, in, memcmp(in + 2, zero, OVL_ED25519_PK) ? in + 2 : NULL, count,
                      flags, &ch);
    if (rc)
        return rc == OVL_EINVAL   ? DIR_STATUS_BAD
               : rc == OVL_ENOENT ? DIR_STATUS_NO_RELAYS
               : rc == OVL_EAGAIN ? DIR_STATUS_BUSY
                                  : DIR_STATUS_FULL;
    k = dir_set_fit(ch, &need);
    if (k == 0)
        return DIR_STATUS_FULL;
    if (!dir_room(d, l, need))
        return DIR_STATUS_BUSY;
    left = ch->expires_ms > now ? ch->expires_ms - now : 0;
    rc = doc_begin(&b, count > 1 ? DOC_CHAIN_SET : DOC_CHAIN, ch->length, ch->backups, ch->ref,
                   wall, wall + left, need);
    if (rc)
        return rc;
    for (unsigned i = 0; i < k * ch->length * (1u + ch->backups) && rc == 0; i++)
        rc = doc_add(&b, ch->nodes[i]->raw, ch->nodes[i]->raw_len);
    if (rc == 0)
        rc = doc_finish(&b, &d->n->id, res, res_len);
    doc_builder_free(&b);
    return rc ? rc : DIR_STATUS_OK;
}

/* Copy len bytes of raw into *res. */
static int dir_copy_out(const uint8_t *raw, size_t len, uint8_t **res, size_t *res_len)
{
    *res = malloc(len);
    if (!*res)
        return OVL_ENOMEM;
    memcpy(*res, raw, len);
    *res_len = len;
    return DIR_STATUS_OK;
}

/* A relay (or a bootstrap that relays) answers its descriptor; a hidden
 * node its inbound descriptor; a node that publishes its address (an
 * endpoint only) its descriptor. A hidden node registers no descriptor,
 * and a relay's id is never held (dir_srv_idesc), so the order only
 * matters against a node that does both. */
static int dir_srv_lookup(struct dir *d, const uint8_t *in, size_t len, uint8_t **res,
                          size_t *res_len)
{
    const struct reg_node *rn;
    const struct ihold_ent *ie;

    if (len != OVL_ED25519_PK)
        return DIR_STATUS_BAD;
    rn = registry_lookup(d->reg, in);
    if (rn && (rn->d.flags & DESC_RELAY))
        return dir_copy_out(rn->raw, rn->raw_len, res, res_len);
    ie = ihold_get(d->hold, in, clock_wall_ms());
    if (ie)
        return dir_copy_out(ie->raw, ie->raw_len, res, res_len);
    if (rn)
        return dir_copy_out(rn->raw, rn->raw_len, res, res_len);
    return DIR_STATUS_UNKNOWN;
}

/* Whether pk is a relay's or a bootstrap's: such a node is never hidden. */
static bool dir_is_relay(const struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    const struct reg_node *rn = registry_lookup(d->reg, pk);

    if ((rn && (rn->d.flags & DESC_RELAY)) || ovl_equal(pk, d->n->id.pk, OVL_ED25519_PK))
        return true;
    for (unsigned i = 0; i < d->n_bs; i++)
        if (ovl_equal(pk, d->bs[i].spec.pk, OVL_ED25519_PK))
            return true;
    return false;
}

/* A hidden node's inbound descriptor, passed on by peer (the exit of one
 * of its chains). Checked in order: it decodes and its signature holds,
 * its node is no relay, idesc_accept takes it against the one held, the
 * caps. Each outcome is counted apart. */
static int dir_srv_idesc(struct dir *d, const uint8_t peer[OVL_ED25519_PK], const uint8_t *raw,
                         size_t len)
{
    enum idesc_verdict v;
    struct idesc in;
    int rc = idesc_parse(&in, raw, len);

    if (rc) {
        if (rc == OVL_ECRYPTO)
            d->st.idesc_bad_sig++;
        else
            d->st.idesc_bad++;
        return DIR_STATUS_BAD;
    }
    if (dir_is_relay(d, in.id_pk)) {
        d->st.idesc_relay++;
        return DIR_STATUS_REFUSED;
    }
    rc = ihold_put(d->hold, &in, raw, len, peer, clock_wall_ms(), &v);
    if (rc == OVL_EPERM) {
        d->st.idesc_refused[v]++;
        return v == IDESC_STALE || v == IDESC_REPLAY ? DIR_STATUS_REFUSED : DIR_STATUS_BAD;
    }
    if (rc) {
        d->st.idesc_full++;
        return DIR_STATUS_FULL;
    }
    d->st.idesc_accepted++;
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

/* A registration, within the cap of identities of l's peer's address
 * block: a new identity past it is refused (full) and counted; one
 * accepted counts against the block until it is dropped. */
static int dir_srv_register_block(struct dir *d, struct link *l, const uint8_t peer[OVL_ED25519_PK],
                                  const uint8_t *in, size_t len)
{
    uint64_t block = dir_block_of(l);
    const struct reg_node *rn = registry_lookup(d->reg, peer);
    bool known = rn && !(rn->flags & REG_NODE_REPLICATED); /* a copy counts nowhere yet */
    int status;

    if (!known && block && d->o.max_nodes_per_block &&
        registry_block_nodes(d->reg, block) >= d->o.max_nodes_per_block) {
        d->st.registrations_full_block++;
        return DIR_STATUS_FULL;
    }
    status = dir_srv_register(d, peer, in, len);
    if (status == DIR_STATUS_OK && !known && registry_set_block(d->reg, peer, block) != 0)
        log_warn(&d->n->log, "bootstrap: out of memory counting %s's address block", l->peer_id);
    return status;
}

static int dir_srv_op(struct dir *d, struct link *l, const uint8_t *msg, size_t len, uint8_t **res,
                      size_t *res_len)
{
    const uint8_t *peer = l ? l->peer_pk : d->n->id.pk;

    if (!d->reg)
        return DIR_STATUS_REFUSED;
    switch (msg[0]) {
    case DIR_REGISTER:
        return dir_srv_register_block(d, l, peer, msg + 1, len - 1);
    case DIR_HEARTBEAT:
        if (len != 1)
            return DIR_STATUS_BAD;
        return registry_heartbeat(d->reg, peer, clock_now_ms()) ? DIR_STATUS_UNKNOWN
                                                                : DIR_STATUS_OK;
    case DIR_LIST:
        return len == 1 ? dir_srv_list(d, l, res, res_len) : DIR_STATUS_BAD;
    case DIR_CHAIN:
        return dir_srv_chain(d, l, peer, msg + 1, len - 1, res, res_len);
    case DIR_LOOKUP:
        return dir_srv_lookup(d, msg + 1, len - 1, res, res_len);
    case DIR_REPORT:
        return dir_srv_report(d, peer, msg + 1, len - 1);
    case DIR_IDESC:
        return dir_srv_idesc(d, peer, msg + 1, len - 1);
    case DIR_SYNC:
        return dsync_serve(d, l, len - 1, res, res_len);
    default:
        return DIR_STATUS_BAD;
    }
}

/* Build the reply to request msg from l's peer (NULL: from ourselves). */
int dir_answer(struct dir *d, struct link *l, const uint8_t *msg, size_t len, uint8_t **out,
               size_t *out_len)
{
    uint8_t *res = NULL;
    size_t res_len = 0;
    int status = len ? dir_srv_op(d, l, msg, len, &res, &res_len) : DIR_STATUS_BAD;

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

/* Take a token from a link's bucket (GCRA: one per 1000 / request_rate
 * ms, request_burst at most); false when there is none. */
static bool dir_take_token(const struct dir *d, uint64_t *tat)
{
    return ovl_bucket_take(tat, d->o.request_rate, d->o.request_burst, clock_now_ms());
}

/* Whether a request from l may be looked at: a token of l's bucket, then
 * one of its address block's request bucket; the missing one counted. */
static bool dir_admit(struct dir *d, struct link *l, struct dir_rx *rx)
{
    if (!dir_take_token(d, &rx->tat_ms)) {
        d->st.requests_limited++;
        return false;
    }
    if (!dblocks_take(d->blocks, dir_block_of(l), DBLOCK_REQUESTS, d->o.block_request_rate,
                      d->o.block_request_burst, clock_now_ms())) {
        d->st.requests_limited_block++;
        return false;
    }
    return true;
}

/* Answer request id from l, BUSY over its rate, or drop and count the reply. */
void dir_serve(struct dir *d, struct link *l, struct dir_rx *rx, uint32_t id, const uint8_t *msg,
               size_t len)
{
    uint8_t busy[2] = {msg[0], DIR_STATUS_BUSY}, *rep = busy;
    size_t rep_len = sizeof(busy);
    int rc = 0;

    /* A heartbeat costs a hash lookup: never refused, or a busy link could
     * cost its node its registration. */
    if (msg[0] == DIR_HEARTBEAT || dir_admit(d, l, rx))
        rc = dir_answer(d, l, msg, len, &rep, &rep_len);
    if (rc == 0)
        rc = dirmsg_send(l, CELL_DIR_REPLY, id, rep, rep_len);
    if (rc) {
        d->st.replies_dropped++;
        log_debug(&d->n->log, "directory: reply to %s dropped: %s", l->peer_id, ovl_strerror(rc));
    } else {
        d->st.replies_out++;
        log_debug(&d->n->log, "directory: op %u from %s: status %u", msg[0], l->peer_id, rep[1]);
    }
    if (rep != busy)
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

/* Silence is judged as of the previous check, not now: the loop has read
 * its sockets since then, so a heartbeat that arrived while the loop was
 * held up (the host busy, the process stopped) counts before the node is
 * judged. Judged now, a timer that fires after such a pause, before any
 * read, would drop every node whose heartbeat waits in its socket. */
static void dir_expire_cb(uv_timer_t *t)
{
    struct dir *d = t->data;
    uint64_t now = clock_now_ms();
    struct dir_stale s = {.now = d->expire_prev_ms, .wall = clock_wall_ms(), .ttl = d->o.ttl_ms};
    unsigned dropped, logged = 0;
    char id[OVL_NODE_ID_LEN + 1];

    d->expire_prev_ms = now;
    if (!s.now) /* the first check: nothing read before it to judge by */
        return;
    /* The registry only counts its drops: note the likely ones first to name them. */
    registry_each_relay(d->reg, dir_find_stale, &s);
    dropped = registry_expire(d->reg, s.now, s.wall);
    d->st.idescs_dropped += ihold_expire(d->hold, s.wall);
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
