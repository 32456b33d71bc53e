/* exit.c - the exit side of the relay, and waiting for links; built on
 * the relay's core (relay.c), which reaches this file only through
 * exit_hooks.
 *
 * At the exit a BODY_DELIVER goes to its destination in a
 * CELL_CHAIN_DELIVER cell under a delivery ID the exit picks once per
 * (chain, destination link). When no link to the destination (or, for a
 * setup, to the next hop) is open, a wait record looks the node up in the
 * directory, dials it and holds what needs the link: pending setups and a
 * bounded ring of DELIVER data. The link observer's opened() releases them;
 * a failed dial or the setup timeout fails them with SETUP_FAIL /
 * DELIVER_FAIL sent back to the sender. The introduction relay's bodies
 * (INTRO_ESTABLISH, INTRO_BACK) and the end of a chain's cookie go to
 * intro.c.
 *
 * Hidden destinations (docs/PROTOCOL.md 22.3, 22.4): a lookup that
 * answers an inbound descriptor turns the wait into one for the link to
 * one of the node's introduction relays (tried in turn from a random
 * start), whose delivery ID is opened with CELL_CHAIN_INTRO(cookie); the
 * end of that ID or link tells the sender DELIVER_FAIL(gone). BODY_PUBLISH
 * hands a hidden node's inbound descriptor to our bootstraps, within a
 * rate per chain and per node.
 */
#include <stdlib.h>
#include <string.h>

#include "chain/relay_int.h"
#include "core/chanmap.h"
#include "core/link.h"
#include "dir/idesc.h"
#include "lib/clock.h"

/* A setup parked until the link to its next hop opens. */
struct relay_ext {
    struct relay_chain *chain;
    struct relay_wait *wait;
    struct relay_ext *next; /* in wait->exts */
    uint8_t hdr[ONION_HDR_LEN];
};

/* Incoming links one wait may hold back; past that, cells are dropped. */
#define WAIT_MAX_HELD 8

/* One BODY_DELIVER's data held while its destination is dialed. */
struct relay_qcell {
    uint64_t chain; /* serial: the chain may end meanwhile */
    uint16_t len;
    uint8_t data[BODY_DATA_MAX];
};

/* BODY_PUBLISH: one per chain per PUBLISH_CHAIN_MS, and node-wide a
 * bucket of PUBLISH_BURST topped up by one every PUBLISH_EVERY_MS, so that
 * the exit cannot be made to flood its bootstraps. */
#define PUBLISH_CHAIN_MS 2000
#define PUBLISH_BURST    32
#define PUBLISH_EVERY_MS 125

/* Bits of struct relay_wait's flags. */
enum {
    WAITF_LOOKUP = 1u << 0,      /* a dir_lookup is outstanding */
    WAITF_HIDDEN = 1u << 1,      /* pk is hidden: peer is one of its introduction relays */
    WAITF_DIAL_FAILED = 1u << 2, /* exit_link_closed: its dial closed, not acted on yet */
};

/* A node being looked up or dialed, with what waits for it. */
struct relay_wait {
    struct relay *r;
    struct relay_wait *next;        /* r->waits */
    uint8_t pk[OVL_ED25519_PK];     /* the destination (or next hop) */
    uint8_t peer[OVL_ED25519_PK];   /* whose link it waits for: pk, or (WAITF_HIDDEN) the
                                       introduction relay tried now */
    unsigned flags;                 /* WAITF_* */
    uint64_t dial_serial;           /* the link we dialed, 0 before */
    uint64_t start_ms, deadline_ms; /* deadline: of the current lookup and dial */
    /* WAITF_HIDDEN: pk's introduction relays from its inbound descriptor,
     * the one tried now, the next one and how many are left to try. */
    struct idesc_intro intro[IDESC_MAX_INTRO];
    uint8_t n_intro, intro_cur, intro_next, intro_left;
    struct relay_ext *exts;
    struct relay_qcell *q; /* ring of r->o.exit_queue, allocated on first use */
    unsigned q_head, q_len;
    uint64_t held[WAIT_MAX_HELD]; /* serials of links paused until this wait ends */
    unsigned n_held;
};

uint64_t exit_bytes_held(const struct relay *r)
{
    uint64_t b = 0;

    for (const struct relay_wait *w = r->waits; w; w = w->next)
        b += sizeof(*w) + (w->q ? (uint64_t)r->o.exit_queue * sizeof(*w->q) : 0);
    return b;
}

static void ext_unlink(struct relay *r, struct relay_ext *e)
{
    struct relay_ext **pp = &e->wait->exts;

    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    e->chain->ext = NULL;
    r->n_pending--;
    ovl_wipe(e, sizeof(*e));
    free(e);
}

/* True while some wait holds in paused (exit_hooks.holds). */
static bool exit_holds(const struct relay *r, const struct link *in)
{
    for (const struct relay_wait *w = r->waits; w; w = w->next)
        for (unsigned i = 0; i < w->n_held; i++)
            if (w->held[i] == in->serial)
                return true;
    return false;
}

/* Resume the incoming links this wait paused, unless a full link or
 * another wait still holds them (relay_resume). Links that closed
 * meanwhile are gone. */
static void wait_release(struct relay_wait *w)
{
    uint64_t held[WAIT_MAX_HELD];
    unsigned n = w->n_held;

    memcpy(held, w->held, n * sizeof(held[0]));
    w->n_held = 0; /* so that exit_holds() no longer counts this wait */
    for (unsigned i = 0; i < n; i++) {
        struct link *l = link_by_serial(w->r->n, held[i]);

        if (l)
            relay_resume(w->r, l);
    }
}

/* True once w has waited stall_timeout: from then on it holds no link,
 * so that a destination slow to answer holds other chains no longer than
 * one that does not read (relay_stalls_tick); later cells that do not
 * fit its queue are dropped. */
static bool wait_stale(const struct relay_wait *w, uint64_t now)
{
    return now >= w->start_ms + w->r->o.stall_timeout_ms;
}

/* Pause in while w's queue is nearly full: the sender's counter window
 * (ONION_WINDOW) tolerates only a few lost cells, so hold cells back in
 * the kernel rather than drop them while the destination is dialed. */
static void wait_hold(struct relay_wait *w, struct link *in)
{
    if (!in || wait_stale(w, clock_now_ms()))
        return;
    for (unsigned i = 0; i < w->n_held; i++)
        if (w->held[i] == in->serial)
            return;
    if (w->n_held >= WAIT_MAX_HELD)
        return;
    w->held[w->n_held++] = in->serial;
    link_pause(in);
}

static void wait_free(struct relay_wait *w, bool cancel)
{
    struct relay *r = w->r;
    struct relay_wait **pp = &r->waits;

    wait_release(w);
    if ((w->flags & WAITF_LOOKUP) && cancel)
        dir_cancel(r->n->dir, w);
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    while (w->exts)
        ext_unlink(r, w->exts);
    free(w->q);
    free(w);
    r->n_waits--;
}

/* ---- delivery records ---- */

static void deliv_cell(void *obj, struct link *l, const struct cell *c);
static void deliv_link_closed(void *obj, struct link *l, uint32_t id);

/* The owner of delivery IDs (obj is the chain): a destination's cells come
 * here directly, not through the core's relay_chain_owner. */
static const struct chain_owner deliv_owner = {
    .cell = deliv_cell,
    .link_closed = deliv_link_closed,
};

static struct relay_deliv *deliv_find(struct relay_chain *ch, const uint8_t pk[OVL_ED25519_PK])
{
    for (unsigned i = 0; i < ch->n_deliv; i++)
        if (memcmp(ch->deliv[i].pk, pk, OVL_ED25519_PK) == 0)
            return &ch->deliv[i];
    return NULL;
}

/* Find or add the record for pk; NULL when the chain has too many. */
static struct relay_deliv *deliv_slot(struct relay_chain *ch, const uint8_t pk[OVL_ED25519_PK])
{
    struct relay_deliv *d = deliv_find(ch, pk);

    if (d || ch->n_deliv >= RELAY_MAX_DELIV)
        return d;
    if (!ch->deliv && !(ch->deliv = calloc(RELAY_MAX_DELIV, sizeof(*ch->deliv))))
        return NULL; /* made with the first destination: most chains have none */
    d = &ch->deliv[ch->n_deliv++];
    memset(d, 0, sizeof(*d));
    memcpy(d->pk, pk, OVL_ED25519_PK);
    return d;
}

/* What a delivery's link leads to, for the relay's pauses (RPF_*): an
 * introduction relay passes cells on down a chain, like a neighbour. */
static unsigned deliv_pf(const struct relay_deliv *d)
{
    return (d->flags & DELIVF_INTRO) ? 0 : RPF_DEST;
}

/* Bind the fresh ID id on out to cookie at the introduction relay, ahead
 * of any data on it. */
static int deliv_intro(struct relay *r, struct link *out, uint32_t id, const uint8_t *cookie)
{
    struct cell c = {.chain_id = id, .cmd = CELL_CHAIN_INTRO, .len = BODY_COOKIE};

    memcpy(c.payload, cookie, BODY_COOKIE);
    return relay_send(r, NULL, out, &c, 0);
}

/* Give ch a delivery ID on out for pk; NULL (counted) when it cannot.
 * With cookie, out leads to an introduction relay of hidden pk, and the
 * ID opens there with chain_intro(cookie). */
static struct relay_deliv *deliv_open(struct relay_chain *ch, const uint8_t pk[OVL_ED25519_PK],
                                      struct link *out, const uint8_t *cookie)
{
    struct relay *r = ch->r;
    struct relay_deliv *d = deliv_slot(ch, pk);

    if (d && d->link)
        return d;
    if (!d || chanmap_alloc(r->n, out, &deliv_owner, ch, &d->id) != 0) {
        r->st.dropped[RD_LIMIT]++;
        return NULL;
    }
    if (cookie && deliv_intro(r, out, d->id, cookie) != 0) {
        chanmap_del(r->n, out, d->id); /* counted by relay_send; the next DELIVER tries again */
        d->id = 0;
        return NULL;
    }
    d->link = out;
    d->flags = (uint8_t)(cookie ? d->flags | DELIVF_INTRO : d->flags & ~DELIVF_INTRO);
    r->st.delivered++;
    if (cookie)
        r->st.hidden_delivs++;
    return d;
}

/* The destination's link or ID is gone: the next DELIVER opens another. */
static void deliv_clear(struct relay_deliv *d)
{
    d->link = NULL;
    d->id = 0;
}

static void deliv_send(struct relay_chain *ch, struct relay_deliv *d, struct link *in,
                       const uint8_t *data, uint16_t len)
{
    struct cell c = {.chain_id = d->id, .cmd = CELL_CHAIN_DELIVER, .len = len};

    memcpy(c.payload, data, len);
    if (relay_send(ch->r, in, d->link, &c, deliv_pf(d)) == 0)
        ch->r->st.delivered_cells++;
}

/* Tell the sender DELIVER_FAIL(d's destination, reason), once per chain. */
static void deliver_tell(struct relay_chain *ch, struct relay_deliv *d, uint8_t reason)
{
    uint8_t args[OVL_ED25519_PK + 1];

    if (d->flags & DELIVF_FAIL_SENT)
        return;
    d->flags |= DELIVF_FAIL_SENT;
    memcpy(args, d->pk, OVL_ED25519_PK);
    args[OVL_ED25519_PK] = reason;
    (void)relay_originate(ch, BODY_DELIVER_FAIL, args, sizeof(args));
}

/* Count a cell for pk as unroutable and tell the sender, once per chain. */
static void deliver_fail(struct relay_chain *ch, const uint8_t pk[OVL_ED25519_PK], uint8_t reason)
{
    struct relay_deliv *d = deliv_slot(ch, pk);

    ch->r->st.dropped[RD_NO_ROUTE]++;
    if (d)
        deliver_tell(ch, d, reason);
}

/* d went through an introduction relay, and that ID or link ended (d is
 * cleared): the hidden node's introduction there is over. Its next
 * inbound descriptor names others, so forget this one, and tell the
 * sender to look again. */
static void deliv_gone(struct relay_chain *ch, struct relay_deliv *d)
{
    struct relay *r = ch->r;

    d->flags &= (uint8_t)~DELIVF_INTRO;
    r->st.hidden_gone++;
    dir_forget(r->n->dir, d->pk);
    deliver_tell(ch, d, BODY_R_GONE);
}

/* ---- waits ---- */

/* The chain of w's queued cell i, or NULL (counted) when it ended while
 * the destination was looked up or dialed. */
static struct relay_chain *qcell_chain(struct relay_wait *w, unsigned i,
                                       const struct relay_qcell **out)
{
    struct relay *r = w->r;
    const struct relay_qcell *q = &w->q[(w->q_head + i) % r->o.exit_queue];
    struct relay_chain *ch = relay_chain_find(r, q->chain);

    if (!ch)
        r->st.dropped[RD_NO_ROUTE]++;
    *out = q;
    return ch;
}

/* Fail everything w holds with reason, and free it. */
static void wait_fail(struct relay_wait *w, uint8_t reason)
{
    struct relay *r = w->r;

    /* A node that did not answer at its published addresses may have
     * restarted elsewhere, and a hidden one none of whose introduction
     * relays answered has a newer descriptor: ask the directory afresh
     * next time. */
    if (reason == BODY_R_UNREACHABLE || reason == BODY_R_GONE)
        dir_forget(r->n->dir, w->pk);
    if (reason == BODY_R_GONE)
        r->st.hidden_gone++;

    while (w->exts) {
        struct relay_chain *ch = w->exts->chain;

        ext_unlink(r, w->exts);
        relay_setup_fail(ch, reason, RD_NO_ROUTE);
    }
    for (unsigned i = 0; i < w->q_len; i++) {
        const struct relay_qcell *q;
        struct relay_chain *ch = qcell_chain(w, i, &q);

        if (ch)
            deliver_fail(ch, w->pk, reason);
    }
    wait_free(w, true);
}

/* The link to w's peer is open: release everything that waited for it. */
static void wait_flush(struct relay_wait *w, struct link *out)
{
    struct relay *r = w->r;
    const uint8_t *cookie = (w->flags & WAITF_HIDDEN) ? w->intro[w->intro_cur].cookie : NULL;

    while (w->exts) {
        struct relay_chain *ch = w->exts->chain;
        uint8_t hdr[ONION_HDR_LEN];

        memcpy(hdr, w->exts->hdr, ONION_HDR_LEN);
        ext_unlink(r, w->exts);
        relay_extend_on(ch, out, hdr);
        ovl_wipe(hdr, sizeof(hdr));
    }
    for (unsigned i = 0; i < w->q_len; i++) {
        const struct relay_qcell *q;
        struct relay_chain *ch = qcell_chain(w, i, &q);
        struct relay_deliv *d = ch ? deliv_open(ch, w->pk, out, cookie) : NULL;

        if (d)
            deliv_send(ch, d, NULL, q->data, q->len);
    }
    wait_free(w, true);
}

static void wait_looked_up(void *arg, int err, const struct desc *d, const struct idesc *in);

/* The serial of a dial to w's peer that another wait started, or 0. */
static uint64_t wait_dialing(const struct relay_wait *w)
{
    for (const struct relay_wait *o = w->r->waits; o; o = o->next)
        if (o != w && o->dial_serial && memcmp(o->peer, w->peer, OVL_ED25519_PK) == 0)
            return o->dial_serial;
    return 0;
}

/* Move hidden w on to its next introduction relay that is not this relay:
 * flush w at once to an open link, share a dial already under way, or
 * look the relay up (its link is then dialed like a next hop's), each
 * with a setup_timeout of its own. With none left, fail w: gone. */
static void wait_next_intro(struct relay_wait *w)
{
    struct relay *r = w->r;
    struct link *l;

    if (w->flags & WAITF_LOOKUP)
        dir_cancel(r->n->dir, w);
    w->flags &= ~WAITF_LOOKUP;
    w->dial_serial = 0;
    while (w->intro_left) {
        const struct idesc_intro *it = &w->intro[w->intro_next];

        w->intro_cur = w->intro_next;
        w->intro_next = (uint8_t)((w->intro_next + 1) % w->n_intro);
        w->intro_left--;
        if (ovl_equal(it->relay_pk, r->n->id.pk, OVL_ED25519_PK))
            continue;
        memcpy(w->peer, it->relay_pk, OVL_ED25519_PK);
        w->deadline_ms = clock_now_ms() + r->o.setup_timeout_ms;
        if ((l = link_find(r->n, w->peer)) != NULL) {
            wait_flush(w, l);
            return;
        }
        if ((w->dial_serial = wait_dialing(w)) != 0)
            return;
        if (dir_lookup(r->n->dir, w->peer, wait_looked_up, w) == 0) {
            w->flags |= WAITF_LOOKUP;
            return;
        }
    }
    /* None worked, or every one is this relay: a descriptor that names
     * only us is most likely one the node has replaced since (its other
     * relay died); either way it is forgotten and the sender told "gone". */
    wait_fail(w, BODY_R_GONE);
}

/* w's lookup or dial failed for reason: a hidden node's wait moves on to
 * its next introduction relay, any other fails. */
static void wait_give_up(struct relay_wait *w, uint8_t reason)
{
    if (!(w->flags & WAITF_HIDDEN)) {
        wait_fail(w, reason);
        return;
    }
    if (reason == BODY_R_UNREACHABLE)
        dir_forget(w->r->n->dir, w->peer);
    wait_next_intro(w);
}

/* w's node is hidden, reachable through the introduction relays of in:
 * setups parked for it fail (a chain cannot extend to a hidden node),
 * and its cells wait for the link to one of those relays. */
static void wait_hidden(struct relay_wait *w, const struct idesc *in)
{
    struct relay *r = w->r;
    uint32_t start;

    while (w->exts) {
        struct relay_chain *ch = w->exts->chain;

        ext_unlink(r, w->exts);
        relay_setup_fail(ch, BODY_R_NO_ROUTE, RD_NO_ROUTE);
    }
    if (!w->q_len || !in->n_intro || in->n_intro > IDESC_MAX_INTRO) {
        wait_fail(w, BODY_R_NO_ROUTE);
        return;
    }
    memcpy(w->intro, in->intro, sizeof(w->intro));
    w->n_intro = w->intro_left = in->n_intro;
    ovl_random(&start, sizeof(start)); /* spread senders over the relays */
    w->intro_next = (uint8_t)(start % w->n_intro);
    w->flags |= WAITF_HIDDEN;
    wait_next_intro(w);
}

/* The directory answered for w's peer: d, or for a hidden node in. */
static void wait_looked_up(void *arg, int err, const struct desc *d, const struct idesc *in)
{
    struct relay_wait *w = arg;
    struct relay *r = w->r;
    struct link *l;

    w->flags &= ~WAITF_LOOKUP;
    if (!err && in && !(w->flags & WAITF_HIDDEN) && ovl_equal(in->id_pk, w->pk, OVL_ED25519_PK)) {
        wait_hidden(w, in);
        return;
    }
    if (err || !d || !ovl_equal(d->id_pk, w->peer, OVL_ED25519_PK)) {
        wait_give_up(w, BODY_R_NO_ROUTE);
        return;
    }
    l = link_find(r->n, w->peer);
    if (l) {
        wait_flush(w, l);
        return;
    }
    if (link_dial_any(r->n, d->uris, d->n_uris < DESC_MAX_URIS ? d->n_uris : DESC_MAX_URIS, w->peer,
                      &l) == 0) {
        w->dial_serial = l->serial;
        return;
    }
    wait_give_up(w, BODY_R_UNREACHABLE);
}

/* Find or start the wait for pk. OVL_ENOMEM at the cap, else dir_lookup's
 * error. */
static int wait_get(struct relay *r, const uint8_t pk[OVL_ED25519_PK], struct relay_wait **out)
{
    struct relay_wait *w;
    int rc;

    *out = NULL;
    for (w = r->waits; w; w = w->next) {
        if (memcmp(w->pk, pk, OVL_ED25519_PK) == 0) {
            *out = w;
            return 0;
        }
    }
    if (r->n_waits >= RELAY_MAX_WAITS)
        return OVL_ENOMEM;
    w = calloc(1, sizeof(*w));
    if (!w)
        return OVL_ENOMEM;
    w->r = r;
    memcpy(w->pk, pk, OVL_ED25519_PK);
    memcpy(w->peer, pk, OVL_ED25519_PK);
    w->start_ms = clock_now_ms();
    w->deadline_ms = w->start_ms + r->o.setup_timeout_ms;
    rc = dir_lookup(r->n->dir, pk, wait_looked_up, w);
    if (rc) {
        free(w);
        return rc;
    }
    w->flags |= WAITF_LOOKUP;
    w->next = r->waits;
    r->waits = w;
    r->n_waits++;
    *out = w;
    return 0;
}

/* No link to next is open (exit_hooks.park_setup): park ch's setup in the
 * wait for next until a link opens, or fail it. */
static void exit_park_setup(struct relay_chain *ch, const uint8_t next[OVL_ED25519_PK],
                            const uint8_t hdr[ONION_HDR_LEN])
{
    struct relay *r = ch->r;
    struct relay_wait *w = NULL;
    struct relay_ext *e, **pp;
    int rc;

    if (r->n_pending >= RELAY_MAX_PENDING) {
        relay_setup_fail(ch, BODY_R_LIMIT, RD_LIMIT);
        return;
    }
    e = calloc(1, sizeof(*e));
    rc = e ? wait_get(r, next, &w) : OVL_ENOMEM;
    if (rc) {
        free(e);
        relay_setup_fail(ch, rc == OVL_ENOMEM ? BODY_R_LIMIT : BODY_R_NO_ROUTE,
                         rc == OVL_ENOMEM ? RD_LIMIT : RD_NO_ROUTE);
        return;
    }
    e->chain = ch;
    e->wait = w;
    memcpy(e->hdr, hdr, ONION_HDR_LEN);
    /* Append, so setups go out in the order they came. */
    pp = &w->exts;
    while (*pp)
        pp = &(*pp)->next;
    *pp = e;
    ch->ext = e;
    r->n_pending++;
}

/* Hold data for dest until the link opens; bounded by exit_queue. */
static void wait_queue(struct relay_chain *ch, const uint8_t dest[OVL_ED25519_PK],
                       const uint8_t *data, uint16_t len)
{
    struct relay *r = ch->r;
    struct relay_wait *w;
    struct relay_qcell *q;
    int rc = wait_get(r, dest, &w);

    if (rc == OVL_ENOMEM) {
        r->st.dropped[RD_LIMIT]++;
        return;
    }
    if (rc) {
        deliver_fail(ch, dest, BODY_R_NO_ROUTE);
        return;
    }
    if (!w->q)
        w->q = malloc((size_t)r->o.exit_queue * sizeof(*w->q));
    if (!w->q || w->q_len >= r->o.exit_queue) {
        r->st.dropped[RD_QUEUE_FULL]++;
        return;
    }
    q = &w->q[(w->q_head + w->q_len) % r->o.exit_queue];
    q->chain = ch->serial;
    q->len = len;
    memcpy(q->data, data, len);
    w->q_len++;
    if (w->q_len + relay_headroom(r->o.exit_queue) >= r->o.exit_queue)
        wait_hold(w, ch->prev);
}

/* ---- the exit ---- */

static void exit_deliver(struct relay_chain *ch, const uint8_t dest[OVL_ED25519_PK],
                         const uint8_t *data, uint16_t len)
{
    struct relay *r = ch->r;
    struct relay_deliv *d = deliv_find(ch, dest);
    struct link *out;

    if (d && d->link) {
        if (relay_room(r, ch->prev, d->link, deliv_pf(d)))
            deliv_send(ch, d, ch->prev, data, len);
        return;
    }
    if (ovl_equal(dest, r->n->id.pk, OVL_ED25519_PK)) {
        deliver_fail(ch, dest, BODY_R_NO_ROUTE); /* no loopback delivery in v1 */
        return;
    }
    out = link_find(r->n, dest);
    if (!out) {
        wait_queue(ch, dest, data, len);
        return;
    }
    if (!relay_room(r, ch->prev, out, RPF_DEST))
        return;
    d = deliv_open(ch, dest, out, NULL);
    if (d)
        deliv_send(ch, d, ch->prev, data, len);
}

/* True when ch may pass a PUBLISH on now: once per PUBLISH_CHAIN_MS per
 * chain, and within the node's bucket. */
static bool publish_admit(struct relay_chain *ch, uint64_t now)
{
    struct relay *r = ch->r;
    uint64_t add = (now - r->publish_refill_ms) / PUBLISH_EVERY_MS;

    if ((ch->flags & RCHF_PUBLISHED) && now < ch->publish_ms + PUBLISH_CHAIN_MS)
        return false;
    if (add) {
        r->publish_refill_ms += add * PUBLISH_EVERY_MS;
        add += r->publish_tokens;
        r->publish_tokens = add < PUBLISH_BURST ? (uint32_t)add : PUBLISH_BURST;
    }
    if (!r->publish_tokens)
        return false;
    r->publish_tokens--;
    ch->flags |= RCHF_PUBLISHED;
    ch->publish_ms = now;
    return true;
}

/* A BODY_PUBLISH of len bytes: hand the inbound descriptor to our
 * bootstraps, which judge it, and answer PUBLISHED(how many); 0 when we
 * have none or a cap refused it. */
static void exit_publish(struct relay_chain *ch, const uint8_t *idesc, size_t len)
{
    struct relay *r = ch->r;
    uint8_t count = 0;
    int rc;

    if (len < IDESC_MIN_LEN || len > IDESC_MAX_LEN) {
        r->st.dropped[RD_BAD_CELL]++;
        return;
    }
    if (!publish_admit(ch, clock_now_ms())) {
        r->st.publishes_refused++;
    } else if ((rc = dir_publish_idesc(r->n->dir, idesc, len)) > 0) {
        count = rc > UINT8_MAX ? UINT8_MAX : (uint8_t)rc;
        r->st.publishes++;
    }
    (void)relay_originate(ch, BODY_PUBLISHED, &count, 1);
}

/* Act on a forward body peeled at the exit (exit_hooks.exit_body). */
static void exit_body(struct relay_chain *ch, const uint8_t body[ONION_BODY])
{
    struct relay *r = ch->r;
    int blen = body_hdr_len(body);

    if (blen < 0) {
        r->st.dropped[RD_BAD_CELL]++;
        return;
    }
    switch (body[0]) {
    case BODY_DROP:
        r->st.dropped_cover++;
        break;
    case BODY_LOOP:
        /* Loop cover: back to the sender, who alone can tell it apart. */
        r->st.dropped_cover++;
        (void)relay_originate(ch, BODY_LOOP_BACK, NULL, 0);
        break;
    case BODY_DELIVER:
        if (blen < OVL_ED25519_PK) {
            r->st.dropped[RD_BAD_CELL]++;
            break;
        }
        exit_deliver(ch, body + BODY_HDR, body + BODY_HDR + OVL_ED25519_PK,
                     (uint16_t)(blen - OVL_ED25519_PK));
        break;
    case BODY_STREAM:
        xstream_input(ch, body + BODY_HDR, (size_t)blen);
        break;
    case BODY_INTRO_ESTABLISH:
        intro_establish(ch, body + BODY_HDR, (size_t)blen);
        break;
    case BODY_INTRO_BACK:
        intro_back(ch, body + BODY_HDR, (size_t)blen);
        break;
    case BODY_PUBLISH:
        exit_publish(ch, body + BODY_HDR, (size_t)blen);
        break;
    default:
        r->st.dropped[RD_BAD_CELL]++; /* reserved or backward commands */
        break;
    }
}

/* A cell from a destination under one of ch's delivery IDs. */
static void deliv_cell(void *obj, struct link *l, const struct cell *c)
{
    struct relay_chain *ch = obj;
    struct relay *r = ch->r;

    for (unsigned i = 0; i < ch->n_deliv; i++) {
        struct relay_deliv *d = &ch->deliv[i];

        if (d->link != l || d->id != c->chain_id)
            continue;
        if (c->cmd == CELL_CHAIN_DESTROY) {
            /* The destination is done with this ID; an introduction
             * relay, with the cookie. */
            chanmap_del(r->n, l, d->id);
            deliv_clear(d);
            if (d->flags & DELIVF_INTRO)
                deliv_gone(ch, d);
            return;
        }
        if (c->cmd == CELL_CHAIN_DELIVER && c->len <= BODY_DATA_MAX) {
            uint8_t args[OVL_ED25519_PK + BODY_DATA_MAX];

            /* Sent back to the chain's sender, who alone can read it.
             * No room on the way back: the destination's link waits
             * (relay_room and relay_originate_in hold it back), and the
             * cell is dropped and counted before it takes a backward
             * counter; the ends retransmit. A cell sealed and then
             * dropped would use up the sender's counter window
             * (ONION_WINDOW): past it, nothing more back on the chain
             * opens. */
            if (!ch->prev || !relay_room(r, l, ch->prev, 0))
                return;
            memcpy(args, d->pk, OVL_ED25519_PK);
            memcpy(args + OVL_ED25519_PK, c->payload, c->len);
            if (relay_originate_in(ch, l, BODY_DELIVER_BACK, args, OVL_ED25519_PK + c->len) == 0)
                r->st.delivered_back++;
            return;
        }
        break;
    }
    r->st.dropped[RD_BAD_CELL]++;
}

/* The link of one of ch's delivery IDs is closing. */
static void deliv_link_closed(void *obj, struct link *l, uint32_t id)
{
    struct relay_chain *ch = obj;

    for (unsigned i = 0; i < ch->n_deliv; i++) {
        struct relay_deliv *d = &ch->deliv[i];

        if (d->link != l || d->id != id)
            continue;
        deliv_clear(d);
        if (d->flags & DELIVF_INTRO)
            deliv_gone(ch, d); /* the hidden node's cookie is out of reach */
    }
}

/* ch is ending (exit_hooks.chain_end): release its deliveries, its
 * cookie and its pending extension; its streams lose their way back. */
static void exit_chain_end(struct relay_chain *ch)
{
    struct relay *r = ch->r;

    xstream_chain_end(ch);
    intro_chain_end(ch);
    if (ch->ext)
        ext_unlink(r, ch->ext);
    for (unsigned i = 0; i < ch->n_deliv; i++) {
        struct relay_deliv *d = &ch->deliv[i];

        if (!d->link)
            continue;
        relay_slot_end(r, d->link, d->id, DESTROY_R_NONE, true);
        deliv_clear(d);
    }
}

/* l is closed for stalling (exit_hooks.link_stalled): end every chain
 * that delivers to it. Their next cells would only dial the same peer
 * again, and their senders learn to use another chain. */
static void exit_link_stalled(struct relay *r, struct link *l)
{
    struct relay_chain *ch, *tmp;

    HASH_ITER(hh, r->chains, ch, tmp)
    {
        bool hit = false;

        for (unsigned i = 0; i < ch->n_deliv; i++) {
            struct relay_deliv *d = &ch->deliv[i];

            if (d->link != l)
                continue;
            chanmap_del(r->n, l, d->id); /* nothing more goes into the full queue */
            deliv_clear(d);
            hit = true;
        }
        if (hit)
            relay_chain_end(ch, DESTROY_R_LINK_CLOSED, true, true);
    }
}

void exit_tick(struct relay *r, uint64_t now)
{
    struct relay_wait *w = r->waits, *next;

    for (; w; w = next) {
        next = w->next;
        if (w->deadline_ms <= now)
            wait_give_up(w, BODY_R_UNREACHABLE);
        else if (w->n_held && wait_stale(w, now))
            wait_release(w);
    }
}

void exit_link_opened(struct relay *r, struct link *l)
{
    struct relay_wait *w;

    /* Several waits may want one link: a node's own, and those of hidden
     * nodes it introduces. Each flush frees its wait. */
again:
    for (w = r->waits; w; w = w->next) {
        if (memcmp(w->peer, l->peer_pk, OVL_ED25519_PK) == 0) {
            wait_flush(w, l);
            goto again;
        }
    }
}

void exit_link_closed(struct relay *r, struct link *l)
{
    struct relay_wait *w;

    /* First every wait forgets the dial, so that none moving on to
     * another introduction relay takes it up again (wait_dialing). */
    for (w = r->waits; w; w = w->next) {
        if (w->dial_serial == l->serial) {
            w->dial_serial = 0;
            w->flags |= WAITF_DIAL_FAILED;
        }
    }
again:
    for (w = r->waits; w; w = w->next) {
        if (w->flags & WAITF_DIAL_FAILED) {
            w->flags &= ~WAITF_DIAL_FAILED;
            wait_give_up(w, BODY_R_UNREACHABLE); /* w may be gone, others changed */
            goto again;
        }
    }
}

void exit_stop(struct relay *r)
{
    while (r->waits)
        wait_free(r->waits, true);
}

void exit_free(struct relay *r)
{
    while (r->waits)
        wait_free(r->waits, false);
}

const struct relay_hooks exit_hooks = {
    .exit_body = exit_body,
    .park_setup = exit_park_setup,
    .chain_end = exit_chain_end,
    .holds = exit_holds,
    .link_stalled = exit_link_stalled,
};
