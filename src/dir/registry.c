/* registry.c - the bootstrap's live nodes and cached chains.
 *
 * Nodes are hashed by identity key, chains by (requester, slot): each
 * requester has REGISTRY_CHAINS_PER_REQUESTER slots, and a request looks
 * at those few to find its own (length, backups, exclude) or the slot to
 * fill, so one requester's chains never crowd out another's. uthash keeps
 * insertion order, so the head of the chain table is always the oldest
 * cached chain: evicting it at the cap costs O(1). Chains point at nodes;
 * a node is only freed after every chain that points at it is gone
 * (registry_expire sweeps chains first). A set of chains is one entry of
 * the chain table, dropped whole when any of its members is. Address
 * blocks with live nodes are hashed by block, each counting its nodes.
 *
 * Replicated nodes (from other bootstraps' DOC_SYNC) sit in the same
 * table with REG_NODE_REPLICATED set; a small array counts them per
 * origin for the share cap. The direct nodes also survive restarts
 * through registry_save / registry_restore.
 */
#include "lib/bytes.h"
#include "lib/htab.h"
#include "dir/registry.h"
#include "dir/select.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define REG_MAX_HOPS    8
#define REG_MAX_BACKUPS 4
#define REG_KEY_LEN     (OVL_ED25519_PK + 1)

struct rnode {
    struct reg_node pub; /* first: chains hold &pub and cast back */
    bool dropping;
    uint64_t block; /* the address block it counts against, 0: none */
    UT_hash_handle hh;
};

/* An address block with live nodes. */
struct rblock {
    uint64_t key;
    uint32_t nodes;
    UT_hash_handle hh;
};

struct rchain {
    struct reg_chain pub;
    uint8_t key[REG_KEY_LEN];     /* requester | slot */
    uint8_t excl[OVL_ED25519_PK]; /* the request's exclude, zero for none */
    uint8_t want_backups;         /* the request's backups (pub.backups: given) */
    UT_hash_handle hh;
};

struct reg_origin {
    uint8_t pk[OVL_ED25519_PK];
    uint32_t held; /* replicated nodes from it now */
};

struct registry {
    struct registry_opts o;
    struct rnode *nodes;
    struct rchain *chains;
    struct rblock *blocks;
    uint64_t registered, dropped, generated, cached, evicted, refreshed;
    uint64_t full, kept, ceded;
    uint64_t repl_changes;   /* replicated nodes added or given newer bytes */
    uint64_t direct_changes; /* direct nodes registered (again) or dropped */
    struct reg_origin origins[REGISTRY_MAX_ORIGINS];
    unsigned n_origins;
};

static struct rnode *rnode_of(const struct reg_node *n)
{
    return (struct rnode *)(uintptr_t)n;
}

/* Create an empty registry. */
int registry_new(const struct registry_opts *o, struct registry **out)
{
    struct registry *r;

    if (!out)
        return OVL_EINVAL;
    *out = NULL;
    if (!o || o->max_nodes == 0 || o->max_chains == 0)
        return OVL_EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return OVL_ENOMEM;
    r->o = *o;
    *out = r;
    return 0;
}

void registry_set_selection(struct registry *r, bool distinct_subnets, bool by_capacity)
{
    r->o.distinct_subnets = distinct_subnets;
    r->o.by_capacity = by_capacity;
}

static void chain_free(struct registry *r, struct rchain *c)
{
    HASH_DEL(r->chains, c);
    free(c->pub.nodes);
    free(c);
}

static void block_unref(struct registry *r, struct rnode *n);

static struct reg_origin *origin_find(struct registry *r, const uint8_t pk[OVL_ED25519_PK])
{
    for (unsigned i = 0; i < r->n_origins; i++)
        if (memcmp(r->origins[i].pk, pk, OVL_ED25519_PK) == 0)
            return &r->origins[i];
    return NULL;
}

/* n stops being replicated (dropped, or registered directly): its origin
 * holds one fewer. */
static void node_unreplicate(struct registry *r, struct rnode *n)
{
    struct reg_origin *o;

    if (!(n->pub.flags & REG_NODE_REPLICATED))
        return;
    o = origin_find(r, n->pub.origin);
    if (o && o->held)
        o->held--;
    n->pub.flags &= ~REG_NODE_REPLICATED;
    memset(n->pub.origin, 0, OVL_ED25519_PK);
}

static void node_free(struct registry *r, struct rnode *n)
{
    if (!(n->pub.flags & REG_NODE_REPLICATED))
        r->direct_changes++;
    node_unreplicate(r, n);
    block_unref(r, n);
    HASH_DEL(r->nodes, n);
    free(n->pub.raw);
    free(n);
}

/* Free r and everything in it. */
void registry_free(struct registry *r)
{
    struct rchain *c, *ctmp;
    struct rnode *n, *ntmp;

    if (!r)
        return;
    HASH_ITER(hh, r->chains, c, ctmp)
    {
        chain_free(r, c);
    }
    HASH_ITER(hh, r->nodes, n, ntmp)
    {
        node_free(r, n);
    }
    free(r);
}

static bool chain_has_dropping(const struct rchain *c)
{
    unsigned total = c->pub.count * c->pub.length * (1u + c->pub.backups);

    for (unsigned i = 0; i < total; i++) {
        if (rnode_of(c->pub.nodes[i])->dropping)
            return true;
    }
    return false;
}

/* Whether a node's descriptor now, replacing was, makes the cached chains
 * that hold it unusable: it no longer carries chains, or it names a family
 * member was did not (it may now be one family with a relay of the chain,
 * select.h). */
static bool replacement_spoils(const struct desc *was, const struct desc *now)
{
    if (desc_takes_chains(was) && !desc_takes_chains(now))
        return true;
    for (unsigned i = 0; i < now->n_family; i++)
        if (!desc_names_family(was, now->family[i]))
            return true;
    return false;
}

/* Evict chains holding a node marked dropping, and with by_time those past
 * their TTL at now_ms. */
static void sweep_chains(struct registry *r, uint64_t now_ms, bool by_time)
{
    struct rchain *c, *tmp;

    HASH_ITER(hh, r->chains, c, tmp)
    {
        if ((by_time && now_ms >= c->pub.expires_ms) || chain_has_dropping(c)) {
            chain_free(r, c);
            r->evicted++;
        }
    }
}

/* At max_nodes, drop one replicated node (and its chains) to make room
 * for a direct one: false when every node is direct. */
static bool registry_cede(struct registry *r, uint64_t now_ms)
{
    struct rnode *n, *tmp;

    HASH_ITER(hh, r->nodes, n, tmp)
    {
        if (!(n->pub.flags & REG_NODE_REPLICATED))
            continue;
        n->dropping = true;
        sweep_chains(r, now_ms, false);
        node_free(r, n);
        r->dropped++;
        r->ceded++;
        return true;
    }
    return false;
}

/* Add or replace the node whose signed descriptor is raw. */
int registry_register(struct registry *r, const uint8_t peer_pk[OVL_ED25519_PK], const uint8_t *raw,
                      size_t len, uint64_t now_ms, uint64_t wall_ms)
{
    struct desc d;
    struct rnode *n;
    uint8_t *copy;
    int rc;

    if (!r || !peer_pk || !raw)
        return OVL_EINVAL;
    rc = desc_parse(&d, raw, len);
    if (rc != 0)
        return rc;
    if (memcmp(d.id_pk, peer_pk, OVL_ED25519_PK) != 0)
        return OVL_EPERM;
    if (desc_expired(&d, wall_ms))
        return OVL_ETIMEDOUT;
    if (!desc_addresses_ok(&d, r->o.allow_private))
        return OVL_EUNSUPP;
    HASH_FIND(hh, r->nodes, d.id_pk, OVL_ED25519_PK, n);
    if (!n && HASH_COUNT(r->nodes) >= r->o.max_nodes && !registry_cede(r, now_ms)) {
        r->full++;
        return OVL_ENOMEM;
    }
    copy = malloc(len);
    if (!copy)
        return OVL_ENOMEM;
    memcpy(copy, raw, len);
    r->direct_changes++;

    if (n) {
        bool spoils = replacement_spoils(&n->pub.d, &d);

        node_unreplicate(r, n); /* a direct registration supersedes a copy */
        free(n->pub.raw);
        n->pub.d = d;
        n->pub.raw = copy;
        n->pub.raw_len = len;
        n->pub.last_seen_ms = now_ms;
        if (spoils) {
            n->dropping = true;
            sweep_chains(r, 0, false);
            n->dropping = false;
        }
        r->registered++;
        return 0;
    }

    n = calloc(1, sizeof(*n));
    if (!n) {
        free(copy);
        return OVL_ENOMEM;
    }
    n->pub.d = d;
    n->pub.raw = copy;
    n->pub.raw_len = len;
    n->pub.registered_ms = n->pub.last_seen_ms = now_ms;
    unsigned before = HASH_COUNT(r->nodes);
    HASH_ADD(hh, r->nodes, pub.d.id_pk, OVL_ED25519_PK, n);
    if (HASH_COUNT(r->nodes) == before) {
        free(copy);
        free(n);
        return OVL_ENOMEM;
    }
    r->registered++;
    return 0;
}

/* Record a heartbeat from pk. */
int registry_heartbeat(struct registry *r, const uint8_t pk[OVL_ED25519_PK], uint64_t now_ms)
{
    struct rnode *n;

    if (!r || !pk)
        return OVL_EINVAL;
    HASH_FIND(hh, r->nodes, pk, OVL_ED25519_PK, n);
    /* A copy from another bootstrap: the node must register here itself. */
    if (!n || (n->pub.flags & REG_NODE_REPLICATED))
        return OVL_ENOENT;
    if (now_ms > n->pub.last_seen_ms)
        n->pub.last_seen_ms = now_ms;
    n->pub.heartbeats++;
    return 0;
}

/* Drop silent or expired nodes and the chains that hold them. */
unsigned registry_expire(struct registry *r, uint64_t now_ms, uint64_t wall_ms)
{
    struct rnode *n, *tmp;
    unsigned dropped = 0;

    if (!r)
        return 0;
    HASH_ITER(hh, r->nodes, n, tmp)
    {
        bool silent = now_ms >= n->pub.last_seen_ms && now_ms - n->pub.last_seen_ms >= r->o.ttl_ms;
        n->dropping = silent || desc_expired(&n->pub.d, wall_ms);
        dropped += n->dropping;
    }
    sweep_chains(r, now_ms, true);
    if (dropped == 0)
        return 0;
    HASH_ITER(hh, r->nodes, n, tmp)
    {
        if (n->dropping)
            node_free(r, n);
    }
    r->dropped += dropped;
    return dropped;
}

unsigned registry_drop(struct registry *r, const uint8_t pk[OVL_ED25519_PK], uint64_t now_ms)
{
    struct rnode *n;

    if (!r || !pk)
        return 0;
    HASH_FIND(hh, r->nodes, pk, OVL_ED25519_PK, n);
    if (!n)
        return 0;
    if (n->pub.flags & REG_NODE_REPLICATED) { /* its link to us says nothing of it */
        r->kept++;
        return 0;
    }
    n->dropping = true;
    sweep_chains(r, now_ms, false);
    node_free(r, n);
    r->dropped++;
    return 1;
}

/* Return the node with identity pk, or NULL. */
const struct reg_node *registry_lookup(const struct registry *r, const uint8_t pk[OVL_ED25519_PK])
{
    struct rnode *n;

    if (!r || !pk)
        return NULL;
    HASH_FIND(hh, r->nodes, pk, OVL_ED25519_PK, n);
    return n ? &n->pub : NULL;
}

/* Call fn for every live relay. */
void registry_each_relay(const struct registry *r, void (*fn)(void *arg, const struct reg_node *n),
                         void *arg)
{
    struct rnode *n, *tmp;

    if (!r || !fn)
        return;
    HASH_ITER(hh, r->nodes, n, tmp)
    {
        if (n->pub.d.flags & DESC_RELAY)
            fn(arg, &n->pub);
    }
}

/* Call fn for every live relay that takes chains (the relay list's). */
void registry_each_listed(const struct registry *r, void (*fn)(void *arg, const struct reg_node *n),
                          void *arg)
{
    struct rnode *n, *tmp;

    if (!r || !fn)
        return;
    HASH_ITER(hh, r->nodes, n, tmp)
    {
        if (desc_takes_chains(&n->pub.d))
            fn(arg, &n->pub);
    }
}

/* The relay excl names, or NULL: an exclude that names no registered relay
 * (or the requester, never drawn anyway) changes nothing about the draw, and
 * must not make another request of the same (so another cached chain). */
static const uint8_t *chain_exclude(const struct registry *r, const uint8_t req[OVL_ED25519_PK],
                                    const uint8_t *excl)
{
    const struct reg_node *n = registry_lookup(r, excl);

    return n && desc_takes_chains(&n->d) && memcmp(excl, req, OVL_ED25519_PK) ? excl : NULL;
}

_Static_assert(offsetof(struct reg_node, d) == 0, "a reg_node is its descriptor first");

/* Draw c->pub.count chains for req (never req itself nor excl, which may
 * be NULL) into c with select_relays (select.h): each pick uniform (or
 * weighted) among the eligible relays the rules still allow, each chain on
 * its own. Every chain of a set gets the backups the poorest draw allows,
 * so that the set has one shape. */
static int chain_draw(struct registry *r, struct rchain *c, const uint8_t req[OVL_ED25519_PK],
                      const uint8_t excl[OVL_ED25519_PK], unsigned length, unsigned backups)
{
    const struct reg_node **cand, **picks;
    struct rnode *n, *tmp;
    unsigned k = c->pub.count, want = length * (1 + backups), got[REGISTRY_MAX_SET];
    uint32_t m = 0, eff = backups, per;

    cand = malloc(sizeof(*cand) * (HASH_COUNT(r->nodes) + 1));
    picks = malloc(sizeof(*picks) * k * want);
    if (!cand || !picks)
        goto nomem;
    HASH_ITER(hh, r->nodes, n, tmp)
    {
        if (!desc_takes_chains(&n->pub.d) || memcmp(n->pub.d.id_pk, req, OVL_ED25519_PK) == 0)
            continue;
        if (excl && memcmp(n->pub.d.id_pk, excl, OVL_ED25519_PK) == 0)
            continue;
        cand[m++] = &n->pub;
    }
    for (unsigned i = 0; i < k; i++) {
        /* Descriptors come first in reg_node, so the array serves both. */
        got[i] = select_relays((const struct desc **)cand, m, want, r->o.distinct_subnets,
                               r->o.by_capacity);
        if (got[i] < length) {
            free(cand);
            free(picks);
            return OVL_ENOENT;
        }
        memcpy(picks + i * want, cand, sizeof(*cand) * got[i]);
        eff = (got[i] - length) / length < eff ? (got[i] - length) / length : eff;
    }
    free(cand);
    per = length * (1 + eff);
    /* a set keeps only its members, not the candidate array */
    c->pub.nodes = malloc(sizeof(*picks) * k * per);
    if (!c->pub.nodes)
        goto nomem;
    for (unsigned i = 0; i < k; i++)
        memcpy(c->pub.nodes + i * per, picks + i * want, sizeof(*picks) * per);
    free(picks);
    c->pub.length = (uint8_t)length;
    c->pub.backups = (uint8_t)eff;
    return 0;
nomem:
    free(cand);
    free(picks);
    return OVL_ENOMEM;
}

/* Whether cached set e answers (length, backups, excl, count). */
static bool chain_matches(const struct rchain *e, unsigned length, unsigned backups,
                          const uint8_t excl[OVL_ED25519_PK], unsigned count)
{
    return e->pub.length == length && e->want_backups == backups && e->pub.count == count &&
           memcmp(e->excl, excl, OVL_ED25519_PK) == 0;
}

/* Whether the cached set e is to be drawn anew at now_ms: past its TTL, or
 * asked fresh once it is chain_refresh_ms old. */
static bool chain_stale(const struct registry *r, const struct rchain *e, unsigned flags,
                        uint64_t now_ms)
{
    if (now_ms >= e->pub.expires_ms)
        return true;
    return (flags & REG_FRESH) && now_ms - e->pub.created_ms >= r->o.chain_refresh_ms;
}

/* Find the requester's set for (length, backups, excl, count) among its
 * slots (key = requester | slot; the slot is set here): 1 with *c, to be
 * answered. Else 0, key naming the slot a new set takes and *c the set to
 * evict once it is drawn (NULL: none): a stale match, else the
 * requester's oldest when all its slots are taken or the table is full
 * and it holds one, else at the cap the table's oldest. Nothing is
 * evicted here, so a request that draws nothing costs nobody a set. */
static int chain_find(struct registry *r, uint8_t key[REG_KEY_LEN], unsigned length,
                      unsigned backups, const uint8_t excl[OVL_ED25519_PK], unsigned count,
                      unsigned flags, uint64_t now_ms, struct rchain **c)
{
    struct rchain *e, *oldest = NULL;
    unsigned held = 0, slot = REGISTRY_CHAINS_PER_REQUESTER;
    bool full = HASH_COUNT(r->chains) >= r->o.max_chains;

    for (unsigned s = 0; s < REGISTRY_CHAINS_PER_REQUESTER; s++) {
        key[OVL_ED25519_PK] = (uint8_t)s;
        HASH_FIND(hh, r->chains, key, REG_KEY_LEN, e);
        if (!e) {
            slot = slot < s ? slot : s;
            continue;
        }
        if (chain_matches(e, length, backups, excl, count)) {
            *c = e;
            return chain_stale(r, e, flags, now_ms) ? 0 : 1; /* stale: replaced in its slot */
        }
        held++;
        if (!oldest || e->pub.created_ms < oldest->pub.created_ms)
            oldest = e;
    }
    *c = full ? r->chains : NULL; /* the head is the oldest */
    if (held && (held == REGISTRY_CHAINS_PER_REQUESTER || full)) {
        *c = oldest;
        slot = oldest->key[OVL_ED25519_PK];
    }
    key[OVL_ED25519_PK] = (uint8_t)slot;
    return 0;
}

/* Draw a set into c and put it in the table in place of victim (may be
 * NULL). */
static int chain_add(struct registry *r, struct rchain *c, struct rchain *victim,
                     const uint8_t requester[OVL_ED25519_PK], const uint8_t *exclude,
                     unsigned backups, uint64_t now_ms)
{
    int rc = chain_draw(r, c, requester, exclude, c->pub.length, backups);

    if (rc != 0)
        return rc;
    ovl_random(c->pub.ref, sizeof(c->pub.ref));
    c->pub.created_ms = now_ms;
    c->pub.expires_ms = now_ms + r->o.chain_ttl_ms;
    if (victim) {
        /* a match drawn anew before its TTL was asked fresh, not evicted */
        if (now_ms < victim->pub.expires_ms && memcmp(victim->key, c->key, REG_KEY_LEN) == 0 &&
            chain_matches(victim, c->pub.length, backups, c->excl, c->pub.count))
            r->refreshed++;
        else
            r->evicted++;
        chain_free(r, victim);
    }
    unsigned before = HASH_COUNT(r->chains);
    HASH_ADD(hh, r->chains, key, REG_KEY_LEN, c);
    if (HASH_COUNT(r->chains) == before) {
        free(c->pub.nodes);
        return OVL_ENOMEM;
    }
    r->generated++;
    return 0;
}

/* Return the cached set for this request or draw one. */
int registry_chains(struct registry *r, const uint8_t requester[OVL_ED25519_PK], unsigned length,
                    unsigned backups, const uint8_t exclude[OVL_ED25519_PK], unsigned count,
                    unsigned flags, uint64_t now_ms, const struct reg_chain **out)
{
    uint8_t key[REG_KEY_LEN], excl[OVL_ED25519_PK] = {0};
    struct rchain *c, *victim;
    int rc;

    if (out)
        *out = NULL;
    if (!r || !requester || !out)
        return OVL_EINVAL;
    if (length < 1 || length > REG_MAX_HOPS || backups > REG_MAX_BACKUPS || count < 1 ||
        count > REGISTRY_MAX_SET || (flags & ~(unsigned)(REG_FRESH | REG_NO_DRAW)))
        return OVL_EINVAL;
    exclude = exclude ? chain_exclude(r, requester, exclude) : NULL;
    if (exclude)
        memcpy(excl, exclude, OVL_ED25519_PK);
    memcpy(key, requester, OVL_ED25519_PK);
    if (chain_find(r, key, length, backups, excl, count, flags, now_ms, &victim)) {
        r->cached++;
        *out = &victim->pub;
        return 0;
    }
    if (flags & REG_NO_DRAW)
        return OVL_EAGAIN;
    c = calloc(1, sizeof(*c));
    if (!c)
        return OVL_ENOMEM;
    memcpy(c->key, key, REG_KEY_LEN);
    memcpy(c->excl, excl, OVL_ED25519_PK);
    c->want_backups = (uint8_t)backups;
    c->pub.length = (uint8_t)length;
    c->pub.count = (uint8_t)count;
    rc = chain_add(r, c, victim, requester, exclude, backups, now_ms);
    if (rc != 0) {
        free(c);
        return rc;
    }
    *out = &c->pub;
    return 0;
}

/* Return the cached chain for this request or generate one. */
int registry_chain(struct registry *r, const uint8_t requester[OVL_ED25519_PK], unsigned length,
                   unsigned backups, const uint8_t exclude[OVL_ED25519_PK], uint64_t now_ms,
                   const struct reg_chain **out)
{
    return registry_chains(r, requester, length, backups, exclude, 1, 0, now_ms, out);
}

static struct rblock *block_find(const struct registry *r, uint64_t block)
{
    struct rblock *b;

    HASH_FIND(hh, r->blocks, &block, sizeof(block), b);
    return b;
}

/* n no longer counts against its block (dropped, or tagged anew). */
static void block_unref(struct registry *r, struct rnode *n)
{
    struct rblock *b = n->block ? block_find(r, n->block) : NULL;

    n->block = 0;
    if (!b || --b->nodes)
        return;
    HASH_DEL(r->blocks, b);
    free(b);
}

/* Tag node pk with the address block it registered from. */
int registry_set_block(struct registry *r, const uint8_t pk[OVL_ED25519_PK], uint64_t block)
{
    struct rnode *n;
    struct rblock *b;

    if (!r || !pk)
        return OVL_EINVAL;
    HASH_FIND(hh, r->nodes, pk, OVL_ED25519_PK, n);
    if (!n)
        return OVL_ENOENT;
    if (n->block == block)
        return 0;
    block_unref(r, n);
    if (!block)
        return 0;
    b = block_find(r, block);
    if (!b) {
        b = calloc(1, sizeof(*b));
        if (!b)
            return OVL_ENOMEM;
        b->key = block;
        HASH_ADD(hh, r->blocks, key, sizeof(b->key), b);
        if (!b->hh.tbl) {
            free(b);
            return OVL_ENOMEM;
        }
    }
    b->nodes++;
    n->block = block;
    return 0;
}

/* Return how many live nodes count against block. */
uint32_t registry_block_nodes(const struct registry *r, uint64_t block)
{
    const struct rblock *b = r && block ? block_find(r, block) : NULL;

    return b ? b->nodes : 0;
}

/* Return a number that changes whenever a node is registered or dropped. */
uint64_t registry_version(const struct registry *r)
{
    return r ? r->registered + r->dropped + r->repl_changes : 0;
}

/* Fill st with the current counts and counters. */
void registry_stats(const struct registry *r, struct registry_stats *st)
{
    struct rnode *n, *tmp;

    if (!st)
        return;
    memset(st, 0, sizeof(*st));
    if (!r)
        return;
    HASH_ITER(hh, r->nodes, n, tmp)
    {
        bool repl = n->pub.flags & REG_NODE_REPLICATED;

        if (n->pub.d.flags & DESC_RELAY) {
            st->relays++;
            st->dormant += !desc_takes_chains(&n->pub.d);
            st->replicated_relays += repl;
        } else {
            st->endpoints++;
            st->replicated_endpoints += repl;
        }
    }
    st->full = r->full;
    st->replicated_kept = r->kept;
    st->replicated_ceded = r->ceded;
    st->chains = HASH_COUNT(r->chains);
    st->registered = r->registered;
    st->dropped = r->dropped;
    st->chains_generated = r->generated;
    st->chains_cached = r->cached;
    st->chains_evicted = r->evicted;
    st->chains_refreshed = r->refreshed;
}

/* ---- several bootstraps: replicated nodes, the registry on disk -------- */

/* The origin entry of pk, made if there is room; NULL past
 * REGISTRY_MAX_ORIGINS. */
static struct reg_origin *origin_get(struct registry *r, const uint8_t pk[OVL_ED25519_PK])
{
    struct reg_origin *o = origin_find(r, pk);

    if (o || r->n_origins == REGISTRY_MAX_ORIGINS)
        return o;
    o = &r->origins[r->n_origins++];
    memcpy(o->pk, pk, OVL_ED25519_PK);
    o->held = 0;
    return o;
}

/* Verify raw as a descriptor a node may be listed with. */
static int replica_check(const struct registry *r, struct desc *d, const uint8_t *raw, size_t len,
                         uint64_t wall_ms)
{
    int rc = desc_parse(d, raw, len);

    if (rc)
        return rc;
    if (desc_expired(d, wall_ms))
        return OVL_ETIMEDOUT;
    return desc_addresses_ok(d, r->o.allow_private) ? 0 : OVL_EUNSUPP;
}

/* n, held as replicated, was named again: alive, and newer bytes taken
 * (verified first; the same bytes need no second look). */
static int replica_refresh(struct registry *r, struct rnode *n, const uint8_t *raw, size_t len,
                           uint64_t now_ms, uint64_t wall_ms)
{
    struct desc d;
    uint8_t *copy;
    int rc;

    if (n->pub.raw_len != len || memcmp(n->pub.raw, raw, len) != 0) {
        rc = replica_check(r, &d, raw, len, wall_ms);
        if (rc)
            return rc;
        if (d.published_ms <= n->pub.d.published_ms)
            goto alive; /* an older copy: the origin lags; ours stands */
        if (!(copy = malloc(len)))
            return OVL_ENOMEM;
        memcpy(copy, raw, len);
        if (replacement_spoils(&n->pub.d, &d)) {
            n->dropping = true; /* as registry_register */
            sweep_chains(r, now_ms, false);
            n->dropping = false;
        }
        free(n->pub.raw);
        n->pub.raw = copy;
        n->pub.raw_len = len;
        n->pub.d = d;
        r->repl_changes++;
    }
alive:
    if (now_ms > n->pub.last_seen_ms)
        n->pub.last_seen_ms = now_ms;
    return REG_SYNC_REFRESHED;
}

/* Add a node no one registered here, as a copy from origin. */
static int replica_add(struct registry *r, const uint8_t origin[OVL_ED25519_PK], const uint8_t *raw,
                       size_t len, uint64_t now_ms, uint64_t wall_ms)
{
    uint32_t share = r->o.max_nodes / 2 ? r->o.max_nodes / 2 : 1;
    struct reg_origin *o;
    struct rnode *n;
    unsigned before;
    int rc;

    o = origin_get(r, origin);
    if (!o || o->held >= share || HASH_COUNT(r->nodes) >= r->o.max_nodes)
        return OVL_ENOMEM;
    n = calloc(1, sizeof(*n));
    if (!n)
        return OVL_ENOMEM;
    rc = replica_check(r, &n->pub.d, raw, len, wall_ms);
    if (rc == 0 && !(n->pub.raw = malloc(len)))
        rc = OVL_ENOMEM;
    if (rc) {
        free(n);
        return rc;
    }
    memcpy(n->pub.raw, raw, len);
    n->pub.raw_len = len;
    n->pub.registered_ms = n->pub.last_seen_ms = now_ms;
    n->pub.flags = REG_NODE_REPLICATED;
    memcpy(n->pub.origin, origin, OVL_ED25519_PK);
    before = HASH_COUNT(r->nodes);
    HASH_ADD(hh, r->nodes, pub.d.id_pk, OVL_ED25519_PK, n);
    if (HASH_COUNT(r->nodes) == before) {
        free(n->pub.raw);
        free(n);
        return OVL_ENOMEM;
    }
    o->held++;
    r->repl_changes++;
    return REG_SYNC_ADDED;
}

/* Hold raw as a copy from origin's DOC_SYNC. */
int registry_replicate(struct registry *r, const uint8_t origin[OVL_ED25519_PK], const uint8_t *raw,
                       size_t len, uint64_t now_ms, uint64_t wall_ms)
{
    struct rnode *n;

    if (!r || !origin || !raw)
        return OVL_EINVAL;
    /* The identity sits at a fixed offset: found before anything is
     * verified, so that bytes already held cost a comparison only. */
    if (len < DESC_MIN_LEN || len > DESC_MAX_LEN)
        return OVL_EPROTO;
    HASH_FIND(hh, r->nodes, raw + DESC_ID_OFF, OVL_ED25519_PK, n);
    if (n && !(n->pub.flags & REG_NODE_REPLICATED))
        return REG_SYNC_DIRECT;
    if (n)
        return replica_refresh(r, n, raw, len, now_ms, wall_ms);
    return replica_add(r, origin, raw, len, now_ms, wall_ms);
}

/* Call fn for every node registered directly. */
void registry_each_direct(const struct registry *r, void (*fn)(void *arg, const struct reg_node *n),
                          void *arg)
{
    struct rnode *n, *tmp;

    if (!r || !fn)
        return;
    HASH_ITER(hh, r->nodes, n, tmp)
    {
        if (!(n->pub.flags & REG_NODE_REPLICATED))
            fn(arg, &n->pub);
    }
}

/* Return a number that changes with the direct nodes. */
uint64_t registry_direct_version(const struct registry *r)
{
    return r ? r->direct_changes : 0;
}

#define REG_FILE_VERSION 1
#define REG_FILE_HDR     5 /* version(1) | count(4) */

/* Serialise the direct nodes' descriptors. */
int registry_save(const struct registry *r, uint8_t **out, size_t *len)
{
    struct rnode *n, *tmp;
    size_t need = REG_FILE_HDR, pos = REG_FILE_HDR;
    uint32_t count = 0;
    uint8_t *buf;

    *out = NULL;
    *len = 0;
    HASH_ITER(hh, r->nodes, n, tmp)
    {
        if (!(n->pub.flags & REG_NODE_REPLICATED))
            need += 2 + n->pub.raw_len;
    }
    buf = malloc(need);
    if (!buf)
        return OVL_ENOMEM;
    HASH_ITER(hh, r->nodes, n, tmp)
    {
        if (n->pub.flags & REG_NODE_REPLICATED)
            continue;
        st_le16(buf + pos, (uint16_t)n->pub.raw_len);
        memcpy(buf + pos + 2, n->pub.raw, n->pub.raw_len);
        pos += 2 + n->pub.raw_len;
        count++;
    }
    buf[0] = REG_FILE_VERSION;
    st_le32(buf + 1, count);
    *out = buf;
    *len = pos;
    return 0;
}

/* Register directly what registry_save wrote, where it still holds. */
int registry_restore(struct registry *r, const uint8_t *buf, size_t len, uint64_t now_ms,
                     uint64_t wall_ms, unsigned *loaded, unsigned *skipped)
{
    size_t pos = REG_FILE_HDR;
    uint32_t count;

    *loaded = *skipped = 0;
    if (!r || !buf || len < REG_FILE_HDR || buf[0] != REG_FILE_VERSION)
        return OVL_EPROTO;
    count = ld_le32(buf + 1);
    for (uint32_t i = 0; i < count; i++) {
        size_t elen;

        if (len - pos < 2)
            return OVL_EPROTO;
        elen = ld_le16(buf + pos);
        pos += 2;
        if (elen < DESC_MIN_LEN || elen > len - pos)
            return OVL_EPROTO;
        /* Its own identity as the peer: the descriptor is signed by it. */
        if (registry_register(r, buf + pos + DESC_ID_OFF, buf + pos, elen, now_ms, wall_ms) == 0)
            (*loaded)++;
        else
            (*skipped)++;
        pos += elen;
    }
    return pos == len ? 0 : OVL_EPROTO;
}
