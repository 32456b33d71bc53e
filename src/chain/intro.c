/* intro.c - the introduction relay (docs/PROTOCOL.md 22.2), built on the
 * relay's core (relay.c). exit.c hands it the bodies INTRO_ESTABLISH and
 * INTRO_BACK and the end of each chain; relay_role.c registers its opener
 * of CELL_CHAIN_INTRO and runs its tick.
 *
 * A hidden node H's chain ends here. Its INTRO_ESTABLISH, signed with H's
 * identity for this relay, makes a point: the cookie, held for that chain
 * until expires_ms (wall clock) or the chain's end. A sender's exit X
 * opens a delivery on its link to us with CELL_CHAIN_INTRO(cookie): a
 * record with a random handle, whose CELL_CHAIN_DELIVER cells go down H's
 * chain as INTRO_DELIVER(handle, data), while H's INTRO_BACK(handle, data)
 * go to X as CELL_CHAIN_DELIVER under that ID. The handle names the
 * delivery to H without telling it anything of our links or IDs.
 *
 * Ownership: r->intros (uthash by cookie) finds the points; a chain owns
 * its point (ch->intro, which points back at it) and a point owns its
 * deliveries (a list), each registered in the chanmap under (X's link,
 * X's ID) with intro_owner. r->intro_links counts the deliveries of each
 * link (by serial) for its share. Memory is taken at INTRO_ESTABLISH and
 * CELL_CHAIN_INTRO only, never per cell; the one public-key operation is
 * INTRO_ESTABLISH's signature check, at most INTRO_MAX_TRIES per chain.
 */
#include <stdlib.h>
#include <string.h>

#include "chain/relay_int.h"
#include "core/chanmap.h"
#include "core/link.h"
#include "dir/idesc.h"
#include "lib/clock.h"

_Static_assert(BODY_COOKIE == IDESC_COOKIE_LEN, "an introduction cookie is the descriptor's");
_Static_assert(BODY_HANDLE + BODY_DATA_MAX <= ONION_BODY - BODY_HDR, "INTRO_DELIVER fits a body");
_Static_assert(sizeof(INTRO_SIG_DOMAIN) - 1 == 12, "the domain is 12 bytes");

/* Signatures one chain may have checked: a chain that keeps sending bad
 * INTRO_ESTABLISH bodies costs a bounded number of verifications. */
#define INTRO_MAX_TRIES 4

/* One delivery: X's (link, ID) bound to a cookie. link is NULL once the
 * slot is gone (X's link closing). */
struct intro_deliv {
    struct intro_point *ip;
    struct intro_deliv *next; /* ip->delivs */
    struct intro_link *share; /* the count of its link */
    struct link *link;
    uint32_t id; /* X's ID on link */
    uint8_t handle[BODY_HANDLE];
};

/* One cookie held for the chain that established it. */
struct intro_point {
    uint8_t cookie[BODY_COOKIE]; /* hash key */
    UT_hash_handle hh;
    struct relay_chain *chain;
    uint64_t expires_ms; /* wall clock, as signed */
    struct intro_deliv *delivs;
    unsigned n_delivs;
};

/* Deliveries on one link: the link's share, like its chains' (18.4). */
struct intro_link {
    uint64_t serial; /* hash key */
    uint32_t delivs;
    UT_hash_handle hh;
};

static void deliv_cell(void *obj, struct link *l, const struct cell *c);
static void deliv_link_closed(void *obj, struct link *l, uint32_t id);

/* The owner of delivery IDs bound to cookies (obj is the delivery). */
static const struct chain_owner intro_owner = {
    .cell = deliv_cell,
    .link_closed = deliv_link_closed,
};

/* ---- deliveries ---- */

static struct relay *deliv_relay(const struct intro_deliv *d)
{
    return d->ip->chain->r;
}

/* Release one of link's deliveries from its count. */
static void link_put(struct relay *r, struct intro_link *s)
{
    if (--s->delivs)
        return;
    HASH_DEL(r->intro_links, s);
    free(s);
    r->n_intro_links--;
}

/* Forget d: unregister its slot (telling X with CELL_CHAIN_DESTROY when
 * tell), take it off its point and free it. */
static void deliv_drop(struct intro_deliv *d, bool tell)
{
    struct relay *r = deliv_relay(d);
    struct intro_deliv **pp = &d->ip->delivs;

    if (d->link)
        relay_slot_end(r, d->link, d->id, DESTROY_R_NONE, tell);
    while (*pp && *pp != d)
        pp = &(*pp)->next;
    if (*pp)
        *pp = d->next;
    d->ip->n_delivs--;
    r->st.intro_delivs_active--;
    link_put(r, d->share);
    free(d);
}

/* A fresh handle, unique among ip's deliveries; false when none was found
 * in a few draws (2^64 values: never in practice). */
static bool handle_pick(const struct intro_point *ip, uint8_t handle[BODY_HANDLE])
{
    for (int tries = 0; tries < 4; tries++) {
        const struct intro_deliv *d = ip->delivs;

        ovl_random(handle, BODY_HANDLE);
        while (d && memcmp(d->handle, handle, BODY_HANDLE) != 0)
            d = d->next;
        if (!d)
            return true;
    }
    return false;
}

/* Bind (l, id) to ip; OVL_ENOMEM (nothing kept) at a cap or out of memory. */
static int deliv_new(struct relay *r, struct intro_point *ip, struct link *l, uint32_t id)
{
    struct intro_link *s = NULL;
    struct intro_deliv *d;

    if (ip->n_delivs >= RELAY_MAX_INTRO_DELIVS || r->st.intro_delivs_active >= r->o.max_chains)
        return OVL_ENOMEM;
    HASH_FIND(hh, r->intro_links, &l->serial, sizeof(l->serial), s);
    if (s && s->delivs >= r->o.max_chains_per_link)
        return OVL_ENOMEM;
    d = calloc(1, sizeof(*d));
    if (!d || !handle_pick(ip, d->handle))
        goto fail;
    if (!s) {
        if (!(s = calloc(1, sizeof(*s))))
            goto fail;
        s->serial = l->serial;
        HASH_ADD(hh, r->intro_links, serial, sizeof(s->serial), s);
        if (!s->hh.tbl) { /* out of memory: left out */
            free(s);
            goto fail;
        }
        r->n_intro_links++;
    }
    s->delivs++;
    if (chanmap_add(r->n, l, id, &intro_owner, d) != 0) {
        link_put(r, s);
        goto fail;
    }
    d->ip = ip;
    d->share = s;
    d->link = l;
    d->id = id;
    d->next = ip->delivs;
    ip->delivs = d;
    ip->n_delivs++;
    r->st.intro_delivs_active++;
    return 0;
fail:
    free(d);
    return OVL_ENOMEM;
}

/* A cell from X under one of the delivery IDs: its data goes down the
 * hidden node's chain, named by the delivery's handle. */
static void deliv_cell(void *obj, struct link *l, const struct cell *c)
{
    struct intro_deliv *d = obj;
    struct relay *r = deliv_relay(d);
    struct relay_chain *ch = d->ip->chain;
    uint8_t args[BODY_HANDLE + BODY_DATA_MAX];

    if (c->cmd == CELL_CHAIN_DESTROY) {
        deliv_drop(d, false); /* X is done with the ID */
        return;
    }
    if (c->cmd != CELL_CHAIN_DELIVER || c->len > BODY_DATA_MAX) {
        r->st.dropped[RD_BAD_CELL]++; /* a second chain_intro on the ID, too */
        return;
    }
    /* No room on the way down: X's link waits (relay_room and
     * relay_originate_in hold it back), and the cell is dropped and
     * counted; the ends retransmit. */
    if (!relay_room(r, l, ch->prev, 0))
        return;
    memcpy(args, d->handle, BODY_HANDLE);
    memcpy(args + BODY_HANDLE, c->payload, c->len);
    if (relay_originate_in(ch, l, BODY_INTRO_DELIVER, args, BODY_HANDLE + (size_t)c->len) == 0)
        r->st.intro_cells_down++;
}

/* X's link is closing: the slot is gone already. */
static void deliv_link_closed(void *obj, struct link *l, uint32_t id)
{
    struct intro_deliv *d = obj;

    (void)l, (void)id;
    d->link = NULL;
    deliv_drop(d, false);
}

void intro_on_intro(void *ctx, struct link *l, const struct cell *c)
{
    struct relay *r = ctx;
    struct intro_point *ip = NULL;

    if (!chanmap_id_is_remote(l, c->chain_id)) {
        r->st.dropped[RD_BAD_CELL]++; /* that ID is ours to pick */
        return;
    }
    if (c->len != BODY_COOKIE) {
        r->st.dropped[RD_BAD_CELL]++;
        relay_send_destroy(r, l, c->chain_id, DESTROY_R_PROTOCOL);
        return;
    }
    HASH_FIND(hh, r->intros, c->payload, BODY_COOKIE, ip);
    if (!ip) {
        r->st.intro_unknown++;
        relay_send_destroy(r, l, c->chain_id, DESTROY_R_NONE);
    } else if (deliv_new(r, ip, l, c->chain_id) != 0) {
        r->st.dropped[RD_LIMIT]++;
        relay_send_destroy(r, l, c->chain_id, DESTROY_R_NONE);
    }
}

/* ---- points ---- */

/* Forget ip: end its deliveries (CELL_CHAIN_DESTROY to each X) and free it. */
static void point_end(struct relay *r, struct intro_point *ip)
{
    while (ip->delivs)
        deliv_drop(ip->delivs, true);
    HASH_DEL(r->intros, ip);
    ip->chain->intro = NULL;
    r->st.intros_active--;
    free(ip);
}

/* Why an INTRO_ESTABLISH for cookie, expiring at exp, is refused (enum
 * intro_reason), or 0. The checks that cost nothing come first; the
 * signature is checked at most INTRO_MAX_TRIES times per chain. */
static int establish_check(struct relay_chain *ch, const uint8_t *a, uint64_t exp)
{
    static const uint8_t zero[BODY_COOKIE];
    struct relay *r = ch->r;
    struct intro_point *ip = NULL;
    uint8_t msg[INTRO_SIG_MSG_LEN];
    uint64_t now = clock_wall_ms();

    HASH_FIND(hh, r->intros, a, BODY_COOKIE, ip);
    if (ip)
        return INTRO_R_BUSY; /* on this chain too: a repeat learns it holds it */
    if (ch->intro)
        return INTRO_R_LIMIT; /* one cookie per chain */
    if (memcmp(a, zero, BODY_COOKIE) == 0)
        return INTRO_R_PROTOCOL;
    if (exp <= now || exp - now > IDESC_MAX_LIFE_MS)
        return INTRO_R_EXPIRED;
    if (r->st.intros_active >= r->o.max_intros || ch->intro_tries >= INTRO_MAX_TRIES)
        return INTRO_R_LIMIT;
    ch->intro_tries++;
    intro_sig_msg(msg, r->n->id.pk, a, exp);
    if (ovl_verify(a + BODY_COOKIE, msg, sizeof(msg), a + BODY_INTRO_SIG) != 0)
        return INTRO_R_PROTOCOL;
    return 0;
}

/* Answer INTRO_FAIL(cookie, why) and count it. */
static void establish_refuse(struct relay_chain *ch, const uint8_t *cookie, int why)
{
    struct relay_stats *st = &ch->r->st;
    uint8_t args[BODY_COOKIE + 1];

    switch (why) {
    case INTRO_R_PROTOCOL:
        st->intros_refused_protocol++;
        break;
    case INTRO_R_EXPIRED:
        st->intros_refused_expired++;
        break;
    case INTRO_R_BUSY:
        st->intros_refused_busy++;
        break;
    default:
        st->intros_refused_limit++;
        break;
    }
    memcpy(args, cookie, BODY_COOKIE);
    args[BODY_COOKIE] = (uint8_t)why;
    (void)relay_originate(ch, BODY_INTRO_FAIL, args, sizeof(args));
}

void intro_establish(struct relay_chain *ch, const uint8_t *a, size_t len)
{
    struct relay *r = ch->r;
    struct intro_point *ip = NULL;
    uint64_t exp;
    int why;

    if (len != BODY_INTRO_EST_LEN) {
        r->st.dropped[RD_BAD_CELL]++;
        return;
    }
    exp = ld_le64(a + BODY_INTRO_EXP);
    why = establish_check(ch, a, exp);
    if (!why && (ip = calloc(1, sizeof(*ip))) != NULL) {
        memcpy(ip->cookie, a, BODY_COOKIE);
        HASH_ADD(hh, r->intros, cookie, BODY_COOKIE, ip);
        if (!ip->hh.tbl) { /* out of memory: left out */
            free(ip);
            ip = NULL;
        }
    }
    if (!ip) {
        establish_refuse(ch, a, why ? why : INTRO_R_LIMIT);
        return;
    }
    ip->chain = ch;
    ip->expires_ms = exp;
    ch->intro = ip;
    r->st.intros_active++;
    r->st.intros_established++;
    (void)relay_originate(ch, BODY_INTRO_OK, a, BODY_COOKIE);
}

void intro_back(struct relay_chain *ch, const uint8_t *a, size_t len)
{
    struct relay *r = ch->r;
    struct intro_deliv *d = ch->intro ? ch->intro->delivs : NULL;
    struct cell c = {.cmd = CELL_CHAIN_DELIVER};

    if (len < BODY_HANDLE || len - BODY_HANDLE > BODY_DATA_MAX) {
        r->st.dropped[RD_BAD_CELL]++;
        return;
    }
    while (d && memcmp(d->handle, a, BODY_HANDLE) != 0)
        d = d->next;
    if (!d) {
        r->st.intro_unknown++; /* ended meanwhile, or never ours */
        return;
    }
    /* X relays it onward like a neighbour on a chain: its link gets the
     * longer stall bound (18.9). */
    if (!relay_room(r, ch->prev, d->link, 0))
        return;
    c.chain_id = d->id;
    c.len = (uint16_t)(len - BODY_HANDLE);
    memcpy(c.payload, a + BODY_HANDLE, c.len);
    if (relay_send(r, ch->prev, d->link, &c, 0) == 0)
        r->st.intro_cells_up++;
}

void intro_chain_end(struct relay_chain *ch)
{
    if (ch->intro)
        point_end(ch->r, ch->intro);
}

void intro_tick(struct relay *r, uint64_t wall_ms)
{
    struct intro_point *ip, *tmp;

    if (!wall_ms)
        return; /* the system cannot tell the time: nothing is known to expire */
    HASH_ITER(hh, r->intros, ip, tmp)
    {
        if (ip->expires_ms <= wall_ms)
            point_end(r, ip); /* the chain stays: its sender may take a new cookie */
    }
}

void intro_free(struct relay *r)
{
    struct intro_point *ip, *tmp;
    struct intro_link *s, *stmp;

    HASH_ITER(hh, r->intros, ip, tmp)
    {
        while (ip->delivs) {
            struct intro_deliv *d = ip->delivs;

            ip->delivs = d->next;
            free(d);
        }
        HASH_DEL(r->intros, ip);
        ip->chain->intro = NULL;
        free(ip);
    }
    HASH_ITER(hh, r->intro_links, s, stmp)
    {
        HASH_DEL(r->intro_links, s);
        free(s);
    }
    r->n_intro_links = 0;
    r->st.intros_active = r->st.intro_delivs_active = 0;
}

uint64_t intro_bytes_held(const struct relay *r)
{
    return (uint64_t)r->st.intros_active * sizeof(struct intro_point) +
           (uint64_t)r->st.intro_delivs_active * sizeof(struct intro_deliv) +
           (uint64_t)r->n_intro_links * sizeof(struct intro_link);
}
