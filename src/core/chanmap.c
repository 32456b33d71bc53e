/* chanmap.c - (link, chain ID) -> owner, on uthash. */
#include <stdlib.h>
#include <string.h>

#include "lib/htab.h"
#include "core/chanmap.h"
#include "core/link.h"
#include "core/node.h"

#define CHAN_DIR_BIT UINT32_C(0x80000000)

struct chanmap_key {
    uint64_t serial; /* link->serial: links are never reused, pointers may be */
    uint32_t id;
    uint32_t pad; /* zero: the whole struct is the hash key */
};

struct chanmap_slot {
    struct chanmap_key key;
    struct link *link;
    struct chanmap_slot *prev, *next; /* the link's slots (link->chan_slots) */
    const struct chain_owner *owner;
    void *obj;
    UT_hash_handle hh;
};

static struct chanmap_slot *slot_find(struct node *n, const struct link *l, uint32_t id)
{
    struct chanmap_key k = {.serial = l->serial, .id = id};
    struct chanmap_slot *s = NULL;

    HASH_FIND(hh, n->chanmap, &k, sizeof(k), s);
    return s;
}

bool chanmap_id_is_remote(const struct link *l, uint32_t id)
{
    /* The initiator opens chains with the top bit set. */
    return link_is_initiator(l) ? (id & CHAN_DIR_BIT) == 0 : (id & CHAN_DIR_BIT) != 0;
}

/* Insert without the direction check (both chanmap_add and chanmap_alloc). */
static int slot_insert(struct node *n, struct link *l, uint32_t id, const struct chain_owner *owner,
                       void *obj)
{
    struct chanmap_slot *s;

    if (id == 0 || !owner)
        return OVL_EINVAL;
    if (slot_find(n, l, id))
        return OVL_EEXIST;
    s = calloc(1, sizeof(*s));
    if (!s)
        return OVL_ENOMEM;
    s->key.serial = l->serial;
    s->key.id = id;
    s->link = l;
    s->owner = owner;
    s->obj = obj;
    HASH_ADD(hh, n->chanmap, key, sizeof(s->key), s);
    if (!s->hh.tbl) { /* out of memory: uthash left it out */
        free(s);
        return OVL_ENOMEM;
    }
    s->next = l->chan_slots;
    if (s->next)
        s->next->prev = s;
    l->chan_slots = s;
    n->n_chanmap++;
    return 0;
}

int chanmap_add(struct node *n, struct link *l, uint32_t id, const struct chain_owner *owner,
                void *obj)
{
    if (!chanmap_id_is_remote(l, id))
        return OVL_EINVAL;
    return slot_insert(n, l, id, owner, obj);
}

int chanmap_alloc(struct node *n, struct link *l, const struct chain_owner *owner, void *obj,
                  uint32_t *id)
{
    *id = 0;
    /* 2^31 IDs per side: a few random tries find a free one unless the map
     * is absurdly full, which the roles' caps prevent. */
    for (int tries = 0; tries < 16; tries++) {
        uint32_t v;
        int rc;

        ovl_random(&v, sizeof(v));
        v = link_is_initiator(l) ? (v | CHAN_DIR_BIT) : (v & ~CHAN_DIR_BIT);
        if (v == 0)
            continue;
        rc = slot_insert(n, l, v, owner, obj);
        if (rc == 0) {
            *id = v;
            return 0;
        }
        if (rc != OVL_EEXIST)
            return rc;
    }
    return OVL_ENOMEM;
}

/* Take s out of the table and its link's list and free it (the one copy
 * of HASH_DEL). */
static void slot_free(struct node *n, struct chanmap_slot *s)
{
    HASH_DEL(n->chanmap, s);
    if (s->prev)
        s->prev->next = s->next;
    else
        s->link->chan_slots = s->next;
    if (s->next)
        s->next->prev = s->prev;
    n->n_chanmap--;
    free(s);
}

void chanmap_del(struct node *n, struct link *l, uint32_t id)
{
    struct chanmap_slot *s = slot_find(n, l, id);

    if (s)
        slot_free(n, s);
}

void *chanmap_find(struct node *n, struct link *l, uint32_t id)
{
    struct chanmap_slot *s = slot_find(n, l, id);

    return s ? s->obj : NULL;
}

bool chanmap_deliver(struct node *n, struct link *l, const struct cell *c)
{
    struct chanmap_slot *s = slot_find(n, l, c->chain_id);

    if (!s)
        return false;
    s->owner->cell(s->obj, l, c);
    return true;
}

/* The dispatcher's handler for chain-level commands: the owner of
 * (l, ID), else the command's opener, else counted and dropped. */
static void chanmap_route(void *ctx, struct link *l, const struct cell *c)
{
    struct node *n = ctx;

    if (c->chain_id != 0) {
        if (chanmap_deliver(n, l, c))
            return;
        if (n->chain_open.h[c->cmd].fn) {
            dispatch_cell(&n->chain_open, l, c);
            return;
        }
    }
    n->ctr.chain_unknown++;
}

static void chanmap_on_link_closed(void *ctx, struct link *l)
{
    chanmap_link_closed(ctx, l);
}

int chanmap_register_handlers(struct node *n)
{
    struct link_observer obs = {.closed = chanmap_on_link_closed, .ctx = n};
    int rc = 0;

    dispatch_init(&n->chain_open);
    for (unsigned cmd = CELL_CHAIN_FIRST; cmd <= CELL_CHAIN_LAST && rc == 0; cmd++)
        rc = dispatch_register(&n->disp, (uint8_t)cmd, chanmap_route, n);
    if (rc == 0)
        rc = node_observe_links(n, &obs);
    return rc;
}

int chanmap_register_opener(struct node *n, uint8_t cmd, dispatch_fn fn, void *ctx)
{
    if (cmd < CELL_CHAIN_FIRST || cmd > CELL_CHAIN_LAST)
        return OVL_EINVAL;
    return dispatch_register(&n->chain_open, cmd, fn, ctx);
}

void chanmap_unregister_opener(struct node *n, uint8_t cmd, dispatch_fn fn, void *ctx)
{
    dispatch_unregister(&n->chain_open, cmd, fn, ctx);
}

void chanmap_link_closed(struct node *n, struct link *l)
{
    struct chanmap_slot *s;

    /* O(slots on l): the link keeps its own list. Owners may delete other
     * slots (of l too) from their callback, so take the head each time. */
    while ((s = l->chan_slots) != NULL) {
        const struct chain_owner *owner = s->owner;
        void *obj = s->obj;
        uint32_t id = s->key.id;

        slot_free(n, s);
        if (owner->link_closed)
            owner->link_closed(obj, l, id);
    }
}

uint32_t chanmap_count(const struct node *n)
{
    return n->n_chanmap;
}

void chanmap_free(struct node *n)
{
    struct chanmap_slot *s, *tmp;

    /* The links may be gone: leave their lists alone. */
    HASH_ITER(hh, n->chanmap, s, tmp)
    {
        HASH_DEL(n->chanmap, s);
        free(s);
    }
    n->n_chanmap = 0;
}
