/* dirreply.c - what a bootstrap's reply to one of our requests yields.
 *
 * A relay list or a chain is a document the bootstrap signed: it is checked
 * against that bootstrap's key from the config (doc_parse), then against
 * the request (the chain's shape, nobody we excluded, not ourselves) and
 * the clock. A lookup's answer is the node's own signed descriptor, or a
 * hidden node's own signed inbound descriptor, judged by idesc_accept.
 * Verified lookups and the relay list are cached, so that the next request
 * is answered without asking (dir_cache_answer); the caller's copies are
 * always its own, since the caches change under it. The last verified
 * relay list stays after its heartbeat of freshness, and one read from
 * disk at start (dirstore.c) takes its place: either answers a list
 * request no bootstrap answered, until its document expires
 * (dir_list_fallback).
 *
 * Unless allow_private, a descriptor naming an address that is not public
 * (desc_addresses_ok) is never used, whoever signed the document: a relay
 * or client dials what it gets here, and must not be steered to its own
 * loopback, its private network or a name of the publisher's choosing.
 * Such relays are left out of a list; a chain or lookup holding one fails.
 */
#include <stdlib.h>
#include <string.h>

#include "dir/dir_int.h"

#define DIR_LOOKUP_CACHE_MAX    4096
#define DIR_LOOKUP_CACHE_MS     60000u
#define DIR_LIST_REFRESH_MS     600000u /* a node fetches the relay list at least this often */
#define DIR_LIST_REFRESH_MIN_MS 30000u  /* and at most this often by itself */

/* Return the error a reply status stands for: a table of the codes'
 * distances below OVL_ERR_BASE, shorter than a switch. */
int dir_status_err(uint8_t status)
{
    static const uint8_t err[] = {
        [DIR_STATUS_BAD] = OVL_ERR_BASE - OVL_EINVAL,
        [DIR_STATUS_UNKNOWN] = OVL_ERR_BASE - OVL_ENOENT,
        [DIR_STATUS_FULL] = OVL_ERR_BASE - OVL_ENOMEM,
        [DIR_STATUS_NO_RELAYS] = OVL_ERR_BASE - OVL_ENOENT,
        [DIR_STATUS_REFUSED] = OVL_ERR_BASE - OVL_EPERM,
        [DIR_STATUS_BUSY] = OVL_ERR_BASE - OVL_EAGAIN,
        [DIR_STATUS_ADDRESS] = OVL_ERR_BASE - OVL_EPERM,
    };

    if (status == DIR_STATUS_OK || status >= sizeof(err))
        return OVL_EPROTO;
    return OVL_ERR_BASE - err[status];
}

/* A malloc'd copy of n descriptors (one slot when n is 0, so that NULL
 * means only "no memory"). */
static struct desc *descs_dup(const struct desc *v, unsigned n)
{
    struct desc *copy = malloc((n ? n : 1) * sizeof(*v));

    if (copy && n)
        memcpy(copy, v, n * sizeof(*v));
    return copy;
}

/* ---- the lookup cache --------------------------------------------------- */

/* Take e out of the lookup cache, and free it unless it is to be reused. */
static void dir_cache_del(struct dir *d, struct dir_cache_ent *e, bool keep)
{
    HASH_DEL(d->lookups, e);
    if (!keep)
        free(e);
}

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

static const struct desc *dir_cache_get(struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    struct dir_cache_ent *e;

    HASH_FIND(hh, d->lookups, pk, OVL_ED25519_PK, e);
    if (!e)
        return NULL;
    if (desc_expired(&e->d, clock_wall_ms())) {
        dir_cache_del(d, e, false);
        return NULL;
    }
    /* Past its 60 s it is asked again, but kept until its descriptor
     * expires: the answer when no bootstrap answers (dir_lookup_fallback). */
    return clock_now_ms() < e->until_ms ? &e->d : NULL;
}

/* pk's cached descriptor however old, while it has not expired. */
static const struct desc *dir_cache_stale(struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    struct dir_cache_ent *e;

    HASH_FIND(hh, d->lookups, pk, OVL_ED25519_PK, e);
    return e && !desc_expired(&e->d, clock_wall_ms()) ? &e->d : NULL;
}

/* ---- the cache of hidden nodes' inbound descriptors ---------------------- */

static struct dir_icache_ent *dir_icache_find(struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    struct dir_icache_ent *e;

    HASH_FIND(hh, d->ilookups, pk, OVL_ED25519_PK, e);
    return e;
}

/* Serve in for its key until it expires, for DIR_LOOKUP_CACHE_MS at
 * most, and remember its seq after that. The newest entry goes last, so
 * the head is the one to evict at the cap: the seqs kept are bounded too
 * (an older inbound descriptor could come back only once
 * DIR_LOOKUP_CACHE_MAX other hidden nodes pushed its node out, and only
 * until it expires, an hour at most). */
static void dir_icache_put(struct dir *d, const struct idesc *in)
{
    uint64_t wall = clock_wall_ms(), life = DIR_LOOKUP_CACHE_MS;
    struct dir_icache_ent *e = dir_icache_find(d, in->id_pk);
    unsigned before;

    if (in->expires_ms <= wall) /* expired since it was taken: only its seq is kept */
        life = 0;
    else if (in->expires_ms - wall < life)
        life = in->expires_ms - wall;
    if (e) {
        HASH_DEL(d->ilookups, e); /* re-added at the end: the table stays in age order */
    } else {
        if (HASH_COUNT(d->ilookups) >= DIR_LOOKUP_CACHE_MAX) {
            struct dir_icache_ent *old = d->ilookups;

            HASH_DEL(d->ilookups, old);
            free(old);
        }
        e = malloc(sizeof(*e));
        if (!e)
            return;
        memcpy(e->pk, in->id_pk, OVL_ED25519_PK);
    }
    e->in = *in;
    e->seq = in->seq;
    e->until_ms = life ? clock_now_ms() + life : 0;
    before = HASH_COUNT(d->ilookups);
    HASH_ADD(hh, d->ilookups, pk, OVL_ED25519_PK, e);
    if (HASH_COUNT(d->ilookups) == before)
        free(e); /* out of memory: not cached */
}

/* pk's cached inbound descriptor while it may be served, else NULL. */
static const struct idesc *dir_icache_get(struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    struct dir_icache_ent *e = dir_icache_find(d, pk);

    if (!e || !e->until_ms)
        return NULL;
    if (clock_now_ms() >= e->until_ms || clock_wall_ms() >= e->in.expires_ms) {
        e->until_ms = 0; /* its seq stays */
        return NULL;
    }
    return &e->in;
}

/* Serve pk's inbound descriptor no more from the cache; keep its seq. */
static void dir_icache_unserve(struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    struct dir_icache_ent *e = dir_icache_find(d, pk);

    if (e)
        e->until_ms = 0;
}

/* Take pk's descriptor out of the lookup cache. */
static void dir_cache_forget_desc(struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    struct dir_cache_ent *e;

    HASH_FIND(hh, d->lookups, pk, OVL_ED25519_PK, e);
    if (e)
        dir_cache_del(d, e, false);
}

/* Forget pk's cached descriptor, and its inbound descriptor but for its
 * seq. */
void dir_forget(struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    if (!d || !pk)
        return;
    dir_cache_forget_desc(d, pk);
    dir_icache_unserve(d, pk);
}

/* Answer a lookup or a list from the caches if they can. */
int dir_cache_answer(struct dir *d, struct dir_req *r)
{
    const struct desc *hit;
    const struct idesc *ihit;

    if (r->op == DIR_LOOKUP) {
        hit = dir_cache_get(d, r->pk);
        if (hit && (r->descs = descs_dup(hit, 1)) != NULL) {
            r->n_descs = 1;
            return 1;
        }
        ihit = hit ? NULL : dir_icache_get(d, r->pk);
        if (ihit && (r->in = malloc(sizeof(*r->in))) != NULL) {
            *r->in = *ihit;
            return 1;
        }
    } else if (r->op == DIR_LIST && d->list && clock_now_ms() < d->list_until) {
        r->descs = descs_dup(d->list, d->n_list);
        if (r->descs) {
            r->n_descs = d->n_list;
            return 1;
        }
    }
    return 0;
}

/* Empty the caches. */
void dir_caches_free(struct dir *d)
{
    struct dir_cache_ent *e, *etmp;
    struct dir_icache_ent *ie, *itmp;

    HASH_ITER(hh, d->lookups, e, etmp)
    {
        dir_cache_del(d, e, false);
    }
    HASH_ITER(hh, d->ilookups, ie, itmp)
    {
        HASH_DEL(d->ilookups, ie);
        free(ie);
    }
    free(d->list);
    d->list = NULL;
    d->n_list = 0;
    d->list_expires = 0;
}

/* ---- checking replies -------------------------------------------------- */

/* Whether ds may be used here; counted when it may not. */
static bool dir_addresses_ok(struct dir *d, const struct desc *ds)
{
    if (desc_addresses_ok(ds, d->o.allow_private))
        return true;
    d->st.bad_addresses++;
    return false;
}

/* Check a relay list document (in: len bytes) against bs_pk and the clock,
 * and leave in doc->descs the live descriptors we may dial, n of them. */
static int dir_list_doc(struct dir *d, struct doc *doc, const uint8_t *in, size_t len,
                        const uint8_t bs_pk[OVL_ED25519_PK], unsigned *n)
{
    uint64_t wall = clock_wall_ms();
    unsigned k = 0;
    int rc = doc_parse(doc, in, len, bs_pk);

    if (rc)
        return rc;
    if (doc->kind != DOC_LIST || doc->expires_ms <= wall) {
        doc_free(doc);
        return OVL_EPROTO;
    }
    for (unsigned i = 0; i < doc->count; i++) {
        if (!(doc->descs[i].flags & DESC_RELAY)) {
            doc_free(doc);
            return OVL_EPROTO;
        }
        /* keep the live ones we may dial, in order */
        if (!desc_expired(&doc->descs[i], wall) && dir_addresses_ok(d, &doc->descs[i]))
            doc->descs[k++] = doc->descs[i];
    }
    *n = k;
    return 0;
}

/* Make doc's first n descriptors the cached list, fresh (answered from the
 * cache for a heartbeat) or only the fallback; its array is taken. */
static void dir_list_keep(struct dir *d, struct doc *doc, unsigned n, bool fresh)
{
    free(d->list);
    d->list = doc->descs ? doc->descs : calloc(1, sizeof(*d->list));
    doc->descs = NULL;
    d->n_list = d->list ? n : 0;
    d->list_until = d->list && fresh ? clock_now_ms() + d->o.heartbeat_ms : 0;
    d->list_expires = d->list ? doc->expires_ms : 0;
}

static int dir_parse_list(struct dir *d, struct dir_req *r, const uint8_t *in, size_t len,
                          const uint8_t bs_pk[OVL_ED25519_PK])
{
    struct doc doc;
    unsigned k = 0;
    int rc = dir_list_doc(d, &doc, in, len, bs_pk, &k);

    if (rc)
        return rc;
    /* The caller's copy is lent only for its callback: ours is the cache. */
    r->descs = descs_dup(doc.descs, k);
    if (!r->descs) {
        doc_free(&doc);
        return OVL_ENOMEM;
    }
    r->n_descs = k;
    dir_list_keep(d, &doc, k, true);
    if (!d->reg) /* a bootstrap's own list is its registry: nothing to keep */
        dir_store_save(d, in, len, doc.published_ms, doc.expires_ms, k);
    doc_free(&doc);
    return 0;
}

int dir_list_restore(struct dir *d, const uint8_t *raw, size_t len)
{
    struct doc doc;
    unsigned k = 0;
    int rc = OVL_ENOENT;

    for (unsigned i = 0; i < d->n_bs; i++) {
        rc = dir_list_doc(d, &doc, raw, len, d->bs[i].spec.pk, &k);
        if (rc == 0)
            break;
    }
    if (rc)
        return rc;
    dir_list_keep(d, &doc, k, false);
    d->store_published_ms = doc.published_ms; /* written already */
    d->store_relays = k;
    doc_free(&doc);
    d->st.list_restored = d->list != NULL;
    return d->list ? 0 : OVL_ENOMEM;
}

int dir_lookup_fallback(struct dir *d, struct dir_req *r)
{
    uint64_t wall = clock_wall_ms();
    const struct desc *hit = NULL;

    for (unsigned i = 0; d->list && wall < d->list_expires && i < d->n_list; i++) {
        const struct desc *e = &d->list[i];

        if (memcmp(e->id_pk, r->pk, OVL_ED25519_PK) == 0 && !desc_expired(e, wall)) {
            hit = e;
            break;
        }
    }
    if (!hit) /* not a listed relay: the node's last answer, while it lasts */
        hit = dir_cache_stale(d, r->pk);
    if (!hit || !(r->descs = descs_dup(hit, 1)))
        return 0;
    r->n_descs = 1;
    d->st.lookup_fallbacks++;
    return 1;
}

bool dir_has_list(const struct dir *d)
{
    return d && d->list && clock_wall_ms() < d->list_expires;
}

bool dir_list_due(struct dir *d, uint64_t now)
{
    uint64_t wall = clock_wall_ms(), wait = DIR_LIST_REFRESH_MS;

    if (d->reg || d->n_bs == 0)
        return false;
    /* Registered and holding no list: ask now. A relay reaches the next
     * hop of a chain it has no link to through the list while no
     * bootstrap answers, so it must hold one before they fail. */
    if (!d->list && (d->flags & (DIR_F_REGISTERED | DIR_F_LIST_ASKED)) == DIR_F_REGISTERED) {
        d->flags |= DIR_F_LIST_ASKED;
        d->list_next_ms = now + DIR_LIST_REFRESH_MIN_MS;
        return true;
    }
    if (!d->list_next_ms) /* the first after a while: roles that need one ask at once */
        d->list_next_ms = now + DIR_LIST_REFRESH_MIN_MS;
    if (now < d->list_next_ms)
        return false;
    /* Half of what the list we hold has left, between
     * DIR_LIST_REFRESH_MIN_MS and DIR_LIST_REFRESH_MS: fresh enough to
     * fall back on, and never a load on the bootstraps. */
    if (d->list && d->list_expires > wall && (d->list_expires - wall) / 2 < wait)
        wait = (d->list_expires - wall) / 2;
    if (!d->list || wait < DIR_LIST_REFRESH_MIN_MS)
        wait = DIR_LIST_REFRESH_MIN_MS;
    d->list_next_ms = now + wait;
    return true;
}

int dir_list_fallback(struct dir *d, struct dir_req *r)
{
    uint64_t wall = clock_wall_ms();
    unsigned k = 0;

    if (!d->list || wall >= d->list_expires || !(r->descs = descs_dup(d->list, d->n_list)))
        return 0;
    for (unsigned i = 0; i < d->n_list; i++)
        if (!desc_expired(&r->descs[i], wall))
            r->descs[k++] = r->descs[i];
    r->n_descs = k;
    d->st.list_fallbacks++;
    return 1;
}

/* The document's kind and shape against the request: one chain for a
 * request of one, else a set of at most the count asked. */
static int dir_chain_check(const struct dir_req *r, const struct doc *doc, uint64_t wall)
{
    uint8_t kind = r->count > 1 ? DOC_CHAIN_SET : DOC_CHAIN;

    /* The bootstrap may give fewer backups than asked when relays are few,
     * and fewer chains than asked when a set would not fit one document. */
    if (doc->kind != kind || doc->length != r->length || doc->backups > r->backups ||
        doc_chains(doc) < 1 || doc_chains(doc) > r->count || doc->expires_ms <= wall)
        return OVL_EPROTO;
    return 0;
}

/* Fill ch, chain i of doc, from its entries; OVL_EPROTO when a hop is one
 * we must not use (doc_parse saw to the rest: relays only, each once in
 * a chain). */
static int dir_chain_fill(struct dir *d, const struct dir_req *r, const struct doc *doc, unsigned i,
                          uint64_t wall, struct dir_chain *ch)
{
    unsigned per = doc->backups + 1u, first = i * doc->length * per;

    for (unsigned j = 0; j < doc->length * per; j++) {
        const struct desc *h = &doc->descs[first + j];

        if (desc_expired(h, wall) || memcmp(h->id_pk, d->n->id.pk, OVL_ED25519_PK) == 0 ||
            (r->has_pk && memcmp(h->id_pk, r->pk, OVL_ED25519_PK) == 0) || !dir_addresses_ok(d, h))
            return OVL_EPROTO;
        ch->hops[j / per][j % per] = *h;
    }
    memcpy(ch->ref, doc->ref, sizeof(ch->ref));
    ch->ref[sizeof(ch->ref) - 1] ^= (uint8_t)i;
    ch->length = doc->length;
    ch->backups = doc->backups;
    ch->expires_ms = doc->expires_ms;
    return 0;
}

static int dir_parse_chain(struct dir *d, struct dir_req *r, const uint8_t *in, size_t len,
                           const uint8_t bs_pk[OVL_ED25519_PK])
{
    uint64_t wall = clock_wall_ms();
    struct doc doc;
    struct dir_chain *ch = NULL;
    unsigned k;
    int rc = doc_parse(&doc, in, len, bs_pk);

    if (rc)
        return rc;
    rc = dir_chain_check(r, &doc, wall);
    if (rc)
        goto fail;
    k = doc_chains(&doc);
    rc = OVL_ENOMEM;
    ch = calloc(k, sizeof(*ch)); /* large: never on the stack */
    if (!ch)
        goto fail;
    rc = 0;
    for (unsigned i = 0; i < k && rc == 0; i++)
        rc = dir_chain_fill(d, r, &doc, i, wall, &ch[i]);
    if (rc)
        goto fail;
    doc_free(&doc);
    r->chain = ch;
    r->n_chains = k;
    return 0;
fail:
    free(ch);
    doc_free(&doc);
    return rc;
}

/* A lookup answered by an inbound descriptor: verified, then judged by
 * idesc_accept under the key asked for, against the newest one we took
 * for it. The same seq again is that one fetched anew (the cache timed
 * out, two lookups crossed): only an older one is refused as stale. Each
 * refusal is counted by its reason. */
static int dir_parse_ilookup(struct dir *d, struct dir_req *r, const uint8_t *raw, size_t len)
{
    const struct dir_icache_ent *e = dir_icache_find(d, r->pk);
    enum idesc_verdict v;
    struct idesc *in = malloc(sizeof(*in));
    int rc;

    if (!in)
        return OVL_ENOMEM;
    rc = idesc_parse(in, raw, len);
    if (rc) {
        if (rc == OVL_ECRYPTO)
            d->st.idesc_answer_bad_sig++;
        else
            d->st.idesc_answer_bad++;
        free(in);
        return rc;
    }
    /* The key and the clock by idesc_accept, the counter here: not below. */
    v = idesc_accept(in, r->pk, clock_wall_ms(), 0, false);
    if (v == IDESC_OK && e && in->seq < e->seq)
        v = IDESC_STALE;
    if (v != IDESC_OK) {
        d->st.idesc_answer_refused[v]++;
        free(in);
        return OVL_EPROTO;
    }
    d->st.idesc_answers++;
    dir_cache_forget_desc(d, r->pk);
    dir_icache_put(d, in);
    r->in = in;
    return 0;
}

static int dir_parse_lookup(struct dir *d, struct dir_req *r, const uint8_t *in, size_t len)
{
    struct desc *v;
    int rc;

    if (len && in[0] == IDESC_VERSION)
        return dir_parse_ilookup(d, r, in, len);
    v = calloc(1, sizeof(*v));
    if (!v)
        return OVL_ENOMEM;
    rc = desc_parse(v, in, len);
    if (rc == 0 && (memcmp(v->id_pk, r->pk, OVL_ED25519_PK) != 0 ||
                    desc_expired(v, clock_wall_ms()) || !dir_addresses_ok(d, v)))
        rc = OVL_EPROTO;
    if (rc) {
        free(v);
        return rc;
    }
    dir_cache_put(d, v);
    dir_icache_unserve(d, v->id_pk);
    r->descs = v;
    r->n_descs = 1;
    return 0;
}

/* Check the result of a DIR_STATUS_OK reply to r. */
int dir_reply_check(struct dir *d, struct dir_req *r, const uint8_t *res, size_t res_len,
                    const uint8_t bs_pk[OVL_ED25519_PK])
{
    if (r->op == DIR_LIST)
        return dir_parse_list(d, r, res, res_len, bs_pk);
    if (r->op == DIR_CHAIN)
        return dir_parse_chain(d, r, res, res_len, bs_pk);
    return dir_parse_lookup(d, r, res, res_len);
}
