/* ihold.c - the bootstrap's hold of inbound descriptors (ihold.h).
 *
 * Two tables: the entries by hidden node, and how many entries each peer
 * made (its share of the cap). An entry counts against the peer that
 * passed on the first descriptor it held, until it is dropped: newer
 * descriptors replace it in place and do not grow the hold, whoever
 * passes them on. A peer whose count falls to zero is forgotten, so the
 * second table never holds more records than the first.
 */
#include "dir/ihold.h"

#include <stdlib.h>
#include <string.h>

#include "lib/htab.h"

struct ient {
    struct ihold_ent pub;
    UT_hash_handle hh;
};

struct ipeer {
    uint8_t pk[OVL_ED25519_PK];
    uint32_t n; /* entries this peer made */
    UT_hash_handle hh;
};

struct ihold {
    uint32_t max;
    struct ient *ents;
    struct ipeer *peers;
};

/* Create an empty hold. */
int ihold_new(uint32_t max, struct ihold **out)
{
    struct ihold *h;

    if (!out)
        return OVL_EINVAL;
    *out = NULL;
    if (max == 0)
        return OVL_EINVAL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return OVL_ENOMEM;
    h->max = max;
    *out = h;
    return 0;
}

static struct ipeer *peer_find(const struct ihold *h, const uint8_t pk[OVL_ED25519_PK])
{
    struct ipeer *p;

    HASH_FIND(hh, h->peers, pk, OVL_ED25519_PK, p);
    return p;
}

/* One entry fewer for peer pk; forget the peer at zero. */
static void peer_dec(struct ihold *h, const uint8_t pk[OVL_ED25519_PK])
{
    struct ipeer *p = peer_find(h, pk);

    if (p && --p->n == 0) {
        HASH_DEL(h->peers, p);
        free(p);
    }
}

/* One entry more for peer pk (its record made if need be); false when out
 * of memory. */
static bool peer_inc(struct ihold *h, const uint8_t pk[OVL_ED25519_PK])
{
    struct ipeer *p = peer_find(h, pk);
    unsigned before;

    if (p) {
        p->n++;
        return true;
    }
    p = calloc(1, sizeof(*p));
    if (!p)
        return false;
    memcpy(p->pk, pk, OVL_ED25519_PK);
    p->n = 1;
    before = HASH_COUNT(h->peers);
    HASH_ADD(hh, h->peers, pk, OVL_ED25519_PK, p);
    if (HASH_COUNT(h->peers) == before) {
        free(p);
        return false;
    }
    return true;
}

static void ent_del(struct ihold *h, struct ient *e)
{
    peer_dec(h, e->pub.by_pk);
    HASH_DEL(h->ents, e);
    free(e);
}

/* Free h and everything in it. */
void ihold_free(struct ihold *h)
{
    struct ient *e, *etmp;
    struct ipeer *p, *ptmp;

    if (!h)
        return;
    HASH_ITER(hh, h->ents, e, etmp)
    {
        HASH_DEL(h->ents, e);
        free(e);
    }
    HASH_ITER(hh, h->peers, p, ptmp)
    {
        HASH_DEL(h->peers, p);
        free(p);
    }
    free(h);
}

/* Drop every entry expired at wall_ms. */
unsigned ihold_expire(struct ihold *h, uint64_t wall_ms)
{
    struct ient *e, *etmp;
    unsigned dropped = 0;

    if (!h)
        return 0;
    HASH_ITER(hh, h->ents, e, etmp)
    {
        if (wall_ms >= e->pub.expires_ms) {
            ent_del(h, e);
            dropped++;
        }
    }
    return dropped;
}

/* Whether peer by may pass on one more entry: its share is half the cap. */
static bool peer_has_room(const struct ihold *h, const uint8_t by[OVL_ED25519_PK])
{
    const struct ipeer *p = peer_find(h, by);
    uint32_t share = h->max / 2 ? h->max / 2 : 1;

    return !p || p->n < share;
}

/* A new entry for in, if the caps allow (expired ones dropped first when
 * at one); NULL at a cap or out of memory. Not yet in the table. */
static struct ient *ent_new(struct ihold *h, const uint8_t by[OVL_ED25519_PK], uint64_t wall_ms)
{
    if (HASH_COUNT(h->ents) >= h->max || !peer_has_room(h, by))
        ihold_expire(h, wall_ms);
    if (HASH_COUNT(h->ents) >= h->max || !peer_has_room(h, by))
        return NULL;
    return calloc(1, sizeof(struct ient));
}

/* Add new entry e for in to the table; false (e freed) when out of memory. */
static bool ent_add(struct ihold *h, struct ient *e, const struct idesc *in)
{
    unsigned before = HASH_COUNT(h->ents);

    memcpy(e->pub.id_pk, in->id_pk, OVL_ED25519_PK);
    HASH_ADD(hh, h->ents, pub.id_pk, OVL_ED25519_PK, e);
    if (HASH_COUNT(h->ents) == before) {
        free(e);
        return false;
    }
    return true;
}

/* Keep in if idesc_accept takes it and the caps allow. */
int ihold_put(struct ihold *h, const struct idesc *in, const uint8_t *raw, size_t len,
              const uint8_t by[OVL_ED25519_PK], uint64_t wall_ms, enum idesc_verdict *v)
{
    struct ient *e;

    if (v)
        *v = IDESC_OK;
    if (!h || !in || !raw || !by || !v || len < IDESC_MIN_LEN || len > IDESC_MAX_LEN)
        return OVL_EINVAL;
    HASH_FIND(hh, h->ents, in->id_pk, OVL_ED25519_PK, e);
    if (e && wall_ms >= e->pub.expires_ms) { /* an expired one holds nothing back */
        ent_del(h, e);
        e = NULL;
    }
    *v = idesc_accept(in, in->id_pk, wall_ms, e ? e->pub.seq : 0, e != NULL);
    if (*v != IDESC_OK)
        return OVL_EPERM;
    if (!e) { /* a new node: it counts against the peer that passed it on */
        e = ent_new(h, by, wall_ms);
        if (!e)
            return OVL_ENOMEM;
        if (!peer_inc(h, by)) {
            free(e);
            return OVL_ENOMEM;
        }
        memcpy(e->pub.by_pk, by, OVL_ED25519_PK);
        if (!ent_add(h, e, in)) {
            peer_dec(h, by);
            return OVL_ENOMEM;
        }
    }
    e->pub.seq = in->seq;
    e->pub.expires_ms = in->expires_ms;
    memcpy(e->pub.raw, raw, len);
    e->pub.raw_len = len;
    return 0;
}

/* Return the unexpired inbound descriptor held for pk, or NULL. */
const struct ihold_ent *ihold_get(const struct ihold *h, const uint8_t pk[OVL_ED25519_PK],
                                  uint64_t wall_ms)
{
    struct ient *e;

    if (!h || !pk)
        return NULL;
    HASH_FIND(hh, h->ents, pk, OVL_ED25519_PK, e);
    return e && wall_ms < e->pub.expires_ms ? &e->pub : NULL;
}

/* Return how many entries are held. */
unsigned ihold_count(const struct ihold *h)
{
    return h ? HASH_COUNT(h->ents) : 0;
}
